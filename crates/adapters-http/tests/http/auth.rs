//! Authentication: bearer tokens, `/auth/token/`, `/me/`, `/me/regen_secret/`.

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use domain::secret::SecretToken;
use domain::{ErrorCode, Input, ValidationErrors};
use ports::inbound::{AuthFailure, IssuedSession, UseCaseError};
use serde_json::json;

use crate::support::{Mocks, anonymous, at, request, send, user};

fn login_request(body: &serde_json::Value) -> Request<Body> {
    Request::builder()
        .method("POST")
        .uri("/auth/token/")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_string()))
        .expect("valid request")
}

#[tokio::test]
async fn missing_credentials_are_401_with_www_authenticate_bearer() {
    let router = Mocks::new().router();

    for uri in ["/organizations/", "/me/", "/organizations/1/opt_outs/"] {
        let answer = send(router.clone(), anonymous("GET", uri)).await;

        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{uri}");
        assert_eq!(
            answer.json(),
            json!({"detail": "Authentication credentials were not provided."})
        );
        assert_eq!(answer.header("www-authenticate"), Some("Bearer"));
    }
}

#[tokio::test]
async fn an_invalid_token_is_401_invalid_token() {
    let router = Mocks::new().router();
    let request = Request::builder()
        .uri("/organizations/")
        .header(header::AUTHORIZATION, "Bearer not-a-token")
        .body(Body::empty())
        .expect("valid request");

    let answer = send(router, request).await;

    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    assert_eq!(answer.json(), json!({"detail": "Invalid token."}));
    assert_eq!(answer.header("www-authenticate"), Some("Bearer"));
}

#[tokio::test]
async fn a_login_returns_201_with_the_token_and_its_expiry() {
    let mut mocks = Mocks::new();
    mocks
        .auth
        .expect_login()
        .withf(|identifier, password| {
            *identifier == Input::Value("admin@example.com".to_owned())
                && *password == Input::Value("secret-password".to_owned())
        })
        .times(1)
        .returning(|_, _| {
            Ok(IssuedSession {
                token: SecretToken::presented("session-token"),
                expires_at: at(3600),
            })
        });

    let answer = send(
        mocks.router(),
        login_request(&json!({"identifier": "admin@example.com", "password": "secret-password"})),
    )
    .await;

    assert_eq!(answer.status, StatusCode::CREATED);
    assert_eq!(
        answer.json(),
        json!({"token": "session-token", "expires_at": "2024-05-01T13:00:00Z"})
    );
}

#[tokio::test]
async fn wrong_credentials_are_400_in_non_field_errors() {
    let mut mocks = Mocks::new();
    mocks.auth.expect_login().returning(|_, _| {
        Err(UseCaseError::Validation(ValidationErrors::non_field(
            ErrorCode::InvalidCredentials,
        )))
    });

    let answer = send(
        mocks.router(),
        login_request(&json!({"identifier": "admin@example.com", "password": "wrong"})),
    )
    .await;

    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        answer.json(),
        json!({"non_field_errors": ["Unable to log in with provided credentials."]})
    );
}

#[tokio::test]
async fn too_many_login_attempts_are_429_with_retry_after() {
    let mut mocks = Mocks::new();
    mocks.auth.expect_login().returning(|_, _| {
        Err(UseCaseError::RateLimited {
            retry_after: chrono::TimeDelta::seconds(120),
        })
    });

    let answer = send(
        mocks.router(),
        login_request(&json!({"identifier": "a@example.com", "password": "x"})),
    )
    .await;

    assert_eq!(answer.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(answer.header("retry-after"), Some("120"));
    assert_eq!(
        answer.json(),
        json!({"detail": "Request was throttled. Expected available in 120 seconds."})
    );
}

#[tokio::test]
async fn a_rate_limit_of_no_time_left_still_asks_to_wait_one_second() {
    for retry_after in [
        chrono::TimeDelta::zero(),
        chrono::TimeDelta::milliseconds(-500),
        chrono::TimeDelta::milliseconds(1),
    ] {
        let mut mocks = Mocks::new();
        mocks
            .auth
            .expect_login()
            .returning(move |_, _| Err(UseCaseError::RateLimited { retry_after }));

        let answer = send(
            mocks.router(),
            login_request(&json!({"identifier": "a@example.com", "password": "x"})),
        )
        .await;

        assert_eq!(
            answer.status,
            StatusCode::TOO_MANY_REQUESTS,
            "{retry_after}"
        );
        assert_eq!(answer.header("retry-after"), Some("1"), "{retry_after}");
        assert_eq!(
            answer.json(),
            json!({"detail": "Request was throttled. Expected available in 1 second."})
        );
    }
}

#[tokio::test]
async fn me_shows_the_user_with_its_member_url_and_links() {
    let mut mocks = Mocks::new();
    mocks.auth.expect_me().times(1).returning(|_| Ok(user()));

    let answer = send(mocks.router(), request("GET", "/me")).await;

    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(
        answer.json(),
        json!({
            "url": "/organizations/1/users/5/",
            "identifier": "admin@example.com",
            "kind": "human",
            "first_name": "Ada",
            "last_name": "Lovelace",
            "role": "administrators",
            "organization": "/organizations/1/",
            "_links": {"regen_secret": {"href": "/me/regen_secret/"}}
        })
    );
}

#[tokio::test]
async fn me_of_a_user_that_is_gone_is_401() {
    let mut mocks = Mocks::new();
    mocks
        .auth
        .expect_me()
        .returning(|_| Err(UseCaseError::Unauthenticated(AuthFailure::Invalid)));

    let answer = send(mocks.router(), request("GET", "/me/")).await;

    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    assert_eq!(answer.header("www-authenticate"), Some("Bearer"));
}

#[tokio::test]
async fn regen_secret_returns_the_new_api_key() {
    let mut mocks = Mocks::new();
    mocks
        .auth
        .expect_regenerate_api_key()
        .times(1)
        .returning(|_| Ok(SecretToken::presented("new-key")));

    let answer = send(mocks.router(), request("POST", "/me/regen_secret/")).await;

    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.json(), json!({"api_key": "new-key"}));
}

#[tokio::test]
async fn a_login_identifier_with_a_nul_or_over_320_characters_reaches_the_use_case_as_invalid() {
    let mut mocks = Mocks::new();
    mocks
        .auth
        .expect_login()
        .withf(|identifier, password| {
            *identifier == Input::Invalid(ErrorCode::MaxLength { max: 320 })
                && *password == Input::Invalid(ErrorCode::NullCharacter)
        })
        .times(1)
        .returning(|identifier, password| {
            let mut errors = ValidationErrors::new();
            errors.collect("identifier", identifier.required());
            errors.collect("password", password.required());
            Err(UseCaseError::Validation(errors))
        });

    let answer = send(
        mocks.router(),
        login_request(&json!({"identifier": "a".repeat(321), "password": "pass\u{0}word"})),
    )
    .await;

    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        answer.json(),
        json!({
            "identifier": ["Ensure this field has no more than 320 characters."],
            "password": ["Null characters are not allowed."],
        })
    );
}

fn read_key_request(method: &str, uri: &str, language: Option<&str>) -> Request<Body> {
    let builder = Request::builder()
        .method(method)
        .uri(uri)
        .header(
            header::AUTHORIZATION,
            format!("Bearer {}", crate::support::READ_TOKEN),
        )
        .header(header::CONTENT_TYPE, "application/json");
    let builder = match language {
        Some(language) => builder.header(header::ACCEPT_LANGUAGE, language),
        None => builder,
    };
    builder.body(Body::from("{}")).expect("valid request")
}

#[tokio::test]
async fn a_read_only_key_that_writes_is_403_in_both_languages_before_the_handler_runs() {
    let mut mocks = Mocks::new();
    mocks.auth.expect_create_api_key().never();
    mocks.organizations.expect_create_child().never();
    let router = mocks.router();

    let english = send(
        router.clone(),
        read_key_request("POST", "/me/api_keys/", None),
    )
    .await;
    let french = send(
        router,
        read_key_request("POST", "/organizations/", Some("fr")),
    )
    .await;

    assert_eq!(english.status, StatusCode::FORBIDDEN);
    assert_eq!(
        english.json(),
        json!({"detail": "This API key is read-only."})
    );
    assert_eq!(french.status, StatusCode::FORBIDDEN);
    assert_eq!(
        french.json(),
        json!({"detail": "Cette clé d'API est en lecture seule."})
    );
}

#[tokio::test]
async fn a_new_api_key_is_201_with_the_key_once_and_no_store() {
    let mut mocks = Mocks::new();
    mocks
        .auth
        .expect_create_api_key()
        .withf(|_, request| {
            request.name == Input::Value("ci".to_owned())
                && request.scope == Input::Value("read".to_owned())
                && request.expires_in_days == Input::Value(90)
        })
        .returning(|_, _| {
            Ok(ports::inbound::CreatedApiKey {
                api_key: domain::api_key::ApiKey {
                    id: domain::ApiKeyId::new(3),
                    user_id: domain::UserId::new(1),
                    name: domain::api_key::ApiKeyName::parse("ci").expect("valid"),
                    prefix: Some("Ab3dE7xY".to_owned()),
                    scope: domain::api_key::Scope::Read,
                    created_at: at(0),
                    expires_at: Some(at(90 * 86_400)),
                    last_used_at: None,
                },
                key: SecretToken::presented("Ab3dE7xYsecret"),
            })
        });

    let answer = send(
        mocks.router(),
        crate::support::json_request(
            "POST",
            "/me/api_keys/",
            &json!({"name": "ci", "scope": "read", "expires_in_days": "90"}),
        ),
    )
    .await;

    assert_eq!(answer.status, StatusCode::CREATED);
    assert_eq!(answer.header("cache-control"), Some("no-store"));
    let body = answer.json();
    assert_eq!(body["url"], "/me/api_keys/3/");
    assert_eq!(body["key"], "Ab3dE7xYsecret");
    assert_eq!(body["prefix"], "Ab3dE7xY");
    assert_eq!(body["scope"], "read");
    assert_eq!(body["last_used_at"], serde_json::Value::Null);
}

#[tokio::test]
async fn revoking_a_key_of_a_bad_id_is_404_without_a_call() {
    let mut mocks = Mocks::new();
    mocks.auth.expect_revoke_api_key().never();
    let router = mocks.router();

    for uri in ["/me/api_keys/abc/", "/me/api_keys/0/", "/me/api_keys/-1/"] {
        let answer = send(router.clone(), request("DELETE", uri)).await;

        assert_eq!(answer.status, StatusCode::NOT_FOUND, "{uri}");
    }
}
