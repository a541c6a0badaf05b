/*
 * test_refresh - the RFC 8461 §5.1 rules (common/refresh.c) as tables,
 * without root, network or clock: DNS and HTTPS come from a fake
 * struct refresh_io, time is a constant.
 *
 * TABLES
 *	step_cases	refresh_step: cached row x TXT answer x fetch result ->
 *			status, the row to store, whether a fetch ran, whether
 *			the id check completed, and the warning logged
 *	row_cases	refresh_status_from_row: what a cached row says now
 *	round_cases	refresh_round over a real (in-memory) cache: which rows
 *			the background refresher revisits, round after round
 */
#include "unit.h"

#include <unistd.h>

#include "config.h"
#include "log.h"
#include "mxmatch.h"
#include "refresh.h"

#define NOW ((int64_t)1000000)
#define CHECK_INTERVAL 3600
#define UNKNOWN_BACKOFF 300
#define ABSENT_TTL 1800
#define RETRY 600
#define MARGIN 1000
#define MIN_LIFETIME 60
#define DAY 86400
#define ANY INT64_MIN /* a row time not checked */

/* The cached row a case starts from. */
enum row {
    R_NONE,          /* nothing cached */
    R_ENFORCE,       /* enforce policy, id id1, a day to go */
    R_TESTING,       /* testing policy, id id1 */
    R_MODE_NONE,     /* mode none policy, id id1 */
    R_NEAR_EXPIRY,   /* enforce, id id1, within refresh_margin of expiry */
    R_EXPIRED,       /* enforce, id id1, past max_age */
    R_FAILED,        /* no policy; id2 failed 100 s ago */
    R_FAILED_OLD,    /* no policy; id2 failed RETRY + 100 s ago */
    R_ENFORCE_RETRY, /* enforce id1; a fetch of id2 failed 100 s ago */
    R_ABSENT,        /* absent, not expired */
    R_ABSENT_OLD,    /* absent, expired */
    R_NO_STATUS      /* a row without a status (written elsewhere) */
};

/* The _mta-sts TXT answer. */
enum txt {
    T_ID1,
    T_ID1_SECURE,
    T_ID2,
    T_NXDOMAIN,
    T_NODATA,
    T_SERVFAIL,
    T_TIMEOUT,
    T_BOGUS,
    T_TWO,     /* two STSv1 records: no usable record */
    T_INVALID, /* one STSv1 record with a bad id */
    T_SPF      /* a TXT record that is not STSv1 */
};

/* What fetching the policy gives. */
enum fetch {
    F_NOT_ASKED, /* the case must not fetch */
    F_ENFORCE,
    F_TESTING,
    F_NONE,
    F_MAX_AGE_0,
    F_HTTP_404,
    F_INVALID,  /* a body that is not a policy */
    F_NO_ADDRESS /* mta-sts.<domain> has no address: no fetch */
};

struct step_case {
    const char *label;
    enum row row;
    enum txt txt;
    enum fetch fetch;
    enum status_kind want;
    bool want_policy;          /* res.has_policy */
    const char *want_id;       /* the row's txt_id */
    bool want_fetched;         /* the fetch ran */
    bool want_rechecked;
    int64_t want_expires;      /* the row's expires_at, or ANY */
    int64_t want_checked;      /* the row's checked_at, or ANY */
    const char *want_failed_id; /* the row's fetch_failed_id */
    const char *want_log;      /* a substring of what was logged, or NULL */
    const char *want_no_log;   /* what must not be logged, or NULL */
};

/* clang-format off */
static const struct step_case step_cases[] = {
    /* A TXT id and a policy, nothing cached. */
    {"new domain: policy fetched", R_NONE, T_ID1, F_ENFORCE, STATUS_ENFORCE, true, "id1",
     true, true, NOW + DAY, NOW, "", NULL, "warning"},
    {"new domain: testing policy", R_NONE, T_ID1, F_TESTING, STATUS_TESTING, true, "id1",
     true, true, NOW + DAY, NOW, "", NULL, NULL},
    {"new domain: mode none policy", R_NONE, T_ID1, F_NONE, STATUS_NONE, true, "id1",
     true, true, NOW + DAY, NOW, "", NULL, NULL},
    {"max_age 0 is kept policy_min_lifetime (not fetched for every recipient)", R_NONE, T_ID1,
     F_MAX_AGE_0, STATUS_ENFORCE, true, "id1", true, true, NOW + MIN_LIFETIME, NOW, "", NULL,
     NULL},

    /* The id: changed -> fetch; unchanged -> keep. */
    {"id change picked up", R_ENFORCE, T_ID2, F_ENFORCE, STATUS_ENFORCE, true, "id2",
     true, true, NOW + DAY, NOW, "", NULL, "warning"},
    {"id change to a testing policy", R_TESTING, T_ID2, F_TESTING, STATUS_TESTING, true, "id2",
     true, true, NOW + DAY, NOW, "", NULL, NULL},
    {"unchanged id not fetched", R_ENFORCE, T_ID1, F_NOT_ASKED, STATUS_ENFORCE, true, "id1",
     false, true, NOW - 100 + DAY, NOW, "", NULL, "warning"},
    {"unchanged id near expiry fetched again", R_NEAR_EXPIRY, T_ID1, F_ENFORCE, STATUS_ENFORCE,
     true, "id1", true, true, NOW + DAY, NOW, "", NULL, NULL},

    /* A failed fetch never replaces a cached policy. */
    {"failed fetch keeps the enforce policy", R_ENFORCE, T_ID2, F_HTTP_404, STATUS_ENFORCE,
     true, "id1", true, false, NOW - 100 + DAY, NOW, "id2",
     "policy fetch for id id2 failed, cached enforce policy kept until it expires: HTTP 404",
     NULL},
    {"invalid policy keeps the testing policy", R_TESTING, T_ID2, F_INVALID, STATUS_TESTING,
     true, "id1", true, false, NOW - 100 + DAY, NOW, "id2",
     "cached testing policy kept until it expires: invalid policy", NULL},
    {"no policy host address keeps the policy", R_ENFORCE, T_ID2, F_NO_ADDRESS,
     STATUS_ENFORCE, true, "id1", false, false, NOW - 100 + DAY, NOW, "id2",
     "policy fetch for id id2 failed", NULL},
    {"failed fetch, cached mode none: no warning", R_MODE_NONE, T_ID2, F_HTTP_404, STATUS_NONE,
     true, "id1", true, false, NOW - 100 + DAY, NOW, "id2", NULL, "policy fetch"},

    /* A vanished TXT record keeps the policy (§3.1, §10.3). */
    {"vanished TXT keeps the enforce policy, with a warning", R_ENFORCE, T_NXDOMAIN, F_NOT_ASKED,
     STATUS_ENFORCE, true, "id1", false, true, NOW - 100 + DAY, NOW, "",
     "cached enforce policy (id id1) but", NULL},
    {"vanished TXT keeps the testing policy quietly", R_TESTING, T_NODATA, F_NOT_ASKED,
     STATUS_TESTING, true, "id1", false, true, NOW - 100 + DAY, NOW, "", NULL, "warning"},
    {"two STSv1 records keep the policy", R_ENFORCE, T_TWO, F_NOT_ASKED, STATUS_ENFORCE, true,
     "id1", false, true, NOW - 100 + DAY, NOW, "", "cached enforce policy (id id1) but", NULL},

    /* DNS cannot answer: a cached policy stays, checked again after unknown_backoff. */
    {"SERVFAIL keeps the policy, re-check after the back-off", R_ENFORCE, T_SERVFAIL,
     F_NOT_ASKED, STATUS_ENFORCE, true, "id1", false, false, NOW - 100 + DAY,
     NOW - CHECK_INTERVAL + UNKNOWN_BACKOFF, "", "TXT check failed, cached enforce policy kept",
     NULL},
    {"bogus DNSSEC keeps the policy", R_TESTING, T_BOGUS, F_NOT_ASKED, STATUS_TESTING, true,
     "id1", false, false, NOW - 100 + DAY, NOW - CHECK_INTERVAL + UNKNOWN_BACKOFF, "",
     "TXT check failed, cached testing policy kept", NULL},

    /* §3.3: the fetch retry back-off after a failed fetch for an id. */
    {"back-off: a failed id is not fetched again", R_FAILED, T_ID2, F_NOT_ASKED, STATUS_FAILED,
     false, "id2", false, false, NOW - 100 + RETRY, NOW, "id2", NULL, NULL},
    {"back-off over: the id is fetched again", R_FAILED_OLD, T_ID2, F_ENFORCE, STATUS_ENFORCE,
     true, "id2", true, true, NOW + DAY, NOW, "", NULL, NULL},
    {"back-off over, fails again: failed", R_FAILED_OLD, T_ID2, F_HTTP_404, STATUS_FAILED,
     false, "id2", true, false, NOW + RETRY, NOW, "id2",
     "MTA-STS TXT id id2 but no valid policy: HTTP 404", NULL},
    {"back-off with a cached policy keeps it unfetched", R_ENFORCE_RETRY, T_ID2, F_NOT_ASKED,
     STATUS_ENFORCE, true, "id1", false, false, NOW - 100 + DAY, NOW, "id2", NULL, NULL},
    {"back-off is per id: a newer id is fetched", R_FAILED, T_ID1, F_ENFORCE, STATUS_ENFORCE,
     true, "id1", true, true, NOW + DAY, NOW, "", NULL, NULL},

    /* max_age: an expired policy is dropped, whatever DNS says. */
    {"expiry drops the policy; TXT gone: absent", R_EXPIRED, T_NXDOMAIN, F_NOT_ASKED,
     STATUS_ABSENT, false, "", false, true, NOW + ABSENT_TTL, NOW, "",
     "cached enforce policy (id id1) expired", "kept"},
    {"expiry drops the policy; DNS fails: unknown", R_EXPIRED, T_SERVFAIL, F_NOT_ASKED,
     STATUS_UNKNOWN, false, "id1", false, false, NOW + UNKNOWN_BACKOFF, NOW, "", "expired",
     "kept"},
    {"expiry: the same id is fetched again", R_EXPIRED, T_ID1, F_TESTING, STATUS_TESTING, true,
     "id1", true, true, NOW + DAY, NOW, "", "expired", "downgrade"},
    {"expiry, fetch fails: failed", R_EXPIRED, T_ID1, F_HTTP_404, STATUS_FAILED, false, "id1",
     true, false, NOW + RETRY, NOW, "id1", "no valid policy", "kept"},

    /* A downgrade from enforce is logged. */
    {"downgrade enforce -> testing warns", R_ENFORCE, T_ID2, F_TESTING, STATUS_TESTING, true,
     "id2", true, true, NOW + DAY, NOW, "",
     "policy changed from enforce to testing (id id2): a downgrade", NULL},
    {"downgrade enforce -> none warns", R_ENFORCE, T_ID2, F_NONE, STATUS_NONE, true, "id2",
     true, true, NOW + DAY, NOW, "", "policy changed from enforce to none (id id2)", NULL},
    {"testing -> none is no downgrade warning", R_TESTING, T_ID2, F_NONE, STATUS_NONE, true,
     "id2", true, true, NOW + DAY, NOW, "", NULL, "downgrade"},

    /* Nothing cached: absent, failed, unknown. */
    {"absent: NXDOMAIN", R_NONE, T_NXDOMAIN, F_NOT_ASKED, STATUS_ABSENT, false, "", false,
     true, NOW + ABSENT_TTL, NOW, "", NULL, NULL},
    {"absent: NODATA", R_NONE, T_NODATA, F_NOT_ASKED, STATUS_ABSENT, false, "", false, true,
     NOW + ABSENT_TTL, NOW, "", NULL, NULL},
    {"absent: no STSv1 record", R_NONE, T_SPF, F_NOT_ASKED, STATUS_ABSENT, false, "", false,
     true, NOW + ABSENT_TTL, NOW, "", NULL, NULL},
    {"absent: two STSv1 records", R_NONE, T_TWO, F_NOT_ASKED, STATUS_ABSENT, false, "", false,
     true, NOW + ABSENT_TTL, NOW, "", NULL, NULL},
    {"absent: an invalid record", R_NONE, T_INVALID, F_NOT_ASKED, STATUS_ABSENT, false, "",
     false, true, NOW + ABSENT_TTL, NOW, "", NULL, NULL},
    {"absent row: a new id is fetched", R_ABSENT, T_ID1, F_ENFORCE, STATUS_ENFORCE, true, "id1",
     true, true, NOW + DAY, NOW, "", NULL, NULL},
    {"failed: HTTP 404", R_NONE, T_ID1, F_HTTP_404, STATUS_FAILED, false, "id1", true, false,
     NOW + RETRY, NOW, "id1", "MTA-STS TXT id id1 but no valid policy: HTTP 404", NULL},
    {"failed: invalid policy text", R_NONE, T_ID1, F_INVALID, STATUS_FAILED, false, "id1",
     true, false, NOW + RETRY, NOW, "id1", "no valid policy: invalid policy", NULL},
    {"failed: policy host without address", R_NONE, T_ID1, F_NO_ADDRESS, STATUS_FAILED, false,
     "id1", false, false, NOW + RETRY, NOW, "id1", "no valid policy", NULL},
    {"unknown: SERVFAIL", R_NONE, T_SERVFAIL, F_NOT_ASKED, STATUS_UNKNOWN, false, "", false,
     false, NOW + UNKNOWN_BACKOFF, NOW, "", NULL, NULL},
    {"unknown: timeout", R_NONE, T_TIMEOUT, F_NOT_ASKED, STATUS_UNKNOWN, false, "", false,
     false, NOW + UNKNOWN_BACKOFF, NOW, "", NULL, NULL},
    {"unknown: bogus DNSSEC", R_NONE, T_BOGUS, F_NOT_ASKED, STATUS_UNKNOWN, false, "", false,
     false, NOW + UNKNOWN_BACKOFF, NOW, "", NULL, NULL},
    {"DNSSEC state kept in the row", R_NONE, T_ID1_SECURE, F_ENFORCE, STATUS_ENFORCE, true,
     "id1", true, true, NOW + DAY, NOW, "", NULL, NULL},
};
/* clang-format on */

/* ------------------------------------------------------------ the fake world */

struct world {
    const struct step_case *c;
    int fetches;
};

static const char *const txt_id1[] = {"v=STSv1; id=id1", NULL};
static const char *const txt_id2[] = {"v=STSv1; id=id2", NULL};
static const char *const txt_two[] = {"v=STSv1; id=id1", "v=STSv1; id=id2", NULL};
static const char *const txt_invalid[] = {"v=STSv1; id=bad!", NULL};
static const char *const txt_spf[] = {"v=spf1 -all", NULL};

static void
fake_txt(void *arg, const char *qname, struct dns_answer *out, struct mts_err *err)
{
    const struct world *w = arg;
    const char *const *recs = NULL;

    assert_string_equal(qname, "_mta-sts.example.com");
    memset(out, 0, sizeof(*out));
    switch (w->c->txt) {
    case T_ID1:
    case T_ID1_SECURE:
        recs = txt_id1;
        out->sec = w->c->txt == T_ID1_SECURE ? DNS_SEC_SECURE : DNS_SEC_INSECURE;
        break;
    case T_ID2:
        recs = txt_id2;
        break;
    case T_TWO:
        recs = txt_two;
        break;
    case T_INVALID:
        recs = txt_invalid;
        break;
    case T_SPF:
        recs = txt_spf;
        break;
    case T_NXDOMAIN:
        out->status = DNS_NXDOMAIN;
        mts_err_set(err, "%s: no such name", qname);
        return;
    case T_NODATA:
        out->status = DNS_NODATA;
        mts_err_set(err, "%s: no TXT record", qname);
        return;
    case T_SERVFAIL:
        out->status = DNS_SERVFAIL;
        mts_err_set(err, "DNS lookup of %s: SERVFAIL", qname);
        return;
    case T_TIMEOUT:
        out->status = DNS_TIMEOUT;
        mts_err_set(err, "DNS lookup of %s timed out after 5000 ms", qname);
        return;
    case T_BOGUS:
        out->status = DNS_BOGUS;
        out->sec = DNS_SEC_BOGUS;
        mts_err_set(err, "DNS lookup of %s: DNSSEC validation failed", qname);
        return;
    }
    out->status = DNS_OK;
    for (; recs != NULL && *recs != NULL; recs++) {
        out->rr[out->n].text = strdup(*recs);
        assert_non_null(out->rr[out->n].text);
        out->rr[out->n++].len = strlen(*recs);
    }
}

static void
fake_addresses(void *arg, const char *host, struct dns_answer *out, struct mts_err *err)
{
    const struct world *w = arg;

    assert_string_equal(host, "mta-sts.example.com");
    memset(out, 0, sizeof(*out));
    if (w->c->fetch == F_NO_ADDRESS) {
        out->status = DNS_NXDOMAIN;
        mts_err_set(err, "%s: no such name", host);
        return;
    }
    out->status = DNS_OK;
    out->rr[0].text = strdup("192.0.2.1");
    assert_non_null(out->rr[0].text);
    out->rr[0].len = strlen(out->rr[0].text);
    out->n = 1;
}

static int
fake_fetch(void *arg, const char *domain, const char *const *addrs, size_t n_addrs,
           struct fetch_result *out, struct mts_err *err)
{
    struct world *w = arg;
    const char *body = NULL;

    assert_string_equal(domain, "example.com");
    assert_int_equal(n_addrs, 1);
    assert_string_equal(addrs[0], "192.0.2.1");
    w->fetches++;
    memset(out, 0, sizeof(*out));
    switch (w->c->fetch) {
    case F_ENFORCE:
        body = "version: STSv1\nmode: enforce\nmx: mx.example.com\nmax_age: 86400\n";
        break;
    case F_TESTING:
        body = "version: STSv1\nmode: testing\nmx: mx.example.com\nmax_age: 86400\n";
        break;
    case F_NONE:
        body = "version: STSv1\nmode: none\nmax_age: 86400\n";
        break;
    case F_MAX_AGE_0:
        body = "version: STSv1\nmode: enforce\nmx: mx.example.com\nmax_age: 0\n";
        break;
    case F_INVALID:
        body = "<html>not a policy</html>\n";
        break;
    case F_HTTP_404:
        out->status = FETCH_HTTP_STATUS;
        out->http_status = 404;
        mts_err_set(err, "HTTP 404");
        return -1;
    case F_NOT_ASKED:
    case F_NO_ADDRESS:
        fail_msg("fetched, but the case expects no fetch");
    }
    out->status = FETCH_OK;
    out->http_status = 200;
    out->body = strdup(body);
    assert_non_null(out->body);
    out->body_len = strlen(body);
    return 0;
}

/* ------------------------------------------------------------ cached rows */

static void
policy_row(struct cache_entry *e, enum policy_mode mode, int64_t expires_at)
{
    static char *const mx[] = {"mx.example.com"};

    e->has_policy = true;
    e->mode = mode;
    e->max_age = DAY;
    e->mx = mxmatch_list_dup(mx, 1);
    assert_non_null(e->mx);
    e->n_mx = 1;
    e->policy_text = strdup("version: STSv1\n...");
    assert_non_null(e->policy_text);
    e->fetched_at = expires_at - DAY;
    e->expires_at = expires_at;
    e->has_status = true;
    e->status = status_kind_of_mode(mode);
    snprintf(e->txt_id, sizeof(e->txt_id), "id1");
}

static void
failed_row(struct cache_entry *e, int64_t failed_at)
{
    e->has_status = true;
    e->status = STATUS_FAILED;
    snprintf(e->txt_id, sizeof(e->txt_id), "id2");
    snprintf(e->fetch_failed_id, sizeof(e->fetch_failed_id), "id2");
    e->fetch_failed_at = failed_at;
    e->expires_at = failed_at + RETRY;
    snprintf(e->last_error, sizeof(e->last_error), "policy fetch failed: HTTP 404");
}

static void
make_row(enum row r, struct cache_entry *e)
{
    memset(e, 0, sizeof(*e));
    snprintf(e->domain, sizeof(e->domain), "example.com");
    e->checked_at = NOW - CHECK_INTERVAL;
    e->last_used = NOW - 10;
    switch (r) {
    case R_NONE:
        e->checked_at = e->last_used = 0;
        break;
    case R_ENFORCE:
        policy_row(e, POLICY_MODE_ENFORCE, NOW - 100 + DAY);
        break;
    case R_TESTING:
        policy_row(e, POLICY_MODE_TESTING, NOW - 100 + DAY);
        break;
    case R_MODE_NONE:
        policy_row(e, POLICY_MODE_NONE, NOW - 100 + DAY);
        break;
    case R_NEAR_EXPIRY:
        policy_row(e, POLICY_MODE_ENFORCE, NOW + MARGIN / 2);
        break;
    case R_EXPIRED:
        policy_row(e, POLICY_MODE_ENFORCE, NOW - 1);
        break;
    case R_FAILED:
        failed_row(e, NOW - 100);
        break;
    case R_FAILED_OLD:
        failed_row(e, NOW - RETRY - 100);
        break;
    case R_ENFORCE_RETRY:
        policy_row(e, POLICY_MODE_ENFORCE, NOW - 100 + DAY);
        snprintf(e->fetch_failed_id, sizeof(e->fetch_failed_id), "id2");
        e->fetch_failed_at = NOW - 100;
        break;
    case R_ABSENT:
    case R_ABSENT_OLD:
        e->has_status = true;
        e->status = STATUS_ABSENT;
        e->expires_at = r == R_ABSENT ? NOW + 10 : NOW;
        break;
    case R_NO_STATUS:
        e->expires_at = NOW + 10;
        break;
    }
}

/* ------------------------------------------------------------ running a step */

static struct config *cfg;

/* Runs fn(arg) with stderr (where log_msg writes) going into buf. */
static void
capture_log(void (*fn)(void *), void *arg, char *buf, size_t bufsz)
{
    FILE *tmp = tmpfile();
    int saved;
    size_t n;

    assert_non_null(tmp);
    fflush(stderr);
    saved = dup(STDERR_FILENO);
    assert_true(saved >= 0);
    assert_true(dup2(fileno(tmp), STDERR_FILENO) >= 0);
    fn(arg);
    fflush(stderr);
    assert_true(dup2(saved, STDERR_FILENO) >= 0);
    close(saved);
    rewind(tmp);
    n = fread(buf, 1, bufsz - 1, tmp);
    buf[n] = '\0';
    fclose(tmp);
}

struct step_run {
    struct world w;
    struct cache_entry e;
    struct status_result res;
};

static void
run_step(void *arg)
{
    struct step_run *r = arg;
    const struct refresh_io io = {&r->w, fake_txt, fake_addresses, fake_fetch};

    refresh_step(cfg, &io, &r->e, NOW, &r->res);
}

static void
run_step_case(void **state)
{
    const struct step_case *c = *state;
    struct step_run r;
    char log[4096];

    memset(&r, 0, sizeof(r));
    r.w.c = c;
    make_row(c->row, &r.e);
    capture_log(run_step, &r, log, sizeof(log));

    if (r.res.status != c->want)
        fail_msg("status %s, want %s (error: %s; log: %s)", status_kind_name(r.res.status),
                 status_kind_name(c->want), r.res.error, log);
    assert_int_equal(r.res.source, STATUS_FROM_FRESH);
    assert_int_equal(r.res.has_policy, c->want_policy);
    assert_int_equal(r.w.fetches, c->want_fetched ? 1 : 0);
    assert_int_equal(r.res.rechecked, c->want_rechecked);
    assert_string_equal(r.e.txt_id, c->want_id);
    assert_string_equal(r.e.fetch_failed_id, c->want_failed_id);
    assert_true(r.e.has_status);
    /* A step is not a use: the caller records recipients' uses. */
    assert_int_equal(r.e.last_used, c->row == R_NONE ? 0 : NOW - 10);
    if (c->want_expires != ANY && r.e.expires_at != c->want_expires)
        fail_msg("row expires_at NOW%+lld, want NOW%+lld", (long long)(r.e.expires_at - NOW),
                 (long long)(c->want_expires - NOW));
    if (c->want_checked != ANY && r.e.checked_at != c->want_checked)
        fail_msg("row checked_at NOW%+lld, want NOW%+lld", (long long)(r.e.checked_at - NOW),
                 (long long)(c->want_checked - NOW));
    if (c->want_policy) {
        /* The policy's patterns reach the result as a list. */
        assert_true(r.res.n_mx <= 1);
        assert_int_equal(status_result_mx_allows(&r.res, "mx.example.com"), r.res.n_mx == 1);
        assert_false(status_result_mx_allows(&r.res, "other.example.com"));
    } else {
        assert_null(r.res.mx);
        assert_int_equal(r.res.error[0] != '\0', true); /* says why */
    }
    if (c->txt == T_ID1_SECURE)
        assert_string_equal(r.e.dnssec, "secure");
    if (c->want_log != NULL && strstr(log, c->want_log) == NULL)
        fail_msg("log lacks \"%s\": %s", c->want_log, log);
    if (c->want_no_log != NULL && strstr(log, c->want_no_log) != NULL)
        fail_msg("log has \"%s\": %s", c->want_no_log, log);
    status_result_free(&r.res);
    cache_entry_free(&r.e);
}

/* ------------------------------------------------------------ what a row says */

struct row_case {
    const char *label;
    enum row row;
    int64_t now;
    bool want_answer;
    enum status_kind want;
};

static const struct row_case row_cases[] = {
    {"enforce policy within max_age", R_ENFORCE, NOW, true, STATUS_ENFORCE},
    {"testing policy within max_age", R_TESTING, NOW, true, STATUS_TESTING},
    {"mode none policy within max_age", R_MODE_NONE, NOW, true, STATUS_NONE},
    {"policy due for a check still answers", R_NEAR_EXPIRY, NOW, true, STATUS_ENFORCE},
    {"policy past max_age answers nothing", R_EXPIRED, NOW, false, STATUS_UNKNOWN},
    {"failed within the back-off", R_FAILED, NOW, true, STATUS_FAILED},
    {"failed past the back-off answers nothing", R_FAILED_OLD, NOW, false, STATUS_UNKNOWN},
    {"absent within absent_ttl", R_ABSENT, NOW, true, STATUS_ABSENT},
    {"absent at its expiry answers nothing", R_ABSENT_OLD, NOW, false, STATUS_UNKNOWN},
    {"a row without a status answers nothing", R_NO_STATUS, NOW, false, STATUS_UNKNOWN},
    {"nothing known answers nothing", R_NONE, NOW, false, STATUS_UNKNOWN},
};

static void
run_row_case(void **state)
{
    const struct row_case *c = *state;
    struct cache_entry e;
    struct status_result res;
    bool got;

    make_row(c->row, &e);
    memset(&res, 0, sizeof(res));
    res.status = STATUS_UNKNOWN;
    got = refresh_status_from_row(&e, c->now, &res);
    assert_int_equal(got, c->want_answer);
    if (got) {
        assert_int_equal(res.status, c->want);
        assert_int_equal(res.has_policy, c->want <= STATUS_NONE);
        assert_int_equal(res.n_mx, c->want <= STATUS_NONE ? 1 : 0);
    } else {
        assert_false(res.has_policy);
        assert_null(res.mx);
    }
    status_result_free(&res);
    cache_entry_free(&e);

    /* refresh_status_take_row: the same answer, with the row's MX patterns
     * moved (ASan sees a double free or a leak if they are not). */
    {
        struct status_result copied, taken;

        make_row(c->row, &e);
        memset(&copied, 0, sizeof(copied));
        memset(&taken, 0, sizeof(taken));
        copied.status = taken.status = STATUS_UNKNOWN;
        assert_int_equal(refresh_status_from_row(&e, c->now, &copied), got);
        assert_int_equal(refresh_status_take_row(&e, c->now, &taken), got);
        assert_null(e.mx);
        assert_int_equal(taken.status, copied.status);
        assert_int_equal(taken.has_policy, copied.has_policy);
        assert_int_equal(taken.n_mx, copied.n_mx);
        for (size_t i = 0; i < copied.n_mx; i++)
            assert_string_equal(taken.mx[i], copied.mx[i]);
        assert_string_equal(taken.txt_id, copied.txt_id);
        assert_int_equal(taken.expires_at, copied.expires_at);
        status_result_free(&copied);
        status_result_free(&taken);
        cache_entry_free(&e);
    }
}

/* ------------------------------------------------------------ the refresher's rounds */

/* Kinds of rows a round case fills the cache with, n of each. */
struct round_case {
    const char *label;
    int absent, unknown, failed; /* negative rows, long past check_interval */
    int due;                     /* enforce rows due for a TXT id check */
    int expiring;                /* enforce rows within refresh_margin of expiry */
    int fresh;                   /* enforce rows checked just now */
    int unused;                  /* enforce rows due, unused for unused_ttl */
    size_t batch;
    int rounds;
    size_t want[4];              /* rows delivered in each round */
};

static const struct round_case round_cases[] = {
    {"700 absent rows: nothing queued", 700, 0, 0, 0, 0, 0, 0, 500, 2, {0, 0}},
    {"unknown and failed rows: nothing queued", 0, 300, 300, 0, 0, 0, 0, 500, 1, {0}},
    {"700 enforce rows due: all within 2 rounds, then over", 0, 0, 0, 700, 0, 0, 0, 500, 3,
     {500, 200, 500}},
    {"policies near expiry are due whatever the check", 0, 0, 0, 0, 40, 0, 0, 500, 1, {40}},
    {"fresh policies are not due", 0, 0, 0, 0, 0, 100, 0, 500, 1, {0}},
    {"unused policies are not refreshed", 0, 0, 0, 0, 0, 0, 100, 500, 1, {0}},
    {"a mix: only the policies due, paged", 300, 100, 100, 250, 50, 200, 100, 120, 4,
     {120, 120, 60, 120}},
};

#define ROUND_USED_SINCE_OFFSET 100 /* in use: asked 100 s ago */

struct seen {
    char (*names)[CACHE_DOMAIN_MAX + 1];
    size_t n, cap;
};

static int
seen_row(const struct cache_entry *e, void *arg)
{
    struct seen *sn = arg;

    assert_true(e->has_policy);
    if (sn->n < sn->cap)
        snprintf(sn->names[sn->n], sizeof(sn->names[0]), "%s", e->domain);
    sn->n++;
    return 0;
}

static void
put_round_row(struct cache *c, const char *kind, int i, enum status_kind st,
              int64_t checked, int64_t expires, int64_t used)
{
    struct cache_entry e;
    struct mts_err err;

    memset(&e, 0, sizeof(e));
    snprintf(e.domain, sizeof(e.domain), "%s%04d.example", kind, i);
    e.has_status = true;
    e.status = st;
    e.checked_at = checked;
    e.expires_at = expires;
    e.last_used = used;
    if (st == STATUS_ENFORCE) {
        e.has_policy = true;
        e.mode = POLICY_MODE_ENFORCE;
        e.max_age = DAY;
        e.fetched_at = checked;
        snprintf(e.txt_id, sizeof(e.txt_id), "id1");
    }
    if (cache_put(c, &e, &err) != CACHE_OK)
        fail_msg("cache_put %s: %s", e.domain, err.msg);
}

static void
run_round_case(void **state)
{
    const struct round_case *c = *state;
    struct cache *cache;
    struct mts_err err;
    struct refresh_cursor cur = {""};
    struct seen sn = {NULL, 0, 2000};
    size_t total = 0, n;
    int64_t used = NOW - ROUND_USED_SINCE_OFFSET, old = NOW - CHECK_INTERVAL - 1;

    assert_int_equal(cache_open(":memory:", 1000, &cache, &err), CACHE_OK);
    sn.names = calloc(sn.cap, sizeof(*sn.names));
    assert_non_null(sn.names);
    /* Negative rows checked long ago and long expired: the old rule found them due. */
    for (int i = 0; i < c->absent; i++)
        put_round_row(cache, "absent", i, STATUS_ABSENT, old, NOW - 1, used);
    for (int i = 0; i < c->unknown; i++)
        put_round_row(cache, "unknown", i, STATUS_UNKNOWN, old, NOW + 10, used);
    for (int i = 0; i < c->failed; i++)
        put_round_row(cache, "failed", i, STATUS_FAILED, old, NOW + 10, used);
    for (int i = 0; i < c->due; i++)
        put_round_row(cache, "due", i, STATUS_ENFORCE, old, NOW + DAY, used);
    for (int i = 0; i < c->expiring; i++)
        put_round_row(cache, "expiring", i, STATUS_ENFORCE, NOW, NOW + MARGIN / 2, used);
    for (int i = 0; i < c->fresh; i++)
        put_round_row(cache, "fresh", i, STATUS_ENFORCE, NOW, NOW + DAY, used);
    for (int i = 0; i < c->unused; i++)
        put_round_row(cache, "unused", i, STATUS_ENFORCE, old, NOW + DAY,
                      NOW - cfg->unused_ttl - 1);
    for (int r = 0; r < c->rounds; r++) {
        size_t before = sn.n;

        assert_int_equal(refresh_round(cache, cfg, NOW, c->batch, &cur, seen_row, &sn, &n, &err),
                         CACHE_OK);
        if (n != c->want[r] || sn.n - before != n)
            fail_msg("round %d: %zu rows, want %zu", r + 1, n, c->want[r]);
        total += n;
    }
    /* Every row due was delivered, each once, in domain order, before any came again. */
    assert_true(total >= (size_t)(c->due + c->expiring));
    for (size_t i = 1; i < (size_t)(c->due + c->expiring); i++)
        if (strcmp(sn.names[i - 1], sn.names[i]) >= 0)
            fail_msg("row %zu (%s) delivered after %s", i, sn.names[i], sn.names[i - 1]);
    /* A round changes no row's last use (the refresher is not a recipient). */
    if (c->due > 0) {
        struct cache_entry e;

        assert_int_equal(cache_get(cache, "due0000.example", &e, &err), CACHE_OK);
        assert_int_equal(e.last_used, used);
        cache_entry_free(&e);
    }
    free(sn.names);
    cache_close(cache);
}

/* ------------------------------------------------------------ main */

#define N_TESTS (N_ROWS(step_cases) + N_ROWS(row_cases) + N_ROWS(round_cases))

static struct CMUnitTest refresh_tests[N_TESTS];
static char test_names[N_TESTS][UNIT_NAME_MAX];

int
main(void)
{
    struct unit_list list = {refresh_tests, test_names, N_TESTS, 0, NULL};
    struct mts_err err;

    if (config_defaults(&cfg, &err) != 0) {
        fprintf(stderr, "test_refresh: %s\n", err.msg);
        return 2;
    }
    cfg->check_interval = CHECK_INTERVAL;
    cfg->unknown_backoff = UNKNOWN_BACKOFF;
    cfg->absent_ttl = ABSENT_TTL;
    cfg->fetch_retry_interval = RETRY;
    cfg->refresh_margin = MARGIN;
    cfg->policy_min_lifetime = MIN_LIFETIME;
    cfg->unused_ttl = 10 * DAY; /* within NOW: a row's times are never negative */
    log_init("test_refresh", LOG_TO_STDERR, LOG_MAIL);
    log_set_level(LOG_DEBUG);
    UNIT_ADD_TABLE(&list, "step", step_cases, run_step_case);
    UNIT_ADD_TABLE(&list, "row", row_cases, run_row_case);
    UNIT_ADD_TABLE(&list, "round", round_cases, run_round_case);
    return cmocka_run_group_tests(refresh_tests, NULL, NULL);
}
