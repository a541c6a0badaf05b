/*
 * dns - libunbound resolver with per-caller deadlines; see dns.h.
 *
 * One current ub_ctx in threaded async mode (dns_ctx.c; dns_health.c
 * replaces it when libunbound has backed off a forwarder that answers). Its
 * delivery thread polls ub_fd() and
 * calls ub_process(), which runs each query's callback; the callback fills
 * the caller's slot and signals it. A caller that reaches its deadline
 * marks its query abandoned and cancels it: if the cancel fails the
 * callback is already on its way and frees the query itself. That hand-off
 * is the only subtle part, and it happens under the query's mutex.
 *
 * dns*.c are the only files that include unbound.h; this is the only place
 * where libunbound's result flags are mapped to our statuses.
 */
#include "dns.h"
#include "clock.h"
#include "metrics_now.h"
#include "config.h"
#include "dns_int.h"
#include "nametab.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <unbound.h>

#include "policy.h"

/* One query in flight. */
struct query {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool done, abandoned;
    int ub_err;
    struct ub_result *result;
};

static void
query_free(struct query *q)
{
    if (q->result != NULL)
        ub_resolve_free(q->result);
    pthread_mutex_destroy(&q->mu);
    pthread_cond_destroy(&q->cv);
    free(q);
}

static void
on_result(void *arg, int ub_err, struct ub_result *result)
{
    struct query *q = arg;
    bool abandoned;

    pthread_mutex_lock(&q->mu);
    abandoned = q->abandoned;
    q->ub_err = ub_err;
    q->result = result;
    q->done = true;
    pthread_cond_signal(&q->cv);
    pthread_mutex_unlock(&q->mu);
    /* The caller gave up and its cancel failed: nobody else will free it. */
    if (abandoned)
        query_free(q);
}

/*
 * The owner name of the first record of a trust anchor file ("." for the
 * root's, "test." for the test world's): the zone whose DNSKEY set every
 * validation starts from.
 */
static void
read_anchor_owner(const char *path, char *out, size_t outsz)
{
    FILE *f = fopen(path, "r");
    char line[1024];

    out[0] = '\0';
    if (f == NULL)
        return;
    while (fgets(line, sizeof(line), f) != NULL) {
        size_t n = strspn(line, " \t");
        size_t len = strcspn(line + n, " \t\r\n");

        if (len == 0 || line[n] == ';' || line[n] == '#' || line[n] == '$')
            continue;
        if (len < outsz) {
            memcpy(out, line + n, len);
            out[len] = '\0';
        }
        break;
    }
    fclose(f);
}

/* "127.0.0.53, 10.0.0.1" from a resolv.conf, for messages, and the first
 * DNS_MAX_SERVERS addresses one by one, for the health check. */
static void
read_nameservers(struct dns *d, const char *path, char *out, size_t outsz)
{
    FILE *f = fopen(path, "r");
    char line[512];
    size_t used = 0;

    out[0] = '\0';
    if (f == NULL)
        return;
    while (fgets(line, sizeof(line), f) != NULL) {
        char addr[128];

        if (sscanf(line, " nameserver %127s", addr) != 1)
            continue;
        if (d->n_servers < DNS_MAX_SERVERS && strlen(addr) < sizeof(d->servers[0]))
            snprintf(d->servers[d->n_servers++], sizeof(d->servers[0]), "%s", addr);
        int w = snprintf(out + used, outsz - used, "%s%s", used ? ", " : "", addr);
        if (w < 0 || (size_t)w >= outsz - used)
            break;
        used += (size_t)w;
    }
    fclose(f);
}

static char *
dup_opt(const char *s, bool *failed)
{
    char *c;

    if (s == NULL)
        return NULL;
    if ((c = strdup(s)) == NULL)
        *failed = true;
    return c;
}

int
dns_open(const struct dns_options *o, struct dns **out, struct mts_err *err)
{
    struct dns *d = calloc(1, sizeof(*d));
    bool failed = false;

    *out = NULL;
    if (d == NULL) {
        mts_err_set(err, "out of memory");
        return -1;
    }
    pthread_mutex_init(&d->mu, NULL);
    d->timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : 5000;
    d->resolv_conf = dup_opt(o->resolv_conf, &failed);
    d->trust_anchor = dup_opt(o->trust_anchor, &failed);
    d->unbound_conf = dup_opt(o->unbound_conf, &failed);
    if (failed) {
        mts_err_set(err, "out of memory");
        goto fail;
    }
    if ((d->cur = ubx_new(d, err)) == NULL)
        goto fail;
    d->cur->refs = 1;
    if (d->resolv_conf != NULL && d->resolv_conf[0] != '\0' &&
        strcmp(d->resolv_conf, "none") != 0)
        read_nameservers(d, d->resolv_conf, d->resolvers, sizeof(d->resolvers));
    if (d->trust_anchor != NULL && d->trust_anchor[0] != '\0')
        read_anchor_owner(d->trust_anchor, d->anchor, sizeof(d->anchor));
    *out = d;
    return 0;
fail:
    dns_close(d);
    return -1;
}

void
dns_close(struct dns *d)
{
    if (d == NULL)
        return;
    /* Every query is done by now (the callers are gone), so the current
     * context is the only one left. */
    ubx_free(d->cur);
    free(d->resolv_conf);
    free(d->trust_anchor);
    free(d->unbound_conf);
    pthread_mutex_destroy(&d->mu);
    free(d);
}

void
dns_answer_free(struct dns_answer *a)
{
    for (size_t i = 0; i < a->n; i++)
        free(a->rr[i].text);
    a->n = 0;
}

enum dns_path
dns_check_dnssec_path(struct dns *d, int timeout_ms, char *why, size_t whysz)
{
    struct dns_answer a;
    struct mts_err e;
    struct timespec deadline;
    char name[256];
    size_t l;

    why[0] = '\0';
    if (d->anchor[0] == '\0')
        return DNS_PATH_OK;	/* no DNSSEC asked for: nothing to strip */
    /* dns_query takes names without the trailing dot; the root stays ".". */
    snprintf(name, sizeof(name), "%s", d->anchor);
    l = strlen(name);
    if (l > 1 && name[l - 1] == '.')
        name[l - 1] = '\0';
    memset(&a, 0, sizeof(a));
    deadline = clock_deadline_after(timeout_ms > 0 ? timeout_ms : d->timeout_ms);
    if (dns_query(d, name, DNS_DNSKEY, &deadline, &a, &e) != 0)
        return DNS_PATH_UNKNOWN;
    dns_answer_free(&a);
    if (a.status == DNS_OK && a.sec == DNS_SEC_SECURE)
        return DNS_PATH_OK;
    if (a.status != DNS_BOGUS) {
        snprintf(why, whysz, "the DNSSEC path could not be checked: %s", e.msg);
        return DNS_PATH_UNKNOWN;
    }
    if (d->resolvers[0] != '\0')
        snprintf(why, whysz,
                 "the resolver (%s) gives no usable DNSSEC data for the trust anchor %s "
                 "(%s): it most likely strips DNSSEC, so every lookup will be unknown. "
                 "Set resolv_conf = none to resolve from the root, or use a resolver "
                 "that passes DNSSEC (a validating one, such as unbound)",
                 d->resolvers, d->anchor, e.msg);
    else
        snprintf(why, whysz,
                 "DNSSEC validation fails at the trust anchor %s itself (%s): the "
                 "trust anchor file is outdated, or the network alters DNS answers, so "
                 "every lookup will be unknown", d->anchor, e.msg);
    return DNS_PATH_STRIPPED;
}

bool
dns_status_is_answer(enum dns_status s)
{
    return s == DNS_OK || s == DNS_NXDOMAIN || s == DNS_NODATA;
}

static const struct nametab status_names[] = {
    {"ok", DNS_OK},           {"nxdomain", DNS_NXDOMAIN}, {"nodata", DNS_NODATA},
    {"servfail", DNS_SERVFAIL}, {"timeout", DNS_TIMEOUT}, {"bogus", DNS_BOGUS},
    {"error", DNS_ERROR},     {NULL, -1},
};

static const struct nametab sec_names[] = {
    {"insecure", DNS_SEC_INSECURE}, {"secure", DNS_SEC_SECURE}, {"bogus", DNS_SEC_BOGUS},
    {NULL, -1},
};

const char *
dns_status_name(enum dns_status s)
{
    return (unsigned)s <= DNS_ERROR ? nametab_name(status_names, (int)s) : "invalid";
}

const char *
dns_sec_name(enum dns_sec s)
{
    /* Anything not proven secure (or bogus) is insecure. */
    return nametab_name(sec_names, (unsigned)s <= DNS_SEC_BOGUS ? (int)s : DNS_SEC_INSECURE);
}

static struct query *
query_new(void)
{
    struct query *q = calloc(1, sizeof(*q));

    if (q == NULL)
        return NULL;
    pthread_mutex_init(&q->mu, NULL);
    clock_cond_init(&q->cv);
    return q;
}

/*
 * Waits for q until the deadline. Returns true when it finished; false when
 * the deadline passed, in which case q now belongs to someone else (it was
 * freed here or will be by on_result) and must not be touched.
 */
static bool
query_wait(struct ubx *x, struct query *q, int id, const struct timespec *deadline)
{
    bool done;

    pthread_mutex_lock(&q->mu);
    while (!q->done) {
        if (pthread_cond_timedwait(&q->cv, &q->mu, deadline) == ETIMEDOUT)
            break;
    }
    done = q->done;
    if (!done)
        q->abandoned = true;
    pthread_mutex_unlock(&q->mu);
    if (!done && ub_cancel(x->ub, id) == 0)
        query_free(q);		/* cancelled: the callback will never run */
    return done;
}

/* Decodes an uncompressed wire-format name at p (at most len bytes). */
static int
wire_name(const unsigned char *p, size_t len, char *out, size_t outsz)
{
    size_t i = 0, o = 0;

    for (;;) {
        size_t l;

        if (i >= len)
            return -1;
        l = p[i++];
        if (l == 0)
            break;
        if (l > 63 || l > len - i)
            return -1;		/* compression pointers are not expected here */
        if (o + l + 2 > outsz)
            return -1;
        if (o > 0)
            out[o++] = '.';
        for (size_t k = 0; k < l; k++) {
            unsigned char c = p[i + k];
            /* Keep only host name bytes; anything else cannot be an MX name. */
            if (c <= 0x20 || c >= 0x7f || c == '.')
                return -1;
            out[o++] = (char)c;
        }
        i += l;
    }
    if (o == 0)
        out[o++] = '.';		/* the root: an MX of "." means "no mail" (RFC 7505) */
    out[o] = '\0';
    return 0;
}

static int
add_rr(struct dns_answer *a, const char *text, size_t len, uint16_t pref)
{
    char *copy;

    if (a->n == DNS_MAX_RRS)
        return 0;		/* more records than we keep: the rest are dropped */
    copy = malloc(len + 1);
    if (copy == NULL)
        return -1;
    memcpy(copy, text, len);
    copy[len] = '\0';
    a->rr[a->n].text = copy;
    a->rr[a->n].len = len;
    a->rr[a->n].pref = pref;
    a->n++;
    return 0;
}

/* Maps one libunbound result into a (adding records when there are any). */
static void
map_result(struct dns_answer *a, const char *name, enum dns_type type, int ub_err,
           struct ub_result *r, struct mts_err *err)
{
    char *buf = NULL;

    if (ub_err != 0 || r == NULL) {
        a->status = DNS_ERROR;
        mts_err_set(err, "DNS lookup of %s failed: %s", name, ub_strerror(ub_err));
        return;
    }
    if (r->bogus) {
        /* Bogus data is never used, whatever it says. */
        a->status = DNS_BOGUS;
        a->sec = DNS_SEC_BOGUS;
        mts_err_set(err, "DNSSEC validation of %s failed (bogus): %s", name,
                    r->why_bogus ? r->why_bogus : "no reason given");
        return;
    }
    a->sec = r->secure ? DNS_SEC_SECURE : DNS_SEC_INSECURE;
    a->ttl = r->ttl > 0 ? (uint32_t)r->ttl : 0;
    if (r->canonname != NULL) {
        size_t l = strlen(r->canonname);
        if (l > 0 && r->canonname[l - 1] == '.')
            l--;
        if (l < sizeof(a->canonical)) {
            memcpy(a->canonical, r->canonname, l);
            a->canonical[l] = '\0';
        }
    }
    if (r->rcode == 2) {
        a->status = DNS_SERVFAIL;
        mts_err_set(err, "DNS lookup of %s: server failure (SERVFAIL)", name);
        return;
    }
    if (r->nxdomain || r->rcode == 3) {
        a->status = DNS_NXDOMAIN;
        mts_err_set(err, "%s does not exist (NXDOMAIN)", name);
        return;
    }
    if (r->rcode != 0) {
        a->status = DNS_ERROR;
        mts_err_set(err, "DNS lookup of %s: response code %d", name, r->rcode);
        return;
    }
    if (!r->havedata) {
        a->status = DNS_NODATA;
        mts_err_set(err, "%s has no %s record (NODATA)", name,
                    type == DNS_TXT ? "TXT" : type == DNS_MX ? "MX" :
                    type == DNS_A ? "A" : type == DNS_AAAA ? "AAAA" :
                    type == DNS_TLSA ? "TLSA" : "DNSKEY");
        return;
    }
    a->status = DNS_OK;
    buf = malloc(POLICY_TXT_MAX_BYTES + 1);
    if (buf == NULL) {
        a->status = DNS_ERROR;
        mts_err_set(err, "out of memory");
        return;
    }
    for (size_t i = 0; r->data[i] != NULL; i++) {
        const unsigned char *rd = (const unsigned char *)r->data[i];
        size_t len = (size_t)r->len[i], outlen = 0;
        int rc = 0;

        switch (type) {
        case DNS_TXT:
            /* An over-long or malformed record is kept as empty: it is then
             * simply not an STSv1 record, and the others still count. */
            if (policy_txt_from_rdata(rd, len, buf, POLICY_TXT_MAX_BYTES + 1, &outlen,
                                      NULL) != 0)
                outlen = 0;
            rc = add_rr(a, buf, outlen, 0);
            break;
        case DNS_MX:
            if (len < 3 || wire_name(rd + 2, len - 2, buf, 256) != 0)
                continue;
            rc = add_rr(a, buf, strlen(buf), (uint16_t)((rd[0] << 8) | rd[1]));
            break;
        case DNS_A:
        case DNS_AAAA:
            if ((type == DNS_A && len != 4) || (type == DNS_AAAA && len != 16))
                continue;
            if (inet_ntop(type == DNS_A ? AF_INET : AF_INET6, rd, buf, 64) == NULL)
                continue;
            rc = add_rr(a, buf, strlen(buf), 0);
            break;
        case DNS_DNSKEY:
            rc = add_rr(a, "", 0, 0);	/* only their presence matters */
            break;
        case DNS_TLSA:
            /* Bounded: r->len is the record's own length; tlsa.c parses it. */
            rc = add_rr(a, (const char *)rd, len, 0);
            break;
        }
        if (rc != 0) {
            a->status = DNS_ERROR;
            mts_err_set(err, "out of memory");
            break;
        }
    }
    free(buf);
}

static int
check_name(const char *name, struct mts_err *err)
{
    size_t l = name ? strlen(name) : 0;

    if (l == 0 || l > 253) {
        mts_err_set(err, "invalid DNS name (length %zu)", l);
        return -1;
    }
    return 0;
}

/* A prefetch's answer: only libunbound's cache wanted it. No state of ours
 * is attached, so a prefetch still pending when its context is deleted
 * leaves nothing behind. */
static void
on_prefetch(void *arg, int ub_err, struct ub_result *result)
{
    (void)arg;
    (void)ub_err;
    if (result != NULL)
        ub_resolve_free(result);
}

void
dns_prefetch(struct dns *d, const char *name, enum dns_type type)
{
    struct ubx *x;
    int id;

    if (check_name(name, NULL) != 0)
        return;
    x = ubx_get(d);
    (void)ubx_resolve(x, name, (int)type, NULL, on_prefetch, &id);
    ubx_put(d, x);
}

/* Runs n queries of name at once on x and waits for all of them until deadline. */
static void
query_once(struct ubx *x, const char *name, const enum dns_type *types, size_t n,
           const struct timespec *deadline, int timeout_ms, struct dns_answer *ans,
           struct mts_err *errs)
{
    struct query *q[2] = {NULL, NULL};
    int ids[2];

    for (size_t i = 0; i < n; i++) {
        int r;

        memset(&ans[i], 0, sizeof(ans[i]));
        mts_err_clear(&errs[i]);
        q[i] = query_new();
        if (q[i] == NULL) {
            ans[i].status = DNS_ERROR;
            mts_err_set(&errs[i], "out of memory");
            continue;
        }
        r = ubx_resolve(x, name, (int)types[i], q[i], on_result, &ids[i]);
        if (r != 0) {
            ans[i].status = DNS_ERROR;
            mts_err_set(&errs[i], "DNS lookup of %s: %s", name, ub_strerror(r));
            query_free(q[i]);
            q[i] = NULL;
        }
    }
    for (size_t i = 0; i < n; i++) {
        if (q[i] == NULL)
            continue;
        if (!query_wait(x, q[i], ids[i], deadline)) {
            ans[i].status = DNS_TIMEOUT;
            mts_err_set(&errs[i], "DNS lookup of %s timed out after %d ms", name, timeout_ms);
            continue;
        }
        map_result(&ans[i], name, types[i], q[i]->ub_err, q[i]->result, &errs[i]);
        query_free(q[i]);
    }
}

/* Milliseconds since t0 (monotonic), for the health check's gate. */
static int
ms_since(const struct timespec *t0)
{
    struct timespec now;
    int64_t ms;

    clock_gettime(CLOCK_MONOTONIC, &now);
    ms = ((int64_t)now.tv_sec - (int64_t)t0->tv_sec) * 1000 + (now.tv_nsec - t0->tv_nsec) / 1000000;
    return ms < 0 ? 0 : ms > INT_MAX ? INT_MAX : (int)ms;
}

/*
 * Runs n queries of name at once and waits for all of them, until the
 * earlier of the caller's deadline (NULL: none) and dns_timeout_ms from now.
 * A lookup that libunbound failed although the forwarder answers it is
 * tried once more on a fresh context (dns_health_check, dns_health.c), within the same
 * deadline.
 */
static int
query_many(struct dns *d, const char *name, const enum dns_type *types, size_t n,
           const struct timespec *caller, struct dns_answer *ans, struct mts_err *errs)
{
    struct timespec deadline = clock_deadline_after(d->timeout_ms);
    int timeout_ms = d->timeout_ms;
    struct ubx *x = ubx_get(d);
    struct timespec started;
    size_t i;

    if (caller != NULL && clock_earlier(caller, &deadline) == caller) {
        deadline = *caller;
        timeout_ms = clock_ms_until(caller);
    }
    clock_gettime(CLOCK_MONOTONIC, &started);
    query_once(x, name, types, n, &deadline, timeout_ms, ans, errs);
    for (i = 0; i < n; i++)
        if (ans[i].status == DNS_SERVFAIL || ans[i].status == DNS_TIMEOUT)
            break;
    /* A timeout has used up its deadline; a caller without one (a worker)
     * still gets the check, for the next lookups' sake. */
    if (i < n && dns_health_check(d, x, name, types[i], ans[i].status, ms_since(&started),
                              ans[i].status == DNS_TIMEOUT && caller == NULL ? NULL : &deadline) &&
        clock_ms_until(&deadline) > 0) {
        ubx_put(d, x);
        x = ubx_get(d);
        for (size_t k = 0; k < n; k++)
            dns_answer_free(&ans[k]);
        query_once(x, name, types, n, &deadline, timeout_ms, ans, errs);
    }
    ubx_put(d, x);
    /* The resolver's state for the metrics: answered, or not (metrics_now.h). */
    for (i = 0; i < n; i++)
        if (ans[i].status == DNS_SERVFAIL || ans[i].status == DNS_TIMEOUT ||
            ans[i].status == DNS_ERROR)
            break;
    metrics_now_resolver(i == n);
    return 0;
}

int
dns_query(struct dns *d, const char *name, enum dns_type type, const struct timespec *deadline,
          struct dns_answer *out, struct mts_err *err)
{
    struct mts_err e;

    memset(out, 0, sizeof(*out));
    mts_err_clear(&e);
    if (check_name(name, err) != 0)
        return -1;
    query_many(d, name, &type, 1, deadline, out, &e);
    if (err != NULL)
        *err = e;
    return 0;
}

/* Orders statuses for combining A and AAAA: the more useful wins. */
static int
status_rank(enum dns_status s)
{
    switch (s) {
    case DNS_OK:
        return 0;
    case DNS_BOGUS:
        return 1;
    case DNS_SERVFAIL:
    case DNS_TIMEOUT:
    case DNS_ERROR:
        return 2;
    case DNS_NODATA:
        return 3;
    case DNS_NXDOMAIN:
        return 4;
    }
    return 5;
}

int
dns_addresses(struct dns *d, const char *name, const struct timespec *deadline,
              struct dns_answer *out, struct mts_err *err)
{
    static const enum dns_type types[2] = {DNS_A, DNS_AAAA};
    struct dns_answer ans[2];
    struct mts_err errs[2];
    size_t best;

    memset(out, 0, sizeof(*out));
    if (check_name(name, err) != 0)
        return -1;
    mts_err_clear(&errs[0]);
    mts_err_clear(&errs[1]);
    query_many(d, name, types, 2, deadline, ans, errs);
    best = status_rank(ans[1].status) < status_rank(ans[0].status) ? 1 : 0;
    out->status = ans[best].status;
    out->sec = ans[best].sec;
    memcpy(out->canonical, ans[best].canonical, sizeof(out->canonical));
    if (out->status == DNS_OK) {
        /* Addresses of both families, A first; both moved, not copied. */
        for (size_t k = 0; k < 2; k++) {
            for (size_t i = 0; i < ans[k].n && out->n < DNS_MAX_RRS; i++) {
                out->rr[out->n++] = ans[k].rr[i];
                ans[k].rr[i].text = NULL;
            }
            if (ans[k].status == DNS_OK && ans[k].sec != DNS_SEC_SECURE)
                out->sec = DNS_SEC_INSECURE;
        }
    } else if (err != NULL) {
        *err = errs[best];
    }
    dns_answer_free(&ans[0]);
    dns_answer_free(&ans[1]);
    return 0;
}

void
dns_options_from(const struct config *cfg, struct dns_options *out)
{
    out->resolv_conf = cfg->resolv_conf;
    out->trust_anchor = cfg->trust_anchor;
    out->unbound_conf = cfg->unbound_conf;
    out->timeout_ms = (int)cfg->dns_timeout_ms;
}
