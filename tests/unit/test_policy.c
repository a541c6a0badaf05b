/*
 * test_policy - unit tests for common/policy.c (RFC 8461 §3.1 and §3.2).
 *
 * Tables, one cmocka test per row:
 *	txt_cases	policy_txt_parse: the _mta-sts TXT record grammar
 *	is_sts_cases	policy_txt_is_sts: which records claim to be STSv1
 *	select_cases	policy_txt_select: discard non-STS records, then
 *			exactly one must be left and valid
 *	rdata_cases	policy_txt_from_rdata: character-strings joined
 *	policy_cases	policy_parse and policy_free: the policy text
 *	mode_cases,
 *	bad_mode_cases	policy_mode_name and policy_mode_from_name
 *	allows_cases	policy_mx_allows on a parsed policy
 * and single tests for the size limits (POLICY_TXT_MAX_BYTES,
 * POLICY_MAX_BYTES, POLICY_MAX_MX), built from the constants.
 * The choices tested are those documented in common/policy.h.
 * "{N}" in an input is N letters 'a' (see unit.h).
 */
#include "unit.h"

#include <stdbool.h>

#include "policy.h"

/* -------------------------------------------------------------- TXT parse */

struct txt_case {
    const char *label;
    struct unit_bytes record;
    bool valid;
    const char *id;  /* the id when valid */
};

#define TXT_OK(label_, record_, id_) { (label_), BYTES(record_), true, (id_) }
#define TXT_BAD(label_, record_) { (label_), BYTES(record_), false, NULL }

static const struct txt_case txt_cases[] = {
    TXT_OK("RFC example", "v=STSv1; id=20160831085700Z;", "20160831085700Z"),
    TXT_OK("no spaces, no trailing delimiter", "v=STSv1;id=20160831085700Z",
           "20160831085700Z"),
    TXT_OK("WSP before the delimiter", "v=STSv1 ;id=abc", "abc"),
    TXT_OK("tabs around the delimiter", "v=STSv1\t;\tid=abc", "abc"),
    TXT_OK("trailing delimiter", "v=STSv1;id=abc;", "abc"),
    TXT_OK("trailing delimiter with WSP", "v=STSv1; id=abc ; ", "abc"),
    TXT_OK("id of 1 character", "v=STSv1; id=a", "a"),
    TXT_OK("id of 32 characters", "v=STSv1; id={32}", "{32}"),
    TXT_OK("unknown extension after id", "v=STSv1; id=abc; ext=value", "abc"),
    TXT_OK("unknown extension before id", "v=STSv1; ext_1.a-b=x!y; id=abc", "abc"),
    TXT_OK("extension name of 32", "v=STSv1; id=abc; {32}=v", "abc"),
    TXT_OK("duplicate id, first wins", "v=STSv1; id=first; id=second", "first"),
    { "length stops before a bad byte", { "v=STSv1; id=abc\x01", 15 }, true, "abc" },

    TXT_BAD("empty record", ""),
    TXT_BAD("version only", "v=STSv1"),
    TXT_BAD("version and delimiter only", "v=STSv1;"),
    TXT_BAD("missing id, extension only", "v=STSv1; ext=1"),
    TXT_BAD("empty id", "v=STSv1; id="),
    TXT_BAD("id of 33 characters", "v=STSv1; id={33}"),
    TXT_BAD("id with a hyphen", "v=STSv1; id=2016-08-31"),
    TXT_BAD("id with an underscore", "v=STSv1; id=abc_def"),
    TXT_BAD("id with a space inside", "v=STSv1; id=abc def"),
    TXT_BAD("upper-case ID key", "v=STSv1; ID=abc"),
    TXT_BAD("empty field", "v=STSv1;;id=abc"),
    TXT_BAD("empty field between spaces", "v=STSv1; ; id=abc"),
    TXT_BAD("two trailing delimiters", "v=STSv1; id=abc;;"),
    TXT_BAD("no delimiter after version", "v=STSv1 id=abc"),
    TXT_BAD("version not first", "id=abc; v=STSv1"),
    TXT_BAD("leading space", " v=STSv1; id=abc"),
    TXT_BAD("version STSv10", "v=STSv10; id=abc"),
    TXT_BAD("extension without '='", "v=STSv1; id=abc; ext"),
    TXT_BAD("extension with empty value", "v=STSv1; id=abc; ext="),
    TXT_BAD("extension name starts with '_'", "v=STSv1; id=abc; _ext=1"),
    TXT_BAD("extension name of 33", "v=STSv1; id=abc; {33}=v"),
    TXT_BAD("extension value with '='", "v=STSv1; id=abc; ext=a=b"),
    TXT_BAD("extension value with a space", "v=STSv1; id=abc; ext=a b"),
    TXT_BAD("duplicate id, second empty", "v=STSv1; id=first; id="),
    TXT_BAD("duplicate id, second not alphanumeric", "v=STSv1; id=first; id=a-b"),
    /* Not in the ABNF, but unambiguous: tolerated (policy.h). */
    TXT_OK("trailing WSP without a delimiter", "v=STSv1; id=abc ", "abc"),
    TXT_OK("trailing tab after the last field", "v=STSv1; id=abc\t", "abc"),
    TXT_BAD("non-ASCII byte", "v=STSv1; id=abc; ext=caf\xc3\xa9"),
    TXT_BAD("control character", "v=STSv1; id=abc\x01"),
    TXT_BAD("DEL byte", "v=STSv1; id=abc; ext=a\x7f"),
    TXT_BAD("NUL at the end", "v=STSv1; id=abc\0"),
    TXT_BAD("NUL inside the id", "v=STSv1; id=ab\0c"),
};

/* Parses the record in c and checks the result against valid/id. */
static void
check_txt_parse(struct unit_bytes record, bool valid, const char *want_id)
{
    struct policy_txt out;
    struct mts_err err;
    size_t len;
    char *rec = unit_bytes_new(record, &len);
    int r;

    mts_err_clear(&err);
    memset(&out, 0, sizeof(out));
    r = policy_txt_parse(rec, len, &out, &err);
    if (valid) {
        if (r != 0)
            fail_msg("rejected a valid record: %s", err.msg);
        assert_string_equal(out.id, unit_str_new(want_id));
    } else {
        if (r != -1)
            fail_msg("accepted an invalid record (returned %d, id \"%s\")", r, out.id);
        unit_assert_reason(&err, NULL);
    }
}

static void
run_txt_case(void **state)
{
    const struct txt_case *c = *state;

    check_txt_parse(c->record, c->valid, c->id);
}

/* ---------------------------------------------------------- TXT is_sts */

struct is_sts_case {
    const char *label;
    struct unit_bytes record;
    bool want;
};

static const struct is_sts_case is_sts_cases[] = {
    { "RFC example", BYTES("v=STSv1; id=20160831085700Z;"), true },
    { "version alone", BYTES("v=STSv1"), true },
    { "version then space", BYTES("v=STSv1 ;id=abc"), true },
    { "version then tab", BYTES("v=STSv1\t;id=abc"), true },
    { "invalid record still claims STSv1", BYTES("v=STSv1;;"), true },
    { "STSv10", BYTES("v=STSv10;id=x"), false },
    { "upper-case V", BYTES("V=STSv1;id=x"), false },
    { "lower-case version", BYTES("v=stsv1;id=x"), false },
    { "version then comma", BYTES("v=STSv1,id=x"), false },
    { "leading space", BYTES(" v=STSv1;id=x"), false },
    { "version not first", BYTES("id=x; v=STSv1"), false },
    { "SPF record", BYTES("v=spf1 -all"), false },
    { "empty record", BYTES(""), false },
    { "truncated version", { "v=STSv1;", 6 }, false },
};

static void
run_is_sts_case(void **state)
{
    const struct is_sts_case *c = *state;
    size_t len;
    char *rec = unit_bytes_new(c->record, &len);
    bool got = policy_txt_is_sts(rec, len);

    if (got != c->want)
        fail_msg("policy_txt_is_sts returned %s, want %s", got ? "true" : "false",
                 c->want ? "true" : "false");
}

/* ---------------------------------------------------------- TXT select */

#define SELECT_MAX_RECORDS 4

struct select_case {
    const char *label;
    size_t n;
    struct unit_bytes records[SELECT_MAX_RECORDS];
    enum policy_txt_result want;
    const char *id;  /* the id when POLICY_TXT_OK */
};

#define SPF BYTES("v=spf1 -all")
#define STS_ABC BYTES("v=STSv1; id=abc")
#define STS_DEF BYTES("v=STSv1; id=def")
#define STS_BROKEN BYTES("v=STSv1; id=")

static const struct select_case select_cases[] = {
    { "no records", 0, { { NULL, 0 } }, POLICY_TXT_NONE, NULL },
    { "only SPF", 1, { SPF }, POLICY_TXT_NONE, NULL },
    { "only upper-case V", 1, { BYTES("V=STSv1; id=abc") }, POLICY_TXT_NONE, NULL },
    { "only STSv10", 1, { BYTES("v=STSv10;id=x") }, POLICY_TXT_NONE, NULL },
    { "one valid", 1, { STS_ABC }, POLICY_TXT_OK, "abc" },
    { "valid among others", 3, { SPF, STS_ABC, BYTES("site-verification=xyz") },
      POLICY_TXT_OK, "abc" },
    { "valid beside STSv10", 2, { BYTES("v=STSv10;id=x"), STS_DEF }, POLICY_TXT_OK, "def" },
    { "WSP before the delimiter", 1, { BYTES("v=STSv1 ;id=abc") }, POLICY_TXT_OK, "abc" },
    { "two valid", 2, { STS_ABC, STS_DEF }, POLICY_TXT_MULTIPLE, NULL },
    { "two identical", 2, { STS_ABC, STS_ABC }, POLICY_TXT_MULTIPLE, NULL },
    { "valid and invalid", 3, { STS_ABC, SPF, STS_BROKEN }, POLICY_TXT_MULTIPLE, NULL },
    { "one invalid", 1, { STS_BROKEN }, POLICY_TXT_INVALID, NULL },
    { "one invalid beside SPF", 2, { SPF, BYTES("v=STSv1;;id=abc") }, POLICY_TXT_INVALID,
      NULL },
};

static const char *
txt_result_name(enum policy_txt_result r)
{
    switch (r) {
    case POLICY_TXT_OK:
        return "POLICY_TXT_OK";
    case POLICY_TXT_NONE:
        return "POLICY_TXT_NONE";
    case POLICY_TXT_MULTIPLE:
        return "POLICY_TXT_MULTIPLE";
    case POLICY_TXT_INVALID:
        return "POLICY_TXT_INVALID";
    }
    return "(not a policy_txt_result)";
}

/* Runs policy_txt_select over n records and checks result and id. */
static void
check_txt_select(const struct unit_bytes *records, size_t n, enum policy_txt_result want,
                 const char *want_id)
{
    struct policy_txt_input inputs[SELECT_MAX_RECORDS + 1];
    struct policy_txt out;
    struct mts_err err;
    enum policy_txt_result got;

    assert_true(n <= SELECT_MAX_RECORDS);
    for (size_t i = 0; i < n; i++)
        inputs[i].data = unit_bytes_new(records[i], &inputs[i].len);
    mts_err_clear(&err);
    memset(&out, 0, sizeof(out));
    got = policy_txt_select(inputs, n, &out, &err);
    if (got != want)
        fail_msg("policy_txt_select returned %s, want %s (reason: \"%s\")",
                 txt_result_name(got), txt_result_name(want), err.msg);
    if (want == POLICY_TXT_OK)
        assert_string_equal(out.id, want_id);
    else
        unit_assert_reason(&err, NULL);
}

static void
run_select_case(void **state)
{
    const struct select_case *c = *state;

    check_txt_select(c->records, c->n, c->want, c->id);
}

/* ----------------------------------------------------------- TXT RDATA */

#define RDATA_OUT_DEFAULT (POLICY_TXT_MAX_BYTES + 1)

struct rdata_case {
    const char *label;
    struct unit_bytes rdata;
    size_t outsz;  /* 0: RDATA_OUT_DEFAULT */
    bool valid;
    struct unit_bytes want;  /* the joined strings when valid */
};

static const struct rdata_case rdata_cases[] = {
    { "one string", BYTES("\x05hello"), 0, true, BYTES("hello") },
    { "two strings joined without space", BYTES("\x07v=STSv1\x08; id=abc"), 0, true,
      BYTES("v=STSv1; id=abc") },
    { "zero-length string between", BYTES("\x03" "abc" "\x00" "\x03" "def"), 0, true,
      BYTES("abcdef") },
    { "one zero-length string", BYTES("\x00"), 0, true, BYTES("") },
    { "string of 255 bytes", BYTES("\xff{255}"), 0, true, BYTES("{255}") },
    { "bytes copied as they are", BYTES("\x03" "a\0\xe9"), 0, true, BYTES("a\0\xe9") },
    { "output exactly big enough", BYTES("\x05hello"), 6, true, BYTES("hello") },

    { "empty RDATA (RFC 1035: one or more strings)", BYTES(""), 0, false, BYTES("") },
    { "string runs past the end", BYTES("\x05" "abc"), 0, false, BYTES("") },
    { "length byte alone", BYTES("\x01"), 0, false, BYTES("") },
    { "second string runs past the end", BYTES("\x03" "abc" "\x04" "de"), 0, false,
      BYTES("") },
    { "output one byte short", BYTES("\x05hello"), 5, false, BYTES("") },
    { "two strings, output one byte short", BYTES("\x03" "abc" "\x03" "def"), 6, false,
      BYTES("") },
};

static void
run_rdata_case(void **state)
{
    const struct rdata_case *c = *state;
    size_t outsz = c->outsz != 0 ? c->outsz : RDATA_OUT_DEFAULT;
    size_t len, want_len, outlen = SIZE_MAX;
    char *rdata = unit_bytes_new(c->rdata, &len);
    char *out = unit_alloc(outsz); /* exactly outsz: overruns show under ASan */
    struct mts_err err;
    int r;

    mts_err_clear(&err);
    r = policy_txt_from_rdata((const unsigned char *)rdata, len, out, outsz, &outlen, &err);
    if (c->valid) {
        char *want = unit_bytes_new(c->want, &want_len);

        if (r != 0)
            fail_msg("rejected valid RDATA: %s", err.msg);
        assert_int_equal(outlen, want_len);
        assert_memory_equal(out, want, want_len);
        assert_int_equal(out[outlen], '\0');
    } else {
        if (r != -1)
            fail_msg("accepted bad RDATA (returned %d)", r);
        unit_assert_reason(&err, NULL);
    }
}

/* ---------------------------------------------------------- policy text */

#define MX_WANT_MAX 4

struct policy_case {
    const char *label;
    struct unit_bytes text;
    bool valid;
    enum policy_mode mode;  /* when valid */
    uint32_t max_age;  /* when valid */
    const char *mx[MX_WANT_MAX + 1]; /* when valid: the patterns, NULL-ended */
    const char *reason;  /* when invalid: what the reason must mention */
};

#define POLICY_OK(label_, text_, mode_, max_age_, ...)                        \
    { .label = (label_), .text = BYTES(text_), .valid = true, .mode = (mode_), \
      .max_age = (max_age_), .mx = { __VA_ARGS__ } }
#define POLICY_BAD(label_, text_, reason_)                                    \
    { .label = (label_), .text = BYTES(text_), .valid = false, .reason = (reason_) }

#define VERSION "version: STSv1\n"
#define ENFORCE "mode: enforce\n"
#define TESTING "mode: testing\n"
#define NONE "mode: none\n"
#define MX_MAIL "mx: mail.example.com\n"
#define MAX_AGE "max_age: 86400\n"
#define BASE VERSION ENFORCE MX_MAIL MAX_AGE

#define RFC_POLICY(eol)                                                        \
    "version: STSv1" eol "mode: enforce" eol "mx: mail.example.com" eol          \
    "mx: *.example.net" eol "mx: backupmx.example.com" eol "max_age: 604800" eol
#define RFC_MX "mail.example.com", "*.example.net", "backupmx.example.com"

#define ENF POLICY_MODE_ENFORCE
#define DAY 86400

static const struct policy_case policy_cases[] = {
    POLICY_OK("RFC example, CRLF", RFC_POLICY("\r\n"), ENF, 604800, RFC_MX),
    POLICY_OK("RFC example, LF", RFC_POLICY("\n"), ENF, 604800, RFC_MX),
    POLICY_OK("mixed line ends",
              "version: STSv1\r\nmode: enforce\nmx: mail.example.com\r\nmax_age: 86400\n",
              ENF, DAY, "mail.example.com"),
    POLICY_OK("no final LF", VERSION ENFORCE MX_MAIL "max_age: 86400", ENF, DAY,
              "mail.example.com"),
    POLICY_OK("no final CRLF",
              "version: STSv1\r\nmode: enforce\r\nmx: mail.example.com\r\nmax_age: 86400",
              ENF, DAY, "mail.example.com"),
    POLICY_OK("mode testing", VERSION TESTING MX_MAIL MAX_AGE, POLICY_MODE_TESTING, DAY,
              "mail.example.com"),
    POLICY_OK("mode none without mx", VERSION NONE MAX_AGE, POLICY_MODE_NONE, DAY, NULL),
    POLICY_OK("mode none with mx", VERSION NONE MX_MAIL MAX_AGE, POLICY_MODE_NONE, DAY,
              "mail.example.com"),
    POLICY_OK("fields in another order", MAX_AGE MX_MAIL ENFORCE VERSION, ENF, DAY,
              "mail.example.com"),
    POLICY_OK("max_age 0", VERSION ENFORCE MX_MAIL "max_age: 0\n", ENF, 0,
              "mail.example.com"),
    POLICY_OK("max_age 31557600", VERSION ENFORCE MX_MAIL "max_age: 31557600\n", ENF,
              31557600, "mail.example.com"),
    POLICY_OK("max_age of 10 digits", VERSION ENFORCE MX_MAIL "max_age: 0000086400\n", ENF,
              DAY, "mail.example.com"),
    POLICY_OK("no space after colon", VERSION "mode:enforce\n" MX_MAIL "max_age:86400\n",
              ENF, DAY, "mail.example.com"),
    POLICY_OK("spaces and tabs after colon",
              VERSION "mode: \t enforce\n" MX_MAIL "max_age:\t\t86400\n", ENF, DAY,
              "mail.example.com"),
    POLICY_OK("trailing whitespace",
              "version: STSv1 \t\nmode: enforce  \nmx: mail.example.com\t\nmax_age: 86400 \n",
              ENF, DAY, "mail.example.com"),
    POLICY_OK("trailing whitespace, no final line end",
              VERSION ENFORCE MX_MAIL "max_age: 86400 \t", ENF, DAY, "mail.example.com"),
    POLICY_OK("unknown key ignored", BASE "foo: bar\n", ENF, DAY, "mail.example.com"),
    POLICY_OK("unknown key first", "foo: bar\n" BASE, ENF, DAY, "mail.example.com"),
    POLICY_OK("unknown key with . - _", BASE "x-ext_1.a: v\n", ENF, DAY,
              "mail.example.com"),
    POLICY_OK("unknown value with inner WSP", BASE "note: a b\tc\n", ENF, DAY,
              "mail.example.com"),
    POLICY_OK("UTF-8 in an unknown value", BASE "note: caf\xc3\xa9 \xf0\x9f\x93\xa7\n", ENF,
              DAY, "mail.example.com"),
    POLICY_OK("repeated mode, first wins", VERSION TESTING ENFORCE MX_MAIL MAX_AGE,
              POLICY_MODE_TESTING, DAY, "mail.example.com"),
    POLICY_OK("repeated mode, first (none) waives mx", VERSION NONE ENFORCE MAX_AGE,
              POLICY_MODE_NONE, DAY, NULL),
    POLICY_OK("repeated max_age, first wins", BASE "max_age: 100\n", ENF, DAY,
              "mail.example.com"),
    POLICY_OK("repeated version", BASE VERSION, ENF, DAY, "mail.example.com"),
    /* A later duplicate is ignored whatever its value (policy.h, §3.2). */
    POLICY_OK("repeated mode, later value invalid", BASE "mode: bogus\n", ENF, DAY,
              "mail.example.com"),
    POLICY_OK("repeated max_age, later out of range", BASE "max_age: 99999999999\n", ENF,
              DAY, "mail.example.com"),
    /* "Mode" is an unknown key: it neither sets nor overrides the mode. */
    POLICY_OK("Mode beside mode is ignored", BASE "Mode: testing\n", ENF, DAY,
              "mail.example.com"),
    POLICY_OK("repeated mx accumulate",
              VERSION ENFORCE MX_MAIL "mx: *.example.net\nmx: backupmx.example.com\n" MAX_AGE,
              ENF, DAY, RFC_MX),
    POLICY_OK("mx lower-cased", VERSION ENFORCE "mx: MAIL.Example.COM\n" MAX_AGE, ENF, DAY,
              "mail.example.com"),
    POLICY_OK("mx A-label", VERSION ENFORCE "mx: xn--bcher-kva.example\n" MAX_AGE, ENF, DAY,
              "xn--bcher-kva.example"),

    /* Required fields. */
    POLICY_BAD("empty input", "", NULL),
    POLICY_BAD("only a line end", "\n", NULL),
    POLICY_BAD("missing version", ENFORCE MX_MAIL MAX_AGE, "version"),
    POLICY_BAD("missing mode", VERSION MX_MAIL MAX_AGE, "mode"),
    POLICY_BAD("missing max_age", VERSION ENFORCE MX_MAIL, "max_age"),
    POLICY_BAD("missing mx, mode enforce", VERSION ENFORCE MAX_AGE, "mx"),
    POLICY_BAD("missing mx, mode testing", VERSION TESTING MAX_AGE, "mx"),
    /* Keys and values are case-sensitive. */
    POLICY_BAD("key Version", "Version: STSv1\n" ENFORCE MX_MAIL MAX_AGE, "version"),
    POLICY_BAD("key Mode", VERSION "Mode: enforce\n" MX_MAIL MAX_AGE, "mode"),
    POLICY_BAD("key MAX_AGE", VERSION ENFORCE MX_MAIL "MAX_AGE: 86400\n", "max_age"),
    POLICY_BAD("key MX", VERSION ENFORCE "MX: mail.example.com\n" MAX_AGE, "mx"),
    POLICY_BAD("version STSv2", "version: STSv2\n" ENFORCE MX_MAIL MAX_AGE, NULL),
    POLICY_BAD("version stsv1", "version: stsv1\n" ENFORCE MX_MAIL MAX_AGE, NULL),
    POLICY_BAD("mode Enforce", VERSION "mode: Enforce\n" MX_MAIL MAX_AGE, NULL),
    POLICY_BAD("mode unknown", VERSION "mode: report\n" MX_MAIL MAX_AGE, NULL),
    POLICY_BAD("mode with a second word", VERSION "mode: enforce now\n" MX_MAIL MAX_AGE, NULL),
    /* max_age. */
    POLICY_BAD("max_age 31557601", VERSION ENFORCE MX_MAIL "max_age: 31557601\n", "max_age"),
    POLICY_BAD("max_age 2^32 + 1", VERSION ENFORCE MX_MAIL "max_age: 4294967297\n", NULL),
    POLICY_BAD("max_age of 11 digits", VERSION ENFORCE MX_MAIL "max_age: 00000086400\n", NULL),
    POLICY_BAD("max_age with '+'", VERSION ENFORCE MX_MAIL "max_age: +86400\n", NULL),
    POLICY_BAD("max_age negative", VERSION ENFORCE MX_MAIL "max_age: -1\n", NULL),
    POLICY_BAD("max_age with a unit", VERSION ENFORCE MX_MAIL "max_age: 86400s\n", NULL),
    POLICY_BAD("max_age with a space inside", VERSION ENFORCE MX_MAIL "max_age: 86 400\n", NULL),
    POLICY_BAD("max_age in hex", VERSION ENFORCE MX_MAIL "max_age: 0x10\n", NULL),
    /* Line syntax. */
    POLICY_BAD("space before colon", VERSION "mode : enforce\n" MX_MAIL MAX_AGE, "line 2"),
    POLICY_BAD("tab before colon", VERSION ENFORCE MX_MAIL "max_age\t: 86400\n", NULL),
    POLICY_BAD("space inside a key", VERSION ENFORCE MX_MAIL "max age: 86400\n", NULL),
    POLICY_BAD("leading space", VERSION " mode: enforce\n" MX_MAIL MAX_AGE, NULL),
    POLICY_BAD("leading tab", VERSION ENFORCE "\tmx: mail.example.com\n" MAX_AGE, NULL),
    POLICY_BAD("line without colon", VERSION ENFORCE "mx mail.example.com\n" MAX_AGE, "line 3"),
    POLICY_BAD("empty key", BASE ": bar\n", NULL),
    POLICY_BAD("blank line in the middle", VERSION ENFORCE "\n" MX_MAIL MAX_AGE, "line 3"),
    POLICY_BAD("blank CRLF line in the middle",
               "version: STSv1\r\n\r\nmode: enforce\r\nmx: mail.example.com\r\n"
               "max_age: 86400\r\n", NULL),
    POLICY_BAD("blank line at the end", BASE "\n", NULL),
    POLICY_BAD("blank CRLF line at the end", RFC_POLICY("\r\n") "\r\n", NULL),
    POLICY_BAD("line of spaces", VERSION ENFORCE "   \n" MX_MAIL MAX_AGE, NULL),
    POLICY_BAD("bare CR between lines", "version: STSv1\rmode: enforce\n" MX_MAIL MAX_AGE, NULL),
    POLICY_BAD("bare CR at the end", VERSION ENFORCE MX_MAIL "max_age: 86400\r", NULL),
    POLICY_BAD("CR CR LF", "version: STSv1\r\r\n" ENFORCE MX_MAIL MAX_AGE, NULL),
    POLICY_BAD("CR inside a value", BASE "note: a\rb\n", NULL),
    /* Empty values. */
    POLICY_BAD("empty unknown value", BASE "note:\n", NULL),
    POLICY_BAD("value of only WSP", BASE "note: \t \n", NULL),
    POLICY_BAD("empty mode", VERSION "mode:\n" MX_MAIL MAX_AGE, NULL),
    POLICY_BAD("empty mx beside a valid one", VERSION ENFORCE "mx:\n" MX_MAIL MAX_AGE, NULL),
    POLICY_BAD("empty max_age", VERSION ENFORCE MX_MAIL "max_age: \n", NULL),
    POLICY_BAD("repeated mode, later empty", BASE "mode:\n", NULL),
    /* mx patterns. */
    POLICY_BAD("mx IP address", VERSION ENFORCE "mx: 192.0.2.1\n" MAX_AGE, NULL),
    POLICY_BAD("mx trailing dot", VERSION ENFORCE "mx: mail.example.com.\n" MAX_AGE, NULL),
    POLICY_BAD("mx two wildcards", VERSION ENFORCE "mx: *.*.example.com\n" MAX_AGE, NULL),
    POLICY_BAD("mx with two names",
               VERSION ENFORCE "mx: mail.example.com backup.example.com\n" MAX_AGE, NULL),
    POLICY_BAD("invalid mx, mode none", VERSION NONE "mx: 192.0.2.1\n" MAX_AGE, NULL),
    /* Bytes: non-ASCII, UTF-8, controls. */
    POLICY_BAD("mx U-label", VERSION ENFORCE "mx: m\xc3\xa4il.example.com\n" MAX_AGE, NULL),
    POLICY_BAD("UTF-8 in a key", BASE "c\xc3\xb6mment: x\n", NULL),
    POLICY_BAD("UTF-8 in the mode value", VERSION "mode: enforce\xc2\xa0\n" MX_MAIL MAX_AGE,
               NULL),
    POLICY_BAD("NUL in an unknown value", BASE "note: a\0b\n", NULL),
    POLICY_BAD("NUL after the mode value", VERSION "mode: enforce\0\n" MX_MAIL MAX_AGE, NULL),
    POLICY_BAD("control character", BASE "note: a\x01" "b\n", NULL),
    POLICY_BAD("DEL byte", BASE "note: a\x7f\n", NULL),
    POLICY_BAD("lone continuation byte", BASE "note: \x80\n", NULL),
    POLICY_BAD("overlong UTF-8", BASE "note: \xc0\xaf\n", NULL),
    POLICY_BAD("truncated UTF-8 before LF", BASE "note: caf\xc3\n", NULL),
    POLICY_BAD("truncated UTF-8 at the end", BASE "note: caf\xc3", NULL),
    POLICY_BAD("UTF-8 surrogate", BASE "note: \xed\xa0\x80\n", NULL),
    POLICY_BAD("UTF-8 beyond U+10FFFF", BASE "note: \xf4\x90\x80\x80\n", NULL),
};

static const char *
mode_label(enum policy_mode mode)
{
    switch (mode) {
    case POLICY_MODE_ENFORCE:
        return "enforce";
    case POLICY_MODE_TESTING:
        return "testing";
    case POLICY_MODE_NONE:
        return "none";
    }
    return "(not a policy_mode)";
}

/* Checks a parsed policy: mode, max_age and the same set of mx patterns. */
static void
assert_policy(const struct policy *p, enum policy_mode mode, uint32_t max_age,
              const char *const *mx)
{
    size_t n_want = 0;

    if (p->mode != mode)
        fail_msg("mode %s, want %s", mode_label(p->mode), mode_label(mode));
    assert_int_equal(p->max_age, max_age);
    while (mx[n_want] != NULL)
        n_want++;
    if (p->n_mx != n_want)
        fail_msg("%zu mx patterns, want %zu", p->n_mx, n_want);
    for (size_t i = 0; i < n_want; i++) {
        bool found = false;

        for (size_t j = 0; j < p->n_mx && !found; j++)
            found = strcmp(p->mx[j], mx[i]) == 0;
        if (!found)
            fail_msg("mx pattern \"%s\" missing", mx[i]);
    }
}

/* The policy a test parsed; the teardown frees it, even after a failure. */
static struct policy parsed;
static bool parsed_live;

static int
free_parsed(void **state)
{
    if (parsed_live) {
        policy_free(&parsed);
        parsed_live = false;
    }
    return unit_scratch_free(state);
}

/* Returns the parsed policy (freed by the teardown), or NULL and a reason. */
static const struct policy *
parse_policy(const char *text, size_t len, struct mts_err *err)
{
    int r;

    mts_err_clear(err);
    memset(&parsed, 0, sizeof(parsed));
    r = policy_parse(text, len, &parsed, err);
    if (r == 0) {
        parsed_live = true;
        return &parsed;
    }
    if (r != -1)
        fail_msg("policy_parse returned %d", r);
    return NULL;
}

/* The reason for rejecting text must mention `reason` when it is set. */
static void
expect_policy_rejected(const char *text, size_t len, const char *reason)
{
    struct mts_err err;

    if (parse_policy(text, len, &err) != NULL)
        fail_msg("accepted an invalid policy");
    unit_assert_reason(&err, reason);
}

static void
run_policy_case(void **state)
{
    const struct policy_case *c = *state;
    const struct policy *p;
    struct mts_err err;
    size_t len;
    char *text = unit_bytes_new(c->text, &len);

    if (!c->valid) {
        expect_policy_rejected(text, len, c->reason);
        return;
    }
    p = parse_policy(text, len, &err);
    if (p == NULL)
        fail_msg("rejected a valid policy: %s", err.msg);
    assert_policy(p, c->mode, c->max_age, c->mx);
}

/* ------------------------------------------------------------ mode names */

struct mode_case {
    const char *label;
    enum policy_mode mode;
    const char *name;
};

static const struct mode_case mode_cases[] = {
    { "enforce", POLICY_MODE_ENFORCE, "enforce" },
    { "testing", POLICY_MODE_TESTING, "testing" },
    { "none", POLICY_MODE_NONE, "none" },
};

static void
run_mode_case(void **state)
{
    const struct mode_case *c = *state;
    enum policy_mode got;

    assert_string_equal(policy_mode_name(c->mode), c->name);
    /* Start from a mode that is not the answer. */
    got = c->mode == POLICY_MODE_NONE ? POLICY_MODE_ENFORCE : POLICY_MODE_NONE;
    assert_int_equal(policy_mode_from_name(c->name, &got), 0);
    if (got != c->mode)
        fail_msg("\"%s\" parsed as %s", c->name, mode_label(got));
}

struct bad_mode_case {
    const char *label;
    const char *name;
};

static const struct bad_mode_case bad_mode_cases[] = {
    { "capitalised", "Enforce" },
    { "upper case", "NONE" },
    { "empty", "" },
    { "trailing space", "testing " },
    { "leading space", " none" },
    { "trailing LF", "none\n" },
    { "prefix", "enforc" },
    { "longer word", "enforcement" },
};

static void
run_bad_mode_case(void **state)
{
    const struct bad_mode_case *c = *state;
    enum policy_mode got = POLICY_MODE_TESTING;

    assert_int_equal(policy_mode_from_name(c->name, &got), -1);
}

/* -------------------------------------------------------- mx allows host */

struct allows_case {
    const char *label;
    struct unit_bytes policy;  /* empty: the RFC example */
    const char *host;
    bool want;
};

#define RFC_EXAMPLE { NULL, 0 }

static const struct allows_case allows_cases[] = {
    { "listed name", RFC_EXAMPLE, "mail.example.com", true },
    { "third pattern", RFC_EXAMPLE, "backupmx.example.com", true },
    { "listed name, case and trailing dot", RFC_EXAMPLE, "Mail.Example.COM.", true },
    { "wildcard, one label", RFC_EXAMPLE, "mx1.example.net", true },
    { "wildcard needs a label", RFC_EXAMPLE, "example.net", false },
    { "wildcard is one label only", RFC_EXAMPLE, "a.b.example.net", false },
    { "unlisted name", RFC_EXAMPLE, "mail.example.org", false },
    { "listed name with more after it", RFC_EXAMPLE, "mail.example.com.evil.test", false },
    { "host spelled as the pattern", RFC_EXAMPLE, "*.example.net", false },
    { "empty host", RFC_EXAMPLE, "", false },
    { "policy without mx", BYTES(VERSION NONE MAX_AGE), "mail.example.com", false },
};

static void
run_allows_case(void **state)
{
    static const struct unit_bytes rfc_example = BYTES(RFC_POLICY("\r\n"));
    const struct allows_case *c = *state;
    const struct policy *p;
    struct mts_err err;
    size_t len;
    char *text = unit_bytes_new(c->policy.len > 0 ? c->policy : rfc_example, &len);
    bool got;

    p = parse_policy(text, len, &err);
    if (p == NULL)
        fail_msg("policy for the test rejected: %s", err.msg);
    got = policy_mx_allows(p, unit_str_new(c->host));
    if (got != c->want)
        fail_msg("policy_mx_allows returned %s, want %s", got ? "true" : "false",
                 c->want ? "true" : "false");
}

/* ------------------------------------------------------------ size limits */

/* head, then letters up to `total` bytes, then tail: an exact-size buffer. */
static char *
padded(const char *head, const char *tail, size_t total)
{
    size_t head_len = strlen(head), tail_len = strlen(tail);
    char *buf;

    assert_true(head_len + tail_len <= total);
    buf = unit_alloc(total);
    memcpy(buf, head, head_len);
    memset(buf + head_len, 'a', total - head_len - tail_len);
    memcpy(buf + total - tail_len, tail, tail_len);
    return buf;
}

#define TXT_PAD_HEAD "v=STSv1; id=abc; pad="

static void
test_txt_record_at_max_bytes(void **state)
{
    struct unit_bytes record = { padded(TXT_PAD_HEAD, "", POLICY_TXT_MAX_BYTES),
                                 POLICY_TXT_MAX_BYTES };

    (void)state;
    check_txt_parse(record, true, "abc");
}

static void
test_txt_record_over_max_bytes(void **state)
{
    struct unit_bytes record = { padded(TXT_PAD_HEAD, "", POLICY_TXT_MAX_BYTES + 1),
                                 POLICY_TXT_MAX_BYTES + 1 };

    (void)state;
    check_txt_parse(record, false, NULL);
}

static void
test_txt_select_record_over_max_bytes(void **state)
{
    struct unit_bytes records[2] = {
        SPF, { padded(TXT_PAD_HEAD, "", POLICY_TXT_MAX_BYTES + 1), POLICY_TXT_MAX_BYTES + 1 }
    };

    (void)state;
    check_txt_select(records, 2, POLICY_TXT_INVALID, NULL);
}

/* A valid policy padded with an unknown key to exactly `total` bytes. */
#define POLICY_PAD_HEAD BASE "pad: "

static void
test_policy_at_max_bytes(void **state)
{
    static const char *const mx[] = { "mail.example.com", NULL };
    const struct policy *p;
    struct mts_err err;

    (void)state;
    p = parse_policy(padded(POLICY_PAD_HEAD, "\n", POLICY_MAX_BYTES), POLICY_MAX_BYTES, &err);
    if (p == NULL)
        fail_msg("rejected a policy of POLICY_MAX_BYTES: %s", err.msg);
    assert_policy(p, POLICY_MODE_ENFORCE, DAY, mx);
}

static void
test_policy_over_max_bytes(void **state)
{
    (void)state;
    expect_policy_rejected(padded(POLICY_PAD_HEAD, "\n", POLICY_MAX_BYTES + 1),
                           POLICY_MAX_BYTES + 1, NULL);
}

/* A policy with n mx lines mx0.example.com ... as an exact-size buffer. */
static char *
policy_with_mx_lines(size_t n, size_t *len)
{
    size_t cap = strlen(VERSION ENFORCE MAX_AGE) + n * 32, used;
    char *buf = unit_alloc(cap);
    int r;

    used = (size_t)snprintf(buf, cap, "%s", VERSION ENFORCE MAX_AGE);
    for (size_t i = 0; i < n; i++) {
        r = snprintf(buf + used, cap - used, "mx: mx%zu.example.com\n", i);
        assert_true(r > 0 && (size_t)r < cap - used);
        used += (size_t)r;
    }
    *len = used;
    return buf;
}

static void
test_policy_at_max_mx(void **state)
{
    const struct policy *p;
    struct mts_err err;
    size_t len;
    char *text = policy_with_mx_lines(POLICY_MAX_MX, &len);

    (void)state;
    p = parse_policy(text, len, &err);
    if (p == NULL)
        fail_msg("rejected POLICY_MAX_MX mx lines: %s", err.msg);
    assert_int_equal(p->n_mx, POLICY_MAX_MX);
    assert_true(policy_mx_allows(p, "mx0.example.com"));
    assert_true(policy_mx_allows(p, "mx999.example.com"));
    assert_false(policy_mx_allows(p, "mx1000.example.com"));
}

static void
test_policy_over_max_mx(void **state)
{
    size_t len;
    char *text = policy_with_mx_lines(POLICY_MAX_MX + 1, &len);

    (void)state;
    expect_policy_rejected(text, len, NULL);
}

static const struct CMUnitTest limit_tests[] = {
    cmocka_unit_test(test_txt_record_at_max_bytes),
    cmocka_unit_test(test_txt_record_over_max_bytes),
    cmocka_unit_test(test_txt_select_record_over_max_bytes),
    cmocka_unit_test(test_policy_at_max_bytes),
    cmocka_unit_test(test_policy_over_max_bytes),
    cmocka_unit_test(test_policy_at_max_mx),
    cmocka_unit_test(test_policy_over_max_mx),
};

/* ------------------------------------------------------------------- main */

#define N_TESTS                                                               \
    (N_ROWS(txt_cases) + N_ROWS(is_sts_cases) + N_ROWS(select_cases) +        \
     N_ROWS(rdata_cases) + N_ROWS(policy_cases) + N_ROWS(mode_cases) +        \
     N_ROWS(bad_mode_cases) + N_ROWS(allows_cases) + N_ROWS(limit_tests))

static struct CMUnitTest policy_tests[N_TESTS];
static char test_names[N_TESTS][UNIT_NAME_MAX];

int
main(void)
{
    struct unit_list list = { policy_tests, test_names, N_TESTS, 0, free_parsed };

    UNIT_ADD_TABLE(&list, "txt", txt_cases, run_txt_case);
    UNIT_ADD_TABLE(&list, "txt_is_sts", is_sts_cases, run_is_sts_case);
    UNIT_ADD_TABLE(&list, "txt_select", select_cases, run_select_case);
    UNIT_ADD_TABLE(&list, "txt_rdata", rdata_cases, run_rdata_case);
    UNIT_ADD_TABLE(&list, "policy", policy_cases, run_policy_case);
    UNIT_ADD_TABLE(&list, "mode_name", mode_cases, run_mode_case);
    UNIT_ADD_TABLE(&list, "mode_bad_name", bad_mode_cases, run_bad_mode_case);
    UNIT_ADD_TABLE(&list, "mx_allows", allows_cases, run_allows_case);
    unit_add_singles(&list, limit_tests, N_ROWS(limit_tests));
    if (list.n != N_TESTS) {
        fprintf(stderr, "test_policy: %zu tests registered, %zu expected\n", list.n,
                (size_t)N_TESTS);
        return 2;
    }
    return cmocka_run_group_tests(policy_tests, NULL, NULL);
}
