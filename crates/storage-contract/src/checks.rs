//! The contract checks, one per rule of `ports::outbound`, each on a fresh empty store.

use domain::ApiKeyId;
use domain::api_key::{ApiKeyName, KeyRefusal, NewApiKey, Scope};
use domain::invitation::{InvitationConflict, InvitationStatus};
use domain::limits::{EventWindow, LimitKey, LimitReached, RateLimit};
use domain::mail::EmailKind;
use domain::member::MemberFilter;
use domain::optout::{OptOut, OptOutFilter, OptOutOrigin, OptOutRecorded};
use domain::organization::{Nickname, Organization};
use domain::pagination::PageRequest;
use domain::user::{PasswordHash, User};
use domain::{Duration, InvitationId, OrganizationId, Role, Timestamp, UserId, Version};
use futures::future::join_all;
use ports::outbound::{
    AcceptInvitationError, AcquireError, CreateInvitationError, CreateOrganizationError,
    CreateUserError, InvitationChangeError, LeaseError, MemberChangeError, MemberProfile,
    WriteError,
};
use ports::outbound::{Caller, CreateApiKeyError, KeyUse};

use crate::Store;
pub use crate::audit_checks::*;
use crate::fixtures::{
    any_event, child, email, invitation, key, mail, new_invitation, new_organization, new_user,
    now, organization_with_admin, person, root, token, user,
};
pub use crate::webhook_checks::*;

fn ids<T>(items: &[T], id: impl Fn(&T) -> i64) -> Vec<i64> {
    items.iter().map(id).collect()
}

fn profile() -> MemberProfile {
    MemberProfile {
        first_name: person("Grace"),
        last_name: person("Hopper"),
        password_hash: PasswordHash::new("$argon2id$v=19$accepted".to_owned()),
    }
}

fn week() -> Duration {
    Duration::days(7)
}

// Organizations.

/// `create` stores version 1 and `find` returns what was stored.
pub async fn a_created_root_organization_is_found_with_version_1(store: &Store) {
    let at = now();

    let created = store
        .organizations
        .create(new_organization("Root", None), at, any_event())
        .await
        .expect("created");
    let found = store.organizations.find(created.id).await.expect("found");

    assert_eq!(created.version, Version::FIRST);
    assert_eq!((created.created_at, created.updated_at), (at, at));
    assert_eq!(created.name.as_str(), "Root");
    assert_eq!(created.parent, None);
    assert_eq!(found, Some(created));
    let missing = store.organizations.find(OrganizationId::new(999_999)).await;
    assert_eq!(missing, Ok(None));
}

/// `create` refuses a missing or archived parent.
pub async fn a_child_of_a_missing_or_archived_parent_is_parent_not_found(store: &Store) {
    let parent = root(store, "Root").await;
    let archived = child(store, &parent, "Archived").await;
    store
        .organizations
        .archive_child(archived.id, None, now(), any_event())
        .await
        .expect("archived");

    let missing = store
        .organizations
        .create(
            new_organization("Orphan", Some(OrganizationId::new(999_999))),
            now(),
            any_event(),
        )
        .await;
    let under_archived = store
        .organizations
        .create(
            new_organization("Orphan", Some(archived.id)),
            now(),
            any_event(),
        )
        .await;

    assert_eq!(missing, Err(CreateOrganizationError::ParentNotFound));
    // The archived parent is itself a child; either way nothing may be stored under it.
    assert!(matches!(
        under_archived,
        Err(CreateOrganizationError::ParentNotFound | CreateOrganizationError::ParentIsChild)
    ));
    let children = store
        .organizations
        .list_children(parent.id, PageRequest::default())
        .await
        .expect("listed");
    assert_eq!(children.total, 0);
}

/// `create` keeps the tree two levels deep.
pub async fn a_child_of_a_child_is_parent_is_child(store: &Store) {
    let parent = root(store, "Root").await;
    let first = child(store, &parent, "Child").await;

    let grandchild = store
        .organizations
        .create(
            new_organization("Grandchild", Some(first.id)),
            now(),
            any_event(),
        )
        .await;

    assert_eq!(grandchild, Err(CreateOrganizationError::ParentIsChild));
    assert_eq!(first.parent, Some(parent.id));
}

/// `list_visible`: the root first, then its live children by id, paged.
pub async fn the_visible_list_puts_the_root_first_then_its_live_children_by_id(store: &Store) {
    let parent = root(store, "Root").await;
    let other = root(store, "Other root").await;
    let a = child(store, &parent, "A").await;
    let gone = child(store, &parent, "Gone").await;
    let b = child(store, &parent, "B").await;
    let c = child(store, &parent, "C").await;
    child(store, &other, "Not visible").await;
    store
        .organizations
        .archive_child(gone.id, None, now(), any_event())
        .await
        .expect("archived");

    let first = store
        .organizations
        .list_visible(parent.id, PageRequest::new(1, 2))
        .await
        .expect("page 1");
    let second = store
        .organizations
        .list_visible(parent.id, PageRequest::new(2, 2))
        .await
        .expect("page 2");
    let from_child = store
        .organizations
        .list_visible(a.id, PageRequest::default())
        .await
        .expect("from a child");

    assert_eq!(first.total, 4);
    assert_eq!(first.request, PageRequest::new(1, 2));
    assert_eq!(
        ids(&first.items, |o| o.id.get()),
        vec![parent.id.get(), a.id.get()]
    );
    assert_eq!(
        ids(&second.items, |o| o.id.get()),
        vec![b.id.get(), c.id.get()]
    );
    assert_eq!(from_child.total, 1);
    assert_eq!(ids(&from_child.items, |o| o.id.get()), vec![a.id.get()]);
}

/// `list_children`: live children by id, paged, with the total.
pub async fn the_children_list_pages_the_live_children_by_id(store: &Store) {
    let parent = root(store, "Root").await;
    let mut children = Vec::new();
    for name in ["A", "B", "C", "D", "E"] {
        children.push(child(store, &parent, name).await);
    }
    store
        .organizations
        .archive_child(children[1].id, None, now(), any_event())
        .await
        .expect("archived");

    let second = store
        .organizations
        .list_children(parent.id, PageRequest::new(2, 2))
        .await
        .expect("listed");
    let of_a_child = store
        .organizations
        .list_children(children[0].id, PageRequest::default())
        .await
        .expect("listed");
    let past_the_end = store
        .organizations
        .list_children(parent.id, PageRequest::new(3, 2))
        .await
        .expect("listed");

    assert_eq!(second.total, 4);
    assert_eq!(
        ids(&second.items, |o| o.id.get()),
        vec![children[3].id.get(), children[4].id.get()]
    );
    assert_eq!((of_a_child.total, of_a_child.items.len()), (0, 0));
    assert!(past_the_end.items.is_empty());
}

/// `update` writes name, contact and settings, bumps the version, and refuses a stale one.
pub async fn an_update_bumps_the_version_and_a_stale_version_is_a_mismatch(store: &Store) {
    let organization = root(store, "Root").await;
    let mut changed = organization.clone();
    changed.name = domain::organization::OrganizationName::parse("Renamed").expect("valid");
    changed.contact_email = Some(email("new@Example.COM"));
    changed.settings.nickname = Nickname::parse("renamed-org").expect("valid");
    changed.settings.notify_optouts = true;
    changed.settings.notify_message_status = false;
    changed.settings.external_optout_message = "Bye".to_owned();
    let later = now() + Duration::seconds(5);

    let updated = store
        .organizations
        .update(&changed, Some(Version::FIRST), later, None)
        .await
        .expect("updated");
    let stale = store
        .organizations
        .update(&changed, Some(Version::FIRST), later, None)
        .await;
    let last_write_wins = store
        .organizations
        .update(&changed, None, later, None)
        .await
        .expect("updated without a version");

    assert_eq!(updated.version, Version::new(2));
    assert_eq!(updated.updated_at, later);
    assert_eq!(updated.created_at, organization.created_at);
    assert_eq!(updated.name.as_str(), "Renamed");
    assert_eq!(updated.contact_email, Some(email("new@example.com")));
    assert_eq!(updated.settings, changed.settings);
    assert_eq!(stale, Err(WriteError::VersionMismatch));
    assert_eq!(last_write_wins.version, Version::new(3));
    let found = store
        .organizations
        .find(organization.id)
        .await
        .expect("found");
    assert_eq!(found, Some(last_write_wins));
}

/// `update` refuses a missing or archived organization.
pub async fn updating_a_missing_or_archived_organization_is_not_found(store: &Store) {
    let parent = root(store, "Root").await;
    let archived = child(store, &parent, "Archived").await;
    store
        .organizations
        .archive_child(archived.id, None, now(), any_event())
        .await
        .expect("archived");
    let mut missing = parent.clone();
    missing.id = OrganizationId::new(999_999);

    let on_missing = store
        .organizations
        .update(&missing, None, now(), None)
        .await;
    let on_archived = store
        .organizations
        .update(&archived, Some(archived.version), now(), None)
        .await;

    assert_eq!(on_missing, Err(WriteError::NotFound));
    assert_eq!(on_archived, Err(WriteError::NotFound));
}

/// `archive_child` hides a live child; a root, a missing or archived one is `NotFound`,
/// a stale version `VersionMismatch`.
pub async fn archiving_a_child_hides_it_and_refuses_roots_and_stale_versions(store: &Store) {
    let parent = root(store, "Root").await;
    let first = child(store, &parent, "First").await;
    let second = child(store, &parent, "Second").await;

    let stale = store
        .organizations
        .archive_child(first.id, Some(Version::new(7)), now(), any_event())
        .await;
    let archived = store
        .organizations
        .archive_child(first.id, Some(first.version), now(), any_event())
        .await;
    let again = store
        .organizations
        .archive_child(first.id, None, now(), any_event())
        .await;
    let of_root = store
        .organizations
        .archive_child(parent.id, None, now(), any_event())
        .await;
    let of_missing = store
        .organizations
        .archive_child(OrganizationId::new(999_999), None, now(), any_event())
        .await;
    let without_version = store
        .organizations
        .archive_child(second.id, None, now(), any_event())
        .await;

    assert_eq!(stale, Err(WriteError::VersionMismatch));
    assert_eq!(archived, Ok(()));
    assert_eq!(again, Err(WriteError::NotFound));
    assert_eq!(of_root, Err(WriteError::NotFound));
    assert_eq!(of_missing, Err(WriteError::NotFound));
    assert_eq!(without_version, Ok(()));
    assert_eq!(store.organizations.find(first.id).await, Ok(None));
    assert!(
        store
            .organizations
            .find(parent.id)
            .await
            .expect("found")
            .is_some()
    );
}

/// `restore` brings back an archived organization with a new version; a live or
/// missing one is `NotFound`.
pub async fn restoring_brings_back_an_archived_child_and_refuses_a_live_one(store: &Store) {
    let parent = root(store, "Root").await;
    let archived = child(store, &parent, "Archived").await;
    store
        .organizations
        .archive_child(archived.id, None, now(), any_event())
        .await
        .expect("archived");

    let restored = store
        .organizations
        .restore(archived.id, now(), any_event())
        .await;
    let of_live = store
        .organizations
        .restore(archived.id, now(), any_event())
        .await;
    let of_missing = store
        .organizations
        .restore(OrganizationId::new(999_999), now(), any_event())
        .await;

    assert_eq!(restored, Ok(()));
    assert_eq!(of_live, Err(WriteError::NotFound));
    assert_eq!(of_missing, Err(WriteError::NotFound));
    let found = store
        .organizations
        .find(archived.id)
        .await
        .expect("found")
        .expect("live again");
    assert!(found.version > archived.version);
    let children = store
        .organizations
        .list_children(parent.id, PageRequest::default())
        .await
        .expect("listed");
    assert_eq!(children.total, 1);
}

/// `purge_archived_before` erases organizations archived strictly before the date, with
/// their users, credentials, invitations and opt-outs; nothing else.
pub async fn purging_erases_what_was_archived_strictly_before_with_all_it_owns(store: &Store) {
    let (parent, admin) = organization_with_admin(store).await;
    let old = child(store, &parent, "Old").await;
    let recent = child(store, &parent, "Recent").await;
    let live = child(store, &parent, "Live").await;
    let (old_user, old_key) = user(store, &old, "old@example.com", Role::Users).await;
    let (_, recent_key) = user(store, &recent, "recent@example.com", Role::Users).await;
    let (_, live_key) = user(store, &live, "live@example.com", Role::Users).await;
    invitation(store, &old, &old_user, "guest@example.com", now(), week()).await;
    invitation(
        store,
        &parent,
        &old_user,
        "other@example.com",
        now(),
        week(),
    )
    .await;
    let opted = OptOut {
        organization_id: old.id,
        address: email("reader@example.com"),
        origin: OptOutOrigin::Web,
        creation_date: now(),
    };
    store
        .opt_outs
        .record(opted, None, any_event())
        .await
        .expect("recorded");
    let t1 = now() + Duration::hours(1);
    let t2 = t1 + Duration::hours(1);
    store
        .organizations
        .archive_child(old.id, None, t1, any_event())
        .await
        .expect("archived");
    store
        .organizations
        .archive_child(recent.id, None, t2, any_event())
        .await
        .expect("archived");

    let at_t1 = store.organizations.purge_archived_before(t1).await;
    let before_t2 = store.organizations.purge_archived_before(t2).await;

    assert_eq!(at_t1, Ok(0), "archived at t1 is not strictly before t1");
    assert_eq!(before_t2, Ok(1));
    assert_eq!(
        store
            .organizations
            .restore(old.id, now(), any_event())
            .await,
        Err(WriteError::NotFound)
    );
    assert_eq!(
        store
            .organizations
            .restore(recent.id, now(), any_event())
            .await,
        Ok(())
    );
    assert_eq!(
        store
            .users
            .identifier_taken(&email("old@example.com"))
            .await,
        Ok(false)
    );
    assert_eq!(store.users.authenticate(&old_key, now()).await, Ok(None));
    assert!(
        store
            .users
            .authenticate(&recent_key, now())
            .await
            .expect("ok")
            .is_some()
    );
    assert!(
        store
            .users
            .authenticate(&live_key, now())
            .await
            .expect("ok")
            .is_some()
    );
    let invitations = store
        .invitations
        .list(old.id, None, now(), PageRequest::default())
        .await
        .expect("listed");
    assert_eq!(invitations.total, 0);
    let kept = store
        .invitations
        .list(parent.id, None, now(), PageRequest::default())
        .await
        .expect("listed");
    assert_eq!(kept.total, 1, "an invitation made by a purged user stays");
    assert_eq!(kept.items[0].invited_by, None);
    let opt_outs = store
        .opt_outs
        .list(old.id, OptOutFilter::default(), PageRequest::default())
        .await
        .expect("listed");
    assert_eq!(opt_outs.total, 0);
    assert!(store.users.find(admin.id).await.expect("found").is_some());
}

/// `set_flags` changes the given flags only and bumps the version.
pub async fn setting_flags_keeps_the_unset_ones_and_refuses_an_archived_organization(
    store: &Store,
) {
    let parent = root(store, "Root").await;
    let archived = child(store, &parent, "Archived").await;
    store
        .organizations
        .archive_child(archived.id, None, now(), any_event())
        .await
        .expect("archived");

    let attach = store
        .organizations
        .set_flags(parent.id, Some(true), None, now(), None)
        .await
        .expect("set");
    let optout = store
        .organizations
        .set_flags(parent.id, None, Some(true), now(), None)
        .await
        .expect("set");
    let on_archived = store
        .organizations
        .set_flags(archived.id, Some(true), None, now(), None)
        .await;
    let on_missing = store
        .organizations
        .set_flags(OrganizationId::new(999_999), None, None, now(), None)
        .await;

    assert!(attach.can_attach_files && !attach.can_external_optout);
    assert!(optout.can_attach_files && optout.can_external_optout);
    assert_eq!(optout.version, Version::new(3));
    assert_eq!(on_archived, Err(WriteError::NotFound));
    assert_eq!(on_missing, Err(WriteError::NotFound));
}

/// Sub-microsecond digits are truncated, so that what is read equals what was written
/// once truncated, on every backend.
pub async fn timestamps_come_back_truncated_to_the_microsecond(store: &Store) {
    let exact = Timestamp::from_timestamp(1_700_000_000, 123_456_789).expect("valid");
    let truncated = Timestamp::from_timestamp(1_700_000_000, 123_456_000).expect("valid");

    let created = store
        .organizations
        .create(new_organization("Root", None), exact, any_event())
        .await
        .expect("created");
    let found = store
        .organizations
        .find(created.id)
        .await
        .expect("found")
        .expect("live");

    assert_eq!(created.created_at, truncated);
    assert_eq!(found.created_at, truncated);
    assert_eq!(found.updated_at, truncated);
}

// Users.

/// `create` stores an active user; `find`, `identifier_taken` and `authenticate` see it.
pub async fn a_created_user_is_found_and_authenticates_with_its_api_key(store: &Store) {
    let parent = root(store, "Root").await;
    let organization = child(store, &parent, "Child").await;
    let api_key = key();
    let at = now();

    let created = store
        .users
        .create(
            new_user(organization.id, "Member@Example.COM", Role::Managers),
            &api_key,
            at,
            any_event(),
        )
        .await
        .expect("created");

    assert_eq!(created.identifier.as_str(), "Member@example.com");
    assert_eq!(created.role, Role::Managers);
    assert_eq!(created.organization_id, organization.id);
    assert!(created.is_active);
    assert_eq!(created.created_at, at);
    assert_eq!(
        store.users.find(created.id).await,
        Ok(Some(created.clone()))
    );
    assert_eq!(store.users.find(UserId::new(999_999)).await, Ok(None));
    assert_eq!(
        store
            .users
            .identifier_taken(&email("Member@example.com"))
            .await,
        Ok(true)
    );
    assert_eq!(
        store
            .users
            .identifier_taken(&email("member@example.com"))
            .await,
        Ok(false),
        "identifiers compare exactly, as the domain normalized them"
    );
    let authenticated = store
        .users
        .authenticate(&api_key.hash, now())
        .await
        .expect("ok")
        .expect("authenticated");
    assert_eq!(authenticated.user, created);
    assert_eq!(authenticated.organization, organization.node());
    assert_eq!(store.users.authenticate(&token(), now()).await, Ok(None));
}

/// `create` refuses a second user with the same identifier, in any organization,
/// archived ones included.
pub async fn a_taken_identifier_cannot_be_given_to_a_second_user(store: &Store) {
    let parent = root(store, "Root").await;
    let archived = child(store, &parent, "Archived").await;
    user(store, &archived, "taken@example.com", Role::Users).await;
    store
        .organizations
        .archive_child(archived.id, None, now(), any_event())
        .await
        .expect("archived");

    let second = store
        .users
        .create(
            new_user(parent.id, "taken@example.com", Role::Users),
            &key(),
            now(),
            any_event(),
        )
        .await;

    assert_eq!(second, Err(CreateUserError::IdentifierTaken));
    assert_eq!(
        store
            .users
            .identifier_taken(&email("taken@example.com"))
            .await,
        Ok(true)
    );
}

/// `create` refuses a missing or archived organization.
pub async fn a_user_of_a_missing_or_archived_organization_is_organization_not_found(store: &Store) {
    let parent = root(store, "Root").await;
    let archived = child(store, &parent, "Archived").await;
    store
        .organizations
        .archive_child(archived.id, None, now(), any_event())
        .await
        .expect("archived");

    let in_missing = store
        .users
        .create(
            new_user(OrganizationId::new(999_999), "a@example.com", Role::Users),
            &key(),
            now(),
            any_event(),
        )
        .await;
    let in_archived = store
        .users
        .create(
            new_user(archived.id, "b@example.com", Role::Users),
            &key(),
            now(),
            any_event(),
        )
        .await;

    assert_eq!(in_missing, Err(CreateUserError::OrganizationNotFound));
    assert_eq!(in_archived, Err(CreateUserError::OrganizationNotFound));
}

/// `create_session`: a session token authenticates strictly before its expiry.
pub async fn sessions_authenticate_until_they_expire(store: &Store) {
    let (organization, _) = organization_with_admin(store).await;
    let (member, _) = user(store, &organization, "member@example.com", Role::Users).await;
    let session = token();
    let at = now();
    let expires_at = at + Duration::hours(12);

    store
        .users
        .create_session(member.id, &session, at, expires_at)
        .await
        .expect("stored");

    let before = store
        .users
        .authenticate(&session, expires_at - Duration::microseconds(1))
        .await;
    let at_expiry = store.users.authenticate(&session, expires_at).await;
    assert_eq!(before.expect("ok").map(|a| a.user.id), Some(member.id));
    assert_eq!(at_expiry, Ok(None));
}

/// `authenticate_with_organization`: what `authenticate` and `OrganizationRepository::find`
/// answer, read together; an unknown, expired or archived caller is `None` whatever the
/// organization; an archived or missing organization is the caller without it.
pub async fn authenticating_with_an_organization_reads_both_as_the_separate_calls(store: &Store) {
    let parent = root(store, "Root").await;
    let live = child(store, &parent, "Live").await;
    let archived = child(store, &parent, "Archived").await;
    let (member, key) = user(store, &parent, "member@example.com", Role::Users).await;
    let (_, archived_key) = user(store, &archived, "gone@example.com", Role::Users).await;
    let session = token();
    let at = now();
    store
        .users
        .create_session(member.id, &session, at, at + Duration::hours(1))
        .await
        .expect("stored");
    store
        .organizations
        .archive_child(archived.id, None, at, any_event())
        .await
        .expect("archived");

    let alone = store.users.authenticate(&key, at).await.expect("ok");
    for organization in [&parent, &live] {
        let read = store
            .users
            .authenticate_with_organization(&key, at, organization.id)
            .await
            .expect("ok");
        let found = store.organizations.find(organization.id).await.expect("ok");
        let caller = Caller::from(alone.clone().expect("authenticated"));
        assert_eq!(read, Some((caller, found)));
        assert!(read.is_some_and(|(_, found)| found.as_ref() == Some(organization)));
    }
    for missing in [archived.id, OrganizationId::new(999_999)] {
        assert_eq!(
            store
                .users
                .authenticate_with_organization(&key, at, missing)
                .await,
            Ok(Some((
                Caller::from(alone.clone().expect("authenticated")),
                None
            )))
        );
    }
    let by_session = store
        .users
        .authenticate_with_organization(&session, at, live.id)
        .await
        .expect("ok")
        .expect("authenticated");
    assert_eq!(by_session.0.api_key, None);
    assert_eq!(by_session.0.user_id, member.id);
    assert_eq!(by_session.0.role, Role::Users);
    assert_eq!(by_session.0.organization, parent.node());
    assert_eq!(by_session.1, Some(live.clone()));
    for (token, instant) in [
        (token(), at),
        (session, at + Duration::hours(1)),
        (archived_key, at),
    ] {
        assert_eq!(
            store
                .users
                .authenticate_with_organization(&token, instant, live.id)
                .await,
            Ok(None)
        );
    }
}

/// `prune_sessions`: expired sessions go, live sessions and API keys stay.
pub async fn pruning_sessions_removes_only_the_expired_ones(store: &Store) {
    let (organization, _) = organization_with_admin(store).await;
    let (member, key) = user(store, &organization, "member@example.com", Role::Users).await;
    let (expired, live) = (token(), token());
    let at = now();
    store
        .users
        .create_session(member.id, &expired, at, at + Duration::hours(1))
        .await
        .expect("stored");
    store
        .users
        .create_session(member.id, &live, at, at + Duration::hours(3))
        .await
        .expect("stored");

    let pruned = store.users.prune_sessions(at + Duration::hours(2)).await;

    assert_eq!(pruned, Ok(1));
    let later = at + Duration::hours(2);
    assert!(matches!(
        store.users.authenticate(&live, later).await,
        Ok(Some(_))
    ));
    assert!(matches!(
        store.users.authenticate(&key, later).await,
        Ok(Some(_))
    ));
    assert_eq!(store.users.authenticate(&expired, at).await, Ok(None));
}

/// `replace_api_key`: the old key stops at once, the new one and sessions work.
pub async fn replacing_the_api_key_stops_the_old_one_and_keeps_sessions(store: &Store) {
    let (organization, _) = organization_with_admin(store).await;
    let (member, old_key) = user(store, &organization, "member@example.com", Role::Users).await;
    let session = token();
    store
        .users
        .create_session(member.id, &session, now(), now() + Duration::hours(1))
        .await
        .expect("stored");
    let new_key = key();

    store
        .users
        .replace_api_key(member.id, &new_key, now(), any_event())
        .await
        .expect("replaced");

    assert_eq!(store.users.authenticate(&old_key, now()).await, Ok(None));
    let by_new = store
        .users
        .authenticate(&new_key.hash, now())
        .await
        .expect("ok");
    let by_session = store.users.authenticate(&session, now()).await.expect("ok");
    assert_eq!(by_new.map(|a| a.user.id), Some(member.id));
    assert_eq!(by_session.map(|a| a.user.id), Some(member.id));
}

/// Archiving hides a child's users from `authenticate`, `find` and `find_for_login`;
/// restoring brings them and their unexpired sessions back.
pub async fn users_of_an_archived_organization_cannot_act_until_it_is_restored(store: &Store) {
    let parent = root(store, "Root").await;
    let organization = child(store, &parent, "Child").await;
    let (member, api_key) = user(store, &organization, "member@example.com", Role::Users).await;
    let session = token();
    store
        .users
        .create_session(member.id, &session, now(), now() + Duration::hours(1))
        .await
        .expect("stored");

    store
        .organizations
        .archive_child(organization.id, None, now(), any_event())
        .await
        .expect("archived");

    assert_eq!(store.users.authenticate(&api_key, now()).await, Ok(None));
    assert_eq!(store.users.authenticate(&session, now()).await, Ok(None));
    assert_eq!(store.users.find(member.id).await, Ok(None));
    assert_eq!(
        store
            .users
            .find_for_login(member.identifier.as_email().expect("a person"))
            .await,
        Ok(None)
    );
    store
        .organizations
        .restore(organization.id, now(), any_event())
        .await
        .expect("restored");
    assert!(
        store
            .users
            .authenticate(&api_key, now())
            .await
            .expect("ok")
            .is_some()
    );
    assert!(
        store
            .users
            .authenticate(&session, now())
            .await
            .expect("ok")
            .is_some()
    );
    assert!(store.users.find(member.id).await.expect("ok").is_some());
}

/// `find_for_login` returns the user and its password hash, or none.
pub async fn the_login_record_carries_the_password_hash(store: &Store) {
    let organization = root(store, "Root").await;
    let (with_password, _) = user(store, &organization, "a@example.com", Role::Users).await;
    let mut without = new_user(organization.id, "b@example.com", Role::Users);
    without.password_hash = None;
    without.first_name = domain::user::PersonName::unnamed();
    without.last_name = domain::user::PersonName::unnamed();
    let without = store
        .users
        .create(without, &key(), now(), any_event())
        .await
        .expect("created");

    let first = store.users.find_for_login(&email("a@example.com")).await;
    let second = store.users.find_for_login(&email("b@example.com")).await;
    let unknown = store.users.find_for_login(&email("c@example.com")).await;

    let first = first.expect("ok").expect("found");
    assert_eq!(first.user, with_password);
    assert_eq!(
        first.password_hash,
        Some(PasswordHash::new("$argon2id$v=19$stored".to_owned()))
    );
    let second = second.expect("ok").expect("found");
    assert_eq!(second.user, without);
    assert_eq!(second.password_hash, None);
    assert_eq!(unknown, Ok(None));
}

/// `create_first_administrator` stores an organization, its administrator and a key on
/// a database without users, and nothing afterwards.
pub async fn the_first_administrator_is_created_only_on_a_database_without_users(store: &Store) {
    let api_key = key();

    let first = store
        .users
        .create_first_administrator(
            new_organization("First", None),
            new_user(
                OrganizationId::new(0),
                "admin@example.com",
                Role::Administrators,
            ),
            &api_key,
            now(),
            Vec::new(),
        )
        .await
        .expect("ok");
    let second = store
        .users
        .create_first_administrator(
            new_organization("Second", None),
            new_user(
                OrganizationId::new(0),
                "other@example.com",
                Role::Administrators,
            ),
            &key(),
            now(),
            Vec::new(),
        )
        .await;

    let (organization, admin) = first.expect("created on an empty database");
    assert_eq!(admin.organization_id, organization.id);
    assert_eq!(admin.role, Role::Administrators);
    assert_eq!(
        store.organizations.find(organization.id).await,
        Ok(Some(organization))
    );
    let authenticated = store
        .users
        .authenticate(&api_key.hash, now())
        .await
        .expect("ok");
    assert_eq!(authenticated.map(|a| a.user), Some(admin));
    assert_eq!(second, Ok(None));
    assert_eq!(
        store
            .users
            .identifier_taken(&email("other@example.com"))
            .await,
        Ok(false)
    );
    let visible = store
        .organizations
        .list_visible(OrganizationId::new(0), PageRequest::default())
        .await
        .expect("listed");
    assert_eq!(visible.total, 0);
}

/// `create_first_administrator` from several processes at once: exactly one wins.
pub async fn racing_first_administrators_create_exactly_one(store: &Store) {
    let attempts = (0..5).map(|n| {
        let users = store.users.clone();
        async move {
            users
                .create_first_administrator(
                    new_organization(&format!("First {n}"), None),
                    new_user(
                        OrganizationId::new(0),
                        &format!("admin{n}@example.com"),
                        Role::Administrators,
                    ),
                    &key(),
                    now(),
                    Vec::new(),
                )
                .await
        }
    });

    let results = join_all(attempts).await;

    let created = results
        .iter()
        .filter(|result| matches!(result, Ok(Some(_))))
        .count();
    let refused = results
        .iter()
        .filter(|result| matches!(result, Ok(None)))
        .count();
    assert_eq!((created, refused), (1, 4), "{results:?}");
}

// Invitations.

/// `create` stores a pending invitation and queues its e-mail in the same transaction.
pub async fn an_invitation_is_stored_with_its_email_in_the_outbox(store: &Store) {
    let (organization, admin) = organization_with_admin(store).await;
    let at = now();
    let new = new_invitation(&organization, &admin, "guest@example.com", at, week());
    let email_out = mail(EmailKind::Invitation, &new.identifier, "You are invited");

    let created = store
        .invitations
        .create(new, email_out.clone(), &[], any_event())
        .await
        .expect("created");

    assert_eq!(created.organization_id, organization.id);
    assert_eq!(created.identifier, email("guest@example.com"));
    assert_eq!(created.role, Role::Managers);
    assert_eq!(created.invited_by, Some(admin.member_ref()));
    assert_eq!((created.created_at, created.expires_at), (at, at + week()));
    assert_eq!(created.status(at), InvitationStatus::Pending);
    let claimed = store
        .outbox
        .claim_due(at, 10, Duration::minutes(1))
        .await
        .expect("claimed");
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].email, email_out);
    assert_eq!(claimed[0].attempts, 0);
    assert_eq!(claimed[0].created_at, at);
}

/// `create` refuses an identifier a user has, and queues nothing.
pub async fn inviting_a_taken_identifier_is_identifier_taken(store: &Store) {
    let (organization, admin) = organization_with_admin(store).await;
    let new = new_invitation(&organization, &admin, "admin@example.com", now(), week());

    let result = store
        .invitations
        .create(
            new,
            mail(
                EmailKind::Invitation,
                admin.identifier.as_email().expect("a person"),
                "Hi",
            ),
            &[],
            any_event(),
        )
        .await;

    assert_eq!(result, Err(CreateInvitationError::IdentifierTaken));
    assert_eq!(store.outbox.backlog().await, Ok(0));
}

/// `create` refuses a missing or archived organization.
pub async fn inviting_into_a_missing_or_archived_organization_is_organization_not_found(
    store: &Store,
) {
    let (parent, admin) = organization_with_admin(store).await;
    let archived = child(store, &parent, "Archived").await;
    store
        .organizations
        .archive_child(archived.id, None, now(), any_event())
        .await
        .expect("archived");
    let mut missing = parent.clone();
    missing.id = OrganizationId::new(999_999);
    let to = email("guest@example.com");

    let in_archived = store
        .invitations
        .create(
            new_invitation(&archived, &admin, "guest@example.com", now(), week()),
            mail(EmailKind::Invitation, &to, "Hi"),
            &[],
            any_event(),
        )
        .await;
    let in_missing = store
        .invitations
        .create(
            new_invitation(&missing, &admin, "guest@example.com", now(), week()),
            mail(EmailKind::Invitation, &to, "Hi"),
            &[],
            any_event(),
        )
        .await;

    assert_eq!(
        in_archived,
        Err(CreateInvitationError::OrganizationNotFound)
    );
    assert_eq!(in_missing, Err(CreateInvitationError::OrganizationNotFound));
    assert_eq!(store.outbox.backlog().await, Ok(0));
}

/// One pending invitation per organization and address; expired, revoked and accepted
/// ones block nothing, and an expired one that was superseded stays `expired`.
pub async fn a_second_pending_invitation_is_refused_but_an_expired_one_blocks_nothing(
    store: &Store,
) {
    let (organization, admin) = organization_with_admin(store).await;
    let other = root(store, "Other").await;
    let past = now() - Duration::days(10);
    let (expired, expired_token) = invitation(
        store,
        &organization,
        &admin,
        "guest@example.com",
        past,
        Duration::days(3),
    )
    .await;
    let to = email("guest@example.com");

    let (pending, _) = invitation(
        store,
        &organization,
        &admin,
        "guest@example.com",
        now(),
        week(),
    )
    .await;
    let second = store
        .invitations
        .create(
            new_invitation(&organization, &admin, "guest@example.com", now(), week()),
            mail(EmailKind::Invitation, &to, "Hi"),
            &[],
            any_event(),
        )
        .await;
    let elsewhere = store
        .invitations
        .create(
            new_invitation(&other, &admin, "guest@example.com", now(), week()),
            mail(EmailKind::Invitation, &to, "Hi"),
            &[],
            any_event(),
        )
        .await;

    assert_eq!(second, Err(CreateInvitationError::AlreadyInvited));
    assert!(elsewhere.is_ok(), "{elsewhere:?}");
    assert_eq!(pending.status(now()), InvitationStatus::Pending);
    let listed = store
        .invitations
        .list(
            organization.id,
            Some(InvitationStatus::Expired),
            now(),
            PageRequest::default(),
        )
        .await
        .expect("listed");
    assert_eq!(ids(&listed.items, |i| i.id.get()), vec![expired.id.get()]);
    let superseded = store
        .invitations
        .find(organization.id, expired.id)
        .await
        .expect("ok")
        .expect("found");
    assert_eq!(superseded.status(now()), InvitationStatus::Expired);
    let accepted = store
        .invitations
        .accept(
            &expired_token,
            past + Duration::days(1),
            profile(),
            &key(),
            any_event(),
        )
        .await;
    assert_eq!(accepted, Err(AcceptInvitationError::InvalidToken));
    assert_eq!(store.outbox.backlog().await, Ok(3));
}

/// `list`: newest first, paged, filtered by status at `now`.
pub async fn invitations_are_listed_newest_first_and_filtered_by_status(store: &Store) {
    let (organization, admin) = organization_with_admin(store).await;
    let at = now();
    let (expired, _) = invitation(
        store,
        &organization,
        &admin,
        "expired@example.com",
        at - Duration::days(9),
        Duration::days(2),
    )
    .await;
    let (revoked, _) = invitation(
        store,
        &organization,
        &admin,
        "revoked@example.com",
        at - Duration::days(3),
        week(),
    )
    .await;
    let (accepted, accepted_token) = invitation(
        store,
        &organization,
        &admin,
        "accepted@example.com",
        at - Duration::days(2),
        week(),
    )
    .await;
    let (pending, _) = invitation(
        store,
        &organization,
        &admin,
        "pending@example.com",
        at - Duration::days(1),
        week(),
    )
    .await;
    let (same_time, _) = invitation(
        store,
        &organization,
        &admin,
        "same@example.com",
        at - Duration::days(1),
        week(),
    )
    .await;
    store
        .invitations
        .revoke(organization.id, revoked.id, at, any_event())
        .await
        .expect("revoked");
    store
        .invitations
        .accept(&accepted_token, at, profile(), &key(), any_event())
        .await
        .expect("accepted");

    let all = store
        .invitations
        .list(organization.id, None, at, PageRequest::default())
        .await
        .expect("listed");
    let second_page = store
        .invitations
        .list(organization.id, None, at, PageRequest::new(2, 2))
        .await
        .expect("listed");
    let by_status = |status| {
        let invitations = store.invitations.clone();
        async move {
            let page = invitations
                .list(organization.id, Some(status), at, PageRequest::default())
                .await
                .expect("listed");
            (page.total, ids(&page.items, |i| i.id.get()))
        }
    };

    let newest_first = vec![
        same_time.id.get(),
        pending.id.get(),
        accepted.id.get(),
        revoked.id.get(),
        expired.id.get(),
    ];
    assert_eq!(all.total, 5);
    assert_eq!(ids(&all.items, |i| i.id.get()), newest_first);
    assert_eq!(ids(&second_page.items, |i| i.id.get()), newest_first[2..4]);
    assert_eq!(
        by_status(InvitationStatus::Pending).await,
        (2, vec![same_time.id.get(), pending.id.get()])
    );
    assert_eq!(
        by_status(InvitationStatus::Accepted).await,
        (1, vec![accepted.id.get()])
    );
    assert_eq!(
        by_status(InvitationStatus::Revoked).await,
        (1, vec![revoked.id.get()])
    );
    assert_eq!(
        by_status(InvitationStatus::Expired).await,
        (1, vec![expired.id.get()])
    );
    let statuses: Vec<_> = all.items.iter().map(|i| i.status(at)).collect();
    assert_eq!(
        statuses,
        vec![
            InvitationStatus::Pending,
            InvitationStatus::Pending,
            InvitationStatus::Accepted,
            InvitationStatus::Revoked,
            InvitationStatus::Expired,
        ]
    );
    let later = store
        .invitations
        .list(
            organization.id,
            Some(InvitationStatus::Expired),
            at + Duration::days(30),
            PageRequest::default(),
        )
        .await
        .expect("listed");
    assert_eq!(later.total, 3, "the pending ones have expired by then");
}

/// `find` returns an invitation only with its own, live organization.
pub async fn an_invitation_is_found_only_in_its_live_organization(store: &Store) {
    let (parent, admin) = organization_with_admin(store).await;
    let organization = child(store, &parent, "Child").await;
    let (created, _) = invitation(
        store,
        &organization,
        &admin,
        "guest@example.com",
        now(),
        week(),
    )
    .await;

    let found = store.invitations.find(organization.id, created.id).await;
    let elsewhere = store.invitations.find(parent.id, created.id).await;
    let missing = store
        .invitations
        .find(organization.id, InvitationId::new(999_999))
        .await;
    store
        .organizations
        .archive_child(organization.id, None, now(), any_event())
        .await
        .expect("archived");
    let archived = store.invitations.find(organization.id, created.id).await;

    assert_eq!(found, Ok(Some(created)));
    assert_eq!(elsewhere, Ok(None));
    assert_eq!(missing, Ok(None));
    assert_eq!(archived, Ok(None));
}

/// `resend` gives a new token and expiry, queues a new e-mail; the old token stops.
pub async fn resending_gives_a_new_token_and_expiry_and_queues_a_new_email(store: &Store) {
    let (organization, admin) = organization_with_admin(store).await;
    let (created, old_token) = invitation(
        store,
        &organization,
        &admin,
        "guest@example.com",
        now(),
        week(),
    )
    .await;
    let new_token = token();
    let new_expiry = now() + Duration::days(14);
    let resent_mail = mail(EmailKind::Invitation, &created.identifier, "Reminder");

    let resent = store
        .invitations
        .resend(
            organization.id,
            created.id,
            &new_token,
            new_expiry,
            now(),
            resent_mail.clone(),
            &[],
            any_event(),
        )
        .await
        .expect("resent");

    assert_eq!(resent.id, created.id);
    assert_eq!(resent.expires_at, new_expiry);
    assert_eq!(resent.created_at, created.created_at);
    let old = store
        .invitations
        .accept(&old_token, now(), profile(), &key(), any_event())
        .await;
    assert_eq!(old, Err(AcceptInvitationError::InvalidToken));
    let claimed = store
        .outbox
        .claim_due(now() + Duration::minutes(1), 10, Duration::minutes(1))
        .await
        .expect("claimed");
    assert_eq!(claimed.len(), 2);
    assert_eq!(claimed[1].email, resent_mail);
    let accepted = store
        .invitations
        .accept(&new_token, now(), profile(), &key(), any_event())
        .await;
    assert!(accepted.is_ok(), "{accepted:?}");
}

/// `resend` revives an expired invitation, also one superseded by a newer expired one.
pub async fn resending_revives_an_expired_invitation(store: &Store) {
    let (organization, admin) = organization_with_admin(store).await;
    let long_ago = now() - Duration::days(20);
    let (oldest, _) = invitation(
        store,
        &organization,
        &admin,
        "guest@example.com",
        long_ago,
        Duration::days(2),
    )
    .await;
    let (newer, _) = invitation(
        store,
        &organization,
        &admin,
        "guest@example.com",
        long_ago + Duration::days(5),
        Duration::days(2),
    )
    .await;
    let revived_token = token();

    let revived = store
        .invitations
        .resend(
            organization.id,
            oldest.id,
            &revived_token,
            now() + week(),
            now(),
            mail(EmailKind::Invitation, &oldest.identifier, "Again"),
            &[],
            any_event(),
        )
        .await
        .expect("revived");

    assert_eq!(revived.status(now()), InvitationStatus::Pending);
    let pending = store
        .invitations
        .list(
            organization.id,
            Some(InvitationStatus::Pending),
            now(),
            PageRequest::default(),
        )
        .await
        .expect("listed");
    assert_eq!(ids(&pending.items, |i| i.id.get()), vec![oldest.id.get()]);
    let newer = store
        .invitations
        .find(organization.id, newer.id)
        .await
        .expect("ok")
        .expect("found");
    assert_eq!(newer.status(now()), InvitationStatus::Expired);
    let accepted = store
        .invitations
        .accept(&revived_token, now(), profile(), &key(), any_event())
        .await;
    assert!(accepted.is_ok(), "{accepted:?}");
}

/// `resend` refuses an accepted or revoked invitation (`Conflict`) and a missing one or
/// one of an archived organization (`NotFound`), queuing nothing.
pub async fn resending_an_accepted_revoked_or_missing_invitation_is_refused(store: &Store) {
    let (parent, admin) = organization_with_admin(store).await;
    let archived = child(store, &parent, "Archived").await;
    let (accepted, accepted_token) = invitation(
        store,
        &parent,
        &admin,
        "accepted@example.com",
        now(),
        week(),
    )
    .await;
    let (revoked, _) =
        invitation(store, &parent, &admin, "revoked@example.com", now(), week()).await;
    let (hidden, _) = invitation(
        store,
        &archived,
        &admin,
        "hidden@example.com",
        now(),
        week(),
    )
    .await;
    store
        .invitations
        .accept(&accepted_token, now(), profile(), &key(), any_event())
        .await
        .expect("accepted");
    store
        .invitations
        .revoke(parent.id, revoked.id, now(), any_event())
        .await
        .expect("revoked");
    store
        .organizations
        .archive_child(archived.id, None, now(), any_event())
        .await
        .expect("archived");
    let backlog = store.outbox.backlog().await.expect("counted");
    let resend = |organization: OrganizationId, id: InvitationId| {
        let invitations = store.invitations.clone();
        async move {
            invitations
                .resend(
                    organization,
                    id,
                    &token(),
                    now() + week(),
                    now(),
                    mail(EmailKind::Invitation, &email("x@example.com"), "Again"),
                    &[],
                    any_event(),
                )
                .await
                .map(|invitation| invitation.id)
        }
    };

    assert_eq!(
        resend(parent.id, accepted.id).await,
        Err(InvitationChangeError::Conflict(
            InvitationConflict::Accepted
        ))
    );
    assert_eq!(
        resend(parent.id, revoked.id).await,
        Err(InvitationChangeError::Conflict(InvitationConflict::Revoked))
    );
    assert_eq!(
        resend(parent.id, InvitationId::new(999_999)).await,
        Err(InvitationChangeError::NotFound)
    );
    assert_eq!(
        resend(archived.id, hidden.id).await,
        Err(InvitationChangeError::NotFound)
    );
    assert_eq!(
        resend(parent.id, hidden.id).await,
        Err(InvitationChangeError::NotFound)
    );
    assert_eq!(store.outbox.backlog().await, Ok(backlog));
}

/// `resend` of a superseded invitation while a newer one is pending: `AnotherPending`.
pub async fn reviving_an_invitation_while_another_one_is_pending_is_another_pending(store: &Store) {
    let (organization, admin) = organization_with_admin(store).await;
    let (old, _) = invitation(
        store,
        &organization,
        &admin,
        "guest@example.com",
        now() - Duration::days(10),
        Duration::days(2),
    )
    .await;
    let (current, current_token) = invitation(
        store,
        &organization,
        &admin,
        "guest@example.com",
        now(),
        week(),
    )
    .await;

    let result = store
        .invitations
        .resend(
            organization.id,
            old.id,
            &token(),
            now() + week(),
            now(),
            mail(EmailKind::Invitation, &old.identifier, "Again"),
            &[],
            any_event(),
        )
        .await;

    assert_eq!(result, Err(InvitationChangeError::AnotherPending));
    let still = store
        .invitations
        .find(organization.id, current.id)
        .await
        .expect("ok")
        .expect("found");
    assert_eq!(still.status(now()), InvitationStatus::Pending);
    let accepted = store
        .invitations
        .accept(&current_token, now(), profile(), &key(), any_event())
        .await;
    assert!(accepted.is_ok(), "{accepted:?}");
}

/// `revoke` closes a pending or expired invitation once; then `Conflict`; a missing one
/// or one of an archived organization is `NotFound`.
pub async fn revoking_closes_an_invitation_once(store: &Store) {
    let (parent, admin) = organization_with_admin(store).await;
    let archived = child(store, &parent, "Archived").await;
    let (pending, pending_token) =
        invitation(store, &parent, &admin, "pending@example.com", now(), week()).await;
    let (expired, _) = invitation(
        store,
        &parent,
        &admin,
        "expired@example.com",
        now() - Duration::days(9),
        Duration::days(1),
    )
    .await;
    let (accepted, accepted_token) = invitation(
        store,
        &parent,
        &admin,
        "accepted@example.com",
        now(),
        week(),
    )
    .await;
    let (hidden, _) = invitation(
        store,
        &archived,
        &admin,
        "hidden@example.com",
        now(),
        week(),
    )
    .await;
    store
        .invitations
        .accept(&accepted_token, now(), profile(), &key(), any_event())
        .await
        .expect("accepted");
    store
        .organizations
        .archive_child(archived.id, None, now(), any_event())
        .await
        .expect("archived");
    let at = now();

    let first = store
        .invitations
        .revoke(parent.id, pending.id, at, any_event())
        .await;
    let again = store
        .invitations
        .revoke(parent.id, pending.id, at, any_event())
        .await;
    let of_expired = store
        .invitations
        .revoke(parent.id, expired.id, at, any_event())
        .await;
    let of_accepted = store
        .invitations
        .revoke(parent.id, accepted.id, at, any_event())
        .await;
    let of_missing = store
        .invitations
        .revoke(parent.id, InvitationId::new(999_999), at, any_event())
        .await;
    let of_hidden = store
        .invitations
        .revoke(archived.id, hidden.id, at, any_event())
        .await;

    assert_eq!(first, Ok(()));
    assert_eq!(
        again,
        Err(InvitationChangeError::Conflict(InvitationConflict::Revoked))
    );
    assert_eq!(of_expired, Ok(()));
    assert_eq!(
        of_accepted,
        Err(InvitationChangeError::Conflict(
            InvitationConflict::Accepted
        ))
    );
    assert_eq!(of_missing, Err(InvitationChangeError::NotFound));
    assert_eq!(of_hidden, Err(InvitationChangeError::NotFound));
    let revoked = store
        .invitations
        .find(parent.id, pending.id)
        .await
        .expect("ok")
        .expect("found");
    assert_eq!(revoked.revoked_at, Some(at));
    assert_eq!(revoked.status(at), InvitationStatus::Revoked);
    let accept = store
        .invitations
        .accept(&pending_token, at, profile(), &key(), any_event())
        .await;
    assert_eq!(accept, Err(AcceptInvitationError::InvalidToken));
}

/// `accept` creates the invited user with its API key and consumes the token.
pub async fn accepting_creates_the_user_and_consumes_the_token(store: &Store) {
    let (parent, admin) = organization_with_admin(store).await;
    let organization = child(store, &parent, "Child").await;
    let (created, invitation_token) = invitation(
        store,
        &organization,
        &admin,
        "guest@example.com",
        now(),
        week(),
    )
    .await;
    let api_key = key();
    let at = now();

    let accepted = store
        .invitations
        .accept(&invitation_token, at, profile(), &api_key, any_event())
        .await
        .expect("accepted");
    let again = store
        .invitations
        .accept(&invitation_token, at, profile(), &key(), any_event())
        .await;

    assert_eq!(accepted.identifier, email("guest@example.com").into());
    assert_eq!(accepted.organization_id, organization.id);
    assert_eq!(accepted.role, Role::Managers);
    assert_eq!(accepted.first_name, person("Grace"));
    assert!(accepted.is_active);
    assert_eq!(again, Err(AcceptInvitationError::InvalidToken));
    let authenticated = store
        .users
        .authenticate(&api_key.hash, now())
        .await
        .expect("ok");
    assert_eq!(authenticated.map(|a| a.user), Some(accepted.clone()));
    let login = store
        .users
        .find_for_login(accepted.identifier.as_email().expect("a person"))
        .await
        .expect("ok")
        .expect("found");
    assert_eq!(login.password_hash, Some(profile().password_hash));
    let stored = store
        .invitations
        .find(organization.id, created.id)
        .await
        .expect("ok")
        .expect("found");
    assert_eq!(stored.accepted_at, Some(at));
    assert_eq!(stored.status(now()), InvitationStatus::Accepted);
}

/// `accept` refuses an unknown, revoked or expired token, and one of an archived
/// organization until it is restored.
pub async fn an_unknown_revoked_expired_or_archived_token_is_invalid(store: &Store) {
    let (parent, admin) = organization_with_admin(store).await;
    let archived = child(store, &parent, "Archived").await;
    let (revoked, revoked_token) =
        invitation(store, &parent, &admin, "revoked@example.com", now(), week()).await;
    let (expiring, expiring_token) = invitation(
        store,
        &parent,
        &admin,
        "expiring@example.com",
        now(),
        Duration::days(1),
    )
    .await;
    let (_, hidden_token) = invitation(
        store,
        &archived,
        &admin,
        "hidden@example.com",
        now(),
        week(),
    )
    .await;
    store
        .invitations
        .revoke(parent.id, revoked.id, now(), any_event())
        .await
        .expect("revoked");
    store
        .organizations
        .archive_child(archived.id, None, now(), any_event())
        .await
        .expect("archived");
    let accept = |token_hash, at| {
        let invitations = store.invitations.clone();
        async move {
            invitations
                .accept(&token_hash, at, profile(), &key(), any_event())
                .await
                .map(|user| user.id)
        }
    };

    let unknown = accept(token(), now()).await;
    let of_revoked = accept(revoked_token, now()).await;
    let at_expiry = accept(expiring_token.clone(), expiring.expires_at).await;
    let of_archived = accept(hidden_token.clone(), now()).await;

    let invalid = Err(AcceptInvitationError::InvalidToken);
    assert_eq!(unknown, invalid);
    assert_eq!(of_revoked, invalid);
    assert_eq!(at_expiry, invalid);
    assert_eq!(of_archived, invalid);
    assert_eq!(
        store
            .users
            .identifier_taken(&email("hidden@example.com"))
            .await,
        Ok(false)
    );
    let before_expiry = accept(expiring_token, expiring.expires_at - Duration::seconds(1)).await;
    assert!(before_expiry.is_ok(), "{before_expiry:?}");
    store
        .organizations
        .restore(archived.id, now(), any_event())
        .await
        .expect("restored");
    let after_restore = accept(hidden_token, now()).await;
    assert!(after_restore.is_ok(), "{after_restore:?}");
}

/// `accept` of an identifier a user took meanwhile: `IdentifierTaken`, and the token
/// stays unused.
pub async fn accepting_a_taken_identifier_is_refused_and_keeps_the_token(store: &Store) {
    let (parent, admin) = organization_with_admin(store).await;
    let other = root(store, "Other").await;
    let (created, invitation_token) =
        invitation(store, &parent, &admin, "guest@example.com", now(), week()).await;
    let (squatter, _) = user(store, &other, "guest@example.com", Role::Users).await;

    let result = store
        .invitations
        .accept(&invitation_token, now(), profile(), &key(), any_event())
        .await;

    assert_eq!(result, Err(AcceptInvitationError::IdentifierTaken));
    let stored = store
        .invitations
        .find(parent.id, created.id)
        .await
        .expect("ok")
        .expect("found");
    assert_eq!(stored.status(now()), InvitationStatus::Pending);
    assert_eq!(stored.accepted_at, None);
    let owner = store
        .users
        .find_for_login(&email("guest@example.com"))
        .await
        .expect("ok")
        .expect("found");
    assert_eq!(owner.user.id, squatter.id);
}

/// Twenty simultaneous invitations of one address into one organization: one stored,
/// the others `AlreadyInvited`, one e-mail queued.
pub async fn twenty_simultaneous_invitations_of_one_address_store_exactly_one(store: &Store) {
    let (organization, admin) = organization_with_admin(store).await;
    let recipient = LimitKey::invites_to(&email("guest@example.com"));
    let allowances = [
        (recipient.clone(), limit(5, Duration::hours(1))),
        (
            LimitKey::InvitesFromOrganization(organization.id),
            limit(200, Duration::hours(1)),
        ),
    ];
    let attempts = (0..20).map(|_| {
        let invitations = store.invitations.clone();
        let new = new_invitation(&organization, &admin, "guest@example.com", now(), week());
        let to = new.identifier.clone();
        let allowances = allowances.clone();
        async move {
            invitations
                .create(
                    new,
                    mail(EmailKind::Invitation, &to, "Hi"),
                    &allowances,
                    any_event(),
                )
                .await
        }
    });

    let results = join_all(attempts).await;

    let stored = results.iter().filter(|result| result.is_ok()).count();
    let refused = results
        .iter()
        .filter(|result| matches!(result, Err(CreateInvitationError::AlreadyInvited)))
        .count();
    assert_eq!((stored, refused), (1, 19), "{results:?}");
    let listed = store
        .invitations
        .list(organization.id, None, now(), PageRequest::default())
        .await
        .expect("listed");
    assert_eq!(listed.total, 1);
    assert_eq!(store.outbox.backlog().await, Ok(1));
    let counted = store
        .rate_limits
        .window(&recipient, now() - Duration::hours(1))
        .await
        .expect("counted");
    assert_eq!(counted.count, 1);
}

/// `create` takes one event of each allowance with the invitation; a refused one
/// (taken, already invited, or over an allowance) stores, queues and counts nothing.
pub async fn an_invitation_takes_its_allowances_and_a_refused_one_takes_none(store: &Store) {
    let (first, admin) = organization_with_admin(store).await;
    let second = child(store, &first, "Second").await;
    let third = child(store, &first, "Third").await;
    let recipient = LimitKey::invites_to(&email("Guest@example.com"));
    let allowances = |organization: OrganizationId| {
        [
            (recipient.clone(), limit(2, Duration::hours(1))),
            (
                LimitKey::InvitesFromOrganization(organization),
                limit(200, Duration::hours(1)),
            ),
        ]
    };
    let create = |organization: &Organization, identifier: &str| {
        let new = new_invitation(organization, &admin, identifier, now(), week());
        let to = new.identifier.clone();
        let allowances = allowances(organization.id);
        let invitations = store.invitations.clone();
        async move {
            invitations
                .create(
                    new,
                    mail(EmailKind::Invitation, &to, "Hi"),
                    &allowances,
                    any_event(),
                )
                .await
                .map(|invitation| invitation.id)
        }
    };
    let counted = || async {
        store
            .rate_limits
            .window(&recipient, now() - Duration::hours(1))
            .await
            .expect("counted")
            .count
    };

    let stored = create(&first, "Guest@example.com").await;
    let after_one = counted().await;
    let duplicate = create(&first, "Guest@example.com").await;
    let taken = create(&first, "admin@example.com").await;
    let after_refusals = counted().await;
    let elsewhere = create(&second, "guest@example.com").await;
    let over = create(&third, "GUEST@example.com").await;

    assert!(stored.is_ok(), "{stored:?}");
    assert_eq!(after_one, 1);
    assert_eq!(duplicate, Err(CreateInvitationError::AlreadyInvited));
    assert_eq!(taken, Err(CreateInvitationError::IdentifierTaken));
    assert_eq!(after_refusals, 1);
    assert!(elsewhere.is_ok(), "{elsewhere:?}");
    assert!(
        matches!(over, Err(CreateInvitationError::Limited(reached))
            if reached.retry_after <= Duration::hours(1)),
        "{over:?}"
    );
    assert_eq!(counted().await, 2);
    let in_third = store
        .invitations
        .list(third.id, None, now(), PageRequest::default())
        .await
        .expect("listed");
    assert_eq!(in_third.total, 0);
    assert_eq!(store.outbox.backlog().await, Ok(2));
}

/// `resend` takes one event of each allowance with the new e-mail; a refused one
/// (conflict, or over an allowance) changes, queues and counts nothing.
pub async fn resending_takes_its_allowances_and_a_refused_resend_takes_none(store: &Store) {
    let (organization, admin) = organization_with_admin(store).await;
    let (pending, pending_token) = invitation(
        store,
        &organization,
        &admin,
        "guest@example.com",
        now(),
        week(),
    )
    .await;
    let (revoked, _) = invitation(
        store,
        &organization,
        &admin,
        "other@example.com",
        now(),
        week(),
    )
    .await;
    store
        .invitations
        .revoke(organization.id, revoked.id, now(), any_event())
        .await
        .expect("revoked");
    let key = LimitKey::InvitesFromOrganization(organization.id);
    let allowances = [(key.clone(), limit(1, Duration::hours(1)))];
    let resend = |id: InvitationId| {
        let invitations = store.invitations.clone();
        let allowances = allowances.clone();
        async move {
            invitations
                .resend(
                    organization.id,
                    id,
                    &token(),
                    now() + week(),
                    now(),
                    mail(EmailKind::Invitation, &email("guest@example.com"), "Again"),
                    &allowances,
                    any_event(),
                )
                .await
                .map(|invitation| invitation.id)
        }
    };

    let of_revoked = resend(revoked.id).await;
    let first = resend(pending.id).await;
    let second = resend(pending.id).await;

    assert_eq!(
        of_revoked,
        Err(InvitationChangeError::Conflict(InvitationConflict::Revoked))
    );
    assert_eq!(first, Ok(pending.id));
    assert!(
        matches!(second, Err(InvitationChangeError::Limited(_))),
        "{second:?}"
    );
    let counted = store
        .rate_limits
        .window(&key, now() - Duration::hours(1))
        .await
        .expect("counted");
    assert_eq!(counted.count, 1);
    assert_eq!(store.outbox.backlog().await, Ok(3));
    let old = store
        .invitations
        .accept(
            &pending_token,
            now(),
            profile(),
            &crate::fixtures::key(),
            any_event(),
        )
        .await;
    assert_eq!(old, Err(AcceptInvitationError::InvalidToken));
}

/// `token_is_open`: only for the token of a pending invitation of a live organization,
/// before its expiry.
pub async fn only_the_token_of_a_pending_invitation_is_open(store: &Store) {
    let (parent, admin) = organization_with_admin(store).await;
    let archived = child(store, &parent, "Archived").await;
    let (_, open) = invitation(store, &parent, &admin, "open@example.com", now(), week()).await;
    let (revoked, revoked_token) =
        invitation(store, &parent, &admin, "revoked@example.com", now(), week()).await;
    let (expiring, expiring_token) = invitation(
        store,
        &parent,
        &admin,
        "expiring@example.com",
        now(),
        Duration::days(1),
    )
    .await;
    let (_, used) = invitation(store, &parent, &admin, "used@example.com", now(), week()).await;
    let (_, hidden) = invitation(
        store,
        &archived,
        &admin,
        "hidden@example.com",
        now(),
        week(),
    )
    .await;
    store
        .invitations
        .revoke(parent.id, revoked.id, now(), any_event())
        .await
        .expect("revoked");
    store
        .invitations
        .accept(&used, now(), profile(), &key(), any_event())
        .await
        .expect("accepted");
    store
        .organizations
        .archive_child(archived.id, None, now(), any_event())
        .await
        .expect("archived");
    let is_open = |token_hash, at| {
        let invitations = store.invitations.clone();
        async move { invitations.token_is_open(&token_hash, at).await }
    };

    assert_eq!(is_open(open, now()).await, Ok(true));
    assert_eq!(is_open(token(), now()).await, Ok(false));
    assert_eq!(is_open(revoked_token, now()).await, Ok(false));
    assert_eq!(
        is_open(expiring_token.clone(), expiring.expires_at).await,
        Ok(false)
    );
    assert_eq!(
        is_open(expiring_token, expiring.expires_at - Duration::seconds(1)).await,
        Ok(true)
    );
    assert_eq!(is_open(used, now()).await, Ok(false));
    assert_eq!(is_open(hidden, now()).await, Ok(false));
}

/// `preview`: what `token_is_open` opens, read without consuming it; nothing for a
/// revoked, used, expired or archived one.
pub async fn a_preview_shows_only_a_usable_invitation_and_consumes_nothing(store: &Store) {
    let (parent, admin) = organization_with_admin(store).await;
    let archived = child(store, &parent, "Archived").await;
    let (_, open) = invitation(store, &parent, &admin, "open@example.com", now(), week()).await;
    let (revoked, revoked_token) =
        invitation(store, &parent, &admin, "revoked@example.com", now(), week()).await;
    let (expiring, expiring_token) = invitation(
        store,
        &parent,
        &admin,
        "expiring@example.com",
        now(),
        Duration::days(1),
    )
    .await;
    let (_, used) = invitation(store, &parent, &admin, "used@example.com", now(), week()).await;
    let (_, hidden) = invitation(
        store,
        &archived,
        &admin,
        "hidden@example.com",
        now(),
        week(),
    )
    .await;
    store
        .invitations
        .revoke(parent.id, revoked.id, now(), any_event())
        .await
        .expect("revoked");
    store
        .invitations
        .accept(&used, now(), profile(), &key(), any_event())
        .await
        .expect("accepted");
    store
        .organizations
        .archive_child(archived.id, None, now(), any_event())
        .await
        .expect("archived");
    let preview = |token_hash, at| {
        let invitations = store.invitations.clone();
        async move { invitations.preview(&token_hash, at).await }
    };

    let shown = preview(open.clone(), now())
        .await
        .expect("read")
        .expect("shown");
    let again = preview(open.clone(), now()).await.expect("read");

    assert_eq!(shown.organization_name, parent.name);
    assert_eq!(shown.identifier, email("open@example.com"));
    assert_eq!(shown.role, Role::Managers);
    assert_eq!(shown.invited_by, admin.identifier.as_email().cloned());
    assert_eq!(again, Some(shown));
    assert_eq!(preview(token(), now()).await, Ok(None));
    assert_eq!(preview(revoked_token, now()).await, Ok(None));
    assert_eq!(
        preview(expiring_token.clone(), expiring.expires_at).await,
        Ok(None)
    );
    assert!(matches!(
        preview(expiring_token, expiring.expires_at - Duration::seconds(1)).await,
        Ok(Some(_))
    ));
    assert_eq!(preview(used, now()).await, Ok(None));
    assert_eq!(preview(hidden, now()).await, Ok(None));
    // Viewing consumed nothing: the token still accepts.
    assert!(
        store
            .invitations
            .accept(&open, now(), profile(), &key(), any_event())
            .await
            .is_ok()
    );
}

/// Ten simultaneous acceptances of one token: exactly one user.
pub async fn ten_simultaneous_acceptances_of_one_token_create_exactly_one_user(store: &Store) {
    let (organization, admin) = organization_with_admin(store).await;
    let (_, invitation_token) = invitation(
        store,
        &organization,
        &admin,
        "guest@example.com",
        now(),
        week(),
    )
    .await;
    let attempts = (0..10).map(|_| {
        let invitations = store.invitations.clone();
        let invitation_token = invitation_token.clone();
        async move {
            invitations
                .accept(&invitation_token, now(), profile(), &key(), any_event())
                .await
        }
    });

    let results = join_all(attempts).await;

    let accepted = results.iter().filter(|result| result.is_ok()).count();
    let refused = results
        .iter()
        .filter(|result| matches!(result, Err(AcceptInvitationError::InvalidToken)))
        .count();
    assert_eq!((accepted, refused), (1, 9), "{results:?}");
    assert_eq!(
        store
            .users
            .identifier_taken(&email("guest@example.com"))
            .await,
        Ok(true)
    );
}

// Opt-outs.

/// `record`: `Created` (with its notice queued) then `Updated` (origin and date, no
/// notice).
pub async fn recording_an_opt_out_twice_creates_then_updates_and_queues_one_notice(store: &Store) {
    let organization = root(store, "Root").await;
    let first_at = now() - Duration::hours(2);
    let opt_out = OptOut {
        organization_id: organization.id,
        address: email("reader@example.com"),
        origin: OptOutOrigin::Mail,
        creation_date: first_at,
    };
    let notice = mail(
        EmailKind::OptOutNotice,
        &email("contact@example.com"),
        "New opt-out",
    );
    let again = OptOut {
        origin: OptOutOrigin::Bounce,
        creation_date: now(),
        ..opt_out.clone()
    };

    let created = store
        .opt_outs
        .record(opt_out.clone(), Some(notice.clone()), any_event())
        .await;
    let updated = store
        .opt_outs
        .record(again.clone(), Some(notice.clone()), any_event())
        .await;

    assert_eq!(created, Ok(OptOutRecorded::Created(opt_out)));
    assert_eq!(updated, Ok(OptOutRecorded::Updated(again.clone())));
    let claimed = store
        .outbox
        .claim_due(now(), 10, Duration::minutes(1))
        .await
        .expect("claimed");
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].email, notice);
    let listed = store
        .opt_outs
        .list(
            organization.id,
            OptOutFilter::default(),
            PageRequest::default(),
        )
        .await
        .expect("listed");
    assert_eq!(listed.items, vec![again]);
    let quiet = OptOut {
        address: email("quiet@example.com"),
        ..opt_out_at(organization.id, "quiet@example.com", now())
    };
    let without_notice = store
        .opt_outs
        .record(quiet.clone(), None, any_event())
        .await;
    assert_eq!(without_notice, Ok(OptOutRecorded::Created(quiet)));
    assert_eq!(store.outbox.backlog().await, Ok(1));
}

fn opt_out_at(organization: OrganizationId, address: &str, at: Timestamp) -> OptOut {
    OptOut {
        organization_id: organization,
        address: email(address),
        origin: OptOutOrigin::Api,
        creation_date: at,
    }
}

async fn seed_opt_outs(store: &Store, organization: OrganizationId) -> Vec<OptOut> {
    let base = now() - Duration::days(1);
    let mut stored = Vec::new();
    for (n, origin) in [
        OptOutOrigin::Web,
        OptOutOrigin::Api,
        OptOutOrigin::Web,
        OptOutOrigin::Abuse,
        OptOutOrigin::Web,
    ]
    .into_iter()
    .enumerate()
    {
        let minutes = i64::try_from(n).unwrap_or(0);
        let opt_out = OptOut {
            origin,
            ..opt_out_at(
                organization,
                &format!("reader{n}@example.com"),
                base + Duration::minutes(minutes),
            )
        };
        store
            .opt_outs
            .record(opt_out.clone(), None, any_event())
            .await
            .expect("recorded");
        stored.push(opt_out);
    }
    stored.reverse();
    stored
}

/// `list`: newest first, paged, filtered by address and origin, per organization.
pub async fn opt_outs_are_listed_newest_first_and_filtered(store: &Store) {
    let organization = root(store, "Root").await;
    let other = root(store, "Other").await;
    let newest_first = seed_opt_outs(store, organization.id).await;
    store
        .opt_outs
        .record(
            opt_out_at(other.id, "reader0@example.com", now()),
            None,
            any_event(),
        )
        .await
        .expect("recorded");

    let all = store
        .opt_outs
        .list(
            organization.id,
            OptOutFilter::default(),
            PageRequest::default(),
        )
        .await
        .expect("listed");
    let page = store
        .opt_outs
        .list(
            organization.id,
            OptOutFilter::default(),
            PageRequest::new(2, 2),
        )
        .await
        .expect("listed");
    let web = store
        .opt_outs
        .list(
            organization.id,
            OptOutFilter {
                address: None,
                origin: Some(OptOutOrigin::Web),
            },
            PageRequest::default(),
        )
        .await
        .expect("listed");
    let one = store
        .opt_outs
        .list(
            organization.id,
            OptOutFilter {
                address: Some("reader3@example.com".to_owned()),
                origin: None,
            },
            PageRequest::default(),
        )
        .await
        .expect("listed");
    let none = store
        .opt_outs
        .list(
            organization.id,
            OptOutFilter {
                address: Some("reader3@example.com".to_owned()),
                origin: Some(OptOutOrigin::Web),
            },
            PageRequest::default(),
        )
        .await
        .expect("listed");

    assert_eq!(all.total, 5);
    assert_eq!(all.items, newest_first);
    assert_eq!(page.items, newest_first[2..4]);
    assert_eq!(web.total, 3);
    assert!(web.items.iter().all(|o| o.origin == OptOutOrigin::Web));
    assert_eq!(one.items, vec![newest_first[1].clone()]);
    assert_eq!((none.total, none.items.len()), (0, 0));
}

/// Every page of an export of `organization`, `limit` rows at a time, following each
/// page's cursor until a page says it was the last.
async fn export_pages(
    store: &Store,
    organization: OrganizationId,
    filter: &OptOutFilter,
    limit: u32,
) -> Vec<Vec<OptOut>> {
    let mut pages = Vec::new();
    let mut after = None;
    loop {
        let page = store
            .opt_outs
            .export_page(organization, filter.clone(), after, limit)
            .await
            .expect("a page");
        pages.push(page.rows);
        match page.next {
            Some(next) => after = Some(next),
            None => return pages,
        }
    }
}

/// `export_page` pages through every matching opt-out in the list order, newest first.
pub async fn the_export_pages_through_every_matching_opt_out_newest_first(store: &Store) {
    let organization = root(store, "Root").await;
    let newest_first = seed_opt_outs(store, organization.id).await;

    let whole = export_pages(store, organization.id, &OptOutFilter::default(), 100).await;
    let pages = export_pages(store, organization.id, &OptOutFilter::default(), 2).await;
    let web = export_pages(
        store,
        organization.id,
        &OptOutFilter {
            address: None,
            origin: Some(OptOutOrigin::Web),
        },
        1,
    )
    .await;

    assert_eq!(whole, vec![newest_first.clone()]);
    let sizes: Vec<usize> = pages.iter().map(Vec::len).collect();
    assert_eq!(sizes, vec![2, 2, 1]);
    assert_eq!(pages.concat(), newest_first);
    let web = web.concat();
    assert_eq!(web.len(), 3);
    assert!(web.iter().all(|o| o.origin == OptOutOrigin::Web));
}

/// Rows of one date are ordered by id, and a page boundary between them loses or
/// repeats none; rows recorded during an export, newer than its cursor, are not in it.
pub async fn the_export_keyset_splits_rows_of_one_date_and_skips_later_ones(store: &Store) {
    let organization = root(store, "Root").await;
    let at = now() - Duration::hours(1);
    let mut recorded = Vec::new();
    for n in 0..5 {
        let opt_out = opt_out_at(organization.id, &format!("same{n}@example.com"), at);
        store
            .opt_outs
            .record(opt_out.clone(), None, any_event())
            .await
            .expect("recorded");
        recorded.push(opt_out);
    }
    recorded.reverse();

    let first = store
        .opt_outs
        .export_page(organization.id, OptOutFilter::default(), None, 2)
        .await
        .expect("a page");
    store
        .opt_outs
        .record(
            opt_out_at(organization.id, "late@example.com", now()),
            None,
            any_event(),
        )
        .await
        .expect("recorded");
    let mut rows = first.rows.clone();
    let mut after = first.next;
    while let Some(cursor) = after {
        let page = store
            .opt_outs
            .export_page(organization.id, OptOutFilter::default(), Some(cursor), 2)
            .await
            .expect("a page");
        rows.extend(page.rows);
        after = page.next;
    }

    assert_eq!(first.rows.len(), 2);
    assert_eq!(
        rows, recorded,
        "every row once, newest id first, the late one not"
    );
}

/// Opt-outs are compliance data: archiving their organization keeps them.
pub async fn opt_outs_are_kept_when_their_organization_is_archived(store: &Store) {
    let parent = root(store, "Root").await;
    let organization = child(store, &parent, "Child").await;
    let opt_out = opt_out_at(organization.id, "reader@example.com", now());
    store
        .opt_outs
        .record(opt_out.clone(), None, any_event())
        .await
        .expect("recorded");

    store
        .organizations
        .archive_child(organization.id, None, now(), any_event())
        .await
        .expect("archived");

    let listed = store
        .opt_outs
        .list(
            organization.id,
            OptOutFilter::default(),
            PageRequest::default(),
        )
        .await
        .expect("listed");
    assert_eq!(listed.items, vec![opt_out]);
}

// Outbox.

async fn queue_notices(store: &Store, count: usize, at: Timestamp) {
    let organization = root(store, "Mailer").await;
    for n in 0..count {
        store
            .opt_outs
            .record(
                opt_out_at(organization.id, &format!("r{n}@example.com"), at),
                Some(mail(
                    EmailKind::OptOutNotice,
                    &email("contact@example.com"),
                    &format!("Notice {n}"),
                )),
                any_event(),
            )
            .await
            .expect("recorded");
    }
}

/// `claim_due` returns due messages in order, up to `limit`, and not again until the
/// lease ends.
pub async fn claimed_messages_are_not_claimed_again_until_their_lease_ends(store: &Store) {
    let at = now();
    queue_notices(store, 3, at).await;
    let lease = Duration::minutes(1);

    let early = store
        .outbox
        .claim_due(at - Duration::seconds(1), 10, lease)
        .await
        .expect("claimed");
    let first = store.outbox.claim_due(at, 2, lease).await.expect("claimed");
    let rest = store
        .outbox
        .claim_due(at, 10, lease)
        .await
        .expect("claimed");
    let during_lease = store
        .outbox
        .claim_due(at + Duration::seconds(30), 10, lease)
        .await
        .expect("claimed");
    let after_lease = store
        .outbox
        .claim_due(at + Duration::seconds(61), 10, lease)
        .await
        .expect("claimed");

    assert!(early.is_empty());
    let subjects: Vec<_> = first.iter().map(|m| m.email.subject.as_str()).collect();
    assert_eq!(subjects, vec!["Notice 0", "Notice 1"]);
    assert_eq!(rest.len(), 1);
    assert_eq!(rest[0].email.subject, "Notice 2");
    assert!(during_lease.is_empty());
    assert_eq!(after_lease.len(), 3);
    assert!(
        after_lease
            .iter()
            .all(|m| m.attempts == 0 && m.created_at == at)
    );
    assert_eq!(store.outbox.backlog().await, Ok(3));
}

/// `mark_failed` counts the attempt, keeps the error and makes the message due again
/// at its next attempt.
pub async fn a_failed_message_comes_back_at_its_next_attempt(store: &Store) {
    let at = now();
    queue_notices(store, 1, at).await;
    let claimed = store
        .outbox
        .claim_due(at, 10, Duration::minutes(10))
        .await
        .expect("claimed");
    let retry_at = at + Duration::minutes(5);

    store
        .outbox
        .mark_failed(claimed[0].lease(), retry_at, "421 try later")
        .await
        .expect("marked");

    let too_early = store
        .outbox
        .claim_due(retry_at - Duration::seconds(1), 10, Duration::minutes(1))
        .await
        .expect("claimed");
    let again = store
        .outbox
        .claim_due(retry_at, 10, Duration::minutes(1))
        .await
        .expect("claimed");
    assert!(too_early.is_empty());
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].id, claimed[0].id);
    assert_eq!(again[0].attempts, 1);
    assert_eq!(store.outbox.backlog().await, Ok(1));
}

/// `mark_delivered` and `mark_dead` take messages out of the backlog for good.
pub async fn delivered_and_dead_messages_leave_the_backlog_for_good(store: &Store) {
    let at = now();
    queue_notices(store, 3, at).await;
    let claimed = store
        .outbox
        .claim_due(at, 10, Duration::minutes(1))
        .await
        .expect("claimed");

    store
        .outbox
        .mark_delivered(claimed[0].lease(), at)
        .await
        .expect("marked");
    store
        .outbox
        .mark_dead(claimed[1].lease(), at, "550 no such user")
        .await
        .expect("marked");

    assert_eq!(store.outbox.backlog().await, Ok(1));
    assert_eq!(store.outbox.dead().await, Ok(1));
    let later = store
        .outbox
        .claim_due(at + Duration::days(365), 10, Duration::minutes(1))
        .await
        .expect("claimed");
    assert_eq!(ids(&later, |m| m.id.get()), vec![claimed[2].id.get()]);
}

/// Two workers claiming in small batches at the same time: every one of a thousand
/// messages is claimed exactly once.
pub async fn two_workers_claiming_a_thousand_messages_get_each_exactly_once(store: &Store) {
    let at = now();
    queue_notices(store, 1000, at).await;
    let worker = |outbox: std::sync::Arc<dyn ports::outbound::Outbox>| async move {
        let mut claimed = Vec::new();
        loop {
            let batch = outbox
                .claim_due(at, 25, Duration::hours(1))
                .await
                .expect("claimed");
            if batch.is_empty() {
                return claimed;
            }
            claimed.extend(batch.into_iter().map(|m| m.id.get()));
        }
    };

    let (first, second) =
        futures::join!(worker(store.outbox.clone()), worker(store.outbox.clone()));

    let mut all: Vec<i64> = first.iter().chain(second.iter()).copied().collect();
    all.sort_unstable();
    let claimed = all.len();
    all.dedup();
    assert_eq!(claimed, 1000, "every message claimed");
    assert_eq!(all.len(), 1000, "no message claimed twice");
}

/// Once delivered or dead, a message keeps no subject or body (an invitation's holds its
/// token); a message still waiting keeps its own.
pub async fn settled_messages_keep_no_subject_or_body_at_rest(store: &Store) {
    let (organization, admin) = organization_with_admin(store).await;
    let at = now();
    for (identifier, secret) in [
        ("delivered@example.com", "tok-delivered-1a2b3c"),
        ("dead@example.com", "tok-dead-4d5e6f"),
        ("failed@example.com", "tok-failed-7a8b9c"),
    ] {
        let new = new_invitation(&organization, &admin, identifier, at, week());
        let mut message = mail(EmailKind::Invitation, &new.identifier, "You are invited");
        message.subject = format!("Join with {secret}");
        message.text = format!("Open https://orgs.test/invitations/accept?token={secret}\n");
        message.html = format!("<a href=\"https://orgs.test/invitations/accept?token={secret}\">");
        store
            .invitations
            .create(new, message, &[], any_event())
            .await
            .expect("created");
    }
    let claimed = store
        .outbox
        .claim_due(at, 10, Duration::minutes(1))
        .await
        .expect("claimed");
    let before = store.rows_of("outbox").await.join("\n");

    store
        .outbox
        .mark_delivered(claimed[0].lease(), at)
        .await
        .expect("marked");
    store
        .outbox
        .mark_dead(claimed[1].lease(), at, "550 no such user")
        .await
        .expect("marked");
    store
        .outbox
        .mark_failed(claimed[2].lease(), at + Duration::minutes(1), "421 later")
        .await
        .expect("marked");

    let after = store.rows_of("outbox").await;
    assert_eq!(after.len(), 3);
    assert!(before.contains("tok-delivered-1a2b3c") && before.contains("tok-dead-4d5e6f"));
    let all = after.join("\n");
    assert!(!all.contains("tok-delivered"), "{all}");
    assert!(!all.contains("tok-dead"), "{all}");
    assert!(all.contains("tok-failed-7a8b9c"), "{all}");
    assert!(all.contains("delivered@example.com") && all.contains("550 no such user"));
    assert_eq!(store.outbox.dead().await, Ok(1));
}

/// A claim whose lease ran out and that another claim took over can neither extend nor
/// settle the message: nothing changes and it says so; the new claim still can.
pub async fn a_claim_whose_lease_another_claim_took_over_changes_nothing(store: &Store) {
    let at = now();
    queue_notices(store, 1, at).await;
    let lease = Duration::minutes(1);
    let first = store
        .outbox
        .claim_due(at, 10, lease)
        .await
        .expect("claimed");
    let later = at + Duration::seconds(61);
    let second = store
        .outbox
        .claim_due(later, 10, lease)
        .await
        .expect("claimed");
    let stale = first[0].lease();
    let lost = Err(LeaseError::lost(stale));

    let renewed = store
        .outbox
        .renew_lease(stale, later + Duration::hours(1))
        .await;
    let delivered = store.outbox.mark_delivered(stale, later).await;
    let failed = store
        .outbox
        .mark_failed(stale, later + Duration::days(1), "421 try again later")
        .await;
    let dead = store
        .outbox
        .mark_dead(stale, later, "550 no such user")
        .await;

    assert_eq!(second.len(), 1);
    assert_eq!(second[0].id, first[0].id);
    assert_ne!(second[0].claim, first[0].claim);
    assert_eq!(renewed, lost);
    assert_eq!(delivered, lost);
    assert_eq!(failed, lost);
    assert_eq!(dead, lost);
    assert_eq!(store.outbox.backlog().await, Ok(1));
    assert_eq!(store.outbox.dead().await, Ok(0));
    let during_second_lease = store
        .outbox
        .claim_due(later + Duration::seconds(30), 10, lease)
        .await
        .expect("claimed");
    assert!(
        during_second_lease.is_empty(),
        "the stale renewal changed nothing"
    );
    let rows = store.rows_of("outbox").await.join("\n");
    assert!(rows.contains("Notice 0"), "{rows}");
    assert!(
        !rows.contains("try again later") && !rows.contains("no such user"),
        "the stale outcomes left no error: {rows}"
    );
    assert_eq!(
        store.outbox.mark_delivered(second[0].lease(), later).await,
        Ok(())
    );
    assert_eq!(
        store.outbox.mark_delivered(second[0].lease(), later).await,
        Err(LeaseError::lost(second[0].lease())),
        "a settled message is settled once"
    );
    assert_eq!(store.outbox.backlog().await, Ok(0));
}

/// A claim whose lease ran out while no other claim took the message still holds: its
/// renewal keeps others off, and its outcome is recorded.
pub async fn a_claim_whose_lease_ran_out_untaken_still_holds(store: &Store) {
    let at = now();
    queue_notices(store, 1, at).await;
    let lease = Duration::minutes(1);
    let claimed = store
        .outbox
        .claim_due(at, 10, lease)
        .await
        .expect("claimed");
    let later = at + Duration::minutes(3);

    let renewed = store
        .outbox
        .renew_lease(claimed[0].lease(), later + lease)
        .await;
    let meanwhile = store
        .outbox
        .claim_due(later + Duration::seconds(30), 10, lease)
        .await
        .expect("claimed");
    let delivered = store.outbox.mark_delivered(claimed[0].lease(), later).await;

    assert_eq!(renewed, Ok(()));
    assert!(meanwhile.is_empty());
    assert_eq!(delivered, Ok(()));
    assert_eq!(store.outbox.backlog().await, Ok(0));
}

/// `prune` deletes the messages delivered or dead at or before the cut, and keeps those
/// settled after it and every message still waiting, however old.
pub async fn pruning_deletes_messages_settled_at_or_before_the_cut_and_keeps_the_rest(
    store: &Store,
) {
    let long_ago = now() - Duration::days(30);
    queue_notices(store, 6, long_ago).await;
    let claimed = store
        .outbox
        .claim_due(long_ago, 10, Duration::minutes(1))
        .await
        .expect("claimed");
    let cut = now() - Duration::days(7);
    let outbox = &store.outbox;
    outbox
        .mark_delivered(claimed[0].lease(), cut - Duration::days(1))
        .await
        .expect("marked");
    outbox
        .mark_delivered(claimed[1].lease(), cut)
        .await
        .expect("marked");
    outbox
        .mark_delivered(claimed[2].lease(), cut + Duration::seconds(1))
        .await
        .expect("marked");
    outbox
        .mark_dead(claimed[3].lease(), cut - Duration::days(1), "550")
        .await
        .expect("marked");
    outbox
        .mark_failed(claimed[4].lease(), cut - Duration::days(1), "421")
        .await
        .expect("marked");
    // claimed[5] is still leased, never settled.

    let pruned = outbox.prune(cut).await;

    assert_eq!(pruned, Ok(3));
    let rows = store.rows_of("outbox").await;
    assert_eq!(rows.len(), 3, "{rows:?}");
    assert_eq!(outbox.dead().await, Ok(0));
    assert_eq!(outbox.backlog().await, Ok(2));
    let due = outbox
        .claim_due(now(), 10, Duration::minutes(1))
        .await
        .expect("claimed");
    let mut subjects: Vec<_> = due.iter().map(|m| m.email.subject.clone()).collect();
    subjects.sort();
    assert_eq!(subjects, vec!["Notice 4", "Notice 5"]);
    assert_eq!(outbox.prune(cut).await, Ok(0));
}

/// One worker extends its expired leases and sends while another claims the same
/// messages: each message is sent (renewed or claimed) by exactly one of them, and
/// marked delivered exactly once.
pub async fn two_workers_racing_on_expired_leases_never_both_send_or_mark_one_message(
    store: &Store,
) {
    const MESSAGES: usize = 60;
    let at = now();
    queue_notices(store, MESSAGES, at).await;
    let lease = Duration::minutes(1);
    let stale = store
        .outbox
        .claim_due(at, 100, lease)
        .await
        .expect("claimed");
    assert_eq!(stale.len(), MESSAGES);
    let later = at + lease + Duration::seconds(1);
    let first = {
        let outbox = store.outbox.clone();
        async move {
            let mut sent = Vec::new();
            for message in stale {
                let held = message.lease();
                match outbox.renew_lease(held, later + lease).await {
                    Ok(()) => {}
                    Err(LeaseError::Lost { .. }) => continue,
                    Err(error) => panic!("{error}"),
                }
                sent.push(message.id.get());
                outbox
                    .mark_delivered(held, later)
                    .await
                    .expect("a renewed lease holds until marked");
            }
            sent
        }
    };
    let second = {
        let outbox = store.outbox.clone();
        async move {
            let mut sent = Vec::new();
            loop {
                let batch = outbox.claim_due(later, 3, lease).await.expect("claimed");
                if batch.is_empty() {
                    return sent;
                }
                for message in batch {
                    sent.push(message.id.get());
                    outbox
                        .mark_delivered(message.lease(), later)
                        .await
                        .expect("a fresh claim holds until marked");
                }
            }
        }
    };

    let (first, second) = futures::join!(first, second);

    let mut all: Vec<i64> = first.iter().chain(second.iter()).copied().collect();
    all.sort_unstable();
    let sends = all.len();
    all.dedup();
    assert_eq!(all.len(), MESSAGES, "every message sent");
    assert_eq!(sends, MESSAGES, "no message sent twice");
    assert_eq!(store.outbox.backlog().await, Ok(0));
}

// Health.

/// `ping` answers and `pool_usage` reports a sane pool.
pub async fn the_storage_answers_pings_and_reports_its_pool(store: &Store) {
    let ping = store.health.ping().await;

    let usage = store.health.pool_usage();

    assert_eq!(ping, Ok(()));
    assert!(usage.max >= 1);
    assert!(
        usage.idle <= usage.size && usage.size <= usage.max,
        "{usage:?}"
    );
}

// Members.

fn member_filter(role: Option<Role>, identifier: Option<&str>) -> MemberFilter {
    MemberFilter {
        role,
        identifier: identifier.map(str::to_owned),
        kind: None,
    }
}

/// How many administrators an organization has, as the member list tells.
async fn administrators(store: &Store, organization: OrganizationId) -> u64 {
    store
        .members
        .list(
            organization,
            member_filter(Some(Role::Administrators), None),
            PageRequest::default(),
        )
        .await
        .expect("listed")
        .total
}

/// `list`: the organization's members by id, paged, filtered by role and by a
/// case-insensitive identifier fragment whose `%` and `_` match only themselves.
pub async fn members_are_listed_by_id_and_filtered_by_role_and_identifier(store: &Store) {
    let (organization, admin) = organization_with_admin(store).await;
    let other = root(store, "Other").await;
    let (grace, _) = user(
        store,
        &organization,
        "Grace.Hopper@example.com",
        Role::Managers,
    )
    .await;
    let (underscore, _) = user(store, &organization, "a_b@example.com", Role::Users).await;
    let (plain, _) = user(store, &organization, "axb@example.com", Role::Managers).await;
    let (percent, _) = user(store, &organization, "100%off@example.com", Role::Users).await;
    let (lookalike, _) = user(store, &organization, "100xoff@example.com", Role::Users).await;
    user(store, &other, "grace@example.com", Role::Managers).await;
    let list = |filter: MemberFilter, page: PageRequest| {
        let members = store.members.clone();
        async move {
            members
                .list(organization.id, filter, page)
                .await
                .expect("listed")
        }
    };

    let first = list(member_filter(None, None), PageRequest::new(1, 4)).await;
    let second = list(member_filter(None, None), PageRequest::new(2, 4)).await;
    let managers = list(
        member_filter(Some(Role::Managers), None),
        PageRequest::default(),
    )
    .await;
    let by_name = list(member_filter(None, Some("grace.h")), PageRequest::default()).await;
    let by_underscore = list(member_filter(None, Some("a_b")), PageRequest::default()).await;
    let by_percent = list(member_filter(None, Some("0%o")), PageRequest::default()).await;
    let both = list(
        member_filter(Some(Role::Users), Some("example")),
        PageRequest::default(),
    )
    .await;
    let none = list(member_filter(None, Some("nobody")), PageRequest::default()).await;

    assert_eq!(first.total, 6);
    assert_eq!(first.request, PageRequest::new(1, 4));
    assert_eq!(
        ids(&first.items, |u| u.id.get()),
        vec![
            admin.id.get(),
            grace.id.get(),
            underscore.id.get(),
            plain.id.get()
        ]
    );
    assert_eq!(
        ids(&second.items, |u| u.id.get()),
        vec![percent.id.get(), lookalike.id.get()]
    );
    assert_eq!(first.items[1], grace);
    assert_eq!(
        ids(&managers.items, |u| u.id.get()),
        vec![grace.id.get(), plain.id.get()]
    );
    assert_eq!(managers.total, 2);
    assert_eq!(ids(&by_name.items, |u| u.id.get()), vec![grace.id.get()]);
    assert_eq!(
        ids(&by_underscore.items, |u| u.id.get()),
        vec![underscore.id.get()]
    );
    assert_eq!(
        ids(&by_percent.items, |u| u.id.get()),
        vec![percent.id.get()]
    );
    assert_eq!(
        ids(&both.items, |u| u.id.get()),
        vec![underscore.id.get(), percent.id.get(), lookalike.id.get()]
    );
    assert_eq!((none.total, none.items.len()), (0, 0));
}

/// `list` and `find` see only the members of a live organization, each in its own.
pub async fn members_are_found_only_in_their_own_live_organization(store: &Store) {
    let (parent, admin) = organization_with_admin(store).await;
    let organization = child(store, &parent, "Child").await;
    let (member, _) = user(store, &organization, "member@example.com", Role::Users).await;

    let found = store.members.find(organization.id, member.id).await;
    let elsewhere = store.members.find(parent.id, member.id).await;
    let missing = store.members.find(parent.id, UserId::new(999_999)).await;
    store
        .organizations
        .archive_child(organization.id, None, now(), any_event())
        .await
        .expect("archived");
    let archived = store.members.find(organization.id, member.id).await;
    let archived_list = store
        .members
        .list(
            organization.id,
            MemberFilter::default(),
            PageRequest::default(),
        )
        .await
        .expect("listed");

    assert_eq!(found, Ok(Some(member.clone())));
    assert_eq!(elsewhere, Ok(None));
    assert_eq!(missing, Ok(None));
    assert_eq!(archived, Ok(None));
    assert_eq!((archived_list.total, archived_list.items.len()), (0, 0));
    assert_eq!(
        store.members.find(parent.id, admin.id).await,
        Ok(Some(admin))
    );
}

/// `change_role`: an administrator of the organization or of its parent gives a member
/// a new role; the organization's version does not move.
pub async fn changing_a_role_returns_the_member_with_its_new_role(store: &Store) {
    let (parent, admin) = organization_with_admin(store).await;
    let organization = child(store, &parent, "Child").await;
    let (local_admin, _) = user(
        store,
        &organization,
        "local@example.com",
        Role::Administrators,
    )
    .await;
    let (member, _) = user(store, &organization, "member@example.com", Role::Managers).await;
    let (second, _) = user(store, &parent, "second@example.com", Role::Administrators).await;

    let by_local = store
        .members
        .change_role(
            organization.id,
            member.id,
            Role::Users,
            local_admin.id,
            now(),
            None,
        )
        .await;
    let by_parent = store
        .members
        .change_role(
            organization.id,
            member.id,
            Role::Collaborators,
            admin.id,
            now(),
            None,
        )
        .await;
    let self_demotion = store
        .members
        .change_role(parent.id, second.id, Role::Managers, second.id, now(), None)
        .await;

    let expected = User {
        role: Role::Collaborators,
        ..member.clone()
    };
    assert_eq!(
        by_local,
        Ok(User {
            role: Role::Users,
            ..member.clone()
        })
    );
    assert_eq!(by_parent, Ok(expected.clone()));
    assert_eq!(
        store.members.find(organization.id, member.id).await,
        Ok(Some(expected))
    );
    assert_eq!(self_demotion.map(|u| u.role), Ok(Role::Managers));
    assert_eq!(administrators(store, parent.id).await, 1);
    let unchanged = store
        .organizations
        .find(organization.id)
        .await
        .expect("found")
        .expect("live");
    assert_eq!(unchanged.version, organization.version);
}

/// `change_role` and `remove`: `NotFound` for a member of another organization, a
/// missing member, a missing organization or an archived one.
pub async fn changing_or_removing_a_member_elsewhere_or_in_an_archived_organization_is_not_found(
    store: &Store,
) {
    let (parent, admin) = organization_with_admin(store).await;
    let organization = child(store, &parent, "Child").await;
    let (member, _) = user(store, &organization, "member@example.com", Role::Users).await;
    let missing_organization = OrganizationId::new(999_999);
    let missing_user = UserId::new(999_999);

    let elsewhere = store
        .members
        .change_role(parent.id, member.id, Role::Managers, admin.id, now(), None)
        .await;
    let missing = store
        .members
        .change_role(
            organization.id,
            missing_user,
            Role::Managers,
            admin.id,
            now(),
            None,
        )
        .await;
    let no_organization = store
        .members
        .change_role(
            missing_organization,
            member.id,
            Role::Managers,
            admin.id,
            now(),
            None,
        )
        .await;
    let removed_elsewhere = store
        .members
        .remove(parent.id, member.id, admin.id, any_event())
        .await;
    let removed_missing = store
        .members
        .remove(organization.id, missing_user, admin.id, any_event())
        .await;
    store
        .organizations
        .archive_child(organization.id, None, now(), any_event())
        .await
        .expect("archived");
    let archived = store
        .members
        .change_role(
            organization.id,
            member.id,
            Role::Managers,
            admin.id,
            now(),
            None,
        )
        .await;
    let removed_archived = store
        .members
        .remove(organization.id, member.id, admin.id, any_event())
        .await;

    assert_eq!(elsewhere, Err(MemberChangeError::NotFound));
    assert_eq!(missing, Err(MemberChangeError::NotFound));
    assert_eq!(no_organization, Err(MemberChangeError::NotFound));
    assert_eq!(removed_elsewhere, Err(MemberChangeError::NotFound));
    assert_eq!(removed_missing, Err(MemberChangeError::NotFound));
    assert_eq!(archived, Err(MemberChangeError::NotFound));
    assert_eq!(removed_archived, Err(MemberChangeError::NotFound));
    store
        .organizations
        .restore(organization.id, now(), any_event())
        .await
        .expect("restored");
    assert_eq!(
        store.members.find(organization.id, member.id).await,
        Ok(Some(member))
    );
}

/// The last administrator of a root can be neither demoted nor removed, and that rule
/// comes before the requester's right.
pub async fn the_last_administrator_of_a_root_can_be_neither_demoted_nor_removed(store: &Store) {
    let (organization, admin) = organization_with_admin(store).await;
    let (manager, _) = user(store, &organization, "manager@example.com", Role::Managers).await;

    let demoted = store
        .members
        .change_role(
            organization.id,
            admin.id,
            Role::Managers,
            admin.id,
            now(),
            None,
        )
        .await;
    let removed = store
        .members
        .remove(organization.id, admin.id, admin.id, any_event())
        .await;
    let by_manager = store
        .members
        .change_role(
            organization.id,
            admin.id,
            Role::Users,
            manager.id,
            now(),
            None,
        )
        .await;
    let removed_by_manager = store
        .members
        .remove(organization.id, admin.id, manager.id, any_event())
        .await;
    let kept = store
        .members
        .change_role(
            organization.id,
            admin.id,
            Role::Administrators,
            admin.id,
            now(),
            None,
        )
        .await;

    assert_eq!(demoted, Err(MemberChangeError::LastAdministrator));
    assert_eq!(removed, Err(MemberChangeError::LastAdministrator));
    assert_eq!(by_manager, Err(MemberChangeError::LastAdministrator));
    assert_eq!(
        removed_by_manager,
        Err(MemberChangeError::LastAdministrator)
    );
    assert_eq!(kept, Ok(admin.clone()));
    assert_eq!(
        store.members.find(organization.id, admin.id).await,
        Ok(Some(admin))
    );
}

/// A child may be left without administrators: its parent's administrators manage it.
pub async fn a_child_may_be_left_without_administrators(store: &Store) {
    let (parent, admin) = organization_with_admin(store).await;
    let organization = child(store, &parent, "Child").await;
    let (first, _) = user(
        store,
        &organization,
        "first@example.com",
        Role::Administrators,
    )
    .await;
    let (second, _) = user(
        store,
        &organization,
        "second@example.com",
        Role::Administrators,
    )
    .await;

    let demoted = store
        .members
        .change_role(
            organization.id,
            first.id,
            Role::Users,
            first.id,
            now(),
            None,
        )
        .await;
    let removed = store
        .members
        .remove(organization.id, second.id, admin.id, any_event())
        .await;

    assert_eq!(demoted.map(|u| u.role), Ok(Role::Users));
    assert_eq!(removed, Ok(()));
    assert_eq!(administrators(store, organization.id).await, 0);
}

/// `Forbidden` when the requester is not (or no longer) an active administrator of the
/// organization or of its parent; nothing changes.
pub async fn a_requester_who_is_no_longer_an_administrator_is_forbidden(store: &Store) {
    let (parent, admin) = organization_with_admin(store).await;
    let organization = child(store, &parent, "Child").await;
    let other = root(store, "Other").await;
    let (stranger, _) = user(store, &other, "stranger@example.com", Role::Administrators).await;
    let (child_admin, _) = user(
        store,
        &organization,
        "local@example.com",
        Role::Administrators,
    )
    .await;
    let (manager, _) = user(store, &organization, "manager@example.com", Role::Managers).await;
    let (member, _) = user(store, &parent, "member@example.com", Role::Users).await;
    let (former, _) = user(store, &parent, "former@example.com", Role::Administrators).await;
    store
        .members
        .change_role(parent.id, former.id, Role::Users, admin.id, now(), None)
        .await
        .expect("demoted");

    let by_manager = store
        .members
        .change_role(
            organization.id,
            child_admin.id,
            Role::Users,
            manager.id,
            now(),
            None,
        )
        .await;
    let by_stranger = store
        .members
        .remove(organization.id, manager.id, stranger.id, any_event())
        .await;
    let by_child_admin = store
        .members
        .change_role(
            parent.id,
            member.id,
            Role::Managers,
            child_admin.id,
            now(),
            None,
        )
        .await;
    let by_former = store
        .members
        .remove(parent.id, member.id, former.id, any_event())
        .await;
    let by_missing = store
        .members
        .remove(parent.id, member.id, UserId::new(999_999), any_event())
        .await;

    assert_eq!(by_manager, Err(MemberChangeError::Forbidden));
    assert_eq!(by_stranger, Err(MemberChangeError::Forbidden));
    assert_eq!(by_child_admin, Err(MemberChangeError::Forbidden));
    assert_eq!(by_former, Err(MemberChangeError::Forbidden));
    assert_eq!(by_missing, Err(MemberChangeError::Forbidden));
    assert_eq!(
        store.members.find(organization.id, child_admin.id).await,
        Ok(Some(child_admin))
    );
    assert_eq!(
        store.members.find(organization.id, manager.id).await,
        Ok(Some(manager))
    );
    assert_eq!(
        store.members.find(parent.id, member.id).await,
        Ok(Some(member))
    );
}

/// `remove` deletes the member with their API keys and sessions; their identifier is
/// free again, and the invitations they sent stay, without inviter.
pub async fn removing_a_member_deletes_their_credentials_and_frees_their_identifier(store: &Store) {
    let (organization, admin) = organization_with_admin(store).await;
    let (member, api_key) = user(
        store,
        &organization,
        "member@example.com",
        Role::Administrators,
    )
    .await;
    let (other, other_key) = user(store, &organization, "other@example.com", Role::Users).await;
    let session = token();
    let at = now();
    store
        .users
        .create_session(member.id, &session, at, at + week())
        .await
        .expect("session");
    let (sent, _) = invitation(
        store,
        &organization,
        &member,
        "guest@example.com",
        at,
        week(),
    )
    .await;

    let removed = store
        .members
        .remove(organization.id, member.id, admin.id, any_event())
        .await;

    assert_eq!(removed, Ok(()));
    assert_eq!(
        store.members.find(organization.id, member.id).await,
        Ok(None)
    );
    assert_eq!(store.users.authenticate(&api_key, now()).await, Ok(None));
    assert_eq!(store.users.authenticate(&session, now()).await, Ok(None));
    assert_eq!(
        store
            .users
            .identifier_taken(member.identifier.as_email().expect("a person"))
            .await,
        Ok(false)
    );
    let kept = store
        .invitations
        .find(organization.id, sent.id)
        .await
        .expect("ok")
        .expect("the invitation stays");
    assert!(kept.invited_by.is_none());
    let authenticated = store
        .users
        .authenticate(&other_key, now())
        .await
        .expect("ok");
    assert_eq!(authenticated.map(|a| a.user), Some(other));
    let again = store
        .users
        .create(
            new_user(organization.id, "member@example.com", Role::Users),
            &key(),
            now(),
            any_event(),
        )
        .await;
    assert!(again.is_ok(), "{again:?}");
    assert_eq!(administrators(store, organization.id).await, 1);
}

/// One attempt of the races below: `requester` demotes or removes `member`.
async fn demote_or_remove(
    store: &Store,
    organization: OrganizationId,
    member: UserId,
    requester: UserId,
    remove: bool,
) -> Result<(), MemberChangeError> {
    if remove {
        store
            .members
            .remove(organization, member, requester, any_event())
            .await
    } else {
        store
            .members
            .change_role(organization, member, Role::Managers, requester, now(), None)
            .await
            .map(drop)
    }
}

/// Two administrators of a root demoting (or removing) each other at once: exactly one
/// succeeds, the other gets `LastAdministrator`, one administrator is left.
pub async fn two_administrators_demoting_each_other_at_once_leave_exactly_one(store: &Store) {
    for round in 0..4 {
        let organization = root(store, &format!("Root {round}")).await;
        let (a, _) = user(
            store,
            &organization,
            &format!("a{round}@example.com"),
            Role::Administrators,
        )
        .await;
        let (b, _) = user(
            store,
            &organization,
            &format!("b{round}@example.com"),
            Role::Administrators,
        )
        .await;
        let remove = round % 2 == 1;

        let (a_on_b, b_on_a) = futures::join!(
            demote_or_remove(store, organization.id, b.id, a.id, remove),
            demote_or_remove(store, organization.id, a.id, b.id, !remove),
        );

        let outcomes = [a_on_b.clone(), b_on_a.clone()];
        let succeeded = outcomes.iter().filter(|outcome| outcome.is_ok()).count();
        let refused = outcomes
            .iter()
            .filter(|outcome| **outcome == Err(MemberChangeError::LastAdministrator))
            .count();
        assert_eq!((succeeded, refused), (1, 1), "{outcomes:?}");
        assert_eq!(administrators(store, organization.id).await, 1);
    }
}

/// Many attempts at once of "A demotes or removes B" and "B demotes or removes A":
/// only one side ever succeeds, the other side only gets `LastAdministrator`, and the
/// root keeps one administrator.
pub async fn many_simultaneous_mutual_demotions_never_leave_a_root_without_administrators(
    store: &Store,
) {
    let organization = root(store, "Root").await;
    let (a, _) = user(store, &organization, "a@example.com", Role::Administrators).await;
    let (b, _) = user(store, &organization, "b@example.com", Role::Administrators).await;
    let attempts = (0..16).map(|n| {
        let (member, requester) = if n % 2 == 0 {
            (b.id, a.id)
        } else {
            (a.id, b.id)
        };
        async move {
            let outcome =
                demote_or_remove(store, organization.id, member, requester, n % 4 >= 2).await;
            (requester, outcome)
        }
    });

    let results = join_all(attempts).await;

    let winners: Vec<UserId> = results
        .iter()
        .filter(|(_, outcome)| outcome.is_ok())
        .map(|(requester, _)| *requester)
        .collect();
    assert!(!winners.is_empty(), "{results:?}");
    let winner = winners[0];
    for (requester, outcome) in &results {
        if *requester == winner {
            assert!(
                matches!(outcome, Ok(()) | Err(MemberChangeError::NotFound)),
                "{results:?}"
            );
        } else {
            assert_eq!(
                *outcome,
                Err(MemberChangeError::LastAdministrator),
                "{results:?}"
            );
        }
    }
    assert_eq!(administrators(store, organization.id).await, 1);
    let left = store
        .members
        .list(
            organization.id,
            member_filter(Some(Role::Administrators), None),
            PageRequest::default(),
        )
        .await
        .expect("listed");
    assert_eq!(ids(&left.items, |u| u.id.get()), vec![winner.get()]);
}

// Rate limits.

fn limit(count: u32, window: Duration) -> RateLimit {
    RateLimit { count, window }
}

fn login_key(identifier: &str) -> LimitKey {
    LimitKey::LoginFailures(identifier.to_owned())
}

/// `record` and `window`: a key's events strictly after `since`, with the oldest.
pub async fn recorded_events_count_in_their_window_strictly_after_since(store: &Store) {
    let t0 = now();
    let key = login_key("ada@example.com");
    let other = LimitKey::InvitesFromOrganization(OrganizationId::new(7));
    let mut recorded = Vec::new();
    for at in [t0, t0 + Duration::seconds(1), t0 + Duration::seconds(2)] {
        recorded.push(store.rate_limits.record(&key, at).await.expect("recorded"));
    }
    store
        .rate_limits
        .record(&other, t0 + Duration::seconds(1))
        .await
        .expect("recorded");

    let all = store
        .rate_limits
        .window(&key, t0 - Duration::microseconds(1))
        .await;
    let after_first = store.rate_limits.window(&key, t0).await;
    let others = store.rate_limits.window(&other, t0).await;
    let unknown = store.rate_limits.window(&login_key("nobody"), t0).await;

    assert_eq!(
        all,
        Ok(EventWindow {
            count: 3,
            oldest: Some(t0)
        })
    );
    assert_eq!(
        after_first,
        Ok(EventWindow {
            count: 2,
            oldest: Some(t0 + Duration::seconds(1))
        })
    );
    assert_eq!(
        others,
        Ok(EventWindow {
            count: 1,
            oldest: Some(t0 + Duration::seconds(1))
        })
    );
    assert_eq!(unknown, Ok(EventWindow::default()));
    let mut distinct: Vec<i64> = recorded.iter().map(|id| id.get()).collect();
    distinct.sort_unstable();
    distinct.dedup();
    assert_eq!(distinct.len(), 3);
}

/// `acquire` records one event per key while under the limit, then refuses with the
/// wait until the oldest event leaves the window, recording nothing; once the window
/// has passed it allows again.
pub async fn acquiring_records_an_event_per_key_until_the_limit_is_reached(store: &Store) {
    let t0 = now();
    let key = login_key("ada@example.com");
    let limits = [(key.clone(), limit(3, Duration::hours(1)))];
    let mut acquired = Vec::new();
    for n in 0..3 {
        let ids = store
            .rate_limits
            .acquire(&limits, t0 + Duration::minutes(n))
            .await
            .expect("acquired");
        assert_eq!(ids.len(), 1);
        acquired.extend(ids);
    }

    let refused = store
        .rate_limits
        .acquire(&limits, t0 + Duration::minutes(10))
        .await;
    let later = store
        .rate_limits
        .acquire(&limits, t0 + Duration::hours(1))
        .await;

    assert_eq!(
        refused,
        Err(AcquireError::Limited(LimitReached {
            retry_after: Duration::minutes(50)
        }))
    );
    assert_eq!(later.map(|ids| ids.len()), Ok(1));
    let window = store
        .rate_limits
        .window(&key, t0 - Duration::seconds(1))
        .await
        .expect("counted");
    assert_eq!(window.count, 4, "the refused attempt recorded nothing");
    let mut distinct: Vec<i64> = acquired.iter().map(|id| id.get()).collect();
    distinct.sort_unstable();
    distinct.dedup();
    assert_eq!(distinct.len(), 3);
}

/// `acquire` under several limits: one reached limit refuses them all, with the longest
/// wait among the reached ones, and records nothing for any key; free keys each get
/// one event.
pub async fn a_reached_limit_among_several_records_nothing_and_reports_the_longest_wait(
    store: &Store,
) {
    let t0 = now();
    let short = LimitKey::InvitesToRecipient("guest@example.com".to_owned());
    let long = LimitKey::InvitesFromOrganization(OrganizationId::new(1));
    let free = login_key("free@example.com");
    let other = login_key("other@example.com");
    store
        .rate_limits
        .record(&short, t0)
        .await
        .expect("recorded");
    store.rate_limits.record(&long, t0).await.expect("recorded");
    let at = t0 + Duration::seconds(30);

    let refused = store
        .rate_limits
        .acquire(
            &[
                (free.clone(), limit(5, Duration::hours(1))),
                (short.clone(), limit(1, Duration::minutes(1))),
                (long.clone(), limit(1, Duration::hours(1))),
            ],
            at,
        )
        .await;
    let allowed = store
        .rate_limits
        .acquire(
            &[
                (free.clone(), limit(5, Duration::hours(1))),
                (other.clone(), limit(5, Duration::hours(1))),
            ],
            at,
        )
        .await
        .expect("acquired");

    assert_eq!(
        refused,
        Err(AcquireError::Limited(LimitReached {
            retry_after: Duration::hours(1) - Duration::seconds(30)
        }))
    );
    assert_eq!(allowed.len(), 2);
    assert_ne!(allowed[0], allowed[1]);
    for key in [&free, &other] {
        let window = store.rate_limits.window(key, t0).await.expect("counted");
        assert_eq!(
            window,
            EventWindow {
                count: 1,
                oldest: Some(at)
            }
        );
    }
    let short_window = store
        .rate_limits
        .window(&short, t0 - Duration::seconds(1))
        .await
        .expect("counted");
    assert_eq!(short_window.count, 1);
}

/// `release` gives events back: they no longer count.
pub async fn released_events_no_longer_count(store: &Store) {
    let at = now();
    let key = login_key("ada@example.com");
    let limits = [(key.clone(), limit(2, Duration::hours(1)))];
    let first = store
        .rate_limits
        .acquire(&limits, at)
        .await
        .expect("acquired");
    let second = store
        .rate_limits
        .acquire(&limits, at)
        .await
        .expect("acquired");
    let full = store.rate_limits.acquire(&limits, at).await;

    store.rate_limits.release(&second).await.expect("released");
    store
        .rate_limits
        .release(&[])
        .await
        .expect("nothing released");
    let again = store.rate_limits.acquire(&limits, at).await;

    assert!(matches!(full, Err(AcquireError::Limited(_))), "{full:?}");
    assert_eq!(again.map(|ids| ids.len()), Ok(1));
    let window = store
        .rate_limits
        .window(&key, at - Duration::seconds(1))
        .await
        .expect("counted");
    assert_eq!(window.count, 2);
    store.rate_limits.release(&first).await.expect("released");
    let window = store
        .rate_limits
        .window(&key, at - Duration::seconds(1))
        .await
        .expect("counted");
    assert_eq!(window.count, 1);
}

/// `prune` forgets the events at or before the cut, of every key, and says how many.
pub async fn pruning_forgets_events_at_or_before_the_cut(store: &Store) {
    let t0 = now();
    let key = login_key("ada@example.com");
    let other = login_key("other@example.com");
    for at in [t0, t0 + Duration::seconds(1), t0 + Duration::seconds(2)] {
        store.rate_limits.record(&key, at).await.expect("recorded");
    }
    store
        .rate_limits
        .record(&other, t0)
        .await
        .expect("recorded");

    let pruned = store.rate_limits.prune(t0 + Duration::seconds(1)).await;
    let again = store.rate_limits.prune(t0 + Duration::seconds(1)).await;

    assert_eq!(pruned, Ok(3));
    assert_eq!(again, Ok(0));
    let since = t0 - Duration::hours(1);
    assert_eq!(
        store.rate_limits.window(&key, since).await,
        Ok(EventWindow {
            count: 1,
            oldest: Some(t0 + Duration::seconds(2))
        })
    );
    assert_eq!(
        store.rate_limits.window(&other, since).await,
        Ok(EventWindow::default())
    );
}

/// Keys made from any client input, however long or odd, are stored and counted.
pub async fn keys_of_any_input_are_stored_and_counted(store: &Store) {
    let at = now();
    let inputs = [
        "x".repeat(3000),
        format!("{}@example.com", "a".repeat(3000)),
        "\u{202e}\u{feff}é\u{1F600}\u{0130}nc \t\r\n'\";--".to_owned(),
    ];

    for input in &inputs {
        let key = LimitKey::login_failures(input);
        let limits = [(key.clone(), limit(1, Duration::hours(1)))];

        let first = store.rate_limits.acquire(&limits, at).await;
        let second = store.rate_limits.acquire(&limits, at).await;

        assert!(first.is_ok(), "{first:?}");
        assert!(
            matches!(second, Err(AcquireError::Limited(_))),
            "{second:?}"
        );
        assert_eq!(
            store
                .rate_limits
                .window(&key, at - Duration::seconds(1))
                .await
                .map(|window| window.count),
            Ok(1)
        );
    }
}

/// Twenty simultaneous acquisitions of a key limited to five: exactly five succeed.
pub async fn twenty_simultaneous_acquisitions_under_a_limit_of_five_succeed_five_times(
    store: &Store,
) {
    let at = now();
    let key = login_key("ada@example.com");
    let limits = [(key.clone(), limit(5, Duration::hours(1)))];
    let attempts = (0..20).map(|_| store.rate_limits.acquire(&limits, at));

    let results = join_all(attempts).await;

    let acquired = results.iter().filter(|result| result.is_ok()).count();
    let limited = results
        .iter()
        .filter(|result| matches!(result, Err(AcquireError::Limited(_))))
        .count();
    assert_eq!((acquired, limited), (5, 15), "{results:?}");
    let window = store
        .rate_limits
        .window(&key, at - Duration::seconds(1))
        .await
        .expect("counted");
    assert_eq!(window.count, 5);
}

fn new_key(name: &str, scope: Scope, expires_at: Option<Timestamp>) -> NewApiKey {
    NewApiKey {
        name: ApiKeyName::parse(name).expect("a valid name"),
        scope,
        material: key(),
        expires_at,
    }
}

/// `create_api_key` and `list_api_keys`: a user's keys, newest first, each with its
/// name, scope, prefix and expiry; the first one is `default`.
pub async fn api_keys_are_listed_newest_first_with_their_name_scope_and_prefix(store: &Store) {
    let organization = root(store, "Keys").await;
    let (member, _) = user(store, &organization, "keys@example.com", Role::Users).await;
    let expiry = now() + Duration::days(90);

    let ci = new_key("ci", Scope::Read, Some(expiry));
    let prefix = ci.material.prefix.clone();
    let made = store
        .users
        .create_api_key(member.id, ci, now(), any_event())
        .await
        .expect("made");
    let listed = store
        .users
        .list_api_keys(member.id, PageRequest::new(1, 50))
        .await
        .expect("listed");

    assert_eq!(listed.total, 2);
    assert_eq!(listed.items[0], made);
    assert_eq!(made.name.as_str(), "ci");
    assert_eq!(made.scope, Scope::Read);
    assert_eq!(made.prefix.as_deref(), Some(prefix.as_str()));
    assert_eq!(made.expires_at, Some(expiry));
    assert_eq!(made.last_used_at, None);
    assert_eq!(listed.items[1].name.as_str(), "default");
    assert_eq!(listed.items[1].scope, Scope::Write);
    assert_eq!(listed.items[1].expires_at, None);
    assert_eq!(listed.items[1].prefix.as_ref().map(String::len), Some(8));
}

/// CONTRACT §11: a name once among a user's live keys, at most 20 live keys; expired
/// keys block neither; another user's keys do not count.
pub async fn a_key_name_is_taken_once_per_user_and_twenty_live_keys_are_the_most(store: &Store) {
    let organization = root(store, "Limits").await;
    let (member, _) = user(store, &organization, "many@example.com", Role::Users).await;
    let (other, _) = user(store, &organization, "other@example.com", Role::Users).await;

    let duplicate = store
        .users
        .create_api_key(
            member.id,
            new_key("default", Scope::Write, None),
            now(),
            any_event(),
        )
        .await;
    let elsewhere = store
        .users
        .create_api_key(
            other.id,
            new_key("shared", Scope::Write, None),
            now(),
            any_event(),
        )
        .await;
    for n in 1..19 {
        store
            .users
            .create_api_key(
                member.id,
                new_key(&format!("k{n}"), Scope::Write, None),
                now(),
                any_event(),
            )
            .await
            .expect("under the limit");
    }
    let expiring = store
        .users
        .create_api_key(
            member.id,
            new_key("shared", Scope::Write, Some(now() + Duration::seconds(30))),
            now(),
            any_event(),
        )
        .await;
    let twenty_first = store
        .users
        .create_api_key(
            member.id,
            new_key("one-more", Scope::Write, None),
            now(),
            any_event(),
        )
        .await;
    let later = now() + Duration::minutes(1);
    let after_expiry = store
        .users
        .create_api_key(
            member.id,
            new_key("shared", Scope::Write, None),
            later,
            any_event(),
        )
        .await;

    assert_eq!(
        duplicate,
        Err(CreateApiKeyError::Refused(KeyRefusal::NameTaken))
    );
    assert!(elsewhere.is_ok(), "{elsewhere:?}");
    assert!(expiring.is_ok(), "{expiring:?}");
    assert_eq!(
        twenty_first,
        Err(CreateApiKeyError::Refused(KeyRefusal::TooMany))
    );
    assert!(after_expiry.is_ok(), "{after_expiry:?}");
    let listed = store
        .users
        .list_api_keys(member.id, PageRequest::new(1, 50))
        .await
        .expect("listed");
    assert_eq!(listed.total, 20);
    let missing = store
        .users
        .create_api_key(
            UserId::new(999_999),
            new_key("x", Scope::Write, None),
            now(),
            any_event(),
        )
        .await;
    assert_eq!(missing, Err(CreateApiKeyError::UserNotFound));
}

/// Many requests making keys for one user at once: the limit and the names hold.
pub async fn simultaneous_key_creations_never_pass_the_limit_or_share_a_name(store: &Store) {
    let organization = root(store, "Race").await;
    let (member, _) = user(store, &organization, "race@example.com", Role::Users).await;

    let distinct = join_all((0..25).map(|n| {
        let users = store.users.clone();
        async move {
            users
                .create_api_key(
                    member.id,
                    new_key(&format!("r{n}"), Scope::Write, None),
                    now(),
                    any_event(),
                )
                .await
        }
    }))
    .await;
    let (other, _) = user(store, &organization, "same@example.com", Role::Users).await;
    let same = join_all((0..10).map(|_| {
        let users = store.users.clone();
        async move {
            users
                .create_api_key(
                    other.id,
                    new_key("same", Scope::Write, None),
                    now(),
                    any_event(),
                )
                .await
        }
    }))
    .await;

    assert_eq!(distinct.iter().filter(|r| r.is_ok()).count(), 19);
    assert!(
        distinct
            .iter()
            .filter(|r| r.is_err())
            .all(|r| *r == Err(CreateApiKeyError::Refused(KeyRefusal::TooMany)))
    );
    assert_eq!(same.iter().filter(|r| r.is_ok()).count(), 1);
    assert!(
        same.iter()
            .filter(|r| r.is_err())
            .all(|r| *r == Err(CreateApiKeyError::Refused(KeyRefusal::NameTaken)))
    );
}

/// `authenticate` reports the credential's scope and, for an API key, its id; a key
/// works until its expiry.
pub async fn a_key_authenticates_with_its_scope_until_it_expires(store: &Store) {
    let organization = root(store, "Scopes").await;
    let (member, default_key) = user(store, &organization, "scope@example.com", Role::Users).await;
    let expiry = now() + Duration::days(1);
    let read = new_key("read", Scope::Read, Some(expiry));
    let read_hash = read.material.hash.clone();
    let made = store
        .users
        .create_api_key(member.id, read, now(), any_event())
        .await
        .expect("made");
    let session = token();
    store
        .users
        .create_session(member.id, &session, now(), now() + Duration::hours(1))
        .await
        .expect("session");

    let by_read = store
        .users
        .authenticate(&read_hash, now())
        .await
        .expect("ok");
    let by_default = store
        .users
        .authenticate(&default_key, now())
        .await
        .expect("ok");
    let by_session = store.users.authenticate(&session, now()).await.expect("ok");
    let before_expiry = store
        .users
        .authenticate(&read_hash, expiry - Duration::seconds(1))
        .await
        .expect("ok");
    let at_expiry = store
        .users
        .authenticate(&read_hash, expiry)
        .await
        .expect("ok");

    let by_read = by_read.expect("the read key works");
    assert_eq!(by_read.user.id, member.id);
    assert_eq!(by_read.scope, Scope::Read);
    assert_eq!(by_read.api_key, Some(made.id));
    let by_default = by_default.expect("the default key works");
    assert_eq!(by_default.scope, Scope::Write);
    assert!(by_default.api_key.is_some());
    let by_session = by_session.expect("the session works");
    assert_eq!(by_session.scope, Scope::Write);
    assert_eq!(by_session.api_key, None);
    assert!(before_expiry.is_some());
    assert_eq!(at_expiry, None);
}

/// `revoke_api_key`: the key stops at once; another user's key or a session is not found.
pub async fn a_revoked_key_stops_at_once_and_only_its_owner_revokes_it(store: &Store) {
    let organization = root(store, "Revoke").await;
    let (owner, _) = user(store, &organization, "owner@example.com", Role::Users).await;
    let (stranger, _) = user(store, &organization, "stranger@example.com", Role::Users).await;
    let ci = new_key("ci", Scope::Write, None);
    let hash = ci.material.hash.clone();
    let made = store
        .users
        .create_api_key(owner.id, ci, now(), any_event())
        .await
        .expect("made");

    let by_stranger = store
        .users
        .revoke_api_key(stranger.id, made.id, any_event())
        .await;
    let still = store.users.authenticate(&hash, now()).await.expect("ok");
    let by_owner = store
        .users
        .revoke_api_key(owner.id, made.id, any_event())
        .await;
    let after = store.users.authenticate(&hash, now()).await.expect("ok");
    let again = store
        .users
        .revoke_api_key(owner.id, made.id, any_event())
        .await;

    assert_eq!(by_stranger, Err(WriteError::NotFound));
    assert!(still.is_some());
    assert_eq!(by_owner, Ok(()));
    assert_eq!(after, None);
    assert_eq!(again, Err(WriteError::NotFound));
}

/// `replace_api_key` replaces only the key named `default`.
pub async fn replacing_the_api_key_replaces_only_the_default_one(store: &Store) {
    let organization = root(store, "Default").await;
    let (member, old_default) = user(store, &organization, "def@example.com", Role::Users).await;
    let ci = new_key("ci", Scope::Read, None);
    let ci_hash = ci.material.hash.clone();
    store
        .users
        .create_api_key(member.id, ci, now(), any_event())
        .await
        .expect("made");
    let fresh = key();

    store
        .users
        .replace_api_key(member.id, &fresh, now(), any_event())
        .await
        .expect("replaced");

    let users = &store.users;
    assert_eq!(users.authenticate(&old_default, now()).await, Ok(None));
    assert!(
        users
            .authenticate(&fresh.hash, now())
            .await
            .expect("ok")
            .is_some()
    );
    assert!(
        users
            .authenticate(&ci_hash, now())
            .await
            .expect("ok")
            .is_some()
    );
    let listed = users
        .list_api_keys(member.id, PageRequest::new(1, 50))
        .await
        .expect("listed");
    assert_eq!(listed.total, 2);
    let default_key = listed
        .items
        .iter()
        .find(|k| k.name.as_str() == "default")
        .expect("a default key");
    assert_eq!(default_key.prefix.as_deref(), Some(fresh.prefix.as_str()));
}

/// `record_key_uses`: one call for many keys; each keeps the latest instant, whatever
/// order the calls come in; unknown ids are skipped.
pub async fn recorded_key_uses_keep_the_latest_instant(store: &Store) {
    let organization = root(store, "Uses").await;
    let (member, _) = user(store, &organization, "uses@example.com", Role::Users).await;
    let mut ids = Vec::new();
    for n in 0..3 {
        let made = store
            .users
            .create_api_key(
                member.id,
                new_key(&format!("u{n}"), Scope::Write, None),
                now(),
                any_event(),
            )
            .await
            .expect("made");
        ids.push(made.id);
    }
    let (early, late) = (now(), now() + Duration::seconds(30));

    store
        .users
        .record_key_uses(&[
            KeyUse {
                key: ids[0],
                at: late,
            },
            KeyUse {
                key: ids[1],
                at: early,
            },
            KeyUse {
                key: ApiKeyId::new(999_999),
                at: late,
            },
        ])
        .await
        .expect("recorded");
    store
        .users
        .record_key_uses(&[
            KeyUse {
                key: ids[0],
                at: early,
            },
            KeyUse {
                key: ids[1],
                at: late,
            },
        ])
        .await
        .expect("recorded");
    store
        .users
        .record_key_uses(&[])
        .await
        .expect("nothing to do");

    let listed = store
        .users
        .list_api_keys(member.id, PageRequest::new(1, 50))
        .await
        .expect("listed");
    let used = |id: ApiKeyId| {
        listed
            .items
            .iter()
            .find(|k| k.id == id)
            .and_then(|k| k.last_used_at)
    };
    assert_eq!(used(ids[0]), Some(late));
    assert_eq!(used(ids[1]), Some(late));
    assert_eq!(used(ids[2]), None);
}
