/*
 * statsd - verdict statistics: count, and write from a thread of their
 * own; see statsd.h.
 */
#include "statsd.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>

#include "cache.h"
#include "cache_stats.h"
#include "clock.h"
#include "decide.h"
#include "log.h"
#include "stats.h"

static struct {
    _Atomic(struct stats *) map;	/* NULL: off */
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stop, soon;
    char *path;
    int busy_ms;
    int64_t interval, retention, max_rows;
    struct cache *cache;	/* the writer's own connection, opened at start (else at a turn) */
    time_t write_logged, prune_logged;	/* a line each at most every STATSD_LOG_INTERVAL_S */
    bool pruned;		/* once at least: later, only after a write */
} sd = {.mu = PTHREAD_MUTEX_INITIALIZER};

void
statsd_rcpt(const struct decision *d)
{
    struct stats *s = atomic_load_explicit(&sd.map, memory_order_acquire);
    struct stats_key k;

    if (s == NULL || d->scope != DECIDE_IN_SCOPE)
        return;
    stats_key_of(d, time(NULL), &k);
    stats_add(s, &k, 1);
}

/* At most one line every STATSD_LOG_INTERVAL_S (since *last), unless final. */
static bool
may_say(time_t *last, bool final)
{
    time_t now = time(NULL);

    if (!final && now - *last < STATSD_LOG_INTERVAL_S)
        return false;
    *last = now;
    return true;
}

/* One turn: take the rows out, add them to the table, put them back if refused. */
static void
flush(struct stats *s, bool final)
{
    struct stats_row *rows;
    struct mts_err err = {0};
    enum cache_status st = CACHE_OK;
    char oldest[11];
    size_t n;
    uint64_t deleted = 0;

    if (stats_take(s, &rows, &n) != 0) {
        log_msg(LOG_ERR, "verdict statistics: out of memory");
        return;
    }
    if (sd.cache == NULL)
        st = cache_open(sd.path, sd.busy_ms, &sd.cache, &err);
    if (st == CACHE_OK && n > 0)
        st = cache_stats_add(sd.cache, rows, n, &err);
    if (st != CACHE_OK) {
        /* Kept for the next turn: a locked file delays, it does not lose. */
        for (size_t i = 0; i < n; i++)
            stats_add(s, &rows[i].k, rows[i].count);
        if (may_say(&sd.write_logged, final))
            log_msg(final ? LOG_ERR : LOG_WARNING, "verdict statistics: %zu counts %s: %s", n,
                    final ? "not written at stop" : "not written yet, kept", err.msg);
        free(rows);
        return;
    }
    free(rows);
    /* Only a write can add rows: an idle milter leaves the file alone. */
    if (n == 0 && sd.pruned)
        return;
    stats_day(time(NULL) - (time_t)sd.retention, oldest);
    if (cache_stats_prune(sd.cache, oldest, (uint64_t)sd.max_rows, &deleted, &err) != CACHE_OK) {
        if (may_say(&sd.prune_logged, final))
            log_msg(LOG_WARNING, "verdict statistics: old rows not deleted: %s", err.msg);
        return;
    }
    sd.pruned = true;
    if (deleted > 0)
        log_msg(LOG_INFO, "verdict statistics: %llu old rows deleted", (unsigned long long)deleted);
}

static void *
writer(void *arg)
{
    struct stats *s = arg;
    struct timespec next;
    bool stop;

    for (;;) {
        next = clock_deadline_after((int)(sd.interval * 1000));
        pthread_mutex_lock(&sd.mu);
        while (!sd.stop && !sd.soon && pthread_cond_timedwait(&sd.cv, &sd.mu, &next) == 0)
            ;
        stop = sd.stop;
        sd.soon = false;
        pthread_mutex_unlock(&sd.mu);
        flush(s, stop);
        if (stop)
            break;
    }
    return NULL;
}

int
statsd_start(const struct config *cfg, struct mts_err *err)
{
    struct stats *s;

    if (!cfg->stats)
        return 0;
    if ((s = stats_new(STATSD_MAX_KEYS)) == NULL || (sd.path = strdup(cfg->cache_db)) == NULL) {
        stats_free(s);
        mts_err_set(err, "verdict statistics: out of memory");
        return -1;
    }
    sd.busy_ms = (int)cfg->cache_busy_timeout_ms;
    sd.interval = cfg->stats_flush_interval;
    sd.retention = cfg->stats_retention;
    sd.max_rows = cfg->stats_max_rows;
    /* Opened now, so that the process's descriptors are all there from the
     * start (a failure is retried at each turn, and said there). */
    (void)cache_open(sd.path, sd.busy_ms, &sd.cache, err);
    mts_err_set(err, "%s", "");
    clock_cond_init(&sd.cv);
    if (pthread_create(&sd.thread, NULL, writer, s) != 0) {
        stats_free(s);
        free(sd.path);
        sd.path = NULL;
        mts_err_set(err, "verdict statistics: cannot start a thread");
        return -1;
    }
    atomic_store_explicit(&sd.map, s, memory_order_release);
    return 0;
}

void
statsd_flush_soon(void)
{
    if (atomic_load_explicit(&sd.map, memory_order_acquire) == NULL)
        return;
    pthread_mutex_lock(&sd.mu);
    sd.soon = true;
    pthread_cond_signal(&sd.cv);
    pthread_mutex_unlock(&sd.mu);
}

void
statsd_stop(void)
{
    struct stats *s = atomic_load_explicit(&sd.map, memory_order_acquire);

    if (s == NULL)
        return;
    pthread_mutex_lock(&sd.mu);
    sd.stop = true;
    pthread_cond_signal(&sd.cv);
    pthread_mutex_unlock(&sd.mu);
    pthread_join(sd.thread, NULL);
    /* RCPTs still being decided are not counted from here on. */
    atomic_store_explicit(&sd.map, NULL, memory_order_release);
    if (stats_dropped(s) > 0)
        log_msg(LOG_WARNING, "verdict statistics: %llu recipients not counted (memory bound)",
                (unsigned long long)stats_dropped(s));
    cache_close(sd.cache);
    sd.cache = NULL;
    /* The caller stopped the milter's threads first: no one holds s. */
    stats_free(s);
    free(sd.path);
    sd.path = NULL;
}
