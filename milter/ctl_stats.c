/*
 * ctl_stats - `mtasts-ctl stats`: the verdict statistics of the shared
 * cache (cache_stats.h) since a day, totalled by day, action, outcome and
 * path kind, and the domains most written to without an authenticated
 * path (neither DANE nor MTA-STS), for a person or (--json) for tools.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cache.h"
#include "cache_stats.h"
#include "config.h"
#include "ctl.h"
#include "stats.h"

#define WORDS_MAX 16		/* distinct words per total; more go under "other" */
#define TOP_DOMAINS 20
#define SINCE_MAX (10LL * 366 * 86400)

struct word_count {
    char w[STATS_WORD_MAX + 1];
    uint64_t n;
};

struct words {
    size_t n;
    struct word_count c[WORDS_MAX];
};

struct day {
    char day[11];
    uint64_t total;
    struct words actions, paths;
};

struct dom {
    char domain[STATS_DOMAIN_MAX + 1];
    uint64_t n;
};

struct totals {
    uint64_t total, dry_run, unauth;
    struct words actions, outcomes, paths;
    struct day *days;
    size_t ndays;
    struct dom *doms;	/* one per row without an authenticated path; merged after */
    size_t ndoms, domcap;
    bool nomem;
};

static void
count(struct words *ws, const char *w, uint64_t n)
{
    size_t i;

    for (i = 0; i < ws->n; i++)
        if (strcmp(ws->c[i].w, w) == 0)
            break;
    if (i == ws->n) {
        if (ws->n == WORDS_MAX) {
            i = WORDS_MAX - 1;	/* the last place holds the rest */
            snprintf(ws->c[i].w, sizeof(ws->c[i].w), "other");
        } else {
            snprintf(ws->c[i].w, sizeof(ws->c[i].w), "%s", w);
            ws->n++;
        }
    }
    ws->c[i].n += n;
}

/* The measure: a path is authenticated by DANE or by MTA-STS. */
static bool
authenticated(const char *path)
{
    return strcmp(path, "dane") == 0 || strcmp(path, "mta-sts") == 0;
}

static void
add_row(const struct stats_row *r, void *arg)
{
    struct totals *t = arg;
    struct day *d;

    t->total += r->count;
    if (r->k.dry_run)
        t->dry_run += r->count;
    count(&t->actions, r->k.action, r->count);
    count(&t->outcomes, r->k.outcome, r->count);
    count(&t->paths, r->k.path, r->count);
    /* Rows come by day: a new day is the next one. */
    if (t->ndays == 0 || strcmp(t->days[t->ndays - 1].day, r->k.day) != 0) {
        d = realloc(t->days, (t->ndays + 1) * sizeof(*d));
        if (d == NULL) {
            t->nomem = true;
            return;
        }
        t->days = d;
        memset(&d[t->ndays], 0, sizeof(*d));
        snprintf(d[t->ndays].day, sizeof(d->day), "%s", r->k.day);
        t->ndays++;
    }
    d = &t->days[t->ndays - 1];
    d->total += r->count;
    count(&d->actions, r->k.action, r->count);
    count(&d->paths, r->k.path, r->count);
    if (authenticated(r->k.path))
        return;
    t->unauth += r->count;
    if (t->ndoms == t->domcap) {
        size_t cap = t->domcap ? 2 * t->domcap : 256;
        struct dom *m = realloc(t->doms, cap * sizeof(*m));

        if (m == NULL) {
            t->nomem = true;
            return;
        }
        t->doms = m;
        t->domcap = cap;
    }
    snprintf(t->doms[t->ndoms].domain, sizeof(t->doms->domain), "%s", r->k.domain);
    t->doms[t->ndoms++].n = r->count;
}

static int
by_name(const void *a, const void *b)
{
    return strcmp(((const struct dom *)a)->domain, ((const struct dom *)b)->domain);
}

static int
by_count(const void *a, const void *b)
{
    const struct dom *x = a, *y = b;

    return x->n != y->n ? (x->n < y->n ? 1 : -1) : strcmp(x->domain, y->domain);
}

/* One entry per domain, the most written to first. */
static void
merge_domains(struct totals *t)
{
    size_t i, j = 0;

    if (t->ndoms == 0)
        return;
    qsort(t->doms, t->ndoms, sizeof(*t->doms), by_name);
    for (i = 1; i < t->ndoms; i++) {
        if (strcmp(t->doms[i].domain, t->doms[j].domain) == 0)
            t->doms[j].n += t->doms[i].n;
        else
            t->doms[++j] = t->doms[i];
    }
    t->ndoms = j + 1;
    qsort(t->doms, t->ndoms, sizeof(*t->doms), by_count);
}

/* "30d", "12h", "2w", "90m", "3600s" or seconds: a duration, at most ten years. */
int
ctl_parse_since(const char *v, long long *out)
{
    char *end;
    long long n = strtoll(v, &end, 10), mult = 1;

    if (end == v || n < 0 || n > SINCE_MAX)
        return -1;
    switch (*end) {
    case '\0': case 's': mult = 1; break;
    case 'm': mult = 60; break;
    case 'h': mult = 3600; break;
    case 'd': mult = 86400; break;
    case 'w': mult = 7 * 86400; break;
    default: return -1;
    }
    if (*end != '\0' && end[1] != '\0')
        return -1;
    if (n > SINCE_MAX / mult)
        return -1;
    *out = n * mult;
    return 0;
}

static json_t *
words_json(const struct words *ws)
{
    json_t *o = json_object();

    for (size_t i = 0; i < ws->n; i++)
        json_object_set_new(o, ws->c[i].w, json_integer((json_int_t)ws->c[i].n));
    return o;
}

static void
print_json(const struct totals *t, const char *since)
{
    json_t *o = json_object(), *days = json_array(), *doms = json_array();

    for (size_t i = 0; i < t->ndays; i++)
        json_array_append_new(days, json_pack("{s:s, s:I, s:o, s:o}", "day", t->days[i].day,
                                              "total", (json_int_t)t->days[i].total, "actions",
                                              words_json(&t->days[i].actions), "paths",
                                              words_json(&t->days[i].paths)));
    for (size_t i = 0; i < t->ndoms && i < TOP_DOMAINS; i++)
        json_array_append_new(doms, json_pack("{s:s, s:I}", "domain", t->doms[i].domain,
                                              "count", (json_int_t)t->doms[i].n));
    json_object_set_new(o, "since", json_string(since));
    json_object_set_new(o, "total", json_integer((json_int_t)t->total));
    json_object_set_new(o, "dry_run", json_integer((json_int_t)t->dry_run));
    json_object_set_new(o, "unauthenticated", json_integer((json_int_t)t->unauth));
    json_object_set_new(o, "actions", words_json(&t->actions));
    json_object_set_new(o, "outcomes", words_json(&t->outcomes));
    json_object_set_new(o, "paths", words_json(&t->paths));
    json_object_set_new(o, "days", days);
    json_object_set_new(o, "unauthenticated_domains", doms);
    json_dumpf(o, stdout, JSON_INDENT(2) | JSON_SORT_KEYS);
    putchar('\n');
    json_decref(o);
}

static void
print_words(const char *title, const struct words *ws)
{
    printf("%s:", title);
    for (size_t i = 0; i < ws->n; i++)
        printf(" %s %llu", ws->c[i].w, (unsigned long long)ws->c[i].n);
    printf("%s\n", ws->n == 0 ? " -" : "");
}

static void
print_text(const struct totals *t, const char *since)
{
    printf("recipients judged since %s: %llu (dry run: %llu)\n", since,
           (unsigned long long)t->total, (unsigned long long)t->dry_run);
    print_words("by action", &t->actions);
    print_words("by outcome", &t->outcomes);
    print_words("by path kind", &t->paths);
    printf("by day:\n");
    for (size_t i = 0; i < t->ndays; i++) {
        printf("  %s %llu;", t->days[i].day, (unsigned long long)t->days[i].total);
        print_words(" path kind", &t->days[i].paths);
    }
    printf("without an authenticated path (neither DANE nor MTA-STS): %llu; top domains:\n",
           (unsigned long long)t->unauth);
    for (size_t i = 0; i < t->ndoms && i < TOP_DOMAINS; i++)
        printf("  %-40s %llu\n", t->doms[i].domain, (unsigned long long)t->doms[i].n);
}

static void
stats_usage(FILE *to)
{
    fprintf(to, "usage: mtasts-ctl [-c CONFIG] stats [--since DURATION] [--json]\n"
                "  verdict statistics of the shared cache since DURATION ago (default 30d;\n"
                "  s, m, h, d, w), by day, action, outcome and path kind, and the domains\n"
                "  most written to without an authenticated path\n");
}

int
ctl_stats(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"json", no_argument, NULL, 'j'},
        {"since", required_argument, NULL, 's'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct totals t;
    struct config *cfg;
    struct cache *cache = NULL;
    struct mts_err err = {0};
    long long since = 30LL * 86400;
    char day[11];
    bool json = false;
    int c, rc = CTL_EXIT_OK;

    optind = 1;
    while ((c = getopt_long(argc, argv, "js:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'j':
            json = true;
            break;
        case 's':
            if (ctl_parse_since(optarg, &since) != 0) {
                fprintf(stderr, "mtasts-ctl: stats --since \"%s\": expected a duration such as "
                                "30d, 12h or 2w (at most ten years)\n", optarg);
                return CTL_EXIT_USAGE;
            }
            break;
        case 'h':
            stats_usage(stdout);
            return CTL_EXIT_OK;
        default:
            stats_usage(stderr);
            return CTL_EXIT_USAGE;
        }
    }
    if (optind != argc) {
        stats_usage(stderr);
        return CTL_EXIT_USAGE;
    }
    if ((cfg = ctl_config()) == NULL)
        return CTL_EXIT_USAGE;
    if (cache_open_readonly(cfg->cache_db, (int)cfg->cache_busy_timeout_ms, &cache, &err) !=
        CACHE_OK) {
        fprintf(stderr, "mtasts-ctl: %s\n", err.msg);
        return CTL_EXIT_CACHE;
    }
    memset(&t, 0, sizeof(t));
    stats_day(time(NULL) - (time_t)since, day);
    if (cache_stats_list(cache, day, add_row, &t, &err) != CACHE_OK) {
        fprintf(stderr, "mtasts-ctl: %s\n", err.msg);
        rc = CTL_EXIT_CACHE;
    } else if (t.nomem) {
        fprintf(stderr, "mtasts-ctl: out of memory\n");
        rc = CTL_EXIT_CACHE;
    } else {
        merge_domains(&t);
        if (json)
            print_json(&t, day);
        else
            print_text(&t, day);
    }
    cache_close(cache);
    free(t.days);
    free(t.doms);
    return rc;
}
