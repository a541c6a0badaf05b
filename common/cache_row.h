/*
 * cache_row - the codec between cache rows (struct cache_entry, struct
 * cache_probe) and column values, with the checks on the way in and out.
 *
 * SYNOPSIS
 *	#include "cache_row.h"
 *
 *	struct cache_val v[CACHE_ROW_DOMAIN_NCOLS];
 *	char *joined;
 *	cache_row_encode(&entry, v, &joined, &err);   then bind v, free(joined)
 *	cache_row_decode(v, &entry, &err);            after reading v
 *	cache_probe_encode(&probe, v, &err);
 *	cache_probe_decode(v, &probe, &err);
 *	cache_row_name_ok("domain", name, &err);
 *
 * DESCRIPTION
 *	The SQL layer (cache.c, the only file that includes sqlite3.h) moves
 *	struct cache_val arrays to and from statements, one value a column,
 *	in the column order of the tables (CACHE_ROW_DOMAIN_COLUMNS,
 *	CACHE_ROW_PROBE_COLUMNS). Everything about what a value means is
 *	here: enums become their words (nametab) only in these values, the
 *	list of mx patterns is joined with '\n' for storage and split when
 *	read back.
 *
 *	Rows read back are untrusted (another version, or a person with the
 *	sqlite3 shell, may have written them): a field that is too long, of
 *	the wrong type, holds a NUL byte or an unknown value makes the row
 *	invalid instead of being cut to fit; only last_error and a probe's
 *	error, which are for people, are cut. The same rules refuse a row
 *	before it is written, so a row this code writes can be read back.
 *
 * DIAGNOSTICS
 *	The encoders return -1 and the decoders false with a sentence in err
 *	naming the row and the column; a decoder then leaves its row zeroed,
 *	owning nothing.
 */
#ifndef MTS_CACHE_ROW_H
#define MTS_CACHE_ROW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cache.h"

#define CACHE_ROW_DOMAIN_NCOLS 17
#define CACHE_ROW_PROBE_NCOLS 7
#define CACHE_ROW_MX_NCOLS 5

/* The columns, in the order of the values. */
#define CACHE_ROW_DOMAIN_COLUMNS                                                                   \
    "domain, txt_id, has_policy, mode, max_age, mx, policy_text, fetched_at, expires_at,"          \
    " checked_at, last_used, status, dnssec, last_error, fetch_failed_id, fetch_failed_at,"     \
    " source"
#define CACHE_ROW_PROBE_COLUMNS                                                                    \
    "host, probed_at, expires_at, starttls, tls_version, cert_valid, error"
#define CACHE_ROW_MX_COLUMNS "domain, hosts, fetched_at, expires_at, dnssec"

enum cache_val_type {
    CACHE_VAL_NULL,
    CACHE_VAL_INT,
    CACHE_VAL_TEXT,
    CACHE_VAL_OTHER /* anything else the database holds (real, blob) */
};

struct cache_val {
    enum cache_val_type type;
    int64_t i;        /* CACHE_VAL_INT */
    const char *text; /* CACHE_VAL_TEXT: len bytes, NUL bytes possible; NULL: unreadable */
    size_t len;
};

/*
 * Checks e and fills v[CACHE_ROW_DOMAIN_NCOLS]; the texts point into e and
 * into *joined (the mx list, malloc'd or NULL), which the caller frees
 * after use.
 */
int cache_row_encode(const struct cache_entry *e, struct cache_val *v, char **joined,
                     struct mts_err *err);

/* v[CACHE_ROW_DOMAIN_NCOLS] into *e (zeroed first). */
bool cache_row_decode(const struct cache_val *v, struct cache_entry *e, struct mts_err *err);

int cache_probe_encode(const struct cache_probe *p, struct cache_val *v, struct mts_err *err);
bool cache_probe_decode(const struct cache_val *v, struct cache_probe *p, struct mts_err *err);

/* An MX set: hosts joined with '\n' into *joined (malloc'd), like cache_row_encode. */
int cache_mxset_encode(const struct cache_mxset *m, struct cache_val *v, char **joined,
                       struct mts_err *err);
bool cache_mxset_decode(const struct cache_val *v, struct cache_mxset *m, struct mts_err *err);

/* Is d (what: "domain" or "MX host") a key as stored: lower-case A-labels? */
/* A source (cache.h): "" or a name of lower-case letters, digits, '-', '.'
 * and '_' shorter than CACHE_SOURCE_MAX; what a person reads is this. */
bool cache_row_source_ok(const char *s);
/* name (a host name) made such a source in dst[CACHE_SOURCE_MAX]: lower
 * case, any other byte '-', cut to fit. */
void cache_row_source_from(char *dst, const char *name);

bool cache_row_name_ok(const char *what, const char *d, struct mts_err *err);

#endif
