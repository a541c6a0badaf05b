/*
 * netstring - D. J. Bernstein's netstrings, as Postfix's socketmap frames
 * requests and replies; see netstring.h.
 */
#include "netstring.h"

#include <limits.h>
#include <string.h>

enum netstring_parse
netstring_parse(const char *buf, size_t len, size_t max, const char **payload, size_t *plen,
                size_t *used, struct mts_err *err)
{
    size_t i = 0, n = 0, start;
    char q[16];

    if (len == 0)
        return NETSTRING_PARTIAL;
    for (; i < len && buf[i] >= '0' && buf[i] <= '9'; i++) {
        if (i == 1 && buf[0] == '0') {
            mts_err_set(err, "malformed netstring: the length has a leading zero");
            return NETSTRING_MALFORMED;
        }
        n = n * 10 + (size_t)(buf[i] - '0');
        if (n > max) {
            mts_err_set(err, "netstring too long: the length exceeds %zu bytes", max);
            return NETSTRING_MALFORMED;
        }
    }
    if (i == 0) {
        mts_err_quote(q, sizeof(q), buf, 1);
        mts_err_set(err, "malformed netstring: it starts with \"%s\", not a length", q);
        return NETSTRING_MALFORMED;
    }
    if (i == len)
        return NETSTRING_PARTIAL;
    if (buf[i] != ':') {
        mts_err_quote(q, sizeof(q), buf + i, 1);
        mts_err_set(err, "malformed netstring: \"%s\" after the length, not ':'", q);
        return NETSTRING_MALFORMED;
    }
    start = i + 1;
    if (len - start < n + 1)
        return NETSTRING_PARTIAL;
    if (buf[start + n] != ',') {
        mts_err_quote(q, sizeof(q), buf + start + n, 1);
        mts_err_set(err, "malformed netstring: \"%s\" after %zu bytes, not ','", q, n);
        return NETSTRING_MALFORMED;
    }
    *payload = buf + start;
    *plen = n;
    *used = start + n + 1;
    return NETSTRING_COMPLETE;
}

int
netstring_encode(const char *data, size_t len, char *out, size_t outsz)
{
    char digits[24];
    size_t nd = 0, v = len, h;

    /* By hand, not snprintf: it is on the map's path for every answer. */
    do {
        digits[nd++] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    h = nd + 1;
    if (len > INT_MAX - 32 || h + len + 1 >= outsz)
        return -1;
    for (size_t i = 0; i < nd; i++)
        out[i] = digits[nd - 1 - i];
    out[nd] = ':';
    memcpy(out + h, data, len);
    out[h + len] = ',';
    out[h + len + 1] = '\0';
    return (int)(h + len + 1);
}
