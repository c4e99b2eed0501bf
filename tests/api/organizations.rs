//! Organizations: visibility, the role table, create-child rules, updates, archiving
//! (CONTRACT §4).

use orgs_tests::{TestApp, id_of, on_both_backends};
use serde_json::{Value, json};

on_both_backends!(
    the_first_administrator_sees_the_root_organization_as_in_the_seed,
    creating_a_child_returns_the_seed_representation_with_defaults,
    the_list_shows_u_first_then_its_children,
    the_create_child_rules_apply_in_order_with_their_messages,
    every_field_error_of_a_create_is_reported_together,
    each_role_gets_what_the_table_says,
    organizations_outside_the_tree_are_not_found_for_every_method,
    put_and_patch_update_and_merge_settings,
    the_parent_cannot_change,
    an_external_optout_message_needs_the_flag,
    a_stale_if_match_is_refused_and_changes_nothing,
    archiving_hides_the_child_and_locks_out_its_users,
    u_itself_cannot_be_deleted,
    restoring_brings_back_users_and_pending_invitations,
    a_child_administrator_cannot_create_children,
);

async fn the_first_administrator_sees_the_root_organization_as_in_the_seed(app: TestApp) {
    let root = app.root_id;

    let reply = app
        .get(&format!("/organizations/{root}/"), &app.admin_key)
        .await;

    assert_eq!(reply.status, 200, "{}", reply.text);
    let body = reply.body;
    assert_eq!(body["url"], format!("/organizations/{root}/"));
    assert_eq!(body["parent"], Value::Null);
    assert_eq!(body["contact_email"], "");
    assert_eq!(
        body["settings"],
        json!({"nickname": "", "notify_message_status": true, "notify_optouts": false, "external_optout_message": ""})
    );
    assert_eq!(body["can_attach_files"], false);
    assert_eq!(body["can_external_optout"], false);
    assert_eq!(
        body["_links"],
        json!({
            "opt_outs": {"href": format!("/organizations/{root}/opt_outs/")},
            "children": {"href": format!("/organizations/{root}/children/")},
            "invite_user": {"href": format!("/organizations/{root}/invite_user/")},
        })
    );
    assert!(reply.headers.contains_key("etag"));
}

async fn creating_a_child_returns_the_seed_representation_with_defaults(app: TestApp) {
    let root = app.root_id;

    let reply = app
        .post(
            "/organizations/",
            Some(&app.admin_key),
            &json!({
                "name": "Child organization",
                "contact_email": "child@example.com",
                "parent": format!("http://example.com/organizations/{root}/"),
                "settings": {"nickname": "nickname", "notify_message_status": "false"},
                "can_attach_files": true,
                "url": "/organizations/999/",
            }),
        )
        .await;

    assert_eq!(reply.status, 201, "{}", reply.text);
    let child = id_of(&reply.body["url"]);
    assert_eq!(
        reply.header("location"),
        Some(format!("/organizations/{child}/").as_str())
    );
    assert_eq!(reply.body["name"], "Child organization");
    assert_eq!(reply.body["contact_email"], "child@example.com");
    assert_eq!(reply.body["parent"], format!("/organizations/{root}/"));
    assert_eq!(
        reply.body["settings"],
        json!({"nickname": "nickname", "notify_message_status": false, "notify_optouts": false, "external_optout_message": ""})
    );
    // Read-only fields are ignored.
    assert_eq!(reply.body["can_attach_files"], false);
    let fetched = app
        .get(&format!("/organizations/{child}/"), &app.admin_key)
        .await;
    assert_eq!(fetched.body, reply.body);
}

async fn the_list_shows_u_first_then_its_children(app: TestApp) {
    let first = app.create_child("First").await;
    let second = app.create_child("Second").await;

    let reply = app.get("/organizations/", &app.admin_key).await;

    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.body["count"], 3);
    assert_eq!(reply.body["page_count"], 1);
    assert_eq!(reply.body["next"], Value::Null);
    assert_eq!(reply.body["previous"], Value::Null);
    let ids: Vec<i64> = reply.body["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|organization| id_of(&organization["url"]))
        .collect();
    assert_eq!(ids, vec![app.root_id, first, second]);

    let children = app
        .get(
            &format!("/organizations/{}/children/", app.root_id),
            &app.admin_key,
        )
        .await;
    assert_eq!(children.body["count"], 2);
    let grandchildren = app
        .get(&format!("/organizations/{first}/children/"), &app.admin_key)
        .await;
    assert_eq!(grandchildren.status, 200);
    assert_eq!(grandchildren.body["count"], 0);
    assert_eq!(grandchildren.body["page_count"], 1);
}

async fn create(app: &TestApp, key: &str, parent: Value) -> orgs_tests::Reply {
    app.post(
        "/organizations/",
        Some(key),
        &json!({"name": "X", "contact_email": "x@example.com", "parent": parent}),
    )
    .await
}

async fn the_create_child_rules_apply_in_order_with_their_messages(app: TestApp) {
    let root = app.root_id;
    let child = app.create_child("Child").await;
    let cases = [
        (Value::Null, "This field may not be blank."),
        (json!(""), "This field may not be blank."),
        (
            json!("/organizations/"),
            "Invalid hyperlink - No URL match.",
        ),
        (
            json!(format!("/organizations/{root}/children/")),
            "Invalid hyperlink - No URL match.",
        ),
        (json!("/me/"), "Invalid hyperlink - No URL match."),
        (
            json!("/organizations/99999/"),
            "Invalid hyperlink - Object does not exist.",
        ),
        (
            json!(format!("/organizations/{child}/")),
            "Parent organization must be your organization.",
        ),
    ];

    for (parent, message) in cases {
        let reply = create(&app, &app.admin_key, parent.clone()).await;

        assert_eq!(reply.status, 400, "{parent}: {}", reply.text);
        assert_eq!(reply.body, json!({"parent": [message]}), "{parent}");
    }
    let missing = app
        .post(
            "/organizations/",
            Some(&app.admin_key),
            &json!({"name": "X", "contact_email": "x@example.com"}),
        )
        .await;
    assert_eq!(
        missing.body,
        json!({"parent": ["This field may not be blank."]})
    );
}

async fn every_field_error_of_a_create_is_reported_together(app: TestApp) {
    let root = app.root_id;

    let reply = app
        .post(
            "/organizations/",
            Some(&app.admin_key),
            &json!({
                "name": "n".repeat(201),
                "contact_email": "not-an-email",
                "parent": format!("/organizations/{root}/"),
                "settings": {"nickname": "No!", "external_optout_message": "Bye"},
            }),
        )
        .await;

    assert_eq!(reply.status, 400, "{}", reply.text);
    assert_eq!(
        reply.body,
        json!({
            "name": ["Ensure this field has no more than 200 characters."],
            "contact_email": ["Enter a valid email address."],
            "settings": {
                "nickname": ["Nickname can only contain lowercase letters, numbers and dashes. It must be between 4 and 30 characters long"],
                "external_optout_message": ["External optout is not allowed, no need to provide a message"],
            },
        })
    );
    let required = app
        .post("/organizations/", Some(&app.admin_key), &json!({}))
        .await;
    assert_eq!(required.body["name"], json!(["This field is required."]));
    assert_eq!(
        required.body["contact_email"],
        json!(["This field is required."])
    );
}

async fn each_role_gets_what_the_table_says(app: TestApp) {
    let root = app.root_id;
    let child = app.create_child("Child").await;
    let other_child = app.create_child("Other").await;
    let pending = app
        .post(
            &format!("/organizations/{child}/invite_user/"),
            Some(&app.admin_key),
            &json!({"identifier": "pending@example.com"}),
        )
        .await;
    let invitation = pending.body["url"].as_str().expect("url").to_owned();
    app.add_user(child, "member@example.com", "users").await;
    let member = app
        .get(
            &format!("/organizations/{child}/users/?identifier=member@"),
            &app.admin_key,
        )
        .await
        .body["results"][0]["url"]
        .as_str()
        .expect("member url")
        .to_owned();
    // One column per row of the table of CONTRACT §4, on a child of U: get, children,
    // patch, create a child, delete, invite, list invitations, resend, list opt-outs,
    // record an opt-out, list members, change a role.
    let table = [
        (
            "administrators",
            [200, 200, 200, 201, 204, 201, 200, 202, 200, 201, 200, 200],
        ),
        (
            "managers",
            [200, 200, 403, 403, 403, 403, 403, 403, 200, 201, 200, 403],
        ),
        (
            "users",
            [200, 200, 403, 403, 403, 403, 403, 403, 403, 403, 403, 403],
        ),
        (
            "collaborators",
            [200, 200, 403, 403, 403, 403, 403, 403, 403, 403, 403, 403],
        ),
    ];

    for (index, (role, expected)) in table.into_iter().enumerate() {
        let key = app
            .add_user(root, &format!("{role}@example.com"), role)
            .await;
        let target = if role == "administrators" {
            other_child
        } else {
            child
        };

        let statuses = [
            app.get(&format!("/organizations/{child}/"), &key)
                .await
                .status,
            app.get(&format!("/organizations/{child}/children/"), &key)
                .await
                .status,
            app.patch(
                &format!("/organizations/{child}/"),
                &key,
                &json!({"name": "Renamed"}),
            )
            .await
            .status,
            create(&app, &key, json!(format!("/organizations/{root}/")))
                .await
                .status,
            app.delete(&format!("/organizations/{target}/"), &key)
                .await
                .status,
            app.post(
                &format!("/organizations/{child}/invite_user/"),
                Some(&key),
                &json!({"identifier": format!("invitee{index}@example.com")}),
            )
            .await
            .status,
            app.get(&format!("/organizations/{child}/invitations/"), &key)
                .await
                .status,
            app.post(&format!("{invitation}resend/"), Some(&key), &json!({}))
                .await
                .status,
            app.get(&format!("/organizations/{child}/opt_outs/"), &key)
                .await
                .status,
            app.post(
                &format!("/organizations/{child}/opt_outs/"),
                Some(&key),
                &json!({"address": format!("gone{index}@example.com")}),
            )
            .await
            .status,
            app.get(&format!("/organizations/{child}/users/"), &key)
                .await
                .status,
            app.patch(&member, &key, &json!({"role": "users"}))
                .await
                .status,
        ];

        assert_eq!(statuses, expected, "{role}");
    }
    let forbidden = app
        .patch(
            &format!("/organizations/{child}/"),
            &app.add_user(root, "late@example.com", "users").await,
            &json!({}),
        )
        .await;
    assert_eq!(
        forbidden.body,
        json!({"detail": "You do not have permission to perform this action."})
    );
}

async fn organizations_outside_the_tree_are_not_found_for_every_method(app: TestApp) {
    let child = app.create_child("Child").await;
    let sibling = app.create_child("Sibling").await;
    let child_admin = app
        .add_user(child, "child-admin@example.com", "administrators")
        .await;

    for path in [
        format!("/organizations/{}/", app.root_id),
        format!("/organizations/{sibling}/"),
        "/organizations/99999/".to_owned(),
    ] {
        let get = app.get(&path, &child_admin).await;
        let patch = app.patch(&path, &child_admin, &json!({"name": "x"})).await;
        let delete = app.delete(&path, &child_admin).await;

        assert_eq!(get.status, 404, "{path}");
        assert_eq!(get.body, json!({"detail": "Not found."}));
        assert_eq!(patch.status, 404, "{path}");
        assert_eq!(delete.status, 404, "{path}");
    }
    let own = app
        .get(&format!("/organizations/{child}/"), &child_admin)
        .await;
    assert_eq!(own.status, 200);
    let list = app.get("/organizations/", &child_admin).await;
    assert_eq!(list.body["count"], 1);
}

async fn put_and_patch_update_and_merge_settings(app: TestApp) {
    let child = app.create_child("Child").await;
    let path = format!("/organizations/{child}/");

    let patched = app
        .patch(
            &path,
            &app.admin_key,
            &json!({"settings": {"notify_optouts": true}}),
        )
        .await;
    let put = app
        .put(
            &path,
            &app.admin_key,
            &json!({"name": "Renamed", "contact_email": "new@example.com", "settings": {"nickname": "acme-1"}}),
        )
        .await;
    let put_missing = app
        .put(&path, &app.admin_key, &json!({"name": "Only"}))
        .await;

    assert_eq!(patched.status, 200, "{}", patched.text);
    assert_eq!(patched.body["settings"]["notify_optouts"], true);
    assert_eq!(patched.body["settings"]["notify_message_status"], true);
    assert_eq!(put.status, 200, "{}", put.text);
    assert_eq!(put.body["name"], "Renamed");
    assert_eq!(put.body["settings"]["nickname"], "acme-1");
    assert_eq!(put.body["settings"]["notify_optouts"], true);
    assert_eq!(put_missing.status, 400);
    assert_eq!(
        put_missing.body,
        json!({"contact_email": ["This field is required."]})
    );
}

async fn the_parent_cannot_change(app: TestApp) {
    let child = app.create_child("Child").await;
    let other = app.create_child("Other").await;
    let path = format!("/organizations/{child}/");

    let same = app
        .patch(
            &path,
            &app.admin_key,
            &json!({"parent": format!("/organizations/{}/", app.root_id)}),
        )
        .await;
    let changed = app
        .patch(
            &path,
            &app.admin_key,
            &json!({"parent": format!("/organizations/{other}/")}),
        )
        .await;

    assert_eq!(same.status, 200, "{}", same.text);
    assert_eq!(changed.status, 400);
    assert_eq!(
        changed.body,
        json!({"parent": ["This field cannot be changed."]})
    );
}

async fn an_external_optout_message_needs_the_flag(app: TestApp) {
    let path = format!("/organizations/{}/", app.root_id);

    let reply = app
        .patch(
            &path,
            &app.admin_key,
            &json!({"settings": {"external_optout_message": "Goodbye"}}),
        )
        .await;

    assert_eq!(reply.status, 400);
    assert_eq!(
        reply.body,
        json!({"settings": {"external_optout_message": ["External optout is not allowed, no need to provide a message"]}})
    );
}

async fn a_stale_if_match_is_refused_and_changes_nothing(app: TestApp) {
    let child = app.create_child("Child").await;
    let path = format!("/organizations/{child}/");
    let etag = app
        .get(&path, &app.admin_key)
        .await
        .header("etag")
        .expect("an ETag")
        .to_owned();

    let first = app
        .send(
            app.request(reqwest::Method::PATCH, &path, Some(&app.admin_key))
                .header("if-match", &etag)
                .json(&json!({"name": "First"})),
        )
        .await;
    let second = app
        .send(
            app.request(reqwest::Method::PATCH, &path, Some(&app.admin_key))
                .header("if-match", &etag)
                .json(&json!({"name": "Second"})),
        )
        .await;
    let delete = app
        .send(
            app.request(reqwest::Method::DELETE, &path, Some(&app.admin_key))
                .header("if-match", &etag),
        )
        .await;

    assert_eq!(first.status, 200, "{}", first.text);
    assert_eq!(second.status, 412, "{}", second.text);
    assert_eq!(delete.status, 412);
    let current = app.get(&path, &app.admin_key).await;
    assert_eq!(current.body["name"], "First");
    assert_ne!(current.header("etag"), Some(etag.as_str()));
}

async fn archiving_hides_the_child_and_locks_out_its_users(app: TestApp) {
    let child = app.create_child("Child").await;
    let member = app.add_user(child, "member@example.com", "users").await;
    let invited = app
        .post(
            &format!("/organizations/{child}/invite_user/"),
            Some(&app.admin_key),
            &json!({"identifier": "pending@example.com"}),
        )
        .await;
    assert_eq!(invited.status, 201);
    let token = app.token_sent_to("pending@example.com").await;

    let deleted = app
        .delete(&format!("/organizations/{child}/"), &app.admin_key)
        .await;

    assert_eq!(deleted.status, 204, "{}", deleted.text);
    assert_eq!(
        app.get(&format!("/organizations/{child}/"), &app.admin_key)
            .await
            .status,
        404
    );
    assert_eq!(
        app.get("/organizations/", &app.admin_key).await.body["count"],
        1
    );
    assert_eq!(app.get("/me/", &member).await.status, 401);
    let accepted = app
        .post(
            "/invitations/accept/",
            None,
            &json!({"token": token, "password": "long enough", "first_name": "A", "last_name": "B"}),
        )
        .await;
    assert_eq!(accepted.status, 400);
    assert_eq!(
        accepted.body,
        json!({"token": ["Invalid or expired invitation."]})
    );
    // The identifier of a user of an archived organization stays taken.
    let reinvite = app
        .post(
            &format!("/organizations/{}/invite_user/", app.root_id),
            Some(&app.admin_key),
            &json!({"identifier": "member@example.com"}),
        )
        .await;
    assert_eq!(
        reinvite.body,
        json!({"identifier": ["A user with this identifier already exists."]})
    );
}

async fn u_itself_cannot_be_deleted(app: TestApp) {
    let reply = app
        .delete(&format!("/organizations/{}/", app.root_id), &app.admin_key)
        .await;

    assert_eq!(reply.status, 403);
}

async fn a_child_administrator_cannot_create_children(app: TestApp) {
    let child = app.create_child("Child").await;
    let child_admin = app
        .add_user(child, "ca@example.com", "administrators")
        .await;

    let reply = create(
        &app,
        &child_admin,
        json!(format!("/organizations/{child}/")),
    )
    .await;

    assert_eq!(reply.status, 400);
    assert_eq!(
        reply.body,
        json!({"parent": ["Cannot be attached to a parent organization that already has a parent."]})
    );
}

async fn restoring_brings_back_users_and_pending_invitations(app: TestApp) {
    let child = app.create_child("Child").await;
    let member = app.add_user(child, "back@example.com", "managers").await;
    let invited = app
        .post(
            &format!("/organizations/{child}/invite_user/"),
            Some(&app.admin_key),
            &json!({"identifier": "later@example.com"}),
        )
        .await;
    assert_eq!(invited.status, 201);
    let token = app.token_sent_to("later@example.com").await;
    let deleted = app
        .delete(&format!("/organizations/{child}/"), &app.admin_key)
        .await;
    assert_eq!(deleted.status, 204);
    assert_eq!(app.get("/me/", &member).await.status, 401);

    app.restore(child).await;

    assert_eq!(app.get("/me/", &member).await.status, 200);
    assert_eq!(
        app.get(&format!("/organizations/{child}/"), &app.admin_key)
            .await
            .status,
        200
    );
    let accepted = app
        .post(
            "/invitations/accept/",
            None,
            &json!({"token": token, "password": "long enough", "first_name": "A", "last_name": "B"}),
        )
        .await;
    assert_eq!(accepted.status, 201, "{}", accepted.text);
}
