/*
 * discover_mx - a domain's MX set for discover: from memory, then the
 * shared cache, then DNS (only for a cold domain, within the caller's
 * deadline), stored with its DNS TTL and refreshed before it runs out.
 * See discover.h (discover_mx) for the interface.
 */
#include "discover.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cache.h"
#include "clock.h"
#include "discover_int.h"
#include "dns.h"
#include "fleet.h"
#include "domain.h"
#include "cachecopy.h"
#include "log.h"
#include "mxmatch.h"

#define MX_TTL_MAX 86400		/* an MX set is looked up again at least daily */

/*
 * Resolves domain's MX set into *m (fetched now, expiring with the DNS
 * TTL). 0, or -1 with err when DNS could not answer before deadline.
 */
static int
mx_resolve(struct discover *d, const char *domain, const struct timespec *deadline,
           struct cache_mxset *m, struct mts_err *err)
{
    struct dns_answer a;
    int64_t now = d->now();

    memset(m, 0, sizeof(*m));
    snprintf(m->domain, sizeof(m->domain), "%s", domain);
    dns_query(d->dns, domain, DNS_MX, deadline, &a, err);
    if (a.status != DNS_OK && a.status != DNS_NXDOMAIN && a.status != DNS_NODATA) {
        dns_answer_free(&a);
        return -1;
    }
    if ((m->hosts = calloc(a.status == DNS_OK && a.n > 0 ? a.n : 1, sizeof(*m->hosts))) == NULL) {
        dns_answer_free(&a);
        mts_err_set(err, "out of memory");
        return -1;
    }
    if (a.status != DNS_OK) {
        /* No MX: mail goes to the domain's own address (implicit MX). */
        if ((m->hosts[0] = strdup(domain)) != NULL)
            m->n = 1;
    }
    for (size_t i = 0; a.status == DNS_OK && i < a.n && m->n < DISCOVER_MAX_MX; i++) {
        char host[254];

        if (mxmatch_host_normalize(a.rr[i].text, a.rr[i].len, host, sizeof(host), NULL) == 0 ||
            /* null MX (RFC 7505): matches nothing */
            (strcmp(a.rr[i].text, ".") == 0 && snprintf(host, sizeof(host), ".") > 0)) {
            if ((m->hosts[m->n] = strdup(host)) == NULL)
                break;
            m->n++;
        }
    }
    m->fetched_at = now;
    m->expires_at = now + (a.ttl < MX_TTL_MAX ? (int64_t)a.ttl : MX_TTL_MAX);
    snprintf(m->dnssec, sizeof(m->dnssec), "%s", dns_sec_name(a.sec));
    dns_answer_free(&a);
    return 0;
}

/*
 * Keeps m in memory (gen: from before it was resolved) and queues it for
 * the shared cache (cachewq.h): the worker never waits for the file's lock.
 * A later set another process stored stays there, and reaches memory
 * through the data version.
 */
static void
mx_store(struct discover *d, const struct cache_mxset *m, uint32_t gen)
{
    /* An empty set (every record unusable) is answered, not kept. */
    if (d->cache == NULL || m->n == 0)
        return;
    cachecopy_put_mx(d->hot, m, gen, SHARDMAP_REPLACE);
    cachewq_put_mx(d->wq, m);
}

/* A set this host resolved: kept, and shared with the fleet (which also
 * lets its lock go); none (DNS failed): the lock goes, nothing else. */
static void
mx_learnt(struct discover *d, const struct cache_mxset *m, uint32_t gen, const char *domain)
{
    if (m != NULL)
        mx_store(d, m, gen);
    if (d->fleet == NULL)
        return;
    if (m != NULL && m->n > 0)
        fleet_put_mx(d->fleet, m, d->now());
    else
        fleet_unlock_mx(d->fleet, domain);
}

/*
 * A job of a worker: resolves domain's MX set and keeps it; with
 * if_missing, only when neither memory nor the shared cache has one.
 */
void
discover_mx_refresh(struct discover *d, const char *domain, bool if_missing)
{
    struct cache_mxset m;
    struct mts_err err;
    uint32_t gen = cachecopy_gen(d->hot);
    int64_t now = d->now();

    if (if_missing) {
        bool have = cachecopy_get_mx(d->hot, domain, &m) && now < m.expires_at;

        cache_mxset_free(&m);
        if (have || (cache_get_mx(d->cache, domain, &m, &err) == CACHE_OK && now < m.expires_at)) {
            cache_mxset_free(&m);
            return;
        }
        cache_mxset_free(&m);
    }
    /* Another host of the fleet may have resolved it (or be at it). */
    if (discover_fleet_mx(d, domain, discover_lookup_bound_ms(d->cfg),
                          discover_lookup_bound_ms(d->cfg), &m)) {
        mx_store(d, &m, gen);
        cache_mxset_free(&m);
        return;
    }
    mx_learnt(d, mx_resolve(d, domain, NULL, &m, &err) == 0 ? &m : NULL, gen, domain);
    cache_mxset_free(&m);
}

/* Copies m's hosts (and whether DNSSEC proved them) out; queues its
 * refresh when past three quarters of its TTL. */
static int
mx_answer(struct discover *d, const struct cache_mxset *m, int64_t now, char hosts[][254],
          bool *secure)
{
    int n = 0;

    *secure = strcmp(m->dnssec, dns_sec_name(DNS_SEC_SECURE)) == 0;
    for (size_t i = 0; i < m->n && n < DISCOVER_MAX_MX; i++)
        mts_text_copy(hosts[n++], 254, m->hosts[i]);
    if (d->cache != NULL && now >= m->fetched_at + (m->expires_at - m->fetched_at) * 3 / 4)
        (void)discover_queue_job(d, m->domain, true, true);
    return n;
}

/*
 * Charges a DNS lookup of an MX set to who (the caps on fresh lookups,
 * lookupq.h): false, with err saying why, when who is at one.
 */
static bool
mx_charge(struct discover *d, const struct discover_caller *who, struct mts_err *err)
{
    enum lookupq_cap_result r;
    bool log_it = false;

    if (who == NULL || discover_cap_of(d, who) == NULL)
        return true;
    pthread_mutex_lock(&d->mu);
    r = discover_cap_take(d, who, &log_it);
    pthread_mutex_unlock(&d->mu);
    if (r == LOOKUPQ_CAP_OK)
        return true;
    {
        char why[sizeof(err->msg)];

        discover_refusal(d, who, r, log_it, why, sizeof(why));
        mts_err_set(err, "MX hosts: %s", why);
    }
    return false;
}

static void
mx_uncharge(struct discover *d, const struct discover_caller *who)
{
    if (who == NULL || discover_cap_of(d, who) == NULL)
        return;
    pthread_mutex_lock(&d->mu);
    discover_cap_give(d, who->map, who->sender, who->conn);
    pthread_mutex_unlock(&d->mu);
}

/* deadline NULL: memory only, -1 (err untouched) when it does not hold a live set. */
static int
lookup_mx(struct discover *d, const char *domain, const struct timespec *deadline,
          const struct discover_caller *who, char hosts[][254], bool *secure,
          struct mts_err *err)
{
    char norm[MXMATCH_NAME_MAX + 1];
    struct cache_mxset m;
    int64_t now = d->now();
    uint32_t gen = 0;
    int n;

    if (domain_normalize(domain, norm, sizeof(norm), err) != 0)
        return -1;
    if (d->hot != NULL) {
        /* Memory, then the shared cache: a warm recipient waits for no DNS. */
        cachecopy_freshen(d->hot);
        if (cachecopy_get_mx(d->hot, norm, &m) && now < m.expires_at) {
            n = mx_answer(d, &m, now, hosts, secure);
            cache_mxset_free(&m);
            return n;
        }
        cache_mxset_free(&m);
        if (deadline == NULL)
            return -1;
        gen = cachecopy_gen(d->hot);
        if (cache_get_mx(d->cache, norm, &m, NULL) == CACHE_OK) {
            cachecopy_put_mx(d->hot, &m, gen, SHARDMAP_ADD);
            if (now < m.expires_at) {
                n = mx_answer(d, &m, now, hosts, secure);
                cache_mxset_free(&m);
                return n;
            }
        }
        cache_mxset_free(&m);
    }
    if (deadline == NULL)
        return -1;
    /* Cold here: another host of the fleet may have it (or be resolving
     * it: its set is awaited for half what is left, the rest kept for our
     * own lookup should the holder give up or die). */
    if (discover_fleet_mx(d, norm, clock_ms_until(deadline), clock_ms_until(deadline) / 2, &m)) {
        mx_store(d, &m, gen);
        n = mx_answer(d, &m, now, hosts, secure);
        cache_mxset_free(&m);
        return n;
    }
    /* A cold domain: DNS, within the caller's deadline, counted like a
     * new domain's policy lookup (one sender must not flood the resolver). */
    if (!mx_charge(d, who, err))
        return -1;
    n = mx_resolve(d, norm, deadline, &m, err);
    mx_uncharge(d, who);
    if (n != 0) {
        cache_mxset_free(&m);
        if (d->fleet != NULL)
            fleet_unlock_mx(d->fleet, norm);
        return -1;
    }
    /* To the fleet at once (queued: the writer thread sends it); memory
     * and the file get it from the worker below. */
    if (d->fleet != NULL && m.n > 0)
        fleet_put_mx(d->fleet, &m, now);
    /* Kept by a worker (it asks DNS again, from libunbound's cache): a write
     * may wait busy_timeout_ms, which no recipient's thread does. Only if
     * still missing then: the lookup of an enforce policy, which this
     * recipient has just waited for, keeps the set itself right after. */
    if (d->cache != NULL)
        (void)discover_queue_mx_if_missing(d, norm);
    n = mx_answer(d, &m, INT64_MIN, hosts, secure);
    cache_mxset_free(&m);
    return n;
}

int
discover_mx_at_once(struct discover *d, const char *domain, char hosts[][254])
{
    struct mts_err err;
    bool secure;

    return lookup_mx(d, domain, NULL, NULL, hosts, &secure, &err);
}

int
discover_mx_sec_as(struct discover *d, const char *domain, const struct timespec *deadline,
                   const struct discover_caller *who, char hosts[][254], bool *secure,
                   struct mts_err *err)
{
    const struct timespec *outer;
    int n;

    *secure = false;
    if (deadline == NULL)
        return lookup_mx(d, domain, NULL, NULL, hosts, secure, err);
    outer = cache_bound_waits(deadline);
    n = lookup_mx(d, domain, deadline, who, hosts, secure, err);
    (void)cache_bound_waits(outer);
    return n;
}

int
discover_mx_as(struct discover *d, const char *domain, const struct timespec *deadline,
               const struct discover_caller *who, char hosts[][254], struct mts_err *err)
{
    bool secure;

    return discover_mx_sec_as(d, domain, deadline, who, hosts, &secure, err);
}

int
discover_mx(struct discover *d, const char *domain, const struct timespec *deadline,
            char hosts[][254], struct mts_err *err)
{
    return discover_mx_as(d, domain, deadline, NULL, hosts, err);
}

