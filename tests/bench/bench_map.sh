#!/bin/bash
# bench_map.sh - the policy map (map_socket) against the physical limit
# (issue 11). mapload asks as Postfix's smtp client does (netstring
# "postfix DOMAIN") over unix sockets, same machine, side by side:
#
#   warm: mtasts-milter with map_socket and the test world's 50 enforce
#         domains (d01..d50.test) prefetched and asked once each, against
#         netstring_echo (one fixed OK, nothing computed) and, when
#         installed, postfix-mta-sts-resolver (mta-sts-daemon, started by
#         maplib_peer_start: the world's resolver and CA) warmed the same
#         way; it is left out, saying why, when not installed or when its
#         warm-up answers are not all OK. Cases (BENCH_MAP_CASES,
#         CONNECTIONSxIN_FLIGHT): 1x1 one connection answer by answer (one
#         Postfix smtp process), 64x1 64 connections answer by answer (64
#         processes: 64 in flight), 1x64 one connection with 64 pipelined.
#         RUNS runs per case, each one mapload with the servers side by
#         side in ROUNDS rounds of turns; prints the medians of lookups/s,
#         of the median turn, p50 and p99; the ratios map / echo (issue
#         11's target: >= 0.8) and map / mta-sts-daemon (>= 3, one at a
#         time) per run and their medians, and echo / mta-sts-daemon, what
#         the physical limit itself shows against the peer.
#   cold: 20 never-seen domains at once (20 connections, one request
#         each) to a fresh mtasts-milter with an empty cache and a flushed
#         resolver: the slowest answer and the p50; and, for scale, the
#         slowest of COLD_SINGLES lookups of one cold domain alone (each on
#         a fresh milter too); then 20 more never-seen domains at once to
#         the same milter, once its first lookups are behind it. The same
#         for mta-sts-daemon (a fresh one each time: its cache is in memory).
#         All of it BENCH_COLD_RUNS times (medians, with the milter's CPU
#         time for the first 20, all threads); with BENCH_BASELINE=DIR
#         (another tree's build directory) its mtasts-milter alternates
#         with this one, run by run.
#
# Brings up the test world in a network namespace of its own and stops
# everything it started, by PID. Needs root. Prints numbers, asserts none.
#
# Environment: BENCH_MAP_LOOKUPS (per case, server and run, split over the
# connections; 20000, five times that pipelined), BENCH_RUNS (5),
# BENCH_MAP_ROUNDS (10: the turns of each server in a run), BENCH_MAP_CASES
# ("1x1 64x1 1x64"), BENCH_COLD_SINGLES (3; 0: none), BENCH_COLD_RUNS (1),
# BENCH_BASELINE (none), BENCH_MAP_PARTS ("warm cold"), BENCH_KEEP=1 (keep
# the scratch directory).
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
SELF="$HERE/$(basename "$0")"
BUILD=$(cd "${top_builddir:-$HERE/../..}" && pwd)
MILTER="$BUILD/milter/mtasts-milter"
CTL="$BUILD/milter/mtasts-ctl"
LOAD="$BUILD/tests/bench/mapload"
ECHO="$BUILD/tests/bench/netstring_echo"
WORLD_SH="$HERE/../world/world.sh"
LOOKUPS=${BENCH_MAP_LOOKUPS:-20000}
RUNS=${BENCH_RUNS:-5}
CASES=${BENCH_MAP_CASES:-1x1 64x1 1x64}
ROUNDS=${BENCH_MAP_ROUNDS:-10}
COLD=20
COLD_SINGLES=${BENCH_COLD_SINGLES:-3}
COLD_RUNS=${BENCH_COLD_RUNS:-1}
BASELINE=${BENCH_BASELINE:-}
PARTS=${BENCH_MAP_PARTS:-warm cold}
part() { case " $PARTS " in *" $1 "*) return 0 ;; esac; return 1; }

say() { echo "bench_map: $*"; }
# shellcheck source=tests/integration/maplib.sh
. "$HERE/../integration/maplib.sh" # maplib_peer_start

if [ "$(id -u)" -ne 0 ]; then
    say "skipped (the test world needs root)"
    exit 0
fi
for p in "$MILTER" "$CTL" "$LOAD" "$ECHO"; do
    [ -x "$p" ] || { say "skipped ($p is not built)"; exit 0; }
done
if [ -z "${MTS_BENCH_IN_NETNS:-}" ]; then
    why=$("$WORLD_SH" netns-check) || { say "skipped ($why)"; exit 0; }
    ns=mts-bench-map-$$
    ip netns add "$ns" || { say "cannot create network namespace $ns"; exit 1; }
    ip netns exec "$ns" ip link set lo up
    MTS_BENCH_IN_NETNS=$ns ip netns exec "$ns" "$SELF" "$@"
    rc=$?
    ip netns del "$ns"
    exit $rc
fi

W=/tmp/mts-bench-map.$$
declare -A PIDS=() # name -> pid of what we started
stop() {           # stop NAME: SIGTERM, wait 10 s, then SIGKILL
    local p=${PIDS[$1]:-} i
    [ -n "$p" ] || return 0
    kill -TERM "$p" 2>/dev/null
    for ((i = 0; i < 100; i++)); do
        kill -0 "$p" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$p" 2>/dev/null
    wait "$p" 2>/dev/null
    unset "PIDS[$1]"
}
cleanup() {
    local k
    for k in "${!PIDS[@]}"; do stop "$k"; done
    "$WORLD_SH" down "$W/world" >/dev/null 2>&1
    if [ -n "${BENCH_KEEP:-}" ]; then say "scratch directory $W kept"; else rm -rf "$W"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mkdir -p "$W" || exit 1
if ! "$WORLD_SH" up "$W/world" >"$W/world-up.log" 2>&1; then
    say "the test world did not come up:"
    tail -n 20 "$W/world-up.log"
    exit 1
fi
# shellcheck disable=SC1091
. "$W/world/env"
seq -w 1 50 | sed 's/^/d/; s/$/.test/' >"$W/domains"

# conf NAME: the world's configuration with its own cache and map socket
conf() {
    {
        grep -v -e '^#' -e '^cache_db' "$MTS_WORLD_CONF"
        echo "cache_db = $W/$1.sqlite"
        echo "socket = unix:$W/$1.milter.sock"
        echo "map_socket = unix:$W/$1.sock"
    } >"$W/$1.conf"
}

# wait_sock NAME PID: until $W/NAME.sock exists (10 s)
wait_sock() {
    local i
    for ((i = 0; i < 100; i++)); do
        kill -0 "$2" 2>/dev/null || break
        [ -S "$W/$1.sock" ] && return 0
        sleep 0.1
    done
    say "$1 did not come up:"
    tail -n 20 "$W/$1.log"
    return 1
}

# start_milter NAME [BINARY]: mtasts-milter with $W/NAME.conf, its map on $W/NAME.sock
# The map socket is bound (while still root) before the milter builds its
# runtime (cache, resolver, postconf); requests wait in the listen backlog
# until its loop runs, which it logs. The cold figures start from there, as
# the peer's (its socket appears when it serves): STARTUP_MS[NAME] keeps the
# time from the socket to that line.
declare -A STARTUP_MS=()
start_milter() {
    local i t0 bin=${2:-$MILTER}
    rm -f "$W/$1.sock"
    "$bin" -f -c "$W/$1.conf" >"$W/$1.log" 2>&1 </dev/null &
    PIDS[$1]=$!
    wait_sock "$1" "${PIDS[$1]}" || return 1
    t0=$(date +%s%N)
    for ((i = 0; i < 1000; i++)); do
        grep -q 'policy map (socketmap) listening' "$W/$1.log" && break
        kill -0 "${PIDS[$1]}" 2>/dev/null || break
        sleep 0.01
    done
    STARTUP_MS[$1]=$((($(date +%s%N) - t0) / 1000000))
    grep -q 'policy map (socketmap) listening' "$W/$1.log" ||
        { say "$1 did not start its map:"; tail -n 20 "$W/$1.log"; return 1; }
}

# load NAME OUT ARGS...: mapload against $W/NAME.sock; output to OUT
load() {
    local n=$1 out=$2 s=()
    shift 2
    [ "$n" = side ] || s=(-s "unix:$W/$n.sock")
    timeout 300 "$LOAD" "${s[@]}" "$@" >"$out" 2>&1
    local rc=$?
    [ $rc -eq 0 ] || { say "mapload against $n failed ($rc):"; sed 's/^/  /' "$out" | head; }
    return $rc
}
# field FILE KEY: the value of KEY=VALUE in FILE
field() { grep -o "\b$2=[0-9.]*" "$1" | head -n 1 | cut -d= -f2; }
median() { printf '%s\n' "$@" | sort -n | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (b > 0) printf "%.2f", a / b; else print "-"}'; }
ms() { awk -v u="$1" 'BEGIN {printf "%.1f ms", u / 1000}'; }
replies() { grep -o 'ok=[0-9]* notfound=[0-9]* temp=[0-9]* perm=[0-9]* other=[0-9]* errors=[0-9]*' "$1" | head -n 1; }

# ---------------------------------------------------------------- warm
SERVERS="map"
if part warm; then
conf map
"$CTL" -c "$W/map.conf" prefetch "$W/domains" >"$W/prefetch.out" 2>&1 ||
    { say "prefetch failed:"; cat "$W/prefetch.out"; exit 1; }
start_milter map || exit 1
rm -f "$W/echo.sock"
"$ECHO" -s "unix:$W/echo.sock" >"$W/echo.log" 2>&1 &
PIDS[echo]=$!
wait_sock echo "${PIDS[echo]}" || exit 1
SERVERS="map echo"

fi

# postfix-mta-sts-resolver (Debian's package, mta-sts-daemon), when
# installed, on a unix socket of its own, resolving through the world's
# unbound and trusting the world's CA (maplib_peer_start), its cache the
# internal one (its default), uvloop when installed (its default).
peer="not installed (apt-get install postfix-mta-sts-resolver; .ci/install-deps does)"
peer_up() { # peer_up: a fresh mta-sts-daemon (empty cache) on $W/peer.sock
    maplib_peer_start "$W" || { say "mta-sts-daemon did not come up:"; tail -n 20 "$W/peer.log"; return 1; }
    PIDS[peer]=$PEER_PID
}
if command -v mta-sts-daemon >/dev/null && part warm; then
    if peer_up; then
        SERVERS="map echo peer"
        peer="$(dpkg-query -W -f='${Package} ${Version}' postfix-mta-sts-resolver 2>/dev/null), $(
            grep -q 'uvloop enabled' "$W/peer.log" && echo uvloop || echo 'asyncio (no uvloop)')"
    else
        peer="installed, did not start (log: $W/peer.log)"
        stop peer
    fi
fi


if part warm; then
say "warm: 50 enforce domains (d01..d50.test) prefetched ($(cat "$W/prefetch.out")) and asked once"
say "  each; over unix sockets, $RUNS runs a case, in each the servers side by side in $ROUNDS rounds;"
say "  mtasts-milter (map_workers at its default) logs at its default level to a file;"
say "  echo: netstring_echo, one fixed OK, nothing computed (the physical limit)"
say "  postfix-mta-sts-resolver (mta-sts-daemon): $peer"
for s in $SERVERS; do
    [ "$s" = echo ] && continue
    load "$s" "$W/warmup-$s.out" -c 1 -n 50 -K "$W/domains" || exit 1
    say "  warm-up, $s: $(replies "$W/warmup-$s.out")"
done
# A peer that answered anything but 50 OK measured something else (no DNS,
# no trust in the world's CA): leave it out rather than print its figures.
if [ "${SERVERS/peer/}" != "$SERVERS" ] && ! grep -q 'ok=50 ' "$W/warmup-peer.out"; then
    peer="its warm-up answers were not 50 OK but $(replies "$W/warmup-peer.out") (log: $W/peer.log)"
    say "  mta-sts-daemon left out: $peer"
    tail -n 5 "$W/peer.log"
    stop peer
    SERVERS="map echo"
fi
say "  (mta-sts-daemon revalidates a cached domain's TXT record after 60 s, its cache_grace,"
say "  on the request that finds it older: part of its warm steady state)"

# sfield FILE N KEY: KEY's value in the N-th server's block of a
# side-by-side mapload's output (N from 1, in -s order)
sfield() {
    awk -v n="$2" -v k="$3" '/^mapload: /{i++} i == n {
        for (f = 1; f <= NF; f++) if (index($f, k "=") == 1) {print substr($f, length(k) + 2); exit}}' "$1"
}
sreplies() { awk -v n="$2" '/^mapload: /{i++} i == n && /^replies: /{sub(/^replies: /, ""); print; exit}' "$1"; }
label() { case $1 in map) echo mtasts-milter ;; echo) echo echo ;; peer) echo mta-sts-daemon ;; esac; }
# the number of runs (of a list of ratios) at or above a target
atleast() { awk -v t="$2" '{for (i = 1; i <= NF; i++) if ($i >= t) n++} END {print n + 0}' <<<"$1"; }

# Each run is one mapload with every server side by side (-s each): the
# lookups of a connection in ROUNDS rounds, each server in turn per round
# (mapload.c), so a burst of load from elsewhere on the machine falls on
# all of them alike rather than on whichever ran then. Per server:
# lookups/s over its turns, the lookups/s of its median turn (the turns a
# burst fell on left out), p50, p99; the ratios per run, then medians.
declare -A RATE=() TURN=() P50=() P99=()
for case in $CASES; do
    c=${case%x*} p=${case#*x}
    n=$LOOKUPS
    [ "$p" -gt 1 ] && n=$((LOOKUPS * 5)) # pipelined: about 5 times as fast
    per=$(((n + c - 1) / c))
    declare -A runs=()
    sargs=()
    for s in $SERVERS; do sargs+=(-s "unix:$W/$s.sock"); done
    for ((r = 1; r <= RUNS; r++)); do
        out="$W/warm-$case-r$r.out"
        load side "$out" "${sargs[@]}" -r "$ROUNDS" -c "$c" -n "$per" -p "$p" -K "$W/domains" || exit 1
        i=0
        for s in $SERVERS; do
            i=$((i + 1))
            runs[$s.rate]+="$(sfield "$out" $i lookups_per_s) "
            runs[$s.turn]+="$(sfield "$out" $i turn_median_per_s) "
            runs[$s.p50]+="$(sfield "$out" $i p50_us) "
            runs[$s.p99]+="$(sfield "$out" $i p99_us) "
        done
        # shellcheck disable=SC2206 # lists of numbers
        { mr=(${runs[map.rate]}) er=(${runs[echo.rate]}) mt=(${runs[map.turn]}) et=(${runs[echo.turn]}); }
        runs[me]+="$(ratio "${mr[-1]}" "${er[-1]}") " runs[met]+="$(ratio "${mt[-1]}" "${et[-1]}") "
        if [ -n "${runs[peer.rate]:-}" ]; then
            # shellcheck disable=SC2206
            { pr=(${runs[peer.rate]}) pt=(${runs[peer.turn]}); }
            runs[mp]+="$(ratio "${mr[-1]}" "${pr[-1]}") " runs[mpt]+="$(ratio "${mt[-1]}" "${pt[-1]}") "
            runs[ep]+="$(ratio "${er[-1]}" "${pr[-1]}") "
        fi
    done
    case "$case" in
    1x1) what="1 connection, answer by answer" ;;
    *x1) what="$c connections, answer by answer ($c in flight)" ;;
    1x*) what="1 connection, $p pipelined in flight" ;;
    *) what="$c connections x $p pipelined in flight" ;;
    esac
    say "$what, $((per * c)) lookups a server and run, side by side in $ROUNDS rounds; medians of $RUNS runs:"
    i=0
    for s in $SERVERS; do
        i=$((i + 1))
        # shellcheck disable=SC2086 # lists of numbers
        {
            RATE[$s]=$(median ${runs[$s.rate]}) TURN[$s]=$(median ${runs[$s.turn]})
            P50[$s]=$(median ${runs[$s.p50]}) P99[$s]=$(median ${runs[$s.p99]})
        }
        printf 'bench_map:   %-14s %7s lookups/s (median turn %7s)  p50 %5s us  p99 %5s us\n' \
            "$(label "$s")" "${RATE[$s]}" "${TURN[$s]}" "${P50[$s]}" "${P99[$s]}"
        say "      runs: ${runs[$s.rate]% } lookups/s; last run: $(sreplies "$W/warm-$case-r$RUNS.out" $i)"
    done
    # shellcheck disable=SC2086 # lists of numbers
    {
        say "  ratio map / echo: lookups/s $(median ${runs[me]}) (runs: ${runs[me]% }; $(atleast "${runs[me]}" 0.8) of $RUNS >= 0.8),"
        say "    median turn $(median ${runs[met]}) (runs: ${runs[met]% }), p50 $(ratio "${P50[echo]}" "${P50[map]}") (echo's p50 / ours)   [issue 11's target: >= 0.8]"
        if [ -n "${runs[mp]:-}" ]; then
            say "  ratio map / mta-sts-daemon: lookups/s $(median ${runs[mp]}) (runs: ${runs[mp]% }; $(atleast "${runs[mp]}" 3) of $RUNS >= 3),"
            say "    median turn $(median ${runs[mpt]}) (runs: ${runs[mpt]% }), p50 $(ratio "${P50[peer]}" "${P50[map]}") (its p50 / ours)$(
                [ "$case" = 1x1 ] && echo "   [issue 11's target: >= 3]")"
            say "    echo / mta-sts-daemon $(median ${runs[ep]}) (runs: ${runs[ep]% }): what the physical limit itself shows against the peer"
        else
            say "  ratio map / mta-sts-daemon: none, the peer is left out: $peer"
        fi
    }
    unset runs
done
say "  ($(grep -c '' "$W/map.log") lines in mtasts-milter's log)"
for s in $SERVERS; do stop "$s"; done

fi
# without the warm part: the peer's cold figures still wanted
if ! part warm && command -v mta-sts-daemon >/dev/null; then
    if peer_up; then
        SERVERS="map peer"
        stop peer
    fi
fi

# ---------------------------------------------------------------- cold
part cold || exit 0
# cpu_ns PID: CPU time of all the process's threads so far (schedstat, ns)
cpu_ns() { cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{s += $1} END {printf "%d", s}'; }
# cold NAME BINARY OUT ARGS...: a fresh milter (empty cache, flushed resolver), one run
cold() {
    local n=$1 bin=$2 out=$3
    shift 3
    conf "$n"
    rm -f "$W/$n.sqlite" "$W/$n.sqlite-wal" "$W/$n.sqlite-shm"
    "$WORLD_SH" flush "$W/world" >/dev/null 2>&1
    start_milter "$n" "$bin" || return 1
    load "$n" "$out" -t 30000 "$@"
    local rc=$?
    stop "$n"
    return $rc
}
variants="new"
[ -n "$BASELINE" ] && variants="new base"
declare -A BIN=([new]="$MILTER" [base]="$BASELINE/milter/mtasts-milter") RES=()
sed -n "31,$((30 + COLD))p" "$W/domains" >"$W/domains2"
for ((r = 1; r <= COLD_RUNS; r++)); do
    for v in $variants; do
        worst=0 singles=()
        for ((i = 1; i <= COLD_SINGLES; i++)); do
            d=$(sed -n "$((COLD + i))p" "$W/domains")
            cold "$v-single$i" "${BIN[$v]}" "$W/$v-single$i-r$r.out" -c 1 -n 1 -k "$d" || exit 1
            us=$(field "$W/$v-single$i-r$r.out" max_us)
            singles+=("$(ms "$us") $(grep -o 'ok=[0-9]*' "$W/$v-single$i-r$r.out" | head -n 1)")
            [ "${us%.*}" -gt "$worst" ] && worst=${us%.*}
        done
        # 20 never-seen domains at once to a fresh milter, then 20 more
        # (d31..d50) to the same milter, its first lookups behind it
        # (resolver not flushed)
        n=$v-cold
        conf "$n"
        rm -f "$W/$n.sqlite" "$W/$n.sqlite-wal" "$W/$n.sqlite-shm"
        "$WORLD_SH" flush "$W/world" >/dev/null 2>&1
        start_milter "$n" "${BIN[$v]}" || exit 1
        c0=$(cpu_ns "${PIDS[$n]}")
        load "$n" "$W/$v-cold-r$r.out" -t 30000 -c "$COLD" -n 1 -K "$W/domains" || exit 1
        cpu=$((($(cpu_ns "${PIDS[$n]}") - c0) / 1000))
        load "$n" "$W/$v-cold2-r$r.out" -t 30000 -c "$COLD" -n 1 -K "$W/domains2" || exit 1
        stop "$n"
        o=$W/$v-cold-r$r.out o2=$W/$v-cold2-r$r.out
        RES[$v.max]+="$(field "$o" max_us) " RES[$v.p50]+="$(field "$o" p50_us) "
        RES[$v.max2]+="$(field "$o2" max_us) " RES[$v.cpu]+="$cpu " RES[$v.worst]+="$worst "
        say "  cold run $r, $v:$([ "$COLD_SINGLES" -gt 0 ] && echo " singles $(printf '%s, ' "${singles[@]}")") $COLD at once: slowest $(ms "$(field "$o" max_us)"), p50 $(ms "$(field "$o" p50_us)"), milter CPU $(ms "$cpu") (ready ${STARTUP_MS[$n]} ms after its socket; $(replies "$o")); $COLD more: slowest $(ms "$(field "$o2" max_us)") ($(replies "$o2"))"
    done
    if [ "${SERVERS/peer/}" != "$SERVERS" ]; then
        # the peer: a fresh mta-sts-daemon (empty cache) each time
        "$WORLD_SH" flush "$W/world" >/dev/null 2>&1
        peer_up || exit 1
        load peer "$W/peercold-r$r.out" -t 30000 -c "$COLD" -n 1 -K "$W/domains" || exit 1
        load peer "$W/peercold2-r$r.out" -t 30000 -c "$COLD" -n 1 -K "$W/domains2" || exit 1
        stop peer
        o=$W/peercold-r$r.out o2=$W/peercold2-r$r.out
        RES[peer.max]+="$(field "$o" max_us) " RES[peer.p50]+="$(field "$o" p50_us) "
        RES[peer.max2]+="$(field "$o2" max_us) "
        say "  cold run $r, mta-sts-daemon: $COLD at once: slowest $(ms "$(field "$o" max_us)"), p50 $(ms "$(field "$o" p50_us)") ($(replies "$o")); $COLD more: slowest $(ms "$(field "$o2" max_us)") ($(replies "$o2"))"
    fi
done
say "cold (fresh server each time, empty cache, flushed resolver, defaults), medians of $COLD_RUNS run(s)"
say "  $([ -n "$BASELINE" ] && echo "this build (new) alternating with $BASELINE (base) and")$([ "${SERVERS/peer/}" != "$SERVERS" ] && echo " mta-sts-daemon (its defaults; it does not validate DNSSEC)"):"
for v in $variants $([ "${SERVERS/peer/}" != "$SERVERS" ] && echo peer); do
    # shellcheck disable=SC2086 # lists of numbers
    {
        mx=$(median ${RES[$v.max]}) p5=$(median ${RES[$v.p50]}) mx2=$(median ${RES[$v.max2]})
    }
    line="$COLD never-seen domains at once: slowest $(ms "$mx"), p50 $(ms "$p5"); then $COLD more: slowest $(ms "$mx2")"
    if [ "$v" != peer ]; then
        # shellcheck disable=SC2086
        cpu=$(median ${RES[$v.cpu]})
        line+="; milter CPU for the first $COLD $(ms "$cpu") ($(awk -v c="$cpu" -v n="$COLD" 'BEGIN {printf "%.2f", c / n / 1000}') ms a domain)"
        # shellcheck disable=SC2086
        [ "$COLD_SINGLES" -gt 0 ] && line+="; one alone (slowest of $COLD_SINGLES) $(ms "$(median ${RES[$v.worst]})")"
    fi
    say "  $v: $line"
    say "    (runs, slowest of $COLD at once: $(for u in ${RES[$v.max]}; do printf '%s ' "$(ms "$u")"; done))"
done
if [ "${SERVERS/peer/}" != "$SERVERS" ]; then
    for v in $variants; do
        # shellcheck disable=SC2086
        say "  ratio slowest of $COLD at once, $v / mta-sts-daemon: $(ratio "$(median ${RES[$v.max]})" "$(median ${RES[peer.max]})") (issue 11's target: <= 1); then $COLD more: $(ratio "$(median ${RES[$v.max2]})" "$(median ${RES[peer.max2]})")"
    done
else
    say "  (mta-sts-daemon: $peer; issue 11 measured it at 77-105 ms for $COLD at once)"
fi
