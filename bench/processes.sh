# Sourced by bench/run.sh (it uses its say, die, WORK, RESULTS, ORGS, KEY, PG, DB_URL,
# DURATION, CONNECTIONS, THREADS): GET /organizations/{id}/ throughput with 1, 2 and 4
# `orgs serve` processes, straight to PostgreSQL and through PgBouncer in transaction
# mode (ORGS_DATABASE_POOLER=transaction). The same total load (CONNECTIONS connections)
# is split evenly over the processes, one wrk per process; the requests per second of the
# wrks are added up. Writes "$RESULTS/processes" (one line a measurement:
# `mode processes requests_per_s errors`) and prints the table.
#
#   BENCH_POOLER_SIZE   PgBouncer's server connections for the database (default 2 × nproc)

POOLER_SIZE=${BENCH_POOLER_SIZE:-$(($(nproc) * 2))}
BOUNCER_PID=""
SCALED_PIDS=()

stop_scaled() {
  local pid
  for pid in "${SCALED_PIDS[@]}"; do
    kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in "${SCALED_PIDS[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  SCALED_PIDS=()
}

stop_bouncer() {
  if [ -n "$BOUNCER_PID" ] && kill -0 "$BOUNCER_PID" 2>/dev/null; then
    kill -TERM "$BOUNCER_PID" 2>/dev/null || true
    wait "$BOUNCER_PID" 2>/dev/null || true
  fi
  BOUNCER_PID=""
}

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# Starts PgBouncer in transaction mode in front of $PG's server; sets BOUNCER_URL.
start_bouncer() {
  local bouncer dir port host server_port
  bouncer=$(command -v pgbouncer || echo /usr/sbin/pgbouncer)
  if [ ! -x "$bouncer" ]; then
    say "installing pgbouncer (Debian package)"
    if [ "$(id -u)" -eq 0 ]; then SUDO=""; elif command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
      die "pgbouncer is missing and cannot be installed without root: apt-get install pgbouncer"
    fi
    $SUDO apt-get update -qq >/dev/null && $SUDO apt-get install -y -qq pgbouncer >/dev/null \
      || die "apt-get install pgbouncer failed"
    bouncer=$(command -v pgbouncer || echo /usr/sbin/pgbouncer)
  fi
  read -r host server_port < <(python3 -c "import sys, urllib.parse as u; p = u.urlsplit(sys.argv[1]); print(p.hostname or '127.0.0.1', p.port or 5432)" "$PG")
  dir="$WORK/pgbouncer"
  mkdir -p "$dir"
  port=$(free_port)
  cat >"$dir/pgbouncer.ini" <<EOF
[databases]
* = host=$host port=$server_port

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $port
unix_socket_dir = $dir
pidfile = $dir/pgbouncer.pid
logfile = $dir/pgbouncer.log
auth_type = trust
auth_file = $dir/users.txt
pool_mode = transaction
default_pool_size = $POOLER_SIZE
max_db_connections = $POOLER_SIZE
max_client_conn = 1000
EOF
  local user
  user=$(python3 -c "import sys, urllib.parse as u; print(u.urlsplit(sys.argv[1]).username or 'postgres')" "$PG")
  printf '"%s" ""\n' "$user" >"$dir/users.txt"
  local as_user=()
  if [ "$(id -u)" -eq 0 ]; then
    # PgBouncer will not run as root: `nobody` must reach, read and write its directory.
    chmod 711 "$WORK"
    chmod 777 "$dir"
    chmod 644 "$dir/pgbouncer.ini" "$dir/users.txt"
    as_user=(-u nobody)
  fi
  "$bouncer" "${as_user[@]}" "$dir/pgbouncer.ini" >/dev/null 2>&1 &
  BOUNCER_PID=$!
  for _ in $(seq 1 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
    sleep 0.1
  done
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || die "pgbouncer did not start: $(tail -n 5 "$dir/pgbouncer.log" 2>/dev/null)"
  BOUNCER_URL="postgres://$user@127.0.0.1:$port/${DB_URL##*/}"
  BOUNCER_VERSION=$("$bouncer" --version | head -n 1)
}

# processes_measure MODE COUNT URL POOLER
processes_measure() {
  local mode=$1 count=$2 url=$3 pooler=$4 i port
  local ports=()
  for i in $(seq 1 "$count"); do
    port=$(free_port)
    ORGS_DATABASE_URL="$url" ORGS_DATABASE_POOLER="$pooler" ORGS_LISTEN="127.0.0.1:$port" \
      ORGS_LOG=warn "$ORGS" serve >"$WORK/processes-$mode-$count-$i.log" 2>&1 &
    SCALED_PIDS+=($!)
    ports+=("$port")
  done
  for port in "${ports[@]}"; do
    for _ in $(seq 1 100); do
      curl -fsS -o /dev/null "http://127.0.0.1:$port/readyz" 2>/dev/null && break
      sleep 0.1
    done
    curl -fsS -o /dev/null "http://127.0.0.1:$port/readyz" \
      || die "a $mode process is not ready: $(tail -n 3 "$WORK"/processes-"$mode"-"$count"-*.log)"
  done
  local connections=$((CONNECTIONS / count > 0 ? CONNECTIONS / count : 1))
  local threads=$((THREADS / count > 0 ? THREADS / count : 1))
  say "measuring GET /organizations/{id}/ on $count process(es), $mode: $count × wrk -c $connections, ${DURATION}s"
  local wrks=()
  i=0
  for port in "${ports[@]}"; do
    i=$((i + 1))
    BENCH_KEY="$KEY" BENCH_RATE=0 BENCH_THREADS="$threads" BENCH_RUN="processes-$mode-$count-$i-$$" \
      wrk -t "$threads" -c "$connections" -d "${DURATION}s" --timeout 10s \
      -s bench/wrk/request.lua "http://127.0.0.1:$port" >"$RESULTS/processes-$mode-$count-$i.wrk" 2>&1 &
    wrks+=($!)
  done
  for i in "${wrks[@]}"; do wait "$i" || die "wrk failed ($mode, $count processes)"; done
  stop_scaled
  cat "$RESULTS"/processes-"$mode"-"$count"-*.wrk | awk -v mode="$mode" -v count="$count" '
    $1 == "bench:" && $2 ~ /^requests=/ {
      for (f = 2; f <= NF; f++) { split($f, kv, "="); v[kv[1]] = kv[2] }
      rps += v["requests"] / (v["duration_us"] / 1e6)
      errors += v["non2xx"] + v["connect"] + v["read"] + v["write"] + v["timeout"]
    }
    END { printf "%s %d %.0f %d\n", mode, count, rps, errors }' >>"$RESULTS/processes"
  tail -n 1 "$RESULTS/processes" | sed 's/^/bench:    /' >&2
}

processes_table() {
  echo "| processes | direct req/s | through PgBouncer req/s | errors |"
  echo "|---:|---:|---:|---:|"
  awk '{ rps[$1 "," $2] = $3; err[$2] += $4; n[$2] = 1 }
    END { for (c = 1; c <= 4; c *= 2) if (n[c]) printf "| %d | %s | %s | %d |\n", c, rps["direct," c], rps["pgbouncer," c], err[c] }' \
    "$RESULTS/processes"
}

measure_processes() {
  : >"$RESULTS/processes"
  # Route: one child organization by id, as measure org_get.
  route GET "/organizations/{id}/" 2 1001
  local count
  for count in 1 2 4; do
    processes_measure direct "$count" "$DB_URL" none
  done
  start_bouncer
  for count in 1 2 4; do
    processes_measure pgbouncer "$count" "$BOUNCER_URL" transaction
  done
  stop_bouncer
  {
    echo "pooler=$BOUNCER_VERSION, pool_mode=transaction, default_pool_size=$POOLER_SIZE"
  } >"$RESULTS/processes.pooler"
  say "GET /organizations/{id}/ by process count ($CONNECTIONS connections in all; $BOUNCER_VERSION, pool of $POOLER_SIZE):"
  processes_table | sed 's/^/bench:   /' >&2
}
