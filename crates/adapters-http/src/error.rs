//! The one HTTP error type, its status mapping, and its rendering.
//!
//! Handlers and extractors return [`ApiError`]; its `IntoResponse` sets the status and
//! headers and parks the error in the response extensions. The answer layer (`lib.rs`),
//! which sees the request, then writes the DRF-shaped body in the caller's language and
//! logs server errors with the request id (`ErrorContext::render`), so that no internals
//! reach the client.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use domain::{ErrorCode, FieldErrors, ValidationErrors};
use ports::inbound::{AuthFailure, Conflict, UseCaseError};
use ports::{Cause, ErrorChain};
use serde_json::{Map, Value, json};

use crate::catalog::{Language, MessageCode, error_text, render};
use crate::extract::language::language_of;

/// The largest request body accepted, in bytes (CONTRACT §2).
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Everything that can go wrong in a request, before it is put into words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiError {
    /// 401, with `WWW-Authenticate: Bearer`.
    Unauthenticated(AuthFailure),
    /// 403.
    Forbidden,
    /// 403: a `read` API key tried to write.
    ReadOnlyKey,
    /// 404 `Not found.`.
    NotFound,
    /// 404 `Invalid page.`.
    InvalidPage,
    /// 400 with field errors.
    Validation(ValidationErrors),
    /// 400 for malformed JSON.
    Parse(String),
    /// 405.
    MethodNotAllowed(Method),
    /// 409.
    Conflict(Conflict),
    /// 412.
    PreconditionFailed,
    /// 413.
    PayloadTooLarge,
    /// 415, with the media type that was given.
    UnsupportedMediaType(String),
    /// 429, with the wait in seconds.
    RateLimited {
        /// Seconds until a new attempt may succeed.
        retry_after_seconds: u64,
    },
    /// 503; the cause is for logs only.
    Unavailable(Cause),
    /// 503 with `Retry-After`: too busy for this request now.
    Overloaded {
        /// Seconds until a new attempt may succeed.
        retry_after_seconds: u64,
    },
    /// 500; the cause is for logs only.
    Internal(Cause),
    /// 400: an `Idempotency-Key` that is not 1 to 255 visible ASCII characters.
    InvalidIdempotencyKey,
    /// 422: the `Idempotency-Key` was used for a different request.
    IdempotencyKeyReused,
    /// 409: the request with this `Idempotency-Key` is still running.
    IdempotencyKeyInProgress,
}

impl From<UseCaseError> for ApiError {
    fn from(error: UseCaseError) -> Self {
        match error {
            UseCaseError::Unauthenticated(failure) => ApiError::Unauthenticated(failure),
            UseCaseError::NotFound => ApiError::NotFound,
            UseCaseError::Forbidden => ApiError::Forbidden,
            UseCaseError::ReadOnlyKey => ApiError::ReadOnlyKey,
            UseCaseError::Validation(errors) => ApiError::Validation(errors),
            UseCaseError::InvalidPage => ApiError::InvalidPage,
            UseCaseError::PreconditionFailed => ApiError::PreconditionFailed,
            UseCaseError::Conflict(conflict) => ApiError::Conflict(conflict),
            UseCaseError::RateLimited { retry_after } => ApiError::RateLimited {
                retry_after_seconds: whole_seconds(retry_after),
            },
            UseCaseError::Overloaded { retry_after } => ApiError::Overloaded {
                retry_after_seconds: whole_seconds(retry_after),
            },
            UseCaseError::Unavailable(reason) => ApiError::Unavailable(reason),
            UseCaseError::Internal(reason) => ApiError::Internal(reason),
        }
    }
}

/// A wait in whole seconds for `Retry-After`: rounded up, and never "at once".
fn whole_seconds(wait: domain::Duration) -> u64 {
    let millis = wait.num_milliseconds().max(0).unsigned_abs();
    millis.div_ceil(1000).max(1)
}

impl ApiError {
    /// The HTTP status of this error.
    #[must_use]
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden | ApiError::ReadOnlyKey => StatusCode::FORBIDDEN,
            ApiError::NotFound | ApiError::InvalidPage => StatusCode::NOT_FOUND,
            ApiError::Validation(_) | ApiError::Parse(_) | ApiError::InvalidIdempotencyKey => {
                StatusCode::BAD_REQUEST
            }
            ApiError::IdempotencyKeyReused => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Conflict(_) | ApiError::IdempotencyKeyInProgress => StatusCode::CONFLICT,
            ApiError::PreconditionFailed => StatusCode::PRECONDITION_FAILED,
            ApiError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable(_) | ApiError::Overloaded { .. } => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The JSON body of this error in `language`.
    #[must_use]
    pub fn body(&self, language: Language) -> Value {
        use MessageCode as M;
        let (code, param) = match self {
            Self::Validation(errors) => return validation_body(errors, language),
            Self::Unauthenticated(AuthFailure::Missing) => (M::NotAuthenticated, None),
            Self::Unauthenticated(AuthFailure::Invalid) => (M::InvalidToken, None),
            Self::Forbidden => (M::PermissionDenied, None),
            Self::ReadOnlyKey => (M::ReadOnlyKey, None),
            Self::NotFound => (M::NotFound, None),
            Self::InvalidPage => (M::InvalidPage, None),
            Self::Parse(error) => (M::ParseError, Some(("error", error.clone()))),
            Self::MethodNotAllowed(method) => {
                (M::MethodNotAllowed, Some(("method", method.to_string())))
            }
            Self::Conflict(Conflict::InvitationAccepted) => (M::InvitationAccepted, None),
            Self::Conflict(Conflict::InvitationRevoked) => (M::InvitationRevoked, None),
            Self::Conflict(Conflict::InvitationPendingElsewhere) => {
                (M::InvitationPendingElsewhere, None)
            }
            Self::Conflict(Conflict::LastAdministrator) => (M::LastAdministrator, None),
            Self::PreconditionFailed => (M::PreconditionFailed, None),
            Self::PayloadTooLarge => (
                M::PayloadTooLarge,
                Some(("max", MAX_BODY_BYTES.to_string())),
            ),
            Self::UnsupportedMediaType(given) => {
                (M::UnsupportedMediaType, Some(("media_type", given.clone())))
            }
            Self::RateLimited {
                retry_after_seconds: 1,
            } => (M::ThrottledOneSecond, None),
            Self::RateLimited {
                retry_after_seconds: wait,
            } => (M::ThrottledSeconds, Some(("wait", wait.to_string()))),
            Self::Unavailable(_) | Self::Overloaded { .. } => (M::ServiceUnavailable, None),
            Self::Internal(_) => (M::ServerError, None),
            Self::InvalidIdempotencyKey => (M::InvalidIdempotencyKey, None),
            Self::IdempotencyKeyReused => (M::IdempotencyKeyReused, None),
            Self::IdempotencyKeyInProgress => (M::IdempotencyKeyInProgress, None),
        };
        json!({ "detail": render(code, language, param) })
    }
}

/// DRF's validation shape: a list of texts per field, nested objects for nested
/// serializers, and `non_field_errors`.
fn validation_body(errors: &ValidationErrors, language: Language) -> Value {
    let texts = |codes: &[ErrorCode]| {
        Value::Array(
            codes
                .iter()
                .map(|code| Value::String(error_text(code, language)))
                .collect(),
        )
    };
    let mut map = Map::new();
    for (field, field_errors) in errors.fields() {
        let value = match field_errors {
            FieldErrors::Codes(codes) => texts(codes),
            FieldErrors::Nested(nested) => validation_body(nested, language),
        };
        map.insert(field.to_owned(), value);
    }
    if !errors.non_field_codes().is_empty() {
        map.insert(
            "non_field_errors".to_owned(),
            texts(errors.non_field_codes()),
        );
    }
    Value::Object(map)
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = self.status().into_response();
        let headers = response.headers_mut();
        match &self {
            ApiError::Unauthenticated(_) => {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            ApiError::RateLimited {
                retry_after_seconds,
            }
            | ApiError::Overloaded {
                retry_after_seconds,
            } => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_seconds));
            }
            _ => {}
        }
        response.extensions_mut().insert(self);
        response
    }
}

/// Marks an error response whose body is already written for a person (an HTML page):
/// `ErrorContext::render` logs its error but keeps the body.
#[derive(Clone, Copy)]
pub(crate) struct PageBody;

/// What rendering an error needs of its request, read before the request is handed on:
/// its language, its method and its id (kept as the header, put into words only for a
/// server error's log line).
pub(crate) struct ErrorContext {
    language: Language,
    method: Method,
    request_id: Option<HeaderValue>,
}

impl ErrorContext {
    /// The context of a request.
    pub(crate) fn of(request: &Request) -> Self {
        let headers = request.headers();
        Self {
            language: language_of(headers),
            method: request.method().clone(),
            request_id: headers.get(crate::X_REQUEST_ID).cloned(),
        }
    }

    /// The request's `X-Request-Id`, as sent or as the request-id layer set it.
    pub(crate) fn request_id(&self) -> Option<&HeaderValue> {
        self.request_id.as_ref()
    }

    /// The response, with its [`ApiError`] (if any) written as a body in the request's
    /// language and logged when it is a server error; the router's own bare 405s become
    /// DRF-shaped ones.
    pub(crate) fn render(self, mut response: Response) -> Response {
        let error = match response.extensions_mut().remove::<ApiError>() {
            Some(error) => error,
            None if response.status() == StatusCode::METHOD_NOT_ALLOWED => {
                ApiError::MethodNotAllowed(self.method)
            }
            None => return response,
        };
        // The whole chain of causes goes to the log, with the request id that the client
        // sees; the body below says only "server error" or "unavailable".
        let logged = match &error {
            ApiError::Internal(cause) => Some((cause, "internal error")),
            ApiError::Unavailable(cause) => Some((cause, "service unavailable")),
            _ => None,
        };
        if let Some((cause, message)) = logged {
            let request_id = self.request_id.as_ref().and_then(|id| id.to_str().ok());
            tracing::error!(
                request_id = %request_id.unwrap_or("-"),
                error.message = %cause,
                error.chain = %ErrorChain(cause),
                "{message}"
            );
        }
        if response.extensions().get::<PageBody>().is_some() {
            return response;
        }
        let body = error.body(self.language);
        let (mut parts, _) = response.into_parts();
        parts.headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        parts.headers.remove(header::CONTENT_LENGTH);
        parts.status = error.status();
        Response::from_parts(parts, Body::from(body.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::ErrorCode;

    #[test]
    fn a_rate_limit_of_a_fraction_of_a_second_asks_to_wait_one_second() {
        let error = ApiError::from(UseCaseError::RateLimited {
            retry_after: domain::Duration::milliseconds(300),
        });

        assert_eq!(
            error,
            ApiError::RateLimited {
                retry_after_seconds: 1
            }
        );
    }

    #[test]
    fn a_rate_limit_rounds_partial_seconds_up() {
        let error = ApiError::from(UseCaseError::RateLimited {
            retry_after: domain::Duration::milliseconds(90_001),
        });

        assert_eq!(
            error,
            ApiError::RateLimited {
                retry_after_seconds: 91
            }
        );
    }

    #[test]
    fn an_overloaded_service_answers_503_with_retry_after() {
        let error = ApiError::from(UseCaseError::Overloaded {
            retry_after: domain::Duration::milliseconds(1500),
        });

        let response = error.clone().into_response();

        assert_eq!(
            error,
            ApiError::Overloaded {
                retry_after_seconds: 2
            }
        );
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(
            response.headers().get(header::RETRY_AFTER),
            Some(&HeaderValue::from(2_u64))
        );
        assert_eq!(
            error.body(Language::English),
            serde_json::json!({"detail": "Service temporarily unavailable, try again later."})
        );
    }

    #[test]
    fn nested_settings_errors_render_as_a_nested_object() {
        let mut errors = ValidationErrors::new();
        errors.add_nested(
            "settings",
            ValidationErrors::single("nickname", ErrorCode::InvalidNickname),
        );
        errors.add_non_field(ErrorCode::InvalidCredentials);

        let body = ApiError::Validation(errors).body(Language::English);

        assert_eq!(
            body,
            serde_json::json!({
                "settings": {"nickname": ["Nickname can only contain lowercase letters, numbers and dashes. It must be between 4 and 30 characters long"]},
                "non_field_errors": ["Unable to log in with provided credentials."]
            })
        );
    }

    #[test]
    fn internal_errors_never_show_their_reason() {
        let body = ApiError::Internal(Cause::new("SELECT * FROM secrets failed at /src/db.rs"))
            .body(Language::English);

        assert_eq!(
            body,
            serde_json::json!({"detail": "A server error occurred."})
        );
    }
}
