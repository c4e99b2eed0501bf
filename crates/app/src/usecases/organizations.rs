//! Organizations as their users see them: get, list, children, create a child, update,
//! archive (CONTRACT §4).

use std::sync::Arc;

use async_trait::async_trait;

use domain::audit::{Changes, EventAction, EventActor, EventOrganization, EventTarget, NewEvent};
use domain::organization::{
    NewChildRequest, NewOrganization, Organization, OrganizationChanges, UpdateMode, apply_changes,
    plan_new_child,
};
use domain::pagination::{Page, PageRequest};
use domain::{Action, Actor, ErrorCode, OrganizationId, ValidationErrors, Version};
use ports::inbound::{OrganizationFields, OrganizationUseCases, UseCaseError};
use ports::outbound::{Clock, CreateOrganizationError, OrganizationRepository, WriteError};

use super::{authorized_organization, require, resolve_parent};

/// The organization use cases.
#[derive(Clone)]
pub struct OrganizationService {
    organizations: Arc<dyn OrganizationRepository>,
    clock: Arc<dyn Clock>,
}

impl OrganizationService {
    /// A service over these ports.
    pub fn new(organizations: Arc<dyn OrganizationRepository>, clock: Arc<dyn Clock>) -> Self {
        Self {
            organizations,
            clock,
        }
    }
}

/// What `organization.created` records: the new organization's name, contact address
/// and parent, each from `null`.
pub(crate) fn created_changes(organization: &NewOrganization) -> Changes {
    Changes::new()
        .with("name", None::<&str>, organization.name.as_str())
        .with(
            "contact_email",
            None::<&str>,
            organization
                .contact_email
                .as_ref()
                .map(|email| email.as_str()),
        )
        .with(
            "parent",
            None::<&str>,
            organization
                .parent
                .map(|parent| format!("/organizations/{parent}/"))
                .as_deref(),
        )
}

/// Maps a failed write to the use-case error.
fn write_error(error: WriteError) -> UseCaseError {
    match error {
        WriteError::NotFound => UseCaseError::NotFound,
        WriteError::VersionMismatch => UseCaseError::PreconditionFailed,
        WriteError::Storage(error) => error.into(),
    }
}

#[async_trait]
impl OrganizationUseCases for OrganizationService {
    async fn get(&self, actor: &Actor, id: OrganizationId) -> Result<Organization, UseCaseError> {
        authorized_organization(self.organizations.as_ref(), actor, Action::View, id).await
    }

    async fn list(
        &self,
        actor: &Actor,
        page: PageRequest,
    ) -> Result<Page<Organization>, UseCaseError> {
        let listed = self
            .organizations
            .list_visible(actor.organization_id(), page)
            .await?;
        page.check(listed.total)
            .map_err(|_| UseCaseError::InvalidPage)?;
        Ok(listed)
    }

    async fn children(
        &self,
        actor: &Actor,
        parent: &Organization,
        page: PageRequest,
    ) -> Result<Page<Organization>, UseCaseError> {
        require(actor, Action::View, parent.node())?;
        let listed = self.organizations.list_children(parent.id, page).await?;
        page.check(listed.total)
            .map_err(|_| UseCaseError::InvalidPage)?;
        Ok(listed)
    }

    async fn create_child(
        &self,
        actor: &Actor,
        fields: OrganizationFields,
    ) -> Result<Organization, UseCaseError> {
        // The role check comes first (CONTRACT §4: the rules are "checked in this order
        // after the role check").
        require(actor, Action::CreateChild, actor.organization)?;
        let parent = resolve_parent(self.organizations.as_ref(), fields.parent).await?;
        let planned = plan_new_child(
            actor.organization,
            NewChildRequest {
                name: fields.name,
                contact_email: fields.contact_email,
                parent,
                settings: fields.settings,
            },
        )?;
        let now = self.clock.now();
        let event = NewEvent::new(
            EventAction::OrganizationCreated,
            EventActor::User(actor.user_id),
            EventOrganization::ThisOrganization,
            EventTarget::Organization,
            actor.request_id,
            now,
        )
        .with_changes(created_changes(&planned));
        self.organizations
            .create(planned, now, event)
            .await
            .map_err(|error| match error {
                // The parent was archived, or became a child, since it was looked up.
                CreateOrganizationError::ParentNotFound => {
                    ValidationErrors::single("parent", ErrorCode::ObjectDoesNotExist).into()
                }
                CreateOrganizationError::ParentIsChild => {
                    ValidationErrors::single("parent", ErrorCode::ParentAlreadyHasParent).into()
                }
                CreateOrganizationError::Storage(error) => error.into(),
            })
    }

    async fn update(
        &self,
        actor: &Actor,
        id: OrganizationId,
        mode: UpdateMode,
        fields: OrganizationFields,
        if_match: Option<Version>,
    ) -> Result<Organization, UseCaseError> {
        let current =
            authorized_organization(self.organizations.as_ref(), actor, Action::Modify, id).await?;
        // A precondition is evaluated before the request's content (RFC 9110 §13.2.2).
        if if_match.is_some_and(|expected| expected != current.version) {
            return Err(UseCaseError::PreconditionFailed);
        }
        let parent = resolve_parent(self.organizations.as_ref(), fields.parent).await?;
        let updated = apply_changes(
            &current,
            mode,
            OrganizationChanges {
                name: fields.name,
                contact_email: fields.contact_email,
                parent,
                settings: fields.settings,
            },
        )?;
        let now = self.clock.now();
        // A request that changes no value records no event (the write still happens, so
        // that `If-Match` keeps its meaning; see docs/audit.md).
        let changes = Changes::between(&current, &updated);
        let event = (!changes.is_empty()).then(|| {
            NewEvent::by(
                actor,
                EventAction::OrganizationUpdated,
                id,
                EventTarget::Organization,
                now,
            )
            .with_changes(changes)
        });
        self.organizations
            .update(&updated, if_match, now, event)
            .await
            .map_err(write_error)
    }

    async fn archive(
        &self,
        actor: &Actor,
        id: OrganizationId,
        if_match: Option<Version>,
    ) -> Result<(), UseCaseError> {
        authorized_organization(self.organizations.as_ref(), actor, Action::DeleteChild, id)
            .await?;
        let now = self.clock.now();
        let event = NewEvent::by(
            actor,
            EventAction::OrganizationArchived,
            id,
            EventTarget::Organization,
            now,
        );
        self.organizations
            .archive_child(id, if_match, now, event)
            .await
            .map_err(write_error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::usecases::fixtures::*;
    use domain::organization::SettingsInput;
    use domain::{Input, Role, UserId};
    use mockall::predicate::eq;
    use ports::inbound::ParentLink;
    use ports::outbound::{MockClock, MockOrganizationRepository, StorageError};

    fn clock() -> Arc<MockClock> {
        let mut clock = MockClock::new();
        clock.expect_now().returning(now);
        Arc::new(clock)
    }

    fn service(organizations: MockOrganizationRepository) -> OrganizationService {
        OrganizationService::new(Arc::new(organizations), clock())
    }

    /// A repository that knows the root, its child and another root.
    fn known_organizations() -> MockOrganizationRepository {
        let mut organizations = MockOrganizationRepository::new();
        organizations.expect_find().returning(|id| {
            Ok([root(), child(), other_root()]
                .into_iter()
                .find(|organization| organization.id == id))
        });
        organizations
    }

    fn fields(parent: ParentLink) -> OrganizationFields {
        OrganizationFields {
            name: Input::Value("Child organization".to_owned()),
            contact_email: Input::Value("child@example.com".to_owned()),
            parent,
            settings: Input::Absent,
        }
    }

    fn no_fields() -> OrganizationFields {
        OrganizationFields {
            name: Input::Absent,
            contact_email: Input::Absent,
            parent: ParentLink::Absent,
            settings: Input::Absent,
        }
    }

    fn parent_codes(error: UseCaseError) -> Vec<ErrorCode> {
        match error {
            UseCaseError::Validation(errors) => errors.codes("parent").unwrap_or_default().to_vec(),
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn getting_a_visible_organization_returns_it_for_every_role() {
        for role in Role::ALL {
            let service = service(known_organizations());

            let found = service.get(&actor(role), CHILD).await;

            assert_eq!(found, Ok(child()));
        }
    }

    #[tokio::test]
    async fn getting_an_organization_of_another_tree_is_not_found() {
        let service = service(known_organizations());

        let found = service.get(&actor(Role::Administrators), OTHER_ROOT).await;

        assert_eq!(found, Err(UseCaseError::NotFound));
    }

    #[tokio::test]
    async fn getting_a_missing_organization_is_not_found() {
        let service = service(known_organizations());

        let found = service
            .get(&actor(Role::Administrators), OrganizationId::new(99))
            .await;

        assert_eq!(found, Err(UseCaseError::NotFound));
    }

    #[tokio::test]
    async fn a_child_member_cannot_see_the_parent() {
        let service = service(known_organizations());

        let found = service.get(&child_actor(Role::Administrators), ROOT).await;

        assert_eq!(found, Err(UseCaseError::NotFound));
    }

    #[tokio::test]
    async fn listing_asks_for_the_actors_tree() {
        let mut organizations = MockOrganizationRepository::new();
        organizations
            .expect_list_visible()
            .with(eq(ROOT), eq(PageRequest::default()))
            .times(1)
            .returning(|_, page| {
                Ok(Page {
                    items: vec![root(), child()],
                    total: 2,
                    request: page,
                })
            });
        let service = service(organizations);

        let page = service
            .list(&actor(Role::Users), PageRequest::default())
            .await
            .expect("listed");

        assert_eq!(page.items, vec![root(), child()]);
    }

    #[tokio::test]
    async fn a_page_past_the_end_is_an_invalid_page() {
        let mut organizations = MockOrganizationRepository::new();
        organizations.expect_list_visible().returning(|_, page| {
            Ok(Page {
                items: vec![],
                total: 2,
                request: page,
            })
        });
        let service = service(organizations);

        let listed = service
            .list(&actor(Role::Users), PageRequest::new(2, 50))
            .await;

        assert_eq!(listed, Err(UseCaseError::InvalidPage));
    }

    #[tokio::test]
    async fn the_children_of_an_invisible_organization_are_not_found() {
        let mut organizations = known_organizations();
        organizations.expect_list_children().never();
        let service = service(organizations);

        let listed = service
            .children(&actor(Role::Users), &other_root(), PageRequest::default())
            .await;

        assert_eq!(listed, Err(UseCaseError::NotFound));
    }

    #[tokio::test]
    async fn the_children_of_a_visible_organization_are_listed() {
        let mut organizations = known_organizations();
        organizations
            .expect_list_children()
            .with(eq(ROOT), eq(PageRequest::default()))
            .times(1)
            .returning(|_, page| {
                Ok(Page {
                    items: vec![child()],
                    total: 1,
                    request: page,
                })
            });
        let service = service(organizations);

        let listed = service
            .children(&actor(Role::Collaborators), &root(), PageRequest::default())
            .await
            .expect("listed");

        assert_eq!(listed.total, 1);
    }

    #[tokio::test]
    async fn creating_a_child_as_a_non_administrator_is_forbidden_before_any_check() {
        for role in [Role::Managers, Role::Users, Role::Collaborators] {
            let mut organizations = MockOrganizationRepository::new();
            organizations.expect_find().never();
            organizations.expect_create().never();
            let service = service(organizations);

            let created = service
                .create_child(&actor(role), fields(ParentLink::Blank))
                .await;

            assert_eq!(created, Err(UseCaseError::Forbidden), "{role}");
        }
    }

    #[tokio::test]
    async fn creating_a_child_of_the_actors_root_stores_it_with_defaults() {
        let mut organizations = known_organizations();
        organizations
            .expect_create()
            .withf(|new, at, event| {
                new.parent == Some(ROOT)
                    && new.name.as_str() == "Child organization"
                    && new.settings.notify_message_status
                    && !new.can_external_optout
                    && *at == now()
                    && event.action == EventAction::OrganizationCreated
                    && event.actor == EventActor::User(UserId::new(10))
                    && event.organization == EventOrganization::ThisOrganization
                    && event.target == EventTarget::Organization
                    && event.changes.to_json()
                        == r#"{"contact_email": [null, "child@example.com"], "name": [null, "Child organization"], "parent": [null, "/organizations/1/"]}"#
            })
            .times(1)
            .returning(|_, _, _| Ok(child()));
        let service = service(organizations);

        let created = service
            .create_child(
                &actor(Role::Administrators),
                fields(ParentLink::Organization(ROOT)),
            )
            .await;

        assert_eq!(created, Ok(child()));
    }

    #[tokio::test]
    async fn rule_1_a_blank_parent_is_refused_without_storing() {
        let mut organizations = known_organizations();
        organizations.expect_create().never();
        let service = service(organizations);

        let created = service
            .create_child(&actor(Role::Administrators), fields(ParentLink::Blank))
            .await;

        assert_eq!(
            parent_codes(created.expect_err("refused")),
            [ErrorCode::Blank]
        );
    }

    #[tokio::test]
    async fn rule_2_a_parent_that_is_no_organization_url_is_refused() {
        let service = service(known_organizations());

        let created = service
            .create_child(&actor(Role::Administrators), fields(ParentLink::NoUrlMatch))
            .await;

        assert_eq!(
            parent_codes(created.expect_err("refused")),
            [ErrorCode::NoUrlMatch]
        );
    }

    #[tokio::test]
    async fn rule_2_a_parent_that_does_not_exist_is_refused() {
        let service = service(known_organizations());

        let created = service
            .create_child(
                &actor(Role::Administrators),
                fields(ParentLink::Organization(OrganizationId::new(99))),
            )
            .await;

        assert_eq!(
            parent_codes(created.expect_err("refused")),
            [ErrorCode::ObjectDoesNotExist]
        );
    }

    #[tokio::test]
    async fn rule_3_a_parent_other_than_the_actors_organization_is_refused() {
        let service = service(known_organizations());

        let created = service
            .create_child(
                &actor(Role::Administrators),
                fields(ParentLink::Organization(OTHER_ROOT)),
            )
            .await;

        assert_eq!(
            parent_codes(created.expect_err("refused")),
            [ErrorCode::ParentMustBeYourOrganization]
        );
    }

    #[tokio::test]
    async fn rule_4_an_administrator_of_a_child_cannot_create_children() {
        let service = service(known_organizations());

        let created = service
            .create_child(
                &child_actor(Role::Administrators),
                fields(ParentLink::Organization(CHILD)),
            )
            .await;

        assert_eq!(
            parent_codes(created.expect_err("refused")),
            [ErrorCode::ParentAlreadyHasParent]
        );
    }

    #[tokio::test]
    async fn a_parent_archived_between_lookup_and_insert_does_not_exist() {
        let mut organizations = known_organizations();
        organizations
            .expect_create()
            .returning(|_, _, _| Err(CreateOrganizationError::ParentNotFound));
        let service = service(organizations);

        let created = service
            .create_child(
                &actor(Role::Administrators),
                fields(ParentLink::Organization(ROOT)),
            )
            .await;

        assert_eq!(
            parent_codes(created.expect_err("refused")),
            [ErrorCode::ObjectDoesNotExist]
        );
    }

    #[tokio::test]
    async fn an_unreachable_database_makes_the_create_unavailable() {
        let mut organizations = MockOrganizationRepository::new();
        organizations
            .expect_find()
            .returning(|_| Err(StorageError::unavailable("connection refused".to_owned())));
        let service = service(organizations);

        let created = service
            .create_child(
                &actor(Role::Administrators),
                fields(ParentLink::Organization(ROOT)),
            )
            .await;

        assert!(matches!(created, Err(UseCaseError::Unavailable(_))));
    }

    #[tokio::test]
    async fn modifying_as_a_non_administrator_is_forbidden() {
        for role in [Role::Managers, Role::Users, Role::Collaborators] {
            let mut organizations = known_organizations();
            organizations.expect_update().never();
            let service = service(organizations);

            let updated = service
                .update(&actor(role), CHILD, UpdateMode::Partial, no_fields(), None)
                .await;

            assert_eq!(updated, Err(UseCaseError::Forbidden), "{role}");
        }
    }

    #[tokio::test]
    async fn modifying_an_invisible_organization_is_not_found_whatever_the_role() {
        for role in Role::ALL {
            let service = service(known_organizations());

            let updated = service
                .update(
                    &actor(role),
                    OTHER_ROOT,
                    UpdateMode::Partial,
                    no_fields(),
                    None,
                )
                .await;

            assert_eq!(updated, Err(UseCaseError::NotFound), "{role}");
        }
    }

    #[tokio::test]
    async fn a_patch_stores_the_merged_settings_with_the_if_match_version() {
        let mut organizations = known_organizations();
        organizations
            .expect_update()
            .withf(|organization, expected, _, event| {
                organization.settings.notify_optouts
                    && organization.name == child().name
                    && *expected == Some(Version::new(3))
                    && event.as_ref().is_some_and(|event| {
                        event.action == EventAction::OrganizationUpdated
                            && event.organization == EventOrganization::Existing(CHILD)
                            && event.changes.to_json()
                                == r#"{"settings.notify_optouts": [false, true]}"#
                    })
            })
            .times(1)
            .returning(|organization, _, _, _| Ok(organization.clone()));
        let service = service(organizations);
        let changes = OrganizationFields {
            settings: Input::Value(SettingsInput {
                notify_optouts: Input::Value(true),
                ..SettingsInput::default()
            }),
            ..no_fields()
        };

        let updated = service
            .update(
                &actor(Role::Administrators),
                CHILD,
                UpdateMode::Partial,
                changes,
                Some(Version::new(3)),
            )
            .await
            .expect("updated");

        assert!(updated.settings.notify_optouts);
    }

    #[tokio::test]
    async fn an_update_that_changes_no_value_records_no_event() {
        let mut organizations = known_organizations();
        organizations
            .expect_update()
            .withf(|_, _, _, event| event.is_none())
            .times(1)
            .returning(|organization, _, _, _| Ok(organization.clone()));
        let service = service(organizations);
        let same_name = OrganizationFields {
            name: Input::Value(child().name.as_str().to_owned()),
            ..no_fields()
        };

        let updated = service
            .update(
                &actor(Role::Administrators),
                CHILD,
                UpdateMode::Partial,
                same_name,
                None,
            )
            .await;

        assert!(updated.is_ok());
    }

    #[tokio::test]
    async fn a_stale_if_match_is_a_failed_precondition_and_writes_nothing() {
        let mut organizations = known_organizations();
        organizations.expect_update().never();
        let service = service(organizations);

        let updated = service
            .update(
                &actor(Role::Administrators),
                CHILD,
                UpdateMode::Partial,
                no_fields(),
                Some(Version::new(2)),
            )
            .await;

        assert_eq!(updated, Err(UseCaseError::PreconditionFailed));
    }

    #[tokio::test]
    async fn a_version_that_moves_on_during_the_write_is_a_failed_precondition() {
        let mut organizations = known_organizations();
        organizations
            .expect_update()
            .returning(|_, _, _, _| Err(WriteError::VersionMismatch));
        let service = service(organizations);

        let updated = service
            .update(
                &actor(Role::Administrators),
                CHILD,
                UpdateMode::Partial,
                no_fields(),
                Some(Version::new(3)),
            )
            .await;

        assert_eq!(updated, Err(UseCaseError::PreconditionFailed));
    }

    #[tokio::test]
    async fn a_put_without_name_and_contact_email_is_refused_on_both() {
        let mut organizations = known_organizations();
        organizations.expect_update().never();
        let service = service(organizations);

        let updated = service
            .update(
                &actor(Role::Administrators),
                ROOT,
                UpdateMode::Replace,
                no_fields(),
                None,
            )
            .await;

        let Err(UseCaseError::Validation(errors)) = updated else {
            panic!("expected a validation error: {updated:?}");
        };
        assert_eq!(errors.codes("name"), Some(&[ErrorCode::Required][..]));
        assert_eq!(
            errors.codes("contact_email"),
            Some(&[ErrorCode::Required][..])
        );
    }

    #[tokio::test]
    async fn changing_the_parent_is_refused() {
        let service = service(known_organizations());
        let changes = OrganizationFields {
            parent: ParentLink::Organization(OTHER_ROOT),
            ..no_fields()
        };

        let updated = service
            .update(
                &actor(Role::Administrators),
                CHILD,
                UpdateMode::Partial,
                changes,
                None,
            )
            .await;

        assert_eq!(
            parent_codes(updated.expect_err("refused")),
            [ErrorCode::ParentCannotChange]
        );
    }

    #[tokio::test]
    async fn archiving_a_child_as_an_administrator_archives_it() {
        let mut organizations = known_organizations();
        organizations
            .expect_archive_child()
            .with(
                eq(CHILD),
                eq(None),
                eq(now()),
                eq(NewEvent::by(
                    &actor(Role::Administrators),
                    EventAction::OrganizationArchived,
                    CHILD,
                    EventTarget::Organization,
                    now(),
                )),
            )
            .times(1)
            .returning(|_, _, _, _| Ok(()));
        let service = service(organizations);

        let archived = service
            .archive(&actor(Role::Administrators), CHILD, None)
            .await;

        assert_eq!(archived, Ok(()));
    }

    #[tokio::test]
    async fn archiving_the_actors_own_organization_is_forbidden() {
        let mut organizations = known_organizations();
        organizations.expect_archive_child().never();
        let service = service(organizations);

        let archived = service
            .archive(&actor(Role::Administrators), ROOT, None)
            .await;

        assert_eq!(archived, Err(UseCaseError::Forbidden));
    }

    #[tokio::test]
    async fn archiving_as_a_non_administrator_is_forbidden() {
        for role in [Role::Managers, Role::Users, Role::Collaborators] {
            let mut organizations = known_organizations();
            organizations.expect_archive_child().never();
            let service = service(organizations);

            let archived = service.archive(&actor(role), CHILD, None).await;

            assert_eq!(archived, Err(UseCaseError::Forbidden), "{role}");
        }
    }

    #[tokio::test]
    async fn archiving_with_a_stale_version_is_a_failed_precondition() {
        let mut organizations = known_organizations();
        organizations
            .expect_archive_child()
            .returning(|_, _, _, _| Err(WriteError::VersionMismatch));
        let service = service(organizations);

        let archived = service
            .archive(&actor(Role::Administrators), CHILD, Some(Version::new(1)))
            .await;

        assert_eq!(archived, Err(UseCaseError::PreconditionFailed));
    }
}
