//! `MemberRepository` on SQLite: listing members, changing roles and removing members
//! in immediate transactions, which hold the database's write lock (CONTRACT §5b).

use async_trait::async_trait;
use domain::member::{MemberChange, MemberFilter, check_keeps_administrator};
use domain::pagination::{Page, PageRequest};
use domain::user::User;
use domain::{OrganizationId, Role, Timestamp, UserId};
use ports::outbound::{MemberChangeError, MemberRepository, StorageError};
use sqlx::SqliteConnection;

use crate::SqliteStorage;
use crate::errors::{corrupt, storage_error};
use crate::paging::{count, page_bounds, page_of};
use crate::users::{USER_COLUMNS, UserRow};

/// `USER_COLUMNS` unqualified, as `returning` names them.
const RETURNED_COLUMNS: &str =
    "id, organization_id, identifier, first_name, last_name, role, is_active, created_at";

/// The filters, with `$1` the organization, `$2` the role and `$3` a `like` pattern on
/// the lower-cased identifier.
const FILTER: &str = "u.organization_id = $1 and o.archived_at is null \
     and ($2 is null or u.role = $2) \
     and ($3 is null or lower(u.identifier) like $3 escape '\\')";

/// A `like` pattern matching values that contain `fragment`, whose `%`, `_` and `\`
/// match only themselves.
fn contains_pattern(fragment: &str) -> String {
    let mut pattern = String::with_capacity(fragment.len() + 2);
    pattern.push('%');
    for c in fragment.chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

/// Inside the caller's immediate transaction (which holds the write lock, so that
/// nothing read here changes before the commit), checks in this order that the member
/// is in the live organization, that the change keeps an administrator in a root
/// organization, and that the requester is still an active administrator of the
/// organization or of its parent.
async fn check_change(
    connection: &mut SqliteConnection,
    organization: OrganizationId,
    user: UserId,
    change: MemberChange,
    requester: UserId,
) -> Result<(), MemberChangeError> {
    let locked: Option<(Option<i64>,)> =
        sqlx::query_as("select parent_id from organizations where id = $1 and archived_at is null")
            .bind(organization.get())
            .fetch_optional(&mut *connection)
            .await
            .map_err(storage_error)?;
    let Some((parent,)) = locked else {
        return Err(MemberChangeError::NotFound);
    };
    let member: Option<(String,)> =
        sqlx::query_as("select role from users where id = $1 and organization_id = $2")
            .bind(user.get())
            .bind(organization.get())
            .fetch_optional(&mut *connection)
            .await
            .map_err(storage_error)?;
    let Some((role,)) = member else {
        return Err(MemberChangeError::NotFound);
    };
    let role = Role::parse(&role).map_err(|e| corrupt("user", user.get(), e))?;
    let is_root = parent.is_none();
    let administrators = if is_root {
        let (administrators,): (i64,) =
            sqlx::query_as("select count(*) from users where organization_id = $1 and role = $2")
                .bind(organization.get())
                .bind(Role::Administrators.as_str())
                .fetch_one(&mut *connection)
                .await
                .map_err(storage_error)?;
        count(administrators)
    } else {
        0
    };
    check_keeps_administrator(is_root, role, change, administrators)
        .map_err(|_| MemberChangeError::LastAdministrator)?;
    let allowed: Option<(i64,)> = sqlx::query_as(
        "select id from users where id = $1 and is_active and role = $2 \
         and (organization_id = $3 or organization_id = $4)",
    )
    .bind(requester.get())
    .bind(Role::Administrators.as_str())
    .bind(organization.get())
    .bind(parent)
    .fetch_optional(&mut *connection)
    .await
    .map_err(storage_error)?;
    if allowed.is_none() {
        return Err(MemberChangeError::Forbidden);
    }
    Ok(())
}

#[async_trait]
impl MemberRepository for SqliteStorage {
    #[tracing::instrument(skip_all, err(level = "debug"))]
    async fn list(
        &self,
        organization: OrganizationId,
        filter: MemberFilter,
        page: PageRequest,
    ) -> Result<Page<User>, StorageError> {
        let (limit, offset) = page_bounds(page);
        let role = filter.role.map(Role::as_str);
        let pattern = filter.identifier.as_deref().map(contains_pattern);
        let (total,): (i64,) = sqlx::query_as(&format!(
            "select count(*) from users u join organizations o on o.id = u.organization_id \
             where {FILTER}"
        ))
        .bind(organization.get())
        .bind(role)
        .bind(pattern.as_deref())
        .fetch_one(&self.pool)
        .await
        .map_err(storage_error)?;
        let rows: Vec<UserRow> = sqlx::query_as(&format!(
            "select {USER_COLUMNS} from users u join organizations o on o.id = u.organization_id \
             where {FILTER} order by u.id limit $4 offset $5"
        ))
        .bind(organization.get())
        .bind(role)
        .bind(pattern.as_deref())
        .bind(limit)
        .bind(offset)
        .fetch_all(&self.pool)
        .await
        .map_err(storage_error)?;
        page_of(rows, total, page)
    }

    #[tracing::instrument(skip_all, err(level = "debug"))]
    async fn find(
        &self,
        organization: OrganizationId,
        user: UserId,
    ) -> Result<Option<User>, StorageError> {
        let row: Option<UserRow> = sqlx::query_as(&format!(
            "select {USER_COLUMNS} from users u join organizations o on o.id = u.organization_id \
             where u.id = $1 and u.organization_id = $2 and o.archived_at is null"
        ))
        .bind(user.get())
        .bind(organization.get())
        .fetch_optional(&self.pool)
        .await
        .map_err(storage_error)?;
        row.map(User::try_from).transpose()
    }

    #[tracing::instrument(skip_all, err(level = "debug"))]
    async fn change_role(
        &self,
        organization: OrganizationId,
        user: UserId,
        role: Role,
        requester: UserId,
        _now: Timestamp,
    ) -> Result<User, MemberChangeError> {
        let mut transaction = self.write_transaction().await?;
        check_change(
            &mut transaction,
            organization,
            user,
            MemberChange::Role(role),
            requester,
        )
        .await?;
        let row: UserRow = sqlx::query_as(&format!(
            "update users set role = $2 where id = $1 returning {RETURNED_COLUMNS}"
        ))
        .bind(user.get())
        .bind(role.as_str())
        .fetch_one(&mut *transaction)
        .await
        .map_err(storage_error)?;
        let changed = User::try_from(row)?;
        transaction.commit().await.map_err(storage_error)?;
        Ok(changed)
    }

    #[tracing::instrument(skip_all, err(level = "debug"))]
    async fn remove(
        &self,
        organization: OrganizationId,
        user: UserId,
        requester: UserId,
    ) -> Result<(), MemberChangeError> {
        let mut transaction = self.write_transaction().await?;
        check_change(
            &mut transaction,
            organization,
            user,
            MemberChange::Removal,
            requester,
        )
        .await?;
        // Invitations the member sent stay, with `invited_by` null (`on delete set null`).
        sqlx::query("delete from credentials where user_id = $1")
            .bind(user.get())
            .execute(&mut *transaction)
            .await
            .map_err(storage_error)?;
        sqlx::query("delete from users where id = $1")
            .bind(user.get())
            .execute(&mut *transaction)
            .await
            .map_err(storage_error)?;
        transaction.commit().await.map_err(storage_error)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::contains_pattern;

    #[test]
    fn like_wildcards_in_the_filter_match_only_themselves() {
        assert_eq!(contains_pattern("ada"), "%ada%");
        assert_eq!(contains_pattern("a%b_c\\d"), "%a\\%b\\_c\\\\d%");
    }
}
