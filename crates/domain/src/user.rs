//! Users: the people who belong to an organization, their names and passwords.

use crate::email::EmailAddress;
use crate::ids::{OrganizationId, UserId};
use crate::role::Role;
use crate::service_account::ServiceAccountName;
use crate::time::Timestamp;
use crate::validation::{ErrorCode, bounded_text};

/// The longest first or last name (CONTRACT §5, accept).
pub const PERSON_NAME_MAX_LENGTH: usize = 50;

/// The shortest password (CONTRACT §5, accept).
pub const PASSWORD_MIN_LENGTH: usize = 8;

/// A first or last name: not blank, at most 50 characters, trimmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersonName(String);

impl PersonName {
    /// Validates a name (trimmed; a NUL is refused).
    ///
    /// # Errors
    /// `Blank`, `MaxLength { max: 50 }` or `NullCharacter`.
    pub fn parse(value: &str) -> Result<Self, ErrorCode> {
        bounded_text(value, PERSON_NAME_MAX_LENGTH).map(Self)
    }

    /// A name that may be empty, for users made by an operator.
    #[must_use]
    pub fn unnamed() -> Self {
        Self(String::new())
    }

    /// The name.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A password as typed, at least 8 characters. Never stored: only its Argon2id hash is.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl Password {
    /// Validates a new password (not trimmed: white space is part of a password).
    ///
    /// # Errors
    /// `Blank` for an empty one, `MinLength { min: 8 }` for a short one.
    pub fn parse(value: &str) -> Result<Self, ErrorCode> {
        if value.is_empty() {
            return Err(ErrorCode::Blank);
        }
        if value.chars().count() < PASSWORD_MIN_LENGTH {
            return Err(ErrorCode::MinLength {
                min: PASSWORD_MIN_LENGTH,
            });
        }
        Ok(Self(value.to_owned()))
    }

    /// A password presented at login, checked against a hash only.
    #[must_use]
    pub fn presented(value: &str) -> Self {
        Self(value.to_owned())
    }

    /// The password, for the hasher only.
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

/// An Argon2id hash in PHC string format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswordHash(String);

impl PasswordHash {
    /// Wraps a PHC string.
    #[must_use]
    pub fn new(phc: String) -> Self {
        Self(phc)
    }

    /// The PHC string.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Whether a user is a person or a program (CONTRACT §11).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UserKind {
    /// A person: an e-mail identifier, invited, may have a password.
    Human,
    /// A service account: a name, made by an administrator, API keys only.
    Service,
}

impl UserKind {
    /// Both kinds.
    pub const ALL: [UserKind; 2] = [UserKind::Human, UserKind::Service];

    /// The wire and storage name.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            UserKind::Human => "human",
            UserKind::Service => "service",
        }
    }

    /// Parses a wire or storage name.
    ///
    /// # Errors
    /// `InvalidChoice` with the given value.
    pub fn parse(value: &str) -> Result<Self, ErrorCode> {
        Self::ALL
            .into_iter()
            .find(|kind| kind.as_str() == value)
            .ok_or_else(|| ErrorCode::InvalidChoice {
                value: value.chars().take(100).collect(),
            })
    }
}

/// A user's identifier: a person's e-mail address (unique across the service) or a
/// service account's name (unique within its organization). The kind of user follows
/// from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserIdentifier {
    /// A person's e-mail address.
    Person(EmailAddress),
    /// A service account's name.
    Service(ServiceAccountName),
}

impl UserIdentifier {
    /// Reads a stored identifier of a user of `kind`.
    ///
    /// # Errors
    /// The code of the value's own parser.
    pub fn parse(kind: UserKind, value: &str) -> Result<Self, ErrorCode> {
        match kind {
            UserKind::Human => EmailAddress::parse(value).map(Self::Person),
            UserKind::Service => ServiceAccountName::parse(value).map(Self::Service),
        }
    }

    /// The identifier as shown and stored.
    #[must_use]
    pub fn as_str(&self) -> &str {
        match self {
            Self::Person(address) => address.as_str(),
            Self::Service(name) => name.as_str(),
        }
    }

    /// A person's e-mail address; `None` for a service account.
    #[must_use]
    pub fn as_email(&self) -> Option<&EmailAddress> {
        match self {
            Self::Person(address) => Some(address),
            Self::Service(_) => None,
        }
    }

    /// The kind of user it identifies.
    #[must_use]
    pub fn kind(&self) -> UserKind {
        match self {
            Self::Person(_) => UserKind::Human,
            Self::Service(_) => UserKind::Service,
        }
    }
}

impl From<EmailAddress> for UserIdentifier {
    fn from(address: EmailAddress) -> Self {
        Self::Person(address)
    }
}

impl std::fmt::Display for UserIdentifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A user as stored (without secrets).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// Its id.
    pub id: UserId,
    /// Its organization.
    pub organization_id: OrganizationId,
    /// Its identifier: a person's e-mail address or a service account's name.
    pub identifier: UserIdentifier,
    /// First name.
    pub first_name: PersonName,
    /// Last name.
    pub last_name: PersonName,
    /// Its role.
    pub role: Role,
    /// Inactive users cannot authenticate.
    pub is_active: bool,
    /// When it was made.
    pub created_at: Timestamp,
}

impl User {
    /// A person or a service account.
    #[must_use]
    pub fn kind(&self) -> UserKind {
        self.identifier.kind()
    }

    /// "First Last", or the identifier when the user has no name.
    #[must_use]
    pub fn display_name(&self) -> String {
        let full = format!("{} {}", self.first_name.as_str(), self.last_name.as_str());
        let full = full.trim();
        if full.is_empty() {
            self.identifier.to_string()
        } else {
            full.to_owned()
        }
    }
}

/// Where a user is: enough to build its member URL `/organizations/{org}/users/{id}/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MemberRef {
    /// The user's organization.
    pub organization_id: OrganizationId,
    /// The user.
    pub user_id: UserId,
}

impl User {
    /// This user's place, for its member URL.
    #[must_use]
    pub fn member_ref(&self) -> MemberRef {
        MemberRef {
            organization_id: self.organization_id,
            user_id: self.id,
        }
    }
}

/// A user to be stored, with the hash of its first API key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewUser {
    /// Its organization.
    pub organization_id: OrganizationId,
    /// Its identifier.
    pub identifier: EmailAddress,
    /// First name.
    pub first_name: PersonName,
    /// Last name.
    pub last_name: PersonName,
    /// Its role.
    pub role: Role,
    /// Its password hash, if it may log in with a password.
    pub password_hash: Option<PasswordHash>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn an_accepted_person_name_parses_back_as_itself(value in any::<String>()) {
            if let Ok(name) = PersonName::parse(&value) {
                prop_assert!(!name.as_str().contains('\0'));
                prop_assert_eq!(PersonName::parse(name.as_str()), Ok(name.clone()));
            }
        }
    }

    #[test]
    fn a_person_name_with_a_nul_is_refused() {
        assert_eq!(PersonName::parse("Ada\0"), Err(ErrorCode::NullCharacter));
    }

    #[test]
    fn a_person_name_of_50_characters_is_accepted_and_51_refused() {
        assert!(PersonName::parse(&"a".repeat(50)).is_ok());
        assert_eq!(
            PersonName::parse(&"a".repeat(51)),
            Err(ErrorCode::MaxLength { max: 50 })
        );
        assert_eq!(PersonName::parse("  "), Err(ErrorCode::Blank));
    }

    #[test]
    fn a_password_of_7_characters_is_refused_and_8_accepted() {
        assert_eq!(
            Password::parse("1234567"),
            Err(ErrorCode::MinLength { min: 8 })
        );
        assert!(Password::parse("12345678").is_ok());
        assert_eq!(Password::parse(""), Err(ErrorCode::Blank));
    }

    #[test]
    fn a_password_never_shows_in_debug_output() {
        let password = Password::presented("hunter22");

        assert!(!format!("{password:?}").contains("hunter22"));
    }

    #[test]
    fn a_kind_reads_back_its_own_name_and_refuses_others() {
        for kind in UserKind::ALL {
            assert_eq!(UserKind::parse(kind.as_str()), Ok(kind));
        }
        assert_eq!(
            UserKind::parse("robot"),
            Err(ErrorCode::InvalidChoice {
                value: "robot".to_owned()
            })
        );
    }

    #[test]
    fn an_identifier_tells_a_person_from_a_service_account() {
        let person = UserIdentifier::parse(UserKind::Human, "ada@example.com").expect("valid");
        let service = UserIdentifier::parse(UserKind::Service, "billing-sync").expect("valid");

        assert_eq!(person.kind(), UserKind::Human);
        assert_eq!(service.kind(), UserKind::Service);
        assert_eq!(service.to_string(), "billing-sync");
        assert!(UserIdentifier::parse(UserKind::Human, "billing-sync").is_err());
        assert!(UserIdentifier::parse(UserKind::Service, "ada@example.com").is_err());
    }

    #[test]
    fn the_display_name_falls_back_to_the_identifier() {
        let mut user = User {
            id: UserId::new(1),
            organization_id: OrganizationId::new(1),
            identifier: EmailAddress::parse("ada@example.com")
                .expect("valid")
                .into(),
            first_name: PersonName::unnamed(),
            last_name: PersonName::unnamed(),
            role: Role::Users,
            is_active: true,
            created_at: Timestamp::UNIX_EPOCH,
        };

        assert_eq!(user.display_name(), "ada@example.com");
        user.first_name = PersonName::parse("Ada").expect("valid");
        user.last_name = PersonName::parse("Lovelace").expect("valid");
        assert_eq!(user.display_name(), "Ada Lovelace");
    }
}
