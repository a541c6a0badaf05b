/*
 * discover_int - what discover.c (lookups, workers), discover_refresher.c
 * (the refresh thread) and discover_mx.c (MX sets) share. Not part of
 * discover's interface: callers use discover.h.
 */
#ifndef MTS_DISCOVER_INT_H
#define MTS_DISCOVER_INT_H

#include <pthread.h>
#include <stdbool.h>

#include "cachewq.h"
#include "discover.h"
#include "fetch.h"
#include "lookupq.h"
#include "refresh.h"

struct inflight {
    struct lookupq_item item;		/* in the work queue (first: see job_of) */
    struct inflight *next;		/* in the in-flight list */
    char domain[254];
    bool mx_only;			/* only the MX set (its TTL is near) */
    bool mx_if_missing;			/* ... and only if none is kept by then */
    bool used;				/* a recipient (or prefetch) asked, not only the refresher */
    int refs;				/* waiters + the job itself */
    int waiters;			/* callers waiting for it now */
    pthread_cond_t cv;			/* its waiters: it is done */
    bool done;
    bool charged;			/* counted against who_sender / who_conn (lookupq.h) */
    bool charged_map;			/* ... the policy map's (discover_cap.c) */
    uint64_t who_conn;
    char who_sender[LOOKUPQ_CAP_SENDER_MAX + 1];
    struct status_result res;
};

struct discover {
    int refs;				/* discover_share; the last discover_close closes */
    struct config *cfg;
    int flags;
    struct cache *cache;
    struct cachecopy *hot;		/* with a cache: what recipients use, in memory */
    struct cachewq *wq;			/* with a cache: its writes, off the workers (cachewq.h) */
    struct fleet *fleet;		/* with fleet_redis: the process's fleet (fleet_share.h), else NULL */
    bool fleet_listening;		/* discover_fleet_event is one of its listeners */
    struct dns *dns;
    struct fetch_options fopts;
    char user_agent[64];
    discover_clock_fn now;

    pthread_mutex_t mu;
    pthread_cond_t work_cv;		/* recipients' workers: a job is queued, or stop */
    pthread_cond_t refresh_work_cv;	/* background workers: a job is queued, or stop */
    pthread_cond_t done_cv;		/* discover_drain: some lookup finished */
    int drainers;			/* discover_drain calls waiting on done_cv */
    struct inflight *inflight;		/* every queued or running lookup */
    struct lookupq q;			/* lanes: waited, abandoned, refresh */
    struct lookupq_cap *cap;		/* fresh lookups in flight per sender / connection */
    struct lookupq_cap *map_cap;		/* ... of the policy map, and per map connection */
    size_t running;
    bool stopping;
    pthread_t *workers;			/* refresh_workers, then the recipients' (growing) */
    bool *worker_ended;			/* that slot's thread exited idle, not yet joined */
    size_t n_workers;			/* slots used, both kinds (ended ones too) */
    size_t n_rcpt_workers, max_rcpt_workers, idle_rcpt_workers;
    bool grow_failed;			/* a thread could not be started: logged once */

    pthread_t refresher;
    bool refresher_started;
    pthread_cond_t refresher_cv;
    struct refresh_cursor cursor;	/* the refresher's own: where its next round starts */
};

/* discover.c: the two kinds of worker threads (discover_open.c starts them,
 * discover.c's grow_pool more of the recipients'). */
void *discover_recipient_worker_main(void *arg);
void *discover_refresh_worker_main(void *arg);

/* Queues a lookup nobody waits for (mx_only: only the MX set; used: for a
 * recipient or prefetch, not the refresher). -1 when the queue is full. */
int discover_queue_job(struct discover *d, const char *domain, bool mx_only, bool used);

/* Queues keeping domain's MX set, which a recipient's thread resolved (and
 * does not write): the job does nothing if memory or the shared cache has
 * a live set by the time it runs (the lookup of an enforce policy keeps
 * one itself). -1 when the queue is full. */
int discover_queue_mx_if_missing(struct discover *d, const char *domain);

/* The refresh thread (discover_refresher.c), started by discover_open with
 * DISCOVER_REFRESHER; it ends when d->stopping is set. */
void *discover_refresher_main(void *arg);

/*
 * discover_cap.c: fresh lookups charged to their callers (lookupq.h caps).
 * The milter's senders and connections share d->cap (lookups_per_sender,
 * lookups_per_connection); the policy map's connections (who->map) have
 * d->map_cap: all of them together at most map_lookups_max and at most
 * half of lookup_workers_max (the map never takes the workers the RCPTs
 * need), each at most map_lookups_per_connection.
 *
 * discover_cap_open makes both from d->cfg (d->max_rcpt_workers set);
 * take and give are called with d->mu held; discover_cap_of is NULL when
 * no cap applies to who.
 */
int discover_cap_open(struct discover *d, struct mts_err *err);
void discover_cap_close(struct discover *d);
struct lookupq_cap *discover_cap_of(const struct discover *d, const struct discover_caller *who);
enum lookupq_cap_result discover_cap_take(struct discover *d, const struct discover_caller *who,
                                          bool *log_it);
void discover_cap_give(struct discover *d, bool map, const char *sender, uint64_t conn);
/* Why who's new domain is not looked up now: res is unknown, its error says why. */
void discover_cap_refuse(struct discover *d, const struct discover_caller *who,
                         enum lookupq_cap_result r, bool log_it, struct status_result *res);

/*
 * Why a fresh lookup of who's (policy or cold MX set) is refused: the
 * sentence into why; logged when log_it (lookupq_cap_take says, at most once a
 * minute per sender or connection).
 */
void discover_refusal(struct discover *d, const struct discover_caller *who,
                      enum lookupq_cap_result r, bool log_it, char *why, size_t whysz);

/*
 * discover_fleet.c: the fleet's hooks. discover_fleet_row: domain's row from
 * Redis (a row another host learnt, or the one the host that holds the
 * domain's fetch lock writes meanwhile); false: look it up here.
 * discover_fleet_fresh: that row answers now, without DNS (res filled,
 * from the fleet). discover_fleet_learnt: what a lookup leaves in e goes to
 * Redis, published when it changed before's id or status.
 * discover_fleet_event: the subscriber's callback (fleet.h).
 */
struct fleet;
bool discover_fleet_row(struct discover *d, const char *domain, int64_t now,
                        struct cache_entry *e);
/* domain's MX set from the fleet: read, or awaited for at most wait_ms
 * when another host holds its lock (else this host takes it for ms);
 * false: resolve it (and fleet_put_mx). */
bool discover_fleet_mx(struct discover *d, const char *domain, int ms, int wait_ms,
                       struct cache_mxset *m);
bool discover_fleet_fresh(const struct discover *d, const struct cache_entry *e, int64_t now,
                          struct status_result *res);
void discover_fleet_learnt(struct discover *d, const struct cache_entry *before, bool had_row,
                           const struct cache_entry *e, const struct status_result *res,
                           int64_t now);
void discover_fleet_event(const char *kind, const char *name, void *arg);

/* Looks domain's MX set up again (if_missing: only when none is stored). */
void discover_mx_refresh(struct discover *d, const char *domain, bool if_missing);

#endif
