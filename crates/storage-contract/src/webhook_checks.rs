//! The webhooks' contract (CONTRACT §14): deliveries are queued in the transaction of
//! their event, one per matching active webhook; claims hold a lease; outcomes settle
//! only under the latest claim; the schedule and manual retries; at most ten webhooks.

use std::collections::HashSet;

use domain::audit::{EventAction, EventOrganization, EventTarget, NewEvent};
use domain::organization::Organization;
use domain::pagination::PageRequest;
use domain::webhook::{
    Delivery, DeliveryStatus, Endpoint, EventPattern, Webhook, WebhookFields, WebhookSecret,
};
use domain::{Duration, Timestamp, UserId};
use ports::outbound::{CreateWebhookError, DeliveryOutcome};

use crate::Store;
use crate::fixtures::{child, now, root};

fn fields(patterns: Vec<EventPattern>, active: bool) -> WebhookFields {
    WebhookFields {
        endpoint: Some(Endpoint::from_stored(
            "https://hooks.example.com/".to_owned(),
        )),
        events: Some(patterns),
        description: Some(String::new()),
        active: Some(active),
    }
}

fn created(organization: &Organization) -> NewEvent {
    NewEvent::by_operator(
        EventAction::WebhookCreated,
        EventOrganization::Existing(organization.id),
        EventTarget::ThisWebhook,
        now(),
    )
}

async fn webhook(
    store: &Store,
    organization: &Organization,
    patterns: Vec<EventPattern>,
    active: bool,
) -> Webhook {
    store
        .webhooks
        .create(
            organization.id,
            fields(patterns, active),
            &WebhookSecret::from_stored("whsec_c2VjcmV0".to_owned()),
            created(organization),
        )
        .await
        .expect("the webhook is created")
}

async fn deliveries(store: &Store, webhook: &Webhook) -> Vec<Delivery> {
    store
        .webhooks
        .deliveries(webhook.id, PageRequest::new(1, 1000))
        .await
        .expect("deliveries are listed")
        .items
}

async fn deliveries_of(store: &Store, webhook: &Webhook, action: EventAction) -> Vec<Delivery> {
    deliveries(store, webhook)
        .await
        .into_iter()
        .filter(|delivery| delivery.action == action)
        .collect()
}

/// An operator's `organization.updated` of `organization`, stored with a real update.
async fn update(store: &Store, organization: &Organization) {
    let event = NewEvent::by_operator(
        EventAction::OrganizationUpdated,
        EventOrganization::Existing(organization.id),
        EventTarget::Organization,
        now(),
    );
    store
        .organizations
        .update(organization, None, now(), Some(event))
        .await
        .expect("updated");
}

/// One event queues one delivery for each active webhook of its organization or of its
/// root whose patterns match, and none for the others.
pub async fn an_event_queues_one_delivery_per_matching_active_webhook(store: &Store) {
    let parent = root(store, "Hooked root").await;
    let kid = child(store, &parent, "Hooked child").await;
    let other = root(store, "Other root").await;
    let everything = webhook(store, &parent, vec![EventPattern::All], true).await;
    let members = webhook(
        store,
        &parent,
        vec![EventPattern::Prefix("member.".to_owned())],
        true,
    )
    .await;
    let childs = webhook(
        store,
        &kid,
        vec![
            EventPattern::Prefix("organization.".to_owned()),
            EventPattern::Exactly(EventAction::OrganizationUpdated),
        ],
        true,
    )
    .await;
    let inactive = webhook(store, &parent, vec![EventPattern::All], false).await;
    let elsewhere = webhook(store, &other, vec![EventPattern::All], true).await;

    update(store, &kid).await;

    let updated = EventAction::OrganizationUpdated;
    assert_eq!(deliveries_of(store, &everything, updated).await.len(), 1);
    assert_eq!(deliveries_of(store, &childs, updated).await.len(), 1);
    assert!(deliveries_of(store, &members, updated).await.is_empty());
    assert!(deliveries(store, &inactive).await.is_empty());
    assert!(deliveries_of(store, &elsewhere, updated).await.is_empty());
    let queued = &deliveries_of(store, &everything, updated).await[0];
    assert_eq!(queued.status, DeliveryStatus::Pending);
    assert_eq!(queued.attempts, 0);
    assert!(queued.next_attempt_at.is_some());
}

/// An event whose change rolls back queues nothing.
pub async fn a_rolled_back_event_queues_no_delivery(store: &Store) {
    let parent = root(store, "Rolled back").await;
    let everything = webhook(store, &parent, vec![EventPattern::All], true).await;
    let unstorable = NewEvent::new(
        EventAction::OrganizationUpdated,
        domain::audit::EventActor::User(UserId::new(999_999_999)),
        EventOrganization::Existing(parent.id),
        EventTarget::Organization,
        None,
        now(),
    );

    let refused = store
        .organizations
        .update(&parent, None, now(), Some(unstorable))
        .await;

    assert!(refused.is_err());
    assert!(
        deliveries_of(store, &everything, EventAction::OrganizationUpdated)
            .await
            .is_empty()
    );
}

/// A claim holds its deliveries for its lease; only the latest claim settles; a failed
/// attempt comes back at its next attempt; a manual retry starts again from zero.
pub async fn claims_lease_settle_once_and_follow_the_schedule(store: &Store) {
    let parent = root(store, "Claimed").await;
    let everything = webhook(store, &parent, vec![EventPattern::All], true).await;
    update(store, &parent).await;
    let start = now() + Duration::seconds(1);

    let first = store
        .deliveries
        .claim_due(start, 100, Duration::minutes(1))
        .await
        .expect("claimed");
    let again = store
        .deliveries
        .claim_due(start, 100, Duration::minutes(1))
        .await
        .expect("claimed");

    let ours = |claimed: &Vec<ports::outbound::DueDelivery>| {
        claimed
            .iter()
            .find(|due| due.event.action == EventAction::OrganizationUpdated)
            .cloned()
    };
    let first = ours(&first).expect("the delivery is claimed");
    assert!(ours(&again).is_none(), "held by the first claim's lease");
    store
        .deliveries
        .release(first.id, first.claim)
        .await
        .expect("released");
    let released = store
        .deliveries
        .claim_due(start, 100, Duration::minutes(1))
        .await
        .expect("claimed");
    let first = ours(&released).expect("a released claim is taken again at once");
    let later = store
        .deliveries
        .claim_due(start + Duration::minutes(2), 100, Duration::minutes(1))
        .await
        .expect("claimed");
    let later = ours(&later).expect("claimed again once the lease ended");
    assert_eq!(first.endpoint.as_str(), "https://hooks.example.com/");
    assert_eq!(first.secret.expose(), "whsec_c2VjcmV0");
    assert_eq!(first.attempts, 0);
    let retry_at = start + Duration::minutes(10);
    let failed = DeliveryOutcome {
        at: now(),
        status: DeliveryStatus::Pending,
        status_code: Some(500),
        error: None,
        next_attempt_at: Some(retry_at),
    };
    assert_eq!(
        store
            .deliveries
            .settle(first.id, first.claim, failed.clone())
            .await,
        Ok(false),
        "a superseded claim settles nothing"
    );
    assert_eq!(
        store.deliveries.settle(later.id, later.claim, failed).await,
        Ok(true)
    );
    let before = store
        .deliveries
        .claim_due(retry_at - Duration::seconds(1), 100, Duration::minutes(1))
        .await
        .expect("claimed");
    assert!(ours(&before).is_none(), "not due before its next attempt");
    let due = store
        .deliveries
        .claim_due(retry_at, 100, Duration::minutes(1))
        .await
        .expect("claimed");
    let due = ours(&due).expect("due at its next attempt");
    assert_eq!(due.attempts, 1);
    let gave_up = DeliveryOutcome {
        at: now(),
        status: DeliveryStatus::Failed,
        status_code: None,
        error: Some("This address is not allowed".to_owned()),
        next_attempt_at: None,
    };
    assert_eq!(
        store.deliveries.settle(due.id, due.claim, gave_up).await,
        Ok(true)
    );
    let shown = deliveries_of(store, &everything, EventAction::OrganizationUpdated).await;
    assert_eq!(shown[0].status, DeliveryStatus::Failed);
    assert_eq!(shown[0].attempts, 2);
    assert_eq!(shown[0].last_status_code, None);
    assert_eq!(
        shown[0].last_error.as_deref(),
        Some("This address is not allowed")
    );
    assert_eq!(shown[0].next_attempt_at, None);

    assert_eq!(
        store
            .webhooks
            .retry_delivery(everything.id, due.id, retry_at)
            .await,
        Ok(true)
    );
    let shown = deliveries_of(store, &everything, EventAction::OrganizationUpdated).await;
    assert_eq!(shown[0].status, DeliveryStatus::Pending);
    assert_eq!(shown[0].attempts, 0);
    let retried = store
        .deliveries
        .claim_due(retry_at, 100, Duration::minutes(1))
        .await
        .expect("claimed");
    assert!(ours(&retried).is_some(), "queued again at once");
    assert_eq!(
        store
            .deliveries
            .settle(
                due.id,
                due.claim,
                DeliveryOutcome {
                    at: now(),
                    status: DeliveryStatus::Delivered,
                    status_code: Some(200),
                    error: None,
                    next_attempt_at: None,
                }
            )
            .await,
        Ok(false),
        "a claim from before the manual retry settles nothing"
    );
}

/// An inactive or deleted webhook gets nothing new and its pending deliveries go.
pub async fn deactivating_or_deleting_a_webhook_drops_its_pending_deliveries(store: &Store) {
    let parent = root(store, "Dropped").await;
    let paused = webhook(store, &parent, vec![EventPattern::All], true).await;
    let deleted = webhook(store, &parent, vec![EventPattern::All], true).await;
    update(store, &parent).await;
    assert!(!deliveries(store, &paused).await.is_empty());

    let mut inactive = paused.clone();
    inactive.active = false;
    assert_eq!(store.webhooks.update(&inactive, None).await, Ok(true));
    update(store, &parent).await;
    let removal = NewEvent::by_operator(
        EventAction::WebhookDeleted,
        EventOrganization::Existing(parent.id),
        EventTarget::Webhook(deleted.id),
        now(),
    );
    assert_eq!(
        store.webhooks.delete(parent.id, deleted.id, removal).await,
        Ok(true)
    );

    assert!(deliveries(store, &paused).await.is_empty());
    assert!(deliveries(store, &deleted).await.is_empty());
    assert_eq!(store.webhooks.find(parent.id, deleted.id).await, Ok(None));
    let claimed = store
        .deliveries
        .claim_due(now() + Duration::seconds(1), 1000, Duration::minutes(1))
        .await
        .expect("claimed");
    assert!(claimed.is_empty(), "{claimed:?}");
    assert_eq!(store.deliveries.backlog().await, Ok(0));
}

/// Twelve simultaneous creations in one organization make exactly ten webhooks.
pub async fn an_organization_has_at_most_ten_webhooks_even_under_concurrency(store: &Store) {
    let parent = root(store, "Crowded").await;
    let attempts = (0..12).map(|_| {
        let store = store.clone();
        let parent = parent.clone();
        async move {
            store
                .webhooks
                .create(
                    parent.id,
                    fields(vec![EventPattern::All], true),
                    &WebhookSecret::from_stored("whsec_c2VjcmV0".to_owned()),
                    created(&parent),
                )
                .await
        }
    });
    let results = futures::future::join_all(attempts).await;

    let made = results.iter().filter(|result| result.is_ok()).count();
    let refused = results
        .iter()
        .filter(|result| matches!(result, Err(CreateWebhookError::TooMany)))
        .count();
    assert_eq!((made, refused), (10, 2), "{results:?}");
    let listed = store
        .webhooks
        .list(parent.id, PageRequest::new(1, 50))
        .await
        .expect("listed");
    assert_eq!(listed.total, 10);
}

/// Two workers claiming at once get every delivery exactly once.
pub async fn two_workers_claim_each_delivery_exactly_once(store: &Store) {
    let parent = root(store, "Raced").await;
    webhook(store, &parent, vec![EventPattern::All], true).await;
    for _ in 0..100 {
        update(store, &parent).await;
    }
    let at = now() + Duration::seconds(1);
    let worker = |store: Store| async move {
        let mut seen = Vec::new();
        loop {
            let claimed = store
                .deliveries
                .claim_due(at, 7, Duration::minutes(5))
                .await
                .expect("claimed");
            if claimed.is_empty() {
                return seen;
            }
            seen.extend(claimed.into_iter().map(|due| due.id));
        }
    };

    let (left, right) = futures::join!(worker(store.clone()), worker(store.clone()));

    let mut all = left;
    all.extend(right);
    let distinct: HashSet<_> = all.iter().copied().collect();
    assert_eq!(all.len(), distinct.len(), "a delivery was claimed twice");
    // The hundred updates, and the webhook's own `webhook.created`.
    assert_eq!(all.len(), 101);
}

/// Settles every pending delivery of `hook` as `status`, as if at `at`.
async fn settle_all(store: &Store, hook: &Webhook, status: DeliveryStatus, at: Timestamp) {
    let claimed = store
        .deliveries
        .claim_due(now() + Duration::seconds(1), 1000, Duration::minutes(1))
        .await
        .expect("claimed");
    let theirs: HashSet<_> = deliveries(store, hook)
        .await
        .into_iter()
        .map(|delivery| delivery.id)
        .collect();
    assert!(
        claimed.iter().any(|due| theirs.contains(&due.id)),
        "nothing of the webhook's to settle"
    );
    for due in claimed {
        let settled = if theirs.contains(&due.id) {
            DeliveryOutcome {
                at,
                status,
                status_code: Some(200),
                error: None,
                next_attempt_at: None,
            }
        } else {
            // Another webhook's: back to pending, as it was.
            store
                .deliveries
                .release(due.id, due.claim)
                .await
                .expect("released");
            continue;
        };
        assert_eq!(
            store.deliveries.settle(due.id, due.claim, settled).await,
            Ok(true)
        );
    }
}

/// Pruning deletes the deliveries delivered or failed strictly before the cut, counted
/// from when they were settled, and never a pending one however old.
pub async fn pruning_deletes_deliveries_settled_before_the_cut_and_never_pending_ones(
    store: &Store,
) {
    let parent = root(store, "Pruned deliveries").await;
    let delivered = webhook(store, &parent, vec![EventPattern::All], true).await;
    let failed = webhook(store, &parent, vec![EventPattern::All], true).await;
    let recent = webhook(store, &parent, vec![EventPattern::All], true).await;
    let waiting = webhook(store, &parent, vec![EventPattern::All], true).await;
    update(store, &parent).await;
    let old = now() - Duration::days(40);
    settle_all(store, &delivered, DeliveryStatus::Delivered, old).await;
    settle_all(store, &failed, DeliveryStatus::Failed, old).await;
    settle_all(store, &recent, DeliveryStatus::Delivered, now()).await;
    let before = [&delivered, &failed, &recent, &waiting];
    let mut counts = Vec::new();
    for hook in before {
        counts.push(deliveries(store, hook).await.len());
    }

    let pruned = store.deliveries.prune(now() - Duration::days(30)).await;
    let again = store.deliveries.prune(now() - Duration::days(30)).await;
    // A cut after every creation: the pending ones are still never deleted.
    let everything_old = store.deliveries.prune(now() + Duration::days(1)).await;

    // Each webhook got its own `webhook.created` and the other's later ones: every
    // delivery of the first two was settled 40 days ago.
    let expected = u64::try_from(counts[0] + counts[1]).expect("small");
    assert_eq!(pruned, Ok(expected));
    assert_eq!(again, Ok(0));
    assert!(deliveries(store, &delivered).await.is_empty());
    assert!(deliveries(store, &failed).await.is_empty());
    assert_eq!(everything_old, Ok(u64::try_from(counts[2]).expect("small")));
    assert!(deliveries(store, &recent).await.is_empty());
    let left = deliveries(store, &waiting).await;
    assert_eq!(left.len(), counts[3]);
    assert!(
        left.iter()
            .all(|delivery| delivery.status == DeliveryStatus::Pending)
    );
}

/// A manual retry makes a settled delivery pending again: the pruning no longer takes it,
/// until it is settled again and its new settlement is old enough.
pub async fn a_retried_delivery_counts_its_retention_from_its_new_settlement(store: &Store) {
    let parent = root(store, "Retried then pruned").await;
    let hook = webhook(store, &parent, vec![EventPattern::All], true).await;
    let old = now() - Duration::days(40);
    settle_all(store, &hook, DeliveryStatus::Failed, old).await;
    let settled = deliveries(store, &hook).await;
    assert_eq!(settled.len(), 1, "its own webhook.created");
    assert_eq!(
        store
            .webhooks
            .retry_delivery(hook.id, settled[0].id, now())
            .await,
        Ok(true)
    );

    let while_pending = store.deliveries.prune(now() - Duration::days(30)).await;
    settle_all(store, &hook, DeliveryStatus::Delivered, now()).await;
    let after_new_settlement = store.deliveries.prune(now() - Duration::days(30)).await;

    assert_eq!(while_pending, Ok(0));
    assert_eq!(after_new_settlement, Ok(0));
    let kept = deliveries(store, &hook).await;
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0].status, DeliveryStatus::Delivered);
}
