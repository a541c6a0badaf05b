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
                const struct verdict_rules *rules, struct mts_err *err)
{
    struct mts_err e;

    memset(ctx, 0, sizeof(*ctx));
    ctx->v.cfg = cfg;
    ctx->v.rules = rules;
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
    const struct verdict_rule *r = verdict_rule_match(ctx->v.rules, s->sender, s->auth, "");
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
    out->dry_run = refused && ctx->v.cfg->dry_run && out->scope != DECIDE_INTERNAL_ERROR;
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
        !(out->outcome == VERDICT_UNKNOWN && out->status == DISCOVER_UNKNOWN))
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

/* Looks the domain up and judges it (out->domain is set and in scope). */
static void
judge(const struct decide_ctx *ctx, const struct decide_session *s,
      const struct decide_rcpt *r, const struct timespec *deadline, struct decision *out)
{
    struct verdict_request req = {s->sender, s->auth, out->domain, r->mailer, r->host, s->who,
                                  s->requiretls};
    /* On the heap: this runs on libmilter threads, whose stacks may be small. */
    struct verdict *v = calloc(1, sizeof(*v));
    struct discover_result *st = calloc(1, sizeof(*st));

    if (v == NULL || st == NULL) {
        out->scope = DECIDE_INTERNAL_ERROR;
        out->action = decide_internal_error_action(ctx->v.cfg);
        mts_text_set(out->reason, sizeof(out->reason), "internal error (out of memory)");
        mts_text_set(out->why, sizeof(out->why), "%s", out->reason);
    } else {
        verdict_for_recipient(&ctx->v, &req, deadline, v, st);
        out->scope = DECIDE_IN_SCOPE;
        out->status = st->status;
        mts_text_set(out->txt_id, sizeof(out->txt_id), "%s", st->txt_id);
        out->req = v->req;
        out->outcome = v->outcome;
        out->action = v->action;
        out->tls = v->tls;
        out->rule = v->rule;
        out->requiretls = v->requiretls;
        out->requiretls_refused = v->requiretls_refused;
        mts_text_set(out->reason, sizeof(out->reason), "%s", v->reason);
        mts_text_set(out->why, sizeof(out->why), "%s", v->reason);
        discover_result_free(st);
    }
    public_reason(out);
    free(st);
    free(v);
}

void
decide_recipient(const struct decide_ctx *ctx, const struct decide_session *s,
                 const struct decide_rcpt *r, const struct timespec *deadline,
                 struct decision *out)
{
    const struct config *cfg = ctx->v.cfg;
    struct mts_err err;
    enum address_result ar;

    memset(out, 0, sizeof(*out));
    out->status = DISCOVER_UNKNOWN;
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
        judge(ctx, s, r, deadline, out);
        break;
    }
    finish(ctx, s, out);
}
