#!/bin/bash
# test_miltload.sh - the milter load driver (tests/bench/miltload) against
# the no-op libmilter filter (tests/bench/noop_milter) and against broken
# filters (fakefilter.py): reply counts, the printed fields, and a clear
# error where the protocol is broken. Unix sockets in a scratch directory;
# needs no root and no network. Asserts no timing. TAP output.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
BUILD=$(cd "${top_builddir:-$HERE/../..}" && pwd)
LOAD="$BUILD/tests/bench/miltload"
NOOP="$BUILD/tests/bench/noop_milter"
FAKE="$HERE/fakefilter.py"

for p in "$LOAD" "$NOOP"; do
    if [ ! -x "$p" ]; then
        echo "1..0 # SKIP $p is not built (make check builds it)"
        exit 0
    fi
done

T=$(mktemp -d /tmp/mts-miltload.XXXXXX) || { echo "Bail out! mktemp"; exit 1; }
NOOP_PID=
cleanup() {
    [ -n "$NOOP_PID" ] && kill -KILL "$NOOP_PID" 2>/dev/null && wait "$NOOP_PID" 2>/dev/null
    rm -rf "$T"
}
trap cleanup EXIT

n=0 fails=0
ok() {
    n=$((n + 1))
    if [ "$2" -eq 0 ]; then echo "ok $n - $1"; else echo "not ok $n - $1"; fails=$((fails + 1)); fi
}
diag() { sed 's/^/#   /'; }

# noop FLAGS...: (re)starts the no-op filter on $T/noop.sock
noop() {
    local i
    if [ -n "$NOOP_PID" ]; then
        kill -KILL "$NOOP_PID" 2>/dev/null
        wait "$NOOP_PID" 2>/dev/null
    fi
    rm -f "$T/noop.sock"
    "$NOOP" -p "unix:$T/noop.sock" "$@" 2>"$T/noop.log" &
    NOOP_PID=$!
    for ((i = 0; i < 100; i++)); do
        [ -S "$T/noop.sock" ] && return 0
        sleep 0.05
    done
    return 1
}

# run LABEL EXPECTED-STATUS WORDS... -- ARGS...: runs miltload ARGS; checks
# the exit status and that each WORD (e.g. "continue=100") is in its output.
run() {
    local label=$1 want=$2 rc w miss=
    shift 2
    local words=()
    while [ "$1" != -- ]; do
        words+=("$1")
        shift
    done
    shift
    timeout 60 "$LOAD" "$@" >"$T/out" 2>"$T/err"
    rc=$?
    for w in "${words[@]}"; do
        grep -Eq -- "(^| )$w( |$)" "$T/out" "$T/err" || miss="$miss $w"
    done
    [ "$rc" -eq "$want" ] && [ -z "$miss" ]
    ok "$label" $?
    if [ "$rc" -ne "$want" ] || [ -n "$miss" ]; then
        echo "exit status $rc (want $want); missing:$miss" | diag
        cat "$T/out" "$T/err" | diag
    fi
}

S="unix:$T/noop.sock"

noop || echo "Bail out! noop_milter did not come up" | tee /dev/stderr
run "default steps: 20 messages x 5 RCPTs, all continue, one header each" 0 \
    'continue=100' 'tempfail=0' 'reject=0' 'other=0' 'message_replies: continue=20' \
    'modifications=20' 'errors=0' -- -s "$S" -m 20 -r 5
# the fields the benchmark reads: numbers, present
grep -Eq '^rcpt_per_s=[0-9]+ rcpt_p50_us=[0-9]+ rcpt_p99_us=[0-9]+ rcpt_max_us=[0-9]+ messages_per_s=[0-9]+$' "$T/out"
ok "prints rcpt_per_s, rcpt_p50_us, rcpt_p99_us, rcpt_max_us, messages_per_s" $?
grep -Eq '^miltload: .* connections=1 messages=20 rcpts=100 seconds=[0-9.]+$' "$T/out"
ok "prints what it did: connections, messages, RCPTs, seconds" $?
run "4 connections x 10 messages x 3 RCPTs" 0 'connections=4' 'rcpts=120' 'continue=120' \
    'modifications=40' 'errors=0' -- -s "$S" -c 4 -m 10 -r 3

noop -a -n -S -x || echo "Bail out! noop_milter -a -n -S -x did not come up"
run "every step, replies waived, macro lists set: replies by kind" 0 \
    'continue=60' 'tempfail=20' 'reject=20' 'message_replies: continue=20' 'modifications=20' \
    'errors=0' -- -s "$S" -m 20 -r 5 -d ok1.test,tempfail.test,reject.test,ok2.test,ok3.test
run "no {auth_authen}: the test filter rejects every RCPT; no DATA is sent" 0 \
    'continue=0' 'reject=50' 'no_rcpt=10' 'modifications=0' -- -s "$S" -m 10 -r 5 --no-auth
run "no {rcpt_host}: rejected" 0 'reject=50' -- -s "$S" -m 10 -r 5 --no-rcpt-host
run "no i: rejected" 0 'reject=50' -- -s "$S" -m 10 -r 5 --no-queue-id

noop -a -x || echo "Bail out! noop_milter -a -x did not come up"
run "every step with replies, SMFIR_SKIP on the body" 0 'continue=50' \
    'message_replies: continue=10' 'errors=0' -- -s "$S" -m 10 -r 5

noop -T || echo "Bail out! noop_milter -T did not come up"
# 4 RCPTs a message over 3 domains (one twice, in another case): 3 tag headers
run "-T: one tag header a distinct recipient domain" 0 'continue=40' \
    'message_replies: continue=10' 'modifications=30' 'errors=0' \
    -- -s "$S" -m 10 -r 4 -d a.test,b.test,A.TEST,c.test --headers "$T/tags"
[ "$(grep -c '^MTA-STS-Status: domain=' "$T/tags")" -eq 30 ] &&
    [ "$(grep -ci '^MTA-STS-Status: domain=a.test;' "$T/tags")" -eq 10 ]
ok "-T: the tag headers name each domain once a message" $?

run "usage error: exit status 2" 2 -- -s "$S" -c 0
run "nothing listening: exit status 1 and the reason" 1 'errors=1' \
    -- -s "unix:$T/nothing.sock" -m 1
grep -q "miltload: connection 0: connect to unix:$T/nothing.sock: " "$T/err"
ok "the reason names the socket" $?

if command -v python3 >/dev/null 2>&1; then
    # fake MODE WORD...: miltload against fakefilter.py MODE; exits 1 with WORD.. on stderr
    fake() {
        local mode=$1 i rc
        shift
        rm -f "$T/fake.sock"
        PYTHONDONTWRITEBYTECODE=1 python3 "$FAKE" "$mode" "$T/fake.sock" &
        local fp=$!
        for ((i = 0; i < 100; i++)); do
            [ -S "$T/fake.sock" ] && break
            sleep 0.05
        done
        timeout 60 "$LOAD" -s "unix:$T/fake.sock" -m 2 -r 2 -t 500 >"$T/out" 2>"$T/err"
        rc=$?
        kill "$fp" 2>/dev/null
        wait "$fp" 2>/dev/null
        if [ "$mode" = good ]; then
            [ "$rc" -eq 0 ] && grep -q 'continue=4 ' "$T/out" && grep -q 'modifications=2 ' "$T/out"
        else
            [ "$rc" -eq 1 ] && grep -q -- "$*" "$T/err"
        fi
        ok "fake filter '$mode': ${*:-all continue}" $?
        [ "$rc" -eq 1 ] || [ "$mode" = good ] || cat "$T/out" "$T/err" | diag
    }
    fake good
    fake silent "no OPTNEG reply within 500 ms"
    fake oversize "more than the protocol's 65536"
    fake badrcpt "RCPT reply: unexpected reply 'h' (ADDHEADER)"
    fake unnegotiated "EOM reply: ADDHEADER, an action the filter did not negotiate"
else
    for m in good silent oversize badrcpt unnegotiated; do
        n=$((n + 1))
        echo "ok $n - fake filter '$m' # SKIP python3 is not installed"
    done
fi

kill -0 "$NOOP_PID" 2>/dev/null
ok "noop_milter still runs after all this" $?
echo "1..$n"
[ "$fails" -eq 0 ]
