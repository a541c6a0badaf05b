/*
 * mapserver - the policy-map listener; see mapserver.h.
 *
 * Threads: the loop thread owns the listener and every connection; the
 * answer threads see only jobs (a copy of one request, and its reply).
 * Jobs go to the answer threads through `queue` and come back through
 * `done`, both under `mu`; a byte on the wake pipe tells the loop.
 */
#define _GNU_SOURCE 1 /* accept4, pipe2 */
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
#define REPLY_SIZE (SOCKMAP_MAX_REPLY + 1)
/* Answers for one connection gathered into one write: up to OBUF_BATCH
 * bytes, then one more reply of any size. */
#define OBUF_BATCH 16384
#define OBUF_SIZE (OBUF_BATCH + REPLY_SIZE + SOCKMAP_FRAMING)
#define THREAD_STACK (1024 * 1024)
/* epoll data of the two descriptors that are not connections (slots are below) */
#define EV_WAKE UINT32_MAX
#define EV_LISTEN (UINT32_MAX - 1)
#define EV_BATCH 64

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

struct job {
    struct job *next;
    int slot;
    unsigned long id;
    char *req;
    size_t len;
    char *reply;
};

struct mapserver {
    struct mapsock ls;		/* the listener */
    int wake[2];
    struct mapserver_limits lim;
    mapserver_answer_fn fn;
    mapserver_at_once_fn at_once;
    void *arg;
    char *reply;		/* the loop thread's, for answers given at once */
    char *obuf;			/* the loop thread's: framed answers, OBUF_SIZE */

    /* the loop thread's own */
    struct conn *conns;
    int nconns;
    unsigned long next_id;
    int64_t full_logged;
    int ep;			/* epoll: registered once, changed when a state changes */
    int64_t swept;		/* ms: the last sweep for timeouts */
    int64_t now;		/* ms: when this pass of the loop began (timeouts are seconds) */
    pthread_t loop;
    bool started;

    /* shared, under mu */
    pthread_mutex_t mu;
    pthread_cond_t work, gone;
    struct job *q_head, *q_tail, *done;
    int queued, threads, idle;
    bool stop;
};

static int64_t
now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
job_free(struct job *j)
{
    if (j != NULL) {
        free(j->req);
        free(j->reply);
        free(j);
    }
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
    ms->ls.fd = ms->wake[0] = ms->wake[1] = ms->ep = -1;
    pthread_mutex_init(&ms->mu, NULL);
    clock_cond_init(&ms->work);
    clock_cond_init(&ms->gone);
    rc = mapsock_open(spec, uid, gid, &ms->ls, err);
    if (rc == 0 && pipe2(ms->wake, O_CLOEXEC | O_NONBLOCK) != 0) {
        mts_err_set(err, "pipe: %s", strerror(errno));
        rc = -1;
    }
    if (rc == 0) {
        struct epoll_event w = {.events = EPOLLIN, .data.u32 = EV_WAKE};
        struct epoll_event l = {.events = EPOLLIN, .data.u32 = EV_LISTEN};

        if ((ms->ep = epoll_create1(EPOLL_CLOEXEC)) < 0 ||
            epoll_ctl(ms->ep, EPOLL_CTL_ADD, ms->wake[0], &w) != 0 ||
            epoll_ctl(ms->ep, EPOLL_CTL_ADD, ms->ls.fd, &l) != 0) {
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

/* ------------------------------------------------------------ answer threads */

static void *worker_main(void *arg);

/* Under mu: one more answer thread. */
static int
spawn_worker(struct mapserver *ms)
{
    pthread_attr_t attr;
    pthread_t t;
    int rc;

    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, THREAD_STACK);
    rc = pthread_create(&t, &attr, worker_main, ms);
    pthread_attr_destroy(&attr);
    if (rc != 0)
        return -1;
    ms->threads++;
    return 0;
}

static void
wake_loop(struct mapserver *ms)
{
    char c = 'x';

    /* Full pipe: the loop has wake-ups pending anyway. */
    if (write(ms->wake[1], &c, 1) < 0 && errno != EAGAIN)
        log_msg(LOG_WARNING, "map: cannot wake the event loop: %s", strerror(errno));
}

static void *
worker_main(void *arg)
{
    struct mapserver *ms = arg;

    pthread_mutex_lock(&ms->mu);
    for (;;) {
        struct job *j;
        bool timed_out = false;

        while (ms->q_head == NULL && !ms->stop && !timed_out) {
            ms->idle++;
            if (ms->threads > ms->lim.workers) {
                struct timespec dl = clock_deadline_after(MAPSERVER_LINGER_MS);
                timed_out = pthread_cond_timedwait(&ms->work, &ms->mu, &dl) == ETIMEDOUT;
            } else {
                pthread_cond_wait(&ms->work, &ms->mu);
            }
            ms->idle--;
        }
        if (ms->stop || ms->q_head == NULL)
            break;
        j = ms->q_head;
        ms->q_head = j->next;
        if (ms->q_head == NULL)
            ms->q_tail = NULL;
        ms->queued--;
        pthread_mutex_unlock(&ms->mu);

        if ((j->reply = malloc(REPLY_SIZE)) != NULL)
            ms->fn(j->req, j->len, j->reply, REPLY_SIZE, ms->arg);

        pthread_mutex_lock(&ms->mu);
        j->next = ms->done;
        ms->done = j;
        wake_loop(ms);
    }
    ms->threads--;
    if (ms->threads == 0)
        pthread_cond_broadcast(&ms->gone);
    pthread_mutex_unlock(&ms->mu);
    return NULL;
}

static int
submit(struct mapserver *ms, struct job *j)
{
    int rc = 0;

    pthread_mutex_lock(&ms->mu);
    j->next = NULL;
    if (ms->q_tail != NULL)
        ms->q_tail->next = j;
    else
        ms->q_head = j;
    ms->q_tail = j;
    ms->queued++;
    if (ms->queued > ms->idle && ms->threads < ms->lim.max_clients + ms->lim.workers &&
        spawn_worker(ms) != 0 && ms->threads == 0)
        rc = -1;		/* nobody will answer; the job stays queued until close */
    pthread_cond_signal(&ms->work);
    pthread_mutex_unlock(&ms->mu);
    return rc;
}

/* ------------------------------------------------------------ connections */

static void
conn_close(struct mapserver *ms, int slot)
{
    struct conn *c = &ms->conns[slot];

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
    ms->nconns--;
}

static void conn_input(struct mapserver *ms, int slot);

/* Sends what is pending; true when all of it went (the connection reads again). */
static bool
flush(struct mapserver *ms, int slot)
{
    struct conn *c = &ms->conns[slot];

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
            conn_close(ms, slot);
            return false;
        }
        c->out_off += (size_t)n;
    }
    free(c->out);
    c->out = NULL;
    c->out_len = c->out_off = 0;
    c->st = C_READ;
    c->since = ms->now;
    return true;
}

/*
 * Sends len bytes of buf now; what the socket does not take waits in c->out
 * for EPOLLOUT (C_WRITE). true when all of it went; false when it waits or
 * the connection was closed.
 */
static bool
send_now(struct mapserver *ms, int slot, const char *buf, size_t len)
{
    struct conn *c = &ms->conns[slot];
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
            conn_close(ms, slot);
            return false;
        }
        off += (size_t)n;
    }
    c->since = ms->now;
    if (off == len)
        return true;
    if ((c->out = malloc(len - off)) == NULL) {
        log_msg(LOG_ERR, "map: connection #%lu: out of memory; closing it", c->id);
        conn_close(ms, slot);
        return false;
    }
    memcpy(c->out, buf + off, len - off);
    c->out_len = len - off;
    c->out_off = 0;
    c->st = C_WRITE;
    return false;
}

static void
conn_write(struct mapserver *ms, int slot)
{
    if (flush(ms, slot))
        conn_input(ms, slot);	/* a pipelined request may be waiting */
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
conn_input(struct mapserver *ms, int slot)
{
    struct conn *c = &ms->conns[slot];
    const char *payload = NULL;
    size_t plen = 0, used = 0;
    struct mts_err err;
    struct job *j;

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
                !ms->at_once(payload, plen, ms->reply, REPLY_SIZE, ms->arg)) {
                stop = S_THREAD;
                break;
            }
            /* Fits: olen < OBUF_BATCH and the obuf has room for one more reply. */
            n = sockmap_netstring_encode(ms->reply, strlen(ms->reply), ms->obuf + olen,
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
            if (!send_now(ms, slot, ms->obuf, olen) || stop == S_PARTIAL)
                return;		/* closed, waiting for EPOLLOUT, or for input */
            continue;
        }
        if (stop == S_PARTIAL)
            return;
        if (stop == S_MALFORMED) {
            log_msg(LOG_NOTICE, "map: connection #%lu: %s; closing it", c->id, err.msg);
            conn_close(ms, slot);
            return;
        }
        break;			/* S_THREAD: payload, plen, used at the buffer's start */
    }
    j = calloc(1, sizeof(*j));
    if (j == NULL || (j->req = malloc(plen + 1)) == NULL) {
        free(j);
        log_msg(LOG_ERR, "map: connection #%lu: out of memory; closing it", c->id);
        conn_close(ms, slot);
        return;
    }
    memcpy(j->req, payload, plen);
    j->req[plen] = '\0';
    j->len = plen;
    j->slot = slot;
    j->id = c->id;
    consume(c, used);
    c->st = C_BUSY;
    if (submit(ms, j) != 0)
        log_msg(LOG_ERR, "map: cannot start an answer thread");
}

static void
conn_read(struct mapserver *ms, int slot)
{
    struct conn *c = &ms->conns[slot];
    ssize_t n = recv(c->fd, c->in + c->in_len, INBUF_SIZE - c->in_len, MSG_DONTWAIT);

    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return;
    if (n <= 0) {
        if (c->in_len > 0)
            log_msg(LOG_INFO, "map: connection #%lu: closed by the client in the middle "
                    "of a request", c->id);
        conn_close(ms, slot);
        return;
    }
    if (c->in_len == 0)
        c->since = ms->now;	/* a request begins */
    c->in_len += (size_t)n;
    conn_input(ms, slot);
}

/* An answer is back: frame it and send it. */
static void
deliver(struct mapserver *ms, struct job *j)
{
    struct conn *c = &ms->conns[j->slot];
    int n;

    if (c->id != j->id || c->st != C_BUSY)
        return;
    if (c->gone) {
        c->st = C_READ;
        c->gone = false;
        conn_close(ms, j->slot);
        return;
    }
    if (j->reply == NULL) {
        log_msg(LOG_ERR, "map: connection #%lu: out of memory; closing it", c->id);
        c->st = C_READ;
        conn_close(ms, j->slot);
        return;
    }
    c->st = C_READ;
    n = sockmap_netstring_encode(j->reply, strlen(j->reply), ms->obuf, OBUF_SIZE);
    if (n < 0) {
        log_msg(LOG_ERR, "map: connection #%lu: cannot frame the answer; closing it", c->id);
        conn_close(ms, j->slot);
        return;
    }
    if (send_now(ms, j->slot, ms->obuf, (size_t)n))
        conn_input(ms, j->slot);	/* a pipelined request may be waiting */
}

static void
accept_all(struct mapserver *ms)
{
    for (;;) {
        int fd = accept4(ms->ls.fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC), slot;
        struct epoll_event ev;

        if (fd < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR &&
                errno != ECONNABORTED)
                log_msg(LOG_WARNING, "map: accept: %s", strerror(errno));
            return;
        }
        if (ms->nconns >= ms->lim.max_clients) {
            int64_t t = now_ms();

            close(fd);
            if (t - ms->full_logged >= 10000) {
                log_msg(LOG_WARNING, "map: %d connections open (map_max_clients); "
                        "refusing new ones", ms->nconns);
                ms->full_logged = t;
            }
            continue;
        }
        for (slot = 0; ms->conns[slot].fd >= 0 || ms->conns[slot].gone; slot++)
            ;
        ms->conns[slot].in = malloc(INBUF_SIZE);
        if (ms->conns[slot].in == NULL) {
            close(fd);
            continue;
        }
        ev = (struct epoll_event){.events = EPOLLIN, .data.u32 = (uint32_t)slot};
        if (epoll_ctl(ms->ep, EPOLL_CTL_ADD, fd, &ev) != 0) {
            log_msg(LOG_WARNING, "map: epoll_ctl: %s", strerror(errno));
            free(ms->conns[slot].in);
            ms->conns[slot].in = NULL;
            close(fd);
            continue;
        }
        ms->conns[slot].ev = EPOLLIN;
        ms->conns[slot].fd = fd;
        ms->conns[slot].id = ++ms->next_id;
        ms->conns[slot].st = C_READ;
        ms->conns[slot].in_len = 0;
        ms->conns[slot].since = ms->now;
        ms->nconns++;
    }
}

static void
sweep(struct mapserver *ms)
{
    int64_t t = now_ms();

    for (int s = 0; s < ms->lim.max_clients; s++) {
        struct conn *c = &ms->conns[s];

        if (c->fd < 0 || c->st == C_BUSY)
            continue;
        if (c->st == C_WRITE && t - c->since > MAPSERVER_WRITE_TIMEOUT_MS) {
            log_msg(LOG_NOTICE, "map: connection #%lu: the client does not read its "
                    "answer; closing it", c->id);
            conn_close(ms, s);
        } else if (c->st == C_READ && c->in_len > 0 &&
                   t - c->since > MAPSERVER_REQUEST_TIMEOUT_MS) {
            log_msg(LOG_NOTICE, "map: connection #%lu: request not completed within %d ms; "
                    "closing it", c->id, MAPSERVER_REQUEST_TIMEOUT_MS);
            conn_close(ms, s);
        } else if (c->st == C_READ && c->in_len == 0 &&
                   t - c->since > MAPSERVER_IDLE_TIMEOUT_MS) {
            conn_close(ms, s);
        }
    }
}

/* ------------------------------------------------------------ the loop */

/* Tells epoll what the connection waits for now, when that changed. */
static void
watch(struct mapserver *ms, int slot)
{
    struct conn *c = &ms->conns[slot];
    uint32_t want = c->st == C_READ ? EPOLLIN : c->st == C_WRITE ? EPOLLOUT : 0;
    struct epoll_event ev = {.events = want, .data.u32 = (uint32_t)slot};

    if (c->fd < 0 || want == c->ev)
        return;
    if (epoll_ctl(ms->ep, EPOLL_CTL_MOD, c->fd, &ev) != 0) {
        log_msg(LOG_ERR, "map: connection #%lu: epoll_ctl: %s; closing it", c->id,
                strerror(errno));
        conn_close(ms, slot);
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
    struct mapserver *ms = arg;
    struct epoll_event evs[EV_BATCH];

    for (;;) {
        int n = epoll_wait(ms->ep, evs, EV_BATCH, 1000);
        bool woken = false, incoming = false;

        if (n < 0 && errno != EINTR) {
            log_msg(LOG_ERR, "map: epoll_wait: %s", strerror(errno));
            break;
        }
        ms->now = now_ms();
        for (int i = 0; i < n; i++) {
            woken |= evs[i].data.u32 == EV_WAKE;
            incoming |= evs[i].data.u32 == EV_LISTEN;
        }
        /* Answers and stop come with a byte on the wake pipe (wake_loop). */
        if (woken) {
            struct job *done;
            char drain[256];

            while (read(ms->wake[0], drain, sizeof(drain)) > 0)
                ;
            pthread_mutex_lock(&ms->mu);
            if (ms->stop) {
                pthread_mutex_unlock(&ms->mu);
                break;
            }
            done = ms->done;
            ms->done = NULL;
            pthread_mutex_unlock(&ms->mu);
            while (done != NULL) {
                struct job *next = done->next;
                int s = done->slot;

                deliver(ms, done);
                watch(ms, s);
                job_free(done);
                done = next;
            }
        }
        for (int i = 0; i < n; i++) {
            uint32_t s = evs[i].data.u32, e = evs[i].events;
            struct conn *c;

            if (s == EV_WAKE || s == EV_LISTEN)
                continue;
            c = &ms->conns[s];
            if (c->fd < 0)
                continue;	/* closed earlier in this pass */
            if (c->st == C_READ && (e & (EPOLLIN | EPOLLHUP | EPOLLERR)))
                conn_read(ms, (int)s);
            else if (c->st == C_WRITE && (e & (EPOLLOUT | EPOLLHUP | EPOLLERR)))
                conn_write(ms, (int)s);
            else if (c->st == C_BUSY && (e & (EPOLLHUP | EPOLLERR)))
                conn_close(ms, (int)s);
            watch(ms, (int)s);
        }
        if (incoming)
            accept_all(ms);
        /* Timeouts are seconds: one look a second is enough. */
        if (ms->now - ms->swept >= 1000) {
            sweep(ms);
            ms->swept = ms->now;
        }
    }
    return NULL;
}

int
mapserver_start(struct mapserver *ms, const struct mapserver_limits *limits,
                mapserver_answer_fn fn, mapserver_at_once_fn at_once, void *arg,
                struct mts_err *err)
{
    int n;

    ms->lim = *limits;
    ms->fn = fn;
    ms->at_once = at_once;
    ms->arg = arg;
    n = ms->lim.max_clients;
    ms->conns = calloc((size_t)n, sizeof(*ms->conns));
    ms->reply = at_once != NULL ? malloc(REPLY_SIZE) : NULL;
    ms->obuf = malloc(OBUF_SIZE);
    if (ms->conns == NULL || ms->obuf == NULL ||
        (at_once != NULL && ms->reply == NULL)) {
        mts_err_set(err, "out of memory");
        return -1;
    }
    for (int s = 0; s < n; s++)
        ms->conns[s].fd = -1;
    pthread_mutex_lock(&ms->mu);
    for (int i = 0; i < ms->lim.workers; i++) {
        if (spawn_worker(ms) != 0) {
            pthread_mutex_unlock(&ms->mu);
            mts_err_set(err, "cannot start the map's answer threads");
            return -1;
        }
    }
    pthread_mutex_unlock(&ms->mu);
    if (pthread_create(&ms->loop, NULL, loop_main, ms) != 0) {
        mts_err_set(err, "cannot start the map's event loop");
        return -1;
    }
    ms->started = true;
    return 0;
}

void
mapserver_close(struct mapserver *ms)
{
    if (ms == NULL)
        return;
    pthread_mutex_lock(&ms->mu);
    ms->stop = true;
    pthread_cond_broadcast(&ms->work);
    pthread_mutex_unlock(&ms->mu);
    if (ms->started) {
        wake_loop(ms);
        pthread_join(ms->loop, NULL);
    }
    mapsock_close(&ms->ls);
    /* Answer threads finish their job (bounded by its deadline) and go. */
    pthread_mutex_lock(&ms->mu);
    while (ms->threads > 0)
        pthread_cond_wait(&ms->gone, &ms->mu);
    pthread_mutex_unlock(&ms->mu);
    for (int s = 0; ms->conns != NULL && s < ms->lim.max_clients; s++) {
        if (ms->conns[s].fd >= 0)
            close(ms->conns[s].fd);
        free(ms->conns[s].in);
        free(ms->conns[s].out);
    }
    while (ms->q_head != NULL) {
        struct job *j = ms->q_head;
        ms->q_head = j->next;
        job_free(j);
    }
    while (ms->done != NULL) {
        struct job *j = ms->done;
        ms->done = j->next;
        job_free(j);
    }
    for (int i = 0; i < 2; i++)
        if (ms->wake[i] >= 0)
            close(ms->wake[i]);
    pthread_mutex_destroy(&ms->mu);
    pthread_cond_destroy(&ms->work);
    pthread_cond_destroy(&ms->gone);
    free(ms->conns);
    if (ms->ep >= 0)
        close(ms->ep);
    free(ms->reply);
    free(ms->obuf);
    free(ms);
}
