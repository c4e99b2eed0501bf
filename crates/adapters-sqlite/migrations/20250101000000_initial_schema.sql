-- The organizations service's schema, equivalent to the PostgreSQL one. Instants are
-- integer microseconds since the Unix epoch (UTC); booleans are 0 or 1. See
-- docs/storage.md for how each invariant is held.

create table organizations (
    id integer primary key autoincrement,
    parent_id integer references organizations (id),
    name text not null,
    contact_email text,
    nickname text not null default '',
    notify_message_status integer not null default 1 check (notify_message_status in (0, 1)),
    notify_optouts integer not null default 0 check (notify_optouts in (0, 1)),
    external_optout_message text not null default '',
    can_attach_files integer not null default 0 check (can_attach_files in (0, 1)),
    can_external_optout integer not null default 0 check (can_external_optout in (0, 1)),
    version integer not null default 1,
    created_at integer not null,
    updated_at integer not null,
    archived_at integer,
    constraint organizations_not_own_parent check (parent_id is null or parent_id <> id),
    constraint organizations_only_children_archived check (archived_at is null or parent_id is not null)
) strict;

-- The live children of a parent, by id (list_visible, list_children).
create index organizations_live_children_idx
    on organizations (parent_id, id) where archived_at is null;
-- Archived organizations, for purge.
create index organizations_archived_idx
    on organizations (archived_at) where archived_at is not null;

create table users (
    id integer primary key autoincrement,
    organization_id integer not null references organizations (id) on delete cascade,
    -- One user per identifier across the whole service, archived organizations included.
    identifier text not null unique,
    first_name text not null,
    last_name text not null,
    role text not null
        check (role in ('administrators', 'managers', 'users', 'collaborators')),
    password_hash text,
    is_active integer not null default 1 check (is_active in (0, 1)),
    created_at integer not null
) strict;

create index users_organization_idx on users (organization_id, id);

create table credentials (
    id integer primary key autoincrement,
    user_id integer not null references users (id) on delete cascade,
    kind text not null check (kind in ('api_key', 'session')),
    token_hash text not null unique,
    created_at integer not null,
    expires_at integer,
    constraint credentials_sessions_expire check ((kind = 'session') = (expires_at is not null))
) strict;

create index credentials_user_idx on credentials (user_id, kind);

create table invitations (
    id integer primary key autoincrement,
    organization_id integer not null references organizations (id) on delete cascade,
    identifier text not null,
    role text not null
        check (role in ('administrators', 'managers', 'users', 'collaborators')),
    invited_by integer references users (id) on delete set null,
    token_hash text not null unique,
    created_at integer not null,
    expires_at integer not null,
    accepted_at integer,
    revoked_at integer,
    -- Set on an expired, still open invitation when a new one for the same address is
    -- made or another one is revived: it then reports `expired` for good.
    superseded_at integer,
    constraint invitations_accepted_or_revoked check (accepted_at is null or revoked_at is null)
) strict;

-- At most one open (so at most one pending) invitation per organization and address.
create unique index invitations_one_open_idx
    on invitations (organization_id, identifier)
    where accepted_at is null and revoked_at is null and superseded_at is null;
-- An organization's invitations, newest first.
create index invitations_organization_newest_idx
    on invitations (organization_id, created_at desc, id desc);
create index invitations_invited_by_idx on invitations (invited_by);

create table opt_outs (
    id integer primary key autoincrement,
    organization_id integer not null references organizations (id) on delete cascade,
    address text not null,
    origin text not null
        check (origin in ('mail', 'web', 'feedback-loop', 'bounce', 'abuse', 'api')),
    creation_date integer not null,
    constraint opt_outs_organization_address_key unique (organization_id, address)
) strict;

-- An organization's opt-outs, newest first.
create index opt_outs_organization_newest_idx
    on opt_outs (organization_id, creation_date desc, id desc);

create table outbox (
    id integer primary key autoincrement,
    kind text not null check (kind in ('invitation', 'opt_out_notice')),
    recipient text not null,
    subject text not null,
    text_body text not null,
    html_body text not null,
    attempts integer not null default 0,
    created_at integer not null,
    next_attempt_at integer not null,
    locked_until integer,
    last_error text,
    delivered_at integer,
    dead_at integer
) strict;

-- Messages waiting for delivery, the earliest due first.
create index outbox_due_idx
    on outbox (next_attempt_at, id) where delivered_at is null and dead_at is null;
