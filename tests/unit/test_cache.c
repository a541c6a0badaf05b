/*
 * test_cache - unit tests for common/cache.c.
 *
 * Every test gets a fresh scratch directory (mkdtemp) removed afterwards.
 * Rows that this code would never write are made with a raw sqlite3
 * connection, as another version or an operator with the sqlite3 shell
 * could. The tests run as root in CI, where file permissions do not stop
 * writes: read-only access is tested through cache_open_readonly, and the
 * chmod case is skipped for root.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cache.h"
#include "cache_row.h"
#include "probecache.h"
#include "mxmatch.h"

static char dir[64];

static int
dir_setup(void **state)
{
    (void)state;
    (void)snprintf(dir, sizeof(dir), "/tmp/test_cache.XXXXXX");
    return mkdtemp(dir) == NULL ? -1 : 0;
}

static int
dir_teardown(void **state)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    char p[512];

    (void)state;
    if (d == NULL)
        return -1;
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        (void)snprintf(p, sizeof(p), "%s/%s", dir, de->d_name);
        (void)chmod(p, 0600);
        (void)unlink(p);
    }
    (void)closedir(d);
    return rmdir(dir);
}

static const char *
db_path(char *buf, size_t sz)
{
    int n = snprintf(buf, sz, "%s/cache.db", dir);
    assert_true(n > 0 && (size_t)n < sz);
    return buf;
}

static struct cache *
open_ok(const char *path)
{
    struct cache *c = NULL;
    struct mts_err err;

    mts_err_clear(&err);
    if (cache_open(path, 2000, &c, &err) != CACHE_OK)
        fail_msg("cache_open(%s): %s", path, err.msg);
    return c;
}

/* e->mx = the n patterns given, as the policy parser hands them over. */
static void
set_mx(struct cache_entry *e, size_t n, ...)
{
    va_list ap;

    mxmatch_list_free(e->mx, e->n_mx);
    e->mx = calloc(n + 1, sizeof(*e->mx));
    assert_non_null(e->mx);
    va_start(ap, n);
    for (e->n_mx = 0; e->n_mx < n; e->n_mx++)
        assert_non_null(e->mx[e->n_mx] = strdup(va_arg(ap, const char *)));
    va_end(ap);
}

/* Do both rows hold the same mx list? */
static bool
same_mx(const struct cache_entry *a, const struct cache_entry *b)
{
    if (a->n_mx != b->n_mx)
        return false;
    for (size_t i = 0; i < a->n_mx; i++)
        if (strcmp(a->mx[i], b->mx[i]) != 0)
            return false;
    return true;
}

/* A valid policy row with distinct values in every field. */
static void
make_entry(struct cache_entry *e, const char *domain)
{
    memset(e, 0, sizeof(*e));
    (void)snprintf(e->domain, sizeof(e->domain), "%s", domain);
    (void)snprintf(e->txt_id, sizeof(e->txt_id), "20240101T000000");
    e->has_policy = true;
    e->mode = POLICY_MODE_TESTING;
    e->max_age = 604800;
    set_mx(e, 2, "mx1.example.net", "*.mail.example.net");
    e->policy_text = strdup("version: STSv1\nmode: testing\nmx: mx1.example.net\n"
                            "mx: *.mail.example.net\nmax_age: 604800\n");
    assert_non_null(e->mx);
    assert_non_null(e->policy_text);
    e->fetched_at = 1000;
    e->expires_at = 1000 + 604800;
    e->checked_at = 1100;
    e->last_used = 1200;
    e->has_status = true;
    e->status = STATUS_TESTING;
    (void)snprintf(e->dnssec, sizeof(e->dnssec), "secure");
    (void)snprintf(e->last_error, sizeof(e->last_error), "previous fetch: HTTP 503");
    (void)snprintf(e->fetch_failed_id, sizeof(e->fetch_failed_id), "abc123");
    e->fetch_failed_at = 1300;
}

static void
put_ok(struct cache *c, const struct cache_entry *e)
{
    struct mts_err err;

    if (cache_put(c, e, &err) != CACHE_OK)
        fail_msg("cache_put(%s): %s", e->domain, err.msg);
}

static void
put_simple(struct cache *c, const char *domain, int64_t checked, int64_t expires, int64_t used)
{
    struct cache_entry e;

    make_entry(&e, domain);
    e.checked_at = checked;
    e.expires_at = expires;
    e.last_used = used;
    put_ok(c, &e);
    cache_entry_free(&e);
}

/* Another process's connection holding path's write lock (BEGIN EXCLUSIVE,
 * with a row written in it), until sqlite3_close. */
static sqlite3 *
lock_as_other_process(const char *path)
{
    sqlite3 *raw = NULL;

    assert_int_equal(sqlite3_open(path, &raw), SQLITE_OK);
    assert_int_equal(sqlite3_exec(raw,
                                  "BEGIN EXCLUSIVE; INSERT INTO domains (domain) "
                                  "VALUES ('raw.example')",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    return raw;
}


struct collect {
    char names[128][CACHE_DOMAIN_MAX + 1];
    size_t n;
    size_t stop_after; /* 0: never */
    struct cache *c;   /* set: delete each row from inside the callback */
};

static int
collect_fn(const struct cache_entry *e, void *arg)
{
    struct collect *col = arg;

    if (col->n < 128)
        (void)snprintf(col->names[col->n], sizeof(col->names[0]), "%s", e->domain);
    col->n++;
    if (col->c != NULL && cache_delete(col->c, e->domain, NULL) != CACHE_OK)
        return 1;
    return col->stop_after != 0 && col->n >= col->stop_after;
}

static int
count_fn(const struct cache_entry *e, void *arg)
{
    (void)e;
    (*(size_t *)arg)++;
    return 0;
}

static size_t
count_rows(struct cache *c)
{
    size_t n = 0;
    struct mts_err err;

    if (cache_list(c, count_fn, &n, &err) != CACHE_OK)
        fail_msg("cache_list: %s", err.msg);
    return n;
}

static void
raw_exec(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    char *msg = NULL;

    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK)
        fail_msg("raw sql %s: %s", sql, msg);
    assert_int_equal(sqlite3_close(db), SQLITE_OK);
}

static int64_t
raw_int(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *s = NULL;
    int64_t v;

    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &s, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(s), SQLITE_ROW);
    v = sqlite3_column_int64(s, 0);
    assert_int_equal(sqlite3_finalize(s), SQLITE_OK);
    assert_int_equal(sqlite3_close(db), SQLITE_OK);
    return v;
}

/* ------------------------------------------------------------------ tests */

static void
test_roundtrip_all_fields(void **state)
{
    struct cache *c = open_ok(":memory:");
    struct cache_entry in, out;
    struct mts_err err;

    (void)state;
    make_entry(&in, "partner.example");
    put_ok(c, &in);
    assert_int_equal(cache_get(c, "partner.example", &out, &err), CACHE_OK);
    assert_string_equal(out.domain, in.domain);
    assert_string_equal(out.txt_id, in.txt_id);
    assert_true(out.has_policy);
    assert_int_equal(out.mode, POLICY_MODE_TESTING);
    assert_int_equal(out.max_age, 604800);
    assert_true(same_mx(&out, &in));
    assert_string_equal(out.policy_text, in.policy_text);
    assert_int_equal(out.fetched_at, 1000);
    assert_int_equal(out.expires_at, 1000 + 604800);
    assert_int_equal(out.checked_at, 1100);
    assert_int_equal(out.last_used, 1200);
    assert_true(out.has_status);
    assert_int_equal(out.status, STATUS_TESTING);
    assert_string_equal(out.dnssec, "secure");
    assert_string_equal(out.last_error, in.last_error);
    assert_string_equal(out.fetch_failed_id, "abc123");
    assert_int_equal(out.fetch_failed_at, 1300);
    cache_entry_free(&out);
    cache_entry_free(&in);
    cache_close(c);
}

static void
test_negative_entry_roundtrip(void **state)
{
    struct cache *c = open_ok(":memory:");
    struct cache_entry in, out;
    struct mts_err err;

    (void)state;
    memset(&in, 0, sizeof(in));
    (void)snprintf(in.domain, sizeof(in.domain), "nosts.example");
    in.mode = (enum policy_mode)77; /* ignored without a policy */
    in.has_status = true;
    in.status = STATUS_ABSENT;
    /* Times out of 0 .. CACHE_TIME_MAX are refused: a sum with them could overflow. */
    in.expires_at = -5;
    assert_int_equal(cache_put(c, &in, &err), CACHE_ERROR);
    assert_non_null(strstr(err.msg, "expires_at"));
    in.expires_at = 5;
    in.checked_at = INT64_MAX;
    assert_int_equal(cache_put(c, &in, &err), CACHE_ERROR);
    assert_non_null(strstr(err.msg, "checked_at"));
    in.checked_at = CACHE_TIME_MAX;
    put_ok(c, &in);
    assert_int_equal(cache_get(c, "nosts.example", &out, &err), CACHE_OK);
    assert_false(out.has_policy);
    assert_int_equal(out.mode, POLICY_MODE_NONE);
    assert_null(out.mx);
    assert_null(out.policy_text);
    assert_string_equal(out.txt_id, "");
    assert_string_equal(out.dnssec, "");
    assert_int_equal(out.expires_at, 5);
    assert_true(out.checked_at == CACHE_TIME_MAX);
    assert_true(out.has_status);
    assert_int_equal(out.status, STATUS_ABSENT);
    cache_entry_free(&out);

    /* An empty policy body is kept as "" (not NULL): it is not a missing one. */
    make_entry(&in, "empty.example");
    free(in.policy_text);
    in.policy_text = strdup("");
    put_ok(c, &in);
    assert_int_equal(cache_get(c, "empty.example", &out, &err), CACHE_OK);
    assert_non_null(out.policy_text);
    assert_string_equal(out.policy_text, "");
    cache_entry_free(&out);
    cache_entry_free(&in);
    cache_close(c);
}

static void
test_not_found(void **state)
{
    struct cache *c = open_ok(":memory:");
    struct cache_entry out;
    struct cache_probe p;
    struct mts_err err;

    (void)state;
    out.mx = (char **)&out; /* must be zeroed, so that free is safe */
    assert_int_equal(cache_get(c, "absent.example", &out, &err), CACHE_NOT_FOUND);
    assert_null(out.mx);
    assert_non_null(strstr(err.msg, "absent.example"));
    cache_entry_free(&out);
    assert_int_equal(cache_touch(c, "absent.example", 5, &err), CACHE_NOT_FOUND);
    assert_int_equal(cache_delete(c, "absent.example", &err), CACHE_NOT_FOUND);
    assert_int_equal(cache_get_probe(c, "mx.absent.example", &p, &err), CACHE_NOT_FOUND);
    cache_close(c);
}

static void
test_update_keeps_one_row(void **state)
{
    struct cache *c = open_ok(":memory:");
    struct cache_entry e, out;
    struct mts_err err;

    (void)state;
    make_entry(&e, "partner.example");
    put_ok(c, &e);
    e.mode = POLICY_MODE_ENFORCE;
    e.max_age = 86400;
    set_mx(&e, 1, "mx.partner.example");
    e.last_error[0] = '\0';
    e.dnssec[0] = '\0';
    put_ok(c, &e);
    assert_int_equal(count_rows(c), 1);
    assert_int_equal(cache_get(c, "partner.example", &out, &err), CACHE_OK);
    assert_int_equal(out.mode, POLICY_MODE_ENFORCE);
    assert_int_equal(out.max_age, 86400);
    assert_int_equal(out.n_mx, 1);
    assert_string_equal(out.mx[0], "mx.partner.example");
    assert_string_equal(out.last_error, "");
    assert_string_equal(out.dnssec, "");
    cache_entry_free(&out);
    cache_entry_free(&e);
    cache_close(c);
}

/*
 * Two writers (two connections, as two processes or a runtime before and
 * after a reload) refresh one domain: the one that read the row before the
 * other fetched a newer policy must not overwrite it.
 */
static void
test_older_policy_never_overwrites_newer(void **state)
{
    char path[256];
    struct cache *a, *b;
    struct cache_entry older, newer, out;
    struct cache_mxset m = {0};
    char *hosts_old[1] = {"old.example.net"}, *hosts_new[1] = {"new.example.net"};
    struct mts_err err;

    (void)state;
    a = open_ok(db_path(path, sizeof(path)));
    b = open_ok(path);
    make_entry(&older, "partner.example");
    put_ok(a, &older);
    /* Writer b fetches id "new" at 5000; writer a, slower, then stores what it
     * derived from the row as it was (fetched at 1000), used at 9000. */
    make_entry(&newer, "partner.example");
    (void)snprintf(newer.txt_id, sizeof(newer.txt_id), "new");
    newer.fetched_at = 5000;
    newer.expires_at = 5000 + 604800;
    put_ok(b, &newer);
    older.checked_at = 6000;
    older.last_used = 9000;
    assert_int_equal(cache_put(a, &older, &err), CACHE_STALE);
    assert_non_null(strstr(err.msg, "partner.example"));
    assert_int_equal(cache_get(a, "partner.example", &out, &err), CACHE_OK);
    assert_string_equal(out.txt_id, "new");
    assert_int_equal(out.fetched_at, 5000);
    assert_int_equal(out.last_used, 9000); /* the use still counts */
    cache_entry_free(&out);
    /* The same fetch time (a re-check with no fetch) is written. */
    newer.checked_at = 7000;
    put_ok(a, &newer);
    assert_int_equal(cache_get(b, "partner.example", &out, &err), CACHE_OK);
    assert_int_equal(out.checked_at, 7000);
    cache_entry_free(&out);
    /* MX sets alike. */
    (void)snprintf(m.domain, sizeof(m.domain), "partner.example");
    m.n = 1;
    m.hosts = hosts_new;
    m.fetched_at = 500;
    m.expires_at = 900;
    assert_int_equal(cache_put_mx(b, &m, &err), CACHE_OK);
    m.hosts = hosts_old;
    m.fetched_at = 400;
    assert_int_equal(cache_put_mx(a, &m, &err), CACHE_STALE);
    assert_int_equal(cache_get_mx(a, "partner.example", &m, &err), CACHE_OK);
    assert_string_equal(m.hosts[0], "new.example.net");
    cache_mxset_free(&m);
    cache_entry_free(&older);
    cache_entry_free(&newer);
    cache_close(a);
    cache_close(b);
}

static void
test_put_never_moves_last_used_back(void **state)
{
    struct cache *c = open_ok(":memory:");
    struct cache_entry out;
    struct mts_err err;

    (void)state;
    put_simple(c, "a.example", 0, 0, 500);
    /* A refresher that read the row before a touch must not undo the touch. */
    put_simple(c, "a.example", 0, 0, 100);
    assert_int_equal(cache_get(c, "a.example", &out, &err), CACHE_OK);
    assert_int_equal(out.last_used, 500);
    cache_entry_free(&out);
    cache_close(c);
}

static void
test_touch(void **state)
{
    struct cache *c = open_ok(":memory:");
    struct cache_entry out;
    struct mts_err err;

    (void)state;
    put_simple(c, "a.example", 0, 0, 100);
    assert_int_equal(cache_touch(c, "a.example", 900, &err), CACHE_OK);
    assert_int_equal(cache_touch(c, "a.example", 300, &err), CACHE_OK); /* older: ignored */
    assert_int_equal(cache_get(c, "a.example", &out, &err), CACHE_OK);
    assert_int_equal(out.last_used, 900);
    cache_entry_free(&out);
    cache_close(c);
}

static void
test_delete(void **state)
{
    struct cache *c = open_ok(":memory:");
    struct cache_entry out;
    struct mts_err err;

    (void)state;
    put_simple(c, "a.example", 0, 0, 1);
    put_simple(c, "b.example", 0, 0, 1);
    assert_int_equal(cache_delete(c, "a.example", &err), CACHE_OK);
    assert_int_equal(cache_get(c, "a.example", &out, &err), CACHE_NOT_FOUND);
    assert_int_equal(cache_get(c, "b.example", &out, &err), CACHE_OK);
    cache_entry_free(&out);
    assert_int_equal(cache_delete(c, "a.example", &err), CACHE_NOT_FOUND);
    cache_close(c);
}

static void
test_flush_all(void **state)
{
    struct cache *c = open_ok(":memory:");
    struct cache_probe p = {.host = "mx.a.example", .starttls = true};
    struct mts_err err;

    (void)state;
    for (int i = 0; i < 10; i++) {
        char d[32];
        (void)snprintf(d, sizeof(d), "d%d.example", i);
        put_simple(c, d, 0, 0, 1);
    }
    assert_int_equal(cache_put_probe(c, &p, &err), CACHE_OK);
    assert_int_equal(cache_flush_all(c, &err), CACHE_OK);
    assert_int_equal(count_rows(c), 0);
    assert_int_equal(cache_get_probe(c, "mx.a.example", &p, &err), CACHE_NOT_FOUND);
    put_simple(c, "after.example", 0, 0, 1); /* still usable */
    assert_int_equal(count_rows(c), 1);
    cache_close(c);
}

static void
test_list_order_and_batches(void **state)
{
    struct cache *c = open_ok(":memory:");
    struct collect *col = calloc(1, sizeof(*col));
    struct mts_err err;
    char d[32];

    (void)state;
    assert_non_null(col);
    /* 100 rows (several ITER_BATCH batches), inserted out of order. */
    for (int i = 0; i < 100; i++) {
        (void)snprintf(d, sizeof(d), "d%03d.example", (i * 37) % 100);
        put_simple(c, d, 0, 0, 1);
    }
    assert_int_equal(cache_list(c, collect_fn, col, &err), CACHE_OK);
    assert_int_equal(col->n, 100);
    for (int i = 0; i < 100; i++) {
        (void)snprintf(d, sizeof(d), "d%03d.example", i);
        assert_string_equal(col->names[i], d);
    }
    free(col);
    cache_close(c);
}

static void
test_list_callback_may_write_and_stop(void **state)
{
    struct cache *c = open_ok(":memory:");
    struct collect *col = calloc(1, sizeof(*col));
    struct mts_err err;
    char d[32];

    (void)state;
    assert_non_null(col);
    for (int i = 0; i < 50; i++) {
        (void)snprintf(d, sizeof(d), "d%03d.example", i);
        put_simple(c, d, 0, 0, 1);
    }
    /* No lock is held during the callback: deleting through the same cache works. */
    col->c = c;
    col->stop_after = 40;
    assert_int_equal(cache_list(c, collect_fn, col, &err), CACHE_OK);
    assert_int_equal(col->n, 40);
    assert_int_equal(count_rows(c), 10);
    free(col);
    cache_close(c);
}

static void
test_due_by_check_interval(void **state)
{
    struct cache *c = open_ok(":memory:");
    struct collect *col = calloc(1, sizeof(*col));
    struct mts_err err;

    (void)state;
    assert_non_null(col);
    /* now = 10000, check_interval = 3600: checked at or before 6400 is due. */
    put_simple(c, "due.example", 6400, 1000000, 9000);
    put_simple(c, "fresh.example", 6401, 1000000, 9000);
    assert_int_equal(cache_due(c, 10000, 3600, 600, 0, NULL, 100, collect_fn, col, &err), CACHE_OK);
    assert_int_equal(col->n, 1);
    assert_string_equal(col->names[0], "due.example");
    free(col);
    cache_close(c);
}

static void
test_due_by_expiry(void **state)
{
    struct cache *c = open_ok(":memory:");
    struct collect *col = calloc(1, sizeof(*col));
    struct mts_err err;

    (void)state;
    assert_non_null(col);
    /* now = 10000, refresh_before = 600: expiring at or before 10600 is due. */
    put_simple(c, "expiring.example", 9999, 10600, 9000);
    put_simple(c, "expired.example", 9999, 5000, 9000);
    put_simple(c, "later.example", 9999, 10601, 9000);
    assert_int_equal(cache_due(c, 10000, 3600, 600, 0, NULL, 100, collect_fn, col, &err), CACHE_OK);
    assert_int_equal(col->n, 2);
    assert_string_equal(col->names[0], "expired.example");
    assert_string_equal(col->names[1], "expiring.example");
    free(col);
    cache_close(c);
}

static void
test_due_by_last_used_and_max_rows(void **state)
{
    struct cache *c = open_ok(":memory:");
    struct collect *col = calloc(1, sizeof(*col));
    struct mts_err err;
    char d[32];

    (void)state;
    assert_non_null(col);
    put_simple(c, "unused.example", 0, 0, 4999); /* due, but nobody asked lately */
    put_simple(c, "used.example", 0, 0, 5000);
    assert_int_equal(cache_due(c, 10000, 3600, 600, 5000, NULL, 100, collect_fn, col, &err), CACHE_OK);
    assert_int_equal(col->n, 1);
    assert_string_equal(col->names[0], "used.example");

    for (int i = 0; i < 70; i++) {
        (void)snprintf(d, sizeof(d), "m%02d.example", i);
        put_simple(c, d, 0, 0, 9000);
    }
    memset(col, 0, sizeof(*col));
    assert_int_equal(cache_due(c, 10000, 3600, 600, 5000, NULL, 45, collect_fn, col, &err), CACHE_OK);
    assert_int_equal(col->n, 45);
    assert_string_equal(col->names[0], "m00.example");
    assert_string_equal(col->names[44], "m44.example");
    memset(col, 0, sizeof(*col));
    assert_int_equal(cache_due(c, 10000, 3600, 600, 5000, NULL, 0, collect_fn, col, &err), CACHE_OK);
    assert_int_equal(col->n, 0);
    free(col);
    cache_close(c);
}

static void
test_purge_unused(void **state)
{
    struct cache *c = open_ok(":memory:");
    struct collect *col = calloc(1, sizeof(*col));
    struct mts_err err;
    uint64_t n = 99;

    (void)state;
    assert_non_null(col);
    put_simple(c, "old1.example", 0, 0, 100);
    put_simple(c, "old2.example", 0, 0, 499);
    put_simple(c, "edge.example", 0, 0, 500);
    put_simple(c, "new.example", 0, 0, 900);
    assert_int_equal(cache_purge_unused(c, 500, &n, &err), CACHE_OK);
    assert_int_equal(n, 2);
    assert_int_equal(cache_list(c, collect_fn, col, &err), CACHE_OK);
    assert_int_equal(col->n, 2);
    assert_string_equal(col->names[0], "edge.example");
    assert_string_equal(col->names[1], "new.example");
    assert_int_equal(cache_purge_unused(c, 500, NULL, &err), CACHE_OK);
    free(col);
    cache_close(c);
}

static void
test_probe_roundtrip(void **state)
{
    struct cache *c = open_ok(":memory:");
    struct cache_probe in = {.host = "mx1.partner.example",
                             .probed_at = 10,
                             .expires_at = 3610,
                             .starttls = true,
                             .tls_version = "TLSv1.3",
                             .cert_valid = false,
                             .error = "certificate name mismatch"};
    struct cache_probe out;
    struct mts_err err;

    (void)state;
    assert_int_equal(cache_put_probe(c, &in, &err), CACHE_OK);
    in.probed_at = 20; /* replace */
    assert_int_equal(cache_put_probe(c, &in, &err), CACHE_OK);
    assert_int_equal(cache_get_probe(c, "mx1.partner.example", &out, &err), CACHE_OK);
    assert_string_equal(out.host, in.host);
    assert_int_equal(out.probed_at, 20);
    assert_int_equal(out.expires_at, 3610);
    assert_true(out.starttls);
    assert_false(out.cert_valid);
    assert_string_equal(out.tls_version, "TLSv1.3");
    assert_string_equal(out.error, in.error);
    memset(in.tls_version, 'x', sizeof(in.tls_version)); /* unterminated */
    assert_int_equal(cache_put_probe(c, &in, &err), CACHE_ERROR);
    cache_close(c);
}

static void
test_invalid_put_refused(void **state)
{
    struct cache *c = open_ok(":memory:");
    struct cache_entry e;
    struct mts_err err;

    (void)state;
    make_entry(&e, "Upper.Example"); /* not normalised: would be a second key */
    assert_int_equal(cache_put(c, &e, &err), CACHE_ERROR);
    assert_non_null(strstr(err.msg, "invalid domain"));
    (void)snprintf(e.domain, sizeof(e.domain), "ok.example");
    memset(e.txt_id, 'a', sizeof(e.txt_id)); /* unterminated */
    assert_int_equal(cache_put(c, &e, &err), CACHE_ERROR);
    (void)snprintf(e.txt_id, sizeof(e.txt_id), "id;1"); /* not an sts-id */
    assert_int_equal(cache_put(c, &e, &err), CACHE_ERROR);
    (void)snprintf(e.txt_id, sizeof(e.txt_id), "1");
    e.status = (enum status_kind)42; /* not a status */
    assert_int_equal(cache_put(c, &e, &err), CACHE_ERROR);
    e.status = STATUS_ENFORCE;
    e.mode = (enum policy_mode)7;
    assert_int_equal(cache_put(c, &e, &err), CACHE_ERROR);
    e.mode = POLICY_MODE_ENFORCE;
    e.max_age = POLICY_MAX_AGE_LIMIT + 1;
    assert_int_equal(cache_put(c, &e, &err), CACHE_ERROR);
    e.max_age = 1;
    struct cache_entry out;
    assert_int_equal(cache_get(c, "", &out, &err), CACHE_ERROR);
    assert_int_equal(cache_get(c, "UPPER.example", &out, &err), CACHE_ERROR);
    assert_int_equal(count_rows(c), 0);
    cache_entry_free(&e);
    cache_close(c);
}

static void
test_schema_version_and_mode(void **state)
{
    char path[256];
    struct cache *c;
    struct stat st;
    mode_t old = umask(022);

    (void)state;
    c = open_ok(db_path(path, sizeof(path)));
    umask(old);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0640);
    cache_close(c);
    assert_int_equal(raw_int(path, "PRAGMA user_version"), CACHE_SCHEMA_VERSION);
    assert_int_equal(raw_int(path, "SELECT count(*) FROM sqlite_master WHERE name IN"
                                   " ('domains','mx_probes','domains_expires_at',"
                                   "'domains_last_used','mx_sets','domains_delete_mx_set')"),
                     6);
    /* A second open of a current schema changes nothing. */
    cache_close(open_ok(path));
    assert_int_equal(raw_int(path, "PRAGMA user_version"), CACHE_SCHEMA_VERSION);
}

static void
test_wal_mode(void **state)
{
    char path[256];
    sqlite3 *db;
    sqlite3_stmt *s;
    struct cache *c;

    (void)state;
    c = open_ok(db_path(path, sizeof(path)));
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &s, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(s), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(s, 0), "wal");
    sqlite3_finalize(s);
    sqlite3_close(db);
    cache_close(c);
}

static void
test_future_version_refused(void **state)
{
    char path[256];
    struct cache *c = (struct cache *)path;
    struct mts_err err;
    char want[64];

    (void)state;
    cache_close(open_ok(db_path(path, sizeof(path))));
    raw_exec(path, "PRAGMA user_version = 99");
    assert_int_equal(cache_open(path, 100, &c, &err), CACHE_ERROR);
    assert_null(c);
    (void)snprintf(want, sizeof(want), "version 99 is newer than this program supports (%d)",
                   CACHE_SCHEMA_VERSION);
    assert_non_null(strstr(err.msg, want));
    assert_non_null(strstr(err.msg, path));
    assert_int_equal(cache_open_readonly(path, 100, &c, &err), CACHE_ERROR);
    assert_non_null(strstr(err.msg, "newer"));
    /* Refusing must not have touched the file. */
    assert_int_equal(raw_int(path, "PRAGMA user_version"), 99);
}

/* The tables as schema 3 made them (cache_conn.c, steps 1 to 3). */
#define SCHEMA3_SQL \
    "CREATE TABLE tls_probes (host TEXT NOT NULL, address TEXT NOT NULL," \
    " port INTEGER NOT NULL, status TEXT NOT NULL, grade TEXT NOT NULL," \
    " rfc8461 INTEGER NOT NULL DEFAULT 0, tls INTEGER NOT NULL DEFAULT 0, reason TEXT," \
    " protocol TEXT, cipher TEXT, cert_names TEXT, cert_not_after INTEGER NOT NULL" \
    " DEFAULT 0, probed_at INTEGER NOT NULL DEFAULT 0, expires_at INTEGER NOT NULL" \
    " DEFAULT 0, PRIMARY KEY (host, address, port));" \
    "CREATE TABLE domains (domain TEXT PRIMARY KEY NOT NULL, txt_id TEXT," \
    " has_policy INTEGER NOT NULL DEFAULT 0, mode TEXT, max_age INTEGER NOT NULL DEFAULT 0," \
    " mx TEXT, policy_text TEXT, fetched_at INTEGER NOT NULL DEFAULT 0," \
    " expires_at INTEGER NOT NULL DEFAULT 0, checked_at INTEGER NOT NULL DEFAULT 0," \
    " last_used INTEGER NOT NULL DEFAULT 0, status TEXT, dnssec TEXT, last_error TEXT," \
    " fetch_failed_id TEXT, fetch_failed_at INTEGER NOT NULL DEFAULT 0);" \
    "CREATE TABLE mx_probes (host TEXT PRIMARY KEY NOT NULL," \
    " probed_at INTEGER NOT NULL DEFAULT 0, expires_at INTEGER NOT NULL DEFAULT 0," \
    " starttls INTEGER NOT NULL DEFAULT 0, tls_version TEXT," \
    " cert_valid INTEGER NOT NULL DEFAULT 0, error TEXT);" \
    "CREATE TABLE mx_sets (domain TEXT PRIMARY KEY NOT NULL, hosts TEXT NOT NULL," \
    " fetched_at INTEGER NOT NULL DEFAULT 0, expires_at INTEGER NOT NULL DEFAULT 0," \
    " dnssec TEXT);"

/* Schema 4 adds DANE to the probe rows: a version-3 file with a probe row
 * migrates, and its row reads back with no DANE (a NULL dane word). */
static void
test_migrate_3_to_4_keeps_probe_rows(void **state)
{
    char path[256];
    struct cache *c = NULL;
    struct mts_err err;
    struct probecache_row rows[2];
    size_t n = 0, n_bad = 0;

    (void)state;
    db_path(path, sizeof(path));
    raw_exec(path, SCHEMA3_SQL
             "INSERT INTO tls_probes VALUES ('mx.old.test', '192.0.2.1', 25, 'ok', 'good', 1, 1,"
             " NULL, 'TLSv1.3', NULL, NULL, 0, 100, 200);"
             "PRAGMA user_version = 3;");
    assert_int_equal(cache_open(path, 1000, &c, &err), CACHE_OK);
    assert_int_equal(raw_int(path, "PRAGMA user_version"), CACHE_SCHEMA_VERSION);
    assert_int_equal(probecache_get(c, "mx.old.test", 25, rows, 2, &n, &n_bad, &err), CACHE_OK);
    assert_int_equal(n, 1);
    assert_int_equal(n_bad, 0);
    assert_int_equal(rows[0].grade, TLSPROBE_GRADE_GOOD);
    assert_int_equal(rows[0].dane, TLSA_DANE_NONE);
    assert_string_equal(rows[0].tlsa, "");
    /* Schema 5: a row without DANE from before it was WebPKI's (pkix = rfc8461). */
    assert_true(rows[0].pkix);
    /* A DANE row from before schema 5 (pkix NULL) did not judge WebPKI:
     * not known to be valid. */
    raw_exec(path, "UPDATE tls_probes SET dane = 'verified', dane_detail = '3 1 1'");
    assert_int_equal(probecache_get(c, "mx.old.test", 25, rows, 2, &n, &n_bad, &err), CACHE_OK);
    assert_int_equal(n, 1);
    assert_true(rows[0].rfc8461);
    assert_false(rows[0].pkix);
    /* Written by this schema, it round-trips. */
    rows[0].pkix = true;
    assert_int_equal(probecache_put(c, &rows[0], &err), CACHE_OK);
    assert_int_equal(probecache_get(c, "mx.old.test", 25, rows, 2, &n, &n_bad, &err), CACHE_OK);
    assert_true(rows[0].pkix);
    assert_int_equal(raw_int(path, "SELECT pkix FROM tls_probes"), 1);
    /* Not an integer: the row is invalid (rows are untrusted). */
    raw_exec(path, "UPDATE tls_probes SET pkix = 'yes'");
    assert_int_equal(probecache_get(c, "mx.old.test", 25, rows, 2, &n, &n_bad, &err), CACHE_OK);
    assert_int_equal(n, 0);
    assert_int_equal(n_bad, 1);
    raw_exec(path, "UPDATE tls_probes SET pkix = 1");
    assert_int_equal(probecache_get(c, "mx.old.test", 25, rows, 2, &n, &n_bad, &err), CACHE_OK);
    /* A row of schema 4 keeps its DANE fields. */
    rows[0].dane = TLSA_DANE_FAILED;
    snprintf(rows[0].dane_detail, sizeof(rows[0].dane_detail), "tlsa-invalid: no match");
    snprintf(rows[0].tlsa, sizeof(rows[0].tlsa), "secure _25._tcp.mx.old.test: 3 1 1 abcd");
    assert_int_equal(probecache_put(c, &rows[0], &err), CACHE_OK);
    assert_int_equal(probecache_get(c, "mx.old.test", 25, rows, 2, &n, &n_bad, &err), CACHE_OK);
    assert_int_equal(rows[0].dane, TLSA_DANE_FAILED);
    assert_string_equal(rows[0].dane_detail, "tlsa-invalid: no match");
    assert_string_equal(rows[0].tlsa, "secure _25._tcp.mx.old.test: 3 1 1 abcd");
    /* An unknown DANE word makes the row invalid (rows are untrusted). */
    raw_exec(path, "UPDATE tls_probes SET dane = 'maybe'");
    assert_int_equal(probecache_get(c, "mx.old.test", 25, rows, 2, &n, &n_bad, &err), CACHE_OK);
    assert_int_equal(n, 0);
    assert_int_equal(n_bad, 1);
    cache_close(c);
}

/* Schema 7: a database of schema 6 opens, its rows read as learnt here
 * (source NULL), and gains the source of domain and probe rows. */
static void
test_migrate_6_to_7_adds_source(void **state)
{
    char path[256];
    struct cache *c = NULL;
    struct cache_entry e;
    struct mts_err err;
    struct probecache_row rows[2];
    size_t n = 0, n_bad = 0;

    (void)state;
    db_path(path, sizeof(path));
    raw_exec(path, SCHEMA3_SQL
             "ALTER TABLE tls_probes ADD COLUMN dane TEXT;"
             "ALTER TABLE tls_probes ADD COLUMN dane_detail TEXT;"
             "ALTER TABLE tls_probes ADD COLUMN tlsa TEXT;"
             "ALTER TABLE tls_probes ADD COLUMN pkix INTEGER;"
             "CREATE TABLE verdict_stats (day TEXT NOT NULL, domain TEXT NOT NULL,"
             " action TEXT NOT NULL, outcome TEXT NOT NULL, path TEXT NOT NULL, rule TEXT NOT NULL,"
             " dry_run INTEGER NOT NULL DEFAULT 0, count INTEGER NOT NULL DEFAULT 0,"
             " PRIMARY KEY (day, domain, action, outcome, path, rule, dry_run));"
             "INSERT INTO domains VALUES ('old.test', 'id1', 1, 'enforce', 86400, 'mx.old.test',"
             " 'version: STSv1', 100, 86500, 100, 100, 'enforce', 'secure', NULL, NULL, 0);"
             "INSERT INTO tls_probes VALUES ('mx.old.test', '192.0.2.1', 25, 'ok', 'good', 1, 1,"
             " NULL, 'TLSv1.3', NULL, NULL, 0, 100, 200, 'none', NULL, NULL, 1);"
             "PRAGMA user_version = 6;");
    /* A reader cannot migrate: it says so. */
    assert_int_equal(cache_open_readonly(path, 1000, &c, &err), CACHE_ERROR);
    assert_int_equal(cache_open(path, 1000, &c, &err), CACHE_OK);
    assert_int_equal(raw_int(path, "PRAGMA user_version"), 7);
    assert_int_equal(raw_int(path, "SELECT count(*) FROM pragma_table_info('domains')"
                                   " WHERE name = 'source'"), 1);
    assert_int_equal(raw_int(path, "SELECT count(*) FROM pragma_table_info('tls_probes')"
                                   " WHERE name = 'source'"), 1);
    /* The old rows are kept, learnt here. */
    assert_int_equal(cache_get(c, "old.test", &e, &err), CACHE_OK);
    assert_string_equal(e.txt_id, "id1");
    assert_string_equal(e.source, "");
    /* A row from the fleet keeps the name of the host that learnt it. */
    snprintf(e.source, sizeof(e.source), "milter-a.example");
    e.fetched_at++;
    assert_int_equal(cache_put(c, &e, &err), CACHE_OK);
    cache_entry_free(&e);
    assert_int_equal(cache_get(c, "old.test", &e, &err), CACHE_OK);
    assert_string_equal(e.source, "milter-a.example");
    /* Relearnt here: NULL again in the file. */
    e.source[0] = '\0';
    e.fetched_at++;
    assert_int_equal(cache_put(c, &e, &err), CACHE_OK);
    assert_int_equal(raw_int(path, "SELECT source IS NULL FROM domains"), 1);
    cache_entry_free(&e);
    assert_int_equal(probecache_get(c, "mx.old.test", 25, rows, 2, &n, &n_bad, &err), CACHE_OK);
    assert_int_equal(n, 1);
    assert_int_equal(n_bad, 0);
    assert_string_equal(rows[0].source, "");
    snprintf(rows[0].source, sizeof(rows[0].source), "milter-b");
    assert_int_equal(probecache_put(c, &rows[0], &err), CACHE_OK);
    assert_int_equal(probecache_get(c, "mx.old.test", 25, rows, 2, &n, &n_bad, &err), CACHE_OK);
    assert_int_equal(n, 1);
    assert_string_equal(rows[0].source, "milter-b");
    /* A source that is no name (a person reads it) makes the row invalid. */
    raw_exec(path, "UPDATE domains SET source = 'Milter A'; UPDATE tls_probes SET source = 'x\ny'");
    assert_int_equal(cache_get(c, "old.test", &e, &err), CACHE_BAD_ROW);
    assert_non_null(strstr(err.msg, "source"));
    assert_int_equal(probecache_get(c, "mx.old.test", 25, rows, 2, &n, &n_bad, &err), CACHE_OK);
    assert_int_equal(n, 0);
    assert_int_equal(n_bad, 1);
    /* ... and one is never written. */
    snprintf(rows[0].host, sizeof(rows[0].host), "mx.old.test");
    snprintf(rows[0].address, sizeof(rows[0].address), "192.0.2.1");
    rows[0].port = 25;
    snprintf(rows[0].source, sizeof(rows[0].source), "Milter B");
    assert_int_equal(probecache_put(c, &rows[0], &err), CACHE_ERROR);
    cache_close(c);
}

/* A host name made a source: lower case, other bytes '-', cut to fit. */
static void
test_source_from_host_name(void **state)
{
    char s[CACHE_SOURCE_MAX], longname[200];

    (void)state;
    cache_row_source_from(s, "MX-1.Example.ORG");
    assert_string_equal(s, "mx-1.example.org");
    assert_true(cache_row_source_ok(s));
    cache_row_source_from(s, "a b\tc/d");
    assert_string_equal(s, "a-b-c-d");
    memset(longname, 'x', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    cache_row_source_from(s, longname);
    assert_int_equal(strlen(s), CACHE_SOURCE_MAX - 1);
    assert_true(cache_row_source_ok(s));
    assert_true(cache_row_source_ok(""));
    assert_false(cache_row_source_ok("A"));
}

static void
test_not_a_database(void **state)
{
    char path[256];
    struct cache *c = NULL;
    struct mts_err err;
    FILE *f;

    (void)state;
    db_path(path, sizeof(path));
    f = fopen(path, "w");
    assert_non_null(f);
    for (int i = 0; i < 8192; i++)
        fputc((i * 131 + 7) & 0xff, f);
    assert_int_equal(fclose(f), 0);
    assert_int_equal(cache_open(path, 100, &c, &err), CACHE_CORRUPT);
    assert_null(c);
    assert_non_null(strstr(err.msg, "database file is corrupt or not an SQLite database"));
    assert_non_null(strstr(err.msg, path));
    assert_int_equal(cache_open_readonly(path, 100, &c, &err), CACHE_CORRUPT);
}

/* n policy rows (a few KB each: many pages), then closed so the WAL is checkpointed. */
static void
fill_and_close(const char *path, int n)
{
    struct cache *c = open_ok(path);
    struct cache_entry e;
    char d[64];

    for (int i = 0; i < n; i++) {
        (void)snprintf(d, sizeof(d), "d%05d.example", i);
        make_entry(&e, d);
        free(e.policy_text);
        e.policy_text = calloc(1, 2001);
        assert_non_null(e.policy_text);
        memset(e.policy_text, 'p', 2000);
        put_ok(c, &e);
        cache_entry_free(&e);
    }
    cache_close(c);
    /* Every page is in the file now; a kept WAL would still hold copies of some. */
    {
        char side[300];

        (void)snprintf(side, sizeof(side), "%s-wal", path);
        (void)unlink(side);
        (void)snprintf(side, sizeof(side), "%s-shm", path);
        (void)unlink(side);
    }
}

/* How many PATH.corrupt-* files dir holds. */
static int
count_corrupt(void)
{
    DIR *dd = opendir(dir);
    struct dirent *de;
    int n = 0;

    assert_non_null(dd);
    while ((de = readdir(dd)) != NULL)
        n += strstr(de->d_name, "cache.db.corrupt-") != NULL &&
             strstr(de->d_name, "-wal") == NULL && strstr(de->d_name, "-shm") == NULL;
    (void)closedir(dd);
    return n;
}

static void
heal_at_open(const char *path)
{
    struct cache *c = NULL;
    struct mts_err err;
    char moved[512];

    assert_int_equal(cache_check_file(path, 100, &err), CACHE_CORRUPT);
    assert_non_null(strstr(err.msg, path));
    assert_int_equal(count_corrupt(), 0);
    if (cache_open_healing(path, 100, &c, moved, sizeof(moved), &err) != CACHE_OK)
        fail_msg("cache_open_healing: %s", err.msg);
    assert_non_null(strstr(moved, "cache.db.corrupt-"));
    assert_int_equal(access(moved, F_OK), 0);
    assert_int_equal(count_corrupt(), 1);
    /* A fresh, working cache; the check now agrees. */
    assert_int_equal(count_rows(c), 0);
    put_simple(c, "after.example", 1, 2, 3);
    assert_int_equal(count_rows(c), 1);
    assert_int_equal(cache_check_file(path, 100, &err), CACHE_OK);
    cache_close(c);
}

/* A file of random bytes: moved aside at open, a fresh one created. */
static void
test_heal_random_bytes(void **state)
{
    char path[256];
    FILE *f;

    (void)state;
    db_path(path, sizeof(path));
    f = fopen(path, "w");
    assert_non_null(f);
    for (int i = 0; i < 8192; i++)
        fputc(rand() & 0xff, f);
    assert_int_equal(fclose(f), 0);
    heal_at_open(path);
}

/* A truncated file opens, but quick_check (which reads every page) finds it. */
static void
test_heal_truncated(void **state)
{
    char path[256];
    struct stat sb;

    (void)state;
    db_path(path, sizeof(path));
    fill_and_close(path, 1000);
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(truncate(path, sb.st_size / 2), 0);
    heal_at_open(path);
}

/* Corruption found while open: that call fails, the file is moved aside, the next calls work. */
static void
test_heal_while_open(void **state)
{
    char path[256], moved[512];
    struct cache *c = NULL;
    struct cache_entry e;
    struct mts_err err;
    struct stat sb;

    (void)state;
    db_path(path, sizeof(path));
    fill_and_close(path, 1000);
    assert_int_equal(cache_open_healing(path, 100, &c, moved, sizeof(moved), &err), CACHE_OK);
    assert_string_equal(moved, "");
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(truncate(path, sb.st_size / 3), 0);
    assert_int_equal(cache_get(c, "d00999.example", &e, &err), CACHE_CORRUPT);
    assert_int_equal(count_corrupt(), 1);
    /* Not "defer everything for ever": a fresh file serves at once. */
    assert_int_equal(cache_get(c, "d00999.example", &e, &err), CACHE_NOT_FOUND);
    put_simple(c, "after.example", 1, 2, 3);
    assert_int_equal(cache_get(c, "after.example", &e, &err), CACHE_OK);
    cache_entry_free(&e);
    assert_int_equal(cache_check_file(path, 100, &err), CACHE_OK);
    cache_close(c);
    /* The fresh file is the one at path, with what was written after the heal. */
    c = open_ok(path);
    assert_int_equal(count_rows(c), 1);
    cache_close(c);
}

static void
test_busy_then_recovers(void **state)
{
    char path[256];
    struct cache *c;
    struct cache_entry e, out;
    struct mts_err err;
    struct timespec t0, t1;
    sqlite3 *raw;
    long ms;

    (void)state;
    db_path(path, sizeof(path));
    assert_int_equal(cache_open(path, 100, &c, &err), CACHE_OK);
    put_simple(c, "before.example", 0, 0, 1);

    raw = lock_as_other_process(path);
    make_entry(&e, "during.example");
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_int_equal(cache_put(c, &e, &err), CACHE_BUSY);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
    assert_true(ms >= 90);
    assert_non_null(strstr(err.msg, "database is locked (busy timeout 100 ms exceeded)"));
    assert_non_null(strstr(err.msg, path));
    assert_int_equal(cache_touch(c, "before.example", 5, &err), CACHE_BUSY);
    assert_int_equal(cache_flush_all(c, &err), CACHE_BUSY);
    /* WAL: readers are not blocked by the writer. */
    assert_int_equal(cache_get(c, "before.example", &out, &err), CACHE_OK);
    cache_entry_free(&out);

    assert_int_equal(sqlite3_exec(raw, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_close(raw), SQLITE_OK);
    put_ok(c, &e);
    assert_int_equal(count_rows(c), 3); /* before, raw, during: nothing lost */
    assert_int_equal(cache_get(c, "raw.example", &out, &err), CACHE_OK);
    cache_entry_free(&out);
    cache_entry_free(&e);
    cache_close(c);
}

static void
test_readonly_open(void **state)
{
    char path[256];
    struct cache *c;
    struct cache_entry e, out;
    struct mts_err err;

    (void)state;
    db_path(path, sizeof(path));
    /* Read-only cannot create or migrate. */
    assert_int_equal(cache_open_readonly(path, 100, &c, &err), CACHE_ERROR);
    assert_non_null(strstr(err.msg, path));
    c = open_ok(path);
    put_simple(c, "ro.example", 0, 0, 1);
    cache_close(c);

    assert_int_equal(cache_open_readonly(path, 100, &c, &err), CACHE_OK);
    assert_int_equal(cache_get(c, "ro.example", &out, &err), CACHE_OK);
    cache_entry_free(&out);
    assert_int_equal(count_rows(c), 1);
    make_entry(&e, "new.example");
    assert_int_equal(cache_put(c, &e, &err), CACHE_READONLY);
    assert_non_null(strstr(err.msg, "read-only"));
    assert_non_null(strstr(err.msg, path));
    assert_int_equal(cache_touch(c, "ro.example", 9, &err), CACHE_READONLY);
    assert_int_equal(cache_flush_all(c, &err), CACHE_READONLY);
    assert_int_equal(count_rows(c), 1);
    cache_entry_free(&e);
    cache_close(c);
}

static void
test_readonly_file_nonroot(void **state)
{
    char path[256];
    pid_t pid;
    int status;

    (void)state;
    db_path(path, sizeof(path));
    cache_close(open_ok(path));
    assert_int_equal(chmod(path, 0444), 0);
    /* Root writes through mode 0444, so check it as an unprivileged user:
     * a child that drops to nobody (65534) reports through its exit code. */
    assert_int_equal(chmod(dir, 0777), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct cache *c;
        struct mts_err err;

        if (geteuid() == 0 && (setgid(65534) != 0 || setuid(65534) != 0))
            _exit(3);
        if (cache_open(path, 100, &c, &err) != CACHE_READONLY)
            _exit(1);
        _exit(strstr(err.msg, "read-only") != NULL ? 0 : 2);
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

static void
test_overlong_and_bad_rows(void **state)
{
    char path[256];
    struct cache *c;
    struct cache_entry out;
    struct collect *col = calloc(1, sizeof(*col));
    struct mts_err err;

    (void)state;
    assert_non_null(col);
    db_path(path, sizeof(path));
    cache_close(open_ok(path));
    raw_exec(
        path,
        "INSERT INTO domains (domain, txt_id) VALUES ('longid.example', printf('%.100c','x'));"
        "INSERT INTO domains (domain, last_error, status) VALUES ('longerr.example',"
        " printf('%.5000c','e'), 'failed');"
        "INSERT INTO domains (domain, policy_text) VALUES ('bigpolicy.example',"
        " printf('%.70000c','p'));"
        "INSERT INTO domains (domain) VALUES (printf('%.1000c','d'));"
        "INSERT INTO domains (domain, status) VALUES ('longstatus.example',"
        " printf('%.300c','s'));"
        "INSERT INTO domains (domain, mx) VALUES ('blobmx.example', x'6d7800');"
        "INSERT INTO domains (domain, mx) VALUES ('nul.example', CAST(x'61006200' AS TEXT));"
        "INSERT INTO domains (domain, checked_at) VALUES ('textint.example', 'soon');"
        "INSERT INTO domains (domain, has_policy, mode) VALUES ('badmode.example', 1, 'strict');"
        "INSERT INTO domains (domain, has_policy) VALUES ('nomode.example', 1);"
        "INSERT INTO domains (domain, has_policy) VALUES ('hp.example', 7);"
        "INSERT INTO domains (domain, max_age) VALUES ('age.example', 99999999999);"
        "INSERT INTO domains (domain, has_policy, mode, mx) VALUES ('mxspace.example', 1,"
        " 'enforce', 'mx1.mxspace.example' || char(10) || 'x secure match=evil.example');"
        "INSERT INTO domains (domain, has_policy, mode, mx) VALUES ('mxwild.example', 1,"
        " 'enforce', '*.*.mxwild.example');"
        "INSERT INTO domains (domain) VALUES ('UPPER.example');"
        "INSERT INTO domains (domain) VALUES (CAST(x'6100626364' AS TEXT));"
        "INSERT INTO domains (domain) VALUES (x'00ff');"
        "INSERT INTO domains (domain) VALUES (42);"
        "INSERT INTO domains (domain, last_used) VALUES ('good.example', 3);"
        "INSERT INTO domains (domain, fetch_failed_at) VALUES ('lastcol.example', 1.5);"
        "INSERT INTO domains (domain, checked_at) VALUES ('hugetime.example',"
        " 9223372036854775807);"
        "INSERT INTO domains (domain, expires_at) VALUES ('negtime.example', -1);"
        "INSERT INTO domains (domain, last_used) VALUES ('year10000.example', 253402300800);"
        "INSERT INTO mx_probes (host, tls_version) VALUES ('mx.example',"
        " printf('%.40c','v'));");
    c = open_ok(path);

    static const char *const bad[] = {"longid.example",  "bigpolicy.example", "longstatus.example",
                                      "blobmx.example",  "nul.example",       "textint.example",
                                      "badmode.example", "nomode.example",    "hp.example",
                                      "age.example",     "lastcol.example",
                                      "hugetime.example", "negtime.example",
                                      "year10000.example", "mxspace.example",
                                      "mxwild.example"};
    /* The reason names the row and the column that was wrong. */
    static const char *const why[] = {"longid.example: column txt_id is too long",
                                      "bigpolicy.example: column policy_text is too long",
                                      "longstatus.example: column status is too long",
                                      "blobmx.example: column mx is not text",
                                      "nul.example: column mx holds a NUL byte",
                                      "textint.example: column checked_at is not an integer",
                                      "badmode.example: column mode is not enforce",
                                      "nomode.example: invalid mode",
                                      "hp.example: column has_policy is not 0 or 1",
                                      "age.example: column max_age is out of range",
                                      "lastcol.example: column fetch_failed_at is not an integer",
                                      "hugetime.example: column checked_at is out of range",
                                      "negtime.example: column expires_at is out of range",
                                      "year10000.example: column last_used is out of range",
                                      "mxspace.example: invalid mx pattern: mx pattern label 1 "
                                      "has an invalid character 0x20",
                                      "mxwild.example: invalid mx pattern"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        out.mx = (char **)&out;
        if (cache_get(c, bad[i], &out, &err) != CACHE_BAD_ROW)
            fail_msg("%s: not refused", bad[i]);
        assert_null(out.mx);
        assert_null(out.policy_text);
        if (strstr(err.msg, why[i]) == NULL)
            fail_msg("%s: reason \"%s\" lacks \"%s\"", bad[i], err.msg, why[i]);
    }
    /* last_error is for people: cut, not refused. */
    assert_int_equal(cache_get(c, "longerr.example", &out, &err), CACHE_OK);
    assert_int_equal(strlen(out.last_error), sizeof(out.last_error) - 1);
    cache_entry_free(&out);

    /* list delivers every valid row, skips the rest, and terminates. */
    assert_int_equal(cache_list(c, collect_fn, col, &err), CACHE_BAD_ROW);
    assert_non_null(strstr(err.msg, "19 cache row(s) skipped"));
    assert_non_null(strstr(err.msg, "UPPER.example")); /* the first bad row, by name */
    /* 42 was stored as the text '42' (TEXT affinity): a valid key. The BLOB key
     * x'00ff' is not a text key at all and is not listed. */
    assert_int_equal(col->n, 3);
    assert_string_equal(col->names[0], "42");
    assert_string_equal(col->names[1], "good.example");
    assert_string_equal(col->names[2], "longerr.example");

    struct cache_probe p;
    assert_int_equal(cache_get_probe(c, "mx.example", &p, &err), CACHE_BAD_ROW);
    assert_non_null(strstr(err.msg, "tls_version"));

    /* A bad row can be replaced by a good one. */
    put_simple(c, "longid.example", 0, 0, 1);
    assert_int_equal(cache_get(c, "longid.example", &out, &err), CACHE_OK);
    cache_entry_free(&out);
    free(col);
    cache_close(c);
}

static void
test_status_names(void **state)
{
    (void)state;
    assert_string_equal(cache_status_name(CACHE_OK), "ok");
    assert_string_equal(cache_status_name(CACHE_BUSY), "busy");
    assert_string_equal(cache_status_name(CACHE_CORRUPT), "corrupt");
    assert_string_equal(cache_status_name(CACHE_ERROR), "error");
    assert_string_equal(cache_status_name((enum cache_status)42), "?");
}

static void
test_open_errors(void **state)
{
    char path[256];
    struct cache *c = (struct cache *)path;
    struct mts_err err;

    (void)state;
    (void)snprintf(path, sizeof(path), "%s/no/such/dir/cache.db", dir);
    assert_int_equal(cache_open(path, 100, &c, &err), CACHE_ERROR);
    assert_null(c);
    assert_non_null(strstr(err.msg, path));
    assert_int_equal(cache_open("", 100, &c, &err), CACHE_ERROR);
    assert_int_equal(cache_open(":memory:", -1, &c, &err), CACHE_ERROR);
    cache_close(NULL);
}

/* Each child: its own connection, n distinct domains. */
static void
child_writer(const char *path, int id, int n)
{
    struct cache *c;
    struct cache_entry e;
    struct mts_err err;
    char d[64];

    if (cache_open(path, 10000, &c, &err) != CACHE_OK) {
        fprintf(stderr, "child %d: %s\n", id, err.msg);
        _exit(2);
    }
    for (int i = 0; i < n; i++) {
        (void)snprintf(d, sizeof(d), "c%d-%04d.example", id, i);
        make_entry(&e, d);
        e.last_used = i;
        if (cache_put(c, &e, &err) != CACHE_OK) {
            fprintf(stderr, "child %d: %s\n", id, err.msg);
            _exit(3);
        }
        cache_entry_free(&e);
    }
    cache_close(c);
    _exit(0);
}

static void
test_concurrent_processes(void **state)
{
    char path[256];
    struct cache *c;
    pid_t pid[2];
    int status, running = 2, reads = 0;
    size_t last = 0, n;

    (void)state;
    db_path(path, sizeof(path));
    /* No connection may be open across fork(). */
    cache_close(open_ok(path));
    for (int i = 0; i < 2; i++) {
        pid[i] = fork();
        assert_true(pid[i] >= 0);
        if (pid[i] == 0)
            child_writer(path, i, 500);
    }
    c = open_ok(path);
    while (running > 0) {
        n = count_rows(c);      /* reads while the children write */
        assert_true(n >= last); /* rows never disappear */
        last = n;
        reads++;
        for (int i = 0; i < 2; i++) {
            if (pid[i] > 0 && waitpid(pid[i], &status, WNOHANG) == pid[i]) {
                assert_true(WIFEXITED(status));
                assert_int_equal(WEXITSTATUS(status), 0);
                pid[i] = 0;
                running--;
            }
        }
    }
    assert_int_equal(count_rows(c), 1000);
    assert_true(reads > 0);
    cache_close(c);
}

static void
test_concurrent_first_open(void **state)
{
    char path[256];
    pid_t pid[4];
    int status;

    (void)state;
    db_path(path, sizeof(path)); /* does not exist yet: all four race to create it */
    for (int i = 0; i < 4; i++) {
        pid[i] = fork();
        assert_true(pid[i] >= 0);
        if (pid[i] == 0)
            child_writer(path, i, 20);
    }
    for (int i = 0; i < 4; i++) {
        assert_int_equal(waitpid(pid[i], &status, 0), pid[i]);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);
    }
    struct cache *c = open_ok(path);
    assert_int_equal(count_rows(c), 80);
    cache_close(c);
    assert_int_equal(raw_int(path, "PRAGMA user_version"), CACHE_SCHEMA_VERSION);
}

struct thread_arg {
    struct cache *c;
    int id;
    int failures;
};

static void *
thread_main(void *p)
{
    struct thread_arg *a = p;
    struct cache_entry e, out;
    char d[64];

    for (int i = 0; i < 200; i++) {
        (void)snprintf(d, sizeof(d), "t%d-%03d.example", a->id, i);
        make_entry(&e, d);
        if (cache_put(a->c, &e, NULL) != CACHE_OK || cache_get(a->c, d, &out, NULL) != CACHE_OK ||
            !same_mx(&out, &e) || cache_touch(a->c, d, i, NULL) != CACHE_OK)
            a->failures++;
        cache_entry_free(&out);
        cache_entry_free(&e);
    }
    return NULL;
}

static void
test_threads_share_one_cache(void **state)
{
    char path[256];
    struct cache *c;
    pthread_t t[4];
    struct thread_arg a[4];

    (void)state;
    c = open_ok(db_path(path, sizeof(path)));
    for (int i = 0; i < 4; i++) {
        a[i] = (struct thread_arg){c, i, 0};
        assert_int_equal(pthread_create(&t[i], NULL, thread_main, &a[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        assert_int_equal(pthread_join(t[i], NULL), 0);
        assert_int_equal(a[i].failures, 0);
    }
    assert_int_equal(count_rows(c), 800);
    cache_close(c);
}

/*
 * Issue 12: a write waiting for another process's lock (SQLite's busy wait,
 * up to busy_timeout_ms) must not hold up the reads a recipient waits for
 * on the same cache object: they are answered, not refused at their bound.
 */
struct busy_writer {
    struct cache *c;
    enum cache_status st;
    atomic_int started;
};

static void *
busy_writer_main(void *arg)
{
    struct busy_writer *w = arg;
    struct cache_entry e;

    make_entry(&e, "writer.example");
    atomic_store(&w->started, 1);
    w->st = cache_put(w->c, &e, NULL); /* waits: raw holds the database */
    cache_entry_free(&e);
    return NULL;
}

static void
test_reads_not_behind_busy_writer(void **state)
{
    char path[256];
    struct cache *c;
    struct cache_entry out;
    struct cache_mxset mx;
    struct cache_probe probe;
    struct busy_writer w = {0};
    struct mts_err err;
    struct timespec bound;
    const struct timespec *outer;
    const struct timespec pause = {0, 300 * 1000000L};
    pthread_t t;
    sqlite3 *raw;
    int64_t v;

    (void)state;
    db_path(path, sizeof(path));
    assert_int_equal(cache_open(path, 5000, &c, &err), CACHE_OK);
    put_simple(c, "before.example", 0, 0, 1);
    raw = lock_as_other_process(path);
    w.c = c;
    assert_int_equal(pthread_create(&t, NULL, busy_writer_main, &w), 0);
    while (atomic_load(&w.started) == 0)
        (void)nanosleep(&pause, NULL);
    (void)nanosleep(&pause, NULL); /* the writer is in SQLite's busy wait by now */

    /* As a recipient's thread does: every wait bounded, here by 1 s. */
    (void)clock_gettime(CLOCK_MONOTONIC, &bound);
    bound.tv_sec += 1;
    outer = cache_bound_waits(&bound);
    assert_int_equal(cache_get(c, "before.example", &out, &err), CACHE_OK);
    cache_entry_free(&out);
    assert_int_equal(cache_get(c, "cold.example", &out, &err), CACHE_NOT_FOUND);
    assert_int_equal(cache_get_mx(c, "cold.example", &mx, &err), CACHE_NOT_FOUND);
    assert_int_equal(cache_get_probe(c, "mx.cold.example", &probe, &err), CACHE_NOT_FOUND);
    /* The version check of memory (cachecopy.h) only tries, never waits. */
    (void)cache_data_version(c, &v, &err);
    (void)cache_bound_waits(outer);

    /* The write was only held up, not lost. */
    assert_int_equal(sqlite3_exec(raw, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_close(raw), SQLITE_OK);
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_int_equal(w.st, CACHE_OK);
    assert_int_equal(count_rows(c), 3);
    cache_close(c);
}

/* MX sets: round trip, refusal of bad hosts, gone with their domain's row. */
static void
test_mx_sets(void **state)
{
    char path[256];
    struct cache *c = open_ok(db_path(path, sizeof(path)));
    struct cache_entry e;
    struct cache_mxset m = {0}, got;
    char *hosts[2] = {"mx1.example.net", "."}, *bad[1] = {"MX1.example.net"};
    struct mts_err err;

    (void)state;
    snprintf(m.domain, sizeof(m.domain), "example.com");
    m.hosts = hosts;
    m.n = 2;
    m.fetched_at = 100;
    m.expires_at = 400;
    snprintf(m.dnssec, sizeof(m.dnssec), "secure");
    assert_int_equal(cache_get_mx(c, "example.com", &got, &err), CACHE_NOT_FOUND);
    assert_int_equal(cache_put_mx(c, &m, &err), CACHE_OK);
    assert_int_equal(cache_get_mx(c, "example.com", &got, &err), CACHE_OK);
    assert_int_equal(got.n, 2);
    assert_string_equal(got.hosts[0], "mx1.example.net");
    assert_string_equal(got.hosts[1], ".");
    assert_int_equal(got.fetched_at, 100);
    assert_int_equal(got.expires_at, 400);
    assert_string_equal(got.dnssec, "secure");
    cache_mxset_free(&got);
    m.hosts = bad;
    m.n = 1;
    assert_int_equal(cache_put_mx(c, &m, &err), CACHE_ERROR);
    m.n = 0;
    assert_int_equal(cache_put_mx(c, &m, &err), CACHE_ERROR);
    raw_exec(path, "UPDATE mx_sets SET hosts = 'a b' WHERE domain = 'example.com'");
    assert_int_equal(cache_get_mx(c, "example.com", &got, &err), CACHE_BAD_ROW);
    /* An absurd time (a sum with it would overflow) makes the set invalid too. */
    m.hosts = hosts;
    m.n = 2;
    assert_int_equal(cache_put_mx(c, &m, &err), CACHE_OK);
    raw_exec(path, "UPDATE mx_sets SET expires_at = 9223372036854775807 WHERE domain = 'example.com'");
    assert_int_equal(cache_get_mx(c, "example.com", &got, &err), CACHE_BAD_ROW);
    m.expires_at = INT64_MAX;
    assert_int_equal(cache_put_mx(c, &m, &err), CACHE_ERROR);
    m.expires_at = 400;
    /* Deleting the domain's row deletes its MX set. */
    m.hosts = hosts;
    m.n = 2;
    assert_int_equal(cache_put_mx(c, &m, &err), CACHE_OK);
    make_entry(&e, "example.com");
    put_ok(c, &e);
    cache_entry_free(&e);
    assert_int_equal(cache_delete(c, "example.com", &err), CACHE_OK);
    assert_int_equal(cache_get_mx(c, "example.com", &got, &err), CACHE_NOT_FOUND);
    cache_close(c);
}

/* data_version moves for another connection's commit, not for our own. */
static void
test_data_version_and_touch_many(void **state)
{
    char path[256];
    struct cache *c = open_ok(db_path(path, sizeof(path)));
    struct cache_entry e;
    struct mts_err err;
    int64_t v0, v1, v2;
    const char *doms[3] = {"a.example", "nosuch.example", "B.example"};
    const int64_t at[3] = {5000, 5000, 5000};

    (void)state;
    assert_int_equal(cache_data_version(c, &v0, &err), CACHE_OK);
    make_entry(&e, "a.example");
    put_ok(c, &e);
    cache_entry_free(&e);
    assert_int_equal(cache_data_version(c, &v1, &err), CACHE_OK);
    assert_true(v1 == v0);
    raw_exec(path, "UPDATE domains SET txt_id = 'other' WHERE domain = 'a.example'");
    assert_int_equal(cache_data_version(c, &v2, &err), CACHE_OK);
    assert_true(v2 != v1);
    /* One transaction; a missing row and a key that is not one are skipped. */
    assert_int_equal(cache_touch_many(c, doms, at, 3, &err), CACHE_OK);
    assert_int_equal(raw_int(path, "SELECT last_used FROM domains WHERE domain = 'a.example'"),
                     5000);
    cache_close(c);
}

#define T(f) cmocka_unit_test_setup_teardown(f, dir_setup, dir_teardown)

int
main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_roundtrip_all_fields),
        T(test_negative_entry_roundtrip),
        T(test_not_found),
        T(test_update_keeps_one_row),
        T(test_older_policy_never_overwrites_newer),
        T(test_put_never_moves_last_used_back),
        T(test_touch),
        T(test_delete),
        T(test_flush_all),
        T(test_list_order_and_batches),
        T(test_list_callback_may_write_and_stop),
        T(test_due_by_check_interval),
        T(test_due_by_expiry),
        T(test_due_by_last_used_and_max_rows),
        T(test_purge_unused),
        T(test_probe_roundtrip),
        T(test_invalid_put_refused),
        T(test_schema_version_and_mode),
        T(test_migrate_3_to_4_keeps_probe_rows),
        T(test_migrate_6_to_7_adds_source),
        T(test_source_from_host_name),
        T(test_wal_mode),
        T(test_future_version_refused),
        T(test_not_a_database),
        T(test_heal_random_bytes),
        T(test_heal_truncated),
        T(test_heal_while_open),
        T(test_busy_then_recovers),
        T(test_readonly_open),
        T(test_readonly_file_nonroot),
        T(test_overlong_and_bad_rows),
        T(test_status_names),
        T(test_open_errors),
        T(test_concurrent_processes),
        T(test_concurrent_first_open),
        T(test_threads_share_one_cache),
        T(test_reads_not_behind_busy_writer),
        T(test_mx_sets),
        T(test_data_version_and_touch_many),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
