#!/bin/bash
# test_postfix_map.sh - the milter AND its policy map under a real Postfix,
# wired as etc/postfix-main.cf ships them: smtpd_milters is the milter,
# smtp_tls_policy_maps is socketmap:unix:DIR/map.sock:postfix from the same
# daemon, and NO enforcing_transports. The milter learns from postconf that
# the smtp transports enforce through its map, so enforce domains pass at
# RCPT and Postfix delivers them over verified TLS; what cannot be delivered
# under the policy is deferred by Postfix's smtp client even when the milter
# only tags (dry run). mtasts-ctl map agrees with what Postfix did.
set -u
HERE="$(cd "$(dirname "$0")" && pwd)"
BUILD=${top_builddir:-$(cd "$HERE/../.." && pwd)}
export MTS_E2E_MILTER="$BUILD/milter/mtasts-milter"
CTL="$BUILD/milter/mtasts-ctl"
E2E_DIR=/tmp/mts-pm.$$
# shellcheck disable=SC1091
. "$HERE/lib.sh"
e2e_up

MAP="$E2E_DIR/map.sock"
LOG="$E2E_DIR/submit.log"
MAIL="$E2E_DIR/mail"
OUT="$E2E_DIR/swaks.out"
MILTER_OPTS=(
    "map_socket = unix:$MAP"
    "map_postfix_config = $E2E_DIR/submit"
    "rcpt_deadline_ms = 3s"
    "fetch_connect_timeout_ms = 10s"
    "fetch_timeout_ms = 10s"
    "dns_timeout_ms = 2s"
)
# start_milter [LINE...]: the milter with the map, plus LINEs; Postfix's
# smtp(8) runs as user postfix and must reach the map socket.
start_milter() {
    e2e milter-stop "$E2E_DIR" >/dev/null
    e2e milter-start "$E2E_DIR" "${MILTER_OPTS[@]}" "$@" >/dev/null || bail "the milter did not start"
    [ -S "$MAP" ] || bail "no map socket $MAP"
    chmod 0666 "$MAP"
}
# The submitting Postfix asks the milter's map (main.cf, as shipped).
e2e postconf "$E2E_DIR" submit "smtp_tls_policy_maps = socketmap:unix:$MAP:postfix" ||
    bail "postconf failed"
start_milter

delivered() { wait_grep 20 "$1" "$2"; }
# received_tls FILE TOKEN: the MX's Received header of the message says TLS
received_tls() {
    message_of "$1" "$2" | grep -A3 '^Received: from submit.e2e.test' | grep -q '(using TLSv1\.[23]'
}
# queue_id: the submitting Postfix's queue id for the last message (swaks' 250)
queue_id() { sed -n 's/^<- *250 2.0.0 Ok: queued as \([0-9A-F]*\).*/\1/p' "$OUT" | tail -n1; }
# both TEXT RE1 RE2: TEXT has a line matching RE1 and one matching RE2
both() { grep -q -- "$2" <<<"$1" && grep -q -- "$3" <<<"$1"; }
ctl_map() { ns "$CTL" -c "$E2E_DIR/milter.conf" map "$1" 2>/dev/null; }

# ---- the milter learnt its route from postconf --------------------------------
ok "the milter logged the transports that enforce through its map (smtp among them)" \
    wait_grep 5 "$E2E_DIR/milter.log" \
    'transports enforcing MTA-STS through the policy map \(from postconf\): (.*, )?smtp(,|$)' ||
    diag_file "$E2E_DIR/milter.log"
ok "... and the master.cf clone mtasts, which uses the same map" \
    grep -Eq 'through the policy map \(from postconf\): .*mtasts' "$E2E_DIR/milter.log"
ok "no enforcing_transports in the milter's configuration" \
    sh -c "! grep -q '^enforcing_transports' '$E2E_DIR/milter.conf'"

# ---- enforce.test: accepted, tagged pass, delivered over verified TLS ----------
tok=$(token)
submit "$OUT" --to bob@enforce.test --header "Subject: $tok" --body "$tok"
ok "enforce.test: accepted at RCPT (250), not deferred" grep -Eq '^<- +250 2\.0\.0 Ok: queued' "$OUT" ||
    diag_file "$OUT"
qid=$(queue_id)
ok "enforce.test: delivered to the world's MX" delivered "$MAIL/enforce.test" "$tok"
want='MTA-STS-Status: domain=enforce.test; status=enforce; id=20240101T000000; requirement=mta-sts; verdict=pass; action=tag'
ok "enforce.test: tagged verdict=pass" tag_is "$MAIL/enforce.test" "$tok" "$want"
ok "enforce.test: Postfix asked the map and verified the MX certificate" \
    grep -Eq "smtp\[[0-9]+\]: Verified TLS connection established to mx1\.enforce\.test" "$LOG"
ok "enforce.test: Postfix's smtp client sent it (status=sent, queue id $qid)" \
    grep -Eq "$qid: to=<bob@enforce\.test>, relay=mx1\.enforce\.test\[127\.0\.30\.1\]:25.*status=sent" "$LOG"
ok "enforce.test: the receiving MX got it over TLS (its Received header)" received_tls \
    "$MAIL/enforce.test" "$tok"
ok "enforce.test: the MX logged the TLS session from the submitting Postfix" \
    grep -Eq 'TLS connection established from .*\[127\.0\.40\.1\]' "$E2E_DIR/mx.log"
got=$(ctl_map enforce.test)
ok "enforce.test: mtasts-ctl map says OK secure match=... (what Postfix enforced)" \
    grep -Eq '^OK secure match=[^ ]*mx1\.enforce\.test[^ ]* servername=hostname$' <<<"$got" ||
    diag "mtasts-ctl map: $got"

got=$(ns "$CTL" -c "$E2E_DIR/milter.conf" explain --from alice@e2e.test --auth alice@e2e.test \
    --mailer smtp --host enforce.test bob@enforce.test 2>&1)
ok "enforce.test: mtasts-ctl explain learns the route as the milter does (tag, verdict pass)" \
    both "$got" '^bob@enforce.test: tag' 'verdict pass' ||
    diag "$got"

# ---- a route through a relay does not enforce: the milter defers at RCPT --------
printf 'enforce.test\tsmtp:[127.0.30.1]\n' >"$E2E_DIR/submit/transport"
ns postfix -c "$E2E_DIR/submit" reload >/dev/null 2>&1
sleep 1
submit "$OUT" --to bob@enforce.test --quit-after RCPT
ok "enforce.test through a relay (smtp:[127.0.30.1]): deferred at RCPT (the map would be asked about the relay)" \
    grep -Eq '^<\*\* +450 4\.7\.5 MTA-STS: enforce\.test requires MTA-STS \(enforce\) and the route smtp:\[127\.0\.30\.1\] does not enforce it' "$OUT" ||
    diag_file "$OUT"
: >"$E2E_DIR/submit/transport"
ns postfix -c "$E2E_DIR/submit" reload >/dev/null 2>&1
sleep 1

# ---- testing.test: no enforcement asked, delivered (TLS may) --------------------
tok=$(token)
submit "$OUT" --to bob@testing.test --header "Subject: $tok" --body "$tok"
ok "testing.test: accepted and delivered" delivered "$MAIL/testing.test" "$tok"
got=$(ctl_map testing.test)
ok "testing.test: mtasts-ctl map says NOTFOUND" [ "$got" = "NOTFOUND " ]

# ---- the map enforces on its own: the milter in dry run --------------------------
start_milter "dry_run = yes"
# mxmismatch.test: its MX matches none of its policy's mx patterns
tok=$(token)
submit "$OUT" --to bob@mxmismatch.test --header "Subject: $tok" --body "$tok"
ok "dry run: mxmismatch.test accepted at RCPT (the milter only tags)" \
    grep -Eq '^<- +250 2\.0\.0 Ok: queued' "$OUT" || diag_file "$OUT"
qid=$(queue_id)
ok "dry run: mxmismatch.test deferred by Postfix's smtp client (status=deferred, TLS policy lookup)" \
    wait_grep 20 "$LOG" "$qid: to=<bob@mxmismatch\.test>.*status=deferred.*(TLS|policy)"
ok "dry run: mxmismatch.test: Postfix says why (the map's TEMP reason)" \
    grep -Eq 'no MX host of mxmismatch\.test matches its MTA-STS policy' "$LOG"
mx_settled
ok "dry run: mxmismatch.test never reached an MX" \
    sh -c "! grep -q '$tok' '$MAIL/mxmismatch.test' 2>/dev/null"
got=$(ns "$CTL" -c "$E2E_DIR/milter.conf" map mxmismatch.test 2>/dev/null)
crc=$?
ok "dry run: mtasts-ctl map mxmismatch.test says TEMP (exit 3), as Postfix did" \
    both "$got$([ $crc -eq 3 ] && printf '\nexit 3')" '^TEMP no MX host of mxmismatch.test matches' '^exit 3$' ||
    diag "mtasts-ctl map: rc=$crc $got"
got=$(ns "$CTL" -c "$E2E_DIR/milter.conf" explain --from alice@e2e.test --auth alice@e2e.test \
    --mailer smtp --host mxmismatch.test bob@mxmismatch.test 2>&1)
ok "dry run: mtasts-ctl explain: reject, not applied, verdict fail" \
    both "$got" '^bob@mxmismatch.test: reject (dry run: not applied)' 'verdict fail' || diag "$got"

# wrongnamemx.test: the MX matches the policy but its certificate names
# another host: the map says secure, the milter (no probes) passes it, and
# Postfix refuses to deliver without a verified certificate.
tok=$(token)
submit "$OUT" --to bob@wrongnamemx.test --header "Subject: $tok" --body "$tok"
ok "wrongnamemx.test: accepted at RCPT" grep -Eq '^<- +250 2\.0\.0 Ok: queued' "$OUT"
qid=$(queue_id)
ok "wrongnamemx.test: deferred by Postfix's smtp client (certificate not verified)" \
    wait_grep 20 "$LOG" "$qid: to=<bob@wrongnamemx\.test>.*status=deferred"
got=$(ctl_map wrongnamemx.test)
ok "wrongnamemx.test: mtasts-ctl map says secure match=mx.wrongnamemx.test" \
    [ "$got" = "OK secure match=mx.wrongnamemx.test servername=hostname" ] || diag "mtasts-ctl map: $got"

# ---- map_unknown: stsservfail.test's _mta-sts SERVFAILs, its MX works -------------
# The milter runs dry (it only tags), so what happens is the map's doing.
# Postfix is reloaded between settings: its smtp processes cache TLS policies.
pf_reload() { ns postfix -c "$E2E_DIR/submit" reload >/dev/null 2>&1; sleep 1; }
pf_reload
tok=$(token)
submit "$OUT" --to bob@stsservfail.test --header "Subject: $tok" --body "$tok"
qid=$(queue_id)
ok "map_unknown = temp (default): stsservfail.test deferred by Postfix's smtp client" \
    wait_grep 20 "$LOG" "$qid: to=<bob@stsservfail\.test>.*status=deferred"
ok "map_unknown = temp: Postfix says why (the map's TEMP reason)" \
    grep -q 'MTA-STS status of stsservfail.test unknown' "$LOG"
diag "Postfix: $(grep -m1 'MTA-STS status of stsservfail.test unknown' "$LOG" | sed 's/.*\]: //')"
mx_settled
ok "map_unknown = temp: stsservfail.test never reached the MX" \
    sh -c "! grep -q '$tok' '$MAIL/stsservfail.test' 2>/dev/null"
diag "Postfix: $(grep -E "$qid: to=<bob@stsservfail" "$LOG" | tail -n1 | sed 's/.*: to=/to=/')"

start_milter "dry_run = yes" "map_unknown = notfound"
pf_reload
tok=$(token)
submit "$OUT" --to bob@stsservfail.test --header "Subject: $tok" --body "$tok"
qid=$(queue_id)
ok "map_unknown = notfound: stsservfail.test delivered (RFC 8461 §3.3: as without a policy)" \
    delivered "$MAIL/stsservfail.test" "$tok"
ok "map_unknown = notfound: Postfix's smtp client sent it (status=sent, queue id $qid)" \
    grep -Eq "$qid: to=<bob@stsservfail\.test>, relay=mx1\.stsservfail\.test.*status=sent" "$LOG"
diag "Postfix: $(grep -E "$qid: to=<bob@stsservfail" "$LOG" | tail -n1 | sed 's/.*: to=/to=/')"
ok "map_unknown = notfound: the milter logged the NOTFOUND for an unknown status" \
    grep -q 'map: postfix stsservfail.test (unknown: .*): NOTFOUND (map_unknown)' "$E2E_DIR/milter.log"

start_milter "dry_run = yes" "map_unknown = notfound" "map_unknown_except = stsservfail.test"
pf_reload
tok=$(token)
submit "$OUT" --to bob@stsservfail.test --header "Subject: $tok" --body "$tok"
qid=$(queue_id)
ok "map_unknown = notfound, map_unknown_except = stsservfail.test: deferred again (TEMP)" \
    wait_grep 20 "$LOG" "$qid: to=<bob@stsservfail\.test>.*status=deferred"
mx_settled
ok "... and it never reached the MX" sh -c "! grep -q '$tok' '$MAIL/stsservfail.test' 2>/dev/null"
diag "Postfix: $(grep -E "$qid: to=<bob@stsservfail" "$LOG" | tail -n1 | sed 's/.*: to=/to=/')"
start_milter "dry_run = yes"

# ---- REQUIRETLS: Debian 12's Postfix (3.7) refuses the parameter itself ----------
# so the milter never sees it there (Postfix 3.11 and later pass it); the
# milter's REQUIRETLS is tested with the harness and miltertest.
got=$(ns python3 - <<'PY' 2>&1
import smtplib
s = smtplib.SMTP("127.0.40.1", 587, timeout=20)
s.ehlo("client.e2e.test")
s.login("alice@e2e.test", "secret")
code, text = s.mail("alice@e2e.test", ["REQUIRETLS"])
print(code, text.decode())
s.quit()
PY
)
ok "REQUIRETLS: this Postfix ($(postconf -d -h mail_version 2>/dev/null)) refuses MAIL FROM ... REQUIRETLS itself" \
    grep -Eq '^555 5\.5\.4 Unsupported option: REQUIRETLS' <<<"$got" || diag "$got"

# ---- a reload learns the route again ---------------------------------------------
MPID=$(cat "$E2E_DIR/milter.pid")
kill -HUP "$MPID"
ok "reload: the transports are learnt again and logged" \
    wait_grep 5 "$E2E_DIR/milter.log" 'configuration reloaded from'
n=$(grep -c 'through the policy map (from postconf)' "$E2E_DIR/milter.log")
ok "reload: logged once more ($n times in all)" [ "$n" -ge 3 ]

if grep -q 'AddressSanitizer\|runtime error\|ThreadSanitizer' "$E2E_DIR/milter.log"; then
    diag_file "$E2E_DIR/milter.log" 40
    fail "no sanitizer report in the milter's log"
else
    pass "no sanitizer report in the milter's log"
fi
finish
