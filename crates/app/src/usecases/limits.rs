//! The configured abuse limits (CONTRACT §5c) and how use cases apply them.

use domain::limits::{LimitReached, RateLimit};
use domain::{Duration, RateEventId};
use ports::inbound::UseCaseError;
use ports::outbound::{AcquireError, PasswordHashError, RateLimitStore};

/// The three limits of CONTRACT §5c.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AbuseLimits {
    /// Failed logins per identifier (`ORGS_LOGIN_FAILURES`, `10/15m`).
    pub login_failures: RateLimit,
    /// Invitation e-mails per recipient (`ORGS_INVITES_PER_RECIPIENT`, `5/1h`).
    pub invites_per_recipient: RateLimit,
    /// Invitation e-mails per organization (`ORGS_INVITES_PER_ORGANIZATION`, `200/1h`).
    pub invites_per_organization: RateLimit,
}

impl Default for AbuseLimits {
    fn default() -> Self {
        Self {
            login_failures: RateLimit {
                count: 10,
                window: Duration::minutes(15),
            },
            invites_per_recipient: RateLimit {
                count: 5,
                window: Duration::hours(1),
            },
            invites_per_organization: RateLimit {
                count: 200,
                window: Duration::hours(1),
            },
        }
    }
}

pub(crate) fn limited(reached: LimitReached) -> UseCaseError {
    UseCaseError::RateLimited {
        retry_after: reached.retry_after,
    }
}

pub(crate) fn acquire_error(error: AcquireError) -> UseCaseError {
    match error {
        AcquireError::Limited(reached) => limited(reached),
        AcquireError::Storage(error) => error.into(),
    }
}

/// Gives events back: a login failure slot after a success, or after the password
/// could not be checked. A failure here only over-counts (the safe side), so it is
/// logged, not returned.
pub(crate) async fn give_back(limits: &dyn RateLimitStore, events: &[RateEventId]) {
    if let Err(error) = limits.release(events).await {
        tracing::warn!(error.message = %error, error.chain = %ports::ErrorChain(&error), "could not give back a rate-limit allowance");
    }
}

/// A password that could not be hashed or checked: busy slots ask the client to come
/// back (→ 503 with `Retry-After`); anything else is internal.
pub(crate) fn hash_error(error: PasswordHashError) -> UseCaseError {
    match error {
        PasswordHashError::Busy { retry_after } => UseCaseError::Overloaded { retry_after },
        error @ PasswordHashError::Failed(_) => UseCaseError::internal(error),
    }
}
