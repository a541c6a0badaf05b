/*
 * decide - the per-recipient decision shared by the milter and explain;
 * see decide.h.
 */
#include "decide.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "address.h"
#include "cache.h"
#include "clock.h"
#include "danemap.h"
#include "metrics.h"
#include "probes.h"

const struct nametab decide_effect_names[] = {
    {"untouched", DECIDE_UNTOUCHED},
    {"tag", DECIDE_TAG},
    {"defer", DECIDE_DEFER},
    {"reject", DECIDE_REJECT},
    {"hold", DECIDE_HOLD},
    {NULL, -1},
};

/* Why a recipient is out of scope, for `explain`. */
static const struct nametab out_of_scope_why[] = {
    {"the session is not in scope (act_on)", DECIDE_NOT_IN_ACT_ON},
    {"null address", DECIDE_NULL_ADDRESS},
    {"no domain (local name or address literal)", DECIDE_NO_DOMAIN},
    {"a local domain (local_domains)", DECIDE_LOCAL_DOMAIN},
    {NULL, -1},
};

int
decide_ctx_init(struct decide_ctx *ctx, const struct config *cfg,
                const struct rules *rules, struct mts_err *err)
{
    struct mts_err e;

    memset(ctx, 0, sizeof(*ctx));
    ctx->cfg = cfg;
    ctx->rules = rules;
    if (reply_code_parse(cfg->defer_reply, '4', &ctx->defer, &e) != 0) {
        mts_err_set(err, "%s: option defer_reply: %s", cfg->path, e.msg);
        return -1;
    }
    if (reply_code_parse(cfg->reject_reply, '5', &ctx->reject, &e) != 0) {
        mts_err_set(err, "%s: option reject_reply: %s", cfg->path, e.msg);
        return -1;
    }
    /* RFC 8689 registers X.7.30 "REQUIRETLS support required". */
    if (reply_code_parse("450 4.7.30", '4', &ctx->requiretls_defer, &e) != 0 ||
        reply_code_parse("550 5.7.30", '5', &ctx->requiretls_reject, &e) != 0) {
        mts_err_set(err, "REQUIRETLS reply codes: %s", e.msg);
        return -1;
    }
    return 0;
}

bool
decide_in_scope(const struct config *cfg, const struct decide_session *s)
{
    if ((cfg->act_on_flags & CONFIG_ACT_ON_ALL) ||
        ((cfg->act_on_flags & CONFIG_ACT_ON_AUTHENTICATED) && s->auth != NULL) ||
        ((cfg->act_on_flags & CONFIG_ACT_ON_NON_SMTPD) && s->non_smtpd))
        return true;
    for (size_t i = 0; s->daemon != NULL && i < cfg->act_on_daemons.n; i++)
        if (strcmp(cfg->act_on_daemons.v[i], s->daemon) == 0)
            return true;
    return false;
}

enum verdict_action
decide_internal_error_action(const struct config *cfg)
{
    return (enum verdict_action)cfg->on_internal_error;
}

static bool
is_local_domain(const struct config *cfg, const char *domain)
{
    for (size_t i = 0; i < cfg->local_domains.n; i++)
        if (strcasecmp(cfg->local_domains.v[i], domain) == 0)
            return true;
    return false;
}

/* The action for a recipient whose address cannot be read. */
static enum verdict_action
unreadable_action(const struct decide_ctx *ctx, const struct decide_session *s)
{
    /* Only rules without rcpt= can match a recipient without a domain. */
    const struct rules_rule *r = rules_match(ctx->rules, s->sender, s->auth, "");
    return r != NULL ? r->on_unknown : VERDICT_DEFER;
}

/* From out->action and out->reason: the hold, the dry run and the reply. */
static void
finish(const struct decide_ctx *ctx, const struct decide_session *s, struct decision *out)
{
    char text[VERDICT_REASON_MAX + 16];
    bool refused = out->action != VERDICT_TAG;

    out->effect = !refused ? DECIDE_TAG : s->non_smtpd ? DECIDE_HOLD :
                  out->action == VERDICT_REJECT ? DECIDE_REJECT : DECIDE_DEFER;
    /* An internal error is not a verdict: dry_run does not soften it. */
    out->dry_run = refused && ctx->cfg->dry_run && out->scope != DECIDE_INTERNAL_ERROR;
    out->applied = out->dry_run ? DECIDE_TAG : out->effect;
    if (refused && out->requiretls_refused) {
        /* The reason says "REQUIRETLS: " itself. */
        reply_build(out->action == VERDICT_REJECT ? &ctx->requiretls_reject :
                    &ctx->requiretls_defer, out->reason, &out->reply);
    } else if (refused) {
        snprintf(text, sizeof(text), "MTA-STS: %s", out->reason);
        reply_build(out->action == VERDICT_REJECT ? &ctx->reject : &ctx->defer, text,
                    &out->reply);
    }
}

static void
out_of_scope(struct decision *out, enum decide_scope scope)
{
    out->scope = scope;
    mts_text_set(out->why, sizeof(out->why), "%s",
                 nametab_name(out_of_scope_why, (int)scope));
}

/*
 * The text the SMTP client sees. A failure the sender can act on (the MX
 * hosts do not match the policy, the route does not enforce it, an MX
 * host's TLS) keeps its reason; a status that could not be learnt and
 * internal errors say only that: their reason may name the cache file or
 * the resolver, and goes to the log with the queue id (and to explain) as
 * out->why.
 */
static void
public_reason(struct decision *out)
{
    if (out->scope != DECIDE_INTERNAL_ERROR &&
        !(out->outcome == VERDICT_UNKNOWN && out->status == STATUS_UNKNOWN))
        return;
    if (out->requiretls_refused && out->scope != DECIDE_INTERNAL_ERROR)
        mts_text_set(out->reason, sizeof(out->reason),
                     "REQUIRETLS: the path to %s could not be determined now; try again later",
                     out->domain);
    else if (out->action == VERDICT_REJECT)
        mts_text_set(out->reason, sizeof(out->reason),
                     "MTA-STS status of %s could not be determined", out->domain);
    else
        mts_text_set(out->reason, sizeof(out->reason),
                     "MTA-STS status of %s could not be determined now; try again later",
                     out->domain);
}

/* The facts of one recipient, gathered within its deadline. */
struct gather {
    const struct decide_ctx *ctx;
    const struct decide_session *s;
    const struct decide_rcpt *r;
    const char *domain;
    const struct timespec *deadline;
    struct verdict_facts f;
    struct status_result *st;
    char route[300];
    char (*mx)[254];		/* DISCOVER_MAX_MX */
    const char *mxp[DISCOVER_MAX_MX];
    const char *probed[DISCOVER_MAX_MX];	/* the hosts whose probes decide; NULL: not asked */
    bool tls_req;		/* the rule requires tls or verified-tls */
    bool dane_req;		/* DANE may demand a path (the mta-sts requirement) */
    bool dane_expected[DISCOVER_MAX_MX];	/* verdict_facts.dane_expected */
    bool mx_allowed[DISCOVER_MAX_MX];	/* verdict_facts.mx_allowed */
    struct probes_host *ph;	/* DISCOVER_MAX_MX, when probes are on */
    int n_mx;			/* -1: not looked up (yet) */
    bool mx_secure;		/* the MX RRset was DNSSEC-secure (discover_mx_sec_as) */
};

/*
 * The MX set and what memory knows of the probes of the hosts that decide
 * (a host not probed yet is queued now): for an enforce domain those
 * matching its policy (the others take no mail under it; when none
 * matches, the verdict needs no probe), else every host. probed[i] names
 * the hosts asked for, NULL for the others (their probe_host says why).
 */
static void
gather_mx(struct gather *g)
{
    const struct decide_ctx *ctx = g->ctx;
    const struct status_result *st = g->st;
    struct mts_err err;
    bool any_match = false;
    int64_t n_asked = 0;

    g->n_mx = clock_ms_until(g->deadline) > 0
                  ? discover_mx_sec_as(ctx->discover, g->domain, g->deadline, g->s->who, g->mx,
                                       &g->mx_secure, &err)
                  : -1;
    if (g->ph != NULL && g->n_mx > 0)
        memset(g->ph, 0, (size_t)g->n_mx * sizeof(*g->ph));
    /* Each host matched against the policy once a recipient: the
     * verdict asks it several times (verdict_facts.mx_allowed). */
    for (int i = 0; i < g->n_mx; i++) {
        g->mxp[i] = g->mx[i];
        g->mx_allowed[i] = status_result_mx_allows(st, g->mx[i]);
        any_match = any_match || (st->status == STATUS_ENFORCE && g->mx_allowed[i]);
    }
    for (int i = 0; g->ph != NULL && i < g->n_mx; i++) {
        const struct discover_caller *who = g->s->who;

        g->probed[i] = NULL;
        if (strcmp(g->mx[i], ".") == 0)
            continue;
        g->ph[i].state = PROBES_NOT_YET;
        if (st->status == STATUS_ENFORCE &&
            (!any_match ? !g->tls_req : !g->mx_allowed[i])) {
            mts_text_set(g->ph[i].reason, sizeof(g->ph[i].reason),
                         "%s is not probed: it does not decide the verdict", g->mx[i]);
            continue;
        }
        /* A domain with many MX names cannot make us probe them all. */
        if (n_asked == ctx->cfg->probe_hosts_per_domain) {
            mts_text_set(g->ph[i].reason, sizeof(g->ph[i].reason),
                         "%s is not probed: the domain has more MX hosts than are probed "
                         "for one domain", g->mx[i]);
            continue;
        }
        n_asked++;
        if (probes_get_as(ctx->probes, g->mx[i], who ? who->sender : NULL, who ? who->conn : 0,
                          &g->ph[i]) == 0)
            g->probed[i] = g->mx[i];	/* a host a cap refused is not waited for */
    }
    /* RFC 7672: a domain without an enforce policy may still have DANE,
     * which its hosts' TLSA records tell before their probes do (for an
     * enforce domain the verdict waits for the probes anyway). */
    for (int i = 0; g->ph != NULL && g->dane_req && st->status != STATUS_ENFORCE && i < g->n_mx;
         i++)
        g->dane_expected[i] = g->probed[i] != NULL && g->ph[i].state == PROBES_NOT_YET &&
                              probes_dane_expected(ctx->probes, g->mx[i], g->deadline);
    g->f.dane_expected = g->dane_expected;
    g->f.mx_allowed = g->mx_allowed;
    g->f.mx_known = g->n_mx >= 0;
    g->f.n_mx = g->n_mx > 0 ? (size_t)g->n_mx : 0;
}

/*
 * The verdict; while it is unknown only because a host that decides is
 * not probed yet, waits for the probes (woken by each result) and judges
 * again, until the deadline: the first message to a domain is answered
 * from its probes, and the rule's unknown= applies only at the deadline.
 */
/*
 * Our map answers "dane-only" for a domain DANE decides at every MX host
 * (danemap.h, the same rule over the same memory as map_query.c): a
 * route through a map transport then enforces DANE, and no longer
 * WebPKI's "secure match=" (verdict_route_enforces with the map: the
 * transport, or an enforcing relay). Judged again with every probe result.
 */
static void
route_dane(struct gather *g)
{
    const struct decide_ctx *ctx = g->ctx;
    char scratch[sizeof(g->route)];

    if (g->ph == NULL || g->n_mx <= 0 || g->n_mx > ctx->cfg->probe_hosts_per_domain ||
        !danemap_only(g->st, g->mx_secure, g->mxp, (size_t)g->n_mx, g->ph, g->mx_allowed))
        return;
    g->f.route_enforces_dane =
        verdict_route_enforces_dane(ctx->cfg, ctx->map_routes, g->r->mailer, g->r->host,
                                    g->domain, false) ||
        verdict_route_enforces(ctx->cfg, ctx->map_routes, g->r->mailer, g->r->host, g->domain,
                               scratch, sizeof(scratch));
}

static void
judge_waiting(struct gather *g, struct verdict *out)
{
    for (;;) {
        route_dane(g);
        verdict_decide(g->ctx->rules, &g->f, out);
        if (g->ph == NULL || g->n_mx <= 0 || out->outcome != VERDICT_UNKNOWN ||
            g->st->status == STATUS_UNKNOWN ||
            !probes_wait(g->ctx->probes, g->probed, (size_t)g->n_mx, g->deadline, g->ph))
            return;
    }
}

/* Status, route, MX set and probes; the verdict over them; the §5
 * re-check before a reject that rests on a cached policy. */
static void
gather_and_judge(struct gather *g, struct verdict *out)
{
    const struct decide_ctx *ctx = g->ctx;
    const struct rules_rule *rule =
        rules_match(ctx->rules, g->s->sender, g->s->auth, g->domain);
    bool tls_req = rule != NULL &&
                   (rule->req == RULES_REQ_TLS || rule->req == RULES_REQ_VERIFIED_TLS);
    /* DANE (RFC 7672) may demand a path of any domain: its MX hosts' probes
     * carry their TLSA outcome (the mta-sts requirement only, verdict.h). */
    bool dane_req = ctx->probes != NULL && (rule == NULL || rule->req == RULES_REQ_MTA_STS);
    char old_id[POLICY_ID_MAX + 1];	/* the policy id before a §5 re-check */
    struct status_result *st = g->st;

    g->tls_req = tls_req;
    g->dane_req = dane_req;
    g->f.sender = g->s->sender;
    g->f.auth = g->s->auth;
    g->f.rcpt_domain = g->domain;
    g->f.status = st;
    g->f.route = g->route;
    g->f.probes_on = ctx->probes != NULL;
    g->f.probe = g->ph;
    g->f.mx = g->mxp;
    g->f.requiretls = g->s->requiretls;
    g->n_mx = -1;

    discover_lookup_as(ctx->discover, g->domain, g->deadline, 0, g->s->who, st);
    /* Our MTA-STS map enforces a TLS floor only for a domain with an
     * enforce policy (it answers NOTFOUND for the others): for tls and
     * verified-tls elsewhere only the declared transports and relays count. */
    g->f.route_enforces = verdict_route_enforces(
        ctx->cfg, tls_req && st->status != STATUS_ENFORCE ? NULL : ctx->map_routes,
        g->r->mailer, g->r->host, g->domain, g->route, sizeof(g->route));
    /* Our map answers (secure match=...) for enforce domains only. */
    g->f.route_enforces_dane = verdict_route_enforces_dane(
        ctx->cfg, ctx->map_routes, g->r->mailer, g->r->host, g->domain,
        st->status == STATUS_ENFORCE);
    for (int pass = 0; pass < 2; pass++) {
        if ((st->status == STATUS_ENFORCE || tls_req ||
             (dane_req && st->status != STATUS_UNKNOWN)) && g->n_mx < 0)
            gather_mx(g);
        judge_waiting(g, out);
        /* Only a reject that rests on the policy waits for a re-check;
         * a rule's unknown=reject, say, stands as it is. */
        if (out->action != VERDICT_REJECT || !out->permanent || pass == 1 || st->rechecked)
            break;
        /* RFC 8461 §5: no permanent failure before checking for a new policy. */
        mts_text_copy(old_id, sizeof(old_id), st->txt_id);
        status_result_free(st);
        if (clock_ms_until(g->deadline) <= 0) {
            st->rechecked = false;
            metrics_recheck(METRICS_RECHECK_NO_TIME);
        } else {
            discover_lookup_as(ctx->discover, g->domain, g->deadline, DISCOVER_RECHECK,
                               g->s->who, st);
            metrics_recheck(!st->rechecked ? METRICS_RECHECK_INCOMPLETE
                            : strcmp(old_id, st->txt_id) != 0 ? METRICS_RECHECK_NEW_POLICY
                                                               : METRICS_RECHECK_SAME);
        }
        if (!st->rechecked) {
            out->action = VERDICT_DEFER;
            out->permanent = false;
            mts_text_set(out->reason + strlen(out->reason),
                         sizeof(out->reason) - strlen(out->reason),
                         "; the policy could not be re-checked in time");
            break;
        }
    }
}

/* What judge works with, in one block: its MX names and probe results are
 * 30 KB, which the warm path must neither allocate nor clear on every
 * recipient (gather_mx clears the entries of the hosts the domain has). */
struct decide_work {
    struct verdict v;
    struct status_result st;
    struct gather g;
    char mx[DISCOVER_MAX_MX][254];
    struct probes_host ph[DISCOVER_MAX_MX];
};

/* Looks the domain up and judges it (out->domain is set and in scope). */
static void
judge(const struct decide_ctx *ctx, const struct decide_session *s,
      const struct decide_rcpt *r, const struct timespec *deadline, struct decision *out)
{
    /* On the heap: this runs on libmilter threads, whose stacks may be small. */
    struct decide_work *w = s->work != NULL ? s->work : malloc(sizeof(*w));

    if (w == NULL) {
        out->scope = DECIDE_INTERNAL_ERROR;
        out->action = decide_internal_error_action(ctx->cfg);
        mts_text_copy(out->reason, sizeof(out->reason), "internal error (out of memory)");
        mts_text_copy(out->why, sizeof(out->why), out->reason);
    } else {
        struct verdict *v = &w->v;
        struct status_result *st = &w->st;
        struct gather *g = &w->g;
        struct probes_host *ph = ctx->probes ? w->ph : NULL;

        memset(v, 0, sizeof(*v));
        memset(st, 0, sizeof(*st));
        memset(g, 0, sizeof(*g));
        g->ctx = ctx;
        g->s = s;
        g->r = r;
        g->domain = out->domain;
        g->deadline = deadline;
        g->st = st;
        g->mx = w->mx;
        g->ph = ph;
        gather_and_judge(g, v);
        out->scope = DECIDE_IN_SCOPE;
        out->status = st->status;
        mts_text_copy(out->txt_id, sizeof(out->txt_id), st->txt_id);
        out->req = v->req;
        out->outcome = v->outcome;
        out->action = v->action;
        out->tls = v->tls;
        out->dane = v->dane;
        out->pkix = v->pkix;
        mts_text_copy(out->origin, sizeof(out->origin), st->origin);
        for (int i = 0; ph != NULL && i < g->n_mx && out->probe_origin[0] == '\0'; i++)
            if (ph[i].state == PROBES_KNOWN)
                mts_text_copy(out->probe_origin, sizeof(out->probe_origin), ph[i].source);
        out->rule = v->rule;
        out->requiretls = v->requiretls;
        out->requiretls_refused = v->requiretls_refused;
        mts_text_copy(out->reason, sizeof(out->reason), v->reason);
        /* The probe's details are for the log, never the reply. */
        mts_text_join(out->why, sizeof(out->why), v->reason,
                      v->detail[0] != '\0' ? "; probe: " : "", v->detail, (const char *)NULL);
        status_result_free(st);
    }
    public_reason(out);
    if (w != s->work)
        free(w);
}

struct decide_work *
decide_work_new(void)
{
    return malloc(sizeof(struct decide_work));
}

void
decide_work_free(struct decide_work *w)
{
    free(w);
}

void
decide_recipient(const struct decide_ctx *ctx, const struct decide_session *s,
                 const struct decide_rcpt *r, const struct timespec *deadline,
                 struct decision *out)
{
    const struct config *cfg = ctx->cfg;
    struct mts_err err;
    enum address_result ar;

    memset(out, 0, sizeof(*out));
    out->status = STATUS_UNKNOWN;
    out->action = VERDICT_TAG;
    out->effect = out->applied = DECIDE_UNTOUCHED;
    out->requiretls_asked = s->requiretls;
    ar = address_domain(r->address, out->domain, sizeof(out->domain), &err);
    if (ar != ADDRESS_OK)
        out->domain[0] = '\0';
    if (!decide_in_scope(cfg, s)) {
        out_of_scope(out, DECIDE_NOT_IN_ACT_ON);
        return;
    }
    switch (ar) {
    case ADDRESS_INVALID:
        out->scope = DECIDE_UNREADABLE;
        out->action = unreadable_action(ctx, s);
        mts_text_set(out->reason, sizeof(out->reason),
                     "the recipient address could not be read");
        mts_text_set(out->why, sizeof(out->why), "%s", err.msg);
        break;
    case ADDRESS_NULL:
        out_of_scope(out, DECIDE_NULL_ADDRESS);
        return;
    case ADDRESS_NO_DOMAIN:
        out_of_scope(out, DECIDE_NO_DOMAIN);
        return;
    case ADDRESS_OK:
        if (is_local_domain(cfg, out->domain)) {
            out_of_scope(out, DECIDE_LOCAL_DOMAIN);
            return;
        }
        {
            /* Every read of the shared cache on the way waits at most until
             * the deadline, not only the status and MX set reads that bound
             * themselves: explain reads probe rows on a miss
             * (probes_load_on_miss) on the probe engine's connection, which
             * its write queue holds through SQLite's busy wait. */
            const struct timespec *outer = cache_bound_waits(deadline);

            judge(ctx, s, r, deadline, out);
            (void)cache_bound_waits(outer);
        }
        break;
    }
    finish(ctx, s, out);
}
