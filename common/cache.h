/*
 * cache - the one SQLite database shared by every process and thread.
 *
 * SYNOPSIS
 *	#include "cache.h"
 *
 *	enum cache_status cache_open(const char *path, int busy_timeout_ms,
 *	                     struct cache **out, struct mts_err *err);
 *	enum cache_status cache_open_readonly(const char *path,
 *	                     int busy_timeout_ms, struct cache **out,
 *	                     struct mts_err *err);
 *	enum cache_status cache_open_healing(path, busy_timeout_ms, &c,
 *	                     moved, movedsz, err);
 *	enum cache_status cache_check_file(path, busy_timeout_ms, err);
 *	void cache_close(struct cache *c);
 *
 *	enum cache_status cache_get(c, domain, &entry, err);
 *	enum cache_status cache_put(c, &entry, err);
 *	enum cache_status cache_touch(c, domain, now, err);
 *	enum cache_status cache_delete(c, domain, err);
 *	enum cache_status cache_flush_all(c, err);
 *	enum cache_status cache_list(c, fn, arg, err);
 *	enum cache_status cache_due(c, now, check_interval, refresh_before,
 *	                     used_since, after, max_rows, fn, arg, err);
 *	enum cache_status cache_purge_unused(c, older_than, &n_deleted, err);
 *	enum cache_status cache_put_probe(c, &probe, err);
 *	enum cache_status cache_get_probe(c, host, &probe, err);
 *	enum cache_status cache_put_mx(c, &mxset, err);
 *	enum cache_status cache_get_mx(c, domain, &mxset, err);
 *	enum cache_status cache_touch_many(c, domains, at, n, err);
 *	enum cache_status cache_data_version(c, &version, err);
 *	enum cache_status cache_put_tls_probe(c, vals, err);
 *	enum cache_status cache_get_tls_probes(c, host, port, max, fn, arg, err);
 *	enum cache_status cache_purge_tls_probes(c, expired_before, err);
 *	enum cache_status cache_list_tls_probes(c, max, fn, arg, err);
 *	enum cache_status cache_delete_tls_probes(c, host_or_NULL, err);
 *	enum cache_status cache_tls_probed_since(c, since, max, fn, arg, err);
 *	const struct timespec *cache_bound_waits(deadline);
 *
 * DESCRIPTION
 *	One table row per recipient domain (its TXT id, its status, its
 *	policy as raw text plus the parsed mode / max_age / mx list, and the
 *	timestamps the refresh logic needs), one per probed MX host, and one
 *	per domain's MX set (its hosts, with the expiry its DNS TTL gave;
 *	deleting a domain's row deletes its MX set).
 *	A domain row and a STARTTLS probe row (schema 7) keep their source:
 *	NULL when this host learnt them (DNS, HTTPS, its own probe), else the
 *	name of the host of the fleet that did, as its value in Redis said
 *	(fleet.h); a row of schema 6 reads as learnt here.
 *	Statuses and modes are enums and the mx list an array here; their
 *	words, and the list joined with '\n', exist only in the database
 *	(cache_row.c converts). The database is in
 *	WAL mode so that readers never wait for the writer; every write is a
 *	single autocommit statement, so a row is always replaced whole.
 *
 *	Threads: any number of threads may share one struct cache. It holds
 *	a connection for writes and most reads, and (for a file opened
 *	read-write) a second one for the reads of one row that recipients
 *	wait for (cache_get, cache_get_mx, cache_get_probe), each with a
 *	mutex: a write waiting in SQLite's busy wait for another process's
 *	lock holds the first, never these reads (WAL: a read needs no lock a
 *	writer holds). Several processes each open their own. Never fork()
 *	with a cache open and use it (or any other connection to the same
 *	file) in the child: open after the fork.
 *
 *	Time is always passed in by the caller; this module never reads the
 *	clock. Domains are keys as given: the caller lower-cases and converts
 *	to A-labels; a domain with upper-case letters, controls or spaces is
 *	refused rather than silently stored under a second key.
 *
 *	The schema version lives in PRAGMA user_version. cache_open migrates
 *	an older database in one transaction; a database newer than this code
 *	is refused. cache_open_readonly never writes and so refuses a database
 *	whose schema is missing or old. Requires SQLite 3.24 or newer (upsert).
 *
 *	Every statement waits up to busy_timeout_ms for a lock (reads: less,
 *	within a bound the thread set, cache_bound_waits). cache_open of
 *	a file that other processes are creating at the same moment may wait
 *	up to about twice that (SQLite gives up one side of that race at once,
 *	and the open retries it).
 *
 *	Rows are read back as untrusted (another version, or a person with
 *	the sqlite3 shell, may have written them): a field that is too long,
 *	of the wrong type, holds a NUL byte or an unknown value makes the row
 *	invalid (CACHE_BAD_ROW) instead of being cut to fit; only last_error,
 *	which is for people, is truncated. Every time must lie within
 *	0 .. CACHE_TIME_MAX, so that adding a configured duration to it can
 *	never overflow.
 *
 * DIAGNOSTICS
 *	Every function returns a cache_status and, for anything but CACHE_OK,
 *	a sentence in err. CACHE_BUSY, CACHE_READONLY and CACHE_CORRUPT name
 *	the database file so that callers can apply their fail-safe (treat
 *	the domain's status as unknown) and an operator can act.
 */
#ifndef MTS_CACHE_H
#define MTS_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "err.h"
#include "policy.h"
#include "status.h"

#define CACHE_SCHEMA_VERSION 7
#define CACHE_DOMAIN_MAX 253            /* RFC 1035 name, no trailing dot */
#define CACHE_TEXT_MAX POLICY_MAX_BYTES /* policy_text and mx */
/* The latest time a row may hold: 9999-12-31T23:59:59Z; the earliest is 0. */
#define CACHE_TIME_MAX INT64_C(253402300799)
/* A row's source: "" learnt by this host, else the host of the fleet that
 * learnt it (fleet.h), a lower-case name of at most 63 bytes. */
#define CACHE_SOURCE_MAX STATUS_ORIGIN_MAX

enum cache_status {
    CACHE_OK = 0,
    CACHE_NOT_FOUND, /* no such row (get, touch, delete) */
    CACHE_BUSY,      /* locked past the busy timeout */
    CACHE_READONLY,  /* a write was refused: file, directory or open mode */
    CACHE_CORRUPT,   /* not an SQLite database, or damaged */
    CACHE_BAD_ROW,   /* a row holds values this code does not accept */
    CACHE_ERROR,     /* anything else: open failure, schema, bad argument */
    CACHE_STALE      /* put: the stored row (or MX set) was fetched later; kept */
};

struct cache;

/* One row of table domains. The fixed-size strings store "" as NULL. */
struct cache_entry {
    char domain[CACHE_DOMAIN_MAX + 1];
    char txt_id[POLICY_ID_MAX + 1]; /* "" = no TXT record known */
    bool has_policy;
    enum policy_mode mode; /* meaningful only with has_policy */
    uint32_t max_age;
    char **mx;         /* patterns, malloc'd (mxmatch_list_free), or NULL */
    size_t n_mx;
    char *policy_text; /* raw body; malloc'd or NULL */
    int64_t fetched_at;
    int64_t expires_at; /* policy expiry, or negative answer expiry */
    int64_t checked_at; /* last TXT id check */
    int64_t last_used;  /* last time a recipient asked */
    bool has_status;    /* false: the column is NULL (a row written elsewhere) */
    enum status_kind status; /* meaningful only with has_status */
    char dnssec[16];    /* secure / insecure / bogus / "" */
    char last_error[256];
    char fetch_failed_id[POLICY_ID_MAX + 1]; /* §3.3 back-off per TXT id */
    int64_t fetch_failed_at;
    char source[CACHE_SOURCE_MAX]; /* "" learnt here, else the fleet host's name */
};

/* One row of table mx_probes. */
struct cache_probe {
    char host[CACHE_DOMAIN_MAX + 1];
    int64_t probed_at;
    int64_t expires_at;
    bool starttls;
    char tls_version[16]; /* "TLSv1.3", ... or "" */
    bool cert_valid;
    char error[256];
};

/* One row of table mx_sets: a domain's MX hosts as DNS gave them. */
#define CACHE_MX_MAX 32
struct cache_mxset {
    char domain[CACHE_DOMAIN_MAX + 1];
    char **hosts;       /* normalised names, or "." (null MX); malloc'd */
    size_t n;           /* 1 .. CACHE_MX_MAX */
    int64_t fetched_at;
    int64_t expires_at; /* fetched_at + the answer's TTL */
    char dnssec[16];    /* secure / insecure / "" */
};

/*
 * Called once per row by cache_list and cache_due, with no lock held: the
 * callback may call any cache function, on this cache too. A non-zero
 * return stops the iteration (the function then returns CACHE_OK).
 */
typedef int (*cache_row_fn)(const struct cache_entry *e, void *arg);

/*
 * Opens (creating with mode 0640 if absent) and migrates the database.
 * path ":memory:" gives a private in-memory database, for tests.
 */
enum cache_status cache_open(const char *path, int busy_timeout_ms, struct cache **out,
                             struct mts_err *err);

/*
 * cache_open for a daemon, healing a corrupt file: a file that SQLite
 * finds corrupt or not a database (PRAGMA quick_check, which reads every
 * page, so a truncated file is found too) is moved aside to
 * PATH.corrupt-<unix time> (its -wal and -shm with it), with a warning,
 * and a fresh one created; moved then names where it went ("" when
 * nothing was moved). While open, a statement that finds the file corrupt
 * makes the cache do the same before it lets go of its lock: that call
 * returns CACHE_CORRUPT, the next ones use the fresh file. A file another
 * process has already replaced is only reopened. When the fresh file
 * cannot be opened, an in-memory database stands in (every row "not
 * found") and the file is tried again once a second. Another process still
 * connected to the old file keeps using it until it, too, finds it corrupt.
 */
enum cache_status cache_open_healing(const char *path, int busy_timeout_ms, struct cache **out,
                                     char *moved, size_t movedsz, struct mts_err *err);

/*
 * What cache_open_healing would find, changing nothing: CACHE_OK for a
 * sound or absent file, CACHE_CORRUPT (err says why) for one it would
 * move aside, another status when the file cannot be checked.
 */
enum cache_status cache_check_file(const char *path, int busy_timeout_ms, struct mts_err *err);

/* Opens without write access; every write returns CACHE_READONLY. */
enum cache_status cache_open_readonly(const char *path, int busy_timeout_ms, struct cache **out,
                                      struct mts_err *err);

/* Safe with NULL. */
void cache_close(struct cache *c);

/*
 * On CACHE_OK *out is the row (free with cache_entry_free); on any other
 * result *out is zeroed, so cache_entry_free is safe either way.
 */
enum cache_status cache_get(struct cache *c, const char *domain, struct cache_entry *out,
                            struct mts_err *err);

/*
 * Inserts or replaces the whole row for e->domain in one statement. An
 * entry that cache_get would refuse (see DESCRIPTION) is refused here with
 * CACHE_ERROR, so a row this code writes can always be read back.
 * The write is conditional: a stored row whose policy was fetched later
 * (fetched_at greater than e's) is kept and CACHE_STALE returned, so that
 * of two refreshes of one domain (two processes, or a reload) the older
 * never overwrites the newer. Only last_used is still raised.
 */
enum cache_status cache_put(struct cache *c, const struct cache_entry *e, struct mts_err *err);

/* Sets last_used to now (never moves it backwards). */
enum cache_status cache_touch(struct cache *c, const char *domain, int64_t now,
                              struct mts_err *err);

enum cache_status cache_delete(struct cache *c, const char *domain, struct mts_err *err);

/* Deletes every domain and probe row. */
enum cache_status cache_flush_all(struct cache *c, struct mts_err *err);

/*
 * Every row, in domain order, read in small batches so that no lock or
 * read transaction is held while fn runs. Invalid rows are skipped; the
 * result is then CACHE_BAD_ROW naming the first one, after all valid rows
 * were delivered.
 */
enum cache_status cache_list(struct cache *c, cache_row_fn fn, void *arg, struct mts_err *err);

/*
 * The rows a background refresher should revisit, in domain order after
 * the domain after (NULL or "": from the first), at most max_rows of
 * them: rows with a policy, used at or after used_since, and either due
 * for a TXT id check (checked_at + check_interval <= now) or close to
 * expiry (expires_at - refresh_before <= now). Rows without a policy
 * (absent, unknown, failed) are never due: they live out their own TTL.
 * Invalid rows as in cache_list. Rows are read after the last domain
 * delivered, so a row the callback refreshes is not delivered twice in
 * one call.
 */
enum cache_status cache_due(struct cache *c, int64_t now, int64_t check_interval,
                            int64_t refresh_before, int64_t used_since, const char *after,
                            size_t max_rows, cache_row_fn fn, void *arg, struct mts_err *err);

/* Deletes domain rows with last_used < older_than; *n_deleted may be NULL. */
enum cache_status cache_purge_unused(struct cache *c, int64_t older_than, uint64_t *n_deleted,
                                     struct mts_err *err);

enum cache_status cache_put_probe(struct cache *c, const struct cache_probe *p,
                                  struct mts_err *err);

/* On anything but CACHE_OK *out is zeroed. */
enum cache_status cache_get_probe(struct cache *c, const char *host, struct cache_probe *out,
                                  struct mts_err *err);

/* Inserts or replaces the MX set of m->domain (refused like cache_put;
 * CACHE_STALE when the stored set was resolved later). */
enum cache_status cache_put_mx(struct cache *c, const struct cache_mxset *m, struct mts_err *err);

/* On anything but CACHE_OK *out is zeroed; free with cache_mxset_free. */
enum cache_status cache_get_mx(struct cache *c, const char *domain, struct cache_mxset *out,
                               struct mts_err *err);

void cache_mxset_free(struct cache_mxset *m);

/*
 * cache_touch of n domains in one transaction (a batch of last uses);
 * domains that are not keys, or have no row, are skipped.
 */
enum cache_status cache_touch_many(struct cache *c, const char *const *domains, const int64_t *at,
                                   size_t n, struct mts_err *err);

/*
 * SQLite's PRAGMA data_version of this connection: it changes when another
 * connection (this process's or another's) commits a change, never for
 * this connection's own writes. Cheap: no table is read.
 */
enum cache_status cache_data_version(struct cache *c, int64_t *version, struct mts_err *err);

/*
 * Table tls_probes: one STARTTLS probe of one MX host address and port.
 * The SQL layer only moves the values (struct cache_val, cache_row.h);
 * probecache.c encodes and checks them, in this column order.
 */
#define CACHE_TLS_PROBE_NCOLS 19
#define CACHE_TLS_PROBE_COLUMNS                                                                    \
    "host, address, port, status, grade, rfc8461, tls, reason, protocol, cipher, cert_names,"     \
    " cert_not_after, probed_at, expires_at, dane, dane_detail, tlsa, pkix, source"
struct cache_val;
typedef void (*cache_vals_fn)(const struct cache_val *v, void *arg);

/* Inserts or replaces the row of (host, address, port). */
enum cache_status cache_put_tls_probe(struct cache *c, const struct cache_val *v,
                                      struct mts_err *err);

/*
 * The rows of host and port, at most max_rows, in address order. fn runs
 * with the cache's lock held: it must copy what it keeps and not call the
 * cache. The values are valid only during the call.
 */
enum cache_status cache_get_tls_probes(struct cache *c, const char *host, int port,
                                       size_t max_rows, cache_vals_fn fn, void *arg,
                                       struct mts_err *err);

/*
 * Every probe row, at most max_rows, in host, port, address order (for
 * mtasts-ctl cache list); fn runs with the lock held, as above.
 */
enum cache_status cache_list_tls_probes(struct cache *c, size_t max_rows, cache_vals_fn fn,
                                        void *arg, struct mts_err *err);

/* Deletes the probe rows of host (CACHE_NOT_FOUND: it had none), or every
 * probe row when host is NULL. */
enum cache_status cache_delete_tls_probes(struct cache *c, const char *host,
                                          struct mts_err *err);

/* Deletes probe rows whose expires_at is before expired_before. */
enum cache_status cache_purge_tls_probes(struct cache *c, int64_t expired_before,
                                         struct mts_err *err);

/*
 * The hosts with a row probed at or after since, each once with its latest
 * probed_at, at most max_rows; fn runs with the lock held, as above.
 */
typedef void (*cache_probed_fn)(const char *host, int64_t probed_at, void *arg);
enum cache_status cache_tls_probed_since(struct cache *c, int64_t since, size_t max_rows,
                                         cache_probed_fn fn, void *arg, struct mts_err *err);

/*
 * Bounds, for the calling thread, every wait of the reads cache_get,
 * cache_get_mx, cache_get_probe and cache_data_version: for this process's
 * lock on their connection (other readers of one row; for
 * cache_data_version, the writes' connection, held by a writer while
 * SQLite waits for another process's lock) and SQLite's own busy wait,
 * until deadline (CLOCK_MONOTONIC; NULL: no bound beyond busy_timeout_ms).
 * Past it they return CACHE_BUSY. A recipient's thread sets it to its
 * deadline; writes are not bounded (background threads make them).
 * Returns the bound it replaces, to restore.
 */
const struct timespec *cache_bound_waits(const struct timespec *deadline);

/* Frees mx and policy_text and sets them to NULL (n_mx 0). Safe with NULL. */
void cache_entry_free(struct cache_entry *e);

/*
 * The n patterns joined with '\n', as a row stores them ("" for none), for
 * showing a row as stored; malloc'd, NULL when out of memory.
 */
char *cache_mx_join(char *const *mx, size_t n);

/* "ok", "not found", "busy", ... for logs. */
const char *cache_status_name(enum cache_status st);

#endif
