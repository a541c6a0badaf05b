/*
 * fleet_codec - policy rows and probe results as Redis values: encoded,
 * signed (HMAC-SHA256 with the fleet key), checked when read back.
 *
 * SYNOPSIS
 *	#include "fleet_codec.h"
 *
 *	struct fleet_key k;
 *	fleet_key_load(cfg->fleet_key_file, &k, &err);   "" : unsigned
 *	char *v = fleet_codec_row_encode(&k, rkey, &entry, &len, &err);
 *	fleet_codec_row_decode(&k, rkey, v, len, now, &entry, &err);
 *	fleet_codec_tls_encode(&k, rkey, rows, n, &len, &err);
 *	fleet_codec_mx_encode(&k, rkey, &mxset, &len, &err);
 *	fleet_codec_mx_decode(&k, rkey, v, len, now, &mxset, &err);
 *	fleet_codec_tlsa_encode(&k, rkey, host, port, &tlsa, at, until, &len, &err);
 *	fleet_codec_tlsa_decode(&k, rkey, v, len, now, port, &tlsa, &until, &err);
 *	fleet_codec_tls_decode(&k, rkey, v, len, now, port, rows, &n, &err);
 *
 * DESCRIPTION
 *	A value is "F1 <mac> <json>": the cache_row column values (cache_row.h)
 *	as one JSON array (null, integer or string each, in column order),
 *	after the hex HMAC-SHA256 of the Redis key, a NUL byte and the JSON
 *	text, or 64 '-' when no key is set. Binding the Redis key into the
 *	MAC stops a signed value from being replayed under another domain.
 *
 *	Nothing read is trusted more than a cache row: the column values go
 *	through cache_row_decode (every range and syntax
 *	check of a row), the row must name the domain (host) of its key, and
 *	its times may not lie in the future beyond FLEET_CODEC_CLOCK_SKEW nor
 *	expire later than the longest life such a row can have. With a key,
 *	a value without a valid MAC is refused.
 *
 *	The MX probe results of one host (probecache.h: one row an address,
 *	at most PROBECACHE_ADDR_MAX) are one value: the rows' column values
 *	one row after the other in the one array, each row checked as a
 *	row of the file (probecache_row_decode), for the host of the key and
 *	the probe port asked, with the same time bounds.
 *
 *	An MX set (cache.h, table mx_sets) is its row's column values,
 *	checked as a row of the file (cache_mxset_decode), for the domain of
 *	the key, fetched no later than now (with the skew), expiring no later
 *	than FLEET_CODEC_DNS_LIFE_MAX after (discover's bound on a DNS TTL).
 *	Without a key, a set that claims "secure" is refused: anyone who can
 *	write to Redis could claim DNSSEC; an insecure set claims nothing.
 *
 *	A TLSA result (tlsa.h: a host's records at a port, the state, why)
 *	is one array: host, port, fetched, expires, state, base, owner,
 *	dropped, why, and the records as "usage selector mtype HEX;...", each
 *	record going through tlsa_parse_rdata (usable recomputed, never
 *	read); records only with state secure; a failed lookup is never a
 *	value. TLSA results are shared only with a key: every state says
 *	whether DANE applies (insecure or none would turn it off), so the
 *	decoder refuses them all without one.
 *
 * DIAGNOSTICS
 *	Encoders return NULL with a reason; decoders false with a reason, the
 *	row zeroed and owning nothing. Logging is the caller's.
 */
#ifndef MTS_FLEET_CODEC_H
#define MTS_FLEET_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cache.h"
#include "err.h"

#define FLEET_KEY_MIN 16
#define FLEET_KEY_MAX 1024
/* The longest value: a policy body and its patterns, each at most
 * CACHE_TEXT_MAX bytes, escaped by JSON (up to 6 bytes a byte), and the rest. */
#define FLEET_VALUE_MAX (CACHE_TEXT_MAX * 12 + 8192)
/* How far ahead of this host's clock another host's times may be. */
#define FLEET_CODEC_CLOCK_SKEW 300
/* The longest life of a probe result (probe_ttl's bound). */
#define FLEET_CODEC_PROBE_LIFE_MAX 2592000
/* The longest life of an MX set or a TLSA result (a DNS TTL, capped). */
#define FLEET_CODEC_DNS_LIFE_MAX 86400

struct fleet_key {
    bool set;
    size_t len;
    unsigned char bytes[FLEET_KEY_MAX];
};

/* The key in path ("" or NULL: none, k->set false). */
int fleet_key_load(const char *path, struct fleet_key *k, struct mts_err *err);

/* malloc'd value and its length. */
char *fleet_codec_row_encode(const struct fleet_key *k, const char *rkey,
                             const struct cache_entry *e, size_t *len, struct mts_err *err);
bool fleet_codec_row_decode(const struct fleet_key *k, const char *rkey, const char *val,
                            size_t len, int64_t now, struct cache_entry *e, struct mts_err *err);

struct probecache_row;
char *fleet_codec_tls_encode(const struct fleet_key *k, const char *rkey,
                             const struct probecache_row *rows, size_t n, size_t *len,
                             struct mts_err *err);
/* rows: room for PROBECACHE_ADDR_MAX. */
bool fleet_codec_tls_decode(const struct fleet_key *k, const char *rkey, const char *val,
                            size_t len, int64_t now, int port, struct probecache_row *rows,
                            size_t *n, struct mts_err *err);

char *fleet_codec_mx_encode(const struct fleet_key *k, const char *rkey,
                            const struct cache_mxset *m, size_t *len, struct mts_err *err);
/* On success *m owns its hosts (cache_mxset_free). */
bool fleet_codec_mx_decode(const struct fleet_key *k, const char *rkey, const char *val,
                           size_t len, int64_t now, struct cache_mxset *m, struct mts_err *err);

struct tlsa_set;
char *fleet_codec_tlsa_encode(const struct fleet_key *k, const char *rkey, const char *host,
                              int port, const struct tlsa_set *t, int64_t fetched_at,
                              int64_t expires_at, size_t *len, struct mts_err *err);
/* *expires_at: the wall time the result stops being good. */
bool fleet_codec_tlsa_decode(const struct fleet_key *k, const char *rkey, const char *val,
                             size_t len, int64_t now, int port, struct tlsa_set *t,
                             int64_t *expires_at, struct mts_err *err);

#endif
