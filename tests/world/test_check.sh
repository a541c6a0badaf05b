#!/bin/bash
# test_check.sh - `mtasts-ctl check DOMAIN` and `mtasts-ctl probe HOST`
# against the test world's MX hosts (STARTTLS SMTP servers on 127.0.50.0/24
# port 25, see tests/world/README): grades, the sender's action, exit
# statuses, human and JSON output, the bounds (a silent MX, 30 MX records),
# --mx and --port. Brings the world up in a network namespace of its own,
# stops it by PID at the end. TAP output.
#
# Needs root (ports 25, 53 and 443 on 127.0.0.0/8). Not root: the whole
# script is skipped with a reason.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
BUILD=${top_builddir:-$(cd "$HERE/../.." && pwd)}
CTL="$BUILD/milter/mtasts-ctl"
W=${MTS_TEST_WORLD_DIR:-/tmp/mts-test-check.$$}

if [ "$(id -u)" -ne 0 ]; then
    echo "1..0 # SKIP the test world needs root (SMTP on 25, DNS on 53, HTTPS on 443)"
    exit 0
fi
if ! command -v jq >/dev/null 2>&1; then
    echo "1..0 # SKIP jq is not installed"
    exit 0
fi
. "$HERE/suite.sh"
suite_enter_netns mts-check "$@"


cleanup() { "$HERE/world.sh" down "$W" >/dev/null 2>&1; rm -rf "$W"; }
trap cleanup EXIT
"$HERE/world.sh" up "$W" >"$W.up.log" 2>&1 || { sed 's/^/# /' "$W.up.log"; bail "world did not come up"; }
rm -f "$W.up.log"
# shellcheck disable=SC1091
. "$W/env"
CONF="$W/test.conf"
{
    grep -v '^#' "$MTS_WORLD_CONF"
    echo "fetch_connect_timeout_ms = 1s"
    echo "fetch_timeout_ms = 2s"
    echo "dns_timeout_ms = 2s"
    echo "probe_timeout_ms = 3s"
} >"$CONF"
OUT="$W/out"
ERR="$W/err"

# run ARGS...: mtasts-ctl with the world's configuration; sets $rc, $ms.
run() {
    local t0 t1
    t0=$(date +%s%N)
    "$CTL" -c "$CONF" "$@" >"$OUT" 2>"$ERR"
    rc=$?
    t1=$(date +%s%N)
    ms=$(((t1 - t0) / 1000000))
}
# check DOMAIN [ARGS...]: check --json
check() { local d=$1; shift; run check --json "$@" "$d"; }
# is LABEL JQ-EXPR: the last output satisfies the expression.
is() {
    local got
    got=$(jq -r "$2" "$OUT" 2>/dev/null)
    [ "$got" = "true" ] || echo "# $(head -c 1500 "$OUT") / stderr: $(head -c 300 "$ERR")"
    [ "$got" = "true" ]
    ok "$1" $?
}
# has LABEL FIXED-STRING: the last (human) output has a line with it.
has() {
    grep -qF -- "$2" "$OUT" || sed 's/^/# /' "$OUT" | head -30
    grep -qF -- "$2" "$OUT"
    ok "$1" $?
}
exits() { [ "$rc" -eq "$2" ] || echo "# exit status $rc, wanted $2"; [ "$rc" -eq "$2" ]; ok "$1" $?; }
accepts() { grep -c " accept .*@$1:25 " "$MTS_WORLD_SMTP_LOG"; }


# ---- goodmx.test: enforce, one MX with two good addresses ---------------------
check goodmx.test --store
exits "goodmx: exit 0" 0
is "goodmx: grade good, deliver to mx.goodmx.test" \
    '.grade == "good" and .sender.action == "deliver" and .sender.summary == "deliver to mx.goodmx.test"'
is "goodmx: TXT and MX DNSSEC secure, policy" \
    '.txt.name == "_mta-sts.goodmx.test" and .txt.dnssec == "secure" and .txt.records == ["v=STSv1; id=20240101000000;"] and .status == "enforce" and .policy.mx == ["mx.goodmx.test"] and .mx.dnssec == "secure" and .mx.hosts_total == 1'
is "goodmx: both addresses probed, ok, TLS 1.2+, chain valid, name match" \
    '.hosts[0].host == "mx.goodmx.test" and .hosts[0].preference == 10 and .hosts[0].policy_match and ([.hosts[0].probes[].address] | sort) == ["127.0.50.2","127.0.50.3"] and all(.hosts[0].probes[]; .status == "ok" and .certificate.chain_valid and .certificate.name_match and .certificate.names == ["mx.goodmx.test"] and (.certificate.issuer | test("MTA-STS World Test CA")) and .certificate.days_left > 300 and (.tls.protocol | test("TLSv1.[23]")))'
[ "$(sqlite3 "$MTS_WORLD_CACHE_DB" "SELECT group_concat(address || ' ' || grade, ',') FROM (SELECT * FROM tls_probes WHERE host = 'mx.goodmx.test' AND port = 25 ORDER BY address)")" = "127.0.50.2 good,127.0.50.3 good" ]
ok "goodmx: check --store: the probes updated the shared cache (tls_probes)" $?
run check goodmx.test
exits "goodmx human: exit 0" 0
has "goodmx human: grade line" "grade:    good (the worst of the policy-matching MX hosts that pass RFC 8461)"
has "goodmx human: sender line" "sender:   deliver to mx.goodmx.test"
has "goodmx human: TXT line" 'txt:      "v=STSv1; id=20240101000000;" (DNSSEC secure)'
grep -qE '^ +10 mx\.goodmx\.test +good +in policy; ' "$OUT"
ok "goodmx human: the MX table row" $?
[ "$(grep -c '^    result:      ok$' "$OUT")" -eq 2 ]
ok "goodmx human: two probes, both ok" $?

# ---- certificate and TLS failures ---------------------------------------------
check expiredmx.test
exits "expiredmx: exit 1" 1
is "expiredmx: unverified, expired, defer" \
    '.grade == "unverified" and .hosts[0].probes[0].status == "expired" and .hosts[0].grade == "unverified" and .sender.action == "defer" and (.sender.summary | test("^defer: no MX host that matches the policy passes RFC 8461 \\(mx.expiredmx.test: the certificate expired"))'
check wrongnamemx.test
exits "wrongnamemx: exit 1" 1
is "wrongnamemx: unverified, wrong-name, the names shown" \
    '.grade == "unverified" and .hosts[0].probes[0].status == "wrong-name" and .hosts[0].probes[0].certificate.names == ["mx.someone-else.test"] and .sender.action == "defer"'
run check --store nostarttls.test
exits "nostarttls: exit 1" 1
has "nostarttls human: grade fail" "grade:    fail (the best of the policy-matching MX hosts, none of which passes RFC 8461)"
has "nostarttls human: the reason" "sender:   defer: no MX host that matches the policy passes RFC 8461 (mx.nostarttls.test: STARTTLS is not offered"
check tls10mx.test
exits "tls10mx: exit 1" 1
is "tls10mx: fail, tls-too-old" \
    '.grade == "fail" and .hosts[0].probes[0].status == "tls-too-old" and .hosts[0].probes[0].tls.protocol == "TLSv1"'

# ---- MX sets -----------------------------------------------------------------
check mixedmx.test
exits "mixedmx: exit 0 (one good MX is enough)" 0
is "mixedmx: good, deliver to the provider only, the self-signed one unverified" \
    '.grade == "good" and .sender.summary == "deliver to mx.provider.test" and [.hosts[] | [.host, .preference, .grade]] == [["bad.mixedmx.test",10,"unverified"],["mx.provider.test",20,"good"]] and .hosts[0].probes[0].status == "untrusted"'
check mismatchmx.test
exits "mismatchmx: exit 1" 1
is "mismatchmx: the good MX is not in the policy, the one in it fails: defer, fail" \
    '.grade == "fail" and .sender.action == "defer" and .hosts[0].host == "mx.provider.test" and .hosts[0].policy_match == false and .hosts[0].grade == "good" and .hosts[1].policy_match and .hosts[1].probes[0].status == "no-starttls"'
run check mismatchmx.test
grep -qE '^ +10 mx\.provider\.test +good +NOT in policy; ' "$OUT"
ok "mismatchmx human: NOT in policy" $?
check cnamemx.test
exits "cnamemx: exit 0" 0
is "cnamemx: the MX name is a CNAME; probed with its own name (SNI), good" \
    '.grade == "good" and .hosts[0].host == "mx.cnamemx.test" and .hosts[0].cname == "mx.provider.test" and .hosts[0].probes[0].address == "127.0.50.1" and .hosts[0].probes[0].certificate.name_match'
run check cnamemx.test
has "cnamemx human: the CNAME is said" "mx.cnamemx.test (CNAME to mx.provider.test"
before=$(accepts 127.0.50.1)
check nullmx.test
exits "nullmx: exit 0" 0
is "nullmx: no mail, grade none, nothing probed" \
    '.grade == "none" and .sender.action == "no-mail" and .mx.null_mx and .hosts == [] and .status == "absent"'
run check nullmx.test
has "nullmx human: the null MX is said" 'mx:       null MX ("."): the domain accepts no mail (RFC 7505)'
check shared2.test
exits "shared2 (testing): exit 0" 0
is "shared2: testing: not applicable, grade of the MX" \
    '.status == "testing" and .sender.action == "not-applicable" and .grade == "good" and (.sender.summary | test("mode testing"))'
check redirect.test
exits "redirect (failed policy): exit 1" 1
is "redirect: failed: grade fail, the reason kept" \
    '.status == "failed" and .grade == "fail" and .sender.action == "not-applicable" and (.policy_error | test("redirect"))'
check servfail.test
exits "servfail: exit 3" 3
is "servfail: unknown, no DNSSEC claim" \
    '.grade == "unknown" and .sender.action == "unknown" and .txt.dnssec == null and .mx.dns == "servfail"'

# ---- hostile and down --------------------------------------------------------
check hangmx.test --timeout 2000
exits "hangmx: exit 3" 3
is "hangmx: unknown, timeout waiting for the greeting" \
    '.grade == "unknown" and .hosts[0].probes[0].status == "timeout" and .hosts[0].probes[0].stage == "greeting"'
[ "$ms" -lt 6000 ]
ok "hangmx: bounded by --timeout (took $ms ms)" $?
check downmx.test --timeout 2000
exits "downmx: exit 3" 3
is "downmx: refused, unknown" '.grade == "unknown" and .hosts[0].probes[0].status == "refused"'
before=$(accepts 127.0.50.1)
check manymx.test --timeout 5000
is "manymx: 30 MX, 10 probed, a note says so" \
    '.mx.hosts_total == 30 and .mx.hosts_probed == 10 and (.hosts | length) == 10 and .hosts[0].host == "mx01.manymx.test" and .hosts[9].host == "mx10.manymx.test" and (.notes | any(test("30 MX hosts; the 10 most preferred were probed")))'
after=$(accepts 127.0.50.1)
[ $((after - before)) -eq 10 ]
ok "manymx: 10 connections, not 30 (got $((after - before)))" $?
is "manymx: wrong name everywhere: unverified, defer" '.grade == "unverified" and .sender.action == "defer"'
[ "$ms" -lt 10000 ]
ok "manymx: bounded (took $ms ms)" $?

# ---- --mx and --port ---------------------------------------------------------
before=$(accepts 127.0.50.8)
check mixedmx.test --mx MX.Provider.TEST.
is "--mx: only that host" '(.hosts | length) == 1 and .hosts[0].host == "mx.provider.test" and .hosts[0].preference == 20 and .grade == "good"'
[ "$(accepts 127.0.50.8)" -eq "$before" ]
ok "--mx: the other MX was not contacted" $?
check mixedmx.test --mx mx.goodmx.test
is "--mx elsewhere: probed, a note, no preference" \
    '.hosts[0].preference == null and .hosts[0].policy_match == false and (.notes | any(test("not an MX host of mixedmx.test")))'
check goodmx.test --port 2525 --timeout 2000
exits "--port: nothing listens on 2525: exit 3" 3
is "--port: the port is used" 'all(.hosts[0].probes[]; .port == 2525 and .status == "refused")'

# ---- usage -------------------------------------------------------------------
run check
exits "check without a domain: exit 2" 2
run check --port 0 goodmx.test
exits "check --port 0: exit 2" 2
run check --mx 'not a host' goodmx.test
exits "check --mx with a bad name: exit 2" 2

# ---- mtasts-ctl probe against the world's MX hosts ---------------------------
run probe --json mx.provider.test
exits "probe mx.provider.test: exit 0" 0
is "probe: ok, good, names, TLS" \
    '.status == "ok" and .address == "127.0.50.1" and .port == 25 and .starttls and .grade.grade == "good" and .grade.rfc8461 and .certificate.names == ["mx.provider.test","mx.cnamemx.test"] and .certificate.chain_valid'
run probe --json mx.nostarttls.test
exits "probe mx.nostarttls.test: exit 1" 1
is "probe: no-starttls, fail" '.status == "no-starttls" and .grade.grade == "fail" and .starttls == false'

# ---- the probe's edge hosts (issue 10): each failure named, each bounded ------
# probe_edge HOST STATUS STAGE REASON-REGEX MAX-MS [GRADE EXIT]: probe --json
# --timeout 3000 (grade fail, exit 1 unless said)
probe_edge() {
    local host=$1 status=$2 stage=$3 why=$4 max=$5 grade=${6:-fail} want=${7:-1}
    run probe --json --timeout 3000 "mx.$host.test"
    probe_edge_judge "$@"
}
# probe_edge_judge: probe_edge's checks on the last run
# (MIN, an eighth argument: the run may not end before MIN ms, a deadline)
probe_edge_judge() {
    local host=$1 status=$2 stage=$3 why=$4 max=$5 grade=${6:-fail} want=${7:-1} min=${8:-0}
    is "probe $host: $status in stage $stage, grade $grade, the reason says \"$why\"" \
        ".status == \"$status\" and .stage == \"$stage\" and (.reason | test(\"$why\")) and .grade.grade == \"$grade\""
    [ "$rc" -eq "$want" ] && [ "$ms" -lt "$max" ] && [ "$ms" -ge "$min" ]
    ok "probe $host: exit $want (got $rc), within $max ms$([ "$min" -eq 0 ] || echo ", not before its $min ms deadline") (took $ms ms)" $?
}
# bg_run NAME ARGS...: run in the background (its own files); bg_end NAME
# waits for it and makes it the last run ($OUT, $ERR, $rc, $ms). The runs that
# only a deadline ends wait for it side by side, not one after another.
bg_run() {
    local name=$1
    shift
    (OUT=$W/bg-$name.out ERR=$W/bg-$name.err; run "$@"; echo "$rc $ms" >"$W/bg-$name.rc") &
    printf -v "BG_$name" '%s' $!
}
bg_end() {
    local pid="BG_$1"
    wait "${!pid}"
    cp "$W/bg-$1.out" "$OUT"
    cp "$W/bg-$1.err" "$ERR"
    read -r rc ms <"$W/bg-$1.rc"
}
# only the deadline ends dripmx and hangtlsmx (below): started now, judged there
bg_run dripmx probe --json --timeout 3000 mx.dripmx.test
bg_run hangtlsmx probe --json --timeout 3000 mx.hangtlsmx.test
bg_run hangtlscheck check --json --timeout 3000 --store hangtlsmx.test
# TLS 1.1 only and an unknown CA complete a handshake: fast
probe_edge tls11mx tls-too-old handshake "TLS too old: the server negotiated TLSv1\\\\.1" 2500
is "probe tls11mx: the session is seen (TLSv1.1), TLS 1.2+ not met" \
    '.tls.protocol == "TLSv1.1" and .grade.tls == false and .grade.rfc8461 == false'
run probe --json --timeout 3000 mx.untrustedmx.test
is "probe untrustedmx: untrusted, unknown CA, the issuer named, the name matches" \
    '.status == "untrusted" and (.reason | test("unknown CA")) and (.reason | test("Untrusted Other CA")) and .certificate.chain_valid == false and .grade.grade == "unverified" and .grade.tls == true and .grade.rfc8461 == false'
[ "$rc" -eq 1 ]
ok "probe untrustedmx: exit 1 (got $rc)" $?
# hostile banners: the line and line-count bounds end them, long before the deadline
probe_edge hugebannermx reply-too-long greeting "more than 100 lines" 2500
probe_edge endlessmx reply-too-long greeting "more than 100 lines" 2500
probe_edge longlinemx reply-too-long greeting "longer than 1000 octets" 2500
probe_edge binarybannermx bad-reply greeting "not an SMTP reply.*\\\\\\\\x00" 2500
# only the deadline ends these two: a banner dripping under every bound, and
# a server that says 220 to STARTTLS and never sends a ServerHello
# (a timeout at the greeting is unknown: a busy server looks the same)
bg_end dripmx
# The reason counts from the probe's own start (tlsprobe_run), a moment
# after mtasts-ctl set the 3000 ms deadline: once, under ASan at make -j4,
# 8 ms passed in between ("timed out after 2992 ms"), so the reason may say
# a little under 3000; the run itself cannot end before the deadline.
probe_edge_judge dripmx timeout greeting "timed out after (2[5-9]|3[0-9])[0-9]{2} ms waiting for the greeting \\\\(220\\\\): [0-9]+ lines of a reply came, never its last line" 5000 unknown 3 3000
bg_end hangtlsmx
probe_edge_judge hangtlsmx timeout handshake "timed out after (2[5-9]|3[0-9])[0-9]{2} ms in the TLS handshake" 5000 fail 1 3000
is "probe hangtlsmx: STARTTLS was offered and answered, no TLS session" '.starttls == true and .tls == null'
grep -q "hangtls@127.0.50.16:25 STARTTLS" "$MTS_WORLD_SMTP_LOG"
ok "hangtlsmx: the server saw STARTTLS (the hang is after it)" $?
! grep -Eq "@127\.0\.50\.1[0-7]:25 (MAIL|RCPT|DATA)" "$MTS_WORLD_SMTP_LOG"
ok "the edge hosts never saw MAIL, RCPT or DATA" $?
bg_end hangtlscheck
is "check hangtlsmx.test: fail, defer naming the host and the TLS handshake timeout" \
    '.grade == "fail" and .sender.action == "defer" and (.sender.summary | test("mx.hangtlsmx.test: timed out after [0-9]+ ms in the TLS handshake"))'
check untrustedmx.test --timeout 3000 --store
is "check untrustedmx.test: unverified, defer naming the unknown CA" \
    '.grade == "unverified" and .sender.action == "defer" and (.sender.summary | test("mx.untrustedmx.test: .*unknown CA"))'

# ---- mtasts-ctl cache and the probe rows the checks above wrote --------------
# (check --store writes probe rows only; a lookup writes goodmx.test's domain row)
run lookup goodmx.test
exits "lookup goodmx.test: exit 0" 0
run cache list --probes --json
is "cache list --probes: goodmx's two addresses good, nostarttls fail with its reason, times set" \
    '(map(select(.host == "mx.goodmx.test" and .grade == "good" and .port == 25)) | map(.address) == ["127.0.50.2","127.0.50.3"]) and any(.host == "mx.nostarttls.test" and .grade == "fail" and .status == "no-starttls" and (.reason | test("STARTTLS"))) and all(.expires_at > .probed_at and .probed_at > 0)'
is "cache list --probes: the edge hosts' rows name their failure" \
    'any(.host == "mx.hangtlsmx.test" and .status == "timeout" and (.reason | test("TLS handshake"))) and any(.host == "mx.untrustedmx.test" and .grade == "unverified")'
run cache list
has "cache list (human): a probe row with host, address, grade" "$(printf '%-40s %-22s %-10s' mx.goodmx.test 127.0.50.2:25 good)"
grep -q "^goodmx\.test  *enforce " "$OUT" && [ "$(grep -n "^goodmx\.test " "$OUT" | cut -d: -f1)" -lt "$(grep -n "^MX probes" "$OUT" | cut -d: -f1)" ]
ok "cache list (human): the domains first, then the probe rows" $?
run cache show --probes --json MX.GoodMX.test.
is "cache show --probes HOST: its rows, the certificate names a list" \
    'length == 2 and all(.host == "mx.goodmx.test" and .grade == "good" and .rfc8461 and .cert_names == ["mx.goodmx.test"] and (.protocol | test("^TLSv1\\.[23]$")))'
exits "cache show --probes HOST: exit 0" 0
run cache show --probes mx.never-probed.test
exits "cache show --probes of a host without rows: exit 1" 1
run cache flush --probes mx.goodmx.test
exits "cache flush --probes HOST: exit 0" 0
run cache list --probes --json
is "cache flush --probes HOST: its rows gone, the others kept" \
    '(map(select(.host == "mx.goodmx.test")) | length == 0) and any(.host == "mx.nostarttls.test")'
run cache flush --probes mx.goodmx.test
exits "cache flush --probes HOST again: exit 1 (no rows)" 1
run cache flush --probes
exits "cache flush --probes: exit 0" 0
run cache list --probes --json
is "cache flush --probes: every probe row gone" 'length == 0'
run cache list --json
is "cache flush --probes: the domain rows kept" 'any(.domain == "goodmx.test")'
run cache show --probes
exits "cache show --probes without a host: exit 2" 2

# ---- one probe configuration: check probes with the milter's options ------
# STRICT trusts another CA for probes (probe_ca_file): under it no MX host of
# the world passes. MINE is the world's. A check run under one configuration
# never changes what the milter decides under another (it stores nothing
# unless --store asks): before, check probed with ca_file and wrote its rows.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -subj "/CN=Another Test CA" -keyout "$W/other-ca.key" -out "$W/other-ca.crt" >/dev/null 2>&1
MINE="$W/mine.conf" STRICT="$W/strict.conf"
{ cat "$CONF"; echo "mx_probes = yes"; echo "enforcing_transports = smtp"; } >"$MINE"
{ cat "$MINE"; echo "probe_ca_file = $W/other-ca.crt"; } >"$STRICT"
explain() { "$CTL" -c "$1" explain --json --auth alice bob@goodmx.test >"$OUT" 2>"$ERR"; }
"$CTL" -c "$STRICT" check --json goodmx.test >"$OUT" 2>"$ERR"
is "check under probe_ca_file = another CA: goodmx unverified, untrusted (check uses probe_ca_file)" \
    '.grade == "unverified" and all(.hosts[0].probes[]; .status == "untrusted")'
[ "$(sqlite3 "$MTS_WORLD_CACHE_DB" "SELECT count(*) FROM tls_probes WHERE host = 'mx.goodmx.test'")" -eq 0 ]
ok "check without --store wrote no probe row" $?
explain "$STRICT"
is "explain under STRICT: goodmx.test does not pass (no row of another trust store was written)" \
    '.[0].verdict != "pass" and .[0].tls != "verified"'
"$CTL" -c "$MINE" check --store --json goodmx.test >"$OUT" 2>"$ERR"
is "check --store under the world's configuration: goodmx good" '.grade == "good"'
explain "$MINE"
is "explain under the world's configuration: goodmx.test passes, tls=verified" \
    '.[0].verdict == "pass" and .[0].tls == "verified"'
"$CTL" -c "$STRICT" check --json goodmx.test >"$OUT" 2>"$ERR"
is "check under another CA again: unverified" '.grade == "unverified"'
[ "$(sqlite3 "$MTS_WORLD_CACHE_DB" "SELECT group_concat(grade) FROM tls_probes WHERE host = 'mx.goodmx.test'")" = "good,good" ]
ok "check with another CA file left the milter's rows as they were (good, good)" $?
explain "$MINE"
is "explain under the world's configuration after it: goodmx.test still passes, tls=verified" \
    '.[0].verdict == "pass" and .[0].tls == "verified"'
"$CTL" -c "$MINE" check --store --timeout 2000 --json goodmx.test >"$OUT" 2>"$ERR"
grep -q "nothing stored" "$ERR"
ok "check --store --timeout other than probe_timeout_ms: nothing stored, said so" $?

# the same rule for the addresses: without probe_allow_networks, nothing on loopback
grep -v '^probe_allow_networks' "$MINE" >"$W/noallow.conf"
b0=$(accepts 127.0.50.2)
"$CTL" -c "$W/noallow.conf" check --json goodmx.test >"$OUT" 2>"$ERR"
is "check without probe_allow_networks: goodmx unknown, its addresses not probed (loopback)" \
    '.grade == "unknown" and .hosts[0].probes == [] and (.hosts[0].not_probed | test("127.0.50.[23] is loopback"))'
[ "$(accepts 127.0.50.2)" -eq "$b0" ]
ok "check without probe_allow_networks: no connection to 127.0.50.2" $?
"$CTL" -c "$W/noallow.conf" probe mx.goodmx.test >"$OUT" 2>"$ERR"
rc=$?
[ "$rc" -eq 3 ] && grep -q "not probed: 127.0.50.[23] is loopback" "$ERR"
ok "probe without probe_allow_networks: exit 3, not probed, says why (got $rc)" $?

# ---- a resolver that strips DNSSEC -----------------------------------------
# check shows DNS results itself; behind a forwarder that clears the DO bit
# they are bogus, and check must say, as lookup does (the same code), that
# the resolver is at fault and how to fix it, not only libunbound's words.
STRIP_ADDR=127.0.10.8
python3 "$HERE/stripdns.py" "$STRIP_ADDR" "$(awk '/^nameserver/ {print $2; exit}' "$MTS_WORLD_RESOLV_CONF")" \
    "$W/stripdns.pid" &
strip_pid=$!
printf 'nameserver %s\n' "$STRIP_ADDR" >"$W/strip-resolv.conf"
sed "s|^resolv_conf = .*|resolv_conf = $W/strip-resolv.conf|" "$CONF" >"$W/strip.conf"
i=0; while [ ! -s "$W/stripdns.pid" ] && [ $i -lt 50 ]; do i=$((i + 1)); sleep 0.1; done
"$CTL" -c "$W/strip.conf" check --json goodmx.test >"$OUT" 2>"$ERR"
rc=$?
exits "stripping resolver: check exits 3 (unknown)" 3
is "stripping resolver: check blames the resolver, with the fix, as lookup does" \
    '.status == "unknown" and (.resolver_problem | test("strips DNSSEC")) and
     (.resolver_problem | test("resolv_conf = none")) and (.resolver_problem | test("'"$STRIP_ADDR"'"))'
"$CTL" -c "$W/strip.conf" lookup --json --no-cache goodmx.test >"$W/strip-lookup.json" 2>/dev/null
[ "$(jq -r .resolver_problem "$OUT")" = "$(jq -r .resolver_problem "$W/strip-lookup.json")" ]
ok "stripping resolver: check and lookup give the same diagnosis" $?
"$CTL" -c "$W/strip.conf" check goodmx.test >"$OUT" 2>&1
[ "$(grep -c '^resolver: .*strips DNSSEC' "$OUT")" -eq 1 ]
r=$?; ok "stripping resolver: check's plain output says so once ($(grep '^resolver:' "$OUT" | head -c 160))" $r
kill "$strip_pid" 2>/dev/null; wait "$strip_pid" 2>/dev/null
check goodmx.test
is "a resolver that passes DNSSEC: check blames nothing on it" \
    '.grade == "good" and .resolver_problem == null and .resolver_health == null'

echo "1..$n"
exit $((fails > 0))
