/*
 * probes - STARTTLS probes of MX hosts on background threads, their
 * results in memory and in the shared cache, for verdicts that only read.
 *
 * SYNOPSIS
 *	struct probes *p;
 *	probes_open(cfg, NULL, 0, &p, &err);       NULL: real DNS and tlsprobe
 *	struct probes_host h;
 *	probes_get(p, "mx1.partner.example", &h);  memory only, never waits
 *	... h.state, h.grade, h.rfc8461, h.tls, h.reason ...
 *	probes_close(p);
 *
 * DESCRIPTION
 *	probes_get answers from memory. A host it has no live result for is
 *	PROBES_NOT_YET (the path is unknown) and is queued; a host on
 *	probe_never is PROBES_NEVER. The answer never waits for a probe;
 *	probes_wait does, until the caller's deadline, woken by the result.
 *	A host queued by an RCPT (no live result: first contact) goes before
 *	the refresher's hosts. Jobs queued through probes_get_as are charged
 *	to the sender and the connection until they end, like fresh lookups
 *	(lookupq.h): at probes_per_sender or probes_per_connection jobs in
 *	flight, a further new host of theirs is not queued, so no sender
 *	fills the queue that every other sender's first messages need.
 *
 *	A queued host is taken by one of probe_concurrency worker threads,
 *	so a host is never probed twice at once, however many domains and
 *	RCPTs ask, and no more than probe_concurrency probes run at once. The
 *	worker first reads the host's rows from the shared cache (another
 *	process, or an earlier run, may have probed it): when they are live
 *	and not yet in the last quarter of their life they are taken as they
 *	are. Otherwise it resolves the host's
 *	addresses (at most PROBECACHE_ADDR_MAX), leaves out those a probe may
 *	not connect to (not globally reachable and not in
 *	probe_allow_networks, probeconf.h: logged; when none is left the
 *	host is unknown, not_routable, kept in memory for probe_failure_ttl;
 *	rows of such addresses in the shared cache are not believed either),
 *	looks up its TLSA records (tlsa.h: only below DNSSEC-secure
 *	addresses) and probes each address on
 *	probe_port within probe_timeout_ms, at most probe_network_concurrency
 *	at once per destination /24 (IPv4) or /64 (IPv6), and writes the rows
 *	(probecache.h: probe_ttl for a result an MTA-STS sender accepts,
 *	probe_failure_ttl for any other).
 *
 *	With fleet_redis (and a shared cache), a host the shared cache has no
 *	such rows for is asked of the fleet next (fleet.h: its rows another
 *	milter probed, checked like the file's); on a miss the worker takes
 *	the host's probe lock and probes, or, when another milter holds it,
 *	waits for its rows as long as a job can take (then probes itself).
 *	What a probe learns goes to Redis from the fleet's writer thread, and
 *	a result whose grade or DANE outcome changed is announced: the others
 *	replace theirs in memory, for the hosts they hold.
 *
 *	probes_open loads the live rows of the shared cache (at most SYNC_MAX
 *	hosts, probed within probe_ttl) into memory, so that a restart or a
 *	reload (a new probes) does not make every path unknown again.
 *
 *	A refresher thread, every refresh_interval, queues the hosts asked
 *	for within probe_ttl whose result is in the last quarter of its life
 *	(hosts of domains in use are probed again before they expire), and,
 *	when another connection wrote to the shared cache (PRAGMA
 *	data_version), looks for probe rows written since its last look and
 *	queues the hosts in memory that have newer rows, so that their rows
 *	are read again (at most SYNC_MAX hosts a round). It also deletes rows
 *	that expired a whole probe_ttl ago. Memory holds about
 *	memory_cache_domains hosts (a cap per shard of the table); the least
 *	recently asked of a full shard is dropped (a scan of the shard, only
 *	when a new host arrives). A read of a live result takes only its
 *	shard's read lock.
 *
 *	The seam (struct probes_seam) replaces DNS, the probe and the clock
 *	for tests.
 *
 * DIAGNOSTICS
 *	probes_open returns -1 with a reason (threads, cache, DNS). Problems
 *	later (a cache write failing) are logged, and the result is kept in
 *	memory anyway.
 */
#ifndef MTS_PROBES_H
#define MTS_PROBES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "config.h"
#include "err.h"
#include "probecache.h"
#include "tlsprobe.h"

/* probes_open flags */
#define PROBES_NO_CACHE 0x1     /* neither read nor write the shared cache */
#define PROBES_NO_REFRESHER 0x2 /* no refresher thread (tests drive it) */

struct probes_seam {
    /* Numeric addresses of host, at most max; the count, or -1 with err. */
    int (*resolve)(void *arg, const char *host, const struct timespec *deadline,
                   char addrs[][PROBECACHE_ADDRESS_MAX], size_t max, struct mts_err *err);
    /* tlsa: the host's TLSA records (NULL: none), for DANE (tlsprobe.h). */
    void (*probe)(void *arg, const char *host, const char *address, int port,
                  const struct tlsa_set *tlsa, const struct timespec *deadline,
                  struct tlsprobe_result *out);
    int64_t (*now)(void); /* seconds, for probed_at / expires_at */
    void *arg;
    /* The host's TLSA records (tlsa_lookup); NULL: no DANE lookups. */
    void (*tlsa)(void *arg, const char *host, int port, const struct timespec *deadline,
                 struct tlsa_set *out);
};

enum probes_state {
    PROBES_NOT_YET, /* no live result: queued or running */
    PROBES_NEVER,   /* probe_never names it */
    PROBES_KNOWN    /* a live result */
};

struct probes_host {
    enum probes_state state;
    enum tlsprobe_grade_word grade; /* the worst judged address (probecache.h) */
    bool rfc8461, tls;
    bool pkix; /* WebPKI-valid at every judged address, whatever DANE said
                  (probecache.h); equals rfc8461 for a host without DANE */
    char address[PROBECACHE_ADDRESS_MAX]; /* the address the grade comes from */
    enum tlsprobe_status status;
    bool not_routable; /* no address a probe may connect to (probeconf.h): not probed */
    char reason[PROBECACHE_REASON_MAX];
    char protocol[16];
    int64_t probed_at, expires_at;
    enum tlsa_dane dane;          /* DANE outcome (tlsa.h) of the address graded */
    char dane_detail[PROBECACHE_DANE_MAX]; /* the matching record, or why not */
    char source[CACHE_SOURCE_MAX]; /* the graded row's (probecache.h): "" probed here */
};

struct probes_stats {
    uint64_t probes;       /* tlsprobe runs (one per address) */
    uint64_t jobs;         /* host jobs run */
    uint64_t cache_loads;  /* jobs answered by live rows of the shared cache */
    uint64_t fleet_loads;  /* jobs answered by rows of the fleet (fleet.h) */
    int running_max;       /* most probes at once */
    int network_max;       /* most probes at once to one network */
};

struct probes;

int probes_open(const struct config *cfg, const struct probes_seam *seam, int flags,
                struct probes **out, struct mts_err *err);

/*
 * Another holder of the same engine (a reloaded configuration whose probe
 * options are unchanged): its queue, its running probes, its concurrency
 * bounds and its memory carry over, so a reload neither probes a host
 * twice at once nor lets two engines' bounds add up. Returns p.
 */
struct probes *probes_share(struct probes *p);

/* Drops one holder; the last one stops the threads, waiting for running
 * probes (each bounded by probe_timeout_ms). Safe with NULL. */
void probes_close(struct probes *p);

/* host: normalised (lower case, no trailing dot). Memory only; see DESCRIPTION. */
void probes_get(struct probes *p, const char *host, struct probes_host *out);

/*
 * probes_get on behalf of a sender (authenticated user, else client
 * address; NULL: none) and a connection (0: none): a new job is charged
 * to both until it ends. -1 when probes_per_sender or
 * probes_per_connection refuses it: not queued, out is PROBES_NOT_YET
 * (the refusal is logged once a minute per caller).
 */
int probes_get_as(struct probes *p, const char *host, const char *sender, uint64_t conn,
                  struct probes_host *out);

/*
 * For an RCPT that may wait (the first message to a domain): out[i] holds
 * what probes_get said of hosts[i] (NULL: skip it). Waits until one host
 * that was PROBES_NOT_YET has a result (then true, out[] read again), or
 * until deadline, or until none is PROBES_NOT_YET (false). A job's end
 * wakes every waiter; each re-reads memory only.
 */
bool probes_wait(struct probes *p, const char *const *hosts, size_t n,
                 const struct timespec *deadline, struct probes_host *out);

/*
 * RFC 7672: whether DANE applies to a host is in DNS, not in its probe.
 * For a host not probed yet, asks its TLSA records (tlsa.h, on the
 * calling thread, within deadline and dns_timeout_ms): true when they are
 * secure and usable, or when the lookup failed (the host must then not be
 * used). The first message to a domain without MTA-STS but with DANE can
 * so wait for the probe that decides it. false when probes have no TLSA
 * lookups (the seam's tlsa is NULL) or memory runs out.
 */
bool probes_dane_expected(struct probes *p, const char *host, const struct timespec *deadline);

/* One round of the refresher (tests, and the refresher thread). */
void probes_refresh(struct probes *p);

/*
 * For one-shot tools (mtasts-ctl explain), whose memory starts empty: a
 * probes_get that finds no live result in memory reads the host's rows
 * from the shared cache on the calling thread first. Never for the milter,
 * whose RCPTs read memory only. Call before any probes_get.
 */
void probes_load_on_miss(struct probes *p);

/* Waits until nothing is queued or running, and what the probes learnt is
 * written to the shared cache (the writes bounded by cache_busy_timeout_ms
 * and a second). */
void probes_drain(struct probes *p);

void probes_get_stats(struct probes *p, struct probes_stats *out);

/* Is host on the list (names, or *.domain)? */
bool probes_never(const struct config_list *never, const char *host);

#endif
