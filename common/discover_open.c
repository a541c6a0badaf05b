/*
 * discover_open - the lookup engine's life: discover_open starts its
 * cache connection, memory copy, write-behind queue, resolver and worker
 * threads; discover_close stops them in that order's reverse. See
 * discover.h; the lookups themselves are in discover.c.
 */
#include "discover.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cache.h"
#include "cachecopy.h"
#include "cachewq.h"
#include "clock.h"
#include "dns.h"
#include "fetch.h"
#include "log.h"
#include "discover_int.h"
#include "fleet_share.h"

static int64_t
wall_clock(void)
{
    return (int64_t)time(NULL);
}

/* ------------------------------------------------------------ setup */

int
discover_global_init(struct mts_err *err)
{
    return fetch_global_init(err);
}

int
discover_open(const struct config *cfg, int flags, struct discover **out, struct mts_err *err)
{
    struct discover *d = calloc(1, sizeof(*d));
    struct dns_options dopts;

    *out = NULL;
    if (d == NULL) {
        mts_err_set(err, "out of memory");
        return -1;
    }
    d->refs = 1;
    d->cfg = config_ref((struct config *)cfg);
    d->q.publish = true;	/* its queue depths and waits are the metrics (lookupq.h) */
    d->flags = flags;
    d->now = wall_clock;
    pthread_mutex_init(&d->mu, NULL);
    clock_cond_init(&d->work_cv);
    clock_cond_init(&d->refresh_work_cv);
    clock_cond_init(&d->done_cv);
    clock_cond_init(&d->refresher_cv);

    if (!(flags & DISCOVER_NO_CACHE) && (flags & DISCOVER_HEAL_CACHE)) {
        char moved[4096];

        if (cache_open_healing(cfg->cache_db, (int)cfg->cache_busy_timeout_ms, &d->cache, moved,
                               sizeof(moved), err) != CACHE_OK) {
            discover_close(d);
            return DISCOVER_OPEN_CACHE_ERROR;
        }
        if (moved[0] != '\0')
            log_msg(LOG_WARNING, "cache %s was corrupt: moved aside to %s, a fresh one created",
                    cfg->cache_db, moved);
    } else if (!(flags & DISCOVER_NO_CACHE) &&
               cache_open(cfg->cache_db, (int)cfg->cache_busy_timeout_ms, &d->cache, err) !=
                   CACHE_OK) {
        discover_close(d);
        return DISCOVER_OPEN_CACHE_ERROR;
    }
    if (d->cache != NULL &&
        (d->hot = cachecopy_new((size_t)cfg->memory_cache_domains, d->cache, err)) == NULL)
        goto fail;
    if (d->cache != NULL &&
        (d->wq = cachewq_open(d->cache, (size_t)cfg->cache_write_queue_max, "lookups", err)) ==
            NULL)
        goto fail;
    /* The fleet is a cache too: not without one (DISCOVER_NO_CACHE). The
     * process's one, shared with the probe engine (fleet_share.h). */
    if (d->cache != NULL && fleet_share_get(cfg, &d->fleet, err) != 0)
        goto fail;
    /* Only a daemon keeps memory that news from the fleet can update. */
    if (d->fleet != NULL && (flags & DISCOVER_REFRESHER) && d->hot != NULL) {
        if (fleet_share_listen(d->fleet, discover_fleet_event, d, err) != 0)
            goto fail;
        d->fleet_listening = true;
    }
    dns_options_from(cfg, &dopts);
    if (dns_open(&dopts, &d->dns, err) != 0)
        goto fail;
    if (fetch_global_init(err) != 0)
        goto fail;
    snprintf(d->user_agent, sizeof(d->user_agent), "mtasts-milter/%s", MTS_VERSION);
    d->fopts.ca_file = cfg->ca_file;
    d->fopts.connect_timeout_ms = (long)cfg->fetch_connect_timeout_ms;
    d->fopts.total_timeout_ms = (long)cfg->fetch_timeout_ms;
    d->fopts.user_agent = d->user_agent;
    d->fopts.port = 443;

    d->max_rcpt_workers = (size_t)(cfg->lookup_workers_max > cfg->lookup_workers ?
                                   cfg->lookup_workers_max : cfg->lookup_workers);
    if (discover_cap_open(d, err) != 0)
        goto fail;
    d->workers = calloc(d->max_rcpt_workers + (size_t)cfg->refresh_workers,
                        sizeof(*d->workers));
    d->worker_ended = calloc(d->max_rcpt_workers + (size_t)cfg->refresh_workers,
                             sizeof(*d->worker_ended));
    if (d->workers == NULL || d->worker_ended == NULL) {
        mts_err_set(err, "out of memory");
        goto fail;
    }
    pthread_mutex_lock(&d->mu);		/* grow_pool may add to workers from now on */
    for (int64_t i = 0; i < cfg->refresh_workers + cfg->lookup_workers; i++) {
        bool bg = i < cfg->refresh_workers;

        if (pthread_create(&d->workers[i], NULL, bg ? discover_refresh_worker_main : discover_recipient_worker_main,
                           d) != 0) {
            pthread_mutex_unlock(&d->mu);
            mts_err_set(err, "cannot start lookup worker threads");
            goto fail;
        }
        d->n_workers++;
        d->n_rcpt_workers += !bg;
    }
    pthread_mutex_unlock(&d->mu);
    if ((flags & DISCOVER_REFRESHER) && d->cache != NULL) {
        if (pthread_create(&d->refresher, NULL, discover_refresher_main, d) != 0) {
            mts_err_set(err, "cannot start the refresh thread");
            goto fail;
        }
        d->refresher_started = true;
    }
    *out = d;
    return 0;
fail:
    discover_close(d);
    return -1;
}

int
discover_check_cache(const struct config *cfg, struct mts_err *err)
{
    switch (cache_check_file(cfg->cache_db, (int)cfg->cache_busy_timeout_ms, err)) {
    case CACHE_OK:
        return 0;
    case CACHE_CORRUPT:
        return 1;
    case CACHE_BUSY:
    case CACHE_READONLY:
        return 2;
    default:
        return -1;
    }
}

void
discover_set_clock(struct discover *d, discover_clock_fn now)
{
    d->now = now ? now : wall_clock;
}

struct discover *
discover_share(struct discover *d)
{
    __atomic_add_fetch(&d->refs, 1, __ATOMIC_SEQ_CST);
    return d;
}

void
discover_close(struct discover *d)
{
    if (d == NULL || __atomic_sub_fetch(&d->refs, 1, __ATOMIC_SEQ_CST) > 0)
        return;
    pthread_mutex_lock(&d->mu);
    d->stopping = true;
    pthread_cond_broadcast(&d->work_cv);
    pthread_cond_broadcast(&d->refresh_work_cv);
    pthread_cond_broadcast(&d->refresher_cv);
    pthread_mutex_unlock(&d->mu);
    if (d->refresher_started)
        pthread_join(d->refresher, NULL);
    /* Workers finish the queue first: each job is bounded by its timeouts.
     * None is added now (stopping), so n_workers holds still; the slots of
     * threads that ended idle are joined here too. */
    for (size_t i = 0; i < d->n_workers; i++)
        pthread_join(d->workers[i], NULL);
    free(d->workers);
    free(d->worker_ended);
    discover_cap_close(d);
    /* Its news write to memory and the queue: they stop before them. The
     * fleet itself may live on, for the probe engine or the next reload. */
    if (d->fleet_listening)
        fleet_share_unlisten(d->fleet, discover_fleet_event, d);
    fleet_share_put(d->fleet);
    /* The workers are gone: their last rows reach the file, within a bound. */
    cachewq_close(d->wq, d->cfg->cache_busy_timeout_ms);
    if (d->hot != NULL)
        (void)cachecopy_flush_used(d->hot);
    cachecopy_free(d->hot);
    dns_close(d->dns);
    cache_close(d->cache);
    pthread_cond_destroy(&d->work_cv);
    pthread_cond_destroy(&d->refresh_work_cv);
    pthread_cond_destroy(&d->done_cv);
    pthread_cond_destroy(&d->refresher_cv);
    pthread_mutex_destroy(&d->mu);
    config_unref(d->cfg);
    free(d);
}
