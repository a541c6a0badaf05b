/*
 * refresh - the background refresher, with a clock the test moves.
 *
 * usage: refresh CONFIG USED-DOMAIN IDLE-DOMAIN
 *
 * Both domains are looked up at T. The clock then jumps past check_interval
 * for USED-DOMAIN only (it is asked for again, so it counts as in use, while
 * IDLE-DOMAIN's row is aged past unused_ttl by hand): within a few refresher
 * rounds USED-DOMAIN's row must be re-checked (checked_at moves to the new
 * time) and IDLE-DOMAIN's row must be gone. Prints what it saw; exit 0 when
 * both happened. CONFIG must set refresh_interval to a second or so.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cache.h"
#include "config.h"
#include "discover.h"
#include "log.h"

static int64_t fake_now;

static int64_t
test_clock(void)
{
    return __atomic_load_n(&fake_now, __ATOMIC_SEQ_CST);
}

int
main(int argc, char **argv)
{
    struct config *cfg;
    struct discover *d;
    struct cache *c;
    struct cache_entry e;
    struct status_result r;
    struct mts_err err;
    int64_t t0 = (int64_t)time(NULL), later;
    bool rechecked = false, purged = false;
    struct discover *idle;

    if (argc != 4) {
        fprintf(stderr, "usage: refresh CONFIG USED-DOMAIN IDLE-DOMAIN\n");
        return 2;
    }
    log_init("refresh", LOG_TO_STDERR, 0);
    fake_now = t0;
    if (config_load(argv[1], &cfg, &err) != 0 ||
        discover_open(cfg, DISCOVER_REFRESHER, &d, &err) != 0 ||
        cache_open(cfg->cache_db, 5000, &c, &err) != CACHE_OK) {
        fprintf(stderr, "refresh: %s\n", err.msg);
        return 2;
    }
    discover_set_clock(d, test_clock);
    discover_lookup(d, argv[2], (struct timespec[]){clock_deadline_after(10000)}, 0, &r);
    printf("%s: %s at T\n", argv[2], status_kind_name(r.status));
    status_result_free(&r);
    /* The idle domain is looked up by another process's engine (closed at
     * once, which writes its last use), not by this one: this engine's own
     * record of a use would rightly keep the row alive. */
    if (discover_open(cfg, 0, &idle, &err) != 0) {
        fprintf(stderr, "refresh: %s\n", err.msg);
        return 2;
    }
    discover_lookup(idle, argv[3], (struct timespec[]){clock_deadline_after(10000)}, 0, &r);
    printf("%s: %s at T\n", argv[3], status_kind_name(r.status));
    status_result_free(&r);
    discover_close(idle);
    /* The idle row was last used long ago: older than unused_ttl. */
    if (cache_get(c, argv[3], &e, &err) == CACHE_OK) {
        e.last_used = t0 - cfg->unused_ttl - 10;
        cache_put(c, &e, &err);
        /* cache_put never moves last_used back; delete and re-put does. */
        cache_delete(c, argv[3], &err);
        cache_put(c, &e, &err);
        cache_entry_free(&e);
    }
    later = t0 + cfg->check_interval + 5;
    __atomic_store_n(&fake_now, later, __ATOMIC_SEQ_CST);
    for (int i = 0; i < 100 && !(rechecked && purged); i++) {
        usleep(100000);
        if (cache_get(c, argv[2], &e, &err) == CACHE_OK) {
            rechecked = e.checked_at >= later;
            cache_entry_free(&e);
        }
        purged = cache_get(c, argv[3], &e, &err) == CACHE_NOT_FOUND;
        cache_entry_free(&e);
    }
    printf("%s: %s by the refresher\n", argv[2], rechecked ? "re-checked" : "NOT re-checked");
    printf("%s: %s\n", argv[3], purged ? "purged (unused)" : "NOT purged");
    cache_close(c);
    discover_close(d);
    config_unref(cfg);
    return rechecked && purged ? 0 : 1;
}
