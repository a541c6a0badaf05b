#!/bin/sh
# test_daemon.sh - mtasts-milter as a daemon: it detaches, writes its pid
# file, opens its socket as root and then runs as the configured user, the
# socket is 0660 and the user's, SIGTERM stops it and removes the pid file.
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
echo "1..8"

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
[ "$fails" -eq 0 ]
