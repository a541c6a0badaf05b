/*
 * metrics - counters and their Prometheus text; see metrics.h.
 *
 * Every counter is a uint64_t in a static array, added to with a relaxed
 * atomic: the counts need no order with anything else, only no lost add.
 */
#include "metrics.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "action.h"
#include "decide.h"
#include "metrics_fleet.h"
#include "metrics_now.h"
#include "metrics_rows.h"
#include "nametab.h"
#include "rules.h"
#include "status.h"
#include "tlsa.h"
#include "tlsprobe.h"
#include "verdict.h"

#define ADD(c, n) __atomic_fetch_add(&(c), (uint64_t)(n), __ATOMIC_RELAXED)
#define GET(c) __atomic_load_n(&(c), __ATOMIC_RELAXED)

/* Label words; the index is the enum's code. */
static const char *const effect_w[] = {"untouched", "tag", "defer", "reject", "hold"};
static const char *const outcome_w[] = {"pass", "not-required", "fail", "unknown"};
static const char *const status_w[] = {"enforce", "testing", "none", "absent", "failed", "unknown"};
static const char *const req_w[] = {"none", "tls", "verified-tls", "mta-sts"};
static const char *const scope_w[] = {"in-scope", "unreadable", "internal-error", "not-in-act-on",
                                      "null-address", "no-domain", "local-domain"};
static const char *const grade_w[] = {"good", "weak", "unverified", "fail", "unknown"};
static const char *const dane_w[] = {"none", "verified", "failed", "unusable", "lookup-failed"};
static const char *const map_w[] = {"ok", "notfound", "temp", "timeout", "perm", "other"};
static const char *const recheck_w[] = {"new-policy", "same-policy", "incomplete", "no-time"};
static const char *const cap_w[] = {"per-sender", "per-connection", "map-lookups", "map-connection"};

#define N(a) (sizeof(a) / sizeof((a)[0]))
#define N_EFFECT N(effect_w)
#define N_OUTCOME N(outcome_w)
#define N_STATUS N(status_w)
#define N_PATH ((size_t)METRICS_NPATHS)
#define N_REQ N(req_w)

/* A histogram with fixed upper bounds in seconds (the last is +Inf). */
#define HIST_MAX 14
struct hist {
    const double *le;
    size_t n;			/* finite bounds */
    uint64_t bucket[HIST_MAX];	/* not cumulative; [n]: above the last bound */
    uint64_t count, sum_usec;
};

static const double short_le[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
static const double long_le[] = {0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60};

static struct {
    int64_t start;
    uint64_t rcpt[N_EFFECT][N_OUTCOME][N_STATUS][N_PATH][N_REQ][2];
    uint64_t scope[N(scope_w)];
    struct hist rcpt_wait;
    uint64_t reload[2];		/* refused, ok */
    uint64_t map[N(map_w)];
    struct hist map_time;
    uint64_t lookup[N_STATUS];
    struct hist lookup_time;
    uint64_t fetch[2];		/* failed, ok */
    struct hist fetch_time;
    uint64_t probe[N(grade_w)];
    uint64_t dane[N(dane_w)];
    struct hist probe_time;
    uint64_t cap[N(cap_w)];
    uint64_t cache_write_errors;
    uint64_t cache_healed;
    uint64_t memory[2];		/* misses, hits */
    uint64_t recheck[N(recheck_w)];
    uint64_t map_refused;
} m = {
    .rcpt_wait = {short_le, N(short_le), {0}, 0, 0},
    .map_time = {short_le, N(short_le), {0}, 0, 0},
    .lookup_time = {long_le, N(long_le), {0}, 0, 0},
    .fetch_time = {long_le, N(long_le), {0}, 0, 0},
    .probe_time = {long_le, N(long_le), {0}, 0, 0},
};

/* An enum code as an index below n; anything else is the last (unknown) one. */
static size_t
idx(int code, size_t n)
{
    return code >= 0 && (size_t)code < n ? (size_t)code : n - 1;
}

static void
hist_add(struct hist *h, int64_t usec)
{
    size_t i = 0;

    if (usec < 0)
        usec = 0;
    while (i < h->n && (double)usec > h->le[i] * 1e6)
        i++;
    ADD(h->bucket[i], 1);
    ADD(h->sum_usec, usec);
    ADD(h->count, 1);
}

void
metrics_start(void)
{
    __atomic_store_n(&m.start, (int64_t)time(NULL), __ATOMIC_RELAXED);
}

const struct nametab metrics_path_names[] = {
    {"dane", METRICS_PATH_DANE},
    {"mta-sts", METRICS_PATH_MTA_STS},
    {"verified-tls", METRICS_PATH_VERIFIED_TLS},
    {"tls", METRICS_PATH_TLS},
    {"none", METRICS_PATH_NONE},
    {"unknown", METRICS_PATH_UNKNOWN},
    {NULL, -1},
};

enum metrics_path
metrics_path_of(const struct decision *d)
{
    if (d->dane == TLSA_DANE_VERIFIED && d->outcome == VERDICT_PASS)
        return METRICS_PATH_DANE;
    if (d->status == STATUS_ENFORCE && d->outcome == VERDICT_PASS && d->req == RULES_REQ_MTA_STS)
        return METRICS_PATH_MTA_STS;
    switch (d->tls) {
    case VERDICT_TLS_VERIFIED:
        return METRICS_PATH_VERIFIED_TLS;
    case VERDICT_TLS_UNVERIFIED:
        return METRICS_PATH_TLS;
    case VERDICT_TLS_NONE:
        return METRICS_PATH_NONE;
    case VERDICT_TLS_UNKNOWN:
        return METRICS_PATH_UNKNOWN;
    case VERDICT_TLS_UNSEEN:
        break;
    }
    return d->status == STATUS_UNKNOWN || d->outcome == VERDICT_UNKNOWN ? METRICS_PATH_UNKNOWN
                                                                          : METRICS_PATH_NONE;
}

int64_t
metrics_clock_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

void
metrics_rcpt(const struct decision *d, int64_t t0_us)
{
    ADD(m.scope[idx((int)d->scope, N(scope_w))], 1);
    metrics_now_rcpt(d->scope == DECIDE_IN_SCOPE, (int)d->effect);
    if (d->scope == DECIDE_IN_SCOPE)
        ADD(m.rcpt[idx((int)d->effect, N_EFFECT)][idx((int)d->outcome, N_OUTCOME)]
                  [idx((int)d->status, N_STATUS)][idx((int)metrics_path_of(d), N_PATH)]
                  [idx((int)d->req, N_REQ)][d->dry_run ? 1 : 0], 1);
    hist_add(&m.rcpt_wait, metrics_clock_us() - t0_us);
}

void
metrics_reload(bool ok)
{
    ADD(m.reload[ok ? 1 : 0], 1);
}

void
metrics_map(const char *reply, size_t len, int64_t usec)
{
    size_t i, w = 0;

    /* The first word, up to a space or the end: OK, NOTFOUND, TEMP, ... */
    while (w < len && reply[w] != ' ')
        w++;
    for (i = 0; i < N(map_w) - 1; i++)
        if (strlen(map_w[i]) == w && strncasecmp(reply, map_w[i], w) == 0)
            break;
    ADD(m.map[i], 1);
    hist_add(&m.map_time, usec);
}

void
metrics_lookup(int status, int64_t usec)
{
    ADD(m.lookup[idx(status, N_STATUS)], 1);
    hist_add(&m.lookup_time, usec);
    metrics_now_lookup(usec);
}

void
metrics_fetch(bool ok, int64_t usec)
{
    ADD(m.fetch[ok ? 1 : 0], 1);
    hist_add(&m.fetch_time, usec);
}

void
metrics_probe(int grade, int dane, int64_t usec)
{
    ADD(m.probe[idx(grade, N(grade_w))], 1);
    ADD(m.dane[idx(dane, N(dane_w))], 1);
    hist_add(&m.probe_time, usec);
}

void
metrics_cap(enum metrics_cap kind)
{
    ADD(m.cap[idx((int)kind, N(cap_w))], 1);
}

void
metrics_cache_write_error(void)
{
    ADD(m.cache_write_errors, 1);
}

void
metrics_cache_healed(void)
{
    ADD(m.cache_healed, 1);
}

void
metrics_memory(bool hit)
{
    ADD(m.memory[hit ? 1 : 0], 1);
}

void
metrics_recheck(enum metrics_recheck result)
{
    ADD(m.recheck[idx((int)result, N(recheck_w))], 1);
}

void
metrics_map_refused(void)
{
    ADD(m.map_refused, 1);
}

/* ------------------------------------------------------------ text */

static void
head(FILE *f, const char *name, const char *type, const char *help)
{
    fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A counter with one label over a word list. */
static void
by_word(FILE *f, const char *name, const char *help, const char *label,
        const char *const *w, const uint64_t *c, size_t n)
{
    head(f, name, "counter", help);
    for (size_t i = 0; i < n; i++)
        fprintf(f, "%s{%s=\"%s\"} %llu\n", name, label, w[i], (unsigned long long)GET(c[i]));
}

static void
hist_text(FILE *f, const char *name, const char *help, struct hist *h)
{
    uint64_t cum = 0;

    head(f, name, "histogram", help);
    for (size_t i = 0; i <= h->n; i++) {
        cum += GET(h->bucket[i]);
        if (i < h->n)
            fprintf(f, "%s_bucket{le=\"%g\"} %llu\n", name, h->le[i], (unsigned long long)cum);
        else
            fprintf(f, "%s_bucket{le=\"+Inf\"} %llu\n", name, (unsigned long long)cum);
    }
    /* The count is the +Inf bucket's, so that the two agree in one scrape. */
    fprintf(f, "%s_sum %.6f\n%s_count %llu\n", name, (double)GET(h->sum_usec) / 1e6, name,
            (unsigned long long)cum);
}

static void
rcpt_text(FILE *f)
{
    head(f, "mtasts_recipients_total", "counter",
         "Recipients judged, by what was done (action), the verdict's outcome, the domain's "
         "MTA-STS status, the path kind, the requirement and whether dry_run kept the action.");
    for (size_t e = 0; e < N_EFFECT; e++)
        for (size_t o = 0; o < N_OUTCOME; o++)
            for (size_t s = 0; s < N_STATUS; s++)
                for (size_t p = 0; p < N_PATH; p++)
                    for (size_t r = 0; r < N_REQ; r++)
                        for (size_t y = 0; y < 2; y++) {
                            uint64_t v = GET(m.rcpt[e][o][s][p][r][y]);

                            if (v == 0)
                                continue;
                            fprintf(f,
                                    "mtasts_recipients_total{action=\"%s\",outcome=\"%s\","
                                    "status=\"%s\",path=\"%s\",requirement=\"%s\","
                                    "dry_run=\"%s\"} %llu\n",
                                    effect_w[e], outcome_w[o], status_w[s], nametab_name(metrics_path_names, (int)p), req_w[r],
                                    y ? "yes" : "no", (unsigned long long)v);
                        }
}

int
metrics_render(char **text, size_t *len)
{
    static const char *const no_yes[] = {"refused", "applied"};
    static const char *const fail_ok[] = {"failed", "ok"};
    static const char *const miss_hit[] = {"miss", "hit"};
    FILE *f;

    *text = NULL;
    *len = 0;
    if ((f = open_memstream(text, len)) == NULL)
        return -1;
    head(f, "mtasts_build_info", "gauge", "The milter's version; always 1.");
    fprintf(f, "mtasts_build_info{version=\"%s\"} 1\n", MTS_VERSION);
    head(f, "mtasts_start_time_seconds", "gauge", "When the milter started, in Unix time.");
    fprintf(f, "mtasts_start_time_seconds %lld\n",
            (long long)__atomic_load_n(&m.start, __ATOMIC_RELAXED));
    rcpt_text(f);
    by_word(f, "mtasts_recipients_scope_total",
            "Recipients seen at RCPT TO, by the road the decision took.", "scope", scope_w,
            m.scope, N(scope_w));
    hist_text(f, "mtasts_rcpt_wait_seconds", "How long an RCPT TO waited for its decision.",
              &m.rcpt_wait);
    by_word(f, "mtasts_lookups_total", "Status lookups (DNS, and the policy fetch when needed), "
            "by the status they found.", "status", status_w, m.lookup, N_STATUS);
    hist_text(f, "mtasts_lookup_seconds", "How long a status lookup took.", &m.lookup_time);
    by_word(f, "mtasts_policy_fetches_total", "HTTPS policy fetches, by result.", "result",
            fail_ok, m.fetch, 2);
    hist_text(f, "mtasts_policy_fetch_seconds", "How long a policy fetch took.", &m.fetch_time);
    by_word(f, "mtasts_probes_total", "MX hosts probed, by grade.", "grade", grade_w, m.probe,
            N(grade_w));
    by_word(f, "mtasts_probe_dane_total", "MX hosts probed, by DANE outcome.", "dane", dane_w,
            m.dane, N(dane_w));
    hist_text(f, "mtasts_probe_seconds", "How long an MX host probe took.", &m.probe_time);
    by_word(f, "mtasts_map_requests_total", "Policy map requests, by answer kind.", "answer",
            map_w, m.map, N(map_w));
    hist_text(f, "mtasts_map_request_seconds", "How long a policy map answer took.", &m.map_time);
    by_word(f, "mtasts_caps_hit_total", "Work refused by a cap on work in flight, by cap.", "cap",
            cap_w, m.cap, N(cap_w));
    head(f, "mtasts_cache_write_errors_total", "counter", "Writes not stored in the shared cache: refused, or dropped from a full write queue (a locked file is waited out, not counted).");
    fprintf(f, "mtasts_cache_write_errors_total %llu\n",
            (unsigned long long)GET(m.cache_write_errors));
    by_word(f, "mtasts_reloads_total", "Configuration reloads, applied or refused.", "result",
            no_yes, m.reload, 2);
    head(f, "mtasts_cache_healed_total", "counter",
         "Corrupt cache files set aside and replaced by a fresh one.");
    fprintf(f, "mtasts_cache_healed_total %llu\n", (unsigned long long)GET(m.cache_healed));
    by_word(f, "mtasts_memory_reads_total", "Reads of the memory copy of the cache, by result "
            "(a miss goes to the database).", "result", miss_hit, m.memory, 2);
    by_word(f, "mtasts_rechecks_total", "RFC 8461 section 5 re-checks for a new policy before "
            "a permanent failure, by result.", "result", recheck_w, m.recheck, N(recheck_w));
    head(f, "mtasts_map_clients_refused_total", "counter",
         "Policy map connections refused: map_max_clients open and none idle.");
    fprintf(f, "mtasts_map_clients_refused_total %llu\n", (unsigned long long)GET(m.map_refused));
    metrics_now_render(f);
    metrics_fleet_render(f);
    metrics_rows_render(f);
    if (ferror(f)) {
        fclose(f);
        free(*text);
        *text = NULL;
        return -1;
    }
    if (fclose(f) != 0) {
        free(*text);
        *text = NULL;
        return -1;
    }
    return 0;
}
