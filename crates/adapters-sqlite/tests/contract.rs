//! The repository contract, run on SQLite: one fresh database file per check.

use std::sync::Arc;

use adapters_sqlite::SqliteStorage;
use sqlx::Connection as _;
use storage_contract::{RowReader, Store};
use tempfile::TempDir;

/// A migrated store in a fresh temporary directory, removed when the test ends, with a
/// reader of its rows.
async fn fresh_store() -> (Store, TempDir) {
    let directory = tempfile::tempdir().expect("a temporary directory");
    let url = format!("sqlite://{}", directory.path().join("orgs.db").display());
    let storage = SqliteStorage::connect(&url, ()).await.expect("connected");
    storage.migrate().await.expect("migrated");
    let rows: RowReader = Arc::new(move |table| Box::pin(rows_of(url.clone(), table)));
    (Store::new(storage).with_rows(rows), directory)
}

/// Every row of `table`, each as the text of all its columns.
async fn rows_of(url: String, table: &'static str) -> Vec<String> {
    let mut connection = sqlx::SqliteConnection::connect(&url).await.expect("opened");
    let columns: Vec<(String,)> = sqlx::query_as("select name from pragma_table_info($1)")
        .bind(table)
        .fetch_all(&mut connection)
        .await
        .expect("columns read");
    assert!(!columns.is_empty(), "no table {table}");
    let row = columns
        .iter()
        .map(|(name,)| format!("'{name}=' || coalesce(cast({name} as text), 'null')"))
        .collect::<Vec<_>>()
        .join(" || ' ' || ");
    let rows: Vec<(String,)> = sqlx::query_as(&format!("select {row} from {table} order by 1"))
        .fetch_all(&mut connection)
        .await
        .expect("rows read");
    connection.close().await.ok();
    rows.into_iter().map(|(row,)| row).collect()
}

storage_contract::contract_tests!(fresh_store);
