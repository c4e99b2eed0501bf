# Conveniences for working on orgs. Install just with `cargo install just`
# (or `apt-get install just`); every recipe is a plain cargo command you can run without it.

# Run the service on the embedded default (SQLite at data/orgs.db).
run:
    cargo run --release -p app

# Format the code.
fmt:
    cargo fmt --all

# Formatting check and clippy with warnings as errors, as CI runs them.
lint:
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets -- -D warnings

# The whole test suite (needs PostgreSQL on 127.0.0.1:5432, as CI).
test:
    cargo test --workspace

# Only the tests that run against PostgreSQL.
test-pg:
    cargo test -p adapters-postgres

# The architecture guard: the domain stays pure (no async runtime, database or web crate),
# the domain and ports know no adapter, and no adapter depends on another adapter (except
# the shared SQL core). A plain script, so that CI runs it without just.
deps:
    bash scripts/deps.sh

# The domain and ports documentation, with warnings as errors, as CI builds it.
doc:
    RUSTDOCFLAGS="-D warnings" cargo doc --no-deps -p domain -p ports

# Benchmarks against PostgreSQL on 127.0.0.1:5432: seeds a database, loads the release
# build with wrk, compares with pgbench on the same SQL, rewrites docs/benchmarks.md.
# BENCH_DURATION and BENCH_CONNECTIONS (default 10 s, 16) tune it; takes a few minutes.
bench:
    bash bench/run.sh

# Everything CI checks.
ci:
    bash .ci/run
