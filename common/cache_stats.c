/*
 * cache_stats - the verdict statistics table; see cache_stats.h.
 */
#include "cache_stats.h"

#include <string.h>

#include "cache_int.h"

static const char add_sql[] =
    "INSERT INTO verdict_stats (day, domain, action, outcome, path, rule, dry_run, count)"
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
    " ON CONFLICT (day, domain, action, outcome, path, rule, dry_run)"
    " DO UPDATE SET count = count + excluded.count";

/* Under the lock: prepares sql on db, or says why not. */
static enum cache_status
prepare(struct cache *c, const char *sql, sqlite3_stmt **s, const char *what, struct mts_err *err)
{
    int rc = sqlite3_prepare_v2(c->db, sql, -1, s, NULL);

    return rc == SQLITE_OK ? CACHE_OK : cache_fail(c, rc, what, err);
}

static int
bind_row(sqlite3_stmt *s, const struct stats_row *r)
{
    const char *t[] = {r->k.day, r->k.domain, r->k.action, r->k.outcome, r->k.path, r->k.rule};
    int rc = SQLITE_OK;

    for (int i = 0; rc == SQLITE_OK && i < 6; i++)
        rc = sqlite3_bind_text(s, i + 1, t[i], -1, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int(s, 7, r->k.dry_run ? 1 : 0);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(s, 8, r->count > INT64_MAX ? INT64_MAX : (int64_t)r->count);
    return rc;
}

enum cache_status
cache_stats_add(struct cache *c, const struct stats_row *rows, size_t n, struct mts_err *err)
{
    static const char what[] = "cannot add verdict statistics";
    sqlite3_stmt *s = NULL;
    enum cache_status st;
    int rc;

    if (n == 0)
        return CACHE_OK;
    cache_lock(c);
    st = prepare(c, add_sql, &s, what, err);
    if (st == CACHE_OK && (rc = cache_exec(c, "BEGIN IMMEDIATE")) != SQLITE_OK)
        st = cache_fail(c, rc, what, err);
    for (size_t i = 0; st == CACHE_OK && i < n; i++) {
        if ((rc = bind_row(s, &rows[i])) == SQLITE_OK)
            rc = sqlite3_step(s);
        if (rc != SQLITE_DONE)
            st = cache_fail(c, rc, what, err);
        sqlite3_reset(s);
        sqlite3_clear_bindings(s);
    }
    if (st == CACHE_OK && (rc = cache_exec(c, "COMMIT")) != SQLITE_OK)
        st = cache_fail(c, rc, what, err);
    if (st != CACHE_OK)
        (void)cache_exec(c, "ROLLBACK"); /* fails harmlessly when nothing is open */
    sqlite3_finalize(s);
    cache_unlock(c);
    return st;
}

/* Under the lock: runs sql with text ?1 (NULL: none) and int64 ?2; adds the changes. */
static enum cache_status
run(struct cache *c, const char *sql, const char *t, int64_t v, uint64_t *changes,
    struct mts_err *err)
{
    static const char what[] = "cannot prune verdict statistics";
    sqlite3_stmt *s = NULL;
    enum cache_status st = prepare(c, sql, &s, what, err);
    int rc = SQLITE_OK;

    if (st != CACHE_OK)
        return st;
    if (t != NULL)
        rc = sqlite3_bind_text(s, 1, t, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK && sqlite3_bind_parameter_count(s) >= 2)
        rc = sqlite3_bind_int64(s, 2, v);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(s);
    if (rc != SQLITE_DONE)
        st = cache_fail(c, rc, what, err);
    else
        *changes += (uint64_t)sqlite3_changes(c->db);
    sqlite3_finalize(s);
    return st;
}

enum cache_status
cache_stats_prune(struct cache *c, const char *oldest_day, uint64_t max_rows, uint64_t *deleted,
                  struct mts_err *err)
{
    enum cache_status st;
    uint64_t n = 0;

    cache_lock(c);
    st = run(c, "DELETE FROM verdict_stats WHERE day < ?1", oldest_day, 0, &n, err);
    /* The day of the (max_rows + 1)th newest row goes whole, and every older one. */
    if (st == CACHE_OK && max_rows > 0)
        st = run(c,
                 "DELETE FROM verdict_stats WHERE day <= (SELECT day FROM verdict_stats"
                 " ORDER BY day DESC LIMIT 1 OFFSET ?2)",
                 NULL, max_rows > INT64_MAX ? INT64_MAX : (int64_t)max_rows, &n, err);
    cache_unlock(c);
    if (deleted != NULL)
        *deleted = n;
    return st;
}

/* Copies column i (text of at most max bytes) into dst; false when it does not fit. */
static bool
col(sqlite3_stmt *s, int i, char *dst, size_t dstsz)
{
    const unsigned char *t = sqlite3_column_text(s, i);
    int len = sqlite3_column_bytes(s, i);

    if (sqlite3_column_type(s, i) != SQLITE_TEXT || t == NULL || len < 0 ||
        (size_t)len >= dstsz || memchr(t, '\0', (size_t)len) != NULL)
        return false;
    memcpy(dst, t, (size_t)len);
    dst[len] = '\0';
    return true;
}

enum cache_status
cache_stats_list(struct cache *c, const char *since_day,
                 void (*fn)(const struct stats_row *r, void *arg), void *arg, struct mts_err *err)
{
    static const char what[] = "cannot read verdict statistics";
    sqlite3_stmt *s = NULL;
    enum cache_status st;
    struct stats_row r;
    int rc = SQLITE_DONE;

    cache_lock(c);
    st = prepare(c,
                 "SELECT day, domain, action, outcome, path, rule, dry_run, count"
                 " FROM verdict_stats WHERE day >= ?1 ORDER BY day, domain",
                 &s, what, err);
    if (st == CACHE_OK && (rc = sqlite3_bind_text(s, 1, since_day, -1, SQLITE_STATIC)) != SQLITE_OK)
        st = cache_fail(c, rc, what, err);
    while (st == CACHE_OK && (rc = sqlite3_step(s)) == SQLITE_ROW) {
        memset(&r, 0, sizeof(r));
        if (!col(s, 0, r.k.day, sizeof(r.k.day)) || !col(s, 1, r.k.domain, sizeof(r.k.domain)) ||
            !col(s, 2, r.k.action, sizeof(r.k.action)) ||
            !col(s, 3, r.k.outcome, sizeof(r.k.outcome)) ||
            !col(s, 4, r.k.path, sizeof(r.k.path)) || !col(s, 5, r.k.rule, sizeof(r.k.rule)) ||
            sqlite3_column_type(s, 6) != SQLITE_INTEGER ||
            sqlite3_column_type(s, 7) != SQLITE_INTEGER || sqlite3_column_int64(s, 7) < 0)
            continue;
        r.k.dry_run = sqlite3_column_int64(s, 6) != 0;
        r.count = (uint64_t)sqlite3_column_int64(s, 7);
        fn(&r, arg);
    }
    if (st == CACHE_OK && rc != SQLITE_DONE)
        st = cache_fail(c, rc, what, err);
    sqlite3_finalize(s);
    cache_unlock(c);
    return st;
}
