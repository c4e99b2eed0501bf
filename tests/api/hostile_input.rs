//! Hostile input (CONTRACT §9): NUL characters, over-long values and e-mail domains
//! that change under case folding are ordinary `400` field errors in both languages,
//! never a `5xx`, and nothing the API accepts can make a later read or list fail.

use orgs_tests::{Reply, TestApp, on_both_backends};
use reqwest::Method;
use serde_json::{Value, json};

on_both_backends!(
    a_contact_email_whose_domain_changes_under_case_folding_is_refused_and_breaks_nothing,
    a_nul_character_is_a_field_error_wherever_it_is_given,
    a_nul_character_in_a_filter_is_a_field_error_on_the_parameter,
    over_long_values_are_field_errors_never_server_errors,
    over_long_filters_and_headers_never_answer_server_errors,
);

/// `İ`: lower-cased, it becomes `i` followed by a combining dot (U+0307).
const FOLDING: &str = "ops@\u{130}nc.com";
const NUL_EN: &str = "Null characters are not allowed.";
const NUL_FR: &str = "Les caractères null ne sont pas autorisés.";
const EMAIL_EN: &str = "Enter a valid email address.";
const EMAIL_FR: &str = "Saisissez une adresse email valable.";

/// The messages of `field` in a `400` body (`settings.nickname` for nested ones).
fn messages(reply: &Reply, field: &str) -> Vec<String> {
    let mut value = &reply.body;
    for part in field.split('.') {
        value = &value[part];
    }
    value
        .as_array()
        .map(|list| {
            list.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

#[track_caller]
fn assert_field_error(reply: &Reply, field: &str, expected: &str) {
    assert_eq!(reply.status, 400, "{field}: {}", reply.text);
    assert_eq!(
        messages(reply, field),
        [expected],
        "{field}: {}",
        reply.text
    );
}

async fn send_fr(
    app: &TestApp,
    method: Method,
    path: &str,
    key: Option<&str>,
    body: &Value,
) -> Reply {
    let builder = app
        .request(method, path, key)
        .header("Accept-Language", "fr");
    let builder = if body.is_null() {
        builder
    } else {
        builder.json(body)
    };
    app.send(builder).await
}

/// Every list and read of the root and `child` answers `200`.
async fn assert_every_list_answers(app: &TestApp, child: i64) {
    let root = app.root_id;
    let mut paths = vec!["/organizations/".to_owned(), "/me/".to_owned()];
    for id in [root, child] {
        for sub in [
            "",
            "children/",
            "users/",
            "invitations/",
            "opt_outs/",
            "opt_outs/?format=csv",
        ] {
            paths.push(format!("/organizations/{id}/{sub}"));
        }
    }
    for path in paths {
        let reply = app.get(&path, &app.admin_key).await;
        assert_eq!(reply.status, 200, "{path}: {}", reply.text);
    }
}

/// Invites `identifier` into `organization` and returns the acceptance token.
async fn invitation_token(app: &TestApp, organization: i64, identifier: &str) -> String {
    let invited = app
        .post(
            &format!("/organizations/{organization}/invite_user/"),
            Some(&app.admin_key),
            &json!({"identifier": identifier}),
        )
        .await;
    assert_eq!(invited.status, 201, "{}", invited.text);
    app.token_sent_to(identifier).await
}

async fn a_contact_email_whose_domain_changes_under_case_folding_is_refused_and_breaks_nothing(
    app: TestApp,
) {
    let root = app.root_id;
    let child = app.create_child("Child").await;
    let child_admin = app
        .add_user(child, "boss@example.com", "administrators")
        .await;
    let child_path = format!("/organizations/{child}/");

    let patched = app
        .patch(
            &child_path,
            &child_admin,
            &json!({"contact_email": FOLDING}),
        )
        .await;
    let patched_fr = send_fr(
        &app,
        Method::PATCH,
        &child_path,
        Some(&child_admin),
        &json!({"contact_email": FOLDING}),
    )
    .await;
    let created = app
        .post(
            "/organizations/",
            Some(&app.admin_key),
            &json!({"name": "Other", "contact_email": FOLDING, "parent": format!("/organizations/{root}/")}),
        )
        .await;
    let invited = app
        .post(
            &format!("/organizations/{child}/invite_user/"),
            Some(&app.admin_key),
            &json!({"identifier": FOLDING}),
        )
        .await;
    let opted_out = send_fr(
        &app,
        Method::POST,
        &format!("/organizations/{child}/opt_outs/"),
        Some(&app.admin_key),
        &json!({"address": FOLDING}),
    )
    .await;
    let international = app
        .patch(
            &child_path,
            &child_admin,
            &json!({"contact_email": "ops@B\u{dc}CHER.de"}),
        )
        .await;

    assert_field_error(&patched, "contact_email", EMAIL_EN);
    assert_field_error(&patched_fr, "contact_email", EMAIL_FR);
    assert_field_error(&created, "contact_email", EMAIL_EN);
    assert_field_error(&invited, "identifier", EMAIL_EN);
    assert_field_error(&opted_out, "address", EMAIL_FR);
    assert_eq!(international.status, 200, "{}", international.text);
    assert_eq!(international.body["contact_email"], "ops@b\u{fc}cher.de");
    let listed = app.get("/organizations/", &app.admin_key).await;
    assert_eq!(listed.status, 200, "{}", listed.text);
    assert_eq!(listed.body["count"], 2);
    let read = app.get(&child_path, &child_admin).await;
    assert_eq!(read.status, 200, "{}", read.text);
    assert_eq!(read.body["contact_email"], "ops@b\u{fc}cher.de");
    assert_every_list_answers(&app, child).await;
    assert_eq!(app.delete(&child_path, &app.admin_key).await.status, 204);
}

async fn a_nul_character_is_a_field_error_wherever_it_is_given(app: TestApp) {
    let root = app.root_id;
    let child = app.create_child("Child").await;
    let child_path = format!("/organizations/{child}/");
    app.add_user(root, "member@example.com", "users").await;
    let token = invitation_token(&app, child, "new@example.com").await;
    let accept = |token: &str, first: &str, last: &str| json!({"token": token, "password": "correct horse battery", "first_name": first, "last_name": last});

    let login = app
        .post(
            "/auth/token/",
            None,
            &json!({"identifier": "a\0@example.com", "password": "x"}),
        )
        .await;
    let login_fr = send_fr(
        &app,
        Method::POST,
        "/auth/token/",
        None,
        &json!({"identifier": "member\0", "password": "pass\0word"}),
    )
    .await;
    let created = app
        .post(
            "/organizations/",
            Some(&app.admin_key),
            &json!({"name": "Acme\0", "contact_email": "a@example.com", "parent": format!("/organizations/{root}/")}),
        )
        .await;
    let renamed = send_fr(
        &app,
        Method::PATCH,
        &child_path,
        Some(&app.admin_key),
        &json!({"name": "Acme\0"}),
    )
    .await;
    let settings = app
        .patch(
            &child_path,
            &app.admin_key,
            &json!({"settings": {"nickname": "ab\0cd", "external_optout_message": "bye\0"}}),
        )
        .await;
    let invited = app
        .post(
            &format!("/organizations/{child}/invite_user/"),
            Some(&app.admin_key),
            &json!({"identifier": "other\0@example.com", "role": "users\0"}),
        )
        .await;
    let bad_first = app
        .post("/invitations/accept/", None, &accept(&token, "A\0", "B"))
        .await;
    let bad_last = send_fr(
        &app,
        Method::POST,
        "/invitations/accept/",
        None,
        &accept(&token, "A", "B\0"),
    )
    .await;
    let bad_token = app
        .post(
            "/invitations/accept/",
            None,
            &accept(&format!("{token}\0"), "A", "B"),
        )
        .await;
    let opted_out = app
        .post(
            &format!("/organizations/{child}/opt_outs/"),
            Some(&app.admin_key),
            &json!({"address": "gone\0@example.com", "origin": "api\0"}),
        )
        .await;
    let role = app
        .patch(
            &format!("/organizations/{root}/users/2/"),
            &app.admin_key,
            &json!({"role": "managers\0"}),
        )
        .await;
    let accepted = app
        .post(
            "/invitations/accept/",
            None,
            &accept(&token, "Ada", "Lovelace"),
        )
        .await;

    assert_field_error(&login, "identifier", NUL_EN);
    assert_field_error(&login_fr, "identifier", NUL_FR);
    assert_field_error(&login_fr, "password", NUL_FR);
    assert_field_error(&created, "name", NUL_EN);
    assert_field_error(&renamed, "name", NUL_FR);
    assert_field_error(&settings, "settings.nickname", NUL_EN);
    assert_field_error(&settings, "settings.external_optout_message", NUL_EN);
    assert_field_error(&invited, "identifier", NUL_EN);
    assert_field_error(&invited, "role", NUL_EN);
    assert_field_error(&bad_first, "first_name", NUL_EN);
    assert_field_error(&bad_last, "last_name", NUL_FR);
    assert_field_error(&bad_token, "token", NUL_EN);
    assert_field_error(&opted_out, "address", NUL_EN);
    assert_field_error(&opted_out, "origin", NUL_EN);
    assert_field_error(&role, "role", NUL_EN);
    // None of the refusals used the token.
    assert_eq!(accepted.status, 201, "{}", accepted.text);
    assert_every_list_answers(&app, child).await;
}

async fn a_nul_character_in_a_filter_is_a_field_error_on_the_parameter(app: TestApp) {
    let root = app.root_id;
    let child = app.create_child("Child").await;
    let cases = [
        (
            format!("/organizations/{root}/users/?identifier=a%00b"),
            "identifier",
        ),
        (
            format!("/organizations/{root}/users/?role=users%00"),
            "role",
        ),
        (
            format!("/organizations/{child}/opt_outs/?address=a%00%40example.com"),
            "address",
        ),
        (
            format!("/organizations/{child}/opt_outs/?format=csv&address=%00"),
            "address",
        ),
        (
            format!("/organizations/{child}/opt_outs/?origin=api%00"),
            "origin",
        ),
        (
            format!("/organizations/{child}/invitations/?status=pending%00"),
            "status",
        ),
    ];

    for (path, parameter) in &cases {
        let english = app.get(path, &app.admin_key).await;
        let french = send_fr(&app, Method::GET, path, Some(&app.admin_key), &Value::Null).await;

        assert_field_error(&english, parameter, NUL_EN);
        assert_field_error(&french, parameter, NUL_FR);
    }
    assert_every_list_answers(&app, child).await;
}

async fn over_long_values_are_field_errors_never_server_errors(app: TestApp) {
    let root = app.root_id;
    let child = app.create_child("Child").await;
    let child_path = format!("/organizations/{child}/");
    let long = "a".repeat(3000);
    let long_email = format!("{long}@example.com");
    let token = invitation_token(&app, child, "new@example.com").await;
    app.set_can_external_optout(child, true).await;

    let login = app
        .post(
            "/auth/token/",
            None,
            &json!({"identifier": long, "password": long}),
        )
        .await;
    let login_password = app
        .post(
            "/auth/token/",
            None,
            &json!({"identifier": "admin@localhost", "password": long}),
        )
        .await;
    let everything = json!({
        "name": long,
        "contact_email": long_email,
        "parent": long,
        "settings": {"nickname": long, "external_optout_message": long},
    });
    let created = app
        .post("/organizations/", Some(&app.admin_key), &everything)
        .await;
    let replaced = app.put(&child_path, &app.admin_key, &everything).await;
    let invited = app
        .post(
            &format!("/organizations/{child}/invite_user/"),
            Some(&app.admin_key),
            &json!({"identifier": long_email, "role": long}),
        )
        .await;
    let accepted_long = app
        .post(
            "/invitations/accept/",
            None,
            &json!({"token": long, "password": long, "first_name": long, "last_name": long}),
        )
        .await;
    let accepted_long_token = app
        .post(
            "/invitations/accept/",
            None,
            &json!({"token": long, "password": "correct horse battery", "first_name": "A", "last_name": "B"}),
        )
        .await;
    let opted_out = app
        .post(
            &format!("/organizations/{child}/opt_outs/"),
            Some(&app.admin_key),
            &json!({"address": long_email, "origin": long}),
        )
        .await;
    let role = app
        .patch(
            &format!("/organizations/{root}/users/1/"),
            &app.admin_key,
            &json!({"role": long}),
        )
        .await;
    let accepted = app
        .post(
            "/invitations/accept/",
            None,
            &json!({"token": token, "password": "correct horse battery", "first_name": "Ada", "last_name": "Lovelace"}),
        )
        .await;

    assert_field_error(
        &login,
        "identifier",
        "Ensure this field has no more than 320 characters.",
    );
    assert_field_error(
        &login_password,
        "non_field_errors",
        "Unable to log in with provided credentials.",
    );
    for reply in [&created, &replaced] {
        assert_field_error(
            reply,
            "name",
            "Ensure this field has no more than 200 characters.",
        );
        assert_field_error(reply, "contact_email", EMAIL_EN);
        assert_field_error(reply, "parent", "Invalid hyperlink - No URL match.");
        assert_eq!(
            messages(reply, "settings.nickname").len(),
            1,
            "{}",
            reply.text
        );
        assert_field_error(
            reply,
            "settings.external_optout_message",
            "Ensure this field has no more than 1000 characters.",
        );
    }
    assert_field_error(&invited, "identifier", EMAIL_EN);
    assert_eq!(messages(&invited, "role").len(), 1, "{}", invited.text);
    assert_field_error(
        &accepted_long,
        "first_name",
        "Ensure this field has no more than 50 characters.",
    );
    assert_field_error(
        &accepted_long,
        "last_name",
        "Ensure this field has no more than 50 characters.",
    );
    assert_field_error(
        &accepted_long_token,
        "token",
        "Invalid or expired invitation.",
    );
    assert_field_error(&opted_out, "address", EMAIL_EN);
    assert_eq!(
        messages(&opted_out, "origin").len(),
        1,
        "{}",
        opted_out.text
    );
    assert_eq!(messages(&role, "role").len(), 1, "{}", role.text);
    assert_eq!(accepted.status, 201, "{}", accepted.text);
    assert_every_list_answers(&app, child).await;
}

async fn over_long_filters_and_headers_never_answer_server_errors(app: TestApp) {
    let root = app.root_id;
    let child = app.create_child("Child").await;
    let child_path = format!("/organizations/{child}/");
    let long = "a".repeat(3000);
    let too_long = "Ensure this field has no more than 320 characters.";
    let too_long_fr = "Assurez-vous que ce champ comporte au plus 320 caractères.";
    let filters = [
        (
            format!("/organizations/{root}/users/?identifier={long}"),
            "identifier",
        ),
        (format!("/organizations/{root}/users/?role={long}"), "role"),
        (
            format!("/organizations/{child}/opt_outs/?address={long}"),
            "address",
        ),
        (
            format!("/organizations/{child}/opt_outs/?format=csv&address={long}"),
            "address",
        ),
        (
            format!("/organizations/{child}/opt_outs/?origin={long}"),
            "origin",
        ),
        (
            format!("/organizations/{child}/invitations/?status={long}"),
            "status",
        ),
    ];

    for (path, parameter) in &filters {
        let english = app.get(path, &app.admin_key).await;
        let french = send_fr(&app, Method::GET, path, Some(&app.admin_key), &Value::Null).await;

        assert_field_error(&english, parameter, too_long);
        assert_field_error(&french, parameter, too_long_fr);
    }
    let longest = app
        .get(
            &format!(
                "/organizations/{root}/users/?identifier={}",
                "a".repeat(320)
            ),
            &app.admin_key,
        )
        .await;
    let wildcards = app
        .get(
            &format!("/organizations/{root}/users/?identifier=%25_%5C"),
            &app.admin_key,
        )
        .await;
    let stale = format!("\"{}\"", "1".repeat(3000));
    let patched = app
        .send(
            app.request(Method::PATCH, &child_path, Some(&app.admin_key))
                .header("If-Match", &stale)
                .json(&json!({"name": "Renamed"})),
        )
        .await;
    let deleted = app
        .send(
            app.request(Method::DELETE, &child_path, Some(&app.admin_key))
                .header("If-Match", format!("W/{stale}")),
        )
        .await;
    let language = app
        .send(
            app.request(Method::GET, "/organizations/999/", Some(&app.admin_key))
                .header("Accept-Language", format!("{}fr", "de;q=0.9,".repeat(300))),
        )
        .await;
    let bearer = app
        .send(app.request(Method::GET, "/me/", Some(&long)))
        .await;

    assert_eq!(longest.status, 200, "{}", longest.text);
    assert_eq!(longest.body["count"], 0);
    assert_eq!(wildcards.status, 200, "{}", wildcards.text);
    assert_eq!(wildcards.body["count"], 0);
    assert_eq!(patched.status, 412, "{}", patched.text);
    assert_eq!(deleted.status, 412, "{}", deleted.text);
    assert_eq!(language.status, 404, "{}", language.text);
    assert_eq!(language.body["detail"], "Not found.");
    assert_eq!(bearer.status, 401, "{}", bearer.text);
    assert_every_list_answers(&app, child).await;
}
