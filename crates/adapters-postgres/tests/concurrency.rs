//! Races on PostgreSQL, with tasks spawned on a multi-thread runtime, each on its own
//! pooled connection: the invariants hold under real parallel transactions.

mod support;

use std::sync::Arc;

use domain::invitation::NewInvitation;
use domain::limits::{LimitKey, RateLimit};
use domain::mail::EmailKind;
use domain::member::MemberFilter;
use domain::pagination::PageRequest;
use domain::{Duration, OrganizationId, Role, UserId};
use ports::outbound::{
    AcceptInvitationError, AcquireError, CreateInvitationError, MemberChangeError, MemberRepository,
};
use sqlx::{Connection as _, Executor as _, PgConnection};
use storage_contract::Store;
use storage_contract::fixtures::{
    any_event, child, invitation, mail, new_invitation, now, organization_with_admin, person, root,
    user,
};

fn profile() -> ports::outbound::MemberProfile {
    ports::outbound::MemberProfile {
        first_name: person("Grace"),
        last_name: person("Hopper"),
        password_hash: domain::user::PasswordHash::new("$argon2id$v=19$x".to_owned()),
    }
}

async fn join<T: Send + 'static>(tasks: Vec<tokio::task::JoinHandle<T>>) -> Vec<T> {
    let mut results = Vec::with_capacity(tasks.len());
    for task in tasks {
        results.push(task.await.expect("the task finished"));
    }
    results
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_spawned_invitations_of_one_address_store_exactly_one() {
    let (storage, _database) = support::fresh_storage().await;
    let store = Store::new(storage);
    let (organization, admin) = organization_with_admin(&store).await;
    let attempts: Vec<NewInvitation> = (0..20)
        .map(|_| {
            new_invitation(
                &organization,
                &admin,
                "guest@example.com",
                now(),
                Duration::days(7),
            )
        })
        .collect();

    let tasks = attempts
        .into_iter()
        .map(|new| {
            let invitations = Arc::clone(&store.invitations);
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
    let listed = store
        .invitations
        .list(organization.id, None, now(), PageRequest::default())
        .await
        .expect("listed");
    assert_eq!(listed.total, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ten_spawned_acceptances_of_one_token_create_exactly_one_user() {
    let (storage, _database) = support::fresh_storage().await;
    let store = Store::new(storage);
    let (organization, admin) = organization_with_admin(&store).await;
    let (_, invitation_token) = invitation(
        &store,
        &organization,
        &admin,
        "guest@example.com",
        now(),
        Duration::days(7),
    )
    .await;

    let tasks = (0..10)
        .map(|_| {
            let invitations = Arc::clone(&store.invitations);
            let invitation_token = invitation_token.clone();
            tokio::spawn(async move {
                invitations
                    .accept(
                        &invitation_token,
                        now(),
                        profile(),
                        &storage_contract::fixtures::key(),
                        any_event(),
                    )
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
async fn two_spawned_workers_claim_each_of_a_thousand_messages_exactly_once() {
    let (storage, database) = support::fresh_storage().await;
    let store = Store::new(storage);
    let at = now();
    let mut connection = PgConnection::connect(database.url())
        .await
        .expect("connected");
    sqlx::query(
        "insert into outbox (kind, recipient, subject, text_body, html_body, created_at, \
         next_attempt_at) \
         select 'invitation', 'r' || n || '@example.com', 'Hi', 'Hi', '<p>Hi</p>', $1, $1 \
         from generate_series(1, 1000) as n",
    )
    .bind(at)
    .execute(&mut connection)
    .await
    .expect("seeded");

    let tasks = (0..2)
        .map(|_| {
            let outbox = Arc::clone(&store.outbox);
            tokio::spawn(async move {
                let mut claimed = Vec::new();
                loop {
                    let batch = outbox
                        .claim_due(at, 20, Duration::hours(1))
                        .await
                        .expect("claimed");
                    if batch.is_empty() {
                        return claimed;
                    }
                    claimed.extend(batch.into_iter().map(|message| message.id.get()));
                }
            })
        })
        .collect();
    let results = join(tasks).await;

    let mut all: Vec<i64> = results.concat();
    all.sort_unstable();
    let claimed = all.len();
    all.dedup();
    assert_eq!(claimed, 1000, "every message claimed");
    assert_eq!(all.len(), 1000, "no message claimed twice");
    assert!(
        results.iter().all(|worker| !worker.is_empty()),
        "both workers claimed"
    );
}

/// Records, at commit time, when each user row and each archiving committed: deferred
/// constraint triggers run as their transaction commits.
async fn log_commits(url: &str) {
    let mut connection = PgConnection::connect(url).await.expect("connected");
    connection
        .execute(
            "create table commit_log (tbl text not null, id bigint not null, \
                 at timestamptz not null);
             create function log_commit() returns trigger language plpgsql as $$
             begin
                 insert into commit_log values (tg_table_name, new.id, clock_timestamp());
                 return null;
             end $$;
             create constraint trigger users_committed after insert on users
                 deferrable initially deferred for each row execute function log_commit();
             create constraint trigger organizations_archived after update on organizations
                 deferrable initially deferred for each row
                 when (new.archived_at is not null and old.archived_at is null)
                 execute function log_commit();",
        )
        .await
        .expect("commit log installed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn archiving_a_child_while_its_invitations_are_accepted_leaves_no_later_active_user() {
    let (storage, database) = support::fresh_storage().await;
    log_commits(database.url()).await;
    let store = Store::new(storage);
    let (parent, admin) = organization_with_admin(&store).await;
    let mut accepted_total = 0;

    for round in 0..8 {
        let organization = child(&store, &parent, &format!("Child {round}")).await;
        let mut tokens = Vec::new();
        for n in 0..8 {
            let (_, invitation_token) = invitation(
                &store,
                &organization,
                &admin,
                &format!("guest{round}-{n}@example.com"),
                now(),
                Duration::days(7),
            )
            .await;
            tokens.push(invitation_token);
        }

        let mut tasks: Vec<tokio::task::JoinHandle<bool>> = tokens
            .into_iter()
            .map(|invitation_token| {
                let invitations = Arc::clone(&store.invitations);
                tokio::spawn(async move {
                    invitations
                        .accept(
                            &invitation_token,
                            now(),
                            profile(),
                            &storage_contract::fixtures::key(),
                            any_event(),
                        )
                        .await
                        .is_ok()
                })
            })
            .collect();
        let organizations = Arc::clone(&store.organizations);
        let archived_id = organization.id;
        tasks.insert(
            4,
            tokio::spawn(async move {
                organizations
                    .archive_child(archived_id, None, now(), any_event())
                    .await
                    .expect("archived");
                false
            }),
        );
        let results = join(tasks).await;
        accepted_total += results.iter().filter(|accepted| **accepted).count();

        assert_eq!(store.organizations.find(organization.id).await, Ok(None));
    }

    let mut connection = PgConnection::connect(database.url())
        .await
        .expect("connected");
    let (late,): (i64,) = sqlx::query_as(
        "select count(*) from users u \
         join organizations o on o.id = u.organization_id \
         join commit_log user_commit on user_commit.tbl = 'users' and user_commit.id = u.id \
         join commit_log archive on archive.tbl = 'organizations' and archive.id = o.id \
         where o.archived_at is not null and u.is_active and user_commit.at > archive.at",
    )
    .fetch_one(&mut connection)
    .await
    .expect("counted");
    let (archives,): (i64,) =
        sqlx::query_as("select count(*) from commit_log where tbl = 'organizations'")
            .fetch_one(&mut connection)
            .await
            .expect("counted");
    assert_eq!(
        late, 0,
        "an active user was created in an organization after its archiving"
    );
    assert_eq!(archives, 8);
    assert!(accepted_total > 0, "no acceptance took part in the race");
}

/// One attempt of the member races: `requester` demotes or removes `member`.
async fn demote_or_remove(
    members: Arc<dyn MemberRepository>,
    organization: OrganizationId,
    member: UserId,
    requester: UserId,
    remove: bool,
) -> Result<(), MemberChangeError> {
    if remove {
        members
            .remove(organization, member, requester, any_event())
            .await
    } else {
        members
            .change_role(organization, member, Role::Managers, requester, now(), None)
            .await
            .map(drop)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn spawned_administrators_demoting_and_removing_each_other_never_leave_a_root_without_one() {
    let (storage, _database) = support::fresh_storage().await;
    let store = Store::new(storage);

    for round in 0..12 {
        let organization = root(&store, &format!("Root {round}")).await;
        let (a, _) = user(
            &store,
            &organization,
            &format!("a{round}@example.com"),
            Role::Administrators,
        )
        .await;
        let (b, _) = user(
            &store,
            &organization,
            &format!("b{round}@example.com"),
            Role::Administrators,
        )
        .await;
        let tasks = (0..8)
            .map(|n| {
                let (member, requester) = if n % 2 == 0 {
                    (b.id, a.id)
                } else {
                    (a.id, b.id)
                };
                let remove = (n / 2 + round) % 2 == 1;
                let members = Arc::clone(&store.members);
                tokio::spawn(async move {
                    let outcome =
                        demote_or_remove(members, organization.id, member, requester, remove).await;
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
        let left = store
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
        assert_eq!(left.items[0].id, winners[0]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_spawned_acquisitions_of_a_key_limited_to_five_succeed_exactly_five_times() {
    let (storage, _database) = support::fresh_storage().await;
    let store = Store::new(storage);
    let key = LimitKey::LoginFailures("ada@example.com".to_owned());
    let limit = RateLimit {
        count: 5,
        window: Duration::minutes(15),
    };
    let at = now();

    let tasks = (0..20)
        .map(|_| {
            let rate_limits = Arc::clone(&store.rate_limits);
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
    let window = store
        .rate_limits
        .window(&key, at - Duration::seconds(1))
        .await
        .expect("counted");
    assert_eq!(window.count, 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn spawned_acquisitions_of_two_keys_in_either_order_neither_deadlock_nor_overshoot() {
    let (storage, _database) = support::fresh_storage().await;
    let store = Store::new(storage);
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
            let rate_limits = Arc::clone(&store.rate_limits);
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
        let window = store.rate_limits.window(key, since).await.expect("counted");
        assert_eq!(window.count, 5);
    }
}

/// A child's change and its event take no lock on the root's row: while another
/// transaction holds that row `for update`, the change commits at once. (A foreign key on
/// the event's root would take a key-share lock on it for every event, and a new multixact
/// on that row for each change made at the same time anywhere in the tree.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_childs_change_and_its_event_wait_for_no_lock_on_the_root() {
    let (storage, database) = support::fresh_storage().await;
    let store = Store::new(storage);
    let (organization, _admin) = organization_with_admin(&store).await;
    let kid = child(&store, &organization, "Kid").await;
    let mut holder = PgConnection::connect(database.url())
        .await
        .expect("connected");
    holder.execute("begin").await.expect("began");
    sqlx::query("select id from organizations where id = $1 for update")
        .bind(organization.id.get())
        .execute(&mut holder)
        .await
        .expect("the root's row is locked");

    let mut renamed = kid.clone();
    renamed.name = domain::organization::OrganizationName::parse("Kid renamed").expect("a name");
    let changed = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        store
            .organizations
            .update(&renamed, None, now(), Some(any_event())),
    )
    .await;
    holder.execute("rollback").await.expect("rolled back");

    let updated = changed
        .expect("the change waited for the root's row lock")
        .expect("the change is stored");
    assert_eq!(updated.name, renamed.name);
    let (events,): (i64,) =
        sqlx::query_as("select count(*) from events where organization_id = $1")
            .bind(kid.id.get())
            .fetch_one(&mut holder)
            .await
            .expect("counted");
    assert_eq!(events, 2, "the child's creation and its change");
}
