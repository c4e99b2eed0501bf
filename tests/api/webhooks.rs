//! Webhooks (CONTRACT §14), black-box on both databases, with a real receiver in the
//! test process on 127.0.0.1 (so these apps allow private addresses, as
//! `ORGS_WEBHOOK_ALLOW_PRIVATE=true` does, unless a test is about refusing them):
//! management and rights, signed deliveries checked by the reference verifier, retries
//! with the same id, outages across a restart, two instances, rotation, private
//! addresses, redirects and the 10-second limit.

use std::collections::HashSet;
use std::time::{Duration as StdDuration, Instant};

use app::webhooks::WebhookPolicy;
use domain::Duration;
use domain::webhook::RetrySchedule;
use orgs_tests::receiver::{Received, Receiver, verify_with_reference};
use orgs_tests::{Backend, SpawnOptions, TestApp, id_of, spawn_app_with_options};
use serde_json::{Value, json};

fn hooks_path(organization: i64) -> String {
    format!("/organizations/{organization}/webhooks/")
}

/// Options with private addresses allowed and these waits between attempts.
fn options(allow_private: bool, waits: &[i64]) -> SpawnOptions {
    SpawnOptions {
        webhook_allow_private: allow_private,
        webhooks: WebhookPolicy {
            idle_poll: StdDuration::from_millis(20),
            schedule: RetrySchedule::new(waits.iter().map(|s| Duration::seconds(*s)).collect()),
            ..WebhookPolicy::default()
        },
        ..SpawnOptions::default()
    }
}

/// Creates a webhook on the root; its representation with the secret.
async fn create_hook(app: &TestApp, endpoint: &str, events: Value) -> Value {
    let reply = app
        .post(
            &hooks_path(app.root_id),
            Some(&app.admin_key),
            &json!({"endpoint": endpoint, "events": events, "description": "test"}),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    reply.body
}

async fn rename_root(app: &TestApp, name: &str) {
    let reply = app
        .patch(
            &format!("/organizations/{}/", app.root_id),
            &app.admin_key,
            &json!({"name": name}),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
}

/// The deliveries of a webhook, newest first.
async fn deliveries(app: &TestApp, hook: &Value) -> Vec<Value> {
    let url = hook["url"].as_str().expect("url");
    let reply = app
        .get(&format!("{url}deliveries/?page_size=1000"), &app.admin_key)
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    reply.body["results"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// Waits until the newest delivery of `hook` has `status`; returns it.
async fn settled(app: &TestApp, hook: &Value, status: &str, within: StdDuration) -> Value {
    let deadline = Instant::now() + within;
    loop {
        let newest = deliveries(app, hook).await.first().cloned();
        if let Some(delivery) = &newest {
            if delivery["status"] == status {
                return delivery.clone();
            }
        }
        assert!(
            Instant::now() < deadline,
            "no {status} delivery in time: {newest:?}"
        );
        tokio::time::sleep(StdDuration::from_millis(100)).await;
    }
}

/// The event of the audit log with this id.
async fn event(app: &TestApp, id: i64) -> Value {
    let reply = app
        .get(
            &format!("/organizations/{}/events/?page_size=1000", app.root_id),
            &app.admin_key,
        )
        .await;
    reply.body["results"]
        .as_array()
        .and_then(|events| events.iter().find(|event| event["id"] == id).cloned())
        .unwrap_or_else(|| panic!("no event {id}"))
}

fn ids(received: &[Received]) -> Vec<String> {
    received
        .iter()
        .map(|request| request.header("webhook-id").unwrap_or_default().to_owned())
        .collect()
}

/// Runs a scenario taking a backend on both databases.
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
    administrators_manage_webhooks_and_every_change_is_audited,
    bad_endpoints_events_and_an_eleventh_webhook_are_refused_in_both_languages,
    every_matching_event_arrives_once_signed_as_the_reference_verifier_accepts,
    a_failed_attempt_is_retried_with_the_same_webhook_id_then_fails_and_can_be_retried,
    rotation_changes_the_signing_key_at_once,
    a_private_destination_is_refused_at_delivery_without_the_flag,
    a_redirect_is_not_followed,
    a_receiver_that_takes_15_seconds_fails_at_10,
    a_receiver_down_during_100_events_gets_them_all_after_a_restart,
    thirty_parallel_creations_make_ten_webhooks_and_no_server_error,
);

async fn thirty_parallel_creations_make_ten_webhooks_and_no_server_error(backend: Backend) {
    let app = spawn_app_with_options(backend, options(false, &[1])).await;
    let path = hooks_path(app.root_id);
    let body = json!({"endpoint": "https://hooks.example.com/", "events": ["*"]});

    let replies =
        futures::future::join_all((0..30).map(|_| app.post(&path, Some(&app.admin_key), &body)))
            .await;

    let mut statuses: Vec<u16> = replies.iter().map(|reply| reply.status).collect();
    statuses.sort_unstable();
    assert_eq!(
        statuses.iter().filter(|status| **status == 201).count(),
        10,
        "{statuses:?}"
    );
    assert!(
        statuses
            .iter()
            .all(|status| [201, 400, 429].contains(status)),
        "{statuses:?}"
    );
    let listed = app.get(&path, &app.admin_key).await;
    assert_eq!(listed.body["count"], 10);
}

async fn administrators_manage_webhooks_and_every_change_is_audited(backend: Backend) {
    let app = spawn_app_with_options(backend, options(false, &[1])).await;
    let reply = app
        .post(
            &hooks_path(app.root_id),
            Some(&app.admin_key),
            &json!({"endpoint": "https://hooks.example.com/orgs"}),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    assert_eq!(reply.header("cache-control"), Some("no-store"));
    let hook = reply.body;
    assert_eq!(hook["events"], json!(["*"]));
    assert_eq!(hook["active"], true);
    assert_eq!(hook["description"], "");
    assert_eq!(hook["endpoint"], "https://hooks.example.com/orgs");
    let secret = hook["secret"].as_str().expect("secret").to_owned();
    let key = secret.strip_prefix("whsec_").expect("whsec_ prefix");
    assert!(key.len() >= 32, "at least 24 bytes in base64: {secret}");
    let url = hook["url"].as_str().expect("url").to_owned();
    assert_eq!(id_of(&hook["url"]), 1);

    let shown = app.get(&url, &app.admin_key).await;
    assert_eq!(shown.status, 200);
    assert!(shown.body.get("secret").is_none(), "{}", shown.text);
    let listed = app.get(&hooks_path(app.root_id), &app.admin_key).await;
    assert_eq!(listed.body["count"], 1);
    assert!(listed.body["results"][0].get("secret").is_none());
    let patched = app
        .patch(
            &url,
            &app.admin_key,
            &json!({"active": false, "events": ["member.*", "organization.updated"]}),
        )
        .await;
    assert_eq!(patched.status, 200, "{}", patched.text);
    assert_eq!(patched.body["active"], false);
    assert_eq!(
        patched.body["events"],
        json!(["member.*", "organization.updated"])
    );
    let rotated = app
        .post(
            &format!("{url}rotate_secret/"),
            Some(&app.admin_key),
            &json!({}),
        )
        .await;
    assert_eq!(rotated.status, 200, "{}", rotated.text);
    assert_eq!(rotated.header("cache-control"), Some("no-store"));
    assert_ne!(rotated.body["secret"], secret);

    let manager = app
        .add_user(app.root_id, "manager@example.com", "managers")
        .await;
    let refused = app
        .post(
            &hooks_path(app.root_id),
            Some(&manager),
            &json!({"endpoint": "https://hooks.example.com/"}),
        )
        .await;
    assert_eq!(refused.status, 403);
    assert_eq!(app.get(&url, &manager).await.status, 403);
    assert_eq!(
        app.get("/organizations/999/webhooks/", &app.admin_key)
            .await
            .status,
        404
    );

    assert_eq!(app.delete(&url, &app.admin_key).await.status, 204);
    assert_eq!(app.get(&url, &app.admin_key).await.status, 404);
    let events = app
        .get(
            &format!("/organizations/{}/events/?action=webhook.*", app.root_id),
            &app.admin_key,
        )
        .await;
    let actions: Vec<&str> = events.body["results"]
        .as_array()
        .expect("events")
        .iter()
        .map(|event| {
            assert_eq!(event["target"], url.as_str());
            event["action"].as_str().expect("action")
        })
        .collect();
    assert_eq!(
        actions,
        [
            "webhook.deleted",
            "webhook.secret_rotated",
            "webhook.updated",
            "webhook.created"
        ]
    );
    assert!(!events.text.contains("whsec_"), "{}", events.text);
}

async fn bad_endpoints_events_and_an_eleventh_webhook_are_refused_in_both_languages(
    backend: Backend,
) {
    let app = spawn_app_with_options(backend, options(false, &[1])).await;
    for endpoint in [
        "http://127.0.0.1:8080/",
        "http://localhost/hook",
        "http://[::1]/",
        "http://10.1.2.3/",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::ffff:127.0.0.1]/",
        "http://0.0.0.0/",
    ] {
        let reply = app
            .post(
                &hooks_path(app.root_id),
                Some(&app.admin_key),
                &json!({"endpoint": endpoint}),
            )
            .await;
        assert_eq!(reply.status, 400, "{endpoint}");
        assert_eq!(
            reply.body,
            json!({"endpoint": ["This address is not allowed."]}),
            "{endpoint}"
        );
    }
    let french = app
        .send(
            app.request(
                reqwest::Method::POST,
                &hooks_path(app.root_id),
                Some(&app.admin_key),
            )
            .header("accept-language", "fr")
            .json(&json!({"endpoint": "http://localhost/", "events": ["member.exploded"]})),
        )
        .await;
    assert_eq!(french.status, 400);
    assert_eq!(
        french.body["endpoint"],
        json!(["Cette adresse n'est pas autorisée."])
    );
    assert!(french.body["events"].is_array(), "{}", french.text);
    for body in [
        json!({"endpoint": "ftp://hooks.example.com/"}),
        json!({"endpoint": format!("https://example.com/{}", "a".repeat(3000))}),
        json!({"endpoint": "https://example.com/\u{0}"}),
        json!({"endpoint": "https://example.com/", "events": ["nothing.*"]}),
        json!({"endpoint": "https://example.com/", "events": "member.*"}),
        json!({"endpoint": "https://example.com/", "events": []}),
        json!({"endpoint": "https://example.com/", "active": "maybe"}),
        json!({"events": ["*"]}),
    ] {
        let reply = app
            .post(&hooks_path(app.root_id), Some(&app.admin_key), &body)
            .await;
        assert_eq!(reply.status, 400, "{body}: {}", reply.text);
    }
    for n in 0..10 {
        create_hook(
            &app,
            &format!("https://hooks.example.com/{n}"),
            json!(["*"]),
        )
        .await;
    }
    let eleventh = app
        .post(
            &hooks_path(app.root_id),
            Some(&app.admin_key),
            &json!({"endpoint": "https://hooks.example.com/11"}),
        )
        .await;
    assert_eq!(eleventh.status, 400);
    assert_eq!(
        eleventh.body,
        json!({"non_field_errors": ["An organization cannot have more than 10 webhooks."]})
    );
}

async fn every_matching_event_arrives_once_signed_as_the_reference_verifier_accepts(
    backend: Backend,
) {
    let app = spawn_app_with_options(backend, options(true, &[1])).await;
    let receiver = Receiver::start(204).await;
    let hook = create_hook(&app, &receiver.url("/hook"), json!(["organization.*"])).await;
    let secret = hook["secret"].as_str().expect("secret").to_owned();
    // Its own `webhook.created` does not match, so that it gets nothing at all.
    let paused = create_hook(&app, &receiver.url("/paused"), json!(["organization.*"])).await;
    let paused_url = paused["url"].as_str().expect("url");
    let deactivated = app
        .patch(paused_url, &app.admin_key, &json!({"active": false}))
        .await;
    assert_eq!(deactivated.status, 200);
    let started = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| i64::try_from(elapsed.as_secs()).unwrap_or(0));

    let child = app.create_child("Hooked child").await;
    rename_root(&app, "Renamed root").await;
    app.add_user(app.root_id, "member@example.com", "users")
        .await;

    receiver.wait_for(2, StdDuration::from_secs(20)).await;
    tokio::time::sleep(StdDuration::from_millis(1500)).await;
    let received = receiver
        .received()
        .into_iter()
        .filter(|r| r.path == "/hook")
        .collect::<Vec<_>>();
    assert_eq!(received.len(), 2, "{received:?}");
    assert!(
        receiver.received().iter().all(|r| r.path == "/hook"),
        "an inactive webhook got a delivery"
    );
    let types: HashSet<String> = received
        .iter()
        .map(|request| {
            request.json()["type"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect();
    assert_eq!(
        types,
        HashSet::from([
            "organization.created".to_owned(),
            "organization.updated".to_owned()
        ])
    );
    for request in &received {
        verify_with_reference(&secret, request).expect("the reference verifier accepts it");
        assert_eq!(request.header("content-type"), Some("application/json"));
        let body = request.json();
        let data = &body["data"];
        let id = data["id"].as_i64().expect("the event id");
        assert_eq!(
            request.header("webhook-id"),
            Some(format!("evt_{id}").as_str())
        );
        assert_eq!(
            data,
            &event(&app, id).await,
            "data is the event as in /events/"
        );
        assert_eq!(body["timestamp"], data["created_at"]);
        let sent: i64 = request
            .header("webhook-timestamp")
            .and_then(|text| text.parse().ok())
            .expect("webhook-timestamp");
        assert!((started - 5..=started + 60).contains(&sent), "{sent}");
        let mut tampered = request.clone();
        tampered.body = tampered.body.replace("organization", "organizatioN");
        assert!(verify_with_reference(&secret, &tampered).is_err());
    }
    let created = received
        .iter()
        .find(|request| request.json()["type"] == "organization.created")
        .expect("organization.created");
    assert_eq!(
        created.json()["data"]["organization"],
        format!("/organizations/{child}/")
    );
    let delivered = settled(&app, &hook, "delivered", StdDuration::from_secs(10)).await;
    assert_eq!(delivered["attempts"], 1);
    assert_eq!(delivered["last_status_code"], 204);
    assert_eq!(delivered["last_error"], Value::Null);
    assert_eq!(delivered["next_attempt_at"], Value::Null);
    assert_eq!(delivered["type"], "organization.updated");
    assert!(deliveries(&app, &paused).await.is_empty());
}

async fn a_failed_attempt_is_retried_with_the_same_webhook_id_then_fails_and_can_be_retried(
    backend: Backend,
) {
    let app = spawn_app_with_options(backend, options(true, &[1])).await;
    let receiver = Receiver::start(200).await;
    receiver.answer_first(&[500]);
    let hook = create_hook(&app, &receiver.url("/"), json!(["organization.updated"])).await;

    rename_root(&app, "Retried").await;

    let received = receiver.wait_for(2, StdDuration::from_secs(20)).await;
    assert_eq!(received.len(), 2);
    let sent = ids(&received);
    assert_eq!(sent[0], sent[1], "the same webhook-id on the retry");
    let delivered = settled(&app, &hook, "delivered", StdDuration::from_secs(10)).await;
    assert_eq!(delivered["attempts"], 2);
    assert_eq!(delivered["last_status_code"], 200);

    let failing = Receiver::start(503).await;
    let broken = create_hook(&app, &failing.url("/"), json!(["organization.updated"])).await;
    rename_root(&app, "Failing").await;
    let failed = settled(&app, &broken, "failed", StdDuration::from_secs(20)).await;
    assert_eq!(failed["attempts"], 2, "one more attempt than waits");
    assert_eq!(failed["last_status_code"], 503);
    assert_eq!(failing.received().len(), 2);
    let retry = format!("{}retry/", failed["url"].as_str().expect("url"));
    let queued = app.post(&retry, Some(&app.admin_key), &json!({})).await;
    assert_eq!(queued.status, 202, "{}", queued.text);
    let received = failing.wait_for(4, StdDuration::from_secs(20)).await;
    assert_eq!(received.len(), 4, "the schedule starts again");
    let failed = settled(&app, &broken, "failed", StdDuration::from_secs(20)).await;
    assert_eq!(failed["attempts"], 2);
    let unknown = app
        .post(
            &format!(
                "{}deliveries/999999/retry/",
                broken["url"].as_str().expect("url")
            ),
            Some(&app.admin_key),
            &json!({}),
        )
        .await;
    assert_eq!(unknown.status, 404);
}

async fn rotation_changes_the_signing_key_at_once(backend: Backend) {
    let app = spawn_app_with_options(backend, options(true, &[1])).await;
    let receiver = Receiver::start(200).await;
    let hook = create_hook(&app, &receiver.url("/"), json!(["organization.updated"])).await;
    let old = hook["secret"].as_str().expect("secret").to_owned();
    rename_root(&app, "Before").await;
    let before = receiver.wait_for(1, StdDuration::from_secs(20)).await;
    verify_with_reference(&old, &before[0]).expect("signed with the first secret");

    let rotated = app
        .post(
            &format!("{}rotate_secret/", hook["url"].as_str().expect("url")),
            Some(&app.admin_key),
            &json!({}),
        )
        .await;
    let new = rotated.body["secret"].as_str().expect("secret").to_owned();
    rename_root(&app, "After").await;

    let after = receiver.wait_for(2, StdDuration::from_secs(20)).await;
    assert_eq!(after.len(), 2);
    verify_with_reference(&new, &after[1]).expect("signed with the new secret");
    assert!(
        verify_with_reference(&old, &after[1]).is_err(),
        "the old secret no longer signs"
    );
}

async fn a_private_destination_is_refused_at_delivery_without_the_flag(backend: Backend) {
    let app = spawn_app_with_options(backend, options(true, &[])).await;
    let receiver = Receiver::start(200).await;
    let literal = create_hook(
        &app,
        &receiver.url("/literal"),
        json!(["organization.updated"]),
    )
    .await;
    let named = create_hook(
        &app,
        &format!("http://localhost:{}/named", receiver.address.port()),
        json!(["organization.updated"]),
    )
    .await;
    // The same service, now without `ORGS_WEBHOOK_ALLOW_PRIVATE`: the endpoints stored
    // before are checked again at every delivery, a name after its DNS resolution.
    let app = app.restart(options(false, &[])).await;

    rename_root(&app, "Refused").await;

    let literal = settled(&app, &literal, "failed", StdDuration::from_secs(20)).await;
    let named = settled(&app, &named, "failed", StdDuration::from_secs(20)).await;
    for failed in [&literal, &named] {
        assert_eq!(failed["last_status_code"], Value::Null);
        let error = failed["last_error"].as_str().unwrap_or_default();
        assert!(error.contains("not allowed"), "{error}");
    }
    assert!(
        named["last_error"]
            .as_str()
            .unwrap_or_default()
            .contains("127.0.0.1")
            || named["last_error"]
                .as_str()
                .unwrap_or_default()
                .contains("::1"),
        "{named}"
    );
    assert!(receiver.received().is_empty(), "{:?}", receiver.received());
}

async fn a_redirect_is_not_followed(backend: Backend) {
    let app = spawn_app_with_options(backend, options(true, &[])).await;
    let target = Receiver::start(200).await;
    let redirecting = Receiver::start(302).await;
    redirecting.location(&target.url("/elsewhere"));
    let hook = create_hook(&app, &redirecting.url("/"), json!(["organization.updated"])).await;

    rename_root(&app, "Redirected").await;

    let failed = settled(&app, &hook, "failed", StdDuration::from_secs(20)).await;
    assert_eq!(failed["last_status_code"], 302);
    assert_eq!(failed["attempts"], 1);
    assert_eq!(redirecting.received().len(), 1);
    assert!(target.received().is_empty(), "the redirect was followed");
}

async fn a_receiver_that_takes_15_seconds_fails_at_10(backend: Backend) {
    let app = spawn_app_with_options(backend, options(true, &[])).await;
    let receiver = Receiver::start(200).await;
    receiver.delay(StdDuration::from_secs(15));
    let hook = create_hook(&app, &receiver.url("/"), json!(["organization.updated"])).await;
    let started = Instant::now();

    rename_root(&app, "Slow").await;

    let failed = settled(&app, &hook, "failed", StdDuration::from_secs(14)).await;
    let took = started.elapsed();
    assert!(took >= StdDuration::from_secs(10), "{took:?}");
    assert!(took < StdDuration::from_secs(14), "{took:?}");
    assert_eq!(failed["last_status_code"], Value::Null);
    let error = failed["last_error"].as_str().unwrap_or_default();
    assert!(error.contains("10 s"), "{error}");
}

async fn a_receiver_down_during_100_events_gets_them_all_after_a_restart(backend: Backend) {
    let waits = [1; 60];
    let app = spawn_app_with_options(backend, options(true, &waits)).await;
    let receiver = Receiver::start(200).await;
    let address = receiver.address;
    drop(receiver);
    create_hook(
        &app,
        &format!("http://{address}/"),
        json!(["organization.updated"]),
    )
    .await;

    for n in 0..100 {
        rename_root(&app, &format!("Renamed {n}")).await;
    }
    assert_eq!(app.webhook_backlog().await, 100);
    let app = app.restart(options(true, &waits)).await;
    let receiver = Receiver::start_on(address, 200).await;

    receiver.wait_for(100, StdDuration::from_secs(60)).await;
    tokio::time::sleep(StdDuration::from_secs(1)).await;
    let received = receiver.received();
    let sent = ids(&received);
    let distinct: HashSet<&String> = sent.iter().collect();
    assert_eq!(distinct.len(), 100, "every event once: {sent:?}");
    assert_eq!(sent.len(), 100, "no event twice");
    assert_eq!(app.webhook_backlog().await, 0);
}

/// Two services on one PostgreSQL deliver each event exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_on_one_postgresql_deliver_each_event_once() {
    let app = spawn_app_with_options(Backend::Postgres, options(true, &[1])).await;
    let other = app.spawn_beside(options(true, &[1])).await;
    let receiver = Receiver::start(200).await;
    create_hook(&app, &receiver.url("/"), json!(["organization.updated"])).await;

    for n in 0..50 {
        let reply = if n % 2 == 0 { &app } else { &other }
            .patch(
                &format!("/organizations/{}/", app.root_id),
                &app.admin_key,
                &json!({"name": format!("Twice {n}")}),
            )
            .await;
        assert_eq!(reply.status, 200);
    }

    receiver.wait_for(50, StdDuration::from_secs(30)).await;
    tokio::time::sleep(StdDuration::from_secs(2)).await;
    let sent = ids(&receiver.received());
    let distinct: HashSet<&String> = sent.iter().collect();
    assert_eq!(distinct.len(), 50);
    assert_eq!(sent.len(), 50, "an event was delivered twice");
}
