/*
 * probecache - STARTTLS probe results as rows of the shared cache (table
 * tls_probes), and what one MX host's rows say together.
 *
 * SYNOPSIS
 *	struct probecache_row row;
 *	probecache_row_from(&result, &grade, now, ttl, failure_ttl, &row);
 *	probecache_put(cache, &row, &err);
 *	probecache_get(cache, host, port, rows, PROBECACHE_ADDR_MAX, &n, &err);
 *	probecache_summarise(rows, n, &host_summary);
 *	probecache_list(cache, max, fn, arg, &n_bad, &err);   mtasts-ctl cache
 *	probecache_delete(cache, host_or_NULL, &err);
 *
 * DESCRIPTION
 *	One row per MX host, address and port: the probe's status and grade
 *	(tlsprobe.h), whether RFC 8461 and require=tls are met, its reason,
 *	protocol, cipher, the certificate's DNS names and expiry, when it was
 *	probed and when the row expires. A probe whose grade is good or weak
 *	(an MTA-STS sender delivers) is kept for ttl seconds; anything else
 *	for failure_ttl, so that a repaired server is seen soon.
 *
 *	Rows read back are untrusted: a wrong type, an unknown word or a
 *	field too long for its buffer makes the row invalid (skipped and
 *	counted); only reason and cert_names, which are for people, are cut.
 *
 *	probecache_summarise folds a host's rows into one judgement: the
 *	worst grade among the addresses that could be judged (an address
 *	graded unknown counts only when no address could be judged, since the
 *	sending MTA tries the next address), and the earliest expiry; pkix
 *	(WebPKI-valid whatever DANE said) holds only when it holds at every
 *	judged address.
 *
 * DIAGNOSTICS
 *	probecache_put / probecache_get return a cache_status with a sentence
 *	in err; probecache_get reports invalid rows in *n_bad.
 */
#ifndef MTS_PROBECACHE_H
#define MTS_PROBECACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cache.h"
#include "err.h"
#include "tlsa.h"
#include "tlsprobe.h"

#define PROBECACHE_ADDR_MAX 4      /* addresses of one host probed and kept */
#define PROBECACHE_ADDRESS_MAX 64  /* numeric IPv4/IPv6 text */
#define PROBECACHE_REASON_MAX 256
#define PROBECACHE_NAMES_MAX 512   /* certificate DNS names, '\n'-joined, cut */
#define PROBECACHE_DANE_MAX 256    /* the matching record, or why DANE failed */
#define PROBECACHE_TLSA_MAX 512    /* the TLSA records for people (tlsa_set_text), cut */

struct tlsa_set;

struct probecache_row {
    char host[TLSPROBE_HOST_MAX + 1];
    char address[PROBECACHE_ADDRESS_MAX];
    int port;
    enum tlsprobe_status status;
    enum tlsprobe_grade_word grade;
    bool rfc8461;  /* RFC 8461 §4.2 + TLS 1.2+ (with DANE: DANE's verification) */
    bool pkix;     /* TLS 1.2+ and WebPKI-valid for the host, whatever DANE said
                      (tlsprobe_grade.pkix); a row from before schema 5: rfc8461
                      without DANE, false with it (not known) */
    bool tls;      /* STARTTLS with TLS 1.2+ */
    char reason[PROBECACHE_REASON_MAX];
    char protocol[16];
    char cipher[64];
    char cert_names[PROBECACHE_NAMES_MAX];
    int64_t cert_not_after;
    int64_t probed_at;
    int64_t expires_at;
    /* DANE (RFC 7672), tlsa.h: the outcome, "3 1 1" (the record that
     * matched) or why it failed, and "STATE OWNER: records" */
    enum tlsa_dane dane;
    char dane_detail[PROBECACHE_DANE_MAX];
    char tlsa[PROBECACHE_TLSA_MAX];
    /* "" probed by this host, else the fleet host that did (cache.h) */
    char source[CACHE_SOURCE_MAX];
};

/* What a host's rows say together (see DESCRIPTION). */
struct probecache_host {
    enum tlsprobe_grade_word grade;
    bool rfc8461, tls;
    bool pkix;                          /* the worst row's, and every judged row's */
    const struct probecache_row *worst; /* the row the grade comes from (DANE:
                                           a failed lookup or match first) */
    int64_t probed_at, expires_at;      /* oldest probe, earliest expiry */
};

void probecache_row_from(const struct tlsprobe_result *r, const struct tlsprobe_grade *g,
                         int64_t now, int64_t ttl, int64_t failure_ttl,
                         struct probecache_row *out);

/*
 * The DANE part of a row made by probecache_row_from: the outcome from the
 * probe (verified / failed) or from the lookup (none, unusable,
 * lookup-failed; t NULL: none). A failed lookup is kept only failure_ttl
 * (the next probe looks again); a secure TLSA answer no longer than its
 * TTL, but at least failure_ttl.
 */
void probecache_row_dane(struct probecache_row *row, const struct tlsa_set *t,
                         const struct tlsprobe_result *r, int64_t failure_ttl);

enum cache_status probecache_put(struct cache *c, const struct probecache_row *row,
                                 struct mts_err *err);

/* A row as its CACHE_TLS_PROBE_NCOLS column values (cache_row.h; texts
 * point into row) and back with every check of a stored row: what the
 * file holds and what the fleet shares (fleet_codec.h) are read alike. */
struct cache_val;
int probecache_row_encode(const struct probecache_row *row, struct cache_val *v,
                          struct mts_err *err);
bool probecache_row_decode(const struct cache_val *v, struct probecache_row *r);

/* Up to max rows of host:port in rows[], count in *n; invalid rows in *n_bad. */
enum cache_status probecache_get(struct cache *c, const char *host, int port,
                                 struct probecache_row *rows, size_t max, size_t *n,
                                 size_t *n_bad, struct mts_err *err);

/* Every row (at most max), in host, port, address order; fn gets each valid
 * row (a copy: fn may keep it); invalid rows are counted in *n_bad. */
typedef void (*probecache_row_fn)(const struct probecache_row *row, void *arg);
enum cache_status probecache_list(struct cache *c, size_t max, probecache_row_fn fn, void *arg,
                                  size_t *n_bad, struct mts_err *err);

/* Deletes host's rows (every address and port; CACHE_NOT_FOUND: none), or
 * every probe row when host is NULL. */
enum cache_status probecache_delete(struct cache *c, const char *host, struct mts_err *err);

/* n >= 1. */
void probecache_summarise(const struct probecache_row *rows, size_t n,
                          struct probecache_host *out);

#endif
