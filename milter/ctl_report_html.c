/*
 * ctl_report_html - `mtasts-ctl report` as one self-contained HTML file:
 * inline CSS (with @media print), charts as inline SVG, no script, no
 * font, image or link fetched from anywhere, so that it opens offline,
 * mails as an attachment, and prints. Every text from the database (a
 * domain, a rule, a host) is escaped: domains are hostile input.
 *
 * Every figure sits in an element with a data-figure attribute naming it
 * as the JSON does (e.g. data-figure="paths.none"), so that a test, or a
 * person with a browser's inspector, finds it without reading the layout.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "decide.h"

#include "ctl_report.h"

#define CHART_W 720.0 /* the day chart's plot area, in SVG units */
#define CHART_H 200.0
#define CHART_LEFT 40.0
#define CHART_TOP 10.0
#define NEED_TEXT_MAX 512

/* The path kinds' colours, best (green) to worst (red), unknown grey. */
static const char *const path_colour[CTL_REPORT_NPATHS] = {
    "#1b7837", "#5aae61", "#a6dba0", "#fdb863", "#d7191c", "#9e9e9e",
};

static const char *const path_title[CTL_REPORT_NPATHS] = {
    "DANE", "MTA-STS", "verified TLS", "TLS, not verified", "none", "unknown",
};

static const char style[] =
    "body{font-family:sans-serif;margin:2em auto;max-width:60em;color:#222;line-height:1.4}\n"
    "h1{font-size:1.6em;margin-bottom:0}h2{font-size:1.25em;border-bottom:1px solid #ccc;"
    "margin-top:1.8em}\n"
    "table{border-collapse:collapse;margin:.6em 0}th,td{border:1px solid #ccc;padding:.2em .6em;"
    "text-align:left;vertical-align:top}td.n,th.n{text-align:right;font-variant-numeric:"
    "tabular-nums}\n"
    "th{background:#f2f2f2}.muted{color:#666}.key{display:inline-block;width:.9em;height:.9em;"
    "margin:0 .3em 0 .9em;vertical-align:middle;border:1px solid #555}\n"
    "svg{max-width:100%;height:auto}svg text{font-size:11px;fill:#333}\n"
    ".big{font-size:1.4em;font-weight:bold}\n"
    "@media print{body{margin:0;max-width:none;font-size:10pt}h2{break-after:avoid}"
    "section,table,svg{break-inside:avoid}*{-webkit-print-color-adjust:exact;"
    "print-color-adjust:exact}@page{margin:1.5cm}}\n";

/* Text from the database, escaped for HTML text and attribute values;
 * control bytes (no place in a domain or a rule) as '?'. */
static void
esc(FILE *out, const char *s)
{
    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;

        switch (c) {
        case '&': fputs("&amp;", out); break;
        case '<': fputs("&lt;", out); break;
        case '>': fputs("&gt;", out); break;
        case '"': fputs("&quot;", out); break;
        case '\'': fputs("&#39;", out); break;
        default: fputc(c < 0x20 || c == 0x7f ? '?' : c, out); break;
        }
    }
}

static void
num(FILE *out, const char *figure, uint64_t n)
{
    fprintf(out, "<td class=\"n\" data-figure=\"%s\">%" PRIu64 "</td>", figure, n);
}

static void
share(FILE *out, uint64_t n, uint64_t total)
{
    char s[32];

    ctl_report_share(n, total, s, sizeof(s));
    fprintf(out, "<td class=\"n\">%s%%</td>", s);
}

static void
head(FILE *out, const struct ctl_report *r)
{
    fprintf(out, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
                 "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
                 "<title>Transport security report %s to %s</title>\n<style>\n%s</style>\n"
                 "</head>\n<body>\n",
            r->since, r->until, style);
    fprintf(out, "<h1>Transport security of outbound mail</h1>\n"
                 "<p class=\"muted\">Recipients judged by mtasts-milter from "
                 "<span data-figure=\"since\">%s</span> to <span data-figure=\"until\">%s</span> "
                 "(UTC days), from the verdict statistics of the shared cache; the domains' "
                 "status as the cache holds it now.</p>\n",
            r->since, r->until);
}

static void
summary(FILE *out, const struct ctl_report *r)
{
    uint64_t auth = r->path[CTL_REPORT_PATH_DANE] + r->path[CTL_REPORT_PATH_MTA_STS];
    char s[32];

    ctl_report_share(auth, r->total, s, sizeof(s));
    fprintf(out, "<section>\n<h2>Summary</h2>\n<p><span class=\"big\" "
                 "data-figure=\"authenticated_share\">%s%%</span> of the recipients had an "
                 "authenticated path (DANE or MTA-STS).</p>\n<table>\n",
            s);
    fputs("<tr><th>Recipients judged</th>", out);
    num(out, "total", r->total);
    fputs("</tr>\n<tr><th>With an authenticated path</th>", out);
    num(out, "authenticated", auth);
    fputs("</tr>\n<tr><th>Without one (neither DANE nor MTA-STS)</th>", out);
    num(out, "unauthenticated", r->unauth);
    fputs("</tr>\n<tr><th>Judged in a dry run (not applied)</th>", out);
    num(out, "dry_run", r->dry_run);
    fputs("</tr>\n", out);
    if (r->other_words > 0) {
        fputs("<tr><th>Rows with words this version does not know</th>", out);
        num(out, "other_words", r->other_words);
        fputs("</tr>\n", out);
    }
    fputs("</table>\n</section>\n", out);
}

static void
legend(FILE *out)
{
    fputs("<p>", out);
    for (int p = 0; p < CTL_REPORT_NPATHS; p++)
        fprintf(out, "<span class=\"key\" style=\"background:%s\"></span>%s", path_colour[p],
                path_title[p]);
    fputs("</p>\n", out);
}

/* One stacked bar a day: the share of each path kind, DANE at the bottom. */
static void
day_chart(FILE *out, const struct ctl_report *r)
{
    double bw = r->ndays ? CHART_W / (double)r->ndays : CHART_W;
    double gap = bw > 4 ? bw * 0.15 : 0;

    fprintf(out, "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 %.0f %.0f\" "
                 "width=\"%.0f\" height=\"%.0f\" role=\"img\" aria-label=\"share of recipients "
                 "by path kind, per day\">\n",
            CHART_LEFT + CHART_W + 10, CHART_TOP + CHART_H + 30, CHART_LEFT + CHART_W + 10,
            CHART_TOP + CHART_H + 30);
    for (int t = 0; t <= 4; t++) {
        double y = CHART_TOP + CHART_H - CHART_H * t / 4.0;

        fprintf(out, "<line x1=\"%.0f\" y1=\"%.1f\" x2=\"%.0f\" y2=\"%.1f\" stroke=\"#ddd\"/>"
                     "<text x=\"%.0f\" y=\"%.1f\" text-anchor=\"end\">%d%%</text>\n",
                CHART_LEFT, y, CHART_LEFT + CHART_W, y, CHART_LEFT - 4, y + 4, t * 25);
    }
    for (size_t i = 0; i < r->ndays; i++) {
        const struct ctl_report_day *d = &r->days[i];
        double x = CHART_LEFT + bw * (double)i + gap / 2, y = CHART_TOP + CHART_H;

        fprintf(out, "<g data-day=\"%s\">", d->day);
        for (int p = 0; p < CTL_REPORT_NPATHS && d->total > 0; p++) {
            double h = CHART_H * (double)d->path[p] / (double)d->total;
            char s[32];

            if (d->path[p] == 0)
                continue;
            y -= h;
            ctl_report_share(d->path[p], d->total, s, sizeof(s));
            fprintf(out, "<rect x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\" "
                         "fill=\"%s\" data-path=\"%s\" data-count=\"%" PRIu64 "\"><title>%s "
                         "%s: %" PRIu64 " of %" PRIu64 " (%s%%)</title></rect>",
                    x, y, bw - gap, h, path_colour[p], ctl_report_path_name(p), d->path[p],
                    d->day, path_title[p], d->path[p], d->total, s);
        }
        fputs("</g>\n", out);
    }
    if (r->ndays > 0) {
        fprintf(out, "<text x=\"%.0f\" y=\"%.0f\">%s</text>\n", CHART_LEFT,
                CHART_TOP + CHART_H + 16, r->days[0].day);
        if (r->ndays > 1)
            fprintf(out, "<text x=\"%.0f\" y=\"%.0f\" text-anchor=\"end\">%s</text>\n",
                    CHART_LEFT + CHART_W, CHART_TOP + CHART_H + 16, r->days[r->ndays - 1].day);
    } else {
        fprintf(out, "<text x=\"%.0f\" y=\"%.0f\">no recipients in the period</text>\n",
                CHART_LEFT + 10, CHART_TOP + CHART_H / 2);
    }
    fputs("</svg>\n", out);
}

static void
paths(FILE *out, const struct ctl_report *r)
{
    char fig[64];

    fputs("<section>\n<h2>Recipients by path kind</h2>\n", out);
    legend(out);
    day_chart(out, r);
    fputs("<table>\n<tr><th>Path kind</th><th class=\"n\">Recipients</th><th class=\"n\">"
          "Share</th></tr>\n", out);
    for (int p = 0; p < CTL_REPORT_NPATHS; p++) {
        fprintf(out, "<tr><th><span class=\"key\" style=\"background:%s\"></span>%s</th>",
                path_colour[p], path_title[p]);
        snprintf(fig, sizeof(fig), "paths.%s", ctl_report_path_name(p));
        num(out, fig, r->path[p]);
        share(out, r->path[p], r->total);
        fputs("</tr>\n", out);
    }
    fputs("</table>\n<table>\n<tr><th>Day (UTC)</th><th class=\"n\">Recipients</th>", out);
    for (int p = 0; p < CTL_REPORT_NPATHS; p++)
        fprintf(out, "<th class=\"n\">%s</th>", path_title[p]);
    fputs("</tr>\n", out);
    for (size_t i = 0; i < r->ndays; i++) {
        fprintf(out, "<tr data-day=\"%s\"><td>%s</td>", r->days[i].day, r->days[i].day);
        num(out, "day.total", r->days[i].total);
        for (int p = 0; p < CTL_REPORT_NPATHS; p++) {
            snprintf(fig, sizeof(fig), "day.%s", ctl_report_path_name(p));
            num(out, fig, r->days[i].path[p]);
        }
        fputs("</tr>\n", out);
    }
    fputs("</table>\n</section>\n", out);
}

static void
refusals(FILE *out, const struct ctl_report *r)
{
    char fig[64];
    bool any = false;

    fputs("<section>\n<h2>Deferrals and rejections</h2>\n<h3>By reason</h3>\n<table>\n"
          "<tr><th>Action</th><th>Verdict</th><th class=\"n\">Recipients</th></tr>\n", out);
    for (int a = 0; a < CTL_REPORT_NACTIONS; a++)
        for (int o = 0; o < CTL_REPORT_NOUTCOMES; o++) {
            if (!ctl_report_refusal(a) || r->refused[a][o] == 0)
                continue;
            any = true;
            fprintf(out, "<tr><td>%s</td><td>%s</td>", ctl_report_action_name(a),
                    ctl_report_outcome_name(o));
            snprintf(fig, sizeof(fig), "refusals.%s.%s", ctl_report_action_name(a),
                     ctl_report_outcome_name(o));
            num(out, fig, r->refused[a][o]);
            fputs("</tr>\n", out);
        }
    if (!any)
        fputs("<tr><td colspan=\"3\">none</td></tr>\n", out);
    fputs("</table>\n<h3>By rule</h3>\n<table>\n<tr><th>Rule</th><th class=\"n\">Deferred</th>"
          "<th class=\"n\">Rejected</th><th class=\"n\">Held</th></tr>\n", out);
    any = false;
    for (size_t i = 0; i < r->nrules; i++) {
        const struct ctl_report_rule *ru = &r->rules[i];

        if (ru->action[DECIDE_DEFER] + ru->action[DECIDE_REJECT] + ru->action[DECIDE_HOLD] == 0)
            continue;
        any = true;
        fputs("<tr><td data-figure=\"refusal_rule\">", out);
        esc(out, ru->rule);
        fputs("</td>", out);
        num(out, "refusal_rule.defer", ru->action[DECIDE_DEFER]);
        num(out, "refusal_rule.reject", ru->action[DECIDE_REJECT]);
        num(out, "refusal_rule.hold", ru->action[DECIDE_HOLD]);
        fputs("</tr>\n", out);
    }
    if (!any)
        fputs("<tr><td colspan=\"4\">none</td></tr>\n", out);
    fputs("</table>\n</section>\n", out);
}

static void
domains(FILE *out, const struct ctl_report *r)
{
    char need[NEED_TEXT_MAX];

    fprintf(out, "<section>\n<h2>Domains most written to without an authenticated path</h2>\n"
                 "<p class=\"muted\">At most %d; status, DANE and grade as the cache holds "
                 "them now (grade: the worst of the domain's probed MX hosts).</p>\n<table>\n"
                 "<tr><th>Domain</th><th class=\"n\">Recipients without</th><th class=\"n\">"
                 "Of</th><th>MTA-STS</th><th>DANE</th><th>Grade</th><th>What it would need</th>"
                 "</tr>\n",
            CTL_REPORT_TOP);
    for (size_t i = 0; i < r->ntop; i++) {
        const struct ctl_report_top *d = &r->top[i];

        fputs("<tr data-figure=\"unauthenticated_domain\"><td data-figure=\"domain\">", out);
        esc(out, d->d.domain);
        fputs("</td>", out);
        num(out, "count", d->d.unauth);
        num(out, "domain_total", d->d.total);
        fprintf(out, "<td data-figure=\"status\">%s</td><td data-figure=\"dane\">%s</td>",
                d->f.status < 0 ? "not cached" : ctl_report_status_name(d->f.status),
                d->f.dane < 0 ? "-" : ctl_report_dane_name(d->f.dane));
        fprintf(out, "<td data-figure=\"grade\">%s", d->f.grade < 0 ? "-" :
                                                     ctl_report_grade_name(d->f.grade));
        if (d->f.grade >= 0) {
            fputs(" <span class=\"muted\">(", out);
            esc(out, d->f.grade_host);
            fputs(")</span>", out);
        }
        ctl_report_need_text(d->need, d->need_host, need, sizeof(need));
        fprintf(out, "</td><td data-figure=\"need\" data-need=\"%s\">",
                ctl_report_need_name(d->need));
        esc(out, need);
        fputs("</td></tr>\n", out);
    }
    if (r->ntop == 0)
        fputs("<tr><td colspan=\"7\">none: every recipient had an authenticated path</td></tr>\n",
              out);
    fputs("</table>\n</section>\n", out);
}

static void
adoption_row(FILE *out, const char *title, const char *figure, uint64_t n, uint64_t total)
{
    char s[32];
    double w = total ? 200.0 * (double)n / (double)total : 0;

    ctl_report_share(n, total, s, sizeof(s));
    fprintf(out, "<tr><th>%s</th>", title);
    num(out, figure, n);
    fprintf(out, "<td class=\"n\">%s%%</td><td><svg xmlns=\"http://www.w3.org/2000/svg\" "
                 "viewBox=\"0 0 200 12\" width=\"200\" height=\"12\"><rect width=\"200\" "
                 "height=\"12\" fill=\"#eee\"/><rect width=\"%.2f\" height=\"12\" "
                 "fill=\"#5aae61\"/></svg></td></tr>\n",
            s, w);
}

static void
adoption(FILE *out, const struct ctl_report *r)
{
    const struct ctl_report_adoption *a = &r->adoption;

    fputs("<section>\n<h2>DANE and MTA-STS among the domains written to</h2>\n<table>\n", out);
    fputs("<tr><th>Domains written to</th>", out);
    num(out, "adoption.domains", a->domains);
    fputs("</tr>\n</table>\n<table>\n<tr><th>Of them</th><th class=\"n\">Domains</th>"
          "<th class=\"n\">Share</th><th></th></tr>\n", out);
    adoption_row(out, "MTA-STS in enforce mode", "adoption.mta_sts_enforce", a->mta_sts_enforce,
                 a->domains);
    adoption_row(out, "MTA-STS in testing mode", "adoption.mta_sts_testing", a->mta_sts_testing,
                 a->domains);
    adoption_row(out, "DANE (TLSA records at an MX host)", "adoption.dane", a->dane, a->domains);
    adoption_row(out, "MTA-STS enforce or DANE", "adoption.either", a->either, a->domains);
    adoption_row(out, "reached by an authenticated path at least once", "adoption.authenticated",
                 a->authenticated, a->domains);
    adoption_row(out, "known to the cache now", "adoption.in_cache", a->looked_up, a->domains);
    fputs("</table>\n<p class=\"muted\">MTA-STS and DANE as the cache holds them now; a "
          "domain the cache no longer holds counts as neither.</p>\n</section>\n", out);
}

static void
rules(FILE *out, const struct ctl_report *r)
{
    char fig[64];

    fputs("<section>\n<h2>Rules that acted</h2>\n<table>\n<tr><th>Rule</th>"
          "<th class=\"n\">Recipients</th>", out);
    for (int a = 0; a < CTL_REPORT_NACTIONS; a++)
        fprintf(out, "<th class=\"n\">%s</th>", ctl_report_action_name(a));
    fputs("</tr>\n", out);
    for (size_t i = 0; i < r->nrules; i++) {
        fputs("<tr><td data-figure=\"rule\">", out);
        esc(out, r->rules[i].rule);
        fputs("</td>", out);
        num(out, "rule.total", r->rules[i].total);
        for (int a = 0; a < CTL_REPORT_NACTIONS; a++) {
            snprintf(fig, sizeof(fig), "rule.%s", ctl_report_action_name(a));
            num(out, fig, r->rules[i].action[a]);
        }
        fputs("</tr>\n", out);
    }
    if (r->nrules == 0)
        fprintf(out, "<tr><td colspan=\"%d\">none</td></tr>\n", CTL_REPORT_NACTIONS + 2);
    fputs("</table>\n<p class=\"muted\">A rule is its place in the rules file (FILE:LINE); "
          "default is the built-in one.</p>\n</section>\n", out);
}

int
ctl_report_html(const struct ctl_report *r, FILE *out)
{
    head(out, r);
    summary(out, r);
    paths(out, r);
    refusals(out, r);
    domains(out, r);
    adoption(out, r);
    rules(out, r);
    fputs("</body>\n</html>\n", out);
    return ferror(out) ? -1 : 0;
}
