#!/bin/sh
# test_report.sh - mtasts-ctl report on a cache whose verdict_stats rows are
# planted with sqlite3 (the world test, tests/world/test_report.sh, has a
# real milter write them): the exact figures in JSON, CSV and HTML, the
# period (--since), a hostile domain (<script>, quotes, commas) escaped in
# each form, and clear errors with the documented exit status for a
# missing, unreadable, corrupt or old cache file, a bad --since or
# --format, and -o to a path that cannot be written.
#
# Needs sqlite3, jq and python3 (installed by .ci/install-deps).
set -u
# shellcheck source=clilib.sh
. "$(dirname "$0")/clilib.sh"

conf() { # conf NAME CACHE_DB
    printf 'cache_db = %s\ncache_busy_timeout_ms = 200ms\n' "$2" >"$TMP/$1.conf"
}

echo "1..34"

# ---- errors --------------------------------------------------------------------
conf missing "$TMP/nothere/cache.sqlite"
run 4 "no cache file" "$CTL" -c "$TMP/missing.conf" report
has "no cache file: the message names it and the option" "$TMP/err" "no cache file $TMP/nothere/cache.sqlite"

mkdir "$TMP/adir"
conf dir "$TMP/adir"
run 4 "a cache path that cannot be opened as a database (a directory)" "$CTL" -c "$TMP/dir.conf" report

head -c 8192 /dev/urandom >"$TMP/corrupt.sqlite"
conf corrupt "$TMP/corrupt.sqlite"
run 4 "a corrupt cache file (random bytes)" "$CTL" -c "$TMP/corrupt.conf" report
has "corrupt: the message names the file" "$TMP/err" "$TMP/corrupt.sqlite"

sqlite3 "$TMP/old.sqlite" "CREATE TABLE t(x)"
conf old "$TMP/old.sqlite"
run 4 "a database without the cache's schema" "$CTL" -c "$TMP/old.conf" report

conf good "$TMP/cache.sqlite"
"$CTL" -c "$TMP/good.conf" cache flush >/dev/null 2>&1
run 2 "--since 30x" "$CTL" -c "$TMP/good.conf" report --since 30x
has "--since: the message says what a duration is" "$TMP/err" 'expected a duration such as 30d'
run 2 "--since beyond ten years" "$CTL" -c "$TMP/good.conf" report --since 600w
run 2 "--format pdf" "$CTL" -c "$TMP/good.conf" report --format pdf
has "--format: the message lists the forms" "$TMP/err" 'html, json or csv'
run 2 "-o into a folder that does not exist" "$CTL" -c "$TMP/good.conf" report -o "$TMP/nofolder/r.html"
has "-o: the message names the file" "$TMP/err" "cannot write $TMP/nofolder/r.html"
run 2 "an extra argument" "$CTL" -c "$TMP/good.conf" report extra

# ---- figures ---------------------------------------------------------------------
TODAY=$(date -u +%F)
Y=$(date -u -d '1 day ago' +%F)
OLD=$(date -u -d '40 days ago' +%F)
sqlite3 "$TMP/cache.sqlite" "INSERT INTO verdict_stats VALUES
  ('$TODAY', 'enforce.test', 'tag', 'pass', 'mta-sts', 'default', 0, 5),
  ('$TODAY', 'dane.test', 'tag', 'pass', 'dane', 'default', 0, 2),
  ('$TODAY', '<script>alert(1)</script>.test', 'defer', 'fail', 'none', '/etc/r:3', 0, 4),
  ('$Y', 'a\"b,c.test', 'reject', 'fail', 'tls', '/etc/r:7', 0, 3),
  ('$Y', 'enforce.test', 'tag', 'pass', 'mta-sts', 'default', 1, 1),
  ('$OLD', 'old.test', 'tag', 'not-required', 'none', 'default', 0, 100)"

run 0 "report --format json" "$CTL" -c "$TMP/good.conf" report --format json
cp "$TMP/out" "$TMP/r.json"
got=$(jq -c '[.total, .dry_run, .unauthenticated, .paths.dane, .paths["mta-sts"], .paths.tls,
    .paths.none, .actions.defer, .actions.reject, .actions.tag, (.days | length)]' "$TMP/r.json")
[ "$got" = '[15,1,7,2,6,3,4,4,3,8,2]' ]
ok "json: totals, paths, actions and 2 days; the day 40 days ago is outside 30d ($got)" $?
got=$(jq -c '[.days[] | [.day, .total, .paths.none, .paths.tls]]' "$TMP/r.json")
[ "$got" = "[[\"$Y\",4,0,3],[\"$TODAY\",11,4,0]]" ]
ok "json: the days, by path kind ($got)" $?
got=$(jq -c '[.refusals[] | [.action, .outcome, .count]], [.rules[] | [.rule, .total, .actions.defer, .actions.reject]]' "$TMP/r.json" | tr -d '\n')
[ "$got" = '[["defer","fail",4],["reject","fail",3]][["default",8,0,0],["/etc/r:3",4,4,0],["/etc/r:7",3,0,3]]' ]
ok "json: refusals by verdict and by rule ($got)" $?
got=$(jq -c '[.unauthenticated_domains[] | [.domain, .count, .need]]' "$TMP/r.json")
[ "$got" = '[["<script>alert(1)</script>.test",4,"check"],["a\"b,c.test",3,"check"]]' ]
ok "json: the domains without an authenticated path, the hostile names exact ($got)" $?
got=$(jq -c '[.adoption.domains, .adoption.authenticated, .adoption.shares.authenticated, .path_shares.none,
    .authenticated, .authenticated_share]' "$TMP/r.json")
[ "$got" = '[4,2,50,26.7,8,53.3]' ]
ok "json: adoption among the 4 domains, shares; 8 of 15 authenticated ($got)" $?

run 0 "report --since 60d includes the old day" "$CTL" -c "$TMP/good.conf" report --format json --since 60d
[ "$(jq -c '[.total, (.days | length)]' "$TMP/out")" = '[115,3]' ]
ok "--since 60d: 115 recipients over 3 days" $?

run 0 "report --format csv -o FILE" "$CTL" -c "$TMP/good.conf" report --format csv -o "$TMP/r.csv"
has "csv: the hostile domain quoted as RFC 4180 says" "$TMP/r.csv" 'domain,"a""b,c.test",count,3'
got=$(python3 -c '
import csv, sys
rows = list(csv.reader(open(sys.argv[1], newline="")))
assert rows[0] == ["section", "key", "item", "value"], rows[0]
d = {(r[0], r[1], r[2]): r[3] for r in rows[1:]}
print(d[("total", "recipients", "")], d[("path", "none", "")], d[("domain", "a\"b,c.test", "count")],
      d[("domain", "<script>alert(1)</script>.test", "count")], d[("refusal", "reject", "fail")],
      d[("rule", "/etc/r:3", "defer")], d[("adoption", "domains", "")])
' "$TMP/r.csv" 2>&1)
[ "$got" = "15 4 3 4 3 4 4" ]
ok "csv: read back by python's csv module, the same figures as the JSON ($got)" $?

run 0 "report (html, the default) -o FILE" "$CTL" -c "$TMP/good.conf" report -o "$TMP/r.html"
[ ! -s "$TMP/out" ]
ok "html: nothing on stdout with -o" $?
hasnt "html: no <script anywhere (the domain is escaped)" "$TMP/r.html" '<script'
has "html: the domain, escaped" "$TMP/r.html" '&lt;script&gt;alert(1)&lt;/script&gt;.test'
has "html: the quote in a\"b,c.test escaped" "$TMP/r.html" 'a&quot;b,c.test'
! grep -v 'xmlns="http://www.w3.org/2000/svg"' "$TMP/r.html" | grep -qiE 'https?:|<link|<img|@import|url\('
ok "html: no link, image, import or URL" $?
has "html: a print stylesheet" "$TMP/r.html" '@media print'
has "html: an inline SVG bar of today's none (4 recipients)" "$TMP/r.html" 'data-path="none" data-count="4"'
has "html: the total" "$TMP/r.html" '<td class="n" data-figure="total">15</td>'

exit $((fails > 0))
