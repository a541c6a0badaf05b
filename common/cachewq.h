/*
 * cachewq - the shared cache's write-behind queue: rows a thread has learnt
 * reach the SQLite file from one writer thread of their own, so that no
 * lookup or probe worker waits in SQLite's busy wait.
 *
 * SYNOPSIS
 *	#include "cachewq.h"
 *
 *	struct cachewq *q = cachewq_open(cache, max, "lookups", &err);
 *	cachewq_put_row(q, &entry);          a copy is queued; never waits
 *	cachewq_put_mx(q, &mxset);
 *	cachewq_put_probe(q, &probecache_row);
 *	cachewq_flush(q, &deadline);         waits until written (tests, ctl)
 *	cachewq_stats(q, &st);
 *	cachewq_close(q, drain_ms);          drains, then stops the writer
 *
 * DESCRIPTION
 *	A worker that has learnt a fact (a policy row, an MX set, a probe
 *	row) publishes it to memory and wakes its waiters itself, then hands
 *	the write to this queue and goes on to the next job. Under a cache
 *	file locked by another process (sqlite3, a backup, mtasts-ctl) the
 *	one writer thread waits, not the workers the recipients need (issue
 *	19, N3: 255 workers parked behind one lock).
 *
 *	Writes coalesce per key (a domain's row, a domain's MX set, a probe
 *	of host, address and port): a newer write of a key still queued
 *	replaces the older one in place, so a key is written at most once per
 *	turn and the queue holds at most one entry per key. The queue holds
 *	at most max entries (cache_write_queue_max); a new key beyond that
 *	drops the oldest entry, counted, and a line in the log (at most one
 *	every CACHEWQ_LOG_INTERVAL_S seconds) says how many were not stored
 *	and names the first of them: nothing is lost silently.
 *
 *	The writer takes entries oldest first. A write refused because the
 *	file is locked (CACHE_BUSY, after the cache's busy_timeout_ms) goes
 *	back to the head, unless a newer write of its key arrived meanwhile,
 *	and is tried again (a line in the log at most once an interval says
 *	how many wait); any other failure is logged with its key and dropped,
 *	as a direct write would have been. CACHE_STALE (the file holds a
 *	later row, another process's) is no failure: that row stays, and
 *	reaches memory through the data version (cachecopy.h).
 *
 *	Semantics of the shared cache stay: each write is the same single
 *	statement as before (cache_put, cache_put_mx, probecache_put), so
 *	another process sees a row once it is written, and we see theirs.
 *	Between the moment a worker learnt a row and its write, only this
 *	process knows it (in memory); a reader in another process may look
 *	the domain up again meanwhile, as it would before the write anyway.
 *
 *	Threads: put and stats from any thread; one writer thread per queue,
 *	started by cachewq_open and stopped by cachewq_close, the only
 *	thread that writes these rows to the cache (the cache's own writes'
 *	mutex orders it with any other writer of the same struct cache).
 *	One mutex guards the queue; it is never held during a write.
 *
 *	Shutdown: cachewq_close lets the writer go on until the queue is
 *	empty or drain_ms have passed (plus at most the one write in
 *	progress, itself bounded by busy_timeout_ms); what is left is logged
 *	(how many, the first key) and freed. The caller closes the cache
 *	after.
 *
 * DIAGNOSTICS
 *	cachewq_open returns NULL with a reason (memory, thread). A put that
 *	finds no memory for the copy logs what was not stored and counts it
 *	as dropped.
 */
#ifndef MTS_CACHEWQ_H
#define MTS_CACHEWQ_H

#include <stdint.h>
#include <stddef.h>
#include <time.h>

#include "cache.h"
#include "err.h"
#include "probecache.h"

#define CACHEWQ_LOG_INTERVAL_S 10

struct cachewq;

struct cachewq_stats {
    uint64_t queued;	/* puts accepted (each coalesced one too) */
    uint64_t coalesced;	/* writes replaced by a newer one of their key, not written */
    uint64_t written;	/* writes the cache took (CACHE_OK or CACHE_STALE) */
    uint64_t retried;	/* writes refused as busy and queued again */
    uint64_t dropped;	/* not stored: the queue was full, no memory, or shutdown */
    uint64_t failed;	/* refused by the cache for another reason */
    size_t waiting;	/* entries queued now (a write in progress not counted) */
};

/*
 * A queue writing to c (which must outlive it) with at most max entries
 * (>= 1); label names it in the log ("lookups", "probes").
 */
struct cachewq *cachewq_open(struct cache *c, size_t max, const char *label, struct mts_err *err);

/* Drains for at most drain_ms (see DESCRIPTION) and frees. Safe with NULL. */
void cachewq_close(struct cachewq *q, int64_t drain_ms);

/* Queue a copy of the row, the MX set, the probe row (the caller keeps its own). */
void cachewq_put_row(struct cachewq *q, const struct cache_entry *e);
void cachewq_put_mx(struct cachewq *q, const struct cache_mxset *m);
void cachewq_put_probe(struct cachewq *q, const struct probecache_row *r);

/*
 * Waits until nothing is queued or being written, or deadline
 * (CLOCK_MONOTONIC; NULL: no bound) passes; returns whether it emptied.
 */
bool cachewq_flush(struct cachewq *q, const struct timespec *deadline);

void cachewq_stats(struct cachewq *q, struct cachewq_stats *out);

#endif
