//! The audit log: `GET /organizations/{id}/events/` (CONTRACT §13).

use axum::Json;
use axum::extract::State;
use domain::audit::{Event, StoredTarget};
use ports::inbound::EventQuery;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::routes;

use crate::error::ApiError;
use crate::extract::coerce::member_link;
use crate::extract::{CurrentActor, Ids, ListQuery};
use crate::openapi::{DetailBody, ListParams};
use crate::pagination::Paginated;
use crate::request::list_filters;
use crate::{AppState, Routes, links, schema};

pub(crate) fn routes() -> Vec<Routes> {
    vec![routes!(list)]
}

/// One event of the audit log.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct EventDto {
    /// Its id; later events have larger ids.
    pub id: i64,
    /// What happened (`member.role_changed`).
    pub action: String,
    /// The member URL of who did it; `null` for operator commands.
    pub actor: Option<String>,
    /// Who did it, as they were named then (`operator` for operator commands).
    pub actor_identifier: String,
    /// The organization the event belongs to.
    pub organization: String,
    /// The URL of what changed; `null` for an opt-out.
    pub target: Option<String>,
    /// For each changed field, its value before and after: `{"role": ["users", "managers"]}`.
    #[schema(value_type = Object)]
    pub changes: serde_json::Value,
    /// The `X-Request-Id` of the request that made the change; `null` for operator commands.
    pub request_id: Option<String>,
    /// When (ISO 8601).
    pub created_at: String,
}

impl From<Event> for EventDto {
    fn from(event: Event) -> Self {
        let organization = event.organization;
        let target = event.target.map(|target| match target {
            StoredTarget::Organization => links::organization(organization),
            StoredTarget::Member(user) => links::member(organization, user),
            StoredTarget::Invitation(invitation) => links::invitation(organization, invitation),
            StoredTarget::Webhook(webhook) => links::webhook(organization, webhook),
        });
        // Stored by the storage from the domain's own JSON; an object in any case.
        let changes = serde_json::from_str(&event.changes)
            .ok()
            .filter(serde_json::Value::is_object)
            .unwrap_or_else(|| serde_json::Value::Object(serde_json::Map::new()));
        Self {
            id: event.id.get(),
            action: event.action.as_str().to_owned(),
            actor: event.actor.map(links::member_ref),
            actor_identifier: event.actor_identifier,
            organization: links::organization(organization),
            target,
            changes,
            request_id: event.request_id,
            created_at: links::timestamp(event.created_at),
        }
    }
}

list_filters! {
    /// The filters of the audit log.
    pub struct EventFilters {
        /// An action (`member.removed`), or a prefix such as `member.*`.
        action: schema::event_action_filter;
        /// A member URL (`/organizations/1/users/5/`): the events that member made.
        actor: schema::text_filter;
        /// Events made at or after this instant (ISO 8601 date-time, or a date: its midnight UTC).
        since: schema::text_filter;
        /// Events made before this instant (ISO 8601 date-time, or a date: its midnight UTC).
        until: schema::text_filter;
    }
}

/// An organization's audit log, newest first; a root's includes its children's events
/// (archived children too). Administrators only.
#[utoipa::path(get, path = "/organizations/{id}/events/", tag = "events",
    params(("id" = i64, Path, description = "Organization id"), EventFilters, ListParams),
    security(("bearer" = [])),
    responses((status = 200, body = Paginated<EventDto>),
        (status = 400, description = "A bad filter value, on its parameter"),
        (status = 401, body = DetailBody), (status = 403, body = DetailBody),
        (status = 404, body = DetailBody)))]
pub(crate) async fn list(
    ids: Ids,
    State(state): State<AppState>,
    CurrentActor(actor): CurrentActor,
    query: ListQuery,
) -> Result<Json<Paginated<EventDto>>, ApiError> {
    let EventFilters {
        action,
        actor: actor_filter,
        since,
        until,
    } = EventFilters::read(&query)?;
    let filters = EventQuery {
        action,
        actor: actor_filter.as_deref().map(member_link),
        since,
        until,
    };
    let page = state
        .events
        .list(&actor, ids.organization, filters, query.page_request()?)
        .await?;
    Ok(Json(Paginated::new(page, &query, EventDto::from)))
}
