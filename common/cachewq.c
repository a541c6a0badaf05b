/*
 * cachewq - the shared cache's write-behind queue; see cachewq.h.
 *
 * DESCRIPTION
 *	Entries are in a FIFO list (oldest at the head) and in a chained hash
 *	table by key, so that a put finds the queued write of its key in
 *	O(1). The writer unlinks the head from both before it writes, so a
 *	put during the write queues a new entry, and a busy write that comes
 *	back finds it and yields to it.
 */
#include "cachewq.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "log.h"
#include "metrics.h"
#include "mxmatch.h"

#define KEY_MAX 384		/* "r " + domain, "p " + host address port: < 320 */
#define BUSY_PAUSE_MS 100	/* between two busy writes, should SQLite not wait */

enum wq_kind { WQ_ROW, WQ_MX, WQ_PROBE };

union wq_payload {
    struct cache_entry row;
    struct cache_mxset mx;
    struct probecache_row *probe;	/* large: its own allocation */
};

struct wq_item {
    struct wq_item *prev, *next;	/* the FIFO */
    struct wq_item *hnext;		/* the bucket's chain */
    size_t bucket;
    enum wq_kind kind;			/* the key's first letter says it too */
    union wq_payload u;
    char key[KEY_MAX];
};

struct cachewq {
    struct cache *cache;
    char label[32];
    size_t max;
    pthread_mutex_t mu;
    pthread_cond_t cv;			/* the writer: work, or stop */
    pthread_cond_t idle_cv;		/* cachewq_flush: empty and no write running */
    struct wq_item *head, *tail;
    struct wq_item **buckets;
    size_t nbuckets;			/* a power of two */
    size_t n;
    bool writing;			/* the writer holds an unlinked entry */
    bool stopping;
    struct timespec stop_by;		/* with stopping: the drain's end */
    pthread_t writer;
    struct cachewq_stats st;

    /* The log's rate limit: drops since the last line, the last lines. */
    uint64_t unreported_drops;
    char first_drop[KEY_MAX];
    struct timespec last_drop_log, last_busy_log;
};

/* ------------------------------------------------------------ entries */

static void
item_free(struct wq_item *it)
{
    if (it == NULL)
        return;
    switch (it->kind) {
    case WQ_ROW:
        cache_entry_free(&it->u.row);
        break;
    case WQ_MX:
        cache_mxset_free(&it->u.mx);
        break;
    case WQ_PROBE:
        free(it->u.probe);
        break;
    }
    free(it);
}

/* A key a person can read in the log: "policy row of x.test", ... */
static const char *
kind_name(enum wq_kind k)
{
    return k == WQ_ROW ? "policy row of" : k == WQ_MX ? "MX set of" : "probe row of";
}

static size_t
key_hash(const char *key)
{
    uint64_t h = UINT64_C(14695981039346656037);	/* FNV-1a */

    for (const unsigned char *p = (const unsigned char *)key; *p != '\0'; p++)
        h = (h ^ *p) * UINT64_C(1099511628211);
    return (size_t)h;
}

/* Called with q->mu held, as are every list and table operation below. */
static struct wq_item *
table_find(struct cachewq *q, const char *key, size_t b)
{
    for (struct wq_item *it = q->buckets[b]; it != NULL; it = it->hnext)
        if (strcmp(it->key, key) == 0)
            return it;
    return NULL;
}

static void
unlink_item(struct cachewq *q, struct wq_item *it)
{
    struct wq_item **pp = &q->buckets[it->bucket];

    while (*pp != it)
        pp = &(*pp)->hnext;
    *pp = it->hnext;
    if (it->prev != NULL)
        it->prev->next = it->next;
    else
        q->head = it->next;
    if (it->next != NULL)
        it->next->prev = it->prev;
    else
        q->tail = it->prev;
    it->prev = it->next = it->hnext = NULL;
    q->n--;
}

/* Links it at the tail (at_head: at the head, a busy write back in line). */
static void
link_item(struct cachewq *q, struct wq_item *it, bool at_head)
{
    it->hnext = q->buckets[it->bucket];
    q->buckets[it->bucket] = it;
    if (at_head) {
        it->prev = NULL;
        it->next = q->head;
        if (q->head != NULL)
            q->head->prev = it;
        else
            q->tail = it;
        q->head = it;
    } else {
        it->next = NULL;
        it->prev = q->tail;
        if (q->tail != NULL)
            q->tail->next = it;
        else
            q->head = it;
        q->tail = it;
    }
    q->n++;
}

static bool
interval_passed(const struct timespec *last, const struct timespec *now)
{
    return last->tv_sec == 0 || now->tv_sec - last->tv_sec >= CACHEWQ_LOG_INTERVAL_S;
}

/* The line about writes not stored, when some are and the interval allows. */
static void
report_drops(struct cachewq *q)
{
    struct timespec now;

    (void)clock_gettime(CLOCK_MONOTONIC, &now);
    if (q->unreported_drops == 0 || !interval_passed(&q->last_drop_log, &now))
        return;
    log_msg(LOG_WARNING, "cache write queue (%s): %llu write(s) not stored in the shared "
            "cache, the first: %s; known in this process's memory only", q->label,
            (unsigned long long)q->unreported_drops, q->first_drop);
    q->unreported_drops = 0;
    q->last_drop_log = now;
}

/* Counts one write not stored; the log says so at most once an interval
 * (the writer reports the rest when the interval ends). */
static void
note_drop(struct cachewq *q, const struct wq_item *it, const char *why)
{
    q->st.dropped++;
    metrics_cache_write_error();
    if (q->unreported_drops++ == 0)
        mts_text_set(q->first_drop, sizeof(q->first_drop), "%s %s (%s)", kind_name(it->kind),
                     it->key + 2, why);
    report_drops(q);
    pthread_cond_signal(&q->cv);
}

/* Queues it (owned from now on), coalescing with a queued write of its key. */
static void
enqueue(struct cachewq *q, struct wq_item *it)
{
    struct wq_item *old;

    it->bucket = key_hash(it->key) & (q->nbuckets - 1);
    pthread_mutex_lock(&q->mu);
    q->st.queued++;
    if ((old = table_find(q, it->key, it->bucket)) != NULL) {
        /* The newer knowledge takes the older one's place in line: the
         * payloads change places and the older one goes with it. */
        union wq_payload t = old->u;

        old->u = it->u;
        it->u = t;
        q->st.coalesced++;
        item_free(it);
    } else {
        if (q->n >= q->max) {
            struct wq_item *oldest = q->head;

            unlink_item(q, oldest);
            note_drop(q, oldest, "the queue was full");
            item_free(oldest);
        }
        link_item(q, it, false);
    }
    pthread_cond_signal(&q->cv);
    pthread_mutex_unlock(&q->mu);
}

static struct wq_item *
item_new(enum wq_kind kind, const char *what)
{
    struct wq_item *it = calloc(1, sizeof(*it));

    if (it == NULL) {
        log_msg(LOG_WARNING, "cache write queue: out of memory, %s %s not stored in the shared "
                "cache", kind_name(kind), what);
        return NULL;
    }
    it->kind = kind;
    return it;
}

static void
no_memory(struct cachewq *q, struct wq_item *it)
{
    pthread_mutex_lock(&q->mu);
    note_drop(q, it, "out of memory");
    pthread_mutex_unlock(&q->mu);
    item_free(it);
}

void
cachewq_put_row(struct cachewq *q, const struct cache_entry *e)
{
    struct wq_item *it = item_new(WQ_ROW, e->domain);

    if (it == NULL)
        return;
    snprintf(it->key, sizeof(it->key), "r %s", e->domain);
    it->u.row = *e;
    it->u.row.mx = NULL;
    it->u.row.n_mx = 0;
    it->u.row.policy_text = NULL;
    if ((e->mx != NULL && (it->u.row.mx = mxmatch_list_dup(e->mx, e->n_mx)) == NULL) ||
        (e->policy_text != NULL && (it->u.row.policy_text = strdup(e->policy_text)) == NULL)) {
        no_memory(q, it);
        return;
    }
    it->u.row.n_mx = it->u.row.mx != NULL ? e->n_mx : 0;
    enqueue(q, it);
}

void
cachewq_put_mx(struct cachewq *q, const struct cache_mxset *m)
{
    struct wq_item *it = item_new(WQ_MX, m->domain);

    if (it == NULL)
        return;
    snprintf(it->key, sizeof(it->key), "m %s", m->domain);
    it->u.mx = *m;
    it->u.mx.n = 0;
    it->u.mx.hosts = calloc(m->n > 0 ? m->n : 1, sizeof(char *));
    if (it->u.mx.hosts == NULL) {
        no_memory(q, it);
        return;
    }
    for (size_t i = 0; i < m->n; i++) {
        if ((it->u.mx.hosts[i] = strdup(m->hosts[i])) == NULL) {
            no_memory(q, it);
            return;
        }
        it->u.mx.n++;
    }
    enqueue(q, it);
}

void
cachewq_put_probe(struct cachewq *q, const struct probecache_row *r)
{
    struct wq_item *it = item_new(WQ_PROBE, r->host);

    if (it == NULL)
        return;
    snprintf(it->key, sizeof(it->key), "p %s[%s]:%d", r->host, r->address, r->port);
    if ((it->u.probe = malloc(sizeof(*r))) == NULL) {
        no_memory(q, it);
        return;
    }
    *it->u.probe = *r;
    enqueue(q, it);
}

/* ------------------------------------------------------------ the writer */

static enum cache_status
write_item(struct cachewq *q, const struct wq_item *it, struct mts_err *err)
{
    switch (it->kind) {
    case WQ_ROW:
        return cache_put(q->cache, &it->u.row, err);
    case WQ_MX:
        return cache_put_mx(q->cache, &it->u.mx, err);
    case WQ_PROBE:
        return probecache_put(q->cache, it->u.probe, err);
    }
    return CACHE_ERROR;
}

/* Logs, at most once an interval, that writes wait for another process's lock. */
static void
note_busy(struct cachewq *q, const struct wq_item *it, const char *why)
{
    struct timespec now;

    q->st.retried++;
    (void)clock_gettime(CLOCK_MONOTONIC, &now);
    if (interval_passed(&q->last_busy_log, &now)) {
        log_msg(LOG_NOTICE, "cache write queue (%s): %zu write(s) wait for the shared cache "
                "(%s %s: %s); the workers go on", q->label, q->n + 1, kind_name(it->kind),
                it->key + 2, why);
        q->last_busy_log = now;
    }
}

static bool
past(const struct timespec *t)
{
    return clock_ms_until(t) <= 0;
}

static void *
writer_main(void *arg)
{
    struct cachewq *q = arg;

    pthread_mutex_lock(&q->mu);
    for (;;) {
        struct wq_item *it;
        struct mts_err err;
        enum cache_status st;

        while (q->head == NULL && !q->stopping) {
            if (q->unreported_drops > 0) {
                /* Drops after the last line: said when its interval ends. */
                struct timespec t = q->last_drop_log;

                t.tv_sec += CACHEWQ_LOG_INTERVAL_S;
                (void)pthread_cond_timedwait(&q->cv, &q->mu, &t);
                report_drops(q);
            } else {
                pthread_cond_wait(&q->cv, &q->mu);
            }
        }
        if (q->head == NULL || (q->stopping && past(&q->stop_by)))
            break;
        it = q->head;
        unlink_item(q, it);
        q->writing = true;
        pthread_mutex_unlock(&q->mu);

        mts_err_clear(&err);
        st = write_item(q, it, &err);

        pthread_mutex_lock(&q->mu);
        q->writing = false;
        if (st == CACHE_OK || st == CACHE_STALE) {
            /* STALE: another process's later row stays (cachewq.h). */
            q->st.written++;
            item_free(it);
        } else if (st == CACHE_BUSY) {
            if (table_find(q, it->key, it->bucket) != NULL) {
                /* A newer write of the key is queued: it supersedes this one. */
                q->st.coalesced++;
                item_free(it);
            } else {
                note_busy(q, it, err.msg);
                link_item(q, it, true);
                /* SQLite waited busy_timeout_ms already; should it not have,
                 * a short pause keeps this from spinning. */
                struct timespec t = clock_deadline_after(BUSY_PAUSE_MS);

                if (!q->stopping)
                    (void)pthread_cond_timedwait(&q->cv, &q->mu, &t);
            }
        } else {
            q->st.failed++;
            metrics_cache_write_error();
            log_msg(LOG_ERR, "cannot write the cache: %s %s not stored: %s", kind_name(it->kind),
                    it->key + 2, err.msg);
            item_free(it);
        }
        report_drops(q);
        if (q->head == NULL)
            pthread_cond_broadcast(&q->idle_cv);
    }
    pthread_mutex_unlock(&q->mu);
    return NULL;
}

/* ------------------------------------------------------------ setup */

struct cachewq *
cachewq_open(struct cache *c, size_t max, const char *label, struct mts_err *err)
{
    struct cachewq *q = calloc(1, sizeof(*q));

    if (q == NULL || max == 0) {
        free(q);
        mts_err_set(err, max == 0 ? "cache write queue: a size of 0" : "out of memory");
        return NULL;
    }
    q->cache = c;
    q->max = max;
    mts_text_copy(q->label, sizeof(q->label), label ? label : "");
    /* About two buckets an entry: short chains at a full queue. */
    for (q->nbuckets = 16; q->nbuckets < 2 * max && q->nbuckets < ((size_t)1 << 24);)
        q->nbuckets <<= 1;
    if ((q->buckets = calloc(q->nbuckets, sizeof(*q->buckets))) == NULL) {
        free(q);
        mts_err_set(err, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&q->mu, NULL);
    clock_cond_init(&q->cv);
    clock_cond_init(&q->idle_cv);
    if (pthread_create(&q->writer, NULL, writer_main, q) != 0) {
        pthread_cond_destroy(&q->cv);
        pthread_cond_destroy(&q->idle_cv);
        pthread_mutex_destroy(&q->mu);
        free(q->buckets);
        free(q);
        mts_err_set(err, "cannot start the cache writer thread");
        return NULL;
    }
    return q;
}

void
cachewq_close(struct cachewq *q, int64_t drain_ms)
{
    uint64_t left = 0;
    char first[KEY_MAX + 32] = "";

    if (q == NULL)
        return;
    pthread_mutex_lock(&q->mu);
    q->stopping = true;
    q->stop_by = clock_deadline_after(drain_ms < 0 ? 0 : drain_ms > 3600000 ? 3600000 : (int)drain_ms);
    pthread_cond_broadcast(&q->cv);
    pthread_mutex_unlock(&q->mu);
    pthread_join(q->writer, NULL);

    /* The writer is gone: what is left was not stored. */
    while (q->head != NULL) {
        struct wq_item *it = q->head;

        if (left++ == 0)
            mts_text_set(first, sizeof(first), "%s %s", kind_name(it->kind), it->key + 2);
        unlink_item(q, it);
        item_free(it);
    }
    if (left > 0)
        log_msg(LOG_WARNING, "cache write queue (%s): at shutdown %llu write(s) not stored in "
                "the shared cache within %lld ms, the first: %s", q->label,
                (unsigned long long)left, (long long)drain_ms, first);
    if (q->unreported_drops > 0)
        log_msg(LOG_WARNING, "cache write queue (%s): %llu write(s) not stored in the shared "
                "cache, the first: %s", q->label, (unsigned long long)q->unreported_drops,
                q->first_drop);
    pthread_cond_destroy(&q->cv);
    pthread_cond_destroy(&q->idle_cv);
    pthread_mutex_destroy(&q->mu);
    free(q->buckets);
    free(q);
}

bool
cachewq_flush(struct cachewq *q, const struct timespec *deadline)
{
    bool empty;

    pthread_mutex_lock(&q->mu);
    while (q->head != NULL || q->writing) {
        if (deadline == NULL)
            pthread_cond_wait(&q->idle_cv, &q->mu);
        else if (pthread_cond_timedwait(&q->idle_cv, &q->mu, deadline) == ETIMEDOUT)
            break;
    }
    empty = q->head == NULL && !q->writing;
    pthread_mutex_unlock(&q->mu);
    return empty;
}

void
cachewq_stats(struct cachewq *q, struct cachewq_stats *out)
{
    pthread_mutex_lock(&q->mu);
    *out = q->st;
    out->waiting = q->n;
    pthread_mutex_unlock(&q->mu);
}
