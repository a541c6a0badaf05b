/*
 * verdict - recipient verdicts from status, route and rules; see verdict.h.
 *
 * verdict_decide() is pure: every fact comes in through struct
 * verdict_facts, so the whole matrix of status x requirement x route is
 * testable without a network. decide.c gathers the facts.
 */
#include "verdict.h"
#include "tlsa.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "maproute.h"
#include "mxmatch.h"
#include "probes.h"
#include "probeword.h"

/* The rule that applies when none matches (DESIGN.md: "with no rules"). */
static const struct rules_rule default_rule = {
    NULL, NULL, NULL, RULES_REQ_MTA_STS, VERDICT_DEFER, VERDICT_DEFER, "built-in default",
};

const struct nametab verdict_outcome_names[] = {
    {"pass", VERDICT_PASS},
    {"not-required", VERDICT_NOT_REQUIRED},
    {"fail", VERDICT_FAIL},
    {"unknown", VERDICT_UNKNOWN},
    {NULL, -1},
};

const struct nametab verdict_tls_names[] = {
    {"verified", VERDICT_TLS_VERIFIED},
    {"unverified", VERDICT_TLS_UNVERIFIED},
    {"none", VERDICT_TLS_NONE},
    {"unknown", VERDICT_TLS_UNKNOWN},
    {NULL, -1},
};

const char *
verdict_tls_name(enum verdict_tls t)
{
    return t == VERDICT_TLS_UNSEEN ? "" : nametab_name(verdict_tls_names, (int)t);
}

const char *
verdict_action_name(enum verdict_action a)
{
    return nametab_name(verdict_action_names, (int)a);
}

const char *
verdict_outcome_name(enum verdict_outcome o)
{
    return nametab_name(verdict_outcome_names, (int)o);
}

/* ------------------------------------------------------------ decide */

static void
set_outcome(struct verdict *v, enum verdict_action a, enum verdict_outcome o, const char *fmt,
            ...) __attribute__((format(printf, 4, 5)));

static void
set_outcome(struct verdict *v, enum verdict_action a, enum verdict_outcome o, const char *fmt,
            ...)
{
    va_list ap;

    v->action = a;
    v->outcome = o;
    va_start(ap, fmt);
    (void)vsnprintf(v->reason, sizeof(v->reason), fmt, ap);
    va_end(ap);
}

/*
 * The same with the reason given as strings to join, up to a NULL: no
 * printf for the outcomes of the warm path (a pass, nothing required),
 * which every recipient of a tagged domain takes.
 */
static void
set_outcome_join(struct verdict *v, enum verdict_action a, enum verdict_outcome o, ...)
    __attribute__((sentinel));

static void
set_outcome_join(struct verdict *v, enum verdict_action a, enum verdict_outcome o, ...)
{
    va_list ap;

    v->action = a;
    v->outcome = o;
    va_start(ap, o);
    (void)mts_text_vjoin(v->reason, sizeof(v->reason), ap);
    va_end(ap);
}

/* What one host's probe showed. "." (null MX, RFC 7505) takes no mail at all. */
static enum verdict_tls
host_tls(const struct verdict_facts *f, size_t i)
{
    const struct probes_host *h = &f->probe[i];

    if (strcmp(f->mx[i], ".") == 0)
        return VERDICT_TLS_NONE;
    if (h->state != PROBES_KNOWN)
        return VERDICT_TLS_UNKNOWN;
    /* RFC 7672 §2.2: a host whose TLSA lookup failed must not be used. */
    if (h->dane == TLSA_DANE_LOOKUP_FAILED)
        return VERDICT_TLS_NONE;
    if (h->grade == TLSPROBE_GRADE_UNKNOWN)
        return VERDICT_TLS_UNKNOWN;
    /* With DANE, rfc8461 is DANE's verification (tlsprobe.h, DANE). */
    return h->rfc8461 ? VERDICT_TLS_VERIFIED : h->tls ? VERDICT_TLS_UNVERIFIED :
           VERDICT_TLS_NONE;
}

/*
 * MTA-STS's view of a host (enforce_tls): a host DANE verified passes only
 * when the route enforces DANE or its certificate is also valid by WebPKI.
 * A route that enforces MTA-STS only verifies by WebPKI (Postfix "secure
 * match=" replaces its dane level) and will not deliver there. (A route
 * that enforces neither fails later, naming the route.)
 */
static bool
dane_only(const struct verdict_facts *f, size_t i)
{
    const struct probes_host *h = &f->probe[i];

    return h->state == PROBES_KNOWN && tlsa_dane_applies(h->dane) && h->rfc8461 && !h->pkix &&
           f->route_enforces && !f->route_enforces_dane;
}

/* WebPKI's view of a host DANE decided (probes.h pkix), for people. */
static int
host_pkix(const struct verdict_facts *f, size_t i)
{
    const struct probes_host *h = &f->probe[i];

    return h->state != PROBES_KNOWN || h->grade == TLSPROBE_GRADE_UNKNOWN ? -1 : h->pkix;
}

static enum verdict_tls
host_tls_sts(const struct verdict_facts *f, size_t i)
{
    enum verdict_tls t = host_tls(f, i);

    return t == VERDICT_TLS_VERIFIED && dane_only(f, i) ? VERDICT_TLS_UNVERIFIED : t;
}

/*
 * "mx.example: certificate expired (certificate-expired)" for the reply:
 * the host and a fixed word (probeword.h), never what the server sent.
 * The probe's own account, "mx.example [192.0.2.1]: grade: reason", goes
 * to v->detail, for the log and explain.
 */
static void
host_why(const struct verdict_facts *f, size_t i, struct verdict *v, char *out, size_t outsz)
{
    const struct probes_host *h = &f->probe[i];
    char word[PROBEWORD_TEXT_MAX];

    if (strcmp(f->mx[i], ".") == 0) {
        mts_text_set(out, outsz, "a null MX (RFC 7505): the domain accepts no mail");
        return;
    }
    if (dane_only(f, i)) {
        mts_text_set(out, outsz, "%s: certificate-not-trusted (DANE-verified, but not valid "
                     "by WebPKI and the route enforces MTA-STS only)", f->mx[i]);
        mts_text_set(v->detail, sizeof(v->detail), "%s%s%s%s: DANE %s (%s), not WebPKI-valid: %s",
                     f->mx[i], h->address[0] ? " [" : "", h->address,
                     h->address[0] ? "]" : "", tlsa_dane_name(h->dane), h->dane_detail,
                     f->route ? f->route : "(unknown route)");
        return;
    }
    if (h->state == PROBES_KNOWN && tlsa_dane_applies(h->dane)) {
        /* The RFC 8460 word that opens the detail ("tlsa-invalid: ..."):
         * ours, never the server's. */
        size_t wl = strcspn(h->dane_detail, ": ");

        mts_text_set(out, outsz, "%s: DANE %s%s%.*s%s", f->mx[i], tlsa_dane_name(h->dane),
                     wl > 0 ? " (" : "", (int)wl, h->dane_detail, wl > 0 ? ")" : "");
        mts_text_set(v->detail, sizeof(v->detail), "%s%s%s%s: DANE %s%s%s", f->mx[i],
                     h->address[0] ? " [" : "", h->address, h->address[0] ? "]" : "",
                     tlsa_dane_name(h->dane), h->dane_detail[0] ? ": " : "", h->dane_detail);
        return;
    }
    probeword_text(h, word, sizeof(word));
    mts_text_set(out, outsz, "%s: %s", f->mx[i], word);
    if (h->state != PROBES_KNOWN)
        mts_text_set(v->detail, sizeof(v->detail), "%s: %s", f->mx[i], h->reason);
    else
        mts_text_set(v->detail, sizeof(v->detail), "%s%s%s%s: %s%s%s", f->mx[i],
                     h->address[0] ? " [" : "", h->address, h->address[0] ? "]" : "",
                     tlsprobe_grade_name(h->grade), h->reason[0] ? ": " : "", h->reason);
}

/* Does mx[i] match the policy's mx patterns? */
static bool
mx_allows(const struct verdict_facts *f, size_t i)
{
    return f->mx_allowed != NULL ? f->mx_allowed[i] : status_result_mx_allows(f->status, f->mx[i]);
}

/* Is mx[i] one the mail can go to: a host matching an enforce policy (when
 * one does), else any. */
static bool
considered(const struct verdict_facts *f, size_t i, bool any_match)
{
    return !any_match || mx_allows(f, i);
}

/* require=tls / verified-tls: every MX host the mail can go to. */
static void
judge_tls_every_host(const struct rules_rule *r, const struct verdict_facts *f, struct verdict *out)
{
    const char *d = f->rcpt_domain, *req = rules_req_name(r->req);
    enum verdict_tls need = r->req == RULES_REQ_VERIFIED_TLS ? VERDICT_TLS_VERIFIED :
                            VERDICT_TLS_UNVERIFIED;
    bool any_match = false, unknown = false;
    size_t n_fail = 0, first_fail = 0, first_unknown = 0;
    enum verdict_tls worst = VERDICT_TLS_VERIFIED;
    char why[VERDICT_REASON_MAX / 2];

    if (!f->probes_on) {
        set_outcome(out, r->on_unknown, VERDICT_UNKNOWN,
                    "%s: require=%s cannot be judged: MX probes are off", d, req);
        return;
    }
    if (!f->mx_known) {
        out->tls = VERDICT_TLS_UNKNOWN;
        set_outcome(out, r->on_unknown, VERDICT_UNKNOWN,
                    "%s requires %s but its MX hosts could not be looked up", d, req);
        return;
    }
    for (size_t i = 0; f->status->status == STATUS_ENFORCE && i < f->n_mx && !any_match; i++)
        any_match = mx_allows(f, i);
    for (size_t i = 0; i < f->n_mx; i++) {
        enum verdict_tls t;

        if (!considered(f, i, any_match))
            continue;
        t = host_tls(f, i);
        if (t == VERDICT_TLS_UNKNOWN) {
            if (!unknown)
                first_unknown = i;
            unknown = true;
        } else if (t > need) {
            if (n_fail++ == 0)
                first_fail = i;
        }
        /* For the tag: none < unverified < unknown < verified. */
        if (t == VERDICT_TLS_NONE || (t == VERDICT_TLS_UNVERIFIED && worst != VERDICT_TLS_NONE) ||
            (t == VERDICT_TLS_UNKNOWN && worst == VERDICT_TLS_VERIFIED))
            worst = t;
    }
    out->tls = f->n_mx > 0 ? worst : VERDICT_TLS_UNKNOWN;
    if (n_fail > 0) {
        host_why(f, first_fail, out, why, sizeof(why));
        /* Not permanent: the reject rests on the probes, not on a policy
         * that a TXT re-check could replace (RFC 8461 §5). */
        set_outcome(out, r->on_fail, VERDICT_FAIL, "%s requires %s and its MX host %s%s", d, req,
                    why, n_fail > 1 ? " (and other hosts)" : "");
        return;
    }
    if (unknown || f->n_mx == 0) {
        if (f->n_mx > 0)
            host_why(f, first_unknown, out, why, sizeof(why));
        set_outcome(out, r->on_unknown, VERDICT_UNKNOWN,
                    "%s requires %s and the TLS of its MX hosts is not known yet: %s", d, req,
                    f->n_mx > 0 ? why : "no MX host");
        return;
    }
    if (!f->route_enforces) {
        set_outcome(out, r->on_fail, VERDICT_FAIL,
                    "%s requires %s and the route %s does not enforce it", d, req,
                    f->route ? f->route : "(unknown)");
        return;
    }
    set_outcome_join(out, VERDICT_TAG, VERDICT_PASS, d, ": ", req,
                     ": every MX host and the route comply", (const char *)NULL);
}

/* MTA-STS enforce with probes: one matching host passes verified TLS.
 * Returns false when the outcome is set (a failure or unknown). */
static bool
enforce_tls(const struct rules_rule *r, const struct verdict_facts *f, struct verdict *out)
{
    const char *d = f->rcpt_domain;
    bool unknown = false, unverified = false;
    size_t n_fail = 0, first_fail = 0, first_unknown = 0;
    char why[VERDICT_REASON_MAX / 2];

    for (size_t i = 0; i < f->n_mx; i++) {
        enum verdict_tls t;

        if (!mx_allows(f, i))
            continue;
        t = host_tls_sts(f, i);
        if (t == VERDICT_TLS_VERIFIED) {
            out->tls = VERDICT_TLS_VERIFIED;
            return true;
        }
        if (t == VERDICT_TLS_UNKNOWN) {
            if (!unknown)
                first_unknown = i;
            unknown = true;
        } else {
            unverified = unverified || t == VERDICT_TLS_UNVERIFIED;
            if (n_fail++ == 0)
                first_fail = i;
        }
    }
    if (unknown) {
        out->tls = VERDICT_TLS_UNKNOWN;
        host_why(f, first_unknown, out, why, sizeof(why));
        set_outcome(out, r->on_unknown, VERDICT_UNKNOWN,
                    "%s requires MTA-STS (enforce) and no MX host matching its policy is known "
                    "to pass verified TLS yet: %s", d, why);
        return false;
    }
    out->tls = unverified ? VERDICT_TLS_UNVERIFIED : VERDICT_TLS_NONE;
    host_why(f, first_fail, out, why, sizeof(why));
    set_outcome(out, r->on_fail, VERDICT_FAIL,
                "%s requires MTA-STS (enforce) and no MX host matching its policy passes "
                "verified TLS: %s%s", d, why, n_fail > 1 ? " (and the others fail too)" : "");
    out->permanent = r->on_fail == VERDICT_REJECT;
    return false;
}

/*
 * RFC 7672: a domain one of whose MX hosts the mail can go to has DANE
 * (usable secure TLSA records, or a TLSA lookup that failed) demands an
 * authenticated path: one such host must pass, by DANE where it has TLSA,
 * by WebPKI where it has none (the mixed case, see verdict.h). Returns
 * false when the outcome is set; *passed when DANE applied and passed.
 */
static bool
dane_gate(const struct rules_rule *r, const struct verdict_facts *f, struct verdict *out,
          bool *passed)
{
    const char *d = f->rcpt_domain;
    bool any_match = false, dane = false, unknown = false;
    size_t first_fail = 0, first_unknown = 0, n_fail = 0;
    char why[VERDICT_REASON_MAX / 2];

    *passed = false;
    if (!f->probes_on || !f->mx_known)
        return true;
    for (size_t i = 0; f->status->status == STATUS_ENFORCE && i < f->n_mx && !any_match; i++)
        any_match = mx_allows(f, i);
    /* A host not probed yet whose TLSA records say DANE applies makes a
     * domain with DANE too: its first message waits for that probe. */
    for (size_t i = 0; i < f->n_mx && !dane; i++)
        dane = considered(f, i, any_match) &&
               ((f->probe[i].state == PROBES_KNOWN && tlsa_dane_applies(f->probe[i].dane)) ||
                (f->probe[i].state == PROBES_NOT_YET && f->dane_expected != NULL &&
                 f->dane_expected[i]));
    if (!dane)
        return true;
    for (size_t i = 0; i < f->n_mx; i++) {
        enum verdict_tls t;

        if (!considered(f, i, any_match))
            continue;
        if ((t = host_tls(f, i)) == VERDICT_TLS_VERIFIED) {
            out->tls = VERDICT_TLS_VERIFIED;
            out->dane = f->probe[i].dane;
            out->pkix = host_pkix(f, i);
            *passed = true;
            return true;
        }
        if (t == VERDICT_TLS_UNKNOWN) {
            if (!unknown)
                first_unknown = i;
            unknown = true;
        } else if (n_fail++ == 0 || (tlsa_dane_applies(f->probe[i].dane) &&
                                     !tlsa_dane_applies(f->probe[first_fail].dane))) {
            first_fail = i;	/* name a DANE host first */
        }
    }
    out->tls = unknown ? VERDICT_TLS_UNKNOWN : VERDICT_TLS_UNVERIFIED;
    if (unknown) {
        host_why(f, first_unknown, out, why, sizeof(why));
        set_outcome(out, r->on_unknown, VERDICT_UNKNOWN,
                    "%s has DANE (TLSA records) and no MX host is known to pass authenticated "
                    "TLS yet: %s", d, why);
        return false;
    }
    out->dane = f->probe[first_fail].dane;
    out->pkix = host_pkix(f, first_fail);
    host_why(f, first_fail, out, why, sizeof(why));
    set_outcome(out, r->on_fail, VERDICT_FAIL,
                "%s has DANE (TLSA records) and no MX host passes authenticated TLS: %s%s", d,
                why, n_fail > 1 ? " (and the others fail too)" : "");
    return false;
}

static void
judge_rule(const struct rules *rules, const struct verdict_facts *f,
            struct verdict *out)
{
    bool dane_passed = false, dane_decided;
    const struct rules_rule *r = rules_match(rules, f->sender, f->auth, f->rcpt_domain);
    const struct status_result *st = f->status;
    const char *d = f->rcpt_domain;
    bool any_match = false;

    memset(out, 0, sizeof(*out));
    out->rule = r;
    if (r == NULL)
        r = &default_rule;
    out->req = r->req;

    if (r->req == RULES_REQ_NONE) {
        set_outcome_join(out, VERDICT_TAG, VERDICT_NOT_REQUIRED, d,
                         ": no transport security required (", r->where, ")", (const char *)NULL);
        return;
    }
    if (r->req == RULES_REQ_TLS || r->req == RULES_REQ_VERIFIED_TLS) {
        judge_tls_every_host(r, f, out);
        return;
    }
    /* RFC 8461 §2: MTA-STS never overrides a failing DANE validation. */
    if (!dane_gate(r, f, out, &dane_passed))
        return;
    if (st->status == STATUS_UNKNOWN) {
        set_outcome(out, r->on_unknown, VERDICT_UNKNOWN,
                    "MTA-STS status of %s could not be determined: %s", d,
                    st->error[0] ? st->error : "no reason given");
        return;
    }
    /* A pass DANE decided holds only when the route enforces DANE. */
    dane_decided = dane_passed && tlsa_dane_applies(out->dane);
    if (st->status != STATUS_ENFORCE && dane_decided && !f->route_enforces_dane) {
        set_outcome(out, r->on_fail, VERDICT_FAIL, "%s has DANE (TLSA records) and the route "
                    "%s does not enforce DANE", d, f->route ? f->route : "(unknown)");
        return;
    }
    if (st->status != STATUS_ENFORCE && dane_passed) {
        set_outcome_join(out, VERDICT_TAG, VERDICT_PASS, d,
                         ": DANE (RFC 7672): an MX host passes authenticated TLS", (const char *)NULL);
        return;
    }
    if (st->status != STATUS_ENFORCE) {
        /* absent, failed (RFC 8461 §3.3), none, testing: nothing demanded. */
        set_outcome_join(out, VERDICT_TAG, VERDICT_NOT_REQUIRED, d, ": MTA-STS ",
                         status_kind_name(st->status), ", nothing required", (const char *)NULL);
        return;
    }
    if (!f->mx_known) {
        set_outcome(out, r->on_unknown, VERDICT_UNKNOWN,
                    "%s requires MTA-STS but its MX hosts could not be looked up", d);
        return;
    }
    for (size_t i = 0; i < f->n_mx && !any_match; i++)
        any_match = mx_allows(f, i);
    if (!any_match) {
        /* It can never be delivered under this policy: a permanent failure,
         * except where a rule asks for something milder. */
        enum verdict_action a = out->rule == NULL ? VERDICT_REJECT : r->on_fail;
        set_outcome(out, a, VERDICT_FAIL,
                    "%s requires MTA-STS (enforce) and none of its MX hosts (%s%s) matches "
                    "its policy", d, f->n_mx > 0 ? f->mx[0] : "none",
                    f->n_mx > 1 ? ", ..." : "");
        out->permanent = a == VERDICT_REJECT;
        return;
    }
    if (f->probes_on && !enforce_tls(r, f, out))
        return;
    if (!f->route_enforces && dane_decided && f->route_enforces_dane) {
        set_outcome_join(out, VERDICT_TAG, VERDICT_PASS, d,
                         ": DANE (RFC 7672): an MX host passes authenticated TLS and the route "
                         "enforces DANE", (const char *)NULL);
        return;
    }
    if (!f->route_enforces) {
        set_outcome(out, r->on_fail, VERDICT_FAIL,
                    "%s requires MTA-STS (enforce) and the route %s does not enforce it%s", d,
                    f->route ? f->route : "(unknown)", dane_decided ? " nor DANE" : "");
        out->permanent = r->on_fail == VERDICT_REJECT;
        return;
    }
    set_outcome_join(out, VERDICT_TAG, VERDICT_PASS, d, ": MTA-STS enforce, MX",
                     f->probes_on ? ", MX TLS" : "", " and route comply", (const char *)NULL);
}

/*
 * RFC 8689 REQUIRETLS: is the path authenticated? DANE, or what the
 * built-in default rule says of MTA-STS (an enforce policy whose matching
 * MX hosts and route pass). Refuses (see verdict.h) when it is not.
 */
static void
judge_requiretls(const struct verdict_facts *f, struct verdict *out)
{
    struct verdict sts;
    enum verdict_action a;
    const char *d = f->rcpt_domain;

    if (f->dane_authenticated) {
        out->requiretls = VERDICT_PASS;
        return;
    }
    judge_rule(NULL, f, &sts);
    if (sts.outcome == VERDICT_PASS) {
        out->requiretls = VERDICT_PASS;
        return;
    }
    /* What may change soon is deferred; what is known is rejected. */
    if (sts.outcome == VERDICT_UNKNOWN || f->status->status == STATUS_FAILED) {
        out->requiretls = VERDICT_UNKNOWN;
        a = VERDICT_DEFER;
    } else {
        out->requiretls = VERDICT_FAIL;
        a = VERDICT_REJECT;
    }
    if (a < out->action)
        return;			/* the rule's refusal is more severe */
    out->action = a;
    out->outcome = out->requiretls;
    out->requiretls_refused = true;
    /* A reject that rests on a cached enforce policy waits for its re-check. */
    out->permanent = a == VERDICT_REJECT && f->status->status == STATUS_ENFORCE;
    if (f->status->status == STATUS_FAILED)
        mts_text_set(out->reason, sizeof(out->reason), "REQUIRETLS: %s has no authenticated "
                     "path now (its MTA-STS policy could not be fetched; no DANE)", d);
    else if (f->status->status == STATUS_ENFORCE || sts.outcome == VERDICT_UNKNOWN ||
             sts.dane != 0)
        mts_text_set(out->reason, sizeof(out->reason),
                     "REQUIRETLS: the path to %s is not authenticated: %s", d, sts.reason);
    else
        mts_text_set(out->reason, sizeof(out->reason), "REQUIRETLS: %s has no authenticated "
                     "path (no MTA-STS enforce policy: %s; no DANE)", d,
                     status_kind_name(f->status->status));
}

void
verdict_decide(const struct rules *rules, const struct verdict_facts *f,
               struct verdict *out)
{
    judge_rule(rules, f, out);
    if (f->requiretls)
        judge_requiretls(f, out);
}

/* ------------------------------------------------------------ route */

/* A name's length without one trailing dot: "mx.example." is "mx.example". */
static size_t
name_len(const char *s, size_t len)
{
    return len > 1 && s[len - 1] == '.' ? len - 1 : len;
}

/* Are s[0..len) and t the same host name (case, one trailing dot aside)? */
static bool
same_name(const char *s, size_t len, const char *t)
{
    size_t sl = name_len(s, len), tl = name_len(t, strlen(t));

    return sl == tl && strncasecmp(s, t, sl) == 0;
}

static bool
list_has(const struct config_list *l, const char *s, size_t len)
{
    for (size_t i = 0; i < l->n; i++)
        if (same_name(s, len, l->v[i]))
            return true;
    return false;
}

/* The route the MTA named, or the configured default when it named none;
 * route holds the default's copy. */
static void
route_of(const struct config *cfg, const char **mailer, const char **host, char *route,
         size_t routesz)
{
    const char *colon;

    if ((*mailer == NULL || **mailer == '\0') && (*host == NULL || **host == '\0')) {
        /* The MTA did not say: the configured default route applies. */
        snprintf(route, routesz, "%s", cfg->default_route);
        colon = strchr(route, ':');
        if (colon != NULL)
            route[colon - route] = '\0';
        *mailer = route;
        *host = colon ? cfg->default_route + (colon - route) + 1 : "";
    }
    if (*host == NULL)
        *host = "";
}

/* The next hop's name: "[relay.example]:587" and "relay.example" name the
 * same relay. */
static const char *
hop_name(const char *host, size_t *len)
{
    const char *h = host, *colon;

    *len = strlen(h);
    if (h[0] == '[') {
        const char *close = strchr(h, ']');
        h++;
        *len = close ? (size_t)(close - h) : *len - 1;
    } else if ((colon = strrchr(h, ':')) != NULL && strchr(h, ':') == colon) {
        *len = (size_t)(colon - h);
    }
    return h;
}

bool
verdict_route_enforces(const struct config *cfg, const struct maproute *map,
                       const char *mailer, const char *host, const char *rcpt_domain,
                       char *desc, size_t descsz)
{
    char route[300];
    const char *h;
    size_t hl;

    route_of(cfg, &mailer, &host, route, sizeof(route));
    mts_text_join(desc, descsz, mailer ? mailer : "", ":", host, (const char *)NULL);
    if (mailer != NULL && list_has(&cfg->enforcing_transports, mailer, strlen(mailer)))
        return true;
    h = hop_name(host, &hl);
    /* A transport whose TLS policy map is this daemon's own enforces by
     * construction, when the map is asked about the recipient's domain:
     * the next hop is that domain (a relay would be asked about instead).
     * Sendmail passes {rcpt_host} fully qualified once it has looked the
     * domain up in DNS ("partner.example."): the same next hop. */
    if (maproute_has(map, mailer) &&
        (hl == 0 || (rcpt_domain != NULL && same_name(h, hl, rcpt_domain))))
        return true;
    if (hl == 0)
        return false;
    return list_has(&cfg->enforcing_relays, h, hl);
}

bool
verdict_route_enforces_dane(const struct config *cfg, const struct maproute *map,
                            const char *mailer, const char *host, const char *rcpt_domain,
                            bool map_answers)
{
    char route[300];
    const char *h;
    size_t hl;

    route_of(cfg, &mailer, &host, route, sizeof(route));
    h = hop_name(host, &hl);
    /* A relay trusted to enforce downstream enforces DANE too. */
    if (hl > 0 && list_has(&cfg->enforcing_relays, h, hl))
        return true;
    /* Postfix's DANE looks up the TLSA records of the next hop's MX hosts:
     * through a relay, the relay's. */
    if (!maproute_has_dane(map, mailer) ||
        (hl > 0 && (rcpt_domain == NULL || !same_name(h, hl, rcpt_domain))))
        return false;
    /* This daemon's map, first in the transport's smtp_tls_policy_maps,
     * replaces the level for the domains it answers (secure match=...). */
    return !(map_answers && maproute_has(map, mailer));
}
