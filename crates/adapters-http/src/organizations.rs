//! `/organizations/`: list, detail, children, create a child, PUT, PATCH and DELETE.

use std::io;

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use domain::organization::UpdateMode::{Partial, Replace};
use domain::organization::{Organization, UpdateMode};
use domain::{EmailAddress, Version};
use ports::inbound::OrganizationFields;
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::ApiError;
use crate::extract::{BearerToken, CurrentActor, Ids, IfMatch, ListQuery, Scoped};
use crate::openapi::{BodyRefused, DetailBody, ListParams, OrganizationPath, Refused};
use crate::pagination::{Paginated, json_page, json_response, write_bool, write_str};
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

// The representation's schema, and the reference that `write_organization` writes byte
// for byte (tested below). Its doc comment is the schema's description.
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

/// The bytes of an organization's JSON besides its strings, its id's four links and its
/// parent, with its four flags `true` (each `false` is one byte more).
const ORGANIZATION_JSON_SIZE: usize = 384;

/// The bytes of `"parent":`'s value besides the parent's id: `"/organizations//"`.
const PARENT_LINK_SIZE: usize = 18;

/// How long the JSON of `organization` is (exactly, when its strings need no escapes),
/// to reserve a body at once that never grows.
fn organization_json_size(organization: &Organization) -> usize {
    let parent = organization.parent.map_or("null".len(), |parent| {
        PARENT_LINK_SIZE + links::integer_len(parent.get())
    });
    let settings = &organization.settings;
    let falses = [
        settings.notify_message_status,
        settings.notify_optouts,
        organization.can_attach_files,
        organization.can_external_optout,
    ]
    .into_iter()
    .filter(|flag| !flag)
    .count();
    ORGANIZATION_JSON_SIZE
        + falses
        + 4 * links::integer_len(organization.id.get())
        + parent
        + organization.name.as_str().len()
        + organization
            .contact_email
            .as_ref()
            .map_or(0, |email| email.as_str().len())
        + organization.settings.nickname.as_str().len()
        + organization.settings.external_optout_message.len()
}

/// Writes the JSON of `organization` into `out`: the bytes `OrganizationDto::from`'s
/// value serializes to, without the DTO's `String`s (its links are written in place).
///
/// # Errors
/// Those of `out`.
pub fn write_organization(out: &mut Vec<u8>, organization: &Organization) -> io::Result<()> {
    let id = organization.id;
    let settings = &organization.settings;
    out.extend_from_slice(b"{\"url\":\"");
    links::write_organization(out, id, None);
    out.extend_from_slice(b"\",\"name\":");
    write_str(out, organization.name.as_str())?;
    out.extend_from_slice(b",\"contact_email\":");
    let contact_email = organization.contact_email.as_ref();
    write_str(out, contact_email.map_or("", EmailAddress::as_str))?;
    out.extend_from_slice(b",\"settings\":{\"nickname\":");
    write_str(out, settings.nickname.as_str())?;
    out.extend_from_slice(b",\"notify_message_status\":");
    write_bool(out, settings.notify_message_status);
    out.extend_from_slice(b",\"notify_optouts\":");
    write_bool(out, settings.notify_optouts);
    out.extend_from_slice(b",\"external_optout_message\":");
    write_str(out, &settings.external_optout_message)?;
    out.extend_from_slice(b"},\"parent\":");
    match organization.parent {
        None => out.extend_from_slice(b"null"),
        Some(parent) => {
            out.push(b'"');
            links::write_organization(out, parent, None);
            out.push(b'"');
        }
    }
    out.extend_from_slice(b",\"can_attach_files\":");
    write_bool(out, organization.can_attach_files);
    out.extend_from_slice(b",\"can_external_optout\":");
    write_bool(out, organization.can_external_optout);
    out.extend_from_slice(b",\"_links\":{\"opt_outs\":{\"href\":\"");
    links::write_organization(out, id, Some("opt_outs"));
    out.extend_from_slice(b"\"},\"children\":{\"href\":\"");
    links::write_organization(out, id, Some("children"));
    out.extend_from_slice(b"\"},\"invite_user\":{\"href\":\"");
    links::write_organization(out, id, Some("invite_user"));
    out.extend_from_slice(b"\"}}}");
    Ok(())
}

/// The JSON of `organization`, in a buffer reserved for it.
fn organization_json(organization: &Organization) -> io::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(organization_json_size(organization));
    write_organization(&mut out, organization)?;
    Ok(out)
}

/// A page of organizations, as `Json(Paginated<OrganizationDto>)` writes it.
fn organization_page(page: &domain::pagination::Page<Organization>, query: &ListQuery) -> Response {
    json_page(page, query, organization_json_size, write_organization)
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

/// [`etag`] as a header value, without a formatter or a `String` of its own.
fn etag_header(version: Version) -> Option<HeaderValue> {
    let mut tag = Vec::with_capacity(2 + links::integer_len(version.get()));
    tag.push(b'"');
    links::write_integer(&mut tag, version.get());
    tag.push(b'"');
    HeaderValue::try_from(tag).ok()
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
    let mut response = json_response(status, organization_json(organization));
    if response.status() != status {
        return response;
    }
    let headers = response.headers_mut();
    if let Some(tag) = etag_header(organization.version) {
        headers.insert(header::ETAG, tag);
    }
    if status == StatusCode::CREATED {
        if let Ok(location) = HeaderValue::try_from(links::organization(organization.id)) {
            headers.insert(header::LOCATION, location);
        }
    }
    response
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
) -> Result<Response, ApiError> {
    let page = state
        .organizations
        .list(&actor, query.page_request()?)
        .await?;
    Ok(organization_page(&page, &query))
}

/// One visible organization, with its `ETag`.
#[utoipa::path(get, path = "/organizations/{id}/", tag = "organizations",
    params(OrganizationPath), security(("bearer" = [])),
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
    params(OrganizationPath, ListParams), security(("bearer" = [])),
    responses((status = 200, body = Paginated<OrganizationDto>),
        (status = 401, body = DetailBody), (status = 404, body = DetailBody)))]
pub(crate) async fn children(
    ids: Ids,
    State(state): State<AppState>,
    BearerToken(token): BearerToken,
    query: ListQuery,
) -> Result<Response, ApiError> {
    // The credential and the parent in one statement, then its page (docs/benchmarks.md).
    let (actor, parent) = state
        .auth
        .authenticated_organization(&token, ids.organization)
        .await?;
    let page = state
        .organizations
        .children(&actor, &parent, query.page_request()?)
        .await?;
    Ok(organization_page(&page, &query))
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
    params(OrganizationPath, ("If-Match" = Option<String>, Header, description = "The ETag last read")),
    security(("bearer" = [])),
    responses(BodyRefused, Refused, (status = 200, body = OrganizationDto, headers(("ETag" = String))),
        (status = 400, description = "Field errors"), (status = 412, body = DetailBody)))]
pub(crate) async fn replace(
    Scoped { state, actor, ids }: Scoped,
    if_match: IfMatch,
    body: OrganizationReplace,
) -> Result<Response, ApiError> {
    update(&state, &actor, ids, if_match, body.into(), Replace).await
}

/// Changes some fields of a visible organization.
#[utoipa::path(patch, path = "/organizations/{id}/", tag = "organizations", request_body = OrganizationPatch,
    params(OrganizationPath, ("If-Match" = Option<String>, Header, description = "The ETag last read")),
    security(("bearer" = [])),
    responses(BodyRefused, Refused, (status = 200, body = OrganizationDto, headers(("ETag" = String))),
        (status = 400, description = "Field errors"), (status = 412, body = DetailBody)))]
pub(crate) async fn patch(
    Scoped { state, actor, ids }: Scoped,
    if_match: IfMatch,
    body: OrganizationPatch,
) -> Result<Response, ApiError> {
    update(&state, &actor, ids, if_match, body.into(), Partial).await
}

/// Archives a child of your organization.
#[utoipa::path(delete, path = "/organizations/{id}/", tag = "organizations",
    params(OrganizationPath, ("If-Match" = Option<String>, Header, description = "The ETag last read")),
    security(("bearer" = [])),
    responses(Refused, (status = 204, description = "Archived"), (status = 412, body = DetailBody)))]
pub(crate) async fn archive(
    Scoped { state, actor, ids }: Scoped,
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
    use domain::OrganizationId;
    use domain::organization::{Nickname, OrganizationName, Settings};
    use proptest::prelude::*;

    /// The organization these values make, when its name, address and nickname are valid.
    #[expect(
        clippy::too_many_arguments,
        reason = "one per field the strategy draws"
    )]
    fn organization(
        id: i64,
        parent: Option<i64>,
        name: &str,
        email: Option<&str>,
        nickname: &str,
        flags: [bool; 4],
        message: String,
        version: i64,
    ) -> Option<Organization> {
        let [
            notify_message_status,
            notify_optouts,
            can_attach_files,
            can_external_optout,
        ] = flags;
        Some(Organization {
            id: OrganizationId::new(id),
            name: OrganizationName::parse(name).ok()?,
            contact_email: match email {
                Some(email) => Some(EmailAddress::parse(email).ok()?),
                None => None,
            },
            settings: Settings {
                nickname: Nickname::parse(nickname).ok()?,
                notify_message_status,
                notify_optouts,
                external_optout_message: message,
            },
            parent: parent.map(OrganizationId::new),
            can_attach_files,
            can_external_optout,
            version: Version::new(version),
            created_at: domain::Timestamp::default(),
            updated_at: domain::Timestamp::default(),
        })
    }

    /// What `write_organization` writes, and what the DTO serializes to.
    fn both(organization: &Organization) -> io::Result<(String, String)> {
        let written = organization_json(organization)?;
        let serialized = serde_json::to_string(&OrganizationDto::from(organization))?;
        Ok((String::from_utf8_lossy(&written).into_owned(), serialized))
    }

    #[test]
    fn a_written_organization_is_the_serialized_dto() -> io::Result<()> {
        let child = organization(
            7,
            Some(1),
            "Child \"7\" \\ é ☃ \u{2028} </script>",
            Some("Child-7@Example.COM"),
            "child-7",
            [true, false, true, false],
            "Say \"no\"\n\t\u{1} 😀".to_owned(),
            3,
        );
        let root = organization(1, None, "Root", None, "", [false; 4], String::new(), 1);
        for organization in [child, root].iter().flatten() {
            let (written, serialized) = both(organization)?;
            assert_eq!(written, serialized);
        }
        Ok(())
    }

    proptest! {
        #[test]
        fn any_organization_is_written_as_its_dto_serializes(
            id in 1..i64::MAX,
            parent in proptest::option::of(1..i64::MAX),
            name in any::<String>(),
            email in proptest::option::of("[A-Za-z0-9.+_-]{1,10}@[A-Za-z0-9-]{1,10}\\.[A-Za-z]{2,4}"),
            nickname in "|[a-z0-9-]{4,30}",
            flags in any::<[bool; 4]>(),
            message in any::<String>(),
        ) {
            let made = organization(id, parent, &name, email.as_deref(), &nickname, flags, message, 1);
            if let Some(organization) = made {
                let (written, serialized) = both(&organization)?;
                prop_assert_eq!(written, serialized);
            }
        }

        #[test]
        fn the_reserved_size_is_the_written_length_when_nothing_is_escaped(
            id in prop_oneof![1..10_i64, 1..i64::MAX],
            parent in proptest::option::of(prop_oneof![1..10_i64, 1..i64::MAX]),
            name in "[A-Za-z0-9 é☃]{1,40}",
            email in proptest::option::of("[a-z0-9.+_-]{1,10}@[a-z0-9-]{1,10}\\.[a-z]{2,4}"),
            nickname in "|[a-z0-9-]{4,30}",
            flags in any::<[bool; 4]>(),
            message in "[A-Za-z0-9 .é]{0,40}",
        ) {
            let made = organization(id, parent, &name, email.as_deref(), &nickname, flags, message, 1);
            if let Some(organization) = made {
                let written = organization_json(&organization)?;
                prop_assert_eq!(organization_json_size(&organization), written.len());
            }
        }

        #[test]
        fn an_etag_header_is_the_etag(version in any::<i64>()) {
            let header = etag_header(Version::new(version));
            let tag = etag(Version::new(version));
            prop_assert_eq!(
                header.as_ref().and_then(|value| value.to_str().ok()),
                Some(tag.as_str())
            );
        }
    }

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
