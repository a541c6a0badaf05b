/*
 * bench_cachecopy - what a domain held in memory costs (cachecopy.h): the
 * private memory grown by putting N domains' rows and MX sets, and the
 * time of a warm read (row and MX set, as a warm RCPT reads them).
 *
 * usage: bench_cachecopy [N [READS]]   (default 100000 domains, 1000000 reads)
 *
 * The domains are shaped like make bench's RSS case (hNNNNNN.rss.test, an
 * enforce policy whose MX pattern and host are mx.<domain>), with a cap of
 * N. Prints numbers, asserts none; exits 1 when reads find less than 90%
 * (a broken map: shards fill unevenly, so about 1% of 100,000 domains, and
 * more of fewer, are not held).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cachecopy.h"

static double
now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* RssAnon of this process, in kB. */
static long
rss_anon_kb(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kb = -1;

    while (f != NULL && fgets(line, sizeof(line), f) != NULL)
        if (strncmp(line, "RssAnon:", 8) == 0)
            kb = atol(line + 8);
    if (f != NULL)
        fclose(f);
    return kb;
}

static void
name(char *buf, size_t sz, long i)
{
    snprintf(buf, sz, "h%06ld.rss.test", i);
}

int
main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 100000, reads = argc > 2 ? atol(argv[2]) : 1000000;
    long before, after, hits = 0;
    struct cache *c;
    struct cachecopy *h;
    struct mts_err err;
    unsigned seed = 1;
    double t0, t1;

    if (n < 100 || reads < 1)
        return 2;
    if (cache_open(":memory:", 1000, &c, &err) != CACHE_OK ||
        (h = cachecopy_new((size_t)n, c, &err)) == NULL) {
        fprintf(stderr, "bench_cachecopy: %s\n", err.msg);
        return 2;
    }
    before = rss_anon_kb();
    for (long i = 0; i < n; i++) {
        char mx[300];
        char *mxs[1] = {mx};
        struct cache_entry e;
        struct cache_mxset m;

        memset(&e, 0, sizeof(e));
        name(e.domain, sizeof(e.domain), i);
        snprintf(mx, sizeof(mx), "mx.%s", e.domain);
        snprintf(e.txt_id, sizeof(e.txt_id), "bench1");
        snprintf(e.dnssec, sizeof(e.dnssec), "secure");
        e.has_status = true;
        e.status = STATUS_ENFORCE;
        e.has_policy = true;
        e.mode = POLICY_MODE_ENFORCE;
        e.max_age = 86400;
        e.mx = mxs;
        e.n_mx = 1;
        e.fetched_at = e.checked_at = 1700000000 + i;
        e.expires_at = e.fetched_at + 86400;
        cachecopy_put_row(h, &e, cachecopy_gen(h), 0, SHARDMAP_ADD);
        memset(&m, 0, sizeof(m));
        snprintf(m.domain, sizeof(m.domain), "%s", e.domain);
        m.hosts = mxs;
        m.n = 1;
        m.fetched_at = e.fetched_at;
        m.expires_at = e.fetched_at + 3600;
        cachecopy_put_mx(h, &m, cachecopy_gen(h), SHARDMAP_ADD);
    }
    after = rss_anon_kb();

    t0 = now_ns();
    for (long r = 0; r < reads; r++) {
        char d[64];
        struct cache_entry e;
        struct cache_mxset m;

        name(d, sizeof(d), (long)(rand_r(&seed) % (unsigned long)n));
        if (cachecopy_get_row(h, d, 1700000000, &e)) {
            hits++;
            cache_entry_free(&e);
        }
        if (cachecopy_get_mx(h, d, &m)) {
            hits++;
            cache_mxset_free(&m);
        }
    }
    t1 = now_ns();
    printf("bench_cachecopy: %ld domains held of %ld (%zu shared shapes): private memory grown "
           "%.1f MB, %.0f bytes a domain\n",
           (long)cachecopy_count(h), n, cachecopy_shapes(h), (double)(after - before) / 1024,
           (double)(after - before) * 1024 / (double)n);
    printf("bench_cachecopy: %ld warm reads (row and MX set of a random domain): %.0f ns each, "
           "%.1f%% found\n",
           reads, (t1 - t0) / (double)reads, 100.0 * (double)hits / (2.0 * (double)reads));
    cachecopy_free(h);
    cache_close(c);
    return hits * 100 < 2 * reads * 90 ? 1 : 0;
}
