/*
 * bench_lookup - how long a cache hit takes: discover_lookup() of a domain
 * whose cached policy is fresh, the path every RCPT takes in steady state.
 *
 * usage: bench_lookup [N]   (default 200000 lookups)
 *
 * Prints nanoseconds per lookup for the whole discover path and for the
 * bare cache read beneath it. Uses a scratch database and no network: the
 * row is fresh, so no DNS or HTTPS is asked.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cache.h"
#include "config.h"
#include "discover.h"
#include "log.h"

static double
now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

int
main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 200000;
    char dir[] = "/tmp/mts-bench.XXXXXX", conf[64], db[64];
    struct config *cfg;
    struct discover *d;
    struct cache *c;
    struct cache_entry e;
    struct mts_err err;
    FILE *f;
    double t0, t1, t2;
    long bad = 0;

    log_init("bench", LOG_TO_STDERR, 0);
    if (n < 1 || mkdtemp(dir) == NULL)
        return 2;
    snprintf(conf, sizeof(conf), "%s/bench.conf", dir);
    snprintf(db, sizeof(db), "%s/cache.sqlite", dir);
    f = fopen(conf, "w");
    fprintf(f, "cache_db = %s\nresolv_conf = none\ntrust_anchor =\n", db);
    fclose(f);
    if (config_load(conf, &cfg, &err) != 0 || cache_open(db, 5000, &c, &err) != CACHE_OK) {
        fprintf(stderr, "bench: %s\n", err.msg);
        return 2;
    }
    memset(&e, 0, sizeof(e));
    snprintf(e.domain, sizeof(e.domain), "partner.example");
    snprintf(e.txt_id, sizeof(e.txt_id), "20261123");
    e.has_status = true;
    e.status = STATUS_ENFORCE;
    snprintf(e.dnssec, sizeof(e.dnssec), "secure");
    e.has_policy = true;
    e.mode = POLICY_MODE_ENFORCE;
    e.max_age = 604800;
    e.mx = calloc(2, sizeof(*e.mx));
    e.mx[0] = strdup("mx1.partner.example");
    e.mx[1] = strdup("*.mx.partner.example");
    e.n_mx = 2;
    e.policy_text = strdup("version: STSv1\nmode: enforce\nmx: mx1.partner.example\n"
                           "mx: *.mx.partner.example\nmax_age: 604800\n");
    e.fetched_at = e.checked_at = e.last_used = (int64_t)time(NULL);
    e.expires_at = e.fetched_at + 604800;
    if (cache_put(c, &e, &err) != CACHE_OK || discover_open(cfg, 0, &d, &err) != 0) {
        fprintf(stderr, "bench: %s\n", err.msg);
        return 2;
    }
    cache_entry_free(&e);

    t0 = now_ns();
    for (long i = 0; i < n; i++) {
        struct status_result r;
        discover_lookup(d, "partner.example", (struct timespec[]){clock_deadline_after(1000)}, 0, &r);
        bad += r.status != STATUS_ENFORCE || r.source != STATUS_FROM_CACHE;
        status_result_free(&r);
    }
    t1 = now_ns();
    for (long i = 0; i < n; i++) {
        cache_get(c, "partner.example", &e, NULL);
        cache_entry_free(&e);
    }
    t2 = now_ns();
    printf("bench_lookup: %ld cache-hit lookups: %.2f us per discover_lookup, "
           "%.2f us per bare cache_get%s\n", n, (t1 - t0) / n / 1000.0, (t2 - t1) / n / 1000.0,
           bad ? " (SOME LOOKUPS WERE NOT CACHE HITS)" : "");
    discover_close(d);
    cache_close(c);
    config_unref(cfg);
    unlink(db);
    snprintf(db, sizeof(db), "%s/cache.sqlite-wal", dir);
    unlink(db);
    snprintf(db, sizeof(db), "%s/cache.sqlite-shm", dir);
    unlink(db);
    unlink(conf);
    rmdir(dir);
    return bad ? 1 : 0;
}
