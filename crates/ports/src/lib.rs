//! Module `ports` specifies the seams of the organizations service.
//!
//! - [`outbound`]: the *driven* ports the use cases need — one repository per aggregate,
//!   the e-mail outbox, the mailer, the clock, secrets and password hashing. Each
//!   repository method is one atomic business change.
//! - [`inbound`]: the *driving* ports — the use cases that the HTTP adapter and the
//!   command line call.
//!
//! With the `mocks` feature, every trait has a `mockall` mock (`MockClock`, …).
//!
//! Failures keep their cause: a [`StorageError`](outbound::StorageError) holds the
//! underlying error as its `source()`, a [`UseCaseError`](inbound::UseCaseError) holds
//! the storage error, and [`ErrorChain`] writes the whole chain for a log line.
//!
//! # Testing a use case on mocks
//!
//! A use case takes its driven ports as trait objects; a test hands it mocks (feature
//! `mocks`) and a clock that reads what the test says. Here a small use case, "the
//! status of an invitation", is tested with a mocked repository and clock:
//!
//! ```
//! use domain::invitation::{Invitation, InvitationStatus};
//! use domain::{Duration, InvitationId, OrganizationId, Role, Timestamp};
//! use ports::ErrorChain;
//! use ports::inbound::{InvitationView, UseCaseError};
//! use ports::outbound::{Clock, InvitationRepository, MockClock, MockInvitationRepository};
//! use ports::outbound::StorageError;
//!
//! /// The use case under test: an invitation with its status at the clock's now.
//! async fn show(
//!     invitations: &dyn InvitationRepository,
//!     clock: &dyn Clock,
//!     organization: OrganizationId,
//!     id: InvitationId,
//! ) -> Result<InvitationView, UseCaseError> {
//!     let invitation = invitations
//!         .find(organization, id)
//!         .await?
//!         .ok_or(UseCaseError::NotFound)?;
//!     Ok(InvitationView::at(invitation, clock.now()))
//! }
//!
//! let sent = Timestamp::from_timestamp(1_714_564_800, 0).expect("a valid instant");
//! let invitation = Invitation {
//!     id: InvitationId::new(7),
//!     organization_id: OrganizationId::new(1),
//!     identifier: domain::EmailAddress::parse("ada@example.com").expect("valid"),
//!     role: Role::Users,
//!     invited_by: None,
//!     created_at: sent,
//!     expires_at: sent + Duration::days(7),
//!     accepted_at: None,
//!     revoked_at: None,
//! };
//! let clock_at = |now: Timestamp| {
//!     let mut clock = MockClock::new();
//!     clock.expect_now().return_const(now);
//!     clock
//! };
//! let mut invitations = MockInvitationRepository::new();
//! invitations
//!     .expect_find()
//!     .withf(|organization, id| {
//!         *organization == OrganizationId::new(1) && *id == InvitationId::new(7)
//!     })
//!     .returning(move |_, _| Ok(Some(invitation.clone())));
//! let (root, seven) = (OrganizationId::new(1), InvitationId::new(7));
//!
//! // The status follows the mocked now.
//! let early = futures::executor::block_on(show(&invitations, &clock_at(sent), root, seven));
//! assert_eq!(early.expect("found").status, InvitationStatus::Pending);
//! let late = clock_at(sent + Duration::days(8));
//! let late = futures::executor::block_on(show(&invitations, &late, root, seven));
//! assert_eq!(late.expect("found").status, InvitationStatus::Expired);
//!
//! // A storage failure reaches the caller with its cause.
//! let mut down = MockInvitationRepository::new();
//! down.expect_find()
//!     .returning(|_, _| Err(StorageError::unavailable("connection refused")));
//! let failed = futures::executor::block_on(show(&down, &clock_at(sent), root, seven))
//!     .expect_err("unavailable");
//! assert!(matches!(failed, UseCaseError::Unavailable(_)));
//! assert_eq!(
//!     ErrorChain(&failed).to_string(),
//!     "service unavailable: storage unavailable: connection refused"
//! );
//! ```

#![warn(missing_docs)]

pub mod cause;
pub mod inbound;
pub mod outbound;

pub use cause::{Cause, ErrorChain};

pub use domain;
