/*
 * probes - MX host probes on background threads; see probes.h.
 *
 * Locks. The host table is sharded (N_SHARDS), each shard with a
 * read-write lock: a probes_get that finds a live result takes only its
 * shard's read lock (no lock shared by every RCPT). One mutex (mu) guards
 * the queue, the job states, the network counters and the statistics.
 * Order: a shard lock, then mu; neither is held across DNS, a probe or
 * the cache. An entry's state leaves E_IDLE only in enqueue(), under its
 * shard's write lock, so eviction (also under it) never frees an entry a
 * worker holds.
 */
#include "probes.h"
#include "tlsa.h"

#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "cache.h"
#include "clock.h"
#include "dns.h"
#include "log.h"

#define N_SHARDS 16
#define SHARD_BUCKETS 256
#define NET_KEY_MAX 48
#define SYNC_MAX 10000 /* hosts re-read from the shared cache in one refresh round */

enum entry_state { E_IDLE, E_QUEUED, E_RUNNING };

struct entry {
    char host[TLSPROBE_HOST_MAX + 1]; /* never changes */
    _Atomic int state;         /* enum entry_state; changed under mu */
    bool have;                 /* res holds a result; under the shard lock */
    struct probes_host res;    /* under the shard lock */
    _Atomic int64_t last_used;
    struct entry *next;        /* hash chain; under the shard lock */
    struct entry *qnext;       /* queue; under mu */
};

struct shard {
    pthread_rwlock_t lk;
    struct entry *buckets[SHARD_BUCKETS];
    size_t n;
};

struct net {
    char key[NET_KEY_MAX];
    int running;
};

struct probes {
    const struct config *cfg;
    struct probes_seam seam;
    struct cache *cache;
    struct dns *dns;
    char ehlo[256];
    pthread_mutex_t mu;
    pthread_cond_t work_cv, idle_cv, net_cv, refresher_cv;
    struct shard shards[N_SHARDS];
    size_t max_per_shard;
    struct entry *qhead, *qtail;
    int busy;                  /* jobs running */
    int running;               /* probes running */
    struct net *nets;          /* probe_concurrency slots */
    int64_t data_version;     /* of the shared cache, at the last sync */
    int64_t synced_at;        /* when rows were last looked for */
    bool stop;
    int refs;                 /* probes_share; the last probes_close closes */
    bool load_on_miss;        /* probes_load_on_miss */
    struct probes_stats stats;
    pthread_t *workers;
    int n_workers;
    pthread_t refresher;
    bool have_refresher;
};

/* ------------------------------------------------------------ real seam */

static int
real_resolve(void *arg, const char *host, const struct timespec *deadline,
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

static void
real_tlsa(void *arg, const char *host, int port, const struct timespec *dl, struct tlsa_set *out)
{
    tlsa_lookup(((struct probes *)arg)->dns, host, port, dl, out);
}

static void
real_probe(void *arg, const char *host, const char *address, int port,
           const struct tlsa_set *tlsa, const struct timespec *deadline,
           struct tlsprobe_result *out)
{
    struct probes *p = arg;
    struct tlsprobe_options o = {
        .ca_file = p->cfg->probe_ca_file[0] != '\0' ? p->cfg->probe_ca_file : p->cfg->ca_file,
        .ehlo_name = p->ehlo,
        .tlsa = tlsa,
    };

    (void)tlsprobe_run(&o, host, address, port, deadline, out);
}

static int64_t
real_now(void)
{
    return (int64_t)time(NULL);
}

/* ------------------------------------------------------------ table */

static unsigned
hash(const char *s)
{
    unsigned h = 2166136261u;

    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

static struct shard *
shard_of(struct probes *p, unsigned h)
{
    return &p->shards[h % N_SHARDS];
}

static struct entry **
bucket_of(struct shard *s, unsigned h)
{
    return &s->buckets[(h / N_SHARDS) % SHARD_BUCKETS];
}

/* Under the shard's lock (read or write). */
static struct entry *
find(struct shard *s, unsigned h, const char *host)
{
    for (struct entry *e = *bucket_of(s, h); e != NULL; e = e->next)
        if (strcmp(e->host, host) == 0)
            return e;
    return NULL;
}

/* Drops the shard's least recently asked idle entry; false when none is
 * idle. Under the shard's write lock. */
static bool
evict_one(struct shard *s)
{
    struct entry **victim = NULL;

    for (size_t b = 0; b < SHARD_BUCKETS; b++)
        for (struct entry **pe = &s->buckets[b]; *pe != NULL; pe = &(*pe)->next)
            if (atomic_load(&(*pe)->state) == E_IDLE &&
                (victim == NULL || atomic_load(&(*pe)->last_used) <
                                       atomic_load(&(*victim)->last_used)))
                victim = pe;
    if (victim == NULL)
        return false;
    {
        struct entry *e = *victim;
        *victim = e->next;
        free(e);
        s->n--;
    }
    return true;
}

/* host's entry, made when missing; under the shard's write lock. NULL: no
 * memory, or the shard is full of busy entries. */
static struct entry *
entry_for(struct probes *p, struct shard *s, unsigned h, const char *host)
{
    struct entry *e = find(s, h, host);

    if (e == NULL && (s->n < p->max_per_shard || evict_one(s)) &&
        (e = calloc(1, sizeof(*e))) != NULL) {
        struct entry **b = bucket_of(s, h);
        snprintf(e->host, sizeof(e->host), "%s", host);
        atomic_init(&e->state, E_IDLE);
        atomic_init(&e->last_used, 0);
        e->next = *b;
        *b = e;
        s->n++;
    }
    return e;
}

/* Under e's shard's write lock; takes mu. */
static void
enqueue(struct probes *p, struct entry *e)
{
    pthread_mutex_lock(&p->mu);
    if (atomic_load(&e->state) == E_IDLE) { /* else queued or running: one job per host */
        atomic_store(&e->state, E_QUEUED);
        e->qnext = NULL;
        if (p->qtail != NULL)
            p->qtail->qnext = e;
        else
            p->qhead = e;
        p->qtail = e;
        pthread_cond_signal(&p->work_cv);
    }
    pthread_mutex_unlock(&p->mu);
}

bool
probes_never(const struct config_list *never, const char *host)
{
    size_t hl = strlen(host);

    for (size_t i = 0; i < never->n; i++) {
        const char *pat = never->v[i];
        if (pat[0] == '*' && pat[1] == '.') {
            size_t pl = strlen(pat + 1);
            if (hl > pl && strcasecmp(host + hl - pl, pat + 1) == 0)
                return true;
        } else if (strcasecmp(pat, host) == 0) {
            return true;
        }
    }
    return false;
}

void
probes_load_on_miss(struct probes *p)
{
    p->load_on_miss = true;
}

static void fill_host(const struct probecache_host *sum, struct probes_host *res);

/* The live rows of host from the shared cache into its entry (load_on_miss). */
static void
load_now(struct probes *p, const char *host, int64_t now)
{
    struct probecache_row rows[PROBECACHE_ADDR_MAX];
    struct probecache_host sum;
    struct probes_host res;
    struct mts_err err;
    size_t n = 0;
    unsigned h = hash(host);
    struct shard *s = shard_of(p, h);
    struct entry *e;
    bool live;

    pthread_rwlock_rdlock(&s->lk);
    e = find(s, h, host);
    live = e != NULL && e->have && e->res.expires_at > now;
    pthread_rwlock_unlock(&s->lk);
    if (live || p->cache == NULL ||
        probecache_get(p->cache, host, (int)p->cfg->probe_port, rows, PROBECACHE_ADDR_MAX, &n,
                       NULL, &err) != CACHE_OK ||
        n == 0)
        return;
    probecache_summarise(rows, n, &sum);
    if (sum.expires_at <= now)
        return;
    fill_host(&sum, &res);
    pthread_rwlock_wrlock(&s->lk);
    if ((e = entry_for(p, s, h, host)) != NULL && (!e->have || e->res.probed_at < res.probed_at)) {
        e->res = res;
        e->have = true;
    }
    pthread_rwlock_unlock(&s->lk);
}

void
probes_get(struct probes *p, const char *host, struct probes_host *out)
{
    int64_t now = p->seam.now();
    unsigned h;
    struct shard *s;
    struct entry *e;

    memset(out, 0, sizeof(*out));
    out->state = PROBES_NOT_YET;
    out->grade = TLSPROBE_GRADE_UNKNOWN;
    if (probes_never(&p->cfg->probe_never, host)) {
        out->state = PROBES_NEVER;
        snprintf(out->reason, sizeof(out->reason), "%s is on probe_never", host);
        return;
    }
    if (strlen(host) > TLSPROBE_HOST_MAX || host[0] == '\0') {
        snprintf(out->reason, sizeof(out->reason), "not a host name");
        return;
    }
    h = hash(host);
    s = shard_of(p, h);
    /* The warm path: the shard's read lock only. */
    pthread_rwlock_rdlock(&s->lk);
    e = find(s, h, host);
    if (e != NULL && e->have && e->res.expires_at > now) {
        *out = e->res;
        atomic_store(&e->last_used, now);
    }
    pthread_rwlock_unlock(&s->lk);
    if (out->state == PROBES_KNOWN)
        return;
    if (p->load_on_miss)
        load_now(p, host, now);
    pthread_rwlock_wrlock(&s->lk);
    if ((e = entry_for(p, s, h, host)) != NULL) {
        atomic_store(&e->last_used, now);
        if (e->have && e->res.expires_at > now)
            *out = e->res;
        else
            enqueue(p, e);
    }
    pthread_rwlock_unlock(&s->lk);
    if (out->state == PROBES_NOT_YET)
        snprintf(out->reason, sizeof(out->reason), "%s has not been probed yet", host);
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

/* Waits for a slot in the address's network; returns the slot. Under p->mu. */
static struct net *
net_enter(struct probes *p, const char *key)
{
    for (;;) {
        struct net *free_slot = NULL, *mine = NULL;

        for (int i = 0; i < p->n_workers; i++) {
            if (p->nets[i].running > 0 && strcmp(p->nets[i].key, key) == 0)
                mine = &p->nets[i];
            else if (p->nets[i].running == 0 && free_slot == NULL)
                free_slot = &p->nets[i];
        }
        if (mine == NULL && free_slot != NULL) {
            mine = free_slot;
            snprintf(mine->key, sizeof(mine->key), "%s", key);
        }
        /* Every running probe holds a slot, so a new network always finds one. */
        if (mine != NULL && mine->running < p->cfg->probe_network_concurrency) {
            mine->running++;
            if (mine->running > p->stats.network_max)
                p->stats.network_max = mine->running;
            return mine;
        }
        pthread_cond_wait(&p->net_cv, &p->mu);
    }
}

static void
probe_host(struct probes *p, const char *host, struct probes_host *res)
{
    struct probecache_row rows[PROBECACHE_ADDR_MAX];
    char addrs[PROBECACHE_ADDR_MAX][PROBECACHE_ADDRESS_MAX];
    struct probecache_host sum;
    struct mts_err err;
    size_t n = 0, n_bad = 0;
    int64_t now = p->seam.now();
    int port = (int)p->cfg->probe_port, n_addr;
    struct timespec dl;
    struct tlsa_set *tlsa = NULL;

    memset(res, 0, sizeof(*res));
    if (p->cache != NULL &&
        probecache_get(p->cache, host, port, rows, PROBECACHE_ADDR_MAX, &n, &n_bad, &err) ==
            CACHE_OK &&
        n > 0) {
        probecache_summarise(rows, n, &sum);
        /* Live and not yet in the last quarter of its life (the refresh window). */
        if (sum.expires_at - (sum.expires_at - sum.probed_at) / 4 > now) {
            pthread_mutex_lock(&p->mu);
            p->stats.cache_loads++;
            pthread_mutex_unlock(&p->mu);
            goto done;
        }
    }
    n = 0;
    dl = clock_deadline_after((int)p->cfg->dns_timeout_ms);
    n_addr = p->seam.resolve(p->seam.arg, host, &dl, addrs, PROBECACHE_ADDR_MAX, &err);
    /* RFC 7672 §2.2: TLSA records, in a DNS timeout of their own. */
    if (n_addr > 0 && p->seam.tlsa != NULL && (tlsa = calloc(1, sizeof(*tlsa))) != NULL)
        p->seam.tlsa(p->seam.arg, host, port,
                     (struct timespec[]){clock_deadline_after((int)p->cfg->dns_timeout_ms)}, tlsa);
    if (n_addr <= 0) {
        /* Kept in memory only, for the failure TTL: nothing was probed. */
        res->state = PROBES_KNOWN;
        res->grade = TLSPROBE_GRADE_UNKNOWN;
        res->status = TLSPROBE_UNREACHABLE;
        snprintf(res->reason, sizeof(res->reason), "%s",
                 n_addr < 0 ? err.msg : "no address");
        res->probed_at = now;
        res->expires_at = now + p->cfg->probe_failure_ttl;
        return;
    }
    for (int i = 0; i < n_addr; i++) {
        struct tlsprobe_result *r = calloc(1, sizeof(*r));
        struct tlsprobe_grade g;
        char key[NET_KEY_MAX];
        struct net *slot;

        if (r == NULL)
            continue;
        net_key(addrs[i], key, sizeof(key));
        pthread_mutex_lock(&p->mu);
        slot = net_enter(p, key);
        p->running++;
        p->stats.probes++;
        if (p->running > p->stats.running_max)
            p->stats.running_max = p->running;
        pthread_mutex_unlock(&p->mu);

        dl = clock_deadline_after((int)p->cfg->probe_timeout_ms);
        p->seam.probe(p->seam.arg, host, addrs[i], port, tlsa, &dl, r);

        pthread_mutex_lock(&p->mu);
        p->running--;
        slot->running--;
        pthread_cond_broadcast(&p->net_cv);
        pthread_mutex_unlock(&p->mu);

        /* The row names what was asked, whatever the probe filled in. */
        snprintf(r->mx_host, sizeof(r->mx_host), "%s", host);
        mts_text_set(r->address, sizeof(r->address), "%s", addrs[i]);
        r->port = port;
        tlsprobe_grade(r, &g);
        probecache_row_from(r, &g, p->seam.now(), p->cfg->probe_ttl,
                            p->cfg->probe_failure_ttl, &rows[n]);
        probecache_row_dane(&rows[n], tlsa, r, p->cfg->probe_failure_ttl);
        free(r);
        log_msg(LOG_INFO, "probe %s[%s]:%d: %s%s%s; DANE %s %s", host, addrs[i], port,
                tlsprobe_grade_name(rows[n].grade), rows[n].reason[0] ? ": " : "",
                rows[n].reason, tlsa_dane_name(rows[n].dane), rows[n].dane_detail);
        if (p->cache != NULL && probecache_put(p->cache, &rows[n], &err) != CACHE_OK)
            log_msg(LOG_WARNING, "probe %s[%s]: %s", host, addrs[i], err.msg);
        n++;
    }
    free(tlsa);
    if (n == 0) {
        res->state = PROBES_NOT_YET;
        snprintf(res->reason, sizeof(res->reason), "out of memory");
        return;
    }
    probecache_summarise(rows, n, &sum);
done:
    fill_host(&sum, res);
}

static void
fill_host(const struct probecache_host *sum, struct probes_host *res)
{
    memset(res, 0, sizeof(*res));
    res->state = PROBES_KNOWN;
    res->grade = sum->grade;
    res->rfc8461 = sum->rfc8461;
    res->tls = sum->tls;
    res->status = sum->worst->status;
    snprintf(res->address, sizeof(res->address), "%s", sum->worst->address);
    snprintf(res->reason, sizeof(res->reason), "%s", sum->worst->reason);
    snprintf(res->protocol, sizeof(res->protocol), "%s", sum->worst->protocol);
    res->probed_at = sum->probed_at;
    res->expires_at = sum->expires_at;
    res->dane = sum->worst->dane;
    snprintf(res->dane_detail, sizeof(res->dane_detail), "%s", sum->worst->dane_detail);
}

static void *
worker(void *arg)
{
    struct probes *p = arg;

    pthread_mutex_lock(&p->mu);
    for (;;) {
        struct entry *e;
        char host[TLSPROBE_HOST_MAX + 1];
        struct probes_host *res;

        while (!p->stop && p->qhead == NULL)
            pthread_cond_wait(&p->work_cv, &p->mu);
        if (p->stop)
            break;
        e = p->qhead;
        p->qhead = e->qnext;
        if (p->qhead == NULL)
            p->qtail = NULL;
        atomic_store(&e->state, E_RUNNING);
        p->busy++;
        p->stats.jobs++;
        snprintf(host, sizeof(host), "%s", e->host);
        pthread_mutex_unlock(&p->mu);

        res = malloc(sizeof(*res));
        if (res != NULL)
            probe_host(p, host, res);

        /* A running entry is never evicted, so e is still ours. */
        if (res != NULL && res->state == PROBES_KNOWN) {
            struct shard *sh = shard_of(p, hash(host));

            pthread_rwlock_wrlock(&sh->lk);
            e->res = *res;
            e->have = true;
            pthread_rwlock_unlock(&sh->lk);
        }
        free(res);
        pthread_mutex_lock(&p->mu);
        atomic_store(&e->state, E_IDLE);
        p->busy--;
        if (p->busy == 0 && p->qhead == NULL)
            pthread_cond_broadcast(&p->idle_cv);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

struct probed {
    char host[TLSPROBE_HOST_MAX + 1];
    int64_t at;
};

struct sync {
    struct probed *v;
    size_t n, max;
};

static void
collect_probed(const char *host, int64_t at, void *arg)
{
    struct sync *s = arg;

    if (s->n < s->max && strlen(host) <= TLSPROBE_HOST_MAX) {
        memcpy(s->v[s->n].host, host, strlen(host) + 1);
        s->v[s->n++].at = at;
    }
}

/* One thread at a time: the refresher, or a test. */
void
probes_refresh(struct probes *p)
{
    int64_t now = p->seam.now(), v = 0;
    struct sync sync = {NULL, 0, SYNC_MAX};
    struct mts_err err;

    /* Another process (or this one's discover) wrote: look for probe rows
     * written since the last look (a second back: same-second writes). */
    if (p->cache != NULL && cache_data_version(p->cache, &v, &err) == CACHE_OK &&
        v != p->data_version && (sync.v = malloc(SYNC_MAX * sizeof(*sync.v))) != NULL) {
        if (cache_tls_probed_since(p->cache, p->synced_at - 1, SYNC_MAX, collect_probed, &sync,
                                   &err) != CACHE_OK)
            log_msg(LOG_WARNING, "probes: %s", err.msg);
        p->data_version = v;
        p->synced_at = now;
    }
    /* Rows nobody refreshed for a whole probe_ttl past their expiry. */
    if (p->cache != NULL &&
        cache_purge_tls_probes(p->cache, now - p->cfg->probe_ttl, &err) != CACHE_OK)
        log_msg(LOG_WARNING, "probes: %s", err.msg);
    for (size_t i = 0; i < sync.n; i++) {
        unsigned h = hash(sync.v[i].host);
        struct shard *sh = shard_of(p, h);
        struct entry *e;

        pthread_rwlock_wrlock(&sh->lk);
        e = find(sh, h, sync.v[i].host);
        /* Newer than what memory holds: the job reads the rows again. */
        if (e != NULL && (!e->have || e->res.probed_at < sync.v[i].at))
            enqueue(p, e);
        pthread_rwlock_unlock(&sh->lk);
    }
    for (size_t k = 0; k < N_SHARDS; k++) {
        struct shard *sh = &p->shards[k];

        pthread_rwlock_wrlock(&sh->lk);
        for (size_t b = 0; b < SHARD_BUCKETS; b++)
            for (struct entry *e = sh->buckets[b]; e != NULL; e = e->next) {
                int64_t life = e->res.expires_at - e->res.probed_at;
                bool in_use = atomic_load(&e->last_used) >= now - p->cfg->probe_ttl;

                if (e->have && in_use && e->res.expires_at - life / 4 <= now)
                    enqueue(p, e);
            }
        pthread_rwlock_unlock(&sh->lk);
    }
    free(sync.v);
}

/* At open: the live probe rows of the shared cache into memory, so that a
 * restart or a reload does not make every MX host unknown again. */
static void
preload(struct probes *p)
{
    int64_t now = p->seam.now();
    struct sync sync = {NULL, 0, SYNC_MAX};
    struct mts_err err;

    if ((sync.v = malloc(SYNC_MAX * sizeof(*sync.v))) == NULL)
        return;
    if (cache_tls_probed_since(p->cache, now - p->cfg->probe_ttl, SYNC_MAX, collect_probed,
                               &sync, &err) != CACHE_OK)
        log_msg(LOG_WARNING, "probes: %s", err.msg);
    for (size_t i = 0; i < sync.n; i++)
        load_now(p, sync.v[i].host, now);
    free(sync.v);
}

static void *
refresher(void *arg)
{
    struct probes *p = arg;

    pthread_mutex_lock(&p->mu);
    while (!p->stop) {
        struct timespec until = clock_deadline_after((int)(p->cfg->refresh_interval * 1000));

        while (!p->stop && pthread_cond_timedwait(&p->refresher_cv, &p->mu, &until) != ETIMEDOUT)
            ;
        if (p->stop)
            break;
        pthread_mutex_unlock(&p->mu);
        probes_refresh(p);
        pthread_mutex_lock(&p->mu);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

void
probes_drain(struct probes *p)
{
    pthread_mutex_lock(&p->mu);
    while (p->busy > 0 || p->qhead != NULL)
        pthread_cond_wait(&p->idle_cv, &p->mu);
    pthread_mutex_unlock(&p->mu);
}

void
probes_get_stats(struct probes *p, struct probes_stats *out)
{
    pthread_mutex_lock(&p->mu);
    *out = p->stats;
    pthread_mutex_unlock(&p->mu);
}

/* ------------------------------------------------------------ open, close */

int
probes_open(const struct config *cfg, const struct probes_seam *seam, int flags,
            struct probes **out, struct mts_err *err)
{
    struct probes *p = calloc(1, sizeof(*p));

    *out = NULL;
    if (p == NULL) {
        mts_err_set(err, "out of memory");
        return -1;
    }
    p->refs = 1;
    p->cfg = config_ref((struct config *)cfg);
    p->max_per_shard = (size_t)cfg->memory_cache_domains / N_SHARDS + 1;
    for (size_t k = 0; k < N_SHARDS; k++)
        pthread_rwlock_init(&p->shards[k].lk, NULL);
    p->n_workers = (int)cfg->probe_concurrency;
    pthread_mutex_init(&p->mu, NULL);
    clock_cond_init(&p->work_cv);
    clock_cond_init(&p->idle_cv);
    clock_cond_init(&p->net_cv);
    clock_cond_init(&p->refresher_cv);
    if (gethostname(p->ehlo, sizeof(p->ehlo) - 1) != 0 || p->ehlo[0] == '\0')
        snprintf(p->ehlo, sizeof(p->ehlo), "localhost");
    if (seam != NULL) {
        p->seam = *seam;
    } else {
        struct dns_options dopts = {
            .resolv_conf = cfg->resolv_conf,
            .trust_anchor = cfg->trust_anchor,
            .unbound_conf = cfg->unbound_conf,
            .timeout_ms = (int)cfg->dns_timeout_ms,
        };
        if (dns_open(&dopts, &p->dns, err) != 0)
            goto fail;
        p->seam.resolve = real_resolve;
        p->seam.probe = real_probe;
        p->seam.tlsa = real_tlsa;
        p->seam.arg = p;
    }
    if (p->seam.now == NULL)
        p->seam.now = real_now;
    if (!(flags & PROBES_NO_CACHE) &&
        cache_open(cfg->cache_db, (int)cfg->cache_busy_timeout_ms, &p->cache, err) != CACHE_OK)
        goto fail;
    if (p->cache != NULL) {
        (void)cache_data_version(p->cache, &p->data_version, err);
        preload(p);
    }
    p->synced_at = p->seam.now();
    p->nets = calloc((size_t)p->n_workers, sizeof(*p->nets));
    p->workers = calloc((size_t)p->n_workers, sizeof(*p->workers));
    if (p->nets == NULL || p->workers == NULL) {
        mts_err_set(err, "out of memory");
        goto fail;
    }
    for (int i = 0; i < p->n_workers; i++)
        if (pthread_create(&p->workers[i], NULL, worker, p) != 0) {
            mts_err_set(err, "cannot start probe threads");
            p->n_workers = i;
            goto fail;
        }
    if (!(flags & PROBES_NO_REFRESHER)) {
        if (pthread_create(&p->refresher, NULL, refresher, p) != 0) {
            mts_err_set(err, "cannot start the probe refresher");
            goto fail;
        }
        p->have_refresher = true;
    }
    *out = p;
    return 0;
fail:
    probes_close(p);
    return -1;
}

struct probes *
probes_share(struct probes *p)
{
    __atomic_add_fetch(&p->refs, 1, __ATOMIC_SEQ_CST);
    return p;
}

void
probes_close(struct probes *p)
{
    if (p == NULL || __atomic_sub_fetch(&p->refs, 1, __ATOMIC_SEQ_CST) > 0)
        return;
    pthread_mutex_lock(&p->mu);
    p->stop = true;
    pthread_cond_broadcast(&p->work_cv);
    pthread_cond_broadcast(&p->refresher_cv);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; p->workers != NULL && i < p->n_workers; i++)
        pthread_join(p->workers[i], NULL);
    if (p->have_refresher)
        pthread_join(p->refresher, NULL);
    for (size_t k = 0; k < N_SHARDS; k++) {
        for (size_t b = 0; b < SHARD_BUCKETS; b++)
            while (p->shards[k].buckets[b] != NULL) {
                struct entry *e = p->shards[k].buckets[b];
                p->shards[k].buckets[b] = e->next;
                free(e);
            }
        pthread_rwlock_destroy(&p->shards[k].lk);
    }
    cache_close(p->cache);
    if (p->dns != NULL)
        dns_close(p->dns);
    free(p->nets);
    free(p->workers);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->work_cv);
    pthread_cond_destroy(&p->idle_cv);
    pthread_cond_destroy(&p->net_cv);
    pthread_cond_destroy(&p->refresher_cv);
    config_unref((struct config *)p->cfg);
    free(p);
}
