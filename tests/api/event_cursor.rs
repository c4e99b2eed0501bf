//! Keyset pages of the audit log (`?cursor=`, docs/audit.md) and the pruning of settled
//! webhook deliveries (`ORGS_WEBHOOK_RETENTION`, docs/webhooks.md), black-box.

use std::time::{Duration as StdDuration, Instant};

use app::webhooks::WebhookPolicy;
use domain::Duration;
use domain::webhook::RetrySchedule;
use orgs_tests::receiver::Receiver;
use orgs_tests::{Backend, SpawnOptions, TestApp, on_both_backends, spawn_app_with_options};
use reqwest::Method;
use serde_json::{Value, json};

on_both_backends!(
    cursor_pages_walk_the_whole_log_newest_first_without_a_count,
    cursor_pages_keep_the_filters_and_the_page_size,
    a_bad_cursor_or_a_cursor_with_a_page_is_refused_on_cursor_in_both_languages,
    thirty_parallel_hostile_cursors_answer_200_or_400,
    cursor_pages_are_for_administrators_only,
    the_cursor_is_documented,
);

fn events_path(organization: i64) -> String {
    format!("/organizations/{organization}/events/")
}

fn ids_of(body: &Value) -> Vec<i64> {
    body["results"]
        .as_array()
        .map(|events| {
            events
                .iter()
                .filter_map(|event| event["id"].as_i64())
                .collect()
        })
        .unwrap_or_default()
}

/// Follows `next` links from `first` until the last page; every page's ids, in order.
async fn walk(app: &TestApp, first: &str) -> Vec<Vec<i64>> {
    let mut pages = Vec::new();
    let mut link = Some(first.to_owned());
    while let Some(path) = link {
        let reply = app.get(&path, &app.admin_key).await;
        assert_eq!(reply.status, 200, "{path}: {}", reply.text);
        for absent in ["count", "page_count", "previous"] {
            assert!(reply.body.get(absent).is_none(), "{path}: {}", reply.text);
        }
        pages.push(ids_of(&reply.body));
        link = reply.body["next"].as_str().map(str::to_owned);
        assert!(pages.len() < 100, "no end: {pages:?}");
    }
    pages
}

async fn cursor_pages_walk_the_whole_log_newest_first_without_a_count(app: TestApp) {
    for n in 0..7 {
        app.create_child(&format!("Child {n}")).await;
    }
    let listed = app
        .get(
            &format!("{}?page_size=1000", events_path(app.root_id)),
            &app.admin_key,
        )
        .await;
    let all = ids_of(&listed.body);
    assert_eq!(all.len(), 9, "{}", listed.text);

    let pages = walk(
        &app,
        &format!("{}?cursor=&page_size=4", events_path(app.root_id)),
    )
    .await;
    let bare = walk(&app, &format!("{}?cursor", events_path(app.root_id))).await;
    let below_all = app
        .get(
            &format!("{}?cursor=0", events_path(app.root_id)),
            &app.admin_key,
        )
        .await;
    let below_third = app
        .get(
            &format!("{}?cursor={}", events_path(app.root_id), all[2]),
            &app.admin_key,
        )
        .await;

    assert_eq!(
        pages.iter().map(Vec::len).collect::<Vec<_>>(),
        [4, 4, 1],
        "{pages:?}"
    );
    assert_eq!(pages.concat(), all, "the same events, newest first");
    assert_eq!(bare.concat(), all);
    assert_eq!(bare.len(), 1);
    assert_eq!(below_all.status, 200);
    assert_eq!(below_all.body, json!({"next": null, "results": []}));
    assert_eq!(ids_of(&below_third.body), all[3..]);
}

async fn cursor_pages_keep_the_filters_and_the_page_size(app: TestApp) {
    for n in 0..5 {
        app.create_child(&format!("Child {n}")).await;
        app.patch(
            &format!("/organizations/{}/", app.root_id),
            &app.admin_key,
            &json!({"name": format!("Renamed {n}")}),
        )
        .await;
    }
    let first = app
        .get(
            &format!(
                "{}?cursor=&page_size=2&action=organization.*&since=2000-01-01",
                events_path(app.root_id)
            ),
            &app.admin_key,
        )
        .await;
    let next = first.body["next"].as_str().expect("a next page").to_owned();

    let pages = walk(&app, &next).await;
    let updated = walk(
        &app,
        &format!(
            "{}?cursor=&action=organization.updated",
            events_path(app.root_id)
        ),
    )
    .await;

    assert_eq!(first.status, 200, "{}", first.text);
    assert!(
        next.starts_with(&format!(
            "{}?action=organization.*&cursor=",
            events_path(app.root_id)
        )) && next.ends_with("&page_size=2&since=2000-01-01"),
        "{next}"
    );
    let mut seen = ids_of(&first.body);
    seen.extend(pages.concat());
    assert_eq!(
        seen.len(),
        11,
        "the root's creation, 5 children, 5 renames: {seen:?}"
    );
    assert!(seen.windows(2).all(|pair| pair[0] > pair[1]), "{seen:?}");
    assert!(pages.iter().all(|page| page.len() <= 2));
    assert_eq!(updated.concat().len(), 5);
}

async fn a_bad_cursor_or_a_cursor_with_a_page_is_refused_on_cursor_in_both_languages(app: TestApp) {
    let path = events_path(app.root_id);
    for bad in [
        "-1",
        "abc",
        "1.5",
        "%2B1",
        "%00",
        "9223372036854775808",
        "%201",
    ] {
        let reply = app
            .get(&format!("{path}?cursor={bad}"), &app.admin_key)
            .await;
        assert_eq!(reply.status, 400, "{bad}: {}", reply.text);
        assert_eq!(reply.body, json!({"cursor": ["Invalid cursor."]}), "{bad}");
    }
    let long = app
        .get(
            &format!("{path}?cursor={}", "9".repeat(3000)),
            &app.admin_key,
        )
        .await;
    let french = app
        .send(
            app.request(
                Method::GET,
                &format!("{path}?cursor=x"),
                Some(&app.admin_key),
            )
            .header("Accept-Language", "fr"),
        )
        .await;
    let both = app
        .get(&format!("{path}?cursor=&page=1"), &app.admin_key)
        .await;
    let together = app
        .get(&format!("{path}?cursor=x&since=soon"), &app.admin_key)
        .await;

    assert_eq!(long.status, 400);
    assert_eq!(long.body, json!({"cursor": ["Invalid cursor."]}));
    assert_eq!(french.body, json!({"cursor": ["Curseur invalide."]}));
    assert_eq!(both.status, 400);
    assert_eq!(
        both.body,
        json!({"cursor": ["Use either cursor or page, not both."]})
    );
    assert_eq!(together.status, 400);
    assert!(together.body["cursor"].is_array() && together.body["since"].is_array());
}

async fn thirty_parallel_hostile_cursors_answer_200_or_400(app: TestApp) {
    let path = events_path(app.root_id);
    let paths: Vec<String> = (0..30)
        .map(|n| match n % 5 {
            0 => format!("{path}?cursor=&page_size=1000"),
            1 => format!("{path}?cursor=%00"),
            2 => format!("{path}?cursor={}", "9".repeat(3000)),
            3 => format!("{path}?cursor=9223372036854775807&action=member.*"),
            _ => format!("{path}?cursor=1&page=99999999999999999999"),
        })
        .collect();

    let replies =
        futures::future::join_all(paths.iter().map(|path| app.get(path, &app.admin_key))).await;

    for (n, (path, reply)) in paths.iter().zip(&replies).enumerate() {
        let expected = if n % 5 == 0 || n % 5 == 3 { 200 } else { 400 };
        assert_eq!(reply.status, expected, "{path}: {}", reply.text);
    }
}

async fn cursor_pages_are_for_administrators_only(app: TestApp) {
    let child = app.create_child("Guarded").await;
    let manager = app.add_user(child, "manager@example.com", "managers").await;

    let forbidden = app
        .get(&format!("{}?cursor=", events_path(child)), &manager)
        .await;
    let invisible = app
        .get(&format!("{}?cursor=", events_path(999_999)), &app.admin_key)
        .await;

    assert_eq!(forbidden.status, 403, "{}", forbidden.text);
    assert_eq!(invisible.status, 404, "{}", invisible.text);
}

async fn the_cursor_is_documented(app: TestApp) {
    let document = app.get("/openapi.json", &app.admin_key).await;

    let operation = &document.body["paths"]["/organizations/{id}/events/"]["get"];
    let cursor = operation["parameters"]
        .as_array()
        .expect("parameters")
        .iter()
        .find(|parameter| parameter["name"] == "cursor")
        .cloned()
        .unwrap_or(Value::Null);
    assert_eq!(cursor["in"], "query", "{}", document.text);
    assert_eq!(cursor["schema"]["pattern"], "^[0-9]{0,18}$");
    let answer = &operation["responses"]["200"]["content"]["application/json"]["schema"];
    let name = answer["$ref"]
        .as_str()
        .and_then(|reference| reference.rsplit('/').next())
        .unwrap_or_default();
    let envelope = &document.body["components"]["schemas"][name];
    let kinds = envelope["anyOf"].as_array().cloned().unwrap_or_default();
    assert_eq!(kinds.len(), 2, "{answer} {envelope}");
    assert!(kinds[0]["properties"]["count"].is_object(), "{envelope}");
    assert!(kinds[1]["properties"].get("count").is_none(), "{envelope}");
    assert!(kinds[1]["properties"]["next"].is_object(), "{envelope}");
}

/// Options with private addresses allowed, these waits between attempts, and this
/// retention of settled deliveries.
fn hook_options(waits: &[i64], retention: Duration) -> SpawnOptions {
    SpawnOptions {
        webhook_allow_private: true,
        webhooks: WebhookPolicy {
            idle_poll: StdDuration::from_millis(20),
            schedule: RetrySchedule::new(waits.iter().map(|s| Duration::seconds(*s)).collect()),
            retention,
            ..WebhookPolicy::default()
        },
        ..SpawnOptions::default()
    }
}

async fn hook(app: &TestApp, endpoint: &str) -> String {
    let reply = app
        .post(
            &format!("/organizations/{}/webhooks/", app.root_id),
            Some(&app.admin_key),
            &json!({"endpoint": endpoint, "events": ["organization.updated"]}),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    reply.body["url"].as_str().expect("url").to_owned()
}

async fn statuses(app: &TestApp, hook: &str) -> Vec<String> {
    let reply = app
        .get(&format!("{hook}deliveries/?page_size=1000"), &app.admin_key)
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    reply.body["results"]
        .as_array()
        .map(|deliveries| {
            deliveries
                .iter()
                .filter_map(|delivery| delivery["status"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// Waits until `hook`'s deliveries are `expected`.
async fn until_statuses(app: &TestApp, hook: &str, expected: &[&str]) {
    let deadline = Instant::now() + StdDuration::from_secs(30);
    loop {
        let now = statuses(app, hook).await;
        if now == expected {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{hook}: {now:?}, not {expected:?}"
        );
        tokio::time::sleep(StdDuration::from_millis(100)).await;
    }
}

/// The upkeep at start deletes the delivered and failed deliveries settled before the
/// retention; pending ones stay, however old; with the default retention nothing goes.
async fn settled_deliveries_past_the_retention_are_pruned_and_pending_ones_kept(backend: Backend) {
    // One attempt, no retry, for the delivered and failed hooks; the pending one waits
    // an hour after its first failure.
    let app = spawn_app_with_options(backend, hook_options(&[], Duration::days(30))).await;
    let ok = Receiver::start(204).await;
    let broken = Receiver::start(500).await;
    let down = Receiver::start(204).await;
    let down_address = down.address;
    drop(down);
    let delivered = hook(&app, &ok.url("/")).await;
    let failed = hook(&app, &broken.url("/")).await;
    app.patch(
        &format!("/organizations/{}/", app.root_id),
        &app.admin_key,
        &json!({"name": "Before the retry hook"}),
    )
    .await;
    until_statuses(&app, &delivered, &["delivered"]).await;
    until_statuses(&app, &failed, &["failed"]).await;
    let app = app.restart(hook_options(&[3600], Duration::days(30))).await;
    let pending = hook(&app, &format!("http://{down_address}/")).await;
    app.patch(
        &format!("/organizations/{}/", app.root_id),
        &app.admin_key,
        &json!({"name": "Renamed"}),
    )
    .await;
    until_statuses(&app, &delivered, &["delivered", "delivered"]).await;
    let deadline = Instant::now() + StdDuration::from_secs(30);
    while statuses(&app, &failed).await != ["pending", "failed"] {
        assert!(
            Instant::now() < deadline,
            "{:?}",
            statuses(&app, &failed).await
        );
        tokio::time::sleep(StdDuration::from_millis(100)).await;
    }
    // The broken hook retries in an hour too now: its second delivery stays pending.
    until_statuses(&app, &pending, &["pending"]).await;
    let app = app.restart(hook_options(&[3600], Duration::days(30))).await;
    // The upkeep runs at start, beside the first requests: give it time to run.
    tokio::time::sleep(StdDuration::from_millis(500)).await;
    let kept = statuses(&app, &delivered).await;

    let app = app
        .restart(hook_options(&[3600], Duration::milliseconds(1)))
        .await;

    assert_eq!(kept, ["delivered", "delivered"]);
    until_statuses(&app, &delivered, &[]).await;
    until_statuses(&app, &failed, &["pending"]).await;
    assert_eq!(statuses(&app, &pending).await, ["pending"]);
    assert_eq!(app.webhook_backlog().await, 2);
}

mod retention {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        super::settled_deliveries_past_the_retention_are_pruned_and_pending_ones_kept(
            super::Backend::Sqlite,
        )
        .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        super::settled_deliveries_past_the_retention_are_pruned_and_pending_ones_kept(
            super::Backend::Postgres,
        )
        .await;
    }
}
