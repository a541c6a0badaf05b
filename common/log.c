/*
 * log - syslog / stderr logging; see log.h.
 */
#include "log.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "err.h"

#define LOG_LINE_MAX 1024
/* What the writer thread holds at most: a line that does not fit waits
 * until the lines before it are written (as a full stderr pipe did). */
#define LOG_QUEUE_CAP (256 * 1024)

static enum log_target log_target = LOG_TO_STDERR;
static const char *log_ident = "mtasts";
static int log_level = LOG_INFO;

/*
 * The writer (log_start_writer): lines are appended to `front` under mu;
 * whoever writes them out (the writer thread, a log_msg caller, log_flush,
 * or a caller whose line does not fit) holds io, and swaps front and back
 * under mu while holding it. So one batch is written at a time, batches in the order they
 * were taken, and appenders never wait for a write. An entry is, for
 * stderr, the line as it is written; for syslog, its level as one byte,
 * then the line; each ends with a newline.
 */
static struct {
    pthread_mutex_t mu, io;
    pthread_cond_t more;
    char *front, *back;
    size_t front_len;
    bool idle;      /* the thread waits for more: an append must wake it */
    bool stop;      /* the thread is asked to end once the queue is empty */
    bool accepting; /* under mu: appends are queued, not written by the caller */
    pthread_t thread;
} lq = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER,
        NULL, NULL, 0, false, false, false, 0};
/* Set once by log_start_writer: before it, no caller takes the mutex. */
static bool lq_started;

void
log_init(const char *ident, enum log_target target, int facility)
{
    log_ident = ident;
    log_target = target;
    if (target == LOG_TO_SYSLOG)
        openlog(ident, LOG_PID | LOG_NDELAY, facility);
}

void
log_set_level(int level)
{
    __atomic_store_n(&log_level, level, __ATOMIC_RELAXED);
}

bool
log_enabled(int level)
{
    return level <= __atomic_load_n(&log_level, __ATOMIC_RELAXED);
}

static const char *
level_word(int level)
{
    switch (level) {
    case LOG_EMERG:
    case LOG_ALERT:
    case LOG_CRIT:
    case LOG_ERR:
        return "error";
    case LOG_WARNING:
        return "warning";
    case LOG_NOTICE:
        return "notice";
    case LOG_INFO:
        return "info";
    default:
        return "debug";
    }
}

/* One write(2) of a whole batch, resumed after a short write. */
static void
write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);

        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return; /* nowhere left to say it */
        p += w;
        n -= (size_t)w;
    }
}

static void
emit_batch(const char *p, size_t n)
{
    if (log_target != LOG_TO_SYSLOG) {
        write_all(STDERR_FILENO, p, n);
        return;
    }
    while (n > 0) {
        const char *nl = memchr(p, '\n', n);
        size_t len = nl != NULL ? (size_t)(nl - p) : n;

        if (len > 1)
            syslog((unsigned char)p[0], "%.*s", (int)(len - 1), p + 1);
        if (nl == NULL)
            break;
        n -= len + 1;
        p = nl + 1;
    }
}

/* Writes out what is queued. Called without mu held. */
static void
drain(void)
{
    char *batch;
    size_t n;

    pthread_mutex_lock(&lq.io);
    pthread_mutex_lock(&lq.mu);
    batch = lq.front;
    n = lq.front_len;
    lq.front = lq.back;
    lq.back = batch;
    lq.front_len = 0;
    pthread_mutex_unlock(&lq.mu);
    if (n > 0)
        emit_batch(batch, n);
    pthread_mutex_unlock(&lq.io);
}

/*
 * log_later's lines that come while the thread is asleep wake it, and are
 * written at once; then it naps for LOG_COALESCE_MS, during which nobody
 * wakes it: under load a batch of lines costs one write, and the callers
 * of log_later make no system call (waking a thread on another CPU cost a
 * message's reply more than the write itself, measured). 20 ms, not 5: each
 * nap is a timer and a wake, which on a VM cost the thread more than its
 * writes (perf, the dane bench: its CPU a quarter to a half of 5 ms naps');
 * the queue holds 20 ms of the fastest bench's lines (~40 KB) many times.
 */
#define LOG_COALESCE_MS 20

static void *
writer_main(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&lq.mu);
    for (;;) {
        struct timespec until;

        if (lq.front_len == 0) {
            if (lq.stop)
                break;
            lq.idle = true;
            pthread_cond_wait(&lq.more, &lq.mu);
            lq.idle = false;
            continue;
        }
        pthread_mutex_unlock(&lq.mu);
        drain();
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += LOG_COALESCE_MS * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        pthread_mutex_lock(&lq.mu);
        while (!lq.stop && pthread_cond_timedwait(&lq.more, &lq.mu, &until) == 0)
            ;
    }
    pthread_mutex_unlock(&lq.mu);
    return NULL;
}

int
log_start_writer(void)
{
    if (__atomic_load_n(&lq_started, __ATOMIC_ACQUIRE))
        return 0; /* once a process: a stopped writer stays stopped */
    /* The buffers live as long as the process: a late log_flush may use them. */
    if ((lq.front = malloc(LOG_QUEUE_CAP)) == NULL || (lq.back = malloc(LOG_QUEUE_CAP)) == NULL) {
        free(lq.front);
        lq.front = NULL;
        return -1;
    }
    if (pthread_create(&lq.thread, NULL, writer_main, NULL) != 0)
        return -1;
    pthread_mutex_lock(&lq.mu);
    lq.accepting = true;
    pthread_mutex_unlock(&lq.mu);
    __atomic_store_n(&lq_started, true, __ATOMIC_RELEASE);
    return 0;
}

void
log_stop_writer(void)
{
    bool was;

    if (!__atomic_load_n(&lq_started, __ATOMIC_ACQUIRE))
        return;
    pthread_mutex_lock(&lq.mu);
    was = lq.accepting;
    /* From here on every line is written by its caller, as before. */
    lq.accepting = false;
    lq.stop = true;
    pthread_cond_signal(&lq.more);
    pthread_mutex_unlock(&lq.mu);
    if (was)
        pthread_join(lq.thread, NULL);
    drain();
}

void
log_flush(void)
{
    if (__atomic_load_n(&lq_started, __ATOMIC_ACQUIRE))
        drain();
}

/* Queues one entry, and unless it may wait, writes it with everything
 * before it; false when the writer is not running. */
static bool
enqueue(int level, const char *line, bool may_wait)
{
    char entry[LOG_LINE_MAX + 128];
    size_t n;
    bool wake;

    if (!__atomic_load_n(&lq_started, __ATOMIC_ACQUIRE))
        return false;
    if (log_target == LOG_TO_SYSLOG) {
        entry[0] = (char)level;
        n = 1 + mts_text_join(entry + 1, sizeof(entry) - 2, line, (const char *)NULL);
    } else {
        n = mts_text_join(entry, sizeof(entry) - 1, log_ident, ": ", level_word(level), ": ", line,
                          (const char *)NULL);
    }
    /* line is bounded (LOG_LINE_MAX) and entry has room for the prefix:
     * the cut is a guard, and a cut entry is still one line. */
    if (n > sizeof(entry) - 2)
        n = sizeof(entry) - 2;
    entry[n++] = '\n';
    for (;;) {
        pthread_mutex_lock(&lq.mu);
        if (!lq.accepting) {
            pthread_mutex_unlock(&lq.mu);
            return false;
        }
        if (lq.front_len + n <= LOG_QUEUE_CAP)
            break;
        pthread_mutex_unlock(&lq.mu);
        drain(); /* full: write the older lines first, then queue this one */
    }
    memcpy(lq.front + lq.front_len, entry, n);
    lq.front_len += n;
    wake = lq.idle;
    lq.idle = false;
    pthread_mutex_unlock(&lq.mu);
    if (wake)
        pthread_cond_signal(&lq.more);
    if (!may_wait)
        drain();
    return true;
}

__attribute__((format(printf, 3, 0))) static void
vlog(int level, bool may_wait, const char *fmt, va_list ap)
{
    char line[LOG_LINE_MAX];

    if (!log_enabled(level))
        return;
    /* A cut line is still worth logging. */
    (void)vsnprintf(line, sizeof(line), fmt, ap);
    /* Remote data may reach a message: never let it start a new log line.
     * (strcspn, not a loop a byte at a time: the per-message line is some
     * 800 bytes, on the warm path.) */
    for (char *p = line + strcspn(line, "\r\n"); *p != '\0'; p += strcspn(p, "\r\n"))
        *p = ' ';
    if (enqueue(level, line, may_wait))
        return;
    if (log_target == LOG_TO_SYSLOG)
        syslog(level, "%s", line);
    else
        fprintf(stderr, "%s: %s: %s\n", log_ident, level_word(level), line);
}

void
log_msg(int level, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vlog(level, false, fmt, ap);
    va_end(ap);
}

void
log_later(int level, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vlog(level, true, fmt, ap);
    va_end(ap);
}

const struct nametab log_facility_names[] = {
    {"mail", LOG_MAIL},     {"daemon", LOG_DAEMON}, {"user", LOG_USER},
    {"local0", LOG_LOCAL0}, {"local1", LOG_LOCAL1}, {"local2", LOG_LOCAL2},
    {"local3", LOG_LOCAL3}, {"local4", LOG_LOCAL4}, {"local5", LOG_LOCAL5},
    {"local6", LOG_LOCAL6}, {"local7", LOG_LOCAL7}, {NULL, -1},
};

const struct nametab log_level_names[] = {
    {"error", LOG_ERR},   {"warning", LOG_WARNING}, {"notice", LOG_NOTICE},
    {"info", LOG_INFO},   {"debug", LOG_DEBUG},     {NULL, -1},
};
