/*
 * probes - MX host probes on background threads; see probes.h.
 *
 * Locks. The host table is sharded (N_SHARDS), each shard with a
 * read-write lock: a probes_get that finds a live result takes only its
 * shard's read lock (no lock shared by every RCPT). One mutex (mu) guards
 * the queue, the job states, the network counters and the statistics.
 * Order: a shard lock, then mu; neither is held across DNS, a probe or
 * the cache. An entry's state leaves E_IDLE only in probes_enqueue(), under its
 * shard's write lock, so eviction (also under it) never frees an entry a
 * worker holds.
 */
#include "probes_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "cache.h"
#include "clock.h"
#include "dns.h"
#include "fleet.h"
#include "log.h"
#include "metrics.h"
#include "metrics_now.h"
#include "probeconf.h"

/* ------------------------------------------------------------ table */

unsigned
probes_hash(const char *s)
{
    unsigned h = 2166136261u;

    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

struct shard *
probes_shard_of(struct probes *p, unsigned h)
{
    return &p->shards[h % N_SHARDS];
}

static struct entry **
bucket_of(struct shard *s, unsigned h)
{
    return &s->buckets[(h / N_SHARDS) % SHARD_BUCKETS];
}

/* Under the shard's lock (read or write). */
struct entry *
probes_find(struct shard *s, unsigned h, const char *host)
{
    for (struct entry *e = *bucket_of(s, h); e != NULL; e = e->next)
        if (strcmp(e->host, host) == 0)
            return e;
    return NULL;
}

/* Drops the shard's least recently asked idle entry; false when none is
 * idle. Under the shard's write lock. */
static bool
evict_one(struct shard *s)
{
    struct entry **victim = NULL;

    for (size_t b = 0; b < SHARD_BUCKETS; b++)
        for (struct entry **pe = &s->buckets[b]; *pe != NULL; pe = &(*pe)->next)
            if (atomic_load(&(*pe)->state) == E_IDLE &&
                (victim == NULL || atomic_load(&(*pe)->last_used) <
                                       atomic_load(&(*victim)->last_used)))
                victim = pe;
    if (victim == NULL)
        return false;
    {
        struct entry *e = *victim;
        *victim = e->next;
        free(e);
        s->n--;
    }
    return true;
}

/* host's entry, made when missing; under the shard's write lock. NULL: no
 * memory, or the shard is full of busy entries. */
static struct entry *
entry_for(struct probes *p, struct shard *s, unsigned h, const char *host)
{
    struct entry *e = probes_find(s, h, host);

    if (e == NULL && (s->n < p->max_per_shard || evict_one(s)) &&
        (e = calloc(1, sizeof(*e))) != NULL) {
        struct entry **b = bucket_of(s, h);
        snprintf(e->host, sizeof(e->host), "%s", host);
        atomic_init(&e->state, E_IDLE);
        atomic_init(&e->last_used, 0);
        e->next = *b;
        *b = e;
        s->n++;
    }
    return e;
}

/* Under mu: a lane's depth and head for a scrape (metrics_now.h). */
void
probes_publish_lane(struct probes *p, int lane)
{
    const struct entry *h = p->q[lane].head;

    metrics_now_queue((enum metrics_queue)(METRICS_Q_PROBE_FIRST + lane), p->q[lane].n,
                      h != NULL ? h->queued_us : 0);
}

/* Under mu. */
static void
lane_unlink(struct probes *p, struct entry *e)
{
    if (e->qprev != NULL)
        e->qprev->qnext = e->qnext;
    else
        p->q[e->lane].head = e->qnext;
    if (e->qnext != NULL)
        e->qnext->qprev = e->qprev;
    else
        p->q[e->lane].tail = e->qprev;
    e->qprev = e->qnext = NULL;
    p->q[e->lane].n--;
    probes_publish_lane(p, e->lane);
}

/* Under mu. */
static void
lane_append(struct probes *p, struct entry *e, enum probes_lane lane)
{
    e->lane = (int)lane;
    e->qnext = NULL;
    e->qprev = p->q[lane].tail;
    if (e->qprev != NULL)
        e->qprev->qnext = e;
    else
        p->q[lane].head = e;
    p->q[lane].tail = e;
    p->q[lane].n++;
    probes_publish_lane(p, (int)lane);
}

/* Under mu: the next job, first-contact probes before refreshes. */
static struct entry *
lane_pop(struct probes *p)
{
    for (int l = 0; l < LANES; l++) {
        struct entry *e = p->q[l].head;
        if (e != NULL) {
            lane_unlink(p, e);
            return e;
        }
    }
    return NULL;
}

static bool
queue_empty(const struct probes *p)
{
    for (int l = 0; l < LANES; l++)
        if (p->q[l].head != NULL)
            return false;
    return true;
}

/* Under mu: a refused charge, logged once a log interval per caller. */
static void
refused(struct probes *p, enum lookupq_cap_result r, const char *sender, uint64_t conn,
        bool log_it)
{
    if (!log_it || r == LOOKUPQ_CAP_NOMEM)
        return;
    if (r == LOOKUPQ_CAP_SENDER)
        log_msg(LOG_WARNING, "sender %s has %lld MX probes in flight (probes_per_sender): "
                "further new MX hosts of its recipients are not probed, their path unknown, "
                "until some end (logged at most once a minute per sender)", sender,
                (long long)p->cfg->probes_per_sender);
    else
        log_msg(LOG_WARNING, "connection %llu has %lld MX probes in flight "
                "(probes_per_connection): further new MX hosts of its recipients are not "
                "probed, their path unknown, until some end (logged at most once a minute "
                "per connection)", (unsigned long long)conn,
                (long long)p->cfg->probes_per_connection);
}

bool
probes_enqueue(struct probes *p, struct entry *e, enum probes_lane lane, const char *sender,
               uint64_t conn)
{
    pthread_mutex_lock(&p->mu);
    if (atomic_load(&e->state) == E_IDLE) { /* one job per host */
        if (p->cap != NULL && ((sender != NULL && sender[0] != '\0') || conn != 0)) {
            bool log_it = false;
            enum lookupq_cap_result r =
                lookupq_cap_take(p->cap, sender, conn, p->seam.now(), &log_it);
            if (r != LOOKUPQ_CAP_OK ||
                (sender != NULL && (e->ch_sender = strdup(sender)) == NULL)) {
                if (r == LOOKUPQ_CAP_OK)
                    lookupq_cap_give(p->cap, sender, conn, p->seam.now());
                refused(p, r, sender, conn, log_it);
                pthread_mutex_unlock(&p->mu);
                return false;
            }
            e->ch_conn = conn;
            e->charged = true;
        }
        atomic_store(&e->state, E_QUEUED);
        e->queued_us = metrics_clock_us();
        lane_append(p, e, lane);
        pthread_cond_signal(&p->work_cv);
    } else if (atomic_load(&e->state) == E_QUEUED && e->lane > (int)lane) {
        /* A refresh an RCPT now waits for goes before the other refreshes. */
        lane_unlink(p, e);
        lane_append(p, e, lane);
    }
    pthread_mutex_unlock(&p->mu);
    return true;
}

/* Under mu: the job's charge goes back (its probes ended). */
static void
uncharge(struct probes *p, struct entry *e)
{
    if (!e->charged)
        return;
    lookupq_cap_give(p->cap, e->ch_sender, e->ch_conn, p->seam.now());
    free(e->ch_sender);
    e->ch_sender = NULL;
    e->ch_conn = 0;
    e->charged = false;
}

bool
probes_never(const struct config_list *never, const char *host)
{
    size_t hl = strlen(host);

    for (size_t i = 0; i < never->n; i++) {
        const char *pat = never->v[i];
        if (pat[0] == '*' && pat[1] == '.') {
            size_t pl = strlen(pat + 1);
            if (hl > pl && strcasecmp(host + hl - pl, pat + 1) == 0)
                return true;
        } else if (strcasecmp(pat, host) == 0) {
            return true;
        }
    }
    return false;
}

void
probes_load_on_miss(struct probes *p)
{
    p->load_on_miss = true;
}


/* The live rows of host from the shared cache into its entry (load_on_miss). */
void
probes_load_now(struct probes *p, const char *host, int64_t now)
{
    struct probecache_row rows[PROBECACHE_ADDR_MAX];
    struct probecache_host sum;
    struct probes_host res;
    struct mts_err err;
    size_t n = 0;
    unsigned h = probes_hash(host);
    struct shard *s = probes_shard_of(p, h);
    struct entry *e;
    bool live;

    pthread_rwlock_rdlock(&s->lk);
    e = probes_find(s, h, host);
    live = e != NULL && e->have && e->res.expires_at > now;
    pthread_rwlock_unlock(&s->lk);
    if (live || p->cache == NULL ||
        probecache_get(p->cache, host, (int)p->cfg->probe_port, rows, PROBECACHE_ADDR_MAX, &n,
                       NULL, &err) != CACHE_OK ||
        (n = probeconf_allowed_rows(&p->pc, rows, n)) == 0)
        return;
    probecache_summarise(rows, n, &sum);
    if (sum.expires_at <= now)
        return;
    probes_fill_host(&sum, &res);
    pthread_rwlock_wrlock(&s->lk);
    if ((e = entry_for(p, s, h, host)) != NULL && (!e->have || e->res.probed_at < res.probed_at)) {
        e->res = res;
        e->have = true;
    }
    pthread_rwlock_unlock(&s->lk);
}

/* probes_get(_as) and probes_wait's reads; queue: a host without a live
 * result is queued (charged to sender, conn). -1: a cap refused it. */
static int
get_host(struct probes *p, const char *host, const char *sender, uint64_t conn, bool queue,
         struct probes_host *out)
{
    int rc = 0;
    int64_t now = p->seam.now();
    unsigned h;
    struct shard *s;
    struct entry *e;

    memset(out, 0, sizeof(*out));
    out->state = PROBES_NOT_YET;
    out->grade = TLSPROBE_GRADE_UNKNOWN;
    if (probes_never(&p->cfg->probe_never, host)) {
        out->state = PROBES_NEVER;
        snprintf(out->reason, sizeof(out->reason), "%s is on probe_never", host);
        return 0;
    }
    if (strlen(host) > TLSPROBE_HOST_MAX || host[0] == '\0') {
        snprintf(out->reason, sizeof(out->reason), "not a host name");
        return 0;
    }
    h = probes_hash(host);
    s = probes_shard_of(p, h);
    /* The warm path: the shard's read lock only. */
    pthread_rwlock_rdlock(&s->lk);
    e = probes_find(s, h, host);
    if (e != NULL && e->have && e->res.expires_at > now) {
        *out = e->res;
        atomic_store(&e->last_used, now);
    }
    pthread_rwlock_unlock(&s->lk);
    if (out->state == PROBES_KNOWN)
        return 0;
    if (p->load_on_miss)
        probes_load_now(p, host, now);
    pthread_rwlock_wrlock(&s->lk);
    if ((e = entry_for(p, s, h, host)) != NULL) {
        atomic_store(&e->last_used, now);
        if (e->have && e->res.expires_at > now)
            *out = e->res;
        else if (queue && !probes_enqueue(p, e, LANE_FIRST, sender, conn))
            rc = -1;
    }
    pthread_rwlock_unlock(&s->lk);
    if (out->state == PROBES_NOT_YET)
        snprintf(out->reason, sizeof(out->reason), "%s has not been probed yet", host);
    return rc;
}

void
probes_get(struct probes *p, const char *host, struct probes_host *out)
{
    (void)get_host(p, host, NULL, 0, true, out);
}

int
probes_get_as(struct probes *p, const char *host, const char *sender, uint64_t conn,
              struct probes_host *out)
{
    return get_host(p, host, sender, conn, true, out);
}

bool
probes_dane_expected(struct probes *p, const char *host, const struct timespec *deadline)
{
    struct timespec dl = clock_deadline_after((int)p->cfg->dns_timeout_ms);
    struct tlsa_set *t;
    bool expected;

    if (p->seam.tlsa == NULL || clock_ms_until(deadline) <= 0)
        return false;
    /* On the heap: a TLSA set is some kilobytes and libmilter's stacks small. */
    if ((t = calloc(1, sizeof(*t))) == NULL)
        return false;
    if (clock_ms_until(deadline) < clock_ms_until(&dl))
        dl = *deadline;
    probes_fleet_tlsa(p, host, &dl, t);
    expected = (t->state == TLSA_SECURE && t->n_usable > 0) || t->state == TLSA_FAILED;
    free(t);
    return expected;
}

bool
probes_wait(struct probes *p, const char *const *hosts, size_t n,
            const struct timespec *deadline, struct probes_host *out)
{
    uint64_t gen;
    bool stop;

    for (;;) {
        bool pending = false;

        /* The generation first: a job that ends after it is seen below. */
        pthread_mutex_lock(&p->mu);
        gen = p->done_gen;
        pthread_mutex_unlock(&p->mu);
        for (size_t i = 0; i < n; i++) {
            if (out[i].state != PROBES_NOT_YET || hosts[i] == NULL)
                continue;
            /* Read only: a host a cap refused stays unqueued. */
            (void)get_host(p, hosts[i], NULL, 0, false, &out[i]);
            if (out[i].state != PROBES_NOT_YET)
                return true;
            pending = true;
        }
        if (!pending || clock_ms_until(deadline) <= 0)
            return false;
        pthread_mutex_lock(&p->mu);
        while (p->done_gen == gen && !p->stop &&
               pthread_cond_timedwait(&p->done_cv, &p->mu, deadline) != ETIMEDOUT)
            ;
        stop = p->stop;
        pthread_mutex_unlock(&p->mu);
        if (stop)
            return false;
    }
}

static void *
worker(void *arg)
{
    struct probes *p = arg;

    pthread_mutex_lock(&p->mu);
    for (;;) {
        struct entry *e;
        struct job *j;

        while (!p->stop && queue_empty(p))
            pthread_cond_wait(&p->work_cv, &p->mu);
        if (p->stop)
            break;
        e = lane_pop(p);
        j = e->job;	/* a parked job resumes where it stopped */
        if (j == NULL) {
            atomic_store(&e->state, E_RUNNING);
            p->busy++;
            p->stats.jobs++;
        }
        pthread_mutex_unlock(&p->mu);

        if (j == NULL && (j = calloc(1, sizeof(*j))) != NULL) {
            e->job = j;
            probes_job_start(p, e->host, j);
        }
        if (j != NULL && !j->done && !probes_job_run(p, e, j)) {
            pthread_mutex_lock(&p->mu);	/* parked: e and j wait for a slot */
            continue;
        }
        if (j != NULL)
            probes_fleet_learnt(p, e, j);
        /* A running or parked entry is never evicted, so e is still ours. */
        if (j != NULL && j->res.state == PROBES_KNOWN) {
            struct shard *sh = probes_shard_of(p, probes_hash(e->host));

            pthread_rwlock_wrlock(&sh->lk);
            e->res = j->res;
            e->have = true;
            pthread_rwlock_unlock(&sh->lk);
        }
        probes_job_free(j);
        e->job = NULL;
        pthread_mutex_lock(&p->mu);
        atomic_store(&e->state, E_IDLE);
        uncharge(p, e);
        p->busy--;
        p->done_gen++;
        pthread_cond_broadcast(&p->done_cv);
        if (p->busy == 0 && queue_empty(p))
            pthread_cond_broadcast(&p->idle_cv);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

void
probes_drain(struct probes *p)
{
    pthread_mutex_lock(&p->mu);
    while (p->busy > 0 || !queue_empty(p))
        pthread_cond_wait(&p->idle_cv, &p->mu);
    pthread_mutex_unlock(&p->mu);
    /* And written: the rows go to the file from the write queue's thread; a
     * caller that reads or writes the file next (a tool, another process)
     * must not have them land after its own writes. */
    if (p->wq != NULL)
        (void)cachewq_flush(p->wq, (struct timespec[]){clock_deadline_after(
                                       (int)p->cfg->cache_busy_timeout_ms + 1000)});
}

void
probes_get_stats(struct probes *p, struct probes_stats *out)
{
    pthread_mutex_lock(&p->mu);
    *out = p->stats;
    pthread_mutex_unlock(&p->mu);
}

/* ------------------------------------------------------------ open, close */

/* probeslots' wake: another engine freed a slot of network key. */
static void
slot_freed(void *arg, const char *key)
{
    struct probes *p = arg;

    pthread_mutex_lock(&p->mu);
    probes_unpark(p, key);
    pthread_mutex_unlock(&p->mu);
}

int
probes_open(const struct config *cfg, const struct probes_seam *seam, int flags,
            struct probes **out, struct mts_err *err)
{
    struct probes *p = calloc(1, sizeof(*p));

    *out = NULL;
    if (p == NULL) {
        mts_err_set(err, "out of memory");
        return -1;
    }
    p->refs = 1;
    p->cfg = config_ref((struct config *)cfg);
    if (probeconf_init(&p->pc, p->cfg, err) != 0) {
        config_unref((struct config *)p->cfg);
        free(p);
        return -1;
    }
    p->max_per_shard = (size_t)cfg->memory_cache_domains / N_SHARDS + 1;
    for (size_t k = 0; k < N_SHARDS; k++)
        pthread_rwlock_init(&p->shards[k].lk, NULL);
    p->n_workers = (int)cfg->probe_concurrency;
    pthread_mutex_init(&p->mu, NULL);
    clock_cond_init(&p->work_cv);
    clock_cond_init(&p->idle_cv);
    clock_cond_init(&p->refresher_cv);
    clock_cond_init(&p->done_cv);
    if (seam != NULL) {
        p->seam = *seam;
    } else {
        struct dns_options dopts;
        dns_options_from(cfg, &dopts);
        if (dns_open(&dopts, &p->dns, err) != 0)
            goto fail;
        p->seam.resolve = probes_real_resolve;
        p->seam.probe = probes_real_probe;
        p->seam.tlsa = probes_real_tlsa;
        p->seam.arg = p;
    }
    if (p->seam.now == NULL)
        p->seam.now = probes_real_now;
    if (!(flags & PROBES_NO_CACHE) &&
        cache_open(cfg->cache_db, (int)cfg->cache_busy_timeout_ms, &p->cache, err) != CACHE_OK)
        goto fail;
    if (p->cache != NULL &&
        (p->wq = cachewq_open(p->cache, (size_t)cfg->cache_write_queue_max, "probes", err)) ==
            NULL)
        goto fail;
    if (p->cache != NULL) {
        (void)cache_data_version(p->cache, &p->data_version, err);
        probes_preload(p);
    }
    if (probes_fleet_open(p, !(flags & PROBES_NO_REFRESHER), err) != 0)
        goto fail;
    p->synced_at = p->seam.now();
    if ((cfg->probes_per_sender > 0 || cfg->probes_per_connection > 0) &&
        (p->cap = lookupq_cap_new((unsigned)cfg->probes_per_sender,
                                  (unsigned)cfg->probes_per_connection, 60)) == NULL) {
        mts_err_set(err, "out of memory");
        goto fail;
    }
    p->workers = calloc((size_t)p->n_workers, sizeof(*p->workers));
    if (p->workers == NULL) {
        mts_err_set(err, "out of memory");
        goto fail;
    }
    /* The newest configuration's bounds hold for the whole process, also
     * over the probes an engine a reload replaced still runs (probeslots.h). */
    probeslots_configure((int)cfg->probe_concurrency, (int)cfg->probe_network_concurrency);
    p->slots_watch.wake = slot_freed;
    p->slots_watch.arg = p;
    probeslots_watch(&p->slots_watch);
    p->watching = true;
    for (int i = 0; i < p->n_workers; i++)
        if (pthread_create(&p->workers[i], NULL, worker, p) != 0) {
            mts_err_set(err, "cannot start probe threads");
            p->n_workers = i;
            goto fail;
        }
    if (!(flags & PROBES_NO_REFRESHER)) {
        if (pthread_create(&p->refresher, NULL, probes_refresher, p) != 0) {
            mts_err_set(err, "cannot start the probe refresher");
            goto fail;
        }
        p->have_refresher = true;
    }
    *out = p;
    return 0;
fail:
    probes_close(p);
    return -1;
}

struct probes *
probes_share(struct probes *p)
{
    __atomic_add_fetch(&p->refs, 1, __ATOMIC_SEQ_CST);
    return p;
}

void
probes_close(struct probes *p)
{
    if (p == NULL || __atomic_sub_fetch(&p->refs, 1, __ATOMIC_SEQ_CST) > 0)
        return;
    pthread_mutex_lock(&p->mu);
    p->stop = true;
    pthread_cond_broadcast(&p->work_cv);
    pthread_cond_broadcast(&p->done_cv);
    pthread_cond_broadcast(&p->refresher_cv);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; p->workers != NULL && i < p->n_workers; i++)
        pthread_join(p->workers[i], NULL);
    if (p->have_refresher)
        pthread_join(p->refresher, NULL);
    /* Waits for a wake under way from another engine (it holds mu). */
    if (p->watching)
        probeslots_unwatch(&p->slots_watch);
    /* Before the table goes: the news read it. What the workers queued
     * for Redis is sent by the fleet's writer, which may outlive us. */
    probes_fleet_close(p);
    for (size_t k = 0; k < N_SHARDS; k++) {
        for (size_t b = 0; b < SHARD_BUCKETS; b++)
            while (p->shards[k].buckets[b] != NULL) {
                struct entry *e = p->shards[k].buckets[b];
                p->shards[k].buckets[b] = e->next;
                free(e->ch_sender);
                probes_job_free(e->job);	/* parked when the workers stopped */
                free(e);
            }
        pthread_rwlock_destroy(&p->shards[k].lk);
    }
    /* The workers are gone: their last rows reach the file, within a bound. */
    cachewq_close(p->wq, p->cfg->cache_busy_timeout_ms);
    cache_close(p->cache);
    if (p->dns != NULL)
        dns_close(p->dns);
    if (p->cap != NULL)
        lookupq_cap_free(p->cap);
    free(p->workers);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->work_cv);
    pthread_cond_destroy(&p->idle_cv);
    pthread_cond_destroy(&p->refresher_cv);
    pthread_cond_destroy(&p->done_cv);
    config_unref((struct config *)p->cfg);
    free(p);
}
