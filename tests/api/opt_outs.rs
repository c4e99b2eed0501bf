//! Opt-outs: record, list, filters, CSV, notices (CONTRACT §6).

use orgs_tests::{TestApp, on_both_backends};
use serde_json::json;

on_both_backends!(
    recording_twice_creates_then_updates,
    the_list_is_newest_first_and_filters,
    the_csv_export_streams_every_row,
    a_new_opt_out_notifies_the_contact_when_asked,
    opt_outs_survive_archiving,
);

fn path(organization: i64) -> String {
    format!("/organizations/{organization}/opt_outs/")
}

async fn recording_twice_creates_then_updates(app: TestApp) {
    let root = app.root_id;

    let first = app
        .post(
            &path(root),
            Some(&app.admin_key),
            &json!({"address": "gone@Example.com"}),
        )
        .await;
    let second = app
        .post(
            &path(root),
            Some(&app.admin_key),
            &json!({"address": "gone@example.com", "origin": "bounce"}),
        )
        .await;
    let bad = app
        .post(
            &path(root),
            Some(&app.admin_key),
            &json!({"address": "nope", "origin": "fax"}),
        )
        .await;

    assert_eq!(first.status, 201, "{}", first.text);
    assert_eq!(first.body["address"], "gone@example.com");
    assert_eq!(first.body["origin"], "api");
    assert!(first.body["creation_date"].is_string());
    assert_eq!(second.status, 200, "{}", second.text);
    assert_eq!(second.body["origin"], "bounce");
    assert_eq!(bad.status, 400);
    assert!(bad.body["address"].is_array() && bad.body["origin"].is_array());
    let listed = app.get(&path(root), &app.admin_key).await;
    assert_eq!(listed.body["count"], 1);
}

async fn the_list_is_newest_first_and_filters(app: TestApp) {
    let root = app.root_id;
    for (address, origin) in [
        ("a@example.com", "web"),
        ("b@example.com", "bounce"),
        ("c@example.com", "web"),
    ] {
        let reply = app
            .post(
                &path(root),
                Some(&app.admin_key),
                &json!({"address": address, "origin": origin}),
            )
            .await;
        assert_eq!(reply.status, 201);
    }

    let all = app.get(&path(root), &app.admin_key).await;
    let web = app
        .get(&format!("{}?origin=web", path(root)), &app.admin_key)
        .await;
    let one = app
        .get(
            &format!("{}?address=b@example.com", path(root)),
            &app.admin_key,
        )
        .await;
    let paged = app
        .get(
            &format!("{}?page=2&page_size=2", path(root)),
            &app.admin_key,
        )
        .await;

    let addresses: Vec<&str> = all.body["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|row| row["address"].as_str().expect("address"))
        .collect();
    assert_eq!(
        addresses,
        ["c@example.com", "b@example.com", "a@example.com"]
    );
    assert_eq!(web.body["count"], 2);
    assert_eq!(one.body["count"], 1);
    assert_eq!(paged.body["page_count"], 2);
    assert_eq!(paged.body["results"][0]["address"], "a@example.com");
    assert_eq!(paged.body["next"], serde_json::Value::Null);
    assert!(paged.body["previous"].is_string());
}

async fn the_csv_export_streams_every_row(app: TestApp) {
    let root = app.root_id;
    for index in 0..120 {
        let reply = app
            .post(
                &path(root),
                Some(&app.admin_key),
                &json!({"address": format!("user{index}@example.com")}),
            )
            .await;
        assert_eq!(reply.status, 201);
    }

    let by_accept = app
        .send(
            app.request(reqwest::Method::GET, &path(root), Some(&app.admin_key))
                .header("accept", "text/csv"),
        )
        .await;
    let by_format = app
        .get(&format!("{}?format=csv", path(root)), &app.admin_key)
        .await;

    assert_eq!(by_accept.status, 200);
    assert!(
        by_accept
            .header("content-type")
            .is_some_and(|value| value.starts_with("text/csv"))
    );
    let lines: Vec<&str> = by_accept.text.lines().collect();
    assert_eq!(lines[0], "address,origin,creation_date");
    assert_eq!(lines.len(), 121);
    assert!(lines[1].starts_with("user119@example.com,api,"));
    assert_eq!(by_format.text, by_accept.text);
}

async fn a_new_opt_out_notifies_the_contact_when_asked(app: TestApp) {
    let child = app.create_child("Child").await;
    let patched = app
        .patch(
            &format!("/organizations/{child}/"),
            &app.admin_key,
            &json!({"settings": {"notify_optouts": true}}),
        )
        .await;
    assert_eq!(patched.status, 200);

    let first = app
        .post(
            &path(child),
            Some(&app.admin_key),
            &json!({"address": "gone@example.com"}),
        )
        .await;
    let again = app
        .post(
            &path(child),
            Some(&app.admin_key),
            &json!({"address": "gone@example.com"}),
        )
        .await;

    assert_eq!((first.status, again.status), (201, 200));
    for _ in 0..250 {
        if app.emails_to("child@example.com") > 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert_eq!(app.emails_to("child@example.com"), 1);
}

async fn opt_outs_survive_archiving(app: TestApp) {
    let child = app.create_child("Child").await;
    let recorded = app
        .post(
            &path(child),
            Some(&app.admin_key),
            &json!({"address": "kept@example.com"}),
        )
        .await;
    assert_eq!(recorded.status, 201);

    let deleted = app
        .delete(&format!("/organizations/{child}/"), &app.admin_key)
        .await;

    assert_eq!(deleted.status, 204);
    assert_eq!(app.get(&path(child), &app.admin_key).await.status, 404);
    app.restore(child).await;
    let listed = app.get(&path(child), &app.admin_key).await;
    assert_eq!(listed.body["count"], 1);
    assert_eq!(listed.body["results"][0]["address"], "kept@example.com");
}
