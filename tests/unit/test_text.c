/*
 * test_text - unit tests for the text helpers of common/err.c that the
 * warm path uses instead of printf: mts_text_copy and mts_text_join.
 *
 * Each case writes into a heap buffer of exactly the size given (so a
 * byte written past it shows under AddressSanitizer) and compares the
 * result, and join's returned length, with what snprintf gives for the
 * same strings and size.
 */
#include "unit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"

struct join_case {
    const char *label;
    size_t outsz;
    const char *a, *b, *c; /* the parts; NULL ends the list early */
};

static const struct join_case join_cases[] = {
    {"three parts fit", 32, "domain=", "d01.test", "; status=enforce"},
    {"exactly fits", 11, "abc", "def", "ghij"},
    {"one byte short", 10, "abc", "def", "ghij"},
    {"cut in the first part", 3, "abc", "def", "ghij"},
    {"cut at a part's edge", 4, "abc", "def", "ghij"},
    {"room for the NUL only", 1, "abc", "def", "ghij"},
    {"empty parts", 8, "", "", ""},
    {"no parts", 8, NULL, NULL, NULL},
    {"one part", 8, "route", NULL, NULL},
};

static void
join_case(void **state)
{
    const struct join_case *c = *state;
    char *out = malloc(c->outsz), *want = malloc(c->outsz);
    const char *a = c->a ? c->a : "", *b = c->a && c->b ? c->b : "",
               *d = c->a && c->b && c->c ? c->c : "";
    int wn;
    size_t n;

    assert_non_null(out);
    assert_non_null(want);
    wn = snprintf(want, c->outsz, "%s%s%s", a, b, d);
    n = mts_text_join(out, c->outsz, c->a, c->b, c->c, (const char *)NULL);

    assert_int_equal(n, (size_t)wn);
    assert_string_equal(out, want);
    free(out);
    free(want);
}

/* outsz 0: nothing is written, the length is still told. */
static void
join_size_zero(void **state)
{
    char byte = 'x';

    (void)state;
    assert_int_equal(mts_text_join(&byte, 0, "abc", "de", (const char *)NULL), 5);
    assert_int_equal(byte, 'x');
}

static void
copy_cut(void **state)
{
    char *out = malloc(4);

    (void)state;
    assert_non_null(out);
    mts_text_copy(out, 4, "abcdef");
    assert_string_equal(out, "abc");
    mts_text_copy(out, 4, "ab");
    assert_string_equal(out, "ab");
    free(out);
}

int
main(void)
{
    struct CMUnitTest tests[N_ROWS(join_cases) + 2];
    size_t n = 0;

    for (size_t i = 0; i < N_ROWS(join_cases); i++)
        tests[n++] = (struct CMUnitTest){join_cases[i].label, join_case, NULL, NULL,
                                         (void *)&join_cases[i]};
    tests[n++] = (struct CMUnitTest)cmocka_unit_test(join_size_zero);
    tests[n++] = (struct CMUnitTest)cmocka_unit_test(copy_cut);
    return _cmocka_run_group_tests("test_text", tests, n, NULL, NULL);
}
