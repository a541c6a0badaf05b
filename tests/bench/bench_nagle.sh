#!/bin/bash
# bench_nagle.sh - what the milter socket costs under a real Postfix: 200
# messages in one authenticated SMTP session, each tagged by the milter,
# over a unix socket, an inet socket with TCP_NODELAY (the default), an
# inet socket without it, and an inet socket whose loopback route has the
# quickack attribute (mtasts-milter(8), SOCKETS AND SPEED). Prints one line
# per case. Needs root (namespaces).
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
BUILD=${top_builddir:-$(cd "$HERE/../.." && pwd)}
export MTS_E2E_MILTER="$BUILD/milter/mtasts-milter"
E2E="$HERE/../integration/e2e.sh"
N=${N:-200}
if [ "$(id -u)" -ne 0 ] || ! command -v postfix >/dev/null; then
    echo "bench_nagle: skipped (needs root and postfix)"
    exit 0
fi

# One SMTP session, AUTH, N messages; prints the seconds it took.
sender='
import smtplib, sys, time
n = int(sys.argv[1])
s = smtplib.SMTP("127.0.40.1", 587, timeout=60)
s.ehlo("bench")
s.login("alice@e2e.test", "secret")
msg = "Subject: bench\r\n\r\nbench\r\n"
t = time.monotonic()
for i in range(n):
    s.sendmail("alice@e2e.test", ["bob@testing.test"], msg)
print("%.2f" % (time.monotonic() - t))
s.quit()
'

run_case() {  # run_case LABEL SOCKET NODELAY [quickack]
    local label=$1 sock=$2 nodelay=$3 quickack=${4:-} dir=/tmp/mts-nagle.$$ secs
    export MTS_E2E_NETNS=mts-nagle-$$ MTS_E2E_MILTER_SOCKET=$sock
    "$E2E" up "$dir" >/dev/null 2>&1 || { echo "bench_nagle: $label: harness did not come up"; return; }
    # The route attribute that ends the delayed-ACK wait, on the submission
    # address the milter listens on (inside the harness's own namespace).
    [ -n "$quickack" ] && ip netns exec "$MTS_E2E_NETNS" ip route replace local 127.0.40.1 \
        dev lo table local proto kernel scope host src 127.0.40.1 quickack 1
    if "$E2E" milter-start "$dir" "enforcing_transports = smtp" "tcp_nodelay = $nodelay" >/dev/null; then
        # warm the cache so that every message measures the socket, not DNS/HTTPS
        "$E2E" run "$dir" python3 -c "$sender" 1 >/dev/null 2>&1
        secs=$("$E2E" run "$dir" python3 -c "$sender" "$N" 2>&1 | tail -1)
        printf 'bench_nagle: %-26s %s messages in one session: %s s (%s ms a message)\n' \
            "$label" "$N" "$secs" "$(echo "$secs * 1000 / $N" | bc -l | xargs printf '%.1f')"
    fi
    "$E2E" down "$dir" >/dev/null 2>&1
    rm -rf "$dir"
}

run_case "unix socket" unix yes
run_case "inet, TCP_NODELAY" inet yes
run_case "inet, Nagle left on" inet no
run_case "inet, route quickack 1" inet yes quickack
