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
# Postfix at may): the map answers "dane-only" for the domains DANE decides
# at every MX host (danemap.h), and Postfix delivers those over DANE or
# defers them itself, as the milter judges them; the others keep their
# answer (NOTFOUND here).
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

# ---- the map's route: Postfix at smtp_tls_security_level = may asks the
# milter's policy map (danemap.h): a domain whose MX RRset is DNSSEC-secure
# and every one of whose MX hosts DANE decides (usable TLSA records, or a
# failed TLSA lookup; for an enforce policy every host matching it) is
# answered "dane-only", so Postfix itself requires DANE there: daneee.test
# and stsdaneee.test (self-signed, DANE-EE; for stsdaneee.test DANE wins
# over MTA-STS, RFC 8461 §2) are delivered over DANE-verified TLS, and
# danebad.test / stsdanebad.test (TLSA mismatch: WebPKI would pass) and
# danefail.test (TLSA lookup SERVFAIL) are deferred by Postfix itself.
# danepkix.test (no usable TLSA) and daneinsecure.test (TLSA in an unsigned
# zone) keep NOTFOUND: Postfix's own level.
MAP="$E2E_DIR/map.sock"
PMDIR="$E2E_DIR/postmap"
mkdir -p "$PMDIR" && : >"$PMDIR/main.cf"
e2e postconf "$E2E_DIR" submit "smtp_tls_security_level = may" >/dev/null ||
    bail "postconf smtp_tls_security_level = may failed"
e2e postconf "$E2E_DIR" submit "smtp_tls_policy_maps = socketmap:unix:$MAP:postfix" >/dev/null ||
    bail "postconf smtp_tls_policy_maps failed"
milter_restart "map_socket = unix:$MAP"
[ -S "$MAP" ] || bail "no map socket $MAP"
chmod 0666 "$MAP"
ok "map route: the milter learnt that smtp enforces MTA-STS through its map" \
    wait_grep 5 "$LOG" 'transports enforcing MTA-STS through the policy map \(from postconf\): (.*, )?smtp(,|$)' ||
    diag_file "$LOG"
# mapq DOMAIN: what Postfix's own socketmap client (postmap) gets ("" for NOTFOUND)
mapq() { postmap -c "$PMDIR" -q "$1" "socketmap:unix:$MAP:postfix" 2>&1; }

# DOMAIN:MX HOST:the map's answer:the milter at RCPT:Postfix with the map
MAPCASES="daneee.test:mx.daneee.test:OK dane-only:accept:verified
daneta.test:mx.daneta.test:OK dane-only:accept:verified
stsdane.test:mx.stsdane.test:OK dane-only:accept:verified
stsdaneee.test:mx.stsdaneee.test:OK dane-only:accept:verified
danebad.test:mx.danebad.test:OK dane-only:defer:deferred
danefail.test:mx.danefail.test:OK dane-only:defer:deferred
stsdanebad.test:mx.stsdanebad.test:OK dane-only:defer:deferred
danepkix.test:mx.danepkix.test:NOTFOUND:accept:tls
daneinsecure.test:mx2.insecure.test:NOTFOUND:accept:tls"
# The map's first answer starts the probes (as an RCPT does); then both judge.
while IFS=: read -r d _ _ _ _; do mapq "$d" >/dev/null; rcpt_only "$d"; done <<<"$MAPCASES"
while IFS=: read -r _ h _ _ _; do
    wait_grep 30 "$LOG" "probe $(esc "$h")\\[" >/dev/null || diag "no probe of $h"
done <<<"$MAPCASES"
declare -A MAPANS
while IFS=: read -r d h ans want how; do
    got=$(mapq "$d")
    MAPANS[$d]=${got:-NOTFOUND}
    if [ "$ans" = NOTFOUND ]; then
        ok "map: $d answered NOTFOUND (no dane-only: $h has no usable TLSA)" [ -z "$got" ] ||
            diag "map answered: $got"
    else
        # postmap prints the value without "OK "
        ok "map: $d answered \"$ans\"" [ "$got" = "${ans#OK }" ] || diag "map answered: $got"
    fi
    rcpt_only "$d"
    REPLY[$d]=$(rcpt_reply "$OUT")
    if [ "$want" = accept ]; then
        ok "map route: $d: the milter accepts at RCPT (250)" rcpt_is "$OUT" 250 || diag_file "$OUT"
    else
        ok "map route: $d: the milter defers at RCPT (450 4.7.5) naming $h and DANE" \
            grep -Eq "^<\\*\\* +450 4\\.7\\.5 MTA-STS: $(esc "$d") .*$(esc "$h"): DANE" "$OUT" ||
            diag_file "$OUT"
    fi
done <<<"$MAPCASES"

# What the milter accepts Postfix delivers, over DANE where the map said
# dane-only; what it defers, Postfix with the map (milter off) defers
# itself, before any MAIL (the TLSA records do not authenticate the host).
# Only Postfix's log lines from here count: the dane level above verified
# the same hosts.
mark=$(wc -l <"$PLOG")
since_mark() { tail -n +"$((mark + 1))" "$PLOG" >"$E2E_DIR/submit.since"; }
# wait_since SECS RE: a line of Postfix's log since the mark matches RE
wait_since() {
    local i
    for ((i = 0; i < $1 * 2; i++)); do
        since_mark
        grep -Eq -- "$2" "$E2E_DIR/submit.since" && return 0
        [ $((i % 4)) = 3 ] && ns postqueue -c "$E2E_DIR/submit" -f >/dev/null 2>&1
        sleep 0.5
    done
    diag "no line matching /$2/ in Postfix's log since the map's route began, after $1 s"
    return 1
}
while IFS=: read -r d h _ want how; do
    [ "$want" = accept ] || continue
    tok=$(token)
    submit "$OUT" --to "bob@$d" --header "Subject: $tok" --body "$tok"
    ok "map route: $d: accepted with its message (250 queued)" grep -Eq '^<- +250 .*queued' "$OUT" ||
        diag_file "$OUT"
    if [ "$how" = verified ]; then
        ok "map route, Postfix at may: $d reached $h over DANE-verified TLS" \
            wait_since 30 "Verified TLS connection established to $(esc "$h")\\[" ||
            diag "$(grep -E "$(esc "$h")" "$PLOG" | tail -n3)"
    else
        ok "map route, Postfix at may: $d reached $h over TLS" \
            wait_since 30 "(Anonymous|Untrusted|Trusted|Verified) TLS connection established to $(esc "$h")\\["
    fi
done <<<"$MAPCASES"
e2e milters "$E2E_DIR" off >/dev/null || bail "e2e.sh milters off failed"
declare -A MAPRESULT
while IFS=: read -r d h _ want _; do
    [ "$want" = defer ] || continue
    tok=$(token)
    submit "$OUT" --to "bob@$d" --header "Subject: $tok" --body "$tok"
    qid=$(sed -n 's/^<- *250 2.0.0 Ok: queued as \([0-9A-F]*\).*/\1/p' "$OUT" | tail -n1)
    ok "map route, milter off: Postfix queues bob@$d (250)" [ -n "$qid" ] || diag_file "$OUT"
    # Deferred by Postfix's DANE (a TLS or TLSA reason), not by the
    # server's refusal of MAIL after a TLS session (as at level may).
    ok "map route, milter off: Postfix defers $d itself over DANE (never verified, never MAIL)" \
        wait_grep 60 "$PLOG" "${qid:-NOQUEUE}: to=<bob@$(esc "$d")>.*status=deferred \\((.*([Cc]ertificate|TLSA|TLS)|.*DNSSEC|.*[Dd]ane)" ||
        diag "$(grep -E "${qid:-NOQUEUE}: to=" "$PLOG" | tail -n2)"
    MAPRESULT[$d]=$(grep -E "${qid:-NOQUEUE}: to=<bob@$(esc "$d")>.*status=deferred" "$PLOG" | tail -n1 |
        sed -E 's/.*status=deferred/deferred/' | cut -c1-110)
done <<<"$MAPCASES"
e2e milters "$E2E_DIR" on >/dev/null || bail "e2e.sh milters on failed"
diag "map route (Postfix at may) | the map | the milter's RCPT answer | Postfix with the map"
while IFS=: read -r d h _ _ _; do
    since_mark
    diag "$d | ${MAPANS[$d]} | ${REPLY[$d]} | ${MAPRESULT[$d]:-$(grep -Eo "[A-Za-z]+ TLS connection established to $(esc "$h")" "$E2E_DIR/submit.since" | tail -n1)}"
done <<<"$MAPCASES"
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
