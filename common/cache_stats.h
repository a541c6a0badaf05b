/*
 * NAME
 *	cache_stats - the verdict statistics table of the shared cache
 *	(verdict_stats, schema version 6): add counts, prune, read.
 *
 * SYNOPSIS
 *	#include "cache_stats.h"
 *
 *	enum cache_status cache_stats_add(c, rows, n, err);
 *	enum cache_status cache_stats_prune(c, oldest_day, max_rows, &deleted, err);
 *	enum cache_status cache_stats_list(c, since_day, fn, arg, err);
 *
 * DESCRIPTION
 *	One row per day (YYYY-MM-DD, UTC), recipient domain, action, outcome,
 *	path kind, rule and dry run, with its count (stats.h says what the
 *	fields hold). cache_stats_add adds the rows in one transaction, each
 *	by an upsert (count = count + excluded.count), so that several
 *	processes writing to one file add up and a refused transaction adds
 *	nothing (the caller keeps the rows and tries again).
 *
 *	cache_stats_prune deletes the days before oldest_day, then, while
 *	more than max_rows rows are left (0: no bound), the oldest days
 *	whole: a day is never kept in part.
 *
 *	cache_stats_list calls fn for each row of since_day or later
 *	("" for all), by day then domain; a row whose fields are too long
 *	or of the wrong type is skipped (read back as untrusted, cache.h).
 *
 * DIAGNOSTICS
 *	As cache.h: a cache_status and, unless CACHE_OK, a sentence in err.
 */
#ifndef MTS_CACHE_STATS_H
#define MTS_CACHE_STATS_H

#include <stddef.h>
#include <stdint.h>

#include "cache.h"
#include "err.h"
#include "stats.h"

enum cache_status cache_stats_add(struct cache *c, const struct stats_row *rows, size_t n,
                                  struct mts_err *err);
enum cache_status cache_stats_prune(struct cache *c, const char *oldest_day, uint64_t max_rows,
                                    uint64_t *deleted, struct mts_err *err);
enum cache_status cache_stats_list(struct cache *c, const char *since_day,
                                   void (*fn)(const struct stats_row *r, void *arg), void *arg,
                                   struct mts_err *err);

#endif
