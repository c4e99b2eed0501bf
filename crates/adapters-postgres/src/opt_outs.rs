//! `OptOutRepository` on PostgreSQL: one opt-out per organization and address, newest
//! first, exported in keyset pages (one short read each).

use async_trait::async_trait;
use domain::mail::OutgoingEmail;
use domain::optout::{OptOut, OptOutFilter, OptOutOrigin, OptOutRecorded};
use domain::pagination::{Page, PageRequest};
use domain::{EmailAddress, OrganizationId, Timestamp};
use ports::outbound::{OptOutCursor, OptOutExportPage, OptOutRepository, StorageError};

use crate::PostgresStorage;
use crate::errors::{corrupt, storage_error};
use crate::outbox::enqueue;
use crate::paging::{page_bounds, page_of};
use crate::time::micros;

/// The filters, with `$1` the organization, `$2` the address and `$3` the origin.
const FILTER: &str = "organization_id = $1 and ($2::text is null or address = $2) \
     and ($3::text is null or origin = $3)";

/// The columns every opt-out query reads, in `OptOutRow` order.
const OPT_OUT_COLUMNS: &str = "id, organization_id, address, origin, creation_date";

#[derive(sqlx::FromRow)]
struct OptOutRow {
    id: i64,
    organization_id: i64,
    address: String,
    origin: String,
    creation_date: Timestamp,
}

impl TryFrom<OptOutRow> for OptOut {
    type Error = StorageError;

    fn try_from(row: OptOutRow) -> Result<Self, StorageError> {
        let id = row.id;
        Ok(OptOut {
            organization_id: OrganizationId::new(row.organization_id),
            address: EmailAddress::parse(&row.address).map_err(|e| corrupt("opt-out", id, e))?,
            origin: OptOutOrigin::parse(&row.origin).map_err(|e| corrupt("opt-out", id, e))?,
            creation_date: row.creation_date,
        })
    }
}

/// The list-order position of `row`.
fn cursor_of(row: &OptOutRow) -> Result<OptOutCursor, StorageError> {
    Ok(OptOutCursor {
        creation_date: row.creation_date,
        id: row.id,
    })
}

#[async_trait]
impl OptOutRepository for PostgresStorage {
    #[tracing::instrument(skip_all, err(level = "debug"))]
    async fn record(
        &self,
        opt_out: OptOut,
        notice: Option<OutgoingEmail>,
    ) -> Result<OptOutRecorded, StorageError> {
        let creation_date = micros(opt_out.creation_date);
        let mut transaction = self.pool.begin().await.map_err(storage_error)?;
        // Insert, or (when the address is there already, also when a concurrent insert
        // just won) update: `on conflict do nothing` waits for that insert to settle.
        let inserted: Option<OptOutRow> = sqlx::query_as(&format!(
            "insert into opt_outs (organization_id, address, origin, creation_date) \
             values ($1, $2, $3, $4) on conflict (organization_id, address) do nothing \
             returning {OPT_OUT_COLUMNS}"
        ))
        .bind(opt_out.organization_id.get())
        .bind(opt_out.address.as_str())
        .bind(opt_out.origin.as_str())
        .bind(creation_date)
        .fetch_optional(&mut *transaction)
        .await
        .map_err(storage_error)?;
        let recorded = if let Some(row) = inserted {
            if let Some(notice) = &notice {
                enqueue(&mut transaction, notice, creation_date).await?;
            }
            OptOutRecorded::Created(OptOut::try_from(row)?)
        } else {
            let row: OptOutRow = sqlx::query_as(&format!(
                "update opt_outs set origin = $3, creation_date = $4 \
                 where organization_id = $1 and address = $2 returning {OPT_OUT_COLUMNS}"
            ))
            .bind(opt_out.organization_id.get())
            .bind(opt_out.address.as_str())
            .bind(opt_out.origin.as_str())
            .bind(creation_date)
            .fetch_one(&mut *transaction)
            .await
            .map_err(storage_error)?;
            OptOutRecorded::Updated(OptOut::try_from(row)?)
        };
        transaction.commit().await.map_err(storage_error)?;
        Ok(recorded)
    }

    #[tracing::instrument(skip_all, err(level = "debug"))]
    async fn list(
        &self,
        organization: OrganizationId,
        filter: OptOutFilter,
        page: PageRequest,
    ) -> Result<Page<OptOut>, StorageError> {
        let (limit, offset) = page_bounds(page);
        let origin = filter.origin.map(OptOutOrigin::as_str);
        let (total,): (i64,) =
            sqlx::query_as(&format!("select count(*) from opt_outs where {FILTER}"))
                .bind(organization.get())
                .bind(filter.address.as_deref())
                .bind(origin)
                .fetch_one(&self.pool)
                .await
                .map_err(storage_error)?;
        let rows: Vec<OptOutRow> = sqlx::query_as(&format!(
            "select {OPT_OUT_COLUMNS} from opt_outs where {FILTER} \
             order by creation_date desc, id desc limit $4 offset $5"
        ))
        .bind(organization.get())
        .bind(filter.address.as_deref())
        .bind(origin)
        .bind(limit)
        .bind(offset)
        .fetch_all(&self.pool)
        .await
        .map_err(storage_error)?;
        page_of(rows, total, page)
    }

    #[tracing::instrument(skip_all, err(level = "debug"))]
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
        let mut query = sqlx::query_as::<_, OptOutRow>(&sql)
            .bind(organization.get())
            .bind(filter.address.as_deref())
            .bind(origin)
            .bind(i64::from(limit));
        if let Some(cursor) = after {
            query = query.bind(cursor.creation_date).bind(cursor.id);
        }
        let rows = query.fetch_all(&self.pool).await.map_err(storage_error)?;
        let full = rows.len() >= usize::try_from(limit).unwrap_or(usize::MAX);
        let next = match rows.last() {
            Some(last) if full => Some(cursor_of(last)?),
            _ => None,
        };
        let rows = rows
            .into_iter()
            .map(OptOut::try_from)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(OptOutExportPage { rows, next })
    }
}
