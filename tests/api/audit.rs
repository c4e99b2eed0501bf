//! The audit log (CONTRACT §13): one event per change, with its actor, organization,
//! target and changes; none for a refused change; no secret; filters, pages, rights,
//! purge and retention.

use std::time::Duration as StdDuration;

use orgs_tests::{Backend, SpawnOptions, TestApp, id_of, on_both_backends, spawn_app_with_options};
use ports::inbound::{OperatorOrganization, OperatorUseCases as _, OperatorUser};
use reqwest::Method;
use serde_json::{Value, json};

on_both_backends!(
    the_first_start_records_the_root_and_its_administrator,
    creating_a_child_records_who_did_it_and_the_request,
    an_update_records_only_the_fields_that_changed,
    archiving_and_restoring_record_their_events,
    operator_commands_record_events_without_an_actor,
    invitations_record_created_resent_revoked_and_accepted,
    role_changes_and_removals_are_recorded,
    a_new_api_key_and_an_opt_out_are_recorded,
    refused_changes_record_nothing,
    no_event_holds_a_secret,
    events_are_filtered_and_paged_newest_first,
    bad_filter_values_are_refused_on_their_parameter_in_both_languages,
    only_administrators_see_an_organizations_events,
    events_are_erased_with_a_purged_organization,
    the_events_route_is_documented,
    thirty_parallel_lists_with_hostile_filters_never_fail,
);

async fn thirty_parallel_lists_with_hostile_filters_never_fail(app: TestApp) {
    let root = app.root_id;
    let paths: Vec<String> = (0..30)
        .map(|n| match n % 5 {
            0 => format!("{}?action=member.*&page_size=1000", events_path(root)),
            1 => format!("{}?since=%00", events_path(root)),
            2 => format!("{}?until={}", events_path(root), "9".repeat(3000)),
            3 => format!(
                "{}?actor=/organizations/{}/users/1/",
                events_path(root),
                "9".repeat(40)
            ),
            _ => format!("{}?page=99999999999999999999", events_path(root)),
        })
        .collect();

    let replies =
        futures::future::join_all(paths.iter().map(|path| app.get(path, &app.admin_key))).await;

    for (path, reply) in paths.iter().zip(&replies) {
        assert!(
            [200, 400, 404].contains(&reply.status),
            "{path}: {} {}",
            reply.status,
            reply.text
        );
    }
    assert_eq!(replies[0].status, 200);
    assert_eq!(replies[1].status, 400);
    assert_eq!(replies[2].status, 400);
}

async fn the_events_route_is_documented(app: TestApp) {
    let document = app.get("/openapi.json", &app.admin_key).await;

    let operation = &document.body["paths"]["/organizations/{id}/events/"]["get"];
    assert!(operation.is_object(), "{}", document.text);
    let parameters: Vec<&str> = operation["parameters"]
        .as_array()
        .expect("parameters")
        .iter()
        .filter_map(|parameter| parameter["name"].as_str())
        .collect();
    for name in [
        "id",
        "action",
        "actor",
        "since",
        "until",
        "page",
        "page_size",
    ] {
        assert!(parameters.contains(&name), "{name}: {parameters:?}");
    }
    for status in ["200", "400", "401", "403", "404"] {
        assert!(operation["responses"][status].is_object(), "{status}");
    }
}

fn events_path(organization: i64) -> String {
    format!("/organizations/{organization}/events/")
}

/// The events of `action` in `organization`'s list, newest first.
async fn events_of(app: &TestApp, organization: i64, action: &str) -> Vec<Value> {
    let reply = app
        .get(
            &format!(
                "{}?action={action}&page_size=1000",
                events_path(organization)
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

/// The one event of `action` in `organization`'s list.
async fn the_event(app: &TestApp, organization: i64, action: &str) -> Value {
    let events = events_of(app, organization, action).await;
    assert_eq!(events.len(), 1, "one {action}: {events:?}");
    events[0].clone()
}

/// Every event of `organization`'s list.
async fn all_events(app: &TestApp, organization: i64) -> Vec<Value> {
    let reply = app
        .get(
            &format!("{}?page_size=1000", events_path(organization)),
            &app.admin_key,
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    reply.body["results"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

async fn my_url(app: &TestApp, key: &str) -> String {
    let me = app.get("/me/", key).await;
    me.body["url"].as_str().expect("a member URL").to_owned()
}

/// The token of the `n`th e-mail to `to`, once it has arrived.
async fn nth_token_to(app: &TestApp, to: &str, n: usize) -> String {
    for _ in 0..500 {
        if app.emails_to(to) >= n {
            return app.token_sent_to(to).await;
        }
        tokio::time::sleep(StdDuration::from_millis(20)).await;
    }
    panic!("fewer than {n} e-mails reached {to}");
}

fn organization_url(id: i64) -> String {
    format!("/organizations/{id}/")
}

async fn the_first_start_records_the_root_and_its_administrator(app: TestApp) {
    let root = app.root_id;
    let admin = my_url(&app, &app.admin_key).await;

    let created = the_event(&app, root, "organization.created").await;
    let member = the_event(&app, root, "member.created").await;

    assert_eq!(created["actor"], Value::Null);
    assert_eq!(created["actor_identifier"], "operator");
    assert_eq!(created["organization"], organization_url(root));
    assert_eq!(created["target"], organization_url(root));
    assert_eq!(created["request_id"], Value::Null);
    assert_eq!(created["changes"]["name"], json!([null, "My organization"]));
    assert_eq!(member["actor"], Value::Null);
    assert_eq!(member["target"], admin);
    assert_eq!(
        member["changes"],
        json!({"identifier": [null, "admin@localhost"], "role": [null, "administrators"]})
    );
    assert!(created["id"].is_i64());
    assert!(created["created_at"].is_string());
}

async fn creating_a_child_records_who_did_it_and_the_request(app: TestApp) {
    let root = app.root_id;
    let admin = my_url(&app, &app.admin_key).await;

    let reply = app
        .send(
            app.request(Method::POST, "/organizations/", Some(&app.admin_key))
                .header("x-request-id", "audit-create-1")
                .json(&json!({
                    "name": "Audited child",
                    "contact_email": "audited@example.com",
                    "parent": organization_url(root),
                })),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    let child = id_of(&reply.body["url"]);

    let event = the_event(&app, child, "organization.created").await;
    assert_eq!(event["actor"], admin);
    assert_eq!(event["actor_identifier"], "admin@localhost");
    assert_eq!(event["organization"], organization_url(child));
    assert_eq!(event["target"], organization_url(child));
    assert_eq!(event["request_id"], "audit-create-1");
    assert_eq!(
        event["changes"],
        json!({
            "name": [null, "Audited child"],
            "contact_email": [null, "audited@example.com"],
            "parent": [null, organization_url(root)],
        })
    );
    // The root's list holds its child's event too.
    let in_root = events_of(&app, root, "organization.created").await;
    assert_eq!(in_root.len(), 2);
    assert_eq!(in_root[0]["organization"], organization_url(child));
}

async fn an_update_records_only_the_fields_that_changed(app: TestApp) {
    let child = app.create_child("Before").await;

    let changed = app
        .patch(
            &organization_url(child),
            &app.admin_key,
            &json!({"name": "After", "contact_email": "child@example.com", "settings": {"nickname": "nick-name"}}),
        )
        .await;
    let unchanged = app
        .patch(
            &organization_url(child),
            &app.admin_key,
            &json!({"name": "After"}),
        )
        .await;

    assert_eq!(changed.status, 200, "{}", changed.text);
    assert_eq!(unchanged.status, 200, "{}", unchanged.text);
    let event = the_event(&app, child, "organization.updated").await;
    assert_eq!(
        event["changes"],
        json!({"name": ["Before", "After"], "settings.nickname": ["", "nick-name"]})
    );
    assert_eq!(event["target"], organization_url(child));
    assert_eq!(event["organization"], organization_url(child));
}

async fn archiving_and_restoring_record_their_events(app: TestApp) {
    let root = app.root_id;
    let admin = my_url(&app, &app.admin_key).await;
    let child = app.create_child("Archived").await;

    let deleted = app.delete(&organization_url(child), &app.admin_key).await;
    assert_eq!(deleted.status, 204);
    let archived = the_event(&app, root, "organization.archived").await;
    app.restore(child).await;
    let restored = the_event(&app, root, "organization.restored").await;

    assert_eq!(archived["actor"], admin);
    assert_eq!(archived["organization"], organization_url(child));
    assert_eq!(archived["target"], organization_url(child));
    assert_eq!(restored["actor"], Value::Null);
    assert_eq!(restored["actor_identifier"], "operator");
    assert_eq!(restored["organization"], organization_url(child));
    assert_eq!(restored["request_id"], Value::Null);
}

async fn operator_commands_record_events_without_an_actor(app: TestApp) {
    let root = app.root_id;
    let operator = app.operator();

    let created = operator
        .create_organization(OperatorOrganization {
            name: "Operated".to_owned(),
            contact_email: "ops@example.com".to_owned(),
            parent: Some(domain::OrganizationId::new(root)),
            can_attach_files: false,
            can_external_optout: false,
        })
        .await
        .expect("created");
    let child = created.id.get();
    let (user, key) = operator
        .create_user(OperatorUser {
            organization: created.id,
            identifier: "made@example.com".to_owned(),
            role: domain::Role::Managers,
            password: None,
        })
        .await
        .expect("user created");
    operator
        .set_flags(created.id, Some(true), None)
        .await
        .expect("flags set");
    operator
        .set_flags(created.id, Some(true), None)
        .await
        .expect("flags set again");

    let organization = the_event(&app, child, "organization.created").await;
    let member = the_event(&app, child, "member.created").await;
    let flags = the_event(&app, child, "organization.flags_changed").await;
    assert_eq!(organization["actor"], Value::Null);
    assert_eq!(organization["actor_identifier"], "operator");
    assert_eq!(organization["organization"], organization_url(child));
    assert_eq!(
        member["target"],
        format!("/organizations/{child}/users/{}/", user.id)
    );
    assert_eq!(
        member["changes"],
        json!({"identifier": [null, "made@example.com"], "role": [null, "managers"]})
    );
    assert_eq!(flags["changes"], json!({"can_attach_files": [false, true]}));
    assert_eq!(flags["target"], organization_url(child));
    let everything = all_events(&app, root).await;
    assert_eq!(everything.len(), 5);
    assert!(
        !serde_json::to_string(&everything)
            .expect("json")
            .contains(key.expose())
    );
}

async fn invitations_record_created_resent_revoked_and_accepted(app: TestApp) {
    let root = app.root_id;
    let admin = my_url(&app, &app.admin_key).await;
    let child = app.create_child("Inviting").await;
    let invited = app
        .post(
            &format!("/organizations/{child}/invite_user/"),
            Some(&app.admin_key),
            &json!({"identifier": "joiner@example.com", "role": "managers"}),
        )
        .await;
    assert_eq!(invited.status, 201, "{}", invited.text);
    let invitation = invited.body["url"].as_str().expect("url").to_owned();
    let resent = app
        .post(
            &format!("{invitation}resend/"),
            Some(&app.admin_key),
            &json!({}),
        )
        .await;
    assert_eq!(resent.status, 202, "{}", resent.text);
    let token = nth_token_to(&app, "joiner@example.com", 2).await;
    let accepted = app
        .send(
            app.request(Method::POST, "/invitations/accept/", None)
                .header("x-request-id", "accept-req")
                .json(&json!({"token": token, "password": "correct horse battery", "first_name": "Jo", "last_name": "Iner"})),
        )
        .await;
    assert_eq!(accepted.status, 201, "{}", accepted.text);
    let new_key = accepted.body["api_key"].as_str().expect("key").to_owned();
    let other = app
        .post(
            &format!("/organizations/{child}/invite_user/"),
            Some(&app.admin_key),
            &json!({"identifier": "never@example.com"}),
        )
        .await;
    let other_url = other.body["url"].as_str().expect("url").to_owned();
    let revoked = app.delete(&other_url, &app.admin_key).await;
    assert_eq!(revoked.status, 204);

    let created = events_of(&app, child, "invitation.created").await;
    let resent_event = the_event(&app, child, "invitation.resent").await;
    let revoked_event = the_event(&app, child, "invitation.revoked").await;
    let accepted_event = the_event(&app, child, "invitation.accepted").await;

    assert_eq!(created.len(), 2);
    assert_eq!(created[1]["target"], invitation);
    assert_eq!(created[1]["actor"], admin);
    assert_eq!(created[1]["organization"], organization_url(child));
    assert_eq!(
        created[1]["changes"],
        json!({"identifier": [null, "joiner@example.com"], "role": [null, "managers"]})
    );
    assert_eq!(resent_event["target"], invitation);
    assert!(resent_event["changes"]["expires_at"].is_array());
    assert_eq!(revoked_event["target"], other_url);
    assert_eq!(revoked_event["changes"], json!({}));
    assert_eq!(accepted_event["actor"], my_url(&app, &new_key).await);
    assert_eq!(accepted_event["actor_identifier"], "joiner@example.com");
    assert_eq!(accepted_event["organization"], organization_url(child));
    assert_eq!(accepted_event["target"], invitation);
    assert_eq!(accepted_event["request_id"], "accept-req");
    assert_eq!(events_of(&app, root, "invitation.*").await.len(), 5);
}

async fn role_changes_and_removals_are_recorded(app: TestApp) {
    let root = app.root_id;
    let admin = my_url(&app, &app.admin_key).await;
    let key = app.add_user(root, "member@example.com", "users").await;
    let member = my_url(&app, &key).await;

    let promoted = app
        .patch(&member, &app.admin_key, &json!({"role": "managers"}))
        .await;
    let removed = app.delete(&member, &app.admin_key).await;

    assert_eq!(promoted.status, 200, "{}", promoted.text);
    assert_eq!(removed.status, 204);
    let changed = the_event(&app, root, "member.role_changed").await;
    let gone = the_event(&app, root, "member.removed").await;
    assert_eq!(changed["actor"], admin);
    assert_eq!(changed["target"], member);
    assert_eq!(changed["organization"], organization_url(root));
    assert_eq!(changed["changes"], json!({"role": ["users", "managers"]}));
    assert_eq!(gone["target"], member);
    assert_eq!(gone["actor"], admin);
    // The removed member's own event keeps who they were.
    let accepted = the_event(&app, root, "invitation.accepted").await;
    assert_eq!(accepted["actor_identifier"], "member@example.com");
}

async fn a_new_api_key_and_an_opt_out_are_recorded(app: TestApp) {
    let root = app.root_id;
    let key = app.add_user(root, "keeper@example.com", "managers").await;
    let keeper = my_url(&app, &key).await;

    let regenerated = app.post("/me/regen_secret/", Some(&key), &json!({})).await;
    let new_key = regenerated.body["api_key"].as_str().unwrap_or_default();
    let opted = app
        .post(
            &format!("/organizations/{root}/opt_outs/"),
            Some(new_key),
            &json!({"address": "reader@example.com", "origin": "web"}),
        )
        .await;

    assert_eq!(regenerated.status, 200, "{}", regenerated.text);
    assert_eq!(opted.status, 201, "{}", opted.text);
    let key_event = the_event(&app, root, "api_key.regenerated").await;
    let opt_out = the_event(&app, root, "opt_out.recorded").await;
    assert_eq!(key_event["actor"], keeper);
    assert_eq!(key_event["target"], keeper);
    assert_eq!(key_event["changes"], json!({}));
    assert_eq!(opt_out["actor"], keeper);
    assert_eq!(opt_out["target"], Value::Null);
    assert_eq!(
        opt_out["changes"],
        json!({"address": [null, "reader@example.com"], "origin": [null, "web"]})
    );
}

async fn refused_changes_record_nothing(app: TestApp) {
    let root = app.root_id;
    let child = app.create_child("Guarded").await;
    let before = all_events(&app, root).await.len();
    let admin = my_url(&app, &app.admin_key).await;

    let stale = app
        .send(
            app.request(
                Method::PATCH,
                &organization_url(child),
                Some(&app.admin_key),
            )
            .header("if-match", "\"999\"")
            .json(&json!({"name": "Never"})),
        )
        .await;
    let invalid = app
        .patch(
            &organization_url(child),
            &app.admin_key,
            &json!({"contact_email": "nope"}),
        )
        .await;
    let last_admin = app
        .patch(&admin, &app.admin_key, &json!({"role": "users"}))
        .await;
    let bad_parent = app
        .post(
            "/organizations/",
            Some(&app.admin_key),
            &json!({"name": "X", "contact_email": "x@example.com", "parent": "/organizations/999/"}),
        )
        .await;
    let invited = app
        .post(
            &format!("/organizations/{root}/invite_user/"),
            Some(&app.admin_key),
            &json!({"identifier": "admin@localhost"}),
        )
        .await;
    let root_delete = app.delete(&organization_url(root), &app.admin_key).await;

    assert_eq!(stale.status, 412, "{}", stale.text);
    assert_eq!(invalid.status, 400);
    assert_eq!(last_admin.status, 409);
    assert_eq!(bad_parent.status, 400);
    assert_eq!(invited.status, 400);
    assert_eq!(root_delete.status, 403);
    assert_eq!(all_events(&app, root).await.len(), before);
}

async fn no_event_holds_a_secret(app: TestApp) {
    let root = app.root_id;
    let child = app.create_child("Secretive").await;
    let mut secrets = vec![app.admin_key.clone(), "correct horse battery".to_owned()];
    let invited = app
        .post(
            &format!("/organizations/{child}/invite_user/"),
            Some(&app.admin_key),
            &json!({"identifier": "secret@example.com"}),
        )
        .await;
    let first_token = app.token_sent_to("secret@example.com").await;
    let invitation = invited.body["url"].as_str().expect("url").to_owned();
    app.post(
        &format!("{invitation}resend/"),
        Some(&app.admin_key),
        &json!({}),
    )
    .await;
    let second_token = nth_token_to(&app, "secret@example.com", 2).await;
    let accepted = app
        .post(
            "/invitations/accept/",
            None,
            &json!({"token": second_token, "password": "correct horse battery", "first_name": "S", "last_name": "E"}),
        )
        .await;
    let member_key = accepted.body["api_key"].as_str().expect("key").to_owned();
    let regenerated = app
        .post("/me/regen_secret/", Some(&member_key), &json!({}))
        .await;
    let session = app
        .post(
            "/auth/token/",
            None,
            &json!({"identifier": "secret@example.com", "password": "correct horse battery"}),
        )
        .await;
    secrets.extend([
        first_token,
        second_token,
        member_key,
        regenerated.body["api_key"]
            .as_str()
            .expect("key")
            .to_owned(),
        session.body["token"].as_str().expect("token").to_owned(),
    ]);

    let events = all_events(&app, root).await;

    assert!(events.len() >= 6);
    let text = serde_json::to_string(&events).expect("json");
    for secret in &secrets {
        assert!(!text.contains(secret.as_str()), "an event holds a secret");
    }
    for event in &events {
        let fields = event["changes"].as_object().expect("an object");
        for field in fields.keys() {
            for key in ["password", "token", "api_key", "key", "secret", "hash"] {
                assert!(!field.contains(key), "{field}");
            }
        }
    }
}

async fn events_are_filtered_and_paged_newest_first(app: TestApp) {
    let root = app.root_id;
    let admin = my_url(&app, &app.admin_key).await;
    tokio::time::sleep(StdDuration::from_millis(20)).await;
    let middle = chrono_now();
    tokio::time::sleep(StdDuration::from_millis(20)).await;
    app.create_child("One").await;
    app.create_child("Two").await;

    let first = app
        .get(
            &format!("{}?page_size=1", events_path(root)),
            &app.admin_key,
        )
        .await;
    let second = app
        .get(
            &format!("{}?page_size=1&page=2", events_path(root)),
            &app.admin_key,
        )
        .await;
    let by_admin = app
        .get(
            &format!("{}?actor={admin}", events_path(root)),
            &app.admin_key,
        )
        .await;
    let recent = app
        .get(
            &format!("{}?since={middle}", events_path(root)),
            &app.admin_key,
        )
        .await;
    let older = app
        .get(
            &format!("{}?until={middle}", events_path(root)),
            &app.admin_key,
        )
        .await;
    let organizations = events_of(&app, root, "organization.*").await;
    let members = events_of(&app, root, "member.*").await;

    assert_eq!(first.status, 200, "{}", first.text);
    assert_eq!(first.body["count"], 4);
    assert_eq!(first.body["page_count"], 4);
    assert_eq!(first.body["previous"], Value::Null);
    assert!(
        first.body["next"]
            .as_str()
            .is_some_and(|next| next.contains("page=2"))
    );
    let newest = first.body["results"][0]["id"].as_i64().expect("id");
    let next = second.body["results"][0]["id"].as_i64().expect("id");
    assert!(newest > next, "newest first");
    assert_eq!(
        first.body["results"][0]["changes"]["name"],
        json!([null, "Two"])
    );
    assert_eq!(by_admin.body["count"], 2);
    assert_eq!(recent.body["count"], 2, "{}", recent.text);
    assert_eq!(older.body["count"], 2, "{}", older.text);
    assert_eq!(organizations.len(), 3);
    assert_eq!(members.len(), 1);
}

/// Now, as a `?since=` value (UTC, microseconds, `Z`: nothing to escape in a URL).
fn chrono_now() -> String {
    let now: domain::Timestamp = std::time::SystemTime::now().into();
    now.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

async fn bad_filter_values_are_refused_on_their_parameter_in_both_languages(app: TestApp) {
    let root = app.root_id;

    let action = app
        .get(
            &format!("{}?action=member.exploded", events_path(root)),
            &app.admin_key,
        )
        .await;
    let prefix = app
        .get(
            &format!("{}?action=nothing.*", events_path(root)),
            &app.admin_key,
        )
        .await;
    let actor = app
        .get(&format!("{}?actor=/me/", events_path(root)), &app.admin_key)
        .await;
    let since = app
        .send(
            app.request(
                Method::GET,
                &format!("{}?since=yesterday&until=2025-13-01", events_path(root)),
                Some(&app.admin_key),
            )
            .header("accept-language", "fr"),
        )
        .await;
    let nul = app
        .get(&format!("{}?action=%00", events_path(root)), &app.admin_key)
        .await;
    let long = app
        .get(
            &format!("{}?actor={}", events_path(root), "x".repeat(3000)),
            &app.admin_key,
        )
        .await;

    assert_eq!(action.status, 400, "{}", action.text);
    assert_eq!(
        action.body["action"][0],
        "\"member.exploded\" is not a valid choice."
    );
    assert_eq!(prefix.status, 400);
    assert!(prefix.body["action"].is_array());
    assert_eq!(actor.status, 400);
    assert_eq!(actor.body["actor"][0], "Invalid hyperlink - No URL match.");
    assert_eq!(since.status, 400);
    assert!(
        since.body["since"][0]
            .as_str()
            .is_some_and(|text| text.starts_with("La date + heure n'a pas le bon format."))
    );
    assert!(since.body["until"].is_array());
    assert_eq!(nul.status, 400);
    assert!(nul.body["action"].is_array());
    assert_eq!(long.status, 400);
    assert!(long.body["actor"].is_array());
}

async fn only_administrators_see_an_organizations_events(app: TestApp) {
    let root = app.root_id;
    let child = app.create_child("Watched").await;
    let manager = app.add_user(root, "manager@example.com", "managers").await;
    let child_admin = app
        .add_user(child, "childadmin@example.com", "administrators")
        .await;

    let as_manager = app.get(&events_path(root), &manager).await;
    let child_admin_on_root = app.get(&events_path(root), &child_admin).await;
    let child_admin_on_child = app.get(&events_path(child), &child_admin).await;
    let missing = app.get(&events_path(999_999), &app.admin_key).await;
    let anonymous = app
        .send(app.request(Method::GET, &events_path(root), None))
        .await;
    let without_slash = app
        .get(&format!("/organizations/{root}/events"), &app.admin_key)
        .await;

    assert_eq!(as_manager.status, 403);
    assert_eq!(child_admin_on_root.status, 404);
    assert_eq!(
        child_admin_on_child.status, 200,
        "{}",
        child_admin_on_child.text
    );
    assert!(
        child_admin_on_child.body["results"]
            .as_array()
            .is_some_and(|events| events
                .iter()
                .all(|event| event["organization"] == organization_url(child)))
    );
    assert_eq!(missing.status, 404);
    assert_eq!(anonymous.status, 401);
    assert_eq!(without_slash.status, 200);
}

async fn events_are_erased_with_a_purged_organization(app: TestApp) {
    let root = app.root_id;
    let child = app.create_child("Doomed").await;
    app.delete(&organization_url(child), &app.admin_key).await;
    let kept = all_events(&app, root).await;
    assert!(
        kept.iter()
            .any(|event| event["organization"] == organization_url(child))
    );

    let purged = app
        .operator()
        .purge_organizations(
            domain::Timestamp::from(std::time::SystemTime::now()) + domain::Duration::hours(1),
        )
        .await;

    assert_eq!(purged, Ok(1));
    let left = all_events(&app, root).await;
    assert!(
        left.iter()
            .all(|event| event["organization"] != organization_url(child))
    );
    assert!(!left.is_empty());
}

mod retention {
    use super::*;

    /// With a retention shorter than the app's age, the first upkeep prunes the first
    /// start's events; the default keeps them.
    async fn events_past_the_retention_are_pruned(backend: Backend) {
        let app = spawn_app_with_options(
            backend,
            SpawnOptions {
                audit_retention: domain::Duration::milliseconds(1),
                ..SpawnOptions::default()
            },
        )
        .await;

        let mut left = usize::MAX;
        for _ in 0..100 {
            left = all_events(&app, app.root_id).await.len();
            if left == 0 {
                break;
            }
            tokio::time::sleep(StdDuration::from_millis(50)).await;
        }

        assert_eq!(left, 0);
        let kept = orgs_tests::spawn_app(backend).await;
        assert_eq!(all_events(&kept, kept.root_id).await.len(), 2);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        events_past_the_retention_are_pruned(Backend::Sqlite).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        events_past_the_retention_are_pruned(Backend::Postgres).await;
    }
}
