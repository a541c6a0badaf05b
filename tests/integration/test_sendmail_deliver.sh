#!/bin/bash
# test_sendmail_deliver.sh - Sendmail delivers under FEATURE(`sts') with the
# milter's policy map: the unpacked Debian 12 sendmail (smlib.sh), its .cf
# from etc/sendmail.mc, the world's CA; in the e2e harness's namespace
# (lib.sh), whose receiving Postfix is every world MX. enforce.test is
# delivered over verified TLS; mxmismatch.test (the map's TEMP) is not; and
# with the system's CAs instead of the world's (so the MX certificate cannot
# be verified) enforce.test is not delivered while testing.test still is.
set -u
HERE="$(cd "$(dirname "$0")" && pwd)"
SRC=$(cd "$HERE/../.." && pwd)
BUILD=${top_builddir:-$SRC}
export MTS_E2E_MILTER="$BUILD/milter/mtasts-milter"
E2E_DIR=/tmp/mts-sd.$$
# shellcheck disable=SC1091
. "$HERE/lib.sh"
# shellcheck source=tests/integration/smlib.sh
. "$HERE/smlib.sh"
[ "$(id -u)" -eq 0 ] && sm_fetch
e2e_up --no-milter
SM_IN="ip netns exec $MTS_E2E_NETNS"
SM="$E2E_DIR/sm"
e2e milter-start "$E2E_DIR" "map_socket = unix:$E2E_DIR/map.sock" >/dev/null ||
    bail "the milter did not start"
sm_cf "$SM" "$E2E_DIR" "define(\`confCACERT', \`$MTS_E2E_CA_FILE')dnl" \
    "define(\`confCACERT_PATH', \`$(dirname "$MTS_E2E_CA_FILE")')dnl"
ok "a .cf with FEATURE(sts) on the milter's map builds from etc/sendmail.mc" \
    grep -qx "Ksts socket -d5 -T<TMPF> unix:$E2E_DIR/map.sock" "$SM/test.cf"

# deliver DOMAIN TOKEN [DIR]: sendmail -v -odi (delivers at once, prints the
# SMTP dialogue in DIR/DOMAIN.out)
deliver() {
    printf 'Subject: %s\n\n%s\n' "$2" "$2" |
        sm "${3:-$SM}" -v -odi -f alice@sm.e2e.test "bob@$1" >"${3:-$SM}/$1.out" 2>&1
}
tok=$(token)
deliver enforce.test "$tok"
ok "enforce.test: Sendmail sent it (250 after the data)" grep -q 'Sent (' "$SM/enforce.test.out" ||
    diag_file "$SM/enforce.test.out" 30
ok "enforce.test: over STARTTLS" grep -q '^>>> STARTTLS' "$SM/enforce.test.out"
ok "enforce.test: the MX has it" wait_grep 10 "$E2E_DIR/mail/enforce.test" "$tok"
ok "enforce.test: its Received header says TLS" sh -c "
    awk -v tok='$tok' '/^From /{m=\"\"} {m = m \$0 \"\\n\"} index(\$0, tok){f=m} END{printf \"%s\", f}' '$E2E_DIR/mail/enforce.test' |
        grep -A3 '^Received: from sm.e2e.test' | grep -q '(using TLSv1\\.[23]'"

tok=$(token)
deliver mxmismatch.test "$tok"
ok "mxmismatch.test: Sendmail defers it (the map's TEMP: 450 4.7.0 STS lookup temp fail)" \
    grep -q 'Deferred: 450 4.7.0 .*STS lookup temp fail' "$SM/mxmismatch.test.out" || diag_file "$SM/mxmismatch.test.out" 30
mx_settled
ok "mxmismatch.test: never reached the MX" sh -c "! grep -q '$tok' '$E2E_DIR/mail/mxmismatch.test' 2>/dev/null"

# ---- the control: an MX certificate Sendmail cannot verify ----------------------
SM2="$E2E_DIR/sm-nocA"
sm_cf "$SM2" "$E2E_DIR" "define(\`confCACERT', \`/etc/ssl/certs/ca-certificates.crt')dnl" \
    "define(\`confCACERT_PATH', \`/etc/ssl/certs')dnl"
tok=$(token)
deliver enforce.test "$tok" "$SM2"
ok "system CAs only: enforce.test deferred after STARTTLS (FEATURE(sts) demands a verified certificate)" \
    sh -c "! grep -q 'Sent (' '$SM2/enforce.test.out' &&
           grep -q 'Deferred: 403 4.7.0 authentication failed' '$SM2/enforce.test.out'" ||
    diag_file "$SM2/enforce.test.out" 30
mx_settled
ok "system CAs only: enforce.test never reached the MX" sh -c "! grep -q '$tok' '$E2E_DIR/mail/enforce.test'"
tok=$(token)
deliver testing.test "$tok" "$SM2"
ok "system CAs only: testing.test (NOTFOUND: nothing enforced) delivered all the same" \
    wait_grep 10 "$E2E_DIR/mail/testing.test" "$tok" || diag_file "$SM2/testing.test.out" 30
finish
