#!/bin/bash
# test_probe_starve.sh - issue 17: a probe queue no sender can own. One
# sender's RCPTs to synflood.test, whose 32 MX names point into a /24 that
# drops SYNs (every probe there lasts probe_timeout_ms), do not hold back
# another sender's first RCPT to a healthy fresh domain (goodmx.test): its
# probe runs beside them and the RCPT is accepted within its deadline.
# What keeps it so: only probe_hosts_per_domain of the 32 hosts are probed,
# the jobs are charged to the sender (probes_per_sender), and a job whose
# network is at probe_network_concurrency is parked, never held on a worker.
#
# The SYN-dropping network: in the test's namespace, 10.60.0.0/24 routed to
# a veth whose peer has no address, with a static neighbour for each host,
# so that every SYN leaves and nothing ever answers.
#
# Real processes in a network namespace of its own: the test world (DNS,
# HTTPS, SMTP), mtasts-milter, miltload as the MTA (two senders: -a).
# Asserts answers. Needs root (the test world); skipped otherwise. TAP.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../integration/maplib.sh
. "$HERE/../integration/maplib.sh" # ok, bail, the namespace and the world
# shellcheck source=faultlib.sh
. "$HERE/faultlib.sh"
maplib_init mts-fault-starve
DEADLINE_MS=4000

fault_need_miltload
maplib_netns mts-starve "$@"
maplib_world_up

# The /24 that drops SYNs (the world's DNS names 32 MX hosts in it).
NET=${MTS_WORLD_SYNDROP_NET:-10.60.0}
ip link add mtsdrop0 type veth peer name mtsdrop1 &&
    ip addr add "$NET.254/24" dev mtsdrop0 &&
    ip link set mtsdrop0 up && ip link set mtsdrop1 up ||
    bail "cannot make the SYN-dropping network"
for i in $(seq 1 32); do
    ip neigh replace "$NET.$i" lladdr 02:00:00:00:3c:01 dev mtsdrop0 nud permanent
done

DB="$W/starve.sqlite"
CONF="$W/starve.conf"
{
    echo "cache_db = $DB"
    echo "enforcing_transports = smtp"
    echo "rcpt_deadline_ms = ${DEADLINE_MS}ms"
    echo "act_on = all"
    echo "mx_probes = yes"
    echo "probe_timeout_ms = 8s"
    echo "probe_concurrency = 4"
    echo "probe_network_concurrency = 2"
    # The world's loopback MX hosts, and the SYN-dropping network (both not
    # globally routable: probes reach them only when allowed).
    echo "probe_allow_networks = 127.0.0.0/8, $NET.0/24"
} | fault_conf "$CONF"
printf '%s\n' synflood.test >"$W/flood"
echo goodmx.test >"$W/good"

echo "1..4"
maplib_milter "$CONF" "$W/m.sock" "$W/milter.log"
ok "the milter listens" $? || bail "the milter did not start: $(tail -5 "$W/milter.log")"

# Sender mallory: 4 connections, RCPTs to synflood.test (each waits its
# deadline: its probes never end in time), for about 12 s.
LOAD_TIMEOUT_MS=60000 load "$W/flood.out" -a mallory -c 4 -m 3 -r 1 -D "$W/flood" &
FLOOD=$!
sleep 2
# Sender alice, meanwhile: her first RCPT to a fresh healthy domain.
load "$W/good.out" -a alice -c 1 -m 1 -r 1 -D "$W/good"
[ $? -eq 0 ] && [ "$(field "$W/good.out" continue)" = 1 ]
r=$?; ok "alice's first RCPT to fresh goodmx.test while mallory's probes hang: accepted ($(replies "$W/good.out"))" $r
echo "# alice's first RCPT: $(grep -o 'rcpt_max_us=[0-9.]*' "$W/good.out" | head -n 1)"
wait "$FLOOD"
[ "$(field "$W/flood.out" tempfail)" -ge 1 ] && [ "$(field "$W/flood.out" continue)" = 0 ]
r=$?; ok "mallory's RCPTs to synflood.test: deferred at the deadline, none accepted ($(replies "$W/flood.out"))" $r

# Of synflood.test's 32 MX hosts, at most probe_hosts_per_domain (8) were
# probed at all, however often mallory asked (their probes end by now).
sleep 9
n_logged=$(grep -o "probe mx[0-9]*\.synflood\.test" "$W/milter.log" | sort -u | wc -l)
hosts=$(sqlite3 "$DB" "SELECT count(DISTINCT host) FROM tls_probes WHERE host LIKE '%.synflood.test'" 2>/dev/null || echo 0)
[ "$n_logged" -le 8 ] && [ "${hosts:-0}" -le 8 ]
ok "at most 8 of synflood.test's 32 MX hosts probed ($n_logged logged, $hosts in the cache)" $?
kill "$MPID" 2>/dev/null
wait "$MPID" 2>/dev/null
[ "$fails" -eq 0 ]
