#!/bin/bash
# smoke.sh — proves the e2e plumbing without mtasts-milter: namespace, world
# DNS through libc, SASL submission, delivery over verified TLS to the
# receiving MX, relay refusal, non-SMTP submission; then the milter wiring
# with the stand-in tests/integration/fakemilter.py (macros the milter sees,
# per-recipient replies, milter_default_action when it is down); finally
# that down leaves nothing behind. TAP output; exit status non-zero on a
# failure. Needs root. E2E_DIR=... to choose the directory, E2E_KEEP=1 to
# leave everything up afterwards.
set -u
HERE="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=lib.sh
. "$HERE/lib.sh"

e2e_up --no-milter
D="$E2E_DIR"
O="$D/out.txt"

# ---- the namespace resolves the world through libc --------------------------
ok "libc in the namespace resolves mx1.enforce.test to 127.0.30.1" \
    bash -c "'$E2E' run '$D' getent hosts mx1.enforce.test | grep -q '^127\.0\.30\.1 '"

# ---- authenticated submission to an enforce domain -------------------------
tok="$(token)"
submit "$O" --to bob@enforce.test --header "Subject: $tok"
rc=$?
ok "authenticated submission to bob@enforce.test is accepted" has_reply "$O" "250 2.0.0 Ok: queued"
[ "$rc" -eq 0 ] || diag_file "$O"
ok "the message reaches the MX mailbox $D/mail/enforce.test" \
    wait_grep 15 "$D/mail/enforce.test" "^Subject: $tok"
ok "the submitting Postfix logs a verified TLS connection to mx1.enforce.test" \
    grep -q "Verified TLS connection established to mx1.enforce.test\[127.0.30.1\]:25" "$D/submit.log"
ok "the delivery to enforce.test is logged status=sent via mx1.enforce.test" \
    grep -Eq "to=<bob@enforce.test>, relay=mx1.enforce.test\[127.0.30.1\]:25, .*status=sent" "$D/submit.log"
ok "the MX's Received header shows TLS from submit.e2e.test" \
    grep -Eq "^	\(using TLSv1\.[23] " "$D/mail/enforce.test"

# ---- a domain without a TLS policy entry (TLS may) --------------------------
tok="$(token)"
submit "$O" --to bob@testing.test --header "Subject: $tok"
ok "authenticated submission to bob@testing.test is accepted" has_reply "$O" "250 2.0.0 Ok: queued"
ok "the message reaches $D/mail/testing.test" \
    wait_grep 15 "$D/mail/testing.test" "^Subject: $tok"

# ---- relay refusal without AUTH ------------------------------------------------
swaks_ns "$O" --server 127.0.40.1:587 --from x@elsewhere.test --to bob@enforce.test
ok "no AUTH on 587: RCPT to an external domain is refused (554 5.7.1)" has_reply "$O" "554 5.7.1"
swaks_ns "$O" --server 127.0.40.1:25 --from x@elsewhere.test --to bob@enforce.test
ok "no AUTH on 25: RCPT to an external domain is refused (554 5.7.1)" has_reply "$O" "554 5.7.1"

# ---- inbound (unauthenticated, port 25) for the local domain ----------------
tok="$(token)"
swaks_ns "$O" --server 127.0.40.1:25 --from carol@enforce.test --to alice@e2e.test \
    --header "Subject: $tok"
ok "unauthenticated inbound mail to alice@e2e.test is accepted" has_reply "$O" "250 2.0.0 Ok: queued"
ok "it is delivered to $D/mail-local/e2e.test" \
    wait_grep 15 "$D/mail-local/e2e.test" "^Subject: $tok"

# ---- trusted network relay (2525, no AUTH, mynetworks) ---------------------------
tok="$(token)"
swaks_ns "$O" --server 127.0.40.1:2525 --from alice@e2e.test --to bob@enforce.test \
    --header "Subject: $tok"
ok "port 2525 relays for mynetworks without AUTH" has_reply "$O" "250 2.0.0 Ok: queued"
ok "... and it is delivered to enforce.test" \
    wait_grep 15 "$D/mail/enforce.test" "^Subject: $tok"

# ---- non-SMTP submission (sendmail -> pickup -> cleanup) -------------------------
tok="$(token)"
printf 'From: alice@e2e.test\nTo: bob@testing.test\nSubject: %s\n\nnon-SMTP\n' "$tok" |
    ns sendmail -C "$D/submit" -f alice@e2e.test bob@testing.test
ok "sendmail -C DIR/submit (non-SMTP) exits 0" test $? -eq 0
ok "the non-SMTP message is delivered to testing.test" \
    wait_grep 15 "$D/mail/testing.test" "^Subject: $tok"

# ---- the milter wiring, with the stand-in fakemilter.py ------------------------------
FAKE="$HERE/fakemilter.py"
ok "milters on (smtpd_milters = non_smtpd_milters = $MTS_E2E_MILTER_POSTFIX)" \
    e2e milters "$D" on
start_fake() { MTS_E2E_MILTER="$FAKE" "$E2E" milter-start "$D" >"$O.milter" 2>&1 || { diag_file "$O.milter"; return 1; }; }
ok "fakemilter.py starts through e2e.sh milter-start" start_fake
tok="$(token)"
submit "$O" --to bob@enforce.test --header "Subject: $tok"
ok "with the milter: submission is accepted" has_reply "$O" "250 2.0.0 Ok: queued"
ok "the milter saw RCPT with {rcpt_mailer}=smtp {rcpt_host}=enforce.test" \
    grep -q '"cmd": "R".*"{rcpt_host}": "enforce.test", "{rcpt_mailer}": "smtp"' "$D/milter.log"
ok "the milter saw MAIL with {auth_authen}=alice@e2e.test" \
    grep -q '"cmd": "M".*"{auth_authen}": "alice@e2e.test"' "$D/milter.log"
ok "the milter's header arrives at the MX" \
    wait_grep 15 "$D/mail/enforce.test" "^X-Fake-Milter: seen"
tok="$(token)"
printf 'Subject: %s\n\nnon-SMTP\n' "$tok" |
    ns sendmail -C "$D/submit" -f alice@e2e.test bob@testing.test
ok "non-SMTP mail through non_smtpd_milters is delivered" \
    wait_grep 15 "$D/mail/testing.test" "^Subject: $tok"
ok "the milter saw the non-SMTP connect as localhost/127.0.0.1 port 0" \
    grep -q '"address": "127.0.0.1", "cmd": "C", "family": "4", "hostname": "localhost",.*"port": 0' "$D/milter.log"

e2e milter-stop "$D"
export MTS_E2E_MILTER_ARGS="--rcpt-reply enforce.test=451 --rcpt-reply mxmismatch.test=550"
ok "fakemilter.py restarts with per-domain RCPT replies" start_fake
unset MTS_E2E_MILTER_ARGS
submit "$O" --to bob@enforce.test
ok "a milter 451 at RCPT reaches the SMTP client" has_reply "$O" "451 4.7.0 fakemilter says no"
submit "$O" --to bob@mxmismatch.test
ok "a milter 550 at RCPT reaches the SMTP client" has_reply "$O" "550 5.7.0 fakemilter says no"

ok "e2e.sh milter-stop stops the milter" e2e milter-stop "$D"
submit "$O" --to bob@enforce.test
ok "milter down: milter_default_action=tempfail gives the client a 4xx" \
    bash -c "grep -Eq '^<[-~*]* +4[0-9][0-9] ' '$O' && ! grep -q 'queued as' '$O'"
ok "... and the submitting Postfix logs the milter-reject 451 4.7.1" \
    grep -q "milter-reject: .*451 4.7.1 Service unavailable" "$D/submit.log"

# ---- down leaves nothing ---------------------------------------------------------
pids_before="$(ip netns pids "$MTS_E2E_NETNS" 2>/dev/null | tr '\n' ' ')"
"$E2E" down "$D" >"$O.down" 2>&1
ok "e2e.sh down succeeds" test $? -eq 0 || diag_file "$O.down"
ok "the namespace $MTS_E2E_NETNS is gone" bash -c "! ip netns list | grep -qw '$MTS_E2E_NETNS'"
left=""
for p in $pids_before; do [ -d "/proc/$p" ] && grep -vq '^[^)]*) Z' "/proc/$p/stat" 2>/dev/null && left="$left $p"; done
ok "no process of the namespace survives (had: $pids_before)" test -z "$left"
ok "/etc/netns/$MTS_E2E_NETNS is gone" test ! -e "/etc/netns/$MTS_E2E_NETNS"

finish
