/*
 * runtime - everything built from one configuration file: the config, the
 * parsed rules, the reply codes and the discovery engine. A connection
 * holds a reference from connect to close; a reload (SIGHUP) builds a new
 * runtime and swaps it in, and the old one goes when its last connection
 * closes. A configuration that does not load leaves the old one in place.
 */
#ifndef MTS_RUNTIME_H
#define MTS_RUNTIME_H

#include <stdbool.h>

#include "config.h"
#include "discover.h"
#include "err.h"
#include "reply.h"
#include "verdict.h"

struct runtime {
    int refs;
    struct config *cfg;
    struct verdict_rules rules;
    struct reply_code defer, reject;
    struct discover *discover;	/* NULL when built only to check */
    struct verdict_ctx vctx;
};

/*
 * Loads and checks path (NULL: the default file if it exists, else the
 * built-in defaults). With start_discovery, also opens the cache and starts
 * the lookup threads. Errors name the file, line and option.
 */
int runtime_build(const char *path, bool start_discovery, struct runtime **out,
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

/*
 * The decisions the milter and `mtasts-ctl explain` share, so that explain
 * says what the milter does.
 */
/* Does act_on cover this session (auth: authenticated user or NULL)? */
bool runtime_in_scope(const struct config *cfg, const char *auth, bool non_smtpd,
                      const char *daemon);
bool runtime_is_local_domain(const struct config *cfg, const char *domain);
/* The action for a recipient whose address cannot be read. */
enum verdict_action runtime_unreadable_action(const struct runtime *rt, const char *sender,
                                              const char *auth);
enum verdict_action runtime_internal_error_action(const struct config *cfg);
/* The checked SMTP reply for a deferral or rejection with this reason. */
void runtime_reply(const struct runtime *rt, enum verdict_action a, const char *reason,
                   struct reply *out);

#endif
