//! Members of an organization: listing filters, role changes, removal, and the rule
//! that a root organization keeps at least one administrator (CONTRACT §5b).

use crate::role::Role;
use crate::user::UserKind;
use crate::validation::{Input, ValidationErrors, filter_text};

/// Filters of the member list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemberFilter {
    /// Only members with this role.
    pub role: Option<Role>,
    /// Only members whose identifier contains this, ignoring case.
    pub identifier: Option<String>,
    /// Only people or only service accounts.
    pub kind: Option<UserKind>,
}

impl MemberFilter {
    /// Builds the filter from `?role=`, `?identifier=` and `?kind=`, reporting every
    /// problem together.
    ///
    /// # Errors
    /// An unknown role, keyed `role`; an identifier with a NUL or of more than 320
    /// characters, keyed `identifier`; a kind other than `human` and `service`, keyed
    /// `kind`.
    pub fn parse(
        role: Option<&str>,
        identifier: Option<&str>,
        kind: Option<&str>,
    ) -> Result<Self, ValidationErrors> {
        let mut errors = ValidationErrors::new();
        let role = errors.collect("role", role.map(Role::parse).transpose());
        let identifier = errors.collect("identifier", identifier.map(filter_text).transpose());
        let kind = errors.collect("kind", kind.map(UserKind::parse).transpose());
        errors.into_result()?;
        let identifier = identifier
            .flatten()
            .map(|value| value.trim().to_lowercase())
            .filter(|value| !value.is_empty());
        Ok(Self {
            role: role.flatten(),
            identifier,
            kind: kind.flatten(),
        })
    }
}

/// Checks the body of `PATCH /organizations/{id}/users/{uid}/`.
///
/// # Errors
/// `role` required, not null, one of the four roles.
pub fn check_role_change(role: Input<String>) -> Result<Role, ValidationErrors> {
    role.required()
        .and_then(|value| Role::parse(&value))
        .map_err(|code| ValidationErrors::single("role", code))
}

/// A change would leave a root organization without administrators (→ 409).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("an organization must keep at least one administrator")]
pub struct LastAdministrator;

/// What happens to a member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberChange {
    /// The member gets this role.
    Role(Role),
    /// The member is removed.
    Removal,
}

/// CONTRACT §5b: a root organization always keeps at least one administrator; a child
/// may be left without (its parent's administrators manage it).
///
/// `administrators` counts the organization's administrators before the change.
///
/// # Errors
/// `LastAdministrator` when the change would leave a root organization without one.
pub fn check_keeps_administrator(
    organization_is_root: bool,
    member_role: Role,
    change: MemberChange,
    administrators: u64,
) -> Result<(), LastAdministrator> {
    let loses_an_administrator =
        member_role == Role::Administrators && change != MemberChange::Role(Role::Administrators);
    if organization_is_root && loses_an_administrator && administrators <= 1 {
        Err(LastAdministrator)
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validation::ErrorCode;

    #[test]
    fn the_last_administrator_of_a_root_can_be_neither_demoted_nor_removed() {
        for change in [
            MemberChange::Role(Role::Managers),
            MemberChange::Role(Role::Collaborators),
            MemberChange::Removal,
        ] {
            assert_eq!(
                check_keeps_administrator(true, Role::Administrators, change, 1),
                Err(LastAdministrator)
            );
        }
    }

    #[test]
    fn one_of_two_administrators_can_be_demoted_or_removed() {
        assert_eq!(
            check_keeps_administrator(true, Role::Administrators, MemberChange::Removal, 2),
            Ok(())
        );
        assert_eq!(
            check_keeps_administrator(
                true,
                Role::Administrators,
                MemberChange::Role(Role::Users),
                2
            ),
            Ok(())
        );
    }

    #[test]
    fn a_child_may_be_left_without_administrators() {
        assert_eq!(
            check_keeps_administrator(false, Role::Administrators, MemberChange::Removal, 1),
            Ok(())
        );
    }

    #[test]
    fn keeping_the_last_administrator_an_administrator_is_fine() {
        assert_eq!(
            check_keeps_administrator(
                true,
                Role::Administrators,
                MemberChange::Role(Role::Administrators),
                1
            ),
            Ok(())
        );
    }

    #[test]
    fn other_members_change_freely() {
        assert_eq!(
            check_keeps_administrator(true, Role::Users, MemberChange::Removal, 1),
            Ok(())
        );
    }

    #[test]
    fn the_member_filter_lower_cases_the_identifier_and_refuses_unknown_roles() {
        let filter = MemberFilter::parse(Some("managers"), Some(" ADA@ "), None).expect("valid");

        assert_eq!(filter.role, Some(Role::Managers));
        assert_eq!(filter.identifier.as_deref(), Some("ada@"));
        assert!(MemberFilter::parse(Some("owners"), None, None).is_err());
    }

    #[test]
    fn a_member_filter_reports_a_bad_role_and_a_bad_identifier_together() {
        let errors = MemberFilter::parse(Some("owners"), Some("a\0"), None).expect_err("refused");
        let long = MemberFilter::parse(None, Some(&"a".repeat(321)), None).expect_err("refused");

        assert!(errors.codes("role").is_some());
        assert_eq!(
            errors.codes("identifier"),
            Some(&[ErrorCode::NullCharacter][..])
        );
        assert_eq!(
            long.codes("identifier"),
            Some(&[ErrorCode::MaxLength { max: 320 }][..])
        );
    }

    #[test]
    fn the_kind_filter_takes_human_or_service_only() {
        let service = MemberFilter::parse(None, None, Some("service")).expect("valid");
        let refused = MemberFilter::parse(None, None, Some("robot")).expect_err("refused");

        assert_eq!(service.kind, Some(UserKind::Service));
        assert_eq!(
            MemberFilter::parse(None, None, Some("human"))
                .expect("valid")
                .kind,
            Some(UserKind::Human)
        );
        assert_eq!(
            refused.codes("kind"),
            Some(
                &[ErrorCode::InvalidChoice {
                    value: "robot".to_owned()
                }][..]
            )
        );
    }

    #[test]
    fn a_role_change_needs_a_known_role() {
        assert_eq!(
            check_role_change(Input::Value("managers".to_owned())),
            Ok(Role::Managers)
        );
        assert_eq!(
            check_role_change(Input::Absent).map_err(|e| e.codes("role").map(<[_]>::to_vec)),
            Err(Some(vec![ErrorCode::Required]))
        );
        assert_eq!(
            check_role_change(Input::Value("owners".to_owned()))
                .map_err(|e| e.codes("role").map(<[_]>::to_vec)),
            Err(Some(vec![ErrorCode::InvalidChoice {
                value: "owners".to_owned()
            }]))
        );
    }
}
