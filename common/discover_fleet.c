/*
 * discover_fleet - discover's hooks into the fleet (fleet.h): a domain
 * neither memory nor SQLite holds is asked of Redis before DNS and HTTPS,
 * one host of the fleet fetches it while the others wait, what a host
 * learns goes to Redis, and news from the other hosts reaches memory. MX
 * sets the same way (discover_mx.c keeps and shares what it resolves).
 * See discover_int.h.
 */
#include <string.h>

#include "cachecopy.h"
#include "discover_int.h"
#include "fleet.h"
#include "log.h"

bool
discover_fleet_row(struct discover *d, const char *domain, int64_t now, struct cache_entry *e)
{
    int bound = discover_lookup_bound_ms(d->cfg);

    memset(e, 0, sizeof(*e));
    if (d->fleet == NULL)
        return false;
    if (fleet_get_row(d->fleet, domain, now, e))
        return true;
    /* Nobody has it: this host fetches, unless another holds the lock;
     * then its row is awaited for as long as its lookup can take. */
    if (fleet_lock(d->fleet, domain, bound))
        /* Its holder may have written the row and let the lock go
         * between our GET and our lock: look once more. */
        return fleet_get_row(d->fleet, domain, now, e);
    return fleet_wait_row(d->fleet, domain, bound, d->now, e);
}

bool
discover_fleet_mx(struct discover *d, const char *domain, int ms, int wait_ms,
                  struct cache_mxset *m)
{
    memset(m, 0, sizeof(*m));
    if (d->fleet == NULL)
        return false;
    if (fleet_get_mx(d->fleet, domain, d->now(), m))
        return true;
    /* As for a policy: one host resolves, the others wait for its set. */
    if (fleet_lock_mx(d->fleet, domain, ms > 0 ? ms : 1))
        return fleet_get_mx(d->fleet, domain, d->now(), m);
    return fleet_wait_mx(d->fleet, domain, wait_ms, d->now, m);
}

bool
discover_fleet_fresh(const struct discover *d, const struct cache_entry *e, int64_t now,
                     struct status_result *res)
{
    if (e->checked_at + d->cfg->check_interval <= now ||
        (e->has_policy && e->expires_at - d->cfg->refresh_margin <= now))
        return false;
    if (!refresh_status_from_row(e, now, res))
        return false;
    res->source = STATUS_FROM_FLEET;
    return true;
}

void
discover_fleet_learnt(struct discover *d, const struct cache_entry *before, bool had_row,
                      const struct cache_entry *e, const struct status_result *res, int64_t now)
{
    bool changed;

    if (d->fleet == NULL)
        return;
    /* A DNS failure here may be this host's resolver alone: not shared;
     * the hosts waiting for our lock look it up themselves. */
    if (res->status == STATUS_UNKNOWN && !e->has_policy) {
        fleet_unlock(d->fleet, e->domain);
        return;
    }
    changed = had_row && (strcmp(before->txt_id, e->txt_id) != 0 ||
                          before->has_status != e->has_status || before->status != e->status ||
                          before->has_policy != e->has_policy);
    fleet_put_row(d->fleet, e, now, changed);
}

/* "policy DOMAIN" from a host of the fleet (this one too). */
void
discover_fleet_event(const char *kind, const char *name, void *arg)
{
    struct discover *d = arg;
    struct cache_entry old, e;
    int64_t now = d->now();
    uint32_t gen;

    if (strcmp(kind, "policy") != 0 || d->hot == NULL)
        return;
    gen = cachecopy_gen(d->hot);
    /* Only what this host uses is worth its memory. */
    if (!cachecopy_get_row(d->hot, name, 0, &old))
        return;
    if (fleet_get_row(d->fleet, name, now, &e)) {
        /* Announced, and not older than ours: the change wins. Times are
         * whole seconds, so a change learnt in the second our row was
         * checked ties: ">" ignored it (test_fleet check 16, "never", in
         * CI's minimal system, where the test runs within one second). */
        bool changed = strcmp(e.txt_id, old.txt_id) != 0 || e.has_status != old.has_status ||
                       e.status != old.status;
        bool newer = changed && e.checked_at >= old.checked_at;
        if (newer) {
            log_msg(LOG_INFO, "%s: policy id %s from the fleet (was %s)", name, e.txt_id,
                    old.txt_id[0] != '\0' ? old.txt_id : "none");
            e.last_used = old.last_used;
            cachecopy_put_row(d->hot, &e, gen, 0, SHARDMAP_REPLACE);
            if (d->wq != NULL)
                cachewq_put_row(d->wq, &e);
        }
        cache_entry_free(&e);
    }
    cache_entry_free(&old);
}
