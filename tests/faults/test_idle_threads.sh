#!/bin/bash
# test_idle_threads.sh - issue 19 (and 12): a burst of fresh lookups that
# hang grows the lookup pool towards lookup_workers_max; once they have
# ended, the threads beyond lookup_workers exit after lookup_workers_idle
# (before, they stayed: 526 threads after one burst). The count is read
# from /proc/PID/task, as an operator would. A second burst afterwards is
# served as the first (the pool grows again, on the slots of the threads
# that ended).
#
# Real processes in a network namespace of its own: the test world (DNS,
# NAME.flood.test: policy hosts that accept TCP and never answer),
# mtasts-milter, miltload as the MTA. Needs root; skipped otherwise. TAP.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../integration/maplib.sh
. "$HERE/../integration/maplib.sh" # ok, bail, the namespace and the world
# shellcheck source=faultlib.sh
. "$HERE/faultlib.sh"
maplib_init mts-fault-idle
IDLE_S=2
GROWN=40 # threads the burst must add at least (it starts 200 lookups)

fault_need_miltload
maplib_netns mts-fidle "$@"
maplib_world_up

CONF="$W/fault.conf"
{
    echo "cache_db = $W/fault.sqlite"
    echo "enforcing_transports = smtp"
    echo "rcpt_deadline_ms = 1s"
    # the hanging lookups end (failed) after this
    echo "fetch_timeout_ms = 3s"
    echo "fetch_connect_timeout_ms = 3s"
    echo "lookups_per_sender = 0"
    echo "lookups_per_connection = 0"
    echo "lookup_workers_idle = ${IDLE_S}s"
} | fault_conf "$CONF"
seq -w 1 200 | sed 's/^/i/; s/$/.flood.test/' >"$W/burst1"
seq -w 201 400 | sed 's/^/i/; s/$/.flood.test/' >"$W/burst2"
threads() { ls "/proc/$MPID/task" 2>/dev/null | wc -l; }

# Runs a burst in the background and samples the thread count meanwhile: PEAK.
burst() {
    local out=$1 file=$2 pid t
    load "$out" -c 40 -m 1 -r 5 -D "$file" &
    pid=$!
    PEAK=0
    while kill -0 "$pid" 2>/dev/null; do
        t=$(threads)
        [ "$t" -gt "$PEAK" ] && PEAK=$t
        sleep 0.2
    done
    wait "$pid"
}

# Waits (at most 60 s) until the count is at most $1: LAST, the seconds waited.
falls_to() {
    local i
    for ((i = 0; i < 300; i++)); do
        LAST=$(threads)
        [ "$LAST" -le "$1" ] && break
        sleep 0.2
    done
    WAITED=$((i / 5))
    [ "$LAST" -le "$1" ]
}

stop_milter() {
    local i
    kill -TERM "$MPID" 2>/dev/null
    for ((i = 0; i < 200; i++)); do
        kill -0 "$MPID" 2>/dev/null || break
        sleep 0.1
    done
    ! kill -0 "$MPID" 2>/dev/null
}
echo "1..8"
fault_milter_start "$CONF" "$W/m.sock" "$W/milter.log"
ok "the milter listens" $? || bail "the milter did not start: $(tail -5 "$W/milter.log")"
sleep 1
base=$(threads)

burst "$W/burst1.out" "$W/burst1"
rc=$?
[ $rc -eq 0 ] && [ "$(field "$W/burst1.out" rcpts)" = 200 ] && [ "$PEAK" -ge $((base + GROWN)) ]
ok "a burst of 200 hanging fresh domains grows the pool: $base threads, $PEAK at the most ($(replies "$W/burst1.out"))" $?

# The lookups end after fetch_timeout_ms; the threads beyond the minimum
# after lookup_workers_idle more.
falls_to "$base"
ok "after the burst the count falls back to $base ($LAST after ${WAITED} s)" $?

burst "$W/burst2.out" "$W/burst2"
rc=$?
[ $rc -eq 0 ] && [ "$(field "$W/burst2.out" rcpts)" = 200 ] && [ "$PEAK" -ge $((base + GROWN)) ]
ok "a second burst grows it again ($PEAK at the most; $(replies "$W/burst2.out"))" $?
falls_to "$base"
ok "and it falls back again ($LAST after ${WAITED} s)" $?

seq -w 1 5 | sed 's/^/d0/; s/$/.test/' >"$W/after"
load "$W/after.out" -c 2 -m 1 -r 5 -D "$W/after"
[ $? -eq 0 ] && [ "$(field "$W/after.out" tempfail)" = 0 ] && kill -0 "$MPID"
ok "the milter still answers ($(replies "$W/after.out"))" $?
stop_milter
ok "the milter stops on SIGTERM, within 20 s" $?
! grep -q 'AddressSanitizer\|LeakSanitizer\|runtime error\|ThreadSanitizer' "$W/milter.log"
ok "no sanitizer report in the milter's log" $?
grep -E 'warning|error' "$W/milter.log" | sort | uniq -c | sort -rn | head -5 | sed 's/^/# log: /'
[ "$fails" -eq 0 ]
