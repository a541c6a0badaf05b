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
#include "tlsa.h"

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

char *
fleet_codec_mx_encode(const struct fleet_key *k, const char *rkey, const struct cache_mxset *m,
                      size_t *len, struct mts_err *err)
{
    struct cache_val v[CACHE_ROW_MX_NCOLS];
    char *joined, *out;

    if (cache_mxset_encode(m, v, &joined, err) != 0)
        return NULL;
    out = encode_vals(k, rkey, v, CACHE_ROW_MX_NCOLS, len, err);
    free(joined);
    return out;
}

bool
fleet_codec_mx_decode(const struct fleet_key *k, const char *rkey, const char *val, size_t len,
                      int64_t now, struct cache_mxset *m, struct mts_err *err)
{
    struct cache_val v[CACHE_ROW_MX_NCOLS];
    json_t *a;
    bool ok;

    memset(m, 0, sizeof(*m));
    if (!decode_vals(k, rkey, val, len, v, CACHE_ROW_MX_NCOLS, NULL, &a, err))
        return false;
    ok = cache_mxset_decode(v, m, err);
    json_decref(a);
    if (!ok)
        return false;
    if (strcmp(m->domain, name_of(rkey)) != 0)
        mts_err_set(err, "MX set of %s under the key of %s", m->domain, name_of(rkey));
    else if (m->fetched_at > now + FLEET_CODEC_CLOCK_SKEW)
        mts_err_set(err, "MX set of %s: a time in the future", m->domain);
    else if (m->expires_at < m->fetched_at ||
             m->expires_at > m->fetched_at + FLEET_CODEC_DNS_LIFE_MAX)
        mts_err_set(err, "MX set of %s: expires out of range", m->domain);
    else if (!k->set && strcmp(m->dnssec, "secure") == 0)
        /* Anyone who can write to Redis could say so: only the key proves
         * that a host of the fleet saw the signatures validate. */
        mts_err_set(err, "MX set of %s: claims DNSSEC without the fleet key", m->domain);
    else
        return true;
    cache_mxset_free(m);
    memset(m, 0, sizeof(*m));
    return false;
}

/* The columns of a TLSA value. */
enum {
    TV_HOST, TV_PORT, TV_FETCHED, TV_EXPIRES, TV_STATE, TV_BASE, TV_OWNER, TV_DROPPED, TV_WHY,
    TV_RECS, TV_NCOLS
};
#define TLSA_RECS_TEXT_MAX (TLSA_RECS_MAX * (TLSA_DATA_MAX * 2 + 16))

static void
text_col(struct cache_val *v, const char *s)
{
    *v = (struct cache_val){CACHE_VAL_TEXT, 0, s, strlen(s)};
}

char *
fleet_codec_tlsa_encode(const struct fleet_key *k, const char *rkey, const char *host, int port,
                        const struct tlsa_set *t, int64_t fetched_at, int64_t expires_at,
                        size_t *len, struct mts_err *err)
{
    struct cache_val v[TV_NCOLS];
    char *recs, *out;
    size_t at = 0;

    if (t->n > TLSA_RECS_MAX || (recs = malloc(TLSA_RECS_TEXT_MAX + 1)) == NULL) {
        mts_err_set(err, "TLSA value: too many records, or out of memory");
        return NULL;
    }
    recs[0] = '\0';
    /* "usage selector mtype hex;..." : every byte, not tlsa_set_text's cut form. */
    for (size_t i = 0; i < t->n; i++) {
        const struct tlsa_rec *r = &t->rec[i];

        at += (size_t)snprintf(recs + at, TLSA_RECS_TEXT_MAX + 1 - at, "%s%u %u %u ",
                               i > 0 ? ";" : "", r->usage, r->selector, r->mtype);
        for (size_t j = 0; j < r->len && j < TLSA_DATA_MAX; j++)
            at += (size_t)snprintf(recs + at, TLSA_RECS_TEXT_MAX + 1 - at, "%02x", r->data[j]);
    }
    text_col(&v[TV_HOST], host);
    v[TV_PORT] = (struct cache_val){CACHE_VAL_INT, port, NULL, 0};
    v[TV_FETCHED] = (struct cache_val){CACHE_VAL_INT, fetched_at, NULL, 0};
    v[TV_EXPIRES] = (struct cache_val){CACHE_VAL_INT, expires_at, NULL, 0};
    v[TV_STATE] = (struct cache_val){CACHE_VAL_INT, (int64_t)t->state, NULL, 0};
    text_col(&v[TV_BASE], t->base);
    text_col(&v[TV_OWNER], t->owner);
    v[TV_DROPPED] = (struct cache_val){CACHE_VAL_INT, (int64_t)t->n_dropped, NULL, 0};
    text_col(&v[TV_WHY], t->why);
    text_col(&v[TV_RECS], recs);
    out = encode_vals(k, rkey, v, TV_NCOLS, len, err);
    free(recs);
    return out;
}

static int
hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* One "u s m hex" into r, through tlsa_parse_rdata (its checks, and usable). */
static bool
rec_parse(const char *s, size_t len, struct tlsa_rec *r)
{
    unsigned char rd[TLSA_DATA_MAX + 3];
    unsigned u, sel, mt;
    int used = 0;
    size_t n = 0;
    char head[24];

    if (len < 6 || len >= sizeof(head) + TLSA_DATA_MAX * 2)
        return false;
    snprintf(head, sizeof(head), "%.*s", (int)(len < sizeof(head) - 1 ? len : sizeof(head) - 1),
             s);
    if (sscanf(head, "%3u %3u %3u %n", &u, &sel, &mt, &used) != 3 || used == 0 || u > 255 ||
        sel > 255 || mt > 255 || (len - (size_t)used) % 2 != 0 ||
        (len - (size_t)used) / 2 > TLSA_DATA_MAX)
        return false;
    rd[0] = (unsigned char)u;
    rd[1] = (unsigned char)sel;
    rd[2] = (unsigned char)mt;
    for (size_t i = (size_t)used; i < len; i += 2) {
        int hi = hexval(s[i]), lo = hexval(s[i + 1]);

        if (hi < 0 || lo < 0)
            return false;
        rd[3 + n++] = (unsigned char)(hi * 16 + lo);
    }
    return tlsa_parse_rdata(rd, 3 + n, r) == 0;
}

/* A text column of at most max bytes, printable, into out (max + 1 bytes). */
static bool
text_in(const struct cache_val *v, char *out, size_t max)
{
    if (v->type != CACHE_VAL_TEXT || v->text == NULL || v->len > max)
        return false;
    for (size_t i = 0; i < v->len; i++)
        if ((unsigned char)v->text[i] < 0x20 || v->text[i] == 0x7f)
            return false;
    memcpy(out, v->text, v->len);
    out[v->len] = '\0';
    return true;
}

bool
fleet_codec_tlsa_decode(const struct fleet_key *k, const char *rkey, const char *val, size_t len,
                        int64_t now, int port, struct tlsa_set *t, int64_t *expires_at,
                        struct mts_err *err)
{
    struct cache_val v[TV_NCOLS];
    char host[CACHE_DOMAIN_MAX + 1];
    json_t *a;
    bool ok = false;

    memset(t, 0, sizeof(*t));
    *expires_at = 0;
    if (!k->set) {
        /* A TLSA answer says whether DANE applies: without the key a
         * writer could turn it off (or on) for any host. */
        mts_err_set(err, "TLSA results are shared only with the fleet key");
        return false;
    }
    if (!decode_vals(k, rkey, val, len, v, TV_NCOLS, NULL, &a, err))
        return false;
    if (!text_in(&v[TV_HOST], host, CACHE_DOMAIN_MAX) ||
        !cache_row_name_ok("MX host", host, err) || v[TV_PORT].type != CACHE_VAL_INT ||
        v[TV_FETCHED].type != CACHE_VAL_INT || v[TV_EXPIRES].type != CACHE_VAL_INT ||
        v[TV_STATE].type != CACHE_VAL_INT || v[TV_DROPPED].type != CACHE_VAL_INT ||
        !text_in(&v[TV_BASE], t->base, TLSA_NAME_MAX) ||
        !text_in(&v[TV_OWNER], t->owner, sizeof(t->owner) - 1) ||
        !text_in(&v[TV_WHY], t->why, TLSA_WHY_MAX - 1) || v[TV_RECS].type != CACHE_VAL_TEXT ||
        v[TV_RECS].len > TLSA_RECS_TEXT_MAX)
        mts_err_set(err, "TLSA value: a column has the wrong type or length");
    else if (strcmp(host, name_of(rkey)) != 0)
        mts_err_set(err, "TLSA of %s under the key of %s", host, name_of(rkey));
    else if (v[TV_PORT].i != port)
        mts_err_set(err, "TLSA of %s: port %lld, not %d", host, (long long)v[TV_PORT].i, port);
    else if (v[TV_FETCHED].i > now + FLEET_CODEC_CLOCK_SKEW || v[TV_FETCHED].i < 0)
        mts_err_set(err, "TLSA of %s: a time in the future", host);
    else if (v[TV_EXPIRES].i < v[TV_FETCHED].i ||
             v[TV_EXPIRES].i > v[TV_FETCHED].i + FLEET_CODEC_DNS_LIFE_MAX)
        mts_err_set(err, "TLSA of %s: expires out of range", host);
    else if (v[TV_STATE].i != TLSA_INSECURE && v[TV_STATE].i != TLSA_NONE &&
             v[TV_STATE].i != TLSA_SECURE)
        /* A failed lookup may be the writer's resolver alone: never shared. */
        mts_err_set(err, "TLSA of %s: state %lld out of range", host, (long long)v[TV_STATE].i);
    else if (v[TV_DROPPED].i < 0 || v[TV_DROPPED].i > 255)
        mts_err_set(err, "TLSA of %s: dropped count out of range", host);
    else
        ok = true;
    for (size_t at = 0; ok && at < v[TV_RECS].len;) {
        const char *s = v[TV_RECS].text + at, *semi;
        size_t n = v[TV_RECS].len - at;

        if ((semi = memchr(s, ';', n)) != NULL)
            n = (size_t)(semi - s);
        if (t->n >= TLSA_RECS_MAX || v[TV_STATE].i != TLSA_SECURE ||
            !rec_parse(s, n, &t->rec[t->n])) {
            mts_err_set(err, "TLSA of %s: record %zu invalid", host, t->n);
            ok = false;
        } else {
            t->n_usable += t->rec[t->n].usable;
            t->n++;
        }
        at += n + (semi != NULL);
    }
    if (ok) {
        t->state = (enum tlsa_state)v[TV_STATE].i;
        t->n_dropped = (size_t)v[TV_DROPPED].i;
        t->ttl = (uint32_t)(v[TV_EXPIRES].i - v[TV_FETCHED].i);
        *expires_at = v[TV_EXPIRES].i;
    } else {
        memset(t, 0, sizeof(*t));
    }
    json_decref(a);
    return ok;
}
