-- The benchmark's dataset, on a freshly migrated database (ids start at 1):
--   organization 1, the root, and its 1,000 children (ids 2 to 1001);
--   10,000 users spread over them, each with an API key; user 1 is the first
--   administrator of the root and holds the run's key (:'admin_hash', its SHA-256 hex);
--   1,000,000 opt-outs: 200,000 for child 2 (the CSV export), 800,000 over the others.
-- Every value passes the domain's parsing (names, e-mail addresses, roles, origins).
\set ON_ERROR_STOP on
-- Commits stay synchronous: VACUUM marks pages all-visible (so that counts can be
-- index-only scans, as on a settled production table) only when the inserting
-- transaction's commit is flushed.

begin;

insert into organizations (parent_id, name, contact_email, created_at, updated_at)
values (null, 'Bench root', 'root@bench.example.com', now(), now());

insert into organizations (parent_id, name, contact_email, nickname, notify_message_status,
                           created_at, updated_at)
select 1, 'Child organization ' || n, 'child-' || n || '@bench.example.com',
       'child-' || n, n % 2 = 0, now() - n * interval '1 minute', now()
from generate_series(1, 1000) as n;

-- User 1: the root's first administrator. Then 9,999 users over all 1,001 organizations.
insert into users (organization_id, identifier, first_name, last_name, role, created_at)
values (1, 'admin@bench.example.com', 'Ada', 'Lovelace', 'administrators', now());

insert into users (organization_id, identifier, first_name, last_name, role, created_at)
select n % 1001 + 1, 'user-' || n || '@bench.example.com', 'User', 'Number ' || n,
       (array['administrators', 'managers', 'users', 'collaborators'])[n % 4 + 1],
       now() - n * interval '1 second'
from generate_series(1, 9999) as n;

-- API keys are stored as the SHA-256 hex digest of the token (domain::secret). Only the
-- administrator's token is known (it is this run's); the others are hashes of nothing
-- anybody holds.
insert into credentials (user_id, kind, token_hash, created_at, name)
select id, 'api_key',
       case when id = 1 then :'admin_hash'
            else encode(sha256(convert_to(gen_random_uuid()::text, 'UTF8')), 'hex') end,
       now(), 'default'
from users;

-- 200,000 opt-outs for child 2, newest first in creation_date order.
insert into opt_outs (organization_id, address, origin, creation_date)
select 2, 'reader-' || n || '@bench.example.com',
       (array['mail', 'web', 'feedback-loop', 'bounce', 'abuse', 'api'])[n % 6 + 1],
       now() - n * interval '1 second'
from generate_series(1, 200000) as n;

-- 800,000 over the 999 other children (ids 3 to 1001), about 800 each.
insert into opt_outs (organization_id, address, origin, creation_date)
select n % 999 + 3, 'reader-' || n || '@bench.example.com',
       (array['mail', 'web', 'feedback-loop', 'bounce', 'abuse', 'api'])[n % 6 + 1],
       now() - n * interval '1 second'
from generate_series(200001, 1000000) as n;

commit;

vacuum analyze;
