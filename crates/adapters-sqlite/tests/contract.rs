//! The repository contract, run on SQLite: one fresh database file per check.

use adapters_sqlite::SqliteStorage;
use storage_contract::Store;
use tempfile::TempDir;

/// A migrated store in a fresh temporary directory, removed when the test ends.
async fn fresh_store() -> (Store, TempDir) {
    let directory = tempfile::tempdir().expect("a temporary directory");
    let url = format!("sqlite://{}", directory.path().join("orgs.db").display());
    let storage = SqliteStorage::connect(&url).await.expect("connected");
    storage.migrate().await.expect("migrated");
    (Store::new(storage), directory)
}

storage_contract::contract_tests!(fresh_store);
