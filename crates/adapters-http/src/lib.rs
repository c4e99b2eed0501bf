//! The organizations service's JSON HTTP API: an `axum` router over the driving ports.
//!
//! It behaves as the Django REST framework API it replaces (CONTRACT §2–§7): DRF's
//! error shapes and coercions, pagination envelope, hyperlinks, and English or French
//! messages. It talks only to the use-case traits of [`ports::inbound`]; decisions are
//! written down in `docs/http.md`.

pub mod auth;
pub mod catalog;
pub mod error;
pub mod extract;
pub mod invitations;
pub mod links;
pub mod members;
pub mod metrics;
pub mod openapi;
pub mod opt_outs;
pub mod organizations;
pub mod pagination;
pub mod request;
pub mod schema;
pub mod service;

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::MatchedPath;
use axum::handler::Handler;
use axum::http::{Method, Request};
use axum::middleware::{from_fn, from_fn_with_state};
use axum::routing::{MethodFilter, MethodRouter};
use axum::{Extension, Router};
use ports::inbound::{
    AuthUseCases, HealthUseCases, InvitationUseCases, MemberUseCases, OptOutUseCases,
    OrganizationUseCases,
};
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

use crate::error::{ApiError, render_errors};
use crate::metrics::{Metrics, track};

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
    /// Readiness and gauges.
    pub health: Arc<dyn HealthUseCases>,
}

/// One method on one path, with its handler.
pub(crate) struct Endpoint {
    /// The method.
    pub method: Method,
    /// The canonical path (as documented and linked).
    pub path: &'static str,
    /// The handler.
    pub handler: MethodRouter<AppState>,
}

impl Endpoint {
    fn new<H, T>(method: Method, filter: MethodFilter, path: &'static str, handler: H) -> Self
    where
        H: Handler<T, AppState>,
        T: 'static,
    {
        Self {
            method,
            path,
            handler: axum::routing::on(filter, handler),
        }
    }

    pub(crate) fn get<H: Handler<T, AppState>, T: 'static>(path: &'static str, h: H) -> Self {
        Self::new(Method::GET, MethodFilter::GET, path, h)
    }

    pub(crate) fn post<H: Handler<T, AppState>, T: 'static>(path: &'static str, h: H) -> Self {
        Self::new(Method::POST, MethodFilter::POST, path, h)
    }

    pub(crate) fn put<H: Handler<T, AppState>, T: 'static>(path: &'static str, h: H) -> Self {
        Self::new(Method::PUT, MethodFilter::PUT, path, h)
    }

    pub(crate) fn patch<H: Handler<T, AppState>, T: 'static>(path: &'static str, h: H) -> Self {
        Self::new(Method::PATCH, MethodFilter::PATCH, path, h)
    }

    pub(crate) fn delete<H: Handler<T, AppState>, T: 'static>(path: &'static str, h: H) -> Self {
        Self::new(Method::DELETE, MethodFilter::DELETE, path, h)
    }

    /// Marks an endpoint whose answer carries a secret (a token, an API key): every
    /// response it gives has `Cache-Control: no-store` (CONTRACT §9), so that no cache
    /// keeps the secret.
    #[must_use]
    pub(crate) fn carrying_secret(mut self) -> Self {
        self.handler = self.handler.layer(axum::middleware::map_response(no_store));
        self
    }
}

/// Adds `Cache-Control: no-store` to a response.
async fn no_store(mut response: axum::response::Response) -> axum::response::Response {
    response.headers_mut().insert(
        axum::http::header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-store"),
    );
    response
}

/// Every endpoint of the API.
pub(crate) fn endpoints() -> Vec<Endpoint> {
    let mut all = service::endpoints();
    all.extend(auth::endpoints());
    all.extend(organizations::endpoints());
    all.extend(invitations::endpoints());
    all.extend(members::endpoints());
    all.extend(opt_outs::endpoints());
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
    axum::response::IntoResponse::into_response(ApiError::Internal(message))
}

async fn unknown_route() -> ApiError {
    ApiError::NotFound
}

fn request_span(request: &Request<Body>) -> tracing::Span {
    let matched_path = request
        .extensions()
        .get::<MatchedPath>()
        .map_or(metrics::UNMATCHED_ROUTE, MatchedPath::as_str);
    let request_id = request
        .headers()
        .get("x-request-id")
        .and_then(|value| value.to_str().ok())
        .unwrap_or("-");
    tracing::info_span!(
        "request",
        method = %request.method(),
        matched_path = %matched_path,
        request_id = %request_id,
    )
}

/// The API, ready to serve: every route (with and without its trailing slash) and every
/// middleware (request ids, tracing, metrics, error rendering).
pub fn router(state: AppState) -> Router {
    let endpoints = endpoints();
    let metrics = Arc::new(Metrics::new(endpoints.iter().map(|e| e.path)));

    let mut by_path: BTreeMap<&'static str, MethodRouter<AppState>> = BTreeMap::new();
    for endpoint in endpoints {
        tracing::debug!(method = %endpoint.method, path = endpoint.path, "route");
        let handler = match by_path.remove(endpoint.path) {
            Some(existing) => existing.merge(endpoint.handler),
            None => endpoint.handler,
        };
        by_path.insert(endpoint.path, handler);
    }
    let mut router = Router::new();
    for (path, handler) in by_path {
        let alternate = alternate_path(path);
        if alternate != path {
            router = router.route(&alternate, handler.clone());
        }
        router = router.route(path, handler);
    }

    router
        .fallback(unknown_route)
        .layer(
            ServiceBuilder::new()
                .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
                .layer(TraceLayer::new_for_http().make_span_with(request_span))
                .layer(PropagateRequestIdLayer::x_request_id())
                .layer(Extension(Arc::clone(&metrics)))
                .layer(from_fn_with_state(metrics, track))
                .layer(from_fn(render_errors))
                .layer(CatchPanicLayer::custom(panic_response)),
        )
        .with_state(state)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_alternate_of_a_path_toggles_its_trailing_slash() {
        assert_eq!(alternate_path("/organizations/"), "/organizations");
        assert_eq!(alternate_path("/healthz"), "/healthz/");
        assert_eq!(alternate_path("/"), "/");
    }
}
