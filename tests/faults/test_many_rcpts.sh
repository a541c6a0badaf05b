#!/bin/bash
# test_many_rcpts.sh - issue 12: one message with 10,000 recipients over 150
# domains (50 with an enforce policy, 100 that do not exist). Every RCPT
# must be answered; the "more than 100 recipient domains" warning comes
# once for the message (it used to come 9,900 times); the tag headers at
# EOM are well-formed and bounded (at most 100, one per domain, each a
# short line); the milter's memory stays bounded and it serves afterwards.
#
# Real processes in a network namespace of its own: the test world (DNS,
# HTTPS), mtasts-milter, miltload as the MTA. Asserts what the MTA sees.
# Needs root (the test world); skipped otherwise. TAP output.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../integration/maplib.sh
. "$HERE/../integration/maplib.sh" # ok, bail, the namespace and the world
# shellcheck source=faultlib.sh
. "$HERE/faultlib.sh"
maplib_init mts-fault-rcpts
RCPTS=10000 RSS_GROWTH_KB=65536 MAX_HEADER_LINE=512

fault_need_miltload
maplib_netns mts-frcpt "$@"
maplib_world_up

CONF="$W/fault.conf"
{
    echo "cache_db = $W/fault.sqlite"
    echo "enforcing_transports = smtp"
} | fault_conf "$CONF"
{
    seq -w 1 50 | sed 's/^/d/; s/$/.test/'
    seq -w 1 100 | sed 's/^/nx/; s/$/.test/'
} >"$W/domains"
rss() { awk '/^VmRSS:/ {print $2}' "/proc/$MPID/status"; }

echo "1..8"
fault_milter_start "$CONF" "$W/m.sock" "$W/milter.log"
ok "the milter listens" $? || bail "the milter did not start: $(tail -5 "$W/milter.log")"
# Every domain looked up once first, so the big message is about the
# message, not about 150 cold lookups racing the RCPT deadline.
# (Two messages of 75: no message of the warm-up has more than 100 domains.)
"$LOAD" -s "unix:$W/m.sock" -c 1 -m 2 -r 75 -D "$W/domains" >"$W/warm.out" 2>&1
rss0=$(rss)

"$LOAD" -s "unix:$W/m.sock" -t 60000 -c 1 -m 1 -r "$RCPTS" -D "$W/domains" --headers "$W/headers" \
    >"$W/big.out" 2>&1
rc=$?
[ $rc -eq 0 ] && [ "$(field "$W/big.out" rcpts)" = "$RCPTS" ] && [ "$(field "$W/big.out" tempfail)" = 0 ]
r=$?; ok "$RCPTS RCPTs in one message all answered, none deferred ($(replies "$W/big.out"))" $r
nwarn=$(grep -c "more than 100 recipient domains" "$W/milter.log")
[ "$nwarn" -eq 1 ]
r=$?; ok "one \"more than 100 recipient domains\" warning for the message ($nwarn)" $r
hn=$(grep -c . "$W/headers") hdoms=$(grep -o 'domain=[^;]*' "$W/headers" | sort -u | wc -l)
[ "$hn" -ge 1 ] && [ "$hn" -le 100 ] && [ "$hdoms" -eq "$hn" ]
r=$?; ok "at most 100 tag headers, one per domain ($hn headers, $hdoms domains)" $r
long=$(awk -v m="$MAX_HEADER_LINE" 'length($0) > m' "$W/headers" | wc -l)
bad=$(grep -cvE '^[A-Za-z0-9-]+: domain=[a-z0-9.-]+; status=(enforce|testing|none|absent|failed|unknown)(; [a-z-]+=[A-Za-z0-9._-]+)*$' "$W/headers")
[ "$long" -eq 0 ] && [ "$bad" -eq 0 ] && [ "$(wc -c <"$W/headers")" -le $((100 * MAX_HEADER_LINE)) ]
r=$?; ok "every tag header well-formed and under $MAX_HEADER_LINE bytes ($bad malformed, $long long; $(wc -c <"$W/headers") bytes in all)" $r
[ "$bad" -eq 0 ] || grep -vE '^[A-Za-z0-9-]+: domain=' "$W/headers" | head -3 | sed 's/^/# header: /'
rss1=$(rss)
if grep -q libasan "/proc/$MPID/maps"; then
    # AddressSanitizer keeps freed memory in quarantine (up to 256 MB): the
    # resident size then measures ASan, not the milter.
    n=$((n + 1))
    echo "ok $n - memory bounded: resident $rss0 kB before, $rss1 kB after # SKIP under AddressSanitizer"
else
    [ $((rss1 - rss0)) -le "$RSS_GROWTH_KB" ]
    r=$?; ok "memory bounded: resident $rss0 kB before the message, $rss1 kB after" $r
fi
"$LOAD" -s "unix:$W/m.sock" -c 1 -m 1 -r 5 -d d01.test,d02.test >"$W/after.out" 2>&1
[ $? -eq 0 ] && [ "$(field "$W/after.out" tempfail)" = 0 ]
r=$?; ok "the milter serves the next message ($(replies "$W/after.out"))" $r
grep -c 'recipient(s) beyond 100 domains got no tag header' "$W/milter.log" >"$W/beyond"
[ "$(cat "$W/beyond")" -eq 1 ]
r=$?; ok "EOM says once how many recipients went untagged ($(grep -o '[0-9]* recipient(s) beyond 100 domains' "$W/milter.log" | head -n 1))" $r
grep -E 'warning|error' "$W/milter.log" | cut -c1-200 | sort | uniq -c | sort -rn | head -5 | sed 's/^/# log: /'
[ "$fails" -eq 0 ]
