//! Opening PostgreSQL: an absent server or a closed pool is reported unavailable.

mod support;

use adapters_postgres::PostgresStorage;
use ports::outbound::{OrganizationRepository as _, StorageError, StorageHealth as _};

#[tokio::test]
async fn a_server_that_does_not_answer_is_unavailable() {
    let url = "postgres://postgres@127.0.0.1:1/postgres?connect_timeout=2";

    let refused = PostgresStorage::connect(url, 2).await;

    assert!(
        matches!(refused, Err(StorageError::Unavailable(_))),
        "{refused:?}"
    );
}

#[tokio::test]
async fn migrating_twice_changes_nothing() {
    let (storage, _database) = support::fresh_storage().await;

    let again = storage.migrate().await;

    assert_eq!(again, Ok(()));
}

#[tokio::test]
async fn a_closed_storage_is_unavailable() {
    let (storage, _database) = support::fresh_storage().await;

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
