//! Request bodies and list filters, declared once: each field names a kind that says both
//! how the field is read (DRF's coercions, [`crate::extract::coerce`]) and what the
//! OpenAPI document says it accepts ([`crate::schema`]), so that the two cannot drift.

use domain::Input;
use domain::organization::SettingsInput;
use ports::inbound::ParentLink;
use utoipa::openapi::path::{ParameterBuilder, ParameterIn};
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::{Required, Schema};

use crate::extract::coerce::{self, Fields};
use crate::schema;

/// One field of a request body: how it is read and what it may hold.
pub trait Field {
    /// What reading gives the use case.
    type Value;
    /// Reads the field `name` of a body.
    fn read(body: &Fields, name: &str) -> Self::Value;
    /// What the field may hold.
    fn schema() -> Schema;
}

/// Declares field kinds: `Kind: Value = reader, schema;`.
macro_rules! kinds {
    ($($(#[doc = $doc:literal])* $kind:ident: $value:ty = $read:expr, $schema:expr;)*) => {$(
        $(#[doc = $doc])*
        pub struct $kind;

        impl Field for $kind {
            type Value = $value;
            fn read(body: &Fields, name: &str) -> $value {
                $read(body, name)
            }
            fn schema() -> Schema {
                $schema()
            }
        }
    )*};
}

kinds! {
    /// An organization's name: not blank, at most 200 characters.
    OrganizationName: Input<String> = coerce::string, || schema::char_field(200);
    /// A first or last name: not blank, at most 50 characters.
    PersonName: Input<String> = coerce::string, || schema::char_field(50);
    /// An e-mail address.
    Email: Input<String> = coerce::string, schema::email;
    /// A credential or token given as text.
    Secret: Input<String> = coerce::string, schema::secret;
    /// A login identifier: at most 320 characters once trimmed.
    LoginIdentifier: Input<String> = login_identifier, || schema::char_field(IDENTIFIER_MAX_LENGTH);
    /// A new password: at least 8 characters.
    NewPassword: Input<String> = coerce::string, schema::new_password;
    /// A nickname.
    Nickname: Input<String> = coerce::string, schema::nickname;
    /// The external opt-out message.
    OptOutMessage: Input<String> = coerce::string, schema::external_optout_message;
    /// A DRF `BooleanField`.
    Flag: Input<bool> = coerce::boolean, schema::boolean;
    /// The days an invitation lasts.
    InvitationDays: Input<i64> = coerce::integer, schema::invitation_days;
    /// A role's name.
    RoleName: Input<String> = coerce::string, schema::role;
    /// A service account's name: 1 to 50 letters, digits, `-`, `_`, `.`.
    ServiceAccountName: Input<String> = coerce::string, schema::service_account_name;
    /// A service account's role: any but `administrators`.
    ServiceRole: Input<String> = coerce::string, schema::service_role;
    /// An API key's name: not blank, at most 50 characters.
    KeyName: Input<String> = coerce::string, || schema::char_field(50);
    /// An API key's scope.
    KeyScope: Input<String> = coerce::string, schema::scope;
    /// The days an API key lasts.
    KeyDays: Input<i64> = coerce::integer, schema::api_key_days;
    /// An opt-out's origin.
    Origin: Input<String> = coerce::string, schema::origin;
    /// The parent hyperlink.
    Parent: ParentLink = coerce::parent, schema::organization_link;
    /// The parent hyperlink on an update, which cannot change.
    UnchangedParent: ParentLink = coerce::parent, schema::unchanged_parent;
    /// A webhook's endpoint URL.
    WebhookEndpoint: Input<String> = coerce::string, schema::endpoint;
    /// A webhook's patterns of actions.
    EventPatterns: Input<Vec<String>> = coerce::string_list, schema::event_patterns;
    /// A webhook's description.
    Description: Input<String> = coerce::string, schema::description;
    /// The nested settings object.
    Settings: Input<SettingsInput> = coerce::settings, settings_schema;
}

/// The longest login identifier: the longest e-mail address, as Django's login form
/// bounds its username by the model field's `max_length`.
const IDENTIFIER_MAX_LENGTH: usize = 320;

fn login_identifier(body: &Fields, name: &str) -> Input<String> {
    coerce::bounded_string(body, name, IDENTIFIER_MAX_LENGTH)
}

fn settings_schema() -> Schema {
    match <SettingsWrite as utoipa::PartialSchema>::schema() {
        utoipa::openapi::RefOr::T(schema) => schema,
        utoipa::openapi::RefOr::Ref(_) => object().into(),
    }
}

/// A schema with a description.
#[must_use]
pub fn described(mut schema: Schema, text: &str) -> Schema {
    let text = text.trim();
    if text.is_empty() {
        return schema;
    }
    let description = Some(text.to_owned());
    match &mut schema {
        Schema::Object(object) if object.description.is_none() => object.description = description,
        Schema::AnyOf(any) if any.description.is_none() => any.description = description,
        _ => {}
    }
    schema
}

/// Declares a request body: its fields with their kinds (`required` for those the
/// document lists as required), read from the JSON body as DRF does and documented from
/// the same declaration; `=> Target` adds the conversion to a use-case input whose fields
/// have the same names.
macro_rules! request_body {
    (
        $(#[doc = $doc:literal])*
        pub struct $name:ident => $target:ty {
            $($(#[doc = $field_doc:literal])* $field:ident: $kind:ty $(, $required:ident)?;)*
        }
    ) => {
        $crate::request::request_body! {
            $(#[doc = $doc])*
            pub struct $name {
                $($(#[doc = $field_doc])* $field: $kind $(, $required)?;)*
            }
        }

        impl From<$name> for $target {
            fn from(body: $name) -> Self {
                Self { $($field: body.$field,)* }
            }
        }
    };
    (
        $(#[doc = $doc:literal])*
        pub struct $name:ident {
            $($(#[doc = $field_doc:literal])* $field:ident: $kind:ty $(, $required:ident)?;)*
        }
    ) => {
        $(#[doc = $doc])*
        pub struct $name {
            $($(#[doc = $field_doc])* pub $field: <$kind as $crate::request::Field>::Value,)*
        }

        impl $name {
            /// Reads every field of a body.
            #[must_use]
            pub fn read(body: &$crate::extract::coerce::Fields) -> Self {
                Self {
                    $($field: <$kind as $crate::request::Field>::read(body, stringify!($field)),)*
                }
            }
        }

        impl<S: Send + Sync> axum::extract::FromRequest<S> for $name {
            type Rejection = $crate::error::ApiError;

            async fn from_request(
                request: axum::extract::Request,
                state: &S,
            ) -> Result<Self, Self::Rejection> {
                let $crate::extract::JsonBody(body) =
                    <$crate::extract::JsonBody as axum::extract::FromRequest<S>>::from_request(
                        request, state,
                    )
                    .await?;
                Ok(Self::read(&body))
            }
        }

        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::Schema> {
                let object = $crate::request::object();
                $(
                    let object = object.property(
                        stringify!($field),
                        $crate::request::described(
                            <$kind as $crate::request::Field>::schema(),
                            concat!($($field_doc, "\n",)* ""),
                        ),
                    );
                    $(let object = {
                        let _ = stringify!($required);
                        object.required(stringify!($field))
                    };)?
                )*
                utoipa::openapi::RefOr::T(object.into())
            }
        }

        impl utoipa::ToSchema for $name {}
    };
}
pub(crate) use request_body;

/// An object schema that takes any other property (DRF ignores unknown fields).
#[must_use]
pub fn object() -> ObjectBuilder {
    ObjectBuilder::new().schema_type(Type::Object)
}

request_body! {
    /// Settings as a request may give them (any subset; DRF's boolean strings accepted).
    pub struct SettingsWrite => SettingsInput {
        /// Empty, or 4 to 30 lowercase letters, digits and dashes.
        nickname: Nickname;
        /// `true`/`false`, or `"true"`, `"false"`, `"1"`, `"0"` and DRF's other spellings.
        notify_message_status: Flag;
        /// `true`/`false`, or `"true"`, `"false"`, `"1"`, `"0"` and DRF's other spellings.
        notify_optouts: Flag;
        /// Blank unless the organization may use external opt-out.
        external_optout_message: OptOutMessage;
    }
}

/// Declares the filters of a list: each read as [`crate::extract::ListQuery::filters`] (absent or empty
/// is `None`; a NUL or more than 320 characters is a field error) and documented from
/// the same declaration.
macro_rules! list_filters {
    (
        $(#[doc = $doc:literal])*
        pub struct $name:ident {
            $($(#[doc = $field_doc:literal])* $field:ident: $schema:path;)*
        }
    ) => {
        $(#[doc = $doc])*
        pub struct $name {
            $($(#[doc = $field_doc])* pub $field: Option<String>,)*
        }

        impl $name {
            /// Reads the filters of a list request.
            ///
            /// # Errors
            /// `Validation` with every refused filter.
            pub fn read(query: &$crate::extract::ListQuery) -> Result<Self, $crate::error::ApiError> {
                let [$($field),*] = query.filters([$(stringify!($field)),*])?;
                Ok(Self { $($field),* })
            }
        }

        impl utoipa::IntoParams for $name {
            fn into_params(
                _: impl Fn() -> Option<utoipa::openapi::path::ParameterIn>,
            ) -> Vec<utoipa::openapi::path::Parameter> {
                vec![$(
                    $crate::request::optional_parameter(
                        utoipa::openapi::path::ParameterIn::Query,
                        stringify!($field),
                        concat!($($field_doc, "\n",)* ""),
                        $schema(),
                    ),
                )*]
            }
        }
    };
}
pub(crate) use list_filters;

/// An optional parameter of a query or of headers.
#[must_use]
pub fn optional_parameter(
    location: ParameterIn,
    name: &str,
    description: &str,
    schema: Schema,
) -> utoipa::openapi::path::Parameter {
    ParameterBuilder::new()
        .name(name)
        .parameter_in(location)
        .required(Required::False)
        .description(Some(description.trim()))
        .schema(Some(schema))
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::extract::ListQuery;
    use crate::invitations::InviteWrite;
    use domain::invitation::InviteRequest;
    use serde_json::json;

    fn body(value: serde_json::Value) -> Fields {
        match value {
            serde_json::Value::Object(fields) => fields,
            _ => Fields::new(),
        }
    }

    #[test]
    fn a_declared_body_reads_each_field_with_its_kind() {
        let read: InviteRequest = InviteWrite::read(&body(json!({
            "identifier": "new@example.com",
            "expires_in_days": " 7 ",
            "unknown": true,
        })))
        .into();

        assert_eq!(read.identifier, Input::Value("new@example.com".to_owned()));
        assert_eq!(read.role, Input::Absent);
        assert_eq!(read.expires_in_days, Input::Value(7));
    }

    #[test]
    fn a_declared_body_documents_each_field_with_its_kind() {
        let schema = serde_json::to_value(<InviteWrite as utoipa::PartialSchema>::schema())
            .unwrap_or_default();

        assert_eq!(schema["required"], json!(["identifier"]));
        assert_eq!(schema["properties"]["identifier"]["format"], "email");
        assert_eq!(
            schema["properties"]["role"]["enum"],
            json!(["administrators", "managers", "users", "collaborators"])
        );
        assert_eq!(
            schema["properties"]["expires_in_days"]["anyOf"][0]["maximum"],
            30
        );
        assert!(
            schema["properties"]["role"]["description"]
                .as_str()
                .is_some_and(|text| text.contains("collaborators"))
        );
    }

    #[test]
    fn declared_filters_are_read_together_and_documented() {
        let query = ListQuery {
            path: "/".to_owned(),
            pairs: vec![
                ("role".to_owned(), "users".to_owned()),
                ("identifier".to_owned(), String::new()),
            ],
        };

        let filters = crate::members::MemberFilters::read(&query);
        let parameters =
            <crate::members::MemberFilters as utoipa::IntoParams>::into_params(|| None);

        assert!(matches!(
            filters,
            Ok(crate::members::MemberFilters { role: Some(ref role), identifier: None, kind: None }) if role == "users"
        ));
        let names: Vec<&str> = parameters.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["role", "identifier", "kind"]);
    }
}
