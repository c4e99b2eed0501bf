//! Hostile clients of the login and invitation endpoints (CONTRACT §9): limits exact
//! under concurrency, keys whatever the input, one mailbox counted once, the same work
//! for unknown and known identifiers, and bounded password hashing.

use std::time::{Duration as StdDuration, Instant};

use app::security::HashingSettings;
use app::usecases::AbuseLimits;
use futures::future::join_all;
use orgs_tests::{Backend, SpawnOptions, TestApp, spawn_app, spawn_app_with_options};
use serde_json::{Value, json};

/// Posts `body` to `path` `count` times at once, without authentication.
async fn in_parallel(app: &TestApp, path: &str, bodies: Vec<Value>) -> Vec<u16> {
    let requests = bodies
        .iter()
        .map(|body| async move { app.post(path, None, body).await.status });
    join_all(requests).await
}

fn count(statuses: &[u16], status: u16) -> usize {
    statuses.iter().filter(|s| **s == status).count()
}

mod parallel_wrong_passwords {
    use super::*;

    async fn thirty_give_exactly_ten_400s_and_twenty_429s(backend: Backend) {
        let app = spawn_app(backend).await;
        app.add_user(app.root_id, "target@example.com", "users")
            .await;
        let wrong = json!({"identifier": "target@example.com", "password": "wrong password"});

        let statuses = in_parallel(&app, "/auth/token/", vec![wrong; 30]).await;

        assert_eq!(
            (count(&statuses, 400), count(&statuses, 429)),
            (10, 20),
            "{statuses:?}"
        );
        let right =
            json!({"identifier": "target@example.com", "password": "correct horse battery"});
        assert_eq!(app.post("/auth/token/", None, &right).await.status, 429);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        thirty_give_exactly_ten_400s_and_twenty_429s(Backend::Sqlite).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        thirty_give_exactly_ten_400s_and_twenty_429s(Backend::Postgres).await;
    }
}

mod odd_login_identifiers {
    use super::*;

    async fn answer_400_with_the_ordinary_errors(backend: Backend) {
        let app = spawn_app(backend).await;
        let identifiers = [
            "x".repeat(3000),
            format!("{}@example.com", "a".repeat(3000)),
            format!("someone@{}.com", "d".repeat(3000)),
            "ops@\u{130}nc.com".to_owned(),
            "\u{202e}moc.elpmaxe@nimda\u{feff} \u{1F600}'\";--\t\r\n".to_owned(),
        ];

        for identifier in identifiers {
            let reply = app
                .post(
                    "/auth/token/",
                    None,
                    &json!({"identifier": identifier, "password": "whatever1"}),
                )
                .await;

            // Longer than any identifier can be: the field's own length error (§9);
            // otherwise no user has it, which says nothing more than a wrong password.
            let expected = if identifier.chars().count() > 320 {
                json!({"identifier": ["Ensure this field has no more than 320 characters."]})
            } else {
                json!({"non_field_errors": ["Unable to log in with provided credentials."]})
            };
            assert_eq!(reply.status, 400, "{}: {}", identifier.len(), reply.text);
            assert_eq!(reply.body, expected);
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        answer_400_with_the_ordinary_errors(Backend::Sqlite).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        answer_400_with_the_ordinary_errors(Backend::Postgres).await;
    }
}

mod unknown_and_known_identifiers {
    use super::*;

    fn median(mut times: Vec<StdDuration>) -> StdDuration {
        times.sort_unstable();
        times[times.len() / 2]
    }

    async fn timed_login(app: &TestApp, identifier: &str) -> StdDuration {
        let body = json!({"identifier": identifier, "password": "not the password"});
        let started = Instant::now();
        let reply = app.post("/auth/token/", None, &body).await;
        let took = started.elapsed();
        assert_eq!(reply.status, 400, "{}", reply.text);
        took
    }

    async fn take_comparable_time(backend: Backend) {
        let app = spawn_app(backend).await;
        app.add_user(app.root_id, "known@example.com", "users")
            .await;
        let mut known = Vec::new();
        let mut unknown = Vec::new();

        // Seven of each, interleaved, under the limit of ten failures per identifier.
        for attempt in 0..7 {
            known.push(timed_login(&app, "known@example.com").await);
            unknown.push(timed_login(&app, &format!("nobody{attempt}@example.com")).await);
        }

        // Without the decoy hash an unknown identifier answers some twenty times
        // faster; the generous bound leaves room for a busy machine.
        let (known, unknown) = (median(known), median(unknown));
        assert!(
            unknown * 3 >= known,
            "unknown median {unknown:?}, known median {known:?}"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        take_comparable_time(Backend::Sqlite).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        take_comparable_time(Backend::Postgres).await;
    }
}

mod one_mailbox_however_cased {
    use super::*;

    async fn counts_once_for_the_recipient_allowance(backend: Backend) {
        // The default allowance: five invitation e-mails per recipient per hour.
        let app = spawn_app(backend).await;
        let path = format!("/organizations/{}/invite_user/", app.root_id);
        let casings = [
            "Victim@example.com",
            "victim@example.com",
            "VICTIM@EXAMPLE.COM",
            "vIctim@example.com",
            "viCtim@Example.com",
            "vicTim@example.com",
        ];

        let mut replies = Vec::new();
        for identifier in casings {
            replies.push(
                app.post(
                    &path,
                    Some(&app.admin_key),
                    &json!({"identifier": identifier}),
                )
                .await,
            );
        }

        let statuses: Vec<u16> = replies.iter().map(|reply| reply.status).collect();
        assert_eq!(statuses, [201, 201, 201, 201, 201, 429], "{statuses:?}");
        let limited = &replies[5];
        assert!(
            limited
                .header("retry-after")
                .and_then(|value| value.parse::<u64>().ok())
                .is_some_and(|seconds| seconds > 0 && seconds <= 3600),
            "{:?}",
            limited.headers
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        counts_once_for_the_recipient_allowance(Backend::Sqlite).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        counts_once_for_the_recipient_allowance(Backend::Postgres).await;
    }
}

mod parallel_identical_invitations {
    use super::*;

    async fn give_one_201_and_nineteen_already_invited(backend: Backend) {
        let app = spawn_app(backend).await;
        let path = format!("/organizations/{}/invite_user/", app.root_id);
        let body = json!({"identifier": "guest@example.com"});

        let replies = join_all((0..20).map(|_| app.post(&path, Some(&app.admin_key), &body))).await;

        let statuses: Vec<u16> = replies.iter().map(|reply| reply.status).collect();
        assert_eq!(
            (count(&statuses, 201), count(&statuses, 400)),
            (1, 19),
            "{statuses:?}"
        );
        for reply in replies.iter().filter(|reply| reply.status == 400) {
            assert_eq!(
                reply.body,
                json!({"identifier": ["This identifier has already been invited."]})
            );
        }
        // Only the stored invitation used an allowance: four more e-mails to the
        // mailbox may go (other casings are other identifiers, one mailbox), not five.
        let mut more = Vec::new();
        for identifier in [
            "Guest@example.com",
            "GUest@example.com",
            "GUESt@example.com",
            "gUEST@example.com",
            "GuEsT@example.com",
        ] {
            more.push(
                app.post(
                    &path,
                    Some(&app.admin_key),
                    &json!({"identifier": identifier}),
                )
                .await
                .status,
            );
        }
        assert_eq!(more, [201, 201, 201, 201, 429]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        give_one_201_and_nineteen_already_invited(Backend::Sqlite).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        give_one_201_and_nineteen_already_invited(Backend::Postgres).await;
    }
}

mod bounded_hashing {
    use super::*;

    async fn a_bogus_token_is_refused_and_a_flood_past_the_slots_gets_503(backend: Backend) {
        let app = spawn_app_with_options(
            backend,
            SpawnOptions {
                limits: AbuseLimits::default(),
                hashing: HashingSettings {
                    concurrency: 1,
                    max_wait: StdDuration::from_millis(1),
                },
                ..SpawnOptions::default()
            },
        )
        .await;
        let bogus = app
            .post(
                "/invitations/accept/",
                None,
                &json!({"token": "bogus", "password": "long enough", "first_name": "A", "last_name": "B"}),
            )
            .await;
        let logins: Vec<Value> = (0..20)
            .map(|n| json!({"identifier": format!("nobody{n}@example.com"), "password": "whatever1"}))
            .collect();

        let replies = join_all(
            logins
                .iter()
                .map(|body| app.post("/auth/token/", None, body)),
        )
        .await;

        assert_eq!(bogus.status, 400, "{}", bogus.text);
        assert_eq!(
            bogus.body,
            json!({"token": ["Invalid or expired invitation."]})
        );
        let statuses: Vec<u16> = replies.iter().map(|reply| reply.status).collect();
        assert_eq!(
            count(&statuses, 400) + count(&statuses, 503),
            20,
            "{statuses:?}"
        );
        let busy: Vec<_> = replies.iter().filter(|reply| reply.status == 503).collect();
        assert!(!busy.is_empty(), "{statuses:?}");
        for reply in busy {
            assert_eq!(reply.header("retry-after"), Some("1"));
            assert!(reply.body["detail"].is_string());
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        a_bogus_token_is_refused_and_a_flood_past_the_slots_gets_503(Backend::Sqlite).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        a_bogus_token_is_refused_and_a_flood_past_the_slots_gets_503(Backend::Postgres).await;
    }
}
