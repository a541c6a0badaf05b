/*
 * ctl_check - `mtasts-ctl check DOMAIN`: a domain's MTA-STS and SMTP TLS
 * report, like the online TLS checkers: the _mta-sts TXT records and their
 * DNSSEC state, the policy (a fresh discovery, its reason), every MX host
 * (preference, addresses, a STARTTLS probe of each address, the grade, the
 * policy match), what a sender enforcing MTA-STS would do, and one grade for
 * the domain.
 *
 * DESCRIPTION
 *	Looks up afresh (discover with DISCOVER_NO_CACHE: the policy cache is
 *	neither read nor written) and asks the resolver itself for the TXT
 *	and MX records (with their DNSSEC state) and each host's addresses.
 *	It probes as the milter does (probeconf.h: the CA store of
 *	probe_ca_file, the EHLO name, probe_port, probe_timeout_ms; no host on
 *	probe_never, no address outside the global internet unless
 *	probe_allow_networks lists it) and judges a host from its addresses
 *	as the milter does (probecache_row_from, probecache_summarise).
 *	Nothing is written to the shared cache, whose probe rows the milter
 *	trusts for probe_ttl, unless --store asks, and then only probes run
 *	with the configuration's port and timeout.
 *	At most CHECK_MAX_HOSTS MX hosts (the most preferred) and
 *	CHECK_MAX_ADDRS (= PROBECACHE_ADDR_MAX, as the milter) addresses a
 *	host are probed, CHECK_PARALLEL at a time; each probe ends timeout ms
 *	after it starts, and none runs past twice the timeout from the start
 *	of the probing, so a check is bounded whatever the domain publishes.
 *	The grade rules are in man/mtasts-ctl.1 (CHECK GRADES) and
 *	check_judge() below.
 *
 * DIAGNOSTICS
 *	Exit status: 0 the domain's grade is good, weak or none (a null MX);
 *	1 unverified or fail; 3 unknown; 2 usage or configuration error.
 */
#include "ctl.h"

#include <getopt.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "config.h"
#include "discover.h"
#include "dns.h"
#include "domain.h"
#include "mxmatch.h"
#include "nametab.h"
#include "probeconf.h"
#include "probes.h"
#include "probecache.h"
#include "tlsprobe.h"

#include "ctl_check.h"

static void
usage(FILE *to)
{
    fprintf(to, "usage: mtasts-ctl [-c CONFIG] check [--json] [--mx HOST] [--port N]\n"
                "                  [--timeout MS] [--store] DOMAIN\n");
}

static void __attribute__((format(printf, 2, 3)))
note(struct check *c, const char *fmt, ...)
{
    va_list ap;

    if (c->n_notes == sizeof(c->notes) / sizeof(c->notes[0]))
        return;
    va_start(ap, fmt);
    vsnprintf(c->notes[c->n_notes++], CHECK_TEXT_MAX, fmt, ap);
    va_end(ap);
}

/* ---------------------------------------------------------------- DNS */

static int
cmp_host(const void *a, const void *b)
{
    const struct check_host *x = a, *y = b;

    return x->pref != y->pref ? (x->pref < y->pref ? -1 : 1) : strcmp(x->name, y->name);
}

/* The MX hosts to probe, most preferred first: all of them or --mx's. */
static void
collect_hosts(struct check *c, struct dns *d)
{
    struct check_host all[DNS_MAX_RRS];
    size_t n = 0;

    dns_query(d, c->domain, DNS_MX, NULL, &c->mx, &c->mx_err);
    if (c->mx.status == DNS_NXDOMAIN || c->mx.status == DNS_NODATA) {
        /* RFC 5321 §5.1: no MX means the domain itself, preference 0. */
        c->implicit_mx = true;
        snprintf(all[n].name, sizeof(all[n].name), "%s", c->domain);
        all[n++].pref = 0;
    }
    for (size_t i = 0; c->mx.status == DNS_OK && i < c->mx.n; i++) {
        char h[MXMATCH_NAME_MAX + 1];

        if (strcmp(c->mx.rr[i].text, ".") == 0) {
            c->null_mx = c->mx.n == 1;
            if (!c->null_mx)
                note(c, "a null MX (\".\") beside other MX records is meaningless (RFC 7505 §3)");
            continue;
        }
        if (mxmatch_host_normalize(c->mx.rr[i].text, c->mx.rr[i].len, h, sizeof(h), NULL) != 0)
            continue;
        bool dup = false;
        for (size_t k = 0; k < n; k++)
            dup = dup || strcmp(all[k].name, h) == 0;
        if (dup)
            continue;
        snprintf(all[n].name, sizeof(all[n].name), "%s", h);
        all[n++].pref = c->mx.rr[i].pref;
    }
    c->n_mx = c->implicit_mx ? 0 : n;
    qsort(all, n, sizeof(all[0]), cmp_host);
    if (c->only != NULL) {
        size_t k = 0;
        while (k < n && strcmp(all[k].name, c->only) != 0)
            k++;
        c->hosts[0] = k < n ? all[k] : (struct check_host){.pref = -1};
        if (k == n) {
            snprintf(c->hosts[0].name, sizeof(c->hosts[0].name), "%s", c->only);
            note(c, "%s is not an MX host of %s; probed as asked", c->only, c->domain);
        }
        c->n_hosts = 1;
        return;
    }
    if (c->null_mx)
        return;
    c->n_hosts = n < CHECK_MAX_HOSTS ? n : CHECK_MAX_HOSTS;
    memcpy(c->hosts, all, c->n_hosts * sizeof(all[0]));
    if (n > CHECK_MAX_HOSTS)
        note(c, "%zu MX hosts; the %d most preferred were probed", n, CHECK_MAX_HOSTS);
}

/* Each host's addresses, into the probe list. */
static int
collect_addresses(struct check *c, struct dns *d, int dns_ms)
{
    struct timespec dl = clock_deadline_after(2 * dns_ms);

    c->probes = calloc(CHECK_MAX_HOSTS * CHECK_MAX_ADDRS, sizeof(*c->probes));
    if (c->probes == NULL)
        return -1;
    for (size_t i = 0; i < c->n_hosts; i++) {
        struct check_host *h = &c->hosts[i];
        struct dns_answer a;
        struct mts_err err = {""};

        h->first = c->n_probes;
        if (probes_never(c->pc.never, h->name)) {
            snprintf(h->not_probed, sizeof(h->not_probed), "%s is on probe_never", h->name);
            continue;
        }
        dns_addresses(d, h->name, &dl, &a, &err);
        h->dns = a.status;
        if (a.status != DNS_OK)
            snprintf(h->dns_error, sizeof(h->dns_error), "%s", err.msg);
        if (a.status == DNS_OK && a.canonical[0] != '\0' && strcmp(a.canonical, h->name) != 0)
            snprintf(h->canonical, sizeof(h->canonical), "%s", a.canonical);
        h->n_addrs = a.status == DNS_OK ? a.n : 0;
        for (size_t k = 0; k < h->n_addrs && k < CHECK_MAX_ADDRS; k++) {
            struct check_probe *p;
            char why[sizeof(h->not_probed)];

            if (!probeconf_may_connect(&c->pc, a.rr[k].text, why, sizeof(why))) {
                if (h->not_probed[0] == '\0')
                    snprintf(h->not_probed, sizeof(h->not_probed), "%s", why);
                continue;
            }
            p = &c->probes[c->n_probes++];
            p->host = i;
            snprintf(p->address, sizeof(p->address), "%s", a.rr[k].text);
        }
        h->n_probes = c->n_probes - h->first;
        dns_answer_free(&a);
    }
    check_dane_lookup(c, d, &dl);
    return 0;
}

/* ---------------------------------------------------------------- probes */

static void *
probe_worker(void *arg)
{
    struct check *c = arg;

    for (;;) {
        struct check_probe *p;
        struct timespec dl;

        pthread_mutex_lock(&c->mu);
        p = c->next < c->n_probes ? &c->probes[c->next++] : NULL;
        pthread_mutex_unlock(&c->mu);
        if (p == NULL)
            return NULL;
        struct tlsprobe_options o = c->pc.tls;

        o.tlsa = &c->hosts[p->host].tlsa; /* DANE where it has usable records */
        dl = clock_deadline_after(c->timeout);
        (void)tlsprobe_run(&o, c->hosts[p->host].name, p->address, c->port,
                           clock_earlier(&dl, &c->phase_end), &p->r);
        tlsprobe_grade(&p->r, &p->g);
    }
}

static void
run_probes(struct check *c)
{
    pthread_t t[CHECK_PARALLEL];
    size_t n = c->n_probes < CHECK_PARALLEL ? c->n_probes : CHECK_PARALLEL, started = 0;

    c->phase_end = clock_deadline_after(2 * c->timeout);
    for (size_t i = 0; i < n; i++)
        if (pthread_create(&t[started], NULL, probe_worker, c) == 0)
            started++;
    if (started == 0)
        probe_worker(c);
    for (size_t i = 0; i < started; i++)
        pthread_join(t[i], NULL);
}

/* Each probe as the row the milter would keep of it (probes.c). */
static void
make_rows(struct check *c)
{
    int64_t now = (int64_t)time(NULL);

    for (size_t i = 0; i < c->n_probes; i++) {
        struct check_probe *p = &c->probes[i];

        if (p->r.address[0] == '\0')
            continue; /* never started */
        /* The row names what was asked, whatever the probe filled in. */
        snprintf(p->r.mx_host, sizeof(p->r.mx_host), "%s", c->hosts[p->host].name);
        probecache_row_from(&p->r, &p->g, now, c->pc.ttl, c->pc.failure_ttl, &p->row);
        probecache_row_dane(&p->row, &c->hosts[p->host].tlsa, &p->r, c->pc.failure_ttl);
        p->have_row = true;
    }
}

/*
 * --store: the rows into the shared cache, which the milter trusts for
 * probe_ttl. Only probes run as the milter runs them (this configuration's
 * port and timeout); the options are this configuration's, so --store is
 * for the milter's own configuration.
 */
static void
store_probes(const struct check *c, const struct config *cfg)
{
    struct cache *db = NULL;
    struct mts_err err;

    if (!c->store || c->n_probes == 0)
        return;
    if (c->port != c->pc.port || c->timeout != c->pc.timeout_ms) {
        fprintf(stderr, "mtasts-ctl: --store: nothing stored: --port or --timeout differ from "
                        "probe_port or probe_timeout_ms\n");
        return;
    }
    if (cache_open(cfg->cache_db, (int)cfg->cache_busy_timeout_ms, &db, &err) != CACHE_OK) {
        fprintf(stderr, "mtasts-ctl: probe results not cached: %s\n", err.msg);
        return;
    }
    for (size_t i = 0; i < c->n_probes; i++)
        if (c->probes[i].have_row && probecache_put(db, &c->probes[i].row, &err) != CACHE_OK) {
            fprintf(stderr, "mtasts-ctl: probe results not cached: %s\n", err.msg);
            break;
        }
    cache_close(db);
}

/* ---------------------------------------------------------------- judgement */

/* A host's grade: the milter's judgement of its addresses' rows
 * (probecache_summarise: the worst that could be judged, else unknown). */
static void
judge_host(struct check *c, struct check_host *h)
{
    struct probecache_row rows[CHECK_MAX_ADDRS];
    struct probecache_host sum;
    size_t n = 0;

    h->match = c->res.has_policy ? status_result_mx_allows(&c->res, h->name) : -1;
    h->grade = TLSPROBE_GRADE_UNKNOWN;
    for (size_t k = h->first; k < h->first + h->n_probes && n < CHECK_MAX_ADDRS; k++)
        if (c->probes[k].have_row)
            rows[n++] = c->probes[k].row;
    if (n > 0) {
        probecache_summarise(rows, n, &sum);
        h->grade = sum.grade;
        snprintf(h->why, sizeof(h->why), "%s", sum.worst->reason);
    } else if (h->not_probed[0] != '\0') {
        snprintf(h->why, sizeof(h->why), "not probed: %s", h->not_probed);
    } else if (h->dns != DNS_OK) {
        snprintf(h->why, sizeof(h->why), "no address: %s", h->dns_error);
    } else {
        snprintf(h->why, sizeof(h->why), "no address");
    }
    check_dane_host(c, h);
}

/* Appends "name" to a ", "-separated list in out. */
static void
list_add(char *out, size_t outsz, const char *name)
{
    size_t l = strlen(out);

    snprintf(out + l, outsz - l, "%s%s", l > 0 ? ", " : "", name);
}

/* The sender's action and the domain grade (see CHECK GRADES in the man page). */
static void
check_judge(struct check *c)
{
    enum status_kind st = c->res.status;
    char deliver[CHECK_TEXT_MAX] = "", matching[CHECK_TEXT_MAX] = "";
    int best = -1, worst_pass = -1, worst_any = -1;
    const struct check_host *first_bad = NULL;

    for (size_t i = 0; i < c->n_hosts; i++) {
        struct check_host *h = &c->hosts[i];
        judge_host(c, h);
        if (h->grade != TLSPROBE_GRADE_UNKNOWN && (int)h->grade > worst_any)
            worst_any = (int)h->grade;
        if (h->match != 1)
            continue;
        list_add(matching, sizeof(matching), h->name);
        if (best < 0 || (int)h->grade < best)
            best = (int)h->grade;
        if (ctl_check_passes(h)) {
            list_add(deliver, sizeof(deliver), h->name);
            if ((int)h->grade > worst_pass)
                worst_pass = (int)h->grade;
        } else if (first_bad == NULL) {
            first_bad = h;
        }
    }
    if (c->null_mx) {
        c->action = ACTION_NO_MAIL;
        c->grade = CHECK_NONE;
        snprintf(c->sender, sizeof(c->sender),
                 "no mail: the domain publishes a null MX (RFC 7505)");
        snprintf(c->grade_why, sizeof(c->grade_why), "the domain accepts no mail");
        return;
    }
    if (st == STATUS_UNKNOWN) {
        c->action = ACTION_UNKNOWN;
        c->grade = CHECK_UNKNOWN;
        snprintf(c->sender, sizeof(c->sender),
                 "the MTA-STS status could not be learnt now: a sender defers or delivers by "
                 "its own rule");
        snprintf(c->grade_why, sizeof(c->grade_why), "the MTA-STS status is unknown");
        return;
    }
    if (st == STATUS_ENFORCE) {
        if (matching[0] == '\0') {
            c->action = ACTION_DEFER;
            c->grade = CHECK_FAIL;
            snprintf(c->sender, sizeof(c->sender),
                     "defer: no %sMX host matches the policy's mx patterns (RFC 8461 §4.1)",
                     c->only != NULL ? "probed " : "");
            snprintf(c->grade_why, sizeof(c->grade_why), "no MX host matches the policy");
        } else if (deliver[0] != '\0') {
            c->action = ACTION_DELIVER;
            c->grade = (enum check_grade)worst_pass;
            snprintf(c->sender, sizeof(c->sender), "deliver to %s", deliver);
            snprintf(c->grade_why, sizeof(c->grade_why),
                     "the worst of the policy-matching MX hosts that pass RFC 8461");
        } else {
            c->action = ACTION_DEFER;
            c->grade = (enum check_grade)best;
            snprintf(c->sender, sizeof(c->sender),
                     "defer: no MX host that matches the policy passes RFC 8461 (%.253s: %.200s)",
                     first_bad->name, first_bad->why);
            snprintf(c->grade_why, sizeof(c->grade_why),
                     "the best of the policy-matching MX hosts, none of which passes RFC 8461");
        }
        return;
    }
    if (check_dane_judge(c))
        return;
    c->action = ACTION_NOT_APPLICABLE;
    snprintf(c->sender, sizeof(c->sender), "%s",
             st == STATUS_TESTING ?
                 "not applicable: mode testing: a sender reports failures and delivers "
                 "to any MX host" :
             st == STATUS_NONE ? "not applicable: mode none: MTA-STS demands nothing" :
             st == STATUS_FAILED ?
                 "not applicable: the policy could not be fetched; a sender delivers as "
                 "though the domain had no MTA-STS (RFC 8461 §3.3)" :
                 "not applicable: the domain publishes no MTA-STS policy");
    if (st == STATUS_FAILED) {
        c->grade = CHECK_FAIL;
        snprintf(c->grade_why, sizeof(c->grade_why),
                 "the TXT record announces a policy that cannot be fetched");
        return;
    }
    c->grade = worst_any < 0 ? CHECK_UNKNOWN : (enum check_grade)worst_any;
    snprintf(c->grade_why, sizeof(c->grade_why), "%s",
             worst_any < 0 ? "no MX host answered" :
                             "the worst of the MX hosts that answered (mail may go to any)");
}


/* ---------------------------------------------------------------- command */

static int
exit_status(enum check_grade g)
{
    switch (g) {
    case CHECK_GOOD:
    case CHECK_WEAK:
    case CHECK_NONE:
        return CTL_EXIT_OK;
    case CHECK_UNKNOWN:
        return CTL_EXIT_UNKNOWN;
    default:
        return CTL_EXIT_INVALID;
    }
}

static int
parse_args(int argc, char **argv, struct check *c, bool *json, char *only, size_t onlysz)
{
    static const struct option opts[] = {
        {"json", no_argument, NULL, 'j'},        {"mx", required_argument, NULL, 'm'},
        {"port", required_argument, NULL, 'p'},  {"timeout", required_argument, NULL, 't'},
        {"store", no_argument, NULL, 's'},       {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct mts_err err;
    char *end;
    long v;
    int ch;

    optind = 1;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (ch) {
        case 'j':
            *json = true;
            break;
        case 'm':
            if (mxmatch_host_normalize(optarg, strlen(optarg), only, onlysz, NULL) != 0) {
                fprintf(stderr, "mtasts-ctl: --mx: \"%.253s\" is not a host name\n", optarg);
                return -1;
            }
            c->only = only;
            break;
        case 'p':
        case 't':
            v = strtol(optarg, &end, 10);
            if (*optarg == '\0' || *end != '\0' || v < 1 ||
                v > (ch == 'p' ? 65535 : CHECK_MAX_MS)) {
                fprintf(stderr, "mtasts-ctl: --%s wants 1 to %d, not \"%s\"\n",
                        ch == 'p' ? "port" : "timeout", ch == 'p' ? 65535 : CHECK_MAX_MS,
                        optarg);
                return -1;
            }
            *(ch == 'p' ? &c->port : &c->timeout) = (int)v;
            break;
        case 's':
            c->store = true;
            break;
        case 'h':
            usage(stdout);
            return 1;
        default:
            usage(stderr);
            return -1;
        }
    }
    if (optind != argc - 1) {
        usage(stderr);
        return -1;
    }
    if (domain_normalize(argv[optind], c->domain, sizeof(c->domain), &err) != 0) {
        fprintf(stderr, "mtasts-ctl: %s\n", err.msg);
        return -1;
    }
    return 0;
}

int
ctl_check(int argc, char **argv)
{
    struct check *c = calloc(1, sizeof(*c));
    char only[MXMATCH_NAME_MAX + 1];
    struct timespec t0 = clock_deadline_after(0);
    struct discover *disc = NULL;
    struct dns *d = NULL;
    struct config *cfg;
    struct mts_err err;
    bool json = false;
    int rc;

    if (c == NULL) {
        fprintf(stderr, "mtasts-ctl: out of memory\n");
        return CTL_EXIT_USAGE;
    }
    if ((rc = parse_args(argc, argv, c, &json, only, sizeof(only))) != 0) {
        free(c);
        return rc > 0 ? CTL_EXIT_OK : CTL_EXIT_USAGE;
    }
    if ((cfg = ctl_config()) == NULL) {
        free(c);
        return CTL_EXIT_USAGE;
    }
    if (probeconf_init(&c->pc, cfg, &err) != 0) {
        fprintf(stderr, "mtasts-ctl: %s\n", err.msg);
        free(c);
        return CTL_EXIT_USAGE;
    }
    if (c->port == 0)
        c->port = c->pc.port;
    if (c->timeout == 0)
        c->timeout = c->pc.timeout_ms;
    struct dns_options dopts;
    dns_options_from(cfg, &dopts);
    if (dns_open(&dopts, &d, &err) != 0 ||
        (rc = discover_open(cfg, DISCOVER_NO_CACHE, &disc, &err)) != 0) {
        fprintf(stderr, "mtasts-ctl: %s\n", err.msg);
        if (d != NULL)
            dns_close(d);
        free(c);
        return CTL_EXIT_USAGE;
    }
    pthread_mutex_init(&c->mu, NULL);
    {
        char name[DOMAIN_NAME_MAX + 16];
        snprintf(name, sizeof(name), "_mta-sts.%s", c->domain);
        dns_query(d, name, DNS_TXT, NULL, &c->txt, &c->txt_err);
    }
    discover_lookup(disc, c->domain,
                    (struct timespec[]){clock_deadline_after(discover_lookup_bound_ms(cfg))}, 0,
                    &c->res);
    collect_hosts(c, d);
    rc = collect_addresses(c, d, (int)cfg->dns_timeout_ms);
    dns_close(d);
    if (rc != 0) {
        fprintf(stderr, "mtasts-ctl: out of memory\n");
        rc = CTL_EXIT_USAGE;
        goto out;
    }
    /* What DNS could not tell may be the resolver's fault, not the domain's:
     * said as lookup says it. */
    ctl_resolver_diagnose(disc,
                          c->res.status == STATUS_UNKNOWN ||
                              !dns_status_is_answer(c->txt.status) ||
                              !dns_status_is_answer(c->mx.status),
                          &c->resolver);
    run_probes(c);
    make_rows(c);
    store_probes(c, cfg);
    check_judge(c);
    struct timespec now = clock_deadline_after(0);
    long elapsed = (long)(now.tv_sec - t0.tv_sec) * 1000 + (now.tv_nsec - t0.tv_nsec) / 1000000;
    if (json) {
        json_t *j = ctl_check_json(c, elapsed);
        ctl_print_json(j);
        json_decref(j);
    } else {
        ctl_check_print(c, elapsed);
    }
    rc = exit_status(c->grade);
out:
    discover_close(disc);
    status_result_free(&c->res);
    dns_answer_free(&c->txt);
    dns_answer_free(&c->mx);
    pthread_mutex_destroy(&c->mu);
    free(c->probes);
    free(c);
    return rc;
}
