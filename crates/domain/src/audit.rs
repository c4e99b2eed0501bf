//! The audit log's events (CONTRACT §13): what a change records, computed from the values
//! before and after it, never from a secret.
//!
//! A use case that changes something builds one [`NewEvent`] per change and hands it to
//! the storage port method that makes the change, which stores both in one transaction.
//! The same events are the stream webhooks read (CONTRACT §14). See `docs/audit.md`.

use std::collections::BTreeMap;

use crate::api_key::{ApiKeyName, Scope};
use crate::organization::Organization;
use crate::user::MemberRef;
use crate::validation::ErrorCode;
use crate::{EventId, InvitationId, OrganizationId, Role, Timestamp, UserId, WebhookId};

/// Declares [`EventAction`]: one line per action, its variant and its name.
macro_rules! actions {
    ($($(#[$meta:meta])* $variant:ident => $name:literal,)*) => {
        /// What an event records. Adding an action is one line in this list.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum EventAction {
            $($(#[$meta])* $variant,)*
        }

        impl EventAction {
            /// Every action, in declaration order.
            pub const ALL: &'static [EventAction] = &[$(EventAction::$variant,)*];

            /// The action's name, as stored and shown (`member.role_changed`).
            #[must_use]
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(EventAction::$variant => $name,)*
                }
            }
        }
    };
}

actions! {
    /// An organization was created (through the API, an operator command or the first start).
    OrganizationCreated => "organization.created",
    /// An organization's name, contact address or settings changed.
    OrganizationUpdated => "organization.updated",
    /// A child organization was archived.
    OrganizationArchived => "organization.archived",
    /// An operator restored an archived organization.
    OrganizationRestored => "organization.restored",
    /// An operator changed an organization's flags.
    OrganizationFlagsChanged => "organization.flags_changed",
    /// An invitation was made.
    InvitationCreated => "invitation.created",
    /// An invitation was sent again.
    InvitationResent => "invitation.resent",
    /// An invitation was revoked.
    InvitationRevoked => "invitation.revoked",
    /// An invitation was accepted: the actor is the new member.
    InvitationAccepted => "invitation.accepted",
    /// An operator (or the first start) created a member.
    MemberCreated => "member.created",
    /// A member's role changed.
    MemberRoleChanged => "member.role_changed",
    /// A member was removed.
    MemberRemoved => "member.removed",
    /// An administrator created a service account (a member with its `default` key).
    ServiceAccountCreated => "service_account.created",
    /// A user replaced their default API key.
    ApiKeyRegenerated => "api_key.regenerated",
    /// A user made a named API key.
    ApiKeyCreated => "api_key.created",
    /// A user revoked one of their API keys.
    ApiKeyRevoked => "api_key.revoked",
    /// An opt-out was recorded.
    OptOutRecorded => "opt_out.recorded",
    /// A webhook was created.
    WebhookCreated => "webhook.created",
    /// A webhook's endpoint, events, description or state changed.
    WebhookUpdated => "webhook.updated",
    /// A webhook was deleted.
    WebhookDeleted => "webhook.deleted",
    /// A webhook's signing secret was replaced.
    WebhookSecretRotated => "webhook.secret_rotated",
}

impl EventAction {
    /// The action with this name.
    #[must_use]
    pub fn parse(name: &str) -> Option<EventAction> {
        Self::ALL
            .iter()
            .copied()
            .find(|action| action.as_str() == name)
    }
}

impl std::fmt::Display for EventAction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which actions a `?action=` filter keeps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ActionFilter {
    /// One action.
    Exactly(EventAction),
    /// Every action whose name starts with this prefix, dot included (`member.`).
    Prefix(String),
}

impl ActionFilter {
    /// Reads `?action=`: an action's name, or a prefix such as `member.*` that at least one
    /// action has.
    ///
    /// # Errors
    /// `InvalidChoice` for anything else.
    pub fn parse(text: &str) -> Result<ActionFilter, ErrorCode> {
        if let Some(action) = EventAction::parse(text) {
            return Ok(ActionFilter::Exactly(action));
        }
        if let Some(stem) = text.strip_suffix(".*") {
            let prefix = format!("{stem}.");
            if !stem.is_empty()
                && EventAction::ALL
                    .iter()
                    .any(|action| action.as_str().starts_with(&prefix))
            {
                return Ok(ActionFilter::Prefix(prefix));
            }
        }
        Err(ErrorCode::InvalidChoice {
            value: text.chars().take(100).collect(),
        })
    }

    /// Whether `action` passes the filter.
    #[must_use]
    pub fn matches(&self, action: EventAction) -> bool {
        match self {
            ActionFilter::Exactly(wanted) => *wanted == action,
            ActionFilter::Prefix(prefix) => action.as_str().starts_with(prefix.as_str()),
        }
    }
}

/// A request's id (`X-Request-Id`): 1 to 128 visible ASCII characters, kept inline so
/// that an [`Actor`](crate::Actor) holding one stays `Copy`.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct RequestId {
    len: u8,
    bytes: [u8; RequestId::MAX_LEN],
}

impl RequestId {
    /// The longest request id kept.
    pub const MAX_LEN: usize = 128;

    /// A request id, if `text` is 1 to 128 visible ASCII characters.
    #[must_use]
    pub fn parse(text: &str) -> Option<RequestId> {
        let raw = text.as_bytes();
        if raw.is_empty() || raw.len() > Self::MAX_LEN || !raw.iter().all(u8::is_ascii_graphic) {
            return None;
        }
        let mut bytes = [0; Self::MAX_LEN];
        bytes[..raw.len()].copy_from_slice(raw);
        Some(RequestId {
            len: u8::try_from(raw.len()).ok()?,
            bytes,
        })
    }

    /// The id.
    #[must_use]
    pub fn as_str(&self) -> &str {
        // Only visible ASCII is ever stored, so this never falls back.
        std::str::from_utf8(&self.bytes[..usize::from(self.len)]).unwrap_or("")
    }
}

impl std::fmt::Debug for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("RequestId").field(&self.as_str()).finish()
    }
}

/// Who made a change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventActor {
    /// An operator command (or the first start): no user.
    Operator,
    /// A user.
    User(UserId),
    /// The member the storage call itself creates (by accepting an invitation).
    ThisMember,
}

/// What a change changed, besides its organization.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventTarget {
    /// Nothing with a URL of its own (an opt-out).
    None,
    /// The event's organization.
    Organization,
    /// A member of the event's organization.
    Member(UserId),
    /// The member the storage call itself creates.
    ThisMember,
    /// An invitation of the event's organization.
    Invitation(InvitationId),
    /// The invitation the storage call itself creates or accepts.
    ThisInvitation,
    /// A webhook of the event's organization.
    Webhook(WebhookId),
    /// The webhook the storage call itself creates.
    ThisWebhook,
}

/// The organization an event belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventOrganization {
    /// An existing organization.
    Existing(OrganizationId),
    /// The organization the storage call itself creates, or the one of the invitation
    /// it accepts: known only inside its transaction.
    ThisOrganization,
}

/// One value in `changes`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChangeValue {
    /// No value.
    Null,
    /// A boolean.
    Bool(bool),
    /// A string.
    Text(String),
}

impl From<bool> for ChangeValue {
    fn from(value: bool) -> Self {
        ChangeValue::Bool(value)
    }
}

impl From<&str> for ChangeValue {
    fn from(value: &str) -> Self {
        ChangeValue::Text(value.to_owned())
    }
}

impl<T: Into<ChangeValue>> From<Option<T>> for ChangeValue {
    fn from(value: Option<T>) -> Self {
        value.map_or(ChangeValue::Null, Into::into)
    }
}

/// `changes`: for each field that changed, its value before and after, by field name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Changes(BTreeMap<String, (ChangeValue, ChangeValue)>);

impl Changes {
    /// No change.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Records `field` going from `before` to `after`, only if they differ.
    pub fn record(
        &mut self,
        field: &str,
        before: impl Into<ChangeValue>,
        after: impl Into<ChangeValue>,
    ) {
        let (before, after) = (before.into(), after.into());
        if before != after {
            self.0.insert(field.to_owned(), (before, after));
        }
    }

    /// `self` with `field` going from `before` to `after` (if they differ).
    #[must_use]
    pub fn with(
        mut self,
        field: &str,
        before: impl Into<ChangeValue>,
        after: impl Into<ChangeValue>,
    ) -> Self {
        self.record(field, before, after);
        self
    }

    /// Whether nothing changed.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The field names, in order.
    pub fn fields(&self) -> impl Iterator<Item = &str> {
        self.0.keys().map(String::as_str)
    }

    /// One field's values before and after.
    #[must_use]
    pub fn get(&self, field: &str) -> Option<&(ChangeValue, ChangeValue)> {
        self.0.get(field)
    }

    /// The JSON object stored and shown: `{"role": ["users", "managers"]}`.
    #[must_use]
    pub fn to_json(&self) -> String {
        let mut json = String::from("{");
        for (index, (field, (before, after))) in self.0.iter().enumerate() {
            if index > 0 {
                json.push_str(", ");
            }
            push_json_string(&mut json, field);
            json.push_str(": [");
            push_json_value(&mut json, before);
            json.push_str(", ");
            push_json_value(&mut json, after);
            json.push(']');
        }
        json.push('}');
        json
    }

    /// What `organization.updated` records between two versions of an organization:
    /// every changed field, settings as `settings.<name>`. Empty when nothing changed.
    #[must_use]
    pub fn between(before: &Organization, after: &Organization) -> Changes {
        let mut changes = Changes::new();
        changes.record("name", before.name.as_str(), after.name.as_str());
        changes.record(
            "contact_email",
            before.contact_email.as_ref().map(|email| email.as_str()),
            after.contact_email.as_ref().map(|email| email.as_str()),
        );
        let (old, new) = (&before.settings, &after.settings);
        changes.record(
            "settings.nickname",
            old.nickname.as_str(),
            new.nickname.as_str(),
        );
        changes.record(
            "settings.notify_message_status",
            old.notify_message_status,
            new.notify_message_status,
        );
        changes.record(
            "settings.notify_optouts",
            old.notify_optouts,
            new.notify_optouts,
        );
        changes.record(
            "settings.external_optout_message",
            old.external_optout_message.as_str(),
            new.external_optout_message.as_str(),
        );
        changes
    }

    /// What `organization.flags_changed` records.
    #[must_use]
    pub fn of_flags(before: &Organization, after: &Organization) -> Changes {
        Changes::new()
            .with(
                "can_attach_files",
                before.can_attach_files,
                after.can_attach_files,
            )
            .with(
                "can_external_optout",
                before.can_external_optout,
                after.can_external_optout,
            )
    }

    /// What `api_key.created` (`made`) or `api_key.revoked` (not `made`) records: the key's
    /// name, scope and expiry, from nothing or to nothing. Never the key, its hash or its
    /// prefix (see `docs/audit.md`).
    #[must_use]
    pub fn of_api_key(
        name: &ApiKeyName,
        scope: Scope,
        expires_at: Option<Timestamp>,
        made: bool,
    ) -> Changes {
        // As the API shows it.
        let expires_at = expires_at.map(|at| {
            let format = if at.timestamp_subsec_micros() == 0 {
                chrono::SecondsFormat::Secs
            } else {
                chrono::SecondsFormat::Micros
            };
            at.to_rfc3339_opts(format, true)
        });
        let fields = [
            ("name", ChangeValue::from(name.as_str())),
            ("scope", ChangeValue::from(scope.as_str())),
            ("expires_at", ChangeValue::from(expires_at.as_deref())),
        ];
        let mut changes = Changes::new();
        for (field, value) in fields {
            let (before, after) = if made {
                (ChangeValue::Null, value)
            } else {
                (value, ChangeValue::Null)
            };
            // Recorded even when both are null (a key that never expires), so that the
            // three fields are always there.
            changes.0.insert(field.to_owned(), (before, after));
        }
        changes
    }

    /// What `member.role_changed` records.
    #[must_use]
    pub fn of_role(before: Role, after: Role) -> Changes {
        Changes::new().with("role", before.as_str(), after.as_str())
    }
}

fn push_json_value(json: &mut String, value: &ChangeValue) {
    match value {
        ChangeValue::Null => json.push_str("null"),
        ChangeValue::Bool(true) => json.push_str("true"),
        ChangeValue::Bool(false) => json.push_str("false"),
        ChangeValue::Text(text) => push_json_string(json, text),
    }
}

fn push_json_string(json: &mut String, text: &str) {
    json.push('"');
    for character in text.chars() {
        match character {
            '"' => json.push_str("\\\""),
            '\\' => json.push_str("\\\\"),
            '\n' => json.push_str("\\n"),
            '\r' => json.push_str("\\r"),
            '\t' => json.push_str("\\t"),
            control if u32::from(control) < 0x20 => {
                json.push_str(&format!("\\u{:04x}", u32::from(control)));
            }
            other => json.push(other),
        }
    }
    json.push('"');
}

/// An event to store with the change it records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEvent {
    /// What happened.
    pub action: EventAction,
    /// Who did it.
    pub actor: EventActor,
    /// The organization it belongs to.
    pub organization: EventOrganization,
    /// What changed.
    pub target: EventTarget,
    /// The values before and after (never a secret).
    pub changes: Changes,
    /// The request that made the change (`None` for operator commands).
    pub request_id: Option<RequestId>,
    /// When.
    pub at: Timestamp,
}

impl NewEvent {
    /// An event with no `changes`.
    #[must_use]
    pub fn new(
        action: EventAction,
        actor: EventActor,
        organization: EventOrganization,
        target: EventTarget,
        request_id: Option<RequestId>,
        at: Timestamp,
    ) -> Self {
        Self {
            action,
            actor,
            organization,
            target,
            changes: Changes::new(),
            request_id,
            at,
        }
    }

    /// An event of a change `actor` made to `organization`, with the actor's request id.
    #[must_use]
    pub fn by(
        actor: &crate::Actor,
        action: EventAction,
        organization: OrganizationId,
        target: EventTarget,
        at: Timestamp,
    ) -> Self {
        Self::new(
            action,
            EventActor::User(actor.user_id),
            EventOrganization::Existing(organization),
            target,
            actor.request_id,
            at,
        )
    }

    /// An event of an operator command (no actor, no request id).
    #[must_use]
    pub fn by_operator(
        action: EventAction,
        organization: EventOrganization,
        target: EventTarget,
        at: Timestamp,
    ) -> Self {
        Self::new(action, EventActor::Operator, organization, target, None, at)
    }

    /// The same event with these `changes`.
    #[must_use]
    pub fn with_changes(self, changes: Changes) -> Self {
        Self { changes, ..self }
    }
}

/// What a stored event's target is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoredTarget {
    /// The event's organization.
    Organization,
    /// A member of the event's organization.
    Member(UserId),
    /// An invitation of the event's organization.
    Invitation(InvitationId),
    /// A webhook of the event's organization.
    Webhook(WebhookId),
}

/// A stored event, as the audit log shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Its id; later events have larger ids.
    pub id: EventId,
    /// What happened.
    pub action: EventAction,
    /// The user who did it; `None` for operator commands.
    pub actor: Option<MemberRef>,
    /// The actor's identifier when the event was made (`operator` for operator commands),
    /// kept when the user is removed.
    pub actor_identifier: String,
    /// The organization it belongs to.
    pub organization: OrganizationId,
    /// What changed; `None` for an opt-out.
    pub target: Option<StoredTarget>,
    /// The `changes` JSON object, as stored.
    pub changes: String,
    /// The request that made the change.
    pub request_id: Option<String>,
    /// When.
    pub created_at: Timestamp,
}

/// The `actor_identifier` of operator commands.
pub const OPERATOR_IDENTIFIER: &str = "operator";

/// Which events a list keeps.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventFilter {
    /// `?action=`.
    pub action: Option<ActionFilter>,
    /// `?actor=`: events made by this member.
    pub actor: Option<UserId>,
    /// `?since=`: events made at or after this instant.
    pub since: Option<Timestamp>,
    /// `?until=`: events made strictly before this instant.
    pub until: Option<Timestamp>,
}

/// Reads an instant of a filter (`?since=`, `?until=`): an RFC 3339 date-time, a
/// date-time without offset (UTC), or a date (its midnight, UTC).
///
/// # Errors
/// `InvalidDateTime` for anything else.
pub fn parse_instant(text: &str) -> Result<Timestamp, ErrorCode> {
    use chrono::{DateTime, NaiveDate, NaiveDateTime};
    if let Ok(instant) = DateTime::parse_from_rfc3339(text) {
        return Ok(instant.to_utc());
    }
    if let Ok(naive) = NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f") {
        return Ok(naive.and_utc());
    }
    if let Ok(naive) = NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M") {
        return Ok(naive.and_utc());
    }
    if let Ok(date) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        if let Some(midnight) = date.and_hms_opt(0, 0, 0) {
            return Ok(midnight.and_utc());
        }
    }
    Err(ErrorCode::InvalidDateTime)
}

/// Reads a keyset cursor of the audit log (`?cursor=`, `docs/audit.md`): empty for the
/// first page, otherwise the id of the last event of the previous page, in decimal
/// digits only (no sign, no spaces), at most `i64::MAX`. The page that follows holds the
/// events with smaller ids; `0` is a valid cursor (an empty page).
///
/// # Errors
/// `InvalidCursor` for anything else.
pub fn parse_cursor(text: &str) -> Result<Option<EventId>, ErrorCode> {
    if text.is_empty() {
        return Ok(None);
    }
    if !text.bytes().all(|byte| byte.is_ascii_digit()) {
        return Err(ErrorCode::InvalidCursor);
    }
    text.parse::<i64>()
        .map(|id| Some(EventId::new(id)))
        .map_err(|_| ErrorCode::InvalidCursor)
}

/// A keyset page of the audit log: the events, newest first, and the cursor of the page
/// after it (`None` on the last page).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventSlice {
    /// The events of the page.
    pub events: Vec<Event>,
    /// The id of the page's last event when more events follow it.
    pub next: Option<EventId>,
}

impl EventSlice {
    /// The page of `size` events made from the rows a storage read with a limit of
    /// `size + 1`: the extra row, when there is one, only says that a next page exists.
    #[must_use]
    pub fn of(mut rows: Vec<Event>, size: usize) -> Self {
        let more = rows.len() > size;
        rows.truncate(size);
        let next = if more {
            rows.last().map(|event| event.id)
        } else {
            None
        };
        Self { events: rows, next }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::organization::{Nickname, OrganizationName, Settings};
    use crate::{EmailAddress, Version};

    fn organization() -> Organization {
        Organization {
            id: OrganizationId::new(2),
            name: OrganizationName::parse("Child").expect("name"),
            contact_email: Some(EmailAddress::parse("child@example.com").expect("email")),
            settings: Settings::default(),
            parent: Some(OrganizationId::new(1)),
            can_attach_files: false,
            can_external_optout: false,
            version: Version::FIRST,
            created_at: Timestamp::default(),
            updated_at: Timestamp::default(),
        }
    }

    #[test]
    fn an_api_key_event_records_name_scope_and_expiry_from_or_to_nothing() {
        let name = ApiKeyName::parse("ci").expect("name");
        let expires = "2030-01-02T03:04:05Z"
            .parse::<Timestamp>()
            .expect("instant");
        let created = Changes::of_api_key(&name, Scope::Read, Some(expires), true);
        assert_eq!(
            created.to_json(),
            r#"{"expires_at": [null, "2030-01-02T03:04:05Z"], "name": [null, "ci"], "scope": [null, "read"]}"#
        );
        let revoked = Changes::of_api_key(&name, Scope::Write, None, false);
        assert_eq!(
            revoked.to_json(),
            r#"{"expires_at": [null, null], "name": ["ci", null], "scope": ["write", null]}"#
        );
    }

    #[test]
    fn every_action_name_parses_back_to_its_action() {
        for action in EventAction::ALL {
            assert_eq!(EventAction::parse(action.as_str()), Some(*action));
        }
        assert_eq!(EventAction::parse("member.exploded"), None);
    }

    #[test]
    fn an_unchanged_organization_has_no_changes() {
        assert!(Changes::between(&organization(), &organization()).is_empty());
    }

    #[test]
    fn only_the_fields_that_really_changed_are_recorded() {
        let before = organization();
        let mut after = organization();
        after.name = OrganizationName::parse("Renamed").expect("name");
        after.settings.nickname = Nickname::parse("nick").expect("nickname");
        after.version = Version::new(2);

        let changes = Changes::between(&before, &after);

        assert_eq!(
            changes.fields().collect::<Vec<_>>(),
            vec!["name", "settings.nickname"]
        );
        assert_eq!(
            changes.to_json(),
            r#"{"name": ["Child", "Renamed"], "settings.nickname": ["", "nick"]}"#
        );
    }

    #[test]
    fn a_removed_contact_address_goes_to_null() {
        let before = organization();
        let mut after = organization();
        after.contact_email = None;

        let changes = Changes::between(&before, &after);

        assert_eq!(
            changes.to_json(),
            r#"{"contact_email": ["child@example.com", null]}"#
        );
    }

    #[test]
    fn a_role_change_records_the_old_and_new_role() {
        assert_eq!(
            Changes::of_role(Role::Users, Role::Managers).to_json(),
            r#"{"role": ["users", "managers"]}"#
        );
        assert!(Changes::of_role(Role::Users, Role::Users).is_empty());
    }

    #[test]
    fn flags_record_only_the_flags_that_moved() {
        let before = organization();
        let mut after = organization();
        after.can_external_optout = true;

        assert_eq!(
            Changes::of_flags(&before, &after).to_json(),
            r#"{"can_external_optout": [false, true]}"#
        );
    }

    #[test]
    fn changes_escape_quotes_backslashes_and_control_characters() {
        let changes = Changes::new().with("name", "a\"b\\c", "line\nbreak\u{1}");

        assert_eq!(
            changes.to_json(),
            r#"{"name": ["a\"b\\c", "line\nbreak\u0001"]}"#
        );
    }

    #[test]
    fn no_changes_is_an_empty_object() {
        assert_eq!(Changes::new().to_json(), "{}");
    }

    #[test]
    fn an_action_filter_takes_an_action_or_a_known_prefix() {
        assert_eq!(
            ActionFilter::parse("member.removed"),
            Ok(ActionFilter::Exactly(EventAction::MemberRemoved))
        );
        let members = ActionFilter::parse("member.*").expect("prefix");
        assert!(members.matches(EventAction::MemberRoleChanged));
        assert!(!members.matches(EventAction::InvitationAccepted));
        assert!(ActionFilter::parse("nothing.*").is_err());
        assert!(ActionFilter::parse(".*").is_err());
        assert!(ActionFilter::parse("*").is_err());
        assert!(ActionFilter::parse("member").is_err());
        assert!(ActionFilter::parse("member.%").is_err());
    }

    #[test]
    fn a_request_id_is_one_to_128_visible_ascii_characters() {
        assert_eq!(
            RequestId::parse("abc-123").map(|id| id.as_str().to_owned()),
            Some("abc-123".to_owned())
        );
        assert!(RequestId::parse("").is_none());
        assert!(RequestId::parse("a b").is_none());
        assert!(RequestId::parse("é").is_none());
        assert!(RequestId::parse(&"x".repeat(128)).is_some());
        assert!(RequestId::parse(&"x".repeat(129)).is_none());
    }

    #[test]
    fn filter_instants_take_datetimes_and_dates() {
        assert_eq!(
            parse_instant("2025-04-03T10:00:00+02:00").map(|at| at.to_rfc3339()),
            Ok("2025-04-03T08:00:00+00:00".to_owned())
        );
        assert_eq!(
            parse_instant("2025-04-03").map(|at| at.to_rfc3339()),
            Ok("2025-04-03T00:00:00+00:00".to_owned())
        );
        assert_eq!(parse_instant("yesterday"), Err(ErrorCode::InvalidDateTime));
        assert_eq!(parse_instant("2025-13-01"), Err(ErrorCode::InvalidDateTime));
    }

    #[test]
    fn a_cursor_is_empty_or_an_id_in_decimal_digits() {
        assert_eq!(parse_cursor(""), Ok(None));
        assert_eq!(parse_cursor("0"), Ok(Some(EventId::new(0))));
        assert_eq!(parse_cursor("41"), Ok(Some(EventId::new(41))));
        assert_eq!(
            parse_cursor("9223372036854775807"),
            Ok(Some(EventId::new(i64::MAX)))
        );
        for bad in [
            "-1",
            "+1",
            " 1",
            "1 ",
            "abc",
            "1e3",
            "9223372036854775808",
            "1\u{0}",
            "\u{ff11}",
        ] {
            assert_eq!(parse_cursor(bad), Err(ErrorCode::InvalidCursor), "{bad:?}");
        }
        assert_eq!(
            parse_cursor(&"9".repeat(3000)),
            Err(ErrorCode::InvalidCursor)
        );
    }

    fn stored(id: i64) -> Event {
        Event {
            id: EventId::new(id),
            action: EventAction::OrganizationUpdated,
            actor: None,
            actor_identifier: OPERATOR_IDENTIFIER.to_owned(),
            organization: OrganizationId::new(1),
            target: Some(StoredTarget::Organization),
            changes: "{}".to_owned(),
            request_id: None,
            created_at: Timestamp::UNIX_EPOCH,
        }
    }

    #[test]
    fn a_slice_with_an_extra_row_names_its_last_event_as_the_next_cursor() {
        let slice = EventSlice::of(vec![stored(9), stored(8), stored(7)], 2);

        assert_eq!(
            slice
                .events
                .iter()
                .map(|event| event.id.get())
                .collect::<Vec<_>>(),
            [9, 8]
        );
        assert_eq!(slice.next, Some(EventId::new(8)));
    }

    #[test]
    fn a_slice_without_an_extra_row_is_the_last() {
        let full = EventSlice::of(vec![stored(9), stored(8)], 2);
        let empty = EventSlice::of(Vec::new(), 2);

        assert_eq!(full.events.len(), 2);
        assert_eq!(full.next, None);
        assert_eq!(empty.next, None);
    }
}
