/*
 * err - a reason a person can read, carried back from any call that can fail.
 *
 * SYNOPSIS
 *	struct mts_err err;
 *	if (policy_parse(buf, len, &p, &err) != 0)
 *		fprintf(stderr, "%s\n", err.msg);
 *
 * DESCRIPTION
 *	Functions that can fail take a struct mts_err * (which may be NULL) and
 *	fill it with one sentence. mts_err_set() truncates silently at
 *	MTS_ERR_MAX - 1 bytes: a reason is for reading, not parsing.
 */
#ifndef MTS_ERR_H
#define MTS_ERR_H

#include <stdarg.h>
#include <stddef.h>

#define MTS_ERR_MAX 256

struct mts_err {
    char msg[MTS_ERR_MAX];
};

void mts_err_set(struct mts_err *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/*
 * snprintf for sentences meant for people: cuts silently at outsz - 1
 * bytes (always terminated). Not for anything a program parses.
 */
void mts_text_set(char *out, size_t outsz, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * The same for one string, without printf: copies s, cut at outsz - 1
 * bytes (always terminated), as snprintf(out, outsz, "%s", s) would. For
 * the per-request copies of the warm path, where printf was most of the
 * cost of an answer.
 */
void mts_text_copy(char *out, size_t outsz, const char *s);

/*
 * The strings given, up to the NULL that ends the list, one after another
 * into out, cut at outsz - 1 bytes (always terminated), as snprintf with
 * only "%s" conversions would; returns the length the whole text has (>=
 * outsz: it was cut). No printf either: for the texts made on every
 * recipient (a log entry, a tag header, a route's name).
 */
size_t mts_text_join(char *out, size_t outsz, ...) __attribute__((sentinel));
/* The same over a va_list (for functions that take the strings themselves). */
size_t mts_text_vjoin(char *out, size_t outsz, va_list ap);

/* Clears err so that msg is the empty string. */
void mts_err_clear(struct mts_err *err);

/*
 * Writes a printable rendering of untrusted bytes into out (at most outsz - 1
 * characters, always terminated): printable ASCII as is, anything else as
 * \xNN, and an ellipsis when cut. For quoting remote data in a reason.
 */
void mts_err_quote(char *out, size_t outsz, const char *in, size_t inlen);

#endif
