//! A fresh PostgreSQL database per test, migrated, and dropped when the test ends
//! (also when it fails).

#[path = "../../../../tests/src/pgbouncer.rs"]
pub mod pgbouncer;

use adapters_postgres::{Pooler, PostgresSettings, PostgresStorage};
use sqlx::{Connection as _, Executor as _, PgConnection};
use std::sync::Arc;
use std::time::{Duration, Instant};

use storage_contract::{RowReader, Store};

/// Where tests find PostgreSQL when `DATABASE_URL` is not set.
const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// The prefix of every test database's name.
const PREFIX: &str = "orgs_test_";

/// How many connections a test's pool may open: enough for the races to run in parallel.
const POOL_SIZE: u32 = 24;

/// The server's URL, from `DATABASE_URL` or the default.
pub fn base_url() -> String {
    std::env::var("DATABASE_URL").unwrap_or_else(|_| DEFAULT_URL.to_owned())
}

/// `url` with its database replaced by `database`.
fn with_database(url: &str, database: &str) -> String {
    let (without_query, query) = url
        .split_once('?')
        .map_or((url, None), |(head, query)| (head, Some(query)));
    let authority_start = without_query.find("://").map_or(0, |at| at + 3);
    let path_start = without_query[authority_start..]
        .find('/')
        .map_or(without_query.len(), |at| authority_start + at);
    let mut result = format!("{}/{database}", &without_query[..path_start]);
    if let Some(query) = query {
        result.push('?');
        result.push_str(query);
    }
    result
}

async fn admin_connection(base: &str) -> PgConnection {
    match PgConnection::connect(base).await {
        Ok(connection) => connection,
        Err(error) => panic!(
            "PostgreSQL does not answer at {base} ({error}): start it, or set DATABASE_URL \
             to a reachable server where the user may create databases."
        ),
    }
}

/// A database made for one test; dropping it drops the database.
pub struct TestDatabase {
    base: String,
    name: String,
    url: String,
}

impl TestDatabase {
    /// Creates an empty database with a random name.
    ///
    /// # Panics
    /// When PostgreSQL does not answer, with what to do about it.
    pub async fn create() -> Self {
        let base = base_url();
        let name = format!("{PREFIX}{:016x}", rand::random::<u64>());
        let mut admin = admin_connection(&base).await;
        admin
            .execute(format!("create database {name}").as_str())
            .await
            .expect("the test database is created");
        admin.close().await.ok();
        let url = with_database(&base, &name);
        Self { base, name, url }
    }

    /// Its URL.
    pub fn url(&self) -> &str {
        &self.url
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let base = self.base.clone();
        let name = self.name.clone();
        // `Drop` cannot await, and may run on a runtime thread: drop the database from
        // a thread of its own, with a runtime of its own.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime");
            runtime.block_on(async move {
                let mut admin = PgConnection::connect(&base).await?;
                admin
                    .execute(format!("drop database if exists {name} with (force)").as_str())
                    .await?;
                admin.close().await
            })
        })
        .join();
        if let Ok(Err(error)) = dropped {
            eprintln!("could not drop test database {}: {error}", self.name);
        }
    }
}

/// A migrated storage on a fresh database.
pub async fn fresh_storage() -> (PostgresStorage, TestDatabase) {
    let database = TestDatabase::create().await;
    let storage = PostgresStorage::connect(database.url(), POOL_SIZE)
        .await
        .expect("connected to the test database");
    storage.migrate().await.expect("migrated");
    (storage, database)
}

/// A storage on `database` through `bouncer`, with the transaction pooler setting and
/// `max_connections` client connections, not migrated.
#[allow(dead_code)]
pub async fn pooled_storage(
    bouncer: &pgbouncer::PgBouncer,
    database: &TestDatabase,
    max_connections: u32,
) -> PostgresStorage {
    PostgresStorage::connect(
        &bouncer.route(database.url()),
        PostgresSettings {
            max_connections,
            statement_timeout: adapters_postgres::DEFAULT_STATEMENT_TIMEOUT,
            pooler: Pooler::Transaction,
        },
    )
    .await
    .expect("connected through the pooler")
}

/// A storage on a fresh database through the shared pooler (five server connections),
/// migrated through it.
#[allow(dead_code)]
pub async fn fresh_pooled_storage() -> (PostgresStorage, TestDatabase) {
    let database = TestDatabase::create().await;
    let storage = pooled_storage(pgbouncer::PgBouncer::shared(), &database, POOL_SIZE).await;
    storage
        .migrate()
        .await
        .expect("migrated through the pooler");
    (storage, database)
}

/// The contract's store on a fresh database through the shared pooler, with a reader of
/// its rows (read directly).
#[allow(dead_code)]
pub async fn fresh_pooled_store() -> (Store, TestDatabase) {
    let (storage, database) = fresh_pooled_storage().await;
    let url = database.url().to_owned();
    let rows: RowReader = Arc::new(move |table| Box::pin(rows_of(url.clone(), table)));
    (Store::new(storage).with_rows(rows), database)
}

/// The contract's store on a fresh database, with a reader of its rows.
#[allow(dead_code)]
pub async fn fresh_store() -> (Store, TestDatabase) {
    let (storage, database) = fresh_storage().await;
    let url = database.url().to_owned();
    let rows: RowReader = Arc::new(move |table| Box::pin(rows_of(url.clone(), table)));
    (Store::new(storage).with_rows(rows), database)
}

/// How many other client sessions are still connected to `connection`'s database once
/// they had up to `patience` to leave. A backend leaves `pg_stat_activity` a moment
/// after its client's goodbye, and flushes its statistics before it does; one whose
/// client never said goodbye stays.
#[allow(dead_code)]
pub async fn sessions_left_after(connection: &mut PgConnection, patience: Duration) -> i64 {
    let deadline = Instant::now() + patience;
    loop {
        let (others,): (i64,) = sqlx::query_as(
            "select count(*) from pg_stat_activity where datname = current_database() \
             and pid <> pg_backend_pid() and backend_type = 'client backend'",
        )
        .fetch_one(&mut *connection)
        .await
        .expect("counted");
        if others == 0 || Instant::now() > deadline {
            return others;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Every row of `table`, each as the JSON text of all its columns.
async fn rows_of(url: String, table: &'static str) -> Vec<String> {
    let mut connection = PgConnection::connect(&url).await.expect("connected");
    let rows: Vec<(String,)> = sqlx::query_as(&format!(
        "select row_to_json(t)::text from {table} t order by 1"
    ))
    .fetch_all(&mut connection)
    .await
    .expect("rows read");
    connection.close().await.ok();
    rows.into_iter().map(|(row,)| row).collect()
}

#[test]
fn the_database_of_a_url_is_replaced_and_its_query_kept() {
    assert_eq!(
        with_database("postgres://u@h:5432/postgres?sslmode=disable", "x"),
        "postgres://u@h:5432/x?sslmode=disable"
    );
    assert_eq!(with_database("postgres://u@h", "x"), "postgres://u@h/x");
}
