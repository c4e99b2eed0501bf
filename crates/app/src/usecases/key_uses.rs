//! When API keys were last used, kept in memory and written in batches (CONTRACT §11:
//! using a key costs no database write per request). See `docs/api-keys.md`.
//!
//! Authentication records each use here; a background task (`maintenance::flush_key_uses`)
//! writes the batch every `ORGS_KEY_USE_FLUSH` through one storage call. The storage
//! keeps the latest instant per key, so several processes flushing in any order agree;
//! a crash loses at most the uses since the last flush.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use domain::{ApiKeyId, Timestamp};
use ports::outbound::{KeyUse, StorageError, UserRepository};

/// The uses of API keys not yet written: the latest instant per key.
#[derive(Debug, Default)]
pub struct KeyUseBatch {
    pending: Mutex<HashMap<ApiKeyId, Timestamp>>,
}

impl KeyUseBatch {
    /// An empty batch.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Notes that `key` was used at `at` (a later use of the same key replaces it).
    pub fn record(&self, key: ApiKeyId, at: Timestamp) {
        let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        let latest = pending.entry(key).or_insert(at);
        if at > *latest {
            *latest = at;
        }
    }

    /// Takes every pending use, leaving the batch empty.
    #[must_use]
    pub fn take(&self) -> Vec<KeyUse> {
        let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        let mut uses: Vec<KeyUse> = pending
            .drain()
            .map(|(key, at)| KeyUse { key, at })
            .collect();
        uses.sort_by_key(|use_| use_.key);
        uses
    }

    /// Writes the pending uses; returns how many keys were written. When the storage
    /// fails, the uses go back into the batch for the next flush.
    ///
    /// # Errors
    /// The storage failure.
    pub async fn flush(&self, users: &dyn UserRepository) -> Result<usize, StorageError> {
        let uses = self.take();
        if uses.is_empty() {
            return Ok(0);
        }
        match users.record_key_uses(&uses).await {
            Ok(()) => Ok(uses.len()),
            Err(error) => {
                for use_ in uses {
                    self.record(use_.key, use_.at);
                }
                Err(error)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::usecases::fixtures::now;
    use domain::Duration;
    use ports::outbound::MockUserRepository;

    #[test]
    fn a_batch_keeps_the_latest_use_of_each_key() {
        let batch = KeyUseBatch::new();
        let (one, two) = (ApiKeyId::new(1), ApiKeyId::new(2));

        batch.record(one, now());
        batch.record(one, now() + Duration::seconds(5));
        batch.record(one, now() + Duration::seconds(2));
        batch.record(two, now());

        assert_eq!(
            batch.take(),
            [
                KeyUse {
                    key: one,
                    at: now() + Duration::seconds(5)
                },
                KeyUse {
                    key: two,
                    at: now()
                }
            ]
        );
        assert!(batch.take().is_empty());
    }

    #[tokio::test]
    async fn a_flush_writes_the_whole_batch_in_one_call() {
        let batch = KeyUseBatch::new();
        batch.record(ApiKeyId::new(1), now());
        batch.record(ApiKeyId::new(2), now());
        let mut users = MockUserRepository::new();
        users
            .expect_record_key_uses()
            .withf(|uses| uses.len() == 2)
            .times(1)
            .returning(|_| Ok(()));

        let written = batch.flush(&users).await;

        assert_eq!(written, Ok(2));
        assert!(batch.take().is_empty());
    }

    #[tokio::test]
    async fn an_empty_batch_writes_nothing() {
        let mut users = MockUserRepository::new();
        users.expect_record_key_uses().never();

        assert_eq!(KeyUseBatch::new().flush(&users).await, Ok(0));
    }

    #[tokio::test]
    async fn a_failed_flush_keeps_the_uses_for_the_next_one() {
        let batch = KeyUseBatch::new();
        batch.record(ApiKeyId::new(1), now());
        let mut users = MockUserRepository::new();
        users
            .expect_record_key_uses()
            .returning(|_| Err(StorageError::unavailable("down")));

        assert!(batch.flush(&users).await.is_err());

        assert_eq!(
            batch.take(),
            [KeyUse {
                key: ApiKeyId::new(1),
                at: now()
            }]
        );
    }
}
