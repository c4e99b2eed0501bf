//! The OpenAPI 3 document, generated from the handlers' annotations.

use serde::Serialize;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{IntoParams, Modify, OpenApi, ToSchema};

use crate::{auth, invitations, members, opt_outs, organizations, service};

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
    page: Option<u64>,
    /// Rows per page: 50 by default, at most 1000.
    page_size: Option<u64>,
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
    paths(
        service::root, service::healthz, service::readyz, service::metrics, service::openapi,
        auth::login, auth::me, auth::regenerate_secret,
        organizations::list, organizations::create, organizations::detail,
        organizations::replace, organizations::patch, organizations::archive,
        organizations::children,
        invitations::invite, invitations::list, invitations::detail, invitations::resend,
        invitations::revoke, invitations::accept,
        members::list, members::get, members::change_role, members::remove,
        opt_outs::list, opt_outs::record,
    ),
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

/// The OpenAPI document of the router.
#[must_use]
pub fn document() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_of_the_router_is_documented_with_its_method() {
        let document = serde_json::to_value(document()).unwrap_or_default();

        let missing: Vec<String> = crate::endpoints()
            .iter()
            .filter(|endpoint| {
                document["paths"][endpoint.path][endpoint.method.as_str().to_ascii_lowercase()]
                    .is_null()
            })
            .map(|endpoint| format!("{} {}", endpoint.method, endpoint.path))
            .collect();

        assert!(missing.is_empty(), "undocumented routes: {missing:?}");
    }

    #[test]
    fn every_documented_operation_is_a_route_of_the_router() {
        let document = serde_json::to_value(document()).unwrap_or_default();
        let routes: Vec<(String, String)> = crate::endpoints()
            .iter()
            .map(|e| (e.path.to_owned(), e.method.as_str().to_ascii_lowercase()))
            .collect();

        let mut extra = Vec::new();
        for (path, item) in document["paths"].as_object().into_iter().flatten() {
            for method in item.as_object().into_iter().flatten().map(|(m, _)| m) {
                if !routes.contains(&(path.clone(), method.clone())) {
                    extra.push(format!("{method} {path}"));
                }
            }
        }

        assert!(!routes.is_empty());
        assert!(extra.is_empty(), "documented but not routed: {extra:?}");
    }

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
}
