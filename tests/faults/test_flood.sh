#!/bin/bash
# test_flood.sh - issue 12, finding 2: one sender must not hold up everyone.
# One sender ("mallory", 40 connections) floods RCPTs to fresh domains whose
# policy hosts accept TCP and never answer (NAME.flood.test in the test
# world); meanwhile another sender's ("victim") first RCPTs to fresh,
# healthy enforce domains must get their right answers (accepted: not
# unknown, none deferred), and mallory beyond its cap (lookups_per_sender)
# gets unknown's action (defer) at once, logged once, not once a recipient.
# A third sender on one connection meets lookups_per_connection.
#
# Real processes in a network namespace of its own: the test world (DNS,
# HTTPS, the hanging policy hosts), mtasts-milter, miltload as the MTA.
# Asserts answers; the one time bound (mallory's refusals well within the
# RCPT deadline) is generous. Needs root (the test world); skipped
# otherwise. TAP output.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../integration/maplib.sh
. "$HERE/../integration/maplib.sh" # ok, bail, the namespace and the world
# shellcheck source=faultlib.sh
. "$HERE/faultlib.sh"
maplib_init mts-fault-flood
DEADLINE_MS=3000
PER_SENDER=8
PER_CONN=2
FLOOD_CONNS=40

fault_need_miltload
LOAD_TIMEOUT_MS=60000
maplib_netns mts-flood "$@"
maplib_world_up

CONF="$W/flood.conf"
{
    echo "cache_db = $W/flood.sqlite"
    echo "enforcing_transports = smtp"
    echo "rcpt_deadline_ms = ${DEADLINE_MS}ms"
    # the hanging lookups end (failed) after this; long enough to outlast
    # every step below, short enough for the milter to stop soon after
    echo "fetch_timeout_ms = 12s"
    echo "fetch_connect_timeout_ms = 12s" # it covers the TLS handshake that hangs
    echo "lookups_per_sender = $PER_SENDER"
    echo "lookups_per_connection = $PER_CONN"
    echo "act_on = all" # the unauthenticated client too
} | fault_conf "$CONF"
# fresh healthy enforce domains: 20 before the flood, 20 during it
seq -w 1 20 | sed 's/^/d/; s/$/.test/' >"$W/victim-before"
seq -w 21 40 | sed 's/^/d/; s/$/.test/' >"$W/victim-during"
# 200 distinct hanging domains (40 connections x 5 RCPTs), then 5 more
seq -w 1 200 | sed 's/^/f/; s/$/.flood.test/' >"$W/flood"
seq -w 201 205 | sed 's/^/f/; s/$/.flood.test/' >"$W/flood-more"
seq -w 1 5 | sed 's/^/c/; s/$/.flood.test/' >"$W/carol"
seq -w 1 10 | sed 's/^/u/; s/$/.flood.test/' >"$W/anon"

echo "1..11"
maplib_milter "$CONF" "$W/m.sock" "$W/milter.log"
ok "the milter listens" $? || bail "the milter did not start: $(tail -5 "$W/milter.log")"

ms() { awk -v u="${1:-0}" 'BEGIN {printf "%.1f ms", u / 1000}'; }

# 1. No flood: the victim's first RCPTs to fresh domains.
load "$W/before.out" -a victim -c 4 -m 1 -r 5 -D "$W/victim-before"
rc=$?
[ $rc -eq 0 ] && [ "$(field "$W/before.out" continue)" = 20 ] &&
    [ "$(field "$W/before.out" tempfail)" = 0 ]
r=$?; ok "no flood: the victim's 20 first RCPTs to fresh domains accepted ($(replies "$W/before.out"))" $r
echo "# no flood: victim p50 $(ms "$(field "$W/before.out" rcpt_p50_us)"), slowest $(ms "$(field "$W/before.out" rcpt_max_us)")"

# 2. The flood: mallory, 40 connections, 200 fresh hanging domains; and
# carol, one connection, 5 more (the per-connection cap).
load "$W/flood.out" -a mallory -c "$FLOOD_CONNS" -m 1 -r 5 -D "$W/flood" &
FLOOD=$!
load "$W/carol.out" -a carol -c 1 -m 1 -r 5 -D "$W/carol" &
CAROL=$!
# and an unauthenticated client (127.0.0.1), 10 connections of one RCPT
load "$W/anon.out" -A -c 10 -m 1 -r 1 -D "$W/anon" &
ANON=$!
MAPLIB_PIDS="$FLOOD $CAROL $ANON"
# until mallory holds its cap: its first refusal is logged
for ((i = 0; i < 100; i++)); do
    grep -q 'sender mallory has' "$W/milter.log" && break
    sleep 0.1
done
grep -q 'sender mallory has' "$W/milter.log"
ok "the flood is on: mallory reached lookups_per_sender = $PER_SENDER" $?

# 3. During the flood: the victim's first RCPTs to other fresh domains.
load "$W/during.out" -a victim -c 4 -m 1 -r 5 -D "$W/victim-during"
rc=$?
[ $rc -eq 0 ] && [ "$(field "$W/during.out" continue)" = 20 ] &&
    [ "$(field "$W/during.out" tempfail)" = 0 ]
r=$?; ok "flood: the victim's 20 first RCPTs to fresh domains accepted, none deferred ($(replies "$W/during.out"))" $r
echo "# flood: victim p50 $(ms "$(field "$W/during.out" rcpt_p50_us)"), slowest $(ms "$(field "$W/during.out" rcpt_max_us)")"

# 4. Mallory beyond its cap: unknown's action (defer) at once, not at the
# deadline (its lookups in flight hang for fetch_timeout_ms).
load "$W/more.out" -a mallory -c 1 -m 1 -r 5 -D "$W/flood-more"
rc=$?
max=$(field "$W/more.out" rcpt_max_us)
[ $rc -eq 0 ] && [ "$(field "$W/more.out" tempfail)" = 5 ] && [ -n "$max" ] &&
    awk -v m="$max" -v b="$((DEADLINE_MS * 1000 / 2))" 'BEGIN {exit !(m + 0 < b + 0)}'
r=$?; ok "mallory beyond its cap: 5 new domains deferred (unknown) at once, slowest $(ms "$max") (deadline $DEADLINE_MS ms) ($(replies "$W/more.out"))" $r
# the victim still gets a cached answer for what it asked before
load "$W/again.out" -a victim -c 1 -m 1 -r 5 -D "$W/victim-before"
[ $? -eq 0 ] && [ "$(field "$W/again.out" continue)" = 5 ]
r=$?; ok "flood: the victim's known domains still accepted ($(replies "$W/again.out"))" $r

wait "$FLOOD"
rc=$?
[ $rc -eq 0 ] && [ "$(field "$W/flood.out" rcpts)" = 200 ] && [ "$(field "$W/flood.out" tempfail)" = 200 ]
r=$?; ok "the flood's 200 RCPTs were all answered: deferred, unknown ($(replies "$W/flood.out"))" $r
wait "$CAROL"
rc=$?
[ $rc -eq 0 ] && [ "$(field "$W/carol.out" tempfail)" = 5 ] &&
    grep -q "connection [0-9]* has $PER_CONN lookups of new domains in flight (lookups_per_connection)" \
        "$W/milter.log"
r=$?; ok "one connection's hanging domains: deferred, lookups_per_connection = $PER_CONN met ($(replies "$W/carol.out"))" $r

wait "$ANON"
rc=$?
[ $rc -eq 0 ] && [ "$(field "$W/anon.out" tempfail)" = 10 ] &&
    grep -q "sender 127.0.0.1 has $PER_SENDER lookups" "$W/milter.log"
r=$?; ok "an unauthenticated sender is capped by its client address ($(replies "$W/anon.out"))" $r

MAPLIB_PIDS=
# Refusals are logged once a minute per sender, not once a recipient.
lines=$(grep -c 'sender mallory has' "$W/milter.log")
[ "$lines" -eq 1 ]
ok "mallory's refusals logged once a minute, not once a recipient ($lines line(s))" $?
kill -0 "$MPID"
ok "the milter is still running" $?
grep -E 'warning|error' "$W/milter.log" | sed 's/^[^:]*: //' | sort | uniq -c | sort -rn | head -5 | sed 's/^/# log: /'
[ "$fails" -eq 0 ]
