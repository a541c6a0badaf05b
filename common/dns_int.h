/*
 * dns_int.h - what dns.c, dns_ctx.c and dns_health.c share: the resolver
 * object, its libunbound contexts and the health check. Not an interface
 * for anyone else (that is dns.h).
 */
#ifndef MTS_DNS_INT_H
#define MTS_DNS_INT_H

#include <pthread.h>
#include <stdbool.h>

#include <unbound.h>

#include "dns.h"

/*
 * One libunbound context and its delivery thread. libunbound keeps, per
 * context, how each server has been answering; when a forwarder drops the
 * queries for some names it backs the whole forwarder off and then fails
 * every lookup at once (finding 3 of issue 12). A context in that state is
 * replaced by a fresh one (see health_check); the old one lives on until
 * its last query is done.
 */
struct ubx {
    struct ub_ctx *ub;
    pthread_t thread;
    int stop_pipe[2];
    bool thread_started;
    int refs;			/* under dns.mu: queries on it, + 1 while current */
    bool finalized;		/* atomic: its first query is done (see ubx_resolve) */
};

#define DNS_MAX_SERVERS 4	/* forwarders asked directly by the health check */
#define DNS_RENEW_MIN_MS 1000	/* at most one new context a second */
#define DNS_FAST_FAIL_MS 200	/* a SERVFAIL sooner than this: libunbound did not wait */
#define DNS_CHECK_MAX_MS 1000	/* bound on one direct question */
#define DNS_LOG_EVERY_S 10	/* one health warning per this many seconds */

struct dns {
    pthread_mutex_t mu;		/* cur, its refs, health */
    struct ubx *cur;
    char *resolv_conf, *trust_anchor, *unbound_conf;	/* to build a new context */
    int timeout_ms;
    char anchor[256];		/* owner of the first trust anchor; "" without DNSSEC */
    char resolvers[256];	/* where queries go, for messages */
    char servers[DNS_MAX_SERVERS][64];	/* the same, one address each */
    size_t n_servers;
    struct timespec renew_after;	/* monotonic: no new context before */
    time_t last_log;
    unsigned renewals_logged;
    struct dns_health health;
};

/* dns_ctx.c: a context built from d's settings, its delivery thread
 * running; freed (thread stopped) by ubx_free. */
struct ubx *ubx_new(const struct dns *d, struct mts_err *err);
void ubx_free(struct ubx *x);
/* ub_resolve_async on x, its first call serialised with every context's
 * creation and deletion in the process (see dns_ctx.c). */
int ubx_resolve(struct ubx *x, const char *name, int type, void *arg, ub_callback_type cb,
                int *id);
/* The current context with a reference for one query; ubx_put drops it
 * (and frees a replaced context with its last query). */
struct ubx *ubx_get(struct dns *d);
void ubx_put(struct dns *d, struct ubx *x);

/* dns_health.c: after libunbound failed name/type on x (status st, took_ms
 * after the query started). True when a fresh context is current now and
 * the lookup is worth one more try. */
bool dns_health_check(struct dns *d, struct ubx *x, const char *name, enum dns_type type,
                      enum dns_status st, int took_ms, const struct timespec *caller);

#endif
