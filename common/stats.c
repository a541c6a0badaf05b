/*
 * stats - verdict statistics aggregated in memory; see stats.h.
 */
#include "stats.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "decide.h"
#include "metrics.h"
#include "nametab.h"
#include "rules.h"
#include "verdict.h"

struct stats {
    pthread_mutex_t mu;
    size_t max_keys;	/* ordinary keys allowed */
    size_t cap;		/* rows allocated: max_keys + STATS_OVERFLOW_KEYS */
    size_t n, n_overflow;	/* rows used; of them, overflow keys */
    size_t nslots;	/* hash slots, a power of two >= 2 * cap */
    struct stats_row *rows;
    uint32_t *slot;	/* row index + 1; 0: empty */
    uint64_t *hash;	/* each row's key's hash_key, compared before its strings */
    uint64_t dropped;
};

/* Copies src into dst (size dstsz), cut to fit: the fields are bounded. */
static void
copy(char *dst, size_t dstsz, const char *src)
{
    size_t n = src != NULL ? strnlen(src, dstsz - 1) : 0;

    if (n > 0)
        memcpy(dst, src, n);
    dst[n] = '\0';
}

/*
 * Arithmetic, not gmtime_r: glibc's gmtime_r takes the process's tzset lock,
 * and this runs on every RCPT on every connection's thread. The civil date
 * of a day count (days since 1970-01-01), by 400-year eras of 146,097 days.
 */
void
stats_day(time_t t, char day[11])
{
    int64_t z = (int64_t)t / 86400 - ((int64_t)t % 86400 < 0);
    int64_t era, doe, yoe, y, doy, mp, d, m;

    if (t < 0 || z > 2932896) { /* before 1970 or after 9999-12-31 */
        copy(day, 11, "1970-01-01");
        return;
    }
    z += 719468; /* days from 0000-03-01 */
    era = z / 146097;
    doe = z - era * 146097;
    yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    y = yoe + era * 400;
    doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    mp = (5 * doy + 2) / 153;
    d = doy - (153 * mp + 2) / 5 + 1;
    m = mp < 10 ? mp + 3 : mp - 9;
    y += m <= 2;
    day[0] = (char)('0' + y / 1000);
    day[1] = (char)('0' + y / 100 % 10);
    day[2] = (char)('0' + y / 10 % 10);
    day[3] = (char)('0' + y % 10);
    day[4] = '-';
    day[5] = (char)('0' + m / 10);
    day[6] = (char)('0' + m % 10);
    day[7] = '-';
    day[8] = (char)('0' + d / 10);
    day[9] = (char)('0' + d % 10);
    day[10] = '\0';
}

void
stats_key_of(const struct decision *d, time_t now, struct stats_key *k)
{
    const char *w;
    unsigned p = (unsigned)metrics_path_of(d);

    memset(k, 0, sizeof(*k));
    stats_day(now, k->day);
    copy(k->domain, sizeof(k->domain), d->domain);
    w = nametab_name(decide_effect_names, (int)d->effect);
    copy(k->action, sizeof(k->action), w != NULL ? w : "unknown");
    w = verdict_outcome_name(d->outcome);
    copy(k->outcome, sizeof(k->outcome), w != NULL ? w : "unknown");
    copy(k->path, sizeof(k->path),
         p < METRICS_NPATHS ? nametab_name(metrics_path_names, (int)p) : "unknown");
    copy(k->rule, sizeof(k->rule),
         d->rule == NULL ? "default" : d->rule->where[0] != '\0' ? d->rule->where : "rule");
    k->dry_run = d->dry_run;
}

struct stats *
stats_new(size_t max_keys)
{
    struct stats *s;

    if (max_keys < 1 || max_keys > UINT32_MAX / 4)
        return NULL;
    if ((s = calloc(1, sizeof(*s))) == NULL)
        return NULL;
    s->max_keys = max_keys;
    s->cap = max_keys + STATS_OVERFLOW_KEYS;
    for (s->nslots = 16; s->nslots < 2 * s->cap; s->nslots *= 2)
        ;
    s->rows = calloc(s->cap, sizeof(*s->rows));
    s->slot = calloc(s->nslots, sizeof(*s->slot));
    s->hash = calloc(s->cap, sizeof(*s->hash));
    if (s->rows == NULL || s->slot == NULL || s->hash == NULL ||
        pthread_mutex_init(&s->mu, NULL) != 0) {
        free(s->rows);
        free(s->slot);
        free(s->hash);
        free(s);
        return NULL;
    }
    return s;
}

void
stats_free(struct stats *s)
{
    if (s == NULL)
        return;
    pthread_mutex_destroy(&s->mu);
    free(s->rows);
    free(s->slot);
    free(s->hash);
    free(s);
}

/* FNV-1a over one field, its NUL included so that fields cannot run together. */
static uint64_t
hash_str(uint64_t h, const char *p)
{
    do {
        h ^= (unsigned char)*p;
        h *= UINT64_C(1099511628211);
    } while (*p++ != '\0');
    return h;
}

static uint64_t
hash_key(const struct stats_key *k)
{
    uint64_t h = UINT64_C(14695981039346656037);

    h = hash_str(h, k->day);
    h = hash_str(h, k->domain);
    h = hash_str(h, k->action);
    h = hash_str(h, k->outcome);
    h = hash_str(h, k->path);
    h = hash_str(h, k->rule);
    return hash_str(h, k->dry_run ? "y" : "n");
}

static bool
same(const struct stats_key *a, const struct stats_key *b)
{
    return a->dry_run == b->dry_run && strcmp(a->day, b->day) == 0 &&
           strcmp(a->domain, b->domain) == 0 && strcmp(a->action, b->action) == 0 &&
           strcmp(a->outcome, b->outcome) == 0 && strcmp(a->path, b->path) == 0 &&
           strcmp(a->rule, b->rule) == 0;
}

/* The slot holding k (whose hash_key is h), or the empty slot where it
 * would go; under mu. */
static size_t
find(const struct stats *s, const struct stats_key *k, uint64_t h)
{
    size_t i = (size_t)h & (s->nslots - 1);

    while (s->slot[i] != 0 &&
           !(s->hash[s->slot[i] - 1] == h && same(&s->rows[s->slot[i] - 1].k, k)))
        i = (i + 1) & (s->nslots - 1);
    return i;
}

/* Adds n to k (hash_key h), making room if allowed (overflow: an overflow
 * key); under mu. */
static bool
add_locked(struct stats *s, const struct stats_key *k, uint64_t h, uint64_t n, bool overflow)
{
    size_t i = find(s, k, h);

    if (s->slot[i] == 0) {
        if (overflow ? s->n_overflow >= STATS_OVERFLOW_KEYS : s->n - s->n_overflow >= s->max_keys)
            return false;
        s->rows[s->n].k = *k;
        s->rows[s->n].count = 0;
        s->hash[s->n] = h;
        s->slot[i] = (uint32_t)++s->n;
        if (overflow)
            s->n_overflow++;
    }
    s->rows[s->slot[i] - 1].count += n;
    return true;
}

void
stats_add(struct stats *s, const struct stats_key *k, uint64_t n)
{
    struct stats_key o;
    bool is_overflow;
    uint64_t h;

    if (s == NULL || n == 0)
        return;
    /* Hashed before the lock: every recipient of every connection adds. */
    is_overflow = strcmp(k->domain, STATS_OVERFLOW) == 0;
    h = hash_key(k);
    pthread_mutex_lock(&s->mu);
    if (!add_locked(s, k, h, n, is_overflow)) {
        o = *k;
        copy(o.domain, sizeof(o.domain), STATS_OVERFLOW);
        o.rule[0] = '\0';
        if (is_overflow || !add_locked(s, &o, hash_key(&o), n, true))
            s->dropped += n;
    }
    pthread_mutex_unlock(&s->mu);
}

int
stats_take(struct stats *s, struct stats_row **rows, size_t *n)
{
    struct stats_row *fresh = calloc(s->cap, sizeof(*fresh));

    *rows = NULL;
    *n = 0;
    if (fresh == NULL)
        return -1;
    pthread_mutex_lock(&s->mu);
    if (s->n > 0) {
        *rows = s->rows;
        *n = s->n;
        s->rows = fresh;
        fresh = NULL;
        s->n = s->n_overflow = 0;
        memset(s->slot, 0, s->nslots * sizeof(*s->slot));
    }
    pthread_mutex_unlock(&s->mu);
    free(fresh);
    return 0;
}

size_t
stats_keys(struct stats *s)
{
    size_t n;

    pthread_mutex_lock(&s->mu);
    n = s->n;
    pthread_mutex_unlock(&s->mu);
    return n;
}

uint64_t
stats_dropped(struct stats *s)
{
    uint64_t n;

    pthread_mutex_lock(&s->mu);
    n = s->dropped;
    pthread_mutex_unlock(&s->mu);
    return n;
}
