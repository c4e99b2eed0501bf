//! Service accounts (CONTRACT §11): made by administrators with a name and a role and a
//! key shown once; members like any other, listed with `"kind": "service"`; no password,
//! no invitation, never administrators; removing one kills its keys on every process.

use futures::future::join_all;
use orgs_tests::{TestApp, id_of, on_both_backends};
use reqwest::Method;
use serde_json::{Value, json};

on_both_backends!(
    a_service_account_is_created_listed_and_manages_its_own_keys,
    only_administrators_create_service_accounts_and_bodies_are_checked,
    a_service_account_cannot_log_in_or_be_invited,
    a_service_account_changes_role_but_never_to_administrators_and_removal_kills_its_keys,
    the_last_administrator_rule_ignores_service_accounts,
    thirty_parallel_identical_creations_give_one_account,
    a_replayed_creation_blanks_the_key,
);

fn accounts_path(organization: i64) -> String {
    format!("/organizations/{organization}/service_accounts/")
}

/// Creates a service account as the first administrator; returns the `201` body.
async fn create(app: &TestApp, organization: i64, name: &str, role: &str) -> Value {
    let reply = app
        .post(
            &accounts_path(organization),
            Some(&app.admin_key),
            &json!({"name": name, "role": role}),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    reply.body
}

fn key_of(body: &Value) -> String {
    body["api_key"].as_str().expect("an API key").to_owned()
}

async fn created_events(app: &TestApp, organization: i64) -> Vec<Value> {
    let reply = app
        .get(
            &format!(
                "/organizations/{organization}/events/?action=service_account.created&page_size=1000"
            ),
            &app.admin_key,
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    reply.body["results"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

async fn a_service_account_is_created_listed_and_manages_its_own_keys(app: TestApp) {
    let root = app.root_id;
    let hook = app
        .post(
            &format!("/organizations/{root}/webhooks/"),
            Some(&app.admin_key),
            &json!({"endpoint": "https://hooks.example.com/orgs", "events": ["service_account.*"]}),
        )
        .await;
    let admin_url = app.get("/me/", &app.admin_key).await.body["url"].clone();

    let reply = app
        .post(
            &accounts_path(root),
            Some(&app.admin_key),
            &json!({"name": "billing-sync", "role": "users"}),
        )
        .await;

    assert_eq!(reply.status, 201, "{}", reply.text);
    assert_eq!(reply.header("cache-control"), Some("no-store"));
    let url = reply.body["url"].as_str().expect("a url").to_owned();
    assert!(url.starts_with(&format!("/organizations/{root}/users/")));
    assert_eq!(reply.header("location"), Some(url.as_str()));
    let key = key_of(&reply.body);
    assert!(key.len() >= 22, "{key}");
    assert_eq!(
        reply.body,
        json!({
            "url": url,
            "identifier": "billing-sync",
            "kind": "service",
            "role": "users",
            "organization": format!("/organizations/{root}/"),
            "api_key": key,
        })
    );
    assert_eq!(hook.status, 201, "{}", hook.text);

    // Listed as a member, with its kind; `?kind=` keeps one kind; a bad kind is a 400.
    let all = app
        .get(&format!("/organizations/{root}/users/"), &app.admin_key)
        .await;
    let services = app
        .get(
            &format!("/organizations/{root}/users/?kind=service"),
            &app.admin_key,
        )
        .await;
    let humans = app
        .get(
            &format!("/organizations/{root}/users/?kind=human"),
            &app.admin_key,
        )
        .await;
    let bad = app
        .get(
            &format!("/organizations/{root}/users/?kind=robot"),
            &app.admin_key,
        )
        .await;
    assert_eq!(all.body["count"], 2, "{}", all.text);
    assert_eq!(all.body["results"][0]["kind"], "human");
    assert_eq!(all.body["results"][1]["kind"], "service");
    assert_eq!(services.body["count"], 1);
    assert_eq!(services.body["results"][0]["identifier"], "billing-sync");
    assert_eq!(services.body["results"][0]["url"], url.as_str());
    assert_eq!(humans.body["count"], 1);
    assert_eq!(humans.body["results"][0]["identifier"], "admin@localhost");
    assert_eq!(bad.status, 400, "{}", bad.text);
    assert_eq!(
        bad.body,
        json!({"kind": ["\"robot\" is not a valid choice."]})
    );
    let member = app.get(&url, &app.admin_key).await;
    assert_eq!(member.body["kind"], "service");

    // It acts with its own key: `/me/` and its own keys.
    let me = app.get("/me/", &key).await;
    assert_eq!(me.status, 200, "{}", me.text);
    assert_eq!(me.body["identifier"], "billing-sync");
    assert_eq!(me.body["kind"], "service");
    assert_eq!(me.body["url"], url.as_str());
    let made = app
        .post(
            "/me/api_keys/",
            Some(&key),
            &json!({"name": "ci", "scope": "read"}),
        )
        .await;
    assert_eq!(made.status, 201, "{}", made.text);
    let keys = app.get("/me/api_keys/", &key).await;
    let names: Vec<&str> = keys.body["results"]
        .as_array()
        .expect("keys")
        .iter()
        .filter_map(|k| k["name"].as_str())
        .collect();
    assert_eq!(names, ["ci", "default"]);
    let read_key = made.body["key"].as_str().expect("a key");
    assert_eq!(app.get("/me/", read_key).await.body["kind"], "service");
    assert_eq!(app.get("/me/", &app.admin_key).await.body["kind"], "human");

    // One event, by the administrator, about the new member, without the key.
    let events = created_events(&app, root).await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["actor"], admin_url);
    assert_eq!(events[0]["target"], url.as_str());
    assert_eq!(events[0]["organization"], format!("/organizations/{root}/"));
    assert_eq!(
        events[0]["changes"],
        json!({"name": [null, "billing-sync"], "role": [null, "users"]})
    );
    assert!(!events[0].to_string().contains(&key));
    let prefix = app
        .get(
            &format!("/organizations/{root}/events/?action=service_account.*"),
            &app.admin_key,
        )
        .await;
    assert_eq!(prefix.body["count"], 1, "{}", prefix.text);
    // The webhook heard of it: one delivery of that type.
    let deliveries = app
        .get(
            &format!("{}deliveries/", hook.body["url"].as_str().expect("a url")),
            &app.admin_key,
        )
        .await;
    let types: Vec<&str> = deliveries.body["results"]
        .as_array()
        .expect("deliveries")
        .iter()
        .filter_map(|d| d["type"].as_str())
        .collect();
    assert_eq!(types, ["service_account.created"]);
}

async fn only_administrators_create_service_accounts_and_bodies_are_checked(app: TestApp) {
    let root = app.root_id;
    let child = app.create_child("Child").await;
    let manager = app.add_user(root, "manager@example.com", "managers").await;
    let child_admin = app
        .add_user(child, "child-admin@example.com", "administrators")
        .await;
    let body = json!({"name": "ci", "role": "users"});

    let by_manager = app.post(&accounts_path(root), Some(&manager), &body).await;
    let invisible = app
        .post(&accounts_path(root), Some(&child_admin), &body)
        .await;
    let missing = app
        .post(&accounts_path(999_999), Some(&app.admin_key), &body)
        .await;
    let anonymous = app.post(&accounts_path(root), None, &body).await;
    let in_child = app
        .post(&accounts_path(child), Some(&child_admin), &body)
        .await;
    let administrator = app
        .post(
            &accounts_path(root),
            Some(&app.admin_key),
            &json!({"name": "boss", "role": "administrators"}),
        )
        .await;
    let french = app
        .send(
            app.request(Method::POST, &accounts_path(root), Some(&app.admin_key))
                .header("Accept-Language", "fr")
                .json(&json!({"name": "no spaces", "role": "administrators"})),
        )
        .await;
    let empty = app
        .post(&accounts_path(root), Some(&app.admin_key), &json!({}))
        .await;
    let nul = app
        .post(
            &accounts_path(root),
            Some(&app.admin_key),
            &json!({"name": "ci\u{0}", "role": "users\u{0}"}),
        )
        .await;
    let long = app
        .post(
            &accounts_path(root),
            Some(&app.admin_key),
            &json!({"name": "a".repeat(3000), "role": "u".repeat(3000)}),
        )
        .await;
    let fifty = app
        .post(
            &accounts_path(root),
            Some(&app.admin_key),
            &json!({"name": "a".repeat(50), "role": "collaborators"}),
        )
        .await;
    let first = app
        .post(&accounts_path(root), Some(&app.admin_key), &body)
        .await;
    let duplicate = app
        .post(&accounts_path(root), Some(&app.admin_key), &body)
        .await;

    assert_eq!(by_manager.status, 403, "{}", by_manager.text);
    assert_eq!(
        by_manager.body,
        json!({"detail": "You do not have permission to perform this action."})
    );
    assert_eq!(invisible.status, 404, "{}", invisible.text);
    assert_eq!(missing.status, 404, "{}", missing.text);
    assert_eq!(anonymous.status, 401, "{}", anonymous.text);
    assert_eq!(in_child.status, 201, "{}", in_child.text);
    assert_eq!(administrator.status, 400);
    assert_eq!(
        administrator.body,
        json!({"role": ["A service account cannot be an administrator."]})
    );
    assert_eq!(french.status, 400);
    assert_eq!(
        french.body,
        json!({
            "name": ["Saisissez un nom valide composé de lettres, de chiffres, de tirets, de tirets bas ou de points."],
            "role": ["Un compte de service ne peut pas être administrateur."]
        })
    );
    assert_eq!(empty.status, 400);
    assert_eq!(
        empty.body,
        json!({"name": ["This field is required."], "role": ["This field is required."]})
    );
    assert_eq!(nul.status, 400, "{}", nul.text);
    assert_eq!(
        nul.body["name"],
        json!(["Null characters are not allowed."])
    );
    assert!(nul.body["role"].is_array(), "{}", nul.text);
    assert_eq!(long.status, 400, "{}", long.text);
    assert_eq!(
        long.body["name"],
        json!(["Ensure this field has no more than 50 characters."])
    );
    assert!(long.body["role"].is_array(), "{}", long.text);
    assert_eq!(fifty.status, 201, "{}", fifty.text);
    assert_eq!(first.status, 201, "{}", first.text);
    assert_eq!(duplicate.status, 400);
    assert_eq!(
        duplicate.body,
        json!({"name": ["A service account with this name already exists."]})
    );
    // Refusals wrote nothing: three accounts, three events (the child's in the root's list).
    assert_eq!(created_events(&app, root).await.len(), 3);
}

async fn a_service_account_cannot_log_in_or_be_invited(app: TestApp) {
    let root = app.root_id;
    let created = create(&app, root, "billing-sync", "managers").await;

    let login = app
        .post(
            "/auth/token/",
            None,
            &json!({"identifier": "billing-sync", "password": "whatever-it-is"}),
        )
        .await;
    let with_key = app
        .post(
            "/auth/token/",
            None,
            &json!({"identifier": "billing-sync", "password": key_of(&created)}),
        )
        .await;
    let empty_password = app
        .post(
            "/auth/token/",
            None,
            &json!({"identifier": "billing-sync", "password": ""}),
        )
        .await;
    let invited = app
        .post(
            &format!("/organizations/{root}/invite_user/"),
            Some(&app.admin_key),
            &json!({"identifier": "billing-sync", "role": "users"}),
        )
        .await;

    let refused = json!({"non_field_errors": ["Unable to log in with provided credentials."]});
    assert_eq!(login.status, 400, "{}", login.text);
    assert_eq!(login.body, refused);
    assert_eq!(with_key.status, 400, "{}", with_key.text);
    assert_eq!(with_key.body, refused);
    assert_eq!(empty_password.status, 400);
    assert_eq!(invited.status, 400, "{}", invited.text);
    assert_eq!(
        invited.body,
        json!({"identifier": ["Enter a valid email address."]})
    );
}

async fn a_service_account_changes_role_but_never_to_administrators_and_removal_kills_its_keys(
    app: TestApp,
) {
    let root = app.root_id;
    let created = create(&app, root, "deployer", "collaborators").await;
    let url = created["url"].as_str().expect("a url").to_owned();
    let key = key_of(&created);
    let second = app
        .post("/me/api_keys/", Some(&key), &json!({"name": "second"}))
        .await;
    let second_key = second.body["key"].as_str().expect("a key").to_owned();
    let other = app.another_instance().await;
    assert_eq!(other.get("/me/", &key).await.status, 200);
    assert_eq!(other.get("/me/", &second_key).await.status, 200);

    let promoted = app
        .patch(&url, &app.admin_key, &json!({"role": "managers"}))
        .await;
    let crowned = app
        .patch(&url, &app.admin_key, &json!({"role": "administrators"}))
        .await;
    let as_manager = app
        .get(&format!("/organizations/{root}/users/"), &key)
        .await;
    let removed = app.delete(&url, &app.admin_key).await;

    assert_eq!(promoted.status, 200, "{}", promoted.text);
    assert_eq!(promoted.body["role"], "managers");
    assert_eq!(promoted.body["kind"], "service");
    assert_eq!(crowned.status, 400);
    assert_eq!(
        crowned.body,
        json!({"role": ["A service account cannot be an administrator."]})
    );
    assert_eq!(as_manager.status, 200, "a manager lists members");
    assert_eq!(removed.status, 204, "{}", removed.text);
    for (instance, credential) in [
        (&other, &key),
        (&other, &second_key),
        (&app, &key),
        (&app, &second_key),
    ] {
        let me = instance.get("/me/", credential).await;
        assert_eq!(me.status, 401, "{}", me.text);
    }
    assert_eq!(app.get(&url, &app.admin_key).await.status, 404);
    // Its name is free again.
    create(&app, root, "deployer", "users").await;
}

async fn the_last_administrator_rule_ignores_service_accounts(app: TestApp) {
    let root = app.root_id;
    create(&app, root, "one", "managers").await;
    create(&app, root, "two", "users").await;
    let admin_url = app.get("/me/", &app.admin_key).await.body["url"]
        .as_str()
        .expect("a url")
        .to_owned();

    let demoted = app
        .patch(&admin_url, &app.admin_key, &json!({"role": "managers"}))
        .await;
    let removed = app.delete(&admin_url, &app.admin_key).await;

    let conflict = json!({"detail": "An organization must keep at least one administrator."});
    assert_eq!(demoted.status, 409, "{}", demoted.text);
    assert_eq!(demoted.body, conflict);
    assert_eq!(removed.status, 409, "{}", removed.text);
    assert_eq!(removed.body, conflict);
}

async fn thirty_parallel_identical_creations_give_one_account(app: TestApp) {
    let root = app.root_id;
    let body = json!({"name": "racer", "role": "users"});
    let path = accounts_path(root);

    let replies = join_all((0..30).map(|_| app.post(&path, Some(&app.admin_key), &body))).await;

    let created = replies.iter().filter(|r| r.status == 201).count();
    let refused: Vec<&Value> = replies
        .iter()
        .filter(|r| r.status == 400)
        .map(|r| &r.body)
        .collect();
    assert_eq!(
        created,
        1,
        "{:?}",
        replies.iter().map(|r| &r.text).collect::<Vec<_>>()
    );
    assert_eq!(refused.len(), 29);
    assert!(
        refused
            .iter()
            .all(|body| **body
                == json!({"name": ["A service account with this name already exists."]})),
        "{refused:?}"
    );
    assert_eq!(created_events(&app, root).await.len(), 1);
    let listed = app
        .get(
            &format!("/organizations/{root}/users/?kind=service"),
            &app.admin_key,
        )
        .await;
    assert_eq!(listed.body["count"], 1);
}

async fn a_replayed_creation_blanks_the_key(app: TestApp) {
    let root = app.root_id;
    let send = || {
        app.send(
            app.request(Method::POST, &accounts_path(root), Some(&app.admin_key))
                .header("Idempotency-Key", "make-ci-once")
                .json(&json!({"name": "ci", "role": "users"})),
        )
    };

    let first = send().await;
    let replay = send().await;

    assert_eq!(first.status, 201, "{}", first.text);
    assert!(first.body["api_key"].is_string());
    assert_eq!(replay.status, 201, "{}", replay.text);
    assert_eq!(replay.header("idempotent-replayed"), Some("true"));
    assert_eq!(replay.header("cache-control"), Some("no-store"));
    assert_eq!(replay.body["api_key"], Value::Null);
    assert_eq!(replay.body["url"], first.body["url"]);
    assert_eq!(created_events(&app, root).await.len(), 1);
    assert_eq!(id_of(&replay.body["url"]), id_of(&first.body["url"]));
}
