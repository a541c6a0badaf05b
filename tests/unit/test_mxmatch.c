/*
 * test_mxmatch - unit tests for common/mxmatch.c (RFC 8461 §4.1).
 *
 * Three tables, one cmocka test per row:
 *	pattern_cases	mxmatch_pattern_check: which mx patterns are valid
 *			(wildcard placement, labels, length limits, IP
 *			addresses, U-labels, explicit lengths)
 *	normalize_cases	mxmatch_host_normalize: MX names as DNS gives them
 *			(case, one trailing dot, output buffer size)
 *	match_cases	mxmatch_match: the wildcard is exactly one left-most
 *			label; case and a trailing dot on the host are ignored
 * "{N}" in an input is N letters 'a' (see unit.h).
 */
#include "unit.h"

#include <stdbool.h>

#include "mxmatch.h"

/* ---------------------------------------------------------- pattern check */

struct pattern_case {
    const char *label;
    struct unit_bytes pattern;
    bool valid;
};

static const struct pattern_case pattern_cases[] = {
    { "host name", BYTES("mail.example.com"), true },
    { "wildcard", BYTES("*.example.com"), true },
    { "wildcard over a one-label name", BYTES("*.com"), true },
    { "single label", BYTES("localhost"), true },
    { "upper case", BYTES("MAIL.Example.COM"), true },
    { "A-label", BYTES("xn--bcher-kva.example"), true },
    { "hyphen inside a label", BYTES("mail-1.example.com"), true },
    { "numeric labels before the last", BYTES("1.2.3.example"), true },
    { "last label with digits and a letter", BYTES("mail.example.1a"), true },
    { "one-letter labels", BYTES("a.b.c"), true },
    { "label of 63", BYTES("{63}.example.com"), true },
    { "name of 253", BYTES("{63}.{63}.{63}.{61}"), true },
    { "length stops before the dot", { "mail.example.com", 4 }, true },

    { "empty", BYTES(""), false },
    { "lone dot", BYTES("."), false },
    { "empty label", BYTES("a..b"), false },
    { "leading dot", BYTES(".example.com"), false },
    { "lone star", BYTES("*"), false },
    { "star dot", BYTES("*."), false },
    { "star in the middle", BYTES("a.*.b"), false },
    { "double star", BYTES("**.a.com"), false },
    { "two wildcard labels", BYTES("*.*.example.com"), false },
    { "star inside a label", BYTES("*a.com"), false },
    { "star as last label", BYTES("foo.*"), false },
    { "trailing dot", BYTES("mail.example.com."), false },
    { "wildcard with trailing dot", BYTES("*.example.com."), false },
    { "label starts with hyphen", BYTES("-mail.example.com"), false },
    { "label ends with hyphen", BYTES("mail-.example.com"), false },
    { "last label ends with hyphen", BYTES("mail.example.com-"), false },
    { "underscore", BYTES("mail_1.example.com"), false },
    { "IPv4 address", BYTES("1.2.3.4"), false },
    { "all-numeric last label", BYTES("mail.example.123"), false },
    { "wildcard over an IP address", BYTES("*.2.3.4"), false },
    { "IPv6 address", BYTES("2001:db8::1"), false },
    { "port", BYTES("mail.example.com:25"), false },
    { "U-label (UTF-8 bytes)", BYTES("b\xc3\xbc" "cher.example"), false },
    { "space inside", BYTES("mail example.com"), false },
    { "NUL inside", BYTES("mail\0.example.com"), false },
    { "length includes a trailing NUL", BYTES("mail.example.com\0"), false },
    { "label of 64", BYTES("{64}.example.com"), false },
    { "name of 254", BYTES("{63}.{63}.{63}.{62}"), false },
    { "length stops after the dot", { "mail.example.com", 5 }, false },
    { "length stops after the star", { "*.example.com", 1 }, false },
};

static void
run_pattern_case(void **state)
{
    const struct pattern_case *c = *state;
    struct mts_err err;
    size_t len;
    char *pattern = unit_bytes_new(c->pattern, &len);
    int r;

    mts_err_clear(&err);
    r = mxmatch_pattern_check(pattern, len, &err);
    if (c->valid) {
        if (r != 0)
            fail_msg("rejected a valid pattern: %s", err.msg);
    } else {
        if (r != -1)
            fail_msg("accepted an invalid pattern (returned %d)", r);
        unit_assert_reason(&err, NULL);
    }
}

/* ------------------------------------------------------- host normalising */

#define NORMALIZE_OUT_DEFAULT (MXMATCH_NAME_MAX + 1)

struct normalize_case {
    const char *label;
    struct unit_bytes host;
    size_t outsz;  /* 0: NORMALIZE_OUT_DEFAULT */
    bool valid;
    const char *want;  /* the normalised name when valid */
};

static const struct normalize_case normalize_cases[] = {
    { "already normal", BYTES("mx1.example.com"), 0, true, "mx1.example.com" },
    { "lower-cases", BYTES("MX1.Example.COM"), 0, true, "mx1.example.com" },
    { "drops one trailing dot", BYTES("mx1.example.com."), 0, true, "mx1.example.com" },
    { "case and trailing dot", BYTES("MAIL.EXAMPLE.COM."), 0, true, "mail.example.com" },
    { "A-label lower-cased", BYTES("XN--BCHER-KVA.example"), 0, true,
      "xn--bcher-kva.example" },
    { "name of 253 plus trailing dot", BYTES("{63}.{63}.{63}.{61}."), 0, true,
      "{63}.{63}.{63}.{61}" },
    { "length stops before a dot", { "mx1.example.com", 3 }, 0, true, "mx1" },
    { "output exactly big enough", BYTES("mx1.example.com"), 16, true, "mx1.example.com" },

    { "output one byte short", BYTES("mx1.example.com"), 15, false, NULL },
    { "two trailing dots", BYTES("mx1.example.com.."), 0, false, NULL },
    { "empty", BYTES(""), 0, false, NULL },
    { "lone dot", BYTES("."), 0, false, NULL },
    { "empty label", BYTES("mx1..example.com"), 0, false, NULL },
    { "wildcard is not a host", BYTES("*.example.com"), 0, false, NULL },
    { "IPv4 address", BYTES("192.0.2.1"), 0, false, NULL },
    { "IPv4 address with trailing dot", BYTES("192.0.2.1."), 0, false, NULL },
    { "underscore", BYTES("mx_1.example.com"), 0, false, NULL },
    { "label starts with hyphen", BYTES("-mx.example.com"), 0, false, NULL },
    { "U-label (UTF-8 bytes)", BYTES("b\xc3\xbc" "cher.example"), 0, false, NULL },
    { "NUL inside", BYTES("mx1\0.example.com"), 0, false, NULL },
    { "label of 64", BYTES("{64}.example.com"), 0, false, NULL },
    { "name of 254", BYTES("{63}.{63}.{63}.{62}"), 0, false, NULL },
};

static void
run_normalize_case(void **state)
{
    const struct normalize_case *c = *state;
    size_t outsz = c->outsz != 0 ? c->outsz : NORMALIZE_OUT_DEFAULT;
    struct mts_err err;
    size_t len;
    char *host = unit_bytes_new(c->host, &len);
    char *out = unit_alloc(outsz); /* exactly outsz: overruns show under ASan */
    int r;

    mts_err_clear(&err);
    r = mxmatch_host_normalize(host, len, out, outsz, &err);
    if (c->valid) {
        if (r != 0)
            fail_msg("rejected a valid host: %s", err.msg);
        assert_string_equal(out, unit_str_new(c->want));
    } else {
        if (r != -1)
            fail_msg("accepted an invalid host (returned %d)", r);
        unit_assert_reason(&err, NULL);
    }
}

/* --------------------------------------------------------------- matching */

struct match_case {
    const char *label;
    const char *pattern;
    const char *host;
    bool want;
};

static const struct match_case match_cases[] = {
    { "same name", "mail.example.com", "mail.example.com", true },
    { "wildcard, one label", "*.example.com", "mx1.example.com", true },
    { "wildcard, long label", "*.example.com", "{63}.example.com", true },
    { "wildcard over a one-label name", "*.com", "example.com", true },
    { "host upper case", "mail.example.com", "MAIL.EXAMPLE.COM", true },
    { "pattern upper case", "MAIL.Example.COM", "mail.example.com", true },
    { "wildcard, both sides mixed case", "*.EXAMPLE.com", "MX1.example.COM", true },
    { "host trailing dot", "mail.example.com", "mail.example.com.", true },
    { "wildcard, host trailing dot", "*.example.com", "mx1.example.com.", true },
    { "A-labels compare as ASCII", "xn--bcher-kva.example", "XN--BCHER-KVA.example", true },

    { "wildcard needs a label", "*.example.com", "example.com", false },
    { "wildcard is one label only", "*.example.com", "a.b.example.com", false },
    { "wildcard is a whole label", "*.example.com", "xexample.com", false },
    { "wildcard, host with empty first label", "*.example.com", ".example.com", false },
    { "wildcard, host is the pattern", "*.example.com", "*.example.com", false },
    { "wildcard, invalid host label", "*.example.com", "mx_1.example.com", false },
    { "wildcard, host label of 64", "*.example.com", "{64}.example.com", false },
    { "wildcard, suffix then more", "*.example.com", "mx1.example.com.evil", false },
    { "name does not match a subdomain", "example.com", "mail.example.com", false },
    { "host is a suffix-extended name", "mail.example.com", "xmail.example.com", false },
    { "host is a prefix", "mail.example.com", "mail.example.co", false },
    { "other domain", "mail.example.com", "mail.example.org", false },
    { "host two trailing dots", "mail.example.com", "mail.example.com..", false },
    { "empty host", "mail.example.com", "", false },
    { "U-label host is not converted", "xn--bcher-kva.example",
      "b\xc3\xbc" "cher.example", false },
};

static void
run_match_case(void **state)
{
    const struct match_case *c = *state;
    char *pattern = unit_str_new(c->pattern);
    char *host = unit_str_new(c->host);
    bool got;

    /* The contract: pattern has passed the check. Make sure the row obeys. */
    assert_int_equal(mxmatch_pattern_check(pattern, strlen(pattern), NULL), 0);
    got = mxmatch_match(pattern, host);
    if (got != c->want)
        fail_msg("mxmatch_match returned %s, want %s", got ? "true" : "false",
                 c->want ? "true" : "false");
}

/* ------------------------------------------------------------------- main */

#define N_TESTS (N_ROWS(pattern_cases) + N_ROWS(normalize_cases) + N_ROWS(match_cases))

static struct CMUnitTest mxmatch_tests[N_TESTS];
static char test_names[N_TESTS][UNIT_NAME_MAX];

int
main(void)
{
    struct unit_list list = { mxmatch_tests, test_names, N_TESTS, 0, NULL };

    UNIT_ADD_TABLE(&list, "pattern", pattern_cases, run_pattern_case);
    UNIT_ADD_TABLE(&list, "normalize", normalize_cases, run_normalize_case);
    UNIT_ADD_TABLE(&list, "match", match_cases, run_match_case);
    if (list.n != N_TESTS) {
        fprintf(stderr, "test_mxmatch: %zu tests registered, %zu expected\n", list.n,
                (size_t)N_TESTS);
        return 2;
    }
    return cmocka_run_group_tests(mxmatch_tests, NULL, NULL);
}
