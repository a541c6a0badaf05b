#!/bin/sh
# test_ctl.sh - mtasts-ctl validate-policy / validate-txt as an operator runs
# them: exit status, human output and --json, one TAP line per case.
#
# Needs jq to read the JSON (installed by .ci/install-deps).
set -u
# shellcheck source=clilib.sh
. "$(dirname "$0")/clilib.sh"

printf 'version: STSv1\r\nmode: enforce\r\nmx: mail.example.com\r\nmx: *.example.net\r\nmx: backupmx.example.com\r\nmax_age: 604800\r\n' >"$TMP/rfc.txt"
printf 'version: STSv1\nmode: enforce\nmx: mail.example.com\n' >"$TMP/nomaxage.txt"

echo "1..37"

run 0 "validate-policy accepts the RFC 8461 example" "$CTL" validate-policy "$TMP/rfc.txt"
has "human output lists the mode" "$TMP/out" "mode: enforce"
has "human output lists every mx" "$TMP/out" "mx: backupmx.example.com"

run 0 "validate-policy --json on a valid policy" "$CTL" validate-policy --json "$TMP/rfc.txt"
jqtrue "json: valid is true, error null" '.valid == true and .error == null'
jqtrue "json: fields parsed" '.version == "STSv1" and .mode == "enforce" and .max_age == 604800'
jqtrue "json: mx is the array of patterns" '.mx == ["mail.example.com","*.example.net","backupmx.example.com"]'

run 0 "--mx checks hosts against the policy" "$CTL" validate-policy --json \
    --mx MAIL.example.com. --mx mx1.example.net --mx a.b.example.net --mx example.net "$TMP/rfc.txt"
jqtrue "mx_match: exact name, case and trailing dot ignored" '.mx_match["MAIL.example.com."] == true'
jqtrue "mx_match: wildcard matches one label" '.mx_match["mx1.example.net"] == true'
jqtrue "mx_match: wildcard does not match two labels" '.mx_match["a.b.example.net"] == false'
jqtrue "mx_match: wildcard does not match the parent" '.mx_match["example.net"] == false'

run 0 "--mx in human output" "$CTL" validate-policy --mx other.example.org "$TMP/rfc.txt"
has "human output says a host does not match" "$TMP/out" "other.example.org does NOT match"

run 1 "a policy without max_age is invalid" "$CTL" validate-policy "$TMP/nomaxage.txt"
has "the reason names the missing key" "$TMP/err" '"max_age" is missing'

run 1 "invalid policy with --json" "$CTL" validate-policy --json "$TMP/nomaxage.txt"
jqtrue "json: valid false, error is a string, fields null" \
    '.valid == false and (.error | type) == "string" and .mode == null and .mx == null'

printf 'version: STSv1\nmode: enforce\nmx: mx.example.com\nmax_age: 86400\n' |
    "$CTL" validate-policy - >"$TMP/out" 2>&1
ok "reads the policy from stdin with -" $?

head -c 70000 /dev/zero | tr '\0' 'a' >"$TMP/big.txt"
run 1 "a 70000-byte input is refused" "$CTL" validate-policy "$TMP/big.txt"
has "the reason says the limit" "$TMP/err" "over the limit of 65536"

run 2 "a file that does not exist is a usage error" "$CTL" validate-policy "$TMP/nonexistent"
run 2 "an invalid --mx host is a usage error" "$CTL" validate-policy --mx 'bad..host' "$TMP/rfc.txt"

run 0 "validate-txt: the RFC example" "$CTL" validate-txt 'v=STSv1; id=20160831085700Z;'
has "human output shows the id" "$TMP/out" "id: 20160831085700Z"

run 0 "validate-txt --json ignores non-STS records" "$CTL" validate-txt --json \
    'v=spf1 -all' 'v=STSv1; id=abc123'
jqtrue "json: valid, id parsed" '.valid == true and .id == "abc123" and .version == "STSv1"'

run 1 "validate-txt: two STSv1 records mean no record" "$CTL" validate-txt --json \
    'v=STSv1; id=a' 'v=STSv1; id=b'
jqtrue "json: valid false, id null" '.valid == false and .id == null and (.error | test("exactly one"))'

"$CTL" --version | grep -q '^mtasts-ctl [0-9]'
ok "mtasts-ctl --version" $?

"$MILTER" -n -c /dev/null | grep -q 'configuration is valid'
ok "mtasts-milter -n accepts the built-in defaults" $?

printf 'rcpt_deadline_ms = 8s\nrule = rcpt=*.bank.test require=verified-tls\n' >"$TMP/bad.conf"
"$MILTER" -n -c "$TMP/bad.conf" >"$TMP/out" 2>&1
[ $? -eq 1 ] && grep -q "bad.conf:2: rule: require=verified-tls needs MX TLS probes, which are off (mx_probes = no)" "$TMP/out"
ok "mtasts-milter -n refuses a rule needing probes, naming file and line" $?

printf 'mx_probes = yes\nrule = rcpt=*.bank.test require=verified-tls\nrule = rcpt=* require=tls\n' >"$TMP/probes.conf"
"$MILTER" -n -c "$TMP/probes.conf" 2>&1 | grep -q 'configuration is valid'
ok "mtasts-milter -n accepts require=tls and verified-tls with mx_probes = yes" $?

printf 'defer_reply = 550 4.7.1\n' >"$TMP/bad2.conf"
"$MILTER" -n -c "$TMP/bad2.conf" >"$TMP/out" 2>&1
[ $? -eq 1 ] && grep -q "bad2.conf: option defer_reply:" "$TMP/out"
ok "mtasts-milter -n refuses a reply code of the wrong class" $?

printf 'check_interval = 5x\n' >"$TMP/bad3.conf"
"$MILTER" -n -c "$TMP/bad3.conf" >"$TMP/out" 2>&1
[ $? -eq 1 ] && grep -q "bad3.conf:1: option check_interval:" "$TMP/out"
ok "mtasts-milter -n names file, line and option" $?

# Before the milter's first start its cache folder does not exist: the ctl
# makes it as the milter does (the README's "useful next" right after the
# build failed with "cannot create database ...: No such file or directory").
printf 'cache_db = %s/state/sub/cache.sqlite\nresolv_conf = none\ntrust_anchor =\n' "$TMP" >"$TMP/fresh.conf"
"$CTL" -c "$TMP/fresh.conf" cache flush nothing.example >"$TMP/out" 2>&1
[ $? -eq 1 ] && grep -q "nothing.example is not in the cache" "$TMP/out"
ok "cache flush before the milter ever ran: the cache is created ($(head -c 200 "$TMP/out"))" $?
[ -d "$TMP/state/sub" ] && [ -f "$TMP/state/sub/cache.sqlite" ]
ok "and its folder made" $?

[ "$fails" -eq 0 ]
