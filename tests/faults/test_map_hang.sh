#!/bin/bash
# test_map_hang.sh - issue 19: the policy map's clients must not take the
# lookup workers the milter's RCPTs need. 128 map connections ask, over and
# over, for fresh domains whose policy hosts accept TCP and never answer
# (NAME.flood.test); with lookup_workers_max = 32 that was every worker
# (before: 8 of 30 of another sender's fresh RCPTs deferred at the default
# 256 workers and 256 map connections). Meanwhile another sender's first
# RCPTs to fresh, healthy enforce domains must all be accepted; the map's
# lookups meet map_lookups_max (at most half of lookup_workers_max) and
# map_lookups_per_connection, each logged; afterwards the milter's
# threads come back near where they were.
#
# Real processes in a network namespace of its own: the test world (DNS,
# HTTPS, the hanging policy hosts), mtasts-milter, mapload as Postfix's
# smtp processes, miltload as the MTA. Asserts answers and counts, not
# timings. Needs root (the test world); skipped otherwise. TAP output.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../integration/maplib.sh
. "$HERE/../integration/maplib.sh" # ok, bail, the namespace and the world
# shellcheck source=faultlib.sh
. "$HERE/faultlib.sh"
maplib_init mts-fault-maphang
MAP_CONNS=128 WORKERS=32 SLACK=40

fault_need_miltload
MAPLOAD="$BUILD/tests/bench/mapload"
[ -x "$MAPLOAD" ] || { echo "1..0 # SKIP $MAPLOAD is not built"; exit 0; }
LOAD_TIMEOUT_MS=60000
maplib_netns mts-maphang "$@"
maplib_world_up

CONF="$W/maphang.conf"
{
    echo "cache_db = $W/maphang.sqlite"
    echo "enforcing_transports = smtp"
    echo "rcpt_deadline_ms = 5s"
    echo "lookup_workers_max = $WORKERS"
    echo "map_socket = unix:$W/map.sock"
    echo "map_deadline_ms = 2s"
    # the hanging lookups end (failed) after this: they outlast every step
    echo "fetch_timeout_ms = 20s"
    echo "fetch_connect_timeout_ms = 20s"
    echo "act_on = all"
} | fault_conf "$CONF"
seq -w 1 30 | sed 's/^/d/; s/$/.test/' >"$W/victim"
seq -w 1 2000 | sed 's/^/m/; s/$/.flood.test/' >"$W/flood"
threads() { awk '/^Threads:/ {print $2}' "/proc/$MPID/status"; }

echo "1..8"
maplib_milter "$CONF" "$W/m.sock" "$W/milter.log"
ok "the milter listens" $? || bail "the milter did not start: $(tail -5 "$W/milter.log")"
for ((i = 0; i < 100; i++)); do [ -S "$W/map.sock" ] && break; sleep 0.1; done
t0=$(threads)

# First, one connection past its own cap: 6 fresh hanging domains pipelined.
seq -w 1 6 | sed 's/^/p/; s/$/.flood.test/' >"$W/pipe"
"$MAPLOAD" -s "unix:$W/map.sock" -c 1 -n 6 -p 6 -K "$W/pipe" -t 30000 >"$W/pipe.out" 2>&1
grep -q 'map connection #[0-9]* has 4 lookups of new domains in flight (map_lookups_per_connection)' "$W/milter.log"
r=$?; ok "one map connection meets map_lookups_per_connection (4), logged" $r

# The map's flood: 128 connections, each asking one fresh hanging domain
# after another (TEMP after map_deadline_ms, or at once past a cap).
(ulimit -Sn 4096 && exec "$MAPLOAD" -s "unix:$W/map.sock" -c "$MAP_CONNS" -n 15 \
    -K "$W/flood" -t 30000) >"$W/map.out" 2>&1 &
FLOOD=$!
MAPLIB_PIDS=$FLOOD
sleep 4 # past map_deadline_ms: the first hanging lookups hold their workers

load "$W/victim.out" -a victim -c 2 -m 1 -r 15 -D "$W/victim"
rc=$?
[ $rc -eq 0 ] && [ "$(field "$W/victim.out" continue)" = 30 ] &&
    [ "$(field "$W/victim.out" tempfail)" = 0 ]
r=$?; ok "map flood: another sender's 30 first RCPTs to fresh domains accepted, none deferred ($(replies "$W/victim.out"))" $r
[ $r -eq 0 ] || grep -E 'warning|error' "$W/milter.log" | cut -c1-200 | sort | uniq -c | sort -rn | head -5 | sed 's/^/# log: /'

grep -q "the policy map has $((WORKERS / 2)) lookups of new domains in flight (map_lookups_max" "$W/milter.log"
r=$?; ok "the map's lookups met map_lookups_max, capped at half of lookup_workers_max ($((WORKERS / 2))), logged" $r

wait "$FLOOD"
rc=$?
MAPLIB_PIDS=
grep -q "replies: ok=0 notfound=0 temp=$((MAP_CONNS * 15)) " "$W/map.out"
r=$?; ok "the map's $((MAP_CONNS * 15)) requests for hanging domains all answered TEMP ($(grep -o 'replies: .*' "$W/map.out"))" $r

kill -0 "$MPID" 2>/dev/null
ok "the milter runs" $?
# The hanging lookups end at fetch_timeout_ms; answer threads linger 30 s.
for ((i = 0; i < 600; i++)); do
    [ "$(threads)" -le $((t0 + WORKERS + SLACK)) ] && break
    sleep 0.1
done
t1=$(threads)
[ "$t1" -le $((t0 + WORKERS + SLACK)) ]
r=$?; ok "threads: $t0 at start, $t1 after (at most the $WORKERS lookup workers and $SLACK more)" $r
! grep -q 'AddressSanitizer\|runtime error\|ThreadSanitizer' "$W/milter.log"
ok "no sanitizer report in the milter's log" $?
[ "$fails" -eq 0 ]
