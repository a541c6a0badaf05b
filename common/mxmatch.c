/*
 * mxmatch - RFC 8461 §4.1 MX pattern matching; see mxmatch.h.
 *
 * Host names are checked label by label with the LDH rule. Checking the
 * pattern once at policy parse time means matching itself can be a plain
 * case-insensitive compare.
 */
#include "mxmatch.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static bool
is_ldh(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9') || c == '-';
}

/* What a name may hold beyond LDH. */
enum name_kind {
    NAME_HOST,		/* an MX host or pattern: LDH only (RFC 8461 §4.1) */
    NAME_DOMAIN		/* a mail domain: '_' too (legal in DNS, RFC 2181 §11) */
};

static char
ascii_lower(char c)
{
    return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

/*
 * Checks that name[0..len) is a host name: LDH labels of 1..63 characters,
 * no hyphen at either end of a label, last label not all digits (with
 * NAME_DOMAIN, '_' counts as a letter). what names the thing for the error
 * ("pattern", "host name").
 */
static int
check_name(const char *name, size_t len, enum name_kind kind, const char *what,
           struct mts_err *err)
{
    size_t start = 0, label_no = 1;
    bool last_all_digits = false;

    if (len == 0) {
        mts_err_set(err, "%s is empty", what);
        return -1;
    }
    if (len > MXMATCH_NAME_MAX) {
        mts_err_set(err, "%s is %zu characters long, over the limit of %d", what, len,
                    MXMATCH_NAME_MAX);
        return -1;
    }
    for (size_t i = 0; i <= len; i++) {
        size_t llen;
        bool all_digits = true;

        if (i < len && name[i] != '.')
            continue;
        llen = i - start;
        if (llen == 0) {
            mts_err_set(err, "%s has an empty label (label %zu)", what, label_no);
            return -1;
        }
        if (llen > MXMATCH_LABEL_MAX) {
            mts_err_set(err, "%s label %zu is %zu characters long, over the limit of %d",
                        what, label_no, llen, MXMATCH_LABEL_MAX);
            return -1;
        }
        for (size_t k = start; k < i; k++) {
            unsigned char c = (unsigned char)name[k];

            if (!is_ldh(c) && !(kind == NAME_DOMAIN && c == '_')) {
                if (c >= 0x80)
                    mts_err_set(err, "%s label %zu has a non-ASCII byte "
                                "(an A-label \"xn--...\" is required)", what, label_no);
                else if (c == '*')
                    mts_err_set(err, "%s label %zu has a '*': the wildcard may only be "
                                "the whole first label", what, label_no);
                else
                    mts_err_set(err, "%s label %zu has an invalid character 0x%02x "
                                "(only letters, digits%s and '-')", what, label_no, c,
                                kind == NAME_DOMAIN ? ", '_'" : "");
                return -1;
            }
            if (c < '0' || c > '9')
                all_digits = false;
        }
        if (name[start] == '-' || name[i - 1] == '-') {
            mts_err_set(err, "%s label %zu begins or ends with '-'", what, label_no);
            return -1;
        }
        last_all_digits = all_digits;
        start = i + 1;
        label_no++;
    }
    if (last_all_digits) {
        mts_err_set(err, "%s has an all-numeric last label: an IP address is not a host name",
                    what);
        return -1;
    }
    return 0;
}

int
mxmatch_pattern_check(const char *pat, size_t len, struct mts_err *err)
{
    if (pat == NULL || len == 0) {
        mts_err_set(err, "mx pattern is empty");
        return -1;
    }
    if (len > MXMATCH_NAME_MAX) {
        mts_err_set(err, "mx pattern is %zu characters long, over the limit of %d", len,
                    MXMATCH_NAME_MAX);
        return -1;
    }
    if (pat[len - 1] == '.') {
        mts_err_set(err, "mx pattern ends with '.': write the name without a trailing dot");
        return -1;
    }
    if (pat[0] == '*') {
        if (len < 2 || pat[1] != '.') {
            mts_err_set(err, "mx pattern: the wildcard must be the whole first label (\"*.\")");
            return -1;
        }
        if (len == 2) {
            mts_err_set(err, "mx pattern \"*.\" has no name after the wildcard");
            return -1;
        }
        return check_name(pat + 2, len - 2, NAME_HOST, "mx pattern", err);
    }
    return check_name(pat, len, NAME_HOST, "mx pattern", err);
}

static int
normalize(const char *in, size_t len, enum name_kind kind, const char *what, char *out,
          size_t outsz, struct mts_err *err)
{
    if (in == NULL)
        len = 0;
    /* DNS names may be written absolute: one trailing dot is not part of it. */
    if (len > 0 && in[len - 1] == '.')
        len--;
    if (check_name(in, len, kind, what, err) != 0)
        return -1;
    if (len + 1 > outsz) {
        mts_err_set(err, "%s does not fit in %zu bytes", what, outsz);
        return -1;
    }
    for (size_t i = 0; i < len; i++)
        out[i] = ascii_lower(in[i]);
    out[len] = '\0';
    return 0;
}

int
mxmatch_host_normalize(const char *in, size_t len, char *out, size_t outsz,
                       struct mts_err *err)
{
    return normalize(in, len, NAME_HOST, "host name", out, outsz, err);
}

int
mxmatch_domain_normalize(const char *in, size_t len, char *out, size_t outsz,
                         struct mts_err *err)
{
    return normalize(in, len, NAME_DOMAIN, "domain", out, outsz, err);
}

/* Does pattern match h, a host already normalised? */
static bool
match_normalized(const char *pattern, const char *h)
{
    const char *dot;

    if (pattern[0] != '*')
        return strcasecmp(pattern, h) == 0;
    /* "*.rest" matches exactly one label followed by ".rest". */
    dot = strchr(h, '.');
    if (dot == NULL || dot == h)
        return false;
    return strcasecmp(pattern + 1, dot) == 0;
}

bool
mxmatch_match(const char *pattern, const char *host)
{
    char h[MXMATCH_NAME_MAX + 1];

    if (pattern == NULL || host == NULL)
        return false;
    if (mxmatch_host_normalize(host, strlen(host), h, sizeof(h), NULL) != 0)
        return false;
    return match_normalized(pattern, h);
}

bool
mxmatch_any(char *const *pats, size_t n, const char *host)
{
    char h[MXMATCH_NAME_MAX + 1];

    /* The host is normalised once for the whole list: the verdict asks
     * this for every MX host of every recipient. */
    if (n == 0 || host == NULL || mxmatch_host_normalize(host, strlen(host), h, sizeof(h), NULL) != 0)
        return false;
    for (size_t i = 0; i < n; i++) {
        size_t len = pats[i] != NULL ? strlen(pats[i]) : 0;

        if (len > 0 && len <= MXMATCH_NAME_MAX && match_normalized(pats[i], h))
            return true;
    }
    return false;
}

char **
mxmatch_list_dup(char *const *pats, size_t n)
{
    char **out = calloc(n > 0 ? n : 1, sizeof(*out));

    for (size_t i = 0; out != NULL && i < n; i++) {
        if ((out[i] = strdup(pats[i])) == NULL) {
            mxmatch_list_free(out, i);
            out = NULL;
        }
    }
    return out;
}

void
mxmatch_list_free(char **pats, size_t n)
{
    if (pats == NULL)
        return;
    for (size_t i = 0; i < n; i++)
        free(pats[i]);
    free(pats);
}
