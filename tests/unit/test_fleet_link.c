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
#include "unit_redis.h"
#include "fleet_link.h"

static struct config *
cfg_for(struct unit_redis *f, const char *password, int db)
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
    struct unit_redis *f = *state;
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

    if (!unit_redis_start(f, "s3cret pass"))
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
    unit_redis_stop(f);
}

static void
breaker(void **state)
{
    struct unit_redis *f = *state;
    struct config *cfg;
    struct fleet_link *l;
    struct fleet_link_state st;
    struct mts_err err;
    redisReply *r;

    if (!unit_redis_start(f, "s3cret pass"))
        skip();
    cfg = cfg_for(f, "s3cret pass", 0);
    assert_int_equal(fleet_link_open(cfg, &l, &err), 0);
    r = cmd2(l, "GET", "k");
    assert_non_null(r);
    freeReplyObject(r);

    unit_redis_stop(f);
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
    assert_true(unit_redis_start(f, "s3cret pass"));
    usleep((2 * FLEET_LINK_BACKOFF_MIN_MS + 100) * 1000);
    r = cmd2(l, "GET", "k");
    assert_non_null(r);
    freeReplyObject(r);
    fleet_link_state(l, &st);
    assert_true(st.up);
    assert_int_equal(st.backoff_ms, 0);
    fleet_link_close(l);
    config_unref(cfg);
    unit_redis_stop(f);
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
        cmocka_unit_test_setup_teardown(auth_select_pipeline,
                                        unit_redis_setup, unit_redis_teardown),
        cmocka_unit_test_setup_teardown(breaker,
                                        unit_redis_setup, unit_redis_teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
