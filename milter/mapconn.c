/*
 * mapconn - one policy-map connection's I/O on its event loop; see
 * mapconn.h.
 */
#include "mapconn.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"

void
mapconn_close(struct maploop *lp, int slot)
{
    struct mapconn *c = &lp->conns[slot];

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

static void conn_input(struct maploop *lp, int slot);

/* Sends what is pending; true when all of it went (the connection reads again). */
static bool
flush(struct maploop *lp, int slot)
{
    struct mapconn *c = &lp->conns[slot];

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
            mapconn_close(lp, slot);
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
send_now(struct maploop *lp, int slot, const char *buf, size_t len)
{
    struct mapconn *c = &lp->conns[slot];
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
            mapconn_close(lp, slot);
            return false;
        }
        off += (size_t)n;
    }
    c->since = lp->now;
    if (off == len)
        return true;
    if ((c->out = malloc(len - off)) == NULL) {
        log_msg(LOG_ERR, "map: connection #%lu: out of memory; closing it", c->id);
        mapconn_close(lp, slot);
        return false;
    }
    memcpy(c->out, buf + off, len - off);
    c->out_len = len - off;
    c->out_off = 0;
    c->st = C_WRITE;
    return false;
}

void
mapconn_write(struct maploop *lp, int slot)
{
    if (flush(lp, slot))
        conn_input(lp, slot);	/* a pipelined request may be waiting */
}

/* Drops the first n bytes of the connection's input. */
static void
consume(struct mapconn *c, size_t n)
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
conn_input(struct maploop *lp, int slot)
{
    struct mapserver *ms = lp->ms;
    struct mapconn *c = &lp->conns[slot];
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
            switch (netstring_parse(c->in + off, c->in_len - off, SOCKMAP_MAX_REQUEST,
                                            &payload, &plen, &used, &err)) {
            case NETSTRING_PARTIAL:
                stop = S_PARTIAL;
                break;
            case NETSTRING_MALFORMED:
                stop = S_MALFORMED;
                break;
            case NETSTRING_COMPLETE:
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
            n = netstring_encode(lp->reply, strlen(lp->reply), lp->obuf + olen,
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
            mapconn_close(lp, slot);
            return;
        }
        break;			/* S_THREAD: payload, plen, used at the buffer's start */
    }
    j = calloc(1, sizeof(*j));
    if (j == NULL || (j->req = malloc(plen + 1)) == NULL) {
        free(j);
        log_msg(LOG_ERR, "map: connection #%lu: out of memory; closing it", c->id);
        mapconn_close(lp, slot);
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

void
mapconn_read(struct maploop *lp, int slot)
{
    struct mapconn *c = &lp->conns[slot];
    ssize_t n = recv(c->fd, c->in + c->in_len, INBUF_SIZE - c->in_len, MSG_DONTWAIT);

    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return;
    if (n <= 0) {
        if (c->in_len > 0)
            log_msg(LOG_INFO, "map: connection #%lu: closed by the client in the middle "
                    "of a request", c->id);
        mapconn_close(lp, slot);
        return;
    }
    if (c->in_len == 0)
        c->since = lp->now;	/* a request begins */
    c->in_len += (size_t)n;
    conn_input(lp, slot);
}

/* An answer is back: frame it and send it. */
void
mapconn_deliver(struct maploop *lp, struct mapjob *j)
{
    struct mapconn *c = &lp->conns[j->slot];
    int n;

    if (c->id != j->id || c->st != C_BUSY)
        return;
    if (c->gone) {
        c->st = C_READ;
        c->gone = false;
        mapconn_close(lp, j->slot);
        return;
    }
    if (j->reply == NULL) {
        log_msg(LOG_ERR, "map: connection #%lu: out of memory; closing it", c->id);
        c->st = C_READ;
        mapconn_close(lp, j->slot);
        return;
    }
    c->st = C_READ;
    n = netstring_encode(j->reply, strlen(j->reply), lp->obuf, OBUF_SIZE);
    if (n < 0) {
        log_msg(LOG_ERR, "map: connection #%lu: cannot frame the answer; closing it", c->id);
        mapconn_close(lp, j->slot);
        return;
    }
    if (send_now(lp, j->slot, lp->obuf, (size_t)n))
        conn_input(lp, j->slot);	/* a pipelined request may be waiting */
}

/* Waiting for its next request, nothing half read, no answer pending. */
static bool
conn_idle(const struct mapconn *c)
{
    return c->fd >= 0 && c->st == C_READ && c->in_len == 0 && !c->gone;
}

/*
 * The table is full and a new client comes: this loop's connection idle
 * the longest is closed for it (a Postfix smtp process reconnects when it
 * next asks, and retries once). false when the loop has none idle any
 * more (the hint it gave loop 0 was a second old).
 */
static bool
evict_oldest_idle(struct maploop *lp)
{
    int victim = -1;
    int64_t next = INT64_MAX;

    for (int s = 0; s < lp->ms->lim.max_clients; s++) {
        const struct mapconn *c = &lp->conns[s];

        if (!conn_idle(c))
            continue;
        if (victim < 0 || c->since < lp->conns[victim].since) {
            if (victim >= 0 && lp->conns[victim].since < next)
                next = lp->conns[victim].since;
            victim = s;
        } else if (c->since < next) {
            next = c->since;
        }
    }
    __atomic_store_n(&lp->oldest_idle, next, __ATOMIC_RELAXED);
    if (victim < 0)
        return false;
    log_msg(LOG_INFO, "map: connection #%lu, idle for %lld ms, closed for a new client "
            "(map_max_clients)", lp->conns[victim].id,
            (long long)(lp->now - lp->conns[victim].since));
    mapconn_close(lp, victim);
    return true;
}

/*
 * Makes fd (a new connection, numbered id) one of this loop's; counted
 * in lp->open and ms->open already. Closes it when it cannot, or when
 * evict and no idle connection of the loop gives way to it.
 */
void
mapconn_add(struct maploop *lp, int fd, unsigned long id, bool evict)
{
    struct epoll_event ev;
    int slot;

    if (evict && !evict_oldest_idle(lp)) {
        log_msg(LOG_INFO, "map: new connection #%lu closed: map_max_clients connections "
                "open, none idle", id);
        close(fd);
        __atomic_sub_fetch(&lp->open, 1, __ATOMIC_RELAXED);
        __atomic_sub_fetch(&lp->ms->open, 1, __ATOMIC_RELAXED);
        return;
    }

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

/* Closes the connections past their timeouts; tells loop 0 how long the
 * oldest idle one left has been idle (a hint for accept_all). */
void
mapconn_sweep(struct maploop *lp)
{
    int64_t t = lp->now, oldest = INT64_MAX;

    for (int s = 0; s < lp->ms->lim.max_clients; s++) {
        struct mapconn *c = &lp->conns[s];

        if (c->fd < 0 || c->st == C_BUSY)
            continue;
        if (c->st == C_WRITE && t - c->since > MAPSERVER_WRITE_TIMEOUT_MS) {
            log_msg(LOG_NOTICE, "map: connection #%lu: the client does not read its "
                    "answer; closing it", c->id);
            mapconn_close(lp, s);
        } else if (c->st == C_READ && c->in_len > 0 &&
                   t - c->since > MAPSERVER_REQUEST_TIMEOUT_MS) {
            log_msg(LOG_NOTICE, "map: connection #%lu: request not completed within %d ms; "
                    "closing it", c->id, MAPSERVER_REQUEST_TIMEOUT_MS);
            mapconn_close(lp, s);
        } else if (conn_idle(c) && t - c->since > lp->ms->lim.idle_timeout_ms) {
            mapconn_close(lp, s);
        } else if (conn_idle(c) && c->since < oldest) {
            oldest = c->since;
        }
    }
    __atomic_store_n(&lp->oldest_idle, oldest, __ATOMIC_RELAXED);
}

/* Tells epoll what the connection waits for now, when that changed. */
void
mapconn_watch(struct maploop *lp, int slot)
{
    struct mapconn *c = &lp->conns[slot];
    uint32_t want = c->st == C_READ ? EPOLLIN : c->st == C_WRITE ? EPOLLOUT : 0;
    struct epoll_event ev = {.events = want, .data.u32 = (uint32_t)slot};

    if (c->fd < 0 || want == c->ev)
        return;
    if (epoll_ctl(lp->ep, EPOLL_CTL_MOD, c->fd, &ev) != 0) {
        log_msg(LOG_ERR, "map: connection #%lu: epoll_ctl: %s; closing it", c->id,
                strerror(errno));
        mapconn_close(lp, slot);
        return;
    }
    c->ev = want;
}
