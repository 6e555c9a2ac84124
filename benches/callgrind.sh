#!/usr/bin/env bash
# Counts, with valgrind's callgrind, the instructions (Ir) per op of each row
# of benches/profile.rs, and the functions they are spent in.
#
#   benches/callgrind.sh                 # every section
#   benches/callgrind.sh new_drop trigger
#   TOP=25 benches/callgrind.sh lifecycle
#
# One valgrind run per row, collecting only inside the row's profiled
# function (`--toggle-collect`), so setup is not counted. Prints, per row,
# its Ir per op and the TOP (default 12) functions by inclusive Ir per op.
# Profiles go to target/callgrind/, the build to target/callgrind-build/ (callgrind_annotate reads them again).
set -euo pipefail
cd "$(dirname "$0")/.."

command -v valgrind >/dev/null || { echo "callgrind.sh: valgrind is not installed" >&2; exit 1; }
top=${TOP:-12}
# Line tables, so that callgrind names the functions (and the files of the
# code inlined into them); a target dir of its own, so that this build does
# not replace the bench's.
export CARGO_PROFILE_BENCH_DEBUG=line-tables-only
export CARGO_TARGET_DIR=target/callgrind-build
bin=$(cargo bench --bench profile --no-run 2>&1 | sed -n 's/.*Executable .*(\(.*profile-[0-9a-f]*\)).*/\1/p' | tail -n 1)
[ -x "$bin" ] || { echo "callgrind.sh: no profile binary found" >&2; exit 1; }
out=target/callgrind
mkdir -p "$out"

# The rows of the sections asked for, as "name ops" lines.
rows=$("$bin" "$@")
[ -n "$rows" ] || { echo "callgrind.sh: no row matches: $*" >&2; exit 1; }
while read -r _ name ops; do
    file="$out/${name//::/.}.out"
    valgrind --tool=callgrind --callgrind-out-file="$file" \
        --toggle-collect="profile::$name" "$bin" "$name" >/dev/null 2>"$file.log" ||
        { echo "callgrind.sh: valgrind failed on $name (see $file.log)" >&2; exit 1; }
    callgrind_annotate --inclusive=yes "$file" 2>/dev/null | awk -v ops="$ops" -v top="$top" -v name="$name" '
        /PROGRAM TOTALS/ { gsub(",", "", $1); printf "%s: %.0f Ir per op\n", name, $1 / ops; next }
        /file:function/ { listing = 1; next }
        listing && /^ *[0-9,]+ \(/ && shown < top {
            ir = $1; gsub(",", "", ir)
            fn = $0; sub(/^ *[0-9,]+ \([ 0-9.]+%\) +/, "", fn); sub(/ \[[^]]*\]$/, "", fn)
            if (fn ~ /(libc-start|libc_start_call_main|below main|\\?\\?\\?:(main|0x)|lang_start|__rust_begin_short_backtrace|:profile::main$)/) next
            # Shorten paths: the crate (or library) and the file within it.
            sub(/^.*\/registry\/src\/[^\/]*\//, "", fn); sub(/^\/work\/[^\/]*\//, "", fn)
            sub(/^\/rustc\/[0-9a-f]*\/library\//, "", fn); sub(/^\.\/[^\/]*\/\.\//, "glibc:", fn)
            printf "  %8.1f  %s\n", ir / ops, substr(fn, 1, 150); shown++
        }'
done <<<"$rows"
