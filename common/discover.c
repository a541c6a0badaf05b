/*
 * discover - a domain's MTA-STS status; see discover.h and DESIGN.md.
 *
 * Orchestration only; the RFC 8461 §5.1 rules are in refresh.c, behind
 * struct refresh_io (DNS and HTTPS), which this file fills with the real
 * resolver and fetcher. Three parts:
 *  - discover_lookup(): the cached row answers when it can
 *    (refresh_status_from_row, no I/O), else the caller joins a lookup;
 *  - refresh(): one lookup of one domain: cache row in, refresh_step,
 *    row out;
 *  - the in-flight table and worker pool (started and stopped in
 *    discover_open.c; the background refresher's
 *    thread is in discover_refresher.c): at most
 *    one refresh per domain at a time, callers waiting on it with their
 *    own deadlines.
 *
 * Every cache write is a whole row (cache_put), so a reader in another
 * process never sees half of a refresh. A worker never writes the file
 * itself: what it learnt goes to memory and its waiters first, and to the
 * write-behind queue (cachewq.h), whose one thread may wait for another
 * process's lock while the workers go on.
 */
#include "discover.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cache.h"
#include "clock.h"
#include "dns.h"
#include "domain.h"
#include "fetch.h"
#include "cachecopy.h"
#include "log.h"
#include "metrics.h"
#include "mxmatch.h"
#include "refresh.h"
#include "discover_int.h"

#define QUEUE_MAX 100000		/* lookups waiting for a worker */

bool
discover_check_resolver(struct discover *d, char *why, size_t whysz)
{
    return dns_check_dnssec_path(d->dns, (int)d->cfg->dns_timeout_ms, why, whysz) ==
           DNS_PATH_STRIPPED;
}

void
discover_resolver_health(struct discover *d, struct dns_health *out)
{
    dns_health(d->dns, out);
}

int
discover_lookup_bound_ms(const struct config *cfg)
{
    return (int)(cfg->dns_timeout_ms * 2 + cfg->fetch_timeout_ms + 1000);
}

/* ------------------------------------------------------------ refresh */

static void
io_txt(void *arg, const char *qname, struct dns_answer *out, struct mts_err *err)
{
    struct discover *d = arg;

    /* A worker is bounded by dns_timeout_ms, not by any one caller's deadline. */
    dns_query(d->dns, qname, DNS_TXT, NULL, out, err);
}

static void
io_addresses(void *arg, const char *host, struct dns_answer *out, struct mts_err *err)
{
    struct discover *d = arg;

    /* A policy is about to be fetched: its domain's MX set, which the
     * recipients of an enforce policy need next (discover_mx), is asked for
     * now, beside the fetch, not after it; the resolver's cache keeps it.
     * (Without a cache, as for the refresh's own MX set, nothing is kept.) */
    if (d->cache != NULL && strncmp(host, "mta-sts.", 8) == 0)
        dns_prefetch(d->dns, host + 8, DNS_MX);
    dns_addresses(d->dns, host, NULL, out, err);
}

static int
io_fetch(void *arg, const char *domain, const char *const *addrs, size_t n_addrs,
         struct fetch_result *out, struct mts_err *err)
{
    struct discover *d = arg;

    return fetch_policy(&d->fopts, domain, addrs, n_addrs, out, err);
}

/*
 * One lookup of one domain: reads the cached row (or none), applies the
 * RFC 8461 rules (refresh.c), writes the row back, and reports the status.
 * used: a recipient asked (its last use is now); the refresher's own
 * visits leave last_used alone, so what nobody uses ages out.
 */
static bool
refresh(struct discover *d, const char *domain, bool used, struct status_result *res,
        struct cache_entry *ep, uint32_t *genp)
{
    const struct refresh_io io = {d, io_txt, io_addresses, io_fetch};
    struct cache_entry e, before;
    struct mts_err err;
    int64_t now = d->now();
    enum cache_status cs = CACHE_NOT_FOUND;

    uint32_t gen = d->hot != NULL ? cachecopy_gen(d->hot) : 0;

    memset(ep, 0, sizeof(*ep));
    *genp = gen;
    memset(&e, 0, sizeof(e));
    if (d->cache != NULL) {
        cs = cache_get(d->cache, domain, &e, &err);
        if (cs == CACHE_BAD_ROW) {
            /* A row this code cannot trust (absurd times, bad fields) is no
             * knowledge at all: look the domain up afresh and replace it. */
            log_msg(LOG_WARNING, "%s: %s; replacing it", domain, err.msg);
            /* Deleted first: its times (say fetched_at) could hold back the write. */
            (void)cache_delete(d->cache, domain, NULL);
            cs = CACHE_NOT_FOUND;
        }
        if (cs != CACHE_OK && cs != CACHE_NOT_FOUND) {
            /* Without the row we cannot know whether a policy is cached:
             * never guess "no policy". */
            res->status = STATUS_UNKNOWN;
            mts_text_set(res->error, sizeof(res->error), "cache unreadable: %s", err.msg);
            log_msg(LOG_ERR, "%s: cache unreadable: %s", domain, err.msg);
            return false;
        }
    }
    if (cs == CACHE_NOT_FOUND && discover_fleet_row(d, domain, now, &e)) {
        /* Another host of the fleet learnt it: fresh enough, it answers
         * as a cache row would; else it is the row refresh_step starts from. */
        cs = CACHE_OK;
        if (discover_fleet_fresh(d, &e, now, res)) {
            if (used)
                e.last_used = now;
            *ep = e;
            return true;
        }
    }
    if (cs == CACHE_NOT_FOUND) {
        memset(&e, 0, sizeof(e));
        snprintf(e.domain, sizeof(e.domain), "%s", domain);
    }
    before = e; /* its scalars only: refresh_step may free its lists */
    before.mx = NULL;
    before.n_mx = 0;
    before.policy_text = NULL;
    refresh_step(d->cfg, &io, &e, now, res);
    /* What this host learnt itself is its own (cache.h, source); a TXT
     * check that only confirms the fleet's row keeps the row's source. */
    if (strcmp(before.txt_id, e.txt_id) != 0 || before.fetched_at != e.fetched_at ||
        before.has_status != e.has_status || before.status != e.status ||
        before.has_policy != e.has_policy)
        e.source[0] = res->origin[0] = '\0';
    discover_fleet_learnt(d, &before, cs == CACHE_OK, &e, res, now);
    if (used)
        e.last_used = now;
    *ep = e;
    return true;
}

/*
 * Hands the row to the write-behind queue and frees it: the write may
 * wait busy_timeout_ms (and more) for another process's lock, on the
 * queue's thread, not this worker's. A later row of another process
 * (CACHE_STALE there) stays, and reaches memory through the data version.
 */
static void
refresh_store(struct discover *d, struct cache_entry *e)
{
    if (d->wq != NULL)
        cachewq_put_row(d->wq, e);
    cache_entry_free(e);
}

/* ------------------------------------------------------------ in flight */

static struct inflight *
inflight_find(struct discover *d, const char *domain, bool mx_only)
{
    for (struct inflight *f = d->inflight; f != NULL; f = f->next)
        if (f->mx_only == mx_only && strcmp(f->domain, domain) == 0)
            return f;
    return NULL;
}

static void
inflight_unref(struct discover *d, struct inflight *f)
{
    /* Called with d->mu held. */
    if (--f->refs > 0)
        return;
    status_result_free(&f->res);
    pthread_cond_destroy(&f->cv);
    free(f);
}

/* The job an item of the queue is (item is its first member). */
static struct inflight *
job_of(struct lookupq_item *it)
{
    return (struct inflight *)(void *)it;
}

/*
 * More lookups wait for a recipients' worker than are idle: one more
 * thread, up to lookup_workers_max, so that many new domains at once run
 * side by side rather than in rounds. Called with d->mu held.
 */
static void
grow_pool(struct discover *d)
{
    size_t slot = d->n_workers;

    if (d->stopping || d->n_rcpt_workers >= d->max_rcpt_workers ||
        lookupq_pending(&d->q, LOOKUPQ_FOR_RECIPIENTS) <= d->idle_rcpt_workers)
        return;
    /* The slot of a thread that exited idle first (it holds no lock now,
     * so the join is short): slots never outnumber threads at the most. */
    for (size_t i = 0; i < d->n_workers; i++) {
        if (d->worker_ended[i]) {
            pthread_join(d->workers[i], NULL);
            d->worker_ended[i] = false;
            slot = i;
            break;
        }
    }
    if (pthread_create(&d->workers[slot], NULL, discover_recipient_worker_main, d) != 0) {
        /* The threads there are serve the queue; said once, not once a lookup. */
        if (!d->grow_failed)
            log_msg(LOG_WARNING, "cannot start another lookup thread (%zu running); "
                    "the others serve the queue", d->n_rcpt_workers);
        d->grow_failed = true;
        /* An ended slot stays joined, and free: a worker that ends marks its own. */
        return;
    }
    if (slot == d->n_workers)
        d->n_workers++;
    d->n_rcpt_workers++;
}

/*
 * A recipients' worker idle for lookup_workers_idle, beyond lookup_workers:
 * true when it is to exit (its slot marked for grow_pool or
 * discover_close to join). Called with d->mu held, nothing queued for it.
 */
static bool
shrink_pool(struct discover *d)
{
    if (d->stopping || d->n_rcpt_workers <= (size_t)d->cfg->lookup_workers ||
        lookupq_pending(&d->q, LOOKUPQ_FOR_RECIPIENTS) > 0)
        return false;
    for (size_t i = (size_t)d->cfg->refresh_workers; i < d->n_workers; i++) {
        if (!d->worker_ended[i] && pthread_equal(d->workers[i], pthread_self())) {
            d->worker_ended[i] = true;
            d->n_rcpt_workers--;
            return true;
        }
    }
    return false;
}

static void
queue_in(struct discover *d, struct inflight *f, enum lookupq_lane lane)
{
    lookupq_push(&d->q, &f->item, lane);
    if (lane == LOOKUPQ_REFRESH) {
        pthread_cond_signal(&d->refresh_work_cv);
    } else {
        pthread_cond_signal(&d->work_cv);
        grow_pool(d);
    }
}

/* A waiter joins f: a queued background or abandoned job moves up. */
static void
add_waiter(struct discover *d, struct inflight *f)
{
    f->waiters++;
    if (lookupq_lane_of(&f->item) >= 0 && lookupq_lane_of(&f->item) != LOOKUPQ_WAITED) {
        lookupq_move(&d->q, &f->item, LOOKUPQ_WAITED);
        pthread_cond_signal(&d->work_cv);
        grow_pool(d);
    }
}

/* A waiter leaves f (answered, or its deadline passed). */
static void
drop_waiter(struct discover *d, struct inflight *f)
{
    /* Nobody waits any more: it yields to lookups somebody waits for. */
    if (--f->waiters == 0)
        (void)lookupq_move(&d->q, &f->item, LOOKUPQ_ABANDONED);
}

/*
 * Finds or starts the lookup of domain; returns it with a reference for the
 * caller, or NULL (res says why when a cap refused it). waiter: the caller
 * will wait for it (else it is background work); who: whom a fresh lookup
 * is charged to (NULL: nobody, no cap).
 */
static struct inflight *
inflight_join(struct discover *d, const char *domain, bool mx_only, bool used, bool waiter,
              const struct discover_caller *who, struct status_result *res)
{
    struct inflight *f = inflight_find(d, domain, mx_only);
    bool charged = false;

    if (f != NULL) {
        f->refs++;
        f->used = f->used || used;
        f->mx_if_missing = false; /* whoever joins wants the whole job */
        if (waiter)
            add_waiter(d, f);
        return f;
    }
    if (lookupq_total(&d->q) >= QUEUE_MAX || d->stopping)
        return NULL;
    if (who != NULL && discover_cap_of(d, who) != NULL) {
        bool log_it;
        enum lookupq_cap_result r = discover_cap_take(d, who, &log_it);

        if (r != LOOKUPQ_CAP_OK) {
            if (res != NULL)
                discover_cap_refuse(d, who, r, log_it, res);
            return NULL;
        }
        charged = true;
    }
    f = calloc(1, sizeof(*f));
    if (f == NULL) {
        if (charged)
            discover_cap_give(d, who->map, who->sender, who->conn);
        return NULL;
    }
    snprintf(f->domain, sizeof(f->domain), "%s", domain);
    snprintf(f->res.domain, sizeof(f->res.domain), "%s", domain);
    clock_cond_init(&f->cv);
    f->mx_only = mx_only;
    f->used = used;
    f->refs = 2;			/* the caller and the job */
    f->waiters = waiter ? 1 : 0;
    if (charged) {
        f->charged = true;
        f->charged_map = who->map;
        f->who_conn = who->conn;
        snprintf(f->who_sender, sizeof(f->who_sender), "%s", who->sender ? who->sender : "");
    }
    f->next = d->inflight;
    d->inflight = f;
    queue_in(d, f, waiter ? LOOKUPQ_WAITED : LOOKUPQ_REFRESH);
    return f;
}

/* Runs jobs of one kind (lookupq.h lanes) until stopped and drained. */
static void
worker_loop(struct discover *d, enum lookupq_server kind)
{
    pthread_cond_t *cv = kind == LOOKUPQ_FOR_REFRESH ? &d->refresh_work_cv : &d->work_cv;

    pthread_mutex_lock(&d->mu);
    for (;;) {
        struct lookupq_item *it;
        struct inflight *f, **pp;
        struct cache_entry e;
        uint32_t gen = 0;
        bool store = false, used, if_missing;
        int64_t t0;

        while ((it = lookupq_pop(&d->q, kind)) == NULL && !d->stopping) {
            if (kind == LOOKUPQ_FOR_RECIPIENTS) {
                /* Idle this long beyond the minimum: the thread goes
                 * (issue 19: a burst left 526 threads that stayed). */
                struct timespec idle_end =
                    clock_deadline_after((int)(d->cfg->lookup_workers_idle * 1000));
                int rc;

                d->idle_rcpt_workers++;
                rc = pthread_cond_timedwait(cv, &d->mu, &idle_end);
                d->idle_rcpt_workers--;
                if (rc == ETIMEDOUT && shrink_pool(d))
                    break;
            } else {
                pthread_cond_wait(cv, &d->mu);
            }
        }
        if (it == NULL)
            break;
        f = job_of(it);
        d->running++;
        used = f->used; /* read under the lock: a caller may join meanwhile */
        if_missing = f->mx_if_missing;
        pthread_mutex_unlock(&d->mu);

        t0 = metrics_clock_us();
        if (f->mx_only)
            discover_mx_refresh(d, f->domain, if_missing);
        else if ((store = refresh(d, f->domain, used, &f->res, &e, &gen)) && d->hot != NULL)
            /* In memory before its waiters wake (gen: from before refresh()
             * read the cache): the next RCPT finds it, whatever the write. */
            cachecopy_put_row(d->hot, &e, gen, 0, SHARDMAP_REPLACE);
        if (!f->mx_only)
            metrics_lookup((int)f->res.status, metrics_clock_us() - t0);

        pthread_mutex_lock(&d->mu);
        if (store && !used && f->used)
            e.last_used = d->now(); /* a recipient joined the refresher's visit */
        /* Answered now, from memory too; the row is queued for the file
         * after (refresh_store). */
        for (pp = &d->inflight; *pp != NULL; pp = &(*pp)->next) {
            if (*pp == f) {
                *pp = f->next;
                break;
            }
        }
        f->done = true;
        /* Its sender may start another new domain now. */
        if (f->charged)
            discover_cap_give(d, f->charged_map, f->who_sender, f->who_conn);
        /* Only its own waiters wake: with one condition for all, 50 cold
         * domains at once woke 50 callers at each end, 2,500 wake-ups
         * fighting for d->mu with the workers. */
        pthread_cond_broadcast(&f->cv);
        if (store) {
            pthread_mutex_unlock(&d->mu);
            refresh_store(d, &e);
            pthread_mutex_lock(&d->mu);
        }
        if (!f->mx_only && f->res.status == STATUS_ENFORCE && d->cache != NULL) {
            /* After the callers have their answer: the MX set their
             * recipients will need, unless one is cached. */
            pthread_mutex_unlock(&d->mu);
            discover_mx_refresh(d, f->domain, true);
            pthread_mutex_lock(&d->mu);
        }
        d->running--;
        if (d->drainers > 0)
            pthread_cond_broadcast(&d->done_cv);
        inflight_unref(d, f);
    }
    pthread_mutex_unlock(&d->mu);
}

void *
discover_recipient_worker_main(void *arg)
{
    worker_loop(arg, LOOKUPQ_FOR_RECIPIENTS);
    return NULL;
}

void *
discover_refresh_worker_main(void *arg)
{
    worker_loop(arg, LOOKUPQ_FOR_REFRESH);
    return NULL;
}

/*
 * Joins (or starts) the lookup of domain and waits for it until deadline.
 * Returns whether it finished; if not, res says unknown and why (budget_ms:
 * the caller's whole wait, for that sentence).
 */
static bool
lookup_and_wait(struct discover *d, const char *domain, const struct timespec *deadline,
                int budget_ms, const struct discover_caller *who, struct status_result *res)
{
    struct inflight *f;
    bool finished;

    pthread_mutex_lock(&d->mu);
    res->error[0] = '\0';
    f = inflight_join(d, domain, false, true, true, who, res);
    if (f == NULL) {
        pthread_mutex_unlock(&d->mu);
        res->status = STATUS_UNKNOWN;
        if (res->error[0] == '\0')
            mts_text_set(res->error, sizeof(res->error),
                         "lookup queue is full or shutting down");
        return false;
    }
    while (!f->done) {
        if (pthread_cond_timedwait(&f->cv, &d->mu, deadline) == ETIMEDOUT)
            break;
    }
    drop_waiter(d, f);
    if (f->done) {
        status_result_free(res);
        status_result_copy(res, &f->res);
    } else {
        res->status = STATUS_UNKNOWN;
        res->source = STATUS_FROM_FRESH;
        mts_text_set(res->error, sizeof(res->error),
                 d->cache != NULL ?
                     "lookup did not finish within %d ms (it goes on and will fill the cache)" :
                     "lookup did not finish within %d ms (without a cache, its result is not kept)",
                 budget_ms);
    }
    finished = f->done;
    inflight_unref(d, f);
    pthread_mutex_unlock(&d->mu);
    return finished;
}

/*
 * Queues a job nobody waits for: a refresh of domain (normalised), or of
 * its MX set; used: on behalf of a recipient or prefetch, not the refresher.
 */
int
discover_queue_job(struct discover *d, const char *domain, bool mx_only, bool used)
{
    struct inflight *f;

    pthread_mutex_lock(&d->mu);
    f = inflight_join(d, domain, mx_only, used, false, NULL, NULL);
    if (f != NULL)
        inflight_unref(d, f);		/* nobody waits for it */
    pthread_mutex_unlock(&d->mu);
    return f != NULL ? 0 : -1;
}

int
discover_queue_mx_if_missing(struct discover *d, const char *domain)
{
    struct inflight *f, *had;

    pthread_mutex_lock(&d->mu);
    had = inflight_find(d, domain, true);
    f = inflight_join(d, domain, true, true, false, NULL, NULL);
    if (f != NULL) {
        /* A job already queued (a TTL refresh) does its whole work. */
        if (had == NULL)
            f->mx_if_missing = true;
        inflight_unref(d, f);
    }
    pthread_mutex_unlock(&d->mu);
    return f != NULL ? 0 : -1;
}

int
discover_queue(struct discover *d, const char *domain)
{
    char norm[MXMATCH_NAME_MAX + 1];

    if (domain_normalize(domain, norm, sizeof(norm), NULL) != 0)
        return -1;
    return discover_queue_job(d, norm, false, true);
}

void
discover_drain(struct discover *d)
{
    pthread_mutex_lock(&d->mu);
    d->drainers++;
    while (lookupq_total(&d->q) > 0 || d->running > 0)
        pthread_cond_wait(&d->done_cv, &d->mu);
    d->drainers--;
    pthread_mutex_unlock(&d->mu);
    if (d->wq != NULL) {
        /* ... and their rows in the file (a lock there: one busy wait). */
        struct timespec dl = clock_deadline_after((int)d->cfg->cache_busy_timeout_ms + 1000);

        (void)cachewq_flush(d->wq, &dl);
    }
}

/* With at_once (deadline NULL) only memory answers: false when it cannot. */
static bool
lookup(struct discover *d, const char *domain, const struct timespec *deadline, int flags,
       const struct discover_caller *who, struct status_result *res, bool at_once)
{
    struct cache_entry e;
    struct mts_err err;
    enum cache_status cs;
    int64_t now = d->now();
    int budget_ms = at_once ? 0 : clock_ms_until(deadline);

    memset(res, 0, sizeof(*res));
    res->status = STATUS_UNKNOWN;
    res->source = STATUS_FROM_CACHE;
    if (domain_normalize(domain, res->domain, sizeof(res->domain), &err) != 0) {
        snprintf(res->domain, sizeof(res->domain), "%.*s", 200, domain ? domain : "");
        mts_text_set(res->error, sizeof(res->error), "invalid domain: %s", err.msg);
        return true;
    }
    if (d->cache == NULL) {
        if (at_once)
            return false;
        (void)lookup_and_wait(d, res->domain, deadline, budget_ms, who, res);
        return true;
    }
    /* Memory first (no lock shared by all threads), then the database. */
    cachecopy_freshen(d->hot);
    if (cachecopy_get_row(d->hot, res->domain, now, &e)) {
        cs = CACHE_OK;
    } else if (at_once) {
        return false;
    } else {
        uint32_t gen = cachecopy_gen(d->hot);

        cs = cache_get(d->cache, res->domain, &e, &err);
        /* A corrupt file is moved aside and a fresh one opened on the next
         * call (cache_conn.c): ask that one, where the row is simply not
         * there yet, rather than defer the RCPT that found the damage. */
        if (cs == CACHE_CORRUPT)
            cs = cache_get(d->cache, res->domain, &e, &err);
        if (cs == CACHE_OK)
            cachecopy_put_row(d->hot, &e, gen, now, SHARDMAP_ADD);
    }
    if (cs == CACHE_OK) {
        /* The last use is in memory; the refresh thread writes it (cachecopy.h). */
        if (refresh_status_take_row(&e, now, res)) {
            bool due = e.checked_at + d->cfg->check_interval <= now ||
                       (e.has_policy && e.expires_at - d->cfg->refresh_margin <= now);
            bool recheck = (flags & DISCOVER_RECHECK) && res->has_policy;

            cache_entry_free(&e);
            if (recheck && at_once) {
                status_result_free(res);
                return false;
            }
            if (recheck) {
                struct status_result fresh;

                memset(&fresh, 0, sizeof(fresh));
                if (lookup_and_wait(d, res->domain, deadline, budget_ms, who, &fresh)) {
                    status_result_free(res);
                    *res = fresh;
                    return true;
                }
                /* The check did not complete: the cached answer stands. */
                res->rechecked = false;
                mts_text_set(res->error, sizeof(res->error), "TXT re-check incomplete: %s",
                         fresh.error);
                status_result_free(&fresh);
                return true;
            }
            if (due)
                (void)discover_queue(d, res->domain);
            return true;
        }
        cache_entry_free(&e);
        if (at_once)
            return false; /* expired in memory: a lookup to wait for */
    } else if (cs != CACHE_NOT_FOUND && cs != CACHE_BAD_ROW) {
        /* (A bad row is looked up afresh and replaced, in refresh().) */
        res->status = STATUS_UNKNOWN;
        mts_text_set(res->error, sizeof(res->error), "cache unreadable: %s", err.msg);
        log_msg(LOG_ERR, "%s: cache unreadable: %s", res->domain, err.msg);
        return true;
    }
    (void)lookup_and_wait(d, res->domain, deadline, budget_ms, who, res);
    return true;
}

void
discover_lookup_as(struct discover *d, const char *domain, const struct timespec *deadline,
                   int flags, const struct discover_caller *who, struct status_result *res)
{
    /* No wait on the cache outlives the caller's deadline. */
    const struct timespec *outer = cache_bound_waits(deadline);

    (void)lookup(d, domain, deadline, flags, who, res, false);
    (void)cache_bound_waits(outer);
}

void
discover_lookup(struct discover *d, const char *domain, const struct timespec *deadline,
                int flags, struct status_result *res)
{
    discover_lookup_as(d, domain, deadline, flags, NULL, res);
}

bool
discover_lookup_at_once(struct discover *d, const char *domain, struct status_result *res)
{
    bool answered = lookup(d, domain, NULL, 0, NULL, res, true);

    if (!answered) {
        status_result_free(res);
        memset(res, 0, sizeof(*res));
    }
    return answered;
}
