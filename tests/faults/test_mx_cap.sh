#!/bin/bash
# test_mx_cap.sh - issue 12: the caps on fresh lookups (lookups_per_sender,
# lookups_per_connection) count a recipient's cold MX query too, not only a
# new domain's policy. A connection at its cap (one lookup hanging) sends an
# RCPT to a domain whose policy is cached but whose MX set is not: its MX
# hosts are not looked up (unknown's action, defer), and the milter says
# why; another connection's RCPT to that domain looks them up and passes.
#
# Real processes in a network namespace of its own: the test world (DNS,
# HTTPS, a hanging policy host), mtasts-milter, miltload as the MTA, sqlite3
# as another process. Asserts answers. Needs root (the test world); skipped
# otherwise. TAP output.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../integration/maplib.sh
. "$HERE/../integration/maplib.sh" # ok, bail, the namespace and the world
# shellcheck source=faultlib.sh
. "$HERE/faultlib.sh"
maplib_init mts-fault-mxcap
DEADLINE_MS=3000

fault_need_miltload
maplib_netns mts-mxcap "$@"
maplib_world_up

DB="$W/mxcap.sqlite"
CONF="$W/mxcap.conf"
{
    echo "cache_db = $DB"
    echo "enforcing_transports = smtp"
    echo "rcpt_deadline_ms = ${DEADLINE_MS}ms"
    # the hanging lookup holds the connection's one slot this long
    echo "fetch_timeout_ms = 8s"
    echo "fetch_connect_timeout_ms = 8s"
    echo "lookups_per_sender = 0"
    echo "lookups_per_connection = 1"
    echo "act_on = all"
} | fault_conf "$CONF"
echo d01.test >"$W/known"
# one connection: a new domain whose policy host hangs, then the known one
printf '%s\n' f1.flood.test d01.test >"$W/capped"

echo "1..5"
maplib_milter "$CONF" "$W/m.sock" "$W/milter.log"
ok "the milter listens" $? || bail "the milter did not start: $(tail -5 "$W/milter.log")"

load "$W/warm.out" -c 1 -m 1 -r 1 -D "$W/known"
[ $? -eq 0 ] && [ "$(field "$W/warm.out" continue)" = 1 ]
r=$?; ok "d01.test accepted: its policy and MX set are cached ($(replies "$W/warm.out"))" $r

# Another process forgets the MX set; the milter's memory follows the
# shared cache (its data version), so the set is cold again, the policy not.
for ((i = 0; i < 50; i++)); do
    [ "$(sqlite3 "$DB" "SELECT count(*) FROM mx_sets WHERE domain = 'd01.test'")" = 1 ] && break
    sleep 0.1
done
sqlite3 "$DB" "DELETE FROM mx_sets WHERE domain = 'd01.test'" &&
    [ "$(sqlite3 "$DB" "SELECT count(*) FROM mx_sets WHERE domain = 'd01.test'")" = 0 ] &&
    [ "$(sqlite3 "$DB" "SELECT has_policy FROM domains WHERE domain = 'd01.test'")" = 1 ]
ok "the MX set of d01.test removed from the shared cache, its policy kept" $?

load "$W/capped.out" -c 1 -m 1 -r 2 -D "$W/capped"
[ $? -eq 0 ] && [ "$(field "$W/capped.out" tempfail)" = 2 ] &&
    grep -q 'connection [0-9]* has 1 lookups of new domains in flight (lookups_per_connection)' \
        "$W/milter.log"
r=$?; ok "a connection at lookups_per_connection: its cold MX query is not made, deferred ($(replies "$W/capped.out"))" $r

load "$W/other.out" -c 1 -m 1 -r 1 -D "$W/known"
[ $? -eq 0 ] && [ "$(field "$W/other.out" continue)" = 1 ]
r=$?; ok "another connection: the MX hosts of d01.test looked up, accepted ($(replies "$W/other.out"))" $r
[ "$fails" -eq 0 ]
