//! Webhooks: the body reaches the use case as read, the secret is shown with
//! `Cache-Control: no-store`, deliveries are shown as CONTRACT §14 shows them, and the
//! new messages exist in both languages.

use axum::http::StatusCode;
use domain::audit::EventAction;
use domain::webhook::{Delivery, DeliveryStatus, Endpoint, EventPattern, Webhook, WebhookSecret};
use domain::{DeliveryId, ErrorCode, EventId, Input, OrganizationId, ValidationErrors, WebhookId};
use ports::inbound::UseCaseError;
use serde_json::json;

use crate::support::{Mocks, at, json_request, page, request, send};

fn webhook() -> Webhook {
    Webhook {
        id: WebhookId::new(3),
        organization_id: OrganizationId::new(1),
        endpoint: Endpoint::from_stored("https://hooks.example.com/orgs".to_owned()),
        events: vec![
            EventPattern::Prefix("member.".to_owned()),
            EventPattern::Exactly(EventAction::OrganizationUpdated),
        ],
        description: "CRM sync".to_owned(),
        active: true,
        created_at: at(0),
    }
}

#[tokio::test]
async fn creation_passes_the_fields_and_shows_the_secret_once_with_no_store() {
    let mut mocks = Mocks::new();
    mocks
        .webhooks
        .expect_create()
        .withf(|_, organization, input| {
            *organization == OrganizationId::new(1)
                && input.endpoint == Input::Value("https://hooks.example.com/orgs".to_owned())
                && input.events
                    == Input::Value(vec![
                        "member.*".to_owned(),
                        "organization.updated".to_owned(),
                    ])
                && input.active == Input::Absent
        })
        .times(1)
        .returning(|_, _, _| {
            Ok((
                webhook(),
                WebhookSecret::from_stored("whsec_c2VjcmV0".to_owned()),
            ))
        });
    let body = json!({"endpoint": "https://hooks.example.com/orgs",
        "events": ["member.*", "organization.updated"], "description": "CRM sync"});

    let answer = send(
        mocks.router(),
        json_request("POST", "/organizations/1/webhooks/", &body),
    )
    .await;

    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.text());
    assert_eq!(answer.header("cache-control"), Some("no-store"));
    assert_eq!(
        answer.json(),
        json!({"url": "/organizations/1/webhooks/3/", "endpoint": "https://hooks.example.com/orgs",
            "events": ["member.*", "organization.updated"], "description": "CRM sync",
            "active": true, "created_at": "2024-05-01T12:00:00Z", "secret": "whsec_c2VjcmV0"})
    );
}

#[tokio::test]
async fn events_that_are_not_a_list_are_refused_in_both_languages() {
    let mut mocks = Mocks::new();
    mocks.webhooks.expect_create().returning(|_, _, input| {
        assert_eq!(input.events, Input::Invalid(ErrorCode::NotAList));
        let mut errors = ValidationErrors::new();
        errors.add("events", ErrorCode::NotAList);
        errors.add("endpoint", ErrorCode::AddressNotAllowed);
        Err(UseCaseError::Validation(errors))
    });
    let router = mocks.router();
    let body = json!({"endpoint": "http://127.0.0.1/", "events": "member.*"});

    let english = send(
        router.clone(),
        json_request("POST", "/organizations/1/webhooks/", &body),
    )
    .await;
    let mut french = json_request("POST", "/organizations/1/webhooks/", &body);
    french
        .headers_mut()
        .insert("accept-language", "fr".parse().expect("header"));
    let french = send(router, french).await;

    assert_eq!(english.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        english.json(),
        json!({"endpoint": ["This address is not allowed."], "events": ["Expected a list of items."]})
    );
    assert_eq!(
        french.json(),
        json!({"endpoint": ["Cette adresse n'est pas autorisée."], "events": ["Une liste d'éléments est attendue."]})
    );
}

#[tokio::test]
async fn deliveries_are_shown_newest_first_as_the_contract() {
    let mut mocks = Mocks::new();
    mocks
        .webhooks
        .expect_deliveries()
        .withf(|_, organization, webhook, _| {
            *organization == OrganizationId::new(1) && *webhook == WebhookId::new(3)
        })
        .returning(|_, _, _, _| {
            Ok(page(
                vec![Delivery {
                    id: DeliveryId::new(8),
                    webhook_id: WebhookId::new(3),
                    event_id: EventId::new(41),
                    action: EventAction::MemberRemoved,
                    status: DeliveryStatus::Pending,
                    attempts: 3,
                    last_status_code: Some(500),
                    last_error: None,
                    next_attempt_at: Some(at(60)),
                    created_at: at(0),
                }],
                1,
                1,
                50,
            ))
        });
    mocks
        .webhooks
        .expect_retry_delivery()
        .withf(|_, _, webhook, delivery| {
            *webhook == WebhookId::new(3) && *delivery == DeliveryId::new(8)
        })
        .returning(|_, _, _, _| Ok(()));
    let router = mocks.router();

    let listed = send(
        router.clone(),
        request("GET", "/organizations/1/webhooks/3/deliveries/"),
    )
    .await;
    let retried = send(
        router,
        request("POST", "/organizations/1/webhooks/3/deliveries/8/retry/"),
    )
    .await;

    assert_eq!(listed.status, StatusCode::OK, "{}", listed.text());
    assert_eq!(
        listed.json()["results"][0],
        json!({"url": "/organizations/1/webhooks/3/deliveries/8/", "event": 41,
            "type": "member.removed", "status": "pending", "attempts": 3,
            "last_status_code": 500, "last_error": null,
            "next_attempt_at": "2024-05-01T12:01:00Z", "created_at": "2024-05-01T12:00:00Z"})
    );
    assert_eq!(retried.status, StatusCode::ACCEPTED);
}
