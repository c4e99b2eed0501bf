//! What the service exposes cannot be grown or cached by a client (CONTRACT §9):
//! `/metrics` labels come from fixed sets, and responses that carry a secret have
//! `Cache-Control: no-store`.

use orgs_tests::{TestApp, on_both_backends};
use reqwest::Method;
use serde_json::json;

on_both_backends!(
    made_up_methods_and_unknown_paths_make_no_new_metric_series,
    responses_carrying_a_secret_are_not_stored_by_caches,
    an_over_long_or_odd_request_id_is_replaced_by_a_fresh_one,
);

/// The `http_requests_total` series of a `/metrics` page, sorted (the page's order is
/// not part of the format).
async fn request_series(app: &TestApp) -> Vec<String> {
    let reply = app.send(app.request(Method::GET, "/metrics", None)).await;
    assert_eq!(reply.status, 200);
    let mut series: Vec<String> = reply
        .text
        .lines()
        .filter(|line| line.starts_with("http_requests_total{"))
        .map(|line| {
            line.rsplit_once(' ')
                .map_or(line, |(series, _)| series)
                .to_owned()
        })
        .collect();
    series.sort();
    series
}

fn made_up(index: usize) -> Method {
    Method::from_bytes(format!("MADEUP{index}").as_bytes()).expect("a method token")
}

async fn made_up_methods_and_unknown_paths_make_no_new_metric_series(app: TestApp) {
    let key = app.admin_key.clone();
    // One request of each kind first, so that the shared `other` series exist.
    app.send(app.request(made_up(0), "/organizations/", Some(&key)))
        .await;
    app.send(app.request(made_up(0), "/nowhere-0/", Some(&key)))
        .await;
    app.get("/nowhere-0/", &key).await;
    // A `/metrics` request counts once it is answered: read the page twice.
    request_series(&app).await;
    let before = request_series(&app).await;

    for index in 1..=50 {
        app.send(app.request(made_up(index), "/organizations/", Some(&key)))
            .await;
        app.send(app.request(made_up(index), &format!("/nowhere-{index}/"), Some(&key)))
            .await;
        app.get(&format!("/random-{index}/path/{}", index * 7919), &key)
            .await;
    }
    let after = request_series(&app).await;

    assert_eq!(after, before, "no new series");
    let page = after.join("\n");
    assert!(!page.contains("MADEUP"), "{page}");
    assert!(
        !page.contains("nowhere") && !page.contains("random-"),
        "{page}"
    );
    assert!(
        page.contains(r#"method="other",route="/organizations/",status="405""#),
        "{page}"
    );
    assert!(
        page.contains(r#"method="other",route="other",status="404""#),
        "{page}"
    );
    assert!(
        page.contains(r#"method="GET",route="other",status="404""#),
        "{page}"
    );
}

async fn responses_carrying_a_secret_are_not_stored_by_caches(app: TestApp) {
    let identifier = "cached@example.com";
    let invited = app
        .post(
            &format!("/organizations/{}/invite_user/", app.root_id),
            Some(&app.admin_key),
            &json!({"identifier": identifier}),
        )
        .await;
    assert_eq!(invited.status, 201, "{}", invited.text);
    let token = app.token_sent_to(identifier).await;
    let password = "correct horse battery";

    let accepted = app
        .post(
            "/invitations/accept/",
            None,
            &json!({"token": token, "password": password, "first_name": "Cache", "last_name": "Less"}),
        )
        .await;
    let login = app
        .post(
            "/auth/token/",
            None,
            &json!({"identifier": identifier, "password": password}),
        )
        .await;
    let session = login.body["token"].as_str().unwrap_or_default().to_owned();
    let regenerated = app
        .send(app.request(Method::POST, "/me/regen_secret/", Some(&session)))
        .await;
    let refused_login = app
        .post(
            "/auth/token/",
            None,
            &json!({"identifier": identifier, "password": "wrong password"}),
        )
        .await;
    let ordinary = app.get("/organizations/", &app.admin_key).await;
    let me = app.get("/me/", &app.admin_key).await;

    for (what, reply, status) in [
        ("accept", &accepted, 201),
        ("login", &login, 201),
        ("regen_secret", &regenerated, 200),
        ("refused login", &refused_login, 400),
    ] {
        assert_eq!(reply.status, status, "{what}: {}", reply.text);
        assert_eq!(reply.header("cache-control"), Some("no-store"), "{what}");
    }
    assert!(accepted.body["api_key"].is_string());
    assert!(regenerated.body["api_key"].is_string());
    assert_eq!(ordinary.status, 200);
    assert_eq!(ordinary.header("cache-control"), None);
    assert_eq!(me.header("cache-control"), None);
}

/// A caller's `X-Request-Id` is echoed and written on every log line of its request: one
/// that is over-long or holds other than visible ASCII is replaced, a usable one is kept.
async fn an_over_long_or_odd_request_id_is_replaced_by_a_fresh_one(app: TestApp) {
    let long = "r".repeat(3000);
    let kept = "caller-chosen-0123456789";

    for (given, expect_kept) in [(long.as_str(), false), ("two words", false), (kept, true)] {
        let reply = app
            .send(
                app.request(Method::GET, "/me/", Some(&app.admin_key))
                    .header("x-request-id", given),
            )
            .await;

        assert_eq!(reply.status, 200, "{}", reply.text);
        let answered = reply.header("x-request-id").expect("a request id");
        if expect_kept {
            assert_eq!(answered, given);
        } else {
            assert_ne!(answered, given);
            assert!(answered.len() <= 128, "{answered}");
        }
    }
}
