//! Every text the API can answer with, in English and French, keyed by (code, language).
//!
//! English texts are Django REST framework's own (or the contract's); French texts are
//! DRF's and Django's French translations where they exist, careful French otherwise.
//! Placeholders are written `{name}` and filled by [`render`].

use domain::ErrorCode;

/// A language the API answers in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Language {
    /// English, the default.
    #[default]
    English,
    /// French, for `Accept-Language: fr…`.
    French,
}

/// The key of one message in the catalog.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageCode {
    /// A required field is absent.
    Required,
    /// A field is `null`.
    Null,
    /// A field is blank.
    Blank,
    /// A string is too long (`{max_length}`).
    MaxLength,
    /// A string is too short (`{min_length}`).
    MinLength,
    /// Not a string.
    InvalidString,
    /// Not a boolean.
    InvalidBoolean,
    /// Not an integer.
    InvalidInteger,
    /// Below `{min_value}`.
    MinValue,
    /// Above `{max_value}`.
    MaxValue,
    /// `{input}` is no allowed choice.
    InvalidChoice,
    /// Not an object (`{datatype}` given).
    NotAnObject,
    /// Not an e-mail address.
    InvalidEmail,
    /// Bad nickname.
    InvalidNickname,
    /// External opt-out message not allowed.
    ExternalOptoutNotAllowed,
    /// Hyperlink to no organization detail URL.
    NoUrlMatch,
    /// Hyperlink to a missing organization.
    ObjectDoesNotExist,
    /// CONTRACT §4 create rule 3.
    ParentMustBeYourOrganization,
    /// CONTRACT §4 create rule 4.
    ParentAlreadyHasParent,
    /// `parent` cannot change.
    ParentCannotChange,
    /// A user has this identifier.
    IdentifierTaken,
    /// A pending invitation exists.
    AlreadyInvited,
    /// A bad invitation token.
    InvalidInvitation,
    /// Wrong credentials.
    InvalidCredentials,
    /// 401 without credentials.
    NotAuthenticated,
    /// 401 with bad credentials.
    InvalidToken,
    /// 403.
    PermissionDenied,
    /// 404.
    NotFound,
    /// 404 for a bad page.
    InvalidPage,
    /// 405 (`{method}`).
    MethodNotAllowed,
    /// 400 for malformed JSON (`{error}`).
    ParseError,
    /// 413 (`{max}` bytes).
    PayloadTooLarge,
    /// 415 (`{media_type}`).
    UnsupportedMediaType,
    /// 412.
    PreconditionFailed,
    /// 409: invitation accepted already.
    InvitationAccepted,
    /// 409: invitation revoked already.
    InvitationRevoked,
    /// 409: another pending invitation for the address.
    InvitationPendingElsewhere,
    /// 409: a root organization keeps at least one administrator.
    LastAdministrator,
    /// 429 with a wait of one second.
    ThrottledOneSecond,
    /// 429 with a wait of `{wait}` seconds.
    ThrottledSeconds,
    /// 503.
    ServiceUnavailable,
    /// 500.
    ServerError,
    /// A NUL character in a string.
    NullCharacter,
    /// Not an ISO 8601 date or date-time (`?since=`, `?until=`).
    InvalidDateTime,
    /// Not an absolute `http`/`https` URL.
    InvalidUrl,
    /// A webhook endpoint on a refused address.
    AddressNotAllowed,
    /// Not a list.
    NotAList,
    /// An organization already has 10 webhooks.
    TooManyWebhooks,
}

impl MessageCode {
    /// Every code, so tests can check the catalog is complete.
    pub const ALL: [MessageCode; 48] = [
        MessageCode::Required,
        MessageCode::Null,
        MessageCode::Blank,
        MessageCode::MaxLength,
        MessageCode::MinLength,
        MessageCode::InvalidString,
        MessageCode::InvalidBoolean,
        MessageCode::InvalidInteger,
        MessageCode::MinValue,
        MessageCode::MaxValue,
        MessageCode::InvalidChoice,
        MessageCode::NotAnObject,
        MessageCode::InvalidEmail,
        MessageCode::InvalidNickname,
        MessageCode::ExternalOptoutNotAllowed,
        MessageCode::NoUrlMatch,
        MessageCode::ObjectDoesNotExist,
        MessageCode::ParentMustBeYourOrganization,
        MessageCode::ParentAlreadyHasParent,
        MessageCode::ParentCannotChange,
        MessageCode::IdentifierTaken,
        MessageCode::AlreadyInvited,
        MessageCode::InvalidInvitation,
        MessageCode::InvalidCredentials,
        MessageCode::NotAuthenticated,
        MessageCode::InvalidToken,
        MessageCode::PermissionDenied,
        MessageCode::NotFound,
        MessageCode::InvalidPage,
        MessageCode::MethodNotAllowed,
        MessageCode::ParseError,
        MessageCode::PayloadTooLarge,
        MessageCode::UnsupportedMediaType,
        MessageCode::PreconditionFailed,
        MessageCode::InvitationAccepted,
        MessageCode::InvitationRevoked,
        MessageCode::InvitationPendingElsewhere,
        MessageCode::LastAdministrator,
        MessageCode::ThrottledOneSecond,
        MessageCode::ThrottledSeconds,
        MessageCode::ServiceUnavailable,
        MessageCode::ServerError,
        MessageCode::NullCharacter,
        MessageCode::InvalidDateTime,
        MessageCode::InvalidUrl,
        MessageCode::AddressNotAllowed,
        MessageCode::NotAList,
        MessageCode::TooManyWebhooks,
    ];
}

/// The text of `code` in `language`, with its `{placeholders}` unfilled.
#[must_use]
pub fn template(code: MessageCode, language: Language) -> &'static str {
    use Language::{English as En, French as Fr};
    use MessageCode as M;
    match (code, language) {
        (M::Required, En) => "This field is required.",
        (M::Required, Fr) => "Ce champ est obligatoire.",
        (M::Null, En) => "This field may not be null.",
        (M::Null, Fr) => "Ce champ ne peut être nul.",
        (M::Blank, En) => "This field may not be blank.",
        (M::Blank, Fr) => "Ce champ ne peut être vide.",
        (M::MaxLength, En) => "Ensure this field has no more than {max_length} characters.",
        (M::MaxLength, Fr) => "Assurez-vous que ce champ comporte au plus {max_length} caractères.",
        (M::MinLength, En) => "Ensure this field has at least {min_length} characters.",
        (M::MinLength, Fr) => {
            "Assurez-vous que ce champ comporte au moins {min_length} caractères."
        }
        (M::InvalidString, En) => "Not a valid string.",
        (M::InvalidString, Fr) => "Chaîne de caractères non valide.",
        (M::InvalidBoolean, En) => "Must be a valid boolean.",
        (M::InvalidBoolean, Fr) => "Doit être un booléen valide.",
        (M::InvalidInteger, En) => "A valid integer is required.",
        (M::InvalidInteger, Fr) => "Un nombre entier valide est requis.",
        (M::MinValue, En) => "Ensure this value is greater than or equal to {min_value}.",
        (M::MinValue, Fr) => "Assurez-vous que cette valeur est supérieure ou égale à {min_value}.",
        (M::MaxValue, En) => "Ensure this value is less than or equal to {max_value}.",
        (M::MaxValue, Fr) => "Assurez-vous que cette valeur est inférieure ou égale à {max_value}.",
        (M::InvalidChoice, En) => "\"{input}\" is not a valid choice.",
        (M::InvalidChoice, Fr) => "\"{input}\" n'est pas un choix valide.",
        (M::NotAnObject, En) => "Invalid data. Expected a dictionary, but got {datatype}.",
        (M::NotAnObject, Fr) => "Donnée non valide. Attendait un dictionnaire, a reçu {datatype}.",
        (M::InvalidEmail, En) => "Enter a valid email address.",
        (M::InvalidEmail, Fr) => "Saisissez une adresse email valable.",
        (M::InvalidNickname, En) => {
            "Nickname can only contain lowercase letters, numbers and dashes. It must be between 4 and 30 characters long"
        }
        (M::InvalidNickname, Fr) => {
            "Le surnom ne peut contenir que des lettres minuscules, des chiffres et des tirets. Il doit comporter entre 4 et 30 caractères"
        }
        (M::ExternalOptoutNotAllowed, En) => {
            "External optout is not allowed, no need to provide a message"
        }
        (M::ExternalOptoutNotAllowed, Fr) => {
            "Le désabonnement externe n'est pas autorisé, inutile de fournir un message"
        }
        (M::NoUrlMatch, En) => "Invalid hyperlink - No URL match.",
        (M::NoUrlMatch, Fr) => "Lien non valide : pas d'URL correspondante.",
        (M::ObjectDoesNotExist, En) => "Invalid hyperlink - Object does not exist.",
        (M::ObjectDoesNotExist, Fr) => "Lien non valide : l'objet n'existe pas.",
        (M::ParentMustBeYourOrganization, En) => "Parent organization must be your organization.",
        (M::ParentMustBeYourOrganization, Fr) => {
            "L'organisation parente doit être votre organisation."
        }
        (M::ParentAlreadyHasParent, En) => {
            "Cannot be attached to a parent organization that already has a parent."
        }
        (M::ParentAlreadyHasParent, Fr) => {
            "Impossible de rattacher à une organisation parente qui a déjà un parent."
        }
        (M::ParentCannotChange, En) => "This field cannot be changed.",
        (M::ParentCannotChange, Fr) => "Ce champ ne peut pas être modifié.",
        (M::IdentifierTaken, En) => "A user with this identifier already exists.",
        (M::IdentifierTaken, Fr) => "Un utilisateur avec cet identifiant existe déjà.",
        (M::AlreadyInvited, En) => "This identifier has already been invited.",
        (M::AlreadyInvited, Fr) => "Cet identifiant a déjà été invité.",
        (M::InvalidInvitation, En) => "Invalid or expired invitation.",
        (M::InvalidInvitation, Fr) => "Invitation non valide ou expirée.",
        (M::InvalidCredentials, En) => "Unable to log in with provided credentials.",
        (M::InvalidCredentials, Fr) => {
            "Impossible de se connecter avec les informations d'identification fournies."
        }
        (M::NotAuthenticated, En) => "Authentication credentials were not provided.",
        (M::NotAuthenticated, Fr) => "Informations d'authentification non fournies.",
        (M::InvalidToken, En) => "Invalid token.",
        (M::InvalidToken, Fr) => "Token non valide.",
        (M::PermissionDenied, En) => "You do not have permission to perform this action.",
        (M::PermissionDenied, Fr) => "Vous n'avez pas la permission d'effectuer cette action.",
        (M::NotFound, En) => "Not found.",
        (M::NotFound, Fr) => "Pas trouvé.",
        (M::InvalidPage, En) => "Invalid page.",
        (M::InvalidPage, Fr) => "Page invalide.",
        (M::MethodNotAllowed, En) => "Method \"{method}\" not allowed.",
        (M::MethodNotAllowed, Fr) => "Méthode \"{method}\" non autorisée.",
        (M::ParseError, En) => "JSON parse error - {error}",
        (M::ParseError, Fr) => "Erreur d'analyse JSON - {error}",
        (M::PayloadTooLarge, En) => "Request body is too large: at most {max} bytes are accepted.",
        (M::PayloadTooLarge, Fr) => {
            "Le corps de la requête est trop volumineux : au plus {max} octets sont acceptés."
        }
        (M::UnsupportedMediaType, En) => "Unsupported media type \"{media_type}\" in request.",
        (M::UnsupportedMediaType, Fr) => "Type de média \"{media_type}\" non supporté.",
        (M::PreconditionFailed, En) => {
            "The resource has changed since it was read: If-Match does not match."
        }
        (M::PreconditionFailed, Fr) => {
            "La ressource a changé depuis sa lecture : If-Match ne correspond pas."
        }
        (M::InvitationAccepted, En) => "This invitation has already been accepted.",
        (M::InvitationAccepted, Fr) => "Cette invitation a déjà été acceptée.",
        (M::InvitationRevoked, En) => "This invitation has been revoked.",
        (M::InvitationRevoked, Fr) => "Cette invitation a été révoquée.",
        (M::InvitationPendingElsewhere, En) => {
            "Another pending invitation exists for this identifier."
        }
        (M::InvitationPendingElsewhere, Fr) => {
            "Une autre invitation en attente existe pour cet identifiant."
        }
        (M::LastAdministrator, En) => "An organization must keep at least one administrator.",
        (M::LastAdministrator, Fr) => "Une organisation doit garder au moins un administrateur.",
        (M::ThrottledOneSecond, En) => "Request was throttled. Expected available in 1 second.",
        (M::ThrottledOneSecond, Fr) => "Requête ralentie. Disponible dans 1 seconde.",
        (M::ThrottledSeconds, En) => "Request was throttled. Expected available in {wait} seconds.",
        (M::ThrottledSeconds, Fr) => "Requête ralentie. Disponible dans {wait} secondes.",
        (M::ServiceUnavailable, En) => "Service temporarily unavailable, try again later.",
        (M::ServiceUnavailable, Fr) => "Service temporairement indisponible, réessayez plus tard.",
        (M::ServerError, En) => "A server error occurred.",
        (M::ServerError, Fr) => "Une erreur du serveur est survenue.",
        (M::NullCharacter, En) => "Null characters are not allowed.",
        (M::NullCharacter, Fr) => "Les caractères null ne sont pas autorisés.",
        (M::InvalidDateTime, En) => {
            "Datetime has wrong format. Use one of these formats instead: \
             YYYY-MM-DDThh:mm[:ss[.uuuuuu]][+HH:MM|-HH:MM|Z], YYYY-MM-DD."
        }
        (M::InvalidDateTime, Fr) => {
            "La date + heure n'a pas le bon format. Utilisez un des formats suivants : \
             YYYY-MM-DDThh:mm[:ss[.uuuuuu]][+HH:MM|-HH:MM|Z], YYYY-MM-DD."
        }
        (M::InvalidUrl, En) => "Enter a valid URL.",
        (M::InvalidUrl, Fr) => "Saisissez une URL valide.",
        (M::AddressNotAllowed, En) => "This address is not allowed.",
        (M::AddressNotAllowed, Fr) => "Cette adresse n'est pas autorisée.",
        (M::NotAList, En) => "Expected a list of items.",
        (M::NotAList, Fr) => "Une liste d'éléments est attendue.",
        (M::TooManyWebhooks, En) => "An organization cannot have more than 10 webhooks.",
        (M::TooManyWebhooks, Fr) => "Une organisation ne peut pas avoir plus de 10 webhooks.",
    }
}

/// The text of `code` in `language` with its placeholders filled from `params`.
#[must_use]
pub fn render(code: MessageCode, language: Language, params: &[(&str, &str)]) -> String {
    let mut text = template(code, language).to_owned();
    for (name, value) in params {
        text = text.replace(&format!("{{{name}}}"), value);
    }
    text
}

/// The text of a domain validation code.
#[must_use]
pub fn error_text(code: &ErrorCode, language: Language) -> String {
    let (message, params): (MessageCode, Vec<(&str, String)>) = match code {
        ErrorCode::Required => (MessageCode::Required, vec![]),
        ErrorCode::Null => (MessageCode::Null, vec![]),
        ErrorCode::Blank => (MessageCode::Blank, vec![]),
        ErrorCode::MaxLength { max } => (
            MessageCode::MaxLength,
            vec![("max_length", max.to_string())],
        ),
        ErrorCode::MinLength { min } => (
            MessageCode::MinLength,
            vec![("min_length", min.to_string())],
        ),
        ErrorCode::InvalidString => (MessageCode::InvalidString, vec![]),
        ErrorCode::InvalidBoolean => (MessageCode::InvalidBoolean, vec![]),
        ErrorCode::InvalidInteger => (MessageCode::InvalidInteger, vec![]),
        ErrorCode::MinValue { min } => {
            (MessageCode::MinValue, vec![("min_value", min.to_string())])
        }
        ErrorCode::MaxValue { max } => {
            (MessageCode::MaxValue, vec![("max_value", max.to_string())])
        }
        ErrorCode::InvalidChoice { value } => {
            (MessageCode::InvalidChoice, vec![("input", value.clone())])
        }
        ErrorCode::NotAnObject { given } => {
            (MessageCode::NotAnObject, vec![("datatype", given.clone())])
        }
        ErrorCode::InvalidEmail => (MessageCode::InvalidEmail, vec![]),
        ErrorCode::InvalidNickname => (MessageCode::InvalidNickname, vec![]),
        ErrorCode::ExternalOptoutNotAllowed => (MessageCode::ExternalOptoutNotAllowed, vec![]),
        ErrorCode::NoUrlMatch => (MessageCode::NoUrlMatch, vec![]),
        ErrorCode::ObjectDoesNotExist => (MessageCode::ObjectDoesNotExist, vec![]),
        ErrorCode::ParentMustBeYourOrganization => {
            (MessageCode::ParentMustBeYourOrganization, vec![])
        }
        ErrorCode::ParentAlreadyHasParent => (MessageCode::ParentAlreadyHasParent, vec![]),
        ErrorCode::ParentCannotChange => (MessageCode::ParentCannotChange, vec![]),
        ErrorCode::IdentifierTaken => (MessageCode::IdentifierTaken, vec![]),
        ErrorCode::AlreadyInvited => (MessageCode::AlreadyInvited, vec![]),
        ErrorCode::InvalidInvitation => (MessageCode::InvalidInvitation, vec![]),
        ErrorCode::InvalidCredentials => (MessageCode::InvalidCredentials, vec![]),
        ErrorCode::NullCharacter => (MessageCode::NullCharacter, vec![]),
        ErrorCode::InvalidDateTime => (MessageCode::InvalidDateTime, vec![]),
        ErrorCode::InvalidUrl => (MessageCode::InvalidUrl, vec![]),
        ErrorCode::AddressNotAllowed => (MessageCode::AddressNotAllowed, vec![]),
        ErrorCode::NotAList => (MessageCode::NotAList, vec![]),
        ErrorCode::TooManyWebhooks => (MessageCode::TooManyWebhooks, vec![]),
    };
    let params: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
    render(message, language, &params)
}

/// The texts of the invitation page (CONTRACT §10), keyed by (text, language).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PageText {
    /// The title of the invitation page (`{organization}`).
    InvitationTitle,
    /// What the invitation offers (`{inviter}`, `{organization}`, `{role}`).
    InvitationIntro,
    /// What the invitation offers when its inviter is gone (`{organization}`, `{role}`).
    InvitationIntroWithoutInviter,
    /// The label of the organization's name.
    OrganizationLabel,
    /// The label of the role.
    RoleLabel,
    /// The label of the invited identifier.
    IdentifierLabel,
    /// The label of the inviter.
    InviterLabel,
    /// The first name field.
    FirstName,
    /// The last name field.
    LastName,
    /// The password field.
    Password,
    /// The password confirmation field.
    PasswordAgain,
    /// The submit button.
    Accept,
    /// The confirmation differs from the password.
    PasswordsDiffer,
    /// The invalid-invitation page's title.
    InvalidInvitation,
    /// What to do about an invalid invitation.
    InvalidInvitationHelp,
    /// The welcome page's title (`{organization}`).
    WelcomeTitle,
    /// The new account (`{identifier}`, `{role}`).
    WelcomeAccount,
    /// The label of the API key.
    ApiKeyLabel,
    /// The API key is shown once.
    ApiKeyOnce,
    /// How to send the API key.
    ApiKeyUsage,
    /// Which request to try first.
    ApiKeyExample,
    /// The role `administrators`.
    RoleAdministrators,
    /// The role `managers`.
    RoleManagers,
    /// The role `users`.
    RoleUsers,
    /// The role `collaborators`.
    RoleCollaborators,
}

impl PageText {
    /// Every text, so tests can check the catalog is complete.
    pub const ALL: [PageText; 25] = [
        PageText::InvitationTitle,
        PageText::InvitationIntro,
        PageText::InvitationIntroWithoutInviter,
        PageText::OrganizationLabel,
        PageText::RoleLabel,
        PageText::IdentifierLabel,
        PageText::InviterLabel,
        PageText::FirstName,
        PageText::LastName,
        PageText::Password,
        PageText::PasswordAgain,
        PageText::Accept,
        PageText::PasswordsDiffer,
        PageText::InvalidInvitation,
        PageText::InvalidInvitationHelp,
        PageText::WelcomeTitle,
        PageText::WelcomeAccount,
        PageText::ApiKeyLabel,
        PageText::ApiKeyOnce,
        PageText::ApiKeyUsage,
        PageText::ApiKeyExample,
        PageText::RoleAdministrators,
        PageText::RoleManagers,
        PageText::RoleUsers,
        PageText::RoleCollaborators,
    ];
}

/// The text of the page text `text` in `language`, with its `{placeholders}` unfilled.
#[must_use]
pub fn page_template(text: PageText, language: Language) -> &'static str {
    use Language::{English as En, French as Fr};
    use PageText as P;
    match (text, language) {
        (P::InvitationTitle, En) => "Join {organization}",
        (P::InvitationTitle, Fr) => "Rejoindre {organization}",
        (P::InvitationIntro, En) => "{inviter} invited you to join {organization} as {role}.",
        (P::InvitationIntro, Fr) => {
            "{inviter} vous invite à rejoindre {organization} en tant que {role}."
        }
        (P::InvitationIntroWithoutInviter, En) => {
            "You are invited to join {organization} as {role}."
        }
        (P::InvitationIntroWithoutInviter, Fr) => {
            "Vous êtes invité à rejoindre {organization} en tant que {role}."
        }
        (P::OrganizationLabel, En) => "Organization",
        (P::OrganizationLabel, Fr) => "Organisation",
        (P::RoleLabel, En) => "Role",
        (P::RoleLabel, Fr) => "Rôle",
        (P::IdentifierLabel, En) => "Your identifier",
        (P::IdentifierLabel, Fr) => "Votre identifiant",
        (P::InviterLabel, En) => "Invited by",
        (P::InviterLabel, Fr) => "Invité par",
        (P::FirstName, En) => "First name",
        (P::FirstName, Fr) => "Prénom",
        (P::LastName, En) => "Last name",
        (P::LastName, Fr) => "Nom",
        (P::Password, En) => "Password (at least 8 characters)",
        (P::Password, Fr) => "Mot de passe (au moins 8 caractères)",
        (P::PasswordAgain, En) => "Password again",
        (P::PasswordAgain, Fr) => "Mot de passe, à nouveau",
        (P::Accept, En) => "Accept the invitation",
        (P::Accept, Fr) => "Accepter l'invitation",
        (P::PasswordsDiffer, En) => "The two passwords do not match.",
        (P::PasswordsDiffer, Fr) => "Les deux mots de passe ne correspondent pas.",
        (P::InvalidInvitation, En) => "Invalid or expired invitation.",
        (P::InvalidInvitation, Fr) => "Invitation invalide ou expirée.",
        (P::InvalidInvitationHelp, En) => {
            "This link was already used, revoked or has expired. Ask the person who invited you for a new invitation."
        }
        (P::InvalidInvitationHelp, Fr) => {
            "Ce lien a déjà servi, a été révoqué ou a expiré. Demandez une nouvelle invitation à la personne qui vous a invité."
        }
        (P::WelcomeTitle, En) => "Welcome to {organization}",
        (P::WelcomeTitle, Fr) => "Bienvenue dans {organization}",
        (P::WelcomeAccount, En) => "Your account {identifier} is ready, with the role {role}.",
        (P::WelcomeAccount, Fr) => "Votre compte {identifier} est prêt, avec le rôle {role}.",
        (P::ApiKeyLabel, En) => "Your API key",
        (P::ApiKeyLabel, Fr) => "Votre clé d'API",
        (P::ApiKeyOnce, En) => {
            "It is shown only this once: copy it now and keep it secret. You can make a new one later with POST /me/regen_secret/."
        }
        (P::ApiKeyOnce, Fr) => {
            "Elle n'est affichée que cette fois : copiez-la maintenant et gardez-la secrète. Vous pourrez en créer une nouvelle avec POST /me/regen_secret/."
        }
        (P::ApiKeyUsage, En) => "Send it in the Authorization header of each API request:",
        (P::ApiKeyUsage, Fr) => {
            "Envoyez-la dans l'en-tête Authorization de chaque requête à l'API :"
        }
        (P::ApiKeyExample, En) => "For example, your own account:",
        (P::ApiKeyExample, Fr) => "Par exemple, votre propre compte :",
        (P::RoleAdministrators, En) => "administrators",
        (P::RoleAdministrators, Fr) => "administrateurs",
        (P::RoleManagers, En) => "managers",
        (P::RoleManagers, Fr) => "gestionnaires",
        (P::RoleUsers, En) => "users",
        (P::RoleUsers, Fr) => "utilisateurs",
        (P::RoleCollaborators, En) => "collaborators",
        (P::RoleCollaborators, Fr) => "collaborateurs",
    }
}

/// The page text `text` in `language` with its placeholders filled from `params`.
#[must_use]
///
/// One pass over the template: a value that itself looks like a placeholder (an
/// organization named `{role}`) is kept as given.
pub fn page_text(text: PageText, language: Language, params: &[(&str, &str)]) -> String {
    let mut rest = page_template(text, language);
    let mut filled = String::with_capacity(rest.len());
    while let Some(start) = rest.find('{') {
        filled.push_str(&rest[..start]);
        let after = &rest[start + 1..];
        let value = after.find('}').and_then(|end| {
            let name = &after[..end];
            params
                .iter()
                .find(|(key, _)| *key == name)
                .map(|(_, value)| (*value, end))
        });
        match value {
            Some((value, end)) => {
                filled.push_str(value);
                rest = &after[end + 1..];
            }
            None => {
                filled.push('{');
                rest = after;
            }
        }
    }
    filled.push_str(rest);
    filled
}

#[cfg(test)]
mod tests {
    use super::*;

    fn placeholders(text: &str) -> Vec<&str> {
        let mut found: Vec<&str> = text
            .split('{')
            .skip(1)
            .filter_map(|rest| rest.split_once('}').map(|(name, _)| name))
            .collect();
        found.sort_unstable();
        found
    }

    #[test]
    fn every_message_code_has_an_english_and_a_french_text_with_the_same_placeholders() {
        for code in MessageCode::ALL {
            let english = template(code, Language::English);
            let french = template(code, Language::French);

            assert!(!english.is_empty(), "{code:?} has no English text");
            assert!(!french.is_empty(), "{code:?} has no French text");
            assert_ne!(english, french, "{code:?} is not translated");
            assert_eq!(placeholders(english), placeholders(french), "{code:?}");
        }
    }

    #[test]
    fn every_page_text_has_an_english_and_a_french_text_with_the_same_placeholders() {
        let mut seen = std::collections::HashSet::new();
        for text in PageText::ALL {
            let english = page_template(text, Language::English);
            let french = page_template(text, Language::French);

            assert!(seen.insert(text), "{text:?} is listed twice");
            assert!(!english.is_empty(), "{text:?} has no English text");
            assert_ne!(english, french, "{text:?} is not translated");
            assert_eq!(placeholders(english), placeholders(french), "{text:?}");
        }
    }

    #[test]
    fn page_values_are_filled_once_even_when_they_look_like_placeholders() {
        let text = page_text(
            PageText::InvitationIntro,
            Language::English,
            &[
                ("inviter", "{organization}"),
                ("organization", "Acme"),
                ("role", "users"),
            ],
        );

        assert_eq!(text, "{organization} invited you to join Acme as users.");
    }

    #[test]
    fn the_list_of_codes_names_each_code_once() {
        let mut seen = std::collections::HashSet::new();

        let duplicates: Vec<_> = MessageCode::ALL
            .into_iter()
            .filter(|code| !seen.insert(*code))
            .collect();

        assert!(duplicates.is_empty(), "{duplicates:?}");
    }

    #[test]
    fn parameters_are_filled_in_both_languages() {
        let code = ErrorCode::MaxLength { max: 200 };

        let english = error_text(&code, Language::English);
        let french = error_text(&code, Language::French);

        assert_eq!(
            english,
            "Ensure this field has no more than 200 characters."
        );
        assert_eq!(
            french,
            "Assurez-vous que ce champ comporte au plus 200 caractères."
        );
    }

    #[test]
    fn an_invalid_choice_quotes_the_given_value() {
        let code = ErrorCode::InvalidChoice {
            value: "xyz".to_owned(),
        };

        assert_eq!(
            error_text(&code, Language::English),
            "\"xyz\" is not a valid choice."
        );
    }

    #[test]
    fn a_nul_character_has_drf_texts() {
        assert_eq!(
            error_text(&ErrorCode::NullCharacter, Language::English),
            "Null characters are not allowed."
        );
        assert_eq!(
            error_text(&ErrorCode::NullCharacter, Language::French),
            "Les caractères null ne sont pas autorisés."
        );
    }

    #[test]
    fn a_bad_datetime_names_the_formats_in_both_languages() {
        assert!(
            error_text(&ErrorCode::InvalidDateTime, Language::English)
                .starts_with("Datetime has wrong format.")
        );
        assert!(
            error_text(&ErrorCode::InvalidDateTime, Language::French)
                .starts_with("La date + heure n'a pas le bon format.")
        );
    }

    #[test]
    fn the_seed_french_email_message_is_kept_exactly() {
        assert_eq!(
            error_text(&ErrorCode::InvalidEmail, Language::French),
            "Saisissez une adresse email valable."
        );
    }
}
