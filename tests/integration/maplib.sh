# shellcheck shell=bash
# maplib.sh - shared by the policy-map tests that bring the test world up
# in a network namespace of their own (test_map.sh, test_sendmail.sh).
# Source it after setting HERE (this folder). TAP output.
#
#   maplib_init PREFIX         sets SRC, BUILD, MILTER, CTL, WORLD and W (the
#                              world's folder, MTS_TEST_WORLD_DIR or
#                              /tmp/PREFIX.PID); skips the test unless root
#   maplib_netns PREFIX "$@"   outside a namespace: runs this script again
#                              in a new one (PREFIX-PID) and exits with its
#                              status; inside: returns
#   ok NAME RC                 one TAP line; counts n and fails
#   bail MSG                   "Bail out!" and exit
#   maplib_world_up            the world up in $W, its env sourced; at exit
#                              the milter ($MPID, if set), the processes in
#                              $MAPLIB_PIDS and the world stop
#   maplib_milter CONF SOCK LOG  mtasts-milter -f -c CONF on unix:SOCK, its
#                              output to LOG, its pid in MPID; returns once
#                              it listens (1 if it did not within 10 s)

# shellcheck disable=SC2034 # for the scripts that source this
maplib_init() {
    SRC=$(cd "$HERE/../.." && pwd)
    BUILD=${top_builddir:-$SRC}
    MILTER="$BUILD/milter/mtasts-milter"
    CTL="$BUILD/milter/mtasts-ctl"
    WORLD="$SRC/tests/world/world.sh"
    W=${MTS_TEST_WORLD_DIR:-/tmp/$1.$$}
    if [ "$(id -u)" -ne 0 ]; then
        echo "1..0 # SKIP the test world needs root (DNS on port 53, HTTPS on 443)"
        exit 0
    fi
}

n=0 fails=0
ok() {
    n=$((n + 1))
    if [ "$2" -eq 0 ]; then echo "ok $n - $1"; else echo "not ok $n - $1"; fails=$((fails + 1)); fi
}
bail() { echo "Bail out! $*"; exit 1; }

maplib_netns() {
    local prefix="$1" ns why rc
    shift
    [ -n "${MTS_IN_NETNS:-}" ] && return 0
    why=$("$WORLD" netns-check) || bail "$why"
    ns=$prefix-$$
    ip netns add "$ns" || bail "cannot create network namespace $ns"
    ip netns exec "$ns" ip link set lo up
    MTS_IN_NETNS=$ns ip netns exec "$ns" "$0" "$@"
    rc=$?
    ip netns del "$ns"
    exit $rc
}

MPID=
MAPLIB_PIDS=
maplib_cleanup() {
    [ -n "$MPID" ] && kill "$MPID" 2>/dev/null && wait "$MPID" 2>/dev/null
    # shellcheck disable=SC2086 # a list of pids
    [ -n "$MAPLIB_PIDS" ] && kill $MAPLIB_PIDS 2>/dev/null
    "$WORLD" down "$W" >/dev/null 2>&1
    rm -rf "$W"
}

maplib_world_up() {
    trap maplib_cleanup EXIT
    "$WORLD" up "$W" >"$W.up.log" 2>&1 || { sed 's/^/# /' "$W.up.log"; bail "world did not come up"; }
    rm -f "$W.up.log"
    # shellcheck disable=SC1091
    . "$W/env"
}

# ---- postfix-mta-sts-resolver, the peer (test_map_peer.sh, bench_map.sh) ----
#   maplib_peer_start DIR      mta-sts-daemon on unix:DIR/peer.sock (config
#                              DIR/peer.yml, log DIR/peer.log) resolving
#                              through the world's unbound and trusting the
#                              world's CA; PEER_PID is its pid. Needs the
#                              world's env. Returns 1 if no socket in 10 s.
#   maplib_ask SOCKET NAME KEY...
#                              asks each "NAME KEY" in turn on one connection
#                              (as one Postfix smtp process does) and prints
#                              "KEY<TAB>REPLY" (the netstring's contents, or
#                              "ERROR ..."), one line a key
PEER_PID=
maplib_peer_start() {
    local d=$1 i
    # cache_size: the daemon's default; timeout: its default (4 s)
    cat >"$d/peer.yml" <<EOT
path: "$d/peer.sock"
mode: 0666
default_zone:
  strict_testing: false
  timeout: ${MAPLIB_PEER_TIMEOUT:-4}
cache:
  type: internal
  options:
    cache_size: 10000
EOT
    rm -f "$d/peer.sock"
    # It resolves with aiodns (c-ares), which reads /etc/resolv.conf and has
    # no option for a name server: the world's resolv.conf is bind-mounted
    # over it in a mount namespace of the daemon's own (private: nothing
    # propagates back). aiohttp's TLS context loads OpenSSL's default paths,
    # which SSL_CERT_FILE replaces: it trusts the world's CA and nothing else.
    SSL_CERT_FILE="$MTS_WORLD_CA_FILE" unshare --mount --propagation private \
        sh -c 'mount --bind "$0" /etc/resolv.conf && exec mta-sts-daemon -c "$1"' \
        "$MTS_WORLD_RESOLV_CONF" "$d/peer.yml" >"$d/peer.log" 2>&1 </dev/null &
    PEER_PID=$!
    for ((i = 0; i < 100; i++)); do
        [ -S "$d/peer.sock" ] && return 0
        kill -0 "$PEER_PID" 2>/dev/null || break
        sleep 0.1
    done
    return 1
}

maplib_ask() {
    python3 - "$@" <<'EOT'
import socket
import sys

path, name, keys = sys.argv[1], sys.argv[2], sys.argv[3:]


def reply(s):
    buf = b""
    while not buf.endswith(b":"):
        c = s.recv(1)
        if not c or len(buf) > 8:
            raise OSError("no netstring length")
        buf += c
    n = int(buf[:-1])
    data = b""
    while len(data) < n + 1:
        c = s.recv(n + 1 - len(data))
        if not c:
            raise OSError("EOF inside the netstring")
        data += c
    if data[-1:] != b",":
        raise OSError("netstring without its comma")
    return data[:-1].decode("utf-8", "replace")


s = None
for key in keys:
    try:
        if s is None:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(30)
            s.connect(path)
        q = (name + " " + key).encode()
        s.sendall(str(len(q)).encode() + b":" + q + b",")
        r = reply(s)
    except (OSError, ValueError) as e:
        r = "ERROR " + str(e)
        s = None
    print(key + "\t" + r.replace("\n", "\\n"), flush=True)
EOT
}

maplib_milter() {
    local i
    rm -f "$2"
    "$MILTER" -f -c "$1" -p "unix:$2" >"$3" 2>&1 </dev/null &
    MPID=$!
    for ((i = 0; i < 100; i++)); do
        grep -q ' listening on ' "$3" 2>/dev/null && [ -S "$2" ] && return 0
        sleep 0.1
    done
    return 1
}
