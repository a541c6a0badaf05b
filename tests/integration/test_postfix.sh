#!/bin/bash
# test_postfix.sh - the milter under a real Postfix: swaks submits through
# Postfix (SASL on 587, unauthenticated relay on 2525, sendmail(1)), the
# milter answers per recipient, and Postfix delivers over TLS to the test
# world's MX. Everything runs in a network namespace of its own (lib.sh).
set -u
HERE="$(cd "$(dirname "$0")" && pwd)"
BUILD=${top_builddir:-$(cd "$HERE/../.." && pwd)}
export MTS_E2E_MILTER="$BUILD/milter/mtasts-milter"
E2E_DIR=/tmp/mts-pf.$$
# shellcheck disable=SC1091
. "$HERE/lib.sh"
e2e_up

MILTER_OPTS=(
    "enforcing_transports = smtp"
    "rcpt_deadline_ms = 2s"
    "fetch_connect_timeout_ms = 10s"
    "fetch_timeout_ms = 10s"
    "dns_timeout_ms = 2s"
)
e2e milter-start "$E2E_DIR" "${MILTER_OPTS[@]}" >/dev/null || bail "the milter did not start"
MAIL="$E2E_DIR/mail"
OUT="$E2E_DIR/swaks.out"

# delivered FILE TOKEN: the message with this token arrived in FILE.
delivered() { wait_grep 20 "$1" "$2"; }

# ---- an enforce domain, matching MX, enforcing route: tagged, delivered over TLS
tok=$(token)
submit "$OUT" --to bob@enforce.test --header "Subject: $tok" --body "$tok"
ok "enforce.test: accepted at RCPT (250)" grep -Eq '^<- +250 ' "$OUT"
ok "enforce.test: delivered to the world's MX" delivered "$MAIL/enforce.test" "$tok"
want='MTA-STS-Status: domain=enforce.test; status=enforce; id=20240101T000000; requirement=mta-sts; verdict=pass; action=tag'
ok "enforce.test: the delivered message carries exactly the tag" tag_is "$MAIL/enforce.test" "$tok" "$want"
ok "enforce.test: Postfix delivered over verified TLS" \
    grep -q 'Verified TLS connection established to mx1.enforce.test' "$E2E_DIR/submit.log"
cp "$OUT" "$E2E_DIR/transcript-tag.txt"

# ---- MX that matches none of the policy's patterns: 5.7.x at RCPT
submit "$OUT" --to bob@mxmismatch.test --quit-after RCPT
ok "mxmismatch.test: rejected at RCPT with 550 5.7.5" grep -Eq '^<\*\* +550 5\.7\.5 MTA-STS: mxmismatch.test' "$OUT"
cp "$OUT" "$E2E_DIR/transcript-reject.txt"

# ---- a policy host that hangs: a deferral after the RCPT deadline, not a stuck session
start=$(date +%s)
submit "$OUT" --to bob@hangtls.test --quit-after RCPT
secs=$(( $(date +%s) - start ))
ok "hangtls.test: deferred with 450 4.7.5 (status unknown)" \
    grep -Eq '^<\*\* +450 4\.7\.5 MTA-STS: MTA-STS status of hangtls.test could not be determined now; try again later$' "$OUT"
ok "hangtls.test: the session went on (swaks finished in ${secs}s, deadline 2s, fetch timeout 10s)" \
    grep -q '^ -> QUIT' "$OUT"
cp "$OUT" "$E2E_DIR/transcript-defer.txt"

# ---- a mixed recipient list gets mixed answers; the message goes to the accepted ones
tok=$(token)
submit "$OUT" --to bob@enforce.test,bob@mxmismatch.test,bob@testing.test,bob@servfail.test \
    --header "Subject: $tok" --body "$tok"
ok "mixed: enforce.test accepted" grep -Eq '^ -> RCPT TO:<bob@enforce.test>' "$OUT"
awk '/^ -> RCPT TO:/{r=$0; getline; print r " => " $0}' "$OUT" >"$E2E_DIR/rcpts"
ok "mixed: mxmismatch.test 550, servfail.test 450, testing.test 250" sh -c "
    grep -q 'mxmismatch.test.* => <\*\* *550 5.7.5' '$E2E_DIR/rcpts' &&
    grep -q 'servfail.test.* => <\*\* *450 4.7.5' '$E2E_DIR/rcpts' &&
    grep -q 'testing.test.* => <- *250' '$E2E_DIR/rcpts' &&
    grep -q 'enforce.test.* => <- *250' '$E2E_DIR/rcpts'" || diag_file "$E2E_DIR/rcpts"
ok "mixed: delivered to enforce.test" delivered "$MAIL/enforce.test" "$tok"
ok "mixed: delivered to testing.test" delivered "$MAIL/testing.test" "$tok"
got=$(header_of "$MAIL/testing.test" "$tok" | tr '\n' '|')
ok "mixed: tags only for the accepted domains (enforce.test, testing.test)" sh -c "
    echo '$got' | grep -q 'domain=enforce.test;.*verdict=pass' &&
    echo '$got' | grep -q 'domain=testing.test; status=testing;.*verdict=not-required' &&
    ! echo '$got' | grep -q 'mxmismatch\|servfail'"

# ---- a forged tag in the submitted message is removed
tok=$(token)
submit "$OUT" --to bob@testing.test --header "Subject: $tok" \
    --add-header "MTA-STS-Status: domain=testing.test; status=enforce; verdict=pass; action=tag" --body "$tok"
ok "forged tag: message delivered" delivered "$MAIL/testing.test" "$tok"
got=$(header_of "$MAIL/testing.test" "$tok")
ok "forged tag: only the milter's own header remains" \
    [ "$got" = "MTA-STS-Status: domain=testing.test; status=testing; id=20240101000000; requirement=mta-sts; verdict=not-required; action=tag" ]

# ---- an unauthenticated relay session passes untouched
tok=$(token)
swaks_ns "$OUT" --server 127.0.40.1:2525 --from carol@e2e.test --to bob@mxmismatch.test \
    --header "Subject: $tok" --body "$tok"
ok "unauthenticated: mxmismatch.test not refused (out of scope)" grep -Eq '^<- +250 .*queued' "$OUT"
ok "unauthenticated: delivered" delivered "$MAIL/mxmismatch.test" "$tok"
ok "unauthenticated: no tag added" sh -c "! awk -v t='$tok' 'index(\$0,t){f=1} END{exit !f}' '$MAIL/mxmismatch.test' || [ -z \"\$(awk -v tok='$tok' '/^From /{m=\"\"} {m=m \$0 \"\\n\"} index(\$0,tok){f=m} END{printf \"%s\", f}' '$MAIL/mxmismatch.test' | grep '^MTA-STS-Status:')\" ]"

# ---- non-SMTP mail (sendmail(1)) cannot be refused per recipient: held
tok=$(token)
printf 'Subject: %s\n\n%s\n' "$tok" "$tok" |
    ns sendmail -C "$E2E_DIR/submit" -f alice@e2e.test bob@mxmismatch.test
ok "sendmail(1) to mxmismatch.test: Postfix holds the message" \
    wait_grep 20 "$E2E_DIR/submit.log" 'milter-hold: END-OF-MESSAGE from localhost.*milter triggers HOLD action.*to=<bob@mxmismatch.test>'
ok "it sits in the hold queue ('!' in postqueue -p)" \
    sh -c "ip netns exec $MTS_E2E_NETNS postqueue -c '$E2E_DIR/submit' -p | grep -q '^[0-9A-F]*!.*alice@e2e.test'"
ok "the milter logged why it held it" \
    wait_grep 5 "$E2E_DIR/milter.log" 'held \(non-SMTP mail cannot be refused per recipient\): MTA-STS: mxmismatch.test'

# ---- SIGHUP reloads without dropping connections; a bad file is refused
MPID=$(cat "$E2E_DIR/milter.pid")
# A session that is open across the reload: its milter connection must live on.
python3 - "$MTS_E2E_NETNS" "$MPID" "$E2E_DIR/milter.conf" "$E2E_DIR/reload-go" >"$E2E_DIR/reload.out" 2>&1 <<'PY'
import subprocess, sys, time
ns, pid, conf, flag = sys.argv[1:5]
code = r"""
import smtplib, sys, time, os
s = smtplib.SMTP("127.0.40.1", 587, timeout=30)
s.ehlo("reload"); s.login("alice@e2e.test", "secret")
s.mail("alice@e2e.test"); print("before", s.rcpt("bob@testing.test")[0]); s.rset()
sys.stdout.flush(); open(sys.argv[1], "w").close()
while os.path.exists(sys.argv[1]): time.sleep(0.1)
s.mail("alice@e2e.test"); print("after", s.rcpt("bob@mxmismatch.test")[0]); s.quit()
"""
p = subprocess.Popen(["ip", "netns", "exec", ns, "python3", "-c", code, flag], stdout=subprocess.PIPE, text=True)
import os
for _ in range(100):
    if os.path.exists(flag): break
    time.sleep(0.1)
with open(conf, "a") as f: f.write("dry_run = yes\n")
subprocess.run(["kill", "-HUP", pid]); time.sleep(1.5)
os.unlink(flag)
print(p.communicate()[0].strip())
PY
ok "reload: the open session survived it (RCPT before 250, after 550 on its old configuration)" \
    sh -c "grep -q 'before 250' '$E2E_DIR/reload.out' && grep -q 'after 550' '$E2E_DIR/reload.out'" ||
    diag_file "$E2E_DIR/reload.out"
ok "reload: logged" wait_grep 5 "$E2E_DIR/milter.log" 'configuration reloaded from'
submit "$OUT" --to bob@mxmismatch.test --quit-after RCPT
ok "reload: a new session gets the new configuration (dry run: 250)" grep -Eq '^<- +250 ' "$OUT"
echo "no_such_option = 1" >>"$E2E_DIR/milter.conf"
kill -HUP "$MPID"
ok "reload: a bad file is refused, naming file, line and option" \
    wait_grep 5 "$E2E_DIR/milter.log" 'reload refused, the running configuration stays: .*milter.conf:[0-9]+: option no_such_option: unknown option'
ok "reload: the milter still runs" kill -0 "$MPID"
submit "$OUT" --to bob@mxmismatch.test --quit-after RCPT
ok "reload: the old (dry-run) configuration still answers" grep -Eq '^<- +250 ' "$OUT"

# ---- the milter stopped: Postfix applies milter_default_action (tempfail)
e2e milter-stop "$E2E_DIR" >/dev/null
submit "$OUT" --to bob@enforce.test --quit-after RCPT
ok "milter down: Postfix answers 4xx (milter_default_action = tempfail)" \
    grep -Eq '^<\*\* +4[0-9][0-9] ' "$OUT"

finish
