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
#include "mappool.h"
#include "mapserver.h"
#include "mapsock.h"

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

#define INBUF_SIZE (SOCKMAP_MAX_REQUEST + SOCKMAP_FRAMING)
#define REPLY_SIZE MAPPOOL_REPLY_SIZE
/* Answers for one connection gathered into one write: up to OBUF_BATCH
 * bytes, then one more reply of any size. */
#define OBUF_BATCH 16384
#define OBUF_SIZE (OBUF_BATCH + REPLY_SIZE + SOCKMAP_FRAMING)
/* epoll data of the two descriptors that are not connections (slots are below) */
#define EV_WAKE UINT32_MAX
#define EV_LISTEN (UINT32_MAX - 1)
#define EV_BATCH 64
/* Loop threads: one a CPU, at most this many. */
#define MAX_LOOPS 4

enum conn_state { C_READ, C_BUSY, C_WRITE };

struct conn {
    int fd;			/* -1: the slot is free */
    unsigned long id;		/* for logs, and to match a job to its connection */
    enum conn_state st;
    bool gone;			/* closed while an answer was pending */
    char *in;
    size_t in_len;
    char *out;
    size_t out_len, out_off;
    int64_t since;		/* ms: idle since, request begun, or write begun */
    uint32_t ev;		/* what epoll watches for, as last set */
};

/* A new connection on its way from loop 0 to the loop that serves it. */
struct handoff {
    struct handoff *next;
    int fd;
    unsigned long id;
};

struct mapserver;

/*
 * One event loop thread and the connections it serves. Several (one a
 * CPU) so that many connections in flight are answered on every CPU:
 * with one, its send(2)s, each waking a client, were the bottleneck.
 */
struct loop {
    struct mapserver *ms;
    int idx;
    int wake[2];
    char *reply;		/* answers given at once */
    char *obuf;			/* framed answers, OBUF_SIZE */
    struct conn *conns;		/* lim.max_clients slots */
    int nconns;
    int ep;			/* epoll: registered once, changed when a state changes */
    int64_t swept;		/* ms: the last sweep for timeouts */
    int64_t now;		/* ms: when this pass of the loop began (timeouts are seconds) */
    pthread_t thread;
    bool started;
    int open;			/* connections given to it and not closed (atomic) */

    /* under ms->mu */
    struct mapjob *done;
    struct handoff *incoming;
};

struct mapserver {
    struct mapsock ls;		/* the listener, loop 0's */
    struct mapserver_limits lim;
    mapserver_answer_fn fn;
    mapserver_at_once_fn at_once;
    void *arg;
    struct mappool *pool;
    struct loop loops[MAX_LOOPS];
    int nloops;
    int open;			/* connections open, all loops (atomic) */

    /* loop 0's own */
    unsigned long next_id;
    int64_t full_logged;

    /* shared, under mu */
    pthread_mutex_t mu;
    bool stop;
};

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
    }
    pthread_mutex_init(&ms->mu, NULL);
    rc = mapsock_open(spec, uid, gid, &ms->ls, err);
    for (int i = 0; rc == 0 && i < ms->nloops; i++) {
        struct loop *lp = &ms->loops[i];
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
wake_loop(struct loop *lp)
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

/* ------------------------------------------------------------ connections */

static void
conn_close(struct loop *lp, int slot)
{
    struct conn *c = &lp->conns[slot];

    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    free(c->out);
    c->out = NULL;
    c->out_len = c->out_off = c->in_len = 0;
    if (c->st == C_BUSY) {
        c->gone = true;		/* the slot is freed when the answer comes back */
        return;
    }
    free(c->in);
    c->in = NULL;
    c->id = 0;
    lp->nconns--;
    __atomic_sub_fetch(&lp->open, 1, __ATOMIC_RELAXED);
    __atomic_sub_fetch(&lp->ms->open, 1, __ATOMIC_RELAXED);
}

static void conn_input(struct loop *lp, int slot);

/* Sends what is pending; true when all of it went (the connection reads again). */
static bool
flush(struct loop *lp, int slot)
{
    struct conn *c = &lp->conns[slot];

    while (c->out_off < c->out_len) {
        ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off,
                         MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return false;
        if (n <= 0) {
            log_msg(LOG_INFO, "map: connection #%lu: write: %s", c->id,
                    n < 0 ? strerror(errno) : "nothing written");
            conn_close(lp, slot);
            return false;
        }
        c->out_off += (size_t)n;
    }
    free(c->out);
    c->out = NULL;
    c->out_len = c->out_off = 0;
    c->st = C_READ;
    c->since = lp->now;
    return true;
}

/*
 * Sends len bytes of buf now; what the socket does not take waits in c->out
 * for EPOLLOUT (C_WRITE). true when all of it went; false when it waits or
 * the connection was closed.
 */
static bool
send_now(struct loop *lp, int slot, const char *buf, size_t len)
{
    struct conn *c = &lp->conns[slot];
    size_t off = 0;

    while (off < len) {
        ssize_t n = send(c->fd, buf + off, len - off, MSG_NOSIGNAL | MSG_DONTWAIT);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        if (n <= 0) {
            log_msg(LOG_INFO, "map: connection #%lu: write: %s", c->id,
                    n < 0 ? strerror(errno) : "nothing written");
            conn_close(lp, slot);
            return false;
        }
        off += (size_t)n;
    }
    c->since = lp->now;
    if (off == len)
        return true;
    if ((c->out = malloc(len - off)) == NULL) {
        log_msg(LOG_ERR, "map: connection #%lu: out of memory; closing it", c->id);
        conn_close(lp, slot);
        return false;
    }
    memcpy(c->out, buf + off, len - off);
    c->out_len = len - off;
    c->out_off = 0;
    c->st = C_WRITE;
    return false;
}

static void
conn_write(struct loop *lp, int slot)
{
    if (flush(lp, slot))
        conn_input(lp, slot);	/* a pipelined request may be waiting */
}

/* Drops the first n bytes of the connection's input. */
static void
consume(struct conn *c, size_t n)
{
    if (n > 0) {
        memmove(c->in, c->in + n, c->in_len - n);
        c->in_len -= n;
    }
}

enum stop { S_PARTIAL, S_MALFORMED, S_FULL, S_THREAD };

/*
 * Takes the complete requests out of the connection's buffer. Those that
 * can be answered at once are, in order, into the loop's batch buffer,
 * which goes in one write: a client that pipelines gets its answers
 * together, not one send(2) each. Whatever stopped the batch (a malformed
 * request, one for an answer thread) is dealt with once all answers
 * before it are sent, so answers keep their order.
 */
static void
conn_input(struct loop *lp, int slot)
{
    struct mapserver *ms = lp->ms;
    struct conn *c = &lp->conns[slot];
    const char *payload = NULL;
    size_t plen = 0, used = 0;
    struct mts_err err;
    struct mapjob *j;

    for (;;) {
        size_t off = 0, olen = 0;
        enum stop stop;

        for (;;) {
            int n;

            mts_err_clear(&err);
            switch (sockmap_netstring_parse(c->in + off, c->in_len - off, SOCKMAP_MAX_REQUEST,
                                            &payload, &plen, &used, &err)) {
            case SOCKMAP_PARTIAL:
                stop = S_PARTIAL;
                break;
            case SOCKMAP_MALFORMED:
                stop = S_MALFORMED;
                break;
            case SOCKMAP_COMPLETE:
            default:
                stop = S_FULL;
                break;
            }
            if (stop != S_FULL)
                break;
            if (olen >= OBUF_BATCH)
                break;
            if (ms->at_once == NULL ||
                !ms->at_once(payload, plen, lp->reply, REPLY_SIZE, ms->arg)) {
                stop = S_THREAD;
                break;
            }
            /* Fits: olen < OBUF_BATCH and the obuf has room for one more reply. */
            n = sockmap_netstring_encode(lp->reply, strlen(lp->reply), lp->obuf + olen,
                                         OBUF_SIZE - olen);
            if (n < 0) {
                stop = S_MALFORMED;	/* cannot happen; never an answer out of order */
                mts_err_set(&err, "cannot frame an answer");
                break;
            }
            olen += (size_t)n;
            off += used;
        }
        consume(c, off);
        if (olen > 0) {
            /* What stopped the batch waits until its answers are sent. */
            if (!send_now(lp, slot, lp->obuf, olen) || stop == S_PARTIAL)
                return;		/* closed, waiting for EPOLLOUT, or for input */
            continue;
        }
        if (stop == S_PARTIAL)
            return;
        if (stop == S_MALFORMED) {
            log_msg(LOG_NOTICE, "map: connection #%lu: %s; closing it", c->id, err.msg);
            conn_close(lp, slot);
            return;
        }
        break;			/* S_THREAD: payload, plen, used at the buffer's start */
    }
    j = calloc(1, sizeof(*j));
    if (j == NULL || (j->req = malloc(plen + 1)) == NULL) {
        free(j);
        log_msg(LOG_ERR, "map: connection #%lu: out of memory; closing it", c->id);
        conn_close(lp, slot);
        return;
    }
    memcpy(j->req, payload, plen);
    j->req[plen] = '\0';
    j->len = plen;
    j->loop = lp->idx;
    j->slot = slot;
    j->id = c->id;
    consume(c, used);
    c->st = C_BUSY;
    if (mappool_submit(ms->pool, j) != 0)
        log_msg(LOG_ERR, "map: cannot start an answer thread");
}

static void
conn_read(struct loop *lp, int slot)
{
    struct conn *c = &lp->conns[slot];
    ssize_t n = recv(c->fd, c->in + c->in_len, INBUF_SIZE - c->in_len, MSG_DONTWAIT);

    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return;
    if (n <= 0) {
        if (c->in_len > 0)
            log_msg(LOG_INFO, "map: connection #%lu: closed by the client in the middle "
                    "of a request", c->id);
        conn_close(lp, slot);
        return;
    }
    if (c->in_len == 0)
        c->since = lp->now;	/* a request begins */
    c->in_len += (size_t)n;
    conn_input(lp, slot);
}

/* An answer is back: frame it and send it. */
static void
deliver(struct loop *lp, struct mapjob *j)
{
    struct conn *c = &lp->conns[j->slot];
    int n;

    if (c->id != j->id || c->st != C_BUSY)
        return;
    if (c->gone) {
        c->st = C_READ;
        c->gone = false;
        conn_close(lp, j->slot);
        return;
    }
    if (j->reply == NULL) {
        log_msg(LOG_ERR, "map: connection #%lu: out of memory; closing it", c->id);
        c->st = C_READ;
        conn_close(lp, j->slot);
        return;
    }
    c->st = C_READ;
    n = sockmap_netstring_encode(j->reply, strlen(j->reply), lp->obuf, OBUF_SIZE);
    if (n < 0) {
        log_msg(LOG_ERR, "map: connection #%lu: cannot frame the answer; closing it", c->id);
        conn_close(lp, j->slot);
        return;
    }
    if (send_now(lp, j->slot, lp->obuf, (size_t)n))
        conn_input(lp, j->slot);	/* a pipelined request may be waiting */
}

/*
 * Makes fd (a new connection, numbered id) one of this loop's; counted
 * in lp->open and ms->open already. Closes it when it cannot.
 */
static void
conn_add(struct loop *lp, int fd, unsigned long id)
{
    struct epoll_event ev;
    int slot;

    for (slot = 0; lp->conns[slot].fd >= 0 || lp->conns[slot].gone; slot++)
        ;
    lp->conns[slot].in = malloc(INBUF_SIZE);
    ev = (struct epoll_event){.events = EPOLLIN, .data.u32 = (uint32_t)slot};
    if (lp->conns[slot].in == NULL || epoll_ctl(lp->ep, EPOLL_CTL_ADD, fd, &ev) != 0) {
        if (lp->conns[slot].in != NULL)
            log_msg(LOG_WARNING, "map: epoll_ctl: %s", strerror(errno));
        free(lp->conns[slot].in);
        lp->conns[slot].in = NULL;
        close(fd);
        __atomic_sub_fetch(&lp->open, 1, __ATOMIC_RELAXED);
        __atomic_sub_fetch(&lp->ms->open, 1, __ATOMIC_RELAXED);
        return;
    }
    lp->conns[slot].ev = EPOLLIN;
    lp->conns[slot].fd = fd;
    lp->conns[slot].id = id;
    lp->conns[slot].st = C_READ;
    lp->conns[slot].in_len = 0;
    lp->conns[slot].since = lp->now;
    lp->nconns++;
}

/*
 * On loop 0: each new connection goes to the loop that has the fewest
 * (the first of them on a tie: one client is served by loop 0 with no
 * hand-off at all).
 */
static void
accept_all(struct loop *lp)
{
    struct mapserver *ms = lp->ms;

    for (;;) {
        int fd = accept4(ms->ls.fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC), to = 0;
        struct handoff *h;

        if (fd < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR &&
                errno != ECONNABORTED)
                log_msg(LOG_WARNING, "map: accept: %s", strerror(errno));
            return;
        }
        if (__atomic_load_n(&ms->open, __ATOMIC_RELAXED) >= ms->lim.max_clients) {
            int64_t t = now_ms();

            close(fd);
            if (t - ms->full_logged >= 10000) {
                log_msg(LOG_WARNING, "map: %d connections open (map_max_clients); "
                        "refusing new ones", __atomic_load_n(&ms->open, __ATOMIC_RELAXED));
                ms->full_logged = t;
            }
            continue;
        }
        for (int i = 1; i < ms->nloops; i++) {
            if (__atomic_load_n(&ms->loops[i].open, __ATOMIC_RELAXED) <
                __atomic_load_n(&ms->loops[to].open, __ATOMIC_RELAXED))
                to = i;
        }
        __atomic_add_fetch(&ms->open, 1, __ATOMIC_RELAXED);
        __atomic_add_fetch(&ms->loops[to].open, 1, __ATOMIC_RELAXED);
        if (to == 0) {
            conn_add(lp, fd, ++ms->next_id);
            continue;
        }
        if ((h = malloc(sizeof(*h))) == NULL) {
            close(fd);
            __atomic_sub_fetch(&ms->open, 1, __ATOMIC_RELAXED);
            __atomic_sub_fetch(&ms->loops[to].open, 1, __ATOMIC_RELAXED);
            continue;
        }
        h->fd = fd;
        h->id = ++ms->next_id;
        pthread_mutex_lock(&ms->mu);
        h->next = ms->loops[to].incoming;
        ms->loops[to].incoming = h;
        pthread_mutex_unlock(&ms->mu);
        wake_loop(&ms->loops[to]);
    }
}

static void
sweep(struct loop *lp)
{
    int64_t t = now_ms();

    for (int s = 0; s < lp->ms->lim.max_clients; s++) {
        struct conn *c = &lp->conns[s];

        if (c->fd < 0 || c->st == C_BUSY)
            continue;
        if (c->st == C_WRITE && t - c->since > MAPSERVER_WRITE_TIMEOUT_MS) {
            log_msg(LOG_NOTICE, "map: connection #%lu: the client does not read its "
                    "answer; closing it", c->id);
            conn_close(lp, s);
        } else if (c->st == C_READ && c->in_len > 0 &&
                   t - c->since > MAPSERVER_REQUEST_TIMEOUT_MS) {
            log_msg(LOG_NOTICE, "map: connection #%lu: request not completed within %d ms; "
                    "closing it", c->id, MAPSERVER_REQUEST_TIMEOUT_MS);
            conn_close(lp, s);
        } else if (c->st == C_READ && c->in_len == 0 &&
                   t - c->since > MAPSERVER_IDLE_TIMEOUT_MS) {
            conn_close(lp, s);
        }
    }
}

/* ------------------------------------------------------------ the loop */

/* Tells epoll what the connection waits for now, when that changed. */
static void
watch(struct loop *lp, int slot)
{
    struct conn *c = &lp->conns[slot];
    uint32_t want = c->st == C_READ ? EPOLLIN : c->st == C_WRITE ? EPOLLOUT : 0;
    struct epoll_event ev = {.events = want, .data.u32 = (uint32_t)slot};

    if (c->fd < 0 || want == c->ev)
        return;
    if (epoll_ctl(lp->ep, EPOLL_CTL_MOD, c->fd, &ev) != 0) {
        log_msg(LOG_ERR, "map: connection #%lu: epoll_ctl: %s; closing it", c->id,
                strerror(errno));
        conn_close(lp, slot);
        return;
    }
    c->ev = want;
}

/*
 * epoll, not poll: each pass costs what is ready, not every open
 * connection; a connection's registration changes only with its state.
 */
static void *
loop_main(void *arg)
{
    struct loop *lp = arg;
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
            struct handoff *in;
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

                deliver(lp, done);
                watch(lp, s);
                mapjob_free(done);
                done = next;
            }
            while (in != NULL) {
                struct handoff *next = in->next;

                conn_add(lp, in->fd, in->id);
                free(in);
                in = next;
            }
        }
        for (int i = 0; i < n; i++) {
            uint32_t s = evs[i].data.u32, e = evs[i].events;
            struct conn *c;

            if (s == EV_WAKE || s == EV_LISTEN)
                continue;
            c = &lp->conns[s];
            if (c->fd < 0)
                continue;	/* closed earlier in this pass */
            if (c->st == C_READ && (e & (EPOLLIN | EPOLLHUP | EPOLLERR)))
                conn_read(lp, (int)s);
            else if (c->st == C_WRITE && (e & (EPOLLOUT | EPOLLHUP | EPOLLERR)))
                conn_write(lp, (int)s);
            else if (c->st == C_BUSY && (e & (EPOLLHUP | EPOLLERR)))
                conn_close(lp, (int)s);
            watch(lp, (int)s);
        }
        if (incoming)
            accept_all(lp);
        /* Timeouts are seconds: one look a second is enough. */
        if (lp->now - lp->swept >= 1000) {
            sweep(lp);
            lp->swept = lp->now;
        }
    }
    return NULL;
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
        struct loop *lp = &ms->loops[i];

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
loop_free(struct loop *lp, int max_clients)
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
        struct handoff *h = lp->incoming;
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
