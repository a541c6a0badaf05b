/*
 * probes_fleet - the probe engine's hooks into the fleet (fleet.h): a host
 * neither memory nor the shared cache has a live result for is asked of
 * Redis before it is probed, one milter of the fleet probes it while the
 * others wait for its rows, what a probe learns goes to Redis, and a
 * changed result (grade or DANE outcome) from another milter reaches
 * memory. A host's TLSA result too (with the fleet key only, fleet.h).
 * See probes_int.h.
 */
#include "probes_int.h"

#include <string.h>

#include "fleet_share.h"
#include "log.h"

/*
 * The longest a job can take before its rows are written: the addresses,
 * the TLSA records, and every address probed one after the other. A lock
 * lives that long, and the others wait that long for its rows.
 */
static int
job_bound_ms(const struct probes *p)
{
    return (int)(2 * p->cfg->dns_timeout_ms +
                 PROBECACHE_ADDR_MAX * p->cfg->probe_timeout_ms);
}

int
probes_fleet_open(struct probes *p, bool subscribe, struct mts_err *err)
{
    if (p->cache == NULL)
        return 0; /* like discover: no fleet without a cache */
    /* The process's fleet, discover's too (fleet_share.h). */
    if (fleet_share_get(p->cfg, &p->fleet, err) != 0)
        return -1;
    if (p->fleet != NULL && subscribe) {
        if (fleet_share_listen(p->fleet, probes_fleet_event, p, err) != 0)
            return -1;
        p->fleet_listening = true;
    }
    return 0;
}

void
probes_fleet_close(struct probes *p)
{
    if (p->fleet_listening)
        fleet_share_unlisten(p->fleet, probes_fleet_event, p);
    p->fleet_listening = false;
    fleet_share_put(p->fleet);
    p->fleet = NULL;
}

/* Rows read from Redis, as rows from the file: allowed addresses only,
 * copied to the file, summarised. */
static bool
take_rows(struct probes *p, struct job *j, size_t n)
{
    struct probecache_host sum;

    if ((j->n = probeconf_allowed_rows(&p->pc, j->rows, n)) == 0)
        return false;
    for (size_t i = 0; p->wq != NULL && i < j->n; i++)
        cachewq_put_probe(p->wq, &j->rows[i]);
    probecache_summarise(j->rows, j->n, &sum);
    probes_fill_host(&sum, &j->res);
    pthread_mutex_lock(&p->mu);
    p->stats.fleet_loads++;
    pthread_mutex_unlock(&p->mu);
    j->done = true;
    return true;
}

bool
probes_fleet_start(struct probes *p, const char *host, struct job *j)
{
    int port = (int)p->cfg->probe_port, bound = job_bound_ms(p);
    int64_t now = p->seam.now();
    size_t n;

    if (p->fleet == NULL)
        return false;
    if (fleet_get_probe(p->fleet, host, port, now, j->rows, &n) && take_rows(p, j, n))
        return true;
    /* Nobody has it: this milter probes, unless another holds the lock;
     * then its rows are awaited for as long as its job can take. */
    if (fleet_lock_probe(p->fleet, host, bound)) {
        j->fleet_locked = true;
        /* The holder may have written and let go between GET and lock. */
        return fleet_get_probe(p->fleet, host, port, now, j->rows, &n) && take_rows(p, j, n);
    }
    if (fleet_wait_probe(p->fleet, host, port, bound, p->seam.now, j->rows, &n) &&
        take_rows(p, j, n))
        return true;
    j->n = 0;
    return false;
}

void
probes_fleet_tlsa(struct probes *p, const char *host, const struct timespec *dl,
                  struct tlsa_set *t)
{
    int port = (int)p->cfg->probe_port;

    if (p->fleet != NULL && fleet_get_tlsa(p->fleet, host, port, p->seam.now(), t))
        return;
    p->seam.tlsa(p->seam.arg, host, port, dl, t);
    if (p->fleet != NULL)
        fleet_put_tlsa(p->fleet, host, port, t, p->seam.now());
}

void
probes_fleet_learnt(struct probes *p, struct entry *e, const struct job *j)
{
    struct shard *sh;
    bool changed;

    if (p->fleet == NULL)
        return;
    if (!j->probed) {
        /* Nothing probed (no address, not routable, from the file): not
         * shared; those waiting for our lock look for themselves. */
        if (j->fleet_locked)
            fleet_unlock_probe(p->fleet, e->host);
        return;
    }
    sh = probes_shard_of(p, probes_hash(e->host));
    pthread_rwlock_rdlock(&sh->lk);
    changed = e->have && (e->res.grade != j->res.grade || e->res.dane != j->res.dane);
    pthread_rwlock_unlock(&sh->lk);
    fleet_put_probe(p->fleet, j->rows, j->n, p->seam.now(), changed);
}

/* "probe HOST" from a milter of the fleet (this one too). */
void
probes_fleet_event(const char *kind, const char *name, void *arg)
{
    struct probes *p = arg;
    struct probecache_row rows[PROBECACHE_ADDR_MAX];
    struct probecache_host sum;
    struct probes_host res;
    unsigned h = probes_hash(name);
    struct shard *sh = probes_shard_of(p, h);
    struct entry *e;
    size_t n;
    bool have, newer = false;
    int64_t probed_at = 0;

    if (strcmp(kind, "probe") != 0)
        return;
    /* Only a host this milter uses is worth its memory. */
    pthread_rwlock_rdlock(&sh->lk);
    e = probes_find(sh, h, name);
    have = e != NULL && e->have;
    if (have)
        probed_at = e->res.probed_at;
    pthread_rwlock_unlock(&sh->lk);
    if (!have || !fleet_get_probe(p->fleet, name, (int)p->cfg->probe_port, p->seam.now(), rows,
                                  &n) ||
        (n = probeconf_allowed_rows(&p->pc, rows, n)) == 0)
        return;
    probecache_summarise(rows, n, &sum);
    probes_fill_host(&sum, &res);
    pthread_rwlock_wrlock(&sh->lk);
    /* The entry may have gone (evicted) while Redis answered. */
    e = probes_find(sh, h, name);
    if (e != NULL && e->have && res.probed_at >= probed_at &&
        (e->res.grade != res.grade || e->res.dane != res.dane)) {
        e->res = res;
        newer = true;
    }
    pthread_rwlock_unlock(&sh->lk);
    if (!newer)
        return;
    log_msg(LOG_INFO, "%s: probe result %s, DANE %s, from the fleet", name,
            tlsprobe_grade_name(res.grade), tlsa_dane_name(res.dane));
    for (size_t i = 0; p->wq != NULL && i < n; i++)
        cachewq_put_probe(p->wq, &rows[i]);
}
