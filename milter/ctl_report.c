/*
 * ctl_report - `mtasts-ctl report [--since DURATION] [--format html|json|csv]
 * [-o FILE]`: for a period, the figures an auditor asks for (issue 18,
 * item 4), from the verdict statistics of the shared cache (cache_stats.h)
 * and what the cache says now of the domains written to (policy rows, MX
 * sets, probe rows with their grade and DANE outcome). ctl_report.h says
 * what the figures are; ctl_report_html.c and ctl_report_text.c write them.
 *
 * Nothing is looked up afresh: a report reads the cache only (read-only),
 * so it is quick, repeatable, and needs no network.
 *
 * Exit status: 0 written; 2 usage (a bad --since or --format), an invalid
 * configuration, or an output file that cannot be written; 4 no cache
 * file, or one that cannot be opened or read (locked, corrupt, not a
 * database).
 */
#include "ctl.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "cache.h"
#include "cache_stats.h"
#include "config.h"
#include "decide.h"
#include "metrics.h"
#include "nametab.h"
#include "probecache.h"
#include "stats.h"
#include "status.h"
#include "tlsa.h"
#include "tlsprobe.h"
#include "verdict.h"

#include "ctl_report.h"

#define RULES_MAX 1000 /* distinct rules counted; more go under "(other)" */
#define OTHER_RULE "(other)"

enum report_format { FORMAT_HTML, FORMAT_JSON, FORMAT_CSV };

static const struct nametab format_names[] = {
    {"html", FORMAT_HTML}, {"json", FORMAT_JSON}, {"csv", FORMAT_CSV}, {NULL, -1},
};

static const struct nametab need_names[] = {
    {"mta-sts-enforce", CTL_REPORT_NEED_MTA_STS_ENFORCE},
    {"fix-policy", CTL_REPORT_NEED_FIX_POLICY},
    {"starttls", CTL_REPORT_NEED_STARTTLS},
    {"fix-certificate", CTL_REPORT_NEED_FIX_CERT},
    {"fix-dane", CTL_REPORT_NEED_FIX_DANE},
    {"reachable", CTL_REPORT_NEED_REACHABLE},
    {"enforcing-route", CTL_REPORT_NEED_ROUTE},
    {"no-mail", CTL_REPORT_NEED_NO_MAIL},
    {"check", CTL_REPORT_NEED_CHECK},
    {NULL, -1},
};

const char *
ctl_report_path_name(int p)
{
    return nametab_name(metrics_path_names, p);
}

const char *
ctl_report_action_name(int a)
{
    return nametab_name(decide_effect_names, a);
}

const char *
ctl_report_outcome_name(int o)
{
    return nametab_name(verdict_outcome_names, o);
}

const char *
ctl_report_need_name(enum ctl_report_need n)
{
    return nametab_name(need_names, (int)n);
}

const char *
ctl_report_status_name(int s)
{
    return s < 0 ? "" : status_kind_name((enum status_kind)s);
}

const char *
ctl_report_grade_name(int g)
{
    return g < 0 ? "" : tlsprobe_grade_name((enum tlsprobe_grade_word)g);
}

const char *
ctl_report_dane_name(int d)
{
    return d < 0 ? "" : tlsa_dane_name((enum tlsa_dane)d);
}

bool
ctl_report_refusal(int a)
{
    return a == DECIDE_DEFER || a == DECIDE_REJECT || a == DECIDE_HOLD;
}

void
ctl_report_need_text(enum ctl_report_need n, const char *host, char *out, size_t outsz)
{
    switch (n) {
    case CTL_REPORT_NEED_MTA_STS_ENFORCE:
        snprintf(out, outsz, "publish an MTA-STS policy in enforce mode");
        break;
    case CTL_REPORT_NEED_FIX_POLICY:
        snprintf(out, outsz, "make its MTA-STS policy fetchable (the fetch fails)");
        break;
    case CTL_REPORT_NEED_STARTTLS:
        snprintf(out, outsz, "offer STARTTLS with TLS 1.2 or newer at %s", host);
        break;
    case CTL_REPORT_NEED_FIX_CERT:
        snprintf(out, outsz, "fix the certificate of %s", host);
        break;
    case CTL_REPORT_NEED_FIX_DANE:
        snprintf(out, outsz, "fix the TLSA records of %s", host);
        break;
    case CTL_REPORT_NEED_REACHABLE:
        snprintf(out, outsz, "make %s reachable on the SMTP port", host);
        break;
    case CTL_REPORT_NEED_ROUTE:
        snprintf(out, outsz, "nothing of the domain: send through a transport that enforces");
        break;
    case CTL_REPORT_NEED_NO_MAIL:
        snprintf(out, outsz, "nothing: the domain takes no mail (null MX)");
        break;
    case CTL_REPORT_NEED_CHECK:
    default:
        snprintf(out, outsz, "not known now: run mtasts-ctl check on it");
        break;
    }
}

void
ctl_report_share(uint64_t n, uint64_t total, char *out, size_t outsz)
{
    /* In tenths of a percent, rounded, with integers only. */
    uint64_t t = total ? (n * 2000 / total + 1) / 2 : 0;

    snprintf(out, outsz, "%llu.%llu", (unsigned long long)(t / 10), (unsigned long long)(t % 10));
}

/* ------------------------------------------------------------ aggregation */

struct gather {
    struct ctl_report *r;
    size_t domcap;
    bool nomem;
};

static bool
authenticated(int path)
{
    return path == CTL_REPORT_PATH_DANE || path == CTL_REPORT_PATH_MTA_STS;
}

static struct ctl_report_rule *
rule_of(struct gather *g, const char *rule)
{
    struct ctl_report *r = g->r;
    struct ctl_report_rule *m;

    for (size_t i = 0; i < r->nrules; i++)
        if (strcmp(r->rules[i].rule, rule) == 0)
            return &r->rules[i];
    if (r->nrules == RULES_MAX)
        return rule_of(g, OTHER_RULE); /* the last place holds the rest */
    if ((m = realloc(r->rules, (r->nrules + 1) * sizeof(*m))) == NULL) {
        g->nomem = true;
        return NULL;
    }
    r->rules = m;
    m = &r->rules[r->nrules++];
    memset(m, 0, sizeof(*m));
    snprintf(m->rule, sizeof(m->rule), "%s", r->nrules == RULES_MAX ? OTHER_RULE : rule);
    return m;
}

static void
add_row(const struct stats_row *row, void *arg)
{
    struct gather *g = arg;
    struct ctl_report *r = g->r;
    int a = nametab_code(decide_effect_names, NAMETAB_EXACT, row->k.action);
    int o = nametab_code(verdict_outcome_names, NAMETAB_EXACT, row->k.outcome);
    int p = nametab_code(metrics_path_names, NAMETAB_EXACT, row->k.path);
    uint64_t n = row->count;
    struct ctl_report_day *d;
    struct ctl_report_rule *ru;
    struct ctl_report_domain *dom;

    if (g->nomem)
        return;
    if (a < 0 || a >= CTL_REPORT_NACTIONS || o < 0 || o >= CTL_REPORT_NOUTCOMES || p < 0) {
        r->other_words += n; /* a word of another version: counted apart, not guessed */
        return;
    }
    r->total += n;
    if (row->k.dry_run)
        r->dry_run += n;
    r->path[p] += n;
    r->action[a] += n;
    r->outcome[o] += n;
    r->refused[a][o] += n;
    /* Rows come by day: a new day is the next one. */
    if (r->ndays == 0 || strcmp(r->days[r->ndays - 1].day, row->k.day) != 0) {
        if ((d = realloc(r->days, (r->ndays + 1) * sizeof(*d))) == NULL) {
            g->nomem = true;
            return;
        }
        r->days = d;
        memset(&d[r->ndays], 0, sizeof(*d));
        snprintf(d[r->ndays].day, sizeof(d->day), "%s", row->k.day);
        r->ndays++;
    }
    d = &r->days[r->ndays - 1];
    d->total += n;
    d->path[p] += n;
    if ((ru = rule_of(g, row->k.rule)) == NULL)
        return;
    ru->total += n;
    ru->action[a] += n;
    if (!authenticated(p))
        r->unauth += n;
    if (strcmp(row->k.domain, STATS_OVERFLOW) == 0)
        return; /* not a domain: in the totals only */
    /* One entry per row; merge_domains folds them. */
    if (r->ndoms == g->domcap) {
        size_t cap = g->domcap ? 2 * g->domcap : 256;
        struct ctl_report_domain *m = realloc(r->doms, cap * sizeof(*m));

        if (m == NULL) {
            g->nomem = true;
            return;
        }
        r->doms = m;
        g->domcap = cap;
    }
    dom = &r->doms[r->ndoms++];
    memset(dom, 0, sizeof(*dom));
    snprintf(dom->domain, sizeof(dom->domain), "%s", row->k.domain);
    dom->total = n;
    dom->path[p] = n;
    dom->unauth = authenticated(p) ? 0 : n;
}

static int
dom_by_name(const void *a, const void *b)
{
    return strcmp(((const struct ctl_report_domain *)a)->domain,
                  ((const struct ctl_report_domain *)b)->domain);
}

/* The most recipients without an authenticated path first, then the most
 * recipients, then by name: a stable order for the same figures. */
static int
dom_by_unauth(const void *a, const void *b)
{
    const struct ctl_report_domain *x = a, *y = b;

    if (x->unauth != y->unauth)
        return x->unauth < y->unauth ? 1 : -1;
    if (x->total != y->total)
        return x->total < y->total ? 1 : -1;
    return strcmp(x->domain, y->domain);
}

static int
rule_by_total(const void *a, const void *b)
{
    const struct ctl_report_rule *x = a, *y = b;

    if (x->total != y->total)
        return x->total < y->total ? 1 : -1;
    return strcmp(x->rule, y->rule);
}

static void
merge_domains(struct ctl_report *r)
{
    size_t j = 0;

    if (r->ndoms > 0) {
        qsort(r->doms, r->ndoms, sizeof(*r->doms), dom_by_name);
        for (size_t i = 1; i < r->ndoms; i++) {
            struct ctl_report_domain *d = &r->doms[j], *s = &r->doms[i];

            if (strcmp(s->domain, d->domain) != 0) {
                r->doms[++j] = *s;
                continue;
            }
            d->total += s->total;
            d->unauth += s->unauth;
            for (int p = 0; p < CTL_REPORT_NPATHS; p++)
                d->path[p] += s->path[p];
        }
        r->ndoms = j + 1;
        qsort(r->doms, r->ndoms, sizeof(*r->doms), dom_by_unauth);
    }
    if (r->nrules > 0)
        qsort(r->rules, r->nrules, sizeof(*r->rules), rule_by_total);
}

/* ------------------------------------------------------- the cache now */

/* DANE outcomes, the worst last: a failure outweighs a verified host. */
static int
dane_rank(int d)
{
    switch (d) {
    case TLSA_DANE_NONE: return 0;
    case TLSA_DANE_VERIFIED: return 1;
    case TLSA_DANE_UNUSABLE: return 2;
    case TLSA_DANE_FAILED: return 3;
    case TLSA_DANE_LOOKUP_FAILED: return 4;
    default: return -1;
    }
}

/* The grade and DANE outcome of one MX host from its probe rows. */
static void
host_facts(struct cache *c, const char *host, int port, struct ctl_report_facts *f)
{
    struct probecache_row rows[PROBECACHE_ADDR_MAX];
    struct probecache_host sum;
    struct mts_err err;
    size_t n = 0, n_bad = 0;

    if (probecache_get(c, host, port, rows, PROBECACHE_ADDR_MAX, &n, &n_bad, &err) != CACHE_OK ||
        n == 0)
        return;
    probecache_summarise(rows, n, &sum);
    /* The domain's grade: the worst of the hosts that could be judged, as
     * probecache_summarise does for a host's addresses. */
    if (f->grade < 0 || (f->grade == TLSPROBE_GRADE_UNKNOWN && sum.grade != TLSPROBE_GRADE_UNKNOWN) ||
        (sum.grade != TLSPROBE_GRADE_UNKNOWN && (int)sum.grade > f->grade)) {
        f->grade = (int)sum.grade;
        snprintf(f->grade_host, sizeof(f->grade_host), "%s", host);
    }
    for (size_t i = 0; i < n; i++)
        if (dane_rank((int)rows[i].dane) > dane_rank(f->dane)) {
            f->dane = (int)rows[i].dane;
            snprintf(f->dane_host, sizeof(f->dane_host), "%s", host);
        }
}

static void
domain_facts(struct cache *c, const char *domain, int port, struct ctl_report_facts *f)
{
    struct cache_entry e;
    struct cache_mxset m;
    struct mts_err err;

    memset(f, 0, sizeof(*f));
    f->status = f->grade = f->dane = -1;
    if (cache_get(c, domain, &e, &err) == CACHE_OK) {
        f->in_cache = true;
        f->status = e.has_status ? (int)e.status : -1;
    }
    cache_entry_free(&e);
    if (cache_get_mx(c, domain, &m, &err) != CACHE_OK)
        return;
    f->has_mx = true;
    f->null_mx = m.n == 1 && strcmp(m.hosts[0], ".") == 0;
    for (size_t i = 0; i < m.n && !f->null_mx; i++)
        host_facts(c, m.hosts[i], port, f);
    cache_mxset_free(&m);
}

/* What a domain without an authenticated path would need (ctl_report.h). */
static void
domain_need(struct ctl_report_top *d)
{
    const struct ctl_report_facts *f = &d->f;
    enum ctl_report_need n;
    const char *host = "";

    if (f->null_mx)
        n = CTL_REPORT_NEED_NO_MAIL;
    else if (f->dane == TLSA_DANE_FAILED || f->dane == TLSA_DANE_LOOKUP_FAILED)
        n = CTL_REPORT_NEED_FIX_DANE, host = f->dane_host;
    else if (!f->in_cache && !f->has_mx)
        n = CTL_REPORT_NEED_CHECK;
    else if (f->grade == TLSPROBE_GRADE_FAIL)
        n = CTL_REPORT_NEED_STARTTLS, host = f->grade_host;
    else if (f->grade == TLSPROBE_GRADE_UNVERIFIED)
        n = CTL_REPORT_NEED_FIX_CERT, host = f->grade_host;
    else if (f->grade == TLSPROBE_GRADE_UNKNOWN)
        n = CTL_REPORT_NEED_REACHABLE, host = f->grade_host;
    else if (f->status == STATUS_FAILED)
        n = CTL_REPORT_NEED_FIX_POLICY;
    else if (f->status == STATUS_ENFORCE || f->dane == TLSA_DANE_VERIFIED)
        n = CTL_REPORT_NEED_ROUTE;
    else if (f->status < 0 || f->status == STATUS_UNKNOWN)
        n = CTL_REPORT_NEED_CHECK;
    else
        n = CTL_REPORT_NEED_MTA_STS_ENFORCE;
    d->need = n;
    snprintf(d->need_host, sizeof(d->need_host), "%s", host);
}

/* The facts of every domain, counted for the adoption; kept for the top ones. */
static void
look_up_domains(struct cache *c, int port, struct ctl_report *r)
{
    struct ctl_report_adoption *a = &r->adoption;
    struct ctl_report_facts f;

    for (size_t i = 0; i < r->ndoms; i++) {
        const struct ctl_report_domain *d = &r->doms[i];
        bool dane;

        domain_facts(c, d->domain, port, &f);
        a->domains++;
        a->looked_up += f.in_cache;
        a->mta_sts_enforce += f.status == STATUS_ENFORCE;
        a->mta_sts_testing += f.status == STATUS_TESTING;
        /* A domain that publishes TLSA records, whatever they verified. */
        dane = f.dane == TLSA_DANE_VERIFIED || f.dane == TLSA_DANE_FAILED ||
               f.dane == TLSA_DANE_UNUSABLE;
        a->dane += dane;
        a->either += dane || f.status == STATUS_ENFORCE;
        a->authenticated += d->path[CTL_REPORT_PATH_DANE] + d->path[CTL_REPORT_PATH_MTA_STS] > 0;
        /* doms is sorted by unauth: the first with some are the top. */
        if (d->unauth > 0 && r->ntop < CTL_REPORT_TOP) {
            struct ctl_report_top *t = &r->top[r->ntop++];

            t->d = *d;
            t->f = f;
            domain_need(t);
        }
    }
}

/* ------------------------------------------------------------ the command */

static void
report_usage(FILE *to)
{
    fprintf(to, "usage: mtasts-ctl [-c CONFIG] report [--since DURATION] [--format html|json|csv]\n"
                "                  [-o FILE]\n"
                "  the report of the verdict statistics since DURATION ago (default 30d;\n"
                "  s, m, h, d, w): path kinds by day, deferrals and rejections by reason and\n"
                "  rule, the domains without an authenticated path and what they need, DANE\n"
                "  and MTA-STS adoption; HTML (default), JSON or CSV, on stdout or in FILE\n");
}

static int
write_report(const struct ctl_report *r, int format, FILE *out)
{
    switch (format) {
    case FORMAT_JSON: return ctl_report_json(r, out);
    case FORMAT_CSV: return ctl_report_csv(r, out);
    default: return ctl_report_html(r, out);
    }
}

/* The report into memory first, so that a failure leaves no half file. */
static int
emit(const struct ctl_report *r, int format, const char *path)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&buf, &len), *out;
    int rc = CTL_EXIT_OK;

    if (m == NULL || write_report(r, format, m) != 0 || fclose(m) != 0) {
        fprintf(stderr, "mtasts-ctl: report: out of memory\n");
        free(buf);
        return CTL_EXIT_CACHE;
    }
    out = path != NULL ? fopen(path, "w") : stdout;
    if (out == NULL) {
        fprintf(stderr, "mtasts-ctl: report: cannot write %s: %s\n", path, strerror(errno));
        free(buf);
        return CTL_EXIT_USAGE;
    }
    if (fwrite(buf, 1, len, out) != len || fflush(out) != 0 ||
        (path != NULL && fclose(out) != 0)) {
        fprintf(stderr, "mtasts-ctl: report: cannot write %s: %s\n",
                path != NULL ? path : "the standard output", strerror(errno));
        rc = CTL_EXIT_USAGE;
    }
    free(buf);
    return rc;
}

int
ctl_report(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"since", required_argument, NULL, 's'},
        {"format", required_argument, NULL, 'f'},
        {"output", required_argument, NULL, 'o'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct ctl_report r;
    struct gather g = {&r, 0, false};
    struct config *cfg;
    struct cache *cache = NULL;
    struct mts_err err = {0};
    struct stat st;
    long long since = 30LL * 86400;
    const char *output = NULL;
    int c, format = FORMAT_HTML, rc;
    char allowed[64];

    optind = 1;
    while ((c = getopt_long(argc, argv, "s:f:o:h", longopts, NULL)) != -1) {
        switch (c) {
        case 's':
            if (ctl_parse_since(optarg, &since) != 0) {
                fprintf(stderr, "mtasts-ctl: report --since \"%s\": expected a duration such as "
                                "30d, 12h or 2w (at most ten years)\n", optarg);
                return CTL_EXIT_USAGE;
            }
            break;
        case 'f':
            if ((format = nametab_code(format_names, NAMETAB_IGNORE_CASE, optarg)) < 0) {
                fprintf(stderr, "mtasts-ctl: report --format \"%s\": expected %s\n", optarg,
                        nametab_list(format_names, allowed, sizeof(allowed)));
                return CTL_EXIT_USAGE;
            }
            break;
        case 'o':
            output = optarg;
            break;
        case 'h':
            report_usage(stdout);
            return CTL_EXIT_OK;
        default:
            report_usage(stderr);
            return CTL_EXIT_USAGE;
        }
    }
    if (optind != argc) {
        report_usage(stderr);
        return CTL_EXIT_USAGE;
    }
    if ((cfg = ctl_config()) == NULL)
        return CTL_EXIT_USAGE;
    /* A read-only open of a missing file says only "unable to open": say which. */
    if (stat(cfg->cache_db, &st) != 0) {
        fprintf(stderr, "mtasts-ctl: report: no cache file %s (%s): the milter creates it at "
                        "its first start (option cache_db)\n", cfg->cache_db, strerror(errno));
        return CTL_EXIT_CACHE;
    }
    if (cache_open_readonly(cfg->cache_db, (int)cfg->cache_busy_timeout_ms, &cache, &err) !=
        CACHE_OK) {
        fprintf(stderr, "mtasts-ctl: report: %s\n", err.msg);
        return CTL_EXIT_CACHE;
    }
    memset(&r, 0, sizeof(r));
    r.generated = (int64_t)time(NULL);
    stats_day((time_t)r.generated - (time_t)since, r.since);
    stats_day((time_t)r.generated, r.until);
    if (cache_stats_list(cache, r.since, add_row, &g, &err) != CACHE_OK) {
        fprintf(stderr, "mtasts-ctl: report: %s\n", err.msg);
        rc = CTL_EXIT_CACHE;
    } else if (g.nomem) {
        fprintf(stderr, "mtasts-ctl: report: out of memory\n");
        rc = CTL_EXIT_CACHE;
    } else {
        merge_domains(&r);
        look_up_domains(cache, (int)cfg->probe_port, &r);
        rc = emit(&r, format, output);
    }
    cache_close(cache);
    free(r.days);
    free(r.rules);
    free(r.doms);
    return rc;
}
