/*
 * socketmap - Postfix's socketmap requests and the MTA-STS policy answer
 * for smtp_tls_policy_maps, with no I/O (the framing: netstring.h).
 *
 * SYNOPSIS
 *	#include "socketmap.h"
 *
 *	sockmap_request_split(payload, plen, name, sizeof(name), key, sizeof(key), &err);
 *	sockmap_key_domain(key, domain, sizeof(domain), &err);
 *	enum sockmap_reply k = sockmap_answer(&in, out, outsz);
 *
 * DESCRIPTION
 *	A request is one netstring "LEN:NAME KEY,"; a reply one netstring
 *	"LEN:OK <policy>," / "NOTFOUND " / "TEMP <reason>" / "PERM <reason>".
 *	The limits are Postfix's (src/util/dict_sockmap.c): a key of at most
 *	SOCKMAP_MAX_KEY bytes, a reply of at most SOCKMAP_MAX_REPLY bytes.
 *
 *	sockmap_key_domain turns a next-hop key into the policy domain as
 *	postfix-mta-sts-resolver does: "[host]" and ":port" are dropped, one
 *	trailing dot, case folded. Postfix's parent-domain keys (".example")
 *	and IP addresses have no policy: SOCKMAP_KEY_NONE.
 *
 *	sockmap_answer builds the answer for a discovery result: an enforce
 *	policy gives "OK secure match=H1:H2 servername=hostname" where H1, H2
 *	are the domain's MX hosts that match the policy's patterns now, sorted (RFC
 *	8461 §4.1: a wildcard is one label, which Postfix's ".domain" is not;
 *	so exact names). No matching MX host, or MX hosts unknown, gives TEMP
 *	(Postfix defers). testing, none, absent, failed give "NOTFOUND ";
 *	unknown gives TEMP, or "NOTFOUND " with unknown_notfound (RFC 8461
 *	§3.3: nothing valid is cached, deliver as though there were no
 *	policy). With tlsrpt, Postfix 3.10's TLSRPT attributes
 *	follow (policy_type, policy_domain, policy_string, mx_host_pattern).
 *	With dane_only (the caller's danemap_only) a known status gives
 *	"OK dane-only" instead, without TLSRPT attributes (Postfix reports
 *	DANE's own policy from the TLSA records).
 *
 * DIAGNOSTICS
 *	Functions that can fail return -1 with a
 *	reason in err; sockmap_answer always fills out (TEMP when the answer
 *	would not fit).
 */
#ifndef MTS_SOCKETMAP_H
#define MTS_SOCKETMAP_H

#include <stdbool.h>
#include <stddef.h>

#include "err.h"
#include "status.h"

#define SOCKMAP_MAX_KEY 10000	/* Postfix socketmap_max_query_size */
#define SOCKMAP_MAX_NAME 64	/* a map name: letters, digits, '_', '-', '.' */
#define SOCKMAP_MAX_REQUEST (SOCKMAP_MAX_NAME + 1 + SOCKMAP_MAX_KEY)
#define SOCKMAP_MAX_REPLY 100000	/* Postfix socketmap_max_reply_size */
/* MX hosts considered in an answer (discover_mx gives at most 32). */
#define SOCKMAP_MAX_MX 64
/* The map name Sendmail's FEATURE(`sts') sends: never TLSRPT attributes. */
#define SOCKMAP_SENDMAIL_NAME "sts"

enum sockmap_reply {
    SOCKMAP_OK,
    SOCKMAP_NOTFOUND,
    SOCKMAP_TEMP,
    SOCKMAP_PERM
};

enum sockmap_key {
    SOCKMAP_KEY_DOMAIN,		/* domain holds the policy domain */
    SOCKMAP_KEY_NONE		/* no policy can exist: answer NOTFOUND */
};

/* "OK", "NOTFOUND", "TEMP", "PERM". */
const char *sockmap_reply_name(enum sockmap_reply r);

/*
 * "NAME KEY" (split at the first space) into name and key, each
 * NUL-terminated. -1 for no space, an empty or invalid name, an empty key,
 * a NUL, or a part longer than its limit.
 */
int sockmap_request_split(const char *p, size_t len, char *name, size_t namesz, char *key,
                          size_t keysz, struct mts_err *err);

/*
 * The policy domain of a next-hop key, in A-labels (domain.h); NONE for
 * ".parent" keys, IP addresses and what is not a domain name (err then
 * says why).
 */
enum sockmap_key sockmap_key_domain(const char *key, char *domain, size_t domainsz,
                                    struct mts_err *err);

struct sockmap_answer_in {
    const struct status_result *res;
    const char (*mx)[254];	/* the domain's MX hosts (at most SOCKMAP_MAX_MX used) */
    int n_mx;			/* -1: not known (then mx_error says why) */
    const char *mx_error;
    bool tlsrpt;		/* add the TLSRPT attributes */
    bool unknown_notfound;	/* an unknown status: NOTFOUND, not TEMP (map_unknown) */
    bool dane_only;		/* DANE decides every MX host (danemap.h): "OK dane-only" */
};

/* The reply text (no netstring framing) into out (outsz > 64). */
enum sockmap_reply sockmap_answer(const struct sockmap_answer_in *in, char *out, size_t outsz);

/* A reply "KIND reason" with the reason made safe: no control bytes, cut to fit. */
void sockmap_reply_text(enum sockmap_reply kind, const char *reason, char *out, size_t outsz);

#endif
