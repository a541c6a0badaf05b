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
 *	The probe results (on probe_port only) are written to the shared
 *	cache's probe rows, which a running milter then reads (probes.h).
 *	At most CHECK_MAX_HOSTS MX hosts (the most preferred) and
 *	CHECK_MAX_ADDRS addresses a host are probed, CHECK_PARALLEL at a
 *	time; each probe ends timeout ms after it starts, and none runs past
 *	twice the timeout from the start of the probing, so a check is
 *	bounded whatever the domain publishes. The grade rules are in
 *	man/mtasts-ctl.1 (CHECK GRADES) and check_judge() below.
 *
 * DIAGNOSTICS
 *	Exit status: 0 the domain's grade is good, weak or none (a null MX);
 *	1 unverified or fail; 3 unknown; 2 usage or configuration error.
 */
#include "ctl.h"
#include "ctl_check.h"

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
#include "probecache.h"
#include "tlsprobe.h"

static const struct nametab check_grade_names[] = {
    {"good", CHECK_GOOD}, {"weak", CHECK_WEAK}, {"unverified", CHECK_UNVERIFIED},
    {"fail", CHECK_FAIL}, {"unknown", CHECK_UNKNOWN}, {"none", CHECK_NONE},
    {NULL, -1},
};

static const struct nametab action_names[] = {
    {"deliver", ACTION_DELIVER}, {"defer", ACTION_DEFER},
    {"not-applicable", ACTION_NOT_APPLICABLE}, {"no-mail", ACTION_NO_MAIL},
    {"unknown", ACTION_UNKNOWN}, {NULL, -1},
};

static void
usage(FILE *to)
{
    fprintf(to, "usage: mtasts-ctl [-c CONFIG] check [--json] [--mx HOST] [--port N]\n"
                "                  [--timeout MS] DOMAIN\n");
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

/* Record text as one printable line: bytes outside 0x20-0x7e as \xHH. */
static void
printable(const char *s, size_t len, char *out, size_t outsz)
{
    size_t o = 0;

    for (size_t i = 0; i < len && o + 5 < outsz; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch >= 0x20 && ch < 0x7f && ch != '\\')
            out[o++] = (char)ch;
        else
            o += (size_t)snprintf(out + o, outsz - o, "\\x%02x", ch);
    }
    out[o] = '\0';
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
        dns_addresses(d, h->name, &dl, &a, &err);
        h->dns = a.status;
        if (a.status != DNS_OK)
            snprintf(h->dns_error, sizeof(h->dns_error), "%s", err.msg);
        if (a.status == DNS_OK && a.canonical[0] != '\0' && strcmp(a.canonical, h->name) != 0)
            snprintf(h->canonical, sizeof(h->canonical), "%s", a.canonical);
        h->n_addrs = a.status == DNS_OK ? a.n : 0;
        for (size_t k = 0; k < h->n_addrs && k < CHECK_MAX_ADDRS; k++) {
            struct check_probe *p = &c->probes[c->n_probes++];
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
        struct tlsprobe_options o = c->topts;
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

/* Probes of probe_port update the shared cache, as the milter's would. */
static void
store_probes(const struct check *c, const struct config *cfg)
{
    struct cache *db = NULL;
    struct mts_err err;
    int64_t now = (int64_t)time(NULL);

    if (c->port != cfg->probe_port || c->n_probes == 0)
        return;
    if (cache_open(cfg->cache_db, (int)cfg->cache_busy_timeout_ms, &db, &err) != CACHE_OK) {
        fprintf(stderr, "mtasts-ctl: probe results not cached: %s\n", err.msg);
        return;
    }
    for (size_t i = 0; i < c->n_probes; i++) {
        struct probecache_row row;

        if (c->probes[i].r.address[0] == '\0')
            continue; /* never started */
        probecache_row_from(&c->probes[i].r, &c->probes[i].g, now, cfg->probe_ttl,
                            cfg->probe_failure_ttl, &row);
        probecache_row_dane(&row, &c->hosts[c->probes[i].host].tlsa, &c->probes[i].r,
                            cfg->probe_failure_ttl);
        if (probecache_put(db, &row, &err) != CACHE_OK) {
            fprintf(stderr, "mtasts-ctl: probe results not cached: %s\n", err.msg);
            break;
        }
    }
    cache_close(db);
}

/* ---------------------------------------------------------------- judgement */

/* A host's grade: the worst of the addresses that answered (a sender moves
 * on from one that does not), unknown when none did. */
static void
judge_host(struct check *c, struct check_host *h)
{
    const struct check_probe *pick = NULL;

    h->match = c->res.has_policy ? discover_result_mx_allows(&c->res, h->name) : -1;
    h->grade = TLSPROBE_GRADE_UNKNOWN;
    for (size_t k = h->first; k < h->first + h->n_probes; k++) {
        const struct check_probe *p = &c->probes[k];
        if (pick == NULL ||
            (p->g.grade != TLSPROBE_GRADE_UNKNOWN &&
             (pick->g.grade == TLSPROBE_GRADE_UNKNOWN || p->g.grade > pick->g.grade)))
            pick = p;
    }
    if (pick != NULL) {
        h->grade = pick->g.grade;
        snprintf(h->why, sizeof(h->why), "%s",
                 pick->r.reason[0] != '\0' ? pick->r.reason :
                 pick->g.n > 0            ? pick->g.reasons[0] : "");
    } else if (h->dns != DNS_OK) {
        snprintf(h->why, sizeof(h->why), "no address: %s", h->dns_error);
    } else {
        snprintf(h->why, sizeof(h->why), "no address");
    }
    check_dane_host(c, h);
}

/* With DANE the grade is DANE's (tlsprobe.h); a failed TLSA lookup bars the host. */
static bool
passes(const struct check_host *h)
{
    return (h->grade == TLSPROBE_GRADE_GOOD || h->grade == TLSPROBE_GRADE_WEAK) &&
           h->dane != TLSA_DANE_LOOKUP_FAILED;
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
    enum discover_status st = c->res.status;
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
        if (passes(h)) {
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
    if (st == DISCOVER_UNKNOWN) {
        c->action = ACTION_UNKNOWN;
        c->grade = CHECK_UNKNOWN;
        snprintf(c->sender, sizeof(c->sender),
                 "the MTA-STS status could not be learnt now: a sender defers or delivers by "
                 "its own rule");
        snprintf(c->grade_why, sizeof(c->grade_why), "the MTA-STS status is unknown");
        return;
    }
    if (st == DISCOVER_ENFORCE) {
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
             st == DISCOVER_TESTING ?
                 "not applicable: mode testing: a sender reports failures and delivers "
                 "to any MX host" :
             st == DISCOVER_NONE ? "not applicable: mode none: MTA-STS demands nothing" :
             st == DISCOVER_FAILED ?
                 "not applicable: the policy could not be fetched; a sender delivers as "
                 "though the domain had no MTA-STS (RFC 8461 §3.3)" :
                 "not applicable: the domain publishes no MTA-STS policy");
    if (st == DISCOVER_FAILED) {
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

/* ---------------------------------------------------------------- output */

static json_t *
check_json(const struct check *c, long elapsed_ms)
{
    json_t *o = json_object(), *txt = json_object(), *recs = json_array(), *mx = json_object();
    json_t *hosts = json_array(), *sender = json_object(), *notes = json_array(), *pol;
    char buf[CHECK_TEXT_MAX];

    json_object_set_new(o, "domain", json_string(c->domain));
    snprintf(buf, sizeof(buf), "_mta-sts.%s", c->domain);
    json_object_set_new(txt, "name", json_string(buf));
    json_object_set_new(txt, "dns", json_string(dns_status_name(c->txt.status)));
    json_object_set_new(txt, "dnssec", dns_status_is_answer(c->txt.status) ?
                                           json_string(dns_sec_name(c->txt.sec)) :
                                           json_null());
    for (size_t i = 0; c->txt.status == DNS_OK && i < c->txt.n; i++) {
        printable(c->txt.rr[i].text, c->txt.rr[i].len, buf, sizeof(buf));
        json_array_append_new(recs, json_string(buf));
    }
    json_object_set_new(txt, "records", recs);
    json_object_set_new(txt, "error", c->txt.status == DNS_OK ? json_null() :
                                                                ctl_json_text(c->txt_err.msg));
    json_object_set_new(o, "txt", txt);
    json_object_set_new(o, "status", json_string(discover_status_name(c->res.status)));
    json_object_set_new(o, "txt_id", ctl_json_text(c->res.txt_id));
    pol = json_null();
    if (c->res.has_policy) {
        json_t *pmx = json_array();
        pol = json_object();
        for (size_t i = 0; i < c->res.n_mx; i++)
            json_array_append_new(pmx, json_string(c->res.mx[i]));
        json_object_set_new(pol, "mode", json_string(policy_mode_name(c->res.mode)));
        json_object_set_new(pol, "max_age", json_integer(c->res.max_age));
        json_object_set_new(pol, "mx", pmx);
    }
    json_object_set_new(o, "policy", pol);
    json_object_set_new(o, "policy_error", ctl_json_text(c->res.error));
    json_object_set_new(mx, "dns", json_string(dns_status_name(c->mx.status)));
    json_object_set_new(mx, "dnssec", dns_status_is_answer(c->mx.status) ?
                                          json_string(dns_sec_name(c->mx.sec)) :
                                          json_null());
    json_object_set_new(mx, "null_mx", json_boolean(c->null_mx));
    json_object_set_new(mx, "implicit", json_boolean(c->implicit_mx));
    json_object_set_new(mx, "hosts_total", json_integer((json_int_t)c->n_mx));
    json_object_set_new(mx, "hosts_probed", json_integer((json_int_t)c->n_hosts));
    json_object_set_new(o, "mx", mx);
    for (size_t i = 0; i < c->n_hosts; i++) {
        const struct check_host *h = &c->hosts[i];
        json_t *jh = json_object(), *probes = json_array();

        json_object_set_new(jh, "host", json_string(h->name));
        json_object_set_new(jh, "preference", h->pref >= 0 ? json_integer(h->pref) : json_null());
        json_object_set_new(jh, "cname", ctl_json_text(h->canonical));
        json_object_set_new(jh, "policy_match", h->match < 0 ? json_null() :
                                                               json_boolean(h->match == 1));
        json_object_set_new(jh, "addresses_total", json_integer((json_int_t)h->n_addrs));
        json_object_set_new(jh, "dns_error", ctl_json_text(h->dns_error));
        json_object_set_new(jh, "grade", json_string(tlsprobe_grade_name(h->grade)));
        json_object_set_new(jh, "rfc8461", json_boolean(passes(h)));
        json_object_set_new(jh, "reason", ctl_json_text(h->why));
        check_dane_json(jh, h);
        for (size_t k = h->first; k < h->first + h->n_probes; k++)
            json_array_append_new(probes, ctl_probe_json(&c->probes[k].r, &c->probes[k].g));
        json_object_set_new(jh, "probes", probes);
        json_array_append_new(hosts, jh);
    }
    json_object_set_new(o, "hosts", hosts);
    json_object_set_new(sender, "action", json_string(nametab_name(action_names, c->action)));
    json_object_set_new(sender, "summary", json_string(c->sender));
    json_object_set_new(o, "sender", sender);
    json_object_set_new(o, "grade", json_string(nametab_name(check_grade_names, c->grade)));
    json_object_set_new(o, "grade_reason", json_string(c->grade_why));
    for (size_t i = 0; i < c->n_notes; i++)
        json_array_append_new(notes, json_string(c->notes[i]));
    json_object_set_new(o, "notes", notes);
    json_object_set_new(o, "elapsed_ms", json_integer(elapsed_ms));
    return o;
}

static void
check_print(const struct check *c, long elapsed_ms)
{
    char buf[CHECK_TEXT_MAX];

    printf("domain:   %s\n", c->domain);
    printf("grade:    %s (%s)\n", nametab_name(check_grade_names, c->grade), c->grade_why);
    printf("sender:   %s\n", c->sender);
    if (c->txt.status == DNS_OK) {
        size_t n = c->txt.n < CHECK_TXT_SHOWN ? c->txt.n : CHECK_TXT_SHOWN;
        for (size_t i = 0; i < n; i++) {
            printable(c->txt.rr[i].text, c->txt.rr[i].len, buf, sizeof(buf));
            printf("%s\"%s\"", i == 0 ? "txt:      " : "          ", buf);
            if (i + 1 == n)
                printf(" (DNSSEC %s)", dns_sec_name(c->txt.sec));
            printf("\n");
        }
    } else if (dns_status_is_answer(c->txt.status)) {
        printf("txt:      none: %s (DNSSEC %s)\n", c->txt_err.msg, dns_sec_name(c->txt.sec));
    } else {
        printf("txt:      could not be learnt: %s\n", c->txt_err.msg);
    }
    printf("status:   %s%s%s\n", discover_status_name(c->res.status),
           c->res.error[0] != '\0' ? ": " : "", c->res.error);
    if (c->res.has_policy) {
        printf("policy:   mode %s, max_age %u s, id %s\n", policy_mode_name(c->res.mode),
               (unsigned)c->res.max_age, c->res.txt_id[0] ? c->res.txt_id : "-");
        for (size_t i = 0; i < c->res.n_mx; i++)
            printf("          mx: %s\n", c->res.mx[i]);
    }
    if (c->null_mx)
        printf("mx:       null MX (\".\"): the domain accepts no mail (RFC 7505)\n");
    else if (c->mx.status != DNS_OK && !c->implicit_mx)
        printf("mx:       could not be learnt: %s\n", c->mx_err.msg);
    else
        printf("mx:       %zu host%s%s (DNSSEC %s)\n", c->n_mx, c->n_mx == 1 ? "" : "s",
               c->implicit_mx ? "; no MX record: the domain itself (RFC 5321 §5.1)" : "",
               dns_sec_name(c->mx.sec));
    for (size_t i = 0; i < c->n_hosts; i++) {
        const struct check_host *h = &c->hosts[i];
        char pref[16] = "-";

        if (h->pref >= 0)
            snprintf(pref, sizeof(pref), "%d", h->pref);
        printf("  %4s %-28s %-10s %s%s%s\n", pref, h->name, tlsprobe_grade_name(h->grade),
               h->match < 0 ? "" : h->match ? "in policy" : "NOT in policy",
               h->why[0] != '\0' ? (h->match < 0 ? "" : "; ") : "", h->why);
    }
    for (size_t i = 0; i < c->n_notes; i++)
        printf("note:     %s\n", c->notes[i]);
    for (size_t i = 0; i < c->n_hosts; i++) {
        const struct check_host *h = &c->hosts[i];

        printf("\n%s", h->name);
        if (h->canonical[0] != '\0')
            printf(" (CNAME to %s: RFC 5321 §5.1 wants an MX name with addresses of its own)",
                   h->canonical);
        printf(": %zu address%s", h->n_addrs, h->n_addrs == 1 ? "" : "es");
        if (h->n_addrs > h->n_probes)
            printf(", %zu probed", h->n_probes);
        printf("%s%s\n", h->dns_error[0] != '\0' ? ": " : "", h->dns_error);
        check_dane_print(h);
        for (size_t k = h->first; k < h->first + h->n_probes; k++)
            ctl_probe_print(&c->probes[k].r, &c->probes[k].g, "  ");
    }
    printf("\ntime:     %ld ms\n", elapsed_ms);
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
        {"help", no_argument, NULL, 'h'},        {NULL, 0, NULL, 0},
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
    char only[MXMATCH_NAME_MAX + 1], me[256];
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
    c->port = TLSPROBE_PORT;
    c->timeout = CHECK_DEFAULT_MS;
    if ((rc = parse_args(argc, argv, c, &json, only, sizeof(only))) != 0) {
        free(c);
        return rc > 0 ? CTL_EXIT_OK : CTL_EXIT_USAGE;
    }
    if ((cfg = ctl_config()) == NULL) {
        free(c);
        return CTL_EXIT_USAGE;
    }
    c->topts.ca_file = cfg->ca_file;
    c->topts.ehlo_name = ctl_ehlo_name(me, sizeof(me));
    struct dns_options dopts = {
        .resolv_conf = cfg->resolv_conf,
        .trust_anchor = cfg->trust_anchor,
        .unbound_conf = cfg->unbound_conf,
        .timeout_ms = (int)cfg->dns_timeout_ms,
    };
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
    run_probes(c);
    store_probes(c, cfg);
    check_judge(c);
    struct timespec now = clock_deadline_after(0);
    long elapsed = (long)(now.tv_sec - t0.tv_sec) * 1000 + (now.tv_nsec - t0.tv_nsec) / 1000000;
    if (json) {
        json_t *j = check_json(c, elapsed);
        ctl_print_json(j);
        json_decref(j);
    } else {
        check_print(c, elapsed);
    }
    rc = exit_status(c->grade);
out:
    discover_close(disc);
    discover_result_free(&c->res);
    dns_answer_free(&c->txt);
    dns_answer_free(&c->mx);
    pthread_mutex_destroy(&c->mu);
    free(c->probes);
    free(c);
    return rc;
}
