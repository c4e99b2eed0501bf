//! Every list the API serves reads a page of 50 from a 100,000-row table through an
//! index, and so do the outbox counts behind `/metrics` and the outbox prune: the
//! adapter's own queries run on a seeded database, and PostgreSQL's statistics show no
//! sequential scan of any big table.

mod support;

use std::time::Duration as StdDuration;

use adapters_postgres::PostgresStorage;
use domain::invitation::InvitationStatus;
use domain::member::MemberFilter;
use domain::optout::{OptOutFilter, OptOutOrigin};
use domain::pagination::PageRequest;
use domain::secret::TokenHash;
use domain::{Duration, OrganizationId, Role};
use sqlx::{Connection as _, Executor as _, PgConnection};
use storage_contract::Store;
use storage_contract::fixtures::{email, now};

/// The tables that hold 100,000 rows once seeded.
const BIG_TABLES: [&str; 6] = [
    "organizations",
    "users",
    "credentials",
    "invitations",
    "opt_outs",
    "outbox",
];

/// Sequential and index scans of each big table so far, in `BIG_TABLES` order.
async fn scans(connection: &mut PgConnection) -> Vec<(String, i64, i64)> {
    connection
        .execute("select pg_stat_clear_snapshot()")
        .await
        .expect("snapshot cleared");
    let mut counts = Vec::new();
    for table in BIG_TABLES {
        let (seq_scan, idx_scan): (i64, i64) = sqlx::query_as(
            "select seq_scan, coalesce(idx_scan, 0) from pg_stat_user_tables where relname = $1",
        )
        .bind(table)
        .fetch_one(&mut *connection)
        .await
        .expect("counted");
        counts.push((table.to_owned(), seq_scan, idx_scan));
    }
    counts
}

/// The statistics once every other session on this database ended: a session flushes
/// its statistics before it leaves `pg_stat_activity`.
async fn settled_scans(connection: &mut PgConnection) -> Vec<(String, i64, i64)> {
    support::sessions_left_after(connection, StdDuration::from_secs(15)).await;
    scans(connection).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_of_50_from_100_000_rows_are_read_through_indexes() {
    let (migrated, database) = support::fresh_storage().await;
    migrated.close().await;
    let mut seeding = PgConnection::connect(database.url())
        .await
        .expect("connected");
    seeding
        .execute(include_str!("seed_100k.sql"))
        .await
        .expect("seeded");
    // 100 dead messages and 100 delivered long ago, for the dead count and the prune.
    seeding
        .execute(
            "update outbox set delivered_at = null, dead_at = now() - interval '10 days' \
             where id between 50001 and 50100; \
             update outbox set delivered_at = now() - interval '10 days' \
             where id between 60001 and 60100",
        )
        .await
        .expect("settled");
    seeding.execute("vacuum analyze").await.expect("analyzed");
    let (api_key,): (String,) =
        sqlx::query_as("select token_hash from credentials where user_id = 4242")
            .fetch_one(&mut seeding)
            .await
            .expect("a key");
    seeding.close().await.expect("closed");
    let mut connection = PgConnection::connect(database.url())
        .await
        .expect("connected");
    let before = settled_scans(&mut connection).await;
    let storage = PostgresStorage::connect(database.url(), 4)
        .await
        .expect("connected");
    let store = Store::new(storage.clone());
    let organization = OrganizationId::new(7);
    let page = PageRequest::new(3, 50);
    let at = now();

    let children = store.organizations.list_children(organization, page).await;
    let visible = store
        .organizations
        .list_visible(organization, PageRequest::new(1, 50))
        .await;
    let invitations = store.invitations.list(organization, None, at, page).await;
    let pending = store
        .invitations
        .list(
            organization,
            Some(InvitationStatus::Pending),
            at,
            PageRequest::new(2, 50),
        )
        .await;
    let expired = store
        .invitations
        .list(organization, Some(InvitationStatus::Expired), at, page)
        .await;
    let opt_outs = store
        .opt_outs
        .list(organization, OptOutFilter::default(), page)
        .await;
    let by_origin = OptOutFilter {
        address: None,
        origin: Some(OptOutOrigin::Mail),
    };
    let web = store
        .opt_outs
        .list(organization, by_origin.clone(), page)
        .await;
    let one = OptOutFilter {
        address: Some("reader106@example.com".to_owned()),
        origin: None,
    };
    let single = store
        .opt_outs
        .list(organization, one, PageRequest::default())
        .await;
    let exported = store
        .opt_outs
        .export_page(organization, by_origin.clone(), None, 50)
        .await
        .expect("a page");
    let exported_next = store
        .opt_outs
        .export_page(organization, by_origin, exported.next, 50)
        .await;
    let claimed = store.outbox.claim_due(at, 50, Duration::minutes(1)).await;
    let backlog = store.outbox.backlog().await;
    let dead = store.outbox.dead().await;
    let pruned = store.outbox.prune(at - Duration::days(7)).await;
    let authenticated = store
        .users
        .authenticate(&TokenHash::from_stored(api_key), at)
        .await;
    let login = store
        .users
        .find_for_login(&email("user4242@example.com"))
        .await;
    let keys = store
        .users
        .list_api_keys(domain::UserId::new(4242), PageRequest::default())
        .await;
    let used = match &authenticated {
        Ok(Some(found)) => match found.api_key {
            Some(key) => {
                store
                    .users
                    .record_key_uses(&[ports::outbound::KeyUse { key, at }])
                    .await
            }
            None => Ok(()),
        },
        _ => Ok(()),
    };
    let members = store
        .members
        .list(organization, MemberFilter::default(), page)
        .await;
    let matching = store
        .members
        .list(
            organization,
            MemberFilter {
                role: Some(Role::Users),
                identifier: Some("er10".to_owned()),
                kind: None,
            },
            PageRequest::default(),
        )
        .await;
    drop(store);
    storage.close().await;
    let after = settled_scans(&mut connection).await;

    assert_eq!(children.expect("listed").total, 1000);
    assert_eq!(visible.expect("listed").items.len(), 50);
    assert_eq!(invitations.expect("listed").items.len(), 50);
    assert_eq!(pending.expect("listed").items.len(), 50);
    assert_eq!(expired.expect("listed").items.len(), 50);
    assert_eq!(opt_outs.expect("listed").items.len(), 50);
    assert_eq!(web.expect("listed").items.len(), 50);
    assert_eq!(single.expect("listed").total, 1);
    assert_eq!(exported.rows.len(), 50);
    assert!(exported.next.is_some());
    assert_eq!(exported_next.expect("a page").rows.len(), 50);
    assert_eq!(claimed.expect("claimed").len(), 50);
    assert_eq!(backlog, Ok(1000));
    assert_eq!(dead, Ok(100));
    assert_eq!(pruned, Ok(200));
    assert!(authenticated.expect("ok").is_some());
    assert!(login.expect("ok").is_some());
    assert_eq!(keys.expect("listed").total, 1);
    assert_eq!(used, Ok(()));
    assert_eq!(members.expect("listed").items.len(), 50);
    assert!(matching.expect("listed").total > 0);
    for ((table, seq_before, idx_before), (_, seq_after, idx_after)) in before.iter().zip(&after) {
        assert_eq!(seq_after, seq_before, "a sequential scan of {table}");
        assert!(
            idx_after > idx_before,
            "no index scan of {table} was counted"
        );
    }
}
