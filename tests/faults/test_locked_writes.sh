#!/bin/bash
# test_locked_writes.sh - issue 19, N3: another process holds the shared
# cache with BEGIN EXCLUSIVE for 20 s while a load of RCPTs to 600 domains
# never seen before arrives. Each fresh lookup learns its row (no such
# domain: absent) and writes it; the writes must wait for the lock on the
# write-behind queue's one thread (cachewq.h), not on the lookup workers:
# before, every worker parked in SQLite's busy wait behind the lock, and
# once all of them were, the RCPTs that followed waited for a worker past
# their deadline and were deferred (148-156 of ~410 in the audit). Here
# none may be deferred, the rows must not be in the file while it is
# locked, and every one must reach it once the lock is released.
#
# Real processes in a network namespace of its own: the test world (DNS),
# mtasts-milter with its defaults (lookup_workers_max 256,
# cache_busy_timeout_ms 5 s), miltload as the MTA, sqlite3 as the other
# process. Asserts what the MTA sees and what the file holds, not speed.
# Needs root (the test world); skipped otherwise. TAP output.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../integration/maplib.sh
. "$HERE/../integration/maplib.sh" # ok, bail, the namespace and the world
# shellcheck source=faultlib.sh
. "$HERE/faultlib.sh"
maplib_init mts-fault-lockw
DEADLINE_MS=3000
LOCK_S=20
N=600 # domains: 10 connections x 6 messages x 10 RCPTs, each RCPT a new one

fault_need_miltload
maplib_netns mts-flockw "$@"
maplib_world_up

DB="$W/fault.sqlite"
CONF="$W/fault.conf"
{
    echo "cache_db = $DB"
    echo "enforcing_transports = smtp"
    echo "rcpt_deadline_ms = ${DEADLINE_MS}ms"
} | fault_conf "$CONF"
# Names the world's zone does not hold: each an NXDOMAIN, so absent.
seq -w 1 "$N" | sed 's/^/lw/; s/$/.test/' >"$W/fresh"
rows() { sqlite3 -cmd ".timeout 2000" "$DB" "SELECT count(*) FROM domains WHERE domain LIKE 'lw%';" 2>/dev/null; }
threads() { ls "/proc/$MPID/task" 2>/dev/null | wc -l; }

stop_milter() {
    local i
    kill -TERM "$MPID" 2>/dev/null
    for ((i = 0; i < 200; i++)); do
        kill -0 "$MPID" 2>/dev/null || break
        sleep 0.1
    done
    ! kill -0 "$MPID" 2>/dev/null
}
echo "1..11"
fault_milter_start "$CONF" "$W/m.sock" "$W/milter.log"
ok "the milter listens" $? || bail "the milter did not start: $(tail -5 "$W/milter.log")"
# One lookup first, so that the file exists with its schema.
load "$W/warmup.out" -c 1 -m 1 -r 1 -d d01.test
sleep 1

{ echo "BEGIN EXCLUSIVE; DELETE FROM domains WHERE domain = 'nothing.invalid';"; sleep "$LOCK_S"; echo "ROLLBACK;"; } |
    sqlite3 "$DB" &
LOCKER=$!
MAPLIB_PIDS=$LOCKER
sleep 0.5
! sqlite3 -cmd ".timeout 200" "$DB" "BEGIN IMMEDIATE; ROLLBACK;" 2>/dev/null
ok "another process holds the cache (BEGIN EXCLUSIVE, $LOCK_S s)" $?
start=$(date +%s)

load "$W/fresh.out" -c 10 -m 6 -r 10 -D "$W/fresh"
rc=$?
took=$(( $(date +%s) - start ))
tf=$(field "$W/fresh.out" tempfail)
nthreads=$(threads)
[ $rc -eq 0 ] && [ "$(field "$W/fresh.out" rcpts)" = "$N" ] && [ "$tf" = 0 ]
r=$?; ok "locked: $N RCPTs to fresh domains answered by their verdicts, none deferred ($(replies "$W/fresh.out"))" $r
echo "# the load took ${took} s of the ${LOCK_S} s lock; the milter has ${nthreads} threads"
[ $r -ne 0 ] && grep -E 'notice|error' "$W/milter.log" | cut -c1-200 | tail -n 8 | sed 's/^/# log: /'

kill -0 "$LOCKER" 2>/dev/null
ok "the lock was still held when the load ended (${took} s)" $?
nrows=$(rows)
[ "${nrows:-x}" = 0 ]
ok "locked: none of the rows is in the file yet (${nrows:-?})" $?

wait "$LOCKER"
MAPLIB_PIDS=
for ((i = 0; i < 300; i++)); do
    nrows=$(rows)
    [ "${nrows:-0}" -ge "$N" ] && break
    sleep 0.1
done
[ "${nrows:-0}" = "$N" ]
ok "lock released: all $N rows reach the file (${nrows:-?}, after $((i / 10)) s)" $?

grep -q 'cache write queue (lookups): .* wait for the shared cache' "$W/milter.log"
ok "the log says the writes waited for the lock" $?
lost=$(grep -cE 'not stored|cannot write the cache' "$W/milter.log")
[ "$lost" -eq 0 ]
ok "no write lost or refused ($lost lines)" $?
kill -0 "$MPID"
ok "the milter is still running" $?
stop_milter
ok "the milter stops on SIGTERM, within 20 s" $?
! grep -q 'AddressSanitizer\|LeakSanitizer\|runtime error\|ThreadSanitizer' "$W/milter.log"
ok "no sanitizer report in the milter's log" $?
grep -E 'warning|error' "$W/milter.log" | sort | uniq -c | sort -rn | head -5 | sed 's/^/# log: /'
[ "$fails" -eq 0 ]
