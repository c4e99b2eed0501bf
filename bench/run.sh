#!/usr/bin/env bash
# `just bench`: measures `orgs serve` on PostgreSQL against the raw-SQL ceiling of the
# same statements (pgbench), then rewrites docs/benchmarks.md. See README.md, "Benchmarks".
#
# Settings (environment):
#   BENCH_DURATION      seconds per measurement                      (default 10)
#   BENCH_CONNECTIONS   concurrent connections / pgbench clients     (default 16)
#   BENCH_THREADS       wrk threads / pgbench threads                (default: nproc, at most 4)
#   BENCH_PG            server URL, without database                 (default postgres://postgres@127.0.0.1:5432)
#   BENCH_DATABASE      database to drop, create and fill            (default orgs_bench)
#   BENCH_KEEP          1: leave the database in place at the end    (default 0)
#   BENCH_POOLER_SIZE   PgBouncer's server connections in the process-count table (default 2 × nproc)
#   BENCH_PROCESSES_ONLY 1: seed, then only the process-count table (1, 2, 4 processes,
#                       directly and through PgBouncer); docs/benchmarks.md is left as is
#   BENCH_EVENTS_ONLY   1: seed, then only the audit-log and webhook cases (bench/events.sh);
#                       docs/benchmarks.md is left as is
#   BENCH_WEBHOOK_DELIVERIES, BENCH_WEBHOOK_RATE: see bench/events.sh
#   BENCH_BASELINE      0: skip the PUT of the build before the audit log (bench/events.sh)
#   BENCH_BASELINE_REV  that build's revision                         (default 440deb2)
#   BENCH_CALLGRIND     0: skip the instruction count (bench/callgrind.sh)  (default 1)
#   BENCH_RESULTS       a directory to keep the raw results in       (default: none)
#                       (python3 bench/report.py DIR docs/benchmarks.md redoes the report)
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)

DURATION=${BENCH_DURATION:-10}
CONNECTIONS=${BENCH_CONNECTIONS:-16}
THREADS=${BENCH_THREADS:-$(($(nproc) < 4 ? $(nproc) : 4))}
PG=${BENCH_PG:-postgres://postgres@127.0.0.1:5432}
DATABASE=${BENCH_DATABASE:-orgs_bench}
DB_URL="$PG/$DATABASE"
KEEP=${BENCH_KEEP:-0}

say() { printf 'bench: %s\n' "$*" >&2; }
die() { printf 'bench: error: %s\n' "$*" >&2; exit 1; }

# --- prerequisites --------------------------------------------------------------------

for tool in cargo psql pgbench python3 curl; do
  command -v "$tool" >/dev/null 2>&1 || die "$tool is missing (cargo from rustup; psql, pgbench from the postgresql-client package; python3; curl)"
done
if ! command -v wrk >/dev/null 2>&1; then
  say "installing wrk (Debian package)"
  if [ "$(id -u)" -eq 0 ]; then SUDO=""; elif command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
    die "wrk is missing and cannot be installed without root: apt-get install wrk"
  fi
  $SUDO apt-get update -qq >/dev/null && $SUDO apt-get install -y -qq wrk >/dev/null \
    || die "apt-get install wrk failed"
fi
psql "$PG/postgres" -XAtqc 'select 1' >/dev/null 2>&1 || die "PostgreSQL does not answer at $PG"

WORK=$(mktemp -d -t orgs-bench.XXXXXX)
SERVICE_PID=""
SAMPLER_PID=""
cleanup() {
  local status=$?
  declare -F stop_scaled >/dev/null && { stop_scaled; stop_bouncer; }
  declare -F stop_hooks >/dev/null && stop_hooks
  [ -n "$SAMPLER_PID" ] && kill "$SAMPLER_PID" 2>/dev/null || true
  if [ -n "$SERVICE_PID" ] && kill -0 "$SERVICE_PID" 2>/dev/null; then
    say "stopping the service"
    kill -TERM "$SERVICE_PID" 2>/dev/null || true
    wait "$SERVICE_PID" 2>/dev/null || true
  fi
  if [ "$KEEP" != 1 ]; then
    say "dropping database $DATABASE"
    psql "$PG/postgres" -XAtqc "drop database if exists $DATABASE with (force)" >/dev/null 2>&1 || true
  fi
  if [ -n "${BENCH_RESULTS:-}" ] && [ -d "$WORK/results" ]; then
    mkdir -p "$BENCH_RESULTS" && cp -r "$WORK/results/." "$BENCH_RESULTS/"
  fi
  rm -rf "$WORK"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- build ----------------------------------------------------------------------------

say "building: cargo build --release -p app"
cargo build --release -p app --quiet
ORGS="$ROOT/target/release/orgs"
[ -x "$ORGS" ] || die "the build did not produce target/release/orgs"
# shellcheck source=bench/events.sh
source bench/events.sh
build_baseline

# --- database -------------------------------------------------------------------------

say "creating database $DATABASE (dropped first if it exists)"
psql "$PG/postgres" -XAtq -v ON_ERROR_STOP=1 \
  -c "drop database if exists $DATABASE with (force)" -c "create database $DATABASE" >/dev/null
say "migrating: orgs migrate"
"$ORGS" migrate --database-url "$DB_URL" >/dev/null

# This run's API key for the root's first administrator: 32 random bytes, URL-safe base64
# without padding, stored as the SHA-256 hex digest of the token (domain::secret).
KEY=$(head -c 32 /dev/urandom | base64 -w0 | tr '+/' '-_' | tr -d '=')
KEY_HASH=$(printf '%s' "$KEY" | sha256sum | cut -d' ' -f1)

say "seeding: 1 root, 1,000 children, 10,000 users, 1,000,000 opt-outs"
seed_start=$(date +%s.%N)
psql "$DB_URL" -Xq -v admin_hash="$KEY_HASH" -f bench/seed.sql >/dev/null
seed_end=$(date +%s.%N)
say "seeded in $(python3 -c "print(f'{$seed_end - $seed_start:.1f}')") s"
# Write the seed's pages out now rather than during the measurements.
psql "$DB_URL" -Xqc checkpoint >/dev/null
# Counts are index-only scans only on pages VACUUM marked all-visible; a transaction open
# elsewhere on the server can keep it from doing so: try again, then say so.
all_visible() { psql "$DB_URL" -XAtc "select relallvisible >= relpages * 0.95 from pg_class where relname = 'opt_outs'"; }
if [ "$(all_visible)" != t ]; then
  psql "$DB_URL" -Xqc 'vacuum opt_outs' >/dev/null
  [ "$(all_visible)" = t ] || say "warning: opt_outs is not all-visible after VACUUM (an old transaction on the server?); counts will read the table"
fi
counts=$(psql "$DB_URL" -XAtc "select (select count(*) from organizations), (select count(*) from users), (select count(*) from opt_outs), (select count(*) from opt_outs where organization_id = 2)")
[ "$counts" = "1001|10000|1000000|200000" ] || die "unexpected seed counts: $counts"

# --- the service ----------------------------------------------------------------------

PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
BASE="http://127.0.0.1:$PORT"
say "starting orgs serve on $BASE"
ORGS_DATABASE_URL="$DB_URL" ORGS_LISTEN="127.0.0.1:$PORT" ORGS_LOG=warn \
  ORGS_INVITES_PER_RECIPIENT=1000000/1h ORGS_INVITES_PER_ORGANIZATION=1000000/1h \
  "$ORGS" serve >"$WORK/service.log" 2>&1 &
SERVICE_PID=$!
for _ in $(seq 1 100); do
  curl -fsS -o /dev/null "$BASE/readyz" 2>/dev/null && break
  kill -0 "$SERVICE_PID" 2>/dev/null || { cat "$WORK/service.log" >&2; die "the service exited"; }
  sleep 0.1
done
curl -fsS -o /dev/null "$BASE/readyz" || die "the service is not ready after 10 s"
curl -fsS -o /dev/null -H "Authorization: Bearer $KEY" "$BASE/organizations/2/" \
  || die "the seeded API key is refused"

# --- memory ---------------------------------------------------------------------------

# VmRSS of the service every 20 ms, one value (KiB) a line; a phase's peak is the maximum
# of its lines, together with VmHWM after resetting it at the phase's start
# (/proc/PID/clear_refs, where permitted).
(
  while [ -r "/proc/$SERVICE_PID/status" ]; do
    while read -r field value _; do
      [ "$field" = "VmRSS:" ] && { echo "$value"; break; }
    done <"/proc/$SERVICE_PID/status" || true
    sleep 0.02
  done
) >"$WORK/rss.samples" 2>/dev/null &
SAMPLER_PID=$!

# CPU time (clock ticks) the service has used so far.
service_ticks() { awk '{ print $14 + $15 }' "/proc/$SERVICE_PID/stat"; }
TICK=$(getconf CLK_TCK)
# Busy and total CPU ticks of the whole machine (all CPUs).
machine_ticks() { awk '$1 == "cpu" { print $2 + $3 + $4 + $7 + $8 + $9, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9 }' /proc/stat; }
# busy_share BEFORE -- the machine's busy share since BEFORE ("busy total"), in percent.
busy_share() {
  local before_busy before_total after_busy after_total
  read -r before_busy before_total <<<"$1"
  read -r after_busy after_total <<<"$(machine_ticks)"
  echo $(( (after_busy - before_busy) * 100 / (after_total - before_total) ))
}

status_kib() { awk -v f="$1:" '$1 == f { print $2 }' "/proc/$SERVICE_PID/status"; }
phase_begin() {
  PHASE_LINE=$(wc -l <"$WORK/rss.samples")
  echo 5 >"/proc/$SERVICE_PID/clear_refs" 2>/dev/null || true
}
phase_peak() { # prints the phase's peak RSS in KiB
  local hwm polled
  hwm=$(status_kib VmHWM)
  polled=$(tail -n +"$((PHASE_LINE + 1))" "$WORK/rss.samples" | sort -n | tail -n 1)
  echo $(( ${polled:-0} > ${hwm:-0} ? ${polled:-0} : ${hwm:-0} ))
}

# --- measurements ---------------------------------------------------------------------

RESULTS="$WORK/results"
mkdir -p "$RESULTS"
: >"$RESULTS/phases"

# measure NAME LABEL [RATE] -- run wrk with BENCH_* already exported for the route.
measure() {
  local name=$1 label=$2 rate=${3:-0}
  say "measuring $label: wrk, $CONNECTIONS connections, ${DURATION}s$([ "$rate" != 0 ] && echo ", paced at $rate req/s")"
  phase_begin
  local ticks_before machine_before
  ticks_before=$(service_ticks)
  machine_before=$(machine_ticks)
  BENCH_KEY="$KEY" BENCH_RATE="$rate" BENCH_THREADS="$THREADS" BENCH_RUN="$name-$$" \
    wrk -t "$THREADS" -c "$CONNECTIONS" -d "${DURATION}s" --timeout 10s \
    -s bench/wrk/request.lua "$BASE" >"$RESULTS/$name.wrk" 2>&1 \
    || die "wrk failed: $(tail -n 3 "$RESULTS/$name.wrk")"
  phase_peak >"$RESULTS/$name.rss"
  echo "$(( ($(service_ticks) - ticks_before) * 1000000 / TICK ))" >"$RESULTS/$name.cpu_us"
  busy_share "$machine_before" >"$RESULTS/$name.busy"
  printf '%s\t%s\t%s\n' "$name" "$label" "$rate" >>"$RESULTS/phases"
  grep '^bench:' "$RESULTS/$name.wrk" | sed "s/^bench:/bench:   /" >&2
}

# ceiling NAME SCRIPT -- the same statements through pgbench, same clients and duration.
ceiling() {
  local name=$1 script=$2
  say "measuring the raw-SQL ceiling of $name: pgbench -M prepared, $CONNECTIONS clients, ${DURATION}s"
  mkdir -p "$RESULTS/$name.pgbench.d"
  local machine_before
  machine_before=$(machine_ticks)
  (cd "$RESULTS/$name.pgbench.d" && pgbench -n -M prepared -c "$CONNECTIONS" -j "$THREADS" \
    -T "$DURATION" -l -D hash="$KEY_HASH" -D none=- -f "$ROOT/bench/pgbench/$script" \
    "$DB_URL") >"$RESULTS/$name.pgbench" 2>&1 \
    || die "pgbench failed: $(tail -n 3 "$RESULTS/$name.pgbench")"
  busy_share "$machine_before" >"$RESULTS/$name.pgbench.busy"
  grep -E '^tps' "$RESULTS/$name.pgbench" | sed 's/^/bench:    /' >&2
}

export BENCH_METHOD BENCH_PATH BENCH_BODY BENCH_ID_MIN BENCH_ID_MAX BENCH_ACCEPT BENCH_IDEMPOTENT
route() { BENCH_METHOD=$1; BENCH_PATH=$2; BENCH_ID_MIN=$3; BENCH_ID_MAX=$4; BENCH_BODY=${5:-}; BENCH_ACCEPT=application/json; BENCH_IDEMPOTENT=0; }

# shellcheck source=bench/processes.sh
source bench/processes.sh
stop_main_service() {
  kill -TERM "$SERVICE_PID" 2>/dev/null || true
  wait "$SERVICE_PID" 2>/dev/null || true
  SERVICE_PID=""
}
if [ "${BENCH_EVENTS_ONLY:-0}" = 1 ]; then
  events_start=$SECONDS
  measure_events
  stop_main_service
  measure_webhooks
  say "the audit-log and webhook cases took $((SECONDS - events_start)) s"
  exit 0
fi
if [ "${BENCH_PROCESSES_ONLY:-0}" = 1 ]; then
  kill -TERM "$SERVICE_PID" 2>/dev/null || true
  wait "$SERVICE_PID" 2>/dev/null || true
  SERVICE_PID=""
  measure_processes
  exit 0
fi

# Warm-up: a few seconds of the cheapest read, to fill the pool and PostgreSQL's cache.
route GET "/organizations/{id}/" 2 1001
say "warming up (3 s)"
BENCH_KEY="$KEY" BENCH_THREADS="$THREADS" wrk -t "$THREADS" -c "$CONNECTIONS" -d 3s \
  -s bench/wrk/request.lua "$BASE" >/dev/null 2>&1 || true

route GET "/organizations/{id}/" 2 1001
measure org_get "GET /organizations/{id}/"
ceiling org_get org_get.sql
PEAK=$(awk '$1 == "bench:" && $2 ~ /^requests=/ { split($2, r, "="); split($3, d, "="); printf "%d", r[2] / (d[2] / 1e6) }' "$RESULTS/org_get.wrk")
HALF=$((PEAK / 2))
[ "$HALF" -gt 0 ] || die "no throughput measured for GET /organizations/{id}/"
measure org_get_half "GET /organizations/{id}/ at half of peak" "$HALF"

route GET "/organizations/" 0 0
measure org_list "GET /organizations/ (page 1)"
ceiling org_list org_list.sql

route GET "/organizations/1/children/" 0 0
measure org_children "GET /organizations/1/children/ (page 1)"
ceiling org_children org_children.sql

route GET "/organizations/{id}/opt_outs/" 3 1001
measure optouts_page "GET /organizations/{id}/opt_outs/ (page 1)"
ceiling optouts_page optouts_page.sql

route PUT "/organizations/{id}/" 3 1001 \
  '{"name": "Child organization {id}", "contact_email": "child-{id}@bench.example.com", "settings": {"nickname": "bench-{id}", "notify_message_status": true}}'
measure org_put "PUT /organizations/{id}/"

route POST "/organizations/{id}/invite_user/" 3 1001 '{"identifier": "invitee-{n}@bench.example.com", "role": "users"}'
measure invite "POST /organizations/{id}/invite_user/"

# The same POST, each request with an Idempotency-Key of its own: the cost of the claim
# and of keeping the response (CONTRACT §12).
route POST "/organizations/{id}/invite_user/" 3 1001 '{"identifier": "invitee-{n}@bench.example.com", "role": "users"}'
BENCH_IDEMPOTENT=1
measure invite_idempotent "POST /organizations/{id}/invite_user/ with an Idempotency-Key"
BENCH_IDEMPOTENT=0

# The audit log's cases (bench/events.sh): PUT with and without its event, /events/ pages.
measure_events

# The CSV export of child 2's 200,000 opt-outs, timed end to end by curl, after one
# export unmeasured: the events' seeding above pushed the opt-outs' pages out of the
# caches, and the psql ceiling below reads them warm.
say "exporting child 2's opt-outs as CSV"
curl -fsS -o /dev/null -H "Authorization: Bearer $KEY" -H 'Accept: text/csv' \
  "$BASE/organizations/2/opt_outs/" || die "the warm-up CSV export failed"
BEFORE=$(status_kib VmRSS)
phase_begin
curl -fsS -H "Authorization: Bearer $KEY" -H 'Accept: text/csv' \
  -o "$WORK/export.csv" -w '%{time_total} %{size_download}\n' \
  "$BASE/organizations/2/opt_outs/" >"$RESULTS/export.curl" || die "the CSV export failed"
EXPORT_PEAK=$(phase_peak)
ROWS=$(($(wc -l <"$WORK/export.csv") - 1))
read -r EXPORT_SECONDS EXPORT_BYTES <"$RESULTS/export.curl"
# Its ceiling: the same select read by psql (which holds the whole result in memory).
ceiling_start=$(date +%s.%N)
psql "$DB_URL" -XAtq -o /dev/null -c "select id, organization_id, address, origin, creation_date from opt_outs where organization_id = 2 order by creation_date desc, id desc"
ceiling_end=$(date +%s.%N)
printf 'rows=%s seconds=%s bytes=%s rss_before_kib=%s rss_peak_kib=%s ceiling_seconds=%s\n' \
  "$ROWS" "$EXPORT_SECONDS" "$EXPORT_BYTES" "$BEFORE" "$EXPORT_PEAK" \
  "$(python3 -c "print($ceiling_end - $ceiling_start)")" >"$RESULTS/export"
say "exported $ROWS rows in ${EXPORT_SECONDS}s"
[ "$ROWS" -eq 200000 ] || die "the export returned $ROWS rows, not 200,000"

# --- evidence -------------------------------------------------------------------------

say "collecting EXPLAIN ANALYZE of the per-request statements"
python3 bench/explain.py "$DB_URL" "$KEY_HASH" >"$RESULTS/explain.txt" \
  || die "EXPLAIN failed"

status_kib VmHWM >"$RESULTS/vmhwm_total"
{
  echo "nproc=$(nproc)"
  echo "memory_kib=$(awk '/^MemTotal:/ { print $2 }' /proc/meminfo)"
  echo "cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)"
  echo "kernel=$(uname -r)"
  echo "postgres=$(psql "$DB_URL" -XAtc 'show server_version')"
  echo "date=$(date -u +%Y-%m-%dT%H:%MZ)"
  echo "commit=$(git describe --always --dirty 2>/dev/null || echo unknown)"
  echo "duration=$DURATION"
  echo "connections=$CONNECTIONS"
  echo "threads=$THREADS"
  echo "seed_seconds=$(python3 -c "print(f'{$seed_end - $seed_start:.1f}')")"
} >"$RESULTS/machine"

# The webhook cases and the process-count table, with the main service stopped (it
# would share the CPUs, and its webhook worker refuses the local receiver).
stop_main_service
measure_webhooks

# Instructions per GET /organizations/{id}/, counted by callgrind (a count the noise of
# the machine does not change); BENCH_CALLGRIND=0 skips it.
if [ "${BENCH_CALLGRIND:-1}" != 0 ]; then
  say "counting instructions per GET /organizations/{id}/ (bench/callgrind.sh)"
  BENCH_CALLGRIND_OUT="$RESULTS/callgrind" bash bench/callgrind.sh >/dev/null \
    || die "bench/callgrind.sh failed"
fi
measure_processes

python3 bench/report.py "$RESULTS" docs/benchmarks.md
say "wrote docs/benchmarks.md"
