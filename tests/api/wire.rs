//! Wire conventions: slashes, ids, bodies, booleans, pagination, languages, request
//! ids (CONTRACT §2).

use orgs_tests::{TestApp, on_both_backends};
use reqwest::Method;
use serde_json::{Value, json};

on_both_backends!(
    every_path_works_with_and_without_its_trailing_slash,
    ids_that_are_not_positive_integers_are_not_found,
    bodies_must_be_small_well_formed_json,
    drf_boolean_strings_are_accepted,
    pagination_follows_drf,
    french_is_spoken_on_request,
    every_response_carries_a_request_id,
);

async fn every_path_works_with_and_without_its_trailing_slash(app: TestApp) {
    let root = app.root_id;

    for path in [
        "/organizations".to_owned(),
        format!("/organizations/{root}"),
        format!("/organizations/{root}/children"),
        format!("/organizations/{root}/opt_outs"),
        format!("/organizations/{root}/invitations"),
        "/me".to_owned(),
    ] {
        let without = app.get(&path, &app.admin_key).await;
        let with = app.get(&format!("{path}/"), &app.admin_key).await;

        assert_eq!(without.status, 200, "{path}");
        assert_eq!(with.status, 200, "{path}/");
    }
}

async fn ids_that_are_not_positive_integers_are_not_found(app: TestApp) {
    for path in [
        "/organizations/abc/",
        "/organizations/0/",
        "/organizations/-1/",
        "/organizations/1.5/",
    ] {
        let reply = app.get(path, &app.admin_key).await;

        assert_eq!(reply.status, 404, "{path}");
        assert_eq!(reply.body, json!({"detail": "Not found."}));
    }
}

async fn bodies_must_be_small_well_formed_json(app: TestApp) {
    let path = format!("/organizations/{}/", app.root_id);

    let form = app
        .send(
            app.request(Method::PATCH, &path, Some(&app.admin_key))
                .header("content-type", "application/x-www-form-urlencoded")
                .body("name=x"),
        )
        .await;
    let malformed = app
        .send(
            app.request(Method::PATCH, &path, Some(&app.admin_key))
                .header("content-type", "application/json")
                .body("{\"name\": "),
        )
        .await;
    let large = app
        .patch(
            &path,
            &app.admin_key,
            &json!({"name": "x".repeat(70 * 1024)}),
        )
        .await;

    assert_eq!(form.status, 415);
    assert_eq!(malformed.status, 400);
    assert!(
        malformed.body["detail"]
            .as_str()
            .is_some_and(|detail| detail.starts_with("JSON parse error - "))
    );
    assert_eq!(large.status, 413);
    assert!(large.body["detail"].is_string());
}

async fn drf_boolean_strings_are_accepted(app: TestApp) {
    let path = format!("/organizations/{}/", app.root_id);

    let on = app
        .patch(
            &path,
            &app.admin_key,
            &json!({"settings": {"notify_optouts": "true", "notify_message_status": "0"}}),
        )
        .await;
    let bad = app
        .patch(
            &path,
            &app.admin_key,
            &json!({"settings": {"notify_optouts": "maybe"}}),
        )
        .await;

    assert_eq!(on.status, 200, "{}", on.text);
    assert_eq!(on.body["settings"]["notify_optouts"], true);
    assert_eq!(on.body["settings"]["notify_message_status"], false);
    assert_eq!(bad.status, 400);
    assert_eq!(
        bad.body,
        json!({"settings": {"notify_optouts": ["Must be a valid boolean."]}})
    );
}

async fn pagination_follows_drf(app: TestApp) {
    for index in 0..4 {
        app.create_child(&format!("Child {index}")).await;
    }

    let first = app.get("/organizations/?page_size=2", &app.admin_key).await;
    let second = app
        .get("/organizations/?page=2&page_size=2", &app.admin_key)
        .await;
    let third = app
        .get("/organizations/?page=3&page_size=2", &app.admin_key)
        .await;
    let past = app
        .get("/organizations/?page=4&page_size=2", &app.admin_key)
        .await;
    let zero = app.get("/organizations/?page=0", &app.admin_key).await;
    let text = app.get("/organizations/?page=abc", &app.admin_key).await;
    let capped = app
        .get("/organizations/?page_size=5000", &app.admin_key)
        .await;
    let ignored = app
        .get("/organizations/?page_size=abc", &app.admin_key)
        .await;

    assert_eq!(first.body["count"], 5);
    assert_eq!(first.body["page_count"], 3);
    assert_eq!(first.body["previous"], Value::Null);
    assert!(
        first.body["next"]
            .as_str()
            .is_some_and(|next| next.contains("page=2") && next.contains("page_size=2"))
    );
    assert!(second.body["previous"].is_string());
    assert_eq!(third.body["next"], Value::Null);
    assert_eq!(third.body["results"].as_array().map(Vec::len), Some(1));
    for invalid in [past, zero, text] {
        assert_eq!(invalid.status, 404);
        assert_eq!(invalid.body, json!({"detail": "Invalid page."}));
    }
    assert_eq!(capped.body["results"].as_array().map(Vec::len), Some(5));
    assert_eq!(ignored.status, 200);
}

async fn french_is_spoken_on_request(app: TestApp) {
    let path = format!("/organizations/{}/", app.root_id);

    let french = app
        .send(
            app.request(Method::PUT, &path, Some(&app.admin_key))
                .header("accept-language", "fr-FR,fr;q=0.9,en;q=0.8")
                .json(&json!({"name": "Exemple", "contact_email": "pas-une-adresse"})),
        )
        .await;
    let english = app
        .put(
            &path,
            &app.admin_key,
            &json!({"name": "Example", "contact_email": "not-an-address"}),
        )
        .await;

    assert_eq!(french.status, 400);
    assert_eq!(
        french.body,
        json!({"contact_email": ["Saisissez une adresse email valable."]})
    );
    assert_eq!(
        english.body,
        json!({"contact_email": ["Enter a valid email address."]})
    );
}

async fn every_response_carries_a_request_id(app: TestApp) {
    let generated = app.get("/organizations/", &app.admin_key).await;
    let kept = app
        .send(
            app.request(Method::GET, "/organizations/", Some(&app.admin_key))
                .header("x-request-id", "caller-chosen-42"),
        )
        .await;
    let not_found = app.get("/nowhere/", &app.admin_key).await;

    assert!(
        generated
            .header("x-request-id")
            .is_some_and(|id| !id.is_empty())
    );
    assert_eq!(kept.header("x-request-id"), Some("caller-chosen-42"));
    assert!(not_found.header("x-request-id").is_some());
}
