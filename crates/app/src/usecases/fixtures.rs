//! Values shared by the use-case tests.

use domain::organization::{Nickname, Organization, OrganizationName, Settings, TreeNode};
use domain::user::{PersonName, User};
use domain::{Actor, EmailAddress, OrganizationId, RequestId, Role, Timestamp, UserId, Version};

pub const ROOT: OrganizationId = OrganizationId::new(1);
pub const CHILD: OrganizationId = OrganizationId::new(2);
pub const OTHER_ROOT: OrganizationId = OrganizationId::new(3);

pub fn now() -> Timestamp {
    Timestamp::UNIX_EPOCH + chrono::TimeDelta::days(20_000)
}

pub fn email(value: &str) -> EmailAddress {
    EmailAddress::parse(value).expect("valid address")
}

pub fn organization(id: OrganizationId, parent: Option<OrganizationId>) -> Organization {
    Organization {
        id,
        name: OrganizationName::parse(&format!("Organization {id}")).expect("valid name"),
        contact_email: Some(email(&format!("contact{id}@example.com"))),
        settings: Settings {
            nickname: Nickname::default(),
            ..Settings::default()
        },
        parent,
        can_attach_files: false,
        can_external_optout: false,
        version: Version::new(3),
        created_at: now(),
        updated_at: now(),
    }
}

pub fn root() -> Organization {
    organization(ROOT, None)
}

pub fn child() -> Organization {
    organization(CHILD, Some(ROOT))
}

pub fn other_root() -> Organization {
    organization(OTHER_ROOT, None)
}

pub fn actor(role: Role) -> Actor {
    Actor {
        user_id: UserId::new(10),
        role,
        organization: TreeNode {
            id: ROOT,
            parent: None,
        },
        request_id: RequestId::parse("req-root"),
    }
}

pub fn child_actor(role: Role) -> Actor {
    Actor {
        user_id: UserId::new(20),
        role,
        organization: TreeNode {
            id: CHILD,
            parent: Some(ROOT),
        },
        request_id: RequestId::parse("req-child"),
    }
}

pub fn user(id: UserId, organization_id: OrganizationId, role: Role) -> User {
    User {
        id,
        organization_id,
        identifier: email(&format!("user{id}@example.com")).into(),
        first_name: PersonName::parse("Ada").expect("valid"),
        last_name: PersonName::parse("Lovelace").expect("valid"),
        role,
        is_active: true,
        created_at: now(),
    }
}
