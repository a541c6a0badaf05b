#!/bin/bash
# test_discover.sh - discovery against the real test world: a DNSSEC-signed
# zone behind a validating unbound, nginx with a CA of our own, servers that
# hang. Brings the world up itself, stops it by PID at the end. TAP output.
#
# Needs root (ports 53 and 443 on 127.0.0.0/8). Not root: the whole script
# is skipped with a reason.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
BUILD=${top_builddir:-$(cd "$HERE/../.." && pwd)}
CTL="$BUILD/milter/mtasts-ctl"
DEDUP="$BUILD/tests/world/dedup"
W=${MTS_TEST_WORLD_DIR:-/tmp/mts-test-world.$$}

if [ "$(id -u)" -ne 0 ]; then
    echo "1..0 # SKIP the test world needs root (DNS on port 53, HTTPS on 443)"
    exit 0
fi
. "$HERE/suite.sh"
suite_enter_netns mts-disc "$@"


cleanup() { "$HERE/world.sh" down "$W" >/dev/null 2>&1; rm -rf "$W"; }
trap cleanup EXIT
"$HERE/world.sh" up "$W" >"$W.up.log" 2>&1 || { cat "$W.up.log" | sed 's/^/# /'; bail "world did not come up"; }
rm -f "$W.up.log"
# shellcheck disable=SC1091
. "$W/env"

# The world's configuration with short deadlines, so that hangs are quick.
CONF="$W/test.conf"
{
    grep -v '^#' "$MTS_WORLD_CONF"
    echo "fetch_connect_timeout_ms = 1s"
    echo "fetch_timeout_ms = 2s"
    echo "dns_timeout_ms = 2s"
    # max_age exactly, for the RFC 8461 rules below (the floor is checked apart)
    echo "policy_min_lifetime = 0"
} >"$CONF"
# lookup_deadline_ms keeps its default (0: as long as a lookup can take), so
# a hanging policy host below answers "failed", not "unknown".
OUT="$W/out.json"
ERR="$W/err.txt"

# lookup DOMAIN [ARGS...]: runs mtasts-ctl lookup --json; sets $rc.
lookup() {
    local d=$1
    shift
    "$CTL" -c "$CONF" lookup --json "$@" "$d" >"$OUT" 2>"$ERR"
    rc=$?
}
# is LABEL JQ-EXPR: the last lookup's JSON satisfies the expression.
is() {
    local got
    got=$(jq -r "$2" "$OUT" 2>/dev/null)
    [ "$got" = "true" ] || echo "# $(cat "$OUT") / stderr: $(head -c 300 "$ERR")"
    [ "$got" = "true" ]
    ok "$1" $?
}
# requests HOST: how many policy requests nginx logged for HOST.
requests() { grep -c "host=$1 " "$MTS_WORLD_NGINX_ACCESS_LOG"; }
# txt_queries NAME: how many TXT queries unbound logged for NAME.
txt_queries() { grep -c " $1\. TXT IN" "$MTS_WORLD_UNBOUND_LOG"; }

# expect DOMAIN STATUS REASON-REGEX (or "null") [extra jq condition]
expect() {
    lookup "$1"
    expect_judge "$@"
}
# expect_judge: expect's check on the last lookup
expect_judge() {
    local d=$1 st=$2 re=$3 extra=${4:-true} cond
    if [ "$re" = null ]; then
        cond=".status == \"$st\" and .source == \"fresh\" and .error == null and ($extra)"
    else
        cond=".status == \"$st\" and .source == \"fresh\" and (.error | test(\"$re\")) and ($extra)"
    fi
    is "$d: $st${re:+, reason /$re/}" "$cond"
}

# bg_lookup DOMAIN: a lookup in the background (files of its own); bg_expect
# DOMAIN ... waits for it, makes it the last lookup, and checks as expect.
# The domains that only a timeout ends are asked early, side by side, and
# judged in their places below.
bg_lookup() {
    ("$CTL" -c "$CONF" lookup --json "$1" >"$W/bg-$1.json" 2>"$W/bg-$1.err"; echo $? >"$W/bg-$1.rc") &
    printf -v "BG_${1//./_}" '%s' $!
}
bg_expect() {
    local pid="BG_${1//./_}"
    wait "${!pid}"
    cp "$W/bg-$1.json" "$OUT"
    cp "$W/bg-$1.err" "$ERR"
    read -r rc <"$W/bg-$1.rc"
    expect_judge "$@"
}

echo "1..82"

# ---- statuses, each with its reason -------------------------------------
expect enforce.test enforce null \
    '.dnssec == "secure" and .txt_id == "20240101T000000" and .policy.mode == "enforce" and .policy.max_age == 86400 and .policy.mx == ["mx1.enforce.test","*.mx.enforce.test"]'
ok "enforce: exit status 0" "$rc"
# (after the first lookup: the cache file exists, made by one process)
bg_lookup timeout.test
bg_lookup hang.test
bg_lookup hangtls.test
expect testing.test testing null '.policy.mode == "testing"'
expect none.test none null '.policy.mx == []'
expect notxt.test absent 'NODATA' '.policy == null and .txt_id == null'
expect nxdomain.test absent 'NXDOMAIN'
expect two.test absent 'exactly one'
expect other.test absent 'no TXT record begins with v=STSv1'
expect badtxt.test absent "id has the character"
expect servfail.test unknown 'SERVFAIL'
[ "$rc" -eq 3 ]; ok "unknown: exit status 3" $?
expect bogus.test unknown 'DNSSEC validation .* failed \\(bogus\\)' '.dnssec == "bogus" and .policy == null'
bg_expect timeout.test unknown 'timed out after 2000 ms'
expect insecure.test enforce null '.dnssec == "insecure"'
expect cname.test enforce null '.txt_id == "target20240101"'
expect redirect.test failed 'HTTP 301 redirect to .* not followed' '.txt_id == "20240101000000" and .policy == null'
[ "$(requests mta-sts.redirect.test)" -eq 1 ] && [ "$(requests mta-sts.enforce.test)" -eq 1 ]
ok "redirect: one request, the Location was not fetched" $?
expect notfound.test failed 'HTTP status 404'
expect badtype.test failed 'Content-Type .text/html. is not text/plain'
expect huge.test failed 'exceeds 65536 bytes'
expect chunked.test failed 'exceeds 65536 bytes'
expect exact.test enforce null
expect badpolicy.test failed 'invalid policy: line 2: mode .sometimes.'
expect wrongname.test failed 'TLS: .*no alternative certificate subject name'
expect expired.test failed 'TLS: .*certificate has expired'
expect selfsigned.test failed 'TLS: .*self-signed certificate'
bg_expect hang.test failed 'timed out after 1000 ms'
bg_expect hangtls.test failed 'timed out'
expect refused.test failed '[Cc]onnect|refused'
expect nohost.test failed 'mta-sts.nohost.test'

# ---- the caller's deadline: unknown now, the lookup goes on -------------
"$CTL" -c "$CONF" cache flush hang.test >/dev/null 2>&1
lookup hang.test --deadline 300
is "deadline passed: unknown, and says the lookup goes on" \
    '.status == "unknown" and (.error | test("did not finish within 300 ms"))'
"$CTL" -c "$CONF" cache show --json hang.test >"$OUT" 2>"$ERR"
is "the lookup that outlived the deadline filled the cache" '.status == "failed"'
lookup hang.test --no-cache --deadline 300
is "deadline passed without a cache: says the result is not kept" \
    '.status == "unknown" and (.error | test("without a cache, its result is not kept"))'

# ---- the cache --------------------------------------------------------------
lookup enforce.test
is "second lookup answers from the cache" '.source == "cache" and .status == "enforce"'
[ "$(requests mta-sts.enforce.test)" -eq 1 ]; ok "a cached policy is not fetched again" $?
lookup d50.test --no-cache
is "--no-cache looks up afresh" '.source == "fresh" and .status == "enforce"'
"$CTL" -c "$CONF" cache show d50.test >/dev/null 2>&1
[ $? -eq 1 ]; ok "--no-cache writes nothing to the cache" $?
"$CTL" -c "$CONF" cache list --json >"$OUT"
is "cache list shows what was looked up" 'map(.domain) | index("enforce.test") != null'
"$CTL" -c "$CONF" cache flush enforce.test >/dev/null && ! "$CTL" -c "$CONF" cache show enforce.test >/dev/null 2>&1
ok "cache flush DOMAIN removes the row" $?

# ---- RFC 8461 §5.1 over time, on changing.test ----------------------------
P="$W/policies"
mkdir -p "$P"
printf 'version: STSv1\nmode: testing\nmx: mx1.changing.test\nmax_age: 86400\n' >"$P/testing"
printf 'version: STSv1\nmode: enforce\nmx: mx1.changing.test\nmax_age: 2\n' >"$P/short"
printf 'this is not a policy\n' >"$P/bad"
H=mta-sts.changing.test
expect changing.test enforce null '.txt_id == "1"'
"$HERE/world.sh" set-policy "$W" changing.test 2 "$P/testing" >/dev/null 2>&1
lookup changing.test
is "before the check interval the cached policy answers" '.source == "cache" and .txt_id == "1"'
lookup changing.test --recheck
is "a changed TXT id is picked up and the new policy fetched" \
    '.status == "testing" and .txt_id == "2" and .source == "fresh"'
grep -q "warning: changing.test: policy changed from enforce to testing (id 2): a downgrade" "$ERR"
r=$?; ok "enforce -> testing is logged as a warning ($(head -c 160 "$ERR"))" $r
[ "$(requests $H)" -eq 2 ]; ok "id change: exactly one more fetch" $?
lookup changing.test --recheck
is "unchanged id: checked again" '.status == "testing" and .txt_id == "2" and .error == null'
[ "$(requests $H)" -eq 2 ]; ok "unchanged id: no new fetch" $?

"$HERE/world.sh" set-policy "$W" changing.test 3 "$P/bad" >/dev/null 2>&1
lookup changing.test --recheck
is "a failed fetch keeps the cached policy, and says why" \
    '.status == "testing" and .txt_id == "2" and (.error | test("policy fetch failed: invalid policy"))'
lookup changing.test --recheck
[ "$(requests $H)" -eq 3 ]; ok "failed id is not fetched again within the retry interval" $?

"$HERE/world.sh" set-policy "$W" changing.test - - >/dev/null 2>&1
lookup changing.test --recheck
is "a vanished TXT record keeps the cached policy" \
    '.status == "testing" and .txt_id == "2" and (.error | test("no usable MTA-STS TXT record"))'

"$HERE/world.sh" set-policy "$W" changing.test 4 "$P/short" >/dev/null 2>&1
lookup changing.test --recheck
is "a new id with max_age 2 is fetched" '.status == "enforce" and .policy.max_age == 2'
"$HERE/world.sh" set-policy "$W" changing.test 5 "$P/bad" >/dev/null 2>&1
# policy_min_lifetime: a policy with a max_age of 2 s is kept a minute, not
# fetched again for every lookup (RFC 8461 §3.3 asks senders to limit fetches).
# d45.test's policy is fetched here, so that one 3 s wait is past both
# max_ages (changing.test's and d45.test's); judged after changing.test.
MCONF="$W/minlife.conf"
sed 's/^policy_min_lifetime = 0$/policy_min_lifetime = 1m/' "$CONF" >"$MCONF"
"$HERE/world.sh" set-policy "$W" d45.test 77 "$P/short" >/dev/null 2>&1
"$CTL" -c "$MCONF" lookup --json --recheck d45.test >"$OUT" 2>"$ERR"
before=$(requests mta-sts.d45.test)
sleep 3
lookup changing.test
is "past max_age the policy is dropped (and the refetch failed)" \
    '.status == "failed" and .policy == null and .txt_id == "5"'
"$CTL" -c "$MCONF" lookup --json d45.test >"$OUT" 2>"$ERR"
is "policy_min_lifetime = 1m: a max_age 2 policy is still used 3 s after its fetch" \
    '.status == "enforce" and .policy.max_age == 2 and .txt_id == "77"'
n45=$(($(requests mta-sts.d45.test) - before))
[ "$n45" -eq 0 ]
ok "policy_min_lifetime = 1m: not fetched again when looked up past its max_age ($n45 fetches)" $?

# ---- one lookup in flight per domain --------------------------------------
"$DEDUP" "$CONF" d49.test 200 >"$W/dedup.out" 2>&1
r=$?; ok "200 concurrent lookups all get enforce ($(tr '\n' ' ' <"$W/dedup.out"))" $r
[ "$(requests mta-sts.d49.test)" -eq 1 ]; r=$?; ok "200 concurrent lookups: one HTTPS request ($(requests mta-sts.d49.test))" $r
[ "$(txt_queries _mta-sts.d49.test)" -eq 1 ]; r=$?; ok "200 concurrent lookups: one TXT query ($(txt_queries _mta-sts.d49.test))" $r

# ---- the background refresher, with a clock the test moves -----------------
RCONF="$W/refresh.conf"
sed "s|^cache_db = .*|cache_db = $W/refresh.sqlite|" "$CONF" >"$RCONF"
echo "refresh_interval = 1s" >>"$RCONF"
before=$(txt_queries _mta-sts.d47.test)
"$BUILD/tests/world/refresh" "$RCONF" d47.test d46.test >"$W/refresh.out" 2>&1
r=$?; ok "refresher: a row in use and due is re-checked, an unused one purged ($(tr '\n' ';' <"$W/refresh.out"))" $r
[ "$(txt_queries _mta-sts.d47.test)" -gt "$before" ]
ok "refresher: the re-check asked DNS for the TXT id again" $?

# ---- mtasts-ctl explain: the milter's verdict through the milter's code -----
ECONF="$W/explain.conf"
{ cat "$CONF"; echo "enforcing_transports = smtp"; echo "rcpt_deadline_ms = 3s"; } >"$ECONF"
"$CTL" -c "$ECONF" explain --json --auth alice --from alice@example.org --mailer smtp \
    bob@enforce.test bob@mxmismatch.test bob@testing.test '<broken@' >"$OUT" 2>"$ERR"
rc=$?
[ $rc -eq 1 ]; ok "explain: exit 1 when a recipient would be refused" $?
is "explain: enforce.test over an enforcing transport is tagged (pass)" \
    '.[0].action == "tag" and .[0].verdict == "pass" and .[0].status == "enforce" and .[0].reply == null'
is "explain: mxmismatch.test is rejected, with the exact reply" \
    '.[1].action == "reject" and (.[1].reply | startswith("550 5.7.5 MTA-STS: mxmismatch.test requires MTA-STS (enforce)"))'
is "explain: testing.test demands nothing" '.[2].action == "tag" and .[2].verdict == "not-required"'
is "explain: an unreadable address follows the unknown action (defer)" \
    '.[3].action == "defer" and (.[3].reply | startswith("450 4.7.5"))'
"$CTL" -c "$ECONF" explain --auth alice --mailer relay --host '[smart.example]:587' bob@enforce.test >"$OUT" 2>&1
grep -q "reply: 450 4.7.5 MTA-STS: enforce.test requires MTA-STS (enforce) and the route relay:\[smart.example\]:587 does not enforce it" "$OUT"
ok "explain: a smarthost not declared enforcing defers an enforce domain" $?
"$CTL" -c "$ECONF" explain bob@mxmismatch.test >"$OUT" 2>&1
grep -q "untouched" "$OUT"; ok "explain: an unauthenticated session passes untouched" $?
"$CTL" -c "$ECONF" explain --json --auth alice bob@servfail.test >"$OUT" 2>"$ERR"
is "explain: an unknown status shows the generic reply and the detailed reason" \
    '.[0].reply == "450 4.7.5 MTA-STS: MTA-STS status of servfail.test could not be determined now; try again later" and (.[0].reason | test("SERVFAIL"))'

# ---- two processes writing the cache at once -------------------------------
seq -w 1 30 | sed 's/^/d/; s/$/.test/' >"$W/list1"
seq -w 20 48 | sed 's/^/d/; s/$/.test/' >"$W/list2"
"$CTL" -c "$CONF" prefetch "$W/list1" >"$W/p1.out" 2>&1 &
p1=$!
"$CTL" -c "$CONF" prefetch "$W/list2" >"$W/p2.out" 2>&1 &
p2=$!
wait $p1; r1=$?
wait $p2; r2=$?
[ $r1 -eq 0 ] && [ $r2 -eq 0 ]; r=$?; ok "two concurrent prefetches succeed ($(cat "$W/p1.out"))" $r
"$CTL" -c "$CONF" cache list --json >"$OUT"
is "no row lost: d01..d48 all cached, all enforce" \
    '[.[] | select(.domain | test("^d[0-9]+\\.test$")) | select(.domain != "d49.test" and .domain != "d50.test") | select(.status == "enforce")] | length == 48'

# ---- prefetch on a terminal shows progress; piped, it does not ------------------
printf 'd01.test\nd02.test\n# a comment\n\nd03.test\n' >"$W/list3"
script -qec "$CTL -c $CONF prefetch $W/list3" /dev/null >"$W/tty.out" 2>&1
grep -q "prefetch: 3/3" "$W/tty.out" && grep -q "prefetched 3 domains: 3 enforce" "$W/tty.out"
r=$?; ok "prefetch on a terminal: a progress line, then the summary ($(tr '\r\n' '  ' <"$W/tty.out" | head -c 120))" $r
"$CTL" -c "$CONF" prefetch - <"$W/list3" >"$W/pipe.out" 2>&1
! grep -q "prefetch: 3/3" "$W/pipe.out" && grep -q "prefetched 3 domains" "$W/pipe.out"
ok "prefetch from stdin, not a terminal: no progress line, the summary" $?

# ---- a locked or corrupt database --------------------------------------------
LOCKCONF="$W/lock.conf"
grep -v '^cache_busy_timeout_ms' "$CONF" >"$LOCKCONF"
echo "cache_busy_timeout_ms = 200ms" >>"$LOCKCONF"
# the lock is held until the lookup is over ($W/unlock), 10 s at most
{ echo "BEGIN EXCLUSIVE; DELETE FROM domains WHERE domain = 'none.test';"
  for ((i = 0; i < 100; i++)); do [ -e "$W/unlock" ] && break; sleep 0.1; done
  echo "ROLLBACK;"; } |
    sqlite3 "$MTS_WORLD_CACHE_DB" &
locker=$!
sleep 0.5
"$CTL" -c "$LOCKCONF" lookup --json d50.test >"$OUT" 2>"$ERR"
touch "$W/unlock"
is "locked database: the lookup still answers" '.status == "enforce"'
grep -q "database is locked" "$ERR"; r=$?; ok "locked database: the error says so ($(head -c 200 "$ERR"))" $r
wait $locker
"$CTL" -c "$CONF" cache show none.test >/dev/null 2>&1; ok "a rolled-back writer lost no committed row" $?

# A row with an absurd time (a sum with it would overflow a signed add; UBSan
# aborts on that): refused as a bad row, looked up afresh and replaced.
lookup d48.test
sqlite3 "$MTS_WORLD_CACHE_DB" "UPDATE domains SET checked_at = 9223372036854775807, fetched_at = 9223372036854775807 WHERE domain = 'd48.test'"
lookup d48.test
is "a row with checked_at = INT64_MAX is looked up afresh" '.source == "fresh" and .status == "enforce"'
grep -q "d48.test: column [a-z_]* is out of range" "$ERR"; r=$?; ok "the bad row is named in the log ($(head -c 200 "$ERR"))" $r
[ "$(sqlite3 "$MTS_WORLD_CACHE_DB" "SELECT checked_at < 253402300800 FROM domains WHERE domain = 'd48.test'")" = 1 ]
ok "the bad row was replaced" $?

head -c 4096 /dev/urandom >"$W/corrupt.sqlite"
sed "s|^cache_db = .*|cache_db = $W/corrupt.sqlite|" "$CONF" >"$W/corrupt.conf"
"$CTL" -c "$W/corrupt.conf" lookup enforce.test >"$OUT" 2>"$ERR"
rc=$?
[ $rc -eq 4 ] && grep -q "corrupt or not an SQLite database" "$ERR"
r=$?; ok "corrupt database: exit 4 and a clear error ($(head -c 200 "$ERR"))" $r

# ---- a resolver that strips DNSSEC -----------------------------------------
# A forwarder that clears the DO bit (as many laptop and container resolvers
# do) in front of the world's resolver: lookups cannot validate, and the
# tool and the milter must say the resolver is at fault, with the fix.
STRIP_ADDR=127.0.10.7
python3 "$HERE/stripdns.py" "$STRIP_ADDR" "$(awk '/^nameserver/ {print $2; exit}' "$MTS_WORLD_RESOLV_CONF")" \
    "$W/stripdns.pid" &
strip_pid=$!
printf 'nameserver %s\n' "$STRIP_ADDR" >"$W/strip-resolv.conf"
sed "s|^resolv_conf = .*|resolv_conf = $W/strip-resolv.conf|" "$CONF" >"$W/strip.conf"
i=0; while [ ! -s "$W/stripdns.pid" ] && [ $i -lt 50 ]; do i=$((i + 1)); sleep 0.1; done
"$CTL" -c "$W/strip.conf" lookup --json --no-cache enforce.test >"$OUT" 2>"$ERR"
is "stripping resolver: unknown, and the tool blames the resolver with the fix" \
    '.status == "unknown" and (.resolver_problem | test("strips DNSSEC")) and
     (.resolver_problem | test("resolv_conf = none")) and (.resolver_problem | test("'"$STRIP_ADDR"'"))'
"$CTL" -c "$W/strip.conf" lookup --no-cache enforce.test >"$W/strip.txt" 2>&1
[ "$(grep -c '^resolver: .*strips DNSSEC' "$W/strip.txt")" -eq 1 ]
r=$?; ok "stripping resolver: the plain output says so once ($(grep '^resolver:' "$W/strip.txt" | head -c 160))" $r
lookup bogus.test --no-cache
is "a domain's own bogus DNSSEC is not blamed on a good resolver" \
    '.status == "unknown" and .resolver_problem == null'
"$BUILD/milter/mtasts-milter" -f -c "$W/strip.conf" -p "unix:$W/strip.sock" 2>"$W/strip-milter.log" &
mpid=$!
i=0; while ! grep -q "strips DNSSEC" "$W/strip-milter.log" && [ $i -lt 100 ]; do i=$((i + 1)); sleep 0.1; done
kill "$mpid"; wait "$mpid" 2>/dev/null
[ "$(grep -c "strips DNSSEC" "$W/strip-milter.log")" -eq 1 ]
r=$?; ok "stripping resolver: the milter logs it once at start ($(grep -o 'error: the resolver.\{0,60\}' "$W/strip-milter.log"))" $r
"$BUILD/milter/mtasts-milter" -f -c "$CONF" -p "unix:$W/good.sock" 2>"$W/good-milter.log" &
mpid=$!
i=0; while ! grep -q "listening on" "$W/good-milter.log" && [ $i -lt 100 ]; do i=$((i + 1)); sleep 0.1; done
sleep 1
kill "$mpid"; wait "$mpid" 2>/dev/null
! grep -q "DNSSEC" "$W/good-milter.log" && grep -q "listening on" "$W/good-milter.log"
ok "a resolver that passes DNSSEC: no such warning at start" $?
kill "$strip_pid" 2>/dev/null; wait "$strip_pid" 2>/dev/null

[ "$n" -eq 82 ] || echo "# planned 82, ran $n"
[ "$fails" -eq 0 ]
