//! `OrganizationRepository` on every SQL backend: the tree, settings, archiving and purge.

use std::sync::LazyLock;

use async_trait::async_trait;
use domain::audit::NewEvent;
use domain::organization::{NewOrganization, Nickname, Organization, OrganizationName, Settings};
use domain::pagination::{Page, PageRequest};
use domain::{EmailAddress, OrganizationId, Timestamp, Version};
use ports::outbound::{CreateOrganizationError, OrganizationRepository, StorageError, WriteError};
use sqlx::{ColumnIndex, Database, Decode, Encode, Executor, FromRow, IntoArguments, Row, Type};

use crate::events::{EventBinds, Made, change_with_event};
use crate::instant::{StoredInstant, load};
use crate::paging::{count, page_bounds};
use crate::{Connection, Dialect, SqlStorage, stored};
use crate::{corrupt, storage_error};

/// The columns every organization query reads, in `OrganizationRow` order.
pub(crate) const ORGANIZATION_COLUMNS: &str = "id, parent_id, name, contact_email, nickname, \
     notify_message_status, notify_optouts, external_optout_message, can_attach_files, \
     can_external_optout, version, created_at, updated_at";

/// Replaces a live organization's values (`$1` its id, `$9` the version it must have,
/// if any), answering its row.
static UPDATE: LazyLock<String> = LazyLock::new(|| {
    format!(
        "update organizations set name = $2, contact_email = $3, nickname = $4, \
         notify_message_status = $5, notify_optouts = $6, external_optout_message = $7, \
         version = version + 1, updated_at = $8 \
         where id = $1 and archived_at is null and ($9 is null or version = $9) \
         returning {ORGANIZATION_COLUMNS}"
    )
});

/// `UPDATE` and its event (binds from `$10`) in one statement (`change_with_event`).
static UPDATE_WITH_EVENT: LazyLock<String> =
    LazyLock::new(|| change_with_event(&UPDATE, ORGANIZATION_COLUMNS, 10));

/// An `organizations` row.
#[derive(sqlx::FromRow)]
pub(crate) struct OrganizationRow<I> {
    id: i64,
    parent_id: Option<i64>,
    name: String,
    contact_email: Option<String>,
    nickname: String,
    notify_message_status: bool,
    notify_optouts: bool,
    external_optout_message: String,
    can_attach_files: bool,
    can_external_optout: bool,
    version: i64,
    created_at: I,
    updated_at: I,
}

/// `ORGANIZATION_COLUMNS` of the organization `t` of a left join, each named `t_…`.
pub(crate) const JOINED_ORGANIZATION_COLUMNS: &str = "t.id as t_id, t.parent_id as t_parent_id, \
     t.name as t_name, t.contact_email as t_contact_email, t.nickname as t_nickname, \
     t.notify_message_status as t_notify_message_status, t.notify_optouts as t_notify_optouts, \
     t.external_optout_message as t_external_optout_message, \
     t.can_attach_files as t_can_attach_files, t.can_external_optout as t_can_external_optout, \
     t.version as t_version, t.created_at as t_created_at, t.updated_at as t_updated_at";

/// An `organizations` row read through a left join: every column `NULL` when no row
/// matched.
#[derive(sqlx::FromRow)]
pub(crate) struct JoinedOrganizationRow<I> {
    t_id: Option<i64>,
    t_parent_id: Option<i64>,
    t_name: Option<String>,
    t_contact_email: Option<String>,
    t_nickname: Option<String>,
    t_notify_message_status: Option<bool>,
    t_notify_optouts: Option<bool>,
    t_external_optout_message: Option<String>,
    t_can_attach_files: Option<bool>,
    t_can_external_optout: Option<bool>,
    t_version: Option<i64>,
    t_created_at: Option<I>,
    t_updated_at: Option<I>,
}

impl<I> JoinedOrganizationRow<I> {
    /// The `JOINED_ORGANIZATION_COLUMNS` of a row by position, from column `first` on:
    /// for a statement that reads them after columns of its own, without looking each
    /// name up or comparing each column's type with the field's (as `LivePageRow`: the
    /// statements are this crate's own, their types checked by the storage contract).
    pub(crate) fn from_row_at<'r, R>(row: &'r R, first: usize) -> Result<Self, sqlx::Error>
    where
        R: sqlx::Row,
        usize: ColumnIndex<R>,
        i64: Decode<'r, R::Database> + Type<R::Database>,
        bool: Decode<'r, R::Database> + Type<R::Database>,
        String: Decode<'r, R::Database> + Type<R::Database>,
        I: Decode<'r, R::Database> + Type<R::Database>,
    {
        Ok(Self {
            t_id: row.try_get_unchecked(first)?,
            t_parent_id: row.try_get_unchecked(first + 1)?,
            t_name: row.try_get_unchecked(first + 2)?,
            t_contact_email: row.try_get_unchecked(first + 3)?,
            t_nickname: row.try_get_unchecked(first + 4)?,
            t_notify_message_status: row.try_get_unchecked(first + 5)?,
            t_notify_optouts: row.try_get_unchecked(first + 6)?,
            t_external_optout_message: row.try_get_unchecked(first + 7)?,
            t_can_attach_files: row.try_get_unchecked(first + 8)?,
            t_can_external_optout: row.try_get_unchecked(first + 9)?,
            t_version: row.try_get_unchecked(first + 10)?,
            t_created_at: row.try_get_unchecked(first + 11)?,
            t_updated_at: row.try_get_unchecked(first + 12)?,
        })
    }
}

impl<I: StoredInstant> JoinedOrganizationRow<I> {
    /// The organization, `None` when the join matched no row.
    pub(crate) fn organization(self) -> Result<Option<Organization>, StorageError> {
        let Some(id) = self.t_id else {
            return Ok(None);
        };
        fn present<T>(id: i64, column: &str, value: Option<T>) -> Result<T, StorageError> {
            value.ok_or_else(|| corrupt("organization", id, format!("{column} is null")))
        }
        Organization::try_from(OrganizationRow {
            id,
            parent_id: self.t_parent_id,
            name: present(id, "name", self.t_name)?,
            contact_email: self.t_contact_email,
            nickname: present(id, "nickname", self.t_nickname)?,
            notify_message_status: present(
                id,
                "notify_message_status",
                self.t_notify_message_status,
            )?,
            notify_optouts: present(id, "notify_optouts", self.t_notify_optouts)?,
            external_optout_message: present(
                id,
                "external_optout_message",
                self.t_external_optout_message,
            )?,
            can_attach_files: present(id, "can_attach_files", self.t_can_attach_files)?,
            can_external_optout: present(id, "can_external_optout", self.t_can_external_optout)?,
            version: present(id, "version", self.t_version)?,
            created_at: present(id, "created_at", self.t_created_at)?,
            updated_at: present(id, "updated_at", self.t_updated_at)?,
        })
        .map(Some)
    }
}

/// `live_page`'s statement: `$1`'s live children by id, `$2` rows from `$3`, preceded by
/// `$1` itself when `$4`, each row with the number of live children and whether `$1` is
/// live; one row of `NULL` organization columns when the page is empty.
static LIVE_PAGE: LazyLock<String> = LazyLock::new(|| {
    format!(
        "select {JOINED_ORGANIZATION_COLUMNS}, n.children, p.parent_live from \
         (select count(*) as children from organizations \
          where parent_id = $1 and archived_at is null) n \
         cross join (select count(*) as parent_live from organizations \
          where id = $1 and archived_at is null) p \
         left join (\
          select 0 as position, {ORGANIZATION_COLUMNS} from organizations \
          where id = $1 and archived_at is null and $4 \
          union all \
          select * from (select 1 as position, {ORGANIZATION_COLUMNS} from organizations \
           where parent_id = $1 and archived_at is null order by id limit $2 offset $3) c\
         ) t on 1 = 1 \
         order by t.position, t.id"
    )
});

/// A row of `LIVE_PAGE`.
struct LivePageRow<I> {
    organization: JoinedOrganizationRow<I>,
    children: i64,
    parent_live: i64,
}

/// Decoded by position, in `LIVE_PAGE`'s column order (`JOINED_ORGANIZATION_COLUMNS`, then
/// the two counts), without comparing each column's type with the field's: a page decodes
/// 15 columns of up to 51 rows, and finding each column by its name, then checking its
/// type (a text column is compared with several), cost more than decoding it. The
/// statement is this module's own: its types are checked by the storage contract, which
/// reads its pages on every backend, not by every row.
impl<'r, R, I> FromRow<'r, R> for LivePageRow<I>
where
    R: Row,
    usize: ColumnIndex<R>,
    i64: Decode<'r, R::Database>,
    bool: Decode<'r, R::Database>,
    String: Decode<'r, R::Database>,
    I: Decode<'r, R::Database>,
{
    fn from_row(row: &'r R) -> Result<Self, sqlx::Error> {
        Ok(Self {
            organization: JoinedOrganizationRow {
                t_id: row.try_get_unchecked(0)?,
                t_parent_id: row.try_get_unchecked(1)?,
                t_name: row.try_get_unchecked(2)?,
                t_contact_email: row.try_get_unchecked(3)?,
                t_nickname: row.try_get_unchecked(4)?,
                t_notify_message_status: row.try_get_unchecked(5)?,
                t_notify_optouts: row.try_get_unchecked(6)?,
                t_external_optout_message: row.try_get_unchecked(7)?,
                t_can_attach_files: row.try_get_unchecked(8)?,
                t_can_external_optout: row.try_get_unchecked(9)?,
                t_version: row.try_get_unchecked(10)?,
                t_created_at: row.try_get_unchecked(11)?,
                t_updated_at: row.try_get_unchecked(12)?,
            },
            children: row.try_get_unchecked(13)?,
            parent_live: row.try_get_unchecked(14)?,
        })
    }
}

/// What `live_page` read.
#[derive(Default)]
struct LivePage {
    items: Vec<Organization>,
    children: u64,
    parent_live: bool,
}

impl<I: StoredInstant> TryFrom<OrganizationRow<I>> for Organization {
    type Error = StorageError;

    fn try_from(row: OrganizationRow<I>) -> Result<Self, StorageError> {
        let id = row.id;
        Ok(Organization {
            id: OrganizationId::new(row.id),
            // Moved, not copied, when stored as `parse` returns them (as they are).
            name: OrganizationName::from_stored(row.name)
                .map_err(|e| corrupt("organization", id, e))?,
            contact_email: row
                .contact_email
                .map(EmailAddress::from_stored)
                .transpose()
                .map_err(|e| corrupt("organization", id, e))?,
            settings: Settings {
                nickname: Nickname::from_stored(row.nickname)
                    .map_err(|e| corrupt("organization", id, e))?,
                notify_message_status: row.notify_message_status,
                notify_optouts: row.notify_optouts,
                external_optout_message: row.external_optout_message,
            },
            parent: row.parent_id.map(OrganizationId::new),
            can_attach_files: row.can_attach_files,
            can_external_optout: row.can_external_optout,
            version: Version::new(row.version),
            created_at: load("organization", id, row.created_at)?,
            updated_at: load("organization", id, row.updated_at)?,
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
    for<'r> i64: Decode<'r, D::Db>,
    for<'r> bool: Decode<'r, D::Db>,
    for<'r> String: Decode<'r, D::Db> + Type<D::Db>,
    usize: ColumnIndex<<D::Db as Database>::Row>,
    for<'a> &'a str: ColumnIndex<<D::Db as Database>::Row>,
{
    /// Inserts an organization inside the caller's transaction, checking its parent there:
    /// the parent row is locked (`FOR_SHARE`, or the write lock), so that it cannot change
    /// meanwhile.
    pub(crate) async fn insert_organization(
        connection: &mut Connection<D>,
        organization: &NewOrganization,
        now: Timestamp,
    ) -> Result<Organization, CreateOrganizationError> {
        if let Some(parent) = organization.parent {
            let parent: Option<(Option<i64>,)> = sqlx::query_as(&format!(
                "select parent_id from organizations \
                     where id = $1 and archived_at is null{}",
                D::FOR_SHARE
            ))
            .bind(parent.get())
            .fetch_optional(&mut *connection)
            .await
            .map_err(storage_error::<D>)?;
            match parent {
                None => return Err(CreateOrganizationError::ParentNotFound),
                Some((Some(_),)) => return Err(CreateOrganizationError::ParentIsChild),
                Some((None,)) => {}
            }
        }
        let now = stored::<D>(now);
        let row: OrganizationRow<D::Instant> = sqlx::query_as(&format!(
            "insert into organizations (parent_id, name, contact_email, nickname, \
             notify_message_status, notify_optouts, external_optout_message, can_attach_files, \
             can_external_optout, version, created_at, updated_at) \
             values ($1, $2, $3, $4, $5, $6, $7, $8, $9, 1, $10, $10) \
             returning {ORGANIZATION_COLUMNS}"
        ))
        .bind(organization.parent.map(OrganizationId::get))
        .bind(organization.name.as_str())
        .bind(
            organization
                .contact_email
                .as_ref()
                .map(EmailAddress::as_str),
        )
        .bind(organization.settings.nickname.as_str())
        .bind(organization.settings.notify_message_status)
        .bind(organization.settings.notify_optouts)
        .bind(organization.settings.external_optout_message.as_str())
        .bind(organization.can_attach_files)
        .bind(organization.can_external_optout)
        .bind(now)
        .fetch_one(&mut *connection)
        .await
        .map_err(storage_error::<D>)?;
        Ok(Organization::try_from(row)?)
    }

    /// A page of `parent`'s live children by id (`limit` rows from `offset`), preceded by
    /// `parent` itself when `with_parent`; with the number of live children and whether
    /// `parent` is live. One statement: the counts are joined to the page, so that an
    /// empty page still answers them.
    async fn live_page(
        &self,
        parent: OrganizationId,
        with_parent: bool,
        limit: i64,
        offset: i64,
    ) -> Result<LivePage, StorageError> {
        let rows: Vec<LivePageRow<D::Instant>> = on_pool!(
            self,
            sqlx::query_as(&LIVE_PAGE)
                .bind(parent.get())
                .bind(limit.max(0))
                .bind(offset)
                .bind(with_parent),
            fetch_all
        )
        .map_err(storage_error::<D>)?;
        let mut page = LivePage {
            items: Vec::with_capacity(rows.len()),
            ..LivePage::default()
        };
        for row in rows {
            page.children = count(row.children);
            page.parent_live = row.parent_live > 0;
            page.items.extend(row.organization.organization()?);
        }
        Ok(page)
    }

    /// After a conditional write changed nothing: `NotFound` or `VersionMismatch`.
    async fn why_not_written(
        &self,
        id: OrganizationId,
        children_only: bool,
    ) -> Result<WriteError, StorageError> {
        let exists: Option<(i64,)> = on_pool!(
            self,
            sqlx::query_as(
                "select id from organizations \
             where id = $1 and archived_at is null and ($2 = false or parent_id is not null)",
            )
            .bind(id.get())
            .bind(children_only),
            fetch_optional
        )
        .map_err(storage_error::<D>)?;
        Ok(if exists.is_some() {
            WriteError::VersionMismatch
        } else {
            WriteError::NotFound
        })
    }
}

#[async_trait]
impl<D> OrganizationRepository for SqlStorage<D>
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
    for<'r> i64: Decode<'r, D::Db>,
    for<'r> bool: Decode<'r, D::Db>,
    for<'r> String: Decode<'r, D::Db> + Type<D::Db>,
    usize: ColumnIndex<<D::Db as Database>::Row>,
    for<'a> &'a str: ColumnIndex<<D::Db as Database>::Row>,
{
    #[tracing::instrument(skip_all, fields(db.system = D::NAME), err(level = "debug"))]
    async fn find(&self, id: OrganizationId) -> Result<Option<Organization>, StorageError> {
        let row: Option<OrganizationRow<D::Instant>> = on_pool!(self, sqlx::query_as(&format!(
            "select {ORGANIZATION_COLUMNS} from organizations where id = $1 and archived_at is null"
        ))
        .bind(id.get()), fetch_optional)
        .map_err(storage_error::<D>)?;
        row.map(Organization::try_from).transpose()
    }

    #[tracing::instrument(skip_all, fields(db.system = D::NAME), err(level = "debug"))]
    async fn list_visible(
        &self,
        root: OrganizationId,
        page: PageRequest,
    ) -> Result<Page<Organization>, StorageError> {
        // The root first, then its live children by id: the page window shifted by one
        // when the root is on it.
        let (limit, offset) = page_bounds(page);
        let listed = if offset == 0 {
            self.live_page(root, true, limit - 1, 0).await?
        } else {
            self.live_page(root, false, limit, offset - 1).await?
        };
        if !listed.parent_live {
            return Ok(Page {
                items: Vec::new(),
                total: 0,
                request: page,
            });
        }
        Ok(Page {
            items: listed.items,
            total: listed.children + 1,
            request: page,
        })
    }

    #[tracing::instrument(skip_all, fields(db.system = D::NAME), err(level = "debug"))]
    async fn list_children(
        &self,
        parent: OrganizationId,
        page: PageRequest,
    ) -> Result<Page<Organization>, StorageError> {
        let (limit, offset) = page_bounds(page);
        let listed = self.live_page(parent, false, limit, offset).await?;
        Ok(Page {
            items: listed.items,
            total: listed.children,
            request: page,
        })
    }

    #[tracing::instrument(skip_all, fields(db.system = D::NAME), err(level = "debug"))]
    async fn create(
        &self,
        organization: NewOrganization,
        now: Timestamp,
        event: NewEvent,
    ) -> Result<Organization, CreateOrganizationError> {
        let mut transaction = self.begin_write().await.map_err(storage_error::<D>)?;
        let created = Self::insert_organization(&mut transaction, &organization, now).await?;
        let made = Made {
            organization: Some(created.id),
            ..Made::default()
        };
        Self::record_event(&mut transaction, &event, made).await?;
        transaction.commit().await.map_err(storage_error::<D>)?;
        Ok(created)
    }

    #[tracing::instrument(skip_all, fields(db.system = D::NAME), err(level = "debug"))]
    async fn update(
        &self,
        organization: &Organization,
        expected: Option<Version>,
        now: Timestamp,
        event: Option<NewEvent>,
    ) -> Result<Organization, WriteError> {
        // Binds `UPDATE`'s values to a query.
        macro_rules! bind_update {
            ($query:expr) => {
                $query
                    .bind(organization.id.get())
                    .bind(organization.name.as_str())
                    .bind(
                        organization
                            .contact_email
                            .as_ref()
                            .map(EmailAddress::as_str),
                    )
                    .bind(organization.settings.nickname.as_str())
                    .bind(organization.settings.notify_message_status)
                    .bind(organization.settings.notify_optouts)
                    .bind(organization.settings.external_optout_message.as_str())
                    .bind(stored::<D>(now))
                    .bind(expected.map(Version::get))
            };
        }
        let row: Option<OrganizationRow<D::Instant>> = if D::INSERT_IN_WITH {
            // One statement, the change and its event together: no transaction to begin
            // and commit around it.
            match &event {
                Some(event) => {
                    let binds = EventBinds::of(event, Made::of(organization.id))?;
                    on_pool!(
                        self,
                        bind_event!(bind_update!(sqlx::query_as(&UPDATE_WITH_EVENT)), binds),
                        fetch_optional
                    )
                }
                None => on_pool!(self, bind_update!(sqlx::query_as(&UPDATE)), fetch_optional),
            }
            .map_err(storage_error::<D>)?
        } else {
            let mut transaction = self.begin_write().await.map_err(storage_error::<D>)?;
            let row = bind_update!(sqlx::query_as(&UPDATE))
                .fetch_optional(&mut *transaction)
                .await
                .map_err(storage_error::<D>)?;
            if row.is_some() {
                if let Some(event) = &event {
                    Self::record_event(&mut transaction, event, Made::of(organization.id)).await?;
                }
                transaction.commit().await.map_err(storage_error::<D>)?;
            }
            // Dropped uncommitted when nothing was written.
            row
        };
        let Some(row) = row else {
            return Err(self.why_not_written(organization.id, false).await?);
        };
        Ok(Organization::try_from(row)?)
    }

    #[tracing::instrument(skip_all, fields(db.system = D::NAME), err(level = "debug"))]
    async fn archive_child(
        &self,
        id: OrganizationId,
        expected: Option<Version>,
        now: Timestamp,
        event: NewEvent,
    ) -> Result<(), WriteError> {
        let mut transaction = self.begin_write().await.map_err(storage_error::<D>)?;
        let archived = sqlx::query(
            "update organizations set archived_at = $2, version = version + 1, updated_at = $2 \
             where id = $1 and parent_id is not null and archived_at is null \
             and ($3 is null or version = $3)",
        )
        .bind(id.get())
        .bind(stored::<D>(now))
        .bind(expected.map(Version::get))
        .execute(&mut *transaction)
        .await
        .map_err(storage_error::<D>)?;
        if D::rows_affected(&archived) != 1 {
            drop(transaction);
            return Err(self.why_not_written(id, true).await?);
        }
        Self::record_event(&mut transaction, &event, Made::of(id)).await?;
        transaction.commit().await.map_err(storage_error::<D>)?;
        Ok(())
    }

    #[tracing::instrument(skip_all, fields(db.system = D::NAME), err(level = "debug"))]
    async fn restore(
        &self,
        id: OrganizationId,
        now: Timestamp,
        event: NewEvent,
    ) -> Result<(), WriteError> {
        let mut transaction = self.begin_write().await.map_err(storage_error::<D>)?;
        let restored = sqlx::query(
            "update organizations set archived_at = null, version = version + 1, updated_at = $2 \
             where id = $1 and archived_at is not null",
        )
        .bind(id.get())
        .bind(stored::<D>(now))
        .execute(&mut *transaction)
        .await
        .map_err(storage_error::<D>)?;
        if D::rows_affected(&restored) != 1 {
            return Err(WriteError::NotFound);
        }
        Self::record_event(&mut transaction, &event, Made::of(id)).await?;
        transaction.commit().await.map_err(storage_error::<D>)?;
        Ok(())
    }

    #[tracing::instrument(skip_all, fields(db.system = D::NAME), err(level = "debug"))]
    async fn purge_archived_before(&self, before: Timestamp) -> Result<u64, StorageError> {
        // Users, their credentials, invitations, opt-outs and events go with their
        // organization (`on delete cascade`); outbox rows are not linked to organizations
        // and stay.
        let purged = on_pool!(
            self,
            sqlx::query("delete from organizations where archived_at < $1")
                .bind(stored::<D>(before)),
            execute
        )
        .map_err(storage_error::<D>)?;
        Ok(D::rows_affected(&purged))
    }

    #[tracing::instrument(skip_all, fields(db.system = D::NAME), err(level = "debug"))]
    async fn set_flags(
        &self,
        id: OrganizationId,
        can_attach_files: Option<bool>,
        can_external_optout: Option<bool>,
        now: Timestamp,
        event: Option<NewEvent>,
    ) -> Result<Organization, WriteError> {
        let mut transaction = self.begin_write().await.map_err(storage_error::<D>)?;
        let row: Option<OrganizationRow<D::Instant>> = sqlx::query_as(&format!(
            "update organizations set \
             can_attach_files = coalesce($2, can_attach_files), \
             can_external_optout = coalesce($3, can_external_optout), \
             version = version + 1, updated_at = $4 \
             where id = $1 and archived_at is null \
             returning {ORGANIZATION_COLUMNS}"
        ))
        .bind(id.get())
        .bind(can_attach_files)
        .bind(can_external_optout)
        .bind(stored::<D>(now))
        .fetch_optional(&mut *transaction)
        .await
        .map_err(storage_error::<D>)?;
        let Some(row) = row else {
            return Err(WriteError::NotFound);
        };
        let changed = Organization::try_from(row)?;
        if let Some(event) = &event {
            Self::record_event(&mut transaction, event, Made::of(id)).await?;
        }
        transaction.commit().await.map_err(storage_error::<D>)?;
        Ok(changed)
    }
}
