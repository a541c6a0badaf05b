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
