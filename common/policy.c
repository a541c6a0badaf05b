/*
 * policy - RFC 8461 §3.1 TXT record and §3.2 policy text parsers.
 *
 * See policy.h for the interface and for every choice made where the RFC
 * leaves room. The parsers walk the input once, index by index, against the
 * explicit length; nothing assumes a terminating NUL.
 */
#include "policy.h"
#include "mxmatch.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define QUOTE_MAX 48		/* how much of a remote value an error quotes */

static bool
is_wsp(unsigned char c)
{
    return c == ' ' || c == '\t';
}

static bool
is_alnum(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* ext-name of §3.1 and §3.2: (ALPHA / DIGIT) *31(ALPHA / DIGIT / "_" / "-" / ".") */
static bool
is_ext_name(const char *s, size_t len)
{
    if (len == 0 || len > 32 || !is_alnum((unsigned char)s[0]))
        return false;
    for (size_t i = 1; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!is_alnum(c) && c != '_' && c != '-' && c != '.')
            return false;
    }
    return true;
}

static bool
span_equals(const char *s, size_t len, const char *lit)
{
    size_t n = strlen(lit);
    return len == n && memcmp(s, lit, n) == 0;
}

/*
 * Length of the well-formed UTF-8 sequence at p (at most rem bytes), or 0
 * when it is malformed: overlong forms, surrogates and code points past
 * U+10FFFF are rejected as RFC 3629 requires.
 */
static size_t
utf8_seq_len(const unsigned char *p, size_t rem)
{
    unsigned char c = p[0];
    size_t n;
    unsigned long cp;

    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf) {
        n = 2;
        cp = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
        n = 3;
        cp = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    if (rem < n)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (p[i] & 0x3f);
    }
    if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) || cp > 0x10ffff ||
        (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return n;
}

/* ------------------------------------------------------------------ TXT */

bool
policy_txt_is_sts(const char *rec, size_t len)
{
    static const char v[] = "v=STSv1";
    const size_t vlen = sizeof(v) - 1;

    if (rec == NULL || len < vlen || memcmp(rec, v, vlen) != 0)
        return false;
    return len == vlen || rec[vlen] == ';' || is_wsp((unsigned char)rec[vlen]);
}

/* sts-ext-value: 1*(%x21-3A / %x3C / %x3E-7E), i.e. no '=', ';', SP or CTL */
static bool
is_txt_ext_value_char(unsigned char c)
{
    return c >= 0x21 && c <= 0x7e && c != '=' && c != ';';
}

int
policy_txt_parse(const char *rec, size_t len, struct policy_txt *out,
                 struct mts_err *err)
{
    size_t pos;
    bool have_id = false;

    memset(out, 0, sizeof(*out));
    if (rec == NULL || len == 0) {
        mts_err_set(err, "TXT record is empty");
        return -1;
    }
    if (len > POLICY_TXT_MAX_BYTES) {
        mts_err_set(err, "TXT record is %zu bytes, over the limit of %d", len,
                    POLICY_TXT_MAX_BYTES);
        return -1;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)rec[i];
        if (!(c >= 0x20 && c <= 0x7e) && c != '\t') {
            mts_err_set(err, "TXT record byte %zu is 0x%02x: the record must be printable "
                        "US-ASCII (RFC 8461 §3.1)", i + 1, c);
            return -1;
        }
    }
    if (!policy_txt_is_sts(rec, len)) {
        mts_err_set(err, "TXT record does not begin with \"v=STSv1\"");
        return -1;
    }

    pos = 7;
    for (;;) {
        size_t name_start, name_len, val_start, val_len;

        while (pos < len && is_wsp((unsigned char)rec[pos]))
            pos++;
        /* Trailing whitespace after the last field is tolerated: unambiguous. */
        if (pos == len)
            break;
        if (rec[pos] != ';') {
            mts_err_set(err, "TXT record: expected ';' at byte %zu, found '%c'", pos + 1,
                        rec[pos]);
            return -1;
        }
        pos++;
        while (pos < len && is_wsp((unsigned char)rec[pos]))
            pos++;
        if (pos == len)
            break;		/* one trailing delimiter is allowed */
        if (rec[pos] == ';') {
            mts_err_set(err, "TXT record: empty field at byte %zu", pos + 1);
            return -1;
        }

        name_start = pos;
        while (pos < len && rec[pos] != '=' && rec[pos] != ';' &&
               !is_wsp((unsigned char)rec[pos]))
            pos++;
        name_len = pos - name_start;
        if (pos == len || rec[pos] != '=') {
            char q[QUOTE_MAX];
            mts_err_quote(q, sizeof(q), rec + name_start, name_len);
            mts_err_set(err, "TXT record: field \"%s\" has no '=' (expected key=value)", q);
            return -1;
        }
        pos++;
        val_start = pos;
        while (pos < len && rec[pos] != ';' && !is_wsp((unsigned char)rec[pos]))
            pos++;
        val_len = pos - val_start;

        if (span_equals(rec + name_start, name_len, "id")) {
            if (val_len == 0 || val_len > POLICY_ID_MAX) {
                mts_err_set(err, "TXT record: id must be 1 to %d letters or digits, "
                            "it is %zu characters", POLICY_ID_MAX, val_len);
                return -1;
            }
            for (size_t i = 0; i < val_len; i++) {
                if (!is_alnum((unsigned char)rec[val_start + i])) {
                    mts_err_set(err, "TXT record: id has the character '%c': only letters "
                                "and digits are allowed", rec[val_start + i]);
                    return -1;
                }
            }
            /* RFC 8461 §3.2: of a duplicated field, the first counts. */
            if (!have_id) {
                memcpy(out->id, rec + val_start, val_len);
                out->id[val_len] = '\0';
                have_id = true;
            }
            continue;
        }
        if (!is_ext_name(rec + name_start, name_len)) {
            char q[QUOTE_MAX];
            mts_err_quote(q, sizeof(q), rec + name_start, name_len);
            mts_err_set(err, "TXT record: \"%s\" is not a valid field name", q);
            return -1;
        }
        if (val_len == 0) {
            char q[QUOTE_MAX];
            mts_err_quote(q, sizeof(q), rec + name_start, name_len);
            mts_err_set(err, "TXT record: field \"%s\" has an empty value", q);
            return -1;
        }
        for (size_t i = 0; i < val_len; i++) {
            if (!is_txt_ext_value_char((unsigned char)rec[val_start + i])) {
                char q[QUOTE_MAX];
                mts_err_quote(q, sizeof(q), rec + name_start, name_len);
                mts_err_set(err, "TXT record: field \"%s\" has the character '%c' in its "
                            "value", q, rec[val_start + i]);
                return -1;
            }
        }
    }
    if (!have_id) {
        mts_err_set(err, "TXT record has no id field (required by RFC 8461 §3.1)");
        return -1;
    }
    return 0;
}

enum policy_txt_result
policy_txt_select(const struct policy_txt_input *recs, size_t n,
                  struct policy_txt *out, struct mts_err *err)
{
    size_t n_sts = 0, which = 0;

    memset(out, 0, sizeof(*out));
    for (size_t i = 0; i < n; i++) {
        if (policy_txt_is_sts(recs[i].data, recs[i].len)) {
            n_sts++;
            which = i;
        }
    }
    if (n_sts == 0) {
        mts_err_set(err, "no TXT record begins with v=STSv1 (%zu record%s seen)", n,
                    n == 1 ? "" : "s");
        return POLICY_TXT_NONE;
    }
    if (n_sts > 1) {
        mts_err_set(err, "%zu TXT records begin with v=STSv1: exactly one is allowed "
                    "(RFC 8461 §3.1)", n_sts);
        return POLICY_TXT_MULTIPLE;
    }
    if (policy_txt_parse(recs[which].data, recs[which].len, out, err) != 0)
        return POLICY_TXT_INVALID;
    return POLICY_TXT_OK;
}

int
policy_txt_from_rdata(const unsigned char *rdata, size_t len, char *out,
                      size_t outsz, size_t *outlen, struct mts_err *err)
{
    size_t i = 0, o = 0;

    if (outsz == 0) {
        mts_err_set(err, "no room for the TXT record");
        return -1;
    }
    out[0] = '\0';
    if (outlen != NULL)
        *outlen = 0;
    if (rdata == NULL || len == 0) {
        mts_err_set(err, "TXT RDATA is empty (a TXT record holds at least one string)");
        return -1;
    }
    while (i < len) {
        size_t slen = rdata[i++];

        if (slen > len - i) {
            mts_err_set(err, "TXT RDATA string of %zu bytes runs past the end of the "
                        "record", slen);
            out[0] = '\0';
            return -1;
        }
        if (slen >= outsz - o) {
            mts_err_set(err, "TXT record is longer than %zu bytes", outsz - 1);
            out[0] = '\0';
            return -1;
        }
        memcpy(out + o, rdata + i, slen);
        o += slen;
        i += slen;
    }
    out[o] = '\0';
    if (outlen != NULL)
        *outlen = o;
    return 0;
}

/* --------------------------------------------------------------- policy */

const struct nametab policy_mode_names[] = {
    {"enforce", POLICY_MODE_ENFORCE},
    {"testing", POLICY_MODE_TESTING},
    {"none", POLICY_MODE_NONE},
    {NULL, -1},
};

const char *
policy_mode_name(enum policy_mode mode)
{
    return (unsigned)mode <= POLICY_MODE_NONE ? nametab_name(policy_mode_names, (int)mode) :
                                                "invalid";
}

int
policy_mode_from_name(const char *name, enum policy_mode *out)
{
    int m = name != NULL ? nametab_code(policy_mode_names, NAMETAB_EXACT, name) : -1;

    if (m < 0)
        return -1;
    *out = (enum policy_mode)m;
    return 0;
}

void
policy_free(struct policy *p)
{
    if (p == NULL)
        return;
    mxmatch_list_free(p->mx, p->n_mx);
    p->mx = NULL;
    p->n_mx = 0;
}

/* What the parser has seen so far. */
struct parse_state {
    bool have_version, have_mode, have_max_age;
    size_t cap_mx;
    /* A key that differs from a known one only in case, for a better error. */
    char case_variant[16];
};

static const char *const known_keys[] = {"version", "mode", "max_age", "mx"};

/*
 * Checks one line's bytes: no NUL or other control character but TAB, and
 * well-formed UTF-8. Reports the line number on failure.
 */
static int
check_line_bytes(const char *line, size_t len, size_t line_no, struct mts_err *err)
{
    for (size_t i = 0; i < len;) {
        unsigned char c = (unsigned char)line[i];
        size_t n;

        if (c == '\0') {
            mts_err_set(err, "line %zu: NUL byte at column %zu", line_no, i + 1);
            return -1;
        }
        if (c == '\r') {
            mts_err_set(err, "line %zu: carriage return not followed by line feed",
                        line_no);
            return -1;
        }
        if ((c < 0x20 && c != '\t') || c == 0x7f) {
            mts_err_set(err, "line %zu: control character 0x%02x at column %zu", line_no,
                        c, i + 1);
            return -1;
        }
        n = utf8_seq_len((const unsigned char *)line + i, len - i);
        if (n == 0) {
            mts_err_set(err, "line %zu: invalid UTF-8 at column %zu", line_no, i + 1);
            return -1;
        }
        i += n;
    }
    return 0;
}

static int
parse_max_age(const char *v, size_t len, uint32_t *out, size_t line_no,
              struct mts_err *err)
{
    unsigned long long n = 0;

    if (len > 10) {
        mts_err_set(err, "line %zu: max_age has %zu digits, at most 10 are allowed",
                    line_no, len);
        return -1;
    }
    for (size_t i = 0; i < len; i++) {
        if (v[i] < '0' || v[i] > '9') {
            char q[QUOTE_MAX];
            mts_err_quote(q, sizeof(q), v, len);
            mts_err_set(err, "line %zu: max_age \"%s\" is not a number of seconds "
                        "(digits only)", line_no, q);
            return -1;
        }
        n = n * 10 + (unsigned long long)(v[i] - '0');
    }
    if (n > POLICY_MAX_AGE_LIMIT) {
        mts_err_set(err, "line %zu: max_age %llu is over the limit of %u seconds "
                    "(RFC 8461 §3.2)", line_no, n, POLICY_MAX_AGE_LIMIT);
        return -1;
    }
    *out = (uint32_t)n;
    return 0;
}

static int
add_mx(struct policy *p, struct parse_state *st, const char *v, size_t len,
       size_t line_no, struct mts_err *err)
{
    struct mts_err perr;
    char *copy;

    if (mxmatch_pattern_check(v, len, &perr) != 0) {
        char q[QUOTE_MAX];
        mts_err_quote(q, sizeof(q), v, len);
        mts_err_set(err, "line %zu: mx \"%s\": %s", line_no, q, perr.msg);
        return -1;
    }
    if (p->n_mx == POLICY_MAX_MX) {
        mts_err_set(err, "line %zu: more than %d mx patterns", line_no, POLICY_MAX_MX);
        return -1;
    }
    if (p->n_mx == st->cap_mx) {
        size_t ncap = st->cap_mx ? st->cap_mx * 2 : 4;
        char **nmx = realloc(p->mx, ncap * sizeof(*nmx));
        if (nmx == NULL) {
            mts_err_set(err, "out of memory");
            return -1;
        }
        p->mx = nmx;
        st->cap_mx = ncap;
    }
    copy = malloc(len + 1);
    if (copy == NULL) {
        mts_err_set(err, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < len; i++)
        copy[i] = (v[i] >= 'A' && v[i] <= 'Z') ? (char)(v[i] - 'A' + 'a') : v[i];
    copy[len] = '\0';
    p->mx[p->n_mx++] = copy;
    return 0;
}

/* Handles one "key: value" line whose bytes have been checked. */
static int
parse_line(struct policy *p, struct parse_state *st, const char *line, size_t len,
           size_t line_no, struct mts_err *err)
{
    const char *colon, *v;
    size_t klen, vlen;
    char q[QUOTE_MAX];

    if (is_wsp((unsigned char)line[0])) {
        mts_err_set(err, "line %zu: begins with whitespace", line_no);
        return -1;
    }
    colon = memchr(line, ':', len);
    if (colon == NULL) {
        mts_err_quote(q, sizeof(q), line, len);
        mts_err_set(err, "line %zu: \"%s\" has no ':' (expected \"key: value\")", line_no, q);
        return -1;
    }
    klen = (size_t)(colon - line);
    if (klen > 0 && is_wsp((unsigned char)line[klen - 1])) {
        mts_err_set(err, "line %zu: whitespace before ':' (RFC 8461 §3.2 allows none)",
                    line_no);
        return -1;
    }
    if (!is_ext_name(line, klen)) {
        mts_err_quote(q, sizeof(q), line, klen);
        mts_err_set(err, "line %zu: \"%s\" is not a valid key", line_no, q);
        return -1;
    }
    v = colon + 1;
    vlen = len - klen - 1;
    while (vlen > 0 && is_wsp((unsigned char)v[0])) {
        v++;
        vlen--;
    }
    while (vlen > 0 && is_wsp((unsigned char)v[vlen - 1]))
        vlen--;
    if (vlen == 0) {
        mts_err_quote(q, sizeof(q), line, klen);
        mts_err_set(err, "line %zu: key \"%s\" has an empty value", line_no, q);
        return -1;
    }

    /* Of a duplicated version, mode or max_age the first counts (§3.2). */
    if (span_equals(line, klen, "version")) {
        if (st->have_version)
            return 0;
        if (!span_equals(v, vlen, "STSv1")) {
            mts_err_quote(q, sizeof(q), v, vlen);
            mts_err_set(err, "line %zu: version is \"%s\", only \"STSv1\" is supported",
                        line_no, q);
            return -1;
        }
        st->have_version = true;
    } else if (span_equals(line, klen, "mode")) {
        if (st->have_mode)
            return 0;
        int m = nametab_coden(policy_mode_names, NAMETAB_EXACT, v, vlen);

        if (m >= 0) {
            p->mode = (enum policy_mode)m;
        } else {
            mts_err_quote(q, sizeof(q), v, vlen);
            mts_err_set(err, "line %zu: mode \"%s\" is not enforce, testing or none "
                        "(values are case-sensitive)", line_no, q);
            return -1;
        }
        st->have_mode = true;
    } else if (span_equals(line, klen, "max_age")) {
        if (st->have_max_age)
            return 0;
        if (parse_max_age(v, vlen, &p->max_age, line_no, err) != 0)
            return -1;
        st->have_max_age = true;
    } else if (span_equals(line, klen, "mx")) {
        return add_mx(p, st, v, vlen, line_no, err);
    } else {
        /* Unknown keys are ignored (§3.2); remember a near miss for the error. */
        for (size_t i = 0; i < sizeof(known_keys) / sizeof(known_keys[0]); i++) {
            if (klen == strlen(known_keys[i]) && strncasecmp(line, known_keys[i], klen) == 0 &&
                st->case_variant[0] == '\0') {
                memcpy(st->case_variant, line, klen);
                st->case_variant[klen] = '\0';
            }
        }
    }
    return 0;
}

static int
missing_key(const struct parse_state *st, const char *key, struct mts_err *err)
{
    if (st->case_variant[0] != '\0' && strcasecmp(st->case_variant, key) == 0)
        mts_err_set(err, "required key \"%s\" is missing (found \"%s\": keys are "
                    "case-sensitive)", key, st->case_variant);
    else
        mts_err_set(err, "required key \"%s\" is missing", key);
    return -1;
}

int
policy_parse(const char *text, size_t len, struct policy *out, struct mts_err *err)
{
    struct parse_state st;
    size_t pos = 0, line_no = 0;

    memset(out, 0, sizeof(*out));
    memset(&st, 0, sizeof(st));
    if (text == NULL || len == 0) {
        mts_err_set(err, "policy is empty");
        return -1;
    }
    if (len > POLICY_MAX_BYTES) {
        mts_err_set(err, "policy is %zu bytes, over the limit of %d", len, POLICY_MAX_BYTES);
        return -1;
    }
    while (pos < len) {
        const char *line = text + pos;
        const char *lf = memchr(line, '\n', len - pos);
        size_t llen = lf ? (size_t)(lf - line) : len - pos;
        size_t next = pos + llen + (lf ? 1 : 0);

        line_no++;
        /* CRLF: the CR belongs to the line end. A lone CR is caught below. */
        if (lf != NULL && llen > 0 && line[llen - 1] == '\r')
            llen--;
        if (llen == 0) {
            mts_err_set(err, "line %zu: empty line (the policy grammar has none)", line_no);
            goto fail;
        }
        if (check_line_bytes(line, llen, line_no, err) != 0)
            goto fail;
        if (parse_line(out, &st, line, llen, line_no, err) != 0)
            goto fail;
        pos = next;
    }

    if (!st.have_version) {
        missing_key(&st, "version", err);
        goto fail;
    }
    if (!st.have_mode) {
        missing_key(&st, "mode", err);
        goto fail;
    }
    if (!st.have_max_age) {
        missing_key(&st, "max_age", err);
        goto fail;
    }
    if (out->mode != POLICY_MODE_NONE && out->n_mx == 0) {
        if (st.case_variant[0] != '\0' && strcasecmp(st.case_variant, "mx") == 0)
            missing_key(&st, "mx", err);
        else
            mts_err_set(err, "required key \"mx\" is missing: mode %s needs at least one "
                        "mx pattern", policy_mode_name(out->mode));
        goto fail;
    }
    return 0;

fail:
    policy_free(out);
    return -1;
}

bool
policy_mx_allows(const struct policy *p, const char *host)
{
    if (p == NULL || host == NULL)
        return false;
    return mxmatch_any(p->mx, p->n_mx, host);
}
