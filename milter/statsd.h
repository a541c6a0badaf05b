/*
 * statsd - the milter's verdict statistics: each judged recipient counted
 * in memory (stats.h), the counts added to the shared cache's table
 * (cache_stats.h) by a thread of their own.
 *
 * SYNOPSIS
 *	statsd_start(cfg, &err);	after privileges are dropped
 *	statsd_rcpt(&decision);		each RCPT, after decide_recipient
 *	statsd_flush_soon();		at a reload
 *	statsd_stop();			at stop: a last write
 *
 * DESCRIPTION
 *	With stats = yes, statsd_start starts one thread that every
 *	stats_flush_interval takes the map's rows out, adds them to the table
 *	of cache_db through a connection of its own, then deletes the days
 *	older than stats_retention and, beyond stats_max_rows, the oldest
 *	days. A write refused (the file locked past cache_busy_timeout_ms,
 *	or anything else) puts the rows back into the map, to be tried at the
 *	next turn: a locked file delays the counts, it loses none (a full map
 *	counts them under its overflow keys, stats.h). The log says so at
 *	most once every STATSD_LOG_INTERVAL_S seconds.
 *
 *	statsd_rcpt counts only recipients in scope (DECIDE_IN_SCOPE): one
 *	hash probe under the map's mutex, no I/O; nothing when stats is off
 *	or not started. statsd_stop makes a last write (bounded by the busy
 *	timeout) and logs what could not be written.
 *
 *	The options are read at start only.
 *
 * DIAGNOSTICS
 *	statsd_start returns -1 with a reason (memory, thread).
 */
#ifndef MTS_STATSD_H
#define MTS_STATSD_H

#include "config.h"
#include "err.h"

#define STATSD_MAX_KEYS 100000
#define STATSD_LOG_INTERVAL_S 60

struct decision;

int statsd_start(const struct config *cfg, struct mts_err *err);
void statsd_rcpt(const struct decision *d);
void statsd_flush_soon(void);
void statsd_stop(void);

#endif
