/*
 * cafile - trust anchors parsed once, shared, parsed again on change; see
 * cafile.h.
 *
 * A few slots keyed by path (the configured ca_file, the system bundle;
 * tests use more): the oldest slot gives way when all are taken.
 */
#include "cafile.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/err.h>
#include <openssl/pem.h>

#define SLOTS 4

struct cafile {
    int refs; /* under mu: one per user, + 1 while in a slot */
    char *path;
    struct stat st; /* of the file that was parsed */
    STACK_OF(X509) *certs;
    STACK_OF(X509_CRL) *crls;
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static struct cafile *slot[SLOTS];
static unsigned evict_next;

static void
cafile_free(struct cafile *a)
{
    sk_X509_pop_free(a->certs, X509_free);
    sk_X509_CRL_pop_free(a->crls, X509_CRL_free);
    free(a->path);
    free(a);
}

/* Drops one reference; the caller holds mu. */
static void
unref_locked(struct cafile *a)
{
    if (a != NULL && --a->refs == 0)
        cafile_free(a);
}

static bool
same_file(const struct stat *a, const struct stat *b)
{
    return a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_size == b->st_size &&
           a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec &&
           a->st_ctim.tv_sec == b->st_ctim.tv_sec && a->st_ctim.tv_nsec == b->st_ctim.tv_nsec;
}

/* Every certificate and CRL of path, as X509_load_cert_crl_file reads them. */
static struct cafile *
parse(const char *path, const struct stat *st, struct mts_err *err)
{
    struct cafile *a = calloc(1, sizeof(*a));
    STACK_OF(X509_INFO) *inf = NULL;
    BIO *in = NULL;
    unsigned long e;

    if (a == NULL || (a->path = strdup(path)) == NULL ||
        (a->certs = sk_X509_new_null()) == NULL || (a->crls = sk_X509_CRL_new_null()) == NULL) {
        mts_err_set(err, "out of memory");
        goto fail;
    }
    a->st = *st;
    ERR_clear_error();
    if ((in = BIO_new_file(path, "r")) == NULL) {
        mts_err_set(err, "CA file %s: %s", path, strerror(errno));
        goto fail;
    }
    if ((inf = PEM_X509_INFO_read_bio(in, NULL, NULL, "")) == NULL) {
        e = ERR_peek_last_error();
        mts_err_set(err, "CA file %s: %s", path,
                    e != 0 ? ERR_reason_error_string(e) : "cannot be parsed");
        goto fail;
    }
    for (int i = 0; i < sk_X509_INFO_num(inf); i++) {
        X509_INFO *x = sk_X509_INFO_value(inf, i);

        if (x->x509 != NULL) {
            if (!sk_X509_push(a->certs, x->x509)) {
                mts_err_set(err, "out of memory");
                goto fail;
            }
            x->x509 = NULL; /* moved */
        }
        if (x->crl != NULL) {
            if (!sk_X509_CRL_push(a->crls, x->crl)) {
                mts_err_set(err, "out of memory");
                goto fail;
            }
            x->crl = NULL;
        }
    }
    if (sk_X509_num(a->certs) + sk_X509_CRL_num(a->crls) == 0) {
        mts_err_set(err, "CA file %s: no certificate in it", path);
        goto fail;
    }
    sk_X509_INFO_pop_free(inf, X509_INFO_free);
    BIO_free(in);
    ERR_clear_error();
    a->refs = 1;
    return a;
fail:
    sk_X509_INFO_pop_free(inf, X509_INFO_free);
    BIO_free(in);
    ERR_clear_error();
    if (a != NULL)
        cafile_free(a);
    return NULL;
}

struct cafile *
cafile_get(const char *path, struct mts_err *err)
{
    struct cafile *a = NULL;
    struct stat st;
    size_t i, free_slot = SLOTS;

    if (path == NULL || path[0] == '\0') {
        mts_err_set(err, "no CA file");
        return NULL;
    }
    if (stat(path, &st) != 0) {
        mts_err_set(err, "CA file %s: %s", path, strerror(errno));
        return NULL;
    }
    pthread_mutex_lock(&mu);
    for (i = 0; i < SLOTS; i++) {
        if (slot[i] == NULL) {
            if (free_slot == SLOTS)
                free_slot = i;
            continue;
        }
        if (strcmp(slot[i]->path, path) != 0)
            continue;
        if (same_file(&slot[i]->st, &st)) {
            a = slot[i];
            a->refs++;
            pthread_mutex_unlock(&mu);
            return a;
        }
        /* Changed since it was parsed: its users keep their copy. */
        unref_locked(slot[i]);
        slot[i] = NULL;
        free_slot = i;
        break;
    }
    if (free_slot == SLOTS) {
        free_slot = evict_next++ % SLOTS;
        unref_locked(slot[free_slot]);
        slot[free_slot] = NULL;
    }
    /* Parsed under the lock: fetches that start together parse it once. */
    if ((a = parse(path, &st, err)) != NULL) {
        slot[free_slot] = a;
        a->refs++; /* the slot's, and the caller's */
    }
    pthread_mutex_unlock(&mu);
    return a;
}

int
cafile_add_to(const struct cafile *a, X509_STORE *store)
{
    /* X509_STORE_add_cert / _crl take references of their own. */
    for (int i = 0; i < sk_X509_num(a->certs); i++)
        if (!X509_STORE_add_cert(store, sk_X509_value(a->certs, i)))
            return -1;
    for (int i = 0; i < sk_X509_CRL_num(a->crls); i++)
        if (!X509_STORE_add_crl(store, sk_X509_CRL_value(a->crls, i)))
            return -1;
    return 0;
}

int
cafile_count(const struct cafile *a)
{
    return sk_X509_num(a->certs);
}

void
cafile_put(struct cafile *a)
{
    if (a == NULL)
        return;
    pthread_mutex_lock(&mu);
    unref_locked(a);
    pthread_mutex_unlock(&mu);
}

void
cafile_forget(void)
{
    pthread_mutex_lock(&mu);
    for (size_t i = 0; i < SLOTS; i++) {
        unref_locked(slot[i]);
        slot[i] = NULL;
    }
    pthread_mutex_unlock(&mu);
}

void
cafile_cleanup(void)
{
    cafile_forget();
}
