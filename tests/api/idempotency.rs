//! Idempotent retries (CONTRACT §12): an `Idempotency-Key` on an authenticated `POST`
//! runs the request once and answers its retries with the kept response.

use std::time::Duration;

use futures::future::join_all;
use orgs_tests::{Backend, Reply, SpawnOptions, TestApp, id_of, spawn_app, spawn_app_with_options};
use reqwest::Method;
use reqwest::header::HeaderValue;
use serde_json::{Value, json};
use sqlx::Connection as _;

/// `POST path` as `key` with `Idempotency-Key: idempotency_key` and a JSON body.
async fn post_with_key(
    app: &TestApp,
    path: &str,
    key: &str,
    idempotency_key: &str,
    body: &Value,
) -> Reply {
    app.send(
        app.request(Method::POST, path, Some(key))
            .header("Idempotency-Key", idempotency_key)
            .json(body),
    )
    .await
}

fn child_body(app: &TestApp, name: &str) -> Value {
    json!({
        "name": name,
        "contact_email": "child@example.com",
        "parent": format!("/organizations/{}/", app.root_id),
    })
}

/// How many children of the root are named `name`.
async fn children_named(app: &TestApp, name: &str) -> usize {
    let list = app
        .get(
            &format!("/organizations/{}/children/?page_size=1000", app.root_id),
            &app.admin_key,
        )
        .await;
    assert_eq!(list.status, 200, "{}", list.text);
    list.body["results"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|child| child["name"] == name)
        .count()
}

fn replayed(reply: &Reply) -> bool {
    reply.header("idempotent-replayed") == Some("true")
}

/// Runs statements on the app's database, past the service.
async fn execute(app: &TestApp, statements: &[&str]) {
    match app.backend {
        Backend::Sqlite => {
            let mut connection = sqlx::SqliteConnection::connect(&app.database_url)
                .await
                .expect("connect to SQLite");
            for statement in statements {
                sqlx::query(statement)
                    .execute(&mut connection)
                    .await
                    .expect("statement runs");
            }
        }
        Backend::Postgres | Backend::PgBouncer => {
            let mut connection = sqlx::PgConnection::connect(&app.database_url)
                .await
                .expect("connect to PostgreSQL");
            for statement in statements {
                sqlx::query(statement)
                    .execute(&mut connection)
                    .await
                    .expect("statement runs");
            }
        }
    }
}

/// Every kept response body, as text, read past the service.
async fn kept_bodies(app: &TestApp) -> Vec<String> {
    let query = "select response_body from idempotency_keys where response_body is not null";
    let rows: Vec<(Vec<u8>,)> = match app.backend {
        Backend::Sqlite => {
            let mut connection = sqlx::SqliteConnection::connect(&app.database_url)
                .await
                .expect("connect to SQLite");
            sqlx::query_as(query)
                .fetch_all(&mut connection)
                .await
                .expect("rows")
        }
        Backend::Postgres | Backend::PgBouncer => {
            let mut connection = sqlx::PgConnection::connect(&app.database_url)
                .await
                .expect("connect to PostgreSQL");
            sqlx::query_as(query)
                .fetch_all(&mut connection)
                .await
                .expect("rows")
        }
    };
    rows.into_iter()
        .map(|(body,)| String::from_utf8_lossy(&body).into_owned())
        .collect()
}

async fn a_retried_invitation_sends_one_email_and_makes_one_invitation(backend: Backend) {
    let app = spawn_app(backend).await;
    let path = format!("/organizations/{}/invite_user/", app.root_id);
    let body = json!({"identifier": "once@example.com", "role": "users"});

    let first = post_with_key(&app, &path, &app.admin_key, "invite-once", &body).await;
    let retry = post_with_key(&app, &path, &app.admin_key, "invite-once", &body).await;
    app.token_sent_to("once@example.com").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let invitations = app
        .get(
            &format!("/organizations/{}/invitations/", app.root_id),
            &app.admin_key,
        )
        .await;

    assert_eq!(first.status, 201, "{}", first.text);
    assert!(!replayed(&first));
    assert_eq!(retry.status, 201, "{}", retry.text);
    assert!(replayed(&retry));
    assert_eq!(retry.body, first.body);
    assert_eq!(retry.header("location"), first.header("location"));
    assert_eq!(retry.header("content-type"), first.header("content-type"));
    assert_eq!(app.emails_to("once@example.com"), 1);
    assert_eq!(invitations.body["count"], 1, "{}", invitations.text);
}

async fn a_retried_child_creation_makes_one_child_with_the_same_location(backend: Backend) {
    let app = spawn_app(backend).await;
    let body = child_body(&app, "Retried child");

    let first = post_with_key(&app, "/organizations/", &app.admin_key, "child-1", &body).await;
    let retry = post_with_key(&app, "/organizations/", &app.admin_key, "child-1", &body).await;

    assert_eq!(first.status, 201, "{}", first.text);
    assert_eq!(retry.status, 201, "{}", retry.text);
    assert!(replayed(&retry));
    assert!(first.header("location").is_some());
    assert_eq!(retry.header("location"), first.header("location"));
    assert_eq!(retry.header("etag"), first.header("etag"));
    assert_eq!(retry.body, first.body);
    assert_eq!(children_named(&app, "Retried child").await, 1);
}

async fn the_same_key_for_a_different_request_is_422(backend: Backend) {
    let app = spawn_app(backend).await;
    post_with_key(
        &app,
        "/organizations/",
        &app.admin_key,
        "reused",
        &child_body(&app, "First"),
    )
    .await;

    let other_body = post_with_key(
        &app,
        "/organizations/",
        &app.admin_key,
        "reused",
        &child_body(&app, "Second"),
    )
    .await;
    let other_path = app
        .send(
            app.request(
                Method::POST,
                &format!("/organizations/{}/opt_outs/", app.root_id),
                Some(&app.admin_key),
            )
            .header("Idempotency-Key", "reused")
            .header("Accept-Language", "fr")
            .json(&json!({"address": "x@example.com"})),
        )
        .await;

    assert_eq!(other_body.status, 422, "{}", other_body.text);
    assert_eq!(
        other_body.body,
        json!({"detail": "This Idempotency-Key was already used for a different request."})
    );
    assert_eq!(other_path.status, 422, "{}", other_path.text);
    assert_eq!(
        other_path.body,
        json!({"detail": "Cette Idempotency-Key a déjà servi pour une autre requête."})
    );
    assert_eq!(children_named(&app, "Second").await, 0);
}

/// Sends `copies` identical requests with one key at once, spread over `apps`.
async fn race(apps: &[&TestApp], copies: usize, key: &str, body: &Value) -> Vec<Reply> {
    join_all((0..copies).map(|n| {
        let app = apps[n % apps.len()];
        post_with_key(app, "/organizations/", &app.admin_key, key, body)
    }))
    .await
}

fn check_race(replies: &[Reply]) {
    let ran = replies
        .iter()
        .filter(|reply| reply.status == 201 && !replayed(reply))
        .count();
    let location = replies
        .iter()
        .find(|reply| reply.status == 201 && !replayed(reply))
        .and_then(|reply| reply.header("location"));
    for reply in replies {
        match reply.status {
            201 => assert_eq!(reply.header("location"), location, "{}", reply.text),
            409 => assert_eq!(
                reply.body,
                json!({"detail": "A request with this Idempotency-Key is still being processed."})
            ),
            other => panic!("unexpected {other}: {}", reply.text),
        }
    }
    assert_eq!(
        ran,
        1,
        "{:?}",
        replies.iter().map(|r| r.status).collect::<Vec<_>>()
    );
}

async fn ten_parallel_identical_requests_run_once(backend: Backend) {
    let app = spawn_app(backend).await;
    let body = child_body(&app, "Raced child");

    let replies = race(&[&app], 10, "race-1", &body).await;

    check_race(&replies);
    assert_eq!(children_named(&app, "Raced child").await, 1);
}

async fn a_server_error_is_not_kept_and_a_retry_runs_again(backend: Backend) {
    let app = spawn_app(backend).await;
    let (refuse, allow): (&[&str], &[&str]) = match backend {
        Backend::Sqlite => (
            &[
                "create trigger refuse_organizations before insert on organizations \
               begin select raise(abort, 'forced failure'); end",
            ],
            &["drop trigger refuse_organizations"],
        ),
        Backend::Postgres | Backend::PgBouncer => (
            &[
                "create function refuse_organizations() returns trigger language plpgsql \
                 as $$ begin raise exception 'forced failure'; end $$",
                "create trigger refuse_organizations before insert on organizations \
                 for each row execute function refuse_organizations()",
            ],
            &["drop trigger refuse_organizations on organizations"],
        ),
    };
    let body = child_body(&app, "After the fault");
    execute(&app, refuse).await;

    let failed = post_with_key(&app, "/organizations/", &app.admin_key, "fault", &body).await;
    execute(&app, allow).await;
    let retry = post_with_key(&app, "/organizations/", &app.admin_key, "fault", &body).await;

    assert!(failed.status >= 500, "{}: {}", failed.status, failed.text);
    assert!(!failed.text.contains("forced failure"), "{}", failed.text);
    assert_eq!(retry.status, 201, "{}", retry.text);
    assert!(!replayed(&retry));
    assert_eq!(children_named(&app, "After the fault").await, 1);
}

async fn malformed_keys_are_400_and_run_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    let body = child_body(&app, "Never made");
    let long = "k".repeat(256);
    let values = [
        HeaderValue::from_static(""),
        HeaderValue::from_str(&long).expect("a header value"),
        HeaderValue::from_bytes(b"caf\xe9").expect("a header value"),
        HeaderValue::from_bytes(b"tab\there").expect("a header value"),
        HeaderValue::from_static("two words"),
    ];

    let mut replies = Vec::new();
    for value in values {
        replies.push(
            app.send(
                app.request(Method::POST, "/organizations/", Some(&app.admin_key))
                    .header("Idempotency-Key", value)
                    .json(&body),
            )
            .await,
        );
    }
    let french = app
        .send(
            app.request(Method::POST, "/organizations/", Some(&app.admin_key))
                .header("Idempotency-Key", "")
                .header("Accept-Language", "fr")
                .json(&body),
        )
        .await;
    let anonymous = app
        .send(
            app.request(Method::POST, "/organizations/", None)
                .header("Idempotency-Key", "")
                .json(&body),
        )
        .await;

    for reply in &replies {
        assert_eq!(reply.status, 400, "{}", reply.text);
        assert_eq!(
            reply.body,
            json!({"detail": "Idempotency-Key must be 1 to 255 visible ASCII characters."})
        );
    }
    assert_eq!(
        french.body,
        json!({"detail": "Idempotency-Key doit comporter de 1 à 255 caractères ASCII visibles."})
    );
    assert_eq!(anonymous.status, 401, "authentication comes first");
    assert_eq!(children_named(&app, "Never made").await, 0);
    // Last: it replaces the administrator's key.
    let longest = post_with_key(
        &app,
        "/me/regen_secret/",
        &app.admin_key,
        &long[..255],
        &json!({}),
    )
    .await;
    assert_eq!(
        longest.status, 200,
        "255 characters are fine: {}",
        longest.text
    );
}

async fn a_key_expires_after_the_ttl_and_the_request_runs_again(backend: Backend) {
    let app = spawn_app_with_options(
        backend,
        SpawnOptions {
            idempotency_ttl: domain::Duration::seconds(3),
            ..SpawnOptions::default()
        },
    )
    .await;
    let body = child_body(&app, "Short-lived key");

    let first = post_with_key(&app, "/organizations/", &app.admin_key, "ttl", &body).await;
    // The response is kept for the TTL from when it was stored, before this instant.
    let answered = tokio::time::Instant::now();
    let soon = post_with_key(&app, "/organizations/", &app.admin_key, "ttl", &body).await;
    tokio::time::sleep_until(answered + Duration::from_millis(3500)).await;
    let later = post_with_key(&app, "/organizations/", &app.admin_key, "ttl", &body).await;

    assert_eq!(first.status, 201, "{}", first.text);
    assert!(replayed(&soon));
    assert_eq!(later.status, 201, "{}", later.text);
    assert!(!replayed(&later));
    assert_ne!(later.header("location"), first.header("location"));
    assert_eq!(children_named(&app, "Short-lived key").await, 2);
}

async fn a_replayed_secret_is_null_and_never_kept(backend: Backend) {
    let app = spawn_app(backend).await;

    let first = post_with_key(
        &app,
        "/me/regen_secret/",
        &app.admin_key,
        "regen",
        &json!({}),
    )
    .await;
    let new_key = first.body["api_key"]
        .as_str()
        .expect("a new key")
        .to_owned();
    let retry = post_with_key(&app, "/me/regen_secret/", &new_key, "regen", &json!({})).await;
    let me = app.get("/me/", &new_key).await;
    let kept = kept_bodies(&app).await;

    assert_eq!(first.status, 200, "{}", first.text);
    assert_eq!(retry.status, 200, "{}", retry.text);
    assert!(replayed(&retry));
    assert_eq!(retry.body, json!({"api_key": null}));
    assert_eq!(retry.header("cache-control"), Some("no-store"));
    assert_eq!(
        me.status, 200,
        "the key made by the first request still works"
    );
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert!(!kept[0].contains(&new_key), "a secret is kept: {kept:?}");
}

async fn keys_of_one_user_do_not_replay_for_another(backend: Backend) {
    let app = spawn_app(backend).await;
    let other = app
        .add_user(app.root_id, "other-admin@example.com", "administrators")
        .await;
    let body = child_body(&app, "Per user");

    let mine = post_with_key(&app, "/organizations/", &app.admin_key, "shared", &body).await;
    let theirs = post_with_key(&app, "/organizations/", &other, "shared", &body).await;

    assert_eq!(mine.status, 201, "{}", mine.text);
    assert_eq!(theirs.status, 201, "{}", theirs.text);
    assert!(!replayed(&theirs));
    assert_ne!(theirs.header("location"), mine.header("location"));
    assert_eq!(children_named(&app, "Per user").await, 2);
}

async fn the_trailing_slash_and_the_order_of_json_keys_do_not_matter(backend: Backend) {
    let app = spawn_app(backend).await;
    let first = post_with_key(
        &app,
        "/organizations/",
        &app.admin_key,
        "same",
        &child_body(&app, "Same request"),
    )
    .await;
    let reordered = format!(
        "{{ \"parent\" : \"/organizations/{}/\",\n  \"contact_email\": \"child@example.com\", \"name\": \"Same request\" }}",
        app.root_id
    );

    let retry = app
        .send(
            app.request(Method::POST, "/organizations", Some(&app.admin_key))
                .header("Idempotency-Key", "same")
                .header("Content-Type", "application/json")
                .body(reordered),
        )
        .await;

    assert_eq!(first.status, 201, "{}", first.text);
    assert_eq!(retry.status, 201, "{}", retry.text);
    assert!(replayed(&retry));
    assert_eq!(retry.body, first.body);
    assert_eq!(children_named(&app, "Same request").await, 1);
}

async fn a_refused_request_is_kept_like_any_answer(backend: Backend) {
    let app = spawn_app(backend).await;
    let body = json!({"name": "", "contact_email": "nope", "parent": format!("/organizations/{}/", app.root_id)});

    let first = post_with_key(&app, "/organizations/", &app.admin_key, "bad-body", &body).await;
    let retry = post_with_key(&app, "/organizations/", &app.admin_key, "bad-body", &body).await;

    assert_eq!(first.status, 400, "{}", first.text);
    assert_eq!(retry.status, 400, "{}", retry.text);
    assert!(replayed(&retry));
    assert_eq!(retry.body, first.body);
    assert_eq!(retry.header("content-type"), Some("application/json"));
}

async fn a_key_on_an_unauthenticated_post_is_ignored(backend: Backend) {
    let app = spawn_app(backend).await;

    let login = app
        .send(
            app.request(Method::POST, "/auth/token/", None)
                .header("Idempotency-Key", "")
                .json(&json!({"identifier": "nobody@example.com", "password": "wrong"})),
        )
        .await;

    assert_eq!(login.status, 400, "{}", login.text);
    assert!(login.body["non_field_errors"].is_array(), "{}", login.text);
}

macro_rules! on_both {
    ($($scenario:ident),+ $(,)?) => {
        $(
            mod $scenario {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    super::$scenario(orgs_tests::Backend::Sqlite).await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    super::$scenario(orgs_tests::Backend::Postgres).await;
                }
            }
        )+
    };
}

on_both!(
    a_retried_invitation_sends_one_email_and_makes_one_invitation,
    a_retried_child_creation_makes_one_child_with_the_same_location,
    the_same_key_for_a_different_request_is_422,
    ten_parallel_identical_requests_run_once,
    a_server_error_is_not_kept_and_a_retry_runs_again,
    malformed_keys_are_400_and_run_nothing,
    a_key_expires_after_the_ttl_and_the_request_runs_again,
    a_replayed_secret_is_null_and_never_kept,
    keys_of_one_user_do_not_replay_for_another,
    the_trailing_slash_and_the_order_of_json_keys_do_not_matter,
    a_refused_request_is_kept_like_any_answer,
    a_key_on_an_unauthenticated_post_is_ignored,
);

/// Two `orgs serve` processes on one PostgreSQL database honour the same keys.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_on_one_postgres_run_a_raced_request_once() {
    let app = spawn_app(Backend::Postgres).await;
    let beside = app.spawn_beside(SpawnOptions::default()).await;
    let body = child_body(&app, "Raced across processes");

    let replies = race(&[&app, &beside], 10, "across", &body).await;
    let replay_elsewhere = post_with_key(
        &beside,
        "/organizations/",
        &beside.admin_key,
        "across",
        &body,
    )
    .await;

    check_race(&replies);
    assert!(replayed(&replay_elsewhere));
    assert_eq!(children_named(&app, "Raced across processes").await, 1);
    assert!(id_of(&replay_elsewhere.body["url"]) > 0);
    drop(beside);
}
