//! Authentication: API keys, session tokens, `/me/`, regenerating the key (CONTRACT §3).

use orgs_tests::{TestApp, on_both_backends};
use serde_json::json;

on_both_backends!(
    requests_without_or_with_bad_credentials_are_refused,
    a_password_login_gives_a_session_token,
    wrong_credentials_get_the_drf_message,
    me_describes_the_caller,
    regenerating_the_key_stops_the_old_one_at_once,
);

async fn requests_without_or_with_bad_credentials_are_refused(app: TestApp) {
    let anonymous = app
        .send(app.request(reqwest::Method::GET, "/organizations/", None))
        .await;
    let bad = app.get("/organizations/", "not-a-key").await;

    assert_eq!(anonymous.status, 401);
    assert_eq!(
        anonymous.body,
        json!({"detail": "Authentication credentials were not provided."})
    );
    assert_eq!(anonymous.header("www-authenticate"), Some("Bearer"));
    assert_eq!(bad.status, 401);
    assert_eq!(bad.body, json!({"detail": "Invalid token."}));
    assert_eq!(bad.header("www-authenticate"), Some("Bearer"));
}

async fn a_password_login_gives_a_session_token(app: TestApp) {
    app.add_user(app.root_id, "login@example.com", "users")
        .await;

    let login = app
        .post(
            "/auth/token/",
            None,
            &json!({"identifier": "login@example.com", "password": "correct horse battery"}),
        )
        .await;

    assert_eq!(login.status, 201, "{}", login.text);
    assert!(login.body["expires_at"].is_string());
    let token = login.body["token"].as_str().expect("a token");
    let me = app.get("/me/", token).await;
    assert_eq!(me.status, 200);
    assert_eq!(me.body["identifier"], "login@example.com");
}

async fn wrong_credentials_get_the_drf_message(app: TestApp) {
    app.add_user(app.root_id, "login@example.com", "users")
        .await;

    for body in [
        json!({"identifier": "login@example.com", "password": "wrong password"}),
        json!({"identifier": "nobody@example.com", "password": "whatever"}),
    ] {
        let reply = app.post("/auth/token/", None, &body).await;

        assert_eq!(reply.status, 400);
        assert_eq!(
            reply.body,
            json!({"non_field_errors": ["Unable to log in with provided credentials."]})
        );
    }
}

async fn me_describes_the_caller(app: TestApp) {
    let reply = app.get("/me/", &app.admin_key).await;

    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.body["identifier"], "admin@localhost");
    assert_eq!(reply.body["role"], "administrators");
    assert_eq!(
        reply.body["organization"],
        format!("/organizations/{}/", app.root_id)
    );
    assert!(
        reply.body["url"]
            .as_str()
            .is_some_and(|url| url.starts_with(&format!("/organizations/{}/users/", app.root_id)))
    );
    assert_eq!(
        reply.body["_links"],
        json!({"regen_secret": {"href": "/me/regen_secret/"}})
    );
}

async fn regenerating_the_key_stops_the_old_one_at_once(app: TestApp) {
    let key = app
        .add_user(app.root_id, "regen@example.com", "users")
        .await;
    let session = app
        .post(
            "/auth/token/",
            None,
            &json!({"identifier": "regen@example.com", "password": "correct horse battery"}),
        )
        .await;
    let session = session.body["token"].as_str().expect("a token").to_owned();

    let regenerated = app.post("/me/regen_secret/", Some(&key), &json!({})).await;

    assert_eq!(regenerated.status, 200, "{}", regenerated.text);
    let new_key = regenerated.body["api_key"].as_str().expect("a key");
    assert_eq!(app.get("/me/", &key).await.status, 401);
    assert_eq!(app.get("/me/", new_key).await.status, 200);
    assert_eq!(app.get("/me/", &session).await.status, 200);
}
