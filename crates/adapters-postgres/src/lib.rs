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

use std::str::FromStr as _;
use std::time::Duration as StdDuration;

use async_trait::async_trait;
use ports::outbound::{PoolUsage, StorageError, StorageHealth};
use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

use crate::errors::storage_error;

/// How long a caller waits for a free connection before the storage is reported unavailable.
const ACQUIRE_TIMEOUT: StdDuration = StdDuration::from_secs(5);

/// How long one SQL statement may run when no other limit is given (CONTRACT §9).
pub const DEFAULT_STATEMENT_TIMEOUT: StdDuration = StdDuration::from_secs(10);

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
        Self::connect_with(url, max_connections, DEFAULT_STATEMENT_TIMEOUT).await
    }

    /// As `connect`, with every statement of every pooled connection cancelled by the
    /// server after `statement_timeout` (PostgreSQL's `statement_timeout`, set when each
    /// connection starts). A cancelled statement is reported `Unavailable`.
    ///
    /// # Errors
    /// `Unavailable` when the database cannot be reached, `Unexpected` for a malformed URL.
    pub async fn connect_with(
        url: &str,
        max_connections: u32,
        statement_timeout: StdDuration,
    ) -> Result<Self, StorageError> {
        let options = PgConnectOptions::from_str(url)
            .map_err(|error| StorageError::unexpected(format!("bad PostgreSQL URL: {error}")))?
            .options([(
                "statement_timeout",
                format!("{}ms", statement_timeout.as_millis().max(1)),
            )]);
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
            .connect_with(options)
            .await
            .map_err(storage_error)?;
        Ok(Self { pool })
    }

    /// Applies the migrations not yet applied. Safe to run from several processes at
    /// once: `sqlx` serializes them with an advisory lock.
    ///
    /// # Errors
    /// `Unavailable` when the database cannot be reached, `Unexpected` when a migration fails.
    ///
    /// Migrations run on a connection of their own without the statement timeout (a
    /// migration may rightly take longer than any request); that connection is closed
    /// afterwards rather than returned to the pool.
    pub async fn migrate(&self) -> Result<(), StorageError> {
        let mut connection = self.pool.acquire().await.map_err(storage_error)?.detach();
        sqlx::query("set statement_timeout = 0")
            .execute(&mut connection)
            .await
            .map_err(storage_error)?;
        let migrated = sqlx::migrate!("./migrations")
            .run(&mut connection)
            .await
            .map_err(|error| match error {
                sqlx::migrate::MigrateError::Execute(error) => storage_error(error),
                other => StorageError::unexpected(format!("migration failed: {other}")),
            });
        // Closing politely can only fail on a connection that is gone already.
        drop(sqlx::Connection::close(connection).await);
        migrated
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
