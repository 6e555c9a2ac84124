#!/usr/bin/env bash
# The published package holds what a user of the crate needs (the library, its docs,
# tests, examples and benches) and nothing stray: no CI scripts, no target/, no editor
# or worktree leftovers. Lists the package with `cargo package --list` and fails on any
# file outside the expected set, or if an expected file is missing.
# Cargo.toml's `include` decides what goes in; this checks that it still does.
set -euo pipefail
cd "$(dirname "$0")/.."

list=$(cargo package --list --allow-dirty --quiet)

# One extended regex per allowed kind of file.
allowed='^(Cargo\.toml|Cargo\.toml\.orig|Cargo\.lock|\.cargo_vcs_info\.json|README\.md|CHANGELOG\.md|benches/README\.md|docs/[A-Za-z0-9_]+\.md|benches/[A-Za-z0-9_]+\.sh|LICENSE[-A-Za-z0-9.]*|src/([A-Za-z0-9_]+/)*[A-Za-z0-9_]+\.rs|tests/([A-Za-z0-9_]+/)*[A-Za-z0-9_]+\.rs|examples/[A-Za-z0-9_]+\.rs|benches/([A-Za-z0-9_]+/)*[A-Za-z0-9_]+\.rs)$'

stray=$(grep -Ev "$allowed" <<<"$list" || true)
if [ -n "$stray" ]; then
    echo "cargo package would publish unexpected files:" >&2
    printf '  %s\n' $stray >&2
    echo "(fix Cargo.toml's include, or extend .ci/package-check.sh if they belong)" >&2
    exit 1
fi

missing=0
for required in Cargo.toml README.md CHANGELOG.md src/lib.rs; do
    if ! grep -qx "$required" <<<"$list"; then
        echo "cargo package would leave out $required" >&2
        missing=1
    fi
done
# Every example and bench that Cargo.toml names must ship, or the package does not build.
targets=$(awk '/^\[\[(example|bench)\]\]/ { section = 1; next }
    /^\[/ { section = 0 }
    section && /^name *=/ { gsub(/.*= *"|".*/, ""); print }' Cargo.toml)
for target in $targets; do
    if ! grep -qE "^(examples|benches)/$target(\.rs|/main\.rs)$" <<<"$list"; then
        echo "cargo package would leave out the example or bench $target" >&2
        missing=1
    fi
done
[ "$missing" -eq 0 ] || exit 1

echo "package contents: $(wc -l <<<"$list") files, nothing stray"
