/*
 * refresh - the RFC 8461 §5.1 rules for one domain; see refresh.h.
 *
 * DESCRIPTION
 *	refresh_step works on the row in place and jumps to one exit that
 *	fills the result, so that every rule ends the same way.
 */
#include "refresh.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "mxmatch.h"

static void
row_status(struct cache_entry *e, enum status_kind s)
{
    e->has_status = true;
    e->status = s;
}

static void
result_from_row(struct status_result *res, const struct cache_entry *e)
{
    /* On every warm answer: copies without printf. */
    mts_text_copy(res->txt_id, sizeof(res->txt_id), e->txt_id);
    res->has_policy = e->has_policy;
    res->mode = e->mode;
    res->max_age = e->max_age;
    status_result_free(res);
    res->mx = (e->has_policy && e->mx) ? mxmatch_list_dup(e->mx, e->n_mx) : NULL;
    res->n_mx = res->mx ? e->n_mx : 0;
    res->fetched_at = e->fetched_at;
    res->expires_at = e->expires_at;
    res->checked_at = e->checked_at;
    mts_text_copy(res->dnssec, sizeof(res->dnssec), e->dnssec);
    mts_text_copy(res->error, sizeof(res->error), e->last_error);
    mts_text_copy(res->origin, sizeof(res->origin), e->source);
}

bool
refresh_status_from_row(const struct cache_entry *e, int64_t now, struct status_result *res)
{
    result_from_row(res, e);
    if (e->has_policy && now < e->expires_at) {
        res->status = status_kind_of_mode(e->mode);
        return true;
    }
    res->has_policy = false;
    status_result_free(res);
    if (!e->has_status || e->status <= STATUS_NONE)
        return false;
    if (now >= e->expires_at)
        return false;
    res->status = e->status;
    return true;
}

bool
refresh_status_take_row(struct cache_entry *e, int64_t now, struct status_result *res)
{
    char **mx = e->mx;
    size_t n = e->n_mx;
    bool answers;

    e->mx = NULL;
    e->n_mx = 0;
    answers = refresh_status_from_row(e, now, res);
    if (answers && res->has_policy && mx != NULL) {
        res->mx = mx;
        res->n_mx = n;
    } else {
        mxmatch_list_free(mx, n);
    }
    return answers;
}

/* Records a fetch (or policy) failure for txt_id, keeping any cached policy. */
static void
note_fetch_failure(const struct config *cfg, struct cache_entry *e, bool have_policy,
                   const char *txt_id, const char *why, int64_t now)
{
    snprintf(e->fetch_failed_id, sizeof(e->fetch_failed_id), "%s", txt_id);
    e->fetch_failed_at = now;
    e->checked_at = now;
    mts_text_set(e->last_error, sizeof(e->last_error), "policy fetch failed: %s", why);
    if (have_policy) {
        /* RFC 8461 §3.3: alert unless the cached mode is none. */
        if (e->mode != POLICY_MODE_NONE)
            log_msg(LOG_WARNING, "%s: policy fetch for id %s failed, cached %s policy "
                    "kept until it expires: %s", e->domain, txt_id,
                    policy_mode_name(e->mode), why);
        return;
    }
    snprintf(e->txt_id, sizeof(e->txt_id), "%s", txt_id);
    row_status(e, STATUS_FAILED);
    e->expires_at = now + cfg->fetch_retry_interval;
    log_msg(LOG_NOTICE, "%s: MTA-STS TXT id %s but no valid policy: %s", e->domain,
            txt_id, why);
}

/* Fetches and parses the policy for e->domain; fills e on success. */
static int
fetch_and_parse(const struct config *cfg, const struct refresh_io *io, struct cache_entry *e,
                const char *txt_id, int64_t now,
                char *why, size_t whysz)
{
    char host[300];
    struct dns_answer addrs;
    struct fetch_result fr;
    struct policy p;
    struct mts_err err;
    const char *list[DNS_MAX_RRS];

    snprintf(host, sizeof(host), "mta-sts.%s", e->domain);
    mts_err_clear(&err);
    io->addresses(io->arg, host, &addrs, &err);
    if (addrs.status != DNS_OK) {
        mts_text_set(why, whysz, "%s", err.msg);
        dns_answer_free(&addrs);
        return -1;
    }
    for (size_t i = 0; i < addrs.n; i++)
        list[i] = addrs.rr[i].text;
    memset(&fr, 0, sizeof(fr));
    if (io->fetch(io->arg, e->domain, list, addrs.n, &fr, &err) != 0) {
        mts_text_set(why, whysz, "%s", err.msg);
        dns_answer_free(&addrs);
        fetch_result_free(&fr);
        return -1;
    }
    dns_answer_free(&addrs);
    if (policy_parse(fr.body, fr.body_len, &p, &err) != 0) {
        mts_text_set(why, whysz, "invalid policy: %s", err.msg);
        fetch_result_free(&fr);
        return -1;
    }
    if (e->has_policy && e->mode == POLICY_MODE_ENFORCE && p.mode != POLICY_MODE_ENFORCE)
        log_msg(LOG_WARNING, "%s: policy changed from enforce to %s (id %s): a downgrade; "
                "check that it is genuine", e->domain, policy_mode_name(p.mode), txt_id);
    mxmatch_list_free(e->mx, e->n_mx);
    free(e->policy_text);
    e->mx = p.mx;			/* the list, taken over from the policy */
    e->n_mx = p.n_mx;
    p.mx = NULL;
    p.n_mx = 0;
    e->policy_text = fr.body;		/* taken over from the fetch result */
    fr.body = NULL;
    fetch_result_free(&fr);
    e->has_policy = true;
    e->mode = p.mode;
    e->max_age = p.max_age;
    e->fetched_at = now;
    /* §3.3 asks senders to limit how often they fetch: a policy with a
     * max_age of 0 (or a few seconds) is kept policy_min_lifetime, not
     * fetched again for every recipient. */
    e->expires_at = now + ((int64_t)p.max_age > cfg->policy_min_lifetime ?
                           (int64_t)p.max_age : cfg->policy_min_lifetime);
    e->checked_at = now;
    snprintf(e->txt_id, sizeof(e->txt_id), "%s", txt_id);
    row_status(e, status_kind_of_mode(p.mode));
    e->fetch_failed_id[0] = '\0';
    e->fetch_failed_at = 0;
    e->last_error[0] = '\0';
    policy_free(&p);
    return 0;
}

void
refresh_step(const struct config *cfg, const struct refresh_io *io, struct cache_entry *e,
             int64_t now, struct status_result *res)
{
    struct dns_answer txt;
    struct policy_txt_input recs[DNS_MAX_RRS];
    struct policy_txt parsed;
    struct mts_err err;
    char qname[300], why[256];
    enum policy_txt_result tr;
    bool have_policy, rechecked;

    /* A policy past max_age is dropped (§5.1). */
    if (e->has_policy && now >= e->expires_at) {
        log_msg(LOG_INFO, "%s: cached %s policy (id %s) expired", e->domain,
                policy_mode_name(e->mode), e->txt_id);
        e->has_policy = false;
        cache_entry_free(e);
    }
    have_policy = e->has_policy;

    snprintf(qname, sizeof(qname), "_mta-sts.%s", e->domain);
    mts_err_clear(&err);
    io->txt(io->arg, qname, &txt, &err);
    snprintf(e->dnssec, sizeof(e->dnssec), "%s",
             dns_status_is_answer(txt.status) || txt.status == DNS_BOGUS ?
             dns_sec_name(txt.sec) : "");
    /* §5: the check counts only if DNS answered and any new id was fetched. */
    rechecked = dns_status_is_answer(txt.status);

    if (!dns_status_is_answer(txt.status)) {
        /* We do not know: a cached policy stays; otherwise unknown, briefly. */
        mts_text_set(e->last_error, sizeof(e->last_error), "%s", err.msg);
        if (have_policy) {
            /* Try again after the back-off, not a whole check interval. */
            e->checked_at = now - cfg->check_interval + cfg->unknown_backoff;
            log_msg(LOG_WARNING, "%s: TXT check failed, cached %s policy kept: %s", e->domain,
                    policy_mode_name(e->mode), err.msg);
        } else {
            row_status(e, STATUS_UNKNOWN);
            e->expires_at = now + cfg->unknown_backoff;
            e->checked_at = now;
        }
        goto store;
    }
    for (size_t i = 0; i < txt.n; i++) {
        recs[i].data = txt.rr[i].text;
        recs[i].len = txt.rr[i].len;
    }
    tr = txt.status == DNS_OK ? policy_txt_select(recs, txt.n, &parsed, &err) : POLICY_TXT_NONE;
    if (tr != POLICY_TXT_OK) {
        e->checked_at = now;
        mts_text_set(e->last_error, sizeof(e->last_error), "no usable MTA-STS TXT record: %s", err.msg);
        if (have_policy) {
            /* §3.1 and §10.3: a vanished record does not remove a policy. */
            if (e->mode == POLICY_MODE_ENFORCE)
                log_msg(LOG_WARNING, "%s: cached enforce policy (id %s) but %s; kept until "
                        "it expires (a possible attack, or a domain leaving MTA-STS "
                        "incorrectly)", e->domain, e->txt_id, err.msg);
        } else {
            row_status(e, STATUS_ABSENT);
            e->expires_at = now + cfg->absent_ttl;
            e->txt_id[0] = '\0';
        }
        goto store;
    }

    if (have_policy && strcmp(parsed.id, e->txt_id) == 0 &&
        (e->expires_at - cfg->refresh_margin > now ||
         now < e->fetched_at + cfg->policy_min_lifetime)) {
        /* Unchanged id, not near expiry (or fetched less than
         * policy_min_lifetime ago: a short max_age is always "near
         * expiry"): nothing to fetch. */
        e->checked_at = now;
        e->last_error[0] = '\0';
        goto store;
    }
    if (strcmp(e->fetch_failed_id, parsed.id) == 0 &&
        now < e->fetch_failed_at + cfg->fetch_retry_interval) {
        /* §3.3: a failed id is not fetched again before the back-off ends. */
        e->checked_at = now;
        rechecked = false;
        if (!have_policy) {
            snprintf(e->txt_id, sizeof(e->txt_id), "%s", parsed.id);
            row_status(e, STATUS_FAILED);
            e->expires_at = e->fetch_failed_at + cfg->fetch_retry_interval;
        }
        goto store;
    }
    if (fetch_and_parse(cfg, io, e, parsed.id, now, why, sizeof(why)) != 0) {
        note_fetch_failure(cfg, e, have_policy, parsed.id, why, now);
        rechecked = false;
    }

store:
    dns_answer_free(&txt);
    res->source = STATUS_FROM_FRESH;
    if (!refresh_status_from_row(e, now, res)) {
        /* A max_age of 0 expires at once, yet was valid when fetched. */
        if (e->has_policy && e->fetched_at == now) {
            result_from_row(res, e);
            res->status = status_kind_of_mode(e->mode);
        } else {
            res->status = STATUS_UNKNOWN;
        }
    }
    res->rechecked = rechecked;
}

/* ------------------------------------------------------------ the refresher's rounds */

struct round {
    struct refresh_cursor *cur;
    cache_row_fn fn;
    void *arg;
    size_t n;
    bool stopped;
};

static int
round_row(const struct cache_entry *e, void *arg)
{
    struct round *r = arg;

    if (r->fn(e, r->arg) != 0) {
        r->stopped = true;
        return 1;
    }
    snprintf(r->cur->after, sizeof(r->cur->after), "%s", e->domain);
    r->n++;
    return 0;
}

enum cache_status
refresh_round(struct cache *c, const struct config *cfg, int64_t now, size_t batch,
              struct refresh_cursor *cur, cache_row_fn fn, void *arg, size_t *n,
              struct mts_err *err)
{
    struct round r = {cur, fn, arg, 0, false};
    enum cache_status st;

    st = cache_due(c, now, cfg->check_interval, cfg->refresh_margin, now - cfg->unused_ttl,
                   cur->after, batch, round_row, &r, err);
    /* The end of the table within this round: the next one starts over. */
    if ((st == CACHE_OK || st == CACHE_BAD_ROW) && !r.stopped && r.n < batch)
        cur->after[0] = '\0';
    if (n != NULL)
        *n = r.n;
    return st;
}
