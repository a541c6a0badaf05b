/*
 * test_danemap - unit tests for common/danemap.c: when the policy map
 * answers "dane-only" (the rule in danemap.h).
 *
 * Table, one cmocka test per row:
 *	only_cases	danemap_only over a status, the MX RRset's DNSSEC state,
 *			the MX hosts and each host's probe (state, DANE outcome):
 *			every DANE outcome, mixed hosts, enforce with a host
 *			outside its policy, an insecure MX RRset, a null MX, a
 *			host not probed yet, an unknown status
 */
#include "unit.h"

#include <stdbool.h>
#include <string.h>

#include "danemap.h"

#define HOSTS_MAX 4

/* A host: its name, its probe's state and DANE outcome. */
struct host {
    const char *name;
    enum probes_state state;
    enum tlsa_dane dane;
};

struct only_case {
    const char *label;
    enum status_kind status;
    const char *pattern;	/* the enforce policy's one mx pattern */
    bool mx_secure;
    struct host hosts[HOSTS_MAX];	/* name NULL ends */
    bool want;
};

#define K PROBES_KNOWN
#define V TLSA_DANE_VERIFIED
#define F TLSA_DANE_FAILED
#define L TLSA_DANE_LOOKUP_FAILED

static const struct only_case only_cases[] = {
    {"absent, one host DANE-verified", STATUS_ABSENT, NULL, true, {{"mx.a.test", K, V}}, true},
    {"absent, one host DANE-failed (TLSA mismatch): Postfix defers too", STATUS_ABSENT, NULL,
     true, {{"mx.a.test", K, F}}, true},
    {"absent, a failed TLSA lookup: neither uses the host", STATUS_ABSENT, NULL, true,
     {{"mx.a.test", K, L}}, true},
    {"absent, verified and lookup-failed hosts", STATUS_ABSENT, NULL, true,
     {{"mx1.a.test", K, V}, {"mx2.a.test", K, L}}, true},
    {"none, two DANE hosts", STATUS_NONE, NULL, true,
     {{"mx1.a.test", K, V}, {"mx2.a.test", K, F}}, true},
    {"testing, a DANE host", STATUS_TESTING, "mx.a.test", true, {{"mx.a.test", K, V}}, true},
    {"failed (RFC 8461 §3.3), a DANE host", STATUS_FAILED, NULL, true, {{"mx.a.test", K, V}},
     true},
    {"enforce, its one matching host DANE-verified", STATUS_ENFORCE, "mx.a.test", true,
     {{"mx.a.test", K, V}}, true},
    {"enforce, wildcard, both hosts DANE", STATUS_ENFORCE, "*.a.test", true,
     {{"mx1.a.test", K, V}, {"mx2.a.test", K, F}}, true},
    /* ... and where it must not */
    {"absent, no TLSA (none)", STATUS_ABSENT, NULL, true, {{"mx.a.test", K, TLSA_DANE_NONE}},
     false},
    {"absent, TLSA without a usable record (unusable)", STATUS_ABSENT, NULL, true,
     {{"mx.a.test", K, TLSA_DANE_UNUSABLE}}, false},
    {"mixed: a DANE host and one without TLSA", STATUS_ABSENT, NULL, true,
     {{"mx1.a.test", K, V}, {"mx2.a.test", K, TLSA_DANE_NONE}}, false},
    {"mixed, the host without TLSA second of three", STATUS_NONE, NULL, true,
     {{"mx1.a.test", K, V}, {"mx2.a.test", K, TLSA_DANE_UNUSABLE}, {"mx3.a.test", K, V}}, false},
    {"insecure MX RRset", STATUS_ABSENT, NULL, false, {{"mx.a.test", K, V}}, false},
    {"enforce, secure MX RRset, a DANE host outside the policy", STATUS_ENFORCE, "mx1.a.test",
     true, {{"mx1.a.test", K, V}, {"mx2.a.test", K, V}}, false},
    {"a host not probed yet", STATUS_ABSENT, NULL, true,
     {{"mx1.a.test", K, V}, {"mx2.a.test", PROBES_NOT_YET, TLSA_DANE_NONE}}, false},
    {"a host on probe_never", STATUS_ABSENT, NULL, true, {{"mx.a.test", PROBES_NEVER, V}}, false},
    {"a null MX", STATUS_ABSENT, NULL, true, {{".", K, V}}, false},
    {"unknown status", STATUS_UNKNOWN, NULL, true, {{"mx.a.test", K, V}}, false},
    {"no MX host", STATUS_ABSENT, NULL, true, {{NULL, K, V}}, false},
};

static void
run_only_case(void **state)
{
    const struct only_case *c = *state;
    struct status_result st;
    struct probes_host ph[HOSTS_MAX];
    const char *mx[HOSTS_MAX];
    bool allowed[HOSTS_MAX];
    char *pats[1] = {(char *)c->pattern};
    size_t n = 0;

    memset(&st, 0, sizeof(st));
    memset(ph, 0, sizeof(ph));
    st.status = c->status;
    snprintf(st.domain, sizeof(st.domain), "a.test");
    st.mx = pats;
    st.n_mx = c->pattern != NULL ? 1 : 0;
    for (; n < HOSTS_MAX && c->hosts[n].name != NULL; n++) {
        mx[n] = c->hosts[n].name;
        ph[n].state = c->hosts[n].state;
        ph[n].dane = c->hosts[n].dane;
    }
    assert_int_equal(danemap_only(&st, c->mx_secure, mx, n, ph, NULL), c->want);
    /* The same with the hosts' matches worked out before (decide.c). */
    for (size_t i = 0; i < n; i++)
        allowed[i] = status_result_mx_allows(&st, mx[i]);
    assert_int_equal(danemap_only(&st, c->mx_secure, mx, n, ph, allowed), c->want);
    /* The per-host rule agrees with the whole (map_query.c uses it). */
    if (c->mx_secure && n > 0 && c->status != STATUS_UNKNOWN) {
        bool all = true;

        for (size_t i = 0; i < n; i++)
            all = all && danemap_host(&st, mx[i], NULL) && danemap_host(&st, mx[i], &ph[i]);
        assert_int_equal(all, c->want);
    }
}

#define N_TESTS N_ROWS(only_cases)

static struct CMUnitTest tests[N_TESTS];
static char test_names[N_TESTS][UNIT_NAME_MAX];

int
main(void)
{
    struct unit_list list = {tests, test_names, N_TESTS, 0, NULL};

    UNIT_ADD_TABLE(&list, "only", only_cases, run_only_case);
    if (list.n != N_TESTS) {
        fprintf(stderr, "test_danemap: %zu tests registered, %zu expected\n", list.n,
                (size_t)N_TESTS);
        return 2;
    }
    return cmocka_run_group_tests(tests, NULL, NULL);
}
