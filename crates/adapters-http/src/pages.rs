//! The invitation page (CONTRACT §10): the link of the invitation e-mail opens a form
//! that a person fills in, posted to the same endpoint and use case as the JSON API.
//!
//! Pages are another presentation of the invitation use cases, not new rules: viewing
//! calls `preview` (which consumes nothing), the form calls `accept`. Templates are
//! `askama`'s, checked at compile time and HTML-escaping every value; texts come from
//! [`crate::catalog::page_text`]. Pages run no script and load nothing from elsewhere,
//! which their `Content-Security-Policy` enforces.

use askama::Template;
use axum::extract::{RawQuery, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use domain::invitation::{AcceptRequest, InvitationPreview, check_accept};
use domain::{ErrorCode, FieldErrors, Input, Role, ValidationErrors};
use ports::Cause;
use ports::inbound::{AcceptedInvitation, UseCaseError};
use serde_json::Value;

use crate::AppState;
use crate::catalog::{Language, PageText, error_text, page_text};
use crate::error::{ApiError, PageBody};
use crate::extract::coerce::{self, Fields};
use crate::extract::language::language_of;
use crate::extract::read_limited;
use crate::invitations::AcceptWrite;

/// The `Content-Security-Policy` of every page: no script, no frame, nothing from
/// elsewhere; the page's own inline style only; forms post only to this service.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; style-src 'unsafe-inline'; \
     form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The form field that repeats the password.
pub const CONFIRMATION_FIELD: &str = "password_confirmation";

/// Whether a request body is a browser's form (`application/x-www-form-urlencoded`).
#[must_use]
pub fn is_form(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .is_some_and(|essence| {
            essence
                .trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        })
}

/// An HTML page with the security headers of CONTRACT §10.
fn html(status: StatusCode, page: &impl Template) -> Response {
    let headers = [
        (header::CONTENT_TYPE, "text/html; charset=utf-8"),
        (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::CACHE_CONTROL, "no-store"),
    ];
    match page.render() {
        Ok(body) => (status, headers, body).into_response(),
        Err(error) => ApiError::Internal(Cause::new(error.to_string())).into_response(),
    }
}

fn lang(language: Language) -> &'static str {
    match language {
        Language::English => "en",
        Language::French => "fr",
    }
}

fn role_name(role: Role, language: Language) -> String {
    let text = match role {
        Role::Administrators => PageText::RoleAdministrators,
        Role::Managers => PageText::RoleManagers,
        Role::Users => PageText::RoleUsers,
        Role::Collaborators => PageText::RoleCollaborators,
    };
    page_text(text, language, &[])
}

/// One input of the form.
struct FormField {
    name: &'static str,
    label: String,
    kind: &'static str,
    value: String,
    autocomplete: &'static str,
    error: Option<String>,
}

#[derive(Template)]
#[template(path = "invitation.html")]
struct InvitationPage {
    lang: &'static str,
    title: String,
    intro: String,
    organization_label: String,
    organization: String,
    role_label: String,
    role: String,
    identifier_label: String,
    identifier: String,
    inviter_label: String,
    inviter: Option<String>,
    non_field_errors: Vec<String>,
    token: String,
    fields: Vec<FormField>,
    submit: String,
}

#[derive(Template)]
#[template(path = "welcome.html")]
struct WelcomePage {
    lang: &'static str,
    title: String,
    account: String,
    key_label: String,
    api_key: String,
    key_once: String,
    key_usage: String,
    key_example: String,
}

#[derive(Template)]
#[template(path = "invalid.html")]
struct InvalidPage {
    lang: &'static str,
    title: String,
    help: String,
}

/// What the person typed, shown again with the errors (never the passwords).
#[derive(Default)]
struct Typed {
    first_name: String,
    last_name: String,
}

/// The texts of each field's errors, joined.
fn field_error(errors: &ValidationErrors, field: &str, language: Language) -> Option<String> {
    errors.codes(field).map(|codes| {
        codes
            .iter()
            .map(|code| error_text(code, language))
            .collect::<Vec<_>>()
            .join(" ")
    })
}

fn form_page(
    preview: &InvitationPreview,
    token: &str,
    typed: Typed,
    errors: &ValidationErrors,
    confirmation_error: Option<String>,
    language: Language,
) -> InvitationPage {
    let t = |text, params: &[(&str, &str)]| page_text(text, language, params);
    let organization = preview.organization_name.as_str();
    let role = role_name(preview.role, language);
    let inviter = preview.invited_by.as_ref().map(ToString::to_string);
    let intro = match &inviter {
        Some(inviter) => t(
            PageText::InvitationIntro,
            &[
                ("inviter", inviter),
                ("organization", organization),
                ("role", &role),
            ],
        ),
        None => t(
            PageText::InvitationIntroWithoutInviter,
            &[("organization", organization), ("role", &role)],
        ),
    };
    let mut non_field_errors: Vec<String> = errors
        .non_field_codes()
        .iter()
        .map(|code| error_text(code, language))
        .collect();
    // Fields the form has no input for (none today) still show.
    for (field, field_errors) in errors.fields() {
        if ["first_name", "last_name", "password", "token"].contains(&field) {
            continue;
        }
        if let FieldErrors::Codes(codes) = field_errors {
            non_field_errors.extend(codes.iter().map(|code| error_text(code, language)));
        }
    }
    let fields = vec![
        FormField {
            name: "first_name",
            label: t(PageText::FirstName, &[]),
            kind: "text",
            value: typed.first_name,
            autocomplete: "given-name",
            error: field_error(errors, "first_name", language),
        },
        FormField {
            name: "last_name",
            label: t(PageText::LastName, &[]),
            kind: "text",
            value: typed.last_name,
            autocomplete: "family-name",
            error: field_error(errors, "last_name", language),
        },
        FormField {
            name: "password",
            label: t(PageText::Password, &[]),
            kind: "password",
            value: String::new(),
            autocomplete: "new-password",
            error: field_error(errors, "password", language),
        },
        FormField {
            name: CONFIRMATION_FIELD,
            label: t(PageText::PasswordAgain, &[]),
            kind: "password",
            value: String::new(),
            autocomplete: "new-password",
            error: confirmation_error,
        },
    ];
    InvitationPage {
        lang: lang(language),
        title: t(PageText::InvitationTitle, &[("organization", organization)]),
        intro,
        organization_label: t(PageText::OrganizationLabel, &[]),
        organization: organization.to_owned(),
        role_label: t(PageText::RoleLabel, &[]),
        role,
        identifier_label: t(PageText::IdentifierLabel, &[]),
        identifier: preview.identifier.to_string(),
        inviter_label: t(PageText::InviterLabel, &[]),
        inviter,
        non_field_errors,
        token: token.to_owned(),
        fields,
        submit: t(PageText::Accept, &[]),
    }
}

fn welcome_page(
    preview: &InvitationPreview,
    accepted: &AcceptedInvitation,
    language: Language,
) -> Response {
    let t = |text, params: &[(&str, &str)]| page_text(text, language, params);
    let identifier = accepted.user.identifier.to_string();
    let role = role_name(accepted.user.role, language);
    html(
        StatusCode::OK,
        &WelcomePage {
            lang: lang(language),
            title: t(
                PageText::WelcomeTitle,
                &[("organization", preview.organization_name.as_str())],
            ),
            account: t(
                PageText::WelcomeAccount,
                &[("identifier", &identifier), ("role", &role)],
            ),
            key_label: t(PageText::ApiKeyLabel, &[]),
            api_key: accepted.api_key.expose().to_owned(),
            key_once: t(PageText::ApiKeyOnce, &[]),
            key_usage: t(PageText::ApiKeyUsage, &[]),
            key_example: t(PageText::ApiKeyExample, &[]),
        },
    )
}

/// The page of a use case's failure. When it refused the token itself (unknown, used,
/// revoked, expired), the invalid-invitation page. Any other failure is no answer about
/// the invitation (database away, hashing busy, a fault): the status and headers of the
/// API's answer (`Retry-After` included, and the cause kept for the error log), with a
/// page instead of JSON.
fn failure_page(error: UseCaseError, language: Language) -> Response {
    let notice = |status, title, help| {
        html(
            status,
            &InvalidPage {
                lang: lang(language),
                title: page_text(title, language, &[]),
                help: page_text(help, language, &[]),
            },
        )
    };
    if matches!(&error, UseCaseError::Validation(errors) if errors.codes("token").is_some()) {
        return notice(
            StatusCode::BAD_REQUEST,
            PageText::InvalidInvitation,
            PageText::InvalidInvitationHelp,
        );
    }
    let (mut parts, _) = ApiError::from(error).into_response().into_parts();
    let page = notice(
        parts.status,
        PageText::Unavailable,
        PageText::UnavailableHelp,
    );
    let (page_parts, body) = page.into_parts();
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.extend(page_parts.headers);
    parts.extensions.insert(PageBody);
    Response::from_parts(parts, body)
}

/// The invitation page of the e-mail's link (HTML, English or French): the organization,
/// the role, who invited, and the form that posts to this same path. Viewing consumes
/// nothing. A token that opens nothing answers the invalid-invitation page.
#[utoipa::path(get, path = "/invitations/accept/", tag = "invitations",
    params(("token" = String, Query, description = "The token from the invitation e-mail")),
    responses(
        (status = 200, description = "The invitation page, with its form", body = String, content_type = "text/html"),
        (status = 400, description = "The invalid-invitation page: the token is unknown, used, revoked or expired", body = String, content_type = "text/html"),
        (status = 503, description = "The page saying the service cannot answer now (database away)", body = String, content_type = "text/html")))]
pub(crate) async fn view(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let language = language_of(&headers);
    let token = query
        .as_deref()
        .and_then(|query| {
            form_urlencoded::parse(query.as_bytes())
                .find(|(name, _)| name == "token")
                .map(|(_, value)| value.into_owned())
        })
        .unwrap_or_default();
    match state.invitations.preview(token.clone()).await {
        Ok(preview) => html(
            StatusCode::OK,
            &form_page(
                &preview,
                token.trim(),
                Typed::default(),
                &ValidationErrors::new(),
                None,
                language,
            ),
        ),
        Err(error) => failure_page(error, language),
    }
}

/// The fields of a form body, read as a JSON body's would be (first value of a name).
fn form_fields(bytes: &[u8]) -> Fields {
    let mut fields = Fields::new();
    for (name, value) in form_urlencoded::parse(bytes) {
        fields
            .entry(name.into_owned())
            .or_insert_with(|| Value::String(value.into_owned()));
    }
    fields
}

fn text_of(input: &Input<String>) -> String {
    match input {
        Input::Value(value) => value.clone(),
        _ => String::new(),
    }
}

/// `POST /invitations/accept/` with a form body: the acceptance use case, answered
/// with the welcome page, the form again with each field's errors, or the invalid page.
pub(crate) async fn accept_form(state: AppState, request: Request) -> Response {
    let language = language_of(request.headers());
    let request_id = crate::extract::request_id(request.headers());
    let (parts, body) = request.into_parts();
    let bytes = match read_limited(&parts.headers, body).await {
        Ok(bytes) => bytes,
        Err(error) => return error.into_response(),
    };
    let fields = form_fields(&bytes);
    let confirmation = coerce::string(&fields, CONFIRMATION_FIELD);
    let request: AcceptRequest = AcceptWrite::read(&fields).into();
    let token = text_of(&request.token);
    let typed = Typed {
        first_name: text_of(&request.first_name),
        last_name: text_of(&request.last_name),
    };

    // The page needs what the invitation is; a token that opens nothing ends here,
    // before any password is hashed.
    let preview = match state.invitations.preview(token.clone()).await {
        Ok(preview) => preview,
        Err(error) => return failure_page(error, language),
    };
    let token = token.trim();

    let confirmation_error = match (&request.password, &confirmation) {
        (_, Input::Absent | Input::Null) => Some(error_text(&ErrorCode::Required, language)),
        (_, Input::Invalid(code)) => Some(error_text(code, language)),
        (Input::Value(password), Input::Value(again)) if password != again => {
            Some(page_text(PageText::PasswordsDiffer, language, &[]))
        }
        _ => None,
    };
    if confirmation_error.is_some() {
        // Nothing is accepted; the other fields are checked by the same rules, so that
        // every problem shows at once.
        let errors = check_accept(request).err().unwrap_or_default();
        return html(
            StatusCode::BAD_REQUEST,
            &form_page(
                &preview,
                token,
                typed,
                &errors,
                confirmation_error,
                language,
            ),
        );
    }

    match state.invitations.accept(request, request_id).await {
        Ok(accepted) => welcome_page(&preview, &accepted, language),
        // Field errors, unless the token itself was refused.
        Err(UseCaseError::Validation(errors)) if errors.codes("token").is_none() => html(
            StatusCode::BAD_REQUEST,
            &form_page(&preview, token, typed, &errors, None, language),
        ),
        Err(error) => failure_page(error, language),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn with_content_type(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_str(value).expect("a header value"),
        );
        headers
    }

    #[test]
    fn only_a_form_content_type_gets_the_pages() {
        assert!(is_form(&with_content_type(
            "application/x-www-form-urlencoded"
        )));
        assert!(is_form(&with_content_type(
            "Application/X-WWW-Form-Urlencoded; charset=UTF-8"
        )));
        assert!(!is_form(&with_content_type("application/json")));
        assert!(!is_form(&with_content_type("multipart/form-data")));
        assert!(!is_form(&HeaderMap::new()));
    }

    #[test]
    fn a_form_body_is_read_as_text_fields_first_value_first() {
        let fields = form_fields(b"token=a%2Bb&first_name=Ada+L&token=other");

        assert_eq!(fields.get("token"), Some(&Value::String("a+b".to_owned())));
        assert_eq!(
            fields.get("first_name"),
            Some(&Value::String("Ada L".to_owned()))
        );
    }
}
