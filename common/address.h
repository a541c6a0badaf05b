/*
 * address - the domain of an SMTP envelope address, as a milter sees it.
 *
 * SYNOPSIS
 *	rc = address_domain("<Bob@Partner.EXAMPLE>", domain, sizeof(domain), &err);
 *
 * DESCRIPTION
 *	Accepts the address with or without angle brackets, drops an RFC 5321
 *	source route ("<@relay1,@relay2:bob@example>"), honours a quoted local
 *	part ("\"a@b\"@example" has domain example), and returns the domain
 *	lower-cased, with U-labels converted to A-labels (libidn2). An address
 *	literal ("bob@[192.0.2.1]") has no domain for MTA-STS (RFC 8461 §3.4).
 *
 * DIAGNOSTICS
 *	Returns ADDRESS_OK with the domain; ADDRESS_NULL for "<>" (no
 *	domain); ADDRESS_NO_DOMAIN for a local name or address literal;
 *	ADDRESS_INVALID with a reason for anything malformed (unbalanced
 *	brackets or quotes, an empty or invalid domain, over-long input).
 */
#ifndef MTS_ADDRESS_H
#define MTS_ADDRESS_H

#include <stddef.h>

#include "err.h"

#define ADDRESS_MAX 1024	/* longer than any legal path (RFC 5321: 256) */

enum address_result {
    ADDRESS_OK,
    ADDRESS_NULL,
    ADDRESS_NO_DOMAIN,
    ADDRESS_INVALID
};

enum address_result address_domain(const char *addr, char *domain, size_t domainsz,
                                   struct mts_err *err);

#endif
