/*
 * test_metrics - metrics.h: the path kind of a decision, the map answer
 * words, the histogram buckets, and the text: every series has its HELP and
 * TYPE, counters move by exactly what was counted, and at full label spread
 * the number of series is what metrics.h says (printed for the record).
 */
#include "unit.h"

#include "decide.h"
#include "metrics.h"
#include "metrics_now.h"
#include "tlsa.h"
#include "tlsprobe.h"

struct path_case {
    const char *label;
    enum status_kind status;
    enum verdict_outcome outcome;
    enum rules_req req;
    enum verdict_tls tls;
    int dane;
    enum metrics_path want;
    const char *word;	/* its word in metrics, statistics rows and mtasts-ctl */
};

static const struct path_case path_cases[] = {
    {"DANE verified and passed", STATUS_NONE, VERDICT_PASS, RULES_REQ_MTA_STS,
     VERDICT_TLS_VERIFIED, TLSA_DANE_VERIFIED, METRICS_PATH_DANE, "dane"},
    {"DANE failed is not the DANE path", STATUS_NONE, VERDICT_FAIL, RULES_REQ_MTA_STS,
     VERDICT_TLS_UNVERIFIED, TLSA_DANE_FAILED, METRICS_PATH_TLS, "tls"},
    {"enforce, mta-sts passed", STATUS_ENFORCE, VERDICT_PASS, RULES_REQ_MTA_STS,
     VERDICT_TLS_UNSEEN, 0, METRICS_PATH_MTA_STS, "mta-sts"},
    {"enforce, mta-sts failed, probes verified", STATUS_ENFORCE, VERDICT_FAIL,
     RULES_REQ_MTA_STS, VERDICT_TLS_VERIFIED, 0, METRICS_PATH_VERIFIED_TLS, "verified-tls"},
    {"require=tls passed, unverified", STATUS_ABSENT, VERDICT_PASS, RULES_REQ_TLS,
     VERDICT_TLS_UNVERIFIED, 0, METRICS_PATH_TLS, "tls"},
    {"no STARTTLS", STATUS_ABSENT, VERDICT_FAIL, RULES_REQ_TLS, VERDICT_TLS_NONE, 0,
     METRICS_PATH_NONE, "none"},
    {"probe not done yet", STATUS_ENFORCE, VERDICT_UNKNOWN, RULES_REQ_MTA_STS,
     VERDICT_TLS_UNKNOWN, 0, METRICS_PATH_UNKNOWN, "unknown"},
    {"absent, probes off", STATUS_ABSENT, VERDICT_NOT_REQUIRED, RULES_REQ_MTA_STS,
     VERDICT_TLS_UNSEEN, 0, METRICS_PATH_NONE, "none"},
    {"status unknown, probes off", STATUS_UNKNOWN, VERDICT_UNKNOWN, RULES_REQ_MTA_STS,
     VERDICT_TLS_UNSEEN, 0, METRICS_PATH_UNKNOWN, "unknown"},
};

static void
run_path_case(void **state)
{
    const struct path_case *c = *state;
    struct decision d;

    memset(&d, 0, sizeof(d));
    d.scope = DECIDE_IN_SCOPE;
    d.status = c->status;
    d.outcome = c->outcome;
    d.req = c->req;
    d.tls = c->tls;
    d.dane = c->dane;
    assert_int_equal(metrics_path_of(&d), c->want);
    /* The words are stored in the cache (stats.h): spelled once, never renamed. */
    assert_string_equal(nametab_name(metrics_path_names, (int)c->want), c->word);
    assert_int_equal(nametab_code(metrics_path_names, NAMETAB_EXACT, c->word), (int)c->want);
}

/* The sample value of the series line that starts with "series ", or -1. */
static long long
sample(const char *text, const char *series)
{
    size_t n = strlen(series);

    for (const char *p = text; p != NULL && *p != '\0'; p = strchr(p, '\n'), p = p ? p + 1 : p)
        if (strncmp(p, series, n) == 0 && p[n] == ' ')
            return atoll(p + n + 1);
    return -1;
}

static char *
render(void)
{
    char *t;
    size_t len;

    assert_int_equal(metrics_render(&t, &len), 0);
    assert_int_equal(strlen(t), len);
    return t;
}

static void
test_map_words(void **state)
{
    char *before, *after;

    (void)state;
    before = render();
    metrics_map("OK secure match=mx.example", 26, 500);
    metrics_map("NOTFOUND ", 9, 500);
    metrics_map("TEMP lookup", 11, 500);
    metrics_map("TEMP lookup", 11, 500);
    metrics_map("PERM x", 6, 20000000);	/* 20 s: above the last bound */
    metrics_map("OKAY", 4, 500);		/* not OK: other */
    metrics_map("", 0, 500);
    after = render();
    assert_int_equal(sample(after, "mtasts_map_requests_total{answer=\"ok\"}") -
                     sample(before, "mtasts_map_requests_total{answer=\"ok\"}"), 1);
    assert_int_equal(sample(after, "mtasts_map_requests_total{answer=\"temp\"}") -
                     sample(before, "mtasts_map_requests_total{answer=\"temp\"}"), 2);
    assert_int_equal(sample(after, "mtasts_map_requests_total{answer=\"other\"}") -
                     sample(before, "mtasts_map_requests_total{answer=\"other\"}"), 2);
    /* 6 at 0.5 ms, in the first bucket; the 20 s one only in +Inf. */
    assert_int_equal(sample(after, "mtasts_map_request_seconds_bucket{le=\"0.001\"}") -
                     sample(before, "mtasts_map_request_seconds_bucket{le=\"0.001\"}"), 6);
    assert_int_equal(sample(after, "mtasts_map_request_seconds_bucket{le=\"10\"}") -
                     sample(before, "mtasts_map_request_seconds_bucket{le=\"10\"}"), 6);
    assert_int_equal(sample(after, "mtasts_map_request_seconds_bucket{le=\"+Inf\"}") -
                     sample(before, "mtasts_map_request_seconds_bucket{le=\"+Inf\"}"), 7);
    assert_int_equal(sample(after, "mtasts_map_request_seconds_count") -
                     sample(before, "mtasts_map_request_seconds_count"), 7);
    free(before);
    free(after);
}

static void
test_probe_fetch_cap_reload(void **state)
{
    char *t;

    (void)state;
    metrics_probe(TLSPROBE_GRADE_GOOD, TLSA_DANE_VERIFIED, 200000);
    metrics_probe(99, -3, 200000);	/* out of range: unknown, lookup-failed */
    metrics_fetch(false, 1000);
    metrics_lookup(STATUS_ABSENT, 30000);
    metrics_lookup(42, 30000);	/* out of range: unknown */
    metrics_cap(METRICS_CAP_MAP_CONNECTION);
    metrics_cache_write_error();
    metrics_reload(true);
    metrics_reload(false);
    metrics_reload(false);
    t = render();
    assert_int_equal(sample(t, "mtasts_probes_total{grade=\"good\"}"), 1);
    assert_int_equal(sample(t, "mtasts_probes_total{grade=\"unknown\"}"), 1);
    assert_int_equal(sample(t, "mtasts_probe_dane_total{dane=\"verified\"}"), 1);
    assert_int_equal(sample(t, "mtasts_probe_dane_total{dane=\"lookup-failed\"}"), 1);
    assert_int_equal(sample(t, "mtasts_probe_seconds_bucket{le=\"0.25\"}"), 2);
    assert_int_equal(sample(t, "mtasts_probe_seconds_bucket{le=\"0.1\"}"), 0);
    assert_int_equal(sample(t, "mtasts_policy_fetches_total{result=\"failed\"}"), 1);
    assert_int_equal(sample(t, "mtasts_lookups_total{status=\"absent\"}"), 1);
    assert_int_equal(sample(t, "mtasts_lookups_total{status=\"unknown\"}"), 1);
    assert_int_equal(sample(t, "mtasts_lookup_seconds_bucket{le=\"0.05\"}"), 2);
    assert_int_equal(sample(t, "mtasts_lookup_seconds_bucket{le=\"0.01\"}"), 0);
    assert_int_equal(sample(t, "mtasts_caps_hit_total{cap=\"map-connection\"}"), 1);
    assert_int_equal(sample(t, "mtasts_cache_write_errors_total"), 1);
    assert_int_equal(sample(t, "mtasts_reloads_total{result=\"applied\"}"), 1);
    assert_int_equal(sample(t, "mtasts_reloads_total{result=\"refused\"}"), 2);
    free(t);
}

/* The sample as a double (gauges with fractions), or -1. */
static double
sample_d(const char *text, const char *series)
{
    size_t n = strlen(series);

    for (const char *p = text; p != NULL && *p != '\0'; p = strchr(p, '\n'), p = p ? p + 1 : p)
        if (strncmp(p, series, n) == 0 && p[n] == ' ')
            return atof(p + n + 1);
    return -1;
}

/* The gauges of the present: queues, resolver, memory, the last minute's
 * recipients exactly, the slowest lookup; and the new counters. */
static void
test_now(void **state)
{
    struct decision d;
    char *t, *before;

    (void)state;
    /* Queues: the depth as published, the wait from the head's time. */
    metrics_now_queue(METRICS_Q_LOOKUP_WAITED, 3, metrics_clock_us() - 2000000);
    metrics_now_queue(METRICS_Q_PROBE_FIRST, 0, metrics_clock_us() - 2000000);
    metrics_now_queue(METRICS_QUEUES, 7, 1);	/* no such queue: ignored */
    t = render();
    assert_int_equal(sample(t, "mtasts_queue_depth{queue=\"lookup-waited\"}"), 3);
    assert_true(sample_d(t, "mtasts_queue_oldest_wait_seconds{queue=\"lookup-waited\"}") >= 2.0);
    assert_true(sample_d(t, "mtasts_queue_oldest_wait_seconds{queue=\"lookup-waited\"}") < 60.0);
    assert_int_equal(sample(t, "mtasts_queue_depth{queue=\"probe-first\"}"), 0);
    /* Empty: no wait, whatever time came with it. */
    assert_true(sample_d(t, "mtasts_queue_oldest_wait_seconds{queue=\"probe-first\"}") == 0.0);
    free(t);
    metrics_now_queue(METRICS_Q_LOOKUP_WAITED, 0, 0);

    /* Resolver: unknown, ok, degraded, down, ok again; renewed. */
    assert_int_equal(metrics_now_resolver_state(), METRICS_RESOLVER_UNKNOWN);
    metrics_now_resolver(true);
    assert_int_equal(metrics_now_resolver_state(), METRICS_RESOLVER_OK);
    for (int i = 1; i < METRICS_NOW_DOWN_AFTER; i++) {
        metrics_now_resolver(false);
        assert_int_equal(metrics_now_resolver_state(), METRICS_RESOLVER_DEGRADED);
    }
    metrics_now_resolver(false);
    assert_int_equal(metrics_now_resolver_state(), METRICS_RESOLVER_DOWN);
    t = render();
    assert_int_equal(sample(t, "mtasts_resolver_state{state=\"down\"}"), 1);
    assert_int_equal(sample(t, "mtasts_resolver_state{state=\"ok\"}"), 0);
    assert_int_equal(sample(t, "mtasts_resolver_failed_in_a_row"), METRICS_NOW_DOWN_AFTER);
    free(t);
    metrics_now_resolver(true);
    assert_int_equal(metrics_now_resolver_state(), METRICS_RESOLVER_OK);
    metrics_now_resolver_renewed();
    assert_int_equal(metrics_now_resolver_state(), METRICS_RESOLVER_RENEWED);

    /* The last minute and hour: exactly what was decided. */
    before = render();
    memset(&d, 0, sizeof(d));
    d.scope = DECIDE_IN_SCOPE;
    d.effect = DECIDE_DEFER;
    for (int i = 0; i < 7; i++)
        metrics_rcpt(&d, metrics_clock_us());
    d.effect = DECIDE_TAG;
    metrics_rcpt(&d, metrics_clock_us());
    d.scope = DECIDE_LOCAL_DOMAIN;
    d.effect = DECIDE_UNTOUCHED;
    metrics_rcpt(&d, metrics_clock_us());
    metrics_now_memory_entries(42);
    metrics_now_lookup(2500000);
    metrics_now_lookup(1000);
    metrics_cache_healed();
    metrics_memory(true);
    metrics_memory(true);
    metrics_memory(false);
    metrics_recheck(METRICS_RECHECK_SAME);
    metrics_recheck(METRICS_RECHECK_INCOMPLETE);
    metrics_recheck((enum metrics_recheck)99);	/* out of range: the last word */
    metrics_map_refused();
    t = render();
    assert_int_equal(sample(t, "mtasts_rcpts_last_minute") -
                     sample(before, "mtasts_rcpts_last_minute"), 9);
    assert_int_equal(sample(t, "mtasts_rcpts_last_hour") -
                     sample(before, "mtasts_rcpts_last_hour"), 9);
    assert_int_equal(sample(t, "mtasts_recipients_last_minute{action=\"defer\"}") -
                     sample(before, "mtasts_recipients_last_minute{action=\"defer\"}"), 7);
    assert_int_equal(sample(t, "mtasts_recipients_last_hour{action=\"tag\"}") -
                     sample(before, "mtasts_recipients_last_hour{action=\"tag\"}"), 1);
    /* Out of scope: a RCPT, not a judged recipient. */
    assert_int_equal(sample(t, "mtasts_recipients_last_minute{action=\"untouched\"}") -
                     sample(before, "mtasts_recipients_last_minute{action=\"untouched\"}"), 0);
    assert_int_equal(sample(t, "mtasts_memory_entries"), 42);
    assert_true(sample_d(t, "mtasts_lookup_slowest_last_hour_seconds") >= 2.5);
    assert_int_equal(sample(t, "mtasts_cache_healed_total"), 1);
    assert_int_equal(sample(t, "mtasts_memory_reads_total{result=\"hit\"}"), 2);
    assert_int_equal(sample(t, "mtasts_memory_reads_total{result=\"miss\"}"), 1);
    assert_int_equal(sample(t, "mtasts_rechecks_total{result=\"same-policy\"}"), 1);
    assert_int_equal(sample(t, "mtasts_rechecks_total{result=\"incomplete\"}"), 1);
    assert_int_equal(sample(t, "mtasts_rechecks_total{result=\"no-time\"}"), 1);
    assert_int_equal(sample(t, "mtasts_rechecks_total{result=\"new-policy\"}"), 0);
    assert_int_equal(sample(t, "mtasts_map_clients_refused_total"), 1);
    /* No cache file configured: no rows, and an age of -1. */
    assert_int_equal(sample(t, "mtasts_cache_rows{table=\"domains\"}"), -1);
    assert_true(sample_d(t, "mtasts_cache_rows_age_seconds") == -1.0);
    free(before);
    free(t);
}

/* Every combination of the recipient labels, once: each is its own series,
 * and every series has a HELP and a TYPE line before it. */
static void
test_full_spread(void **state)
{
    struct decision d;
    size_t series = 0, rcpt_series = 0, judged = 0;
    char *t, *line, *save = NULL;
    char last_type[128] = "";

    (void)state;
    memset(&d, 0, sizeof(d));
    d.scope = DECIDE_IN_SCOPE;
    for (int e = DECIDE_UNTOUCHED; e <= DECIDE_HOLD; e++)
        for (int o = VERDICT_PASS; o <= VERDICT_UNKNOWN; o++)
            for (int s = STATUS_ENFORCE; s <= STATUS_UNKNOWN; s++)
                for (int tls = VERDICT_TLS_UNSEEN; tls <= VERDICT_TLS_UNKNOWN; tls++)
                    for (int dane = 0; dane <= 1; dane++)
                        for (int r = RULES_REQ_NONE; r <= RULES_REQ_MTA_STS; r++)
                            for (int y = 0; y <= 1; y++) {
                                d.effect = (enum decide_effect)e;
                                d.outcome = (enum verdict_outcome)o;
                                d.status = (enum status_kind)s;
                                d.tls = (enum verdict_tls)tls;
                                d.dane = dane ? TLSA_DANE_VERIFIED : 0;
                                d.req = (enum rules_req)r;
                                d.dry_run = y;
                                metrics_rcpt(&d, metrics_clock_us());
                                judged++;
                            }
    t = render();
    for (line = strtok_r(t, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save)) {
        if (strncmp(line, "# TYPE ", 7) == 0) {
            snprintf(last_type, sizeof(last_type), "%.*s", (int)strcspn(line + 7, " "), line + 7);
            continue;
        }
        if (line[0] == '#')
            continue;
        series++;
        /* A sample belongs to the family whose TYPE came last. */
        assert_true(last_type[0] != '\0' && strncmp(line, last_type, strlen(last_type)) == 0);
        if (strncmp(line, "mtasts_recipients_total{", 24) == 0)
            rcpt_series++;
    }
    free(t);
    /* The reachable cells: every action, outcome, status, requirement and
     * dry-run, with the path kinds metrics_path_of gives them. */
    assert_true(rcpt_series > 1000);
    assert_true(rcpt_series <= 5 * 4 * 6 * 6 * 4 * 2);
    print_message("# %zu recipients judged over the label spread: %zu recipient series, %zu "
                  "series in all\n", judged, rcpt_series, series);
}

#define N_TESTS (N_ROWS(path_cases) + 4)

static struct CMUnitTest tests[N_TESTS];
static char test_names[N_TESTS][UNIT_NAME_MAX];

int
main(void)
{
    struct unit_list list = {tests, test_names, N_TESTS, 0, NULL};
    static const struct CMUnitTest singles[] = {
        cmocka_unit_test(test_map_words),
        cmocka_unit_test(test_probe_fetch_cap_reload),
        cmocka_unit_test(test_now),
        cmocka_unit_test(test_full_spread),
    };

    UNIT_ADD_TABLE(&list, "path", path_cases, run_path_case);
    unit_add_singles(&list, singles, N_ROWS(singles));
    if (list.n != N_TESTS) {
        fprintf(stderr, "test_metrics: %zu tests registered, %zu expected\n", list.n,
                (size_t)N_TESTS);
        return 2;
    }
    return cmocka_run_group_tests(tests, NULL, NULL);
}
