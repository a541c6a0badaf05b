/*
 * mapserver - the policy-map listener; see mapserver.h.
 *
 * Threads: each loop thread owns its connections (loop 0 also the
 * listener, and gives each new connection to the loop with the fewest);
 * the answer threads (mappool.c) see only jobs (a copy of one request,
 * and its reply). Jobs come back through their loop's `done`,
 * connections to their loop through its `incoming`, both under `mu`; a
 * byte on the loop's wake pipe tells it.
 */
#define _GNU_SOURCE 1 /* accept4, pipe2 */
#include "mapconn.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "log.h"
#include "metrics.h"
#include "netacl.h"

static int64_t
now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int
mapserver_open(const char *spec, uid_t uid, gid_t gid, struct mapserver **out,
               struct mts_err *err)
{
    struct mapserver *ms = calloc(1, sizeof(*ms));
    int rc;

    *out = NULL;
    if (ms == NULL) {
        mts_err_set(err, "out of memory");
        return -1;
    }
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);

    ms->ls.fd = -1;
    ms->nloops = cpus < 1 ? 1 : cpus > MAX_LOOPS ? MAX_LOOPS : (int)cpus;
    for (int i = 0; i < MAX_LOOPS; i++) {
        ms->loops[i].ms = ms;
        ms->loops[i].idx = i;
        ms->loops[i].wake[0] = ms->loops[i].wake[1] = ms->loops[i].ep = -1;
        ms->loops[i].oldest_idle = INT64_MAX;
    }
    pthread_mutex_init(&ms->mu, NULL);
    rc = mapsock_open(spec, uid, gid, &ms->ls, err);
    for (int i = 0; rc == 0 && i < ms->nloops; i++) {
        struct maploop *lp = &ms->loops[i];
        struct epoll_event w = {.events = EPOLLIN, .data.u32 = EV_WAKE};
        struct epoll_event l = {.events = EPOLLIN, .data.u32 = EV_LISTEN};

        if (pipe2(lp->wake, O_CLOEXEC | O_NONBLOCK) != 0) {
            mts_err_set(err, "pipe: %s", strerror(errno));
            rc = -1;
        } else if ((lp->ep = epoll_create1(EPOLL_CLOEXEC)) < 0 ||
                   epoll_ctl(lp->ep, EPOLL_CTL_ADD, lp->wake[0], &w) != 0 ||
                   (i == 0 && epoll_ctl(lp->ep, EPOLL_CTL_ADD, ms->ls.fd, &l) != 0)) {
            mts_err_set(err, "epoll: %s", strerror(errno));
            rc = -1;
        }
    }
    if (rc != 0) {
        mapserver_close(ms);
        return -1;
    }
    *out = ms;
    return 0;
}

/* ------------------------------------------------------------ answers */

static void
wake_loop(struct maploop *lp)
{
    char c = 'x';

    /* Full pipe: the loop has wake-ups pending anyway. */
    if (write(lp->wake[1], &c, 1) < 0 && errno != EAGAIN)
        log_msg(LOG_WARNING, "map: cannot wake the event loop: %s", strerror(errno));
}

/* On an answer thread: the answer goes back to its loop. */
static void
job_done(struct mapjob *j, void *arg)
{
    struct mapserver *ms = arg;

    pthread_mutex_lock(&ms->mu);
    j->next = ms->loops[j->loop].done;
    ms->loops[j->loop].done = j;
    wake_loop(&ms->loops[j->loop]);
    pthread_mutex_unlock(&ms->mu);
}

/*
 * On loop 0: each new connection goes to the loop that has the fewest
 * (the first of them on a tie: one client is served by loop 0 with no
 * hand-off at all).
 */
static void
accept_all(struct maploop *lp)
{
    struct mapserver *ms = lp->ms;

    for (;;) {
        int fd = accept4(ms->ls.fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC), to = 0;
        bool evict = false;
        struct maphandoff *h;

        if (fd < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR &&
                errno != ECONNABORTED)
                log_msg(LOG_WARNING, "map: accept: %s", strerror(errno));
            return;
        }
        if (__atomic_load_n(&ms->open, __ATOMIC_RELAXED) >= ms->lim.max_clients) {
            /* Full: idle connections give way to a new client (the loop
             * with the one idle the longest closes it), so that clients
             * holding connections open and silent never lock Postfix's
             * smtp processes out. Refused only when none is idle. */
            int64_t t = now_ms(), oldest = INT64_MAX;

            for (int i = 0; i < ms->nloops; i++) {
                int64_t o = __atomic_load_n(&ms->loops[i].oldest_idle, __ATOMIC_RELAXED);

                if (o < oldest) {
                    oldest = o;
                    to = i;
                }
            }
            evict = oldest != INT64_MAX;
            if (!evict) {
                close(fd);
                metrics_map_refused();
                if (t - ms->full_logged >= 10000) {
                    log_msg(LOG_WARNING, "map: %d connections open (map_max_clients), none "
                            "idle; refusing new ones",
                            __atomic_load_n(&ms->open, __ATOMIC_RELAXED));
                    ms->full_logged = t;
                }
                continue;
            }
        } else {
            for (int i = 1; i < ms->nloops; i++) {
                if (__atomic_load_n(&ms->loops[i].open, __ATOMIC_RELAXED) <
                    __atomic_load_n(&ms->loops[to].open, __ATOMIC_RELAXED))
                    to = i;
            }
        }
        __atomic_add_fetch(&ms->open, 1, __ATOMIC_RELAXED);
        __atomic_add_fetch(&ms->loops[to].open, 1, __ATOMIC_RELAXED);
        if (to == 0) {
            mapconn_add(lp, fd, ++ms->next_id, evict);
            continue;
        }
        if ((h = malloc(sizeof(*h))) == NULL) {
            close(fd);
            __atomic_sub_fetch(&ms->open, 1, __ATOMIC_RELAXED);
            __atomic_sub_fetch(&ms->loops[to].open, 1, __ATOMIC_RELAXED);
            continue;
        }
        h->fd = fd;
        h->evict = evict;
        h->id = ++ms->next_id;
        pthread_mutex_lock(&ms->mu);
        h->next = ms->loops[to].incoming;
        ms->loops[to].incoming = h;
        pthread_mutex_unlock(&ms->mu);
        wake_loop(&ms->loops[to]);
    }
}

/* ------------------------------------------------------------ the loop */

/*
 * epoll, not poll: each pass costs what is ready, not every open
 * connection; a connection's registration changes only with its state.
 */
static void *
loop_main(void *arg)
{
    struct maploop *lp = arg;
    struct mapserver *ms = lp->ms;
    struct epoll_event evs[EV_BATCH];

    for (;;) {
        int n = epoll_wait(lp->ep, evs, EV_BATCH, 1000);
        bool woken = false, incoming = false;

        if (n < 0 && errno != EINTR) {
            log_msg(LOG_ERR, "map: epoll_wait: %s", strerror(errno));
            break;
        }
        lp->now = now_ms();
        for (int i = 0; i < n; i++) {
            woken |= evs[i].data.u32 == EV_WAKE;
            incoming |= evs[i].data.u32 == EV_LISTEN;
        }
        /* Answers, connections from loop 0 and stop come with a byte on
         * the wake pipe (wake_loop). */
        if (woken) {
            struct mapjob *done;
            struct maphandoff *in;
            char drain[256];

            while (read(lp->wake[0], drain, sizeof(drain)) > 0)
                ;
            pthread_mutex_lock(&ms->mu);
            if (ms->stop) {
                pthread_mutex_unlock(&ms->mu);
                break;
            }
            done = lp->done;
            lp->done = NULL;
            in = lp->incoming;
            lp->incoming = NULL;
            pthread_mutex_unlock(&ms->mu);
            while (done != NULL) {
                struct mapjob *next = done->next;
                int s = done->slot;

                mapconn_deliver(lp, done);
                mapconn_watch(lp, s);
                mapjob_free(done);
                done = next;
            }
            while (in != NULL) {
                struct maphandoff *next = in->next;

                mapconn_add(lp, in->fd, in->id, in->evict);
                free(in);
                in = next;
            }
        }
        for (int i = 0; i < n; i++) {
            uint32_t s = evs[i].data.u32, e = evs[i].events;
            struct mapconn *c;

            if (s == EV_WAKE || s == EV_LISTEN)
                continue;
            c = &lp->conns[s];
            if (c->fd < 0)
                continue;	/* closed earlier in this pass */
            if (c->st == C_READ && (e & (EPOLLIN | EPOLLHUP | EPOLLERR)))
                mapconn_read(lp, (int)s);
            else if (c->st == C_WRITE && (e & (EPOLLOUT | EPOLLHUP | EPOLLERR)))
                mapconn_write(lp, (int)s);
            else if (c->st == C_BUSY && (e & (EPOLLHUP | EPOLLERR)))
                mapconn_close(lp, (int)s);
            mapconn_watch(lp, (int)s);
        }
        if (incoming)
            accept_all(lp);
        /* Timeouts are seconds: one look a second is enough. */
        if (lp->now - lp->swept >= 1000) {
            mapconn_sweep(lp);
            lp->swept = lp->now;
        }
    }
    return NULL;
}

int
mapserver_allow(struct mapserver *ms, const struct config_list *allow, struct mts_err *err)
{
    return netacl_restrict(ms->ls.fd, allow, "the policy map", "map_allow_clients", err);
}

int
mapserver_start(struct mapserver *ms, const struct mapserver_limits *limits,
                mapserver_answer_fn fn, mapserver_at_once_fn at_once, void *arg,
                struct mts_err *err)
{
    struct mappool_params pp;
    int n;

    ms->lim = *limits;
    ms->fn = fn;
    ms->at_once = at_once;
    ms->arg = arg;
    n = ms->lim.max_clients;
    for (int i = 0; i < ms->nloops; i++) {
        struct maploop *lp = &ms->loops[i];

        lp->conns = calloc((size_t)n, sizeof(*lp->conns));
        lp->reply = at_once != NULL ? malloc(REPLY_SIZE) : NULL;
        lp->obuf = malloc(OBUF_SIZE);
        if (lp->conns == NULL || lp->obuf == NULL || (at_once != NULL && lp->reply == NULL)) {
            mts_err_set(err, "out of memory");
            return -1;
        }
        for (int s = 0; s < n; s++)
            lp->conns[s].fd = -1;
    }
    pp = (struct mappool_params){
        .workers = ms->lim.workers,
        .max_threads = ms->lim.max_clients + ms->lim.workers,
        .answer = fn, .answer_arg = arg, .done = job_done, .done_arg = ms};
    if (mappool_start(&pp, &ms->pool, err) != 0)
        return -1;
    for (int i = 0; i < ms->nloops; i++) {
        if (pthread_create(&ms->loops[i].thread, NULL, loop_main, &ms->loops[i]) != 0) {
            mts_err_set(err, "cannot start the map's event loop");
            return -1;
        }
        ms->loops[i].started = true;
    }
    return 0;
}

static void
loop_free(struct maploop *lp, int max_clients)
{
    for (int s = 0; lp->conns != NULL && s < max_clients; s++) {
        if (lp->conns[s].fd >= 0)
            close(lp->conns[s].fd);
        free(lp->conns[s].in);
        free(lp->conns[s].out);
    }
    while (lp->done != NULL) {
        struct mapjob *j = lp->done;
        lp->done = j->next;
        mapjob_free(j);
    }
    while (lp->incoming != NULL) {
        struct maphandoff *h = lp->incoming;
        lp->incoming = h->next;
        close(h->fd);
        free(h);
    }
    for (int i = 0; i < 2; i++)
        if (lp->wake[i] >= 0)
            close(lp->wake[i]);
    free(lp->conns);
    if (lp->ep >= 0)
        close(lp->ep);
    free(lp->reply);
    free(lp->obuf);
}

void
mapserver_close(struct mapserver *ms)
{
    if (ms == NULL)
        return;
    pthread_mutex_lock(&ms->mu);
    ms->stop = true;
    pthread_mutex_unlock(&ms->mu);
    for (int i = 0; i < ms->nloops; i++) {
        if (ms->loops[i].started) {
            wake_loop(&ms->loops[i]);
            pthread_join(ms->loops[i].thread, NULL);
        }
    }
    mapsock_close(&ms->ls);
    /* Answer threads finish their job (bounded by its deadline) and go;
     * the answers they give back wait on the loops' lists, freed below. */
    mappool_stop(ms->pool);
    for (int i = 0; i < ms->nloops; i++)
        loop_free(&ms->loops[i], ms->lim.max_clients);
    pthread_mutex_destroy(&ms->mu);
    free(ms);
}
