//! The audit log at scale: with 200,000 events over 10 root organizations and their
//! children, a page of a root's list, a child's list, a filtered list and the retention
//! prune read `events` through its indexes, never by a sequential scan.

mod support;

use std::time::{Duration as StdDuration, Instant};

use adapters_postgres::PostgresStorage;
use domain::audit::{ActionFilter, EventAction, EventFilter};
use domain::organization::TreeNode;
use domain::pagination::PageRequest;
use domain::{Duration, OrganizationId, UserId};
use sqlx::{Connection as _, Executor as _, PgConnection};
use storage_contract::Store;
use storage_contract::fixtures::now;

const SEED: &str = "
insert into organizations (parent_id, name, created_at, updated_at)
select null, 'Root ' || n, now(), now() from generate_series(1, 10) as n;
insert into organizations (parent_id, name, created_at, updated_at)
select n % 10 + 1, 'Child ' || n, now(), now() from generate_series(1, 100) as n;
insert into events (action, actor_id, actor_organization_id, actor_identifier,
                    organization_id, root_organization_id, target_kind, target_id,
                    changes, request_id, created_at)
select (array['member.removed', 'member.role_changed', 'organization.updated',
              'invitation.created'])[n % 4 + 1],
       n % 50 + 1, n % 10 + 1, 'user' || (n % 50 + 1) || '@example.com',
       case when n % 3 = 0 then n % 10 + 1 else 10 + (n % 100) + 1 end,
       case when n % 3 = 0 then n % 10 + 1 else (10 + (n % 100)) % 10 + 1 end,
       'organization', 1, '{}', 'req-' || n,
       now() - n * interval '1 minute'
from generate_series(1, 200000) as n;
";

/// Sequential scans of `events` so far.
async fn sequential_scans(connection: &mut PgConnection) -> i64 {
    connection
        .execute("select pg_stat_clear_snapshot()")
        .await
        .expect("snapshot cleared");
    let (seq_scan,): (i64,) =
        sqlx::query_as("select seq_scan from pg_stat_user_tables where relname = 'events'")
            .fetch_one(&mut *connection)
            .await
            .expect("counted");
    seq_scan
}

/// The statistics once every other session on this database ended.
async fn settled(connection: &mut PgConnection) -> i64 {
    support::sessions_left_after(connection, StdDuration::from_secs(15)).await;
    sequential_scans(connection).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_lists_and_the_prune_read_through_indexes() {
    let (migrated, database) = support::fresh_storage().await;
    migrated.close().await;
    let mut seeding = PgConnection::connect(database.url())
        .await
        .expect("connected");
    seeding.execute(SEED).await.expect("seeded");
    seeding.execute("vacuum analyze").await.expect("analyzed");
    seeding.close().await.expect("closed");
    let mut connection = PgConnection::connect(database.url())
        .await
        .expect("connected");
    let before = settled(&mut connection).await;
    let storage = PostgresStorage::connect(database.url(), 4)
        .await
        .expect("connected");
    let store = Store::new(storage.clone());
    let root = TreeNode {
        id: OrganizationId::new(1),
        parent: None,
    };
    let child = TreeNode {
        id: OrganizationId::new(20),
        parent: Some(OrganizationId::new(10)),
    };

    let started = Instant::now();
    let first = store
        .events
        .list(root, EventFilter::default(), PageRequest::new(1, 50))
        .await
        .expect("listed");
    let took = started.elapsed();
    let deep = store
        .events
        .list(root, EventFilter::default(), PageRequest::new(40, 50))
        .await
        .expect("listed");
    let of_child = store
        .events
        .list(child, EventFilter::default(), PageRequest::new(1, 50))
        .await
        .expect("listed");
    let members = store
        .events
        .list(
            root,
            EventFilter {
                action: Some(ActionFilter::Prefix("member.".to_owned())),
                actor: Some(UserId::new(11)),
                since: Some(now() - Duration::days(30)),
                until: None,
            },
            PageRequest::new(1, 50),
        )
        .await
        .expect("listed");
    let pruned = store.events.prune(now() - Duration::days(120)).await;
    drop(store);
    storage.close().await;
    let after = settled(&mut connection).await;

    assert_eq!(first.items.len(), 50);
    assert_eq!(first.total, 20_000);
    assert!(
        first.items.windows(2).all(|pair| pair[0].id > pair[1].id),
        "newest first"
    );
    assert_eq!(deep.items.len(), 50);
    assert_eq!(of_child.items.len(), 50);
    assert!(members.items.iter().all(|event| matches!(
        event.action,
        EventAction::MemberRemoved | EventAction::MemberRoleChanged
    )));
    assert!(pruned.expect("pruned") > 0);
    assert_eq!(after, before, "a sequential scan of events");
    eprintln!("a first page of 50 of 20,000 events took {took:?}");
}

/// Index entries read from `events`' indexes so far.
async fn index_entries_read(connection: &mut PgConnection) -> i64 {
    connection
        .execute("select pg_stat_clear_snapshot()")
        .await
        .expect("snapshot cleared");
    let (read,): (i64,) = sqlx::query_as(
        "select coalesce(sum(idx_tup_read), 0)::bigint from pg_stat_user_indexes \
         where relname = 'events'",
    )
    .fetch_one(&mut *connection)
    .await
    .expect("counted");
    read
}

/// Keyset pages anywhere in a root's 20,000 events (a tenth of the table) cost the same,
/// also once PostgreSQL runs the statement with its generic plan (after five executions
/// on a connection): the cursor bounds an index range, it is not a filter applied to
/// every entry above it. PostgreSQL may read the root's `(root_organization_id, id desc)`
/// index (51 entries a page) or the primary key backwards, skipping the other roots'
/// events (about 510 entries a page at this density); 20 pages spread from the newest to
/// the oldest would read about 200,000 entries if the cost grew with the depth.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyset_pages_read_as_many_index_entries_at_any_depth() {
    let (migrated, database) = support::fresh_storage().await;
    migrated.close().await;
    let mut seeding = PgConnection::connect(database.url())
        .await
        .expect("connected");
    seeding.execute(SEED).await.expect("seeded");
    seeding.execute("vacuum analyze").await.expect("analyzed");
    let (newest, oldest): (i64, i64) =
        sqlx::query_as("select max(id), min(id) from events where root_organization_id = 1")
            .fetch_one(&mut seeding)
            .await
            .expect("bounds");
    seeding.close().await.expect("closed");
    let mut connection = PgConnection::connect(database.url())
        .await
        .expect("connected");
    settled(&mut connection).await;
    let before = index_entries_read(&mut connection).await;
    // One connection, so that its prepared statement runs often enough to go generic.
    let storage = PostgresStorage::connect(database.url(), 1)
        .await
        .expect("connected");
    let store = Store::new(storage.clone());
    let root = TreeNode {
        id: OrganizationId::new(1),
        parent: None,
    };
    let pages = 20_i64;

    let mut slowest = StdDuration::ZERO;
    let mut read = Vec::new();
    for n in 0..pages {
        // From near the newest to near the oldest of the root's events.
        let below = newest - (newest - oldest) * n / pages;
        let started = Instant::now();
        let page = store
            .events
            .list_below(
                root,
                EventFilter::default(),
                Some(domain::EventId::new(below)),
                51,
            )
            .await
            .expect("listed");
        slowest = slowest.max(started.elapsed());
        assert_eq!(page.len(), 51, "page {n}");
        assert!(page.iter().all(|event| event.id.get() < below));
        assert!(page.windows(2).all(|pair| pair[0].id > pair[1].id));
        read.push(page);
    }
    drop(store);
    storage.close().await;
    settled(&mut connection).await;
    let after = index_entries_read(&mut connection).await;

    assert_eq!(read.len(), 20);
    // At most twice the primary key's 510 a page, whatever the depth.
    assert!(
        after - before <= pages * 1020,
        "{} index entries read for {pages} pages of 51",
        after - before
    );
    eprintln!("the slowest of {pages} keyset pages of 50 among 20,000 events took {slowest:?}");
}
