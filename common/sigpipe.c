/*
 * sigpipe - keep a write to a peer that has gone from killing the process;
 * see sigpipe.h.
 */
#include "sigpipe.h"

#include <pthread.h>
#include <time.h>

void
sigpipe_block(struct sigpipe_guard *g)
{
    sigset_t set, pending;

    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    sigemptyset(&pending);
    g->was_pending = sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &set, &g->old);
}

void
sigpipe_restore(struct sigpipe_guard *g)
{
    static const struct timespec zero = {0, 0};
    sigset_t set, pending;

    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    sigemptyset(&pending);
    /* Ours only when none was pending before: sigtimedwait takes it without waiting. */
    if (!g->was_pending && sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE))
        (void)sigtimedwait(&set, NULL, &zero);
    pthread_sigmask(SIG_SETMASK, &g->old, NULL);
}
