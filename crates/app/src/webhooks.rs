//! The webhook delivery worker (CONTRACT §14): claims due deliveries with a lease, sends
//! each signed event once per attempt, and records the outcome: `delivered` on a `2xx`,
//! otherwise the next attempt after the schedule's next wait, or `failed` when the
//! schedule is spent. Like the e-mail worker (`crate::delivery`), an outcome is recorded
//! only while this worker's claim is the delivery's latest, so that two processes never
//! both settle one attempt; a crash between a send and its record sends it again when
//! the lease ends (at least once; `webhook-id` lets receivers drop the copy).

use std::sync::Arc;
use std::time::Duration as StdDuration;

use tokio_util::sync::CancellationToken;

use domain::Duration;
use domain::audit::Event;
use domain::webhook::{DeliveryStatus, RetrySchedule};
use ports::outbound::{
    Clock, DeliveryOutcome, DeliveryQueue, DueDelivery, StorageError, WebhookRequest, WebhookSender,
};

/// How the event of a delivery is shown in its body's `data`: as the audit log shows it.
pub type EventRenderer = Arc<dyn Fn(&Event) -> serde_json::Value + Send + Sync>;

/// How the worker paces itself and retries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookPolicy {
    /// How many deliveries one claim takes (sent concurrently).
    pub batch_size: u32,
    /// How long to sleep when nothing was due.
    pub idle_poll: StdDuration,
    /// The longest a receiver may take to answer (10 s).
    pub timeout: StdDuration,
    /// The waits between attempts (`ORGS_WEBHOOK_RETRY`).
    pub schedule: RetrySchedule,
    /// How long delivered and failed deliveries are kept (`ORGS_WEBHOOK_RETENTION`);
    /// the upkeep (`crate::maintenance`) deletes older ones.
    pub retention: Duration,
}

impl Default for WebhookPolicy {
    fn default() -> Self {
        Self {
            batch_size: 20,
            idle_poll: StdDuration::from_millis(500),
            timeout: StdDuration::from_secs(10),
            schedule: RetrySchedule::default(),
            retention: Duration::days(30),
        }
    }
}

impl WebhookPolicy {
    /// How long a claim keeps other workers off a delivery: the send, then room to
    /// record its outcome.
    #[must_use]
    pub fn lease(&self) -> Duration {
        Duration::from_std(self.timeout).unwrap_or(Duration::MAX) + Duration::seconds(60)
    }
}

/// What one pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WebhookReport {
    /// Deliveries answered with a `2xx`.
    pub delivered: u32,
    /// Deliveries to be tried again.
    pub retried: u32,
    /// Deliveries given up on.
    pub failed: u32,
    /// Deliveries whose claim another worker took over.
    pub lost: u32,
}

impl WebhookReport {
    /// How many deliveries the pass handled.
    #[must_use]
    pub fn handled(&self) -> u32 {
        self.delivered + self.retried + self.failed + self.lost
    }
}

/// The worker.
#[derive(Clone)]
pub struct WebhookWorker {
    queue: Arc<dyn DeliveryQueue>,
    sender: Arc<dyn WebhookSender>,
    clock: Arc<dyn Clock>,
    render: EventRenderer,
    policy: WebhookPolicy,
}

/// The body of a delivery: `{"type", "timestamp", "data"}`.
#[must_use]
pub fn body(event: &Event, render: &EventRenderer) -> String {
    serde_json::json!({
        "type": event.action.as_str(),
        "timestamp": event.created_at.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
        "data": render(event),
    })
    .to_string()
}

impl WebhookWorker {
    /// A worker over these ports.
    pub fn new(
        queue: Arc<dyn DeliveryQueue>,
        sender: Arc<dyn WebhookSender>,
        clock: Arc<dyn Clock>,
        render: EventRenderer,
        policy: WebhookPolicy,
    ) -> Self {
        Self {
            queue,
            sender,
            clock,
            render,
            policy,
        }
    }

    /// Claims one batch and delivers it.
    ///
    /// # Errors
    /// A storage failure while claiming or recording an outcome.
    pub async fn run_once(&self) -> Result<WebhookReport, StorageError> {
        // Nobody can ask this pass to stop.
        self.pass(&CancellationToken::new()).await
    }

    /// Claims one batch and sends it, all at once, until `shutdown` is cancelled: then
    /// the sends are abandoned and the claims released, so that the deliveries are
    /// taken again at once (by this service's next start or another process) rather
    /// than when their lease ends. A send abandoned after the receiver got it is sent
    /// again: delivery is at least once, and `webhook-id` tells the copies apart.
    async fn pass(&self, shutdown: &CancellationToken) -> Result<WebhookReport, StorageError> {
        let claimed = self
            .queue
            .claim_due(
                self.clock.now(),
                self.policy.batch_size,
                self.policy.lease(),
            )
            .await?;
        let claims: Vec<_> = claimed.iter().map(|due| (due.id, due.claim)).collect();
        let sends = futures::future::join_all(claimed.into_iter().map(|due| self.deliver(due)));
        let Some(outcomes) = shutdown.run_until_cancelled(sends).await else {
            for (delivery, claim) in claims {
                self.queue.release(delivery, claim).await?;
            }
            tracing::info!("stopping: webhook sends abandoned and their claims released");
            return Ok(WebhookReport::default());
        };
        let mut report = WebhookReport::default();
        for outcome in outcomes {
            match outcome? {
                Some(DeliveryStatus::Delivered) => report.delivered += 1,
                Some(DeliveryStatus::Pending) => report.retried += 1,
                Some(DeliveryStatus::Failed) => report.failed += 1,
                None => report.lost += 1,
            }
        }
        Ok(report)
    }

    /// Sends one delivery and records its outcome; `None` when the claim was lost.
    async fn deliver(&self, due: DueDelivery) -> Result<Option<DeliveryStatus>, StorageError> {
        let request = WebhookRequest {
            endpoint: due.endpoint.clone(),
            id: format!("evt_{}", due.event.id.get()),
            timestamp: self.clock.now().timestamp(),
            body: body(&due.event, &self.render),
            secret: due.secret.clone(),
        };
        let sent = tokio::time::timeout(
            self.policy.timeout + StdDuration::from_secs(1),
            self.sender.send(&request),
        )
        .await
        .unwrap_or_else(|_| {
            Err(ports::outbound::WebhookSendError(format!(
                "No answer within {} s",
                self.policy.timeout.as_secs()
            )))
        });
        let attempts = due.attempts + 1;
        let (status_code, error) = match sent {
            Ok(code) if (200..300).contains(&code) => (Some(code), None),
            Ok(code) => (Some(code), None),
            Err(error) => (None, Some(error.0)),
        };
        let outcome = if status_code.is_some_and(|code| (200..300).contains(&code)) {
            DeliveryOutcome {
                status: DeliveryStatus::Delivered,
                at: self.clock.now(),
                status_code,
                error,
                next_attempt_at: None,
            }
        } else if let Some(wait) = self.policy.schedule.wait_after(attempts) {
            DeliveryOutcome {
                status: DeliveryStatus::Pending,
                at: self.clock.now(),
                status_code,
                error,
                next_attempt_at: Some(self.clock.now() + wait),
            }
        } else {
            DeliveryOutcome {
                status: DeliveryStatus::Failed,
                at: self.clock.now(),
                status_code,
                error,
                next_attempt_at: None,
            }
        };
        let status = outcome.status;
        let reason = outcome.error.clone();
        if !self.queue.settle(due.id, due.claim, outcome).await? {
            tracing::warn!(
                delivery_id = due.id.get(),
                claim = due.claim,
                "webhook delivery claim lost before its outcome was recorded"
            );
            return Ok(None);
        }
        tracing::info!(
            delivery_id = due.id.get(),
            event_id = due.event.id.get(),
            attempts,
            status = status.as_str(),
            status_code = status_code.map(i64::from),
            error.message = reason.as_deref().unwrap_or(""),
            "webhook delivery attempted"
        );
        Ok(Some(status))
    }

    /// Runs until `shutdown` is cancelled: a pass, then a pause when nothing was due or
    /// storage failed.
    pub async fn run(self, shutdown: CancellationToken) {
        crate::delivery::run_passes("webhook", self.policy.idle_poll, &shutdown, || async {
            self.pass(&shutdown).await.map(|report| report.handled())
        })
        .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::audit::EventAction;
    use domain::webhook::{Endpoint, WebhookSecret};
    use domain::{DeliveryId, EventId, OrganizationId, Timestamp};
    use ports::outbound::{MockClock, MockDeliveryQueue, MockWebhookSender, WebhookSendError};

    fn now() -> Timestamp {
        Timestamp::from_timestamp(1_700_000_000, 0).expect("instant")
    }

    fn due(attempts: u32) -> DueDelivery {
        DueDelivery {
            id: DeliveryId::new(8),
            claim: 2,
            attempts,
            endpoint: Endpoint::from_stored("https://hooks.example.com/".to_owned()),
            secret: WebhookSecret::from_stored("whsec_AAAA".to_owned()),
            event: Event {
                id: EventId::new(41),
                action: EventAction::MemberRemoved,
                actor: None,
                actor_identifier: "operator".to_owned(),
                organization: OrganizationId::new(1),
                target: None,
                changes: "{}".to_owned(),
                request_id: None,
                created_at: now(),
            },
        }
    }

    fn worker(
        queue: MockDeliveryQueue,
        sender: MockWebhookSender,
        schedule: &str,
    ) -> WebhookWorker {
        let mut clock = MockClock::new();
        clock.expect_now().returning(now);
        WebhookWorker::new(
            Arc::new(queue),
            Arc::new(sender),
            Arc::new(clock),
            Arc::new(|event: &Event| serde_json::json!({"id": event.id.get()})),
            WebhookPolicy {
                schedule: RetrySchedule::parse(schedule).expect("schedule"),
                ..WebhookPolicy::default()
            },
        )
    }

    #[tokio::test]
    async fn a_2xx_is_delivered_with_the_events_id_and_body() {
        let mut queue = MockDeliveryQueue::new();
        queue
            .expect_claim_due()
            .times(1)
            .returning(|_, _, _| Ok(vec![due(0)]));
        queue
            .expect_settle()
            .withf(|id, claim, outcome| {
                *id == DeliveryId::new(8)
                    && *claim == 2
                    && outcome.status == DeliveryStatus::Delivered
                    && outcome.status_code == Some(204)
            })
            .times(1)
            .returning(|_, _, _| Ok(true));
        let mut sender = MockWebhookSender::new();
        sender
            .expect_send()
            .withf(|request| {
                request.id == "evt_41"
                    && request.timestamp == 1_700_000_000
                    && request.body
                        == r#"{"data":{"id":41},"timestamp":"2023-11-14T22:13:20Z","type":"member.removed"}"#
            })
            .times(1)
            .returning(|_| Ok(204));

        let report = worker(queue, sender, "5s").run_once().await;

        assert_eq!(report.map(|r| r.delivered), Ok(1));
    }

    #[tokio::test]
    async fn a_failure_waits_the_schedules_next_wait_then_fails_when_it_is_spent() {
        let mut queue = MockDeliveryQueue::new();
        queue
            .expect_claim_due()
            .returning(|_, _, _| Ok(vec![due(0)]))
            .times(1);
        queue
            .expect_settle()
            .withf(|_, _, outcome| {
                outcome.status == DeliveryStatus::Pending
                    && outcome.status_code == Some(302)
                    && outcome.next_attempt_at == Some(now() + Duration::seconds(5))
            })
            .times(1)
            .returning(|_, _, _| Ok(true));
        let mut sender = MockWebhookSender::new();
        sender.expect_send().returning(|_| Ok(302));
        let report = worker(queue, sender, "5s, 1m").run_once().await;
        assert_eq!(report.map(|r| r.retried), Ok(1));

        let mut queue = MockDeliveryQueue::new();
        queue
            .expect_claim_due()
            .returning(|_, _, _| Ok(vec![due(2)]));
        queue
            .expect_settle()
            .withf(|_, _, outcome| {
                outcome.status == DeliveryStatus::Failed
                    && outcome.error.as_deref() == Some("refused")
                    && outcome.next_attempt_at.is_none()
            })
            .times(1)
            .returning(|_, _, _| Ok(true));
        let mut sender = MockWebhookSender::new();
        sender
            .expect_send()
            .returning(|_| Err(WebhookSendError("refused".to_owned())));
        let report = worker(queue, sender, "5s, 1m").run_once().await;
        assert_eq!(report.map(|r| r.failed), Ok(1));
    }

    #[tokio::test]
    async fn stopping_abandons_the_sends_and_releases_their_claims() {
        let mut queue = MockDeliveryQueue::new();
        queue
            .expect_claim_due()
            .returning(|_, _, _| Ok(vec![due(0)]));
        queue.expect_settle().never();
        queue
            .expect_release()
            .withf(|id, claim| *id == DeliveryId::new(8) && *claim == 2)
            .times(1)
            .returning(|_, _| Ok(()));
        let mut sender = MockWebhookSender::new();
        sender.expect_send().returning(|_| {
            std::thread::sleep(StdDuration::from_millis(1));
            Ok(200)
        });
        let worker = worker(queue, sender, "");
        let shutdown = CancellationToken::new();
        shutdown.cancel();

        let report = worker.pass(&shutdown).await;

        assert_eq!(report, Ok(WebhookReport::default()));
    }

    #[tokio::test]
    async fn a_lost_claim_is_counted_not_an_error() {
        let mut queue = MockDeliveryQueue::new();
        queue
            .expect_claim_due()
            .returning(|_, _, _| Ok(vec![due(0)]));
        queue.expect_settle().returning(|_, _, _| Ok(false));
        let mut sender = MockWebhookSender::new();
        sender.expect_send().returning(|_| Ok(200));
        let report = worker(queue, sender, "").run_once().await;
        assert_eq!(report.map(|r| r.lost), Ok(1));
    }
}
