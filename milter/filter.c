/*
 * filter - the libmilter callbacks: per-recipient decisions at RCPT TO
 * (decide_recipient, mapped to SMFIS codes and replies), tag headers and
 * the hold at end of message.
 *
 * State: one struct conn per connection (smfi priv), holding a reference
 * to the runtime it started with, and the message state that MAIL FROM,
 * RSET (abort) and end of message reset, so nothing leaks from one message
 * to the next. Every libmilter call goes through the smfi table.
 */
#define _GNU_SOURCE 1  /* asprintf */
#include "filter.h"
#include "tlsa.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "address.h"
#include "clock.h"
#include "decide.h"
#include "log.h"
#include "metrics.h"
#include "statsd.h"
#include "reply.h"
#include "runtime.h"
#include "smfi.h"

#define MAX_TAGS 100		/* distinct recipient domains tagged per message */
/* The tagged recipients' log line: what fits in one log line with its queue id. */
#define RCPTLOG_MAX 900

struct tag {
    char domain[254];
    bool set;			/* a recipient's decision is recorded */
    enum status_kind status;
    char txt_id[POLICY_ID_MAX + 1];
    enum rules_req req;
    enum verdict_outcome outcome;
    enum verdict_action action;
    enum decide_effect effect;	/* tag, defer, reject, hold */
    bool dry_run;
    enum verdict_tls tls;	/* what the MX probes showed; UNSEEN: no tls= */
    int dane;			/* enum tlsa_dane DANE decided by; 0: no dane= */
    enum verdict_outcome requiretls;	/* with REQUIRETLS: is the path authenticated */
};

struct conn {
    struct runtime *rt;
    bool non_smtpd;		/* Postfix non_smtpd_milters: sendmail(1), pickup */
    uint64_t id;		/* unique in the process: the per-connection lookup cap */
    char client[INET6_ADDRSTRLEN];	/* the client's address, "": unknown */
    /* the message */
    bool act;
    char *sender;
    char *auth;
    char *daemon;
    bool requiretls;		/* MAIL FROM carried REQUIRETLS (RFC 8689) */
    bool tls_required_no;	/* a "TLS-Required: No" header (RFC 8689) */
    char qid[64];
    size_t n_tags;
    size_t cap_tags;		/* tags[]'s room, kept from message to message */
    struct tag *tags;
    int forged;			/* copies of our header that came with it */
    size_t untagged;		/* recipients past MAX_TAGS domains: no tag */
    char *hold_reason;
    /* The recipients tagged since the last log line, for one line a message. */
    char rcptlog[RCPTLOG_MAX];
    size_t rcptlog_len;
    struct decision dec;	/* the recipient being decided: no allocation per RCPT */
    struct decide_work *work;	/* decide's scratch, from the first recipient on */
};

/*
 * One log line a message for its tagged recipients (the refusals are
 * logged at once, one line each, at notice): a line per recipient cost a
 * write per RCPT, which was most of the gap to a no-op milter. The line is
 * queued when the message ends (end of message, abort, next MAIL, close)
 * or when the next entry would not fit, and written by the log's thread
 * (log_later): the end of message's reply does not wait for the write.
 * A connection's lines are all written when it closes.
 */
static void
rcptlog_flush(struct conn *c)
{
    if (c->rcptlog_len == 0)
        return;
    log_later(LOG_INFO, "%s: %s", c->qid, c->rcptlog);
    c->rcptlog_len = 0;
    c->rcptlog[0] = '\0';
}

/* "rcpt domain=... action=... rule=...: why", cut to fit; returns its length. */
static size_t
decision_text(const struct decision *d, char *out, size_t outsz)
{
    size_t n = mts_text_join(out, outsz, "rcpt domain=", d->domain,
                             " status=", status_kind_name(d->status),
                             " requirement=", rules_req_name(d->req),
                             " verdict=", verdict_outcome_name(d->outcome),
                             " action=", verdict_action_name(d->action),
                             d->dry_run ? " (dry run: not applied)" : "",
                             " rule=", d->rule ? d->rule->where : "default",
                             ": ", d->why, (const char *)NULL);

    /* A cut entry is still worth logging. */
    return n < outsz ? n : outsz - 1;
}

static void
rcptlog_add(struct conn *c, const struct decision *d)
{
    char e[RCPTLOG_MAX];
    size_t n;

    if (!log_enabled(LOG_INFO))
        return;
    n = decision_text(d, e, sizeof(e));
    if (c->rcptlog_len > 0 && c->rcptlog_len + 3 + n >= sizeof(c->rcptlog))
        rcptlog_flush(c);
    if (c->rcptlog_len > 0) {
        memcpy(c->rcptlog + c->rcptlog_len, " | ", 3);
        c->rcptlog_len += 3;
    }
    memcpy(c->rcptlog + c->rcptlog_len, e, n + 1);
    c->rcptlog_len += n;
}

static void
message_reset(struct conn *c)
{
    rcptlog_flush(c);
    free(c->sender);
    free(c->auth);
    free(c->daemon);
    free(c->hold_reason);
    c->sender = c->auth = c->daemon = c->hold_reason = NULL;
    c->n_tags = 0;
    c->forged = 0;
    c->untagged = 0;
    c->act = false;
    c->requiretls = c->tls_required_no = false;
    mts_text_copy(c->qid, sizeof(c->qid), "NOQUEUE");
}

static const char *
macro(SMFICTX *ctx, const char *name)
{
    const char *v = smfi.getsymval(ctx, (char *)name);
    return v != NULL && *v != '\0' ? v : NULL;
}

static void
update_qid(SMFICTX *ctx, struct conn *c)
{
    const char *i = macro(ctx, "i");

    if (i != NULL)
        mts_text_copy(c->qid, sizeof(c->qid), i);
}

static struct conn *
conn_get(SMFICTX *ctx)
{
    struct conn *c = smfi.getpriv(ctx);

    if (c == NULL) {
        /* An MTA that did not negotiate (milter protocol 2): start here. */
        static uint64_t next_id;

        c = calloc(1, sizeof(*c));
        if (c != NULL) {
            c->id = __atomic_add_fetch(&next_id, 1, __ATOMIC_RELAXED);
            snprintf(c->qid, sizeof(c->qid), "NOQUEUE");
            smfi.setpriv(ctx, c);
        }
    }
    return c;
}

/* The actions without which the milter cannot do its job. */
static const struct {
    unsigned long flag;
    const char *what;
} needed_actions[] = {
    {SMFIF_ADDHDRS, "add header (SMFIF_ADDHDRS)"},
    {SMFIF_CHGHDRS, "change header (SMFIF_CHGHDRS)"},
    {SMFIF_QUARANTINE, "quarantine (SMFIF_QUARANTINE)"},
};

/*
 * Refuses an MTA that does not offer what the milter needs: without them
 * the tags, the removal of forged tags and the hold would fail at end of
 * message, after the recipients were already answered.
 */
static bool
actions_offered(unsigned long f0)
{
    char missing[160] = "";
    size_t used = 0;

    for (size_t i = 0; i < sizeof(needed_actions) / sizeof(needed_actions[0]); i++) {
        int w;

        if (f0 & needed_actions[i].flag)
            continue;
        w = snprintf(missing + used, sizeof(missing) - used, "%s%s", used ? ", " : "",
                     needed_actions[i].what);
        if (w > 0 && (size_t)w < sizeof(missing) - used)
            used += (size_t)w;
    }
    if (used == 0)
        return true;
    log_msg(LOG_ERR, "the MTA does not offer the milter actions %s: refusing the connection",
            missing);
    return false;
}

static sfsistat
mlfi_negotiate(SMFICTX *ctx, unsigned long f0, unsigned long f1, unsigned long f2,
               unsigned long f3, unsigned long *pf0, unsigned long *pf1, unsigned long *pf2,
               unsigned long *pf3)
{
    /* Only the steps the verdicts need: no HELO, DATA, body or unknown. */
    unsigned long want = SMFIP_NOHELO | SMFIP_NOUNKNOWN | SMFIP_NODATA | SMFIP_NOBODY |
                         SMFIP_NOEOH;

    (void)f2;
    (void)f3;
    if (!actions_offered(f0))
        return SMFIS_REJECT;
    *pf0 = f0 & (SMFIF_ADDHDRS | SMFIF_CHGHDRS | SMFIF_QUARANTINE | SMFIF_SETSYMLIST);
    /* Header replies are not waived (SMFIP_NR_HDR): measured, it saves
     * nothing, and libmilter forgets it when an MTA reuses a connection. */
    *pf1 = f1 & want;
    *pf2 = *pf3 = 0;
    if (f0 & SMFIF_SETSYMLIST) {
        smfi.setsymlist(ctx, SMFIM_CONNECT, "{daemon_name}");
        smfi.setsymlist(ctx, SMFIM_ENVFROM, "i {auth_authen} {daemon_name}");
        smfi.setsymlist(ctx, SMFIM_ENVRCPT, "i {rcpt_mailer} {rcpt_host}");
        smfi.setsymlist(ctx, SMFIM_EOM, "i");
    }
    return conn_get(ctx) != NULL ? SMFIS_CONTINUE : SMFIS_TEMPFAIL;
}


/*
 * Postfix's cleanup server presents non-SMTP mail (sendmail(1), pickup) to
 * non_smtpd_milters as a connection from localhost, 127.0.0.1, port 0; a
 * real TCP client never has port 0. Other MTAs may send no address at all.
 */
static bool
is_non_smtp(const _SOCK_ADDR *addr)
{
    if (addr == NULL)
        return true;
    if (addr->sa_family == AF_INET)
        return ((const struct sockaddr_in *)(const void *)addr)->sin_port == 0;
    if (addr->sa_family == AF_INET6)
        return ((const struct sockaddr_in6 *)(const void *)addr)->sin6_port == 0;
    return false;
}

static sfsistat
mlfi_connect(SMFICTX *ctx, char *hostname, _SOCK_ADDR *addr)
{
    struct conn *c = conn_get(ctx);

    if (c == NULL)
        return SMFIS_TEMPFAIL;
    if (c->rt == NULL)
        c->rt = runtime_current();
    if (c->rt == NULL)
        return SMFIS_TEMPFAIL;
    c->non_smtpd = is_non_smtp(addr);
    /* The sender of an unauthenticated session, for the lookup caps. */
    c->client[0] = '\0';
    if (addr != NULL && addr->sa_family == AF_INET)
        (void)inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)addr)->sin_addr,
                        c->client, sizeof(c->client));
    else if (addr != NULL && addr->sa_family == AF_INET6)
        (void)inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)addr)->sin6_addr,
                        c->client, sizeof(c->client));
    log_msg(LOG_DEBUG, "connect from %s%s", hostname ? hostname : "?",
            c->non_smtpd ? " (non-SMTP mail)" : "");
    return SMFIS_CONTINUE;
}

static struct decide_session
session_of(const struct conn *c)
{
    struct decide_session s = {c->sender, c->auth, c->daemon, c->non_smtpd, NULL,
                               c->requiretls, c->work};

    return s;
}

/*
 * Does MAIL FROM carry REQUIRETLS? libmilter gives its ESMTP parameters
 * after the address, one an entry; keywords are case-insensitive (RFC
 * 5321 §2.4) and REQUIRETLS takes no value (RFC 8689).
 */
static bool
has_requiretls(char **argv)
{
    for (int i = 1; argv[0] != NULL && argv[i] != NULL; i++)
        if (strcasecmp(argv[i], "REQUIRETLS") == 0)
            return true;
    return false;
}

static sfsistat
mlfi_envfrom(SMFICTX *ctx, char **argv)
{
    struct conn *c = conn_get(ctx);
    const char *auth, *daemon;
    struct decide_session s;

    if (c == NULL || c->rt == NULL)
        return SMFIS_TEMPFAIL;
    message_reset(c);
    update_qid(ctx, c);
    auth = macro(ctx, "{auth_authen}");
    daemon = macro(ctx, "{daemon_name}");
    c->sender = strdup(argv[0] ? argv[0] : "");
    c->auth = auth ? strdup(auth) : NULL;
    c->daemon = daemon ? strdup(daemon) : NULL;
    if (c->sender == NULL || (auth != NULL && c->auth == NULL) ||
        (daemon != NULL && c->daemon == NULL))
        return SMFIS_TEMPFAIL;
    /* Keep the address only: "<a@b>" -> "a@b". */
    if (c->sender[0] == '<') {
        size_t l = strlen(c->sender);
        memmove(c->sender, c->sender + 1, l);
        if (l >= 2 && c->sender[l - 2] == '>')
            c->sender[l - 2] = '\0';
    }
    c->requiretls = has_requiretls(argv);
    s = session_of(c);
    c->act = decide_in_scope(c->rt->cfg, &s);
    log_msg(LOG_DEBUG, "%s: from=<%s> auth=%s%s %s", c->qid, c->sender, auth ? auth : "-",
            c->requiretls ? " REQUIRETLS" : "",
            c->act ? "in scope" : "not in scope (passes untouched)");
    return SMFIS_CONTINUE;
}

static struct tag *
tag_for(struct conn *c, const char *domain)
{
    struct tag *t;

    for (size_t i = 0; i < c->n_tags; i++)
        if (strcmp(c->tags[i].domain, domain) == 0)
            return &c->tags[i];
    if (c->n_tags == MAX_TAGS)
        return NULL;
    if (c->n_tags == c->cap_tags) {
        /* Grown by doubling and kept for the connection's next messages:
         * no allocation a recipient. */
        size_t cap = c->cap_tags < 4 ? 4 : c->cap_tags * 2;

        if (cap > MAX_TAGS)
            cap = MAX_TAGS;
        if ((t = realloc(c->tags, cap * sizeof(*t))) == NULL)
            return NULL;
        c->tags = t;
        c->cap_tags = cap;
    }
    t = &c->tags[c->n_tags++];
    memset(t, 0, sizeof(*t));
    mts_text_copy(t->domain, sizeof(t->domain), domain);
    return t;
}

/* Applies a decision to the recipient: the SMFIS code, the reply, the hold. */
static sfsistat
answer(SMFICTX *ctx, struct conn *c, const struct decision *d)
{
    switch (d->applied) {
    case DECIDE_DEFER:
    case DECIDE_REJECT:
        if (smfi.setreply(ctx, (char *)d->reply.rcode, (char *)d->reply.xcode,
                          (char *)d->reply.text) != MI_SUCCESS)
            log_msg(LOG_WARNING, "%s: the MTA refused our reply text; it uses its own", c->qid);
        return d->applied == DECIDE_REJECT ? SMFIS_REJECT : SMFIS_TEMPFAIL;
    case DECIDE_HOLD:
        /* Mail from sendmail(1) or pickup cannot be refused per recipient:
         * the whole message is held for the operator, and tagged. */
        if (c->hold_reason == NULL &&
            asprintf(&c->hold_reason, "MTA-STS: %s: %s",
                     d->scope == DECIDE_UNREADABLE ? "recipient" : d->domain, d->reason) < 0)
            c->hold_reason = NULL;
        return SMFIS_CONTINUE;
    case DECIDE_UNTOUCHED:
    case DECIDE_TAG:
        break;
    }
    return SMFIS_CONTINUE;
}

/* A hold ranks with a reject: the tag shows the most severe answer. */
static int
tag_severity(const struct tag *t)
{
    return t->effect == DECIDE_HOLD ? VERDICT_REJECT : (int)t->action;
}

/* Tags describe the recipients that stay in the message: a refused one is
 * not there (unless nothing is refused: dry run, or non-SMTP hold). */
static void
record_tag(struct conn *c, const struct decision *d)
{
    struct tag *t;

    if (d->applied != DECIDE_TAG && d->applied != DECIDE_HOLD)
        return;
    t = tag_for(c, d->domain);
    /* Warned once a message: a 10,000-recipient message must not log
     * 9,900 lines; EOM says how many went untagged. */
    if (t == NULL && c->n_tags == MAX_TAGS && c->untagged++ == 0)
        log_msg(LOG_WARNING, "%s: more than %d recipient domains: %s and the domains after it "
                "get no tag header (the verdicts still apply)", c->qid, MAX_TAGS, d->domain);
    /* One tag per domain: it shows the most severe answer its recipients got. */
    if (t != NULL && (!t->set || (int)d->action >= tag_severity(t))) {
        t->set = true;
        t->status = d->status;
        mts_text_copy(t->txt_id, sizeof(t->txt_id), d->txt_id);
        t->req = d->req;
        t->outcome = d->outcome;
        t->action = d->action;
        t->effect = d->effect;
        t->dry_run = d->dry_run;
        t->tls = d->tls;
        t->dane = d->dane;
        t->requiretls = d->requiretls;
    }
}

static sfsistat
mlfi_envrcpt(SMFICTX *ctx, char **argv)
{
    struct conn *c = conn_get(ctx);
    struct decide_session s;
    struct discover_caller who = {.map = false}; /* a milter connection, not the map */
    struct decide_rcpt r;
    struct decision *d;
    struct timespec deadline;
    int64_t t0;
    sfsistat rc;

    if (c == NULL || c->rt == NULL)
        return SMFIS_TEMPFAIL;
    if (!c->act)
        return SMFIS_CONTINUE;
    /* One deadline for the recipient, from now. */
    t0 = metrics_clock_us();
    deadline = clock_deadline_after((int)c->rt->cfg->rcpt_deadline_ms);
    update_qid(ctx, c);
    d = &c->dec;
    if (c->work == NULL)
        c->work = decide_work_new(); /* NULL: decide allocates its own */
    s = session_of(c);
    /* Caps on lookups in flight: per authenticated user, else client address. */
    who.sender = c->auth != NULL ? c->auth : c->client[0] != '\0' ? c->client : NULL;
    who.conn = c->id;
    s.who = &who;
    r.address = argv[0];
    r.mailer = macro(ctx, "{rcpt_mailer}");
    r.host = macro(ctx, "{rcpt_host}");
    decide_recipient(&c->rt->dctx, &s, &r, &deadline, d);
    metrics_rcpt(d, t0);
    statsd_rcpt(d);
    switch (d->scope) {
    case DECIDE_UNREADABLE: {
        /* Quoted: the address is the client's bytes, not text for a log. */
        char q[208];

        mts_err_quote(q, sizeof(q), argv[0], strnlen(argv[0], ADDRESS_MAX + 1));
        log_msg(LOG_WARNING, "%s: rcpt %s: unreadable address (%s): %s", c->qid, q, d->why,
                verdict_action_name(d->dry_run ? VERDICT_TAG : d->action));
        break;
    }
    case DECIDE_INTERNAL_ERROR:
        log_msg(LOG_ERR, "%s: %s: out of memory: %s", c->qid, d->domain,
                verdict_action_name(d->action));
        break;
    case DECIDE_IN_SCOPE:
        record_tag(c, d);
        if (d->action == VERDICT_TAG) {
            rcptlog_add(c, d);
            break;
        }
        {
            char e[RCPTLOG_MAX];

            decision_text(d, e, sizeof(e));
            log_msg(LOG_NOTICE, "%s: %s", c->qid, e);
        }
        break;
    case DECIDE_NOT_IN_ACT_ON:
    case DECIDE_NULL_ADDRESS:
    case DECIDE_NO_DOMAIN:
    case DECIDE_LOCAL_DOMAIN:
        break;
    }
    rc = answer(ctx, c, d);
    return rc;
}

/* A header value "No", in any case, with folding white space around it. */
static bool
is_no(const char *v)
{
    size_t n;

    if (v == NULL)
        return false;
    v += strspn(v, " \t\r\n");
    n = strlen(v);
    while (n > 0 && strchr(" \t\r\n", v[n - 1]) != NULL)
        n--;
    return n == 2 && strncasecmp(v, "no", 2) == 0;
}

static sfsistat
mlfi_header(SMFICTX *ctx, char *name, char *value)
{
    struct conn *c = conn_get(ctx);

    if (c != NULL && c->rt != NULL && strcasecmp(name, c->rt->cfg->header_name) == 0)
        c->forged++;
    if (c != NULL && strcasecmp(name, "TLS-Required") == 0 && is_no(value))
        c->tls_required_no = true;
    return SMFIS_CONTINUE;
}

static sfsistat
mlfi_eom(SMFICTX *ctx)
{
    struct conn *c = conn_get(ctx);
    /* Bounded fields (a 253-byte domain, a policy id, words): no malloc a
     * header, on every message. */
    char hdr[1024];
    const char *name;

    if (c == NULL || c->rt == NULL)
        return SMFIS_TEMPFAIL;
    name = c->rt->cfg->header_name;
    update_qid(ctx, c);
    /* Nobody upstream may forge a tag: remove every copy that came in,
     * last first so that the indexes of the others do not move. */
    for (int i = c->forged; i >= 1; i--)
        if (smfi.chgheader(ctx, (char *)name, i, NULL) != MI_SUCCESS)
            log_msg(LOG_ERR, "%s: cannot remove forged %s header %d", c->qid, name, i);
    if (c->forged > 0)
        log_msg(LOG_NOTICE, "%s: removed %d %s header(s) that came with the message", c->qid,
                c->forged, name);
    /* Inserted from the last: each lands at the top, so they read in order. */
    for (size_t i = c->n_tags; i-- > 0;) {
        const struct tag *t = &c->tags[i];
        size_t n;

        n = mts_text_join(hdr, sizeof(hdr), "domain=", t->domain,
                          "; status=", status_kind_name(t->status),
                          t->txt_id[0] ? "; id=" : "", t->txt_id,
                          "; requirement=", rules_req_name(t->req),
                          "; verdict=", verdict_outcome_name(t->outcome),
                          "; action=", nametab_name(decide_effect_names, (int)t->effect),
                          t->dry_run ? "; dry-run=yes" : "",
                          c->requiretls ? "; requiretls=" : "",
                          c->requiretls ? verdict_outcome_name(t->requiretls) : "",
                          /* RFC 8689: with REQUIRETLS the header is ignored. */
                          c->tls_required_no && !c->requiretls ? "; tls-required=no" : "",
                          /* tls= and dane= stay the last fields. */
                          t->tls != VERDICT_TLS_UNSEEN ? "; tls=" : "",
                          t->tls != VERDICT_TLS_UNSEEN ? verdict_tls_name(t->tls) : "",
                          t->dane != TLSA_DANE_NONE ? "; dane=" : "",
                          t->dane != TLSA_DANE_NONE ? tlsa_dane_name((enum tlsa_dane)t->dane) : "",
                          (const char *)NULL);

        if (n >= sizeof(hdr))
            log_msg(LOG_ERR, "%s: the %s header of %s does not fit: not added", c->qid, name,
                    t->domain);
        else if (smfi.insheader(ctx, 0, (char *)name, hdr) != MI_SUCCESS)
            log_msg(LOG_ERR, "%s: cannot add the %s header", c->qid, name);
    }
    if (c->tls_required_no && c->n_tags > 0)
        log_msg(LOG_INFO, "%s: TLS-Required: No%s", c->qid, c->requiretls ?
                " ignored: the message has REQUIRETLS (RFC 8689)" :
                ": the verdicts given at RCPT stand; tagged tls-required=no");
    if (c->untagged > 0)
        log_msg(LOG_INFO, "%s: %zu recipient(s) beyond %d domains got no tag header", c->qid,
                c->untagged, MAX_TAGS);
    if (c->hold_reason != NULL && !c->rt->cfg->dry_run) {
        char reason[REPLY_MAX_LINE + 1];
        /* The reason goes into the queue file: no controls, bounded; but not
         * a format, so '%' stays single. */
        reply_clean_text(c->hold_reason, reason, sizeof(reason));
        if (smfi.quarantine(ctx, reason) != MI_SUCCESS)
            log_msg(LOG_ERR, "%s: cannot hold the message", c->qid);
        else
            log_msg(LOG_NOTICE, "%s: held (non-SMTP mail cannot be refused per recipient): %s",
                    c->qid, reason);
    }
    message_reset(c);
    return SMFIS_CONTINUE;
}

static sfsistat
mlfi_abort(SMFICTX *ctx)
{
    struct conn *c = smfi.getpriv(ctx);

    if (c != NULL)
        message_reset(c);
    return SMFIS_CONTINUE;
}

static sfsistat
mlfi_close(SMFICTX *ctx)
{
    struct conn *c = smfi.getpriv(ctx);

    if (c != NULL) {
        message_reset(c);
        runtime_unref(c->rt);
        decide_work_free(c->work);
        free(c->tags);
        free(c);
        smfi.setpriv(ctx, NULL);
        /* Whoever reads the log after a session ends finds all its lines. */
        log_flush();
    }
    return SMFIS_CONTINUE;
}

struct smfiDesc filter_desc = {
    "mtasts-milter",
    SMFI_VERSION,
    SMFIF_ADDHDRS | SMFIF_CHGHDRS | SMFIF_QUARANTINE | SMFIF_SETSYMLIST,
    mlfi_connect,
    NULL,			/* helo */
    mlfi_envfrom,
    mlfi_envrcpt,
    mlfi_header,
    NULL,			/* eoh */
    NULL,			/* body */
    mlfi_eom,
    mlfi_abort,
    mlfi_close,
    NULL,			/* unknown */
    NULL,			/* data */
    mlfi_negotiate,
};
