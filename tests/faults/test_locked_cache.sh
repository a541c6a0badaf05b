#!/bin/bash
# test_locked_cache.sh - issue 12, finding 4: another process holds the
# shared cache with BEGIN EXCLUSIVE for 20 s while RCPTs arrive. Every RCPT
# must still be answered within rcpt_deadline_ms (plus a margin for this
# machine, far below the MTA's 30 s milter timeout): warm domains from
# memory (accepted), cold ones by a fresh lookup or "unknown" at the
# deadline. Afterwards the milter works as before.
#
# Real processes in a network namespace of its own: the test world (DNS,
# HTTPS), mtasts-milter, miltload as the MTA, sqlite3 as the other process.
# Asserts what the MTA sees (answers, the deadline met), not speed.
# Needs root (the test world); skipped otherwise. TAP output.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../integration/maplib.sh
. "$HERE/../integration/maplib.sh" # ok, bail, the namespace and the world
# shellcheck source=faultlib.sh
. "$HERE/faultlib.sh"
maplib_init mts-fault-locked
DEADLINE_MS=3000
MARGIN_MS=2000
LOCK_S=20

fault_need_miltload
maplib_netns mts-flock "$@"
maplib_world_up

DB="$W/fault.sqlite"
CONF="$W/fault.conf"
{
    echo "cache_db = $DB"
    echo "enforcing_transports = smtp"
    echo "rcpt_deadline_ms = ${DEADLINE_MS}ms"
} | fault_conf "$CONF"
seq -w 1 10 | sed 's/^/d/; s/$/.test/' >"$W/warm"
seq -w 11 48 | sed 's/^/d/; s/$/.test/' >"$W/cold"

echo "1..8"
"$MILTER" -f -c "$CONF" -p "unix:$W/m.sock" >"$W/milter.log" 2>&1 </dev/null &
MPID=$!
for ((i = 0; i < 100; i++)); do
    grep -q ' listening on ' "$W/milter.log" && [ -S "$W/m.sock" ] && break
    sleep 0.1
done
[ -S "$W/m.sock" ]; ok "the milter listens" $? || bail "the milter did not start: $(tail -5 "$W/milter.log")"

load "$W/warmup.out" -c 1 -m 4 -r 5 -D "$W/warm"
[ $? -eq 0 ] && [ "$(field "$W/warmup.out" tempfail)" = 0 ]
r=$?; ok "warm-up: the 10 warm domains accepted ($(replies "$W/warmup.out"))" $r
sleep 1 # the last rows and MX sets are written after the answers

{ echo "BEGIN EXCLUSIVE; DELETE FROM domains WHERE domain = 'nothing.invalid';"; sleep "$LOCK_S"; echo "ROLLBACK;"; } |
    sqlite3 "$DB" &
LOCKER=$!
MAPLIB_PIDS=$LOCKER
sleep 0.5
! sqlite3 -cmd ".timeout 200" "$DB" "BEGIN IMMEDIATE; ROLLBACK;" 2>/dev/null
ok "another process holds the cache (BEGIN EXCLUSIVE, $LOCK_S s)" $?
start=$(date +%s)

max_us=$(( (DEADLINE_MS + MARGIN_MS) * 1000 ))
load "$W/warm.out" -c 8 -m 2 -r 5 -D "$W/warm"
rc=$?
max=$(field "$W/warm.out" rcpt_max_us)
[ $rc -eq 0 ] && [ "$(field "$W/warm.out" rcpts)" = 80 ] && [ "$(field "$W/warm.out" tempfail)" = 0 ] &&
    [ -n "$max" ] && awk -v m="$max" -v b="$max_us" 'BEGIN {exit !(m + 0 <= b + 0)}'
r=$?; ok "locked: 80 RCPTs to warm domains all answered from memory, accepted, slowest $max us (bound $max_us) ($(replies "$W/warm.out"))" $r

cold_after=$(( $(date +%s) - start ))
load "$W/cold.out" -c 8 -m 1 -r 5 -D "$W/cold"
rc=$?
max=$(field "$W/cold.out" rcpt_max_us)
[ $rc -eq 0 ] && [ "$(field "$W/cold.out" rcpts)" = 40 ] && [ -n "$max" ]
r=$?; ok "locked: 40 RCPTs to cold domains all answered ($(replies "$W/cold.out"))" $r
# Each within the deadline, as the MTA sees it. (This once failed in about
# one loaded run in three, 9-15 s: cold reads queued behind writes held
# through SQLite's busy wait, so each RCPT took its whole deadline, and
# libmilter's worker pool left a session whose command had arrived waiting
# for a worker that long callbacks kept busy. Reads have their own
# connection now: cache.h, Threads.)
[ -n "$max" ] && awk -v m="$max" -v b="$max_us" 'BEGIN {exit !(m + 0 <= b + 0)}'
r=$?; ok "locked: every cold RCPT answered within the deadline + ${MARGIN_MS} ms, slowest ${max:-?} us" $r
if [ $r -ne 0 ]; then
    echo "# the cold RCPTs began ${cold_after} s into the ${LOCK_S} s lock; $(grep rcpt_slowest "$W/cold.out")"
    grep -E 'notice|error' "$W/milter.log" | cut -c1-160 | tail -n 12 | sed 's/^/# log: /'
fi
held=$(( $(date +%s) - start ))
kill -0 "$LOCKER" 2>/dev/null && echo "# the lock was still held after ${held} s of RCPTs" ||
    echo "# note: the lock ended before the RCPTs did (${held} s)"
wait "$LOCKER"
MAPLIB_PIDS=

load "$W/after.out" -c 4 -m 1 -r 10 -D "$W/cold"
[ $? -eq 0 ] && [ "$(field "$W/after.out" tempfail)" = 0 ]
r=$?; ok "lock released: cold domains accepted again ($(replies "$W/after.out"))" $r
kill -0 "$MPID"
ok "the milter is still running" $?
grep -E 'warning|error' "$W/milter.log" | sort | uniq -c | sort -rn | head -5 | sed 's/^/# log: /'
[ "$fails" -eq 0 ]
