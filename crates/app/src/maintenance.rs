//! Periodic upkeep inside `orgs serve`: forgetting abuse-limit events that no window
//! can count any more, so that the table stays small.

use std::sync::Arc;
use std::time::Duration as StdDuration;

use tokio::sync::watch;

use domain::Duration;
use ports::outbound::{Clock, RateLimitStore, StorageError};

use crate::usecases::AbuseLimits;

/// How often the upkeep runs.
pub const PRUNE_EVERY: StdDuration = StdDuration::from_secs(600);

/// The longest window among the limits: older events never count again.
#[must_use]
pub fn retention(limits: &AbuseLimits) -> Duration {
    limits
        .login_failures
        .window
        .max(limits.invites_per_recipient.window)
        .max(limits.invites_per_organization.window)
}

/// Forgets the events older than the longest window; returns how many.
///
/// # Errors
/// A storage failure.
pub async fn prune_once(
    store: &dyn RateLimitStore,
    clock: &dyn Clock,
    limits: &AbuseLimits,
) -> Result<u64, StorageError> {
    store.prune(clock.now() - retention(limits)).await
}

/// Prunes every `PRUNE_EVERY` until `shutdown` turns true.
pub async fn run(
    store: Arc<dyn RateLimitStore>,
    clock: Arc<dyn Clock>,
    limits: AbuseLimits,
    mut shutdown: watch::Receiver<bool>,
) {
    while !*shutdown.borrow() {
        match prune_once(store.as_ref(), clock.as_ref(), &limits).await {
            Ok(0) => {}
            Ok(pruned) => tracing::info!(pruned, "forgot expired rate-limit events"),
            Err(error) => {
                tracing::warn!(error.message = %error, "could not prune rate-limit events")
            }
        }
        tokio::select! {
            () = tokio::time::sleep(PRUNE_EVERY) => {}
            _ = shutdown.changed() => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::Timestamp;
    use domain::limits::RateLimit;
    use mockall::predicate::eq;
    use ports::outbound::{MockClock, MockRateLimitStore};

    #[tokio::test]
    async fn events_older_than_the_longest_window_are_forgotten() {
        let now = Timestamp::UNIX_EPOCH + Duration::days(1);
        let limits = AbuseLimits {
            login_failures: RateLimit::parse("10/15m").expect("valid"),
            invites_per_recipient: RateLimit::parse("5/2h").expect("valid"),
            invites_per_organization: RateLimit::parse("200/1h").expect("valid"),
        };
        let mut clock = MockClock::new();
        clock.expect_now().return_const(now);
        let mut store = MockRateLimitStore::new();
        store
            .expect_prune()
            .with(eq(now - Duration::hours(2)))
            .times(1)
            .returning(|_| Ok(4));

        let pruned = prune_once(&store, &clock, &limits).await;

        assert_eq!(pruned, Ok(4));
    }
}
