/*
 * probes_int - what probes.c and probes_sync.c share: the engine's
 * structures and the table's helpers. Not an interface: include only
 * from probes*.c. Locks: see probes.c.
 */
#ifndef MTS_PROBES_INT_H
#define MTS_PROBES_INT_H

#include <pthread.h>
#include <stdatomic.h>

#include "cache.h"
#include "cachewq.h"
#include "dns.h"
#include "lookupq.h"
#include "probeconf.h"
#include "probeslots.h"
#include "tlsa.h"
#include "probes.h"

#define N_SHARDS 16
#define SHARD_BUCKETS 256
#define NET_KEY_MAX 48
#define SYNC_MAX 10000 /* hosts re-read from the shared cache in one refresh round */

enum entry_state { E_IDLE, E_QUEUED, E_RUNNING };

/* The queue's lanes, served in this order. */
enum probes_lane {
    LANE_FIRST,   /* no live result and an RCPT asked: somebody may wait */
    LANE_REFRESH, /* the refresher's: a result near its end, newer rows */
    LANES
};

struct entry {
    char host[TLSPROBE_HOST_MAX + 1]; /* never changes */
    _Atomic int state;         /* enum entry_state; changed under mu */
    bool have;                 /* res holds a result; under the shard lock */
    struct probes_host res;    /* under the shard lock */
    _Atomic int64_t last_used;
    struct entry *next;        /* hash chain; under the shard lock */
    struct entry *qprev, *qnext; /* queue; under mu */
    int lane;                  /* enum probes_lane: queued in, or back to after parking */
    int64_t queued_us;         /* first queued (metrics_clock_us); under mu */
    struct job *job;           /* while E_RUNNING: the job, also while parked */
    char park_key[NET_KEY_MAX]; /* parked: the network it waits for; under mu */
    char *ch_sender;           /* the job is charged to (lookupq_cap); under mu */
    uint64_t ch_conn;
    bool charged;              /* under mu */
};

struct shard {
    pthread_rwlock_t lk;
    struct entry *buckets[SHARD_BUCKETS];
    size_t n;
};

struct probes {
    const struct config *cfg;
    struct probes_seam seam;
    struct cache *cache;
    struct cachewq *wq;        /* with a cache: its writes, off the workers (cachewq.h) */
    struct dns *dns;
    struct probeconf pc;       /* the probe options (probeconf.h) */
    pthread_mutex_t mu;
    pthread_cond_t work_cv, idle_cv, refresher_cv;
    pthread_cond_t done_cv;    /* a job stored its result (probes_wait) */
    uint64_t done_gen;         /* jobs finished; under mu */
    struct lookupq_cap *cap;     /* probes_per_sender/_connection; NULL: none; under mu */
    struct shard shards[N_SHARDS];
    size_t max_per_shard;
    struct {
        struct entry *head, *tail;
        size_t n;                /* entries in the lane; under mu */
    } q[LANES];
    struct entry *parked, *parked_tail; /* jobs waiting for a slot of their network */
    int busy;                  /* jobs running */
    int running;               /* probes running */
    struct probeslots_watcher slots_watch; /* woken when another engine frees a slot */
    bool watching;             /* slots_watch is registered */
    int64_t data_version;     /* of the shared cache, at the last sync */
    int64_t synced_at;        /* when rows were last looked for */
    bool stop;
    int refs;                 /* probes_share; the last probes_close closes */
    bool load_on_miss;        /* probes_load_on_miss */
    struct fleet *fleet;      /* with fleet_redis and a cache: the process's (fleet_share.h) */
    bool fleet_listening;     /* probes_fleet_event is one of its listeners */
    struct probes_stats stats;
    pthread_t *workers;
    int n_workers;
    pthread_t refresher;
    bool have_refresher;
};

/* One host's job: its addresses, the rows probed so far. Owned by the
 * worker running it, or by its entry while parked. */
struct job {
    char addrs[PROBECACHE_ADDR_MAX][PROBECACHE_ADDRESS_MAX];
    struct tlsa_set *tlsa;     /* the host's TLSA records (RFC 7672), NULL: none looked up */
    struct probecache_row rows[PROBECACHE_ADDR_MAX];
    int n_addr, next;          /* next: the address to probe next */
    size_t n;                  /* rows */
    struct probes_host res;    /* when done */
    bool done;
    bool probed;               /* rows[] come from probes run by this job */
    bool fleet_locked;         /* this milter holds the host's probe lock */
};

/* probes_job.c: the job's start (the shared cache's live rows, else the
 * addresses) and its probes; probes_job_run returns false when the job
 * was parked on a busy network (under mu), true when it is done. */
void probes_job_start(struct probes *p, const char *host, struct job *j);
bool probes_job_run(struct probes *p, struct entry *e, struct job *j);
void probes_fill_host(const struct probecache_host *sum, struct probes_host *res);
/* Under mu: the jobs parked on network key (or on any slot) go back to their lanes. */
void probes_unpark(struct probes *p, const char *key);
/* The real seam: DNS (p->dns), tlsprobe, time(). */
int probes_real_resolve(void *arg, const char *host, const struct timespec *deadline,
                        char addrs[][PROBECACHE_ADDRESS_MAX], size_t max, struct mts_err *err);
void probes_real_tlsa(void *arg, const char *host, int port, const struct timespec *dl,
                      struct tlsa_set *out);
void probes_real_probe(void *arg, const char *host, const char *address, int port,
                       const struct tlsa_set *tlsa, const struct timespec *deadline,
                       struct tlsprobe_result *out);
/* Frees a job and what it holds. Safe with NULL. */
void probes_job_free(struct job *j);
int64_t probes_real_now(void);

unsigned probes_hash(const char *s);
struct shard *probes_shard_of(struct probes *p, unsigned h);
/* Under the shard's lock (read or write). */
struct entry *probes_find(struct shard *s, unsigned h, const char *host);
/* Under e's shard's write lock; takes mu. An entry queued in a later
 * lane moves up to lane; one running is left alone. A new job is charged
 * to sender and conn (NULL, 0: nobody); false when a cap refuses it. */
/* Under mu: a lane's depth and its head's wait, published for a scrape. */
void probes_publish_lane(struct probes *p, int lane);
bool probes_enqueue(struct probes *p, struct entry *e, enum probes_lane lane,
                    const char *sender, uint64_t conn);
/* The live rows of host from the shared cache into its entry. */
void probes_load_now(struct probes *p, const char *host, int64_t now);
/* At open: the live rows of the shared cache into memory. */
void probes_preload(struct probes *p);
/* probes_fleet.c: the fleet's hooks. probes_fleet_open: the fleet, with a
 * cache and fleet_redis (subscribe: news from the others). probes_fleet_start:
 * true when Redis had the host's rows (j done), else the job probes
 * (j->fleet_locked when ours is the lock). probes_fleet_learnt: a job's
 * end (its rows to Redis, or the lock's release). probes_fleet_event: the
 * subscriber's callback (fleet.h). probes_fleet_close: no more news, and
 * this engine's reference let go. */
int probes_fleet_open(struct probes *p, bool subscribe, struct mts_err *err);
void probes_fleet_close(struct probes *p);
bool probes_fleet_start(struct probes *p, const char *host, struct job *j);
/* host's TLSA result: from the fleet, else p->seam.tlsa (and shared). */
void probes_fleet_tlsa(struct probes *p, const char *host, const struct timespec *dl,
                       struct tlsa_set *t);
void probes_fleet_learnt(struct probes *p, struct entry *e, const struct job *j);
void probes_fleet_event(const char *kind, const char *name, void *arg);
/* The refresher thread's body. */
void *probes_refresher(void *arg);

#endif
