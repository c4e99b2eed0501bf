//! The OpenAPI 3 document, generated from the handlers' annotations.

use serde::Serialize;
use utoipa::openapi::RefOr;
use utoipa::openapi::extensions::Extensions;
use utoipa::openapi::link::LinkBuilder;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{IntoParams, Modify, OpenApi, ToSchema};

/// `{"detail": "…"}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct DetailBody {
    /// What went wrong, in the request's language.
    pub detail: String,
}

/// The pagination parameters of every list.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct ListParams {
    /// The page, from 1.
    #[param(schema_with = crate::schema::page)]
    page: Option<u64>,
    /// Rows per page: 50 by default, at most 1000 (larger is capped); a value that is
    /// not a positive integer is ignored.
    #[param(schema_with = crate::schema::page_size)]
    page_size: Option<String>,
}

/// The runtime expression of the organization id in a `Location` header.
const CREATED_ORGANIZATION: &[(&str, &str)] = &[(
    "id",
    "$response.header.Location#regex:^/organizations/([0-9]+)/",
)];

/// The operations an organization's URL leads to.
const ORGANIZATION_OPERATIONS: &[(&str, &str)] = &[
    ("/organizations/{id}/", "get"),
    ("/organizations/{id}/", "put"),
    ("/organizations/{id}/", "patch"),
    ("/organizations/{id}/", "delete"),
    ("/organizations/{id}/children/", "get"),
    ("/organizations/{id}/invite_user/", "post"),
    ("/organizations/{id}/invitations/", "get"),
    ("/organizations/{id}/users/", "get"),
    ("/organizations/{id}/opt_outs/", "get"),
    ("/organizations/{id}/opt_outs/", "post"),
];

/// The operations an invitation's URL leads to.
const INVITATION_OPERATIONS: &[(&str, &str)] = &[
    ("/organizations/{id}/invitations/{invitation}/", "get"),
    ("/organizations/{id}/invitations/{invitation}/", "delete"),
    (
        "/organizations/{id}/invitations/{invitation}/resend/",
        "post",
    ),
];

/// The operations a member's URL leads to.
const MEMBER_OPERATIONS: &[(&str, &str)] = &[
    ("/organizations/{id}/users/{user}/", "get"),
    ("/organizations/{id}/users/{user}/", "patch"),
    ("/organizations/{id}/users/{user}/", "delete"),
];

/// An operation's answer that leads to other operations.
type LinkSource = (
    &'static str,
    &'static str,
    &'static str,
    &'static [(&'static str, &'static str)],
    &'static [(&'static str, &'static str)],
);

/// Where each answer leads (OpenAPI link objects, so that a client or a fuzzer can
/// follow them): `(path, method, status, targets, parameters)`, each parameter a runtime
/// expression reading an id out of a URL the answer gives.
const LINK_SOURCES: &[LinkSource] = &[
    (
        "/organizations/",
        "post",
        "201",
        ORGANIZATION_OPERATIONS,
        CREATED_ORGANIZATION,
    ),
    (
        "/organizations/{id}/invite_user/",
        "post",
        "201",
        INVITATION_OPERATIONS,
        &[
            (
                "id",
                "$response.header.Location#regex:^/organizations/([0-9]+)/",
            ),
            (
                "invitation",
                "$response.header.Location#regex:/invitations/([0-9]+)/",
            ),
        ],
    ),
    (
        "/me/",
        "get",
        "200",
        MEMBER_OPERATIONS,
        &[
            ("id", "$response.body#/url#regex:^/organizations/([0-9]+)/"),
            ("user", "$response.body#/url#regex:/users/([0-9]+)/"),
        ],
    ),
    (
        "/me/",
        "get",
        "200",
        ORGANIZATION_OPERATIONS,
        &[(
            "id",
            "$response.body#/organization#regex:^/organizations/([0-9]+)/",
        )],
    ),
];

struct Links;

impl Modify for Links {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for (path, method, status, targets, parameters) in LINK_SOURCES {
            let Some(operation) = operation(openapi, path, method) else {
                continue;
            };
            let Some(RefOr::T(response)) = operation.responses.responses.get_mut(*status) else {
                continue;
            };
            for (target_path, target_method) in *targets {
                let pointer = target_path.replace('~', "~0").replace('/', "~1");
                // `Link` spells the field `operation_ref` when serialized; the document
                // must say `operationRef`.
                let mut link = LinkBuilder::new().extensions(Some(Extensions::from_iter([(
                    "operationRef",
                    format!("#/paths/{pointer}/{target_method}"),
                )])));
                for (name, expression) in *parameters {
                    if target_path.contains(&format!("{{{name}}}")) {
                        link = link.parameter(*name, *expression);
                    }
                }
                let name = format!(
                    "{}{}",
                    target_method,
                    target_path
                        .split(['/', '{', '}', '_'])
                        .filter(|part| !part.is_empty())
                        .map(|part| {
                            let mut chars = part.chars();
                            chars.next().map_or_else(String::new, |first| {
                                first.to_ascii_uppercase().to_string() + chars.as_str()
                            })
                        })
                        .collect::<String>()
                );
                response.links.insert(name, RefOr::T(link.build()));
            }
        }
    }
}

fn operation<'a>(
    openapi: &'a mut utoipa::openapi::OpenApi,
    path: &str,
    method: &str,
) -> Option<&'a mut utoipa::openapi::path::Operation> {
    let item = openapi.paths.paths.get_mut(path)?;
    match method {
        "get" => item.get.as_mut(),
        "post" => item.post.as_mut(),
        "put" => item.put.as_mut(),
        "patch" => item.patch.as_mut(),
        "delete" => item.delete.as_mut(),
        _ => None,
    }
}

struct BearerScheme;

impl Modify for BearerScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "orgs", description = "Organizations, their users, invitations and opt-outs."),
    components(schemas(DetailBody)),
    modifiers(&BearerScheme),
    tags(
        (name = "organizations", description = "Organization trees"),
        (name = "invitations", description = "Invitations"),
        (name = "members", description = "The users of an organization"),
        (name = "auth", description = "Authentication"),
        (name = "opt-outs", description = "Opt-outs"),
        (name = "service", description = "Health, metrics and this document"),
    )
)]
struct ApiDoc;

/// The OpenAPI document of the router: every route's documentation, from the same
/// declaration as the route, and the links between them.
#[must_use]
pub fn document() -> utoipa::openapi::OpenApi {
    let mut document = ApiDoc::openapi();
    for (schemas, paths, _) in crate::routes() {
        document.paths.paths.extend(paths.paths);
        let components = document.components.get_or_insert_with(Default::default);
        components.schemas.extend(schemas);
    }
    Links.modify(&mut document);
    document
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_opt_out_list_documents_both_json_and_csv() {
        let document = serde_json::to_value(document()).unwrap_or_default();

        let content = &document["paths"]["/organizations/{id}/opt_outs/"]["get"]["responses"]["200"]
            ["content"];

        assert!(content["application/json"].is_object());
        assert!(content["text/csv"].is_object());
    }

    #[test]
    fn the_member_routes_are_documented() {
        let document = serde_json::to_value(document()).unwrap_or_default();

        let list = &document["paths"]["/organizations/{id}/users/"];
        let one = &document["paths"]["/organizations/{id}/users/{user}/"];

        assert!(list["get"]["responses"]["200"].is_object());
        assert!(one["patch"]["responses"]["409"].is_object());
        assert!(one["delete"]["responses"]["409"].is_object());
        assert!(one["get"]["responses"]["200"].is_object());
    }

    #[test]
    fn the_document_is_openapi_3_with_a_bearer_scheme() {
        let document = serde_json::to_value(document()).unwrap_or_default();

        assert!(
            document["openapi"]
                .as_str()
                .is_some_and(|v| v.starts_with("3."))
        );
        assert_eq!(
            document["components"]["securitySchemes"]["bearer"]["scheme"],
            "bearer"
        );
    }

    #[test]
    fn a_created_organization_links_to_its_detail_through_its_location() {
        let document = serde_json::to_value(document()).unwrap_or_default();

        let link = &document["paths"]["/organizations/"]["post"]["responses"]["201"]["links"]["getOrganizationsId"];

        assert_eq!(link["operationRef"], "#/paths/~1organizations~1{id}~1/get");
        assert_eq!(
            link["parameters"]["id"],
            "$response.header.Location#regex:^/organizations/([0-9]+)/"
        );
        assert!(link.get("operation_ref").is_none());
    }

    #[test]
    fn every_link_targets_a_documented_operation_and_fills_its_path() {
        let document = serde_json::to_value(document()).unwrap_or_default();
        let mut count = 0;

        for (_, item) in document["paths"].as_object().into_iter().flatten() {
            for (_, operation) in item.as_object().into_iter().flatten() {
                for (_, response) in operation["responses"].as_object().into_iter().flatten() {
                    for (name, link) in response["links"].as_object().into_iter().flatten() {
                        count += 1;
                        let reference = link["operationRef"].as_str().unwrap_or_default();
                        let (path, method) = reference
                            .strip_prefix("#/paths/")
                            .and_then(|rest| rest.rsplit_once('/'))
                            .unwrap_or_default();
                        let path = path.replace("~1", "/").replace("~0", "~");
                        assert!(document["paths"][&path][method].is_object(), "{name}");
                        for parameter in ["id", "invitation", "user"] {
                            assert_eq!(
                                path.contains(&format!("{{{parameter}}}")),
                                link["parameters"][parameter].is_string(),
                                "{name}: {parameter}"
                            );
                        }
                    }
                }
            }
        }

        assert!(count >= 10, "{count} links");
    }

    #[test]
    fn list_parameters_say_what_the_service_accepts() {
        let document = serde_json::to_value(document()).unwrap_or_default();
        let parameter = |path: &str, name: &str| {
            document["paths"][path]["get"]["parameters"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|parameter| parameter["name"] == name)
                .map(|parameter| parameter["schema"].clone())
                .unwrap_or_default()
        };

        let page_size = parameter("/organizations/", "page_size");
        let page = parameter("/organizations/", "page");
        let status = parameter("/organizations/{id}/invitations/", "status");
        let role = parameter("/organizations/{id}/users/", "role");

        assert!(
            page_size.get("type").is_none(),
            "any page_size: {page_size}"
        );
        assert!(page_size.get("maximum").is_none(), "{page_size}");
        assert_eq!(page["minimum"], 1);
        assert_eq!(
            status["enum"],
            serde_json::json!(["", "pending", "accepted", "revoked", "expired"])
        );
        assert_eq!(
            role["enum"],
            serde_json::json!(["", "administrators", "managers", "users", "collaborators"])
        );
    }

    #[test]
    fn request_bodies_require_what_the_service_requires_and_allow_no_null() {
        let document = serde_json::to_value(document()).unwrap_or_default();
        let schemas = &document["components"]["schemas"];
        let required = |name: &str| schemas[name]["required"].clone();

        assert_eq!(
            required("OrganizationCreate"),
            serde_json::json!(["name", "contact_email", "parent"])
        );
        assert_eq!(
            required("OrganizationReplace"),
            serde_json::json!(["name", "contact_email"])
        );
        assert!(required("OrganizationPatch").is_null());
        for name in [
            "OrganizationCreate",
            "OrganizationReplace",
            "OrganizationPatch",
            "InviteWrite",
            "AcceptWrite",
            "RoleWrite",
            "OptOutWrite",
            "LoginWrite",
        ] {
            let text = serde_json::to_string(&schemas[name]).unwrap_or_default();
            assert!(schemas[name].is_object(), "{name}");
            assert!(
                !text.contains("\"null\""),
                "{name} has a nullable field: {text}"
            );
        }
    }
}
