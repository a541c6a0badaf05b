/*
 * test_shardmap - the bounded in-memory map (common/shardmap.c): the cap
 * under 200,000 distinct domains, CLOCK (second-chance) eviction,
 * generations, SHARDMAP_ADD, last-use hand-off, and concurrent readers
 * and writers (run under ThreadSanitizer in CI); and the open-addressing
 * table and record arena under it: tables as full as they get, deletes
 * (entries shifted back), churn against a model of what must be held,
 * the arena rebuilt to its live records, and over-long keys refused.
 *
 * TABLES
 *	cap_cases	cap x shards x domains put -> entries held <= cap, and
 *			the newest domains all still held
 */
#include "unit.h"

#include <pthread.h>

#include "shardmap.h"

static void
copy_int(const void *val, size_t len, void *arg)
{
    assert_int_equal(len, sizeof(int));
    memcpy(arg, val, sizeof(int));
}

static void
name(char *buf, size_t sz, int i)
{
    snprintf(buf, sz, "d%06d.example", i);
}

static bool
has(struct shardmap *m, int i, int *v)
{
    char k[64];

    name(k, sizeof(k), i);
    return shardmap_get(m, k, 1, copy_int, v);
}

static void
put(struct shardmap *m, int i, enum shardmap_put_mode mode)
{
    char k[64];

    name(k, sizeof(k), i);
    assert_int_equal(shardmap_put(m, k, &i, sizeof(i), shardmap_gen(m), 0, mode), 0);
}

struct cap_case {
    const char *label;
    size_t cap, shards;
    int n; /* domains put */
};

static const struct cap_case cap_cases[] = {
    {"200,000 domains, cap 100,000, default shards", 100000, 0, 200000},
    {"200,000 domains, cap 1,000, one shard", 1000, 1, 200000},
    {"200,000 domains, cap 10, default shards (fewer shards than that)", 10, 0, 200000},
    {"fewer domains than the cap", 1000, 0, 500},
};

static void
run_cap_case(void **state)
{
    const struct cap_case *c = *state;
    struct shardmap *m = shardmap_new(c->cap, c->shards);
    size_t want = (size_t)c->n < c->cap ? (size_t)c->n : c->cap;
    int v;

    assert_non_null(m);
    for (int i = 0; i < c->n; i++) {
        put(m, i, SHARDMAP_REPLACE);
        if (i % 1000 == 0)
            assert_true(shardmap_count(m) <= c->cap);
    }
    assert_true(shardmap_count(m) <= c->cap);
    /* Shards fill unevenly, but never past their share, and the newest stay. */
    assert_true(shardmap_count(m) >= want * 9 / 10);
    assert_true(has(m, c->n - 1, &v));
    assert_int_equal(v, c->n - 1);
    assert_false(c->n > (int)c->cap * 2 && has(m, 0, &v));
    shardmap_free(m);
}

/*
 * Eviction is CLOCK (second chance), not exact LRU: one shard of 4: 0..3
 * held; 0 and 2 read; 4 evicts one of the unread, 1 or 3; everything held
 * read again but the other unread one; 5 evicts that one.
 */
static void
test_second_chance(void **state)
{
    struct shardmap *m = shardmap_new(4, 1);
    int v;

    (void)state;
    for (int i = 0; i < 4; i++)
        put(m, i, SHARDMAP_REPLACE);
    assert_true(has(m, 0, &v));
    assert_true(has(m, 2, &v));
    put(m, 4, SHARDMAP_REPLACE);
    assert_int_equal(shardmap_count(m), 4);
    assert_true(has(m, 0, &v) && has(m, 2, &v) && has(m, 4, &v));
    put(m, 5, SHARDMAP_REPLACE);
    assert_int_equal(shardmap_count(m), 4);
    assert_true(has(m, 0, &v) && has(m, 2, &v) && has(m, 4, &v) && has(m, 5, &v));
    /* 1 and 3 were never read: each of the two puts took one of them */
    assert_false(has(m, 1, &v));
    assert_false(has(m, 3, &v));
    shardmap_free(m);
}

/* An entry read between puts stays while 1,000 others come and go. */
static void
test_read_stays(void **state)
{
    struct shardmap *m = shardmap_new(100, 1);
    int v;

    (void)state;
    put(m, 0, SHARDMAP_REPLACE);
    for (int i = 1; i <= 1000; i++) {
        put(m, i, SHARDMAP_REPLACE);
        assert_true(shardmap_count(m) <= 100);
        assert_true(has(m, 0, &v));
        assert_int_equal(v, 0);
    }
    /* The unread go: of the first 100 put after it, none is left. */
    for (int i = 1; i <= 100; i++)
        assert_false(has(m, i, &v));
    shardmap_free(m);
}

/* A new generation hides everything; ADD fills it but never replaces it. */
static void
test_generations(void **state)
{
    struct shardmap *m = shardmap_new(100, 0);
    uint32_t before = shardmap_gen(m);
    int v = 0, one = 1, two = 2;

    (void)state;
    assert_int_equal(shardmap_put(m, "a.example", &one, sizeof(one), before, 0, SHARDMAP_ADD), 0);
    assert_true(shardmap_get(m, "a.example", 1, copy_int, &v));
    assert_int_equal(v, 1);
    /* ADD does not replace a current entry (a refresh's newer result). */
    assert_int_equal(shardmap_put(m, "a.example", &two, sizeof(two), before, 0, SHARDMAP_ADD), 0);
    assert_true(shardmap_get(m, "a.example", 1, copy_int, &v));
    assert_int_equal(v, 1);
    shardmap_invalidate(m);
    assert_false(shardmap_get(m, "a.example", 1, copy_int, &v));
    /* A value read before the invalidation is stored but never served. */
    assert_int_equal(shardmap_put(m, "a.example", &two, sizeof(two), before, 0, SHARDMAP_ADD), 0);
    assert_false(shardmap_get(m, "a.example", 1, copy_int, &v));
    /* One read after it is. */
    assert_int_equal(shardmap_put(m, "a.example", &two, sizeof(two), shardmap_gen(m), 0,
                                  SHARDMAP_ADD), 0);
    assert_true(shardmap_get(m, "a.example", 1, copy_int, &v));
    assert_int_equal(v, 2);
    shardmap_del(m, "a.example");
    assert_false(shardmap_get(m, "a.example", 1, copy_int, &v));
    assert_int_equal(shardmap_count(m), 0);
    shardmap_free(m);
}

struct taken {
    int n;
    int64_t at;
    char key[64];
};

static void
on_used(const char *key, int64_t at, void *arg)
{
    struct taken *t = arg;

    t->n++;
    t->at = at;
    snprintf(t->key, sizeof(t->key), "%s", key);
}

/* Each use is handed out once; a replaced value keeps its key's uses. */
static void
test_take_used(void **state)
{
    struct shardmap *m = shardmap_new(100, 0);
    struct taken t = {0};
    int v, one = 1;

    (void)state;
    assert_int_equal(shardmap_put(m, "a.example", &one, sizeof(one), 0, 0, SHARDMAP_REPLACE), 0);
    assert_int_equal(shardmap_put(m, "b.example", &one, sizeof(one), 0, 0, SHARDMAP_REPLACE), 0);
    assert_int_equal(shardmap_take_used(m, on_used, &t), 0);
    assert_true(shardmap_get(m, "a.example", 500, copy_int, &v));
    assert_true(shardmap_get(m, "a.example", 400, copy_int, &v)); /* never moves back */
    assert_int_equal(shardmap_take_used(m, on_used, &t), 1);
    assert_int_equal(t.at, 500);
    assert_string_equal(t.key, "a.example");
    assert_int_equal(shardmap_take_used(m, on_used, &t), 0);
    assert_int_equal(shardmap_put(m, "a.example", &one, sizeof(one), 0, 0, SHARDMAP_REPLACE), 0);
    assert_int_equal(shardmap_take_used(m, on_used, &t), 0);
    assert_true(shardmap_get(m, "a.example", 600, copy_int, &v));
    assert_int_equal(shardmap_take_used(m, on_used, &t), 1);
    assert_int_equal(t.at, 600);
    shardmap_free(m);
}

/* Every held key found with its value, per the model: held[i] is its value or -1. */
static void
check_model(struct shardmap *m, const int *held, int n)
{
    size_t want = 0;
    int v;

    for (int i = 0; i < n; i++) {
        char k[64];
        bool got;

        name(k, sizeof(k), i);
        got = shardmap_get(m, k, 1, copy_int, &v);
        if (held[i] >= 0) {
            want++;
            if (!got)
                fail_msg("%s not found", k);
            assert_int_equal(v, held[i]);
        } else if (got) {
            fail_msg("%s found, but was deleted", k);
        }
    }
    assert_int_equal(shardmap_count(m), want);
}

static void
put_val(struct shardmap *m, int i, int v)
{
    char k[64];

    name(k, sizeof(k), i);
    assert_int_equal(shardmap_put(m, k, &v, sizeof(v), shardmap_gen(m), 0, SHARDMAP_REPLACE), 0);
}

static void
del(struct shardmap *m, int i)
{
    char k[64];

    name(k, sizeof(k), i);
    shardmap_del(m, k);
}

/*
 * Tables as full as they get: shards of cap 1 to 8 (2 to 11 slots), filled
 * to the cap, every key found; then each replaced in place (count and
 * table unchanged) and each deleted in turn, the others still found.
 */
static void
test_full_tables(void **state)
{
    (void)state;
    for (int cap = 1; cap <= 8; cap++) {
        struct shardmap *m = shardmap_new((size_t)cap, 1);
        int held[8];

        assert_non_null(m);
        for (int i = 0; i < cap; i++) {
            put_val(m, i, i);
            held[i] = i;
        }
        check_model(m, held, cap);
        for (int i = 0; i < cap; i++) {
            put_val(m, i, 100 + i);
            held[i] = 100 + i;
        }
        check_model(m, held, cap);
        for (int i = 0; i < cap; i++) {
            del(m, i);
            held[i] = -1;
            check_model(m, held, cap);
        }
        shardmap_free(m);
    }
}

/*
 * Deletes in open addressing: 3,000 keys in one shard (runs of probes
 * long and overlapping), half of them deleted in a scattered order; each
 * key left must still be found (a delete that only emptied its slot would
 * cut the probe runs through it), each deleted one not; then the deleted
 * ones put back.
 */
static void
test_deletes(void **state)
{
    enum { N = 3000 };
    struct shardmap *m = shardmap_new(N, 1);
    int *held = malloc(N * sizeof(*held));

    (void)state;
    assert_non_null(m);
    assert_non_null(held);
    for (int i = 0; i < N; i++) {
        put_val(m, i, i);
        held[i] = i;
    }
    check_model(m, held, N);
    for (int i = 0; i < N; i++) {
        int k = (int)(((unsigned)i * 7919u) % N); /* every key once, scattered */

        if (k % 2 == 0) {
            del(m, k);
            held[k] = -1;
        }
        if (i % 500 == 0)
            check_model(m, held, N);
    }
    check_model(m, held, N);
    for (int i = 0; i < N; i += 2) {
        put_val(m, i, -2 - i);
        held[i] = -2 - i;
    }
    /* values below -1 are held too: compare them directly */
    for (int i = 0; i < N; i++) {
        char k[64];
        int v;

        name(k, sizeof(k), i);
        assert_true(shardmap_get(m, k, 1, copy_int, &v));
        assert_int_equal(v, held[i]);
    }
    assert_int_equal(shardmap_count(m), N);
    free(held);
    shardmap_free(m);
}

/*
 * Churn: 200,000 random puts, replaces, deletes and reads over 2,000 keys
 * in a shard of 300. Against a model: a key just put is held with its
 * value; a deleted one is gone; whatever is held has its latest value; the
 * count never passes the cap and matches what is found. The arena is
 * rebuilt to its live records as it fills with dead ones: it never maps
 * more than its live bytes and 1/8 (a page at least) more.
 */
static void
test_churn(void **state)
{
    enum { KEYS = 2000, CAP = 300, OPS = 200000 };
    struct shardmap *m = shardmap_new(CAP, 1);
    int *last = malloc(KEYS * sizeof(*last)); /* the latest value put, -1: deleted */
    unsigned seed = 42;

    (void)state;
    assert_non_null(m);
    assert_non_null(last);
    for (int i = 0; i < KEYS; i++)
        last[i] = -1;
    for (int op = 0; op < OPS; op++) {
        int k = (int)(rand_r(&seed) % KEYS), r = (int)(rand_r(&seed) % 10), v;
        char key[64];

        name(key, sizeof(key), k);
        if (r < 4) {
            put_val(m, k, op);
            last[k] = op;
            assert_true(shardmap_get(m, key, 1, copy_int, &v));
            assert_int_equal(v, op);
        } else if (r < 5) {
            shardmap_del(m, key);
            last[k] = -1;
            assert_false(shardmap_get(m, key, 1, copy_int, &v));
        } else if (shardmap_get(m, key, 1, copy_int, &v)) {
            if (v != last[k])
                fail_msg("op %d: %s holds %d, last put %d", op, key, v, last[k]);
        }
        if (op % 997 == 0) {
            struct shardmap_stats st;
            size_t found = 0;

            for (int i = 0; i < KEYS; i++) {
                char ki[64];

                name(ki, sizeof(ki), i);
                if (shardmap_get(m, ki, 1, copy_int, &v)) {
                    assert_int_equal(v, last[i]);
                    found++;
                }
            }
            shardmap_stats(m, &st);
            assert_int_equal(st.entries, found);
            assert_true(st.entries <= CAP);
            assert_true(st.arena_bytes <= st.live_bytes + st.live_bytes / 8 + 4096 + 64);
        }
    }
    free(last);
    shardmap_free(m);
}

/* A key longer than SHARDMAP_KEY_MAX is refused, one of that length held. */
static void
test_long_keys(void **state)
{
    struct shardmap *m = shardmap_new(10, 1);
    char k[SHARDMAP_KEY_MAX + 2];
    int v = 7, out;

    (void)state;
    memset(k, 'a', sizeof(k) - 1);
    k[sizeof(k) - 1] = '\0';
    assert_int_equal(shardmap_put(m, k, &v, sizeof(v), shardmap_gen(m), 0, SHARDMAP_REPLACE), -1);
    assert_false(shardmap_get(m, k, 1, copy_int, &out));
    k[SHARDMAP_KEY_MAX] = '\0';
    assert_int_equal(shardmap_put(m, k, &v, sizeof(v), shardmap_gen(m), 0, SHARDMAP_REPLACE), 0);
    assert_true(shardmap_get(m, k, 1, copy_int, &out));
    assert_int_equal(out, 7);
    k[SHARDMAP_KEY_MAX - 1] = 'b'; /* same length, another key */
    assert_false(shardmap_get(m, k, 1, copy_int, &out));
    shardmap_free(m);
}

struct drops {
    int n;
    long sum; /* of the values dropped */
};

static void
on_drop(const void *val, size_t len, void *arg)
{
    struct drops *d = arg;
    int v;

    assert_int_equal(len, sizeof(v));
    memcpy(&v, val, sizeof(v));
    d->n++;
    d->sum += v;
}

/* Every value put leaves through the drop callback exactly once: replaced,
 * evicted, deleted, or when the map is freed. */
static void
test_drops(void **state)
{
    struct shardmap *m = shardmap_new(10, 1);
    struct drops d = {0, 0};
    long sum = 0;

    (void)state;
    shardmap_on_drop(m, on_drop, &d);
    for (int i = 0; i < 50; i++) {
        put_val(m, i % 20, i); /* replaces and evictions */
        sum += i;
    }
    del(m, 49 % 20);
    assert_int_equal(d.n, 50 - (int)shardmap_count(m));
    shardmap_free(m);
    assert_int_equal(d.n, 50);
    assert_int_equal(d.sum, sum);
}

#define THREADS 8
#define ROUNDS 20000

static void *
hammer(void *arg)
{
    struct shardmap *m = arg;
    unsigned seed = (unsigned)(uintptr_t)pthread_self();

    for (int i = 0; i < ROUNDS; i++) {
        int k = (int)(rand_r(&seed) % 300), v;
        char key[64];

        name(key, sizeof(key), k);
        if (i % 7 == 0)
            (void)shardmap_put(m, key, &k, sizeof(k), shardmap_gen(m), i, SHARDMAP_REPLACE);
        else if (i % 1001 == 0)
            shardmap_invalidate(m);
        else if (shardmap_get(m, key, i, copy_int, &v) && v != k)
            return (void *)1;
    }
    return NULL;
}

static void
on_used_count(const char *key, int64_t at, void *arg)
{
    (void)key;
    (void)at;
    ++*(int *)arg;
}

/* Readers, writers, invalidations and a taker at once: values stay whole. */
static void
test_threads(void **state)
{
    struct shardmap *m = shardmap_new(200, 0);
    pthread_t t[THREADS];
    int taken = 0;

    (void)state;
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_create(&t[i], NULL, hammer, m), 0);
    for (int i = 0; i < 20; i++)
        (void)shardmap_take_used(m, on_used_count, &taken);
    for (int i = 0; i < THREADS; i++) {
        void *r;

        assert_int_equal(pthread_join(t[i], &r), 0);
        assert_null(r);
    }
    assert_true(shardmap_count(m) <= 200);
    shardmap_free(m);
}

#define N_TESTS (N_ROWS(cap_cases) + 10)

static struct CMUnitTest tests[N_TESTS];
static char test_names[N_TESTS][UNIT_NAME_MAX];

int
main(void)
{
    struct unit_list list = {tests, test_names, N_TESTS, 0, NULL};
    const struct CMUnitTest singles[] = {
        cmocka_unit_test(test_second_chance),
        cmocka_unit_test(test_read_stays),
        cmocka_unit_test(test_generations),
        cmocka_unit_test(test_take_used),
        cmocka_unit_test(test_threads),
        cmocka_unit_test(test_full_tables),
        cmocka_unit_test(test_deletes),
        cmocka_unit_test(test_churn),
        cmocka_unit_test(test_long_keys),
        cmocka_unit_test(test_drops),
    };

    UNIT_ADD_TABLE(&list, "cap", cap_cases, run_cap_case);
    unit_add_singles(&list, singles, N_ROWS(singles));
    if (list.n != N_TESTS) {
        fprintf(stderr, "test_shardmap: %zu tests registered\n", list.n);
        return 2;
    }
    return cmocka_run_group_tests(tests, NULL, NULL);
}
