//! Driven ports: what the use cases need from the outside world.
//!
//! Every repository method is one atomic unit of work, named after what the use case
//! needs; invariants (unique identifiers, one pending invitation per address and
//! organization, single-use tokens, depth two) are held by the storage itself, so that
//! they hold with many processes on one database. No storage type appears here.
//!
//! A method that changes something takes the audit event(s) the use case built for the
//! change (`domain::audit::NewEvent`) and stores them in the same transaction: no change
//! without its event, no event without its change (CONTRACT §13, `docs/audit.md`).

use async_trait::async_trait;

use crate::Cause;

use domain::api_key::{ApiKey, KeyMaterial, KeyRefusal, NewApiKey, Scope};
use domain::audit::{Event, EventFilter, NewEvent};
use domain::idempotency::{IdempotencyKey, RecordedResponse, RequestFingerprint};
use domain::invitation::{
    Invitation, InvitationConflict, InvitationPreview, InvitationStatus, NewInvitation,
};
use domain::limits::{EventWindow, LimitKey, LimitReached, RateLimit};
use domain::mail::OutgoingEmail;
use domain::member::MemberFilter;
use domain::optout::{OptOut, OptOutFilter, OptOutRecorded};
use domain::organization::{NewOrganization, Organization, TreeNode};

use domain::pagination::{Page, PageRequest};
use domain::secret::{SecretToken, TokenHash};
use domain::service_account::NewServiceAccount;
use domain::user::{NewUser, Password, PasswordHash, PersonName, User};
use domain::webhook::{Delivery, DeliveryStatus, Endpoint, Webhook, WebhookFields, WebhookSecret};
use domain::{
    ApiKeyId, DeliveryId, Duration, EmailAddress, EventId, InvitationId, OrganizationId,
    OutboxMessageId, RateEventId, Role, Timestamp, UserId, Version, WebhookId,
};

/// A storage failure that no business rule explains.
///
/// It keeps the underlying error (a driver's error, or a message where there is none) as
/// its [`source`](std::error::Error::source): logs show it with
/// [`ErrorChain`](crate::ErrorChain), the API's answers never.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StorageError {
    /// The database cannot be reached or refused the connection (→ 503).
    #[error("storage unavailable")]
    Unavailable(#[source] Cause),
    /// Anything else: a bug or corrupt data (→ 500).
    #[error("unexpected storage error")]
    Unexpected(#[source] Cause),
}

impl StorageError {
    /// `Unavailable`, caused by `error` (an error value, or a message).
    pub fn unavailable(error: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self::Unavailable(Cause::new(error))
    }

    /// `Unexpected`, caused by `error` (an error value, or a message).
    pub fn unexpected(error: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self::Unexpected(Cause::new(error))
    }
}

/// Why a new organization could not be stored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CreateOrganizationError {
    /// The parent does not exist or is archived.
    #[error("the parent organization does not exist")]
    ParentNotFound,
    /// The parent is itself a child: the tree is two levels deep.
    #[error("the parent organization already has a parent")]
    ParentIsChild,
    /// A storage failure.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Why a change to a stored row was not made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WriteError {
    /// No such live row (or, for an archive, no such live child).
    #[error("not found")]
    NotFound,
    /// The row's version is no longer the expected one (→ 412); nothing changed.
    #[error("the version no longer matches")]
    VersionMismatch,
    /// A storage failure.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Organizations: the tree, its settings, archiving.
///
/// "Live" means not archived: archived organizations are invisible to every method
/// but `restore` and `purge_archived_before`.
#[cfg_attr(feature = "mocks", mockall::automock)]
#[async_trait]
pub trait OrganizationRepository: Send + Sync {
    /// A live organization.
    ///
    /// # Errors
    /// `StorageError` only; a missing organization is `Ok(None)`.
    async fn find(&self, id: OrganizationId) -> Result<Option<Organization>, StorageError>;

    /// A page of the organizations visible from `root`: `root` first, then its live
    /// children by id.
    ///
    /// # Errors
    /// `StorageError` only.
    async fn list_visible(
        &self,
        root: OrganizationId,
        page: PageRequest,
    ) -> Result<Page<Organization>, StorageError>;

    /// A page of the live children of `parent`, by id.
    ///
    /// # Errors
    /// `StorageError` only.
    async fn list_children(
        &self,
        parent: OrganizationId,
        page: PageRequest,
    ) -> Result<Page<Organization>, StorageError>;

    /// Stores a new organization (root or child) with version 1.
    ///
    /// # Errors
    /// MUST return `ParentNotFound` when the parent is missing or archived and
    /// `ParentIsChild` when the parent has a parent, checked by the storage in the same
    /// transaction as the insert. `event` (`organization.created`) is stored with it.
    async fn create(
        &self,
        organization: NewOrganization,
        now: Timestamp,
        event: NewEvent,
    ) -> Result<Organization, CreateOrganizationError>;

    /// Writes `name`, `contact_email` and `settings` of a live organization and bumps
    /// its version, if its version is still `expected` (any version when `None`).
    ///
    /// # Errors
    /// MUST return `NotFound` for a missing or archived organization and
    /// `VersionMismatch` when the version moved on; nothing is written then. `event`
    /// (`organization.updated`; `None` when no value changed) is stored with the change.
    async fn update(
        &self,
        organization: &Organization,
        expected: Option<Version>,
        now: Timestamp,
        event: Option<NewEvent>,
    ) -> Result<Organization, WriteError>;

    /// Archives a live child organization, if its version is still `expected`: from then
    /// on it, its users' credentials and its invitations are invisible. Nothing is erased.
    ///
    /// # Errors
    /// MUST return `NotFound` for a missing, archived or root organization and
    /// `VersionMismatch` when the version moved on.
    async fn archive_child(
        &self,
        id: OrganizationId,
        expected: Option<Version>,
        now: Timestamp,
        event: NewEvent,
    ) -> Result<(), WriteError>;

    /// Restores an archived organization: it, its users, their unexpired sessions and
    /// its unexpired pending invitations work again.
    ///
    /// # Errors
    /// MUST return `NotFound` when no archived organization has this id.
    async fn restore(
        &self,
        id: OrganizationId,
        now: Timestamp,
        event: NewEvent,
    ) -> Result<(), WriteError>;

    /// Erases for good the organizations archived strictly before `before`, with
    /// everything they own (their events included), in one transaction. Returns how
    /// many were erased.
    ///
    /// # Errors
    /// `StorageError` only.
    async fn purge_archived_before(&self, before: Timestamp) -> Result<u64, StorageError>;

    /// Sets the operator-only flags of a live organization (`None` keeps a flag).
    ///
    /// # Errors
    /// MUST return `NotFound` for a missing or archived organization.
    async fn set_flags(
        &self,
        id: OrganizationId,
        can_attach_files: Option<bool>,
        can_external_optout: Option<bool>,
        now: Timestamp,
        event: Option<NewEvent>,
    ) -> Result<Organization, WriteError>;
}

/// A user together with its organization's place in the tree: who is calling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthenticatedUser {
    /// The user.
    pub user: User,
    /// Its organization.
    pub organization: TreeNode,
    /// What the credential may do (`Write` for a session token).
    pub scope: Scope,
    /// The API key used, `None` for a session token: its use is recorded.
    pub api_key: Option<ApiKeyId>,
}

/// Who holds a credential, as much as a request needs: the user, its role, its
/// organization's place in the tree, the credential's scope and API key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caller {
    /// The user.
    pub user_id: UserId,
    /// Its role.
    pub role: Role,
    /// Its organization.
    pub organization: TreeNode,
    /// What the credential may do (`Write` for a session token).
    pub scope: Scope,
    /// The API key used, `None` for a session token: its use is recorded.
    pub api_key: Option<ApiKeyId>,
}

impl From<AuthenticatedUser> for Caller {
    fn from(authenticated: AuthenticatedUser) -> Self {
        Self {
            user_id: authenticated.user.id,
            role: authenticated.user.role,
            organization: authenticated.organization,
            scope: authenticated.scope,
            api_key: authenticated.api_key,
        }
    }
}

/// One recorded use of an API key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyUse {
    /// The key.
    pub key: ApiKeyId,
    /// When it was used.
    pub at: Timestamp,
}

/// Why an API key could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CreateApiKeyError {
    /// A rule of `domain::api_key::check_key_allowance` refuses it.
    #[error(transparent)]
    Refused(#[from] KeyRefusal),
    /// The user is gone.
    #[error("the user does not exist")]
    UserNotFound,
    /// A storage failure.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// A user as needed to check a password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginRecord {
    /// The user (of a live organization).
    pub user: User,
    /// Its password hash; `None` for users that log in with API keys only.
    pub password_hash: Option<PasswordHash>,
}

/// Why a user could not be stored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CreateUserError {
    /// A user (of any organization, archived ones included) has this identifier.
    #[error("a user with this identifier already exists")]
    IdentifierTaken,
    /// The organization does not exist or is archived.
    #[error("the organization does not exist")]
    OrganizationNotFound,
    /// A storage failure.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Users and their credentials (API keys and session tokens, stored as hashes).
#[cfg_attr(feature = "mocks", mockall::automock)]
#[async_trait]
pub trait UserRepository: Send + Sync {
    /// The user holding this credential: an API key or a session token not expired at
    /// `now`, of an active user of a live organization, with the credential's scope.
    ///
    /// # Errors
    /// `StorageError` only; an unknown credential is `Ok(None)`.
    async fn authenticate(
        &self,
        token: &TokenHash,
        now: Timestamp,
    ) -> Result<Option<AuthenticatedUser>, StorageError>;

    /// `authenticate` (as a `Caller`) and the live organization `organization` (as
    /// `OrganizationRepository::find` reads it) in one round trip to the storage: the
    /// holder of the credential, and the organization when it exists and is not archived.
    ///
    /// # Errors
    /// `StorageError` only; an unknown credential is `Ok(None)`.
    async fn authenticate_with_organization(
        &self,
        token: &TokenHash,
        now: Timestamp,
        organization: OrganizationId,
    ) -> Result<Option<(Caller, Option<Organization>)>, StorageError>;

    /// The user with this identifier, if it belongs to a live organization.
    ///
    /// # Errors
    /// `StorageError` only.
    async fn find_for_login(
        &self,
        identifier: &EmailAddress,
    ) -> Result<Option<LoginRecord>, StorageError>;

    /// A user of a live organization.
    ///
    /// # Errors
    /// `StorageError` only.
    async fn find(&self, id: UserId) -> Result<Option<User>, StorageError>;

    /// Whether any user, archived organizations included, has this identifier.
    ///
    /// # Errors
    /// `StorageError` only.
    async fn identifier_taken(&self, identifier: &EmailAddress) -> Result<bool, StorageError>;

    /// Stores a session token for a user.
    ///
    /// # Errors
    /// `StorageError` only.
    async fn create_session(
        &self,
        user: UserId,
        token: &TokenHash,
        created_at: Timestamp,
        expires_at: Timestamp,
    ) -> Result<(), StorageError>;

    /// Deletes the session tokens that expired at or before `before`; returns how many.
    /// API keys are kept, expired ones too: their owners still see them listed.
    ///
    /// # Errors
    /// `StorageError` only.
    async fn prune_sessions(&self, before: Timestamp) -> Result<u64, StorageError>;

    /// Replaces the user's key named `default` with a new `default` write key that never
    /// expires, at once (made when the user has none); other keys and sessions are kept.
    ///
    /// # Errors
    /// `StorageError` only.
    async fn replace_api_key(
        &self,
        user: UserId,
        key: &KeyMaterial,
        now: Timestamp,
        event: NewEvent,
    ) -> Result<(), StorageError>;

    /// A page of the user's API keys (expired ones included), newest first.
    ///
    /// # Errors
    /// `StorageError` only.
    async fn list_api_keys(
        &self,
        user: UserId,
        page: PageRequest,
    ) -> Result<Page<ApiKey>, StorageError>;

    /// Stores a new API key for a user, in one transaction under a lock on the user:
    /// the user's live keys at `now` (expired ones are deleted there) are checked by
    /// `domain::api_key::check_key_allowance`, so that parallel requests cannot pass the
    /// limit or share a name. `event` (`api_key.created`) is stored in the same transaction;
    /// a refused key stores none.
    ///
    /// # Errors
    /// MUST return `Refused` as that rule says and `UserNotFound` for a missing user.
    async fn create_api_key(
        &self,
        user: UserId,
        key: NewApiKey,
        now: Timestamp,
        event: NewEvent,
    ) -> Result<ApiKey, CreateApiKeyError>;

    /// Deletes one of the user's API keys: it stops working at once. `event`
    /// (`api_key.revoked`) is stored in the same transaction, its `changes` set to what
    /// `Changes::of_api_key` records of the deleted key (only the storage sees it); a key
    /// that is not the user's stores none.
    ///
    /// # Errors
    /// MUST return `NotFound` when the user has no such key.
    async fn revoke_api_key(
        &self,
        user: UserId,
        key: ApiKeyId,
        event: NewEvent,
    ) -> Result<(), WriteError>;

    /// Records when keys were last used, in one statement, keeping for each key the
    /// latest of the stored and the given instant (so that several processes flushing
    /// out of order never move it back). Unknown keys are skipped.
    ///
    /// # Errors
    /// `StorageError` only.
    async fn record_key_uses(&self, uses: &[KeyUse]) -> Result<(), StorageError>;

    /// Stores a new active user with its first API key, named `default`.
    ///
    /// # Errors
    /// MUST return `IdentifierTaken` for a taken identifier (checked by a unique
    /// constraint) and `OrganizationNotFound` for a missing or archived organization.
    async fn create(
        &self,
        user: NewUser,
        api_key: &KeyMaterial,
        now: Timestamp,
        event: NewEvent,
    ) -> Result<User, CreateUserError>;

    /// On a database with no users at all, stores a first root organization and its
    /// administrator with an API key, in one transaction; returns `None` (and stores
    /// nothing) when any user exists, also when several processes race.
    ///
    /// # Errors
    /// `StorageError` only.
    async fn create_first_administrator(
        &self,
        organization: NewOrganization,
        administrator: NewUser,
        api_key: &KeyMaterial,
        now: Timestamp,
        events: Vec<NewEvent>,
    ) -> Result<Option<(Organization, User)>, StorageError>;
}

/// Why an invitation could not be stored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CreateInvitationError {
    /// A user already has the identifier.
    #[error("a user with this identifier already exists")]
    IdentifierTaken,
    /// A pending invitation for the identifier exists in this organization.
    #[error("this identifier has already been invited")]
    AlreadyInvited,
    /// The organization does not exist or is archived.
    #[error("the organization does not exist")]
    OrganizationNotFound,
    /// An allowance is used up (→ 429); nothing was stored or counted.
    #[error(transparent)]
    Limited(#[from] LimitReached),
    /// A storage failure.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Why an invitation could not be resent or revoked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvitationChangeError {
    /// No such invitation in this live organization.
    #[error("not found")]
    NotFound,
    /// It was accepted or revoked meanwhile (→ 409).
    #[error(transparent)]
    Conflict(#[from] InvitationConflict),
    /// Reviving it would make a second pending invitation for its address (→ 409).
    #[error("another invitation for this identifier is pending")]
    AnotherPending,
    /// An allowance is used up (→ 429); nothing was changed or counted.
    #[error(transparent)]
    Limited(#[from] LimitReached),
    /// A storage failure.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Why an invitation could not be accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AcceptInvitationError {
    /// The token is unknown, revoked, used, expired, or its organization is archived.
    #[error("invalid or expired invitation")]
    InvalidToken,
    /// A user took the identifier since the invitation was made.
    #[error("a user with this identifier already exists")]
    IdentifierTaken,
    /// A storage failure.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// The new member's profile, given at acceptance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberProfile {
    /// First name.
    pub first_name: PersonName,
    /// Last name.
    pub last_name: PersonName,
    /// Argon2id hash of the chosen password.
    pub password_hash: PasswordHash,
}

/// Invitations, each written with its e-mail in one transaction.
#[cfg_attr(feature = "mocks", mockall::automock)]
#[async_trait]
pub trait InvitationRepository: Send + Sync {
    /// Stores a pending invitation, queues its e-mail in the outbox and takes one event
    /// of each of `allowances` (as `RateLimitStore::acquire` would), atomically: a
    /// refused invitation counts nothing, not even for a moment that another attempt
    /// could see. Expired invitations for the same address block nothing.
    ///
    /// # Errors
    /// MUST return `IdentifierTaken` when a user has the identifier, `AlreadyInvited`
    /// when a pending invitation for it exists in the organization (also under
    /// concurrent attempts: exactly one of them succeeds, and the others are
    /// `AlreadyInvited`, never `Limited`), `OrganizationNotFound` for a missing or
    /// archived organization, and only then `Limited` with the longest wait when an
    /// allowance is used up.
    async fn create(
        &self,
        invitation: NewInvitation,
        email: OutgoingEmail,
        allowances: &[(LimitKey, RateLimit)],
        event: NewEvent,
    ) -> Result<Invitation, CreateInvitationError>;

    /// Whether `token` opens a pending invitation of a live organization at `now`: the
    /// cheap check made before any password is hashed for an acceptance.
    ///
    /// # Errors
    /// `StorageError` only.
    async fn token_is_open(&self, token: &TokenHash, now: Timestamp) -> Result<bool, StorageError>;

    /// What the invitation page shows of the invitation `token` opens, in one read that
    /// consumes nothing: `None` unless it is pending at `now` in a live organization (the
    /// conditions of `token_is_open`).
    ///
    /// # Errors
    /// `StorageError` only.
    async fn preview(
        &self,
        token: &TokenHash,
        now: Timestamp,
    ) -> Result<Option<InvitationPreview>, StorageError>;

    /// An invitation of a live organization.
    ///
    /// # Errors
    /// `StorageError` only.
    async fn find(
        &self,
        organization: OrganizationId,
        id: InvitationId,
    ) -> Result<Option<Invitation>, StorageError>;

    /// A page of an organization's invitations, newest first, optionally only those
    /// with `status` at `now`.
    ///
    /// # Errors
    /// `StorageError` only.
    async fn list(
        &self,
        organization: OrganizationId,
        status: Option<InvitationStatus>,
        now: Timestamp,
        page: PageRequest,
    ) -> Result<Page<Invitation>, StorageError>;

    /// Gives a pending or expired invitation a new token and expiry, queues its new
    /// e-mail and takes one event of each of `allowances`, atomically; the old token
    /// stops working. `now` decides which other invitations for the address have
    /// expired, and is when the allowances are taken.
    ///
    /// # Errors
    /// MUST return `NotFound`, `Conflict` when it is accepted or revoked (checked in the
    /// update itself), `AnotherPending` when reviving it would make two pending ones,
    /// and only then `Limited` with the longest wait when an allowance is used up.
    #[allow(clippy::too_many_arguments)]
    async fn resend(
        &self,
        organization: OrganizationId,
        id: InvitationId,
        token: &TokenHash,
        expires_at: Timestamp,
        now: Timestamp,
        email: OutgoingEmail,
        allowances: &[(LimitKey, RateLimit)],
        event: NewEvent,
    ) -> Result<Invitation, InvitationChangeError>;

    /// Revokes a pending or expired invitation.
    ///
    /// # Errors
    /// MUST return `NotFound`, or `Conflict` when it is accepted or revoked (checked in
    /// the update itself).
    async fn revoke(
        &self,
        organization: OrganizationId,
        id: InvitationId,
        now: Timestamp,
        event: NewEvent,
    ) -> Result<(), InvitationChangeError>;

    /// Consumes a pending token and creates the invited user with its first API key, in
    /// one transaction: the token is taken by one conditional update, so that under
    /// concurrent attempts exactly one succeeds.
    ///
    /// # Errors
    /// MUST return `InvalidToken` for a token that is unknown, revoked, used, expired at
    /// `now` or of an archived organization, and `IdentifierTaken` when a user has the
    /// identifier (the token is then not consumed).
    async fn accept(
        &self,
        token: &TokenHash,
        now: Timestamp,
        profile: MemberProfile,
        api_key: &KeyMaterial,
        event: NewEvent,
    ) -> Result<User, AcceptInvitationError>;
}

/// Opt-outs: compliance data, kept when their organization is archived.
#[cfg_attr(feature = "mocks", mockall::automock)]
#[async_trait]
pub trait OptOutRepository: Send + Sync {
    /// Records an opt-out: inserts it, or updates the origin and date of the existing
    /// one for the same organization and address. When it is new and `notice` is
    /// given, the notice is queued in the outbox in the same transaction.
    ///
    /// # Errors
    /// `StorageError` only.
    async fn record(
        &self,
        opt_out: OptOut,
        notice: Option<OutgoingEmail>,
        event: NewEvent,
    ) -> Result<OptOutRecorded, StorageError>;

    /// A page of an organization's opt-outs, newest first.
    ///
    /// # Errors
    /// `StorageError` only.
    async fn list(
        &self,
        organization: OrganizationId,
        filter: OptOutFilter,
        page: PageRequest,
    ) -> Result<Page<OptOut>, StorageError>;

    /// One page of an export: at most `limit` matching opt-outs in the list order
    /// (newest first: `creation_date`, then id, both descending), starting just after
    /// `after` (from the first row when `None`). The page is read with one short use of a
    /// connection, released before it returns, so that a slow reader of the export holds
    /// no connection (CONTRACT §9).
    ///
    /// # Errors
    /// `StorageError` only.
    async fn export_page(
        &self,
        organization: OrganizationId,
        filter: OptOutFilter,
        after: Option<OptOutCursor>,
        limit: u32,
    ) -> Result<OptOutExportPage, StorageError>;
}

/// A position in the opt-out list order: the sort key of the last row of a page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OptOutCursor {
    /// The row's creation date.
    pub creation_date: Timestamp,
    /// The row's id, which orders rows of the same date.
    pub id: i64,
}

/// One page of an opt-out export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OptOutExportPage {
    /// The rows, in the list order.
    pub rows: Vec<OptOut>,
    /// Where the next page starts; `None` when this page was the last (it held fewer
    /// rows than asked).
    pub next: Option<OptOutCursor>,
}

/// Why a member could not be changed or removed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MemberChangeError {
    /// No such user in this live organization.
    #[error("not found")]
    NotFound,
    /// The change would leave a root organization without administrators (→ 409).
    #[error("an organization must keep at least one administrator")]
    LastAdministrator,
    /// The requester is no longer an administrator of the organization or its parent.
    #[error("the requester may not manage this organization's members")]
    Forbidden,
    /// A storage failure.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Why a service account could not be stored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CreateServiceAccountError {
    /// The organization has a service account of this name.
    #[error("a service account with this name already exists")]
    NameTaken,
    /// The organization does not exist or is archived.
    #[error("the organization does not exist")]
    OrganizationNotFound,
    /// The requester's current standing no longer allows it.
    #[error("the requester may not create service accounts here")]
    Forbidden,
    /// A storage failure.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// The members of organizations.
#[cfg_attr(feature = "mocks", mockall::automock)]
#[async_trait]
pub trait MemberRepository: Send + Sync {
    /// A page of the users of a live organization, by id.
    ///
    /// # Errors
    /// `StorageError` only.
    async fn list(
        &self,
        organization: OrganizationId,
        filter: MemberFilter,
        page: PageRequest,
    ) -> Result<Page<User>, StorageError>;

    /// A user of a live organization.
    ///
    /// # Errors
    /// `StorageError` only.
    async fn find(
        &self,
        organization: OrganizationId,
        user: UserId,
    ) -> Result<Option<User>, StorageError>;

    /// Gives a member a new role, in one transaction under a lock on the organization:
    /// first the last-administrator rule (`domain::member::check_keeps_administrator`),
    /// then the requester's right, decided by `domain::permissions::recheck` on the
    /// requester's standing read (and locked) in that transaction (still an active
    /// administrator of the organization or of its parent), then the change. Two administrators demoting each other at
    /// once: one succeeds, the other gets `LastAdministrator`.
    ///
    /// # Errors
    /// MUST return `NotFound`, `LastAdministrator` or `Forbidden` as above.
    async fn change_role(
        &self,
        organization: OrganizationId,
        user: UserId,
        role: Role,
        requester: UserId,
        now: Timestamp,
        event: Option<NewEvent>,
    ) -> Result<User, MemberChangeError>;

    /// Stores a service account (no password), its `default` API key (`write` scope) and
    /// `event` (target: the new member), in one transaction, in a live organization.
    /// The name is unique within the organization, held by the database under
    /// concurrency.
    ///
    /// # Errors
    /// MUST return `NameTaken` for a name in use in the organization (also when another
    /// request takes it at the same moment), `OrganizationNotFound` for a missing or
    /// archived organization, and `Forbidden` when the requester's current standing (read
    /// under a lock held until the commit) no longer allows creating it
    /// (`domain::permissions::recheck`).
    async fn create_service_account(
        &self,
        account: NewServiceAccount,
        api_key: &KeyMaterial,
        now: Timestamp,
        event: NewEvent,
    ) -> Result<User, CreateServiceAccountError>;

    /// Removes a member with all their API keys and sessions, under the same lock and
    /// checks as `change_role`; their identifier is free again.
    ///
    /// # Errors
    /// MUST return `NotFound`, `LastAdministrator` or `Forbidden` as in `change_role`.
    async fn remove(
        &self,
        organization: OrganizationId,
        user: UserId,
        requester: UserId,
        event: NewEvent,
    ) -> Result<(), MemberChangeError>;
}

/// The audit log (CONTRACT §13): events are written by the methods above, each with
/// its change; this port reads and prunes them.
#[cfg_attr(feature = "mocks", mockall::automock)]
#[async_trait]
pub trait EventRepository: Send + Sync {
    /// A page of the events of `organization`, newest first (by id, descending): for a
    /// root, also those of its children, archived ones included.
    ///
    /// # Errors
    /// `StorageError` only.
    async fn list(
        &self,
        organization: TreeNode,
        filter: EventFilter,
        page: PageRequest,
    ) -> Result<Page<Event>, StorageError>;

    /// A keyset page of the events of `organization` (the same scope and filter as
    /// `list`), newest first: at most `limit` events with ids strictly below `below`
    /// (all ids when `None`). No count: the read is an index range scan of `limit` rows
    /// wherever the page is.
    ///
    /// # Errors
    /// `StorageError` only.
    async fn list_below(
        &self,
        organization: TreeNode,
        filter: EventFilter,
        below: Option<EventId>,
        limit: u64,
    ) -> Result<Vec<Event>, StorageError>;

    /// Deletes the events made strictly before `before`; returns how many.
    ///
    /// # Errors
    /// `StorageError` only.
    async fn prune(&self, before: Timestamp) -> Result<u64, StorageError>;
}

/// Why events could not be acquired.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AcquireError {
    /// A limit is reached; nothing was recorded.
    #[error(transparent)]
    Limited(#[from] LimitReached),
    /// A storage failure.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Counted events for the abuse limits, kept in the database so that several processes
/// enforce one limit.
#[cfg_attr(feature = "mocks", mockall::automock)]
#[async_trait]
pub trait RateLimitStore: Send + Sync {
    /// The events of `key` strictly after `since`.
    ///
    /// # Errors
    /// `StorageError` only.
    async fn window(&self, key: &LimitKey, since: Timestamp) -> Result<EventWindow, StorageError>;

    /// Records one event of `key`.
    ///
    /// # Errors
    /// `StorageError` only.
    async fn record(&self, key: &LimitKey, at: Timestamp) -> Result<RateEventId, StorageError>;

    /// Atomically (also across processes): when every key has fewer events than its
    /// limit in the window that ends at `at`, records one event for each and returns
    /// their ids; otherwise records nothing.
    ///
    /// # Errors
    /// MUST return `Limited` with the longest wait among the reached limits.
    async fn acquire(
        &self,
        limits: &[(LimitKey, RateLimit)],
        at: Timestamp,
    ) -> Result<Vec<RateEventId>, AcquireError>;

    /// Gives events back, when what they allowed did not happen.
    ///
    /// # Errors
    /// `StorageError` only.
    async fn release(&self, events: &[RateEventId]) -> Result<(), StorageError>;

    /// Forgets the events at or before `before`; returns how many.
    ///
    /// # Errors
    /// `StorageError` only.
    async fn prune(&self, before: Timestamp) -> Result<u64, StorageError>;
}

/// What a claim of an idempotency key found (CONTRACT §12).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdempotencyClaim {
    /// The key is now this request's: run it, then `complete` or `release` this
    /// `attempt` (it counts the claims of the key, so that a claim another one took over
    /// changes nothing).
    Claimed {
        /// Which claim of the key this is.
        attempt: i64,
    },
    /// Another request holds the key and its lease has not run out, or has finished.
    Held {
        /// The fingerprint of the request that holds it.
        fingerprint: RequestFingerprint,
        /// Its response, once it finished; `None` while it runs.
        response: Option<RecordedResponse>,
    },
}

/// The claims of idempotency keys and the responses kept for replays (CONTRACT §12), in
/// the database, so that every process honours the same keys.
#[cfg_attr(feature = "mocks", mockall::automock)]
#[async_trait]
pub trait IdempotencyStore: Send + Sync {
    /// Atomically (also across processes) claims `key` of `user` for the request
    /// `fingerprint`, unless a live claim holds it: the key is free when it was never
    /// used, when its claim expired (`expires_at` at or before `now`), or when the claim of
    /// the same fingerprint is unfinished and its lease ran out (`locked_until` at or
    /// before `now`: its process died). A new claim holds until `locked_until` while it
    /// runs and is forgotten at `expires_at`.
    ///
    /// # Errors
    /// `StorageError` only.
    async fn claim(
        &self,
        user: UserId,
        key: &IdempotencyKey,
        fingerprint: &RequestFingerprint,
        now: Timestamp,
        locked_until: Timestamp,
        expires_at: Timestamp,
    ) -> Result<IdempotencyClaim, StorageError>;

    /// Keeps `response` for the unfinished claim `attempt` of `key`, until `expires_at`.
    /// Returns whether it was kept: `false` when that claim is finished, released or was
    /// taken over.
    ///
    /// # Errors
    /// `StorageError` only.
    async fn complete(
        &self,
        user: UserId,
        key: &IdempotencyKey,
        attempt: i64,
        response: &RecordedResponse,
        expires_at: Timestamp,
    ) -> Result<bool, StorageError>;

    /// Frees `key` when its unfinished claim is still `attempt`, so that a retry runs.
    ///
    /// # Errors
    /// `StorageError` only.
    async fn release(
        &self,
        user: UserId,
        key: &IdempotencyKey,
        attempt: i64,
    ) -> Result<(), StorageError>;

    /// Forgets the keys that expired at or before `now`; returns how many.
    ///
    /// # Errors
    /// `StorageError` only.
    async fn prune(&self, now: Timestamp) -> Result<u64, StorageError>;
}

/// A queued e-mail, as one claim returned it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxMessage {
    /// Its id.
    pub id: OutboxMessageId,
    /// Which claim of the message returned it: every claim counts one more, so that a
    /// claim whose lease another claim took over can tell (`OutboxLease`).
    pub claim: i64,
    /// The e-mail.
    pub email: OutgoingEmail,
    /// How many deliveries were tried before this one.
    pub attempts: u32,
    /// When it was queued.
    pub created_at: Timestamp,
}

impl OutboxMessage {
    /// The lease this claim holds on the message.
    #[must_use]
    pub fn lease(&self) -> OutboxLease {
        OutboxLease {
            id: self.id,
            claim: self.claim,
        }
    }
}

/// One claim's hold on one message: only the latest claim of a message may extend its
/// lease or record its outcome (`docs/outbox.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutboxLease {
    /// The message.
    pub id: OutboxMessageId,
    /// The claim's number, as `OutboxMessage::claim`.
    pub claim: i64,
}

/// Why a leased outbox operation did nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LeaseError {
    /// Another claim took the message over after this lease ran out (or the message is
    /// already delivered, dead or gone): nothing was changed.
    #[error("the lease on outbox message {} (claim {claim}) was lost to another claim", id.get())]
    Lost {
        /// The message.
        id: OutboxMessageId,
        /// The claim that lost it.
        claim: i64,
    },
    /// A storage failure.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl LeaseError {
    /// `Lost` for this lease.
    #[must_use]
    pub fn lost(lease: OutboxLease) -> Self {
        Self::Lost {
            id: lease.id,
            claim: lease.claim,
        }
    }
}

/// The durable e-mail outbox, filled by the repositories above in the transactions
/// that cause e-mails, emptied by the delivery worker.
///
/// Once a message is delivered or dead its subject and bodies (which hold an
/// invitation's token) are blanked in the same update: no token stays at rest
/// (CONTRACT §9).
#[cfg_attr(feature = "mocks", mockall::automock)]
#[async_trait]
pub trait Outbox: Send + Sync {
    /// Claims up to `limit` messages due at `now` for `lease`: no other claim returns
    /// them until the lease ends (so that a crashed worker's messages come back). Each
    /// returned message carries a new claim number.
    ///
    /// # Errors
    /// `StorageError` only.
    async fn claim_due(
        &self,
        now: Timestamp,
        limit: u32,
        lease: Duration,
    ) -> Result<Vec<OutboxMessage>, StorageError>;

    /// Extends a lease until `locked_until`, if it is still the message's latest claim
    /// and the message is neither delivered nor dead (also when the lease ran out but
    /// nobody claimed the message since).
    ///
    /// # Errors
    /// `Lost` when another claim took the message over (nothing changes), `Storage`.
    async fn renew_lease(
        &self,
        lease: OutboxLease,
        locked_until: Timestamp,
    ) -> Result<(), LeaseError>;

    /// Marks a message delivered and blanks its subject and bodies.
    ///
    /// # Errors
    /// `Lost` when another claim took the message over (nothing changes), `Storage`.
    async fn mark_delivered(&self, lease: OutboxLease, now: Timestamp) -> Result<(), LeaseError>;

    /// Records a failed attempt and when to try again.
    ///
    /// # Errors
    /// `Lost` when another claim took the message over (nothing changes), `Storage`.
    async fn mark_failed(
        &self,
        lease: OutboxLease,
        next_attempt_at: Timestamp,
        error: &str,
    ) -> Result<(), LeaseError>;

    /// Gives up on a message: it stays, marked dead with its error but with its subject
    /// and bodies blanked, and is never claimed again.
    ///
    /// # Errors
    /// `Lost` when another claim took the message over (nothing changes), `Storage`.
    async fn mark_dead(
        &self,
        lease: OutboxLease,
        now: Timestamp,
        error: &str,
    ) -> Result<(), LeaseError>;

    /// Deletes the messages delivered or dead at or before `before`; returns how many.
    /// Messages still waiting are never deleted.
    ///
    /// # Errors
    /// `StorageError` only.
    async fn prune(&self, before: Timestamp) -> Result<u64, StorageError>;

    /// How many messages wait for delivery (neither delivered nor dead).
    ///
    /// # Errors
    /// `StorageError` only.
    async fn backlog(&self) -> Result<u64, StorageError>;

    /// How many messages were given up on (dead) and not yet pruned.
    ///
    /// # Errors
    /// `StorageError` only.
    async fn dead(&self) -> Result<u64, StorageError>;
}

/// Whether a delivery failure is worth retrying; either keeps the underlying error as
/// its source.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MailError {
    /// The server is away or answered 4xx: try again later.
    #[error("temporary delivery failure")]
    Transient(#[source] Cause),
    /// The server refused for good (5xx, bad recipient): do not retry.
    #[error("permanent delivery failure")]
    Permanent(#[source] Cause),
}

impl MailError {
    /// `Transient`, caused by `error` (an error value, or a message).
    pub fn transient(error: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self::Transient(Cause::new(error))
    }

    /// `Permanent`, caused by `error` (an error value, or a message).
    pub fn permanent(error: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self::Permanent(Cause::new(error))
    }

    /// The underlying error.
    #[must_use]
    pub fn cause(&self) -> &Cause {
        match self {
            Self::Transient(cause) | Self::Permanent(cause) => cause,
        }
    }
}

/// Sends one e-mail.
#[cfg_attr(feature = "mocks", mockall::automock)]
#[async_trait]
pub trait Mailer: Send + Sync {
    /// Delivers the e-mail.
    ///
    /// # Errors
    /// `Transient` for failures worth retrying, `Permanent` otherwise.
    async fn send(&self, email: &OutgoingEmail) -> Result<(), MailError>;
}

/// The time.
#[cfg_attr(feature = "mocks", mockall::automock)]
pub trait Clock: Send + Sync {
    /// Now.
    fn now(&self) -> Timestamp;
}

/// Random secrets.
#[cfg_attr(feature = "mocks", mockall::automock)]
pub trait SecretGenerator: Send + Sync {
    /// A new secret of at least 128 random bits from a cryptographic source.
    fn generate(&self) -> SecretToken;
}

/// Why a password could not be hashed or checked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordHashError {
    /// Every hashing slot stayed busy for as long as a caller may wait (→ 503 with
    /// `Retry-After`); nothing was computed.
    #[error("password hashing is busy; retry after {retry_after}")]
    Busy {
        /// How long to wait before trying again.
        retry_after: Duration,
    },
    /// Hashing failed (bad parameters); the cause is for logs only.
    #[error("password hashing failed")]
    Failed(#[source] Cause),
}

impl PasswordHashError {
    /// `Failed`, caused by `error` (an error value, or a message).
    pub fn failed(error: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self::Failed(Cause::new(error))
    }
}

/// Password hashing (Argon2id). Async because hashing is slow by design and must not
/// block request handling; an implementation runs a bounded number of hashes at once,
/// so that no flood of requests can exhaust memory (CONTRACT §9).
#[cfg_attr(feature = "mocks", mockall::automock)]
#[async_trait]
pub trait PasswordHasher: Send + Sync {
    /// Hashes a new password with a fresh salt.
    ///
    /// # Errors
    /// `Busy` when no hashing slot frees up in time, `Failed` when hashing fails.
    async fn hash(&self, password: &Password) -> Result<PasswordHash, PasswordHashError>;

    /// Whether `password` matches `hash`. A malformed hash matches nothing.
    ///
    /// # Errors
    /// `Busy` when no hashing slot frees up in time.
    async fn verify(
        &self,
        password: &Password,
        hash: &PasswordHash,
    ) -> Result<bool, PasswordHashError>;

    /// A well-formed hash of no one's password, made with the parameters of `hash`:
    /// verifying against it costs what verifying against a stored hash costs, so a
    /// login for an unknown identifier takes as long as one with a wrong password.
    fn decoy_hash(&self) -> PasswordHash;
}

/// Whether the database answers, for `/readyz`.
#[cfg_attr(feature = "mocks", mockall::automock)]
#[async_trait]
pub trait StorageHealth: Send + Sync {
    /// Runs a trivial query.
    ///
    /// # Errors
    /// `StorageError` when the database does not answer.
    async fn ping(&self) -> Result<(), StorageError>;

    /// The connection pool's current size and idle connections, for `/metrics`.
    fn pool_usage(&self) -> PoolUsage;
}

/// A connection pool's usage.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PoolUsage {
    /// Open connections.
    pub size: u32,
    /// Open connections not in use.
    pub idle: u32,
    /// The most connections the pool opens.
    pub max: u32,
}

/// Why a webhook could not be created.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CreateWebhookError {
    /// The organization already has [`domain::webhook::MAX_WEBHOOKS`] webhooks.
    #[error("the organization has too many webhooks")]
    TooMany,
    /// A storage failure.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Webhooks and their deliveries (CONTRACT §14). Deliveries are queued by the methods
/// that record events, in the same transaction: one per active webhook of the event's
/// organization (or of its root) whose patterns match (`docs/webhooks.md`).
#[cfg_attr(feature = "mocks", mockall::automock)]
#[async_trait]
pub trait WebhookRepository: Send + Sync {
    /// Stores a new webhook of `organization` with its `webhook.created` event (whose
    /// target is `ThisWebhook`), if the organization has fewer than the most it may have.
    ///
    /// # Errors
    /// `TooMany` when it has them already; `Storage` otherwise.
    async fn create(
        &self,
        organization: OrganizationId,
        fields: WebhookFields,
        secret: &WebhookSecret,
        event: NewEvent,
    ) -> Result<Webhook, CreateWebhookError>;

    /// A page of the webhooks of `organization`, oldest first.
    ///
    /// # Errors
    /// `StorageError` only.
    async fn list(
        &self,
        organization: OrganizationId,
        page: PageRequest,
    ) -> Result<Page<Webhook>, StorageError>;

    /// One webhook of `organization`.
    ///
    /// # Errors
    /// `StorageError` only.
    async fn find(
        &self,
        organization: OrganizationId,
        webhook: WebhookId,
    ) -> Result<Option<Webhook>, StorageError>;

    /// Saves `webhook`'s endpoint, events, description and state, with its event if any.
    /// An inactive webhook's pending deliveries are dropped in the same transaction.
    /// `false` when the webhook no longer exists.
    ///
    /// # Errors
    /// `StorageError` only.
    async fn update(
        &self,
        webhook: &Webhook,
        event: Option<NewEvent>,
    ) -> Result<bool, StorageError>;

    /// Deletes a webhook of `organization` and its deliveries, with its event. `false`
    /// when it does not exist.
    ///
    /// # Errors
    /// `StorageError` only.
    async fn delete(
        &self,
        organization: OrganizationId,
        webhook: WebhookId,
        event: NewEvent,
    ) -> Result<bool, StorageError>;

    /// Replaces a webhook's secret, with its event. `false` when it does not exist.
    ///
    /// # Errors
    /// `StorageError` only.
    async fn rotate_secret(
        &self,
        organization: OrganizationId,
        webhook: WebhookId,
        secret: &WebhookSecret,
        event: NewEvent,
    ) -> Result<bool, StorageError>;

    /// A page of a webhook's deliveries, newest first.
    ///
    /// # Errors
    /// `StorageError` only.
    async fn deliveries(
        &self,
        webhook: WebhookId,
        page: PageRequest,
    ) -> Result<Page<Delivery>, StorageError>;

    /// Queues a delivery of `webhook` again, due at `now`, its attempts counted from
    /// zero. `false` when it does not exist.
    ///
    /// # Errors
    /// `StorageError` only.
    async fn retry_delivery(
        &self,
        webhook: WebhookId,
        delivery: DeliveryId,
        now: Timestamp,
    ) -> Result<bool, StorageError>;
}

/// A delivery claimed by a worker, with what sending it needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueDelivery {
    /// The delivery.
    pub id: DeliveryId,
    /// The claim's number: only the latest claim may settle the delivery.
    pub claim: i64,
    /// Attempts made before this one.
    pub attempts: u32,
    /// Where to send it.
    pub endpoint: Endpoint,
    /// The webhook's current secret.
    pub secret: WebhookSecret,
    /// The event.
    pub event: Event,
}

/// What an attempt came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryOutcome {
    /// `Delivered`, `Pending` (retried at `next_attempt_at`) or `Failed`.
    pub status: DeliveryStatus,
    /// When the attempt ended: a `Delivered` or `Failed` delivery counts its retention
    /// (`ORGS_WEBHOOK_RETENTION`) from it.
    pub at: Timestamp,
    /// The answer's HTTP status, if one came.
    pub status_code: Option<u16>,
    /// Why it failed without an answer.
    pub error: Option<String>,
    /// The next attempt, for `Pending`.
    pub next_attempt_at: Option<Timestamp>,
}

/// The webhook delivery queue, emptied by the webhook worker.
#[cfg_attr(feature = "mocks", mockall::automock)]
#[async_trait]
pub trait DeliveryQueue: Send + Sync {
    /// Claims up to `limit` pending deliveries due at `now` of active webhooks, each for
    /// `lease`: no other claim takes them until the lease ends.
    ///
    /// # Errors
    /// `StorageError` only.
    async fn claim_due(
        &self,
        now: Timestamp,
        limit: u32,
        lease: Duration,
    ) -> Result<Vec<DueDelivery>, StorageError>;

    /// Records an attempt's outcome (one more attempt) if `claim` is still the
    /// delivery's latest and it is still pending; `false` otherwise.
    ///
    /// # Errors
    /// `StorageError` only.
    async fn settle(
        &self,
        delivery: DeliveryId,
        claim: i64,
        outcome: DeliveryOutcome,
    ) -> Result<bool, StorageError>;

    /// Ends the lease of a claim that sends nothing more (the worker is stopping), so
    /// that another worker may take the delivery at once; nothing when `claim` is no
    /// longer the latest.
    ///
    /// # Errors
    /// `StorageError` only.
    async fn release(&self, delivery: DeliveryId, claim: i64) -> Result<(), StorageError>;

    /// How many deliveries are pending.
    ///
    /// # Errors
    /// `StorageError` only.
    async fn backlog(&self) -> Result<u64, StorageError>;

    /// Deletes the deliveries delivered or failed strictly before `before`; returns how
    /// many. Pending deliveries are never deleted.
    ///
    /// # Errors
    /// `StorageError` only.
    async fn prune(&self, before: Timestamp) -> Result<u64, StorageError>;
}

/// One signed POST of an event to a webhook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookRequest {
    /// Where.
    pub endpoint: Endpoint,
    /// `webhook-id`: `evt_<event id>`.
    pub id: String,
    /// `webhook-timestamp`: Unix seconds.
    pub timestamp: i64,
    /// The JSON body.
    pub body: String,
    /// The key that signs it.
    pub secret: WebhookSecret,
}

/// Why a webhook got no answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct WebhookSendError(pub String);

/// Outgoing webhook HTTP: signs, sends without following redirects, and refuses
/// destinations that `domain::webhook::address_allowed` refuses (unless told not to).
#[cfg_attr(feature = "mocks", mockall::automock)]
#[async_trait]
pub trait WebhookSender: Send + Sync {
    /// Sends one request; the answer's status, whatever it is.
    ///
    /// # Errors
    /// No answer in time, a refused address, a connection failure.
    async fn send(&self, request: &WebhookRequest) -> Result<u16, WebhookSendError>;
}
