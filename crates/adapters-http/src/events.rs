//! The audit log: `GET /organizations/{id}/events/` (CONTRACT §13).

use axum::Json;
use domain::audit::{Event, EventSlice, StoredTarget};
use domain::{ErrorCode, ValidationErrors};
use ports::inbound::EventQuery;
use serde::Serialize;
use utoipa::openapi::schema::AnyOfBuilder;
use utoipa::openapi::{RefOr, Schema};
use utoipa::{IntoParams, PartialSchema, ToSchema};
use utoipa_axum::routes;

use crate::error::ApiError;
use crate::extract::coerce::member_link;
use crate::extract::{ListQuery, Scoped};
use crate::openapi::{ListParams, OrganizationPath, Refused};
use crate::pagination::{self, Paginated};
use crate::request::list_filters;
use crate::{Routes, links, schema};

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

/// Keyset paging of the audit log (`docs/audit.md`).
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct CursorParam {
    /// Keyset paging instead of `page`: empty for the first page, then the cursor of the
    /// previous answer's `next` link (the id of its last event). The answer has only
    /// `next` and `results`, no `count`. Not with `page` (400 on `cursor`).
    #[param(schema_with = schema::event_cursor)]
    cursor: Option<String>,
}

/// A keyset page: the link to the next page (`null` on the last) and the rows.
#[derive(Debug, Serialize, ToSchema)]
pub struct CursorPage<T> {
    /// The next page's link (`?cursor=`), or `null` on the last page.
    pub next: Option<String>,
    /// The rows of this page.
    pub results: Vec<T>,
}

/// The audit log's answer: the numbered-page envelope for `?page=` (and no paging
/// parameter), the keyset one for `?cursor=`.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum EventList {
    /// `?page=`: `count`, `next`, `previous`, `page_count`, `results`.
    Pages(Paginated<EventDto>),
    /// `?cursor=`: `next`, `results`.
    Cursor(CursorPage<EventDto>),
}

impl PartialSchema for EventList {
    fn schema() -> RefOr<Schema> {
        RefOr::T(
            AnyOfBuilder::new()
                .item(<Paginated<EventDto> as PartialSchema>::schema())
                .item(<CursorPage<EventDto> as PartialSchema>::schema())
                .into(),
        )
    }
}

impl ToSchema for EventList {
    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        schemas.push((EventDto::name().into_owned(), EventDto::schema()));
        <EventDto as ToSchema>::schemas(schemas);
    }
}

impl CursorPage<EventDto> {
    /// The envelope of `slice`, its `next` link the request's with `cursor` replaced.
    fn new(slice: EventSlice, query: &ListQuery) -> Self {
        let next = slice
            .next
            .map(|id| pagination::link(query, "cursor", Some(id)));
        Self {
            next,
            results: slice.events.into_iter().map(EventDto::from).collect(),
        }
    }
}

/// An organization's audit log, newest first; a root's includes its children's events
/// (archived children too). Administrators only.
#[utoipa::path(get, path = "/organizations/{id}/events/", tag = "events",
    params(OrganizationPath, EventFilters, ListParams, CursorParam), security(("bearer" = [])),
    responses(Refused, (status = 200, body = EventList),
        (status = 400, description = "A bad filter value, on its parameter")))]
pub(crate) async fn list(
    Scoped { state, actor, ids }: Scoped,
    query: ListQuery,
) -> Result<Json<EventList>, ApiError> {
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
    if let Some(cursor) = query.get("cursor") {
        if query.get("page").is_some() {
            return Err(ApiError::Validation(ValidationErrors::single(
                "cursor",
                ErrorCode::CursorWithPage,
            )));
        }
        // Without `page`, the request is page 1 of the asked size.
        let size = query.page_request()?.size();
        let slice = state
            .events
            .list_from(&actor, ids.organization, filters, cursor.to_owned(), size)
            .await?;
        return Ok(Json(EventList::Cursor(CursorPage::new(slice, &query))));
    }
    let page = state
        .events
        .list(&actor, ids.organization, filters, query.page_request()?)
        .await?;
    Ok(Json(EventList::Pages(Paginated::new(
        page,
        &query,
        EventDto::from,
    ))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::EventId;

    fn query(pairs: &[(&str, &str)]) -> ListQuery {
        ListQuery {
            path: "/organizations/1/events/".to_owned(),
            pairs: pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        }
    }

    #[test]
    fn the_next_cursor_link_replaces_the_cursor_and_keeps_the_rest_sorted() {
        let slice = EventSlice {
            events: Vec::new(),
            next: Some(EventId::new(41)),
        };

        let page = CursorPage::new(
            slice,
            &query(&[
                ("page_size", "2"),
                ("cursor", "90"),
                ("actor", "/organizations/1/users/5/"),
            ]),
        );

        assert_eq!(
            page.next.as_deref(),
            Some(
                "/organizations/1/events/?actor=%2Forganizations%2F1%2Fusers%2F5%2F&cursor=41&page_size=2"
            )
        );
    }

    #[test]
    fn the_last_cursor_page_has_no_next_link_and_no_count() {
        let slice = EventSlice {
            events: Vec::new(),
            next: None,
        };

        let page = CursorPage::new(slice, &query(&[("cursor", "")]));
        let body = serde_json::to_value(EventList::Cursor(page)).expect("serialized");

        assert_eq!(body, serde_json::json!({"next": null, "results": []}));
    }
}
