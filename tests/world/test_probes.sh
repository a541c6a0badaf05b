#!/bin/bash
# test_probes.sh - issue 10's path guarantee against the real test world:
# the milter (mx_probes = yes) probes the MX hosts of the world's STARTTLS
# domains on background threads and judges RCPTs from the results; an RCPT
# whose verdict needs a probe not done yet waits for it until the RCPT
# deadline (issue 17, the first message), then the path is unknown.
#
# Two milter instances, each with a cache of its own, driven over the milter
# protocol by probes_client.py (tests/integration/miltertest/lib/rawmilter.py):
#   off      mx_probes = no: the first RCPT to goodmx.test, timed (the figure).
#   prefetch mtasts-ctl prefetch (mx_probes = yes) probes goodmx.test's MX.
#   enforce  the built-in rule (+ shared2.test require=tls): the first RCPT
#            to goodmx waits for its probe and is accepted; to hangmx it is
#            answered at the RCPT deadline (unknown=defer); goodmx, mixedmx
#            pass (tls=verified); expiredmx, wrongnamemx, nostarttls,
#            mismatchmx defer naming the host and the failure; hangmx and
#            downmx stay unknown, answered at once; shared1 + shared2 (and
#            mixedmx, mismatchmx) share mx.provider.test: ONE probe
#            (connections counted in the world's smtp.log); tls10mx defers.
#   rules    expiredmx.test with its TXT record removed (no MTA-STS) under
#            require=verified-tls fail=reject: rejected; wrongnamemx.test
#            under require=tls: accepted with tls=unverified; cnamemx.test
#            (MX through a CNAME) passes; nullmx.test under require=tls is
#            deferred.
#   Between them, mtasts-ctl explain reads the probes the first one cached,
#   and the first one, restarted, answers from them at once.
#   private  without probe_allow_networks the world's loopback MX hosts are
#            never connected to: unknown, "not probed: private address".
#   edges    the probe's edge hosts (TLS 1.1 only, another CA, huge, binary,
#            endless and dripping banners, a line with no end, a hang after
#            STARTTLS): each domain deferred naming its host and the failure,
#            every RCPT answered at once.
#   bounds   the slow hosts (tests/world/README) count the connections open
#            at once: probe_concurrency and probe_network_concurrency (per
#            /24) hold, each host is probed once.
#   reload   three SIGHUPs while the slow probes run: the probe engine is
#            kept, so no host is probed twice and the bounds still hold.
#   reload6  a SIGHUP that changes probe_concurrency while the slow probes
#            run: a new engine beside the old one's running probes, and
#            still one probe at a time per /24 (the process's slots,
#            probeslots.h).
#
# Needs root (the test world); skipped otherwise. TAP output.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
BUILD=$(cd "${top_builddir:-$HERE/../..}" && pwd)
MILTER="$BUILD/milter/mtasts-milter"
W=${MTS_TEST_WORLD_DIR:-/tmp/mts-test-probes.$$}
PROBE_TIMEOUT_S=3
RCPT_DEADLINE_S=3

if [ "$(id -u)" -ne 0 ]; then
    echo "1..0 # SKIP the test world needs root (DNS on port 53, HTTPS on 443)"
    exit 0
fi
. "$HERE/suite.sh"
suite_enter_netns mts-probes "$@"

MPID=
stop_milter() {
    if [ -n "$MPID" ]; then
        kill "$MPID" 2>/dev/null
        wait "$MPID" 2>/dev/null
        MPID=
    fi
}
cleanup() {
    stop_milter
    "$HERE/world.sh" down "$W" >/dev/null 2>&1
    rm -rf "$W"
}
trap cleanup EXIT
"$HERE/world.sh" up "$W" >"$W.up.log" 2>&1 || { sed 's/^/# /' "$W.up.log"; bail "world did not come up"; }
rm -f "$W.up.log"
# shellcheck disable=SC1091
. "$W/env"

# write_conf NAME EXTRA-LINES...
write_conf() {
    local v=$1
    shift
    {
        grep -v -e '^#' -e '^cache_db' "$MTS_WORLD_CONF"
        echo "cache_db = $W/$v.sqlite"
        echo "enforcing_transports = smtp"
        echo "rcpt_deadline_ms = ${RCPT_DEADLINE_S}s"
        echo "fetch_connect_timeout_ms = 1s"
        echo "fetch_timeout_ms = 2s"
        echo "dns_timeout_ms = 2s"
        case " $* " in *" mx_probes "*) ;; *) echo "mx_probes = yes" ;; esac
        echo "probe_timeout_ms = ${PROBE_TIMEOUT_S}s"
        case " $* " in *" probe_concurrency "*) ;; *) echo "probe_concurrency = 4" ;; esac
        for l in "$@"; do echo "$l"; done
    } >"$W/$v.conf"
}

# start_milter NAME: $W/NAME.conf on $W/NAME.sock; bails if it does not start.
start_milter() {
    suite_milter_start "$1" MPID
}

# provider_accepts: connections the world's SMTP server accepted at mx.provider.test.
provider_accepts() {
    if [ -f "$MTS_WORLD_SMTP_LOG" ]; then
        grep -c " accept [a-z0-9]*@$MTS_WORLD_PROVIDER_MX_ADDR:25 " "$MTS_WORLD_SMTP_LOG"
    else
        echo 0
    fi
}

# client MILTER [PHASE]: probes_client.py's TAP lines for PHASE (default:
# MILTER) against the milter MILTER, renumbered after ours.
N=0 FAILS=0
client() {
    local line
    while IFS= read -r line; do
        case $line in
            "ok "*)
                N=$((N + 1)); echo "ok $N - ${line#ok * - }" ;;
            "not ok "*)
                N=$((N + 1)); FAILS=$((FAILS + 1)); echo "not ok $N - ${line#not ok * - }" ;;
            *) echo "$line" ;;
        esac
    done < <(MT_SOCKET="$W/$1.sock" PROBE_TIMEOUT_S=$PROBE_TIMEOUT_S \
        RCPT_DEADLINE_S=$RCPT_DEADLINE_S python3 "$HERE/probes_client.py" "${2:-$1}" 2>&1)
}
ok() {
    N=$((N + 1))
    if [ "$2" -eq 0 ]; then echo "ok $N - $1"; else echo "not ok $N - $1"; FAILS=$((FAILS + 1)); fi
}

# ---- phase 0: the first RCPT with probes off, for the figure ------------------
# (it also warms the world's resolver for goodmx.test: phase 1's first RCPT
# to it then differs from this one by the probe, not by DNS)
write_conf off "mx_probes = no"
start_milter off
client off first-off
stop_milter

# ---- phase 0b: mtasts-ctl prefetch probes too, when probes are on -----------
write_conf prefetch
echo goodmx.test | "$BUILD/milter/mtasts-ctl" -c "$W/prefetch.conf" prefetch - >"$W/prefetch.out" 2>&1
grep -q "prefetched 1 domains: 1 enforce.*; probed 1 MX hosts" "$W/prefetch.out" &&
    [ "$(sqlite3 "$W/prefetch.sqlite" "SELECT grade FROM tls_probes WHERE host = 'mx.goodmx.test'" | sort -u)" = good ]
ok "mtasts-ctl prefetch with mx_probes = yes probes mx.goodmx.test into the shared cache ($(grep -o 'prefetched.*' "$W/prefetch.out"))" $?

# ---- phase 1: MTA-STS enforce domains under the built-in rule --------------
write_conf enforce "rule = rcpt=shared2.test require=tls"
a0=$(provider_accepts)
start_milter enforce
client enforce
a1=$(provider_accepts)
[ $((a1 - a0)) -eq 1 ]
ok "shared1, shared2, mixedmx and mismatchmx share mx.provider.test: one probe ($((a1 - a0)) connections)" $?
[ "$(sqlite3 "$W/enforce.sqlite" "SELECT grade FROM tls_probes WHERE host = 'mx.provider.test'")" = good ]
ok "the probe of mx.provider.test is in the shared cache (grade good)" $?
[ "$(sqlite3 "$W/enforce.sqlite" "SELECT expires_at - probed_at FROM tls_probes WHERE host = 'mx.nostarttls.test'")" -eq 900 ]
ok "a failed probe is kept for probe_failure_ttl (15m)" $?
grep -q "probe mx.expiredmx.test\[127.0.50.4\]:25: unverified: the certificate expired" "$W/enforce.log"
ok "the probe is logged with host, address, grade and reason" $?
grep -Eq "rcpt domain=wrongnamemx\.test .*; probe: mx\.wrongnamemx\.test \[127\.0\.50\.[0-9]+\]: unverified: .*someone-else" "$W/enforce.log"
ok "the decision's log line keeps the probe's own account (the certificate's names), which the reply leaves out" $?
grep -Eq "rcpt domain=downmx\.test .*; probe: mx\.downmx\.test \[127\.0\.50\.[0-9]+\]: unknown: .*refused" "$W/enforce.log"
ok "the decision's log line says the connection was refused, which the reply leaves out" $?
stop_milter
"$BUILD/milter/mtasts-ctl" -c "$W/enforce.conf" explain --json --auth alice bob@goodmx.test bob@nostarttls.test \
    >"$W/explain.json" 2>&1
jq -e '.[0].verdict == "pass" and .[0].tls == "verified" and .[1].action == "defer" and .[1].tls == "none"' \
    "$W/explain.json" >/dev/null
ok "mtasts-ctl explain reads the cached probes: goodmx pass tls=verified, nostarttls defer tls=none" $?
rm -f "$W/enforce.sock"
start_milter enforce
client enforce restart
stop_milter

# ---- phase 2: rules, on a domain without MTA-STS ------------------------------
"$HERE/world.sh" set-policy "$W" expiredmx.test - - >/dev/null 2>&1 || bail "set-policy failed"
write_conf rules "rule = rcpt=expiredmx.test require=verified-tls fail=reject" \
    "rule = rcpt=wrongnamemx.test require=tls" "rule = rcpt=nullmx.test require=tls"
start_milter rules
client rules
grep -q "rcpt domain=expiredmx.test status=absent requirement=verified-tls verdict=fail action=reject" "$W/rules.log"
ok "expiredmx.test was judged without MTA-STS (status=absent)" $?
stop_milter

# ---- phase 3: the probe's edge hosts, through the milter ---------------------
write_conf edges
start_milter edges
client edges
for h in tls11mx untrustedmx hugebannermx binarybannermx endlessmx longlinemx hangtlsmx dripmx; do
    grep -q "probe mx.$h.test\[127\.0\.50\.[0-9]*\]:25: [a-z]*: " "$W/edges.log" || echo "# no probe line for mx.$h.test"
done
[ "$(grep -c "probe mx\.[a-z0-9]*\.test\[127\.0\.50\.1[0-7]\]:25: " "$W/edges.log")" -eq 8 ]
ok "edges: each of the 8 edge hosts probed once, logged with its grade and reason" $?
grep -Eq "rcpt domain=untrustedmx\.test .*; probe: mx\.untrustedmx\.test .*unknown CA" "$W/edges.log" &&
    grep -Eq "rcpt domain=binarybannermx\.test .*; probe: mx\.binarybannermx\.test .*not an SMTP reply" "$W/edges.log"
ok "edges: the decisions' log lines keep the probes' own accounts (unknown CA, not an SMTP reply)" $?
stop_milter

# ---- phase 3b: without probe_allow_networks, loopback MX hosts are not probed --
write_conf private
sed -i '/^probe_allow_networks/d' "$W/private.conf"
goodmx_accepts() { grep -Ec " accept [a-z0-9]*@127\.0\.50\.[23]:25 " "$MTS_WORLD_SMTP_LOG"; }
a0=$(goodmx_accepts)
start_milter private
client private
sleep 0.5
a1=$(goodmx_accepts)
[ "$a1" -eq "$a0" ]
ok "private: no connection to mx.goodmx.test (127.0.50.2, .3) without probe_allow_networks ($((a1 - a0)) seen)" $?
grep -q "probe mx.goodmx.test\[127.0.50.2\]: not probed: 127.0.50.2 is loopback (127.0.0.0/8), not in probe_allow_networks" "$W/private.log"
ok "private: the address left out is logged with its range" $?
grep -Eq "rcpt domain=goodmx\.test .*action=defer.*; probe: mx\.goodmx\.test: unknown: not probed: 127\.0\.50\.[23] is loopback" "$W/private.log"
ok "private: the decision's log line says why (the reply only \"private address\")" $?
stop_milter

# ---- phase 4: concurrency bounds ------------------------------------------------
# The slow hosts (greeting after 1.5 s; slow1-4 on 127.0.50.0/24, slow5-8 on
# 127.0.51.0/24) log, at each accept, how many connections to them are open:
# in all, and in the listener's /24, as the kernel sees them (a handler may
# still run after the client closed: handlers= shows those, only as a
# diagnosis). peaks FROM-LINE sets TOTAL_MAX, NET_MAX.
log_lines() { wc -l <"$MTS_WORLD_SMTP_LOG"; }
peaks() {
    local s
    s=$(tail -n +"$(($1 + 1))" "$MTS_WORLD_SMTP_LOG" | awk '
        / concurrent slow@/ {
            for (i = 1; i <= NF; i++) {
                if ($i ~ /^total=/) { v = substr($i, 7) + 0; if (v > t) t = v }
                if ($i ~ /^net=/) { sub(/^.*:/, "", $i); v = $i + 0; if (v > n) n = v }
                if ($i ~ /^handlers=/) { v = substr($i, 10) + 0; if (v > h) h = v }
                if ($i ~ /^net_handlers=/) { v = substr($i, 14) + 0; if (v > nh) nh = v }
            }
        }
        END { printf "%d %d %d %d\n", t, n, h, nh }')
    read -r TOTAL_MAX NET_MAX HANDLERS_MAX NET_HANDLERS_MAX <<<"$s"
    echo "# connections open at once: $TOTAL_MAX, to one /24: $NET_MAX (handlers running at an accept: $HANDLERS_MAX, to one /24: $NET_HANDLERS_MAX)"
}
# slow_accepts FROM-LINE: connections to each slow host since then, "a b c ..."
slow_accepts() {
    tail -n +"$(($1 + 1))" "$MTS_WORLD_SMTP_LOG" |
        awk '/ accept slow@/ { split($3, a, "@"); c[a[2]]++ }
             END { for (k in c) printf "%s=%d\n", k, c[k] }' | sort | tr '\n' ' '
}
once_each() { [ "$(slow_accepts "$1" | grep -o '=1 ' | wc -l)" -eq 8 ]; }

write_conf bounds32 "probe_concurrency = 3" "probe_network_concurrency = 2"
m0=$(log_lines)
start_milter bounds32
client bounds32 slow-ask
client bounds32 slow
stop_milter
peaks "$m0"
[ "$TOTAL_MAX" -le 3 ] && [ "$TOTAL_MAX" -ge 2 ] && [ "$NET_MAX" -le 2 ]
ok "probe_concurrency = 3, probe_network_concurrency = 2: at most 3 probes at once ($TOTAL_MAX seen), at most 2 to one /24 ($NET_MAX seen)" $?
once_each "$m0"
r=$?
ok "each slow host probed once: $(slow_accepts "$m0")" $r

write_conf bounds41 "probe_concurrency = 4" "probe_network_concurrency = 1"
m0=$(log_lines)
start_milter bounds41
client bounds41 slow-ask
client bounds41 slow
stop_milter
peaks "$m0"
[ "$NET_MAX" -eq 1 ] && [ "$TOTAL_MAX" -le 2 ]
ok "probe_concurrency = 4, probe_network_concurrency = 1: one probe at a time per /24 ($NET_MAX seen), two networks at once at most ($TOTAL_MAX seen)" $?

# ---- phase 5: reloads keep the probe engine ----------------------------------
# SIGHUPs while the slow probes run: the engine (its queue, its running
# probes, its bounds) is shared by the new configuration, so no host is
# probed twice and the bounds hold across the reloads.
write_conf reload "probe_concurrency = 3" "probe_network_concurrency = 2"
m0=$(log_lines)
start_milter reload
threads() { awk '/^Threads:/ {print $2}' "/proc/$MPID/status"; }
client reload slow-ask
sleep 0.5
t0=$(threads)
for i in 1 2 3; do
    kill -HUP "$MPID"
    for ((j = 0; j < 50; j++)); do
        [ "$(grep -c "configuration reloaded" "$W/reload.log")" -ge "$i" ] && break
        sleep 0.1
    done
done
[ "$(grep -c "configuration reloaded" "$W/reload.log")" -eq 3 ]
ok "reload: three SIGHUPs, three reloads" $?
client reload slow
sleep 0.5
t1=$(threads)
peaks "$m0"
once_each "$m0"
r=$?
ok "reload: each slow host probed once across the reloads: $(slow_accepts "$m0")" $r
[ "$TOTAL_MAX" -le 3 ] && [ "$NET_MAX" -le 2 ]
ok "reload: the bounds hold across the reloads ($TOTAL_MAX at once, $NET_MAX to one /24)" $?
[ "$t1" -le "$t0" ]
ok "reload: no threads added by the reloads ($t0 before, $t1 after)" $?
stop_milter

# ---- phase 6: a reload that changes the probe options --------------------------
# A new probe engine replaces the old one while the old one's probes still
# run (for up to probe_timeout_ms). The slots are the process's
# (probeslots.h), with the newest configuration's bounds: one probe at a
# time per /24 holds over both engines. The old engine's RCPTs (slow-ask,
# in the background) start its probes, four rounds of two (one per /24);
# the SIGHUP comes while they run, and the new engine's RCPTs ask for the
# same hosts: those the old one has not finished it probes itself, beside
# the old one's probes.
write_conf reload6 "probe_concurrency = 4" "probe_network_concurrency = 1"
m0=$(log_lines)
start_milter reload6
MT_SOCKET="$W/reload6.sock" PROBE_TIMEOUT_S=$PROBE_TIMEOUT_S RCPT_DEADLINE_S=$RCPT_DEADLINE_S \
    python3 "$HERE/probes_client.py" slow-ask >"$W/reload6.first" 2>&1 &
first=$!
# The SIGHUP once the old engine's first probes are under way (a slow host
# accepted them), never before: then both clients would meet the new engine.
for ((j = 0; j < 100; j++)); do
    [ "$(tail -n +"$((m0 + 1))" "$MTS_WORLD_SMTP_LOG" | grep -c ' concurrent slow@')" -ge 1 ] && break
    sleep 0.1
done
sed -i 's/^probe_concurrency = 4$/probe_concurrency = 3/' "$W/reload6.conf"
kill -HUP "$MPID"
for ((j = 0; j < 50; j++)); do
    grep -q "configuration reloaded" "$W/reload6.log" && break
    sleep 0.1
done
grep -q "reload: .*probe_concurrency.* changed: a new discovery engine" "$W/reload6.log"
ok "reload6: probe_concurrency 4 -> 3: a new engine while the old one's probes run" $?
client reload6 slow-ask
wait "$first"
client reload6 slow
stop_milter
peaks "$m0"
[ "$NET_MAX" -eq 1 ] && [ "$TOTAL_MAX" -le 3 ]
ok "reload6: across the old and the new engine, one probe at a time per /24 ($NET_MAX seen), at most 3 at once ($TOTAL_MAX seen)" $?

echo "1..$N"
exit $((FAILS > 0))
