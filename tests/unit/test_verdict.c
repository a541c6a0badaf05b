/*
 * test_verdict - unit tests for common/verdict.c: what to do with one
 * recipient, from its domain's status, the route and the rules.
 *
 * Tables, one cmocka test per row:
 *	decide		verdict_decide over the whole matrix rule x status x
 *			MX fact x route, built at run time; the expected
 *			result comes from oracle(), which restates DESIGN.md
 *			("Verdict") and verdict.h without calling verdict code
 *	mx		verdict_decide on enforce domains: MX hosts against
 *			the policy's mx patterns (wildcards, several MX, null MX)
 *	match		rules_match: from=, auth=, rcpt=, first match wins
 *	parse		rules_parse: valid rules and refused ones
 *	route		verdict_route_enforces: transports, relays, default_route
 *	names		verdict_action_name, _outcome_name, _req_name
 * and single tests for rules_load (config lines, then rules_file).
 * No network: every fact is built by hand.
 */
#include "unit.h"

#include <stdbool.h>
#include <unistd.h>

#include "config.h"
#include "discover.h"
#include "verdict.h"
#include "tlsa.h"
#include "probes.h"

#define DOMAIN "partner.example"
/* Policy mx patterns and MX hosts: none of them contains DOMAIN. */
#define POLICY_MX "mx1.sts-hosting.test\n*.pool.sts-hosting.test"
#define MX_OK "mx9.pool.sts-hosting.test"
#define MX_BAD "mx.elsewhere.test"
#define ROUTE "smtp:[relay.test]"
#define STATUS_ERROR "DNS SERVFAIL for _mta-sts"

/* ---------------------------------------------------------- scratch */

/* What a test builds; the teardown frees it even when the test failed. */
static struct rules scratch_rules;
static struct config *scratch_cfg;
static char temp_paths[4][32];
static size_t n_temp;

static int
free_scratch(void **state)
{
    rules_free(&scratch_rules);
    if (scratch_cfg != NULL)
        config_unref(scratch_cfg);
    scratch_cfg = NULL;
    while (n_temp > 0)
        unlink(temp_paths[--n_temp]);
    return unit_scratch_free(state);
}

/* A temporary file holding text; returns its path. */
static const char *
temp_file(const char *text)
{
    char *path;
    size_t len = strlen(text);
    int fd;

    if (n_temp == N_ROWS(temp_paths))
        fail_msg("temp_file: more than %zu files in one test", N_ROWS(temp_paths));
    path = temp_paths[n_temp];
    snprintf(path, sizeof(temp_paths[0]), "/tmp/mts-verdict-XXXXXX");
    fd = mkstemp(path);
    assert_true(fd >= 0);
    n_temp++;
    assert_int_equal(write(fd, text, len), (ssize_t)len);
    close(fd);
    return path;
}

/* Loads a config file holding text into scratch_cfg. */
static struct config *
load_config(const char *text)
{
    struct mts_err err;

    if (config_load(temp_file(text), &scratch_cfg, &err) != 0)
        fail_msg("config_load: %s", err.msg);
    return scratch_cfg;
}

/* Parses text as one more rule of rules. */
static int
rules_add(struct rules *rules, const char *text, struct mts_err *err)
{
    struct rules_rule *nr = realloc(rules->r, (rules->n + 1) * sizeof(*nr));

    assert_non_null(nr);
    rules->r = nr;
    if (rules_parse(text, &rules->r[rules->n], err) != 0)
        return -1;
    rules->n++;
    return 0;
}

/* scratch_rules from a NULL-terminated list of rule texts. */
static const struct rules *
make_rules(const char *const *texts)
{
    struct mts_err err;

    for (size_t i = 0; texts[i] != NULL; i++)
        if (rules_add(&scratch_rules, texts[i], &err) != 0)
            fail_msg("rule \"%s\" refused: %s", texts[i], err.msg);
    return &scratch_rules;
}

/* A status as discover would give it: a policy for enforce/testing/none. */
static void
make_status(struct status_result *st, enum status_kind s, const char *policy_mx)
{
    memset(st, 0, sizeof(*st));
    st->status = s;
    st->source = STATUS_FROM_CACHE;
    snprintf(st->domain, sizeof(st->domain), "%s", DOMAIN);
    st->has_policy = s == STATUS_ENFORCE || s == STATUS_TESTING || s == STATUS_NONE;
    if (st->has_policy) {
        st->mode = s == STATUS_ENFORCE ? POLICY_MODE_ENFORCE :
                   s == STATUS_TESTING ? POLICY_MODE_TESTING : POLICY_MODE_NONE;
        /* The patterns as a list; the table spells them '\n'-separated. */
        st->mx = calloc(DISCOVER_MAX_MX, sizeof(*st->mx));
        assert_non_null(st->mx);
        for (const char *p = policy_mx; p != NULL && *p != '\0' && st->n_mx < DISCOVER_MAX_MX;) {
            const char *nl = strchr(p, '\n');

            st->mx[st->n_mx] = strndup(p, nl != NULL ? (size_t)(nl - p) : strlen(p));
            assert_non_null(st->mx[st->n_mx++]);
            p = nl != NULL ? nl + 1 : NULL;
        }
        snprintf(st->txt_id, sizeof(st->txt_id), "20240101");
    }
    if (s == STATUS_UNKNOWN || s == STATUS_FAILED || s == STATUS_ABSENT)
        snprintf(st->error, sizeof(st->error), "%s", STATUS_ERROR);
}

static void
assert_reason_names(const char *reason, size_t size, const char *what)
{
    if (memchr(reason, '\0', size) == NULL)
        fail_msg("reason is not NUL-terminated");
    if (reason[0] == '\0')
        fail_msg("empty reason");
    if (strstr(reason, what) == NULL)
        fail_msg("reason \"%s\" does not name \"%s\"", reason, what);
}

static void
assert_action(const struct verdict *v, enum verdict_action action,
              enum verdict_outcome outcome, bool permanent)
{
    if (v->action != action || v->outcome != outcome)
        fail_msg("got %s/%s, want %s/%s (reason: %s)", verdict_action_name(v->action),
                 verdict_outcome_name(v->outcome), verdict_action_name(action),
                 verdict_outcome_name(outcome), v->reason);
    if (v->permanent != permanent)
        fail_msg("permanent is %d, want %d (reason: %s)", v->permanent, permanent, v->reason);
}

static void
assert_opt_string(const char *what, const char *got, const char *want)
{
    if (want == NULL && got != NULL)
        fail_msg("%s is \"%s\", want NULL", what, got);
    if (want != NULL && (got == NULL || strcmp(got, want) != 0))
        fail_msg("%s is \"%s\", want \"%s\"", what, got ? got : "(null)", want);
}

/* -------------------------------------------------- decide: the matrix */

struct rule_variant {
    const char *label;
    const char *text;		/* the one rule; NULL: no rules at all */
    bool builtin;		/* the built-in default applies (no rule matches) */
    enum rules_req req;	/* of the rule, when one matches */
    enum verdict_action on_fail, on_unknown;
};

static const struct rule_variant rule_variants[] = {
    { "no rules", NULL, true, RULES_REQ_MTA_STS, 0, 0 },
    { "rule for another domain", "rcpt=other.example require=none", true,
      RULES_REQ_MTA_STS, 0, 0 },
    { "require=none", "rcpt=" DOMAIN " require=none", false, RULES_REQ_NONE,
      VERDICT_DEFER, VERDICT_DEFER },
    { "require=none fail=reject unknown=reject",
      "require=none fail=reject unknown=reject", false, RULES_REQ_NONE,
      VERDICT_REJECT, VERDICT_REJECT },
    { "require=mta-sts (default actions)", "rcpt=" DOMAIN " require=mta-sts", false,
      RULES_REQ_MTA_STS, VERDICT_DEFER, VERDICT_DEFER },
    { "fail=tag unknown=defer", "rcpt=*.example require=mta-sts fail=tag unknown=defer",
      false, RULES_REQ_MTA_STS, VERDICT_TAG, VERDICT_DEFER },
    { "fail=defer unknown=reject", "rcpt=* require=mta-sts fail=defer unknown=reject",
      false, RULES_REQ_MTA_STS, VERDICT_DEFER, VERDICT_REJECT },
    { "fail=reject unknown=tag", "from=* require=mta-sts fail=reject unknown=tag", false,
      RULES_REQ_MTA_STS, VERDICT_REJECT, VERDICT_TAG },
};

static const enum status_kind all_statuses[] = {
    STATUS_ENFORCE, STATUS_TESTING, STATUS_NONE,
    STATUS_ABSENT,  STATUS_FAILED,  STATUS_UNKNOWN,
};

enum mx_fact { MX_MATCH, MX_MISMATCH, MX_LOOKUP_FAILED };

static const char *const mx_fact_names[] = { "MX matches", "MX mismatch", "MX unknown" };

struct decide_case {
    size_t variant;
    enum status_kind status;
    enum mx_fact mx;
    bool route_enforces;
};

#define N_DECIDE (N_ROWS(rule_variants) * N_ROWS(all_statuses) * N_ROWS(mx_fact_names) * 2)

static struct decide_case decide_cases[N_DECIDE];

struct expect {
    enum verdict_action action;
    enum verdict_outcome outcome;
    bool permanent;
};

/*
 * DESIGN.md "Verdict", restated. With no rule: require mta-sts, reject
 * what can never be delivered under an enforce policy (no MX matches),
 * defer what cannot be guaranteed now (unknown, a route that does not
 * enforce); absent, failed, none and testing demand nothing; the rest is
 * tagged. A rule's fail= covers every unmet requirement and its unknown=
 * every fact that could not be learnt. permanent marks a reject that rests
 * on the policy (an unmet requirement), never one for an unknown status.
 */
static struct expect
oracle(const struct rule_variant *rv, enum status_kind status, enum mx_fact mx,
       bool route_enforces)
{
    enum verdict_action on_fail = rv->builtin ? VERDICT_DEFER : rv->on_fail;
    enum verdict_action on_unknown = rv->builtin ? VERDICT_DEFER : rv->on_unknown;
    enum verdict_action on_mismatch = rv->builtin ? VERDICT_REJECT : rv->on_fail;

    if (!rv->builtin && rv->req == RULES_REQ_NONE)
        return (struct expect){ VERDICT_TAG, VERDICT_NOT_REQUIRED, false };
    if (status == STATUS_UNKNOWN)
        return (struct expect){ on_unknown, VERDICT_UNKNOWN, false };
    if (status != STATUS_ENFORCE)
        return (struct expect){ VERDICT_TAG, VERDICT_NOT_REQUIRED, false };
    if (mx == MX_LOOKUP_FAILED)
        return (struct expect){ on_unknown, VERDICT_UNKNOWN, false };
    if (mx == MX_MISMATCH)
        return (struct expect){ on_mismatch, VERDICT_FAIL, on_mismatch == VERDICT_REJECT };
    if (!route_enforces)
        return (struct expect){ on_fail, VERDICT_FAIL, on_fail == VERDICT_REJECT };
    return (struct expect){ VERDICT_TAG, VERDICT_PASS, false };
}

static void
run_decide_case(void **state)
{
    const struct decide_case *c = *state;
    const struct rule_variant *rv = &rule_variants[c->variant];
    const char *const texts[] = { rv->text, NULL };
    const char *const mx_ok[] = { MX_OK };
    const char *const mx_bad[] = { MX_BAD };
    struct expect want = oracle(rv, c->status, c->mx, c->route_enforces);
    const struct rules *rules = make_rules(texts);
    struct status_result st;
    struct verdict_facts f = {
        .sender = "alice@corp.example",
        .auth = "alice",
        .rcpt_domain = DOMAIN,
        .status = &st,
        .mx_known = c->mx != MX_LOOKUP_FAILED,
        .n_mx = c->mx == MX_LOOKUP_FAILED ? 0 : 1,
        .mx = c->mx == MX_MATCH ? mx_ok : c->mx == MX_MISMATCH ? mx_bad : NULL,
        .route_enforces = c->route_enforces,
        .route = ROUTE,
    };
    struct verdict v;

    make_status(&st, c->status, POLICY_MX);
    memset(&v, 0xa5, sizeof(v));
    verdict_decide(rules, &f, &v);
    assert_action(&v, want.action, want.outcome, want.permanent);
    assert_ptr_equal(v.rule, rv->builtin ? NULL : &rules->r[0]);
    assert_int_equal(v.req, rv->builtin ? RULES_REQ_MTA_STS : rv->req);
    assert_reason_names(v.reason, sizeof(v.reason), DOMAIN);
    /* The sender can read why. */
    if (want.outcome == VERDICT_UNKNOWN && c->status == STATUS_UNKNOWN)
        assert_reason_names(v.reason, sizeof(v.reason), STATUS_ERROR);
    if (want.outcome == VERDICT_FAIL && c->mx == MX_MATCH)
        assert_reason_names(v.reason, sizeof(v.reason), ROUTE);
    if (want.outcome == VERDICT_FAIL && c->mx == MX_MISMATCH)
        assert_reason_names(v.reason, sizeof(v.reason), MX_BAD);
    status_result_free(&st);
}

static void
add_decide_cases(struct unit_list *list)
{
    size_t n = 0;
    char label[UNIT_NAME_MAX];

    for (size_t r = 0; r < N_ROWS(rule_variants); r++)
        for (size_t s = 0; s < N_ROWS(all_statuses); s++)
            for (size_t m = 0; m < N_ROWS(mx_fact_names); m++)
                for (int route = 0; route < 2; route++) {
                    struct decide_case *c = &decide_cases[n++];

                    *c = (struct decide_case){ r, all_statuses[s], (enum mx_fact)m,
                                               route == 1 };
                    snprintf(label, sizeof(label), "%s | %s, %s, route %s",
                             rule_variants[r].label, status_kind_name(c->status),
                             mx_fact_names[m], route ? "enforces" : "does not enforce");
                    unit_add(list, "decide", label, run_decide_case, c);
                }
}

/* ------------------------------------------------ decide: MX matching */

#define MX_MAX 4

struct mx_case {
    const char *label;
    const char *policy_mx;
    const char *hosts[MX_MAX];	/* NULL-terminated */
    bool pass;
};

static const struct mx_case mx_cases[] = {
    { "wildcard allows one label", "*.mx.example", { "a.mx.example" }, true },
    { "wildcard does not allow the parent", "*.mx.example", { "mx.example" }, false },
    { "wildcard does not allow two labels", "*.mx.example", { "a.b.mx.example" }, false },
    { "exact pattern", "mx1.example", { "mx1.example" }, true },
    { "exact pattern is not a suffix", "mx.example", { "evilmx.example" }, false },
    { "exact pattern does not cover subdomains", "mx.example", { "a.mx.example" }, false },
    { "case and trailing dot of the MX ignored", "mx1.example", { "MX1.Example." }, true },
    { "only the second MX matches", "mx1.example\nmx2.example",
      { "other.example", "mx2.example" }, true },
    { "only the third MX matches the wildcard", "*.mx.example",
      { "x.example", "y.example", "c.mx.example" }, true },
    { "second pattern matches", "mx1.example\n*.mx.example", { "b.mx.example" }, true },
    { "none of several MX matches", "mx1.example\nmx2.example",
      { "mx3.example", "mx4.example" }, false },
    { "null MX", "mx1.example", { "." }, false },
    { "no MX hosts", "mx1.example", { NULL }, false },
    { "policy without mx patterns", "", { "mx1.example" }, false },
};

static void
run_mx_case(void **state)
{
    const struct mx_case *c = *state;
    struct rules none = { 0, NULL };
    struct status_result st;
    struct verdict_facts f = {
        .sender = "",
        .rcpt_domain = DOMAIN,
        .status = &st,
        .mx_known = true,
        .mx = c->hosts,
        .route_enforces = true,
        .route = ROUTE,
    };
    struct verdict v;

    while (f.n_mx < MX_MAX && c->hosts[f.n_mx] != NULL)
        f.n_mx++;
    make_status(&st, STATUS_ENFORCE, c->policy_mx);
    verdict_decide(&none, &f, &v);
    if (c->pass) {
        assert_action(&v, VERDICT_TAG, VERDICT_PASS, false);
    } else {
        assert_action(&v, VERDICT_REJECT, VERDICT_FAIL, true);
        if (f.n_mx > 0)
            assert_reason_names(v.reason, sizeof(v.reason), c->hosts[0]);
    }
    assert_reason_names(v.reason, sizeof(v.reason), DOMAIN);
    status_result_free(&st);
}

/* ------------------------------------------- REQUIRETLS (RFC 8689) */

struct rtls_case {
    const char *label;
    enum status_kind status;
    bool mx_known, mx_ok, route, dane;
    const char *rule;		/* one rule's text; NULL: none */
    enum verdict_action action;
    enum verdict_outcome outcome, requiretls;
    bool refused, permanent;
};

#define T true
#define F false
static const struct rtls_case rtls_cases[] = {
    { "enforce, MX and route pass", STATUS_ENFORCE, T, T, T, F, NULL, VERDICT_TAG,
      VERDICT_PASS, VERDICT_PASS, F, F },
    { "enforce, route does not enforce: reject, re-check first", STATUS_ENFORCE, T, T, F, F,
      NULL, VERDICT_REJECT, VERDICT_FAIL, VERDICT_FAIL, T, T },
    { "enforce, MX mismatch: reject, re-check first", STATUS_ENFORCE, T, F, T, F, NULL,
      VERDICT_REJECT, VERDICT_FAIL, VERDICT_FAIL, T, T },
    { "enforce, MX unknown: defer", STATUS_ENFORCE, F, F, T, F, NULL, VERDICT_DEFER,
      VERDICT_UNKNOWN, VERDICT_UNKNOWN, T, F },
    { "testing: reject", STATUS_TESTING, T, T, T, F, NULL, VERDICT_REJECT, VERDICT_FAIL,
      VERDICT_FAIL, T, F },
    { "none: reject", STATUS_NONE, T, T, T, F, NULL, VERDICT_REJECT, VERDICT_FAIL,
      VERDICT_FAIL, T, F },
    { "absent: reject", STATUS_ABSENT, F, F, T, F, NULL, VERDICT_REJECT, VERDICT_FAIL,
      VERDICT_FAIL, T, F },
    { "failed: defer", STATUS_FAILED, F, F, T, F, NULL, VERDICT_DEFER, VERDICT_UNKNOWN,
      VERDICT_UNKNOWN, T, F },
    { "unknown: defer", STATUS_UNKNOWN, F, F, T, F, NULL, VERDICT_DEFER, VERDICT_UNKNOWN,
      VERDICT_UNKNOWN, T, F },
    /* The DANE fact (set by the DANE facts when they come) authenticates the path. */
    { "absent, DANE-authenticated: tag", STATUS_ABSENT, T, T, T, T, NULL, VERDICT_TAG,
      VERDICT_NOT_REQUIRED, VERDICT_PASS, F, F },
    { "enforce, MX mismatch, DANE: the policy's own reject stays", STATUS_ENFORCE, T, F, T,
      T, NULL, VERDICT_REJECT, VERDICT_FAIL, VERDICT_PASS, F, T },
    /* Rules: REQUIRETLS is the sender's; a more severe rule stays the rule's. */
    { "require=none, absent: reject", STATUS_ABSENT, F, F, T, F, "require=none",
      VERDICT_REJECT, VERDICT_FAIL, VERDICT_FAIL, T, F },
    { "fail=tag, MX mismatch: reject", STATUS_ENFORCE, T, F, T, F,
      "require=mta-sts fail=tag", VERDICT_REJECT, VERDICT_FAIL, VERDICT_FAIL, T, T },
    { "unknown=reject, unknown: the rule's reject", STATUS_UNKNOWN, F, F, T, F,
      "require=mta-sts unknown=reject", VERDICT_REJECT, VERDICT_UNKNOWN, VERDICT_UNKNOWN, F,
      F },
};
#undef T
#undef F

static void
run_rtls_case(void **state)
{
    const struct rtls_case *c = *state;
    const char *const texts[] = { c->rule, NULL };
    const char *hosts[1] = { c->mx_ok ? MX_OK : MX_BAD };
    struct status_result st;
    struct verdict_facts f = {
        .sender = "",
        .rcpt_domain = DOMAIN,
        .status = &st,
        .mx_known = c->mx_known,
        .n_mx = c->mx_known ? 1 : 0,
        .mx = hosts,
        .route_enforces = c->route,
        .route = ROUTE,
        .requiretls = true,
        .dane_authenticated = c->dane,
    };
    struct verdict v;

    make_status(&st, c->status, POLICY_MX);
    verdict_decide(c->rule != NULL ? make_rules(texts) : &scratch_rules, &f, &v);
    assert_action(&v, c->action, c->outcome, c->permanent);
    if (v.requiretls != c->requiretls || v.requiretls_refused != c->refused)
        fail_msg("requiretls %s, refused %d; want %s, %d (reason: %s)",
                 verdict_outcome_name(v.requiretls), v.requiretls_refused,
                 verdict_outcome_name(c->requiretls), c->refused, v.reason);
    if (c->refused) {
        assert_reason_names(v.reason, sizeof(v.reason), "REQUIRETLS: ");
        assert_reason_names(v.reason, sizeof(v.reason), DOMAIN);
    }
    /* Without REQUIRETLS: the same facts give the rule's verdict alone. */
    {
        struct verdict plain;

        f.requiretls = false;
        verdict_decide(&scratch_rules, &f, &plain);
        if (plain.requiretls_refused || strstr(plain.reason, "REQUIRETLS") != NULL)
            fail_msg("without REQUIRETLS: \"%s\"", plain.reason);
    }
    status_result_free(&st);
}

/* ----------------------------------------------------- rule matching */

#define RULES_MAX 4

struct match_case {
    const char *label;
    const char *rules[RULES_MAX];	/* NULL-terminated */
    const char *sender, *auth, *rcpt;
    int want;			/* index of the matching rule, -1: none */
};

#define FROM_ADDR "from=Alice@Corp.Example require=none"
#define FROM_AT "from=@corp.example require=none"
#define FROM_DOM "from=corp.example require=none"
#define FROM_SUB "from=*.corp.example require=none"
#define ALL_OF "from=@corp.example auth=* rcpt=partner.example require=none"

static const struct match_case match_cases[] = {
    { "no rules", { NULL }, "a@corp.example", NULL, DOMAIN, -1 },
    { "from address, same case", { FROM_ADDR }, "alice@corp.example", NULL, DOMAIN, 0 },
    { "from address, other case", { FROM_ADDR }, "ALICE@corp.EXAMPLE", NULL, DOMAIN, 0 },
    { "from address, other user", { FROM_ADDR }, "bob@corp.example", NULL, DOMAIN, -1 },
    { "from address, longer domain", { FROM_ADDR }, "alice@corp.example.net", NULL,
      DOMAIN, -1 },
    { "from address, subdomain", { FROM_ADDR }, "alice@eu.corp.example", NULL, DOMAIN, -1 },
    { "from @domain", { FROM_AT }, "bob@corp.example", NULL, DOMAIN, 0 },
    { "from @domain, other case", { FROM_AT }, "bob@CORP.Example", NULL, DOMAIN, 0 },
    { "from @domain, subdomain", { FROM_AT }, "bob@eu.corp.example", NULL, DOMAIN, -1 },
    { "from @domain, null sender", { FROM_AT }, "", NULL, DOMAIN, -1 },
    { "from domain", { FROM_DOM }, "bob@corp.example", NULL, DOMAIN, 0 },
    { "from domain, suffix of another", { FROM_DOM }, "bob@notcorp.example", NULL, DOMAIN,
      -1 },
    { "from domain, subdomain", { FROM_DOM }, "bob@eu.corp.example", NULL, DOMAIN, -1 },
    { "from *.domain, subdomain", { FROM_SUB }, "bob@eu.corp.example", NULL, DOMAIN, 0 },
    { "from *.domain, deeper subdomain", { FROM_SUB }, "bob@a.eu.corp.example", NULL,
      DOMAIN, 0 },
    { "from *.domain, the domain itself", { FROM_SUB }, "bob@corp.example", NULL, DOMAIN,
      -1 },
    { "from *.domain, suffix of another", { FROM_SUB }, "bob@xcorp.example", NULL, DOMAIN,
      -1 },
    { "from *, any sender", { "from=* require=none" }, "x@y.example", NULL, DOMAIN, 0 },
    { "from *, null sender", { "from=* require=none" }, "", NULL, DOMAIN, 0 },
    { "auth user", { "auth=alice require=none" }, "", "alice", DOMAIN, 0 },
    { "auth user, other user", { "auth=alice require=none" }, "", "bob", DOMAIN, -1 },
    { "auth user, unauthenticated", { "auth=alice require=none" }, "", NULL, DOMAIN, -1 },
    { "auth *, any user", { "auth=* require=none" }, "", "bob", DOMAIN, 0 },
    { "auth *, unauthenticated", { "auth=* require=none" }, "", NULL, DOMAIN, -1 },
    { "auth *, empty user", { "auth=* require=none" }, "", "", DOMAIN, -1 },
    { "auth -, unauthenticated", { "auth=- require=none" }, "", NULL, DOMAIN, 0 },
    { "auth -, empty user", { "auth=- require=none" }, "", "", DOMAIN, 0 },
    { "auth -, authenticated", { "auth=- require=none" }, "", "bob", DOMAIN, -1 },
    { "rcpt domain", { "rcpt=Partner.Example require=none" }, "", NULL, DOMAIN, 0 },
    { "rcpt domain, subdomain", { "rcpt=partner.example require=none" }, "", NULL,
      "mx." DOMAIN, -1 },
    { "rcpt *.domain, subdomain", { "rcpt=*.partner.example require=none" }, "", NULL,
      "eu." DOMAIN, 0 },
    { "rcpt *.domain, the domain itself", { "rcpt=*.partner.example require=none" }, "",
      NULL, DOMAIN, -1 },
    { "rcpt *", { "rcpt=* require=none" }, "", NULL, "any.example", 0 },
    { "first match wins", { "rcpt=" DOMAIN " require=none", "rcpt=* require=mta-sts" },
      "", NULL, DOMAIN, 0 },
    { "later rule when the first does not match",
      { "rcpt=" DOMAIN " require=none", "rcpt=* require=mta-sts" }, "", NULL,
      "other.example", 1 },
    { "first match wins over a more specific one",
      { "rcpt=* require=mta-sts", "rcpt=" DOMAIN " require=none" }, "", NULL, DOMAIN, 0 },
    { "each field tried in turn",
      { FROM_AT, "auth=alice require=none", "rcpt=" DOMAIN " require=none" },
      "x@other.example", "alice", DOMAIN, 1 },
    { "all fields match", { ALL_OF }, "bob@corp.example", "bob", DOMAIN, 0 },
    { "all fields but from", { ALL_OF }, "bob@other.example", "bob", DOMAIN, -1 },
    { "all fields but auth", { ALL_OF }, "bob@corp.example", NULL, DOMAIN, -1 },
    { "all fields but rcpt", { ALL_OF }, "bob@corp.example", "bob", "other.example", -1 },
};

static void
run_match_case(void **state)
{
    const struct match_case *c = *state;
    const struct rules *rules = make_rules(c->rules);
    const struct rules_rule *got = rules_match(rules, c->sender, c->auth, c->rcpt);
    const struct rules_rule *want = c->want < 0 ? NULL : &rules->r[c->want];

    if (got != want)
        fail_msg("matched rule %td, want %d", got ? got - rules->r : -1, c->want);
}

/* ------------------------------------------------------- rule parsing */

struct parse_case {
    const char *label;
    const char *text;
    bool ok;
    const char *from, *auth, *rcpt;
    enum rules_req req;
    enum verdict_action on_fail, on_unknown;
    const char *reason;		/* for a refused rule: a fragment of the reason */
};

#define PARSE_OK(label_, text_, from_, auth_, rcpt_, req_, fail_, unknown_)                 \
    { (label_), (text_), true, (from_), (auth_), (rcpt_), RULES_REQ_##req_,                 \
      VERDICT_##fail_, VERDICT_##unknown_, NULL }
#define PARSE_BAD(label_, text_, reason_)                                                   \
    { (label_), (text_), false, NULL, NULL, NULL, 0, 0, 0, (reason_) }

static const struct parse_case parse_cases[] = {
    PARSE_OK("require alone", "require=mta-sts", NULL, NULL, NULL, MTA_STS, DEFER, DEFER),
    PARSE_OK("require=none", "require=none", NULL, NULL, NULL, NONE, DEFER, DEFER),
    PARSE_OK("require=tls parses (refused at load)", "require=tls", NULL, NULL, NULL, TLS,
             DEFER, DEFER),
    PARSE_OK("require=verified-tls parses (refused at load)", "require=verified-tls", NULL,
             NULL, NULL, VERIFIED_TLS, DEFER, DEFER),
    PARSE_OK("every key", "from=@Corp.Example auth=Alice rcpt=*.Partner.example "
             "require=mta-sts fail=tag unknown=reject",
             "@corp.example", "Alice", "*.partner.example", MTA_STS, TAG, REJECT),
    PARSE_OK("keys in any order", "unknown=tag require=none rcpt=* fail=reject", NULL, NULL,
             "*", NONE, REJECT, TAG),
    PARSE_OK("tabs and runs of blanks", "  from=bob@x.example\t\trequire=mta-sts   ",
             "bob@x.example", NULL, NULL, MTA_STS, DEFER, DEFER),
    PARSE_OK("fail=defer unknown=defer", "require=mta-sts fail=defer unknown=defer", NULL,
             NULL, NULL, MTA_STS, DEFER, DEFER),
    PARSE_OK("auth=- and auth=*", "auth=- require=none", NULL, "-", NULL, NONE, DEFER,
             DEFER),
    PARSE_BAD("empty", "", "require"),
    PARSE_BAD("blanks only", " \t ", "require"),
    PARSE_BAD("missing require", "from=@corp.example fail=reject", "require"),
    PARSE_BAD("unknown key", "require=mta-sts colour=red", "colour"),
    PARSE_BAD("key in upper case", "Require=none", "Require"),
    PARSE_BAD("bad require value", "require=strict", "strict"),
    PARSE_BAD("require value in upper case", "require=NONE", "NONE"),
    PARSE_BAD("bad fail action", "require=mta-sts fail=bounce", "bounce"),
    PARSE_BAD("bad unknown action", "require=mta-sts unknown=accept", "accept"),
    PARSE_BAD("key without '='", "require=mta-sts from", "from"),
    PARSE_BAD("require without '='", "require", "require"),
    PARSE_BAD("empty value", "require=", "require"),
    PARSE_BAD("empty key", "=none require=none", "=none"),
    PARSE_BAD("repeated from=", "from=a.example from=b.example require=none", "from"),
    PARSE_BAD("repeated auth=", "auth=a auth=b require=none", "auth"),
    PARSE_BAD("repeated rcpt=", "rcpt=a.example rcpt=b.example require=none", "rcpt"),
};

static void
run_parse_case(void **state)
{
    const struct parse_case *c = *state;
    struct mts_err err;
    int r;

    mts_err_clear(&err);
    r = rules_add(&scratch_rules, c->text, &err);
    if (!c->ok) {
        if (r != -1)
            fail_msg("accepted \"%s\" (returned %d)", c->text, r);
        unit_assert_reason(&err, c->reason);
        return;
    }
    if (r != 0)
        fail_msg("refused \"%s\": %s", c->text, err.msg);
    assert_opt_string("from", scratch_rules.r[0].from, c->from);
    assert_opt_string("auth", scratch_rules.r[0].auth, c->auth);
    assert_opt_string("rcpt", scratch_rules.r[0].rcpt, c->rcpt);
    assert_int_equal(scratch_rules.r[0].req, c->req);
    assert_int_equal(scratch_rules.r[0].on_fail, c->on_fail);
    assert_int_equal(scratch_rules.r[0].on_unknown, c->on_unknown);
}

/* ------------------------------------------------------- rule loading */

/*
 * A config holding conf_lines, and a rules_file holding file_text unless
 * it is NULL; *rules_path names that file.
 */
static struct config *
config_with_rules(const char *conf_lines, const char *file_text, const char **rules_path)
{
    size_t size = strlen(conf_lines) + 64;
    char *text = unit_alloc(size);

    *rules_path = file_text != NULL ? temp_file(file_text) : "";
    snprintf(text, size, "%srules_file = %s\n", conf_lines, *rules_path);
    return load_config(text);
}

/* "PATH:LINE:" as a reason names a place. */
static const char *
place(const char *path, int line)
{
    size_t size = strlen(path) + 16;
    char *s = unit_alloc(size);

    snprintf(s, size, "%s:%d:", path, line);
    return s;
}

static void
expect_load_error(const struct config *cfg, const char *frag1, const char *frag2)
{
    struct mts_err err;

    mts_err_clear(&err);
    if (rules_load(cfg, &scratch_rules, &err) != -1)
        fail_msg("loaded %zu rules, want an error", scratch_rules.n);
    unit_assert_reason(&err, frag1);
    unit_assert_reason(&err, frag2);
}

static void
assert_rule(const struct rules_rule *r, const char *rcpt, enum rules_req req,
            const char *path, int line)
{
    char where[sizeof(r->where)];

    assert_opt_string("rcpt", r->rcpt, rcpt);
    assert_int_equal(r->req, req);
    snprintf(where, sizeof(where), "%s:%d", path, line);
    assert_string_equal(r->where, where);
}

static void
test_load_config_then_file(void **state)
{
    const char *rules_path;
    struct config *cfg = config_with_rules(
        "rule = rcpt=a.example require=none\n"
        "rule = rcpt=b.example require=mta-sts fail=reject\n",
        "# partners\n"
        "\n"
        "   rcpt=c.example require=none   # trailing comment\n"
        "\trcpt=d.example require=mta-sts unknown=tag\r\n"
        "   \t\n",
        &rules_path);
    struct mts_err err;

    (void)state;
    if (rules_load(cfg, &scratch_rules, &err) != 0)
        fail_msg("rules_load: %s", err.msg);
    assert_int_equal(scratch_rules.n, 4);
    assert_rule(&scratch_rules.r[0], "a.example", RULES_REQ_NONE, cfg->path, 1);
    assert_rule(&scratch_rules.r[1], "b.example", RULES_REQ_MTA_STS, cfg->path, 2);
    assert_rule(&scratch_rules.r[2], "c.example", RULES_REQ_NONE, rules_path, 3);
    assert_rule(&scratch_rules.r[3], "d.example", RULES_REQ_MTA_STS, rules_path, 4);
    assert_int_equal(scratch_rules.r[1].on_fail, VERDICT_REJECT);
    assert_int_equal(scratch_rules.r[3].on_unknown, VERDICT_TAG);
}

static void
test_load_no_rules(void **state)
{
    struct config *cfg = load_config("");
    struct mts_err err;

    (void)state;
    if (rules_load(cfg, &scratch_rules, &err) != 0)
        fail_msg("rules_load: %s", err.msg);
    assert_int_equal(scratch_rules.n, 0);
}

static void
test_load_refuses_tls_in_config(void **state)
{
    const char *rules_path;
    struct config *cfg = config_with_rules("rule = rcpt=a.example require=none\n"
                                           "rule = rcpt=* require=tls\n",
                                           NULL, &rules_path);

    (void)state;
    expect_load_error(cfg, "mx_probes = no", place(cfg->path, 2));
}

static void
test_load_refuses_verified_tls_in_file(void **state)
{
    const char *rules_path;
    struct config *cfg = config_with_rules("", "rcpt=a.example require=none\n"
                                               "# comment\n"
                                               "rcpt=* require=verified-tls fail=reject\n",
                                           &rules_path);

    (void)state;
    expect_load_error(cfg, "mx_probes = no", place(rules_path, 3));
}

static void
test_load_bad_rule_in_config(void **state)
{
    const char *rules_path;
    struct config *cfg = config_with_rules("rule = require=sometimes\n", NULL, &rules_path);

    (void)state;
    expect_load_error(cfg, "sometimes", place(cfg->path, 1));
}

static void
test_load_bad_rule_in_file(void **state)
{
    const char *rules_path;
    struct config *cfg = config_with_rules("rule = rcpt=a.example require=none\n",
                                           "rcpt=b.example require=none\n"
                                           "rcpt=c.example require=mta-sts colour=red\n",
                                           &rules_path);

    (void)state;
    expect_load_error(cfg, "colour", place(rules_path, 2));
}

static void
test_load_missing_rules_file(void **state)
{
    struct config *cfg = load_config("rules_file = /nonexistent/mts-rules\n");

    (void)state;
    expect_load_error(cfg, "/nonexistent/mts-rules", NULL);
}

/*
 * A rules file line longer than any buffer: "#" then blanks, then text.
 * It is one line (line 2) and all of it is a comment.
 */
static const char *
long_comment_file(const char *tail)
{
    size_t size = 3000;
    char *text = unit_alloc(size);
    int n = snprintf(text, size, "rcpt=* require=mta-sts\n#");

    memset(text + n, ' ', 1500);
    snprintf(text + n + 1500, size - (size_t)n - 1500, "%s\n", tail);
    return text;
}

/* Loads the file; it must give the one real rule, or an error at line 2. */
static void
expect_long_comment_ignored(const char *tail)
{
    const char *rules_path;
    struct config *cfg = config_with_rules("", long_comment_file(tail), &rules_path);
    struct mts_err err;

    mts_err_clear(&err);
    if (rules_load(cfg, &scratch_rules, &err) != 0) {
        unit_assert_reason(&err, place(rules_path, 2));
        return;
    }
    if (scratch_rules.n != 1)
        fail_msg("the comment at line 2 gave %zu rule(s); the last: rcpt=%s require=%s at %s",
                 scratch_rules.n - 1, scratch_rules.r[scratch_rules.n - 1].rcpt,
                 rules_req_name(scratch_rules.r[scratch_rules.n - 1].req),
                 scratch_rules.r[scratch_rules.n - 1].where);
}

static void
test_load_long_comment_line(void **state)
{
    (void)state;
    expect_long_comment_ignored("a long note");
}

static void
test_load_long_commented_out_rule(void **state)
{
    (void)state;
    expect_long_comment_ignored("rcpt=" DOMAIN " require=none");
}

static void
test_load_accepts_tls_with_probes(void **state)
{
    const char *rules_path;
    struct config *cfg = config_with_rules("mx_probes = yes\nrule = rcpt=* require=tls\n",
                                           "rcpt=a.example require=verified-tls\n",
                                           &rules_path);
    struct mts_err err;

    (void)state;
    if (rules_load(cfg, &scratch_rules, &err) != 0)
        fail_msg("rules_load: %s", err.msg);
    assert_int_equal(scratch_rules.n, 2);
    assert_int_equal(scratch_rules.r[0].req, RULES_REQ_TLS);
    assert_int_equal(scratch_rules.r[1].req, RULES_REQ_VERIFIED_TLS);
}

static const struct CMUnitTest load_tests[] = {
    cmocka_unit_test(test_load_accepts_tls_with_probes),
    cmocka_unit_test(test_load_config_then_file),
    cmocka_unit_test(test_load_no_rules),
    cmocka_unit_test(test_load_refuses_tls_in_config),
    cmocka_unit_test(test_load_refuses_verified_tls_in_file),
    cmocka_unit_test(test_load_bad_rule_in_config),
    cmocka_unit_test(test_load_bad_rule_in_file),
    cmocka_unit_test(test_load_missing_rules_file),
    cmocka_unit_test(test_load_long_comment_line),
    cmocka_unit_test(test_load_long_commented_out_rule),
};

/* -------------------------------------------------------------- route */

struct route_case {
    const char *label;
    const char *default_route;
    const char *mailer, *host;	/* {rcpt_mailer}, {rcpt_host}; NULL: not sent */
    bool want;
    const char *desc;		/* a fragment of the description */
};

static const struct route_case route_cases[] = {
    { "enforcing transport", "smtp", "smtp-sts", "mx1.partner.example", true, "smtp-sts" },
    { "enforcing transport, no host", "smtp", "smtp-sts", NULL, true, "smtp-sts" },
    { "transport name is not a prefix", "smtp", "smtp-sts2", "mx1.partner.example", false,
      "smtp-sts2" },
    { "relay in brackets with a port", "smtp", "relay", "[relay.example]:587", true,
      "[relay.example]:587" },
    { "relay as a bare name", "smtp", "relay", "relay.example", true, "relay.example" },
    { "relay with a port", "smtp", "relay", "relay.example:25", true, "relay.example:25" },
    { "relay in other case", "smtp", "smtp", "[RELAY.example]", true, "[RELAY.example]" },
    { "relay fully qualified", "smtp", "esmtp", "relay.example.", true, "relay.example." },
    { "relay fully qualified in brackets with a port", "smtp", "relay", "[relay.example.]:587",
      true, "[relay.example.]:587" },
    { "relay fully qualified, configured so", "smtp", "smtp", "relay2.example", true,
      "relay2.example" },
    { "relay, host only", "smtp", NULL, "[relay.example]", true, "[relay.example]" },
    { "other host", "smtp", "smtp", "mx1.partner.example", false, "mx1.partner.example" },
    { "subdomain of the relay", "smtp", "smtp", "[a.relay.example]", false,
      "[a.relay.example]" },
    { "relay name as a prefix", "smtp", "smtp", "[relay.example.net]", false,
      "[relay.example.net]" },
    { "plain transport, no host", "smtp", "smtp", NULL, false, "smtp" },
    { "no macros: default transport enforces", "smtp-sts", NULL, NULL, true, "smtp-sts" },
    { "empty macros: default transport enforces", "smtp-sts", "", "", true, "smtp-sts" },
    { "no macros: default relay does not enforce", "relay:[other.example]", NULL, NULL,
      false, "[other.example]" },
    { "no macros: default relay enforces", "smtp:[relay.example]:587", NULL, NULL, true,
      "[relay.example]:587" },
    { "no macros: default plain transport", "smtp", NULL, NULL, false, "smtp" },
    { "macros win over the default route", "smtp-sts", "smtp", "mx1.partner.example", false,
      "mx1.partner.example" },
};

static void
run_route_case(void **state)
{
    const struct route_case *c = *state;
    size_t size = 256;
    char *text = unit_alloc(size), desc[300];
    struct config *cfg;
    bool got;

    snprintf(text, size, "enforcing_transports = smtp-sts\n"
                         "enforcing_relays = relay.example, relay2.example.\n"
                         "default_route = %s\n", c->default_route);
    cfg = load_config(text);
    memset(desc, 'x', sizeof(desc));
    got = verdict_route_enforces(cfg, NULL, c->mailer, c->host, NULL, desc, sizeof(desc));
    if (got != c->want)
        fail_msg("route \"%s\" %s, want %s", desc, got ? "enforces" : "does not enforce",
                 c->want ? "enforces" : "does not enforce");
    if (memchr(desc, '\0', sizeof(desc)) == NULL)
        fail_msg("desc is not NUL-terminated");
    if (strstr(desc, c->desc) == NULL)
        fail_msg("desc \"%s\" does not show \"%s\"", desc, c->desc);
}

/* -------------------------------------------------------------- names */

enum name_kind { ACTION, OUTCOME, REQ };

struct name_case {
    const char *label;
    enum name_kind kind;
    int value;
    const char *want;
};

static const struct name_case name_cases[] = {
    { "action tag", ACTION, VERDICT_TAG, "tag" },
    { "action defer", ACTION, VERDICT_DEFER, "defer" },
    { "action reject", ACTION, VERDICT_REJECT, "reject" },
    { "outcome pass", OUTCOME, VERDICT_PASS, "pass" },
    { "outcome not-required", OUTCOME, VERDICT_NOT_REQUIRED, "not-required" },
    { "outcome fail", OUTCOME, VERDICT_FAIL, "fail" },
    { "outcome unknown", OUTCOME, VERDICT_UNKNOWN, "unknown" },
    { "req none", REQ, RULES_REQ_NONE, "none" },
    { "req tls", REQ, RULES_REQ_TLS, "tls" },
    { "req verified-tls", REQ, RULES_REQ_VERIFIED_TLS, "verified-tls" },
    { "req mta-sts", REQ, RULES_REQ_MTA_STS, "mta-sts" },
};

static void
run_name_case(void **state)
{
    const struct name_case *c = *state;
    const char *got = c->kind == ACTION ? verdict_action_name((enum verdict_action)c->value) :
                      c->kind == OUTCOME ? verdict_outcome_name((enum verdict_outcome)c->value) :
                      rules_req_name((enum rules_req)c->value);

    assert_non_null(got);
    assert_string_equal(got, c->want);
}

/* ------------------------------------------------------------- probes */

/* What a probe of one host showed. */
enum probe_fact { P_GOOD, P_UNVERIFIED, P_NOTLS, P_NOT_YET, P_UNREACHABLE, P_PRIVATE,
                  /* DANE (probes.c): verified (a self-signed DANE-EE host: the
                   * grade is DANE's), no record matched a WebPKI-valid chain,
                   * the TLSA lookup failed, only PKIX-usage records */
                  P_DANE_OK, P_DANE_BAD, P_TLSA_FAIL, P_DANE_UNUSABLE,
                  /* DANE verified and the chain WebPKI-valid for the name too */
                  P_DANE_OK_PKIX,
                  /* not probed yet, its TLSA records say DANE applies
                   * (facts.dane_expected: the first message) */
                  P_NOT_YET_DANE };

struct probe_case {
    const char *label;
    const char *rule;			/* NULL: the built-in default */
    enum status_kind status;
    const char *mx[2];			/* NULL-terminated */
    enum probe_fact probe[2];
    bool route_enforces;
    enum verdict_action action;
    enum verdict_outcome outcome;
    bool permanent;
    enum verdict_tls tls;
    const char *why;			/* a fragment of the reason, or NULL */
    const char *detail;			/* a fragment of the detail (the log's), or NULL */
};

#define MX_OTHER "mx2.pool.sts-hosting.test"
static const struct probe_case probe_cases[] = {
    { "enforce, the matching MX verified", NULL, STATUS_ENFORCE, { MX_OK }, { P_GOOD }, true,
      VERDICT_TAG, VERDICT_PASS, false, VERDICT_TLS_VERIFIED,
      DOMAIN ": MTA-STS enforce, MX, MX TLS and route comply", NULL },
    { "enforce, verified, route does not enforce", NULL, STATUS_ENFORCE, { MX_OK }, { P_GOOD },
      false, VERDICT_DEFER, VERDICT_FAIL, false, VERDICT_TLS_VERIFIED, ROUTE, NULL },
    { "enforce, the only MX unverified: defer naming it", NULL, STATUS_ENFORCE, { MX_OK },
      { P_UNVERIFIED }, true, VERDICT_DEFER, VERDICT_FAIL, false, VERDICT_TLS_UNVERIFIED,
      MX_OK ": certificate expired (certificate-expired)",
      MX_OK " [192.0.2.9]: unverified: certificate has expired" },
    { "enforce, no STARTTLS", NULL, STATUS_ENFORCE, { MX_OK }, { P_NOTLS }, true,
      VERDICT_DEFER, VERDICT_FAIL, false, VERDICT_TLS_NONE,
      MX_OK ": no STARTTLS (starttls-not-supported)", "does not offer STARTTLS" },
    { "enforce, fail=reject: a permanent reject", "rcpt=* require=mta-sts fail=reject",
      STATUS_ENFORCE, { MX_OK }, { P_NOTLS }, true, VERDICT_REJECT, VERDICT_FAIL, true,
      VERDICT_TLS_NONE, MX_OK, NULL },
    { "enforce, one good and one bad MX", NULL, STATUS_ENFORCE, { MX_OK, MX_OTHER },
      { P_NOTLS, P_GOOD }, true, VERDICT_TAG, VERDICT_PASS, false, VERDICT_TLS_VERIFIED, NULL, NULL },
    { "enforce, the good MX does not match the policy", NULL, STATUS_ENFORCE,
      { MX_BAD, MX_OK }, { P_GOOD, P_UNVERIFIED }, true, VERDICT_DEFER, VERDICT_FAIL, false,
      VERDICT_TLS_UNVERIFIED, MX_OK, NULL },
    { "enforce, not probed yet: unknown", NULL, STATUS_ENFORCE, { MX_OK }, { P_NOT_YET },
      true, VERDICT_DEFER, VERDICT_UNKNOWN, false, VERDICT_TLS_UNKNOWN,
      MX_OK ": not probed yet (not-probed-yet)", NULL },
    { "enforce, not probed yet, unknown=tag", "rcpt=* require=mta-sts unknown=tag",
      STATUS_ENFORCE, { MX_OK }, { P_NOT_YET }, true, VERDICT_TAG, VERDICT_UNKNOWN, false,
      VERDICT_TLS_UNKNOWN, NULL, NULL },
    { "enforce, one bad, one not yet: unknown", NULL, STATUS_ENFORCE, { MX_OK, MX_OTHER },
      { P_NOTLS, P_NOT_YET }, true, VERDICT_DEFER, VERDICT_UNKNOWN, false, VERDICT_TLS_UNKNOWN,
      MX_OTHER, NULL },
    { "enforce, unreachable: unknown", NULL, STATUS_ENFORCE, { MX_OK }, { P_UNREACHABLE },
      true, VERDICT_DEFER, VERDICT_UNKNOWN, false, VERDICT_TLS_UNKNOWN,
      MX_OK ": unreachable (unreachable)", "connection refused" },
    { "enforce, a private address: unknown, not probed", NULL, STATUS_ENFORCE, { MX_OK },
      { P_PRIVATE }, true, VERDICT_DEFER, VERDICT_UNKNOWN, false, VERDICT_TLS_UNKNOWN,
      MX_OK ": not probed: private address (not-probed-private-address)",
      "10.0.0.25 is private" },
    { "verified-tls, a private address: unknown", "rcpt=* require=verified-tls",
      STATUS_ABSENT, { MX_OK }, { P_PRIVATE }, true, VERDICT_DEFER, VERDICT_UNKNOWN, false,
      VERDICT_TLS_UNKNOWN, "not probed: private address", NULL },
    { "testing domain: nothing demanded, MX not looked at", NULL, STATUS_TESTING, { MX_OK },
      { P_NOTLS }, true, VERDICT_TAG, VERDICT_NOT_REQUIRED, false, VERDICT_TLS_UNSEEN,
      DOMAIN ": MTA-STS testing, nothing required", NULL },
    { "tls: unverified is enough", "rcpt=* require=tls", STATUS_ABSENT, { MX_OK },
      { P_UNVERIFIED }, true, VERDICT_TAG, VERDICT_PASS, false, VERDICT_TLS_UNVERIFIED,
      DOMAIN ": tls: every MX host and the route comply", NULL },
    { "tls: one MX without STARTTLS fails", "rcpt=* require=tls", STATUS_ABSENT,
      { MX_OK, MX_OTHER }, { P_GOOD, P_NOTLS }, true, VERDICT_DEFER, VERDICT_FAIL, false,
      VERDICT_TLS_NONE, MX_OTHER, NULL },
    { "tls: route does not enforce", "rcpt=* require=tls", STATUS_ABSENT, { MX_OK },
      { P_GOOD }, false, VERDICT_DEFER, VERDICT_FAIL, false, VERDICT_TLS_VERIFIED, ROUTE, NULL },
    /* Not permanent: no policy re-check can change a probe. */
    { "verified-tls: expired fails, fail=reject", "rcpt=* require=verified-tls fail=reject",
      STATUS_ABSENT, { MX_OK }, { P_UNVERIFIED }, true, VERDICT_REJECT, VERDICT_FAIL, false,
      VERDICT_TLS_UNVERIFIED, "certificate-expired", NULL },
    { "verified-tls: all good", "rcpt=* require=verified-tls", STATUS_NONE,
      { MX_OK, MX_OTHER }, { P_GOOD, P_GOOD }, true, VERDICT_TAG, VERDICT_PASS, false,
      VERDICT_TLS_VERIFIED, NULL, NULL },
    { "verified-tls: not yet probed, unknown=reject", "rcpt=* require=verified-tls unknown=reject",
      STATUS_ABSENT, { MX_OK }, { P_NOT_YET }, true, VERDICT_REJECT, VERDICT_UNKNOWN, false,
      VERDICT_TLS_UNKNOWN, NULL, NULL },
    { "verified-tls: judged even when MTA-STS is unknown", "rcpt=* require=verified-tls",
      STATUS_UNKNOWN, { MX_OK }, { P_GOOD }, true, VERDICT_TAG, VERDICT_PASS, false,
      VERDICT_TLS_VERIFIED, NULL, NULL },
    { "verified-tls on enforce: only matching hosts count", "rcpt=* require=verified-tls",
      STATUS_ENFORCE, { MX_OK, MX_BAD }, { P_GOOD, P_NOTLS }, true, VERDICT_TAG, VERDICT_PASS,
      false, VERDICT_TLS_VERIFIED, NULL, NULL },
    { "tls: null MX fails", "rcpt=* require=tls", STATUS_ABSENT, { "." }, { P_NOT_YET },
      true, VERDICT_DEFER, VERDICT_FAIL, false, VERDICT_TLS_NONE, "null MX", NULL },
    /* DANE (RFC 7672) */
    { "dane: no MTA-STS, DANE verified: pass", NULL, STATUS_ABSENT, { MX_OK }, { P_DANE_OK },
      true, VERDICT_TAG, VERDICT_PASS, false, VERDICT_TLS_VERIFIED,
      DOMAIN ": DANE (RFC 7672): an MX host passes authenticated TLS", NULL },
    { "dane: no MTA-STS, TLSA does not match: defer naming host and DANE", NULL,
      STATUS_ABSENT, { MX_OK }, { P_DANE_BAD }, true, VERDICT_DEFER, VERDICT_FAIL, false,
      VERDICT_TLS_UNVERIFIED, MX_OK ": DANE failed (tlsa-invalid)",
      MX_OK " [192.0.2.9]: DANE failed: tlsa-invalid" },
    { "dane: TLSA lookup failed: host unusable, defer", NULL, STATUS_NONE, { MX_OK },
      { P_TLSA_FAIL }, true, VERDICT_DEFER, VERDICT_FAIL, false, VERDICT_TLS_UNVERIFIED,
      "DANE lookup-failed (dnssec-invalid)",
      "DANE lookup-failed: dnssec-invalid" },
    { "dane: enforce, PKIX would pass, TLSA mismatch: not rescued", NULL, STATUS_ENFORCE,
      { MX_OK }, { P_DANE_BAD }, true, VERDICT_DEFER, VERDICT_FAIL, false,
      VERDICT_TLS_UNVERIFIED, "DANE failed", NULL },
    { "dane: enforce with matching TLSA: pass", NULL, STATUS_ENFORCE, { MX_OK },
      { P_DANE_OK }, true, VERDICT_TAG, VERDICT_PASS, false, VERDICT_TLS_VERIFIED, NULL, NULL },
    { "dane: enforce, fail=reject, TLSA lookup failed: held as not permanent",
      "rcpt=* require=mta-sts fail=reject", STATUS_ENFORCE, { MX_OK }, { P_TLSA_FAIL }, true,
      VERDICT_REJECT, VERDICT_FAIL, false, VERDICT_TLS_UNVERIFIED, "DANE", NULL },
    { "dane: verified-tls met by DANE whatever the issuer", "rcpt=* require=verified-tls",
      STATUS_ABSENT, { MX_OK }, { P_DANE_OK }, true, VERDICT_TAG, VERDICT_PASS, false,
      VERDICT_TLS_VERIFIED, NULL, NULL },
    { "dane: verified-tls, TLSA mismatch fails", "rcpt=* require=verified-tls",
      STATUS_ABSENT, { MX_OK }, { P_DANE_BAD }, true, VERDICT_DEFER, VERDICT_FAIL, false,
      VERDICT_TLS_UNVERIFIED, "tlsa-invalid", NULL },
    { "dane: mixed, DANE host fails, WebPKI host passes: pass", NULL, STATUS_ABSENT,
      { MX_OK, MX_OTHER }, { P_DANE_BAD, P_GOOD }, true, VERDICT_TAG, VERDICT_PASS, false,
      VERDICT_TLS_VERIFIED, NULL, NULL },
    { "dane: mixed, DANE host fails, other unverified: defer naming the DANE host", NULL,
      STATUS_ABSENT, { MX_OTHER, MX_OK }, { P_UNVERIFIED, P_DANE_BAD }, true, VERDICT_DEFER,
      VERDICT_FAIL, false, VERDICT_TLS_UNVERIFIED, MX_OK ": DANE failed",
      MX_OK " [192.0.2.9]: DANE failed" },
    { "dane: DANE host fails, other not probed yet: unknown", NULL, STATUS_ABSENT,
      { MX_OK, MX_OTHER }, { P_DANE_BAD, P_NOT_YET }, true, VERDICT_DEFER, VERDICT_UNKNOWN,
      false, VERDICT_TLS_UNKNOWN, "DANE", NULL },
    { "dane: only PKIX-usage records: no DANE, nothing required", NULL, STATUS_ABSENT,
      { MX_OK }, { P_DANE_UNUSABLE }, true, VERDICT_TAG, VERDICT_NOT_REQUIRED, false,
      VERDICT_TLS_UNSEEN, NULL, NULL },
    /* The first message: the TLSA records are known before the probe. */
    { "dane: not probed yet, TLSA says DANE: unknown (the RCPT waits)", NULL, STATUS_ABSENT,
      { MX_OK }, { P_NOT_YET_DANE }, true, VERDICT_DEFER, VERDICT_UNKNOWN, false,
      VERDICT_TLS_UNKNOWN, "DANE", NULL },
    { "dane: not probed yet, no TLSA: nothing required", NULL, STATUS_ABSENT, { MX_OK },
      { P_NOT_YET }, true, VERDICT_TAG, VERDICT_NOT_REQUIRED, false, VERDICT_TLS_UNSEEN, NULL,
      NULL },
    { "dane: mixed, TLSA says DANE on one, other passes WebPKI: pass", NULL, STATUS_NONE,
      { MX_OK, MX_OTHER }, { P_NOT_YET_DANE, P_GOOD }, true, VERDICT_TAG, VERDICT_PASS, false,
      VERDICT_TLS_VERIFIED, NULL, NULL },
    { "dane: require=none ignores DANE", "rcpt=* require=none", STATUS_ABSENT, { MX_OK },
      { P_DANE_BAD }, true, VERDICT_TAG, VERDICT_NOT_REQUIRED, false, VERDICT_TLS_UNSEEN,
      DOMAIN ": no transport security required (", NULL },
};

static void
fill_probe(struct probes_host *h, enum probe_fact p)
{
    memset(h, 0, sizeof(*h));
    h->state = p == P_NOT_YET || p == P_NOT_YET_DANE ? PROBES_NOT_YET : PROBES_KNOWN;
    snprintf(h->address, sizeof(h->address), "192.0.2.9");
    switch (p) {
    case P_GOOD:
        h->grade = TLSPROBE_GRADE_GOOD;
        h->rfc8461 = h->pkix = h->tls = true;
        break;
    case P_UNVERIFIED:
        h->grade = TLSPROBE_GRADE_UNVERIFIED;
        h->tls = true;
        h->status = TLSPROBE_EXPIRED;
        snprintf(h->reason, sizeof(h->reason), "certificate has expired");
        break;
    case P_NOTLS:
        h->grade = TLSPROBE_GRADE_FAIL;
        h->status = TLSPROBE_NO_STARTTLS;
        snprintf(h->reason, sizeof(h->reason), "the EHLO reply does not offer STARTTLS");
        break;
    case P_NOT_YET:
    case P_NOT_YET_DANE:
        h->grade = TLSPROBE_GRADE_UNKNOWN;
        snprintf(h->reason, sizeof(h->reason), "the host has not been probed yet");
        break;
    case P_UNREACHABLE:
        h->grade = TLSPROBE_GRADE_UNKNOWN;
        h->status = TLSPROBE_REFUSED;
        snprintf(h->reason, sizeof(h->reason), "connection refused");
        break;
    case P_PRIVATE:
        h->grade = TLSPROBE_GRADE_UNKNOWN;
        h->status = TLSPROBE_UNREACHABLE;
        h->not_routable = true;
        snprintf(h->reason, sizeof(h->reason),
                 "not probed: 10.0.0.25 is private (10.0.0.0/8, RFC 1918)");
        snprintf(h->address, sizeof(h->address), "%s", "");
        break;
    case P_DANE_OK:
    case P_DANE_OK_PKIX:
        h->grade = TLSPROBE_GRADE_GOOD;
        h->rfc8461 = h->tls = true;
        h->pkix = p == P_DANE_OK_PKIX; /* P_DANE_OK: a self-signed DANE-EE host */
        h->dane = TLSA_DANE_VERIFIED;
        snprintf(h->dane_detail, sizeof(h->dane_detail), "3 1 1");
        break;
    case P_DANE_BAD:
        h->grade = TLSPROBE_GRADE_UNVERIFIED;
        h->tls = true;
        h->status = TLSPROBE_UNTRUSTED;
        h->dane = TLSA_DANE_FAILED;
        snprintf(h->reason, sizeof(h->reason), "DANE: tlsa-invalid: no TLSA record matches");
        snprintf(h->dane_detail, sizeof(h->dane_detail), "tlsa-invalid: no TLSA record matches");
        break;
    case P_TLSA_FAIL:
        h->grade = TLSPROBE_GRADE_GOOD;
        h->rfc8461 = h->pkix = h->tls = true;
        h->dane = TLSA_DANE_LOOKUP_FAILED;
        snprintf(h->dane_detail, sizeof(h->dane_detail), "dnssec-invalid: SERVFAIL");
        break;
    case P_DANE_UNUSABLE:
        h->grade = TLSPROBE_GRADE_GOOD;
        h->rfc8461 = h->pkix = h->tls = true;
        h->dane = TLSA_DANE_UNUSABLE;
        break;
    }
}

static void
run_probe_case(void **state)
{
    const struct probe_case *c = *state;
    const char *const texts[] = { c->rule, NULL };
    const struct rules *rules = make_rules(c->rule ? texts : texts + 1);
    struct probes_host ph[2];
    struct status_result st;
    size_t n = c->mx[1] != NULL ? 2 : 1;
    bool dane_expected[2] = { c->probe[0] == P_NOT_YET_DANE, c->probe[1] == P_NOT_YET_DANE };
    struct verdict_facts f = {
        .sender = "alice@corp.example",
        .rcpt_domain = DOMAIN,
        .status = &st,
        .mx_known = true,
        .n_mx = n,
        .mx = c->mx,
        .route_enforces = c->route_enforces,
        /* These rows' route enforces both or neither (dane_route_cases
         * tell them apart). */
        .route_enforces_dane = c->route_enforces,
        .route = ROUTE,
        .probes_on = true,
        .probe = ph,
        .dane_expected = dane_expected,
    };
    struct verdict v;

    for (size_t i = 0; i < n; i++)
        fill_probe(&ph[i], c->probe[i]);
    make_status(&st, c->status, POLICY_MX);
    memset(&v, 0xa5, sizeof(v));
    verdict_decide(rules, &f, &v);
    /* The hosts' matches worked out before, as decide.c does
     * (verdict_facts.mx_allowed): the same verdict, word for word. */
    {
        bool allowed[2];
        struct verdict again;

        for (size_t i = 0; i < n; i++)
            allowed[i] = status_result_mx_allows(&st, c->mx[i]);
        f.mx_allowed = allowed;
        verdict_decide(rules, &f, &again);
        f.mx_allowed = NULL;
        if (again.action != v.action || again.outcome != v.outcome || again.tls != v.tls ||
            strcmp(again.reason, v.reason) != 0)
            fail_msg("with mx_allowed: %s (%s); without: %s (%s)",
                     verdict_action_name(again.action), again.reason,
                     verdict_action_name(v.action), v.reason);
    }
    assert_action(&v, c->action, c->outcome, c->permanent);
    if (v.tls != c->tls)
        fail_msg("tls=%s, want tls=%s (%s)", verdict_tls_name(v.tls), verdict_tls_name(c->tls),
                 v.reason);
    assert_reason_names(v.reason, sizeof(v.reason), DOMAIN);
    if (c->why != NULL)
        assert_reason_names(v.reason, sizeof(v.reason), c->why);
    /* What a probe found out (the server's words, its address, how the
     * connection failed) is never in the reason a sender sees: only in
     * the detail, for the log. */
    for (size_t i = 0; i < n; i++) {
        if (ph[i].reason[0] != '\0' && strstr(v.reason, ph[i].reason) != NULL)
            fail_msg("the reason holds the probe's text \"%s\": %s", ph[i].reason, v.reason);
        if (strstr(v.reason, "192.0.2.9") != NULL)
            fail_msg("the reason holds the probed address: %s", v.reason);
    }
    if (c->detail != NULL && strstr(v.detail, c->detail) == NULL)
        fail_msg("detail \"%s\", want \"%s\" in it", v.detail, c->detail);
    status_result_free(&st);
}

/* REQUIRETLS with probes on: the matching MX host's probe decides, as for
 * mta-sts; a rule's verified-tls met by WebPKI alone is no authenticated
 * path (no secure MX lookup: no MTA-STS enforce, no DANE). */
static void
test_requiretls_probes(void **state)
{
    static const struct {
        const char *rule;
        enum status_kind status;
        enum probe_fact probe;
        enum verdict_action action;
        enum verdict_outcome requiretls;
    } rows[] = {
        { NULL, STATUS_ENFORCE, P_GOOD, VERDICT_TAG, VERDICT_PASS },
        { NULL, STATUS_ENFORCE, P_UNVERIFIED, VERDICT_REJECT, VERDICT_FAIL },
        { NULL, STATUS_ENFORCE, P_NOT_YET, VERDICT_DEFER, VERDICT_UNKNOWN },
        { "rcpt=* require=verified-tls", STATUS_ABSENT, P_GOOD, VERDICT_REJECT, VERDICT_FAIL },
    };
    const char *mx[1] = { MX_OK };

    (void)state;
    for (size_t i = 0; i < N_ROWS(rows); i++) {
        const char *const texts[] = { rows[i].rule, NULL };
        struct rules *rules = &scratch_rules;
        struct probes_host ph[1];
        struct status_result st;
        struct verdict_facts f = {
            .sender = "", .rcpt_domain = DOMAIN, .status = &st, .mx_known = true, .n_mx = 1,
            .mx = mx, .route_enforces = true, .route = ROUTE, .probes_on = true, .probe = ph,
            .requiretls = true,
        };
        struct verdict v;

        rules_free(rules);
        make_rules(rows[i].rule ? texts : texts + 1);
        fill_probe(&ph[0], rows[i].probe);
        make_status(&st, rows[i].status, POLICY_MX);
        verdict_decide(rules, &f, &v);
        if (v.action != rows[i].action || v.requiretls != rows[i].requiretls ||
            v.requiretls_refused != (rows[i].action != VERDICT_TAG))
            fail_msg("row %zu: %s, requiretls %s, refused %d (%s)", i,
                     verdict_action_name(v.action), verdict_outcome_name(v.requiretls),
                     v.requiretls_refused, v.reason);
        status_result_free(&st);
    }
}

/* A pass DANE decided needs a route that enforces DANE (verdict.h):
 * route_enforces (MTA-STS) and route_enforces_dane apart. */
struct dane_route_case {
    const char *label;
    const char *rule;
    enum status_kind status;
    const char *mx[2];
    enum probe_fact probe[2];
    bool route_sts, route_dane, requiretls;
    enum verdict_action action;
    enum verdict_outcome outcome;
    const char *why;			/* a fragment of the reason, or NULL */
};

static const struct dane_route_case dane_route_cases[] = {
    { "no MTA-STS, DANE verified, route enforces nothing: defer", NULL, STATUS_ABSENT,
      { MX_OK }, { P_DANE_OK }, false, false, false, VERDICT_DEFER, VERDICT_FAIL,
      "the route " ROUTE " does not enforce DANE" },
    { "no MTA-STS, DANE verified, route enforces MTA-STS only: defer", NULL, STATUS_NONE,
      { MX_OK }, { P_DANE_OK }, true, false, false, VERDICT_DEFER, VERDICT_FAIL,
      "does not enforce DANE" },
    { "testing, DANE verified, DANE route: pass", NULL, STATUS_TESTING, { MX_OK },
      { P_DANE_OK }, false, true, false, VERDICT_TAG, VERDICT_PASS, "DANE" },
    { "no MTA-STS, DANE verified, no DANE route, fail=reject: reject",
      "rcpt=* require=mta-sts fail=reject", STATUS_ABSENT, { MX_OK }, { P_DANE_OK }, false,
      false, false, VERDICT_REJECT, VERDICT_FAIL, "does not enforce DANE" },
    /* The route verifies by WebPKI alone (Postfix "secure match="): a
     * self-signed DANE-EE host is deferred there, so here too. */
    { "enforce, DANE verified but not WebPKI-valid, MTA-STS route only: defer", NULL,
      STATUS_ENFORCE, { MX_OK }, { P_DANE_OK }, true, false, false, VERDICT_DEFER,
      VERDICT_FAIL, MX_OK ": certificate-not-trusted (DANE-verified, but not valid by WebPKI "
      "and the route enforces MTA-STS only)" },
    { "enforce, DANE verified and WebPKI-valid, MTA-STS route only: MTA-STS authenticates",
      NULL, STATUS_ENFORCE, { MX_OK }, { P_DANE_OK_PKIX }, true, false, false, VERDICT_TAG,
      VERDICT_PASS, "MTA-STS enforce" },
    { "enforce, DANE verified not WebPKI, fail=reject, MTA-STS route: reject",
      "rcpt=* require=mta-sts fail=reject", STATUS_ENFORCE, { MX_OK }, { P_DANE_OK }, true,
      false, false, VERDICT_REJECT, VERDICT_FAIL, "certificate-not-trusted (DANE-verified" },
    { "enforce, DANE verified not WebPKI, other MX WebPKI-valid: pass", NULL, STATUS_ENFORCE,
      { MX_OK, MX_OTHER }, { P_DANE_OK, P_GOOD }, true, false, false, VERDICT_TAG,
      VERDICT_PASS, "MTA-STS enforce" },
    { "enforce, DANE verified not WebPKI, both routes: DANE suffices", NULL, STATUS_ENFORCE,
      { MX_OK }, { P_DANE_OK }, true, true, false, VERDICT_TAG, VERDICT_PASS, NULL },
    { "enforce, DANE failed though WebPKI-valid, MTA-STS route: the DANE gate holds", NULL,
      STATUS_ENFORCE, { MX_OK }, { P_DANE_BAD }, true, false, false, VERDICT_DEFER,
      VERDICT_FAIL, "DANE failed" },
    { "REQUIRETLS, enforce, DANE verified not WebPKI, MTA-STS route: refused", NULL,
      STATUS_ENFORCE, { MX_OK }, { P_DANE_OK }, true, false, true, VERDICT_REJECT, VERDICT_FAIL,
      "certificate-not-trusted" },
    { "enforce, DANE verified, DANE route only: DANE authenticates", NULL, STATUS_ENFORCE,
      { MX_OK }, { P_DANE_OK }, false, true, false, VERDICT_TAG, VERDICT_PASS,
      "route enforces DANE" },
    { "enforce, DANE verified, route enforces neither: defer", NULL, STATUS_ENFORCE,
      { MX_OK }, { P_DANE_OK }, false, false, false, VERDICT_DEFER, VERDICT_FAIL,
      "does not enforce it nor DANE" },
    { "enforce, WebPKI only (no DANE), DANE route only: MTA-STS needs its route", NULL,
      STATUS_ENFORCE, { MX_OK }, { P_GOOD }, false, true, false, VERDICT_DEFER, VERDICT_FAIL,
      "does not enforce it" },
    { "DANE failure with a DANE route: still a failure", NULL, STATUS_ABSENT, { MX_OK },
      { P_DANE_BAD }, true, true, false, VERDICT_DEFER, VERDICT_FAIL, "DANE failed" },
    { "mixed, WebPKI host passes, no DANE route: WebPKI decided, pass", NULL, STATUS_ABSENT,
      { MX_OK, MX_OTHER }, { P_DANE_BAD, P_GOOD }, false, false, false, VERDICT_TAG,
      VERDICT_PASS, NULL },
    { "REQUIRETLS, DANE verified, DANE route: authenticated", NULL, STATUS_ABSENT, { MX_OK },
      { P_DANE_OK }, false, true, true, VERDICT_TAG, VERDICT_PASS, NULL },
    { "REQUIRETLS, DANE verified, no DANE route: refused, naming the route", NULL,
      STATUS_ABSENT, { MX_OK }, { P_DANE_OK }, true, false, true, VERDICT_REJECT,
      VERDICT_FAIL, "REQUIRETLS: the path to " DOMAIN " is not authenticated" },
};

static void
run_dane_route_case(void **state)
{
    const struct dane_route_case *c = *state;
    const char *const texts[] = { c->rule, NULL };
    const struct rules *rules = make_rules(c->rule ? texts : texts + 1);
    struct probes_host ph[2];
    struct status_result st;
    size_t n = c->mx[1] != NULL ? 2 : 1;
    struct verdict_facts f = {
        .sender = "alice@corp.example", .rcpt_domain = DOMAIN, .status = &st,
        .mx_known = true, .n_mx = n, .mx = c->mx, .route_enforces = c->route_sts,
        .route_enforces_dane = c->route_dane, .route = ROUTE, .probes_on = true, .probe = ph,
        .requiretls = c->requiretls,
    };
    struct verdict v;

    for (size_t i = 0; i < n; i++)
        fill_probe(&ph[i], c->probe[i]);
    make_status(&st, c->status, POLICY_MX);
    memset(&v, 0xa5, sizeof(v));
    verdict_decide(rules, &f, &v);
    if (v.action != c->action || v.outcome != c->outcome)
        fail_msg("%s/%s, want %s/%s (%s)", verdict_action_name(v.action),
                 verdict_outcome_name(v.outcome), verdict_action_name(c->action),
                 verdict_outcome_name(c->outcome), v.reason);
    if (c->why != NULL && strstr(v.reason, c->why) == NULL)
        fail_msg("reason \"%s\", want \"%s\" in it", v.reason, c->why);
    if (strstr(v.reason, "192.0.2.9") != NULL)
        fail_msg("the reason holds the probed address: %s", v.reason);
    status_result_free(&st);
}

static const struct CMUnitTest rtls_singles[] = {
    cmocka_unit_test(test_requiretls_probes),
};

/* --------------------------------------------------------------- main */

#define N_TESTS                                                                  \
    (N_DECIDE + N_ROWS(mx_cases) + N_ROWS(match_cases) + N_ROWS(parse_cases) +   \
     N_ROWS(load_tests) + N_ROWS(route_cases) + N_ROWS(name_cases) + N_ROWS(probe_cases) + \
     N_ROWS(rtls_cases) + N_ROWS(rtls_singles) + N_ROWS(dane_route_cases))

static struct CMUnitTest verdict_tests[N_TESTS];
static char test_names[N_TESTS][UNIT_NAME_MAX];

int
main(void)
{
    struct unit_list list = { verdict_tests, test_names, N_TESTS, 0, free_scratch };

    add_decide_cases(&list);
    UNIT_ADD_TABLE(&list, "mx", mx_cases, run_mx_case);
    UNIT_ADD_TABLE(&list, "requiretls", rtls_cases, run_rtls_case);
    UNIT_ADD_TABLE(&list, "match", match_cases, run_match_case);
    UNIT_ADD_TABLE(&list, "parse", parse_cases, run_parse_case);
    unit_add_singles(&list, load_tests, N_ROWS(load_tests));
    UNIT_ADD_TABLE(&list, "route", route_cases, run_route_case);
    UNIT_ADD_TABLE(&list, "names", name_cases, run_name_case);
    UNIT_ADD_TABLE(&list, "probes", probe_cases, run_probe_case);
    UNIT_ADD_TABLE(&list, "dane_route", dane_route_cases, run_dane_route_case);
    unit_add_singles(&list, rtls_singles, N_ROWS(rtls_singles));
    if (list.n != N_TESTS) {
        fprintf(stderr, "test_verdict: %zu tests registered, %zu expected\n", list.n,
                (size_t)N_TESTS);
        return 2;
    }
    return cmocka_run_group_tests(verdict_tests, NULL, NULL);
}
