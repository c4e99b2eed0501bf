//! `/`, `/healthz`, `/readyz`, `/metrics`, `/openapi.json` and request ids.

use std::sync::{Arc, Mutex, Once, PoisonError};

use axum::http::StatusCode;
use ports::inbound::{HealthUseCases, ServiceGauges, UseCaseError};
use ports::outbound::StorageError;
use serde_json::json;

use crate::support::{Mocks, anonymous, send};

#[tokio::test]
async fn the_api_root_links_the_main_resources_without_authentication() {
    let router = Mocks::new().router();

    let answer = send(router, anonymous("GET", "/")).await;

    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.json()["organizations"], "/organizations/");
    assert_eq!(answer.json()["me"], "/me/");
    assert_eq!(answer.json()["auth_token"], "/auth/token/");
}

#[tokio::test]
async fn healthz_answers_without_touching_the_database() {
    let router = Mocks::new().router();

    let answer = send(router, anonymous("GET", "/healthz")).await;

    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.json(), json!({"status": "ok"}));
}

#[tokio::test]
async fn readyz_answers_200_when_the_database_answers() {
    let mut mocks = Mocks::new();
    mocks.health.expect_ready().times(1).returning(|| Ok(()));

    let answer = send(mocks.router(), anonymous("GET", "/readyz/")).await;

    assert_eq!(answer.status, StatusCode::OK);
}

#[tokio::test]
async fn readyz_answers_503_with_a_detail_but_no_internals_when_the_database_does_not() {
    let mut mocks = Mocks::new();
    mocks.health.expect_ready().returning(|| {
        Err(UseCaseError::unavailable(
            "connection refused to 10.0.0.3:5432".to_owned(),
        ))
    });

    let answer = send(mocks.router(), anonymous("GET", "/readyz")).await;

    assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        answer.json(),
        json!({"detail": "Service temporarily unavailable, try again later."})
    );
}

#[tokio::test]
async fn metrics_count_requests_by_route_and_status_and_show_the_service_gauges() {
    let mut mocks = Mocks::new();
    mocks
        .organizations
        .expect_get()
        .returning(|_, _| Err(UseCaseError::NotFound));
    mocks.health.expect_gauges().returning(|| {
        Ok(ServiceGauges {
            pool_size: 5,
            pool_idle: 4,
            pool_max: 10,
            outbox_backlog: 2,
            outbox_dead: 1,
            webhook_backlog: 0,
        })
    });
    let router = mocks.router();
    send(
        router.clone(),
        crate::support::request("GET", "/organizations/9"),
    )
    .await;
    send(
        router.clone(),
        crate::support::request("GET", "/organizations/9/"),
    )
    .await;

    let answer = send(router, anonymous("GET", "/metrics")).await;

    assert_eq!(answer.status, StatusCode::OK);
    assert!(
        answer
            .header("content-type")
            .is_some_and(|v| v.starts_with("text/plain"))
    );
    let text = answer.text();
    assert!(
        text.contains(
            "http_requests_total{method=\"GET\",route=\"/organizations/{id}/\",status=\"404\"} 2"
        ),
        "{text}"
    );
    assert!(text.contains("http_request_duration_seconds_bucket{method=\"GET\",route=\"/organizations/{id}/\",status=\"404\",le=\"+Inf\"} 2"));
    for line in [
        "orgs_db_pool_connections 5",
        "orgs_db_pool_idle_connections 4",
        "orgs_db_pool_max_connections 10",
        "orgs_outbox_backlog 2",
    ] {
        assert!(text.contains(line), "{line} missing from {text}");
    }
}

#[tokio::test]
async fn metrics_put_unknown_paths_under_one_label() {
    let mut mocks = Mocks::new();
    mocks
        .health
        .expect_gauges()
        .returning(|| Err(UseCaseError::unavailable("down".to_owned())));
    let router = mocks.router();
    send(router.clone(), anonymous("GET", "/wp-admin/a")).await;
    send(router.clone(), anonymous("GET", "/wp-admin/b")).await;

    let text = send(router, anonymous("GET", "/metrics")).await.text();

    assert!(text.contains("route=\"other\",status=\"404\"} 2"), "{text}");
    assert!(text.contains("orgs_database_up 0"));
}

#[tokio::test]
async fn the_openapi_document_is_served_without_authentication() {
    let router = Mocks::new().router();

    let answer = send(router, anonymous("GET", "/openapi.json")).await;

    assert_eq!(answer.status, StatusCode::OK);
    let document = answer.json();
    assert!(
        document["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with('3'))
    );
    assert!(document["paths"]["/organizations/{id}/"]["patch"].is_object());
}

#[tokio::test(flavor = "current_thread")]
async fn each_request_writes_one_access_log_line_with_its_route_status_latency_and_id() {
    let log = CapturedLog::default();
    let _capturing = log.capture();
    let mut mocks = Mocks::new();
    mocks
        .organizations
        .expect_get()
        .returning(|_, _| Err(UseCaseError::NotFound));
    let mut request = crate::support::request("GET", "/organizations/9");
    request
        .headers_mut()
        .insert("x-request-id", "caller-id-7".parse().expect("valid"));

    send(mocks.router(), request).await;

    let text = log.text();
    let lines: Vec<&str> = text
        .lines()
        .filter(|line| line.contains("request_id"))
        .collect();
    assert_eq!(lines.len(), 1, "{text}");
    for part in [
        "method=GET",
        "route=/organizations/{id}/",
        "request_id=caller-id-7",
        "status=404",
        "latency_ms=",
    ] {
        assert!(lines[0].contains(part), "{part} missing from {text}");
    }
}

#[tokio::test]
async fn every_response_carries_a_generated_request_id() {
    let router = Mocks::new().router();

    let found = send(router.clone(), anonymous("GET", "/healthz")).await;
    let missing = send(router, anonymous("GET", "/nowhere")).await;

    for answer in [found, missing] {
        let id = answer.header("x-request-id").unwrap_or_default();
        assert_eq!(id.len(), 36, "{id:?} is no UUID");
    }
}

#[tokio::test]
async fn a_callers_request_id_is_kept() {
    let router = Mocks::new().router();
    let mut request = anonymous("GET", "/healthz");
    request
        .headers_mut()
        .insert("x-request-id", "caller-id-42".parse().expect("valid"));

    let answer = send(router, request).await;

    assert_eq!(answer.header("x-request-id"), Some("caller-id-42"));
}

#[tokio::test]
async fn an_internal_error_is_500_with_a_generic_detail_and_the_request_id() {
    let mut mocks = Mocks::new();
    mocks.organizations.expect_get().returning(|_, _| {
        Err(UseCaseError::internal(
            "relation \"organizations\" does not exist at src/pg.rs:42".to_owned(),
        ))
    });

    let answer = send(
        mocks.router(),
        crate::support::request("GET", "/organizations/1/"),
    )
    .await;

    assert_eq!(answer.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(answer.json(), json!({"detail": "A server error occurred."}));
    assert!(!answer.text().contains("relation"));
    assert!(answer.header("x-request-id").is_some());
}

/// A driver error with a cause of its own, as a database driver reports one.
#[derive(Debug)]
struct DriverError(std::io::Error);

impl std::fmt::Display for DriverError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("error returned from database")
    }
}

impl std::error::Error for DriverError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

/// Log output written to memory.
#[derive(Clone, Default)]
struct CapturedLog(Arc<Mutex<Vec<u8>>>);

impl CapturedLog {
    /// Captures, at `INFO` and above, what this thread logs until the guard drops.
    ///
    /// `tracing` decides once per call site, for the whole process, whether any
    /// subscriber wants its events, on whichever thread reaches it first. The other tests
    /// of this binary reach the same call sites (the `500` line, the access log) on threads
    /// without a subscriber; a call site first reached there would be cached as unwanted,
    /// and this capture would miss its line. A global subscriber that keeps nothing keeps
    /// every call site wanted everywhere.
    fn capture(&self) -> tracing::subscriber::DefaultGuard {
        static ON_EVERY_THREAD: Once = Once::new();
        ON_EVERY_THREAD.call_once(|| {
            // An error means a global subscriber is set already, which serves as well.
            let _ = tracing::subscriber::set_global_default(tracing_subscriber::registry());
        });
        let writer = self.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .with_max_level(tracing::Level::INFO)
            .finish();
        tracing::subscriber::set_default(subscriber)
    }

    fn text(&self) -> String {
        let bytes = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

impl std::io::Write for CapturedLog {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn a_500_logs_the_whole_chain_of_causes_and_answers_none_of_it() {
    let log = CapturedLog::default();
    let _capturing = log.capture();
    let mut mocks = Mocks::new();
    mocks.organizations.expect_get().returning(|_, _| {
        let driver = DriverError(std::io::Error::other(
            "relation \"organizations\" does not exist",
        ));
        Err(StorageError::unexpected(driver).into())
    });

    let answer = send(
        mocks.router(),
        crate::support::request("GET", "/organizations/1/"),
    )
    .await;

    assert_eq!(answer.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(answer.json(), json!({"detail": "A server error occurred."}));
    assert!(!answer.text().contains("relation"));
    let logged = log.text();
    let line = logged
        .lines()
        .find(|line| line.contains("internal error") && line.contains("ERROR"))
        .unwrap_or_else(|| panic!("no 500 log line in {logged:?}"));
    assert!(
        line.contains(
            "error.chain=unexpected storage error: error returned from database: \
             relation \"organizations\" does not exist"
        ),
        "{line}"
    );
    assert!(line.contains("request_id="), "{line}");
}

#[tokio::test]
async fn a_panic_in_a_use_case_is_a_generic_500() {
    let mut mocks = Mocks::new();
    mocks
        .organizations
        .expect_get()
        .returning(|_, _| panic!("index out of bounds in src/secret.rs"));

    let answer = send(
        mocks.router(),
        crate::support::request("GET", "/organizations/1/"),
    )
    .await;

    assert_eq!(answer.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(answer.json(), json!({"detail": "A server error occurred."}));
}

#[tokio::test]
async fn an_unavailable_database_during_a_request_is_503_with_a_generic_detail() {
    let mut mocks = Mocks::new();
    mocks.organizations.expect_list().returning(|_, _| {
        Err(UseCaseError::unavailable(
            "pool timed out after 30s".to_owned(),
        ))
    });

    let answer = send(
        mocks.router(),
        crate::support::request("GET", "/organizations/"),
    )
    .await;

    assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        answer.json(),
        json!({"detail": "Service temporarily unavailable, try again later."})
    );
}

/// Readiness that never answers, as a database that hangs.
struct Hanging;

#[async_trait::async_trait]
impl HealthUseCases for Hanging {
    async fn ready(&self) -> Result<(), UseCaseError> {
        std::future::pending().await
    }

    async fn gauges(&self) -> Result<ServiceGauges, UseCaseError> {
        std::future::pending().await
    }
}

#[tokio::test(start_paused = true)]
async fn a_request_still_unanswered_at_its_deadline_is_a_503() {
    let mocks = Mocks::new();
    let router = adapters_http::router(adapters_http::AppState {
        auth: Arc::new(mocks.auth),
        organizations: Arc::new(mocks.organizations),
        invitations: Arc::new(mocks.invitations),
        members: Arc::new(mocks.members),
        opt_outs: Arc::new(mocks.opt_outs),
        events: Arc::new(mocks.events),
        webhooks: Arc::new(mocks.webhooks),
        health: Arc::new(Hanging),
        idempotency: Arc::new(mocks.idempotency),
    });
    let started = tokio::time::Instant::now();

    let answer = tokio::time::timeout(
        adapters_http::REQUEST_DEADLINE * 2,
        send(router, anonymous("GET", "/readyz")),
    )
    .await
    .expect("answered at the deadline");

    assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(answer.json()["detail"].is_string(), "{}", answer.text());
    assert!(started.elapsed() >= adapters_http::REQUEST_DEADLINE);
}
