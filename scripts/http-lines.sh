#!/usr/bin/env bash
# Production lines of the HTTP adapter: non-blank lines of `crates/adapters-http/src/**/*.rs`
# that are not comments (`//`, `///`, `//!`), outside `#[cfg(test)]` modules (every such
# module here closes at the file's first `}` in column 0 after it, rustfmt's layout).
# Prints one line per file and the total; with a git revision, counts that revision.
# Usage: scripts/http-lines.sh [REV]
set -euo pipefail
shopt -s inherit_errexit
cd "$(dirname "$0")/.."

readonly SRC="crates/adapters-http/src"
rev="${1:-}"

if [[ -n "${rev}" ]]; then
    files=$(git ls-tree -r --name-only "${rev}" -- "${SRC}" | grep '\.rs$' | sort)
else
    files=$(find "${SRC}" -name '*.rs' | sort)
fi

total=0
for file in ${files}; do
    if [[ -n "${rev}" ]]; then
        text=$(git show "${rev}:${file}")
    else
        text=$(cat "${file}")
    fi
    count=$(awk '
        skipping { if ($0 ~ /^}/) skipping = 0; next }
        pending { pending = 0; if ($0 ~ /^mod [a-z_]+ \{$/) { skipping = 1; next } }
        /^#\[cfg\(test\)\]$/ { pending = 1; next }
        { line = $0; sub(/^[ \t]+/, "", line) }
        line == "" || line ~ /^\/\// { next }
        { n++ }
        END { print n + 0 }
    ' <<<"${text}")
    printf '%6d  %s\n' "${count}" "${file#"${SRC}"/}"
    total=$((total + count))
done
printf '%6d  total\n' "${total}"
