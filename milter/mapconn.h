/*
 * mapconn - the policy map's connections, as its event loops hold them:
 * the types mapserver.c (the loops, the listener) and mapconn.c (one
 * connection's I/O) share. Not an interface for anyone else: see
 * mapserver.h.
 *
 * SYNOPSIS
 *	mapconn_add(lp, fd, id, evict);      a new connection, on its loop
 *	mapconn_read(lp, slot);              EPOLLIN
 *	mapconn_write(lp, slot);             EPOLLOUT
 *	mapconn_deliver(lp, job);            an answer back from mappool
 *	mapconn_watch(lp, slot);             epoll follows its state
 *	mapconn_sweep(lp);                   timeouts, once a second
 *	mapconn_close(lp, slot);
 *
 * DESCRIPTION
 *	A connection is one slot of its loop's table, touched only by the
 *	loop thread that owns it. It reads netstrings (socketmap.h), answers
 *	at once what ms->at_once can, and hands the first request it cannot
 *	to the answer threads (C_BUSY) until the answer comes back; answers
 *	keep their order. mapconn_add with evict closes the loop's connection
 *	idle the longest first (the table is full), or the new one when none
 *	is idle. mapconn_sweep closes connections past their timeouts and
 *	publishes the oldest idle one's age (loop.oldest_idle) for loop 0.
 *
 * DIAGNOSTICS
 *	Each closes a connection it cannot serve, with a log line.
 */
#ifndef MTS_MAPCONN_H
#define MTS_MAPCONN_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mappool.h"
#include "mapserver.h"
#include "mapsock.h"
#include "netstring.h"
#include "socketmap.h"

#define INBUF_SIZE (SOCKMAP_MAX_REQUEST + NETSTRING_FRAMING)
#define REPLY_SIZE MAPPOOL_REPLY_SIZE
/* Answers for one connection gathered into one write: up to OBUF_BATCH
 * bytes, then one more reply of any size. */
#define OBUF_BATCH 16384
#define OBUF_SIZE (OBUF_BATCH + REPLY_SIZE + NETSTRING_FRAMING)
/* epoll data of the two descriptors that are not connections (slots are below) */
#define EV_WAKE UINT32_MAX
#define EV_LISTEN (UINT32_MAX - 1)
#define EV_BATCH 64
/* Loop threads: one a CPU, at most this many. */
#define MAX_LOOPS 4

enum conn_state { C_READ, C_BUSY, C_WRITE };

struct mapconn {
    int fd;			/* -1: the slot is free */
    unsigned long id;		/* for logs, and to match a job to its connection */
    enum conn_state st;
    bool gone;			/* closed while an answer was pending */
    char *in;
    size_t in_len;
    char *out;
    size_t out_len, out_off;
    int64_t since;		/* ms: idle since, request begun, or write begun */
    uint32_t ev;		/* what epoll watches for, as last set */
};

/* A new connection on its way from loop 0 to the loop that serves it. */
struct maphandoff {
    struct maphandoff *next;
    bool evict;			/* the table is full: the loop's oldest idle one gives way */
    int fd;
    unsigned long id;
};

struct mapserver;

/*
 * One event loop thread and the connections it serves. Several (one a
 * CPU) so that many connections in flight are answered on every CPU:
 * with one, its send(2)s, each waking a client, were the bottleneck.
 */
struct maploop {
    struct mapserver *ms;
    int idx;
    int wake[2];
    char *reply;		/* answers given at once */
    char *obuf;			/* framed answers, OBUF_SIZE */
    struct mapconn *conns;		/* lim.max_clients slots */
    int nconns;
    int ep;			/* epoll: registered once, changed when a state changes */
    int64_t swept;		/* ms: the last sweep for timeouts */
    int64_t oldest_idle;	/* ms: since of its oldest idle connection, INT64_MAX:
                                 * none (atomic; a hint for loop 0, see accept_all) */
    int64_t now;		/* ms: when this pass of the loop began (timeouts are seconds) */
    pthread_t thread;
    bool started;
    int open;			/* connections given to it and not closed (atomic) */

    /* under ms->mu */
    struct mapjob *done;
    struct maphandoff *incoming;
};

struct mapserver {
    struct mapsock ls;		/* the listener, loop 0's */
    struct mapserver_limits lim;
    mapserver_answer_fn fn;
    mapserver_at_once_fn at_once;
    void *arg;
    struct mappool *pool;
    struct maploop loops[MAX_LOOPS];
    int nloops;
    int open;			/* connections open, all loops (atomic) */

    /* loop 0's own */
    unsigned long next_id;
    int64_t full_logged;

    /* shared, under mu */
    pthread_mutex_t mu;
    bool stop;
};

void mapconn_add(struct maploop *lp, int fd, unsigned long id, bool evict);
void mapconn_read(struct maploop *lp, int slot);
void mapconn_write(struct maploop *lp, int slot);
void mapconn_deliver(struct maploop *lp, struct mapjob *j);
void mapconn_watch(struct maploop *lp, int slot);
void mapconn_sweep(struct maploop *lp);
void mapconn_close(struct maploop *lp, int slot);

#endif
