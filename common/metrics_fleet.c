/*
 * metrics_fleet - the fleet link's gauges; see metrics_fleet.h.
 *
 * Relaxed atomics: a link changes its own count under its mutex, the
 * scrape only loads. A scrape between two changes may see down_since of
 * an outage that just ended; the state it reads is the truth of the next.
 */
#include "metrics_fleet.h"

#include <stdint.h>
#include <time.h>

#define LOAD(x) __atomic_load_n(&(x), __ATOMIC_RELAXED)
#define STORE(x, v) __atomic_store_n(&(x), (v), __ATOMIC_RELAXED)
#define ADD(x, v) __atomic_add_fetch(&(x), (v), __ATOMIC_RELAXED)

static const char *const state_w[] = {"off", "up", "down"};

static struct {
    int64_t links;		/* configured links open */
    int64_t down;		/* of those, down */
    int64_t down_since;		/* wall-clock seconds; 0: up */
    int64_t retry_at;		/* wall-clock seconds */
    uint64_t refused;
} g;

void
metrics_fleet_link_open(void)
{
    ADD(g.links, 1);
}

void
metrics_fleet_link_down(bool was_down, int retry_in_ms)
{
    int64_t now = (int64_t)time(NULL);

    /* The first link down starts the outage. */
    if (!was_down && ADD(g.down, 1) == 1)
        STORE(g.down_since, now);
    STORE(g.retry_at, now + (retry_in_ms + 999) / 1000);
}

void
metrics_fleet_link_up(bool was_down)
{
    if (was_down && ADD(g.down, -1) == 0)
        STORE(g.down_since, 0);
}

void
metrics_fleet_link_close(bool was_down)
{
    metrics_fleet_link_up(was_down);
    ADD(g.links, -1);
}

void
metrics_fleet_refused(void)
{
    ADD(g.refused, 1);
}

enum metrics_fleet_state
metrics_fleet_state(void)
{
    if (LOAD(g.links) <= 0)
        return METRICS_FLEET_OFF;
    return LOAD(g.down) > 0 ? METRICS_FLEET_DOWN : METRICS_FLEET_UP;
}

void
metrics_fleet_render(FILE *f)
{
    enum metrics_fleet_state st = metrics_fleet_state();
    int64_t since = st == METRICS_FLEET_DOWN ? LOAD(g.down_since) : 0;
    int64_t retry = st == METRICS_FLEET_DOWN ? LOAD(g.retry_at) : 0;

    fprintf(f, "# HELP mtasts_fleet_link_state The fleet's Redis link: 1 for the current "
               "state (off, up, down: backing off).\n# TYPE mtasts_fleet_link_state gauge\n");
    for (size_t i = 0; i < METRICS_FLEET_STATES; i++)
        fprintf(f, "mtasts_fleet_link_state{state=\"%s\"} %d\n", state_w[i], (size_t)st == i);
    fprintf(f, "# HELP mtasts_fleet_link_down_since_seconds When the fleet link went down "
               "(Unix time; 0 when not down).\n# TYPE mtasts_fleet_link_down_since_seconds gauge\n"
               "mtasts_fleet_link_down_since_seconds %lld\n", (long long)since);
    fprintf(f, "# HELP mtasts_fleet_link_retry_at_seconds When the fleet link is tried again "
               "(Unix time; 0 when not down).\n# TYPE mtasts_fleet_link_retry_at_seconds gauge\n"
               "mtasts_fleet_link_retry_at_seconds %lld\n", (long long)retry);
    fprintf(f, "# HELP mtasts_fleet_values_refused_total Values read from Redis refused "
               "(bad HMAC, out of range, malformed).\n# TYPE mtasts_fleet_values_refused_total "
               "counter\nmtasts_fleet_values_refused_total %llu\n", (unsigned long long)LOAD(g.refused));
}
