/*
 * test_reply - unit tests for common/reply.c: SMTP replies safe for the MTA.
 *
 * Tables, one cmocka test per row:
 *	code_cases	reply_code_parse: "450 4.7.5"; the class of the reply
 *			and of the enhanced code must agree (never 550 4.7.1)
 *	build_cases	reply_build: CR, LF and other controls become spaces,
 *			'%' is doubled, non-ASCII is replaced
 *	cut_cases	reply_build on long text: the line stays within
 *			REPLY_MAX_LINE and a cut never splits a "%%"
 * and one fuzz-style test over random byte strings (fixed seed).
 * expected_text() restates reply.h for the checks, without reply.c.
 */
#include "unit.h"

#include <stdbool.h>

#include "reply.h"

/* A checked code, or a failed test. */
static struct reply_code
parse_code(const char *spec)
{
    struct reply_code code;
    struct mts_err err;

    if (reply_code_parse(spec, spec[0], &code, &err) != 0)
        fail_msg("reply_code_parse(\"%s\"): %s", spec, err.msg);
    return code;
}

/* How many characters of text fit on the line after "rcode xcode ". */
static size_t
text_room(const struct reply_code *code)
{
    return REPLY_MAX_LINE - strlen(code->rcode) - 1 - strlen(code->xcode) - 1;
}

/*
 * reply.h restated: each byte becomes one unit ("%%" for '%', a space for
 * a control, '?' for non-ASCII, else itself); units are taken in order
 * while they fit in room, and the first that does not ends the text.
 * out has room + 1 bytes.
 */
static void
expected_text(const char *in, size_t room, char *out)
{
    size_t o = 0;

    for (const unsigned char *p = (const unsigned char *)in; *p != '\0'; p++) {
        char unit[2] = { (char)*p, 0 };
        size_t n = 1;

        if (*p == '%')
            unit[n++] = '%';
        else if (*p < 0x20 || *p == 0x7f)
            unit[0] = ' ';
        else if (*p >= 0x80)
            unit[0] = '?';
        if (o + n > room)
            break;
        memcpy(out + o, unit, n);
        o += n;
    }
    out[o] = '\0';
}

/* The invariants of reply.h, checked on the output alone. */
static void
assert_reply_safe(const struct reply_code *code, const struct reply *r)
{
    size_t len, run = 0;

    if (memchr(r->text, '\0', sizeof(r->text)) == NULL)
        fail_msg("text is not NUL-terminated");
    len = strlen(r->text);
    if (strlen(r->rcode) + 1 + strlen(r->xcode) + 1 + len > REPLY_MAX_LINE)
        fail_msg("line of %zu characters", strlen(r->rcode) + strlen(r->xcode) + 2 + len);
    for (size_t i = 0; i <= len; i++) {
        unsigned char c = (unsigned char)r->text[i];

        if (i < len && (c < 0x20 || c >= 0x7f))
            fail_msg("byte 0x%02x at %zu", c, i);
        if (c == '%') {
            run++;
        } else {
            if (run % 2 != 0)
                fail_msg("a single '%%' before %zu in \"%s\"", i, r->text);
            run = 0;
        }
    }
    assert_string_equal(r->rcode, code->rcode);
    assert_string_equal(r->xcode, code->xcode);
}

/* Builds a reply for text, checks it against reply.h; returns its length. */
static size_t
check_build(const char *spec, const char *text, const char *want)
{
    struct reply_code code = parse_code(spec);
    struct reply r;
    char expected[REPLY_MAX_LINE + 1];

    memset(&r, 0x7f, sizeof(r));
    reply_build(&code, text, &r);
    assert_reply_safe(&code, &r);
    expected_text(text, text_room(&code), expected);
    assert_string_equal(r.text, expected);
    if (want != NULL)
        assert_string_equal(r.text, want);
    return strlen(r.text);
}

/* --------------------------------------------------------- code parse */

struct code_case {
    const char *label;
    const char *spec;		/* NULL: no code at all */
    char class;
    bool ok;
    const char *xcode;		/* when ok */
};

#define CODE_OK(label_, spec_, class_, xcode_) { (label_), (spec_), (class_), true, (xcode_) }
#define CODE_BAD(label_, spec_, class_) { (label_), (spec_), (class_), false, NULL }

static const struct code_case code_cases[] = {
    CODE_OK("450 4.7.5", "450 4.7.5", '4', "4.7.5"),
    CODE_OK("550 5.7.1", "550 5.7.1", '5', "5.7.1"),
    CODE_OK("421 4.3.2", "421 4.3.2", '4', "4.3.2"),
    CODE_OK("554 5.0.0", "554 5.0.0", '5', "5.0.0"),
    CODE_OK("three digits in both parts", "451 4.123.456", '4', "4.123.456"),
    CODE_OK("two digits in the subject", "550 5.10.7", '5', "5.10.7"),
    CODE_BAD("550 4.7.1: classes differ", "550 4.7.1", '5'),
    CODE_BAD("450 5.7.5: classes differ", "450 5.7.5", '4'),
    CODE_BAD("class 4 asked, 550 5.7.5 given", "550 5.7.5", '4'),
    CODE_BAD("class 5 asked, 450 4.7.5 given", "450 4.7.5", '5'),
    CODE_BAD("two-digit reply code", "45 4.7.5", '4'),
    CODE_BAD("four-digit reply code", "4500 4.7.5", '4'),
    CODE_BAD("letter in the reply code", "4a0 4.7.5", '4'),
    CODE_BAD("enhanced code with two parts", "450 4.7", '4'),
    CODE_BAD("empty detail", "450 4.7.", '4'),
    CODE_BAD("empty subject", "450 4..5", '4'),
    CODE_BAD("four parts", "450 4.7.5.1", '4'),
    CODE_BAD("text after the code", "450 4.7.5 extra", '4'),
    CODE_BAD("trailing space", "450 4.7.5 ", '4'),
    CODE_BAD("trailing CRLF", "450 4.7.5\r\n", '4'),
    CODE_BAD("letter for the class", "450 x.7.5", '4'),
    CODE_BAD("letter in the detail", "450 4.7.x", '4'),
    CODE_BAD("four-digit subject", "450 4.1234.5", '4'),
    CODE_BAD("four-digit detail", "450 4.7.1234", '4'),
    CODE_BAD("two spaces", "450  4.7.5", '4'),
    CODE_BAD("leading space", " 450 4.7.5", '4'),
    CODE_BAD("tab for the space", "450\t4.7.5", '4'),
    CODE_BAD("dash for the space", "450-4.7.5", '4'),
    CODE_BAD("reply code alone", "450", '4'),
    CODE_BAD("empty", "", '4'),
    CODE_BAD("NULL", NULL, '4'),
};

static void
run_code_case(void **state)
{
    const struct code_case *c = *state;
    const char *spec = c->spec != NULL ? unit_str_new(c->spec) : NULL;
    struct reply_code code;
    struct mts_err err;
    int r;

    mts_err_clear(&err);
    r = reply_code_parse(spec, c->class, &code, &err);
    if (!c->ok) {
        if (r != -1)
            fail_msg("accepted \"%s\" for class %c (returned %d)", c->spec, c->class, r);
        unit_assert_reason(&err, NULL);
        return;
    }
    if (r != 0)
        fail_msg("refused \"%s\": %s", c->spec, err.msg);
    assert_memory_equal(code.rcode, c->spec, 3);
    assert_int_equal(code.rcode[3], '\0');
    assert_string_equal(code.xcode, c->xcode);
}

/* -------------------------------------------------------------- build */

struct build_case {
    const char *label;
    const char *code;
    const char *text;
    const char *want;
};

static const struct build_case build_cases[] = {
    { "plain text unchanged", "450 4.7.5", "partner.example requires MTA-STS (enforce)",
      "partner.example requires MTA-STS (enforce)" },
    { "empty text", "450 4.7.5", "", "" },
    { "CRLF becomes spaces", "550 5.7.1", "line one\r\nline two", "line one  line two" },
    { "lone LF", "450 4.7.5", "a\nb", "a b" },
    { "lone CR", "450 4.7.5", "a\rb", "a b" },
    { "CRLF at the end", "450 4.7.5", "a\r\n", "a  " },
    { "SMTP injection stays on one line", "450 4.7.5", "x\r\n250 2.0.0 ok\r\n",
      "x  250 2.0.0 ok  " },
    { "tab and other controls", "450 4.7.5", "a\tb\x01" "c\x1b[0m\x1f", "a b c [0m " },
    { "DEL", "450 4.7.5", "a\x7f" "b", "a b" },
    { "percent doubled", "450 4.7.5", "100%", "100%%" },
    { "format directives defused", "450 4.7.5", "%s%n%%", "%%s%%n%%%%" },
    { "non-ASCII replaced", "550 5.7.1", "caf\xc3\xa9", "caf??" },
    { "high bytes replaced", "550 5.7.1", "\x80\xff", "??" },
};

static void
run_build_case(void **state)
{
    const struct build_case *c = *state;

    (void)check_build(c->code, unit_str_new(c->text), c->want);
}

/* -------------------------------------------------------- long text */

struct cut_case {
    const char *label;
    const char *code;
    const char *head;		/* then fill, n times */
    char fill;
    size_t n;
    size_t want_len;		/* of the text */
};

static const struct cut_case cut_cases[] = {
    { "5000 letters", "450 4.7.5", "", 'a', 5000, 970 },
    { "exactly the room", "450 4.7.5", "", 'a', 970, 970 },
    { "one over the room", "450 4.7.5", "", 'a', 971, 970 },
    { "longer enhanced code, less room", "550 5.123.123", "", 'a', 5000, 966 },
    { "5000 LF", "421 4.3.2", "", '\n', 5000, 970 },
    { "5000 non-ASCII", "450 4.7.5", "", '\xe9', 5000, 970 },
    { "5000 '%', even room", "450 4.7.5", "", '%', 5000, 970 },
    { "5000 '%', odd room", "450 4.7.15", "", '%', 5000, 968 },
    { "letter then 5000 '%'", "450 4.7.5", "a", '%', 5000, 969 },
    { "'%' pairs exactly fill the room", "450 4.7.5", "", '%', 485, 970 },
};

static void
run_cut_case(void **state)
{
    const struct cut_case *c = *state;
    size_t head = strlen(c->head);
    char *text = unit_alloc(head + c->n + 1);

    memcpy(text, c->head, head);
    memset(text + head, c->fill, c->n);
    text[head + c->n] = '\0';
    assert_int_equal(check_build(c->code, text, NULL), c->want_len);
}

/* -------------------------------------------------------------- fuzz */

#define FUZZ_ROUNDS 10000
#define FUZZ_MAX_LEN 3000

/* xorshift64*: the same strings on every run. */
static uint64_t
next_random(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 0x2545F4914F6CDD1DULL;
}

/* A random NUL-terminated string, rich in '%', CR, LF and high bytes. */
static void
random_text(uint64_t *seed, char *buf)
{
    static const char special[] = "%%%\r\n\t\x7f\x80\xff";
    size_t len = next_random(seed) % (next_random(seed) % 4 == 0 ? FUZZ_MAX_LEN : 64);

    for (size_t i = 0; i < len; i++) {
        uint64_t x = next_random(seed);

        buf[i] = x % 4 == 0 ? special[(x >> 8) % (sizeof(special) - 1)] :
                              (char)(1 + (x >> 8) % 255);
    }
    buf[len] = '\0';
}

static void
test_fuzz_invariants(void **state)
{
    static const char *const specs[] = { "450 4.7.5", "550 5.7.1", "421 4.3.2",
                                         "450 4.7.15", "554 5.123.123" };
    char *text = unit_alloc(FUZZ_MAX_LEN + 1);
    uint64_t seed = 0x9e3779b97f4a7c15ULL;

    (void)state;
    for (size_t i = 0; i < FUZZ_ROUNDS; i++) {
        random_text(&seed, text);
        (void)check_build(specs[i % N_ROWS(specs)], text, NULL);
    }
}

static const struct CMUnitTest fuzz_tests[] = {
    cmocka_unit_test(test_fuzz_invariants),
};

/* --------------------------------------------------------------- main */

#define N_TESTS                                                                  \
    (N_ROWS(code_cases) + N_ROWS(build_cases) + N_ROWS(cut_cases) + N_ROWS(fuzz_tests))

static struct CMUnitTest reply_tests[N_TESTS];
static char test_names[N_TESTS][UNIT_NAME_MAX];

int
main(void)
{
    struct unit_list list = { reply_tests, test_names, N_TESTS, 0, NULL };

    UNIT_ADD_TABLE(&list, "code", code_cases, run_code_case);
    UNIT_ADD_TABLE(&list, "build", build_cases, run_build_case);
    UNIT_ADD_TABLE(&list, "cut", cut_cases, run_cut_case);
    unit_add_singles(&list, fuzz_tests, N_ROWS(fuzz_tests));
    if (list.n != N_TESTS) {
        fprintf(stderr, "test_reply: %zu tests registered, %zu expected\n", list.n,
                (size_t)N_TESTS);
        return 2;
    }
    return cmocka_run_group_tests(reply_tests, NULL, NULL);
}
