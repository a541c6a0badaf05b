/*
 * shardmap - the sharded, bounded in-memory map; see shardmap.h.
 *
 * DESCRIPTION
 *	No allocation per entry: with 100,000 entries, malloc's chunk header
 *	and 16-byte rounding, a bucket pointer and a chain pointer were
 *	~40 of the ~127 bytes an entry cost (make bench, issue 9). Each
 *	shard has
 *	  - a table of slots, open addressing with linear probing: a slot is
 *	    4 bytes, where its record is (in 4-byte units: an arena holds at
 *	    most ARENA_MAX bytes) and 8 bits of the key's hash, so that most
 *	    probes that do not match never touch a record; the table has
 *	    cap + cap/3 + 1 slots (never more than 3/4 full, and always one
 *	    empty, so a probe ends); a key's home slot is its 32-bit hash
 *	    scaled to the table (any size, not only powers of two: a power of
 *	    two above cap * 4/3 would often be twice that). A delete shifts
 *	    the entries that follow back (no tombstones to sweep), their
 *	    hashes computed again from their keys;
 *	  - an arena of records, one mapping of its own (so that its pages go
 *	    back to the kernel when it is rebuilt, not to a malloc arena of
 *	    whichever thread happened to grow it): a record is the entry's
 *	    header, key (no NUL) and value, 4-byte aligned, appended at the
 *	    end. A replaced or removed record is dead space; when the arena is
 *	    full it is rebuilt, live records only, into a new mapping with
 *	    room for 1/16 more.
 *	A read sets the record's "referenced" flag (a load, and an atomic or
 *	only when it was clear, so a hot entry's cache line is not written on
 *	every read). Eviction is CLOCK over the slots: a hand goes round
 *	them, clears the flag of each referenced entry it passes (a second
 *	chance) and evicts the first entry not referenced.
 */
#define _GNU_SOURCE /* pthread_rwlockattr_setkind_np */
#include "shardmap.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define F_REF 1u      /* read since the hand last passed */
#define F_USED_NEW 2u /* used_at not yet taken (shardmap_take_used) */

/* An entry in an arena; records are 4-byte aligned (the atomics). */
struct rec {
    _Atomic uint32_t used_at; /* last read (seconds, 32 bits: until 2106), 0: never */
    uint32_t gen;
    uint16_t vlen;
    uint8_t klen;
    _Atomic uint8_t flags;
    char data[]; /* key (no NUL), value */
};

#define REC_ALIGN 4u
#define KEY_MAX SHARDMAP_KEY_MAX

/* A slot: (its record's offset / REC_ALIGN + 1) << 8 | the key's hash tag; 0: empty. */
typedef uint32_t slot_t;
#define ARENA_MAX (((size_t)1 << 24) - 2) * REC_ALIGN /* what 24 bits of offset reach */
#define SLOT(off, tag) ((((uint32_t)(off) / REC_ALIGN + 1) << 8) | (tag))
#define SLOT_OFF(x) ((size_t)(((x) >> 8) - 1) * REC_ALIGN)
#define SLOT_TAG(x) ((x)&0xffu)

struct shard {
    pthread_rwlock_t lk;
    slot_t *slots;
    uint32_t n_slots;
    uint32_t hand; /* the next slot eviction looks at */
    size_t count, cap;
    char *arena; /* mmap'd, arena_size bytes (NULL: none yet) */
    size_t arena_size, used, dead;
};

struct shardmap {
    size_t n_shards;
    struct shard *shards;
    _Atomic uint32_t gen;
    shardmap_drop_fn drop;
    void *drop_arg;
    pthread_mutex_t take_mu; /* one shardmap_take_used at a time */
};

/* Seconds as kept in a record. */
static uint32_t
secs32(int64_t t)
{
    return t <= 0 ? 0 : t >= (int64_t)UINT32_MAX ? UINT32_MAX : (uint32_t)t;
}

static size_t
rec_size(size_t klen, size_t vlen)
{
    return (offsetof(struct rec, data) + klen + vlen + REC_ALIGN - 1) & ~(size_t)(REC_ALIGN - 1);
}

static struct rec *
rec_at(const struct shard *s, uint32_t i)
{
    return (struct rec *)(void *)(s->arena + SLOT_OFF(s->slots[i]));
}

#define VALUE(r) ((r)->data + (r)->klen)

/* The slot a hash belongs in: the hash scaled to the table. */
static uint32_t
home(const struct shard *s, uint32_t h)
{
    return (uint32_t)(((uint64_t)h * s->n_slots) >> 32);
}

static uint32_t
next(const struct shard *s, uint32_t i)
{
    return i + 1 == s->n_slots ? 0 : i + 1;
}

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

/* The bits of the hash that place a key in its shard's table. */
#define HASH32(h) ((uint32_t)(h))
#define TAG(h) ((uint32_t)((h) >> 32) & 0xffu)

/* The 32-bit hash of the key of the entry in slot i. */
static uint32_t
slot_hash(const struct shard *s, uint32_t i)
{
    const struct rec *r = rec_at(s, i);
    char k[KEY_MAX + 1];
    size_t l;

    memcpy(k, r->data, r->klen);
    k[r->klen] = '\0';
    return HASH32(hash_key(k, &l));
}

static struct shard *
shard_of(struct shardmap *m, uint64_t h)
{
    /* The high bits pick the shard, the low ones the slot. */
    return &m->shards[(h >> 40) % m->n_shards];
}

struct shardmap *
shardmap_new(size_t cap, size_t shards)
{
    struct shardmap *m;
    pthread_rwlockattr_t ra;

    if (cap == 0)
        cap = 1;
    if (shards == 0)
        shards = SHARDMAP_SHARDS;
    if (shards > cap)
        shards = cap;
    /* A shard's table is indexed by 32 bits. */
    if (cap / shards > UINT32_MAX / 2 || (m = calloc(1, sizeof(*m))) == NULL)
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

        /* Shard caps add up to at most cap. */
        s->cap = cap / shards + (i < cap % shards ? 1 : 0);
        s->n_slots = (uint32_t)(s->cap + s->cap / 3 + 1);
        pthread_rwlock_init(&s->lk, &ra);
        /* Untouched (calloc'd zero pages) until entries come. */
        if ((s->slots = calloc(s->n_slots, sizeof(*s->slots))) == NULL) {
            m->n_shards = i + 1;
            shardmap_free(m);
            pthread_rwlockattr_destroy(&ra);
            return NULL;
        }
    }
    pthread_rwlockattr_destroy(&ra);
    return m;
}

void
shardmap_on_drop(struct shardmap *m, shardmap_drop_fn fn, void *arg)
{
    m->drop = fn;
    m->drop_arg = arg;
}

/* Tells the owner that the value of the record in slot i leaves the map. */
static void
dropped(struct shardmap *m, struct shard *s, uint32_t i)
{
    if (m->drop != NULL) {
        struct rec *r = rec_at(s, i);

        m->drop(VALUE(r), r->vlen, m->drop_arg);
    }
}

void
shardmap_free(struct shardmap *m)
{
    if (m == NULL)
        return;
    for (size_t i = 0; i < m->n_shards; i++) {
        struct shard *s = &m->shards[i];

        for (uint32_t j = 0; s->slots != NULL && j < s->n_slots; j++)
            if (s->slots[j] != 0)
                dropped(m, s, j);
        if (s->arena != NULL)
            munmap(s->arena, s->arena_size);
        free(s->slots);
        pthread_rwlock_destroy(&s->lk);
    }
    pthread_mutex_destroy(&m->take_mu);
    free(m->shards);
    free(m);
}

uint32_t
shardmap_gen(struct shardmap *m)
{
    return atomic_load_explicit(&m->gen, memory_order_acquire);
}

void
shardmap_invalidate(struct shardmap *m)
{
    atomic_fetch_add_explicit(&m->gen, 1, memory_order_acq_rel);
}

#define NONE UINT32_MAX

/* The slot of key (hash h) in s, or NONE; the caller holds s->lk. */
static uint32_t
find(const struct shard *s, uint64_t h, const char *key, size_t klen)
{
    for (uint32_t i = home(s, HASH32(h)); s->slots[i] != 0; i = next(s, i)) {
        if (SLOT_TAG(s->slots[i]) == TAG(h)) {
            const struct rec *r = rec_at(s, i);

            if (r->klen == klen && memcmp(r->data, key, klen) == 0)
                return i;
        }
    }
    return NONE;
}

bool
shardmap_get(struct shardmap *m, const char *key, int64_t now, shardmap_copy_fn fn, void *arg)
{
    size_t klen;
    uint64_t h = hash_key(key, &klen);
    struct shard *s = shard_of(m, h);
    uint32_t i;
    bool hit = false;

    if (klen > KEY_MAX)
        return false;
    pthread_rwlock_rdlock(&s->lk);
    i = find(s, h, key, klen);
    if (i != NONE && rec_at(s, i)->gen == shardmap_gen(m)) {
        struct rec *r = rec_at(s, i);

        hit = true;
        if (!(atomic_load_explicit(&r->flags, memory_order_relaxed) & F_REF))
            atomic_fetch_or_explicit(&r->flags, F_REF, memory_order_relaxed);
        if (secs32(now) > atomic_load_explicit(&r->used_at, memory_order_relaxed)) {
            atomic_store_explicit(&r->used_at, secs32(now), memory_order_relaxed);
            atomic_fetch_or_explicit(&r->flags, F_USED_NEW, memory_order_relaxed);
        }
        fn(VALUE(r), r->vlen, arg);
    }
    pthread_rwlock_unlock(&s->lk);
    return hit;
}

/*
 * Empties slot i (its record becomes dead space), then shifts back each
 * entry that follows it in the probe run and may sit earlier (its home is
 * not cyclically in (i, j]), so no probe ever stops short of its key.
 * The caller holds the write lock and has called dropped().
 */
static void
remove_slot(struct shard *s, uint32_t i)
{
    const struct rec *r = rec_at(s, i);

    s->dead += rec_size(r->klen, r->vlen);
    __atomic_store_n(&s->count, s->count - 1, __ATOMIC_RELAXED); /* shardmap_count_relaxed */
    for (uint32_t j = next(s, i); s->slots[j] != 0; j = next(s, j)) {
        uint32_t k = home(s, slot_hash(s, j));

        if (i <= j ? (i < k && k <= j) : (i < k || k <= j))
            continue;
        s->slots[i] = s->slots[j];
        i = j;
    }
    s->slots[i] = 0;
}

/*
 * Makes room for one more entry (CLOCK): the hand clears the flags of the
 * referenced entries it passes and evicts the first one not referenced.
 * After two rounds every flag it passed is clear; an entry shifted back
 * behind it by a removal may be passed over once, so past two rounds it
 * takes whatever it finds.
 */
static void
evict_one(struct shardmap *m, struct shard *s)
{
    for (uint64_t steps = 0; s->count > 0; steps++) {
        uint32_t i = s->hand;
        struct rec *r;

        s->hand = next(s, i);
        if (s->slots[i] == 0)
            continue;
        r = rec_at(s, i);
        if (steps < 2 * (uint64_t)s->n_slots &&
            (atomic_load_explicit(&r->flags, memory_order_relaxed) & F_REF)) {
            atomic_fetch_and_explicit(&r->flags, (uint8_t)~F_REF, memory_order_relaxed);
            continue;
        }
        dropped(m, s, i);
        remove_slot(s, i);
        s->hand = i; /* what was shifted into it is looked at next */
        return;
    }
}

/*
 * Room for sz more bytes at the end of the arena: when it is full, a new
 * mapping with the live records only (in slot order) and 1/16 to spare;
 * the slots are updated, their indices do not change. -1 when out of
 * memory or past ARENA_MAX (the arena is as it was).
 */
static int
arena_room(struct shard *s, size_t sz)
{
    size_t live = s->used - s->dead, page = (size_t)sysconf(_SC_PAGESIZE), size, pos = 0;
    char *a;

    if (s->used + sz <= s->arena_size)
        return 0;
    if (live + sz > ARENA_MAX)
        return -1;
    size = live + sz + (live + sz) / 16;
    size = (size + page - 1) / page * page;
    a = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (a == MAP_FAILED)
        return -1;
    for (uint32_t i = 0; i < s->n_slots; i++) {
        const struct rec *r;
        size_t l;

        if (s->slots[i] == 0)
            continue;
        r = rec_at(s, i);
        l = rec_size(r->klen, r->vlen);
        memcpy(a + pos, r, l);
        s->slots[i] = SLOT(pos, SLOT_TAG(s->slots[i]));
        pos += l;
    }
    if (s->arena != NULL)
        munmap(s->arena, s->arena_size);
    s->arena = a;
    s->arena_size = size;
    s->used = pos;
    s->dead = 0;
    return 0;
}

int
shardmap_merge(struct shardmap *m, const char *key, uint32_t gen, int64_t now,
               shardmap_merge_fn fn, void *arg)
{
    size_t klen, len, oldlen = 0, sz;
    uint64_t h = hash_key(key, &klen);
    struct shard *s = shard_of(m, h);
    uint32_t oi, off;
    const void *oldval = NULL;
    struct rec *n;

    if (klen > KEY_MAX)
        return -1;
    pthread_rwlock_wrlock(&s->lk);
    /* A value read before the last invalidation is never stored. */
    if (gen != shardmap_gen(m)) {
        pthread_rwlock_unlock(&s->lk);
        return 0;
    }
    oi = find(s, h, key, klen);
    if (oi != NONE && rec_at(s, oi)->gen == gen) {
        oldval = VALUE(rec_at(s, oi));
        oldlen = rec_at(s, oi)->vlen;
    }
    /* Asked for the length first, so that the record is made to fit. */
    len = fn(oldval, oldlen, NULL, 0, arg);
    sz = rec_size(klen, len);
    if (len == SHARDMAP_KEEP || len > SHARDMAP_VAL_MAX || arena_room(s, sz) != 0 ||
        s->used + sz > ARENA_MAX) {
        pthread_rwlock_unlock(&s->lk);
        return len == SHARDMAP_KEEP ? 0 : -1;
    }
    if (oldval != NULL) /* the arena may have been rebuilt */
        oldval = VALUE(rec_at(s, oi));
    off = (uint32_t)s->used;
    s->used += sz;
    n = (struct rec *)(void *)(s->arena + off);
    memset(n, 0, offsetof(struct rec, data));
    n->gen = gen;
    n->klen = (uint8_t)klen;
    n->vlen = (uint16_t)len;
    memcpy(n->data, key, klen);
    atomic_init(&n->used_at, secs32(now));
    atomic_init(&n->flags, now > 0 ? F_USED_NEW : 0);
    (void)fn(oldval, oldlen, VALUE(n), len, arg);
    if (oi != NONE) {
        struct rec *old = rec_at(s, oi);
        uint32_t u = atomic_load_explicit(&old->used_at, memory_order_relaxed);

        /* The uses of the key carry over to its new value. */
        if (u > secs32(now))
            atomic_store_explicit(&n->used_at, u, memory_order_relaxed);
        atomic_fetch_or_explicit(&n->flags,
                                 atomic_load_explicit(&old->flags, memory_order_relaxed),
                                 memory_order_relaxed);
        dropped(m, s, oi);
        /* The new record takes the old one's slot. */
        s->dead += rec_size(old->klen, old->vlen);
        s->slots[oi] = SLOT(off, TAG(h));
    } else {
        uint32_t i;

        if (s->count >= s->cap)
            evict_one(m, s);
        for (i = home(s, HASH32(h)); s->slots[i] != 0; i = next(s, i))
            ;
        s->slots[i] = SLOT(off, TAG(h));
        __atomic_store_n(&s->count, s->count + 1, __ATOMIC_RELAXED);
    }
    pthread_rwlock_unlock(&s->lk);
    return 0;
}

struct put_arg {
    const void *val;
    size_t len;
    enum shardmap_put_mode mode;
};

static size_t
put_merge(const void *old, size_t oldlen, void *buf, size_t bufsz, void *arg)
{
    const struct put_arg *p = arg;

    (void)oldlen;
    if (old != NULL && p->mode == SHARDMAP_ADD)
        return SHARDMAP_KEEP;
    if (buf == NULL || p->len > bufsz)
        return p->len;
    memcpy(buf, p->val, p->len);
    return p->len;
}

int
shardmap_put(struct shardmap *m, const char *key, const void *val, size_t len, uint32_t gen,
             int64_t now, enum shardmap_put_mode mode)
{
    struct put_arg p = {val, len, mode};

    return shardmap_merge(m, key, gen, now, put_merge, &p);
}

void
shardmap_del(struct shardmap *m, const char *key)
{
    size_t klen;
    uint64_t h = hash_key(key, &klen);
    struct shard *s = shard_of(m, h);
    uint32_t i;

    if (klen > KEY_MAX)
        return;
    pthread_rwlock_wrlock(&s->lk);
    if ((i = find(s, h, key, klen)) != NONE) {
        dropped(m, s, i);
        remove_slot(s, i);
    }
    pthread_rwlock_unlock(&s->lk);
}

size_t
shardmap_count(struct shardmap *m)
{
    size_t total = 0;

    for (size_t i = 0; i < m->n_shards; i++) {
        pthread_rwlock_rdlock(&m->shards[i].lk);
        total += m->shards[i].count;
        pthread_rwlock_unlock(&m->shards[i].lk);
    }
    return total;
}

size_t
shardmap_count_relaxed(struct shardmap *m)
{
    size_t total = 0;

    /* Each shard's count is stored atomically under its write lock. */
    for (size_t i = 0; i < m->n_shards; i++)
        total += __atomic_load_n(&m->shards[i].count, __ATOMIC_RELAXED);
    return total;
}

void
shardmap_stats(struct shardmap *m, struct shardmap_stats *st)
{
    memset(st, 0, sizeof(*st));
    for (size_t i = 0; i < m->n_shards; i++) {
        struct shard *s = &m->shards[i];

        pthread_rwlock_rdlock(&s->lk);
        st->entries += s->count;
        st->slots += s->n_slots;
        st->arena_bytes += s->arena_size;
        st->live_bytes += s->used - s->dead;
        pthread_rwlock_unlock(&s->lk);
    }
}

struct used {
    int64_t at;
    char *key;
};

size_t
shardmap_take_used(struct shardmap *m, shardmap_used_fn fn, void *arg)
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
        for (uint32_t j = 0; u != NULL && j < s->n_slots; j++) {
            struct rec *x;

            if (s->slots[j] == 0)
                continue;
            x = rec_at(s, j);
            if (!(atomic_fetch_and_explicit(&x->flags, (uint8_t)~F_USED_NEW,
                                            memory_order_relaxed) &
                  F_USED_NEW))
                continue;
            if ((u[n].key = strndup(x->data, x->klen)) == NULL) {
                atomic_fetch_or_explicit(&x->flags, F_USED_NEW, memory_order_relaxed);
                continue;
            }
            u[n++].at = atomic_load_explicit(&x->used_at, memory_order_relaxed);
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
