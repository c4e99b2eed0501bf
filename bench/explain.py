#!/usr/bin/env python3
"""EXPLAIN (ANALYZE, BUFFERS) of the statements the measured requests run, as the
service runs them: prepared with bound parameters (as sqlx does), executed six times
first so that PostgreSQL has settled on its cached plan (custom or generic) before the
plan is shown.

Usage: explain.py DATABASE_URL ADMIN_TOKEN_HASH  (prints the plans on standard output)
"""

import subprocess
import sys

ORG_COLUMNS = (
    "id, parent_id, name, contact_email, nickname, notify_message_status, notify_optouts, "
    "external_optout_message, can_attach_files, can_external_optout, version, created_at, "
    "updated_at"
)
OPT_OUT_FILTER = (
    "organization_id = $1 and ($2::text is null or address = $2) "
    "and ($3::text is null or origin = $3)"
)

# The audit log's list (crates/adapters-sql/src/events.rs).
EVENT_COLUMNS = (
    "id, action, actor_id, actor_organization_id, actor_identifier, organization_id, "
    "target_kind, target_id, changes, request_id, created_at"
)
EVENT_FILTER = (
    "($2 is null or action = $2) and ($3 is null or action like $3 escape '\\') "
    "and ($4 is null or actor_id = $4) and ($5 is null or created_at >= $5) "
    "and ($6 is null or created_at < $6)"
)

# (title, parameter types, SQL, arguments) — the SQL as in crates/adapters-postgres/src.
STATEMENTS = [
    (
        "authenticate (every request)",
        "text, timestamptz",
        "select u.id, u.organization_id, u.identifier, u.first_name, u.last_name, u.role, "
        "u.is_active, u.created_at, o.parent_id, c.id as credential_id, "
        "c.kind as credential_kind, c.scope as credential_scope from credentials c "
        "join users u on u.id = c.user_id join organizations o on o.id = u.organization_id "
        "where c.token_hash = $1 and (c.expires_at is null or c.expires_at > $2) "
        "and u.is_active and o.archived_at is null",
        "{hash}, now()",
    ),
    (
        "organizations find (GET one, and every organization-scoped request)",
        "bigint",
        f"select {ORG_COLUMNS} from organizations where id = $1 and archived_at is null",
        "500",
    ),
    (
        "count of live children (lists)",
        "bigint",
        "select count(*) from organizations where parent_id = $1 and archived_at is null",
        "1",
    ),
    (
        "live children page (lists)",
        "bigint, bigint, bigint",
        f"select {ORG_COLUMNS} from organizations where parent_id = $1 and archived_at is null "
        "order by id limit $2 offset $3",
        "1, 50, 0",
    ),
    (
        "opt-outs count, a child with about 800",
        "bigint, text, text",
        f"select count(*) from opt_outs where {OPT_OUT_FILTER}",
        "500, null, null",
    ),
    (
        "opt-outs page, a child with about 800",
        "bigint, text, text, bigint, bigint",
        f"select id, organization_id, address, origin, creation_date from opt_outs "
        f"where {OPT_OUT_FILTER} order by creation_date desc, id desc limit $4 offset $5",
        "500, null, null, 50, 0",
    ),
    (
        "opt-outs count, the child with 200,000 (its page 1 pays this)",
        "bigint, text, text",
        f"select count(*) from opt_outs where {OPT_OUT_FILTER}",
        "2, null, null",
    ),
    (
        "opt-outs export, the child with 200,000",
        "bigint, text, text",
        f"select id, organization_id, address, origin, creation_date from opt_outs "
        f"where {OPT_OUT_FILTER} order by creation_date desc, id desc",
        "2, null, null",
    ),
    (
        "events count, child 2 with 1,000,000 events (its page 1 pays this)",
        "bigint, text, text, bigint, timestamptz, timestamptz",
        f"select count(*) from events where organization_id = $1 and {EVENT_FILTER}",
        "2, null, null, null, null, null",
    ),
    (
        "events cursor page among the oldest, child 2 with 1,000,000 events",
        "bigint, text, text, bigint, timestamptz, timestamptz, bigint, bigint",
        f"select {EVENT_COLUMNS} from events where organization_id = $1 and {EVENT_FILTER} "
        "and id < $7 order by id desc limit $8",
        "2, null, null, null, null, null, :deep_event, 51",
    ),
]


def main() -> None:
    url, token_hash = sys.argv[1], sys.argv[2]
    script = ["\\set ON_ERROR_STOP on", "\\pset pager off"]
    # A cursor among the oldest of child 2's events (bench/events.sh seeds them).
    script.append(
        "select coalesce(min(id), 0) + 50000 as deep_event from events "
        "where organization_id = 2 \\gset"
    )
    for number, (title, types, sql, arguments) in enumerate(STATEMENTS):
        arguments = arguments.replace("{hash}", "'" + token_hash + "'")
        name = f"s{number}"
        script.append(f"\\echo '-- {title}'")
        script.append(f"prepare {name} ({types}) as {sql};")
        script.append("\\o /dev/null")
        script.extend([f"execute {name} ({arguments});"] * 6)
        script.append("\\o")
        script.append(
            f"explain (analyze, buffers, costs off, timing on) execute {name} ({arguments});"
        )
        script.append("\\echo ''")
    output = subprocess.run(
        ["psql", url, "-X", "-q", "-A", "-t"],
        input="\n".join(script) + "\n",
        capture_output=True,
        text=True,
        check=False,
    )
    if output.returncode != 0:
        sys.stderr.write(output.stderr)
        sys.exit(1)
    sys.stdout.write(output.stdout)


if __name__ == "__main__":
    main()
