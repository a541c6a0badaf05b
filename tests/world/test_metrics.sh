#!/bin/bash
# test_metrics.sh - issue 18, item 1: the metrics endpoint (metrics_socket)
# of a real milter judging RCPTs against the real test world, scraped with
# curl and checked by promtool (Debian package prometheus).
#
#   - before any mail: promtool accepts the page; no recipient counted.
#   - known RCPTs (metrics_client.py rcpts, over the milter protocol):
#     3 to enforce.test (tag, pass, enforce, path mta-sts), 2 to
#     nxdomain.test (tag, not-required, absent, path none), 1 to
#     testing.test (tag, not-required, testing), one in local_domains, <>,
#     one without a domain: each series moved by exactly those, the RCPT
#     wait histogram by all 9, the lookups by the 3 domains judged (one
#     each, by status), the policy fetches by the 2 domains with a policy;
#     promtool accepts the page; mtasts-ctl status shows the same.
#   - other paths 404, other methods 405, HEAD answers; garbage, a huge
#     header, 30 idle connections (metrics_client.py abuse): clean errors,
#     bounded; the milter's resident memory grows by less than 8 MB.
#   - a reload (SIGHUP) is counted; a refused one too.
#   - issue 18 item 2's figures: status shows the last minute's and hour's
#     RCPTs and verdicts exactly (9 RCPTs, 6 tagged); mtasts_cache_rows of
#     each table = sqlite3 count(*) of the file; memory entries and reads.
#   - with one lookup worker, an RCPT to timeout.test (DNS never answers)
#     holds it: a second RCPT's lookup waits in the lane, so
#     mtasts_queue_depth{queue="lookup-waited"} > 0 with an oldest wait > 0,
#     status shows it; afterwards the slowest lookup of the hour is > 1 s.
#   - promtool accepts the page under load (8 connections sending RCPTs
#     while it is scraped) and across a reload during that load.
#   - unbound stopped: a fresh domain's lookups get no answer and
#     mtasts_resolver_state leaves ok (degraded or down); status says so.
#   - the milter still runs, and stops with status 0.
#
# Needs root (the test world); skipped otherwise; promtool's checks are
# skipped when it is not installed. TAP output.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
BUILD=$(cd "${top_builddir:-$HERE/../..}" && pwd)
MILTER="$BUILD/milter/mtasts-milter"
CTL="$BUILD/milter/mtasts-ctl"
W=${MTS_TEST_WORLD_DIR:-/tmp/mts-test-metrics.$$}
PORT=9464
URL="http://127.0.0.1:$PORT/metrics"

if [ "$(id -u)" -ne 0 ]; then
    echo "1..0 # SKIP the test world needs root (DNS on port 53, HTTPS on 443)"
    exit 0
fi
. "$HERE/suite.sh"
suite_enter_netns mts-metrics "$@"

MPID=
cleanup() {
    [ -n "$MPID" ] && kill "$MPID" 2>/dev/null && wait "$MPID" 2>/dev/null
    "$HERE/world.sh" down "$W" >/dev/null 2>&1
    rm -rf "$W"
}
trap cleanup EXIT
"$HERE/world.sh" up "$W" >"$W.up.log" 2>&1 || { sed 's/^/# /' "$W.up.log"; bail "world did not come up"; }
rm -f "$W.up.log"
# shellcheck disable=SC1091
. "$W/env"

{
    grep -v -e '^#' -e '^cache_db' "$MTS_WORLD_CONF"
    echo "cache_db = $W/metrics.sqlite"
    echo "enforcing_transports = smtp"
    echo "local_domains = local.test"
    echo "rcpt_deadline_ms = 5s"
    echo "mx_probes = no"
    echo "metrics_socket = inet:$PORT@127.0.0.1"
    echo "metrics_cache_rows_interval = 1s"
    # One worker for the recipients' lookups: a slow one makes the next wait
    # in the lane (the queue depth checks).
    echo "lookup_workers = 1"
    echo "lookup_workers_max = 1"
} >"$W/m.conf"
"$MILTER" -f -v -c "$W/m.conf" -p "unix:$W/m.sock" >"$W/m.log" 2>&1 </dev/null &
MPID=$!
export MT_SOCKET="$W/m.sock"
for ((i = 0; i < 100; i++)); do
    [ -S "$W/m.sock" ] && curl -sf -o /dev/null "$URL" && break
    kill -0 "$MPID" 2>/dev/null || { sed 's/^/# /' "$W/m.log"; MPID=; bail "the milter did not start"; }
    sleep 0.1
done

PROMTOOL=$(command -v promtool || true)
# promtool_ok FILE LABEL: one check; a skip when promtool is missing.
promtool_ok() {
    local out rc
    if [ -z "$PROMTOOL" ]; then
        n=$((n + 1)); echo "ok $n - $2 # SKIP promtool is not installed (Debian package prometheus)"
        return
    fi
    out=$("$PROMTOOL" check metrics <"$1" 2>&1)
    rc=$?
    ok "$2 (promtool check metrics)" $rc
    [ $rc -eq 0 ] || echo "$out" | head -20 | sed 's/^/#   /'
}
# has_now FILE: the page carries the gauges of the present (issue 18 item 2)
has_now() {
    grep -q '^mtasts_queue_depth{queue="lookup-waited"} ' "$1" &&
        grep -q '^mtasts_resolver_state{state="ok"} ' "$1" &&
        grep -q '^mtasts_rcpts_last_minute ' "$1" &&
        grep -q '^mtasts_cache_rows_age_seconds ' "$1"
}
# promtool_now FILE LABEL: promtool accepts it, and it has the gauges of the present
promtool_now() {
    local out rc=0
    has_now "$1" || { rc=1; echo "#   the gauges of the present are missing"; }
    if [ -n "$PROMTOOL" ]; then
        out=$("$PROMTOOL" check metrics <"$1" 2>&1) || { rc=1; echo "$out" | head -20 | sed 's/^/#   /'; }
    fi
    ok "$2 (promtool check metrics; with the gauges of the present)" $rc
}
# value FILE SERIES: the sample's value, 0 when it is not there.
value() {
    local v
    v=$(grep -F "$2 " "$1" | grep -v '^#' | awk -v s="$2" '$1 == s { print $2 }' | head -1)
    echo "${v:-0}"
}
# moved BEFORE AFTER SERIES EXPECTED LABEL
moved() {
    local a b
    a=$(value "$1" "$3")
    b=$(value "$2" "$3")
    [ "$(echo "$b - $a" | bc)" = "$4" ]
    ok "$5 ($3: $a -> $b)" $?
}

echo "1..60"
curl -s -D "$W/h0" -o "$W/s0" "$URL"
ok "GET /metrics answers 200" "$(grep -q '^HTTP/1.1 200' "$W/h0"; echo $?)"
grep -qi '^Content-Type: text/plain; version=0.0.4' "$W/h0"
ok "Content-Type text/plain; version=0.0.4" $?
promtool_ok "$W/s0" "the page before any mail is valid"
! grep -q '^mtasts_recipients_total{' "$W/s0"
ok "no recipient counted before any mail" $?
grep -q '^mtasts_build_info{version="[0-9.]*"} 1$' "$W/s0" &&
    [ "$(value "$W/s0" mtasts_start_time_seconds)" -ge $(($(date +%s) - 60)) ]
ok "build info and a start time of the last minute" $?

python3 "$HERE/metrics_client.py" rcpts bob@enforce.test carol@enforce.test dave@enforce.test \
    bob@nxdomain.test carol@nxdomain.test bob@testing.test bob@local.test "" bob \
    >"$W/rcpts.out" 2>&1
ok "the 9 RCPTs were answered" "$([ "$(grep -c . "$W/rcpts.out")" -eq 9 ]; echo $?)"
sed 's/^/# /' "$W/rcpts.out"
curl -s -o "$W/s1" "$URL"
promtool_ok "$W/s1" "the page after mail is valid"
L='dry_run="no"'
moved "$W/s0" "$W/s1" "mtasts_recipients_total{action=\"tag\",outcome=\"pass\",status=\"enforce\",path=\"mta-sts\",requirement=\"mta-sts\",$L}" 3 \
    "enforce.test: 3 passed on the MTA-STS path"
moved "$W/s0" "$W/s1" "mtasts_recipients_total{action=\"tag\",outcome=\"not-required\",status=\"absent\",path=\"none\",requirement=\"mta-sts\",$L}" 2 \
    "nxdomain.test: 2 absent, nothing required, no authenticated path"
moved "$W/s0" "$W/s1" "mtasts_recipients_total{action=\"tag\",outcome=\"not-required\",status=\"testing\",path=\"none\",requirement=\"mta-sts\",$L}" 1 \
    "testing.test: 1 testing"
total=$(grep '^mtasts_recipients_total{' "$W/s1" | awk '{ s += $2 } END { print s + 0 }')
ok "6 recipients judged in all, no other series moved ($total)" "$([ "$total" = 6 ]; echo $?)"
moved "$W/s0" "$W/s1" 'mtasts_recipients_scope_total{scope="in-scope"}' 6 "6 in scope"
moved "$W/s0" "$W/s1" 'mtasts_recipients_scope_total{scope="local-domain"}' 1 "1 in local_domains"
moved "$W/s0" "$W/s1" 'mtasts_recipients_scope_total{scope="null-address"}' 1 "1 null address"
moved "$W/s0" "$W/s1" 'mtasts_recipients_scope_total{scope="no-domain"}' 1 "1 without a domain"
moved "$W/s0" "$W/s1" 'mtasts_rcpt_wait_seconds_count' 9 "the RCPT wait histogram counts all 9"
moved "$W/s0" "$W/s1" 'mtasts_policy_fetches_total{result="ok"}' 2 \
    "2 policies fetched (enforce.test, testing.test; each once)"
moved "$W/s0" "$W/s1" 'mtasts_lookups_total{status="enforce"}' 1 "1 lookup found enforce"
moved "$W/s0" "$W/s1" 'mtasts_lookups_total{status="absent"}' 1 "1 lookup found absent"
moved "$W/s0" "$W/s1" 'mtasts_lookups_total{status="testing"}' 1 "1 lookup found testing"
moved "$W/s0" "$W/s1" 'mtasts_lookup_seconds_count' 3 "the lookup histogram counts the 3"

# ---- mtasts-ctl status reads the same figures -----------------------------------
"$CTL" -c "$W/m.conf" status >"$W/status.out" 2>&1
rc=$?
grep -q '^recipients judged:  6 (tag 6, defer 0, reject 0, hold 0)$' "$W/status.out" &&
    grep -q '^  by path: .*mta-sts 3,.* none 3,' "$W/status.out" && [ $rc -eq 0 ]
st=$?
ok "mtasts-ctl status: 6 judged, 3 on the MTA-STS path, 3 on none (exit $rc)" $st
[ $st -eq 0 ] || sed 's/^/#   /' "$W/status.out"
j=$("$CTL" -c "$W/m.conf" status --json 2>&1)
[ "$(echo "$j" | jq -c '[.running, .recipients.judged, .recipients.by_path["mta-sts"], .rcpt_wait.count]')" = "[true,6,3,9]" ]
ok "mtasts-ctl status --json: running, 6 judged, 3 mta-sts, 9 waits" $?

# ---- the present: the last minute and hour, exactly -----------------------------
grep -q '^last minute:        9 RCPTs; judged: tag 6, defer 0, reject 0, hold 0$' "$W/status.out"
ok "status: the last minute holds exactly the 9 RCPTs, 6 judged and tagged" $?
grep -q '^last hour:          9 RCPTs; judged: tag 6, defer 0, reject 0, hold 0$' "$W/status.out"
ok "status: the last hour too" $?
[ "$(echo "$j" | jq -c '[.last_minute.rcpts, .last_minute.by_action.tag, .last_hour.rcpts, .last_hour.by_action.defer]')" = "[9,6,9,0]" ]
ok "status --json: last_minute 9 RCPTs, 6 tagged; last_hour 9, 0 deferred" $?
[ "$(value "$W/s1" mtasts_rcpts_last_minute)" = 9 ] &&
    [ "$(value "$W/s1" 'mtasts_recipients_last_minute{action="tag"}')" = 6 ] &&
    [ "$(value "$W/s1" 'mtasts_recipients_last_minute{action="untouched"}')" = 0 ]
ok "mtasts_rcpts_last_minute 9, mtasts_recipients_last_minute tag 6" $?

# ---- the cache: rows per table = count(*), memory -----------------------------
tables="domains mx_sets mx_probes tls_probes verdict_stats"
for ((i = 0; i < 50; i++)); do
    sleep 0.2		# metrics_cache_rows_interval = 1s; writes may be queued
    curl -s -o "$W/s_rows" "$URL"
    same=0 detail=
    for t in $tables; do
        a=$(value "$W/s_rows" "mtasts_cache_rows{table=\"$t\"}")
        b=$(sqlite3 "file:$W/metrics.sqlite?mode=ro" "SELECT count(*) FROM $t" 2>/dev/null)
        detail="$detail $t=$a/$b"
        grep -q "^mtasts_cache_rows{table=\"$t\"} " "$W/s_rows" && [ "$a" = "$b" ] && same=$((same + 1))
    done
    [ $same -eq 5 ] && [ "$(value "$W/s_rows" 'mtasts_cache_rows{table="domains"}')" -ge 3 ] && break
done
ok "mtasts_cache_rows of the 5 tables = sqlite3 count(*), 3 domains or more (metrics/sqlite3:$detail)" \
    "$([ $same -eq 5 ] && [ "$(value "$W/s_rows" 'mtasts_cache_rows{table="domains"}')" -ge 3 ]; echo $?)"
age=$(value "$W/s_rows" mtasts_cache_rows_age_seconds)
ok "the counts are at most 1 s old ($age)" \
    "$(grep -q '^mtasts_cache_rows_age_seconds ' "$W/s_rows" && echo "$age >= 0 && $age <= 1.5" | bc | grep -q 1; echo $?)"
me=$(value "$W/s_rows" mtasts_memory_entries)
hits=$(value "$W/s_rows" 'mtasts_memory_reads_total{result="hit"}')
miss=$(value "$W/s_rows" 'mtasts_memory_reads_total{result="miss"}')
ok "memory holds the domains judged ($me entries; $hits hits, $miss misses)" \
    "$([ "$me" -ge 3 ] && [ $((hits + miss)) -ge 3 ]; echo $?)"
"$CTL" -c "$W/m.conf" status >"$W/status2.out" 2>&1
grep -q "^cache rows:         domains $(value "$W/s_rows" 'mtasts_cache_rows{table="domains"}')," "$W/status2.out"
ok "status shows the cache rows" $?

# ---- a queue that waits ----------------------------------------------------------
curl -s -o "$W/q0" "$URL"
python3 "$HERE/metrics_client.py" rcpts bob@timeout.test >"$W/q_slow.out" 2>&1 &
QA=$!
sleep 0.5
python3 "$HERE/metrics_client.py" rcpts bob@target.test >"$W/q_wait.out" 2>&1 &
QB=$!
depth=0 wait_s=0
for ((i = 0; i < 30; i++)); do
    sleep 0.1
    curl -s -o "$W/q1" "$URL"
    depth=$(value "$W/q1" 'mtasts_queue_depth{queue="lookup-waited"}')
    wait_s=$(value "$W/q1" 'mtasts_queue_oldest_wait_seconds{queue="lookup-waited"}')
    [ "$depth" -ge 1 ] && break
done
ok "a lookup waits in its lane behind the slow one (depth $depth, oldest wait $wait_s s)" \
    "$([ "$depth" -ge 1 ] && echo "$wait_s > 0" | bc | grep -q 1; echo $?)"
"$CTL" -c "$W/m.conf" status >"$W/status3.out" 2>&1
grep -q '^queues:             lookups [1-9][0-9]* waited (oldest [0-9.]* s)' "$W/status3.out"
ok "status shows it ($(grep '^queues:' "$W/status3.out"))" $?
promtool_now "$W/q1" "the page with a queue is valid"
wait $QA $QB
curl -s -o "$W/q2" "$URL"
[ "$(value "$W/q2" 'mtasts_queue_depth{queue="lookup-waited"}')" = 0 ] &&
    [ "$(value "$W/q2" 'mtasts_queue_oldest_wait_seconds{queue="lookup-waited"}')" = 0.000000 ]
ok "the lane is empty again, its oldest wait 0" $?
slow=$(value "$W/q2" mtasts_lookup_slowest_last_hour_seconds)
ok "the slowest lookup of the hour is the slow one (> 1 s: $slow)" \
    "$(echo "$slow > 1" | bc | grep -q 1; echo $?)"

# ---- what else a client may ask ----------------------------------------------
code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/")
ok "GET / answers 404 ($code)" "$([ "$code" = 404 ]; echo $?)"
code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/metrics/../etc/passwd")
ok "another path answers 404 ($code)" "$([ "$code" = 404 ]; echo $?)"
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST -d x=1 "$URL")
ok "POST answers 405 ($code)" "$([ "$code" = 405 ]; echo $?)"
code=$(curl -s -o /dev/null -w '%{http_code}' -I "$URL")
ok "HEAD answers 200 ($code)" "$([ "$code" = 200 ]; echo $?)"
rss0=$(awk '/^VmRSS/ { print $2 }' "/proc/$MPID/status")
while IFS= read -r line; do
    case $line in
        "ok - "*) ok "${line#ok - }" 0 ;;
        "not ok - "*) ok "${line#not ok - }" 1 ;;
        *) echo "$line" ;;
    esac
done < <(python3 "$HERE/metrics_client.py" abuse 127.0.0.1 "$PORT" 2>&1)
rss1=$(awk '/^VmRSS/ { print $2 }' "/proc/$MPID/status")
ok "resident memory grew by less than 8 MB ($rss0 kB -> $rss1 kB)" \
    "$([ $((rss1 - rss0)) -lt 8192 ]; echo $?)"

# ---- reloads -------------------------------------------------------------------
kill -HUP "$MPID"
for ((i = 0; i < 50; i++)); do
    curl -s -o "$W/s2" "$URL"
    [ "$(value "$W/s2" 'mtasts_reloads_total{result="applied"}')" = 1 ] && break
    sleep 0.1
done
ok "a reload is counted" "$([ "$(value "$W/s2" 'mtasts_reloads_total{result="applied"}')" = 1 ]; echo $?)"
echo "bogus_option = 1" >>"$W/m.conf"
kill -HUP "$MPID"
for ((i = 0; i < 50; i++)); do
    curl -s -o "$W/s3" "$URL"
    [ "$(value "$W/s3" 'mtasts_reloads_total{result="refused"}')" = 1 ] && break
    sleep 0.1
done
ok "a refused reload is counted" "$([ "$(value "$W/s3" 'mtasts_reloads_total{result="refused"}')" = 1 ]; echo $?)"
promtool_ok "$W/s3" "the page after the reloads is valid"

# ---- under load, and across a reload: 8 connections sending RCPTs ---------------
sed -i '/^bogus_option/d' "$W/m.conf"
curl -s -o "$W/l_start" "$URL"
LOADERS=()
for ((c = 0; c < 8; c++)); do
    (for ((k = 0; k < 6; k++)); do
        python3 "$HERE/metrics_client.py" rcpts bob@enforce.test carol@nxdomain.test \
            dave@testing.test eve@enforce.test >/dev/null 2>&1
    done) &
    LOADERS+=($!)
done
bad=0 pages=0
for ((k = 0; k < 8; k++)); do
    sleep 0.3
    [ $k -eq 6 ] && kill -HUP "$MPID"
    curl -s -o "$W/l$k" "$URL" || bad=$((bad + 1))
    pages=$((pages + 1))
    if [ -n "$PROMTOOL" ] && ! "$PROMTOOL" check metrics <"$W/l$k" >"$W/l$k.promtool" 2>&1; then
        bad=$((bad + 1))
        sed 's/^/#   /' "$W/l$k.promtool" | head -5
    fi
    has_now "$W/l$k" || { bad=$((bad + 1)); echo "# page $k: the gauges of the present are missing"; }
    [ $k -eq 5 ] && before_hup=$(value "$W/l5" mtasts_rcpts_last_minute)
done
moving=$(value "$W/l7" mtasts_rcpts_last_minute)
ok "promtool accepts all $pages pages scraped under 8 connections of RCPTs and a reload, each with the gauges of the present ($bad bad)" \
    "$([ $bad -eq 0 ]; echo $?)"
wait "${LOADERS[@]}"
curl -s -o "$W/l_end" "$URL"
# The last hour holds every RCPT of the load: exactly as many as the RCPT
# wait histogram counted meanwhile (both count each RCPT decided).
hour=$(($(value "$W/l_end" mtasts_rcpts_last_hour) - $(value "$W/l_start" mtasts_rcpts_last_hour)))
waits=$(($(value "$W/l_end" mtasts_rcpt_wait_seconds_count) - $(value "$W/l_start" mtasts_rcpt_wait_seconds_count)))
ok "the load was counted: the last hour grew by exactly the RCPTs decided ($hour = $waits of 8 x 6 x 4 = 192; last minute $moving during the load, $(value "$W/l_end" mtasts_rcpts_last_minute) after)" \
    "$([ "$hour" = "$waits" ] && [ "$waits" -gt 0 ]; echo $?)"
# Not "grew": on a fast machine the load may be over before the SIGHUP; a
# reload that reset the counts would drop them below what was seen before.
ok "the reload during the load was applied, the last minute's count was not reset by it ($before_hup before it, $(value "$W/l_end" mtasts_rcpts_last_minute) after)" \
    "$([ "$(value "$W/l_end" 'mtasts_reloads_total{result="applied"}')" = 2 ] &&
       [ "$before_hup" -gt 0 ] && [ "$(value "$W/l_end" mtasts_rcpts_last_minute)" -ge "$before_hup" ]; echo $?)"
promtool_now "$W/l_end" "the page after the load is valid"

# ---- the resolver stopped ------------------------------------------------------
ok "the resolver is ok while unbound runs" \
    "$([ "$(value "$W/l_end" 'mtasts_resolver_state{state="ok"}')" = 1 ]; echo $?)"
kill "$(cat "$W/unbound.pid")"
for ((i = 0; i < 50; i++)); do
    pid_alive=$(pgrep -F "$W/unbound.pid" 2>/dev/null)
    [ -z "$pid_alive" ] && break
    sleep 0.1
done
python3 "$HERE/metrics_client.py" rcpts bob@insecure.test carol@cname.test >"$W/r.out" 2>&1
curl -s -o "$W/r1" "$URL"
st=$(grep '^mtasts_resolver_state{' "$W/r1" | awk '$2 == 1' | sed 's/.*state="\([a-z]*\)".*/\1/')
ok "with unbound stopped the resolver state leaves ok ($st, $(value "$W/r1" mtasts_resolver_failed_in_a_row) failed in a row)" \
    "$( { [ "$st" = degraded ] || [ "$st" = down ]; } && [ "$(value "$W/r1" mtasts_resolver_failed_in_a_row)" -ge 1 ]; echo $?)"
"$CTL" -c "$W/m.conf" status >"$W/status4.out" 2>&1
grep -Eq '^resolver:           (degraded|down) \([0-9]+ lookups failed in a row\)$' "$W/status4.out"
ok "status says so ($(grep '^resolver:' "$W/status4.out"))" $?

kill -0 "$MPID" 2>/dev/null
ok "the milter still runs" $?
kill -TERM "$MPID"
wait "$MPID"
ok "it stops on SIGTERM with status 0" $?
MPID=
sed -i '/^bogus_option/d' "$W/m.conf"
out=$("$CTL" -c "$W/m.conf" status 2>&1)
rc=$?
echo "$out" | grep -q '^mtasts-milter is not running' && [ $rc -eq 3 ]
ok "mtasts-ctl status with the milter stopped says it is not running (exit $rc)" $?
[ "$fails" -eq 0 ] || sed 's/^/# log: /' "$W/m.log" | tail -40
exit $((fails > 0))
