//! Service accounts (CONTRACT §11, the original platform's *application users*):
//! members that are programs. An organization's administrators make them with a name
//! and a role; they authenticate with API keys only and are never administrators.

use crate::ids::{OrganizationId, UserId};
use crate::role::Role;
use crate::user::UserKind;
use crate::validation::{ErrorCode, Input, ValidationErrors, storable};

/// The longest service account name.
pub const SERVICE_ACCOUNT_NAME_MAX_LENGTH: usize = 50;

/// A service account's name, which is also its identifier: 1 to 50 ASCII letters,
/// digits, `-`, `_` or `.`. It never contains `@`, so it can never be taken for a
/// person's identifier (an e-mail address).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceAccountName(String);

impl ServiceAccountName {
    /// Validates a name, as given (nothing is trimmed or folded).
    ///
    /// # Errors
    /// `Blank` for an empty or white-space name, `MaxLength { max: 50 }`, `NullCharacter`,
    /// or `InvalidServiceAccountName` for any other character outside the grammar.
    pub fn parse(value: &str) -> Result<Self, ErrorCode> {
        if value.trim().is_empty() {
            return Err(ErrorCode::Blank);
        }
        if value.chars().count() > SERVICE_ACCOUNT_NAME_MAX_LENGTH {
            return Err(ErrorCode::MaxLength {
                max: SERVICE_ACCOUNT_NAME_MAX_LENGTH,
            });
        }
        let value = storable(value)?;
        if !value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        {
            return Err(ErrorCode::InvalidServiceAccountName);
        }
        Ok(Self(value.to_owned()))
    }

    /// The name.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The roles a service account may have: any but `administrators`, at creation and on
/// a role change.
///
/// # Errors
/// `ServiceAccountCannotBeAdministrator`.
pub fn check_service_role(role: Role) -> Result<Role, ErrorCode> {
    if role == Role::Administrators {
        Err(ErrorCode::ServiceAccountCannotBeAdministrator)
    } else {
        Ok(role)
    }
}

/// Checks the body of a role change of a member of `kind` (CONTRACT §5b and §11).
///
/// # Errors
/// `role` required, one of the four roles, and not `administrators` for a service
/// account.
pub fn check_member_role_change(
    kind: UserKind,
    role: Input<String>,
) -> Result<Role, ValidationErrors> {
    role.required()
        .and_then(|value| Role::parse(&value))
        .and_then(|role| match kind {
            UserKind::Human => Ok(role),
            UserKind::Service => check_service_role(role),
        })
        .map_err(|code| ValidationErrors::single("role", code))
}

/// The body of `POST /organizations/{id}/service_accounts/`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServiceAccountRequest {
    /// `name`, required.
    pub name: Input<String>,
    /// `role`, required.
    pub role: Input<String>,
}

/// A checked service account request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceAccountTerms {
    /// Its name and identifier.
    pub name: ServiceAccountName,
    /// Its role (never `administrators`).
    pub role: Role,
}

/// Checks a service account request, reporting every field together.
///
/// # Errors
/// Every problem, keyed `name` and `role`.
pub fn check_new_service_account(
    request: ServiceAccountRequest,
) -> Result<ServiceAccountTerms, ValidationErrors> {
    let mut errors = ValidationErrors::new();
    let name = errors.collect(
        "name",
        request
            .name
            .required()
            .and_then(|value| ServiceAccountName::parse(&value)),
    );
    let role = errors.collect(
        "role",
        request
            .role
            .required()
            .and_then(|value| Role::parse(&value))
            .and_then(check_service_role),
    );
    errors.into_result()?;
    match (name, role) {
        (Some(name), Some(role)) => Ok(ServiceAccountTerms { name, role }),
        // Unreachable: every `None` above recorded an error.
        _ => Err(ValidationErrors::single("name", ErrorCode::Required)),
    }
}

/// A service account to be stored (with the hash of its `default` API key beside it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewServiceAccount {
    /// Its organization.
    pub organization_id: OrganizationId,
    /// Its name and identifier.
    pub name: ServiceAccountName,
    /// Its role.
    pub role: Role,
    /// The member who asks for it: storage checks their standing again under its lock
    /// (`permissions::recheck`), so that one demoted meanwhile creates nothing.
    pub requester: UserId,
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn request(name: &str, role: &str) -> ServiceAccountRequest {
        ServiceAccountRequest {
            name: Input::Value(name.to_owned()),
            role: Input::Value(role.to_owned()),
        }
    }

    proptest! {
        #[test]
        fn an_accepted_name_parses_back_as_itself_and_is_no_email(value in any::<String>()) {
            if let Ok(name) = ServiceAccountName::parse(&value) {
                prop_assert!(!name.as_str().contains('@'));
                prop_assert!(name.as_str().chars().count() <= 50);
                prop_assert_eq!(ServiceAccountName::parse(name.as_str()), Ok(name.clone()));
            }
        }

        #[test]
        fn names_of_the_grammar_are_accepted(value in "[A-Za-z0-9._-]{1,50}") {
            prop_assert!(ServiceAccountName::parse(&value).is_ok());
        }
    }

    #[test]
    fn a_name_is_1_to_50_letters_digits_dashes_underscores_and_dots() {
        assert!(ServiceAccountName::parse("billing-sync_2.prod").is_ok());
        assert!(ServiceAccountName::parse(&"a".repeat(50)).is_ok());
        assert_eq!(
            ServiceAccountName::parse(&"a".repeat(51)),
            Err(ErrorCode::MaxLength { max: 50 })
        );
        assert_eq!(ServiceAccountName::parse(""), Err(ErrorCode::Blank));
        assert_eq!(ServiceAccountName::parse("  "), Err(ErrorCode::Blank));
        for bad in ["billing sync", "ops@example.com", "a/b", "é", " a"] {
            assert_eq!(
                ServiceAccountName::parse(bad),
                Err(ErrorCode::InvalidServiceAccountName),
                "{bad}"
            );
        }
    }

    #[test]
    fn a_name_with_a_nul_is_refused() {
        assert_eq!(
            ServiceAccountName::parse("a\0b"),
            Err(ErrorCode::NullCharacter)
        );
    }

    #[test]
    fn a_service_account_cannot_be_an_administrator() {
        let refused =
            check_new_service_account(request("ci", "administrators")).expect_err("refused");

        assert_eq!(
            refused.codes("role"),
            Some(&[ErrorCode::ServiceAccountCannotBeAdministrator][..])
        );
        for role in [Role::Managers, Role::Users, Role::Collaborators] {
            let terms = check_new_service_account(request("ci", role.as_str())).expect("valid");
            assert_eq!(terms.role, role);
        }
    }

    #[test]
    fn a_bad_name_and_a_missing_role_are_reported_together() {
        let refused = check_new_service_account(ServiceAccountRequest {
            name: Input::Value("no spaces".to_owned()),
            role: Input::Absent,
        })
        .expect_err("refused");

        assert_eq!(
            refused.codes("name"),
            Some(&[ErrorCode::InvalidServiceAccountName][..])
        );
        assert_eq!(refused.codes("role"), Some(&[ErrorCode::Required][..]));
    }

    #[test]
    fn a_service_member_cannot_be_made_an_administrator_but_a_person_can() {
        let to_admin = || Input::Value("administrators".to_owned());

        assert_eq!(
            check_member_role_change(UserKind::Human, to_admin()),
            Ok(Role::Administrators)
        );
        assert_eq!(
            check_member_role_change(UserKind::Service, to_admin())
                .map_err(|e| e.codes("role").map(<[_]>::to_vec)),
            Err(Some(vec![ErrorCode::ServiceAccountCannotBeAdministrator]))
        );
        assert_eq!(
            check_member_role_change(UserKind::Service, Input::Value("managers".to_owned())),
            Ok(Role::Managers)
        );
    }
}
