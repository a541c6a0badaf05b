#!/bin/bash
# test_sendmail.sh - mtasts-milter under Sendmail (INPUT_MAIL_FILTER), and
# Sendmail's FEATURE(`sts') asking this daemon's policy map. Debian 12's sendmail-bin (8.17, built with _FFR_MTA_STS) is
# never installed (it conflicts with postfix): its .debs are fetched with
# apt-get download and unpacked with dpkg-deb -x (MTS_SENDMAIL_ROOT, default
# /var/cache/mtasts-test/sendmail; .ci/install-deps fills it). A .cf is built
# from etc/sendmail.mc with the unpacked m4 files; that Sendmail, in address
# test mode (sendmail -bt, "/map sts DOMAIN"), asks the milter's map for the
# test world's domains, and its answers must be the map's (mtasts-ctl map
# --name sts), and FEATURE(sts)'s STS_Check rules read them. Then that
# Sendmail runs as a daemon (-bd, queue only) on 127.0.0.1:2525 with the
# milter: per-recipient answers over SMTP, tags in the queued message, and a
# hold for a non-SMTP (-bs) submission. TAP output; needs root (the world);
# skipped without Sendmail.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/integration/maplib.sh
. "$HERE/maplib.sh"
maplib_init mts-sm
# shellcheck source=tests/integration/smlib.sh
. "$HERE/smlib.sh"
sm_fetch     # outside the namespace: it may download
maplib_netns mts-sm "$@"
maplib_world_up

RUN="$W/run"
MAP="$RUN/map.sock"
CONF="$W/map.conf"
{
    grep -v '^#' "$MTS_WORLD_CONF"
    echo "socket = unix:$RUN/milter.sock"
    echo "map_socket = unix:$MAP"
    echo "map_deadline_ms = 1500"
    echo "map_tlsrpt = yes"
    echo "map_transports = esmtp, smtp"
    echo "act_on = all"
    echo "rcpt_deadline_ms = 3s"
    echo "dns_timeout_ms = 3s"
} >"$CONF"
"$MILTER" -f -c "$CONF" 2>"$W/milter.log" &
MPID=$!
for _ in $(seq 1 100); do [ -S "$MAP" ] && break; sleep 0.1; done
[ -S "$MAP" ] || { sed 's/^/# /' "$W/milter.log"; bail "the map socket did not appear"; }

# ---- the .cf, from etc/sendmail.mc (its socket paths moved into $RUN) ----------
SM="$W/sendmail"
# Sendmail resolves recipients through the world's DNS, as in production: it
# then passes {rcpt_host} fully qualified ("enforce.test.").
SM_RESOLV=$MTS_WORLD_RESOLV_CONF
sm_cf "$SM" "$RUN" "DAEMON_OPTIONS(\`Port=2525, Addr=127.0.0.1, Name=MTA')dnl"
ok "a .cf builds from etc/sendmail.mc with Debian's sendmail-cf m4 files" $?
cf_ok() {
    grep -qx "Ksts socket -d5 -T<TMPF> unix:$MAP" "$SM/test.cf" &&
        grep -qx 'O StrictTransportSecurity=true' "$SM/test.cf" &&
        grep -q "^Xmtasts-milter, S=unix:$RUN/milter.sock" "$SM/test.cf"
}
if cf_ok; then r=0; else r=1; grep -n '^Ksts\|^O Strict\|^Xmtasts' "$SM/test.cf" | sed 's/^/# /'; fi
ok "the .cf has FEATURE(sts) on the map's socket and the milter" $r
strings "$SENDMAIL" | grep -q _FFR_MTA_STS
ok "the unpacked sendmail is built with _FFR_MTA_STS" $?

# ---- Sendmail resolves through the world's DNS -----------------------------------
echo "/parse bob@enforce.test" | sm "$SM" -bt >"$SM/parse.out" 2>&1
grep -q 'mailer esmtp, host enforce\.test\., user bob@enforce\.test' "$SM/parse.out" ||
    sed 's/^/#   /' "$SM/parse.out"
grep -q 'mailer esmtp, host enforce\.test\., user bob@enforce\.test' "$SM/parse.out"
ok "Sendmail resolves bob@enforce.test through DNS to mailer esmtp, host enforce.test. (fully qualified)" $?

# ---- Sendmail asks the map ------------------------------------------------------
DOMAINS="enforce.test ENFORCE.Test cname.test insecure.test testing.test none.test nxdomain.test badtxt.test servfail.test mxmismatch.test"
for d in $DOMAINS; do echo "/map sts $d"; done >"$SM/bt.in"
sm "$SM" -bt <"$SM/bt.in" >"$SM/bt.out" 2>&1
ok "sendmail -bt ran (exit $?)" $?
sed 's/^/#   /' "$SM/bt.out"

echo
# want DOMAIN: what Sendmail must print for it, from the map's own answer
want() {
    local ans rc
    ans=$("$CTL" -c "$CONF" map --name sts "$(tr '[:upper:]' '[:lower:]' <<<"$1")" 2>/dev/null)
    rc=$?
    case "$rc:$ans" in
        0:OK\ *) echo "map_lookup: sts ($1) returns ${ans#OK } (0)" ;;
        1:NOTFOUND*) echo "map_lookup: sts ($1) no match (68)" ;;
        3:TEMP*) echo "map_lookup: sts ($1) no match (75)" ;;
        *) echo "unexpected: $rc $ans" ;;
    esac
}
for d in $DOMAINS; do
    w=$(want "$d")
    grep -qxF -- "$w" <(sed 's/^> //' "$SM/bt.out") || echo "# want: $w"
    ok "Sendmail's map lookup for $d: ${w#*) }" $?
done
grep -Eq '^(> )?map_lookup: sts \(enforce\.test\) returns secure match=[^ ]+ servername=hostname \(0\)$' "$SM/bt.out"
ok "enforce.test: secure match=<MX names> servername=hostname, as FEATURE(sts) parses it" $?
! grep -q 'policy_type' "$SM/bt.out"
ok "map_tlsrpt = yes: no TLSRPT attributes for the name sts" $?
! grep -q 'unsafe' "$SM/bt.out"
ok "Sendmail found the socket safe" $?

# ---- FEATURE(sts)'s own rules read the answer: STS_Check per recipient ---------
# (what Sendmail runs in tls_rcpt once connected: {server_name} is the MX it
# reached, {cert_altnames} the names of its certificate)
cat >"$SM/check.in" <<'EOF'
.D{rcpt_addr}bob@enforce.test
.D{server_name}mx1.enforce.test
STS_Check bob@enforce.test
.C{cert_altnames}mx1.enforce.test
STS_Check bob@enforce.test
.D{server_name}backup.mx.enforce.test
.C{cert_altnames}backup.mx.enforce.test
STS_Check bob@enforce.test
.D{server_name}mx9.evil.test
.C{cert_altnames}mx9.evil.test
STS_Check bob@enforce.test
.D{rcpt_addr}bob@mxmismatch.test
STS_Check bob@mxmismatch.test
.D{rcpt_addr}bob@testing.test
STS_Check bob@testing.test
EOF
sm "$SM" -bt <"$SM/check.in" >"$SM/check.out" 2>&1
sed -n 's/^.*STS_Check  *returns: //p' "$SM/check.out" >"$SM/check.got"
check_got() {
    sed -n "${1}p" "$SM/check.got" | grep -q -- "$2" ||
        { echo "# STS_Check answer $1: $(sed -n "${1}p" "$SM/check.got")"; false; }
}
check_got 1 '450 mx1 \. enforce \. test not listed in SANs'
ok "STS_Check enforce.test, MX mx1.enforce.test, certificate without its name: 450 not listed in SANs" $?
check_got 2 '^ok$'
ok "STS_Check enforce.test, MX mx1.enforce.test with its certificate: ok" $?
check_got 3 '^ok$'
ok "STS_Check enforce.test, MX backup.mx.enforce.test (policy *.mx.enforce.test, in the map's match=): ok" $?
check_got 4 '450 mx9 \. evil \. test not found in'
ok "STS_Check enforce.test, MX mx9.evil.test (valid certificate, not in the policy): 450 not found" $?
check_got 5 '450 STS lookup temp fail'
ok "STS_Check mxmismatch.test (the map's TEMP): 450 STS lookup temp fail" $?
check_got 6 '^ok$'
ok "STS_Check testing.test (NOTFOUND): ok, nothing enforced" $?

# ---- the milter under Sendmail: SMTP on 127.0.0.1:2525 --------------------------
sm "$SM" -odq -bd >"$SM/daemon.out" 2>&1
for _ in $(seq 1 50); do
    [ -s "$SM/sendmail.pid" ] && (exec 3<>/dev/tcp/127.0.0.1/2525) 2>/dev/null && break
    sleep 0.1
done
SMPID=$(head -n1 "$SM/sendmail.pid" 2>/dev/null)
MAPLIB_PIDS=$SMPID
[ -n "$SMPID" ] && kill -0 "$SMPID"
ok "sendmail -bd runs (pid $SMPID) with INPUT_MAIL_FILTER(mtasts-milter)" $?
python3 - >"$SM/smtp.out" 2>&1 <<'PY'
import smtplib
s = smtplib.SMTP("127.0.0.1", 2525, timeout=30)
s.ehlo("client.test")
s.mail("alice@sm.e2e.test")
for r in ["bob@enforce.test", "bob@mxmismatch.test", "bob@testing.test", "bob@servfail.test"]:
    code, text = s.rcpt(r)
    print("RCPT %s %d %s" % (r, code, text.decode()))
code, text = s.data("Subject: sendmail smtp test\r\n\r\nbody\r\n")
print("DATA %d %s" % (code, text.decode()))
s.quit()
PY
sed 's/^/#   /' "$SM/smtp.out"
grep -q '^RCPT bob@enforce.test 250 ' "$SM/smtp.out"
ok "SMTP: enforce.test accepted (esmtp enforces through the map: map_transports; {rcpt_host} enforce.test. is its next hop)" $?
grep -q '^RCPT bob@mxmismatch.test 550 5.7.5 .*MTA-STS: mxmismatch.test requires MTA-STS' "$SM/smtp.out"
ok "SMTP: mxmismatch.test refused per recipient with 550 5.7.5 and the reason" $?
grep -q '^RCPT bob@servfail.test 450 4.7.5 .*MTA-STS: MTA-STS status of servfail.test could not be determined' "$SM/smtp.out"
ok "SMTP: servfail.test deferred per recipient with 450 4.7.5" $?
grep -q '^RCPT bob@testing.test 250 ' "$SM/smtp.out" && grep -q '^DATA 250 ' "$SM/smtp.out"
ok "SMTP: testing.test accepted, the message queued" $?
qf=$(grep -l '^H??Subject: sendmail smtp test' "$SM"/queue/qf* 2>/dev/null | head -n1)
grep -a '^H??MTA-STS-Status:' "${qf:-/dev/null}" >"$SM/smtp.tags"
printf '%s\n' \
    'H??MTA-STS-Status: domain=enforce.test; status=enforce; id=20240101T000000; requirement=mta-sts; verdict=pass; action=tag' \
    'H??MTA-STS-Status: domain=testing.test; status=testing; id=20240101000000; requirement=mta-sts; verdict=not-required; action=tag' |
    cmp -s - "$SM/smtp.tags" || sed 's/^/# tags: /' "$SM/smtp.tags"
ok "SMTP: the queued message has one tag per accepted domain (enforce.test pass, testing.test)" $?
python3 - "$SM/bs.out" "$SENDMAIL" "$SM/test.cf" <<'PY'
import subprocess, sys
out, sendmail, cf = sys.argv[1:4]
p = subprocess.Popen(["unshare", "--uts", "sh", "-c", 'hostname sm.e2e.test && exec "$@"', "sh",
                      sendmail, "-C", cf, "-odq", "-bs"],
                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
log = open(out, "w")
def reply():
    while True:
        l = p.stdout.readline()
        log.write("<- " + l)
        if not l or (len(l) >= 4 and l[3] == " "):
            return l
def send(line):
    log.write("-> " + line + "\n")
    p.stdin.write(line + "\r\n")
    p.stdin.flush()
    return reply()
reply()
for c in ["EHLO client.test", "MAIL FROM:<alice@sm.e2e.test>", "RCPT TO:<bob@enforce.test>",
          "RCPT TO:<bob@mxmismatch.test>", "DATA"]:
    send(c)
p.stdin.write("Subject: sendmail bs test\r\n\r\nbody\r\n")
send(".")
send("QUIT")
p.wait()
PY
hf=$(grep -l '^H??Subject: sendmail bs test' "$SM"/queue/hf* 2>/dev/null | head -n1)
if [ -n "$hf" ] && grep -aq '^qMTA-STS: mxmismatch.test: mxmismatch.test requires MTA-STS' "$hf"; then
    r=0
else
    r=1
    sed 's/^/#   /' "$SM/bs.out"
fi
ok "non-SMTP (sendmail -bs): the message is quarantined (hf file) with the reason" $r
grep -aq '^H??MTA-STS-Status: domain=mxmismatch.test; .*verdict=fail; action=hold$' "${hf:-/dev/null}"
ok "non-SMTP: its tag says verdict=fail, action=hold" $?
kill "$SMPID" 2>/dev/null
MAPLIB_PIDS=

kill "$MPID"
wait "$MPID"
mrc=$?
MPID=
[ "$mrc" -eq 0 ] || echo "# milter exit $mrc"
ok "the milter stops cleanly" "$mrc"
if grep -q 'AddressSanitizer\|runtime error\|ThreadSanitizer' "$W/milter.log"; then
    sed 's/^/# /' "$W/milter.log" | head -40
    false
fi
ok "no sanitizer report in the milter's log" $?
echo "1..$n"
[ "$fails" -eq 0 ]
