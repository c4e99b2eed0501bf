//! Opening PostgreSQL: an absent server or a closed pool is reported unavailable.

mod support;

use adapters_postgres::{PostgresSettings, PostgresStorage};
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

/// A statement that waits past the statement timeout is cancelled by the server and
/// reported unavailable, instead of holding its caller and its connection for as long as
/// it waits.
#[tokio::test]
async fn a_statement_running_past_the_statement_timeout_is_cancelled() {
    use sqlx::{Connection as _, Executor as _};
    use std::time::{Duration, Instant};

    let (migrated, database) = support::fresh_storage().await;
    migrated.close().await;
    let settings = PostgresSettings {
        max_connections: 2,
        statement_timeout: Duration::from_millis(300),
        pooler: adapters_postgres::Pooler::None,
    };
    let storage = PostgresStorage::connect(database.url(), settings)
        .await
        .expect("connected");
    let mut locker = sqlx::PgConnection::connect(database.url())
        .await
        .expect("connected");
    locker
        .execute("begin; lock table organizations in access exclusive mode")
        .await
        .expect("locked");

    let started = Instant::now();
    let found = tokio::time::timeout(
        Duration::from_secs(5),
        storage.find(domain::OrganizationId::new(1)),
    )
    .await;
    let waited = started.elapsed();
    locker.execute("rollback").await.expect("unlocked");

    let found = found.expect("the statement ends before the lock is released");
    assert!(
        matches!(found, Err(StorageError::Unavailable(_))),
        "{found:?}"
    );
    assert!(waited < Duration::from_secs(5), "{waited:?}");
}
