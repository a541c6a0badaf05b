/*
 * fleet_int - what the fleet's files (fleet.c: the link's users and the
 * subscriber; fleet_dns.c: MX sets and TLSA results; fleet_writer.c: the
 * writer thread; fleet_outage.c: what it holds while Redis is away)
 * share and nothing else sees: the handle, the writer's queue items, and
 * the helpers they use. See fleet.h for the interface.
 */
#ifndef MTS_FLEET_INT_H
#define MTS_FLEET_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <time.h>
#include <stddef.h>
#include <stdint.h>

#include "fleet.h"
#include "fleet_codec.h"

#define KEY_MAX 600

/* What a queue item's value is, for reading another host's value of the
 * same key back (fleet_outage.c compares their times). */
enum fleet_qkind { FLEET_QOTHER, FLEET_QPOLICY, FLEET_QPROBE };

struct qitem {
    struct qitem *next;
    char key[KEY_MAX];
    char lock[KEY_MAX];
    char event[KEY_MAX];	/* "" : nothing to publish */
    char *val;
    size_t len;
    char ttl[24];		/* PX, milliseconds */
    int64_t expires_at;		/* wall seconds: ttl again at a resynchronisation */
    enum fleet_qkind kind;
    int port;			/* FLEET_QPROBE: the rows' port */
    int64_t learnt_at;		/* wall seconds: the row's checked_at, the rows' last probed_at */
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
    struct timespec close_by;		/* stopping: the writer's last try starts before */
    pthread_t writer, subscriber;
    bool sub_started;
    fleet_event_fn fn;
    void *fn_arg;

    /* Rows learnt while Redis was away (the writer's only), at most
     * FLEET_RESYNC_MAX, a key once: written when the link comes back. */
    struct qitem *outage;
    size_t n_outage;
    uint64_t outage_lost;		/* rows beyond the bound */
    uint64_t rs_written, rs_kept, rs_told;	/* this resynchronisation's counts */

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

/* The writer thread (fleet_writer.c): started by fleet_open, returns when
 * stopping, once it sent what it held or f->close_by passed. */
void *fleet_writer_main(void *arg);

/* Frees a list of items. */
void fleet_items_free(struct qitem *it);

/* The outage list (fleet_outage.c), the writer's own: keep takes the
 * rows of a batch Redis did not take (the rest is freed); resync writes
 * up to a pipeline's worth of them, false while Redis is away; free
 * empties it and says how many rows were in it or beyond its bound. */
void fleet_outage_keep(struct fleet *f, struct qitem *batch);
bool fleet_outage_resync(struct fleet *f);
size_t fleet_outage_free(struct fleet *f);

#endif
