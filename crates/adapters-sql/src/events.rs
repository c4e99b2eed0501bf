//! The audit log on every SQL backend: events are inserted by the other repositories
//! inside their change's transaction ([`SqlStorage::record_event`]), and read and pruned
//! by `EventRepository`.

use std::sync::LazyLock;

use async_trait::async_trait;
use domain::audit::{
    ActionFilter, Event, EventAction, EventActor, EventFilter, EventOrganization, EventTarget,
    NewEvent, StoredTarget,
};
use domain::organization::TreeNode;
use domain::pagination::{Page, PageRequest};
use domain::user::MemberRef;
use domain::{EventId, InvitationId, OrganizationId, Timestamp, UserId, WebhookId};
use ports::outbound::{EventRepository, StorageError};
use sqlx::{ColumnIndex, Database, Decode, Encode, Executor, IntoArguments, Type};

use crate::instant::{StoredInstant, load};
use crate::paging::{page_bounds, page_of};
use crate::{Connection, Dialect, SqlStorage, stored};
use crate::{corrupt, storage_error};

/// The columns every event query reads, in `EventRow` order.
pub(crate) const EVENT_COLUMNS: &str = "id, action, actor_id, actor_organization_id, actor_identifier, \
     organization_id, target_kind, target_id, changes, request_id, created_at";

/// The filters, after the scope in `$1`: `$2` an action, `$3` a `like` pattern of a
/// prefix, `$4` the actor, `$5` since (inclusive), `$6` until (exclusive).
const FILTER: &str = "($2 is null or action = $2) \
     and ($3 is null or action like $3 escape '\\') \
     and ($4 is null or actor_id = $4) \
     and ($5 is null or created_at >= $5) \
     and ($6 is null or created_at < $6)";

/// The rows the storage call creates or acts on, which the use case could not name:
/// what `This…` placeholders of a `NewEvent` stand for. `organization` is the one the
/// call acts on (or creates), so that `ThisOrganization` always resolves.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Made {
    /// The organization created, or the one of the accepted invitation.
    pub organization: Option<OrganizationId>,
    /// The member created.
    pub member: Option<UserId>,
    /// The invitation created or accepted.
    pub invitation: Option<InvitationId>,
    /// The webhook created.
    pub webhook: Option<WebhookId>,
}

impl Made {
    /// A call that acts on `organization` and creates nothing.
    pub(crate) fn of(organization: OrganizationId) -> Self {
        Self {
            organization: Some(organization),
            ..Self::default()
        }
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct EventRow<I> {
    id: i64,
    action: String,
    actor_id: Option<i64>,
    actor_organization_id: Option<i64>,
    actor_identifier: String,
    organization_id: i64,
    target_kind: Option<String>,
    target_id: Option<i64>,
    changes: String,
    request_id: Option<String>,
    created_at: I,
}

impl<I: StoredInstant> TryFrom<EventRow<I>> for Event {
    type Error = StorageError;

    fn try_from(row: EventRow<I>) -> Result<Self, StorageError> {
        let id = row.id;
        let action = EventAction::parse(&row.action)
            .ok_or_else(|| corrupt("event", id, format!("unknown action {:?}", row.action)))?;
        let actor = match (row.actor_organization_id, row.actor_id) {
            (Some(organization), Some(user)) => Some(MemberRef {
                organization_id: OrganizationId::new(organization),
                user_id: UserId::new(user),
            }),
            _ => None,
        };
        let target = match (row.target_kind.as_deref(), row.target_id) {
            (None, _) => None,
            (Some("organization"), _) => Some(StoredTarget::Organization),
            (Some("member"), Some(user)) => Some(StoredTarget::Member(UserId::new(user))),
            (Some("invitation"), Some(invitation)) => {
                Some(StoredTarget::Invitation(InvitationId::new(invitation)))
            }
            (Some("webhook"), Some(webhook)) => {
                Some(StoredTarget::Webhook(WebhookId::new(webhook)))
            }
            (Some(kind), _) => return Err(corrupt("event", id, format!("target {kind:?}"))),
        };
        Ok(Event {
            id: EventId::new(id),
            action,
            actor,
            actor_identifier: row.actor_identifier,
            organization: OrganizationId::new(row.organization_id),
            target,
            changes: row.changes,
            request_id: row.request_id,
            created_at: load("event", id, row.created_at)?,
        })
    }
}

/// The column a list reads: a root's list `root_organization_id`, a child's
/// `organization_id`; each has its own (scope, id desc) index.
fn scope_of(organization: TreeNode) -> &'static str {
    if organization.parent.is_none() {
        "root_organization_id"
    } else {
        "organization_id"
    }
}

/// `$2` and `$3` of `FILTER`: an exact action, or a `like` pattern of a prefix.
fn action_binds(action: Option<&ActionFilter>) -> (Option<&'static str>, Option<String>) {
    match action {
        None => (None, None),
        Some(ActionFilter::Exactly(action)) => (Some(action.as_str()), None),
        Some(ActionFilter::Prefix(prefix)) => (None, Some(prefix_pattern(prefix))),
    }
}

/// A `like` pattern for names starting with `prefix`, its wildcards escaped.
pub(crate) fn prefix_pattern(prefix: &str) -> String {
    let mut pattern = String::with_capacity(prefix.len() + 1);
    for c in prefix.chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

/// Inserts an event whose organization is the row `o` of `source` (a table, or a `with`
/// clause's name, with `id` and `parent_id`) that `condition` keeps; its values are the binds
/// `$first` to `$first + 7`, in `EventBinds` order. `actor_identifier` is not null: an acting
/// user that does not exist fails the insert rather than being recorded as the operator.
fn insert_event(source: &str, condition: &str, first: usize) -> String {
    let [action, actor, operator, kind, target, changes, request, at] =
        std::array::from_fn(|i| format!("${}", first + i));
    format!(
        "insert into events (action, actor_id, actor_organization_id, actor_identifier, \
         organization_id, root_organization_id, target_kind, target_id, changes, request_id, \
         created_at) \
         select {action}, u.id, u.organization_id, \
         case when {actor} is null then {operator} else u.identifier end, \
         o.id, coalesce(o.parent_id, o.id), {kind}, {target}, {changes}, {request}, {at} \
         from {source} o left join users u on u.id = {actor} {condition} \
         returning id, organization_id, root_organization_id, action, created_at"
    )
}

/// An event of the organization `$9` (`insert_event`).
static INSERT_EVENT: LazyLock<String> =
    LazyLock::new(|| insert_event("organizations", "where o.id = $9", 1));

/// One delivery per active webhook of the events `e` (`{events}`, filtered by `{which}`)
/// of their organization or of its root whose patterns match, due at once (CONTRACT §14).
const DELIVERIES: &str = "insert into webhook_deliveries (webhook_id, event_id, status, \
     attempts, next_attempt_at, created_at) \
     select w.id, e.id, 'pending', 0, e.created_at, e.created_at \
     from {events} e join webhooks w \
     on w.organization_id = e.organization_id or w.organization_id = e.root_organization_id \
     where {which} w.active \
     and exists (select 1 from webhook_patterns p \
         where p.webhook_id = w.id and e.action like p.pattern escape '\\')";

/// `INSERT_EVENT` and its deliveries in one statement, where an `insert … returning` may
/// stand in a `with` clause (`Dialect::INSERT_IN_WITH`).
static EVENT_AND_DELIVERIES: LazyLock<String> = LazyLock::new(|| {
    let deliveries = DELIVERIES
        .replace("{events}", "inserted")
        .replace("{which}", "");
    format!(
        "with inserted as ({}), queued as ({deliveries}) select id from inserted",
        *INSERT_EVENT
    )
});

/// `change` (an `update … returning {columns}` whose rows carry `id` and `parent_id`, its
/// binds `$1` to `$first - 1`), the event of each row it changed and the event's webhook
/// deliveries, in one statement that answers the changed rows: a change and its event
/// without a transaction, where `Dialect::INSERT_IN_WITH`. A change that matches no row
/// records no event.
pub(crate) fn change_with_event(change: &str, columns: &str, first: usize) -> String {
    let deliveries = DELIVERIES
        .replace("{events}", "inserted")
        .replace("{which}", "");
    format!(
        "with changed as ({change}), inserted as ({}), queued as ({deliveries}) \
         select {columns} from changed",
        insert_event("changed", "", first)
    )
}

/// The deliveries of the event `$1`, once it is inserted.
static QUEUE_DELIVERIES: LazyLock<String> = LazyLock::new(|| {
    DELIVERIES
        .replace("{events}", "events")
        .replace("{which}", "e.id = $1 and")
});

/// An event's values as its insert binds them (`bind_event!`), its placeholders resolved.
pub(crate) struct EventBinds<'a> {
    pub action: &'static str,
    pub actor: Option<i64>,
    pub organization: i64,
    pub target_kind: Option<&'static str>,
    pub target_id: Option<i64>,
    pub changes: String,
    pub request_id: Option<&'a str>,
    pub at: Timestamp,
}

impl<'a> EventBinds<'a> {
    /// `event`'s values, its `This…` placeholders resolved from `made`.
    pub(crate) fn of(event: &'a NewEvent, made: Made) -> Result<Self, StorageError> {
        let unresolved = |what: &str| unresolved(event.action, what);
        let organization = match event.organization {
            EventOrganization::Existing(id) => id,
            EventOrganization::ThisOrganization => made
                .organization
                .ok_or_else(|| unresolved("organization"))?,
        };
        let actor = match event.actor {
            EventActor::Operator => None,
            EventActor::User(user) => Some(user),
            EventActor::ThisMember => Some(made.member.ok_or_else(|| unresolved("member"))?),
        };
        let (target_kind, target_id) = match event.target {
            EventTarget::None => (None, None),
            EventTarget::Organization => (Some("organization"), Some(organization.get())),
            EventTarget::Member(user) => (Some("member"), Some(user.get())),
            EventTarget::ThisMember => (
                Some("member"),
                Some(made.member.ok_or_else(|| unresolved("member"))?.get()),
            ),
            EventTarget::Invitation(invitation) => (Some("invitation"), Some(invitation.get())),
            EventTarget::ThisInvitation => (
                Some("invitation"),
                Some(
                    made.invitation
                        .ok_or_else(|| unresolved("invitation"))?
                        .get(),
                ),
            ),
            EventTarget::Webhook(webhook) => (Some("webhook"), Some(webhook.get())),
            EventTarget::ThisWebhook => (
                Some("webhook"),
                Some(made.webhook.ok_or_else(|| unresolved("webhook"))?.get()),
            ),
        };
        Ok(Self {
            action: event.action.as_str(),
            actor: actor.map(UserId::get),
            organization: organization.get(),
            target_kind,
            target_id,
            changes: event.changes.to_json(),
            request_id: event.request_id.as_ref().map(|id| id.as_str()),
            at: event.at,
        })
    }
}

/// The error of an event whose `what` is unknown.
fn unresolved(action: impl std::fmt::Display, what: &str) -> StorageError {
    StorageError::unexpected(format!("{action} event: the {what} it names is unknown"))
}

impl<D> SqlStorage<D>
where
    D: Dialect,
    for<'c> &'c mut Connection<D>: Executor<'c, Database = D::Db>,
    for<'q> <D::Db as Database>::Arguments<'q>: IntoArguments<'q, D::Db>,
    for<'q> i64: Encode<'q, D::Db> + Type<D::Db>,
    for<'q> &'q str: Encode<'q, D::Db> + Type<D::Db>,
    for<'q> Option<i64>: Encode<'q, D::Db>,
    for<'q> Option<&'q str>: Encode<'q, D::Db>,
    for<'r> i64: Decode<'r, D::Db>,
    usize: ColumnIndex<<D::Db as Database>::Row>,
{
    /// Inserts `event` inside the caller's transaction, its placeholders resolved from
    /// `made`. The actor's identifier and organization and the event's root are read in
    /// the same statement. Fails (so that the caller's transaction rolls back) when the
    /// organization or the acting user does not exist, or a placeholder is unresolved.
    pub(crate) async fn record_event(
        connection: &mut Connection<D>,
        event: &NewEvent,
        made: Made,
    ) -> Result<(), StorageError> {
        let binds = EventBinds::of(event, made)?;
        // One statement where the database allows it (`EVENT_AND_DELIVERIES`).
        let statement = if D::INSERT_IN_WITH {
            EVENT_AND_DELIVERIES.as_str()
        } else {
            INSERT_EVENT.as_str()
        };
        let inserted: Option<(i64,)> = bind_event!(sqlx::query_as(statement), binds)
            .bind(binds.organization)
            .fetch_optional(&mut *connection)
            .await
            .map_err(storage_error::<D>)?;
        let Some((event_id,)) = inserted else {
            return Err(unresolved(binds.action, "organization"));
        };
        if !D::INSERT_IN_WITH {
            sqlx::query(&QUEUE_DELIVERIES)
                .bind(event_id)
                .execute(&mut *connection)
                .await
                .map_err(storage_error::<D>)?;
        }
        Ok(())
    }

    /// Inserts each of `events` (see `record_event`).
    pub(crate) async fn record_events(
        connection: &mut Connection<D>,
        events: &[NewEvent],
        made: Made,
    ) -> Result<(), StorageError> {
        for event in events {
            Self::record_event(connection, event, made).await?;
        }
        Ok(())
    }
}

#[async_trait]
impl<D> EventRepository for SqlStorage<D>
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
    for<'r> Option<i64>: Decode<'r, D::Db>,
    for<'r> String: Decode<'r, D::Db> + Type<D::Db>,
    for<'r> Option<String>: Decode<'r, D::Db>,
    usize: ColumnIndex<<D::Db as Database>::Row>,
    for<'a> &'a str: ColumnIndex<<D::Db as Database>::Row>,
{
    #[tracing::instrument(skip_all, fields(db.system = D::NAME), err(level = "debug"))]
    async fn list(
        &self,
        organization: TreeNode,
        filter: EventFilter,
        page: PageRequest,
    ) -> Result<Page<Event>, StorageError> {
        let scope = scope_of(organization);
        let (limit, offset) = page_bounds(page);
        let (exact, pattern) = action_binds(filter.action.as_ref());
        let actor = filter.actor.map(UserId::get);
        let since = filter.since.map(stored::<D>);
        let until = filter.until.map(stored::<D>);
        let (total,): (i64,) = on_pool!(
            self,
            sqlx::query_as(&format!(
                "select count(*) from events where {scope} = $1 and {FILTER}"
            ))
            .bind(organization.id.get())
            .bind(exact)
            .bind(pattern.as_deref())
            .bind(actor)
            .bind(since)
            .bind(until),
            fetch_one
        )
        .map_err(storage_error::<D>)?;
        let rows: Vec<EventRow<D::Instant>> = on_pool!(
            self,
            sqlx::query_as(&format!(
                "select {EVENT_COLUMNS} from events where {scope} = $1 and {FILTER} \
             order by id desc limit $7 offset $8"
            ))
            .bind(organization.id.get())
            .bind(exact)
            .bind(pattern.as_deref())
            .bind(actor)
            .bind(since)
            .bind(until)
            .bind(limit)
            .bind(offset),
            fetch_all
        )
        .map_err(storage_error::<D>)?;
        page_of(rows, total, page)
    }

    #[tracing::instrument(skip_all, fields(db.system = D::NAME), err(level = "debug"))]
    async fn list_below(
        &self,
        organization: TreeNode,
        filter: EventFilter,
        below: Option<EventId>,
        limit: u64,
    ) -> Result<Vec<Event>, StorageError> {
        let scope = scope_of(organization);
        let (exact, pattern) = action_binds(filter.action.as_ref());
        // `id < $7` is written out (never `$7 is null or …`), so that even a generic
        // plan bounds the (scope, id desc) index range with it: a deep page reads
        // `limit` entries, not every entry above the cursor.
        let rows: Vec<EventRow<D::Instant>> = on_pool!(
            self,
            sqlx::query_as(&format!(
                "select {EVENT_COLUMNS} from events where {scope} = $1 and {FILTER} \
             and id < $7 order by id desc limit $8"
            ))
            .bind(organization.id.get())
            .bind(exact)
            .bind(pattern.as_deref())
            .bind(filter.actor.map(UserId::get))
            .bind(filter.since.map(stored::<D>))
            .bind(filter.until.map(stored::<D>))
            .bind(below.map_or(i64::MAX, EventId::get))
            .bind(i64::try_from(limit).unwrap_or(i64::MAX)),
            fetch_all
        )
        .map_err(storage_error::<D>)?;
        rows.into_iter().map(Event::try_from).collect()
    }

    #[tracing::instrument(skip_all, fields(db.system = D::NAME), err(level = "debug"))]
    async fn prune(&self, before: Timestamp) -> Result<u64, StorageError> {
        let pruned = on_pool!(
            self,
            sqlx::query("delete from events where created_at < $1").bind(stored::<D>(before)),
            execute
        )
        .map_err(storage_error::<D>)?;
        Ok(D::rows_affected(&pruned))
    }
}

#[cfg(test)]
mod tests {
    use super::prefix_pattern;

    #[test]
    fn a_prefix_pattern_escapes_like_wildcards() {
        assert_eq!(prefix_pattern("api_key."), "api\\_key.%");
        assert_eq!(prefix_pattern("member."), "member.%");
    }
}
