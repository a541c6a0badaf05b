/*
 * err - readable failure reasons; see err.h.
 */
#include "err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void
mts_err_set(struct mts_err *err, const char *fmt, ...)
{
    va_list ap;

    if (err == NULL)
        return;
    va_start(ap, fmt);
    /* Truncation is acceptable here: the message is for people. */
    (void)vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    va_end(ap);
}

void
mts_text_set(char *out, size_t outsz, const char *fmt, ...)
{
    va_list ap;

    if (outsz == 0)
        return;
    va_start(ap, fmt);
    (void)vsnprintf(out, outsz, fmt, ap);
    va_end(ap);
}

void
mts_text_copy(char *out, size_t outsz, const char *s)
{
    size_t n;

    if (outsz == 0)
        return;
    n = strnlen(s, outsz - 1);
    memcpy(out, s, n);
    out[n] = '\0';
}

size_t
mts_text_join(char *out, size_t outsz, ...)
{
    va_list ap;
    size_t len;

    va_start(ap, outsz);
    len = mts_text_vjoin(out, outsz, ap);
    va_end(ap);
    return len;
}

size_t
mts_text_vjoin(char *out, size_t outsz, va_list ap)
{
    const char *s;
    size_t len = 0;

    while ((s = va_arg(ap, const char *)) != NULL) {
        size_t n = strlen(s);

        if (len + 1 < outsz) {
            size_t room = outsz - 1 - len;

            memcpy(out + len, s, n < room ? n : room);
        }
        len += n;
    }
    if (outsz > 0)
        out[len < outsz ? len : outsz - 1] = '\0';
    return len;
}

void
mts_err_clear(struct mts_err *err)
{
    if (err != NULL)
        err->msg[0] = '\0';
}

void
mts_err_quote(char *out, size_t outsz, const char *in, size_t inlen)
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;

    if (outsz == 0)
        return;
    for (size_t i = 0; i < inlen; i++) {
        unsigned char c = (unsigned char)in[i];
        size_t need = (c >= 0x20 && c < 0x7f && c != '\\') ? 1 : (c == '\\' ? 2 : 4);

        /* Keep room for "..." and the terminator. */
        if (o + need + 4 > outsz) {
            size_t k;
            for (k = 0; k < 3 && o + 1 < outsz; k++)
                out[o++] = '.';
            break;
        }
        if (need == 1) {
            out[o++] = (char)c;
        } else if (need == 2) {
            out[o++] = '\\';
            out[o++] = '\\';
        } else {
            out[o++] = '\\';
            out[o++] = 'x';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 15];
        }
    }
    out[o] = '\0';
}
