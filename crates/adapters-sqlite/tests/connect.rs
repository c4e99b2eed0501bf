//! Opening a SQLite database: the file and its directory are made, WAL is on, and a
//! closed pool reports the storage unavailable.

use adapters_sqlite::SqliteStorage;
use ports::outbound::{OrganizationRepository as _, StorageError, StorageHealth as _};

#[tokio::test]
async fn connecting_creates_the_file_and_its_missing_parent_directories() {
    let directory = tempfile::tempdir().expect("a temporary directory");
    let file = directory
        .path()
        .join("nested")
        .join("deeper")
        .join("orgs.db");
    let url = format!("sqlite://{}", file.display());

    let storage = SqliteStorage::connect(&url, ()).await.expect("connected");
    storage.migrate().await.expect("migrated");

    assert!(file.is_file());
    assert_eq!(storage.ping().await, Ok(()));
    assert!(
        directory
            .path()
            .join("nested")
            .join("deeper")
            .join("orgs.db-wal")
            .exists(),
        "the journal is in WAL mode"
    );
}

#[tokio::test]
async fn migrating_twice_changes_nothing() {
    let directory = tempfile::tempdir().expect("a temporary directory");
    let url = format!("sqlite://{}", directory.path().join("orgs.db").display());
    let storage = SqliteStorage::connect(&url, ()).await.expect("connected");
    storage.migrate().await.expect("migrated");

    let again = storage.migrate().await;

    assert_eq!(again, Ok(()));
}

#[tokio::test]
async fn a_closed_storage_is_unavailable() {
    let directory = tempfile::tempdir().expect("a temporary directory");
    let url = format!("sqlite://{}", directory.path().join("orgs.db").display());
    let storage = SqliteStorage::connect(&url, ()).await.expect("connected");
    storage.migrate().await.expect("migrated");

    storage.close().await;

    assert!(matches!(
        storage.ping().await,
        Err(StorageError::Unavailable(_))
    ));
    let find = storage.find(domain::OrganizationId::new(1)).await;
    assert!(
        matches!(find, Err(StorageError::Unavailable(_))),
        "{find:?}"
    );
}

#[tokio::test]
async fn a_malformed_url_is_refused_without_panicking() {
    let refused = SqliteStorage::connect("postgres://not-sqlite", ()).await;

    assert!(
        matches!(refused, Err(StorageError::Unexpected(_))),
        "{refused:?}"
    );
}

#[cfg(unix)]
#[tokio::test]
async fn a_new_database_and_its_journal_files_are_private_to_their_owner() {
    use std::os::unix::fs::PermissionsExt as _;
    let directory = tempfile::tempdir().expect("a temporary directory");
    let data = directory.path().join("data");
    let file = data.join("orgs.db");
    let url = format!("sqlite://{}", file.display());

    let storage = SqliteStorage::connect(&url, ()).await.expect("connected");
    storage.migrate().await.expect("migrated");

    let mode = |path: &std::path::Path| {
        std::fs::metadata(path)
            .expect("exists")
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode(&file), 0o600);
    assert_eq!(mode(&data.join("orgs.db-wal")), 0o600);
    assert_eq!(mode(&data.join("orgs.db-shm")), 0o600);
    assert_eq!(mode(&data), 0o700);
}
