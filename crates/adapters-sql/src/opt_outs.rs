//! `OptOutRepository` on every SQL backend: one opt-out per organization and address, newest
//! first, exported in keyset pages (one short read each).

use async_trait::async_trait;
use domain::audit::NewEvent;
use domain::mail::OutgoingEmail;
use domain::optout::{OptOut, OptOutFilter, OptOutOrigin, OptOutRecorded};
use domain::pagination::{Page, PageRequest};
use domain::{EmailAddress, ErrorCode, OrganizationId};
use ports::outbound::{OptOutCursor, OptOutExportPage, OptOutRepository, StorageError};
use sqlx::{ColumnIndex, Database, Decode, Encode, Executor, IntoArguments, Type};

use crate::events::Made;
use crate::instant::{StoredInstant, load};
use crate::paging::{page_bounds, page_of};
use crate::{Connection, Dialect, SqlStorage, stored};
use crate::{corrupt, storage_error};

/// The filters, with `$1` the organization, `$2` the address and `$3` the origin.
const FILTER: &str = "organization_id = $1 and ($2 is null or address = $2) \
     and ($3 is null or origin = $3)";

/// The columns every opt-out query reads, in `OptOutRow` order.
const OPT_OUT_COLUMNS: &str = "id, organization_id, address, origin, creation_date";

#[derive(sqlx::FromRow)]
struct OptOutRow<I> {
    id: i64,
    organization_id: i64,
    address: String,
    origin: String,
    creation_date: I,
}

impl<I: StoredInstant> TryFrom<OptOutRow<I>> for OptOut {
    type Error = StorageError;

    fn try_from(row: OptOutRow<I>) -> Result<Self, StorageError> {
        let id = row.id;
        Ok(OptOut {
            organization_id: OrganizationId::new(row.organization_id),
            address: EmailAddress::parse(&row.address).map_err(|e| corrupt("opt-out", id, e))?,
            origin: OptOutOrigin::parse(&row.origin).map_err(|e| corrupt("opt-out", id, e))?,
            creation_date: load("opt-out", id, row.creation_date)?,
        })
    }
}

/// A row of an export page, decoded by column position (in `OPT_OUT_COLUMNS` order) and
/// without a copy of its origin.
struct ExportRow<I> {
    id: i64,
    organization_id: i64,
    address: String,
    origin: Result<OptOutOrigin, ErrorCode>,
    creation_date: I,
}

impl<'r, R, I> sqlx::FromRow<'r, R> for ExportRow<I>
where
    R: sqlx::Row,
    usize: ColumnIndex<R>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
    String: Decode<'r, R::Database> + Type<R::Database>,
    &'r str: Decode<'r, R::Database> + Type<R::Database>,
    I: Decode<'r, R::Database> + Type<R::Database>,
{
    fn from_row(row: &'r R) -> Result<Self, sqlx::Error> {
        Ok(Self {
            id: row.try_get(0)?,
            organization_id: row.try_get(1)?,
            address: row.try_get(2)?,
            origin: OptOutOrigin::parse(row.try_get::<&str, _>(3)?),
            creation_date: row.try_get(4)?,
        })
    }
}

impl<I: StoredInstant> TryFrom<ExportRow<I>> for OptOut {
    type Error = StorageError;

    /// As `OptOutRow`'s conversion; a stored address in its normalized form is kept as
    /// it is, anything else is parsed as before (and a corrupt one is an error).
    fn try_from(row: ExportRow<I>) -> Result<Self, StorageError> {
        let id = row.id;
        Ok(OptOut {
            organization_id: OrganizationId::new(row.organization_id),
            address: EmailAddress::from_stored(row.address)
                .map_err(|e| corrupt("opt-out", id, e))?,
            origin: row.origin.map_err(|e| corrupt("opt-out", id, e))?,
            creation_date: load("opt-out", id, row.creation_date)?,
        })
    }
}

#[async_trait]
impl<D> OptOutRepository for SqlStorage<D>
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
    for<'r> &'r str: Decode<'r, D::Db> + Type<D::Db>,
    usize: ColumnIndex<<D::Db as Database>::Row>,
    for<'a> &'a str: ColumnIndex<<D::Db as Database>::Row>,
{
    #[tracing::instrument(skip_all, fields(db.system = D::NAME), err(level = "debug"))]
    async fn record(
        &self,
        opt_out: OptOut,
        notice: Option<OutgoingEmail>,
        event: NewEvent,
    ) -> Result<OptOutRecorded, StorageError> {
        let creation_date = opt_out.creation_date;
        let mut transaction = self.begin_write().await.map_err(storage_error::<D>)?;
        // Insert, or (when the address is there already, also when a concurrent insert
        // just won) update: `on conflict do nothing` waits for that insert to settle, or
        // the write lock keeps concurrent recorders apart.
        let inserted: Option<OptOutRow<D::Instant>> = sqlx::query_as(&format!(
            "insert into opt_outs (organization_id, address, origin, creation_date) \
             values ($1, $2, $3, $4) on conflict (organization_id, address) do nothing \
             returning {OPT_OUT_COLUMNS}"
        ))
        .bind(opt_out.organization_id.get())
        .bind(opt_out.address.as_str())
        .bind(opt_out.origin.as_str())
        .bind(stored::<D>(creation_date))
        .fetch_optional(&mut *transaction)
        .await
        .map_err(storage_error::<D>)?;
        let recorded = if let Some(row) = inserted {
            if let Some(notice) = &notice {
                Self::enqueue(&mut transaction, notice, creation_date).await?;
            }
            OptOutRecorded::Created(OptOut::try_from(row)?)
        } else {
            let row: OptOutRow<D::Instant> = sqlx::query_as(&format!(
                "update opt_outs set origin = $3, creation_date = $4 \
                 where organization_id = $1 and address = $2 returning {OPT_OUT_COLUMNS}"
            ))
            .bind(opt_out.organization_id.get())
            .bind(opt_out.address.as_str())
            .bind(opt_out.origin.as_str())
            .bind(stored::<D>(creation_date))
            .fetch_one(&mut *transaction)
            .await
            .map_err(storage_error::<D>)?;
            OptOutRecorded::Updated(OptOut::try_from(row)?)
        };
        let made = Made::of(recorded.opt_out().organization_id);
        Self::record_event(&mut transaction, &event, made).await?;
        transaction.commit().await.map_err(storage_error::<D>)?;
        Ok(recorded)
    }

    #[tracing::instrument(skip_all, fields(db.system = D::NAME), err(level = "debug"))]
    async fn list(
        &self,
        organization: OrganizationId,
        filter: OptOutFilter,
        page: PageRequest,
    ) -> Result<Page<OptOut>, StorageError> {
        let (limit, offset) = page_bounds(page);
        let origin = filter.origin.map(OptOutOrigin::as_str);
        let (total,): (i64,) = on_pool!(
            self,
            sqlx::query_as(&format!("select count(*) from opt_outs where {FILTER}"))
                .bind(organization.get())
                .bind(filter.address.as_deref())
                .bind(origin),
            fetch_one
        )
        .map_err(storage_error::<D>)?;
        let rows: Vec<OptOutRow<D::Instant>> = on_pool!(
            self,
            sqlx::query_as(&format!(
                "select {OPT_OUT_COLUMNS} from opt_outs where {FILTER} \
             order by creation_date desc, id desc limit $4 offset $5"
            ))
            .bind(organization.get())
            .bind(filter.address.as_deref())
            .bind(origin)
            .bind(limit)
            .bind(offset),
            fetch_all
        )
        .map_err(storage_error::<D>)?;
        page_of(rows, total, page)
    }

    #[tracing::instrument(skip_all, fields(db.system = D::NAME), err(level = "debug"))]
    async fn export_page(
        &self,
        organization: OrganizationId,
        filter: OptOutFilter,
        after: Option<OptOutCursor>,
        limit: u32,
    ) -> Result<OptOutExportPage, StorageError> {
        let origin = filter.origin.map(OptOutOrigin::as_str);
        // Keyset paging on the list order, through `opt_outs_organization_newest_idx`:
        // each page is one indexed range read, however deep into the export it is.
        let after_clause = if after.is_some() {
            "and (creation_date, id) < ($5, $6)"
        } else {
            ""
        };
        let sql = format!(
            "select {OPT_OUT_COLUMNS} from opt_outs where {FILTER} {after_clause} \
             order by creation_date desc, id desc limit $4"
        );
        let mut query = sqlx::query_as::<_, ExportRow<D::Instant>>(&sql)
            .bind(organization.get())
            .bind(filter.address.as_deref())
            .bind(origin)
            .bind(i64::from(limit));
        if let Some(cursor) = after {
            query = query
                .bind(stored::<D>(cursor.creation_date))
                .bind(cursor.id);
        }
        let rows = on_pool!(self, query, fetch_all).map_err(storage_error::<D>)?;
        let full = rows.len() >= usize::try_from(limit).unwrap_or(usize::MAX);
        let last_id = rows.last().map(|row| row.id);
        let rows = rows
            .into_iter()
            .map(OptOut::try_from)
            .collect::<Result<Vec<OptOut>, _>>()?;
        let next = match (rows.last(), last_id) {
            (Some(last), Some(id)) if full => Some(OptOutCursor {
                creation_date: last.creation_date,
                id,
            }),
            _ => None,
        };
        Ok(OptOutExportPage { rows, next })
    }
}
