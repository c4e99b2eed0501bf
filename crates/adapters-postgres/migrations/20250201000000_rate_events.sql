-- Counted events for the abuse limits (CONTRACT §5c). See docs/storage.md.

create table rate_events (
    id bigint generated always as identity primary key,
    key text not null,
    at timestamptz not null
);

-- A key's events in a window (window, acquire).
create index rate_events_key_at_idx on rate_events (key, at);
-- Old events, for prune.
create index rate_events_at_idx on rate_events (at);
