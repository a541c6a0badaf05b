/*
 * test_stats - verdict statistics: the in-memory map (stats.h: adding,
 * keys, the overflow key, the bound, taking out) and the cache table
 * (cache_stats.h: two connections to one file add up, retention and the
 * row bound delete whole days, a locked file refuses and keeps nothing
 * half-written).
 */
#include "unit.h"

#include <sqlite3.h>
#include <unistd.h>

#include "cache.h"
#include "cache_stats.h"
#include "decide.h"
#include "rules.h"
#include "stats.h"

static struct stats_key
key(const char *day, const char *domain, const char *action, const char *path)
{
    struct stats_key k;

    memset(&k, 0, sizeof(k));
    snprintf(k.day, sizeof(k.day), "%s", day);
    snprintf(k.domain, sizeof(k.domain), "%s", domain);
    snprintf(k.action, sizeof(k.action), "%s", action);
    snprintf(k.outcome, sizeof(k.outcome), "pass");
    snprintf(k.path, sizeof(k.path), "%s", path);
    snprintf(k.rule, sizeof(k.rule), "default");
    return k;
}

/* The count of domain's rows in rows (all days, actions, paths). */
static uint64_t
count_of(const struct stats_row *rows, size_t n, const char *domain)
{
    uint64_t c = 0;

    for (size_t i = 0; i < n; i++)
        if (strcmp(rows[i].k.domain, domain) == 0)
            c += rows[i].count;
    return c;
}

/* stats_day's arithmetic against gmtime_r's calendar, second by second at
 * the edges (leap days, centuries, 2038) and a day and a bit apart over
 * 1970-2400; out of range gives the epoch's day. */
static void
day_is_gmtime_day(void **state)
{
    static const int64_t edges[] = {0, 68169599, 68169600, 951782399, 951782400, 951868800,
                                    2147483647, 2147483648, 4107542399, 4107542400,
                                    4107628800, 253402300799};
    char got[11], want[11];
    struct tm tm;
    time_t t;

    (void)state;
    for (size_t i = 0; i < sizeof(edges) / sizeof(edges[0]); i++) {
        for (int64_t d = -1; d <= 1; d++) {
            t = (time_t)(edges[i] + d);
            if (t < 0 || t > (time_t)253402300799)
                continue;
            assert_non_null(gmtime_r(&t, &tm));
            assert_int_equal(strftime(want, sizeof(want), "%Y-%m-%d", &tm), 10);
            stats_day(t, got);
            assert_string_equal(got, want);
        }
    }
    for (t = 0; t < (time_t)13569465600; t += 86400 + 3607) { /* to 2400-01-01 */
        assert_non_null(gmtime_r(&t, &tm));
        assert_int_equal(strftime(want, sizeof(want), "%Y-%m-%d", &tm), 10);
        stats_day(t, got);
        assert_string_equal(got, want);
    }
    stats_day((time_t)-1, got);
    assert_string_equal(got, "1970-01-01");
    stats_day((time_t)253402300800, got);
    assert_string_equal(got, "1970-01-01");
}

static void
same_key_adds_up(void **state)
{
    struct stats *s = stats_new(10);
    struct stats_key a = key("2026-12-06", "a.test", "tag", "mta-sts");
    struct stats_key b = a;
    struct stats_row *rows;
    size_t n;

    (void)state;
    assert_non_null(s);
    stats_add(s, &a, 1);
    stats_add(s, &a, 2);
    b.dry_run = true;	/* any field makes another key */
    stats_add(s, &b, 5);
    assert_int_equal(stats_keys(s), 2);
    assert_int_equal(stats_take(s, &rows, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(rows[0].count + rows[1].count, 8);
    assert_int_equal(rows[0].k.dry_run ? rows[0].count : rows[1].count, 5);
    free(rows);
    /* Taken out: the map is empty, and a take of nothing gives nothing. */
    assert_int_equal(stats_keys(s), 0);
    assert_int_equal(stats_take(s, &rows, &n), 0);
    assert_int_equal(n, 0);
    assert_null(rows);
    stats_free(s);
}

static void
overflow_is_bounded(void **state)
{
    struct stats *s = stats_new(3);
    struct stats_row *rows;
    struct stats_key k;
    char d[32];
    size_t n;

    (void)state;
    for (int i = 0; i < 10; i++) {
        snprintf(d, sizeof(d), "d%d.test", i);
        k = key("2026-12-06", d, "tag", "none");
        stats_add(s, &k, 1);
    }
    /* 3 keys of their own, the other 7 under one overflow key. */
    assert_int_equal(stats_keys(s), 4);
    assert_int_equal(stats_dropped(s), 0);
    assert_int_equal(stats_take(s, &rows, &n), 0);
    assert_int_equal(n, 4);
    assert_int_equal(count_of(rows, n, STATS_OVERFLOW), 7);
    for (size_t i = 0; i < n; i++)
        if (strcmp(rows[i].k.domain, STATS_OVERFLOW) == 0)
            assert_string_equal(rows[i].k.rule, "");
    free(rows);
    /* Beyond the overflow keys too: only counted as dropped. */
    for (int i = 0; i < STATS_OVERFLOW_KEYS + 3 + 5; i++) {
        snprintf(d, sizeof(d), "%04d-01-01", 1000 + i);	/* a day each: a new overflow key each */
        k = key(d, "x.test", "tag", "none");
        stats_add(s, &k, 2);
    }
    assert_int_equal(stats_keys(s), 3 + STATS_OVERFLOW_KEYS);
    assert_int_equal(stats_dropped(s), 2 * 5);
    stats_free(s);
}

static void
key_of_decision(void **state)
{
    struct decision d;
    struct rules_rule r;
    struct stats_key k;

    (void)state;
    memset(&d, 0, sizeof(d));
    memset(&r, 0, sizeof(r));
    d.scope = DECIDE_IN_SCOPE;
    snprintf(d.domain, sizeof(d.domain), "example.test");
    d.status = STATUS_NONE;
    d.outcome = VERDICT_FAIL;
    d.effect = DECIDE_DEFER;
    d.tls = VERDICT_TLS_UNSEEN;
    stats_key_of(&d, 86400 * 365, &k);	/* 1971-01-01 */
    assert_string_equal(k.day, "1971-01-01");
    assert_string_equal(k.domain, "example.test");
    assert_string_equal(k.action, "defer");
    assert_string_equal(k.outcome, "fail");
    assert_string_equal(k.rule, "default");
    assert_false(k.dry_run);
    /* A rule is named by its place, cut to STATS_RULE_MAX. */
    memset(r.where, 'w', sizeof(r.where) - 1);
    d.rule = &r;
    d.dry_run = true;
    stats_key_of(&d, 0, &k);
    assert_int_equal(strlen(k.rule), STATS_RULE_MAX);
    assert_true(k.dry_run);
}

/* ------------------------------------------------------------ the table */

static char dir[64], path[128];

static int
setup_dir(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/test_stats.XXXXXX");
    if (mkdtemp(dir) == NULL)
        return -1;
    snprintf(path, sizeof(path), "%s/cache.sqlite", dir);
    return 0;
}

static int
teardown_dir(void **state)
{
    char p[160];

    (void)state;
    for (const char *const *sfx = (const char *const[]){"", "-wal", "-shm", NULL}; *sfx; sfx++) {
        snprintf(p, sizeof(p), "%s%s", path, *sfx);
        (void)unlink(p);
    }
    (void)rmdir(dir);
    return 0;
}

struct got {
    size_t n;
    struct stats_row r[16];
};

static void
collect(const struct stats_row *r, void *arg)
{
    struct got *g = arg;

    if (g->n < 16)
        g->r[g->n++] = *r;
}

static void
two_connections_add_up(void **state)
{
    struct cache *a, *b;
    struct mts_err err = {0};
    struct stats_row rows[2] = {{key("2026-12-06", "a.test", "tag", "mta-sts"), 3},
                                {key("2026-12-06", "b.test", "defer", "none"), 1}};
    struct got g = {0};

    (void)state;
    assert_int_equal(cache_open(path, 1000, &a, &err), CACHE_OK);
    assert_int_equal(cache_open(path, 1000, &b, &err), CACHE_OK);
    assert_int_equal(cache_stats_add(a, rows, 2, &err), CACHE_OK);
    rows[0].count = 4;
    assert_int_equal(cache_stats_add(b, rows, 1, &err), CACHE_OK);
    assert_int_equal(cache_stats_list(a, "", collect, &g, &err), CACHE_OK);
    assert_int_equal(g.n, 2);
    assert_string_equal(g.r[0].k.domain, "a.test");
    assert_int_equal(g.r[0].count, 7);
    assert_int_equal(g.r[1].count, 1);
    cache_close(a);
    cache_close(b);
}

static void
prune_deletes_whole_days(void **state)
{
    struct cache *c;
    struct mts_err err = {0};
    struct stats_row rows[5] = {{key("2020-01-01", "old.test", "tag", "tls"), 9},
                                {key("2026-12-04", "a.test", "tag", "tls"), 1},
                                {key("2026-12-05", "a.test", "tag", "tls"), 1},
                                {key("2026-12-05", "b.test", "tag", "tls"), 1},
                                {key("2026-12-06", "a.test", "tag", "tls"), 1}};
    struct got g = {0};
    uint64_t deleted = 0;

    (void)state;
    assert_int_equal(cache_open(path, 1000, &c, &err), CACHE_OK);
    assert_int_equal(cache_stats_add(c, rows, 5, &err), CACHE_OK);
    /* Retention: the day before 2025 goes. */
    assert_int_equal(cache_stats_prune(c, "2025-01-01", 0, &deleted, &err), CACHE_OK);
    assert_int_equal(deleted, 1);
    /* At most 2 rows: the 3rd newest's day (12-05, 2 rows) goes whole, and 12-04. */
    assert_int_equal(cache_stats_prune(c, "2025-01-01", 2, &deleted, &err), CACHE_OK);
    assert_int_equal(deleted, 3);
    assert_int_equal(cache_stats_list(c, "", collect, &g, &err), CACHE_OK);
    assert_int_equal(g.n, 1);
    assert_string_equal(g.r[0].k.day, "2026-12-06");
    /* since_day selects. */
    g.n = 0;
    assert_int_equal(cache_stats_list(c, "2026-12-07", collect, &g, &err), CACHE_OK);
    assert_int_equal(g.n, 0);
    cache_close(c);
}

static void
locked_file_refuses_whole(void **state)
{
    struct cache *c;
    struct mts_err err = {0};
    struct stats_row rows[2] = {{key("2026-12-06", "a.test", "tag", "tls"), 1},
                                {key("2026-12-06", "b.test", "tag", "tls"), 1}};
    struct got g = {0};
    sqlite3 *db;

    (void)state;
    assert_int_equal(cache_open(path, 100, &c, &err), CACHE_OK);
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "BEGIN EXCLUSIVE", NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(cache_stats_add(c, rows, 2, &err), CACHE_BUSY);
    assert_int_equal(sqlite3_exec(db, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    /* Nothing of the refused transaction stayed; the retry writes all. */
    assert_int_equal(cache_stats_list(c, "", collect, &g, &err), CACHE_OK);
    assert_int_equal(g.n, 0);
    assert_int_equal(cache_stats_add(c, rows, 2, &err), CACHE_OK);
    assert_int_equal(cache_stats_list(c, "", collect, &g, &err), CACHE_OK);
    assert_int_equal(g.n, 2);
    cache_close(c);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(day_is_gmtime_day),
        cmocka_unit_test(same_key_adds_up),
        cmocka_unit_test(overflow_is_bounded),
        cmocka_unit_test(key_of_decision),
        cmocka_unit_test_setup_teardown(two_connections_add_up, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(prune_deletes_whole_days, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(locked_file_refuses_whole, setup_dir, teardown_dir),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
