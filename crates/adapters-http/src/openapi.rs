//! The OpenAPI 3 document, generated from the handlers' annotations.

use std::collections::BTreeMap;

use serde::Serialize;
use utoipa::openapi::RefOr;
use utoipa::openapi::extensions::Extensions;
use utoipa::openapi::link::LinkBuilder;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{IntoParams, IntoResponses, Modify, OpenApi, ToSchema};

/// `{"detail": "…"}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct DetailBody {
    /// What went wrong, in the request's language.
    pub detail: String,
}

/// The refusals of any request with a JSON body (CONTRACT §2).
#[derive(IntoResponses)]
pub enum BodyRefused {
    /// The body is above 64 KiB.
    #[response(status = 413)]
    TooLarge(DetailBody),
    /// A non-empty body that is not JSON.
    #[response(status = 415)]
    NotJson(DetailBody),
}

/// The refusals of a request about a visible organization or what it holds: `401`
/// without a credential, `403` for a caller whose role may not, `404` for what the caller
/// cannot see.
#[derive(IntoResponses)]
pub enum Refused {
    // No doc comments: a variant's doc comment would be its response's description, and
    // these have none (`document_read_only_keys` writes the `403` of a write's).
    #[response(status = 401)]
    Unauthenticated(DetailBody),
    #[response(status = 403)]
    Forbidden(DetailBody),
    #[response(status = 404)]
    NotFound(DetailBody),
}

/// `{id}`, the organization of a path.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub struct OrganizationPath {
    /// Organization id
    pub id: i64,
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

/// Where answers lead (OpenAPI links, so that a client or a fuzzer can follow them):
/// `(path, method, status, URL, template)` links the answer to every operation under
/// `template`, the ids read out of the URL the answer gives (a runtime expression).
const LINKS: [(&str, &str, &str, &str, &str); 5] = [
    (
        "/organizations/",
        "post",
        "201",
        "$response.header.Location",
        "/organizations/{id}/",
    ),
    (
        "/organizations/{id}/invite_user/",
        "post",
        "201",
        "$response.header.Location",
        "/organizations/{id}/invitations/{invitation}/",
    ),
    (
        "/invitations/accept/",
        "post",
        "201",
        "$response.header.Location",
        "/organizations/{id}/users/{user}/",
    ),
    (
        "/me/",
        "get",
        "200",
        "$response.body#/url",
        "/organizations/{id}/users/{user}/",
    ),
    (
        "/me/",
        "get",
        "200",
        "$response.body#/organization",
        "/organizations/{id}/",
    ),
];

/// The methods of the router's operations.
const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

fn add_links(document: &mut utoipa::openapi::OpenApi) {
    let paths: Vec<String> = document.paths.paths.keys().cloned().collect();
    for (path, method, status, url, template) in LINKS {
        let names: Vec<&str> = template
            .split('/')
            .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
            .collect();
        let mut links = BTreeMap::new();
        let under = paths
            .iter()
            .filter(|p| p.starts_with(template) && p.matches('{').count() == names.len());
        for target in under {
            for target_method in METHODS
                .into_iter()
                .filter(|m| operation(document, target, m).is_some())
            {
                // `Link` would spell the field `operation_ref`; the document says `operationRef`.
                let pointer = target.replace('~', "~0").replace('/', "~1");
                let reference = format!("#/paths/{pointer}/{target_method}");
                let mut link = LinkBuilder::new()
                    .extensions(Some(Extensions::from_iter([("operationRef", reference)])));
                for name in &names {
                    link =
                        link.parameter(*name, format!("{url}#regex:{}", capture(template, name)));
                }
                let words = target.split(['/', '{', '}', '_']).filter(|w| !w.is_empty());
                let name = words.fold(target_method.to_owned(), |name, word| {
                    name + &word[..1].to_ascii_uppercase() + &word[1..]
                });
                links.insert(name, RefOr::T(link.build()));
            }
        }
        let response =
            operation(document, path, method).and_then(|o| o.responses.responses.get_mut(status));
        if let Some(RefOr::T(response)) = response {
            response.links.extend(links);
        }
    }
}

/// A regular expression capturing the id `name` of a URL that matches `template`.
fn capture(template: &str, name: &str) -> String {
    let marker = format!("{{{name}}}");
    let end = template
        .find(&marker)
        .map_or(0, |start| start + marker.len());
    let mut pattern = format!("^{}/", template[..end].replace(&marker, "([0-9]+)"));
    while let (Some(open), Some(close)) = (pattern.find('{'), pattern.find('}')) {
        pattern.replace_range(open..=close, "[0-9]+");
    }
    pattern
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
        (name = "events", description = "The audit log"),
        (name = "webhooks", description = "Signed deliveries of events to endpoints"),
        (name = "service", description = "Health, metrics and this document"),
    )
)]
struct ApiDoc;

/// Names each operation after its method and path (`delete_organizations_id_webhooks_webhook`):
/// OpenAPI wants every `operationId` once, and handlers of different modules share names
/// (`list`, `create`, `remove`), which tools that follow links by id would confuse.
fn name_operations(document: &mut utoipa::openapi::OpenApi) {
    let paths: Vec<String> = document.paths.paths.keys().cloned().collect();
    for path in paths {
        let name: Vec<&str> = path
            .split('/')
            .filter(|segment| !segment.is_empty())
            .map(|segment| segment.trim_matches(|c| c == '{' || c == '}'))
            .collect();
        let name = if name.is_empty() {
            "root".to_owned()
        } else {
            name.join("_")
        };
        for method in METHODS {
            if let Some(operation) = operation(document, &path, method) {
                operation.operation_id = Some(format!("{method}_{name}"));
            }
        }
    }
}

/// The OpenAPI document of the router: every route's documentation, from the same
/// declaration as the route, and the links between them.
#[must_use]
pub fn document() -> utoipa::openapi::OpenApi {
    let mut document = ApiDoc::openapi();
    for (schemas, paths, _) in crate::routes() {
        // Merged, not replaced: one path may be declared by several `routes!` (a list and
        // a create that carries a secret), and each keeps its operations.
        document.paths.merge(paths);
        let components = document.components.get_or_insert_with(Default::default);
        components.schemas.extend(schemas);
    }
    name_operations(&mut document);
    add_links(&mut document);
    crate::idempotency::document(&mut document);
    document_read_only_keys(&mut document);
    document
}

/// What a `read` API key gets from an operation that writes (CONTRACT §11).
const READ_ONLY: &str = "This API key is read-only.";

/// Every authenticated operation that writes answers `403` to a `read` API key: added to
/// its documented `403`, or as its `403`.
fn document_read_only_keys(document: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};

    let paths: Vec<String> = document.paths.paths.keys().cloned().collect();
    for path in paths {
        for method in ["post", "put", "patch", "delete"] {
            let Some(operation) = operation(document, &path, method) else {
                continue;
            };
            if operation.security.as_ref().is_none_or(Vec::is_empty) {
                continue;
            }
            let responses = &mut operation.responses.responses;
            match responses.get_mut("403") {
                Some(RefOr::T(response)) => {
                    response.description = format!(
                        "{} A `read` API key: `{READ_ONLY}`",
                        response.description.trim_end()
                    )
                    .trim_start()
                    .to_owned();
                }
                Some(RefOr::Ref(_)) => {}
                None => {
                    let content = ContentBuilder::new()
                        .schema(Some(Ref::from_schema_name("DetailBody")))
                        .build();
                    let response = ResponseBuilder::new()
                        .description(format!("A `read` API key: `{READ_ONLY}`"))
                        .content("application/json", content)
                        .build();
                    responses.insert("403".to_owned(), RefOr::T(response));
                }
            }
        }
    }
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
            "ApiKeyWrite",
        ] {
            let text = serde_json::to_string(&schemas[name]).unwrap_or_default();
            assert!(schemas[name].is_object(), "{name}");
            assert!(
                !text.contains("\"null\""),
                "{name} has a nullable field: {text}"
            );
        }
    }

    #[test]
    fn every_authenticated_post_documents_the_idempotency_key_and_its_answers() {
        let document = serde_json::to_value(document()).unwrap_or_default();
        let mut authenticated = 0;

        for (path, item) in document["paths"].as_object().into_iter().flatten() {
            let post = &item["post"];
            if !post.is_object() {
                continue;
            }
            let header = post["parameters"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|parameter| parameter["name"] == "Idempotency-Key");
            if post["security"].as_array().is_some_and(|s| !s.is_empty()) {
                authenticated += 1;
                let header = header.unwrap_or_else(|| panic!("POST {path}: no Idempotency-Key"));
                assert_eq!(header["in"], "header");
                assert_eq!(header["schema"]["maxLength"], 255);
                for status in ["400", "409", "422"] {
                    assert!(
                        post["responses"][status].is_object(),
                        "POST {path}: {status}"
                    );
                }
                for (status, response) in post["responses"].as_object().into_iter().flatten() {
                    assert_eq!(
                        response["headers"]["Idempotent-Replayed"].is_object(),
                        status.starts_with('2'),
                        "POST {path}: {status}"
                    );
                }
            } else {
                assert!(header.is_none(), "POST {path} needs no authentication");
            }
        }

        assert!(authenticated >= 5, "{authenticated}");
    }

    #[test]
    fn a_secret_in_an_authenticated_posts_answer_may_be_null_as_in_a_replay() {
        let document = serde_json::to_value(document()).unwrap_or_default();
        let schemas = &document["components"]["schemas"];

        assert_eq!(
            schemas["RegeneratedKeyDto"]["properties"]["api_key"]["type"],
            serde_json::json!(["string", "null"])
        );
        assert_eq!(
            schemas["CreatedApiKeyDto"]["properties"]["key"]["type"],
            serde_json::json!(["string", "null"])
        );
        assert_eq!(
            schemas["SessionDto"]["properties"]["token"]["type"], "string",
            "a login is no authenticated POST: never replayed"
        );
    }

    #[test]
    fn a_path_declared_by_several_route_groups_keeps_every_operation() {
        let document = serde_json::to_value(document()).unwrap_or_default();
        let keys = &document["paths"]["/me/api_keys/"];

        assert!(keys["get"].is_object(), "{keys}");
        assert!(keys["post"].is_object(), "{keys}");
    }

    #[test]
    fn every_operation_id_is_used_once() {
        let document = serde_json::to_value(document()).unwrap_or_default();
        let mut seen = std::collections::BTreeSet::new();

        for (path, item) in document["paths"].as_object().into_iter().flatten() {
            for (method, operation) in item.as_object().into_iter().flatten() {
                let id = operation["operationId"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned();
                assert!(!id.is_empty(), "{method} {path}");
                assert!(seen.insert(id.clone()), "{method} {path}: {id} twice");
            }
        }
        assert!(seen.contains("delete_organizations_id_webhooks_webhook"));
    }

    #[test]
    fn every_schema_name_is_one_type() {
        // utoipa keeps one schema per name: two types of one name would document one
        // answer with the other's fields.
        let document = serde_json::to_value(document()).unwrap_or_default();

        assert!(document["components"]["schemas"]["ApiKeyDto"]["properties"]["prefix"].is_object());
        assert!(
            document["components"]["schemas"]["RegeneratedKeyDto"]["properties"]["api_key"]
                .is_object()
        );
    }

    #[test]
    fn every_operation_with_a_body_documents_413_and_415() {
        let document = serde_json::to_value(document()).unwrap_or_default();
        let mut bodies = 0;

        for (path, item) in document["paths"].as_object().into_iter().flatten() {
            for (method, operation) in item.as_object().into_iter().flatten() {
                if operation["requestBody"].is_object() {
                    bodies += 1;
                    for status in ["400", "413", "415"] {
                        assert!(
                            operation["responses"][status].is_object(),
                            "{method} {path}: {status}"
                        );
                    }
                }
            }
        }

        assert_eq!(bodies, 12);
    }

    #[test]
    fn every_authenticated_write_documents_the_read_only_refusal() {
        let document = serde_json::to_value(document()).unwrap_or_default();
        let mut count = 0;

        for (path, item) in document["paths"].as_object().into_iter().flatten() {
            for method in ["post", "put", "patch", "delete"] {
                let operation = &item[method];
                if operation["security"].as_array().is_none_or(Vec::is_empty) {
                    continue;
                }
                count += 1;
                let text = operation["responses"]["403"]["description"]
                    .as_str()
                    .unwrap_or_default();
                assert!(text.contains(READ_ONLY), "{method} {path}: {text}");
            }
        }

        assert!(count >= 10, "{count} writes");
        assert!(document["paths"]["/me/api_keys/"]["post"].is_object());
        assert!(document["paths"]["/me/api_keys/{key}/"]["delete"].is_object());
    }
}
