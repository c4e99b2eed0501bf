-- The outbox keeps no token at rest, counts its claims and is read through indexes
-- (CONTRACT §9). See docs/outbox.md.

-- Every claim counts one more: a worker may record an outcome only while its claim is
-- the latest one, so that a worker whose lease ran out cannot overwrite another's.
alter table outbox add column claims bigint not null default 0;

-- Delivered and dead messages keep no subject or body (an invitation's body holds its
-- token); from now on the adapter blanks them in the update that settles a message.
update outbox set subject = '', text_body = '', html_body = ''
where delivered_at is not null or dead_at is not null;

-- Dead messages: counted by /metrics, pruned after the retention.
create index outbox_dead_idx on outbox (dead_at) where dead_at is not null;
-- Delivered messages, pruned after the retention.
create index outbox_delivered_idx on outbox (delivered_at) where delivered_at is not null;
