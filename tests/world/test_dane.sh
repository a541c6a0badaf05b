#!/bin/bash
# test_dane.sh - DANE for SMTP (RFC 7672, issue 17 part 1) against the real
# test world: nsd serves TLSA records in the DNSSEC-signed zone test.,
# computed at world-up time from the world's own certificates (world.sh,
# build_dane_domains), and unbound validates them. One milter with
# mx_probes = yes, driven over the milter protocol by probes_client.py:
#   daneee.test      DANE-EE 3 1 1, self-signed, wrong name: accepted, dane=verified
#   daneta.test      DANE-TA 2 1 1, private CA sent by the server: accepted
#   stsdane.test     MTA-STS enforce + matching TLSA: accepted, dane=verified
#   danebad.test     TLSA does not match a WebPKI-valid certificate: 450 naming DANE
#   danefail.test    the TLSA lookup SERVFAILs: the host is unusable, 450
#   stsdanebad.test  MTA-STS enforce, WebPKI passes, TLSA mismatch: 450 (RFC 8461 §2)
#   stsdaneee.test   MTA-STS enforce, its MX the self-signed DANE-EE server:
#                    accepted, the route (smtp) enforcing DANE; its probe row
#                    says DANE verified, WebPKI not (pkix = 0)
#   danepkix.test    only PKIX-usage records: no DANE, accepted, not required
#   daneinsecure.test  TLSA in an unsigned zone: ignored, accepted
# Then mtasts-ctl check --json per domain: the TLSA records, their DNSSEC
# state, the DANE outcome per host, the sender's action and the grade.
#
# Needs root (the test world); skipped otherwise. TAP output.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
BUILD=$(cd "${top_builddir:-$HERE/../..}" && pwd)
MILTER="$BUILD/milter/mtasts-milter"
CTL="$BUILD/milter/mtasts-ctl"
W=${MTS_TEST_WORLD_DIR:-/tmp/mts-test-dane.$$}
PROBE_TIMEOUT_S=3
RCPT_DEADLINE_S=3

if [ "$(id -u)" -ne 0 ]; then
    echo "1..0 # SKIP the test world needs root (DNS on port 53, HTTPS on 443)"
    exit 0
fi
. "$HERE/suite.sh"
suite_enter_netns mts-dane "$@"

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
    [ -n "${MTS_TEST_KEEP:-}" ] || rm -rf "$W"
}
trap cleanup EXIT
"$HERE/world.sh" up "$W" >"$W.up.log" 2>&1 || { sed 's/^/# /' "$W.up.log"; bail "world did not come up"; }
rm -f "$W.up.log"
# shellcheck disable=SC1091
. "$W/env"

{
    grep -v -e '^#' -e '^cache_db' "$MTS_WORLD_CONF"
    echo "cache_db = $W/dane.sqlite"
    echo "enforcing_transports = smtp"
    # A pass DANE decided needs a route that enforces DANE: the harness's
    # route (smtp) stands for a Postfix at dane (test_postfix_dane.sh).
    echo "dane_transports = smtp"
    echo "rcpt_deadline_ms = ${RCPT_DEADLINE_S}s"
    echo "dns_timeout_ms = 2s"
    echo "mx_probes = yes"
    echo "probe_timeout_ms = ${PROBE_TIMEOUT_S}s"
    echo "probe_concurrency = 4"
} >"$W/dane.conf"

suite_milter_start dane MPID

N=0 FAILS=0
client() {
    local line
    while IFS= read -r line; do
        case $line in
            "ok "*) N=$((N + 1)); echo "ok $N - ${line#ok * - }" ;;
            "not ok "*) N=$((N + 1)); FAILS=$((FAILS + 1)); echo "not ok $N - ${line#not ok * - }" ;;
            *) echo "$line" ;;
        esac
    done < <(MT_SOCKET="$W/dane.sock" PROBE_TIMEOUT_S=$PROBE_TIMEOUT_S \
        RCPT_DEADLINE_S=$RCPT_DEADLINE_S python3 "$HERE/probes_client.py" "$1" 2>&1)
}
ok() {
    N=$((N + 1))
    if [ "$2" -eq 0 ]; then echo "ok $N - $1"; else echo "not ok $N - $1"; FAILS=$((FAILS + 1)); fi
}

HOSTS="mx.daneee.test mx.daneta.test mx.danebad.test mx.danefail.test mx.danepkix.test mx2.insecure.test mx.stsdane.test mx.stsdanebad.test mx.stsdaneee.test"
# The first message to each, fresh cache: a host's TLSA records say DANE
# applies before its probe ends, and the RCPT waits for that probe.
client dane-first
# Every host's row is in the cache (written after memory) before the rest.
for ((i = 0; i < 100; i++)); do
    have=$(sqlite3 "$W/dane.sqlite" "SELECT COUNT(DISTINCT host) FROM tls_probes" 2>/dev/null || echo 0)
    [ "${have:-0}" -ge 9 ] && break
    sleep 0.2
done
client dane
row() { sqlite3 "$W/dane.sqlite" "SELECT dane FROM tls_probes WHERE host = '$1'"; }
[ "$(row mx.daneee.test)" = verified ] && [ "$(row mx.daneta.test)" = verified ] &&
    [ "$(row mx.danebad.test)" = failed ] && [ "$(row mx.danefail.test)" = lookup-failed ] &&
    [ "$(row mx.danepkix.test)" = unusable ] && [ "$(row mx2.insecure.test)" = none ]
ok "the cache's probe rows keep the DANE outcome per host (verified, failed, lookup-failed, unusable, none)" $?
pkix() { sqlite3 "$W/dane.sqlite" "SELECT dane, pkix FROM tls_probes WHERE host = '$1'"; }
[ "$(pkix mx.stsdaneee.test)" = "verified|0" ] && [ "$(pkix mx.stsdane.test)" = "verified|1" ] &&
    [ "$(pkix mx.danepkix.test)" = "unusable|1" ]
ok "the probe rows judge WebPKI beside DANE: self-signed DANE-EE pkix=0, DANE on a WebPKI certificate pkix=1" $?
grep -q "probe mx.danebad.test\[127.0.50.32\]:25: unverified: DANE: tlsa-invalid" "$W/dane.log"
ok "the probe log names the DANE failure (tlsa-invalid)" $?
stop_milter
"$CTL" -c "$W/dane.conf" explain --json --auth alice bob@danebad.test bob@daneee.test \
    >"$W/explain.json" 2>&1
jq -e '.[0].action == "defer" and .[0].dane == "failed" and (.[0].reason | test("DANE")) and .[1].verdict == "pass" and .[1].dane == "verified"' \
    "$W/explain.json" >/dev/null
ok "mtasts-ctl explain names DANE: danebad defer dane=failed, daneee pass dane=verified" $?
# Beside DANE, WebPKI's view of the same host (the probe row's pkix):
# danebad's certificate is WebPKI-valid, daneee's self-signed one is not.
jq -e '.[0].pkix == true and .[1].pkix == false' "$W/explain.json" >/dev/null
ok "mtasts-ctl explain shows pkix beside dane: danebad true, daneee false" $?

# ---- mtasts-ctl check ---------------------------------------------------------
# check DOMAIN JQ-EXPR LABEL
check() {
    "$CTL" -c "$W/dane.conf" check --json --timeout 5000 "$1" >"$W/check.$1.json" 2>"$W/check.$1.err"
    jq -e "$2" "$W/check.$1.json" >/dev/null
    ok "check $1: $3" $?
    echo "# check $1: $(jq -c '{grade, sender: .sender.summary, hosts: [.hosts[] | {host, dane, tlsa: .tlsa.dnssec, grade}]}' "$W/check.$1.json" 2>/dev/null)"
}
check daneee.test '.grade == "good" and .sender.action == "deliver" and .hosts[0].dane == "verified" and .hosts[0].tlsa.dnssec == "secure" and (.hosts[0].tlsa.records[0] | .usage == 3 and .selector == 1 and .mtype == 1 and .usable)' \
    "DANE-EE 3 1 1 secure, verified, deliver, grade good"
check daneta.test '.grade == "good" and .sender.action == "deliver" and .hosts[0].dane == "verified" and .hosts[0].probes[0].dane_match == "2 1 1"' \
    "DANE-TA 2 1 1 verified (record 2 1 1), deliver, grade good"
check danebad.test '.grade == "fail" and .sender.action == "defer" and .hosts[0].dane == "failed" and (.sender.summary | test("DANE"))' \
    "TLSA mismatch: DANE failed, defer, grade fail"
check danefail.test '.grade == "fail" and .sender.action == "defer" and .hosts[0].dane == "lookup-failed" and .hosts[0].tlsa.dnssec == "failed" and (.hosts[0].tlsa.why | test("dnssec-invalid"))' \
    "TLSA SERVFAIL: lookup-failed (dnssec-invalid), defer"
check danepkix.test '.sender.action == "not-applicable" and .hosts[0].dane == "unusable" and .hosts[0].tlsa.dnssec == "secure" and ([.hosts[0].tlsa.records[].usable] | all | not)' \
    "only PKIX-usage records: secure but unusable, not applicable"
check daneinsecure.test '.sender.action == "not-applicable" and .hosts[0].dane == "none" and .hosts[0].tlsa.dnssec == "insecure"' \
    "TLSA in an unsigned zone: insecure, no DANE"
check stsdane.test '.grade == "good" and .sender.action == "deliver" and .hosts[0].dane == "verified"' \
    "MTA-STS enforce + matching TLSA: deliver, DANE verified"
check stsdanebad.test '.sender.action == "defer" and .hosts[0].dane == "failed" and .hosts[0].probes[0].dane == "failed"' \
    "MTA-STS enforce, WebPKI passes, TLSA mismatch: defer, DANE failed"
"$CTL" -c "$W/dane.conf" check --timeout 5000 danebad.test >"$W/check.txt" 2>&1
grep -q "  TLSA:   _25._tcp.mx.danebad.test: secure: 3 1 1 " "$W/check.txt" &&
    grep -q "  DANE:   failed (tlsa-invalid" "$W/check.txt"
ok "check danebad.test (text): the TLSA records with their DNSSEC state and the DANE result" $?
grep -q "  DANE:   failed (tlsa-invalid: no record matched); WebPKI-valid: yes" "$W/check.txt" &&
    jq -e '.hosts[0].pkix == false' "$W/check.daneee.test.json" >/dev/null &&
    jq -e '.hosts[0].pkix == true' "$W/check.stsdane.test.json" >/dev/null
ok "check shows WebPKI beside DANE: danebad (text) yes, daneee (JSON) false, stsdane (JSON) true" $?
sed 's/^/# /' "$W/check.txt" | head -30

echo "1..$N"
[ "$FAILS" -eq 0 ]
