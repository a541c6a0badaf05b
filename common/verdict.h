/*
 * verdict - what to do with one recipient: its domain's MTA-STS status,
 * the downstream route, and the organization's rules -> an action and a
 * reason a sender can read.
 *
 * SYNOPSIS
 *	rules_load(cfg, &rules, &err);                        rules.h
 *	verdict_decide(&rules, &facts, &v);                   no I/O
 *
 * DESCRIPTION
 *	The rules (rules.h, first match wins) say what a recipient's path
 *	must offer: none, tls, verified-tls or mta-sts, and what to do when
 *	it does not (fail=) or cannot be known yet (unknown=).
 *
 *	With no matching rule: require mta-sts; an enforce domain whose MX
 *	hosts none match its policy is rejected (it can never be delivered),
 *	one whose route does not enforce is deferred; unknown is deferred;
 *	absent, failed, none and testing demand nothing. Every recipient that
 *	is not deferred or rejected is tagged.
 *
 *	With probes on, mta-sts also needs, for an enforce domain, one MX
 *	host matching the policy whose probe met RFC 8461 (grade good or
 *	weak); when every matching host was probed and none did, that is a
 *	failure (fail=, by default a deferral) naming the host and what
 *	failed; when none passed and one is not probed yet, unknown.
 *	require=tls needs every MX host the mail can go to (those matching
 *	the policy of an enforce domain, else all) to offer STARTTLS with TLS
 *	1.2+; verified-tls the same with a certificate valid for the MX name
 *	(RFC 8461 §4.2), whatever the domain's MTA-STS status. One host that
 *	fails it is a failure; else one not probed yet is unknown; else the
 *	route must enforce it. Their fail=reject is not held for a TXT
 *	re-check: it rests on the probes, which no new policy changes.
 *
 *	DANE (RFC 7672), with probes on: a host with usable DNSSEC-secure TLSA
 *	records passes verified TLS if and only if DANE verification passes
 *	(whatever its certificate's issuer, so verified-tls is met); a DANE
 *	failure is never rescued by WebPKI nor by an MTA-STS policy (RFC 8461
 *	§2); a host whose TLSA lookup failed is not usable at all (none). For
 *	the default rule and require=mta-sts, a domain with DANE (one of the
 *	MX hosts the mail can go to has usable TLSA records or a failed TLSA
 *	lookup) demands, before anything MTA-STS says, one such host that
 *	passes authenticated TLS: fail= (by default a deferral) naming the
 *	host and "DANE" when none does, unknown= when none does yet and one
 *	is not probed. A host not probed yet whose TLSA records say DANE
 *	applies (facts.dane_expected, asked by decide) counts as a DANE host
 *	not probed yet, so the first message waits for its probe. Mixed domains (DANE and non-DANE MX hosts): a non-DANE
 *	host passes by WebPKI (valid certificate for its name), as a DANE
 *	sender would deliver there (RFC 7672 §2.2: pre-DANE TLS for it) only
 *	if it is authenticated; so the domain passes when any host it may use
 *	is authenticated, by DANE or by WebPKI. A pass DANE decided (the host
 *	that passed has DANE) needs a route that enforces DANE
 *	(route_enforces_dane): else it is a failure (fail=) naming the route
 *	("the route smtp:x does not enforce DANE"), unless the domain has an
 *	MTA-STS enforce policy whose matching MX hosts and route pass on
 *	their own (then MTA-STS authenticates the path). For MTA-STS a
 *	host DANE verified passes only when the route enforces DANE or the
 *	probe found its certificate WebPKI-valid too (probes_host.pkix): a
 *	route enforcing MTA-STS only verifies by WebPKI (Postfix "secure
 *	match="), so a self-signed DANE-EE host is a failure there (fail=,
 *	"mx: certificate-not-trusted (DANE-verified, but not valid by WebPKI
 *	and the route enforces MTA-STS only)"). An enforce domain whose
 *	route does not enforce MTA-STS passes when DANE decided and the
 *	route enforces DANE.
 *	require=none ignores DANE;
 *	require=tls needs only encryption, and a DANE host whose records did
 *	not match still offers it.
 *
 *	A reject that rests on a cached policy is only final after the TXT id
 *	was re-checked (RFC 8461 §5): out->permanent says so, and the caller
 *	(decide.c, which gathers the facts) re-checks within the deadline and
 *	defers when it cannot. verdict does no I/O.
 *
 *	REQUIRETLS (RFC 8689, facts.requiretls): the sender asks that the
 *	message go only over an authenticated path, whatever the rules ask.
 *	After the rule's verdict, the path is judged as the built-in default
 *	judges mta-sts: it is authenticated when DANE authenticates it, or
 *	when the domain has an MTA-STS enforce policy whose matching MX hosts
 *	(and their probes, when on) and route pass. Otherwise the recipient
 *	is refused: deferred when that could not be learnt now (the status,
 *	the MX hosts or the probes unknown; a policy fetch that failed),
 *	rejected when the path is known not to be authenticated (no MTA-STS
 *	enforce policy, no matching MX host, a failing probe, a route that
 *	does not enforce). The more severe of the rule's and REQUIRETLS's
 *	action applies, REQUIRETLS's at equal severity: then
 *	requiretls_refused is set and the reason ("REQUIRETLS: ...") is its
 *	own, with the MTA-STS reason when there is one.
 *
 */
#ifndef MTS_VERDICT_H
#define MTS_VERDICT_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "action.h"
#include "config.h"
#include "discover.h"
#include "err.h"
#include "rules.h"

#define VERDICT_REASON_MAX 512

/* What the verdict found, for the tag header. */
enum verdict_outcome {
    VERDICT_PASS,		/* the requirement is met */
    VERDICT_NOT_REQUIRED,	/* nothing is demanded of the path */
    VERDICT_FAIL,		/* the requirement is not met */
    VERDICT_UNKNOWN		/* the status could not be learnt */
};

/* What the probes showed of the path, for the tag (tls=). */
enum verdict_tls {
    VERDICT_TLS_UNSEEN,		/* probes off, or no MX host looked at: no tls= */
    VERDICT_TLS_VERIFIED,	/* STARTTLS, TLS 1.2+, certificate valid for the MX name */
    VERDICT_TLS_UNVERIFIED,	/* STARTTLS, TLS 1.2+, the certificate does not validate */
    VERDICT_TLS_NONE,		/* no STARTTLS with TLS 1.2+ */
    VERDICT_TLS_UNKNOWN		/* not probed yet, or could not be reached */
};

struct probes_host;

/* Everything the decision needs, already looked up. */
struct verdict_facts {
    const char *sender;		/* envelope sender, "" for <> */
    const char *auth;		/* authenticated user, NULL if none */
    const char *rcpt_domain;	/* normalised */
    const struct status_result *status;
    bool mx_known;		/* the MX lookup answered */
    size_t n_mx;
    const char *const *mx;	/* the domain's MX hosts */
    /* mx_allowed[i]: status_result_mx_allows(status, mx[i]), worked out
     * once by the caller (each is a name match against every pattern of
     * the policy, and the verdict asks it of a host several times);
     * NULL: the verdict works it out. */
    const bool *mx_allowed;
    bool route_enforces;
    bool route_enforces_dane;	/* verdict_route_enforces_dane */
    const char *route;		/* "smtp:[relay.example]" */
    bool probes_on;		/* mx_probes = yes */
    const struct probes_host *probe;	/* probe[i] for mx[i], when probes_on */
    /* dane_expected[i]: mx[i] is not probed yet and its TLSA records say
     * DANE applies (probes_dane_expected); NULL: not asked. */
    const bool *dane_expected;
    /* RFC 8689: MAIL FROM carried REQUIRETLS; every recipient needs an
     * authenticated path (see DESCRIPTION). */
    bool requiretls;
    /* DANE (RFC 7672) authenticates the path, known by other means than
     * the probes (a harness); decide.c leaves it false: the verdict
     * judges DANE from the probes and route_enforces_dane itself, for
     * REQUIRETLS too. A DANE failure is the verdict's own. */
    bool dane_authenticated;
};

struct verdict {
    enum verdict_action action;
    enum verdict_outcome outcome;
    enum rules_req req;
    bool permanent;		/* a reject that may need a policy re-check */
    enum verdict_tls tls;	/* what the path showed */
    int dane;			/* enum tlsa_dane of the host DANE decided by; 0 (none): DANE
				   did not decide */
    int pkix;			/* with dane: that host's certificate is WebPKI-valid (1), not
				   (0), not known (-1): explain and check show it beside DANE */
    const struct rules_rule *rule;	/* NULL: the built-in default */
    /* With facts.requiretls: whether the path is authenticated (PASS, FAIL,
     * UNKNOWN), and whether REQUIRETLS made the action (reply X.7.30). */
    enum verdict_outcome requiretls;
    bool requiretls_refused;
    char reason[VERDICT_REASON_MAX];
    /* The probe's own account of the MX host reason names (its address,
     * what the server said): for the log and explain, never a reply. */
    char detail[VERDICT_REASON_MAX];
};

void verdict_decide(const struct rules *rules, const struct verdict_facts *f,
                    struct verdict *out);

struct maproute;

/* Does the route (transport, next hop) enforce MTA-STS, per the config and
 * the transports that use this daemon's map (map NULL: none)? A map
 * transport enforces when its next hop is rcpt_domain (or not given).
 * Host names compare without case and without one trailing dot, after
 * "[...]" and ":port" are taken off: Sendmail's {rcpt_host} is
 * "partner.example." once it has resolved the domain through DNS. */
bool verdict_route_enforces(const struct config *cfg, const struct maproute *map,
                            const char *mailer, const char *host, const char *rcpt_domain,
                            char *desc, size_t descsz);

/*
 * Does the route enforce DANE (RFC 7672) for rcpt_domain? An enforcing
 * relay does; a DANE transport (maproute_has_dane) does when its next hop
 * is rcpt_domain (or not given), unless this daemon's map is its policy
 * map too and answers for the domain (map_answers: an MTA-STS enforce
 * domain, answered "secure match=...", which replaces Postfix's dane
 * level for that destination). Names compare as verdict_route_enforces'.
 */
bool verdict_route_enforces_dane(const struct config *cfg, const struct maproute *map,
                                 const char *mailer, const char *host, const char *rcpt_domain,
                                 bool map_answers);

/* The words of the enums (tag headers, logs, rules): pass, not-required,
 * fail, unknown (the requirement's: rules.h). */
extern const struct nametab verdict_outcome_names[];
/* verified, unverified, none, unknown (UNSEEN has no word: "") */
extern const struct nametab verdict_tls_names[];

const char *verdict_action_name(enum verdict_action a);
const char *verdict_outcome_name(enum verdict_outcome o);
const char *verdict_tls_name(enum verdict_tls t);

#endif
