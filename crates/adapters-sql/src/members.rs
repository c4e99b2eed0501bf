//! `MemberRepository` on every SQL backend: listing members, changing roles and removing
//! members under a lock on their organization (CONTRACT §5b).

use async_trait::async_trait;
use domain::api_key::KeyMaterial;
use domain::audit::NewEvent;
use domain::member::{MemberChange, MemberFilter, check_keeps_administrator};
use domain::organization::TreeNode;
use domain::pagination::{Page, PageRequest};
use domain::permissions::{Access, Action, Standing, recheck};
use domain::service_account::NewServiceAccount;
use domain::user::{User, UserKind};
use domain::{OrganizationId, Role, Timestamp, UserId};
use ports::outbound::{
    CreateServiceAccountError, MemberChangeError, MemberRepository, StorageError,
};
use sqlx::{ColumnIndex, Database, Decode, Encode, Executor, IntoArguments, Type};

use crate::events::Made;
use crate::paging::{count, page_bounds, page_of};
use crate::users::{USER_COLUMNS, USER_RETURNING, UserRow};
use crate::{Connection, Dialect, SqlStorage, Unique, stored};
use crate::{corrupt, storage_error};

/// The filters, with `$1` the organization, `$2` the role, `$3` a `like` pattern on
/// the lower-cased identifier and `$4` the kind.
const FILTER: &str = "u.organization_id = $1 and o.archived_at is null \
     and ($2 is null or u.role = $2) \
     and ($3 is null or lower(u.identifier) like $3 escape '\\') \
     and ($4 is null or u.kind = $4)";

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

impl<D> SqlStorage<D>
where
    D: Dialect,
    for<'c> &'c mut Connection<D>: Executor<'c, Database = D::Db>,
    for<'q> <D::Db as Database>::Arguments<'q>: IntoArguments<'q, D::Db>,
    for<'q> i64: Encode<'q, D::Db> + Type<D::Db>,
    for<'q> bool: Encode<'q, D::Db> + Type<D::Db>,
    for<'q> &'q str: Encode<'q, D::Db> + Type<D::Db>,
    for<'q> Option<&'q str>: Encode<'q, D::Db>,
    for<'r> i64: Decode<'r, D::Db>,
    for<'r> bool: Decode<'r, D::Db>,
    for<'r> String: Decode<'r, D::Db> + Type<D::Db>,
    usize: ColumnIndex<<D::Db as Database>::Row>,
    for<'a> &'a str: ColumnIndex<<D::Db as Database>::Row>,
{
    /// Inside the caller's transaction, locks the live organization's row (`FOR_UPDATE`,
    /// so that every member change of one organization runs one at a time), then checks,
    /// in this order, that the member is there, that the change keeps an administrator in
    /// a root organization, and that the requester's current standing (its row locked
    /// `FOR_SHARE`, so that it cannot be demoted before the change commits) still allows
    /// the change by the domain's rule (`domain::permissions::recheck`). Storage holds the
    /// lock and reads the facts; the decision is the domain's.
    async fn check_change(
        connection: &mut Connection<D>,
        organization: OrganizationId,
        user: UserId,
        change: MemberChange,
        requester: UserId,
    ) -> Result<(), MemberChangeError> {
        let locked: Option<(Option<i64>,)> = sqlx::query_as(&format!(
            "select parent_id from organizations where id = $1 and archived_at is null{}",
            D::FOR_UPDATE
        ))
        .bind(organization.get())
        .fetch_optional(&mut *connection)
        .await
        .map_err(storage_error::<D>)?;
        let Some((parent,)) = locked else {
            return Err(MemberChangeError::NotFound);
        };
        let member: Option<(String,)> =
            sqlx::query_as("select role from users where id = $1 and organization_id = $2")
                .bind(user.get())
                .bind(organization.get())
                .fetch_optional(&mut *connection)
                .await
                .map_err(storage_error::<D>)?;
        let Some((role,)) = member else {
            return Err(MemberChangeError::NotFound);
        };
        let role = Role::parse(&role).map_err(|e| corrupt("user", user.get(), e))?;
        let is_root = parent.is_none();
        let administrators = if is_root {
            // People only: a service account is never an administrator, and must not
            // count as one should a row ever say so.
            let (administrators,): (i64,) = sqlx::query_as(
                "select count(*) from users where organization_id = $1 and role = $2 \
                 and kind = 'human'",
            )
            .bind(organization.get())
            .bind(Role::Administrators.as_str())
            .fetch_one(&mut *connection)
            .await
            .map_err(storage_error::<D>)?;
            count(administrators)
        } else {
            0
        };
        check_keeps_administrator(is_root, role, change, administrators)
            .map_err(|_| MemberChangeError::LastAdministrator)?;
        let target = TreeNode {
            id: organization,
            parent: parent.map(OrganizationId::new),
        };
        if !Self::requester_may(connection, requester, Action::ManageMembers, target).await? {
            return Err(MemberChangeError::Forbidden);
        }
        Ok(())
    }

    /// Inside the caller's transaction, whether the requester's current standing, its row
    /// locked (`FOR_SHARE`) so that it cannot change before the commit, still allows
    /// `action` on `target`: the domain's rule (`domain::permissions::recheck`).
    async fn requester_may(
        connection: &mut Connection<D>,
        requester: UserId,
        action: Action,
        target: TreeNode,
    ) -> Result<bool, StorageError> {
        let requester_row: Option<(i64, String, bool)> = sqlx::query_as(&format!(
            "select organization_id, role, is_active from users where id = $1{}",
            D::FOR_SHARE
        ))
        .bind(requester.get())
        .fetch_optional(&mut *connection)
        .await
        .map_err(storage_error::<D>)?;
        let standing = requester_row
            .map(|(organization, role, is_active)| {
                Ok::<_, StorageError>(Standing {
                    organization: OrganizationId::new(organization),
                    role: Role::parse(&role).map_err(|e| corrupt("user", requester.get(), e))?,
                    is_active,
                })
            })
            .transpose()?;
        Ok(recheck(standing, action, target) == Access::Allowed)
    }
}

#[async_trait]
impl<D> MemberRepository for SqlStorage<D>
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
    for<'r> i32: Decode<'r, D::Db> + Type<D::Db>,
    for<'r> i64: Decode<'r, D::Db>,
    for<'r> bool: Decode<'r, D::Db>,
    for<'r> String: Decode<'r, D::Db> + Type<D::Db>,
    usize: ColumnIndex<<D::Db as Database>::Row>,
    for<'a> &'a str: ColumnIndex<<D::Db as Database>::Row>,
{
    #[tracing::instrument(skip_all, fields(db.system = D::NAME), err(level = "debug"))]
    async fn list(
        &self,
        organization: OrganizationId,
        filter: MemberFilter,
        page: PageRequest,
    ) -> Result<Page<User>, StorageError> {
        let (limit, offset) = page_bounds(page);
        let role = filter.role.map(Role::as_str);
        let pattern = filter.identifier.as_deref().map(contains_pattern);
        let kind = filter.kind.map(UserKind::as_str);
        let (total,): (i64,) = on_pool!(
            self,
            sqlx::query_as(&format!(
                "select count(*) from users u join organizations o on o.id = u.organization_id \
             where {FILTER}"
            ))
            .bind(organization.get())
            .bind(role)
            .bind(pattern.as_deref())
            .bind(kind),
            fetch_one
        )
        .map_err(storage_error::<D>)?;
        let rows: Vec<UserRow<D::Instant>> = on_pool!(self, sqlx::query_as(&format!(
            "select {USER_COLUMNS} from users u join organizations o on o.id = u.organization_id \
             where {FILTER} order by u.id limit $5 offset $6"
        ))
        .bind(organization.get())
        .bind(role)
        .bind(pattern.as_deref())
        .bind(kind)
        .bind(limit)
        .bind(offset), fetch_all)
        .map_err(storage_error::<D>)?;
        page_of(rows, total, page)
    }

    #[tracing::instrument(skip_all, fields(db.system = D::NAME), err(level = "debug"))]
    async fn find(
        &self,
        organization: OrganizationId,
        user: UserId,
    ) -> Result<Option<User>, StorageError> {
        let row: Option<UserRow<D::Instant>> = on_pool!(self, sqlx::query_as(&format!(
            "select {USER_COLUMNS} from users u join organizations o on o.id = u.organization_id \
             where u.id = $1 and u.organization_id = $2 and o.archived_at is null"
        ))
        .bind(user.get())
        .bind(organization.get()), fetch_optional)
        .map_err(storage_error::<D>)?;
        row.map(User::try_from).transpose()
    }

    #[tracing::instrument(skip_all, fields(db.system = D::NAME), err(level = "debug"))]
    async fn change_role(
        &self,
        organization: OrganizationId,
        user: UserId,
        role: Role,
        requester: UserId,
        _now: Timestamp,
        event: Option<NewEvent>,
    ) -> Result<User, MemberChangeError> {
        let mut transaction = self.begin_write().await.map_err(storage_error::<D>)?;
        Self::check_change(
            &mut transaction,
            organization,
            user,
            MemberChange::Role(role),
            requester,
        )
        .await?;
        let row: UserRow<D::Instant> = sqlx::query_as(&format!(
            "update users set role = $2 where id = $1 returning {USER_RETURNING}"
        ))
        .bind(user.get())
        .bind(role.as_str())
        .fetch_one(&mut *transaction)
        .await
        .map_err(storage_error::<D>)?;
        let changed = User::try_from(row)?;
        if let Some(event) = &event {
            Self::record_event(&mut transaction, event, Made::of(organization)).await?;
        }
        transaction.commit().await.map_err(storage_error::<D>)?;
        Ok(changed)
    }

    #[tracing::instrument(skip_all, fields(db.system = D::NAME), err(level = "debug"))]
    async fn create_service_account(
        &self,
        account: NewServiceAccount,
        api_key: &KeyMaterial,
        now: Timestamp,
        event: NewEvent,
    ) -> Result<User, CreateServiceAccountError> {
        let mut transaction = self.begin_write().await.map_err(storage_error::<D>)?;
        let locked: Option<(Option<i64>,)> = sqlx::query_as(&format!(
            "select parent_id from organizations where id = $1 and archived_at is null{}",
            D::FOR_SHARE
        ))
        .bind(account.organization_id.get())
        .fetch_optional(&mut *transaction)
        .await
        .map_err(storage_error::<D>)?;
        let Some((parent,)) = locked else {
            return Err(CreateServiceAccountError::OrganizationNotFound);
        };
        let target = TreeNode {
            id: account.organization_id,
            parent: parent.map(OrganizationId::new),
        };
        if !Self::requester_may(
            &mut transaction,
            account.requester,
            Action::CreateServiceAccount,
            target,
        )
        .await?
        {
            return Err(CreateServiceAccountError::Forbidden);
        }
        // The partial unique index on (organization, name) of service accounts decides
        // between parallel requests for one name: one insert wins, the others fail here.
        let row: UserRow<D::Instant> = sqlx::query_as(&format!(
            "insert into users (organization_id, identifier, first_name, last_name, role, \
             password_hash, is_active, created_at, kind) \
             values ($1, $2, '', '', $3, null, true, $4, $5) returning {USER_RETURNING}"
        ))
        .bind(account.organization_id.get())
        .bind(account.name.as_str())
        .bind(account.role.as_str())
        .bind(stored::<D>(now))
        .bind(UserKind::Service.as_str())
        .fetch_one(&mut *transaction)
        .await
        .map_err(|error| {
            if D::unique_violation(&error) == Some(Unique::ServiceAccountName) {
                CreateServiceAccountError::NameTaken
            } else {
                CreateServiceAccountError::Storage(storage_error::<D>(error))
            }
        })?;
        let created = User::try_from(row)?;
        Self::insert_default_key(&mut transaction, created.id, api_key, now).await?;
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
    async fn remove(
        &self,
        organization: OrganizationId,
        user: UserId,
        requester: UserId,
        event: NewEvent,
    ) -> Result<(), MemberChangeError> {
        let mut transaction = self.begin_write().await.map_err(storage_error::<D>)?;
        Self::check_change(
            &mut transaction,
            organization,
            user,
            MemberChange::Removal,
            requester,
        )
        .await?;
        // The event first: a member who removes themselves is still there to name.
        Self::record_event(&mut transaction, &event, Made::of(organization)).await?;
        // Invitations the member sent stay, with `invited_by` null (`on delete set null`).
        sqlx::query("delete from credentials where user_id = $1")
            .bind(user.get())
            .execute(&mut *transaction)
            .await
            .map_err(storage_error::<D>)?;
        sqlx::query("delete from users where id = $1")
            .bind(user.get())
            .execute(&mut *transaction)
            .await
            .map_err(storage_error::<D>)?;
        transaction.commit().await.map_err(storage_error::<D>)?;
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
