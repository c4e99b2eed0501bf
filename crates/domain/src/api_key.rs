//! API keys: several named keys per user, each `read` or `write`, with an optional
//! expiry (CONTRACT §11). See `docs/api-keys.md`.
//!
//! The key itself is a [`SecretToken`]: shown once, stored as its hash and its first
//! eight characters (the `prefix` a user recognises it by).

use crate::ids::{ApiKeyId, UserId};
use crate::secret::{SecretToken, TokenHash};
use crate::time::{Duration, Timestamp};
use crate::validation::{ErrorCode, Input, ValidationErrors, bounded_text};

/// The longest key name.
pub const NAME_MAX_LENGTH: usize = 50;

/// The most live keys a user may hold.
pub const MAX_LIVE_KEYS: u32 = 20;

/// The shortest `expires_in_days`.
pub const MIN_EXPIRES_IN_DAYS: i64 = 1;

/// The longest `expires_in_days`.
pub const MAX_EXPIRES_IN_DAYS: i64 = 365;

/// How many characters of a key its `prefix` shows.
pub const PREFIX_LENGTH: usize = 8;

/// The name of the key made at acceptance, by `create-user` or by `regen_secret`.
pub const DEFAULT_KEY_NAME: &str = "default";

/// What a credential may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Scope {
    /// Only read: `GET` and `HEAD`.
    Read,
    /// Everything its user may do. Session tokens have this scope.
    #[default]
    Write,
}

impl Scope {
    /// Both scopes.
    pub const ALL: [Scope; 2] = [Scope::Read, Scope::Write];

    /// The wire and storage name.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Write => "write",
        }
    }

    /// Parses `read` or `write`.
    ///
    /// # Errors
    /// `InvalidChoice` for anything else.
    pub fn parse(value: &str) -> Result<Self, ErrorCode> {
        Scope::ALL
            .into_iter()
            .find(|scope| scope.as_str() == value)
            .ok_or_else(|| ErrorCode::InvalidChoice {
                value: value.to_owned(),
            })
    }
}

/// A key's name: not blank, at most 50 characters, trimmed.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ApiKeyName(String);

impl ApiKeyName {
    /// Validates a name.
    ///
    /// # Errors
    /// `Blank`, `MaxLength { max: 50 }` or `NullCharacter`.
    pub fn parse(value: &str) -> Result<Self, ErrorCode> {
        bounded_text(value, NAME_MAX_LENGTH).map(Self)
    }

    /// `default`, the name of the key made with a user and replaced by `regen_secret`.
    #[must_use]
    pub fn default_key() -> Self {
        Self(DEFAULT_KEY_NAME.to_owned())
    }

    /// The name.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What is stored of a new key: its hash and its prefix, never the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyMaterial {
    /// The key's hash.
    pub hash: TokenHash,
    /// The key's first [`PREFIX_LENGTH`] characters.
    pub prefix: String,
}

impl KeyMaterial {
    /// What is stored of `key`.
    #[must_use]
    pub fn of(key: &SecretToken) -> Self {
        Self {
            hash: key.hash(),
            prefix: key.expose().chars().take(PREFIX_LENGTH).collect(),
        }
    }
}

/// A stored API key (without the key itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    /// Its id.
    pub id: ApiKeyId,
    /// Its user.
    pub user_id: UserId,
    /// Its name.
    pub name: ApiKeyName,
    /// Its first characters; `None` for keys made before prefixes were kept.
    pub prefix: Option<String>,
    /// What it may do.
    pub scope: Scope,
    /// When it was made.
    pub created_at: Timestamp,
    /// When it stops working, if ever.
    pub expires_at: Option<Timestamp>,
    /// When it was last used, as recorded (up to a minute late).
    pub last_used_at: Option<Timestamp>,
}

impl ApiKey {
    /// Whether it works at `now`.
    #[must_use]
    pub fn is_live(&self, now: Timestamp) -> bool {
        self.expires_at.is_none_or(|expires_at| expires_at > now)
    }
}

/// The fields of `POST /me/api_keys/`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApiKeyRequest {
    /// `name`, required.
    pub name: Input<String>,
    /// `scope`, `write` when absent.
    pub scope: Input<String>,
    /// `expires_in_days`, 1 to 365; never expires when absent.
    pub expires_in_days: Input<i64>,
}

/// A checked key request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeyTerms {
    /// The name.
    pub name: ApiKeyName,
    /// The scope.
    pub scope: Scope,
    /// How long the key works; `None`: for ever.
    pub valid_for: Option<Duration>,
}

/// Checks a key request, collecting every problem.
///
/// # Errors
/// Every problem, keyed by field.
pub fn check_new_key(request: ApiKeyRequest) -> Result<ApiKeyTerms, ValidationErrors> {
    let mut errors = ValidationErrors::new();
    let name = errors.collect(
        "name",
        request
            .name
            .required()
            .and_then(|value| ApiKeyName::parse(&value)),
    );
    let scope = errors.collect(
        "scope",
        request
            .scope
            .optional()
            .and_then(|value| value.as_deref().map(Scope::parse).transpose())
            .map(Option::unwrap_or_default),
    );
    let valid_for = errors.collect(
        "expires_in_days",
        request
            .expires_in_days
            .optional()
            .and_then(|days| match days {
                None => Ok(None),
                Some(days) if days < MIN_EXPIRES_IN_DAYS => Err(ErrorCode::MinValue {
                    min: MIN_EXPIRES_IN_DAYS,
                }),
                Some(days) if days > MAX_EXPIRES_IN_DAYS => Err(ErrorCode::MaxValue {
                    max: MAX_EXPIRES_IN_DAYS,
                }),
                Some(days) => Ok(Some(Duration::days(days))),
            }),
    );
    errors.into_result()?;
    match (name, scope, valid_for) {
        (Some(name), Some(scope), Some(valid_for)) => Ok(ApiKeyTerms {
            name,
            scope,
            valid_for,
        }),
        // Unreachable: every `None` above recorded an error.
        _ => Err(ValidationErrors::non_field(ErrorCode::Required)),
    }
}

/// A key to be stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewApiKey {
    /// Its name.
    pub name: ApiKeyName,
    /// Its scope.
    pub scope: Scope,
    /// Its hash and prefix.
    pub material: KeyMaterial,
    /// When it stops working, if ever.
    pub expires_at: Option<Timestamp>,
}

impl NewApiKey {
    /// The key a request asks for, made at `now`.
    #[must_use]
    pub fn from_terms(terms: ApiKeyTerms, key: &SecretToken, now: Timestamp) -> Self {
        Self {
            name: terms.name,
            scope: terms.scope,
            material: KeyMaterial::of(key),
            expires_at: terms.valid_for.map(|valid_for| now + valid_for),
        }
    }

    /// The `default` write key that never expires, made with a user and by `regen_secret`.
    #[must_use]
    pub fn default_key(key: &SecretToken) -> Self {
        Self {
            name: ApiKeyName::default_key(),
            scope: Scope::Write,
            material: KeyMaterial::of(key),
            expires_at: None,
        }
    }
}

/// Why a key could not be made (→ 400).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum KeyRefusal {
    /// The user holds a live key of this name.
    #[error("you already have an API key with this name")]
    NameTaken,
    /// The user holds [`MAX_LIVE_KEYS`] live keys.
    #[error("you cannot have more than {MAX_LIVE_KEYS} API keys")]
    TooMany,
}

impl KeyRefusal {
    /// The field error this refusal answers.
    #[must_use]
    pub fn into_errors(self) -> ValidationErrors {
        match self {
            KeyRefusal::NameTaken => ValidationErrors::single("name", ErrorCode::ApiKeyNameTaken),
            KeyRefusal::TooMany => {
                ValidationErrors::non_field(ErrorCode::TooManyApiKeys { max: MAX_LIVE_KEYS })
            }
        }
    }
}

/// CONTRACT §11: a user holds at most [`MAX_LIVE_KEYS`] live keys, each name once. The
/// storage applies it under a lock on the user, with `live_names` read there.
///
/// # Errors
/// `NameTaken` first, then `TooMany`.
pub fn check_key_allowance(live_names: &[ApiKeyName], name: &ApiKeyName) -> Result<(), KeyRefusal> {
    if live_names.contains(name) {
        return Err(KeyRefusal::NameTaken);
    }
    if live_names.len() >= MAX_LIVE_KEYS as usize {
        return Err(KeyRefusal::TooMany);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(name: &str) -> ApiKeyRequest {
        ApiKeyRequest {
            name: Input::Value(name.to_owned()),
            ..ApiKeyRequest::default()
        }
    }

    fn names(count: usize) -> Vec<ApiKeyName> {
        (0..count)
            .map(|i| ApiKeyName::parse(&format!("key-{i}")).expect("valid"))
            .collect()
    }

    #[test]
    fn a_key_request_defaults_to_a_write_key_that_never_expires() {
        let terms = check_new_key(request(" ci ")).expect("valid");

        assert_eq!(terms.name.as_str(), "ci");
        assert_eq!(terms.scope, Scope::Write);
        assert_eq!(terms.valid_for, None);
    }

    #[test]
    fn a_key_name_is_required_not_blank_and_at_most_50_characters() {
        let codes = |request| {
            check_new_key(request)
                .map_err(|errors: ValidationErrors| errors.codes("name").map(<[_]>::to_vec))
        };

        assert_eq!(
            codes(ApiKeyRequest::default()),
            Err(Some(vec![ErrorCode::Required]))
        );
        assert_eq!(codes(request("  ")), Err(Some(vec![ErrorCode::Blank])));
        assert_eq!(
            codes(request(&"a".repeat(51))),
            Err(Some(vec![ErrorCode::MaxLength { max: 50 }]))
        );
        assert_eq!(
            codes(request("a\0")),
            Err(Some(vec![ErrorCode::NullCharacter]))
        );
        assert!(check_new_key(request(&"a".repeat(50))).is_ok());
    }

    #[test]
    fn a_key_scope_is_read_or_write() {
        let with_scope = |scope: &str| ApiKeyRequest {
            scope: Input::Value(scope.to_owned()),
            ..request("ci")
        };

        assert_eq!(
            check_new_key(with_scope("read")).map(|t| t.scope),
            Ok(Scope::Read)
        );
        let errors = check_new_key(with_scope("admin")).expect_err("refused");
        assert_eq!(
            errors.codes("scope"),
            Some(
                &[ErrorCode::InvalidChoice {
                    value: "admin".to_owned()
                }][..]
            )
        );
    }

    #[test]
    fn expires_in_days_is_between_1_and_365() {
        let with_days = |days| ApiKeyRequest {
            expires_in_days: Input::Value(days),
            ..request("ci")
        };

        assert_eq!(
            check_new_key(with_days(1)).map(|t| t.valid_for),
            Ok(Some(Duration::days(1)))
        );
        assert!(check_new_key(with_days(365)).is_ok());
        assert_eq!(
            check_new_key(with_days(0))
                .expect_err("refused")
                .codes("expires_in_days"),
            Some(&[ErrorCode::MinValue { min: 1 }][..])
        );
        assert_eq!(
            check_new_key(with_days(366))
                .expect_err("refused")
                .codes("expires_in_days"),
            Some(&[ErrorCode::MaxValue { max: 365 }][..])
        );
    }

    #[test]
    fn every_problem_of_a_key_request_is_reported_together() {
        let errors = check_new_key(ApiKeyRequest {
            name: Input::Absent,
            scope: Input::Value("x".to_owned()),
            expires_in_days: Input::Value(0),
        })
        .expect_err("refused");

        assert!(errors.codes("name").is_some());
        assert!(errors.codes("scope").is_some());
        assert!(errors.codes("expires_in_days").is_some());
    }

    #[test]
    fn the_prefix_is_the_first_eight_characters_of_the_key() {
        let key = SecretToken::presented("Ab3dE7xYrest-of-the-key");

        let material = KeyMaterial::of(&key);

        assert_eq!(material.prefix, "Ab3dE7xY");
        assert_eq!(material.hash, key.hash());
    }

    #[test]
    fn a_key_with_an_expiry_expires_that_many_days_after_it_is_made() {
        let now = Timestamp::UNIX_EPOCH;
        let terms = ApiKeyTerms {
            valid_for: Some(Duration::days(90)),
            ..check_new_key(request("ci")).expect("valid")
        };

        let key = NewApiKey::from_terms(terms, &SecretToken::presented("k"), now);

        assert_eq!(key.expires_at, Some(now + Duration::days(90)));
    }

    #[test]
    fn the_default_key_is_a_write_key_named_default_that_never_expires() {
        let key = NewApiKey::default_key(&SecretToken::presented("k"));

        assert_eq!(key.name.as_str(), "default");
        assert_eq!(key.scope, Scope::Write);
        assert_eq!(key.expires_at, None);
    }

    #[test]
    fn a_taken_name_is_refused_before_the_count() {
        let mut live = names(20);
        live[0] = ApiKeyName::parse("ci").expect("valid");

        assert_eq!(
            check_key_allowance(&live, &ApiKeyName::parse("ci").expect("valid")),
            Err(KeyRefusal::NameTaken)
        );
    }

    #[test]
    fn a_user_may_hold_twenty_live_keys_and_no_more() {
        let name = ApiKeyName::parse("new").expect("valid");

        assert_eq!(check_key_allowance(&names(19), &name), Ok(()));
        assert_eq!(
            check_key_allowance(&names(20), &name),
            Err(KeyRefusal::TooMany)
        );
    }

    #[test]
    fn a_key_is_live_until_its_expiry() {
        let now = Timestamp::UNIX_EPOCH + Duration::days(10);
        let mut key = ApiKey {
            id: ApiKeyId::new(1),
            user_id: UserId::new(1),
            name: ApiKeyName::default_key(),
            prefix: None,
            scope: Scope::Write,
            created_at: Timestamp::UNIX_EPOCH,
            expires_at: None,
            last_used_at: None,
        };

        assert!(key.is_live(now));
        key.expires_at = Some(now);
        assert!(!key.is_live(now));
        key.expires_at = Some(now + Duration::seconds(1));
        assert!(key.is_live(now));
    }

    #[test]
    fn refusals_answer_the_contract_fields() {
        assert!(KeyRefusal::NameTaken.into_errors().codes("name").is_some());
        assert_eq!(
            KeyRefusal::TooMany.into_errors().non_field_codes(),
            [ErrorCode::TooManyApiKeys { max: 20 }]
        );
    }
}
