/*
 * dedup - N threads look up one uncached domain at the same instant.
 *
 * usage: dedup CONFIG DOMAIN N
 *
 * Runs discover without the cache (so only the in-flight table can make
 * the lookups share), releases N threads together with a barrier, and
 * prints one line per status seen ("enforce 200"). The caller counts the
 * HTTPS requests and TXT queries the world's servers logged: one each.
 * Exit status 0 when every thread got the same, known status.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "discover.h"
#include "log.h"

struct shared {
    struct discover *d;
    const char *domain;
    pthread_barrier_t start;
    pthread_mutex_t mu;
    size_t count[STATUS_UNKNOWN + 1];
};

static void *
one_lookup(void *arg)
{
    struct shared *s = arg;
    struct status_result res;

    pthread_barrier_wait(&s->start);
    discover_lookup(s->d, s->domain, (struct timespec[]){clock_deadline_after(20000)}, 0, &res);
    pthread_mutex_lock(&s->mu);
    s->count[res.status]++;
    pthread_mutex_unlock(&s->mu);
    status_result_free(&res);
    return NULL;
}

int
main(int argc, char **argv)
{
    struct shared s;
    struct config *cfg;
    struct mts_err err;
    pthread_t *t;
    int n, kinds = 0;

    if (argc != 4 || (n = atoi(argv[3])) < 1 || n > 1000) {
        fprintf(stderr, "usage: dedup CONFIG DOMAIN N (1..1000)\n");
        return 2;
    }
    log_init("dedup", LOG_TO_STDERR, 0);
    if (config_load(argv[1], &cfg, &err) != 0 ||
        discover_open(cfg, DISCOVER_NO_CACHE, &s.d, &err) != 0) {
        fprintf(stderr, "dedup: %s\n", err.msg);
        return 2;
    }
    s.domain = argv[2];
    memset(s.count, 0, sizeof(s.count));
    pthread_mutex_init(&s.mu, NULL);
    pthread_barrier_init(&s.start, NULL, (unsigned)n);
    t = calloc((size_t)n, sizeof(*t));
    for (int i = 0; i < n; i++)
        if (pthread_create(&t[i], NULL, one_lookup, &s) != 0)
            return 2;
    for (int i = 0; i < n; i++)
        pthread_join(t[i], NULL);
    for (int st = STATUS_ENFORCE; st <= STATUS_UNKNOWN; st++) {
        if (s.count[st] > 0) {
            printf("%s %zu\n", status_kind_name((enum status_kind)st), s.count[st]);
            kinds++;
        }
    }
    discover_close(s.d);
    config_unref(cfg);
    free(t);
    return kinds == 1 && s.count[STATUS_UNKNOWN] == 0 ? 0 : 1;
}
