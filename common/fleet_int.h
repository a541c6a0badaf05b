/*
 * fleet_int - what the fleet's files (fleet.c: the link's users, the
 * writer and the subscriber; fleet_dns.c: MX sets and TLSA results) share
 * and nothing else sees: the handle, the writer's queue items, and the
 * helpers both use. See fleet.h for the interface.
 */
#ifndef MTS_FLEET_INT_H
#define MTS_FLEET_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fleet.h"
#include "fleet_codec.h"

#define KEY_MAX 600

struct qitem {
    struct qitem *next;
    char key[KEY_MAX];
    char lock[KEY_MAX];
    char event[KEY_MAX];	/* "" : nothing to publish */
    char *val;
    size_t len;
    char ttl[24];		/* PX, milliseconds */
    int64_t expires_at;		/* wall seconds: ttl again at a resynchronisation */
};

struct fleet {
    struct fleet_link *link;		/* lookups and the writer */
    struct fleet_link *sub_link;	/* the subscriber's own */
    struct fleet_key key;
    char prefix[128];
    char channel[160];
    char token[128];			/* this host's lock value */
    char source[CACHE_SOURCE_MAX];	/* this host's name in what it shares */

    pthread_mutex_t mu;
    pthread_cond_t cv;			/* the writer: an item, or stop */
    struct qitem *head, *tail;
    size_t queued;
    bool stopping;
    pthread_t writer, subscriber;
    bool sub_started;
    fleet_event_fn fn;
    void *fn_arg;

    /* Rows learnt while Redis was away (the writer's only), at most
     * FLEET_RESYNC_MAX, a key once: written when the link comes back. */
    struct qitem *outage;
    size_t n_outage;
    uint64_t outage_lost;		/* rows beyond the bound */

    /* counts (under mu) */
    uint64_t rows_read, rows_refused, rows_written, events, dropped;
    int64_t refusal_logged_at;		/* monotonic seconds */
    uint64_t refusals_unlogged;
    int64_t garbage_logged_at;		/* monotonic seconds: channel messages */
    uint64_t garbage_unlogged;
};

/* out = prefix kind name; false when longer than KEY_MAX. */
bool fleet_make_key(const struct fleet *f, char *out, const char *kind, const char *name);

/* A value refused: counted, a warning at most once a minute. */
void fleet_refused(struct fleet *f, const char *rkey, const char *why);

/* SET NX PX of the lock <prefix><kind><name>: true when this host holds
 * it, or Redis cannot say. */
bool fleet_take_lock(struct fleet *f, const char *kind, const char *name, int ms);

/* Reads the value of a key: 1 found and good, 0 absent, -1 refused or
 * Redis away. */
typedef int (*fleet_try_fn)(struct fleet *f, const char *rkey, int64_t now, void *ctx);

/* Polls rkey with try for at most ms while another host holds lkey. */
bool fleet_wait_value(struct fleet *f, const char *rkey, const char *lkey, int ms,
                      int64_t (*now)(void), fleet_try_fn try, void *ctx);

/* Queues it for the writer (it owns it then). */
void fleet_enqueue(struct fleet *f, struct qitem *it);

#endif
