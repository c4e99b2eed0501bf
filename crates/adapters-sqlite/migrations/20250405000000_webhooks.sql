-- Webhooks (CONTRACT §14) and their deliveries, queued in the transaction of the event
-- they carry. See docs/webhooks.md.
-- Instants are integer microseconds since the Unix epoch (UTC), as elsewhere.

-- Events may now target a webhook: SQLite cannot change a check, so the table is rebuilt.
create table events_rebuilt (
    id integer primary key autoincrement,
    action text not null,
    actor_id integer,
    actor_organization_id integer,
    actor_identifier text not null,
    organization_id integer not null references organizations (id) on delete cascade,
    root_organization_id integer not null references organizations (id) on delete cascade,
    target_kind text check (target_kind in ('organization', 'member', 'invitation', 'webhook')),
    target_id integer,
    changes text not null,
    request_id text,
    created_at integer not null,
    constraint events_actor_complete check ((actor_id is null) = (actor_organization_id is null)),
    constraint events_target_complete check ((target_kind is null) = (target_id is null))
) strict;

insert into events_rebuilt (id, action, actor_id, actor_organization_id, actor_identifier,
    organization_id, root_organization_id, target_kind, target_id, changes, request_id, created_at)
select id, action, actor_id, actor_organization_id, actor_identifier,
    organization_id, root_organization_id, target_kind, target_id, changes, request_id, created_at
from events;

drop table events;
alter table events_rebuilt rename to events;

create index events_root_newest_idx on events (root_organization_id, id desc);
create index events_organization_newest_idx on events (organization_id, id desc);
create index events_created_at_idx on events (created_at);

create table webhooks (
    id integer primary key autoincrement,
    organization_id integer not null references organizations (id) on delete cascade,
    endpoint text not null,
    -- The patterns as written, comma-separated (`member.*,organization.updated`).
    events text not null,
    description text not null,
    active integer not null check (active in (0, 1)),
    -- `whsec_…`: it signs every delivery, so it is kept as it is.
    secret text not null,
    created_at integer not null
) strict;

create index webhooks_organization_idx on webhooks (organization_id, id);

-- One row per pattern, as a `like` pattern (`%`, `member.%`, `api\_key.created`): the
-- statement that records an event matches them.
create table webhook_patterns (
    webhook_id integer not null references webhooks (id) on delete cascade,
    pattern text not null,
    primary key (webhook_id, pattern)
) strict;

create table webhook_deliveries (
    id integer primary key autoincrement,
    webhook_id integer not null references webhooks (id) on delete cascade,
    event_id integer not null references events (id) on delete cascade,
    status text not null check (status in ('pending', 'delivered', 'failed')),
    attempts integer not null default 0,
    last_status_code integer,
    last_error text,
    -- Set while pending.
    next_attempt_at integer,
    locked_until integer,
    claims integer not null default 0,
    created_at integer not null,
    constraint webhook_deliveries_pending_due check ((status = 'pending') = (next_attempt_at is not null))
) strict;

create index webhook_deliveries_webhook_newest_idx on webhook_deliveries (webhook_id, id desc);
create index webhook_deliveries_due_idx on webhook_deliveries (next_attempt_at, id)
    where status = 'pending';
create index webhook_deliveries_event_idx on webhook_deliveries (event_id);
