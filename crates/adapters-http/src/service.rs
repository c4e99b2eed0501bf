//! Service endpoints: the API root, health, readiness, metrics and the OpenAPI document.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::ApiError;
use crate::metrics::Metrics;
use crate::openapi::DetailBody;
use utoipa_axum::routes;

use crate::{AppState, Routes};

/// The routes of this module, each documented by its handler's `utoipa::path`.
pub(crate) fn routes() -> Vec<Routes> {
    vec![
        routes!(root),
        routes!(healthz),
        routes!(readyz),
        routes!(metrics),
        routes!(openapi),
    ]
}

/// The API root's links.
#[derive(Debug, Serialize, ToSchema)]
pub struct RootDto {
    /// Your organizations.
    pub organizations: String,
    /// Your own user.
    pub me: String,
    /// Where to log in.
    pub auth_token: String,
    /// Where to accept an invitation.
    pub accept_invitation: String,
}

/// A health answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct StatusDto {
    /// `ok`.
    pub status: String,
}

/// The API root: links to the main resources.
#[utoipa::path(get, path = "/", tag = "service", responses((status = 200, body = RootDto)))]
pub(crate) async fn root() -> Json<RootDto> {
    Json(RootDto {
        organizations: "/organizations/".to_owned(),
        me: "/me/".to_owned(),
        auth_token: "/auth/token/".to_owned(),
        accept_invitation: "/invitations/accept/".to_owned(),
    })
}

/// The process is up (no database involved).
#[utoipa::path(get, path = "/healthz", tag = "service", responses((status = 200, body = StatusDto)))]
pub(crate) async fn healthz() -> Json<StatusDto> {
    Json(StatusDto {
        status: "ok".to_owned(),
    })
}

/// The database answers; 503 otherwise.
#[utoipa::path(get, path = "/readyz", tag = "service",
    responses((status = 200, body = StatusDto), (status = 503, body = DetailBody)))]
pub(crate) async fn readyz(State(state): State<AppState>) -> Result<Json<StatusDto>, ApiError> {
    match state.health.ready().await {
        Ok(()) => Ok(Json(StatusDto {
            status: "ok".to_owned(),
        })),
        Err(error) => Err(ApiError::Unavailable(ports::Cause::new(error))),
    }
}

/// The path of [`metrics`], the one route given the `Arc<Metrics>` as an extension.
pub(crate) const METRICS_PATH: &str = "/metrics";

/// Prometheus metrics.
#[utoipa::path(get, path = "/metrics", tag = "service",
    responses((status = 200, body = String, content_type = "text/plain; version=0.0.4")))]
pub(crate) async fn metrics(
    State(state): State<AppState>,
    Extension(metrics): Extension<Arc<Metrics>>,
) -> Response {
    let gauges = match state.health.gauges().await {
        Ok(gauges) => Some(gauges),
        Err(error) => {
            tracing::warn!(error.message = %error, error.chain = %ports::ErrorChain(&error), "service gauges unavailable");
            None
        }
    };
    let mut response = metrics.render(gauges).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}

/// This document.
#[utoipa::path(get, path = "/openapi.json", tag = "service",
    responses((status = 200, description = "The OpenAPI 3 document", content_type = "application/json")))]
pub(crate) async fn openapi() -> Json<utoipa::openapi::OpenApi> {
    Json(crate::openapi::document())
}
