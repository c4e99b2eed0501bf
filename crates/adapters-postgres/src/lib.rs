//! The organizations service's storage on PostgreSQL: every driven storage port of
//! `ports::outbound`, on `sqlx`, with its own embedded migrations.
//!
//! Invariants are held by the database itself (constraints, conditional updates, row
//! locks), so that they hold with many processes on one database; see `docs/storage.md`.

mod errors;
mod invitations;
mod members;
mod opt_outs;
mod organizations;
mod outbox;
mod paging;
mod rate_limits;
mod time;
mod users;

use std::time::Duration as StdDuration;

use async_trait::async_trait;
use ports::outbound::{PoolUsage, StorageError, StorageHealth};
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;

use crate::errors::storage_error;

/// How long a caller waits for a free connection before the storage is reported unavailable.
const ACQUIRE_TIMEOUT: StdDuration = StdDuration::from_secs(5);

/// A pooled connection idle for longer than this is pinged before it is handed out.
/// One used a moment ago is known to be alive: pinging it on every use would add a round
/// trip to every statement (`docs/benchmarks.md`).
const PING_WHEN_IDLE_FOR: StdDuration = StdDuration::from_secs(1);

/// Every storage port on one PostgreSQL connection pool. Cheap to clone: clones share
/// the pool.
#[derive(Debug, Clone)]
pub struct PostgresStorage {
    pool: PgPool,
}

impl PostgresStorage {
    /// Opens a pool of at most `max_connections` connections to `url`
    /// (`postgres://user@host:port/database`) and checks that the database answers.
    ///
    /// # Errors
    /// `Unavailable` when the database cannot be reached, `Unexpected` for a malformed URL.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self, StorageError> {
        let pool = PgPoolOptions::new()
            .max_connections(max_connections.max(1))
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .test_before_acquire(false)
            .before_acquire(|connection, metadata| {
                Box::pin(async move {
                    // A failed ping closes this connection; the pool takes or opens another.
                    if metadata.idle_for >= PING_WHEN_IDLE_FOR {
                        sqlx::Connection::ping(connection).await?;
                    }
                    Ok(true)
                })
            })
            .connect(url)
            .await
            .map_err(storage_error)?;
        Ok(Self { pool })
    }

    /// Applies the migrations not yet applied. Safe to run from several processes at
    /// once: `sqlx` serializes them with an advisory lock.
    ///
    /// # Errors
    /// `Unavailable` when the database cannot be reached, `Unexpected` when a migration fails.
    pub async fn migrate(&self) -> Result<(), StorageError> {
        sqlx::migrate!("./migrations")
            .run(&self.pool)
            .await
            .map_err(|error| match error {
                sqlx::migrate::MigrateError::Execute(error) => storage_error(error),
                other => StorageError::Unexpected(format!("migration failed: {other}")),
            })
    }

    /// Closes every connection of the pool; later calls answer `Unavailable`.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

#[async_trait]
impl StorageHealth for PostgresStorage {
    #[tracing::instrument(skip_all, err(level = "debug"))]
    async fn ping(&self) -> Result<(), StorageError> {
        sqlx::query("select 1")
            .execute(&self.pool)
            .await
            .map(drop)
            .map_err(storage_error)
    }

    fn pool_usage(&self) -> PoolUsage {
        PoolUsage {
            size: self.pool.size(),
            idle: u32::try_from(self.pool.num_idle()).unwrap_or(u32::MAX),
            max: self.pool.options().get_max_connections(),
        }
    }
}
