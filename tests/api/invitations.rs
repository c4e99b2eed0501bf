//! Invitations: invite, list, resend, revoke, accept (CONTRACT §5).

use futures::future::join_all;
use orgs_tests::{TestApp, id_of, on_both_backends};
use serde_json::{Value, json};

on_both_backends!(
    an_invitation_is_created_mailed_and_accepted_once,
    invitation_errors_use_the_contract_messages,
    identifiers_compare_case_insensitively_on_the_domain,
    the_list_is_newest_first_with_status_and_filter,
    resending_replaces_the_token_and_revoking_ends_it,
    acceptance_errors_are_reported_per_field,
    an_invalid_token_reads_the_same_in_french_as_on_the_page,
    twenty_parallel_identical_invitations_make_one,
    ten_parallel_acceptances_of_one_token_make_one_user,
);

fn invite_path(organization: i64) -> String {
    format!("/organizations/{organization}/invite_user/")
}

async fn accept(app: &TestApp, token: &str) -> orgs_tests::Reply {
    app.post(
        "/invitations/accept/",
        None,
        &json!({"token": token, "password": "long enough", "first_name": "Ada", "last_name": "Lovelace"}),
    )
    .await
}

async fn an_invitation_is_created_mailed_and_accepted_once(app: TestApp) {
    let child = app.create_child("Child").await;

    let invited = app
        .post(
            &invite_path(child),
            Some(&app.admin_key),
            &json!({"identifier": "new@example.com", "role": "managers", "expires_in_days": 3}),
        )
        .await;
    let token = app.token_sent_to("new@example.com").await;
    let accepted = accept(&app, &token).await;
    let again = accept(&app, &token).await;

    assert_eq!(invited.status, 201, "{}", invited.text);
    assert_eq!(invited.body["identifier"], "new@example.com");
    assert_eq!(invited.body["role"], "managers");
    assert!(invited.body["expires_at"].is_string());
    let url = invited.body["url"].as_str().expect("url");
    assert!(url.starts_with(&format!("/organizations/{child}/invitations/")));
    let email = app.mailer.sent().pop().expect("an e-mail");
    assert!(
        email
            .text
            .contains("http://orgs.test/invitations/accept?token=")
    );
    assert!(email.text.contains("Child"));
    assert_eq!(accepted.status, 201, "{}", accepted.text);
    assert_eq!(accepted.body["identifier"], "new@example.com");
    assert_eq!(
        accepted.body["organization"],
        format!("/organizations/{child}/")
    );
    assert_eq!(accepted.body["role"], "managers");
    let key = accepted.body["api_key"].as_str().expect("an API key");
    let me = app.get("/me/", key).await;
    assert_eq!(me.status, 200);
    assert_eq!(me.body["role"], "managers");
    assert_eq!(me.body["organization"], format!("/organizations/{child}/"));
    assert_eq!(again.status, 400);
    assert_eq!(
        again.body,
        json!({"token": ["Invalid or expired invitation."]})
    );
}

async fn invitation_errors_use_the_contract_messages(app: TestApp) {
    let root = app.root_id;
    app.add_user(root, "member@example.com", "users").await;
    let first = app
        .post(
            &invite_path(root),
            Some(&app.admin_key),
            &json!({"identifier": "twice@example.com"}),
        )
        .await;
    assert_eq!(first.status, 201);

    let cases = [
        (
            json!({}),
            json!({"identifier": ["This field is required."]}),
        ),
        (
            json!({"identifier": ""}),
            json!({"identifier": ["This field may not be blank."]}),
        ),
        (
            json!({"identifier": "nope"}),
            json!({"identifier": ["Enter a valid email address."]}),
        ),
        (
            json!({"identifier": "x@example.com", "role": "owners"}),
            json!({"role": ["\"owners\" is not a valid choice."]}),
        ),
        (
            json!({"identifier": "member@example.com"}),
            json!({"identifier": ["A user with this identifier already exists."]}),
        ),
        (
            json!({"identifier": "twice@example.com"}),
            json!({"identifier": ["This identifier has already been invited."]}),
        ),
        (
            json!({"identifier": "x@example.com", "expires_in_days": 31}),
            json!({"expires_in_days": ["Ensure this value is less than or equal to 30."]}),
        ),
    ];

    for (body, expected) in cases {
        let reply = app
            .post(&invite_path(root), Some(&app.admin_key), &body)
            .await;

        assert_eq!(reply.status, 400, "{body}: {}", reply.text);
        assert_eq!(reply.body, expected, "{body}");
    }
}

async fn identifiers_compare_case_insensitively_on_the_domain(app: TestApp) {
    let root = app.root_id;

    let first = app
        .post(
            &invite_path(root),
            Some(&app.admin_key),
            &json!({"identifier": "Jane@Example.COM"}),
        )
        .await;
    let same = app
        .post(
            &invite_path(root),
            Some(&app.admin_key),
            &json!({"identifier": "Jane@example.com"}),
        )
        .await;
    let other_local_case = app
        .post(
            &invite_path(root),
            Some(&app.admin_key),
            &json!({"identifier": "jane@example.com"}),
        )
        .await;

    assert_eq!(first.status, 201);
    assert_eq!(first.body["identifier"], "Jane@example.com");
    assert_eq!(same.status, 400, "{}", same.text);
    assert_eq!(other_local_case.status, 201);
}

async fn the_list_is_newest_first_with_status_and_filter(app: TestApp) {
    let root = app.root_id;
    for address in ["a@example.com", "b@example.com", "c@example.com"] {
        let reply = app
            .post(
                &invite_path(root),
                Some(&app.admin_key),
                &json!({"identifier": address}),
            )
            .await;
        assert_eq!(reply.status, 201);
    }
    let token = app.token_sent_to("b@example.com").await;
    assert_eq!(accept(&app, &token).await.status, 201);

    let all = app
        .get(
            &format!("/organizations/{root}/invitations/"),
            &app.admin_key,
        )
        .await;
    let pending = app
        .get(
            &format!("/organizations/{root}/invitations/?status=pending"),
            &app.admin_key,
        )
        .await;
    let bad = app
        .get(
            &format!("/organizations/{root}/invitations/?status=done"),
            &app.admin_key,
        )
        .await;

    assert_eq!(all.status, 200, "{}", all.text);
    let identifiers: Vec<&str> = all.body["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|invitation| invitation["identifier"].as_str().expect("identifier"))
        .collect();
    assert_eq!(
        identifiers,
        ["c@example.com", "b@example.com", "a@example.com"]
    );
    let accepted = &all.body["results"][1];
    assert_eq!(accepted["status"], "accepted");
    assert_eq!(accepted["role"], "users");
    assert!(
        accepted["invited_by"]
            .as_str()
            .is_some_and(|url| url.starts_with(&format!("/organizations/{root}/users/")))
    );
    assert!(accepted["created_at"].is_string() && accepted["expires_at"].is_string());
    assert_eq!(pending.body["count"], 2);
    assert_eq!(bad.status, 400);
    assert!(bad.body["status"].is_array());
}

async fn resending_replaces_the_token_and_revoking_ends_it(app: TestApp) {
    let root = app.root_id;
    let invited = app
        .post(
            &invite_path(root),
            Some(&app.admin_key),
            &json!({"identifier": "r@example.com"}),
        )
        .await;
    let url = invited.body["url"].as_str().expect("url").to_owned();
    let old_token = app.token_sent_to("r@example.com").await;

    let resent = app
        .post(&format!("{url}resend/"), Some(&app.admin_key), &json!({}))
        .await;
    // Wait for the second e-mail.
    for _ in 0..250 {
        if app.emails_to("r@example.com") >= 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let new_token = app.token_sent_to("r@example.com").await;
    let with_old = accept(&app, &old_token).await;
    let revoked = app.delete(&url, &app.admin_key).await;
    let revoked_again = app.delete(&url, &app.admin_key).await;
    let resend_revoked = app
        .post(&format!("{url}resend/"), Some(&app.admin_key), &json!({}))
        .await;
    let with_new = accept(&app, &new_token).await;

    assert_eq!(resent.status, 202, "{}", resent.text);
    assert_eq!(resent.body["status"], "pending");
    assert_ne!(old_token, new_token);
    assert_eq!(with_old.status, 400);
    assert_eq!(revoked.status, 204, "{}", revoked.text);
    assert_eq!(revoked_again.status, 409);
    assert!(revoked_again.body["detail"].is_string());
    assert_eq!(resend_revoked.status, 409);
    assert_eq!(with_new.status, 400);
    let listed = app
        .get(
            &format!("/organizations/{root}/invitations/"),
            &app.admin_key,
        )
        .await;
    assert_eq!(listed.body["results"][0]["status"], "revoked");
    assert_eq!(
        id_of(&listed.body["results"][0]["url"]),
        id_of(&Value::from(url))
    );
}

async fn acceptance_errors_are_reported_per_field(app: TestApp) {
    let reply = app
        .post(
            "/invitations/accept/",
            None,
            &json!({"token": "unknown", "password": "short", "first_name": "", "last_name": "x".repeat(51)}),
        )
        .await;
    let unknown = accept(&app, "unknown-token").await;

    assert_eq!(reply.status, 400);
    assert_eq!(
        reply.body,
        json!({
            "password": ["Ensure this field has at least 8 characters."],
            "first_name": ["This field may not be blank."],
            "last_name": ["Ensure this field has no more than 50 characters."],
        })
    );
    assert_eq!(
        unknown.body,
        json!({"token": ["Invalid or expired invitation."]})
    );
}

async fn twenty_parallel_identical_invitations_make_one(app: TestApp) {
    let path = invite_path(app.root_id);
    let body = json!({"identifier": "race@example.com"});

    let replies = join_all((0..20).map(|_| app.post(&path, Some(&app.admin_key), &body))).await;

    // The others are refused as already invited, or throttled by the recipient's
    // allowance (5 an hour) while the winner holds it.
    let created = replies.iter().filter(|reply| reply.status == 201).count();
    let refused = replies
        .iter()
        .filter(|reply| reply.status == 400 || reply.status == 429)
        .count();
    assert_eq!((created, refused), (1, 19));
    let listed = app
        .get(
            &format!("/organizations/{}/invitations/", app.root_id),
            &app.admin_key,
        )
        .await;
    assert_eq!(listed.body["count"], 1);
}

async fn ten_parallel_acceptances_of_one_token_make_one_user(app: TestApp) {
    let invited = app
        .post(
            &invite_path(app.root_id),
            Some(&app.admin_key),
            &json!({"identifier": "once@example.com"}),
        )
        .await;
    assert_eq!(invited.status, 201);
    let token = app.token_sent_to("once@example.com").await;

    let replies = join_all((0..10).map(|_| accept(&app, &token))).await;

    let created = replies.iter().filter(|reply| reply.status == 201).count();
    assert_eq!(
        created,
        1,
        "{:?}",
        replies.iter().map(|r| r.status).collect::<Vec<_>>()
    );
}

async fn an_invalid_token_reads_the_same_in_french_as_on_the_page(app: TestApp) {
    let body = json!({
        "token": "no-such-token",
        "password": "a long password",
        "first_name": "Ada",
        "last_name": "Lovelace",
    });

    let reply = app
        .send(
            app.request(reqwest::Method::POST, "/invitations/accept/", None)
                .header("Accept-Language", "fr")
                .json(&body),
        )
        .await;

    assert_eq!(reply.status, 400, "{}", reply.text);
    assert_eq!(
        reply.body,
        json!({"token": ["Invitation invalide ou expirée."]})
    );
}
