#!/bin/bash
# test_hotpath.sh - issue 9's warm path against the real test world: a warm
# recipient lookup (status, then the MX set, as an RCPT does) sends no query
# to the resolver; another process's write to the shared cache is seen by
# the next lookup of a process that holds the domain in memory.
#
# The resolver's log is the witness: unbound logs every query it gets. The
# program's libunbound keeps a cache of its own, so the test configuration
# turns it off (msg-cache-size and rrset-cache-size as small as unbound
# takes): every DNS lookup the product makes then reaches the log, as the
# no-cache control case shows.
#
# Needs root (the test world); skipped otherwise. TAP output.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
BUILD=${top_builddir:-$(cd "$HERE/../.." && pwd)}
CTL="$BUILD/milter/mtasts-ctl"
HOT="$BUILD/tests/world/hotpath"
W=${MTS_TEST_WORLD_DIR:-/tmp/mts-test-hotpath.$$}

if [ "$(id -u)" -ne 0 ]; then
    echo "1..0 # SKIP the test world needs root (DNS on port 53, HTTPS on 443)"
    exit 0
fi
. "$HERE/suite.sh"
suite_enter_netns mts-hot "$@"


HOT_PID=
cleanup() {
    [ -n "$HOT_PID" ] && kill "$HOT_PID" 2>/dev/null && wait "$HOT_PID" 2>/dev/null
    "$HERE/world.sh" down "$W" >/dev/null 2>&1
    rm -rf "$W"
}
trap cleanup EXIT
"$HERE/world.sh" up "$W" >"$W.up.log" 2>&1 || { sed 's/^/# /' "$W.up.log"; bail "world did not come up"; }
rm -f "$W.up.log"
# shellcheck disable=SC1091
. "$W/env"

{
    cat "$MTS_WORLD_LIBUNBOUND_CONF"
    echo "    msg-cache-size: 0"
    echo "    rrset-cache-size: 0"
} >"$W/libunbound-nocache.conf"
CONF="$W/test.conf"
{
    grep -v -e '^#' -e '^unbound_conf' "$MTS_WORLD_CONF"
    echo "unbound_conf = $W/libunbound-nocache.conf"
    echo "dns_timeout_ms = 2s"
} >"$CONF"
DB=$MTS_WORLD_CACHE_DB

# queries NAME TYPE: how many queries unbound logged for NAME and TYPE.
queries() { grep -c " $1\. $2 IN" "$MTS_WORLD_UNBOUND_LOG"; }

# A process holding one discover; ask CMD sends a command and reads the answer.
start() {
    coproc HOTP { "$HOT" "$CONF" "$@" 2>"$W/hotpath.err"; }
    HOT_PID=$HOTP_PID
}
ask() {
    echo "$1" >&"${HOTP[1]}"
    read -r -t 30 ANSWER <&"${HOTP[0]}" || ANSWER="(no answer)"
}
stop() {
    exec {HOTP[1]}>&-
    wait "$HOT_PID" 2>/dev/null
    HOT_PID=
}

echo "1..11"

# ---- control: without the shared cache, every lookup asks DNS ----------
start no-cache
m0=$(queries enforce.test MX)
ask "lookup enforce.test 5"
m1=$(queries enforce.test MX)
[ $((m1 - m0)) -eq 5 ]
ok "control: 5 lookups with no cache make 5 MX queries at the resolver ($((m1 - m0)): the log sees each one)" $?
stop

# ---- warm: no DNS at all -------------------------------------------------
start
ask "lookup enforce.test"
echo "# cold: $ANSWER"
ask "drain"
t0=$(queries _mta-sts.enforce.test TXT) m0=$(queries enforce.test MX)
ask "lookup enforce.test 200"
echo "# warm: $ANSWER"
[[ $ANSWER == "status=enforce source=cache mx=2 first="*".enforce.test" ]]
ok "warm: enforce from the cache, both MX hosts" $?
t1=$(queries _mta-sts.enforce.test TXT) m1=$(queries enforce.test MX)
[ "$t1" -eq "$t0" ] && [ "$m1" -eq "$m0" ]
ok "warm: 200 lookups make no TXT and no MX query (TXT $t0 -> $t1, MX $m0 -> $m1)" $?
[ "$(sqlite3 "$DB" "SELECT count(*) FROM mx_sets WHERE domain = 'enforce.test'")" -eq 1 ]
ok "the MX set is in the shared cache" $?

# ---- another process writes: seen by the next lookup ---------------------
sqlite3 "$DB" "UPDATE domains SET has_policy = 0, mode = NULL, mx = NULL, status = 'absent',
    expires_at = strftime('%s','now') + 3600 WHERE domain = 'enforce.test'"
sleep 0.01
ask "lookup enforce.test"
[[ $ANSWER == "status=absent source=cache "* ]]
ok "an UPDATE by sqlite3 is seen by the next lookup ($ANSWER)" $?
"$CTL" -c "$CONF" cache flush enforce.test >/dev/null 2>&1
ok "mtasts-ctl cache flush enforce.test" $?
[ "$(sqlite3 "$DB" "SELECT count(*) FROM mx_sets WHERE domain = 'enforce.test'")" -eq 0 ]
ok "the flush took the MX set with the row" $?
t0=$(queries _mta-sts.enforce.test TXT)
sleep 0.01
ask "lookup enforce.test"
t1=$(queries _mta-sts.enforce.test TXT)
[[ $ANSWER == "status=enforce source=fresh "* ]] && [ "$t1" -eq $((t0 + 1)) ]
ok "after the flush, the next lookup is a fresh one ($ANSWER; TXT $t0 -> $t1)" $?
ask "drain"
m0=$(queries enforce.test MX)
ask "lookup enforce.test 50"
m1=$(queries enforce.test MX)
[[ $ANSWER == "status=enforce source=cache mx=2 "* ]] && [ "$m1" -eq "$m0" ]
ok "warm again: no MX query ($ANSWER; MX $m0 -> $m1)" $?

# ---- last use: recorded in memory, written in a batch, not by lookups ----
sqlite3 "$DB" "UPDATE domains SET last_used = 1000 WHERE domain = 'enforce.test'"
sleep 0.01
ask "lookup enforce.test 20"
lu=$(sqlite3 "$DB" "SELECT last_used FROM domains WHERE domain = 'enforce.test'")
[[ $ANSWER == "status=enforce source=cache "* ]] && [ "$lu" -eq 1000 ]
ok "lookups write nothing: last_used still 1000 ($ANSWER)" $?
stop
lu=$(sqlite3 "$DB" "SELECT last_used FROM domains WHERE domain = 'enforce.test'")
[ "$lu" -ge $(($(date +%s) - 60)) ]
ok "the batch of last uses is written at close (last_used $lu)" $?
[ ! -s "$W/hotpath.err" ] || sed 's/^/# /' "$W/hotpath.err"

[ "$fails" -eq 0 ]
