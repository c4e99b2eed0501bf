//! PostgreSQL through PgBouncer in transaction mode, with the `transaction` pooler
//! setting: nothing is left in a server session, settings hold per transaction,
//! migrations serialize without a session lock, and the races hold with four service
//! instances (four pools) sharing one pooler of five server connections.

mod support;

use std::sync::Arc;
use std::time::{Duration as StdDuration, Instant};

use adapters_postgres::{Pooler, PostgresSettings, PostgresStorage};
use domain::limits::{LimitKey, RateLimit};
use domain::mail::EmailKind;
use domain::member::MemberFilter;
use domain::pagination::PageRequest;
use domain::{Duration, OrganizationId, Role, UserId};
use ports::outbound::{
    AcceptInvitationError, AcquireError, CreateInvitationError, MemberChangeError,
    OrganizationRepository as _, StorageError, StorageHealth as _,
};
use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions as _, Connection as _, Executor as _, PgConnection};
use storage_contract::Store;
use storage_contract::fixtures::{
    any_event, invitation, key, mail, new_invitation, now, organization_with_admin, person, root,
    user,
};
use support::pgbouncer::PgBouncer;
use support::{TestDatabase, pooled_storage};

/// Four service instances.
const INSTANCES: usize = 4;

/// A plain connection through `bouncer` to `database`, sending no startup parameter the
/// pooler refuses; only simple-protocol statements are run on it.
async fn raw_connection(bouncer: &PgBouncer, database: &TestDatabase) -> PgConnection {
    bouncer
        .route(database.url())
        .parse::<PgConnectOptions>()
        .expect("a URL")
        .extra_float_digits(None)
        .connect()
        .await
        .expect("connected through the pooler")
}

/// `INSTANCES` stores on one fresh database through the shared pooler, the database
/// migrated through it by the first.
async fn instances() -> (Vec<Store>, TestDatabase) {
    let database = TestDatabase::create().await;
    let mut stores = Vec::with_capacity(INSTANCES);
    for n in 0..INSTANCES {
        let storage = pooled_storage(PgBouncer::shared(), &database, 8).await;
        if n == 0 {
            storage
                .migrate()
                .await
                .expect("migrated through the pooler");
        }
        stores.push(Store::new(storage));
    }
    (stores, database)
}

async fn join<T: Send + 'static>(tasks: Vec<tokio::task::JoinHandle<T>>) -> Vec<T> {
    let mut results = Vec::with_capacity(tasks.len());
    for task in tasks {
        results.push(task.await.expect("the task finished"));
    }
    results
}

fn profile() -> ports::outbound::MemberProfile {
    ports::outbound::MemberProfile {
        first_name: person("Grace"),
        last_name: person("Hopper"),
        password_hash: domain::user::PasswordHash::new("$argon2id$v=19$x".to_owned()),
    }
}

/// Two pools take turns on a pooler with ONE server connection: each transaction finds
/// what the other's left on it. Statements cached under `sqlx`'s names (`sqlx_s_1`, …)
/// would collide there ("prepared statement already exists" or "does not exist").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_pools_taking_turns_on_one_server_connection_never_collide() {
    let bouncer = PgBouncer::start(1);
    let database = TestDatabase::create().await;
    let first = pooled_storage(&bouncer, &database, 1).await;
    first.migrate().await.expect("migrated through the pooler");
    let second = pooled_storage(&bouncer, &database, 1).await;
    let first = Store::new(first);
    let second = Store::new(second);

    for round in 0..5 {
        for (side, store) in [("a", &first), ("b", &second)] {
            let organization = root(store, &format!("Root {side}{round}")).await;
            let found = store
                .organizations
                .find(organization.id)
                .await
                .unwrap_or_else(|error| panic!("{error:?}\n{}", bouncer.log()));
            assert_eq!(found.map(|found| found.id), Some(organization.id));
            user(
                store,
                &organization,
                &format!("{side}{round}@example.com"),
                Role::Administrators,
            )
            .await;
        }
    }
}

/// Whatever the service sets lasts for its transaction only: the one server connection
/// it used shows the server's default statement timeout to the next client.
#[tokio::test]
async fn the_statement_timeout_is_not_left_on_the_server_connection() {
    let bouncer = PgBouncer::start(1);
    let database = TestDatabase::create().await;
    let storage = PostgresStorage::connect(
        &bouncer.route(database.url()),
        PostgresSettings {
            max_connections: 1,
            statement_timeout: StdDuration::from_millis(1234),
            pooler: Pooler::Transaction,
        },
    )
    .await
    .expect("connected through the pooler");
    storage
        .migrate()
        .await
        .expect("migrated through the pooler");
    storage.ping().await.expect("answers");
    storage
        .find(OrganizationId::new(1))
        .await
        .expect("looked up");

    let mut other = raw_connection(&bouncer, &database).await;
    let (timeout,): (String,) = sqlx::raw_sql("show statement_timeout")
        .fetch_one(&mut other)
        .await
        .map(|row| {
            use sqlx::Row as _;
            (row.get(0),)
        })
        .expect("read");
    assert_eq!(timeout, "0");
    let prepared: i64 = sqlx::raw_sql("select count(*) from pg_prepared_statements")
        .fetch_one(&mut other)
        .await
        .map(|row| {
            use sqlx::Row as _;
            row.get(0)
        })
        .expect("read");
    // What the service's last transaction prepared is dropped by the next transaction's
    // start; this client's own statement is simple-protocol and prepares nothing.
    assert!(prepared <= 3, "{prepared} prepared statements left");
    other.close().await.ok();
}

/// The timeout holds through the pooler, for a statement outside any explicit
/// transaction of the service's.
#[tokio::test]
async fn a_statement_running_past_the_statement_timeout_is_cancelled_through_the_pooler() {
    let database = TestDatabase::create().await;
    let bouncer = PgBouncer::shared();
    let storage = PostgresStorage::connect(
        &bouncer.route(database.url()),
        PostgresSettings {
            max_connections: 2,
            statement_timeout: StdDuration::from_millis(300),
            pooler: Pooler::Transaction,
        },
    )
    .await
    .expect("connected through the pooler");
    storage
        .migrate()
        .await
        .expect("migrated through the pooler");
    let mut locker = PgConnection::connect(database.url())
        .await
        .expect("connected");
    locker
        .execute("begin; lock table organizations in access exclusive mode")
        .await
        .expect("locked");

    let started = Instant::now();
    let found = tokio::time::timeout(
        StdDuration::from_secs(5),
        storage.find(OrganizationId::new(1)),
    )
    .await;
    let waited = started.elapsed();
    locker.execute("rollback").await.expect("unlocked");

    let found = found.expect("the statement ends before the lock is released");
    assert!(
        matches!(found, Err(StorageError::Unavailable(_))),
        "{found:?}"
    );
    assert!(waited < StdDuration::from_secs(5), "{waited:?}");
}

/// Four instances migrating one empty database at once through the pooler: one applies
/// the migrations, the others wait for it and find nothing left to do.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn four_instances_migrating_at_once_through_the_pooler_all_succeed() {
    let database = TestDatabase::create().await;
    let mut storages = Vec::new();
    for _ in 0..INSTANCES {
        storages.push(pooled_storage(PgBouncer::shared(), &database, 2).await);
    }

    let tasks = storages
        .iter()
        .map(|storage| {
            let storage = storage.clone();
            tokio::spawn(async move { storage.migrate().await })
        })
        .collect();
    let results = join(tasks).await;

    assert!(results.iter().all(Result::is_ok), "{results:?}");
    let mut direct = PgConnection::connect(database.url())
        .await
        .expect("connected");
    let (applied,): (i64,) = sqlx::query_as("select count(*) from _sqlx_migrations")
        .fetch_one(&mut direct)
        .await
        .expect("counted");
    let files = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations"))
        .expect("the migrations")
        .filter(|entry| {
            entry
                .as_ref()
                .is_ok_and(|entry| entry.file_name().to_string_lossy().ends_with(".sql"))
        })
        .count();
    assert_eq!(usize::try_from(applied).ok(), Some(files));
    direct.close().await.ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ten_acceptances_of_one_token_from_four_instances_create_exactly_one_user() {
    let (stores, _database) = instances().await;
    let (organization, admin) = organization_with_admin(&stores[0]).await;
    let (_, invitation_token) = invitation(
        &stores[0],
        &organization,
        &admin,
        "guest@example.com",
        now(),
        Duration::days(7),
    )
    .await;

    let tasks = (0..10)
        .map(|n| {
            let invitations = Arc::clone(&stores[n % INSTANCES].invitations);
            let invitation_token = invitation_token.clone();
            tokio::spawn(async move {
                invitations
                    .accept(&invitation_token, now(), profile(), &key(), any_event())
                    .await
            })
        })
        .collect();
    let results = join(tasks).await;

    let accepted = results.iter().filter(|result| result.is_ok()).count();
    let refused = results
        .iter()
        .filter(|result| matches!(result, Err(AcceptInvitationError::InvalidToken)))
        .count();
    assert_eq!((accepted, refused), (1, 9), "{results:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_invitations_of_one_address_from_four_instances_store_exactly_one() {
    let (stores, _database) = instances().await;
    let (organization, admin) = organization_with_admin(&stores[0]).await;

    let tasks = (0..20)
        .map(|n| {
            let invitations = Arc::clone(&stores[n % INSTANCES].invitations);
            let new = new_invitation(
                &organization,
                &admin,
                "guest@example.com",
                now(),
                Duration::days(7),
            );
            tokio::spawn(async move {
                let email = mail(EmailKind::Invitation, &new.identifier, "Hi");
                invitations.create(new, email, &[], any_event()).await
            })
        })
        .collect();
    let results = join(tasks).await;

    let stored = results.iter().filter(|result| result.is_ok()).count();
    let refused = results
        .iter()
        .filter(|result| matches!(result, Err(CreateInvitationError::AlreadyInvited)))
        .count();
    assert_eq!((stored, refused), (1, 19), "{results:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn administrators_demoting_and_removing_each_other_from_four_instances_leave_one() {
    let (stores, _database) = instances().await;

    for round in 0..6 {
        let organization = root(&stores[0], &format!("Root {round}")).await;
        let (a, _) = user(
            &stores[0],
            &organization,
            &format!("a{round}@example.com"),
            Role::Administrators,
        )
        .await;
        let (b, _) = user(
            &stores[0],
            &organization,
            &format!("b{round}@example.com"),
            Role::Administrators,
        )
        .await;
        let tasks = (0..8)
            .map(|n| {
                let (member, requester): (UserId, UserId) = if n % 2 == 0 {
                    (b.id, a.id)
                } else {
                    (a.id, b.id)
                };
                let remove = (n / 2 + round) % 2 == 1;
                let members = Arc::clone(&stores[n % INSTANCES].members);
                let organization = organization.id;
                tokio::spawn(async move {
                    let outcome = if remove {
                        members
                            .remove(organization, member, requester, any_event())
                            .await
                    } else {
                        members
                            .change_role(
                                organization,
                                member,
                                Role::Managers,
                                requester,
                                now(),
                                Some(any_event()),
                            )
                            .await
                            .map(drop)
                    };
                    (requester, outcome)
                })
            })
            .collect();

        let results = join(tasks).await;

        let mut winners: Vec<UserId> = results
            .iter()
            .filter(|(_, outcome)| outcome.is_ok())
            .map(|(requester, _)| *requester)
            .collect();
        winners.dedup();
        assert_eq!(winners.len(), 1, "one side wins: {results:?}");
        for (requester, outcome) in &results {
            if *requester != winners[0] {
                assert_eq!(
                    *outcome,
                    Err(MemberChangeError::LastAdministrator),
                    "{results:?}"
                );
            }
        }
        let left = stores[1]
            .members
            .list(
                organization.id,
                MemberFilter {
                    role: Some(Role::Administrators),
                    identifier: None,
                    kind: None,
                },
                PageRequest::default(),
            )
            .await
            .expect("listed");
        assert_eq!(left.total, 1, "{results:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_login_failures_limited_to_five_from_four_instances_count_exactly_five() {
    let (stores, _database) = instances().await;
    let key = LimitKey::LoginFailures("ada@example.com".to_owned());
    let limit = RateLimit {
        count: 5,
        window: Duration::minutes(15),
    };
    let at = now();

    let tasks = (0..20)
        .map(|n| {
            let rate_limits = Arc::clone(&stores[n % INSTANCES].rate_limits);
            let limits = [(key.clone(), limit)];
            tokio::spawn(async move { rate_limits.acquire(&limits, at).await })
        })
        .collect();
    let results = join(tasks).await;

    let acquired = results.iter().filter(|result| result.is_ok()).count();
    let limited = results
        .iter()
        .filter(|result| matches!(result, Err(AcquireError::Limited(_))))
        .count();
    assert_eq!((acquired, limited), (5, 15), "{results:?}");
    let window = stores[3]
        .rate_limits
        .window(&key, at - Duration::seconds(1))
        .await
        .expect("counted");
    assert_eq!(window.count, 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn invitation_allowances_taken_in_either_order_from_four_instances_never_overshoot() {
    let (stores, _database) = instances().await;
    let recipient = LimitKey::InvitesToRecipient("guest@example.com".to_owned());
    let organization = LimitKey::InvitesFromOrganization(OrganizationId::new(1));
    let hour = Duration::hours(1);
    let per_recipient = RateLimit {
        count: 5,
        window: hour,
    };
    let per_organization = RateLimit {
        count: 7,
        window: hour,
    };
    let at = now();

    let tasks = (0..30)
        .map(|n| {
            let rate_limits = Arc::clone(&stores[n % INSTANCES].rate_limits);
            let limits = if n % 2 == 0 {
                vec![
                    (recipient.clone(), per_recipient),
                    (organization.clone(), per_organization),
                ]
            } else {
                vec![
                    (organization.clone(), per_organization),
                    (recipient.clone(), per_recipient),
                ]
            };
            tokio::spawn(async move { rate_limits.acquire(&limits, at).await })
        })
        .collect();
    let results = join(tasks).await;

    let acquired = results.iter().filter(|result| result.is_ok()).count();
    let limited = results
        .iter()
        .filter(|result| matches!(result, Err(AcquireError::Limited(_))))
        .count();
    assert_eq!((acquired, limited), (5, 25), "{results:?}");
    let since = at - Duration::seconds(1);
    for key in [&recipient, &organization] {
        let window = stores[2]
            .rate_limits
            .window(key, since)
            .await
            .expect("counted");
        assert_eq!(window.count, 5);
    }
}
