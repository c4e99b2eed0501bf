-- The audit-log cases' dataset (bench/events.sh), on top of bench/seed.sql:
-- 1,000,000 events of child 2 (root 1), one a second up to now, four actions in turn,
-- made by the root's administrator (user 1).
\set ON_ERROR_STOP on

insert into events (action, actor_id, actor_organization_id, actor_identifier,
                    organization_id, root_organization_id, target_kind, target_id,
                    changes, request_id, created_at)
select (array['organization.updated', 'member.role_changed', 'invitation.created',
              'member.removed'])[n % 4 + 1],
       1, 1, 'admin@bench.example.com', 2, 1, 'organization', 2,
       '{"name": ["Before", "After"]}', 'bench-' || n,
       now() - (1000000 - n) * interval '1 second'
from generate_series(1, 1000000) as n;

vacuum analyze events;
