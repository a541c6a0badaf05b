/*
 * unit_redis.h - a real redis-server for the fleet's unit tests, on a unix
 * socket in a temporary directory of its own, started and stopped by PID.
 *
 *	cmocka_unit_test_setup_teardown(test, unit_redis_setup, unit_redis_teardown)
 *	struct unit_redis *r = *state;
 *	if (!unit_redis_start(r, "password" or NULL)) skip();	not installed
 *	... r->sock ...
 *	unit_redis_stop(r);	(the teardown stops it too)
 *
 * Nothing is saved (--save "", no append-only file); TCP is off (--port 0).
 */
#ifndef MTS_UNIT_REDIS_H
#define MTS_UNIT_REDIS_H

#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

struct unit_redis {
    char dir[64];
    char sock[128];
    pid_t pid; /* 0: not running */
};

static inline void
unit_redis_stop(struct unit_redis *r)
{
    if (r->pid <= 0)
        return;
    kill(r->pid, SIGTERM);
    waitpid(r->pid, NULL, 0);
    r->pid = 0;
    unlink(r->sock);
}

/* Whether the server on sock answers a PING within ms (any reply line:
 * "+PONG", or "-NOAUTH" with a password). The socket file appears when
 * redis-server listens, before its event loop runs: a command sent then
 * waits for the loop, longer than the tests' 100 ms fleet_timeout_ms on a
 * loaded machine (make -j4 check: breaker's first GET failed). */
static inline bool
unit_redis_answers(const char *sock, int ms)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    struct pollfd p;
    char c;
    bool ok = false;
    int fd;

    if (strlen(sock) >= sizeof(sa.sun_path))
        return false;
    strcpy(sa.sun_path, sock);
    fd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (fd < 0)
        return false;
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 && write(fd, "PING\r\n", 6) == 6) {
        p.fd = fd;
        p.events = POLLIN;
        ok = poll(&p, 1, ms) == 1 && read(fd, &c, 1) == 1 && (c == '+' || c == '-');
    }
    close(fd);
    return ok;
}

/* The server, with requirepass when password is not NULL, answering
 * commands; false when it is not installed or did not answer within 100
 * tries 50 ms apart. */
static inline bool
unit_redis_start(struct unit_redis *r, const char *password)
{
    r->pid = fork();
    assert_true(r->pid >= 0);
    if (r->pid == 0) {
        if (freopen("/dev/null", "w", stdout) == NULL)
            _exit(126);
        if (password != NULL)
            execlp("redis-server", "redis-server", "--port", "0", "--unixsocket", r->sock,
                   "--save", "", "--appendonly", "no", "--dir", r->dir, "--requirepass",
                   password, (char *)NULL);
        else
            execlp("redis-server", "redis-server", "--port", "0", "--unixsocket", r->sock,
                   "--save", "", "--appendonly", "no", "--dir", r->dir, (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 100; i++) {
        int st;

        if (waitpid(r->pid, &st, WNOHANG) == r->pid) {
            r->pid = 0;
            return false; /* not installed, or could not start */
        }
        if (access(r->sock, F_OK) == 0 && unit_redis_answers(r->sock, 50))
            return true;
        usleep(50000);
    }
    unit_redis_stop(r);
    return false;
}

/* Setup: the directory and the socket's path. */
static inline int
unit_redis_setup(void **state)
{
    struct unit_redis *r = calloc(1, sizeof(*r));
    assert_non_null(r);
    snprintf(r->dir, sizeof(r->dir), "/tmp/unit_redis.XXXXXX");
    assert_non_null(mkdtemp(r->dir));
    snprintf(r->sock, sizeof(r->sock), "%s/redis.sock", r->dir);
    *state = r;
    return 0;
}

/* Teardown: the server if a check failed with it up, then the directory. */
static inline int
unit_redis_teardown(void **state)
{
    struct unit_redis *r = *state;
    char cmd[128];

    unit_redis_stop(r);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", r->dir);
    assert_int_equal(system(cmd), 0);
    free(r);
    return 0;
}

#endif
