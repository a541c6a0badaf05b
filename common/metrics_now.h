/*
 * NAME
 *	metrics_now - the gauges of what is happening now: queue depths and
 *	the oldest wait, the resolver's state, the memory copy's entries, the
 *	recipients of the last minute and hour, the slowest recent lookup.
 *
 * SYNOPSIS
 *	metrics_now_queue(METRICS_Q_LOOKUP_WAITED, depth, head_since_us);
 *	metrics_now_resolver(answered);  metrics_now_resolver_renewed();
 *	metrics_now_memory_entries(n);
 *	metrics_now_rcpt(judged, effect);	from metrics_rcpt
 *	metrics_now_lookup(usec);		from metrics_lookup
 *	metrics_now_render(f);			from metrics_render
 *
 * DESCRIPTION
 *	Like metrics.h, every value is a relaxed atomic written where it
 *	changes, by the thread that changes it, under whatever lock that
 *	thread already holds; a scrape only loads them, so it never takes a
 *	lock an RCPT waits for, nor walks a queue or a table.
 *
 *	Queues. The owner of a queue (discover's lanes under d->mu, the probe
 *	queue under p->mu) publishes, after each change, its depth and the
 *	time (metrics_clock_us) its head was first queued; the oldest wait is
 *	the scrape's now minus that time (0 when empty). A job moved from lane
 *	to lane keeps its first enqueue time. With two live instances (a
 *	reload's old one draining) the last to change wins.
 *
 *	Resolver. After each DNS lookup (dns.c) answered says whether it got
 *	an answer (NOERROR, NXDOMAIN, NODATA, bogus) or not (SERVFAIL,
 *	timeout, error). The state is: unknown (no lookup yet), ok (the last
 *	lookup was answered), degraded (the last 1 to 4 were not), down (the
 *	last METRICS_NOW_DOWN_AFTER or more were not); renewed overrides ok
 *	and degraded for METRICS_NOW_RENEWED_S seconds after libunbound's
 *	context was replaced for a backed-off forwarder (dns.h).
 *
 *	Recent recipients. A ring of METRICS_NOW_RING_S one-second slots on
 *	CLOCK_MONOTONIC; each counter word packs its second (high 32 bits)
 *	and its count (low 32), added with a compare-and-swap, so a slot
 *	reused after an hour restarts at exactly 1 and no add is lost. The
 *	last minute is the sum of the slots of the last 60 seconds (this
 *	second included), the last hour of the last 3600: exact to the
 *	second. Recipients seen (every RCPT decided, in scope or not) and
 *	recipients judged by action (what was done) are counted.
 *
 *	Slowest lookup. A ring of 60 one-minute slots, each the longest
 *	status lookup of its minute (packed minute and milliseconds, raised
 *	with a compare-and-swap); the gauge is the longest of the last hour.
 *	Only the duration is exported: a domain is never a label.
 */
#ifndef MTS_METRICS_NOW_H
#define MTS_METRICS_NOW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

enum metrics_queue {
    METRICS_Q_LOOKUP_WAITED,	/* lookupq.h lanes */
    METRICS_Q_LOOKUP_ABANDONED,
    METRICS_Q_LOOKUP_REFRESH,
    METRICS_Q_PROBE_FIRST,	/* probes.c lanes */
    METRICS_Q_PROBE_REFRESH,
    METRICS_QUEUES
};

enum metrics_resolver {
    METRICS_RESOLVER_UNKNOWN,
    METRICS_RESOLVER_OK,
    METRICS_RESOLVER_DEGRADED,
    METRICS_RESOLVER_DOWN,
    METRICS_RESOLVER_RENEWED,
    METRICS_RESOLVER_STATES
};

#define METRICS_NOW_DOWN_AFTER 5
#define METRICS_NOW_RENEWED_S 60
#define METRICS_NOW_RING_S 3600

/* A queue's depth and its head's enqueue time (metrics_clock_us; 0: empty). */
void metrics_now_queue(enum metrics_queue q, size_t depth, int64_t head_since_us);

/* One DNS lookup answered or not; a resolver context renewed. */
void metrics_now_resolver(bool answered);
void metrics_now_resolver_renewed(void);
enum metrics_resolver metrics_now_resolver_state(void);

/* Domains held in memory (cachecopy.h). */
void metrics_now_memory_entries(size_t n);

/* One recipient decided: judged (in scope) with effect (enum decide_effect). */
void metrics_now_rcpt(bool judged, int effect);

/* One status lookup's duration. */
void metrics_now_lookup(int64_t usec);

/* The gauges' text (exposition format), onto f. */
void metrics_now_render(FILE *f);

#endif
