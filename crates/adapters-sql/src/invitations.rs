//! `InvitationRepository` on every SQL backend: invitations written with their e-mail, single-use
//! tokens consumed by one conditional update.

use async_trait::async_trait;
use domain::audit::NewEvent;
use domain::invitation::{
    Invitation, InvitationConflict, InvitationPreview, InvitationStatus, NewInvitation,
};
use domain::limits::{LimitKey, RateLimit};
use domain::mail::OutgoingEmail;
use domain::organization::OrganizationName;
use domain::pagination::{Page, PageRequest};
use domain::secret::TokenHash;
use domain::user::{MemberRef, NewUser, User};
use domain::{EmailAddress, InvitationId, OrganizationId, Role, Timestamp, UserId};
use ports::outbound::{
    AcceptInvitationError, AcquireError, CreateInvitationError, CreateUserError,
    InvitationChangeError, InvitationRepository, MemberProfile, StorageError,
};
use sqlx::{ColumnIndex, Database, Decode, Encode, Executor, IntoArguments, Type};

use crate::events::Made;
use crate::instant::{StoredInstant, load, load_optional};
use crate::paging::{page_bounds, page_of};
use crate::{Connection, Dialect, SqlStorage, stored};
use crate::{Unique, corrupt, storage_error};

/// Reads invitations with their inviter's organization (for the member URL).
const SELECT_INVITATION: &str = "select i.id, i.organization_id, i.identifier, i.role, \
     i.invited_by, inviter.organization_id as inviter_organization_id, i.created_at, \
     i.expires_at, i.accepted_at, i.revoked_at \
     from invitations i left join users inviter on inviter.id = i.invited_by";

/// The condition of an open invitation (neither accepted, revoked nor superseded).
const OPEN: &str = "accepted_at is null and revoked_at is null and superseded_at is null";

/// The condition for a status at `$2`, on invitations aliased `i`.
fn status_condition(status: Option<InvitationStatus>) -> &'static str {
    match status {
        None => "true",
        Some(InvitationStatus::Pending) => {
            "i.accepted_at is null and i.revoked_at is null and i.superseded_at is null \
             and i.expires_at > $2"
        }
        Some(InvitationStatus::Accepted) => "i.accepted_at is not null",
        Some(InvitationStatus::Revoked) => "i.accepted_at is null and i.revoked_at is not null",
        Some(InvitationStatus::Expired) => {
            "i.accepted_at is null and i.revoked_at is null \
             and (i.superseded_at is not null or i.expires_at <= $2)"
        }
    }
}

#[derive(sqlx::FromRow)]
struct InvitationRow<I> {
    id: i64,
    organization_id: i64,
    identifier: String,
    role: String,
    invited_by: Option<i64>,
    inviter_organization_id: Option<i64>,
    created_at: I,
    expires_at: I,
    accepted_at: Option<I>,
    revoked_at: Option<I>,
}

impl<I: StoredInstant> TryFrom<InvitationRow<I>> for Invitation {
    type Error = StorageError;

    fn try_from(row: InvitationRow<I>) -> Result<Self, StorageError> {
        let id = row.id;
        Ok(Invitation {
            id: InvitationId::new(row.id),
            organization_id: OrganizationId::new(row.organization_id),
            identifier: EmailAddress::parse(&row.identifier)
                .map_err(|e| corrupt("invitation", id, e))?,
            role: Role::parse(&row.role).map_err(|e| corrupt("invitation", id, e))?,
            invited_by: row.invited_by.zip(row.inviter_organization_id).map(
                |(user, organization)| MemberRef {
                    organization_id: OrganizationId::new(organization),
                    user_id: UserId::new(user),
                },
            ),
            created_at: load("invitation", id, row.created_at)?,
            expires_at: load("invitation", id, row.expires_at)?,
            accepted_at: load_optional("invitation", id, row.accepted_at)?,
            revoked_at: load_optional("invitation", id, row.revoked_at)?,
        })
    }
}

impl<D> SqlStorage<D>
where
    D: Dialect,
    for<'c> &'c mut Connection<D>: Executor<'c, Database = D::Db>,
    for<'q> <D::Db as Database>::Arguments<'q>: IntoArguments<'q, D::Db>,
    for<'q> i64: Encode<'q, D::Db> + Type<D::Db>,
    for<'q> bool: Encode<'q, D::Db> + Type<D::Db>,
    for<'q> &'q str: Encode<'q, D::Db> + Type<D::Db>,
    for<'q> Option<i64>: Encode<'q, D::Db>,
    for<'q> Option<bool>: Encode<'q, D::Db>,
    for<'q> Option<&'q str>: Encode<'q, D::Db>,
    for<'q> Option<D::Instant>: Encode<'q, D::Db>,
    for<'r> i64: Decode<'r, D::Db>,
    for<'r> i32: Decode<'r, D::Db> + Type<D::Db>,
    for<'r> bool: Decode<'r, D::Db>,
    for<'r> String: Decode<'r, D::Db> + Type<D::Db>,
    usize: ColumnIndex<<D::Db as Database>::Row>,
    for<'a> &'a str: ColumnIndex<<D::Db as Database>::Row>,
{
    async fn select_invitation(
        connection: &mut Connection<D>,
        id: i64,
    ) -> Result<Invitation, StorageError> {
        let row: InvitationRow<D::Instant> =
            sqlx::query_as(&format!("{SELECT_INVITATION} where i.id = $1"))
                .bind(id)
                .fetch_one(&mut *connection)
                .await
                .map_err(storage_error::<D>)?;
        Invitation::try_from(row)
    }

    /// Marks superseded the open invitations of `organization` for `identifier` that expired
    /// at `now` (but `except`), so that a new or revived one can be the open one.
    async fn supersede_expired(
        connection: &mut Connection<D>,
        organization: OrganizationId,
        identifier: &str,
        except: Option<i64>,
        now: Timestamp,
    ) -> Result<(), StorageError> {
        sqlx::query(&format!(
            "update invitations set superseded_at = $3 \
             where organization_id = $1 and identifier = $2 and {OPEN} and expires_at <= $3 \
             and ($4 is null or id <> $4)"
        ))
        .bind(organization.get())
        .bind(identifier)
        .bind(stored::<D>(now))
        .bind(except)
        .execute(&mut *connection)
        .await
        .map(drop)
        .map_err(storage_error::<D>)
    }

    /// After a conditional change of an invitation changed nothing: why.
    async fn why_unchanged(
        connection: &mut Connection<D>,
        organization: OrganizationId,
        id: InvitationId,
    ) -> Result<InvitationChangeError, StorageError> {
        let row: Option<Settled<D::Instant>> = sqlx::query_as(
            "select i.accepted_at, i.revoked_at from invitations i \
             join organizations o on o.id = i.organization_id \
             where i.id = $1 and i.organization_id = $2 and o.archived_at is null",
        )
        .bind(id.get())
        .bind(organization.get())
        .fetch_optional(&mut *connection)
        .await
        .map_err(storage_error::<D>)?;
        Ok(match row {
            None => InvitationChangeError::NotFound,
            Some((Some(_), _)) => InvitationChangeError::Conflict(InvitationConflict::Accepted),
            Some((None, Some(_))) => InvitationChangeError::Conflict(InvitationConflict::Revoked),
            Some((None, None)) => InvitationChangeError::Storage(StorageError::unexpected(
                format!("invitation {id} is open but was not changed"),
            )),
        })
    }
}

/// When an invitation was accepted and revoked, if it was.
type Settled<I> = (Option<I>, Option<I>);

/// The claimed invitation, as the acceptance needs it.
#[derive(sqlx::FromRow)]
struct ClaimedInvitation {
    id: i64,
    organization_id: i64,
    identifier: String,
    role: String,
}

#[async_trait]
impl<D> InvitationRepository for SqlStorage<D>
where
    D: Dialect,
    for<'c> &'c mut Connection<D>: Executor<'c, Database = D::Db>,
    for<'q> <D::Db as Database>::Arguments<'q>: IntoArguments<'q, D::Db>,
    for<'q> i64: Encode<'q, D::Db> + Type<D::Db>,
    for<'q> bool: Encode<'q, D::Db> + Type<D::Db>,
    for<'q> &'q str: Encode<'q, D::Db> + Type<D::Db>,
    for<'q> Option<i64>: Encode<'q, D::Db>,
    for<'q> Option<bool>: Encode<'q, D::Db>,
    for<'q> Option<&'q str>: Encode<'q, D::Db>,
    for<'q> Option<D::Instant>: Encode<'q, D::Db>,
    for<'r> i64: Decode<'r, D::Db>,
    for<'r> i32: Decode<'r, D::Db> + Type<D::Db>,
    for<'r> bool: Decode<'r, D::Db>,
    for<'r> String: Decode<'r, D::Db> + Type<D::Db>,
    usize: ColumnIndex<<D::Db as Database>::Row>,
    for<'a> &'a str: ColumnIndex<<D::Db as Database>::Row>,
{
    #[tracing::instrument(skip_all, fields(db.system = D::NAME), err(level = "debug"))]
    async fn create(
        &self,
        invitation: NewInvitation,
        email: OutgoingEmail,
        allowances: &[(LimitKey, RateLimit)],
        event: NewEvent,
    ) -> Result<Invitation, CreateInvitationError> {
        let mut transaction = self.begin_write().await.map_err(storage_error::<D>)?;
        // The allowances' locks first, before any row lock: attempts for one recipient
        // or organization queue here, and each sees what the one before it committed.
        Self::lock_keys(&mut transaction, allowances).await?;
        if !Self::lock_live_organization(&mut transaction, invitation.organization_id).await? {
            return Err(CreateInvitationError::OrganizationNotFound);
        }
        let (taken,): (bool,) =
            sqlx::query_as("select exists (select 1 from users where identifier = $1)")
                .bind(invitation.identifier.as_str())
                .fetch_one(&mut *transaction)
                .await
                .map_err(storage_error::<D>)?;
        if taken {
            return Err(CreateInvitationError::IdentifierTaken);
        }
        Self::supersede_expired(
            &mut transaction,
            invitation.organization_id,
            invitation.identifier.as_str(),
            None,
            invitation.created_at,
        )
        .await?;
        let (id,): (i64,) = sqlx::query_as(
            "insert into invitations (organization_id, identifier, role, invited_by, token_hash, \
             created_at, expires_at) values ($1, $2, $3, $4, $5, $6, $7) returning id",
        )
        .bind(invitation.organization_id.get())
        .bind(invitation.identifier.as_str())
        .bind(invitation.role.as_str())
        .bind(invitation.invited_by.get())
        .bind(invitation.token_hash.as_str())
        .bind(stored::<D>(invitation.created_at))
        .bind(stored::<D>(invitation.expires_at))
        .fetch_one(&mut *transaction)
        .await
        .map_err(|error| {
            if D::unique_violation(&error) == Some(Unique::OneOpenInvitation) {
                CreateInvitationError::AlreadyInvited
            } else {
                CreateInvitationError::Storage(storage_error::<D>(error))
            }
        })?;
        // Counted only once the invitation is known to be accepted: a refused one
        // takes no allowance, and the events become visible only with it, at commit.
        Self::take_locked(&mut transaction, allowances, invitation.created_at)
            .await
            .map_err(|error| match error {
                AcquireError::Limited(reached) => CreateInvitationError::Limited(reached),
                AcquireError::Storage(error) => CreateInvitationError::Storage(error),
            })?;
        Self::enqueue(&mut transaction, &email, invitation.created_at).await?;
        let made = Made {
            organization: Some(invitation.organization_id),
            invitation: Some(InvitationId::new(id)),
            ..Made::default()
        };
        Self::record_event(&mut transaction, &event, made).await?;
        let created = Self::select_invitation(&mut transaction, id).await?;
        transaction.commit().await.map_err(storage_error::<D>)?;
        Ok(created)
    }

    #[tracing::instrument(skip_all, fields(db.system = D::NAME), err(level = "debug"))]
    async fn token_is_open(&self, token: &TokenHash, now: Timestamp) -> Result<bool, StorageError> {
        let (open,): (bool,) = on_pool!(
            self,
            sqlx::query_as(
                "select exists (select 1 from invitations i \
             join organizations o on o.id = i.organization_id \
             where i.token_hash = $1 and i.accepted_at is null and i.revoked_at is null \
             and i.superseded_at is null and i.expires_at > $2 and o.archived_at is null)",
            )
            .bind(token.as_str())
            .bind(stored::<D>(now)),
            fetch_one
        )
        .map_err(storage_error::<D>)?;
        Ok(open)
    }

    #[tracing::instrument(skip_all, fields(db.system = D::NAME), err(level = "debug"))]
    async fn preview(
        &self,
        token: &TokenHash,
        now: Timestamp,
    ) -> Result<Option<InvitationPreview>, StorageError> {
        // The conditions of `token_is_open`: the page shows only what acceptance would take.
        let row: Option<(i64, String, String, String, Option<String>)> = on_pool!(
            self,
            sqlx::query_as(
                "select i.id, o.name, i.role, i.identifier, inviter.identifier \
             from invitations i join organizations o on o.id = i.organization_id \
             left join users inviter on inviter.id = i.invited_by \
             where i.token_hash = $1 and i.accepted_at is null and i.revoked_at is null \
             and i.superseded_at is null and i.expires_at > $2 and o.archived_at is null",
            )
            .bind(token.as_str())
            .bind(stored::<D>(now)),
            fetch_optional
        )
        .map_err(storage_error::<D>)?;
        row.map(|(id, name, role, identifier, inviter)| {
            Ok(InvitationPreview {
                organization_name: OrganizationName::parse(&name)
                    .map_err(|e| corrupt("invitation", id, e))?,
                role: Role::parse(&role).map_err(|e| corrupt("invitation", id, e))?,
                identifier: EmailAddress::parse(&identifier)
                    .map_err(|e| corrupt("invitation", id, e))?,
                invited_by: inviter
                    .map(|inviter| EmailAddress::parse(&inviter))
                    .transpose()
                    .map_err(|e| corrupt("invitation", id, e))?,
            })
        })
        .transpose()
    }

    #[tracing::instrument(skip_all, fields(db.system = D::NAME), err(level = "debug"))]
    async fn find(
        &self,
        organization: OrganizationId,
        id: InvitationId,
    ) -> Result<Option<Invitation>, StorageError> {
        let row: Option<InvitationRow<D::Instant>> = on_pool!(
            self,
            sqlx::query_as(&format!(
                "{SELECT_INVITATION} join organizations o on o.id = i.organization_id \
             where i.id = $1 and i.organization_id = $2 and o.archived_at is null"
            ))
            .bind(id.get())
            .bind(organization.get()),
            fetch_optional
        )
        .map_err(storage_error::<D>)?;
        row.map(Invitation::try_from).transpose()
    }

    #[tracing::instrument(skip_all, fields(db.system = D::NAME), err(level = "debug"))]
    async fn list(
        &self,
        organization: OrganizationId,
        status: Option<InvitationStatus>,
        now: Timestamp,
        page: PageRequest,
    ) -> Result<Page<Invitation>, StorageError> {
        let (limit, offset) = page_bounds(page);
        let condition = status_condition(status);
        let now = stored::<D>(now);
        let (total,): (i64,) =
            on_pool!(self, sqlx::query_as(&format!(
            "select count(*) from invitations i where i.organization_id = $1 and {condition}"
        ))
        .bind(organization.get())
        .bind(now), fetch_one)
            .map_err(storage_error::<D>)?;
        let rows: Vec<InvitationRow<D::Instant>> = on_pool!(
            self,
            sqlx::query_as(&format!(
                "{SELECT_INVITATION} where i.organization_id = $1 and {condition} \
             order by i.created_at desc, i.id desc limit $3 offset $4"
            ))
            .bind(organization.get())
            .bind(now)
            .bind(limit)
            .bind(offset),
            fetch_all
        )
        .map_err(storage_error::<D>)?;
        page_of(rows, total, page)
    }

    #[tracing::instrument(skip_all, fields(db.system = D::NAME), err(level = "debug"))]
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
    ) -> Result<Invitation, InvitationChangeError> {
        let mut transaction = self.begin_write().await.map_err(storage_error::<D>)?;
        Self::lock_keys(&mut transaction, allowances).await?;
        let identifier: Option<(String,)> = sqlx::query_as(
            "select identifier from invitations where id = $1 and organization_id = $2",
        )
        .bind(id.get())
        .bind(organization.get())
        .fetch_optional(&mut *transaction)
        .await
        .map_err(storage_error::<D>)?;
        let Some((identifier,)) = identifier else {
            return Err(InvitationChangeError::NotFound);
        };
        Self::supersede_expired(
            &mut transaction,
            organization,
            &identifier,
            Some(id.get()),
            now,
        )
        .await?;
        let revived: Option<(i64,)> = sqlx::query_as(
            "update invitations set token_hash = $3, expires_at = $4, superseded_at = null \
             where invitations.id = $1 and invitations.organization_id = $2 \
             and invitations.accepted_at is null and invitations.revoked_at is null \
             and exists (select 1 from organizations o \
                 where o.id = invitations.organization_id and o.archived_at is null) \
             returning id",
        )
        .bind(id.get())
        .bind(organization.get())
        .bind(token.as_str())
        .bind(stored::<D>(expires_at))
        .fetch_optional(&mut *transaction)
        .await
        .map_err(|error| {
            if D::unique_violation(&error) == Some(Unique::OneOpenInvitation) {
                InvitationChangeError::AnotherPending
            } else {
                InvitationChangeError::Storage(storage_error::<D>(error))
            }
        })?;
        if revived.is_none() {
            return Err(Self::why_unchanged(&mut transaction, organization, id).await?);
        }
        Self::take_locked(&mut transaction, allowances, now)
            .await
            .map_err(|error| match error {
                AcquireError::Limited(reached) => InvitationChangeError::Limited(reached),
                AcquireError::Storage(error) => InvitationChangeError::Storage(error),
            })?;
        Self::enqueue(&mut transaction, &email, now).await?;
        Self::record_event(&mut transaction, &event, Made::of(organization)).await?;
        let invitation = Self::select_invitation(&mut transaction, id.get()).await?;
        transaction.commit().await.map_err(storage_error::<D>)?;
        Ok(invitation)
    }

    #[tracing::instrument(skip_all, fields(db.system = D::NAME), err(level = "debug"))]
    async fn revoke(
        &self,
        organization: OrganizationId,
        id: InvitationId,
        now: Timestamp,
        event: NewEvent,
    ) -> Result<(), InvitationChangeError> {
        let mut transaction = self.begin_write().await.map_err(storage_error::<D>)?;
        let revoked = sqlx::query(
            "update invitations set revoked_at = $3 \
             where invitations.id = $1 and invitations.organization_id = $2 \
             and invitations.accepted_at is null and invitations.revoked_at is null \
             and exists (select 1 from organizations o \
                 where o.id = invitations.organization_id and o.archived_at is null)",
        )
        .bind(id.get())
        .bind(organization.get())
        .bind(stored::<D>(now))
        .execute(&mut *transaction)
        .await
        .map_err(storage_error::<D>)?;
        if D::rows_affected(&revoked) == 0 {
            return Err(Self::why_unchanged(&mut transaction, organization, id).await?);
        }
        Self::record_event(&mut transaction, &event, Made::of(organization)).await?;
        transaction.commit().await.map_err(storage_error::<D>)?;
        Ok(())
    }

    #[tracing::instrument(skip_all, fields(db.system = D::NAME), err(level = "debug"))]
    async fn accept(
        &self,
        token: &TokenHash,
        now: Timestamp,
        profile: MemberProfile,
        api_key: &domain::api_key::KeyMaterial,
        event: NewEvent,
    ) -> Result<User, AcceptInvitationError> {
        let mut transaction = self.begin_write().await.map_err(storage_error::<D>)?;
        // One conditional update takes the token: of concurrent attempts, the others
        // wait for this row (or for the write lock) and then find it accepted.
        let claimed: Option<ClaimedInvitation> = sqlx::query_as(
            "update invitations set accepted_at = $2 \
             where invitations.token_hash = $1 and invitations.accepted_at is null \
             and invitations.revoked_at is null and invitations.superseded_at is null \
             and invitations.expires_at > $2 \
             and exists (select 1 from organizations o \
                 where o.id = invitations.organization_id and o.archived_at is null) \
             returning id, organization_id, identifier, role",
        )
        .bind(token.as_str())
        .bind(stored::<D>(now))
        .fetch_optional(&mut *transaction)
        .await
        .map_err(storage_error::<D>)?;
        let Some(claimed) = claimed else {
            return Err(AcceptInvitationError::InvalidToken);
        };
        // Archiving the organization waits for this lock (`FOR_SHARE`, or the write
        // lock), or wins it first and is seen here: no active user is created in an
        // archived organization.
        let organization = OrganizationId::new(claimed.organization_id);
        if !Self::lock_live_organization(&mut transaction, organization).await? {
            return Err(AcceptInvitationError::InvalidToken);
        }
        let user = NewUser {
            organization_id: organization,
            identifier: EmailAddress::parse(&claimed.identifier)
                .map_err(|e| corrupt("invitation", claimed.id, e))?,
            first_name: profile.first_name,
            last_name: profile.last_name,
            role: Role::parse(&claimed.role).map_err(|e| corrupt("invitation", claimed.id, e))?,
            password_hash: Some(profile.password_hash),
        };
        let user = Self::insert_user(&mut transaction, &user, api_key, now)
            .await
            .map_err(|error| match error {
                CreateUserError::IdentifierTaken => AcceptInvitationError::IdentifierTaken,
                CreateUserError::OrganizationNotFound => AcceptInvitationError::InvalidToken,
                CreateUserError::Storage(error) => AcceptInvitationError::Storage(error),
            })?;
        let made = Made {
            organization: Some(organization),
            member: Some(user.id),
            invitation: Some(InvitationId::new(claimed.id)),
            webhook: None,
        };
        Self::record_event(&mut transaction, &event, made).await?;
        transaction.commit().await.map_err(storage_error::<D>)?;
        Ok(user)
    }
}
