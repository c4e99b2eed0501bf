//! Readiness and the gauges behind `/metrics`.

use std::sync::Arc;

use async_trait::async_trait;

use ports::inbound::{HealthUseCases, ServiceGauges, UseCaseError};
use ports::outbound::{DeliveryQueue, Outbox, StorageHealth};

/// The health use cases.
#[derive(Clone)]
pub struct HealthService {
    storage: Arc<dyn StorageHealth>,
    outbox: Arc<dyn Outbox>,
    deliveries: Arc<dyn DeliveryQueue>,
}

impl HealthService {
    /// A service over these ports.
    pub fn new(
        storage: Arc<dyn StorageHealth>,
        outbox: Arc<dyn Outbox>,
        deliveries: Arc<dyn DeliveryQueue>,
    ) -> Self {
        Self {
            storage,
            outbox,
            deliveries,
        }
    }
}

#[async_trait]
impl HealthUseCases for HealthService {
    async fn ready(&self) -> Result<(), UseCaseError> {
        self.storage
            .ping()
            .await
            // Whatever the cause, a database that does not answer makes us not ready.
            .map_err(UseCaseError::unavailable)
    }

    async fn gauges(&self) -> Result<ServiceGauges, UseCaseError> {
        let pool = self.storage.pool_usage();
        let outbox_backlog = self.outbox.backlog().await?;
        let outbox_dead = self.outbox.dead().await?;
        let webhook_backlog = self.deliveries.backlog().await?;
        Ok(ServiceGauges {
            pool_size: pool.size,
            pool_idle: pool.idle,
            pool_max: pool.max,
            outbox_backlog,
            outbox_dead,
            webhook_backlog,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ports::outbound::{
        MockDeliveryQueue, MockOutbox, MockStorageHealth, PoolUsage, StorageError,
    };

    #[tokio::test]
    async fn a_database_that_does_not_answer_is_not_ready() {
        let mut storage = MockStorageHealth::new();
        storage
            .expect_ping()
            .returning(|| Err(StorageError::unexpected("timeout".to_owned())));
        let service = HealthService::new(
            Arc::new(storage),
            Arc::new(MockOutbox::new()),
            Arc::new(MockDeliveryQueue::new()),
        );

        let ready = service.ready().await;

        assert!(matches!(ready, Err(UseCaseError::Unavailable(_))));
    }

    #[tokio::test]
    async fn the_gauges_combine_pool_usage_and_the_outbox_counts() {
        let mut storage = MockStorageHealth::new();
        storage.expect_pool_usage().returning(|| PoolUsage {
            size: 4,
            idle: 3,
            max: 10,
        });
        let mut outbox = MockOutbox::new();
        outbox.expect_backlog().returning(|| Ok(12));
        outbox.expect_dead().returning(|| Ok(2));
        let mut deliveries = MockDeliveryQueue::new();
        deliveries.expect_backlog().returning(|| Ok(5));
        let service = HealthService::new(Arc::new(storage), Arc::new(outbox), Arc::new(deliveries));

        let gauges = service.gauges().await;

        assert_eq!(
            gauges,
            Ok(ServiceGauges {
                pool_size: 4,
                pool_idle: 3,
                pool_max: 10,
                outbox_backlog: 12,
                outbox_dead: 2,
                webhook_backlog: 5,
            })
        );
    }
}
