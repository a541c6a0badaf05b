/*
 * hotstate - a process's in-memory copy of the rows and MX sets it uses;
 * see hotstate.h.
 *
 * DESCRIPTION
 *	One memstate entry a domain holds both its row and its MX set:
 *	a 16-bit length of the row part (0: none), the row part, then the MX
 *	part (empty: none); a put of one part keeps the other (memstate_merge).
 *	Each part is packed: a fixed header (memcpy'd, so no alignment is
 *	assumed) followed by NUL-terminated strings. Only what a verdict and
 *	the refresh schedule read is kept: no policy text, no fetch back-off
 *	(the refresh reads the whole row from the database anyway).
 *
 *	Compact, since a process keeps up to memory_cache_domains of them:
 *	times are 32-bit seconds (a time outside 0 .. 2^32-1 keeps the domain
 *	out of memory, so its reads go to the database), and an MX name or
 *	pattern that ends in the domain itself ("mx1.example.com",
 *	"*.example.com" for example.com) is stored without that suffix: its
 *	place is marked by SUFFIX, a byte no DNS name or pattern holds.
 */
#include "hotstate.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "mxmatch.h"

#define VAL_MAX 2048 /* a bigger part is simply not kept in memory */

struct hotstate {
    struct memstate *map;
    struct cache *cache;
    _Atomic int64_t next_check_ms; /* monotonic: when data_version is read next */
    int64_t seen_version;          /* under check_mu */
    pthread_mutex_t check_mu;
};

/* Packed: copied with memcpy, and there is one for every domain kept. */
struct row_hdr {
    uint32_t fetched_at, expires_at, checked_at;
    uint32_t max_age;
    uint8_t has_policy, mode, has_status, status;
    uint16_t n_mx;
} __attribute__((packed));

struct mx_hdr {
    uint32_t fetched_at, expires_at;
    uint8_t n;
} __attribute__((packed));

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

struct hotstate *
hotstate_new(size_t cap, struct cache *cache, struct mts_err *err)
{
    struct hotstate *h = calloc(1, sizeof(*h));

    if (h == NULL || (h->map = memstate_new(cap, 0)) == NULL) {
        free(h);
        mts_err_set(err, "cannot set up the in-memory cache: out of memory");
        return NULL;
    }
    h->cache = cache;
    pthread_mutex_init(&h->check_mu, NULL);
    if (cache_data_version(cache, &h->seen_version, err) != CACHE_OK) {
        hotstate_free(h);
        return NULL;
    }
    atomic_init(&h->next_check_ms, mono_ms() + HOTSTATE_RECHECK_MS);
    return h;
}

void
hotstate_free(struct hotstate *h)
{
    if (h == NULL)
        return;
    pthread_mutex_destroy(&h->check_mu);
    memstate_free(h->map);
    free(h);
}

void
hotstate_freshen(struct hotstate *h)
{
    int64_t now = mono_ms(), due = atomic_load_explicit(&h->next_check_ms, memory_order_relaxed);
    int64_t v;

    if (now < due)
        return;
    /* One reader checks; the others go on with what they have. */
    if (!atomic_compare_exchange_strong(&h->next_check_ms, &due, now + HOTSTATE_RECHECK_MS))
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
            memstate_invalidate(h->map);
        }
    }
    pthread_mutex_unlock(&h->check_mu);
}

uint32_t
hotstate_gen(struct hotstate *h)
{
    return memstate_gen(h->map);
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

/* A part to put, and which. */
struct part {
    char *buf;
    size_t len;
    bool is_row;
    enum memstate_put_mode mode;
};

/* The entry's value with one part replaced: the other part carried over. */
static size_t
merge_part(const void *old, size_t oldlen, void *out, size_t outsz, void *arg)
{
    const struct part *p = arg;
    uint16_t rowlen = 0, newrow;
    const char *o = old;
    size_t mxlen = 0, len;

    if (old != NULL) {
        memcpy(&rowlen, o, sizeof(rowlen));
        mxlen = oldlen - sizeof(rowlen) - rowlen;
        if (p->mode == MEMSTATE_ADD && (p->is_row ? rowlen > 0 : mxlen > 0))
            return MEMSTATE_KEEP;
    }
    newrow = (uint16_t)(p->is_row ? p->len : rowlen);
    len = sizeof(newrow) + newrow + (p->is_row ? mxlen : p->len);
    if (out == NULL || len > outsz)
        return len;
    memcpy(out, &newrow, sizeof(newrow));
    if (p->is_row) {
        memcpy((char *)out + sizeof(newrow), p->buf, p->len);
        if (mxlen > 0)
            memcpy((char *)out + sizeof(newrow) + newrow, o + sizeof(rowlen) + rowlen, mxlen);
    } else {
        if (rowlen > 0)
            memcpy((char *)out + sizeof(newrow), o + sizeof(rowlen), rowlen);
        memcpy((char *)out + sizeof(newrow) + newrow, p->buf, p->len);
    }
    return len;
}

static void
put_part(struct hotstate *h, const char *domain, struct part *p, bool ok, uint32_t gen,
         int64_t now)
{
    if (!ok || memstate_merge(h->map, domain, gen, now, merge_part, p) != 0)
        memstate_del(h->map, domain); /* never leave an older copy behind */
}

void
hotstate_put_row(struct hotstate *h, const struct cache_entry *e, uint32_t gen, int64_t now,
                 enum memstate_put_mode mode)
{
    char *buf = malloc(VAL_MAX);
    struct part part = {buf, 0, true, mode};
    struct row_hdr hd = {(uint32_t)e->fetched_at, (uint32_t)e->expires_at,
                         (uint32_t)e->checked_at, e->max_age, e->has_policy, (uint8_t)e->mode,
                         e->has_status, (uint8_t)e->status,
                         (uint16_t)(e->has_policy ? e->n_mx : 0)};
    size_t off = sizeof(hd);
    bool ok = buf != NULL && e->n_mx <= UINT16_MAX && fits32(e->fetched_at) &&
              fits32(e->expires_at) && fits32(e->checked_at);

    if (ok)
        memcpy(buf, &hd, sizeof(hd));
    ok = ok && add_str(buf, &off, e->txt_id) && add_str(buf, &off, e->dnssec) &&
         add_str(buf, &off, e->last_error);
    for (size_t i = 0; ok && i < hd.n_mx; i++)
        ok = add_name(buf, &off, e->mx[i], e->domain);
    part.len = off;
    put_part(h, e->domain, &part, ok, gen, now);
    free(buf);
}

struct row_out {
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
    struct row_hdr hd;
    uint16_t rowlen;
    const char *p;

    (void)len;
    memcpy(&rowlen, val, sizeof(rowlen));
    if (rowlen == 0)
        return; /* only the MX set is held */
    val = (const char *)val + sizeof(rowlen);
    p = (const char *)val + sizeof(hd);
    memcpy(&hd, val, sizeof(hd));
    e->fetched_at = hd.fetched_at;
    e->expires_at = hd.expires_at;
    e->checked_at = hd.checked_at;
    e->max_age = hd.max_age;
    e->has_policy = hd.has_policy;
    e->mode = (enum policy_mode)hd.mode;
    e->has_status = hd.has_status;
    e->status = (enum discover_status)hd.status;
    p = take_str(p, e->txt_id, sizeof(e->txt_id));
    p = take_str(p, e->dnssec, sizeof(e->dnssec));
    p = take_str(p, e->last_error, sizeof(e->last_error));
    o->ok = true;
    if (hd.n_mx > 0) {
        if ((e->mx = calloc(hd.n_mx, sizeof(*e->mx))) == NULL) {
            o->ok = false;
            return;
        }
        for (e->n_mx = 0; e->n_mx < hd.n_mx; e->n_mx++) {
            if ((e->mx[e->n_mx] = take_name(&p, o->domain)) == NULL) {
                o->ok = false;
                return;
            }
        }
    }
}

bool
hotstate_get_row(struct hotstate *h, const char *domain, int64_t now, struct cache_entry *e)
{
    struct row_out o = {e, domain, false};

    memset(e, 0, sizeof(*e));
    if (!memstate_get(h->map, domain, now, copy_row, &o))
        return false;
    if (!o.ok) {
        cache_entry_free(e);
        memset(e, 0, sizeof(*e));
        return false;
    }
    mts_text_copy(e->domain, sizeof(e->domain), domain);
    e->last_used = now;
    return true;
}

/* ------------------------------------------------------------ MX sets */

void
hotstate_put_mx(struct hotstate *h, const struct cache_mxset *m, uint32_t gen,
                enum memstate_put_mode mode)
{
    char *buf = malloc(VAL_MAX);
    struct part part = {buf, 0, false, mode};
    struct mx_hdr hd = {(uint32_t)m->fetched_at, (uint32_t)m->expires_at, (uint8_t)m->n};
    size_t off = sizeof(hd);
    /* dnssec is not kept: no verdict reads it */
    bool ok = buf != NULL && m->n <= CACHE_MX_MAX && fits32(m->fetched_at) &&
              fits32(m->expires_at);

    if (ok)
        memcpy(buf, &hd, sizeof(hd));
    for (size_t i = 0; ok && i < m->n; i++)
        ok = add_name(buf, &off, m->hosts[i], m->domain);
    part.len = off;
    put_part(h, m->domain, &part, ok, gen, 0);
    free(buf);
}

struct mx_out {
    struct cache_mxset *m;
    const char *domain;
    bool ok;
};

static void
copy_mx(const void *val, size_t len, void *arg)
{
    struct mx_out *o = arg;
    struct cache_mxset *m = o->m;
    struct mx_hdr hd;
    uint16_t rowlen;
    const char *p;

    memcpy(&rowlen, val, sizeof(rowlen));
    if (len <= sizeof(rowlen) + rowlen)
        return; /* only the row is held */
    val = (const char *)val + sizeof(rowlen) + rowlen;
    p = (const char *)val + sizeof(hd);
    memcpy(&hd, val, sizeof(hd));
    m->fetched_at = hd.fetched_at;
    m->expires_at = hd.expires_at;
    if ((m->hosts = calloc(hd.n ? hd.n : 1, sizeof(*m->hosts))) == NULL)
        return;
    for (m->n = 0; m->n < hd.n; m->n++)
        if ((m->hosts[m->n] = take_name(&p, o->domain)) == NULL)
            return;
    o->ok = true;
}

bool
hotstate_get_mx(struct hotstate *h, const char *domain, struct cache_mxset *m)
{
    struct mx_out o = {m, domain, false};

    memset(m, 0, sizeof(*m));
    if (!memstate_get(h->map, domain, 0, copy_mx, &o))
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
hotstate_flush_used(struct hotstate *h)
{
    struct used_batch b = {0};
    struct mts_err err;
    size_t n;

    (void)memstate_take_used(h->map, collect_used, &b);
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
hotstate_count(struct hotstate *h)
{
    return memstate_count(h->map);
}
