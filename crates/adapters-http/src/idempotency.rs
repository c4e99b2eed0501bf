//! `Idempotency-Key` on every authenticated `POST` (CONTRACT §12), for every such route
//! at once: the router wraps each path whose `POST` is documented with a security
//! requirement in [`guard`], and the document gives each the header and its answers
//! ([`document`]). Handlers and use cases never see the key.
//!
//! [`guard`] authenticates the caller (the handler then reuses that actor), checks the
//! key, fingerprints the request, and claims the key through
//! [`IdempotencyUseCases`](ports::inbound::IdempotencyUseCases): a claimed request runs
//! in a task of its own, so that a client that hangs up does not cut it short between its
//! change and the record of its response; a held key answers the kept response again,
//! `409` or `422`. See `docs/idempotency.md`.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use domain::idempotency::{IdempotencyKey, RecordedResponse, RequestFingerprint, SECRET_FIELDS};
use ports::Cause;
use ports::inbound::{IdempotencyTicket, IdempotencyUseCases, IdempotentStart};
use serde_json::Value;
use tracing::Instrument as _;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::path::{Operation, ParameterIn, PathItem};
use utoipa::openapi::schema::{ObjectBuilder, Schema, SchemaType, Type};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};

use crate::catalog::Language;
use crate::error::ApiError;
use crate::extract::language::language_of;
use crate::extract::{CurrentActor, read_limited};
use crate::request::optional_parameter;
use crate::{AppState, REQUEST_DEADLINE};

/// The request header.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";

/// The header of a replayed response.
pub const IDEMPOTENT_REPLAYED: &str = "idempotent-replayed";

/// The headers of a response that are kept with it and replayed.
const KEPT_HEADERS: [HeaderName; 5] = [
    header::CONTENT_TYPE,
    header::LOCATION,
    header::ETAG,
    header::CACHE_CONTROL,
    header::CONTENT_LANGUAGE,
];

/// The largest response body that is kept; the API's `POST` answers are a few hundred
/// bytes. A larger one is answered but not kept (the key is freed).
const MAX_KEPT_BODY: usize = 1024 * 1024;

/// Whether the `POST` of this path needs authentication, and so takes an
/// `Idempotency-Key`: the router and the document decide with this one test.
pub(crate) fn applies_to(item: &PathItem) -> bool {
    item.post
        .as_ref()
        .and_then(|operation| operation.security.as_ref())
        .is_some_and(|requirements| !requirements.is_empty())
}

/// The middleware of an authenticated `POST` route; other methods, and requests without
/// the header, pass through untouched.
pub(crate) async fn guard(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if request.method() != Method::POST || !request.headers().contains_key(IDEMPOTENCY_KEY) {
        return next.run(request).await;
    }
    start(&state, request, next)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

/// Claims the key of a request, then runs the request (rebuilt with its body) or answers
/// the kept response again.
async fn start(state: &AppState, request: Request, next: Next) -> Result<Response, ApiError> {
    let (mut parts, body) = request.into_parts();
    let CurrentActor(actor) = CurrentActor::from_request_parts(&mut parts, state).await?;
    parts.extensions.insert(CurrentActor(actor));
    let key = key_of(&parts.headers)?;
    let bytes = read_limited(&parts.headers, body).await?;
    let fingerprint = RequestFingerprint::of(
        parts.method.as_str(),
        parts.uri.path(),
        parts.uri.query(),
        &canonical_body(&bytes),
    );
    let language = language_of(&parts.headers);
    match state.idempotency.start(&actor, key, fingerprint).await? {
        IdempotentStart::Run(ticket) => {
            let request = Request::from_parts(parts, Body::from(bytes));
            let idempotency = Arc::clone(&state.idempotency);
            Ok(run(idempotency, ticket, request, language, next).await)
        }
        IdempotentStart::Replay(recorded) => Ok(replay(recorded)),
        IdempotentStart::KeyReused => Err(ApiError::IdempotencyKeyReused),
        IdempotentStart::InProgress => Err(ApiError::IdempotencyKeyInProgress),
    }
}

/// The one `Idempotency-Key` of a request; several, or a malformed one → 400.
fn key_of(headers: &HeaderMap) -> Result<IdempotencyKey, ApiError> {
    let mut values = headers.get_all(IDEMPOTENCY_KEY).iter();
    match (values.next(), values.next()) {
        (Some(value), None) => {
            IdempotencyKey::parse(value.as_bytes()).map_err(|_| ApiError::InvalidIdempotencyKey)
        }
        _ => Err(ApiError::InvalidIdempotencyKey),
    }
}

/// Runs a claimed request to its end in a task of its own, then keeps its response (or
/// frees the key when there is none to keep).
async fn run(
    idempotency: Arc<dyn IdempotencyUseCases>,
    ticket: IdempotencyTicket,
    request: Request,
    language: Language,
    next: Next,
) -> Response {
    let on_failure = (Arc::clone(&idempotency), ticket.clone());
    let task = tokio::spawn(
        async move {
            let Ok(response) = tokio::time::timeout(REQUEST_DEADLINE, next.run(request)).await
            else {
                release(idempotency.as_ref(), ticket).await;
                return ApiError::Unavailable(Cause::new(
                    "an idempotent request ran past the request deadline",
                ))
                .into_response();
            };
            let (response, recorded) = record(response, language).await;
            match recorded {
                Some(recorded) => {
                    if let Err(error) = idempotency.finish(ticket, recorded).await {
                        // The caller still gets its answer; the claim holds until its
                        // lease ends, then a retry runs again.
                        tracing::warn!(error.message = %error, error.chain = %ports::ErrorChain(&error), "could not keep an idempotent response");
                    }
                }
                None => release(idempotency.as_ref(), ticket).await,
            }
            response
        }
        .instrument(tracing::Span::current()),
    );
    match task.await {
        Ok(response) => response,
        Err(failed) => {
            let (idempotency, ticket) = on_failure;
            release(idempotency.as_ref(), ticket).await;
            ApiError::Internal(Cause::new(format!(
                "an idempotent request's task failed: {failed}"
            )))
            .into_response()
        }
    }
}

/// Frees a key, logging a failure (the claim then holds until its lease ends).
async fn release(idempotency: &dyn IdempotencyUseCases, ticket: IdempotencyTicket) {
    if let Err(error) = idempotency.abandon(ticket).await {
        tracing::warn!(error.message = %error, error.chain = %ports::ErrorChain(&error), "could not free an idempotency key");
    }
}

/// The response to send, and what to keep of it: its status, the headers that matter,
/// and its body without secrets. An error's body is written here as the error renderer
/// will write it, in the request's language. `None` when the body cannot be read whole.
async fn record(response: Response, language: Language) -> (Response, Option<RecordedResponse>) {
    let status = response.status().as_u16();
    if let Some(error) = response.extensions().get::<ApiError>() {
        let body = error.body(language).to_string().into_bytes();
        let recorded = RecordedResponse {
            status,
            headers: vec![(
                header::CONTENT_TYPE.as_str().to_owned(),
                "application/json".to_owned(),
            )],
            body,
        };
        return (response, Some(recorded));
    }
    let (parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_KEPT_BODY).await else {
        return (
            ApiError::Internal(Cause::new("a response body could not be read whole"))
                .into_response(),
            None,
        );
    };
    let headers = KEPT_HEADERS
        .iter()
        .filter_map(|name| {
            let value = parts.headers.get(name)?.to_str().ok()?;
            Some((name.as_str().to_owned(), value.to_owned()))
        })
        .collect();
    let recorded = RecordedResponse {
        status,
        headers,
        body: without_secrets(&bytes),
    };
    (
        Response::from_parts(parts, Body::from(bytes)),
        Some(recorded),
    )
}

/// A kept response, answered again.
fn replay(recorded: RecordedResponse) -> Response {
    let mut response = Response::new(Body::from(recorded.body));
    *response.status_mut() =
        StatusCode::from_u16(recorded.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let headers = response.headers_mut();
    for (name, value) in &recorded.headers {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            headers.insert(name, value);
        }
    }
    headers.insert(IDEMPOTENT_REPLAYED, HeaderValue::from_static("true"));
    response
}

/// The body as the fingerprint sees it: JSON with its keys sorted and no spacing (an
/// empty body is `{}`, as the handlers read it); anything else as sent. `serde_json`'s
/// map is ordered by key (its `preserve_order` feature is off), so a parse and a print
/// sort every object.
fn canonical_body(bytes: &[u8]) -> Vec<u8> {
    if bytes.is_empty() {
        return b"{}".to_vec();
    }
    serde_json::from_slice::<Value>(bytes)
        .ok()
        .and_then(|value| serde_json::to_vec(&value).ok())
        .unwrap_or_else(|| bytes.to_vec())
}

/// A JSON body with every secret field's text (at any depth) replaced by `null`: a
/// secret is shown once and never kept in clear. Field error lists under those names
/// (`{"token": ["…"]}`) are no secret and stay. Other bodies are kept as they are.
fn without_secrets(bytes: &[u8]) -> Vec<u8> {
    let Ok(mut value) = serde_json::from_slice::<Value>(bytes) else {
        return bytes.to_vec();
    };
    if !strip_secrets(&mut value) {
        return bytes.to_vec();
    }
    serde_json::to_vec(&value).unwrap_or_default()
}

/// Replaces secret texts by `null`; returns whether it replaced any.
fn strip_secrets(value: &mut Value) -> bool {
    match value {
        Value::Object(map) => map.iter_mut().fold(false, |stripped, (name, field)| {
            if SECRET_FIELDS.contains(&name.as_str()) && field.is_string() {
                *field = Value::Null;
                true
            } else {
                stripped | strip_secrets(field)
            }
        }),
        // Every item, not only up to the first with a secret.
        Value::Array(items) => items
            .iter_mut()
            .map(strip_secrets)
            .fold(false, |stripped, one| stripped | one),
        _ => false,
    }
}

/// Documents the header and its answers on every authenticated `POST` of `document`:
/// one parameter and the same `400`, `409` and `422`, added here for all of them; and
/// the secret fields of their success bodies may be `null` (in a replay).
pub(crate) fn document(document: &mut utoipa::openapi::OpenApi) {
    let mut answered = Vec::new();
    for item in document.paths.paths.values_mut() {
        if !applies_to(item) {
            continue;
        }
        if let Some(operation) = item.post.as_mut() {
            describe(operation);
            answered.extend(success_schemas(operation));
        }
    }
    let Some(components) = document.components.as_mut() else {
        return;
    };
    for name in answered {
        if let Some(RefOr::T(Schema::Object(object))) = components.schemas.get_mut(&name) {
            for field in SECRET_FIELDS {
                if let Some(RefOr::T(Schema::Object(property))) = object.properties.get_mut(field) {
                    if let SchemaType::Type(kind) = &property.schema_type {
                        property.schema_type = SchemaType::Array(vec![kind.clone(), Type::Null]);
                    }
                }
            }
        }
    }
}

/// The names of the component schemas that the `2xx` answers of `operation` refer to.
fn success_schemas(operation: &Operation) -> Vec<String> {
    operation
        .responses
        .responses
        .iter()
        .filter_map(|(status, response)| match response {
            RefOr::T(response) if status.starts_with('2') => Some(response),
            _ => None,
        })
        .flat_map(|response| response.content.values())
        .filter_map(|content| match &content.schema {
            Some(RefOr::Ref(reference)) => reference
                .ref_location
                .strip_prefix("#/components/schemas/")
                .map(str::to_owned),
            _ => None,
        })
        .collect()
}

fn describe(operation: &mut Operation) {
    let parameter = optional_parameter(
        ParameterIn::Header,
        "Idempotency-Key",
        "Makes a retry safe: the first request with a key runs, and the same request again \
         with that key within 24 hours answers the same status and body (with \
         `Idempotent-Replayed: true`, secret fields `null`) without running again. Keys are \
         the caller's own.",
        ObjectBuilder::new()
            .schema_type(Type::String)
            .min_length(Some(1))
            .max_length(Some(domain::idempotency::MAX_KEY_LENGTH))
            .pattern(Some("^[!-~]+$"))
            .into(),
    );
    operation
        .parameters
        .get_or_insert_with(Vec::new)
        .push(parameter);
    let responses = &mut operation.responses.responses;
    for (status, response) in responses.iter_mut() {
        if let (true, RefOr::T(response)) = (status.starts_with('2'), response) {
            response.headers.insert(
                "Idempotent-Replayed".to_owned(),
                HeaderBuilder::new()
                    .schema(
                        ObjectBuilder::new()
                            .schema_type(Type::String)
                            .enum_values(Some(["true"])),
                    )
                    .description(Some(
                        "`true` when this is the kept answer of an earlier request with the \
                         same `Idempotency-Key`",
                    ))
                    .build(),
            );
        }
    }
    for (status, description) in [
        (
            "400",
            "`Idempotency-Key` is not 1 to 255 visible ASCII characters",
        ),
        (
            "409",
            "A request with this `Idempotency-Key` is still being processed",
        ),
        (
            "422",
            "This `Idempotency-Key` was already used for a different request",
        ),
    ] {
        responses.entry(status.to_owned()).or_insert_with(|| {
            ResponseBuilder::new()
                .description(description)
                .content(
                    "application/json",
                    ContentBuilder::new()
                        .schema(Some(Ref::from_schema_name("DetailBody")))
                        .build(),
                )
                .into()
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_canonical_body_ignores_key_order_and_spacing() {
        let one = canonical_body(
            br#"{"name": "Child", "settings": {"b": 1, "a": [2, {"y": 1, "x": 0}]}}"#,
        );
        let two = canonical_body(br#"{"settings":{"a":[2,{"x":0,"y":1}],"b":1},"name":"Child"}"#);

        assert_eq!(one, two);
        assert_ne!(one, canonical_body(br#"{"name": "Other"}"#));
    }

    #[test]
    fn an_empty_body_is_the_empty_object_and_other_bodies_stay_as_sent() {
        assert_eq!(canonical_body(b""), canonical_body(b"{ }"));
        assert_eq!(canonical_body(b"not json"), b"not json".to_vec());
    }

    #[test]
    fn secret_texts_are_replaced_by_null_at_any_depth() {
        let body = json!({
            "api_key": "s3cr3t",
            "nested": {"token": "t0k3n", "secret": "whsec_x", "name": "kept"},
            "items": [{"key": "k"}, {"token": "t"}],
        });

        let kept: Value = serde_json::from_slice(&without_secrets(body.to_string().as_bytes()))
            .unwrap_or_default();

        assert_eq!(
            kept,
            json!({
                "api_key": null,
                "nested": {"token": null, "secret": null, "name": "kept"},
                "items": [{"key": null}, {"token": null}],
            })
        );
    }

    #[test]
    fn error_lists_under_secret_names_and_bodies_without_secrets_stay_as_they_are() {
        let errors = br#"{"token": ["This field is required."]}"#;
        let plain = br#"{"url": "/organizations/2/",  "name": "x"}"#;

        assert_eq!(without_secrets(errors), errors.to_vec());
        assert_eq!(without_secrets(plain), plain.to_vec());
        assert_eq!(without_secrets(b"<html>"), b"<html>".to_vec());
    }

    #[test]
    fn one_key_is_read_and_several_or_bad_ones_are_refused() {
        let mut headers = HeaderMap::new();
        headers.insert(IDEMPOTENCY_KEY, HeaderValue::from_static("abc-1"));
        assert_eq!(
            key_of(&headers).map(|key| key.as_str().to_owned()),
            Ok("abc-1".to_owned())
        );

        headers.append(IDEMPOTENCY_KEY, HeaderValue::from_static("abc-2"));
        assert_eq!(key_of(&headers), Err(ApiError::InvalidIdempotencyKey));

        let mut spaced = HeaderMap::new();
        spaced.insert(IDEMPOTENCY_KEY, HeaderValue::from_static("a b"));
        assert_eq!(key_of(&spaced), Err(ApiError::InvalidIdempotencyKey));
    }

    #[test]
    fn a_replay_carries_the_kept_status_headers_and_body_and_says_it_is_one() {
        let response = replay(RecordedResponse {
            status: 201,
            headers: vec![
                ("location".to_owned(), "/organizations/2/".to_owned()),
                ("etag".to_owned(), "\"1\"".to_owned()),
            ],
            body: b"{}".to_vec(),
        });

        assert_eq!(response.status(), StatusCode::CREATED);
        assert_eq!(response.headers()[header::LOCATION], "/organizations/2/");
        assert_eq!(response.headers()[header::ETAG], "\"1\"");
        assert_eq!(response.headers()[IDEMPOTENT_REPLAYED], "true");
    }
}
