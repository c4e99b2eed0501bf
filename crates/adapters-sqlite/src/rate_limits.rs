//! `RateLimitStore` on SQLite: counted events of the abuse limits (CONTRACT §5c),
//! acquired in an immediate transaction, which holds the database's single write lock,
//! so that every process on the file enforces one limit.

use async_trait::async_trait;
use chrono::SubsecRound as _;
use domain::limits::{EventWindow, LimitKey, LimitReached, RateLimit};
use domain::{RateEventId, Timestamp};
use ports::outbound::{AcquireError, RateLimitStore, StorageError};
use sqlx::SqliteConnection;

use crate::SqliteStorage;
use crate::errors::storage_error;
use crate::paging::count;
use crate::time::{micros, optional_timestamp};

/// The events of `key` strictly after `since`, inside the caller's connection.
async fn count_window(
    connection: &mut SqliteConnection,
    key: &str,
    since: Timestamp,
) -> Result<EventWindow, StorageError> {
    let (events, oldest): (i64, Option<i64>) =
        sqlx::query_as("select count(*), min(at) from rate_events where key = $1 and at > $2")
            .bind(key)
            .bind(micros(since))
            .fetch_one(&mut *connection)
            .await
            .map_err(storage_error)?;
    Ok(EventWindow {
        count: count(events),
        oldest: optional_timestamp("rate event", 0, oldest)?,
    })
}

/// Records one event of `key` inside the caller's connection.
async fn insert_event(
    connection: &mut SqliteConnection,
    key: &str,
    at: Timestamp,
) -> Result<RateEventId, StorageError> {
    let (id,): (i64,) =
        sqlx::query_as("insert into rate_events (key, at) values ($1, $2) returning id")
            .bind(key)
            .bind(micros(at))
            .fetch_one(&mut *connection)
            .await
            .map_err(storage_error)?;
    Ok(RateEventId::new(id))
}

/// Takes one event of each limit when every one of them has room in the window that
/// ends at `at`, inside the caller's transaction, which already holds the keys' locks
/// (so that what it counts cannot change before it records). Records nothing otherwise.
///
/// # Errors
/// `Limited` with the longest wait among the reached limits.
pub(crate) async fn take_locked(
    connection: &mut SqliteConnection,
    limits: &[(LimitKey, RateLimit)],
    at: Timestamp,
) -> Result<Vec<RateEventId>, AcquireError> {
    // Compared as stored: to the microsecond.
    let at = at.trunc_subsecs(6);
    let keys: Vec<String> = limits.iter().map(|(key, _)| key.as_key()).collect();
    let mut reached: Option<LimitReached> = None;
    for (key, (_, limit)) in keys.iter().zip(limits) {
        let window = count_window(connection, key, limit.window_start(at)).await?;
        if let Err(limited) = limit.check(&window, at) {
            if reached.is_none_or(|longest| limited.retry_after > longest.retry_after) {
                reached = Some(limited);
            }
        }
    }
    if let Some(reached) = reached {
        return Err(AcquireError::Limited(reached));
    }
    let mut events = Vec::with_capacity(keys.len());
    for key in &keys {
        events.push(insert_event(connection, key, at).await?);
    }
    Ok(events)
}

#[async_trait]
impl RateLimitStore for SqliteStorage {
    #[tracing::instrument(skip_all, err(level = "debug"))]
    async fn window(&self, key: &LimitKey, since: Timestamp) -> Result<EventWindow, StorageError> {
        let mut connection = self.pool.acquire().await.map_err(storage_error)?;
        count_window(&mut connection, &key.as_key(), since).await
    }

    #[tracing::instrument(skip_all, err(level = "debug"))]
    async fn record(&self, key: &LimitKey, at: Timestamp) -> Result<RateEventId, StorageError> {
        let mut connection = self.pool.acquire().await.map_err(storage_error)?;
        insert_event(&mut connection, &key.as_key(), at).await
    }

    #[tracing::instrument(skip_all, err(level = "debug"))]
    async fn acquire(
        &self,
        limits: &[(LimitKey, RateLimit)],
        at: Timestamp,
    ) -> Result<Vec<RateEventId>, AcquireError> {
        if limits.is_empty() {
            return Ok(Vec::new());
        }
        // The write lock from the start: no other acquisition counts or records
        // anything until this one commits or rolls back.
        let mut transaction = self.write_transaction().await?;
        let events = take_locked(&mut transaction, limits, at).await?;
        transaction.commit().await.map_err(storage_error)?;
        Ok(events)
    }

    #[tracing::instrument(skip_all, err(level = "debug"))]
    async fn release(&self, events: &[RateEventId]) -> Result<(), StorageError> {
        if events.is_empty() {
            return Ok(());
        }
        let mut transaction = self.write_transaction().await?;
        for event in events {
            sqlx::query("delete from rate_events where id = $1")
                .bind(event.get())
                .execute(&mut *transaction)
                .await
                .map_err(storage_error)?;
        }
        transaction.commit().await.map_err(storage_error)
    }

    #[tracing::instrument(skip_all, err(level = "debug"))]
    async fn prune(&self, before: Timestamp) -> Result<u64, StorageError> {
        sqlx::query("delete from rate_events where at <= $1")
            .bind(micros(before))
            .execute(&self.pool)
            .await
            .map(|done| done.rows_affected())
            .map_err(storage_error)
    }
}
