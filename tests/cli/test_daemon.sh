#!/bin/sh
# test_daemon.sh - mtasts-milter as a daemon: it detaches, writes its pid
# file, opens its socket as root and then runs as the configured user, the
# socket is 0660 and the user's, SIGTERM stops it and removes the pid file
# and the socket (also when running as root, where libmilter leaves it); a
# second milter on a socket in use is refused; a stale socket left by a
# crash (kill -9) does not stop a restart; a corrupt cache file (random
# bytes, or cut short) is moved aside at start, as -n says it will be.
# Needs root (to drop privileges); skipped otherwise. No network is used:
# the milter only opens its socket and its cache.
set -u
MILTER="${top_builddir:-.}/milter/mtasts-milter"
if [ "$(id -u)" -ne 0 ]; then
    echo "1..0 # SKIP dropping privileges needs root"
    exit 0
fi
TMP=$(mktemp -d)
chmod 0755 "$TMP"
RUN="$TMP/run"
cleanup() {
    [ -s "$RUN/milter.pid" ] && kill "$(cat "$RUN/milter.pid")" 2>/dev/null
    rm -rf "$TMP"
}
trap cleanup EXIT
n=0 fails=0
ok() {
    n=$((n + 1))
    if [ "$2" -eq 0 ]; then echo "ok $n - $1"; else echo "not ok $n - $1"; fails=$((fails + 1)); fi
}
cat >"$TMP/milter.conf" <<CONF
socket = unix:$RUN/milter.sock
pid_file = $RUN/milter.pid
user = nobody
group = nogroup
cache_db = $TMP/state/cache.sqlite
resolv_conf = none
trust_anchor =
CONF
echo "1..25"

"$MILTER" -c "$TMP/milter.conf"
ok "starts as a daemon (the parent exits 0)" $?
i=0
while [ ! -S "$RUN/milter.sock" ] || [ ! -s "$RUN/milter.pid" ]; do
    i=$((i + 1)); [ $i -gt 50 ] && break; sleep 0.1
done
pid=$(cat "$RUN/milter.pid" 2>/dev/null)
[ -n "$pid" ] && kill -0 "$pid" 2>/dev/null
ok "writes its pid file, and that process runs" $?
[ "$(ps -o user= -p "$pid" | tr -d ' ')" = nobody ]
ok "runs as the configured user ($(ps -o user= -p "$pid"))" $?
[ "$(ps -o tty= -p "$pid" | tr -d ' ')" = "?" ]
ok "has detached from the terminal" $?
[ "$(stat -c '%a %U' "$RUN/milter.sock")" = "770 nobody" ] ||
    [ "$(stat -c '%a %U' "$RUN/milter.sock")" = "660 nobody" ]
ok "socket owned by the user, no access for others ($(stat -c '%a %U:%G' "$RUN/milter.sock"))" $?
sleep 0.5
[ -f "$TMP/state/cache.sqlite" ] && [ "$(stat -c %U "$TMP/state")" = nobody ]
ok "made its cache directory for the user, and opened the cache" $?
kill -TERM "$pid"
i=0
while kill -0 "$pid" 2>/dev/null; do i=$((i + 1)); [ $i -gt 100 ] && break; sleep 0.1; done
! kill -0 "$pid" 2>/dev/null
ok "SIGTERM stops it (within 10 s)" $?
[ ! -e "$RUN/milter.pid" ]
ok "and its pid file is removed" $?
[ ! -e "$RUN/milter.sock" ]
ok "and its socket is removed" $?

# As root in the foreground (no user option): libmilter removes its socket
# only when not root, so this is the milter's own doing.
sed -e '/^user/d' -e '/^group/d' -e '/^pid_file/d' "$TMP/milter.conf" >"$TMP/root.conf"
wait_socket() {
    i=0
    while [ ! -S "$RUN/milter.sock" ]; do i=$((i + 1)); [ $i -gt 300 ] && return 1; sleep 0.1; done
}
"$MILTER" -f -c "$TMP/root.conf" 2>"$TMP/root1.err" &
pid=$!
wait_socket
"$MILTER" -f -c "$TMP/root.conf" 2>"$TMP/second.err"
rc=$?
[ $rc -eq 1 ] && grep -q "is in use by a running process" "$TMP/second.err" && kill -0 "$pid" &&
    [ -S "$RUN/milter.sock" ]
ok "a second milter on a socket in use is refused and leaves it alone (exit $rc: $(tail -1 "$TMP/second.err"))" $?
start=$(date +%s%N)
kill -TERM "$pid"
wait "$pid"
rc=$?
end=$(date +%s%N)
echo "# SIGTERM to exit as root: $(( (end - start) / 1000000 )) ms"
[ $rc -eq 0 ]
ok "SIGTERM stops it as root, exit status 0 (got $rc)" $?
[ ! -e "$RUN/milter.sock" ]
ok "and as root its socket is removed too" $?

# A crash leaves the socket file: the next start removes it and listens.
"$MILTER" -f -c "$TMP/root.conf" 2>/dev/null &
pid=$!
wait_socket
kill -KILL "$pid"
wait "$pid" 2>/dev/null
[ -S "$RUN/milter.sock" ]
ok "kill -9 leaves a stale socket behind" $?
"$MILTER" -f -c "$TMP/root.conf" 2>"$TMP/restart.err" &
pid=$!
i=0
while ! grep -q "listening on" "$TMP/restart.err"; do
    i=$((i + 1)); [ $i -gt 300 ] && break; sleep 0.1
done
grep -q "removing the stale socket" "$TMP/restart.err" && grep -q "listening on" "$TMP/restart.err" &&
    kill -0 "$pid" 2>/dev/null
ok "a restart removes the stale socket and listens ($(grep -c . "$TMP/restart.err") log lines)" $?
kill -TERM "$pid"
wait "$pid"
[ ! -e "$RUN/milter.sock" ]
ok "and stops cleanly again" $?

# A corrupt cache file (random bytes, or a database cut short): -n says what
# start will do, and start does it: moves the file aside, with a warning,
# creates a fresh one and listens.
DB="$TMP/state/cache.sqlite"
corrupt_case() { # KIND: random | truncated
    # The previous case's log too: read before this milter's shell truncates
    # it, it would pass for this one's (a slow start, under ASan, lost that race).
    rm -f "$DB" "$DB"-wal "$DB"-shm "$DB".corrupt-* "$TMP/corrupt.err"
    if [ "$1" = random ]; then
        head -c 8192 /dev/urandom >"$DB"
    else
        sqlite3 "$DB" "CREATE TABLE t(x); WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1
            FROM c WHERE i < 3000) INSERT INTO t SELECT printf('%.300c', 'x') FROM c;"
        truncate -s $(( $(stat -c %s "$DB") / 2 )) "$DB"
    fi
    "$MILTER" -n -c "$TMP/root.conf" >"$TMP/n.out" 2>&1
    rc=$?
    [ $rc -eq 0 ] && grep -q "at start it will be moved aside to $DB.corrupt-" "$TMP/n.out"
    r=$?; ok "$1 cache: -n exits 0 and says start will move it aside ($(head -c 200 "$TMP/n.out"))" $r
    "$MILTER" -f -c "$TMP/root.conf" 2>"$TMP/corrupt.err" &
    pid=$!
    i=0
    while ! grep -q "listening on" "$TMP/corrupt.err" && kill -0 "$pid" 2>/dev/null; do
        i=$((i + 1)); [ $i -gt 300 ] && break; sleep 0.1
    done
    grep -q "cache $DB was corrupt: moved aside to $DB.corrupt-" "$TMP/corrupt.err" &&
        grep -q "listening on" "$TMP/corrupt.err" && kill -0 "$pid" 2>/dev/null
    r=$?; ok "$1 cache: start moves it aside with a warning and listens ($(grep -c . "$TMP/corrupt.err") log lines)" $r
    kill -TERM "$pid"
    wait "$pid"
    [ "$(sqlite3 "$DB" 'PRAGMA quick_check')" = ok ] && ls "$DB".corrupt-* >/dev/null 2>&1 &&
        "$MILTER" -n -c "$TMP/root.conf" 2>&1 | grep -vq warning
    ok "$1 cache: a fresh cache in its place, the old one kept aside, -n now content" $?
}
corrupt_case random
corrupt_case truncated

# On an inet socket, a hint at start when the route to it lacks quickack
# (read, never changed), and none when it has it. In a namespace of our own,
# so that the route is ours to set.
hint_case() { # NAME ROUTE-CMD...: runs the milter in a fresh namespace, prints its log
    local ns=mts-qa-$$-$1
    shift
    rm -f "$TMP/inet.err" # never read an earlier case's log
    ip netns add "$ns" 2>/dev/null || return 1
    ip netns exec "$ns" ip link set lo up
    if [ $# -gt 0 ] && ! ip netns exec "$ns" "$@"; then
        echo "# route change failed: $*"
        ip netns del "$ns"
        return 1
    fi
    sed -e 's|^socket = .*|socket = inet:12399@127.0.0.1|' "$TMP/root.conf" >"$TMP/inet.conf"
    ip netns exec "$ns" "$MILTER" -f -c "$TMP/inet.conf" 2>"$TMP/inet.err" &
    local p=$! i=0
    while ! grep -q "listening on" "$TMP/inet.err" && [ $i -lt 300 ]; do i=$((i + 1)); sleep 0.1; done
    kill "$p"; wait "$p"
    ip netns del "$ns"
}
if hint_case plain; then
    grep -q "hint: the route to 127.0.0.1 has no quickack attribute" "$TMP/inet.err" &&
        grep -q "ip route replace local 127.0.0.1 dev lo table local proto kernel scope host src 127.0.0.1 quickack 1" "$TMP/inet.err"
    ok "inet socket, route without quickack: a hint naming the command" $?
    hint_case set ip route change local 127.0.0.1 dev lo table local proto kernel scope host \
        src 127.0.0.1 quickack 1 &&
        grep -q "listening on" "$TMP/inet.err" && ! grep -q quickack "$TMP/inet.err"
    r=$?; ok "inet socket, route with quickack: no hint ($(tr "\n" ";" <"$TMP/inet.err" 2>/dev/null | head -c 300))" $r
else
    echo "ok 22 # SKIP cannot create a network namespace here"
    echo "ok 23 # SKIP cannot create a network namespace here"
    n=$((n + 2))
fi
# Root writes the pid file in the milter user's folder: a link left there
# by that user (here to a root-owned file) is replaced, never written through.
echo "root's secret" >"$TMP/victim"
mkdir -p "$RUN" && chown nobody "$RUN"
rm -f "$RUN/milter.pid"
ln -s "$TMP/victim" "$RUN/milter.pid"
# (a cache of its own: the cases above left root's in state/)
sed "s|^cache_db = .*|cache_db = $TMP/state2/cache.sqlite|" "$TMP/milter.conf" >"$TMP/pid.conf"
"$MILTER" -c "$TMP/pid.conf" 2>"$TMP/pid.err"
i=0
while [ ! -S "$RUN/milter.sock" ] || [ -L "$RUN/milter.pid" ] || [ ! -s "$RUN/milter.pid" ]; do
    i=$((i + 1)); [ $i -gt 50 ] && break; sleep 0.1
done
[ "$(cat "$TMP/victim")" = "root's secret" ]
ok "a symbolic link in place of the pid file is not written through ($(head -c 60 "$TMP/victim"))" $?
pid=$(cat "$RUN/milter.pid" 2>/dev/null)
[ ! -L "$RUN/milter.pid" ] && [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null
ok "the pid file is a file of its own holding the running milter's pid ($(head -c 200 "$TMP/pid.err"))" $?
[ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null
i=0
while [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; do i=$((i + 1)); [ $i -gt 100 ] && break; sleep 0.1; done
[ "$fails" -eq 0 ]
