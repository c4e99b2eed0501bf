-- GET /organizations/1/children/ (page 1 of 50): authenticate, find, count the live children, the first 50.
-- The statements the PostgreSQL adapter ran for it before its reads were folded into fewer
-- statements (the ceiling docs/benchmarks.md compares with), in order; run with
-- pgbench -M prepared (bound parameters, as sqlx) and -D hash=<the administrator's token hash>.
\set id 1
select u.id, u.organization_id, u.identifier, u.first_name, u.last_name, u.role, u.is_active, u.created_at, o.parent_id
  from credentials c
  join users u on u.id = c.user_id
  join organizations o on o.id = u.organization_id
 where c.token_hash = :hash and (c.expires_at is null or c.expires_at > now())
   and u.is_active and o.archived_at is null;
select id, parent_id, name, contact_email, nickname, notify_message_status, notify_optouts, external_optout_message, can_attach_files, can_external_optout, version, created_at, updated_at
  from organizations where id = :id and archived_at is null;
select count(*) from organizations where parent_id = :id and archived_at is null;
select id, parent_id, name, contact_email, nickname, notify_message_status, notify_optouts, external_optout_message, can_attach_files, can_external_optout, version, created_at, updated_at
  from organizations where parent_id = :id and archived_at is null order by id limit 50 offset 0;
