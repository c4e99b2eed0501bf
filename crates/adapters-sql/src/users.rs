//! `UserRepository` on every SQL backend: users, API keys and session tokens (as hashes).

use std::sync::LazyLock;

use async_trait::async_trait;
use domain::api_key::{
    ApiKey, ApiKeyName, KeyMaterial, KeyRefusal, NewApiKey, Scope, check_key_allowance,
};
use domain::audit::{Changes, NewEvent};
use domain::organization::{NewOrganization, Organization, TreeNode};
use domain::pagination::{Page, PageRequest};
use domain::secret::{CredentialKind, TokenHash};
use domain::user::{NewUser, PasswordHash, PersonName, User, UserIdentifier, UserKind};
use domain::{ApiKeyId, EmailAddress, OrganizationId, Role, Timestamp, UserId};
use ports::outbound::{
    AuthenticatedUser, Caller, CreateApiKeyError, CreateOrganizationError, CreateUserError, KeyUse,
    LoginRecord, StorageError, UserRepository, WriteError,
};
use sqlx::{Arguments as _, ColumnIndex, Database, Decode, Encode, Executor, IntoArguments, Type};

use crate::events::Made;
use crate::instant::{StoredInstant, load, load_optional};
use crate::organizations::{JOINED_ORGANIZATION_COLUMNS, JoinedOrganizationRow};
use crate::paging::{page_bounds, page_of};
use crate::{Connection, Dialect, SqlStorage, stored};
use crate::{Unique, corrupt, storage_error};

/// The columns every user query reads (qualified by `u`), in `UserRow` order.
pub(crate) const USER_COLUMNS: &str = "u.id, u.organization_id, u.identifier, u.first_name, \
     u.last_name, u.role, u.is_active, u.created_at, u.kind";

/// `USER_COLUMNS` unqualified, as `returning` names them.
pub(crate) const USER_RETURNING: &str =
    "id, organization_id, identifier, first_name, last_name, role, is_active, created_at, kind";

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
    kind: String,
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
            identifier: UserKind::parse(&row.kind)
                .and_then(|kind| UserIdentifier::parse(kind, &row.identifier))
                .map_err(|e| corrupt("user", id, e))?,
            first_name: person_name(&row.first_name).map_err(|e| corrupt("user", id, e))?,
            last_name: person_name(&row.last_name).map_err(|e| corrupt("user", id, e))?,
            role: Role::parse(&row.role).map_err(|e| corrupt("user", id, e))?,
            is_active: row.is_active,
            created_at: load("user", id, row.created_at)?,
        })
    }
}

/// A `Caller` and the organization the request reads, in one row: the columns of
/// `AUTHENTICATE_WITH_ORGANIZATION`, read by position (every authenticated `GET` of an
/// organization reads one). The caller's role, credential kind and scope are borrowed
/// from the row: they are only parsed, never kept.
struct CallerWithOrganizationRow<'r, I> {
    user_id: i64,
    organization_id: i64,
    role: &'r str,
    parent_id: Option<i64>,
    credential_id: i64,
    credential_kind: &'r str,
    credential_scope: &'r str,
    organization: JoinedOrganizationRow<I>,
}

impl<'r, I> CallerWithOrganizationRow<'r, I> {
    fn from_row<R>(row: &'r R) -> Result<Self, sqlx::Error>
    where
        R: sqlx::Row,
        usize: ColumnIndex<R>,
        i64: Decode<'r, R::Database> + Type<R::Database>,
        bool: Decode<'r, R::Database> + Type<R::Database>,
        &'r str: Decode<'r, R::Database>,
        String: Decode<'r, R::Database> + Type<R::Database>,
        I: Decode<'r, R::Database> + Type<R::Database>,
    {
        Ok(Self {
            user_id: row.try_get_unchecked(0)?,
            organization_id: row.try_get_unchecked(1)?,
            role: row.try_get_unchecked(2)?,
            parent_id: row.try_get_unchecked(3)?,
            credential_id: row.try_get_unchecked(4)?,
            credential_kind: row.try_get_unchecked(5)?,
            credential_scope: row.try_get_unchecked(6)?,
            organization: JoinedOrganizationRow::from_row_at(row, 7)?,
        })
    }
}

impl<I: StoredInstant> CallerWithOrganizationRow<'_, I> {
    fn read(self) -> Result<(Caller, Option<Organization>), StorageError> {
        let credential = self.credential_id;
        let caller = Caller {
            user_id: UserId::new(self.user_id),
            role: Role::parse(self.role).map_err(|e| corrupt("user", self.user_id, e))?,
            organization: TreeNode {
                id: OrganizationId::new(self.organization_id),
                parent: self.parent_id.map(OrganizationId::new),
            },
            scope: Scope::parse(self.credential_scope)
                .map_err(|e| corrupt("credential", credential, e))?,
            api_key: (self.credential_kind == CredentialKind::ApiKey.as_str())
                .then_some(ApiKeyId::new(credential)),
        };
        Ok((caller, self.organization.organization()?))
    }
}

/// `authenticate`'s statement, built once.
static AUTHENTICATE: LazyLock<String> = LazyLock::new(|| {
    format!(
        "select {USER_COLUMNS}, o.parent_id, c.id as credential_id, \
         c.kind as credential_kind, c.scope as credential_scope from credentials c \
         join users u on u.id = c.user_id \
         join organizations o on o.id = u.organization_id \
         where c.token_hash = $1 and (c.expires_at is null or c.expires_at > $2) \
         and u.is_active and o.archived_at is null"
    )
});

/// `authenticate_with_organization`'s statement: `authenticate`'s, with the live
/// organization `$3` left-joined as `t`; one statement, one round trip.
static AUTHENTICATE_WITH_ORGANIZATION: LazyLock<String> = LazyLock::new(|| {
    format!(
        "select u.id as user_id, u.organization_id, u.role, o.parent_id, \
         c.id as credential_id, c.kind as credential_kind, c.scope as credential_scope, \
         {JOINED_ORGANIZATION_COLUMNS} from credentials c \
         join users u on u.id = c.user_id \
         join organizations o on o.id = u.organization_id \
         left join organizations t on t.id = $3 and t.archived_at is null \
         where c.token_hash = $1 and (c.expires_at is null or c.expires_at > $2) \
         and u.is_active and o.archived_at is null"
    )
});

/// The bytes of `AUTHENTICATE_WITH_ORGANIZATION`'s arguments on PostgreSQL: a length
/// (4 bytes) before each, a SHA-256 in hex (64), an instant (8) and an id (8).
const AUTHENTICATE_WITH_ORGANIZATION_ARGUMENT_BYTES: usize = 3 * 4 + 64 + 8 + 8;

#[derive(sqlx::FromRow)]
struct AuthenticatedRow<I> {
    #[sqlx(flatten)]
    user: UserRow<I>,
    parent_id: Option<i64>,
    credential_id: i64,
    credential_kind: String,
    credential_scope: String,
}

impl<I: StoredInstant> AuthenticatedRow<I> {
    /// Who holds the credential.
    fn authenticated(self) -> Result<AuthenticatedUser, StorageError> {
        let row = self;
        let parent = row.parent_id.map(OrganizationId::new);
        let credential = row.credential_id;
        let scope = Scope::parse(&row.credential_scope)
            .map_err(|e| corrupt("credential", credential, e))?;
        let api_key = (row.credential_kind == CredentialKind::ApiKey.as_str())
            .then_some(ApiKeyId::new(credential));
        let user = User::try_from(row.user)?;
        Ok(AuthenticatedUser {
            organization: TreeNode {
                id: user.organization_id,
                parent,
            },
            user,
            scope,
            api_key,
        })
    }
}

/// The columns an API key query reads, in `ApiKeyRow` order.
const API_KEY_COLUMNS: &str =
    "id, user_id, name, prefix, scope, created_at, expires_at, last_used_at";

/// The most keys one `record_key_uses` statement updates (two parameters each).
const KEY_USES_PER_STATEMENT: usize = 400;

/// A `credentials` row of kind `api_key`.
#[derive(sqlx::FromRow)]
struct ApiKeyRow<I> {
    id: i64,
    user_id: i64,
    name: Option<String>,
    prefix: Option<String>,
    scope: String,
    created_at: I,
    expires_at: Option<I>,
    last_used_at: Option<I>,
}

impl<I: StoredInstant> TryFrom<ApiKeyRow<I>> for ApiKey {
    type Error = StorageError;

    fn try_from(row: ApiKeyRow<I>) -> Result<Self, StorageError> {
        let id = row.id;
        let name = row
            .name
            .as_deref()
            .ok_or(domain::ErrorCode::Required)
            .and_then(ApiKeyName::parse)
            .map_err(|e| corrupt("api key", id, e))?;
        Ok(ApiKey {
            id: ApiKeyId::new(row.id),
            user_id: UserId::new(row.user_id),
            name,
            prefix: row.prefix,
            scope: Scope::parse(&row.scope).map_err(|e| corrupt("api key", id, e))?,
            created_at: load("api key", id, row.created_at)?,
            expires_at: load_optional("api key", id, row.expires_at)?,
            last_used_at: load_optional("api key", id, row.last_used_at)?,
        })
    }
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

    /// Inserts a user and its first API key, named `default`, inside the caller's
    /// transaction.
    pub(crate) async fn insert_user(
        connection: &mut Connection<D>,
        user: &NewUser,
        api_key: &KeyMaterial,
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
        Self::insert_default_key(connection, UserId::new(row.id), api_key, now).await?;
        Ok(User::try_from(row)?)
    }

    /// Inserts a new user's first API key, named `default`, with the `write` scope,
    /// inside the caller's transaction.
    pub(crate) async fn insert_default_key(
        connection: &mut Connection<D>,
        user: UserId,
        api_key: &KeyMaterial,
        now: Timestamp,
    ) -> Result<(), StorageError> {
        Self::insert_api_key(
            connection,
            user,
            &NewApiKey {
                name: ApiKeyName::default_key(),
                scope: Scope::Write,
                material: api_key.clone(),
                expires_at: None,
            },
            now,
        )
        .await
        .map(drop)
        .map_err(|error| match error {
            CreateApiKeyError::Storage(error) => error,
            other => StorageError::unexpected(other),
        })
    }

    async fn insert_session(
        connection: &mut Connection<D>,
        user: i64,
        token: &TokenHash,
        created_at: Timestamp,
        expires_at: Timestamp,
    ) -> Result<(), StorageError> {
        sqlx::query(
            "insert into credentials (user_id, kind, token_hash, created_at, expires_at, scope) \
             values ($1, $2, $3, $4, $5, $6)",
        )
        .bind(user)
        .bind(CredentialKind::Session.as_str())
        .bind(token.as_str())
        .bind(stored::<D>(created_at))
        .bind(Some(stored::<D>(expires_at)))
        .bind(Scope::Write.as_str())
        .execute(&mut *connection)
        .await
        .map(drop)
        .map_err(storage_error::<D>)
    }

    /// Inserts an API key inside the caller's transaction.
    async fn insert_api_key(
        connection: &mut Connection<D>,
        user: UserId,
        key: &NewApiKey,
        now: Timestamp,
    ) -> Result<ApiKey, CreateApiKeyError> {
        let row: ApiKeyRow<D::Instant> = sqlx::query_as(&format!(
            "insert into credentials (user_id, kind, token_hash, created_at, expires_at, \
             name, scope, prefix) values ($1, $2, $3, $4, $5, $6, $7, $8) \
             returning {API_KEY_COLUMNS}"
        ))
        .bind(user.get())
        .bind(CredentialKind::ApiKey.as_str())
        .bind(key.material.hash.as_str())
        .bind(stored::<D>(now))
        .bind(key.expires_at.map(stored::<D>))
        .bind(key.name.as_str())
        .bind(key.scope.as_str())
        .bind(key.material.prefix.as_str())
        .fetch_one(&mut *connection)
        .await
        .map_err(|error| {
            // The user's lock keeps this from happening; the index is the last word.
            if D::unique_violation(&error) == Some(Unique::ApiKeyName) {
                CreateApiKeyError::Refused(KeyRefusal::NameTaken)
            } else {
                CreateApiKeyError::Storage(storage_error::<D>(error))
            }
        })?;
        Ok(ApiKey::try_from(row)?)
    }

    /// One `record_key_uses` statement: each key's `last_used_at` becomes the later of
    /// the stored and the given instant.
    async fn record_key_use_chunk(&self, uses: &[KeyUse]) -> Result<(), StorageError> {
        let cases: String = (0..uses.len())
            .map(|i| format!(" when ${} then ${}", 2 * i + 1, 2 * i + 2))
            .collect();
        let ids: Vec<String> = (0..uses.len()).map(|i| format!("${}", 2 * i + 1)).collect();
        let used_at = format!("(case id{cases} end)");
        let sql = format!(
            "update credentials set last_used_at = {greatest}(coalesce(last_used_at, {used_at}), \
             {used_at}) where kind = 'api_key' and id in ({ids})",
            greatest = D::GREATEST,
            ids = ids.join(", "),
        );
        let mut query = sqlx::query(&sql);
        for use_ in uses {
            query = query.bind(use_.key.get()).bind(stored::<D>(use_.at));
        }
        on_pool!(self, query, execute)
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
    for<'r> &'r str: Decode<'r, D::Db>,
    usize: ColumnIndex<<D::Db as Database>::Row>,
    for<'a> &'a str: ColumnIndex<<D::Db as Database>::Row>,
{
    #[tracing::instrument(skip_all, fields(db.system = D::NAME), err(level = "debug"))]
    async fn authenticate(
        &self,
        token: &TokenHash,
        now: Timestamp,
    ) -> Result<Option<AuthenticatedUser>, StorageError> {
        let row: Option<AuthenticatedRow<D::Instant>> = on_pool!(
            self,
            sqlx::query_as(&AUTHENTICATE)
                .bind(token.as_str())
                .bind(stored::<D>(now)),
            fetch_optional
        )
        .map_err(storage_error::<D>)?;
        row.map(AuthenticatedRow::authenticated).transpose()
    }

    #[tracing::instrument(skip_all, fields(db.system = D::NAME), err(level = "debug"))]
    async fn authenticate_with_organization(
        &self,
        token: &TokenHash,
        now: Timestamp,
        organization: OrganizationId,
    ) -> Result<Option<(Caller, Option<Organization>)>, StorageError> {
        // The arguments' buffer reserved once (the hash's 64 hex digits, an instant and an
        // id, each after its length) instead of grown by each of them.
        let mut arguments = <D::Db as Database>::Arguments::default();
        arguments.reserve(3, AUTHENTICATE_WITH_ORGANIZATION_ARGUMENT_BYTES);
        arguments
            .add(token.as_str())
            .and_then(|()| arguments.add(stored::<D>(now)))
            .and_then(|()| arguments.add(organization.get()))
            .map_err(|error| storage_error::<D>(sqlx::Error::Encode(error)))?;
        let row = on_pool!(
            self,
            sqlx::query_with(&AUTHENTICATE_WITH_ORGANIZATION, arguments),
            fetch_optional
        )
        .map_err(storage_error::<D>)?;
        row.as_ref()
            .map(|row| {
                CallerWithOrganizationRow::<D::Instant>::from_row(row)
                    .map_err(storage_error::<D>)?
                    .read()
            })
            .transpose()
    }

    #[tracing::instrument(skip_all, fields(db.system = D::NAME), err(level = "debug"))]
    async fn find_for_login(
        &self,
        identifier: &EmailAddress,
    ) -> Result<Option<LoginRecord>, StorageError> {
        let row: Option<LoginRow<D::Instant>> = on_pool!(
            self,
            sqlx::query_as(&format!(
                "select {USER_COLUMNS}, u.password_hash from users u \
             join organizations o on o.id = u.organization_id \
             where u.identifier = $1 and u.kind = 'human' and o.archived_at is null"
            ))
            .bind(identifier.as_str()),
            fetch_optional
        )
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
        let row: Option<UserRow<D::Instant>> = on_pool!(
            self,
            sqlx::query_as(&format!(
                "select {USER_COLUMNS} from users u \
             join organizations o on o.id = u.organization_id \
             where u.id = $1 and o.archived_at is null"
            ))
            .bind(id.get()),
            fetch_optional
        )
        .map_err(storage_error::<D>)?;
        row.map(User::try_from).transpose()
    }

    #[tracing::instrument(skip_all, fields(db.system = D::NAME), err(level = "debug"))]
    async fn identifier_taken(&self, identifier: &EmailAddress) -> Result<bool, StorageError> {
        let (taken,): (bool,) = on_pool!(
            self,
            sqlx::query_as(
                "select exists (select 1 from users where identifier = $1 and kind = 'human')"
            )
            .bind(identifier.as_str()),
            fetch_one
        )
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
        on_connection!(self, |connection| Self::insert_session(
            &mut connection,
            user.get(),
            token,
            created_at,
            expires_at,
        )
        .await)
    }

    #[tracing::instrument(skip_all, fields(db.system = D::NAME), err(level = "debug"))]
    async fn prune_sessions(&self, before: Timestamp) -> Result<u64, StorageError> {
        let deleted = on_pool!(
            self,
            sqlx::query("delete from credentials where kind = 'session' and expires_at <= $1")
                .bind(stored::<D>(before)),
            execute
        )
        .map_err(storage_error::<D>)?;
        Ok(D::rows_affected(&deleted))
    }

    #[tracing::instrument(skip_all, fields(db.system = D::NAME), err(level = "debug"))]
    async fn replace_api_key(
        &self,
        user: UserId,
        key: &KeyMaterial,
        now: Timestamp,
        event: NewEvent,
    ) -> Result<(), StorageError> {
        let default_key = NewApiKey {
            name: ApiKeyName::default_key(),
            scope: Scope::Write,
            material: key.clone(),
            expires_at: None,
        };
        let mut transaction = self.begin_write().await.map_err(storage_error::<D>)?;
        sqlx::query(
            "delete from credentials where user_id = $1 and kind = 'api_key' and name = $2",
        )
        .bind(user.get())
        .bind(default_key.name.as_str())
        .execute(&mut *transaction)
        .await
        .map_err(storage_error::<D>)?;
        Self::insert_api_key(&mut transaction, user, &default_key, now)
            .await
            .map_err(|error| match error {
                CreateApiKeyError::Storage(error) => error,
                other => StorageError::unexpected(other),
            })?;
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
    async fn list_api_keys(
        &self,
        user: UserId,
        page: PageRequest,
    ) -> Result<Page<ApiKey>, StorageError> {
        let (limit, offset) = page_bounds(page);
        let (total,): (i64,) = on_pool!(
            self,
            sqlx::query_as(
                "select count(*) from credentials where user_id = $1 and kind = 'api_key'",
            )
            .bind(user.get()),
            fetch_one
        )
        .map_err(storage_error::<D>)?;
        let rows: Vec<ApiKeyRow<D::Instant>> =
            on_pool!(self, sqlx::query_as(&format!(
            "select {API_KEY_COLUMNS} from credentials where user_id = $1 and kind = 'api_key' \
             order by created_at desc, id desc limit $2 offset $3"
        ))
        .bind(user.get())
        .bind(limit)
        .bind(offset), fetch_all)
            .map_err(storage_error::<D>)?;
        page_of(rows, total, page)
    }

    #[tracing::instrument(skip_all, fields(db.system = D::NAME), err(level = "debug"))]
    async fn create_api_key(
        &self,
        user: UserId,
        key: NewApiKey,
        now: Timestamp,
        event: NewEvent,
    ) -> Result<ApiKey, CreateApiKeyError> {
        let mut transaction = self.begin_write().await.map_err(storage_error::<D>)?;
        // The user's row, locked: requests making keys for one user queue here.
        let found: Option<(i64,)> = sqlx::query_as(&format!(
            "select organization_id from users where id = $1{}",
            D::FOR_UPDATE
        ))
        .bind(user.get())
        .fetch_optional(&mut *transaction)
        .await
        .map_err(storage_error::<D>)?;
        let Some((organization,)) = found else {
            return Err(CreateApiKeyError::UserNotFound);
        };
        // Expired keys are no longer live: they block neither a name nor the count.
        sqlx::query(
            "delete from credentials where user_id = $1 and kind = 'api_key' \
             and expires_at is not null and expires_at <= $2",
        )
        .bind(user.get())
        .bind(stored::<D>(now))
        .execute(&mut *transaction)
        .await
        .map_err(storage_error::<D>)?;
        let names: Vec<(String,)> =
            sqlx::query_as("select name from credentials where user_id = $1 and kind = 'api_key'")
                .bind(user.get())
                .fetch_all(&mut *transaction)
                .await
                .map_err(storage_error::<D>)?;
        let live: Vec<ApiKeyName> = names
            .iter()
            .filter_map(|(name,)| ApiKeyName::parse(name).ok())
            .collect();
        check_key_allowance(&live, &key.name)?;
        let created = Self::insert_api_key(&mut transaction, user, &key, now).await?;
        Self::record_event(
            &mut transaction,
            &event,
            Made::of(OrganizationId::new(organization)),
        )
        .await?;
        transaction.commit().await.map_err(storage_error::<D>)?;
        Ok(created)
    }

    #[tracing::instrument(skip_all, fields(db.system = D::NAME), err(level = "debug"))]
    async fn revoke_api_key(
        &self,
        user: UserId,
        key: ApiKeyId,
        event: NewEvent,
    ) -> Result<(), WriteError> {
        let mut transaction = self.begin_write().await.map_err(storage_error::<D>)?;
        let deleted: Option<ApiKeyRow<D::Instant>> = sqlx::query_as(&format!(
            "delete from credentials where id = $1 and user_id = $2 and kind = 'api_key' \
             returning {API_KEY_COLUMNS}"
        ))
        .bind(key.get())
        .bind(user.get())
        .fetch_optional(&mut *transaction)
        .await
        .map_err(storage_error::<D>)?;
        let Some(deleted) = deleted else {
            return Err(WriteError::NotFound);
        };
        let deleted = ApiKey::try_from(deleted)?;
        let (organization,): (i64,) =
            sqlx::query_as("select organization_id from users where id = $1")
                .bind(user.get())
                .fetch_one(&mut *transaction)
                .await
                .map_err(storage_error::<D>)?;
        let event = event.with_changes(Changes::of_api_key(
            &deleted.name,
            deleted.scope,
            deleted.expires_at,
            false,
        ));
        Self::record_event(
            &mut transaction,
            &event,
            Made::of(OrganizationId::new(organization)),
        )
        .await?;
        transaction.commit().await.map_err(storage_error::<D>)?;
        Ok(())
    }

    #[tracing::instrument(skip_all, fields(db.system = D::NAME, uses = uses.len()), err(level = "debug"))]
    async fn record_key_uses(&self, uses: &[KeyUse]) -> Result<(), StorageError> {
        for chunk in uses.chunks(KEY_USES_PER_STATEMENT) {
            self.record_key_use_chunk(chunk).await?;
        }
        Ok(())
    }

    #[tracing::instrument(skip_all, fields(db.system = D::NAME), err(level = "debug"))]
    async fn create(
        &self,
        user: NewUser,
        api_key: &KeyMaterial,
        now: Timestamp,
        event: NewEvent,
    ) -> Result<User, CreateUserError> {
        let mut transaction = self.begin_write().await.map_err(storage_error::<D>)?;
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
        api_key: &KeyMaterial,
        now: Timestamp,
        events: Vec<NewEvent>,
    ) -> Result<Option<(Organization, User)>, StorageError> {
        let mut transaction = self.begin_write().await.map_err(storage_error::<D>)?;
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
