//! The invitation page (CONTRACT §10): the link of the e-mail, its form, and the pages
//! it answers with.

use orgs_tests::{
    Backend, DatabaseProxy, Reply, SpawnOptions, TestApp, on_both_backends, spawn_app_with_options,
};
use reqwest::Method;
use reqwest::header::{ACCEPT_LANGUAGE, CONTENT_TYPE};
use serde_json::json;

on_both_backends!(
    the_page_names_the_organization_the_role_and_the_inviter,
    pages_carry_the_security_headers,
    every_value_on_the_page_is_html_escaped,
    viewing_the_page_does_not_use_the_token,
    form_errors_show_beside_their_fields_and_keep_the_names,
    mismatched_passwords_are_refused_before_anything_is_accepted,
    the_form_accepts_and_shows_a_working_api_key_once,
    a_used_unknown_or_missing_token_shows_the_invalid_page,
    the_pages_speak_french,
    json_bodies_keep_their_json_answers,
);

const PAGE_CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; \
                        frame-ancestors 'none'; base-uri 'none'";

/// Invites `identifier` into a new child organization named `name` as `managers`, and
/// returns the token of the e-mail.
async fn invited(app: &TestApp, name: &str, identifier: &str) -> String {
    let child = app.create_child(name).await;
    let reply = app
        .post(
            &format!("/organizations/{child}/invite_user/"),
            Some(&app.admin_key),
            &json!({"identifier": identifier, "role": "managers"}),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    app.token_sent_to(identifier).await
}

async fn view(app: &TestApp, path: &str, language: Option<&str>) -> Reply {
    let mut request = app.request(Method::GET, path, None);
    if let Some(language) = language {
        request = request.header(ACCEPT_LANGUAGE, language);
    }
    app.send(request).await
}

fn form_body(fields: &[(&str, &str)]) -> String {
    let mut body = form_urlencoded::Serializer::new(String::new());
    for (name, value) in fields {
        body.append_pair(name, value);
    }
    body.finish()
}

async fn submit(app: &TestApp, fields: &[(&str, &str)], language: Option<&str>) -> Reply {
    let mut request = app
        .request(Method::POST, "/invitations/accept/", None)
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(form_body(fields));
    if let Some(language) = language {
        request = request.header(ACCEPT_LANGUAGE, language);
    }
    app.send(request).await
}

/// The complete form, with `password` typed twice.
fn filled<'a>(token: &'a str, password: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("token", token),
        ("first_name", "Ada"),
        ("last_name", "Lovelace"),
        ("password", password),
        ("password_confirmation", password),
    ]
}

/// The text of the element with `id` (its first text, tags removed).
fn element_text(html: &str, id: &str) -> Option<String> {
    let marker = format!("id=\"{id}\"");
    let start = html.find(&marker)?;
    let after = &html[start..];
    let open_end = after.find('>')? + 1;
    let rest = &after[open_end..];
    let close = rest.find("</")?;
    Some(rest[..close].trim().to_owned())
}

/// The API key on the welcome page.
fn api_key_on(html: &str) -> String {
    element_text(html, "api-key").expect("the API key is on the page")
}

async fn the_page_names_the_organization_the_role_and_the_inviter(app: TestApp) {
    let token = invited(&app, "Acme Mail", "guest@example.com").await;

    let with_slash = view(&app, &format!("/invitations/accept/?token={token}"), None).await;
    let without = view(&app, &format!("/invitations/accept?token={token}"), None).await;

    assert_eq!(with_slash.status, 200, "{}", with_slash.text);
    assert_eq!(without.status, 200, "{}", without.text);
    assert_eq!(
        with_slash.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    let html = &with_slash.text;
    assert_eq!(
        element_text(html, "organization").as_deref(),
        Some("Acme Mail")
    );
    assert_eq!(element_text(html, "role").as_deref(), Some("managers"));
    assert_eq!(
        element_text(html, "inviter").as_deref(),
        Some("admin@localhost")
    );
    assert_eq!(
        element_text(html, "identifier").as_deref(),
        Some("guest@example.com")
    );
    for field in [
        "name=\"first_name\"",
        "name=\"last_name\"",
        "name=\"password\"",
        "name=\"password_confirmation\"",
        "type=\"hidden\" name=\"token\"",
        "action=\"/invitations/accept/\"",
        "<meta name=\"viewport\"",
    ] {
        assert!(html.contains(field), "{field} missing in {html}");
    }
    assert!(!html.contains("<script"), "{html}");
}

async fn pages_carry_the_security_headers(app: TestApp) {
    let token = invited(&app, "Acme", "guest@example.com").await;

    let page = view(&app, &format!("/invitations/accept?token={token}"), None).await;
    let invalid = view(&app, "/invitations/accept?token=nothing", None).await;
    let refused = submit(&app, &filled(&token, "short"), None).await;
    let welcome = submit(&app, &filled(&token, "long enough"), None).await;

    for reply in [&page, &invalid, &refused, &welcome] {
        assert_eq!(reply.header("content-security-policy"), Some(PAGE_CSP));
        assert_eq!(reply.header("referrer-policy"), Some("no-referrer"));
        assert_eq!(reply.header("x-content-type-options"), Some("nosniff"));
        assert_eq!(reply.header("cache-control"), Some("no-store"));
        assert_eq!(
            reply.header("content-type"),
            Some("text/html; charset=utf-8")
        );
    }
    assert_eq!(
        (page.status, invalid.status, refused.status, welcome.status),
        (200, 400, 400, 200)
    );
}

async fn every_value_on_the_page_is_html_escaped(app: TestApp) {
    let name = "<script>alert(1)</script>";
    let token = invited(&app, name, "guest@example.com").await;

    let page = view(&app, &format!("/invitations/accept?token={token}"), None).await;
    let refused = submit(
        &app,
        &[
            ("token", &token),
            ("first_name", "\"><img src=x onerror=alert(2)>"),
            ("last_name", "Lovelace"),
            ("password", "short"),
            ("password_confirmation", "short"),
        ],
        None,
    )
    .await;
    let welcome = submit(&app, &filled(&token, "long enough"), None).await;

    assert_eq!(page.status, 200, "{}", page.text);
    for reply in [&page, &refused, &welcome] {
        assert!(!reply.text.contains("<script"), "{}", reply.text);
        assert!(!reply.text.contains("<img"), "{}", reply.text);
        assert!(
            reply
                .text
                .contains("&#60;script&#62;alert(1)&#60;/script&#62;")
                || reply.text.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
            "{}",
            reply.text
        );
    }
    assert_eq!(refused.status, 400);
    assert_eq!(welcome.status, 200, "{}", welcome.text);
}

async fn viewing_the_page_does_not_use_the_token(app: TestApp) {
    let token = invited(&app, "Acme", "guest@example.com").await;

    for _ in 0..3 {
        let page = view(&app, &format!("/invitations/accept?token={token}"), None).await;
        assert_eq!(page.status, 200, "{}", page.text);
    }
    let accepted = app
        .post(
            "/invitations/accept/",
            None,
            &json!({"token": token, "password": "long enough", "first_name": "Ada", "last_name": "Lovelace"}),
        )
        .await;

    assert_eq!(accepted.status, 201, "{}", accepted.text);
}

async fn form_errors_show_beside_their_fields_and_keep_the_names(app: TestApp) {
    let token = invited(&app, "Acme", "guest@example.com").await;

    let refused = submit(
        &app,
        &[
            ("token", &token),
            ("first_name", "Ada"),
            ("last_name", "   "),
            ("password", "short"),
            ("password_confirmation", "short"),
        ],
        None,
    )
    .await;

    assert_eq!(refused.status, 400, "{}", refused.text);
    let html = &refused.text;
    assert_eq!(
        element_text(html, "password-error").as_deref(),
        Some("Ensure this field has at least 8 characters.")
    );
    assert_eq!(
        element_text(html, "last_name-error").as_deref(),
        Some("This field may not be blank.")
    );
    assert!(element_text(html, "first_name-error").is_none(), "{html}");
    assert!(html.contains("value=\"Ada\""), "{html}");
    assert!(!html.contains("value=\"short\""), "{html}");
    assert_eq!(element_text(html, "organization").as_deref(), Some("Acme"));
    // Nothing was used: the token still accepts.
    let accepted = submit(&app, &filled(&token, "long enough"), None).await;
    assert_eq!(accepted.status, 200, "{}", accepted.text);
}

async fn mismatched_passwords_are_refused_before_anything_is_accepted(app: TestApp) {
    let token = invited(&app, "Acme", "guest@example.com").await;

    let refused = submit(
        &app,
        &[
            ("token", &token),
            ("first_name", "Ada"),
            ("last_name", "Lovelace"),
            ("password", "long enough"),
            ("password_confirmation", "long enouhg"),
        ],
        None,
    )
    .await;

    assert_eq!(refused.status, 400, "{}", refused.text);
    assert_eq!(
        element_text(&refused.text, "password_confirmation-error").as_deref(),
        Some("The two passwords do not match.")
    );
    assert!(!refused.text.contains("long enough"), "{}", refused.text);
    let accepted = submit(&app, &filled(&token, "long enough"), None).await;
    assert_eq!(accepted.status, 200, "{}", accepted.text);
}

async fn the_form_accepts_and_shows_a_working_api_key_once(app: TestApp) {
    let token = invited(&app, "Acme", "guest@example.com").await;

    let welcome = submit(&app, &filled(&token, "long enough"), None).await;

    assert_eq!(welcome.status, 200, "{}", welcome.text);
    assert_eq!(
        element_text(&welcome.text, "title").as_deref(),
        Some("Welcome to Acme")
    );
    let key = api_key_on(&welcome.text);
    assert!(
        welcome
            .text
            .contains(&format!("Authorization: Bearer {key}")),
        "{}",
        welcome.text
    );
    let me = app.get("/me/", &key).await;
    assert_eq!(me.status, 200, "{}", me.text);
    assert_eq!(me.body["identifier"], "guest@example.com");
    assert_eq!(me.body["first_name"], "Ada");
    assert_eq!(me.body["role"], "managers");
    let again = submit(&app, &filled(&token, "long enough"), None).await;
    assert_eq!(again.status, 400);
    assert!(!again.text.contains(&key));
}

async fn a_used_unknown_or_missing_token_shows_the_invalid_page(app: TestApp) {
    let token = invited(&app, "Acme", "guest@example.com").await;
    let welcome = submit(&app, &filled(&token, "long enough"), None).await;
    assert_eq!(welcome.status, 200, "{}", welcome.text);

    for path in [
        format!("/invitations/accept?token={token}"),
        "/invitations/accept/?token=unknown".to_owned(),
        "/invitations/accept/?token=".to_owned(),
        "/invitations/accept/".to_owned(),
        "/invitations/accept/?token=%00".to_owned(),
        format!("/invitations/accept/?token={}", "x".repeat(5000)),
    ] {
        let page = view(&app, &path, None).await;

        assert_eq!(page.status, 400, "{path}: {}", page.text);
        assert_eq!(
            element_text(&page.text, "title").as_deref(),
            Some("Invalid or expired invitation."),
            "{path}"
        );
        assert!(!page.text.contains("<form"), "{path}");
    }
    let used = submit(&app, &filled(&token, "long enough"), None).await;
    assert_eq!(used.status, 400);
    assert_eq!(
        element_text(&used.text, "title").as_deref(),
        Some("Invalid or expired invitation.")
    );
}

async fn the_pages_speak_french(app: TestApp) {
    let token = invited(&app, "Acme", "guest@example.com").await;
    let fr = Some("fr");

    let page = view(&app, &format!("/invitations/accept?token={token}"), fr).await;
    let short = submit(&app, &filled(&token, "court"), fr).await;
    let mismatch = submit(
        &app,
        &[
            ("token", &token),
            ("first_name", "Ada"),
            ("last_name", "Lovelace"),
            ("password", "assez long"),
            ("password_confirmation", "pas pareil"),
        ],
        fr,
    )
    .await;
    let welcome = submit(&app, &filled(&token, "assez long"), fr).await;
    let invalid = view(&app, &format!("/invitations/accept?token={token}"), fr).await;

    assert_eq!(page.status, 200);
    assert!(page.text.contains("<html lang=\"fr\">"), "{}", page.text);
    assert_eq!(
        element_text(&page.text, "title").as_deref(),
        Some("Rejoindre Acme")
    );
    assert_eq!(
        element_text(&page.text, "role").as_deref(),
        Some("gestionnaires")
    );
    assert_eq!(
        element_text(&short.text, "password-error").as_deref(),
        Some("Assurez-vous que ce champ comporte au moins 8 caractères.")
    );
    assert_eq!(
        element_text(&mismatch.text, "password_confirmation-error").as_deref(),
        Some("Les deux mots de passe ne correspondent pas.")
    );
    assert_eq!(welcome.status, 200, "{}", welcome.text);
    assert_eq!(
        element_text(&welcome.text, "title").as_deref(),
        Some("Bienvenue dans Acme")
    );
    assert_eq!(invalid.status, 400);
    assert_eq!(
        element_text(&invalid.text, "title").as_deref(),
        Some("Invitation invalide ou expirée.")
    );
}

async fn json_bodies_keep_their_json_answers(app: TestApp) {
    let token = invited(&app, "Acme", "guest@example.com").await;

    let refused = app
        .post(
            "/invitations/accept/",
            None,
            &json!({"token": token, "password": "short", "first_name": "Ada", "last_name": "Lovelace"}),
        )
        .await;
    let other_type = app
        .send(
            app.request(Method::POST, "/invitations/accept/", None)
                .header(CONTENT_TYPE, "text/plain")
                .body("token=x"),
        )
        .await;

    assert_eq!(refused.status, 400);
    assert_eq!(refused.header("content-type"), Some("application/json"));
    assert_eq!(
        refused.body,
        json!({"password": ["Ensure this field has at least 8 characters."]})
    );
    assert_eq!(other_type.status, 415, "{}", other_type.text);
}

/// A person who opens the link or sends the form while the database is away reads a
/// page (English or French) with the API's status, not the API's JSON.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_outage_shows_a_page_not_json() {
    let proxy = DatabaseProxy::start().await;
    let app = spawn_app_with_options(
        Backend::Postgres,
        SpawnOptions {
            postgres_server: Some(proxy.server_url()),
            ..SpawnOptions::default()
        },
    )
    .await;
    let token = invited(&app, "Acme Mail", "outage@example.com").await;

    proxy.cut();
    let page = view(&app, &format!("/invitations/accept?token={token}"), None).await;
    let form = submit(&app, &filled(&token, "a long password"), Some("fr")).await;
    proxy.restore();

    for (reply, title) in [
        (&page, "The service cannot answer right now."),
        (&form, "Le service ne peut pas répondre pour le moment."),
    ] {
        assert_eq!(reply.status, 503, "{}", reply.text);
        assert_eq!(
            reply.header("content-type"),
            Some("text/html; charset=utf-8")
        );
        assert_eq!(reply.header("content-security-policy"), Some(PAGE_CSP));
        assert_eq!(reply.header("cache-control"), Some("no-store"));
        assert_eq!(element_text(&reply.text, "title").as_deref(), Some(title));
        assert!(!reply.text.contains("detail"), "{}", reply.text);
    }
}
