/*
 * reload - configuration reloads on SIGHUP / SIGUSR1; see reload.h.
 *
 * The signal handler only writes a byte to a pipe (async-signal-safe); the
 * reload thread reads it, so a burst of signals costs one reload, and the
 * main thread never does anything for a SIGHUP but run this handler.
 */
#include "reload.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fetch.h"
#include "log.h"

static int reload_pipe[2] = {-1, -1};	/* 'r': reload, 'q': the thread ends */
static const char *reload_path;
static void (*reload_after)(const struct runtime *rt);
static pthread_t reload_tid;

/*
 * Set by the handler, cleared by the reload thread before it rebuilds: while
 * a reload is pending, further signals make no system call. The handler runs
 * with SIGHUP unblocked (SA_NODEFER, see reload_start), so a signal arriving
 * while it is in a system call is delivered, nested, on that call's return:
 * with a write in every handler, a flood of SIGHUPs nested handlers until
 * the main thread's stack overflowed (test_reload_storm's burst, once in
 * CI). Without one, a nested call is only an interrupt's rare luck.
 */
static volatile sig_atomic_t reload_pending;

static void
on_reload_signal(int sig)
{
    int e = errno;

    (void)sig;
    if (__atomic_exchange_n(&reload_pending, 1, __ATOMIC_SEQ_CST) != 0)
        return;
    (void)write(reload_pipe[1], "r", 1);	/* a full pipe: reloads are pending anyway */
    errno = e;
}

static void *
reload_thread(void *arg)
{
    char buf[64];

    (void)arg;
    for (;;) {
        struct runtime *rt, *old;
        struct mts_err err;
        ssize_t n = read(reload_pipe[0], buf, sizeof(buf));
        int built;

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0 || memchr(buf, 'q', (size_t)n) != NULL)
            break;
        /* Before the rebuild: a signal from now on asks for the next one
         * (one that came before is served by this one, which reads the
         * file after it). */
        __atomic_store_n(&reload_pending, 0, __ATOMIC_SEQ_CST);
        old = runtime_current();
        built = runtime_rebuild(reload_path, old, &rt, &err);
        runtime_unref(old);
        if (built != 0) {
            log_msg(LOG_ERR, "reload refused, the running configuration stays: %s", err.msg);
        } else {
            log_set_level(rt->cfg->log_level);
            /* The CA file is parsed once and kept (cafile.h): read it again. */
            fetch_reload_trust();
            log_msg(LOG_NOTICE, "configuration reloaded from %s", rt->cfg->path);
            if (reload_after != NULL)
                reload_after(rt);
            runtime_install(rt);
        }
    }
    return NULL;
}

int
reload_start(const char *path, void (*after)(const struct runtime *rt), struct mts_err *err)
{
    struct sigaction sa;
    sigset_t sigs;

    reload_path = path;
    reload_after = after;
    if (pipe(reload_pipe) != 0 || fcntl(reload_pipe[0], F_SETFD, FD_CLOEXEC) != 0 ||
        fcntl(reload_pipe[1], F_SETFD, FD_CLOEXEC) != 0 ||
        fcntl(reload_pipe[1], F_SETFL, O_NONBLOCK) != 0) {
        mts_err_set(err, "reload pipe: %s", strerror(errno));
        return -1;
    }
    if (pthread_create(&reload_tid, NULL, reload_thread, NULL) != 0) {
        mts_err_set(err, "cannot start the reload thread");
        return -1;
    }
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_reload_signal;
    /*
     * SA_NODEFER: while a handler runs, the kernel blocks its signal in
     * that thread unless told not to; a SIGHUP arriving then would go to
     * the only thread that takes it, libmilter's signal thread, which
     * stops the filter (a burst of SIGHUPs did: test_reload_storm). The
     * handler only writes a byte, so running it nested is harmless.
     */
    sa.sa_flags = SA_RESTART | SA_NODEFER;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGHUP, &sa, NULL);
    sigaction(SIGUSR1, &sa, NULL);
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGHUP);
    sigaddset(&sigs, SIGUSR1);
    pthread_sigmask(SIG_UNBLOCK, &sigs, NULL);
    return 0;
}

void
reload_stop(void)
{
    struct timespec ts = {0, 10 * 1000 * 1000};

    /* A full pipe: the thread is draining it; try again shortly. */
    while (write(reload_pipe[1], "q", 1) < 0 && (errno == EINTR || errno == EAGAIN))
        nanosleep(&ts, NULL);
    pthread_join(reload_tid, NULL);
}
