//! A database that goes away: `/readyz` and the API answer 503 with a `detail`, and the
//! service recovers by itself when the database is back, without a restart.

use std::time::Duration;

use orgs_tests::{Backend, DatabaseProxy, SpawnOptions, spawn_app_with_options};
use reqwest::Method;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_service_answers_503_while_postgres_is_away_and_recovers_alone() {
    let proxy = DatabaseProxy::start().await;
    let app = spawn_app_with_options(
        Backend::Postgres,
        SpawnOptions {
            postgres_server: Some(proxy.server_url()),
            ..SpawnOptions::default()
        },
    )
    .await;
    assert_eq!(app.get("/organizations/", &app.admin_key).await.status, 200);

    proxy.cut();
    let ready = app.send(app.request(Method::GET, "/readyz", None)).await;
    let api = app.get("/organizations/", &app.admin_key).await;
    let health = app.send(app.request(Method::GET, "/healthz", None)).await;
    proxy.restore();
    let mut recovered = false;
    for _ in 0..100 {
        let ready = app.send(app.request(Method::GET, "/readyz", None)).await;
        if ready.status == 200 {
            recovered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let after = app.get("/organizations/", &app.admin_key).await;

    assert_eq!(ready.status, 503, "{}", ready.text);
    assert_eq!(api.status, 503, "{}", api.text);
    assert!(api.body["detail"].is_string(), "{}", api.text);
    assert!(!api.text.to_lowercase().contains("sqlx"), "{}", api.text);
    assert_eq!(health.status, 200);
    assert!(recovered, "/readyz never came back");
    assert_eq!(after.status, 200, "{}", after.text);
}
