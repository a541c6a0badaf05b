/*
 * cachecopy - what one process's recipients use, in memory: the cache rows
 * (status, policy, times) and the MX sets of the domains asked for, kept
 * fresh from the shared cache.
 *
 * SYNOPSIS
 *	#include "cachecopy.h"
 *
 *	struct cachecopy *h = cachecopy_new(cfg->memory_cache_domains, cache, &err);
 *	cachecopy_freshen(h);                       before each read
 *	uint32_t g = cachecopy_gen(h);              before reading the cache
 *	cachecopy_get_row(h, domain, now, &entry);  no policy_text
 *	cachecopy_put_row(h, &entry, g, now, SHARDMAP_ADD);
 *	cachecopy_get_mx(h, domain, &mxset);
 *	cachecopy_put_mx(h, &mxset, g, SHARDMAP_REPLACE);
 *	cachecopy_flush_used(h);                    by the refresh thread
 *	cachecopy_free(h);
 *
 * DESCRIPTION
 *	One shardmap map (shardmap.h) capped at cap domains with
 *	least-recently-used eviction; a domain's entry holds its cache row and
 *	its MX set, stored compactly: what domains have in common (a
 *	policy's mode and MX patterns, an MX set's hosts, with the domain's
 *	own name taken out) is kept once and shared. A read takes only the read lock of its
 *	shard: readers never wait for each other, nor for a database or DNS.
 *
 *	Freshness. The shared SQLite cache stays the truth; memory is a copy
 *	of rows read from it or written to it by this process. SQLite's
 *	PRAGMA data_version on this process's own connection changes when any
 *	other connection (another process: a milter, mtasts-ctl, the sqlite3
 *	shell) commits. cachecopy_freshen reads it at most once every
 *	CACHECOPY_RECHECK_MS, on the thread of the first read after that time
 *	(the others go on); when it moved, every entry is dropped at once (a
 *	new generation), and the next read of each domain goes to the
 *	database. So another process's write is seen by every read that
 *	starts CACHECOPY_RECHECK_MS after it commits (plus the time one
 *	statement may wait for the database lock). The interval is read on
 *	CLOCK_MONOTONIC_COARSE (cheap on every read), whose tick is the
 *	kernel's jiffy (4 ms at HZ=250). 10 ms, not less: the check is a
 *	read transaction (two fcntl locks and a statement, about 15 us of
 *	CPU), and at 1 ms it ran on every few warm recipients and was 3 % of
 *	the milter's user time in the warm benchmark; a policy that lives for
 *	days loses nothing in 10 ms.
 *
 *	Never stale past the RFC 8461 rules: a copy is only ever what the
 *	shared cache held, and it is judged at each read by the same rules as
 *	a row read from the database (refresh_status_from_row: a policy is
 *	never used beyond its max_age, a negative answer never beyond its
 *	expiry); the §5.1 checks and refetches still run on their schedule
 *	(discover queues them, the refresh thread finds due rows in the
 *	database). An MX set is never used past its DNS TTL.
 *
 *	Last use: a read records it in memory only; cachecopy_flush_used
 *	writes the batch to the database in one transaction (cache_touch_many),
 *	from the refresh thread, never from a recipient's thread.
 *
 * DIAGNOSTICS
 *	cachecopy_new returns NULL with a reason. A put that runs out of memory
 *	leaves the entry out (the next read goes to the database). A failed
 *	data_version read drops every entry, as a change would.
 */
#ifndef MTS_CACHECOPY_H
#define MTS_CACHECOPY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cache.h"
#include "err.h"
#include "shardmap.h"

#define CACHECOPY_RECHECK_MS 10

struct cachecopy;

/* cache: the connection whose data_version is watched (the caller's writer). */
struct cachecopy *cachecopy_new(size_t cap, struct cache *cache, struct mts_err *err);
void cachecopy_free(struct cachecopy *h);

void cachecopy_freshen(struct cachecopy *h);
uint32_t cachecopy_gen(struct cachecopy *h);

/* The row of domain (policy_text NULL), recording a use at now; free with cache_entry_free. */
bool cachecopy_get_row(struct cachecopy *h, const char *domain, int64_t now, struct cache_entry *e);
void cachecopy_put_row(struct cachecopy *h, const struct cache_entry *e, uint32_t gen, int64_t now,
                      enum shardmap_put_mode mode);

/* The MX set of domain (whatever its expiry, with its dnssec word); free with
 * cache_mxset_free. */
bool cachecopy_get_mx(struct cachecopy *h, const char *domain, struct cache_mxset *m);
void cachecopy_put_mx(struct cachecopy *h, const struct cache_mxset *m, uint32_t gen,
                     enum shardmap_put_mode mode);

/* Writes the last uses recorded since the previous call; returns how many. */
size_t cachecopy_flush_used(struct cachecopy *h);

/* Rows held in memory, and the distinct shared parts they point to (for tests). */
size_t cachecopy_count(struct cachecopy *h);
size_t cachecopy_shapes(struct cachecopy *h);

#endif
