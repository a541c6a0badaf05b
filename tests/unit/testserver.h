/*
 * testserver.h - run a Python test server in a scratch directory for a
 * unit test: start it, wait for its "name=value" ports file, stop it,
 * remove the directory.
 *
 * DESCRIPTION
 *	testserver_start(&s, "smtp_server.py", "test_tlsprobe") makes
 *	/tmp/<prefix>.XXXXXX, finds the script ($TEST_SERVER_SCRIPT,
 *	$top_srcdir/tests/unit, ./tests/unit, or the test program's own
 *	directory), runs "python3 SCRIPT DIR" with its output in DIR/server.err,
 *	and waits (bounded) for DIR/ports. testserver_value(&s, "good") then
 *	gives a line's value. testserver_stop kills the server by its PID,
 *	waits for it and removes the (flat) directory unless $TEST_KEEP is
 *	set. Returns -1 (with a "# " line on stderr) when python3 or the
 *	script is missing or the server fails: the caller then skips its plan.
 */
#ifndef MTS_TESTSERVER_H
#define MTS_TESTSERVER_H

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define TESTSERVER_WAIT_S 30 /* certificates take a few seconds to make */
#define TESTSERVER_LINES 64
#define TESTSERVER_LINE 256

struct testserver {
    char dir[64];
    pid_t pid;
    size_t n;
    char lines[TESTSERVER_LINES][TESTSERVER_LINE];
};

static const char *testserver_prog; /* argv[0], to look beside the program */

static inline double
testserver_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static inline void
testserver_sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

    nanosleep(&ts, NULL);
}

static inline bool
testserver_find(const char *script, char *out, size_t outsz)
{
    const char *env = getenv("TEST_SERVER_SCRIPT"), *src = getenv("top_srcdir"), *slash;

    if (env != NULL && access(env, R_OK) == 0)
        return (size_t)snprintf(out, outsz, "%s", env) < outsz;
    if (src != NULL && (size_t)snprintf(out, outsz, "%s/tests/unit/%s", src, script) < outsz &&
        access(out, R_OK) == 0)
        return true;
    if ((size_t)snprintf(out, outsz, "tests/unit/%s", script) < outsz && access(out, R_OK) == 0)
        return true;
    if (testserver_prog != NULL && (slash = strrchr(testserver_prog, '/')) != NULL &&
        (size_t)snprintf(out, outsz, "%.*s/%s", (int)(slash - testserver_prog), testserver_prog,
                         script) < outsz &&
        access(out, R_OK) == 0)
        return true;
    return false;
}

static inline bool
testserver_read_ports(struct testserver *s)
{
    char path[128];
    FILE *f;

    snprintf(path, sizeof(path), "%s/ports", s->dir);
    if ((f = fopen(path, "r")) == NULL)
        return false;
    s->n = 0;
    while (s->n < TESTSERVER_LINES && fgets(s->lines[s->n], TESTSERVER_LINE, f) != NULL) {
        s->lines[s->n][strcspn(s->lines[s->n], "\n")] = '\0';
        s->n++;
    }
    fclose(f);
    return s->n > 0;
}

/* The value of "key=value" in the ports file, or "" when absent. */
static inline const char *
testserver_value(const struct testserver *s, const char *key)
{
    size_t k = strlen(key);

    for (size_t i = 0; i < s->n; i++)
        if (strncmp(s->lines[i], key, k) == 0 && s->lines[i][k] == '=')
            return s->lines[i] + k + 1;
    return "";
}

static inline void
testserver_print_file(const struct testserver *s, const char *name)
{
    char path[128], line[512];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", s->dir, name);
    if ((f = fopen(path, "r")) == NULL)
        return;
    while (fgets(line, sizeof(line), f) != NULL)
        fprintf(stderr, "# %s: %s", name, line);
    fclose(f);
}

static inline void
testserver_stop(struct testserver *s)
{
    char path[384];
    struct dirent *e;
    int status;
    DIR *d;

    if (s->pid > 0) {
        kill(s->pid, SIGTERM);
        for (int i = 0; i < 60 && waitpid(s->pid, &status, WNOHANG) == 0; i++)
            testserver_sleep_ms(50);
        if (kill(s->pid, 0) == 0) {
            kill(s->pid, SIGKILL);
            waitpid(s->pid, &status, 0);
        }
        s->pid = -1;
    }
    if (s->dir[0] == '\0' || getenv("TEST_KEEP") != NULL)
        return;
    if ((d = opendir(s->dir)) != NULL) {
        while ((e = readdir(d)) != NULL)
            if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0 &&
                (size_t)snprintf(path, sizeof(path), "%s/%s", s->dir, e->d_name) < sizeof(path))
                (void)unlink(path);
        closedir(d);
    }
    (void)rmdir(s->dir);
    s->dir[0] = '\0';
}

static inline int
testserver_start(struct testserver *s, const char *script, const char *prefix)
{
    char path[512], errpath[128];
    double t0 = testserver_now();
    int status, fd;

    memset(s, 0, sizeof(*s));
    s->pid = -1;
    if (!testserver_find(script, path, sizeof(path))) {
        fprintf(stderr, "# %s not found (set TEST_SERVER_SCRIPT)\n", script);
        return -1;
    }
    snprintf(s->dir, sizeof(s->dir), "/tmp/%s.XXXXXX", prefix);
    if (mkdtemp(s->dir) == NULL) {
        s->dir[0] = '\0';
        return -1;
    }
    snprintf(errpath, sizeof(errpath), "%s/server.err", s->dir);
    if ((s->pid = fork()) < 0)
        return -1;
    if (s->pid == 0) {
        fd = open(errpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        execlp("python3", "python3", path, s->dir, (char *)NULL);
        _exit(127);
    }
    while (!testserver_read_ports(s)) {
        if (waitpid(s->pid, &status, WNOHANG) == s->pid) {
            s->pid = -1;
            fprintf(stderr, "# %s exited with status 0x%x\n", script, status);
            testserver_print_file(s, "server.err");
            testserver_stop(s);
            return -1;
        }
        if (testserver_now() - t0 > TESTSERVER_WAIT_S) {
            fprintf(stderr, "# %s wrote no port file in %d s\n", script, TESTSERVER_WAIT_S);
            testserver_print_file(s, "server.err");
            testserver_stop(s);
            return -1;
        }
        testserver_sleep_ms(50);
    }
    return 0;
}

/* Lines of DIR/name that contain needle. */
static inline int
testserver_count(const struct testserver *s, const char *name, const char *needle)
{
    char path[128], line[512];
    int n = 0;
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", s->dir, name);
    if ((f = fopen(path, "r")) == NULL)
        return 0;
    while (fgets(line, sizeof(line), f) != NULL)
        n += strstr(line, needle) != NULL;
    fclose(f);
    return n;
}

#endif
