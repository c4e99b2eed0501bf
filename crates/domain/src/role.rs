//! The four roles a user can have, named as the seed's groups.

use crate::validation::ErrorCode;

/// A user's role in their organization.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    /// May do everything to their organization and its children.
    Administrators,
    /// May read, list members and handle opt-outs.
    Managers,
    /// May read.
    Users,
    /// May read.
    Collaborators,
}

impl Role {
    /// Every role, in the contract's order.
    pub const ALL: [Role; 4] = [
        Role::Administrators,
        Role::Managers,
        Role::Users,
        Role::Collaborators,
    ];

    /// The wire and storage name.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Role::Administrators => "administrators",
            Role::Managers => "managers",
            Role::Users => "users",
            Role::Collaborators => "collaborators",
        }
    }

    /// Parses a wire or storage name.
    ///
    /// # Errors
    /// `InvalidChoice` with the given value when it names no role.
    pub fn parse(value: &str) -> Result<Self, ErrorCode> {
        Self::ALL
            .into_iter()
            .find(|role| role.as_str() == value)
            .ok_or_else(|| ErrorCode::InvalidChoice {
                value: value.to_owned(),
            })
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_role_parses_back_from_its_name() {
        for role in Role::ALL {
            assert_eq!(Role::parse(role.as_str()), Ok(role));
        }
    }

    #[test]
    fn an_unknown_role_is_an_invalid_choice_naming_the_value() {
        assert_eq!(
            Role::parse("owners"),
            Err(ErrorCode::InvalidChoice {
                value: "owners".to_owned()
            })
        );
        assert!(Role::parse("Administrators").is_err());
    }
}
