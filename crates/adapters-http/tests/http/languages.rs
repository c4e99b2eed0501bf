//! Messages in English and French by `Accept-Language`.

use axum::http::StatusCode;
use domain::{ErrorCode, ValidationErrors};
use ports::inbound::UseCaseError;
use serde_json::json;

use crate::support::{Mocks, anonymous, json_request, send};

fn with_language(
    mut request: axum::http::Request<axum::body::Body>,
    language: &str,
) -> axum::http::Request<axum::body::Body> {
    request
        .headers_mut()
        .insert("accept-language", language.parse().expect("valid header"));
    request
}

#[tokio::test]
async fn the_seed_french_email_error_answers_a_put_under_accept_language_fr() {
    let mut mocks = Mocks::new();
    mocks
        .organizations
        .expect_update()
        .returning(|_, _, _, _, _| {
            Err(UseCaseError::Validation(ValidationErrors::single(
                "contact_email",
                ErrorCode::InvalidEmail,
            )))
        });
    let body = json!({"name": "Example", "contact_email": "not-an-email"});

    let answer = send(
        mocks.router(),
        with_language(json_request("PUT", "/organizations/1/", &body), "fr"),
    )
    .await;

    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        answer.json(),
        json!({"contact_email": ["Saisissez une adresse email valable."]})
    );
}

#[tokio::test]
async fn the_same_error_is_english_by_default() {
    let mut mocks = Mocks::new();
    mocks
        .organizations
        .expect_update()
        .returning(|_, _, _, _, _| {
            Err(UseCaseError::Validation(ValidationErrors::single(
                "contact_email",
                ErrorCode::InvalidEmail,
            )))
        });

    let answer = send(
        mocks.router(),
        json_request("PUT", "/organizations/1/", &json!({})),
    )
    .await;

    assert_eq!(
        answer.json(),
        json!({"contact_email": ["Enter a valid email address."]})
    );
}

#[tokio::test]
async fn regional_french_with_quality_values_chooses_french() {
    let router = Mocks::new().router();

    for language in ["fr-FR", "fr-CA;q=0.9,en;q=0.8", "en;q=0.1, fr"] {
        let answer = send(
            router.clone(),
            with_language(anonymous("GET", "/me/"), language),
        )
        .await;

        assert_eq!(
            answer.json(),
            json!({"detail": "Informations d'authentification non fournies."}),
            "{language}"
        );
    }
}

#[tokio::test]
async fn other_languages_get_english() {
    let router = Mocks::new().router();

    for language in ["de", "en-GB", "es;q=0.9"] {
        let answer = send(
            router.clone(),
            with_language(anonymous("GET", "/nowhere/"), language),
        )
        .await;

        assert_eq!(answer.json(), json!({"detail": "Not found."}), "{language}");
    }
}

#[tokio::test]
async fn wire_errors_are_translated_too() {
    let router = Mocks::new().router();

    let answer = send(
        router,
        with_language(crate::support::request("DELETE", "/organizations/"), "fr"),
    )
    .await;

    assert_eq!(
        answer.json(),
        json!({"detail": "Méthode \"DELETE\" non autorisée."})
    );
}
