/*
 * ctl_lookup - `mtasts-ctl lookup DOMAIN` and `mtasts-ctl prefetch FILE`:
 * a domain's MTA-STS status through the same discovery code and cache the
 * milter uses.
 *
 * Exit status: 0 a status was learnt (enforce, testing, none, absent,
 * failed); 3 unknown (DNS could not answer, or the deadline passed); 2
 * usage or configuration error. See man/mtasts-ctl.1.
 */
#include "ctl.h"

#include <getopt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "discover.h"
#include "probes.h"

static json_t *
json_str_or_null(const char *s)
{
    return s != NULL && *s != '\0' ? json_string(s) : json_null();
}

static json_t *
result_json(const struct status_result *r)
{
    json_t *o = json_object();

    json_object_set_new(o, "domain", json_string(r->domain));
    json_object_set_new(o, "status", json_string(status_kind_name(r->status)));
    json_object_set_new(o, "source",
                        json_string(r->source == STATUS_FROM_CACHE   ? "cache"
                                    : r->source == STATUS_FROM_FLEET ? "fleet"
                                                                     : "fresh"));
    /* The row's source (cache.h): null this host, else the fleet host. */
    json_object_set_new(o, "fleet_host", json_str_or_null(r->origin));
    json_object_set_new(o, "dnssec", json_str_or_null(r->dnssec));
    json_object_set_new(o, "txt_id", json_str_or_null(r->txt_id));
    if (r->has_policy) {
        json_t *p = json_object(), *mx = json_array();

        for (size_t i = 0; i < r->n_mx; i++)
            json_array_append_new(mx, json_string(r->mx[i]));
        json_object_set_new(p, "mode", json_string(policy_mode_name(r->mode)));
        json_object_set_new(p, "max_age", json_integer(r->max_age));
        json_object_set_new(p, "mx", mx);
        json_object_set_new(p, "fetched_at", json_integer(r->fetched_at));
        json_object_set_new(p, "expires_at", json_integer(r->expires_at));
        json_object_set_new(o, "policy", p);
    } else {
        json_object_set_new(o, "policy", json_null());
    }
    json_object_set_new(o, "checked_at", r->checked_at > 0 ? json_integer(r->checked_at) :
                                                             json_null());
    json_object_set_new(o, "error", json_str_or_null(r->error));
    return o;
}

static void
result_print(const struct status_result *r)
{
    char t1[32], t2[32], t3[32];

    printf("domain:  %s\nstatus:  %s\nsource:  %s\n", r->domain,
           status_kind_name(r->status),
           r->source == STATUS_FROM_CACHE   ? "cache"
           : r->source == STATUS_FROM_FLEET ? "from the fleet"
                                            : "fresh lookup");
    printf("learnt:  %s%s\n", r->origin[0] ? "from the fleet, by " : "fetched here", r->origin);
    printf("dnssec:  %s\n", r->dnssec[0] ? r->dnssec : "-");
    printf("txt id:  %s\n", r->txt_id[0] ? r->txt_id : "-");
    if (r->has_policy) {
        ctl_fmt_time(r->fetched_at, t1, sizeof(t1));
        ctl_fmt_time(r->expires_at, t2, sizeof(t2));
        printf("policy:  mode %s, max_age %u s, fetched %s, expires %s\n",
               policy_mode_name(r->mode), (unsigned)r->max_age, t1, t2);
        for (size_t i = 0; i < r->n_mx; i++)
            printf("mx:      %s\n", r->mx[i]);
    } else {
        printf("policy:  -\n");
    }
    ctl_fmt_time(r->checked_at, t3, sizeof(t3));
    printf("checked: %s\n", t3);
    if (r->error[0])
        printf("reason:  %s\n", r->error);
}

static void
usage_lookup(FILE *to)
{
    fprintf(to, "usage: mtasts-ctl [-c CONFIG] lookup [--json] [--no-cache] [--recheck]\n"
                "                  [--deadline MS] DOMAIN\n");
}

int
ctl_lookup(int argc, char **argv)
{
    static const struct option opts[] = {
        {"json", no_argument, NULL, 'j'},
        {"no-cache", no_argument, NULL, 'n'},
        {"recheck", no_argument, NULL, 'r'},
        {"deadline", required_argument, NULL, 'd'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    bool json = false;
    int flags = 0, lflags = 0, c, deadline;
    struct config *cfg;
    struct discover *d;
    struct status_result res;
    struct mts_err err;
    char *end;
    struct ctl_resolver_notes notes;

    if ((cfg = ctl_config()) == NULL)
        return CTL_EXIT_USAGE;
    /* 0: wait as long as the lookup itself can take, for the definitive
     * answer (a policy host that hangs is "failed", not "unknown"). */
    deadline = cfg->lookup_deadline_ms > 0 ? (int)cfg->lookup_deadline_ms :
                                             discover_lookup_bound_ms(cfg);
    optind = 1;
    while ((c = getopt_long(argc, argv, "+jnrd:h", opts, NULL)) != -1) {
        switch (c) {
        case 'j':
            json = true;
            break;
        case 'n':
            flags |= DISCOVER_NO_CACHE;
            break;
        case 'r':
            lflags |= DISCOVER_RECHECK;
            break;
        case 'd':
            deadline = (int)strtol(optarg, &end, 10);
            if (*end != '\0' || deadline < 1 || deadline > 600000) {
                fprintf(stderr, "mtasts-ctl: --deadline: 1 to 600000 ms\n");
                return CTL_EXIT_USAGE;
            }
            break;
        case 'h':
            usage_lookup(stdout);
            return CTL_EXIT_OK;
        default:
            usage_lookup(stderr);
            return CTL_EXIT_USAGE;
        }
    }
    if (argc - optind != 1) {
        usage_lookup(stderr);
        return CTL_EXIT_USAGE;
    }
    if ((c = discover_open(cfg, flags, &d, &err)) != 0) {
        fprintf(stderr, "mtasts-ctl: %s\n", err.msg);
        return c == DISCOVER_OPEN_CACHE_ERROR ? CTL_EXIT_CACHE : CTL_EXIT_USAGE;
    }
    discover_lookup(d, argv[optind], (struct timespec[]){clock_deadline_after(deadline)}, lflags, &res);
    /* An unknown answer may be no fault of the domain's: say so when the
     * resolver itself cannot carry DNSSEC, or had backed off a forwarder. */
    ctl_resolver_diagnose(d, res.status == STATUS_UNKNOWN, &notes);
    if (json) {
        json_t *o = result_json(&res);
        ctl_resolver_json(o, &notes);
        ctl_print_json(o);
        json_decref(o);
    } else {
        result_print(&res);
        ctl_resolver_print(&notes);
    }
    discover_close(d);
    c = res.status == STATUS_UNKNOWN ? CTL_EXIT_UNKNOWN : CTL_EXIT_OK;
    if (res.error[0] && strncmp(res.error, "invalid domain", 14) == 0)
        c = CTL_EXIT_USAGE;
    status_result_free(&res);
    return c;
}

/* ------------------------------------------------------------ prefetch */

#define PREFETCH_MAX_DOMAINS 1000000

struct prefetch {
    pthread_mutex_t mu;
    char **domains;
    size_t n, next, done;
    size_t count[STATUS_UNKNOWN + 1];
    struct discover *d;
    struct probes *probes;	/* NULL: mx_probes = no */
    size_t probed;		/* MX hosts whose probes were started */
    int deadline;
    bool progress;
};

/*
 * With mx_probes: the probes of the MX hosts that decide an enforce
 * domain's verdict (those matching its policy) start now, as the milter's
 * first RCPT would start them; their rows go to the shared cache, where
 * the milter finds them. Returns the hosts asked for.
 */
static size_t
prefetch_probes(struct prefetch *p, const struct status_result *res)
{
    char (*mx)[254];
    struct probes_host h;
    struct mts_err err;
    size_t asked = 0;
    int n;

    if (p->probes == NULL || res->status != STATUS_ENFORCE ||
        (mx = calloc(DISCOVER_MAX_MX, sizeof(*mx))) == NULL)
        return 0;
    n = discover_mx(p->d, res->domain, (struct timespec[]){clock_deadline_after(p->deadline)},
                    mx, &err);
    for (int i = 0; i < n; i++)
        if (strcmp(mx[i], ".") != 0 && status_result_mx_allows(res, mx[i])) {
            probes_get(p->probes, mx[i], &h);
            asked++;
        }
    free(mx);
    return asked;
}

static void *
prefetch_thread(void *arg)
{
    struct prefetch *p = arg;

    for (;;) {
        struct status_result res;
        size_t i, asked;

        pthread_mutex_lock(&p->mu);
        if (p->next == p->n) {
            pthread_mutex_unlock(&p->mu);
            return NULL;
        }
        i = p->next++;
        pthread_mutex_unlock(&p->mu);

        discover_lookup(p->d, p->domains[i], (struct timespec[]){clock_deadline_after(p->deadline)}, 0, &res);
        if (res.status == STATUS_UNKNOWN)
            fprintf(stderr, "%s%s: unknown: %s\n", p->progress ? "\r\033[K" : "", res.domain,
                    res.error);
        asked = prefetch_probes(p, &res);
        status_result_free(&res);

        pthread_mutex_lock(&p->mu);
        p->probed += asked;
        p->count[res.status]++;
        p->done++;
        if (p->progress)
            fprintf(stderr, "\rprefetch: %zu/%zu", p->done, p->n);
        pthread_mutex_unlock(&p->mu);
    }
}

/* Reads one domain a line; blank lines and '#' comments are skipped. */
static int
read_domains(const char *path, struct prefetch *p)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "r");
    char line[512];
    size_t cap = 0;

    if (f == NULL) {
        perror(path);
        return -1;
    }
    while (fgets(line, sizeof(line), f) != NULL) {
        char *s = line, *e;

        while (*s == ' ' || *s == '\t')
            s++;
        e = s + strcspn(s, " \t\r\n#");
        *e = '\0';
        if (*s == '\0')
            continue;
        if (p->n == PREFETCH_MAX_DOMAINS) {
            fprintf(stderr, "mtasts-ctl: more than %d domains\n", PREFETCH_MAX_DOMAINS);
            break;
        }
        if (p->n == cap) {
            char **nd;
            cap = cap ? cap * 2 : 64;
            nd = realloc(p->domains, cap * sizeof(*nd));
            if (nd == NULL)
                break;
            p->domains = nd;
        }
        if ((p->domains[p->n] = strdup(s)) == NULL)
            break;
        p->n++;
    }
    if (f != stdin)
        fclose(f);
    return 0;
}

int
ctl_prefetch(int argc, char **argv)
{
    struct prefetch p;
    struct config *cfg;
    struct mts_err err;
    pthread_t *threads;
    size_t n_threads;
    int rc = CTL_EXIT_OK;

    if (argc != 2 || argv[1][0] == '\0') {
        fprintf(stderr, "usage: mtasts-ctl [-c CONFIG] prefetch FILE|-\n");
        return CTL_EXIT_USAGE;
    }
    if ((cfg = ctl_config()) == NULL)
        return CTL_EXIT_USAGE;
    memset(&p, 0, sizeof(p));
    pthread_mutex_init(&p.mu, NULL);
    if (read_domains(argv[1], &p) != 0)
        return CTL_EXIT_USAGE;
    if ((rc = discover_open(cfg, 0, &p.d, &err)) != 0) {
        fprintf(stderr, "mtasts-ctl: %s\n", err.msg);
        return rc == DISCOVER_OPEN_CACHE_ERROR ? CTL_EXIT_CACHE : CTL_EXIT_USAGE;
    }
    if (cfg->mx_probes && probes_open(cfg, NULL, PROBES_NO_REFRESHER, &p.probes, &err) != 0) {
        fprintf(stderr, "mtasts-ctl: %s\n", err.msg);
        discover_close(p.d);
        return CTL_EXIT_USAGE;
    }
    p.deadline = discover_lookup_bound_ms(cfg);
    p.progress = isatty(STDERR_FILENO);
    n_threads = (size_t)cfg->lookup_workers;
    if (n_threads > p.n)
        n_threads = p.n;
    threads = calloc(n_threads ? n_threads : 1, sizeof(*threads));
    for (size_t i = 0; threads != NULL && i < n_threads; i++)
        pthread_create(&threads[i], NULL, prefetch_thread, &p);
    for (size_t i = 0; threads != NULL && i < n_threads; i++)
        pthread_join(threads[i], NULL);
    free(threads);
    if (p.probes != NULL) {
        /* Every probe started ends within probe_timeout_ms an address. */
        probes_drain(p.probes);
        probes_close(p.probes);
    }
    discover_close(p.d);
    if (p.progress)
        fprintf(stderr, "\n");
    printf("prefetched %zu domains:", p.done);
    for (int s = STATUS_ENFORCE; s <= STATUS_UNKNOWN; s++)
        printf(" %zu %s%s", p.count[s], status_kind_name((enum status_kind)s),
               s == STATUS_UNKNOWN ? "" : ",");
    if (cfg->mx_probes)
        printf("; probed %zu MX hosts", p.probed);
    printf("\n");
    if (p.count[STATUS_UNKNOWN] > 0 || p.done < p.n)
        rc = CTL_EXIT_UNKNOWN;
    for (size_t i = 0; i < p.n; i++)
        free(p.domains[i]);
    free(p.domains);
    pthread_mutex_destroy(&p.mu);
    return rc;
}
