/*
 * discover_refresher - the discovery engine's background thread: every
 * refresh_interval it writes the last uses recorded in memory, queues the
 * rows due for a refresh (policies in use, paged by a cursor; refresh.c)
 * into the refresh lane, and purges rows nobody used for unused_ttl. Split
 * from discover.c along its one seam: it only queues jobs
 * (discover_queue_job), the workers in discover.c run them.
 */
#include "discover.h"

#include <pthread.h>
#include <stdint.h>

#include "cache.h"
#include "clock.h"
#include "discover_int.h"
#include "cachecopy.h"
#include "log.h"
#include "refresh.h"

#define DUE_BATCH 500			/* rows the refresher takes per round */

/* The refresher's own visit: not a use (refresh.h). Stops the round when the queue is full. */
static int
queue_due_row(const struct cache_entry *e, void *arg)
{
    return discover_queue_job(arg, e->domain, false, false) == 0 ? 0 : 1;
}

void *
discover_refresher_main(void *arg)
{
    struct discover *d = arg;
    char why[768];

    /* Once at start, off the RCPT path: a resolver that strips DNSSEC makes
     * every lookup unknown, which would otherwise read like a fault of
     * each recipient's DNS. */
    if (discover_check_resolver(d, why, sizeof(why)))
        log_msg(LOG_ERR, "%s", why);

    pthread_mutex_lock(&d->mu);
    while (!d->stopping) {
        struct timespec until = clock_deadline_after((int)d->cfg->refresh_interval * 1000);
        int64_t now;
        struct mts_err err;
        uint64_t purged = 0;

        pthread_cond_timedwait(&d->refresher_cv, &d->mu, &until);
        if (d->stopping)
            break;
        pthread_mutex_unlock(&d->mu);
        now = d->now();
        /* The last uses recorded in memory, in one transaction. */
        (void)cachecopy_flush_used(d->hot);
        /* Policies in use, paged by a cursor; negative rows and unused ones age out. */
        if (refresh_round(d->cache, d->cfg, now, DUE_BATCH, &d->cursor, queue_due_row, d,
                          NULL, &err) != CACHE_OK)
            log_msg(LOG_ERR, "refresh: cannot read the cache: %s", err.msg);
        if (cache_purge_unused(d->cache, now - d->cfg->unused_ttl, &purged, &err) != CACHE_OK)
            log_msg(LOG_ERR, "refresh: cannot purge unused rows: %s", err.msg);
        else if (purged > 0)
            log_msg(LOG_INFO, "refresh: removed %llu rows unused for %lld s",
                    (unsigned long long)purged, (long long)d->cfg->unused_ttl);
        pthread_mutex_lock(&d->mu);
    }
    pthread_mutex_unlock(&d->mu);
    return NULL;
}
