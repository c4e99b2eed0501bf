#!/usr/bin/env bash
# The architecture guard, on the dependency graph that Cargo resolves:
#  1. the domain is pure: no async runtime, database, web or mocking crate;
#  2. the domain and the ports depend on no adapter and not on the application;
#  3. no adapter depends on another adapter (normal, build or dev dependency), except
#     on the shared SQL core `adapters-sql`, which both storage adapters build on and
#     which is no adapter of its own (it depends on no adapter either).
# Run by `just deps` and by `.ci/run`; needs only cargo and bash.
set -euo pipefail
shopt -s inherit_errexit
cd "$(dirname "$0")/.."

# The crate that storage adapters may share; every other `adapters-*` crate is an adapter.
readonly SHARED_CORE="adapters-sql"
failed=0

# The package names of a `cargo tree` listing, one a line; fails when cargo does.
# Usage: names <cargo tree arguments…>
names() {
    local listing
    listing=$(cargo tree --prefix none --format '{p}' "$@")
    echo "$listing" | awk 'NF { print $1 }' | sort -u
}

# The direct dependencies of one workspace package (normal, build and dev).
direct_dependencies() {
    local listing
    listing=$(cargo tree -p "$1" -e normal,build,dev --depth 1 --prefix none --format '{p}')
    echo "$listing" | tail -n +2 | awk 'NF { print $1 }' | sort -u
}

domain_dependencies=$(names -p domain -e normal)
io_crates=$(echo "$domain_dependencies" \
    | grep -E '^(tokio|sqlx|axum|hyper|lettre|reqwest|async-trait|mockall)$' || true)
if [ -n "$io_crates" ]; then
    echo "deps: domain depends on I/O crates: $(echo $io_crates)" >&2
    failed=1
else
    echo "deps: domain is pure"
fi

members=$(names --workspace -e normal --depth 0)

for core in domain ports; do
    core_dependencies=$(names -p "$core" -e normal,build)
    inner=$(echo "$core_dependencies" | grep -E '^(adapters-.*|app)$' || true)
    if [ -n "$inner" ]; then
        echo "deps: $core depends on $(echo $inner)" >&2
        failed=1
    else
        echo "deps: $core knows no adapter"
    fi
done

for adapter in $(echo "$members" | grep -E '^adapters-' || true); do
    dependencies=$(direct_dependencies "$adapter")
    for dependency in $(echo "$dependencies" | grep -E '^adapters-' || true); do
        if [ "$dependency" = "$SHARED_CORE" ] && [ "$adapter" != "$SHARED_CORE" ]; then
            continue
        fi
        echo "deps: adapter $adapter depends on adapter $dependency" >&2
        failed=1
    done
done
if [ "$failed" -ne 0 ]; then
    exit 1
fi
echo "deps: no adapter depends on another adapter (except the shared SQL core $SHARED_CORE)"
