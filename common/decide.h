/*
 * NAME
 *	decide - the whole decision for one recipient: scope, address,
 *	verdict, dry run / hold, reply. The milter and `mtasts-ctl explain`
 *	both call it, so explain says what the milter does by construction.
 *
 * SYNOPSIS
 *	decide_ctx_init(&ctx, cfg, &rules, &err);	at load
 *	ctx.discover = discover; ctx.probes = probes; ctx.map_routes = &routes;
 *	deadline = clock_deadline_after(cfg->rcpt_deadline_ms);	at RCPT TO
 *	decide_recipient(&ctx, &session, &rcpt, &deadline, &decision);
 *
 * DESCRIPTION
 *	In order, the first that applies:
 *	  the session is not covered by act_on	-> untouched
 *	  the address cannot be read		-> the unknown action of the
 *						   first rule without rcpt=
 *						   that matches (else defer)
 *	  a null address, a local name or an address literal, or a domain in
 *	  local_domains				-> untouched
 *	  otherwise				-> the facts, then verdict_decide()
 *	The facts, gathered here within the one deadline (verdict.h judges
 *	them and does no I/O): the domain's status (discover_lookup_as), the
 *	route, and, when the status or the rule needs them, the MX set
 *	(discover_mx_as) and the probe results of the hosts that decide
 *	(probes.h: for an enforce domain those matching its policy, else all;
 *	their probes start as soon as the MX set is known). When the verdict
 *	is unknown only because such a host is not probed yet, the RCPT waits
 *	for the result until the deadline (probes_wait); only then does the
 *	rule's unknown= apply. A reject that rests on a cached policy is
 *	final only after the TXT id was re-checked (RFC 8461 §5), within the
 *	same deadline; when that cannot be done the answer is a deferral.
 *	No wait on the shared cache outlives the deadline (cache_bound_waits
 *	for the whole decision: the probe rows read on a miss too).
 *	A refusal (defer, reject) of non-SMTP mail becomes a hold; with
 *	dry_run it is not applied (the milter tags and accepts). Every
 *	refusal comes with a checked SMTP reply (defer_reply / reject_reply,
 *	"MTA-STS: " and the reason), also when it is held or not applied.
 *	The reply says what the sender can act on and nothing of the
 *	milter's insides: a policy failure (MX mismatch, a route that does
 *	not enforce, the MX hosts' TLS as probed: the host and a fixed word,
 *	probeword.h, never what the server sent) keeps its reason, and the
 *	probe's own account (verdict.detail) goes to why only; a status
 *	that could not be learnt (DNS, HTTPS, the cache), or an internal
 *	error, says "MTA-STS status of DOMAIN could not be determined now;
 *	try again later" ("... determined" for a reject),
 *	while why keeps the details (the cache file, the resolver, the
 *	fetch error) for the log and explain.
 *
 *	With REQUIRETLS (verdict.h) a refusal that REQUIRETLS made has the
 *	codes RFC 8689 registers, 550 5.7.30 (REQUIRETLS support required)
 *	or 450 4.7.30 when it is a deferral, whatever defer_reply and
 *	reject_reply say, and its text begins "REQUIRETLS: ", not "MTA-STS: ";
 *	a status that could not be learnt says "REQUIRETLS: the path to
 *	DOMAIN could not be determined now; try again later".
 *
 * DIAGNOSTICS
 *	decide_ctx_init returns -1 and "FILE: option NAME: reason" for a
 *	malformed defer_reply or reject_reply. decide_recipient cannot fail:
 *	when memory runs out it answers with on_internal_error
 *	(scope DECIDE_INTERNAL_ERROR).
 */
#ifndef MTS_DECIDE_H
#define MTS_DECIDE_H

#include <stdbool.h>
#include <time.h>

#include "config.h"
#include "discover.h"
#include "err.h"
#include "nametab.h"
#include "reply.h"
#include "verdict.h"

struct discover;
struct maproute;
struct probes;

/* Everything a decision needs that lives as long as one configuration. */
struct decide_ctx {
    const struct config *cfg;
    const struct rules *rules;
    struct discover *discover;	/* NULL: no lookups */
    const struct maproute *map_routes;	/* transports using our map; NULL: none */
    struct probes *probes;	/* NULL: mx_probes = no */
    struct reply_code defer, reject;
    struct reply_code requiretls_defer, requiretls_reject;	/* 450 4.7.30, 550 5.7.30 */
};

/* What the MTA said about the session (MAIL FROM and before). */
struct decide_session {
    const char *sender;		/* envelope sender without <>, "" for <> */
    const char *auth;		/* {auth_authen}, NULL: not authenticated */
    const char *daemon;		/* {daemon_name}, NULL: not sent */
    bool non_smtpd;		/* sendmail(1), pickup: no address or port 0 */
    /* who asks, for the caps on lookups in flight (discover.h); NULL: no cap */
    const struct discover_caller *who;
    bool requiretls;		/* MAIL FROM carried REQUIRETLS (RFC 8689) */
    /* Scratch a caller that decides many recipients lends (decide_work_new):
     * judging one needs about 31 KB, which the milter keeps a connection
     * rather than allocate a recipient. NULL: allocated for each. */
    struct decide_work *work;
};

/* One recipient, with the route the MTA resolved for it. */
struct decide_rcpt {
    const char *address;	/* the RCPT TO argument, as the client sent it */
    const char *mailer;		/* {rcpt_mailer}, NULL: not sent */
    const char *host;		/* {rcpt_host}, NULL: not sent */
};

/* Which road the decision took. */
enum decide_scope {
    DECIDE_IN_SCOPE,		/* looked up and judged by the verdict */
    DECIDE_UNREADABLE,		/* in scope; the address cannot be read */
    DECIDE_INTERNAL_ERROR,	/* in scope; out of memory: on_internal_error */
    DECIDE_NOT_IN_ACT_ON,	/* out of scope: the session is not in act_on */
    DECIDE_NULL_ADDRESS,	/* out of scope: <> */
    DECIDE_NO_DOMAIN,		/* out of scope: a local name or address literal */
    DECIDE_LOCAL_DOMAIN		/* out of scope: in local_domains */
};

/* What happens to the recipient. */
enum decide_effect {
    DECIDE_UNTOUCHED,		/* out of scope: no verdict, no tag */
    DECIDE_TAG,			/* accepted (and tagged when judged) */
    DECIDE_DEFER,		/* 4xx for this recipient */
    DECIDE_REJECT,		/* 5xx for this recipient */
    DECIDE_HOLD			/* non-SMTP mail: the message is held */
};

/* untouched, tag, defer, reject, hold. */
extern const struct nametab decide_effect_names[];

struct decision {
    enum decide_scope scope;
    char domain[254];		/* normalised; "" when the address has none */
    enum status_kind status;	/* STATUS_UNKNOWN unless looked up */
    char txt_id[POLICY_ID_MAX + 1];	/* "" when none is known */
    enum rules_req req;
    enum verdict_outcome outcome;
    enum verdict_action action;	/* the verdict's action; TAG when untouched */
    enum verdict_tls tls;	/* what the MX probes showed; UNSEEN when not looked */
    int dane;			/* enum tlsa_dane DANE decided by (verdict.h); 0: it did not */
    int pkix;			/* with dane: WebPKI-valid 1, not 0, not known -1 (verdict.h) */
    char origin[STATUS_ORIGIN_MAX];	/* the policy row's source (status.h): "" learnt here */
    char probe_origin[STATUS_ORIGIN_MAX];	/* the first MX probe result from the fleet:
						   its host; "" none */
    const struct rules_rule *rule;	/* the verdict's rule; NULL: built-in default */
    bool requiretls_asked;	/* the session's requiretls */
    enum verdict_outcome requiretls;	/* if asked and judged: is the path authenticated */
    bool requiretls_refused;	/* REQUIRETLS made the refusal: X.7.30 */
    enum decide_effect effect;	/* action after the non-SMTP hold */
    bool dry_run;		/* effect is a refusal that dry_run does not apply */
    enum decide_effect applied;	/* what the milter does: effect, or TAG in a dry run */
    struct reply reply;		/* for a refusal; text "" otherwise */
    char reason[VERDICT_REASON_MAX];	/* of a refusal: the reply's and hold's text,
					 * nothing internal (see DESCRIPTION) */
    char why[VERDICT_REASON_MAX];	/* for the log and explain: the detailed reason,
					 * the address error, or why out of scope */
};

/* Parses defer_reply and reject_reply; discover, map_routes and probes are left NULL. */
int decide_ctx_init(struct decide_ctx *ctx, const struct config *cfg,
                    const struct rules *rules, struct mts_err *err);

/* Does act_on cover this session? */
bool decide_in_scope(const struct config *cfg, const struct decide_session *s);

/* The action when the milter itself fails (on_internal_error). */
enum verdict_action decide_internal_error_action(const struct config *cfg);

/* Scratch for decide_session.work, for one thread at a time; NULL when out
 * of memory (the session then goes without). */
struct decide_work *decide_work_new(void);
void decide_work_free(struct decide_work *w);

/* Decides one recipient; lookups wait until deadline (CLOCK_MONOTONIC). */
void decide_recipient(const struct decide_ctx *ctx, const struct decide_session *s,
                      const struct decide_rcpt *r, const struct timespec *deadline,
                      struct decision *out);

#endif
