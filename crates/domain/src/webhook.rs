//! Webhooks (CONTRACT §14): which events a webhook wants, where it may send them, its
//! secret, and the retry schedule of its deliveries. See `docs/webhooks.md`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};

use crate::audit::EventAction;
use crate::secret::SecretToken;
use crate::validation::{ErrorCode, Input, ValidationErrors, bounded_text, storable};
use crate::{DeliveryId, Duration, EventId, OrganizationId, Timestamp, WebhookId};

/// The most webhooks one organization may have.
pub const MAX_WEBHOOKS: u64 = 10;

/// The longest endpoint URL.
pub const ENDPOINT_MAX_LENGTH: usize = 2000;

/// The longest description.
pub const DESCRIPTION_MAX_LENGTH: usize = 200;

/// The most patterns in `events`.
pub const MAX_PATTERNS: usize = 50;

/// The prefix of a webhook secret.
pub const SECRET_PREFIX: &str = "whsec_";

/// One entry of a webhook's `events`: `*`, `prefix.*` or an action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventPattern {
    /// Every action.
    All,
    /// Every action starting with this prefix, dot included (`member.`).
    Prefix(String),
    /// One action.
    Exactly(EventAction),
}

impl EventPattern {
    /// Reads one entry.
    ///
    /// # Errors
    /// `InvalidChoice` for anything but `*`, a known `prefix.*` or an action.
    pub fn parse(text: &str) -> Result<EventPattern, ErrorCode> {
        if text == "*" {
            return Ok(EventPattern::All);
        }
        match crate::audit::ActionFilter::parse(text)? {
            crate::audit::ActionFilter::Exactly(action) => Ok(EventPattern::Exactly(action)),
            crate::audit::ActionFilter::Prefix(prefix) => Ok(EventPattern::Prefix(prefix)),
        }
    }

    /// The entry as written (`member.*`).
    #[must_use]
    pub fn as_text(&self) -> String {
        match self {
            EventPattern::All => "*".to_owned(),
            EventPattern::Prefix(prefix) => format!("{prefix}*"),
            EventPattern::Exactly(action) => action.as_str().to_owned(),
        }
    }

    /// Whether `action` matches.
    #[must_use]
    pub fn matches(&self, action: EventAction) -> bool {
        match self {
            EventPattern::All => true,
            EventPattern::Prefix(prefix) => action.as_str().starts_with(prefix.as_str()),
            EventPattern::Exactly(wanted) => *wanted == action,
        }
    }
}

/// Reads `events`: a non-empty list of patterns, each reported on its own.
///
/// # Errors
/// The codes of the field `events`.
pub fn parse_patterns(texts: &[String]) -> Result<Vec<EventPattern>, ErrorCode> {
    if texts.is_empty() {
        return Err(ErrorCode::Blank);
    }
    if texts.len() > MAX_PATTERNS {
        return Err(ErrorCode::MaxLength { max: MAX_PATTERNS });
    }
    let mut patterns = Vec::with_capacity(texts.len());
    for text in texts {
        let pattern = EventPattern::parse(text)?;
        if !patterns.contains(&pattern) {
            patterns.push(pattern);
        }
    }
    Ok(patterns)
}

/// Whether a webhook may be sent to `address`: not loopback, private, link-local,
/// unspecified, multicast, broadcast or shared (CGNAT), nor an IPv4-mapped or
/// IPv4-compatible IPv6 form of one of those, nor an IPv6 unique-local or site-local one.
#[must_use]
pub fn address_allowed(address: IpAddr) -> bool {
    match address {
        IpAddr::V4(v4) => v4_allowed(v4),
        IpAddr::V6(v6) => v6_allowed(v6),
    }
}

fn v4_allowed(address: Ipv4Addr) -> bool {
    let [a, b, ..] = address.octets();
    !(address.is_loopback()
        || address.is_private()
        || address.is_link_local()
        || address.is_unspecified()
        || address.is_multicast()
        || address.is_broadcast()
        || a == 0
        || (a == 100 && (64..128).contains(&b))
        || a >= 240)
}

fn v6_allowed(address: Ipv6Addr) -> bool {
    if let Some(v4) = address.to_ipv4_mapped() {
        return v4_allowed(v4);
    }
    let segments = address.segments();
    // IPv4-compatible (::a.b.c.d, deprecated) and NAT64 (64:ff9b::/96) forms.
    if segments[..6] == [0, 0, 0, 0, 0, 0] || segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        let [.., hi, lo] = segments;
        let v4 = Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));
        if !v4_allowed(v4) {
            return false;
        }
    }
    !(address.is_loopback()
        || address.is_unspecified()
        || address.is_multicast()
        || (segments[0] & 0xfe00) == 0xfc00
        || (segments[0] & 0xffc0) == 0xfe80
        || (segments[0] & 0xffc0) == 0xfec0)
}

/// A webhook's endpoint: an absolute `http`/`https` URL of at most 2000 characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint(String);

impl Endpoint {
    /// Reads an endpoint. Unless `allow_private`, a host that is `localhost` (or under
    /// it) or an IP literal refused by [`address_allowed`] is refused; names are checked
    /// again after DNS resolution at every delivery.
    ///
    /// # Errors
    /// `Blank`, `MaxLength`, `NullCharacter`, `InvalidUrl`, `AddressNotAllowed`.
    pub fn parse(text: &str, allow_private: bool) -> Result<Endpoint, ErrorCode> {
        let text = storable(text.trim())?;
        if text.is_empty() {
            return Err(ErrorCode::Blank);
        }
        if text.chars().count() > ENDPOINT_MAX_LENGTH {
            return Err(ErrorCode::MaxLength {
                max: ENDPOINT_MAX_LENGTH,
            });
        }
        let url = url::Url::parse(text).map_err(|_| ErrorCode::InvalidUrl)?;
        if !matches!(url.scheme(), "http" | "https") || !url.username().is_empty() {
            return Err(ErrorCode::InvalidUrl);
        }
        let host = url.host().ok_or(ErrorCode::InvalidUrl)?;
        if !allow_private {
            let allowed = match host {
                url::Host::Ipv4(v4) => address_allowed(IpAddr::V4(v4)),
                url::Host::Ipv6(v6) => address_allowed(IpAddr::V6(v6)),
                url::Host::Domain(name) => {
                    let name = name.trim_end_matches('.').to_ascii_lowercase();
                    name != "localhost" && !name.ends_with(".localhost")
                }
            };
            if !allowed {
                return Err(ErrorCode::AddressNotAllowed);
            }
        }
        Ok(Endpoint(url.to_string()))
    }

    /// A stored endpoint, as it was accepted.
    #[must_use]
    pub fn from_stored(text: String) -> Endpoint {
        Endpoint(text)
    }

    /// The URL.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A webhook's signing secret: `whsec_` and the standard base64 of random bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookSecret(String);

impl std::fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookSecret(***)")
    }
}

impl WebhookSecret {
    /// The secret made of a random token's bytes (32 of them).
    #[must_use]
    pub fn from_token(token: &SecretToken) -> WebhookSecret {
        let bytes = URL_SAFE_NO_PAD
            .decode(token.expose())
            .unwrap_or_else(|_| token.expose().as_bytes().to_vec());
        WebhookSecret(format!("{SECRET_PREFIX}{}", STANDARD.encode(bytes)))
    }

    /// A stored secret.
    #[must_use]
    pub fn from_stored(text: String) -> WebhookSecret {
        WebhookSecret(text)
    }

    /// The secret, to store and to show once.
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The signing key: the base64 part, decoded.
    #[must_use]
    pub fn key(&self) -> Vec<u8> {
        let encoded = self.0.strip_prefix(SECRET_PREFIX).unwrap_or(&self.0);
        STANDARD
            .decode(encoded)
            .unwrap_or_else(|_| encoded.as_bytes().to_vec())
    }
}

/// A webhook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Webhook {
    /// Its id.
    pub id: WebhookId,
    /// Its organization.
    pub organization_id: OrganizationId,
    /// Where deliveries go.
    pub endpoint: Endpoint,
    /// Which events it wants.
    pub events: Vec<EventPattern>,
    /// A free text.
    pub description: String,
    /// Whether it gets deliveries.
    pub active: bool,
    /// When it was made.
    pub created_at: Timestamp,
}

/// What a request to create or change a webhook holds, as read from JSON.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WebhookInput {
    /// `endpoint`.
    pub endpoint: Input<String>,
    /// `events`.
    pub events: Input<Vec<String>>,
    /// `description`.
    pub description: Input<String>,
    /// `active`.
    pub active: Input<bool>,
}

/// A webhook's fields after validation; `None` where a change leaves a field alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookFields {
    /// Where deliveries go.
    pub endpoint: Option<Endpoint>,
    /// Which events it wants.
    pub events: Option<Vec<EventPattern>>,
    /// A free text.
    pub description: Option<String>,
    /// Whether it gets deliveries.
    pub active: Option<bool>,
}

impl WebhookInput {
    /// Validates every field, every problem together. On creation (`partial` false) the
    /// endpoint is required and the others take their defaults.
    ///
    /// # Errors
    /// The field errors.
    pub fn validate(
        self,
        partial: bool,
        allow_private: bool,
    ) -> Result<WebhookFields, ValidationErrors> {
        let mut errors = ValidationErrors::new();
        let endpoint = match self.endpoint {
            Input::Absent if partial => None,
            other => errors.collect(
                "endpoint",
                other
                    .required()
                    .and_then(|text| Endpoint::parse(&text, allow_private)),
            ),
        };
        let events = match self.events {
            Input::Absent if partial => None,
            Input::Absent => Some(vec![EventPattern::All]),
            other => errors.collect(
                "events",
                other.required().and_then(|texts| parse_patterns(&texts)),
            ),
        };
        let description = match self.description {
            Input::Absent if partial => None,
            Input::Absent => Some(String::new()),
            other => errors.collect(
                "description",
                other.required().and_then(|text| {
                    if text.trim().is_empty() {
                        storable(&text).map(|_| String::new())
                    } else {
                        bounded_text(&text, DESCRIPTION_MAX_LENGTH)
                    }
                }),
            ),
        };
        let active = match self.active {
            Input::Absent if partial => None,
            Input::Absent => Some(true),
            other => errors.collect("active", other.required()),
        };
        errors.into_result()?;
        Ok(WebhookFields {
            endpoint,
            events,
            description,
            active,
        })
    }
}

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryStatus {
    /// Waiting for its next attempt.
    Pending,
    /// A `2xx` came back in time.
    Delivered,
    /// Every attempt of the schedule failed.
    Failed,
}

impl DeliveryStatus {
    /// The status's name, as stored and shown.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Failed => "failed",
        }
    }

    /// The status with this name.
    #[must_use]
    pub fn parse(text: &str) -> Option<DeliveryStatus> {
        [
            DeliveryStatus::Pending,
            DeliveryStatus::Delivered,
            DeliveryStatus::Failed,
        ]
        .into_iter()
        .find(|status| status.as_str() == text)
    }
}

/// One event's delivery to one webhook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// Its id.
    pub id: DeliveryId,
    /// The webhook.
    pub webhook_id: WebhookId,
    /// The event.
    pub event_id: EventId,
    /// The event's action.
    pub action: EventAction,
    /// Where it stands.
    pub status: DeliveryStatus,
    /// Attempts made since it was queued (or queued again).
    pub attempts: u32,
    /// The HTTP status of the last answer, if one came.
    pub last_status_code: Option<u16>,
    /// Why the last attempt failed without an answer.
    pub last_error: Option<String>,
    /// When the next attempt is due (`None` once settled).
    pub next_attempt_at: Option<Timestamp>,
    /// When it was queued.
    pub created_at: Timestamp,
}

/// The waits between attempts (`ORGS_WEBHOOK_RETRY`): a delivery is tried once, then
/// once after each wait, then it is failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetrySchedule(Vec<Duration>);

impl Default for RetrySchedule {
    fn default() -> Self {
        RetrySchedule(vec![
            Duration::seconds(5),
            Duration::minutes(5),
            Duration::minutes(30),
            Duration::hours(2),
            Duration::hours(5),
            Duration::hours(10),
            Duration::hours(10),
        ])
    }
}

impl RetrySchedule {
    /// A schedule of these waits.
    #[must_use]
    pub fn new(waits: Vec<Duration>) -> Self {
        RetrySchedule(waits)
    }

    /// Reads a comma list of durations (`5s, 5m, 30m`); an empty text means no retry.
    ///
    /// # Errors
    /// The first entry that is not a duration.
    pub fn parse(text: &str) -> Result<Self, crate::InvalidDuration> {
        let mut waits = Vec::new();
        for part in text
            .split(',')
            .map(str::trim)
            .filter(|part| !part.is_empty())
        {
            waits.push(crate::parse_duration(part)?);
        }
        Ok(RetrySchedule(waits))
    }

    /// How many attempts a delivery gets in all.
    #[must_use]
    pub fn attempts(&self) -> u32 {
        u32::try_from(self.0.len()).map_or(u32::MAX, |waits| waits.saturating_add(1))
    }

    /// After `failed` failed attempts, how long to wait for the next one; `None`: give up.
    #[must_use]
    pub fn wait_after(&self, failed: u32) -> Option<Duration> {
        let index = usize::try_from(failed).ok()?.checked_sub(1)?;
        self.0.get(index).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_are_actions_known_prefixes_or_a_star() {
        assert_eq!(EventPattern::parse("*"), Ok(EventPattern::All));
        assert_eq!(
            EventPattern::parse("member.*"),
            Ok(EventPattern::Prefix("member.".to_owned()))
        );
        assert_eq!(
            EventPattern::parse("webhook.created"),
            Ok(EventPattern::Exactly(EventAction::WebhookCreated))
        );
        assert!(EventPattern::parse("member.exploded").is_err());
        assert!(EventPattern::parse("nothing.*").is_err());
        assert!(EventPattern::parse("").is_err());
        assert!(parse_patterns(&[]).is_err());
        assert!(
            EventPattern::parse("member.*").is_ok_and(|p| p.matches(EventAction::MemberRemoved)
                && !p.matches(EventAction::OrganizationCreated))
        );
    }

    #[test]
    fn loopback_private_link_local_and_their_mapped_forms_are_refused() {
        for refused in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fe80::1",
            "fc00::1",
            "fd12::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::127.0.0.1",
            "64:ff9b::a00:1",
        ] {
            let address: IpAddr = refused.parse().expect("address");
            assert!(!address_allowed(address), "{refused}");
        }
        for allowed in [
            "93.184.216.34",
            "2606:2800:220:1::1",
            "::ffff:93.184.216.34",
        ] {
            let address: IpAddr = allowed.parse().expect("address");
            assert!(address_allowed(address), "{allowed}");
        }
    }

    #[test]
    fn endpoints_are_absolute_http_urls_not_on_private_addresses_as_written() {
        assert!(Endpoint::parse("https://hooks.example.com/orgs", false).is_ok());
        assert_eq!(
            Endpoint::parse("ftp://hooks.example.com/", false),
            Err(ErrorCode::InvalidUrl)
        );
        assert_eq!(
            Endpoint::parse("/relative", false),
            Err(ErrorCode::InvalidUrl)
        );
        for private in [
            "http://127.0.0.1:8080/",
            "http://localhost/",
            "http://LOCALHOST./x",
            "http://a.localhost/",
            "http://[::1]/",
            "http://[::ffff:192.168.0.1]/",
            "http://10.0.0.1/",
            "http://2130706433/",
        ] {
            assert_eq!(
                Endpoint::parse(private, false),
                Err(ErrorCode::AddressNotAllowed),
                "{private}"
            );
            assert!(Endpoint::parse(private, true).is_ok(), "{private}");
        }
        let long = format!("https://example.com/{}", "a".repeat(2000));
        assert_eq!(
            Endpoint::parse(&long, false),
            Err(ErrorCode::MaxLength { max: 2000 })
        );
        assert_eq!(
            Endpoint::parse("https://example.com/\0", false),
            Err(ErrorCode::NullCharacter)
        );
    }

    #[test]
    fn a_secret_is_whsec_and_the_base64_of_its_random_bytes() {
        let secret = WebhookSecret::from_token(&SecretToken::from_random_bytes([7; 32]));
        assert!(secret.expose().starts_with("whsec_"));
        assert_eq!(secret.key(), vec![7; 32]);
    }

    #[test]
    fn the_schedule_gives_one_more_attempt_than_waits() {
        let schedule = RetrySchedule::default();
        assert_eq!(schedule.attempts(), 8);
        assert_eq!(schedule.wait_after(1), Some(Duration::seconds(5)));
        assert_eq!(schedule.wait_after(7), Some(Duration::hours(10)));
        assert_eq!(schedule.wait_after(8), None);
        let short = RetrySchedule::parse("1s, 2s").expect("schedule");
        assert_eq!(short.attempts(), 3);
        assert!(RetrySchedule::parse("1s, soon").is_err());
        assert_eq!(RetrySchedule::parse("").map(|s| s.attempts()), Ok(1));
    }

    #[test]
    fn creation_defaults_and_collects_every_problem() {
        let fields = WebhookInput {
            endpoint: Input::Value("https://example.com/h".to_owned()),
            ..WebhookInput::default()
        }
        .validate(false, false)
        .expect("valid");
        assert_eq!(fields.events, Some(vec![EventPattern::All]));
        assert_eq!(fields.active, Some(true));
        let errors = WebhookInput {
            endpoint: Input::Value("http://127.0.0.1/".to_owned()),
            events: Input::Value(vec!["nope".to_owned()]),
            description: Input::Value("x".repeat(201)),
            active: Input::Invalid(ErrorCode::InvalidBoolean),
        }
        .validate(false, false)
        .expect_err("invalid");
        for field in ["endpoint", "events", "description", "active"] {
            assert!(errors.codes(field).is_some(), "{field}");
        }
        let patch = WebhookInput::default()
            .validate(true, false)
            .expect("empty patch");
        assert_eq!(patch.endpoint, None);
        assert_eq!(patch.active, None);
    }
}
