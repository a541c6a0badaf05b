/*
 * lookupq - lanes of the lookup queue and per-sender / per-connection
 * caps; see lookupq.h. No locks, no I/O: discover.c holds its mutex.
 */
#include "lookupq.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"
#include "metrics_now.h"

/* ------------------------------------------------------------ lanes */

static const enum lookupq_lane recipient_lanes[] = {LOOKUPQ_WAITED, LOOKUPQ_ABANDONED};
static const enum lookupq_lane refresh_lanes[] = {LOOKUPQ_REFRESH};

/* The lane's depth and head for a scrape (metrics_now.h). */
static void
publish(const struct lookupq *q, int l)
{
    const struct lookupq_item *h = q->lane[l].head;

    if (q->publish)
        metrics_now_queue((enum metrics_queue)(METRICS_Q_LOOKUP_WAITED + l), q->lane[l].n,
                          h != NULL ? h->since_us : 0);
}

static void
unlink_item(struct lookupq *q, struct lookupq_item *it)
{
    int l = it->lane - 1;

    if (it->prev != NULL)
        it->prev->next = it->next;
    else
        q->lane[l].head = it->next;
    if (it->next != NULL)
        it->next->prev = it->prev;
    else
        q->lane[l].tail = it->prev;
    q->lane[l].n--;
    it->prev = it->next = NULL;
    it->lane = 0;
    publish(q, l);
}

void
lookupq_push(struct lookupq *q, struct lookupq_item *it, enum lookupq_lane lane)
{
    if (it->lane != 0)
        unlink_item(q, it);	/* a move: its first enqueue time stays */
    else if (q->publish)
        it->since_us = metrics_clock_us();
    it->next = NULL;
    it->prev = q->lane[lane].tail;
    if (it->prev != NULL)
        it->prev->next = it;
    else
        q->lane[lane].head = it;
    q->lane[lane].tail = it;
    q->lane[lane].n++;
    it->lane = (int)lane + 1;
    publish(q, (int)lane);
}

bool
lookupq_move(struct lookupq *q, struct lookupq_item *it, enum lookupq_lane lane)
{
    if (it->lane == 0)
        return false;
    if (it->lane != (int)lane + 1)
        lookupq_push(q, it, lane);
    return true;
}

static const enum lookupq_lane *
lanes_of(enum lookupq_server who, size_t *n)
{
    if (who == LOOKUPQ_FOR_REFRESH) {
        *n = sizeof(refresh_lanes) / sizeof(refresh_lanes[0]);
        return refresh_lanes;
    }
    *n = sizeof(recipient_lanes) / sizeof(recipient_lanes[0]);
    return recipient_lanes;
}

struct lookupq_item *
lookupq_pop(struct lookupq *q, enum lookupq_server who)
{
    size_t n;
    const enum lookupq_lane *lanes = lanes_of(who, &n);

    for (size_t i = 0; i < n; i++) {
        struct lookupq_item *it = q->lane[lanes[i]].head;

        if (it != NULL) {
            unlink_item(q, it);
            return it;
        }
    }
    return NULL;
}

size_t
lookupq_pending(const struct lookupq *q, enum lookupq_server who)
{
    size_t n, sum = 0;
    const enum lookupq_lane *lanes = lanes_of(who, &n);

    for (size_t i = 0; i < n; i++)
        sum += q->lane[lanes[i]].n;
    return sum;
}

size_t
lookupq_total(const struct lookupq *q)
{
    size_t sum = 0;

    for (int l = 0; l < LOOKUPQ_LANES; l++)
        sum += q->lane[l].n;
    return sum;
}

int
lookupq_lane_of(const struct lookupq_item *it)
{
    return it->lane - 1;
}

/* ------------------------------------------------------------ caps */

#define BUCKETS 1024

/* A sender or a connection: what it holds in flight, when it was last
 * reported as refused. */
struct holder {
    struct holder *next;
    bool is_conn;
    uint64_t conn;
    int64_t reported_at;	/* 0: never */
    unsigned held;
    char sender[LOOKUPQ_CAP_SENDER_MAX + 1];
};

struct lookupq_cap {
    unsigned per_sender, per_conn;
    int64_t log_interval;
    size_t entries;
    struct holder *bucket[BUCKETS];
};

struct lookupq_cap *
lookupq_cap_new(unsigned per_sender, unsigned per_connection, int64_t log_interval_s)
{
    struct lookupq_cap *c = calloc(1, sizeof(*c));

    if (c == NULL)
        return NULL;
    c->per_sender = per_sender;
    c->per_conn = per_connection;
    c->log_interval = log_interval_s;
    return c;
}

void
lookupq_cap_free(struct lookupq_cap *c)
{
    if (c == NULL)
        return;
    for (size_t b = 0; b < BUCKETS; b++) {
        struct holder *h = c->bucket[b], *next;

        for (; h != NULL; h = next) {
            next = h->next;
            free(h);
        }
    }
    free(c);
}

/* FNV-1a over the (cut) key. */
static size_t
bucket_of(bool is_conn, const char *sender, uint64_t conn)
{
    uint64_t x = 1469598103934665603ULL;

    if (is_conn) {
        for (int i = 0; i < 8; i++) {
            x ^= (conn >> (8 * i)) & 0xff;
            x *= 1099511628211ULL;
        }
        x ^= 0x5a;
    } else {
        for (size_t i = 0; sender[i] != '\0' && i < LOOKUPQ_CAP_SENDER_MAX; i++) {
            x ^= (unsigned char)sender[i];
            x *= 1099511628211ULL;
        }
    }
    return (size_t)(x % BUCKETS);
}

static bool
same(const struct holder *h, bool is_conn, const char *sender, uint64_t conn)
{
    if (h->is_conn != is_conn)
        return false;
    return is_conn ? h->conn == conn : strncmp(h->sender, sender, LOOKUPQ_CAP_SENDER_MAX) == 0;
}

/* An entry that holds nothing and has no recent report is dropped. */
static bool
idle(const struct lookupq_cap *c, const struct holder *h, int64_t now)
{
    return h->held == 0 && (h->reported_at == 0 || now - h->reported_at >= c->log_interval);
}

/* Drops the idle entries of a bucket, so memory follows what is in flight
 * (and recently refused). Never while the caller holds an entry of it. */
static void
prune(struct lookupq_cap *c, size_t b, int64_t now)
{
    struct holder **pp = &c->bucket[b], *h;

    while ((h = *pp) != NULL) {
        if (idle(c, h, now)) {
            *pp = h->next;
            free(h);
            c->entries--;
        } else {
            pp = &h->next;
        }
    }
}

/* The entry of a sender or connection; create: make one when missing. */
static struct holder *
find(struct lookupq_cap *c, bool is_conn, const char *sender, uint64_t conn, bool create)
{
    size_t b = bucket_of(is_conn, sender, conn);
    struct holder *h;

    for (h = c->bucket[b]; h != NULL; h = h->next)
        if (same(h, is_conn, sender, conn))
            return h;
    if (!create || (h = calloc(1, sizeof(*h))) == NULL)
        return NULL;
    h->is_conn = is_conn;
    h->conn = conn;
    if (!is_conn)
        snprintf(h->sender, sizeof(h->sender), "%.*s", LOOKUPQ_CAP_SENDER_MAX, sender);
    h->next = c->bucket[b];
    c->bucket[b] = h;
    c->entries++;
    return h;
}

static void
forget_if_idle(struct lookupq_cap *c, struct holder *h, int64_t now)
{
    size_t b = bucket_of(h->is_conn, h->sender, h->conn);

    if (!idle(c, h, now))
        return;
    for (struct holder **pp = &c->bucket[b]; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == h) {
            *pp = h->next;
            free(h);
            c->entries--;
            return;
        }
    }
}

enum lookupq_cap_result
lookupq_cap_take(struct lookupq_cap *c, const char *sender, uint64_t conn, int64_t now,
                 bool *log_it)
{
    bool use_sender = c->per_sender > 0 && sender != NULL && sender[0] != '\0';
    bool use_conn = c->per_conn > 0 && conn != 0;
    struct holder *s = NULL, *k = NULL;

    *log_it = false;
    /* Pruned first: from here on no entry is freed under s or k. */
    if (use_sender)
        prune(c, bucket_of(false, sender, 0), now);
    if (use_conn)
        prune(c, bucket_of(true, "", conn), now);
    if (use_sender && (s = find(c, false, sender, 0, true)) == NULL)
        return LOOKUPQ_CAP_NOMEM;
    if (use_conn && (k = find(c, true, "", conn, true)) == NULL) {
        if (s != NULL)
            forget_if_idle(c, s, now);
        return LOOKUPQ_CAP_NOMEM;
    }
    if (s != NULL && s->held >= c->per_sender) {
        /* Reported once an interval per sender, not once a recipient. */
        if (s->reported_at == 0 || now - s->reported_at >= c->log_interval) {
            s->reported_at = now;
            *log_it = true;
        }
        if (k != NULL)
            forget_if_idle(c, k, now);
        return LOOKUPQ_CAP_SENDER;
    }
    if (k != NULL && k->held >= c->per_conn) {
        if (k->reported_at == 0 || now - k->reported_at >= c->log_interval) {
            k->reported_at = now;
            *log_it = true;
        }
        if (s != NULL)
            forget_if_idle(c, s, now);
        return LOOKUPQ_CAP_CONNECTION;
    }
    if (s != NULL)
        s->held++;
    if (k != NULL)
        k->held++;
    return LOOKUPQ_CAP_OK;
}

void
lookupq_cap_give(struct lookupq_cap *c, const char *sender, uint64_t conn, int64_t now)
{
    struct holder *h;

    if (c->per_sender > 0 && sender != NULL && sender[0] != '\0' &&
        (h = find(c, false, sender, 0, false)) != NULL && h->held > 0) {
        h->held--;
        forget_if_idle(c, h, now);
    }
    if (c->per_conn > 0 && conn != 0 && (h = find(c, true, "", conn, false)) != NULL &&
        h->held > 0) {
        h->held--;
        forget_if_idle(c, h, now);
    }
}

unsigned
lookupq_cap_held(const struct lookupq_cap *c, const char *sender, uint64_t conn)
{
    bool is_conn = sender == NULL;
    size_t b = bucket_of(is_conn, is_conn ? "" : sender, conn);

    for (const struct holder *h = c->bucket[b]; h != NULL; h = h->next)
        if (same(h, is_conn, is_conn ? "" : sender, conn))
            return h->held;
    return 0;
}

size_t
lookupq_cap_entries(const struct lookupq_cap *c)
{
    return c->entries;
}
