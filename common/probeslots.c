/*
 * probeslots - the probe slots of the whole process; see probeslots.h.
 */
#include "probeslots.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"

#define KEY_MAX 48 /* as probes_int.h NET_KEY_MAX */

struct net_slot {
    char key[KEY_MAX];
    int running;
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static int bound_total = 1, bound_net = 1;
static int running;
static struct net_slot *nets; /* networks with a probe running: running > 0 */
static size_t n_nets, cap_nets;

/* The watchers: a read lock while they are called, so none leaves under a call. */
static pthread_rwlock_t watch_lk = PTHREAD_RWLOCK_INITIALIZER;
static struct probeslots_watcher *watchers;

void
probeslots_configure(int total, int per_network)
{
    pthread_mutex_lock(&mu);
    bound_total = total > 0 ? total : 1;
    bound_net = per_network > 0 ? per_network : 1;
    pthread_mutex_unlock(&mu);
}

/* Under mu. */
static struct net_slot *
find(const char *key)
{
    for (size_t i = 0; i < n_nets; i++)
        if (strcmp(nets[i].key, key) == 0)
            return &nets[i];
    return NULL;
}

enum probeslots_take
probeslots_take(const char *key)
{
    struct net_slot *n;
    enum probeslots_take ok = PROBESLOTS_ALL_BUSY;

    pthread_mutex_lock(&mu);
    n = find(key);
    if (n != NULL && n->running >= bound_net) {
        ok = PROBESLOTS_NETWORK_BUSY;
        goto out;
    }
    if (running >= bound_total)
        goto out;
    if (n == NULL) {
        if (n_nets == cap_nets) {
            size_t nc = cap_nets ? 2 * cap_nets : 16;
            struct net_slot *g = realloc(nets, nc * sizeof(*g));

            if (g == NULL)
                goto out;
            nets = g;
            cap_nets = nc;
        }
        n = &nets[n_nets++];
        mts_text_copy(n->key, sizeof(n->key), key);
        n->running = 0;
    }
    n->running++;
    running++;
    ok = PROBESLOTS_OK;
out:
    pthread_mutex_unlock(&mu);
    return ok;
}

void
probeslots_give(const char *key)
{
    struct net_slot *n;

    pthread_mutex_lock(&mu);
    if ((n = find(key)) != NULL && n->running > 0) {
        running--;
        /* A network with nothing running leaves the table: the last one
         * takes its place. */
        if (--n->running == 0)
            *n = nets[--n_nets];
    }
    pthread_mutex_unlock(&mu);
}

void
probeslots_watch(struct probeslots_watcher *w)
{
    pthread_rwlock_wrlock(&watch_lk);
    w->next = watchers;
    watchers = w;
    pthread_rwlock_unlock(&watch_lk);
}

void
probeslots_unwatch(struct probeslots_watcher *w)
{
    pthread_rwlock_wrlock(&watch_lk);
    for (struct probeslots_watcher **pp = &watchers; *pp != NULL; pp = &(*pp)->next)
        if (*pp == w) {
            *pp = w->next;
            break;
        }
    pthread_rwlock_unlock(&watch_lk);
}

void
probeslots_notify(const char *key, const struct probeslots_watcher *self)
{
    pthread_rwlock_rdlock(&watch_lk);
    for (struct probeslots_watcher *w = watchers; w != NULL; w = w->next)
        if (w != self)
            w->wake(w->arg, key);
    pthread_rwlock_unlock(&watch_lk);
}

void
probeslots_counts(int *run, int *network_max)
{
    pthread_mutex_lock(&mu);
    *run = running;
    *network_max = 0;
    for (size_t i = 0; i < n_nets; i++)
        if (nets[i].running > *network_max)
            *network_max = nets[i].running;
    pthread_mutex_unlock(&mu);
}
