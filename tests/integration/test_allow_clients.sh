#!/bin/bash
# test_allow_clients.sh - issue 19: the client allow-lists of inet:
# sockets, milter_allow_clients and map_allow_clients. With them set, a
# listed address connects and is served, another is never accepted (the
# kernel drops its SYN: the connect times out), loopback always may, and
# the milter still stops at once; with them empty, sockets listening
# beyond loopback are warned about at start; a malformed entry is a
# configuration error (mtasts-milter -n).
#
# Real processes in a network namespace of its own, whose lo also holds two
# addresses outside loopback's network (10.77.0.1, 10.77.0.2): the test
# world (for the map's answers), mtasts-milter on inet sockets, python3 as
# the clients. Needs root; skipped otherwise. TAP output.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/integration/maplib.sh
. "$HERE/maplib.sh"
maplib_init mts-allow
command -v python3 >/dev/null || { echo "1..0 # SKIP python3 is not installed"; exit 0; }
maplib_netns mts-allow "$@"
maplib_world_up
ip addr add 10.77.0.1/32 dev lo && ip addr add 10.77.0.2/32 dev lo &&
    ip -6 addr add fd00:77::1/128 dev lo nodad && ip -6 addr add fd00:77::2/128 dev lo nodad ||
    bail "cannot add the addresses to lo"
MPORT=18891 PPORT=18461

# probe KIND SRC DST PORT: "answer REPLY", "connected", "timeout" or "error ..."
probe() {
    python3 - "$@" <<'PY'
import socket, sys
kind, src, dst, port = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
s = socket.socket(socket.AF_INET6 if ":" in dst else socket.AF_INET, socket.SOCK_STREAM)
s.settimeout(3)
try:
    s.bind((src, 0))
    s.connect((dst, port))
except socket.timeout:
    print("timeout"); sys.exit(0)
except OSError as e:
    print("error", e); sys.exit(0)
if kind == "milter":
    print("connected"); sys.exit(0)
q = b"postfix enforce.test"
s.sendall(str(len(q)).encode() + b":" + q + b",")
buf = b""
try:
    while not buf.endswith(b",") or b":" not in buf:
        c = s.recv(4096)
        if not c:
            break
        buf += c
except OSError as e:
    print("error", e); sys.exit(0)
print("answer", buf.split(b":", 1)[-1][:-1].decode(errors="replace")[:40])
PY
}

start() { # CONF LOG
    "$MILTER" -f -c "$1" >"$2" 2>&1 </dev/null &
    MPID=$!
    for ((i = 0; i < 100; i++)); do
        grep -q 'policy map (socketmap) listening' "$2" 2>/dev/null && return 0
        kill -0 "$MPID" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}
stop() {
    local t0=$SECONDS rc
    kill "$MPID"
    wait "$MPID"
    rc=$?
    MPID=
    [ "$rc" -eq 0 ] && [ $((SECONDS - t0)) -le 3 ]
}
conf() { # OUT LINES...
    local out=$1
    shift
    { grep -v -E '^(#|socket[[:space:]]*=|map_socket[[:space:]]*=)' "$MTS_WORLD_CONF"
      echo "socket = inet:$MPORT@0.0.0.0"
      echo "map_socket = inet:$PPORT@0.0.0.0"
      printf '%s\n' "$@"; } >"$out"
}

echo "1..18"
conf "$W/allow.conf" "milter_allow_clients = 10.77.0.2" \
    "map_allow_clients = 10.77.0.2/32, 2001:db8::/32"
start "$W/allow.conf" "$W/allow.log"
ok "the milter starts with both allow-lists" $? || { sed 's/^/# /' "$W/allow.log"; bail "no start"; }
r=$(probe milter 10.77.0.2 10.77.0.2 $MPORT)
[ "$r" = connected ]; ok "milter socket, listed 10.77.0.2: connects ($r)" $?
r=$(probe milter 10.77.0.1 10.77.0.1 $MPORT)
[ "$r" = timeout ]; ok "milter socket, unlisted 10.77.0.1: never accepted ($r)" $?
r=$(probe milter 127.0.0.1 127.0.0.1 $MPORT)
[ "$r" = connected ]; ok "milter socket, loopback: connects ($r)" $?
r=$(probe map 10.77.0.2 10.77.0.2 $PPORT)
[[ "$r" == "answer OK secure"* ]]; ok "map socket, listed 10.77.0.2: answered ($r)" $?
r=$(probe map 10.77.0.1 10.77.0.2 $PPORT)
[ "$r" = timeout ]; ok "map socket, unlisted 10.77.0.1: never accepted ($r)" $?
grep -q 'accepts connections from loopback and the 2 entries of map_allow_clients only' "$W/allow.log" &&
    grep -q 'accepts connections from loopback and the 1 entry of milter_allow_clients only' "$W/allow.log" &&
    ! grep -q 'listens beyond loopback' "$W/allow.log"
ok "logged: both lists in force, no warning" $?
stop; ok "SIGTERM: stops at once, exit 0" $?

conf "$W/open.conf"
start "$W/open.conf" "$W/open.log"
ok "the milter starts without allow-lists" $?
grep -q 'the milter socket listens beyond loopback and milter_allow_clients is empty' "$W/open.log" &&
    grep -q 'the policy map listens beyond loopback and map_allow_clients is empty' "$W/open.log"
ok "without them, on 0.0.0.0: a warning for each socket" $?
r=$(probe map 10.77.0.1 10.77.0.2 $PPORT)
[[ "$r" == "answer OK secure"* ]]; ok "without them, any address is served ($r)" $?
stop

# IPv6: the map on inet6:PORT@::, one network listed
{ grep -v -E '^map_socket' "$W/open.conf"
  echo "map_socket = inet6:$PPORT@::"
  echo "map_allow_clients = fd00:77::2/127"; } >"$W/v6.conf"
start "$W/v6.conf" "$W/v6.log"
ok "the milter starts with an IPv6 map socket and list" $?
r=$(probe map fd00:77::2 fd00:77::2 $PPORT)
[[ "$r" == "answer OK secure"* ]]; ok "IPv6 map socket, listed fd00:77::2: answered ($r)" $?
r=$(probe map fd00:77::1 fd00:77::2 $PPORT)
[ "$r" = timeout ]; ok "IPv6 map socket, unlisted fd00:77::1: never accepted ($r)" $?
r=$(probe map ::1 ::1 $PPORT)
[[ "$r" == "answer OK secure"* ]]; ok "IPv6 map socket, loopback ::1: answered ($r)" $?
stop

conf "$W/bad.conf" "map_allow_clients = 10.0.0.0/33"
out=$("$MILTER" -n -c "$W/bad.conf" 2>&1)
rc=$?
[ $rc -ne 0 ] && grep -q 'map_allow_clients' <<<"$out" && grep -q 'the prefix must be 0 to 32' <<<"$out"
r=$?; ok "a malformed entry is refused by -n ($out)" $r
conf "$W/bad2.conf" "milter_allow_clients = mta.example"
out=$("$MILTER" -n -c "$W/bad2.conf" 2>&1)
[ $? -ne 0 ] && grep -q 'is not a network (ADDRESS or ADDRESS/PREFIX)' <<<"$out"
r=$?; ok "a name is refused by -n ($out)" $r
! grep -q 'AddressSanitizer\|runtime error\|ThreadSanitizer' "$W/allow.log" "$W/open.log" "$W/v6.log"
ok "no sanitizer report in the milter's log" $?
[ "$fails" -eq 0 ]
