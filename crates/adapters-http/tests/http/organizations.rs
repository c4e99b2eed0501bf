//! `/organizations/`: representations, pagination, writes, concurrency and errors.

use axum::http::StatusCode;
use domain::organization::UpdateMode;
use domain::pagination::PageRequest;
use domain::{ErrorCode, Input, OrganizationId, ValidationErrors, Version};
use ports::inbound::{ParentLink, UseCaseError};
use serde_json::json;

use crate::support::{
    Mocks, child_organization, json_request, page, request, root_organization, send,
};

#[tokio::test]
async fn an_organization_is_shown_as_in_the_seed_with_an_etag() {
    let mut mocks = Mocks::new();
    mocks
        .organizations
        .expect_get()
        .withf(|_, id| *id == OrganizationId::new(1))
        .times(1)
        .returning(|_, _| Ok(root_organization()));

    let answer = send(mocks.router(), request("GET", "/organizations/1/")).await;

    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.header("etag"), Some("\"3\""));
    assert_eq!(
        answer.json(),
        json!({
            "url": "/organizations/1/",
            "name": "Example",
            "contact_email": "",
            "settings": {
                "nickname": "",
                "notify_message_status": true,
                "notify_optouts": false,
                "external_optout_message": ""
            },
            "parent": null,
            "can_attach_files": false,
            "can_external_optout": false,
            "_links": {
                "opt_outs": {"href": "/organizations/1/opt_outs/"},
                "children": {"href": "/organizations/1/children/"},
                "invite_user": {"href": "/organizations/1/invite_user/"}
            }
        })
    );
}

#[tokio::test]
async fn a_child_links_its_parent() {
    let mut mocks = Mocks::new();
    mocks
        .organizations
        .expect_get()
        .returning(|_, _| Ok(child_organization()));

    let answer = send(mocks.router(), request("GET", "/organizations/2/")).await;

    assert_eq!(answer.json()["parent"], "/organizations/1/");
    assert_eq!(answer.json()["contact_email"], "child@example.com");
}

#[tokio::test]
async fn an_invisible_organization_is_404_and_a_forbidden_one_403() {
    let mut mocks = Mocks::new();
    mocks.organizations.expect_get().returning(|_, id| {
        if id == OrganizationId::new(9) {
            Err(UseCaseError::NotFound)
        } else {
            Err(UseCaseError::Forbidden)
        }
    });
    let router = mocks.router();

    let hidden = send(router.clone(), request("GET", "/organizations/9/")).await;
    let forbidden = send(router, request("GET", "/organizations/2/")).await;

    assert_eq!(hidden.status, StatusCode::NOT_FOUND);
    assert_eq!(hidden.json(), json!({"detail": "Not found."}));
    assert_eq!(forbidden.status, StatusCode::FORBIDDEN);
    assert_eq!(
        forbidden.json(),
        json!({"detail": "You do not have permission to perform this action."})
    );
}

#[tokio::test]
async fn the_list_is_paginated_with_links_keeping_other_parameters() {
    let mut mocks = Mocks::new();
    mocks
        .organizations
        .expect_list()
        .withf(|_, page| *page == PageRequest::new(2, 2))
        .times(1)
        .returning(|_, _| {
            Ok(page(
                vec![root_organization(), child_organization()],
                5,
                2,
                2,
            ))
        });

    let answer = send(
        mocks.router(),
        request("GET", "/organizations?page=2&page_size=2&x=y"),
    )
    .await;

    assert_eq!(answer.status, StatusCode::OK);
    let body = answer.json();
    assert_eq!(body["count"], 5);
    assert_eq!(body["page_count"], 3);
    assert_eq!(body["next"], "/organizations/?page=3&page_size=2&x=y");
    assert_eq!(body["previous"], "/organizations/?page_size=2&x=y");
    assert_eq!(body["results"][1]["url"], "/organizations/2/");
}

#[tokio::test]
async fn an_empty_list_is_page_1_of_1_without_links() {
    let mut mocks = Mocks::new();
    mocks
        .organizations
        .expect_get()
        .withf(|_, id| *id == OrganizationId::new(2))
        .returning(|_, _| Ok(child_organization()));
    mocks
        .organizations
        .expect_children()
        .withf(|_, parent, page| {
            parent.id == OrganizationId::new(2) && *page == PageRequest::default()
        })
        .returning(|_, _, _| Ok(page(vec![], 0, 1, 50)));

    let answer = send(mocks.router(), request("GET", "/organizations/2/children")).await;

    assert_eq!(
        answer.json(),
        json!({"count": 0, "next": null, "previous": null, "page_count": 1, "results": []})
    );
}

#[tokio::test]
async fn a_large_page_size_is_capped_and_a_bad_one_ignored() {
    let mut mocks = Mocks::new();
    mocks
        .organizations
        .expect_list()
        .withf(|_, page| page.size() == 1000)
        .times(1)
        .returning(|_, _| Ok(page(vec![], 0, 1, 1000)));
    mocks
        .organizations
        .expect_list()
        .withf(|_, page| page.size() == 50)
        .times(1)
        .returning(|_, _| Ok(page(vec![], 0, 1, 50)));
    let router = mocks.router();

    let capped = send(
        router.clone(),
        request("GET", "/organizations/?page_size=5000"),
    )
    .await;
    let ignored = send(router, request("GET", "/organizations/?page_size=-3")).await;

    assert_eq!(capped.status, StatusCode::OK);
    assert_eq!(ignored.status, StatusCode::OK);
}

#[tokio::test]
async fn a_bad_page_number_is_404_invalid_page_without_calling_the_use_case() {
    let router = Mocks::new().router();

    for page in ["0", "-1", "abc"] {
        let answer = send(
            router.clone(),
            request("GET", &format!("/organizations/?page={page}")),
        )
        .await;

        assert_eq!(answer.status, StatusCode::NOT_FOUND, "{page}");
        assert_eq!(answer.json(), json!({"detail": "Invalid page."}));
    }
}

#[tokio::test]
async fn a_page_past_the_end_is_404_invalid_page() {
    let mut mocks = Mocks::new();
    mocks
        .organizations
        .expect_list()
        .returning(|_, _| Err(UseCaseError::InvalidPage));

    let answer = send(mocks.router(), request("GET", "/organizations/?page=7")).await;

    assert_eq!(answer.status, StatusCode::NOT_FOUND);
    assert_eq!(answer.json(), json!({"detail": "Invalid page."}));
}

#[tokio::test]
async fn creating_a_child_answers_201_with_its_location() {
    let mut mocks = Mocks::new();
    mocks
        .organizations
        .expect_create_child()
        .withf(|_, fields| {
            fields.name == Input::Value("Child organization".to_owned())
                && fields.contact_email == Input::Value("child@example.com".to_owned())
                && fields.parent == ParentLink::Organization(OrganizationId::new(1))
        })
        .times(1)
        .returning(|_, _| Ok(child_organization()));
    let body = json!({
        "name": "Child organization",
        "contact_email": "child@example.com",
        "parent": "/organizations/1/",
        "settings": {"nickname": "nickname", "notify_message_status": "false"}
    });

    let answer = send(
        mocks.router(),
        json_request("POST", "/organizations/", &body),
    )
    .await;

    assert_eq!(answer.status, StatusCode::CREATED);
    assert_eq!(answer.header("location"), Some("/organizations/2/"));
    assert_eq!(answer.json()["settings"]["nickname"], "nickname");
    assert_eq!(answer.json()["parent"], "/organizations/1/");
}

#[tokio::test]
async fn parent_links_are_resolved_before_the_use_case() {
    let cases = [
        (
            json!({"parent": "http://api.example.com/organizations/1/"}),
            ParentLink::Organization(OrganizationId::new(1)),
        ),
        (
            json!({"parent": "/organizations/4"}),
            ParentLink::Organization(OrganizationId::new(4)),
        ),
        (
            json!({"parent": "/organizations/1/children/"}),
            ParentLink::NoUrlMatch,
        ),
        (json!({"parent": "/me/"}), ParentLink::NoUrlMatch),
        (json!({"parent": null}), ParentLink::Blank),
        (json!({"parent": ""}), ParentLink::Blank),
        (json!({}), ParentLink::Absent),
    ];
    for (body, expected) in cases {
        let mut mocks = Mocks::new();
        mocks
            .organizations
            .expect_create_child()
            .withf(move |_, fields| fields.parent == expected)
            .times(1)
            .returning(|_, _| Err(UseCaseError::Forbidden));

        let answer = send(
            mocks.router(),
            json_request("POST", "/organizations/", &body),
        )
        .await;

        assert_eq!(answer.status, StatusCode::FORBIDDEN, "{body}");
    }
}

#[tokio::test]
async fn fields_are_coerced_as_drf_does() {
    let mut mocks = Mocks::new();
    mocks
        .organizations
        .expect_update()
        .withf(|_, _, _, fields, _| {
            let Input::Value(settings) = &fields.settings else {
                return false;
            };
            fields.name == Input::Value("12".to_owned())
                && fields.contact_email == Input::Invalid(ErrorCode::InvalidString)
                && settings.notify_optouts == Input::Value(true)
                && settings.notify_message_status == Input::Invalid(ErrorCode::InvalidBoolean)
                && settings.nickname == Input::Null
        })
        .times(1)
        .returning(|_, _, _, _, _| Ok(root_organization()));
    let body = json!({
        "name": 12,
        "contact_email": true,
        "settings": {"notify_optouts": "1", "notify_message_status": "perhaps", "nickname": null}
    });

    let answer = send(
        mocks.router(),
        json_request("PATCH", "/organizations/1/", &body),
    )
    .await;

    assert_eq!(answer.status, StatusCode::OK);
}

#[tokio::test]
async fn settings_that_are_no_object_are_refused_as_drf_does() {
    let mut mocks = Mocks::new();
    mocks
        .organizations
        .expect_update()
        .withf(|_, _, _, fields, _| {
            fields.settings
                == Input::Invalid(ErrorCode::NotAnObject {
                    given: "str".to_owned(),
                })
        })
        .returning(|_, _, _, fields, _| {
            let mut errors = ValidationErrors::new();
            if let Input::Invalid(code) = fields.settings {
                errors.add("settings", code);
            }
            Err(UseCaseError::Validation(errors))
        });

    let answer = send(
        mocks.router(),
        json_request("PATCH", "/organizations/1/", &json!({"settings": "nope"})),
    )
    .await;

    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        answer.json(),
        json!({"settings": ["Invalid data. Expected a dictionary, but got str."]})
    );
}

#[tokio::test]
async fn all_field_errors_are_reported_together_nested_for_settings() {
    let mut mocks = Mocks::new();
    mocks.organizations.expect_create_child().returning(|_, _| {
        let mut errors = ValidationErrors::new();
        errors.add("name", ErrorCode::MaxLength { max: 200 });
        errors.add("parent", ErrorCode::ParentMustBeYourOrganization);
        errors.add_nested(
            "settings",
            ValidationErrors::single(
                "external_optout_message",
                ErrorCode::ExternalOptoutNotAllowed,
            ),
        );
        Err(UseCaseError::Validation(errors))
    });

    let answer = send(
        mocks.router(),
        json_request("POST", "/organizations/", &json!({})),
    )
    .await;

    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        answer.json(),
        json!({
            "name": ["Ensure this field has no more than 200 characters."],
            "parent": ["Parent organization must be your organization."],
            "settings": {"external_optout_message": ["External optout is not allowed, no need to provide a message"]}
        })
    );
}

#[tokio::test]
async fn put_replaces_and_patch_changes_part() {
    let mut mocks = Mocks::new();
    mocks
        .organizations
        .expect_update()
        .withf(|_, _, mode, _, _| *mode == UpdateMode::Replace)
        .times(1)
        .returning(|_, _, _, _, _| Ok(root_organization()));
    mocks
        .organizations
        .expect_update()
        .withf(|_, _, mode, _, _| *mode == UpdateMode::Partial)
        .times(1)
        .returning(|_, _, _, _, _| Ok(root_organization()));
    let router = mocks.router();

    let put = send(
        router.clone(),
        json_request("PUT", "/organizations/1/", &json!({"name": "A"})),
    )
    .await;
    let patch = send(
        router,
        json_request("PATCH", "/organizations/1", &json!({"name": "A"})),
    )
    .await;

    assert_eq!(put.status, StatusCode::OK);
    assert_eq!(patch.status, StatusCode::OK);
    assert_eq!(put.header("etag"), Some("\"3\""));
}

#[tokio::test]
async fn if_match_is_passed_as_the_expected_version() {
    let cases = [
        (Some("\"3\""), Some(Version::new(3))),
        (Some("*"), None),
        (Some("\"not-ours\""), Some(Version::new(0))),
        (None, None),
    ];
    for (header, expected) in cases {
        let mut mocks = Mocks::new();
        mocks
            .organizations
            .expect_update()
            .withf(move |_, _, _, _, if_match| *if_match == expected)
            .times(1)
            .returning(|_, _, _, _, _| Ok(root_organization()));
        let mut request = json_request("PATCH", "/organizations/1/", &json!({}));
        if let Some(header) = header {
            request
                .headers_mut()
                .insert("if-match", header.parse().expect("valid header"));
        }

        let answer = send(mocks.router(), request).await;

        assert_eq!(answer.status, StatusCode::OK, "{header:?}");
    }
}

#[tokio::test]
async fn a_stale_if_match_is_412() {
    let mut mocks = Mocks::new();
    mocks
        .organizations
        .expect_archive()
        .withf(|_, id, if_match| {
            *id == OrganizationId::new(2) && *if_match == Some(Version::new(1))
        })
        .returning(|_, _, _| Err(UseCaseError::PreconditionFailed));
    let mut request = request("DELETE", "/organizations/2/");
    request
        .headers_mut()
        .insert("if-match", "\"1\"".parse().expect("valid header"));

    let answer = send(mocks.router(), request).await;

    assert_eq!(answer.status, StatusCode::PRECONDITION_FAILED);
    assert!(answer.json()["detail"].is_string());
}

#[tokio::test]
async fn deleting_a_child_archives_it_with_204() {
    let mut mocks = Mocks::new();
    mocks
        .organizations
        .expect_archive()
        .withf(|_, id, if_match| *id == OrganizationId::new(2) && if_match.is_none())
        .times(1)
        .returning(|_, _, _| Ok(()));

    let answer = send(mocks.router(), request("DELETE", "/organizations/2")).await;

    assert_eq!(answer.status, StatusCode::NO_CONTENT);
    assert!(answer.body.is_empty());
}
