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

/// Declares a catalog from one table: the enum of its keys (with `ALL`, every key in
/// order) and the function giving a key's text in a language, placeholders unfilled.
/// Each entry is a key, its English text, then its French text.
macro_rules! catalog {
    (
        $(#[$meta:meta])*
        pub enum $name:ident;
        $(#[$fn_meta:meta])*
        pub fn $template:ident;
        $($(#[$doc:meta])* $key:ident: $english:literal, $french:literal;)*
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$doc])* $key,)*
        }

        impl $name {
            /// Every key, in the order of the table.
            pub const ALL: [$name; [$(stringify!($key)),*].len()] = [$($name::$key),*];
        }

        $(#[$fn_meta])*
        #[must_use]
        pub fn $template(key: $name, language: Language) -> &'static str {
            match (key, language) {
                $(
                    ($name::$key, Language::English) => $english,
                    ($name::$key, Language::French) => $french,
                )*
            }
        }
    };
}

catalog! {
    /// The key of one message in the catalog.
    pub enum MessageCode;
    /// The text of `code` in `language`, with its `{placeholders}` unfilled.
    pub fn template;
    /// A required field is absent.
    Required:
        "This field is required.",
        "Ce champ est obligatoire.";
    /// A field is `null`.
    Null:
        "This field may not be null.",
        "Ce champ ne peut être nul.";
    /// A field is blank.
    Blank:
        "This field may not be blank.",
        "Ce champ ne peut être vide.";
    /// A string is too long (`{max_length}`).
    MaxLength:
        "Ensure this field has no more than {max_length} characters.",
        "Assurez-vous que ce champ comporte au plus {max_length} caractères.";
    /// A string is too short (`{min_length}`).
    MinLength:
        "Ensure this field has at least {min_length} characters.",
        "Assurez-vous que ce champ comporte au moins {min_length} caractères.";
    /// Not a string.
    InvalidString:
        "Not a valid string.",
        "Chaîne de caractères non valide.";
    /// Not a boolean.
    InvalidBoolean:
        "Must be a valid boolean.",
        "Doit être un booléen valide.";
    /// Not an integer.
    InvalidInteger:
        "A valid integer is required.",
        "Un nombre entier valide est requis.";
    /// Below `{min_value}`.
    MinValue:
        "Ensure this value is greater than or equal to {min_value}.",
        "Assurez-vous que cette valeur est supérieure ou égale à {min_value}.";
    /// Above `{max_value}`.
    MaxValue:
        "Ensure this value is less than or equal to {max_value}.",
        "Assurez-vous que cette valeur est inférieure ou égale à {max_value}.";
    /// `{input}` is no allowed choice.
    InvalidChoice:
        "\"{input}\" is not a valid choice.",
        "\"{input}\" n'est pas un choix valide.";
    /// Not an object (`{datatype}` given).
    NotAnObject:
        "Invalid data. Expected a dictionary, but got {datatype}.",
        "Donnée non valide. Attendait un dictionnaire, a reçu {datatype}.";
    /// Not an e-mail address.
    InvalidEmail:
        "Enter a valid email address.",
        "Saisissez une adresse email valable.";
    /// Bad nickname.
    InvalidNickname:
        "Nickname can only contain lowercase letters, numbers and dashes. It must be between 4 and 30 characters long",
        "Le surnom ne peut contenir que des lettres minuscules, des chiffres et des tirets. Il doit comporter entre 4 et 30 caractères";
    /// External opt-out message not allowed.
    ExternalOptoutNotAllowed:
        "External optout is not allowed, no need to provide a message",
        "Le désabonnement externe n'est pas autorisé, inutile de fournir un message";
    /// Hyperlink to no organization detail URL.
    NoUrlMatch:
        "Invalid hyperlink - No URL match.",
        "Lien non valide : pas d'URL correspondante.";
    /// Hyperlink to a missing organization.
    ObjectDoesNotExist:
        "Invalid hyperlink - Object does not exist.",
        "Lien non valide : l'objet n'existe pas.";
    /// CONTRACT §4 create rule 3.
    ParentMustBeYourOrganization:
        "Parent organization must be your organization.",
        "L'organisation parente doit être votre organisation.";
    /// CONTRACT §4 create rule 4.
    ParentAlreadyHasParent:
        "Cannot be attached to a parent organization that already has a parent.",
        "Impossible de rattacher à une organisation parente qui a déjà un parent.";
    /// `parent` cannot change.
    ParentCannotChange:
        "This field cannot be changed.",
        "Ce champ ne peut pas être modifié.";
    /// A user has this identifier.
    IdentifierTaken:
        "A user with this identifier already exists.",
        "Un utilisateur avec cet identifiant existe déjà.";
    /// A pending invitation exists.
    AlreadyInvited:
        "This identifier has already been invited.",
        "Cet identifiant a déjà été invité.";
    /// A bad invitation token.
    InvalidInvitation:
        "Invalid or expired invitation.",
        "Invitation invalide ou expirée.";
    /// Wrong credentials.
    InvalidCredentials:
        "Unable to log in with provided credentials.",
        "Impossible de se connecter avec les informations d'identification fournies.";
    /// 401 without credentials.
    NotAuthenticated:
        "Authentication credentials were not provided.",
        "Informations d'authentification non fournies.";
    /// 401 with bad credentials.
    InvalidToken:
        "Invalid token.",
        "Token non valide.";
    /// 403.
    PermissionDenied:
        "You do not have permission to perform this action.",
        "Vous n'avez pas la permission d'effectuer cette action.";
    /// 404.
    NotFound:
        "Not found.",
        "Pas trouvé.";
    /// 404 for a bad page.
    InvalidPage:
        "Invalid page.",
        "Page invalide.";
    /// 405 (`{method}`).
    MethodNotAllowed:
        "Method \"{method}\" not allowed.",
        "Méthode \"{method}\" non autorisée.";
    /// 400 for malformed JSON (`{error}`).
    ParseError:
        "JSON parse error - {error}",
        "Erreur d'analyse JSON - {error}";
    /// 413 (`{max}` bytes).
    PayloadTooLarge:
        "Request body is too large: at most {max} bytes are accepted.",
        "Le corps de la requête est trop volumineux : au plus {max} octets sont acceptés.";
    /// 415 (`{media_type}`).
    UnsupportedMediaType:
        "Unsupported media type \"{media_type}\" in request.",
        "Type de média \"{media_type}\" non supporté.";
    /// 412.
    PreconditionFailed:
        "The resource has changed since it was read: If-Match does not match.",
        "La ressource a changé depuis sa lecture : If-Match ne correspond pas.";
    /// 409: invitation accepted already.
    InvitationAccepted:
        "This invitation has already been accepted.",
        "Cette invitation a déjà été acceptée.";
    /// 409: invitation revoked already.
    InvitationRevoked:
        "This invitation has been revoked.",
        "Cette invitation a été révoquée.";
    /// 409: another pending invitation for the address.
    InvitationPendingElsewhere:
        "Another pending invitation exists for this identifier.",
        "Une autre invitation en attente existe pour cet identifiant.";
    /// 409: a root organization keeps at least one administrator.
    LastAdministrator:
        "An organization must keep at least one administrator.",
        "Une organisation doit garder au moins un administrateur.";
    /// 429 with a wait of one second.
    ThrottledOneSecond:
        "Request was throttled. Expected available in 1 second.",
        "Requête ralentie. Disponible dans 1 seconde.";
    /// 429 with a wait of `{wait}` seconds.
    ThrottledSeconds:
        "Request was throttled. Expected available in {wait} seconds.",
        "Requête ralentie. Disponible dans {wait} secondes.";
    /// 503.
    ServiceUnavailable:
        "Service temporarily unavailable, try again later.",
        "Service temporairement indisponible, réessayez plus tard.";
    /// 500.
    ServerError:
        "A server error occurred.",
        "Une erreur du serveur est survenue.";
    /// A NUL character in a string.
    NullCharacter:
        "Null characters are not allowed.",
        "Les caractères null ne sont pas autorisés.";
    /// 400: a malformed `Idempotency-Key` (CONTRACT §12).
    InvalidIdempotencyKey:
        "Idempotency-Key must be 1 to 255 visible ASCII characters.",
        "Idempotency-Key doit comporter de 1 à 255 caractères ASCII visibles.";
    /// 422: the key was used for a different request.
    IdempotencyKeyReused:
        "This Idempotency-Key was already used for a different request.",
        "Cette Idempotency-Key a déjà servi pour une autre requête.";
    /// 409: the request with this key still runs.
    IdempotencyKeyInProgress:
        "A request with this Idempotency-Key is still being processed.",
        "Une requête avec cette Idempotency-Key est encore en cours de traitement.";
    /// 403: a `read` API key tried to write.
    ReadOnlyKey:
        "This API key is read-only.",
        "Cette clé d'API est en lecture seule.";
    /// The user holds a live API key of this name.
    ApiKeyNameTaken:
        "You already have an API key with this name.",
        "Vous avez déjà une clé d'API portant ce nom.";
    /// The user holds the most API keys (`{max}`).
    TooManyApiKeys:
        "You cannot have more than {max} API keys.",
        "Vous ne pouvez pas avoir plus de {max} clés d'API.";
    /// Not an ISO 8601 date or date-time (`?since=`, `?until=`).
    InvalidDateTime:
        "Datetime has wrong format. Use one of these formats instead: YYYY-MM-DDThh:mm[:ss[.uuuuuu]][+HH:MM|-HH:MM|Z], YYYY-MM-DD.",
        "La date + heure n'a pas le bon format. Utilisez un des formats suivants : YYYY-MM-DDThh:mm[:ss[.uuuuuu]][+HH:MM|-HH:MM|Z], YYYY-MM-DD.";
    /// Not a cursor of the audit log (`?cursor=`).
    InvalidCursor:
        "Invalid cursor.",
        "Curseur invalide.";
    /// `?cursor=` and `?page=` in one request.
    CursorWithPage:
        "Use either cursor or page, not both.",
        "Utilisez soit cursor, soit page, pas les deux.";
    /// Not an absolute `http`/`https` URL.
    InvalidUrl:
        "Enter a valid URL.",
        "Saisissez une URL valide.";
    /// A webhook endpoint on a refused address (CONTRACT §14).
    AddressNotAllowed:
        "This address is not allowed.",
        "Cette adresse n'est pas autorisée.";
    /// Not a list.
    NotAList:
        "Expected a list of items.",
        "Une liste d'éléments est attendue.";
    /// An organization already has 10 webhooks.
    TooManyWebhooks:
        "An organization cannot have more than 10 webhooks.",
        "Une organisation ne peut pas avoir plus de 10 webhooks.";
    /// A service account name outside the grammar (CONTRACT §11).
    InvalidServiceAccountName:
        "Enter a valid name consisting of letters, numbers, hyphens, underscores or dots.",
        "Saisissez un nom valide composé de lettres, de chiffres, de tirets, de tirets bas ou de points.";
    /// The organization has a service account of this name.
    ServiceAccountNameTaken:
        "A service account with this name already exists.",
        "Un compte de service portant ce nom existe déjà.";
    /// A service account was to be made an administrator.
    ServiceAccountCannotBeAdministrator:
        "A service account cannot be an administrator.",
        "Un compte de service ne peut pas être administrateur.";
}

/// The text of `code` in `language` with its placeholder, if it has one, filled.
#[must_use]
pub fn render(code: MessageCode, language: Language, param: Option<(&str, String)>) -> String {
    match param {
        Some((name, value)) => fill(template(code, language), &[(name, &value)]),
        None => template(code, language).to_owned(),
    }
}

/// The text of a domain validation code.
#[must_use]
pub fn error_text(code: &ErrorCode, language: Language) -> String {
    use {ErrorCode as E, MessageCode as M};
    let (message, param) = match code {
        E::Required => (M::Required, None),
        E::Null => (M::Null, None),
        E::Blank => (M::Blank, None),
        E::MaxLength { max } => (M::MaxLength, Some(("max_length", max.to_string()))),
        E::MinLength { min } => (M::MinLength, Some(("min_length", min.to_string()))),
        E::InvalidString => (M::InvalidString, None),
        E::InvalidBoolean => (M::InvalidBoolean, None),
        E::InvalidInteger => (M::InvalidInteger, None),
        E::MinValue { min } => (M::MinValue, Some(("min_value", min.to_string()))),
        E::MaxValue { max } => (M::MaxValue, Some(("max_value", max.to_string()))),
        E::InvalidChoice { value } => (M::InvalidChoice, Some(("input", value.clone()))),
        E::NotAnObject { given } => (M::NotAnObject, Some(("datatype", given.clone()))),
        E::InvalidEmail => (M::InvalidEmail, None),
        E::InvalidNickname => (M::InvalidNickname, None),
        E::ExternalOptoutNotAllowed => (M::ExternalOptoutNotAllowed, None),
        E::NoUrlMatch => (M::NoUrlMatch, None),
        E::ObjectDoesNotExist => (M::ObjectDoesNotExist, None),
        E::ParentMustBeYourOrganization => (M::ParentMustBeYourOrganization, None),
        E::ParentAlreadyHasParent => (M::ParentAlreadyHasParent, None),
        E::ParentCannotChange => (M::ParentCannotChange, None),
        E::IdentifierTaken => (M::IdentifierTaken, None),
        E::AlreadyInvited => (M::AlreadyInvited, None),
        E::InvalidInvitation => (M::InvalidInvitation, None),
        E::InvalidCredentials => (M::InvalidCredentials, None),
        E::NullCharacter => (M::NullCharacter, None),
        E::ApiKeyNameTaken => (M::ApiKeyNameTaken, None),
        E::TooManyApiKeys { max } => (M::TooManyApiKeys, Some(("max", max.to_string()))),
        E::InvalidDateTime => (M::InvalidDateTime, None),
        E::InvalidCursor => (M::InvalidCursor, None),
        E::CursorWithPage => (M::CursorWithPage, None),
        E::InvalidUrl => (M::InvalidUrl, None),
        E::AddressNotAllowed => (M::AddressNotAllowed, None),
        E::NotAList => (M::NotAList, None),
        E::TooManyWebhooks => (M::TooManyWebhooks, None),
        E::InvalidServiceAccountName => (M::InvalidServiceAccountName, None),
        E::ServiceAccountNameTaken => (M::ServiceAccountNameTaken, None),
        E::ServiceAccountCannotBeAdministrator => (M::ServiceAccountCannotBeAdministrator, None),
    };
    render(message, language, param)
}

catalog! {
    /// The texts of the invitation page (CONTRACT §10), keyed by (text, language).
    pub enum PageText;
    /// The text of the page text `text` in `language`, with its `{placeholders}` unfilled.
    pub fn page_template;
    /// The title of the invitation page (`{organization}`).
    InvitationTitle:
        "Join {organization}",
        "Rejoindre {organization}";
    /// What the invitation offers (`{inviter}`, `{organization}`, `{role}`).
    InvitationIntro:
        "{inviter} invited you to join {organization} as {role}.",
        "{inviter} vous invite à rejoindre {organization} en tant que {role}.";
    /// What the invitation offers when its inviter is gone (`{organization}`, `{role}`).
    InvitationIntroWithoutInviter:
        "You are invited to join {organization} as {role}.",
        "Vous êtes invité à rejoindre {organization} en tant que {role}.";
    /// The label of the organization's name.
    OrganizationLabel:
        "Organization",
        "Organisation";
    /// The label of the role.
    RoleLabel:
        "Role",
        "Rôle";
    /// The label of the invited identifier.
    IdentifierLabel:
        "Your identifier",
        "Votre identifiant";
    /// The label of the inviter.
    InviterLabel:
        "Invited by",
        "Invité par";
    /// The first name field.
    FirstName:
        "First name",
        "Prénom";
    /// The last name field.
    LastName:
        "Last name",
        "Nom";
    /// The password field.
    Password:
        "Password (at least 8 characters)",
        "Mot de passe (au moins 8 caractères)";
    /// The password confirmation field.
    PasswordAgain:
        "Password again",
        "Mot de passe, à nouveau";
    /// The submit button.
    Accept:
        "Accept the invitation",
        "Accepter l'invitation";
    /// The confirmation differs from the password.
    PasswordsDiffer:
        "The two passwords do not match.",
        "Les deux mots de passe ne correspondent pas.";
    /// The invalid-invitation page's title.
    InvalidInvitation:
        "Invalid or expired invitation.",
        "Invitation invalide ou expirée.";
    /// What to do about an invalid invitation.
    InvalidInvitationHelp:
        "This link was already used, revoked or has expired. Ask the person who invited you for a new invitation.",
        "Ce lien a déjà servi, a été révoqué ou a expiré. Demandez une nouvelle invitation à la personne qui vous a invité.";
    /// The page shown when the service cannot answer a person (database away, busy).
    Unavailable:
        "The service cannot answer right now.",
        "Le service ne peut pas répondre pour le moment.";
    /// What to do then.
    UnavailableHelp:
        "Please try again in a moment; your invitation link still works.",
        "Réessayez dans un instant ; votre lien d'invitation reste valable.";
    /// The welcome page's title (`{organization}`).
    WelcomeTitle:
        "Welcome to {organization}",
        "Bienvenue dans {organization}";
    /// The new account (`{identifier}`, `{role}`).
    WelcomeAccount:
        "Your account {identifier} is ready, with the role {role}.",
        "Votre compte {identifier} est prêt, avec le rôle {role}.";
    /// The label of the API key.
    ApiKeyLabel:
        "Your API key",
        "Votre clé d'API";
    /// The API key is shown once.
    ApiKeyOnce:
        "It is shown only this once: copy it now and keep it secret. You can make a new one later with POST /me/regen_secret/.",
        "Elle n'est affichée que cette fois : copiez-la maintenant et gardez-la secrète. Vous pourrez en créer une nouvelle avec POST /me/regen_secret/.";
    /// How to send the API key.
    ApiKeyUsage:
        "Send it in the Authorization header of each API request:",
        "Envoyez-la dans l'en-tête Authorization de chaque requête à l'API :";
    /// Which request to try first.
    ApiKeyExample:
        "For example, your own account:",
        "Par exemple, votre propre compte :";
    /// The role `administrators`.
    RoleAdministrators:
        "administrators",
        "administrateurs";
    /// The role `managers`.
    RoleManagers:
        "managers",
        "gestionnaires";
    /// The role `users`.
    RoleUsers:
        "users",
        "utilisateurs";
    /// The role `collaborators`.
    RoleCollaborators:
        "collaborators",
        "collaborateurs";
}

/// The page text `text` in `language` with its placeholders filled from `params`.
#[must_use]
pub fn page_text(text: PageText, language: Language, params: &[(&str, &str)]) -> String {
    fill(page_template(text, language), params)
}

/// `template` with its placeholders filled from `params`, in one pass: a value that
/// itself looks like a placeholder (an organization named `{role}`) is kept as given.
fn fill(template: &str, params: &[(&str, &str)]) -> String {
    let mut rest = template;
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
    fn cursor_errors_have_both_languages() {
        assert_eq!(
            error_text(&ErrorCode::InvalidCursor, Language::English),
            "Invalid cursor."
        );
        assert_eq!(
            error_text(&ErrorCode::InvalidCursor, Language::French),
            "Curseur invalide."
        );
        assert_eq!(
            error_text(&ErrorCode::CursorWithPage, Language::French),
            "Utilisez soit cursor, soit page, pas les deux."
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
