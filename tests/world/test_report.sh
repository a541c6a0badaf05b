#!/bin/bash
# test_report.sh - issue 18, item 4: mtasts-ctl report of a known series of
# RCPTs judged by a real milter against the real test world (metrics_client.py
# rcpts, over the milter protocol), with real MX probes and DANE:
#
#   - a first milter (stats = no) judges each domain once, so that the
#     cache holds the policies, MX sets and probe rows (grades, DANE);
#   - a second (stats = yes, flush interval 1h) judges the known series,
#     and writes its counts at its stop (SIGTERM);
#   - report --format json: the exact counts, each domain's status, DANE,
#     grade and what it would need; every field is one the man page
#     documents and every documented field is there (report_fields.py);
#   - report --format csv: the same figures, read back as RFC 4180;
#   - report (HTML) rendered by headless chromium (no network: the test's
#     own network namespace, and chromium's background requests off): the
#     figures in the DOM, a hostile domain shown as text with no script
#     element, and a screenshot PNG of a non-trivial size.
#
# Needs root (the test world); skipped otherwise. The chromium part is
# skipped, with a message, only when chromium is not installed.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
BUILD=$(cd "${top_builddir:-$HERE/../..}" && pwd)
SRC=$(cd "${top_srcdir:-$HERE/../..}" && pwd)
MILTER="$BUILD/milter/mtasts-milter"
CTL="$BUILD/milter/mtasts-ctl"
W=${MTS_TEST_WORLD_DIR:-/tmp/mts-test-report.$$}

if [ "$(id -u)" -ne 0 ]; then
    echo "1..0 # SKIP the test world needs root (DNS on port 53, HTTPS on 443)"
    exit 0
fi
. "$HERE/suite.sh"
suite_enter_netns mts-report "$@"

MPID=
stop_milter() {
    [ -n "$MPID" ] || return 0
    kill -TERM "$MPID" 2>/dev/null
    wait "$MPID"
    local rc=$?
    MPID=
    return $rc
}
cleanup() {
    stop_milter
    "$HERE/world.sh" down "$W" >/dev/null 2>&1
    [ -n "${MTS_TEST_KEEP:-}" ] || rm -rf "$W"
}
trap cleanup EXIT
"$HERE/world.sh" up "$W" >"$W.up.log" 2>&1 || { sed 's/^/# /' "$W.up.log"; bail "world did not come up"; }
rm -f "$W.up.log"
# shellcheck disable=SC1091
. "$W/env"
DB="$W/report.sqlite"

conf() { # conf NAME STATS
    {
        grep -v -e '^#' -e '^cache_db' "$MTS_WORLD_CONF"
        echo "cache_db = $DB"
        echo "enforcing_transports = smtp"
        echo "dane_transports = smtp"
        echo "rcpt_deadline_ms = 20s"
        echo "dns_timeout_ms = 2s"
        echo "mx_probes = yes"
        echo "probe_timeout_ms = 5s"
        echo "probe_concurrency = 4"
        echo "stats = $2"
        echo "stats_flush_interval = 1h"
    } >"$W/$1.conf"
}
conf warm no
conf count yes
start() { # start NAME
    suite_milter_start "$1" MPID
}
send() { # send NAME ADDRESS...
    local m=$1
    shift
    MT_SOCKET="$W/$m.sock" python3 "$HERE/metrics_client.py" rcpts "$@" >"$W/rcpts.$m.out" 2>&1
    [ "$(grep -c . "$W/rcpts.$m.out")" -eq $# ]
}

DOMAINS="goodmx.test daneee.test shared2.test expiredmx.test nostarttls.test danebad.test nxdomain.test"
echo "1..26"

# ---- the cache learns every domain (no counts) -----------------------------------
start warm
warm=()
for d in $DOMAINS; do warm+=("bob@$d"); done
send warm "${warm[@]}"
ok "the warming milter answered one RCPT per domain" $?
for ((i = 0; i < 100; i++)); do
    have=$(sqlite3 "$DB" "SELECT COUNT(DISTINCT host) FROM tls_probes" 2>/dev/null || echo 0)
    [ "${have:-0}" -ge 6 ] && break
    sleep 0.2
done
stop_milter
rc=$?
ok "the warming milter stopped (status 0), the 6 MX hosts probed ($have)" "$([ "$rc" = 0 ] && [ "$have" -ge 6 ]; echo $?)"
[ "$(sqlite3 "$DB" "SELECT COUNT(*) FROM verdict_stats")" = 0 ]
ok "stats = no: nothing counted" $?

# ---- the known series ---------------------------------------------------------------
start count
send count a@goodmx.test b@goodmx.test c@goodmx.test a@daneee.test b@daneee.test \
    a@shared2.test b@shared2.test a@expiredmx.test a@nostarttls.test b@nostarttls.test \
    a@danebad.test a@nxdomain.test
ok "12 RCPTs answered" $?
sed 's/^/# /' "$W/rcpts.count.out"
[ "$(sqlite3 "$DB" "SELECT COUNT(*) FROM verdict_stats")" = 0 ]
ok "before the stop nothing is written (flush interval 1h)" $?
stop_milter
ok "the counting milter stops with status 0 (SIGTERM)" $?
TODAY=$(date -u +%F)
sqlite3 "$DB" "SELECT domain, action, outcome, path, count FROM verdict_stats ORDER BY domain" | sed 's/^/# row /'
# A hostile name, as a person with the sqlite3 shell could write it, on another day.
Y=$(date -u -d '1 day ago' +%F)
sqlite3 "$DB" "INSERT INTO verdict_stats VALUES ('$Y', '<script>alert(1)</script>.test', 'tag',
    'not-required', 'none', 'default', 0, 1)"

# ---- JSON ---------------------------------------------------------------------------
"$CTL" -c "$W/count.conf" report --format json -o "$W/r.json" 2>"$W/err"
ok "report --format json exits 0" $?
sed 's/^/# /' "$W/err"
j() { jq -c "$1" "$W/r.json"; }
got=$(j '[.total, .unauthenticated, .paths.dane, .paths["mta-sts"], .paths["verified-tls"], .paths.none, .paths.tls, .paths.unknown]')
# tls: the refused two (their MX hosts do TLS, unauthenticated); none: the
# rest, shared2.test's testing policy included (it asks for nothing).
ok "json: 13 recipients; dane 2, mta-sts 3, tls 2, none 6 ($got)" \
    "$([ "$got" = '[13,8,2,3,0,6,2,0]' ]; echo $?)"
got=$(j '[.days[] | [.day, .total]]')
ok "json: 2 days, today 12 ($got)" "$([ "$got" = "[[\"$Y\",1],[\"$TODAY\",12]]" ]; echo $?)"
got=$(j '[.actions.tag, .actions.defer, .actions.reject, [.refusals[] | [.action, .outcome, .count]]]')
ok "json: tag 9, defer 4 (fail) ($got)" "$([ "$got" = '[9,4,0,[["defer","fail",4]]]' ]; echo $?)"
dom() { jq -c --arg d "$1" '.unauthenticated_domains[] | select(.domain == $d) | [.count, .status, .dane, .grade, .need, .need_host]' "$W/r.json"; }
got=$(dom nostarttls.test)
ok "json: nostarttls.test: 2, enforce, grade fail, needs STARTTLS at mx.nostarttls.test ($got)" \
    "$([ "$got" = '[2,"enforce","none","fail","starttls","mx.nostarttls.test"]' ]; echo $?)"
got=$(dom expiredmx.test)
ok "json: expiredmx.test: 1, enforce, grade unverified, needs its certificate fixed ($got)" \
    "$([ "$got" = '[1,"enforce","none","unverified","fix-certificate","mx.expiredmx.test"]' ]; echo $?)"
got=$(dom shared2.test)
ok "json: shared2.test: 2, testing, grade good, needs an enforce policy ($got)" \
    "$([ "$got" = '[2,"testing","none","good","mta-sts-enforce",null]' ]; echo $?)"
got=$(dom danebad.test)
ok "json: danebad.test: 1, DANE failed, needs its TLSA records fixed ($got)" \
    "$([ "$got" = '[1,"absent","failed","unverified","fix-dane","mx.danebad.test"]' ]; echo $?)"
got=$(j '[.unauthenticated_domains[0].domain, (.unauthenticated_domains | length)]')
ok "json: 6 domains without an authenticated path, the most first ($got)" \
    "$([ "$got" = '["nostarttls.test",6]' ]; echo $?)"
got=$(j '[.adoption.domains, .adoption.mta_sts_enforce, .adoption.mta_sts_testing, .adoption.dane, .adoption.authenticated]')
ok "json: adoption among 8 domains: enforce 3, testing 1, DANE 2, authenticated 2 ($got)" \
    "$([ "$got" = '[8,3,1,2,2]' ]; echo $?)"
python3 "$HERE/report_fields.py" "$SRC/man/mtasts-ctl.1" "$W/r.json" >"$W/fields.out" 2>&1
ok "json: every field documented in mtasts-ctl(1), every documented field present" $?
sed 's/^/# /' "$W/fields.out"

# ---- CSV ----------------------------------------------------------------------------
"$CTL" -c "$W/count.conf" report --format csv -o "$W/r.csv"
ok "report --format csv exits 0" $?
got=$(python3 -c '
import csv, sys
d = {(r[0], r[1], r[2]): r[3] for r in csv.reader(open(sys.argv[1], newline=""))}
print(d[("total", "recipients", "")], d[("path", "dane", "")], d[("refusal", "defer", "fail")],
      d[("domain", "nostarttls.test", "need_text")], d[("adoption", "dane", "")])
' "$W/r.csv" 2>&1)
ok "csv: the same figures ($got)" \
    "$([ "$got" = '13 2 4 offer STARTTLS with TLS 1.2 or newer at mx.nostarttls.test 2' ]; echo $?)"

# ---- HTML, rendered by a real browser ----------------------------------------------
"$CTL" -c "$W/count.conf" report -o "$W/r.html"
ok "report (HTML) exits 0" $?
CHROMIUM=$(command -v chromium || command -v chromium-browser || true)
if [ -z "$CHROMIUM" ]; then
    for ((k = 0; k < 6; k++)); do
        ok "# SKIP chromium is not installed (Debian package chromium; .ci/install-deps installs it)" 0
    done
else
    # No network here (the namespace has only loopback); and no request of
    # chromium's own: no component updates, no sync, no metrics, no crash upload.
    chrome() {
        timeout 60 "$CHROMIUM" --headless --no-sandbox --disable-gpu --no-first-run \
            --user-data-dir="$W/chromium" --disable-background-networking \
            --disable-component-update --disable-sync --disable-default-apps \
            --disable-extensions --disable-breakpad --disable-domain-reliability \
            --no-default-browser-check --metrics-recording-only --no-pings \
            --disable-features=OptimizationHints,MediaRouter,Translate \
            --window-size=1200,2600 "$@" "file://$W/r.html"
    }
    chrome --dump-dom >"$W/dom.html" 2>"$W/chromium.err"
    ok "chromium renders the report (--dump-dom)" "$([ -s "$W/dom.html" ]; echo $?)"
    python3 - "$W/dom.html" >"$W/dom.out" 2>&1 <<'EOF'
import sys
from html.parser import HTMLParser

class Figures(HTMLParser):
    def __init__(self):
        super().__init__()
        self.fig = {}       # data-figure -> list of texts
        self.stack = []
        self.scripts = 0
        self.rects = 0
    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "script":
            self.scripts += 1
        if tag == "rect" and "data-path" in a:
            self.rects += 1
        self.stack.append(a.get("data-figure"))
        if a.get("data-figure"):
            self.fig.setdefault(a["data-figure"], []).append("")
    def handle_endtag(self, tag):
        if self.stack:
            self.stack.pop()
    def handle_data(self, data):
        for f in reversed(self.stack):
            if f:
                self.fig[f][-1] += data
                break

p = Figures()
p.feed(open(sys.argv[1]).read())
f = p.fig
print("total", f["total"][0], "dane", f["paths.dane"][0], "none", f["paths.none"][0],
      "defer", f["refusals.defer.fail"][0], "share", f["authenticated_share"][0],
      "first", f["domain"][0], "scripts", p.scripts, "rects", p.rects,
      "hostile", "<script>alert(1)</script>.test" in f["domain"])
EOF
    got=$(cat "$W/dom.out")
    ok "the DOM holds the figures ($got)" \
        "$([[ "$got" == "total 13 dane 2 none 6 defer 4 share 38.5% first nostarttls.test scripts 0 "* ]]; echo $?)"
    ok "the DOM has no script element, and the hostile domain as text" \
        "$([[ "$got" == *"scripts 0 "*"hostile True" ]]; echo $?)"
    ok "the DOM has the SVG bars (4 kinds today, 1 the day before: 5)" \
        "$([[ "$got" == *"rects 5 "* ]]; echo $?)"
    chrome --screenshot="$W/r.png" >/dev/null 2>>"$W/chromium.err"
    size=$(stat -c %s "$W/r.png" 2>/dev/null || echo 0)
    ok "a screenshot PNG was made" "$([ "$(head -c 8 "$W/r.png" 2>/dev/null | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ]; echo $?)"
    ok "the screenshot is not trivial ($size bytes > 30000)" "$([ "$size" -gt 30000 ]; echo $?)"
    [ "$fails" -eq 0 ] || sed 's/^/# chromium: /' "$W/chromium.err" | tail -20
fi
[ "$fails" -eq 0 ] || { sed 's/^/# count: /' "$W/count.log" | tail -30; }
exit $((fails > 0))
