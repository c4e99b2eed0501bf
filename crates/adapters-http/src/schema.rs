//! The schemas of what requests may hold, as lenient as the service is (DRF's coercions,
//! CONTRACT §2): each says exactly which values are accepted, so that a request the
//! document allows is accepted and one it forbids is refused.

use utoipa::openapi::schema::{AnyOfBuilder, ObjectBuilder, SchemaFormat, SchemaType, Type};
use utoipa::openapi::{KnownFormat, Schema};

/// No NUL character anywhere (CONTRACT §9).
const NO_NUL: &str = "^[^\\x00]*$";

/// Not blank once trimmed, and no NUL character.
const NOT_BLANK: &str = "^[^\\x00]*[^\\x00\\s][^\\x00]*$";

/// The roles, as the wire names them.
const ROLES: [&str; 4] = ["administrators", "managers", "users", "collaborators"];

fn string() -> ObjectBuilder {
    ObjectBuilder::new().schema_type(Type::String)
}

/// A DRF `CharField` that must not be blank: a string with no NUL of 1 to `max`
/// characters once trimmed, or a number (taken as its text).
fn char_field(max: usize) -> Schema {
    let pattern = format!(
        "^\\s*[^\\s\\x00]([^\\x00]{{0,{}}}[^\\s\\x00])?\\s*$",
        max - 2
    );
    AnyOfBuilder::new()
        .item(string().pattern(Some(pattern)))
        .item(ObjectBuilder::new().schema_type(Type::Number))
        .into()
}

/// An organization's name: not blank, at most 200 characters.
pub fn organization_name() -> Schema {
    char_field(200)
}

/// A first or last name: not blank, at most 50 characters.
pub fn person_name() -> Schema {
    char_field(50)
}

/// A secret or credential given as text: not blank, no NUL.
pub fn secret() -> Schema {
    string()
        .pattern(Some(NOT_BLANK))
        .max_length(Some(4096))
        .into()
}

/// A login identifier: not blank, at most 320 characters once trimmed.
pub fn login_identifier() -> Schema {
    char_field(320)
}

/// A new password: at least 8 characters, no NUL.
pub fn new_password() -> Schema {
    string()
        .pattern(Some(NO_NUL))
        .min_length(Some(8))
        .max_length(Some(4096))
        .into()
}

/// An e-mail address.
pub fn email() -> Schema {
    string()
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Email)))
        .max_length(Some(320))
        .into()
}

/// A nickname: empty, or 4 to 30 lowercase letters, digits and dashes.
pub fn nickname() -> Schema {
    string()
        .pattern(Some("^\\s*([a-z0-9-]{4,30})?\\s*$"))
        .into()
}

/// The external opt-out message: blank, as organizations may only set one when
/// `can_external_optout` is true, which no request can make true.
pub fn external_optout_message() -> Schema {
    string()
        .pattern(Some("^\\s*$"))
        .description(Some(
            "Blank unless the organization's `can_external_optout` is true.",
        ))
        .into()
}

/// A DRF `BooleanField`: `true`/`false`, the strings DRF knows, or 0 and 1.
pub fn boolean() -> Schema {
    let words = [
        "t", "T", "y", "Y", "yes", "Yes", "YES", "true", "True", "TRUE", "1", "on", "On", "ON",
        "f", "F", "n", "N", "no", "No", "NO", "false", "False", "FALSE", "0", "off", "Off", "OFF",
    ];
    AnyOfBuilder::new()
        .item(ObjectBuilder::new().schema_type(Type::Boolean))
        .item(string().enum_values(Some(words)))
        .item(
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .enum_values(Some([0, 1])),
        )
        .into()
}

/// A DRF `IntegerField` from `min` to `max`: an integer, or its text.
fn bounded_integer(min: i64, max: i64, text_pattern: &str) -> Schema {
    AnyOfBuilder::new()
        .item(
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .minimum(Some(min))
                .maximum(Some(max)),
        )
        .item(string().pattern(Some(text_pattern)))
        .into()
}

/// The days an invitation lasts: 1 to 30.
pub fn invitation_days() -> Schema {
    bounded_integer(1, 30, "^\\s*\\+?0*([1-9]|[12][0-9]|30)(\\.0*)?\\s*$")
}

/// A role.
pub fn role() -> Schema {
    string().enum_values(Some(ROLES)).into()
}

/// The origin of an opt-out.
pub fn origin() -> Schema {
    string()
        .enum_values(Some([
            "mail",
            "web",
            "feedback-loop",
            "bounce",
            "abuse",
            "api",
        ]))
        .into()
}

/// The URL of an organization, relative (`/organizations/1/`) or absolute.
pub fn organization_link() -> Schema {
    string()
        .pattern(Some(NOT_BLANK))
        .description(Some(
            "The URL of an organization, relative (`/organizations/1/`) or absolute.",
        ))
        .into()
}

/// The parent hyperlink on an update: read-only, as it cannot change (the same value is
/// accepted, another refused).
pub fn unchanged_parent() -> Schema {
    string()
        .read_only(Some(true))
        .description(Some(
            "Cannot change: the same value is accepted, another refused.",
        ))
        .into()
}

/// A filter of a list: one of `choices`, or empty for none.
fn choice_filter(choices: &[&str]) -> Schema {
    let mut values = vec![""];
    values.extend_from_slice(choices);
    string().enum_values(Some(values)).into()
}

/// `?role=`.
pub fn role_filter() -> Schema {
    choice_filter(&ROLES)
}

/// `?status=` of invitations.
pub fn status_filter() -> Schema {
    choice_filter(&["pending", "accepted", "revoked", "expired"])
}

/// `?origin=` of opt-outs.
pub fn origin_filter() -> Schema {
    choice_filter(&["mail", "web", "feedback-loop", "bounce", "abuse", "api"])
}

/// `?format=` of opt-outs.
pub fn format_filter() -> Schema {
    choice_filter(&["json", "csv"])
}

/// A text filter: at most 320 characters, no NUL.
pub fn text_filter() -> Schema {
    string().pattern(Some(NO_NUL)).max_length(Some(320)).into()
}

/// `?page=`: a positive integer.
pub fn page() -> Schema {
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .minimum(Some(1))
        .into()
}

/// `?page_size=`: any text. A positive integer is the page size, capped at 1000; anything
/// else is ignored and the default, 50, applies (CONTRACT §2).
pub fn page_size() -> Schema {
    ObjectBuilder::new()
        .schema_type(SchemaType::AnyValue)
        .description(Some(
            "Rows per page: 50 by default, at most 1000 (larger is capped); a value that is not a positive integer is ignored.",
        ))
        .into()
}
