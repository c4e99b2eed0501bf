//! Organizations: their values, their settings, the two-level tree and the rules for
//! creating and changing them (CONTRACT §4).

use crate::email::EmailAddress;
use crate::ids::{OrganizationId, Version};
use crate::time::Timestamp;
use crate::validation::{
    ErrorCode, Input, ValidationErrors, bounded_str, bounded_text, storable, trimmed,
};

/// The longest organization name (CONTRACT §4).
pub const NAME_MAX_LENGTH: usize = 200;

/// The longest `settings.external_optout_message` (see `docs/domain-decisions.md`).
pub const EXTERNAL_OPTOUT_MESSAGE_MAX_LENGTH: usize = 1000;

/// A non-blank organization name of at most 200 characters, trimmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrganizationName(String);

impl OrganizationName {
    /// Validates a name (trimmed; line breaks are kept, a NUL is refused).
    ///
    /// # Errors
    /// `Blank`, `MaxLength { max: 200 }` or `NullCharacter`.
    pub fn parse(value: &str) -> Result<Self, ErrorCode> {
        bounded_text(value, NAME_MAX_LENGTH).map(Self)
    }

    /// A name read back from storage: `OrganizationName::parse(&value)`, keeping `value`
    /// itself (no copy) when it is already trimmed, as everything stored through `parse`
    /// is.
    ///
    /// # Errors
    /// As `parse`.
    pub fn from_stored(value: String) -> Result<Self, ErrorCode> {
        let checked = bounded_str(&value, NAME_MAX_LENGTH)?;
        if checked.len() == value.len() {
            Ok(Self(value))
        } else {
            Ok(Self(checked.to_owned()))
        }
    }

    /// The name.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for OrganizationName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// An organization's nickname: empty, or 4 to 30 lowercase letters, digits and dashes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Nickname(String);

impl Nickname {
    /// Validates a nickname (surrounding white space is trimmed, as DRF does).
    ///
    /// # Errors
    /// `InvalidNickname` for anything but the empty string or `^[a-z0-9-]{4,30}$`.
    pub fn parse(value: &str) -> Result<Self, ErrorCode> {
        Self::checked(value).map(|value| Self(value.to_owned()))
    }

    /// A nickname read back from storage: `Nickname::parse(&value)`, keeping `value`
    /// itself (no copy) when it is already trimmed, as everything stored through `parse`
    /// is.
    ///
    /// # Errors
    /// As `parse`.
    pub fn from_stored(value: String) -> Result<Self, ErrorCode> {
        let checked = Self::checked(&value)?;
        if checked.len() == value.len() {
            Ok(Self(value))
        } else {
            Ok(Self(checked.to_owned()))
        }
    }

    /// The trimmed part of `value` that `parse` keeps.
    fn checked(value: &str) -> Result<&str, ErrorCode> {
        let value = trimmed(value);
        let allowed = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-';
        if value.is_empty() || ((4..=30).contains(&value.len()) && value.chars().all(allowed)) {
            Ok(value)
        } else {
            Err(ErrorCode::InvalidNickname)
        }
    }

    /// The nickname, possibly empty.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Per-organization settings (CONTRACT §4 representation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// A short name, possibly empty.
    pub nickname: Nickname,
    /// Notify `contact_email` on message status changes.
    pub notify_message_status: bool,
    /// Notify `contact_email` on new opt-outs.
    pub notify_optouts: bool,
    /// The message shown on external opt-out, blank unless the organization may have one.
    pub external_optout_message: String,
}

impl Default for Settings {
    /// The settings of a new organization (CONTRACT §4, create).
    fn default() -> Self {
        Self {
            nickname: Nickname::default(),
            notify_message_status: true,
            notify_optouts: false,
            external_optout_message: String::new(),
        }
    }
}

/// Settings as a request gives them: any subset, each key merged on its own.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SettingsInput {
    /// `settings.nickname`.
    pub nickname: Input<String>,
    /// `settings.notify_message_status`.
    pub notify_message_status: Input<bool>,
    /// `settings.notify_optouts`.
    pub notify_optouts: Input<bool>,
    /// `settings.external_optout_message`.
    pub external_optout_message: Input<String>,
}

impl Settings {
    /// Merges the given keys into these settings, key by key, collecting every problem.
    ///
    /// `can_external_optout` is the organization's flag: a non-blank
    /// `external_optout_message` is refused unless it is true.
    ///
    /// # Errors
    /// The errors of each key, keyed by the setting's name.
    pub fn merged(
        &self,
        input: SettingsInput,
        can_external_optout: bool,
    ) -> Result<Settings, ValidationErrors> {
        let mut errors = ValidationErrors::new();
        let mut merged = self.clone();

        if let Some(Some(nickname)) = errors.collect(
            "nickname",
            input
                .nickname
                .optional()
                .and_then(|value| value.as_deref().map(Nickname::parse).transpose()),
        ) {
            merged.nickname = nickname;
        }
        if let Some(Some(value)) = errors.collect(
            "notify_message_status",
            input.notify_message_status.optional(),
        ) {
            merged.notify_message_status = value;
        }
        if let Some(Some(value)) = errors.collect("notify_optouts", input.notify_optouts.optional())
        {
            merged.notify_optouts = value;
        }
        if let Some(Some(message)) = errors.collect(
            "external_optout_message",
            input.external_optout_message.optional().and_then(|value| {
                value
                    .map(|message| external_optout_message(&message, can_external_optout))
                    .transpose()
            }),
        ) {
            merged.external_optout_message = message;
        }

        errors.into_result().map(|()| merged)
    }
}

/// CONTRACT §4: the message must be blank unless the organization's
/// `can_external_optout` is true; like every stored text it is bounded and holds no NUL.
fn external_optout_message(message: &str, can_external_optout: bool) -> Result<String, ErrorCode> {
    let message = storable(trimmed(message))?;
    if message.chars().count() > EXTERNAL_OPTOUT_MESSAGE_MAX_LENGTH {
        return Err(ErrorCode::MaxLength {
            max: EXTERNAL_OPTOUT_MESSAGE_MAX_LENGTH,
        });
    }
    if !message.is_empty() && !can_external_optout {
        return Err(ErrorCode::ExternalOptoutNotAllowed);
    }
    Ok(message.to_owned())
}

/// An organization as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Organization {
    /// Its id.
    pub id: OrganizationId,
    /// Its name.
    pub name: OrganizationName,
    /// Where notices go; organizations made by an operator may have none.
    pub contact_email: Option<EmailAddress>,
    /// Its settings.
    pub settings: Settings,
    /// Its parent, for a child organization.
    pub parent: Option<OrganizationId>,
    /// Set by operators only.
    pub can_attach_files: bool,
    /// Set by operators only; allows `settings.external_optout_message`.
    pub can_external_optout: bool,
    /// Changes with every write, for `ETag`/`If-Match`.
    pub version: Version,
    /// When it was made.
    pub created_at: Timestamp,
    /// When it last changed.
    pub updated_at: Timestamp,
}

impl Organization {
    /// A root organization has no parent.
    #[must_use]
    pub fn is_root(&self) -> bool {
        self.parent.is_none()
    }

    /// Its place in the tree, for permission checks.
    #[must_use]
    pub fn node(&self) -> TreeNode {
        TreeNode {
            id: self.id,
            parent: self.parent,
        }
    }
}

/// An organization's place in the tree: its id and its parent's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TreeNode {
    /// The organization.
    pub id: OrganizationId,
    /// Its parent, if it is a child.
    pub parent: Option<OrganizationId>,
}

/// A validated organization to be stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewOrganization {
    /// Its name.
    pub name: OrganizationName,
    /// Where notices go.
    pub contact_email: Option<EmailAddress>,
    /// Its settings, defaults merged with what was given.
    pub settings: Settings,
    /// Its parent, for a child.
    pub parent: Option<OrganizationId>,
    /// Operator flag.
    pub can_attach_files: bool,
    /// Operator flag.
    pub can_external_optout: bool,
}

/// What the `parent` of a request refers to, once the caller resolved its hyperlink.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParentReference {
    /// Absent from the request.
    Absent,
    /// `null` or an empty string.
    Blank,
    /// A value that is no organization detail URL.
    NoUrlMatch,
    /// An organization detail URL whose id names no (live) organization.
    Missing,
    /// An existing organization.
    Found(TreeNode),
}

/// The fields of `POST /organizations/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewChildRequest {
    /// `name`.
    pub name: Input<String>,
    /// `contact_email`.
    pub contact_email: Input<String>,
    /// `parent`, resolved.
    pub parent: ParentReference,
    /// `settings`.
    pub settings: Input<SettingsInput>,
}

/// Checks a request to create a child of `actor_organization` and builds the new
/// organization, reporting every field problem together.
///
/// The role check comes before this (CONTRACT §4: "checked in this order after the
/// role check"); the parent rules are checked in the contract's order.
///
/// # Errors
/// Every problem of the request, keyed by field.
///
/// # Example
///
/// ```
/// use domain::organization::{NewChildRequest, ParentReference, TreeNode, plan_new_child};
/// use domain::{ErrorCode, FieldErrors, Input, OrganizationId};
///
/// let root = TreeNode { id: OrganizationId::new(1), parent: None };
/// let request = |name: &str, parent| NewChildRequest {
///     name: Input::Value(name.to_owned()),
///     contact_email: Input::Value("team@example.com".to_owned()),
///     parent,
///     settings: Input::Absent,
/// };
///
/// // A child of the actor's own root organization, with default settings.
/// let planned = plan_new_child(root, request("Lab", ParentReference::Found(root)))
///     .expect("valid");
/// assert_eq!(planned.parent, Some(root.id));
/// assert_eq!(planned.name.as_str(), "Lab");
/// assert!(!planned.can_attach_files);
///
/// // Every problem is reported together: a blank name, and a parent that is not the
/// // actor's organization.
/// let other = TreeNode { id: OrganizationId::new(9), parent: None };
/// let refused = plan_new_child(root, request(" ", ParentReference::Found(other)))
///     .expect_err("refused");
/// assert_eq!(
///     refused.field("name"),
///     Some(&FieldErrors::Codes(vec![ErrorCode::Blank]))
/// );
/// assert_eq!(
///     refused.field("parent"),
///     Some(&FieldErrors::Codes(vec![ErrorCode::ParentMustBeYourOrganization]))
/// );
///
/// // The tree is two levels deep: a child organization has no children.
/// let child = TreeNode { id: OrganizationId::new(2), parent: Some(root.id) };
/// let too_deep = plan_new_child(child, request("Lab", ParentReference::Found(child)))
///     .expect_err("refused");
/// assert_eq!(
///     too_deep.field("parent"),
///     Some(&FieldErrors::Codes(vec![ErrorCode::ParentAlreadyHasParent]))
/// );
/// ```
pub fn plan_new_child(
    actor_organization: TreeNode,
    request: NewChildRequest,
) -> Result<NewOrganization, ValidationErrors> {
    let mut errors = ValidationErrors::new();

    let name = errors.collect(
        "name",
        request
            .name
            .required()
            .and_then(|name| OrganizationName::parse(&name)),
    );
    let contact_email = errors.collect("contact_email", required_email(request.contact_email));
    let parent = errors.collect(
        "parent",
        new_child_parent(actor_organization, request.parent),
    );
    // A new child may not have an external opt-out message: its flag starts false.
    let settings = match settings_input(request.settings) {
        Ok(input) => match Settings::default().merged(input.unwrap_or_default(), false) {
            Ok(settings) => Some(settings),
            Err(nested) => {
                errors.add_nested("settings", nested);
                None
            }
        },
        Err(code) => {
            errors.add("settings", code);
            None
        }
    };

    errors.into_result()?;
    match (name, contact_email, parent, settings) {
        (Some(name), Some(contact_email), Some(parent), Some(settings)) => Ok(NewOrganization {
            name,
            contact_email: Some(contact_email),
            settings,
            parent: Some(parent),
            can_attach_files: false,
            can_external_optout: false,
        }),
        // Unreachable: every `None` above recorded an error.
        _ => Err(ValidationErrors::non_field(ErrorCode::Required)),
    }
}

/// The create-child parent rules, in the order of CONTRACT §4.
fn new_child_parent(
    actor_organization: TreeNode,
    parent: ParentReference,
) -> Result<OrganizationId, ErrorCode> {
    match parent {
        // Rule 1.
        ParentReference::Absent | ParentReference::Blank => Err(ErrorCode::Blank),
        // Rule 2.
        ParentReference::NoUrlMatch => Err(ErrorCode::NoUrlMatch),
        ParentReference::Missing => Err(ErrorCode::ObjectDoesNotExist),
        // Rule 3.
        ParentReference::Found(parent) if parent.id != actor_organization.id => {
            Err(ErrorCode::ParentMustBeYourOrganization)
        }
        // Rule 4: the tree is two levels deep.
        ParentReference::Found(_) if actor_organization.parent.is_some() => {
            Err(ErrorCode::ParentAlreadyHasParent)
        }
        ParentReference::Found(parent) => Ok(parent.id),
    }
}

fn required_email(input: Input<String>) -> Result<EmailAddress, ErrorCode> {
    input
        .required()
        .and_then(|value| EmailAddress::parse(&value))
}

fn settings_input(input: Input<SettingsInput>) -> Result<Option<SettingsInput>, ErrorCode> {
    input.optional()
}

/// Whether an update replaces the writable fields (`PUT`) or changes some (`PATCH`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpdateMode {
    /// `PUT`: `name` and `contact_email` are required.
    Replace,
    /// `PATCH`: any subset.
    Partial,
}

/// The fields of `PUT`/`PATCH /organizations/{id}/`; read-only fields are not here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrganizationChanges {
    /// `name`.
    pub name: Input<String>,
    /// `contact_email`.
    pub contact_email: Input<String>,
    /// `parent`, resolved.
    pub parent: ParentReference,
    /// `settings`, merged key by key.
    pub settings: Input<SettingsInput>,
}

/// Applies changes to an organization, reporting every problem together.
///
/// The returned organization keeps the stored version; storage bumps it.
///
/// # Errors
/// Every problem of the request, keyed by field.
pub fn apply_changes(
    organization: &Organization,
    mode: UpdateMode,
    changes: OrganizationChanges,
) -> Result<Organization, ValidationErrors> {
    let mut errors = ValidationErrors::new();
    let mut updated = organization.clone();

    let name = match mode {
        UpdateMode::Replace => changes.name.required().map(Some),
        UpdateMode::Partial => changes.name.optional(),
    }
    .and_then(|name| name.as_deref().map(OrganizationName::parse).transpose());
    if let Some(Some(name)) = errors.collect("name", name) {
        updated.name = name;
    }

    let contact_email = match mode {
        UpdateMode::Replace => changes.contact_email.required().map(Some),
        UpdateMode::Partial => changes.contact_email.optional(),
    }
    .and_then(|email| email.as_deref().map(EmailAddress::parse).transpose());
    if let Some(Some(email)) = errors.collect("contact_email", contact_email) {
        updated.contact_email = Some(email);
    }

    errors.collect("parent", unchanged_parent(organization, changes.parent));

    match settings_input(changes.settings) {
        Ok(Some(input)) => match organization
            .settings
            .merged(input, organization.can_external_optout)
        {
            Ok(settings) => updated.settings = settings,
            Err(nested) => errors.add_nested("settings", nested),
        },
        Ok(None) => {}
        Err(code) => errors.add("settings", code),
    }

    errors.into_result().map(|()| updated)
}

/// CONTRACT §4: `parent` cannot change; the same value is accepted.
fn unchanged_parent(organization: &Organization, parent: ParentReference) -> Result<(), ErrorCode> {
    match (parent, organization.parent) {
        (ParentReference::Absent, _) | (ParentReference::Blank, None) => Ok(()),
        (ParentReference::Found(given), Some(current)) if given.id == current => Ok(()),
        (ParentReference::NoUrlMatch, _) => Err(ErrorCode::NoUrlMatch),
        (ParentReference::Missing, _) => Err(ErrorCode::ObjectDoesNotExist),
        (ParentReference::Blank | ParentReference::Found(_), _) => {
            Err(ErrorCode::ParentCannotChange)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validation::FieldErrors;
    use proptest::prelude::*;

    fn root() -> TreeNode {
        TreeNode {
            id: OrganizationId::new(1),
            parent: None,
        }
    }

    fn child() -> TreeNode {
        TreeNode {
            id: OrganizationId::new(2),
            parent: Some(OrganizationId::new(1)),
        }
    }

    fn organization(node: TreeNode) -> Organization {
        let at = Timestamp::UNIX_EPOCH;
        Organization {
            id: node.id,
            name: OrganizationName::parse("Example").expect("valid"),
            contact_email: None,
            settings: Settings::default(),
            parent: node.parent,
            can_attach_files: false,
            can_external_optout: false,
            version: Version::FIRST,
            created_at: at,
            updated_at: at,
        }
    }

    fn request(parent: ParentReference) -> NewChildRequest {
        NewChildRequest {
            name: Input::Value("Child organization".to_owned()),
            contact_email: Input::Value("child@example.com".to_owned()),
            parent,
            settings: Input::Absent,
        }
    }

    fn changes() -> OrganizationChanges {
        OrganizationChanges {
            name: Input::Absent,
            contact_email: Input::Absent,
            parent: ParentReference::Absent,
            settings: Input::Absent,
        }
    }

    fn parent_codes(result: Result<NewOrganization, ValidationErrors>) -> Vec<ErrorCode> {
        let errors = result.expect_err("should be refused");
        errors.codes("parent").expect("parent errors").to_vec()
    }

    #[test]
    fn a_name_of_200_characters_is_accepted_and_201_refused() {
        assert!(OrganizationName::parse(&"n".repeat(200)).is_ok());
        assert_eq!(
            OrganizationName::parse(&"n".repeat(201)),
            Err(ErrorCode::MaxLength { max: 200 })
        );
    }

    #[test]
    fn a_blank_name_is_refused() {
        assert_eq!(OrganizationName::parse(" \t"), Err(ErrorCode::Blank));
    }

    #[test]
    fn a_nickname_of_3_or_31_characters_is_refused_and_4_or_30_accepted() {
        assert_eq!(Nickname::parse("abc"), Err(ErrorCode::InvalidNickname));
        assert!(Nickname::parse("abcd").is_ok());
        assert!(Nickname::parse(&"a".repeat(30)).is_ok());
        assert_eq!(
            Nickname::parse(&"a".repeat(31)),
            Err(ErrorCode::InvalidNickname)
        );
    }

    #[test]
    fn an_empty_nickname_is_accepted() {
        assert_eq!(
            Nickname::parse("").map(|n| n.as_str().to_owned()),
            Ok(String::new())
        );
    }

    #[test]
    fn a_nickname_with_capitals_underscores_or_accents_is_refused() {
        for bad in ["Nickname", "nick_name", "nické", "nick name"] {
            assert_eq!(
                Nickname::parse(bad),
                Err(ErrorCode::InvalidNickname),
                "{bad}"
            );
        }
    }

    /// Stored-looking values and their near misses: padded, blank, at the length bounds,
    /// with capitals, NULs or other Unicode white space.
    fn stored_like_text() -> impl Strategy<Value = String> {
        let core = prop_oneof![
            any::<String>(),
            "[a-z0-9-]{0,32}",
            "[A-Za-z0-9_ \u{e9}-]{0,32}",
            "[a-z]{195,205}",
            "[a-z\u{e9}\u{0}\n]{0,12}",
        ];
        let padding = prop_oneof![Just(""), Just(" "), Just("\t"), Just("\u{a0}"), Just("\n")];
        (padding.clone(), core, padding)
            .prop_map(|(before, core, after)| format!("{before}{core}{after}"))
    }

    proptest! {
        #[test]
        fn a_stored_name_or_nickname_reads_as_parse_reads_it(value in stored_like_text()) {
            prop_assert_eq!(
                OrganizationName::from_stored(value.clone()),
                OrganizationName::parse(&value)
            );
            prop_assert_eq!(Nickname::from_stored(value.clone()), Nickname::parse(&value));
        }

        #[test]
        fn an_accepted_name_or_nickname_parses_back_as_itself(value in any::<String>()) {
            if let Ok(name) = OrganizationName::parse(&value) {
                prop_assert!(!name.as_str().contains('\0'));
                prop_assert_eq!(OrganizationName::parse(name.as_str()), Ok(name.clone()));
            }
            if let Ok(nickname) = Nickname::parse(&value) {
                prop_assert_eq!(Nickname::parse(nickname.as_str()), Ok(nickname.clone()));
            }
        }

        #[test]
        fn an_accepted_external_optout_message_merges_again_as_itself(value in any::<String>()) {
            let input = |message: &str| SettingsInput {
                external_optout_message: Input::Value(message.to_owned()),
                ..SettingsInput::default()
            };
            if let Ok(settings) = Settings::default().merged(input(&value), true) {
                let message = settings.external_optout_message.clone();
                prop_assert!(!message.contains('\0'));
                prop_assert_eq!(Settings::default().merged(input(&message), true), Ok(settings));
            }
        }

        #[test]
        fn every_nickname_of_the_allowed_alphabet_and_length_is_accepted(value in "[a-z0-9-]{4,30}") {
            prop_assert!(Nickname::parse(&value).is_ok());
        }

        #[test]
        fn a_nickname_with_any_other_character_is_refused(
            prefix in "[a-z0-9-]{2,14}",
            bad in "[^a-z0-9\\- \t\n\r\u{b}\u{c}]",
            suffix in "[a-z0-9-]{2,14}",
        ) {
            let value = format!("{prefix}{bad}{suffix}");
            prop_assert_eq!(Nickname::parse(&value), Err(ErrorCode::InvalidNickname));
        }
    }

    #[test]
    fn new_settings_have_the_contract_defaults() {
        let settings = Settings::default();

        assert_eq!(settings.nickname.as_str(), "");
        assert!(settings.notify_message_status);
        assert!(!settings.notify_optouts);
        assert_eq!(settings.external_optout_message, "");
    }

    #[test]
    fn settings_merge_key_by_key() {
        let input = SettingsInput {
            notify_optouts: Input::Value(true),
            ..SettingsInput::default()
        };

        let merged = Settings::default().merged(input, false).expect("valid");

        assert!(merged.notify_optouts);
        assert!(merged.notify_message_status);
    }

    #[test]
    fn an_external_optout_message_needs_the_flag() {
        let input = || SettingsInput {
            external_optout_message: Input::Value("Custom message".to_owned()),
            ..SettingsInput::default()
        };

        let refused = Settings::default()
            .merged(input(), false)
            .expect_err("refused");
        let allowed = Settings::default().merged(input(), true).expect("allowed");

        assert_eq!(
            refused.codes("external_optout_message"),
            Some(&[ErrorCode::ExternalOptoutNotAllowed][..])
        );
        assert_eq!(allowed.external_optout_message, "Custom message");
    }

    #[test]
    fn an_external_optout_message_is_bounded_and_holds_no_nul() {
        let input = |message: String| SettingsInput {
            external_optout_message: Input::Value(message),
            ..SettingsInput::default()
        };

        let longest = Settings::default().merged(input("m".repeat(1000)), true);
        let too_long = Settings::default()
            .merged(input("m".repeat(1001)), true)
            .expect_err("refused");
        let nul = Settings::default()
            .merged(input("a\0b".to_owned()), true)
            .expect_err("refused");

        assert!(longest.is_ok());
        assert_eq!(
            too_long.codes("external_optout_message"),
            Some(&[ErrorCode::MaxLength { max: 1000 }][..])
        );
        assert_eq!(
            nul.codes("external_optout_message"),
            Some(&[ErrorCode::NullCharacter][..])
        );
    }

    #[test]
    fn a_name_keeps_its_line_breaks_and_refuses_a_nul() {
        assert_eq!(
            OrganizationName::parse("Acme\nInc").map(|n| n.as_str().to_owned()),
            Ok("Acme\nInc".to_owned())
        );
        assert_eq!(
            OrganizationName::parse("Acme\0"),
            Err(ErrorCode::NullCharacter)
        );
    }

    #[test]
    fn a_blank_external_optout_message_is_fine_without_the_flag() {
        let input = SettingsInput {
            external_optout_message: Input::Value("  ".to_owned()),
            ..SettingsInput::default()
        };

        assert!(Settings::default().merged(input, false).is_ok());
    }

    #[test]
    fn null_settings_values_are_refused() {
        let input = SettingsInput {
            nickname: Input::Null,
            notify_optouts: Input::Null,
            ..SettingsInput::default()
        };

        let errors = Settings::default()
            .merged(input, false)
            .expect_err("refused");

        assert_eq!(errors.codes("nickname"), Some(&[ErrorCode::Null][..]));
        assert_eq!(errors.codes("notify_optouts"), Some(&[ErrorCode::Null][..]));
    }

    #[test]
    fn a_child_of_the_actors_root_organization_is_planned_with_defaults() {
        let planned =
            plan_new_child(root(), request(ParentReference::Found(root()))).expect("valid");

        assert_eq!(planned.parent, Some(root().id));
        assert_eq!(planned.name.as_str(), "Child organization");
        assert_eq!(planned.settings, Settings::default());
        assert!(!planned.can_attach_files);
        assert!(!planned.can_external_optout);
    }

    #[test]
    fn rule_1_a_missing_or_blank_parent_is_blank() {
        assert_eq!(
            parent_codes(plan_new_child(root(), request(ParentReference::Absent))),
            [ErrorCode::Blank]
        );
        assert_eq!(
            parent_codes(plan_new_child(root(), request(ParentReference::Blank))),
            [ErrorCode::Blank]
        );
    }

    #[test]
    fn rule_2_a_parent_that_is_no_organization_url_or_does_not_exist_is_refused() {
        assert_eq!(
            parent_codes(plan_new_child(root(), request(ParentReference::NoUrlMatch))),
            [ErrorCode::NoUrlMatch]
        );
        assert_eq!(
            parent_codes(plan_new_child(root(), request(ParentReference::Missing))),
            [ErrorCode::ObjectDoesNotExist]
        );
    }

    #[test]
    fn rule_3_a_parent_other_than_the_actors_organization_is_refused() {
        let other_root = TreeNode {
            id: OrganizationId::new(9),
            parent: None,
        };

        assert_eq!(
            parent_codes(plan_new_child(
                root(),
                request(ParentReference::Found(other_root))
            )),
            [ErrorCode::ParentMustBeYourOrganization]
        );
        // A child of the actor's organization is not the actor's organization either.
        assert_eq!(
            parent_codes(plan_new_child(
                root(),
                request(ParentReference::Found(child()))
            )),
            [ErrorCode::ParentMustBeYourOrganization]
        );
    }

    #[test]
    fn rule_3_comes_before_rule_4() {
        let result = plan_new_child(child(), request(ParentReference::Found(root())));

        assert_eq!(
            parent_codes(result),
            [ErrorCode::ParentMustBeYourOrganization]
        );
    }

    #[test]
    fn rule_4_a_child_organization_cannot_have_children() {
        let result = plan_new_child(child(), request(ParentReference::Found(child())));

        assert_eq!(parent_codes(result), [ErrorCode::ParentAlreadyHasParent]);
    }

    #[test]
    fn all_field_errors_of_a_create_are_reported_together() {
        let request = NewChildRequest {
            name: Input::Absent,
            contact_email: Input::Value("not-an-email".to_owned()),
            parent: ParentReference::Blank,
            settings: Input::Value(SettingsInput {
                nickname: Input::Value("No".to_owned()),
                external_optout_message: Input::Value("Custom message".to_owned()),
                ..SettingsInput::default()
            }),
        };

        let errors = plan_new_child(root(), request).expect_err("refused");

        assert_eq!(errors.codes("name"), Some(&[ErrorCode::Required][..]));
        assert_eq!(
            errors.codes("contact_email"),
            Some(&[ErrorCode::InvalidEmail][..])
        );
        assert_eq!(errors.codes("parent"), Some(&[ErrorCode::Blank][..]));
        let Some(FieldErrors::Nested(settings)) = errors.field("settings") else {
            panic!("expected nested settings errors: {errors:?}");
        };
        assert_eq!(
            settings.codes("nickname"),
            Some(&[ErrorCode::InvalidNickname][..])
        );
        assert_eq!(
            settings.codes("external_optout_message"),
            Some(&[ErrorCode::ExternalOptoutNotAllowed][..])
        );
    }

    #[test]
    fn a_create_with_null_settings_is_refused_on_settings() {
        let mut request = request(ParentReference::Found(root()));
        request.settings = Input::Null;

        let errors = plan_new_child(root(), request).expect_err("refused");

        assert_eq!(errors.codes("settings"), Some(&[ErrorCode::Null][..]));
    }

    #[test]
    fn put_requires_name_and_contact_email() {
        let errors = apply_changes(&organization(root()), UpdateMode::Replace, changes())
            .expect_err("refused");

        assert_eq!(errors.codes("name"), Some(&[ErrorCode::Required][..]));
        assert_eq!(
            errors.codes("contact_email"),
            Some(&[ErrorCode::Required][..])
        );
    }

    #[test]
    fn patch_with_nothing_changes_nothing() {
        let original = organization(root());

        let updated = apply_changes(&original, UpdateMode::Partial, changes()).expect("valid");

        assert_eq!(updated, original);
    }

    #[test]
    fn patch_merges_settings_key_by_key_and_keeps_other_fields() {
        let mut original = organization(root());
        original.settings.nickname = Nickname::parse("acme").expect("valid");
        let mut changes = changes();
        changes.settings = Input::Value(SettingsInput {
            notify_optouts: Input::Value(true),
            ..SettingsInput::default()
        });

        let updated = apply_changes(&original, UpdateMode::Partial, changes).expect("valid");

        assert_eq!(updated.settings.nickname.as_str(), "acme");
        assert!(updated.settings.notify_optouts);
        assert_eq!(updated.name, original.name);
    }

    #[test]
    fn an_external_optout_message_is_accepted_when_the_organization_may_have_one() {
        let mut original = organization(root());
        original.can_external_optout = true;
        let mut changes = changes();
        changes.settings = Input::Value(SettingsInput {
            external_optout_message: Input::Value("Bye".to_owned()),
            ..SettingsInput::default()
        });

        let updated = apply_changes(&original, UpdateMode::Partial, changes).expect("valid");

        assert_eq!(updated.settings.external_optout_message, "Bye");
    }

    #[test]
    fn the_same_parent_is_accepted_and_another_refused() {
        let original = organization(child());
        let same = OrganizationChanges {
            parent: ParentReference::Found(root()),
            ..changes()
        };
        let other = OrganizationChanges {
            parent: ParentReference::Found(TreeNode {
                id: OrganizationId::new(5),
                parent: None,
            }),
            ..changes()
        };
        let blank = OrganizationChanges {
            parent: ParentReference::Blank,
            ..changes()
        };

        assert!(apply_changes(&original, UpdateMode::Partial, same).is_ok());
        for refused in [other, blank] {
            let errors =
                apply_changes(&original, UpdateMode::Partial, refused).expect_err("refused");
            assert_eq!(
                errors.codes("parent"),
                Some(&[ErrorCode::ParentCannotChange][..])
            );
        }
    }

    #[test]
    fn a_null_parent_is_the_same_value_for_a_root_organization() {
        let original = organization(root());
        let changes = OrganizationChanges {
            parent: ParentReference::Blank,
            ..changes()
        };

        assert!(apply_changes(&original, UpdateMode::Partial, changes).is_ok());
    }

    #[test]
    fn an_unresolvable_parent_on_update_reports_the_hyperlink_problem() {
        let original = organization(child());
        let no_match = OrganizationChanges {
            parent: ParentReference::NoUrlMatch,
            ..changes()
        };
        let missing = OrganizationChanges {
            parent: ParentReference::Missing,
            ..changes()
        };

        let no_match =
            apply_changes(&original, UpdateMode::Partial, no_match).expect_err("refused");
        let missing = apply_changes(&original, UpdateMode::Partial, missing).expect_err("refused");

        assert_eq!(no_match.codes("parent"), Some(&[ErrorCode::NoUrlMatch][..]));
        assert_eq!(
            missing.codes("parent"),
            Some(&[ErrorCode::ObjectDoesNotExist][..])
        );
    }

    #[test]
    fn all_field_errors_of_an_update_are_reported_together() {
        let changes = OrganizationChanges {
            name: Input::Value(String::new()),
            contact_email: Input::Value("nope".to_owned()),
            parent: ParentReference::Found(TreeNode {
                id: OrganizationId::new(5),
                parent: None,
            }),
            settings: Input::Value(SettingsInput {
                notify_message_status: Input::Invalid(ErrorCode::InvalidBoolean),
                ..SettingsInput::default()
            }),
        };

        let errors = apply_changes(&organization(root()), UpdateMode::Replace, changes)
            .expect_err("refused");

        assert_eq!(errors.codes("name"), Some(&[ErrorCode::Blank][..]));
        assert_eq!(
            errors.codes("contact_email"),
            Some(&[ErrorCode::InvalidEmail][..])
        );
        assert_eq!(
            errors.codes("parent"),
            Some(&[ErrorCode::ParentCannotChange][..])
        );
        assert!(matches!(
            errors.field("settings"),
            Some(FieldErrors::Nested(_))
        ));
    }
}
