/*
 * test_fleet_share - one fleet per process (fleet_share.h): the same
 * configuration gets the same fleet, another (or a new key) a new one;
 * its threads live while a reference does; every listener hears the
 * news, none after it unlistens. And nothing a fleet learnt while Redis
 * was away is lost (fleet.h): fleet_close sends what it holds, within
 * its bound, and gives up on a hung Redis; a resynchronisation after an
 * outage publishes the changes it writes, once a key. Against a real
 * redis-server on a unix socket in a temporary directory (started and
 * stopped by PID). Skipped when redis-server is not installed.
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
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <hiredis/hiredis.h>

#include "cache.h"
#include "config.h"
#include "fleet.h"
#include "fleet_codec.h"
#include "probecache.h"
#include "unit_fleet.h"
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

/* ---- what a fleet learnt while Redis was away ---------------------------- */

static int64_t
mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* fleet_put_row of an enforce policy of domain with id, fetched and
 * checked at checked_at (unit_fleet_row). */
static void
put(struct fleet *fl, const char *domain, const char *id, int64_t checked_at, bool publish)
{
    struct cache_entry e;

    unit_fleet_row(&e, domain, id, checked_at, checked_at);
    fleet_put_row(fl, &e, (int64_t)time(NULL), publish);
    cache_entry_free(&e);
}

/* Another host's row, written straight into Redis (signed with key). */
static void
plant(struct unit_redis *f, const char *key, const char *rkey, const char *domain, const char *id,
      int64_t checked_at)
{
    struct cache_entry e;

    unit_fleet_row(&e, domain, id, checked_at, checked_at);
    unit_fleet_set(f->sock, key, rkey, &e);
    cache_entry_free(&e);
}

/* A subscriber of channel, straight on hiredis. */
static redisContext *
subscribe(struct unit_redis *f, const char *channel)
{
    redisContext *c = redisConnectUnix(f->sock);
    redisReply *r;

    assert_true(c != NULL && c->err == 0);
    r = redisCommand(c, "SUBSCRIBE %s", channel);
    assert_non_null(r);
    freeReplyObject(r);
    return c;
}

/* The messages c receives within ms, joined by ',' into out. */
static int
messages(redisContext *c, int ms, char *out, size_t size)
{
    int64_t end = mono_ms() + ms, left;
    int n = 0;

    out[0] = '\0';
    while ((left = end - mono_ms()) > 0) {
        void *v = NULL;
        redisReply *r;

        if (redisGetReplyFromReader(c, &v) != REDIS_OK)
            break;
        if (v == NULL) {
            struct pollfd p = {c->fd, POLLIN, 0};

            if (poll(&p, 1, (int)left) > 0 && redisBufferRead(c) != REDIS_OK)
                break;
            continue;
        }
        r = v;
        if (r->type == REDIS_REPLY_ARRAY && r->elements == 3 &&
            r->element[2]->type == REDIS_REPLY_STRING) {
            size_t used = strlen(out);

            snprintf(out + used, size - used, "%s%s", n > 0 ? "," : "", r->element[2]->str);
            n++;
        }
        freeReplyObject(r);
    }
    redisFree(c);
    return n;
}

/* Waits up to 3 s for the writer's first failure (Redis away); false if
 * none came. */
static bool
wait_failure(struct fleet *fl)
{
    struct fleet_state st;

    for (int i = 0; i < 300; i++) {
        fleet_state(fl, &st);
        if (st.link.failures > 0)
            break;
        usleep(10000);
    }
    usleep(200000); /* the rest of the queue follows the first into the outage list */
    return st.link.failures > 0;
}

/* The id of domain's row in Redis, read through a fleet of its own. */
static void
id_in_redis(struct config *cfg, const char *domain, char *out, size_t size)
{
    struct fleet *g;
    struct cache_entry e;
    struct mts_err err;

    assert_int_equal(fleet_open(cfg, &g, &err), 0);
    out[0] = '\0';
    if (fleet_get_row(g, domain, (int64_t)time(NULL), &e)) {
        snprintf(out, size, "%s", e.txt_id);
        cache_entry_free(&e);
    }
    fleet_close(g);
}

/* A fleet of its own for prefix, signing with a key file of key_text
 * (cfg_for's path): whether Redis is up is the caller's. */
static struct fleet *
fleet_for(struct unit_redis *f, const char *key_text, const char *prefix, struct config **cfg)
{
    char key[160];
    struct fleet *fl;
    struct mts_err err;

    snprintf(key, sizeof(key), "%s/key", f->dir);
    write_file(key, key_text);
    *cfg = cfg_for(f, prefix);
    assert_int_equal(fleet_open(*cfg, &fl, &err), 0);
    return fl;
}

/* What fl learnt with no Redis yet waits in its writer (it failed once);
 * then Redis comes up. Skips the test, fl and cfg closed, when
 * redis-server is not installed. */
static void
redis_comes_up(struct unit_redis *f, struct fleet *fl, struct config *cfg)
{
    assert_true(wait_failure(fl));
    if (!unit_redis_start(f, NULL)) {
        fleet_close(fl);
        config_unref(cfg);
        skip();
    }
}

/*
 * A one-shot process (mtasts-ctl lookup --recheck): Redis cannot be
 * reached when it learns a new id; Redis comes up before it exits;
 * fleet_close waits for the row: it is in Redis, and the other hosts
 * heard the change.
 */
static void
close_sends_what_it_held(void **state)
{
    struct unit_redis *f = *state;
    struct config *cfg;
    struct fleet *fl;
    redisContext *sub;
    char id[64], heard_msgs[256];
    int64_t t0, took;

    fl = fleet_for(f, "0123456789abcdef-close-key", "t3:", &cfg);
    put(fl, "a.example", "idnew", (int64_t)time(NULL), true);
    redis_comes_up(f, fl, cfg);	/* no Redis until now: the row waited */
    sub = subscribe(f, "t3:events");
    t0 = mono_ms();
    fleet_close(fl);
    took = mono_ms() - t0;
    print_message("fleet_close took %lld ms\n", (long long)took);
    /* The bound: FLEET_CLOSE_WAIT_MS and the attempt under way. */
    assert_true(took < FLEET_CLOSE_WAIT_MS + 2000);
    id_in_redis(cfg, "a.example", id, sizeof(id));
    assert_string_equal(id, "idnew");
    assert_int_equal(messages(sub, 500, heard_msgs, sizeof(heard_msgs)), 1);
    assert_string_equal(heard_msgs, "policy a.example");
    config_unref(cfg);
}

/* A hung Redis (stopped): fleet_close gives up within its bound. */
static void
close_gives_up_on_a_hung_redis(void **state)
{
    struct unit_redis *f = *state;
    struct config *cfg;
    struct fleet *fl;
    int64_t t0, took;
    bool failed;

    if (!unit_redis_start(f, NULL))
        skip();
    fl = fleet_for(f, "0123456789abcdef-close-key", "t5:", &cfg);
    kill(f->pid, SIGSTOP);
    put(fl, "h.example", "idh", (int64_t)time(NULL), true);
    failed = wait_failure(fl);
    t0 = mono_ms();
    fleet_close(fl);
    took = mono_ms() - t0;
    kill(f->pid, SIGCONT);		/* before any assertion: the teardown stops it */
    print_message("fleet_close took %lld ms (Redis stopped)\n", (long long)took);
    assert_true(failed);
    /* 200 ms a Redis step (cfg_for): a try costs a few; the bound holds. */
    assert_true(took < FLEET_CLOSE_WAIT_MS + 1000);
    config_unref(cfg);
}

/*
 * A long-lived process cut off from Redis learns changes; Redis comes
 * back holding older rows: the resynchronisation writes the changes over
 * them and publishes each once (the latest value of a key, however often
 * it was learnt); a row with no change to tell keeps another host's
 * value (SET NX), and a change older than what Redis holds is neither
 * written nor told.
 */
static void
resync_publishes_the_changes(void **state)
{
    struct unit_redis *f = *state;
    struct config *cfg;
    struct fleet *fl;
    redisContext *sub;
    char id[64], heard_msgs[512];
    int64_t now = (int64_t)time(NULL);

    fl = fleet_for(f, "0123456789abcdef-resync-key", "t4:", &cfg);
    put(fl, "b.example", "b2", now - 20, true);
    put(fl, "b.example", "b3", now - 10, true);
    put(fl, "b.example", "b3", now - 5, false);	/* checked again: no change */
    put(fl, "c.example", "c2", now - 10, false);
    put(fl, "d.example", "d2", now - 10, true);
    redis_comes_up(f, fl, cfg);
    /* What other hosts wrote before (b, c) and during (d) the outage. */
    plant(f, cfg->fleet_key_file, "t4:policy:b.example", "b.example", "b1", now - 3600);
    plant(f, cfg->fleet_key_file, "t4:policy:c.example", "c.example", "c1", now - 3600);
    plant(f, cfg->fleet_key_file, "t4:policy:d.example", "d.example", "d3", now);
    sub = subscribe(f, "t4:events");
    /* The writer tries the link again after its back-off (1 s). */
    assert_int_equal(messages(sub, 3000, heard_msgs, sizeof(heard_msgs)), 1);
    assert_string_equal(heard_msgs, "policy b.example");
    id_in_redis(cfg, "b.example", id, sizeof(id));
    assert_string_equal(id, "b3");
    id_in_redis(cfg, "c.example", id, sizeof(id));
    assert_string_equal(id, "c1");
    id_in_redis(cfg, "d.example", id, sizeof(id));
    assert_string_equal(id, "d3");
    fleet_close(fl);
    config_unref(cfg);
}

/* Two rows of one MX host at port 25 (two addresses), probed at probed_at. */
static void
probe_rows_of(struct probecache_row *r, const char *host, int64_t probed_at,
              enum tlsprobe_grade_word grade)
{
    memset(r, 0, 2 * sizeof(*r));
    for (int i = 0; i < 2; i++) {
        snprintf(r[i].host, sizeof(r[i].host), "%s", host);
        snprintf(r[i].address, sizeof(r[i].address), "192.0.2.%d", 10 + i);
        r[i].port = 25;
        r[i].status = TLSPROBE_OK;
        r[i].grade = grade;
        r[i].rfc8461 = r[i].pkix = r[i].tls = true;
        snprintf(r[i].protocol, sizeof(r[i].protocol), "TLSv1.3");
        r[i].probed_at = probed_at;
        r[i].expires_at = probed_at + 86400;
        r[i].dane = TLSA_DANE_NONE;
    }
}

/* The same for MX probe results: a changed result learnt during the
 * outage replaces an older one in Redis and is told once. */
static void
resync_publishes_probe_changes(void **state)
{
    struct unit_redis *f = *state;
    struct config *cfg;
    struct fleet *fl;
    struct mts_err err;
    struct fleet_key k;
    struct probecache_row rows[PROBECACHE_ADDR_MAX];
    redisContext *sub, *c;
    redisReply *r;
    char heard_msgs[256], *v;
    int64_t now = (int64_t)time(NULL);
    size_t n, len;

    fl = fleet_for(f, "0123456789abcdef-probe-key", "t6:", &cfg);
    probe_rows_of(rows, "mx1.p.example", now - 10, TLSPROBE_GRADE_FAIL);
    fleet_put_probe(fl, rows, 2, now, true);
    redis_comes_up(f, fl, cfg);
    /* Another host's result from before the outage. */
    assert_int_equal(fleet_key_load(cfg->fleet_key_file, &k, &err), 0);
    probe_rows_of(rows, "mx1.p.example", now - 3600, TLSPROBE_GRADE_GOOD);
    v = fleet_codec_tls_encode(&k, "t6:probe:mx1.p.example", rows, 2, &len, &err);
    assert_non_null(v);
    c = redisConnectUnix(f->sock);
    assert_true(c != NULL && c->err == 0);
    r = redisCommand(c, "SET t6:probe:mx1.p.example %b PX 3600000", v, len);
    assert_non_null(r);
    freeReplyObject(r);
    redisFree(c);
    free(v);
    sub = subscribe(f, "t6:events");
    assert_int_equal(messages(sub, 3000, heard_msgs, sizeof(heard_msgs)), 1);
    assert_string_equal(heard_msgs, "probe mx1.p.example");
    assert_true(fleet_get_probe(fl, "mx1.p.example", 25, (int64_t)time(NULL), rows, &n));
    assert_int_equal(n, 2);
    assert_int_equal(rows[0].probed_at, now - 10);
    assert_int_equal(rows[0].grade, TLSPROBE_GRADE_FAIL);
    fleet_close(fl);
    config_unref(cfg);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(one_fleet_per_configuration,
                                        unit_redis_setup, unit_redis_teardown),
        cmocka_unit_test_setup_teardown(close_sends_what_it_held,
                                        unit_redis_setup, unit_redis_teardown),
        cmocka_unit_test_setup_teardown(close_gives_up_on_a_hung_redis,
                                        unit_redis_setup, unit_redis_teardown),
        cmocka_unit_test_setup_teardown(resync_publishes_the_changes,
                                        unit_redis_setup, unit_redis_teardown),
        cmocka_unit_test_setup_teardown(resync_publishes_probe_changes,
                                        unit_redis_setup, unit_redis_teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
