/*
 * mappool - the policy map's answer threads: requests copied off the
 * event loops are answered here, and each answer goes back through a
 * callback (mapserver.c puts it on its loop's list and wakes the loop).
 *
 * SYNOPSIS
 *	struct mappool *p;
 *	mappool_start(&params, &p, &err);
 *	mappool_submit(p, job);        job->req, job->len filled; the pool
 *	                               fills job->reply and calls params.done
 *	mappool_stop(p);
 *
 * DESCRIPTION
 *	params.workers threads are always there; when all are busy a job gets
 *	a thread of its own, up to params.max_threads, which goes after
 *	MAPPOOL_LINGER_MS without work: a slow domain holds only the threads
 *	of the clients that asked for it, each for at most the answer
 *	function's own deadline.
 *
 *	Owner and locks: the pool is the map listener's (mapserver.c). Its
 *	own mutex guards the queue and the thread counts; params.done is
 *	called with no lock of the pool held, on an answer thread.
 *	mappool_stop wakes every thread, waits until each has finished its
 *	job (bounded by the answer's deadline) and left, and frees the jobs
 *	never taken.
 *
 * DIAGNOSTICS
 *	mappool_start returns -1 with a reason; mappool_submit returns -1
 *	when no thread is there to answer (the job stays queued until stop).
 */
#ifndef MTS_MAPPOOL_H
#define MTS_MAPPOOL_H

#include <stddef.h>

#include "err.h"
#include "socketmap.h"

#define MAPPOOL_LINGER_MS 30000
#define MAPPOOL_REPLY_SIZE (SOCKMAP_MAX_REPLY + 1)

/* One request on its way to an answer thread and back. */
struct mapjob {
    struct mapjob *next;
    int loop;			/* the caller's: where the answer goes */
    int slot;
    unsigned long id;		/* the connection's */
    char *req;			/* "NAME KEY", NUL-terminated */
    size_t len;
    char *reply;		/* MAPPOOL_REPLY_SIZE, or NULL when out of memory */
};

/* Answers req (len bytes) for connection conn into out. */
typedef void (*mappool_answer_fn)(const char *req, size_t len, unsigned long conn, char *out,
                                  size_t outsz, void *arg);
/* The job is answered: it belongs to the callee now. */
typedef void (*mappool_done_fn)(struct mapjob *j, void *arg);

struct mappool_params {
    int workers;		/* always there */
    int max_threads;		/* at most, busy or not */
    mappool_answer_fn answer;
    void *answer_arg;
    mappool_done_fn done;
    void *done_arg;
};

struct mappool;

int mappool_start(const struct mappool_params *p, struct mappool **out, struct mts_err *err);
int mappool_submit(struct mappool *p, struct mapjob *j);
/* Safe with NULL. */
void mappool_stop(struct mappool *p);
/* Safe with NULL. */
void mapjob_free(struct mapjob *j);

#endif
