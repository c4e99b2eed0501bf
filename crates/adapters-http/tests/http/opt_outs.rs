//! Opt-outs: record, list, CSV streaming.

use axum::http::StatusCode;
use domain::optout::{OptOutOrigin, OptOutRecorded};
use domain::{Input, OrganizationId};
use futures::StreamExt;
use ports::inbound::UseCaseError;
use serde_json::json;

use crate::support::{Mocks, json_request, opt_out, page, request, send};

#[tokio::test]
async fn a_new_opt_out_is_201_and_a_known_one_200() {
    let mut mocks = Mocks::new();
    mocks
        .opt_outs
        .expect_record()
        .withf(|_, organization, request| {
            *organization == OrganizationId::new(1)
                && request.address == Input::Value("a@example.com".to_owned())
                && request.origin == Input::Absent
        })
        .times(1)
        .returning(|_, _, _| {
            Ok(OptOutRecorded::Created(opt_out(
                "a@example.com",
                OptOutOrigin::Api,
                0,
            )))
        });
    mocks
        .opt_outs
        .expect_record()
        .withf(|_, _, request| request.origin == Input::Value("web".to_owned()))
        .times(1)
        .returning(|_, _, _| {
            Ok(OptOutRecorded::Updated(opt_out(
                "a@example.com",
                OptOutOrigin::Web,
                60,
            )))
        });
    let router = mocks.router();

    let created = send(
        router.clone(),
        json_request(
            "POST",
            "/organizations/1/opt_outs/",
            &json!({"address": "a@example.com"}),
        ),
    )
    .await;
    let updated = send(
        router,
        json_request(
            "POST",
            "/organizations/1/opt_outs",
            &json!({"address": "a@example.com", "origin": "web"}),
        ),
    )
    .await;

    assert_eq!(created.status, StatusCode::CREATED);
    assert_eq!(
        created.json(),
        json!({"address": "a@example.com", "origin": "api", "creation_date": "2024-05-01T12:00:00Z"})
    );
    assert_eq!(updated.status, StatusCode::OK);
    assert_eq!(updated.json()["origin"], "web");
}

#[tokio::test]
async fn the_list_passes_its_filters_and_keeps_them_in_links() {
    let mut mocks = Mocks::new();
    mocks
        .opt_outs
        .expect_list()
        .withf(|_, _, address, origin, _| {
            address.as_deref() == Some("a@example.com") && origin.as_deref() == Some("bounce")
        })
        .times(1)
        .returning(|_, _, _, _, _| {
            Ok(page(
                vec![
                    opt_out("a@example.com", OptOutOrigin::Bounce, 60),
                    opt_out("a@example.com", OptOutOrigin::Bounce, 0),
                ],
                4,
                1,
                2,
            ))
        });

    let answer = send(
        mocks.router(),
        request(
            "GET",
            "/organizations/1/opt_outs/?address=a%40example.com&origin=bounce&page_size=2",
        ),
    )
    .await;

    assert_eq!(answer.status, StatusCode::OK);
    let body = answer.json();
    assert_eq!(
        body["next"],
        "/organizations/1/opt_outs/?address=a%40example.com&origin=bounce&page=2&page_size=2"
    );
    assert_eq!(body["results"][0]["creation_date"], "2024-05-01T12:01:00Z");
}

fn export_mocks() -> Mocks {
    let mut mocks = Mocks::new();
    mocks
        .opt_outs
        .expect_export()
        .withf(|_, _, _, origin| origin.as_deref() == Some("api"))
        .times(1)
        .returning(|_, _, _, _| {
            let rows = vec![
                Ok(opt_out("b@example.com", OptOutOrigin::Api, 60)),
                Ok(opt_out("a@example.com", OptOutOrigin::Api, 0)),
            ];
            Ok(futures::stream::iter(rows).boxed())
        });
    mocks
}

#[tokio::test]
async fn accept_text_csv_streams_every_row_as_csv() {
    let mut request = request("GET", "/organizations/1/opt_outs/?origin=api");
    request
        .headers_mut()
        .insert("accept", "text/csv".parse().expect("valid header"));

    let answer = send(export_mocks().router(), request).await;

    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(
        answer.header("content-type"),
        Some("text/csv; charset=utf-8")
    );
    assert_eq!(
        answer.text(),
        "address,origin,creation_date\r\n\
         b@example.com,api,2024-05-01T12:01:00Z\r\n\
         a@example.com,api,2024-05-01T12:00:00Z\r\n"
    );
}

#[tokio::test]
async fn format_csv_in_the_query_streams_csv_too() {
    let answer = send(
        export_mocks().router(),
        request("GET", "/organizations/1/opt_outs/?format=csv&origin=api"),
    )
    .await;

    assert_eq!(answer.status, StatusCode::OK);
    assert!(
        answer
            .text()
            .starts_with("address,origin,creation_date\r\n")
    );
}

#[tokio::test]
async fn the_csv_body_is_a_stream_not_a_buffer() {
    let router = export_mocks().router();
    let request = request("GET", "/organizations/1/opt_outs/?format=csv&origin=api");

    let response = tower::ServiceExt::oneshot(router, request)
        .await
        .expect("infallible");

    assert_eq!(response.headers().get("content-length"), None);
    assert_eq!(
        http_body_util::BodyExt::frame(&mut response.into_body())
            .await
            .and_then(Result::ok)
            .and_then(|frame| frame.into_data().ok())
            .as_deref(),
        Some(&b"address,origin,creation_date\r\n"[..])
    );
}

#[tokio::test]
async fn a_manager_sees_opt_outs_but_a_user_is_forbidden() {
    let mut mocks = Mocks::new();
    mocks
        .opt_outs
        .expect_list()
        .returning(|_, _, _, _, _| Err(UseCaseError::Forbidden));

    let answer = send(mocks.router(), request("GET", "/organizations/1/opt_outs/")).await;

    assert_eq!(answer.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn a_storage_failure_in_the_middle_of_the_csv_ends_the_body_with_an_error() {
    let mut mocks = Mocks::new();
    mocks.opt_outs.expect_export().returning(|_, _, _, _| {
        let rows = vec![
            Ok(opt_out("a@example.com", OptOutOrigin::Api, 0)),
            Err(UseCaseError::unavailable("connection reset".to_owned())),
        ];
        Ok(futures::stream::iter(rows).boxed())
    });
    let request = request("GET", "/organizations/1/opt_outs/?format=csv");

    let response = tower::ServiceExt::oneshot(mocks.router(), request)
        .await
        .expect("infallible");
    let body = http_body_util::BodyExt::collect(response.into_body()).await;

    assert!(body.is_err());
}

#[tokio::test]
async fn an_unknown_format_is_404() {
    let router = Mocks::new().router();

    let answer = send(
        router,
        request("GET", "/organizations/1/opt_outs/?format=xml"),
    )
    .await;

    assert_eq!(answer.status, StatusCode::NOT_FOUND);
    assert_eq!(answer.json(), json!({"detail": "Not found."}));
}

#[tokio::test]
async fn an_address_filter_with_a_nul_never_reaches_the_use_case_nor_the_export() {
    let mut mocks = Mocks::new();
    mocks.opt_outs.expect_list().never();
    mocks.opt_outs.expect_export().never();

    let listed = send(
        mocks.router(),
        request(
            "GET",
            "/organizations/1/opt_outs/?address=a%00%40example.com",
        ),
    )
    .await;
    let mut mocks = Mocks::new();
    mocks.opt_outs.expect_export().never();
    let exported = send(
        mocks.router(),
        request("GET", "/organizations/1/opt_outs/?format=csv&origin=api%00"),
    )
    .await;

    assert_eq!(listed.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        listed.json(),
        json!({"address": ["Null characters are not allowed."]})
    );
    assert_eq!(exported.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        exported.json(),
        json!({"origin": ["Null characters are not allowed."]})
    );
}
