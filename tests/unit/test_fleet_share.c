/*
 * test_fleet_share - one fleet per process (fleet_share.h): the same
 * configuration gets the same fleet, another (or a new key) a new one;
 * its threads live while a reference does; every listener hears the
 * news, none after it unlistens. Against a real redis-server on a unix
 * socket in a temporary directory (started and stopped by PID). Skipped
 * when redis-server is not installed.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <hiredis/hiredis.h>

#include "config.h"
#include "unit_redis.h"
#include "fleet_share.h"

static void
write_file(const char *path, const char *text)
{
    FILE *fp = fopen(path, "w");

    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
}

/* A configuration for the fixture's Redis, with prefix and the key file. */
static struct config *
cfg_for(struct unit_redis *f, const char *prefix)
{
    char path[160], key[160];
    struct config *cfg;
    struct mts_err err;

    snprintf(key, sizeof(key), "%s/key", f->dir);
    snprintf(path, sizeof(path), "%s/conf", f->dir);
    write_file(path, "");
    {
        FILE *fp = fopen(path, "w");

        assert_non_null(fp);
        fprintf(fp, "fleet_redis = unix:%s\nfleet_prefix = %s\nfleet_key_file = %s\n"
                    "fleet_timeout_ms = 200ms\n", f->sock, prefix, key);
        fclose(fp);
    }
    if (config_load(path, &cfg, &err) != 0)
        fail_msg("%s", err.msg);
    return cfg;
}

static void *
nothing(void *arg)
{
    return arg;
}

static int
threads(void)
{
    DIR *d = opendir("/proc/self/task");
    struct dirent *e;
    int n = 0;

    assert_non_null(d);
    while ((e = readdir(d)) != NULL)
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

struct heard {
    atomic_int n;
    char last[64];
};

static void
on_news(const char *kind, const char *name, void *arg)
{
    struct heard *h = arg;

    snprintf(h->last, sizeof(h->last), "%s %s", kind, name);
    atomic_fetch_add(&h->n, 1);
}

static void
publish(struct unit_redis *f, const char *channel, const char *msg)
{
    redisContext *c = redisConnectUnix(f->sock);
    redisReply *r;

    assert_non_null(c);
    assert_int_equal(c->err, 0);
    r = redisCommand(c, "PUBLISH %s %s", channel, msg);
    assert_non_null(r);
    freeReplyObject(r);
    redisFree(c);
}

/* Waits up to 3 s for h to have heard n messages. */
static bool
heard(struct heard *h, int n)
{
    for (int i = 0; i < 300 && atomic_load(&h->n) < n; i++)
        usleep(10000);
    return atomic_load(&h->n) >= n;
}

static void
one_fleet_per_configuration(void **state)
{
    struct unit_redis *f = *state;
    struct config *cfg, *cfg2, *other;
    struct fleet *a, *b, *c, *d;
    struct heard h1 = {0}, h2 = {0};
    struct mts_err err;
    char key[160];
    int base, with;

    if (!unit_redis_start(f, NULL))
        skip();
    snprintf(key, sizeof(key), "%s/key", f->dir);
    write_file(key, "0123456789abcdef-first-key");
    cfg = cfg_for(f, "t1:");
    cfg2 = cfg_for(f, "t1:");	/* a reload: a new configuration, the same fleet */
    other = cfg_for(f, "t2:");
    {
        /* A thread made and joined first: a runtime's own helper thread
         * (TSan's, started with the first pthread_create) counts in base. */
        pthread_t t;

        assert_int_equal(pthread_create(&t, NULL, nothing, NULL), 0);
        pthread_join(t, NULL);
    }
    base = threads();

    /* Discover and the probe engine of one process: one fleet. */
    assert_int_equal(fleet_share_get(cfg, &a, &err), 0);
    assert_non_null(a);
    assert_int_equal(fleet_share_listen(a, on_news, &h1, &err), 0);
    with = threads();
    assert_int_equal(with, base + 2);	/* its writer and its subscriber */
    assert_int_equal(fleet_share_get(cfg2, &b, &err), 0);
    assert_ptr_equal(a, b);
    assert_int_equal(fleet_share_listen(b, on_news, &h2, &err), 0);
    assert_int_equal(threads(), with);	/* no second pair */

    /* Each listener hears each message; an unlistened one no more. */
    usleep(300000);			/* the subscriber's SUBSCRIBE */
    publish(f, "t1:events", "policy a.example");
    assert_true(heard(&h1, 1));
    assert_true(heard(&h2, 1));
    assert_string_equal(h2.last, "policy a.example");
    fleet_share_unlisten(a, on_news, &h1);
    publish(f, "t1:events", "probe mx.a.example");
    assert_true(heard(&h2, 2));
    usleep(100000);
    assert_int_equal(atomic_load(&h1.n), 1);

    /* Another prefix, or a new key under the same path: another fleet. */
    assert_int_equal(fleet_share_get(other, &c, &err), 0);
    assert_ptr_not_equal(c, a);
    write_file(key, "0123456789abcdef-second-key");
    assert_int_equal(fleet_share_get(cfg2, &d, &err), 0);
    assert_ptr_not_equal(d, a);
    assert_ptr_not_equal(d, c);
    fleet_share_put(c);
    fleet_share_put(d);
    assert_int_equal(threads(), with);

    /* The old engines let go first (a reload): the fleet lives on. */
    fleet_share_put(a);
    assert_int_equal(threads(), with);
    publish(f, "t1:events", "policy b.example");
    assert_true(heard(&h2, 3));
    /* The last reference closes it: its threads are joined. */
    fleet_share_unlisten(b, on_news, &h2);
    fleet_share_put(b);
    assert_int_equal(threads(), base);

    /* Without fleet_redis there is none. */
    {
        struct config *none;

        assert_int_equal(config_defaults(&none, &err), 0);
        assert_int_equal(fleet_share_get(none, &a, &err), 0);
        assert_null(a);
        fleet_share_put(NULL);
        config_unref(none);
    }
    config_unref(cfg);
    config_unref(cfg2);
    config_unref(other);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(one_fleet_per_configuration,
                                        unit_redis_setup, unit_redis_teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
