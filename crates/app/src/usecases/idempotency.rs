//! Idempotent retries (CONTRACT §12): claiming a key for a request, keeping its response
//! for `ORGS_IDEMPOTENCY_TTL`, and telling a retry from a different request. The other
//! use cases never see a key: the HTTP adapter wraps them. See `docs/idempotency.md`.

use std::sync::Arc;

use async_trait::async_trait;

use domain::idempotency::{IdempotencyKey, RecordedResponse, RequestFingerprint};
use domain::{Actor, Duration};
use ports::inbound::{IdempotencyTicket, IdempotencyUseCases, IdempotentStart, UseCaseError};
use ports::outbound::{Clock, IdempotencyClaim, IdempotencyStore};

/// How long keys live, and how long an unfinished claim holds its key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdempotencySettings {
    /// How long a key and its kept response live (`ORGS_IDEMPOTENCY_TTL`, 24 h).
    pub ttl: Duration,
    /// How long a claim holds its key while its request runs. A claim older than this
    /// was left by a process that died, and a retry of the same request takes it over;
    /// it must be longer than any request may run.
    pub lease: Duration,
}

impl Default for IdempotencySettings {
    fn default() -> Self {
        Self {
            ttl: Duration::hours(24),
            lease: Duration::seconds(60),
        }
    }
}

/// The idempotency use cases.
#[derive(Clone)]
pub struct IdempotencyService {
    store: Arc<dyn IdempotencyStore>,
    clock: Arc<dyn Clock>,
    settings: IdempotencySettings,
}

impl IdempotencyService {
    /// A service over these ports.
    pub fn new(
        store: Arc<dyn IdempotencyStore>,
        clock: Arc<dyn Clock>,
        settings: IdempotencySettings,
    ) -> Self {
        Self {
            store,
            clock,
            settings,
        }
    }
}

#[async_trait]
impl IdempotencyUseCases for IdempotencyService {
    async fn start(
        &self,
        actor: &Actor,
        key: IdempotencyKey,
        fingerprint: RequestFingerprint,
    ) -> Result<IdempotentStart, UseCaseError> {
        let now = self.clock.now();
        let claim = self
            .store
            .claim(
                actor.user_id,
                &key,
                &fingerprint,
                now,
                now + self.settings.lease,
                now + self.settings.ttl,
            )
            .await?;
        Ok(match claim {
            IdempotencyClaim::Claimed { attempt } => IdempotentStart::Run(IdempotencyTicket {
                user: actor.user_id,
                key,
                attempt,
            }),
            IdempotencyClaim::Held {
                fingerprint: held, ..
            } if held != fingerprint => IdempotentStart::KeyReused,
            IdempotencyClaim::Held {
                response: Some(response),
                ..
            } => IdempotentStart::Replay(response),
            IdempotencyClaim::Held { response: None, .. } => IdempotentStart::InProgress,
        })
    }

    async fn finish(
        &self,
        ticket: IdempotencyTicket,
        response: RecordedResponse,
    ) -> Result<(), UseCaseError> {
        if !response.is_kept() {
            return self.abandon(ticket).await;
        }
        let expires_at = self.clock.now() + self.settings.ttl;
        let kept = self
            .store
            .complete(
                ticket.user,
                &ticket.key,
                ticket.attempt,
                &response,
                expires_at,
            )
            .await?;
        if !kept {
            // Only when this request outlived its lease and a retry took the key over.
            tracing::warn!(
                attempt = ticket.attempt,
                "an idempotent request finished after its claim was taken over"
            );
        }
        Ok(())
    }

    async fn abandon(&self, ticket: IdempotencyTicket) -> Result<(), UseCaseError> {
        self.store
            .release(ticket.user, &ticket.key, ticket.attempt)
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::usecases::fixtures::actor as actor_with;
    use domain::{Role, Timestamp, UserId};
    use mockall::predicate::{always, eq};
    use ports::outbound::{MockClock, MockIdempotencyStore, StorageError};

    fn now() -> Timestamp {
        Timestamp::UNIX_EPOCH + Duration::days(100)
    }

    fn clock() -> Arc<MockClock> {
        let mut clock = MockClock::new();
        clock.expect_now().return_const(now());
        Arc::new(clock)
    }

    fn key() -> IdempotencyKey {
        IdempotencyKey::parse(b"retry-1").expect("valid")
    }

    fn fingerprint(body: &str) -> RequestFingerprint {
        RequestFingerprint::of("POST", "/organizations/", None, body.as_bytes())
    }

    fn response(status: u16) -> RecordedResponse {
        RecordedResponse {
            status,
            headers: vec![("content-type".to_owned(), "application/json".to_owned())],
            body: b"{}".to_vec(),
        }
    }

    fn settings() -> IdempotencySettings {
        IdempotencySettings {
            ttl: Duration::hours(24),
            lease: Duration::seconds(60),
        }
    }

    fn service(store: MockIdempotencyStore) -> IdempotencyService {
        IdempotencyService::new(Arc::new(store), clock(), settings())
    }

    fn ticket() -> IdempotencyTicket {
        IdempotencyTicket {
            user: UserId::new(7),
            key: key(),
            attempt: 3,
        }
    }

    fn actor() -> Actor {
        let mut actor = actor_with(Role::Administrators);
        actor.user_id = UserId::new(7);
        actor
    }

    #[tokio::test]
    async fn a_free_key_is_claimed_for_the_user_with_a_lease_and_an_expiry() {
        let mut store = MockIdempotencyStore::new();
        store
            .expect_claim()
            .with(
                eq(UserId::new(7)),
                eq(key()),
                eq(fingerprint("{}")),
                eq(now()),
                eq(now() + Duration::seconds(60)),
                eq(now() + Duration::hours(24)),
            )
            .times(1)
            .returning(|_, _, _, _, _, _| Ok(IdempotencyClaim::Claimed { attempt: 3 }));

        let start = service(store)
            .start(&actor(), key(), fingerprint("{}"))
            .await;

        assert_eq!(start, Ok(IdempotentStart::Run(ticket())));
    }

    #[tokio::test]
    async fn the_same_request_after_it_finished_replays_its_response() {
        let mut store = MockIdempotencyStore::new();
        store.expect_claim().times(1).returning(|_, _, _, _, _, _| {
            Ok(IdempotencyClaim::Held {
                fingerprint: fingerprint("{}"),
                response: Some(response(201)),
            })
        });

        let start = service(store)
            .start(&actor(), key(), fingerprint("{}"))
            .await;

        assert_eq!(start, Ok(IdempotentStart::Replay(response(201))));
    }

    #[tokio::test]
    async fn the_same_request_while_it_runs_is_in_progress() {
        let mut store = MockIdempotencyStore::new();
        store.expect_claim().times(1).returning(|_, _, _, _, _, _| {
            Ok(IdempotencyClaim::Held {
                fingerprint: fingerprint("{}"),
                response: None,
            })
        });

        let start = service(store)
            .start(&actor(), key(), fingerprint("{}"))
            .await;

        assert_eq!(start, Ok(IdempotentStart::InProgress));
    }

    #[tokio::test]
    async fn a_different_request_with_a_used_key_is_refused_whether_finished_or_running() {
        for response in [Some(response(201)), None] {
            let mut store = MockIdempotencyStore::new();
            store
                .expect_claim()
                .times(1)
                .returning(move |_, _, _, _, _, _| {
                    Ok(IdempotencyClaim::Held {
                        fingerprint: fingerprint("{\"name\":\"other\"}"),
                        response: response.clone(),
                    })
                });

            let start = service(store)
                .start(&actor(), key(), fingerprint("{}"))
                .await;

            assert_eq!(start, Ok(IdempotentStart::KeyReused));
        }
    }

    #[tokio::test]
    async fn a_storage_failure_while_claiming_is_the_use_cases_failure() {
        let mut store = MockIdempotencyStore::new();
        store
            .expect_claim()
            .returning(|_, _, _, _, _, _| Err(StorageError::unavailable("down")));

        let start = service(store)
            .start(&actor(), key(), fingerprint("{}"))
            .await;

        assert!(matches!(start, Err(UseCaseError::Unavailable(_))));
    }

    #[tokio::test]
    async fn a_finished_request_keeps_its_response_for_the_ttl_from_now() {
        let mut store = MockIdempotencyStore::new();
        store
            .expect_complete()
            .with(
                eq(UserId::new(7)),
                eq(key()),
                eq(3),
                eq(response(400)),
                eq(now() + Duration::hours(24)),
            )
            .times(1)
            .returning(|_, _, _, _, _| Ok(true));
        store.expect_release().never();

        let finished = service(store).finish(ticket(), response(400)).await;

        assert_eq!(finished, Ok(()));
    }

    #[tokio::test]
    async fn a_server_error_or_a_rate_limit_is_not_kept_and_frees_the_key() {
        for status in [500, 503, 429] {
            let mut store = MockIdempotencyStore::new();
            store.expect_complete().never();
            store
                .expect_release()
                .with(eq(UserId::new(7)), eq(key()), eq(3))
                .times(1)
                .returning(|_, _, _| Ok(()));

            let finished = service(store).finish(ticket(), response(status)).await;

            assert_eq!(finished, Ok(()), "{status}");
        }
    }

    #[tokio::test]
    async fn a_response_whose_claim_was_taken_over_is_dropped_without_error() {
        let mut store = MockIdempotencyStore::new();
        store
            .expect_complete()
            .with(always(), always(), always(), always(), always())
            .times(1)
            .returning(|_, _, _, _, _| Ok(false));

        let finished = service(store).finish(ticket(), response(201)).await;

        assert_eq!(finished, Ok(()));
    }

    #[tokio::test]
    async fn abandoning_frees_the_key_of_this_claim() {
        let mut store = MockIdempotencyStore::new();
        store
            .expect_release()
            .with(eq(UserId::new(7)), eq(key()), eq(3))
            .times(1)
            .returning(|_, _, _| Ok(()));

        let abandoned = service(store).abandon(ticket()).await;

        assert_eq!(abandoned, Ok(()));
    }
}
