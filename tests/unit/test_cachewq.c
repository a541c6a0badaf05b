/*
 * test_cachewq - the shared cache's write-behind queue (cachewq.h) against
 * a real SQLite file, with a second connection standing for another
 * process that holds the file's write lock (BEGIN EXCLUSIVE).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "cache.h"
#include "cachewq.h"
#include "clock.h"
#include "probecache.h"

#define BUSY_MS 50	/* each busy write gives up after this: many retries per test */

struct fixture {
    char dir[64];
    char path[128];
    struct cache *c;
};

static int
setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    struct mts_err err;

    assert_non_null(f);
    snprintf(f->dir, sizeof(f->dir), "/tmp/test_cachewq.XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->path, sizeof(f->path), "%s/cache.sqlite", f->dir);
    assert_int_equal(cache_open(f->path, BUSY_MS, &f->c, &err), CACHE_OK);
    *state = f;
    return 0;
}

static int
teardown(void **state)
{
    struct fixture *f = *state;
    char cmd[256];

    cache_close(f->c);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

/* Another process's connection holding the write lock until sqlite3_close. */
static sqlite3 *
lock_as_other_process(const char *path)
{
    sqlite3 *raw = NULL;

    assert_int_equal(sqlite3_open(path, &raw), SQLITE_OK);
    assert_int_equal(sqlite3_exec(raw, "BEGIN EXCLUSIVE; DELETE FROM domains WHERE domain = "
                                       "'nothing.invalid'", NULL, NULL, NULL),
                     SQLITE_OK);
    return raw;
}

static void
unlock(sqlite3 *raw)
{
    assert_int_equal(sqlite3_exec(raw, "ROLLBACK", NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_close(raw), SQLITE_OK);
}

static void
make_row(struct cache_entry *e, const char *domain, const char *id, int64_t fetched)
{
    static char *mx[] = {"mx1.example.net", "*.example.org"};

    memset(e, 0, sizeof(*e));
    snprintf(e->domain, sizeof(e->domain), "%s", domain);
    snprintf(e->txt_id, sizeof(e->txt_id), "%s", id);
    e->has_policy = true;
    e->mode = POLICY_MODE_ENFORCE;
    e->max_age = 86400;
    e->mx = mx; /* borrowed: cachewq_put_row copies */
    e->n_mx = 2;
    e->policy_text = (char *)"version: STSv1\nmode: enforce\n";
    e->fetched_at = fetched;
    e->expires_at = fetched + 86400;
    e->checked_at = fetched;
    e->last_used = fetched;
    e->has_status = true;
    e->status = STATUS_ENFORCE;
}

/* The stored txt_id of domain, "" when no row. */
static void
stored_id(struct cache *c, const char *domain, char *out, size_t outsz)
{
    struct cache_entry e;
    struct mts_err err;

    out[0] = '\0';
    if (cache_get(c, domain, &e, &err) == CACHE_OK)
        snprintf(out, outsz, "%s", e.txt_id);
    cache_entry_free(&e);
}

static struct timespec
in_ms(int ms)
{
    return clock_deadline_after(ms);
}

/* A row, an MX set and a probe row reach the file; the caller's copies are its own. */
static void
writes_reach_the_file(void **state)
{
    struct fixture *f = *state;
    struct mts_err err;
    struct cachewq *q = cachewq_open(f->c, 100, "test", &err);
    struct cache_entry e;
    struct cache_mxset m, got;
    char *hosts[] = {(char *)"mx1.example.net"};
    struct probecache_row pr, rows[4];
    size_t n = 0;
    char id[64];
    struct cachewq_stats st;
    struct timespec dl = in_ms(10000);

    assert_non_null(q);
    make_row(&e, "a.example", "id1", 1000);
    cachewq_put_row(q, &e);
    memset(&m, 0, sizeof(m));
    snprintf(m.domain, sizeof(m.domain), "a.example");
    m.hosts = hosts;
    m.n = 1;
    m.fetched_at = 1000;
    m.expires_at = 4600;
    cachewq_put_mx(q, &m);
    memset(&pr, 0, sizeof(pr));
    snprintf(pr.host, sizeof(pr.host), "mx1.example.net");
    snprintf(pr.address, sizeof(pr.address), "192.0.2.1");
    pr.port = 25;
    pr.status = TLSPROBE_OK;
    pr.grade = TLSPROBE_GRADE_GOOD;
    pr.probed_at = 1000;
    pr.expires_at = 2000;
    cachewq_put_probe(q, &pr);
    assert_true(cachewq_flush(q, &dl));

    stored_id(f->c, "a.example", id, sizeof(id));
    assert_string_equal(id, "id1");
    assert_int_equal(cache_get_mx(f->c, "a.example", &got, &err), CACHE_OK);
    assert_int_equal(got.n, 1);
    assert_string_equal(got.hosts[0], "mx1.example.net");
    cache_mxset_free(&got);
    assert_int_equal(probecache_get(f->c, "mx1.example.net", 25, rows, 4, &n, NULL, &err),
                     CACHE_OK);
    assert_int_equal(n, 1);
    cachewq_stats(q, &st);
    assert_int_equal(st.written, 3);
    assert_int_equal(st.dropped + st.failed, 0);
    cachewq_close(q, 1000);
}

/*
 * Issue 19, N3: while another process holds the file, a put returns at
 * once (the caller is not the one that waits), the writes wait, and they
 * reach the file once the lock is released.
 */
static void
locked_file_writes_wait_for_the_lock(void **state)
{
    struct fixture *f = *state;
    struct mts_err err;
    struct cachewq *q = cachewq_open(f->c, 100, "test", &err);
    sqlite3 *raw = lock_as_other_process(f->path);
    struct cachewq_stats st;
    struct cache_entry e;
    struct timespec dl;
    char id[64], name[64];

    for (int i = 0; i < 20; i++) {
        snprintf(name, sizeof(name), "d%02d.example", i);
        make_row(&e, name, "id1", 1000);
        cachewq_put_row(q, &e);
    }
    /* Several busy waits of the writer: none of the rows is in the file. */
    dl = in_ms(BUSY_MS * 4);
    assert_false(cachewq_flush(q, &dl));
    cachewq_stats(q, &st);
    assert_true(st.retried >= 1);
    assert_int_equal(st.written, 0);
    stored_id(f->c, "d00.example", id, sizeof(id));
    assert_string_equal(id, "");

    unlock(raw);
    dl = in_ms(10000);
    assert_true(cachewq_flush(q, &dl));
    cachewq_stats(q, &st);
    assert_int_equal(st.written, 20);
    assert_int_equal(st.dropped + st.failed, 0);
    for (int i = 0; i < 20; i++) {
        snprintf(name, sizeof(name), "d%02d.example", i);
        stored_id(f->c, name, id, sizeof(id));
        assert_string_equal(id, "id1");
    }
    cachewq_close(q, 1000);
}

/* Writes of one key coalesce: the newest is written, once. */
static void
writes_coalesce_per_key(void **state)
{
    struct fixture *f = *state;
    struct mts_err err;
    struct cachewq *q = cachewq_open(f->c, 100, "test", &err);
    sqlite3 *raw = lock_as_other_process(f->path);
    struct cachewq_stats st;
    struct cache_entry e;
    struct timespec dl;
    char id[64], want[64];

    for (int i = 0; i < 50; i++) {
        snprintf(want, sizeof(want), "id%d", i);
        make_row(&e, "same.example", want, 1000 + i);
        cachewq_put_row(q, &e);
    }
    make_row(&e, "other.example", "x", 1000);
    cachewq_put_row(q, &e);
    cachewq_stats(q, &st);
    assert_true(st.waiting <= 2);
    assert_true(st.coalesced >= 48);
    unlock(raw);
    dl = in_ms(10000);
    assert_true(cachewq_flush(q, &dl));
    cachewq_stats(q, &st);
    /* One of each key, and the first of same.example if the lock ended
     * while the writer had it in hand (then the newest follows it). */
    assert_true(st.written >= 2 && st.written <= 3);
    stored_id(f->c, "same.example", id, sizeof(id));
    assert_string_equal(id, "id49");
    stored_id(f->c, "other.example", id, sizeof(id));
    assert_string_equal(id, "x");
    cachewq_close(q, 1000);
}

/* A full queue drops its oldest writes, counted; the newest reach the file. */
static void
full_queue_drops_the_oldest(void **state)
{
    struct fixture *f = *state;
    struct mts_err err;
    struct cachewq *q = cachewq_open(f->c, 5, "test", &err);
    sqlite3 *raw = lock_as_other_process(f->path);
    struct cachewq_stats st;
    struct cache_entry e;
    struct timespec dl;
    char id[64], name[64];

    for (int i = 0; i < 12; i++) {
        snprintf(name, sizeof(name), "d%02d.example", i);
        make_row(&e, name, "id1", 1000);
        cachewq_put_row(q, &e);
    }
    cachewq_stats(q, &st);
    assert_true(st.waiting <= 5);
    /* 12 puts, at most 5 queued and one in the writer's hands. */
    assert_true(st.dropped >= 6 && st.dropped <= 7);
    unlock(raw);
    dl = in_ms(10000);
    assert_true(cachewq_flush(q, &dl));
    for (int i = 7; i < 12; i++) {
        snprintf(name, sizeof(name), "d%02d.example", i);
        stored_id(f->c, name, id, sizeof(id));
        assert_string_equal(id, "id1");
    }
    stored_id(f->c, "d02.example", id, sizeof(id));
    assert_string_equal(id, "");
    cachewq_stats(q, &st);
    assert_int_equal(st.written + st.dropped, 12);
    cachewq_close(q, 1000);
}

/* Shutdown writes what is queued when it can, and gives up within its bound when it cannot. */
static void
close_drains_then_gives_up(void **state)
{
    struct fixture *f = *state;
    struct mts_err err;
    struct cachewq *q = cachewq_open(f->c, 100, "test", &err);
    struct cache_entry e;
    sqlite3 *raw;
    char id[64];

    make_row(&e, "drained.example", "id1", 1000);
    cachewq_put_row(q, &e);
    cachewq_close(q, 5000);
    stored_id(f->c, "drained.example", id, sizeof(id));
    assert_string_equal(id, "id1");

    /* Locked for good: close returns (its bound, plus one busy wait). */
    q = cachewq_open(f->c, 100, "test", &err);
    raw = lock_as_other_process(f->path);
    make_row(&e, "lost.example", "id1", 1000);
    cachewq_put_row(q, &e);
    cachewq_close(q, BUSY_MS * 2);
    unlock(raw);
    stored_id(f->c, "lost.example", id, sizeof(id));
    assert_string_equal(id, "");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(writes_reach_the_file, setup, teardown),
        cmocka_unit_test_setup_teardown(locked_file_writes_wait_for_the_lock, setup, teardown),
        cmocka_unit_test_setup_teardown(writes_coalesce_per_key, setup, teardown),
        cmocka_unit_test_setup_teardown(full_queue_drops_the_oldest, setup, teardown),
        cmocka_unit_test_setup_teardown(close_drains_then_gives_up, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
