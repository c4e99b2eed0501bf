//! `UserRepository` on SQLite: users, API keys and session tokens (as hashes).

use async_trait::async_trait;
use domain::organization::{NewOrganization, Organization, TreeNode};
use domain::secret::{CredentialKind, TokenHash};
use domain::user::{NewUser, PasswordHash, PersonName, User};
use domain::{EmailAddress, OrganizationId, Role, Timestamp, UserId};
use ports::outbound::{
    AuthenticatedUser, CreateOrganizationError, CreateUserError, LoginRecord, StorageError,
    UserRepository,
};
use sqlx::SqliteConnection;

use crate::SqliteStorage;
use crate::errors::{corrupt, is_unique_violation, storage_error};
use crate::organizations::insert_organization;
use crate::time::{micros, timestamp};

/// The columns every user query reads (qualified by `u`), in `UserRow` order.
pub(crate) const USER_COLUMNS: &str = "u.id, u.organization_id, u.identifier, u.first_name, \
     u.last_name, u.role, u.is_active, u.created_at";

/// A `users` row, without secrets.
#[derive(sqlx::FromRow)]
pub(crate) struct UserRow {
    id: i64,
    organization_id: i64,
    identifier: String,
    first_name: String,
    last_name: String,
    role: String,
    is_active: bool,
    created_at: i64,
}

/// A stored name: blank only for users made by an operator.
fn person_name(value: &str) -> Result<PersonName, domain::ErrorCode> {
    if value.is_empty() {
        Ok(PersonName::unnamed())
    } else {
        PersonName::parse(value)
    }
}

impl TryFrom<UserRow> for User {
    type Error = StorageError;

    fn try_from(row: UserRow) -> Result<Self, StorageError> {
        let id = row.id;
        Ok(User {
            id: UserId::new(row.id),
            organization_id: OrganizationId::new(row.organization_id),
            identifier: EmailAddress::parse(&row.identifier).map_err(|e| corrupt("user", id, e))?,
            first_name: person_name(&row.first_name).map_err(|e| corrupt("user", id, e))?,
            last_name: person_name(&row.last_name).map_err(|e| corrupt("user", id, e))?,
            role: Role::parse(&row.role).map_err(|e| corrupt("user", id, e))?,
            is_active: row.is_active,
            created_at: timestamp("user", id, row.created_at)?,
        })
    }
}

#[derive(sqlx::FromRow)]
struct AuthenticatedRow {
    #[sqlx(flatten)]
    user: UserRow,
    parent_id: Option<i64>,
}

#[derive(sqlx::FromRow)]
struct LoginRow {
    #[sqlx(flatten)]
    user: UserRow,
    password_hash: Option<String>,
}

/// Whether a live organization has this id. Inside an immediate transaction no other
/// write (an archive) can come between this check and the caller's commit.
pub(crate) async fn live_organization(
    connection: &mut SqliteConnection,
    id: OrganizationId,
) -> Result<bool, StorageError> {
    let found: Option<(i64,)> =
        sqlx::query_as("select id from organizations where id = $1 and archived_at is null")
            .bind(id.get())
            .fetch_optional(&mut *connection)
            .await
            .map_err(storage_error)?;
    Ok(found.is_some())
}

/// Inserts a user and its first API key inside the caller's transaction.
pub(crate) async fn insert_user(
    connection: &mut SqliteConnection,
    user: &NewUser,
    api_key: &TokenHash,
    now: Timestamp,
) -> Result<User, CreateUserError> {
    let row: UserRow = sqlx::query_as(
        "insert into users (organization_id, identifier, first_name, last_name, role, \
         password_hash, is_active, created_at) \
         values ($1, $2, $3, $4, $5, $6, 1, $7) \
         returning id, organization_id, identifier, first_name, last_name, role, is_active, \
         created_at",
    )
    .bind(user.organization_id.get())
    .bind(user.identifier.as_str())
    .bind(user.first_name.as_str())
    .bind(user.last_name.as_str())
    .bind(user.role.as_str())
    .bind(user.password_hash.as_ref().map(PasswordHash::as_str))
    .bind(micros(now))
    .fetch_one(&mut *connection)
    .await
    .map_err(|error| {
        if is_unique_violation(&error, "users.identifier") {
            CreateUserError::IdentifierTaken
        } else {
            CreateUserError::Storage(storage_error(error))
        }
    })?;
    insert_credential(
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
    connection: &mut SqliteConnection,
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
    .bind(micros(created_at))
    .bind(expires_at.map(micros))
    .execute(&mut *connection)
    .await
    .map(drop)
    .map_err(storage_error)
}

#[async_trait]
impl UserRepository for SqliteStorage {
    #[tracing::instrument(skip_all, err(level = "debug"))]
    async fn authenticate(
        &self,
        token: &TokenHash,
        now: Timestamp,
    ) -> Result<Option<AuthenticatedUser>, StorageError> {
        let row: Option<AuthenticatedRow> = sqlx::query_as(&format!(
            "select {USER_COLUMNS}, o.parent_id from credentials c \
             join users u on u.id = c.user_id \
             join organizations o on o.id = u.organization_id \
             where c.token_hash = $1 and (c.expires_at is null or c.expires_at > $2) \
             and u.is_active and o.archived_at is null"
        ))
        .bind(token.as_str())
        .bind(micros(now))
        .fetch_optional(&self.pool)
        .await
        .map_err(storage_error)?;
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

    #[tracing::instrument(skip_all, err(level = "debug"))]
    async fn find_for_login(
        &self,
        identifier: &EmailAddress,
    ) -> Result<Option<LoginRecord>, StorageError> {
        let row: Option<LoginRow> = sqlx::query_as(&format!(
            "select {USER_COLUMNS}, u.password_hash from users u \
             join organizations o on o.id = u.organization_id \
             where u.identifier = $1 and o.archived_at is null"
        ))
        .bind(identifier.as_str())
        .fetch_optional(&self.pool)
        .await
        .map_err(storage_error)?;
        row.map(|row| {
            Ok(LoginRecord {
                password_hash: row.password_hash.map(PasswordHash::new),
                user: User::try_from(row.user)?,
            })
        })
        .transpose()
    }

    #[tracing::instrument(skip_all, err(level = "debug"))]
    async fn find(&self, id: UserId) -> Result<Option<User>, StorageError> {
        let row: Option<UserRow> = sqlx::query_as(&format!(
            "select {USER_COLUMNS} from users u \
             join organizations o on o.id = u.organization_id \
             where u.id = $1 and o.archived_at is null"
        ))
        .bind(id.get())
        .fetch_optional(&self.pool)
        .await
        .map_err(storage_error)?;
        row.map(User::try_from).transpose()
    }

    #[tracing::instrument(skip_all, err(level = "debug"))]
    async fn identifier_taken(&self, identifier: &EmailAddress) -> Result<bool, StorageError> {
        let (taken,): (bool,) =
            sqlx::query_as("select exists (select 1 from users where identifier = $1)")
                .bind(identifier.as_str())
                .fetch_one(&self.pool)
                .await
                .map_err(storage_error)?;
        Ok(taken)
    }

    #[tracing::instrument(skip_all, err(level = "debug"))]
    async fn create_session(
        &self,
        user: UserId,
        token: &TokenHash,
        created_at: Timestamp,
        expires_at: Timestamp,
    ) -> Result<(), StorageError> {
        let mut connection = self.pool.acquire().await.map_err(storage_error)?;
        insert_credential(
            &mut connection,
            user.get(),
            CredentialKind::Session,
            token,
            created_at,
            Some(expires_at),
        )
        .await
    }

    #[tracing::instrument(skip_all, err(level = "debug"))]
    async fn prune_sessions(&self, before: Timestamp) -> Result<u64, StorageError> {
        let deleted =
            sqlx::query("delete from credentials where kind = 'session' and expires_at <= $1")
                .bind(micros(before))
                .execute(&self.pool)
                .await
                .map_err(storage_error)?;
        Ok(deleted.rows_affected())
    }

    #[tracing::instrument(skip_all, err(level = "debug"))]
    async fn replace_api_key(
        &self,
        user: UserId,
        token: &TokenHash,
        now: Timestamp,
    ) -> Result<(), StorageError> {
        let mut transaction = self.write_transaction().await?;
        sqlx::query("delete from credentials where user_id = $1 and kind = 'api_key'")
            .bind(user.get())
            .execute(&mut *transaction)
            .await
            .map_err(storage_error)?;
        insert_credential(
            &mut transaction,
            user.get(),
            CredentialKind::ApiKey,
            token,
            now,
            None,
        )
        .await?;
        transaction.commit().await.map_err(storage_error)
    }

    #[tracing::instrument(skip_all, err(level = "debug"))]
    async fn create(
        &self,
        user: NewUser,
        api_key: &TokenHash,
        now: Timestamp,
    ) -> Result<User, CreateUserError> {
        let mut transaction = self.write_transaction().await?;
        if !live_organization(&mut transaction, user.organization_id).await? {
            return Err(CreateUserError::OrganizationNotFound);
        }
        let created = insert_user(&mut transaction, &user, api_key, now).await?;
        transaction.commit().await.map_err(storage_error)?;
        Ok(created)
    }

    #[tracing::instrument(skip_all, err(level = "debug"))]
    async fn create_first_administrator(
        &self,
        organization: NewOrganization,
        administrator: NewUser,
        api_key: &TokenHash,
        now: Timestamp,
    ) -> Result<Option<(Organization, User)>, StorageError> {
        let mut transaction = self.write_transaction().await?;
        // The immediate transaction holds the database's write lock: racing processes
        // queue here, and the first one's users are visible to the next.
        let (any_user,): (bool,) = sqlx::query_as("select exists (select 1 from users)")
            .fetch_one(&mut *transaction)
            .await
            .map_err(storage_error)?;
        if any_user {
            return Ok(None);
        }
        let organization = insert_organization(&mut transaction, &organization, now)
            .await
            .map_err(|error| match error {
                CreateOrganizationError::Storage(error) => error,
                other => StorageError::unexpected(other),
            })?;
        let administrator = NewUser {
            organization_id: organization.id,
            ..administrator
        };
        let administrator = insert_user(&mut transaction, &administrator, api_key, now)
            .await
            .map_err(|error| match error {
                CreateUserError::Storage(error) => error,
                other => StorageError::unexpected(other),
            })?;
        transaction.commit().await.map_err(storage_error)?;
        Ok(Some((organization, administrator)))
    }
}
