//! Authentication: `POST /auth/token/`, `GET /me/` and `POST /me/regen_secret/` (CONTRACT §3).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::ApiError;
use crate::extract::CurrentActor;
use crate::members::MemberDto;
use crate::openapi::{BodyRefused, DetailBody};
use crate::organizations::Link;
use crate::request::{self, request_body};
use utoipa_axum::routes;

use crate::{AppState, Routes, carrying_secret, links};

/// The routes of this module, each documented by its handler's `utoipa::path`.
pub(crate) fn routes() -> Vec<Routes> {
    vec![
        carrying_secret(routes!(login)),
        routes!(me),
        carrying_secret(routes!(regenerate_secret)),
    ]
}

request_body! {
    /// Credentials.
    pub struct LoginWrite {
        /// The user's identifier (e-mail address).
        identifier: request::LoginIdentifier, required;
        /// The user's password.
        password: request::Secret, required;
    }
}

/// A session token, shown once.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionDto {
    /// The bearer token.
    pub token: String,
    /// When it stops working (ISO 8601, UTC).
    pub expires_at: String,
}

/// The links of `/me/`.
#[derive(Debug, Serialize, ToSchema)]
pub struct MeLinks {
    /// Where to replace the API key.
    pub regen_secret: Link,
}

/// The caller's own user.
#[derive(Debug, Serialize, ToSchema)]
pub struct MeDto {
    /// The user's member URL.
    pub url: String,
    /// The user's identifier: an e-mail address, or a service account's name.
    pub identifier: String,
    /// `human` or `service`.
    pub kind: String,
    /// First name.
    pub first_name: String,
    /// Last name.
    pub last_name: String,
    /// Role.
    pub role: String,
    /// The user's organization URL.
    pub organization: String,
    /// Related actions.
    #[serde(rename = "_links")]
    pub links: MeLinks,
}

/// A new API key, shown once.
#[derive(Debug, Serialize, ToSchema)]
pub struct RegeneratedKeyDto {
    /// The new key; the old one no longer works.
    pub api_key: String,
}

/// Exchanges an identifier and password for a session token.
#[utoipa::path(post, path = "/auth/token/", tag = "auth", request_body = LoginWrite,
    responses(BodyRefused, (status = 201, body = SessionDto),
        (status = 400, description = "Unable to log in with provided credentials."),
        (status = 429, body = DetailBody),
        (status = 503, body = DetailBody, description = "Every password-hashing slot is busy: retry after `Retry-After`")))]
pub(crate) async fn login(
    State(state): State<AppState>,
    body: LoginWrite,
) -> Result<(StatusCode, Json<SessionDto>), ApiError> {
    let session = state.auth.login(body.identifier, body.password).await?;
    Ok((
        StatusCode::CREATED,
        Json(SessionDto {
            token: session.token.expose().to_owned(),
            expires_at: links::timestamp(session.expires_at),
        }),
    ))
}

/// The caller's own user.
#[utoipa::path(get, path = "/me/", tag = "auth", security(("bearer" = [])),
    responses((status = 200, body = MeDto), (status = 401, body = DetailBody)))]
pub(crate) async fn me(
    State(state): State<AppState>,
    CurrentActor(actor): CurrentActor,
) -> Result<Json<MeDto>, ApiError> {
    let member = MemberDto::from(state.auth.me(&actor).await?);
    Ok(Json(MeDto {
        url: member.url,
        identifier: member.identifier,
        kind: member.kind,
        first_name: member.first_name,
        last_name: member.last_name,
        role: member.role,
        organization: member.organization,
        links: MeLinks {
            regen_secret: Link {
                href: "/me/regen_secret/".to_owned(),
            },
        },
    }))
}

/// Replaces the caller's API key.
#[utoipa::path(post, path = "/me/regen_secret/", tag = "auth", security(("bearer" = [])),
    responses((status = 200, body = RegeneratedKeyDto), (status = 401, body = DetailBody)))]
pub(crate) async fn regenerate_secret(
    State(state): State<AppState>,
    CurrentActor(actor): CurrentActor,
) -> Result<Json<RegeneratedKeyDto>, ApiError> {
    let key = state.auth.regenerate_api_key(&actor).await?;
    Ok(Json(RegeneratedKeyDto {
        api_key: key.expose().to_owned(),
    }))
}
