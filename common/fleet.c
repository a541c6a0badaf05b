/*
 * fleet - policy rows shared through Redis, the fetch lock, the writer
 * and subscriber threads; see fleet.h.
 */
#include "fleet.h"
#include "fleet_int.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cache_row.h"
#include "clock.h"
#include "fleet_codec.h"
#include "log.h"
#include "metrics_fleet.h"
#include "probecache.h"

#define WAIT_POLL_MS 50
#define SUB_WAKE_MS 1000
#define REFUSAL_LOG_SECONDS 60

static int64_t
mono_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec;
}

bool
fleet_make_key(const struct fleet *f, char *out, const char *kind, const char *name)
{
    int n = snprintf(out, KEY_MAX, "%s%s%s", f->prefix, kind, name);

    return n > 0 && n < KEY_MAX;
}

/* A value refused: a warning, at most one a minute. */
void
fleet_refused(struct fleet *f, const char *rkey, const char *why)
{
    int64_t now = mono_s();
    uint64_t skipped = 0;
    bool log_it = false;

    metrics_fleet_refused();
    pthread_mutex_lock(&f->mu);
    f->rows_refused++;
    if (f->refusal_logged_at == 0 || now - f->refusal_logged_at >= REFUSAL_LOG_SECONDS) {
        log_it = true;
        skipped = f->refusals_unlogged;
        f->refusals_unlogged = 0;
        f->refusal_logged_at = now;
    } else {
        f->refusals_unlogged++;
    }
    pthread_mutex_unlock(&f->mu);
    if (log_it)
        log_msg(LOG_WARNING, "fleet: value of %s ignored: %s (%llu more not logged)", rkey,
                why, (unsigned long long)skipped);
}

int
fleet_open(const struct config *cfg, struct fleet **out, struct mts_err *err)
{
    struct fleet *f;
    char host[64];

    *out = NULL;
    if (cfg->fleet_redis == NULL || cfg->fleet_redis[0] == '\0')
        return 0;
    if ((f = calloc(1, sizeof(*f))) == NULL) {
        mts_err_set(err, "out of memory");
        return -1;
    }
    if (strlen(cfg->fleet_prefix) >= sizeof(f->prefix)) {
        mts_err_set(err, "fleet_prefix: longer than %zu bytes", sizeof(f->prefix) - 1);
        free(f);
        return -1;
    }
    snprintf(f->prefix, sizeof(f->prefix), "%s", cfg->fleet_prefix);
    snprintf(f->channel, sizeof(f->channel), "%sevents", f->prefix);
    if (gethostname(host, sizeof(host)) != 0)
        snprintf(host, sizeof(host), "?");
    host[sizeof(host) - 1] = '\0';
    snprintf(f->token, sizeof(f->token), "%.63s:%ld", host, (long)getpid());
    cache_row_source_from(f->source, host); /* the others keep it with the rows */
    pthread_mutex_init(&f->mu, NULL);
    clock_cond_init(&f->cv);
    if (fleet_key_load(cfg->fleet_key_file, &f->key, err) != 0 ||
        fleet_link_open(cfg, &f->link, err) != 0 || fleet_link_open(cfg, &f->sub_link, err) != 0)
        goto fail;
    if (pthread_create(&f->writer, NULL, fleet_writer_main, f) != 0) {
        mts_err_set(err, "fleet: cannot start the writer thread");
        goto fail;
    }
    *out = f;
    return 0;
fail:
    fleet_link_close(f->link);
    fleet_link_close(f->sub_link);
    pthread_cond_destroy(&f->cv);
    pthread_mutex_destroy(&f->mu);
    free(f);
    return -1;
}

void
fleet_close(struct fleet *f)
{
    size_t lost = 0;

    if (f == NULL)
        return;
    /* Nothing waits on the link any more: the writer's first try at
     * what it holds need not wait for the breaker's back-off. */
    fleet_link_retry_now(f->link);
    pthread_mutex_lock(&f->mu);
    f->close_by = clock_deadline_after(FLEET_CLOSE_WAIT_MS);
    f->stopping = true;
    pthread_cond_broadcast(&f->cv);
    pthread_mutex_unlock(&f->mu);
    pthread_join(f->writer, NULL);
    if (f->sub_started)
        pthread_join(f->subscriber, NULL);
    for (struct qitem *it = f->head; it != NULL; it = it->next)
        lost += it->val != NULL;
    fleet_items_free(f->head);
    lost += fleet_outage_free(f);
    if (lost > 0) /* said once, here: nothing dropped without a word */
        log_msg(LOG_WARNING, "fleet: %zu row(s) learnt here not shared: Redis did not take them "
                "within %d ms of the fleet's close", lost, FLEET_CLOSE_WAIT_MS);
    fleet_link_close(f->link);
    fleet_link_close(f->sub_link);
    memset(&f->key, 0, sizeof(f->key));
    pthread_cond_destroy(&f->cv);
    pthread_mutex_destroy(&f->mu);
    free(f);
}

/* GET rkey, decoded; false when absent, refused or Redis is away. */
static bool
get_row(struct fleet *f, const char *rkey, int64_t now, struct cache_entry *e, bool *absent)
{
    const char *argv[2] = {"GET", rkey};
    redisReply *r = fleet_link_command(f->link, 2, argv, NULL);
    struct mts_err err;
    bool ok = false;

    *absent = r != NULL && r->type == REDIS_REPLY_NIL;
    memset(e, 0, sizeof(*e));
    if (r != NULL && r->type == REDIS_REPLY_STRING) {
        ok = fleet_codec_row_decode(&f->key, rkey, r->str, r->len, now, e, &err);
        if (!ok)
            fleet_refused(f, rkey, err.msg);
        else {
            pthread_mutex_lock(&f->mu);
            f->rows_read++;
            pthread_mutex_unlock(&f->mu);
        }
    }
    if (r != NULL)
        freeReplyObject(r);
    return ok;
}

bool
fleet_get_row(struct fleet *f, const char *domain, int64_t now, struct cache_entry *e)
{
    char rkey[KEY_MAX];
    bool absent;

    memset(e, 0, sizeof(*e));
    return fleet_make_key(f, rkey, "policy:", domain) && get_row(f, rkey, now, e, &absent);
}

bool
fleet_take_lock(struct fleet *f, const char *kind, const char *name, int ms)
{
    char rkey[KEY_MAX], px[24];
    const char *argv[6] = {"SET", rkey, f->token, "NX", "PX", px};
    redisReply *r;
    bool mine;

    if (!fleet_make_key(f, rkey, kind, name))
        return true;
    snprintf(px, sizeof(px), "%d", ms > 0 ? ms : 1);
    if ((r = fleet_link_command(f->link, 6, argv, NULL)) == NULL)
        return true;
    /* OK: ours; nil: another host's. */
    mine = r->type != REDIS_REPLY_NIL;
    freeReplyObject(r);
    return mine;
}

bool
fleet_lock(struct fleet *f, const char *domain, int ms)
{
    return fleet_take_lock(f, "lock:policy:", domain, ms);
}

/* Polls rkey for at most ms while another host holds lkey. */
bool
fleet_wait_value(struct fleet *f, const char *rkey, const char *lkey, int ms, int64_t (*now)(void),
           fleet_try_fn try, void *ctx)
{
    struct timespec end = clock_deadline_after(ms);

    for (;;) {
        const char *argv[2] = {"EXISTS", lkey};
        redisReply *r;
        bool held;
        int left, got;

        if ((got = try(f, rkey, now(), ctx)) != 0)
            return got > 0; /* refused, or Redis away: fetch ourselves */
        /* The holder gave up (released or expired) without a row. */
        if ((r = fleet_link_command(f->link, 2, argv, NULL)) == NULL)
            return false;
        held = r->type == REDIS_REPLY_INTEGER && r->integer == 1;
        freeReplyObject(r);
        /* The holder writes the row, then lets the lock go: a lock gone
         * since our GET may mean the row is there now. */
        if (!held)
            return try(f, rkey, now(), ctx) > 0;
        if ((left = clock_ms_until(&end)) <= 0)
            return false;
        struct timespec nap = {0, (long)(left < WAIT_POLL_MS ? left : WAIT_POLL_MS) * 1000000L};
        nanosleep(&nap, NULL);
    }
}

static int
try_row(struct fleet *f, const char *rkey, int64_t now, void *ctx)
{
    bool absent;

    if (get_row(f, rkey, now, ctx, &absent))
        return 1;
    return absent ? 0 : -1;
}

bool
fleet_wait_row(struct fleet *f, const char *domain, int ms, int64_t (*now)(void),
               struct cache_entry *e)
{
    char rkey[KEY_MAX], lkey[KEY_MAX];

    memset(e, 0, sizeof(*e));
    if (!fleet_make_key(f, rkey, "policy:", domain) || !fleet_make_key(f, lkey, "lock:policy:", domain))
        return false;
    return fleet_wait_value(f, rkey, lkey, ms, now, try_row, e);
}

void
fleet_put_row(struct fleet *f, const struct cache_entry *e, int64_t now, bool publish)
{
    struct qitem *it = calloc(1, sizeof(*it));
    struct mts_err err;
    int64_t ttl = e->expires_at - now;
    struct cache_entry sent = *e; /* shallow: only encoded */

    if (it == NULL)
        return;
    /* A row this host learnt goes out under its name; one it had from
     * the fleet keeps the name of the host that learnt it. */
    if (sent.source[0] == '\0')
        memcpy(sent.source, f->source, sizeof(sent.source));
    if (!fleet_make_key(f, it->key, "policy:", e->domain) ||
        !fleet_make_key(f, it->lock, "lock:policy:", e->domain) ||
        (it->val = fleet_codec_row_encode(&f->key, it->key, &sent, &it->len, &err)) == NULL) {
        free(it);
        return;
    }
    it->expires_at = e->expires_at;
    it->kind = FLEET_QPOLICY;
    it->learnt_at = e->checked_at;
    if (publish)
        snprintf(it->event, sizeof(it->event), "policy %s", e->domain);
    snprintf(it->ttl, sizeof(it->ttl), "%lld", (long long)(ttl > 1 ? ttl : 1) * 1000);
    fleet_enqueue(f, it);
}

void
fleet_unlock(struct fleet *f, const char *domain)
{
    struct qitem *it = calloc(1, sizeof(*it));

    if (it == NULL)
        return;
    if (!fleet_make_key(f, it->lock, "lock:policy:", domain)) {
        free(it);
        return;
    }
    fleet_enqueue(f, it);
}

/* ------------------------------------------------------------ probes */

struct probe_ctx {
    int port;
    struct probecache_row *rows;
    size_t *n;
};

static int
try_probe(struct fleet *f, const char *rkey, int64_t now, void *arg)
{
    struct probe_ctx *c = arg;
    const char *argv[2] = {"GET", rkey};
    redisReply *r = fleet_link_command(f->link, 2, argv, NULL);
    struct mts_err err;
    int got = -1;

    *c->n = 0;
    if (r != NULL && r->type == REDIS_REPLY_NIL)
        got = 0;
    else if (r != NULL && r->type == REDIS_REPLY_STRING) {
        if (fleet_codec_tls_decode(&f->key, rkey, r->str, r->len, now, c->port, c->rows, c->n,
                                   &err)) {
            got = 1;
            /* Rows in the last quarter of their life are being refreshed
             * (by the lock's holder, or soon): as good as absent. */
            for (size_t i = 0; i < *c->n; i++)
                if (c->rows[i].expires_at - (c->rows[i].expires_at - c->rows[i].probed_at) / 4 <=
                    now)
                    got = 0;
            if (got == 0)
                *c->n = 0;
            pthread_mutex_lock(&f->mu);
            f->rows_read++;
            pthread_mutex_unlock(&f->mu);
        } else {
            fleet_refused(f, rkey, err.msg);
        }
    }
    if (r != NULL)
        freeReplyObject(r);
    return got;
}

bool
fleet_get_probe(struct fleet *f, const char *host, int port, int64_t now,
                struct probecache_row *rows, size_t *n)
{
    char rkey[KEY_MAX];
    struct probe_ctx c = {port, rows, n};

    *n = 0;
    return fleet_make_key(f, rkey, "probe:", host) && try_probe(f, rkey, now, &c) > 0;
}

bool
fleet_lock_probe(struct fleet *f, const char *host, int ms)
{
    return fleet_take_lock(f, "lock:probe:", host, ms);
}

bool
fleet_wait_probe(struct fleet *f, const char *host, int port, int ms, int64_t (*now)(void),
                 struct probecache_row *rows, size_t *n)
{
    char rkey[KEY_MAX], lkey[KEY_MAX];
    struct probe_ctx c = {port, rows, n};

    *n = 0;
    if (!fleet_make_key(f, rkey, "probe:", host) || !fleet_make_key(f, lkey, "lock:probe:", host))
        return false;
    return fleet_wait_value(f, rkey, lkey, ms, now, try_probe, &c);
}

void
fleet_put_probe(struct fleet *f, const struct probecache_row *rows, size_t n, int64_t now,
                bool publish)
{
    struct qitem *it;
    struct probecache_row *sent;
    struct mts_err err;
    int64_t ttl;

    if (n == 0 || n > PROBECACHE_ADDR_MAX || (sent = malloc(n * sizeof(*sent))) == NULL)
        return;
    if ((it = calloc(1, sizeof(*it))) == NULL) {
        free(sent);
        return;
    }
    /* Under this host's name, as fleet_put_row. */
    memcpy(sent, rows, n * sizeof(*sent));
    for (size_t i = 0; i < n; i++)
        if (sent[i].source[0] == '\0')
            memcpy(sent[i].source, f->source, sizeof(sent[i].source));
    rows = sent;
    /* Redis lets the value go with its first row's end. */
    ttl = rows[0].expires_at;
    for (size_t i = 1; i < n; i++)
        if (rows[i].expires_at < ttl)
            ttl = rows[i].expires_at;
    ttl -= now;
    if (!fleet_make_key(f, it->key, "probe:", rows[0].host) ||
        !fleet_make_key(f, it->lock, "lock:probe:", rows[0].host) ||
        (it->val = fleet_codec_tls_encode(&f->key, it->key, rows, n, &it->len, &err)) == NULL) {
        free(sent);
        free(it);
        return;
    }
    it->expires_at = now + ttl;
    it->kind = FLEET_QPROBE;
    it->port = rows[0].port;
    for (size_t i = 0; i < n; i++)
        if (rows[i].probed_at > it->learnt_at)
            it->learnt_at = rows[i].probed_at;
    if (publish)
        snprintf(it->event, sizeof(it->event), "probe %s", rows[0].host);
    snprintf(it->ttl, sizeof(it->ttl), "%lld", (long long)(ttl > 1 ? ttl : 1) * 1000);
    free(sent);
    fleet_enqueue(f, it);
}

void
fleet_unlock_probe(struct fleet *f, const char *host)
{
    struct qitem *it = calloc(1, sizeof(*it));

    if (it == NULL)
        return;
    if (!fleet_make_key(f, it->lock, "lock:probe:", host)) {
        free(it);
        return;
    }
    fleet_enqueue(f, it);
}

static bool
stopping(struct fleet *f)
{
    bool s;

    pthread_mutex_lock(&f->mu);
    s = f->stopping;
    pthread_mutex_unlock(&f->mu);
    return s;
}

/* A message of no known shape on the channel (another program's, or a
 * writer's mistake): skipped, a warning at most once a minute. */
static void
garbage(struct fleet *f, const char *why)
{
    int64_t now = mono_s();
    uint64_t skipped = 0;
    bool log_it = false;

    pthread_mutex_lock(&f->mu);
    if (f->garbage_logged_at == 0 || now - f->garbage_logged_at >= REFUSAL_LOG_SECONDS) {
        log_it = true;
        skipped = f->garbage_unlogged;
        f->garbage_unlogged = 0;
        f->garbage_logged_at = now;
    } else {
        f->garbage_unlogged++;
    }
    pthread_mutex_unlock(&f->mu);
    if (log_it)
        log_msg(LOG_WARNING, "fleet: message on %s ignored: %s (%llu more not logged)",
                f->channel, why, (unsigned long long)skipped);
}

/* One message of the channel: ["message", channel, "KIND NAME"], KIND
 * one of ours and NAME a name; anything else is skipped with a warning. */
static void
deliver(struct fleet *f, const redisReply *r)
{
    char kind[16], name[256], rest[2];
    const redisReply *m;

    if (r->type != REDIS_REPLY_ARRAY || r->elements != 3 ||
        r->element[0]->type != REDIS_REPLY_STRING || strcmp(r->element[0]->str, "message") != 0)
        return; /* a subscription's confirmation, not a message */
    m = r->element[2];
    if (m->type != REDIS_REPLY_STRING || m->len >= sizeof(name) || strlen(m->str) != m->len ||
        sscanf(m->str, "%15s %255s %1s", kind, name, rest) != 2) {
        garbage(f, "not KIND NAME");
        return;
    }
    if (strcmp(kind, "policy") != 0 && strcmp(kind, "probe") != 0) {
        garbage(f, "unknown kind");
        return;
    }
    pthread_mutex_lock(&f->mu);
    f->events++;
    pthread_mutex_unlock(&f->mu);
    f->fn(kind, name, f->fn_arg);
}

static void *
subscriber_main(void *arg)
{
    struct fleet *f = arg;
    bool subscribed = false;

    while (!stopping(f)) {
        redisReply *r;
        bool timed_out;

        if (!subscribed) {
            const char *argv[2] = {"SUBSCRIBE", f->channel};

            r = fleet_link_command(f->sub_link, 2, argv, NULL);
            if (r == NULL) {
                /* Down: the breaker says when to try again; look at the
                 * stop flag meanwhile. */
                struct timespec nap = {0, 200 * 1000000L};

                nanosleep(&nap, NULL);
                continue;
            }
            subscribed = r->type == REDIS_REPLY_ARRAY;
            freeReplyObject(r);
            continue;
        }
        r = fleet_link_read(f->sub_link, SUB_WAKE_MS, &timed_out);
        if (r != NULL) {
            deliver(f, r);
            freeReplyObject(r);
        } else if (!timed_out) {
            subscribed = false;
        }
    }
    return NULL;
}

int
fleet_subscribe(struct fleet *f, fleet_event_fn fn, void *arg, struct mts_err *err)
{
    f->fn = fn;
    f->fn_arg = arg;
    if (pthread_create(&f->subscriber, NULL, subscriber_main, f) != 0) {
        mts_err_set(err, "fleet: cannot start the subscriber thread");
        return -1;
    }
    f->sub_started = true;
    return 0;
}

void
fleet_state(struct fleet *f, struct fleet_state *out)
{
    memset(out, 0, sizeof(*out));
    fleet_link_state(f->link, &out->link);
    pthread_mutex_lock(&f->mu);
    out->rows_read = f->rows_read;
    out->rows_refused = f->rows_refused;
    out->rows_written = f->rows_written;
    out->events = f->events;
    out->queue_dropped = f->dropped;
    pthread_mutex_unlock(&f->mu);
}
