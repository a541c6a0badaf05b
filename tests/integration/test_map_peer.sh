#!/bin/bash
# test_map_peer.sh - this policy map side by side with postfix-mta-sts-resolver
# (Debian 12's postfix-mta-sts-resolver 1.1.2, mta-sts-daemon), the map it
# replaces (issue 11). Both run in one test world (its own network namespace),
# resolve through the world's unbound and trust only the world's CA; both are
# asked every domain of the world's scenario table (tests/world/README) and a
# few policy variants made here with world.sh set-policy, over one connection
# each, as one Postfix smtp process asks.
#
# For each domain: our answer must be what RFC 8461 requires (one check), and
# the peer's answer either agrees (the same for Postfix: the same string, or
# the same match= names in another order) or differs in one of the documented
# peer faults below, with exactly the answer that fault gives (one check): a
# new divergence fails. man/mtasts-milter.8 ("postfix-mta-sts-resolver")
# lists the same faults.
#
# Needs root (the world), mta-sts-daemon and Postfix's postmap; otherwise
# skipped. Stops everything it started by PID. TAP output.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/integration/maplib.sh
. "$HERE/maplib.sh"
maplib_init mts-mappeer
if ! command -v mta-sts-daemon >/dev/null; then
    echo "1..0 # SKIP postfix-mta-sts-resolver (mta-sts-daemon) is not installed; .ci/install-deps installs it"
    exit 0
fi
if ! command -v postmap >/dev/null; then
    echo "1..0 # SKIP postmap (Postfix) is not installed"
    exit 0
fi
maplib_netns mts-mappeer "$@"
maplib_world_up

# ---- the documented peer faults (RFC 8461 section: what the peer does) ----
declare -A FAULT=(
    [wildcard]="4.1: mx *.D becomes match=.D, which Postfix matches at any depth below D"
    [mxcheck]="4.1: the domain's MX host names are not checked against the policy; the policy's own names are sent"
    [txtid]="3.1: the TXT record's id is not checked (1*32 ALPHA/DIGIT)"
    [dupkey]="3.2: of a repeated policy key the last one counts, not the first"
    [maxage]="3.2: max_age is read with Python's int(), which takes 86_400 (the ABNF: 1*10DIGIT)"
    [failopen]="5: DNS failure (SERVFAIL, DNSSEC bogus, timeout) and nothing cached: NOTFOUND, delivery without MTA-STS, where this map answers TEMP"
    [utf8]="not RFC 8461: a UTF-8 key (Postfix sends them for SMTPUTF8 mail) is decoded as ASCII, which fails, and the connection is closed"
)

# ---- the scenario table ---------------------------------------------------
# KEY|OURS|PEER: OURS is a bash pattern for our exact answer; PEER is "="
# (the peer agrees) or FAULT:ANSWER (a pattern for the peer's answer, match=
# names in any order; "ERROR*": it closed the connection). S is the standard
# enforce answer for mx1.DOMAIN.
S='OK secure match=mx1.%s servername=hostname'
NF='NOTFOUND '
unknown='TEMP MTA-STS status of %s unknown*'
nomx='TEMP no MX host of %s matches its MTA-STS policy*'
many=$(seq -w 1 30 | sed 's/^/mx/; s/$/.manymx.test/' | paste -sd:)
TABLE=(
    "enforce.test|OK secure match=backup.mx.enforce.test:mx1.enforce.test servername=hostname|wildcard:OK secure match=mx1.enforce.test:.mx.enforce.test servername=hostname"
    "testing.test|$NF|="
    "none.test|$NF|="
    "notxt.test|$NF|="
    "nxdomain.test|$NF|="
    "two.test|$NF|="
    "other.test|$NF|="
    "badtxt.test|$NF|txtid:$(printf "$S" badtxt.test)"
    "cname.test|$(printf "$S" cname.test)|="
    "target.test|$NF|="
    "insecure.test|$(printf "$S" insecure.test)|="
    "bogus.test|$(printf "$unknown" bogus.test)|failopen:$NF"
    "servfail.test|$(printf "$unknown" servfail.test)|failopen:$NF"
    "timeout.test|$(printf "$unknown" timeout.test)|failopen:$NF"
    "redirect.test|$NF|="
    "notfound.test|$NF|="
    "badtype.test|$NF|="
    "badpolicy.test|$NF|="
    "exact.test|$(printf "$S" exact.test)|="
    "huge.test|$NF|="
    "chunked.test|$NF|="
    "chunkedok.test|$(printf "$S" chunkedok.test)|="
    "refused.test|$NF|="
    "nohost.test|$NF|="
    "wrongname.test|$NF|="
    "expired.test|$NF|="
    "selfsigned.test|$NF|="
    "mxmismatch.test|$(printf "$nomx" mxmismatch.test)|mxcheck:OK secure match=mx.elsewhere.test:.elsewhere.test servername=hostname"
    "changing.test|$(printf "$S" changing.test)|="
    "goodmx.test|OK secure match=mx.goodmx.test servername=hostname|="
    "expiredmx.test|OK secure match=mx.expiredmx.test servername=hostname|="
    "wrongnamemx.test|OK secure match=mx.wrongnamemx.test servername=hostname|="
    "nostarttls.test|OK secure match=mx.nostarttls.test servername=hostname|="
    "tls10mx.test|OK secure match=mx.tls10mx.test servername=hostname|="
    "mixedmx.test|OK secure match=bad.mixedmx.test:mx.provider.test servername=hostname|="
    "shared1.test|OK secure match=mx.provider.test servername=hostname|="
    "shared2.test|$NF|="
    "nullmx.test|$NF|="
    "cnamemx.test|OK secure match=mx.cnamemx.test servername=hostname|="
    "mismatchmx.test|OK secure match=mx1.mismatchmx.test servername=hostname|="
    "hangmx.test|OK secure match=mx.hangmx.test servername=hostname|="
    "downmx.test|OK secure match=mx.downmx.test servername=hostname|="
    "manymx.test|OK secure match=$many servername=hostname|wildcard:OK secure match=.manymx.test servername=hostname"
    # the variants made below (set-policy)
    "d41.test|$(printf "$S" d41.test)|dupkey:$NF"
    "d42.test|$NF|dupkey:$(printf "$S" d42.test)"
    "d43.test|$NF|maxage:$(printf "$S" d43.test)"
    "d44.test|$(printf "$nomx" d44.test)|wildcard:OK secure match=.test servername=hostname"
    "d45.test|$(printf "$S" d45.test)|wildcard:OK secure match=mx1.d45.test:.test servername=hostname"
    "d46.test|$NF|txtid:$(printf "$S" d46.test)"
    "d47.test|$NF|txtid:$(printf "$S" d47.test)"
)
for i in $(seq -w 1 40); do TABLE+=("d$i.test|$(printf "$S" "d$i.test")|="); done
# the MX probe's edge hosts: enforce, MX 10 mx.NAME.test, mx the same (what
# the hosts do once connected is no matter for either map)
for d in tls11mx untrustedmx hugebannermx binarybannermx endlessmx longlinemx \
         hangtlsmx dripmx slow1 slow2 slow3 slow4 slow5 slow6 slow7 slow8; do
    TABLE+=("$d.test|OK secure match=mx.$d.test servername=hostname|=")
done
# Postfix's keys other than a plain domain: a next hop with [] and :port,
# upper case and a trailing dot, the ".parent" forms it asks after a
# NOTFOUND, IP literals; a U-label (SMTPUTF8 mail; bücher.test exists nowhere)
TABLE+=(
    "[d01.test]:25|$(printf "$S" d01.test)|="
    "D02.TEST.|$(printf "$S" d02.test)|="
    ".d03.test|$NF|="
    ".test|$NF|="
    "127.0.30.1|$NF|="
    "[127.0.30.1]:25|$NF|="
    "bücher.test|$NF|utf8:ERROR*"
)
# The policy hosts that never answer: our map answers TEMP within
# map_deadline_ms while its fetch runs, then (the fetch failed, nothing
# cached: RFC 8461 section 3.3) NOTFOUND; the peer holds the connection up to
# its timeout (4 s) and answers NOTFOUND. Asked of us twice: at once, and
# again once our fetch has given up.
SLOW=(hang.test hangtls.test)

# ---- the variants ----------------------------------------------------------
pol() { # pol FILE LINE...: a policy file, LF line ends
    local f=$1
    shift
    printf '%s\n' "$@" >"$f"
}
vary() { # vary DOMAIN ID FILE (again when nsd was slow to load the zone:
    # set-policy bumps the serial each time, so a second go is a clean one)
    local t
    for t in 1 2 3; do
        "$MTS_WORLD_SCRIPT" set-policy "$W" "$1" "$2" "$3" >"$W/set-policy.log" 2>&1 && return 0
        sed 's/^/# /' "$W/set-policy.log"
    done
    bail "set-policy $1 failed 3 times"
}
mkdir -p "$W/variants"
V=$W/variants
pol "$V/d41" 'version: STSv1' 'mode: enforce' 'mode: testing' 'mx: mx1.d41.test' 'max_age: 86400'
pol "$V/d42" 'version: STSv1' 'mode: testing' 'mode: enforce' 'mx: mx1.d42.test' 'max_age: 86400'
pol "$V/d43" 'version: STSv1' 'mode: enforce' 'mx: mx1.d43.test' 'max_age: 86_400'
pol "$V/d44" 'version: STSv1' 'mode: enforce' 'mx: *.test' 'max_age: 86400'
pol "$V/d45" 'version: STSv1' 'mode: enforce' 'mx: mx1.d45.test' 'mx: *.test' 'max_age: 86400'
for d in 41 42 43 44 45; do vary "d$d.test" 20240102000000 "$V/d$d"; done
vary d46.test 123456789012345678901234567890123 - # 33 characters
vary d47.test '' -                                # "v=STSv1; id=;"

# ---- both maps -------------------------------------------------------------
MAP="$W/run/map.sock"
CONF="$W/map.conf"
mkdir -p "$W/run"
{
    grep -v '^#' "$MTS_WORLD_CONF"
    echo "socket = unix:$W/run/milter.sock"
    echo "map_socket = unix:$MAP"
    echo "map_deadline_ms = 1500"
    echo "fetch_connect_timeout_ms = 2s"
    echo "fetch_timeout_ms = 2s"
    echo "dns_timeout_ms = 3s"
} >"$CONF"
"$MILTER" -f -c "$CONF" 2>"$W/milter.log" &
MPID=$!
for _ in $(seq 1 100); do [ -S "$MAP" ] && break; sleep 0.1; done
[ -S "$MAP" ] || { sed 's/^/# /' "$W/milter.log"; bail "our map socket did not appear"; }
maplib_peer_start "$W" || { sed 's/^/# /' "$W/peer.log"; bail "mta-sts-daemon did not come up"; }
MAPLIB_PIDS=$PEER_PID
PEER="$W/peer.sock"

keys=()
for row in "${TABLE[@]}"; do keys+=("${row%%|*}"); done
# both maps at once (each on its own connection, as before): the peer holds
# each SLOW domain up to its 4 s timeout, and ours need not wait for that
maplib_ask "$MAP" postfix "${keys[@]}" "${SLOW[@]}" >"$W/ours.tsv" &
ours_pid=$!
maplib_ask "$PEER" postfix "${keys[@]}" "${SLOW[@]}" >"$W/peer.tsv" &
peer_pid=$!
wait "$ours_pid" "$peer_pid"
# Our fetches of the SLOW domains give up after fetch_timeout_ms (2 s): asked
# until both say NOTFOUND, at most 20 s (before: once, after the peer's 8 s)
for ((i = 0; i < 20; i++)); do
    maplib_ask "$MAP" postfix "${SLOW[@]}" >"$W/ours2.tsv"
    [ "$(grep -c "	$NF\$" "$W/ours2.tsv")" -eq "${#SLOW[@]}" ] && break
    sleep 1
done

# The answers in arrays, read once (a process per row and map was most of
# the loop's time): OURS, THEIRS, OURS2 [KEY] = the first reply for KEY
declare -A OURS THEIRS OURS2
load() {
    local -n into=$1
    local line k rest
    while IFS= read -r line; do
        k=${line%%$'\t'*}
        if [[ $line == *$'\t'* ]]; then rest=${line#*$'\t'}; else rest=; fi
        [ -n "${into[$k]+set}" ] || into[$k]=${rest%%$'\t'*}
    done <"$2"
}
load OURS "$W/ours.tsv"
load THEIRS "$W/peer.tsv"
load OURS2 "$W/ours2.tsv"
# norm ANSWER: NORM is ANSWER with its match= names sorted (their order
# means nothing to Postfix); in the shell, no process
norm() {
    local a=$1 m names i j x
    if [[ $a =~ .*\ match=([^ ]*) ]]; then m=${BASH_REMATCH[1]}; else m=; fi
    [ -z "$m" ] && { NORM=$a; return; }
    IFS=: read -r -a names <<<"$m"
    for ((i = 1; i < ${#names[@]}; i++)); do
        x=${names[i]}
        for ((j = i - 1; j >= 0; j--)); do
            [[ ${names[j]} > $x ]] || break
            names[j + 1]=${names[j]}
        done
        names[j + 1]=$x
    done
    printf -v x '%s:' "${names[@]}"
    NORM=${a/match=$m/match=${x%:}}
}

echo "1..$((2 * ${#TABLE[@]} + 3 * ${#SLOW[@]} + 5))"
agree=0 differ=0 reordered=""
for row in "${TABLE[@]}"; do
    d=${row%%|*} rest=${row#*|}
    want=${rest%%|*} peerwant=${rest#*|}
    ours=${OURS[$d]-}
    theirs=${THEIRS[$d]-}
    # shellcheck disable=SC2053 # $want is a pattern
    [[ $ours == $want ]]
    r=$?
    [ $r -eq 0 ] || echo "# $d: ours [$ours], RFC 8461 wants [$want]"
    ok "$d: ours ${ours:0:60}" $r
    if [ "$peerwant" = "=" ]; then
        norm "$ours"; nours=$NORM
        norm "$theirs"; ntheirs=$NORM
        [ "$nours" = "$ntheirs" ]
        r=$?
        [ $r -eq 0 ] || echo "# $d: a new divergence: ours [$ours], peer [$theirs]"
        [ $r -eq 0 ] && [ "$ours" != "$theirs" ] && reordered+=" $d"
        [ $r -eq 0 ] && agree=$((agree + 1))
        ok "$d: the peer agrees" $r
    else
        f=${peerwant%%:*} pw=${peerwant#*:}
        echo "# $d differs: ours [$ours], peer [$theirs] (${FAULT[$f]})"
        # shellcheck disable=SC2053 # a pattern
        norm "$ours"; nours=$NORM
        norm "$theirs"; ntheirs=$NORM
        norm "$pw"; npw=$NORM
        [[ $ntheirs == $npw ]] && [ "$nours" != "$ntheirs" ]
        r=$?
        [ $r -eq 0 ] || echo "# $d: the peer's answer is not the documented fault's [$pw]"
        [ $r -eq 0 ] && differ=$((differ + 1))
        ok "$d: peer differs by its known fault '$f'" $r
    fi
done
for d in "${SLOW[@]}"; do
    ours=${OURS[$d]-}
    # shellcheck disable=SC2053 # a pattern
    [[ $ours == $(printf "$unknown" "$d") ]]
    r=$?
    [ $r -eq 0 ] || echo "# $d: [$ours]"
    ok "$d: ours TEMP while the policy host keeps silent" $r
    ours=${OURS2[$d]-}
    [ "$ours" = "$NF" ]
    r=$?
    [ $r -eq 0 ] || echo "# $d: [$ours]"
    ok "$d: ours NOTFOUND once the fetch failed (RFC 8461 3.3)" $r
    theirs=${THEIRS[$d]-}
    [ "$theirs" = "$NF" ]
    r=$?
    [ $r -eq 0 ] || echo "# $d: peer [$theirs]"
    ok "$d: the peer agrees (NOTFOUND after its 4 s timeout)" $r
done
echo "# $agree domains agree, $differ differ by a documented peer fault"
[ -n "$reordered" ] && echo "# the same answer for Postfix, match= names in another order:$reordered"

# Postfix's own client reads both answers the same: postmap's value for an
# agreeing enforce domain and for a NOTFOUND one (exit 1, nothing printed)
PF="$W/postfix"
mkdir -p "$PF"
: >"$PF/main.cf"
pm() { (cd "$W" && postmap -c "$PF" -q "$1" "socketmap:unix:$2:postfix" 2>&1); echo "rc=$?"; }
a=$(pm d01.test "$MAP") b=$(pm d01.test "$PEER")
[ "$a" = "$b" ] && [ "$a" = "$(printf "${S#OK }" d01.test)"$'\n'"rc=0" ]
r=$?
[ $r -eq 0 ] || echo "# ours [$a] peer [$b]"
ok "postmap reads d01.test from both maps as the same policy" $r
a=$(pm testing.test "$MAP") b=$(pm testing.test "$PEER")
[ "$a" = "$b" ] && [ "$a" = "rc=1" ]
r=$?
[ $r -eq 0 ] || echo "# ours [$a] peer [$b]"
ok "postmap reads testing.test from both maps as not found" $r
# Sendmail's FEATURE(`sts') asks with the map name "sts": the same answers
a=$(maplib_ask "$MAP" sts d04.test testing.test) b=$(maplib_ask "$PEER" sts d04.test testing.test)
[ "$a" = "$b" ] && grep -q "^d04.test	OK secure match=mx1.d04.test servername=hostname$" <<<"$a"
r=$?
[ $r -eq 0 ] || echo "# ours [$a] peer [$b]"
ok "map name sts (Sendmail): both give the same answers" $r
# one ERROR, the UTF-8 key's (the utf8 fault), and no other traceback
kill -0 "$PEER_PID" && [ "$(grep -c 'Traceback' "$W/peer.log")" -eq 1 ] &&
    [ "$(grep -c ' ERROR ' "$W/peer.log")" -eq 1 ] &&
    grep ' ERROR ' "$W/peer.log" | grep -q "'ascii' codec can't decode"
r=$?
[ $r -eq 0 ] || sed 's/^/# /' "$W/peer.log" | tail -20
ok "the peer ran throughout; its one error is the UTF-8 key's" $r
kill -0 "$MPID" && ! grep -q 'AddressSanitizer\|runtime error' "$W/milter.log"
r=$?
[ $r -eq 0 ] || sed 's/^/# /' "$W/milter.log" | tail -20
ok "our milter ran throughout, no sanitizer report" $r
[ "$fails" -eq 0 ]
