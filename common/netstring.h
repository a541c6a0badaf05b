/*
 * netstring - netstrings ("LEN:DATA,"), the framing of Postfix's
 * socketmap protocol, with no I/O.
 *
 * SYNOPSIS
 *	#include "netstring.h"
 *
 *	enum netstring_parse r = netstring_parse(buf, len, SOCKMAP_MAX_REQUEST,
 *	                                         &payload, &plen, &used, &err);
 *	int n = netstring_encode(data, len, out, outsz);
 *
 * DESCRIPTION
 *	A length with a leading zero, a non-digit, more than the limit, or a
 *	missing ':' or ',' is malformed: the caller closes the connection.
 *	What a netstring carries (a map request, an answer) is socketmap.h's.
 *
 * DIAGNOSTICS
 *	netstring_parse gives NETSTRING_MALFORMED with a reason in err;
 *	netstring_encode -1 when out is too small.
 */
#ifndef MTS_NETSTRING_H
#define MTS_NETSTRING_H

#include <stddef.h>

#include "err.h"

/* A netstring's framing: at most 6 length digits, ':' and ','. */
#define NETSTRING_FRAMING 8

enum netstring_parse {
    NETSTRING_PARTIAL,		/* more bytes needed */
    NETSTRING_COMPLETE,		/* one netstring: payload, plen, used */
    NETSTRING_MALFORMED		/* err says why */
};

/*
 * Looks for one netstring at the start of buf[0..len) whose payload is at
 * most max bytes. COMPLETE: *payload, *plen (inside buf), *used (bytes
 * taken, framing included).
 */
enum netstring_parse netstring_parse(const char *buf, size_t len, size_t max,
                                     const char **payload, size_t *plen, size_t *used,
                                     struct mts_err *err);

/* data as a netstring into out; the bytes written (no NUL), or -1 when it does not fit. */
int netstring_encode(const char *data, size_t len, char *out, size_t outsz);

#endif
