/*
 * fleet - what the hosts of a fleet share through Redis: policy rows, MX
 * sets, TLSA results and probe results, a lock per domain (host) so that
 * one host fetches for all, and news of changes.
 *
 * SYNOPSIS
 *	#include "fleet.h"
 *
 *	struct fleet *f;
 *	fleet_open(cfg, &f, &err);           f NULL when fleet_redis is empty
 *	fleet_get_row(f, domain, now, &e);   a row another host learnt
 *	fleet_lock(f, domain, ms);           true: fetch it yourself
 *	fleet_wait_row(f, domain, ms, now_fn, &e);
 *	fleet_put_row(f, &e, publish);       queued for the writer thread
 *	fleet_get_probe / fleet_lock_probe / fleet_wait_probe /
 *	fleet_put_probe / fleet_unlock_probe: the same for MX probe results
 *	fleet_get_mx / fleet_lock_mx / fleet_wait_mx / fleet_put_mx /
 *	fleet_unlock_mx: the same for MX sets; fleet_get_tlsa /
 *	fleet_put_tlsa: a host's TLSA result
 *	fleet_subscribe(f, fn, arg);         news from the other hosts
 *	fleet_state(f, &st);
 *	fleet_close(f);
 *
 * DESCRIPTION
 *	Keys: <fleet_prefix>policy:<domain> holds a row (fleet_codec.h), with
 *	a Redis expiry at the row's own; <fleet_prefix>lock:policy:<domain> is
 *	the fetch lock (SET NX PX); <fleet_prefix>events is the channel where
 *	"policy <domain>" says that a host learnt a new id or status.
 *
 *	fleet_get_row, fleet_lock and fleet_wait_row run on the caller's
 *	thread (a discover worker, never the RCPT's own: memory and SQLite
 *	come first) through the shared link, each command bounded by
 *	fleet_timeout_ms and skipped while the breaker is open (fleet_link.h).
 *	fleet_lock says true when Redis cannot answer: then every host fetches
 *	for itself, as without a fleet.
 *
 *	fleet_put_row encodes on the caller's thread and queues the value
 *	(at most FLEET_QUEUE_MAX; beyond, the oldest is dropped: Redis is a
 *	help, not the truth); the writer thread sends what is queued in one
 *	pipeline (SET, the lock's release, PUBLISH) and waits for the next.
 *
 *	Resynchronisation: rows the writer could not send (Redis away) are
 *	kept, the latest value of each key, at most FLEET_RESYNC_MAX keys
 *	(beyond, they are counted and a warning says how many were not
 *	shared); the writer tries the link once a second while it holds
 *	some, and when Redis answers again writes them with their remaining
 *	life, then logs how many it wrote and told. A row that was not
 *	published goes with SET NX (a value another host wrote meanwhile is
 *	kept). A change (a row queued with publish, even if a later value of
 *	its key was not) is news the others missed: Redis's value is read
 *	first; if it was learnt no later than ours (a row's checked_at, a
 *	probe's latest probed_at) ours replaces it and its PUBLISH is sent,
 *	in one step (a script: a value written between the read and the
 *	write stays); else Redis's newer value stays, told by its writer.
 *	So the others hear at most one message a key, however many changes
 *	the outage saw, and at most FLEET_RESYNC_MAX in all.

 *	fleet_subscribe starts the subscriber thread, on a link of its own: it
 *	calls fn(kind, name, arg) for each message of the channel (its own
 *	included), and subscribes again by itself when the link comes back.
 *	A message that is not "KIND NAME" with a KIND of ours (policy,
 *	probe) is skipped with a warning, at most one a minute.
 *
 *	Threads: the writer (started by fleet_open) and the subscriber
 *	(fleet_subscribe); fleet_close sets the stop flag, wakes the writer,
 *	joins both (the subscriber wakes at least once a second).
 *
 *	Close: what this host learnt is not dropped at its exit without a
 *	try (a one-shot mtasts-ctl learns and exits at once). The writer
 *	sends what is queued, then writes what it holds from an outage
 *	(resynchronisation, the PUBLISH of the changes with it), trying at
 *	once whatever the link's back-off says, then whenever the breaker
 *	lets it (it stops when the breaker's next try falls later): tries
 *	start within FLEET_CLOSE_WAIT_MS of fleet_close, and
 *	the last one lasts at most its own timeouts (connect, AUTH, SELECT,
 *	the pipeline: fleet_timeout_ms each). So fleet_close returns within
 *	FLEET_CLOSE_WAIT_MS plus a few fleet_timeout_ms when Redis is dead
 *	or hung, at once when the writer holds nothing; the rows it could
 *	not send are counted in one warning.

 * DIAGNOSTICS
 *	fleet_open returns -1 with a reason (bad fleet_redis, unreadable
 *	password or key file, no thread). A value read that fails its checks
 *	is ignored with a warning, at most one a minute (with the count of
 *	those not logged).
 */
#ifndef MTS_FLEET_H
#define MTS_FLEET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cache.h"
#include "config.h"
#include "err.h"
#include "fleet_link.h"

#define FLEET_QUEUE_MAX 4096
#define FLEET_RESYNC_MAX 1024
/* How long fleet_close keeps trying to send what the writer holds. */
#define FLEET_CLOSE_WAIT_MS 2000

struct fleet;

int fleet_open(const struct config *cfg, struct fleet **out, struct mts_err *err);
void fleet_close(struct fleet *f);

/* The row of domain in Redis, checked: true with *e filled (the caller frees it). */
bool fleet_get_row(struct fleet *f, const char *domain, int64_t now, struct cache_entry *e);

/* Takes the fetch lock of domain for ms: true when this host is to fetch
 * (it got the lock, or Redis cannot say). */
bool fleet_lock(struct fleet *f, const char *domain, int ms);

/* Polls for domain's row for at most ms (another host holds the lock). */
bool fleet_wait_row(struct fleet *f, const char *domain, int ms, int64_t (*now)(void),
                    struct cache_entry *e);

/* Queues e for Redis (and releases this host's lock of its domain);
 * publish: tell the other hosts. */
void fleet_put_row(struct fleet *f, const struct cache_entry *e, int64_t now, bool publish);

/* Queues the release of this host's fetch lock of domain (nothing learnt
 * worth sharing): the others stop waiting and look it up themselves. */
void fleet_unlock(struct fleet *f, const char *domain);

/*
 * MX probe results (probecache.h), the same way: <fleet_prefix>probe:<host>
 * holds a host's rows for one port (fleet_codec_tls_*), expiring with
 * the earliest row; <fleet_prefix>lock:probe:<host> is its probe lock;
 * "probe <host>" on the channel says that a host's result changed.
 * Rows in the last quarter of their life count as absent (the probe
 * engine refreshes such a host; fleet_wait_probe waits for the fresh
 * ones). rows: room for PROBECACHE_ADDR_MAX.
 */
struct probecache_row;
bool fleet_get_probe(struct fleet *f, const char *host, int port, int64_t now,
                     struct probecache_row *rows, size_t *n);
bool fleet_lock_probe(struct fleet *f, const char *host, int ms);
bool fleet_wait_probe(struct fleet *f, const char *host, int port, int ms, int64_t (*now)(void),
                      struct probecache_row *rows, size_t *n);
/* rows[0..n) of one host; releases its probe lock. */
void fleet_put_probe(struct fleet *f, const struct probecache_row *rows, size_t n, int64_t now,
                     bool publish);
void fleet_unlock_probe(struct fleet *f, const char *host);

/*
 * MX sets (cache.h, table mx_sets) and TLSA results (tlsa.h), what DNS
 * told one host: <fleet_prefix>mx:<domain> holds a domain's set
 * (fleet_codec_mx_*), with <fleet_prefix>lock:mx:<domain> its lock, as
 * for policies; <fleet_prefix>tlsa:<port>:<host> a host's TLSA result,
 * no lock (the probe lock already makes one host of the fleet look a
 * host's TLSA up for its probe). Each expires in Redis with its DNS TTL
 * (at most FLEET_CODEC_DNS_LIFE_MAX); a set in the last quarter of its
 * life counts as absent (being resolved again). Without fleet_key_file a
 * set that claims DNSSEC is not written (and refused if read), and TLSA
 * results are neither written nor read: whether DANE applies to a host
 * is not taken from a writer nobody can tell. A failed TLSA lookup is
 * never shared; fleet_put_mx releases the lock of the domain (with no
 * value when the set's life is over).
 */
struct cache_mxset;
struct tlsa_set;
bool fleet_get_mx(struct fleet *f, const char *domain, int64_t now, struct cache_mxset *m);
bool fleet_lock_mx(struct fleet *f, const char *domain, int ms);
bool fleet_wait_mx(struct fleet *f, const char *domain, int ms, int64_t (*now)(void),
                   struct cache_mxset *m);
void fleet_put_mx(struct fleet *f, const struct cache_mxset *m, int64_t now);
void fleet_unlock_mx(struct fleet *f, const char *domain);
/* t->ttl: the result's remaining life. */
bool fleet_get_tlsa(struct fleet *f, const char *host, int port, int64_t now, struct tlsa_set *t);
void fleet_put_tlsa(struct fleet *f, const char *host, int port, const struct tlsa_set *t,
                    int64_t now);

typedef void (*fleet_event_fn)(const char *kind, const char *name, void *arg);
int fleet_subscribe(struct fleet *f, fleet_event_fn fn, void *arg, struct mts_err *err);

struct fleet_state {
    struct fleet_link_state link;
    uint64_t rows_read, rows_refused, rows_written, events, queue_dropped;
};
void fleet_state(struct fleet *f, struct fleet_state *out);

#endif
