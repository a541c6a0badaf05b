#!/bin/bash
# test_postfix_report.sh - mtasts-ctl report (issue 18, item 4) of RCPTs
# that a real Postfix submitted through the milter (mx_probes = yes, the
# statistics written at the milter's stop, SIGTERM):
#
#   enforce.test     2 messages, delivered: tag, pass, path mta-sts
#   nostarttls.test  1 message to 2 recipients, 450 4.7.5 at RCPT: defer,
#                    fail; in the report: grade fail, needs STARTTLS at
#                    mx.nostarttls.test
#   testing.test     1 recipient, accepted: tag, not-required
#
# report --format json and csv hold exactly these counts, and the metrics
# endpoint's recipient counters moved by exactly these RCPTs (issue 18:
# "counters move by exactly the RCPTs sent through the real Postfix").
#
# Everything runs in a network namespace of its own (lib.sh). TAP output.
set -u
HERE="$(cd "$(dirname "$0")" && pwd)"
BUILD=${top_builddir:-$(cd "$HERE/../.." && pwd)}
BUILD=$(cd "$BUILD" && pwd)
export MTS_E2E_MILTER="$BUILD/milter/mtasts-milter"
CTL="$BUILD/milter/mtasts-ctl"
E2E_DIR=/tmp/mts-pfr.$$
# shellcheck disable=SC1091
. "$HERE/lib.sh"
e2e_up

e2e milter-start "$E2E_DIR" \
    "enforcing_transports = smtp" \
    "rcpt_deadline_ms = 15s" \
    "dns_timeout_ms = 2s" \
    "mx_probes = yes" \
    "probe_timeout_ms = 5s" \
    "stats = yes" \
    "stats_flush_interval = 1h" \
    "metrics_socket = inet:9467@127.0.0.1" >/dev/null || bail "the milter did not start"
MAIL="$E2E_DIR/mail"
OUT="$E2E_DIR/swaks.out"
DB=$(sed -n 's/^cache_db = //p' "$MTS_E2E_MILTER_CONF" | tail -n1)

for i in 1 2; do
    tok=$(token)
    submit "$OUT" --to "bob$i@enforce.test" --header "Subject: $tok" --body "$tok"
    ok "enforce.test, message $i: accepted at RCPT (250)" rcpt_is "$OUT" 250 || diag_file "$OUT"
done
submit "$OUT" --to carol@nostarttls.test,dave@nostarttls.test --quit-after RCPT
ok "nostarttls.test: 450 at RCPT" rcpt_is "$OUT" 450 || diag_file "$OUT"
submit "$OUT" --to bob@testing.test --quit-after RCPT
ok "testing.test: accepted at RCPT (250)" rcpt_is "$OUT" 250 || diag_file "$OUT"

# The milter's counters, read as Prometheus would (the namespace's loopback).
page=$(ns curl -s --max-time 5 http://127.0.0.1:9467/metrics 2>&1)
sum_of() { printf '%s\n' "$page" | grep "^mtasts_recipients_total{$1" | awk '{ s += $2 } END { print s + 0 }'; }
got="$(sum_of '') $(sum_of 'action="tag"') $(sum_of 'action="defer",outcome="fail"') $(sum_of '.*path="mta-sts"')"
ok "metrics: recipients 5, tag 3, defer/fail 2, mta-sts path 2 ($got)" test "$got" = "5 3 2 2" ||
    diag "$(printf '%s\n' "$page" | grep '^mtasts_recipients_total' | head -20)"

e2e milter-stop "$E2E_DIR"
ok "the milter wrote its counts at its stop (SIGTERM)" \
    test "$(sqlite3 "$DB" "SELECT sum(count) FROM verdict_stats" 2>/dev/null)" = 5 ||
    diag "$(sqlite3 "$DB" "SELECT * FROM verdict_stats" 2>&1)"

"$CTL" -c "$MTS_E2E_MILTER_CONF" report --format json -o "$E2E_DIR/r.json" 2>"$E2E_DIR/err"
ok "report --format json exits 0" test $? -eq 0 || diag_file "$E2E_DIR/err"
got=$(jq -c '[.total, .paths["mta-sts"], .paths.none, .actions.tag, .actions.defer,
    [.refusals[] | [.action, .outcome, .count]]]' "$E2E_DIR/r.json" 2>&1)
want='[5,2,3,3,2,[["defer","fail",2]]]'
ok "json: 5 recipients, mta-sts 2, none 3, tag 3, defer 2 (fail) ($got)" test "$got" = "$want"
got=$(jq -c '.unauthenticated_domains[0] | [.domain, .count, .status, .grade, .need, .need_host]' \
    "$E2E_DIR/r.json" 2>&1)
want='["nostarttls.test",2,"enforce","fail","starttls","mx.nostarttls.test"]'
ok "json: nostarttls.test first, grade fail, needs STARTTLS at its MX ($got)" test "$got" = "$want"
"$CTL" -c "$MTS_E2E_MILTER_CONF" report --format csv -o "$E2E_DIR/r.csv"
got=$(grep -c -e '^total,recipients,,5' -e '^path,mta-sts,,2' -e '^refusal,defer,fail,2' \
    -e '^domain,nostarttls.test,need,starttls' "$E2E_DIR/r.csv")
ok "csv: the same figures ($got of 4 rows)" test "$got" = 4

finish
