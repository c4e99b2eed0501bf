#!/usr/bin/env bash
# Fuzzes the HTTP API against its own OpenAPI document (`/openapi.json`) with
# schemathesis: every check, positive and negative data, and the stateful phase that
# follows the document's links. It runs the release binary on a fresh SQLite file, then
# on a fresh PostgreSQL database, and fails on any finding: a request the document allows
# that the service refuses, a request it forbids that the service accepts, an answer the
# document does not describe, or a server error.
#
# Environment: SCHEMATHESIS_MAX_EXAMPLES (default 60) test cases per operation and phase,
# SCHEMATHESIS_DATABASES (default "sqlite postgres"), DATABASE_URL (as the tests: a
# PostgreSQL database on the server where the run makes and drops its own; default
# postgres://postgres@127.0.0.1:5432/postgres), ORGS_BINARY (default: the release build,
# built first).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

SCHEMATHESIS_VERSION=4.32.5
VENV=target/schemathesis-venv
MAX_EXAMPLES=${SCHEMATHESIS_MAX_EXAMPLES:-60}
DATABASES=${SCHEMATHESIS_DATABASES:-sqlite postgres}
ADMIN_URL=${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}
POSTGRES=${ADMIN_URL%/*}

if ! "$VENV/bin/schemathesis" --version 2>/dev/null | grep -qF "$SCHEMATHESIS_VERSION"; then
  echo "schemathesis: installing schemathesis $SCHEMATHESIS_VERSION in $VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
fi

if [ -n "${ORGS_BINARY:-}" ]; then
  BINARY=$ORGS_BINARY
else
  echo "schemathesis: building the release binary"
  cargo build --release --quiet -p app --bin orgs
  BINARY=target/release/orgs
fi

WORK=$(mktemp -d)
SERVER=""
DATABASE=""
cleanup() {
  if [ -n "$SERVER" ]; then
    kill "$SERVER" 2>/dev/null || true
    wait "$SERVER" 2>/dev/null || true
  fi
  if [ -n "$DATABASE" ]; then
    psql -q "$ADMIN_URL" -c "DROP DATABASE IF EXISTS \"$DATABASE\" WITH (FORCE)" >/dev/null || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Starts the binary on a database URL; sets SERVER, BASE and KEY (the first-start key of
# an administrator of organization 1).
serve() {
  local url=$1 port log
  port=$(free_port)
  log="$WORK/serve-$port.log"
  env -u ORGS_SMTP_URL ORGS_DATABASE_URL="$url" ORGS_LISTEN="127.0.0.1:$port" ORGS_LOG=warn \
    "$BINARY" serve 2>"$log" >/dev/null &
  SERVER=$!
  BASE="http://127.0.0.1:$port"
  KEY=""
  for _ in $(seq 1 300); do
    KEY=$(grep -o 'Authorization: Bearer [A-Za-z0-9_-]*' "$log" | head -n 1 | sed 's/.*Bearer //' || true)
    if [ -n "$KEY" ] && curl -fsS "$BASE/healthz" >/dev/null 2>&1; then
      return 0
    fi
    if ! kill -0 "$SERVER" 2>/dev/null; then
      break
    fi
    sleep 0.1
  done
  echo "schemathesis: the service did not start on $url" >&2
  cat "$log" >&2
  exit 1
}

stop() {
  kill "$SERVER"
  wait "$SERVER" || true
  SERVER=""
}

# One schemathesis run over the operations the arguments select.
fuzz() {
  # From the scratch directory, where schemathesis keeps its cache.
  (cd "$WORK" && "$ROOT/$VENV/bin/schemathesis" --no-color --config-file "$ROOT/scripts/schemathesis.toml" \
    run "$BASE/openapi.json" \
    --header "Authorization: Bearer $KEY" \
    --checks all \
    --max-examples "$MAX_EXAMPLES" \
    --seed 1 \
    --workers 1 \
    --request-timeout 10 \
    --suppress-health-check all \
    --generation-database none \
    "$@")
}

fuzz_database() {
  local url=$1
  serve "$url"
  echo "schemathesis: fuzzing $BASE on ${url%%:*}"
  # Replacing the API key, or revoking a key by id (the run's own may be one), ends the
  # key the run authenticates with: those operations run on their own, last (they link
  # nowhere, so without the stateful phase).
  fuzz --exclude-path /me/regen_secret/ --exclude-path '/me/api_keys/{key}/' \
    --phases examples,coverage,fuzzing,stateful
  fuzz --include-path /me/regen_secret/ --include-path '/me/api_keys/{key}/' \
    --phases examples,coverage,fuzzing
  stop
}

for database in $DATABASES; do
  case $database in
    sqlite)
      fuzz_database "sqlite://$WORK/orgs.db"
      ;;
    postgres)
      DATABASE="orgs_schemathesis_$$"
      psql -q "$ADMIN_URL" -c "CREATE DATABASE \"$DATABASE\"" >/dev/null
      fuzz_database "$POSTGRES/$DATABASE"
      psql -q "$ADMIN_URL" -c "DROP DATABASE \"$DATABASE\" WITH (FORCE)" >/dev/null
      DATABASE=""
      ;;
    *)
      echo "schemathesis: unknown database $database" >&2
      exit 2
      ;;
  esac
done
echo "schemathesis: no findings"
