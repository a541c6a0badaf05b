/*
 * cache - the shared SQLite database; see cache.h for the interface.
 *
 * DESCRIPTION
 *	Two connections per struct cache, each with a mutex: one for writes
 *	and most reads, one for the reads of one row (get_row), so that those
 *	never wait behind a write in SQLite's busy wait (cache_int.h).
 *	Statements are prepared once at open and reset after every use. Rows
 *	travel as arrays of column values (struct cache_val): cache_row.c
 *	encodes, decodes and checks them, this file binds and reads them. The
 *	connections themselves (open, schema, locks, healing) are
 *	cache_conn.c's.
 */
#include "cache_int.h"
#include "cache_row.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "metrics.h"

#define ITER_BATCH 32 /* rows read under the lock before callbacks run */

/* reset() repeats the step's error, which the caller has already reported. */
static void
stmt_done(sqlite3_stmt *s)
{
    (void)sqlite3_reset(s);
    (void)sqlite3_clear_bindings(s);
}

/* Binds v[0..n-1] to ?1..?n. The texts must outlive the step. */
static int
bind_vals(sqlite3_stmt *s, const struct cache_val *v, size_t n)
{
    int rc = SQLITE_OK;

    for (size_t i = 0; i < n && rc == SQLITE_OK; i++) {
        int idx = (int)i + 1;
        if (v[i].type == CACHE_VAL_INT)
            rc = sqlite3_bind_int64(s, idx, v[i].i);
        else if (v[i].type == CACHE_VAL_TEXT)
            rc = sqlite3_bind_text(s, idx, v[i].text, (int)v[i].len, SQLITE_STATIC);
        else
            rc = sqlite3_bind_null(s, idx);
    }
    return rc;
}

/* The current row's columns as values, valid until the statement steps or resets. */
static void
read_vals(sqlite3_stmt *s, struct cache_val *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int t = sqlite3_column_type(s, (int)i);

        memset(&v[i], 0, sizeof(v[i]));
        if (t == SQLITE_NULL) {
            v[i].type = CACHE_VAL_NULL;
        } else if (t == SQLITE_INTEGER) {
            v[i].type = CACHE_VAL_INT;
            v[i].i = sqlite3_column_int64(s, (int)i);
        } else if (t == SQLITE_TEXT) {
            v[i].type = CACHE_VAL_TEXT;
            v[i].text = (const char *)sqlite3_column_text(s, (int)i);
            v[i].len = (size_t)sqlite3_column_bytes(s, (int)i);
        } else {
            v[i].type = CACHE_VAL_OTHER;
        }
    }
}

/* One domain row into *e. On false, *e is zeroed and owns nothing. */
static bool
row_to_entry(sqlite3_stmt *s, struct cache_entry *e, struct mts_err *err)
{
    struct cache_val v[CACHE_ROW_DOMAIN_NCOLS];

    read_vals(s, v, CACHE_ROW_DOMAIN_NCOLS);
    return cache_row_decode(v, e, err);
}

const char *
cache_status_name(enum cache_status st)
{
    static const struct nametab names[] = {
        {"ok", CACHE_OK},           {"not found", CACHE_NOT_FOUND}, {"busy", CACHE_BUSY},
        {"read-only", CACHE_READONLY}, {"corrupt", CACHE_CORRUPT},   {"bad row", CACHE_BAD_ROW},
        {"error", CACHE_ERROR},     {"stale", CACHE_STALE},         {NULL, -1},
    };

    return nametab_name(names, (int)st);
}

/* Steps a bound statement that returns no rows, under the caller's lock. */
static enum cache_status
run(struct cache *c, sqlite3_stmt *s, int rc, const char *what, struct mts_err *err)
{
    enum cache_status st = CACHE_OK;

    if (rc == SQLITE_OK)
        rc = sqlite3_step(s);
    if (rc != SQLITE_DONE)
        st = cache_fail(c, rc, what, err);
    stmt_done(s);
    return st;
}

/* Looks key up with statement which and reads the row into obj (zeroed first). */
static enum cache_status
get_row(struct cache *c, int which, const char *key, void *obj, size_t objsz, struct mts_err *err)
{
    sqlite3_stmt *s;
    sqlite3 *db;
    enum cache_status st;
    int rc;

    memset(obj, 0, objsz);
    if (!cache_row_name_ok(which == ST_GET_PROBE ? "MX host" : "domain", key, err))
        return CACHE_ERROR;
    /* The readers' connection: never behind a write waiting for a lock. */
    if ((db = cache_lock_row(c, which, &s)) == NULL) {
        mts_err_set(err, "%s: the cache is in use past the deadline: %s", key, c->path);
        return CACHE_BUSY;
    }
    rc = sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(s);
    if (rc == SQLITE_DONE) {
        mts_err_set(err, "%s: not in cache", key);
        st = CACHE_NOT_FOUND;
    } else if (rc != SQLITE_ROW) {
        st = cache_fail_on(c, db, rc, "cannot read cache row", err);
    } else if (which == ST_GET) {
        st = row_to_entry(s, obj, err) ? CACHE_OK : CACHE_BAD_ROW;
    } else if (which == ST_GET_MX) {
        struct cache_val v[CACHE_ROW_MX_NCOLS];

        read_vals(s, v, CACHE_ROW_MX_NCOLS);
        st = cache_mxset_decode(v, obj, err) ? CACHE_OK : CACHE_BAD_ROW;
    } else {
        struct cache_val v[CACHE_ROW_PROBE_NCOLS];

        read_vals(s, v, CACHE_ROW_PROBE_NCOLS);
        st = cache_probe_decode(v, obj, err) ? CACHE_OK : CACHE_BAD_ROW;
    }
    stmt_done(s);
    cache_unlock_row(c, db, st == CACHE_CORRUPT);
    return st;
}

enum cache_status
cache_get(struct cache *c, const char *domain, struct cache_entry *out, struct mts_err *err)
{
    return get_row(c, ST_GET, domain, out, sizeof(*out), err);
}

enum cache_status
cache_get_probe(struct cache *c, const char *host, struct cache_probe *out, struct mts_err *err)
{
    return get_row(c, ST_GET_PROBE, host, out, sizeof(*out), err);
}

enum cache_status
cache_get_mx(struct cache *c, const char *domain, struct cache_mxset *out, struct mts_err *err)
{
    return get_row(c, ST_GET_MX, domain, out, sizeof(*out), err);
}

enum cache_status
cache_put_mx(struct cache *c, const struct cache_mxset *m, struct mts_err *err)
{
    sqlite3_stmt *s;
    struct cache_val v[CACHE_ROW_MX_NCOLS];
    enum cache_status st;
    char *joined;

    if (cache_mxset_encode(m, v, &joined, err) != 0)
        return CACHE_ERROR;
    cache_lock(c);
    s = c->st[ST_PUT_MX]; /* after the lock: a heal replaces them */
    st = run(c, s, bind_vals(s, v, CACHE_ROW_MX_NCOLS), "cannot store MX set", err);
    if (st == CACHE_OK && sqlite3_changes(c->db) == 0) {
        mts_err_set(err, "MX set of %s: a later one is stored; kept", m->domain);
        st = CACHE_STALE;
    }
    cache_unlock(c);
    free(joined);
    return st;
}

enum cache_status
cache_data_version(struct cache *c, int64_t *version, struct mts_err *err)
{
    sqlite3_stmt *s;
    enum cache_status st = CACHE_OK;
    int rc;

    if (!cache_lock_read(c)) {
        mts_err_set(err, "cannot read the data version: the cache is in use past the deadline");
        return CACHE_BUSY;
    }
    s = c->st[ST_DATA_VERSION]; /* after the lock: a heal replaces them */
    if ((rc = sqlite3_step(s)) == SQLITE_ROW)
        *version = sqlite3_column_int64(s, 0);
    else
        st = cache_fail(c, rc, "cannot read the data version", err);
    stmt_done(s);
    cache_unlock_read(c);
    return st;
}

enum cache_status
cache_touch_many(struct cache *c, const char *const *domains, const int64_t *at, size_t n,
                 struct mts_err *err)
{
    sqlite3_stmt *s;
    enum cache_status st = CACHE_OK;
    int rc;

    cache_lock(c);
    s = c->st[ST_TOUCH]; /* after the lock: a heal replaces them */
    if ((rc = cache_exec(c, "BEGIN IMMEDIATE")) != SQLITE_OK)
        st = cache_fail(c, rc, "cannot update last use", err);
    for (size_t i = 0; st == CACHE_OK && i < n; i++) {
        if (!cache_row_name_ok("domain", domains[i], NULL))
            continue;
        rc = sqlite3_bind_text(s, 1, domains[i], -1, SQLITE_STATIC);
        if (rc == SQLITE_OK)
            rc = sqlite3_bind_int64(s, 2, at[i]);
        st = run(c, s, rc, "cannot update last use", err);
    }
    if (st == CACHE_OK && (rc = cache_exec(c, "COMMIT")) != SQLITE_OK)
        st = cache_fail(c, rc, "cannot update last use", err);
    if (st != CACHE_OK)
        (void)cache_exec(c, "ROLLBACK"); /* fails harmlessly when nothing is open */
    cache_unlock(c);
    return st;
}

enum cache_status
cache_put(struct cache *c, const struct cache_entry *e, struct mts_err *err)
{
    struct cache_val v[CACHE_ROW_DOMAIN_NCOLS];
    enum cache_status st;
    char *joined;

    if (cache_row_encode(e, v, &joined, err) != 0)
        return CACHE_ERROR;
    cache_lock(c);
    st = run(c, c->st[ST_PUT], bind_vals(c->st[ST_PUT], v, CACHE_ROW_DOMAIN_NCOLS),
             "cannot store cache row", err);
    if (st == CACHE_OK && sqlite3_changes(c->db) == 0) {
        /* A later refresh won; the use still counts. */
        sqlite3_stmt *t = c->st[ST_TOUCH];
        int rc = sqlite3_bind_text(t, 1, e->domain, -1, SQLITE_STATIC);

        if (rc == SQLITE_OK)
            rc = sqlite3_bind_int64(t, 2, e->last_used);
        st = run(c, t, rc, "cannot update last use", err);
        if (st == CACHE_OK) {
            mts_err_set(err, "%s: a policy fetched later is stored; kept", e->domain);
            st = CACHE_STALE;
        }
    }
    if (st != CACHE_OK && st != CACHE_STALE)
        metrics_cache_write_error();
    cache_unlock(c);
    free(joined);
    return st;
}

enum cache_status
cache_put_probe(struct cache *c, const struct cache_probe *p, struct mts_err *err)
{
    sqlite3_stmt *s;
    struct cache_val v[CACHE_ROW_PROBE_NCOLS];
    enum cache_status st;

    if (cache_probe_encode(p, v, err) != 0)
        return CACHE_ERROR;
    cache_lock(c);
    s = c->st[ST_PUT_PROBE]; /* after the lock: a heal replaces them */
    st = run(c, s, bind_vals(s, v, CACHE_ROW_PROBE_NCOLS), "cannot store probe row", err);
    cache_unlock(c);
    return st;
}

/* A one-key statement; NOT_FOUND when it changed no row. */
static enum cache_status
keyed_change(struct cache *c, int which, const char *domain, const int64_t *v, const char *what,
             struct mts_err *err)
{
    sqlite3_stmt *s;
    enum cache_status st;
    int rc;

    if (!cache_row_name_ok("domain", domain, err))
        return CACHE_ERROR;
    cache_lock(c);
    s = c->st[which]; /* after the lock: a heal replaces them */
    rc = sqlite3_bind_text(s, 1, domain, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK && v != NULL)
        rc = sqlite3_bind_int64(s, 2, *v);
    st = run(c, s, rc, what, err);
    if (st == CACHE_OK && sqlite3_changes(c->db) == 0) {
        mts_err_set(err, "%s: not in cache", domain);
        st = CACHE_NOT_FOUND;
    }
    cache_unlock(c);
    return st;
}

enum cache_status
cache_touch(struct cache *c, const char *domain, int64_t now, struct mts_err *err)
{
    return keyed_change(c, ST_TOUCH, domain, &now, "cannot update last use", err);
}

enum cache_status
cache_delete(struct cache *c, const char *domain, struct mts_err *err)
{
    return keyed_change(c, ST_DELETE, domain, NULL, "cannot delete cache row", err);
}

enum cache_status
cache_flush_all(struct cache *c, struct mts_err *err)
{
    enum cache_status st = CACHE_OK;
    int rc;

    cache_lock(c);
    /* One transaction, so no reader sees the domains gone but their probes still there. */
    rc = cache_exec(c, "BEGIN IMMEDIATE; DELETE FROM mx_sets; DELETE FROM domains;"
                 " DELETE FROM mx_probes; DELETE FROM tls_probes; COMMIT");
    if (rc != SQLITE_OK) {
        st = cache_fail(c, rc, "cannot flush cache", err);
        (void)cache_exec(c, "ROLLBACK"); /* fails harmlessly when BEGIN did */
    }
    cache_unlock(c);
    return st;
}

enum cache_status
cache_purge_unused(struct cache *c, int64_t older_than, uint64_t *n_deleted, struct mts_err *err)
{
    sqlite3_stmt *s;
    enum cache_status st;

    cache_lock(c);
    s = c->st[ST_PURGE]; /* after the lock: a heal replaces them */
    st = run(c, s, sqlite3_bind_int64(s, 1, older_than), "cannot purge cache", err);
    if (n_deleted != NULL)
        *n_deleted = st == CACHE_OK ? (uint64_t)sqlite3_changes(c->db) : 0;
    cache_unlock(c);
    return st;
}

struct iter {
    char *cursor; /* raw key of the last row read: the next batch starts after it */
    size_t cursor_len, n, scanned, n_bad;
    struct mts_err first_bad;
    struct cache_entry batch[ITER_BATCH];
};

/* Reads one batch of at most lim rows into it->batch; the caller holds the lock. */
static enum cache_status
read_batch(struct cache *c, sqlite3_stmt *s, const int64_t *due, size_t lim, struct iter *it,
           struct mts_err *err)
{
    int rc = sqlite3_bind_text(s, 1, it->cursor != NULL ? it->cursor : "", (int)it->cursor_len,
                               SQLITE_TRANSIENT);
    char *p;

    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(s, 2, (sqlite3_int64)lim);
    for (int i = 0; due != NULL && i < 4 && rc == SQLITE_OK; i++)
        rc = sqlite3_bind_int64(s, 3 + i, due[i]);
    it->n = it->scanned = 0;
    while (rc == SQLITE_OK && (rc = sqlite3_step(s)) == SQLITE_ROW) {
        size_t klen = (size_t)sqlite3_column_bytes(s, 0);
        const void *k = sqlite3_column_text(s, 0);
        if (k == NULL || (p = realloc(it->cursor, klen + 1)) == NULL) {
            mts_err_set(err, "cannot list cache: out of memory");
            return CACHE_ERROR;
        }
        memcpy(p, k, klen);
        it->cursor = p;
        it->cursor_len = klen;
        it->scanned++;
        if (row_to_entry(s, &it->batch[it->n], it->n_bad == 0 ? &it->first_bad : NULL))
            it->n++;
        else
            it->n_bad++;
        rc = SQLITE_OK;
    }
    return rc == SQLITE_DONE ? CACHE_OK : cache_fail(c, rc, "cannot list cache", err);
}

/*
 * Keyset pagination by domain: a batch is read under the lock, then the
 * callbacks run without it, so they may write to the cache, and no read
 * transaction stays open to hold back WAL checkpoints.
 */
static enum cache_status
iterate(struct cache *c, int which, const char *after, const int64_t *due, size_t max_rows,
        cache_row_fn fn, void *arg, struct mts_err *err)
{
    struct iter *it = calloc(1, sizeof(*it));
    enum cache_status st = CACHE_OK;
    int stop = 0;

    if (it == NULL || (after != NULL && (it->cursor = strdup(after)) == NULL)) {
        free(it);
        mts_err_set(err, "cannot list cache: out of memory");
        return CACHE_ERROR;
    }
    if (it->cursor != NULL)
        it->cursor_len = strlen(it->cursor);
    while (st == CACHE_OK && !stop && max_rows > 0) {
        size_t lim = max_rows < ITER_BATCH ? max_rows : ITER_BATCH;
        cache_lock(c);
        st = read_batch(c, c->st[which], due, lim, it, err);
        stmt_done(c->st[which]);
        cache_unlock(c);
        for (size_t i = 0; i < it->n; i++) {
            if (st == CACHE_OK && !stop)
                stop = fn(&it->batch[i], arg);
            cache_entry_free(&it->batch[i]);
        }
        max_rows -= it->n;
        if (it->scanned < lim)
            break;
    }
    if (st == CACHE_OK && it->n_bad > 0) {
        mts_err_set(err, "%zu cache row(s) skipped; first: %s", it->n_bad, it->first_bad.msg);
        st = CACHE_BAD_ROW;
    }
    free(it->cursor);
    free(it);
    return st;
}

enum cache_status
cache_list(struct cache *c, cache_row_fn fn, void *arg, struct mts_err *err)
{
    return iterate(c, ST_LIST, NULL, NULL, SIZE_MAX, fn, arg, err);
}

enum cache_status
cache_due(struct cache *c, int64_t now, int64_t check_interval, int64_t refresh_before,
          int64_t used_since, const char *after, size_t max_rows, cache_row_fn fn, void *arg,
          struct mts_err *err)
{
    /* In the order of ?3..?6 in ST_DUE. */
    const int64_t due[4] = {used_since, check_interval, now, refresh_before};

    return iterate(c, ST_DUE, after, due, max_rows, fn, arg, err);
}

/* ------------------------------------------------------------ tls_probes */

/* Steps s (its parameters bound, rc their status) and hands fn each row. Under the lock. */
static enum cache_status
each_probe_row(struct cache *c, sqlite3_stmt *s, int rc, cache_vals_fn fn, void *arg,
               const char *what, struct mts_err *err)
{
    enum cache_status st = CACHE_OK;

    while (rc == SQLITE_OK || rc == SQLITE_ROW) {
        struct cache_val v[CACHE_TLS_PROBE_NCOLS];

        if ((rc = sqlite3_step(s)) != SQLITE_ROW)
            break;
        read_vals(s, v, CACHE_TLS_PROBE_NCOLS);
        fn(v, arg);
    }
    if (rc != SQLITE_DONE)
        st = cache_fail(c, rc, what, err);
    stmt_done(s);
    return st;
}

enum cache_status
cache_put_tls_probe(struct cache *c, const struct cache_val *v, struct mts_err *err)
{
    sqlite3_stmt *s;
    enum cache_status st;

    cache_lock(c);
    s = c->st[ST_PUT_TLS_PROBE]; /* after the lock: a heal replaces them */
    st = run(c, s, bind_vals(s, v, CACHE_TLS_PROBE_NCOLS), "cannot store probe row", err);
    cache_unlock(c);
    return st;
}

enum cache_status
cache_get_tls_probes(struct cache *c, const char *host, int port, size_t max_rows,
                     cache_vals_fn fn, void *arg, struct mts_err *err)
{
    sqlite3_stmt *s;
    enum cache_status st;
    int rc;

    if (!cache_row_name_ok("MX host", host, err))
        return CACHE_ERROR;
    cache_lock(c);
    s = c->st[ST_GET_TLS_PROBES];
    rc = sqlite3_bind_text(s, 1, host, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int(s, 2, port);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(s, 3, (sqlite3_int64)max_rows);
    /* Few rows (one per address): fn runs under the lock and must not use the cache. */
    st = each_probe_row(c, s, rc, fn, arg, "cannot read probe rows", err);
    cache_unlock(c);
    return st;
}

enum cache_status
cache_list_tls_probes(struct cache *c, size_t max_rows, cache_vals_fn fn, void *arg,
                      struct mts_err *err)
{
    sqlite3_stmt *s;
    enum cache_status st;
    int rc;

    cache_lock(c);
    s = c->st[ST_LIST_TLS_PROBES]; /* after the lock: a heal replaces them */
    rc = sqlite3_bind_int64(s, 1, (sqlite3_int64)max_rows);
    st = each_probe_row(c, s, rc, fn, arg, "cannot list probe rows", err);
    cache_unlock(c);
    return st;
}

enum cache_status
cache_delete_tls_probes(struct cache *c, const char *host, struct mts_err *err)
{
    sqlite3_stmt *s;
    enum cache_status st;

    if (host != NULL && !cache_row_name_ok("MX host", host, err))
        return CACHE_ERROR;
    cache_lock(c);
    s = c->st[host != NULL ? ST_DELETE_TLS_PROBES : ST_FLUSH_TLS_PROBES];
    st = run(c, s, host != NULL ? sqlite3_bind_text(s, 1, host, -1, SQLITE_STATIC) : SQLITE_OK,
             "cannot delete probe rows", err);
    if (st == CACHE_OK && host != NULL && sqlite3_changes(c->db) == 0) {
        mts_err_set(err, "%s: no probe rows in cache", host);
        st = CACHE_NOT_FOUND;
    }
    cache_unlock(c);
    return st;
}

enum cache_status
cache_purge_tls_probes(struct cache *c, int64_t expired_before, struct mts_err *err)
{
    sqlite3_stmt *s;
    enum cache_status st;

    cache_lock(c);
    s = c->st[ST_PURGE_TLS_PROBES];
    st = run(c, s, sqlite3_bind_int64(s, 1, expired_before), "cannot purge probe rows", err);
    cache_unlock(c);
    return st;
}

enum cache_status
cache_tls_probed_since(struct cache *c, int64_t since, size_t max_rows, cache_probed_fn fn,
                       void *arg, struct mts_err *err)
{
    sqlite3_stmt *s;
    enum cache_status st = CACHE_OK;
    int rc;

    cache_lock(c);
    s = c->st[ST_TLS_PROBED_SINCE];
    rc = sqlite3_bind_int64(s, 1, since);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(s, 2, (sqlite3_int64)max_rows);
    while (rc == SQLITE_OK || rc == SQLITE_ROW) {
        const unsigned char *host;

        if ((rc = sqlite3_step(s)) != SQLITE_ROW)
            break;
        host = sqlite3_column_text(s, 0);
        if (host != NULL && sqlite3_column_type(s, 1) == SQLITE_INTEGER)
            fn((const char *)host, sqlite3_column_int64(s, 1), arg);
    }
    if (rc != SQLITE_DONE)
        st = cache_fail(c, rc, "cannot read probe rows", err);
    stmt_done(s);
    cache_unlock(c);
    return st;
}

