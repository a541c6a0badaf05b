/*
 * probes_sync - the probe engine's refresher: results near their end
 * queued again, rows other processes wrote read again, dead rows purged;
 * and the preload of live rows at open. See probes.h.
 */
#include "probes_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "log.h"

struct probed {
    char host[TLSPROBE_HOST_MAX + 1];
    int64_t at;
};

struct sync {
    struct probed *v;
    size_t n, max;
};

static void
collect_probed(const char *host, int64_t at, void *arg)
{
    struct sync *s = arg;

    if (s->n < s->max && strlen(host) <= TLSPROBE_HOST_MAX) {
        memcpy(s->v[s->n].host, host, strlen(host) + 1);
        s->v[s->n++].at = at;
    }
}

/* One thread at a time: the refresher, or a test. */
void
probes_refresh(struct probes *p)
{
    int64_t now = p->seam.now(), v = 0;
    struct sync sync = {NULL, 0, SYNC_MAX};
    struct mts_err err;

    /* Another process (or this one's discover) wrote: look for probe rows
     * written since the last look (a second back: same-second writes). */
    if (p->cache != NULL && cache_data_version(p->cache, &v, &err) == CACHE_OK &&
        v != p->data_version && (sync.v = malloc(SYNC_MAX * sizeof(*sync.v))) != NULL) {
        if (cache_tls_probed_since(p->cache, p->synced_at - 1, SYNC_MAX, collect_probed, &sync,
                                   &err) != CACHE_OK)
            log_msg(LOG_WARNING, "probes: %s", err.msg);
        p->data_version = v;
        p->synced_at = now;
    }
    /* Rows nobody refreshed for a whole probe_ttl past their expiry. */
    if (p->cache != NULL &&
        cache_purge_tls_probes(p->cache, now - p->cfg->probe_ttl, &err) != CACHE_OK)
        log_msg(LOG_WARNING, "probes: %s", err.msg);
    for (size_t i = 0; i < sync.n; i++) {
        unsigned h = probes_hash(sync.v[i].host);
        struct shard *sh = probes_shard_of(p, h);
        struct entry *e;

        pthread_rwlock_wrlock(&sh->lk);
        e = probes_find(sh, h, sync.v[i].host);
        /* Newer than what memory holds: the job reads the rows again. */
        if (e != NULL && (!e->have || e->res.probed_at < sync.v[i].at))
            (void)probes_enqueue(p, e, LANE_REFRESH, NULL, 0);
        pthread_rwlock_unlock(&sh->lk);
    }
    for (size_t k = 0; k < N_SHARDS; k++) {
        struct shard *sh = &p->shards[k];

        pthread_rwlock_wrlock(&sh->lk);
        for (size_t b = 0; b < SHARD_BUCKETS; b++)
            for (struct entry *e = sh->buckets[b]; e != NULL; e = e->next) {
                int64_t life = e->res.expires_at - e->res.probed_at;
                bool in_use = atomic_load(&e->last_used) >= now - p->cfg->probe_ttl;

                if (e->have && in_use && e->res.expires_at - life / 4 <= now)
                    (void)probes_enqueue(p, e, LANE_REFRESH, NULL, 0);
            }
        pthread_rwlock_unlock(&sh->lk);
    }
    free(sync.v);
}

/* At open: the live probe rows of the shared cache into memory, so that a
 * restart or a reload does not make every MX host unknown again. */
void
probes_preload(struct probes *p)
{
    int64_t now = p->seam.now();
    struct sync sync = {NULL, 0, SYNC_MAX};
    struct mts_err err;

    if ((sync.v = malloc(SYNC_MAX * sizeof(*sync.v))) == NULL)
        return;
    if (cache_tls_probed_since(p->cache, now - p->cfg->probe_ttl, SYNC_MAX, collect_probed,
                               &sync, &err) != CACHE_OK)
        log_msg(LOG_WARNING, "probes: %s", err.msg);
    for (size_t i = 0; i < sync.n; i++)
        probes_load_now(p, sync.v[i].host, now);
    free(sync.v);
}

void *
probes_refresher(void *arg)
{
    struct probes *p = arg;

    pthread_mutex_lock(&p->mu);
    while (!p->stop) {
        struct timespec until = clock_deadline_after((int)(p->cfg->refresh_interval * 1000));

        while (!p->stop && pthread_cond_timedwait(&p->refresher_cv, &p->mu, &until) != ETIMEDOUT)
            ;
        if (p->stop)
            break;
        pthread_mutex_unlock(&p->mu);
        probes_refresh(p);
        pthread_mutex_lock(&p->mu);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

