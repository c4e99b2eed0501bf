//! Members: list, change a role, remove (CONTRACT §5b); create service accounts
//! (CONTRACT §11).

use std::sync::Arc;

use async_trait::async_trait;

use domain::api_key::KeyMaterial;
use domain::audit::{Changes, EventAction, EventTarget, NewEvent};
use domain::member::MemberFilter;
use domain::pagination::{Page, PageRequest};
use domain::service_account::{
    NewServiceAccount, ServiceAccountRequest, check_member_role_change, check_new_service_account,
};
use domain::user::User;
use domain::{Action, Actor, ErrorCode, Input, OrganizationId, UserId, ValidationErrors};
use ports::inbound::{Conflict, CreatedServiceAccount, MemberUseCases, UseCaseError};
use ports::outbound::{
    Clock, CreateServiceAccountError, MemberChangeError, MemberRepository, OrganizationRepository,
    SecretGenerator,
};

use super::authorized_organization;

/// The member use cases.
#[derive(Clone)]
pub struct MemberService {
    organizations: Arc<dyn OrganizationRepository>,
    members: Arc<dyn MemberRepository>,
    clock: Arc<dyn Clock>,
    secrets: Arc<dyn SecretGenerator>,
}

impl MemberService {
    /// A service over these ports.
    pub fn new(
        organizations: Arc<dyn OrganizationRepository>,
        members: Arc<dyn MemberRepository>,
        clock: Arc<dyn Clock>,
        secrets: Arc<dyn SecretGenerator>,
    ) -> Self {
        Self {
            organizations,
            members,
            clock,
            secrets,
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
        kind: Option<String>,
        page: PageRequest,
    ) -> Result<Page<User>, UseCaseError> {
        authorized_organization(
            self.organizations.as_ref(),
            actor,
            Action::ListMembers,
            organization,
        )
        .await?;
        let filter = MemberFilter::parse(role.as_deref(), identifier.as_deref(), kind.as_deref())?;
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
        // The member before: its kind decides which roles it may have (a kind never
        // changes), its role goes into the event's `changes`.
        let before = self
            .members
            .find(organization, user)
            .await?
            .ok_or(UseCaseError::NotFound)?;
        let role = check_member_role_change(before.kind(), role)?;
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

    async fn create_service_account(
        &self,
        actor: &Actor,
        organization: OrganizationId,
        request: ServiceAccountRequest,
    ) -> Result<CreatedServiceAccount, UseCaseError> {
        authorized_organization(
            self.organizations.as_ref(),
            actor,
            Action::CreateServiceAccount,
            organization,
        )
        .await?;
        let terms = check_new_service_account(request)?;
        let api_key = self.secrets.generate();
        let now = self.clock.now();
        // No secret in the event: the name and the role only.
        let event = NewEvent::by(
            actor,
            EventAction::ServiceAccountCreated,
            organization,
            EventTarget::ThisMember,
            now,
        )
        .with_changes(
            Changes::new()
                .with("name", None::<&str>, terms.name.as_str())
                .with("role", None::<&str>, terms.role.as_str()),
        );
        let account = NewServiceAccount {
            organization_id: organization,
            name: terms.name,
            role: terms.role,
            requester: actor.user_id,
        };
        let account = self
            .members
            .create_service_account(account, &KeyMaterial::of(&api_key), now, event)
            .await
            .map_err(|error| match error {
                CreateServiceAccountError::NameTaken => UseCaseError::Validation(
                    ValidationErrors::single("name", ErrorCode::ServiceAccountNameTaken),
                ),
                CreateServiceAccountError::OrganizationNotFound => UseCaseError::NotFound,
                CreateServiceAccountError::Forbidden => UseCaseError::Forbidden,
                CreateServiceAccountError::Storage(error) => error.into(),
            })?;
        Ok(CreatedServiceAccount { account, api_key })
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
    use domain::secret::SecretToken;
    use domain::service_account::ServiceAccountName;
    use domain::user::{PersonName, UserIdentifier};
    use domain::{ErrorCode, Role};
    use mockall::predicate::eq;
    use ports::outbound::{
        MockClock, MockMemberRepository, MockOrganizationRepository, MockSecretGenerator,
    };

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
        let mut secrets = MockSecretGenerator::new();
        secrets
            .expect_generate()
            .returning(|| SecretToken::presented("service-secret"));
        MemberService::new(
            Arc::new(organizations),
            Arc::new(members),
            Arc::new(clock),
            Arc::new(secrets),
        )
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
                        && filter.kind == Some(domain::user::UserKind::Human)
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
                    Some("human".to_owned()),
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
                .list(&actor(role), ROOT, None, None, None, PageRequest::default())
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
        let mut members = known_members();
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

    fn service_member(id: UserId, organization: OrganizationId, role: Role) -> User {
        User {
            identifier: UserIdentifier::Service(
                ServiceAccountName::parse("billing-sync").expect("valid"),
            ),
            first_name: PersonName::unnamed(),
            last_name: PersonName::unnamed(),
            ..user(id, organization, role)
        }
    }

    fn service_request(name: &str, role: &str) -> ServiceAccountRequest {
        ServiceAccountRequest {
            name: Input::Value(name.to_owned()),
            role: Input::Value(role.to_owned()),
        }
    }

    #[tokio::test]
    async fn an_administrator_creates_a_service_account_with_its_key_and_one_event() {
        let mut members = MockMemberRepository::new();
        members
            .expect_create_service_account()
            .withf(|account, key, at, event| {
                account.organization_id == CHILD
                    && account.name.as_str() == "billing-sync"
                    && account.role == Role::Users
                    && account.requester == UserId::new(10)
                    && *key == KeyMaterial::of(&SecretToken::presented("service-secret"))
                    && *at == now()
                    && event.action == EventAction::ServiceAccountCreated
                    && event.actor == domain::audit::EventActor::User(UserId::new(10))
                    && event.target == EventTarget::ThisMember
                    && event.changes.fields().collect::<Vec<_>>() == ["name", "role"]
            })
            .times(1)
            .returning(|account, _, _, _| {
                Ok(service_member(
                    MEMBER,
                    account.organization_id,
                    account.role,
                ))
            });

        let created = service(members)
            .create_service_account(
                &actor(Role::Administrators),
                CHILD,
                service_request("billing-sync", "users"),
            )
            .await
            .expect("created");

        assert_eq!(created.account.kind(), domain::user::UserKind::Service);
        assert_eq!(created.api_key.expose(), "service-secret");
    }

    #[tokio::test]
    async fn only_administrators_create_service_accounts_and_others_trees_are_not_found() {
        for role in [Role::Managers, Role::Users, Role::Collaborators] {
            let mut members = MockMemberRepository::new();
            members.expect_create_service_account().never();

            let created = service(members)
                .create_service_account(&actor(role), ROOT, service_request("ci", "users"))
                .await;

            assert_eq!(created, Err(UseCaseError::Forbidden), "{role}");
        }
        let mut members = MockMemberRepository::new();
        members.expect_create_service_account().never();
        let hidden = service(members)
            .create_service_account(
                &actor(Role::Administrators),
                OTHER_ROOT,
                service_request("ci", "users"),
            )
            .await;
        assert_eq!(hidden, Err(UseCaseError::NotFound));
    }

    #[tokio::test]
    async fn a_service_account_administrator_or_bad_name_is_refused_without_storing() {
        let mut members = MockMemberRepository::new();
        members.expect_create_service_account().never();

        let refused = service(members)
            .create_service_account(
                &actor(Role::Administrators),
                ROOT,
                service_request("no spaces", "administrators"),
            )
            .await;

        assert!(matches!(refused, Err(UseCaseError::Validation(errors))
            if errors.codes("role") == Some(&[ErrorCode::ServiceAccountCannotBeAdministrator][..])
                && errors.codes("name") == Some(&[ErrorCode::InvalidServiceAccountName][..])));
    }

    #[tokio::test]
    async fn a_requester_demoted_before_the_account_is_stored_is_forbidden() {
        let mut members = MockMemberRepository::new();
        members
            .expect_create_service_account()
            .returning(|_, _, _, _| Err(CreateServiceAccountError::Forbidden));

        let refused = service(members)
            .create_service_account(
                &actor(Role::Administrators),
                CHILD,
                service_request("ci", "users"),
            )
            .await;

        assert_eq!(refused, Err(UseCaseError::Forbidden));
    }

    #[tokio::test]
    async fn a_taken_service_account_name_is_a_name_error() {
        let mut members = MockMemberRepository::new();
        members
            .expect_create_service_account()
            .returning(|_, _, _, _| Err(CreateServiceAccountError::NameTaken));

        let refused = service(members)
            .create_service_account(
                &actor(Role::Administrators),
                ROOT,
                service_request("ci", "users"),
            )
            .await;

        assert!(matches!(refused, Err(UseCaseError::Validation(errors))
            if errors.codes("name") == Some(&[ErrorCode::ServiceAccountNameTaken][..])));
    }

    #[tokio::test]
    async fn a_service_member_cannot_become_an_administrator_and_nothing_is_stored() {
        let mut members = MockMemberRepository::new();
        members
            .expect_find()
            .returning(|organization, id| Ok(Some(service_member(id, organization, Role::Users))));
        members.expect_change_role().never();

        let changed = service(members)
            .change_role(
                &actor(Role::Administrators),
                ROOT,
                MEMBER,
                Input::Value("administrators".to_owned()),
            )
            .await;

        assert!(matches!(changed, Err(UseCaseError::Validation(errors))
            if errors.codes("role") == Some(&[ErrorCode::ServiceAccountCannotBeAdministrator][..])));
    }
}
