# suite.sh - sourced by the test world's TAP suites (test_discover.sh,
# test_check.sh, test_hotpath.sh, test_probes.sh): the TAP helpers and the
# move into a network namespace of the suite's own, so that suites with the
# world's fixed loopback addresses run side by side and nothing leaves.
#
#	HERE=...; . "$HERE/suite.sh"
#	suite_enter_netns mts-name "$@"	# re-runs the script inside; returns there
#	ok "label" $status		# one TAP line; counts failures in $fails
#	bail "why"			# Bail out! and exit 1
#	suite_milter_start NAME PIDVAR	# $MILTER on $W/NAME.conf, $W/NAME.sock

# suite_enter_netns PREFIX ARGS...: outside a namespace, runs this script
# again inside a new one (loopback up) and exits with its status.
suite_enter_netns() {
    local prefix=$1 why ns rc
    shift
    [ -n "${MTS_IN_NETNS:-}" ] && return 0
    why=$("$HERE/world.sh" netns-check) || { echo "Bail out! $why"; exit 1; }
    ns=$prefix-$$
    ip netns add "$ns" || { echo "Bail out! cannot create network namespace $ns"; exit 1; }
    ip netns exec "$ns" ip link set lo up
    MTS_IN_NETNS=$ns ip netns exec "$ns" "$0" "$@"
    rc=$?
    ip netns del "$ns"
    exit $rc
}

n=0 fails=0
# In bash, pass a status saved before the label: `ok "x $(cmd)" $?` would
# pass the substitution's status, not the check's.
ok() {
    n=$((n + 1))
    if [ "$2" -eq 0 ]; then echo "ok $n - $1"; else echo "not ok $n - $1"; fails=$((fails + 1)); fi
}
bail() { echo "Bail out! $*"; exit 1; }

# suite_milter_start NAME PIDVAR [COMMAND...]: starts "$MILTER" -f -v (under
# COMMAND when given, e.g. unshare ...) with $W/NAME.conf
# on unix:$W/NAME.sock, its output in $W/NAME.log, and puts its pid in the
# variable named PIDVAR at once (so the caller's cleanup stops it even when
# it does not start); returns once the socket is there and the log says
# "listening on" (the cache is open and migrated by then), at most 10 s,
# else (or as soon as the milter has ended) shows the log and bails.
suite_milter_start() {
    local name=$1 pidvar=$2 pid i
    shift 2 # the rest: a command the milter runs under (e.g. unshare ...)
    "$@" "$MILTER" -f -v -c "$W/$name.conf" -p "unix:$W/$name.sock" >"$W/$name.log" 2>&1 </dev/null &
    pid=$!
    printf -v "$pidvar" '%s' "$pid"
    for ((i = 0; i < 100; i++)); do
        [ -S "$W/$name.sock" ] && grep -q 'listening on' "$W/$name.log" && return 0
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    sed 's/^/# /' "$W/$name.log"
    bail "milter $name did not start"
}
