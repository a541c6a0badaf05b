/*
 * discover - a domain's MTA-STS status: cache first, then DNS and HTTPS,
 * following RFC 8461 §3 and §5.1.
 *
 * SYNOPSIS
 *	struct discover *d;
 *	discover_global_init(&err);                  at start, before threads
 *	discover_open(cfg, flags, &d, &err);
 *	struct timespec deadline = clock_deadline_after(ms);
 *	discover_lookup(d, "partner.example", &deadline, 0, &res);
 *	... res.status, res.source, res.error ...
 *	status_result_free(&res);
 *	discover_close(d);
 *
 * DESCRIPTION
 *	Statuses (see DESIGN.md): enforce / testing / none (a valid policy,
 *	cached or fresh), absent (no usable TXT record and no cached policy),
 *	failed (a valid TXT record but no valid policy, nothing cached: RFC
 *	8461 §3.3 says deliver as without MTA-STS), unknown (DNS could not
 *	answer, the cache could not be read, or the caller's deadline passed).
 *
 *	A cached policy within its max_age answers at once. When its TXT id is
 *	due for a check (check_interval) it still answers at once, and a
 *	refresh is queued. A refresh fetches the policy again only when the id
 *	changed, none is cached, or the cached one nears expiry. Failures of
 *	DNS or HTTPS, and a vanished TXT record, never replace a cached
 *	policy; only max_age does. After a failed fetch for a TXT id, that id
 *	is not fetched again for fetch_retry_interval.
 *
 *	Deadlines are absolute, on the monotonic clock (clock.h): the cache
 *	read and every wait of one call count against the same budget.
 *
 *	Any number of concurrent callers for one domain share one lookup: one
 *	TXT query, at most one HTTPS fetch. Each waits until its own deadline
 *	and then gets unknown, while the lookup goes on and fills the cache.
 *	Lookups of different domains run on a pool of lookup_workers threads
 *	that grows to lookup_workers_max while lookups wait for a thread; one
 *	somebody waits for goes before one every caller gave up on. Background
 *	work (the refresher, MX sets and policies due for a check) runs on
 *	refresh_workers threads of its own (lookupq.h).
 *
 *	Fairness: discover_lookup_as names the caller (sender, connection).
 *	A fresh lookup (a domain neither cached nor in flight) is charged to
 *	both until it ends; one at lookups_per_sender or
 *	lookups_per_connection gets unknown at once, its error says why. A
 *	policy-map connection (caller.map) is charged to the map's own caps
 *	instead: map_lookups_per_connection, and map_lookups_max for all of
 *	the map together, never more than half of lookup_workers_max, so that
 *	map clients asking for slow domains leave workers for the RCPTs.
 *
 *	With a cache, the rows and MX sets that lookups use are also held in
 *	memory (cachecopy.h: bounded by memory_cache_domains, kept fresh from
 *	the shared cache): a lookup of a domain in memory reads no database,
 *	takes no lock shared by all threads and writes nothing; its last use
 *	is written in batches by the refresh thread (or at discover_close).
 *
 *	With DISCOVER_RECHECK the TXT id of a cached policy is checked now,
 *	within the deadline (RFC 8461 §5: before a permanent failure);
 *	res.rechecked says whether that check completed.
 *
 * DIAGNOSTICS
 *	discover_open returns -1 with a reason. discover_lookup always fills a
 *	result; res.error says why for failed, unknown, and for a cached
 *	policy kept despite a failure.
 */
#ifndef MTS_DISCOVER_H
#define MTS_DISCOVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "clock.h"
#include "config.h"
#include "dns.h"
#include "err.h"
#include "policy.h"
#include "status.h"

/* discover_open flags */
#define DISCOVER_NO_CACHE 0x1	/* neither read nor write the cache */
#define DISCOVER_REFRESHER 0x2	/* run the background refresh thread */
#define DISCOVER_HEAL_CACHE 0x4	/* a corrupt cache file is moved aside (cache_open_healing) */

/* discover_lookup flags */
#define DISCOVER_RECHECK 0x1	/* check the TXT id of a cached policy now */


struct discover;

/* Clock used for every cache time (seconds); tests may replace it. */
typedef int64_t (*discover_clock_fn)(void);

/*
 * Once in a program, before it starts any thread: sets up what lookups
 * need process-wide (libcurl). discover_open does it too, for programs
 * with one thread at that point. 0, or -1 with a reason.
 */
int discover_global_init(struct mts_err *err);

/* Returns 0, DISCOVER_OPEN_CACHE_ERROR when the cache cannot be opened, or -1. */
#define DISCOVER_OPEN_CACHE_ERROR (-2)
int discover_open(const struct config *cfg, int flags, struct discover **out,
                  struct mts_err *err);

/*
 * What discover_open(cfg, DISCOVER_HEAL_CACHE) will find in the cache
 * file, changing nothing (mtasts-milter -n): 0 when it is sound or absent,
 * 1 when it is corrupt and will be moved aside (err says so), 2 when it
 * cannot be checked now (locked, or not readable here), -1 when the open
 * will fail (a newer schema, or the file cannot be opened at all).
 */
int discover_check_cache(const struct config *cfg, struct mts_err *err);

/*
 * Another owner of d (a configuration reloaded with the same engine
 * options): d, whose threads, cache connection and memory stay until the
 * last owner's discover_close.
 */
struct discover *discover_share(struct discover *d);

/* Drops one owner; the last waits for lookups still running (each is
 * bounded by its own timeouts) and closes. */
void discover_close(struct discover *d);

void discover_set_clock(struct discover *d, discover_clock_fn now);

/* domain: as given by a user or an address; normalised here (domain.h).
 * Nobody is charged: no cap applies (mtasts-ctl, the policy map). */
void discover_lookup(struct discover *d, const char *domain, const struct timespec *deadline,
                     int flags, struct status_result *res);

/*
 * The same answer from memory alone, for a caller that must not wait (the
 * map's event loop): false, with res zeroed, when memory does not hold a
 * usable row for domain (then discover_lookup waits for it).
 */
bool discover_lookup_at_once(struct discover *d, const char *domain,
                             struct status_result *res);

/* Who asks, for the caps on fresh lookups in flight. */
struct discover_caller {
    const char *sender;		/* {auth_authen}, else the client's address; NULL: none */
    uint64_t conn;		/* the connection, unique in the process (or, with map,
                                 * among the map's); 0: none */
    bool map;			/* a policy-map connection: the map's caps, not the milter's */
};

/* discover_lookup on behalf of who (NULL: nobody, as discover_lookup). */
void discover_lookup_as(struct discover *d, const char *domain, const struct timespec *deadline,
                        int flags, const struct discover_caller *who,
                        struct status_result *res);

/* Queues a lookup without waiting (prefetch). Returns -1 when the queue is full. */
int discover_queue(struct discover *d, const char *domain);

/* Waits until no lookup is queued or running, and (at most
 * cache_busy_timeout_ms more) until the rows they learnt are in the file. */
void discover_drain(struct discover *d);

/*
 * The longest one lookup can take under cfg: the TXT query, the policy
 * host's addresses and the HTTPS fetch, each at its own timeout, plus a
 * second. A caller that waits this long gets the definitive answer.
 */
int discover_lookup_bound_ms(const struct config *cfg);

/*
 * True when the configured resolver cannot carry DNSSEC (it strips it, see
 * dns_check_dnssec_path): why then says so plainly, with the fix. Waits up
 * to dns_timeout_ms.
 */
bool discover_check_resolver(struct discover *d, char *why, size_t whysz);

/* The resolver's health counts (a backed-off forwarder, see dns.h). */
void discover_resolver_health(struct discover *d, struct dns_health *out);

/*
 * The MX hosts of domain (RFC 5321 §5.1: none means the domain itself),
 * normalised, at most DISCOVER_MAX_MX. Returns the count, or -1 with a
 * reason when DNS could not answer before deadline (or dns_timeout_ms).
 * With a cache, the set is kept there and in memory until its DNS TTL
 * runs out (at most a day), and refreshed in the background after three
 * quarters of it; only a domain with no set in either waits for DNS.
 * The refresh of an enforce domain's policy also fetches its MX set
 * when none is cached.
 */
#define DISCOVER_MAX_MX 32
/* ... from memory alone: -1 when it holds no live set (then discover_mx waits). */
int discover_mx_at_once(struct discover *d, const char *domain, char hosts[][254]);
int discover_mx(struct discover *d, const char *domain, const struct timespec *deadline,
                char hosts[][254], struct mts_err *err);
/*
 * discover_mx on behalf of who (NULL: nobody): a set looked up in DNS (in
 * neither memory nor the cache) is a fresh lookup, charged to who like a
 * new domain's policy (lookups_per_sender, lookups_per_connection) until it
 * ends; at a cap it is not looked up (-1, err says why).
 */
int discover_mx_as(struct discover *d, const char *domain, const struct timespec *deadline,
                   const struct discover_caller *who, char hosts[][254], struct mts_err *err);
/*
 * discover_mx_as (deadline NULL: discover_mx_at_once), and in *secure
 * whether the MX RRset (or, without MX records, the DNSSEC-proven
 * absence of any) was DNSSEC-secure when it was looked up. The state is
 * kept with the set, in memory and in the cache row (mx_sets.dnssec); a
 * row without it reads as not secure.
 */
int discover_mx_sec_as(struct discover *d, const char *domain, const struct timespec *deadline,
                       const struct discover_caller *who, char hosts[][254], bool *secure,
                       struct mts_err *err);


#endif
