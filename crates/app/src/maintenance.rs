//! Periodic upkeep inside `orgs serve`: forgetting abuse-limit events that no window
//! can count any more, session tokens that expired, and outbox messages delivered or
//! dead for longer than the retention (`ORGS_OUTBOX_RETENTION`, `docs/outbox.md`),
//! idempotency keys past their expiry (`ORGS_IDEMPOTENCY_TTL`, `docs/idempotency.md`) and
//! audit-log events older than theirs (`ORGS_AUDIT_RETENTION`, `docs/audit.md`) and
//! webhook deliveries delivered or failed longer ago than theirs
//! (`ORGS_WEBHOOK_RETENTION`, `docs/webhooks.md`), so that those tables stay small.

use std::sync::Arc;
use std::time::Duration as StdDuration;

use tokio_util::sync::CancellationToken;

use domain::Duration;
use ports::outbound::{
    Clock, DeliveryQueue, EventRepository, IdempotencyStore, Outbox, RateLimitStore, StorageError,
    UserRepository,
};

use crate::usecases::{AbuseLimits, KeyUseBatch};

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

/// Deletes the outbox messages delivered or dead longer than `retention` ago; returns
/// how many.
///
/// # Errors
/// A storage failure.
pub async fn prune_outbox(
    outbox: &dyn Outbox,
    clock: &dyn Clock,
    retention: Duration,
) -> Result<u64, StorageError> {
    outbox.prune(clock.now() - retention).await
}

/// Deletes the audit-log events made more than `retention` ago; returns how many.
///
/// # Errors
/// A storage failure.
pub async fn prune_events(
    events: &dyn EventRepository,
    clock: &dyn Clock,
    retention: Duration,
) -> Result<u64, StorageError> {
    events.prune(clock.now() - retention).await
}

/// Deletes the webhook deliveries delivered or failed more than `retention` ago; returns
/// how many. Pending deliveries stay whatever their age.
///
/// # Errors
/// A storage failure.
pub async fn prune_deliveries(
    deliveries: &dyn DeliveryQueue,
    clock: &dyn Clock,
    retention: Duration,
) -> Result<u64, StorageError> {
    deliveries.prune(clock.now() - retention).await
}

/// What the upkeep works on.
pub struct Upkeep {
    /// Abuse-limit events.
    pub limits_store: Arc<dyn RateLimitStore>,
    /// Users, for their sessions.
    pub users: Arc<dyn UserRepository>,
    /// The time.
    pub clock: Arc<dyn Clock>,
    /// The configured limits, for how long events matter.
    pub limits: AbuseLimits,
    /// The e-mail outbox.
    pub outbox: Arc<dyn Outbox>,
    /// How long delivered and dead messages are kept.
    pub outbox_retention: Duration,
    /// Idempotency keys.
    pub idempotency: Arc<dyn IdempotencyStore>,
    /// The audit log.
    pub events: Arc<dyn EventRepository>,
    /// How long events are kept (`ORGS_AUDIT_RETENTION`).
    pub audit_retention: Duration,
    /// The webhook delivery queue.
    pub deliveries: Arc<dyn DeliveryQueue>,
    /// How long delivered and failed deliveries are kept (`ORGS_WEBHOOK_RETENTION`).
    pub webhook_retention: Duration,
}

/// Prunes every `PRUNE_EVERY` until `shutdown` is cancelled.
pub async fn run(upkeep: Upkeep, shutdown: CancellationToken) {
    while !shutdown.is_cancelled() {
        let events = prune_once(
            upkeep.limits_store.as_ref(),
            upkeep.clock.as_ref(),
            &upkeep.limits,
        )
        .await;
        match events {
            Ok(0) => {}
            Ok(pruned) => tracing::info!(pruned, "forgot expired rate-limit events"),
            Err(error) => {
                tracing::warn!(error.message = %error, error.chain = %ports::ErrorChain(&error), "could not prune rate-limit events");
            }
        }
        match upkeep.users.prune_sessions(upkeep.clock.now()).await {
            Ok(0) => {}
            Ok(pruned) => tracing::info!(pruned, "deleted expired session tokens"),
            Err(error) => {
                tracing::warn!(error.message = %error, error.chain = %ports::ErrorChain(&error), "could not delete expired sessions");
            }
        }
        let settled = prune_outbox(
            upkeep.outbox.as_ref(),
            upkeep.clock.as_ref(),
            upkeep.outbox_retention,
        )
        .await;
        match settled {
            Ok(0) => {}
            Ok(pruned) => tracing::info!(pruned, "deleted delivered and dead outbox messages"),
            Err(error) => {
                tracing::warn!(error.message = %error, error.chain = %ports::ErrorChain(&error), "could not prune the outbox");
            }
        }
        match upkeep.idempotency.prune(upkeep.clock.now()).await {
            Ok(0) => {}
            Ok(pruned) => tracing::info!(pruned, "forgot expired idempotency keys"),
            Err(error) => {
                tracing::warn!(error.message = %error, error.chain = %ports::ErrorChain(&error), "could not prune idempotency keys");
            }
        }
        let expired = prune_events(
            upkeep.events.as_ref(),
            upkeep.clock.as_ref(),
            upkeep.audit_retention,
        )
        .await;
        match expired {
            Ok(0) => {}
            Ok(pruned) => tracing::info!(pruned, "deleted audit-log events past their retention"),
            Err(error) => {
                tracing::warn!(error.message = %error, error.chain = %ports::ErrorChain(&error), "could not prune the audit log");
            }
        }
        let settled = prune_deliveries(
            upkeep.deliveries.as_ref(),
            upkeep.clock.as_ref(),
            upkeep.webhook_retention,
        )
        .await;
        match settled {
            Ok(0) => {}
            Ok(pruned) => tracing::info!(
                pruned,
                "deleted delivered and failed webhook deliveries past their retention"
            ),
            Err(error) => {
                tracing::warn!(error.message = %error, error.chain = %ports::ErrorChain(&error), "could not prune webhook deliveries");
            }
        }
        shutdown
            .run_until_cancelled(tokio::time::sleep(PRUNE_EVERY))
            .await;
    }
}

/// Writes the uses of API keys every `every` until `shutdown` is cancelled, then once
/// more, so that a graceful stop loses none (a crash loses at most `every`).
pub async fn flush_key_uses(
    batch: Arc<KeyUseBatch>,
    users: Arc<dyn UserRepository>,
    every: StdDuration,
    shutdown: CancellationToken,
) {
    loop {
        let stopping = tokio::select! {
            () = shutdown.cancelled() => true,
            () = tokio::time::sleep(every) => false,
        };
        if let Err(error) = batch.flush(users.as_ref()).await {
            tracing::warn!(
                error.message = %error,
                error.chain = %ports::ErrorChain(&error),
                "could not write when API keys were last used; retrying at the next flush"
            );
        }
        if stopping {
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::Timestamp;
    use domain::limits::RateLimit;
    use mockall::predicate::eq;
    use ports::outbound::{
        MockClock, MockDeliveryQueue, MockEventRepository, MockIdempotencyStore, MockOutbox,
        MockRateLimitStore, MockUserRepository,
    };

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

    #[tokio::test]
    async fn outbox_messages_settled_before_the_retention_are_deleted() {
        let now = Timestamp::UNIX_EPOCH + Duration::days(30);
        let mut clock = MockClock::new();
        clock.expect_now().return_const(now);
        let mut outbox = MockOutbox::new();
        outbox
            .expect_prune()
            .with(eq(now - Duration::days(7)))
            .times(1)
            .returning(|_| Ok(12));

        let pruned = prune_outbox(&outbox, &clock, Duration::days(7)).await;

        assert_eq!(pruned, Ok(12));
    }

    #[tokio::test]
    async fn audit_events_older_than_the_retention_are_deleted() {
        let now = Timestamp::UNIX_EPOCH + Duration::days(400);
        let mut clock = MockClock::new();
        clock.expect_now().return_const(now);
        let mut events = MockEventRepository::new();
        events
            .expect_prune()
            .with(eq(now - Duration::days(365)))
            .times(1)
            .returning(|_| Ok(9));

        let pruned = prune_events(&events, &clock, Duration::days(365)).await;

        assert_eq!(pruned, Ok(9));
    }

    #[tokio::test]
    async fn webhook_deliveries_settled_before_the_retention_are_deleted() {
        let now = Timestamp::UNIX_EPOCH + Duration::days(100);
        let mut clock = MockClock::new();
        clock.expect_now().return_const(now);
        let mut deliveries = MockDeliveryQueue::new();
        deliveries
            .expect_prune()
            .with(eq(now - Duration::days(30)))
            .times(1)
            .returning(|_| Ok(7));

        let pruned = prune_deliveries(&deliveries, &clock, Duration::days(30)).await;

        assert_eq!(pruned, Ok(7));
    }

    #[tokio::test]
    async fn each_round_prunes_events_sessions_the_outbox_idempotency_keys_and_deliveries_until_told_to_stop()
     {
        let now = Timestamp::UNIX_EPOCH + Duration::days(1);
        let mut clock = MockClock::new();
        clock.expect_now().return_const(now);
        let mut limits_store = MockRateLimitStore::new();
        limits_store.expect_prune().times(1).returning(|_| Ok(0));
        let mut users = MockUserRepository::new();
        users
            .expect_prune_sessions()
            .with(eq(now))
            .times(1)
            .returning(|_| Ok(3));
        let mut outbox = MockOutbox::new();
        outbox
            .expect_prune()
            .with(eq(now - Duration::days(2)))
            .times(1)
            .returning(|_| Ok(5));
        let mut idempotency = MockIdempotencyStore::new();
        idempotency
            .expect_prune()
            .with(eq(now))
            .times(1)
            .returning(|_| Ok(2));
        let mut events = MockEventRepository::new();
        events
            .expect_prune()
            .with(eq(now - Duration::days(365)))
            .times(1)
            .returning(|_| Ok(1));
        let mut deliveries = MockDeliveryQueue::new();
        deliveries
            .expect_prune()
            .with(eq(now - Duration::days(30)))
            .times(1)
            .returning(|_| Ok(6));
        let stop = CancellationToken::new();
        let task = tokio::spawn(run(
            Upkeep {
                limits_store: Arc::new(limits_store),
                users: Arc::new(users),
                clock: Arc::new(clock),
                limits: AbuseLimits::default(),
                outbox: Arc::new(outbox),
                outbox_retention: Duration::days(2),
                idempotency: Arc::new(idempotency),
                events: Arc::new(events),
                audit_retention: Duration::days(365),
                deliveries: Arc::new(deliveries),
                webhook_retention: Duration::days(30),
            },
            stop.clone(),
        ));
        tokio::time::sleep(StdDuration::from_millis(100)).await;

        stop.cancel();
        let finished = tokio::time::timeout(StdDuration::from_secs(5), task).await;

        assert!(matches!(finished, Ok(Ok(()))));
    }
}
