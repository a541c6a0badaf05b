#!/bin/bash
# bench_fleet.sh - issue 20: three milter processes (own SQLite files) ask
# for the same 50 cold domains at once (d01.test .. d50.test of the test
# world), without and with a fleet on one redis-server: policy fetches
# (nginx's access log) in all (MX probes off: the world's d*.test MX
# hosts have no SMTP server); then, with mx_probes, the same three ask for
# the world's probe domains (their MX hosts on 127.0.50.N): probe
# connections (the world's smtp.log) without and with the fleet; the MX
# queries of the 50 cold domains (the world's unbound log); and
# the warm RCPT time with the fleet on against the fleet off (memory hits
# never touch Redis: the ratio should stay near 1).
# Needs root (the test world) and redis-server; skipped otherwise.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
WORLD=$(cd "$HERE/../world" && pwd)
BUILD=$(cd "${top_builddir:-$HERE/../..}" && pwd)
MILTER="$BUILD/milter/mtasts-milter"
W=/tmp/mts-bench-fleet.$$
if [ "$(id -u)" -ne 0 ] || ! command -v redis-server >/dev/null; then
    echo "bench_fleet: skipped (needs root and redis-server)"
    exit 0
fi
HERE=$WORLD . "$WORLD/suite.sh"
HERE=$WORLD suite_enter_netns mts-bfleet "$@"

PIDS=
cleanup() {
    local p
    for p in $PIDS; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null; done
    "$WORLD/world.sh" down "$W" >/dev/null 2>&1
    rm -rf "$W"
}
trap cleanup EXIT
"$WORLD/world.sh" up "$W" >/dev/null 2>&1 || { echo "bench_fleet: world did not come up"; exit 1; }
# shellcheck disable=SC1091
. "$W/env"
SOCK="$W/redis.sock"
head -c 32 /dev/urandom >"$W/fleet.key"
redis-server --port 0 --unixsocket "$SOCK" --unixsocketperm 700 --save "" --appendonly no \
    --dir "$W" --logfile "$W/redis.log" --daemonize no &
PIDS="$PIDS $!"
for ((i = 0; i < 50; i++)); do
    redis-cli -s "$SOCK" ping 2>/dev/null | grep -q PONG && break
    sleep 0.1
done
ADDRS=$(seq -w 1 50 | sed 's/^/bob@d/; s/$/.test/')

fetches() { grep -cE 'host=mta-sts\.d[0-9][0-9]\.test "GET /\.well-known/mta-sts\.txt' \
    "$W/nginx-access.log"; }
# dnsq TYPE REGEX: the world's resolver's client queries of TYPE for names matching REGEX
dnsq() {
    local n
    n=$(grep -cE " ($2)\. $1 IN" "$MTS_WORLD_UNBOUND_LOG" 2>/dev/null)
    echo "${n:-0}"
}
send() { # send NAME: the 50 RCPTs in one message
    # shellcheck disable=SC2086
    MT_SOCKET="$W/$1.sock" python3 "$WORLD/metrics_client.py" rcpts $ADDRS >/dev/null 2>&1
}
# start3 PREFIX MODE FLAGS [LINE...]: Redis emptied, then three milters a, b,
# c (mtasts-milter FLAGS) on unix:$W/{a,b,c}.sock, each with the world's
# configuration, its own $W/PREFIXMODE-X.sqlite, the LINEs, and with
# MODE=on the fleet; their pids in MP (and PIDS, for cleanup); returns once
# the three sockets are there (10 s at most each) and half a second more.
start3() {
    local pre=$1 mode=$2 flags=$3 m l
    shift 3
    MP=
    redis-cli -s "$SOCK" flushall >/dev/null
    for m in a b c; do
        {
            grep -v -e '^#' -e '^cache_db' "$MTS_WORLD_CONF"
            echo "cache_db = $W/$pre$mode-$m.sqlite"
            echo "enforcing_transports = smtp"
            echo "rcpt_deadline_ms = 20s"
            for l in "$@"; do echo "$l"; done
            echo "stats = no"
            [ "$mode" = on ] && echo "fleet_redis = unix:$SOCK" &&
                echo "fleet_key_file = $W/fleet.key"
        } >"$W/$pre$mode-$m.conf"
        # shellcheck disable=SC2086
        "$MILTER" $flags -c "$W/$pre$mode-$m.conf" -p "unix:$W/$m.sock" \
            >"$W/$pre$mode-$m.log" 2>&1 </dev/null &
        MP="$MP $!"
    done
    PIDS="$PIDS $MP"
    for m in a b c; do
        for ((i = 0; i < 100; i++)); do [ -S "$W/$m.sock" ] && break; sleep 0.1; done
    done
    sleep 0.5
}
stop3() { # stop3: the three milters of start3 stopped, their sockets gone
    # shellcheck disable=SC2086
    kill $MP
    # shellcheck disable=SC2086
    wait $MP 2>/dev/null
    rm -f "$W"/[abc].sock
}
round() { # round MODE (off|on): prints fetches, warm ms, MX queries
    local m f0 q0 t0 t1 pids=
    start3 "" "$1" -f "mx_probes = no"
    f0=$(fetches)
    q0=$(dnsq MX 'd[0-9][0-9]\.test')
    for m in a b c; do send "$m" & pids="$pids $!"; done
    # shellcheck disable=SC2086
    wait $pids
    sleep 1
    t0=$(date +%s%N)
    for ((i = 0; i < 10; i++)); do send a; done
    t1=$(date +%s%N)
    echo "$(($(fetches) - f0)) $(((t1 - t0) / 1000000)) $(($(dnsq MX 'd[0-9][0-9]\.test') - q0))"
    stop3
}
PDOMS="goodmx expiredmx wrongnamemx nostarttls tls10mx shared1 mixedmx mismatchmx tls11mx untrustedmx"
PADDRS=$(for d in $PDOMS; do echo "bob@$d.test"; done)
accepts() { # grep -c prints 0 (and fails) without a match: "|| echo 0" would print it twice
    local n
    n=$(grep -cE ' accept [a-z0-9]*@127\.0\.50\.[0-9]+:25 ' "$MTS_WORLD_SMTP_LOG" 2>/dev/null)
    echo "${n:-0}"
}
probe_round() { # probe_round MODE (off|on): prints probe connections, ms until all done
    local m a0 t0 n pids=
    start3 p "$1" "-f -v" "mx_probes = yes" "probe_timeout_ms = 5s"
    a0=$(accepts)
    t0=$(date +%s%N)
    for m in a b c; do
        # shellcheck disable=SC2086
        MT_SOCKET="$W/$m.sock" python3 "$WORLD/metrics_client.py" rcpts $PADDRS >/dev/null 2>&1 &
        pids="$pids $!"
    done
    # shellcheck disable=SC2086
    wait $pids
    # until each process has a result for every MX host (its probe or the fleet's rows)
    for ((i = 0; i < 300; i++)); do
        n=0
        for m in a b c; do
            n=$((n + $(sqlite3 "$W/p$1-$m.sqlite" "SELECT count(DISTINCT host) FROM tls_probes" 2>/dev/null || echo 0)))
        done
        [ "$n" -ge "$NHOSTS3" ] && break
        sleep 0.1
    done
    echo "$(($(accepts) - a0)) $((($(date +%s%N) - t0) / 1000000))"
    stop3
}
# the MX hosts of PDOMS (mx.provider.test is shared), three processes
NHOSTS3=$((3 * 10))
read -r p_off pt_off < <(probe_round off)
read -r p_on pt_on < <(probe_round on)
read -r f_off w_off m_off < <(round off)
read -r f_on w_on m_on < <(round on)
echo "bench_fleet: 3 processes x 50 cold domains: policy fetches $f_off without the fleet, $f_on with it"
echo "bench_fleet: 3 processes x 50 cold domains: MX resolutions $m_off without the fleet, $m_on with it"
echo "bench_fleet: 3 processes x 10 probe domains (mx_probes): probe connections $p_off without the fleet ($pt_off ms), $p_on with it ($pt_on ms)"
echo "bench_fleet: warm, 10 messages x 50 RCPTs on one process: $w_off ms fleet off, $w_on ms fleet on; ratio off/on $(echo "scale=2; $w_off / $w_on" | bc -l)"
