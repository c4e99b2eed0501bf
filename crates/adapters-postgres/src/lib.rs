//! The organizations service's storage on PostgreSQL: the PostgreSQL [`Dialect`] of the
//! shared SQL core (`adapters-sql`), its pool setup and its own embedded migrations.
//!
//! Invariants are held by the database itself (constraints, conditional updates, row
//! locks, advisory locks), so that they hold with many processes on one database; see
//! `docs/storage.md`.

use std::str::FromStr as _;
use std::time::Duration as StdDuration;

use adapters_sql::{Dialect, SqlStorage, Unique, storage_error};
use domain::Timestamp;
use ports::outbound::StorageError;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgQueryResult};
use sqlx::{PgConnection, PgPool, Postgres};

/// Every storage port on one PostgreSQL connection pool. Cheap to clone: clones share
/// the pool. `PostgresStorage::connect(url, max_connections)` opens it (with the default
/// statement timeout), `connect(url, PostgresSettings { .. })` with other settings.
pub type PostgresStorage = SqlStorage<PgDialect>;

/// How long a caller waits for a free connection before the storage is reported unavailable.
const ACQUIRE_TIMEOUT: StdDuration = StdDuration::from_secs(5);

/// How long one SQL statement may run when no other limit is given (CONTRACT §9).
pub const DEFAULT_STATEMENT_TIMEOUT: StdDuration = StdDuration::from_secs(10);

/// A pooled connection idle for longer than this is pinged before it is handed out.
/// One used a moment ago is known to be alive: pinging it on every use would add a round
/// trip to every statement (`docs/benchmarks.md`).
const PING_WHEN_IDLE_FOR: StdDuration = StdDuration::from_secs(1);

/// The first half of every rate-limit advisory lock key (`'rate'` in ASCII): the
/// two-part keys of `pg_advisory_xact_lock(int, int)` do not overlap the one-part keys
/// that migrations use, and this half keeps them apart from any other two-part lock.
const LOCK_CLASS: i32 = 0x7261_7465;

/// The first half of the migrations' advisory lock key behind a transaction-mode pooler
/// (`'migr'` in ASCII); the second half is 0.
const MIGRATION_LOCK_CLASS: i32 = 0x6d69_6772;

/// SQLSTATE 57014: a statement cancelled, by `statement_timeout` in particular.
const QUERY_CANCELED: &str = "57014";

/// What stands between the service and PostgreSQL (`docs/scaling.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Pooler {
    /// Nothing, or a pooler that gives each connection a server session of its own
    /// (PgBouncer's session mode): connections keep their session — cached named
    /// prepared statements, the statement timeout set once when each connection starts.
    #[default]
    None,
    /// A pooler that hands a server connection to a client for one transaction only
    /// (PgBouncer's `pool_mode = transaction`): nothing is kept in a session. Every
    /// statement runs inside a transaction that begins with `set local statement_timeout`
    /// and `deallocate all`; prepared statements are never cached (each is prepared and
    /// used within its transaction, and dropped by the next transaction's `deallocate all`
    /// on that server connection, whichever client it serves); locks are
    /// transaction-scoped, migrations included; no startup parameter is sent beyond the
    /// ones every pooler passes on.
    Transaction,
}

/// How a PostgreSQL pool is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PostgresSettings {
    /// At most this many connections (at least one).
    pub max_connections: u32,
    /// Every statement of every pooled connection is cancelled by the server after this
    /// long (PostgreSQL's `statement_timeout`, set when each connection starts, or at the
    /// start of each transaction behind a transaction-mode pooler); a cancelled statement
    /// is reported `Unavailable`.
    pub statement_timeout: StdDuration,
    /// What stands between the service and PostgreSQL.
    pub pooler: Pooler,
}

/// At most `max_connections` connections, with the default statement timeout, straight
/// to PostgreSQL.
impl From<u32> for PostgresSettings {
    fn from(max_connections: u32) -> Self {
        Self {
            max_connections,
            statement_timeout: DEFAULT_STATEMENT_TIMEOUT,
            pooler: Pooler::None,
        }
    }
}

/// `statement_timeout`'s value for `timeout`, in milliseconds (0 would mean none).
fn timeout_setting(timeout: StdDuration) -> String {
    format!("{}ms", timeout.as_millis().max(1))
}

/// What begins every transaction behind a transaction-mode pooler, with `timeout` as the
/// statement timeout (`'0'`: none). `deallocate all` drops what earlier transactions of
/// any client left prepared on the server connection this one was handed, so that the
/// names this transaction prepares cannot collide with them.
fn sessionless_begin(timeout: &str) -> String {
    format!("begin; set local statement_timeout = '{timeout}'; deallocate all")
}

/// What PostgreSQL does its own way: `timestamptz` instants, row locks, a table lock for
/// the first administrator, advisory locks for rate-limit keys, SQLSTATEs and constraint
/// names.
#[derive(Debug, Clone, Copy)]
pub struct PgDialect;

impl Dialect for PgDialect {
    type Db = Postgres;
    type Instant = Timestamp;
    type Settings = PostgresSettings;
    const NAME: &'static str = "postgresql";
    const BEGIN_WRITE: &'static str = "begin";
    const FOR_SHARE: &'static str = " for share";
    const FOR_UPDATE: &'static str = " for update";
    const SKIP_LOCKED: &'static str = " for update skip locked";
    const GREATEST: &'static str = "greatest";
    const INSERT_IN_WITH: bool = true;
    const LANE_IDLE_LIMIT: Option<StdDuration> = Some(PING_WHEN_IDLE_FOR);
    const LOCK_FIRST_ADMINISTRATOR: Option<&'static str> =
        Some("lock table users in exclusive mode");

    /// A pool on `url` (`postgres://user@host:port/database`).
    async fn connect(url: &str, settings: PostgresSettings) -> Result<PgPool, StorageError> {
        let options = PgConnectOptions::from_str(url)
            .map_err(|error| StorageError::unexpected(format!("bad PostgreSQL URL: {error}")))?;
        let options = match settings.pooler {
            Pooler::None => options.options([(
                "statement_timeout",
                timeout_setting(settings.statement_timeout),
            )]),
            // A statement prepared on one server connection is gone on the next: none is
            // cached (and the timeout is set by each transaction, `sessionless_begin`).
            // PgBouncer refuses startup parameters it does not know unless configured to
            // ignore them, `extra_float_digits` among them: only text-format floats need
            // it, and the service reads none.
            Pooler::Transaction => options.statement_cache_capacity(0).extra_float_digits(None),
        };
        PgPoolOptions::new()
            .max_connections(settings.max_connections.max(1))
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
            .map_err(storage_error::<Self>)
    }

    /// Behind a transaction-mode pooler, every transaction begins with its settings.
    fn sessionless_begin(settings: &PostgresSettings) -> Option<String> {
        match settings.pooler {
            Pooler::None => None,
            Pooler::Transaction => Some(sessionless_begin(&timeout_setting(
                settings.statement_timeout,
            ))),
        }
    }

    /// Safe to run from several processes at once: `sqlx` serializes them with a
    /// session advisory lock. Migrations run on a connection of their own without the
    /// statement timeout (a migration may rightly take longer than any request); that
    /// connection is closed afterwards rather than returned to the pool.
    ///
    /// Behind a transaction-mode pooler (`sessionless`), where a session lock would be
    /// held by whichever server connection took it, all pending migrations run in one
    /// transaction under a transaction-scoped advisory lock instead (each migration in a
    /// savepoint of it): a second process waits for the first to commit, then finds
    /// nothing left to apply.
    async fn migrate(pool: &PgPool, sessionless: bool) -> Result<(), StorageError> {
        if sessionless {
            return migrate_in_one_transaction(pool).await;
        }
        let mut connection = pool
            .acquire()
            .await
            .map_err(storage_error::<Self>)?
            .detach();
        sqlx::query("set statement_timeout = 0")
            .execute(&mut connection)
            .await
            .map_err(storage_error::<Self>)?;
        let migrated = sqlx::migrate!("./migrations")
            .run_direct(&mut connection)
            .await
            .map_err(migrate_error);
        // Closing politely can only fail on a connection that is gone already.
        drop(sqlx::Connection::close(connection).await);
        migrated
    }

    /// SQLSTATE classes 08 (connection exception) and 57P0x (server shutting down), 53300
    /// (too many connections) and 57014 (a statement cancelled by its timeout).
    fn unavailable_code(code: &str) -> bool {
        code.starts_with("08")
            || code.starts_with("57P0")
            || code == "53300"
            || code == QUERY_CANCELED
    }

    /// Told apart by constraint or index name.
    fn unique_violation(error: &sqlx::Error) -> Option<Unique> {
        let sqlx::Error::Database(database) = error else {
            return None;
        };
        if !database.is_unique_violation() {
            return None;
        }
        match database.constraint() {
            Some("users_person_identifier_idx") => Some(Unique::UserIdentifier),
            Some("users_service_name_idx") => Some(Unique::ServiceAccountName),
            Some("invitations_one_open_idx") => Some(Unique::OneOpenInvitation),
            Some("credentials_key_name_idx") => Some(Unique::ApiKeyName),
            _ => None,
        }
    }

    fn rows_affected(done: &PgQueryResult) -> u64 {
        done.rows_affected()
    }

    /// Takes the transaction-scoped advisory lock of each key, in ascending order of the
    /// lock keys (whatever order the keys come in), so that two acquisitions of the same
    /// keys cannot deadlock. Distinct keys whose hashes collide merely share a lock.
    async fn lock_keys(connection: &mut PgConnection, keys: &[String]) -> Result<(), sqlx::Error> {
        if keys.is_empty() {
            return Ok(());
        }
        let hashes: Vec<(i32,)> =
            sqlx::query_as("select distinct hashtext(k) from unnest($1::text[]) as k")
                .bind(keys)
                .fetch_all(&mut *connection)
                .await?;
        let mut hashes: Vec<i32> = hashes.into_iter().map(|(hash,)| hash).collect();
        hashes.sort_unstable();
        for hash in hashes {
            sqlx::query("select pg_advisory_xact_lock($1, $2)")
                .bind(LOCK_CLASS)
                .bind(hash)
                .execute(&mut *connection)
                .await?;
        }
        Ok(())
    }
}

/// The migration failure as a storage error.
fn migrate_error(error: sqlx::migrate::MigrateError) -> StorageError {
    match error {
        sqlx::migrate::MigrateError::Execute(error) => storage_error::<PgDialect>(error),
        other => StorageError::unexpected(format!("migration failed: {other}")),
    }
}

/// The pending migrations, in one transaction under a transaction-scoped lock, without
/// the statement timeout: nothing of it outlives the transaction.
async fn migrate_in_one_transaction(pool: &PgPool) -> Result<(), StorageError> {
    let mut transaction = pool
        .begin_with(sessionless_begin("0"))
        .await
        .map_err(storage_error::<PgDialect>)?;
    sqlx::query("select pg_advisory_xact_lock($1, 0)")
        .bind(MIGRATION_LOCK_CLASS)
        .execute(&mut *transaction)
        .await
        .map_err(storage_error::<PgDialect>)?;
    let mut migrator = sqlx::migrate!("./migrations");
    migrator.set_locking(false);
    migrator
        .run_direct(&mut *transaction)
        .await
        .map_err(migrate_error)?;
    transaction
        .commit()
        .await
        .map_err(storage_error::<PgDialect>)
}
