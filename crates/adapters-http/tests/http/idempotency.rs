//! `Idempotency-Key` in the HTTP layer, on a mocked idempotency port: what reaches the
//! port, what is kept, and how its answers are written.

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use domain::UserId;
use domain::idempotency::{IdempotencyKey, RecordedResponse, RequestFingerprint};
use domain::secret::SecretToken;
use ports::inbound::{IdempotencyTicket, IdempotentStart};
use serde_json::json;

use crate::support::{Mocks, TOKEN, request, send};

fn with_key(method: &str, uri: &str, key: &str) -> Request<Body> {
    let mut request = request(method, uri);
    request
        .headers_mut()
        .insert("idempotency-key", key.parse().expect("a header value"));
    request
}

fn ticket() -> IdempotencyTicket {
    IdempotencyTicket {
        user: UserId::new(5),
        key: IdempotencyKey::parse(b"k-1").expect("valid"),
        attempt: 1,
    }
}

#[tokio::test]
async fn a_run_keeps_the_response_without_its_secret_and_sends_it_whole() {
    let mut mocks = Mocks::new();
    mocks
        .idempotency
        .expect_start()
        .withf(|actor, key, fingerprint| {
            actor.user_id == UserId::new(5)
                && key.as_str() == "k-1"
                && *fingerprint == RequestFingerprint::of("POST", "/me/regen_secret", None, b"{}")
        })
        .times(1)
        .returning(|_, _, _| Ok(IdempotentStart::Run(ticket())));
    mocks
        .auth
        .expect_regenerate_api_key()
        .times(1)
        .returning(|_| Ok(SecretToken::presented("new-key")));
    mocks
        .idempotency
        .expect_finish()
        .withf(|ticket_given, response| {
            *ticket_given == ticket()
                && response.status == 200
                && serde_json::from_slice::<serde_json::Value>(&response.body).ok()
                    == Some(json!({"api_key": null}))
                && response
                    .headers
                    .contains(&("cache-control".to_owned(), "no-store".to_owned()))
        })
        .times(1)
        .returning(|_, _| Ok(()));

    let answer = send(mocks.router(), with_key("POST", "/me/regen_secret/", "k-1")).await;

    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.json(), json!({"api_key": "new-key"}));
    assert_eq!(answer.header("idempotent-replayed"), None);
}

#[tokio::test]
async fn a_replay_answers_the_kept_response_without_running_anything() {
    let mut mocks = Mocks::new();
    mocks
        .idempotency
        .expect_start()
        .times(1)
        .returning(|_, _, _| {
            Ok(IdempotentStart::Replay(RecordedResponse {
                status: 200,
                headers: vec![("content-type".to_owned(), "application/json".to_owned())],
                body: br#"{"api_key":null}"#.to_vec(),
            }))
        });
    mocks.auth.expect_regenerate_api_key().never();
    mocks.idempotency.expect_finish().never();

    let answer = send(mocks.router(), with_key("POST", "/me/regen_secret/", "k-1")).await;

    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.json(), json!({"api_key": null}));
    assert_eq!(answer.header("idempotent-replayed"), Some("true"));
    assert_eq!(answer.header("content-type"), Some("application/json"));
}

#[tokio::test]
async fn a_reused_key_is_422_and_a_running_one_409_in_the_callers_language() {
    for (start, status, detail) in [
        (
            IdempotentStart::KeyReused,
            StatusCode::UNPROCESSABLE_ENTITY,
            "Cette Idempotency-Key a déjà servi pour une autre requête.",
        ),
        (
            IdempotentStart::InProgress,
            StatusCode::CONFLICT,
            "Une requête avec cette Idempotency-Key est encore en cours de traitement.",
        ),
    ] {
        let mut mocks = Mocks::new();
        mocks
            .idempotency
            .expect_start()
            .times(1)
            .returning(move |_, _, _| Ok(start.clone()));
        mocks.auth.expect_regenerate_api_key().never();
        let mut request = with_key("POST", "/me/regen_secret/", "k-1");
        request
            .headers_mut()
            .insert(header::ACCEPT_LANGUAGE, "fr".parse().expect("a value"));

        let answer = send(mocks.router(), request).await;

        assert_eq!(answer.status, status);
        assert_eq!(answer.json(), json!({"detail": detail}));
    }
}

#[tokio::test]
async fn a_refused_request_hands_its_rendered_error_to_the_port() {
    let mut mocks = Mocks::new();
    mocks
        .idempotency
        .expect_start()
        .times(1)
        .returning(|_, _, _| Ok(IdempotentStart::Run(ticket())));
    mocks
        .auth
        .expect_regenerate_api_key()
        .times(1)
        .returning(|_| Err(ports::inbound::UseCaseError::Forbidden));
    mocks
        .idempotency
        .expect_finish()
        .withf(|_, response| {
            response.status == 403
                && serde_json::from_slice::<serde_json::Value>(&response.body).ok()
                    == Some(json!({"detail": "You do not have permission to perform this action."}))
        })
        .times(1)
        .returning(|_, _| Ok(()));

    let answer = send(mocks.router(), with_key("POST", "/me/regen_secret/", "k-1")).await;

    assert_eq!(answer.status, StatusCode::FORBIDDEN);
    assert_eq!(
        answer.json(),
        json!({"detail": "You do not have permission to perform this action."})
    );
}

#[tokio::test]
async fn without_a_key_or_on_another_method_the_port_is_not_called() {
    let mut mocks = Mocks::new();
    mocks.idempotency.expect_start().never();
    mocks
        .auth
        .expect_regenerate_api_key()
        .times(1)
        .returning(|_| Ok(SecretToken::presented("new-key")));
    mocks
        .auth
        .expect_me()
        .returning(|_| Ok(crate::support::user()));
    let router = mocks.router();

    let plain = send(router.clone(), request("POST", "/me/regen_secret/")).await;
    let get = send(router, with_key("GET", "/me/", "k-1")).await;

    assert_eq!(plain.status, StatusCode::OK);
    assert_eq!(get.status, StatusCode::OK);
}

#[tokio::test]
async fn the_caller_is_authenticated_once_and_before_the_key_is_read() {
    let mut mocks = Mocks::new();
    mocks.auth.checkpoint();
    mocks
        .auth
        .expect_authenticate()
        .withf(|token, _| token == TOKEN)
        .times(1)
        .returning(|_, _| Ok(crate::support::admin()));
    mocks
        .idempotency
        .expect_start()
        .times(1)
        .returning(|_, _, _| Ok(IdempotentStart::InProgress));

    let answer = send(mocks.router(), with_key("POST", "/me/regen_secret/", "k-1")).await;

    assert_eq!(answer.status, StatusCode::CONFLICT);
}

#[tokio::test]
async fn a_request_that_panics_frees_its_key_and_answers_500() {
    let mut mocks = Mocks::new();
    mocks
        .idempotency
        .expect_start()
        .times(1)
        .returning(|_, _, _| Ok(IdempotentStart::Run(ticket())));
    // No expectation: the mocked use case panics when called.
    mocks.idempotency.expect_finish().never();
    mocks
        .idempotency
        .expect_abandon()
        .withf(|given| *given == ticket())
        .times(1)
        .returning(|_| Ok(()));

    let answer = send(mocks.router(), with_key("POST", "/me/regen_secret/", "k-1")).await;

    assert_eq!(answer.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(answer.json(), json!({"detail": "A server error occurred."}));
}
