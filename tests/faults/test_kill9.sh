#!/bin/bash
# test_kill9.sh - issue 12: kill -9 of the milter under load. 8 connections
# of RCPTs to 40 fresh domains; the milter is killed outright while their
# first lookups are still being written to the cache (new rows, MX sets,
# last use). Then the cache file must pass PRAGMA integrity_check, -n must
# be content with it, and a restarted milter must serve the domains the
# cache holds from the cache (answered, accepted, not one query for them at
# the world's resolver) and look up the others.
#
# Real processes in a network namespace of its own: the test world (DNS,
# HTTPS), mtasts-milter, miltload as the MTA. Asserts what the MTA and the
# resolver see, not timings. Needs root (the test world); skipped otherwise.
# TAP output.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../integration/maplib.sh
. "$HERE/../integration/maplib.sh" # ok, bail, the namespace and the world
# shellcheck source=faultlib.sh
. "$HERE/faultlib.sh"
maplib_init mts-fault-kill9

fault_need_miltload
maplib_netns mts-fkill "$@"
maplib_world_up

DB="$W/fault.sqlite"
CONF="$W/fault.conf"
{
    echo "cache_db = $DB"
    echo "enforcing_transports = smtp"
} | fault_conf "$CONF"
seq -w 1 40 | sed 's/^/d/; s/$/.test/' >"$W/domains"
# queries [RE]: lines in the resolver's log that ask about the domains (RE:
# an alternation of them; default all 40)
queries() { grep -cE " (_mta-sts\\.)?(${1:-d[0-4][0-9]\\.test})\\. " "$MTS_WORLD_UNBOUND_LOG"; }
# (the milter logs a message's tagged recipients in one line, " | " between)
enforced() { grep -o 'status=enforce' "$W/milter.log" | wc -l; }
done_domains() { grep -o 'domain=d[0-9]*\.test status=enforce' "$W/milter.log" | sort -u | wc -l; }

echo "1..8"
fault_milter_start "$CONF" "$W/m.sock" "$W/milter.log"
ok "the milter listens" $? || bail "the milter did not start: $(tail -5 "$W/milter.log")"

# The load runs until the kill: its connections then fail, as an MTA's would.
"$LOAD" -s "unix:$W/m.sock" -t 30000 -c 8 -m 100000 -r 5 -D "$W/domains" >"$W/load.out" 2>&1 &
LPID=$!
MAPLIB_PIDS=$LPID
for ((i = 0; i < 200; i++)); do
    [ "$(done_domains)" -ge 12 ] && break
    sleep 0.05
done
kill -9 "$MPID"
wait "$MPID" 2>/dev/null
ws=$?
MPID=
[ "$ws" -eq 137 ]
r=$?; ok "the milter was killed with SIGKILL under load (wait status $ws, $(done_domains) of 40 domains answered)" $r
wait "$LPID" 2>/dev/null
MAPLIB_PIDS=

ic=$(sqlite3 "$DB" 'PRAGMA integrity_check' 2>&1)
[ "$ic" = ok ]
r=$?; ok "PRAGMA integrity_check on the cache: $ic" $r
# Warm: the domain's row and its MX set (two writes; the kill may fall
# between them, and then the restart rightly asks for the MX set again).
sqlite3 "$DB" "SELECT d.domain FROM domains d JOIN mx_sets m ON m.domain = d.domain
               WHERE d.domain LIKE 'd%.test' AND d.status = 'enforce'" >"$W/cached" 2>&1
rows=$(grep -c '^d[0-9]*\.test$' "$W/cached")
[ "$rows" -ge 1 ] && [ "$rows" -le 40 ]
r=$?; ok "the cache holds the domains looked up before the kill, as enforce with their MX sets ($rows of 40)" $r
"$MILTER" -n -c "$CONF" >"$W/n.out" 2>&1
rc=$?
[ $rc -eq 0 ] && ! grep -qi 'corrupt' "$W/n.out"
r=$?; ok "-n is content with the cache after the kill (exit $rc)" $r

rm -f "$W/m.sock" # a SIGKILLed milter leaves its socket; a restart must cope
re=$(sed 's/\./\\./g' "$W/cached" | paste -sd '|')
q0=$(queries "$re")
fault_milter_start "$CONF" "$W/m.sock" "$W/milter.log"
ok "a restart listens" $? || bail "no restart: $(tail -5 "$W/milter.log")"
e0=$(enforced)
"$LOAD" -s "unix:$W/m.sock" -t 30000 -c 1 -m 1 -r "$rows" -D "$W/cached" >"$W/warm.out" 2>&1
rc=$?
sleep 1 # the resolver logs a query as it gets it; give it a moment
q1=$(queries "$re")
[ $rc -eq 0 ] && [ "$(field "$W/warm.out" rcpts)" = "$rows" ] && [ "$(field "$W/warm.out" tempfail)" = 0 ] &&
    [ $(($(enforced) - e0)) -eq "$rows" ] && [ "$q0" -ge "$rows" ] && [ "$q1" -eq "$q0" ]
r=$?
[ "$q1" -eq "$q0" ] || grep -E " (_mta-sts\\.)?($re)\\. " "$MTS_WORLD_UNBOUND_LOG" | tail -n $((q1 - q0)) | sed 's/^/# query: /'
ok "after the restart: the $rows cached domains enforce, from the cache: $((q1 - q0)) queries for them at the resolver ($(replies "$W/warm.out"))" $r
"$LOAD" -s "unix:$W/m.sock" -t 30000 -c 4 -m 2 -r 5 -D "$W/domains" >"$W/all.out" 2>&1
rc=$?
[ $rc -eq 0 ] && [ "$(field "$W/all.out" rcpts)" = 40 ] && [ "$(field "$W/all.out" tempfail)" = 0 ]
r=$?; ok "and all 40 domains are answered, none deferred ($(replies "$W/all.out"))" $r
grep -E 'warning|error' "$W/milter.log" | sort | uniq -c | sort -rn | head -5 | sed 's/^/# log: /'
[ "$fails" -eq 0 ]
