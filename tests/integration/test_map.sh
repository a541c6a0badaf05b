#!/bin/bash
# test_map.sh - the policy map (map_socket) of a running mtasts-milter
# against the test world, asked by Postfix's own socketmap client
# (postmap -q ... socketmap:unix:PATH:postfix) and by hostile clients
# (mapclient.py). Brings the world up in a network namespace of its own,
# stops everything by PID at the end. TAP output.
#
# Needs root (the world) and Postfix's postmap; otherwise skipped.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/integration/maplib.sh
. "$HERE/maplib.sh"
maplib_init mts-map
if ! command -v postmap >/dev/null; then
    echo "1..0 # SKIP postmap (Postfix) is not installed"
    exit 0
fi
maplib_netns mts-map "$@"
maplib_world_up

MAP="$W/run/map.sock"
CONF="$W/map.conf"
{
    grep -v '^#' "$MTS_WORLD_CONF"
    echo "socket = unix:$W/run/milter.sock"
    echo "map_socket = unix:$MAP"
    echo "map_deadline_ms = 1500"
    echo "map_workers = 1"
    echo "map_max_clients = 150"
    echo "fetch_connect_timeout_ms = 5s"
    echo "fetch_timeout_ms = 5s"
    echo "dns_timeout_ms = 3s"
} >"$CONF"
# postmap reads a main.cf; an empty one will do.
PF="$W/postfix"
mkdir -p "$PF"
: >"$PF/main.cf"

"$MILTER" -f -c "$CONF" 2>"$W/milter.log" &
MPID=$!
for _ in $(seq 1 100); do [ -S "$MAP" ] && break; sleep 0.1; done
[ -S "$MAP" ] || { sed 's/^/# /' "$W/milter.log"; bail "the map socket did not appear"; }

# q KEY [NAME]: postmap's answer in $out (stdout), $err (stderr), $rc.
q() {
    out=$(cd "$W" && postmap -c "$PF" -q "$1" "socketmap:unix:$MAP:${2:-postfix}" 2>"$W/pm.err")
    rc=$?
    err=$(cat "$W/pm.err")
}
# The match= list, sorted, and the rest of the answer.
sorted_match() {
    sed -n 's/.*match=\([^ ]*\).*/\1/p' <<<"$1" | tr ':' '\n' | sort | tr '\n' ' '
}
is_notfound() { [ "$rc" -eq 1 ] && [ -z "$out" ] && [ -z "$err" ]; }
is_temp() { [ -z "$out" ] && grep -q "$1" <<<"$err"; }
# (fails, so "CHECK || show" fails with the check: ok takes its $?)
show() { echo "# rc=$rc out=[$out] err=[$(head -c 400 <<<"$err")]"; return 1; }

echo "1..42"

# ---- postmap (Postfix's socketmap client) ------------------------------
q enforce.test
[ "$rc" -eq 0 ] && [ "$(sorted_match "$out")" = "backup.mx.enforce.test mx1.enforce.test " ] &&
    grep -Eq '^secure match=[^ ]+ servername=hostname$' <<<"$out" || show
ok "enforce: secure match=<both MX hosts, exact names> servername=hostname" $?
grep -Eq 'match=([^ ]*:)?\.' <<<"$out"
[ $? -ne 0 ]; ok "enforce: no .domain (any-depth) pattern in match=" $?
q '[enforce.test]:25'
[ "$rc" -eq 0 ] && [ "$(sorted_match "$out")" = "backup.mx.enforce.test mx1.enforce.test " ] || show
ok "[enforce.test]:25: the same answer" $?
q ENFORCE.test.
[ "$rc" -eq 0 ] && grep -q '^secure match=' <<<"$out" || show
ok "ENFORCE.test.: the same answer" $?
q cname.test
[ "$rc" -eq 0 ] && [ "$out" = "secure match=mx1.cname.test servername=hostname" ] || show
ok "cname.test (delegated TXT): secure match=mx1.cname.test" $?
q insecure.test
[ "$rc" -eq 0 ] && grep -q '^secure match=mx1.insecure.test ' <<<"$out" || show
ok "insecure.test (no DNSSEC): enforce all the same" $?
for d in testing.test none.test nxdomain.test two.test badtxt.test notfound.test \
         redirect.test badtype.test .enforce.test 127.0.30.1 '[127.0.30.1]'; do
    q "$d"
    is_notfound || show
    ok "$d: not found" $?
done
q servfail.test
is_temp 'MTA-STS status of servfail.test unknown' || show
ok "servfail.test (unknown): TEMP, postmap reports a lookup error" $?
q mxmismatch.test
is_temp 'no MX host of mxmismatch.test matches its MTA-STS policy' || show
ok "mxmismatch.test (no MX matches the policy): TEMP, so Postfix defers" $?
t0=$(date +%s%N)
q hang.test
t1=$(date +%s%N)
is_temp 'MTA-STS status of hang.test unknown' && [ $(((t1 - t0) / 1000000)) -lt 3000 ] || show
ok "hang.test (policy host never answers): TEMP within map_deadline_ms" $?
q enforce.test sts
[ "$rc" -eq 0 ] && grep -q '^secure match=.* servername=hostname$' <<<"$out" || show
ok "map name sts (Sendmail): the same answer" $?

# ---- mtasts-ctl map: the same code path ---------------------------------
q enforce.test
got=$("$CTL" -c "$CONF" map enforce.test 2>/dev/null)
crc=$?
[ "$crc" -eq 0 ] && [ "$(sorted_match "$got")" = "$(sorted_match "$out")" ] &&
    [ "${got#OK }" != "$got" ] || { echo "# ctl: rc=$crc [$got]"; false; }
ok "mtasts-ctl map enforce.test: OK and the map's answer" $?
got=$("$CTL" -c "$CONF" map testing.test 2>/dev/null)
crc=$?
[ "$crc" -eq 1 ] && [ "$got" = "NOTFOUND " ] || { echo "# ctl: rc=$crc [$got]"; false; }
ok "mtasts-ctl map testing.test: NOTFOUND, exit 1" $?
got=$("$CTL" -c "$CONF" map servfail.test 2>/dev/null)
crc=$?
[ "$crc" -eq 3 ] && [ "${got#TEMP }" != "$got" ] || { echo "# ctl: rc=$crc [$got]"; false; }
ok "mtasts-ctl map servfail.test: TEMP, exit 3" $?
{ cat "$CONF"; echo "map_tlsrpt = yes"; } | grep -v '^map_socket' >"$W/tlsrpt.conf"
got=$("$CTL" -c "$W/tlsrpt.conf" map enforce.test 2>/dev/null)
grep -q ' policy_type=sts policy_domain=enforce.test mx_host_pattern=mx1.enforce.test mx_host_pattern=\*.mx.enforce.test { policy_string = version: STSv1 } { policy_string = mode: enforce }' <<<"$got" ||
    { echo "# [$got]"; false; }
ok "map_tlsrpt = yes: TLSRPT attributes, mx_host_pattern keeps *." $?
got=$("$CTL" -c "$W/tlsrpt.conf" map --name sts enforce.test 2>/dev/null)
grep -q 'policy_type' <<<"$got"
[ $? -ne 0 ]; ok "map_tlsrpt = yes, name sts (Sendmail): no TLSRPT attributes" $?

# ---- map_unknown: the answer when a status cannot be learnt ----------------
# cm CONF DOMAIN: mtasts-ctl map's answer in $got, its exit in $crc
cm() { got=$("$CTL" -c "$1" map "$2" 2>/dev/null); crc=$?; }
showc() { echo "# ctl: rc=$crc [$got]"; return 1; }
q stsservfail.test
is_temp 'MTA-STS status of stsservfail.test unknown' || show
ok "stsservfail.test (_mta-sts SERVFAILs, MX fine), map_unknown = temp (default): TEMP" $?
{ cat "$CONF"; echo "map_unknown = notfound"; } | grep -v '^map_socket' >"$W/unk.conf"
for d in stsservfail.test servfail.test timeout.test; do
    cm "$W/unk.conf" "$d"
    [ "$crc" -eq 1 ] && [ "$got" = "NOTFOUND " ] || showc
    ok "map_unknown = notfound: $d (unknown): NOTFOUND (RFC 8461 §3.3)" $?
done
cm "$W/unk.conf" mxmismatch.test
[ "$crc" -eq 3 ] && [ "${got#TEMP no MX host of mxmismatch.test}" != "$got" ] || showc
ok "map_unknown = notfound: mxmismatch.test (a known enforce policy): still TEMP" $?
{ cat "$W/unk.conf"; echo "map_unknown_except = servfail.test, *.timeout.test"; } >"$W/unk-x.conf"
cm "$W/unk-x.conf" servfail.test
[ "$crc" -eq 3 ] && [ "${got#TEMP MTA-STS status of servfail.test unknown}" != "$got" ] || showc
ok "map_unknown = notfound, map_unknown_except = servfail.test: servfail.test TEMP" $?
cm "$W/unk-x.conf" stsservfail.test
[ "$crc" -eq 1 ] && [ "$got" = "NOTFOUND " ] || showc
ok "... stsservfail.test (not listed; servfail.test does not cover it) NOTFOUND" $?
{ cat "$CONF"; echo "map_unknown_except = *.test"; } | grep -v '^map_socket' >"$W/unk-t.conf"
cm "$W/unk-t.conf" stsservfail.test
[ "$crc" -eq 1 ] && [ "$got" = "NOTFOUND " ] || showc
ok "map_unknown = temp, map_unknown_except = *.test: stsservfail.test NOTFOUND" $?

# ---- hostile clients ------------------------------------------------------
python3 "$HERE/mapclient.py" "$MAP" hostile enforce.test hangtls.test >"$W/hostile.out" 2>&1
nh=$(grep -c '^ok \|^not ok ' "$W/hostile.out")
grep -q '^not ok' "$W/hostile.out" && sed 's/^/# /' "$W/hostile.out"
[ "$nh" -ge 15 ] && ! grep -q '^not ok\|Traceback' "$W/hostile.out"
ok "hostile clients: $nh checks (garbage, 1 MB, slow, pipelined, 100 idle, 10 slow lookups)" $?
grep -q 'netstring too long: the length exceeds 10065 bytes; closing it' "$W/milter.log" &&
    grep -q 'malformed netstring' "$W/milter.log" || { sed -n '/map:/s/^/# /p' "$W/milter.log"; false; }
ok "the milter logged the bad netstrings" $?
python3 "$HERE/mapclient.py" "$MAP" overflow 150 >"$W/overflow.out" 2>&1
# The connections idle the longest give way to new ones (or, none idle,
# the new ones are refused): either way closed and logged.
! grep -q '^not ok\|Traceback' "$W/overflow.out" &&
    grep -q 'refusing new ones\|closed for a new client (map_max_clients)' "$W/milter.log" ||
    { sed 's/^/# /' "$W/overflow.out"; false; }
ok "over map_max_clients: extra connections closed and logged" $?
q enforce.test
[ "$rc" -eq 0 ] && kill -0 "$MPID" || show
ok "after all that: the milter runs and postmap gets its answer" $?

# ---- another process writes: the next answer sees it -----------------------
# enforce.test is warm, so the map answers it on its event loop from memory
# (map_query_at_once); a write by another connection must still be seen.
DB=$(sed -n 's/^cache_db *= *//p' "$CONF" | tail -n 1)
q enforce.test
[ "$rc" -eq 0 ] && [ "${out#secure match=}" != "$out" ] || show
ok "before another process writes: enforce.test is secure" $?
sqlite3 "$DB" "UPDATE domains SET has_policy = 0, mode = NULL, mx = NULL, status = 'absent',
    expires_at = strftime('%s','now') + 3600 WHERE domain = 'enforce.test'"
sleep 0.01
q enforce.test
is_notfound || show
ok "an UPDATE by sqlite3 is seen by the map's next answer (NOTFOUND)" $?

kill "$MPID"
wait "$MPID"
mrc=$?
MPID=
[ "$mrc" -eq 0 ] && [ ! -e "$MAP" ] || { echo "# exit $mrc"; false; }
ok "SIGTERM: exit 0, map socket removed" $?
if grep -q 'AddressSanitizer\|runtime error\|ThreadSanitizer' "$W/milter.log"; then
    sed 's/^/# /' "$W/milter.log" | head -40
    false
fi
ok "no sanitizer report in the milter's log" $?
[ "$fails" -eq 0 ]
