/*
 * memstate - the sharded, bounded in-memory map; see memstate.h.
 *
 * DESCRIPTION
 *	Each entry is one allocation: the node, its key and its value. A
 *	shard's nodes are chained in its hash buckets, and nowhere else: no
 *	recency list, whose two pointers were 16 bytes of every entry. A read
 *	sets the node's "referenced" flag (a load, and a store only when it
 *	was clear, so a hot entry's cache line is not written on every read).
 *	Eviction is CLOCK over the buckets: a hand goes round them, clears
 *	the flag of each referenced node it passes (a second chance), and
 *	evicts the oldest unreferenced node of the first bucket that has one
 *	(new nodes go to the front of their bucket's chain).
 */
#define _GNU_SOURCE /* pthread_rwlockattr_setkind_np */
#include "memstate.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

/* Small: there is one for every domain a process keeps (allocated to
 * offsetof(data), without the struct's tail padding). */
struct node {
    struct node *hnext;          /* in its bucket (front: newest) */
    _Atomic uint32_t used_at;    /* last read (seconds, 32 bits: until 2106), 0: never */
    uint32_t hash;               /* low half of the key's hash */
    uint32_t gen;
    uint16_t klen, vlen;
    atomic_bool ref;             /* read since it was (re)queued */
    atomic_bool used_new;        /* used_at not yet taken (memstate_take_used) */
    char data[];                 /* key, NUL, value */
};

#define VALUE(n) ((n)->data + (n)->klen + 1)

/* Seconds as kept in a node. */
static uint32_t
secs32(int64_t t)
{
    return t <= 0 ? 0 : t >= (int64_t)UINT32_MAX ? UINT32_MAX : (uint32_t)t;
}

struct shard {
    pthread_rwlock_t lk;
    struct node **buckets;
    size_t mask, count, cap;
    size_t hand;                 /* the next bucket eviction looks at */
};

struct memstate {
    size_t n_shards;
    struct shard *shards;
    _Atomic uint32_t gen;
    pthread_mutex_t take_mu;     /* one memstate_take_used at a time */
};

/* FNV-1a, 64 bits. */
static uint64_t
hash_key(const char *k, size_t *len)
{
    uint64_t h = 1469598103934665603ULL;
    const char *p = k;

    for (; *p; p++) {
        h ^= (unsigned char)*p;
        h *= 1099511628211ULL;
    }
    *len = (size_t)(p - k);
    return h;
}

static struct shard *
shard_of(struct memstate *m, uint64_t h)
{
    /* The high bits pick the shard, the low bits the bucket. */
    return &m->shards[(h >> 40) % m->n_shards];
}

struct memstate *
memstate_new(size_t cap, size_t shards)
{
    struct memstate *m;
    pthread_rwlockattr_t ra;

    if (cap == 0)
        cap = 1;
    if (shards == 0)
        shards = MEMSTATE_SHARDS;
    if (shards > cap)
        shards = cap;
    if ((m = calloc(1, sizeof(*m))) == NULL)
        return NULL;
    if ((m->shards = calloc(shards, sizeof(*m->shards))) == NULL) {
        free(m);
        return NULL;
    }
    m->n_shards = shards;
    pthread_mutex_init(&m->take_mu, NULL);
    pthread_rwlockattr_init(&ra);
    /* Writers (puts) must not starve under a steady stream of readers. */
    pthread_rwlockattr_setkind_np(&ra, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    for (size_t i = 0; i < shards; i++) {
        struct shard *s = &m->shards[i];
        size_t nb = 16;

        /* Shard caps add up to at most cap. */
        s->cap = cap / shards + (i < cap % shards ? 1 : 0);
        while (nb < s->cap)
            nb <<= 1;
        s->mask = nb - 1;
        pthread_rwlock_init(&s->lk, &ra);
        if ((s->buckets = calloc(nb, sizeof(*s->buckets))) == NULL) {
            m->n_shards = i + 1;
            memstate_free(m);
            pthread_rwlockattr_destroy(&ra);
            return NULL;
        }
    }
    pthread_rwlockattr_destroy(&ra);
    return m;
}

void
memstate_free(struct memstate *m)
{
    if (m == NULL)
        return;
    for (size_t i = 0; i < m->n_shards; i++) {
        struct shard *s = &m->shards[i];

        for (size_t b = 0; s->buckets != NULL && b <= s->mask; b++) {
            for (struct node *n = s->buckets[b], *nx; n != NULL; n = nx) {
                nx = n->hnext;
                free(n);
            }
        }
        free(s->buckets);
        pthread_rwlock_destroy(&s->lk);
    }
    pthread_mutex_destroy(&m->take_mu);
    free(m->shards);
    free(m);
}

uint32_t
memstate_gen(struct memstate *m)
{
    return atomic_load_explicit(&m->gen, memory_order_acquire);
}

void
memstate_invalidate(struct memstate *m)
{
    atomic_fetch_add_explicit(&m->gen, 1, memory_order_acq_rel);
}

/* The node of key in s, or NULL; the caller holds s->lk. */
static struct node *
find(struct shard *s, uint32_t h, const char *key, size_t klen)
{
    for (struct node *n = s->buckets[h & s->mask]; n != NULL; n = n->hnext)
        if (n->hash == h && n->klen == klen && memcmp(n->data, key, klen) == 0)
            return n;
    return NULL;
}

bool
memstate_get(struct memstate *m, const char *key, int64_t now, memstate_copy_fn fn, void *arg)
{
    size_t klen;
    uint64_t h = hash_key(key, &klen);
    struct shard *s = shard_of(m, h);
    struct node *n;
    bool hit = false;

    pthread_rwlock_rdlock(&s->lk);
    n = find(s, (uint32_t)h, key, klen);
    if (n != NULL && n->gen == memstate_gen(m)) {
        hit = true;
        if (!atomic_load_explicit(&n->ref, memory_order_relaxed))
            atomic_store_explicit(&n->ref, true, memory_order_relaxed);
        if (secs32(now) > atomic_load_explicit(&n->used_at, memory_order_relaxed)) {
            atomic_store_explicit(&n->used_at, secs32(now), memory_order_relaxed);
            atomic_store_explicit(&n->used_new, true, memory_order_relaxed);
        }
        fn(VALUE(n), n->vlen, arg);
    }
    pthread_rwlock_unlock(&s->lk);
    return hit;
}

/* Unlinks n from its bucket and frees it; the caller holds the write lock. */
static void
remove_node(struct shard *s, struct node *n)
{
    struct node **pp = &s->buckets[n->hash & s->mask];

    while (*pp != n)
        pp = &(*pp)->hnext;
    *pp = n->hnext;
    s->count--;
    free(n);
}

/*
 * Makes room for one more node (CLOCK): the hand clears the flags of the
 * referenced nodes it passes and evicts, in the first bucket that has
 * one, the oldest node not referenced; then it moves on. It ends: a
 * bucket it passes without evicting has no flag left set.
 */
static void
evict_one(struct shard *s)
{
    for (size_t steps = 0; s->count > 0 && steps <= 2 * (s->mask + 1); steps++) {
        struct node *victim = NULL;
        size_t b = s->hand;

        s->hand = (s->hand + 1) & s->mask;
        for (struct node *n = s->buckets[b]; n != NULL; n = n->hnext) {
            if (atomic_load_explicit(&n->ref, memory_order_relaxed))
                atomic_store_explicit(&n->ref, false, memory_order_relaxed);
            else
                victim = n; /* the last one found is the oldest */
        }
        if (victim != NULL) {
            remove_node(s, victim);
            return;
        }
    }
}

int
memstate_merge(struct memstate *m, const char *key, uint32_t gen, int64_t now,
               memstate_merge_fn fn, void *arg)
{
    size_t klen, len, oldlen = 0;
    uint64_t h = hash_key(key, &klen);
    struct shard *s = shard_of(m, h);
    struct node *n, *old;
    const void *oldval = NULL;

    if (klen > UINT16_MAX)
        return -1;
    pthread_rwlock_wrlock(&s->lk);
    /* A value read before the last invalidation is never stored. */
    if (gen != memstate_gen(m)) {
        pthread_rwlock_unlock(&s->lk);
        return 0;
    }
    old = find(s, (uint32_t)h, key, klen);
    if (old != NULL && old->gen == gen) {
        oldval = VALUE(old);
        oldlen = old->vlen;
    }
    /* Asked for the length first, so that the node is allocated to fit. */
    len = fn(oldval, oldlen, NULL, 0, arg);
    if (len == MEMSTATE_KEEP || len > MEMSTATE_VAL_MAX ||
        (n = malloc(offsetof(struct node, data) + klen + 1 + len)) == NULL) {
        pthread_rwlock_unlock(&s->lk);
        return len == MEMSTATE_KEEP ? 0 : -1;
    }
    memset(n, 0, offsetof(struct node, data));
    n->hash = (uint32_t)h;
    n->gen = gen;
    n->klen = (uint16_t)klen;
    n->vlen = (uint16_t)len;
    memcpy(n->data, key, klen + 1);
    atomic_init(&n->ref, false);
    atomic_init(&n->used_at, secs32(now));
    atomic_init(&n->used_new, now > 0);
    (void)fn(oldval, oldlen, VALUE(n), len, arg);
    if (old != NULL) {
        uint32_t u = atomic_load_explicit(&old->used_at, memory_order_relaxed);

        /* The uses of the key carry over to its new value. */
        if (u > secs32(now))
            atomic_store_explicit(&n->used_at, u, memory_order_relaxed);
        if (atomic_load_explicit(&old->used_new, memory_order_relaxed))
            atomic_store_explicit(&n->used_new, true, memory_order_relaxed);
        if (atomic_load_explicit(&old->ref, memory_order_relaxed))
            atomic_store_explicit(&n->ref, true, memory_order_relaxed);
        remove_node(s, old);
    }
    if (s->count >= s->cap)
        evict_one(s);
    n->hnext = s->buckets[h & s->mask];
    s->buckets[h & s->mask] = n;
    s->count++;
    pthread_rwlock_unlock(&s->lk);
    return 0;
}

struct put_arg {
    const void *val;
    size_t len;
    enum memstate_put_mode mode;
};

static size_t
put_merge(const void *old, size_t oldlen, void *buf, size_t bufsz, void *arg)
{
    const struct put_arg *p = arg;

    (void)oldlen;
    if (old != NULL && p->mode == MEMSTATE_ADD)
        return MEMSTATE_KEEP;
    if (buf == NULL || p->len > bufsz)
        return p->len;
    memcpy(buf, p->val, p->len);
    return p->len;
}

int
memstate_put(struct memstate *m, const char *key, const void *val, size_t len, uint32_t gen,
             int64_t now, enum memstate_put_mode mode)
{
    struct put_arg p = {val, len, mode};

    return memstate_merge(m, key, gen, now, put_merge, &p);
}

void
memstate_del(struct memstate *m, const char *key)
{
    size_t klen;
    uint64_t h = hash_key(key, &klen);
    struct shard *s = shard_of(m, h);
    struct node *n;

    pthread_rwlock_wrlock(&s->lk);
    if ((n = find(s, (uint32_t)h, key, klen)) != NULL)
        remove_node(s, n);
    pthread_rwlock_unlock(&s->lk);
}

size_t
memstate_count(struct memstate *m)
{
    size_t total = 0;

    for (size_t i = 0; i < m->n_shards; i++) {
        pthread_rwlock_rdlock(&m->shards[i].lk);
        total += m->shards[i].count;
        pthread_rwlock_unlock(&m->shards[i].lk);
    }
    return total;
}

struct used {
    int64_t at;
    char *key;
};

size_t
memstate_take_used(struct memstate *m, memstate_used_fn fn, void *arg)
{
    size_t total = 0;

    pthread_mutex_lock(&m->take_mu);
    for (size_t i = 0; i < m->n_shards; i++) {
        struct shard *s = &m->shards[i];
        struct used *u = NULL;
        size_t n = 0;

        /* Copied out under the read lock; the callback runs without it. */
        pthread_rwlock_rdlock(&s->lk);
        if (s->count > 0)
            u = malloc(s->count * sizeof(*u));
        for (size_t b = 0; u != NULL && b <= s->mask; b++) {
            for (struct node *x = s->buckets[b]; x != NULL; x = x->hnext) {
                if (!atomic_exchange_explicit(&x->used_new, false, memory_order_relaxed))
                    continue;
                if ((u[n].key = strdup(x->data)) == NULL) {
                    atomic_store_explicit(&x->used_new, true, memory_order_relaxed);
                    continue;
                }
                u[n++].at = atomic_load_explicit(&x->used_at, memory_order_relaxed);
            }
        }
        pthread_rwlock_unlock(&s->lk);
        for (size_t k = 0; k < n; k++) {
            fn(u[k].key, u[k].at, arg);
            free(u[k].key);
        }
        free(u);
        total += n;
    }
    pthread_mutex_unlock(&m->take_mu);
    return total;
}
