//! `/organizations/`: list, detail, children, create a child, PUT, PATCH and DELETE.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use domain::Version;
use domain::organization::UpdateMode::{Partial, Replace};
use domain::organization::{Organization, UpdateMode};
use ports::inbound::OrganizationFields;
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::ApiError;
use crate::extract::{BearerToken, CurrentActor, Ids, IfMatch, ListQuery};
use crate::openapi::{BodyRefused, DetailBody, ListParams};
use crate::pagination::Paginated;
use crate::request::{self, request_body};
use utoipa_axum::routes;

use crate::{AppState, Routes, links};

/// The routes of this module, each documented by its handler's `utoipa::path`.
pub(crate) fn routes() -> Vec<Routes> {
    vec![
        routes!(list, create),
        routes!(detail, replace, patch, archive),
        routes!(children),
    ]
}

/// A HAL link.
#[derive(Debug, Serialize, ToSchema)]
pub struct Link {
    /// The target, root-relative.
    pub href: String,
}

/// An organization's settings.
#[derive(Debug, Serialize, ToSchema)]
pub struct SettingsDto {
    /// Empty, or 4 to 30 lowercase letters, digits and dashes.
    pub nickname: String,
    /// Notify `contact_email` on status changes.
    pub notify_message_status: bool,
    /// Notify `contact_email` on new opt-outs.
    pub notify_optouts: bool,
    /// Blank unless `can_external_optout`.
    pub external_optout_message: String,
}

/// An organization's links.
#[derive(Debug, Serialize, ToSchema)]
pub struct OrganizationLinks {
    /// Its opt-outs.
    pub opt_outs: Link,
    /// Its children.
    pub children: Link,
    /// Where to invite a user.
    pub invite_user: Link,
}

/// An organization (CONTRACT §4).
#[derive(Debug, Serialize, ToSchema)]
pub struct OrganizationDto {
    /// Its own URL.
    pub url: String,
    /// Its name.
    pub name: String,
    /// Its contact address, `""` when none.
    pub contact_email: String,
    /// Its settings.
    pub settings: SettingsDto,
    /// Its parent's URL, or `null` for a root.
    pub parent: Option<String>,
    /// Read-only flag.
    pub can_attach_files: bool,
    /// Read-only flag.
    pub can_external_optout: bool,
    /// Related resources.
    #[serde(rename = "_links")]
    pub links: OrganizationLinks,
}

impl From<&Organization> for OrganizationDto {
    fn from(organization: &Organization) -> Self {
        let id = organization.id;
        let link = |sub: &str| Link {
            href: links::organization_sub(id, sub),
        };
        Self {
            url: links::organization(id),
            name: organization.name.as_str().to_owned(),
            contact_email: organization
                .contact_email
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default(),
            settings: SettingsDto {
                nickname: organization.settings.nickname.as_str().to_owned(),
                notify_message_status: organization.settings.notify_message_status,
                notify_optouts: organization.settings.notify_optouts,
                external_optout_message: organization.settings.external_optout_message.clone(),
            },
            parent: organization.parent.map(links::organization),
            can_attach_files: organization.can_attach_files,
            can_external_optout: organization.can_external_optout,
            links: OrganizationLinks {
                opt_outs: link("opt_outs"),
                children: link("children"),
                invite_user: link("invite_user"),
            },
        }
    }
}

request_body! {
    /// A new child organization; other fields are ignored.
    pub struct OrganizationCreate => OrganizationFields {
        /// At most 200 characters, not blank.
        name: request::OrganizationName, required;
        /// A valid e-mail address.
        contact_email: request::Email, required;
        /// The parent's URL (`/organizations/1/` or absolute): your own organization.
        parent: request::Parent, required;
        /// Any subset of the settings; the others take their defaults.
        settings: request::Settings;
    }
}

request_body! {
    /// An organization's writable fields, all given; others are ignored.
    pub struct OrganizationReplace => OrganizationFields {
        /// At most 200 characters, not blank.
        name: request::OrganizationName, required;
        /// A valid e-mail address.
        contact_email: request::Email, required;
        /// The parent's URL, which cannot change.
        parent: request::UnchangedParent;
        /// Any subset of the settings, merged key by key.
        settings: request::Settings;
    }
}

request_body! {
    /// Any subset of an organization's writable fields; others are ignored.
    pub struct OrganizationPatch => OrganizationFields {
        /// At most 200 characters, not blank.
        name: request::OrganizationName;
        /// A valid e-mail address.
        contact_email: request::Email;
        /// The parent's URL, which cannot change.
        parent: request::UnchangedParent;
        /// Any subset of the settings, merged key by key.
        settings: request::Settings;
    }
}

/// The strong `ETag` of an organization: its version, quoted (`"3"`).
#[must_use]
pub fn etag(version: Version) -> String {
    format!("\"{}\"", version.get())
}

/// The version in one of our entity tags (`"3"`, also accepted weak: `W/"3"`).
#[must_use]
pub fn parse_etag(tag: &str) -> Option<Version> {
    let tag = tag.strip_prefix("W/").unwrap_or(tag);
    let inner = tag.strip_prefix('"')?.strip_suffix('"')?;
    if inner.is_empty() || !inner.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    inner.parse::<i64>().ok().map(Version::new)
}

/// The representation with its `ETag`, and `Location` when `created`.
fn respond(organization: &Organization, status: StatusCode) -> Response {
    let dto = OrganizationDto::from(organization);
    let tag = [(header::ETAG, etag(organization.version))];
    if status == StatusCode::CREATED {
        let location = [(header::LOCATION, dto.url.clone())];
        return (status, tag, location, Json(dto)).into_response();
    }
    (status, tag, Json(dto)).into_response()
}

/// Your organization first, then its children.
#[utoipa::path(get, path = "/organizations/", tag = "organizations", params(ListParams),
    security(("bearer" = [])),
    responses((status = 200, body = Paginated<OrganizationDto>),
        (status = 401, body = DetailBody), (status = 404, description = "Invalid page.", body = DetailBody)))]
pub(crate) async fn list(
    State(state): State<AppState>,
    CurrentActor(actor): CurrentActor,
    query: ListQuery,
) -> Result<Json<Paginated<OrganizationDto>>, ApiError> {
    let page = state
        .organizations
        .list(&actor, query.page_request()?)
        .await?;
    Ok(Json(Paginated::new(page, &query, |o| {
        OrganizationDto::from(&o)
    })))
}

/// One visible organization, with its `ETag`.
#[utoipa::path(get, path = "/organizations/{id}/", tag = "organizations",
    params(("id" = i64, Path, description = "Organization id")), security(("bearer" = [])),
    responses((status = 200, body = OrganizationDto, headers(("ETag" = String))),
        (status = 401, body = DetailBody), (status = 404, body = DetailBody)))]
pub(crate) async fn detail(
    ids: Ids,
    State(state): State<AppState>,
    BearerToken(token): BearerToken,
) -> Result<Response, ApiError> {
    // The credential and the organization in one statement (docs/benchmarks.md).
    let (_, organization) = state
        .auth
        .authenticated_organization(&token, ids.organization)
        .await?;
    Ok(respond(&organization, StatusCode::OK))
}

/// The children of a visible organization.
#[utoipa::path(get, path = "/organizations/{id}/children/", tag = "organizations",
    params(("id" = i64, Path, description = "Organization id"), ListParams), security(("bearer" = [])),
    responses((status = 200, body = Paginated<OrganizationDto>),
        (status = 401, body = DetailBody), (status = 404, body = DetailBody)))]
pub(crate) async fn children(
    ids: Ids,
    State(state): State<AppState>,
    BearerToken(token): BearerToken,
    query: ListQuery,
) -> Result<Json<Paginated<OrganizationDto>>, ApiError> {
    // The credential and the parent in one statement, then its page (docs/benchmarks.md).
    let (actor, parent) = state
        .auth
        .authenticated_organization(&token, ids.organization)
        .await?;
    let page = state
        .organizations
        .children(&actor, &parent, query.page_request()?)
        .await?;
    Ok(Json(Paginated::new(page, &query, |o| {
        OrganizationDto::from(&o)
    })))
}

/// Creates a child of your organization (administrators only).
#[utoipa::path(post, path = "/organizations/", tag = "organizations", request_body = OrganizationCreate,
    security(("bearer" = [])),
    responses(BodyRefused, (status = 201, body = OrganizationDto, headers(("Location" = String), ("ETag" = String))),
        (status = 400, description = "Field errors"), (status = 401, body = DetailBody),
        (status = 403, body = DetailBody)))]
pub(crate) async fn create(
    State(state): State<AppState>,
    CurrentActor(actor): CurrentActor,
    body: OrganizationCreate,
) -> Result<Response, ApiError> {
    let organization = state
        .organizations
        .create_child(&actor, body.into())
        .await?;
    Ok(respond(&organization, StatusCode::CREATED))
}

/// A write of a visible organization's fields; the answer is as the detail's.
async fn update(
    state: &AppState,
    actor: &domain::Actor,
    ids: Ids,
    if_match: IfMatch,
    fields: OrganizationFields,
    mode: UpdateMode,
) -> Result<Response, ApiError> {
    let organization = state
        .organizations
        .update(actor, ids.organization, mode, fields, if_match.0)
        .await?;
    Ok(respond(&organization, StatusCode::OK))
}

/// Replaces a visible organization's fields (`name` and `contact_email` required).
#[utoipa::path(put, path = "/organizations/{id}/", tag = "organizations", request_body = OrganizationReplace,
    params(("id" = i64, Path, description = "Organization id"),
        ("If-Match" = Option<String>, Header, description = "The ETag last read")),
    security(("bearer" = [])),
    responses(BodyRefused, (status = 200, body = OrganizationDto, headers(("ETag" = String))),
        (status = 400, description = "Field errors"), (status = 401, body = DetailBody),
        (status = 403, body = DetailBody), (status = 404, body = DetailBody), (status = 412, body = DetailBody)))]
pub(crate) async fn replace(
    ids: Ids,
    State(state): State<AppState>,
    CurrentActor(actor): CurrentActor,
    if_match: IfMatch,
    body: OrganizationReplace,
) -> Result<Response, ApiError> {
    update(&state, &actor, ids, if_match, body.into(), Replace).await
}

/// Changes some fields of a visible organization.
#[utoipa::path(patch, path = "/organizations/{id}/", tag = "organizations", request_body = OrganizationPatch,
    params(("id" = i64, Path, description = "Organization id"),
        ("If-Match" = Option<String>, Header, description = "The ETag last read")),
    security(("bearer" = [])),
    responses(BodyRefused, (status = 200, body = OrganizationDto, headers(("ETag" = String))),
        (status = 400, description = "Field errors"), (status = 401, body = DetailBody),
        (status = 403, body = DetailBody), (status = 404, body = DetailBody), (status = 412, body = DetailBody)))]
pub(crate) async fn patch(
    ids: Ids,
    State(state): State<AppState>,
    CurrentActor(actor): CurrentActor,
    if_match: IfMatch,
    body: OrganizationPatch,
) -> Result<Response, ApiError> {
    update(&state, &actor, ids, if_match, body.into(), Partial).await
}

/// Archives a child of your organization.
#[utoipa::path(delete, path = "/organizations/{id}/", tag = "organizations",
    params(("id" = i64, Path, description = "Organization id"),
        ("If-Match" = Option<String>, Header, description = "The ETag last read")),
    security(("bearer" = [])),
    responses((status = 204, description = "Archived"), (status = 401, body = DetailBody),
        (status = 403, body = DetailBody), (status = 404, body = DetailBody), (status = 412, body = DetailBody)))]
pub(crate) async fn archive(
    ids: Ids,
    State(state): State<AppState>,
    CurrentActor(actor): CurrentActor,
    if_match: IfMatch,
) -> Result<StatusCode, ApiError> {
    state
        .organizations
        .archive(&actor, ids.organization, if_match.0)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_etag_is_the_quoted_version_and_reads_back() {
        let tag = etag(Version::new(7));

        assert_eq!(tag, "\"7\"");
        assert_eq!(parse_etag(&tag), Some(Version::new(7)));
        assert_eq!(parse_etag("W/\"7\""), Some(Version::new(7)));
    }

    #[test]
    fn foreign_entity_tags_are_not_versions() {
        for tag in ["7", "\"\"", "\"x7\"", "\"-7\"", "W/7"] {
            assert_eq!(parse_etag(tag), None, "{tag}");
        }
    }
}
