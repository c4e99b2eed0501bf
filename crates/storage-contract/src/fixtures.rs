//! Values and stored rows the checks start from.

use std::sync::atomic::{AtomicU64, Ordering};

use domain::api_key::KeyMaterial;
use domain::audit::{EventAction, EventOrganization, EventTarget, NewEvent};
use domain::invitation::{Invitation, NewInvitation};
use domain::mail::{EmailKind, OutgoingEmail};
use domain::organization::{NewOrganization, Organization, OrganizationName, Settings};
use domain::secret::{SecretToken, TokenHash};
use domain::user::{NewUser, PasswordHash, PersonName, User};
use domain::{Duration, EmailAddress, OrganizationId, Role, Timestamp};

use crate::Store;

/// The current time, to the microsecond (what storage keeps).
#[must_use]
pub fn now() -> Timestamp {
    let micros = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| {
            i64::try_from(elapsed.as_micros()).unwrap_or(i64::MAX)
        });
    Timestamp::from_timestamp_micros(micros).unwrap_or(Timestamp::UNIX_EPOCH)
}

/// An event for a check that is not about events: an operator's, of the organization the
/// call acts on, with no target.
#[must_use]
pub fn any_event() -> NewEvent {
    NewEvent::by_operator(
        EventAction::OrganizationUpdated,
        EventOrganization::ThisOrganization,
        EventTarget::None,
        now(),
    )
}

/// A token hash no other call returns.
#[must_use]
pub fn token() -> TokenHash {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    SecretToken::presented(&format!("token-{n}-{}", now().timestamp_micros())).hash()
}

/// A new API key's material (hash and prefix) no other call returns.
#[must_use]
pub fn key() -> KeyMaterial {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    KeyMaterial::of(&SecretToken::presented(&format!(
        "key-{n}-{}",
        now().timestamp_micros()
    )))
}

/// A valid address.
///
/// # Panics
/// When `value` is no address.
#[must_use]
pub fn email(value: &str) -> EmailAddress {
    EmailAddress::parse(value).expect("a valid e-mail address")
}

/// A name.
///
/// # Panics
/// When `value` is blank or too long.
#[must_use]
pub fn person(value: &str) -> PersonName {
    PersonName::parse(value).expect("a valid name")
}

/// An organization to store.
///
/// # Panics
/// When `name` is blank.
#[must_use]
pub fn new_organization(name: &str, parent: Option<OrganizationId>) -> NewOrganization {
    NewOrganization {
        name: OrganizationName::parse(name).expect("a valid name"),
        contact_email: Some(email("contact@example.com")),
        settings: Settings::default(),
        parent,
        can_attach_files: false,
        can_external_optout: false,
    }
}

/// A stored root organization.
///
/// # Panics
/// When storage fails.
pub async fn root(store: &Store, name: &str) -> Organization {
    store
        .organizations
        .create(new_organization(name, None), now(), any_event())
        .await
        .expect("a root organization is created")
}

/// A stored child of `parent`.
///
/// # Panics
/// When storage fails.
pub async fn child(store: &Store, parent: &Organization, name: &str) -> Organization {
    store
        .organizations
        .create(new_organization(name, Some(parent.id)), now(), any_event())
        .await
        .expect("a child organization is created")
}

/// A user to store.
#[must_use]
pub fn new_user(organization: OrganizationId, identifier: &str, role: Role) -> NewUser {
    NewUser {
        organization_id: organization,
        identifier: email(identifier),
        first_name: person("Ada"),
        last_name: person("Lovelace"),
        role,
        password_hash: Some(PasswordHash::new("$argon2id$v=19$stored".to_owned())),
    }
}

/// A stored user of `organization` with its API key.
///
/// # Panics
/// When storage fails.
pub async fn user(
    store: &Store,
    organization: &Organization,
    identifier: &str,
    role: Role,
) -> (User, TokenHash) {
    let api_key = key();
    let user = store
        .users
        .create(
            new_user(organization.id, identifier, role),
            &api_key,
            now(),
            any_event(),
        )
        .await
        .expect("a user is created");
    (user, api_key.hash)
}

/// An e-mail to queue.
#[must_use]
pub fn mail(kind: EmailKind, to: &EmailAddress, subject: &str) -> OutgoingEmail {
    OutgoingEmail {
        kind,
        to: to.clone(),
        subject: subject.to_owned(),
        text: format!("{subject}\n"),
        html: format!("<p>{subject}</p>"),
    }
}

/// An invitation to store, made at `created_at` and open for `valid_for`.
#[must_use]
pub fn new_invitation(
    organization: &Organization,
    inviter: &User,
    identifier: &str,
    created_at: Timestamp,
    valid_for: Duration,
) -> NewInvitation {
    NewInvitation {
        organization_id: organization.id,
        identifier: email(identifier),
        role: Role::Managers,
        invited_by: inviter.id,
        token_hash: token(),
        created_at,
        expires_at: created_at + valid_for,
    }
}

/// A stored invitation and its token hash.
///
/// # Panics
/// When storage fails.
pub async fn invitation(
    store: &Store,
    organization: &Organization,
    inviter: &User,
    identifier: &str,
    created_at: Timestamp,
    valid_for: Duration,
) -> (Invitation, TokenHash) {
    let new = new_invitation(organization, inviter, identifier, created_at, valid_for);
    let token = new.token_hash.clone();
    let email = mail(EmailKind::Invitation, &new.identifier, "You are invited");
    let invitation = store
        .invitations
        .create(new, email, &[], any_event())
        .await
        .expect("an invitation is created");
    (invitation, token)
}

/// An organization with an administrator, the start of most checks.
///
/// # Panics
/// When storage fails.
pub async fn organization_with_admin(store: &Store) -> (Organization, User) {
    let organization = root(store, "Root organization").await;
    let (admin, _) = user(
        store,
        &organization,
        "admin@example.com",
        Role::Administrators,
    )
    .await;
    (organization, admin)
}
