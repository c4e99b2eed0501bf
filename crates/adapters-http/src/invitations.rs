//! Invitations: invite, list, get, resend, revoke and accept (CONTRACT §5).

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use domain::invitation::{AcceptRequest, InviteRequest};
use ports::inbound::InvitationView;
use serde::Serialize;
use utoipa::{IntoParams, ToSchema};

use crate::error::ApiError;
use crate::extract::{ListQuery, Scoped};
use crate::members::MemberDto;
use crate::openapi::{BodyRefused, DetailBody, ListParams, OrganizationPath, Refused};
use crate::pagination::Paginated;
use crate::request::{self, list_filters, request_body};
use utoipa_axum::routes;

use crate::{AppState, Routes, carrying_secret, links, pages, schema};

/// The routes of this module, each documented by its handler's `utoipa::path`.
pub(crate) fn routes() -> Vec<Routes> {
    vec![
        routes!(invite),
        routes!(list),
        routes!(detail, revoke),
        routes!(resend),
        // The invitation page (`GET`, HTML) shares the acceptance's path.
        carrying_secret(routes!(pages::view, accept)),
    ]
}

/// `{id}` and `{invitation}`, an invitation of a path.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub struct InvitationPath {
    /// Organization id
    pub id: i64,
    /// Invitation id
    pub invitation: i64,
}

/// An invitation.
#[derive(Debug, Serialize, ToSchema)]
pub struct InvitationDto {
    /// Its own URL.
    pub url: String,
    /// The invited address.
    pub identifier: String,
    /// The role the user will have.
    pub role: String,
    /// `pending`, `accepted`, `revoked` or `expired`.
    pub status: String,
    /// The inviter's member URL, or `null` when the inviter is gone.
    pub invited_by: Option<String>,
    /// When it was made (ISO 8601, UTC).
    pub created_at: String,
    /// When it stops working (ISO 8601, UTC).
    pub expires_at: String,
}

impl From<InvitationView> for InvitationDto {
    fn from(view: InvitationView) -> Self {
        // The status comes with the invitation, computed by the use case with its clock:
        // the adapter reads no clock (docs/http.md).
        let InvitationView { invitation, status } = view;
        Self {
            url: links::invitation(invitation.organization_id, invitation.id),
            identifier: invitation.identifier.to_string(),
            role: invitation.role.as_str().to_owned(),
            status: status.as_str().to_owned(),
            invited_by: invitation.invited_by.map(links::member_ref),
            created_at: links::timestamp(invitation.created_at),
            expires_at: links::timestamp(invitation.expires_at),
        }
    }
}

request_body! {
    /// An invitation request.
    pub struct InviteWrite => InviteRequest {
        /// The e-mail address to invite.
        identifier: request::Email, required;
        /// `administrators`, `managers`, `users` (default) or `collaborators`.
        role: request::RoleName;
        /// 1 to 30; the service's default when absent.
        expires_in_days: request::InvitationDays;
    }
}

request_body! {
    /// An acceptance.
    pub struct AcceptWrite => AcceptRequest {
        /// The token from the invitation e-mail.
        token: request::Secret, required;
        /// At least 8 characters.
        password: request::NewPassword, required;
        /// Not blank, at most 50 characters.
        first_name: request::PersonName, required;
        /// Not blank, at most 50 characters.
        last_name: request::PersonName, required;
    }
}

list_filters! {
    /// The filters of the invitation list.
    pub struct InvitationFilters {
        /// `pending`, `accepted`, `revoked` or `expired`; empty for all.
        status: schema::status_filter;
    }
}

/// The user an accepted invitation made.
#[derive(Debug, Serialize, ToSchema)]
pub struct AcceptedDto {
    /// The user's identifier.
    pub identifier: String,
    /// The user's organization URL.
    pub organization: String,
    /// The user's role.
    pub role: String,
    /// The user's first API key, shown once.
    pub api_key: String,
}

/// Invites an address into a visible organization (administrators only).
#[utoipa::path(post, path = "/organizations/{id}/invite_user/", tag = "invitations",
    params(OrganizationPath), request_body = InviteWrite, security(("bearer" = [])),
    responses(BodyRefused, Refused, (status = 201, body = InvitationDto, headers(("Location" = String))),
        (status = 400, description = "Field errors"), (status = 429, body = DetailBody)))]
pub(crate) async fn invite(
    Scoped { state, actor, ids }: Scoped,
    body: InviteWrite,
) -> Result<Response, ApiError> {
    let invitation = state
        .invitations
        .invite(&actor, ids.organization, body.into())
        .await?;
    let dto = InvitationDto::from(invitation);
    let location = [(header::LOCATION, dto.url.clone())];
    Ok((StatusCode::CREATED, location, Json(dto)).into_response())
}

/// A visible organization's invitations, newest first.
#[utoipa::path(get, path = "/organizations/{id}/invitations/", tag = "invitations",
    params(OrganizationPath, InvitationFilters, ListParams), security(("bearer" = [])),
    responses(Refused, (status = 200, body = Paginated<InvitationDto>), (status = 400, description = "Unknown status")))]
pub(crate) async fn list(
    Scoped { state, actor, ids }: Scoped,
    query: ListQuery,
) -> Result<Json<Paginated<InvitationDto>>, ApiError> {
    let InvitationFilters { status } = InvitationFilters::read(&query)?;
    let page = state
        .invitations
        .list(&actor, ids.organization, status, query.page_request()?)
        .await?;
    Ok(Json(Paginated::new(page, &query, InvitationDto::from)))
}

/// One invitation of a visible organization, as in the list.
#[utoipa::path(get, path = "/organizations/{id}/invitations/{invitation}/", tag = "invitations",
    params(InvitationPath), security(("bearer" = [])),
    responses(Refused, (status = 200, body = InvitationDto)))]
pub(crate) async fn detail(
    Scoped { state, actor, ids }: Scoped,
) -> Result<Json<InvitationDto>, ApiError> {
    let invitation = state
        .invitations
        .get(&actor, ids.organization, ids.invitation()?)
        .await?;
    Ok(Json(InvitationDto::from(invitation)))
}

/// Sends an invitation again with a fresh token and expiry.
#[utoipa::path(post, path = "/organizations/{id}/invitations/{invitation}/resend/", tag = "invitations",
    params(InvitationPath), security(("bearer" = [])),
    responses(Refused, (status = 202, body = InvitationDto), (status = 409, body = DetailBody), (status = 429, body = DetailBody)))]
pub(crate) async fn resend(
    Scoped { state, actor, ids }: Scoped,
) -> Result<(StatusCode, Json<InvitationDto>), ApiError> {
    let invitation = state
        .invitations
        .resend(&actor, ids.organization, ids.invitation()?)
        .await?;
    Ok((StatusCode::ACCEPTED, Json(InvitationDto::from(invitation))))
}

/// Revokes an invitation.
#[utoipa::path(delete, path = "/organizations/{id}/invitations/{invitation}/", tag = "invitations",
    params(InvitationPath), security(("bearer" = [])),
    responses(Refused, (status = 204, description = "Revoked"), (status = 409, body = DetailBody)))]
pub(crate) async fn revoke(Scoped { state, actor, ids }: Scoped) -> Result<StatusCode, ApiError> {
    state
        .invitations
        .revoke(&actor, ids.organization, ids.invitation()?)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Accepts an invitation: the user now exists (no authentication).
#[utoipa::path(post, path = "/invitations/accept/", tag = "invitations", request_body = AcceptWrite,
    responses(BodyRefused, (status = 201, body = AcceptedDto, headers(("Location" = String))),
        (status = 400, description = "Field errors, or an invalid or expired token"),
        (status = 503, body = DetailBody, description = "Every password-hashing slot is busy: retry after `Retry-After`")))]
pub(crate) async fn accept(
    State(state): State<AppState>,
    request: axum::extract::Request,
) -> Result<Response, ApiError> {
    // A browser's form gets the invitation pages; any other body is the JSON API's.
    if pages::is_form(request.headers()) {
        return Ok(pages::accept_form(state, request).await);
    }
    let request_id = crate::extract::request_id(request.headers());
    let body = <AcceptWrite as axum::extract::FromRequest<AppState>>::from_request(request, &state)
        .await?;
    let accepted = state.invitations.accept(body.into(), request_id).await?;
    let member = MemberDto::from(accepted.user);
    let location = [(header::LOCATION, member.url)];
    let dto = AcceptedDto {
        identifier: member.identifier,
        organization: member.organization,
        role: member.role,
        api_key: accepted.api_key.expose().to_owned(),
    };
    Ok((StatusCode::CREATED, location, Json(dto)).into_response())
}
