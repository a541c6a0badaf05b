/*
 * test_cachecopy - a process's in-memory rows and MX sets (common/cachecopy.c):
 * what goes in comes out unchanged through the compact form (32-bit times,
 * names stored without their domain suffix), what cannot be held that way
 * stays out (reads then go to the database), a row and an MX set of one
 * domain live side by side, what domains have in common is held once (and
 * freed with the last domain that held it), and another connection's
 * write to the shared cache drops what memory held.
 *
 * TABLES
 *	round_trips	domain, MX patterns, MX hosts, times -> the row and the
 *			MX set read back equal what was put
 *	kept_out	a row or MX set that the compact form cannot hold ->
 *			not held, and an older copy of the domain is gone too
 */
#include "unit.h"

#include <time.h>
#include <unistd.h>

#include "cachecopy.h"

#define NAMES_MAX 4

struct round_trip {
    const char *label;
    const char *domain;
    const char *mx[NAMES_MAX];    /* policy patterns, NULL-ended */
    const char *hosts[NAMES_MAX]; /* MX hosts, NULL-ended */
    int64_t fetched_at, expires_at;
};

static const struct round_trip round_trips[] = {
    {"suffix names", "example.com", {"mx1.example.com", "*.example.com", NULL},
     {"mx1.example.com", "mx2.example.com", NULL}, 1700000000, 1700086400},
    {"the domain itself as MX and pattern", "example.com", {"example.com", NULL},
     {"example.com", NULL}, 1700000000, 1700086400},
    {"a name that ends in the domain's letters but not its labels", "example.com",
     {"notexample.com", "mx.other-example.com", NULL}, {"notexample.com", NULL}, 1, 2},
    {"names elsewhere", "example.com", {"*.mail.provider.net", NULL},
     {"mx.provider.net", "mx.example.com.provider.net", NULL}, 0, 0},
    {"the null MX", "nullmx.example", {"mx.nullmx.example", NULL}, {".", NULL}, 5, 6},
    {"a one-label domain", "test", {"mx.test", "test", NULL}, {"a.b.test", NULL}, 7, 8},
    {"the last 32-bit second", "late.example", {"mx.late.example", NULL},
     {"mx.late.example", NULL}, 4294967295LL, 4294967295LL},
    {"no MX patterns (no policy)", "nopolicy.example", {NULL}, {"mx.nopolicy.example", NULL},
     100, 200},
};

static size_t
count(const char *const *v)
{
    size_t n = 0;

    while (n < NAMES_MAX && v[n] != NULL)
        n++;
    return n;
}

/* The row of r, its strings pointing into r (never freed). */
static void
row_of(const struct round_trip *r, struct cache_entry *e)
{
    memset(e, 0, sizeof(*e));
    snprintf(e->domain, sizeof(e->domain), "%s", r->domain);
    snprintf(e->txt_id, sizeof(e->txt_id), "20240101T000000");
    e->n_mx = count(r->mx);
    e->has_policy = e->n_mx > 0;
    e->mode = POLICY_MODE_ENFORCE;
    e->max_age = 86400;
    e->mx = (char **)r->mx;
    e->fetched_at = r->fetched_at;
    e->expires_at = r->expires_at;
    e->checked_at = r->fetched_at;
    e->has_status = true;
    e->status = STATUS_ENFORCE;
    snprintf(e->dnssec, sizeof(e->dnssec), "secure");
    snprintf(e->last_error, sizeof(e->last_error), "%s", e->n_mx ? "" : "no policy");
}

static void
mxset_of(const struct round_trip *r, struct cache_mxset *m)
{
    memset(m, 0, sizeof(*m));
    snprintf(m->domain, sizeof(m->domain), "%s", r->domain);
    m->hosts = (char **)r->hosts;
    m->n = count(r->hosts);
    m->fetched_at = r->fetched_at;
    m->expires_at = r->expires_at;
}

static struct cachecopy *
new_cachecopy(struct cache **cache)
{
    struct mts_err err;
    struct cachecopy *h;

    assert_int_equal(cache_open(":memory:", 1000, cache, &err), CACHE_OK);
    h = cachecopy_new(100, *cache, &err);
    if (h == NULL)
        fail_msg("cachecopy_new: %s", err.msg);
    return h;
}

static void
run_round_trip(void **state)
{
    const struct round_trip *r = *state;
    struct cache *cache;
    struct cachecopy *h = new_cachecopy(&cache);
    struct cache_entry in, out;
    struct cache_mxset min, mout;

    row_of(r, &in);
    mxset_of(r, &min);
    /* The MX RRset's DNSSEC state (danemap.h) is kept: every word, and none. */
    snprintf(min.dnssec, sizeof(min.dnssec), "%s",
             (const char *[]){"secure", "insecure", "bogus", ""}[(r - round_trips) % 4]);
    cachecopy_put_row(h, &in, cachecopy_gen(h), 10, SHARDMAP_REPLACE);
    cachecopy_put_mx(h, &min, cachecopy_gen(h), SHARDMAP_REPLACE);
    assert_int_equal(cachecopy_count(h), 1); /* one entry holds both */

    assert_true(cachecopy_get_row(h, r->domain, 20, &out));
    assert_string_equal(out.domain, r->domain);
    assert_string_equal(out.txt_id, in.txt_id);
    assert_int_equal(out.has_policy, in.has_policy);
    assert_int_equal(out.mode, in.mode);
    assert_int_equal(out.max_age, in.max_age);
    assert_int_equal(out.fetched_at, in.fetched_at);
    assert_int_equal(out.expires_at, in.expires_at);
    assert_int_equal(out.checked_at, in.checked_at);
    assert_int_equal(out.has_status, in.has_status);
    assert_int_equal(out.status, in.status);
    assert_string_equal(out.dnssec, in.dnssec);
    assert_string_equal(out.last_error, in.last_error);
    assert_int_equal(out.n_mx, in.n_mx);
    for (size_t i = 0; i < in.n_mx; i++)
        assert_string_equal(out.mx[i], r->mx[i]);
    cache_entry_free(&out);

    assert_true(cachecopy_get_mx(h, r->domain, &mout));
    assert_string_equal(mout.domain, r->domain);
    assert_int_equal(mout.n, min.n);
    assert_int_equal(mout.fetched_at, min.fetched_at);
    assert_int_equal(mout.expires_at, min.expires_at);
    assert_string_equal(mout.dnssec, min.dnssec);
    for (size_t i = 0; i < min.n; i++)
        assert_string_equal(mout.hosts[i], r->hosts[i]);
    cache_mxset_free(&mout);

    cachecopy_free(h);
    cache_close(cache);
}

struct kept_out {
    const char *label;
    bool row;          /* the row is the part refused (else the MX set) */
    int64_t time;      /* its fetched_at */
    const char *name;  /* its first MX pattern or host */
};

static const struct kept_out kept_out[] = {
    {"a row fetched before 1970", true, -1, "mx.example.com"},
    {"a row fetched after 2106", true, 4294967296LL, "mx.example.com"},
    {"a row whose pattern holds the suffix mark", true, 100, "mx\001.example.com"},
    {"an MX set fetched after 2106", false, 4294967296LL, "mx.example.com"},
    {"an MX set whose host holds the suffix mark", false, 100, "\001"},
};

static void
run_kept_out(void **state)
{
    const struct kept_out *k = *state;
    static const struct round_trip good = {"good", "example.com", {"mx.example.com", NULL},
                                           {"mx.example.com", NULL}, 100, 200};
    struct round_trip bad = good;
    struct cache *cache;
    struct cachecopy *h = new_cachecopy(&cache);
    struct cache_entry e, out;
    struct cache_mxset m, mout;

    /* A good copy first: the refused put must not leave it behind. */
    row_of(&good, &e);
    mxset_of(&good, &m);
    cachecopy_put_row(h, &e, cachecopy_gen(h), 10, SHARDMAP_REPLACE);
    cachecopy_put_mx(h, &m, cachecopy_gen(h), SHARDMAP_REPLACE);
    assert_true(cachecopy_get_row(h, "example.com", 10, &out));
    cache_entry_free(&out);

    bad.fetched_at = k->time;
    bad.mx[0] = bad.hosts[0] = k->name;
    if (k->row) {
        row_of(&bad, &e);
        cachecopy_put_row(h, &e, cachecopy_gen(h), 10, SHARDMAP_REPLACE);
    } else {
        mxset_of(&bad, &m);
        cachecopy_put_mx(h, &m, cachecopy_gen(h), SHARDMAP_REPLACE);
    }
    assert_false(cachecopy_get_row(h, "example.com", 10, &out));
    assert_false(cachecopy_get_mx(h, "example.com", &mout));
    assert_int_equal(cachecopy_count(h), 0);
    cachecopy_free(h);
    cache_close(cache);
}

/* Another connection's commit drops what memory held (at the next freshen). */
static void
test_other_writer_seen(void **state)
{
    char path[] = "/tmp/test_cachecopy.XXXXXX";
    char db[sizeof(path) + 16];
    struct cache *mine, *other;
    struct cachecopy *h;
    struct mts_err err;
    struct cache_entry e, out;
    static const struct round_trip r = {"r", "example.com", {"mx.example.com", NULL},
                                        {"mx.example.com", NULL}, 100, 200};
    /* Past CACHECOPY_RECHECK_MS on the coarse clock, whose tick (1-10 ms)
     * may be longer than the pause: hence the repeated reads below. */
    struct timespec pause = {0, 3 * 1000 * 1000};

    (void)state;
    assert_non_null(mkdtemp(path));
    snprintf(db, sizeof(db), "%s/cache.db", path);
    assert_int_equal(cache_open(db, 1000, &mine, &err), CACHE_OK);
    assert_int_equal(cache_open(db, 1000, &other, &err), CACHE_OK);
    h = cachecopy_new(100, mine, &err);
    assert_non_null(h);
    row_of(&r, &e);
    cachecopy_put_row(h, &e, cachecopy_gen(h), 10, SHARDMAP_REPLACE);

    /* Nothing written elsewhere: the copy stays. */
    nanosleep(&pause, NULL);
    cachecopy_freshen(h);
    assert_true(cachecopy_get_row(h, "example.com", 10, &out));
    cache_entry_free(&out);

    assert_int_equal(cache_put(other, &e, &err), CACHE_OK);
    /* Seen by a read after the write. A check that finds the connection
     * busy (a loaded machine) leaves it to the next read, so reads are
     * repeated; a copy that survives them all is the failure. */
    {
        bool dropped = false;

        for (int i = 0; i < 200 && !dropped; i++) {
            nanosleep(&pause, NULL);
            cachecopy_freshen(h);
            dropped = !cachecopy_get_row(h, "example.com", 10, &out);
            if (!dropped)
                cache_entry_free(&out);
        }
        assert_true(dropped);
    }

    cachecopy_free(h);
    cache_close(mine);
    cache_close(other);
    unlink(db);
    {
        char side[sizeof(db) + 8];

        snprintf(side, sizeof(side), "%s-wal", db);
        unlink(side);
        snprintf(side, sizeof(side), "%s-shm", db);
        unlink(side);
    }
    assert_int_equal(rmdir(path), 0);
}

/* Domain i of a set: d<i>.example, its pattern and host mx.d<i>.example
 * (or, when provider, *.mail.provider.net and mx1.provider.net). */
struct named {
    char domain[64], name[80];
    const char *names[2];
};

static void
put_domain(struct cachecopy *h, int i, bool provider, int64_t t)
{
    struct named n;
    struct round_trip r = {"", n.domain, {n.name, NULL}, {n.name, NULL}, t, t + 86400};
    struct cache_entry e;
    struct cache_mxset m;

    snprintf(n.domain, sizeof(n.domain), "d%d.example", i);
    if (provider)
        snprintf(n.name, sizeof(n.name), "*.mail.provider.net");
    else
        snprintf(n.name, sizeof(n.name), "mx.d%d.example", i);
    row_of(&r, &e);
    cachecopy_put_row(h, &e, cachecopy_gen(h), 10, SHARDMAP_REPLACE);
    if (provider)
        snprintf(n.name, sizeof(n.name), "mx1.provider.net");
    mxset_of(&r, &m);
    cachecopy_put_mx(h, &m, cachecopy_gen(h), SHARDMAP_REPLACE);
}

static void
check_domain(struct cachecopy *h, int i, bool provider, int64_t t)
{
    char domain[64], want[80];
    struct cache_entry e;
    struct cache_mxset m;

    snprintf(domain, sizeof(domain), "d%d.example", i);
    assert_true(cachecopy_get_row(h, domain, 20, &e));
    assert_int_equal(e.fetched_at, t);
    assert_int_equal(e.n_mx, 1);
    if (provider)
        snprintf(want, sizeof(want), "*.mail.provider.net");
    else
        snprintf(want, sizeof(want), "mx.d%d.example", i);
    assert_string_equal(e.mx[0], want);
    cache_entry_free(&e);
    assert_true(cachecopy_get_mx(h, domain, &m));
    assert_int_equal(m.n, 1);
    assert_int_equal(m.expires_at, t + 86400);
    if (provider)
        snprintf(want, sizeof(want), "mx1.provider.net");
    else
        snprintf(want, sizeof(want), "mx.d%d.example", i);
    assert_string_equal(m.hosts[0], want);
    cache_mxset_free(&m);
}

/*
 * Shared parts: 50 domains each with its own name as MX (stored without
 * the suffix: all alike) and 30 with a provider's hosts hold 4 shapes (a
 * row's and an MX set's of each kind), their times their own. A row
 * replaced keeps its MX set's shape alive; once the cap (1,000) has pushed
 * every one of them out, only the shapes of what is held are left.
 */
static void
test_shared_shapes(void **state)
{
    struct cache *cache;
    struct mts_err err;
    struct cachecopy *h;

    (void)state;
    assert_int_equal(cache_open(":memory:", 1000, &cache, &err), CACHE_OK);
    assert_non_null(h = cachecopy_new(1000, cache, &err));
    for (int i = 0; i < 80; i++)
        put_domain(h, i, i >= 50, 1000 + i);
    assert_int_equal(cachecopy_count(h), 80);
    assert_int_equal(cachecopy_shapes(h), 4);
    for (int i = 0; i < 80; i++)
        check_domain(h, i, i >= 50, 1000 + i);

    /* The row alone replaced, over and over: the MX part is carried over. */
    for (int k = 0; k < 3; k++) {
        struct round_trip r = {"", "solo.example", {"mx.other.net", NULL}, {NULL}, 5, 6};
        struct cache_entry e;
        struct cache_mxset m;

        if (k == 0) {
            r.hosts[0] = "mx.other.net";
            mxset_of(&r, &m);
            cachecopy_put_mx(h, &m, cachecopy_gen(h), SHARDMAP_REPLACE);
        }
        row_of(&r, &e);
        cachecopy_put_row(h, &e, cachecopy_gen(h), 10, SHARDMAP_REPLACE);
    }
    assert_int_equal(cachecopy_shapes(h), 6);
    {
        struct cache_mxset m;

        assert_true(cachecopy_get_mx(h, "solo.example", &m));
        assert_string_equal(m.hosts[0], "mx.other.net");
        cache_mxset_free(&m);
    }

    /* 20,000 domains of one more kind push the others out. */
    for (int i = 1000; i < 21000; i++)
        put_domain(h, i, false, 5);
    assert_true(cachecopy_count(h) <= 1000);
    assert_int_equal(cachecopy_shapes(h), 2);
    check_domain(h, 20999, false, 5);
    cachecopy_free(h);
    cache_close(cache);
}

/*
 * Shapes come and go: 3,000 domains each with a pattern and host of its
 * own, through a cap of 64. A freed shape's id is given to the next new
 * one: every domain still held reads back its own names (an id handed out
 * twice, or left pointing to a freed shape, reads back another's, or
 * crashes under ASan), and no more shapes are kept than the held rows
 * and MX sets point to.
 */
static void
test_shapes_churn(void **state)
{
    struct cache *cache;
    struct mts_err err;
    struct cachecopy *h;

    (void)state;
    assert_int_equal(cache_open(":memory:", 1000, &cache, &err), CACHE_OK);
    assert_non_null(h = cachecopy_new(64, cache, &err));
    for (int i = 0; i < 3000; i++) {
        char domain[64], pat[80], host[80];
        struct round_trip r = {"", domain, {pat, NULL}, {host, NULL}, 1000 + i, 2000 + i};
        struct cache_entry e;
        struct cache_mxset m;

        snprintf(domain, sizeof(domain), "c%d.example", i);
        snprintf(pat, sizeof(pat), "*.p%d.net", i);
        snprintf(host, sizeof(host), "mx.p%d.net", i);
        row_of(&r, &e);
        cachecopy_put_row(h, &e, cachecopy_gen(h), 10, SHARDMAP_REPLACE);
        mxset_of(&r, &m);
        cachecopy_put_mx(h, &m, cachecopy_gen(h), SHARDMAP_REPLACE);
        for (int j = i; j >= 0 && j > i - 200; j--) {
            char want[80];

            snprintf(domain, sizeof(domain), "c%d.example", j);
            if (!cachecopy_get_row(h, domain, 20, &e)) {
                assert_true(j != i); /* the one just put is held */
                continue;
            }
            snprintf(want, sizeof(want), "*.p%d.net", j);
            assert_int_equal(e.n_mx, 1);
            assert_string_equal(e.mx[0], want);
            assert_int_equal(e.fetched_at, 1000 + j);
            cache_entry_free(&e);
            assert_true(cachecopy_get_mx(h, domain, &m));
            snprintf(want, sizeof(want), "mx.p%d.net", j);
            assert_string_equal(m.hosts[0], want);
            cache_mxset_free(&m);
        }
        assert_true(cachecopy_shapes(h) <= 2 * cachecopy_count(h));
    }
    cachecopy_free(h);
    cache_close(cache);
}

#define N_TESTS (N_ROWS(round_trips) + N_ROWS(kept_out) + 3)

static struct CMUnitTest tests[N_TESTS];
static char test_names[N_TESTS][UNIT_NAME_MAX];

int
main(void)
{
    struct unit_list list = {tests, test_names, N_TESTS, 0, NULL};
    const struct CMUnitTest singles[] = {
        cmocka_unit_test(test_other_writer_seen),
        cmocka_unit_test(test_shared_shapes),
        cmocka_unit_test(test_shapes_churn),
    };

    UNIT_ADD_TABLE(&list, "round trip", round_trips, run_round_trip);
    UNIT_ADD_TABLE(&list, "kept out", kept_out, run_kept_out);
    unit_add_singles(&list, singles, N_ROWS(singles));
    if (list.n != N_TESTS) {
        fprintf(stderr, "test_cachecopy: %zu tests registered\n", list.n);
        return 2;
    }
    return cmocka_run_group_tests(tests, NULL, NULL);
}
