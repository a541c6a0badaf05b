/*
 * NAME
 *	stats - verdict statistics aggregated in memory: counts per day (UTC),
 *	recipient domain, action, outcome, path kind, rule and dry run, in a
 *	bounded map, taken out whole to be written to the shared cache
 *	(cache_stats.h).
 *
 * SYNOPSIS
 *	struct stats *s = stats_new(max_keys);
 *	stats_key_of(&decision, now, &key);  stats_add(s, &key, 1);
 *	stats_take(s, &rows, &n);   ... write them ...   free(rows);
 *	stats_add(s, &rows[i].k, rows[i].count);	put back what was not written
 *	stats_dropped(s);  stats_free(s);
 *
 * DESCRIPTION
 *	A key's fields are words (the action is the decision's effect:
 *	untouched, tag, defer, reject, hold; the outcome pass, not-required,
 *	fail, unknown; the path kind of metrics_path_of), the domain as
 *	decided (normalised, at most STATS_DOMAIN_MAX bytes), the rule's
 *	place "FILE:LINE" (cut to STATS_RULE_MAX bytes) or "default" for the
 *	built-in one, and the day "YYYY-MM-DD" in UTC.
 *
 *	The map holds at most max_keys keys. A new key beyond that is counted
 *	under its overflow key: the same day, action, outcome, path kind and
 *	dry run, domain STATS_OVERFLOW and rule "" (at most 5 * 4 * 6 * 2
 *	per day). Overflow keys have STATS_OVERFLOW_KEYS places of their own
 *	beyond max_keys; when even those are full the count is only added to
 *	stats_dropped, so memory never grows past the bound.
 *
 *	Threads: every call takes the map's one mutex, held for a hash probe
 *	(add) or a pointer swap (take), never during a write.
 *
 * DIAGNOSTICS
 *	stats_new returns NULL when memory runs out; stats_take returns -1
 *	then and leaves the map as it was.
 */
#ifndef MTS_STATS_H
#define MTS_STATS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define STATS_DOMAIN_MAX 253
#define STATS_RULE_MAX 64
#define STATS_WORD_MAX 15
#define STATS_OVERFLOW "(overflow)"
#define STATS_OVERFLOW_KEYS 1024

struct decision;

struct stats_key {
    char day[11];			/* YYYY-MM-DD, UTC */
    char domain[STATS_DOMAIN_MAX + 1];
    char action[STATS_WORD_MAX + 1];
    char outcome[STATS_WORD_MAX + 1];
    char path[STATS_WORD_MAX + 1];
    char rule[STATS_RULE_MAX + 1];
    bool dry_run;
};

struct stats_row {
    struct stats_key k;
    uint64_t count;
};

struct stats;

/* A map of at most max_keys (>= 1) keys, plus the overflow keys. */
struct stats *stats_new(size_t max_keys);
void stats_free(struct stats *s);

/* The key of a decided recipient (DECIDE_IN_SCOPE) at time now. */
void stats_key_of(const struct decision *d, time_t now, struct stats_key *k);

/* Adds n to k's count (see DESCRIPTION for a full map). */
void stats_add(struct stats *s, const struct stats_key *k, uint64_t n);

/* Moves every row out (*rows malloc'd, NULL when none) and empties the map. */
int stats_take(struct stats *s, struct stats_row **rows, size_t *n);

/* Keys in the map now, and counts dropped since stats_new. */
size_t stats_keys(struct stats *s);
uint64_t stats_dropped(struct stats *s);

/* The day (YYYY-MM-DD, UTC) of t. */
void stats_day(time_t t, char day[11]);

#endif
