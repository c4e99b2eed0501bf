-- Every change writes its event in the change's statement (docs/audit.md, "What an event
-- costs"): two of the event's per-row costs that guarded nothing are dropped.
--
-- The root's key keeps no foreign key of its own. Checking it took a key-share lock on the
-- root's row for every event: a lock record in the WAL, and, with changes running at once
-- anywhere in the tree, a new multixact on that one row for each. The root always exists
-- while the event does: the event's own organization keeps its foreign key (on delete
-- cascade), a root is that organization or its parent (`organizations.parent_id`
-- references it without cascade), and only archived children are ever deleted.
alter table events drop constraint events_root_organization_id_fkey;

-- Retention reads `created_at < $1` once in ten minutes on an append-only table whose
-- rows arrive in `created_at` order: a BRIN summary of block ranges serves it, where a
-- b-tree paid an entry (and its WAL record) for every event.
drop index events_created_at_idx;
create index events_created_at_brin on events using brin (created_at);
