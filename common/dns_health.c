/*
 * dns_health - noticing that libunbound has backed off a forwarder that
 * still answers (issue 12, finding 3), replacing the context, and saying
 * so. See dns.h (struct dns_health) and dns_int.h.
 */
#include "dns_int.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "dnsask.h"
#include "log.h"
#include "metrics_now.h"

void
dns_health(struct dns *d, struct dns_health *out)
{
    pthread_mutex_lock(&d->mu);
    *out = d->health;
    pthread_mutex_unlock(&d->mu);
}

bool
dns_health_text(const struct dns_health *h, char *buf, size_t bufsz)
{
    struct tm tm;
    char when[32] = "?";

    buf[0] = '\0';
    if (h->backoffs_seen == 0)
        return false;
    if (gmtime_r(&h->last_backoff, &tm) != NULL)
        strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S UTC", &tm);
    snprintf(buf, bufsz,
             "libunbound backed off the forwarder %s although it answers (last at %s; "
             "it does so after the forwarder drops queries for some names): %u lookup%s "
             "failed that way, %u fresh resolver context%s took over and retried them",
             h->forwarder[0] ? h->forwarder : "?", when, h->backoffs_seen,
             h->backoffs_seen == 1 ? "" : "s", h->renewals, h->renewals == 1 ? "" : "s");
    return true;
}

/* One warning per DNS_LOG_EVERY_S at most, however often contexts are renewed. */
static void
log_renewal(struct dns *d, const char *server, const char *name, enum dns_type type,
            enum dns_status st, int rcode)
{
    time_t now = time(NULL);
    unsigned count, silent;

    pthread_mutex_lock(&d->mu);
    silent = d->health.silent_answers;
    if (now - d->last_log < DNS_LOG_EVERY_S) {
        pthread_mutex_unlock(&d->mu);
        return;
    }
    count = d->health.renewals - d->renewals_logged;
    d->renewals_logged = d->health.renewals;
    d->last_log = now;
    pthread_mutex_unlock(&d->mu);
    log_msg(LOG_WARNING,
            "resolver: libunbound had backed off the forwarder %s (it does so after the "
            "forwarder drops queries, e.g. for one sender's junk names): a lookup of %s "
            "type %d failed (%s) although the forwarder answers it (rcode %d); a fresh "
            "resolver context took over (%u time%s since the last such warning, %u "
            "forwarded names got no answer from the forwarder itself)",
            server, name, (int)type, dns_status_name(st), rcode, count, count == 1 ? "" : "s",
            silent);
}

/*
 * After libunbound failed name/type (SERVFAIL or timeout) on context x,
 * took_ms after the query started. A fresh context replaces x only when
 * both say libunbound, not the name, is at fault:
 *  - the failure came at once: a SERVFAIL within DNS_FAST_FAIL_MS. A
 *    timeout, or a SERVFAIL after longer, means libunbound asked the
 *    forwarder and waited for it: the name is slow or dropped there, and
 *    a fresh context would wait the same (a name answering just after
 *    dns_timeout_ms would otherwise renew the context, and drop its cache,
 *    on every lookup of it);
 *  - the forwarder, asked the same question directly, answers it
 *    (NOERROR or NXDOMAIN; SERVFAIL or REFUSED is no health).
 * Then x is replaced (at most once per DNS_RENEW_MIN_MS: a forwarder that
 * flaps cannot churn contexts) and true returned, so the caller may try
 * once more. Checks are not serialised: junk names, which the forwarder
 * drops, would otherwise keep the one slot busy while a healthy name's
 * failure waits.
 */
bool
dns_health_check(struct dns *d, struct ubx *x, const char *name, enum dns_type type,
                 enum dns_status st, int took_ms, const struct timespec *caller)
{
    int budget = DNS_CHECK_MAX_MS, rcode = -1;
    enum dnsask_result r = DNSASK_SILENT;
    struct ubx *fresh = NULL, *old = NULL;
    struct mts_err e;
    size_t i;
    bool renewed = false, healthy;

    if (d->n_servers == 0)
        return false;	/* full recursion: libunbound's backing off is per server, right */
    pthread_mutex_lock(&d->mu);
    if (d->cur != x) {
        pthread_mutex_unlock(&d->mu);
        return true;		/* renewed meanwhile: try the fresh one */
    }
    if (st != DNS_SERVFAIL || took_ms >= DNS_FAST_FAIL_MS) {
        d->health.slow_failures++;
        pthread_mutex_unlock(&d->mu);
        return false;		/* libunbound waited for the forwarder: not a backoff */
    }
    pthread_mutex_unlock(&d->mu);
    if (caller != NULL && clock_ms_until(caller) < budget)
        budget = clock_ms_until(caller);
    if (budget < 20)
        return false;

    for (i = 0; i < d->n_servers; i++) {
        r = dnsask(d->servers[i], name, (int)type, budget, &rcode, &e);
        if (r == DNSASK_ANSWERED)
            break;
    }
    healthy = r == DNSASK_ANSWERED && (rcode == 0 || rcode == 3);
    pthread_mutex_lock(&d->mu);
    if (r != DNSASK_ANSWERED) {
        d->health.silent_answers++;
    } else if (healthy) {
        d->health.backoffs_seen++;
        d->health.last_backoff = time(NULL);
        snprintf(d->health.forwarder, sizeof(d->health.forwarder), "%s", d->servers[i]);
        /* renew_after starts zeroed (in the past): the first renewal is free */
        renewed = d->cur == x && clock_ms_until(&d->renew_after) == 0;
        if (renewed)	/* claim the renewal now: no other thread builds one too */
            d->renew_after = clock_deadline_after(DNS_RENEW_MIN_MS);
    }
    pthread_mutex_unlock(&d->mu);
    if (!renewed)
        return false;
    fresh = ubx_new(d, &e);
    pthread_mutex_lock(&d->mu);
    if (fresh != NULL && d->cur == x) {
        old = d->cur;
        d->cur = fresh;
        fresh->refs = 1;
        fresh = NULL;
        d->health.renewals++;
        d->health.last_renewal = d->health.last_backoff;
    } else {
        renewed = false;
    }
    pthread_mutex_unlock(&d->mu);
    if (old != NULL)
        ubx_put(d, old);	/* it was current: drop that reference */
    ubx_free(fresh);		/* built, but not needed after all */
    if (renewed) {
        metrics_now_resolver_renewed();
        log_renewal(d, d->servers[i], name, type, st, rcode);
    }
    return renewed;
}
