//! `GET /organizations/{id}/` reads the credential and the organization in one statement
//! (docs/benchmarks.md): every guarantee of the separate checks still holds, on every
//! process of the database at once.

use std::time::Duration;

use orgs_tests::{TestApp, on_both_backends};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

on_both_backends!(
    one_statement_reads_answer_as_the_separate_checks_did,
    another_instance_refuses_a_revoked_key_a_removed_member_and_an_archived_organization_at_once,
    hostile_credentials_and_ids_on_a_read_are_refused_and_thirty_parallel_reads_agree,
    a_read_through_one_statement_records_the_use_of_its_key,
);

async fn one_statement_reads_answer_as_the_separate_checks_did(app: TestApp) {
    let child = app.create_child("Child").await;
    let path = format!("/organizations/{child}/");
    let member = app.add_user(child, "member@example.com", "users").await;
    let session = app
        .post(
            "/auth/token/",
            None,
            &json!({"identifier": "member@example.com", "password": "correct horse battery"}),
        )
        .await;
    let session = session.body["token"].as_str().expect("a token").to_owned();

    let by_admin = app.get(&path, &app.admin_key).await;
    assert_eq!(by_admin.status, 200, "{}", by_admin.text);
    assert_eq!(by_admin.body["name"], "Child");
    assert!(by_admin.header("etag").is_some());
    assert_eq!(app.get(&path, &member).await.status, 200);
    assert_eq!(app.get(&path, &session).await.status, 200);
    // A member of the child does not see its parent; nobody sees what does not exist.
    let root = format!("/organizations/{}/", app.root_id);
    assert_eq!(app.get(&root, &member).await.status, 404);
    assert_eq!(
        app.get("/organizations/999999/", &app.admin_key)
            .await
            .status,
        404
    );
    // No or a wrong credential is 401 before anything about the organization is told.
    let missing = app
        .send(app.request(reqwest::Method::GET, "/organizations/999999/", None))
        .await;
    assert_eq!(missing.status, 401);
    assert_eq!(
        missing.body,
        json!({"detail": "Authentication credentials were not provided."})
    );
    let wrong = app.get("/organizations/999999/", "not-a-key").await;
    assert_eq!(wrong.status, 401);
    assert_eq!(wrong.body, json!({"detail": "Invalid token."}));
    let french = app
        .send(
            app.request(reqwest::Method::GET, &path, Some("not-a-key"))
                .header("accept-language", "fr"),
        )
        .await;
    assert_eq!(french.status, 401);
    assert_eq!(french.body, json!({"detail": "Token non valide."}));
}

async fn another_instance_refuses_a_revoked_key_a_removed_member_and_an_archived_organization_at_once(
    app: TestApp,
) {
    let child = app.create_child("Child").await;
    let path = format!("/organizations/{child}/");
    let spare = app
        .post(
            "/me/api_keys/",
            Some(&app.admin_key),
            &json!({"name": "spare"}),
        )
        .await;
    assert_eq!(spare.status, 201, "{}", spare.text);
    let spare_key = spare.body["key"].as_str().expect("a key").to_owned();
    let spare_url = spare.body["url"].as_str().expect("a url").to_owned();
    let leaving = app
        .add_user(app.root_id, "leaving@example.com", "managers")
        .await;
    let leaving_url = app.get("/me/", &leaving).await.body["url"]
        .as_str()
        .expect("a url")
        .to_owned();
    let member = app.add_user(child, "member@example.com", "users").await;
    let other = app.another_instance().await;
    for key in [&spare_key, &leaving, &member] {
        assert_eq!(other.get(&path, key).await.status, 200);
    }

    assert_eq!(app.delete(&spare_url, &app.admin_key).await.status, 204);
    assert_eq!(app.delete(&leaving_url, &app.admin_key).await.status, 204);
    assert_eq!(app.delete(&path, &app.admin_key).await.status, 204);

    assert_eq!(other.get(&path, &spare_key).await.status, 401);
    assert_eq!(other.get(&path, &leaving).await.status, 401);
    assert_eq!(other.get(&path, &member).await.status, 401);
    assert_eq!(other.get(&path, &app.admin_key).await.status, 404);
    let root = format!("/organizations/{}/", app.root_id);
    assert_eq!(other.get(&root, &app.admin_key).await.status, 200);
}

async fn hostile_credentials_and_ids_on_a_read_are_refused_and_thirty_parallel_reads_agree(
    app: TestApp,
) {
    let child = app.create_child("Child").await;
    let path = format!("/organizations/{child}/");
    let long = "k".repeat(3_000);
    assert_eq!(app.get(&path, &long).await.status, 401);
    assert_eq!(app.get(&path, "key%00with-nul").await.status, 401);
    // A NUL byte in the credential, sent raw (HTTP clients refuse to): refused, no 5xx.
    for token in [&b"a\0b"[..], &b"\0"[..], "é".as_bytes()] {
        let mut stream = TcpStream::connect(app.address).await.expect("connected");
        let mut request =
            format!("GET {path} HTTP/1.1\r\nHost: orgs.test\r\nAuthorization: Bearer ")
                .into_bytes();
        request.extend_from_slice(token);
        request.extend_from_slice(b"\r\nConnection: close\r\n\r\n");
        stream.write_all(&request).await.expect("sent");
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await.expect("read");
        let answer = String::from_utf8_lossy(&answer);
        assert!(
            answer.starts_with("HTTP/1.1 400") || answer.starts_with("HTTP/1.1 401"),
            "{answer}"
        );
    }
    let long_id = format!("/organizations/{}/", "9".repeat(3_000));
    assert_eq!(app.get(&long_id, &app.admin_key).await.status, 404);
    assert_eq!(
        app.get("/organizations/9223372036854775807/", &app.admin_key)
            .await
            .status,
        404
    );
    assert_eq!(
        app.get("/organizations/%00/", &app.admin_key).await.status,
        404
    );

    let reads = (0..30).map(|_| app.get(&path, &app.admin_key));
    let replies = futures::future::join_all(reads).await;
    let first = &replies[0].body;
    for reply in &replies {
        assert_eq!(reply.status, 200, "{}", reply.text);
        assert_eq!(&reply.body, first);
    }
}

async fn a_read_through_one_statement_records_the_use_of_its_key(app: TestApp) {
    let created = app
        .post(
            "/me/api_keys/",
            Some(&app.admin_key),
            &json!({"name": "reader"}),
        )
        .await;
    let key = created.body["key"].as_str().expect("a key").to_owned();
    let root = format!("/organizations/{}/", app.root_id);

    assert_eq!(app.get(&root, &key).await.status, 200);

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
}
