//! The organizations service's storage, written once for every SQL backend: every query,
//! row type, conversion and paging helper of the driven storage ports of
//! `ports::outbound`, as generic impls on [`SqlStorage`]. What differs between databases
//! (pool setup, migrations, lock statements, error codes, how an instant is stored) is
//! named in one [`Dialect`] impl per backend crate; see `docs/storage.md`.
//!
//! Invariants are held by the database itself (constraints, conditional updates, row
//! locks or a write lock), so that they hold with many processes on one database.
//!
//! Rust does not carry a trait's `where` clauses to its users, so every generic `impl`
//! here restates the same block of `sqlx` bounds; each backend satisfies all of them.

/// Runs one statement, `$query.$method(executor)`, outside any explicit transaction: on
/// the pool, or, when the storage keeps no session state (behind a transaction-mode
/// connection pooler), in a transaction of its own begun with the dialect's sessionless
/// statement, so that the statement's messages reach one server connection and its
/// settings hold. Evaluates to `Result<_, sqlx::Error>`.
macro_rules! on_pool {
    ($storage:expr, $query:expr, $method:ident) => {
        match &$storage.sessionless {
            // A connection of the lane (`lane.rs`), given back to it once the statement
            // completed.
            None => {
                async {
                    let mut lent = $storage.lane.lend(&$storage.pool).await?;
                    let result = $query.$method(&mut *lent).await?;
                    lent.done();
                    Ok::<_, sqlx::Error>(result)
                }
                .await
            }
            Some(begin) => {
                async {
                    let mut transaction = $storage.pool.begin_with(String::from(&**begin)).await?;
                    let result = $query.$method(&mut *transaction).await?;
                    transaction.commit().await?;
                    Ok::<_, sqlx::Error>(result)
                }
                .await
            }
        }
    };
}

/// Binds an event's values (`events::EventBinds`) to `$query`, in the order of
/// `events::insert_event`'s binds.
macro_rules! bind_event {
    ($query:expr, $binds:expr) => {
        $query
            .bind($binds.action)
            .bind($binds.actor)
            .bind(domain::audit::OPERATOR_IDENTIFIER)
            .bind($binds.target_kind)
            .bind($binds.target_id)
            .bind($binds.changes.as_str())
            .bind($binds.request_id)
            .bind(stored::<D>($binds.at))
    };
}

/// Runs `$body` with `$connection` bound to a connection of the pool for statements outside
/// any explicit transaction, or, when the storage keeps no session state, to a transaction
/// of its own (committed when `$body` succeeds). `$body` evaluates to a `Result` whose error
/// converts from `StorageError`.
macro_rules! on_connection {
    ($storage:expr, |$connection:ident| $body:expr) => {
        match &$storage.sessionless {
            None => {
                let waiting = $storage.lane.wait_for(&$storage.pool);
                let mut $connection = $storage.pool.acquire().await.map_err(storage_error::<D>)?;
                drop(waiting);
                $body
            }
            Some(begin) => {
                let mut $connection = $storage
                    .pool
                    .begin_with(String::from(&**begin))
                    .await
                    .map_err(storage_error::<D>)?;
                let result = $body;
                if result.is_ok() {
                    $connection.commit().await.map_err(storage_error::<D>)?;
                }
                result
            }
        }
    };
}

mod errors;
mod events;
mod idempotency;
mod instant;
mod invitations;
mod lane;
mod members;
mod opt_outs;
mod organizations;
mod outbox;
mod paging;
mod rate_limits;
mod users;
mod webhooks;

use std::future::Future;
use std::marker::PhantomData;
use std::sync::Arc;

use async_trait::async_trait;
use ports::outbound::{PoolUsage, StorageError, StorageHealth};
use sqlx::{Database, Decode, Encode, Executor, IntoArguments, Pool, Type};

pub use crate::errors::{corrupt, storage_error};
pub use crate::instant::{InstantOutOfRange, StoredInstant};

/// A unique constraint or index whose violation a business rule explains.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unique {
    /// One person per identifier.
    UserIdentifier,
    /// One service account of each name per organization.
    ServiceAccountName,
    /// One open invitation per organization and address.
    OneOpenInvitation,
    /// One API key of each name per user.
    ApiKeyName,
}

/// What one SQL backend does its own way. Everything else is shared.
pub trait Dialect: Send + Sync + 'static {
    /// The `sqlx` database.
    type Db: Database;
    /// How an instant is stored in a column.
    type Instant: StoredInstant
        + for<'q> Encode<'q, Self::Db>
        + Type<Self::Db>
        + for<'r> Decode<'r, Self::Db>;
    /// What `connect` needs besides the URL.
    type Settings: Send;
    /// The database's name, as tracing spans report it (`db.system`).
    const NAME: &'static str;
    /// The statement that begins a transaction that writes.
    const BEGIN_WRITE: &'static str;
    /// Appended to a `select` that must keep its rows from changing until the commit.
    const FOR_SHARE: &'static str;
    /// Appended to a `select` that must hold its rows alone until the commit.
    const FOR_UPDATE: &'static str;
    /// Appended to the subquery that claims outbox rows: rows others hold are skipped.
    const SKIP_LOCKED: &'static str;
    /// Run first in the transaction that makes the first administrator, so that racing
    /// processes queue; `None` when `BEGIN_WRITE` already holds the database's write lock.
    const LOCK_FIRST_ADMINISTRATOR: Option<&'static str>;
    /// The scalar function that returns the larger of two values (`greatest`, `max`).
    const GREATEST: &'static str;
    /// Whether a `with` clause may hold an `insert … returning` whose rows the rest of the
    /// statement reads: an event and its webhook deliveries are then one round trip.
    const INSERT_IN_WITH: bool;
    /// How long a connection may wait in the lane of single statements (`lane.rs`) and
    /// still be lent without a test, as the pool lends its own idle connections; `None`:
    /// no lane, every connection goes back through the pool.
    const LANE_IDLE_LIMIT: Option<std::time::Duration> = None;

    /// Opens a pool on `url` and checks that the database answers.
    fn connect(
        url: &str,
        settings: Self::Settings,
    ) -> impl Future<Output = Result<Pool<Self::Db>, StorageError>> + Send;

    /// The statement that begins every transaction when `settings` ask for a pool that
    /// keeps no session state (behind a transaction-mode connection pooler): it sets what
    /// would otherwise be set once per connection, for that transaction only. `None`, the
    /// default: connections keep their session, statements run on the pool directly.
    fn sessionless_begin(_settings: &Self::Settings) -> Option<String> {
        None
    }

    /// Applies the migrations not yet applied; `sessionless` as `sessionless_begin`
    /// answered `Some`.
    fn migrate(
        pool: &Pool<Self::Db>,
        sessionless: bool,
    ) -> impl Future<Output = Result<(), StorageError>> + Send;

    /// Whether a database error code means the database cannot serve now (`Unavailable`).
    fn unavailable_code(code: &str) -> bool;

    /// The business-relevant unique constraint that `error` violates, if any.
    fn unique_violation(error: &sqlx::Error) -> Option<Unique>;

    /// How many rows a statement changed.
    fn rows_affected(done: &<Self::Db as Database>::QueryResult) -> u64;

    /// Inside the caller's transaction, takes one lock per rate-limit key, in an order
    /// that does not depend on the keys' order, held until the transaction ends.
    fn lock_keys<'c>(
        connection: &'c mut <Self::Db as Database>::Connection,
        keys: &'c [String],
    ) -> impl Future<Output = Result<(), sqlx::Error>> + Send + 'c;
}

/// A connection of `D`'s database.
pub(crate) type Connection<D> = <<D as Dialect>::Db as Database>::Connection;

/// Every storage port on one connection pool of `D`'s database. Cheap to clone: clones
/// share the pool.
pub struct SqlStorage<D: Dialect> {
    pool: Pool<D::Db>,
    /// Connections single statements took back without a round trip (`lane.rs`).
    lane: Arc<lane::Lane<D::Db>>,
    /// `Dialect::sessionless_begin`'s statement: every statement then runs inside a
    /// transaction begun with it (`on_pool!`, `on_connection!`, `begin_write`).
    sessionless: Option<Arc<str>>,
    dialect: PhantomData<fn() -> D>,
}

impl<D: Dialect> Clone for SqlStorage<D> {
    fn clone(&self) -> Self {
        Self {
            pool: self.pool.clone(),
            lane: Arc::clone(&self.lane),
            sessionless: self.sessionless.clone(),
            dialect: PhantomData,
        }
    }
}

impl<D: Dialect> std::fmt::Debug for SqlStorage<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqlStorage")
            .field("db", &D::NAME)
            .field("pool", &self.pool)
            .finish()
    }
}

impl<D: Dialect> SqlStorage<D> {
    /// Opens a pool on `url` with the backend's `settings`, and checks that the database
    /// answers.
    ///
    /// # Errors
    /// `Unavailable` when the database cannot be reached, `Unexpected` for a malformed URL.
    pub async fn connect(
        url: &str,
        settings: impl Into<D::Settings>,
    ) -> Result<Self, StorageError> {
        let settings = settings.into();
        let sessionless = D::sessionless_begin(&settings).map(Arc::from);
        let pool = D::connect(url, settings).await?;
        // Behind a transaction-mode pooler every statement is a transaction: no lane.
        let lane = lane::Lane::new(&pool, D::LANE_IDLE_LIMIT.filter(|_| sessionless.is_none()));
        Ok(Self {
            pool,
            lane: Arc::new(lane),
            sessionless,
            dialect: PhantomData,
        })
    }

    /// Storage on a pool opened elsewhere, whose connections keep their session.
    pub fn from_pool(pool: Pool<D::Db>) -> Self {
        Self {
            lane: Arc::new(lane::Lane::new(&pool, D::LANE_IDLE_LIMIT)),
            pool,
            sessionless: None,
            dialect: PhantomData,
        }
    }

    /// Begins a transaction that writes.
    pub(crate) async fn begin_write(
        &self,
    ) -> Result<sqlx::Transaction<'static, D::Db>, sqlx::Error> {
        let _waiting = self.lane.wait_for(&self.pool);
        match &self.sessionless {
            None => self.pool.begin_with(D::BEGIN_WRITE).await,
            Some(begin) => self.pool.begin_with(String::from(&**begin)).await,
        }
    }

    /// Applies the migrations not yet applied.
    ///
    /// # Errors
    /// `Unavailable` when the database cannot be reached, `Unexpected` when a migration fails.
    pub async fn migrate(&self) -> Result<(), StorageError> {
        D::migrate(&self.pool, self.sessionless.is_some()).await
    }

    /// Closes every connection of the pool; later calls answer `Unavailable`.
    pub async fn close(&self) {
        self.lane.drain();
        self.pool.close().await;
    }
}

#[async_trait]
impl<D> StorageHealth for SqlStorage<D>
where
    D: Dialect,
    for<'c> &'c mut Connection<D>: Executor<'c, Database = D::Db>,
    for<'q> <D::Db as Database>::Arguments<'q>: IntoArguments<'q, D::Db>,
{
    #[tracing::instrument(skip_all, fields(db.system = D::NAME), err(level = "debug"))]
    async fn ping(&self) -> Result<(), StorageError> {
        on_pool!(self, sqlx::query("select 1"), execute)
            .map(drop)
            .map_err(storage_error::<D>)
    }

    fn pool_usage(&self) -> PoolUsage {
        PoolUsage {
            size: self.pool.size(),
            idle: u32::try_from(self.pool.num_idle() + self.lane.idle()).unwrap_or(u32::MAX),
            max: self.pool.options().get_max_connections(),
        }
    }
}

/// `at` as `D` stores it.
pub(crate) fn stored<D: Dialect>(at: domain::Timestamp) -> D::Instant {
    D::Instant::store(at)
}
