# Sourced by bench/run.sh (it uses its say, die, measure, route, WORK, RESULTS, ORGS, KEY,
# PG, DB_URL, DURATION, CONNECTIONS, THREADS, BASE, SERVICE_PID): the audit log's and the
# webhooks' cases (docs/audit.md, docs/webhooks.md).
#
# measure_events (with the main service running):
#   - PUT /organizations/{id}/ whose every request changes the name, so writes an
#     `organization.updated` event (events_put), against the same PUT with the values
#     already stored, which runs the same update but records no event (events_put_same):
#     "a write that changes nothing records nothing", so the difference is the event's
#     insert (and its webhook matching), on the same build.
#   - /events/ of child 2 once it has 1,000,000 events (bench/seed_events.sql): page 1
#     with its count, the first cursor page and cursor pages among the oldest tenth (each
#     as fast as possible, then paced at half that rate for the latency target), and
#     numbered page 10,000 (offset 499,950) for contrast.
# measure_webhooks (after the main service stopped; its own service with
#   ORGS_WEBHOOK_ALLOW_PRIVATE=true and a receiver, bench/receiver.py):
#   - deliveries per second: BENCH_WEBHOOK_DELIVERIES (default 5000) pending deliveries
#     queued at once, drained by the worker to a receiver that answers 204;
#   - change-to-delivery delay: PUTs paced at BENCH_WEBHOOK_RATE per second (default 50)
#     for DURATION, each delivered; the delay is the receiver's arrival time minus the
#     event's `created_at` (the body's `timestamp`), same machine, same clock.
# Writes "$RESULTS/webhooks" (key=value) beside the wrk results of the phases above.

# The PUT from before the audit log, for its target ("within 10 % of today's PUT
# throughput"): BENCH_BASELINE_REV (default 440deb2, the last commit without the audit log)
# built once into target/bench-baseline (build_baseline, before any measurement), serving a
# database of its own seeded by its own bench/seed.sql, measured right after the PUT with
# its event, the two taking turns BENCH_BASELINE_ROUNDS times (default 3) for the report
# to compare medians. BENCH_BASELINE=0 leaves it out.
BASELINE_REV=${BENCH_BASELINE_REV:-440deb2}
BASELINE_ROUNDS=${BENCH_BASELINE_ROUNDS:-3}
BASELINE_ORGS=""
BASELINE_PID=""
BASELINE_DATABASE="${DATABASE}_before_audit"

WEBHOOK_DELIVERIES=${BENCH_WEBHOOK_DELIVERIES:-5000}
WEBHOOK_RATE=${BENCH_WEBHOOK_RATE:-50}
HOOK_SERVICE_PID=""
RECEIVER_PID=""

sql() { psql "$DB_URL" -XAtq -v ON_ERROR_STOP=1 -c "$1"; }

measure_events() {
  # Every child's stored values equal to the unchanged body, so that its PUTs record
  # nothing; checked below on one of them.
  local same='{"name": "Child organization {id}", "contact_email": "child-{id}@bench.example.com", "settings": {"nickname": "bench-{id}", "notify_message_status": true}}'
  sql "update organizations set name = 'Child organization ' || id, contact_email = 'child-' || id || '@bench.example.com', nickname = 'bench-' || id, notify_message_status = true where parent_id = 1" >/dev/null
  local before after
  before=$(sql "select count(*) from events where organization_id = 3")
  curl -fsS -o /dev/null -X PUT -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' \
    -d "${same//\{id\}/3}" "$BASE/organizations/3/" || die "the unchanged PUT failed"
  after=$(sql "select count(*) from events where organization_id = 3")
  [ "$before" = "$after" ] || die "an unchanged PUT recorded an event: the no-event case would not be one"

  route PUT "/organizations/{id}/" 3 1001 "$same"
  measure events_put_same "PUT /organizations/{id}/ with the stored values (no event)"
  route PUT "/organizations/{id}/" 3 1001 \
    '{"name": "Child organization {id} {n}", "contact_email": "child-{id}@bench.example.com", "settings": {"nickname": "bench-{id}", "notify_message_status": true}}'
  before=$(sql "select count(*) from events")
  measure events_put "PUT /organizations/{id}/ changing the name (one event each)"
  after=$(sql "select count(*) from events")
  [ "$after" -gt "$before" ] || die "the changing PUTs recorded no event"
  measure_baseline_put

  say "seeding 1,000,000 events for child 2"
  local start end
  start=$(date +%s.%N)
  psql "$DB_URL" -Xq -f bench/seed_events.sql >/dev/null || die "seeding the events failed"
  end=$(date +%s.%N)
  echo "events_seed_seconds=$(python3 -c "print(f'{$end - $start:.1f}')")" >>"$RESULTS/webhooks"
  say "seeded the events in $(python3 -c "print(f'{$end - $start:.1f}')") s"
  local oldest newest count
  read -r oldest newest count < <(sql "select min(id), max(id), count(*) from events where organization_id = 2" | tr '|' ' ')
  [ "$count" -ge 1000000 ] || die "child 2 has $count events, not 1,000,000"
  # The cursor at the 1,000,000th event's page: check the API walks it before measuring.
  local deep=$((oldest + 50000))
  local page
  page=$(curl -fsS -H "Authorization: Bearer $KEY" "$BASE/organizations/2/events/?cursor=$deep") \
    || die "a deep cursor page failed"
  python3 -c 'import json, sys; b = json.loads(sys.argv[1]); assert len(b["results"]) == 50 and "count" not in b and b["next"], b' "$page" \
    || die "a deep cursor page is not 50 events with a next link"

  route GET "/organizations/2/events/" 0 0
  measure events_page1 "GET /organizations/2/events/ (page 1 with count, 1,000,000 events)"
  route GET "/organizations/2/events/?cursor=" 0 0
  measure events_cursor1 "GET /organizations/2/events/?cursor= (first cursor page)"
  local first
  first=$(awk '$1 == "bench:" && $2 ~ /^requests=/ { split($2, r, "="); split($3, d, "="); printf "%d", r[2] / (d[2] / 1e6) }' "$RESULTS/events_cursor1.wrk")
  [ "$((first / 2))" -gt 0 ] || die "no throughput measured for the first cursor page"
  measure events_cursor1_half "GET /organizations/2/events/?cursor= (first cursor page) at half of peak" "$((first / 2))"
  route GET "/organizations/2/events/?cursor={id}" $((oldest + 51)) $((oldest + count / 10))
  measure events_cursor_deep "GET /organizations/2/events/?cursor={id} (among the oldest 100,000)"
  # Its latency at half of that throughput, as GET /organizations/{id}/ is measured: the
  # unpaced p99 is mostly the queue of 16 connections on the machine's CPUs.
  local peak
  peak=$(awk '$1 == "bench:" && $2 ~ /^requests=/ { split($2, r, "="); split($3, d, "="); printf "%d", r[2] / (d[2] / 1e6) }' "$RESULTS/events_cursor_deep.wrk")
  [ "$((peak / 2))" -gt 0 ] || die "no throughput measured for the deep cursor pages"
  measure events_cursor_deep_half "GET /organizations/2/events/?cursor={id} (among the oldest 100,000) at half of peak" "$((peak / 2))"
  route GET "/organizations/2/events/?page=10000" 0 0
  measure events_page_deep "GET /organizations/2/events/?page=10000 (offset 499,950, for contrast)"
}

# build_baseline -- builds BASELINE_REV's `orgs` into target/bench-baseline (kept between
# runs, so only the first run pays the build) and sets BASELINE_ORGS.
build_baseline() {
  [ "${BENCH_BASELINE:-1}" != 0 ] || return 0
  git -C "$ROOT" cat-file -e "$BASELINE_REV^{commit}" 2>/dev/null \
    || die "the baseline revision $BASELINE_REV is not in this clone (BENCH_BASELINE=0 skips it)"
  local source="$WORK/baseline-source" target="$ROOT/target/bench-baseline"
  mkdir -p "$source"
  git -C "$ROOT" archive "$BASELINE_REV" | tar -x -C "$source"
  say "building the PUT baseline, $BASELINE_REV (before the audit log), into $target"
  (cd "$source" && CARGO_TARGET_DIR="$target" cargo build --release -p app --quiet) \
    || die "the baseline $BASELINE_REV does not build"
  BASELINE_ORGS="$target/release/orgs"
}

# measure_baseline_put -- the changing PUT of events_put on BASELINE_REV's build, with the
# same data and key, while the main service idles.
measure_baseline_put() {
  [ -n "$BASELINE_ORGS" ] || return 0
  local url="$PG/$BASELINE_DATABASE" port base
  say "seeding $BASELINE_DATABASE for the baseline $BASELINE_REV"
  psql "$PG/postgres" -XAtq -v ON_ERROR_STOP=1 \
    -c "drop database if exists $BASELINE_DATABASE with (force)" \
    -c "create database $BASELINE_DATABASE" >/dev/null
  "$BASELINE_ORGS" migrate --database-url "$url" >/dev/null || die "the baseline's migrate failed"
  git -C "$ROOT" show "$BASELINE_REV:bench/seed.sql" \
    | psql "$url" -Xq -v admin_hash="$KEY_HASH" -f - >/dev/null || die "the baseline's seed failed"
  psql "$url" -XAtq -v ON_ERROR_STOP=1 -c checkpoint \
    -c "update organizations set name = 'Child organization ' || id, contact_email = 'child-' || id || '@bench.example.com', nickname = 'bench-' || id, notify_message_status = true where parent_id = 1" \
    -c "vacuum analyze" >/dev/null
  port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  base="http://127.0.0.1:$port"
  ORGS_DATABASE_URL="$url" ORGS_LISTEN="127.0.0.1:$port" ORGS_LOG=warn \
    "$BASELINE_ORGS" serve >"$WORK/baseline.log" 2>&1 &
  BASELINE_PID=$!
  for _ in $(seq 1 100); do
    curl -fsS -o /dev/null "$base/readyz" 2>/dev/null && break
    kill -0 "$BASELINE_PID" 2>/dev/null || { cat "$WORK/baseline.log" >&2; die "the baseline exited"; }
    sleep 0.1
  done
  curl -fsS -o /dev/null -H "Authorization: Bearer $KEY" "$base/organizations/2/" \
    || die "the baseline refuses the seeded key"
  # Synchronous commits make PUTs vary from one measurement to the next: the two builds
  # take turns, BASELINE_ROUNDS times each, and the report compares their medians (the
  # current build's first turn is events_put, measured above). measure reads the
  # service's CPU and memory and sends to BASE: the baseline's, during its turns.
  local main_pid=$SERVICE_PID main_base=$BASE round
  for round in $(seq 1 "$BASELINE_ROUNDS"); do
    SERVICE_PID=$BASELINE_PID
    BASE=$base
    measure "events_put_before_$round" "PUT /organizations/{id}/ changing the name, build $BASELINE_REV (before the audit log), turn $round"
    SERVICE_PID=$main_pid
    BASE=$main_base
    [ "$round" = "$BASELINE_ROUNDS" ] \
      || measure "events_put_again_$round" "PUT /organizations/{id}/ changing the name (one event each), turn $((round + 1))"
  done
  stop_baseline
}

stop_baseline() {
  if [ -n "$BASELINE_PID" ] && kill -0 "$BASELINE_PID" 2>/dev/null; then
    kill -TERM "$BASELINE_PID" 2>/dev/null || true
    wait "$BASELINE_PID" 2>/dev/null || true
  fi
  BASELINE_PID=""
  psql "$PG/postgres" -XAtqc "drop database if exists $BASELINE_DATABASE with (force)" >/dev/null 2>&1 || true
}

stop_hooks() {
  stop_baseline
  if [ -n "$HOOK_SERVICE_PID" ] && kill -0 "$HOOK_SERVICE_PID" 2>/dev/null; then
    kill -TERM "$HOOK_SERVICE_PID" 2>/dev/null || true
    wait "$HOOK_SERVICE_PID" 2>/dev/null || true
  fi
  HOOK_SERVICE_PID=""
  if [ -n "$RECEIVER_PID" ] && kill -0 "$RECEIVER_PID" 2>/dev/null; then
    kill -TERM "$RECEIVER_PID" 2>/dev/null || true
    wait "$RECEIVER_PID" 2>/dev/null || true
  fi
  RECEIVER_PID=""
}

# pending -- the deliveries still pending.
pending() { sql "select count(*) from webhook_deliveries where status = 'pending'"; }

# drain SECONDS -- waits until no delivery is pending, at most SECONDS.
drain() {
  local deadline=$((SECONDS + $1))
  while [ "$(pending)" != 0 ]; do
    [ "$SECONDS" -lt "$deadline" ] || die "deliveries still pending after $1 s: $(pending)"
    sleep 0.2
  done
}

measure_webhooks() {
  local port hook_port base log received
  port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  received="$WORK/received.tsv"
  python3 bench/receiver.py "$port" "$received" >"$WORK/receiver.out" 2>&1 &
  RECEIVER_PID=$!
  for _ in $(seq 1 50); do grep -q ready "$WORK/receiver.out" 2>/dev/null && break; sleep 0.1; done
  grep -q ready "$WORK/receiver.out" || die "the webhook receiver did not start: $(cat "$WORK/receiver.out")"

  hook_port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  base="http://127.0.0.1:$hook_port"
  log="$WORK/hooks-service.log"
  ORGS_DATABASE_URL="$DB_URL" ORGS_LISTEN="127.0.0.1:$hook_port" ORGS_LOG=warn \
    ORGS_WEBHOOK_ALLOW_PRIVATE=true "$ORGS" serve >"$log" 2>&1 &
  HOOK_SERVICE_PID=$!
  for _ in $(seq 1 100); do
    curl -fsS -o /dev/null "$base/readyz" 2>/dev/null && break
    kill -0 "$HOOK_SERVICE_PID" 2>/dev/null || { cat "$log" >&2; die "the webhook service exited"; }
    sleep 0.1
  done
  curl -fsS -o /dev/null "$base/readyz" || die "the webhook service is not ready after 10 s"

  # Created inactive, so that the deliveries queued below all start together.
  local hook
  hook=$(curl -fsS -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' \
    -d "{\"endpoint\": \"http://127.0.0.1:$port/\", \"events\": [\"organization.updated\"], \"active\": false}" \
    "$base/organizations/1/webhooks/") || die "creating the webhook failed"
  local hook_url hook_id
  hook_url=$(python3 -c 'import json, sys; print(json.loads(sys.argv[1])["url"])' "$hook")
  hook_id=$(basename "$hook_url")

  say "measuring webhook deliveries per second: $WEBHOOK_DELIVERIES queued at once"
  sql "insert into webhook_deliveries (webhook_id, event_id, status, attempts, next_attempt_at, created_at) select $hook_id, id, 'pending', 0, now(), now() from events where organization_id = 2 order by id desc limit $WEBHOOK_DELIVERIES" >/dev/null
  [ "$(pending)" = "$WEBHOOK_DELIVERIES" ] || die "queued $(pending) deliveries, not $WEBHOOK_DELIVERIES"
  local burst_start
  burst_start=$(date +%s.%N)
  curl -fsS -o /dev/null -X PATCH -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' \
    -d '{"active": true}' "$base$hook_url" || die "activating the webhook failed"
  drain 600
  local burst_end
  burst_end=$(date +%s.%N)

  say "measuring change-to-delivery delay: PUTs paced at $WEBHOOK_RATE/s for ${DURATION}s"
  local paced_start
  paced_start=$(date +%s.%N)
  route PUT "/organizations/{id}/" 3 1001 \
    '{"name": "Hooked organization {id} {n}", "contact_email": "child-{id}@bench.example.com", "settings": {"nickname": "bench-{id}", "notify_message_status": true}}'
  BENCH_KEY="$KEY" BENCH_RATE="$WEBHOOK_RATE" BENCH_THREADS=1 BENCH_RUN="hooks-$$" \
    wrk -t 1 -c 4 -d "${DURATION}s" --timeout 10s -s bench/wrk/request.lua "$base" \
    >"$RESULTS/webhooks_paced.wrk" 2>&1 || die "wrk failed: $(tail -n 3 "$RESULTS/webhooks_paced.wrk")"
  drain 120
  local failed
  failed=$(sql "select count(*) from webhook_deliveries where status = 'failed'")
  stop_hooks
  [ -s "$received" ] || die "the receiver recorded nothing"

  python3 - "$received" "$burst_start" "$burst_end" "$paced_start" "$WEBHOOK_DELIVERIES" "$failed" >>"$RESULTS/webhooks" <<'PY' || die "the webhook figures are incomplete"
import sys
received, burst_start, burst_end, paced_start, queued, failed = sys.argv[1:]
burst_start, burst_end, paced_start = float(burst_start), float(burst_end), float(paced_start)
rows = [line.split("\t") for line in open(received, encoding="utf-8").read().splitlines()]
rows = [(float(a), float(e), i) for a, e, i in rows]
burst = [r for r in rows if r[0] <= burst_end and r[1] < burst_start]
paced = [r for r in rows if r[1] >= paced_start]
assert len({r[2] for r in burst}) == int(queued), f"{len(burst)} of {queued} queued deliveries arrived"
assert paced, "no paced delivery arrived"
span = max(r[0] for r in burst) - min(r[0] for r in burst)
delays = sorted((a - e) * 1000 for a, e, _ in paced)
def pct(share):
    return delays[min(len(delays) - 1, max(0, round(share * len(delays)) - 1))]
print(f"burst_deliveries={len(burst)}")
print(f"burst_seconds={span:.3f}")
print(f"deliveries_per_s={len(burst) / span:.0f}")
print(f"paced_deliveries={len(paced)}")
print(f"delay_p50_ms={pct(0.5):.1f}")
print(f"delay_p99_ms={pct(0.99):.1f}")
print(f"delay_max_ms={delays[-1]:.1f}")
print(f"failed={failed}")
PY
  grep -E '^(deliveries_per_s|delay_p50_ms|delay_p99_ms)=' "$RESULTS/webhooks" | sed 's/^/bench:   /' >&2
}
