//! The outbox delivery worker: claims due e-mails, sends them, and records the outcome,
//! retrying transient failures with exponential backoff and jitter until a limit, then
//! marking the message dead.
//!
//! Delivery is at least once: a message is marked delivered after the mailer accepted
//! it, so a crash between the two sends it again once its lease ends
//! (`docs/outbox.md`).

use std::sync::Arc;
use std::time::Duration as StdDuration;

use rand::Rng as _;
use tokio::sync::watch;

use domain::Duration;
use ports::outbound::{Clock, MailError, Mailer, Outbox, OutboxMessage};

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
}

impl Default for DeliveryPolicy {
    fn default() -> Self {
        Self {
            batch_size: 50,
            lease: Duration::minutes(5),
            base_delay: Duration::seconds(30),
            max_delay: Duration::hours(1),
            max_attempts: 10,
            idle_poll: StdDuration::from_secs(1),
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
}

impl DeliveryReport {
    /// How many messages the pass handled.
    #[must_use]
    pub fn handled(&self) -> u32 {
        self.delivered + self.retried + self.dead
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
    pub async fn run_once(&self) -> Result<DeliveryReport, ports::outbound::StorageError> {
        let claimed = self
            .outbox
            .claim_due(self.clock.now(), self.policy.batch_size, self.policy.lease)
            .await?;
        let mut report = DeliveryReport::default();
        for message in claimed {
            self.deliver(message, &mut report).await?;
        }
        Ok(report)
    }

    async fn deliver(
        &self,
        message: OutboxMessage,
        report: &mut DeliveryReport,
    ) -> Result<(), ports::outbound::StorageError> {
        let attempts = message.attempts + 1;
        match self.mailer.send(&message.email).await {
            Ok(()) => {
                self.outbox
                    .mark_delivered(message.id, self.clock.now())
                    .await?;
                report.delivered += 1;
                tracing::info!(
                    message_id = message.id.get(),
                    kind = message.email.kind.as_str(),
                    attempts,
                    "e-mail delivered"
                );
            }
            Err(MailError::Transient(reason)) if attempts < self.policy.max_attempts => {
                let delay = jittered(self.policy.backoff(attempts));
                let next = self.clock.now() + delay;
                self.outbox.mark_failed(message.id, next, &reason).await?;
                report.retried += 1;
                tracing::warn!(
                    message_id = message.id.get(),
                    attempts,
                    retry_in_seconds = delay.num_seconds(),
                    error.message = %reason,
                    "e-mail delivery failed; will retry"
                );
            }
            Err(MailError::Transient(reason) | MailError::Permanent(reason)) => {
                self.outbox
                    .mark_dead(message.id, self.clock.now(), &reason)
                    .await?;
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
        Ok(())
    }

    /// Runs until `shutdown` turns true: a pass, then a pause when nothing was due or
    /// storage failed.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        tracing::info!("outbox delivery worker started");
        loop {
            if *shutdown.borrow() {
                break;
            }
            let pause = match self.run_once().await {
                Ok(report) if report.handled() > 0 => None,
                Ok(_) => Some(self.policy.idle_poll),
                Err(error) => {
                    tracing::warn!(error.message = %error, "outbox unavailable; will try again");
                    Some(self.policy.idle_poll * 5)
                }
            };
            if let Some(pause) = pause {
                tokio::select! {
                    () = tokio::time::sleep(pause) => {}
                    _ = shutdown.changed() => {}
                }
            }
        }
        tracing::info!("outbox delivery worker stopped");
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

#[cfg(test)]
mod tests {
    use super::*;
    use domain::mail::{EmailKind, OutgoingEmail};
    use domain::{EmailAddress, OutboxMessageId, Timestamp};
    use mockall::predicate::eq;
    use ports::outbound::{MockClock, MockMailer, MockOutbox};

    fn now() -> Timestamp {
        Timestamp::UNIX_EPOCH + Duration::days(20_000)
    }

    fn message(id: i64, attempts: u32) -> OutboxMessage {
        OutboxMessage {
            id: OutboxMessageId::new(id),
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
        outbox
            .expect_mark_delivered()
            .with(eq(OutboxMessageId::new(1)), eq(now()))
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
            .withf(|id, next, reason| {
                // Third attempt failed: 120 s ± 20 %.
                *id == OutboxMessageId::new(1)
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
            .returning(|_| Err(MailError::Transient("421 try later".to_owned())));

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
            .returning(|_| Err(MailError::Permanent("550 no such user".to_owned())));

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
            .returning(|_| Err(MailError::Transient("timeout".to_owned())));

        let report = worker(outbox, mailer).run_once().await.expect("ran");

        assert_eq!(report.dead, 1);
    }

    #[tokio::test]
    async fn the_worker_stops_when_told_to() {
        let mut outbox = MockOutbox::new();
        outbox.expect_claim_due().returning(|_, _, _| Ok(vec![]));
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(worker(outbox, MockMailer::new()).run(stopped));

        stop.send(true).expect("worker listens");
        let finished = tokio::time::timeout(StdDuration::from_secs(5), task).await;

        assert!(matches!(finished, Ok(Ok(()))));
    }
}
