/*
 * fleet_outage - the rows the writer could not send while Redis was away
 * (the writer thread's own list): the latest value of each key, at most
 * FLEET_RESYNC_MAX keys, and the resynchronisation that writes them when
 * the link comes back, telling the other hosts the changes among them.
 * See fleet.h (Resynchronisation) and fleet_int.h.
 */
#include "fleet_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cache.h"
#include "fleet_codec.h"
#include "fleet_link.h"
#include "log.h"
#include "probecache.h"

/*
 * A change written over the value Redis held when it was read (seen,
 * ARGV[1]; "" for none: a value is never empty) and told on the channel,
 * in one step: a value another host wrote between the read and the write
 * stays, with its own news.
 */
static const char change_script[] =
    "if (redis.call('get', KEYS[1]) or '') ~= ARGV[1] then return 0 end "
    "redis.call('set', KEYS[1], ARGV[2], 'PX', ARGV[3]) "
    "redis.call('publish', ARGV[4], ARGV[5]) return 1";

void
fleet_outage_keep(struct fleet *f, struct qitem *batch)
{
    while (batch != NULL) {
        struct qitem *it = batch, *old;

        batch = it->next;
        it->next = NULL;
        if (it->val == NULL) { /* a lock's release: the lock expires by itself */
            free(it);
            continue;
        }
        for (old = f->outage; old != NULL && strcmp(old->key, it->key) != 0; old = old->next)
            ;
        if (old != NULL) {
            /* The latest value; a change learnt before it is still news
             * to the others (one message a key, however many changes). */
            free(old->val);
            old->val = it->val;
            old->len = it->len;
            old->expires_at = it->expires_at;
            old->learnt_at = it->learnt_at;
            if (it->event[0] != '\0')
                memcpy(old->event, it->event, sizeof(old->event));
            free(it);
        } else if (f->n_outage < FLEET_RESYNC_MAX) {
            it->next = f->outage;
            f->outage = it;
            f->n_outage++;
        } else {
            f->outage_lost++;
            free(it->val);
            free(it);
        }
    }
}

size_t
fleet_outage_free(struct fleet *f)
{
    size_t n = f->n_outage + (size_t)f->outage_lost;

    fleet_items_free(f->outage);
    f->outage = NULL;
    f->n_outage = 0;
    f->outage_lost = 0;
    return n;
}

/* When the value v of it's key was learnt (a row's checked_at, the rows'
 * last probed_at); -1 when it cannot be read (then ours replaces it). */
static int64_t
learnt_at(struct fleet *f, const struct qitem *it, const redisReply *v, int64_t now)
{
    struct mts_err err;
    int64_t at = -1;

    if (v->type != REDIS_REPLY_STRING)
        return -1;
    if (it->kind == FLEET_QPOLICY) {
        struct cache_entry e;

        if (fleet_codec_row_decode(&f->key, it->key, v->str, v->len, now, &e, &err))
            at = e.checked_at;
        cache_entry_free(&e);
    } else if (it->kind == FLEET_QPROBE) {
        struct probecache_row *rows = calloc(PROBECACHE_ADDR_MAX, sizeof(*rows));
        size_t n = 0;

        if (rows != NULL && fleet_codec_tls_decode(&f->key, it->key, v->str, v->len, now,
                                                   it->port, rows, &n, &err))
            for (size_t i = 0; i < n; i++)
                if (rows[i].probed_at > at)
                    at = rows[i].probed_at;
        free(rows);
    }
    return at;
}

/* Back on the list (Redis did not answer). */
static void
put_back(struct fleet *f, struct qitem **items, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        items[i]->next = f->outage;
        f->outage = items[i];
        f->n_outage++;
    }
}

/*
 * The changes of a round (items[0..n), read[i] what Redis holds): each
 * newer than what Redis holds is written over it and told, one message
 * a key; one Redis holds as new or newer is left (its writer told it).
 * False while Redis is away (the changes are back on the list).
 */
static bool
write_changes(struct fleet *f, struct qitem **items, redisReply **read, size_t n, int64_t now)
{
    struct fleet_cmd cmds[FLEET_LINK_PIPELINE_MAX];
    redisReply *replies[FLEET_LINK_PIPELINE_MAX];
    struct qitem *sent[FLEET_LINK_PIPELINE_MAX];
    char px[FLEET_LINK_PIPELINE_MAX][24];
    size_t m = 0, written = 0;

    memset(cmds, 0, sizeof(cmds));
    for (size_t i = 0; i < n; i++) {
        struct qitem *it = items[i];
        bool there = read[i]->type == REDIS_REPLY_STRING;

        if (there && learnt_at(f, it, read[i], now) >= it->learnt_at) {
            f->rs_kept++;
            fleet_items_free(it);
            continue;
        }
        snprintf(px[m], sizeof(px[m]), "%lld", (long long)(it->expires_at - now) * 1000);
        cmds[m] = (struct fleet_cmd){9,
                                     {"EVAL", change_script, "1", it->key,
                                      there ? read[i]->str : "", it->val, px[m], f->channel,
                                      it->event},
                                     {4, sizeof(change_script) - 1, 1, strlen(it->key),
                                      there ? read[i]->len : 0, it->len, strlen(px[m]),
                                      strlen(f->channel), strlen(it->event)}};
        sent[m++] = it;
    }
    if (m > 0 && fleet_link_pipeline(f->link, m, cmds, replies) != 0) {
        put_back(f, sent, m);
        return false;
    }
    for (size_t i = 0; i < m; i++) {
        bool wrote = replies[i]->type == REDIS_REPLY_INTEGER && replies[i]->integer == 1;

        written += wrote;
        f->rs_kept += !wrote;
        freeReplyObject(replies[i]);
        fleet_items_free(sent[i]);
    }
    f->rs_written += written;
    f->rs_told += written;
    pthread_mutex_lock(&f->mu);
    f->rows_written += written;
    pthread_mutex_unlock(&f->mu);
    return true;
}

/*
 * The link is back: what was learnt meanwhile goes to Redis, at most a
 * pipeline's worth a round. A row with no change to tell is written SET
 * NX (a value another host wrote while this one was cut off is as new or
 * newer: it stays). A change (a row that was published, fleet.h) is read
 * first, then written over an older value and told (write_changes).
 * False while Redis is away.
 */
bool
fleet_outage_resync(struct fleet *f)
{
    struct fleet_cmd cmds[FLEET_LINK_PIPELINE_MAX];
    redisReply *replies[FLEET_LINK_PIPELINE_MAX], *read[FLEET_LINK_PIPELINE_MAX];
    char px[FLEET_LINK_PIPELINE_MAX][24];
    struct qitem *sent[FLEET_LINK_PIPELINE_MAX], *changes[FLEET_LINK_PIPELINE_MAX];
    int64_t now = (int64_t)time(NULL);
    size_t n = 0, nc = 0, written = 0;
    bool ok;

    memset(cmds, 0, sizeof(cmds));
    for (struct qitem **pp = &f->outage; *pp != NULL && n < FLEET_LINK_PIPELINE_MAX;) {
        struct qitem *it = *pp;

        *pp = it->next;
        it->next = NULL;
        f->n_outage--;
        if (it->expires_at <= now) { /* no longer worth sharing */
            fleet_items_free(it);
            continue;
        }
        if (it->event[0] != '\0') {
            cmds[n] = (struct fleet_cmd){2, {"GET", it->key}, {3, strlen(it->key)}};
        } else {
            snprintf(px[n], sizeof(px[n]), "%lld", (long long)(it->expires_at - now) * 1000);
            cmds[n] = (struct fleet_cmd){6, {"SET", it->key, it->val, "NX", "PX", px[n]},
                                         {3, strlen(it->key), it->len, 2, 2, strlen(px[n])}};
        }
        sent[n++] = it;
    }
    if (n > 0 && fleet_link_pipeline(f->link, n, cmds, replies) != 0) {
        put_back(f, sent, n);
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        if (sent[i]->event[0] != '\0') {
            read[nc] = replies[i];
            changes[nc++] = sent[i];
            continue;
        }
        written += replies[i]->type == REDIS_REPLY_STATUS;
        f->rs_kept += replies[i]->type != REDIS_REPLY_STATUS;
        freeReplyObject(replies[i]);
        fleet_items_free(sent[i]);
    }
    f->rs_written += written;
    ok = nc == 0 || write_changes(f, changes, read, nc, now);
    for (size_t i = 0; i < nc; i++)
        freeReplyObject(read[i]);
    if (ok && f->outage == NULL) {
        log_msg(LOG_NOTICE, "fleet: resynchronised: %llu row(s) learnt while Redis was away "
                "written (%llu change(s) told), %llu already there",
                (unsigned long long)f->rs_written, (unsigned long long)f->rs_told,
                (unsigned long long)f->rs_kept);
        if (f->outage_lost > 0)
            log_msg(LOG_WARNING, "fleet: %llu row(s) learnt while Redis was away were not "
                    "shared (more than %d keys)", (unsigned long long)f->outage_lost,
                    FLEET_RESYNC_MAX);
        f->outage_lost = 0;
        f->rs_written = f->rs_told = f->rs_kept = 0;
    }
    pthread_mutex_lock(&f->mu);
    f->rows_written += written;
    pthread_mutex_unlock(&f->mu);
    return ok;
}
