//! Members: list, change a role, remove (CONTRACT §5b).

use std::sync::Arc;

use async_trait::async_trait;

use domain::audit::{Changes, EventAction, EventTarget, NewEvent};
use domain::member::{MemberFilter, check_role_change};
use domain::pagination::{Page, PageRequest};
use domain::user::User;
use domain::{Action, Actor, Input, OrganizationId, UserId};
use ports::inbound::{Conflict, MemberUseCases, UseCaseError};
use ports::outbound::{Clock, MemberChangeError, MemberRepository, OrganizationRepository};

use super::authorized_organization;

/// The member use cases.
#[derive(Clone)]
pub struct MemberService {
    organizations: Arc<dyn OrganizationRepository>,
    members: Arc<dyn MemberRepository>,
    clock: Arc<dyn Clock>,
}

impl MemberService {
    /// A service over these ports.
    pub fn new(
        organizations: Arc<dyn OrganizationRepository>,
        members: Arc<dyn MemberRepository>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            organizations,
            members,
            clock,
        }
    }
}

fn change_error(error: MemberChangeError) -> UseCaseError {
    match error {
        MemberChangeError::NotFound => UseCaseError::NotFound,
        MemberChangeError::LastAdministrator => UseCaseError::Conflict(Conflict::LastAdministrator),
        MemberChangeError::Forbidden => UseCaseError::Forbidden,
        MemberChangeError::Storage(error) => error.into(),
    }
}

#[async_trait]
impl MemberUseCases for MemberService {
    async fn list(
        &self,
        actor: &Actor,
        organization: OrganizationId,
        role: Option<String>,
        identifier: Option<String>,
        page: PageRequest,
    ) -> Result<Page<User>, UseCaseError> {
        authorized_organization(
            self.organizations.as_ref(),
            actor,
            Action::ListMembers,
            organization,
        )
        .await?;
        let filter = MemberFilter::parse(role.as_deref(), identifier.as_deref())?;
        let listed = self.members.list(organization, filter, page).await?;
        page.check(listed.total)
            .map_err(|_| UseCaseError::InvalidPage)?;
        Ok(listed)
    }

    async fn get(
        &self,
        actor: &Actor,
        organization: OrganizationId,
        user: UserId,
    ) -> Result<User, UseCaseError> {
        authorized_organization(
            self.organizations.as_ref(),
            actor,
            Action::ListMembers,
            organization,
        )
        .await?;
        self.members
            .find(organization, user)
            .await?
            .ok_or(UseCaseError::NotFound)
    }

    async fn change_role(
        &self,
        actor: &Actor,
        organization: OrganizationId,
        user: UserId,
        role: Input<String>,
    ) -> Result<User, UseCaseError> {
        authorized_organization(
            self.organizations.as_ref(),
            actor,
            Action::ManageMembers,
            organization,
        )
        .await?;
        let role = check_role_change(role)?;
        // The role before, for the event's `changes`.
        let before = self
            .members
            .find(organization, user)
            .await?
            .ok_or(UseCaseError::NotFound)?;
        let now = self.clock.now();
        let changes = Changes::of_role(before.role, role);
        let event = (!changes.is_empty()).then(|| {
            NewEvent::by(
                actor,
                EventAction::MemberRoleChanged,
                organization,
                EventTarget::Member(user),
                now,
            )
            .with_changes(changes)
        });
        self.members
            .change_role(organization, user, role, actor.user_id, now, event)
            .await
            .map_err(change_error)
    }

    async fn remove(
        &self,
        actor: &Actor,
        organization: OrganizationId,
        user: UserId,
    ) -> Result<(), UseCaseError> {
        authorized_organization(
            self.organizations.as_ref(),
            actor,
            Action::ManageMembers,
            organization,
        )
        .await?;
        let event = NewEvent::by(
            actor,
            EventAction::MemberRemoved,
            organization,
            EventTarget::Member(user),
            self.clock.now(),
        );
        self.members
            .remove(organization, user, actor.user_id, event)
            .await
            .map_err(change_error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::usecases::fixtures::*;
    use domain::{ErrorCode, Role};
    use mockall::predicate::eq;
    use ports::outbound::{MockClock, MockMemberRepository, MockOrganizationRepository};

    const MEMBER: UserId = UserId::new(42);

    fn service(members: MockMemberRepository) -> MemberService {
        let mut organizations = MockOrganizationRepository::new();
        organizations.expect_find().returning(|id| {
            Ok([root(), child(), other_root()]
                .into_iter()
                .find(|organization| organization.id == id))
        });
        let mut clock = MockClock::new();
        clock.expect_now().returning(now);
        MemberService::new(Arc::new(organizations), Arc::new(members), Arc::new(clock))
    }

    #[tokio::test]
    async fn administrators_and_managers_list_members_with_filters() {
        for role in [Role::Administrators, Role::Managers] {
            let mut members = MockMemberRepository::new();
            members
                .expect_list()
                .withf(|organization, filter, _| {
                    *organization == CHILD
                        && filter.role == Some(Role::Users)
                        && filter.identifier.as_deref() == Some("ada")
                })
                .times(1)
                .returning(|_, _, page| {
                    Ok(Page {
                        items: vec![user(MEMBER, CHILD, Role::Users)],
                        total: 1,
                        request: page,
                    })
                });

            let listed = service(members)
                .list(
                    &actor(role),
                    CHILD,
                    Some("users".to_owned()),
                    Some("Ada".to_owned()),
                    PageRequest::default(),
                )
                .await
                .expect("listed");

            assert_eq!(listed.total, 1);
        }
    }

    #[tokio::test]
    async fn users_and_collaborators_cannot_list_members() {
        for role in [Role::Users, Role::Collaborators] {
            let mut members = MockMemberRepository::new();
            members.expect_list().never();

            let listed = service(members)
                .list(&actor(role), ROOT, None, None, PageRequest::default())
                .await;

            assert_eq!(listed, Err(UseCaseError::Forbidden));
        }
    }

    #[tokio::test]
    async fn members_of_an_invisible_organization_are_not_found() {
        let listed = service(MockMemberRepository::new())
            .list(
                &actor(Role::Administrators),
                OTHER_ROOT,
                None,
                None,
                PageRequest::default(),
            )
            .await;

        assert_eq!(listed, Err(UseCaseError::NotFound));
    }

    #[tokio::test]
    async fn an_unknown_role_filter_is_refused() {
        let listed = service(MockMemberRepository::new())
            .list(
                &actor(Role::Managers),
                ROOT,
                Some("owners".to_owned()),
                None,
                PageRequest::default(),
            )
            .await;

        assert!(matches!(listed, Err(UseCaseError::Validation(errors))
            if errors.codes("role").is_some()));
    }

    #[tokio::test]
    async fn one_member_is_found_in_its_organization_by_administrators_and_managers() {
        let mut members = MockMemberRepository::new();
        members.expect_find().returning(|organization, user_id| {
            Ok((organization == CHILD).then(|| user(user_id, CHILD, Role::Users)))
        });
        let service = service(members);

        let found = service.get(&actor(Role::Managers), CHILD, MEMBER).await;
        let elsewhere = service.get(&actor(Role::Managers), ROOT, MEMBER).await;
        let as_user = service.get(&actor(Role::Users), CHILD, MEMBER).await;

        assert_eq!(found.map(|member| member.id), Ok(MEMBER));
        assert_eq!(elsewhere, Err(UseCaseError::NotFound));
        assert_eq!(as_user, Err(UseCaseError::Forbidden));
    }

    /// Members whose `find` knows `MEMBER` in `CHILD` and `ROOT` as a user.
    fn known_members() -> MockMemberRepository {
        let mut members = MockMemberRepository::new();
        members
            .expect_find()
            .returning(|organization, user_id| Ok(Some(user(user_id, organization, Role::Users))));
        members
    }

    #[tokio::test]
    async fn an_administrator_changes_a_role_as_the_requester() {
        let mut members = known_members();
        let event = NewEvent::by(
            &actor(Role::Administrators),
            EventAction::MemberRoleChanged,
            CHILD,
            EventTarget::Member(MEMBER),
            now(),
        )
        .with_changes(Changes::of_role(Role::Users, Role::Managers));
        members
            .expect_change_role()
            .with(
                eq(CHILD),
                eq(MEMBER),
                eq(Role::Managers),
                eq(UserId::new(10)),
                eq(now()),
                eq(Some(event)),
            )
            .times(1)
            .returning(|organization, user_id, role, _, _, _| {
                Ok(user(user_id, organization, role))
            });

        let changed = service(members)
            .change_role(
                &actor(Role::Administrators),
                CHILD,
                MEMBER,
                Input::Value("managers".to_owned()),
            )
            .await
            .expect("changed");

        assert_eq!(changed.role, Role::Managers);
    }

    #[tokio::test]
    async fn a_role_that_does_not_change_records_no_event() {
        let mut members = known_members();
        members
            .expect_change_role()
            .withf(|_, _, role, _, _, event| *role == Role::Users && event.is_none())
            .times(1)
            .returning(|organization, user_id, role, _, _, _| {
                Ok(user(user_id, organization, role))
            });

        let changed = service(members)
            .change_role(
                &actor(Role::Administrators),
                CHILD,
                MEMBER,
                Input::Value("users".to_owned()),
            )
            .await;

        assert!(changed.is_ok());
    }

    #[tokio::test]
    async fn changing_the_role_of_an_unknown_member_is_not_found_and_stores_nothing() {
        let mut members = MockMemberRepository::new();
        members.expect_find().returning(|_, _| Ok(None));
        members.expect_change_role().never();

        let changed = service(members)
            .change_role(
                &actor(Role::Administrators),
                CHILD,
                MEMBER,
                Input::Value("users".to_owned()),
            )
            .await;

        assert_eq!(changed, Err(UseCaseError::NotFound));
    }

    #[tokio::test]
    async fn removing_a_member_records_member_removed_with_the_member_as_target() {
        let mut members = MockMemberRepository::new();
        let event = NewEvent::by(
            &actor(Role::Administrators),
            EventAction::MemberRemoved,
            CHILD,
            EventTarget::Member(MEMBER),
            now(),
        );
        members
            .expect_remove()
            .with(eq(CHILD), eq(MEMBER), eq(UserId::new(10)), eq(event))
            .times(1)
            .returning(|_, _, _, _| Ok(()));

        let removed = service(members)
            .remove(&actor(Role::Administrators), CHILD, MEMBER)
            .await;

        assert_eq!(removed, Ok(()));
    }

    #[tokio::test]
    async fn managers_cannot_change_roles_or_remove_members() {
        let mut members = MockMemberRepository::new();
        members.expect_change_role().never();
        members.expect_remove().never();
        let service = service(members);

        let changed = service
            .change_role(
                &actor(Role::Managers),
                ROOT,
                MEMBER,
                Input::Value("users".to_owned()),
            )
            .await;
        let removed = service.remove(&actor(Role::Managers), ROOT, MEMBER).await;

        assert_eq!(changed, Err(UseCaseError::Forbidden));
        assert_eq!(removed, Err(UseCaseError::Forbidden));
    }

    #[tokio::test]
    async fn a_missing_or_unknown_role_is_refused_without_storing() {
        let mut members = MockMemberRepository::new();
        members.expect_change_role().never();
        let service = service(members);

        let missing = service
            .change_role(&actor(Role::Administrators), ROOT, MEMBER, Input::Absent)
            .await;

        assert!(matches!(missing, Err(UseCaseError::Validation(errors))
            if errors.codes("role") == Some(&[ErrorCode::Required][..])));
    }

    #[tokio::test]
    async fn demoting_or_removing_the_last_administrator_is_a_conflict() {
        let mut members = known_members();
        members
            .expect_change_role()
            .returning(|_, _, _, _, _, _| Err(MemberChangeError::LastAdministrator));
        members
            .expect_remove()
            .returning(|_, _, _, _| Err(MemberChangeError::LastAdministrator));
        let service = service(members);

        let changed = service
            .change_role(
                &actor(Role::Administrators),
                ROOT,
                MEMBER,
                Input::Value("users".to_owned()),
            )
            .await;
        let removed = service
            .remove(&actor(Role::Administrators), ROOT, MEMBER)
            .await;

        assert_eq!(
            changed,
            Err(UseCaseError::Conflict(Conflict::LastAdministrator))
        );
        assert_eq!(
            removed,
            Err(UseCaseError::Conflict(Conflict::LastAdministrator))
        );
    }

    #[tokio::test]
    async fn removing_a_member_of_another_organization_is_not_found() {
        let mut members = MockMemberRepository::new();
        members
            .expect_remove()
            .withf(|organization, user, requester, _| {
                (*organization, *user, *requester) == (ROOT, MEMBER, UserId::new(10))
            })
            .returning(|_, _, _, _| Err(MemberChangeError::NotFound));

        let removed = service(members)
            .remove(&actor(Role::Administrators), ROOT, MEMBER)
            .await;

        assert_eq!(removed, Err(UseCaseError::NotFound));
    }
}
