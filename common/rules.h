/*
 * rules - what an organization demands of the path to a recipient: "rule
 * = ..." lines and rules_file, parsed once at load, matched per recipient.
 *
 * SYNOPSIS
 *	rules_load(cfg, &rules, &err);
 *	r = rules_match(&rules, sender, auth, rcpt_domain);   NULL: none
 *	rules_free(&rules);
 *
 * DESCRIPTION
 *	One rule a line, first match wins:
 *
 *	    [from=SENDER] [auth=USER] [rcpt=DOMAIN] require=REQ [fail=ACT] [unknown=ACT]
 *
 *	SENDER is an address, "@domain" / "domain", "*.domain" (subdomains)
 *	or "*"; USER a login, "*" (any authenticated) or "-" (none); DOMAIN a
 *	recipient domain, "*.domain" or "*". REQ is none, tls, verified-tls or
 *	mta-sts; ACT is tag, defer or reject (defaults: fail=defer,
 *	unknown=defer). Senders and domains compare without case. In
 *	rules_file, "#" starts a comment and blank lines are skipped.
 *
 *	tls and verified-tls are judged from MX probes (probes.h): with
 *	mx_probes = no, rules that use them are refused at load time. What
 *	each requirement means, and what applies when no rule matches, is
 *	the verdict's (verdict.h).
 *
 * DIAGNOSTICS
 *	rules_parse and rules_load return -1 and an error: rules_parse the
 *	reason, rules_load "FILE:LINE: rule: reason". A failed load leaves
 *	no rules to free.
 */
#ifndef MTS_RULES_H
#define MTS_RULES_H

#include <stddef.h>

#include "action.h"
#include "config.h"
#include "err.h"
#include "nametab.h"

/* What a rule demands of the path. */
enum rules_req {
    RULES_REQ_NONE,
    RULES_REQ_TLS,
    RULES_REQ_VERIFIED_TLS,
    RULES_REQ_MTA_STS
};

struct rules_rule {
    char *from, *auth, *rcpt;	/* NULL: any */
    enum rules_req req;
    enum verdict_action on_fail, on_unknown;
    char where[160];		/* "FILE:LINE", for logs */
};

struct rules {
    size_t n;
    struct rules_rule *r;
};

/* One rule's text (no comment, no "rule ="); where is left empty. */
int rules_parse(const char *text, struct rules_rule *out, struct mts_err *err);
/* The config's "rule =" lines, then rules_file's, in order. */
int rules_load(const struct config *cfg, struct rules *out, struct mts_err *err);
void rules_free(struct rules *rules);

/* The first rule that matches, or NULL (rules NULL: none). */
const struct rules_rule *rules_match(const struct rules *rules, const char *sender,
                                     const char *auth, const char *rcpt_domain);

/* none, tls, verified-tls, mta-sts (rules, tag headers, logs). */
extern const struct nametab rules_req_names[];
const char *rules_req_name(enum rules_req r);

#endif
