#!/usr/bin/env bash
# Runs the http_server example under valgrind's memcheck through the drain scenario
# (a few requests, one `/slow?ms=300` in flight and one idle keep-alive connection
# when SIGTERM arrives) and checks that it exits 0 with no memory error and nothing
# definitely lost.
#
# The example returns from `main` while smol's global executor and blocking pool
# threads still run, so "still reachable" (and thread-stack "possibly lost")
# blocks are expected; only "definitely lost" and memcheck errors fail the run
# (`--errors-for-leak-kinds=definite --error-exitcode=99`). Every wait is bounded:
# valgrind makes the server ~20-50x slower, so the bounds are generous.
set -euo pipefail
cd "$(dirname "$0")/.."

STARTUP_TIMEOUT=60 # seconds for valgrind to start the server
STEP_TIMEOUT=60    # seconds for any one request or read
EXIT_TIMEOUT=120   # seconds from SIGTERM to exit (drain + valgrind's leak check)

started=$SECONDS
work=
fail() {
    echo "valgrind.sh: $*" >&2
    for f in stdout stderr valgrind.log; do
        if [ -n "$work" ] && [ -s "$work/$f" ]; then
            echo "--- $f (last 40 lines) ---" >&2
            tail -n 40 "$work/$f" >&2
        fi
    done
    exit 1
}

command -v valgrind >/dev/null || (apt-get update && apt-get install -y valgrind)
valgrind --version

cargo build --quiet --example http_server
bin="${CARGO_TARGET_DIR:-target}/debug/examples/http_server"
[ -x "$bin" ] || fail "no example binary at $bin"

work=$(mktemp -d)
server_pid=
runner_pid=
cleanup() {
    if [ -n "$server_pid" ] && [ ! -e "$work/rc" ]; then
        kill -KILL "$server_pid" 2>/dev/null || true
    fi
    if [ -n "$runner_pid" ]; then
        wait "$runner_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

launched=$SECONDS
# The server runs in a subshell that records its exit status in $work/rc, so the
# wait for it can be bounded (a zombie still answers `kill -0`). valgrind execs its
# tool in place, so the recorded pid is the guest program's.
(
    GRACE_MS=30000 RUST_LOG=info valgrind \
        --leak-check=full --errors-for-leak-kinds=definite --error-exitcode=99 \
        --log-file="$work/valgrind.log" \
        "$bin" 127.0.0.1:0 >"$work/stdout" 2>"$work/stderr" &
    echo $! >"$work/pid"
    rc=0
    wait $! || rc=$?
    echo "$rc" >"$work/rc.tmp"
    mv "$work/rc.tmp" "$work/rc"
) &
runner_pid=$!

# `wait_until SECONDS WHAT CMD...`: polls until CMD succeeds; fails past SECONDS.
wait_until() {
    local limit=$1 what=$2
    shift 2
    local deadline=$((SECONDS + limit))
    until "$@"; do
        [ "$SECONDS" -lt "$deadline" ] || fail "timed out after ${limit}s waiting for $what"
        sleep 0.1
    done
}

wait_until 10 "the server's pid" test -s "$work/pid"
server_pid=$(cat "$work/pid")
listening_or_exited() {
    grep -q '^listening on http://' "$work/stdout" || test -e "$work/rc"
}
wait_until "$STARTUP_TIMEOUT" "the 'listening on' line" listening_or_exited
[ ! -e "$work/rc" ] || fail "the server exited with $(cat "$work/rc") before listening"
addr=$(sed -n 's|^listening on http://||p' "$work/stdout" | head -n 1)
host=${addr%:*}
port=${addr##*:}
echo "valgrind.sh: server pid $server_pid listening on $addr ($((SECONDS - launched))s after launch)"

# Reads one HTTP response from fd $1 into RESP_STATUS, RESP_CONNECTION, RESP_BODY.
read_response() {
    local fd=$1 line len=0
    IFS= read -r -t "$STEP_TIMEOUT" -u "$fd" line || return 1
    RESP_STATUS=${line%$'\r'}
    RESP_CONNECTION=
    while IFS= read -r -t "$STEP_TIMEOUT" -u "$fd" line; do
        line=${line%$'\r'}
        [ -n "$line" ] || break
        case "${line,,}" in
        content-length:*) len=${line#*:} && len=${len// /} ;;
        connection:*) RESP_CONNECTION=${line#*:} && RESP_CONNECTION=${RESP_CONNECTION# } ;;
        esac
    done
    RESP_BODY=
    if [ "$len" -gt 0 ]; then
        IFS= read -r -N "$len" -t "$STEP_TIMEOUT" -u "$fd" RESP_BODY || return 1
    fi
}

# `get PATH`: prints the status code of a one-off GET (curl if there is one).
get() {
    if command -v curl >/dev/null; then
        curl -sS --max-time "$STEP_TIMEOUT" -o /dev/null -w '%{http_code}' "http://$addr$1"
    else
        local fd
        exec {fd}<>"/dev/tcp/$host/$port"
        printf 'GET %s HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n' "$1" >&"$fd"
        read_response "$fd" || return 1
        exec {fd}>&-
        local code=${RESP_STATUS#* }
        echo "${code%% *}"
    fi
}

# A few one-off requests, the error paths included.
for request in "/ 200" "/hello 200" "/slow?ms=50 200" "/slow?ms=abc 400"; do
    path=${request% *}
    want=${request#* }
    got=$(get "$path") || fail "GET $path failed"
    [ "$got" = "$want" ] || fail "GET $path answered $got, not $want"
done

# An idle keep-alive connection (the server closes it at once on shutdown), and one
# with a request in flight. The `GET /` answered on each proves the server accepted it.
exec {idle}<>"/dev/tcp/$host/$port"
exec {busy}<>"/dev/tcp/$host/$port"
for fd in "$idle" "$busy"; do
    printf 'GET / HTTP/1.1\r\nHost: test\r\n\r\n' >&"$fd"
    read_response "$fd" || fail "no answer to GET / on a keep-alive connection"
    case "$RESP_STATUS" in "HTTP/1.1 200 "*) ;; *) fail "GET / answered '$RESP_STATUS'" ;; esac
done
printf 'GET /slow?ms=300 HTTP/1.1\r\nHost: test\r\n\r\n' >&"$busy"

kill -TERM "$server_pid"
signalled=$SECONDS

read_response "$busy" || fail "the in-flight /slow?ms=300 was not answered"
case "$RESP_STATUS" in "HTTP/1.1 200 "*) ;; *) fail "/slow?ms=300 answered '$RESP_STATUS'" ;; esac
[ "$RESP_BODY" = $'slept 300 ms\n' ] || fail "/slow?ms=300 body: '$RESP_BODY'"
in_flight_connection=$RESP_CONNECTION
for fd in "$idle" "$busy"; do
    st=0
    IFS= read -r -t "$STEP_TIMEOUT" -u "$fd" line || st=$?
    [ "$st" -ne 0 ] || fail "the server sent more data instead of closing a connection"
    [ "$st" -le 128 ] || fail "the server did not close a connection within ${STEP_TIMEOUT}s"
    exec {fd}>&-
done

wait_until "$EXIT_TIMEOUT" "the server to exit after SIGTERM" test -e "$work/rc"
rc=$(cat "$work/rc")
exit_secs=$((SECONDS - signalled))

grep -q '^shutdown: signal SIGTERM; draining' "$work/stdout" || fail "no 'shutdown:' line"
grep -q '^drained' "$work/stdout" || fail "no 'drained' line"

log=$work/valgrind.log
errors=$(sed -n 's/.*ERROR SUMMARY: \([0-9]*\) errors.*/\1/p' "$log" | tail -n 1)
if grep -q 'All heap blocks were freed -- no leaks are possible' "$log"; then
    lost="0 bytes in 0 blocks"
else
    lost=$(sed -n 's/.*definitely lost: \([0-9,]* bytes in [0-9,]* blocks\).*/\1/p' "$log" | tail -n 1)
fi
[ -n "$lost" ] || fail "no leak summary in the valgrind log"
[ "$rc" -eq 0 ] || fail "exit status $rc (99: memcheck found an error or a definite leak)"
[ "$lost" = "0 bytes in 0 blocks" ] || fail "definitely lost: $lost"
[ "${errors:-0}" -eq 0 ] || fail "ERROR SUMMARY: $errors errors"

grep -E '^==[0-9]+== +(ERROR SUMMARY|(definitely|indirectly|possibly) lost|still reachable):' "$log" |
    sed 's/^==[0-9]*== */  /'
echo "valgrind: in-flight request answered with 'Connection: $in_flight_connection'; exit ${exit_secs}s after SIGTERM; whole run $((SECONDS - started))s"
echo "valgrind: drain scenario exit $rc, definitely lost: $lost"
