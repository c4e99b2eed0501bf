#!/usr/bin/env bash
# Instructions per `GET /organizations/{id}/` (or per GET of BENCH_CALLGRIND_PATH), counted
# by valgrind's callgrind in the service's own process: a count that does not depend on how
# busy the machine is.
#
# Seeds a small database (the root, 100 children, the administrator and its API key),
# starts the release build under `valgrind --tool=callgrind`, warms up with 200 requests,
# zeroes the counters (callgrind_control -z), sends BENCH_CALLGRIND_REQUESTS keep-alive
# authenticated GETs on one connection, dumps the counters (callgrind_control -d) and
# prints the instructions per request and the functions with the most inclusive cost.
#
# Settings (environment):
#   BENCH_PG                  server URL, without database   (default postgres://postgres@127.0.0.1:5432)
#   BENCH_CALLGRIND_DATABASE  database to drop, create, fill (default orgs_callgrind)
#   BENCH_CALLGRIND_REQUESTS  requests counted               (default 1000)
#   BENCH_CALLGRIND_OUT       file to write the summary to   (default: none)
#   BENCH_CALLGRIND_POOLER    ORGS_DATABASE_POOLER of the service (default none)
#   BENCH_CALLGRIND_PATH      the path every request GETs, e.g. /organizations/ (a page of 50:
#                             the root and 49 children) or /organizations/1/children/
#                             (default: /organizations/{id}/ of the children 2..101 in turn)
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)

PG=${BENCH_PG:-postgres://postgres@127.0.0.1:5432}
DATABASE=${BENCH_CALLGRIND_DATABASE:-orgs_callgrind}
DB_URL="$PG/$DATABASE"
REQUESTS=${BENCH_CALLGRIND_REQUESTS:-1000}
REQUEST_PATH=${BENCH_CALLGRIND_PATH:-}
LABEL='/organizations/{id}/'
[ -z "$REQUEST_PATH" ] || LABEL=$REQUEST_PATH

say() { printf 'callgrind: %s\n' "$*" >&2; }
die() { printf 'callgrind: error: %s\n' "$*" >&2; exit 1; }

for tool in cargo psql python3 curl; do
  command -v "$tool" >/dev/null 2>&1 || die "$tool is missing"
done
if ! command -v valgrind >/dev/null 2>&1 || ! command -v callgrind_control >/dev/null 2>&1; then
  say "installing valgrind (Debian package)"
  if [ "$(id -u)" -eq 0 ]; then SUDO=""; elif command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
    die "valgrind is missing and cannot be installed without root: apt-get install valgrind"
  fi
  $SUDO apt-get update -qq >/dev/null && $SUDO apt-get install -y -qq valgrind >/dev/null \
    || die "apt-get install valgrind failed"
fi
psql "$PG/postgres" -XAtqc 'select 1' >/dev/null 2>&1 || die "PostgreSQL does not answer at $PG"

WORK=$(mktemp -d -t orgs-callgrind.XXXXXX)
SERVICE_PID=""
cleanup() {
  local status=$?
  if [ -n "$SERVICE_PID" ] && kill -0 "$SERVICE_PID" 2>/dev/null; then
    kill -TERM "$SERVICE_PID" 2>/dev/null || true
    wait "$SERVICE_PID" 2>/dev/null || true
  fi
  psql "$PG/postgres" -XAtqc "drop database if exists $DATABASE with (force)" >/dev/null 2>&1 || true
  [ "${BENCH_CALLGRIND_KEEP:-0}" = 1 ] || rm -rf "$WORK"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say "building: cargo build --release -p app"
cargo build --release -p app --quiet
ORGS="$ROOT/target/release/orgs"

psql "$PG/postgres" -XAtq -v ON_ERROR_STOP=1 \
  -c "drop database if exists $DATABASE with (force)" -c "create database $DATABASE" >/dev/null
"$ORGS" migrate --database-url "$DB_URL" >/dev/null
KEY=$(head -c 32 /dev/urandom | base64 -w0 | tr '+/' '-_' | tr -d '=')
KEY_HASH=$(printf '%s' "$KEY" | sha256sum | cut -d' ' -f1)
psql "$DB_URL" -Xq -v ON_ERROR_STOP=1 -v admin_hash="$KEY_HASH" >/dev/null <<'SQL'
insert into organizations (parent_id, name, contact_email, created_at, updated_at)
values (null, 'Bench root', 'root@bench.example.com', now(), now());
insert into organizations (parent_id, name, contact_email, nickname, notify_message_status, created_at, updated_at)
select 1, 'Child organization ' || n, 'child-' || n || '@bench.example.com', 'child-' || n, n % 2 = 0, now(), now()
from generate_series(1, 100) as n;
insert into users (organization_id, identifier, first_name, last_name, role, created_at)
values (1, 'admin@bench.example.com', 'Ada', 'Lovelace', 'administrators', now());
insert into credentials (user_id, kind, token_hash, created_at, name)
values (1, 'api_key', :'admin_hash', now(), 'default');
vacuum analyze;
SQL

PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
BASE="http://127.0.0.1:$PORT"
say "starting orgs serve under callgrind on $BASE"
ORGS_DATABASE_URL="$DB_URL" ORGS_LISTEN="127.0.0.1:$PORT" ORGS_LOG=warn \
  ORGS_DATABASE_POOLER="${BENCH_CALLGRIND_POOLER:-none}" \
  valgrind --tool=callgrind --callgrind-out-file="$WORK/callgrind.out.%p" \
  "$ORGS" serve >"$WORK/service.log" 2>&1 &
SERVICE_PID=$!
for _ in $(seq 1 600); do
  curl -fsS -o /dev/null "$BASE/readyz" 2>/dev/null && break
  kill -0 "$SERVICE_PID" 2>/dev/null || { cat "$WORK/service.log" >&2; die "the service exited"; }
  sleep 0.1
done
curl -fsS -o /dev/null "$BASE/readyz" || die "the service is not ready after 60 s"

# Sends N keep-alive GETs on one connection (of REQUEST_PATH, or else of organizations
# 2..101 in turn); fails on any non-200.
send() {
  python3 - "$PORT" "$KEY" "$1" "$REQUEST_PATH" <<'PY'
import http.client, sys
port, key, n, path = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4]
conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
headers = {"Authorization": "Bearer " + key, "Accept": "application/json"}
for i in range(n):
    conn.request("GET", path or f"/organizations/{2 + i % 100}/", headers=headers)
    response = conn.getresponse()
    response.read()
    if response.status != 200:
        sys.exit(f"GET answered {response.status}")
conn.close()
PY
}

say "warming up: 200 requests"
send 200
say "counting $REQUESTS requests"
callgrind_control -z "$SERVICE_PID" >/dev/null
send "$REQUESTS"
callgrind_control -d "$SERVICE_PID" >/dev/null
DUMP=$(ls -t "$WORK"/callgrind.out.* | head -n 1)
TOTAL=$(awk '/^(summary|totals):/ { print $2; exit }' "$DUMP")
[ -n "$TOTAL" ] || die "no totals in $DUMP"
PER=$((TOTAL / REQUESTS))
{
  echo "path=$LABEL"
  echo "requests=$REQUESTS"
  echo "instructions=$TOTAL"
  echo "instructions_per_request=$PER"
  echo "commit=$(git describe --always --dirty 2>/dev/null || echo unknown)"
  # The runtime's and hyper's frames include everything; the service's own code, the
  # driver, serialization and the allocator say where the instructions go.
  echo "# top inclusive functions (the service, sqlx, serde_json, tracing, malloc), per request"
  callgrind_annotate --inclusive=yes "$DUMP" 2>/dev/null \
    | awk -v n="$REQUESTS" '$2 ~ /^\(/ && $0 ~ /(adapters_|app::|domain::|ports::|sqlx|serde_json|tracing|malloc|free)/ {
        gsub(",", "", $1); name = $0; sub(/^[^)]*\) +/, "", name); sub(/^\?\?\?:/, "", name); sub(/^.*malloc\.c:/, "libc:", name)
        if (!seen[name]++ && shown++ < 25) printf "%9d  %s\n", $1 / n, substr(name, 1, 140) }' || true
} >"$WORK/summary"
cat "$WORK/summary"
[ -z "${BENCH_CALLGRIND_OUT:-}" ] || cp "$WORK/summary" "$BENCH_CALLGRIND_OUT"
say "$PER instructions per GET $LABEL"
