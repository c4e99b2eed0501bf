//! Driving ports: the use cases that the HTTP adapter and the command line call.
//!
//! Requests come in as domain inputs ([`Input`] per field, so that every
//! problem of a request is reported together); results are domain values. One error
//! type, [`UseCaseError`], crosses this boundary; adapters map it to their own terms
//! (HTTP statuses, exit codes).

use async_trait::async_trait;

use crate::Cause;
use futures::stream::BoxStream;

use domain::api_key::{ApiKey, ApiKeyRequest};
use domain::audit::{Event, EventSlice};
use domain::idempotency::{IdempotencyKey, RecordedResponse, RequestFingerprint};
use domain::invitation::{
    AcceptRequest, Invitation, InvitationPreview, InvitationStatus, InviteRequest,
};
use domain::optout::{OptOut, OptOutRecorded, OptOutRequest};
use domain::organization::{Organization, SettingsInput, UpdateMode};
use domain::pagination::{Page, PageRequest};
use domain::secret::SecretToken;
use domain::service_account::ServiceAccountRequest;
use domain::user::User;
use domain::webhook::{Delivery, Webhook, WebhookInput, WebhookSecret};
use domain::{
    Actor, ApiKeyId, DeliveryId, Duration, Input, InvitationId, Operation, OrganizationId,
    RequestId, Role, Timestamp, UserId, ValidationErrors, Version, WebhookId,
};

/// Why a request cannot be authenticated (→ 401).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthFailure {
    /// No credentials were given.
    Missing,
    /// The credentials are unknown, expired, or their user or organization is gone.
    Invalid,
}

/// What a conflict (→ 409) is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Conflict {
    /// The invitation was accepted already.
    InvitationAccepted,
    /// The invitation was revoked already.
    InvitationRevoked,
    /// Reviving the invitation would make two pending invitations for one address.
    InvitationPendingElsewhere,
    /// The change would leave a root organization without administrators.
    LastAdministrator,
}

/// The one error type of the use cases.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UseCaseError {
    /// Not authenticated.
    #[error("not authenticated: {0:?}")]
    Unauthenticated(AuthFailure),
    /// Not visible to the actor, or does not exist (→ 404).
    #[error("not found")]
    NotFound,
    /// Visible but not allowed for the actor's role (→ 403).
    #[error("forbidden")]
    Forbidden,
    /// A `read` API key tried to write (→ 403).
    #[error("this API key is read-only")]
    ReadOnlyKey,
    /// The request's values are wrong (→ 400), every problem together.
    #[error("invalid request: {0:?}")]
    Validation(ValidationErrors),
    /// A page past the end of a list (→ 404 "Invalid page.").
    #[error("invalid page")]
    InvalidPage,
    /// `If-Match` no longer matches (→ 412); nothing changed.
    #[error("precondition failed")]
    PreconditionFailed,
    /// The request conflicts with the current state (→ 409).
    #[error("conflict: {0:?}")]
    Conflict(Conflict),
    /// Too many attempts (→ 429): try again after this long.
    #[error("rate limited")]
    RateLimited {
        /// How long to wait.
        retry_after: Duration,
    },
    /// The database is unreachable (→ 503); the cause is for logs only.
    #[error("service unavailable")]
    Unavailable(#[source] Cause),
    /// Too busy to take this request now (→ 503 with `Retry-After`), for example every
    /// password-hashing slot is taken.
    #[error("overloaded; retry after {retry_after}")]
    Overloaded {
        /// How long to wait.
        retry_after: Duration,
    },
    /// A bug or corrupt data (→ 500); the cause is for logs only.
    #[error("internal error")]
    Internal(#[source] Cause),
}

impl UseCaseError {
    /// `Unavailable`, caused by `error` (an error value, or a message).
    pub fn unavailable(error: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self::Unavailable(Cause::new(error))
    }

    /// `Internal`, caused by `error` (an error value, or a message).
    pub fn internal(error: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self::Internal(Cause::new(error))
    }
}

/// A session token just issued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedSession {
    /// The token, shown once.
    pub token: SecretToken,
    /// When it stops working.
    pub expires_at: Timestamp,
}

/// Authentication and the caller's own account.
#[cfg_attr(feature = "mocks", mockall::automock)]
#[async_trait]
pub trait AuthUseCases: Send + Sync {
    /// Who holds this bearer token (an API key or a session token), for a request that
    /// does `operation`; a use of an API key is recorded (its `last_used_at`).
    ///
    /// # Errors
    /// `Unauthenticated(Invalid)` for an unknown or expired token, or one whose user or
    /// organization is gone; `ReadOnlyKey` for a `read` key and a `Write` operation.
    async fn authenticate(&self, token: &str, operation: Operation) -> Result<Actor, UseCaseError>;

    /// `authenticate` for a read, then the organization `id` as
    /// `OrganizationUseCases::get` answers it, with one round trip to the storage.
    ///
    /// # Errors
    /// Those of `authenticate`, then `NotFound` when the organization is archived,
    /// missing or not visible to the caller.
    async fn authenticated_organization(
        &self,
        token: &str,
        id: OrganizationId,
    ) -> Result<(Actor, Organization), UseCaseError>;

    /// Exchanges an identifier and password for a session token.
    ///
    /// # Errors
    /// `Validation` with the non-field `InvalidCredentials` for wrong credentials or an
    /// inactive user; `Validation` on `identifier`/`password` when they are missing.
    async fn login(
        &self,
        identifier: Input<String>,
        password: Input<String>,
    ) -> Result<IssuedSession, UseCaseError>;

    /// The actor's own user.
    ///
    /// # Errors
    /// `Unauthenticated(Invalid)` when the user is gone.
    async fn me(&self, actor: &Actor) -> Result<User, UseCaseError>;

    /// Replaces the actor's API key; the old one stops working at once.
    ///
    /// # Errors
    /// Storage failures only.
    async fn regenerate_api_key(&self, actor: &Actor) -> Result<SecretToken, UseCaseError>;

    /// The actor's API keys, newest first.
    ///
    /// # Errors
    /// `InvalidPage` past the end.
    async fn api_keys(
        &self,
        actor: &Actor,
        page: PageRequest,
    ) -> Result<Page<ApiKey>, UseCaseError>;

    /// Makes a new API key for the actor.
    ///
    /// # Errors
    /// `Validation` with every field problem, a taken name (`name`) or too many keys
    /// (non-field).
    async fn create_api_key(
        &self,
        actor: &Actor,
        request: ApiKeyRequest,
    ) -> Result<CreatedApiKey, UseCaseError>;

    /// Deletes one of the actor's API keys; it stops working at once.
    ///
    /// # Errors
    /// `NotFound` when the actor has no such key.
    async fn revoke_api_key(&self, actor: &Actor, key: ApiKeyId) -> Result<(), UseCaseError>;
}

/// An API key just made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatedApiKey {
    /// The stored key.
    pub api_key: ApiKey,
    /// The key itself, shown once.
    pub key: SecretToken,
}

/// A new service account and its `default` API key, shown once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatedServiceAccount {
    /// The new member.
    pub account: User,
    /// Its API key.
    pub api_key: SecretToken,
}

/// What the `parent` field of a request says, before it is looked up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParentLink {
    /// Absent from the request.
    Absent,
    /// `null` or an empty string.
    Blank,
    /// A value that is no organization detail URL.
    NoUrlMatch,
    /// An organization detail URL.
    Organization(OrganizationId),
}

/// The fields of a request that writes an organization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrganizationFields {
    /// `name`.
    pub name: Input<String>,
    /// `contact_email`.
    pub contact_email: Input<String>,
    /// `parent`.
    pub parent: ParentLink,
    /// `settings`.
    pub settings: Input<SettingsInput>,
}

/// Organizations as their users see them.
#[cfg_attr(feature = "mocks", mockall::automock)]
#[async_trait]
pub trait OrganizationUseCases: Send + Sync {
    /// One visible organization.
    ///
    /// # Errors
    /// `NotFound` when it is not visible.
    async fn get(&self, actor: &Actor, id: OrganizationId) -> Result<Organization, UseCaseError>;

    /// The actor's organization first, then its children.
    ///
    /// # Errors
    /// `InvalidPage` past the end.
    async fn list(
        &self,
        actor: &Actor,
        page: PageRequest,
    ) -> Result<Page<Organization>, UseCaseError>;

    /// The children of `parent` (none for a child), an organization read for this
    /// request (for example by `AuthUseCases::authenticated_organization`); its
    /// visibility is checked again.
    ///
    /// # Errors
    /// `NotFound` when it is not visible, `InvalidPage` past the end.
    async fn children(
        &self,
        actor: &Actor,
        parent: &Organization,
        page: PageRequest,
    ) -> Result<Page<Organization>, UseCaseError>;

    /// Creates a child of the actor's organization (CONTRACT §4 rules, in order).
    ///
    /// # Errors
    /// `Forbidden` for a non-administrator; `Validation` with every field problem.
    async fn create_child(
        &self,
        actor: &Actor,
        fields: OrganizationFields,
    ) -> Result<Organization, UseCaseError>;

    /// `PUT` (`Replace`) or `PATCH` (`Partial`) a visible organization.
    ///
    /// # Errors
    /// `NotFound`, `Forbidden`, `Validation`, `PreconditionFailed` when `if_match` is
    /// given and no longer matches.
    async fn update(
        &self,
        actor: &Actor,
        id: OrganizationId,
        mode: UpdateMode,
        fields: OrganizationFields,
        if_match: Option<Version>,
    ) -> Result<Organization, UseCaseError>;

    /// Archives a child of the actor's organization.
    ///
    /// # Errors
    /// `NotFound`, `Forbidden` (also for the actor's own organization),
    /// `PreconditionFailed`.
    async fn archive(
        &self,
        actor: &Actor,
        id: OrganizationId,
        if_match: Option<Version>,
    ) -> Result<(), UseCaseError>;
}

/// A user just made by accepting an invitation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcceptedInvitation {
    /// The new user.
    pub user: User,
    /// Its first API key, shown once.
    pub api_key: SecretToken,
}

/// An invitation with its status at the moment the use case answered.
///
/// The status depends on the time (a pending invitation expires), so the use case
/// computes it with its clock, the same instant it used to filter a list: callers read
/// no clock of their own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvitationView {
    /// The invitation.
    pub invitation: Invitation,
    /// Its status at the use case's now.
    pub status: InvitationStatus,
}

impl InvitationView {
    /// The invitation with its status at `now`.
    #[must_use]
    pub fn at(invitation: Invitation, now: Timestamp) -> Self {
        let status = invitation.status(now);
        Self { invitation, status }
    }
}

/// Invitations.
#[cfg_attr(feature = "mocks", mockall::automock)]
#[async_trait]
pub trait InvitationUseCases: Send + Sync {
    /// Invites an address into a visible organization and queues the e-mail.
    ///
    /// # Errors
    /// `NotFound`, `Forbidden`, `Validation` (bad fields, identifier taken, already
    /// invited).
    async fn invite(
        &self,
        actor: &Actor,
        organization: OrganizationId,
        request: InviteRequest,
    ) -> Result<InvitationView, UseCaseError>;

    /// One invitation of a visible organization.
    ///
    /// # Errors
    /// `NotFound`, `Forbidden`.
    async fn get(
        &self,
        actor: &Actor,
        organization: OrganizationId,
        invitation: InvitationId,
    ) -> Result<InvitationView, UseCaseError>;

    /// An organization's invitations, newest first, each with its status at the same
    /// now that filtered them; `status` is the raw `?status=`.
    ///
    /// # Errors
    /// `NotFound`, `Forbidden`, `Validation` on `status`, `InvalidPage`.
    async fn list(
        &self,
        actor: &Actor,
        organization: OrganizationId,
        status: Option<String>,
        page: PageRequest,
    ) -> Result<Page<InvitationView>, UseCaseError>;

    /// Sends an invitation again with a fresh token and expiry.
    ///
    /// # Errors
    /// `NotFound`, `Forbidden`, `Conflict` for an accepted or revoked invitation.
    async fn resend(
        &self,
        actor: &Actor,
        organization: OrganizationId,
        invitation: InvitationId,
    ) -> Result<InvitationView, UseCaseError>;

    /// Revokes an invitation.
    ///
    /// # Errors
    /// `NotFound`, `Forbidden`, `Conflict` for an accepted or revoked invitation.
    async fn revoke(
        &self,
        actor: &Actor,
        organization: OrganizationId,
        invitation: InvitationId,
    ) -> Result<(), UseCaseError>;

    /// What the invitation page shows of the invitation `token` opens (no authentication
    /// needed); viewing consumes nothing.
    ///
    /// # Errors
    /// `Validation` with `token` `InvalidInvitation` for a token that is malformed,
    /// unknown, used, revoked, expired or of an archived organization.
    async fn preview(&self, token: String) -> Result<InvitationPreview, UseCaseError>;

    /// Accepts an invitation: the user now exists (no authentication needed).
    /// `request_id` is recorded with the `invitation.accepted` event.
    ///
    /// # Errors
    /// `Validation` with every field problem, or `token` `InvalidInvitation`.
    async fn accept(
        &self,
        request: AcceptRequest,
        request_id: Option<RequestId>,
    ) -> Result<AcceptedInvitation, UseCaseError>;
}

/// Opt-outs.
#[cfg_attr(feature = "mocks", mockall::automock)]
#[async_trait]
pub trait OptOutUseCases: Send + Sync {
    /// Records an opt-out (created or updated), queueing a notice when the
    /// organization asks for one.
    ///
    /// # Errors
    /// `NotFound`, `Forbidden`, `Validation`.
    async fn record(
        &self,
        actor: &Actor,
        organization: OrganizationId,
        request: OptOutRequest,
    ) -> Result<OptOutRecorded, UseCaseError>;

    /// A page of opt-outs, newest first; `address` and `origin` are the raw filters.
    ///
    /// # Errors
    /// `NotFound`, `Forbidden`, `Validation` on `origin`, `InvalidPage`.
    async fn list(
        &self,
        actor: &Actor,
        organization: OrganizationId,
        address: Option<String>,
        origin: Option<String>,
        page: PageRequest,
    ) -> Result<Page<OptOut>, UseCaseError>;

    /// Every matching opt-out, streamed.
    ///
    /// # Errors
    /// `NotFound`, `Forbidden`, `Validation` on `origin` before the stream starts;
    /// storage failures inside the stream.
    async fn export(
        &self,
        actor: &Actor,
        organization: OrganizationId,
        address: Option<String>,
        origin: Option<String>,
    ) -> Result<BoxStream<'static, Result<OptOut, UseCaseError>>, UseCaseError>;
}

/// The members of organizations (CONTRACT §5b).
#[cfg_attr(feature = "mocks", mockall::automock)]
#[async_trait]
pub trait MemberUseCases: Send + Sync {
    /// A page of a visible organization's members; `role`, `identifier` and `kind` are
    /// the raw filters.
    ///
    /// # Errors
    /// `NotFound`, `Forbidden`, `Validation` on `role`, `identifier` or `kind`,
    /// `InvalidPage`.
    async fn list(
        &self,
        actor: &Actor,
        organization: OrganizationId,
        role: Option<String>,
        identifier: Option<String>,
        kind: Option<String>,
        page: PageRequest,
    ) -> Result<Page<User>, UseCaseError>;

    /// Creates a service account in a visible organization (its administrators only)
    /// with its `default` API key, shown once (CONTRACT §11).
    ///
    /// # Errors
    /// `NotFound`, `Forbidden`, `Validation` on `name` (also a name in use) and `role`.
    async fn create_service_account(
        &self,
        actor: &Actor,
        organization: OrganizationId,
        request: ServiceAccountRequest,
    ) -> Result<CreatedServiceAccount, UseCaseError>;

    /// One member of a visible organization.
    ///
    /// # Errors
    /// `NotFound`, `Forbidden`.
    async fn get(
        &self,
        actor: &Actor,
        organization: OrganizationId,
        user: UserId,
    ) -> Result<User, UseCaseError>;

    /// Changes a member's role.
    ///
    /// # Errors
    /// `NotFound`, `Forbidden`, `Validation` on `role`, `Conflict(LastAdministrator)`.
    async fn change_role(
        &self,
        actor: &Actor,
        organization: OrganizationId,
        user: UserId,
        role: Input<String>,
    ) -> Result<User, UseCaseError>;

    /// Removes a member; their credentials stop working at once.
    ///
    /// # Errors
    /// `NotFound`, `Forbidden`, `Conflict(LastAdministrator)`.
    async fn remove(
        &self,
        actor: &Actor,
        organization: OrganizationId,
        user: UserId,
    ) -> Result<(), UseCaseError>;
}

/// An organization as an operator creates it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperatorOrganization {
    /// Its name.
    pub name: String,
    /// Its contact address.
    pub contact_email: String,
    /// Its parent, for a child.
    pub parent: Option<OrganizationId>,
    /// The attach-files flag.
    pub can_attach_files: bool,
    /// The external opt-out flag.
    pub can_external_optout: bool,
}

/// A user as an operator creates it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperatorUser {
    /// Its organization.
    pub organization: OrganizationId,
    /// Its identifier.
    pub identifier: String,
    /// Its role.
    pub role: Role,
    /// Its password, if it may log in with one.
    pub password: Option<String>,
}

/// The first organization and administrator of an empty database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bootstrapped {
    /// The organization.
    pub organization: Organization,
    /// Its administrator.
    pub administrator: User,
    /// The administrator's API key, shown once.
    pub api_key: SecretToken,
}

/// What operators do from the command line (never over HTTP). Their events have no
/// actor (`actor_identifier` `operator`) and no request id.
#[cfg_attr(feature = "mocks", mockall::automock)]
#[async_trait]
pub trait OperatorUseCases: Send + Sync {
    /// Creates an organization, root or child.
    ///
    /// # Errors
    /// `Validation` for bad values or a parent that is missing or a child.
    async fn create_organization(
        &self,
        organization: OperatorOrganization,
    ) -> Result<Organization, UseCaseError>;

    /// Creates a user and returns its API key.
    ///
    /// # Errors
    /// `Validation` for bad values, a taken identifier or a missing organization.
    async fn create_user(&self, user: OperatorUser) -> Result<(User, SecretToken), UseCaseError>;

    /// Sets an organization's flags (`None` keeps one).
    ///
    /// # Errors
    /// `NotFound` for a missing or archived organization.
    async fn set_flags(
        &self,
        organization: OrganizationId,
        can_attach_files: Option<bool>,
        can_external_optout: Option<bool>,
    ) -> Result<Organization, UseCaseError>;

    /// Restores an archived organization.
    ///
    /// # Errors
    /// `NotFound` when no archived organization has this id.
    async fn restore_organization(&self, organization: OrganizationId) -> Result<(), UseCaseError>;

    /// Erases the organizations archived strictly before `before`; returns how many.
    ///
    /// # Errors
    /// Storage failures only.
    async fn purge_organizations(&self, before: Timestamp) -> Result<u64, UseCaseError>;

    /// On a database with no users, creates the first organization and administrator.
    ///
    /// # Errors
    /// Storage failures only; `Ok(None)` when users exist.
    async fn bootstrap(&self) -> Result<Option<Bootstrapped>, UseCaseError>;
}

/// What a `?actor=` filter says, before it is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberLink {
    /// A member URL (`/organizations/1/users/5/`).
    Member {
        /// The member's organization.
        organization: OrganizationId,
        /// The member.
        user: UserId,
    },
    /// A value that is no member URL.
    NoUrlMatch,
}

/// The raw filters of the audit log, as the request gives them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventQuery {
    /// `?action=`: an action, or a prefix such as `member.*`.
    pub action: Option<String>,
    /// `?actor=`.
    pub actor: Option<MemberLink>,
    /// `?since=` (ISO 8601).
    pub since: Option<String>,
    /// `?until=` (ISO 8601).
    pub until: Option<String>,
}

/// The audit log (CONTRACT §13).
#[cfg_attr(feature = "mocks", mockall::automock)]
#[async_trait]
pub trait EventUseCases: Send + Sync {
    /// A page of a visible organization's events, newest first; a root's include its
    /// children's.
    ///
    /// # Errors
    /// `NotFound` when it is not visible, `Forbidden` for a non-administrator,
    /// `Validation` on each bad filter (`action`, `actor`, `since`, `until`),
    /// `InvalidPage`.
    async fn list(
        &self,
        actor: &Actor,
        organization: OrganizationId,
        query: EventQuery,
        page: PageRequest,
    ) -> Result<Page<Event>, UseCaseError>;

    /// A keyset page of the same list (`?cursor=`, `docs/audit.md`): `size` events
    /// older than `cursor` (empty: from the newest), and the cursor of the next page.
    ///
    /// # Errors
    /// As `list`, with `Validation` on `cursor` for a bad cursor; never `InvalidPage`.
    async fn list_from(
        &self,
        actor: &Actor,
        organization: OrganizationId,
        query: EventQuery,
        cursor: String,
        size: u64,
    ) -> Result<EventSlice, UseCaseError>;
}

/// Webhooks (CONTRACT §14), for an organization's administrators.
#[cfg_attr(feature = "mocks", mockall::automock)]
#[async_trait]
pub trait WebhookUseCases: Send + Sync {
    /// Creates a webhook; its secret is returned this once.
    ///
    /// # Errors
    /// `NotFound` when the organization is not visible, `Forbidden` for a
    /// non-administrator, `Validation` on each bad field and `non_field_errors` when the
    /// organization has the most webhooks it may have.
    async fn create(
        &self,
        actor: &Actor,
        organization: OrganizationId,
        input: WebhookInput,
    ) -> Result<(Webhook, WebhookSecret), UseCaseError>;

    /// A page of an organization's webhooks.
    ///
    /// # Errors
    /// As `create`, and `InvalidPage`.
    async fn list(
        &self,
        actor: &Actor,
        organization: OrganizationId,
        page: PageRequest,
    ) -> Result<Page<Webhook>, UseCaseError>;

    /// One webhook.
    ///
    /// # Errors
    /// As `create`; `NotFound` for an unknown webhook.
    async fn get(
        &self,
        actor: &Actor,
        organization: OrganizationId,
        webhook: WebhookId,
    ) -> Result<Webhook, UseCaseError>;

    /// Changes the fields given.
    ///
    /// # Errors
    /// As `get`, and `Validation`.
    async fn update(
        &self,
        actor: &Actor,
        organization: OrganizationId,
        webhook: WebhookId,
        input: WebhookInput,
    ) -> Result<Webhook, UseCaseError>;

    /// Deletes a webhook and its deliveries.
    ///
    /// # Errors
    /// As `get`.
    async fn delete(
        &self,
        actor: &Actor,
        organization: OrganizationId,
        webhook: WebhookId,
    ) -> Result<(), UseCaseError>;

    /// Replaces a webhook's secret; the new one is returned this once.
    ///
    /// # Errors
    /// As `get`.
    async fn rotate_secret(
        &self,
        actor: &Actor,
        organization: OrganizationId,
        webhook: WebhookId,
    ) -> Result<(Webhook, WebhookSecret), UseCaseError>;

    /// A page of a webhook's deliveries, newest first.
    ///
    /// # Errors
    /// As `get`, and `InvalidPage`.
    async fn deliveries(
        &self,
        actor: &Actor,
        organization: OrganizationId,
        webhook: WebhookId,
        page: PageRequest,
    ) -> Result<Page<Delivery>, UseCaseError>;

    /// Queues a delivery again, its schedule started again.
    ///
    /// # Errors
    /// As `get`; `NotFound` for an unknown delivery.
    async fn retry_delivery(
        &self,
        actor: &Actor,
        organization: OrganizationId,
        webhook: WebhookId,
        delivery: DeliveryId,
    ) -> Result<(), UseCaseError>;
}

/// Figures for `/metrics` that only the service's insides know.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ServiceGauges {
    /// Open database connections.
    pub pool_size: u32,
    /// Idle database connections.
    pub pool_idle: u32,
    /// The most database connections.
    pub pool_max: u32,
    /// E-mails waiting in the outbox.
    pub outbox_backlog: u64,
    /// E-mails given up on.
    pub outbox_dead: u64,
    /// Webhook deliveries pending.
    pub webhook_backlog: u64,
}

/// Readiness and gauges.
#[cfg_attr(feature = "mocks", mockall::automock)]
#[async_trait]
pub trait HealthUseCases: Send + Sync {
    /// Whether the database answers.
    ///
    /// # Errors
    /// `Unavailable` when it does not.
    async fn ready(&self) -> Result<(), UseCaseError>;

    /// Current pool usage and outbox backlog.
    ///
    /// # Errors
    /// `Unavailable` when the database does not answer.
    async fn gauges(&self) -> Result<ServiceGauges, UseCaseError>;
}

/// A claimed idempotency key: the request runs, then is finished with its response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyTicket {
    /// Whose key it is.
    pub user: UserId,
    /// The key.
    pub key: IdempotencyKey,
    /// Which claim of the key this is.
    pub attempt: i64,
}

/// What to do with a request that carries an idempotency key (CONTRACT §12).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdempotentStart {
    /// The key is this request's: run it, then `finish` the ticket.
    Run(IdempotencyTicket),
    /// The same request already ran: answer its kept response again.
    Replay(RecordedResponse),
    /// The key was used for a different request (→ 422).
    KeyReused,
    /// The same request is still running (→ 409).
    InProgress,
}

/// Idempotent retries of `POST` requests: claiming a key, keeping the response.
#[cfg_attr(feature = "mocks", mockall::automock)]
#[async_trait]
pub trait IdempotencyUseCases: Send + Sync {
    /// Claims `key` of `actor` for the request `fingerprint`, or says why not.
    ///
    /// # Errors
    /// `Unavailable`/`Internal` for storage failures only.
    async fn start(
        &self,
        actor: &Actor,
        key: IdempotencyKey,
        fingerprint: RequestFingerprint,
    ) -> Result<IdempotentStart, UseCaseError>;

    /// Ends a claimed request with its response: kept for replays unless it is one that
    /// is not kept (a server error, a `429`), in which case the key is freed.
    ///
    /// # Errors
    /// `Unavailable`/`Internal` for storage failures only.
    async fn finish(
        &self,
        ticket: IdempotencyTicket,
        response: RecordedResponse,
    ) -> Result<(), UseCaseError>;

    /// Frees the key of a request that ended without a response to keep.
    ///
    /// # Errors
    /// `Unavailable`/`Internal` for storage failures only.
    async fn abandon(&self, ticket: IdempotencyTicket) -> Result<(), UseCaseError>;
}

/// Wraps the storage failure: it stays the source of the use-case error, with its own
/// cause behind it.
impl From<crate::outbound::StorageError> for UseCaseError {
    fn from(error: crate::outbound::StorageError) -> Self {
        match error {
            crate::outbound::StorageError::Unavailable(_) => UseCaseError::unavailable(error),
            crate::outbound::StorageError::Unexpected(_) => UseCaseError::internal(error),
        }
    }
}

impl From<ValidationErrors> for UseCaseError {
    fn from(errors: ValidationErrors) -> Self {
        UseCaseError::Validation(errors)
    }
}
