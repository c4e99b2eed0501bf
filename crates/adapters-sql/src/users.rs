//! `UserRepository` on every SQL backend: users, API keys and session tokens (as hashes).

use async_trait::async_trait;
use domain::audit::NewEvent;
use domain::organization::{NewOrganization, Organization, TreeNode};
use domain::secret::{CredentialKind, TokenHash};
use domain::user::{NewUser, PasswordHash, PersonName, User};
use domain::{EmailAddress, OrganizationId, Role, Timestamp, UserId};
use ports::outbound::{
    AuthenticatedUser, CreateOrganizationError, CreateUserError, LoginRecord, StorageError,
    UserRepository,
};
use sqlx::{ColumnIndex, Database, Decode, Encode, Executor, IntoArguments, Type};

use crate::events::Made;
use crate::instant::{StoredInstant, load};
use crate::{Connection, Dialect, SqlStorage, stored};
use crate::{Unique, corrupt, storage_error};

/// The columns every user query reads (qualified by `u`), in `UserRow` order.
pub(crate) const USER_COLUMNS: &str = "u.id, u.organization_id, u.identifier, u.first_name, \
     u.last_name, u.role, u.is_active, u.created_at";

/// `USER_COLUMNS` unqualified, as `returning` names them.
pub(crate) const USER_RETURNING: &str =
    "id, organization_id, identifier, first_name, last_name, role, is_active, created_at";

/// A `users` row, without secrets.
#[derive(sqlx::FromRow)]
pub(crate) struct UserRow<I> {
    id: i64,
    organization_id: i64,
    identifier: String,
    first_name: String,
    last_name: String,
    role: String,
    is_active: bool,
    created_at: I,
}

/// A stored name: blank only for users made by an operator.
fn person_name(value: &str) -> Result<PersonName, domain::ErrorCode> {
    if value.is_empty() {
        Ok(PersonName::unnamed())
    } else {
        PersonName::parse(value)
    }
}

impl<I: StoredInstant> TryFrom<UserRow<I>> for User {
    type Error = StorageError;

    fn try_from(row: UserRow<I>) -> Result<Self, StorageError> {
        let id = row.id;
        Ok(User {
            id: UserId::new(row.id),
            organization_id: OrganizationId::new(row.organization_id),
            identifier: EmailAddress::parse(&row.identifier).map_err(|e| corrupt("user", id, e))?,
            first_name: person_name(&row.first_name).map_err(|e| corrupt("user", id, e))?,
            last_name: person_name(&row.last_name).map_err(|e| corrupt("user", id, e))?,
            role: Role::parse(&row.role).map_err(|e| corrupt("user", id, e))?,
            is_active: row.is_active,
            created_at: load("user", id, row.created_at)?,
        })
    }
}

#[derive(sqlx::FromRow)]
struct AuthenticatedRow<I> {
    #[sqlx(flatten)]
    user: UserRow<I>,
    parent_id: Option<i64>,
}

#[derive(sqlx::FromRow)]
struct LoginRow<I> {
    #[sqlx(flatten)]
    user: UserRow<I>,
    password_hash: Option<String>,
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
    /// Whether a live organization has this id, locking its row (`FOR_SHARE`, or the write
    /// lock) so that it cannot be archived before the caller's transaction ends.
    pub(crate) async fn lock_live_organization(
        connection: &mut Connection<D>,
        id: OrganizationId,
    ) -> Result<bool, StorageError> {
        let found: Option<(i64,)> = sqlx::query_as(&format!(
            "select id from organizations where id = $1 and archived_at is null{}",
            D::FOR_SHARE
        ))
        .bind(id.get())
        .fetch_optional(&mut *connection)
        .await
        .map_err(storage_error::<D>)?;
        Ok(found.is_some())
    }

    /// Inserts a user and its first API key inside the caller's transaction.
    pub(crate) async fn insert_user(
        connection: &mut Connection<D>,
        user: &NewUser,
        api_key: &TokenHash,
        now: Timestamp,
    ) -> Result<User, CreateUserError> {
        let row: UserRow<D::Instant> = sqlx::query_as(&format!(
            "insert into users (organization_id, identifier, first_name, last_name, role, \
             password_hash, is_active, created_at) \
             values ($1, $2, $3, $4, $5, $6, true, $7) returning {USER_RETURNING}"
        ))
        .bind(user.organization_id.get())
        .bind(user.identifier.as_str())
        .bind(user.first_name.as_str())
        .bind(user.last_name.as_str())
        .bind(user.role.as_str())
        .bind(user.password_hash.as_ref().map(PasswordHash::as_str))
        .bind(stored::<D>(now))
        .fetch_one(&mut *connection)
        .await
        .map_err(|error| {
            if D::unique_violation(&error) == Some(Unique::UserIdentifier) {
                CreateUserError::IdentifierTaken
            } else {
                CreateUserError::Storage(storage_error::<D>(error))
            }
        })?;
        Self::insert_credential(
            connection,
            row.id,
            CredentialKind::ApiKey,
            api_key,
            now,
            None,
        )
        .await?;
        Ok(User::try_from(row)?)
    }

    async fn insert_credential(
        connection: &mut Connection<D>,
        user: i64,
        kind: CredentialKind,
        token: &TokenHash,
        created_at: Timestamp,
        expires_at: Option<Timestamp>,
    ) -> Result<(), StorageError> {
        sqlx::query(
            "insert into credentials (user_id, kind, token_hash, created_at, expires_at) \
             values ($1, $2, $3, $4, $5)",
        )
        .bind(user)
        .bind(kind.as_str())
        .bind(token.as_str())
        .bind(stored::<D>(created_at))
        .bind(expires_at.map(stored::<D>))
        .execute(&mut *connection)
        .await
        .map(drop)
        .map_err(storage_error::<D>)
    }
}

#[async_trait]
impl<D> UserRepository for SqlStorage<D>
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
    async fn authenticate(
        &self,
        token: &TokenHash,
        now: Timestamp,
    ) -> Result<Option<AuthenticatedUser>, StorageError> {
        let row: Option<AuthenticatedRow<D::Instant>> = sqlx::query_as(&format!(
            "select {USER_COLUMNS}, o.parent_id from credentials c \
             join users u on u.id = c.user_id \
             join organizations o on o.id = u.organization_id \
             where c.token_hash = $1 and (c.expires_at is null or c.expires_at > $2) \
             and u.is_active and o.archived_at is null"
        ))
        .bind(token.as_str())
        .bind(stored::<D>(now))
        .fetch_optional(&self.pool)
        .await
        .map_err(storage_error::<D>)?;
        row.map(|row| {
            let parent = row.parent_id.map(OrganizationId::new);
            let user = User::try_from(row.user)?;
            Ok(AuthenticatedUser {
                organization: TreeNode {
                    id: user.organization_id,
                    parent,
                },
                user,
            })
        })
        .transpose()
    }

    #[tracing::instrument(skip_all, fields(db.system = D::NAME), err(level = "debug"))]
    async fn find_for_login(
        &self,
        identifier: &EmailAddress,
    ) -> Result<Option<LoginRecord>, StorageError> {
        let row: Option<LoginRow<D::Instant>> = sqlx::query_as(&format!(
            "select {USER_COLUMNS}, u.password_hash from users u \
             join organizations o on o.id = u.organization_id \
             where u.identifier = $1 and o.archived_at is null"
        ))
        .bind(identifier.as_str())
        .fetch_optional(&self.pool)
        .await
        .map_err(storage_error::<D>)?;
        row.map(|row| {
            Ok(LoginRecord {
                password_hash: row.password_hash.map(PasswordHash::new),
                user: User::try_from(row.user)?,
            })
        })
        .transpose()
    }

    #[tracing::instrument(skip_all, fields(db.system = D::NAME), err(level = "debug"))]
    async fn find(&self, id: UserId) -> Result<Option<User>, StorageError> {
        let row: Option<UserRow<D::Instant>> = sqlx::query_as(&format!(
            "select {USER_COLUMNS} from users u \
             join organizations o on o.id = u.organization_id \
             where u.id = $1 and o.archived_at is null"
        ))
        .bind(id.get())
        .fetch_optional(&self.pool)
        .await
        .map_err(storage_error::<D>)?;
        row.map(User::try_from).transpose()
    }

    #[tracing::instrument(skip_all, fields(db.system = D::NAME), err(level = "debug"))]
    async fn identifier_taken(&self, identifier: &EmailAddress) -> Result<bool, StorageError> {
        let (taken,): (bool,) =
            sqlx::query_as("select exists (select 1 from users where identifier = $1)")
                .bind(identifier.as_str())
                .fetch_one(&self.pool)
                .await
                .map_err(storage_error::<D>)?;
        Ok(taken)
    }

    #[tracing::instrument(skip_all, fields(db.system = D::NAME), err(level = "debug"))]
    async fn create_session(
        &self,
        user: UserId,
        token: &TokenHash,
        created_at: Timestamp,
        expires_at: Timestamp,
    ) -> Result<(), StorageError> {
        let mut connection = self.pool.acquire().await.map_err(storage_error::<D>)?;
        Self::insert_credential(
            &mut connection,
            user.get(),
            CredentialKind::Session,
            token,
            created_at,
            Some(expires_at),
        )
        .await
    }

    #[tracing::instrument(skip_all, fields(db.system = D::NAME), err(level = "debug"))]
    async fn prune_sessions(&self, before: Timestamp) -> Result<u64, StorageError> {
        let deleted =
            sqlx::query("delete from credentials where kind = 'session' and expires_at <= $1")
                .bind(stored::<D>(before))
                .execute(&self.pool)
                .await
                .map_err(storage_error::<D>)?;
        Ok(D::rows_affected(&deleted))
    }

    #[tracing::instrument(skip_all, fields(db.system = D::NAME), err(level = "debug"))]
    async fn replace_api_key(
        &self,
        user: UserId,
        token: &TokenHash,
        now: Timestamp,
        event: NewEvent,
    ) -> Result<(), StorageError> {
        let mut transaction = self
            .pool
            .begin_with(D::BEGIN_WRITE)
            .await
            .map_err(storage_error::<D>)?;
        sqlx::query("delete from credentials where user_id = $1 and kind = 'api_key'")
            .bind(user.get())
            .execute(&mut *transaction)
            .await
            .map_err(storage_error::<D>)?;
        Self::insert_credential(
            &mut transaction,
            user.get(),
            CredentialKind::ApiKey,
            token,
            now,
            None,
        )
        .await?;
        let (organization,): (i64,) =
            sqlx::query_as("select organization_id from users where id = $1")
                .bind(user.get())
                .fetch_one(&mut *transaction)
                .await
                .map_err(storage_error::<D>)?;
        let made = Made::of(OrganizationId::new(organization));
        Self::record_event(&mut transaction, &event, made).await?;
        transaction.commit().await.map_err(storage_error::<D>)
    }

    #[tracing::instrument(skip_all, fields(db.system = D::NAME), err(level = "debug"))]
    async fn create(
        &self,
        user: NewUser,
        api_key: &TokenHash,
        now: Timestamp,
        event: NewEvent,
    ) -> Result<User, CreateUserError> {
        let mut transaction = self
            .pool
            .begin_with(D::BEGIN_WRITE)
            .await
            .map_err(storage_error::<D>)?;
        if !Self::lock_live_organization(&mut transaction, user.organization_id).await? {
            return Err(CreateUserError::OrganizationNotFound);
        }
        let created = Self::insert_user(&mut transaction, &user, api_key, now).await?;
        let made = Made {
            organization: Some(created.organization_id),
            member: Some(created.id),
            ..Made::default()
        };
        Self::record_event(&mut transaction, &event, made).await?;
        transaction.commit().await.map_err(storage_error::<D>)?;
        Ok(created)
    }

    #[tracing::instrument(skip_all, fields(db.system = D::NAME), err(level = "debug"))]
    async fn create_first_administrator(
        &self,
        organization: NewOrganization,
        administrator: NewUser,
        api_key: &TokenHash,
        now: Timestamp,
        events: Vec<NewEvent>,
    ) -> Result<Option<(Organization, User)>, StorageError> {
        let mut transaction = self
            .pool
            .begin_with(D::BEGIN_WRITE)
            .await
            .map_err(storage_error::<D>)?;
        // Racing processes queue here (on the lock, or on the write lock that
        // `BEGIN_WRITE` took); the first one's users are visible to the next.
        if let Some(lock) = D::LOCK_FIRST_ADMINISTRATOR {
            sqlx::query(lock)
                .execute(&mut *transaction)
                .await
                .map_err(storage_error::<D>)?;
        }
        let (any_user,): (bool,) = sqlx::query_as("select exists (select 1 from users)")
            .fetch_one(&mut *transaction)
            .await
            .map_err(storage_error::<D>)?;
        if any_user {
            return Ok(None);
        }
        let organization = Self::insert_organization(&mut transaction, &organization, now)
            .await
            .map_err(|error| match error {
                CreateOrganizationError::Storage(error) => error,
                other => StorageError::unexpected(other),
            })?;
        let administrator = NewUser {
            organization_id: organization.id,
            ..administrator
        };
        let administrator = Self::insert_user(&mut transaction, &administrator, api_key, now)
            .await
            .map_err(|error| match error {
                CreateUserError::Storage(error) => error,
                other => StorageError::unexpected(other),
            })?;
        let made = Made {
            organization: Some(organization.id),
            member: Some(administrator.id),
            invitation: None,
            webhook: None,
        };
        Self::record_events(&mut transaction, &events, made).await?;
        transaction.commit().await.map_err(storage_error::<D>)?;
        Ok(Some((organization, administrator)))
    }
}
