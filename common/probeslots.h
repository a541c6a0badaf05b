/*
 * probeslots - the probe slots of the whole process: how many probes run
 * at once, in all and per destination network, whatever engine
 * (probes.h) runs them.
 *
 * SYNOPSIS
 *	probeslots_configure(cfg->probe_concurrency, cfg->probe_network_concurrency);
 *	probeslots_watch(&w);                 w.wake(w.arg, key) when a slot frees
 *	if (probeslots_take("192.0.2/24") == PROBESLOTS_OK) {
 *	    ... probe ...; probeslots_give("192.0.2/24"); }
 *	probeslots_notify("192.0.2/24", &w);  after give, without the engine's lock
 *	probeslots_unwatch(&w);
 *
 * DESCRIPTION
 *	A reload whose probe options changed opens a second engine while the
 *	first one's probes still run (for up to probe_timeout_ms); each
 *	engine's own counters would let the two add up. The slots are
 *	therefore counted here, once for the process, under a mutex of their
 *	own, and the bounds are the newest configuration's
 *	(probeslots_configure, called by probes_open): probeslots_take
 *	refuses a slot while the process runs total probes, or per_network
 *	probes to that network (a /24 or /64 key, probes_job.c), also when a
 *	new, lower bound finds more running than it allows (they end, and
 *	no new one starts until the count is below it).
 *
 *	An engine whose job was refused parks it (probes_job.c) and is woken
 *	through its watcher when a slot frees anywhere in the process: the
 *	engine that gave the slot calls probeslots_notify, which calls every
 *	other watcher's wake with the network's key (its own parked jobs it
 *	unparks itself). notify must be called without any engine's lock
 *	held, after the give: wake takes its engine's lock, and a job parked
 *	under that lock after a refused take is then always seen.
 *
 * DIAGNOSTICS
 *	probeslots_take says which bound refused: the network's (the job
 *	waits for that network) or the total (it waits for any slot); also
 *	PROBESLOTS_ALL_BUSY when memory for a new network runs out.
 */
#ifndef MTS_PROBESLOTS_H
#define MTS_PROBESLOTS_H

#include <stdbool.h>

struct probeslots_watcher {
    void (*wake)(void *arg, const char *key);
    void *arg;
    struct probeslots_watcher *next; /* probeslots' own */
};

enum probeslots_take {
    PROBESLOTS_OK,
    PROBESLOTS_NETWORK_BUSY, /* per_network probes run to the key's network */
    PROBESLOTS_ALL_BUSY      /* total probes run (or memory ran out) */
};

void probeslots_configure(int total, int per_network);
enum probeslots_take probeslots_take(const char *key);
void probeslots_give(const char *key);
void probeslots_watch(struct probeslots_watcher *w);
void probeslots_unwatch(struct probeslots_watcher *w);
void probeslots_notify(const char *key, const struct probeslots_watcher *self);

/* Probes running in the process, and to the busiest network (tests). */
void probeslots_counts(int *running, int *network_max);

#endif
