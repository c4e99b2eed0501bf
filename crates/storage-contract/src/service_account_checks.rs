//! Service accounts' contract (CONTRACT §11): one transaction stores the account, its
//! `default` key and its event; names are unique within an organization only, also under
//! concurrency; removing an account kills its keys; kinds filter the member list.

use domain::api_key::Scope;
use domain::audit::{
    ActionFilter, Changes, EventAction, EventActor, EventFilter, EventOrganization, EventTarget,
    NewEvent, StoredTarget,
};
use domain::member::MemberFilter;
use domain::organization::Organization;
use domain::pagination::PageRequest;
use domain::service_account::{NewServiceAccount, ServiceAccountName};
use domain::user::{User, UserKind};
use domain::{RequestId, Role, UserId};
use futures::future::join_all;
use ports::outbound::CreateServiceAccountError;

use crate::Store;
use crate::fixtures::{any_event, child, key, now, organization_with_admin, root, user};

fn account(
    organization: &Organization,
    requester: UserId,
    name: &str,
    role: Role,
) -> NewServiceAccount {
    NewServiceAccount {
        organization_id: organization.id,
        name: ServiceAccountName::parse(name).expect("a valid name"),
        role,
        requester,
    }
}

/// The event the use case builds: by `admin`, target the new member.
fn created_by(admin: UserId, organization: &Organization, name: &str) -> NewEvent {
    NewEvent::new(
        EventAction::ServiceAccountCreated,
        EventActor::User(admin),
        EventOrganization::Existing(organization.id),
        EventTarget::ThisMember,
        RequestId::parse("req-sa"),
        now(),
    )
    .with_changes(Changes::new().with("name", None::<&str>, name).with(
        "role",
        None::<&str>,
        "users",
    ))
}

async fn created_events(store: &Store, organization: &Organization) -> Vec<domain::audit::Event> {
    store
        .events
        .list(
            organization.node(),
            EventFilter {
                action: Some(ActionFilter::Exactly(EventAction::ServiceAccountCreated)),
                ..EventFilter::default()
            },
            PageRequest::new(1, 1000),
        )
        .await
        .expect("events are listed")
        .items
}

async fn members_of_kind(
    store: &Store,
    organization: &Organization,
    kind: Option<UserKind>,
) -> Vec<User> {
    store
        .members
        .list(
            organization.id,
            MemberFilter {
                kind,
                ..MemberFilter::default()
            },
            PageRequest::default(),
        )
        .await
        .expect("listed")
        .items
}

/// A service account is stored with kind `service`, its name as identifier, no names,
/// its `default` key (write scope) that authenticates it, and one event naming it.
pub async fn a_service_account_is_stored_with_its_default_key_and_its_event(store: &Store) {
    let (organization, admin) = organization_with_admin(store).await;
    let material = key();

    let created = store
        .members
        .create_service_account(
            account(&organization, admin.id, "billing-sync", Role::Users),
            &material,
            now(),
            created_by(admin.id, &organization, "billing-sync"),
        )
        .await
        .expect("created");
    let authenticated = store
        .users
        .authenticate(&material.hash, now())
        .await
        .expect("authenticated")
        .expect("the key works");
    let keys = store
        .users
        .list_api_keys(created.id, PageRequest::default())
        .await
        .expect("listed");
    let events = created_events(store, &organization).await;

    assert_eq!(created.kind(), UserKind::Service);
    assert_eq!(created.identifier.as_str(), "billing-sync");
    assert_eq!(
        (created.role, created.organization_id),
        (Role::Users, organization.id)
    );
    assert_eq!(created.first_name.as_str(), "");
    assert_eq!(authenticated.user, created);
    assert_eq!(authenticated.scope, Scope::Write);
    assert_eq!(
        keys.items
            .iter()
            .map(|key| key.name.as_str())
            .collect::<Vec<_>>(),
        ["default"]
    );
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].target, Some(StoredTarget::Member(created.id)));
    assert_eq!(events[0].actor_identifier, admin.identifier.as_str());
    assert_eq!(
        events[0].changes,
        r#"{"name": [null, "billing-sync"], "role": [null, "users"]}"#
    );
    assert_eq!(
        store.members.find(organization.id, created.id).await,
        Ok(Some(created))
    );
}

/// A name is taken once per organization; another organization may use it.
pub async fn a_service_account_name_is_unique_within_its_organization_only(store: &Store) {
    let (organization, admin) = organization_with_admin(store).await;
    let kid = child(store, &organization, "Kid").await;
    let other = root(store, "Other root").await;
    let (other_admin, _) = user(store, &other, "other@example.com", Role::Administrators).await;
    let create = |target: Organization, requester: UserId| async move {
        store
            .members
            .create_service_account(
                account(&target, requester, "ci", Role::Managers),
                &key(),
                now(),
                created_by(requester, &target, "ci"),
            )
            .await
    };

    let first = create(organization.clone(), admin.id).await;
    let again = create(organization.clone(), admin.id).await;
    let in_child = create(kid, admin.id).await;
    let elsewhere = create(other, other_admin.id).await;

    assert!(first.is_ok(), "{first:?}");
    assert_eq!(again, Err(CreateServiceAccountError::NameTaken));
    assert!(in_child.is_ok(), "{in_child:?}");
    assert!(elsewhere.is_ok(), "{elsewhere:?}");
    assert_eq!(
        created_events(store, &organization).await.len(),
        2,
        "root and child"
    );
}

/// Thirty creations of one name at once: exactly one is stored, with one event; the
/// others are `NameTaken`.
pub async fn thirty_simultaneous_creations_of_one_name_store_exactly_one(store: &Store) {
    let (organization, admin) = organization_with_admin(store).await;

    let results = join_all((0..30).map(|_| async {
        store
            .members
            .create_service_account(
                account(&organization, admin.id, "racer", Role::Users),
                &key(),
                now(),
                created_by(admin.id, &organization, "racer"),
            )
            .await
    }))
    .await;

    let stored = results.iter().filter(|result| result.is_ok()).count();
    let taken = results
        .iter()
        .filter(|result| **result == Err(CreateServiceAccountError::NameTaken))
        .count();
    assert_eq!((stored, taken), (1, 29), "{results:?}");
    assert_eq!(created_events(store, &organization).await.len(), 1);
    assert_eq!(
        members_of_kind(store, &organization, Some(UserKind::Service))
            .await
            .len(),
        1
    );
}

/// A missing or archived organization is `OrganizationNotFound`; an event that cannot be
/// stored takes the account and its key along.
pub async fn a_refused_service_account_stores_nothing(store: &Store) {
    let (organization, admin) = organization_with_admin(store).await;
    let kid = child(store, &organization, "Kid").await;
    store
        .organizations
        .archive_child(kid.id, None, now(), any_event())
        .await
        .expect("archived");
    let material = key();

    let archived = store
        .members
        .create_service_account(
            account(&kid, admin.id, "ci", Role::Users),
            &key(),
            now(),
            created_by(admin.id, &kid, "ci"),
        )
        .await;
    let unstorable = store
        .members
        .create_service_account(
            account(&organization, admin.id, "ci", Role::Users),
            &material,
            now(),
            created_by(UserId::new(999_999_999), &organization, "ci"),
        )
        .await;

    assert_eq!(
        archived,
        Err(CreateServiceAccountError::OrganizationNotFound)
    );
    assert!(
        matches!(unstorable, Err(CreateServiceAccountError::Storage(_))),
        "{unstorable:?}"
    );
    assert_eq!(
        store.users.authenticate(&material.hash, now()).await,
        Ok(None)
    );
    assert!(
        members_of_kind(store, &organization, Some(UserKind::Service))
            .await
            .is_empty()
    );
}

/// `?kind=` keeps people or service accounts; removing a service account kills its keys
/// at once, and its name is free again.
pub async fn members_filter_by_kind_and_a_removed_service_account_loses_its_keys(store: &Store) {
    let (organization, admin) = organization_with_admin(store).await;
    let (person, _) = user(store, &organization, "person@example.com", Role::Users).await;
    let material = key();
    let service = store
        .members
        .create_service_account(
            account(&organization, admin.id, "ci", Role::Collaborators),
            &material,
            now(),
            created_by(admin.id, &organization, "ci"),
        )
        .await
        .expect("created");

    let humans = members_of_kind(store, &organization, Some(UserKind::Human)).await;
    let services = members_of_kind(store, &organization, Some(UserKind::Service)).await;
    let everyone = members_of_kind(store, &organization, None).await;
    store
        .members
        .remove(organization.id, service.id, admin.id, any_event())
        .await
        .expect("removed");
    let after = store.users.authenticate(&material.hash, now()).await;
    let again = store
        .members
        .create_service_account(
            account(&organization, admin.id, "ci", Role::Users),
            &key(),
            now(),
            created_by(admin.id, &organization, "ci"),
        )
        .await;

    assert_eq!(
        humans.iter().map(|u| u.id).collect::<Vec<_>>(),
        [admin.id, person.id]
    );
    assert_eq!(services, [service]);
    assert_eq!(everyone.len(), 3);
    assert_eq!(after, Ok(None));
    assert!(again.is_ok(), "{again:?}");
}

/// A requester demoted after the use case authorized them creates nothing: storage reads
/// their standing again under its lock. The same request by an administrator succeeds.
pub async fn a_requester_demoted_meanwhile_creates_no_service_account(store: &Store) {
    let (organization, admin) = organization_with_admin(store).await;
    let (second, _) = user(
        store,
        &organization,
        "second@example.com",
        Role::Administrators,
    )
    .await;
    store
        .members
        .change_role(
            organization.id,
            second.id,
            Role::Users,
            admin.id,
            now(),
            None,
        )
        .await
        .expect("demoted");
    let material = key();

    let refused = store
        .members
        .create_service_account(
            account(&organization, second.id, "ci", Role::Users),
            &material,
            now(),
            created_by(second.id, &organization, "ci"),
        )
        .await;
    let events = created_events(store, &organization).await;
    let services = members_of_kind(store, &organization, Some(UserKind::Service)).await;
    let created = store
        .members
        .create_service_account(
            account(&organization, admin.id, "ci", Role::Users),
            &key(),
            now(),
            created_by(admin.id, &organization, "ci"),
        )
        .await;

    assert_eq!(refused, Err(CreateServiceAccountError::Forbidden));
    assert_eq!(
        store.users.authenticate(&material.hash, now()).await,
        Ok(None)
    );
    assert!(services.is_empty(), "{services:?}");
    assert!(events.is_empty(), "{events:?}");
    assert!(created.is_ok(), "{created:?}");
}

/// The last administrator of a root stays, whatever service accounts the organization
/// has: they never count as administrators.
pub async fn service_accounts_never_count_as_administrators(store: &Store) {
    let (organization, admin) = organization_with_admin(store).await;
    for name in ["a", "b"] {
        store
            .members
            .create_service_account(
                account(&organization, admin.id, name, Role::Managers),
                &key(),
                now(),
                created_by(admin.id, &organization, name),
            )
            .await
            .expect("created");
    }

    let removed = store
        .members
        .remove(organization.id, admin.id, admin.id, any_event())
        .await;

    assert_eq!(
        removed,
        Err(ports::outbound::MemberChangeError::LastAdministrator)
    );
}
