-- Webhooks (CONTRACT §14) and their deliveries, queued in the transaction of the event
-- they carry. See docs/webhooks.md.

alter table events drop constraint events_target_kind_check;
alter table events add constraint events_target_kind_check
    check (target_kind in ('organization', 'member', 'invitation', 'webhook'));

create table webhooks (
    id bigint generated always as identity primary key,
    organization_id bigint not null references organizations (id) on delete cascade,
    endpoint text not null,
    -- The patterns as written, comma-separated (`member.*,organization.updated`).
    events text not null,
    description text not null,
    active boolean not null,
    -- `whsec_…`: it signs every delivery, so it is kept as it is.
    secret text not null,
    created_at timestamptz not null
);

create index webhooks_organization_idx on webhooks (organization_id, id);

-- One row per pattern, as a `like` pattern (`%`, `member.%`, `api\_key.created`): the
-- statement that records an event matches them.
create table webhook_patterns (
    webhook_id bigint not null references webhooks (id) on delete cascade,
    pattern text not null,
    primary key (webhook_id, pattern)
);

create table webhook_deliveries (
    id bigint generated always as identity primary key,
    webhook_id bigint not null references webhooks (id) on delete cascade,
    event_id bigint not null references events (id) on delete cascade,
    status text not null check (status in ('pending', 'delivered', 'failed')),
    attempts integer not null default 0,
    last_status_code integer,
    last_error text,
    -- Set while pending.
    next_attempt_at timestamptz,
    locked_until timestamptz,
    claims bigint not null default 0,
    created_at timestamptz not null,
    constraint webhook_deliveries_pending_due check ((status = 'pending') = (next_attempt_at is not null))
);

-- A webhook's deliveries, newest first.
create index webhook_deliveries_webhook_newest_idx on webhook_deliveries (webhook_id, id desc);
-- The worker's claim.
create index webhook_deliveries_due_idx on webhook_deliveries (next_attempt_at, id)
    where status = 'pending';
create index webhook_deliveries_event_idx on webhook_deliveries (event_id);
