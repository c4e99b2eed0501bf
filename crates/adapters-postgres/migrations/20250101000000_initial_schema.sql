-- The organizations service's schema. See docs/storage.md for how each invariant is held.

create table organizations (
    id bigint generated always as identity primary key,
    parent_id bigint references organizations (id),
    name text not null,
    contact_email text,
    nickname text not null default '',
    notify_message_status boolean not null default true,
    notify_optouts boolean not null default false,
    external_optout_message text not null default '',
    can_attach_files boolean not null default false,
    can_external_optout boolean not null default false,
    version bigint not null default 1,
    created_at timestamptz not null,
    updated_at timestamptz not null,
    archived_at timestamptz,
    constraint organizations_not_own_parent check (parent_id is null or parent_id <> id),
    constraint organizations_only_children_archived check (archived_at is null or parent_id is not null)
);

-- The live children of a parent, by id (list_visible, list_children).
create index organizations_live_children_idx
    on organizations (parent_id, id) where archived_at is null;
-- Archived organizations, for purge.
create index organizations_archived_idx
    on organizations (archived_at) where archived_at is not null;

create table users (
    id bigint generated always as identity primary key,
    organization_id bigint not null references organizations (id) on delete cascade,
    -- One user per identifier across the whole service, archived organizations included.
    identifier text not null constraint users_identifier_key unique,
    first_name text not null,
    last_name text not null,
    role text not null
        check (role in ('administrators', 'managers', 'users', 'collaborators')),
    password_hash text,
    is_active boolean not null default true,
    created_at timestamptz not null
);

create index users_organization_idx on users (organization_id, id);

create table credentials (
    id bigint generated always as identity primary key,
    user_id bigint not null references users (id) on delete cascade,
    kind text not null check (kind in ('api_key', 'session')),
    token_hash text not null constraint credentials_token_hash_key unique,
    created_at timestamptz not null,
    expires_at timestamptz,
    constraint credentials_sessions_expire check ((kind = 'session') = (expires_at is not null))
);

create index credentials_user_idx on credentials (user_id, kind);

create table invitations (
    id bigint generated always as identity primary key,
    organization_id bigint not null references organizations (id) on delete cascade,
    identifier text not null,
    role text not null
        check (role in ('administrators', 'managers', 'users', 'collaborators')),
    invited_by bigint references users (id) on delete set null,
    token_hash text not null constraint invitations_token_hash_key unique,
    created_at timestamptz not null,
    expires_at timestamptz not null,
    accepted_at timestamptz,
    revoked_at timestamptz,
    -- Set on an expired, still open invitation when a new one for the same address is
    -- made or another one is revived: it then reports `expired` for good.
    superseded_at timestamptz,
    constraint invitations_accepted_or_revoked check (accepted_at is null or revoked_at is null)
);

-- At most one open (so at most one pending) invitation per organization and address.
create unique index invitations_one_open_idx
    on invitations (organization_id, identifier)
    where accepted_at is null and revoked_at is null and superseded_at is null;
-- An organization's invitations, newest first.
create index invitations_organization_newest_idx
    on invitations (organization_id, created_at desc, id desc);
create index invitations_invited_by_idx on invitations (invited_by);

create table opt_outs (
    id bigint generated always as identity primary key,
    organization_id bigint not null references organizations (id) on delete cascade,
    address text not null,
    origin text not null
        check (origin in ('mail', 'web', 'feedback-loop', 'bounce', 'abuse', 'api')),
    creation_date timestamptz not null,
    constraint opt_outs_organization_address_key unique (organization_id, address)
);

-- An organization's opt-outs, newest first.
create index opt_outs_organization_newest_idx
    on opt_outs (organization_id, creation_date desc, id desc);

create table outbox (
    id bigint generated always as identity primary key,
    kind text not null check (kind in ('invitation', 'opt_out_notice')),
    recipient text not null,
    subject text not null,
    text_body text not null,
    html_body text not null,
    attempts integer not null default 0,
    created_at timestamptz not null,
    next_attempt_at timestamptz not null,
    locked_until timestamptz,
    last_error text,
    delivered_at timestamptz,
    dead_at timestamptz
);

-- Messages waiting for delivery, the earliest due first.
create index outbox_due_idx
    on outbox (next_attempt_at, id) where delivered_at is null and dead_at is null;
