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

/// Single statements keep their connections in a lane and take them back untested
/// (`adapters-sql/src/lane.rs`): statements cancelled at any point leave no connection
/// that a later statement would find half-used.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statements_cancelled_halfway_leave_every_connection_usable() {
    use std::time::Duration;

    let (storage, _database) = support::fresh_storage().await;
    for round in 0..200_u64 {
        let deadline = Duration::from_micros(20 + round * 7 % 900);
        // Whether it completes or is dropped halfway depends on the deadline.
        let _ = tokio::time::timeout(deadline, storage.find(domain::OrganizationId::new(1))).await;
    }
    let mut finds = Vec::new();
    for _ in 0..50 {
        finds.push(storage.find(domain::OrganizationId::new(1)).await);
    }

    assert!(
        finds.iter().all(|found| matches!(found, Ok(None))),
        "{finds:?}"
    );
    assert_eq!(storage.ping().await, Ok(()));
}

/// Closing gives the lane's connections back before the pool closes: it ends at once
/// and leaves no connection open on the server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_ends_at_once_and_leaves_no_connection() {
    use sqlx::Connection as _;
    use std::time::Duration;

    let (migrated, database) = support::fresh_storage().await;
    migrated.close().await;
    let storage = PostgresStorage::connect(database.url(), 8)
        .await
        .expect("connected");
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let storage = storage.clone();
            tokio::spawn(async move { storage.ping().await })
        })
        .collect();
    let mut answers = Vec::new();
    for task in tasks {
        answers.push(task.await.expect("the task finished"));
    }
    assert!(answers.iter().all(Result::is_ok), "{answers:?}");
    assert!(
        storage.pool_usage().idle > 0,
        "connections wait, in the lane or the pool"
    );

    let closed = tokio::time::timeout(Duration::from_secs(5), storage.close()).await;

    assert!(closed.is_ok(), "close waited for connections the lane kept");
    let mut observer = sqlx::PgConnection::connect(database.url())
        .await
        .expect("connected");
    assert_eq!(
        support::sessions_left_after(&mut observer, Duration::from_secs(10)).await,
        0,
        "connections still open on the server"
    );
}
