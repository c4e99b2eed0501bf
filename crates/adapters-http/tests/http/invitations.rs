//! Invitations: invite, list, resend, revoke, accept.

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use domain::invitation::InvitationStatus;
use domain::secret::SecretToken;
use domain::{ErrorCode, Input, InvitationId, OrganizationId, ValidationErrors};
use ports::inbound::{AcceptedInvitation, Conflict, UseCaseError};
use serde_json::json;

use crate::support::{Mocks, invitation, json_request, page, request, send, user};

#[tokio::test]
async fn inviting_answers_201_with_the_invitation_and_its_location() {
    let mut mocks = Mocks::new();
    mocks
        .invitations
        .expect_invite()
        .withf(|_, organization, request| {
            *organization == OrganizationId::new(1)
                && request.identifier == Input::Value("new@example.com".to_owned())
                && request.role == Input::Absent
                && request.expires_in_days == Input::Value(7)
        })
        .times(1)
        .returning(|_, _, _| Ok(invitation()));
    let body = json!({"identifier": "new@example.com", "expires_in_days": "7"});

    let answer = send(
        mocks.router(),
        json_request("POST", "/organizations/1/invite_user/", &body),
    )
    .await;

    assert_eq!(answer.status, StatusCode::CREATED);
    assert_eq!(
        answer.header("location"),
        Some("/organizations/1/invitations/7/")
    );
    let body = answer.json();
    assert_eq!(body["identifier"], "new@example.com");
    assert_eq!(body["role"], "users");
    assert_eq!(body["status"], "pending");
    assert_eq!(body["url"], "/organizations/1/invitations/7/");
    assert_eq!(body["invited_by"], "/organizations/1/users/5/");
    assert!(
        body["expires_at"]
            .as_str()
            .is_some_and(|at| at.ends_with('Z'))
    );
}

#[tokio::test]
async fn invitation_errors_are_field_errors() {
    let mut mocks = Mocks::new();
    mocks.invitations.expect_invite().returning(|_, _, _| {
        let mut errors = ValidationErrors::new();
        errors.add("identifier", ErrorCode::AlreadyInvited);
        errors.add(
            "role",
            ErrorCode::InvalidChoice {
                value: "xyz".to_owned(),
            },
        );
        errors.add("expires_in_days", ErrorCode::MaxValue { max: 30 });
        Err(UseCaseError::Validation(errors))
    });

    let answer = send(
        mocks.router(),
        json_request(
            "POST",
            "/organizations/1/invite_user/",
            &json!({"role": "xyz"}),
        ),
    )
    .await;

    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        answer.json(),
        json!({
            "expires_in_days": ["Ensure this value is less than or equal to 30."],
            "identifier": ["This identifier has already been invited."],
            "role": ["\"xyz\" is not a valid choice."]
        })
    );
}

#[tokio::test]
async fn a_non_integer_expiry_reaches_the_use_case_as_invalid() {
    let mut mocks = Mocks::new();
    mocks
        .invitations
        .expect_invite()
        .withf(|_, _, request| request.expires_in_days == Input::Invalid(ErrorCode::InvalidInteger))
        .times(1)
        .returning(|_, _, _| {
            Err(UseCaseError::Validation(ValidationErrors::single(
                "expires_in_days",
                ErrorCode::InvalidInteger,
            )))
        });

    let answer = send(
        mocks.router(),
        json_request(
            "POST",
            "/organizations/1/invite_user/",
            &json!({"expires_in_days": "soon"}),
        ),
    )
    .await;

    assert_eq!(
        answer.json(),
        json!({"expires_in_days": ["A valid integer is required."]})
    );
}

#[tokio::test]
async fn too_many_invitations_are_429_with_retry_after() {
    let mut mocks = Mocks::new();
    mocks.invitations.expect_invite().returning(|_, _, _| {
        Err(UseCaseError::RateLimited {
            retry_after: chrono::TimeDelta::seconds(1),
        })
    });

    let answer = send(
        mocks.router(),
        json_request(
            "POST",
            "/organizations/1/invite_user/",
            &json!({"identifier": "a@example.com"}),
        ),
    )
    .await;

    assert_eq!(answer.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(answer.header("retry-after"), Some("1"));
    assert_eq!(
        answer.json(),
        json!({"detail": "Request was throttled. Expected available in 1 second."})
    );
}

#[tokio::test]
async fn the_list_passes_the_status_filter_and_shows_each_status() {
    let mut mocks = Mocks::new();
    mocks
        .invitations
        .expect_list()
        .withf(|_, organization, status, _| {
            *organization == OrganizationId::new(1) && status.as_deref() == Some("pending")
        })
        .times(1)
        .returning(|_, _, _, _| Ok(page(vec![invitation()], 120, 1, 50)));

    let answer = send(
        mocks.router(),
        request("GET", "/organizations/1/invitations/?status=pending"),
    )
    .await;

    assert_eq!(answer.status, StatusCode::OK);
    let body = answer.json();
    assert_eq!(
        body["next"],
        "/organizations/1/invitations/?page=2&status=pending"
    );
    let keys: Vec<&str> = body["results"][0]
        .as_object()
        .map(|o| o.keys().map(String::as_str).collect())
        .unwrap_or_default();
    for key in [
        "url",
        "identifier",
        "role",
        "status",
        "invited_by",
        "created_at",
        "expires_at",
    ] {
        assert!(keys.contains(&key), "{key} missing");
    }
}

#[tokio::test]
async fn an_unknown_status_filter_is_400() {
    let mut mocks = Mocks::new();
    mocks
        .invitations
        .expect_list()
        .returning(|_, _, status, _| {
            Err(UseCaseError::Validation(ValidationErrors::single(
                "status",
                ErrorCode::InvalidChoice {
                    value: status.unwrap_or_default(),
                },
            )))
        });

    let answer = send(
        mocks.router(),
        request("GET", "/organizations/1/invitations?status=lost"),
    )
    .await;

    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        answer.json(),
        json!({"status": ["\"lost\" is not a valid choice."]})
    );
}

#[tokio::test]
async fn one_invitation_answers_200_as_it_appears_in_the_list() {
    let mut mocks = Mocks::new();
    let shown = invitation();
    let listed = shown.clone();
    mocks
        .invitations
        .expect_get()
        .withf(|_, organization, id| {
            *organization == OrganizationId::new(1) && *id == InvitationId::new(7)
        })
        .times(2)
        .returning(move |_, _, _| Ok(shown.clone()));
    mocks
        .invitations
        .expect_list()
        .returning(move |_, _, _, _| Ok(page(vec![listed.clone()], 1, 1, 50)));
    let router = mocks.router();

    let with = send(
        router.clone(),
        request("GET", "/organizations/1/invitations/7/"),
    )
    .await;
    let without = send(
        router.clone(),
        request("GET", "/organizations/1/invitations/7"),
    )
    .await;
    let list = send(router, request("GET", "/organizations/1/invitations/")).await;

    assert_eq!(with.status, StatusCode::OK);
    assert_eq!(without.status, StatusCode::OK);
    let body = with.json();
    assert_eq!(body, without.json());
    assert_eq!(body, list.json()["results"][0]);
    assert_eq!(body["url"], "/organizations/1/invitations/7/");
    assert_eq!(body["status"], "pending");
    assert_eq!(body["invited_by"], "/organizations/1/users/5/");
}

#[tokio::test]
async fn one_invitation_shows_the_status_its_use_case_computed() {
    // The use case computes the status with its clock; the adapter only writes it, and
    // reads no clock of its own: an invitation whose expiry lies ahead shows `expired`
    // when the use case says so.
    let mut mocks = Mocks::new();
    mocks.invitations.expect_get().returning(|_, _, _| {
        let mut shown = invitation();
        shown.status = InvitationStatus::Expired;
        Ok(shown)
    });

    let answer = send(
        mocks.router(),
        request("GET", "/organizations/1/invitations/7/"),
    )
    .await;

    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.json()["status"], "expired");
}

#[tokio::test]
async fn one_invitation_is_404_when_hidden_and_403_when_forbidden() {
    for (error, status) in [
        (UseCaseError::NotFound, StatusCode::NOT_FOUND),
        (UseCaseError::Forbidden, StatusCode::FORBIDDEN),
    ] {
        let mut mocks = Mocks::new();
        let returned = error.clone();
        mocks
            .invitations
            .expect_get()
            .returning(move |_, _, _| Err(returned.clone()));

        let answer = send(
            mocks.router(),
            request("GET", "/organizations/1/invitations/7/"),
        )
        .await;

        assert_eq!(answer.status, status);
        assert!(answer.json()["detail"].is_string());
    }
}

#[tokio::test]
async fn an_invitation_id_that_is_no_positive_integer_is_404_without_calling_the_use_case() {
    let router = Mocks::new().router();

    for uri in [
        "/organizations/1/invitations/abc/",
        "/organizations/1/invitations/0",
    ] {
        let answer = send(router.clone(), request("GET", uri)).await;

        assert_eq!(answer.status, StatusCode::NOT_FOUND, "{uri}");
        assert_eq!(answer.json(), json!({"detail": "Not found."}), "{uri}");
    }
}

#[tokio::test]
async fn too_many_resends_are_429_with_retry_after_rounded_up() {
    let mut mocks = Mocks::new();
    mocks.invitations.expect_resend().returning(|_, _, _| {
        Err(UseCaseError::RateLimited {
            retry_after: chrono::TimeDelta::milliseconds(59_001),
        })
    });

    let answer = send(
        mocks.router(),
        request("POST", "/organizations/1/invitations/7/resend/"),
    )
    .await;

    assert_eq!(answer.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(answer.header("retry-after"), Some("60"));
    assert_eq!(
        answer.json(),
        json!({"detail": "Request was throttled. Expected available in 60 seconds."})
    );
}

#[tokio::test]
async fn resending_answers_202_with_the_invitation() {
    let mut mocks = Mocks::new();
    mocks
        .invitations
        .expect_resend()
        .withf(|_, organization, id| {
            *organization == OrganizationId::new(1) && *id == InvitationId::new(7)
        })
        .times(1)
        .returning(|_, _, _| Ok(invitation()));

    let answer = send(
        mocks.router(),
        request("POST", "/organizations/1/invitations/7/resend"),
    )
    .await;

    assert_eq!(answer.status, StatusCode::ACCEPTED);
    assert_eq!(answer.json()["url"], "/organizations/1/invitations/7/");
}

#[tokio::test]
async fn each_conflict_is_409_with_its_own_detail() {
    let cases = [
        (
            Conflict::InvitationAccepted,
            "This invitation has already been accepted.",
        ),
        (
            Conflict::InvitationRevoked,
            "This invitation has been revoked.",
        ),
        (
            Conflict::InvitationPendingElsewhere,
            "Another pending invitation exists for this identifier.",
        ),
    ];
    for (conflict, detail) in cases {
        let mut mocks = Mocks::new();
        mocks
            .invitations
            .expect_resend()
            .returning(move |_, _, _| Err(UseCaseError::Conflict(conflict)));

        let answer = send(
            mocks.router(),
            request("POST", "/organizations/1/invitations/7/resend/"),
        )
        .await;

        assert_eq!(answer.status, StatusCode::CONFLICT);
        assert_eq!(answer.json(), json!({"detail": detail}));
    }
}

#[tokio::test]
async fn revoking_answers_204() {
    let mut mocks = Mocks::new();
    mocks
        .invitations
        .expect_revoke()
        .withf(|_, organization, id| {
            *organization == OrganizationId::new(1) && *id == InvitationId::new(7)
        })
        .times(1)
        .returning(|_, _, _| Ok(()));

    let answer = send(
        mocks.router(),
        request("DELETE", "/organizations/1/invitations/7/"),
    )
    .await;

    assert_eq!(answer.status, StatusCode::NO_CONTENT);
}

fn accept_request(body: &serde_json::Value) -> Request<Body> {
    Request::builder()
        .method("POST")
        .uri("/invitations/accept/")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_string()))
        .expect("valid request")
}

#[tokio::test]
async fn accepting_needs_no_authentication_and_answers_201_with_the_api_key() {
    let mut mocks = Mocks::new();
    mocks
        .invitations
        .expect_accept()
        .withf(|request, request_id| {
            // The request id the request-id layer gave it reaches the use case.
            request_id.is_some()
                && request.token == Input::Value("tok".to_owned())
                && request.password == Input::Value("long-password".to_owned())
                && request.first_name == Input::Value("Ada".to_owned())
                && request.last_name == Input::Value("Lovelace".to_owned())
        })
        .times(1)
        .returning(|_, _| {
            Ok(AcceptedInvitation {
                user: user(),
                api_key: SecretToken::presented("first-key"),
            })
        });
    let body = json!({"token": "tok", "password": "long-password", "first_name": "Ada", "last_name": "Lovelace"});

    let answer = send(mocks.router(), accept_request(&body)).await;

    assert_eq!(answer.status, StatusCode::CREATED);
    assert_eq!(answer.header("location"), Some("/organizations/1/users/5/"));
    assert_eq!(
        answer.json(),
        json!({
            "identifier": "admin@example.com",
            "organization": "/organizations/1/",
            "role": "administrators",
            "api_key": "first-key"
        })
    );
}

#[tokio::test]
async fn an_invalid_token_or_short_password_is_400() {
    let mut mocks = Mocks::new();
    mocks.invitations.expect_accept().returning(|_, _| {
        let mut errors = ValidationErrors::new();
        errors.add("token", ErrorCode::InvalidInvitation);
        errors.add("password", ErrorCode::MinLength { min: 8 });
        Err(UseCaseError::Validation(errors))
    });

    let answer = send(
        mocks.router(),
        accept_request(&json!({"token": "x", "password": "short"})),
    )
    .await;

    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        answer.json(),
        json!({
            "password": ["Ensure this field has at least 8 characters."],
            "token": ["Invalid or expired invitation."]
        })
    );
}
