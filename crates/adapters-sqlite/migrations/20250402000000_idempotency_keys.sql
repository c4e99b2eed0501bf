-- Idempotency keys of POST requests and the responses kept for their replays
-- (CONTRACT §12), equivalent to the PostgreSQL table. Instants are integer microseconds
-- since the Unix epoch (UTC). See docs/idempotency.md.

create table idempotency_keys (
    -- Keys are scoped to the user; a removed user's keys go with them.
    user_id integer not null references users (id) on delete cascade,
    key text not null,
    -- SHA-256 hex digest of the method, path and canonical body.
    fingerprint text not null,
    -- Counts the claims of the key: a claim that another one took over changes nothing.
    attempt integer not null,
    -- An unfinished claim holds the key until then (its process may have died).
    locked_until integer not null,
    -- The key is forgotten then (ORGS_IDEMPOTENCY_TTL).
    expires_at integer not null,
    -- The kept response, once the request finished: all three or none.
    response_status integer,
    response_headers text,
    response_body blob,
    primary key (user_id, key),
    constraint idempotency_keys_response_whole check (
        (response_status is null) = (response_headers is null)
        and (response_status is null) = (response_body is null)
    )
) strict;

-- Expired keys, for prune.
create index idempotency_keys_expires_at_idx on idempotency_keys (expires_at);
