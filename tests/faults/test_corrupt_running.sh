#!/bin/bash
# test_corrupt_running.sh - issue 12: the cache file damaged under a running
# milter, two ways: cut short (truncated to a third of its size) and its
# pages overwritten with random bytes (the header kept, so it still looks
# like SQLite). Each time: the milter must notice, move the file aside with
# a warning, carry on with a fresh cache (RCPTs answered, fresh domains
# enforce), and -n must agree with what is now on disk. (At start, both
# kinds are covered by tests/cli/test_daemon.sh.)
#
# Real processes in a network namespace of its own: the test world (DNS,
# HTTPS), mtasts-milter, miltload as the MTA. Asserts what the MTA sees and
# what is on disk. Needs root (the test world); skipped otherwise. TAP
# output.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../integration/maplib.sh
. "$HERE/../integration/maplib.sh" # ok, bail, the namespace and the world
# shellcheck source=faultlib.sh
. "$HERE/faultlib.sh"
maplib_init mts-fault-corrupt

fault_need_miltload
maplib_netns mts-fcorr "$@"
maplib_world_up

DB="$W/fault.sqlite"
CONF="$W/fault.conf"
{
    echo "cache_db = $DB"
    echo "enforcing_transports = smtp"
} | fault_conf "$CONF"
# rcpts OUT FIRST LAST: one message to dFIRST..dLAST.test; succeeds when
# every RCPT was answered and none deferred
rcpts() {
    local out=$1 n=$(($3 - $2 + 1))
    seq -w "$2" "$3" | sed 's/^/d/; s/$/.test/' >"$out.domains"
    "$LOAD" -s "unix:$W/m.sock" -t 30000 -c 1 -m 1 -r "$n" -D "$out.domains" >"$out" 2>&1 &&
        [ "$(field "$out" rcpts)" = "$n" ] && [ "$(field "$out" tempfail)" = 0 ]
}
moved() { grep -c "corrupt: moved aside" "$W/milter.log"; }

echo "1..11"
fault_milter_start "$CONF" "$W/m.sock" "$W/milter.log"
ok "the milter listens" $? || bail "the milter did not start: $(tail -5 "$W/milter.log")"
rcpts "$W/warm.out" 1 10
r=$?; ok "10 domains looked up and cached ($(replies "$W/warm.out"))" $r
sleep 1 # the rows are written after the answers

# damage KIND: the cache file under the running milter, then fresh domains
case_run() {
    local kind=$1 first=$2 m0 size i
    m0=$(moved)
    # Everything into the main file first, so that the damage is not
    # masked by newer copies of the pages in the WAL.
    sqlite3 "$DB" 'PRAGMA wal_checkpoint(TRUNCATE)' >/dev/null
    size=$(stat -c %s "$DB")
    if [ "$kind" = truncated ]; then
        truncate -s $((size / 3)) "$DB"
    else
        # pages from the second on: random (the 100-byte header stays)
        head -c $((size - 4096)) /dev/urandom | dd of="$DB" bs=4096 seek=1 conv=notrunc status=none
    fi
    rcpts "$W/$kind.out" "$first" $((first + 4))
    r=$?; ok "$kind while running: 5 RCPTs to fresh domains answered, none deferred ($(replies "$W/$kind.out"))" $r
    for ((i = 0; i < 20 && $(moved) == m0; i++)); do
        rcpts "$W/$kind.more.out" 1 10 >/dev/null # reads and writes until it is noticed
        sleep 0.1
    done
    [ "$(moved)" -gt "$m0" ] && ls "$DB".corrupt-* >/dev/null 2>&1
    r=$?; ok "$kind: the milter moved the cache aside with a warning ($(grep 'corrupt: moved' "$W/milter.log" | tail -n 1 | cut -c1-160))" $r
    rcpts "$W/$kind.after.out" $((first + 5)) $((first + 9))
    rc=$?
    sleep 1
    [ $rc -eq 0 ] && [ "$(sqlite3 "$DB" 'PRAGMA integrity_check' 2>&1)" = ok ] &&
        [ "$(sqlite3 "$DB" "SELECT count(*) FROM domains WHERE status = 'enforce'")" -ge 5 ]
    r=$?; ok "$kind: a fresh cache serves and fills again ($(replies "$W/$kind.after.out"))" $r
    "$MILTER" -n -c "$CONF" >"$W/$kind.n.out" 2>&1
    rc=$?
    [ $rc -eq 0 ] && ! grep -q 'moved aside' "$W/$kind.n.out"
    r=$?; ok "$kind: -n agrees: the cache on disk is fine (exit $rc)" $r
    [ $r -eq 0 ] || sed 's/^/# -n: /' "$W/$kind.n.out"
}
for kind in ${FAULT_CASES:-truncated random}; do
    case_run "$kind" $((first = ${first:-0} + 20))
    rm -f "$DB".corrupt-*
done
kill -0 "$MPID"
ok "the milter is still running" $?
grep -E 'warning|error' "$W/milter.log" | cut -c1-200 | sort | uniq -c | sort -rn | head -5 | sed 's/^/# log: /'
[ "$fails" -eq 0 ]
