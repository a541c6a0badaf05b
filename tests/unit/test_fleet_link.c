/*
 * test_fleet_link - the Redis link (fleet_link.h) against a real
 * redis-server on a unix socket in a temporary directory (started and
 * stopped by its PID): AUTH and SELECT, a pipeline, and the circuit
 * breaker: with the server gone a command fails, then the next ones fail
 * without a try for the back-off, and the link reconnects by itself after it.
 * Skipped when redis-server is not installed.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"
#include "fleet_link.h"

struct fixture {
    char dir[64];
    char sock[128];
    pid_t pid;
};

static void server_stop(struct fixture *f);

/* redis-server with requirepass, on f->sock; false when it is not installed. */
static bool
server_start(struct fixture *f)
{
    f->pid = fork();
    assert_true(f->pid >= 0);
    if (f->pid == 0) {
        freopen("/dev/null", "w", stdout);
        execlp("redis-server", "redis-server", "--port", "0", "--unixsocket", f->sock,
               "--save", "", "--appendonly", "no", "--dir", f->dir, "--requirepass",
               "s3cret pass", (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 100; i++) {
        int st;

        if (waitpid(f->pid, &st, WNOHANG) == f->pid) {
            f->pid = 0;
            return false; /* not installed, or could not start */
        }
        if (access(f->sock, F_OK) == 0)
            return true;
        usleep(50000);
    }
    server_stop(f);
    return false;
}

static void
server_stop(struct fixture *f)
{
    kill(f->pid, SIGTERM);
    waitpid(f->pid, NULL, 0);
    f->pid = 0;
    unlink(f->sock);
}

static int
setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));

    assert_non_null(f);
    snprintf(f->dir, sizeof(f->dir), "/tmp/test_fleet_link.XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->sock, sizeof(f->sock), "%s/redis.sock", f->dir);
    *state = f;
    return 0;
}

static int
teardown(void **state)
{
    struct fixture *f = *state;
    char cmd[128];

    if (f->pid > 0) /* a check failed with the server up */
        server_stop(f);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

static struct config *
cfg_for(struct fixture *f, const char *password, int db)
{
    char path[160], pw[160];
    FILE *fp;
    struct config *cfg;
    struct mts_err err;

    snprintf(pw, sizeof(pw), "%s/password", f->dir);
    fp = fopen(pw, "w");
    assert_non_null(fp);
    fprintf(fp, "%s\n", password);
    fclose(fp);
    snprintf(path, sizeof(path), "%s/conf", f->dir);
    fp = fopen(path, "w");
    assert_non_null(fp);
    fprintf(fp, "fleet_redis = unix:%s\nfleet_password_file = %s\nfleet_db = %d\n"
                "fleet_timeout_ms = 100ms\n", f->sock, pw, db);
    fclose(fp);
    if (config_load(path, &cfg, &err) != 0)
        fail_msg("%s", err.msg);
    return cfg;
}

static redisReply *
cmd2(struct fleet_link *l, const char *a, const char *b)
{
    const char *argv[2] = {a, b};

    return fleet_link_command(l, 2, argv, NULL);
}

static void
auth_select_pipeline(void **state)
{
    struct fixture *f = *state;
    struct config *cfg;
    struct fleet_link *l;
    struct fleet_link_state st;
    struct mts_err err;
    redisReply *r, *rs[3];
    struct fleet_cmd cmds[3] = {
        {3, {"SET", "k", "v"}, {3, 1, 1}},
        {2, {"GET", "k"}, {3, 1}},
        {1, {"DBSIZE"}, {6}},
    };

    if (!server_start(f))
        skip();
    cfg = cfg_for(f, "s3cret pass", 3);
    assert_int_equal(fleet_link_open(cfg, &l, &err), 0);
    assert_int_equal(fleet_link_pipeline(l, 3, cmds, rs), 0);
    assert_string_equal(rs[1]->str, "v");
    assert_int_equal(rs[2]->integer, 1);
    for (int i = 0; i < 3; i++)
        freeReplyObject(rs[i]);
    /* it went to database 3 */
    r = cmd2(l, "SELECT", "0");
    freeReplyObject(r);
    r = cmd2(l, "EXISTS", "k");
    assert_non_null(r);
    assert_int_equal(r->integer, 0);
    freeReplyObject(r);
    fleet_link_state(l, &st);
    assert_true(st.up);
    fleet_link_close(l);
    config_unref(cfg);

    /* a wrong password: the link is down, and says why */
    cfg = cfg_for(f, "wrong", 0);
    assert_int_equal(fleet_link_open(cfg, &l, &err), 0);
    assert_null(cmd2(l, "GET", "k"));
    fleet_link_state(l, &st);
    assert_false(st.up);
    assert_non_null(strstr(st.last_error, "AUTH"));
    fleet_link_close(l);
    config_unref(cfg);
    server_stop(f);
}

static void
breaker(void **state)
{
    struct fixture *f = *state;
    struct config *cfg;
    struct fleet_link *l;
    struct fleet_link_state st;
    struct mts_err err;
    redisReply *r;

    if (!server_start(f))
        skip();
    cfg = cfg_for(f, "s3cret pass", 0);
    assert_int_equal(fleet_link_open(cfg, &l, &err), 0);
    r = cmd2(l, "GET", "k");
    assert_non_null(r);
    freeReplyObject(r);

    server_stop(f);
    assert_null(cmd2(l, "GET", "k")); /* the failure that opens the breaker */
    fleet_link_state(l, &st);
    assert_false(st.up);
    assert_int_equal(st.backoff_ms, FLEET_LINK_BACKOFF_MIN_MS);
    /* open: 1,000 commands fail without trying the socket (no new failure) */
    for (int i = 0; i < 1000; i++)
        assert_null(cmd2(l, "GET", "k"));
    fleet_link_state(l, &st);
    assert_int_equal(st.failures, 1);

    /* after the back-off, a try that fails doubles it */
    usleep((FLEET_LINK_BACKOFF_MIN_MS + 100) * 1000);
    assert_null(cmd2(l, "GET", "k"));
    fleet_link_state(l, &st);
    assert_int_equal(st.failures, 2);
    assert_int_equal(st.backoff_ms, 2 * FLEET_LINK_BACKOFF_MIN_MS);

    /* the server is back: after the back-off the link reconnects by itself */
    assert_true(server_start(f));
    usleep((2 * FLEET_LINK_BACKOFF_MIN_MS + 100) * 1000);
    r = cmd2(l, "GET", "k");
    assert_non_null(r);
    freeReplyObject(r);
    fleet_link_state(l, &st);
    assert_true(st.up);
    assert_int_equal(st.backoff_ms, 0);
    fleet_link_close(l);
    config_unref(cfg);
    server_stop(f);
}

static void
bad_addresses(void **state)
{
    static const char *const bad[] = {"redis:6379", "unix:relative", "tcp:host", "tcp::6379",
                                      "tcp:host:0", "tcp:host:65536", "tcp:host:12x"};
    struct config *cfg;
    struct fleet_link *l;
    struct mts_err err;

    assert_int_equal(config_defaults(&cfg, &err), 0);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char *saved = cfg->fleet_redis;

        cfg->fleet_redis = (char *)bad[i];
        if (fleet_link_open(cfg, &l, &err) != -1)
            fail_msg("fleet_redis = %s accepted", bad[i]);
        cfg->fleet_redis = saved;
    }
    /* off: every command fails at once */
    assert_int_equal(fleet_link_open(cfg, &l, &err), 0);
    assert_null(cmd2(l, "GET", "k"));
    fleet_link_close(l);
    config_unref(cfg);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(bad_addresses),
        cmocka_unit_test_setup_teardown(auth_select_pipeline, setup, teardown),
        cmocka_unit_test_setup_teardown(breaker, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
