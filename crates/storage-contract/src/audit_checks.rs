//! The audit log's contract (CONTRACT §13): an event is stored with its change in one
//! transaction, or neither is; lists, filters, purge and pruning.

use domain::api_key::{ApiKeyName, KeyRefusal, NewApiKey, Scope};
use domain::audit::{
    ActionFilter, Changes, Event, EventAction, EventActor, EventFilter, EventOrganization,
    EventTarget, NewEvent, StoredTarget,
};
use domain::mail::EmailKind;
use domain::organization::Organization;
use domain::pagination::PageRequest;
use domain::user::{MemberRef, User};
use domain::{Duration, RequestId, Role, Timestamp, UserId, Version};
use ports::outbound::{
    CreateApiKeyError, CreateInvitationError, MemberChangeError, StorageError, WriteError,
};

use crate::Store;
use crate::fixtures::{
    child, invitation, key, mail, new_invitation, new_organization, now, organization_with_admin,
    root, user,
};

/// Every event of `organization`'s list (a root's includes its children's), newest first.
async fn events_of(store: &Store, organization: &Organization) -> Vec<Event> {
    events_matching(store, organization, EventFilter::default()).await
}

async fn events_matching(
    store: &Store,
    organization: &Organization,
    filter: EventFilter,
) -> Vec<Event> {
    store
        .events
        .list(organization.node(), filter, PageRequest::new(1, 1000))
        .await
        .expect("events are listed")
        .items
}

/// The events of one action in `organization`'s list.
async fn of_action(store: &Store, organization: &Organization, action: EventAction) -> Vec<Event> {
    events_matching(
        store,
        organization,
        EventFilter {
            action: Some(ActionFilter::Exactly(action)),
            ..EventFilter::default()
        },
    )
    .await
}

/// An event an administrator makes about `organization` itself.
fn by_user(user: UserId, action: EventAction, organization: &Organization) -> NewEvent {
    NewEvent::new(
        action,
        EventActor::User(user),
        EventOrganization::Existing(organization.id),
        EventTarget::Organization,
        RequestId::parse("req-1"),
        now(),
    )
}

/// An event whose actor does not exist: storing it fails, and must take its change along.
fn unstorable(action: EventAction, organization: &Organization) -> NewEvent {
    by_user(UserId::new(999_999_999), action, organization)
}

/// A created organization's event is stored with it and reads back field by field.
pub async fn a_change_and_its_event_are_stored_together_and_read_back(store: &Store) {
    let changes = Changes::new().with("name", None::<&str>, "Audited");
    let event = NewEvent::by_operator(
        EventAction::OrganizationCreated,
        EventOrganization::ThisOrganization,
        EventTarget::Organization,
        now(),
    )
    .with_changes(changes.clone());

    let created = store
        .organizations
        .create(new_organization("Audited", None), now(), event)
        .await
        .expect("created");

    let events = of_action(store, &created, EventAction::OrganizationCreated).await;
    assert_eq!(events.len(), 1, "{events:?}");
    let stored = &events[0];
    assert_eq!(stored.actor, None);
    assert_eq!(stored.actor_identifier, "operator");
    assert_eq!(stored.organization, created.id);
    assert_eq!(stored.target, Some(StoredTarget::Organization));
    assert_eq!(stored.changes, changes.to_json());
    assert_eq!(stored.request_id, None);
}

/// A user's event names the user, their organization and identifier, and the request.
pub async fn a_users_event_names_the_actor_and_the_request(store: &Store) {
    let (organization, admin) = organization_with_admin(store).await;
    let mut renamed = organization.clone();
    renamed.name = domain::organization::OrganizationName::parse("Renamed").expect("name");
    let event = by_user(admin.id, EventAction::OrganizationUpdated, &organization)
        .with_changes(Changes::between(&organization, &renamed));

    store
        .organizations
        .update(&renamed, Some(organization.version), now(), Some(event))
        .await
        .expect("updated");

    let events = events_matching(
        store,
        &organization,
        EventFilter {
            actor: Some(admin.id),
            ..EventFilter::default()
        },
    )
    .await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].action, EventAction::OrganizationUpdated);
    assert_eq!(
        events[0].actor,
        Some(MemberRef {
            organization_id: organization.id,
            user_id: admin.id,
        })
    );
    assert_eq!(events[0].actor_identifier, "admin@example.com");
    assert_eq!(events[0].request_id.as_deref(), Some("req-1"));
    assert_eq!(
        events[0].changes,
        r#"{"name": ["Root organization", "Renamed"]}"#
    );
}

/// An event that cannot be stored rolls back its change: update, archive, restore,
/// member removal, role change, invitation, opt-out.
pub async fn an_event_that_cannot_be_stored_rolls_back_its_change(store: &Store) {
    let (organization, admin) = organization_with_admin(store).await;
    let kid = child(store, &organization, "Kid").await;
    let (member, _) = user(store, &organization, "member@example.com", Role::Users).await;
    let mut renamed = organization.clone();
    renamed.name = domain::organization::OrganizationName::parse("Renamed").expect("name");
    let before = events_of(store, &organization).await.len();

    let updated = store
        .organizations
        .update(
            &renamed,
            None,
            now(),
            Some(unstorable(EventAction::OrganizationUpdated, &organization)),
        )
        .await;
    let archived = store
        .organizations
        .archive_child(
            kid.id,
            None,
            now(),
            unstorable(EventAction::OrganizationArchived, &kid),
        )
        .await;
    let flags = store
        .organizations
        .set_flags(
            kid.id,
            Some(true),
            None,
            now(),
            Some(unstorable(EventAction::OrganizationFlagsChanged, &kid)),
        )
        .await;
    let removed = store
        .members
        .remove(
            organization.id,
            member.id,
            admin.id,
            unstorable(EventAction::MemberRemoved, &organization),
        )
        .await;
    let promoted = store
        .members
        .change_role(
            organization.id,
            member.id,
            Role::Managers,
            admin.id,
            now(),
            Some(unstorable(EventAction::MemberRoleChanged, &organization)),
        )
        .await;
    let new = new_invitation(
        &organization,
        &admin,
        "guest@example.com",
        now(),
        Duration::days(7),
    );
    let email = mail(EmailKind::Invitation, &new.identifier, "You are invited");
    let invited = store
        .invitations
        .create(
            new,
            email,
            &[],
            unstorable(EventAction::InvitationCreated, &organization),
        )
        .await;
    let regenerated = store
        .users
        .replace_api_key(
            member.id,
            &key(),
            now(),
            unstorable(EventAction::ApiKeyRegenerated, &organization),
        )
        .await;

    assert!(
        matches!(updated, Err(WriteError::Storage(_))),
        "{updated:?}"
    );
    assert!(
        matches!(archived, Err(WriteError::Storage(_))),
        "{archived:?}"
    );
    assert!(matches!(flags, Err(WriteError::Storage(_))), "{flags:?}");
    assert!(
        matches!(removed, Err(MemberChangeError::Storage(_))),
        "{removed:?}"
    );
    assert!(
        matches!(promoted, Err(MemberChangeError::Storage(_))),
        "{promoted:?}"
    );
    assert!(
        matches!(invited, Err(CreateInvitationError::Storage(_))),
        "{invited:?}"
    );
    assert!(matches!(regenerated, Err(StorageError::Unexpected(_))));
    let still = store
        .organizations
        .find(organization.id)
        .await
        .expect("read")
        .expect("found");
    assert_eq!(still.name, organization.name);
    assert_eq!(still.version, organization.version);
    let kid_now = store
        .organizations
        .find(kid.id)
        .await
        .expect("read")
        .expect("the child is still live");
    assert!(!kid_now.can_attach_files);
    let member_now = store
        .members
        .find(organization.id, member.id)
        .await
        .expect("read")
        .expect("the member is still there");
    assert_eq!(member_now.role, Role::Users);
    let invitations = store
        .invitations
        .list(organization.id, None, now(), PageRequest::default())
        .await
        .expect("listed");
    assert_eq!(invitations.total, 0);
    assert_eq!(store.outbox.backlog().await, Ok(0));
    assert_eq!(events_of(store, &organization).await.len(), before);
}

/// A change the storage refuses (stale version, missing row) stores no event.
pub async fn a_refused_change_stores_no_event(store: &Store) {
    let (organization, admin) = organization_with_admin(store).await;
    let kid = child(store, &organization, "Kid").await;
    let before = events_of(store, &organization).await.len();

    let stale = store
        .organizations
        .update(
            &organization,
            Some(Version::new(99)),
            now(),
            Some(by_user(
                admin.id,
                EventAction::OrganizationUpdated,
                &organization,
            )),
        )
        .await;
    let root_archive = store
        .organizations
        .archive_child(
            organization.id,
            None,
            now(),
            by_user(admin.id, EventAction::OrganizationArchived, &organization),
        )
        .await;
    let live_restore = store
        .organizations
        .restore(
            kid.id,
            now(),
            by_user(admin.id, EventAction::OrganizationRestored, &kid),
        )
        .await;
    let last_admin = store
        .members
        .remove(
            organization.id,
            admin.id,
            admin.id,
            by_user(admin.id, EventAction::MemberRemoved, &organization),
        )
        .await;

    assert_eq!(stale, Err(WriteError::VersionMismatch));
    assert_eq!(root_archive, Err(WriteError::NotFound));
    assert_eq!(live_restore, Err(WriteError::NotFound));
    assert_eq!(last_admin, Err(MemberChangeError::LastAdministrator));
    assert_eq!(events_of(store, &organization).await.len(), before);
}

/// The placeholders of an acceptance: the new member acts, on the accepted invitation,
/// in the invitation's organization.
pub async fn an_acceptance_records_the_new_member_as_the_actor(store: &Store) {
    let (organization, admin) = organization_with_admin(store).await;
    let kid = child(store, &organization, "Kid").await;
    let (invited, token_hash) = invitation(
        store,
        &kid,
        &admin,
        "new@example.com",
        now(),
        Duration::days(7),
    )
    .await;
    let event = NewEvent::new(
        EventAction::InvitationAccepted,
        EventActor::ThisMember,
        EventOrganization::ThisOrganization,
        EventTarget::ThisInvitation,
        RequestId::parse("accept-1"),
        now(),
    );

    let member = store
        .invitations
        .accept(
            &token_hash,
            now(),
            ports::outbound::MemberProfile {
                first_name: crate::fixtures::person("New"),
                last_name: crate::fixtures::person("Member"),
                password_hash: domain::user::PasswordHash::new("$argon2id$x".to_owned()),
            },
            &key(),
            event,
        )
        .await
        .expect("accepted");

    let events = of_action(store, &kid, EventAction::InvitationAccepted).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].organization, kid.id);
    assert_eq!(
        events[0].actor,
        Some(MemberRef {
            organization_id: kid.id,
            user_id: member.id,
        })
    );
    assert_eq!(events[0].actor_identifier, "new@example.com");
    assert_eq!(events[0].target, Some(StoredTarget::Invitation(invited.id)));
    assert_eq!(events[0].request_id.as_deref(), Some("accept-1"));
}

/// A root's list holds its children's events (an archived child's too), newest first; a
/// child's list only its own.
pub async fn a_roots_list_includes_its_childrens_events_newest_first(store: &Store) {
    let (organization, admin) = organization_with_admin(store).await;
    let kid = child(store, &organization, "Kid").await;
    let other = child(store, &organization, "Other").await;
    let elsewhere = root(store, "Elsewhere").await;
    store
        .organizations
        .archive_child(
            kid.id,
            None,
            now(),
            by_user(admin.id, EventAction::OrganizationArchived, &kid),
        )
        .await
        .expect("archived");

    let root_events = events_of(store, &organization).await;
    let other_events = events_of(store, &other).await;
    let elsewhere_events = events_of(store, &elsewhere).await;

    let ids: Vec<i64> = root_events.iter().map(|event| event.id.get()).collect();
    let mut sorted = ids.clone();
    sorted.sort_unstable_by(|a, b| b.cmp(a));
    assert_eq!(ids, sorted, "newest first");
    assert_eq!(root_events[0].action, EventAction::OrganizationArchived);
    assert_eq!(root_events[0].organization, kid.id);
    for organization_id in [organization.id, kid.id, other.id] {
        assert!(
            root_events
                .iter()
                .any(|event| event.organization == organization_id)
        );
    }
    assert!(
        root_events
            .iter()
            .all(|event| event.organization != elsewhere.id)
    );
    assert!(
        other_events
            .iter()
            .all(|event| event.organization == other.id)
    );
    assert!(!other_events.is_empty());
    assert!(
        elsewhere_events
            .iter()
            .all(|event| event.organization == elsewhere.id)
    );
}

/// Filters by action, prefix, actor and time; pages newest first with a count.
pub async fn events_are_filtered_and_paged(store: &Store) {
    let (organization, admin) = organization_with_admin(store).await;
    let start = now();
    for action in [
        EventAction::MemberRemoved,
        EventAction::MemberRoleChanged,
        EventAction::InvitationRevoked,
    ] {
        store
            .organizations
            .update(
                &organization,
                None,
                now(),
                Some(by_user(admin.id, action, &organization)),
            )
            .await
            .expect("updated");
    }
    let members = events_matching(
        store,
        &organization,
        EventFilter {
            action: Some(ActionFilter::parse("member.*").expect("prefix")),
            ..EventFilter::default()
        },
    )
    .await;
    let api_keys = events_matching(
        store,
        &organization,
        EventFilter {
            action: Some(ActionFilter::parse("api_key.*").expect("prefix")),
            ..EventFilter::default()
        },
    )
    .await;
    let by_admin = events_matching(
        store,
        &organization,
        EventFilter {
            actor: Some(admin.id),
            since: Some(start),
            ..EventFilter::default()
        },
    )
    .await;
    let before_start = events_matching(
        store,
        &organization,
        EventFilter {
            actor: Some(admin.id),
            until: Some(start),
            ..EventFilter::default()
        },
    )
    .await;
    let page = store
        .events
        .list(
            organization.node(),
            EventFilter::default(),
            PageRequest::new(2, 1),
        )
        .await
        .expect("listed");
    let all = events_of(store, &organization).await;

    assert_eq!(
        members.iter().map(|event| event.action).collect::<Vec<_>>(),
        [EventAction::MemberRoleChanged, EventAction::MemberRemoved]
    );
    assert!(api_keys.is_empty());
    assert_eq!(by_admin.len(), 3);
    assert!(before_start.is_empty());
    assert_eq!(page.total, all.len() as u64);
    assert_eq!(page.items.len(), 1);
    assert_eq!(page.items[0].id, all[1].id);
}

/// A removed member's events keep who they were.
pub async fn a_removed_actor_keeps_its_identifier_on_its_events(store: &Store) {
    let (organization, admin) = organization_with_admin(store).await;
    let (member, _) = user(
        store,
        &organization,
        "leaver@example.com",
        Role::Administrators,
    )
    .await;
    store
        .users
        .replace_api_key(
            member.id,
            &key(),
            now(),
            NewEvent::new(
                EventAction::ApiKeyRegenerated,
                EventActor::User(member.id),
                EventOrganization::Existing(organization.id),
                EventTarget::Member(member.id),
                None,
                now(),
            ),
        )
        .await
        .expect("regenerated");
    store
        .members
        .remove(
            organization.id,
            member.id,
            admin.id,
            NewEvent::new(
                EventAction::MemberRemoved,
                EventActor::User(admin.id),
                EventOrganization::Existing(organization.id),
                EventTarget::Member(member.id),
                None,
                now(),
            ),
        )
        .await
        .expect("removed");

    let regenerated = of_action(store, &organization, EventAction::ApiKeyRegenerated).await;
    let removed = of_action(store, &organization, EventAction::MemberRemoved).await;

    assert_eq!(regenerated.len(), 1);
    assert_eq!(regenerated[0].actor_identifier, "leaver@example.com");
    assert_eq!(regenerated[0].target, Some(StoredTarget::Member(member.id)));
    assert_eq!(removed.len(), 1);
    assert_eq!(removed[0].target, Some(StoredTarget::Member(member.id)));
}

/// Purging an archived organization erases its events; its root's stay.
pub async fn purging_an_organization_erases_its_events(store: &Store) {
    let (organization, admin) = organization_with_admin(store).await;
    let kid = child(store, &organization, "Kid").await;
    store
        .organizations
        .archive_child(
            kid.id,
            None,
            now(),
            by_user(admin.id, EventAction::OrganizationArchived, &kid),
        )
        .await
        .expect("archived");
    assert!(
        events_of(store, &organization)
            .await
            .iter()
            .any(|event| event.organization == kid.id)
    );

    let purged = store
        .organizations
        .purge_archived_before(now() + Duration::hours(1))
        .await;

    assert_eq!(purged, Ok(1));
    let left = events_of(store, &organization).await;
    assert!(left.iter().all(|event| event.organization != kid.id));
    assert!(
        left.iter()
            .any(|event| event.organization == organization.id)
    );
}

/// Pruning deletes the events made strictly before the cut.
pub async fn pruning_deletes_events_made_before_the_cut(store: &Store) {
    let (organization, admin) = organization_with_admin(store).await;
    let old = now() - Duration::days(400);
    let mut stale = by_user(admin.id, EventAction::MemberRemoved, &organization);
    stale.at = old;
    store
        .organizations
        .update(&organization, None, now(), Some(stale))
        .await
        .expect("updated");
    let before = events_of(store, &organization).await.len();

    let pruned = store.events.prune(old + Duration::seconds(1)).await;

    assert_eq!(pruned, Ok(1));
    let left = events_of(store, &organization).await;
    assert_eq!(left.len(), before - 1);
    assert!(
        left.iter()
            .all(|event| event.action != EventAction::MemberRemoved)
    );
}

/// An `api_key.*` event of `member` about themself.
fn key_event(action: EventAction, member: &User) -> NewEvent {
    NewEvent::new(
        action,
        EventActor::User(member.id),
        EventOrganization::Existing(member.organization_id),
        EventTarget::Member(member.id),
        RequestId::parse("req-key"),
        now(),
    )
}

fn named_key(name: &str, expires_at: Option<Timestamp>) -> NewApiKey {
    NewApiKey {
        name: ApiKeyName::parse(name).expect("a valid name"),
        scope: Scope::Read,
        material: key(),
        expires_at,
    }
}

/// `create_api_key` and `revoke_api_key` store their events with the key; a refused
/// creation or another user's revoke stores none; the revoke's `changes` are the
/// deleted key's.
pub async fn a_made_and_a_revoked_key_store_their_events_and_refusals_none(store: &Store) {
    let (organization, _) = organization_with_admin(store).await;
    let (owner, _) = user(store, &organization, "keyed@example.com", Role::Users).await;
    let (stranger, _) = user(store, &organization, "nosy@example.com", Role::Users).await;
    let expiry = now() + Duration::days(30);
    let created = key_event(EventAction::ApiKeyCreated, &owner).with_changes(
        Changes::new()
            .with("name", None::<&str>, "ci")
            .with("scope", None::<&str>, "read"),
    );

    let made = store
        .users
        .create_api_key(owner.id, named_key("ci", Some(expiry)), now(), created)
        .await
        .expect("made");
    let duplicate = store
        .users
        .create_api_key(
            owner.id,
            named_key("ci", None),
            now(),
            key_event(EventAction::ApiKeyCreated, &owner),
        )
        .await;
    let by_stranger = store
        .users
        .revoke_api_key(
            stranger.id,
            made.id,
            key_event(EventAction::ApiKeyRevoked, &stranger),
        )
        .await;
    let revoked_early = of_action(store, &organization, EventAction::ApiKeyRevoked).await;
    let by_owner = store
        .users
        .revoke_api_key(
            owner.id,
            made.id,
            key_event(EventAction::ApiKeyRevoked, &owner),
        )
        .await;

    assert_eq!(
        duplicate,
        Err(CreateApiKeyError::Refused(KeyRefusal::NameTaken))
    );
    assert_eq!(by_stranger, Err(WriteError::NotFound));
    assert!(revoked_early.is_empty());
    assert_eq!(by_owner, Ok(()));
    let made_events = of_action(store, &organization, EventAction::ApiKeyCreated).await;
    assert_eq!(made_events.len(), 1);
    assert_eq!(made_events[0].target, Some(StoredTarget::Member(owner.id)));
    assert_eq!(made_events[0].actor_identifier, "keyed@example.com");
    assert_eq!(
        made_events[0].changes,
        r#"{"name": [null, "ci"], "scope": [null, "read"]}"#
    );
    let revoked = of_action(store, &organization, EventAction::ApiKeyRevoked).await;
    assert_eq!(revoked.len(), 1);
    assert_eq!(revoked[0].target, Some(StoredTarget::Member(owner.id)));
    assert_eq!(revoked[0].organization, organization.id);
    assert_eq!(
        revoked[0].changes,
        Changes::of_api_key(&made.name, made.scope, made.expires_at, false).to_json()
    );
    assert!(revoked[0].changes.contains(r#""name": ["ci", null]"#));
}

/// An `api_key.*` event that cannot be stored takes its key change along.
pub async fn a_key_event_that_cannot_be_stored_rolls_back_the_key_change(store: &Store) {
    let (organization, _) = organization_with_admin(store).await;
    let (owner, _) = user(store, &organization, "atomic@example.com", Role::Users).await;
    let kept = named_key("kept", None);
    let kept_hash = kept.material.hash.clone();
    let made = store
        .users
        .create_api_key(
            owner.id,
            kept,
            now(),
            key_event(EventAction::ApiKeyCreated, &owner),
        )
        .await
        .expect("made");

    let created = store
        .users
        .create_api_key(
            owner.id,
            named_key("lost", None),
            now(),
            unstorable(EventAction::ApiKeyCreated, &organization),
        )
        .await;
    let revoked = store
        .users
        .revoke_api_key(
            owner.id,
            made.id,
            unstorable(EventAction::ApiKeyRevoked, &organization),
        )
        .await;

    assert!(
        matches!(created, Err(CreateApiKeyError::Storage(_))),
        "{created:?}"
    );
    assert!(
        matches!(revoked, Err(WriteError::Storage(_))),
        "{revoked:?}"
    );
    let listed = store
        .users
        .list_api_keys(owner.id, PageRequest::new(1, 50))
        .await
        .expect("listed");
    assert_eq!(
        listed
            .items
            .iter()
            .map(|key| key.name.as_str())
            .collect::<Vec<_>>(),
        ["kept", "default"]
    );
    assert!(
        store
            .users
            .authenticate(&kept_hash, now())
            .await
            .expect("ok")
            .is_some()
    );
    assert_eq!(
        of_action(store, &organization, EventAction::ApiKeyCreated)
            .await
            .len(),
        1
    );
    assert!(
        of_action(store, &organization, EventAction::ApiKeyRevoked)
            .await
            .is_empty()
    );
}

/// Keyset pages: the events strictly below the cursor, newest first, at most the limit,
/// with the same scope and filters as numbered pages; walking them gives the whole list.
pub async fn keyset_pages_read_below_the_cursor_with_the_filters_of_the_list(store: &Store) {
    let (organization, admin) = organization_with_admin(store).await;
    let kid = child(store, &organization, "Keyset child").await;
    for (action, at) in [
        (EventAction::MemberRemoved, &organization),
        (EventAction::MemberRoleChanged, &kid),
        (EventAction::InvitationRevoked, &organization),
        (EventAction::MemberRemoved, &kid),
        (EventAction::OrganizationUpdated, &organization),
    ] {
        store
            .organizations
            .update(at, None, now(), Some(by_user(admin.id, action, at)))
            .await
            .expect("updated");
    }
    let all = events_of(store, &organization).await;
    let members_filter = EventFilter {
        action: Some(ActionFilter::Prefix("member.".to_owned())),
        ..EventFilter::default()
    };
    let members = events_matching(store, &organization, members_filter.clone()).await;

    let mut walked = Vec::new();
    let mut below = None;
    loop {
        let page = store
            .events
            .list_below(organization.node(), EventFilter::default(), below, 2)
            .await
            .expect("listed");
        assert!(page.len() <= 2);
        let Some(last) = page.last() else { break };
        below = Some(last.id);
        walked.extend(page);
    }
    let members_page = store
        .events
        .list_below(organization.node(), members_filter, Some(members[0].id), 10)
        .await
        .expect("listed");
    let of_child = store
        .events
        .list_below(kid.node(), EventFilter::default(), None, 100)
        .await
        .expect("listed");
    let nothing_below = store
        .events
        .list_below(
            organization.node(),
            EventFilter::default(),
            Some(domain::EventId::new(0)),
            10,
        )
        .await
        .expect("listed");

    assert_eq!(walked, all, "the whole list, newest first, each event once");
    assert!(all.len() >= 6, "{all:?}");
    assert_eq!(members_page, members[1..]);
    assert_eq!(members_page.len(), 2);
    assert_eq!(of_child, events_of(store, &kid).await);
    assert!(of_child.iter().all(|event| event.organization == kid.id));
    assert!(nothing_below.is_empty());
}
