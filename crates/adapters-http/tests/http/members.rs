//! Members: list with filters, role change, removal, the last-administrator conflict.

use axum::http::StatusCode;
use domain::{ErrorCode, Input, OrganizationId, Role, UserId, ValidationErrors};
use ports::inbound::{Conflict, UseCaseError};
use serde_json::json;

use crate::support::{Mocks, anonymous, json_request, member, page, request, send, user};

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
async fn the_member_list_is_paginated_with_each_member_as_in_the_contract() {
    let mut mocks = Mocks::new();
    mocks
        .members
        .expect_list()
        .withf(|_, organization, role, identifier, _, page| {
            *organization == OrganizationId::new(1)
                && role.is_none()
                && identifier.is_none()
                && page.page() == 1
                && page.size() == 50
        })
        .times(1)
        .returning(|_, _, _, _, _, _| {
            Ok(page(vec![user(), member(8, Role::Managers)], 120, 1, 50))
        });

    let answer = send(mocks.router(), request("GET", "/organizations/1/users/")).await;

    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(
        answer.json(),
        json!({
            "count": 120,
            "next": "/organizations/1/users/?page=2",
            "previous": null,
            "page_count": 3,
            "results": [
                {
                    "url": "/organizations/1/users/5/",
                    "identifier": "admin@example.com",
                    "kind": "human",
                    "first_name": "Ada",
                    "last_name": "Lovelace",
                    "role": "administrators",
                    "organization": "/organizations/1/"
                },
                {
                    "url": "/organizations/1/users/8/",
                    "identifier": "member8@example.com",
                    "kind": "human",
                    "first_name": "Grace",
                    "last_name": "Hopper",
                    "role": "managers",
                    "organization": "/organizations/1/"
                }
            ]
        })
    );
}

#[tokio::test]
async fn the_member_list_passes_its_filters_raw_and_keeps_them_in_page_links() {
    let mut mocks = Mocks::new();
    mocks
        .members
        .expect_list()
        .withf(|_, organization, role, identifier, _, page| {
            *organization == OrganizationId::new(2)
                && role.as_deref() == Some("managers")
                && identifier.as_deref() == Some("ADA@")
                && page.page() == 2
                && page.size() == 10
        })
        .times(1)
        .returning(|_, _, _, _, _, _| Ok(page(vec![member(8, Role::Managers)], 25, 2, 10)));

    let answer = send(
        mocks.router(),
        request(
            "GET",
            "/organizations/2/users?role=managers&identifier=ADA%40&page=2&page_size=10",
        ),
    )
    .await;

    assert_eq!(answer.status, StatusCode::OK);
    let body = answer.json();
    assert_eq!(
        body["next"],
        "/organizations/2/users/?identifier=ADA%40&page=3&page_size=10&role=managers"
    );
    assert_eq!(
        body["previous"],
        "/organizations/2/users/?identifier=ADA%40&page_size=10&role=managers"
    );
    assert_eq!(body["page_count"], 3);
}

#[tokio::test]
async fn empty_member_filters_are_no_filters() {
    let mut mocks = Mocks::new();
    mocks
        .members
        .expect_list()
        .withf(|_, _, role, identifier, kind, _| {
            role.is_none() && identifier.is_none() && kind.is_none()
        })
        .times(1)
        .returning(|_, _, _, _, _, _| Ok(page(Vec::new(), 0, 1, 50)));

    let answer = send(
        mocks.router(),
        request("GET", "/organizations/1/users/?role=&identifier=&kind="),
    )
    .await;

    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.json()["count"], 0);
    assert_eq!(answer.json()["page_count"], 1);
}

#[tokio::test]
async fn an_unknown_role_filter_is_400_on_role() {
    let mut mocks = Mocks::new();
    mocks
        .members
        .expect_list()
        .returning(|_, _, role, _, _, _| {
            Err(UseCaseError::Validation(ValidationErrors::single(
                "role",
                ErrorCode::InvalidChoice {
                    value: role.unwrap_or_default(),
                },
            )))
        });

    let answer = send(
        mocks.router(),
        request("GET", "/organizations/1/users/?role=owners"),
    )
    .await;

    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        answer.json(),
        json!({"role": ["\"owners\" is not a valid choice."]})
    );
}

#[tokio::test]
async fn a_bad_member_page_is_404_invalid_page_without_calling_the_use_case() {
    let router = Mocks::new().router();

    let answer = send(router, request("GET", "/organizations/1/users/?page=0")).await;

    assert_eq!(answer.status, StatusCode::NOT_FOUND);
    assert_eq!(answer.json(), json!({"detail": "Invalid page."}));
}

#[tokio::test]
async fn a_member_page_past_the_end_is_404_invalid_page() {
    let mut mocks = Mocks::new();
    mocks
        .members
        .expect_list()
        .returning(|_, _, _, _, _, _| Err(UseCaseError::InvalidPage));

    let answer = send(
        mocks.router(),
        request("GET", "/organizations/1/users/?page=9"),
    )
    .await;

    assert_eq!(answer.status, StatusCode::NOT_FOUND);
    assert_eq!(answer.json(), json!({"detail": "Invalid page."}));
}

#[tokio::test]
async fn the_members_of_a_hidden_organization_are_404_and_of_a_forbidden_one_403() {
    let mut mocks = Mocks::new();
    mocks
        .members
        .expect_list()
        .returning(|_, organization, _, _, _, _| {
            if organization == OrganizationId::new(9) {
                Err(UseCaseError::NotFound)
            } else {
                Err(UseCaseError::Forbidden)
            }
        });
    let router = mocks.router();

    let hidden = send(router.clone(), request("GET", "/organizations/9/users/")).await;
    let forbidden = send(router, request("GET", "/organizations/1/users")).await;

    assert_eq!(hidden.status, StatusCode::NOT_FOUND);
    assert_eq!(hidden.json(), json!({"detail": "Not found."}));
    assert_eq!(forbidden.status, StatusCode::FORBIDDEN);
    assert_eq!(
        forbidden.json(),
        json!({"detail": "You do not have permission to perform this action."})
    );
}

#[tokio::test]
async fn member_routes_need_authentication() {
    let router = Mocks::new().router();

    for (method, uri) in [
        ("GET", "/organizations/1/users/"),
        ("PATCH", "/organizations/1/users/8/"),
        ("DELETE", "/organizations/1/users/8"),
    ] {
        let answer = send(router.clone(), anonymous(method, uri)).await;

        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{method} {uri}");
        assert_eq!(answer.header("www-authenticate"), Some("Bearer"));
    }
}

#[tokio::test]
async fn changing_a_role_answers_200_with_the_member() {
    let mut mocks = Mocks::new();
    mocks
        .members
        .expect_change_role()
        .withf(|_, organization, user, role| {
            *organization == OrganizationId::new(1)
                && *user == UserId::new(8)
                && *role == Input::Value("managers".to_owned())
        })
        .times(2)
        .returning(|_, _, _, _| Ok(member(8, Role::Managers)));
    let router = mocks.router();
    let body = json!({"role": "managers", "url": "/ignored/", "identifier": "ignored"});

    let with = send(
        router.clone(),
        json_request("PATCH", "/organizations/1/users/8/", &body),
    )
    .await;
    let without = send(
        router,
        json_request("PATCH", "/organizations/1/users/8", &body),
    )
    .await;

    assert_eq!(with.status, StatusCode::OK);
    assert_eq!(without.status, StatusCode::OK);
    assert_eq!(
        with.json(),
        json!({
            "url": "/organizations/1/users/8/",
            "identifier": "member8@example.com",
            "kind": "human",
            "first_name": "Grace",
            "last_name": "Hopper",
            "role": "managers",
            "organization": "/organizations/1/"
        })
    );
    assert_eq!(with.json(), without.json());
}

#[tokio::test]
async fn the_role_reaches_the_use_case_with_drf_string_coercion() {
    let cases = [
        (json!({}), Input::Absent),
        (json!({"role": null}), Input::Null),
        (json!({"role": 12}), Input::Value("12".to_owned())),
        (
            json!({"role": ["managers"]}),
            Input::Invalid(ErrorCode::InvalidString),
        ),
    ];
    for (body, expected) in cases {
        let mut mocks = Mocks::new();
        let wanted = expected.clone();
        mocks
            .members
            .expect_change_role()
            .withf(move |_, _, _, role| *role == wanted)
            .times(1)
            .returning(|_, _, _, _| Ok(member(8, Role::Users)));

        let answer = send(
            mocks.router(),
            json_request("PATCH", "/organizations/1/users/8/", &body),
        )
        .await;

        assert_eq!(answer.status, StatusCode::OK, "{body}");
    }
}

#[tokio::test]
async fn a_missing_or_unknown_role_is_400_on_role() {
    let cases = [
        (ErrorCode::Required, "This field is required."),
        (
            ErrorCode::InvalidChoice {
                value: "owners".to_owned(),
            },
            "\"owners\" is not a valid choice.",
        ),
    ];
    for (code, text) in cases {
        let mut mocks = Mocks::new();
        let returned = code.clone();
        mocks
            .members
            .expect_change_role()
            .returning(move |_, _, _, _| {
                Err(UseCaseError::Validation(ValidationErrors::single(
                    "role",
                    returned.clone(),
                )))
            });

        let answer = send(
            mocks.router(),
            json_request("PATCH", "/organizations/1/users/8/", &json!({})),
        )
        .await;

        assert_eq!(answer.status, StatusCode::BAD_REQUEST);
        assert_eq!(answer.json(), json!({"role": [text]}));
    }
}

#[tokio::test]
async fn removing_a_member_answers_204_with_and_without_the_slash() {
    let mut mocks = Mocks::new();
    mocks
        .members
        .expect_remove()
        .withf(|_, organization, user| {
            *organization == OrganizationId::new(2) && *user == UserId::new(8)
        })
        .times(2)
        .returning(|_, _, _| Ok(()));
    let router = mocks.router();

    let with = send(
        router.clone(),
        request("DELETE", "/organizations/2/users/8/"),
    )
    .await;
    let without = send(router, request("DELETE", "/organizations/2/users/8")).await;

    assert_eq!(with.status, StatusCode::NO_CONTENT);
    assert!(with.body.is_empty());
    assert_eq!(without.status, StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn demoting_or_removing_the_last_administrator_is_409() {
    let mut mocks = Mocks::new();
    mocks
        .members
        .expect_change_role()
        .returning(|_, _, _, _| Err(UseCaseError::Conflict(Conflict::LastAdministrator)));
    mocks
        .members
        .expect_remove()
        .returning(|_, _, _| Err(UseCaseError::Conflict(Conflict::LastAdministrator)));
    let router = mocks.router();

    let demoted = send(
        router.clone(),
        json_request(
            "PATCH",
            "/organizations/1/users/5/",
            &json!({"role": "users"}),
        ),
    )
    .await;
    let removed = send(router, request("DELETE", "/organizations/1/users/5/")).await;

    for answer in [demoted, removed] {
        assert_eq!(answer.status, StatusCode::CONFLICT);
        assert_eq!(
            answer.json(),
            json!({"detail": "An organization must keep at least one administrator."})
        );
    }
}

#[tokio::test]
async fn the_last_administrator_conflict_is_french_under_accept_language_fr() {
    let mut mocks = Mocks::new();
    mocks
        .members
        .expect_remove()
        .returning(|_, _, _| Err(UseCaseError::Conflict(Conflict::LastAdministrator)));

    let answer = send(
        mocks.router(),
        with_language(request("DELETE", "/organizations/1/users/5/"), "fr-FR"),
    )
    .await;

    assert_eq!(answer.status, StatusCode::CONFLICT);
    assert_eq!(
        answer.json(),
        json!({"detail": "Une organisation doit garder au moins un administrateur."})
    );
}

#[tokio::test]
async fn changing_or_removing_a_member_is_404_when_hidden_and_403_when_forbidden() {
    for (error, status) in [
        (UseCaseError::NotFound, StatusCode::NOT_FOUND),
        (UseCaseError::Forbidden, StatusCode::FORBIDDEN),
    ] {
        let mut mocks = Mocks::new();
        let on_change = error.clone();
        let on_remove = error.clone();
        mocks
            .members
            .expect_change_role()
            .returning(move |_, _, _, _| Err(on_change.clone()));
        mocks
            .members
            .expect_remove()
            .returning(move |_, _, _| Err(on_remove.clone()));
        let router = mocks.router();

        let changed = send(
            router.clone(),
            json_request(
                "PATCH",
                "/organizations/1/users/8/",
                &json!({"role": "users"}),
            ),
        )
        .await;
        let removed = send(router, request("DELETE", "/organizations/1/users/8/")).await;

        assert_eq!(changed.status, status);
        assert_eq!(removed.status, status);
    }
}

#[tokio::test]
async fn a_member_id_that_is_no_positive_integer_is_404_without_calling_the_use_case() {
    let router = Mocks::new().router();

    for uri in [
        "/organizations/1/users/abc/",
        "/organizations/1/users/0/",
        "/organizations/x/users/8/",
    ] {
        let answer = send(router.clone(), request("DELETE", uri)).await;

        assert_eq!(answer.status, StatusCode::NOT_FOUND, "{uri}");
        assert_eq!(answer.json(), json!({"detail": "Not found."}), "{uri}");
    }
}

#[tokio::test]
async fn one_member_is_served_at_its_member_url_with_and_without_slash() {
    let mut mocks = Mocks::new();
    mocks
        .members
        .expect_get()
        .withf(|_, organization, user| {
            *organization == OrganizationId::new(1) && *user == UserId::new(5)
        })
        .times(2)
        .returning(|_, _, _| Ok(user()));
    let router = mocks.router();

    for uri in ["/organizations/1/users/5/", "/organizations/1/users/5"] {
        let answer = send(router.clone(), request("GET", uri)).await;

        assert_eq!(answer.status, StatusCode::OK, "{uri}");
        assert_eq!(answer.json()["url"], "/organizations/1/users/5/");
    }
}

#[tokio::test]
async fn a_member_of_an_invisible_organization_is_not_found() {
    let mut mocks = Mocks::new();
    mocks
        .members
        .expect_get()
        .returning(|_, _, _| Err(UseCaseError::NotFound));

    let answer = send(mocks.router(), request("GET", "/organizations/9/users/5/")).await;

    assert_eq!(answer.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn me_links_to_the_member_url_that_the_member_routes_serve() {
    let mut mocks = Mocks::new();
    mocks.auth.expect_me().returning(|_| Ok(user()));
    mocks
        .members
        .expect_change_role()
        .withf(|_, organization, user, _| {
            *organization == OrganizationId::new(1) && *user == UserId::new(5)
        })
        .times(1)
        .returning(|_, _, _, _| Ok(user()));
    let router = mocks.router();
    let me = send(router.clone(), request("GET", "/me/")).await;
    let url = me.json()["url"].as_str().unwrap_or_default().to_owned();

    let answer = send(
        router,
        json_request("PATCH", &url, &json!({"role": "administrators"})),
    )
    .await;

    assert_eq!(url, "/organizations/1/users/5/");
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.json()["url"], url);
}

#[tokio::test]
async fn a_filter_with_a_nul_or_over_320_characters_never_reaches_the_use_case() {
    let mut mocks = Mocks::new();
    mocks.members.expect_list().never();
    let long = "a".repeat(321);

    let answer = send(
        mocks.router(),
        with_language(
            request(
                "GET",
                &format!("/organizations/1/users/?identifier={long}&role=users%00"),
            ),
            "fr",
        ),
    )
    .await;

    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        answer.json(),
        json!({
            "identifier": ["Assurez-vous que ce champ comporte au plus 320 caractères."],
            "role": ["Les caractères null ne sont pas autorisés."],
        })
    );
}

fn service_account(id: i64, role: Role) -> domain::user::User {
    domain::user::User {
        identifier: domain::user::UserIdentifier::Service(
            domain::service_account::ServiceAccountName::parse("billing-sync").expect("valid"),
        ),
        first_name: domain::user::PersonName::unnamed(),
        last_name: domain::user::PersonName::unnamed(),
        ..member(id, role)
    }
}

#[tokio::test]
async fn a_service_account_is_201_with_its_key_once_a_location_and_no_store() {
    let mut mocks = Mocks::new();
    mocks
        .members
        .expect_create_service_account()
        .withf(|_, organization, request| {
            *organization == OrganizationId::new(1)
                && request.name == Input::Value("billing-sync".to_owned())
                && request.role == Input::Value("users".to_owned())
        })
        .times(1)
        .returning(|_, _, _| {
            Ok(ports::inbound::CreatedServiceAccount {
                account: service_account(9, Role::Users),
                api_key: domain::secret::SecretToken::presented("the-service-key"),
            })
        });

    let answer = send(
        mocks.router(),
        json_request(
            "POST",
            "/organizations/1/service_accounts",
            &json!({"name": "billing-sync", "role": "users"}),
        ),
    )
    .await;

    assert_eq!(answer.status, StatusCode::CREATED);
    assert_eq!(answer.header("cache-control"), Some("no-store"));
    assert_eq!(answer.header("location"), Some("/organizations/1/users/9/"));
    assert_eq!(
        answer.json(),
        json!({
            "url": "/organizations/1/users/9/",
            "identifier": "billing-sync",
            "kind": "service",
            "role": "users",
            "organization": "/organizations/1/",
            "api_key": "the-service-key"
        })
    );
}

#[tokio::test]
async fn service_account_refusals_are_field_errors_in_both_languages() {
    let mut mocks = Mocks::new();
    mocks
        .members
        .expect_create_service_account()
        .returning(|_, _, _| {
            let mut errors = ValidationErrors::new();
            errors.add("name", ErrorCode::ServiceAccountNameTaken);
            errors.add("role", ErrorCode::ServiceAccountCannotBeAdministrator);
            Err(UseCaseError::Validation(errors))
        });
    let router = mocks.router();
    let body = json!({"name": "ci", "role": "administrators"});

    let english = send(
        router.clone(),
        json_request("POST", "/organizations/1/service_accounts/", &body),
    )
    .await;
    let french = send(
        router,
        with_language(
            json_request("POST", "/organizations/1/service_accounts/", &body),
            "fr",
        ),
    )
    .await;

    assert_eq!(english.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        english.json(),
        json!({
            "name": ["A service account with this name already exists."],
            "role": ["A service account cannot be an administrator."]
        })
    );
    assert_eq!(
        french.json(),
        json!({
            "name": ["Un compte de service portant ce nom existe déjà."],
            "role": ["Un compte de service ne peut pas être administrateur."]
        })
    );
}

#[tokio::test]
async fn a_service_member_is_listed_with_kind_service_and_the_kind_filter_reaches_the_use_case() {
    let mut mocks = Mocks::new();
    mocks
        .members
        .expect_list()
        .withf(|_, _, _, _, kind, _| kind.as_deref() == Some("service"))
        .times(1)
        .returning(|_, _, _, _, _, _| Ok(page(vec![service_account(9, Role::Users)], 1, 1, 50)));

    let answer = send(
        mocks.router(),
        request("GET", "/organizations/1/users/?kind=service"),
    )
    .await;

    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.json()["results"][0]["kind"], "service");
    assert_eq!(answer.json()["results"][0]["identifier"], "billing-sync");
    assert_eq!(answer.json()["results"][0]["first_name"], "");
}
