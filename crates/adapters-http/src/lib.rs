//! The organizations service's JSON HTTP API: an `axum` router over the driving ports.
//!
//! It behaves as the Django REST framework API it replaces (CONTRACT §2–§7): DRF's
//! error shapes and coercions, pagination envelope, hyperlinks, and English or French
//! messages. It talks only to the use-case traits of [`ports::inbound`]; decisions are
//! written down in `docs/http.md`.

pub mod api_keys;
pub mod auth;
pub mod catalog;
pub mod error;
pub mod events;
pub mod extract;
pub mod idempotency;
pub mod invitations;
pub mod links;
pub mod members;
pub mod metrics;
pub mod openapi;
pub mod opt_outs;
pub mod organizations;
pub mod pages;
pub mod pagination;
pub mod request;
pub mod schema;
pub mod service;
pub mod webhooks;

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::MatchedPath;
use axum::http::header::{CACHE_CONTROL, Entry};
use axum::http::{HeaderName, HeaderValue, Request};
use axum::middleware::{from_fn_with_state, map_response};
use axum::response::Response;
use axum::{Extension, Router};
use futures::FutureExt as _;
use ports::Cause;
use ports::inbound::{
    AuthUseCases, EventUseCases, HealthUseCases, IdempotencyUseCases, InvitationUseCases,
    MemberUseCases, OptOutUseCases, OrganizationUseCases, WebhookUseCases,
};
use tower::ServiceBuilder;
use tower_http::trace::TraceLayer;
use utoipa_axum::router::UtoipaMethodRouter;

use crate::error::{ApiError, ErrorContext};
use crate::metrics::Metrics;

/// The driving ports the router calls.
#[derive(Clone)]
pub struct AppState {
    /// Authentication and the caller's own account.
    pub auth: Arc<dyn AuthUseCases>,
    /// Organizations.
    pub organizations: Arc<dyn OrganizationUseCases>,
    /// Invitations.
    pub invitations: Arc<dyn InvitationUseCases>,
    /// Members of organizations.
    pub members: Arc<dyn MemberUseCases>,
    /// Opt-outs.
    pub opt_outs: Arc<dyn OptOutUseCases>,
    /// The audit log.
    pub events: Arc<dyn EventUseCases>,
    /// Webhooks.
    pub webhooks: Arc<dyn WebhookUseCases>,
    /// Readiness and gauges.
    pub health: Arc<dyn HealthUseCases>,
    /// Idempotent retries of authenticated `POST`s.
    pub idempotency: Arc<dyn IdempotencyUseCases>,
}

/// The routes of one path: its handlers and their documentation, from one declaration
/// (`utoipa_axum::routes!` over handlers annotated with `utoipa::path`).
pub(crate) type Routes = UtoipaMethodRouter<AppState>;

/// Marks routes whose answers carry a secret (a token, an API key): every response they
/// give has `Cache-Control: no-store` (CONTRACT §9), so that no cache keeps the secret.
pub(crate) fn carrying_secret((schemas, paths, handler): Routes) -> Routes {
    (schemas, paths, handler.layer(map_response(no_store)))
}

/// Adds `Cache-Control: no-store` to a response.
async fn no_store(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// Every route of the API.
pub(crate) fn routes() -> Vec<Routes> {
    let mut all = service::routes();
    all.extend(auth::routes());
    all.extend(api_keys::routes());
    all.extend(organizations::routes());
    all.extend(invitations::routes());
    all.extend(members::routes());
    all.extend(opt_outs::routes());
    all.extend(events::routes());
    all.extend(webhooks::routes());
    all
}

/// The same path with its trailing slash toggled (`/` stays `/`).
pub(crate) fn alternate_path(path: &str) -> String {
    match path.strip_suffix('/') {
        Some("") => "/".to_owned(),
        Some(stripped) => stripped.to_owned(),
        None => format!("{path}/"),
    }
}

/// A panic in a handler becomes a generic 500; its message is logged, never sent.
fn panic_response(panic: Box<dyn std::any::Any + Send + 'static>) -> axum::response::Response {
    let message = panic
        .downcast_ref::<&str>()
        .map(|text| (*text).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a handler panicked".to_owned());
    axum::response::IntoResponse::into_response(ApiError::Internal(ports::Cause::new(message)))
}

async fn unknown_route() -> ApiError {
    ApiError::NotFound
}

/// The request's id (`X-Request-Id`, which the request-id layer sets), or `-`.
pub(crate) fn request_id(headers: &axum::http::HeaderMap) -> &str {
    headers
        .get("x-request-id")
        .and_then(|value| value.to_str().ok())
        .unwrap_or("-")
}

/// The span of a request, which the access log line carries: the method, the route
/// label of the metrics (never the raw path) and the request id. Values are escaped by
/// the log format (`app::telemetry`).
/// The values are read only when the span is enabled (an `info` log).
fn request_span(metrics: &Metrics, request: &Request<Body>) -> tracing::Span {
    tracing::info_span!(
        "request",
        method = %request.method(),
        route = %metrics.route_label(request.extensions().get::<MatchedPath>()),
        request_id = %request_id(request.headers()),
    )
}

/// The access log line of a request, written by the `TraceLayer` when the response
/// starts, inside the request's span (`request_span`).
fn log_response(response: &axum::response::Response, latency: Duration, _: &tracing::Span) {
    tracing::info!(
        status = response.status().as_u16(),
        latency_ms = latency.as_secs_f64() * 1000.0,
        "request"
    );
}

/// The longest a request may take to answer (its response's head; a streamed body is
/// bounded by the connection's write-stall limit instead). Past it the request answers
/// `503` and whatever it was waiting for is dropped. Every wait inside a request has a
/// shorter bound of its own (a statement's timeout, the wait for a hashing slot), so
/// only a fault reaches this one.
pub const REQUEST_DEADLINE: Duration = Duration::from_secs(30);

/// A request past [`REQUEST_DEADLINE`].
fn past_deadline() -> ApiError {
    ApiError::Unavailable(Cause::new(format!(
        "no answer within the request deadline of {} s",
        REQUEST_DEADLINE.as_secs()
    )))
}

/// The API, ready to serve: every route (with and without its trailing slash) and every
/// middleware (request ids, tracing, metrics, error rendering, and `Idempotency-Key` on
/// every authenticated `POST`).
pub fn router(state: AppState) -> Router {
    let routes = routes();
    let paths = routes.iter().flat_map(|(_, paths, _)| paths.paths.keys());
    let metrics = Arc::new(Metrics::new(paths.map(String::as_str)));
    let span_metrics = Arc::clone(&metrics);

    let mut router = Router::new();
    for (_, paths, handler) in routes {
        for (path, item) in &paths.paths {
            tracing::debug!(path, "route");
            let handler = if idempotency::applies_to(item) {
                handler
                    .clone()
                    .layer(from_fn_with_state(state.clone(), idempotency::guard))
            } else if path == service::METRICS_PATH {
                // Only the metrics route reads them: no extension inserted per request
                // on the others.
                handler.clone().layer(Extension(Arc::clone(&metrics)))
            } else {
                handler.clone()
            };
            let alternate = alternate_path(path);
            if alternate != *path {
                router = router.route(&alternate, handler.clone());
            }
            router = router.route(path, handler.clone());
        }
    }

    router
        .fallback(unknown_route)
        .layer(
            ServiceBuilder::new()
                .layer(RequestIdLayer)
                .layer(
                    TraceLayer::new_for_http()
                        .make_span_with(move |request: &Request<Body>| {
                            request_span(&span_metrics, request)
                        })
                        .on_response(log_response),
                )
                .layer(AnswerLayer { metrics }),
        )
        .with_state(state)
}

/// The longest `X-Request-Id` a caller may choose. It is echoed, logged on every line of the
/// request, and will be stored with audit events, so a longer one (or one with other than
/// visible ASCII characters) is dropped and the request gets an id of its own (CONTRACT §9).
const REQUEST_ID_MAX_LENGTH: usize = 128;

/// The request id header.
const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Gives every request an `X-Request-Id`, which [`AnswerLayer`] echoes on the response:
/// a caller's is kept when it is at most `REQUEST_ID_MAX_LENGTH` visible ASCII
/// characters, any other (or none) is replaced by a fresh UUID. Its future is the inner
/// service's own (nothing is allocated for it).
#[derive(Debug, Clone, Copy)]
struct RequestIdLayer;

impl<S> tower::Layer<S> for RequestIdLayer {
    type Service = RequestIdService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RequestIdService(inner)
    }
}

/// The service of [`RequestIdLayer`].
#[derive(Debug, Clone)]
struct RequestIdService<S>(S);

impl<S, B> tower::Service<Request<Body>> for RequestIdService<S>
where
    S: tower::Service<Request<Body>, Response = axum::http::Response<B>>,
    S::Future: Send + 'static,
{
    type Response = axum::http::Response<B>;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<Body>) -> Self::Future {
        let usable = request
            .headers()
            .get(X_REQUEST_ID)
            .is_some_and(|given| is_usable_request_id(given.as_bytes()));
        if !usable {
            request
                .headers_mut()
                .insert(X_REQUEST_ID, fresh_request_id());
        }
        self.0.call(request)
    }
}

/// Bounds a request by [`REQUEST_DEADLINE`] (past it, `503`), turns a panic into a
/// generic `500` (`panic_response`), renders its errors (`ErrorContext::render`), echoes
/// its `X-Request-Id` (which [`RequestIdLayer`] set; a response that carries an id of its
/// own keeps it) and then counts it (`Metrics::observe`): all in one layer, whose future
/// is the only one it allocates.
#[derive(Debug, Clone)]
struct AnswerLayer {
    metrics: Arc<Metrics>,
}

impl<S> tower::Layer<S> for AnswerLayer {
    type Service = AnswerService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        AnswerService {
            inner,
            metrics: Arc::clone(&self.metrics),
        }
    }
}

/// The service of [`AnswerLayer`].
#[derive(Debug, Clone)]
struct AnswerService<S> {
    inner: S,
    metrics: Arc<Metrics>,
}

impl<S> tower::Service<Request<Body>> for AnswerService<S>
where
    S: tower::Service<Request<Body>>,
    S::Response: axum::response::IntoResponse + Send + 'static,
    S::Error: Send + 'static,
    S::Future: Send + 'static,
{
    type Response = axum::response::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        let start = Instant::now();
        let matched = request.extensions().get::<MatchedPath>().cloned();
        let context = ErrorContext::of(&request);
        let method = request.method().clone();
        let metrics = Arc::clone(&self.metrics);
        // A panic while making the future or while polling it.
        let answer = match std::panic::catch_unwind(AssertUnwindSafe(|| self.inner.call(request))) {
            Ok(future) => futures::future::Either::Left(tokio::time::timeout(
                REQUEST_DEADLINE,
                AssertUnwindSafe(future).catch_unwind(),
            )),
            Err(panic) => futures::future::Either::Right(std::future::ready(Ok(Err(panic)))),
        };
        // A combinator rather than an `async` block, which would keep room for `answer`
        // twice (as captured and as awaited) in the one allocation.
        Box::pin(answer.map(move |answered| {
            let response = match answered {
                Ok(Ok(answered)) => axum::response::IntoResponse::into_response(answered?),
                Ok(Err(panic)) => panic_response(panic),
                Err(_) => axum::response::IntoResponse::into_response(past_deadline()),
            };
            let id = context.request_id().cloned();
            let mut response = context.render(response);
            if let Some(id) = id {
                if let Entry::Vacant(entry) = response.headers_mut().entry(X_REQUEST_ID) {
                    entry.insert(id);
                }
            }
            metrics.observe(
                &method,
                metrics.route_label(matched.as_ref()),
                response.status().as_u16(),
                start.elapsed().as_secs_f64(),
            );
            Ok(response)
        }))
    }
}

/// A fresh request id: a random (v4) UUID, hyphenated and lower-case.
fn fresh_request_id() -> HeaderValue {
    let mut buffer = [0; uuid::fmt::Hyphenated::LENGTH];
    let text = uuid::Uuid::new_v4().hyphenated().encode_lower(&mut buffer);
    // A UUID is visible ASCII, which every header value accepts.
    HeaderValue::from_str(text).unwrap_or_else(|_| HeaderValue::from_static("-"))
}

fn is_usable_request_id(value: &[u8]) -> bool {
    (1..=REQUEST_ID_MAX_LENGTH).contains(&value.len()) && value.iter().all(u8::is_ascii_graphic)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_id_is_kept_only_when_short_and_visible_ascii() {
        assert!(is_usable_request_id(b"caller-chosen-42"));
        assert!(is_usable_request_id(&[b'a'; REQUEST_ID_MAX_LENGTH]));
        assert!(!is_usable_request_id(&[b'a'; REQUEST_ID_MAX_LENGTH + 1]));
        assert!(!is_usable_request_id(b""));
        assert!(!is_usable_request_id(b"two words"));
        assert!(!is_usable_request_id("caf\u{e9}".as_bytes()));
    }

    /// What `AnswerService` over `inner` answers to a request with the id `given`.
    async fn answer_of<S>(inner: S, given: &'static str) -> axum::response::Response
    where
        S: tower::Service<Request<Body>, Response = axum::response::Response>,
        S::Error: std::fmt::Debug + Send + 'static,
        S::Future: Send + 'static,
    {
        let mut service = AnswerService {
            inner,
            metrics: Arc::new(Metrics::new([])),
        };
        let request = Request::builder()
            .uri("/organizations/")
            .header(X_REQUEST_ID, given)
            .body(Body::empty())
            .expect("request");
        tower::Service::call(&mut service, request)
            .await
            .expect("answered")
    }

    /// A panic's answer: a generic 500 that echoes the request id and says nothing of
    /// the panic's message.
    async fn assert_generic_500(response: axum::response::Response) {
        assert_eq!(
            response.status(),
            axum::http::StatusCode::INTERNAL_SERVER_ERROR
        );
        assert_eq!(
            response.headers().get(X_REQUEST_ID),
            Some(&HeaderValue::from_static("req-42"))
        );
        let body = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .expect("body");
        assert!(!String::from_utf8_lossy(&body).contains("secret detail"));
    }

    #[tokio::test]
    async fn a_handler_that_panics_answers_a_generic_500() {
        let panicking = tower::service_fn(|_: Request<Body>| async {
            if true {
                panic!("secret detail");
            }
            Ok::<_, std::convert::Infallible>(axum::response::Response::new(Body::empty()))
        });
        assert_generic_500(answer_of(panicking, "req-42").await).await;
    }

    #[tokio::test]
    async fn a_service_that_panics_before_its_future_answers_a_generic_500() {
        let panicking = tower::service_fn(|_: Request<Body>| {
            if true {
                panic!("secret detail");
            }
            std::future::ready(Ok::<_, std::convert::Infallible>(
                axum::response::Response::new(Body::empty()),
            ))
        });
        assert_generic_500(answer_of(panicking, "req-42").await).await;
    }

    #[tokio::test]
    async fn the_request_id_is_echoed_unless_the_response_has_its_own() {
        let plain = tower::service_fn(|_: Request<Body>| async {
            Ok::<_, std::convert::Infallible>(axum::response::Response::new(Body::empty()))
        });
        let response = answer_of(plain, "req-42").await;
        assert_eq!(
            response.headers().get(X_REQUEST_ID),
            Some(&HeaderValue::from_static("req-42"))
        );

        let own = tower::service_fn(|_: Request<Body>| async {
            let mut response = axum::response::Response::new(Body::empty());
            response
                .headers_mut()
                .insert(X_REQUEST_ID, HeaderValue::from_static("its-own"));
            Ok::<_, std::convert::Infallible>(response)
        });
        let response = answer_of(own, "req-42").await;
        assert_eq!(
            response.headers().get(X_REQUEST_ID),
            Some(&HeaderValue::from_static("its-own"))
        );
    }

    #[test]
    fn the_alternate_of_a_path_toggles_its_trailing_slash() {
        assert_eq!(alternate_path("/organizations/"), "/organizations");
        assert_eq!(alternate_path("/healthz"), "/healthz/");
        assert_eq!(alternate_path("/"), "/");
    }
}
