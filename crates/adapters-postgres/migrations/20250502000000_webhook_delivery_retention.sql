-- When a delivery was delivered or failed (null while pending): the upkeep deletes the
-- deliveries settled longer than ORGS_WEBHOOK_RETENTION ago (docs/webhooks.md). Those
-- settled before this column existed count from their creation.
alter table webhook_deliveries add column settled_at timestamptz;
update webhook_deliveries set settled_at = created_at where status <> 'pending';
create index webhook_deliveries_settled_idx on webhook_deliveries (settled_at)
    where status <> 'pending';
