//! Webhooks and their delivery queue on every SQL backend (CONTRACT §14). Deliveries are
//! queued by `SqlStorage::record_event`, in the transaction of their event; the worker
//! claims them with one `update … returning` and a lease, as the e-mail outbox does.

use async_trait::async_trait;
use domain::audit::{Event, NewEvent};
use domain::pagination::{Page, PageRequest};
use domain::webhook::{
    Delivery, DeliveryStatus, Endpoint, EventPattern, Webhook, WebhookFields, WebhookSecret,
};
use domain::{DeliveryId, Duration, EventId, OrganizationId, Timestamp, WebhookId};
use ports::outbound::{
    CreateWebhookError, DeliveryOutcome, DeliveryQueue, DueDelivery, StorageError,
    WebhookRepository,
};
use sqlx::{ColumnIndex, Database, Decode, Encode, Executor, IntoArguments, Type};

use crate::events::{EVENT_COLUMNS, EventRow, Made, prefix_pattern};
use crate::instant::{StoredInstant, load, load_optional};
use crate::paging::{count, page_bounds, page_of};
use crate::{Connection, Dialect, SqlStorage, stored};
use crate::{corrupt, storage_error};

const WEBHOOK_COLUMNS: &str =
    "id, organization_id, endpoint, events, description, active, created_at";

#[derive(sqlx::FromRow)]
struct WebhookRow<I> {
    id: i64,
    organization_id: i64,
    endpoint: String,
    events: String,
    description: String,
    active: bool,
    created_at: I,
}

impl<I: StoredInstant> TryFrom<WebhookRow<I>> for Webhook {
    type Error = StorageError;

    fn try_from(row: WebhookRow<I>) -> Result<Self, StorageError> {
        let id = row.id;
        let events = row
            .events
            .split(',')
            .map(|text| EventPattern::parse(text).map_err(|e| corrupt("webhook", id, e)))
            .collect::<Result<_, _>>()?;
        Ok(Webhook {
            id: WebhookId::new(id),
            organization_id: OrganizationId::new(row.organization_id),
            endpoint: Endpoint::from_stored(row.endpoint),
            events,
            description: row.description,
            active: row.active,
            created_at: load("webhook", id, row.created_at)?,
        })
    }
}

#[derive(sqlx::FromRow)]
struct DeliveryRow<I> {
    id: i64,
    webhook_id: i64,
    event_id: i64,
    action: String,
    status: String,
    attempts: i32,
    last_status_code: Option<i32>,
    last_error: Option<String>,
    next_attempt_at: Option<I>,
    created_at: I,
}

impl<I: StoredInstant> TryFrom<DeliveryRow<I>> for Delivery {
    type Error = StorageError;

    fn try_from(row: DeliveryRow<I>) -> Result<Self, StorageError> {
        let id = row.id;
        Ok(Delivery {
            id: DeliveryId::new(id),
            webhook_id: WebhookId::new(row.webhook_id),
            event_id: EventId::new(row.event_id),
            action: domain::audit::EventAction::parse(&row.action)
                .ok_or_else(|| corrupt("delivery", id, &row.action))?,
            status: DeliveryStatus::parse(&row.status)
                .ok_or_else(|| corrupt("delivery", id, &row.status))?,
            attempts: u32::try_from(row.attempts).map_err(|e| corrupt("delivery", id, e))?,
            last_status_code: row
                .last_status_code
                .map(u16::try_from)
                .transpose()
                .map_err(|e| corrupt("delivery", id, e))?,
            last_error: row.last_error,
            next_attempt_at: load_optional("delivery", id, row.next_attempt_at)?,
            created_at: load("delivery", id, row.created_at)?,
        })
    }
}

/// The `like` pattern stored for one of a webhook's patterns.
fn like_pattern(pattern: &EventPattern) -> String {
    match pattern {
        EventPattern::All => "%".to_owned(),
        EventPattern::Prefix(prefix) => prefix_pattern(prefix),
        EventPattern::Exactly(action) => {
            let mut exact = prefix_pattern(action.as_str());
            exact.pop();
            exact
        }
    }
}

fn events_text(patterns: &[EventPattern]) -> String {
    patterns
        .iter()
        .map(EventPattern::as_text)
        .collect::<Vec<_>>()
        .join(",")
}

impl<D> SqlStorage<D>
where
    D: Dialect,
    for<'c> &'c mut Connection<D>: Executor<'c, Database = D::Db>,
    for<'q> <D::Db as Database>::Arguments<'q>: IntoArguments<'q, D::Db>,
    for<'q> i64: Encode<'q, D::Db> + Type<D::Db>,
    for<'q> &'q str: Encode<'q, D::Db> + Type<D::Db>,
{
    /// Replaces a webhook's patterns inside the caller's transaction.
    async fn save_patterns(
        connection: &mut Connection<D>,
        webhook: WebhookId,
        patterns: &[EventPattern],
    ) -> Result<(), StorageError> {
        sqlx::query("delete from webhook_patterns where webhook_id = $1")
            .bind(webhook.get())
            .execute(&mut *connection)
            .await
            .map_err(storage_error::<D>)?;
        for pattern in patterns {
            sqlx::query("insert into webhook_patterns (webhook_id, pattern) values ($1, $2)")
                .bind(webhook.get())
                .bind(like_pattern(pattern).as_str())
                .execute(&mut *connection)
                .await
                .map_err(storage_error::<D>)?;
        }
        Ok(())
    }
}

#[async_trait]
impl<D> WebhookRepository for SqlStorage<D>
where
    D: Dialect,
    for<'c> &'c mut Connection<D>: Executor<'c, Database = D::Db>,
    for<'q> <D::Db as Database>::Arguments<'q>: IntoArguments<'q, D::Db>,
    for<'q> i64: Encode<'q, D::Db> + Type<D::Db>,
    for<'q> bool: Encode<'q, D::Db> + Type<D::Db>,
    for<'q> &'q str: Encode<'q, D::Db> + Type<D::Db>,
    for<'q> Option<i64>: Encode<'q, D::Db>,
    for<'q> Option<&'q str>: Encode<'q, D::Db>,
    for<'r> i64: Decode<'r, D::Db>,
    for<'r> i32: Decode<'r, D::Db> + Type<D::Db>,
    for<'r> Option<i32>: Decode<'r, D::Db>,
    for<'r> bool: Decode<'r, D::Db>,
    for<'r> String: Decode<'r, D::Db> + Type<D::Db>,
    for<'r> Option<String>: Decode<'r, D::Db>,
    for<'r> Option<D::Instant>: Decode<'r, D::Db>,
    usize: ColumnIndex<<D::Db as Database>::Row>,
    for<'a> &'a str: ColumnIndex<<D::Db as Database>::Row>,
{
    #[tracing::instrument(skip_all, fields(db.system = D::NAME), err(level = "debug"))]
    async fn create(
        &self,
        organization: OrganizationId,
        fields: WebhookFields,
        secret: &WebhookSecret,
        event: NewEvent,
    ) -> Result<Webhook, CreateWebhookError> {
        let mut transaction = self.begin_write().await.map_err(storage_error::<D>)?;
        // The organization's row, held until the commit, queues concurrent creations so
        // that the count below stays true.
        sqlx::query(&format!(
            "select id from organizations where id = $1{}",
            D::FOR_UPDATE
        ))
        .bind(organization.get())
        .execute(&mut *transaction)
        .await
        .map_err(storage_error::<D>)?;
        let (existing,): (i64,) =
            sqlx::query_as("select count(*) from webhooks where organization_id = $1")
                .bind(organization.get())
                .fetch_one(&mut *transaction)
                .await
                .map_err(storage_error::<D>)?;
        if count(existing) >= domain::webhook::MAX_WEBHOOKS {
            return Err(CreateWebhookError::TooMany);
        }
        let patterns = fields.events.unwrap_or_else(|| vec![EventPattern::All]);
        let row: WebhookRow<D::Instant> = sqlx::query_as(&format!(
            "insert into webhooks (organization_id, endpoint, events, description, active, \
             secret, created_at) values ($1, $2, $3, $4, $5, $6, $7) \
             returning {WEBHOOK_COLUMNS}"
        ))
        .bind(organization.get())
        .bind(fields.endpoint.as_ref().map_or("", Endpoint::as_str))
        .bind(events_text(&patterns).as_str())
        .bind(fields.description.as_deref().unwrap_or(""))
        .bind(fields.active.unwrap_or(true))
        .bind(secret.expose())
        .bind(stored::<D>(event.at))
        .fetch_one(&mut *transaction)
        .await
        .map_err(storage_error::<D>)?;
        let webhook = Webhook::try_from(row)?;
        Self::save_patterns(&mut transaction, webhook.id, &patterns).await?;
        let made = Made {
            webhook: Some(webhook.id),
            ..Made::of(organization)
        };
        Self::record_event(&mut transaction, &event, made).await?;
        transaction.commit().await.map_err(storage_error::<D>)?;
        Ok(webhook)
    }

    #[tracing::instrument(skip_all, fields(db.system = D::NAME), err(level = "debug"))]
    async fn list(
        &self,
        organization: OrganizationId,
        page: PageRequest,
    ) -> Result<Page<Webhook>, StorageError> {
        let (limit, offset) = page_bounds(page);
        let (total,): (i64,) = on_pool!(
            self,
            sqlx::query_as("select count(*) from webhooks where organization_id = $1")
                .bind(organization.get()),
            fetch_one
        )
        .map_err(storage_error::<D>)?;
        let rows: Vec<WebhookRow<D::Instant>> = on_pool!(
            self,
            sqlx::query_as(&format!(
                "select {WEBHOOK_COLUMNS} from webhooks where organization_id = $1 \
             order by id limit $2 offset $3"
            ))
            .bind(organization.get())
            .bind(limit)
            .bind(offset),
            fetch_all
        )
        .map_err(storage_error::<D>)?;
        page_of(rows, total, page)
    }

    #[tracing::instrument(skip_all, fields(db.system = D::NAME), err(level = "debug"))]
    async fn find(
        &self,
        organization: OrganizationId,
        webhook: WebhookId,
    ) -> Result<Option<Webhook>, StorageError> {
        let row: Option<WebhookRow<D::Instant>> = on_pool!(
            self,
            sqlx::query_as(&format!(
                "select {WEBHOOK_COLUMNS} from webhooks where id = $1 and organization_id = $2"
            ))
            .bind(webhook.get())
            .bind(organization.get()),
            fetch_optional
        )
        .map_err(storage_error::<D>)?;
        row.map(Webhook::try_from).transpose()
    }

    #[tracing::instrument(skip_all, fields(db.system = D::NAME), err(level = "debug"))]
    async fn update(
        &self,
        webhook: &Webhook,
        event: Option<NewEvent>,
    ) -> Result<bool, StorageError> {
        let mut transaction = self.begin_write().await.map_err(storage_error::<D>)?;
        let updated = sqlx::query(
            "update webhooks set endpoint = $3, events = $4, description = $5, active = $6 \
             where id = $1 and organization_id = $2",
        )
        .bind(webhook.id.get())
        .bind(webhook.organization_id.get())
        .bind(webhook.endpoint.as_str())
        .bind(events_text(&webhook.events).as_str())
        .bind(webhook.description.as_str())
        .bind(webhook.active)
        .execute(&mut *transaction)
        .await
        .map_err(storage_error::<D>)?;
        if D::rows_affected(&updated) != 1 {
            return Ok(false);
        }
        Self::save_patterns(&mut transaction, webhook.id, &webhook.events).await?;
        if !webhook.active {
            sqlx::query(
                "delete from webhook_deliveries where webhook_id = $1 and status = 'pending'",
            )
            .bind(webhook.id.get())
            .execute(&mut *transaction)
            .await
            .map_err(storage_error::<D>)?;
        }
        if let Some(event) = &event {
            Self::record_event(&mut transaction, event, Made::of(webhook.organization_id)).await?;
        }
        transaction.commit().await.map_err(storage_error::<D>)?;
        Ok(true)
    }

    #[tracing::instrument(skip_all, fields(db.system = D::NAME), err(level = "debug"))]
    async fn delete(
        &self,
        organization: OrganizationId,
        webhook: WebhookId,
        event: NewEvent,
    ) -> Result<bool, StorageError> {
        let mut transaction = self.begin_write().await.map_err(storage_error::<D>)?;
        // Its deliveries and patterns go with it (`on delete cascade`).
        let deleted = sqlx::query("delete from webhooks where id = $1 and organization_id = $2")
            .bind(webhook.get())
            .bind(organization.get())
            .execute(&mut *transaction)
            .await
            .map_err(storage_error::<D>)?;
        if D::rows_affected(&deleted) != 1 {
            return Ok(false);
        }
        Self::record_event(&mut transaction, &event, Made::of(organization)).await?;
        transaction.commit().await.map_err(storage_error::<D>)?;
        Ok(true)
    }

    #[tracing::instrument(skip_all, fields(db.system = D::NAME), err(level = "debug"))]
    async fn rotate_secret(
        &self,
        organization: OrganizationId,
        webhook: WebhookId,
        secret: &WebhookSecret,
        event: NewEvent,
    ) -> Result<bool, StorageError> {
        let mut transaction = self.begin_write().await.map_err(storage_error::<D>)?;
        let updated =
            sqlx::query("update webhooks set secret = $3 where id = $1 and organization_id = $2")
                .bind(webhook.get())
                .bind(organization.get())
                .bind(secret.expose())
                .execute(&mut *transaction)
                .await
                .map_err(storage_error::<D>)?;
        if D::rows_affected(&updated) != 1 {
            return Ok(false);
        }
        Self::record_event(&mut transaction, &event, Made::of(organization)).await?;
        transaction.commit().await.map_err(storage_error::<D>)?;
        Ok(true)
    }

    #[tracing::instrument(skip_all, fields(db.system = D::NAME), err(level = "debug"))]
    async fn deliveries(
        &self,
        webhook: WebhookId,
        page: PageRequest,
    ) -> Result<Page<Delivery>, StorageError> {
        let (limit, offset) = page_bounds(page);
        let (total,): (i64,) = on_pool!(
            self,
            sqlx::query_as("select count(*) from webhook_deliveries where webhook_id = $1")
                .bind(webhook.get()),
            fetch_one
        )
        .map_err(storage_error::<D>)?;
        let rows: Vec<DeliveryRow<D::Instant>> = on_pool!(
            self,
            sqlx::query_as(
                "select d.id, d.webhook_id, d.event_id, e.action, d.status, d.attempts, \
             d.last_status_code, d.last_error, d.next_attempt_at, d.created_at \
             from webhook_deliveries d join events e on e.id = d.event_id \
             where d.webhook_id = $1 order by d.id desc limit $2 offset $3",
            )
            .bind(webhook.get())
            .bind(limit)
            .bind(offset),
            fetch_all
        )
        .map_err(storage_error::<D>)?;
        page_of(rows, total, page)
    }

    #[tracing::instrument(skip_all, fields(db.system = D::NAME), err(level = "debug"))]
    async fn retry_delivery(
        &self,
        webhook: WebhookId,
        delivery: DeliveryId,
        now: Timestamp,
    ) -> Result<bool, StorageError> {
        // A new claim number, so that a worker still holding an older claim cannot
        // settle the delivery queued again.
        let updated = on_pool!(
            self,
            sqlx::query(
                "update webhook_deliveries set status = 'pending', attempts = 0, \
             next_attempt_at = $3, locked_until = null, claims = claims + 1, settled_at = null \
             where id = $2 and webhook_id = $1",
            )
            .bind(webhook.get())
            .bind(delivery.get())
            .bind(stored::<D>(now)),
            execute
        )
        .map_err(storage_error::<D>)?;
        Ok(D::rows_affected(&updated) == 1)
    }
}

#[derive(sqlx::FromRow)]
struct ClaimedRow {
    id: i64,
    claims: i64,
    attempts: i32,
    webhook_id: i64,
    event_id: i64,
}

#[async_trait]
impl<D> DeliveryQueue for SqlStorage<D>
where
    D: Dialect,
    for<'c> &'c mut Connection<D>: Executor<'c, Database = D::Db>,
    for<'q> <D::Db as Database>::Arguments<'q>: IntoArguments<'q, D::Db>,
    for<'q> i64: Encode<'q, D::Db> + Type<D::Db>,
    for<'q> &'q str: Encode<'q, D::Db> + Type<D::Db>,
    for<'q> Option<i64>: Encode<'q, D::Db>,
    for<'q> Option<&'q str>: Encode<'q, D::Db>,
    for<'q> Option<D::Instant>: Encode<'q, D::Db>,
    for<'r> i64: Decode<'r, D::Db>,
    for<'r> i32: Decode<'r, D::Db> + Type<D::Db>,
    for<'r> Option<i64>: Decode<'r, D::Db>,
    for<'r> String: Decode<'r, D::Db> + Type<D::Db>,
    for<'r> Option<String>: Decode<'r, D::Db>,
    usize: ColumnIndex<<D::Db as Database>::Row>,
    for<'a> &'a str: ColumnIndex<<D::Db as Database>::Row>,
{
    #[tracing::instrument(skip_all, fields(db.system = D::NAME), err(level = "debug"))]
    async fn claim_due(
        &self,
        now: Timestamp,
        limit: u32,
        lease: Duration,
    ) -> Result<Vec<DueDelivery>, StorageError> {
        let locked_until = stored::<D>(now + lease);
        let now = stored::<D>(now);
        let mut claimed: Vec<ClaimedRow> = on_pool!(
            self,
            sqlx::query_as(&format!(
                "update webhook_deliveries set locked_until = $3, claims = claims + 1 \
             where id in (select d.id from webhook_deliveries d \
                 where d.status = 'pending' and d.next_attempt_at <= $1 \
                 and (d.locked_until is null or d.locked_until <= $1) \
                 and exists (select 1 from webhooks w where w.id = d.webhook_id and w.active) \
                 order by d.next_attempt_at, d.id limit $2{}) \
             returning id, claims, attempts, webhook_id, event_id",
                D::SKIP_LOCKED
            ))
            .bind(now)
            .bind(i64::from(limit))
            .bind(locked_until),
            fetch_all
        )
        .map_err(storage_error::<D>)?;
        claimed.sort_by_key(|row| row.id);
        let mut due = Vec::with_capacity(claimed.len());
        for row in claimed {
            let webhook: Option<(String, String)> = on_pool!(
                self,
                sqlx::query_as("select endpoint, secret from webhooks where id = $1")
                    .bind(row.webhook_id),
                fetch_optional
            )
            .map_err(storage_error::<D>)?;
            let event: Option<EventRow<D::Instant>> = on_pool!(
                self,
                sqlx::query_as(&format!("select {EVENT_COLUMNS} from events where id = $1"))
                    .bind(row.event_id),
                fetch_optional
            )
            .map_err(storage_error::<D>)?;
            // Deleted since the claim: nothing to send.
            let (Some((endpoint, secret)), Some(event)) = (webhook, event) else {
                continue;
            };
            due.push(DueDelivery {
                id: DeliveryId::new(row.id),
                claim: row.claims,
                attempts: u32::try_from(row.attempts)
                    .map_err(|e| corrupt("delivery", row.id, e))?,
                endpoint: Endpoint::from_stored(endpoint),
                secret: WebhookSecret::from_stored(secret),
                event: Event::try_from(event)?,
            });
        }
        Ok(due)
    }

    #[tracing::instrument(skip_all, fields(db.system = D::NAME), err(level = "debug"))]
    async fn settle(
        &self,
        delivery: DeliveryId,
        claim: i64,
        outcome: DeliveryOutcome,
    ) -> Result<bool, StorageError> {
        // Still pending: not settled yet, so not counted by the retention.
        let settled_at = (outcome.status != DeliveryStatus::Pending).then_some(outcome.at);
        let settled = on_pool!(
            self,
            sqlx::query(
                "update webhook_deliveries set status = $3, attempts = attempts + 1, \
             last_status_code = $4, last_error = $5, next_attempt_at = $6, locked_until = null, \
             settled_at = $7 \
             where id = $1 and claims = $2 and status = 'pending'",
            )
            .bind(delivery.get())
            .bind(claim)
            .bind(outcome.status.as_str())
            .bind(outcome.status_code.map(i64::from))
            .bind(outcome.error.as_deref())
            .bind(outcome.next_attempt_at.map(stored::<D>))
            .bind(settled_at.map(stored::<D>)),
            execute
        )
        .map_err(storage_error::<D>)?;
        Ok(D::rows_affected(&settled) == 1)
    }

    #[tracing::instrument(skip_all, fields(db.system = D::NAME), err(level = "debug"))]
    async fn release(&self, delivery: DeliveryId, claim: i64) -> Result<(), StorageError> {
        on_pool!(
            self,
            sqlx::query(
                "update webhook_deliveries set locked_until = null \
             where id = $1 and claims = $2 and status = 'pending'",
            )
            .bind(delivery.get())
            .bind(claim),
            execute
        )
        .map(drop)
        .map_err(storage_error::<D>)
    }

    #[tracing::instrument(skip_all, fields(db.system = D::NAME), err(level = "debug"))]
    async fn backlog(&self) -> Result<u64, StorageError> {
        let (total,): (i64,) = on_pool!(
            self,
            sqlx::query_as("select count(*) from webhook_deliveries where status = 'pending'"),
            fetch_one
        )
        .map_err(storage_error::<D>)?;
        Ok(count(total))
    }

    #[tracing::instrument(skip_all, fields(db.system = D::NAME), err(level = "debug"))]
    async fn prune(&self, before: Timestamp) -> Result<u64, StorageError> {
        let pruned = on_pool!(
            self,
            sqlx::query(
                "delete from webhook_deliveries where status <> 'pending' and settled_at < $1"
            )
            .bind(stored::<D>(before)),
            execute
        )
        .map_err(storage_error::<D>)?;
        Ok(D::rows_affected(&pruned))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::audit::EventAction;

    #[test]
    fn patterns_are_stored_as_escaped_like_patterns() {
        assert_eq!(like_pattern(&EventPattern::All), "%");
        assert_eq!(
            like_pattern(&EventPattern::Prefix("api_key.".to_owned())),
            "api\\_key.%"
        );
        assert_eq!(
            like_pattern(&EventPattern::Exactly(EventAction::ApiKeyRegenerated)),
            "api\\_key.regenerated"
        );
    }
}
