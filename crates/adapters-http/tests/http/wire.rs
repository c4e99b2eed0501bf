//! Wire conventions: trailing slashes, ids, unknown routes and methods, bodies.

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use domain::Input;
use ports::inbound::{ParentLink, UseCaseError};
use serde_json::json;

use crate::support::{Mocks, TOKEN, anonymous, json_request, request, root_organization, send};

fn raw(
    method: &str,
    uri: &str,
    content_type: Option<&str>,
    body: impl Into<Body>,
) -> Request<Body> {
    let mut builder = Request::builder()
        .method(method)
        .uri(uri)
        .header(header::AUTHORIZATION, format!("Bearer {TOKEN}"));
    if let Some(content_type) = content_type {
        builder = builder.header(header::CONTENT_TYPE, content_type);
    }
    builder.body(body.into()).expect("valid request")
}

#[tokio::test]
async fn every_path_works_with_and_without_its_trailing_slash() {
    let mut mocks = Mocks::new();
    mocks
        .organizations
        .expect_get()
        .times(2)
        .returning(|_, _| Ok(root_organization()));
    let router = mocks.router();

    let with = send(router.clone(), request("GET", "/organizations/1/")).await;
    let without = send(router.clone(), request("GET", "/organizations/1")).await;
    let health = send(router, anonymous("GET", "/healthz/")).await;

    assert_eq!(with.status, StatusCode::OK);
    assert_eq!(without.status, StatusCode::OK);
    assert_eq!(with.json(), without.json());
    assert_eq!(health.status, StatusCode::OK);
}

#[tokio::test]
async fn an_id_that_is_no_positive_integer_is_404_without_calling_the_use_case() {
    let router = Mocks::new().router();

    for uri in [
        "/organizations/abc/",
        "/organizations/0/",
        "/organizations/-1/",
        "/organizations/1.5/",
        "/organizations/abc/children/",
        "/organizations/1/invitations/x/resend/",
    ] {
        let method = if uri.ends_with("resend/") {
            "POST"
        } else {
            "GET"
        };
        let answer = send(router.clone(), request(method, uri)).await;

        assert_eq!(answer.status, StatusCode::NOT_FOUND, "{uri}");
        assert_eq!(answer.json(), json!({"detail": "Not found."}), "{uri}");
    }
}

#[tokio::test]
async fn a_percent_escaped_id_is_read_decoded() {
    let mut mocks = Mocks::new();
    mocks
        .organizations
        .expect_get()
        .withf(|_, id| *id == domain::OrganizationId::new(12))
        .times(1)
        .returning(|_, _| Ok(root_organization()));
    let router = mocks.router();

    let escaped = send(router.clone(), request("GET", "/organizations/%31%32/")).await;
    let negative = send(router.clone(), request("GET", "/organizations/%2D1/")).await;
    let broken = send(router, request("GET", "/organizations/1%ZZ/")).await;

    assert_eq!(escaped.status, StatusCode::OK);
    assert_eq!(negative.status, StatusCode::NOT_FOUND);
    assert_eq!(broken.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn an_unknown_route_is_404_with_a_detail() {
    let router = Mocks::new().router();

    let answer = send(router, anonymous("GET", "/organisations/")).await;

    assert_eq!(answer.status, StatusCode::NOT_FOUND);
    assert_eq!(answer.json(), json!({"detail": "Not found."}));
    assert_eq!(answer.header("content-type"), Some("application/json"));
}

#[tokio::test]
async fn a_wrong_method_is_405_with_a_detail_and_the_allowed_methods() {
    let router = Mocks::new().router();

    let answer = send(router, request("DELETE", "/organizations/")).await;

    assert_eq!(answer.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(
        answer.json(),
        json!({"detail": "Method \"DELETE\" not allowed."})
    );
    let allow = answer.header("allow").unwrap_or_default();
    assert!(allow.contains("GET") && allow.contains("POST"), "{allow}");
}

#[tokio::test]
async fn a_body_of_another_content_type_is_415() {
    let router = Mocks::new().router();

    let answer = send(
        router,
        raw("POST", "/organizations/", Some("text/plain"), "name=x"),
    )
    .await;

    assert_eq!(answer.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(
        answer.json(),
        json!({"detail": "Unsupported media type \"text/plain\" in request."})
    );
}

#[tokio::test]
async fn a_json_content_type_with_a_charset_is_accepted() {
    let mut mocks = Mocks::new();
    mocks
        .organizations
        .expect_update()
        .times(1)
        .returning(|_, _, _, _, _| Ok(root_organization()));

    let answer = send(
        mocks.router(),
        raw(
            "PATCH",
            "/organizations/1/",
            Some("application/json; charset=utf-8"),
            "{}",
        ),
    )
    .await;

    assert_eq!(answer.status, StatusCode::OK);
}

#[tokio::test]
async fn a_body_above_64_kib_is_413() {
    let router = Mocks::new().router();
    let big = format!("{{\"name\": \"{}\"}}", "x".repeat(70 * 1024));

    let declared = {
        let mut request = raw(
            "POST",
            "/organizations/",
            Some("application/json"),
            big.clone(),
        );
        request
            .headers_mut()
            .insert(header::CONTENT_LENGTH, big.len().into());
        send(router.clone(), request).await
    };
    let streamed = send(
        router,
        raw(
            "POST",
            "/organizations/",
            Some("application/json"),
            Body::from_stream(futures::stream::iter(
                big.into_bytes()
                    .chunks(4096)
                    .map(|chunk| Ok::<_, std::io::Error>(chunk.to_vec()))
                    .collect::<Vec<_>>(),
            )),
        ),
    )
    .await;

    for answer in [declared, streamed] {
        assert_eq!(answer.status, StatusCode::PAYLOAD_TOO_LARGE);
        assert!(
            answer.json()["detail"]
                .as_str()
                .is_some_and(|d| d.contains("65536"))
        );
    }
}

#[tokio::test]
async fn malformed_json_is_400_with_a_parse_error_detail() {
    let router = Mocks::new().router();

    let answer = send(
        router,
        raw(
            "POST",
            "/organizations/",
            Some("application/json"),
            "{\"name\": ",
        ),
    )
    .await;

    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    let detail = answer.json()["detail"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(detail.starts_with("JSON parse error - "), "{detail}");
}

#[tokio::test]
async fn a_json_body_that_is_no_object_is_400_in_non_field_errors() {
    let router = Mocks::new().router();

    let answer = send(
        router,
        json_request("POST", "/organizations/", &json!(["a"])),
    )
    .await;

    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        answer.json(),
        json!({"non_field_errors": ["Invalid data. Expected a dictionary, but got list."]})
    );
}

#[tokio::test]
async fn an_empty_body_is_an_empty_object() {
    let mut mocks = Mocks::new();
    mocks
        .organizations
        .expect_create_child()
        .withf(|_, fields| {
            fields.name == Input::Absent
                && fields.contact_email == Input::Absent
                && fields.parent == ParentLink::Absent
                && fields.settings == Input::Absent
        })
        .times(1)
        .returning(|_, _| Err(UseCaseError::Forbidden));

    let answer = send(
        mocks.router(),
        raw("POST", "/organizations/", None, Body::empty()),
    )
    .await;

    assert_eq!(answer.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn unknown_and_read_only_fields_are_ignored() {
    let mut mocks = Mocks::new();
    mocks
        .organizations
        .expect_update()
        .withf(|_, _, _, fields, _| {
            fields.name == Input::Value("New".to_owned())
                && fields.contact_email == Input::Absent
                && fields.parent == ParentLink::Absent
                && fields.settings == Input::Absent
        })
        .times(1)
        .returning(|_, _, _, _, _| Ok(root_organization()));
    let body = json!({
        "name": "New",
        "url": "/organizations/99/",
        "can_attach_files": true,
        "can_external_optout": true,
        "_links": {},
        "colour": "blue"
    });

    let answer = send(
        mocks.router(),
        json_request("PATCH", "/organizations/1/", &body),
    )
    .await;

    assert_eq!(answer.status, StatusCode::OK);
}
