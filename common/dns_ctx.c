/*
 * dns_ctx - the resolver's libunbound contexts: building one (settings,
 * forwarders, trust anchor, delivery thread), handing out the current one
 * to queries, and freeing a replaced one after its last query. See
 * dns_int.h; dns.c runs the queries, dns_health.c decides on replacing.
 */
#include "dns_int.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/*
 * libunbound keeps a few process-wide locks: a context sets them up when it
 * is finalised (its first query) and tears them down when it is deleted,
 * whatever other contexts still live. There are several here (discover's,
 * the MX probes', a renewed one, the old ones of a reload), so creation,
 * first query and deletion take this one lock: none of them overlaps.
 */
static pthread_mutex_t ub_global_mu = PTHREAD_MUTEX_INITIALIZER;

int
ubx_resolve(struct ubx *x, const char *name, int type, void *arg, ub_callback_type cb, int *id)
{
    int r;

    if (__atomic_load_n(&x->finalized, __ATOMIC_ACQUIRE))
        return ub_resolve_async(x->ub, name, type, 1, arg, cb, id);
    pthread_mutex_lock(&ub_global_mu);
    r = ub_resolve_async(x->ub, name, type, 1, arg, cb, id);
    __atomic_store_n(&x->finalized, true, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&ub_global_mu);
    return r;
}

static void *
delivery_thread(void *arg)
{
    struct ubx *d = arg;
    struct pollfd pfd[2];

    pfd[0].fd = ub_fd(d->ub);
    pfd[0].events = POLLIN;
    pfd[1].fd = d->stop_pipe[0];
    pfd[1].events = POLLIN;
    for (;;) {
        int r = poll(pfd, 2, 1000);

        if (r < 0 && errno != EINTR)
            break;
        if (pfd[1].revents != 0)
            break;
        if (r > 0 && (pfd[0].revents & POLLIN))
            (void)ub_process(d->ub);
    }
    return NULL;
}

void
ubx_free(struct ubx *x)
{
    if (x == NULL)
        return;
    if (x->thread_started) {
        /* The thread stops only when this byte arrives: retry a write a
         * signal cut short (a fresh pipe has room for one byte). */
        ssize_t w;

        do
            w = write(x->stop_pipe[1], "x", 1);
        while (w < 0 && errno == EINTR);
        pthread_join(x->thread, NULL);
    }
    if (x->stop_pipe[0] >= 0)
        close(x->stop_pipe[0]);
    if (x->stop_pipe[1] >= 0)
        close(x->stop_pipe[1]);
    if (x->ub != NULL) {
        /* Hand out results that arrived meanwhile: their queries (given up
         * by their callers) are freed by on_result, not leaked. */
        if (ub_poll(x->ub))
            (void)ub_process(x->ub);
        pthread_mutex_lock(&ub_global_mu);
        ub_ctx_delete(x->ub);
        pthread_mutex_unlock(&ub_global_mu);
    }
    free(x);
}

/*
 * Settings for a forwarder. libunbound backs a server off when queries to
 * it time out; for a forwarder that drops only some names (a broken
 * middlebox; an attacker's names) that is wrong, since every other name
 * still gets answers. A low round-trip ceiling makes a backed-off
 * forwarder fail lookups at once (SERVFAIL), not after the caller's whole
 * deadline: health_check can then see it, and a retry on a fresh context
 * still fits in the deadline. keep-probing and a short host TTL bound the
 * state in any one context. The unbound_conf file, read after, can override
 * all three.
 */
static void
ubx_forwarder_settings(struct ub_ctx *ub, int timeout_ms)
{
    char rtt[32];
    int max_rtt = timeout_ms / 2;

    if (max_rtt < 1000)
        max_rtt = 1000;
    if (max_rtt > 12000)
        max_rtt = 12000;
    snprintf(rtt, sizeof(rtt), "%d", max_rtt);
    (void)ub_ctx_set_option(ub, "infra-cache-max-rtt:", rtt);
    (void)ub_ctx_set_option(ub, "infra-keep-probing:", "yes");
    (void)ub_ctx_set_option(ub, "infra-host-ttl:", "60");
}

struct ubx *
ubx_new(const struct dns *d, struct mts_err *err)
{
    struct ubx *x = calloc(1, sizeof(*x));
    bool forward = d->resolv_conf != NULL && d->resolv_conf[0] != '\0' &&
                   strcmp(d->resolv_conf, "none") != 0;
    int r;

    if (x == NULL) {
        mts_err_set(err, "out of memory");
        return NULL;
    }
    x->stop_pipe[0] = x->stop_pipe[1] = -1;
    pthread_mutex_lock(&ub_global_mu);
    x->ub = ub_ctx_create();
    pthread_mutex_unlock(&ub_global_mu);
    if (x->ub == NULL) {
        mts_err_set(err, "cannot create the DNS resolver context");
        goto fail;
    }
    if ((r = ub_ctx_async(x->ub, 1)) != 0) {
        mts_err_set(err, "DNS resolver: cannot use threads: %s", ub_strerror(r));
        goto fail;
    }
    if (forward)
        ubx_forwarder_settings(x->ub, d->timeout_ms);
    if (d->unbound_conf != NULL && d->unbound_conf[0] != '\0' &&
        (r = ub_ctx_config(x->ub, d->unbound_conf)) != 0) {
        mts_err_set(err, "DNS resolver: cannot use settings file %s: %s", d->unbound_conf,
                    r == UB_READFILE ? strerror(errno) : ub_strerror(r));
        goto fail;
    }
    if (forward) {
        /* Forwarders on loopback (a local validating resolver) are normal. */
        (void)ub_ctx_set_option(x->ub, "do-not-query-localhost:", "no");
        if ((r = ub_ctx_resolvconf(x->ub, d->resolv_conf)) != 0) {
            mts_err_set(err, "DNS resolver: cannot read %s: %s", d->resolv_conf,
                        r == UB_READFILE ? strerror(errno) : ub_strerror(r));
            goto fail;
        }
    }
    if (d->trust_anchor != NULL && d->trust_anchor[0] != '\0') {
        if (access(d->trust_anchor, R_OK) != 0) {
            mts_err_set(err, "DNSSEC trust anchor %s: %s (Debian: apt-get install "
                        "dns-root-data)", d->trust_anchor, strerror(errno));
            goto fail;
        }
        if ((r = ub_ctx_add_ta_file(x->ub, d->trust_anchor)) != 0) {
            mts_err_set(err, "DNSSEC trust anchor %s: %s", d->trust_anchor, ub_strerror(r));
            goto fail;
        }
    }
    if (pipe(x->stop_pipe) != 0) {
        mts_err_set(err, "DNS resolver: pipe: %s", strerror(errno));
        goto fail;
    }
    if (pthread_create(&x->thread, NULL, delivery_thread, x) != 0) {
        mts_err_set(err, "DNS resolver: cannot start its thread");
        goto fail;
    }
    x->thread_started = true;
    return x;
fail:
    ubx_free(x);
    return NULL;
}

/* The current context, with a reference for one query. */
struct ubx *
ubx_get(struct dns *d)
{
    struct ubx *x;

    pthread_mutex_lock(&d->mu);
    x = d->cur;
    x->refs++;
    pthread_mutex_unlock(&d->mu);
    return x;
}

void
ubx_put(struct dns *d, struct ubx *x)
{
    bool last;

    pthread_mutex_lock(&d->mu);
    last = --x->refs == 0;	/* only a replaced context can reach 0 */
    pthread_mutex_unlock(&d->mu);
    if (last)
        ubx_free(x);
}
