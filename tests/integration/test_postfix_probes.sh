#!/bin/bash
# test_postfix_probes.sh - the path guarantee (issue 10) under a real
# Postfix: the milter with mx_probes = yes probes the MX hosts of the
# recipient domains (STARTTLS, the certificate) and answers at RCPT.
#
#   enforce.test      its MX is the harness's receiving Postfix (a
#                     certificate from the world's CA for the MX names):
#                     the first RCPT is deferred (the path is not probed
#                     yet), then the message is accepted, tagged
#                     tls=verified and delivered over verified TLS
#   nostarttls.test   enforce, its only MX offers no STARTTLS: 450 4.7.5 at
#                     RCPT naming the host and the reason; nothing queued
#   expiredmx.test    enforce, the MX certificate expired: 450 4.7.5 naming it
#   mixedmx.test      enforce, one MX self-signed, one good: accepted (250)
#
# Everything runs in a network namespace of its own (lib.sh). TAP output.
set -u
HERE="$(cd "$(dirname "$0")" && pwd)"
BUILD=${top_builddir:-$(cd "$HERE/../.." && pwd)}
export MTS_E2E_MILTER="$BUILD/milter/mtasts-milter"
E2E_DIR=/tmp/mts-pfp.$$
# shellcheck disable=SC1091
. "$HERE/lib.sh"
e2e_up

e2e milter-start "$E2E_DIR" \
    "enforcing_transports = smtp" \
    "rcpt_deadline_ms = 2s" \
    "fetch_connect_timeout_ms = 5s" \
    "fetch_timeout_ms = 5s" \
    "dns_timeout_ms = 2s" \
    "mx_probes = yes" \
    "probe_timeout_ms = 5s" >/dev/null || bail "the milter did not start"
MAIL="$E2E_DIR/mail"
OUT="$E2E_DIR/swaks.out"
LOG="$E2E_DIR/milter.log"

# rcpt_only DOMAIN: one submission that ends after RCPT TO:<bob@DOMAIN>.
rcpt_only() { submit "$OUT" --to "bob@$1" --quit-after RCPT; }

# ---- enforce.test: not probed yet, then accepted and delivered over verified TLS
rcpt_only enforce.test
ok "enforce.test, cold: 450 4.7.5 at RCPT, the MX has not been probed yet" \
    grep -Eq '^<\*\* +450 4\.7\.5 .*has not been probed yet' "$OUT" ||
    diag_file "$OUT"
ok "the milter probed mx1.enforce.test (the receiving Postfix): good" \
    wait_grep 20 "$LOG" 'probe mx1\.enforce\.test\[127\.0\.30\.1\]:25: good'
# Postfix's smtpd sums up each session's commands when it ends.
ok "the receiving Postfix saw the probe: EHLO, STARTTLS, EHLO, QUIT and nothing else" \
    wait_grep 10 "$E2E_DIR/mx.log" 'disconnect from .* ehlo=2 starttls=1 quit=1 commands=4$'

tok=$(token)
submit "$OUT" --to bob@enforce.test --header "Subject: $tok" --body "$tok"
ok "enforce.test, probed: accepted at RCPT (250)" grep -Eq '^<- +250 .*queued' "$OUT" ||
    diag_file "$OUT"
ok "enforce.test: delivered to the world's MX" wait_grep 20 "$MAIL/enforce.test" "$tok"
want='MTA-STS-Status: domain=enforce.test; status=enforce; id=20240101T000000; requirement=mta-sts; verdict=pass; action=tag; tls=verified'
ok "enforce.test: the delivered message carries the tag with tls=verified" \
    tag_is "$MAIL/enforce.test" "$tok" "$want"
ok "enforce.test: Postfix delivered over verified TLS" \
    wait_grep 10 "$E2E_DIR/submit.log" 'Verified TLS connection established to mx1\.enforce\.test'

# ---- nostarttls.test: its MX offers no STARTTLS: deferred at RCPT with the reason
rcpt_only nostarttls.test
ok "the milter probed mx.nostarttls.test: fail, no STARTTLS" \
    wait_grep 20 "$LOG" 'probe mx\.nostarttls\.test\[127\.0\.50\.6\]:25: fail: .*STARTTLS'
rcpt_only nostarttls.test
ok "nostarttls.test: 450 4.7.5 at RCPT naming mx.nostarttls.test and STARTTLS" \
    grep -Eq '^<\*\* +450 4\.7\.5 MTA-STS: nostarttls\.test requires MTA-STS \(enforce\) and no MX host.*mx\.nostarttls\.test.*STARTTLS' "$OUT" ||
    diag_file "$OUT"
ok "nostarttls.test: Postfix logged the milter's refusal (NOQUEUE) and never tried to deliver" \
    sh -c "grep -q 'NOQUEUE: milter-reject: RCPT from .*450 4.7.5 .*to=<bob@nostarttls.test>' '$E2E_DIR/submit.log' &&
        ! grep -q 'to=<bob@nostarttls.test>.*status=' '$E2E_DIR/submit.log'"

# ---- expiredmx.test: the MX certificate expired
rcpt_only expiredmx.test
ok "the milter probed mx.expiredmx.test: unverified, expired" \
    wait_grep 20 "$LOG" 'probe mx\.expiredmx\.test\[127\.0\.50\.4\]:25: unverified: .*expired'
rcpt_only expiredmx.test
ok "expiredmx.test: 450 4.7.5 at RCPT naming mx.expiredmx.test and the expiry" \
    grep -Eq '^<\*\* +450 4\.7\.5 MTA-STS: expiredmx\.test .*mx\.expiredmx\.test.*expired' "$OUT" ||
    diag_file "$OUT"

# ---- mixedmx.test: one self-signed MX, one good: one good path is enough
rcpt_only mixedmx.test
ok "the milter probed bad.mixedmx.test: unverified (self-signed)" \
    wait_grep 20 "$LOG" 'probe bad\.mixedmx\.test\[127\.0\.50\.8\]:25: unverified'
ok "the milter probed mx.provider.test: good" \
    wait_grep 20 "$LOG" 'probe mx\.provider\.test\[127\.0\.50\.1\]:25: good'
rcpt_only mixedmx.test
ok "mixedmx.test: accepted at RCPT (250)" grep -Eq '^<- +250 ' "$OUT" || diag_file "$OUT"

finish
