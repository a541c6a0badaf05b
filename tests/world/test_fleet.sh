#!/bin/bash
# test_fleet.sh - issue 20: three milters, each with its own SQLite file,
# share what they learn through one real redis-server (unix socket in the
# test's directory, started and stopped by PID), against the real test world.
#
#   - 20 fresh domains asked on all three at once: 20 policy fetches in
#     all (nginx's access log), not 60; the other hosts' rows say "fleet".
#   - a bumped policy id learnt by one host (mtasts-ctl lookup --recheck on
#     A's file) reaches B's and C's memory and file within a second (pub/sub),
#     with no fetch of theirs.
#   - Redis stopped under load: every RCPT answered, none with an error,
#     none past its deadline, the same verdicts; restarted: what the hosts
#     learnt meanwhile is written to Redis within seconds (resynchronised),
#     and the link recovers by itself (rows reach Redis again).
#   - a value planted without the fleet key, and one signed but out of range,
#     are ignored with a warning: the host fetches for itself.
#   - MX sets: the 20 fresh domains' MX RRsets resolved once each for the
#     fleet (the world's unbound log: 20 MX queries, not 60); an MX set
#     planted without the key is ignored with a warning.
#   - a message of no known shape on the channel is ignored with a warning,
#     and the next real change still arrives.
#   - MX probes (mx_probes = yes, milters restarted): 6 fresh domains whose
#     MX hosts have 7 addresses asked on all three at once: one probe per
#     address in all (the world's smtp.log), not three; the rows are in
#     Redis. A changed result (grade and DANE outcome) published under
#     the fleet key reaches B's and C's memory within a second.
#   - TLSA results: a probe's secure TLSA answer is in Redis, signed; a
#     value planted for a host of the unsigned zone
#     insecure.test that claims a secure TLSA RRset (it would make the
#     host's DANE fail) is refused (bad HMAC) by a keyed milter, and never
#     read by a milter without fleet_key_file; both see DANE none. That
#     milter also refuses, with a warning, an unsigned MX set claiming
#     DNSSEC.
#
# Needs root (the test world) and redis-server; skipped otherwise. TAP output.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
BUILD=$(cd "${top_builddir:-$HERE/../..}" && pwd)
MILTER="$BUILD/milter/mtasts-milter"
CTL="$BUILD/milter/mtasts-ctl"
W=${MTS_TEST_WORLD_DIR:-/tmp/mts-test-fleet.$$}

if [ "$(id -u)" -ne 0 ]; then
    echo "1..0 # SKIP the test world needs root (DNS on port 53, HTTPS on 443)"
    exit 0
fi
if ! command -v redis-server >/dev/null || ! command -v redis-cli >/dev/null; then
    echo "1..0 # SKIP redis-server not installed (.ci/install-deps)"
    exit 0
fi
. "$HERE/suite.sh"
suite_enter_netns mts-fleet "$@"

APID= BPID= CPID= DPID= RPID=
cleanup() {
    local p
    for p in $APID $BPID $CPID $DPID $RPID; do
        kill "$p" 2>/dev/null && wait "$p" 2>/dev/null
    done
    "$HERE/world.sh" down "$W" >/dev/null 2>&1
    rm -rf "$W"
}
trap cleanup EXIT
"$HERE/world.sh" up "$W" >"$W.up.log" 2>&1 || { sed 's/^/# /' "$W.up.log"; bail "world did not come up"; }
rm -f "$W.up.log"
# shellcheck disable=SC1091
. "$W/env"
SOCK="$W/redis.sock"
head -c 32 /dev/urandom >"$W/fleet.key"

redis_start() {
    redis-server --port 0 --unixsocket "$SOCK" --unixsocketperm 700 --save "" \
        --appendonly no --dir "$W" --logfile "$W/redis.log" --daemonize no &
    RPID=$!
    for ((i = 0; i < 50; i++)); do
        redis-cli -s "$SOCK" ping 2>/dev/null | grep -q PONG && return 0
        sleep 0.1
    done
    bail "redis-server did not start"
}
redis_stop() {
    kill "$RPID" && wait "$RPID" 2>/dev/null
    RPID=
}
rc() { redis-cli -s "$SOCK" "$@"; }
fleet_json() { # fleet_json NAME KEY: status --json's fleet.KEY of milter NAME
    "$CTL" -c "$W/$1.conf" status --json 2>/dev/null |
        python3 -c 'import json, sys; print(json.load(sys.stdin)["fleet"][sys.argv[1]])' "$2"
}

conf() { # conf NAME [nokey] [LINE...]
    local name=$1 key=yes
    shift
    [ "${1:-}" = nokey ] && { key=no; shift; }
    {
        grep -v -e '^#' -e '^cache_db' "$MTS_WORLD_CONF"
        echo "cache_db = $W/$name.sqlite"
        echo "enforcing_transports = smtp"
        echo "rcpt_deadline_ms = 5s"
        case " $* " in *" mx_probes "*) ;; *) echo "mx_probes = no" ;; esac
        echo "stats = no"
        echo "fleet_redis = unix:$SOCK"
        [ "$key" = no ] || echo "fleet_key_file = $W/fleet.key"
        echo "fleet_timeout_ms = 100ms"
        echo "metrics_socket = unix:$W/$name.metrics"
        for l in "$@"; do echo "$l"; done
    } >"$W/$name.conf"
}
start() { # start NAME [LINE...]: sets the pid in ${NAME}PID
    conf "$@"
    # Each milter is a host of its own name (milter-NAME, a UTS namespace):
    # what it shares carries that name, the others keep it with the rows.
    suite_milter_start "$1" "${1^^}PID" unshare --uts sh -c 'hostname "$0" && exec "$@"' "milter-$1"
}
send() { # send NAME OUT ADDRESS...: one message through milter NAME
    local m=$1 out=$2
    shift 2
    MT_SOCKET="$W/$m.sock" python3 "$HERE/metrics_client.py" rcpts "$@" >"$out" 2>&1
    [ "$(grep -c . "$out")" -eq $# ]
}
# fetches REGEX: policy fetches of the domains matching REGEX so far
fetches() {
    grep -cE "host=mta-sts\\.($1)\\.test \"GET /\\.well-known/mta-sts\\.txt" \
        "$W/nginx-access.log"
}
addrs() { # addrs FROM TO: bob@dFROM.test .. bob@dTO.test
    local i
    for i in $(seq -w "$1" "$2"); do echo "bob@d$i.test"; done
}

echo "1..52"
redis_start
start a
start b
start c

# ---- 20 fresh domains on three hosts at once: 20 fetches ---------------------
together() { # together "NAME OUT FROM TO"...: messages sent at once, waited for
    local p pids=
    for p in "$@"; do
        # shellcheck disable=SC2086
        set -- $p
        # shellcheck disable=SC2046
        send "$1" "$2" $(addrs "$3" "$4") &
        pids="$pids $!"
    done
    # shellcheck disable=SC2086
    wait $pids
}
together "a $W/a1.out 01 20" "b $W/b1.out 01 20" "c $W/c1.out 01 20"
ok "60 RCPTs answered by the three hosts" \
    "$([ "$(cat "$W"/[abc]1.out | grep -c ' CONTINUE')" = 60 ]; echo $?)"
sleep 0.5
got=$(fetches 'd(0[1-9]|1[0-9]|20)')
ok "20 domains on 3 hosts: 20 policy fetches in all (got $got)" "$([ "$got" = 20 ]; echo $?)"
ok "every domain's row is in Redis" \
    "$([ "$(rc --scan --pattern 'mtasts:policy:d*' | grep -c .)" = 20 ]; echo $?)"
got=0
for m in a b c; do
    got=$((got + $(sqlite3 "$W/$m.sqlite" "SELECT count(*) FROM domains WHERE domain LIKE 'd%.test'
                                       AND mode = 'enforce'")))
done
# MX queries the world's resolver answered for the domains matching REGEX
mxq() { grep -cE " ($1)\.test\. MX IN" "$MTS_WORLD_UNBOUND_LOG"; }
got=$(mxq 'd(0[1-9]|1[0-9]|20)')
# One per MX set; a host whose wait for the holder ran out (half of what its
# RCPT had left) resolves for itself, by design: under a loaded machine one
# or two more. Without the fleet: 60.
ok "20 domains on 3 hosts: an MX resolution per MX set, not per host (got $got: 20, at most 23)" \
    "$([ "$got" -ge 20 ] && [ "$got" -le 23 ]; echo $?)"
ok "every domain's MX set is in Redis" \
    "$([ "$(rc --scan --pattern 'mtasts:mx:d*' | grep -c .)" = 20 ]; echo $?)"
got=0
for m in a b c; do
    got=$((got + $(sqlite3 "$W/$m.sqlite" "SELECT count(*) FROM mx_sets WHERE domain LIKE 'd%.test'
                                       AND hosts = 'mx1.' || domain AND dnssec = 'secure'")))
done
ok "each host keeps the 20 MX sets, secure, in its own file (got $got of 60)" \
    "$([ "$got" = 60 ]; echo $?)"
ok "each host keeps the 20 rows in its own file (got $got of 60)" "$([ "$got" = 60 ]; echo $?)"
"$CTL" -c "$W/c.conf" cache flush d05.test >/dev/null 2>&1
src=$("$CTL" -c "$W/c.conf" lookup --json d05.test | jq -r .source)
ok "a row another host learnt is shown as from the fleet (got $src)" "$([ "$src" = fleet ]; echo $?)"
by=$("$CTL" -c "$W/c.conf" lookup --json d05.test | jq -r .fleet_host)
# The learner: A or B if its file keeps the row as its own (no source), else C.
learner=milter-c
for m in a b; do
    [ "$(sqlite3 "$W/$m.sqlite" "SELECT ifnull(source, 'NULL') FROM domains WHERE domain = 'd05.test'")" = NULL ] &&
        learner=milter-$m
done
ok "... with the name of the host that learnt it (got $by, learnt by $learner)" \
    "$([ "$by" = "$learner" ]; echo $?)"

# ---- which facts came from the fleet, kept with the rows (schema 7) ----------
send a "$W/a8.out" bob@d47.test && send b "$W/b8.out" bob@d47.test
ok "d47.test asked on A, then on B" $?
explain() { "$CTL" -c "$W/$1.conf" explain --auth alice --mailer smtp "${@:2}" bob@d47.test; }
explain a >"$W/explain-a.out" 2>&1
explain b >"$W/explain-b.out" 2>&1
ok "A's explain: the policy was fetched here ($(grep policy: "$W/explain-a.out"))" \
    "$(grep -Eq '^  policy: fetched here$' "$W/explain-a.out"; echo $?)"
ok "B's explain (another process, B's file): from the fleet, learnt by milter-a ($(grep policy: "$W/explain-b.out"))" \
    "$(grep -Eq '^  policy: from the fleet, learnt by milter-a$' "$W/explain-b.out"; echo $?)"
ok "... and explain --json says so (policy_source, policy_fleet_host)" \
    "$([ "$(explain b --json | jq -r '.[0].policy_source + " " + .[0].policy_fleet_host')" = \
         "fleet milter-a" ] &&
       [ "$(explain a --json |
           jq -r '.[0].policy_source + " " + (.[0].policy_fleet_host | tostring)')" = "fetched null" ]
       echo $?)"
ok "the files keep it: source NULL in A's row, milter-a in B's" \
    "$([ "$(sqlite3 "$W/a.sqlite" "SELECT ifnull(source, 'NULL') FROM domains WHERE domain = 'd47.test'")" = NULL ] &&
       [ "$(sqlite3 "$W/b.sqlite" "SELECT source FROM domains WHERE domain = 'd47.test'")" = milter-a ]
       echo $?)"

# ---- a bumped policy id reaches the other hosts within a second -------------
send a "$W/a2.out" bob@changing.test && send b "$W/b2.out" bob@changing.test &&
    send c "$W/c2.out" bob@changing.test
ok "changing.test asked on the three hosts" $?
before=$(fetches changing)
# Messages of no known shape first: skipped with a warning, the real one arrives.
rc publish mtasts:events "garbage" >/dev/null
rc publish mtasts:events "policy" >/dev/null
rc publish mtasts:events "bogus changing.test" >/dev/null
printf 'version: STSv1\nmode: testing\nmx: mx1.changing.test\nmax_age: 3600\n' >"$W/new.txt"
"$HERE/world.sh" set-policy "$W" changing.test fleet42 "$W/new.txt" >/dev/null
# A one-shot mtasts-ctl learns and publishes the change, with the milters'
# 100 ms for Redis: what it could not send in time it keeps trying to send
# at its exit (fleet_close), the PUBLISH with it.
"$CTL" -c "$W/a.conf" lookup --recheck changing.test >/dev/null 2>&1
t0=$(date +%s%N)
seen=
for ((i = 0; i < 20; i++)); do
    b=$(sqlite3 "$W/b.sqlite" "SELECT txt_id FROM domains WHERE domain = 'changing.test'")
    c=$(sqlite3 "$W/c.sqlite" "SELECT txt_id FROM domains WHERE domain = 'changing.test'")
    [ "$b" = fleet42 ] && [ "$c" = fleet42 ] && { seen=$((($(date +%s%N) - t0) / 1000000)); break; }
    sleep 0.1
done
# (When not: each file's row and its check time, against A's: a change the
# others ignored as no newer than theirs shows here.)
[ -n "$seen" ] || for h in a b c; do
    echo "# $h: $(sqlite3 "$W/$h.sqlite" "SELECT txt_id, checked_at FROM domains WHERE domain = 'changing.test'")"
done
ok "B and C hold the new id within a second (${seen:-never} ms)" \
    "$([ -n "$seen" ] && [ "$seen" -le 1000 ]; echo $?)"
ok "messages of no known shape on the channel are ignored with a warning" \
    "$(grep -q 'fleet: message on mtasts:events ignored: not KIND NAME' "$W/b.log" &&
       grep -q 'fleet: message on mtasts:events ignored: not KIND NAME' "$W/c.log"; echo $?)"
ok "... learnt from the fleet (their logs say so)" \
    "$(grep -q 'changing.test: policy id fleet42 from the fleet' "$W/b.log" &&
       grep -q 'changing.test: policy id fleet42 from the fleet' "$W/c.log"; echo $?)"
got=$(($(fetches changing) - before))
ok "one fetch of the new policy in all (got $got)" "$([ "$got" = 1 ]; echo $?)"

"$CTL" -c "$W/a.conf" status >"$W/status1.out" 2>&1
ok "status: the fleet link is up ($(grep '^fleet:' "$W/status1.out"))" \
    "$(grep -Eq '^fleet: +up$' "$W/status1.out"; echo $?)"

# ---- Redis stopped under load -------------------------------------------------
redis_stop
t0=$(date +%s%N)
together "a $W/a3.out 21 30" "b $W/b3.out 21 30" "c $W/c3.out 21 30" "a $W/a4.out 01 10"
ms=$((($(date +%s%N) - t0) / 1000000))
ok "Redis down: all 40 RCPTs answered CONTINUE, none refused or tempfailed" \
    "$([ "$(cat "$W"/[abc]3.out "$W/a4.out" | grep -c ' CONTINUE')" = 40 ]; echo $?)"
# Each message has 10 fresh domains at most, one lookup each (5 s deadline).
ok "... within the RCPT deadlines (${ms} ms for 4 messages at once)" "$([ "$ms" -lt 20000 ]; echo $?)"
ok "... and the link's outage is logged" "$(grep -q 'fleet: Redis unusable' "$W/a.log"; echo $?)"
"$CTL" -c "$W/a.conf" status >"$W/status2.out" 2>&1
ok "status: the link is down, with its start and next try ($(grep '^fleet:' "$W/status2.out"))" \
    "$(grep -Eq '^fleet: +down since [0-9]{4}-.*, retry in [0-9]+ s$' "$W/status2.out"; echo $?)"
ok "... and status --json says so (fleet.state $(fleet_json a state))" \
    "$([ "$(fleet_json a state)" = down ] && [ "$(fleet_json a down_since)" -gt 0 ]; echo $?)"
redis_start
# What the hosts learnt while Redis was down reaches it, with no new RCPT.
# (the link's back-off after the outage comes first: up to 8 s here)
for ((i = 0; i < 150; i++)); do
    kept=$(rc --scan --pattern 'mtasts:policy:d2[1-9].test' | grep -c .)
    [ "$kept" = 9 ] && break
    sleep 0.1
done
ok "Redis back: the rows learnt during the outage are written to it within 15 s ($kept of 9)" \
    "$([ "$kept" = 9 ]; echo $?)"
# The line follows the batch (and any host may have written the rows first):
# a few seconds for it, in any of the three logs.
for ((i = 0; i < 100; i++)); do
    grep -q 'fleet: resynchronised: ' "$W"/[abc].log && break
    sleep 0.1
done
ok "... and the log says so" "$(grep -q 'fleet: resynchronised: ' "$W"/[abc].log; echo $?)"
back=
for ((i = 31; i <= 44; i++)); do
    send a "$W/a5.out" "bob@d$i.test"
    [ "$(rc exists "mtasts:policy:d$i.test")" = 1 ] && { back=d$i; break; }
    sleep 1
done
ok "Redis restarted: the link recovers by itself (row of ${back:-none} written)" \
    "$([ -n "$back" ]; echo $?)"
# Every link of the milter (the subscriber's too) is back within its back-off.
for ((i = 0; i < 150; i++)); do
    "$CTL" -c "$W/a.conf" status >"$W/status3.out" 2>&1
    grep -Eq '^fleet: +up$' "$W/status3.out" && break
    sleep 0.1
done
ok "status: the link is up again ($(grep '^fleet:' "$W/status3.out"))" \
    "$(grep -Eq '^fleet: +up$' "$W/status3.out"; echo $?)"

# ---- values planted without the key, or out of range -------------------------
python3 - "$W/fleet.key" <<'PY' >"$W/plant.sh"
import hashlib, hmac, shlex, sys
key = open(sys.argv[1], "rb").read()
def row(d, max_age, exp):
    return ('["%s","evil1",1,"none",%d,null,"version: STSv1\\nmode: none\\nmax_age: 1\\n",'
            '1700000000,%d,1700000000,0,"none",null,null,null,0,null]' % (d, max_age, exp))
k1 = "mtasts:policy:d45.test"
print("redis-cli -s \"$SOCK\" set %s %s" % (k1, shlex.quote("F1 " + "-" * 64 + " " + row("d45.test", 86400, 1700086400))))
k2 = "mtasts:policy:d46.test"
j = row("d46.test", 99999999, 4000000000)
mac = hmac.new(key, k2.encode() + b"\0" + j.encode(), hashlib.sha256).hexdigest()
print("redis-cli -s \"$SOCK\" set %s %s" % (k2, shlex.quote("F1 " + mac + " " + j)))
PY
SOCK=$SOCK sh "$W/plant.sh" >/dev/null
send b "$W/b6.out" bob@d45.test
send c "$W/c6.out" bob@d46.test
ok "an unsigned value is ignored with a warning" \
    "$(grep -q 'fleet: value of mtasts:policy:d45.test ignored: bad HMAC' "$W/b.log"; echo $?)"
ok "a signed value out of range is ignored with a warning" \
    "$(grep -q 'fleet: value of mtasts:policy:d46.test ignored: .*max_age' "$W/c.log"; echo $?)"
ok "... counted as refused in metrics and status (b: $(fleet_json b values_refused), c: $(fleet_json c values_refused))" \
    "$([ "$(fleet_json b values_refused)" -ge 1 ] && [ "$(fleet_json c values_refused)" -ge 1 ]; echo $?)"
ok "... and both hosts fetched the real policies (enforce kept)" \
    "$([ "$(fetches 'd4[56]')" = 2 ] &&
       [ "$(sqlite3 "$W/b.sqlite" "SELECT mode FROM domains WHERE domain = 'd45.test'")" = enforce ] &&
       [ "$(sqlite3 "$W/c.sqlite" "SELECT mode FROM domains WHERE domain = 'd46.test'")" = enforce ]
       echo $?)"

# An MX set planted without the key (hosts elsewhere): A ignores it, resolves.
rc set mtasts:mx:d44.test "F1 $(printf -- '-%.0s' $(seq 64)) [\"d44.test\",\"mx.evil.example\",$(date +%s),$(($(date +%s) + 3000)),\"insecure\"]" >/dev/null
send a "$W/a11.out" bob@d44.test
for ((i = 0; i < 30; i++)); do
    h=$(sqlite3 "$W/a.sqlite" "SELECT hosts FROM mx_sets WHERE domain = 'd44.test'")
    [ -n "$h" ] && break
    sleep 0.1
done
ok "an MX set planted without the key is ignored with a warning" \
    "$(grep -q 'fleet: value of mtasts:mx:d44.test ignored: bad HMAC' "$W/a.log"; echo $?)"
ok "... the host resolved it itself (file: ${h:-none}; one MX query)" \
    "$([ "$h" = mx1.d44.test ] && [ "$(mxq d44)" = 1 ]; echo $?)"

# ---- MX probe results: one probe per address for the fleet --------------------
for m in a b c; do
    p=${m^^}PID
    kill "${!p}" && wait "${!p}" 2>/dev/null
    eval "${m^^}PID="
    rm -f "$W/$m.sock"
done
probe_conf=("mx_probes = yes" "probe_timeout_ms = 5s" "probe_concurrency = 4")
start a "${probe_conf[@]}"
start b "${probe_conf[@]}"
start c "${probe_conf[@]}"
# accepts: connections the world's SMTP servers accepted from probes, by address
accepts() {
    grep -oE " accept [a-z0-9]*@127\.0\.50\.[0-9]+:25 " "$MTS_WORLD_SMTP_LOG" 2>/dev/null |
        awk '{print $2}' | sed 's/.*@//' | sort | uniq -c | awk '{print $2 "=" $1}' | tr '\n' ' '
}
PROBED="goodmx expiredmx wrongnamemx nostarttls tls10mx shared1"
lines0=$(wc -l <"$MTS_WORLD_SMTP_LOG" 2>/dev/null || echo 0)
pdoms=$(for d in $PROBED; do echo "bob@$d.test"; done)
# shellcheck disable=SC2086
{ send a "$W/a7.out" $pdoms & p1=$!; send b "$W/b7.out" $pdoms & p2=$!
  send c "$W/c7.out" $pdoms & p3=$!; wait $p1 $p2 $p3; }
# Each milter ends with a result for every host (its own probe, or the fleet's rows).
for ((i = 0; i < 150; i++)); do
    have=0
    for m in a b c; do
        have=$((have + $(sqlite3 "$W/$m.sqlite" "SELECT count(DISTINCT host) FROM tls_probes
                                         WHERE host IN ('mx.goodmx.test','mx.expiredmx.test',
                                         'mx.wrongnamemx.test','mx.nostarttls.test',
                                         'mx.tls10mx.test','mx.provider.test')" 2>/dev/null || echo 0)))
    done
    [ "$have" = 18 ] && break
    sleep 0.2
done
ok "the 6 MX hosts' results are in the three files ($have of 18)" "$([ "$have" = 18 ]; echo $?)"
tail -n +"$((lines0 + 1))" "$MTS_WORLD_SMTP_LOG" >"$W/smtp.new"
got=$(grep -cE " accept [a-z0-9]*@127\.0\.50\.[1-8]:25 " "$W/smtp.new")
per=$(grep -oE " accept [a-z0-9]*@127\.0\.50\.[1-8]:25 " "$W/smtp.new" | sort | uniq -c |
      awk '$1 != 1' | grep -c .)
ok "6 domains, 7 MX addresses, 3 milters: 7 probe connections in all, one per address (got $got)" \
    "$([ "$got" = 7 ] && [ "$per" = 0 ]; echo $?)"
ok "every MX host's result is in Redis" \
    "$([ "$(rc --scan --pattern 'mtasts:probe:*' | grep -c .)" = 6 ]; echo $?)"
ok "... mx.goodmx.test[127.0.50.2] probed by one milter of the three" \
    "$([ "$(cat "$W"/[abc].log | grep -c 'probe mx\.goodmx\.test\[127\.0\.50\.2\]')" = 1 ]; echo $?)"
own=0 fleet=0
six="host IN ('mx.goodmx.test','mx.expiredmx.test','mx.wrongnamemx.test','mx.nostarttls.test',
              'mx.tls10mx.test','mx.provider.test')"
for m in a b c; do
    own=$((own + $(sqlite3 "$W/$m.sqlite" "SELECT count(*) FROM tls_probes
                                           WHERE $six AND source IS NULL")))
    fleet=$((fleet + $(sqlite3 "$W/$m.sqlite" "SELECT count(*) FROM tls_probes WHERE $six
                                               AND source IN ('milter-a','milter-b','milter-c')
                                               AND source != 'milter-$m'")))
done
ok "probe rows keep their source: 7 probed here, 14 from the fleet with the prober's name (got $own, $fleet)" \
    "$([ "$own" = 7 ] && [ "$fleet" = 14 ]; echo $?)"

# A changed result (another milter's later probe: fail, DANE failed) for
# mx.goodmx.test, signed with the fleet key, published on the channel.
python3 - "$W/fleet.key" "$(rc get mtasts:probe:mx.goodmx.test)" <<'PY' >"$W/change.json"
import hashlib, hmac, json, sys
key = open(sys.argv[1], "rb").read()
v = sys.argv[2]
assert v.startswith("F1 ")
rows = json.loads(v[3 + 64 + 1:])
for i in range(0, len(rows), 19):
    rows[i + 3] = "untrusted"
    rows[i + 4] = "fail"
    rows[i + 5] = 0
    rows[i + 7] = "certificate not trusted (changed for the test)"
    rows[i + 12] += 1
    rows[i + 14] = "failed"
    rows[i + 17] = 0
j = json.dumps(rows, separators=(",", ":"))
k = "mtasts:probe:mx.goodmx.test"
print("F1 " + hmac.new(key, k.encode() + b"\0" + j.encode(), hashlib.sha256).hexdigest() + " " + j)
PY
rc set mtasts:probe:mx.goodmx.test "$(cat "$W/change.json")" px 600000 >/dev/null
t0=$(date +%s%N)
rc publish mtasts:events "probe mx.goodmx.test" >/dev/null
seen=
for ((i = 0; i < 20; i++)); do
    grep -q 'mx.goodmx.test: probe result fail, DANE failed, from the fleet' "$W/b.log" &&
        grep -q 'mx.goodmx.test: probe result fail, DANE failed, from the fleet' "$W/c.log" &&
        { seen=$((($(date +%s%N) - t0) / 1000000)); break; }
    sleep 0.1
done
ok "a changed probe result reaches B's and C's memory within a second (${seen:-never} ms)" \
    "$([ -n "$seen" ] && [ "$seen" -le 1000 ]; echo $?)"
# ---- one fleet per process, kept across reloads ------------------------------
# Discover and the probe engine share one fleet: one link for lookups and
# the writer, one for the subscriber, per milter (3 milters, and redis-cli).
clients=$(rc client list | grep -c .)
ok "one link pair per milter, lookups and probes together ($clients Redis clients for 3 milters and redis-cli)" \
    "$([ "$clients" = 7 ]; echo $?)"
ok "... opened once by each milter (its log)" \
    "$(r=0; for m in a b c; do
           [ "$(grep -c 'fleet: Redis at .*, one link pair for the lookups and the MX probes' \
                "$W/$m.log")" = 1 ] || r=1
       done; echo $r)"
threads() { ls "/proc/$APID/task" | grep -c .; }
hup() { # hup N: the Nth reload of A, waited for; an engine option changed
    # (probe_concurrency 3, 4, 3, 4), so that each makes new engines
    sed -i "s/^probe_concurrency = .*/probe_concurrency = $((4 - $1 % 2))/" "$W/a.conf"
    kill -HUP "$APID"
    for ((i = 0; i < 100; i++)); do
        [ "$(grep -c 'configuration reloaded' "$W/a.log")" -ge "$1" ] && return 0
        sleep 0.1
    done
    return 1
}
hup 1 && hup 2 && sleep 2
t2=$(threads)
hup 3 && hup 4 && hup 5 && hup 6 && sleep 2
t6=$(threads)
ok "A reloaded 6 times (SIGHUP), each with new engines: $(grep -c 'a new discovery engine' "$W/a.log") logged" \
    "$([ "$(grep -c 'configuration reloaded' "$W/a.log")" -ge 6 ] &&
       [ "$(grep -c 'a new discovery engine' "$W/a.log")" -ge 6 ]; echo $?)"
# The worker pools grow and shrink by a thread or so; a leak of the
# fleet's pair would be 8 more after 4 reloads.
ok "... no thread left behind: $t2 threads after the 2nd reload, $t6 after the 6th" \
    "$([ "$t6" -le $((t2 + 1)) ]; echo $?)"
ok "... the fleet outlived the engines: not opened again, still $(rc client list | grep -c .) Redis clients" \
    "$([ "$(grep -c 'fleet: Redis at ' "$W/a.log")" = 1 ] && [ "$(rc client list | grep -c .)" = 7 ]; echo $?)"
send a "$W/a9.out" bob@goodmx.test bob@d48.test
ok "... and the reloaded A still uses it (d48.test's row in Redis)" \
    "$([ "$(rc exists mtasts:policy:d48.test)" = 1 ]; echo $?)"

# ---- TLSA results: what a probe's lookup found goes to Redis, signed -----------
send a "$W/a10.out" bob@dd01.test
for ((i = 0; i < 50; i++)); do
    tv=$(rc get mtasts:tlsa:25:mx.dd01.test)
    [ -n "$tv" ] && break
    sleep 0.2
done
ok "a host's secure TLSA RRset is shared, signed, with its record (${tv:0:100}...)" \
    "$(printf '%s' "$tv" | python3 -c 'import json, sys
v = sys.stdin.read()
a = json.loads(v[68:])
sys.exit(0 if v[3:67] != "-" * 64 and a[0] == "mx.dd01.test" and a[4] == 2 and a[9].startswith("3 1 1 ") else 1)'; echo $?)"

# ---- TLSA results: a planted value cannot make an insecure host secure ------
# A secure-looking TLSA RRset for mx1.insecure.test (unsigned zone): taken,
# it would fail the host's DANE (the record matches nothing).
plant_tlsa() {
    local now
    now=$(date +%s)
    rc set mtasts:tlsa:25:mx1.insecure.test "F1 $(printf -- '-%.0s' $(seq 64)) [\"mx1.insecure.test\",25,$now,$((now + 3000)),2,\"mx1.insecure.test\",\"_25._tcp.mx1.insecure.test\",0,\"\",\"3 1 1 $(printf 'ab%.0s' $(seq 32))\"]" >/dev/null
}
dane_of() { # dane_of NAME: the DANE outcome of mx1.insecure.test in NAME's file
    sqlite3 "$W/$1.sqlite" "SELECT group_concat(DISTINCT dane) FROM tls_probes
                            WHERE host = 'mx1.insecure.test'" 2>/dev/null
}
plant_tlsa
send b "$W/b9.out" bob@insecure.test
for ((i = 0; i < 50; i++)); do [ -n "$(dane_of b)" ] && break; sleep 0.2; done
ok "a TLSA value planted without the key is ignored with a warning" \
    "$(grep -q 'fleet: value of mtasts:tlsa:25:mx1.insecure.test ignored: bad HMAC' "$W/b.log"; echo $?)"
ok "... the insecure host keeps DANE none ($(dane_of b)), not failed (reply: $(tr '\n' ' ' <"$W/b9.out"))" \
    "$([ "$(dane_of b)" = none ]; echo $?)"
start d nokey "${probe_conf[@]}"
plant_tlsa
rc del mtasts:probe:mx1.insecure.test >/dev/null
now=$(date +%s)
rc set mtasts:mx:d48.test "F1 $(printf -- '-%.0s' $(seq 64)) [\"d48.test\",\"mx.evil.example\",$now,$((now + 3000)),\"secure\"]" >/dev/null
send d "$W/d9.out" bob@insecure.test bob@d48.test
for ((i = 0; i < 50; i++)); do [ -n "$(dane_of d)" ] && break; sleep 0.2; done
ok "without fleet_key_file a milter reads no TLSA value: DANE none ($(dane_of d)), no warning" \
    "$([ "$(dane_of d)" = none ] && ! grep -q 'mtasts:tlsa:' "$W/d.log"; echo $?)"
ok "... and refuses an unsigned MX set that claims DNSSEC, with a warning" \
    "$(grep -q 'fleet: value of mtasts:mx:d48.test ignored: MX set of d48.test: claims DNSSEC without the fleet key' "$W/d.log"; echo $?)"
[ "$fails" -eq 0 ]
