/*
 * lookupq - the lookup engine's fairness: its work queue in lanes, and the
 * count of fresh lookups each sender and connection has in flight.
 *
 * SYNOPSIS
 *	#include "lookupq.h"
 *
 *	struct lookupq q;                        zeroed: empty
 *	lookupq_push(&q, &job->item, LOOKUPQ_WAITED);
 *	lookupq_move(&q, &job->item, LOOKUPQ_ABANDONED);  its last waiter left
 *	item = lookupq_pop(&q, LOOKUPQ_FOR_RECIPIENTS);
 *
 *	struct lookupq_cap *c = lookupq_cap_new(per_sender, per_connection, 60);
 *	switch (lookupq_cap_take(c, "alice", 42, now, &log_it)) ...
 *	lookupq_cap_give(c, "alice", 42, now);
 *	lookupq_cap_free(c);
 *
 * DESCRIPTION
 *	Lanes. A lookup somebody waits for (WAITED) goes before one whose
 *	every caller gave up (ABANDONED: it still runs, to fill the cache, but
 *	yields); both are served by the recipients' workers, in that order,
 *	first in first out within a lane. Background work (the refresher's
 *	rows, MX sets near their TTL, a cached policy due for a check) has a
 *	lane of its own (REFRESH) served by workers of its own, so it neither
 *	waits behind recipients' lookups nor holds them up. A job is in at
 *	most one lane; lookupq_move sends a queued job to the tail of another
 *	(a waiter joined a background job, or the last waiter left) and does
 *	nothing to one that is not queued (taken by a worker).
 *
 *	Caps. lookupq_cap counts the fresh lookups (new domains, not joins of a
 *	lookup already in flight) that each sender (authenticated user, else
 *	client address) and each connection started and that have not
 *	finished, abandoned or not: a sender whose caller gave up still holds
 *	a worker until the lookup ends. lookupq_cap_take charges both or
 *	neither; lookupq_cap_give returns the charge when the lookup finishes.
 *	A cap of 0 means none. Memory: one entry per sender or connection
 *	with a lookup in flight, or refused within the last log interval.
 *
 *	Metrics. With publish set (the live engine's queue), each change of a
 *	lane publishes its depth and its head's first enqueue time
 *	(metrics_now_queue), so a scrape reads them without the caller's mutex.
 *
 *	Neither part locks: the caller (discover.c) holds its mutex.
 */
#ifndef MTS_LOOKUPQ_H
#define MTS_LOOKUPQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum lookupq_lane {
    LOOKUPQ_WAITED,		/* somebody waits for it */
    LOOKUPQ_ABANDONED,		/* started by a caller, nobody waits any more */
    LOOKUPQ_REFRESH,		/* background work: nobody ever waited */
    LOOKUPQ_LANES
};

/* Embedded in a job; zeroed (or after lookupq_pop) it is in no lane. */
struct lookupq_item {
    struct lookupq_item *prev, *next;
    int lane;			/* enum lookupq_lane + 1; 0: not queued */
    int64_t since_us;		/* first queued (metrics_clock_us); kept across moves */
};

struct lookupq {
    struct {
        struct lookupq_item *head, *tail;
        size_t n;
    } lane[LOOKUPQ_LANES];
    bool publish;		/* each lane's depth and head's wait as metrics (metrics_now.h) */
};

/* Which lanes a worker takes from, in order. */
enum lookupq_server {
    LOOKUPQ_FOR_RECIPIENTS,	/* WAITED, then ABANDONED */
    LOOKUPQ_FOR_REFRESH		/* REFRESH */
};

void lookupq_push(struct lookupq *q, struct lookupq_item *it, enum lookupq_lane lane);
/* To the tail of lane, if it is queued; returns whether it was. */
bool lookupq_move(struct lookupq *q, struct lookupq_item *it, enum lookupq_lane lane);
/* The next job for that kind of worker, out of its lane; NULL if none. */
struct lookupq_item *lookupq_pop(struct lookupq *q, enum lookupq_server who);
/* Jobs waiting for that kind of worker. */
size_t lookupq_pending(const struct lookupq *q, enum lookupq_server who);
size_t lookupq_total(const struct lookupq *q);
/* The lane it is queued in, or -1. */
int lookupq_lane_of(const struct lookupq_item *it);

/* ------------------------------------------------------------ caps */

enum lookupq_cap_result {
    LOOKUPQ_CAP_OK,		/* charged to the sender and the connection */
    LOOKUPQ_CAP_SENDER,		/* the sender is at its cap: nothing charged */
    LOOKUPQ_CAP_CONNECTION,	/* the connection is at its cap: nothing charged */
    LOOKUPQ_CAP_NOMEM		/* no memory to count: nothing charged */
};

#define LOOKUPQ_CAP_SENDER_MAX 255	/* longer sender keys are cut (still distinct enough) */

struct lookupq_cap;

/* per_sender, per_connection: 0 for no cap; log_interval_s: how often a
 * sender's refusals are reported. NULL when out of memory. */
struct lookupq_cap *lookupq_cap_new(unsigned per_sender, unsigned per_connection,
                                    int64_t log_interval_s);
void lookupq_cap_free(struct lookupq_cap *c);

/*
 * Charges one fresh lookup to sender (NULL or "": none) and connection
 * (0: none). When refused, *log_it says whether this sender's refusal is
 * the first of its log interval (the caller logs it then, and only then).
 */
enum lookupq_cap_result lookupq_cap_take(struct lookupq_cap *c, const char *sender, uint64_t conn,
                                         int64_t now, bool *log_it);
/* Returns a charge lookupq_cap_take made (same sender and conn). */
void lookupq_cap_give(struct lookupq_cap *c, const char *sender, uint64_t conn, int64_t now);
/* Lookups in flight charged to sender, or (sender NULL) to conn. */
unsigned lookupq_cap_held(const struct lookupq_cap *c, const char *sender, uint64_t conn);
/* Entries kept (tests: memory stays bounded by what is in flight). */
size_t lookupq_cap_entries(const struct lookupq_cap *c);

#endif
