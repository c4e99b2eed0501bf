//! Extractors: the JSON body, the bearer token, path ids, `If-Match` and list queries,
//! `Scoped` (the state, the caller and the path ids of a route under an organization),
//! plus the language of a request and DRF's coercions of JSON values.

pub mod coerce;
pub mod language;

use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, FromRequestParts, Path, RawPathParams, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, header};
use domain::pagination::PageRequest;
use domain::validation::filter_text;
use domain::{
    Actor, DeliveryId, ErrorCode, InvitationId, Operation, OrganizationId, UserId,
    ValidationErrors, Version, WebhookId,
};
use ports::inbound::AuthFailure;
use serde_json::Value;
use std::collections::HashMap;

use crate::AppState;
use crate::error::{ApiError, MAX_BODY_BYTES};
use coerce::{Fields, positive_id, python_type_name};

/// A JSON object request body (DRF's `request.data`): empty bodies are `{}`.
///
/// Another content type → 415, above 64 KiB → 413, malformed JSON → 400
/// `JSON parse error - …`, a JSON value that is not an object → 400
/// `non_field_errors` "Invalid data. Expected a dictionary, but got …".
#[derive(Debug, Clone, Default)]
pub struct JsonBody(pub Fields);

impl<S: Send + Sync> FromRequest<S> for JsonBody {
    type Rejection = ApiError;

    async fn from_request(request: Request, _state: &S) -> Result<Self, Self::Rejection> {
        let (parts, body) = request.into_parts();
        let bytes = read_limited(&parts.headers, body).await?;
        if bytes.is_empty() {
            return Ok(Self(Fields::new()));
        }
        check_json_media_type(&parts.headers)?;
        let value: Value =
            serde_json::from_slice(&bytes).map_err(|error| ApiError::Parse(error.to_string()))?;
        match value {
            Value::Object(fields) => Ok(Self(fields)),
            other => Err(ApiError::Validation(ValidationErrors::non_field(
                ErrorCode::NotAnObject {
                    given: python_type_name(&other).to_owned(),
                },
            ))),
        }
    }
}

/// The whole body, at most `MAX_BODY_BYTES`: a larger declared `Content-Length` is
/// refused before anything is read, a longer body as soon as it passes the limit (`413`).
pub(crate) async fn read_limited(headers: &HeaderMap, body: Body) -> Result<Bytes, ApiError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    if declared.is_some_and(|length| length > MAX_BODY_BYTES as u64) {
        return Err(ApiError::PayloadTooLarge);
    }
    axum::body::to_bytes(body, MAX_BODY_BYTES)
        .await
        .map_err(|error| {
            let too_large = std::error::Error::source(&error)
                .is_some_and(|source| source.is::<http_body_util::LengthLimitError>());
            if too_large {
                ApiError::PayloadTooLarge
            } else {
                ApiError::Parse(error.to_string())
            }
        })
}

/// `application/json` or any `application/*+json`, parameters ignored.
fn check_json_media_type(headers: &HeaderMap) -> Result<(), ApiError> {
    let given = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default();
    let essence = given
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    let is_json = essence == "application/json"
        || essence
            .strip_prefix("application/")
            .is_some_and(|subtype| subtype.ends_with("+json"));
    if is_json {
        Ok(())
    } else {
        Err(ApiError::UnsupportedMediaType(given.to_owned()))
    }
}

/// The authenticated caller, from `Authorization: Bearer <token>`.
#[derive(Debug, Clone, Copy)]
pub struct CurrentActor(pub Actor);

impl FromRequestParts<AppState> for CurrentActor {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        // Already authenticated by the `Idempotency-Key` middleware.
        if let Some(actor) = parts.extensions.get::<CurrentActor>() {
            return Ok(*actor);
        }
        let token = bearer_token(&parts.headers)?;
        // The scope of the credential is a rule of the domain; the adapter only says
        // whether the request reads (CONTRACT §11).
        let operation = if parts.method == Method::GET || parts.method == Method::HEAD {
            Operation::Read
        } else {
            Operation::Write
        };
        let actor = state.auth.authenticate(&token, operation).await?;
        Ok(Self(Actor {
            request_id: request_id(&parts.headers),
            ..actor
        }))
    }
}

/// The path's ids, the state and the authenticated caller, which most handlers take; read
/// in that order: the path's [`Ids`] (`404`), then the [`CurrentActor`] (`401`).
pub struct Scoped {
    /// The service's state.
    pub state: AppState,
    /// The authenticated caller.
    pub actor: Actor,
    /// The ids of the path.
    pub ids: Ids,
}

impl FromRequestParts<AppState> for Scoped {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let ids = Ids::from_request_parts(parts, state).await?;
        let CurrentActor(actor) = CurrentActor::from_request_parts(parts, state).await?;
        let state = state.clone();
        Ok(Self { state, actor, ids })
    }
}

/// The token of `Authorization: Bearer <token>`, not yet checked: for the routes whose
/// use case checks it together with what it reads (one round trip to the storage).
#[derive(Debug, Clone)]
pub struct BearerToken(pub String);

impl<S: Send + Sync> FromRequestParts<S> for BearerToken {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        bearer_token(&parts.headers).map(Self)
    }
}

/// The request's id (`X-Request-Id`, set or kept by the request-id layer), which the
/// use cases record with the events a request causes (CONTRACT §13).
#[must_use]
pub fn request_id(headers: &HeaderMap) -> Option<domain::RequestId> {
    headers
        .get("x-request-id")
        .and_then(|value| value.to_str().ok())
        .and_then(domain::RequestId::parse)
}

/// The token of a `Bearer` authorization header. Another scheme counts as no
/// credentials, as DRF's token authentication does; a bearer without one token is invalid.
fn bearer_token(headers: &HeaderMap) -> Result<String, ApiError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Err(ApiError::Unauthenticated(AuthFailure::Missing));
    };
    let value = value
        .to_str()
        .map_err(|_| ApiError::Unauthenticated(AuthFailure::Invalid))?;
    // `to_str` admits only visible ASCII, spaces and tabs, on which ASCII whitespace is
    // all the whitespace there is.
    let mut words = value.split_ascii_whitespace();
    match words.next() {
        Some(scheme) if scheme.eq_ignore_ascii_case("bearer") => {}
        _ => return Err(ApiError::Unauthenticated(AuthFailure::Missing)),
    }
    match (words.next(), words.next()) {
        (Some(token), None) => Ok(token.to_owned()),
        _ => Err(ApiError::Unauthenticated(AuthFailure::Invalid)),
    }
}

/// Positive integer ids from the path (`{id}`, `{invitation}`, `{user}`, `{webhook}`, `{delivery}`); anything
/// else → 404.
#[derive(Debug, Clone, Copy)]
pub struct Ids {
    /// `{id}`: the organization.
    pub organization: OrganizationId,
    invitation: Option<InvitationId>,
    user: Option<UserId>,
    webhook: Option<WebhookId>,
    delivery: Option<DeliveryId>,
}

impl Ids {
    /// `{invitation}`.
    ///
    /// # Errors
    /// `NotFound` on a route without one.
    pub fn invitation(&self) -> Result<InvitationId, ApiError> {
        self.invitation.ok_or(ApiError::NotFound)
    }

    /// `{user}`: a member.
    ///
    /// # Errors
    /// `NotFound` on a route without one.
    pub fn user(&self) -> Result<UserId, ApiError> {
        self.user.ok_or(ApiError::NotFound)
    }

    /// `{webhook}`.
    ///
    /// # Errors
    /// `NotFound` on a route without one.
    pub fn webhook(&self) -> Result<WebhookId, ApiError> {
        self.webhook.ok_or(ApiError::NotFound)
    }

    /// `{delivery}`: a webhook delivery.
    ///
    /// # Errors
    /// `NotFound` on a route without one.
    pub fn delivery(&self) -> Result<DeliveryId, ApiError> {
        self.delivery.ok_or(ApiError::NotFound)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Ids {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        // The segments as sent; only one with a percent escape is decoded first (`Path`),
        // so that the usual request builds no map of owned strings.
        let raw = RawPathParams::from_request_parts(parts, state)
            .await
            .map_err(|_| ApiError::NotFound)?;
        if raw.iter().all(|(_, value)| !value.contains('%')) {
            return Self::from_params(raw.iter());
        }
        let Path(params) = Path::<HashMap<String, String>>::from_request_parts(parts, state)
            .await
            .map_err(|_| ApiError::NotFound)?;
        Self::from_params(
            params
                .iter()
                .map(|(name, value)| (name.as_str(), value.as_str())),
        )
    }
}

impl Ids {
    /// The ids of decoded path parameters: `{id}` is required, and every id present
    /// must be a positive integer.
    fn from_params<'a>(params: impl Iterator<Item = (&'a str, &'a str)>) -> Result<Self, ApiError> {
        let mut organization = None;
        let mut ids = Self {
            organization: OrganizationId::new(0),
            invitation: None,
            user: None,
            webhook: None,
            delivery: None,
        };
        for (name, value) in params {
            let id = || positive_id(value).ok_or(ApiError::NotFound);
            match name {
                "id" => organization = Some(OrganizationId::new(id()?)),
                "invitation" => ids.invitation = Some(InvitationId::new(id()?)),
                "user" => ids.user = Some(UserId::new(id()?)),
                "webhook" => ids.webhook = Some(WebhookId::new(id()?)),
                "delivery" => ids.delivery = Some(DeliveryId::new(id()?)),
                _ => {}
            }
        }
        ids.organization = organization.ok_or(ApiError::NotFound)?;
        Ok(ids)
    }
}

/// `If-Match` as the version a write expects: absent or `*` → `None`; a tag that is
/// not one of ours → a version no organization has, so the write answers 412.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IfMatch(pub Option<Version>);

/// A version no organization can have (versions count from 1).
const UNMATCHABLE: Version = Version::new(0);

/// The longest `If-Match` read; a longer one holds none of our tags (they are a few
/// digits long) and can never match.
const IF_MATCH_MAX_LENGTH: usize = 256;

impl IfMatch {
    /// Reads the header.
    #[must_use]
    pub fn from_headers(headers: &HeaderMap) -> Self {
        let Some(value) = headers.get(header::IF_MATCH) else {
            return Self(None);
        };
        // Not text, or too long to hold one of our tags: it can never match.
        let readable = value.to_str().ok();
        let Some(text) = readable.filter(|text| text.len() <= IF_MATCH_MAX_LENGTH) else {
            return Self(Some(UNMATCHABLE));
        };
        let first = text.split(',').next().unwrap_or_default().trim();
        if first == "*" {
            return Self(None);
        }
        Self(Some(
            crate::organizations::parse_etag(first).unwrap_or(UNMATCHABLE),
        ))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for IfMatch {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(Self::from_headers(&parts.headers))
    }
}

/// The query string of a list request, kept whole for pagination links.
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    /// The request path, ending in `/`.
    pub path: String,
    /// The query parameters in order.
    pub pairs: Vec<(String, String)>,
}

impl ListQuery {
    /// The last value of a parameter, as Django's `QueryDict.get`.
    #[must_use]
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .rev()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    /// A filter parameter: absent or empty → `None`.
    #[must_use]
    pub fn filter(&self, name: &str) -> Option<String> {
        self.get(name)
            .filter(|value| !value.is_empty())
            .map(str::to_owned)
    }

    /// Text filter parameters, each as [`ListQuery::filter`] and checked before it
    /// reaches a use case: a NUL character or more than 320 characters is a `400` field
    /// error on the parameter's name, all parameters reported together (CONTRACT §9).
    ///
    /// # Errors
    /// `Validation` with the errors of every refused parameter.
    pub fn filters<const N: usize>(
        &self,
        names: [&str; N],
    ) -> Result<[Option<String>; N], ApiError> {
        let mut errors = ValidationErrors::new();
        let values = names.map(|name| {
            let value = self.filter(name)?;
            errors.collect(name, filter_text(&value).map(str::to_owned))
        });
        errors.into_result().map_err(ApiError::Validation)?;
        Ok(values)
    }

    /// `?page=` and `?page_size=`.
    ///
    /// # Errors
    /// `InvalidPage` for a page that is not a positive integer.
    pub fn page_request(&self) -> Result<PageRequest, ApiError> {
        PageRequest::from_query(self.get("page"), self.get("page_size"))
            .map_err(|_| ApiError::InvalidPage)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for ListQuery {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let path = crate::links::with_trailing_slash(parts.uri.path());
        let query = parts.uri.query().unwrap_or_default();
        let pairs = form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect();
        Ok(Self { path, pairs })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(name: header::HeaderName, value: &'static str) -> HeaderMap {
        let mut map = HeaderMap::new();
        map.insert(name, HeaderValue::from_static(value));
        map
    }

    #[test]
    fn a_bearer_token_is_read_whatever_the_case_of_the_scheme() {
        let token = bearer_token(&headers(header::AUTHORIZATION, "bearer abc"));

        assert_eq!(token, Ok("abc".to_owned()));
    }

    #[test]
    fn another_scheme_counts_as_no_credentials() {
        let result = bearer_token(&headers(header::AUTHORIZATION, "Basic dXNlcjpwYXNz"));

        assert_eq!(result, Err(ApiError::Unauthenticated(AuthFailure::Missing)));
    }

    #[test]
    fn a_bearer_without_exactly_one_token_is_invalid() {
        for value in ["Bearer", "Bearer a b"] {
            let mut map = HeaderMap::new();
            map.insert(header::AUTHORIZATION, HeaderValue::from_static(value));

            assert_eq!(
                bearer_token(&map),
                Err(ApiError::Unauthenticated(AuthFailure::Invalid)),
                "{value}"
            );
        }
    }

    #[test]
    fn if_match_reads_our_tags_and_a_star() {
        assert_eq!(IfMatch::from_headers(&HeaderMap::new()), IfMatch(None));
        assert_eq!(
            IfMatch::from_headers(&headers(header::IF_MATCH, "*")),
            IfMatch(None)
        );
        assert_eq!(
            IfMatch::from_headers(&headers(header::IF_MATCH, "\"3\"")),
            IfMatch(Some(Version::new(3)))
        );
        assert_eq!(
            IfMatch::from_headers(&headers(header::IF_MATCH, "W/\"3\"")),
            IfMatch(Some(Version::new(3)))
        );
    }

    #[test]
    fn filters_refuse_a_nul_or_an_over_long_value_on_the_parameter() {
        let query = ListQuery {
            path: "/".to_owned(),
            pairs: vec![
                ("identifier".to_owned(), "a\0".to_owned()),
                ("address".to_owned(), "a".repeat(321)),
                ("role".to_owned(), "é".repeat(320)),
                ("status".to_owned(), String::new()),
            ],
        };

        let refused = query.filters(["identifier", "address", "role"]);
        let accepted = query.filters(["role", "status", "origin"]);

        let Err(ApiError::Validation(errors)) = refused else {
            panic!("expected field errors, got {refused:?}");
        };
        assert_eq!(
            errors.codes("identifier"),
            Some(&[ErrorCode::NullCharacter][..])
        );
        assert_eq!(
            errors.codes("address"),
            Some(&[ErrorCode::MaxLength { max: 320 }][..])
        );
        assert_eq!(errors.codes("role"), None);
        assert_eq!(accepted, Ok([Some("é".repeat(320)), None, None]));
    }

    proptest::proptest! {
        #[test]
        fn any_filter_value_is_refused_or_passed_on_unchanged(value in proptest::prelude::any::<String>()) {
            let query = ListQuery {
                path: "/".to_owned(),
                pairs: vec![("identifier".to_owned(), value.clone())],
            };

            if let Ok([filter]) = query.filters(["identifier"]) {
                proptest::prop_assert!(!value.contains('\0'));
                proptest::prop_assert!(value.chars().count() <= 320);
                proptest::prop_assert_eq!(filter, Some(value).filter(|v| !v.is_empty()));
            }
        }

        #[test]
        fn any_if_match_header_reads_without_panicking(value in "[ -~]{0,400}") {
            let mut map = HeaderMap::new();
            if let Ok(header) = HeaderValue::from_str(&value) {
                map.insert(header::IF_MATCH, header);
                let _ = IfMatch::from_headers(&map);
            }
        }
    }

    #[test]
    fn an_over_long_if_match_can_never_match() {
        let mut map = HeaderMap::new();
        let long = format!("\"{}\"", "1".repeat(3000));
        map.insert(
            header::IF_MATCH,
            HeaderValue::from_str(&long).expect("visible ASCII"),
        );

        assert_eq!(IfMatch::from_headers(&map), IfMatch(Some(UNMATCHABLE)));
    }

    #[test]
    fn an_unreadable_if_match_can_never_match() {
        assert_eq!(
            IfMatch::from_headers(&headers(header::IF_MATCH, "\"banana\"")),
            IfMatch(Some(UNMATCHABLE))
        );
    }
}
