#!/bin/bash
# test_postfix_dane.sh - DANE's route (issue 17, item 1) under a real Postfix
# configured for DANE: the submitting Postfix with smtp_dns_support_level =
# dnssec (already the harness's) and smtp_tls_security_level = dane, its
# resolver the world's validating unbound (resolv.conf: trust-ad), the
# milter in smtpd_milters with mx_probes = yes and dane_transports = auto
# (postconf -c the submitting Postfix's directory).
#
# Per DANE domain of the test world (tests/world/world.sh, build_dane_domains;
# tests/world/test_dane.sh) the milter's RCPT answer, and Postfix's own
# delivery attempt: what the milter accepts, Postfix reaches over TLS
# (Verified where DANE applies); what it defers, Postfix, with the milter
# off, does not deliver (status=deferred, never a verified connection).
# The world's DANE servers answer STARTTLS and then refuse MAIL: "delivered"
# means the TLS connection Postfix logged, as in test_postfix_probes.sh.
#
# Then the map's route (smtp_tls_policy_maps = the milter's socketmap,
# Postfix still at dane): for stsdaneee.test (MTA-STS enforce, its MX the
# self-signed DANE-EE server) the map answers "secure match=", WebPKI, so
# the milter defers and Postfix with the milter off defers too; at dane
# alone (above) both deliver, DANE-verified.
#
# Then the same Postfix without a dane level (may): the milter learns that
# no transport enforces DANE and defers a DANE domain ("does not enforce
# DANE"); dane_transports = smtp names it again; dane_transports = none
# with Postfix at dane: deferred.
#
# Everything runs in a network namespace of its own (lib.sh). TAP output.
set -u
HERE="$(cd "$(dirname "$0")" && pwd)"
BUILD=${top_builddir:-$(cd "$HERE/../.." && pwd)}
export MTS_E2E_MILTER="$BUILD/milter/mtasts-milter"
E2E_DIR=/tmp/mts-pfd.$$
# shellcheck disable=SC1091
. "$HERE/lib.sh"
e2e_up

MAIL="$E2E_DIR/mail"
OUT="$E2E_DIR/swaks.out"
LOG="$E2E_DIR/milter.log"
PLOG="$E2E_DIR/submit.log"

milter_opts=(
    "rcpt_deadline_ms = 5s"
    "dns_timeout_ms = 2s"
    "mx_probes = yes"
    "probe_timeout_ms = 3s"
    "map_postfix_config = $E2E_DIR/submit"
)
milter_restart() {
    e2e milter-stop "$E2E_DIR" >/dev/null 2>&1
    e2e milter-start "$E2E_DIR" "${milter_opts[@]}" "$@" >/dev/null || bail "the milter did not start"
}
rcpt_only() { submit "$OUT" --to "bob@$1" --quit-after RCPT; }
esc() { printf '%s' "${1//./\\.}"; }
# deferred_unverified DOMAIN HOST: Postfix deferred bob@DOMAIN and never
# made a verified TLS connection to HOST
deferred_unverified() {
    wait_grep 60 "$PLOG" "to=<bob@$(esc "$1")>.*status=deferred" &&
        ! grep -q "Verified TLS connection established to $2\\[" "$PLOG"
}

e2e postconf "$E2E_DIR" submit "smtp_tls_security_level = dane" >/dev/null ||
    bail "postconf smtp_tls_security_level = dane failed"
milter_restart

ok "the milter learnt from postconf that smtp enforces DANE (dnssec + dane)" \
    wait_grep 5 "$LOG" 'transports enforcing DANE \(from postconf\): smtp(,|$)'

# DOMAIN:MX HOST:the milter's answer:what Postfix does (verified: a Verified
# TLS connection; tls: a TLS connection, unauthenticated or by WebPKI;
# none: deferred, never verified)
CASES="daneee.test:mx.daneee.test:accept:verified
daneta.test:mx.daneta.test:accept:verified
danebad.test:mx.danebad.test:defer:none
danefail.test:mx.danefail.test:defer:none
danepkix.test:mx.danepkix.test:accept:tls
daneinsecure.test:mx2.insecure.test:accept:tls
stsdane.test:mx.stsdane.test:accept:verified
stsdanebad.test:mx.stsdanebad.test:defer:none
stsdaneee.test:mx.stsdaneee.test:accept:verified"

# Ask once each (the probes start), wait for every probe, then judge.
while IFS=: read -r d _ _ _; do rcpt_only "$d"; done <<<"$CASES"
while IFS=: read -r _ h _ _; do
    wait_grep 30 "$LOG" "probe $(esc "$h")\\[" >/dev/null || diag "no probe of $h"
done <<<"$CASES"

declare -A REPLY RESULT
while IFS=: read -r d h want _; do
    rcpt_only "$d"
    REPLY[$d]=$(rcpt_reply "$OUT")
    if [ "$want" = accept ]; then
        ok "$d: the milter accepts at RCPT (250)" rcpt_is "$OUT" 250 || diag_file "$OUT"
    else
        ok "$d: the milter defers at RCPT (450 4.7.5) naming $h and DANE" \
            grep -Eq "^<\\*\\* +450 4\\.7\\.5 MTA-STS: $(esc "$d") .*$(esc "$h"): DANE" "$OUT" ||
            diag_file "$OUT"
    fi
done <<<"$CASES"

# What the milter accepts is delivered: Postfix (level dane) reaches the MX
# over TLS, verified by DANE where the host has usable TLSA records.
while IFS=: read -r d h want how; do
    [ "$want" = accept ] || continue
    tok=$(token)
    submit "$OUT" --to "bob@$d" --header "Subject: $tok" --body "$tok"
    ok "$d: accepted with its message (250 queued)" grep -Eq '^<- +250 .*queued' "$OUT" ||
        diag_file "$OUT"
    if [ "$how" = verified ]; then
        ok "$d: Postfix reached $h over DANE-verified TLS" \
            wait_grep 30 "$PLOG" "Verified TLS connection established to $(esc "$h")\\["
    else
        ok "$d: Postfix reached $h over TLS" \
            wait_grep 30 "$PLOG" "(Anonymous|Untrusted|Trusted|Verified) TLS connection established to $(esc "$h")\\["
    fi
    RESULT[$d]=$(grep -Eo "[A-Za-z]+ TLS connection established to $(esc "$h")" "$PLOG" | tail -n1)
done <<<"$CASES"

# What the milter defers, Postfix would not have delivered: the same message
# with the milter off is deferred by Postfix itself, never over verified TLS.
e2e milters "$E2E_DIR" off >/dev/null || bail "e2e.sh milters off failed"
while IFS=: read -r d h want _; do
    [ "$want" = defer ] || continue
    tok=$(token)
    submit "$OUT" --to "bob@$d" --header "Subject: $tok" --body "$tok"
    ok "$d, milter off: Postfix queues it (250)" grep -Eq '^<- +250 .*queued' "$OUT" ||
        diag_file "$OUT"
    ok "$d, milter off: Postfix defers it itself (status=deferred), never verified" \
        deferred_unverified "$d" "$h"
    RESULT[$d]=$(grep -E "to=<bob@$(esc "$d")>.*status=deferred" "$PLOG" | tail -n1 |
        sed -E 's/.*status=deferred/deferred/' | cut -c1-110)
done <<<"$CASES"
e2e milters "$E2E_DIR" on >/dev/null || bail "e2e.sh milters on failed"

ok "Postfix's resolver validates: no \"DNSSEC validation may be unavailable\"" \
    sh -c "! grep -q 'DNSSEC validation may be unavailable' '$PLOG'"

diag "DANE case | the milter's RCPT answer | Postfix (smtp_tls_security_level = dane)"
while IFS=: read -r d _ _ _; do
    diag "$d | ${REPLY[$d]} | ${RESULT[$d]:-}"
done <<<"$CASES"

# ---- the map's route: Postfix at dane asks the milter's policy map first,
# which answers "secure match=..." for an MTA-STS enforce domain: WebPKI
# replaces DANE there. stsdaneee.test (enforce, its MX the self-signed
# DANE-EE server): DANE verifies it, WebPKI does not, so the milter defers
# (certificate-not-trusted, DANE-verified) and Postfix with the milter off
# defers it too (never a verified connection). stsdane.test (DANE on a
# WebPKI-valid certificate) is accepted and delivered by WebPKI.
MAP="$E2E_DIR/map.sock"
e2e postconf "$E2E_DIR" submit "smtp_tls_policy_maps = socketmap:unix:$MAP:postfix" >/dev/null ||
    bail "postconf smtp_tls_policy_maps failed"
milter_restart "map_socket = unix:$MAP"
[ -S "$MAP" ] || bail "no map socket $MAP"
chmod 0666 "$MAP"
ok "map route: the milter learnt that smtp enforces MTA-STS through its map" \
    wait_grep 5 "$LOG" 'transports enforcing MTA-STS through the policy map \(from postconf\): (.*, )?smtp(,|$)' ||
    diag_file "$LOG"
rcpt_only stsdaneee.test
wait_grep 30 "$LOG" "probe mx\.stsdaneee\.test\[" >/dev/null || diag "no probe of mx.stsdaneee.test"
rcpt_only stsdaneee.test
ok "map route: stsdaneee.test (DANE-verified, not WebPKI-valid): the milter defers (450 4.7.5 certificate-not-trusted)" \
    grep -Eq '^<\*\* +450 4\.7\.5 MTA-STS: stsdaneee\.test .*mx\.stsdaneee\.test: certificate-not-trusted \(DANE-verified' "$OUT" ||
    diag_file "$OUT"
MAPREPLY=$(rcpt_reply "$OUT")
rcpt_only stsdane.test
wait_grep 30 "$LOG" "probe mx\.stsdane\.test\[" >/dev/null
rcpt_only stsdane.test
ok "map route: stsdane.test (DANE and WebPKI-valid): the milter accepts (250)" rcpt_is "$OUT" 250 ||
    diag_file "$OUT"
e2e milters "$E2E_DIR" off >/dev/null || bail "e2e.sh milters off failed"
tok=$(token)
submit "$OUT" --to "bob@stsdaneee.test" --header "Subject: $tok" --body "$tok"
ok "map route, milter off: Postfix queues bob@stsdaneee.test (250)" grep -Eq '^<- +250 .*queued' "$OUT" ||
    diag_file "$OUT"
# Its own queue id: the earlier deliveries there (dane) were deferred too,
# by the server refusing MAIL after a verified TLS session.
qid=$(sed -n 's/^<- *250 2.0.0 Ok: queued as \([0-9A-F]*\).*/\1/p' "$OUT" | tail -n1)
ok "map route, milter off: Postfix defers stsdaneee.test itself over the certificate (secure match=: WebPKI)" \
    wait_grep 60 "$PLOG" "${qid:-NOQUEUE}: to=<bob@stsdaneee\.test>.*status=deferred \(.*([Cc]ertificate|TLS)" ||
    diag "$(grep -E "${qid:-NOQUEUE}: to=" "$PLOG" | tail -n2)"
diag "map route | stsdaneee.test | milter: $MAPREPLY | Postfix: $(grep -E "${qid:-NOQUEUE}: to=<bob@stsdaneee\.test>.*status=deferred" "$PLOG" | tail -n1 | sed -E 's/.*status=deferred/deferred/' | cut -c1-110)"
e2e milters "$E2E_DIR" on >/dev/null || bail "e2e.sh milters on failed"
e2e postconf "$E2E_DIR" submit "smtp_tls_policy_maps = texthash:$E2E_DIR/submit/tls_policy" >/dev/null ||
    bail "postconf smtp_tls_policy_maps (back) failed"

# ---- the same Postfix without a dane level: no route enforces DANE
e2e postconf "$E2E_DIR" submit "smtp_tls_security_level = may" >/dev/null ||
    bail "postconf smtp_tls_security_level = may failed"
milter_restart
ok "smtp_tls_security_level = may: the milter learnt that no transport enforces DANE" \
    wait_grep 5 "$LOG" 'transports enforcing DANE \(from postconf\): none'
rcpt_only daneee.test
ok "daneee.test, Postfix at may: 450 4.7.5 'the route smtp: does not enforce DANE'" \
    grep -Eq '^<\*\* +450 4\.7\.5 MTA-STS: daneee\.test has DANE \(TLSA records\) and the route smtp:[^ ]* does not enforce DANE' "$OUT" ||
    diag_file "$OUT"
diag "daneee.test, Postfix at may: $(rcpt_reply "$OUT")"
rcpt_only stsdane.test
ok "stsdane.test (MTA-STS enforce, no MTA-STS route), Postfix at may: 450 4.7.5, the route enforces neither" \
    grep -Eq '^<\*\* +450 4\.7\.5 MTA-STS: stsdane\.test .*does not enforce it nor DANE' "$OUT" ||
    diag_file "$OUT"
rcpt_only danepkix.test
ok "danepkix.test (no usable TLSA), Postfix at may: still accepted (250)" \
    rcpt_is "$OUT" 250 || diag_file "$OUT"

milter_restart "dane_transports = smtp"
ok "dane_transports = smtp: logged as the transports enforcing DANE" \
    wait_grep 5 "$LOG" 'transports enforcing DANE: smtp$'
rcpt_only daneee.test
ok "daneee.test, dane_transports = smtp: accepted (250)" rcpt_is "$OUT" 250 ||
    diag_file "$OUT"

e2e postconf "$E2E_DIR" submit "smtp_tls_security_level = dane" >/dev/null ||
    bail "postconf smtp_tls_security_level = dane failed"
milter_restart "dane_transports = none"
rcpt_only daneee.test
ok "daneee.test, Postfix at dane but dane_transports = none: 450 4.7.5 does not enforce DANE" \
    grep -Eq '^<\*\* +450 4\.7\.5 .*does not enforce DANE' "$OUT" || diag_file "$OUT"

finish
