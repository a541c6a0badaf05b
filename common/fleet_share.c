/*
 * fleet_share - one fleet per process, shared by discover and the probe
 * engine and handed from one configuration to the next; see fleet_share.h.
 */
#include "fleet_share.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fleet_codec.h"
#include "log.h"

/* What is compared of the password and key files: more than either may
 * hold (FLEET_KEY_MAX; the password's first line is shorter). */
#define FILE_BYTES_MAX (FLEET_KEY_MAX + 1)

struct listener {
    fleet_event_fn fn;
    void *arg;
};

struct share {
    struct share *next;
    struct fleet *f;
    unsigned refs; /* under reg_mu */
    /* what made it (fleet_share_get compares) */
    char *redis, *prefix, *password_file, *key_file;
    int64_t db, timeout_ms;
    unsigned char password[FILE_BYTES_MAX], key[FILE_BYTES_MAX];
    size_t password_len, key_len;
    /* held while the listeners are called: unlisten waits for a call */
    pthread_mutex_t lmu;
    struct listener *ls;
    size_t n_ls, cap_ls;
    bool subscribed;
};

static pthread_mutex_t reg_mu = PTHREAD_MUTEX_INITIALIZER;
static struct share *shares;

/* The first FILE_BYTES_MAX bytes of path ("": none); SIZE_MAX when it
 * cannot be read (fleet_open then says why). */
static size_t
file_bytes(const char *path, unsigned char *buf)
{
    FILE *fp;
    size_t n;

    if (path == NULL || path[0] == '\0')
        return 0;
    if ((fp = fopen(path, "rb")) == NULL)
        return SIZE_MAX;
    n = fread(buf, 1, FILE_BYTES_MAX, fp);
    if (ferror(fp))
        n = SIZE_MAX;
    fclose(fp);
    return n;
}

static bool
same(const struct share *s, const struct config *cfg, const unsigned char *pw, size_t pw_len,
     const unsigned char *key, size_t key_len)
{
    return strcmp(s->redis, cfg->fleet_redis) == 0 && strcmp(s->prefix, cfg->fleet_prefix) == 0 &&
           strcmp(s->password_file, cfg->fleet_password_file) == 0 &&
           strcmp(s->key_file, cfg->fleet_key_file) == 0 && s->db == cfg->fleet_db &&
           s->timeout_ms == cfg->fleet_timeout_ms && pw_len != SIZE_MAX &&
           key_len != SIZE_MAX && s->password_len == pw_len && s->key_len == key_len &&
           memcmp(s->password, pw, pw_len) == 0 && memcmp(s->key, key, key_len) == 0;
}

static void
share_free(struct share *s)
{
    free(s->redis);
    free(s->prefix);
    free(s->password_file);
    free(s->key_file);
    free(s->ls);
    memset(s->password, 0, sizeof(s->password));
    memset(s->key, 0, sizeof(s->key));
    pthread_mutex_destroy(&s->lmu);
    free(s);
}

/* The share of f; reg_mu held. */
static struct share *
share_of(const struct fleet *f)
{
    struct share *s = shares;

    while (s != NULL && s->f != f)
        s = s->next;
    return s;
}

int
fleet_share_get(const struct config *cfg, struct fleet **out, struct mts_err *err)
{
    unsigned char pw[FILE_BYTES_MAX], key[FILE_BYTES_MAX];
    size_t pw_len, key_len;
    struct share *s;
    int rc = 0;

    *out = NULL;
    if (cfg->fleet_redis == NULL || cfg->fleet_redis[0] == '\0')
        return 0;
    pw_len = file_bytes(cfg->fleet_password_file, pw);
    key_len = file_bytes(cfg->fleet_key_file, key);
    pthread_mutex_lock(&reg_mu);
    for (s = shares; s != NULL && !same(s, cfg, pw, pw_len, key, key_len); s = s->next)
        ;
    if (s != NULL) {
        s->refs++;
        *out = s->f;
        goto done;
    }
    if ((s = calloc(1, sizeof(*s))) == NULL) {
        mts_err_set(err, "out of memory");
        rc = -1;
        goto done;
    }
    pthread_mutex_init(&s->lmu, NULL);
    s->redis = strdup(cfg->fleet_redis);
    s->prefix = strdup(cfg->fleet_prefix);
    s->password_file = strdup(cfg->fleet_password_file);
    s->key_file = strdup(cfg->fleet_key_file);
    s->db = cfg->fleet_db;
    s->timeout_ms = cfg->fleet_timeout_ms;
    s->password_len = pw_len;
    s->key_len = key_len;
    if (pw_len != SIZE_MAX)
        memcpy(s->password, pw, pw_len);
    if (key_len != SIZE_MAX)
        memcpy(s->key, key, key_len);
    if (s->redis == NULL || s->prefix == NULL || s->password_file == NULL ||
        s->key_file == NULL) {
        mts_err_set(err, "out of memory");
        rc = -1;
    } else {
        rc = fleet_open(cfg, &s->f, err);
    }
    if (rc != 0 || s->f == NULL) {
        share_free(s);
        goto done;
    }
    s->refs = 1;
    s->next = shares;
    shares = s;
    *out = s->f;
    log_msg(LOG_DEBUG, "fleet: Redis at %s, one link pair for the lookups and the MX probes",
            cfg->fleet_redis);
done:
    pthread_mutex_unlock(&reg_mu);
    memset(pw, 0, sizeof(pw));
    memset(key, 0, sizeof(key));
    return rc;
}

void
fleet_share_put(struct fleet *f)
{
    struct share *s, **pp;

    if (f == NULL)
        return;
    pthread_mutex_lock(&reg_mu);
    s = share_of(f);
    if (s == NULL || --s->refs > 0) {
        pthread_mutex_unlock(&reg_mu);
        return;
    }
    for (pp = &shares; *pp != s; pp = &(*pp)->next)
        ;
    *pp = s->next;
    pthread_mutex_unlock(&reg_mu);
    /* Out of the list: nobody else can reach it now. */
    fleet_close(s->f);
    share_free(s);
}

/* The subscriber's callback: every listener, one after the other. */
static void
dispatch(const char *kind, const char *name, void *arg)
{
    struct share *s = arg;

    pthread_mutex_lock(&s->lmu);
    for (size_t i = 0; i < s->n_ls; i++)
        s->ls[i].fn(kind, name, s->ls[i].arg);
    pthread_mutex_unlock(&s->lmu);
}

int
fleet_share_listen(struct fleet *f, fleet_event_fn fn, void *arg, struct mts_err *err)
{
    struct share *s;
    bool start;

    pthread_mutex_lock(&reg_mu);
    s = share_of(f);
    pthread_mutex_unlock(&reg_mu);
    if (s == NULL) {
        mts_err_set(err, "fleet: not a shared fleet");
        return -1;
    }
    /* The caller holds a reference: s stays while it listens. */
    pthread_mutex_lock(&s->lmu);
    if (s->n_ls == s->cap_ls) {
        size_t cap = s->cap_ls ? s->cap_ls * 2 : 4;
        struct listener *ls = realloc(s->ls, cap * sizeof(*ls));

        if (ls == NULL) {
            pthread_mutex_unlock(&s->lmu);
            mts_err_set(err, "out of memory");
            return -1;
        }
        s->ls = ls;
        s->cap_ls = cap;
    }
    s->ls[s->n_ls++] = (struct listener){fn, arg};
    start = !s->subscribed;
    s->subscribed = true;
    pthread_mutex_unlock(&s->lmu);
    if (start && fleet_subscribe(f, dispatch, s, err) != 0) {
        fleet_share_unlisten(f, fn, arg);
        pthread_mutex_lock(&s->lmu);
        s->subscribed = false;
        pthread_mutex_unlock(&s->lmu);
        return -1;
    }
    return 0;
}

void
fleet_share_unlisten(struct fleet *f, fleet_event_fn fn, void *arg)
{
    struct share *s;

    if (f == NULL)
        return;
    pthread_mutex_lock(&reg_mu);
    s = share_of(f);
    pthread_mutex_unlock(&reg_mu);
    if (s == NULL)
        return;
    /* lmu is held for every call: once we have it, none is under way. */
    pthread_mutex_lock(&s->lmu);
    for (size_t i = 0; i < s->n_ls; i++)
        if (s->ls[i].fn == fn && s->ls[i].arg == arg) {
            s->ls[i] = s->ls[--s->n_ls];
            break;
        }
    pthread_mutex_unlock(&s->lmu);
}
