/*
 * cachecopy - a process's in-memory copy of the rows and MX sets it uses;
 * see cachecopy.h.
 *
 * DESCRIPTION
 *	One shardmap entry a domain holds both its row and its MX set:
 *	the length of the row part (one byte, 0: none), the row part, then
 *	the MX part (empty: none); a put of one part keeps the other
 *	(shardmap_merge). Only what a verdict and the refresh schedule read
 *	is kept: no policy text, no fetch back-off (the refresh reads the
 *	whole row from the database anyway).
 *
 *	Compact, since a process keeps up to memory_cache_domains of them.
 *	What is the domain's own stays in its entry: its times (32-bit
 *	seconds; a time outside 0 .. 2^32-1 keeps the domain out of memory,
 *	so its reads go to the database) and the policy's id. The rest is
 *	shared: a part's "shape" (for a row: mode, max_age, status, DNSSEC
 *	state, last error and the policy's MX patterns; for an MX set: its
 *	hosts) is interned, one copy for all the domains whose shape is the
 *	same, and the entry holds its 4-byte id. Many are the same: a name
 *	or pattern that ends in the domain itself ("mx1.example.com",
 *	"*.example.com" for example.com) is kept without that suffix (its
 *	place is marked by SUFFIX, a byte no DNS name or pattern holds), and
 *	domains hosted by one provider share its MX hosts and patterns.
 *
 *	A shape lives while entries point to it: a reference count, changed
 *	only under the interning table's mutex, which only puts take (and
 *	shardmap's drop callback, under a shard's write lock: the order is
 *	always shard, then table). A read looks the id up (a table of
 *	chunks allocated once, never moved) under its shard's read lock
 *	only: the entry it reads holds a reference, and cannot go while that
 *	lock is held, so neither can the shape nor its id. A freed id is
 *	given to the next new shape.
 */
#include "cachecopy.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "metrics.h"
#include "metrics_now.h"
#include "mxmatch.h"

#define VAL_MAX 2048 /* a bigger part is simply not kept in memory */
#define SHAPE_CHUNK 1024u
#define SHAPE_CHUNKS 16384u /* ids below 16M: past that, domains stay out of memory */

struct cachecopy {
    struct shardmap *map;
    struct cache *cache;
    _Atomic int64_t next_check_ms; /* monotonic: when data_version is read next */
    int64_t seen_version;          /* under check_mu */
    pthread_mutex_t check_mu;
    pthread_mutex_t shape_mu; /* the shapes' table, ids and reference counts */
    struct shape **shapes;    /* hash buckets */
    size_t n_buckets, n_shapes;
    /* id -> shape, in chunks allocated once: read without the mutex */
    struct shape **ids[SHAPE_CHUNKS];
    uint32_t next_id; /* the lowest id never handed out (0: none) */
    uint32_t *free_ids;
    size_t n_free, free_cap;
};

/* A shared part of entries (see DESCRIPTION). */
struct shape {
    struct shape *next; /* in its bucket of the table */
    uint32_t id;        /* what entries hold: 4 bytes, not a pointer's 8 */
    uint32_t refs;      /* entries pointing to it (and puts under way) */
    uint32_t hash;
    uint16_t len;
    char data[]; /* row: struct row_shape, strings; MX: count, dnssec code, names */
};

/* Packed: copied with memcpy. */
struct row_fix {
    uint32_t fetched_at, expires_at, checked_at;
    uint32_t shape;
    /* then txt_id and its NUL */
} __attribute__((packed));

struct row_shape {
    uint32_t max_age;
    uint8_t has_policy, mode, has_status, status;
    uint16_t n_mx;
    /* then dnssec, last_error, source, the MX patterns */
} __attribute__((packed));

struct mx_fix {
    uint32_t fetched_at, expires_at;
    uint32_t shape; /* the count (one byte), the dnssec code (one byte), then the hosts */
} __attribute__((packed));

static void on_drop(const void *val, size_t len, void *arg);

#define SUFFIX '\001' /* "." and the domain (or the domain alone, at the start) */

/* Does the time t fit in 32-bit seconds? */
static bool
fits32(int64_t t)
{
    return t >= 0 && t <= (int64_t)UINT32_MAX;
}

static int64_t
mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct cachecopy *
cachecopy_new(size_t cap, struct cache *cache, struct mts_err *err)
{
    struct cachecopy *h = calloc(1, sizeof(*h));

    if (h == NULL || (h->map = shardmap_new(cap, 0)) == NULL) {
        free(h);
        mts_err_set(err, "cannot set up the in-memory cache: out of memory");
        return NULL;
    }
    h->cache = cache;
    pthread_mutex_init(&h->check_mu, NULL);
    pthread_mutex_init(&h->shape_mu, NULL);
    shardmap_on_drop(h->map, on_drop, h);
    if (cache_data_version(cache, &h->seen_version, err) != CACHE_OK) {
        cachecopy_free(h);
        return NULL;
    }
    atomic_init(&h->next_check_ms, mono_ms() + CACHECOPY_RECHECK_MS);
    return h;
}

void
cachecopy_free(struct cachecopy *h)
{
    if (h == NULL)
        return;
    pthread_mutex_destroy(&h->check_mu);
    shardmap_free(h->map); /* drops every entry's references first */
    pthread_mutex_destroy(&h->shape_mu);
    free(h->shapes);
    for (size_t i = 0; i < SHAPE_CHUNKS; i++)
        free(h->ids[i]);
    free(h->free_ids);
    free(h);
}

void
cachecopy_freshen(struct cachecopy *h)
{
    int64_t now = mono_ms(), due = atomic_load_explicit(&h->next_check_ms, memory_order_relaxed);
    int64_t v;

    if (now < due)
        return;
    /* One reader checks; the others go on with what they have. */
    if (!atomic_compare_exchange_strong(&h->next_check_ms, &due, now + CACHECOPY_RECHECK_MS))
        return;
    pthread_mutex_lock(&h->check_mu);
    {
        /* Never wait for the connection (a writer may hold it through
         * SQLite's busy wait): when it is in use, the next read checks. */
        struct timespec at_once;
        const struct timespec *outer;
        enum cache_status st;

        (void)clock_gettime(CLOCK_MONOTONIC, &at_once);
        outer = cache_bound_waits(&at_once);
        st = cache_data_version(h->cache, &v, NULL);
        (void)cache_bound_waits(outer);
        if (st == CACHE_BUSY)
            atomic_store_explicit(&h->next_check_ms, now, memory_order_relaxed);
        else if (st != CACHE_OK || v != h->seen_version) {
            h->seen_version = v;
            shardmap_invalidate(h->map);
        }
    }
    pthread_mutex_unlock(&h->check_mu);
}

uint32_t
cachecopy_gen(struct cachecopy *h)
{
    return shardmap_gen(h->map);
}

/* ------------------------------------------------------------ rows */

/* Appends s and its NUL at *off; false when it does not fit. */
static bool
add_str(char *buf, size_t *off, const char *s)
{
    size_t l = strlen(s) + 1;

    if (*off + l > VAL_MAX)
        return false;
    memcpy(buf + *off, s, l);
    *off += l;
    return true;
}

/* Appends the name s, its ".domain" (or whole "domain") suffix as SUFFIX. */
static bool
add_name(char *buf, size_t *off, const char *s, const char *domain)
{
    size_t l = strlen(s), dl = strlen(domain), keep;

    if (memchr(s, SUFFIX, l) != NULL)
        return false; /* could not be told from a suffix: not kept */
    if (dl == 0 || l < dl || strcmp(s + l - dl, domain) != 0 ||
        (l > dl && s[l - dl - 1] != '.'))
        return add_str(buf, off, s);
    keep = l > dl ? l - dl - 1 : 0;
    if (*off + keep + 2 > VAL_MAX)
        return false;
    memcpy(buf + *off, s, keep);
    buf[*off + keep] = SUFFIX;
    buf[*off + keep + 1] = '\0';
    *off += keep + 2;
    return true;
}

/* The name at *p (add_name's form) in full, malloc'd; *p moves past it. */
static char *
take_name(const char **p, const char *domain)
{
    const char *s = *p, *mark;
    size_t l = strlen(s), keep, dl;
    char *out;

    *p = s + l + 1;
    if ((mark = memchr(s, SUFFIX, l)) == NULL)
        return strdup(s);
    keep = (size_t)(mark - s);
    dl = strlen(domain);
    if ((out = malloc(keep + (keep > 0) + dl + 1)) == NULL)
        return NULL;
    memcpy(out, s, keep);
    if (keep > 0)
        out[keep++] = '.';
    memcpy(out + keep, domain, dl + 1);
    return out;
}

/* ------------------------------------------------------------ shapes */

static uint32_t
hash_bytes(const char *p, size_t len)
{
    uint32_t h = 2166136261u;

    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)p[i];
        h *= 16777619u;
    }
    return h;
}

/* Gives sh an id (a freed one first); the caller holds shape_mu. */
static bool
shape_new_id(struct cachecopy *h, struct shape *sh)
{
    uint32_t id;

    if (h->n_free > 0) {
        id = h->free_ids[--h->n_free];
    } else {
        if (h->next_id == 0)
            h->next_id = 1; /* 0 is no shape */
        if (h->next_id >= SHAPE_CHUNK * SHAPE_CHUNKS)
            return false;
        if (h->ids[h->next_id / SHAPE_CHUNK] == NULL &&
            (h->ids[h->next_id / SHAPE_CHUNK] = calloc(SHAPE_CHUNK, sizeof(struct shape *))) ==
                NULL)
            return false;
        id = h->next_id++;
    }
    sh->id = id;
    h->ids[id / SHAPE_CHUNK][id % SHAPE_CHUNK] = sh;
    return true;
}

/* The shape of an id held by an entry: its shard's lock is held, so the
 * entry's reference keeps the shape (and the id) alive. */
static struct shape *
shape_at(struct cachecopy *h, uint32_t id)
{
    return h->ids[id / SHAPE_CHUNK][id % SHAPE_CHUNK];
}

/* The shape of these bytes, with one more reference; NULL when out of memory. */
static struct shape *
shape_get(struct cachecopy *h, const char *data, size_t len)
{
    uint32_t hash = hash_bytes(data, len);
    struct shape *sh;

    pthread_mutex_lock(&h->shape_mu);
    if (h->n_shapes >= h->n_buckets) { /* grow: at most one shape a bucket on average */
        size_t nb = h->n_buckets ? h->n_buckets * 2 : 64;
        struct shape **b = calloc(nb, sizeof(*b));

        if (b != NULL) {
            for (size_t i = 0; i < h->n_buckets; i++) {
                for (struct shape *x = h->shapes[i], *nx; x != NULL; x = nx) {
                    nx = x->next;
                    x->next = b[x->hash & (nb - 1)];
                    b[x->hash & (nb - 1)] = x;
                }
            }
            free(h->shapes);
            h->shapes = b;
            h->n_buckets = nb;
        }
    }
    sh = NULL;
    if (h->n_buckets > 0) {
        for (sh = h->shapes[hash & (h->n_buckets - 1)]; sh != NULL; sh = sh->next)
            if (sh->hash == hash && sh->len == len && memcmp(sh->data, data, len) == 0)
                break;
        if (sh == NULL && (sh = malloc(offsetof(struct shape, data) + len)) != NULL) {
            if (!shape_new_id(h, sh)) {
                free(sh);
                pthread_mutex_unlock(&h->shape_mu);
                return NULL;
            }
            sh->refs = 0;
            sh->hash = hash;
            sh->len = (uint16_t)len;
            memcpy(sh->data, data, len);
            sh->next = h->shapes[hash & (h->n_buckets - 1)];
            h->shapes[hash & (h->n_buckets - 1)] = sh;
            h->n_shapes++;
        }
        if (sh != NULL)
            sh->refs++;
    }
    pthread_mutex_unlock(&h->shape_mu);
    return sh;
}

static void
shape_ref(struct cachecopy *h, struct shape *sh)
{
    pthread_mutex_lock(&h->shape_mu);
    sh->refs++;
    pthread_mutex_unlock(&h->shape_mu);
}

/* Drops a reference; the last one frees the shape. */
static void
shape_unref(struct cachecopy *h, struct shape *sh)
{
    pthread_mutex_lock(&h->shape_mu);
    if (--sh->refs == 0) {
        struct shape **pp = &h->shapes[sh->hash & (h->n_buckets - 1)];

        while (*pp != sh)
            pp = &(*pp)->next;
        *pp = sh->next;
        h->n_shapes--;
        h->ids[sh->id / SHAPE_CHUNK][sh->id % SHAPE_CHUNK] = NULL;
        if (h->n_free == h->free_cap) {
            size_t cap = h->free_cap ? h->free_cap * 2 : 64;
            uint32_t *f = realloc(h->free_ids, cap * sizeof(*f));

            if (f != NULL) {
                h->free_ids = f;
                h->free_cap = cap;
            }
        }
        if (h->n_free < h->free_cap) /* else the id is not used again */
            h->free_ids[h->n_free++] = sh->id;
        free(sh);
    }
    pthread_mutex_unlock(&h->shape_mu);
}

/* ------------------------------------------------------------ entries */

/* The shapes an entry's value points to (NULL: that part is absent). */
static void
value_shapes(struct cachecopy *h, const void *val, size_t len, struct shape **row,
             struct shape **mx)
{
    const char *v = val;
    uint8_t rowlen = (uint8_t)v[0];
    struct row_fix rf;
    struct mx_fix mf;

    *row = *mx = NULL;
    if (rowlen > 0) {
        memcpy(&rf, v + 1, sizeof(rf));
        *row = shape_at(h, rf.shape);
    }
    if (len > 1u + rowlen) {
        memcpy(&mf, v + 1 + rowlen, sizeof(mf));
        *mx = shape_at(h, mf.shape);
    }
}

/* shardmap_drop_fn: a value leaves the map; its shapes lose a reference. */
static void
on_drop(const void *val, size_t len, void *arg)
{
    struct shape *row, *mx;

    value_shapes(arg, val, len, &row, &mx);
    if (row != NULL)
        shape_unref(arg, row);
    if (mx != NULL)
        shape_unref(arg, mx);
}

/* A part to put, and which. */
struct part {
    struct cachecopy *h;
    char buf[sizeof(struct row_fix) + POLICY_ID_MAX + 1];
    size_t len;
    bool is_row;
    bool stored; /* the value holding its shape's reference was stored */
    enum shardmap_put_mode mode;
};

/* The entry's value with one part replaced: the other part carried over. */
static size_t
merge_part(const void *old, size_t oldlen, void *out, size_t outsz, void *arg)
{
    struct part *p = arg;
    uint8_t rowlen = 0, newrow;
    const char *o = old;
    size_t mxlen = 0, len;
    char *w = out;

    if (old != NULL) {
        rowlen = (uint8_t)o[0];
        mxlen = oldlen - 1 - rowlen;
        if (p->mode == SHARDMAP_ADD && (p->is_row ? rowlen > 0 : mxlen > 0))
            return SHARDMAP_KEEP;
    }
    newrow = (uint8_t)(p->is_row ? p->len : rowlen);
    len = 1 + newrow + (p->is_row ? mxlen : p->len);
    if (out == NULL || len > outsz)
        return len;
    w[0] = (char)newrow;
    if (p->is_row) {
        memcpy(w + 1, p->buf, p->len);
        if (mxlen > 0)
            memcpy(w + 1 + newrow, o + 1 + rowlen, mxlen);
    } else {
        if (rowlen > 0)
            memcpy(w + 1, o + 1, rowlen);
        memcpy(w + 1 + newrow, p->buf, p->len);
    }
    /* The part carried over is now pointed to from one more value (the
     * old one is dropped just after). */
    if (old != NULL) {
        struct shape *row, *mx;

        value_shapes(p->h, old, oldlen, &row, &mx);
        if (p->is_row && mx != NULL)
            shape_ref(p->h, mx);
        if (!p->is_row && row != NULL)
            shape_ref(p->h, row);
    }
    p->stored = true;
    return len;
}

/* Stores p (whose shape sh holds a reference for it), or leaves the domain out. */
static void
put_part(struct cachecopy *h, const char *domain, struct part *p, struct shape *sh, bool ok,
         uint32_t gen, int64_t now)
{
    if (!ok || sh == NULL || shardmap_merge(h->map, domain, gen, now, merge_part, p) != 0)
        shardmap_del(h->map, domain); /* never leave an older copy behind */
    if (sh != NULL && !p->stored)
        shape_unref(h, sh);
    metrics_now_memory_entries(shardmap_count_relaxed(h->map));
}

void
cachecopy_put_row(struct cachecopy *h, const struct cache_entry *e, uint32_t gen, int64_t now,
                 enum shardmap_put_mode mode)
{
    char *buf = malloc(VAL_MAX);
    struct part part = {.h = h, .is_row = true, .mode = mode};
    struct row_shape rs = {e->max_age, e->has_policy, (uint8_t)e->mode, e->has_status,
                           (uint8_t)e->status, (uint16_t)(e->has_policy ? e->n_mx : 0)};
    struct row_fix rf = {(uint32_t)e->fetched_at, (uint32_t)e->expires_at,
                         (uint32_t)e->checked_at, 0};
    struct shape *sh = NULL;
    size_t off = sizeof(rs), idlen = strlen(e->txt_id) + 1;
    bool ok = buf != NULL && e->n_mx <= UINT16_MAX && fits32(e->fetched_at) &&
              fits32(e->expires_at) && fits32(e->checked_at) && idlen <= POLICY_ID_MAX + 1;

    if (ok)
        memcpy(buf, &rs, sizeof(rs));
    ok = ok && add_str(buf, &off, e->dnssec) && add_str(buf, &off, e->last_error) &&
         add_str(buf, &off, e->source);
    for (size_t i = 0; ok && i < rs.n_mx; i++)
        ok = add_name(buf, &off, e->mx[i], e->domain);
    if (ok && (sh = shape_get(h, buf, off)) != NULL) {
        rf.shape = sh->id;
        memcpy(part.buf, &rf, sizeof(rf));
        memcpy(part.buf + sizeof(rf), e->txt_id, idlen);
        part.len = sizeof(rf) + idlen;
    }
    put_part(h, e->domain, &part, sh, ok, gen, now);
    free(buf);
}

struct row_out {
    struct cachecopy *h;
    struct cache_entry *e;
    const char *domain;
    bool ok;
};

/* Copies the next string at *p into dst (dstsz bytes, cut to fit). */
static const char *
take_str(const char *p, char *dst, size_t dstsz)
{
    size_t l = strlen(p);

    mts_text_copy(dst, dstsz, p);	/* not printf: on every warm read */
    return p + l + 1;
}

static void
copy_row(const void *val, size_t len, void *arg)
{
    struct row_out *o = arg;
    struct cache_entry *e = o->e;
    struct row_fix rf;
    struct row_shape rs;
    const char *v = val, *p;
    const struct shape *sh;

    (void)len;
    if (v[0] == 0)
        return; /* only the MX set is held */
    memcpy(&rf, v + 1, sizeof(rf));
    sh = shape_at(o->h, rf.shape);
    memcpy(&rs, sh->data, sizeof(rs));
    e->fetched_at = rf.fetched_at;
    e->expires_at = rf.expires_at;
    e->checked_at = rf.checked_at;
    e->max_age = rs.max_age;
    e->has_policy = rs.has_policy;
    e->mode = (enum policy_mode)rs.mode;
    e->has_status = rs.has_status;
    e->status = (enum status_kind)rs.status;
    (void)take_str(v + 1 + sizeof(rf), e->txt_id, sizeof(e->txt_id));
    p = sh->data + sizeof(rs);
    p = take_str(p, e->dnssec, sizeof(e->dnssec));
    p = take_str(p, e->last_error, sizeof(e->last_error));
    p = take_str(p, e->source, sizeof(e->source));
    o->ok = true;
    if (rs.n_mx > 0) {
        if ((e->mx = calloc(rs.n_mx, sizeof(*e->mx))) == NULL) {
            o->ok = false;
            return;
        }
        for (e->n_mx = 0; e->n_mx < rs.n_mx; e->n_mx++) {
            if ((e->mx[e->n_mx] = take_name(&p, o->domain)) == NULL) {
                o->ok = false;
                return;
            }
        }
    }
}

bool
cachecopy_get_row(struct cachecopy *h, const char *domain, int64_t now, struct cache_entry *e)
{
    struct row_out o = {h, e, domain, false};

    memset(e, 0, sizeof(*e));
    if (!shardmap_get(h->map, domain, now, copy_row, &o)) {
        metrics_memory(false);
        return false;
    }
    if (!o.ok) {
        cache_entry_free(e);
        memset(e, 0, sizeof(*e));
        metrics_memory(false);
        return false;
    }
    metrics_memory(true);
    mts_text_copy(e->domain, sizeof(e->domain), domain);
    e->last_used = now;
    return true;
}

/* ------------------------------------------------------------ MX sets */

/* The MX set's dnssec word as one byte of its shape: 0 is "" (not known). */
static const char *const mx_sec_words[] = {"", "insecure", "secure", "bogus"};

static uint8_t
mx_sec_code(const char *word)
{
    for (uint8_t i = 1; i < sizeof(mx_sec_words) / sizeof(mx_sec_words[0]); i++)
        if (strcmp(word, mx_sec_words[i]) == 0)
            return i;
    return 0;
}

static void
mx_sec_word(uint8_t code, char *out, size_t outsz)
{
    mts_text_copy(out, outsz,
                  code < sizeof(mx_sec_words) / sizeof(mx_sec_words[0]) ? mx_sec_words[code] : "");
}

void
cachecopy_put_mx(struct cachecopy *h, const struct cache_mxset *m, uint32_t gen,
                enum shardmap_put_mode mode)
{
    char *buf = malloc(VAL_MAX);
    struct part part = {.h = h, .is_row = false, .mode = mode};
    struct mx_fix mf = {(uint32_t)m->fetched_at, (uint32_t)m->expires_at, 0};
    struct shape *sh = NULL;
    size_t off = 2;
    /* The MX RRset's DNSSEC state is kept: the map's dane-only answer
     * (danemap.h) needs a secure MX set. Part of the shape (one byte). */
    bool ok = buf != NULL && m->n <= CACHE_MX_MAX && m->n <= UINT8_MAX &&
              fits32(m->fetched_at) && fits32(m->expires_at);

    if (ok) {
        buf[0] = (char)(uint8_t)m->n;
        buf[1] = (char)mx_sec_code(m->dnssec);
    }
    for (size_t i = 0; ok && i < m->n; i++)
        ok = add_name(buf, &off, m->hosts[i], m->domain);
    if (ok && (sh = shape_get(h, buf, off)) != NULL) {
        mf.shape = sh->id;
        memcpy(part.buf, &mf, sizeof(mf));
        part.len = sizeof(mf);
    }
    put_part(h, m->domain, &part, sh, ok, gen, 0);
    free(buf);
}

struct mx_out {
    struct cachecopy *h;
    struct cache_mxset *m;
    const char *domain;
    bool ok;
};

static void
copy_mx(const void *val, size_t len, void *arg)
{
    struct mx_out *o = arg;
    struct cache_mxset *m = o->m;
    struct mx_fix mf;
    const char *v = val, *p;
    const struct shape *sh;
    uint8_t rowlen = (uint8_t)v[0], n;

    if (len <= 1u + rowlen)
        return; /* only the row is held */
    memcpy(&mf, v + 1 + rowlen, sizeof(mf));
    m->fetched_at = mf.fetched_at;
    m->expires_at = mf.expires_at;
    sh = shape_at(o->h, mf.shape);
    n = (uint8_t)sh->data[0];
    mx_sec_word((uint8_t)sh->data[1], m->dnssec, sizeof(m->dnssec));
    p = sh->data + 2;
    if ((m->hosts = calloc(n ? n : 1, sizeof(*m->hosts))) == NULL)
        return;
    for (m->n = 0; m->n < n; m->n++)
        if ((m->hosts[m->n] = take_name(&p, o->domain)) == NULL)
            return;
    o->ok = true;
}

bool
cachecopy_get_mx(struct cachecopy *h, const char *domain, struct cache_mxset *m)
{
    struct mx_out o = {h, m, domain, false};

    memset(m, 0, sizeof(*m));
    if (!shardmap_get(h->map, domain, 0, copy_mx, &o))
        return false;
    if (!o.ok) {
        cache_mxset_free(m);
        return false;
    }
    mts_text_copy(m->domain, sizeof(m->domain), domain);
    return true;
}

/* ------------------------------------------------------------ last use */

struct used_batch {
    char **domains;
    int64_t *at;
    size_t n, cap;
};

static void
collect_used(const char *key, int64_t at, void *arg)
{
    struct used_batch *b = arg;

    if (b->n == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 256;
        char **d = realloc(b->domains, cap * sizeof(*d));
        int64_t *a;

        if (d == NULL)
            return;
        b->domains = d;
        if ((a = realloc(b->at, cap * sizeof(*a))) == NULL)
            return;
        b->at = a;
        b->cap = cap;
    }
    if ((b->domains[b->n] = strdup(key)) != NULL)
        b->at[b->n++] = at;
}

size_t
cachecopy_flush_used(struct cachecopy *h)
{
    struct used_batch b = {0};
    struct mts_err err;
    size_t n;

    (void)shardmap_take_used(h->map, collect_used, &b);
    n = b.n;
    /* A failed batch is lost: last_used is for months-scale purging only. */
    if (b.n > 0 &&
        cache_touch_many(h->cache, (const char *const *)b.domains, b.at, b.n, &err) != CACHE_OK) {
        log_msg(LOG_WARNING, "refresh: cannot record the last use of %zu domains: %s", b.n,
                err.msg);
        n = 0;
    }
    for (size_t i = 0; i < b.n; i++)
        free(b.domains[i]);
    free(b.domains);
    free(b.at);
    return n;
}

size_t
cachecopy_count(struct cachecopy *h)
{
    return shardmap_count(h->map);
}

size_t
cachecopy_shapes(struct cachecopy *h)
{
    size_t n;

    pthread_mutex_lock(&h->shape_mu);
    n = h->n_shapes;
    pthread_mutex_unlock(&h->shape_mu);
    return n;
}
