#!/bin/bash
# bench_flood.sh - issue 12, finding 2: one sender's flood against another
# sender's first RCPTs. Per run, a fresh mtasts-milter (empty cache,
# flushed resolver, default options but enforcing_transports = smtp):
#
#   quiet: the victim's 20 first RCPTs to fresh enforce domains at once
#          (20 connections, one RCPT each, AUTH victim);
#   flood: the same to 20 other fresh domains, 2 s after another sender
#          (AUTH mallory) opened 40 connections of RCPTs to fresh domains
#          whose policy hosts accept TCP and never answer (*.flood.test).
#
# Prints, over BENCH_RUNS runs (3), the medians of the victim's p50 and
# slowest RCPT and its deferred count in each case. Needs root (the test
# world, in a network namespace of its own). Prints numbers, asserts none
# (tests/faults/test_flood.sh asserts the answers).
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../integration/maplib.sh
. "$HERE/../integration/maplib.sh" # the namespace and the world
maplib_init mts-bench-flood
LOAD="$BUILD/tests/bench/miltload"
RUNS=${BENCH_RUNS:-3}
say() { echo "bench_flood: $*"; }
[ -x "$LOAD" ] || { say "skipped ($LOAD is not built)"; exit 0; }
maplib_netns mts-bflood "$@"
maplib_world_up

seq -w 1 20 | sed 's/^/d/; s/$/.test/' >"$W/quiet"
seq -w 21 40 | sed 's/^/d/; s/$/.test/' >"$W/flooded"
field() { grep -o "\b$2=[0-9.]*" "$1" | head -n 1 | cut -d= -f2; }
median() { printf '%s\n' "$@" | sort -n | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }
ms() { awk -v u="$1" 'BEGIN {printf "%.1f ms", u / 1000}'; }
load() {
    local out=$1
    shift
    "$LOAD" -s "unix:$W/m.sock" -t 120000 "$@" >"$out" 2>&1
}

declare -a q50=() qmax=() qdef=() f50=() fmax=() fdef=()
for ((r = 1; r <= RUNS; r++)); do
    {
        grep -v -e '^#' -e '^cache_db' "$MTS_WORLD_CONF"
        echo "cache_db = $W/run$r.sqlite"
        echo "enforcing_transports = smtp"
    } >"$W/run$r.conf"
    seq -w 1 400 | sed "s/^/r$r-/; s/\$/.flood.test/" >"$W/flood$r"
    "$WORLD" flush "$W" >/dev/null 2>&1
    maplib_milter "$W/run$r.conf" "$W/m.sock" "$W/run$r.log" ||
        { say "mtasts-milter did not start: $(tail -n 3 "$W/run$r.log")"; exit 1; }
    load "$W/quiet$r.out" -a victim -c 20 -m 1 -r 1 -D "$W/quiet"
    load "$W/flood$r.out" -a mallory -c 40 -m 2 -r 5 -D "$W/flood$r" &
    MAPLIB_PIDS=$!
    sleep 2
    load "$W/flooded$r.out" -a victim -c 20 -m 1 -r 1 -D "$W/flooded"
    kill "$MAPLIB_PIDS" 2>/dev/null
    wait "$MAPLIB_PIDS" 2>/dev/null
    MAPLIB_PIDS=
    # its lookups in flight end within their own timeouts
    kill "$MPID" 2>/dev/null
    wait "$MPID" 2>/dev/null
    MPID=
    q50+=("$(field "$W/quiet$r.out" rcpt_p50_us)") qmax+=("$(field "$W/quiet$r.out" rcpt_max_us)")
    qdef+=("$(field "$W/quiet$r.out" tempfail)")
    f50+=("$(field "$W/flooded$r.out" rcpt_p50_us)") fmax+=("$(field "$W/flooded$r.out" rcpt_max_us)")
    fdef+=("$(field "$W/flooded$r.out" tempfail)")
done
say "a victim sender's 20 first RCPTs to fresh enforce domains at once, median of $RUNS runs"
say "  (each on a fresh mtasts-milter, default options; deferred: 4.7.5, the lookup unknown):"
say "  no flood:   p50 $(ms "$(median "${q50[@]}")"), slowest $(ms "$(median "${qmax[@]}")"), deferred $(median "${qdef[@]}") of 20   (runs: ${qdef[*]} deferred)"
say "  one sender's 40 connections of hanging lookups:"
say "              p50 $(ms "$(median "${f50[@]}")"), slowest $(ms "$(median "${fmax[@]}")"), deferred $(median "${fdef[@]}") of 20   (runs: ${fdef[*]} deferred)"
