#!/bin/bash
# test_map_edges.sh - socketmap protocol edge cases against a running
# mtasts-milter's policy map (map_socket), issue 11: unknown map names, a
# client that disconnects mid-request, 1,000 connections at once, the
# map_max_clients cap (idle connections giving way to new clients, issue
# 19), oversize keys. After each, a good client still gets
# its answer and the milter still runs (kill -0). Asserts answers, never
# timings. Clients: mapedges.py and tests/bench/mapload. Brings the world
# up in a network namespace of its own (maplib.sh). TAP output.
#
# Needs root (the world) and python3; otherwise skipped.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/integration/maplib.sh
. "$HERE/maplib.sh"
maplib_init mts-edges
LOAD="$BUILD/tests/bench/mapload"
command -v python3 >/dev/null || { echo "1..0 # SKIP python3 is not installed"; exit 0; }
[ -x "$LOAD" ] || { echo "1..0 # SKIP $LOAD is not built"; exit 0; }
maplib_netns mts-edges "$@"
maplib_world_up

# 1,000 connections at once, each an fd in mapload and in the milter.
[ "$(ulimit -n)" -ge 4096 ] || ulimit -n 4096 || bail "cannot raise the open-file limit"
CAP=1100
MAP="$W/run/map.sock"
CONF="$W/edges.conf"
{
    grep -v '^#' "$MTS_WORLD_CONF"
    echo "socket = unix:$W/run/milter.sock"
    echo "map_socket = unix:$MAP"
    echo "map_max_clients = $CAP"
    echo "map_deadline_ms = 5s"
} >"$CONF"
"$MILTER" -f -c "$CONF" 2>"$W/milter.log" &
MPID=$!
for _ in $(seq 1 100); do [ -S "$MAP" ] && break; sleep 0.1; done
[ -S "$MAP" ] || { sed 's/^/# /' "$W/milter.log"; bail "the map socket did not appear"; }
GOOD=enforce.test

# alive AFTER: the milter runs and a good client (mapload) gets OK
alive() {
    local out
    out=$("$LOAD" -s "unix:$MAP" -n 1 -k "$GOOD" -t 10000 2>&1)
    kill -0 "$MPID" 2>/dev/null && grep -q 'replies: ok=1 notfound=0 temp=0 perm=0 other=0 errors=0' <<<"$out" ||
        sed 's/^/# /' <<<"$out"
    ok "after $1: the milter runs (kill -0) and answers $GOOD OK" $?
}
# edges CASE [ARG]: mapedges.py's checks as TAP lines
edges() {
    local line rc
    python3 "$HERE/mapedges.py" "$MAP" "$1" "$GOOD" "${2:-}" >"$W/edges-$1.out" 2>&1
    rc=$?
    while IFS= read -r line; do
        case "$line" in
        "ok "*) ok "$1: ${line#ok }" 0 ;;
        "not ok "*) ok "$1: ${line#not ok }" 1 ;;
        *) echo "# $line" ;;
        esac
    done <"$W/edges-$1.out"
    ok "$1: mapedges.py exit 0" "$rc"
    alive "$1"
}

alive "start"
edges names
edges midrequest
edges oversize

# 1,000 connections at once: the world's 50 enforce domains asked once
# each first, then 1,000 connections x 5 requests, every answer OK.
seq -w 1 50 | sed 's/^/d/; s/$/.test/' >"$W/domains"
"$LOAD" -s "unix:$MAP" -c 50 -n 1 -K "$W/domains" -t 20000 >"$W/warm.out" 2>&1
grep -q 'replies: ok=50 ' "$W/warm.out" || { sed 's/^/# /' "$W/warm.out"; false; }
ok "d01..d50.test asked once each: 50 OK" $?
"$LOAD" -s "unix:$MAP" -c 1000 -n 5 -K "$W/domains" -t 30000 >"$W/c1000.out" 2>&1
rc=$?
[ $rc -eq 0 ] && grep -q 'lookups=5000 ' "$W/c1000.out" &&
    grep -q 'replies: ok=5000 notfound=0 temp=0 perm=0 other=0 errors=0' "$W/c1000.out" ||
    { sed 's/^/# /' "$W/c1000.out" | sort | uniq -c | sort -rn | head -20; false; }
ok "1,000 connections at once, 5 requests each: 5,000 OK answers, no connection lost" $?
"$LOAD" -s "unix:$MAP" -c 1000 -n 20 -p 8 -K "$W/domains" -t 30000 >"$W/c1000p.out" 2>&1
rc=$?
[ $rc -eq 0 ] && grep -q 'replies: ok=20000 notfound=0 temp=0 perm=0 other=0 errors=0' "$W/c1000p.out" ||
    { sed 's/^/# /' "$W/c1000p.out" | sort | uniq -c | sort -rn | head -20; false; }
ok "1,000 connections, 8 pipelined requests in flight each: 20,000 OK answers" $?
alive "1,000 connections"

# map_max_clients: $CAP open and idle, new clients come: the ones idle the
# longest give way (issue 19: before, every new client was closed for
# MAPSERVER_IDLE_TIMEOUT_MS, 300 s)
edges idlecap "$CAP"
grep -q 'closed for a new client (map_max_clients)' "$W/milter.log"
rc=$?
[ $rc -eq 0 ] || sed -n '/map:/s/^/# /p' "$W/milter.log" | tail -5
ok "idle connections at map_max_clients: logged (closed for a new client)" $rc

# map_max_clients: $CAP open, none idle, more are closed at once, the others served
edges pastcap "$CAP"
# Logged by the listener (it knows none is idle) or, when a loop's idle
# time it published a moment ago is stale, by that loop finding none idle.
grep -q 'refusing new ones\|closed: map_max_clients connections open, none idle' "$W/milter.log"
rc=$?
[ $rc -eq 0 ] || sed -n '/map:/s/^/# /p' "$W/milter.log" | tail -5
ok "past map_max_clients: logged (refusing new ones)" $rc

kill "$MPID"
wait "$MPID"
mrc=$?
MPID=
[ "$mrc" -eq 0 ] && [ ! -e "$MAP" ] || { echo "# exit $mrc"; false; }
ok "SIGTERM: exit 0, map socket removed" $?
if grep -q 'AddressSanitizer\|runtime error\|ThreadSanitizer' "$W/milter.log"; then
    sed 's/^/# /' "$W/milter.log" | head -40
    false
fi
ok "no sanitizer report in the milter's log" $?
echo "1..$n"
[ "$fails" -eq 0 ]
