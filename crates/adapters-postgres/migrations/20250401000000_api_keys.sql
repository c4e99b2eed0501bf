-- Several named API keys per user, each `read` or `write`, with an optional expiry, the
-- first characters of the key and when it was last used (CONTRACT §11). Session tokens
-- stay in the same table with the `write` scope. See docs/api-keys.md.

alter table credentials
    add column name text,
    add column scope text not null default 'write' check (scope in ('read', 'write')),
    add column prefix text,
    add column last_used_at timestamptz;

-- The one key each user had so far is their `default` key; its prefix is unknown.
update credentials set name = 'default' where kind = 'api_key';

-- API keys may now expire; sessions still must.
alter table credentials drop constraint credentials_sessions_expire;
alter table credentials
    add constraint credentials_sessions_expire check (kind = 'api_key' or expires_at is not null),
    add constraint credentials_keys_named check ((kind = 'api_key') = (name is not null));

-- A name once among a user's keys: expired keys are deleted in the transaction that
-- makes a new one, so every stored key counts as live there.
create unique index credentials_key_name_idx
    on credentials (user_id, name) where kind = 'api_key';
-- A user's keys, newest first.
create index credentials_user_keys_newest_idx
    on credentials (user_id, created_at desc, id desc) where kind = 'api_key';
