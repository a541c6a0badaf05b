/*
 * test_discover_fleet - news from the fleet reaching a daemon's memory
 * (discover_fleet_event, discover_fleet.c), with discover's clock held by
 * the test: whether another host's row is taken depends on its id and
 * status and on its checked_at against ours, whole seconds, and only on
 * those. The case that matters is the tie: a change learnt in the second
 * our row was checked (test_fleet check 16 met it only by chance, and
 * failed when ">" stood where ">=" stands now).
 *
 * Each row of the table is a test of its own: a real redis-server on a
 * unix socket in a temporary directory (started and stopped by PID), a
 * cache file holding our row (id1, checked at T), a discover opened as the
 * daemon opens it (DISCOVER_REFRESHER: it listens to the fleet) whose
 * clock the test sets, a lookup at T that puts the row in memory; then
 * another host's row goes into Redis and "policy a.example" onto the
 * channel, as that host's writer would send them. Memory must hold what
 * the row says, and so must the cache file once discover is closed (the
 * taken row is written behind; nothing else is). Skipped, saying so, when
 * redis-server is not installed.
 *
 * No resolver is asked anything but 127.0.0.9, where nothing listens (the
 * refresher's check at start); no lookup leaves memory or the file.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <hiredis/hiredis.h>

#include "cache.h"
#include "config.h"
#include "discover.h"
#include "fleet.h"
#include "fleet_share.h"
#include "log.h"
#include "unit_fleet.h"
#include "unit_redis.h"

#define DOMAIN "a.example"
#define PREFIX "tdf:"
#define SYNC_MSG "probe sync.example"	/* told after the news: heard, the news was handled */

/* ---- the table ----------------------------------------------------------- */

/* Times are seconds after T, the second our row was checked. */
struct change {
    const char *label;
    const char *fleet_id;	/* the id in the other host's row (ours is id1) */
    int fleet_fetched, fleet_checked;
    int clock;			/* discover's clock when the news comes */
    const char *want_id;	/* in memory after the news, and in the file */
    int want_checked;
};

static const struct change changes[] = {
    /* The same second: ">" would keep id1. */
    {"a new id checked in our row's second (a tie) is taken", "id2", 0, 0, 0, "id2", 0},
    {"a new id checked a second before ours is not taken", "id2", -1, -1, 0, "id1", 0},
    /* Another host checked the same policy later: no change, no write. */
    {"the same id and status checked later changes nothing", "id1", 0, 5, 5, "id1", 0},
    {"a new id checked a second after ours is taken", "id2", 1, 1, 1, "id2", 1},
};

/* ---- discover's clock ---------------------------------------------------- */

static int64_t fake_now;	/* read by discover's threads */

static int64_t
test_clock(void)
{
    return __atomic_load_n(&fake_now, __ATOMIC_SEQ_CST);
}

static void
set_clock(int64_t t)
{
    __atomic_store_n(&fake_now, t, __ATOMIC_SEQ_CST);
}

/* ---- what the fleet's subscriber heard ----------------------------------- */

#define HEARD_MAX 64

struct heard {
    pthread_mutex_t mu;
    char msgs[HEARD_MAX][80];
    int n;
};

static void
on_news(const char *kind, const char *name, void *arg)
{
    struct heard *h = arg;

    pthread_mutex_lock(&h->mu);
    if (h->n < HEARD_MAX)
        snprintf(h->msgs[h->n++], sizeof(h->msgs[0]), "%s %s", kind, name);
    pthread_mutex_unlock(&h->mu);
}

static bool
heard_now(struct heard *h, const char *msg)
{
    bool found = false;

    pthread_mutex_lock(&h->mu);
    for (int i = 0; i < h->n && !found; i++)
        found = strcmp(h->msgs[i], msg) == 0;
    pthread_mutex_unlock(&h->mu);
    return found;
}

/* Waits up to ms for msg to have been heard. */
static bool
heard(struct heard *h, const char *msg, int ms)
{
    for (int i = 0; i < ms / 10 && !heard_now(h, msg); i++)
        usleep(10000);
    return heard_now(h, msg);
}

/* ---- the world ----------------------------------------------------------- */

struct fixture {
    struct unit_redis *redis;
    const struct change *row;
};

static int
setup(void **state)
{
    struct fixture *fx = calloc(1, sizeof(*fx));
    void *r = NULL;

    assert_non_null(fx);
    fx->row = *state;
    if (unit_redis_setup(&r) != 0)
        return -1;
    fx->redis = r;
    *state = fx;
    return 0;
}

static int
teardown(void **state)
{
    struct fixture *fx = *state;
    void *r = fx->redis;

    free(fx);
    return unit_redis_teardown(&r);
}

static void
write_file(const char *path, const char *text)
{
    FILE *fp = fopen(path, "w");

    assert_non_null(fp);
    fputs(text, fp);
    assert_int_equal(fclose(fp), 0);
}

/* The daemon's configuration: a cache file, the fleet, a resolver that is
 * asked nothing (127.0.0.9), one worker of each kind. */
static struct config *
config_in(const struct unit_redis *f)
{
    char path[160], text[1024];
    struct config *cfg;
    struct mts_err err;
    int n;

    snprintf(path, sizeof(path), "%s/key", f->dir);
    write_file(path, "0123456789abcdef-discover-fleet-key");
    snprintf(path, sizeof(path), "%s/resolv.conf", f->dir);
    write_file(path, "nameserver 127.0.0.9\n");
    n = snprintf(text, sizeof(text),
                 "cache_db = %s/cache.sqlite\n"
                 "resolv_conf = %s/resolv.conf\n"
                 "trust_anchor =\n"
                 "dns_timeout_ms = 500ms\n"
                 "lookup_workers = 1\n"
                 "refresh_workers = 1\n"
                 "refresh_interval = 1h\n"
                 "fleet_redis = unix:%s\n"
                 "fleet_prefix = " PREFIX "\n"
                 "fleet_key_file = %s/key\n"
                 "fleet_timeout_ms = 200ms\n",
                 f->dir, f->dir, f->sock, f->dir);
    assert_true(n > 0 && (size_t)n < sizeof(text));
    snprintf(path, sizeof(path), "%s/conf", f->dir);
    write_file(path, text);
    if (config_load(path, &cfg, &err) != 0)
        fail_msg("%s", err.msg);
    return cfg;
}

/* Our row in the cache file, before discover opens it. */
static void
seed(const struct config *cfg, int64_t t)
{
    struct cache *c;
    struct cache_entry e;
    struct mts_err err;

    if (cache_open(cfg->cache_db, 5000, &c, &err) != CACHE_OK)
        fail_msg("cache_open: %s", err.msg);
    unit_fleet_row(&e, DOMAIN, "id1", t, t);
    e.last_used = t;
    assert_int_equal(cache_put(c, &e, &err), CACHE_OK);
    cache_entry_free(&e);
    cache_close(c);
}

static redisReply *
command(redisContext *c, const char *fmt, ...)
{
    va_list ap;
    redisReply *r;

    va_start(ap, fmt);
    r = redisvCommand(c, fmt, ap);
    va_end(ap);
    assert_non_null(r);
    assert_int_not_equal(r->type, REDIS_REPLY_ERROR);
    return r;
}

/* Tells msg on the fleet's channel, through a connection of its own. */
static void
tell(const struct unit_redis *f, const char *msg)
{
    redisContext *c = redisConnectUnix(f->sock);

    assert_true(c != NULL && c->err == 0);
    freeReplyObject(command(c, "PUBLISH %s %s", PREFIX "events", msg));
    redisFree(c);
}

/* Until the subscriber hears the channel (its SUBSCRIBE is its own
 * thread's): a message a try, each named apart, at most 3 s. */
static bool
subscribed(const struct unit_redis *f, struct heard *h)
{
    for (int i = 0; i < 30; i++) {
        char msg[64];

        snprintf(msg, sizeof(msg), "probe ready%d.example", i);
        tell(f, msg);
        if (heard(h, msg, 100))
            return true;
    }
    return false;
}

/*
 * Another host's row of DOMAIN (signed with the fleet's key) and its news,
 * as that host's writer sends them: SET, then PUBLISH; then SYNC_MSG on
 * the PUBLISH's connection. The subscriber calls the listeners one message
 * at a time, in order: once SYNC_MSG is heard, discover has handled the news.
 */
static void
announce(const struct config *cfg, const struct unit_redis *f, const char *id, int64_t fetched_at,
         int64_t checked_at)
{
    struct cache_entry e;
    redisContext *c;

    unit_fleet_row(&e, DOMAIN, id, fetched_at, checked_at);
    snprintf(e.source, sizeof(e.source), "other.host");
    unit_fleet_set(f->sock, cfg->fleet_key_file, PREFIX "policy:" DOMAIN, &e);
    cache_entry_free(&e);
    c = redisConnectUnix(f->sock);
    assert_true(c != NULL && c->err == 0);
    freeReplyObject(command(c, "PUBLISH %s %s", PREFIX "events", "policy " DOMAIN));
    freeReplyObject(command(c, "PUBLISH %s %s", PREFIX "events", SYNC_MSG));
    redisFree(c);
}

/* ---- the test ------------------------------------------------------------ */

static void
fleet_change(void **state)
{
    struct fixture *fx = *state;
    const struct change *row = fx->row;
    struct config *cfg;
    struct discover *d;
    struct fleet *fl;
    struct heard h = {.mu = PTHREAD_MUTEX_INITIALIZER};
    struct status_result res;
    struct cache *c;
    struct cache_entry e;
    struct mts_err err;
    int64_t t = (int64_t)time(NULL);

    if (!unit_redis_start(fx->redis, NULL)) {
        print_message("redis-server is not installed (or did not start): skipped\n");
        skip();
    }
    cfg = config_in(fx->redis);
    seed(cfg, t);
    set_clock(t);
    if (discover_open(cfg, DISCOVER_REFRESHER, &d, &err) != 0)
        fail_msg("discover_open: %s", err.msg);
    discover_set_clock(d, test_clock);

    /* A recipient at T: our row, from the file into memory. */
    discover_lookup(d, DOMAIN, (struct timespec[]){clock_deadline_after(5000)}, 0, &res);
    assert_string_equal(res.txt_id, "id1");
    assert_int_equal(res.checked_at, t);
    assert_int_equal(res.source, STATUS_FROM_CACHE);
    status_result_free(&res);

    /* A listener beside discover's, on the process's one fleet (the same
     * configuration: the same fleet, fleet_share.h). */
    assert_int_equal(fleet_share_get(cfg, &fl, &err), 0);
    assert_non_null(fl);
    assert_int_equal(fleet_share_listen(fl, on_news, &h, &err), 0);
    assert_true(subscribed(fx->redis, &h));

    /* The news, at the second the row says. */
    set_clock(t + row->clock);
    announce(cfg, fx->redis, row->fleet_id, t + row->fleet_fetched, t + row->fleet_checked);
    assert_true(heard(&h, SYNC_MSG, 3000));
    assert_true(heard_now(&h, "policy " DOMAIN));

    /* Memory: what a recipient gets now. */
    assert_true(discover_lookup_at_once(d, DOMAIN, &res));
    print_message("memory: %s checked at T%+lld\n", res.txt_id, (long long)(res.checked_at - t));
    assert_string_equal(res.txt_id, row->want_id);
    assert_int_equal(res.checked_at, t + row->want_checked);
    status_result_free(&res);

    fleet_share_unlisten(fl, on_news, &h);
    fleet_share_put(fl);
    discover_close(d);		/* the writes behind are done */

    /* The file: the row taken, or ours untouched. */
    if (cache_open(cfg->cache_db, 5000, &c, &err) != CACHE_OK)
        fail_msg("cache_open: %s", err.msg);
    assert_int_equal(cache_get(c, DOMAIN, &e, &err), CACHE_OK);
    print_message("file: %s checked at T%+lld\n", e.txt_id, (long long)(e.checked_at - t));
    assert_string_equal(e.txt_id, row->want_id);
    assert_int_equal(e.checked_at, t + row->want_checked);
    cache_entry_free(&e);
    cache_close(c);
    config_unref(cfg);
}

int
main(void)
{
    struct CMUnitTest tests[sizeof(changes) / sizeof(changes[0])];
    char names[sizeof(changes) / sizeof(changes[0])][160];

    log_init("test_discover_fleet", LOG_TO_STDERR, LOG_MAIL);
    log_set_level(getenv("TEST_VERBOSE") != NULL ? LOG_DEBUG : LOG_INFO);
    for (size_t i = 0; i < sizeof(changes) / sizeof(changes[0]); i++) {
        snprintf(names[i], sizeof(names[i]), "fleet change: %s", changes[i].label);
        tests[i] = (struct CMUnitTest){
            .name = names[i],
            .test_func = fleet_change,
            .setup_func = setup,
            .teardown_func = teardown,
            .initial_state = (void *)(uintptr_t)&changes[i],
        };
    }
    return _cmocka_run_group_tests("test_discover_fleet", tests,
                                   sizeof(changes) / sizeof(changes[0]), NULL, NULL);
}
