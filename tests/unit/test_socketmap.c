/*
 * test_socketmap - unit tests for common/socketmap.c: Postfix's socketmap
 * netstrings and the MTA-STS policy answer. No network.
 *
 * Tables, one cmocka test per row:
 *	netstring_cases	netstring_parse: good, partial, malformed,
 *			over the limit (Postfix's 10000-byte key)
 *	split_cases	sockmap_request_split: "NAME KEY"
 *	key_cases	sockmap_key_domain: next-hop keys -> policy domain
 *	answer_cases	sockmap_answer: each status -> its answer; wildcard
 *			patterns (one label, RFC 8461 §4.1) against MX sets
 */
#include "unit.h"

#include <stdbool.h>

#include "netstring.h"
#include "socketmap.h"

/* ------------------------------------------------------------ netstrings */

struct netstring_case {
    const char *label;
    struct unit_bytes in;
    size_t max;
    enum netstring_parse want;
    struct unit_bytes payload;	/* COMPLETE */
    size_t used;		/* COMPLETE */
    const char *reason;		/* MALFORMED: a word of the reason */
};

#define MAXREQ SOCKMAP_MAX_REQUEST

static const struct netstring_case netstring_cases[] = {
    { "good", BYTES("19:postfix example.com,"), MAXREQ, NETSTRING_COMPLETE,
      BYTES("postfix example.com"), 23, NULL },
    { "good, followed by more", BYTES("3:a b,4:x"), MAXREQ, NETSTRING_COMPLETE, BYTES("a b"), 6, NULL },
    { "empty payload", BYTES("0:,"), MAXREQ, NETSTRING_COMPLETE, BYTES(""), 3, NULL },
    { "payload with a NUL", BYTES("3:a\0b,"), MAXREQ, NETSTRING_COMPLETE, BYTES("a\0b"), 6, NULL },
    { "exactly the limit", BYTES("10:{10},"), 10, NETSTRING_COMPLETE, BYTES("{10}"), 14, NULL },
    { "largest request", BYTES("10065:{10065},"), MAXREQ, NETSTRING_COMPLETE, BYTES("{10065}"),
      10072, NULL },

    { "nothing yet", BYTES(""), MAXREQ, NETSTRING_PARTIAL, { NULL, 0 }, 0, NULL },
    { "digits only", BYTES("19"), MAXREQ, NETSTRING_PARTIAL, { NULL, 0 }, 0, NULL },
    { "length and colon", BYTES("19:"), MAXREQ, NETSTRING_PARTIAL, { NULL, 0 }, 0, NULL },
    { "payload cut", BYTES("19:postfix ex"), MAXREQ, NETSTRING_PARTIAL, { NULL, 0 }, 0, NULL },
    { "comma missing yet", BYTES("3:a b"), MAXREQ, NETSTRING_PARTIAL, { NULL, 0 }, 0, NULL },

    { "over the limit by one", BYTES("11:{11},"), 10, NETSTRING_MALFORMED, { NULL, 0 }, 0, "exceeds" },
    { "1 MB", BYTES("1048576:"), MAXREQ, NETSTRING_MALFORMED, { NULL, 0 }, 0, "exceeds" },
    { "1 MB, digits only so far", BYTES("104857"), MAXREQ, NETSTRING_MALFORMED, { NULL, 0 }, 0,
      "exceeds" },
    { "huge length", BYTES("99999999999999999999999:"), MAXREQ, NETSTRING_MALFORMED, { NULL, 0 }, 0,
      "exceeds" },
    { "request one over the limit", BYTES("10066:"), MAXREQ, NETSTRING_MALFORMED, { NULL, 0 }, 0,
      "exceeds" },
    { "leading zero", BYTES("03:a b,"), MAXREQ, NETSTRING_MALFORMED, { NULL, 0 }, 0, "leading zero" },
    { "no length", BYTES(":a,"), MAXREQ, NETSTRING_MALFORMED, { NULL, 0 }, 0, "not a length" },
    { "letters", BYTES("GET / HTTP/1.0\r\n"), MAXREQ, NETSTRING_MALFORMED, { NULL, 0 }, 0,
      "not a length" },
    { "negative", BYTES("-1:"), MAXREQ, NETSTRING_MALFORMED, { NULL, 0 }, 0, "not a length" },
    { "space before colon", BYTES("3 :a b,"), MAXREQ, NETSTRING_MALFORMED, { NULL, 0 }, 0, "not ':'" },
    { "no colon", BYTES("3,a b,"), MAXREQ, NETSTRING_MALFORMED, { NULL, 0 }, 0, "not ':'" },
    { "no comma", BYTES("3:a b;"), MAXREQ, NETSTRING_MALFORMED, { NULL, 0 }, 0, "not ','" },
    { "length too short", BYTES("2:a b,"), MAXREQ, NETSTRING_MALFORMED, { NULL, 0 }, 0, "not ','" },
    { "NUL instead of the comma", BYTES("1:a\0"), MAXREQ, NETSTRING_MALFORMED, { NULL, 0 }, 0,
      "not ','" },
};

static void
run_netstring_case(void **state)
{
    const struct netstring_case *c = *state;
    size_t len, plen = 0, used = 0;
    char *in = unit_bytes_new(c->in, &len);
    const char *payload = NULL;
    struct mts_err err;
    enum netstring_parse got;

    mts_err_clear(&err);
    got = netstring_parse(in, len, c->max, &payload, &plen, &used, &err);
    assert_int_equal(got, c->want);
    if (c->want == NETSTRING_COMPLETE) {
        size_t wl;
        char *want = unit_bytes_new(c->payload, &wl);

        assert_int_equal(plen, wl);
        if (wl > 0)
            assert_memory_equal(payload, want, wl);
        assert_int_equal(used, c->used);
    } else if (c->want == NETSTRING_MALFORMED) {
        unit_assert_reason(&err, c->reason);
    }
}

static void
test_encode(void **state)
{
    char out[32];

    (void)state;
    assert_int_equal(netstring_encode("NOTFOUND ", 9, out, sizeof(out)), 12);
    assert_string_equal(out, "9:NOTFOUND ,");
    assert_int_equal(netstring_encode("", 0, out, sizeof(out)), 3);
    assert_string_equal(out, "0:,");
    /* 29 bytes + "29:" + "," does not fit 32 with its NUL. */
    assert_int_equal(netstring_encode("{29}", 29, out, sizeof(out)), -1);
    assert_int_equal(netstring_encode("abcdefghijklmnopqrstuvwxyz1", 27, out,
                                              sizeof(out)), 31);
    /* Lengths of one to six digits, written by hand (no snprintf). */
    {
        static char big[SOCKMAP_MAX_REPLY + NETSTRING_FRAMING + 1];
        static char data[SOCKMAP_MAX_REPLY];
        const size_t lens[] = {1, 9, 10, 99, 100, 1000, 10009, SOCKMAP_MAX_REPLY};
        char head[16];

        memset(data, 'x', sizeof(data));
        for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
            int h = snprintf(head, sizeof(head), "%zu:", lens[i]);

            assert_int_equal(netstring_encode(data, lens[i], big, sizeof(big)),
                             h + (int)lens[i] + 1);
            assert_memory_equal(big, head, (size_t)h);
            assert_int_equal(big[h + (int)lens[i]], ',');
            assert_int_equal(big[h + (int)lens[i] + 1], '\0');
        }
        /* The largest reply fits the framing Postfix allows, exactly. */
        assert_int_equal(netstring_encode(data, SOCKMAP_MAX_REPLY, big,
                                                  SOCKMAP_MAX_REPLY + NETSTRING_FRAMING), -1);
    }
}

/* ------------------------------------------------------------ requests */

struct split_case {
    const char *label;
    struct unit_bytes in;
    bool ok;
    const char *name, *key;
};

static const struct split_case split_cases[] = {
    { "postfix", BYTES("postfix example.com"), true, "postfix", "example.com" },
    { "sendmail", BYTES("sts example.com"), true, "sts", "example.com" },
    { "first space splits", BYTES("postfix a b"), true, "postfix", "a b" },
    { "bracketed key", BYTES("postfix [mx.example.com]:25"), true, "postfix",
      "[mx.example.com]:25" },
    { "longest key", BYTES("p {10000}"), true, "p", "{10000}" },
    { "no space", BYTES("postfix"), false, NULL, NULL },
    { "empty", BYTES(""), false, NULL, NULL },
    { "empty name", BYTES(" example.com"), false, NULL, NULL },
    { "empty key", BYTES("postfix "), false, NULL, NULL },
    { "key too long", BYTES("p {10001}"), false, NULL, NULL },
    { "name too long", BYTES("{65} example.com"), false, NULL, NULL },
    { "slash in the name", BYTES("a/b example.com"), false, NULL, NULL },
    { "NUL in the key", BYTES("postfix exa\0mple.com"), false, NULL, NULL },
};

static void
run_split_case(void **state)
{
    const struct split_case *c = *state;
    size_t len;
    char *in = unit_bytes_new(c->in, &len);
    char name[SOCKMAP_MAX_NAME + 1], *key = unit_alloc(SOCKMAP_MAX_KEY + 1);
    struct mts_err err;
    int r;

    mts_err_clear(&err);
    r = sockmap_request_split(in, len, name, sizeof(name), key, SOCKMAP_MAX_KEY + 1, &err);
    if (!c->ok) {
        assert_int_equal(r, -1);
        unit_assert_reason(&err, "malformed request");
        return;
    }
    if (r != 0)
        fail_msg("rejected: %s", err.msg);
    assert_string_equal(name, c->name);
    assert_string_equal(key, unit_str_new(c->key));
}

/* ------------------------------------------------------------ keys */

struct key_case {
    const char *label;
    const char *key;
    enum sockmap_key want;
    const char *domain;		/* with SOCKMAP_KEY_NONE: in the reason, when not NULL */
};

static const struct key_case key_cases[] = {
    { "domain", "example.com", SOCKMAP_KEY_DOMAIN, "example.com" },
    { "upper case", "Example.COM", SOCKMAP_KEY_DOMAIN, "example.com" },
    { "trailing dot", "example.com.", SOCKMAP_KEY_DOMAIN, "example.com" },
    { "bracketed", "[example.com]", SOCKMAP_KEY_DOMAIN, "example.com" },
    { "bracketed with port", "[example.com]:123", SOCKMAP_KEY_DOMAIN, "example.com" },
    { "with port", "example.com:25", SOCKMAP_KEY_DOMAIN, "example.com" },
    { "U-label", "b\xc3\xbc" "cher.example", SOCKMAP_KEY_DOMAIN, "xn--bcher-kva.example" },
    { "parent-domain form", ".example.com", SOCKMAP_KEY_NONE, NULL },
    { "IPv4", "192.0.2.1", SOCKMAP_KEY_NONE, "\"192.0.2.1\": an IP address" },
    { "bracketed IPv4", "[192.0.2.1]:25", SOCKMAP_KEY_NONE, "\"[192.0.2.1]:25\": an IP address" },
    { "bracketed IPv6", "[ipv6:2001:db8::1]", SOCKMAP_KEY_NONE, "an IP address" },
    { "bracketed bare IPv6", "[2001:db8::1]", SOCKMAP_KEY_NONE, "an IP address" },
    { "IPv6", "2001:db8::1", SOCKMAP_KEY_NONE, NULL },
    { "digits, not an address", "1.2.3", SOCKMAP_KEY_NONE, "all-numeric" },
    { "unbalanced bracket", "[example.com", SOCKMAP_KEY_NONE, "\"[example.com\": unbalanced" },
    { "junk after bracket", "[example.com]x", SOCKMAP_KEY_NONE, NULL },
    { "empty brackets", "[]", SOCKMAP_KEY_NONE, "\"[]\": no host name" },
    { "not a name", "exa mple.com", SOCKMAP_KEY_NONE, NULL },
    { "too long", "{300}.com", SOCKMAP_KEY_NONE, NULL },
};

static void
run_key_case(void **state)
{
    const struct key_case *c = *state;
    char domain[254];
    struct mts_err err;
    enum sockmap_key got;

    mts_err_clear(&err);
    got = sockmap_key_domain(unit_str_new(c->key), domain, sizeof(domain), &err);
    assert_int_equal(got, c->want);
    if (c->want == SOCKMAP_KEY_DOMAIN) {
        assert_string_equal(domain, c->domain);
    } else {
        unit_assert_reason(&err, NULL);
        /* The reason quotes the key, which is made only on the way to it. */
        if (c->domain != NULL && strstr(err.msg, c->domain) == NULL)
            fail_msg("reason \"%s\" lacks \"%s\"", err.msg, c->domain);
    }
}

/* ------------------------------------------------------------ answers */

#define MAXL 6

struct answer_case {
    const char *label;
    enum status_kind status;
    const char *pats[MAXL];	/* policy mx patterns, NULL-terminated */
    int n_mx;			/* -1: MX hosts unknown */
    const char *mx[MAXL];
    bool tlsrpt;
    enum sockmap_reply kind;
    const char *want;		/* the whole answer, or (TEMP) a part of it */
    bool unknown_notfound;	/* map_unknown = notfound */
    bool dane_only;		/* danemap_only held (map_query.c) */
};

static const struct answer_case answer_cases[] = {
    { "enforce, one MX", STATUS_ENFORCE, {"mx1.example.com"}, 1, {"mx1.example.com"}, false,
      SOCKMAP_OK, "OK secure match=mx1.example.com servername=hostname", false, false },
    { "enforce, two MX", STATUS_ENFORCE, {"mx1.example.com", "mx2.example.com"}, 2,
      {"mx2.example.com", "mx1.example.com"}, false, SOCKMAP_OK,
      "OK secure match=mx1.example.com:mx2.example.com servername=hostname", false, false },
    { "wildcard, one label matches", STATUS_ENFORCE, {"*.mx.example.com"}, 1,
      {"a.mx.example.com"}, false, SOCKMAP_OK,
      "OK secure match=a.mx.example.com servername=hostname", false, false },
    { "wildcard is never .domain", STATUS_ENFORCE, {"mx1.example.com", "*.mx.example.com"}, 3,
      {"mx1.example.com", "b.mx.example.com", "a.b.mx.example.com"}, false, SOCKMAP_OK,
      "OK secure match=b.mx.example.com:mx1.example.com servername=hostname", false, false },
    { "wildcard does not match its parent", STATUS_ENFORCE, {"*.example.com", "mx.other.net", false, false },
      2, {"example.com", "mx.other.net"}, false, SOCKMAP_OK,
      "OK secure match=mx.other.net servername=hostname", false, false },
    { "MX not in the policy left out", STATUS_ENFORCE, {"mx1.example.com"}, 2,
      {"evil.example.net", "mx1.example.com"}, false, SOCKMAP_OK,
      "OK secure match=mx1.example.com servername=hostname", false, false },
    { "duplicate MX once", STATUS_ENFORCE, {"*.example.com"}, 3,
      {"a.example.com", "a.example.com", "b.example.com"}, false, SOCKMAP_OK,
      "OK secure match=a.example.com:b.example.com servername=hostname", false, false },
    { "implicit MX (the domain)", STATUS_ENFORCE, {"example.com"}, 1, {"example.com"}, false,
      SOCKMAP_OK, "OK secure match=example.com servername=hostname", false, false },
    { "no MX matches: TEMP", STATUS_ENFORCE, {"mx.elsewhere.test", "*.elsewhere.test"}, 1,
      {"mx1.mxmismatch.test"}, false, SOCKMAP_TEMP,
      "TEMP no MX host of example.com matches its MTA-STS policy "
      "(mx: mx.elsewhere.test *.elsewhere.test)", false, false },
    { "wildcard two labels deep only: TEMP", STATUS_ENFORCE, {"*.example.com"}, 1,
      {"a.b.example.com"}, false, SOCKMAP_TEMP, "TEMP no MX host of example.com matches", false, false },
    { "null MX: TEMP", STATUS_ENFORCE, {"*.example.com"}, 1, {"."}, false, SOCKMAP_TEMP,
      "TEMP no MX host", false, false },
    { "MX unknown: TEMP", STATUS_ENFORCE, {"mx1.example.com"}, -1, {NULL}, false,
      SOCKMAP_TEMP, "TEMP MX hosts of example.com unknown: SERVFAIL", false, false },
    { "tlsrpt", STATUS_ENFORCE, {"mx1.example.com", "*.mx.example.com"}, 2,
      {"mx1.example.com", "b.mx.example.com"}, true, SOCKMAP_OK,
      "OK secure match=b.mx.example.com:mx1.example.com servername=hostname "
      "policy_type=sts policy_domain=example.com mx_host_pattern=mx1.example.com "
      "mx_host_pattern=*.mx.example.com { policy_string = version: STSv1 } "
      "{ policy_string = mode: enforce } { policy_string = mx: mx1.example.com } "
      "{ policy_string = mx: *.mx.example.com } { policy_string = max_age: 86400 }", false, false },
    { "tlsrpt, no match: still TEMP", STATUS_ENFORCE, {"mx1.example.com"}, 1,
      {"mx2.example.com"}, true, SOCKMAP_TEMP, "TEMP no MX host", false, false },
    { "testing", STATUS_TESTING, {"mx1.example.com"}, 1, {"mx1.example.com"}, false,
      SOCKMAP_NOTFOUND, "NOTFOUND ", false, false },
    { "testing, tlsrpt", STATUS_TESTING, {"mx1.example.com"}, 1, {"mx1.example.com"}, true,
      SOCKMAP_NOTFOUND, "NOTFOUND ", false, false },
    { "none", STATUS_NONE, {NULL}, 0, {NULL}, false, SOCKMAP_NOTFOUND, "NOTFOUND ", false, false },
    { "absent", STATUS_ABSENT, {NULL}, 0, {NULL}, false, SOCKMAP_NOTFOUND, "NOTFOUND ", false, false },
    { "failed", STATUS_FAILED, {NULL}, 0, {NULL}, false, SOCKMAP_NOTFOUND, "NOTFOUND ", false, false },
    { "unknown", STATUS_UNKNOWN, {NULL}, 0, {NULL}, false, SOCKMAP_TEMP,
      "TEMP MTA-STS status of example.com unknown: SERVFAIL", false, false },
    /* map_unknown = notfound: only an unknown status changes (RFC 8461 §3.3);
     * a known enforce policy whose MX hosts fail or are unknown stays TEMP. */
    { "unknown, map_unknown = notfound", STATUS_UNKNOWN, {NULL}, 0, {NULL}, false,
      SOCKMAP_NOTFOUND, "NOTFOUND ", true, false },
    { "unknown, map_unknown = notfound, tlsrpt", STATUS_UNKNOWN, {NULL}, 0, {NULL}, true,
      SOCKMAP_NOTFOUND, "NOTFOUND ", true, false },
    { "enforce, MX unknown, map_unknown = notfound: TEMP", STATUS_ENFORCE,
      {"mx1.example.com"}, -1, {NULL}, false, SOCKMAP_TEMP,
      "TEMP MX hosts of example.com unknown: SERVFAIL", true, false },
    { "enforce, no MX matches, map_unknown = notfound: TEMP", STATUS_ENFORCE,
      {"mx1.example.com"}, 1, {"mx2.example.com"}, false, SOCKMAP_TEMP, "TEMP no MX host", true, false },
    { "enforce, map_unknown = notfound: OK", STATUS_ENFORCE, {"mx1.example.com"}, 1,
      {"mx1.example.com"}, false, SOCKMAP_OK,
      "OK secure match=mx1.example.com servername=hostname", true, false },
    /* DANE decides every MX host (danemap.h): Postfix's own DANE, RFC 8461 §2. */
    { "dane-only, enforce", STATUS_ENFORCE, {"mx1.example.com"}, 1, {"mx1.example.com"}, false,
      SOCKMAP_OK, "OK dane-only", false, true },
    { "dane-only, enforce, tlsrpt: no STS attributes", STATUS_ENFORCE, {"mx1.example.com"}, 1,
      {"mx1.example.com"}, true, SOCKMAP_OK, "OK dane-only", false, true },
    { "dane-only, absent", STATUS_ABSENT, {NULL}, 1, {"mx1.example.com"}, false, SOCKMAP_OK,
      "OK dane-only", false, true },
    { "dane-only, testing", STATUS_TESTING, {"mx1.example.com"}, 1, {"mx1.example.com"}, false,
      SOCKMAP_OK, "OK dane-only", false, true },
    { "dane-only, failed (RFC 8461 §3.3)", STATUS_FAILED, {NULL}, 1, {"mx1.example.com"}, false,
      SOCKMAP_OK, "OK dane-only", false, true },
    { "dane-only never for an unknown status", STATUS_UNKNOWN, {NULL}, 1, {"mx1.example.com"},
      false, SOCKMAP_TEMP, "TEMP MTA-STS status of example.com unknown", false, true },
};

static void
run_answer_case(void **state)
{
    const struct answer_case *c = *state;
    struct status_result res;
    struct sockmap_answer_in in;
    char (*mx)[254] = unit_alloc(MAXL * 254);
    char *out = unit_alloc(SOCKMAP_MAX_REPLY + 1);
    char *pats[MAXL];
    size_t np = 0;
    enum sockmap_reply got;

    memset(&res, 0, sizeof(res));
    res.status = c->status;
    snprintf(res.domain, sizeof(res.domain), "example.com");
    snprintf(res.error, sizeof(res.error), "SERVFAIL");
    res.has_policy = c->status <= STATUS_NONE;
    res.mode = c->status == STATUS_ENFORCE ? POLICY_MODE_ENFORCE :
               c->status == STATUS_TESTING ? POLICY_MODE_TESTING : POLICY_MODE_NONE;
    res.max_age = 86400;
    for (; np < MAXL && c->pats[np] != NULL; np++)
        pats[np] = (char *)c->pats[np];
    res.mx = pats;
    res.n_mx = np;
    for (int i = 0; i < c->n_mx; i++)
        snprintf(mx[i], 254, "%s", c->mx[i]);
    memset(&in, 0, sizeof(in));
    in.res = &res;
    in.mx = (const char (*)[254])mx;
    in.n_mx = c->n_mx;
    in.mx_error = "SERVFAIL";
    in.tlsrpt = c->tlsrpt;
    in.unknown_notfound = c->unknown_notfound;
    in.dane_only = c->dane_only;
    got = sockmap_answer(&in, out, SOCKMAP_MAX_REPLY + 1);
    if (got != c->kind)
        fail_msg("answer %s \"%s\", want %s", sockmap_reply_name(got), out,
                 sockmap_reply_name(c->kind));
    if (c->kind == SOCKMAP_TEMP) {
        if (strncmp(out, c->want, strlen(c->want)) != 0)
            fail_msg("answer \"%s\" does not begin with \"%s\"", out, c->want);
    } else {
        assert_string_equal(out, c->want);
    }
}

static void
test_answer_too_big(void **state)
{
    struct status_result res;
    struct sockmap_answer_in in;
    char mx[1][254] = {"mx1.example.com"};
    char *pats[1] = {"mx1.example.com"};
    char out[80];

    (void)state;
    memset(&res, 0, sizeof(res));
    res.status = STATUS_ENFORCE;
    snprintf(res.domain, sizeof(res.domain), "example.com");
    res.mx = pats;
    res.n_mx = 1;
    memset(&in, 0, sizeof(in));
    in.res = &res;
    in.mx = (const char (*)[254])mx;
    in.n_mx = 1;
    in.tlsrpt = true;
    assert_int_equal(sockmap_answer(&in, out, sizeof(out)), SOCKMAP_TEMP);
    assert_true(strncmp(out, "TEMP the policy answer for example.com exceeds", 46) == 0);
}

static void
test_reply_text(void **state)
{
    char out[24];

    (void)state;
    sockmap_reply_text(SOCKMAP_TEMP, "a\r\nb\tc", out, sizeof(out));
    assert_string_equal(out, "TEMP a??b?c");
    sockmap_reply_text(SOCKMAP_PERM, "a reason that is far too long", out, sizeof(out));
    assert_string_equal(out, "PERM a reason that is f");
}

/* ------------------------------------------------------------ main */

#define N_SINGLES 3
#define N_TESTS (N_ROWS(netstring_cases) + N_ROWS(split_cases) + N_ROWS(key_cases) + \
                 N_ROWS(answer_cases) + N_SINGLES)

static struct CMUnitTest socketmap_tests[N_TESTS];
static char test_names[N_TESTS][UNIT_NAME_MAX];

int
main(void)
{
    struct unit_list list = { socketmap_tests, test_names, N_TESTS, 0, NULL };
    const struct CMUnitTest singles[N_SINGLES] = {
        cmocka_unit_test(test_encode),
        cmocka_unit_test(test_answer_too_big),
        cmocka_unit_test(test_reply_text),
    };

    UNIT_ADD_TABLE(&list, "netstring", netstring_cases, run_netstring_case);
    UNIT_ADD_TABLE(&list, "split", split_cases, run_split_case);
    UNIT_ADD_TABLE(&list, "key", key_cases, run_key_case);
    UNIT_ADD_TABLE(&list, "answer", answer_cases, run_answer_case);
    unit_add_singles(&list, singles, N_SINGLES);
    if (list.n != N_TESTS) {
        fprintf(stderr, "test_socketmap: %zu tests registered, %zu expected\n", list.n,
                (size_t)N_TESTS);
        return 2;
    }
    return cmocka_run_group_tests(socketmap_tests, NULL, NULL);
}
