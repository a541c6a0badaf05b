/*
 * mxmatch - RFC 8461 §4.1 MX pattern matching and host name normalisation.
 *
 * SYNOPSIS
 *	#include "mxmatch.h"
 *
 *	int mxmatch_pattern_check(const char *pat, size_t len, struct mts_err *err);
 *	int mxmatch_host_normalize(const char *in, size_t len, char *out,
 *	                           size_t outsz, struct mts_err *err);
 *	int mxmatch_domain_normalize(...);	the same, '_' allowed
 *	bool mxmatch_match(const char *pattern, const char *host);
 *	bool mxmatch_any(char *const *pats, size_t n, const char *host);
 *	char **mxmatch_list_dup(char *const *pats, size_t n);
 *	void mxmatch_list_free(char **pats, size_t n);
 *
 * DESCRIPTION
 *	A pattern is a host name, or "*." followed by a host name. The
 *	wildcard stands for exactly one whole left-most label: "*.example.com"
 *	matches "mx1.example.com", not "example.com" and not
 *	"a.b.example.com". Comparison is ASCII case-insensitive; A-labels
 *	("xn--...") compare as plain ASCII.
 *
 *	A valid host name here: 1 to MXMATCH_NAME_MAX characters, labels of 1
 *	to 63 letters, digits and hyphens, no label starting or ending with a
 *	hyphen, and a last label that is not all digits (so an IP address is
 *	never taken for a name). Patterns additionally allow "*" as the whole
 *	first label only, and no trailing dot (the policy grammar's Domain has
 *	none). MX names from DNS may end in one dot, which is ignored.
 *
 *	A policy's patterns stay a list (pats[0..n-1]) from the parser to the
 *	verdict; mxmatch_any matches a host against the list.
 *
 * DIAGNOSTICS
 *	mxmatch_pattern_check and mxmatch_host_normalize return 0, or -1 with
 *	a reason in err (which label, what was wrong). mxmatch_list_dup
 *	returns NULL when out of memory.
 */
#ifndef MTS_MXMATCH_H
#define MTS_MXMATCH_H

#include <stdbool.h>
#include <stddef.h>

#include "err.h"

#define MXMATCH_NAME_MAX 253
#define MXMATCH_LABEL_MAX 63

/* Is pat (len bytes, not necessarily NUL-terminated) a valid mx pattern? */
int mxmatch_pattern_check(const char *pat, size_t len, struct mts_err *err);

/*
 * Validates an MX host name, drops one trailing dot and lower-cases it into
 * out (outsz >= MXMATCH_NAME_MAX + 1 always suffices).
 */
int mxmatch_host_normalize(const char *in, size_t len, char *out, size_t outsz,
                           struct mts_err *err);

/*
 * The same for a mail domain, whose labels may also hold '_' (legal in
 * DNS, RFC 2181 §11, and seen in real recipient domains); MX hosts and
 * patterns stay LDH.
 */
int mxmatch_domain_normalize(const char *in, size_t len, char *out, size_t outsz,
                             struct mts_err *err);

/*
 * Does host match pattern? Both NUL-terminated. pattern must have passed
 * mxmatch_pattern_check; host is normalised here (case, trailing dot), and
 * an invalid host matches nothing.
 */
bool mxmatch_match(const char *pattern, const char *host);

/* Does any of the n patterns match host? Empty or over-long ones match nothing. */
bool mxmatch_any(char *const *pats, size_t n, const char *host);

/* A copy of n patterns (n may be 0: an empty list, not NULL); NULL when out of memory. */
char **mxmatch_list_dup(char *const *pats, size_t n);

/* Frees the n patterns and the list. Safe with NULL. */
void mxmatch_list_free(char **pats, size_t n);

#endif
