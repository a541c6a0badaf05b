/*
 * danemap - when the policy map answers "dane-only": the rule, over the
 * facts the caller gathered (status, MX set, probes). Pure: no I/O.
 *
 * SYNOPSIS
 *	if (danemap_only(&status, mx_secure, mx, n_mx, probe, mx_allowed))
 *	    ... the map answers "OK dane-only" ...
 *	danemap_host(&status, mx[i], NULL); danemap_host(&status, mx[i], &probe_i);
 *
 * DESCRIPTION
 *	Postfix's TLS policy is per destination, not per MX host: "dane-only"
 *	makes it authenticate every MX host by DANE (RFC 7672) and defer
 *	when none passes; "secure match=" authenticates by WebPKI alone and
 *	ignores TLSA records; NOTFOUND leaves its own level. The map may
 *	answer dane-only only where Postfix then delivers exactly where the
 *	milter's verdict lets mail go (verdict.h), so all of these hold:
 *
 *	  - the MX RRset is DNSSEC-secure (a dane-only Postfix defers a
 *	    destination whose MX RRset is not: it would refuse mail the
 *	    milter accepts);
 *	  - the MTA-STS status is known (not unknown);
 *	  - every MX host (no null MX) has a live probe result (probes.h)
 *	    whose DANE outcome decides the host (tlsa_dane_applies): usable
 *	    TLSA records (verified, or failed: both refuse the host), or a
 *	    failed TLSA lookup (RFC 7672 §2.2: neither uses the host);
 *	  - for an enforce policy, every MX host matches it: a dane-only
 *	    Postfix uses any MX host, the milter's enforce verdict only the
 *	    matching ones.
 *
 *	Where one fails the answer stays what it was: "secure match=" for an
 *	enforce domain (WebPKI: a DANE-only host is refused by Postfix, and
 *	the milter defers it too when the route enforces MTA-STS only), and
 *	NOTFOUND for the others. Mixed hosts (some with usable TLSA, some
 *	without, or TLSA records without a usable one) therefore never get
 *	dane-only: Postfix would defer the hosts without DANE, which the
 *	milter lets mail go to.
 *
 *	n_mx beyond the hosts a caller probes (probe_hosts_per_domain) has
 *	PROBES_NOT_YET there, and so no dane-only: a domain is never
 *	answered from part of its MX set.
 */
#ifndef MTS_DANEMAP_H
#define MTS_DANEMAP_H

#include <stdbool.h>
#include <stddef.h>

#include "probes.h"
#include "status.h"

/* mx_allowed[i]: status_result_mx_allows(st, mx[i]) as the caller worked
 * it out (verdict_facts.mx_allowed); NULL: worked out here. */
bool danemap_only(const struct status_result *st, bool mx_secure, const char *const *mx,
                  size_t n_mx, const struct probes_host *probe, const bool *mx_allowed);

/* The rule for one MX host; probe NULL: only what its name says (a null
 * MX, an enforce policy it does not match), before asking for its probe. */
bool danemap_host(const struct status_result *st, const char *mx,
                  const struct probes_host *probe);

#endif
