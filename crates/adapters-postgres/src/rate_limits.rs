//! `RateLimitStore` on PostgreSQL: counted events of the abuse limits (CONTRACT §5c),
//! acquired under a transaction-scoped advisory lock per key, so that every process on
//! the database enforces one limit.

use async_trait::async_trait;
use chrono::SubsecRound as _;
use domain::limits::{EventWindow, LimitKey, LimitReached, RateLimit};
use domain::{RateEventId, Timestamp};
use ports::outbound::{AcquireError, RateLimitStore, StorageError};
use sqlx::PgConnection;

use crate::PostgresStorage;
use crate::errors::storage_error;
use crate::paging::count;
use crate::time::micros;

/// The first half of every rate-limit advisory lock key (`'rate'` in ASCII): the
/// two-part keys of `pg_advisory_xact_lock(int, int)` do not overlap the one-part keys
/// that migrations use, and this half keeps them apart from any other two-part lock.
const LOCK_CLASS: i32 = 0x7261_7465;

/// The events of `key` strictly after `since`, inside the caller's connection.
async fn count_window(
    connection: &mut PgConnection,
    key: &str,
    since: Timestamp,
) -> Result<EventWindow, StorageError> {
    let (events, oldest): (i64, Option<Timestamp>) =
        sqlx::query_as("select count(*), min(at) from rate_events where key = $1 and at > $2")
            .bind(key)
            .bind(micros(since))
            .fetch_one(&mut *connection)
            .await
            .map_err(storage_error)?;
    Ok(EventWindow {
        count: count(events),
        oldest,
    })
}

/// Records one event of `key` inside the caller's connection.
async fn insert_event(
    connection: &mut PgConnection,
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

/// Takes the transaction-scoped advisory lock of each key, in ascending order of the
/// lock keys (whatever order the keys come in), so that two acquisitions of the same
/// keys cannot deadlock. Distinct keys whose hashes collide merely share a lock.
pub(crate) async fn lock_keys(
    connection: &mut PgConnection,
    limits: &[(LimitKey, RateLimit)],
) -> Result<(), StorageError> {
    let keys: Vec<String> = limits.iter().map(|(key, _)| key.as_key()).collect();
    let hashes: Vec<(i32,)> =
        sqlx::query_as("select distinct hashtext(k) from unnest($1::text[]) as k")
            .bind(&keys)
            .fetch_all(&mut *connection)
            .await
            .map_err(storage_error)?;
    let mut hashes: Vec<i32> = hashes.into_iter().map(|(hash,)| hash).collect();
    hashes.sort_unstable();
    for hash in hashes {
        sqlx::query("select pg_advisory_xact_lock($1, $2)")
            .bind(LOCK_CLASS)
            .bind(hash)
            .execute(&mut *connection)
            .await
            .map_err(storage_error)?;
    }
    Ok(())
}

/// Takes one event of each limit when every one of them has room in the window that
/// ends at `at`, inside the caller's transaction, which already holds the keys' locks
/// (so that what it counts cannot change before it records). Records nothing otherwise.
///
/// # Errors
/// `Limited` with the longest wait among the reached limits.
pub(crate) async fn take_locked(
    connection: &mut PgConnection,
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
impl RateLimitStore for PostgresStorage {
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
        let mut transaction = self.pool.begin().await.map_err(storage_error)?;
        lock_keys(&mut transaction, limits).await?;
        let events = take_locked(&mut transaction, limits, at).await?;
        transaction.commit().await.map_err(storage_error)?;
        Ok(events)
    }

    #[tracing::instrument(skip_all, err(level = "debug"))]
    async fn release(&self, events: &[RateEventId]) -> Result<(), StorageError> {
        if events.is_empty() {
            return Ok(());
        }
        let ids: Vec<i64> = events.iter().map(|id| id.get()).collect();
        sqlx::query("delete from rate_events where id = any($1)")
            .bind(ids)
            .execute(&self.pool)
            .await
            .map(drop)
            .map_err(storage_error)
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
