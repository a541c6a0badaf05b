/*
 * NAME
 *	metrics_fleet - the fleet link's health as gauges: off, up or down
 *	(backing off), since when it is down, when it is tried again, and the
 *	values read from Redis that were refused.
 *
 * SYNOPSIS
 *	metrics_fleet_link_open();		a configured link (fleet_link.c)
 *	metrics_fleet_link_down(was_down, retry_in_ms);   a failure
 *	metrics_fleet_link_up(was_down);	a success after a failure
 *	metrics_fleet_link_close(was_down);
 *	metrics_fleet_refused();		a value refused (fleet.c)
 *	metrics_fleet_render(f);		from metrics_render
 *
 * DESCRIPTION
 *	A process holds several links (discover's and the probes', each with
 *	a subscriber link; two instances during a reload): the state is off
 *	while none is configured, down while one or more is down (its breaker
 *	open or its connection lost), up otherwise, a link not yet used
 *	counting as up. The links count themselves in and out (relaxed
 *	atomics, under the link's own mutex): the scrape takes no lock.
 *
 *	Down since is the wall-clock second the first link went down (kept
 *	while any stays down); retry at is the wall-clock second of the latest
 *	back-off's end, so a scrape prints "retry in N s".
 *
 *	Refused values are those read from Redis that failed the codec's
 *	checks (bad HMAC, out of range, malformed): a counter.
 */
#ifndef MTS_METRICS_FLEET_H
#define MTS_METRICS_FLEET_H

#include <stdbool.h>
#include <stdio.h>

enum metrics_fleet_state {
    METRICS_FLEET_OFF,
    METRICS_FLEET_UP,
    METRICS_FLEET_DOWN,
    METRICS_FLEET_STATES
};

void metrics_fleet_link_open(void);
void metrics_fleet_link_down(bool was_down, int retry_in_ms);
void metrics_fleet_link_up(bool was_down);
void metrics_fleet_link_close(bool was_down);
void metrics_fleet_refused(void);
enum metrics_fleet_state metrics_fleet_state(void);

/* The gauges' text (exposition format), onto f. */
void metrics_fleet_render(FILE *f);

#endif
