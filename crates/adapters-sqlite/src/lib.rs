//! The organizations service's storage on SQLite: the SQLite [`Dialect`] of the shared
//! SQL core (`adapters-sql`), its connection setup and its own embedded migrations.
//!
//! One file, WAL journal, a busy timeout and a small pool. Every transaction that
//! writes begins `immediate`: it takes the database's single write lock first, so
//! that check-then-write sequences cannot interleave, and no row, table or key lock is
//! needed; see `docs/storage.md`.

use std::str::FromStr as _;
use std::time::Duration as StdDuration;

use adapters_sql::{Dialect, SqlStorage, Unique, storage_error};
use ports::outbound::StorageError;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteQueryResult,
    SqliteSynchronous,
};
use sqlx::{Sqlite, SqliteConnection, SqlitePool};

/// Every storage port on one SQLite database. Cheap to clone: clones share the pool.
/// `SqliteStorage::connect(url, ())` opens it.
pub type SqliteStorage = SqlStorage<SqliteDialect>;

/// How long a statement waits for the write lock before the storage is reported unavailable.
const BUSY_TIMEOUT: StdDuration = StdDuration::from_secs(5);

/// How long a caller waits for a free connection.
const ACQUIRE_TIMEOUT: StdDuration = StdDuration::from_secs(10);

/// Connections: readers run side by side under WAL, writers one at a time.
const MAX_CONNECTIONS: u32 = 4;

/// SQLite's result codes for a busy or locked database (also extended codes).
const SQLITE_BUSY: i64 = 5;
const SQLITE_LOCKED: i64 = 6;
const SQLITE_CANTOPEN: i64 = 14;

/// What SQLite does its own way: instants as integer microseconds since the Unix epoch
/// (UTC; they sort and compare as instants, with `timestamptz`'s precision), `begin
/// immediate` instead of every lock, result codes and the columns a violation names.
#[derive(Debug, Clone, Copy)]
pub struct SqliteDialect;

impl Dialect for SqliteDialect {
    type Db = Sqlite;
    type Instant = i64;
    type Settings = ();
    const NAME: &'static str = "sqlite";
    const BEGIN_WRITE: &'static str = "begin immediate";
    const FOR_SHARE: &'static str = "";
    const FOR_UPDATE: &'static str = "";
    const SKIP_LOCKED: &'static str = "";
    const GREATEST: &'static str = "max";
    const INSERT_IN_WITH: bool = false;
    const LOCK_FIRST_ADMINISTRATOR: Option<&'static str> = None;

    /// Opens `url` (`sqlite://path/to/file.db`, `sqlite::memory:`), creating the file
    /// (`0600`) and its parent directory when missing, in WAL mode with a busy timeout and
    /// foreign keys on. A malformed URL is `Unexpected`; a file that cannot be opened or a
    /// directory that cannot be made is `Unavailable`.
    async fn connect(url: &str, (): ()) -> Result<SqlitePool, StorageError> {
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
        SqlitePoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(options)
            .await
            .map_err(storage_error::<Self>)
    }

    async fn migrate(pool: &SqlitePool, _sessionless: bool) -> Result<(), StorageError> {
        let mut connection = pool.acquire().await.map_err(storage_error::<Self>)?;
        // A migration that rebuilds a table other tables refer to (SQLite cannot alter
        // a column's constraints) must not cascade its `drop table` into them: foreign
        // keys are off while migrations run (the pragma is a no-op inside the
        // migration's own transaction) and checked as a whole afterwards.
        sqlx::query("pragma foreign_keys = off")
            .execute(&mut *connection)
            .await
            .map_err(storage_error::<Self>)?;
        let migrated = sqlx::migrate!("./migrations")
            .run_direct(&mut *connection)
            .await
            .map_err(|error| match error {
                sqlx::migrate::MigrateError::Execute(error) => storage_error::<Self>(error),
                other => StorageError::unexpected(format!("migration failed: {other}")),
            });
        let restored = sqlx::query("pragma foreign_keys = on")
            .execute(&mut *connection)
            .await
            .map_err(storage_error::<Self>);
        if migrated.is_err() || restored.is_err() {
            // Never hand a connection without foreign keys back to the pool.
            drop(connection.detach());
            migrated?;
            restored?;
            return Ok(());
        }
        let dangling: Vec<(String,)> =
            sqlx::query_as("select \"table\" from pragma_foreign_key_check")
                .fetch_all(&mut *connection)
                .await
                .map_err(storage_error::<Self>)?;
        match dangling.first() {
            Some((table,)) => Err(StorageError::unexpected(format!(
                "migration left rows of `{table}` without the row they refer to"
            ))),
            None => Ok(()),
        }
    }

    /// A database that is busy past the busy timeout, or cannot be opened.
    fn unavailable_code(code: &str) -> bool {
        code.parse::<i64>()
            .is_ok_and(|code| matches!(code & 0xff, SQLITE_BUSY | SQLITE_LOCKED | SQLITE_CANTOPEN))
    }

    /// Told apart by the columns SQLite names (`table.column, table.column`).
    fn unique_violation(error: &sqlx::Error) -> Option<Unique> {
        let sqlx::Error::Database(database) = error else {
            return None;
        };
        if !database.is_unique_violation() {
            return None;
        }
        match database
            .message()
            .strip_prefix("UNIQUE constraint failed: ")
        {
            Some("users.identifier") => Some(Unique::UserIdentifier),
            Some("users.organization_id, users.identifier") => Some(Unique::ServiceAccountName),
            Some("invitations.organization_id, invitations.identifier") => {
                Some(Unique::OneOpenInvitation)
            }
            Some("credentials.user_id, credentials.name") => Some(Unique::ApiKeyName),
            _ => None,
        }
    }

    fn rows_affected(done: &SqliteQueryResult) -> u64 {
        done.rows_affected()
    }

    /// Nothing to take: the transaction began `immediate`, so it holds the database's
    /// write lock, and no other acquisition counts or records anything until it ends.
    async fn lock_keys(
        _connection: &mut SqliteConnection,
        _keys: &[String],
    ) -> Result<(), sqlx::Error> {
        Ok(())
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
