-- The audit log (CONTRACT §13): one row per change, written in the change's transaction.
-- It is also the event stream webhooks read. See docs/audit.md.
-- Instants are integer microseconds since the Unix epoch (UTC), as elsewhere.

create table events (
    id integer primary key autoincrement,
    action text not null,
    -- The user who acted (no foreign key: the id stays when the user is removed, and
    -- `actor_identifier` keeps who it was); null for operator commands.
    actor_id integer,
    actor_organization_id integer,
    actor_identifier text not null,
    organization_id integer not null references organizations (id) on delete cascade,
    -- The organization's root (itself for a root), so that a root's list, children
    -- included, reads one index.
    root_organization_id integer not null references organizations (id) on delete cascade,
    target_kind text check (target_kind in ('organization', 'member', 'invitation')),
    target_id integer,
    -- A JSON object: {"field": [before, after]}. Never a secret.
    changes text not null,
    request_id text,
    created_at integer not null,
    constraint events_actor_complete check ((actor_id is null) = (actor_organization_id is null)),
    constraint events_target_complete check ((target_kind is null) = (target_id is null))
) strict;

-- A root's list (its children's events included), newest first.
create index events_root_newest_idx on events (root_organization_id, id desc);
-- A child's list, newest first.
create index events_organization_newest_idx on events (organization_id, id desc);
-- Retention.
create index events_created_at_idx on events (created_at);
