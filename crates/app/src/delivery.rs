//! The outbox delivery worker: claims due e-mails, sends them, and records the outcome,
//! retrying transient failures with exponential backoff and jitter until a limit, then
//! marking the message dead.
//!
//! Delivery is at least once: a message is marked delivered after the mailer accepted
//! it, so a crash between the two sends it again once its lease ends
//! (`docs/outbox.md`). A message is only sent while this worker's claim holds a lease
//! long enough for one send and its outcome, renewed when the batch ran long; outcomes
//! are recorded only while the claim is still the message's latest, so that two workers
//! never both settle one message.

use std::sync::Arc;
use std::time::Duration as StdDuration;

use rand::Rng as _;
use tokio_util::sync::CancellationToken;

use domain::{Duration, Timestamp};
use ports::ErrorChain;
use ports::outbound::{
    Clock, LeaseError, MailError, Mailer, Outbox, OutboxLease, OutboxMessage, StorageError,
};

/// How the worker paces itself and retries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryPolicy {
    /// How many messages one claim takes.
    pub batch_size: u32,
    /// How long a claim keeps other workers off a message.
    pub lease: Duration,
    /// The delay after the first failure; each further failure doubles it.
    pub base_delay: Duration,
    /// The longest delay between two attempts.
    pub max_delay: Duration,
    /// How many attempts in all before a message is dead.
    pub max_attempts: u32,
    /// How long to sleep when nothing was due.
    pub idle_poll: StdDuration,
    /// The longest one send may take; a send still running then counts as a temporary
    /// failure.
    pub send_timeout: StdDuration,
    /// How long delivered and dead messages are kept before upkeep deletes them
    /// (`ORGS_OUTBOX_RETENTION`).
    pub retention: Duration,
}

/// What a lease must still cover, beyond the send, when a send starts: recording the
/// outcome (one statement, bounded by the statement timeout) with room to spare.
pub const SETTLE_ALLOWANCE: Duration = Duration::seconds(60);

impl Default for DeliveryPolicy {
    fn default() -> Self {
        Self {
            batch_size: 50,
            lease: Duration::minutes(5),
            base_delay: Duration::seconds(30),
            max_delay: Duration::hours(1),
            max_attempts: 10,
            idle_poll: StdDuration::from_secs(1),
            send_timeout: StdDuration::from_secs(60),
            retention: Duration::days(7),
        }
    }
}

impl DeliveryPolicy {
    /// The delay before the next attempt after `attempts` failed ones (1 → base delay),
    /// before jitter.
    #[must_use]
    pub fn backoff(&self, attempts: u32) -> Duration {
        let exponent = attempts.saturating_sub(1).min(30);
        let factor = 1_i32.checked_shl(exponent).unwrap_or(i32::MAX);
        self.base_delay
            .checked_mul(factor)
            .map_or(self.max_delay, |delay| delay.min(self.max_delay))
    }

    /// What a lease must still cover when a send starts: the send and its outcome.
    #[must_use]
    pub fn needed_per_send(&self) -> Duration {
        Duration::from_std(self.send_timeout).unwrap_or(Duration::MAX) + SETTLE_ALLOWANCE
    }
}

/// What one pass of the worker did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeliveryReport {
    /// Messages the mailer accepted.
    pub delivered: u32,
    /// Messages to be tried again later.
    pub retried: u32,
    /// Messages given up on.
    pub dead: u32,
    /// Messages another worker's claim took over: not sent, or sent but not recorded.
    pub lost: u32,
}

impl DeliveryReport {
    /// How many messages the pass handled.
    #[must_use]
    pub fn handled(&self) -> u32 {
        self.delivered + self.retried + self.dead + self.lost
    }
}

/// The worker.
#[derive(Clone)]
pub struct DeliveryWorker {
    outbox: Arc<dyn Outbox>,
    mailer: Arc<dyn Mailer>,
    clock: Arc<dyn Clock>,
    policy: DeliveryPolicy,
}

impl DeliveryWorker {
    /// A worker over these ports.
    pub fn new(
        outbox: Arc<dyn Outbox>,
        mailer: Arc<dyn Mailer>,
        clock: Arc<dyn Clock>,
        policy: DeliveryPolicy,
    ) -> Self {
        Self {
            outbox,
            mailer,
            clock,
            policy,
        }
    }

    /// Claims one batch and delivers it.
    ///
    /// # Errors
    /// A storage failure while claiming or recording an outcome.
    pub async fn run_once(&self) -> Result<DeliveryReport, StorageError> {
        // Nobody can ask this pass to stop.
        self.pass(&CancellationToken::new()).await
    }

    /// Claims one batch and delivers it, until `shutdown` is cancelled: then the message
    /// being sent is abandoned and the rest are left; they come back when their lease
    /// ends.
    async fn pass(&self, shutdown: &CancellationToken) -> Result<DeliveryReport, StorageError> {
        let claimed_at = self.clock.now();
        let claimed = self
            .outbox
            .claim_due(claimed_at, self.policy.batch_size, self.policy.lease)
            .await?;
        let mut report = DeliveryReport::default();
        let leased_until = claimed_at + self.policy.lease;
        for message in claimed {
            if shutdown.is_cancelled() {
                break;
            }
            self.deliver(message, leased_until, shutdown, &mut report)
                .await?;
        }
        Ok(report)
    }

    /// Sends one message of the batch, if its lease still holds, and records the outcome.
    async fn deliver(
        &self,
        message: OutboxMessage,
        leased_until: Timestamp,
        shutdown: &CancellationToken,
        report: &mut DeliveryReport,
    ) -> Result<(), StorageError> {
        let lease = message.lease();
        let now = self.clock.now();
        // The claim's lease may have run short while earlier messages of the batch were
        // sent: take a fresh one first, or find out that another worker has the message.
        if leased_until - now < self.policy.needed_per_send() {
            match self
                .outbox
                .renew_lease(lease, now + self.policy.lease)
                .await
            {
                Ok(()) => {}
                Err(LeaseError::Lost { .. }) => {
                    report.lost += 1;
                    tracing::warn!(
                        message_id = message.id.get(),
                        claim = lease.claim,
                        "outbox lease lost before sending; another worker has the message"
                    );
                    return Ok(());
                }
                Err(LeaseError::Storage(error)) => return Err(error),
            }
        }
        let attempts = message.attempts + 1;
        let send = tokio::time::timeout(self.policy.send_timeout, self.mailer.send(&message.email));
        let sent = tokio::select! {
            sent = send => sent.unwrap_or_else(|_| {
                Err(MailError::transient(format!(
                    "no answer within {} s",
                    self.policy.send_timeout.as_secs()
                )))
            }),
            () = shutdown.cancelled() => {
                tracing::info!(
                    message_id = message.id.get(),
                    "stopping: send abandoned; the message comes back when its lease ends"
                );
                return Ok(());
            }
        };
        match sent {
            Ok(()) => {
                let recorded = self.outbox.mark_delivered(lease, self.clock.now()).await;
                if self.settled(lease, recorded, report)? {
                    report.delivered += 1;
                    tracing::info!(
                        message_id = message.id.get(),
                        kind = message.email.kind.as_str(),
                        attempts,
                        "e-mail delivered"
                    );
                }
            }
            Err(MailError::Transient(cause)) if attempts < self.policy.max_attempts => {
                let reason = ErrorChain(&cause).to_string();
                let delay = jittered(self.policy.backoff(attempts));
                let next = self.clock.now() + delay;
                let recorded = self.outbox.mark_failed(lease, next, &reason).await;
                if self.settled(lease, recorded, report)? {
                    report.retried += 1;
                    tracing::warn!(
                        message_id = message.id.get(),
                        attempts,
                        retry_in_seconds = delay.num_seconds(),
                        error.message = %reason,
                        "e-mail delivery failed; will retry"
                    );
                }
            }
            Err(MailError::Transient(cause) | MailError::Permanent(cause)) => {
                let reason = ErrorChain(&cause).to_string();
                let recorded = self
                    .outbox
                    .mark_dead(lease, self.clock.now(), &reason)
                    .await;
                if self.settled(lease, recorded, report)? {
                    report.dead += 1;
                    tracing::error!(
                        message_id = message.id.get(),
                        kind = message.email.kind.as_str(),
                        to = %message.email.to,
                        attempts,
                        error.message = %reason,
                        "e-mail delivery gave up; message is dead"
                    );
                }
            }
        }
        Ok(())
    }

    /// Whether an outcome was recorded; a lost lease is counted and logged, not an error.
    fn settled(
        &self,
        lease: OutboxLease,
        recorded: Result<(), LeaseError>,
        report: &mut DeliveryReport,
    ) -> Result<bool, StorageError> {
        match recorded {
            Ok(()) => Ok(true),
            Err(LeaseError::Lost { .. }) => {
                report.lost += 1;
                tracing::warn!(
                    message_id = lease.id.get(),
                    claim = lease.claim,
                    lease_seconds = self.policy.lease.num_seconds(),
                    "outbox lease lost before the outcome was recorded; \
                     the message's current claim decides what happens to it"
                );
                Ok(false)
            }
            Err(LeaseError::Storage(error)) => Err(error),
        }
    }

    /// Runs until `shutdown` is cancelled: a pass, then a pause when nothing was due or
    /// storage failed.
    pub async fn run(self, shutdown: CancellationToken) {
        run_passes("outbox", self.policy.idle_poll, &shutdown, || async {
            self.pass(&shutdown).await.map(|report| report.handled())
        })
        .await;
    }
}

/// Spreads retries by ±20 % so that a burst of failures does not retry in lockstep.
fn jittered(delay: Duration) -> Duration {
    let millis = delay.num_milliseconds();
    let spread = millis / 5;
    if spread <= 0 {
        return delay;
    }
    Duration::milliseconds(millis + rand::thread_rng().gen_range(-spread..=spread))
}

/// The loop of a delivery worker (`what`: "outbox", "webhook"): `pass` until `shutdown`
/// is cancelled, pausing `idle_poll` when a pass handled nothing and five times that when
/// storage failed.
pub(crate) async fn run_passes<F, Fut>(
    what: &str,
    idle_poll: StdDuration,
    shutdown: &CancellationToken,
    pass: F,
) where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<u32, StorageError>>,
{
    tracing::info!("{what} delivery worker started");
    while !shutdown.is_cancelled() {
        let pause = match pass().await {
            Ok(handled) if handled > 0 => None,
            Ok(_) => Some(idle_poll),
            Err(error) => {
                tracing::warn!(
                    error.message = %error,
                    error.chain = %ErrorChain(&error),
                    "{what} queue unavailable; will try again"
                );
                Some(idle_poll * 5)
            }
        };
        if let Some(pause) = pause {
            shutdown
                .run_until_cancelled(tokio::time::sleep(pause))
                .await;
        }
    }
    tracing::info!("{what} delivery worker stopped");
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_trait::async_trait;
    use domain::mail::{EmailKind, OutgoingEmail};
    use domain::{EmailAddress, OutboxMessageId};
    use mockall::predicate::eq;
    use ports::outbound::{MockClock, MockMailer, MockOutbox};
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn now() -> Timestamp {
        Timestamp::UNIX_EPOCH + Duration::days(20_000)
    }

    fn message(id: i64, attempts: u32) -> OutboxMessage {
        OutboxMessage {
            id: OutboxMessageId::new(id),
            claim: 1,
            email: OutgoingEmail {
                kind: EmailKind::Invitation,
                to: EmailAddress::parse("new@example.com").expect("valid"),
                subject: "Join".to_owned(),
                text: "text".to_owned(),
                html: "<p>html</p>".to_owned(),
            },
            attempts,
            created_at: now(),
        }
    }

    fn lease(id: i64) -> OutboxLease {
        OutboxLease {
            id: OutboxMessageId::new(id),
            claim: 1,
        }
    }

    fn worker(outbox: MockOutbox, mailer: MockMailer) -> DeliveryWorker {
        let mut clock = MockClock::new();
        clock.expect_now().returning(now);
        DeliveryWorker::new(
            Arc::new(outbox),
            Arc::new(mailer),
            Arc::new(clock),
            DeliveryPolicy::default(),
        )
    }

    /// A worker whose clock reads `now()` for the claim and `later` afterwards, as when
    /// the earlier messages of a batch took that long.
    fn worker_late(outbox: MockOutbox, mailer: MockMailer, later: Timestamp) -> DeliveryWorker {
        let calls = AtomicUsize::new(0);
        let mut clock = MockClock::new();
        clock.expect_now().returning(move || {
            if calls.fetch_add(1, Ordering::SeqCst) == 0 {
                now()
            } else {
                later
            }
        });
        DeliveryWorker::new(
            Arc::new(outbox),
            Arc::new(mailer),
            Arc::new(clock),
            DeliveryPolicy::default(),
        )
    }

    /// A mailer that never answers.
    struct StalledMailer;

    #[async_trait]
    impl Mailer for StalledMailer {
        async fn send(&self, _: &OutgoingEmail) -> Result<(), MailError> {
            std::future::pending().await
        }
    }

    #[test]
    fn the_backoff_doubles_from_the_base_delay_up_to_the_cap() {
        let policy = DeliveryPolicy::default();

        assert_eq!(policy.backoff(1), Duration::seconds(30));
        assert_eq!(policy.backoff(2), Duration::seconds(60));
        assert_eq!(policy.backoff(3), Duration::seconds(120));
        assert_eq!(policy.backoff(8), Duration::hours(1));
        assert_eq!(policy.backoff(40), Duration::hours(1));
    }

    #[test]
    fn jitter_stays_within_twenty_percent() {
        for _ in 0..200 {
            let delay = jittered(Duration::seconds(100));
            assert!(delay >= Duration::seconds(80) && delay <= Duration::seconds(120));
        }
    }

    #[tokio::test]
    async fn a_sent_message_is_marked_delivered() {
        let mut outbox = MockOutbox::new();
        outbox
            .expect_claim_due()
            .with(eq(now()), eq(50), eq(Duration::minutes(5)))
            .returning(|_, _, _| Ok(vec![message(1, 0)]));
        outbox.expect_renew_lease().never();
        outbox
            .expect_mark_delivered()
            .with(eq(lease(1)), eq(now()))
            .times(1)
            .returning(|_, _| Ok(()));
        let mut mailer = MockMailer::new();
        mailer.expect_send().times(1).returning(|_| Ok(()));

        let report = worker(outbox, mailer).run_once().await;

        assert_eq!(
            report,
            Ok(DeliveryReport {
                delivered: 1,
                ..DeliveryReport::default()
            })
        );
    }

    #[tokio::test]
    async fn a_transient_failure_is_retried_later_with_backoff() {
        let mut outbox = MockOutbox::new();
        outbox
            .expect_claim_due()
            .returning(|_, _, _| Ok(vec![message(1, 2)]));
        outbox
            .expect_mark_failed()
            .withf(|held, next, reason| {
                // Third attempt failed: 120 s ± 20 %.
                *held == lease(1)
                    && *next >= now() + Duration::seconds(96)
                    && *next <= now() + Duration::seconds(144)
                    && reason == "421 try later"
            })
            .times(1)
            .returning(|_, _, _| Ok(()));
        outbox.expect_mark_dead().never();
        let mut mailer = MockMailer::new();
        mailer
            .expect_send()
            .returning(|_| Err(MailError::transient("421 try later".to_owned())));

        let report = worker(outbox, mailer).run_once().await.expect("ran");

        assert_eq!(report.retried, 1);
    }

    #[tokio::test]
    async fn a_permanent_failure_is_dead_at_once() {
        let mut outbox = MockOutbox::new();
        outbox
            .expect_claim_due()
            .returning(|_, _, _| Ok(vec![message(1, 0)]));
        outbox.expect_mark_failed().never();
        outbox
            .expect_mark_dead()
            .times(1)
            .returning(|_, _, _| Ok(()));
        let mut mailer = MockMailer::new();
        mailer
            .expect_send()
            .returning(|_| Err(MailError::permanent("550 no such user".to_owned())));

        let report = worker(outbox, mailer).run_once().await.expect("ran");

        assert_eq!(report.dead, 1);
    }

    #[tokio::test]
    async fn the_last_allowed_attempt_failing_makes_the_message_dead() {
        let mut outbox = MockOutbox::new();
        outbox
            .expect_claim_due()
            .returning(|_, _, _| Ok(vec![message(1, 9)]));
        outbox.expect_mark_failed().never();
        outbox
            .expect_mark_dead()
            .times(1)
            .returning(|_, _, _| Ok(()));
        let mut mailer = MockMailer::new();
        mailer
            .expect_send()
            .returning(|_| Err(MailError::transient("timeout".to_owned())));

        let report = worker(outbox, mailer).run_once().await.expect("ran");

        assert_eq!(report.dead, 1);
    }

    #[test]
    fn the_default_lease_covers_one_send_and_recording_its_outcome() {
        let policy = DeliveryPolicy::default();

        assert!(policy.lease >= policy.needed_per_send());
        assert_eq!(policy.needed_per_send(), Duration::minutes(2));
    }

    #[tokio::test]
    async fn a_batch_that_ran_long_renews_the_lease_before_the_next_send() {
        let later = now() + Duration::minutes(4);
        let mut outbox = MockOutbox::new();
        outbox
            .expect_claim_due()
            .returning(|_, _, _| Ok(vec![message(1, 0)]));
        outbox
            .expect_renew_lease()
            .with(eq(lease(1)), eq(later + Duration::minutes(5)))
            .times(1)
            .returning(|_, _| Ok(()));
        outbox
            .expect_mark_delivered()
            .with(eq(lease(1)), eq(later))
            .times(1)
            .returning(|_, _| Ok(()));
        let mut mailer = MockMailer::new();
        mailer.expect_send().times(1).returning(|_| Ok(()));

        let report = worker_late(outbox, mailer, later).run_once().await;

        assert_eq!(
            report,
            Ok(DeliveryReport {
                delivered: 1,
                ..DeliveryReport::default()
            })
        );
    }

    #[tokio::test]
    async fn a_message_whose_lease_another_claim_took_over_is_not_sent() {
        let later = now() + Duration::minutes(6);
        let mut outbox = MockOutbox::new();
        outbox
            .expect_claim_due()
            .returning(|_, _, _| Ok(vec![message(1, 0)]));
        outbox
            .expect_renew_lease()
            .times(1)
            .returning(|held, _| Err(LeaseError::lost(held)));
        outbox.expect_mark_delivered().never();
        outbox.expect_mark_failed().never();
        outbox.expect_mark_dead().never();
        let mut mailer = MockMailer::new();
        mailer.expect_send().never();

        let report = worker_late(outbox, mailer, later).run_once().await;

        assert_eq!(
            report,
            Ok(DeliveryReport {
                lost: 1,
                ..DeliveryReport::default()
            })
        );
    }

    #[tokio::test]
    async fn a_lease_lost_when_recording_is_reported_and_the_batch_goes_on() {
        let mut outbox = MockOutbox::new();
        outbox
            .expect_claim_due()
            .returning(|_, _, _| Ok(vec![message(1, 0), message(2, 0)]));
        outbox
            .expect_mark_delivered()
            .with(eq(lease(1)), eq(now()))
            .times(1)
            .returning(|held, _| Err(LeaseError::lost(held)));
        outbox
            .expect_mark_delivered()
            .with(eq(lease(2)), eq(now()))
            .times(1)
            .returning(|_, _| Ok(()));
        let mut mailer = MockMailer::new();
        mailer.expect_send().times(2).returning(|_| Ok(()));

        let report = worker(outbox, mailer).run_once().await;

        assert_eq!(
            report,
            Ok(DeliveryReport {
                delivered: 1,
                lost: 1,
                ..DeliveryReport::default()
            })
        );
    }

    #[tokio::test]
    async fn a_send_that_outlasts_the_send_timeout_is_a_temporary_failure() {
        let mut outbox = MockOutbox::new();
        outbox
            .expect_claim_due()
            .returning(|_, _, _| Ok(vec![message(1, 0)]));
        outbox
            .expect_mark_failed()
            .withf(|held, _, reason| *held == lease(1) && reason.starts_with("no answer within"))
            .times(1)
            .returning(|_, _, _| Ok(()));
        let mut clock = MockClock::new();
        clock.expect_now().returning(now);
        let worker = DeliveryWorker::new(
            Arc::new(outbox),
            Arc::new(StalledMailer),
            Arc::new(clock),
            DeliveryPolicy {
                send_timeout: StdDuration::from_millis(50),
                ..DeliveryPolicy::default()
            },
        );

        let report = tokio::time::timeout(StdDuration::from_secs(10), worker.run_once()).await;

        assert_eq!(
            report,
            Ok(Ok(DeliveryReport {
                retried: 1,
                ..DeliveryReport::default()
            }))
        );
    }

    #[tokio::test]
    async fn a_stop_abandons_a_send_in_flight_and_leaves_the_rest_of_the_batch() {
        let mut outbox = MockOutbox::new();
        outbox
            .expect_claim_due()
            .times(1)
            .returning(|_, _, _| Ok(vec![message(1, 0), message(2, 0)]));
        outbox.expect_claim_due().returning(|_, _, _| Ok(vec![]));
        outbox.expect_mark_delivered().never();
        outbox.expect_mark_failed().never();
        outbox.expect_mark_dead().never();
        let mut clock = MockClock::new();
        clock.expect_now().returning(now);
        let worker = DeliveryWorker::new(
            Arc::new(outbox),
            Arc::new(StalledMailer),
            Arc::new(clock),
            DeliveryPolicy::default(),
        );
        let stop = CancellationToken::new();
        let task = tokio::spawn(worker.run(stop.clone()));
        tokio::time::sleep(StdDuration::from_millis(100)).await;

        stop.cancel();
        let finished = tokio::time::timeout(StdDuration::from_secs(5), task).await;

        assert!(matches!(finished, Ok(Ok(()))));
    }

    #[tokio::test]
    async fn the_worker_stops_when_told_to() {
        let mut outbox = MockOutbox::new();
        outbox.expect_claim_due().returning(|_, _, _| Ok(vec![]));
        let stop = CancellationToken::new();
        let task = tokio::spawn(worker(outbox, MockMailer::new()).run(stop.clone()));

        stop.cancel();
        let finished = tokio::time::timeout(StdDuration::from_secs(5), task).await;

        assert!(matches!(finished, Ok(Ok(()))));
    }
}
