//! Invitations: an offer for an e-mail address to join an organization with a role,
//! and its lifecycle pending → accepted / revoked / expired (CONTRACT §5).
//!
//! The status is never stored: it follows from the stored instants and `now`, which
//! the caller passes in.
//!
//! ```
//! use chrono::{TimeZone, Utc};
//! use domain::invitation::{
//!     Invitation, InvitationConflict, InvitationStatus, InviteRequest, check_invite,
//! };
//! use domain::{Duration, Input, InvitationId, OrganizationId, Role};
//!
//! // A request is checked first; the role defaults to `users`.
//! let terms = check_invite(
//!     InviteRequest {
//!         identifier: Input::Value("ada@Example.COM".to_owned()),
//!         expires_in_days: Input::Value(3),
//!         ..InviteRequest::default()
//!     },
//!     Duration::days(7),
//! )
//! .expect("valid");
//! assert_eq!(terms.identifier.as_str(), "ada@example.com");
//! assert_eq!(terms.role, Role::Users);
//!
//! // Stored, it is pending until it expires…
//! let sent = Utc.with_ymd_and_hms(2024, 5, 1, 12, 0, 0).single().expect("a valid instant");
//! let mut invitation = Invitation {
//!     id: InvitationId::new(7),
//!     organization_id: OrganizationId::new(1),
//!     identifier: terms.identifier,
//!     role: terms.role,
//!     invited_by: None,
//!     created_at: sent,
//!     expires_at: sent + terms.valid_for,
//!     accepted_at: None,
//!     revoked_at: None,
//! };
//! assert_eq!(invitation.status(sent + Duration::days(1)), InvitationStatus::Pending);
//! let later = sent + Duration::days(4);
//! assert_eq!(invitation.status(later), InvitationStatus::Expired);
//!
//! // …an expired one can still be resent or revoked…
//! assert_eq!(invitation.check_resend(later), Ok(()));
//!
//! // …and once accepted, that is final.
//! invitation.accepted_at = Some(sent + Duration::hours(2));
//! assert_eq!(invitation.status(later), InvitationStatus::Accepted);
//! assert_eq!(invitation.check_revoke(later), Err(InvitationConflict::Accepted));
//! ```

use crate::email::EmailAddress;
use crate::ids::{InvitationId, OrganizationId, UserId};
use crate::role::Role;
use crate::secret::{SecretToken, TokenHash};
use crate::time::{Duration, Timestamp};
use crate::user::{MemberRef, Password, PersonName};
use crate::validation::{ErrorCode, Input, ValidationErrors};

/// The shortest `expires_in_days`.
pub const MIN_EXPIRES_IN_DAYS: i64 = 1;
/// The longest `expires_in_days`.
pub const MAX_EXPIRES_IN_DAYS: i64 = 30;

/// Where an invitation stands at a given moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InvitationStatus {
    /// Can be accepted.
    Pending,
    /// Was accepted: the user exists.
    Accepted,
    /// Was revoked by an administrator.
    Revoked,
    /// Was not accepted in time; resending revives it.
    Expired,
}

impl InvitationStatus {
    /// Every status.
    pub const ALL: [InvitationStatus; 4] = [
        InvitationStatus::Pending,
        InvitationStatus::Accepted,
        InvitationStatus::Revoked,
        InvitationStatus::Expired,
    ];

    /// The wire name.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            InvitationStatus::Pending => "pending",
            InvitationStatus::Accepted => "accepted",
            InvitationStatus::Revoked => "revoked",
            InvitationStatus::Expired => "expired",
        }
    }

    /// Parses a wire name (the `?status=` filter).
    ///
    /// # Errors
    /// `InvalidChoice` naming the value.
    pub fn parse(value: &str) -> Result<Self, ErrorCode> {
        Self::ALL
            .into_iter()
            .find(|status| status.as_str() == value)
            .ok_or_else(|| ErrorCode::InvalidChoice {
                value: value.to_owned(),
            })
    }
}

/// Why an invitation cannot be resent or revoked (→ 409).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum InvitationConflict {
    /// It was accepted already.
    #[error("the invitation was accepted")]
    Accepted,
    /// It was revoked already.
    #[error("the invitation was revoked")]
    Revoked,
}

/// An invitation as stored (its token exists only as a hash, and is not here).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invitation {
    /// Its id.
    pub id: InvitationId,
    /// The organization it invites into.
    pub organization_id: OrganizationId,
    /// The invited address.
    pub identifier: EmailAddress,
    /// The role the user will have.
    pub role: Role,
    /// Who invited; `None` once that user was removed.
    pub invited_by: Option<MemberRef>,
    /// When it was made.
    pub created_at: Timestamp,
    /// Until when it can be accepted (exclusive).
    pub expires_at: Timestamp,
    /// When it was accepted.
    pub accepted_at: Option<Timestamp>,
    /// When it was revoked.
    pub revoked_at: Option<Timestamp>,
}

impl Invitation {
    /// Its status at `now`. Accepted and revoked are final; otherwise it is pending
    /// strictly before `expires_at` and expired from then on.
    #[must_use]
    pub fn status(&self, now: Timestamp) -> InvitationStatus {
        if self.accepted_at.is_some() {
            InvitationStatus::Accepted
        } else if self.revoked_at.is_some() {
            InvitationStatus::Revoked
        } else if now < self.expires_at {
            InvitationStatus::Pending
        } else {
            InvitationStatus::Expired
        }
    }

    /// Resending works on pending and expired invitations (it revives an expired one).
    ///
    /// # Errors
    /// The conflict, for an accepted or revoked invitation.
    pub fn check_resend(&self, now: Timestamp) -> Result<(), InvitationConflict> {
        self.check_open(now)
    }

    /// Revoking works on pending and expired invitations.
    ///
    /// # Errors
    /// The conflict, for an accepted or already revoked invitation.
    pub fn check_revoke(&self, now: Timestamp) -> Result<(), InvitationConflict> {
        self.check_open(now)
    }

    fn check_open(&self, now: Timestamp) -> Result<(), InvitationConflict> {
        match self.status(now) {
            InvitationStatus::Accepted => Err(InvitationConflict::Accepted),
            InvitationStatus::Revoked => Err(InvitationConflict::Revoked),
            InvitationStatus::Pending | InvitationStatus::Expired => Ok(()),
        }
    }
}

/// The fields of `POST /organizations/{id}/invite_user/`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InviteRequest {
    /// `identifier`: the e-mail address to invite.
    pub identifier: Input<String>,
    /// `role`, `users` when absent.
    pub role: Input<String>,
    /// `expires_in_days`, 1 to 30, the configured default when absent.
    pub expires_in_days: Input<i64>,
}

/// A checked invitation request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvitationTerms {
    /// The invited address.
    pub identifier: EmailAddress,
    /// The role.
    pub role: Role,
    /// How long the invitation stays open.
    pub valid_for: Duration,
}

/// Checks an invitation request, collecting every problem.
///
/// # Errors
/// Every problem, keyed by field.
pub fn check_invite(
    request: InviteRequest,
    default_valid_for: Duration,
) -> Result<InvitationTerms, ValidationErrors> {
    let mut errors = ValidationErrors::new();

    let identifier = errors.collect(
        "identifier",
        request
            .identifier
            .required()
            .and_then(|value| EmailAddress::parse(&value)),
    );
    let role = errors.collect(
        "role",
        request
            .role
            .optional()
            .and_then(|value| value.as_deref().map(Role::parse).transpose())
            .map(|role| role.unwrap_or(Role::Users)),
    );
    let valid_for = errors.collect(
        "expires_in_days",
        request
            .expires_in_days
            .optional()
            .and_then(|days| match days {
                None => Ok(default_valid_for),
                Some(days) if days < MIN_EXPIRES_IN_DAYS => Err(ErrorCode::MinValue {
                    min: MIN_EXPIRES_IN_DAYS,
                }),
                Some(days) if days > MAX_EXPIRES_IN_DAYS => Err(ErrorCode::MaxValue {
                    max: MAX_EXPIRES_IN_DAYS,
                }),
                Some(days) => Ok(Duration::days(days)),
            }),
    );

    errors.into_result()?;
    match (identifier, role, valid_for) {
        (Some(identifier), Some(role), Some(valid_for)) => Ok(InvitationTerms {
            identifier,
            role,
            valid_for,
        }),
        // Unreachable: every `None` above recorded an error.
        _ => Err(ValidationErrors::non_field(ErrorCode::Required)),
    }
}

/// An invitation to be stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewInvitation {
    /// The organization.
    pub organization_id: OrganizationId,
    /// The invited address.
    pub identifier: EmailAddress,
    /// The role.
    pub role: Role,
    /// The inviter.
    pub invited_by: UserId,
    /// The hash of the acceptance token.
    pub token_hash: TokenHash,
    /// Now.
    pub created_at: Timestamp,
    /// `created_at` plus the validity.
    pub expires_at: Timestamp,
}

/// What the invitation page shows of a usable invitation before it is accepted: what the
/// invited person joins, as whom, and who invited them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvitationPreview {
    /// The name of the organization it invites into.
    pub organization_name: crate::organization::OrganizationName,
    /// The role the user will have.
    pub role: Role,
    /// The invited address.
    pub identifier: EmailAddress,
    /// The inviter's identifier; `None` once that user was removed.
    pub invited_by: Option<EmailAddress>,
}

/// The fields of `POST /invitations/accept/`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AcceptRequest {
    /// `token`.
    pub token: Input<String>,
    /// `password`.
    pub password: Input<String>,
    /// `first_name`.
    pub first_name: Input<String>,
    /// `last_name`.
    pub last_name: Input<String>,
}

/// A checked acceptance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcceptTerms {
    /// The presented token.
    pub token: SecretToken,
    /// The new user's password.
    pub password: Password,
    /// First name.
    pub first_name: PersonName,
    /// Last name.
    pub last_name: PersonName,
}

/// Checks an acceptance request, collecting every problem. Whether the token is
/// valid is storage's answer, not this function's.
///
/// # Errors
/// Every problem, keyed by field.
pub fn check_accept(request: AcceptRequest) -> Result<AcceptTerms, ValidationErrors> {
    let mut errors = ValidationErrors::new();

    let token = errors.collect(
        "token",
        request.token.required().and_then(|token| {
            if token.trim().is_empty() {
                Err(ErrorCode::Blank)
            } else {
                Ok(SecretToken::presented(token.trim()))
            }
        }),
    );
    let password = errors.collect(
        "password",
        request
            .password
            .required()
            .and_then(|value| Password::parse(&value)),
    );
    let first_name = errors.collect(
        "first_name",
        request
            .first_name
            .required()
            .and_then(|value| PersonName::parse(&value)),
    );
    let last_name = errors.collect(
        "last_name",
        request
            .last_name
            .required()
            .and_then(|value| PersonName::parse(&value)),
    );

    errors.into_result()?;
    match (token, password, first_name, last_name) {
        (Some(token), Some(password), Some(first_name), Some(last_name)) => Ok(AcceptTerms {
            token,
            password,
            first_name,
            last_name,
        }),
        // Unreachable: every `None` above recorded an error.
        _ => Err(ValidationErrors::non_field(ErrorCode::Required)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> Timestamp {
        Timestamp::UNIX_EPOCH + Duration::seconds(seconds)
    }

    fn invitation() -> Invitation {
        Invitation {
            id: InvitationId::new(1),
            organization_id: OrganizationId::new(1),
            identifier: EmailAddress::parse("new@example.com").expect("valid"),
            role: Role::Users,
            invited_by: Some(MemberRef {
                organization_id: OrganizationId::new(1),
                user_id: UserId::new(1),
            }),
            created_at: at(0),
            expires_at: at(100),
            accepted_at: None,
            revoked_at: None,
        }
    }

    #[test]
    fn an_invitation_is_pending_until_the_instant_it_expires() {
        assert_eq!(invitation().status(at(99)), InvitationStatus::Pending);
        assert_eq!(invitation().status(at(100)), InvitationStatus::Expired);
    }

    #[test]
    fn accepted_and_revoked_are_final_whatever_the_time() {
        let accepted = Invitation {
            accepted_at: Some(at(5)),
            ..invitation()
        };
        let revoked = Invitation {
            revoked_at: Some(at(5)),
            ..invitation()
        };

        assert_eq!(accepted.status(at(500)), InvitationStatus::Accepted);
        assert_eq!(revoked.status(at(500)), InvitationStatus::Revoked);
    }

    #[test]
    fn pending_and_expired_invitations_can_be_resent_and_revoked() {
        for now in [at(10), at(1_000)] {
            assert_eq!(invitation().check_resend(now), Ok(()));
            assert_eq!(invitation().check_revoke(now), Ok(()));
        }
    }

    #[test]
    fn accepted_or_revoked_invitations_cannot_be_resent_or_revoked() {
        let accepted = Invitation {
            accepted_at: Some(at(5)),
            ..invitation()
        };
        let revoked = Invitation {
            revoked_at: Some(at(5)),
            ..invitation()
        };

        assert_eq!(
            accepted.check_resend(at(10)),
            Err(InvitationConflict::Accepted)
        );
        assert_eq!(
            accepted.check_revoke(at(10)),
            Err(InvitationConflict::Accepted)
        );
        assert_eq!(
            revoked.check_resend(at(10)),
            Err(InvitationConflict::Revoked)
        );
        assert_eq!(
            revoked.check_revoke(at(10)),
            Err(InvitationConflict::Revoked)
        );
    }

    #[test]
    fn statuses_parse_from_their_wire_names() {
        for status in InvitationStatus::ALL {
            assert_eq!(InvitationStatus::parse(status.as_str()), Ok(status));
        }
        assert!(InvitationStatus::parse("done").is_err());
    }

    fn invite(identifier: &str) -> InviteRequest {
        InviteRequest {
            identifier: Input::Value(identifier.to_owned()),
            ..InviteRequest::default()
        }
    }

    #[test]
    fn an_invitation_defaults_to_the_users_role_and_the_configured_validity() {
        let terms = check_invite(invite("New@Example.com"), Duration::days(7)).expect("valid");

        assert_eq!(terms.identifier.as_str(), "New@example.com");
        assert_eq!(terms.role, Role::Users);
        assert_eq!(terms.valid_for, Duration::days(7));
    }

    #[test]
    fn expires_in_days_is_between_1_and_30() {
        let with_days = |days| InviteRequest {
            expires_in_days: Input::Value(days),
            ..invite("a@example.com")
        };

        assert_eq!(
            check_invite(with_days(1), Duration::days(7)).map(|t| t.valid_for),
            Ok(Duration::days(1))
        );
        assert_eq!(
            check_invite(with_days(30), Duration::days(7)).map(|t| t.valid_for),
            Ok(Duration::days(30))
        );
        let low = check_invite(with_days(0), Duration::days(7)).expect_err("refused");
        let high = check_invite(with_days(31), Duration::days(7)).expect_err("refused");
        assert_eq!(
            low.codes("expires_in_days"),
            Some(&[ErrorCode::MinValue { min: 1 }][..])
        );
        assert_eq!(
            high.codes("expires_in_days"),
            Some(&[ErrorCode::MaxValue { max: 30 }][..])
        );
    }

    #[test]
    fn a_bad_identifier_and_an_unknown_role_are_reported_together() {
        let request = InviteRequest {
            identifier: Input::Value("nope".to_owned()),
            role: Input::Value("owners".to_owned()),
            expires_in_days: Input::Absent,
        };

        let errors = check_invite(request, Duration::days(7)).expect_err("refused");

        assert_eq!(
            errors.codes("identifier"),
            Some(&[ErrorCode::InvalidEmail][..])
        );
        assert_eq!(
            errors.codes("role"),
            Some(
                &[ErrorCode::InvalidChoice {
                    value: "owners".to_owned()
                }][..]
            )
        );
    }

    #[test]
    fn a_missing_or_blank_identifier_is_refused() {
        let missing =
            check_invite(InviteRequest::default(), Duration::days(7)).expect_err("refused");
        let blank = check_invite(invite(" "), Duration::days(7)).expect_err("refused");

        assert_eq!(
            missing.codes("identifier"),
            Some(&[ErrorCode::Required][..])
        );
        assert_eq!(blank.codes("identifier"), Some(&[ErrorCode::Blank][..]));
    }

    #[test]
    fn an_acceptance_reports_every_missing_or_short_field() {
        let request = AcceptRequest {
            token: Input::Absent,
            password: Input::Value("short".to_owned()),
            first_name: Input::Value(String::new()),
            last_name: Input::Value("x".repeat(51)),
        };

        let errors = check_accept(request).expect_err("refused");

        assert_eq!(errors.codes("token"), Some(&[ErrorCode::Required][..]));
        assert_eq!(
            errors.codes("password"),
            Some(&[ErrorCode::MinLength { min: 8 }][..])
        );
        assert_eq!(errors.codes("first_name"), Some(&[ErrorCode::Blank][..]));
        assert_eq!(
            errors.codes("last_name"),
            Some(&[ErrorCode::MaxLength { max: 50 }][..])
        );
    }

    #[test]
    fn a_complete_acceptance_is_checked() {
        let request = AcceptRequest {
            token: Input::Value("tok".to_owned()),
            password: Input::Value("correct horse".to_owned()),
            first_name: Input::Value("Ada".to_owned()),
            last_name: Input::Value("Lovelace".to_owned()),
        };

        let terms = check_accept(request).expect("valid");

        assert_eq!(terms.token.expose(), "tok");
        assert_eq!(terms.first_name.as_str(), "Ada");
    }
}
