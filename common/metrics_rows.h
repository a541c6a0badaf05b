/*
 * NAME
 *	metrics_rows - the shared cache's rows per table, for the metrics
 *	endpoint, counted by the scrape itself at most once an interval.
 *
 * SYNOPSIS
 *	metrics_rows_configure(cfg->cache_db, cfg->metrics_cache_rows_interval);
 *	metrics_rows_render(f);			from metrics_render
 *
 * DESCRIPTION
 *	A scrape that finds the counts older than the interval opens (once,
 *	and again after the path changed or a read failed) a read-only SQLite
 *	connection of its own and runs one SELECT count(*) per table; the
 *	scrapes in between serve the counts read last. No RCPT's connection,
 *	no lock an RCPT takes: only this module's own mutex, which nothing but
 *	scrapes and metrics_rows_configure (start, reload) take. With WAL a
 *	reader never blocks a writer; a busy file waits at most
 *	METRICS_ROWS_BUSY_MS and the counts read before stand.
 *
 *	mtasts_cache_rows{table="..."} has one sample per table of the
 *	schema (domains, mx_sets, mx_probes, tls_probes, verdict_stats) that
 *	the file holds; none before the first read succeeds (a file not yet
 *	created, a cache off). mtasts_cache_rows_age_seconds says how old the
 *	counts are.
 */
#ifndef MTS_METRICS_ROWS_H
#define MTS_METRICS_ROWS_H

#include <stdint.h>
#include <stdio.h>

#define METRICS_ROWS_BUSY_MS 200

/* The cache file ("" : none) and the interval in seconds; at start and at
 * each reload. */
void metrics_rows_configure(const char *cache_db, int64_t interval_s);

/* The rows' text (exposition format), onto f; reads the file when due. */
void metrics_rows_render(FILE *f);

#endif
