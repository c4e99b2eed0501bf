//! The audit log: an organization's events, for its administrators (CONTRACT §13).

use std::sync::Arc;

use async_trait::async_trait;

use domain::audit::{ActionFilter, Event, EventFilter, EventSlice, parse_cursor, parse_instant};
use domain::pagination::{MAX_PAGE_SIZE, Page, PageRequest};
use domain::{Action, Actor, ErrorCode, OrganizationId, ValidationErrors};
use ports::inbound::{EventQuery, EventUseCases, MemberLink, UseCaseError};
use ports::outbound::{EventRepository, OrganizationRepository};

use super::authorized_organization;

/// The audit-log use cases.
#[derive(Clone)]
pub struct EventService {
    organizations: Arc<dyn OrganizationRepository>,
    events: Arc<dyn EventRepository>,
}

impl EventService {
    /// A service over these ports.
    pub fn new(
        organizations: Arc<dyn OrganizationRepository>,
        events: Arc<dyn EventRepository>,
    ) -> Self {
        Self {
            organizations,
            events,
        }
    }
}

/// Reads the raw filters, every problem together.
fn parse_filter(query: EventQuery) -> Result<EventFilter, ValidationErrors> {
    let mut errors = ValidationErrors::new();
    let filter = read_filter(query, &mut errors);
    errors.into_result()?;
    Ok(filter)
}

/// Reads the raw filters, adding each problem to `errors` (a refused filter reads as
/// absent: the caller must not use the filter when `errors` holds any).
fn read_filter(query: EventQuery, errors: &mut ValidationErrors) -> EventFilter {
    let action = query
        .action
        .as_deref()
        .and_then(|text| errors.collect("action", ActionFilter::parse(text)));
    let actor = match query.actor {
        None => None,
        Some(MemberLink::Member { user, .. }) => Some(user),
        Some(MemberLink::NoUrlMatch) => {
            errors.add("actor", ErrorCode::NoUrlMatch);
            None
        }
    };
    let since = query
        .since
        .as_deref()
        .and_then(|text| errors.collect("since", parse_instant(text)));
    let until = query
        .until
        .as_deref()
        .and_then(|text| errors.collect("until", parse_instant(text)));
    EventFilter {
        action,
        actor,
        since,
        until,
    }
}

#[async_trait]
impl EventUseCases for EventService {
    async fn list(
        &self,
        actor: &Actor,
        organization: OrganizationId,
        query: EventQuery,
        page: PageRequest,
    ) -> Result<Page<Event>, UseCaseError> {
        let organization = authorized_organization(
            self.organizations.as_ref(),
            actor,
            Action::ViewEvents,
            organization,
        )
        .await?;
        let filter = parse_filter(query)?;
        let listed = self.events.list(organization.node(), filter, page).await?;
        page.check(listed.total)
            .map_err(|_| UseCaseError::InvalidPage)?;
        Ok(listed)
    }

    async fn list_from(
        &self,
        actor: &Actor,
        organization: OrganizationId,
        query: EventQuery,
        cursor: String,
        size: u64,
    ) -> Result<EventSlice, UseCaseError> {
        let organization = authorized_organization(
            self.organizations.as_ref(),
            actor,
            Action::ViewEvents,
            organization,
        )
        .await?;
        let mut errors = ValidationErrors::new();
        let filter = read_filter(query, &mut errors);
        let below = errors.collect("cursor", parse_cursor(&cursor)).flatten();
        errors.into_result()?;
        let size = size.clamp(1, MAX_PAGE_SIZE);
        // One row more than the page: whether it comes says whether a next page exists,
        // without counting.
        let rows = self
            .events
            .list_below(organization.node(), filter, below, size + 1)
            .await?;
        Ok(EventSlice::of(
            rows,
            usize::try_from(size).unwrap_or(usize::MAX),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::usecases::fixtures::*;
    use domain::audit::EventAction;
    use domain::organization::TreeNode;
    use domain::{Role, UserId};
    use ports::outbound::{MockEventRepository, MockOrganizationRepository};

    fn service(events: MockEventRepository) -> EventService {
        let mut organizations = MockOrganizationRepository::new();
        organizations.expect_find().returning(|id| {
            Ok([root(), child(), other_root()]
                .into_iter()
                .find(|organization| organization.id == id))
        });
        EventService::new(Arc::new(organizations), Arc::new(events))
    }

    fn empty_page(page: PageRequest) -> Result<Page<Event>, ports::outbound::StorageError> {
        Ok(Page {
            items: Vec::new(),
            total: 0,
            request: page,
        })
    }

    #[tokio::test]
    async fn administrators_list_a_roots_events_by_its_place_in_the_tree() {
        let mut events = MockEventRepository::new();
        events
            .expect_list()
            .withf(|organization, filter, _| {
                *organization
                    == TreeNode {
                        id: ROOT,
                        parent: None,
                    }
                    && filter.action == Some(ActionFilter::Prefix("member.".to_owned()))
                    && filter.actor == Some(UserId::new(7))
                    && filter.since.is_some()
                    && filter.until.is_none()
            })
            .times(1)
            .returning(|_, _, page| empty_page(page));
        let query = EventQuery {
            action: Some("member.*".to_owned()),
            actor: Some(MemberLink::Member {
                organization: CHILD,
                user: UserId::new(7),
            }),
            since: Some("2025-04-03".to_owned()),
            until: None,
        };

        let listed = service(events)
            .list(
                &actor(Role::Administrators),
                ROOT,
                query,
                PageRequest::default(),
            )
            .await;

        assert!(listed.is_ok());
    }

    fn stored(id: i64) -> Event {
        Event {
            id: domain::EventId::new(id),
            action: EventAction::OrganizationUpdated,
            actor: None,
            actor_identifier: "operator".to_owned(),
            organization: ROOT,
            target: None,
            changes: "{}".to_owned(),
            request_id: None,
            created_at: domain::Timestamp::UNIX_EPOCH,
        }
    }

    #[tokio::test]
    async fn a_cursor_page_reads_one_row_more_below_the_cursor_and_names_the_next_cursor() {
        let mut events = MockEventRepository::new();
        events
            .expect_list_below()
            .withf(|organization, filter, below, limit| {
                organization.id == ROOT
                    && filter.action == Some(ActionFilter::Prefix("member.".to_owned()))
                    && *below == Some(domain::EventId::new(90))
                    && *limit == 3
            })
            .times(1)
            .returning(|_, _, _, _| Ok(vec![stored(80), stored(70), stored(60)]));
        let query = EventQuery {
            action: Some("member.*".to_owned()),
            ..EventQuery::default()
        };

        let slice = service(events)
            .list_from(
                &actor(Role::Administrators),
                ROOT,
                query,
                "90".to_owned(),
                2,
            )
            .await
            .expect("listed");

        assert_eq!(slice.events.len(), 2);
        assert_eq!(slice.next, Some(domain::EventId::new(70)));
    }

    #[tokio::test]
    async fn an_empty_cursor_starts_from_the_newest_and_a_short_page_is_the_last() {
        let mut events = MockEventRepository::new();
        events
            .expect_list_below()
            .withf(|_, _, below, limit| below.is_none() && *limit == 51)
            .times(1)
            .returning(|_, _, _, _| Ok(vec![stored(5)]));

        let slice = service(events)
            .list_from(
                &actor(Role::Administrators),
                CHILD,
                EventQuery::default(),
                String::new(),
                50,
            )
            .await
            .expect("listed");

        assert_eq!(slice.events.len(), 1);
        assert_eq!(slice.next, None);
    }

    #[tokio::test]
    async fn a_bad_cursor_is_reported_with_the_bad_filters_and_reads_nothing() {
        let mut events = MockEventRepository::new();
        events.expect_list_below().never();
        let query = EventQuery {
            since: Some("yesterday".to_owned()),
            ..EventQuery::default()
        };

        let listed = service(events)
            .list_from(
                &actor(Role::Administrators),
                ROOT,
                query,
                "-1".to_owned(),
                50,
            )
            .await;

        let Err(UseCaseError::Validation(errors)) = listed else {
            panic!("expected a validation error, got {listed:?}");
        };
        assert_eq!(
            errors.codes("cursor"),
            Some(&[ErrorCode::InvalidCursor][..])
        );
        assert_eq!(
            errors.codes("since"),
            Some(&[ErrorCode::InvalidDateTime][..])
        );
    }

    #[tokio::test]
    async fn a_cursor_page_is_for_administrators_only() {
        let mut events = MockEventRepository::new();
        events.expect_list_below().never();

        let listed = service(events)
            .list_from(
                &actor(Role::Managers),
                CHILD,
                EventQuery::default(),
                String::new(),
                50,
            )
            .await;

        assert_eq!(listed, Err(UseCaseError::Forbidden));
    }

    #[tokio::test]
    async fn other_roles_are_forbidden_and_other_trees_not_found() {
        for role in [Role::Managers, Role::Users, Role::Collaborators] {
            let mut events = MockEventRepository::new();
            events.expect_list().never();

            let listed = service(events)
                .list(
                    &actor(role),
                    CHILD,
                    EventQuery::default(),
                    PageRequest::default(),
                )
                .await;

            assert_eq!(listed, Err(UseCaseError::Forbidden));
        }
        let mut events = MockEventRepository::new();
        events.expect_list().never();
        let listed = service(events)
            .list(
                &actor(Role::Administrators),
                OTHER_ROOT,
                EventQuery::default(),
                PageRequest::default(),
            )
            .await;
        assert_eq!(listed, Err(UseCaseError::NotFound));
    }

    #[tokio::test]
    async fn every_bad_filter_is_reported_on_its_own_parameter() {
        let mut events = MockEventRepository::new();
        events.expect_list().never();
        let query = EventQuery {
            action: Some("member.exploded".to_owned()),
            actor: Some(MemberLink::NoUrlMatch),
            since: Some("yesterday".to_owned()),
            until: Some("soon".to_owned()),
        };

        let listed = service(events)
            .list(
                &actor(Role::Administrators),
                ROOT,
                query,
                PageRequest::default(),
            )
            .await;

        let Err(UseCaseError::Validation(errors)) = listed else {
            panic!("expected a validation error, got {listed:?}");
        };
        assert_eq!(
            errors.codes("action"),
            Some(
                &[ErrorCode::InvalidChoice {
                    value: "member.exploded".to_owned()
                }][..]
            )
        );
        assert_eq!(errors.codes("actor"), Some(&[ErrorCode::NoUrlMatch][..]));
        assert_eq!(
            errors.codes("since"),
            Some(&[ErrorCode::InvalidDateTime][..])
        );
        assert_eq!(
            errors.codes("until"),
            Some(&[ErrorCode::InvalidDateTime][..])
        );
    }

    #[tokio::test]
    async fn a_page_past_the_end_is_an_invalid_page() {
        let mut events = MockEventRepository::new();
        events
            .expect_list()
            .returning(|_, _, page| empty_page(page));

        let listed = service(events)
            .list(
                &actor(Role::Administrators),
                CHILD,
                EventQuery {
                    action: Some(EventAction::MemberRemoved.as_str().to_owned()),
                    ..EventQuery::default()
                },
                PageRequest::new(2, 50),
            )
            .await;

        assert_eq!(listed, Err(UseCaseError::InvalidPage));
    }
}
