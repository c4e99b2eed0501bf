//! The organizations service's storage on SQLite: every driven storage port of
//! `ports::outbound`, on `sqlx`, with its own embedded migrations.
//!
//! One file, WAL journal, a busy timeout and a small pool. Every transaction that
//! writes begins `immediate`: it takes the database's single write lock first, so
//! that check-then-write sequences cannot interleave; see `docs/storage.md`.

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
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Sqlite, SqlitePool, Transaction};

use crate::errors::storage_error;

/// How long a statement waits for the write lock before the storage is reported unavailable.
const BUSY_TIMEOUT: StdDuration = StdDuration::from_secs(5);

/// How long a caller waits for a free connection.
const ACQUIRE_TIMEOUT: StdDuration = StdDuration::from_secs(10);

/// Connections: readers run side by side under WAL, writers one at a time.
const MAX_CONNECTIONS: u32 = 4;

/// Every storage port on one SQLite database. Cheap to clone: clones share the pool.
#[derive(Debug, Clone)]
pub struct SqliteStorage {
    pool: SqlitePool,
}

impl SqliteStorage {
    /// Opens `url` (`sqlite://path/to/file.db`, `sqlite::memory:`), creating the file
    /// (`0600`) and its parent directory when missing, in WAL mode with a busy timeout and
    /// foreign keys on.
    ///
    /// # Errors
    /// `Unexpected` for a malformed URL, `Unavailable` when the file cannot be opened
    /// or its directory made.
    pub async fn connect(url: &str) -> Result<Self, StorageError> {
        if !url.starts_with("sqlite:") {
            return Err(StorageError::unexpected(
                "a SQLite URL starts with `sqlite:`".to_owned(),
            ));
        }
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|error| StorageError::unexpected(format!("bad SQLite URL: {error}")))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(BUSY_TIMEOUT)
            .foreign_keys(true);
        if !url.contains(":memory:") && !url.contains("mode=memory") {
            create_private_file(options.get_filename())?;
        }
        let pool = SqlitePoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(options)
            .await
            .map_err(storage_error)?;
        Ok(Self { pool })
    }

    /// Applies the migrations not yet applied.
    ///
    /// # Errors
    /// `Unavailable` when the database cannot be reached, `Unexpected` when a migration fails.
    pub async fn migrate(&self) -> Result<(), StorageError> {
        sqlx::migrate!("./migrations")
            .run(&self.pool)
            .await
            .map_err(|error| match error {
                sqlx::migrate::MigrateError::Execute(error) => storage_error(error),
                other => StorageError::unexpected(format!("migration failed: {other}")),
            })
    }

    /// Closes every connection of the pool; later calls answer `Unavailable`.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// A transaction holding the write lock from its start (`begin immediate`), so that
    /// what it reads cannot change before it commits.
    async fn write_transaction(&self) -> Result<Transaction<'static, Sqlite>, StorageError> {
        self.pool
            .begin_with("begin immediate")
            .await
            .map_err(storage_error)
    }
}

/// Creates the database file readable and writable by its owner only (`0600`), and its
/// missing parent directories `0700`, before SQLite opens it (CONTRACT §9): SQLite would
/// create it with the process's default mode, readable by every local user. SQLite gives
/// the `-wal` and `-shm` files the database file's mode. An existing file is left as it is.
fn create_private_file(path: &std::path::Path) -> Result<(), StorageError> {
    let unavailable = |what: &std::path::Path, error: std::io::Error| {
        StorageError::unavailable(format!("cannot create {}: {error}", what.display()))
    };
    if let Some(directory) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder
            .create(directory)
            .map_err(|error| unavailable(directory, error))?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(error) => Err(unavailable(path, error)),
    }
}

#[async_trait]
impl StorageHealth for SqliteStorage {
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
