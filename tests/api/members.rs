//! Members: list, change a role, remove, and the last administrator (CONTRACT §5b).

use futures::future::join_all;
use orgs_tests::{TestApp, id_of, on_both_backends};
use serde_json::json;

on_both_backends!(
    members_are_listed_with_filters_by_administrators_and_managers,
    a_role_change_takes_effect_at_once,
    a_removed_member_is_locked_out_and_can_be_invited_again,
    the_last_administrator_of_a_root_stays,
    a_child_may_lose_its_last_administrator,
    two_administrators_demoting_each_other_leave_one,
);

fn users_path(organization: i64) -> String {
    format!("/organizations/{organization}/users/")
}

async fn member_url(app: &TestApp, organization: i64, identifier: &str) -> String {
    let listed = app
        .get(
            &format!("{}?identifier={identifier}", users_path(organization)),
            &app.admin_key,
        )
        .await;
    listed.body["results"][0]["url"]
        .as_str()
        .unwrap_or_else(|| panic!("{identifier} is a member: {}", listed.text))
        .to_owned()
}

async fn members_are_listed_with_filters_by_administrators_and_managers(app: TestApp) {
    let root = app.root_id;
    let manager = app.add_user(root, "Manager@Example.com", "managers").await;
    let user = app.add_user(root, "user@example.com", "users").await;

    let all = app.get(&users_path(root), &app.admin_key).await;
    let managers = app
        .get(&format!("{}?role=managers", users_path(root)), &manager)
        .await;
    let by_identifier = app
        .get(
            &format!("{}?identifier=MANAGER@", users_path(root)),
            &app.admin_key,
        )
        .await;
    let bad_role = app
        .get(&format!("{}?role=owners", users_path(root)), &app.admin_key)
        .await;
    let as_user = app.get(&users_path(root), &user).await;

    assert_eq!(all.status, 200, "{}", all.text);
    assert_eq!(all.body["count"], 3);
    let first = &all.body["results"][0];
    assert_eq!(first["identifier"], "admin@localhost");
    assert_eq!(first["role"], "administrators");
    assert_eq!(first["organization"], format!("/organizations/{root}/"));
    assert!(
        first["url"]
            .as_str()
            .is_some_and(|url| url.starts_with(&format!("/organizations/{root}/users/")))
    );
    assert_eq!(managers.body["count"], 1);
    assert_eq!(by_identifier.body["count"], 1);
    assert_eq!(bad_role.status, 400);
    assert!(bad_role.body["role"].is_array());
    assert_eq!(as_user.status, 403);
}

async fn a_role_change_takes_effect_at_once(app: TestApp) {
    let root = app.root_id;
    let key = app.add_user(root, "promoted@example.com", "users").await;
    let url = member_url(&app, root, "promoted").await;

    let before = app
        .patch(
            &format!("/organizations/{root}/"),
            &key,
            &json!({"name": "No"}),
        )
        .await;
    let changed = app
        .patch(&url, &app.admin_key, &json!({"role": "administrators"}))
        .await;
    let after = app
        .patch(
            &format!("/organizations/{root}/"),
            &key,
            &json!({"name": "Yes"}),
        )
        .await;
    let bad = app
        .patch(&url, &app.admin_key, &json!({"role": "owners"}))
        .await;

    assert_eq!(before.status, 403);
    assert_eq!(changed.status, 200, "{}", changed.text);
    assert_eq!(changed.body["role"], "administrators");
    assert_eq!(after.status, 200);
    assert_eq!(bad.status, 400);
}

async fn a_removed_member_is_locked_out_and_can_be_invited_again(app: TestApp) {
    let root = app.root_id;
    let key = app.add_user(root, "leaving@example.com", "managers").await;
    let session = app
        .post(
            "/auth/token/",
            None,
            &json!({"identifier": "leaving@example.com", "password": "correct horse battery"}),
        )
        .await;
    let session = session.body["token"].as_str().expect("a token").to_owned();
    let url = member_url(&app, root, "leaving").await;

    let removed = app.delete(&url, &app.admin_key).await;

    assert_eq!(removed.status, 204, "{}", removed.text);
    assert_eq!(app.get("/me/", &key).await.status, 401);
    assert_eq!(app.get("/me/", &session).await.status, 401);
    assert_eq!(app.delete(&url, &app.admin_key).await.status, 404);
    let invited = app
        .post(
            &format!("/organizations/{root}/invite_user/"),
            Some(&app.admin_key),
            &json!({"identifier": "leaving@example.com"}),
        )
        .await;
    assert_eq!(invited.status, 201, "{}", invited.text);
}

async fn the_last_administrator_of_a_root_stays(app: TestApp) {
    let root = app.root_id;
    let me = app.get("/me/", &app.admin_key).await;
    let url = me.body["url"].as_str().expect("url").to_owned();

    let demoted = app
        .patch(&url, &app.admin_key, &json!({"role": "managers"}))
        .await;
    let removed = app.delete(&url, &app.admin_key).await;
    let french = app
        .send(
            app.request(reqwest::Method::DELETE, &url, Some(&app.admin_key))
                .header("accept-language", "fr"),
        )
        .await;

    for reply in [&demoted, &removed] {
        assert_eq!(reply.status, 409, "{}", reply.text);
        assert_eq!(
            reply.body,
            json!({"detail": "An organization must keep at least one administrator."})
        );
    }
    assert_eq!(french.status, 409);
    assert_ne!(french.body, removed.body);
    assert_eq!(
        app.get(&users_path(root), &app.admin_key).await.body["count"],
        1
    );
}

async fn a_child_may_lose_its_last_administrator(app: TestApp) {
    let child = app.create_child("Child").await;
    app.add_user(child, "only@example.com", "administrators")
        .await;
    let url = member_url(&app, child, "only").await;

    let removed = app.delete(&url, &app.admin_key).await;

    assert_eq!(removed.status, 204, "{}", removed.text);
    assert_eq!(id_of(&json!(format!("/organizations/{child}/"))), child);
}

async fn two_administrators_demoting_each_other_leave_one(app: TestApp) {
    let root = app.root_id;
    let second = app
        .add_user(root, "second@example.com", "administrators")
        .await;
    let first_url = app.get("/me/", &app.admin_key).await.body["url"]
        .as_str()
        .expect("url")
        .to_owned();
    let second_url = member_url(&app, root, "second").await;

    let replies = join_all([
        app.patch(&second_url, &app.admin_key, &json!({"role": "users"})),
        app.patch(&first_url, &second, &json!({"role": "users"})),
    ])
    .await;

    let statuses: Vec<u16> = replies.iter().map(|reply| reply.status).collect();
    assert!(statuses.contains(&200), "{statuses:?}");
    assert!(
        !statuses.iter().all(|status| *status == 200),
        "{statuses:?}"
    );
    let administrators = app
        .get(
            &format!("{}?role=administrators", users_path(root)),
            &app.admin_key,
        )
        .await;
    let remaining = if administrators.status == 200 {
        administrators.body["count"].as_u64()
    } else {
        app.get(
            &format!("{}?role=administrators", users_path(root)),
            &second,
        )
        .await
        .body["count"]
            .as_u64()
    };
    assert_eq!(remaining, Some(1));
}
