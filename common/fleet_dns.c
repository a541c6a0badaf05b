/*
 * fleet_dns - MX sets and TLSA results shared through Redis: what one
 * host of the fleet resolved, the others read instead of asking DNS.
 * See fleet.h.
 */
#include "fleet_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "tlsa.h"

/* Counted like the other values (fleet_state's rows_read). */
static void
count_read(struct fleet *f)
{
    pthread_mutex_lock(&f->mu);
    f->rows_read++;
    pthread_mutex_unlock(&f->mu);
}

/* GET rkey: the reply when it is a string, else NULL (*absent: nil). */
static redisReply *
get_string(struct fleet *f, const char *rkey, bool *absent)
{
    const char *argv[2] = {"GET", rkey};
    redisReply *r = fleet_link_command(f->link, 2, argv, NULL);

    *absent = r != NULL && r->type == REDIS_REPLY_NIL;
    if (r != NULL && r->type != REDIS_REPLY_STRING) {
        freeReplyObject(r);
        r = NULL;
    }
    return r;
}

/* ------------------------------------------------------------ MX sets */

static int
try_mx(struct fleet *f, const char *rkey, int64_t now, void *ctx)
{
    struct cache_mxset *m = ctx;
    struct mts_err err;
    bool absent;
    redisReply *r = get_string(f, rkey, &absent);
    int got = absent ? 0 : -1;

    memset(m, 0, sizeof(*m));
    if (r == NULL)
        return got;
    if (!fleet_codec_mx_decode(&f->key, rkey, r->str, r->len, now, m, &err)) {
        fleet_refused(f, rkey, err.msg);
    } else {
        count_read(f);
        got = 1;
        /* In the last quarter of its life the set is being resolved again
         * (by the lock's holder, or soon): as good as absent. */
        if (m->expires_at - (m->expires_at - m->fetched_at) / 4 <= now) {
            cache_mxset_free(m);
            memset(m, 0, sizeof(*m));
            got = 0;
        }
    }
    freeReplyObject(r);
    return got;
}

bool
fleet_get_mx(struct fleet *f, const char *domain, int64_t now, struct cache_mxset *m)
{
    char rkey[KEY_MAX];

    memset(m, 0, sizeof(*m));
    return fleet_make_key(f, rkey, "mx:", domain) && try_mx(f, rkey, now, m) > 0;
}

bool
fleet_lock_mx(struct fleet *f, const char *domain, int ms)
{
    return fleet_take_lock(f, "lock:mx:", domain, ms);
}

bool
fleet_wait_mx(struct fleet *f, const char *domain, int ms, int64_t (*now)(void),
              struct cache_mxset *m)
{
    char rkey[KEY_MAX], lkey[KEY_MAX];

    memset(m, 0, sizeof(*m));
    if (!fleet_make_key(f, rkey, "mx:", domain) || !fleet_make_key(f, lkey, "lock:mx:", domain))
        return false;
    return fleet_wait_value(f, rkey, lkey, ms, now, try_mx, m);
}

void
fleet_put_mx(struct fleet *f, const struct cache_mxset *m, int64_t now)
{
    struct qitem *it;
    struct mts_err err;
    int64_t ttl = m->expires_at - now;

    if ((it = calloc(1, sizeof(*it))) == NULL)
        return;
    if (!fleet_make_key(f, it->lock, "lock:mx:", m->domain)) {
        free(it);
        return;
    }
    /* Without the key a "secure" set would be refused by every reader
     * (fleet_codec.h): only the lock goes, the others resolve it. */
    if (ttl > 0 && (f->key.set || strcmp(m->dnssec, "secure") != 0) &&
        fleet_make_key(f, it->key, "mx:", m->domain)) {
        it->val = fleet_codec_mx_encode(&f->key, it->key, m, &it->len, &err);
        it->expires_at = m->expires_at;
        snprintf(it->ttl, sizeof(it->ttl), "%lld", (long long)ttl * 1000);
    }
    fleet_enqueue(f, it);
}

void
fleet_unlock_mx(struct fleet *f, const char *domain)
{
    struct qitem *it = calloc(1, sizeof(*it));

    if (it == NULL)
        return;
    if (!fleet_make_key(f, it->lock, "lock:mx:", domain)) {
        free(it);
        return;
    }
    fleet_enqueue(f, it);
}

/* ------------------------------------------------------------ TLSA */

/* <prefix>tlsa:PORT:HOST (the host last: the codec checks it). */
static bool
tlsa_key(const struct fleet *f, char *out, const char *host, int port)
{
    char kind[32];

    snprintf(kind, sizeof(kind), "tlsa:%d:", port);
    return fleet_make_key(f, out, kind, host);
}

bool
fleet_get_tlsa(struct fleet *f, const char *host, int port, int64_t now, struct tlsa_set *t)
{
    char rkey[KEY_MAX];
    struct mts_err err;
    bool absent, ok = false;
    int64_t until;
    redisReply *r;

    memset(t, 0, sizeof(*t));
    /* Not read without the key (fleet_codec.h): never even asked. */
    if (!f->key.set || !tlsa_key(f, rkey, host, port) || (r = get_string(f, rkey, &absent)) == NULL)
        return false;
    if (!fleet_codec_tlsa_decode(&f->key, rkey, r->str, r->len, now, port, t, &until, &err)) {
        fleet_refused(f, rkey, err.msg);
    } else if (until <= now) {
        memset(t, 0, sizeof(*t));
    } else {
        count_read(f);
        /* The remaining life is the value's own, never more. */
        t->ttl = (uint32_t)(until - now);
        ok = true;
    }
    freeReplyObject(r);
    return ok;
}

void
fleet_put_tlsa(struct fleet *f, const char *host, int port, const struct tlsa_set *t,
               int64_t now)
{
    struct qitem *it;
    struct mts_err err;
    int64_t ttl = t->ttl < FLEET_CODEC_DNS_LIFE_MAX ? (int64_t)t->ttl : FLEET_CODEC_DNS_LIFE_MAX;

    /* A failed lookup may be this host's resolver alone: not shared. */
    if (!f->key.set || t->state == TLSA_FAILED || ttl <= 0 ||
        (it = calloc(1, sizeof(*it))) == NULL)
        return;
    if (!tlsa_key(f, it->key, host, port) ||
        (it->val = fleet_codec_tlsa_encode(&f->key, it->key, host, port, t, now, now + ttl,
                                           &it->len, &err)) == NULL) {
        free(it);
        return;
    }
    it->expires_at = now + ttl;
    snprintf(it->ttl, sizeof(it->ttl), "%lld", (long long)ttl * 1000);
    fleet_enqueue(f, it);
}
