#!/bin/bash
# test_many_conns.sh - issue 12: 1,000 milter connections at once, twice:
# held open (each past CONNECT, as idle MTA processes hold them) while
# another connection sends mail, and as a burst of 1,000 connections of one
# message each. Every RCPT must be answered; afterwards the milter still
# serves, and its descriptors and threads come back to near where they were
# before. The milter is started with a soft descriptor limit of 512 (below
# the 1,000 connections; 1,024 is a common default) and must raise it.
#
# Real processes in a network namespace of its own: the test world (DNS,
# HTTPS), mtasts-milter, miltload as the MTA (one thread a connection).
# Asserts answers and counts from /proc, not timings. Needs root (the test
# world); skipped otherwise. TAP output.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../integration/maplib.sh
. "$HERE/../integration/maplib.sh" # ok, bail, the namespace and the world
# shellcheck source=faultlib.sh
. "$HERE/faultlib.sh"
maplib_init mts-fault-conns
CONNS=${FAULT_CONNS:-1000} SLACK=20

fault_need_miltload
maplib_netns mts-fconn "$@"
maplib_world_up

CONF="$W/fault.conf"
{
    echo "cache_db = $W/fault.sqlite"
    echo "enforcing_transports = smtp"
} | fault_conf "$CONF"
seq -w 1 20 | sed 's/^/d/; s/$/.test/' >"$W/domains"
threads() { awk '/^Threads:/ {print $2}' "/proc/$MPID/status"; }
fds() { find "/proc/$MPID/fd" -mindepth 1 -maxdepth 1 | wc -l; }

echo "1..9"
ulimit -Sn 512 # below CONNS: the milter must raise it
fault_milter_start "$CONF" "$W/m.sock" "$W/milter.log"
ok "the milter listens" $? || bail "the milter did not start: $(tail -5 "$W/milter.log")"
"$LOAD" -s "unix:$W/m.sock" -c 4 -m 1 -r 5 -D "$W/domains" >"$W/warm.out" 2>&1
sleep 1
t0=$(threads) f0=$(fds)
lim=$(awk '/^Max open files/ {print $4}' "/proc/$MPID/limits")
[ "$lim" -ge $((CONNS + 100)) ] 2>/dev/null && grep -q 'descriptor limit raised from 512' "$W/milter.log"
r=$?; ok "the milter raised its soft descriptor limit from 512 to $lim, and says so" $r

# Holds CONNS connections, each past OPTNEG and CONNECT, until stdin closes.
cat >"$W/hold.py" <<PY
import sys
sys.path.insert(0, "$SRC/tests/integration/miltertest/lib")
from rawmilter import Milter
ms = []
try:
    for i in range(int(sys.argv[2])):
        m = Milter(sys.argv[1], timeout=60)
        m.connect()
        ms.append(m)
except Exception as e:
    print("held %d, then: %s" % (len(ms), e), flush=True)
print("ready %d" % len(ms), flush=True)
sys.stdin.read()
PY
coproc HOLD { ulimit -Sn 4096; exec python3 "$W/hold.py" "$W/m.sock" "$CONNS" 2>"$W/hold.err"; }
MAPLIB_PIDS=$HOLD_PID
read -r -t 120 line <&"${HOLD[0]}"
[ "$line" = "ready $CONNS" ]
r=$?; ok "$CONNS connections held open at once, each past CONNECT ($line)" $r
th=$(threads) fh=$(fds)
"$LOAD" -s "unix:$W/m.sock" -c 1 -m 1 -r 5 -D "$W/domains" >"$W/held.out" 2>&1
[ $? -eq 0 ] && [ "$(field "$W/held.out" rcpts)" = 5 ] && [ "$(field "$W/held.out" tempfail)" = 0 ]
r=$?; ok "with them open, another connection's mail is answered ($(replies "$W/held.out"); milter at $th threads, $fh descriptors)" $r
eval "exec ${HOLD[1]}>&-"
wait "$HOLD_PID" 2>/dev/null
MAPLIB_PIDS=
for ((i = 0; i < 100; i++)); do
    [ "$(threads)" -le $((t0 + SLACK)) ] && [ "$(fds)" -le $((f0 + SLACK)) ] && break
    sleep 0.1
done
[ "$(threads)" -le $((t0 + SLACK)) ] && [ "$(fds)" -le $((f0 + SLACK)) ]
r=$?; ok "closed: threads and descriptors back near the start ($t0 -> $(threads), $f0 -> $(fds))" $r

# miltload holds a descriptor a connection: give it room (the milter's own
# limit is what the milter does about it).
(ulimit -Sn 4096 && exec "$LOAD" -s "unix:$W/m.sock" -t 60000 -c "$CONNS" -m 1 -r 2 -D "$W/domains") \
    >"$W/burst.out" 2>&1
rc=$?
[ $rc -eq 0 ] && [ "$(field "$W/burst.out" rcpts)" = $((CONNS * 2)) ] &&
    [ "$(field "$W/burst.out" tempfail)" = 0 ]
r=$?; ok "$CONNS connections at once: all $((CONNS * 2)) RCPTs answered, none deferred ($(replies "$W/burst.out"))" $r
[ $r -eq 0 ] || grep -m 3 'miltload:' "$W/burst.out" | sed 's/^/# /'
"$LOAD" -s "unix:$W/m.sock" -c 1 -m 1 -r 5 -D "$W/domains" >"$W/after.out" 2>&1
[ $? -eq 0 ] && [ "$(field "$W/after.out" tempfail)" = 0 ]
r=$?; ok "the milter serves afterwards ($(replies "$W/after.out"))" $r
# libmilter ends a connection's thread once the MTA closes it; give it a moment.
for ((i = 0; i < 100; i++)); do
    [ "$(threads)" -le $((t0 + SLACK)) ] && [ "$(fds)" -le $((f0 + SLACK)) ] && break
    sleep 0.1
done
t1=$(threads) f1=$(fds)
[ "$t1" -le $((t0 + SLACK)) ]
r=$?; ok "threads back near the start: $t0 before, $t1 after" $r
[ "$f1" -le $((f0 + SLACK)) ]
r=$?; ok "descriptors back near the start: $f0 before, $f1 after" $r
grep -E 'warning|error' "$W/milter.log" | cut -c1-200 | sort | uniq -c | sort -rn | head -5 | sed 's/^/# log: /'
[ "$fails" -eq 0 ]
