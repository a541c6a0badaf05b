/*
 * runtime - everything built from one configuration file: the config, the
 * parsed rules, the reply codes and the discovery engine, ready for
 * decide_recipient() (rt->dctx). A connection
 * holds a reference from connect to close; a reload (SIGHUP) builds a new
 * runtime and swaps it in, and the old one goes when its last connection
 * closes. The discovery engine (threads, cache connection, in-memory state)
 * is shared by the runtimes of successive reloads (runtime_rebuild), so
 * connections left open across reloads pin only a configuration and its
 * rules. A configuration that does not load leaves the old one in place.
 */
#ifndef MTS_RUNTIME_H
#define MTS_RUNTIME_H

#include <stdbool.h>

#include "config.h"
#include "decide.h"
#include "discover.h"
#include "probes.h"
#include "err.h"
#include "maproute.h"
#include "verdict.h"

struct runtime {
    int refs;
    struct config *cfg;
    struct rules rules;
    struct discover *discover;	/* NULL when built only to check */
    struct probes *probes;	/* NULL unless mx_probes = yes (and discover) */
    struct decide_ctx dctx;	/* cfg, rules, discover and the reply codes */
    struct maproute map_routes;	/* transports using our policy map (dctx.v) */
    struct mts_err map_routes_err;	/* why postconf could not tell; "" if it did */
};

/*
 * Loads and checks path (NULL: the default file if it exists, else the
 * built-in defaults). With start_discovery, also opens the cache and starts
 * the lookup threads. Errors name the file, line and option.
 */
int runtime_build(const char *path, bool start_discovery, struct runtime **out,
                  struct mts_err *err);

/*
 * For a reload: runtime_build(path, true, ...), but sharing prev's
 * discovery engine (its threads, cache connection, memory and resolver)
 * when the options it was built with are unchanged. Only the options in
 * runtime.c's list (rules, replies, scope, routes, logging, the map's
 * limits...) are applied without it; when any other option changed (the
 * cache file, the resolver, timeouts, workers, refresh timings), a new
 * engine is built once and the log names the options that made it so.
 */
int runtime_rebuild(const char *path, const struct runtime *prev, struct runtime **out,
                    struct mts_err *err);

/* The runtime in force, with a reference for the caller; NULL before any. */
struct runtime *runtime_current(void);
/* Drops a reference; the last one tears the runtime down on a thread of its
 * own, so that a libmilter thread never waits for lookups in flight. */
void runtime_unref(struct runtime *rt);
/* The same, but the teardown happens before it returns: for a process
 * about to exit (mtasts-ctl), which must not leave it half done. */
void runtime_unref_wait(struct runtime *rt);

/* Makes rt the runtime in force (taking over the caller's reference). */
void runtime_install(struct runtime *rt);

#endif
