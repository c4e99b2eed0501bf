//! `Outbox` on every SQL backend: e-mails queued in the transactions that cause them,
//! claimed by delivery workers with one `update … returning` and a lease (rows another
//! worker is claiming are skipped where the dialect locks rows: `SKIP_LOCKED`).

use async_trait::async_trait;
use domain::mail::{EmailKind, OutgoingEmail};
use domain::{Duration, EmailAddress, OutboxMessageId, Timestamp};
use ports::outbound::{LeaseError, Outbox, OutboxLease, OutboxMessage, StorageError};
use sqlx::{ColumnIndex, Database, Decode, Encode, Executor, IntoArguments, Type};

use crate::instant::{StoredInstant, load};
use crate::paging::count;
use crate::{Connection, Dialect, SqlStorage, stored};
use crate::{corrupt, storage_error};

#[derive(sqlx::FromRow)]
struct OutboxRow<I> {
    id: i64,
    claims: i64,
    kind: String,
    recipient: String,
    subject: String,
    text_body: String,
    html_body: String,
    attempts: i32,
    created_at: I,
}

impl<I: StoredInstant> TryFrom<OutboxRow<I>> for OutboxMessage {
    type Error = StorageError;

    fn try_from(row: OutboxRow<I>) -> Result<Self, StorageError> {
        let id = row.id;
        Ok(OutboxMessage {
            id: OutboxMessageId::new(row.id),
            claim: row.claims,
            email: OutgoingEmail {
                kind: EmailKind::parse(&row.kind)
                    .ok_or_else(|| corrupt("outbox", id, &row.kind))?,
                to: EmailAddress::parse(&row.recipient).map_err(|e| corrupt("outbox", id, e))?,
                subject: row.subject,
                text: row.text_body,
                html: row.html_body,
            },
            attempts: u32::try_from(row.attempts).map_err(|e| corrupt("outbox", id, e))?,
            created_at: load("outbox", id, row.created_at)?,
        })
    }
}

/// One row updated → the lease held; none → it was lost.
///
/// Every leased update has the same condition (`$1` the id, `$2` the claim): the claim is
/// still the message's latest and the message still waits. A claim whose lease ran out
/// but that nobody took over still holds. The updates that settle a message (delivered,
/// dead) blank its subject and bodies: an invitation's body holds its token (CONTRACT §9).
fn held<D: Dialect>(
    lease: OutboxLease,
    done: Result<<D::Db as Database>::QueryResult, sqlx::Error>,
) -> Result<(), LeaseError> {
    match done {
        Ok(done) if D::rows_affected(&done) == 1 => Ok(()),
        Ok(_) => Err(LeaseError::lost(lease)),
        Err(error) => Err(LeaseError::Storage(storage_error::<D>(error))),
    }
}

impl<D> SqlStorage<D>
where
    D: Dialect,
    for<'c> &'c mut Connection<D>: Executor<'c, Database = D::Db>,
    for<'q> <D::Db as Database>::Arguments<'q>: IntoArguments<'q, D::Db>,
    for<'q> i64: Encode<'q, D::Db> + Type<D::Db>,
    for<'q> &'q str: Encode<'q, D::Db> + Type<D::Db>,
    for<'r> i64: Decode<'r, D::Db>,
    for<'r> i32: Decode<'r, D::Db> + Type<D::Db>,
    for<'r> String: Decode<'r, D::Db> + Type<D::Db>,
    usize: ColumnIndex<<D::Db as Database>::Row>,
    for<'a> &'a str: ColumnIndex<<D::Db as Database>::Row>,
{
    /// Queues an e-mail inside the caller's transaction, due at once.
    pub(crate) async fn enqueue(
        connection: &mut Connection<D>,
        email: &OutgoingEmail,
        now: Timestamp,
    ) -> Result<(), StorageError> {
        let now = stored::<D>(now);
        sqlx::query(
            "insert into outbox (kind, recipient, subject, text_body, html_body, attempts, \
             created_at, next_attempt_at) values ($1, $2, $3, $4, $5, 0, $6, $6)",
        )
        .bind(email.kind.as_str())
        .bind(email.to.as_str())
        .bind(email.subject.as_str())
        .bind(email.text.as_str())
        .bind(email.html.as_str())
        .bind(now)
        .execute(&mut *connection)
        .await
        .map(drop)
        .map_err(storage_error::<D>)
    }
}

#[async_trait]
impl<D> Outbox for SqlStorage<D>
where
    D: Dialect,
    for<'c> &'c mut Connection<D>: Executor<'c, Database = D::Db>,
    for<'q> <D::Db as Database>::Arguments<'q>: IntoArguments<'q, D::Db>,
    for<'q> i64: Encode<'q, D::Db> + Type<D::Db>,
    for<'q> &'q str: Encode<'q, D::Db> + Type<D::Db>,
    for<'r> i64: Decode<'r, D::Db>,
    for<'r> i32: Decode<'r, D::Db> + Type<D::Db>,
    for<'r> String: Decode<'r, D::Db> + Type<D::Db>,
    usize: ColumnIndex<<D::Db as Database>::Row>,
    for<'a> &'a str: ColumnIndex<<D::Db as Database>::Row>,
{
    #[tracing::instrument(skip_all, fields(db.system = D::NAME), err(level = "debug"))]
    async fn claim_due(
        &self,
        now: Timestamp,
        limit: u32,
        lease: Duration,
    ) -> Result<Vec<OutboxMessage>, StorageError> {
        let locked_until = stored::<D>(now + lease);
        let now = stored::<D>(now);
        // Rows another worker is claiming are skipped, not waited for (`SKIP_LOCKED`), or
        // the statement runs alone under the write lock; a row is only returned while its
        // lease (if any) has ended.
        let mut rows: Vec<OutboxRow<D::Instant>> = on_pool!(
            self,
            sqlx::query_as(&format!(
                "update outbox set locked_until = $3, claims = claims + 1 \
             where id in (select id from outbox \
                 where delivered_at is null and dead_at is null and next_attempt_at <= $1 \
                 and (locked_until is null or locked_until <= $1) \
                 order by next_attempt_at, id limit $2{}) \
             returning id, claims, kind, recipient, subject, text_body, html_body, attempts, \
             created_at",
                D::SKIP_LOCKED
            ))
            .bind(now)
            .bind(i64::from(limit))
            .bind(locked_until),
            fetch_all
        )
        .map_err(storage_error::<D>)?;
        rows.sort_by_key(|row| row.id);
        rows.into_iter().map(OutboxMessage::try_from).collect()
    }

    #[tracing::instrument(skip_all, fields(db.system = D::NAME), err(level = "debug"))]
    async fn renew_lease(
        &self,
        lease: OutboxLease,
        locked_until: Timestamp,
    ) -> Result<(), LeaseError> {
        let query = sqlx::query(
            "update outbox set locked_until = $3 \
             where id = $1 and claims = $2 and delivered_at is null and dead_at is null",
        )
        .bind(lease.id.get())
        .bind(lease.claim)
        .bind(stored::<D>(locked_until));
        held::<D>(lease, on_pool!(self, query, execute))
    }

    #[tracing::instrument(skip_all, fields(db.system = D::NAME), err(level = "debug"))]
    async fn mark_delivered(&self, lease: OutboxLease, now: Timestamp) -> Result<(), LeaseError> {
        let query = sqlx::query(
            "update outbox set delivered_at = $3, locked_until = null, \
             subject = '', text_body = '', html_body = '' \
             where id = $1 and claims = $2 and delivered_at is null and dead_at is null",
        )
        .bind(lease.id.get())
        .bind(lease.claim)
        .bind(stored::<D>(now));
        held::<D>(lease, on_pool!(self, query, execute))
    }

    #[tracing::instrument(skip_all, fields(db.system = D::NAME), err(level = "debug"))]
    async fn mark_failed(
        &self,
        lease: OutboxLease,
        next_attempt_at: Timestamp,
        error: &str,
    ) -> Result<(), LeaseError> {
        let query = sqlx::query(
            "update outbox set attempts = attempts + 1, next_attempt_at = $3, last_error = $4, \
             locked_until = null \
             where id = $1 and claims = $2 and delivered_at is null and dead_at is null",
        )
        .bind(lease.id.get())
        .bind(lease.claim)
        .bind(stored::<D>(next_attempt_at))
        .bind(error);
        held::<D>(lease, on_pool!(self, query, execute))
    }

    #[tracing::instrument(skip_all, fields(db.system = D::NAME), err(level = "debug"))]
    async fn mark_dead(
        &self,
        lease: OutboxLease,
        now: Timestamp,
        error: &str,
    ) -> Result<(), LeaseError> {
        let query = sqlx::query(
            "update outbox set attempts = attempts + 1, dead_at = $3, last_error = $4, \
             locked_until = null, subject = '', text_body = '', html_body = '' \
             where id = $1 and claims = $2 and delivered_at is null and dead_at is null",
        )
        .bind(lease.id.get())
        .bind(lease.claim)
        .bind(stored::<D>(now))
        .bind(error);
        held::<D>(lease, on_pool!(self, query, execute))
    }

    #[tracing::instrument(skip_all, fields(db.system = D::NAME), err(level = "debug"))]
    async fn prune(&self, before: Timestamp) -> Result<u64, StorageError> {
        // Two partial indexes (delivered, dead) find the rows; waiting ones are kept.
        on_pool!(
            self,
            sqlx::query("delete from outbox where delivered_at <= $1 or dead_at <= $1")
                .bind(stored::<D>(before)),
            execute
        )
        .map(|done| D::rows_affected(&done))
        .map_err(storage_error::<D>)
    }

    #[tracing::instrument(skip_all, fields(db.system = D::NAME), err(level = "debug"))]
    async fn backlog(&self) -> Result<u64, StorageError> {
        let (total,): (i64,) = on_pool!(
            self,
            sqlx::query_as(
                "select count(*) from outbox where delivered_at is null and dead_at is null",
            ),
            fetch_one
        )
        .map_err(storage_error::<D>)?;
        Ok(count(total))
    }

    #[tracing::instrument(skip_all, fields(db.system = D::NAME), err(level = "debug"))]
    async fn dead(&self) -> Result<u64, StorageError> {
        let (total,): (i64,) = on_pool!(
            self,
            sqlx::query_as("select count(*) from outbox where dead_at is not null"),
            fetch_one
        )
        .map_err(storage_error::<D>)?;
        Ok(count(total))
    }
}
