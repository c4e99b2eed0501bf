-- GET /organizations/{id}/opt_outs/ (page 1 of 50, no filter): authenticate, find, count, the page.
-- The statements of the PostgreSQL adapter (crates/adapters-postgres/src), in order; run with
-- pgbench -M prepared (bound parameters, as sqlx) and -D hash=<the administrator's token hash>.
-- The service binds NULL for the absent filters; pgbench cannot bind NULL, so nullif(:none, '-')
-- with -D none=- stands for it: the same value, folded the same way in custom plans.
\set id random(3, 1001)
select u.id, u.organization_id, u.identifier, u.first_name, u.last_name, u.role, u.is_active, u.created_at, o.parent_id
  from credentials c
  join users u on u.id = c.user_id
  join organizations o on o.id = u.organization_id
 where c.token_hash = :hash and (c.expires_at is null or c.expires_at > now())
   and u.is_active and o.archived_at is null;
select id, parent_id, name, contact_email, nickname, notify_message_status, notify_optouts, external_optout_message, can_attach_files, can_external_optout, version, created_at, updated_at
  from organizations where id = :id and archived_at is null;
select count(*) from opt_outs where organization_id = :id and (nullif(:none, '-')::text is null or address = nullif(:none, '-'))
   and (nullif(:none, '-')::text is null or origin = nullif(:none, '-'));
select id, organization_id, address, origin, creation_date from opt_outs
 where organization_id = :id and (nullif(:none, '-')::text is null or address = nullif(:none, '-'))
   and (nullif(:none, '-')::text is null or origin = nullif(:none, '-'))
 order by creation_date desc, id desc limit 50 offset 0;
