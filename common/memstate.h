/*
 * memstate - a process's bounded in-memory copy of what its recipients
 * use: a map from a domain to an opaque value, split into shards.
 *
 * SYNOPSIS
 *	#include "memstate.h"
 *
 *	struct memstate *m = memstate_new(cap, 0);      0: default shards
 *	uint32_t g = memstate_gen(m);                   before reading the truth
 *	memstate_put(m, "example.com", val, len, g, now, MEMSTATE_REPLACE);
 *	memstate_merge(m, "example.com", g, now, merge_fn, arg);
 *	memstate_get(m, "example.com", now, copy_fn, arg);
 *	memstate_invalidate(m);                         the truth changed
 *	memstate_take_used(m, fn, arg);                 last-use times to store
 *	memstate_on_drop(m, fn, arg);                   values that leave the map
 *	memstate_count(m);
 *	memstate_stats(m, &st);                         memory held
 *	memstate_free(m);
 *
 * DESCRIPTION
 *	At most cap entries (keys of at most MEMSTATE_KEY_MAX bytes, with
 *	their values). The keys hash into shards, each an open-addressing
 *	hash table with its own read-write lock, its entries packed in one
 *	arena (no allocation per entry; memstate.c says why): readers take
 *	only their shard's lock for reading, so readers on different threads
 *	never wait for each other, and a writer holds one shard. A read marks
 *	its entry used with a relaxed atomic; when a shard is full, a put
 *	evicts an entry of that shard not read lately, by CLOCK (second
 *	chance), an approximation of LRU that needs no recency list: a hand
 *	goes round the shard's table, clearing the mark of each entry read
 *	since it last passed, and takes the first unmarked one. An entry read
 *	more often than the hand comes round is never evicted; one never read
 *	goes within a round.
 *
 *	Values are immutable: a put replaces the whole entry (a merge builds
 *	the new value from the old one under the write lock); a get copies
 *	the value out through a callback while holding the read lock.
 *
 *	Freshness: every entry carries the generation current when its value
 *	was read from the truth (memstate_gen, taken before that read). An
 *	entry of an older generation is never returned. memstate_invalidate
 *	starts a new generation, so everything read before it is dropped at
 *	once, without touching the shards. MEMSTATE_ADD does not replace an
 *	entry of the current generation: a reader filling from the shared
 *	cache never overwrites what a refresh wrote after that read.
 *
 *	Times are seconds, given by the caller, kept in 32 bits (an entry is
 *	small: there may be 100,000 of them; times after 2106 are kept as the
 *	last second of 2106). Each get records now as the entry's last use; memstate_take_used hands every use not yet taken
 *	to a callback (with no lock held), for a batched write.
 *
 * DIAGNOSTICS
 *	memstate_new returns NULL when out of memory; memstate_put returns -1
 *	then, or for a key longer than MEMSTATE_KEY_MAX (the map is
 *	unchanged). Nothing else fails.
 */
#ifndef MTS_MEMSTATE_H
#define MTS_MEMSTATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MEMSTATE_SHARDS 64
#define MEMSTATE_KEY_MAX 255 /* a domain name is at most 253 */

struct memstate;

enum memstate_put_mode {
    MEMSTATE_REPLACE, /* always store (a refresh's own result) */
    MEMSTATE_ADD      /* only if no entry of the current generation exists */
};

/* Copies the value out; runs under the shard's read lock, so must not call memstate. */
typedef void (*memstate_copy_fn)(const void *val, size_t len, void *arg);
typedef void (*memstate_used_fn)(const char *key, int64_t used_at, void *arg);
/* A value leaving the map (replaced, evicted, deleted, or the map freed),
 * under its shard's write lock: so must not call memstate. */
typedef void (*memstate_drop_fn)(const void *val, size_t len, void *arg);

/* shards 0: MEMSTATE_SHARDS (never more than cap). */
struct memstate *memstate_new(size_t cap, size_t shards);
void memstate_free(struct memstate *m);
/* Set once, before the first put: lets values hold references (hotstate's shared parts). */
void memstate_on_drop(struct memstate *m, memstate_drop_fn fn, void *arg);

uint32_t memstate_gen(struct memstate *m);
void memstate_invalidate(struct memstate *m);

/* True (after fn ran) when key has an entry of the current generation. */
bool memstate_get(struct memstate *m, const char *key, int64_t now, memstate_copy_fn fn,
                  void *arg);

/*
 * gen: memstate_gen() from before the value was read (an older one stores
 * nothing); now: its last use (0: none). Values are at most MEMSTATE_VAL_MAX.
 */
#define MEMSTATE_VAL_MAX 4096
int memstate_put(struct memstate *m, const char *key, const void *val, size_t len, uint32_t gen,
                 int64_t now, enum memstate_put_mode mode);

/*
 * The new value of key from its current one (old NULL when it has none of
 * this generation), built under the shard's write lock: fn returns its
 * length, or MEMSTATE_KEEP to leave the entry as it is, and writes it into
 * buf only when bufsz is at least that (it is called first with bufsz 0,
 * then with a buffer of the length it gave). fn must not call memstate.
 * Returns 0, or -1 when out of memory or too long.
 */
#define MEMSTATE_KEEP ((size_t)-1)
typedef size_t (*memstate_merge_fn)(const void *old, size_t oldlen, void *buf, size_t bufsz,
                                    void *arg);
int memstate_merge(struct memstate *m, const char *key, uint32_t gen, int64_t now,
                   memstate_merge_fn fn, void *arg);

void memstate_del(struct memstate *m, const char *key);

/* Entries held, of any generation. */
size_t memstate_count(struct memstate *m);

/* What the entries hold, for tests and the benchmark. */
struct memstate_stats {
    size_t entries;
    size_t slots;       /* table slots (4 bytes each) */
    size_t arena_bytes; /* mapped for records */
    size_t live_bytes;  /* of which live records */
};
void memstate_stats(struct memstate *m, struct memstate_stats *st);

/* Every last use not handed out before; returns how many. */
size_t memstate_take_used(struct memstate *m, memstate_used_fn fn, void *arg);

#endif
