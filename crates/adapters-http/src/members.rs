//! Members: list an organization's users, get one, change a member's role, remove a
//! member (CONTRACT §5b); create a service account (CONTRACT §11).

use axum::Json;
use axum::http::{StatusCode, header};
use domain::service_account::ServiceAccountRequest;
use domain::user::User;
use serde::Serialize;
use utoipa::{IntoParams, ToSchema};

use crate::error::ApiError;
use crate::extract::{ListQuery, Scoped};
use crate::openapi::{BodyRefused, DetailBody, ListParams, OrganizationPath, Refused};
use crate::pagination::Paginated;
use crate::request::{self, list_filters, request_body};
use utoipa_axum::routes;

use crate::{Routes, carrying_secret, links, schema};

/// The routes of this module, each documented by its handler's `utoipa::path`.
pub(crate) fn routes() -> Vec<Routes> {
    vec![
        routes!(list),
        routes!(get, change_role, remove),
        carrying_secret(routes!(create_service_account)),
    ]
}

/// `{id}` and `{user}`, a member of a path.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub struct MemberPath {
    /// Organization id
    pub id: i64,
    /// User id
    pub user: i64,
}

/// A member of an organization.
#[derive(Debug, Serialize, ToSchema)]
pub struct MemberDto {
    /// Its member URL, `/organizations/{org}/users/{id}/`.
    pub url: String,
    /// Its identifier: an e-mail address, or a service account's name.
    pub identifier: String,
    /// `human` or `service`.
    pub kind: String,
    /// First name.
    pub first_name: String,
    /// Last name.
    pub last_name: String,
    /// `administrators`, `managers`, `users` or `collaborators`.
    pub role: String,
    /// Its organization URL.
    pub organization: String,
}

impl From<User> for MemberDto {
    fn from(user: User) -> Self {
        Self {
            url: links::member(user.organization_id, user.id),
            identifier: user.identifier.to_string(),
            kind: user.kind().as_str().to_owned(),
            first_name: user.first_name.as_str().to_owned(),
            last_name: user.last_name.as_str().to_owned(),
            role: user.role.as_str().to_owned(),
            organization: links::organization(user.organization_id),
        }
    }
}

request_body! {
    /// A role change.
    pub struct RoleWrite {
        /// `administrators`, `managers`, `users` or `collaborators`.
        role: request::RoleName, required;
    }
}

list_filters! {
    /// The filters of the member list.
    pub struct MemberFilters {
        /// `administrators`, `managers`, `users` or `collaborators`; empty for all.
        role: schema::role_filter;
        /// Part of the identifier, ignoring case.
        identifier: schema::text_filter;
        /// `human` or `service`; empty for all.
        kind: schema::kind_filter;
    }
}

request_body! {
    /// A new service account.
    pub struct ServiceAccountWrite => ServiceAccountRequest {
        /// 1 to 50 letters, digits, `-`, `_` or `.`, unique among the organization's
        /// service accounts; also its identifier.
        name: request::ServiceAccountName, required;
        /// `managers`, `users` or `collaborators` (never `administrators`).
        role: request::ServiceRole, required;
    }
}

/// A new service account with its API key, shown this once.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedServiceAccountDto {
    /// Its member URL, `/organizations/{org}/users/{id}/`.
    pub url: String,
    /// Its name.
    pub identifier: String,
    /// `service`.
    pub kind: String,
    /// Its role.
    pub role: String,
    /// Its organization URL.
    pub organization: String,
    /// Its `default` API key (`write` scope), for `Authorization: Bearer <key>`; shown
    /// only in this answer (`null` in an idempotent replay).
    pub api_key: String,
}

/// A visible organization's members (administrators and managers).
#[utoipa::path(get, path = "/organizations/{id}/users/", tag = "members",
    params(OrganizationPath, MemberFilters, ListParams), security(("bearer" = [])),
    responses(Refused, (status = 200, body = Paginated<MemberDto>), (status = 400, description = "Unknown role or kind")))]
pub(crate) async fn list(
    Scoped { state, actor, ids }: Scoped,
    query: ListQuery,
) -> Result<Json<Paginated<MemberDto>>, ApiError> {
    let MemberFilters {
        role,
        identifier,
        kind,
    } = MemberFilters::read(&query)?;
    let page = state
        .members
        .list(
            &actor,
            ids.organization,
            role,
            identifier,
            kind,
            query.page_request()?,
        )
        .await?;
    Ok(Json(Paginated::new(page, &query, MemberDto::from)))
}

/// One member of a visible organization (administrators and managers): the URL that
/// lists and `/me/` give.
#[utoipa::path(get, path = "/organizations/{id}/users/{user}/", tag = "members",
    params(MemberPath), security(("bearer" = [])),
    responses(Refused, (status = 200, body = MemberDto)))]
pub(crate) async fn get(Scoped { state, actor, ids }: Scoped) -> Result<Json<MemberDto>, ApiError> {
    let user = state
        .members
        .get(&actor, ids.organization, ids.user()?)
        .await?;
    Ok(Json(MemberDto::from(user)))
}

/// Changes a member's role (administrators only).
#[utoipa::path(patch, path = "/organizations/{id}/users/{user}/", tag = "members",
    params(MemberPath), request_body = RoleWrite, security(("bearer" = [])),
    responses(BodyRefused, Refused, (status = 200, body = MemberDto), (status = 400, description = "Missing or unknown role"),
        (status = 409, body = DetailBody, description = "The organization would lose its last administrator")))]
pub(crate) async fn change_role(
    Scoped { state, actor, ids }: Scoped,
    body: RoleWrite,
) -> Result<Json<MemberDto>, ApiError> {
    let user = state
        .members
        .change_role(&actor, ids.organization, ids.user()?, body.role)
        .await?;
    Ok(Json(MemberDto::from(user)))
}

/// Removes a member (administrators only); their API keys and sessions stop working.
#[utoipa::path(delete, path = "/organizations/{id}/users/{user}/", tag = "members",
    params(MemberPath), security(("bearer" = [])),
    responses(Refused, (status = 204, description = "Removed"),
        (status = 409, body = DetailBody, description = "The organization would lose its last administrator")))]
pub(crate) async fn remove(Scoped { state, actor, ids }: Scoped) -> Result<StatusCode, ApiError> {
    state
        .members
        .remove(&actor, ids.organization, ids.user()?)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Creates a service account (administrators only): a member with a name instead of an
/// e-mail address, no password, and a `default` API key shown in this answer only.
#[utoipa::path(post, path = "/organizations/{id}/service_accounts/", tag = "members",
    params(OrganizationPath), request_body = ServiceAccountWrite, security(("bearer" = [])),
    responses(BodyRefused, Refused, (status = 201, body = CreatedServiceAccountDto,
            headers(("Location" = String, description = "The new member's URL"))),
        (status = 400, description = "A bad name or role, a name in use (`A service account with this name already exists.`) or `administrators` (`A service account cannot be an administrator.`)")))]
pub(crate) async fn create_service_account(
    Scoped { state, actor, ids }: Scoped,
    body: ServiceAccountWrite,
) -> Result<
    (
        StatusCode,
        [(header::HeaderName, String); 1],
        Json<CreatedServiceAccountDto>,
    ),
    ApiError,
> {
    let created = state
        .members
        .create_service_account(&actor, ids.organization, body.into())
        .await?;
    let member = MemberDto::from(created.account);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, member.url.clone())],
        Json(CreatedServiceAccountDto {
            url: member.url,
            identifier: member.identifier,
            kind: member.kind,
            role: member.role,
            organization: member.organization,
            api_key: created.api_key.expose().to_owned(),
        }),
    ))
}
