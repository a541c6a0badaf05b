/*
 * unit.h - helpers shared by the table-driven cmocka unit tests.
 *
 * DESCRIPTION
 *	Tests are tables of {label, input, want}. Every row becomes its own
 *	cmocka test, named "<table>: <label>", whose initial state is the row:
 *	the cmocka summary counts rows and a failure names the row.
 *
 *	Inputs are byte strings with an explicit length (BYTES("...") takes
 *	sizeof - 1, so embedded NULs count). "{N}" in an input stands for N
 *	letters 'a', for long names and records. Inputs are copied to a heap
 *	buffer of exactly their length, with no NUL after them, so that a
 *	parser reading past its length argument is caught by AddressSanitizer
 *	(configure --enable-sanitizers).
 *
 *	Buffers from unit_alloc() and the helpers built on it are freed by
 *	unit_scratch_free(), every test's teardown, which cmocka runs even
 *	when the test failed: tests never free them and never leak them.
 */
#ifndef MTS_UNIT_H
#define MTS_UNIT_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cmocka.h>

#include "err.h"

#define N_ROWS(table) (sizeof(table) / sizeof((table)[0]))
#define UNIT_NAME_MAX 160

/* Bytes with an explicit length; BYTES("a\0b") has length 3. */
struct unit_bytes {
    const char *p;
    size_t len;
};
#define BYTES(lit) { (lit), sizeof(lit) - 1 }

/* The tests of one program: storage the caller sizes at compile time. */
struct unit_list {
    struct CMUnitTest *tests;
    char (*names)[UNIT_NAME_MAX];
    size_t cap;
    size_t n;
    CMFixtureFunction teardown;  /* NULL: unit_scratch_free */
};

#define UNIT_SCRATCH_MAX 32

static void *unit_scratch[UNIT_SCRATCH_MAX];
static size_t unit_scratch_n;

/* malloc that never fails and whose memory the test's teardown frees. */
static inline void *
unit_alloc(size_t size)
{
    void *p;

    if (unit_scratch_n == UNIT_SCRATCH_MAX)
        fail_msg("unit_alloc: more than %d buffers in one test", UNIT_SCRATCH_MAX);
    p = malloc(size > 0 ? size : 1);
    assert_non_null(p);
    unit_scratch[unit_scratch_n++] = p;
    return p;
}

/* Teardown: frees what unit_alloc gave the test. */
static inline int
unit_scratch_free(void **state)
{
    (void)state;
    while (unit_scratch_n > 0)
        free(unit_scratch[--unit_scratch_n]);
    return 0;
}

static inline CMFixtureFunction
unit_teardown(const struct unit_list *list)
{
    return list->teardown != NULL ? list->teardown : unit_scratch_free;
}

static inline void
unit_add(struct unit_list *list, const char *table, const char *label,
         CMUnitTestFunction fn, const void *row)
{
    int r;

    if (list->n == list->cap) {
        fprintf(stderr, "unit_add: more than %zu tests\n", list->cap);
        exit(2);
    }
    r = snprintf(list->names[list->n], UNIT_NAME_MAX, "%s: %s", table, label);
    if (r < 0 || r >= UNIT_NAME_MAX) {
        fprintf(stderr, "unit_add: test name too long: %s\n", label);
        exit(2);
    }
    /* cmocka wants a void *; rows are const and the tests only read them. */
    list->tests[list->n] = (struct CMUnitTest){
        .name = list->names[list->n],
        .test_func = fn,
        .teardown_func = unit_teardown(list),
        .initial_state = (void *)(uintptr_t)row,
    };
    list->n++;
}

/* One test per row of table, run by fn with the row as *state. */
#define UNIT_ADD_TABLE(list, table_name, table, fn)                          \
    do {                                                                     \
        for (size_t row_ = 0; row_ < N_ROWS(table); row_++)                  \
            unit_add((list), (table_name), (table)[row_].label, (fn),        \
                     &(table)[row_]);                                        \
    } while (0)

static inline void
unit_add_singles(struct unit_list *list, const struct CMUnitTest *singles, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (list->n == list->cap) {
            fprintf(stderr, "unit_add_singles: more than %zu tests\n", list->cap);
            exit(2);
        }
        list->tests[list->n] = singles[i];
        if (list->tests[list->n].teardown_func == NULL)
            list->tests[list->n].teardown_func = unit_teardown(list);
        list->n++;
    }
}

/*
 * If p starts a "{N}" template, returns N and sets *consumed to the length
 * of the template; otherwise returns SIZE_MAX.
 */
static inline size_t
unit_template_at(const char *p, size_t left, size_t *consumed)
{
    size_t i = 1, n = 0;

    if (left < 3 || p[0] != '{' || p[1] < '0' || p[1] > '9')
        return SIZE_MAX;
    while (i < left && p[i] >= '0' && p[i] <= '9')
        n = n * 10 + (size_t)(p[i++] - '0');
    if (i == left || p[i] != '}')
        return SIZE_MAX;
    *consumed = i + 1;
    return n;
}

/*
 * Expands in into a new scratch buffer of exactly *len bytes plus `extra`
 * (0: no terminator; 1: a NUL after the bytes).
 */
static inline char *
unit_expand(struct unit_bytes in, size_t *len, size_t extra)
{
    size_t total = 0, used, n, o = 0;
    char *out;

    for (size_t i = 0; i < in.len; i += used) {
        used = 1;
        n = unit_template_at(in.p + i, in.len - i, &used);
        total += n == SIZE_MAX ? 1 : n;
    }
    out = unit_alloc(total + extra);
    for (size_t i = 0; i < in.len; i += used) {
        used = 1;
        n = unit_template_at(in.p + i, in.len - i, &used);
        if (n == SIZE_MAX) {
            out[o++] = in.p[i];
        } else {
            memset(out + o, 'a', n);
            o += n;
        }
    }
    if (extra > 0)
        out[o] = '\0';
    *len = total;
    return out;
}

/* The input for a parser that takes a length: exactly *len bytes. */
static inline char *
unit_bytes_new(struct unit_bytes in, size_t *len)
{
    return unit_expand(in, len, 0);
}

/* The input for a function that takes a C string. */
static inline char *
unit_str_new(const char *s)
{
    struct unit_bytes in = { s, strlen(s) };
    size_t len;

    return unit_expand(in, &len, 1);
}

/* Does haystack contain needle, ignoring ASCII case? */
static inline int
unit_contains_nocase(const char *haystack, const char *needle)
{
    size_t n = strlen(needle);

    for (; *haystack != '\0'; haystack++)
        if (strncasecmp(haystack, needle, n) == 0)
            return 1;
    return n == 0;
}

/*
 * A failure must come with a reason; when want is not NULL the reason must
 * mention it (case-insensitively: a key name or "line N").
 */
static inline void
unit_assert_reason(const struct mts_err *err, const char *want)
{
    if (memchr(err->msg, '\0', sizeof(err->msg)) == NULL)
        fail_msg("err.msg is not NUL-terminated");
    if (err->msg[0] == '\0')
        fail_msg("failed without a reason in err.msg");
    if (want != NULL && !unit_contains_nocase(err->msg, want))
        fail_msg("reason \"%s\" does not mention \"%s\"", err->msg, want);
}

#endif
