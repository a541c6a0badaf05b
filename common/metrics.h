/*
 * NAME
 *	metrics - the milter's counters, gauges and histograms, and their
 *	Prometheus text (exposition format 0.0.4).
 *
 * SYNOPSIS
 *	metrics_start();				at start: start time
 *	t0 = metrics_clock_us();  ...  metrics_rcpt(&decision, t0);	around decide
 *	metrics_reload(ok);  metrics_map(reply, usec);  metrics_fetch(ok, usec);
 *	metrics_lookup(status, usec);
 *	metrics_probe(grade, dane, usec);  metrics_cache_write_error();
 *	metrics_cache_healed();  metrics_memory(hit);  metrics_recheck(result);
 *	metrics_map_refused();
 *	metrics_render(&text, &len);			at a scrape; free(text)
 *
 * DESCRIPTION
 *	Every series is fixed: its labels are words of the project's enums
 *	(action, outcome, status, requirement, path kind, grade, ...), never
 *	a domain, an address or free text, so the number of series is
 *	bounded (mtasts_recipients_total, the widest, has at most
 *	5 * 4 * 6 * 6 * 4 * 2 = 5760; only those that moved are written).
 *
 *	A hook is one relaxed atomic add on a static array: no lock, no
 *	allocation, so an RCPT never waits for a scrape nor for another
 *	RCPT. A scrape reads the counters one by one (a histogram's count
 *	and buckets may be a hook apart; Prometheus tolerates that).
 *
 *	The path kind of a judged recipient says what authenticates the path
 *	to it, the best first: dane (DANE decided and verified), mta-sts (an
 *	enforce policy and the verdict passed), verified-tls (the MX hosts'
 *	certificates validate), tls (STARTTLS, not verified), none (nothing
 *	authenticates it: no probe result and no enforce policy, or no
 *	STARTTLS), unknown (the status or the probes could not be learnt).
 *
 *	Histograms have fixed buckets in seconds: RCPT waits and map answers
 *	0.001 .. 10, lookups, policy fetches and probes 0.01 .. 60.
 *
 *	The gauges of the present (queues, resolver, recent recipients) are
 *	metrics_now.h's, the cache's rows metrics_rows.h's; metrics_render
 *	writes theirs too.
 *
 * DIAGNOSTICS
 *	metrics_render returns -1 when memory runs out.
 */
#ifndef MTS_METRICS_H
#define MTS_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "nametab.h"

struct decision;

enum metrics_path {
    METRICS_PATH_DANE,
    METRICS_PATH_MTA_STS,
    METRICS_PATH_VERIFIED_TLS,
    METRICS_PATH_TLS,
    METRICS_PATH_NONE,
    METRICS_PATH_UNKNOWN
};
#define METRICS_NPATHS (METRICS_PATH_UNKNOWN + 1)

/* The path kinds' words (dane, mta-sts, ...), as metrics, the statistics
 * (stats.h) and mtasts-ctl spell them: the one table of them. */
extern const struct nametab metrics_path_names[];

/* Caps on work in flight, by kind (discover.h, probes.h, the map). */
enum metrics_cap {
    METRICS_CAP_PER_SENDER,
    METRICS_CAP_PER_CONNECTION,
    METRICS_CAP_MAP_LOOKUPS,
    METRICS_CAP_MAP_CONNECTION
};

/* Notes the start time (mtasts_start_time_seconds). */
void metrics_start(void);

/* CLOCK_MONOTONIC in microseconds, for the durations below. */
int64_t metrics_clock_us(void);

/* One decided recipient, whose RCPT began at t0_us (metrics_clock_us). */
void metrics_rcpt(const struct decision *d, int64_t t0_us);

/* The path kind of a decision (DESCRIPTION). */
enum metrics_path metrics_path_of(const struct decision *d);

/* A configuration reload: applied (ok) or refused. */
void metrics_reload(bool ok);

/* One policy map answer, by its kind (the reply's first word: OK, NOTFOUND,
 * TEMP, TIMEOUT, PERM), and how long it took. */
void metrics_map(const char *reply, size_t len, int64_t usec);

/* One status lookup (DNS, and the policy fetch when needed) ended with
 * status (enum status_kind), taking usec. */
void metrics_lookup(int status, int64_t usec);

/* One HTTPS policy fetch: ok, or failed, and how long it took. */
void metrics_fetch(bool ok, int64_t usec);

/* One MX host probed: its grade (enum tlsprobe_grade_word), its DANE
 * outcome (enum tlsa_dane), how long it took. */
void metrics_probe(int grade, int dane, int64_t usec);

/* A cap on work in flight refused work. */
void metrics_cap(enum metrics_cap kind);

/* A cache write that failed. */
void metrics_cache_write_error(void);

/* A corrupt cache file set aside and replaced (cache.h, cache_open_healing). */
void metrics_cache_healed(void);

/* A read of the memory copy of the cache (cachecopy.h): found or not. */
void metrics_memory(bool hit);

/* RFC 8461 §5: a re-check for a new policy before a permanent failure. */
enum metrics_recheck {
    METRICS_RECHECK_NEW_POLICY,	/* completed: a policy other than the cached one */
    METRICS_RECHECK_SAME,	/* completed: the cached policy stands */
    METRICS_RECHECK_INCOMPLETE,	/* DNS or the fetch did not complete: deferred */
    METRICS_RECHECK_NO_TIME	/* the RCPT's deadline had passed: deferred */
};
void metrics_recheck(enum metrics_recheck result);

/* A policy map client refused (map_max_clients, none idle to close). */
void metrics_map_refused(void);

/* The whole text (malloc'd, *len bytes, NUL-terminated); -1: out of memory. */
int metrics_render(char **text, size_t *len);

#endif
