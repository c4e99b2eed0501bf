//! `Outbox` on PostgreSQL: e-mails queued in the transactions that cause them, claimed
//! by delivery workers with `for update skip locked` and a lease.

use async_trait::async_trait;
use domain::mail::{EmailKind, OutgoingEmail};
use domain::{Duration, EmailAddress, OutboxMessageId, Timestamp};
use ports::outbound::{Outbox, OutboxMessage, StorageError};
use sqlx::PgConnection;

use crate::PostgresStorage;
use crate::errors::{corrupt, storage_error};
use crate::paging::count;
use crate::time::micros;

#[derive(sqlx::FromRow)]
struct OutboxRow {
    id: i64,
    kind: String,
    recipient: String,
    subject: String,
    text_body: String,
    html_body: String,
    attempts: i32,
    created_at: Timestamp,
}

impl TryFrom<OutboxRow> for OutboxMessage {
    type Error = StorageError;

    fn try_from(row: OutboxRow) -> Result<Self, StorageError> {
        let id = row.id;
        Ok(OutboxMessage {
            id: OutboxMessageId::new(row.id),
            email: OutgoingEmail {
                kind: EmailKind::parse(&row.kind)
                    .ok_or_else(|| corrupt("outbox", id, &row.kind))?,
                to: EmailAddress::parse(&row.recipient).map_err(|e| corrupt("outbox", id, e))?,
                subject: row.subject,
                text: row.text_body,
                html: row.html_body,
            },
            attempts: u32::try_from(row.attempts).map_err(|e| corrupt("outbox", id, e))?,
            created_at: row.created_at,
        })
    }
}

/// Queues an e-mail inside the caller's transaction, due at once.
pub(crate) async fn enqueue(
    connection: &mut PgConnection,
    email: &OutgoingEmail,
    now: Timestamp,
) -> Result<(), StorageError> {
    let now = micros(now);
    sqlx::query(
        "insert into outbox (kind, recipient, subject, text_body, html_body, attempts, \
         created_at, next_attempt_at) values ($1, $2, $3, $4, $5, 0, $6, $6)",
    )
    .bind(email.kind.as_str())
    .bind(email.to.as_str())
    .bind(&email.subject)
    .bind(&email.text)
    .bind(&email.html)
    .bind(now)
    .execute(&mut *connection)
    .await
    .map(drop)
    .map_err(storage_error)
}

#[async_trait]
impl Outbox for PostgresStorage {
    #[tracing::instrument(skip_all, err(level = "debug"))]
    async fn claim_due(
        &self,
        now: Timestamp,
        limit: u32,
        lease: Duration,
    ) -> Result<Vec<OutboxMessage>, StorageError> {
        let now = micros(now);
        let locked_until = micros(now + lease);
        // Rows another worker is claiming are skipped, not waited for; a row is only
        // returned while its lease (if any) has ended.
        let mut rows: Vec<OutboxRow> = sqlx::query_as(
            "update outbox set locked_until = $3 \
             where id in (select id from outbox \
                 where delivered_at is null and dead_at is null and next_attempt_at <= $1 \
                 and (locked_until is null or locked_until <= $1) \
                 order by next_attempt_at, id limit $2 for update skip locked) \
             returning id, kind, recipient, subject, text_body, html_body, attempts, created_at",
        )
        .bind(now)
        .bind(i64::from(limit))
        .bind(locked_until)
        .fetch_all(&self.pool)
        .await
        .map_err(storage_error)?;
        rows.sort_by_key(|row| row.id);
        rows.into_iter().map(OutboxMessage::try_from).collect()
    }

    #[tracing::instrument(skip_all, err(level = "debug"))]
    async fn mark_delivered(
        &self,
        id: OutboxMessageId,
        now: Timestamp,
    ) -> Result<(), StorageError> {
        sqlx::query("update outbox set delivered_at = $2, locked_until = null where id = $1")
            .bind(id.get())
            .bind(micros(now))
            .execute(&self.pool)
            .await
            .map(drop)
            .map_err(storage_error)
    }

    #[tracing::instrument(skip_all, err(level = "debug"))]
    async fn mark_failed(
        &self,
        id: OutboxMessageId,
        next_attempt_at: Timestamp,
        error: &str,
    ) -> Result<(), StorageError> {
        sqlx::query(
            "update outbox set attempts = attempts + 1, next_attempt_at = $2, last_error = $3, \
             locked_until = null where id = $1",
        )
        .bind(id.get())
        .bind(micros(next_attempt_at))
        .bind(error)
        .execute(&self.pool)
        .await
        .map(drop)
        .map_err(storage_error)
    }

    #[tracing::instrument(skip_all, err(level = "debug"))]
    async fn mark_dead(
        &self,
        id: OutboxMessageId,
        now: Timestamp,
        error: &str,
    ) -> Result<(), StorageError> {
        sqlx::query(
            "update outbox set attempts = attempts + 1, dead_at = $2, last_error = $3, \
             locked_until = null where id = $1",
        )
        .bind(id.get())
        .bind(micros(now))
        .bind(error)
        .execute(&self.pool)
        .await
        .map(drop)
        .map_err(storage_error)
    }

    #[tracing::instrument(skip_all, err(level = "debug"))]
    async fn backlog(&self) -> Result<u64, StorageError> {
        let (total,): (i64,) = sqlx::query_as(
            "select count(*) from outbox where delivered_at is null and dead_at is null",
        )
        .fetch_one(&self.pool)
        .await
        .map_err(storage_error)?;
        Ok(count(total))
    }

    #[tracing::instrument(skip_all, err(level = "debug"))]
    async fn dead(&self) -> Result<u64, StorageError> {
        let (total,): (i64,) =
            sqlx::query_as("select count(*) from outbox where dead_at is not null")
                .fetch_one(&self.pool)
                .await
                .map_err(storage_error)?;
        Ok(count(total))
    }
}
