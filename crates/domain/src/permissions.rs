//! Who may do what to which organization (CONTRACT §4, "Who sees what").
//!
//! Visibility comes first, so that nobody learns which other organizations exist
//! (→ 404); then the role (→ 403).

use crate::api_key::Scope;
use crate::ids::{OrganizationId, UserId};
use crate::organization::TreeNode;
use crate::role::Role;

/// The authenticated user on whose behalf a use case runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Actor {
    /// The user.
    pub user_id: UserId,
    /// The user's role.
    pub role: Role,
    /// The user's organization (U) and its parent.
    pub organization: TreeNode,
    /// The request the actor made (`X-Request-Id`), recorded with the events it causes.
    pub request_id: Option<crate::RequestId>,
}

impl Actor {
    /// The id of the actor's organization.
    #[must_use]
    pub fn organization_id(&self) -> OrganizationId {
        self.organization.id
    }

    /// U and U's children are visible; nothing else is.
    #[must_use]
    pub fn can_see(&self, target: TreeNode) -> bool {
        visible(self.organization.id, target)
    }
}

/// Something an actor may try to do to an organization.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Get it, list it, list its children.
    View,
    /// `PUT`/`PATCH` it.
    Modify,
    /// Create a child of it (the target is U).
    CreateChild,
    /// Delete (archive) it: only a child of U.
    DeleteChild,
    /// Invite into it; list, resend and revoke its invitations.
    ManageInvitations,
    /// List and record its opt-outs.
    ManageOptOuts,
    /// List its members.
    ListMembers,
    /// Change a member's role, remove a member.
    ManageMembers,
    /// Create a service account in it (CONTRACT §11).
    CreateServiceAccount,
    /// Read its audit log (CONTRACT §13).
    ViewEvents,
    /// Manage its webhooks and read their deliveries (CONTRACT §14).
    ManageWebhooks,
}

/// The answer of the policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub enum Access {
    /// Go ahead.
    Allowed,
    /// The target is not visible to the actor (→ 404).
    NotVisible,
    /// Visible, but not for this role (→ 403).
    Forbidden,
}

use Role::{Administrators, Collaborators, Managers, Users};

/// The role table of CONTRACT §4: the roles allowed each action on a visible organization.
#[must_use]
pub const fn allowed_roles(action: Action) -> &'static [Role] {
    match action {
        Action::View => &[Administrators, Managers, Users, Collaborators],
        Action::ManageOptOuts | Action::ListMembers => &[Administrators, Managers],
        Action::Modify
        | Action::CreateChild
        | Action::DeleteChild
        | Action::ManageInvitations
        | Action::ManageMembers
        | Action::CreateServiceAccount
        | Action::ViewEvents
        | Action::ManageWebhooks => &[Administrators],
    }
}

/// Decides whether `actor` may do `action` to `target`.
///
/// Visibility first (an organization outside the actor's own and its children is
/// `NotVisible`, → 404, whatever the role), then the role table ([`allowed_roles`]),
/// then the one special case: an actor's own organization is no child to delete.
///
/// ```
/// use domain::organization::TreeNode;
/// use domain::{Access, Action, Actor, OrganizationId, Role, UserId, authorize};
///
/// let root = TreeNode { id: OrganizationId::new(1), parent: None };
/// let child = TreeNode { id: OrganizationId::new(2), parent: Some(root.id) };
/// let elsewhere = TreeNode { id: OrganizationId::new(3), parent: None };
/// let manager = Actor { user_id: UserId::new(10), role: Role::Managers, organization: root, request_id: None };
/// let admin = Actor { role: Role::Administrators, ..manager };
///
/// // A manager of the root sees its child and lists its opt-outs, but may not change it.
/// assert_eq!(authorize(&manager, Action::ManageOptOuts, child), Access::Allowed);
/// assert_eq!(authorize(&manager, Action::Modify, child), Access::Forbidden);
/// // Nobody learns that another tree exists: 404 before 403.
/// assert_eq!(authorize(&admin, Action::View, elsewhere), Access::NotVisible);
/// // An administrator deletes a child, never the own organization.
/// assert_eq!(authorize(&admin, Action::DeleteChild, child), Access::Allowed);
/// assert_eq!(authorize(&admin, Action::DeleteChild, root), Access::Forbidden);
/// ```
pub fn authorize(actor: &Actor, action: Action, target: TreeNode) -> Access {
    decide(actor.organization.id, actor.role, action, target)
}

/// A user's standing as it is now: read again inside the transaction of a change, so that
/// a requester demoted, deactivated or removed since the request was authorized is not
/// obeyed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Standing {
    /// The user's organization.
    pub organization: OrganizationId,
    /// The user's role.
    pub role: Role,
    /// Whether the user is active.
    pub is_active: bool,
}

/// Decides again, on the requester's current `standing` (`None`: the user is gone),
/// whether they may do `action` to `target`: by the same rules as `authorize`, and
/// `Forbidden` for a missing or inactive user.
pub fn recheck(standing: Option<Standing>, action: Action, target: TreeNode) -> Access {
    match standing {
        Some(standing) if standing.is_active => {
            decide(standing.organization, standing.role, action, target)
        }
        _ => Access::Forbidden,
    }
}

/// Whether a user of `organization` with `role` may do `action` to `target`.
fn decide(organization: OrganizationId, role: Role, action: Action, target: TreeNode) -> Access {
    if !visible(organization, target) {
        return Access::NotVisible;
    }
    if !allowed_roles(action).contains(&role) {
        return Access::Forbidden;
    }
    // Only a child of U can be deleted; U itself answers 403 (CONTRACT §4, DELETE).
    if action == Action::DeleteChild && target.id == organization {
        return Access::Forbidden;
    }
    Access::Allowed
}

/// What a request does, as far as a credential's scope is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// Only reads: `GET` and `HEAD`.
    Read,
    /// Anything else.
    Write,
}

/// CONTRACT §11: a `read` credential may only read; a `write` one (and every session
/// token) may do whatever its user may. Checked before anything else of the request,
/// so that a read-only key learns nothing from a refused write.
pub fn authorize_scope(scope: Scope, operation: Operation) -> Access {
    match (scope, operation) {
        (Scope::Read, Operation::Write) => Access::Forbidden,
        (Scope::Read | Scope::Write, Operation::Read) | (Scope::Write, Operation::Write) => {
            Access::Allowed
        }
    }
}

/// U and U's children are visible to a user of U; nothing else is.
fn visible(organization: OrganizationId, target: TreeNode) -> bool {
    target.id == organization || target.parent == Some(organization)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROOT: OrganizationId = OrganizationId::new(1);
    const CHILD: OrganizationId = OrganizationId::new(2);
    const OTHER_ROOT: OrganizationId = OrganizationId::new(3);
    const OTHER_CHILD: OrganizationId = OrganizationId::new(4);

    fn node(id: OrganizationId, parent: Option<OrganizationId>) -> TreeNode {
        TreeNode { id, parent }
    }

    fn actor_of_root(role: Role) -> Actor {
        Actor {
            user_id: UserId::new(10),
            role,
            organization: node(ROOT, None),
            request_id: None,
        }
    }

    fn actor_of_child(role: Role) -> Actor {
        Actor {
            user_id: UserId::new(11),
            role,
            organization: node(CHILD, Some(ROOT)),
            request_id: None,
        }
    }

    const ALL_ACTIONS: [Action; 11] = [
        Action::View,
        Action::Modify,
        Action::CreateChild,
        Action::DeleteChild,
        Action::ManageInvitations,
        Action::ManageOptOuts,
        Action::ListMembers,
        Action::ManageMembers,
        Action::CreateServiceAccount,
        Action::ViewEvents,
        Action::ManageWebhooks,
    ];

    /// The table of CONTRACT §4, row by row, for a child of U.
    fn expected(action: Action, role: Role) -> Access {
        let yes = Access::Allowed;
        let no = Access::Forbidden;
        let row = match action {
            Action::View => [yes, yes, yes, yes],
            Action::Modify
            | Action::CreateChild
            | Action::DeleteChild
            | Action::ManageInvitations
            | Action::ManageMembers
            | Action::CreateServiceAccount
            | Action::ViewEvents
            | Action::ManageWebhooks => [yes, no, no, no],
            Action::ManageOptOuts | Action::ListMembers => [yes, yes, no, no],
        };
        let column = Role::ALL.iter().position(|r| *r == role).unwrap_or(0);
        row[column]
    }

    #[test]
    fn every_role_and_action_on_a_child_of_u_follows_the_contract_table() {
        for role in Role::ALL {
            for action in ALL_ACTIONS {
                assert_eq!(
                    authorize(&actor_of_root(role), action, node(CHILD, Some(ROOT))),
                    expected(action, role),
                    "{role} {action:?}"
                );
            }
        }
    }

    #[test]
    fn every_role_and_action_on_u_follows_the_table_except_deleting_u() {
        for role in Role::ALL {
            for action in ALL_ACTIONS {
                let want = if action == Action::DeleteChild {
                    Access::Forbidden
                } else {
                    expected(action, role)
                };
                assert_eq!(
                    authorize(&actor_of_root(role), action, node(ROOT, None)),
                    want,
                    "{role} {action:?}"
                );
            }
        }
    }

    #[test]
    fn organizations_outside_u_and_its_children_are_not_visible_to_anyone() {
        for role in Role::ALL {
            for action in ALL_ACTIONS {
                for target in [node(OTHER_ROOT, None), node(OTHER_CHILD, Some(OTHER_ROOT))] {
                    assert_eq!(
                        authorize(&actor_of_root(role), action, target),
                        Access::NotVisible
                    );
                }
            }
        }
    }

    #[test]
    fn a_member_of_a_child_cannot_see_its_parent_or_siblings() {
        let sibling = node(OrganizationId::new(5), Some(ROOT));

        for role in Role::ALL {
            assert_eq!(
                authorize(&actor_of_child(role), Action::View, node(ROOT, None)),
                Access::NotVisible
            );
            assert_eq!(
                authorize(&actor_of_child(role), Action::View, sibling),
                Access::NotVisible
            );
            assert_eq!(
                authorize(&actor_of_child(role), Action::View, node(CHILD, Some(ROOT))),
                Access::Allowed
            );
        }
    }

    #[test]
    fn an_administrator_of_a_child_may_modify_it_but_not_delete_it() {
        let admin = actor_of_child(Role::Administrators);
        let own = node(CHILD, Some(ROOT));

        assert_eq!(authorize(&admin, Action::Modify, own), Access::Allowed);
        assert_eq!(
            authorize(&admin, Action::DeleteChild, own),
            Access::Forbidden
        );
    }

    #[test]
    fn visibility_is_checked_before_the_role() {
        let collaborator = actor_of_root(Role::Collaborators);

        assert_eq!(
            authorize(&collaborator, Action::Modify, node(OTHER_ROOT, None)),
            Access::NotVisible
        );
    }

    #[test]
    fn a_read_scope_only_reads_and_a_write_scope_does_everything() {
        assert_eq!(
            authorize_scope(Scope::Read, Operation::Read),
            Access::Allowed
        );
        assert_eq!(
            authorize_scope(Scope::Read, Operation::Write),
            Access::Forbidden
        );
        assert_eq!(
            authorize_scope(Scope::Write, Operation::Read),
            Access::Allowed
        );
        assert_eq!(
            authorize_scope(Scope::Write, Operation::Write),
            Access::Allowed
        );
    }

    fn standing(organization: OrganizationId, role: Role, is_active: bool) -> Option<Standing> {
        Some(Standing {
            organization,
            role,
            is_active,
        })
    }

    #[test]
    fn an_active_administrator_of_the_organization_or_its_parent_may_still_manage_members() {
        let child = node(CHILD, Some(ROOT));
        for organization in [CHILD, ROOT] {
            assert_eq!(
                recheck(
                    standing(organization, Administrators, true),
                    Action::ManageMembers,
                    child
                ),
                Access::Allowed
            );
        }
        assert_eq!(
            recheck(
                standing(ROOT, Administrators, true),
                Action::ManageMembers,
                node(ROOT, None)
            ),
            Access::Allowed
        );
    }

    #[test]
    fn a_manager_an_inactive_or_a_missing_requester_is_forbidden_on_recheck() {
        let child = node(CHILD, Some(ROOT));
        for current in [
            standing(ROOT, Managers, true),
            standing(CHILD, Users, true),
            standing(ROOT, Administrators, false),
            None,
        ] {
            assert_eq!(
                recheck(current, Action::ManageMembers, child),
                Access::Forbidden,
                "{current:?}"
            );
        }
    }

    #[test]
    fn an_administrator_of_another_root_is_not_visible_on_recheck() {
        assert_eq!(
            recheck(
                standing(OTHER_ROOT, Administrators, true),
                Action::ManageMembers,
                node(CHILD, Some(ROOT))
            ),
            Access::NotVisible
        );
        assert_eq!(
            recheck(
                standing(CHILD, Administrators, true),
                Action::ManageMembers,
                node(ROOT, None)
            ),
            Access::NotVisible
        );
    }
}
