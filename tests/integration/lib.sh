# shellcheck shell=bash
# lib.sh — helpers for the e2e tests (source it; bash). TAP output.
#
#   E2E_DIR=/tmp/mts-e2e.$$; . "$HERE/lib.sh"
#   e2e_up [--no-milter]        brings the harness up (bails out on failure)
#   ok "name" CMD...            runs CMD, prints ok / not ok
#   submit OUT [swaks args]     swaks inside the namespace, authenticated as
#                               alice@e2e.test on 127.0.40.1:587; output in OUT
#   swaks_ns OUT [swaks args]   plain swaks inside the namespace
#   wait_grep SECS FILE ERE     poll (flushing the submit queue) until FILE
#                               has a line matching ERE
#   message_of MBOX TOKEN       the message of MBOX that contains TOKEN
#   header_of MBOX TOKEN        its MTA-STS-Status header lines
#   tag_is MBOX TOKEN WANT      they are exactly WANT (else diag what they are)
#   finish                      prints the plan, returns the exit status
# The namespace and everything in it go away in the EXIT trap (e2e_down).

E2E_HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
E2E="$E2E_HERE/e2e.sh"
: "${E2E_DIR:=/tmp/mts-e2e.$$}"
# one namespace per test script: scripts can run in parallel (make -j check)
: "${MTS_E2E_NETNS:=mts-e2e-$$}"
export MTS_E2E_NETNS
T_N=0
T_FAIL=0

diag() { printf '# %s\n' "$@"; }
diag_file() { [ -r "$1" ] && sed 's/^/#   /' "$1" | tail -n "${2:-20}"; return 0; }
bail() { echo "Bail out! $*"; exit 1; }

pass() { T_N=$((T_N + 1)); echo "ok $T_N - $1"; }
fail() { T_N=$((T_N + 1)); T_FAIL=$((T_FAIL + 1)); echo "not ok $T_N - $1"; }
# ok NAME CMD...: pass when CMD succeeds
ok() {
    local name="$1"; shift
    if "$@"; then pass "$name"; else fail "$name"; return 1; fi
}
finish() {
    echo "1..$T_N"
    [ "$T_FAIL" -eq 0 ] || diag "$T_FAIL of $T_N failed"
    [ "$T_FAIL" -eq 0 ]
}

e2e() { "$E2E" "$@"; }
ns() { "$E2E" run "$E2E_DIR" "$@"; }

e2e_up() {
    if [ "$(id -u)" -ne 0 ]; then
        echo "1..0 # SKIP the e2e harness needs root (network namespace, ports 25/53/443)"
        exit 0
    fi
    local t
    for t in postfix swaks saslpasswd2 ip; do
        command -v "$t" >/dev/null 2>&1 ||
            { echo "1..0 # SKIP $t is not installed (see: tests/integration/e2e.sh packages)"; exit 0; }
    done
    # a network namespace must work here (not so in a chroot whose / is not
    # a mount point): else one clear line, not e2e.sh's failure log
    local why
    why=$("$E2E_HERE/../world/world.sh" netns-check) || bail "$why"
    trap e2e_down EXIT
    if ! "$E2E" up "$E2E_DIR" "$@" >"$E2E_DIR.up.log" 2>&1; then
        diag_file "$E2E_DIR.up.log" 40
        bail "e2e.sh up failed"
    fi
    rm -f "$E2E_DIR.up.log"
    # shellcheck disable=SC1091
    . "$E2E_DIR/env"
}

e2e_down() {
    if [ -z "${E2E_KEEP:-}" ]; then
        "$E2E" down "$E2E_DIR" >/dev/null 2>&1 || "$E2E" down "$E2E_DIR" >&2 || true
        rm -rf "$E2E_DIR" "$E2E_DIR.up.log"
    else
        echo "# E2E_KEEP set: harness left up in $E2E_DIR (down: MTS_E2E_NETNS=$MTS_E2E_NETNS $E2E down $E2E_DIR)"
    fi
}

swaks_ns() {
    local out="$1"; shift
    ns swaks --timeout 30 "$@" >"$out" 2>&1
}
submit() {
    local out="$1"; shift
    swaks_ns "$out" --server 127.0.40.1:587 --auth PLAIN \
        --auth-user alice@e2e.test --auth-password secret \
        --from alice@e2e.test "$@"
}

# smtp_code OUT STAGE: the reply code swaks got for the last command of a
# stage ("MAIL", "RCPT", "DATA" end = "DOT", "AUTH")
last_reply() { grep -E '^<[-~*]* +[0-9]{3}[ -]' "$1" | tail -n1 | sed -E 's/^<[-~*]* +//'; }
has_reply() { grep -Eq "^<[-~*]* +$2" "$1"; }
# rcpt_reply FILE: the answer to the first RCPT TO in swaks' transcript FILE
# ("250 ..." or "450 ..."), not EHLO's or MAIL's
rcpt_reply() {
    awk '/-> RCPT TO/ { f = 1; next }
         f && /^<[-~*]* +[0-9][0-9][0-9] / { sub(/^<[-~*]* +/, ""); print; exit }' "$1"
}
# rcpt_is FILE CODE: that answer begins with CODE
rcpt_is() { rcpt_reply "$1" | grep -q "^$2 "; }

# mx_settled [SECS]: waits, at most SECS (10), until the receiving Postfix
# (every world MX) has nothing in its queue, so that whatever it accepted is
# in the mailbox files. A check that a message never reached the MX runs
# after this, once the sender's attempt has ended (deferred), rather than
# after a fixed sleep: only a message the MX had already accepted could still
# appear, and a retry is at least minimal_backoff_time (5 s) away.
mx_settled() {
    local secs=${1:-10} i
    for ((i = 0; i < secs * 10; i++)); do
        ns postqueue -c "$E2E_DIR/mx" -p 2>/dev/null | grep -q '^Mail queue is empty' && return 0
        sleep 0.1
    done
    diag "the MX's queue is not empty after $secs s: $(ns postqueue -c "$E2E_DIR/mx" -p 2>&1 | tail -n 3 | tr '\n' ' ')"
    return 1
}

wait_grep() {
    local secs="$1" file="$2" re="$3" i
    for ((i = 0; i < secs * 2; i++)); do
        [ -r "$file" ] && grep -Eq -- "$re" "$file" && return 0
        [ $((i % 4)) = 3 ] && ns postqueue -c "$E2E_DIR/submit" -f >/dev/null 2>&1
        sleep 0.5
    done
    diag "no line matching /$re/ in $file after $secs s"
    return 1
}

message_of() {
    awk -v tok="$2" '/^From /{msg=""} {msg = msg $0 "\n"} index($0, tok){found=msg} END{printf "%s", found}' "$1"
}
header_of() { message_of "$1" "$2" | grep '^MTA-STS-Status:'; }
tag_is() {
    local got
    got=$(header_of "$1" "$2")
    [ "$got" = "$3" ] || { diag "got: $got"; return 1; }
}

token() { echo "e2e-$(date +%s%N)-$RANDOM"; }
