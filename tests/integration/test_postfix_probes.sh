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
#                     and Postfix hands it over verified TLS to the good one
#   shared1.test, shared2.test, mismatchmx.test and mixedmx.test share
#                     mx.provider.test: asked together, ONE probe (the
#                     connections counted in the world's smtp.log)
#   mismatchmx.test   its only MX matching the policy has no STARTTLS (the
#                     good one does not match): 450 4.7.5 naming it
#   cnamemx.test      its MX a CNAME to mx.provider.test: accepted and
#                     sent over verified TLS
#   nullmx.test       a null MX (RFC 7505), no MTA-STS, rule require=tls:
#                     450 4.7.5 saying null MX
#   goodmx.test       its MTA-STS TXT record removed (no MTA-STS), rule
#                     require=verified-tls fail=reject: deferred until
#                     probed, then accepted and sent over verified TLS
#   (mx.provider.test and mx.goodmx.test are the world's probe targets: they
#   answer STARTTLS but refuse MAIL, so "sent" means Postfix logged a Verified
#   TLS connection to them, as it was told to require in smtp_tls_policy_maps)
#   tls10mx.test      its TXT removed, rule require=tls fail=reject, its MX
#                     speaks TLS 1.0 only: 550 5.7.5 naming the host
#   the edge hosts    wrong name, TLS 1.1 only, another CA, huge,
#                     binary, endless and dripping banners, a line with no
#                     end, a hang after STARTTLS, a host that never speaks,
#                     a host down: probed once, then each domain 450 4.7.5
#                     at RCPT naming its host and the failure, never queued
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

# goodmx.test and tls10mx.test without MTA-STS (their TXT records removed)
for d in goodmx.test tls10mx.test; do
    ns "$HERE/../world/world.sh" set-policy "$E2E_DIR/world" $d - - >/dev/null 2>&1 ||
        bail "world.sh set-policy $d failed"
done

e2e milter-start "$E2E_DIR" \
    "enforcing_transports = smtp" \
    "rcpt_deadline_ms = 2s" \
    "fetch_connect_timeout_ms = 5s" \
    "fetch_timeout_ms = 5s" \
    "dns_timeout_ms = 2s" \
    "mx_probes = yes" \
    "probe_timeout_ms = 5s" \
    "rule = rcpt=nullmx.test require=tls" \
    "rule = rcpt=goodmx.test require=verified-tls fail=reject" \
    "rule = rcpt=tls10mx.test require=tls fail=reject" >/dev/null || bail "the milter did not start"
MAIL="$E2E_DIR/mail"
OUT="$E2E_DIR/swaks.out"
LOG="$E2E_DIR/milter.log"

# rcpt_only DOMAIN: one submission that ends after RCPT TO:<bob@DOMAIN>.
rcpt_only() { submit "$OUT" --to "bob@$1" --quit-after RCPT; }
# provider_accepts: connections the world's SMTP server accepted at mx.provider.test
provider_accepts() {
    if [ -f "$MTS_WORLD_SMTP_LOG" ]; then
        grep -c " accept [a-z0-9]*@$MTS_WORLD_PROVIDER_MX_ADDR:25 " "$MTS_WORLD_SMTP_LOG"
    else
        echo 0
    fi
}
# tls_policy LINE...: add lines to the submitting Postfix's smtp_tls_policy_maps
# (texthash: read when an smtp process starts, so reload)
tls_policy() {
    printf '%s\n' "$@" >>"$E2E_DIR/submit/tls_policy"
    ns postfix -c "$E2E_DIR/submit" reload >/dev/null 2>&1
}
a0=$(provider_accepts)

# ---- enforce.test: the first RCPT waits for the probe (the first message),
# accepted, then delivered over verified TLS
rcpt_only enforce.test
ok "enforce.test, cold: the RCPT waits for the MX probe and is accepted (250)" \
    rcpt_is "$OUT" 250 || diag_file "$OUT"
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

# ---- mixedmx.test (one self-signed MX, one good: one good path is enough),
# and the domains that share its good MX host: asked together, one probe
for d in mixedmx shared1 shared2 mismatchmx; do rcpt_only $d.test; done
ok "the milter probed bad.mixedmx.test: unverified (self-signed)" \
    wait_grep 20 "$LOG" 'probe bad\.mixedmx\.test\[127\.0\.50\.8\]:25: unverified'
ok "the milter probed mx.provider.test: good" \
    wait_grep 20 "$LOG" 'probe mx\.provider\.test\[127\.0\.50\.1\]:25: good'
ok "the milter probed mx1.mismatchmx.test: fail" \
    wait_grep 20 "$LOG" 'probe mx1\.mismatchmx\.test\[127\.0\.50\.6\]:25: fail'
a1=$(provider_accepts)
n=$(grep -c 'probe mx\.provider\.test\[' "$LOG")
[ $((a1 - a0)) -eq 1 ] && [ "$n" -eq 1 ]
r=$?
ok "mixedmx, shared1, shared2, mismatchmx share mx.provider.test: one probe ($((a1 - a0)) connections, $n probe lines)" \
    test $r -eq 0
rcpt_only mixedmx.test
ok "mixedmx.test: accepted at RCPT (250)" rcpt_is "$OUT" 250 || diag_file "$OUT"
rcpt_only shared1.test
ok "shared1.test (enforce, MX mx.provider.test): accepted at RCPT (250)" rcpt_is "$OUT" 250 ||
    diag_file "$OUT"
rcpt_only shared2.test
ok "shared2.test (testing, MX mx.provider.test): accepted at RCPT (250)" rcpt_is "$OUT" 250 ||
    diag_file "$OUT"
rcpt_only mismatchmx.test
ok "mismatchmx.test (the only policy match has no STARTTLS): 450 4.7.5 naming mx1.mismatchmx.test and STARTTLS" \
    grep -Eq '^<\*\* +450 4\.7\.5 MTA-STS: mismatchmx\.test .*mx1\.mismatchmx\.test.*STARTTLS' "$OUT" ||
    diag_file "$OUT"

# ---- cnamemx.test: its MX a CNAME to mx.provider.test
rcpt_only cnamemx.test
ok "the milter probed mx.cnamemx.test (a CNAME to mx.provider.test): good" \
    wait_grep 20 "$LOG" 'probe mx\.cnamemx\.test\[127\.0\.50\.1\]:25: good'
rcpt_only cnamemx.test
ok "cnamemx.test: accepted at RCPT (250)" rcpt_is "$OUT" 250 || diag_file "$OUT"

# ---- nullmx.test: a null MX under require=tls
rcpt_only nullmx.test
ok "nullmx.test, require=tls: 450 4.7.5 at RCPT, a null MX" \
    grep -Eq '^<\*\* +450 4\.7\.5 MTA-STS: nullmx\.test requires tls.*null MX' "$OUT" ||
    diag_file "$OUT"

# ---- the accepted ones are delivered over verified TLS to mx.provider.test
# (Postfix told to verify it; the world's server then refuses MAIL: what
# counts here is the TLS connection Postfix made)
tls_policy "mixedmx.test secure match=mx.provider.test:bad.mixedmx.test" \
    "cnamemx.test secure match=mx.cnamemx.test:mx.provider.test"
for d in mixedmx cnamemx; do
    submit "$OUT" --to "bob@$d.test" --header "Subject: $d" --body "$d"
    ok "$d.test: accepted with its message (250 queued)" grep -Eq '^<- +250 .*queued' "$OUT" ||
        diag_file "$OUT"
done
ok "mixedmx.test: Postfix reached mx.provider.test over verified TLS" \
    wait_grep 30 "$E2E_DIR/submit.log" 'Verified TLS connection established to mx\.provider\.test\[127\.0\.50\.1\]'
ok "mixedmx.test: Postfix found bad.mixedmx.test's certificate not valid and never verified TLS to it" \
    sh -c "grep -Eq 'certificate verification failed for bad\.mixedmx\.test\[127\.0\.50\.8\]' '$E2E_DIR/submit.log' &&
        ! grep -q 'Verified TLS connection established to bad\.mixedmx\.test' '$E2E_DIR/submit.log'"
ok "cnamemx.test: Postfix reached its MX over verified TLS" \
    wait_grep 30 "$E2E_DIR/submit.log" 'Verified TLS connection established to mx\.(cnamemx|provider)\.test\[127\.0\.50\.1\]'

# ---- the edge hosts: ask each once (the probes start), then again
# DOMAIN:HOST:the reply's fixed word (common/probeword.h):the probe's own
# account, which only the milter's log holds
EDGES="wrongnamemx:mx.wrongnamemx.test:certificate-host-mismatch:someone-else
tls11mx:mx.tls11mx.test:tls-too-old:TLS too old: the server negotiated TLSv1.1
untrustedmx:mx.untrustedmx.test:certificate-not-trusted:unknown CA
hugebannermx:mx.hugebannermx.test:validation-failure:more than 100 lines
binarybannermx:mx.binarybannermx.test:validation-failure:not an SMTP reply
endlessmx:mx.endlessmx.test:validation-failure:more than 100 lines
longlinemx:mx.longlinemx.test:validation-failure:a line longer than 1000 octets
hangtlsmx:mx.hangtlsmx.test:validation-failure:in the TLS handshake
dripmx:mx.dripmx.test:unreachable:lines of a reply came, never its last line
hangmx:mx.hangmx.test:unreachable:timed out
downmx:mx.downmx.test:unreachable:refused"
while IFS=: read -r d _ _; do rcpt_only "$d.test"; done <<<"$EDGES"
while IFS=: read -r d host _; do
    wait_grep 60 "$LOG" "probe ${host//./\\.}\\[127\\.0\\.50\\.[0-9]+\\]:25: [a-z]+: " ||
        diag "no probe of $host"
done <<<"$EDGES"
[ "$(grep -Ec 'probe mx\.(wrongnamemx|tls11mx|untrustedmx|hugebannermx|binarybannermx|endlessmx|longlinemx|hangtlsmx|dripmx|hangmx|downmx)\.test\[' "$LOG")" -eq 11 ]
r=$?
ok "the 11 edge hosts were each probed once, logged with grade and reason" test $r -eq 0
while IFS=: read -r d host word detail; do
    rcpt_only "$d.test"
    ok "$d.test: 450 4.7.5 at RCPT naming $host and \"$word\", not \"$detail\"" \
        sh -c "grep -Eq '^<\*\* +450 4\.7\.5 MTA-STS: ${d}\.test .*${host//./\\.}: .*\\($word\\)' '$OUT' &&
            ! grep -Fq '$detail' '$OUT'" ||
        diag_file "$OUT"
    ok "$d.test: the milter's log line for it has \"$detail\"" \
        grep -Eq "rcpt domain=${d}\.test .*; probe: ${host//./\\.}.*$detail" "$LOG" ||
        diag "no log line with the detail for $d.test"
done <<<"$EDGES"
ok "no edge domain was queued: each refusal logged by Postfix as NOQUEUE, no delivery tried" \
    sh -c "[ \$(grep -Ec 'NOQUEUE: milter-reject: RCPT from .*450 4.7.5 .*to=<bob@(wrongnamemx|tls11mx|untrustedmx|hugebannermx|binarybannermx|endlessmx|longlinemx|hangtlsmx|dripmx|hangmx|downmx)\.test>' '$E2E_DIR/submit.log') -eq 22 ] &&
        ! grep -Eq 'to=<bob@(wrongnamemx|tls11mx|untrustedmx|hugebannermx|binarybannermx|endlessmx|longlinemx|hangtlsmx|dripmx|hangmx|downmx)\.test>.*status=' '$E2E_DIR/submit.log'"

# ---- rules for domains without MTA-STS: require=verified-tls, require=tls
rcpt_only goodmx.test
rcpt_only tls10mx.test
ok "tls10mx.test, cold: the RCPT waits for the probe: 550 5.7.5 (require=tls fail=reject, TLS too old)" \
    grep -Eq '^<\*\* +550 5\.7\.5 ' "$OUT" || diag_file "$OUT"
ok "the milter probed mx.goodmx.test at 127.0.50.2: good" \
    wait_grep 20 "$LOG" 'probe mx\.goodmx\.test\[127\.0\.50\.2\]:25: good'
ok "the milter probed mx.goodmx.test at 127.0.50.3: good" \
    wait_grep 20 "$LOG" 'probe mx\.goodmx\.test\[127\.0\.50\.3\]:25: good'
ok "the milter probed mx.tls10mx.test: TLS too old" \
    wait_grep 20 "$LOG" 'probe mx\.tls10mx\.test\[127\.0\.50\.7\]:25: [a-z]+: .*TLS too old'
rcpt_only tls10mx.test
ok "tls10mx.test (no MTA-STS), require=tls fail=reject: 550 5.7.5 naming mx.tls10mx.test and TLS too old" \
    grep -Eq '^<\*\* +550 5\.7\.5 MTA-STS: tls10mx\.test requires tls.*mx\.tls10mx\.test.*TLS too old' "$OUT" ||
    diag_file "$OUT"
ok "the milter judged tls10mx.test without MTA-STS (status=absent), rejected" \
    grep -q 'rcpt domain=tls10mx\.test status=absent requirement=tls verdict=fail action=reject' "$LOG"
tls_policy "goodmx.test secure match=mx.goodmx.test"
submit "$OUT" --to bob@goodmx.test --header "Subject: goodmx" --body goodmx
ok "goodmx.test (no MTA-STS), require=verified-tls, probed: accepted with its message (250 queued)" \
    grep -Eq '^<- +250 .*queued' "$OUT" || diag_file "$OUT"
ok "goodmx.test: Postfix reached mx.goodmx.test over verified TLS" \
    wait_grep 30 "$E2E_DIR/submit.log" 'Verified TLS connection established to mx\.goodmx\.test\[127\.0\.50\.[23]\]'
ok "the milter judged goodmx.test without MTA-STS (status=absent): verified-tls passed, tagged" \
    grep -q 'rcpt domain=goodmx\.test status=absent requirement=verified-tls verdict=pass action=tag' "$LOG"

finish
