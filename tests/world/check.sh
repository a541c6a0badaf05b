#!/bin/bash
# check.sh DIR — self-test of a running test world (tests/world/world.sh up DIR).
# Uses drill (ldnsutils; dig is not installed) and the curl CLI.
# Prints "N passed, N failed" and exits non-zero on any failure.
# The checks are eval'ed strings, expanded when run:
# shellcheck disable=SC2016,SC2034
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
[ $# -eq 1 ] || { echo "usage: $0 DIR" >&2; exit 2; }
DIR="${1%/}"
[ -r "$DIR/env" ] || { echo "check.sh: no $DIR/env; is the world up?" >&2; exit 2; }
# shellcheck disable=SC1091
. "$DIR/env"

for t in drill curl; do
    command -v "$t" >/dev/null 2>&1 || { echo "check.sh: $t is missing" >&2; exit 2; }
done

RES="$MTS_WORLD_RESOLVER_ADDR"
PORT="$MTS_WORLD_RESOLVER_PORT"
AUTH="$MTS_WORLD_AUTH_ADDR"
CA="$MTS_WORLD_CA_FILE"

passed=0
failed=0
ok() { passed=$((passed + 1)); echo "ok   - $1"; }
bad() { failed=$((failed + 1)); echo "FAIL - $1${2:+: $2}"; }
check() {  # check DESCRIPTION COMMAND...
    local d="$1"; shift
    if "$@"; then ok "$d"; else bad "$d"; fi
}

# q SERVER NAME TYPE [drill options]: sets RCODE, FLAGS, NANSWER, ANSWER
q() {
    local server="$1" name="$2" type="$3" out; shift 3
    out="$(drill "$@" -p "$PORT" "$name" "@$server" "$type" 2>&1 || true)"
    RCODE="$(sed -n 's/.*rcode: \([A-Z]*\),.*/\1/p' <<<"$out" | head -n1)"
    FLAGS="$(sed -n 's/^;; flags: \([a-z ]*\);.*/\1/p' <<<"$out" | head -n1)"
    NANSWER="$(sed -n 's/.*ANSWER: \([0-9]*\),.*/\1/p' <<<"$out" | head -n1)"
    ANSWER="$(awk '/^;; ANSWER SECTION:/ { a = 1; next } /^;; / { a = 0 } a && NF' <<<"$out")"
}
has_flag() { [[ " $FLAGS " == *" $1 "* ]]; }

# ---- DNS through unbound ------------------------------------------------------

q "$AUTH" test. SOA
check "nsd answers authoritatively for test." eval '[ "$RCODE" = NOERROR ] && has_flag aa'

q "$RES" _mta-sts.enforce.test TXT -D
check "_mta-sts.enforce.test TXT: NOERROR" [ "$RCODE" = NOERROR ]
check "_mta-sts.enforce.test TXT: AD flag (validated)" has_flag ad
check "_mta-sts.enforce.test TXT: v=STSv1 record" grep -q 'v=STSv1; id=20240101T000000;' <<<"$ANSWER"

q "$RES" mta-sts.enforce.test A -D
addr="$(awk '$4 == "A" { print $5; exit }' <<<"$ANSWER")"
check "mta-sts.enforce.test A -> $MTS_WORLD_HTTPS_ADDR, AD" eval '[ "$addr" = "$MTS_WORLD_HTTPS_ADDR" ] && has_flag ad'

q "$RES" enforce.test MX -D
check "enforce.test MX mx1.enforce.test, AD" eval 'grep -q "MX.*mx1.enforce.test." <<<"$ANSWER" && has_flag ad'

q "$RES" mx1.enforce.test A
check "mx1.enforce.test A -> $MTS_WORLD_MX_ADDR" grep -q "A[[:space:]]*$MTS_WORLD_MX_ADDR" <<<"$ANSWER"

q "$RES" _mta-sts.bogus.test TXT -D
check "_mta-sts.bogus.test TXT: SERVFAIL (bogus)" [ "$RCODE" = SERVFAIL ]
q "$RES" _mta-sts.bogus.test TXT -D -o CD
check "_mta-sts.bogus.test TXT +cd: data" eval '[ "$RCODE" = NOERROR ] && grep -q "v=STSv1" <<<"$ANSWER"'

q "$RES" _mta-sts.servfail.test TXT
check "_mta-sts.servfail.test TXT: SERVFAIL" [ "$RCODE" = SERVFAIL ]

q "$RES" _mta-sts.nxdomain.test TXT -D
check "_mta-sts.nxdomain.test TXT: NXDOMAIN, AD" eval '[ "$RCODE" = NXDOMAIN ] && has_flag ad'
q "$RES" nxdomain.test A
check "nxdomain.test A: NXDOMAIN" [ "$RCODE" = NXDOMAIN ]

q "$RES" _mta-sts.notxt.test TXT -D
check "_mta-sts.notxt.test TXT: NODATA, AD" eval '[ "$RCODE" = NOERROR ] && [ "$NANSWER" = 0 ] && has_flag ad'

q "$RES" _mta-sts.two.test TXT
check "_mta-sts.two.test TXT: two v=STSv1 records" eval '[ "$(grep -c "v=STSv1" <<<"$ANSWER")" = 2 ]'

q "$RES" _mta-sts.other.test TXT
check "_mta-sts.other.test TXT: only v=spf1" eval 'grep -q "v=spf1" <<<"$ANSWER" && ! grep -q "v=STSv1" <<<"$ANSWER"'

q "$RES" _mta-sts.badtxt.test TXT
check "_mta-sts.badtxt.test TXT: invalid id" grep -q 'id=not/valid!' <<<"$ANSWER"

q "$RES" _mta-sts.cname.test TXT -D
check "_mta-sts.cname.test TXT: CNAME to _mta-sts.target.test, AD" eval 'grep -q "CNAME.*_mta-sts.target.test." <<<"$ANSWER" && grep -q "id=target20240101" <<<"$ANSWER" && has_flag ad'

q "$RES" _mta-sts.insecure.test TXT -D
check "_mta-sts.insecure.test TXT: NOERROR without AD (unsigned)" eval '[ "$RCODE" = NOERROR ] && ! has_flag ad && grep -q "v=STSv1" <<<"$ANSWER"'

q "$RES" _mta-sts.d01.test TXT -D
check "_mta-sts.d01.test TXT: AD" eval 'has_flag ad && grep -q "v=STSv1" <<<"$ANSWER"'
q "$RES" _mta-sts.d50.test TXT -D
check "_mta-sts.d50.test TXT: AD" eval 'has_flag ad && grep -q "v=STSv1" <<<"$ANSWER"'

check "unbound logs queries" grep -q '_mta-sts.enforce.test. TXT IN' "$MTS_WORLD_UNBOUND_LOG"

# ---- HTTPS -------------------------------------------------------------------

# fetch DOMAIN [ADDR] [curl options]: sets CODE, CTYPE, RC, TE, SIZE; body in $TMPB
TMPB="$(mktemp)"
TMPH="$(mktemp)"
trap 'rm -f "$TMPB" "$TMPH"' EXIT
fetch() {
    local d="$1" a="${2:-$MTS_WORLD_HTTPS_ADDR}" out; shift 2 || shift $#
    : >"$TMPB"; : >"$TMPH"
    RC=0
    out="$(curl -sS --max-time 5 --cacert "$CA" --resolve "mta-sts.$d:443:$a" \
        -o "$TMPB" -D "$TMPH" -w '%{http_code} %{content_type} %{size_download}' "$@" \
        "https://mta-sts.$d/.well-known/mta-sts.txt" 2>/dev/null)" || RC=$?
    read -r CODE CTYPE SIZE _ <<<"$out - - -" || true
    TE="$(tr -d '\r' <"$TMPH" | sed -n 's/^[Tt]ransfer-[Ee]ncoding: *//p' | head -n1)"
}

fetch enforce.test "$addr"
check "https enforce.test: 200 text/plain" eval '[ "$RC" = 0 ] && [ "$CODE" = 200 ] && [ "$CTYPE" = text/plain ]'
check "https enforce.test: body is the policy file" cmp -s "$TMPB" "$DIR/www/mta-sts.enforce.test/.well-known/mta-sts.txt"
check "https enforce.test: mode enforce, CRLF" grep -q $'^mode: enforce\r$' "$TMPB"
check "nginx logs the request with host" grep -q 'host=mta-sts.enforce.test "GET /.well-known/mta-sts.txt' "$MTS_WORLD_NGINX_ACCESS_LOG"

for d in testing none target cname mxmismatch changing d01 d50 chunkedok notxt two other badtxt; do
    fetch "$d.test"
    check "https $d.test: 200 text/plain" eval '[ "$RC" = 0 ] && [ "$CODE" = 200 ] && [ "$CTYPE" = text/plain ] && grep -q "^version: STSv1" "$TMPB"'
done

for d in wrongname expired selfsigned; do
    fetch "$d.test"
    check "https $d.test: certificate verification fails (curl 60)" [ "$RC" = 60 ]
    fetch "$d.test" "" -k
    check "https $d.test: serves a policy when not verified" eval '[ "$CODE" = 200 ]'
done

fetch redirect.test
check "https redirect.test: 301" eval '[ "$CODE" = 301 ] && grep -qi "^location: https://mta-sts.enforce.test/" "$TMPH"'
fetch notfound.test
check "https notfound.test: 404" [ "$CODE" = 404 ]
fetch badtype.test
check "https badtype.test: 200 text/html" eval '[ "$CODE" = 200 ] && [ "$CTYPE" = text/html ]'
fetch badpolicy.test
check "https badpolicy.test: 200 text/plain, invalid mode" eval '[ "$CODE" = 200 ] && grep -q "^mode: sometimes" "$TMPB"'
fetch exact.test
check "https exact.test: 65536 bytes" eval '[ "$CODE" = 200 ] && [ "$SIZE" = 65536 ] && [ -z "$TE" ]'
fetch huge.test
check "https huge.test: 65537 bytes" eval '[ "$CODE" = 200 ] && [ "$SIZE" = 65537 ]'
fetch chunked.test
check "https chunked.test: chunked, > 64 KiB" eval '[ "$CODE" = 200 ] && [ "$TE" = chunked ] && [ "$SIZE" -gt 65536 ]'
fetch chunkedok.test
check "https chunkedok.test: chunked, small" eval '[ "$CODE" = 200 ] && [ "$TE" = chunked ] && [ "$SIZE" -lt 1000 ]'

q "$RES" mta-sts.hang.test A
check "mta-sts.hang.test A -> $MTS_WORLD_HANG_ADDR" grep -q "$MTS_WORLD_HANG_ADDR" <<<"$ANSWER"
t0=$(date +%s%N)
fetch hang.test "$MTS_WORLD_HANG_ADDR" --max-time 2
t1=$(date +%s%N)
check "https hang.test: no answer within 2 s (curl 28)" eval '[ "$RC" = 28 ] && [ $(( (t1 - t0) / 1000000 )) -ge 1900 ]'
fetch hangtls.test "$MTS_WORLD_HANGTLS_ADDR" --max-time 2
check "https hangtls.test: TLS up, no HTTP answer within 2 s (curl 28)" eval '[ "$RC" = 28 ] && grep -q "handshake tlshang" "$MTS_WORLD_HANG_LOG"'
fetch refused.test "$MTS_WORLD_REFUSED_ADDR"
check "https refused.test: connection refused (curl 7)" [ "$RC" = 7 ]
q "$RES" mta-sts.nohost.test A
check "mta-sts.nohost.test A: NXDOMAIN" [ "$RCODE" = NXDOMAIN ]

# ---- set-policy round trip on changing.test ----------------------------------

orig="$(mktemp)"
newp="$(mktemp)"
cp "$DIR/www/mta-sts.changing.test/.well-known/mta-sts.txt" "$orig"
origid="$(sed -n 's/.*id=\([^;]*\);.*/\1/p' "$DIR/txt/changing.test" 2>/dev/null | head -n1)"
printf 'version: STSv1\nmode: testing\nmx: mx1.changing.test\nmax_age: 3600\n' >"$newp"
q "$RES" _mta-sts.changing.test TXT   # warm the cache
if "$HERE/world.sh" set-policy "$DIR" changing.test check42 "$newp"; then
    q "$RES" _mta-sts.changing.test TXT -D
    check "set-policy: new TXT id visible through unbound" eval 'grep -q "id=check42;" <<<"$ANSWER" && has_flag ad'
    fetch changing.test
    check "set-policy: new policy body served" cmp -s "$TMPB" "$newp"
else
    bad "set-policy changing.test"
fi
"$HERE/world.sh" set-policy "$DIR" changing.test "${origid:-1}" "$orig" || bad "set-policy restore"
q "$RES" _mta-sts.changing.test TXT
check "set-policy: restored" grep -q "id=${origid:-1};" <<<"$ANSWER"
rm -f "$orig" "$newp"

check "flush works" "$HERE/world.sh" flush "$DIR"

# ---- files for the product -----------------------------------------------------

check "resolv.conf names the resolver" grep -qx "nameserver $RES" "$MTS_WORLD_RESOLV_CONF"
check "trust anchor is a DS for test." grep -q '^test\.[[:space:]].*DS' "$MTS_WORLD_TRUST_ANCHOR"
check "mtasts-milter.conf has the four settings" eval '[ "$(grep -cE "^(resolv_conf|trust_anchor|ca_file|cache_db) = " "$MTS_WORLD_CONF")" = 4 ]'

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
