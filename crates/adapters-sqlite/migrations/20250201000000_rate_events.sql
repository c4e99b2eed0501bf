-- Counted events for the abuse limits (CONTRACT §5c), equivalent to the PostgreSQL
-- table. `at` is integer microseconds since the Unix epoch (UTC). See docs/storage.md.

create table rate_events (
    id integer primary key autoincrement,
    key text not null,
    at integer not null
) strict;

-- A key's events in a window (window, acquire).
create index rate_events_key_at_idx on rate_events (key, at);
-- Old events, for prune.
create index rate_events_at_idx on rate_events (at);
