//! JSON values into domain inputs, with Django REST framework's coercions.
//!
//! Each field is converted on its own into an [`Input`], so that the use case can
//! report every problem of a request together (see `docs/http.md`). No string that a
//! database refuses gets through: a NUL character is `Invalid(NullCharacter)` in every
//! string field, as DRF's `CharField` refuses it (CONTRACT §9).

use domain::organization::SettingsInput;
use domain::validation::storable;
use domain::{ErrorCode, Input, OrganizationId, UserId};
use ports::inbound::{MemberLink, ParentLink};
use serde_json::{Map, Value};

/// A JSON object body, as DRF's `request.data`.
pub type Fields = Map<String, Value>;

/// Python's name for the type of a JSON value, as DRF's messages show it.
#[must_use]
pub fn python_type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "NoneType",
        Value::Bool(_) => "bool",
        Value::Number(number) if number.is_f64() => "float",
        Value::Number(_) => "int",
        Value::String(_) => "str",
        Value::Array(_) => "list",
        Value::Object(_) => "dict",
    }
}

/// A `CharField`: strings as they are, numbers as their text, anything else invalid;
/// a string holding a NUL character is invalid (`NullCharacter`).
#[must_use]
pub fn string(fields: &Fields, name: &str) -> Input<String> {
    field(fields, name, |value| match value {
        Value::Number(number) => Ok(number.to_string()),
        other => string_value(other),
    })
}

/// A field that is neither absent nor `null`, read by `read`.
fn field<T>(
    fields: &Fields,
    name: &str,
    read: impl FnOnce(&Value) -> Result<T, ErrorCode>,
) -> Input<T> {
    match fields.get(name) {
        None => Input::Absent,
        Some(Value::Null) => Input::Null,
        Some(value) => read(value).map_or_else(Input::Invalid, Input::Value),
    }
}

/// A JSON string without NUL; any other value is invalid.
fn string_value(value: &Value) -> Result<String, ErrorCode> {
    match value {
        Value::String(text) => storable(text).map(str::to_owned),
        _ => Err(ErrorCode::InvalidString),
    }
}

/// A `ListField(child=CharField())`: a JSON array of strings (at most 50), each without
/// NUL; anything else is invalid.
#[must_use]
pub fn string_list(fields: &Fields, name: &str) -> Input<Vec<String>> {
    const MAX_ITEMS: usize = 50;
    field(fields, name, |value| match value {
        Value::Array(items) if items.len() > MAX_ITEMS => {
            Err(ErrorCode::MaxLength { max: MAX_ITEMS })
        }
        Value::Array(items) => items.iter().map(string_value).collect(),
        _ => Err(ErrorCode::NotAList),
    })
}

/// A `CharField(max_length=max)` for a field that no domain type bounds (the login
/// identifier): as [`string`], and a value of more than `max` characters once trimmed
/// is invalid (`MaxLength`).
#[must_use]
pub fn bounded_string(fields: &Fields, name: &str, max: usize) -> Input<String> {
    match string(fields, name) {
        Input::Value(text) if text.trim().chars().count() > max => {
            Input::Invalid(ErrorCode::MaxLength { max })
        }
        other => other,
    }
}

/// A `BooleanField`: `true`/`false` and DRF's accepted strings and numbers.
#[must_use]
pub fn boolean(fields: &Fields, name: &str) -> Input<bool> {
    field(fields, name, |value| {
        boolean_value(value).ok_or(ErrorCode::InvalidBoolean)
    })
}

/// DRF's spellings of true.
pub const TRUE_WORDS: [&str; 14] = [
    "t", "T", "y", "Y", "yes", "Yes", "YES", "true", "True", "TRUE", "1", "on", "On", "ON",
];

/// DRF's spellings of false.
pub const FALSE_WORDS: [&str; 14] = [
    "f", "F", "n", "N", "no", "No", "NO", "false", "False", "FALSE", "0", "off", "Off", "OFF",
];

fn boolean_value(value: &Value) -> Option<bool> {
    match value {
        Value::Bool(flag) => Some(*flag),
        Value::String(text) if TRUE_WORDS.contains(&text.as_str()) => Some(true),
        Value::String(text) if FALSE_WORDS.contains(&text.as_str()) => Some(false),
        // Python compares 1.0 == 1 and 0.0 == 0, so DRF accepts those too.
        Value::Number(number) => match number.as_f64() {
            Some(1.0) => Some(true),
            Some(0.0) => Some(false),
            _ => None,
        },
        _ => None,
    }
}

/// An `IntegerField`: integers, integral floats, and integer strings (`"7"`, `" 7 "`,
/// `"7.0"`); anything else invalid.
#[must_use]
pub fn integer(fields: &Fields, name: &str) -> Input<i64> {
    field(fields, name, |value| {
        integer_value(value).ok_or(ErrorCode::InvalidInteger)
    })
}

fn integer_value(value: &Value) -> Option<i64> {
    match value {
        Value::Number(number) => number.as_i64().or_else(|| {
            let float = number.as_f64()?;
            // Python prints floats from 1e16 on with an exponent, which `int()` refuses.
            (float.fract() == 0.0 && float.abs() < 1e16).then(|| {
                #[allow(clippy::cast_possible_truncation)]
                let integer = float as i64;
                integer
            })
        }),
        Value::String(text) => {
            let text = text.trim();
            // DRF strips a trailing `.0…` before calling `int()`.
            let text = match text.split_once('.') {
                Some((whole, zeros)) if zeros.chars().all(|c| c == '0') => whole.trim_end(),
                Some(_) => return None,
                None => text,
            };
            let unsigned = text.strip_prefix(['+', '-']).unwrap_or(text);
            if unsigned.is_empty() || !unsigned.bytes().all(|byte| byte.is_ascii_digit()) {
                return None;
            }
            text.parse::<i64>().ok()
        }
        _ => None,
    }
}

/// The `settings` nested object: an object of settings, or `NotAnObject`.
#[must_use]
pub fn settings(fields: &Fields, name: &str) -> Input<SettingsInput> {
    field(fields, name, |value| match value {
        Value::Object(settings) => Ok(crate::request::SettingsWrite::read(settings).into()),
        other => Err(ErrorCode::NotAnObject {
            given: python_type_name(other).to_owned(),
        }),
    })
}

/// The `parent` hyperlink: a relative or absolute URL of an organization detail route.
#[must_use]
pub fn parent(fields: &Fields, name: &str) -> ParentLink {
    match fields.get(name) {
        None => ParentLink::Absent,
        Some(Value::Null) => ParentLink::Blank,
        Some(Value::String(text)) if text.is_empty() => ParentLink::Blank,
        Some(Value::String(text)) => organization_link(text),
        // DRF says "Incorrect type"; the port only knows "no URL match" (docs/http.md).
        Some(_) => ParentLink::NoUrlMatch,
    }
}

/// Resolves a hyperlink as DRF's `HyperlinkedRelatedField` does: an absolute URL is
/// reduced to its path (any host), then the path must be an organization detail route.
#[must_use]
pub fn organization_link(link: &str) -> ParentLink {
    match organization_route(link).and_then(positive_id) {
        Some(id) => ParentLink::Organization(OrganizationId::new(id)),
        None => ParentLink::NoUrlMatch,
    }
}

/// Resolves a member hyperlink (`?actor=` of the audit log) as `organization_link`
/// does: `/organizations/{org}/users/{id}/`, relative or absolute.
#[must_use]
pub fn member_link(link: &str) -> MemberLink {
    let Some(rest) = organization_route(link) else {
        return MemberLink::NoUrlMatch;
    };
    let mut segments = rest.split('/');
    match (
        segments.next().and_then(positive_id),
        segments.next(),
        segments.next().and_then(positive_id),
        segments.next(),
    ) {
        (Some(organization), Some("users"), Some(user), None) => MemberLink::Member {
            organization: OrganizationId::new(organization),
            user: UserId::new(user),
        },
        _ => MemberLink::NoUrlMatch,
    }
}

/// What follows `/organizations/` in the path of a hyperlink, without its trailing
/// slash: an absolute URL is reduced to its path (any host, no query or fragment).
fn organization_route(link: &str) -> Option<&str> {
    let path = if let Some(rest) = link
        .strip_prefix("http://")
        .or_else(|| link.strip_prefix("https://"))
    {
        let path = rest.find('/').map_or("", |slash| &rest[slash..]);
        path.split(['?', '#']).next().unwrap_or_default()
    } else {
        link
    };
    let rest = path.strip_prefix("/organizations/")?;
    Some(rest.strip_suffix('/').unwrap_or(rest))
}

/// A path segment that is a positive integer (`\d+` as Django's routes, above 0).
#[must_use]
pub fn positive_id(segment: &str) -> Option<i64> {
    if segment.is_empty() || !segment.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    segment.parse::<i64>().ok().filter(|id| *id > 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn fields(value: Value) -> Fields {
        match value {
            Value::Object(map) => map,
            _ => Fields::new(),
        }
    }

    #[test]
    fn a_member_link_is_a_relative_or_absolute_member_url() {
        let member = MemberLink::Member {
            organization: OrganizationId::new(1),
            user: UserId::new(5),
        };
        assert_eq!(member_link("/organizations/1/users/5/"), member);
        assert_eq!(member_link("/organizations/1/users/5"), member);
        assert_eq!(
            member_link("https://orgs.example.com/organizations/1/users/5/"),
            member
        );
        for link in [
            "",
            "/organizations/1/",
            "/organizations/1/users/",
            "/organizations/1/users/0/",
            "/organizations/1/users/5/x/",
            "/organizations/a/users/5/",
            "/me/",
        ] {
            assert_eq!(member_link(link), MemberLink::NoUrlMatch, "{link}");
        }
    }

    #[test]
    fn a_string_field_takes_strings_and_numbers_as_text() {
        let body = fields(json!({"a": "x", "b": 12, "c": 1.5, "d": true, "e": [], "f": null}));

        assert_eq!(string(&body, "a"), Input::Value("x".to_owned()));
        assert_eq!(string(&body, "b"), Input::Value("12".to_owned()));
        assert_eq!(string(&body, "c"), Input::Value("1.5".to_owned()));
        assert_eq!(string(&body, "d"), Input::Invalid(ErrorCode::InvalidString));
        assert_eq!(string(&body, "e"), Input::Invalid(ErrorCode::InvalidString));
        assert_eq!(string(&body, "f"), Input::Null);
        assert_eq!(string(&body, "missing"), Input::Absent);
    }

    #[test]
    fn a_string_with_a_nul_character_is_invalid_and_line_breaks_are_kept() {
        let body = fields(json!({"nul": "a\0b", "lines": "a\nb\r\tc"}));

        assert_eq!(
            string(&body, "nul"),
            Input::Invalid(ErrorCode::NullCharacter)
        );
        assert_eq!(string(&body, "lines"), Input::Value("a\nb\r\tc".to_owned()));
    }

    #[test]
    fn a_bounded_string_counts_trimmed_characters() {
        let body = fields(json!({"ok": format!(" {} ", "é".repeat(5)), "long": "a".repeat(6)}));

        assert_eq!(
            bounded_string(&body, "ok", 5),
            Input::Value(format!(" {} ", "é".repeat(5)))
        );
        assert_eq!(
            bounded_string(&body, "long", 5),
            Input::Invalid(ErrorCode::MaxLength { max: 5 })
        );
        assert_eq!(bounded_string(&body, "absent", 5), Input::Absent);
    }

    /// Any JSON value, nested a few levels.
    fn any_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            any::<String>().prop_map(Value::String),
            "[ \t]*[+-]?[0-9]{0,20}(\\.[0-9]{0,3})?[ \t]*".prop_map(Value::String),
            proptest::sample::select(vec!["t", "f", "yes", "No", "ON", "1", "0", "\u{0}"])
                .prop_map(|text| Value::String(text.to_owned())),
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                proptest::collection::btree_map(
                    prop_oneof![
                        proptest::sample::select(vec![
                            "nickname",
                            "notify_message_status",
                            "notify_optouts",
                            "external_optout_message",
                        ])
                        .prop_map(str::to_owned),
                        any::<String>(),
                    ],
                    inner,
                    0..4
                )
                .prop_map(|map| Value::Object(map.into_iter().collect())),
            ]
        })
    }

    fn one(value: Value) -> Fields {
        let mut body = Fields::new();
        body.insert("v".to_owned(), value);
        body
    }

    proptest! {
        #[test]
        fn any_json_value_coerces_without_panicking_and_accepted_values_round_trip(
            value in any_json(),
        ) {
            let body = one(value.clone());

            match string(&body, "v") {
                Input::Value(text) => {
                    prop_assert!(!text.contains('\0'));
                    prop_assert_eq!(string(&one(Value::String(text.clone())), "v"), Input::Value(text));
                }
                Input::Null => prop_assert!(value.is_null()),
                Input::Invalid(_) | Input::Absent => {}
            }
            if let Input::Value(flag) = boolean(&body, "v") {
                prop_assert_eq!(boolean(&one(Value::Bool(flag)), "v"), Input::Value(flag));
            }
            if let Input::Value(number) = integer(&body, "v") {
                prop_assert_eq!(integer(&one(Value::from(number)), "v"), Input::Value(number));
                prop_assert_eq!(
                    integer(&one(Value::String(number.to_string())), "v"),
                    Input::Value(number)
                );
            }
            if let Input::Value(text) = bounded_string(&body, "v", 320) {
                prop_assert!(text.trim().chars().count() <= 320);
                prop_assert!(!text.contains('\0'));
            }
            if let Input::Value(parsed) = settings(&body, "v") {
                for text in [parsed.nickname, parsed.external_optout_message] {
                    if let Input::Value(text) = text {
                        prop_assert!(!text.contains('\0'));
                    }
                }
            }
            if let ParentLink::Organization(id) = parent(&body, "v") {
                let link = format!("/organizations/{}/", id.get());
                prop_assert_eq!(organization_link(&link), ParentLink::Organization(id));
            }
        }

        #[test]
        fn any_text_resolves_as_a_link_without_panicking(link in any::<String>()) {
            let _ = organization_link(&link);
            let _ = positive_id(&link);
        }
    }

    #[test]
    fn a_boolean_field_takes_drf_strings_and_numbers() {
        for truthy in [
            json!(true),
            json!("true"),
            json!("True"),
            json!("1"),
            json!(1),
            json!("yes"),
            json!("on"),
        ] {
            assert_eq!(
                boolean(&fields(json!({"v": truthy})), "v"),
                Input::Value(true),
                "{truthy}"
            );
        }
        for falsy in [
            json!(false),
            json!("false"),
            json!("False"),
            json!("0"),
            json!(0),
            json!(0.0),
            json!("off"),
        ] {
            assert_eq!(
                boolean(&fields(json!({"v": falsy})), "v"),
                Input::Value(false),
                "{falsy}"
            );
        }
        for bad in [json!("maybe"), json!(2), json!(""), json!([]), json!({})] {
            assert_eq!(
                boolean(&fields(json!({"v": bad})), "v"),
                Input::Invalid(ErrorCode::InvalidBoolean),
                "{bad}"
            );
        }
    }

    #[test]
    fn an_integer_field_takes_integers_and_integer_strings() {
        for (given, expected) in [
            (json!(7), 7),
            (json!("7"), 7),
            (json!(" 7 "), 7),
            (json!("7.0"), 7),
            (json!(7.0), 7),
            (json!("-3"), -3),
            (json!("+3"), 3),
        ] {
            assert_eq!(
                integer(&fields(json!({"v": given})), "v"),
                Input::Value(expected),
                "{given}"
            );
        }
        for bad in [
            json!("7.5"),
            json!(7.5),
            json!("seven"),
            json!(true),
            json!(""),
            json!("+"),
            json!([]),
        ] {
            assert_eq!(
                integer(&fields(json!({"v": bad})), "v"),
                Input::Invalid(ErrorCode::InvalidInteger),
                "{bad}"
            );
        }
    }

    #[test]
    fn settings_must_be_an_object() {
        let body = fields(json!({"settings": "nope"}));

        assert_eq!(
            settings(&body, "settings"),
            Input::Invalid(ErrorCode::NotAnObject {
                given: "str".to_owned()
            })
        );
    }

    #[test]
    fn settings_fields_are_coerced_one_by_one() {
        let body = fields(
            json!({"settings": {"nickname": "nick", "notify_optouts": "1", "notify_message_status": "x"}}),
        );

        let Input::Value(parsed) = settings(&body, "settings") else {
            panic!("settings should parse");
        };

        assert_eq!(parsed.nickname, Input::Value("nick".to_owned()));
        assert_eq!(parsed.notify_optouts, Input::Value(true));
        assert_eq!(
            parsed.notify_message_status,
            Input::Invalid(ErrorCode::InvalidBoolean)
        );
        assert_eq!(parsed.external_optout_message, Input::Absent);
    }

    #[test]
    fn a_parent_link_resolves_relative_and_absolute_detail_urls() {
        let expected = ParentLink::Organization(OrganizationId::new(1));

        assert_eq!(organization_link("/organizations/1/"), expected);
        assert_eq!(organization_link("/organizations/1"), expected);
        assert_eq!(
            organization_link("http://example.com/organizations/1/"),
            expected
        );
        assert_eq!(
            organization_link("https://api.example.com:8443/organizations/1/?x=y"),
            expected
        );
    }

    #[test]
    fn a_parent_link_to_another_route_has_no_url_match() {
        for link in [
            "/organizations/1/children/",
            "/me/",
            "/organizations/",
            "/organizations/abc/",
            "/organizations/0/",
            "organizations/1/",
            "http://host",
            "  ",
        ] {
            assert_eq!(organization_link(link), ParentLink::NoUrlMatch, "{link}");
        }
    }

    #[test]
    fn a_missing_null_or_empty_parent_is_told_apart() {
        let body = fields(json!({"null": null, "empty": "", "number": 1}));

        assert_eq!(parent(&body, "absent"), ParentLink::Absent);
        assert_eq!(parent(&body, "null"), ParentLink::Blank);
        assert_eq!(parent(&body, "empty"), ParentLink::Blank);
        assert_eq!(parent(&body, "number"), ParentLink::NoUrlMatch);
    }

    #[test]
    fn only_positive_integers_are_ids() {
        assert_eq!(positive_id("42"), Some(42));
        assert_eq!(positive_id("007"), Some(7));
        for bad in ["0", "-1", "abc", "", "1.0", "+1", "99999999999999999999"] {
            assert_eq!(positive_id(bad), None, "{bad}");
        }
    }
}
