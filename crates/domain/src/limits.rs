//! Abuse limits: at most `count` events per `window` (CONTRACT §5c), such as
//! `10/15m` failed logins per identifier.

use sha2::{Digest as _, Sha256};

use crate::email::EmailAddress;
use crate::time::{Duration, InvalidDuration, MAX_DURATION_DAYS, Timestamp, parse_duration};

/// A limit of `count` events in any `window`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// How many events the window allows.
    pub count: u32,
    /// How long the window is.
    pub window: Duration,
}

/// Why a limit does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidRateLimit {
    /// Not `COUNT/DURATION`, a zero count or a zero window.
    #[error("`{0}` is not a limit such as 10/15m (a count, a slash, a duration in s, m, h or d)")]
    Malformed(String),
    /// A window longer than [`MAX_DURATION_DAYS`] days.
    #[error("`{0}` has too long a window: at most {MAX_DURATION_DAYS}d")]
    WindowTooLong(String),
}

impl RateLimit {
    /// Parses `COUNT/DURATION`, the duration in the grammar of [`parse_duration`]
    /// (`90s`, `15m`, `1h`, `7d`, at most a year).
    ///
    /// # Errors
    /// `InvalidRateLimit` for anything else, a zero count or a zero window.
    pub fn parse(value: &str) -> Result<Self, InvalidRateLimit> {
        let invalid = || InvalidRateLimit::Malformed(value.to_owned());
        let (count, window) = value.trim().split_once('/').ok_or_else(invalid)?;
        let count: u32 = count.trim().parse().map_err(|_| invalid())?;
        let window = parse_duration(window).map_err(|error| match error {
            InvalidDuration::TooLong(_) => InvalidRateLimit::WindowTooLong(value.to_owned()),
            _ => invalid(),
        })?;
        if count == 0 {
            return Err(invalid());
        }
        Ok(Self { count, window })
    }

    /// Where the window that ends at `now` starts (exclusive).
    #[must_use]
    pub fn window_start(&self, now: Timestamp) -> Timestamp {
        now - self.window
    }

    /// Decides whether one more event is allowed, given the events already in the
    /// window that ends at `now`.
    ///
    /// # Errors
    /// `LimitReached` with how long until the oldest event leaves the window.
    pub fn check(&self, events: &EventWindow, now: Timestamp) -> Result<(), LimitReached> {
        if events.count < u64::from(self.count) {
            return Ok(());
        }
        let reopens = events
            .oldest
            .map_or(now + self.window, |oldest| oldest + self.window);
        Err(LimitReached {
            retry_after: (reopens - now).max(Duration::seconds(1)),
        })
    }
}

/// The events of one key inside a window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EventWindow {
    /// How many.
    pub count: u64,
    /// When the oldest one happened.
    pub oldest: Option<Timestamp>,
}

/// A limit is reached (→ 429 with `Retry-After`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("limit reached; retry after {retry_after}")]
pub struct LimitReached {
    /// How long until one more event is allowed.
    pub retry_after: Duration,
}

/// What a limit counts, and whose.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum LimitKey {
    /// Failed logins for an identifier (normalized as an address when it is one,
    /// otherwise trimmed and lower-cased: see [`LimitKey::login_failures`]).
    LoginFailures(String),
    /// Invitation e-mails to a mailbox, however its address is cased.
    InvitesToRecipient(String),
    /// Invitation e-mails from an organization.
    InvitesFromOrganization(crate::ids::OrganizationId),
}

impl LimitKey {
    /// The failed-login key of an identifier as typed: the normalized address when it
    /// is one (the login looks users up by it), otherwise the trimmed, lower-cased text.
    #[must_use]
    pub fn login_failures(identifier: &str) -> Self {
        LimitKey::LoginFailures(EmailAddress::parse(identifier).map_or_else(
            |_| identifier.trim().to_lowercase(),
            |address| address.to_string(),
        ))
    }

    /// The invitation e-mail key of a recipient.
    #[must_use]
    pub fn invites_to(recipient: &EmailAddress) -> Self {
        LimitKey::InvitesToRecipient(recipient.to_string())
    }

    /// The stored key: a prefix naming the limit and, for what a client typed, the
    /// SHA-256 of it, so that the key is short whatever the input (CONTRACT §9). A
    /// recipient is case-folded first: one mailbox counts once, however it is cased.
    #[must_use]
    pub fn as_key(&self) -> String {
        match self {
            LimitKey::LoginFailures(identifier) => format!("login:{}", digest(identifier)),
            LimitKey::InvitesToRecipient(address) => {
                format!("invite-to:{}", digest(&fold_case(address)))
            }
            LimitKey::InvitesFromOrganization(id) => format!("invite-from:{id}"),
        }
    }
}

/// Upper- then lower-cases: close to Unicode full case folding (`ß`, `SS` and `ss`
/// become one), so that every casing of an address folds to one text.
fn fold_case(text: &str) -> String {
    text.to_uppercase().to_lowercase()
}

/// The lowercase hex SHA-256 of `text`: 64 characters.
fn digest(text: &str) -> String {
    use std::fmt::Write as _;
    Sha256::digest(text.as_bytes())
        .iter()
        .fold(String::with_capacity(64), |mut hex, byte| {
            let _ = write!(hex, "{byte:02x}");
            hex
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> Timestamp {
        Timestamp::UNIX_EPOCH + Duration::seconds(seconds)
    }

    #[test]
    fn limits_parse_as_a_count_and_a_window() {
        assert_eq!(
            RateLimit::parse("10/15m"),
            Ok(RateLimit {
                count: 10,
                window: Duration::minutes(15)
            })
        );
        assert_eq!(
            RateLimit::parse("200/1h").map(|l| l.window),
            Ok(Duration::hours(1))
        );
        assert_eq!(RateLimit::parse("5/90s").map(|l| l.count), Ok(5));
    }

    #[test]
    fn malformed_limits_are_refused() {
        for bad in [
            "", "10", "10/", "/15m", "ten/15m", "10/15", "10/15w", "0/1h", "10/0m", "-1/1h",
        ] {
            assert!(RateLimit::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn windows_longer_than_a_year_are_refused_as_such() {
        assert!(RateLimit::parse("10/365d").is_ok());
        assert_eq!(
            RateLimit::parse("10/366d"),
            Err(InvalidRateLimit::WindowTooLong("10/366d".to_owned()))
        );
    }

    #[test]
    fn the_tenth_event_is_allowed_and_the_eleventh_refused() {
        let limit = RateLimit::parse("10/15m").expect("valid");
        let nine = EventWindow {
            count: 9,
            oldest: Some(at(0)),
        };
        let ten = EventWindow {
            count: 10,
            oldest: Some(at(0)),
        };

        assert_eq!(limit.check(&nine, at(60)), Ok(()));
        assert_eq!(
            limit.check(&ten, at(60)),
            Err(LimitReached {
                retry_after: Duration::seconds(15 * 60 - 60)
            })
        );
    }

    #[test]
    fn retry_after_is_when_the_oldest_event_leaves_the_window_and_at_least_a_second() {
        let limit = RateLimit::parse("1/1m").expect("valid");
        let full = EventWindow {
            count: 1,
            oldest: Some(at(0)),
        };

        assert_eq!(
            limit.check(&full, at(59)).map_err(|e| e.retry_after),
            Err(Duration::seconds(1))
        );
        assert_eq!(
            limit.check(&full, at(60)).map_err(|e| e.retry_after),
            Err(Duration::seconds(1))
        );
    }

    #[test]
    fn the_window_starts_one_window_before_now() {
        let limit = RateLimit::parse("5/1h").expect("valid");

        assert_eq!(limit.window_start(at(7200)), at(3600));
    }

    #[test]
    fn keys_name_what_they_count() {
        assert_eq!(
            LimitKey::LoginFailures("a@b.co".to_owned()).as_key(),
            format!("login:{}", digest("a@b.co"))
        );
        assert!(
            LimitKey::invites_to(&EmailAddress::parse("a@b.co").expect("valid"))
                .as_key()
                .starts_with("invite-to:")
        );
        assert_eq!(
            LimitKey::InvitesFromOrganization(crate::ids::OrganizationId::new(4)).as_key(),
            "invite-from:4"
        );
    }

    #[test]
    fn keys_are_short_whatever_the_input() {
        let long = "x".repeat(3000);
        let odd = "\u{202e}\u{feff}é\u{1F600}@\u{0130}nc.com";

        for key in [
            LimitKey::login_failures(&long),
            LimitKey::login_failures(odd),
            LimitKey::InvitesToRecipient(long.clone()),
        ] {
            let stored = key.as_key();
            assert!(stored.len() <= 80, "{stored}");
            assert!(stored.is_ascii(), "{stored}");
        }
    }

    #[test]
    fn a_login_identifier_is_keyed_as_normalized() {
        assert_eq!(
            LimitKey::login_failures("Ada@EXAMPLE.com"),
            LimitKey::LoginFailures("Ada@example.com".to_owned())
        );
        assert_eq!(
            LimitKey::login_failures("  Not An Address "),
            LimitKey::LoginFailures("not an address".to_owned())
        );
    }

    #[test]
    fn every_casing_of_a_recipient_is_one_key() {
        let keys: Vec<String> = [
            "Victim@example.com",
            "victim@example.com",
            "vIctim@EXAMPLE.com",
            "VICTIM@example.com",
        ]
        .iter()
        .map(|address| LimitKey::invites_to(&EmailAddress::parse(address).expect("valid")).as_key())
        .collect();

        assert!(keys.iter().all(|key| *key == keys[0]), "{keys:?}");
        assert_ne!(
            keys[0],
            LimitKey::invites_to(&EmailAddress::parse("victim2@example.com").expect("valid"))
                .as_key()
        );
        assert_eq!(
            LimitKey::InvitesToRecipient("STRASSE@example.com".to_owned()).as_key(),
            LimitKey::InvitesToRecipient("straße@example.com".to_owned()).as_key()
        );
    }
}
