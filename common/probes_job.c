/*
 * probes_job - one host's probe job: the shared cache's live rows, else
 * its addresses, each probed within the bounds (probe_concurrency by the
 * workers, probe_network_concurrency per /24 or /64 here); a job whose
 * next network is busy is parked, never waited for on a worker. And the
 * real seam (DNS, tlsprobe). See probes.h; locks in probes.c.
 */
#include "probes_int.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "log.h"
#include "metrics.h"
#include "probeslots.h"

/* ------------------------------------------------------------ real seam */

int
probes_real_resolve(void *arg, const char *host, const struct timespec *deadline,
             char addrs[][PROBECACHE_ADDRESS_MAX], size_t max, struct mts_err *err)
{
    struct probes *p = arg;
    struct dns_answer a;
    int n = 0;

    if (dns_addresses(p->dns, host, deadline, &a, err) != 0)
        return -1;
    if (a.status != DNS_OK || a.n == 0) {
        mts_err_set(err, "%s has no address (%s)", host, dns_status_name(a.status));
        dns_answer_free(&a);
        return -1;
    }
    for (size_t i = 0; i < a.n && (size_t)n < max; i++)
        if ((size_t)snprintf(addrs[n], PROBECACHE_ADDRESS_MAX, "%s", a.rr[i].text) <
            PROBECACHE_ADDRESS_MAX)
            n++;
    dns_answer_free(&a);
    return n;
}

void
probes_real_tlsa(void *arg, const char *host, int port, const struct timespec *dl,
                 struct tlsa_set *out)
{
    tlsa_lookup(((struct probes *)arg)->dns, host, port, dl, out);
}

void
probes_real_probe(void *arg, const char *host, const char *address, int port,
                  const struct tlsa_set *tlsa, const struct timespec *deadline,
                  struct tlsprobe_result *out)
{
    struct probes *p = arg;
    struct tlsprobe_options o = p->pc.tls;

    o.tlsa = tlsa;
    (void)tlsprobe_run(&o, host, address, port, deadline, out);
}

void
probes_job_free(struct job *j)
{
    if (j != NULL)
        free(j->tlsa);
    free(j);
}

int64_t
probes_real_now(void)
{
    return (int64_t)time(NULL);
}

/* ------------------------------------------------------------ work */

/* The /24 or /64 of a numeric address, as text. */
static void
net_key(const char *address, char *key, size_t keysz)
{
    unsigned char b[16];

    if (inet_pton(AF_INET, address, b) == 1)
        snprintf(key, keysz, "%u.%u.%u/24", b[0], b[1], b[2]);
    else if (inet_pton(AF_INET6, address, b) == 1)
        snprintf(key, keysz, "%02x%02x:%02x%02x:%02x%02x:%02x%02x::/64", b[0], b[1], b[2],
                 b[3], b[4], b[5], b[6], b[7]);
    else
        mts_text_set(key, keysz, "%s", address);
}

/* Under p->mu: e waits for a slot of its network (key; "": any slot, the
 * process was at probe_concurrency), off every lane. */
static void
park(struct probes *p, struct entry *e, const char *key)
{
    snprintf(e->park_key, sizeof(e->park_key), "%s", key);
    e->qprev = p->parked_tail;
    e->qnext = NULL;
    if (p->parked_tail != NULL)
        p->parked_tail->qnext = e;
    else
        p->parked = e;
    p->parked_tail = e;
}

/* Under p->mu: a slot of network key came free (in this engine or in
 * another, probeslots.h); the jobs parked on it, and those waiting for any
 * slot, go back to the head of their lanes (they waited their turn), in
 * order. */
void
probes_unpark(struct probes *p, const char *key)
{
    struct entry *back = NULL, *back_tail = NULL;

    for (struct entry *e = p->parked, *next; e != NULL; e = next) {
        next = e->qnext;
        if (e->park_key[0] != '\0' && strcmp(e->park_key, key) != 0)
            continue;
        if (e->qprev != NULL)
            e->qprev->qnext = e->qnext;
        else
            p->parked = e->qnext;
        if (e->qnext != NULL)
            e->qnext->qprev = e->qprev;
        else
            p->parked_tail = e->qprev;
        e->qnext = NULL;
        e->qprev = back_tail;
        if (back_tail != NULL)
            back_tail->qnext = e;
        else
            back = e;
        back_tail = e;
    }
    /* Pushed at each lane's head from the last, so they keep their order. */
    for (struct entry *e = back_tail, *prev; e != NULL; e = prev) {
        int l = e->lane;
        prev = e->qprev;
        e->qprev = NULL;
        e->qnext = p->q[l].head;
        if (e->qnext != NULL)
            e->qnext->qprev = e;
        else
            p->q[l].tail = e;
        p->q[l].head = e;
        p->q[l].n++;
        probes_publish_lane(p, l);
    }
    if (back != NULL)
        pthread_cond_broadcast(&p->work_cv);
}

/* The job's start: the shared cache's live rows, else the addresses. */
void
probes_job_start(struct probes *p, const char *host, struct job *j)
{
    struct probecache_host sum;
    struct mts_err err;
    int64_t now = p->seam.now();
    struct timespec dl;
    char why[PROBECACHE_REASON_MAX - 16];

    if (p->cache != NULL &&
        probecache_get(p->cache, host, (int)p->cfg->probe_port, j->rows, PROBECACHE_ADDR_MAX,
                       &j->n, NULL, &err) == CACHE_OK &&
        (j->n = probeconf_allowed_rows(&p->pc, j->rows, j->n)) > 0) {
        probecache_summarise(j->rows, j->n, &sum);
        /* Live and not yet in the last quarter of its life (the refresh window). */
        if (sum.expires_at - (sum.expires_at - sum.probed_at) / 4 > now) {
            pthread_mutex_lock(&p->mu);
            p->stats.cache_loads++;
            pthread_mutex_unlock(&p->mu);
            probes_fill_host(&sum, &j->res);
            j->done = true;
            return;
        }
    }
    /* Another milter of the fleet may have probed it, or be probing it. */
    if (probes_fleet_start(p, host, j))
        return;
    j->n = 0;
    dl = clock_deadline_after((int)p->cfg->dns_timeout_ms);
    j->n_addr = p->seam.resolve(p->seam.arg, host, &dl, j->addrs, PROBECACHE_ADDR_MAX, &err);
    if (j->n_addr <= 0) {
        /* Kept in memory only, for the failure TTL: nothing was probed. */
        j->res.state = PROBES_KNOWN;
        j->res.grade = TLSPROBE_GRADE_UNKNOWN;
        j->res.status = TLSPROBE_UNREACHABLE;
        snprintf(j->res.reason, sizeof(j->res.reason), "%s",
                 j->n_addr < 0 ? err.msg : "no address");
        j->res.probed_at = now;
        j->res.expires_at = now + p->cfg->probe_failure_ttl;
        j->done = true;
        return;
    }
    j->n_addr = probeconf_routable_only(&p->pc, host, j->addrs, j->n_addr, why, sizeof(why));
    if (j->n_addr == 0) {
        /* Not globally reachable, and not allowed: unknown for the path,
         * in memory only, for the failure TTL. */
        j->res.state = PROBES_KNOWN;
        j->res.grade = TLSPROBE_GRADE_UNKNOWN;
        j->res.status = TLSPROBE_UNREACHABLE;
        j->res.not_routable = true;
        snprintf(j->res.reason, sizeof(j->res.reason), "not probed: %s", why);
        j->res.probed_at = now;
        j->res.expires_at = now + p->cfg->probe_failure_ttl;
        j->done = true;
        return;
    }
    /* RFC 7672 §2.2: TLSA records, in a DNS timeout of their own. */
    if (p->seam.tlsa != NULL && (j->tlsa = calloc(1, sizeof(*j->tlsa))) != NULL)
        probes_fleet_tlsa(p, host,
                          (struct timespec[]){clock_deadline_after((int)p->cfg->dns_timeout_ms)},
                          j->tlsa);
}

/*
 * Probes the job's next addresses. When an address's network is busy the
 * job is parked (under mu, so the slot's release cannot be missed) and
 * false returned: the worker takes another job. True when done.
 */
bool
probes_job_run(struct probes *p, struct entry *e, struct job *j)
{
    const char *host = e->host;
    int port = (int)p->cfg->probe_port;
    struct probecache_host sum;

    for (; j->next < j->n_addr; j->next++) {
        const char *addr = j->addrs[j->next];
        struct tlsprobe_result *r = calloc(1, sizeof(*r));
        struct tlsprobe_grade g;
        char key[NET_KEY_MAX];
        enum probeslots_take t;
        struct timespec dl;

        if (r == NULL)
            continue;
        net_key(addr, key, sizeof(key));
        /* The slots are the process's (probeslots.h): an engine a reload
         * replaced still counts while its last probes run. Taken under
         * p->mu, so a slot freed by another engine (its wake takes p->mu)
         * finds the job parked. */
        pthread_mutex_lock(&p->mu);
        if ((t = probeslots_take(key)) != PROBESLOTS_OK) {
            park(p, e, t == PROBESLOTS_NETWORK_BUSY ? key : "");
            pthread_mutex_unlock(&p->mu);
            free(r);
            return false;
        }
        {
            int all, net;

            probeslots_counts(&all, &net);
            if (net > p->stats.network_max)
                p->stats.network_max = net;
        }
        p->running++;
        p->stats.probes++;
        if (p->running > p->stats.running_max)
            p->stats.running_max = p->running;
        pthread_mutex_unlock(&p->mu);

        dl = clock_deadline_after((int)p->cfg->probe_timeout_ms);
        p->seam.probe(p->seam.arg, host, addr, port, j->tlsa, &dl, r);

        pthread_mutex_lock(&p->mu);
        p->running--;
        probeslots_give(key);
        probes_unpark(p, key);
        pthread_mutex_unlock(&p->mu);
        /* Other engines' jobs parked on it (never under p->mu: see probeslots.h). */
        probeslots_notify(key, &p->slots_watch);

        /* The row names what was asked, whatever the probe filled in. */
        snprintf(r->mx_host, sizeof(r->mx_host), "%s", host);
        mts_text_set(r->address, sizeof(r->address), "%s", addr);
        r->port = port;
        tlsprobe_grade(r, &g);
        probecache_row_from(r, &g, p->seam.now(), p->cfg->probe_ttl,
                            p->cfg->probe_failure_ttl, &j->rows[j->n]);
        probecache_row_dane(&j->rows[j->n], j->tlsa, r, p->cfg->probe_failure_ttl);
        free(r);
        log_msg(LOG_INFO, "probe %s[%s]:%d: %s%s%s; DANE %s %s", host, addr, port,
                tlsprobe_grade_name(j->rows[j->n].grade), j->rows[j->n].reason[0] ? ": " : "",
                j->rows[j->n].reason, tlsa_dane_name(j->rows[j->n].dane),
                j->rows[j->n].dane_detail);
        metrics_probe((int)j->rows[j->n].grade, (int)j->rows[j->n].dane,
                      ((int64_t)p->cfg->probe_timeout_ms - clock_ms_until(&dl)) * 1000);
        /* To the file from the queue's thread: a locked file holds up no
         * probe worker (cachewq.h); memory has the row when the job ends. */
        if (p->wq != NULL)
            cachewq_put_probe(p->wq, &j->rows[j->n]);
        j->n++;
    }
    if (j->n == 0) {
        j->res.state = PROBES_NOT_YET;
        snprintf(j->res.reason, sizeof(j->res.reason), "out of memory");
    } else {
        probecache_summarise(j->rows, j->n, &sum);
        probes_fill_host(&sum, &j->res);
        j->probed = true;
    }
    j->done = true;
    return true;
}

void
probes_fill_host(const struct probecache_host *sum, struct probes_host *res)
{
    memset(res, 0, sizeof(*res));
    res->state = PROBES_KNOWN;
    res->grade = sum->grade;
    res->rfc8461 = sum->rfc8461;
    res->pkix = sum->pkix;
    res->tls = sum->tls;
    res->status = sum->worst->status;
    snprintf(res->address, sizeof(res->address), "%s", sum->worst->address);
    snprintf(res->reason, sizeof(res->reason), "%s", sum->worst->reason);
    snprintf(res->protocol, sizeof(res->protocol), "%s", sum->worst->protocol);
    res->dane = sum->worst->dane;
    snprintf(res->dane_detail, sizeof(res->dane_detail), "%s", sum->worst->dane_detail);
    snprintf(res->source, sizeof(res->source), "%s", sum->worst->source);
    res->probed_at = sum->probed_at;
    res->expires_at = sum->expires_at;
}

