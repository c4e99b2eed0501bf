//! Abuse limits: at most `count` events per `window` (CONTRACT §5c), such as
//! `10/15m` failed logins per identifier.

use crate::time::{Duration, Timestamp};

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
#[error("`{0}` is not a limit such as 10/15m (a count, a slash, a duration in s, m, h or d)")]
pub struct InvalidRateLimit(pub String);

impl RateLimit {
    /// Parses `COUNT/DURATION`, the duration as `90s`, `15m`, `1h` or `7d`.
    ///
    /// # Errors
    /// `InvalidRateLimit` for anything else, a zero count or a zero window.
    pub fn parse(value: &str) -> Result<Self, InvalidRateLimit> {
        let invalid = || InvalidRateLimit(value.to_owned());
        let (count, window) = value.trim().split_once('/').ok_or_else(invalid)?;
        let count: u32 = count.trim().parse().map_err(|_| invalid())?;
        let window = window.trim();
        let split = window
            .find(|c: char| !c.is_ascii_digit())
            .ok_or_else(invalid)?;
        let (amount, unit) = window.split_at(split);
        let amount: i64 = amount.parse().map_err(|_| invalid())?;
        let window = match unit {
            "s" => Duration::try_seconds(amount),
            "m" => Duration::try_minutes(amount),
            "h" => Duration::try_hours(amount),
            "d" => Duration::try_days(amount),
            _ => None,
        }
        .ok_or_else(invalid)?;
        if count == 0 || window <= Duration::zero() {
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
    /// Failed logins for an identifier (as typed, lower-cased, when it is no address).
    LoginFailures(String),
    /// Invitation e-mails to an address.
    InvitesToRecipient(String),
    /// Invitation e-mails from an organization.
    InvitesFromOrganization(crate::ids::OrganizationId),
}

impl LimitKey {
    /// The stored key.
    #[must_use]
    pub fn as_key(&self) -> String {
        match self {
            LimitKey::LoginFailures(identifier) => format!("login:{identifier}"),
            LimitKey::InvitesToRecipient(address) => format!("invite-to:{address}"),
            LimitKey::InvitesFromOrganization(id) => format!("invite-from:{id}"),
        }
    }
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
            "login:a@b.co"
        );
        assert_eq!(
            LimitKey::InvitesFromOrganization(crate::ids::OrganizationId::new(4)).as_key(),
            "invite-from:4"
        );
    }
}
