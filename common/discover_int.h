/*
 * discover_int - what discover.c (lookups, workers, refresher) and
 * discover_mx.c (MX sets) share. Not part of discover's interface:
 * callers use discover.h.
 */
#ifndef MTS_DISCOVER_INT_H
#define MTS_DISCOVER_INT_H

#include <pthread.h>
#include <stdbool.h>

#include "discover.h"
#include "fetch.h"
#include "refresh.h"

struct inflight {
    struct inflight *next;		/* in the in-flight list */
    struct inflight *qnext;		/* in the work queue */
    char domain[254];
    bool mx_only;			/* only the MX set (its TTL is near) */
    bool used;				/* a recipient (or prefetch) asked, not only the refresher */
    int refs;				/* waiters + the job itself */
    bool done;
    struct discover_result res;
};

struct discover {
    int refs;				/* discover_share; the last discover_close closes */
    struct config *cfg;
    int flags;
    struct cache *cache;
    struct hotstate *hot;		/* with a cache: what recipients use, in memory */
    struct dns *dns;
    struct fetch_options fopts;
    char user_agent[64];
    discover_clock_fn now;

    pthread_mutex_t mu;
    pthread_cond_t work_cv;		/* workers: a job is queued, or stop */
    pthread_cond_t done_cv;		/* callers: some lookup finished */
    struct inflight *inflight;		/* every queued or running lookup */
    struct inflight *qhead, *qtail;
    size_t queued, running;
    bool stopping;
    pthread_t *workers;
    size_t n_workers;

    pthread_t refresher;
    bool refresher_started;
    pthread_cond_t refresher_cv;
    struct refresh_cursor cursor;	/* the refresher's own: where its next round starts */
};

/* Queues a lookup nobody waits for (mx_only: only the MX set; used: for a
 * recipient or prefetch, not the refresher). -1 when the queue is full. */
int discover_queue_job(struct discover *d, const char *domain, bool mx_only, bool used);

/* Looks domain's MX set up again (if_missing: only when none is stored). */
void discover_mx_refresh(struct discover *d, const char *domain, bool if_missing);

#endif
