#!/bin/bash
# bench_milter.sh - RCPT verdicts against the speed of a no-op milter
# (issue 9). miltload speaks the milter protocol as Postfix does (MAIL with
# {auth_authen}, RCPTs with {rcpt_mailer}=smtp and {rcpt_host}, EOM) to
# mtasts-milter and to noop_milter (libmilter, CONTINUE everywhere, one
# header at EOM), both on unix sockets, same machine, alternating runs.
#
#   warm: the test world's 50 enforce domains (d01..d50.test) prefetched,
#         enforcing_transports = smtp, so every recipient is tagged; RUNS
#         runs of each filter at each connection count; prints the medians
#         of RCPT/s, p50 and p99, and milter / no-op ratios (of the medians,
#         and the median of each run's ratio to the baseline run beside it:
#         odd runs start with the milter, even runs end with it, so that a
#         drift of the machine's speed cancels in the pairs), and each
#         filter's CPU time a RCPT (all its threads, /proc/PID/stat: the
#         figure a loaded machine changes least); then each process's VmRSS.
#         A second baseline runs in the same alternation: the no-op milter
#         with -T, which writes one tag header a distinct recipient domain
#         as mtasts-milter does (about 4.8 a message here: 5 RCPTs among 50
#         domains) where the plain no-op writes one; its ratio is what the
#         verdicts cost apart from the headers' protocol traffic, and its
#         own ratio to the plain no-op (paired) what the headers alone cost.
#   dane: as warm, with mx_probes = yes and the world's 50 domains with
#         MTA-STS enforce and a matching DNSSEC-signed TLSA 3 1 1
#         (dd01..dd50.test), prefetched with their probes: each verdict
#         rests on the probe row and TLSA data held in memory (issue 17's
#         "Done when": ratio to the no-op milter >= 0.9 at 1 and 8).
#   first: the first RCPT to a never-seen enforce domain (BENCH_FIRST_DOMAINS:
#         goodmx.test, good MX, no TLSA; stsdane.test, matching TLSA), each
#         run on a fresh mtasts-milter with an empty cache and a flushed
#         resolver, mx_probes = no and yes alternating, BENCH_FIRST_RUNS (7)
#         runs each: median, min and max of the RCPT's latency side by side.
#   rss:  BENCH_RSS_DOMAINS (100,000) domains with enforce policies and MX
#         sets written into the cache of a running mtasts-milter, then one
#         RCPT to each; prints its VmRSS before and after.
#   cold: 50 never-seen domains at once (50 connections, one RCPT each) to
#         a fresh mtasts-milter with an empty cache and a flushed resolver,
#         against the slowest of COLD_SINGLES lookups of one cold domain
#         alone (each on a fresh milter too); with the CPU time the milter
#         used for the 50 (all its threads). BENCH_COLD_RUNS times; with
#         BENCH_BASELINE=DIR (another tree's build directory) its
#         mtasts-milter alternates with this one, run by run; medians.
#
#   scrape: as warm (mtasts-milter only, metrics_socket on), at 8
#         connections (BENCH_SCRAPE_CONNECTIONS), BENCH_SCRAPE_RUNS (5)
#         pairs of runs, alternating: one with nobody scraping, one with a
#         GET /metrics every second (BENCH_SCRAPE_EVERY) throughout; the
#         medians of RCPT/s, p50 and p99 of each and the ratios with /
#         without (issue 18: a scrape does not change the warm ratio beyond
#         noise), the scrapes made, the page's size and its series.
#   fleet: as warm, with fleet_redis set to a redis-server on a unix socket
#         that the bench starts (and stops by PID) and a fleet key: the warm
#         RCPT ratio to the no-op milter with the fleet on (issue 20; the
#         RCPT path reads memory and SQLite first, Redis only behind them).
#         Skipped when redis-server is not installed.
#
# Brings up the test world in a network namespace of its own and stops
# everything it started, by PID. Needs root. Prints numbers, asserts none.
#
# Environment: BENCH_MESSAGES (per case, split over the connections; 4000),
# BENCH_RCPTS (per message; 5), BENCH_RUNS (5), BENCH_CONNECTIONS ("1 8"),
# BENCH_COLD_SINGLES (5), BENCH_RSS_DOMAINS (100000; miltload takes at most
# 100000), BENCH_KEEP=1 (keep the scratch directory), BENCH_PARTS (the parts
# to run: "warm dane first cold rss scrape fleet"), BENCH_PERF=FILE (perf record -g the
# milter, then the tagging no-op, during one extra run each at the last
# connection count, into FILE.PART.PART and FILE.PART.tagnoop),
# BENCH_DANE_EXTRA (one more configuration line for the dane part),
# BENCH_LOG_PIPE=1 (mtasts-milter's stderr goes through a pipe to a cat
# writing the file, as a systemd service's goes to journald),
# BENCH_COLD_RUNS (1), BENCH_BASELINE (none), BENCH_COLD_PERF=FILE (perf
# record the milter during the last 50-at-once run; BENCH_PERF_OPTS),
# BENCH_PIN="F:L ..." (the placements of the warm, dane and fleet cases:
# filters on CPUs F, miltload on L, "-" the scheduler's choice; see below),
# BENCH_RSS_MAPS=1 (the RSS case also prints the resident size of each
# mapping: every shared library, the heap, anonymous mappings).
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
SELF="$HERE/$(basename "$0")"
BUILD=$(cd "${top_builddir:-$HERE/../..}" && pwd)
MILTER="$BUILD/milter/mtasts-milter"
CTL="$BUILD/milter/mtasts-ctl"
LOAD="$BUILD/tests/bench/miltload"
NOOP="$BUILD/tests/bench/noop_milter"
WORLD_SH="$HERE/../world/world.sh"
MESSAGES=${BENCH_MESSAGES:-4000}
RCPTS=${BENCH_RCPTS:-5}
RUNS=${BENCH_RUNS:-5}
CONNECTIONS=${BENCH_CONNECTIONS:-1 8}
COLD_SINGLES=${BENCH_COLD_SINGLES:-5}
COLD_RUNS=${BENCH_COLD_RUNS:-1}
BASELINE=${BENCH_BASELINE:-}
RSS_DOMAINS=${BENCH_RSS_DOMAINS:-100000}
FIRST_RUNS=${BENCH_FIRST_RUNS:-7}
FIRST_DOMAINS=${BENCH_FIRST_DOMAINS:-goodmx.test stsdane.test}
PARTS=${BENCH_PARTS:-warm dane first cold rss scrape fleet}
# BENCH_PIN=F:L: every filter (mtasts-milter and the no-ops) runs on CPU
# list F and miltload on L (taskset -c), e.g. 1:0; default "-": no pinning.
# On a small VM the scheduler's choice of placing the two ends of a round
# trip on one CPU or two changes its latency run to run; pinned, every
# filter gets the same placement. A list, e.g. "- 1:0 0:0", runs the warm,
# dane and fleet cases in each placement in turn (the filters' threads are
# moved with taskset -a -p, miltload started pinned) and ends each case
# with a table of the paired ratios by placement; the other parts then run
# unpinned. One F:L pins every part, as before.
PLACEMENTS=${BENCH_PIN:--}
N_PLACEMENTS=$(wc -w <<<"$PLACEMENTS")
PIN_FILTER=(env) PIN_LOAD=(env)
if [ "$N_PLACEMENTS" -eq 1 ] && [ "$PLACEMENTS" != - ]; then
    PIN_FILTER=(taskset -c "${PLACEMENTS%%:*}") PIN_LOAD=(taskset -c "${PLACEMENTS#*:}")
fi
# place PLACEMENT PID...: every thread of each PID on the placement's filter
# CPUs (new threads inherit it), and PIN_LOAD for miltload's next runs.
place() {
    local pl=$1 cpus pid
    shift
    if [ "$pl" = - ]; then
        cpus="0-$(($(nproc) - 1))" PIN_LOAD=(env)
    else
        cpus=${pl%%:*} PIN_LOAD=(taskset -c "${pl#*:}")
    fi
    for pid in "$@"; do
        taskset -a -c -p "$cpus" "$pid" >/dev/null || { say "taskset -a -c -p $cpus $pid failed"; return 1; }
    done
}
part() { case " $PARTS " in *" $1 "*) return 0 ;; esac; return 1; }

say() { echo "bench_milter: $*"; }

if [ "$(id -u)" -ne 0 ]; then
    say "skipped (the test world needs root)"
    exit 0
fi
for p in "$MILTER" "$CTL" "$LOAD" "$NOOP"; do
    [ -x "$p" ] || { say "skipped ($p is not built)"; exit 0; }
done
if [ -z "${MTS_BENCH_IN_NETNS:-}" ]; then
    why=$("$WORLD_SH" netns-check) || { say "skipped ($why)"; exit 0; }
    ns=mts-bench-$$
    ip netns add "$ns" || { say "cannot create network namespace $ns"; exit 1; }
    ip netns exec "$ns" ip link set lo up
    MTS_BENCH_IN_NETNS=$ns ip netns exec "$ns" "$SELF" "$@"
    rc=$?
    ip netns del "$ns"
    exit $rc
fi

W=/tmp/mts-bench-milter.$$
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

# conf NAME [LINE...]: the world's configuration with its own cache, smtp
# enforcing, and the LINEs
conf() {
    local n=$1
    shift
    {
        grep -v -e '^#' -e '^cache_db' "$MTS_WORLD_CONF"
        echo "cache_db = $W/$n.sqlite"
        echo "enforcing_transports = smtp"
        [ $# -eq 0 ] || printf '%s\n' "$@"
    } >"$W/$n.conf"
}

# start_milter NAME [BINARY]: mtasts-milter with $W/NAME.conf on $W/NAME.sock
start_milter() {
    local n=$1 bin=${2:-$MILTER} i p
    rm -f "$W/$n.sock"
    if [ -n "${BENCH_LOG_PIPE:-}" ]; then
        "${PIN_FILTER[@]}" "$bin" -f -c "$W/$n.conf" -p "unix:$W/$n.sock" 2> >(cat >"$W/$n.log") </dev/null &
    else
        "${PIN_FILTER[@]}" "$bin" -f -c "$W/$n.conf" -p "unix:$W/$n.sock" >"$W/$n.log" 2>&1 </dev/null &
    fi
    p=$!
    PIDS[$n]=$p
    for ((i = 0; i < 100; i++)); do
        kill -0 "$p" 2>/dev/null || break
        [ -S "$W/$n.sock" ] && grep -q ' listening on ' "$W/$n.log" && return 0
        sleep 0.1
    done
    say "mtasts-milter ($n) did not come up:"
    tail -n 20 "$W/$n.log"
    return 1
}

# load NAME OUT ARGS...: miltload against $W/NAME.sock; output to OUT
load() {
    local n=$1 out=$2
    shift 2
    timeout 300 "${PIN_LOAD[@]}" "$LOAD" -s "unix:$W/$n.sock" "$@" >"$out" 2>&1
    local rc=$?
    [ $rc -eq 0 ] || { say "miltload against $n failed ($rc):"; sed 's/^/  /' "$out"; }
    return $rc
}
# field FILE KEY: the value of KEY=VALUE in FILE
field() { grep -o "\b$2=[0-9.]*" "$1" | head -n 1 | cut -d= -f2; }
median() { printf '%s\n' "$@" | sort -n | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }
minmax() { printf '%s\n' "$@" | sort -n | awk 'NR == 1 {lo = $1} {hi = $1} END {print lo ".." hi}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (b > 0) printf "%.2f", a / b; else print "-"}'; }
ms() { awk -v u="$1" 'BEGIN {printf "%.1f ms", u / 1000}'; }
# cpu_ns PID: CPU time of all the process's threads so far (schedstat, ns)
cpu_ns() { cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{s += $1} END {printf "%d", s}'; }
# proc_cpu_ns PID: user + system CPU of the whole process so far, threads
# that have exited included (/proc/PID/stat, clock ticks): libmilter's
# connection threads end with their connection, and schedstat forgets them
proc_cpu_ns() {
    awk -v hz="$(getconf CLK_TCK)" '{sub(/.*\) /, ""); printf "%.0f", ($12 + $13) * 1000000000 / hz}' \
        "/proc/$1/stat" 2>/dev/null
}
rss() { awk '/^VmRSS:/ {printf "%.1f MB", $2 / 1024}' "/proc/$1/status" 2>/dev/null; }
# rss_parts PID: VmRSS split into private (anonymous) memory and mapped files
# (the shared libraries' pages, shared with every process that maps them)
rss_parts() {
    awk '/^RssAnon:/ {a = $2} /^RssFile:/ {f = $2} /^RssShmem:/ {s = $2}
         END {printf "anon %.1f MB, files %.1f MB, shmem %.1f MB", a / 1024, f / 1024, s / 1024}' \
        "/proc/$1/status" 2>/dev/null
}
# rss_maps PID: the mappings' resident sizes by file (anonymous ones as
# [anon], [stack], [heap]), the largest first
rss_maps() {
    awk '/^[0-9a-f]+-[0-9a-f]+ / {f = ($6 == "" ? "[anon]" : $6); sub(/.*\//, "", f)}
         /^Rss:/ {r[f] += $2}
         END {for (f in r) if (r[f] >= 64) printf "%7.0f kB  %s\n", r[f], f}' \
        "/proc/$1/smaps" 2>/dev/null | sort -rn
}
# hdrs FILE: header modifications a message in miltload's output FILE
hdrs() { awk '{for (i = 1; i <= NF; i++) {split($i, kv, "="); v[kv[1]] = kv[2]}}
    END {if (v["messages"] > 0) printf "%.1f", v["modifications"] / v["messages"]; else print "-"}' "$1"; }
replies() { grep -o 'continue=[0-9]* tempfail=[0-9]* reject=[0-9]* other=[0-9]*' "$1" | head -n 1; }

# ---------------------------------------------------------------- warm
# warm_case NAME DOMAINS WHAT: mtasts-milter with $W/NAME.conf (written by
# the caller), DOMAINS prefetched into its cache, one pass over them, then
# RUNS alternating runs of it and of the no-op milter at each connection
# count: medians of RCPT/s, p50, p99 and the ratios. WHAT says what it is.
warm_case() {
    local n=$1 domains=$2 what=$3 c per r f out mr mp50 mp99 nr np50 np99 mc nc i c0 cpu pl
    local -a table=()
    "$CTL" -c "$W/$n.conf" prefetch "$domains" >"$W/$n-prefetch.out" 2>&1 ||
        { say "prefetch failed:"; cat "$W/$n-prefetch.out"; return 1; }
    start_milter "$n" || return 1
    rm -f "$W/noop.sock" "$W/tagnoop.sock"
    "${PIN_FILTER[@]}" "$NOOP" -p "unix:$W/noop.sock" 2>"$W/noop.log" &
    PIDS[noop]=$!
    # the second baseline: a no-op that writes mtasts-milter's tag headers
    "${PIN_FILTER[@]}" "$NOOP" -T -p "unix:$W/tagnoop.sock" 2>"$W/tagnoop.log" &
    PIDS[tagnoop]=$!
    for ((i = 0; i < 100; i++)); do [ -S "$W/noop.sock" ] && [ -S "$W/tagnoop.sock" ] && break; sleep 0.05; done

    say "$what"
    say "  ($(grep '^prefetched' "$W/$n-prefetch.out")), enforcing_transports = smtp,"
    say "  $MESSAGES messages x $RCPTS RCPTs a case over unix sockets, median of $RUNS alternating runs;"
    say "  mtasts-milter runs in the foreground, logging at its default level to a file"
    # one pass over every domain first (the milter's resolver learns the MX sets)
    load "$n" "$W/$n-warmup.out" -c 1 -m 100 -r "$RCPTS" -D "$domains" || return 1
    load noop "$W/$n-warmup-noop.out" -c 1 -m 100 -r "$RCPTS" -D "$domains" || return 1
    load tagnoop "$W/$n-warmup-tagnoop.out" -c 1 -m 100 -r "$RCPTS" -D "$domains" || return 1
    say "  warm-up, mtasts-milter's RCPT replies: $(replies "$W/$n-warmup.out")"

    for pl in $PLACEMENTS; do
        place "$pl" "${PIDS[$n]}" "${PIDS[noop]}" "${PIDS[tagnoop]}" || return 1
        [ "$pl" = - ] || say "placement $pl: every filter's threads on CPU(s) ${pl%%:*}, miltload on ${pl#*:}"
        for c in $CONNECTIONS; do
            per=$(((MESSAGES + c - 1) / c))
            local -a m_rate=() m_p50=() m_p99=() n_rate=() n_p50=() n_p99=() m_cpu=() n_cpu=()
            local -a t_rate=() t_p50=() t_p99=() t_cpu=() m_eom=() n_eom=() t_eom=()
            local -a pair=() tpair=() tnpair=() order
            for ((r = 1; r <= RUNS; r++)); do
                # Odd runs milter first, even runs last: a drift of the machine's
                # speed over a pair of runs favours neither side.
                if ((r % 2)); then order=("$n" noop tagnoop); else order=(tagnoop noop "$n"); fi
                for f in "${order[@]}"; do
                    out="$W/$n-$f-c$c-r$r.out"
                    c0=$(proc_cpu_ns "${PIDS[$f]}")
                    load "$f" "$out" -c "$c" -m "$per" -r "$RCPTS" -D "$domains" || return 1
                    # the filter's CPU (all its threads) per RCPT, in ns: what
                    # the machine's load changes least
                    cpu=$((($(proc_cpu_ns "${PIDS[$f]}") - c0) / (per * c * RCPTS)))
                    if [ "$f" = "$n" ]; then
                        m_rate+=("$(field "$out" rcpt_per_s)") m_p50+=("$(field "$out" rcpt_p50_us)")
                        m_p99+=("$(field "$out" rcpt_p99_us)") m_cpu+=("$cpu") m_eom+=("$(field "$out" eom)")
                    elif [ "$f" = noop ]; then
                        n_rate+=("$(field "$out" rcpt_per_s)") n_p50+=("$(field "$out" rcpt_p50_us)")
                        n_p99+=("$(field "$out" rcpt_p99_us)") n_cpu+=("$cpu") n_eom+=("$(field "$out" eom)")
                    else
                        t_rate+=("$(field "$out" rcpt_per_s)") t_p50+=("$(field "$out" rcpt_p50_us)")
                        t_p99+=("$(field "$out" rcpt_p99_us)") t_cpu+=("$cpu") t_eom+=("$(field "$out" eom)")
                    fi
                done
                pair+=("$(ratio "${m_rate[r - 1]}" "${n_rate[r - 1]}")")
                tpair+=("$(ratio "${m_rate[r - 1]}" "${t_rate[r - 1]}")")
                tnpair+=("$(ratio "${t_rate[r - 1]}" "${n_rate[r - 1]}")")
            done
            mr=$(median "${m_rate[@]}") mp50=$(median "${m_p50[@]}") mp99=$(median "${m_p99[@]}")
            nr=$(median "${n_rate[@]}") np50=$(median "${n_p50[@]}") np99=$(median "${n_p99[@]}")
            say "$c connection(s), $((per * c)) messages, $((per * c * RCPTS)) RCPTs:"
            printf 'bench_milter:   mtasts-milter %6s RCPT/s  p50 %6s us  p99 %6s us   (runs: %s RCPT/s)\n' \
                "$mr" "$mp50" "$mp99" "${m_rate[*]}"
            printf 'bench_milter:   no-op milter  %6s RCPT/s  p50 %6s us  p99 %6s us   (runs: %s RCPT/s)\n' \
                "$nr" "$np50" "$np99" "${n_rate[*]}"
            say "  ratio mtasts-milter / no-op: RCPT/s $(ratio "$mr" "$nr"), p50 $(ratio "$mp50" "$np50"), p99 $(ratio "$mp99" "$np99")"
            say "  paired RCPT/s ratio (each run to the no-op's run beside it): median $(median "${pair[@]}"), range $(minmax "${pair[@]}") (runs: ${pair[*]})"
            mc=$(median "${m_cpu[@]}") nc=$(median "${n_cpu[@]}")
            say "  filter CPU (all threads) a RCPT, with its share of MAIL, headers and EOM: mtasts-milter $mc ns,"
            say "    no-op $nc ns, ratio $(ratio "$mc" "$nc") (runs: ${m_cpu[*]} / ${n_cpu[*]})"
            tr=$(median "${t_rate[@]}") tp50=$(median "${t_p50[@]}") tp99=$(median "${t_p99[@]}")
            tc=$(median "${t_cpu[@]}")
            printf 'bench_milter:   no-op tagging %6s RCPT/s  p50 %6s us  p99 %6s us   (runs: %s RCPT/s)\n' \
                "$tr" "$tp50" "$tp99" "${t_rate[*]}"
            say "  (no-op tagging: the no-op milter writing one tag header a recipient domain, as"
            say "  mtasts-milter does, $(hdrs "$W/$n-$n-c$c-r$RUNS.out") a message, against the no-op's 1: what the verdicts cost apart from the headers)"
            say "  ratio mtasts-milter / no-op tagging: RCPT/s $(ratio "$mr" "$tr"), p50 $(ratio "$mp50" "$tp50"), p99 $(ratio "$mp99" "$tp99"), filter CPU $(ratio "$mc" "$tc") ($tc ns)"
            say "  paired RCPT/s ratio to the no-op tagging: median $(median "${tpair[@]}"), range $(minmax "${tpair[@]}") (runs: ${tpair[*]})"
            say "  paired RCPT/s ratio of the no-op tagging to the no-op (the headers alone): median $(median "${tnpair[@]}"), range $(minmax "${tnpair[@]}")"
            table+=("$(printf '%-9s %5s   %-17s %-17s %s' "$pl" "$c" \
                "$(median "${pair[@]}") ($(minmax "${pair[@]}"))" \
                "$(median "${tpair[@]}") ($(minmax "${tpair[@]}"))" \
                "$(median "${tnpair[@]}") ($(minmax "${tnpair[@]}"))")")
            say "  end of message to its last reply, mean: mtasts-milter $(median "${m_eom[@]}") us, no-op $(median "${n_eom[@]}") us, no-op tagging $(median "${t_eom[@]}") us (medians of the runs)"
            say "  RCPT replies of the last run: mtasts-milter $(replies "$W/$n-$n-c$c-r$RUNS.out"); no-op $(replies "$W/$n-noop-c$c-r$RUNS.out")"
            unset pair tpair tnpair m_rate m_p50 m_p99 n_rate n_p50 n_p99 m_cpu n_cpu t_rate t_p50 t_p99 t_cpu m_eom n_eom t_eom
        done
    done
    # the parts after this one run unpinned when there were several placements
    [ "$N_PLACEMENTS" -eq 1 ] || PIN_LOAD=(env)
    say "paired RCPT/s ratios by placement, median (range) of $RUNS runs:"
    say "  placement conns   milter / no-op    milter / tagging  tagging / no-op"
    for i in "${table[@]}"; do say "  $i"; done
    say "RSS after the runs: mtasts-milter $(rss "${PIDS[$n]}"), no-op milter $(rss "${PIDS[noop]}")"
    say "  ($(grep -c '' "$W/$n.log") lines in mtasts-milter's log)"
    if [ -n "${BENCH_PERF:-}" ]; then
        # the milter, then the tagging no-op: the same load, so that the two
        # profiles' sample counts compare
        local perf_pid f
        for f in "$n" tagnoop; do
            perf record ${BENCH_PERF_OPTS:--g} -o "$BENCH_PERF.$n.$f" -p "${PIDS[$f]}" >"$W/perf.log" 2>&1 &
            perf_pid=$!
            sleep 0.5
            load "$f" "$W/$n-perf-run-$f.out" -c "$c" -m "$per" -r "$RCPTS" -D "$domains"
            kill -INT "$perf_pid"
            wait "$perf_pid"
            say "perf profile of one more $f run ($c connection(s)) in $BENCH_PERF.$n.$f"
        done
    fi
    stop "$n"
    stop noop
    stop tagnoop
}

if part warm; then
    conf warm
    warm_case warm "$W/domains" "warm cache: 50 enforce domains (d01..d50.test, mx_probes = no) prefetched" || exit 1
fi

# ---------------------------------------------------------------- fleet
# The warm case with the fleet on (issue 20): a redis-server of the bench's
# own on a unix socket, fleet_redis and a fleet key set.
if part fleet; then
    if ! command -v redis-server >/dev/null || ! command -v redis-cli >/dev/null; then
        say "fleet: skipped (redis-server not installed)"
    else
        redis-server --port 0 --unixsocket "$W/redis.sock" --unixsocketperm 700 --save "" \
            --appendonly no --dir "$W" --logfile "$W/redis.log" --daemonize no &
        PIDS[redis]=$!
        for ((i = 0; i < 50; i++)); do
            redis-cli -s "$W/redis.sock" ping 2>/dev/null | grep -q PONG && break
            sleep 0.1
        done
        head -c 32 /dev/urandom >"$W/fleet.key"
        conf fleet "fleet_redis = unix:$W/redis.sock" "fleet_key_file = $W/fleet.key"
        warm_case fleet "$W/domains" \
            "warm cache, fleet on (fleet_redis on a unix socket): 50 enforce domains (d01..d50.test, mx_probes = no) prefetched" || exit 1
        say "  rows in Redis after the runs: $(redis-cli -s "$W/redis.sock" --scan --pattern '*policy:*' | grep -c .)"
        stop redis
    fi
fi

# ---------------------------------------------------------------- scrape
# The warm case at 8 connections, with and without a scrape of /metrics
# every second, alternating run by run (issue 18). Numbers only.
SCRAPE_PORT=19464
scrape_loop() { # every BENCH_SCRAPE_EVERY seconds a GET /metrics; counts into $W/scrapes
    local k=0
    while :; do
        curl -s -o /dev/null "http://127.0.0.1:$SCRAPE_PORT/metrics" && k=$((k + 1))
        echo "$k" >"$W/scrapes"
        sleep "${BENCH_SCRAPE_EVERY:-1}"
    done
}
if part scrape; then
    c=${BENCH_SCRAPE_CONNECTIONS:-8}
    sruns=${BENCH_SCRAPE_RUNS:-5}
    per=$(((MESSAGES + c - 1) / c))
    conf scrape "metrics_socket = inet:$SCRAPE_PORT@127.0.0.1"
    "$CTL" -c "$W/scrape.conf" prefetch "$W/domains" >"$W/scrape-prefetch.out" 2>&1 ||
        { say "prefetch failed:"; cat "$W/scrape-prefetch.out"; exit 1; }
    start_milter scrape || exit 1
    load scrape "$W/scrape-warmup.out" -c 1 -m 100 -r "$RCPTS" -D "$W/domains" || exit 1
    say "scrape: warm cache (50 enforce domains), $c connections, $((per * c)) messages x $RCPTS RCPTs a run,"
    say "  $sruns pairs of runs alternating: nobody scraping / GET /metrics every ${BENCH_SCRAPE_EVERY:-1} s"
    a_rate=() a_p50=() a_p99=() b_rate=() b_p50=() b_p99=() scrapes=0
    for ((r = 1; r <= sruns; r++)); do
        load scrape "$W/scrape-off-r$r.out" -c "$c" -m "$per" -r "$RCPTS" -D "$W/domains" || exit 1
        a_rate+=("$(field "$W/scrape-off-r$r.out" rcpt_per_s)") a_p50+=("$(field "$W/scrape-off-r$r.out" rcpt_p50_us)")
        a_p99+=("$(field "$W/scrape-off-r$r.out" rcpt_p99_us)")
        echo 0 >"$W/scrapes"
        scrape_loop &
        PIDS[scraper]=$!
        load scrape "$W/scrape-on-r$r.out" -c "$c" -m "$per" -r "$RCPTS" -D "$W/domains" || exit 1
        stop scraper
        scrapes=$((scrapes + $(cat "$W/scrapes")))
        b_rate+=("$(field "$W/scrape-on-r$r.out" rcpt_per_s)") b_p50+=("$(field "$W/scrape-on-r$r.out" rcpt_p50_us)")
        b_p99+=("$(field "$W/scrape-on-r$r.out" rcpt_p99_us)")
    done
    ar=$(median "${a_rate[@]}") ap50=$(median "${a_p50[@]}") ap99=$(median "${a_p99[@]}")
    br=$(median "${b_rate[@]}") bp50=$(median "${b_p50[@]}") bp99=$(median "${b_p99[@]}")
    printf 'bench_milter:   no scrape         %6s RCPT/s  p50 %6s us  p99 %6s us   (runs: %s RCPT/s)\n' \
        "$ar" "$ap50" "$ap99" "${a_rate[*]}"
    printf 'bench_milter:   scrape every %ss  %6s RCPT/s  p50 %6s us  p99 %6s us   (runs: %s RCPT/s)\n' \
        "${BENCH_SCRAPE_EVERY:-1}" "$br" "$bp50" "$bp99" "${b_rate[*]}"
    say "  ratio with / without scrapes: RCPT/s $(ratio "$br" "$ar"), p50 $(ratio "$bp50" "$ap50"), p99 $(ratio "$bp99" "$ap99")"
    curl -s -o "$W/scrape-page" "http://127.0.0.1:$SCRAPE_PORT/metrics"
    say "  $scrapes scrapes during the runs; the page: $(wc -c <"$W/scrape-page") bytes, $(grep -vc '^#' "$W/scrape-page") samples"
    stop scrape
fi

# ---------------------------------------------------------------- dane
# The path guarantee warm (issue 17): mx_probes = yes and 50 domains with
# MTA-STS enforce and a DNSSEC-signed TLSA 3 1 1 matching their MX host
# (dd01..dd50.test), prefetched with their probes (TLSA, DANE outcome), so
# that every RCPT's verdict rests on a probe result and TLSA data in memory.
if part dane; then
    seq -w 1 50 | sed 's/^/dd/; s/$/.test/' >"$W/dane-domains"
    conf dane "mx_probes = yes" ${BENCH_DANE_EXTRA:+"$BENCH_DANE_EXTRA"}
    warm_case dane "$W/dane-domains" \
        "warm cache, probes and DANE on: 50 enforce domains with TLSA (dd01..dd50.test) prefetched and probed" || exit 1
fi

# ---------------------------------------------------------------- cold
# cold NAME BINARY OUT ARGS...: a fresh milter (empty cache, flushed
# resolver), one run; CPU[NAME]: the ns of CPU it used for the run
declare -A CPU=()
COLD_CONF=() # more lines for the fresh milter's configuration
cold() {
    local n=$1 bin=$2 out=$3 c0 perf_pid=
    shift 3
    conf "$n" "${COLD_CONF[@]}"
    rm -f "$W/$n.sqlite" "$W/$n.sqlite-wal" "$W/$n.sqlite-shm"
    "$WORLD_SH" flush "$W/world" >/dev/null 2>&1
    start_milter "$n" "$bin" || return 1
    if [ -n "${COLD_PERF_NOW:-}" ]; then
        perf record ${BENCH_PERF_OPTS:--g} -o "$BENCH_COLD_PERF" -p "${PIDS[$n]}" >"$W/perf.log" 2>&1 &
        perf_pid=$!
        sleep 0.5
    fi
    c0=$(cpu_ns "${PIDS[$n]}")
    load "$n" "$out" "$@"
    local rc=$?
    CPU[$n]=$(($(cpu_ns "${PIDS[$n]}") - c0))
    if [ -n "$perf_pid" ]; then kill -INT "$perf_pid"; wait "$perf_pid"; fi
    stop "$n"
    return $rc
}
if part cold; then
variants="new"
[ -n "$BASELINE" ] && variants="new base"
declare -A BIN=([new]="$MILTER" [base]="$BASELINE/milter/mtasts-milter") RES=()
for ((r = 1; r <= COLD_RUNS; r++)); do
    for v in $variants; do
        worst=0 singles=()
        for ((i = 1; i <= COLD_SINGLES; i++)); do
            d=$(sed -n "${i}p" "$W/domains")
            cold "$v-single$i" "${BIN[$v]}" "$W/$v-single$i-r$r.out" -c 1 -m 1 -r 1 -d "$d" || exit 1
            us=$(field "$W/$v-single$i-r$r.out" rcpt_max_us)
            singles+=("$(ms "$us")")
            [ "$us" -gt "$worst" ] && worst=$us
        done
        COLD_PERF_NOW=
        [ -n "${BENCH_COLD_PERF:-}" ] && [ "$r" -eq "$COLD_RUNS" ] && [ "$v" = new ] && COLD_PERF_NOW=1
        cold "$v-parallel" "${BIN[$v]}" "$W/$v-parallel-r$r.out" -c 50 -m 1 -r 1 -D "$W/domains" || exit 1
        out="$W/$v-parallel-r$r.out"
        RES[$v.worst]+="$worst " RES[$v.pmax]+="$(field "$out" rcpt_max_us) "
        RES[$v.pp50]+="$(field "$out" rcpt_p50_us) " RES[$v.cpu]+="$((CPU[$v-parallel] / 1000)) "
        RES[$v.ratio]+="$(ratio "$(field "$out" rcpt_max_us)" "$worst") "
        say "  cold run $r, $v: singles $(IFS=,; echo "${singles[*]}" | sed 's/,/, /g'); 50 at once: slowest $(ms "$(field "$out" rcpt_max_us)"), p50 $(ms "$(field "$out" rcpt_p50_us)"), milter CPU $(ms $((CPU[$v-parallel] / 1000))); replies: $(replies "$out")"
    done
done
say "cold cache (fresh mtasts-milter, empty cache, flushed resolver; lookup_workers at its default),"
say "  medians of $COLD_RUNS run(s)$([ -n "$BASELINE" ] && echo ", this build (new) alternating with $BASELINE (base)"):"
for v in $variants; do
    # shellcheck disable=SC2086 # lists of numbers
    {
        w=$(median ${RES[$v.worst]}) pm=$(median ${RES[$v.pmax]}) pp=$(median ${RES[$v.pp50]})
        cpu=$(median ${RES[$v.cpu]}) rt=$(median ${RES[$v.ratio]})
    }
    say "  $v: one cold domain alone (slowest of $COLD_SINGLES) $(ms "$w"); 50 never-seen domains at once"
    say "    (50 connections, 1 RCPT each): slowest $(ms "$pm"), p50 $(ms "$pp"); milter CPU for the 50 $(ms "$cpu")"
    say "    ($(awk -v c="$cpu" 'BEGIN {printf "%.2f", c / 50000}') ms a domain)"
    say "    ratio slowest of 50 at once / slowest alone: $rt (runs: ${RES[$v.ratio]% })"
done
fi

# ---------------------------------------------------------------- first
# The first RCPT to a never-seen enforce domain whose MX is good (issue 17,
# "the first message"): each run a fresh mtasts-milter with an empty cache
# and a flushed resolver, one connection, one RCPT; mx_probes = no and
# mx_probes = yes alternate run by run (which goes first alternates too).
# With probes on, the RCPT waits for the probe of the MX host that decides
# (and its TLSA lookup) within rcpt_deadline_ms; the replies say whether it
# was accepted. goodmx.test: MX with a WebPKI certificate, no TLSA;
# stsdane.test: enforce and a matching TLSA 3 1 1 (a fresh DANE domain).
minmax() { printf '%s\n' "$@" | sort -n | awk 'NR == 1 {a = $1} {b = $1} END {printf "%s %s", a, b}'; }
if part first; then
    say "first RCPT to a never-seen enforce domain (fresh mtasts-milter, empty cache, flushed resolver;"
    say "  1 connection, 1 RCPT; probes off and on alternating, $FIRST_RUNS runs each; medians, min..max):"
    for d in $FIRST_DOMAINS; do
        declare -A FT=() FR=()
        for ((r = 1; r <= FIRST_RUNS; r++)); do
            order="off on"
            [ $((r % 2)) -eq 0 ] && order="on off"
            for v in $order; do
                if [ "$v" = on ]; then COLD_CONF=("mx_probes = yes"); else COLD_CONF=("mx_probes = no"); fi
                out="$W/first-$d-$v-r$r.out"
                cold "first-$v" "$MILTER" "$out" -c 1 -m 1 -r 1 -d "$d" || exit 1
                FT[$v]+="$(field "$out" rcpt_max_us) "
                rp=$(replies "$out")
                FR[$v.$rp]=$((${FR[$v.$rp]:-0} + 1))
            done
        done
        COLD_CONF=()
        for v in off on; do
            # shellcheck disable=SC2086 # lists of numbers
            { med=$(median ${FT[$v]}); read -r lo hi <<<"$(minmax ${FT[$v]})"; }
            rs=""
            for k in "${!FR[@]}"; do
                [ "${k%%.*}" = "$v" ] && rs+="${rs:+; }${FR[$k]} run(s) ${k#*.}"
            done
            printf 'bench_milter:   %-14s probes %-3s  median %9s  (min %s, max %s)   replies: %s\n' \
                "$d" "$v" "$(ms "$med")" "$(ms "$lo")" "$(ms "$hi")" "$rs"
            [ "$v" = off ] && off_med=$med
        done
        say "    ratio of the medians, probes on / off: $(ratio "$med" "$off_med")"
        say "    (runs, us: off ${FT[off]% }; on ${FT[on]% })"
        unset FT FR
    done
fi

# ---------------------------------------------------------------- RSS
# RSS_DOMAINS rows (enforce policies and MX sets, no DNS needed) written
# into a running milter's cache with sqlite3, then one RCPT to each.
part rss || exit 0
conf rss
start_milter rss || exit 1 # creates the cache with its schema
seq -w 1 "$RSS_DOMAINS" | sed 's/^/h/; s/$/.rss.test/' >"$W/rss-domains"
now=$(date +%s) w=${#RSS_DOMAINS}
sqlite3 "$W/rss.sqlite" >/dev/null <<EOF || { say "cannot fill the cache for the RSS case"; exit 1; }
PRAGMA busy_timeout = 10000;
BEGIN;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $RSS_DOMAINS)
INSERT INTO domains (domain, txt_id, has_policy, mode, max_age, mx, fetched_at, expires_at,
                     checked_at, last_used, status, dnssec)
SELECT printf('h%0${w}d.rss.test', i), 'bench1', 1, 'enforce', 86400,
       printf('mx.h%0${w}d.rss.test', i), $now, $now + 86400, $now, $now, 'enforce', 'secure'
FROM n;
INSERT INTO mx_sets (domain, hosts, fetched_at, expires_at, dnssec)
SELECT domain, 'mx.' || domain, $now, $now + 86400, 'secure' FROM domains
WHERE domain LIKE '%.rss.test';
COMMIT;
EOF
rss_before="$(rss "${PIDS[rss]}") ($(rss_parts "${PIDS[rss]}"))"
anon_before=$(awk '/^RssAnon:/ {print $2}' "/proc/${PIDS[rss]}/status")
per=$(((RSS_DOMAINS + 5 * 8 - 1) / (5 * 8)))
load rss "$W/rss.out" -c 8 -m "$per" -r 5 -D "$W/rss-domains" || exit 1
say "$RSS_DOMAINS cached domains (memory_cache_domains at its default), one RCPT to each over 8 connections:"
say "  RSS of mtasts-milter: $rss_before before,"
say "    $(rss "${PIDS[rss]}") ($(rss_parts "${PIDS[rss]}")) after; $(field "$W/rss.out" rcpt_per_s) RCPT/s; replies: $(replies "$W/rss.out")"
anon_after=$(awk '/^RssAnon:/ {print $2}' "/proc/${PIDS[rss]}/status")
say "  target: RSS <= 20 MB; private memory grown by $(awk -v a="$anon_before" -v b="$anon_after" -v n="$RSS_DOMAINS" 'BEGIN {printf "%.0f bytes", (b - a) * 1024 / n}') a domain"
if [ -n "${BENCH_RSS_MAPS:-}" ]; then
    say "  resident by mapping (64 kB or more):"
    rss_maps "${PIDS[rss]}" | sed 's/^/bench_milter:     /'
fi
stop rss
