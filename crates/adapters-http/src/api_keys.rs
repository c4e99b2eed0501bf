//! The caller's API keys: list, create (the key is shown once) and revoke
//! (CONTRACT §11). See `docs/api-keys.md`.

use axum::Json;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use domain::ApiKeyId;
use domain::api_key::{ApiKey, ApiKeyRequest};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::routes;

use crate::error::ApiError;
use crate::extract::coerce::positive_id;
use crate::extract::{CurrentActor, ListQuery};
use crate::openapi::{BodyRefused, DetailBody, ListParams};
use crate::pagination::Paginated;
use crate::request::{self, request_body};
use crate::{AppState, Routes, carrying_secret, links};

/// The routes of this module, each documented by its handler's `utoipa::path`.
pub(crate) fn routes() -> Vec<Routes> {
    vec![
        routes!(list),
        carrying_secret(routes!(create)),
        routes!(revoke),
    ]
}

/// One of the caller's API keys (never the key itself).
#[derive(Debug, Serialize, ToSchema)]
pub struct ApiKeyDto {
    /// Its URL, `/me/api_keys/{key}/`.
    pub url: String,
    /// Its name.
    pub name: String,
    /// The key's first 8 characters; `null` for a key made before they were kept.
    pub prefix: Option<String>,
    /// `read` (only `GET` and `HEAD`) or `write`.
    pub scope: String,
    /// When it was made (ISO 8601, UTC).
    pub created_at: String,
    /// When it stops working, or `null`.
    pub expires_at: Option<String>,
    /// When it was last used (up to a minute late), or `null`.
    pub last_used_at: Option<String>,
}

impl From<ApiKey> for ApiKeyDto {
    fn from(key: ApiKey) -> Self {
        Self {
            url: key_url(key.id),
            name: key.name.as_str().to_owned(),
            prefix: key.prefix,
            scope: key.scope.as_str().to_owned(),
            created_at: links::timestamp(key.created_at),
            expires_at: key.expires_at.map(links::timestamp),
            last_used_at: key.last_used_at.map(links::timestamp),
        }
    }
}

/// A new API key: its representation and the key, shown this once.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedApiKeyDto {
    /// Its URL, `/me/api_keys/{key}/`.
    pub url: String,
    /// Its name.
    pub name: String,
    /// The key's first 8 characters.
    pub prefix: Option<String>,
    /// `read` or `write`.
    pub scope: String,
    /// When it was made (ISO 8601, UTC).
    pub created_at: String,
    /// When it stops working, or `null`.
    pub expires_at: Option<String>,
    /// `null`: not used yet.
    pub last_used_at: Option<String>,
    /// The key, for `Authorization: Bearer <key>`; shown only in this answer.
    pub key: String,
}

fn key_url(id: ApiKeyId) -> String {
    format!("/me/api_keys/{id}/")
}

request_body! {
    /// A new API key.
    pub struct ApiKeyWrite => ApiKeyRequest {
        /// Not blank, at most 50 characters, unique among the caller's live keys.
        name: request::KeyName, required;
        /// `read` (only `GET` and `HEAD`) or `write` (the default).
        scope: request::KeyScope;
        /// 1 to 365; absent: the key never expires.
        expires_in_days: request::KeyDays;
    }
}

/// `{key}` from the path: a positive integer, anything else → 404.
#[derive(Debug, Clone, Copy)]
pub struct KeyPath(pub ApiKeyId);

impl<S: Send + Sync> FromRequestParts<S> for KeyPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        // `{key}` is the route's one parameter.
        let Path(raw) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|_| ApiError::NotFound)?;
        positive_id(&raw)
            .map(|id| Self(ApiKeyId::new(id)))
            .ok_or(ApiError::NotFound)
    }
}

/// The caller's API keys, newest first (expired ones too).
#[utoipa::path(get, path = "/me/api_keys/", tag = "auth", params(ListParams),
    security(("bearer" = [])),
    responses((status = 200, body = Paginated<ApiKeyDto>), (status = 401, body = DetailBody),
        (status = 404, body = DetailBody, description = "Invalid page.")))]
pub(crate) async fn list(
    State(state): State<AppState>,
    CurrentActor(actor): CurrentActor,
    query: ListQuery,
) -> Result<Json<Paginated<ApiKeyDto>>, ApiError> {
    let page = state.auth.api_keys(&actor, query.page_request()?).await?;
    Ok(Json(Paginated::new(page, &query, ApiKeyDto::from)))
}

/// Makes an API key for the caller; the key is in this answer only.
#[utoipa::path(post, path = "/me/api_keys/", tag = "auth", request_body = ApiKeyWrite,
    security(("bearer" = [])),
    responses(BodyRefused, (status = 201, body = CreatedApiKeyDto),
        (status = 400, description = "A bad field, a name in use (`You already have an API key with this name.`) or 20 live keys already"),
        (status = 401, body = DetailBody)))]
pub(crate) async fn create(
    State(state): State<AppState>,
    CurrentActor(actor): CurrentActor,
    body: ApiKeyWrite,
) -> Result<(StatusCode, Json<CreatedApiKeyDto>), ApiError> {
    let created = state.auth.create_api_key(&actor, body.into()).await?;
    let dto = ApiKeyDto::from(created.api_key);
    Ok((
        StatusCode::CREATED,
        Json(CreatedApiKeyDto {
            url: dto.url,
            name: dto.name,
            prefix: dto.prefix,
            scope: dto.scope,
            created_at: dto.created_at,
            expires_at: dto.expires_at,
            last_used_at: dto.last_used_at,
            key: created.key.expose().to_owned(),
        }),
    ))
}

/// Revokes one of the caller's API keys: it stops working at once.
#[utoipa::path(delete, path = "/me/api_keys/{key}/", tag = "auth",
    params(("key" = i64, Path, description = "API key id")),
    security(("bearer" = [])),
    responses((status = 204, description = "Revoked"), (status = 401, body = DetailBody),
        (status = 404, body = DetailBody, description = "No such key of the caller")))]
pub(crate) async fn revoke(
    State(state): State<AppState>,
    KeyPath(key): KeyPath,
    CurrentActor(actor): CurrentActor,
) -> Result<StatusCode, ApiError> {
    state.auth.revoke_api_key(&actor, key).await?;
    Ok(StatusCode::NO_CONTENT)
}
