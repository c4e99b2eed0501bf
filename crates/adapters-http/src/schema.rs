//! The schemas of what requests may hold, as lenient as the service is (DRF's coercions,
//! CONTRACT §2): each says exactly which values are accepted, so that a request the
//! document allows is accepted and one it forbids is refused. Request bodies and filters
//! use them through the field kinds of [`crate::request`].

use domain::audit::EventAction;
use utoipa::openapi::schema::{AnyOfBuilder, ObjectBuilder, SchemaFormat, SchemaType, Type};
use utoipa::openapi::{KnownFormat, Schema};

use crate::extract::coerce::{FALSE_WORDS, TRUE_WORDS};

/// No NUL character anywhere (CONTRACT §9).
const NO_NUL: &str = "^[^\\x00]*$";

/// Not blank once trimmed, and no NUL character.
const NOT_BLANK: &str = "^[^\\x00]*[^\\x00\\s][^\\x00]*$";

/// The roles, as the wire names them.
const ROLES: [&str; 4] = ["administrators", "managers", "users", "collaborators"];

/// The origins of opt-outs.
const ORIGINS: [&str; 6] = ["mail", "web", "feedback-loop", "bounce", "abuse", "api"];

fn typed(kind: Type) -> ObjectBuilder {
    ObjectBuilder::new().schema_type(kind)
}

fn text(pattern: &str) -> ObjectBuilder {
    typed(Type::String).pattern(Some(pattern))
}

fn any_of<const N: usize>(schemas: [ObjectBuilder; N]) -> Schema {
    schemas
        .into_iter()
        .fold(AnyOfBuilder::new(), AnyOfBuilder::item)
        .into()
}

/// A DRF `CharField` that must not be blank: a string with no NUL of 1 to `max`
/// characters once trimmed, or a number (taken as its text).
pub fn char_field(max: usize) -> Schema {
    let inner = max - 2;
    let pattern = format!("^\\s*[^\\s\\x00]([^\\x00]{{0,{inner}}}[^\\s\\x00])?\\s*$");
    any_of([text(&pattern), typed(Type::Number)])
}

/// A secret or credential given as text: not blank, no NUL.
pub fn secret() -> Schema {
    text(NOT_BLANK).max_length(Some(4096)).into()
}

/// A new password: at least 8 characters, no NUL.
pub fn new_password() -> Schema {
    text(NO_NUL)
        .min_length(Some(8))
        .max_length(Some(4096))
        .into()
}

/// An e-mail address.
pub fn email() -> Schema {
    let format = SchemaFormat::KnownFormat(KnownFormat::Email);
    typed(Type::String)
        .format(Some(format))
        .max_length(Some(320))
        .into()
}

/// A nickname: empty, or 4 to 30 lowercase letters, digits and dashes (trimmed).
pub fn nickname() -> Schema {
    text("^\\s*([a-z0-9-]{4,30})?\\s*$").into()
}

/// The external opt-out message: blank, as organizations may only set one when
/// `can_external_optout` is true, which no request can make true.
pub fn external_optout_message() -> Schema {
    let rule = "Blank unless the organization's `can_external_optout` is true.";
    text("^\\s*$").description(Some(rule)).into()
}

/// A DRF `BooleanField`: `true`/`false`, the strings DRF knows, or 0 and 1.
pub fn boolean() -> Schema {
    let numbers = typed(Type::Integer).enum_values(Some([0, 1]));
    let words = TRUE_WORDS.into_iter().chain(FALSE_WORDS);
    let words = typed(Type::String).enum_values(Some(words));
    any_of([typed(Type::Boolean), words, numbers])
}

/// The days an invitation lasts: 1 to 30, as an integer or its text.
pub fn invitation_days() -> Schema {
    let number = typed(Type::Integer).minimum(Some(1)).maximum(Some(30));
    any_of([number, text("^\\s*\\+?0*([1-9]|[12][0-9]|30)(\\.0*)?\\s*$")])
}

/// The days an API key lasts: 1 to 365, as a number or a numeric string.
pub fn api_key_days() -> Schema {
    let number = typed(Type::Integer).minimum(Some(1)).maximum(Some(365));
    any_of([
        number,
        text("^\\s*\\+?0*([1-9]|[1-9][0-9]|[12][0-9][0-9]|3[0-5][0-9]|36[0-5])(\\.0*)?\\s*$"),
    ])
}

/// An API key's scope.
pub fn scope() -> Schema {
    one_of(["read", "write"])
}

/// One of `values`.
fn one_of<const N: usize>(values: [&str; N]) -> Schema {
    typed(Type::String).enum_values(Some(values)).into()
}

/// A role.
pub fn role() -> Schema {
    one_of(ROLES)
}

/// A service account's role: `administrators` is refused.
pub fn service_role() -> Schema {
    one_of(["managers", "users", "collaborators"])
}

/// A service account's name (also its identifier).
pub fn service_account_name() -> Schema {
    text("^[A-Za-z0-9._-]{1,50}$")
        .min_length(Some(1))
        .max_length(Some(50))
        .into()
}

/// `?kind=` of members: people or service accounts.
pub fn kind_filter() -> Schema {
    choice_filter(&["human", "service"])
}

/// The origin of an opt-out.
pub fn origin() -> Schema {
    one_of(ORIGINS)
}

/// The URL of an organization, relative (`/organizations/1/`) or absolute.
pub fn organization_link() -> Schema {
    let rule = "The URL of an organization, relative (`/organizations/1/`) or absolute.";
    text(NOT_BLANK).description(Some(rule)).into()
}

/// The parent hyperlink on an update: read-only, as it cannot change (the same value is
/// accepted, another refused).
pub fn unchanged_parent() -> Schema {
    let rule = "Cannot change: the same value is accepted, another refused.";
    typed(Type::String)
        .read_only(Some(true))
        .description(Some(rule))
        .into()
}

/// A filter of a list: one of `choices`, or empty for none.
fn choice_filter(choices: &[impl AsRef<str>]) -> Schema {
    let values = std::iter::once("").chain(choices.iter().map(AsRef::as_ref));
    typed(Type::String).enum_values(Some(values)).into()
}

/// `?role=`.
pub fn role_filter() -> Schema {
    choice_filter(&ROLES)
}

/// `?status=` of invitations.
pub fn status_filter() -> Schema {
    choice_filter(&["pending", "accepted", "revoked", "expired"])
}

/// `?action=` of the audit log: an action, or a prefix such as `member.*`.
pub fn event_action_filter() -> Schema {
    let mut choices: Vec<String> = EventAction::ALL
        .iter()
        .map(|action| action.as_str().to_owned())
        .collect();
    for action in EventAction::ALL {
        push_prefix(&mut choices, action);
    }
    choice_filter(&choices)
}

/// Adds the pattern of `action`'s prefix (`member.*`) to `choices`, unless it is there.
fn push_prefix(choices: &mut Vec<String>, action: &EventAction) {
    if let Some((prefix, _)) = action.as_str().split_once('.') {
        let pattern = format!("{prefix}.*");
        if !choices.contains(&pattern) {
            choices.push(pattern);
        }
    }
}

/// A webhook's `events`: 1 to 50 of `*`, an action or a prefix such as `member.*`.
pub fn event_patterns() -> Schema {
    use utoipa::openapi::schema::ArrayBuilder;
    let mut choices: Vec<String> = vec!["*".to_owned()];
    for action in EventAction::ALL {
        push_prefix(&mut choices, action);
        choices.push(action.as_str().to_owned());
    }
    ArrayBuilder::new()
        .items(typed(Type::String).enum_values(Some(choices)))
        .min_items(Some(1))
        .max_items(Some(domain::webhook::MAX_PATTERNS))
        .into()
}

/// A webhook's endpoint: an absolute `http`/`https` URL of at most 2000 characters.
pub fn endpoint() -> Schema {
    text("^\\s*[hH][tT][tT][pP][sS]?://[^\\x00]+$")
        .format(Some(SchemaFormat::Custom("uri".to_owned())))
        .max_length(Some(domain::webhook::ENDPOINT_MAX_LENGTH))
        .into()
}

/// A free text of at most 200 characters, blank allowed.
pub fn description() -> Schema {
    text(NO_NUL)
        .max_length(Some(domain::webhook::DESCRIPTION_MAX_LENGTH))
        .into()
}

/// `?origin=` of opt-outs.
pub fn origin_filter() -> Schema {
    choice_filter(&ORIGINS)
}

/// `?format=` of opt-outs.
pub fn format_filter() -> Schema {
    choice_filter(&["json", "csv"])
}

/// A text filter: at most 320 characters, no NUL.
pub fn text_filter() -> Schema {
    text(NO_NUL).max_length(Some(320)).into()
}

/// `?cursor=` of the audit log: empty (the first page) or an event id in decimal digits.
pub fn event_cursor() -> Schema {
    text("^[0-9]{0,18}$").into()
}

/// `?page=`: a positive integer.
pub fn page() -> Schema {
    typed(Type::Integer).minimum(Some(1)).into()
}

/// `?page_size=`: any text. A positive integer is the page size, capped at 1000; anything
/// else is ignored and the default, 50, applies (CONTRACT §2).
pub fn page_size() -> Schema {
    let rule = "Rows per page: 50 by default, at most 1000 (larger is capped); a value that is not a positive integer is ignored.";
    ObjectBuilder::new()
        .schema_type(SchemaType::AnyValue)
        .description(Some(rule))
        .into()
}
