-- Several named API keys per user, each `read` or `write`, with an optional expiry, the
-- first characters of the key and when it was last used (CONTRACT §11). Session tokens
-- stay in the same table with the `write` scope. See docs/api-keys.md.
--
-- SQLite cannot change a table's checks: the table is rebuilt with the PostgreSQL
-- schema's columns, in the same order. No other table refers to it.

create table credentials_new (
    id integer primary key autoincrement,
    user_id integer not null references users (id) on delete cascade,
    kind text not null check (kind in ('api_key', 'session')),
    token_hash text not null unique,
    created_at integer not null,
    expires_at integer,
    name text,
    scope text not null default 'write' check (scope in ('read', 'write')),
    prefix text,
    last_used_at integer,
    -- API keys may now expire; sessions still must.
    constraint credentials_sessions_expire check (kind = 'api_key' or expires_at is not null),
    constraint credentials_keys_named check ((kind = 'api_key') = (name is not null))
) strict;

-- The one key each user had so far is their `default` key; its prefix is unknown.
insert into credentials_new (id, user_id, kind, token_hash, created_at, expires_at, name, scope)
select id, user_id, kind, token_hash, created_at, expires_at,
       case when kind = 'api_key' then 'default' end, 'write'
from credentials;

drop table credentials;
alter table credentials_new rename to credentials;

create index credentials_user_idx on credentials (user_id, kind);
-- A name once among a user's keys: expired keys are deleted in the transaction that
-- makes a new one, so every stored key counts as live there.
create unique index credentials_key_name_idx
    on credentials (user_id, name) where kind = 'api_key';
-- A user's keys, newest first.
create index credentials_user_keys_newest_idx
    on credentials (user_id, created_at desc, id desc) where kind = 'api_key';
