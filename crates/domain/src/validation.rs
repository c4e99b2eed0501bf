//! Field-keyed validation errors that collect every problem of a request.
//!
//! Errors are language-free codes with parameters; turning them into English or French
//! text is the HTTP adapter's job (CONTRACT §2, "Languages").

use std::collections::BTreeMap;

/// One problem with one value, without any user-facing text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorCode {
    /// A required field is absent.
    Required,
    /// A field is `null` where a value is needed.
    Null,
    /// A string field is empty or white space only.
    Blank,
    /// A string is longer than `max` characters.
    MaxLength {
        /// The longest length allowed.
        max: usize,
    },
    /// A string is shorter than `min` characters.
    MinLength {
        /// The shortest length allowed.
        min: usize,
    },
    /// A value that should be a string is of another JSON type.
    InvalidString,
    /// A value that should be a boolean is not one (nor one of DRF's boolean strings).
    InvalidBoolean,
    /// A value that should be an integer is not one.
    InvalidInteger,
    /// An integer is below `min`.
    MinValue {
        /// The smallest value allowed.
        min: i64,
    },
    /// An integer is above `max`.
    MaxValue {
        /// The largest value allowed.
        max: i64,
    },
    /// A value is not one of the allowed choices.
    InvalidChoice {
        /// The value that was given.
        value: String,
    },
    /// A nested object was expected and something else was given.
    NotAnObject {
        /// The JSON type that was given (`str`, `list`, `int`, …, as DRF names them).
        given: String,
    },
    /// Not a valid e-mail address.
    InvalidEmail,
    /// A nickname outside `^[a-z0-9-]{4,30}$` (and not empty).
    InvalidNickname,
    /// An external opt-out message on an organization that may not have one.
    ExternalOptoutNotAllowed,
    /// A hyperlink that is no organization detail URL.
    NoUrlMatch,
    /// A hyperlink to an organization that does not exist.
    ObjectDoesNotExist,
    /// CONTRACT §4 create rule 3: the parent must be the actor's organization.
    ParentMustBeYourOrganization,
    /// CONTRACT §4 create rule 4: the actor's organization already has a parent.
    ParentAlreadyHasParent,
    /// The parent of an organization cannot change.
    ParentCannotChange,
    /// A user already has this identifier.
    IdentifierTaken,
    /// A pending invitation for this identifier exists in this organization.
    AlreadyInvited,
    /// An invitation token that is unknown, revoked, used or expired.
    InvalidInvitation,
    /// Wrong identifier or password, or an inactive user.
    InvalidCredentials,
    /// The user holds a live API key of this name.
    ApiKeyNameTaken,
    /// The user holds the most live API keys allowed.
    TooManyApiKeys {
        /// The most live keys.
        max: u32,
    },
    /// A string holds a NUL character, which no text column stores (PostgreSQL refuses
    /// it), as DRF's `ProhibitNullCharactersValidator` refuses it.
    NullCharacter,
    /// Not an ISO 8601 date or date-time.
    InvalidDateTime,
    /// Not a cursor of the audit log (`?cursor=`).
    InvalidCursor,
    /// A keyset cursor and a page number in one request (`?cursor=` with `?page=`).
    CursorWithPage,
    /// Not an absolute `http`/`https` URL.
    InvalidUrl,
    /// A webhook endpoint on a loopback, private or link-local address.
    AddressNotAllowed,
    /// Not a list of strings.
    NotAList,
    /// An organization already has the most webhooks it may have.
    TooManyWebhooks,
    /// A service account name with a character other than letters, digits, `-`, `_`, `.`.
    InvalidServiceAccountName,
    /// The organization has a service account of this name.
    ServiceAccountNameTaken,
    /// A service account cannot have the `administrators` role.
    ServiceAccountCannotBeAdministrator,
}

/// The errors of one field: a list of codes, or the errors of a nested object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldErrors {
    /// Problems with the field's own value.
    Codes(Vec<ErrorCode>),
    /// Problems inside a nested object (such as `settings`).
    Nested(ValidationErrors),
}

/// Every problem found in one request, keyed by field, plus object-level problems.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ValidationErrors {
    fields: BTreeMap<String, FieldErrors>,
    non_field: Vec<ErrorCode>,
}

impl ValidationErrors {
    /// No errors yet.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Errors made of one code on one field.
    #[must_use]
    pub fn single(field: &str, code: ErrorCode) -> Self {
        let mut errors = Self::new();
        errors.add(field, code);
        errors
    }

    /// Errors made of one object-level code.
    #[must_use]
    pub fn non_field(code: ErrorCode) -> Self {
        let mut errors = Self::new();
        errors.add_non_field(code);
        errors
    }

    /// Adds a code to a field.
    pub fn add(&mut self, field: &str, code: ErrorCode) {
        match self
            .fields
            .entry(field.to_owned())
            .or_insert_with(|| FieldErrors::Codes(Vec::new()))
        {
            FieldErrors::Codes(codes) => codes.push(code),
            // A field is either a value or an object; a code on an object field
            // replaces the nested errors, as DRF reports the outer problem alone.
            slot @ FieldErrors::Nested(_) => *slot = FieldErrors::Codes(vec![code]),
        }
    }

    /// Adds the errors of a nested object under `field`, if there are any.
    pub fn add_nested(&mut self, field: &str, nested: ValidationErrors) {
        if !nested.is_empty() {
            self.fields
                .insert(field.to_owned(), FieldErrors::Nested(nested));
        }
    }

    /// Adds an object-level code (DRF's `non_field_errors`).
    pub fn add_non_field(&mut self, code: ErrorCode) {
        self.non_field.push(code);
    }

    /// Keeps the value of `result`, or records its code under `field`.
    pub fn collect<T>(&mut self, field: &str, result: Result<T, ErrorCode>) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(code) => {
                self.add(field, code);
                None
            }
        }
    }

    /// True when no problem was recorded.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty() && self.non_field.is_empty()
    }

    /// `Ok(())` when empty, the errors otherwise.
    ///
    /// # Errors
    /// Returns `self` when any problem was recorded.
    pub fn into_result(self) -> Result<(), ValidationErrors> {
        if self.is_empty() { Ok(()) } else { Err(self) }
    }

    /// The field errors, ordered by field name.
    pub fn fields(&self) -> impl Iterator<Item = (&str, &FieldErrors)> {
        self.fields
            .iter()
            .map(|(name, errors)| (name.as_str(), errors))
    }

    /// The errors of one field.
    #[must_use]
    pub fn field(&self, name: &str) -> Option<&FieldErrors> {
        self.fields.get(name)
    }

    /// The codes of one field, when it has plain codes.
    #[must_use]
    pub fn codes(&self, name: &str) -> Option<&[ErrorCode]> {
        match self.fields.get(name) {
            Some(FieldErrors::Codes(codes)) => Some(codes),
            _ => None,
        }
    }

    /// The object-level codes.
    #[must_use]
    pub fn non_field_codes(&self) -> &[ErrorCode] {
        &self.non_field
    }
}

/// A request value as it arrived: absent, `null`, of the wrong JSON type, or a value.
///
/// The HTTP adapter turns JSON into `Input`s (coercing DRF's boolean strings, say);
/// the domain decides what each value means.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Input<T> {
    /// The field was not in the request.
    #[default]
    Absent,
    /// The field was `null`.
    Null,
    /// The field had a value of the wrong type.
    Invalid(ErrorCode),
    /// The field had a value.
    Value(T),
}

impl<T> Input<T> {
    /// A required field: `Absent` → `Required`, `Null` → `Null`.
    ///
    /// # Errors
    /// The code of the first problem with the input.
    pub fn required(self) -> Result<T, ErrorCode> {
        match self {
            Input::Absent => Err(ErrorCode::Required),
            Input::Null => Err(ErrorCode::Null),
            Input::Invalid(code) => Err(code),
            Input::Value(value) => Ok(value),
        }
    }

    /// An optional field that may not be `null`: `Absent` → `None`.
    ///
    /// # Errors
    /// `Null` for a `null`, or the input's own code.
    pub fn optional(self) -> Result<Option<T>, ErrorCode> {
        match self {
            Input::Absent => Ok(None),
            Input::Null => Err(ErrorCode::Null),
            Input::Invalid(code) => Err(code),
            Input::Value(value) => Ok(Some(value)),
        }
    }

    /// Whether the field was present in the request at all.
    #[must_use]
    pub fn is_present(&self) -> bool {
        !matches!(self, Input::Absent)
    }

    /// Transforms the value.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Input<U> {
        match self {
            Input::Absent => Input::Absent,
            Input::Null => Input::Null,
            Input::Invalid(code) => Input::Invalid(code),
            Input::Value(value) => Input::Value(f(value)),
        }
    }
}

/// The longest value a text filter of a list takes (`?identifier=`, `?address=`, and the
/// choices `?role=`, `?status=`, `?origin=`): the longest e-mail address.
pub const FILTER_MAX_LENGTH: usize = 320;

/// Trims a string as DRF's `CharField` does before validating it.
#[must_use]
pub(crate) fn trimmed(value: &str) -> &str {
    value.trim()
}

/// Checks that a string can be stored and read back as it is: it holds no NUL
/// character (CONTRACT §9). Every other Unicode scalar value is stored as given by both
/// databases; line breaks stay legal in free text.
///
/// # Errors
/// `NullCharacter`.
pub fn storable(value: &str) -> Result<&str, ErrorCode> {
    if value.contains('\0') {
        Err(ErrorCode::NullCharacter)
    } else {
        Ok(value)
    }
}

/// Checks the text of a list filter: storable and at most [`FILTER_MAX_LENGTH`]
/// characters, so that a filter never reaches storage with a value it refuses.
///
/// # Errors
/// `NullCharacter` or `MaxLength { max: 320 }`.
pub fn filter_text(value: &str) -> Result<&str, ErrorCode> {
    let value = storable(value)?;
    if value.chars().count() > FILTER_MAX_LENGTH {
        return Err(ErrorCode::MaxLength {
            max: FILTER_MAX_LENGTH,
        });
    }
    Ok(value)
}

/// Checks a required, non-blank, bounded, storable string field and returns it trimmed.
pub(crate) fn bounded_text(value: &str, max: usize) -> Result<String, ErrorCode> {
    bounded_str(value, max).map(str::to_owned)
}

/// [`bounded_text`] without the copy: the trimmed part of `value` it would return.
pub(crate) fn bounded_str(value: &str, max: usize) -> Result<&str, ErrorCode> {
    let value = trimmed(value);
    if value.is_empty() {
        return Err(ErrorCode::Blank);
    }
    if value.chars().count() > max {
        return Err(ErrorCode::MaxLength { max });
    }
    storable(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_of_several_fields_are_kept_together() {
        let mut errors = ValidationErrors::new();

        errors.add("name", ErrorCode::Blank);
        errors.add("contact_email", ErrorCode::InvalidEmail);
        errors.add_nested(
            "settings",
            ValidationErrors::single("nickname", ErrorCode::InvalidNickname),
        );

        assert_eq!(errors.codes("name"), Some(&[ErrorCode::Blank][..]));
        assert_eq!(
            errors.codes("contact_email"),
            Some(&[ErrorCode::InvalidEmail][..])
        );
        match errors.field("settings") {
            Some(FieldErrors::Nested(nested)) => assert_eq!(
                nested.codes("nickname"),
                Some(&[ErrorCode::InvalidNickname][..])
            ),
            other => panic!("expected nested settings errors, got {other:?}"),
        }
    }

    #[test]
    fn an_empty_nested_object_adds_nothing() {
        let mut errors = ValidationErrors::new();

        errors.add_nested("settings", ValidationErrors::new());

        assert!(errors.is_empty());
        assert!(errors.into_result().is_ok());
    }

    #[test]
    fn a_required_input_reports_absent_and_null_differently() {
        assert_eq!(Input::<String>::Absent.required(), Err(ErrorCode::Required));
        assert_eq!(Input::<String>::Null.required(), Err(ErrorCode::Null));
        assert_eq!(Input::Value(1).required(), Ok(1));
        assert_eq!(Input::<i64>::Absent.optional(), Ok(None));
        assert_eq!(Input::<i64>::Null.optional(), Err(ErrorCode::Null));
    }

    #[test]
    fn a_nul_character_is_not_storable_and_other_characters_are() {
        assert_eq!(storable("a\0b"), Err(ErrorCode::NullCharacter));
        assert_eq!(storable("line\nbreak\ttab é"), Ok("line\nbreak\ttab é"));
        assert_eq!(bounded_text(" a\0b ", 10), Err(ErrorCode::NullCharacter));
        assert_eq!(bounded_text("two\nlines", 10), Ok("two\nlines".to_owned()));
    }

    #[test]
    fn a_filter_takes_320_characters_and_no_nul() {
        assert_eq!(filter_text(&"é".repeat(320)).map(str::len), Ok(640));
        assert_eq!(
            filter_text(&"a".repeat(321)),
            Err(ErrorCode::MaxLength { max: 320 })
        );
        assert_eq!(filter_text("a\0"), Err(ErrorCode::NullCharacter));
    }

    #[test]
    fn bounded_text_trims_and_counts_characters_not_bytes() {
        assert_eq!(bounded_text("  x  ", 3), Ok("x".to_owned()));
        assert_eq!(bounded_text("   ", 3), Err(ErrorCode::Blank));
        assert_eq!(bounded_text("ééé", 3), Ok("ééé".to_owned()));
        assert_eq!(
            bounded_text("éééé", 3),
            Err(ErrorCode::MaxLength { max: 3 })
        );
    }
}
