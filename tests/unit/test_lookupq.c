/*
 * test_lookupq - the lookup engine's fairness (common/lookupq.c): lanes
 * (a lookup somebody waits for goes first, abandoned ones yield, refresh
 * work has its own lane and workers) and the per-sender / per-connection
 * caps (charged until the lookup ends, refusals reported once an
 * interval, memory bounded by what is in flight).
 *
 * TABLES
 *	order_cases	a script of pushes and moves -> the order the
 *			recipients' and the refresh workers take the jobs
 *	cap_cases	caps x a script of takes and gives -> each result
 */
#include "unit.h"

#include "lookupq.h"

#define JOBS 8

struct job {
    struct lookupq_item item;	/* first, as in discover.c */
    char name;
};

/* One step of an order case: push / move job (a letter) to a lane. */
struct qstep {
    char op;			/* 'p' push, 'm' move */
    char job;
    enum lookupq_lane lane;
};

static const struct {
    const char *why;
    struct qstep steps[JOBS + 4];
    const char *recipients;	/* jobs the recipients' workers take, in order */
    const char *refresh;	/* jobs the refresh workers take, in order */
} order_cases[] = {
    {"first in, first out within the waited lane",
     {{'p', 'a', LOOKUPQ_WAITED}, {'p', 'b', LOOKUPQ_WAITED}, {'p', 'c', LOOKUPQ_WAITED}},
     "abc", ""},
    {"a lookup nobody waits for any more yields to waited ones",
     {{'p', 'a', LOOKUPQ_WAITED}, {'p', 'b', LOOKUPQ_WAITED}, {'m', 'a', LOOKUPQ_ABANDONED},
      {'p', 'c', LOOKUPQ_WAITED}},
     "bca", ""},
    {"a flood of abandoned lookups does not hold up a new waited one",
     {{'p', 'a', LOOKUPQ_WAITED}, {'p', 'b', LOOKUPQ_WAITED}, {'p', 'c', LOOKUPQ_WAITED},
      {'m', 'a', LOOKUPQ_ABANDONED}, {'m', 'b', LOOKUPQ_ABANDONED},
      {'m', 'c', LOOKUPQ_ABANDONED}, {'p', 'v', LOOKUPQ_WAITED}},
     "vabc", ""},
    {"refresh work has its own lane: recipients' workers never take it",
     {{'p', 'r', LOOKUPQ_REFRESH}, {'p', 'a', LOOKUPQ_WAITED}, {'p', 's', LOOKUPQ_REFRESH}},
     "a", "rs"},
    {"a waiter joining a background job moves it to the waited lane",
     {{'p', 'r', LOOKUPQ_REFRESH}, {'p', 's', LOOKUPQ_REFRESH}, {'p', 'a', LOOKUPQ_WAITED},
      {'m', 's', LOOKUPQ_WAITED}},
     "as", "r"},
    {"a waiter returning to an abandoned job moves it to the tail of the waited lane",
     {{'p', 'a', LOOKUPQ_WAITED}, {'m', 'a', LOOKUPQ_ABANDONED}, {'p', 'b', LOOKUPQ_WAITED},
      {'m', 'a', LOOKUPQ_WAITED}},
     "ba", ""},
    {"moving a job to the lane it is in keeps its place",
     {{'p', 'a', LOOKUPQ_WAITED}, {'p', 'b', LOOKUPQ_WAITED}, {'m', 'a', LOOKUPQ_WAITED}},
     "ab", ""},
};

static struct job *
job_named(struct job *jobs, char name)
{
    for (int i = 0; i < JOBS; i++) {
        if (jobs[i].name == name || jobs[i].name == '\0') {
            jobs[i].name = name;
            return &jobs[i];
        }
    }
    fail_msg("more than %d jobs in a case", JOBS);
    return NULL;
}

static void
drain(struct lookupq *q, enum lookupq_server who, char *out, size_t outsz)
{
    struct lookupq_item *it;
    size_t n = 0;

    while ((it = lookupq_pop(q, who)) != NULL) {
        assert_true(n + 1 < outsz);
        assert_int_equal(lookupq_lane_of(it), -1);	/* out of every lane */
        out[n++] = ((struct job *)(void *)it)->name;
    }
    out[n] = '\0';
}

static void
queue_order(void **state)
{
    (void)state;
    for (size_t c = 0; c < sizeof(order_cases) / sizeof(order_cases[0]); c++) {
        struct lookupq q;
        struct job jobs[JOBS];
        char got[JOBS + 1];
        size_t pushed = 0;

        memset(&q, 0, sizeof(q));
        memset(jobs, 0, sizeof(jobs));
        for (const struct qstep *s = order_cases[c].steps; s->op != 0; s++) {
            struct job *j = job_named(jobs, s->job);

            if (s->op == 'p') {
                lookupq_push(&q, &j->item, s->lane);
                pushed++;
            } else {
                assert_true(lookupq_move(&q, &j->item, s->lane));
            }
            assert_int_equal(lookupq_lane_of(&j->item), (int)s->lane);
        }
        assert_int_equal(lookupq_total(&q), pushed);
        assert_int_equal(lookupq_pending(&q, LOOKUPQ_FOR_RECIPIENTS) +
                             lookupq_pending(&q, LOOKUPQ_FOR_REFRESH),
                         pushed);
        drain(&q, LOOKUPQ_FOR_RECIPIENTS, got, sizeof(got));
        if (strcmp(got, order_cases[c].recipients) != 0)
            fail_msg("%s: recipients' workers took \"%s\", want \"%s\"", order_cases[c].why, got,
                     order_cases[c].recipients);
        drain(&q, LOOKUPQ_FOR_REFRESH, got, sizeof(got));
        if (strcmp(got, order_cases[c].refresh) != 0)
            fail_msg("%s: refresh workers took \"%s\", want \"%s\"", order_cases[c].why, got,
                     order_cases[c].refresh);
        assert_int_equal(lookupq_total(&q), 0);
    }
}

/* A job a worker took (not queued) is not moved back into a lane. */
static void
move_of_running_job(void **state)
{
    struct lookupq q;
    struct job j = {{NULL, NULL, 0, 0}, 'a'};

    (void)state;
    memset(&q, 0, sizeof(q));
    lookupq_push(&q, &j.item, LOOKUPQ_WAITED);
    assert_ptr_equal(lookupq_pop(&q, LOOKUPQ_FOR_RECIPIENTS), &j.item);
    assert_false(lookupq_move(&q, &j.item, LOOKUPQ_ABANDONED));
    assert_int_equal(lookupq_lane_of(&j.item), -1);
    assert_int_equal(lookupq_total(&q), 0);
    assert_null(lookupq_pop(&q, LOOKUPQ_FOR_RECIPIENTS));
}

/* Many jobs through every lane in a shuffled order: nothing lost or doubled. */
static void
many_jobs(void **state)
{
    enum { N = 3000 };
    struct lookupq q;
    struct job *jobs = calloc(N, sizeof(*jobs));
    char *seen = calloc(N, 1);
    struct lookupq_item *it;
    size_t got = 0;

    (void)state;
    assert_non_null(jobs);
    assert_non_null(seen);
    memset(&q, 0, sizeof(q));
    for (int i = 0; i < N; i++)
        lookupq_push(&q, &jobs[i].item, (enum lookupq_lane)(i % LOOKUPQ_LANES));
    for (int i = 0; i < N; i += 7)
        assert_true(lookupq_move(&q, &jobs[i].item, (enum lookupq_lane)((i / 7) % LOOKUPQ_LANES)));
    assert_int_equal(lookupq_total(&q), N);
    while ((it = lookupq_pop(&q, got % 2 ? LOOKUPQ_FOR_REFRESH : LOOKUPQ_FOR_RECIPIENTS)) != NULL ||
           (it = lookupq_pop(&q, LOOKUPQ_FOR_RECIPIENTS)) != NULL ||
           (it = lookupq_pop(&q, LOOKUPQ_FOR_REFRESH)) != NULL) {
        size_t i = (size_t)((struct job *)(void *)it - jobs);

        assert_true(i < N);
        assert_int_equal(seen[i], 0);
        seen[i] = 1;
        got++;
    }
    assert_int_equal(got, N);
    assert_int_equal(lookupq_total(&q), 0);
    free(seen);
    free(jobs);
}

/* ------------------------------------------------------------ caps */

/* One step: take (t) or give (g) for a sender and connection, at a time. */
struct cstep {
    char op;
    const char *sender;
    uint64_t conn;
    int64_t now;
    enum lookupq_cap_result want;	/* for a take */
    bool want_log;		/* for a refused take */
};

static const struct {
    const char *why;
    unsigned per_sender, per_conn;
    struct cstep steps[12];
} cap_cases[] = {
    {"a sender at its cap is refused, others are served", 2, 0,
     {{'t', "mallory", 1, 100, LOOKUPQ_CAP_OK, false},
      {'t', "mallory", 2, 100, LOOKUPQ_CAP_OK, false},
      {'t', "mallory", 3, 100, LOOKUPQ_CAP_SENDER, true},
      {'t', "victim", 4, 100, LOOKUPQ_CAP_OK, false},
      {'t', "victim", 4, 100, LOOKUPQ_CAP_OK, false},
      {'t', "mallory", 5, 100, LOOKUPQ_CAP_SENDER, false}}},
    {"a lookup that ends frees its place", 1, 0,
     {{'t', "mallory", 1, 100, LOOKUPQ_CAP_OK, false},
      {'t', "mallory", 1, 101, LOOKUPQ_CAP_SENDER, true},
      {'g', "mallory", 1, 102, LOOKUPQ_CAP_OK, false},
      {'t', "mallory", 1, 103, LOOKUPQ_CAP_OK, false}}},
    {"refusals are reported once per interval (60 s), not once a recipient", 1, 0,
     {{'t', "mallory", 1, 100, LOOKUPQ_CAP_OK, false},
      {'t', "mallory", 1, 100, LOOKUPQ_CAP_SENDER, true},
      {'t', "mallory", 1, 130, LOOKUPQ_CAP_SENDER, false},
      {'t', "mallory", 1, 159, LOOKUPQ_CAP_SENDER, false},
      {'t', "mallory", 1, 160, LOOKUPQ_CAP_SENDER, true},
      {'t', "mallory", 1, 161, LOOKUPQ_CAP_SENDER, false}}},
    {"a connection at its cap is refused; the same sender's other connection is served", 0, 2,
     {{'t', "alice", 7, 100, LOOKUPQ_CAP_OK, false},
      {'t', "alice", 7, 100, LOOKUPQ_CAP_OK, false},
      {'t', "alice", 7, 100, LOOKUPQ_CAP_CONNECTION, true},
      {'t', "alice", 8, 100, LOOKUPQ_CAP_OK, false}}},
    {"a refusal by the connection charges the sender nothing", 2, 1,
     {{'t', "alice", 7, 100, LOOKUPQ_CAP_OK, false},
      {'t', "alice", 7, 100, LOOKUPQ_CAP_CONNECTION, true},
      {'t', "alice", 7, 100, LOOKUPQ_CAP_CONNECTION, false},
      {'t', "alice", 8, 100, LOOKUPQ_CAP_OK, false},
      {'t', "alice", 9, 100, LOOKUPQ_CAP_SENDER, true}}},
    {"no sender and no connection: never capped", 1, 1,
     {{'t', NULL, 0, 100, LOOKUPQ_CAP_OK, false},
      {'t', NULL, 0, 100, LOOKUPQ_CAP_OK, false},
      {'t', "", 0, 100, LOOKUPQ_CAP_OK, false}}},
    {"caps of 0: none", 0, 0,
     {{'t', "mallory", 1, 100, LOOKUPQ_CAP_OK, false},
      {'t', "mallory", 1, 100, LOOKUPQ_CAP_OK, false},
      {'t', "mallory", 1, 100, LOOKUPQ_CAP_OK, false}}},
};

static void
cap_table(void **state)
{
    (void)state;
    for (size_t c = 0; c < sizeof(cap_cases) / sizeof(cap_cases[0]); c++) {
        struct lookupq_cap *cap =
            lookupq_cap_new(cap_cases[c].per_sender, cap_cases[c].per_conn, 60);

        assert_non_null(cap);
        for (size_t i = 0; cap_cases[c].steps[i].op != 0; i++) {
            const struct cstep *s = &cap_cases[c].steps[i];
            bool log_it = !s->want_log;

            if (s->op == 'g') {
                lookupq_cap_give(cap, s->sender, s->conn, s->now);
                continue;
            }
            enum lookupq_cap_result r = lookupq_cap_take(cap, s->sender, s->conn, s->now, &log_it);
            if (r != s->want || log_it != s->want_log)
                fail_msg("%s: step %zu: result %d log %d, want %d log %d", cap_cases[c].why, i,
                         (int)r, (int)log_it, (int)s->want, (int)s->want_log);
        }
        lookupq_cap_free(cap);
    }
}

/* Charges come back to zero; memory follows what is in flight. */
static void
cap_memory_bounded(void **state)
{
    enum { SENDERS = 20000 };
    struct lookupq_cap *cap = lookupq_cap_new(3, 2, 60);
    char name[64];
    bool log_it;

    (void)state;
    assert_non_null(cap);
    for (int i = 0; i < SENDERS; i++) {
        snprintf(name, sizeof(name), "user%d@example", i);
        assert_int_equal(lookupq_cap_take(cap, name, (uint64_t)i + 1, 100, &log_it),
                         LOOKUPQ_CAP_OK);
        assert_int_equal(lookupq_cap_take(cap, name, (uint64_t)i + 1, 100, &log_it),
                         LOOKUPQ_CAP_OK);
    }
    assert_int_equal(lookupq_cap_entries(cap), 2 * SENDERS);
    snprintf(name, sizeof(name), "user%d@example", 5);
    assert_int_equal(lookupq_cap_held(cap, name, 0), 2);
    assert_int_equal(lookupq_cap_held(cap, NULL, 6), 2);
    for (int i = 0; i < SENDERS; i++) {
        snprintf(name, sizeof(name), "user%d@example", i);
        lookupq_cap_give(cap, name, (uint64_t)i + 1, 101);
        lookupq_cap_give(cap, name, (uint64_t)i + 1, 101);
    }
    assert_int_equal(lookupq_cap_entries(cap), 0);
    /* A give without a take (never happens in discover.c) does not go below zero. */
    lookupq_cap_give(cap, "nobody", 99, 102);
    assert_int_equal(lookupq_cap_held(cap, "nobody", 0), 0);
    assert_int_equal(lookupq_cap_entries(cap), 0);
    lookupq_cap_free(cap);
}

/* A refused sender's entry stays for its log interval, then goes. */
static void
cap_refused_entry_expires(void **state)
{
    struct lookupq_cap *cap = lookupq_cap_new(1, 0, 60);
    bool log_it;

    (void)state;
    assert_non_null(cap);
    assert_int_equal(lookupq_cap_take(cap, "m", 0, 100, &log_it), LOOKUPQ_CAP_OK);
    assert_int_equal(lookupq_cap_take(cap, "m", 0, 100, &log_it), LOOKUPQ_CAP_SENDER);
    assert_true(log_it);
    lookupq_cap_give(cap, "m", 0, 101);
    assert_int_equal(lookupq_cap_entries(cap), 1);	/* remembers it reported */
    assert_int_equal(lookupq_cap_take(cap, "m", 0, 102, &log_it), LOOKUPQ_CAP_OK);
    assert_int_equal(lookupq_cap_take(cap, "m", 0, 103, &log_it), LOOKUPQ_CAP_SENDER);
    assert_false(log_it);				/* within the interval */
    lookupq_cap_give(cap, "m", 0, 200);
    assert_int_equal(lookupq_cap_entries(cap), 0);	/* interval over, nothing held */
    lookupq_cap_free(cap);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(queue_order),
        cmocka_unit_test(move_of_running_job),
        cmocka_unit_test(many_jobs),
        cmocka_unit_test(cap_table),
        cmocka_unit_test(cap_memory_bounded),
        cmocka_unit_test(cap_refused_entry_expires),
    };

    return cmocka_run_group_tests_name("lookupq", tests, NULL, NULL);
}
