#!/bin/bash
# test_slow_resolver.sh - issue 19: the resolver health check must not
# rebuild libunbound's context (dropping its cache) because a forwarder is
# slow on some names. dropdns.py, in front of the world's unbound, answers
# every name with "slow" in it 1.3 s after its first query (as a caching
# resolver whose recursion for that name is slow: later queries at once),
# just after dns_timeout_ms = 1 s. tests/world/dnshealth looks up 40 such
# names, each between two healthy ones, in 8 threads through one resolver,
# as lookup workers do, and prints its health counts. Before the fix the
# check asked the forwarder directly after each timeout, got the (by then
# cached) answer, and took a fresh context at most once a second: a
# rebuild a second while slow names came. Now a failure libunbound waited
# for is the name's, not a backoff: no rebuild (and never more than one a
# second, DNS_RENEW_MIN_MS). The legitimate case, a forwarder libunbound
# backed off although it answers, is test_dropping_resolver.sh.
#
# Real processes in a network namespace of its own: the test world (DNS),
# dropdns.py, the resolver of the milter (libunbound) in dnshealth. Counts
# rebuilds, not timings. Needs root (the test world); skipped otherwise.
# TAP output.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../integration/maplib.sh
. "$HERE/../integration/maplib.sh" # ok, bail, the namespace and the world
# shellcheck source=faultlib.sh
. "$HERE/faultlib.sh"
maplib_init mts-fault-slowdns
SLOW_ADDR=127.0.10.4 FLAP_ADDR=127.0.10.5
HEALTH="$BUILD/tests/world/dnshealth"
if [ ! -x "$HEALTH" ]; then
    echo "1..0 # SKIP $HEALTH is not built (make check builds it)"
    exit 0
fi

maplib_netns mts-fslow "$@"
maplib_world_up

echo "1..6"
DROPDNS_DELAY_MS=1300 python3 "$SRC/tests/world/dropdns.py" "$SLOW_ADDR" "$MTS_WORLD_RESOLVER_ADDR" \
    slow "$W/slow.pid" "$W/slow.count" 2>"$W/slow.err" &
MAPLIB_PIDS=$!
echo "nameserver $SLOW_ADDR" >"$W/slow-resolv.conf"
printf 'resolv_conf = %s\ndns_timeout_ms = 1s\n' "$W/slow-resolv.conf" | fault_conf "$W/slow.conf"
for ((i = 0; i < 50; i++)); do [ -s "$W/slow.pid" ] && break; sleep 0.1; done

# renewals OUT: R of dnshealth's "renewals R backoffs B silent S slow F"
renewals() { sed -n 's/^renewals \([0-9]*\) .*/\1/p' "$1"; }

t0=$(date +%s)
"$HEALTH" "$W/slow.conf" slow,h 80 8 >"$W/slow.out" 2>"$W/slow.log"
rc=$?
secs=$(($(date +%s) - t0))
read -r _ slowq <"$W/slow.count"
[ $rc -eq 0 ] && [ "${slowq:-0}" -ge 40 ]
r=$?; ok "80 lookups, 40 of slow names, ran through the slow forwarder ($(tr '\n' ' ' <"$W/slow.out"); $slowq slow queries)" $r
grep -q '^h nxdomain 40$' "$W/slow.out"
r=$?; ok "the 40 healthy names among them were all answered" $r
k=$(renewals "$W/slow.out")
[ -n "$k" ] && [ "$k" -le 1 ]
ok "slow names: no rebuild storm ($k fresh contexts in $secs s; before the fix about one a second)" $?
b=$(sed -n 's/^renewals [0-9]* backoffs \([0-9]*\) .*/\1/p' "$W/slow.out")
[ -n "$b" ] && [ "$b" -le 1 ]
ok "slow names: their failures are not blamed on libunbound ($b backoffs seen; before the fix one each)" $?

"$HEALTH" "$W/slow.conf" d 5 1 >"$W/after.out" 2>>"$W/slow.log"
grep -q '^d nxdomain 5$' "$W/after.out"
r=$?; ok "after them, other names are answered at once ($(tr '\n' ' ' <"$W/after.out"))" $r
kill -0 "$MAPLIB_PIDS"
ok "the slow forwarder is still running" $?
[ "$fails" -eq 0 ]
