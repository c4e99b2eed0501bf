-- Idempotency keys of POST requests and the responses kept for their replays
-- (CONTRACT §12). See docs/idempotency.md.

create table idempotency_keys (
    -- Keys are scoped to the user; a removed user's keys go with them.
    user_id bigint not null references users (id) on delete cascade,
    key text not null,
    -- SHA-256 hex digest of the method, path and canonical body.
    fingerprint text not null,
    -- Counts the claims of the key: a claim that another one took over changes nothing.
    attempt bigint not null,
    -- An unfinished claim holds the key until then (its process may have died).
    locked_until timestamptz not null,
    -- The key is forgotten then (ORGS_IDEMPOTENCY_TTL).
    expires_at timestamptz not null,
    -- The kept response, once the request finished: all three or none.
    response_status bigint,
    response_headers text,
    response_body bytea,
    primary key (user_id, key),
    constraint idempotency_keys_response_whole check (
        (response_status is null) = (response_headers is null)
        and (response_status is null) = (response_body is null)
    )
);

-- Expired keys, for prune.
create index idempotency_keys_expires_at_idx on idempotency_keys (expires_at);
