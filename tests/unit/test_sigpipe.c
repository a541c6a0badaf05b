/*
 * test_sigpipe - the SIGPIPE guard (common/sigpipe.h) with real sockets.
 *
 * Every case runs in a child process of its own, which writes to a socket
 * whose peer is closed: a SIGPIPE that gets through kills the child, not
 * the test program, and the parent reads how the child ended. The child
 * starts from SIGPIPE's default action, unblocked, whatever the test was
 * started with. The child reports the first check that failed by its exit
 * code (see the CHILD_* values).
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "sigpipe.h"

enum {
    CHILD_OK = 0,
    CHILD_SETUP = 10,		/* socketpair, signal() */
    CHILD_WROTE = 11,		/* the write did not fail with EPIPE */
    CHILD_PENDING = 12,		/* a SIGPIPE left pending after restore */
    CHILD_NOT_PENDING = 13,	/* the SIGPIPE pending before the guard is gone */
    CHILD_MASK = 14,		/* the thread's mask is not what it was */
};

static const char *const child_words[] = {
    [CHILD_SETUP] = "setup failed",
    [CHILD_WROTE] = "the write to a closed peer did not fail with EPIPE",
    [CHILD_PENDING] = "a SIGPIPE is left pending after sigpipe_restore",
    [CHILD_NOT_PENDING] = "the SIGPIPE pending before sigpipe_block was swallowed",
    [CHILD_MASK] = "the signal mask was not restored",
};

/* A stream socket whose peer is closed: writing to it raises SIGPIPE. */
static int
broken_socket(void)
{
    int sv[2];

    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
        return -1;
    close(sv[1]);
    return sv[0];
}

static bool
pipe_pending(void)
{
    sigset_t pending;

    sigemptyset(&pending);
    return sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE);
}

static bool
is_blocked(int sig)
{
    sigset_t now;

    sigemptyset(&now);
    pthread_sigmask(SIG_BLOCK, NULL, &now);
    return sigismember(&now, sig);
}

/* SIGPIPE at its default action and unblocked, as in mtasts-ctl. */
static int
child_setup(void)
{
    sigset_t set;

    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    if (signal(SIGPIPE, SIG_DFL) == SIG_ERR || pthread_sigmask(SIG_UNBLOCK, &set, NULL) != 0)
        return -1;
    return broken_socket();
}

static int
write_fails_epipe(int fd)
{
    return write(fd, "x", 1) == -1 && errno == EPIPE;
}

/* The guarded write: EPIPE, no signal left, SIGPIPE unblocked again. */
static int
child_guarded(void)
{
    struct sigpipe_guard g;
    int fd = child_setup();

    if (fd < 0)
        return CHILD_SETUP;
    sigpipe_block(&g);
    if (!write_fails_epipe(fd))
        return CHILD_WROTE;
    sigpipe_restore(&g);
    if (pipe_pending())
        return CHILD_PENDING;
    if (is_blocked(SIGPIPE))
        return CHILD_MASK;
    /* And again: the guard can be taken any number of times. */
    sigpipe_block(&g);
    if (!write_fails_epipe(fd))
        return CHILD_WROTE;
    sigpipe_restore(&g);
    if (pipe_pending() || is_blocked(SIGPIPE))
        return CHILD_PENDING;
    return CHILD_OK;
}

/* The same write with no guard: the child must die of SIGPIPE. */
static int
child_unguarded(void)
{
    int fd = child_setup();

    if (fd < 0)
        return CHILD_SETUP;
    (void)write(fd, "x", 1);
    return CHILD_OK;
}

/*
 * A SIGPIPE pending before the guard (blocked by the caller, raised by
 * someone else) is not the guard's to swallow; the caller's mask, with
 * SIGPIPE and SIGUSR1 blocked, comes back as it was.
 */
static int
child_foreign_pending(void)
{
    struct sigpipe_guard g;
    sigset_t set;
    int fd = child_setup();

    if (fd < 0)
        return CHILD_SETUP;
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    sigaddset(&set, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    if (pthread_kill(pthread_self(), SIGPIPE) != 0 || !pipe_pending())
        return CHILD_SETUP;
    sigpipe_block(&g);
    if (!write_fails_epipe(fd))
        return CHILD_WROTE;
    sigpipe_restore(&g);
    if (!pipe_pending())
        return CHILD_NOT_PENDING;
    if (!is_blocked(SIGPIPE) || !is_blocked(SIGUSR1))
        return CHILD_MASK;
    return CHILD_OK;
}

/* Run fn in a child; its wait status. */
static int
in_child(int (*fn)(void))
{
    int status = 0;
    pid_t pid;

    fflush(NULL);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        _exit(fn());
    assert_int_equal(waitpid(pid, &status, 0), pid);
    return status;
}

static void
assert_child_ok(int status)
{
    if (WIFSIGNALED(status))
        fail_msg("the child died of signal %d (%s)", WTERMSIG(status), strsignal(WTERMSIG(status)));
    assert_true(WIFEXITED(status));
    if (WEXITSTATUS(status) != CHILD_OK) {
        int code = WEXITSTATUS(status);
        const char *why = (size_t)code < sizeof(child_words) / sizeof(child_words[0]) &&
                                  child_words[code] != NULL
                              ? child_words[code]
                              : "unknown";

        fail_msg("the child exited %d: %s", code, why);
    }
}

static void
guarded_write_survives(void **state)
{
    (void)state;
    assert_child_ok(in_child(child_guarded));
}

static void
unguarded_write_kills(void **state)
{
    int status;

    (void)state;
    status = in_child(child_unguarded);
    if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGPIPE)
        fail_msg("without the guard the child did not die of SIGPIPE (status %#x)", status);
}

static void
foreign_pending_kept(void **state)
{
    (void)state;
    assert_child_ok(in_child(child_foreign_pending));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(unguarded_write_kills),
        cmocka_unit_test(guarded_write_survives),
        cmocka_unit_test(foreign_pending_kept),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
