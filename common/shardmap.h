/*
 * shardmap - a process's bounded in-memory copy of what its recipients
 * use: a map from a domain to an opaque value, split into shards.
 *
 * SYNOPSIS
 *	#include "shardmap.h"
 *
 *	struct shardmap *m = shardmap_new(cap, 0);      0: default shards
 *	uint32_t g = shardmap_gen(m);                   before reading the truth
 *	shardmap_put(m, "example.com", val, len, g, now, SHARDMAP_REPLACE);
 *	shardmap_merge(m, "example.com", g, now, merge_fn, arg);
 *	shardmap_get(m, "example.com", now, copy_fn, arg);
 *	shardmap_invalidate(m);                         the truth changed
 *	shardmap_take_used(m, fn, arg);                 last-use times to store
 *	shardmap_on_drop(m, fn, arg);                   values that leave the map
 *	shardmap_count(m);
 *	shardmap_stats(m, &st);                         memory held
 *	shardmap_free(m);
 *
 * DESCRIPTION
 *	At most cap entries (keys of at most SHARDMAP_KEY_MAX bytes, with
 *	their values). The keys hash into shards, each an open-addressing
 *	hash table with its own read-write lock, its entries packed in one
 *	arena (no allocation per entry; shardmap.c says why): readers take
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
 *	was read from the truth (shardmap_gen, taken before that read). An
 *	entry of an older generation is never returned. shardmap_invalidate
 *	starts a new generation, so everything read before it is dropped at
 *	once, without touching the shards. SHARDMAP_ADD does not replace an
 *	entry of the current generation: a reader filling from the shared
 *	cache never overwrites what a refresh wrote after that read.
 *
 *	Times are seconds, given by the caller, kept in 32 bits (an entry is
 *	small: there may be 100,000 of them; times after 2106 are kept as the
 *	last second of 2106). Each get records now as the entry's last use; shardmap_take_used hands every use not yet taken
 *	to a callback (with no lock held), for a batched write.
 *
 * DIAGNOSTICS
 *	shardmap_new returns NULL when out of memory; shardmap_put returns -1
 *	then, or for a key longer than SHARDMAP_KEY_MAX (the map is
 *	unchanged). Nothing else fails.
 */
#ifndef MTS_SHARDMAP_H
#define MTS_SHARDMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SHARDMAP_SHARDS 64
#define SHARDMAP_KEY_MAX 255 /* a domain name is at most 253 */

struct shardmap;

enum shardmap_put_mode {
    SHARDMAP_REPLACE, /* always store (a refresh's own result) */
    SHARDMAP_ADD      /* only if no entry of the current generation exists */
};

/* Copies the value out; runs under the shard's read lock, so must not call shardmap. */
typedef void (*shardmap_copy_fn)(const void *val, size_t len, void *arg);
typedef void (*shardmap_used_fn)(const char *key, int64_t used_at, void *arg);
/* A value leaving the map (replaced, evicted, deleted, or the map freed),
 * under its shard's write lock: so must not call shardmap. */
typedef void (*shardmap_drop_fn)(const void *val, size_t len, void *arg);

/* shards 0: SHARDMAP_SHARDS (never more than cap). */
struct shardmap *shardmap_new(size_t cap, size_t shards);
void shardmap_free(struct shardmap *m);
/* Set once, before the first put: lets values hold references (cachecopy's shared parts). */
void shardmap_on_drop(struct shardmap *m, shardmap_drop_fn fn, void *arg);

uint32_t shardmap_gen(struct shardmap *m);
void shardmap_invalidate(struct shardmap *m);

/* True (after fn ran) when key has an entry of the current generation. */
bool shardmap_get(struct shardmap *m, const char *key, int64_t now, shardmap_copy_fn fn,
                  void *arg);

/*
 * gen: shardmap_gen() from before the value was read (an older one stores
 * nothing); now: its last use (0: none). Values are at most SHARDMAP_VAL_MAX.
 */
#define SHARDMAP_VAL_MAX 4096
int shardmap_put(struct shardmap *m, const char *key, const void *val, size_t len, uint32_t gen,
                 int64_t now, enum shardmap_put_mode mode);

/*
 * The new value of key from its current one (old NULL when it has none of
 * this generation), built under the shard's write lock: fn returns its
 * length, or SHARDMAP_KEEP to leave the entry as it is, and writes it into
 * buf only when bufsz is at least that (it is called first with bufsz 0,
 * then with a buffer of the length it gave). fn must not call shardmap.
 * Returns 0, or -1 when out of memory or too long.
 */
#define SHARDMAP_KEEP ((size_t)-1)
typedef size_t (*shardmap_merge_fn)(const void *old, size_t oldlen, void *buf, size_t bufsz,
                                    void *arg);
int shardmap_merge(struct shardmap *m, const char *key, uint32_t gen, int64_t now,
                   shardmap_merge_fn fn, void *arg);

void shardmap_del(struct shardmap *m, const char *key);

/* Entries held, of any generation. */
size_t shardmap_count(struct shardmap *m);
/* The same without a lock (a moment old), for a caller that must not wait. */
size_t shardmap_count_relaxed(struct shardmap *m);

/* What the entries hold, for tests and the benchmark. */
struct shardmap_stats {
    size_t entries;
    size_t slots;       /* table slots (4 bytes each) */
    size_t arena_bytes; /* mapped for records */
    size_t live_bytes;  /* of which live records */
};
void shardmap_stats(struct shardmap *m, struct shardmap_stats *st);

/* Every last use not handed out before; returns how many. */
size_t shardmap_take_used(struct shardmap *m, shardmap_used_fn fn, void *arg);

#endif
