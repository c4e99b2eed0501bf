//! API keys: several named keys per user, scopes, expiry, limits, `last_used_at`
//! (CONTRACT §11).

use std::time::Duration;

use orgs_tests::{TestApp, id_of, on_both_backends};
use reqwest::Method;
use serde_json::{Value, json};

on_both_backends!(
    a_key_is_created_listed_used_and_revoked,
    a_revoked_key_is_refused_at_once_by_another_instance,
    a_read_key_reads_but_every_write_route_of_the_document_refuses_it,
    an_expired_key_is_an_invalid_token,
    key_names_are_checked_and_twenty_live_keys_are_the_most,
    regenerating_the_secret_replaces_only_the_default_key,
    the_last_use_of_a_key_shows_within_the_flush_interval,
    a_session_token_may_write_and_is_no_api_key,
    thirty_parallel_creations_and_hostile_values_never_answer_a_server_error,
);

/// Makes a key as `owner`; returns the answer's body.
async fn make_key(app: &TestApp, owner: &str, body: &Value) -> Value {
    let reply = app.post("/me/api_keys/", Some(owner), body).await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    reply.body
}

fn key_of(body: &Value) -> String {
    body["key"].as_str().expect("a key").to_owned()
}

async fn a_key_is_created_listed_used_and_revoked(app: TestApp) {
    let created = app
        .post(
            "/me/api_keys/",
            Some(&app.admin_key),
            &json!({"name": "ci", "scope": "write", "expires_in_days": 90}),
        )
        .await;

    assert_eq!(created.status, 201, "{}", created.text);
    assert_eq!(created.header("cache-control"), Some("no-store"));
    let key = key_of(&created.body);
    assert_eq!(created.body["name"], "ci");
    assert_eq!(created.body["scope"], "write");
    assert_eq!(created.body["prefix"], key[..8]);
    assert!(created.body["expires_at"].is_string());
    assert_eq!(created.body["last_used_at"], Value::Null);
    let url = created.body["url"].as_str().expect("a url").to_owned();
    assert!(
        url.starts_with("/me/api_keys/") && url.ends_with('/'),
        "{url}"
    );

    let listed = app.get("/me/api_keys/", &key).await;
    assert_eq!(listed.status, 200, "{}", listed.text);
    assert_eq!(listed.body["count"], 2);
    let results = listed.body["results"].as_array().expect("results");
    assert_eq!(results[0]["name"], "ci");
    assert_eq!(results[0]["url"], url.as_str());
    assert!(results[0].get("key").is_none());
    assert_eq!(results[1]["name"], "default");
    assert_eq!(results[1]["scope"], "write");
    assert_eq!(results[1]["expires_at"], Value::Null);

    let me = app.get("/me/", &key).await;
    assert_eq!(me.status, 200);

    let someone = app
        .add_user(app.root_id, "someone@example.com", "users")
        .await;
    assert_eq!(app.delete(&url, &someone).await.status, 404);
    assert_eq!(app.get("/me/", &key).await.status, 200);

    let revoked = app.delete(&url, &app.admin_key).await;
    assert_eq!(revoked.status, 204, "{}", revoked.text);
    let after = app.get("/me/", &key).await;
    assert_eq!(after.status, 401);
    assert_eq!(after.body, json!({"detail": "Invalid token."}));
    assert_eq!(app.delete(&url, &app.admin_key).await.status, 404);
    assert_eq!(
        app.get("/me/api_keys/", &app.admin_key).await.body["count"],
        1
    );
    assert_eq!(
        app.delete("/me/api_keys/abc/", &app.admin_key).await.status,
        404
    );
}

async fn a_revoked_key_is_refused_at_once_by_another_instance(app: TestApp) {
    let created = make_key(&app, &app.admin_key, &json!({"name": "shared"})).await;
    let key = key_of(&created);
    let url = created["url"].as_str().expect("a url").to_owned();
    let other = app.another_instance().await;
    assert_eq!(other.get("/me/", &key).await.status, 200);

    let revoked = app.delete(&url, &app.admin_key).await;

    assert_eq!(revoked.status, 204);
    assert_eq!(other.get("/me/", &key).await.status, 401);
    assert_eq!(app.get("/me/", &key).await.status, 401);
}

/// Fills the ids of a documented path with real ones.
fn fill(path: &str, ids: &[(&str, i64)]) -> String {
    ids.iter().fold(path.to_owned(), |path, (name, id)| {
        path.replace(&format!("{{{name}}}"), &id.to_string())
    })
}

async fn a_read_key_reads_but_every_write_route_of_the_document_refuses_it(app: TestApp) {
    let child = app.create_child("Child").await;
    let invited = app
        .post(
            &format!("/organizations/{child}/invite_user/"),
            Some(&app.admin_key),
            &json!({"identifier": "invitee@example.com"}),
        )
        .await;
    assert_eq!(invited.status, 201, "{}", invited.text);
    let invitation = id_of(&invited.body["url"]);
    let member_key = app.add_user(child, "member@example.com", "users").await;
    let member = id_of(&app.get("/me/", &member_key).await.body["url"]);
    let spare = make_key(&app, &app.admin_key, &json!({"name": "spare"})).await;
    let read = key_of(
        &make_key(
            &app,
            &app.admin_key,
            &json!({"name": "ro", "scope": "read"}),
        )
        .await,
    );
    let hook = app
        .post(
            &format!("/organizations/{child}/webhooks/"),
            Some(&app.admin_key),
            &json!({"endpoint": "https://hooks.example.com/orgs"}),
        )
        .await;
    assert_eq!(hook.status, 201, "{}", hook.text);
    let webhook = id_of(&hook.body["url"]);
    // The webhook hears of its own creation: that delivery is there at once.
    let deliveries = app
        .get(
            &format!("/organizations/{child}/webhooks/{webhook}/deliveries/"),
            &app.admin_key,
        )
        .await;
    let delivery = id_of(&deliveries.body["results"][0]["url"]);
    let ids = [
        ("id", child),
        ("invitation", invitation),
        ("user", member),
        ("key", id_of(&spare["url"])),
        ("webhook", webhook),
        ("delivery", delivery),
    ];
    let document = app.get("/openapi.json", &read).await.body;

    assert_eq!(app.get("/organizations/", &read).await.status, 200);
    assert_eq!(
        app.send(app.request(Method::HEAD, "/me/", Some(&read)))
            .await
            .status,
        200
    );
    let mut writes = Vec::new();
    for (path, item) in document["paths"].as_object().expect("paths") {
        for method in ["post", "put", "patch", "delete"] {
            let operation = &item[method];
            if operation["security"]
                .as_array()
                .is_some_and(|s| !s.is_empty())
            {
                writes.push((method, fill(path, &ids)));
            }
        }
    }
    assert!(writes.len() >= 12, "{writes:?}");
    assert!(
        writes.iter().any(|(method, path)| *method == "post"
            && *path == format!("/organizations/{child}/service_accounts/")),
        "{writes:?}"
    );
    assert!(
        writes.iter().all(|(_, path)| !path.contains('{')),
        "{writes:?}"
    );
    for (method, path) in &writes {
        let method = Method::from_bytes(method.to_uppercase().as_bytes()).expect("a method");
        let reply = app
            .send(
                app.request(method.clone(), path, Some(&read))
                    .json(&json!({})),
            )
            .await;
        assert_eq!(reply.status, 403, "{method} {path}: {}", reply.text);
        assert_eq!(
            reply.body,
            json!({"detail": "This API key is read-only."}),
            "{method} {path}"
        );
    }
    let french = app
        .send(
            app.request(Method::POST, "/me/regen_secret/", Some(&read))
                .header("accept-language", "fr"),
        )
        .await;
    assert_eq!(french.status, 403);
    assert_eq!(
        french.body,
        json!({"detail": "Cette clé d'API est en lecture seule."})
    );
    // Nothing was done: the spare key and the invitation are still there.
    assert_eq!(
        app.get("/me/api_keys/", &app.admin_key).await.body["count"],
        3
    );
    let invitation_now = app
        .get(
            &format!("/organizations/{child}/invitations/{invitation}/"),
            &app.admin_key,
        )
        .await;
    assert_eq!(
        invitation_now.body["status"], "pending",
        "{}",
        invitation_now.text
    );
}

async fn an_expired_key_is_an_invalid_token(app: TestApp) {
    let created = make_key(
        &app,
        &app.admin_key,
        &json!({"name": "short", "expires_in_days": 1}),
    )
    .await;
    let key = key_of(&created);
    assert_eq!(app.get("/me/", &key).await.status, 200);

    app.execute_sql("update credentials set expires_at = created_at where name = 'short'")
        .await;

    let reply = app.get("/me/", &key).await;
    assert_eq!(reply.status, 401);
    assert_eq!(reply.body, json!({"detail": "Invalid token."}));
    assert_eq!(reply.header("www-authenticate"), Some("Bearer"));
    // An expired key no longer holds its name.
    make_key(&app, &app.admin_key, &json!({"name": "short"})).await;
}

async fn key_names_are_checked_and_twenty_live_keys_are_the_most(app: TestApp) {
    for (body, expected) in [
        (json!({}), json!({"name": ["This field is required."]})),
        (
            json!({"name": "  "}),
            json!({"name": ["This field may not be blank."]}),
        ),
        (
            json!({"name": "n".repeat(51)}),
            json!({"name": ["Ensure this field has no more than 50 characters."]}),
        ),
        (
            json!({"name": "default"}),
            json!({"name": ["You already have an API key with this name."]}),
        ),
        (
            json!({"name": "x", "scope": "admin", "expires_in_days": 366}),
            json!({
                "scope": ["\"admin\" is not a valid choice."],
                "expires_in_days": ["Ensure this value is less than or equal to 365."],
            }),
        ),
        (
            json!({"name": "x\u{0}"}),
            json!({"name": ["Null characters are not allowed."]}),
        ),
    ] {
        let reply = app.post("/me/api_keys/", Some(&app.admin_key), &body).await;
        assert_eq!(reply.status, 400, "{body}: {}", reply.text);
        assert_eq!(reply.body, expected, "{body}");
    }
    for n in 1..20 {
        make_key(&app, &app.admin_key, &json!({"name": format!("key {n}")})).await;
    }

    let one_more = app
        .post(
            "/me/api_keys/",
            Some(&app.admin_key),
            &json!({"name": "one more"}),
        )
        .await;
    let in_french = app
        .send(
            app.request(Method::POST, "/me/api_keys/", Some(&app.admin_key))
                .header("accept-language", "fr")
                .json(&json!({"name": "default"})),
        )
        .await;

    assert_eq!(one_more.status, 400);
    assert_eq!(
        one_more.body,
        json!({"non_field_errors": ["You cannot have more than 20 API keys."]})
    );
    assert_eq!(
        in_french.body,
        json!({"name": ["Vous avez déjà une clé d'API portant ce nom."]})
    );
    assert_eq!(
        app.get("/me/api_keys/?page_size=5", &app.admin_key)
            .await
            .body["count"],
        20
    );
}

async fn regenerating_the_secret_replaces_only_the_default_key(app: TestApp) {
    let ci = key_of(&make_key(&app, &app.admin_key, &json!({"name": "ci"})).await);

    let regenerated = app
        .post("/me/regen_secret/", Some(&app.admin_key), &json!({}))
        .await;

    assert_eq!(regenerated.status, 200, "{}", regenerated.text);
    let fresh = regenerated.body["api_key"].as_str().expect("a key");
    assert_eq!(app.get("/me/", &app.admin_key).await.status, 401);
    assert_eq!(app.get("/me/", fresh).await.status, 200);
    assert_eq!(app.get("/me/", &ci).await.status, 200);
    let listed = app.get("/me/api_keys/", fresh).await.body;
    assert_eq!(listed["count"], 2);
    let default = listed["results"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|key| key["name"] == "default")
        .expect("a default key");
    assert_eq!(default["prefix"], fresh[..8]);
}

async fn the_last_use_of_a_key_shows_within_the_flush_interval(app: TestApp) {
    let created = make_key(&app, &app.admin_key, &json!({"name": "used"})).await;
    let key = key_of(&created);

    assert_eq!(app.get("/organizations/", &key).await.status, 200);

    let mut last_used = Value::Null;
    for _ in 0..50 {
        let listed = app.get("/me/api_keys/", &app.admin_key).await.body;
        last_used = listed["results"][0]["last_used_at"].clone();
        if last_used.is_string() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(last_used.is_string(), "{last_used}");
    assert!(
        last_used.as_str() >= created["created_at"].as_str(),
        "{last_used} {}",
        created["created_at"]
    );
}

async fn a_session_token_may_write_and_is_no_api_key(app: TestApp) {
    app.add_user(app.root_id, "login@example.com", "users")
        .await;
    let login = app
        .post(
            "/auth/token/",
            None,
            &json!({"identifier": "login@example.com", "password": "correct horse battery"}),
        )
        .await;
    let session = login.body["token"].as_str().expect("a token");

    let made = app
        .post(
            "/me/api_keys/",
            Some(session),
            &json!({"name": "from a session"}),
        )
        .await;
    let listed = app.get("/me/api_keys/", session).await;

    assert_eq!(made.status, 201, "{}", made.text);
    assert_eq!(listed.body["count"], 2);
    let names: Vec<&str> = listed.body["results"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|key| key["name"].as_str())
        .collect();
    assert_eq!(names, ["from a session", "default"]);
}

async fn thirty_parallel_creations_and_hostile_values_never_answer_a_server_error(app: TestApp) {
    let bodies: Vec<Value> = (0..30)
        .map(|n| json!({"name": format!("parallel {n}")}))
        .collect();
    let replies = futures::future::join_all(
        bodies
            .iter()
            .map(|body| app.post("/me/api_keys/", Some(&app.admin_key), body)),
    )
    .await;
    let long = app
        .post(
            "/me/api_keys/",
            Some(&app.admin_key),
            &json!({"name": "n".repeat(3000), "expires_in_days": "9".repeat(3000)}),
        )
        .await;

    let created = replies.iter().filter(|r| r.status == 201).count();
    let refused = replies.iter().filter(|r| r.status == 400).count();
    assert_eq!((created, refused), (19, 11));
    assert!(
        replies
            .iter()
            .filter(|r| r.status == 400)
            .all(|r| r.body
                == json!({"non_field_errors": ["You cannot have more than 20 API keys."]}))
    );
    assert_eq!(long.status, 400, "{}", long.text);
    assert_eq!(
        long.body["name"],
        json!(["Ensure this field has no more than 50 characters."])
    );
    assert!(long.body["expires_in_days"].is_array(), "{}", long.text);
}
