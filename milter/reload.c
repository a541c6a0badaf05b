/*
 * reload - configuration reloads on SIGHUP / SIGUSR1; see reload.h.
 *
 * SIGHUP and SIGUSR1 are blocked in every thread (the main thread blocks
 * them before it starts any) and taken by one thread only, the reload
 * thread, with sigwaitinfo: no handler runs, so none can nest, and a burst
 * of signals costs one reload (a standard signal is pending once).
 * libmilter's own signal thread waits for SIGHUP too, and stops the filter
 * when it gets one; the sigwait below keeps SIGHUP out of its wait.
 */
#include "reload.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>

#include "fetch.h"
#include "log.h"
#include "metrics.h"
#include "metrics_rows.h"

static const char *reload_path;
static void (*reload_after)(const struct runtime *rt);
static pthread_t reload_tid;
static int reload_stopping;	/* set by reload_stop before it wakes the thread */

/*
 * libmilter's signal thread calls sigwait() for SIGHUP, SIGTERM and SIGINT
 * and stops the filter on SIGHUP. This definition, in the milter binary,
 * is the one libmilter's call binds to (the executable comes first in the
 * dynamic linker's search, as with malloc): it waits for the same set
 * without SIGHUP and SIGUSR1, which are the reload thread's alone. The
 * main thread's own sigwait (SIGTERM, SIGINT, SIGUSR2) is unchanged by it.
 */
int
sigwait(const sigset_t *set, int *sig)
{
    sigset_t s = *set;

    sigdelset(&s, SIGHUP);
    sigdelset(&s, SIGUSR1);
    for (;;) {
        int r = sigwaitinfo(&s, NULL);

        if (r > 0) {
            *sig = r;
            return 0;
        }
        if (errno != EINTR)
            return errno;
    }
}

static void *
reload_thread(void *arg)
{
    sigset_t set;

    (void)arg;
    sigemptyset(&set);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGUSR1);
    for (;;) {
        struct runtime *rt, *old;
        struct mts_err err;
        int built;

        if (sigwaitinfo(&set, NULL) < 0) {
            if (errno == EINTR)
                continue;
            log_msg(LOG_ERR, "reload thread: %s; reloads stop", strerror(errno));
            break;
        }
        if (__atomic_load_n(&reload_stopping, __ATOMIC_SEQ_CST))
            break;
        /* A signal that comes during the rebuild stays pending and asks
         * for the next one (this one reads the file after it came). */
        old = runtime_current();
        built = runtime_rebuild(reload_path, old, &rt, &err);
        runtime_unref(old);
        metrics_reload(built == 0);
        if (built != 0) {
            log_msg(LOG_ERR, "reload refused, the running configuration stays: %s", err.msg);
        } else {
            log_set_level(rt->cfg->log_level);
            metrics_rows_configure(rt->cfg->cache_db, rt->cfg->metrics_cache_rows_interval);
            /* The CA file is parsed once and kept (cafile.h): read it again. */
            fetch_reload_trust();
            if (reload_after != NULL)
                reload_after(rt);
            /* Said once new connections get it (tests and operators wait
             * for this line, then connect); rt stays current until this
             * thread's next reload, so its path is still there. */
            runtime_install(rt);
            log_msg(LOG_NOTICE, "configuration reloaded from %s", rt->cfg->path);
        }
    }
    return NULL;
}

int
reload_start(const char *path, void (*after)(const struct runtime *rt), struct mts_err *err)
{
    sigset_t sigs, now;

    /* They must be blocked in the caller, and so in every thread it made
     * or will make: else one would take a SIGHUP by default (and end). */
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGHUP);
    sigaddset(&sigs, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    pthread_sigmask(SIG_BLOCK, NULL, &now);
    if (!sigismember(&now, SIGHUP) || !sigismember(&now, SIGUSR1)) {
        mts_err_set(err, "cannot block SIGHUP and SIGUSR1");
        return -1;
    }
    reload_path = path;
    reload_after = after;
    if (pthread_create(&reload_tid, NULL, reload_thread, NULL) != 0) {
        mts_err_set(err, "cannot start the reload thread");
        return -1;
    }
    return 0;
}

void
reload_stop(void)
{
    __atomic_store_n(&reload_stopping, 1, __ATOMIC_SEQ_CST);
    /* To the thread itself: it is the one waiting for SIGHUP. */
    pthread_kill(reload_tid, SIGHUP);
    pthread_join(reload_tid, NULL);
}
