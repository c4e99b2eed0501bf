//! Invitations: invite, list, resend, revoke, accept (CONTRACT §5).

use std::sync::Arc;

use async_trait::async_trait;

use domain::audit::{Changes, EventAction, EventActor, EventOrganization, EventTarget, NewEvent};
use domain::invitation::{
    AcceptRequest, Invitation, InvitationConflict, InvitationPreview, InvitationStatus,
    InvitationTerms, InviteRequest, NewInvitation, check_accept, check_invite,
};
use domain::limits::{LimitKey, RateLimit};
use domain::mail::{InvitationEmail, OutgoingEmail};
use domain::organization::Organization;
use domain::pagination::{Page, PageRequest};
use domain::secret::SecretToken;
use domain::{
    Action, Actor, Duration, EmailAddress, ErrorCode, InvitationId, OrganizationId, RequestId,
    Timestamp, ValidationErrors,
};
use ports::inbound::{
    AcceptedInvitation, Conflict, InvitationUseCases, InvitationView, UseCaseError,
};
use ports::outbound::{
    AcceptInvitationError, Clock, CreateInvitationError, InvitationChangeError,
    InvitationRepository, MemberProfile, OrganizationRepository, PasswordHasher, SecretGenerator,
    UserRepository,
};

use super::authorized_organization;
use super::limits::{hash_error, limited};

/// An instant as events show it (RFC 3339, UTC, microseconds as stored).
fn rfc3339(at: Timestamp) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// What the invitation use cases need to know of the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvitationSettings {
    /// The base of links in e-mails (`ORGS_PUBLIC_URL`).
    pub public_url: String,
    /// How long an invitation stays open without `expires_in_days`, and after a resend
    /// (`ORGS_INVITATION_TTL`).
    pub default_ttl: Duration,
    /// Invitation e-mails per recipient address.
    pub per_recipient: RateLimit,
    /// Invitation e-mails per organization.
    pub per_organization: RateLimit,
}

/// The driven ports the invitation use cases need.
#[derive(Clone)]
pub struct InvitationPorts {
    /// Organizations.
    pub organizations: Arc<dyn OrganizationRepository>,
    /// Users, for the inviter's name.
    pub users: Arc<dyn UserRepository>,
    /// Invitations.
    pub invitations: Arc<dyn InvitationRepository>,
    /// Password hashing, at acceptance.
    pub hasher: Arc<dyn PasswordHasher>,
    /// Tokens and API keys.
    pub secrets: Arc<dyn SecretGenerator>,
    /// The time.
    pub clock: Arc<dyn Clock>,
}

/// The invitation use cases.
#[derive(Clone)]
pub struct InvitationService {
    organizations: Arc<dyn OrganizationRepository>,
    users: Arc<dyn UserRepository>,
    invitations: Arc<dyn InvitationRepository>,
    hasher: Arc<dyn PasswordHasher>,
    secrets: Arc<dyn SecretGenerator>,
    clock: Arc<dyn Clock>,
    settings: InvitationSettings,
}

impl InvitationService {
    /// A service over these ports.
    pub fn new(ports: InvitationPorts, settings: InvitationSettings) -> Self {
        Self {
            organizations: ports.organizations,
            users: ports.users,
            invitations: ports.invitations,
            hasher: ports.hasher,
            secrets: ports.secrets,
            clock: ports.clock,
            settings,
        }
    }

    /// One invitation e-mail from the recipient's and the organization's allowances
    /// (CONTRACT §5c), taken by storage in the transaction that stores the e-mail.
    fn allowances(
        &self,
        organization: OrganizationId,
        recipient: &EmailAddress,
    ) -> [(LimitKey, RateLimit); 2] {
        [
            (LimitKey::invites_to(recipient), self.settings.per_recipient),
            (
                LimitKey::InvitesFromOrganization(organization),
                self.settings.per_organization,
            ),
        ]
    }

    /// Stores the invitation and its e-mail.
    async fn create_invitation(
        &self,
        actor: &Actor,
        organization: &Organization,
        terms: InvitationTerms,
    ) -> Result<Invitation, UseCaseError> {
        let token = self.secrets.generate();
        let email = self
            .compose_email(actor, organization, &terms.identifier, &token)
            .await?;
        let now = self.clock.now();
        let allowances = self.allowances(organization.id, &terms.identifier);
        let event = NewEvent::by(
            actor,
            EventAction::InvitationCreated,
            organization.id,
            EventTarget::ThisInvitation,
            now,
        )
        .with_changes(
            Changes::new()
                .with("identifier", None::<&str>, terms.identifier.as_str())
                .with("role", None::<&str>, terms.role.as_str()),
        );
        let invitation = NewInvitation {
            organization_id: organization.id,
            identifier: terms.identifier,
            role: terms.role,
            invited_by: actor.user_id,
            token_hash: token.hash(),
            created_at: now,
            expires_at: now + terms.valid_for,
        };
        self.invitations
            .create(invitation, email, &allowances, event)
            .await
            .map_err(|error| match error {
                CreateInvitationError::IdentifierTaken => {
                    ValidationErrors::single("identifier", ErrorCode::IdentifierTaken).into()
                }
                CreateInvitationError::AlreadyInvited => {
                    ValidationErrors::single("identifier", ErrorCode::AlreadyInvited).into()
                }
                CreateInvitationError::OrganizationNotFound => UseCaseError::NotFound,
                CreateInvitationError::Limited(reached) => limited(reached),
                CreateInvitationError::Storage(error) => error.into(),
            })
    }

    /// Gives the invitation a fresh token and expiry and queues its e-mail again.
    async fn resend_invitation(
        &self,
        actor: &Actor,
        organization: &Organization,
        current: &Invitation,
        now: Timestamp,
    ) -> Result<Invitation, UseCaseError> {
        let token = self.secrets.generate();
        let email = self
            .compose_email(actor, organization, &current.identifier, &token)
            .await?;
        let expires_at = now + self.settings.default_ttl;
        let event = NewEvent::by(
            actor,
            EventAction::InvitationResent,
            organization.id,
            EventTarget::Invitation(current.id),
            now,
        )
        .with_changes(Changes::new().with(
            "expires_at",
            rfc3339(current.expires_at).as_str(),
            rfc3339(expires_at).as_str(),
        ));
        self.invitations
            .resend(
                organization.id,
                current.id,
                &token.hash(),
                expires_at,
                now,
                email,
                &self.allowances(organization.id, &current.identifier),
                event,
            )
            .await
            .map_err(change_error)
    }

    /// The invitation e-mail, naming the organization and the inviter.
    async fn compose_email(
        &self,
        actor: &Actor,
        organization: &Organization,
        to: &EmailAddress,
        token: &SecretToken,
    ) -> Result<OutgoingEmail, UseCaseError> {
        let inviter = self.users.find(actor.user_id).await?.map_or_else(
            || organization.name.as_str().to_owned(),
            |user| user.display_name(),
        );
        Ok(InvitationEmail {
            to,
            organization_name: organization.name.as_str(),
            inviter: &inviter,
            public_url: &self.settings.public_url,
            token: token.expose(),
        }
        .compose())
    }
}

/// The longest token the invitation page looks up; real ones are far shorter.
const PREVIEW_TOKEN_MAX_LENGTH: usize = 256;

fn invalid_token() -> UseCaseError {
    ValidationErrors::single("token", ErrorCode::InvalidInvitation).into()
}

fn conflict(conflict: InvitationConflict) -> UseCaseError {
    UseCaseError::Conflict(match conflict {
        InvitationConflict::Accepted => Conflict::InvitationAccepted,
        InvitationConflict::Revoked => Conflict::InvitationRevoked,
    })
}

fn change_error(error: InvitationChangeError) -> UseCaseError {
    match error {
        InvitationChangeError::NotFound => UseCaseError::NotFound,
        InvitationChangeError::Conflict(reason) => conflict(reason),
        InvitationChangeError::AnotherPending => {
            UseCaseError::Conflict(Conflict::InvitationPendingElsewhere)
        }
        InvitationChangeError::Limited(reached) => limited(reached),
        InvitationChangeError::Storage(error) => error.into(),
    }
}

#[async_trait]
impl InvitationUseCases for InvitationService {
    async fn invite(
        &self,
        actor: &Actor,
        organization: OrganizationId,
        request: InviteRequest,
    ) -> Result<InvitationView, UseCaseError> {
        let organization = authorized_organization(
            self.organizations.as_ref(),
            actor,
            Action::ManageInvitations,
            organization,
        )
        .await?;
        let terms = check_invite(request, self.settings.default_ttl)?;
        // The allowances are taken with the invitation, in one transaction, and only
        // when it is stored: a refused one uses none, not even for a moment (§5c, §9).
        let invitation = self.create_invitation(actor, &organization, terms).await?;
        Ok(InvitationView::at(invitation, self.clock.now()))
    }

    async fn get(
        &self,
        actor: &Actor,
        organization: OrganizationId,
        invitation: InvitationId,
    ) -> Result<InvitationView, UseCaseError> {
        authorized_organization(
            self.organizations.as_ref(),
            actor,
            Action::ManageInvitations,
            organization,
        )
        .await?;
        let invitation = self
            .invitations
            .find(organization, invitation)
            .await?
            .ok_or(UseCaseError::NotFound)?;
        Ok(InvitationView::at(invitation, self.clock.now()))
    }

    async fn list(
        &self,
        actor: &Actor,
        organization: OrganizationId,
        status: Option<String>,
        page: PageRequest,
    ) -> Result<Page<InvitationView>, UseCaseError> {
        authorized_organization(
            self.organizations.as_ref(),
            actor,
            Action::ManageInvitations,
            organization,
        )
        .await?;
        let status = status
            .as_deref()
            .map(InvitationStatus::parse)
            .transpose()
            .map_err(|code| ValidationErrors::single("status", code))?;
        // One now filters the list and gives each row its status: a row listed as
        // `?status=pending` also reads `pending`.
        let now = self.clock.now();
        let listed = self
            .invitations
            .list(organization, status, now, page)
            .await?;
        page.check(listed.total)
            .map_err(|_| UseCaseError::InvalidPage)?;
        Ok(listed.map(|invitation| InvitationView::at(invitation, now)))
    }

    async fn resend(
        &self,
        actor: &Actor,
        organization: OrganizationId,
        invitation: InvitationId,
    ) -> Result<InvitationView, UseCaseError> {
        let organization = authorized_organization(
            self.organizations.as_ref(),
            actor,
            Action::ManageInvitations,
            organization,
        )
        .await?;
        let current = self
            .invitations
            .find(organization.id, invitation)
            .await?
            .ok_or(UseCaseError::NotFound)?;
        let now = self.clock.now();
        current.check_resend(now).map_err(conflict)?;
        // As for an invitation: the allowances are taken with the resend, or not at all.
        let resent = self
            .resend_invitation(actor, &organization, &current, now)
            .await?;
        Ok(InvitationView::at(resent, now))
    }

    async fn revoke(
        &self,
        actor: &Actor,
        organization: OrganizationId,
        invitation: InvitationId,
    ) -> Result<(), UseCaseError> {
        authorized_organization(
            self.organizations.as_ref(),
            actor,
            Action::ManageInvitations,
            organization,
        )
        .await?;
        let now = self.clock.now();
        let event = NewEvent::by(
            actor,
            EventAction::InvitationRevoked,
            organization,
            EventTarget::Invitation(invitation),
            now,
        );
        self.invitations
            .revoke(organization, invitation, now, event)
            .await
            .map_err(change_error)
    }

    async fn preview(&self, token: String) -> Result<InvitationPreview, UseCaseError> {
        let token = token.trim();
        // A token is a short random string: a blank or oversized one opens nothing, and
        // costs no read.
        if token.is_empty() || token.len() > PREVIEW_TOKEN_MAX_LENGTH {
            return Err(invalid_token());
        }
        let token = SecretToken::presented(token).hash();
        self.invitations
            .preview(&token, self.clock.now())
            .await?
            .ok_or_else(invalid_token)
    }

    async fn accept(
        &self,
        request: AcceptRequest,
        request_id: Option<RequestId>,
    ) -> Result<AcceptedInvitation, UseCaseError> {
        let terms = check_accept(request)?;
        // The cheap check before the costly one: a password is hashed only for a token
        // that opens a pending invitation (CONTRACT §9). The acceptance below still
        // decides, in one conditional update, if the token is used meanwhile.
        let token = terms.token.hash();
        if !self
            .invitations
            .token_is_open(&token, self.clock.now())
            .await?
        {
            return Err(invalid_token());
        }
        let password_hash = self
            .hasher
            .hash(&terms.password)
            .await
            .map_err(hash_error)?;
        let api_key = self.secrets.generate();
        let profile = MemberProfile {
            first_name: terms.first_name,
            last_name: terms.last_name,
            password_hash,
        };
        let now = self.clock.now();
        // The new member is the actor; the storage names it and the invitation's
        // organization inside the acceptance's transaction.
        let event = NewEvent::new(
            EventAction::InvitationAccepted,
            EventActor::ThisMember,
            EventOrganization::ThisOrganization,
            EventTarget::ThisInvitation,
            request_id,
            now,
        );
        let user = self
            .invitations
            .accept(
                &token,
                now,
                profile,
                &domain::api_key::KeyMaterial::of(&api_key),
                event,
            )
            .await
            .map_err(|error| -> UseCaseError {
                match error {
                    AcceptInvitationError::InvalidToken => invalid_token(),
                    // The request names no identifier: the problem is the invitation as a whole.
                    AcceptInvitationError::IdentifierTaken => {
                        ValidationErrors::non_field(ErrorCode::IdentifierTaken).into()
                    }
                    AcceptInvitationError::Storage(error) => error.into(),
                }
            })?;
        Ok(AcceptedInvitation { user, api_key })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::usecases::fixtures::*;
    use domain::limits::LimitReached;
    use domain::user::{MemberRef, PasswordHash};
    use domain::{Input, Role, UserId};
    use mockall::predicate::eq;
    use ports::outbound::{
        MockClock, MockInvitationRepository, MockOrganizationRepository, MockPasswordHasher,
        MockSecretGenerator, MockUserRepository, PasswordHashError,
    };

    const INVITATION: InvitationId = InvitationId::new(7);

    struct Mocks {
        organizations: MockOrganizationRepository,
        users: MockUserRepository,
        invitations: MockInvitationRepository,
        hasher: MockPasswordHasher,
    }

    impl Mocks {
        fn new() -> Self {
            let mut organizations = MockOrganizationRepository::new();
            organizations.expect_find().returning(|id| {
                Ok([root(), child(), other_root()]
                    .into_iter()
                    .find(|organization| organization.id == id))
            });
            let mut users = MockUserRepository::new();
            users
                .expect_find()
                .returning(|id| Ok(Some(user(id, ROOT, Role::Administrators))));
            Self {
                organizations,
                users,
                invitations: MockInvitationRepository::new(),
                hasher: MockPasswordHasher::new(),
            }
        }

        /// The token is (or is not) open.
        fn with_open_token(mut self, open: bool) -> Self {
            self.invitations
                .expect_token_is_open()
                .returning(move |_, _| Ok(open));
            self
        }

        fn service(self) -> InvitationService {
            self.service_at(now())
        }

        /// The service with a clock that reads `at`.
        fn service_at(self, at: Timestamp) -> InvitationService {
            let mut clock = MockClock::new();
            clock.expect_now().returning(move || at);
            let mut secrets = MockSecretGenerator::new();
            secrets
                .expect_generate()
                .returning(|| SecretToken::presented("fresh-token"));
            InvitationService::new(
                InvitationPorts {
                    organizations: Arc::new(self.organizations),
                    users: Arc::new(self.users),
                    invitations: Arc::new(self.invitations),
                    hasher: Arc::new(self.hasher),
                    secrets: Arc::new(secrets),
                    clock: Arc::new(clock),
                },
                InvitationSettings {
                    public_url: "https://orgs.example.com".to_owned(),
                    default_ttl: Duration::days(7),
                    per_recipient: RateLimit {
                        count: 5,
                        window: Duration::hours(1),
                    },
                    per_organization: RateLimit {
                        count: 200,
                        window: Duration::hours(1),
                    },
                },
            )
        }
    }

    fn invitation(accepted: bool, revoked: bool, expired: bool) -> Invitation {
        Invitation {
            id: INVITATION,
            organization_id: CHILD,
            identifier: email("new@example.com"),
            role: Role::Users,
            invited_by: Some(MemberRef {
                organization_id: ROOT,
                user_id: UserId::new(10),
            }),
            created_at: now() - Duration::days(10),
            expires_at: if expired {
                now() - Duration::days(3)
            } else {
                now() + Duration::days(3)
            },
            accepted_at: accepted.then(now),
            revoked_at: revoked.then(now),
        }
    }

    fn invite(identifier: &str) -> InviteRequest {
        InviteRequest {
            identifier: Input::Value(identifier.to_owned()),
            ..InviteRequest::default()
        }
    }

    fn accept_request() -> AcceptRequest {
        AcceptRequest {
            token: Input::Value("the-token".to_owned()),
            password: Input::Value("correct horse".to_owned()),
            first_name: Input::Value("Ada".to_owned()),
            last_name: Input::Value("Lovelace".to_owned()),
        }
    }

    fn field_codes(error: UseCaseError, field: &str) -> Vec<ErrorCode> {
        match error {
            UseCaseError::Validation(errors) => errors.codes(field).unwrap_or_default().to_vec(),
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn inviting_stores_the_invitation_with_its_email_in_one_call() {
        let mut mocks = Mocks::new();
        mocks
            .invitations
            .expect_create()
            .withf(|new, email, _, event| {
                event.action == EventAction::InvitationCreated
                    && event.actor == EventActor::User(UserId::new(10))
                    && event.organization == EventOrganization::Existing(CHILD)
                    && event.target == EventTarget::ThisInvitation
                    && event.changes.to_json()
                        == r#"{"identifier": [null, "New@example.com"], "role": [null, "users"]}"#
                    && new.organization_id == CHILD
                    && new.identifier.as_str() == "New@example.com"
                    && new.role == Role::Users
                    && new.invited_by == UserId::new(10)
                    && new.token_hash == SecretToken::presented("fresh-token").hash()
                    && new.expires_at == now() + Duration::days(7)
                    && email.to.as_str() == "New@example.com"
                    && email
                        .text
                        .contains("https://orgs.example.com/invitations/accept?token=fresh-token")
                    && email.subject.contains("Ada Lovelace")
            })
            .times(1)
            .returning(|_, _, _, _| Ok(invitation(false, false, false)));

        let invited = mocks
            .service()
            .invite(
                &actor(Role::Administrators),
                CHILD,
                invite("New@EXAMPLE.com"),
            )
            .await;

        assert_eq!(
            invited,
            Ok(InvitationView {
                invitation: invitation(false, false, false),
                status: InvitationStatus::Pending,
            })
        );
    }

    #[tokio::test]
    async fn expires_in_days_sets_the_expiry() {
        let mut mocks = Mocks::new();
        mocks
            .invitations
            .expect_create()
            .withf(|new, _, _, _| new.expires_at == now() + Duration::days(2))
            .times(1)
            .returning(|_, _, _, _| Ok(invitation(false, false, false)));
        let request = InviteRequest {
            expires_in_days: Input::Value(2),
            ..invite("new@example.com")
        };

        let invited = mocks
            .service()
            .invite(&actor(Role::Administrators), ROOT, request)
            .await;

        assert!(invited.is_ok());
    }

    #[tokio::test]
    async fn inviting_as_a_non_administrator_is_forbidden() {
        for role in [Role::Managers, Role::Users, Role::Collaborators] {
            let mut mocks = Mocks::new();
            mocks.invitations.expect_create().never();

            let invited = mocks
                .service()
                .invite(&actor(role), ROOT, invite("new@example.com"))
                .await;

            assert_eq!(invited, Err(UseCaseError::Forbidden), "{role}");
        }
    }

    #[tokio::test]
    async fn inviting_into_an_invisible_organization_is_not_found() {
        let mut mocks = Mocks::new();
        mocks.invitations.expect_create().never();

        let invited = mocks
            .service()
            .invite(
                &actor(Role::Administrators),
                OTHER_ROOT,
                invite("new@example.com"),
            )
            .await;

        assert_eq!(invited, Err(UseCaseError::NotFound));
    }

    #[tokio::test]
    async fn an_invalid_invitation_is_refused_without_storing() {
        let mut mocks = Mocks::new();
        mocks.invitations.expect_create().never();

        let invited = mocks
            .service()
            .invite(&actor(Role::Administrators), ROOT, invite("not-an-address"))
            .await;

        assert_eq!(
            field_codes(invited.expect_err("refused"), "identifier"),
            [ErrorCode::InvalidEmail]
        );
    }

    #[tokio::test]
    async fn inviting_a_taken_identifier_or_an_already_invited_one_is_refused() {
        for (error, code) in [
            (
                CreateInvitationError::IdentifierTaken,
                ErrorCode::IdentifierTaken,
            ),
            (
                CreateInvitationError::AlreadyInvited,
                ErrorCode::AlreadyInvited,
            ),
        ] {
            let mut mocks = Mocks::new();
            let stored = error.clone();
            mocks
                .invitations
                .expect_create()
                .returning(move |_, _, _, _| Err(stored.clone()));

            let invited = mocks
                .service()
                .invite(
                    &actor(Role::Administrators),
                    ROOT,
                    invite("new@example.com"),
                )
                .await;

            assert_eq!(
                field_codes(invited.expect_err("refused"), "identifier"),
                [code]
            );
        }
    }

    #[tokio::test]
    async fn an_invitation_takes_from_the_recipients_and_the_organizations_allowances() {
        let mut mocks = Mocks::new();
        mocks
            .invitations
            .expect_create()
            .withf(|new, _, allowances, _| {
                new.created_at == now()
                    && allowances
                        == [
                            (
                                LimitKey::InvitesToRecipient("New@example.com".to_owned()),
                                RateLimit {
                                    count: 5,
                                    window: Duration::hours(1),
                                },
                            ),
                            (
                                LimitKey::InvitesFromOrganization(ROOT),
                                RateLimit {
                                    count: 200,
                                    window: Duration::hours(1),
                                },
                            ),
                        ]
            })
            .times(1)
            .returning(|_, _, _, _| Ok(invitation(false, false, false)));

        let invited = mocks
            .service()
            .invite(
                &actor(Role::Administrators),
                ROOT,
                invite("New@EXAMPLE.com"),
            )
            .await;

        assert!(invited.is_ok());
    }

    #[tokio::test]
    async fn an_exhausted_allowance_is_rate_limited_and_sends_nothing() {
        let reached = LimitReached {
            retry_after: Duration::minutes(20),
        };
        let mut mocks = Mocks::new();
        mocks
            .invitations
            .expect_create()
            .times(1)
            .returning(move |_, _, _, _| Err(CreateInvitationError::Limited(reached)));
        mocks
            .invitations
            .expect_resend()
            .withf(|_, _, _, _, _, _, allowances, _| allowances.len() == 2)
            .times(1)
            .returning(move |_, _, _, _, _, _, _, _| Err(InvitationChangeError::Limited(reached)));
        mocks
            .invitations
            .expect_find()
            .returning(|_, _| Ok(Some(invitation(false, false, false))));
        let service = mocks.service();

        let invited = service
            .invite(
                &actor(Role::Administrators),
                ROOT,
                invite("new@example.com"),
            )
            .await;
        let resent = service
            .resend(&actor(Role::Administrators), CHILD, INVITATION)
            .await;

        let limited = UseCaseError::RateLimited {
            retry_after: Duration::minutes(20),
        };
        assert_eq!(invited, Err(limited.clone()));
        assert_eq!(resent, Err(limited));
    }

    #[tokio::test]
    async fn an_invalid_invitation_uses_no_allowance() {
        let mut mocks = Mocks::new();
        mocks.invitations.expect_create().never();

        let invited = mocks
            .service()
            .invite(&actor(Role::Administrators), ROOT, invite("nope"))
            .await;

        assert!(matches!(invited, Err(UseCaseError::Validation(_))));
    }

    #[tokio::test]
    async fn one_invitation_is_found_in_its_organization_only() {
        let mut mocks = Mocks::new();
        mocks
            .invitations
            .expect_find()
            .returning(|organization, _| {
                Ok((organization == CHILD).then(|| invitation(false, false, false)))
            });
        let service = mocks.service();

        let found = service
            .get(&actor(Role::Administrators), CHILD, INVITATION)
            .await;
        let elsewhere = service
            .get(&actor(Role::Administrators), ROOT, INVITATION)
            .await;
        let as_user = service.get(&actor(Role::Users), CHILD, INVITATION).await;

        assert_eq!(
            found,
            Ok(InvitationView {
                invitation: invitation(false, false, false),
                status: InvitationStatus::Pending,
            })
        );
        assert_eq!(elsewhere, Err(UseCaseError::NotFound));
        assert_eq!(as_user, Err(UseCaseError::Forbidden));
    }

    #[tokio::test]
    async fn listing_with_an_unknown_status_is_refused_on_status() {
        let mut mocks = Mocks::new();
        mocks.invitations.expect_list().never();

        let listed = mocks
            .service()
            .list(
                &actor(Role::Administrators),
                ROOT,
                Some("done".to_owned()),
                PageRequest::default(),
            )
            .await;

        assert_eq!(
            field_codes(listed.expect_err("refused"), "status"),
            [ErrorCode::InvalidChoice {
                value: "done".to_owned()
            }]
        );
    }

    #[tokio::test]
    async fn listing_passes_the_status_filter_and_now() {
        let mut mocks = Mocks::new();
        mocks
            .invitations
            .expect_list()
            .with(
                eq(ROOT),
                eq(Some(InvitationStatus::Expired)),
                eq(now()),
                eq(PageRequest::default()),
            )
            .times(1)
            .returning(|_, _, _, page| {
                Ok(Page {
                    items: vec![invitation(false, false, true)],
                    total: 1,
                    request: page,
                })
            });

        let listed = mocks
            .service()
            .list(
                &actor(Role::Administrators),
                ROOT,
                Some("expired".to_owned()),
                PageRequest::default(),
            )
            .await
            .expect("listed");

        assert_eq!(listed.total, 1);
        assert_eq!(listed.items[0].status, InvitationStatus::Expired);
    }

    #[tokio::test]
    async fn an_invitations_status_follows_the_use_cases_clock() {
        // Pending for three more days at `now()`.
        let pending = invitation(false, false, false);
        let expires_at = pending.expires_at;
        let status_at = |at: Timestamp| {
            let invitation = pending.clone();
            async move {
                let mut mocks = Mocks::new();
                mocks
                    .invitations
                    .expect_find()
                    .returning(move |_, _| Ok(Some(invitation.clone())));
                mocks
                    .service_at(at)
                    .get(&actor(Role::Administrators), CHILD, INVITATION)
                    .await
                    .expect("found")
                    .status
            }
        };

        assert_eq!(status_at(now()).await, InvitationStatus::Pending);
        assert_eq!(
            status_at(expires_at - Duration::seconds(1)).await,
            InvitationStatus::Pending
        );
        assert_eq!(status_at(expires_at).await, InvitationStatus::Expired);
        assert_eq!(
            status_at(now() + Duration::days(4)).await,
            InvitationStatus::Expired
        );
    }

    #[tokio::test]
    async fn listing_invitations_as_a_manager_is_forbidden() {
        let mocks = Mocks::new();

        let listed = mocks
            .service()
            .list(&actor(Role::Managers), ROOT, None, PageRequest::default())
            .await;

        assert_eq!(listed, Err(UseCaseError::Forbidden));
    }

    #[tokio::test]
    async fn resending_gives_a_fresh_token_expiry_and_email() {
        for expired in [false, true] {
            let mut mocks = Mocks::new();
            mocks
                .invitations
                .expect_find()
                .with(eq(CHILD), eq(INVITATION))
                .returning(move |_, _| Ok(Some(invitation(false, false, expired))));
            mocks
                .invitations
                .expect_resend()
                .withf(|organization, id, token, expires_at, at, email, _, event| {
                    event.action == EventAction::InvitationResent
                        && event.target == EventTarget::Invitation(INVITATION)
                        && event.organization == EventOrganization::Existing(CHILD)
                        && event.changes.get("expires_at").is_some_and(|(_, after)| {
                            *after == rfc3339(now() + Duration::days(7)).as_str().into()
                        })
                        && !event.changes.to_json().contains("fresh-token")
                        && *organization == CHILD
                        && *id == INVITATION
                        && *token == SecretToken::presented("fresh-token").hash()
                        && *expires_at == now() + Duration::days(7)
                        && *at == now()
                        && email.text.contains("token=fresh-token")
                })
                .times(1)
                .returning(|_, _, _, _, _, _, _, _| Ok(invitation(false, false, false)));

            let resent = mocks
                .service()
                .resend(&actor(Role::Administrators), CHILD, INVITATION)
                .await;

            assert!(resent.is_ok(), "expired: {expired}");
        }
    }

    #[tokio::test]
    async fn resending_an_accepted_or_revoked_invitation_is_a_conflict() {
        for (accepted, revoked, expected) in [
            (true, false, Conflict::InvitationAccepted),
            (false, true, Conflict::InvitationRevoked),
        ] {
            let mut mocks = Mocks::new();
            mocks
                .invitations
                .expect_find()
                .returning(move |_, _| Ok(Some(invitation(accepted, revoked, false))));
            mocks.invitations.expect_resend().never();

            let resent = mocks
                .service()
                .resend(&actor(Role::Administrators), CHILD, INVITATION)
                .await;

            assert_eq!(resent, Err(UseCaseError::Conflict(expected)));
        }
    }

    #[tokio::test]
    async fn resending_a_missing_invitation_is_not_found() {
        let mut mocks = Mocks::new();
        mocks.invitations.expect_find().returning(|_, _| Ok(None));

        let resent = mocks
            .service()
            .resend(&actor(Role::Administrators), CHILD, INVITATION)
            .await;

        assert_eq!(resent, Err(UseCaseError::NotFound));
    }

    #[tokio::test]
    async fn revoking_maps_a_concurrent_acceptance_to_a_conflict() {
        let mut mocks = Mocks::new();
        mocks
            .invitations
            .expect_revoke()
            .withf(|organization, invitation, at, event| {
                (*organization, *invitation, *at) == (CHILD, INVITATION, now())
                    && event.action == EventAction::InvitationRevoked
                    && event.target == EventTarget::Invitation(INVITATION)
            })
            .returning(|_, _, _, _| {
                Err(InvitationChangeError::Conflict(
                    InvitationConflict::Accepted,
                ))
            });

        let revoked = mocks
            .service()
            .revoke(&actor(Role::Administrators), CHILD, INVITATION)
            .await;

        assert_eq!(
            revoked,
            Err(UseCaseError::Conflict(Conflict::InvitationAccepted))
        );
    }

    #[tokio::test]
    async fn revoking_as_a_manager_is_forbidden() {
        let mut mocks = Mocks::new();
        mocks.invitations.expect_revoke().never();

        let revoked = mocks
            .service()
            .revoke(&actor(Role::Managers), CHILD, INVITATION)
            .await;

        assert_eq!(revoked, Err(UseCaseError::Forbidden));
    }

    #[tokio::test]
    async fn accepting_creates_the_user_with_a_hashed_password_and_an_api_key() {
        let mut mocks = Mocks::new().with_open_token(true);
        mocks
            .hasher
            .expect_hash()
            .returning(|_| Ok(PasswordHash::new("$argon2id$hash".to_owned())));
        mocks
            .invitations
            .expect_accept()
            .withf(|token, at, profile, api_key, event| {
                event.action == EventAction::InvitationAccepted
                    && event.actor == EventActor::ThisMember
                    && event.organization == EventOrganization::ThisOrganization
                    && event.target == EventTarget::ThisInvitation
                    && event.changes.is_empty()
                    && *token == SecretToken::presented("the-token").hash()
                    && *at == now()
                    && profile.first_name.as_str() == "Ada"
                    && profile.password_hash.as_str() == "$argon2id$hash"
                    && api_key.hash == SecretToken::presented("fresh-token").hash()
            })
            .times(1)
            .returning(|_, _, _, _, _| Ok(user(UserId::new(30), CHILD, Role::Users)));

        let accepted = mocks
            .service()
            .accept(accept_request(), None)
            .await
            .expect("accepted");

        assert_eq!(accepted.user.id, UserId::new(30));
        assert_eq!(accepted.api_key.expose(), "fresh-token");
    }

    fn preview() -> InvitationPreview {
        InvitationPreview {
            organization_name: domain::organization::OrganizationName::parse("Acme")
                .expect("valid name"),
            role: Role::Managers,
            identifier: email("new@example.com"),
            invited_by: Some(email("boss@example.com")),
        }
    }

    #[tokio::test]
    async fn previewing_reads_the_invitation_of_the_token_without_accepting_it() {
        let mut mocks = Mocks::new();
        mocks.hasher.expect_hash().never();
        mocks.invitations.expect_accept().never();
        mocks
            .invitations
            .expect_preview()
            .withf(|token, at| *token == SecretToken::presented("the-token").hash() && *at == now())
            .times(1)
            .returning(|_, _| Ok(Some(preview())));

        let shown = mocks.service().preview(" the-token ".to_owned()).await;

        assert_eq!(shown, Ok(preview()));
    }

    #[tokio::test]
    async fn previewing_a_token_that_opens_nothing_is_an_invalid_invitation() {
        let mut mocks = Mocks::new();
        mocks
            .invitations
            .expect_preview()
            .times(1)
            .returning(|_, _| Ok(None));

        let shown = mocks.service().preview("used".to_owned()).await;

        assert_eq!(
            field_codes(shown.expect_err("refused"), "token"),
            [ErrorCode::InvalidInvitation]
        );
    }

    #[tokio::test]
    async fn previewing_a_blank_or_oversized_token_reads_nothing() {
        for token in [String::new(), "  ".to_owned(), "x".repeat(257)] {
            let mut mocks = Mocks::new();
            mocks.invitations.expect_preview().never();

            let shown = mocks.service().preview(token).await;

            assert_eq!(
                field_codes(shown.expect_err("refused"), "token"),
                [ErrorCode::InvalidInvitation]
            );
        }
    }

    #[tokio::test]
    async fn a_token_used_while_the_password_was_hashed_is_refused_on_token() {
        let mut mocks = Mocks::new().with_open_token(true);
        mocks
            .hasher
            .expect_hash()
            .returning(|_| Ok(PasswordHash::new("$argon2id$hash".to_owned())));
        mocks
            .invitations
            .expect_accept()
            .returning(|_, _, _, _, _| Err(AcceptInvitationError::InvalidToken));

        let accepted = mocks.service().accept(accept_request(), None).await;

        assert_eq!(
            field_codes(accepted.expect_err("refused"), "token"),
            [ErrorCode::InvalidInvitation]
        );
    }

    #[tokio::test]
    async fn a_short_password_is_refused_before_any_hashing_or_storage() {
        let mut mocks = Mocks::new();
        mocks.hasher.expect_hash().never();
        mocks.invitations.expect_token_is_open().never();
        mocks.invitations.expect_accept().never();
        let request = AcceptRequest {
            password: Input::Value("short".to_owned()),
            ..accept_request()
        };

        let accepted = mocks.service().accept(request, None).await;

        assert_eq!(
            field_codes(accepted.expect_err("refused"), "password"),
            [ErrorCode::MinLength { min: 8 }]
        );
    }

    #[tokio::test]
    async fn an_unknown_or_used_token_is_refused_before_any_hashing() {
        let mut mocks = Mocks::new();
        mocks
            .invitations
            .expect_token_is_open()
            .withf(|token, at| *token == SecretToken::presented("the-token").hash() && *at == now())
            .times(1)
            .returning(|_, _| Ok(false));
        mocks.hasher.expect_hash().never();
        mocks.invitations.expect_accept().never();

        let accepted = mocks.service().accept(accept_request(), None).await;

        assert_eq!(
            field_codes(accepted.expect_err("refused"), "token"),
            [ErrorCode::InvalidInvitation]
        );
    }

    #[tokio::test]
    async fn the_token_is_checked_before_the_password_is_hashed() {
        let mut sequence = mockall::Sequence::new();
        let mut mocks = Mocks::new();
        mocks
            .invitations
            .expect_token_is_open()
            .times(1)
            .in_sequence(&mut sequence)
            .returning(|_, _| Ok(true));
        mocks
            .hasher
            .expect_hash()
            .times(1)
            .in_sequence(&mut sequence)
            .returning(|_| Ok(PasswordHash::new("$argon2id$hash".to_owned())));
        mocks
            .invitations
            .expect_accept()
            .times(1)
            .in_sequence(&mut sequence)
            .returning(|_, _, _, _, _| Ok(user(UserId::new(30), CHILD, Role::Users)));

        let accepted = mocks.service().accept(accept_request(), None).await;

        assert!(accepted.is_ok(), "{accepted:?}");
    }

    #[tokio::test]
    async fn busy_hashing_answers_overloaded_and_accepts_nothing() {
        let mut mocks = Mocks::new().with_open_token(true);
        mocks.hasher.expect_hash().returning(|_| {
            Err(PasswordHashError::Busy {
                retry_after: Duration::seconds(1),
            })
        });
        mocks.invitations.expect_accept().never();

        let accepted = mocks.service().accept(accept_request(), None).await;

        assert_eq!(
            accepted,
            Err(UseCaseError::Overloaded {
                retry_after: Duration::seconds(1)
            })
        );
    }
}
