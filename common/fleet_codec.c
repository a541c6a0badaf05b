/*
 * fleet_codec - Redis values of rows, signed and checked; see fleet_codec.h.
 */
#include "fleet_codec.h"

#include <errno.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache_row.h"
#include "policy.h"
#include "probecache.h"

#define MAC_HEX 64
#define HEAD "F1 "
#define HEAD_LEN 3

int
fleet_key_load(const char *path, struct fleet_key *k, struct mts_err *err)
{
    FILE *f;
    size_t n;

    memset(k, 0, sizeof(*k));
    if (path == NULL || path[0] == '\0')
        return 0;
    if ((f = fopen(path, "rb")) == NULL) {
        mts_err_set(err, "fleet_key_file %s: %s", path, strerror(errno));
        return -1;
    }
    /* One byte more than the bound tells a file that is too long. */
    n = fread(k->bytes, 1, sizeof(k->bytes), f);
    if (n == sizeof(k->bytes) && fgetc(f) != EOF)
        n = FLEET_KEY_MAX + 1;
    fclose(f);
    if (n < FLEET_KEY_MIN || n > FLEET_KEY_MAX) {
        OPENSSL_cleanse(k->bytes, sizeof(k->bytes));
        mts_err_set(err, "fleet_key_file %s: the key must be %d to %d bytes", path,
                    FLEET_KEY_MIN, FLEET_KEY_MAX);
        return -1;
    }
    k->len = n;
    k->set = true;
    return 0;
}

/* hex HMAC-SHA256(key, rkey NUL json), or '-'s without a key. */
static int
mac_of(const struct fleet_key *k, const char *rkey, const char *json, size_t jlen,
       char out[MAC_HEX + 1])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    size_t klen = strlen(rkey);
    unsigned char *msg;

    if (!k->set) {
        memset(out, '-', MAC_HEX);
        out[MAC_HEX] = '\0';
        return 0;
    }
    if ((msg = malloc(klen + 1 + jlen)) == NULL)
        return -1;
    memcpy(msg, rkey, klen + 1);
    memcpy(msg + klen + 1, json, jlen);
    if (HMAC(EVP_sha256(), k->bytes, (int)k->len, msg, klen + 1 + jlen, md, &mdlen) == NULL ||
        mdlen * 2 != MAC_HEX) {
        free(msg);
        return -1;
    }
    free(msg);
    for (unsigned i = 0; i < mdlen; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
    return 0;
}

/* The values as "F1 <mac> [..]". */
static char *
encode_vals(const struct fleet_key *k, const char *rkey, const struct cache_val *v, size_t n,
            size_t *len, struct mts_err *err)
{
    json_t *a = json_array();
    char *json = NULL, *out = NULL, mac[MAC_HEX + 1];
    size_t jlen;

    for (size_t i = 0; a != NULL && i < n; i++) {
        json_t *x = v[i].type == CACHE_VAL_INT    ? json_integer((json_int_t)v[i].i)
                    : v[i].type == CACHE_VAL_TEXT ? json_stringn(v[i].text, v[i].len)
                                                  : json_null();
        if (x == NULL || json_array_append_new(a, x) != 0) {
            json_decref(a);
            a = NULL;
        }
    }
    if (a != NULL)
        json = json_dumps(a, JSON_COMPACT);
    json_decref(a);
    if (json == NULL) {
        mts_err_set(err, "fleet value: out of memory");
        return NULL;
    }
    jlen = strlen(json);
    if (mac_of(k, rkey, json, jlen, mac) != 0 ||
        (out = malloc(HEAD_LEN + MAC_HEX + 1 + jlen + 1)) == NULL) {
        free(json);
        mts_err_set(err, "fleet value: cannot sign (out of memory)");
        return NULL;
    }
    memcpy(out, HEAD, HEAD_LEN);
    memcpy(out + HEAD_LEN, mac, MAC_HEX);
    out[HEAD_LEN + MAC_HEX] = ' ';
    memcpy(out + HEAD_LEN + MAC_HEX + 1, json, jlen + 1);
    *len = HEAD_LEN + MAC_HEX + 1 + jlen;
    free(json);
    return out;
}

/*
 * Checks the head and the MAC of val, and parses its n column values into
 * v (texts pointing into *ap, which the caller json_decref's). With rows:
 * 1 to *rows rows of n columns each, one after the other (v holds n *
 * *rows), and *rows says how many came.
 */
static bool
decode_vals(const struct fleet_key *k, const char *rkey, const char *val, size_t len,
            struct cache_val *v, size_t n, size_t *rows, json_t **ap, struct mts_err *err)
{
    char mac[MAC_HEX + 1];
    const char *json = val + HEAD_LEN + MAC_HEX + 1;
    size_t jlen;
    json_error_t jerr;
    json_t *a;

    *ap = NULL;
    if (len > FLEET_VALUE_MAX) {
        mts_err_set(err, "value of %zu bytes (at most %d)", len, FLEET_VALUE_MAX);
        return false;
    }
    if (len < HEAD_LEN + MAC_HEX + 1 || memcmp(val, HEAD, HEAD_LEN) != 0 ||
        val[HEAD_LEN + MAC_HEX] != ' ') {
        mts_err_set(err, "not a value of this version (truncated or foreign)");
        return false;
    }
    jlen = len - (HEAD_LEN + MAC_HEX + 1);
    if (k->set) {
        if (mac_of(k, rkey, json, jlen, mac) != 0) {
            mts_err_set(err, "cannot check the HMAC (out of memory)");
            return false;
        }
        if (CRYPTO_memcmp(mac, val + HEAD_LEN, MAC_HEX) != 0) {
            mts_err_set(err, "bad HMAC: not written with the fleet key");
            return false;
        }
    }
    /* No NUL inside strings (jansson refuses \u0000 without JSON_ALLOW_NUL). */
    a = json_loadb(json, jlen, JSON_REJECT_DUPLICATES, &jerr);
    if (a != NULL && json_is_array(a) && rows != NULL) {
        size_t got = json_array_size(a);

        if (got == 0 || got % n != 0 || got / n > *rows) {
            mts_err_set(err, "not 1 to %zu rows of %zu columns", *rows, n);
            json_decref(a);
            return false;
        }
        *rows = got / n;
        n = got;
    }
    if (a == NULL || !json_is_array(a) || json_array_size(a) != n) {
        mts_err_set(err, "not a row of %zu columns%s%s", n, a == NULL ? ": " : "",
                    a == NULL ? jerr.text : "");
        json_decref(a);
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        json_t *x = json_array_get(a, i);

        if (json_is_null(x)) {
            v[i] = (struct cache_val){CACHE_VAL_NULL, 0, NULL, 0};
        } else if (json_is_integer(x)) {
            v[i] = (struct cache_val){CACHE_VAL_INT, (int64_t)json_integer_value(x), NULL, 0};
        } else if (json_is_string(x)) {
            v[i] = (struct cache_val){CACHE_VAL_TEXT, 0, json_string_value(x),
                                      json_string_length(x)};
        } else {
            v[i] = (struct cache_val){CACHE_VAL_OTHER, 0, NULL, 0};
        }
    }
    *ap = a;
    return true;
}

char *
fleet_codec_row_encode(const struct fleet_key *k, const char *rkey, const struct cache_entry *e,
                       size_t *len, struct mts_err *err)
{
    struct cache_val v[CACHE_ROW_DOMAIN_NCOLS];
    char *joined, *out;

    if (cache_row_encode(e, v, &joined, err) != 0)
        return NULL;
    out = encode_vals(k, rkey, v, CACHE_ROW_DOMAIN_NCOLS, len, err);
    free(joined);
    return out;
}

/* The part of rkey after its last ':' (the domain or host it is for). */
static const char *
name_of(const char *rkey)
{
    const char *c = strrchr(rkey, ':');

    return c != NULL ? c + 1 : rkey;
}

/* A policy is kept max_age, or policy_min_lifetime (at most an hour) when
 * that is longer (refresh.c). */
static int64_t
life_max(uint32_t max_age)
{
    return max_age > 3600 ? (int64_t)max_age : 3600;
}

bool
fleet_codec_row_decode(const struct fleet_key *k, const char *rkey, const char *val, size_t len,
                       int64_t now, struct cache_entry *e, struct mts_err *err)
{
    struct cache_val v[CACHE_ROW_DOMAIN_NCOLS];
    json_t *a;
    bool ok;
    int64_t soon = now + FLEET_CODEC_CLOCK_SKEW;
    /* A policy lives max_age at most; a negative answer far less. */
    int64_t latest = soon + (int64_t)POLICY_MAX_AGE_LIMIT;

    memset(e, 0, sizeof(*e));
    if (!decode_vals(k, rkey, val, len, v, CACHE_ROW_DOMAIN_NCOLS, NULL, &a, err))
        return false;
    ok = cache_row_decode(v, e, err);
    json_decref(a);
    if (!ok)
        return false;
    if (strcmp(e->domain, name_of(rkey)) != 0)
        mts_err_set(err, "row for %s under the key of %s", e->domain, name_of(rkey));
    else if (e->fetched_at > soon || e->checked_at > soon || e->fetch_failed_at > soon)
        mts_err_set(err, "row for %s: a time in the future", e->domain);
    else if (e->expires_at > latest ||
             (e->has_policy && e->expires_at > e->fetched_at + life_max(e->max_age)))
        mts_err_set(err, "row for %s: expires out of range", e->domain);
    else
        return true;
    cache_entry_free(e);
    memset(e, 0, sizeof(*e));
    return false;
}

char *
fleet_codec_tls_encode(const struct fleet_key *k, const char *rkey,
                       const struct probecache_row *rows, size_t n, size_t *len,
                       struct mts_err *err)
{
    struct cache_val v[PROBECACHE_ADDR_MAX * CACHE_TLS_PROBE_NCOLS];

    if (n == 0 || n > PROBECACHE_ADDR_MAX) {
        mts_err_set(err, "probe value: %zu rows (1 to %d)", n, PROBECACHE_ADDR_MAX);
        return NULL;
    }
    for (size_t i = 0; i < n; i++)
        if (probecache_row_encode(&rows[i], &v[i * CACHE_TLS_PROBE_NCOLS], err) != 0)
            return NULL;
    return encode_vals(k, rkey, v, n * CACHE_TLS_PROBE_NCOLS, len, err);
}

bool
fleet_codec_tls_decode(const struct fleet_key *k, const char *rkey, const char *val, size_t len,
                       int64_t now, int port, struct probecache_row *rows, size_t *n,
                       struct mts_err *err)
{
    struct cache_val v[PROBECACHE_ADDR_MAX * CACHE_TLS_PROBE_NCOLS];
    size_t got = PROBECACHE_ADDR_MAX;
    json_t *a;
    bool ok = true;

    *n = 0;
    if (!decode_vals(k, rkey, val, len, v, CACHE_TLS_PROBE_NCOLS, &got, &a, err))
        return false;
    for (size_t i = 0; ok && i < got; i++) {
        struct probecache_row *r = &rows[i];

        if (!probecache_row_decode(&v[i * CACHE_TLS_PROBE_NCOLS], r))
            mts_err_set(err, "probe row %zu: a column out of range", i);
        else if (strcmp(r->host, name_of(rkey)) != 0)
            mts_err_set(err, "probe of %s under the key of %s", r->host, name_of(rkey));
        else if (r->port != port)
            mts_err_set(err, "probe of %s: port %d, not %d", r->host, r->port, port);
        else if (r->probed_at > now + FLEET_CODEC_CLOCK_SKEW)
            mts_err_set(err, "probe of %s: a time in the future", r->host);
        else if (r->expires_at > r->probed_at + FLEET_CODEC_PROBE_LIFE_MAX)
            mts_err_set(err, "probe of %s: expires out of range", r->host);
        else
            continue;
        ok = false;
    }
    json_decref(a);
    if (!ok) {
        memset(rows, 0, sizeof(*rows) * got);
        return false;
    }
    *n = got;
    return true;
}
