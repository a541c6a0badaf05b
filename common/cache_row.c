/*
 * cache_row - cache rows <-> column values, and their checks; see
 * cache_row.h.
 *
 * DESCRIPTION
 *	Both tables are described once as column tables (domain_cols,
 *	probe_cols) that drive encoding, decoding and the bounds checks.
 */
#include "cache_row.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mxmatch.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

/* How a column maps to a struct field. */
enum kind {
    K_STR,    /* char[]; NULL <-> ""; too long is refused */
    K_CUT,    /* char[] for people; too long is cut */
    K_DUP,    /* char *, malloc'd; NULL <-> NULL */
    K_TIME,   /* int64_t seconds since the epoch, 0 .. CACHE_TIME_MAX */
    K_BOOL,   /* bool as 0/1 */
    K_U32,    /* uint32_t max_age, at most POLICY_MAX_AGE_LIMIT */
    K_MODE,   /* enum policy_mode as its name; NULL when there is no policy */
    K_STATUS, /* enum status_kind as its name; NULL: has_status false */
    K_MX      /* char **mx, n_mx: joined with '\n'; NULL without a policy */
};

struct col {
    const char *name;
    enum kind kind;
    size_t off, size;
};

/* clang-format off */
#define COL(t, f, k) {#f, k, offsetof(struct t, f), sizeof(((struct t *)0)->f)}
static const struct col domain_cols[] = {
    COL(cache_entry, domain, K_STR),      COL(cache_entry, txt_id, K_STR),
    COL(cache_entry, has_policy, K_BOOL), COL(cache_entry, mode, K_MODE),
    COL(cache_entry, max_age, K_U32),     COL(cache_entry, mx, K_MX),
    COL(cache_entry, policy_text, K_DUP), COL(cache_entry, fetched_at, K_TIME),
    COL(cache_entry, expires_at, K_TIME),  COL(cache_entry, checked_at, K_TIME),
    COL(cache_entry, last_used, K_TIME),   COL(cache_entry, status, K_STATUS),
    COL(cache_entry, dnssec, K_STR),      COL(cache_entry, last_error, K_CUT),
    COL(cache_entry, fetch_failed_id, K_STR), COL(cache_entry, fetch_failed_at, K_TIME),
    COL(cache_entry, source, K_STR),
};
static const struct col probe_cols[] = {
    COL(cache_probe, host, K_STR),        COL(cache_probe, probed_at, K_TIME),
    COL(cache_probe, expires_at, K_TIME),  COL(cache_probe, starttls, K_BOOL),
    COL(cache_probe, tls_version, K_STR), COL(cache_probe, cert_valid, K_BOOL),
    COL(cache_probe, error, K_CUT),
};
/* clang-format on */

_Static_assert(NELEM(domain_cols) == CACHE_ROW_DOMAIN_NCOLS, "one value per domain column");
_Static_assert(NELEM(probe_cols) == CACHE_ROW_PROBE_NCOLS, "one value per probe column");

/* A longer status word is refused as too long (the column once filled a char[16]). */
#define STATUS_WORD_MAX 16
/* What an unknown word read back becomes: entry_ok refuses it. */
#define STATUS_INVALID ((enum status_kind)(STATUS_UNKNOWN + 1))
#define MODE_INVALID ((enum policy_mode)(POLICY_MODE_NONE + 1))

static const struct nametab dnssec_names[] = {
    {"secure", 0}, {"insecure", 1}, {"bogus", 2}, {NULL, -1},
};

#define DIGITS "0123456789"
#define LOWER "abcdefghijklmnopqrstuvwxyz"
#define UPPER "ABCDEFGHIJKLMNOPQRSTUVWXYZ"

/* Keys are stored exactly as given, so refuse anything that is not already normalised. */
bool
cache_row_name_ok(const char *what, const char *d, struct mts_err *err)
{
    size_t n = d != NULL ? strnlen(d, CACHE_DOMAIN_MAX + 1) : 0, bad;

    if (n == 0 || n > CACHE_DOMAIN_MAX) {
        mts_err_set(err, "invalid %s: empty or longer than %d bytes", what, CACHE_DOMAIN_MAX);
        return false;
    }
    if ((bad = strspn(d, LOWER DIGITS "-._")) < n) {
        mts_err_set(err, "invalid %s: byte 0x%02x at offset %zu (want lower-case A-label)", what,
                    (unsigned char)d[bad], bad);
        return false;
    }
    return true;
}

bool
cache_row_source_ok(const char *s)
{
    size_t n = strnlen(s, CACHE_SOURCE_MAX);

    return n < CACHE_SOURCE_MAX && strspn(s, LOWER DIGITS "-._") == n;
}

void
cache_row_source_from(char *dst, const char *name)
{
    size_t i;

    for (i = 0; i < CACHE_SOURCE_MAX - 1 && name[i] != '\0'; i++) {
        char c = (char)tolower((unsigned char)name[i]);

        dst[i] = strchr(LOWER DIGITS "-._", c) != NULL ? c : '-';
    }
    dst[i] = '\0';
}

char *
cache_mx_join(char *const *mx, size_t n)
{
    size_t len = 0;
    char *s, *p;

    for (size_t i = 0; i < n; i++)
        len += strlen(mx[i]) + 1;
    if ((s = p = malloc(len + 1)) == NULL)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        size_t l = strlen(mx[i]);

        memcpy(p, mx[i], l);
        p += l;
        if (i + 1 < n)
            *p++ = '\n';
    }
    *p = '\0';
    return s;
}

/* Splits len bytes of '\n'-joined patterns into e->mx (a trailing '\n' ends the list). */
static bool
mx_split(const char *s, size_t len, struct cache_entry *e)
{
    size_t n = 0, cap = 1;
    const char *end = s + len;

    for (const char *p = s; p < end; p++)
        cap += *p == '\n';
    if ((e->mx = calloc(cap, sizeof(*e->mx))) == NULL)
        return false;
    while (s < end) {
        const char *nl = memchr(s, '\n', (size_t)(end - s));
        size_t l = nl != NULL ? (size_t)(nl - s) : (size_t)(end - s);

        if ((e->mx[n] = strndup(s, l)) == NULL)
            return false; /* the caller frees what was split */
        e->n_mx = ++n;
        s = nl != NULL ? nl + 1 : end;
    }
    return true;
}

/* Every string field terminated within its array, and no text over CACHE_TEXT_MAX. */
static const char *
fields_bounded(const struct col *cols, size_t n, const void *obj)
{
    for (size_t i = 0; i < n; i++) {
        const char *f = (const char *)obj + cols[i].off;
        if (cols[i].kind == K_DUP) {
            const char *p = *(char *const *)(const void *)f;
            if (p != NULL && strnlen(p, CACHE_TEXT_MAX + 1) > CACHE_TEXT_MAX)
                return cols[i].name;
        } else if (cols[i].kind == K_MX) {
            const struct cache_entry *e = obj;
            size_t len = 0;
            for (size_t k = 0; k < e->n_mx && len <= CACHE_TEXT_MAX; k++) {
                /* A '\n' inside a pattern would read back as two. */
                if (strchr(e->mx[k], '\n') != NULL)
                    return cols[i].name;
                len += strnlen(e->mx[k], CACHE_TEXT_MAX + 1) + (k > 0);
            }
            if (len > CACHE_TEXT_MAX)
                return cols[i].name;
        } else if (cols[i].kind == K_TIME) {
            int64_t t;

            memcpy(&t, f, sizeof(t));
            if (t < 0 || t > CACHE_TIME_MAX)
                return cols[i].name;
        } else if ((cols[i].kind == K_STR || cols[i].kind == K_CUT) &&
                   strnlen(f, cols[i].size) == cols[i].size) {
            return cols[i].name;
        }
    }
    return NULL;
}

/* The same rules for what we write and what we read back. */
static bool
entry_ok(const struct cache_entry *e, struct mts_err *err)
{
    const char *bad = fields_bounded(domain_cols, NELEM(domain_cols), e);
    struct mts_err why;

    if (bad == NULL && !cache_row_name_ok("domain", e->domain, &why)) {
        mts_err_set(err, "cache row %s: %s", e->domain, why.msg);
        return false;
    }
    if (bad == NULL) {
        /* sts-id: 1*32 alnum (§3.1), or "" */
        if (e->txt_id[strspn(e->txt_id, LOWER UPPER DIGITS)] != '\0')
            bad = "txt_id";
        else if (e->fetch_failed_id[strspn(e->fetch_failed_id, LOWER UPPER DIGITS)] != '\0')
            bad = "fetch_failed_id";
        else if (e->has_policy && (unsigned)e->mode > POLICY_MODE_NONE)
            bad = "mode";
        else if (e->max_age > POLICY_MAX_AGE_LIMIT)
            bad = "max_age";
        else if (e->has_status && (unsigned)e->status > STATUS_UNKNOWN)
            bad = "status";
        else if (e->dnssec[0] != '\0' && nametab_code(dnssec_names, NAMETAB_EXACT, e->dnssec) < 0)
            bad = "dnssec";
        else if (!cache_row_source_ok(e->source))
            bad = "source";
        /* The patterns go into policy-map answers (match=) and MX
         * matching as they are: a row written by anything else than our
         * policy parser must hold patterns that parser would accept. */
        for (size_t k = 0; bad == NULL && k < e->n_mx; k++)
            if (mxmatch_pattern_check(e->mx[k], strlen(e->mx[k]), &why) != 0) {
                mts_err_set(err, "cache row for %.*s: invalid mx pattern: %s",
                            (int)sizeof(e->domain) - 1, e->domain, why.msg);
                return false;
            }
    }
    if (bad != NULL) {
        mts_err_set(err, "cache row for %.*s: invalid %s", (int)sizeof(e->domain) - 1, e->domain,
                    bad);
        return false;
    }
    return true;
}

static struct cache_val
text_or_null(const char *s)
{
    struct cache_val v = {CACHE_VAL_NULL, 0, NULL, 0};

    if (s != NULL) {
        v.type = CACHE_VAL_TEXT;
        v.text = s;
        v.len = strlen(s);
    }
    return v;
}

/* Every field of obj into v[0..n-1]; joined: the mx list's storage form. */
static void
encode_cols(const struct col *cols, size_t n, const void *obj, const char *joined,
            struct cache_val *v)
{
    const struct cache_entry *e = obj; /* only for the kinds of domain rows */

    for (size_t i = 0; i < n; i++) {
        const char *f = (const char *)obj + cols[i].off;
        int64_t x = 0;

        switch (cols[i].kind) {
        case K_STR:
        case K_CUT:
            v[i] = text_or_null(f[0] != '\0' ? f : NULL);
            break;
        case K_DUP:
            /* Unlike K_STR, "" stays "": an empty policy body is not a missing one. */
            v[i] = text_or_null(*(char *const *)(const void *)f);
            break;
        case K_MODE:
            v[i] = text_or_null(e->has_policy ? nametab_name(policy_mode_names, (int)e->mode)
                                              : NULL);
            break;
        case K_STATUS:
            v[i] = text_or_null(
                e->has_status ? nametab_name(status_kind_names, (int)e->status) : NULL);
            break;
        case K_MX:
            /* A policy without patterns stores "", no policy NULL. */
            v[i] = text_or_null(e->n_mx > 0 ? joined : e->has_policy ? "" : NULL);
            break;
        default:
            if (cols[i].kind == K_TIME)
                memcpy(&x, f, sizeof(x));
            else if (cols[i].kind == K_U32)
                x = *(const uint32_t *)(const void *)f;
            else
                x = *(const bool *)(const void *)f ? 1 : 0;
            v[i] = (struct cache_val){CACHE_VAL_INT, x, NULL, 0};
        }
    }
}

int
cache_row_encode(const struct cache_entry *e, struct cache_val *v, char **joined,
                 struct mts_err *err)
{
    *joined = NULL;
    if (!entry_ok(e, err))
        return -1;
    if (e->n_mx > 0 && (*joined = cache_mx_join(e->mx, e->n_mx)) == NULL) {
        mts_err_set(err, "cache row %s: out of memory", e->domain);
        return -1;
    }
    encode_cols(domain_cols, NELEM(domain_cols), e, *joined, v);
    return 0;
}

int
cache_probe_encode(const struct cache_probe *p, struct cache_val *v, struct mts_err *err)
{
    const char *bad = fields_bounded(probe_cols, NELEM(probe_cols), p);

    if (bad != NULL) {
        mts_err_set(err, "probe row: invalid %s (unterminated, or a time out of range)", bad);
        return -1;
    }
    if (!cache_row_name_ok("MX host", p->host, err))
        return -1;
    encode_cols(probe_cols, NELEM(probe_cols), p, NULL, v);
    return 0;
}

/* One value into its field of obj (zeroed); returns why it is refused, or NULL. */
static const char *
decode_col(const struct cache_val *v, const struct col *col, void *obj)
{
    char *f = (char *)obj + col->off;
    struct cache_entry *e = obj; /* only for the kinds of domain rows */
    int m;

    if (v->type == CACHE_VAL_NULL) {
        if (col->kind == K_MODE) /* no mode: entry_ok refuses it for a row with a policy */
            e->mode = MODE_INVALID;
        return NULL; /* otherwise "", NULL, 0 or no status as zeroed */
    }
    if (col->kind == K_TIME || col->kind == K_BOOL || col->kind == K_U32) {
        if (v->type != CACHE_VAL_INT)
            return "is not an integer";
        if (col->kind == K_BOOL && v->i != 0 && v->i != 1)
            return "is not 0 or 1";
        if (col->kind == K_U32 && (v->i < 0 || v->i > POLICY_MAX_AGE_LIMIT))
            return "is out of range";
        /* A time any configured duration can be added to without overflow. */
        if (col->kind == K_TIME && (v->i < 0 || v->i > CACHE_TIME_MAX))
            return "is out of range (before 1970 or after 9999)";
        if (col->kind == K_BOOL)
            *(bool *)(void *)f = v->i == 1;
        else if (col->kind == K_U32)
            *(uint32_t *)(void *)f = (uint32_t)v->i;
        else
            memcpy(f, &v->i, sizeof(v->i));
        return NULL;
    }
    if (v->type != CACHE_VAL_TEXT)
        return "is not text";
    if (v->text == NULL)
        return "could not be read (out of memory)";
    if (memchr(v->text, '\0', v->len) != NULL)
        return "holds a NUL byte";
    if ((col->kind == K_STR && v->len >= col->size) ||
        ((col->kind == K_DUP || col->kind == K_MX) && v->len > CACHE_TEXT_MAX) ||
        (col->kind == K_STATUS && v->len >= STATUS_WORD_MAX))
        return "is too long";
    switch (col->kind) {
    case K_MODE:
        m = nametab_coden(policy_mode_names, NAMETAB_EXACT, v->text, v->len);
        e->mode = m >= 0 ? (enum policy_mode)m : MODE_INVALID;
        return m >= 0 ? NULL : "is not enforce, testing or none";
    case K_STATUS:
        m = nametab_coden(status_kind_names, NAMETAB_EXACT, v->text, v->len);
        e->has_status = true;
        e->status = m >= 0 ? (enum status_kind)m : STATUS_INVALID; /* entry_ok names it */
        return NULL;
    case K_MX:
        return mx_split(v->text, v->len, e) ? NULL : "could not be copied (out of memory)";
    case K_DUP:
        if ((*(char **)(void *)f = strndup(v->text, v->len)) == NULL)
            return "could not be copied (out of memory)";
        return NULL;
    default: /* K_STR, K_CUT: for people, so cut rather than refuse */
        m = (int)(v->len < col->size ? v->len : col->size - 1);
        memcpy(f, v->text, (size_t)m);
        f[m] = '\0';
        return NULL;
    }
}

/* Reads v into obj (zeroed by the caller), trusting nothing. */
static bool
decode_cols(const struct cache_val *v, const struct col *cols, size_t n, void *obj,
            struct mts_err *err)
{
    for (size_t i = 0; i < n; i++) {
        const char *why = decode_col(&v[i], &cols[i], obj);
        if (why != NULL) {
            /* Column 0 is the key: name the row once that column has been read whole. */
            mts_err_set(err, "invalid cache row %s: column %s %s",
                        i > 0 ? (const char *)obj + cols[0].off : "?", cols[i].name, why);
            return false;
        }
    }
    return true;
}

bool
cache_row_decode(const struct cache_val *v, struct cache_entry *e, struct mts_err *err)
{
    bool ok;

    memset(e, 0, sizeof(*e));
    ok = decode_cols(v, domain_cols, NELEM(domain_cols), e, err) && entry_ok(e, err);
    if (ok && !e->has_policy)
        e->mode = POLICY_MODE_NONE; /* whatever was stored, or NULL */
    if (!ok) {
        cache_entry_free(e);
        memset(e, 0, sizeof(*e));
    }
    return ok;
}

bool
cache_probe_decode(const struct cache_val *v, struct cache_probe *p, struct mts_err *err)
{
    memset(p, 0, sizeof(*p));
    if (decode_cols(v, probe_cols, NELEM(probe_cols), p, err))
        return true;
    memset(p, 0, sizeof(*p));
    return false;
}

void
cache_entry_free(struct cache_entry *e)
{
    if (e == NULL)
        return;
    mxmatch_list_free(e->mx, e->n_mx);
    free(e->policy_text);
    e->mx = NULL;
    e->n_mx = 0;
    e->policy_text = NULL;
}

/* ------------------------------------------------------------ MX sets */

static bool
mxset_ok(const struct cache_mxset *m, struct mts_err *err)
{
    struct mts_err why;

    if (strnlen(m->domain, sizeof(m->domain)) == sizeof(m->domain) ||
        !cache_row_name_ok("domain", m->domain, &why)) {
        mts_err_set(err, "MX set: invalid domain");
        return false;
    }
    if (m->fetched_at < 0 || m->fetched_at > CACHE_TIME_MAX || m->expires_at < 0 ||
        m->expires_at > CACHE_TIME_MAX) {
        mts_err_set(err, "MX set of %s: a time is out of range", m->domain);
        return false;
    }
    if (m->n == 0 || m->n > CACHE_MX_MAX) {
        mts_err_set(err, "MX set of %s: %zu hosts (1 to %d)", m->domain, m->n, CACHE_MX_MAX);
        return false;
    }
    for (size_t i = 0; i < m->n; i++)
        if (strcmp(m->hosts[i], ".") != 0 && !cache_row_name_ok("MX host", m->hosts[i], &why)) {
            mts_err_set(err, "MX set of %s: %s", m->domain, why.msg);
            return false;
        }
    if (m->dnssec[strnlen(m->dnssec, sizeof(m->dnssec) - 1)] != '\0' ||
        (m->dnssec[0] != '\0' && nametab_code(dnssec_names, NAMETAB_EXACT, m->dnssec) < 0)) {
        mts_err_set(err, "MX set of %s: invalid dnssec", m->domain);
        return false;
    }
    return true;
}

int
cache_mxset_encode(const struct cache_mxset *m, struct cache_val *v, char **joined,
                   struct mts_err *err)
{
    *joined = NULL;
    if (!mxset_ok(m, err))
        return -1;
    if ((*joined = cache_mx_join(m->hosts, m->n)) == NULL) {
        mts_err_set(err, "MX set of %s: out of memory", m->domain);
        return -1;
    }
    v[0] = text_or_null(m->domain);
    v[1] = text_or_null(*joined);
    v[2] = (struct cache_val){CACHE_VAL_INT, m->fetched_at, NULL, 0};
    v[3] = (struct cache_val){CACHE_VAL_INT, m->expires_at, NULL, 0};
    v[4] = text_or_null(m->dnssec[0] != '\0' ? m->dnssec : NULL);
    return 0;
}

bool
cache_mxset_decode(const struct cache_val *v, struct cache_mxset *m, struct mts_err *err)
{
    struct cache_entry e; /* for mx_split */

    memset(m, 0, sizeof(*m));
    memset(&e, 0, sizeof(e));
    if (v[0].type != CACHE_VAL_TEXT || v[0].text == NULL || v[0].len >= sizeof(m->domain) ||
        v[1].type != CACHE_VAL_TEXT || v[1].text == NULL || v[1].len > CACHE_TEXT_MAX ||
        memchr(v[1].text, '\0', v[1].len) != NULL || v[2].type != CACHE_VAL_INT ||
        v[3].type != CACHE_VAL_INT || (v[4].type != CACHE_VAL_NULL &&
                                      (v[4].type != CACHE_VAL_TEXT || v[4].text == NULL ||
                                       v[4].len >= sizeof(m->dnssec)))) {
        mts_err_set(err, "invalid MX set row: a column has the wrong type or length");
        return false;
    }
    memcpy(m->domain, v[0].text, v[0].len);
    if (!mx_split(v[1].text, v[1].len, &e)) {
        mxmatch_list_free(e.mx, e.n_mx);
        mts_err_set(err, "MX set of %s: out of memory", m->domain);
        return false;
    }
    m->hosts = e.mx;
    m->n = e.n_mx;
    m->fetched_at = v[2].i;
    m->expires_at = v[3].i;
    if (v[4].type == CACHE_VAL_TEXT)
        memcpy(m->dnssec, v[4].text, v[4].len);
    if (!mxset_ok(m, err)) {
        cache_mxset_free(m);
        memset(m, 0, sizeof(*m));
        return false;
    }
    return true;
}

void
cache_mxset_free(struct cache_mxset *m)
{
    if (m == NULL)
        return;
    mxmatch_list_free(m->hosts, m->n);
    m->hosts = NULL;
    m->n = 0;
}
