/*
 * domain - a domain name as every module keys it: lower-case A-labels.
 *
 * SYNOPSIS
 *	#include "domain.h"
 *
 *	char out[DOMAIN_NAME_MAX + 1];
 *	int domain_normalize(const char *in, char *out, size_t outsz,
 *	                     struct mts_err *err);
 *
 * DESCRIPTION
 *	Lower-cases a domain and converts U-labels to A-labels (IDNA 2008
 *	with libidn2, NFC input, non-transitional); a name in pure ASCII
 *	skips IDNA. One trailing dot is dropped. Labels may hold '_' (legal
 *	in DNS; a_b.example is a real mail domain). No I/O: a parser below
 *	address and discover.
 *
 * DIAGNOSTICS
 *	Returns 0, or -1 with a reason in err (which may be NULL) for an empty
 *	name, an invalid internationalised name, or what is not a host name
 *	(see mxmatch_domain_normalize).
 */
#ifndef MTS_DOMAIN_H
#define MTS_DOMAIN_H

#include <stddef.h>

#include "err.h"
#include "mxmatch.h"

#define DOMAIN_NAME_MAX MXMATCH_NAME_MAX

int domain_normalize(const char *in, char *out, size_t outsz, struct mts_err *err);

#endif
