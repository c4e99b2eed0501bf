//! Webhooks: create, list, read, change, delete, rotate the secret, and their
//! deliveries (CONTRACT §14). Answers that carry a secret have `Cache-Control: no-store`.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use domain::OrganizationId;
use domain::webhook::{Delivery, Webhook, WebhookInput, WebhookSecret};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::routes;

use crate::error::ApiError;
use crate::extract::{ListQuery, Scoped};
use crate::openapi::{BodyRefused, ListParams, OrganizationPath, Refused};
use crate::pagination::Paginated;
use crate::request::{self, request_body};
use crate::{Routes, carrying_secret, links};
use utoipa::IntoParams;

pub(crate) fn routes() -> Vec<Routes> {
    vec![
        carrying_secret(routes!(create, list)),
        routes!(detail, update, remove),
        carrying_secret(routes!(rotate_secret)),
        routes!(deliveries),
        routes!(retry),
    ]
}

/// `{id}` and `{webhook}`, a webhook of a path.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub struct WebhookPath {
    /// Organization id
    pub id: i64,
    /// Webhook id
    pub webhook: i64,
}

/// A webhook.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookDto {
    /// Its own URL.
    pub url: String,
    /// Where deliveries are sent.
    pub endpoint: String,
    /// The actions it wants: `*`, `prefix.*` or actions.
    pub events: Vec<String>,
    /// A free text.
    pub description: String,
    /// Whether it gets deliveries.
    pub active: bool,
    /// When it was made (ISO 8601, UTC).
    pub created_at: String,
}

impl From<Webhook> for WebhookDto {
    fn from(webhook: Webhook) -> Self {
        Self {
            url: links::webhook(webhook.organization_id, webhook.id),
            endpoint: webhook.endpoint.as_str().to_owned(),
            events: webhook
                .events
                .iter()
                .map(domain::webhook::EventPattern::as_text)
                .collect(),
            description: webhook.description,
            active: webhook.active,
            created_at: links::timestamp(webhook.created_at),
        }
    }
}

/// A webhook with its secret, shown at creation and rotation only (a plain object, so
/// that the document can say the secret is `null` in an idempotent replay).
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookWithSecretDto {
    /// Its own URL.
    pub url: String,
    /// Where deliveries are sent.
    pub endpoint: String,
    /// The actions it wants: `*`, `prefix.*` or actions.
    pub events: Vec<String>,
    /// A free text.
    pub description: String,
    /// Whether it gets deliveries.
    pub active: bool,
    /// When it was made (ISO 8601, UTC).
    pub created_at: String,
    /// `whsec_` and the base64 of the signing key.
    pub secret: String,
}

fn with_secret(webhook: Webhook, secret: &WebhookSecret) -> WebhookWithSecretDto {
    let dto = WebhookDto::from(webhook);
    WebhookWithSecretDto {
        url: dto.url,
        endpoint: dto.endpoint,
        events: dto.events,
        description: dto.description,
        active: dto.active,
        created_at: dto.created_at,
        secret: secret.expose().to_owned(),
    }
}

/// One delivery of an event to a webhook.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryDto {
    /// Its own URL.
    pub url: String,
    /// The event's id.
    pub event: i64,
    /// The event's action.
    #[serde(rename = "type")]
    pub kind: String,
    /// `pending`, `delivered` or `failed`.
    pub status: String,
    /// Attempts made.
    pub attempts: u32,
    /// The HTTP status of the last answer.
    pub last_status_code: Option<u16>,
    /// Why the last attempt got no answer.
    pub last_error: Option<String>,
    /// When the next attempt is due (ISO 8601), while pending.
    pub next_attempt_at: Option<String>,
    /// When it was queued (ISO 8601).
    pub created_at: String,
}

fn delivery_dto(organization: OrganizationId, delivery: Delivery) -> DeliveryDto {
    DeliveryDto {
        url: links::delivery(organization, delivery.webhook_id, delivery.id),
        event: delivery.event_id.get(),
        kind: delivery.action.as_str().to_owned(),
        status: delivery.status.as_str().to_owned(),
        attempts: delivery.attempts,
        last_status_code: delivery.last_status_code,
        last_error: delivery.last_error,
        next_attempt_at: delivery.next_attempt_at.map(links::timestamp),
        created_at: links::timestamp(delivery.created_at),
    }
}

request_body! {
    /// A webhook as a request gives it (on `PATCH`, any subset).
    pub struct WebhookWrite => WebhookInput {
        /// An absolute `http` or `https` URL of at most 2000 characters, not on a
        /// loopback, private or link-local address.
        endpoint: request::WebhookEndpoint, required;
        /// The actions to deliver: `*` (the default), `prefix.*` or actions.
        events: request::EventPatterns;
        /// A free text of at most 200 characters.
        description: request::Description;
        /// Whether it gets deliveries (default `true`).
        active: request::Flag;
    }
}

/// Creates a webhook of an organization (administrators only); the answer shows its
/// secret, this once.
#[utoipa::path(post, path = "/organizations/{id}/webhooks/", tag = "webhooks",
    params(OrganizationPath), request_body = WebhookWrite, security(("bearer" = [])),
    responses(BodyRefused, Refused, (status = 201, body = WebhookWithSecretDto),
        (status = 400, description = "Field errors, or too many webhooks")))]
pub(crate) async fn create(
    Scoped { state, actor, ids }: Scoped,
    body: WebhookWrite,
) -> Result<Response, ApiError> {
    let (webhook, secret) = state
        .webhooks
        .create(&actor, ids.organization, body.into())
        .await?;
    Ok((StatusCode::CREATED, Json(with_secret(webhook, &secret))).into_response())
}

/// An organization's webhooks, oldest first (administrators only).
#[utoipa::path(get, path = "/organizations/{id}/webhooks/", tag = "webhooks",
    params(OrganizationPath, ListParams), security(("bearer" = [])),
    responses(Refused, (status = 200, body = Paginated<WebhookDto>)))]
pub(crate) async fn list(
    Scoped { state, actor, ids }: Scoped,
    query: ListQuery,
) -> Result<Json<Paginated<WebhookDto>>, ApiError> {
    let page = state
        .webhooks
        .list(&actor, ids.organization, query.page_request()?)
        .await?;
    Ok(Json(Paginated::new(page, &query, WebhookDto::from)))
}

/// One webhook.
#[utoipa::path(get, path = "/organizations/{id}/webhooks/{webhook}/", tag = "webhooks",
    params(WebhookPath), security(("bearer" = [])),
    responses(Refused, (status = 200, body = WebhookDto)))]
pub(crate) async fn detail(
    Scoped { state, actor, ids }: Scoped,
) -> Result<Json<WebhookDto>, ApiError> {
    let webhook = state
        .webhooks
        .get(&actor, ids.organization, ids.webhook()?)
        .await?;
    Ok(Json(WebhookDto::from(webhook)))
}

/// Changes the fields given; an inactive webhook gets nothing new and its pending
/// deliveries are dropped.
#[utoipa::path(patch, path = "/organizations/{id}/webhooks/{webhook}/", tag = "webhooks",
    params(WebhookPath), request_body = WebhookWrite, security(("bearer" = [])),
    responses(BodyRefused, Refused, (status = 200, body = WebhookDto),
        (status = 400, description = "Field errors")))]
pub(crate) async fn update(
    Scoped { state, actor, ids }: Scoped,
    body: WebhookWrite,
) -> Result<Json<WebhookDto>, ApiError> {
    let webhook = state
        .webhooks
        .update(&actor, ids.organization, ids.webhook()?, body.into())
        .await?;
    Ok(Json(WebhookDto::from(webhook)))
}

/// Deletes a webhook and its deliveries.
#[utoipa::path(delete, path = "/organizations/{id}/webhooks/{webhook}/", tag = "webhooks",
    params(WebhookPath), security(("bearer" = [])),
    responses(Refused, (status = 204, description = "Deleted")))]
pub(crate) async fn remove(Scoped { state, actor, ids }: Scoped) -> Result<StatusCode, ApiError> {
    state
        .webhooks
        .delete(&actor, ids.organization, ids.webhook()?)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Replaces a webhook's secret: the old one stops signing at once; the answer shows the
/// new one, this once.
#[utoipa::path(post, path = "/organizations/{id}/webhooks/{webhook}/rotate_secret/", tag = "webhooks",
    params(WebhookPath), security(("bearer" = [])),
    responses(Refused, (status = 200, body = WebhookWithSecretDto)))]
pub(crate) async fn rotate_secret(
    Scoped { state, actor, ids }: Scoped,
) -> Result<Json<WebhookWithSecretDto>, ApiError> {
    let (webhook, secret) = state
        .webhooks
        .rotate_secret(&actor, ids.organization, ids.webhook()?)
        .await?;
    Ok(Json(with_secret(webhook, &secret)))
}

/// A webhook's deliveries, newest first.
#[utoipa::path(get, path = "/organizations/{id}/webhooks/{webhook}/deliveries/", tag = "webhooks",
    params(WebhookPath, ListParams), security(("bearer" = [])),
    responses(Refused, (status = 200, body = Paginated<DeliveryDto>)))]
pub(crate) async fn deliveries(
    Scoped { state, actor, ids }: Scoped,
    query: ListQuery,
) -> Result<Json<Paginated<DeliveryDto>>, ApiError> {
    let organization = ids.organization;
    let page = state
        .webhooks
        .deliveries(&actor, organization, ids.webhook()?, query.page_request()?)
        .await?;
    Ok(Json(Paginated::new(page, &query, |delivery| {
        delivery_dto(organization, delivery)
    })))
}

/// Queues a delivery again, its retry schedule started again.
#[utoipa::path(post, path = "/organizations/{id}/webhooks/{webhook}/deliveries/{delivery}/retry/", tag = "webhooks",
    params(WebhookPath, ("delivery" = i64, Path, description = "Delivery id")), security(("bearer" = [])),
    responses(Refused, (status = 202, description = "Queued again")))]
pub(crate) async fn retry(Scoped { state, actor, ids }: Scoped) -> Result<StatusCode, ApiError> {
    let delivery = ids.delivery()?;
    state
        .webhooks
        .retry_delivery(&actor, ids.organization, ids.webhook()?, delivery)
        .await?;
    Ok(StatusCode::ACCEPTED)
}
