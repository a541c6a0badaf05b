/*
 * probecache - probe rows <-> cache values, and a host's summary; see
 * probecache.h.
 */
#include "probecache.h"

#include <stdio.h>
#include <string.h>

#include "cache_row.h"
#include "err.h"

static void
copy_cut(char *dst, size_t dstsz, const char *src)
{
    size_t l = strnlen(src, dstsz - 1);

    memcpy(dst, src, l);
    dst[l] = '\0';
}

void
probecache_row_from(const struct tlsprobe_result *r, const struct tlsprobe_grade *g,
                    int64_t now, int64_t ttl, int64_t failure_ttl, struct probecache_row *out)
{
    size_t used = 0;

    memset(out, 0, sizeof(*out));
    copy_cut(out->host, sizeof(out->host), r->mx_host);
    copy_cut(out->address, sizeof(out->address), r->address);
    out->port = r->port;
    out->status = r->status;
    out->grade = g->grade;
    out->rfc8461 = g->rfc8461;
    out->pkix = g->pkix;
    out->tls = g->tls;
    copy_cut(out->reason, sizeof(out->reason),
             r->reason[0] != '\0' ? r->reason : g->n > 0 ? g->reasons[0] : "");
    if (r->tls_done) {
        copy_cut(out->protocol, sizeof(out->protocol), r->protocol);
        copy_cut(out->cipher, sizeof(out->cipher), r->cipher);
    }
    if (r->cert_present) {
        for (size_t i = 0; i < r->n_names; i++) {
            size_t l = strlen(r->names[i]);
            if (used + l + 2 > sizeof(out->cert_names))
                break;
            if (used > 0)
                out->cert_names[used++] = '\n';
            memcpy(out->cert_names + used, r->names[i], l + 1);
            used += l;
        }
        out->cert_not_after = r->not_after;
    }
    out->probed_at = now;
    out->expires_at = now + (g->rfc8461 ? ttl : failure_ttl);
}

void
probecache_row_dane(struct probecache_row *row, const struct tlsa_set *t,
                    const struct tlsprobe_result *r, int64_t failure_ttl)
{
    char recs[PROBECACHE_TLSA_MAX];

    row->dane = TLSA_DANE_NONE;
    row->dane_detail[0] = row->tlsa[0] = '\0';
    if (t == NULL)
        return;
    tlsa_set_text(t, recs, sizeof(recs));
    mts_text_set(row->tlsa, sizeof(row->tlsa), "%s %s%s%s", tlsa_state_name(t->state), t->owner,
                 recs[0] ? ": " : "", recs);
    if (t->state == TLSA_FAILED) {
        row->dane = TLSA_DANE_LOOKUP_FAILED;
        mts_text_set(row->dane_detail, sizeof(row->dane_detail), "%s", t->why);
        if (row->expires_at > row->probed_at + failure_ttl)
            row->expires_at = row->probed_at + failure_ttl;
        return;
    }
    if (t->state != TLSA_SECURE)
        return;
    if (row->expires_at > row->probed_at + (int64_t)t->ttl)
        row->expires_at = row->probed_at + ((int64_t)t->ttl > failure_ttl ? (int64_t)t->ttl :
                                            failure_ttl);
    if (r->dane_active) {
        row->dane = (enum tlsa_dane)r->dane;
        mts_text_set(row->dane_detail, sizeof(row->dane_detail), "%s",
                     r->dane == TLSA_DANE_VERIFIED ? r->dane_match : r->verify_text);
    } else if (t->n_usable == 0) {
        row->dane = TLSA_DANE_UNUSABLE;
        mts_text_set(row->dane_detail, sizeof(row->dane_detail), "%s", t->why);
    } else {
        /* Usable records, but the probe never reached the handshake: DANE
         * did not verify (the grade says why). */
        row->dane = TLSA_DANE_FAILED;
        mts_text_set(row->dane_detail, sizeof(row->dane_detail),
                     "no TLS session to verify against %s", t->owner);
    }
}

/* ------------------------------------------------------------ codec */

static void
text_val(struct cache_val *v, const char *s)
{
    v->type = s[0] != '\0' ? CACHE_VAL_TEXT : CACHE_VAL_NULL;
    v->text = s;
    v->len = strlen(s);
}

static void
int_val(struct cache_val *v, int64_t i)
{
    v->type = CACHE_VAL_INT;
    v->i = i;
}

int
probecache_row_encode(const struct probecache_row *row, struct cache_val *v, struct mts_err *err)
{
    memset(v, 0, sizeof(*v) * CACHE_TLS_PROBE_NCOLS);
    if (row->host[0] == '\0' || row->address[0] == '\0' || row->port <= 0 ||
        row->port > 65535 || !cache_row_source_ok(row->source)) {
        mts_err_set(err, "probe row: host, address and port are required, a valid source");
        return -1;
    }
    text_val(&v[0], row->host);
    text_val(&v[1], row->address);
    int_val(&v[2], row->port);
    text_val(&v[3], tlsprobe_status_name(row->status));
    text_val(&v[4], tlsprobe_grade_name(row->grade));
    int_val(&v[5], row->rfc8461);
    int_val(&v[6], row->tls);
    text_val(&v[7], row->reason);
    text_val(&v[8], row->protocol);
    text_val(&v[9], row->cipher);
    text_val(&v[10], row->cert_names);
    int_val(&v[11], row->cert_not_after);
    int_val(&v[12], row->probed_at);
    int_val(&v[13], row->expires_at);
    text_val(&v[14], tlsa_dane_name(row->dane));
    text_val(&v[15], row->dane_detail);
    text_val(&v[16], row->tlsa);
    int_val(&v[17], row->pkix);
    text_val(&v[18], row->source);
    return 0;
}

enum cache_status
probecache_put(struct cache *c, const struct probecache_row *row, struct mts_err *err)
{
    struct cache_val v[CACHE_TLS_PROBE_NCOLS];

    if (probecache_row_encode(row, v, err) != 0)
        return CACHE_ERROR;
    return cache_put_tls_probe(c, v, err);
}

/* A text column into dst: NULL is "", too long fails unless cut. */
static bool
get_text(const struct cache_val *v, char *dst, size_t dstsz, bool cut)
{
    dst[0] = '\0';
    if (v->type == CACHE_VAL_NULL)
        return true;
    if (v->type != CACHE_VAL_TEXT || v->text == NULL || memchr(v->text, '\0', v->len) != NULL)
        return false;
    if (v->len >= dstsz && !cut)
        return false;
    copy_cut(dst, dstsz, v->text);
    return true;
}

static bool
get_int(const struct cache_val *v, int64_t *out)
{
    if (v->type != CACHE_VAL_INT)
        return false;
    *out = v->i;
    return true;
}

/* The enum code whose word is s, or -1. */
static int
word_code(const char *s, const char *(*name)(int), int last)
{
    for (int i = 0; i <= last; i++)
        if (strcmp(name(i), s) == 0)
            return i;
    return -1;
}

static const char *
status_word(int i)
{
    return tlsprobe_status_name((enum tlsprobe_status)i);
}

static const char *
grade_word(int i)
{
    return tlsprobe_grade_name((enum tlsprobe_grade_word)i);
}

/* A row written before schema 4 has no DANE word (NULL): none. */
static bool
decode_dane(const struct cache_val *v, struct probecache_row *r)
{
    char word[32];
    int code;

    if (!get_text(&v[14], word, sizeof(word), false))
        return false;
    if (word[0] == '\0')
        code = TLSA_DANE_NONE;
    else if ((code = tlsa_dane_code(word)) < 0)
        return false;
    r->dane = (enum tlsa_dane)code;
    return get_text(&v[15], r->dane_detail, sizeof(r->dane_detail), true) &&
           get_text(&v[16], r->tlsa, sizeof(r->tlsa), true);
}

/*
 * A row written before schema 5 has no pkix (NULL). Without DANE the
 * probe's rfc8461 was WebPKI's; a DANE row (verified or failed) did not
 * judge WebPKI: not known to be valid, so false until the next probe.
 */
static bool
decode_pkix(const struct cache_val *v, struct probecache_row *r)
{
    if (v[17].type == CACHE_VAL_NULL) {
        r->pkix = r->rfc8461 && !tlsa_dane_applies(r->dane);
        return true;
    }
    if (v[17].type != CACHE_VAL_INT)
        return false;
    r->pkix = v[17].i != 0;
    return true;
}

bool
probecache_row_decode(const struct cache_val *v, struct probecache_row *r)
{
    char word[32];
    int64_t port, rfc, tls;
    int code;

    memset(r, 0, sizeof(*r));
    if (!get_text(&v[0], r->host, sizeof(r->host), false) ||
        !get_text(&v[1], r->address, sizeof(r->address), false) || !get_int(&v[2], &port) ||
        port <= 0 || port > 65535)
        return false;
    r->port = (int)port;
    if (!get_text(&v[3], word, sizeof(word), false) ||
        (code = word_code(word, status_word, TLSPROBE_ERROR)) < 0)
        return false;
    r->status = (enum tlsprobe_status)code;
    if (!get_text(&v[4], word, sizeof(word), false) ||
        (code = word_code(word, grade_word, TLSPROBE_GRADE_UNKNOWN)) < 0)
        return false;
    r->grade = (enum tlsprobe_grade_word)code;
    if (!get_int(&v[5], &rfc) || !get_int(&v[6], &tls))
        return false;
    r->rfc8461 = rfc != 0;
    r->tls = tls != 0;
    return get_text(&v[7], r->reason, sizeof(r->reason), true) &&
           get_text(&v[8], r->protocol, sizeof(r->protocol), false) &&
           get_text(&v[9], r->cipher, sizeof(r->cipher), false) &&
           get_text(&v[10], r->cert_names, sizeof(r->cert_names), true) &&
           get_int(&v[11], &r->cert_not_after) && get_int(&v[12], &r->probed_at) &&
           get_int(&v[13], &r->expires_at) && decode_dane(v, r) && decode_pkix(v, r) &&
           get_text(&v[18], r->source, sizeof(r->source), false) &&
           cache_row_source_ok(r->source);
}

struct get_ctx {
    struct probecache_row *rows;
    size_t max, n, n_bad;
};

static void
collect(const struct cache_val *v, void *arg)
{
    struct get_ctx *g = arg;

    if (g->n >= g->max)
        return;
    if (probecache_row_decode(v, &g->rows[g->n]))
        g->n++;
    else
        g->n_bad++;
}

enum cache_status
probecache_get(struct cache *c, const char *host, int port, struct probecache_row *rows,
               size_t max, size_t *n, size_t *n_bad, struct mts_err *err)
{
    struct get_ctx g = {rows, max, 0, 0};
    enum cache_status st = cache_get_tls_probes(c, host, port, max, collect, &g, err);

    *n = st == CACHE_OK ? g.n : 0;
    if (n_bad != NULL)
        *n_bad = g.n_bad;
    return st;
}

struct list_ctx {
    probecache_row_fn fn;
    void *arg;
    size_t n_bad;
};

static void
list_one(const struct cache_val *v, void *arg)
{
    struct list_ctx *l = arg;
    struct probecache_row row;

    if (probecache_row_decode(v, &row))
        l->fn(&row, l->arg);
    else
        l->n_bad++;
}

enum cache_status
probecache_list(struct cache *c, size_t max, probecache_row_fn fn, void *arg, size_t *n_bad,
                struct mts_err *err)
{
    struct list_ctx l = {fn, arg, 0};
    enum cache_status st = cache_list_tls_probes(c, max, list_one, &l, err);

    if (n_bad != NULL)
        *n_bad = l.n_bad;
    return st;
}

enum cache_status
probecache_delete(struct cache *c, const char *host, struct mts_err *err)
{
    return cache_delete_tls_probes(c, host, err);
}

void
probecache_summarise(const struct probecache_row *rows, size_t n, struct probecache_host *out)
{
    const struct probecache_row *worst = NULL;

    memset(out, 0, sizeof(*out));
    for (size_t i = 0; i < n; i++) {
        const struct probecache_row *r = &rows[i];

        if (i == 0 || r->probed_at < out->probed_at)
            out->probed_at = r->probed_at;
        if (i == 0 || r->expires_at < out->expires_at)
            out->expires_at = r->expires_at;
        /* A failed TLSA lookup makes the whole host unusable (RFC 7672 §2.2). */
        if (worst != NULL && worst->dane == TLSA_DANE_LOOKUP_FAILED)
            continue;
        /* Unknown addresses lose to judged ones: the MTA moves on to the next. */
        if (worst == NULL || r->dane == TLSA_DANE_LOOKUP_FAILED ||
            (worst->grade == TLSPROBE_GRADE_UNKNOWN && r->grade != TLSPROBE_GRADE_UNKNOWN) ||
            (r->grade != TLSPROBE_GRADE_UNKNOWN && r->grade > worst->grade))
            worst = r;
    }
    out->worst = worst;
    out->grade = worst != NULL ? worst->grade : TLSPROBE_GRADE_UNKNOWN;
    out->rfc8461 = worst != NULL && worst->rfc8461;
    out->tls = worst != NULL && worst->tls;
    /* WebPKI holds for the host only if it holds at every judged address. */
    out->pkix = worst != NULL && worst->pkix;
    for (size_t i = 0; i < n && out->pkix; i++)
        if (rows[i].grade != TLSPROBE_GRADE_UNKNOWN && !rows[i].pkix)
            out->pkix = false;
}
