/*
 * mxmatch - RFC 8461 §4.1 MX pattern matching and host name normalisation.
 *
 * SYNOPSIS
 *	#include "mxmatch.h"
 *
 *	int mxmatch_pattern_check(const char *pat, size_t len, struct mts_err *err);
 *	int mxmatch_host_normalize(const char *in, size_t len, char *out,
 *	                           size_t outsz, struct mts_err *err);
 *	bool mxmatch_match(const char *pattern, const char *host);
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
 * DIAGNOSTICS
 *	mxmatch_pattern_check and mxmatch_host_normalize return 0, or -1 with
 *	a reason in err (which label, what was wrong).
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
 * Does host match pattern? Both NUL-terminated. pattern must have passed
 * mxmatch_pattern_check; host is normalised here (case, trailing dot), and
 * an invalid host matches nothing.
 */
bool mxmatch_match(const char *pattern, const char *host);

#endif
