//! `RateLimitStore` on every SQL backend: counted events of the abuse limits (CONTRACT §5c),
//! acquired under the dialect's transaction-scoped lock per key (or the write lock its
//! write transactions take), so that every process on the database enforces one limit.

use async_trait::async_trait;
use domain::limits::{EventWindow, LimitKey, LimitReached, RateLimit};
use domain::{RateEventId, Timestamp};
use ports::outbound::{AcquireError, RateLimitStore, StorageError};
use sqlx::{ColumnIndex, Database, Decode, Encode, Executor, IntoArguments, Type};

use crate::instant::{load_optional, truncate};
use crate::paging::count;
use crate::storage_error;
use crate::{Connection, Dialect, SqlStorage, stored};

impl<D> SqlStorage<D>
where
    D: Dialect,
    for<'c> &'c mut Connection<D>: Executor<'c, Database = D::Db>,
    for<'q> <D::Db as Database>::Arguments<'q>: IntoArguments<'q, D::Db>,
    for<'q> i64: Encode<'q, D::Db> + Type<D::Db>,
    for<'q> &'q str: Encode<'q, D::Db> + Type<D::Db>,
    for<'r> i64: Decode<'r, D::Db>,
    usize: ColumnIndex<<D::Db as Database>::Row>,
{
    /// The events of `key` strictly after `since`, inside the caller's connection.
    async fn count_window(
        connection: &mut Connection<D>,
        key: &str,
        since: Timestamp,
    ) -> Result<EventWindow, StorageError> {
        let (events, oldest): (i64, Option<D::Instant>) =
            sqlx::query_as("select count(*), min(at) from rate_events where key = $1 and at > $2")
                .bind(key)
                .bind(stored::<D>(since))
                .fetch_one(&mut *connection)
                .await
                .map_err(storage_error::<D>)?;
        Ok(EventWindow {
            count: count(events),
            oldest: load_optional("rate event", 0, oldest)?,
        })
    }

    /// Records one event of `key` inside the caller's connection.
    async fn insert_event(
        connection: &mut Connection<D>,
        key: &str,
        at: Timestamp,
    ) -> Result<RateEventId, StorageError> {
        let (id,): (i64,) =
            sqlx::query_as("insert into rate_events (key, at) values ($1, $2) returning id")
                .bind(key)
                .bind(stored::<D>(at))
                .fetch_one(&mut *connection)
                .await
                .map_err(storage_error::<D>)?;
        Ok(RateEventId::new(id))
    }

    /// Takes the dialect's lock of each limit's key (`Dialect::lock_keys`) inside the
    /// caller's transaction.
    pub(crate) async fn lock_keys(
        connection: &mut Connection<D>,
        limits: &[(LimitKey, RateLimit)],
    ) -> Result<(), StorageError> {
        let keys: Vec<String> = limits.iter().map(|(key, _)| key.as_key()).collect();
        D::lock_keys(connection, &keys)
            .await
            .map_err(storage_error::<D>)
    }

    /// Takes one event of each limit when every one of them has room in the window that
    /// ends at `at`, inside the caller's transaction, which already holds the keys' locks
    /// (so that what it counts cannot change before it records). Records nothing otherwise.
    ///
    /// # Errors
    /// `Limited` with the longest wait among the reached limits.
    pub(crate) async fn take_locked(
        connection: &mut Connection<D>,
        limits: &[(LimitKey, RateLimit)],
        at: Timestamp,
    ) -> Result<Vec<RateEventId>, AcquireError> {
        // Compared as stored: to the microsecond.
        let at = truncate(at);
        let keys: Vec<String> = limits.iter().map(|(key, _)| key.as_key()).collect();
        let mut reached: Option<LimitReached> = None;
        for (key, (_, limit)) in keys.iter().zip(limits) {
            let window = Self::count_window(connection, key, limit.window_start(at)).await?;
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
            events.push(Self::insert_event(connection, key, at).await?);
        }
        Ok(events)
    }
}

#[async_trait]
impl<D> RateLimitStore for SqlStorage<D>
where
    D: Dialect,
    for<'c> &'c mut Connection<D>: Executor<'c, Database = D::Db>,
    for<'q> <D::Db as Database>::Arguments<'q>: IntoArguments<'q, D::Db>,
    for<'q> i64: Encode<'q, D::Db> + Type<D::Db>,
    for<'q> &'q str: Encode<'q, D::Db> + Type<D::Db>,
    for<'r> i64: Decode<'r, D::Db>,
    usize: ColumnIndex<<D::Db as Database>::Row>,
{
    #[tracing::instrument(skip_all, fields(db.system = D::NAME), err(level = "debug"))]
    async fn window(&self, key: &LimitKey, since: Timestamp) -> Result<EventWindow, StorageError> {
        on_connection!(self, |connection| Self::count_window(
            &mut connection,
            &key.as_key(),
            since
        )
        .await)
    }

    #[tracing::instrument(skip_all, fields(db.system = D::NAME), err(level = "debug"))]
    async fn record(&self, key: &LimitKey, at: Timestamp) -> Result<RateEventId, StorageError> {
        on_connection!(self, |connection| Self::insert_event(
            &mut connection,
            &key.as_key(),
            at
        )
        .await)
    }

    #[tracing::instrument(skip_all, fields(db.system = D::NAME), err(level = "debug"))]
    async fn acquire(
        &self,
        limits: &[(LimitKey, RateLimit)],
        at: Timestamp,
    ) -> Result<Vec<RateEventId>, AcquireError> {
        if limits.is_empty() {
            return Ok(Vec::new());
        }
        let mut transaction = self.begin_write().await.map_err(storage_error::<D>)?;
        Self::lock_keys(&mut transaction, limits).await?;
        let events = Self::take_locked(&mut transaction, limits, at).await?;
        transaction.commit().await.map_err(storage_error::<D>)?;
        Ok(events)
    }

    #[tracing::instrument(skip_all, fields(db.system = D::NAME), err(level = "debug"))]
    async fn release(&self, events: &[RateEventId]) -> Result<(), StorageError> {
        if events.is_empty() {
            return Ok(());
        }
        let placeholders: Vec<String> = (1..=events.len()).map(|n| format!("${n}")).collect();
        let sql = format!(
            "delete from rate_events where id in ({})",
            placeholders.join(", ")
        );
        on_pool!(
            self,
            events
                .iter()
                .fold(sqlx::query(&sql), |query, event| query.bind(event.get())),
            execute
        )
        .map(drop)
        .map_err(storage_error::<D>)
    }

    #[tracing::instrument(skip_all, fields(db.system = D::NAME), err(level = "debug"))]
    async fn prune(&self, before: Timestamp) -> Result<u64, StorageError> {
        on_pool!(
            self,
            sqlx::query("delete from rate_events where at <= $1").bind(stored::<D>(before)),
            execute
        )
        .map(|done| D::rows_affected(&done))
        .map_err(storage_error::<D>)
    }
}
