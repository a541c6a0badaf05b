/*
 * metrics_now - gauges of the present; see metrics_now.h.
 *
 * Every value is written with a relaxed atomic by the thread that changes
 * it and loaded the same way by the scrape: the gauges need no order with
 * anything else, a scrape a moment late is still a true picture.
 */
#include "metrics_now.h"

#include "metrics.h"

#define LOAD(x) __atomic_load_n(&(x), __ATOMIC_RELAXED)
#define STORE(x, v) __atomic_store_n(&(x), (v), __ATOMIC_RELAXED)

#define N_EFFECT 5		/* enum decide_effect */
#define SLOW_SLOTS 60		/* minutes of the slowest-lookup ring */

static const char *const queue_w[] = {"lookup-waited", "lookup-abandoned", "lookup-refresh",
                                      "probe-first", "probe-refresh"};
static const char *const resolver_w[] = {"unknown", "ok", "degraded", "down", "renewed"};
static const char *const effect_w[] = {"untouched", "tag", "defer", "reject", "hold"};

static struct {
    struct {
        uint64_t depth;
        int64_t since;
    } q[METRICS_QUEUES];
    uint64_t dns_failed_run;	/* lookups not answered since the last answered one */
    uint64_t dns_seen;		/* lookups so far (0: state unknown) */
    int64_t renewed_at_us;	/* 0: never */
    uint64_t memory_entries;
    /* Packed (second << 32 | count): [0] seen, [1 + effect] judged. */
    uint64_t ring[METRICS_NOW_RING_S][1 + N_EFFECT];
    uint64_t slow[SLOW_SLOTS];	/* packed (minute << 32 | milliseconds) */
} g;

void
metrics_now_queue(enum metrics_queue q, size_t depth, int64_t head_since_us)
{
    if ((int)q < 0 || q >= METRICS_QUEUES)
        return;
    STORE(g.q[q].depth, (uint64_t)depth);
    STORE(g.q[q].since, depth > 0 ? head_since_us : 0);
}

void
metrics_now_resolver(bool answered)
{
    __atomic_fetch_add(&g.dns_seen, 1, __ATOMIC_RELAXED);
    if (answered)
        STORE(g.dns_failed_run, 0);
    else
        __atomic_fetch_add(&g.dns_failed_run, 1, __ATOMIC_RELAXED);
}

void
metrics_now_resolver_renewed(void)
{
    STORE(g.renewed_at_us, metrics_clock_us());
}

enum metrics_resolver
metrics_now_resolver_state(void)
{
    uint64_t run = LOAD(g.dns_failed_run);
    int64_t renewed = LOAD(g.renewed_at_us);

    if (LOAD(g.dns_seen) == 0)
        return METRICS_RESOLVER_UNKNOWN;
    if (run >= METRICS_NOW_DOWN_AFTER)
        return METRICS_RESOLVER_DOWN;
    if (renewed != 0 && metrics_clock_us() - renewed < (int64_t)METRICS_NOW_RENEWED_S * 1000000)
        return METRICS_RESOLVER_RENEWED;
    return run == 0 ? METRICS_RESOLVER_OK : METRICS_RESOLVER_DEGRADED;
}

void
metrics_now_memory_entries(size_t n)
{
    STORE(g.memory_entries, (uint64_t)n);
}

/* Adds one to a packed (stamp << 32 | count) word: a word of an older
 * stamp restarts at 1. The stamp is never 0 (see now_s), so a zeroed word
 * is an empty one. */
static void
packed_add(uint64_t *w, uint32_t stamp)
{
    uint64_t old = LOAD(*w), nw;

    do {
        nw = (uint64_t)(old >> 32) == stamp ? old + 1 : ((uint64_t)stamp << 32) | 1;
    } while (!__atomic_compare_exchange_n(w, &old, nw, true, __ATOMIC_RELAXED,
                                          __ATOMIC_RELAXED));
}

/* Monotonic seconds, from 1 (0 marks an unused word). */
static uint32_t
now_s(void)
{
    return (uint32_t)(metrics_clock_us() / 1000000) + 1;
}

void
metrics_now_rcpt(bool judged, int effect)
{
    uint32_t s = now_s();
    uint64_t *slot = g.ring[s % METRICS_NOW_RING_S];

    packed_add(&slot[0], s);
    if (judged && effect >= 0 && effect < N_EFFECT)
        packed_add(&slot[1 + effect], s);
}

void
metrics_now_lookup(int64_t usec)
{
    uint32_t minute = now_s() / 60 + 1;
    uint64_t ms = usec <= 0 ? 0 : (uint64_t)(usec + 999) / 1000;
    uint64_t *w = &g.slow[minute % SLOW_SLOTS];
    uint64_t old = LOAD(*w), nw;

    if (ms > UINT32_MAX)
        ms = UINT32_MAX;
    do {
        if ((uint32_t)(old >> 32) == minute && (old & UINT32_MAX) >= ms)
            return;
        nw = ((uint64_t)minute << 32) | ms;
    } while (!__atomic_compare_exchange_n(w, &old, nw, true, __ATOMIC_RELAXED,
                                          __ATOMIC_RELAXED));
}

/* ------------------------------------------------------------ text */

static void
head(FILE *f, const char *name, const char *help)
{
    fprintf(f, "# HELP %s %s\n# TYPE %s gauge\n", name, help, name);
}

/* The sum of counter k over the slots of the last span seconds. */
static uint64_t
ring_sum(size_t k, uint32_t now, uint32_t span)
{
    uint64_t sum = 0;

    for (size_t i = 0; i < METRICS_NOW_RING_S; i++) {
        uint64_t w = LOAD(g.ring[i][k]);
        uint32_t s = (uint32_t)(w >> 32);

        if (s != 0 && s <= now && now - s < span)
            sum += w & UINT32_MAX;
    }
    return sum;
}

static void
recent_text(FILE *f, const char *span_word, uint32_t span)
{
    uint32_t now = now_s();
    char name[96];

    snprintf(name, sizeof(name), "mtasts_rcpts_last_%s", span_word);
    head(f, name, span == 60 ? "Recipients decided (in scope or not) in the last 60 seconds."
                             : "Recipients decided (in scope or not) in the last 3600 seconds.");
    fprintf(f, "%s %llu\n", name, (unsigned long long)ring_sum(0, now, span));
    snprintf(name, sizeof(name), "mtasts_recipients_last_%s", span_word);
    head(f, name, span == 60 ? "Recipients judged in the last 60 seconds, by what was done."
                             : "Recipients judged in the last 3600 seconds, by what was done.");
    for (size_t e = 0; e < N_EFFECT; e++)
        fprintf(f, "%s{action=\"%s\"} %llu\n", name, effect_w[e],
                (unsigned long long)ring_sum(1 + e, now, span));
}

void
metrics_now_render(FILE *f)
{
    int64_t now = metrics_clock_us();
    enum metrics_resolver st = metrics_now_resolver_state();
    uint32_t minute = now_s() / 60 + 1;
    uint64_t slow_ms = 0;

    head(f, "mtasts_queue_depth", "Jobs waiting in a queue, by queue (lookup lanes, probe lanes).");
    for (size_t i = 0; i < METRICS_QUEUES; i++)
        fprintf(f, "mtasts_queue_depth{queue=\"%s\"} %llu\n", queue_w[i],
                (unsigned long long)LOAD(g.q[i].depth));
    head(f, "mtasts_queue_oldest_wait_seconds",
         "How long the job at the head of a queue has been waiting (0 when empty).");
    for (size_t i = 0; i < METRICS_QUEUES; i++) {
        int64_t since = LOAD(g.q[i].since);
        double w = since > 0 && now > since ? (double)(now - since) / 1e6 : 0.0;

        fprintf(f, "mtasts_queue_oldest_wait_seconds{queue=\"%s\"} %.6f\n", queue_w[i], w);
    }
    head(f, "mtasts_resolver_state",
         "The resolver's state: 1 for the current one (unknown, ok, degraded, down, renewed).");
    for (size_t i = 0; i < METRICS_RESOLVER_STATES; i++)
        fprintf(f, "mtasts_resolver_state{state=\"%s\"} %d\n", resolver_w[i], (size_t)st == i);
    head(f, "mtasts_resolver_failed_in_a_row",
         "DNS lookups not answered (SERVFAIL, timeout) since the last answered one.");
    fprintf(f, "mtasts_resolver_failed_in_a_row %llu\n",
            (unsigned long long)LOAD(g.dns_failed_run));
    head(f, "mtasts_memory_entries", "Domains held in this process's memory copy of the cache.");
    fprintf(f, "mtasts_memory_entries %llu\n", (unsigned long long)LOAD(g.memory_entries));
    recent_text(f, "minute", 60);
    recent_text(f, "hour", METRICS_NOW_RING_S);
    for (size_t i = 0; i < SLOW_SLOTS; i++) {
        uint64_t w = LOAD(g.slow[i]);
        uint32_t m = (uint32_t)(w >> 32);

        if (m != 0 && m <= minute && minute - m < SLOW_SLOTS && (w & UINT32_MAX) > slow_ms)
            slow_ms = w & UINT32_MAX;
    }
    head(f, "mtasts_lookup_slowest_last_hour_seconds",
         "The longest status lookup of the last hour (0: none).");
    fprintf(f, "mtasts_lookup_slowest_last_hour_seconds %.3f\n", (double)slow_ms / 1000);
}
