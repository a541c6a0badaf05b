/*
 * reply - safe SMTP replies; see reply.h.
 */
#include "reply.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

static bool
is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* An RFC 3463 status code: class "." 1*3digit "." 1*3digit. */
static bool
valid_xcode(const char *x, char class)
{
    size_t i = 0, n;

    if (x[0] != class || x[1] != '.')
        return false;
    i = 2;
    for (int part = 0; part < 2; part++) {
        for (n = 0; is_digit(x[i]); i++, n++)
            ;
        if (n == 0 || n > 3)
            return false;
        if (part == 0 && x[i++] != '.')
            return false;
    }
    return x[i] == '\0';
}

int
reply_code_parse(const char *spec, char class, struct reply_code *out, struct mts_err *err)
{
    const char *x;

    memset(out, 0, sizeof(*out));
    if (class != '4' && class != '5') {
        mts_err_set(err, "a reply of class %c is not a refusal (4 or 5)", class);
        return -1;
    }
    if (spec == NULL || strlen(spec) < 9 || spec[0] != class || !is_digit(spec[1]) ||
        !is_digit(spec[2]) || spec[3] != ' ') {
        mts_err_set(err, "\"%s\" is not \"%cNN %c.N.N\" (an SMTP code of class %c and an "
                    "enhanced status code)", spec ? spec : "", class, class, class);
        return -1;
    }
    x = spec + 4;
    if (strlen(x) >= sizeof(out->xcode) || !valid_xcode(x, class)) {
        mts_err_set(err, "\"%s\": the enhanced code must be %c.N.N, the class of the reply "
                    "(never 550 4.7.1)", spec, class);
        return -1;
    }
    memcpy(out->rcode, spec, 3);
    snprintf(out->xcode, sizeof(out->xcode), "%s", x);
    return 0;
}

void
reply_build(const struct reply_code *code, const char *text, struct reply *out)
{
    /* "450 4.7.5 " comes before the text on the wire. */
    size_t max = REPLY_MAX_LINE - strlen(code->rcode) - strlen(code->xcode) - 2;
    size_t o = 0;

    memcpy(out->rcode, code->rcode, sizeof(out->rcode));
    memcpy(out->xcode, code->xcode, sizeof(out->xcode));
    for (const unsigned char *p = (const unsigned char *)text; *p != '\0'; p++) {
        unsigned char c = *p;

        if (c == '%') {
            if (o + 2 > max)
                break;
            out->text[o++] = '%';
            out->text[o++] = '%';
            continue;
        }
        if (o + 1 > max)
            break;
        /* Controls and non-ASCII would break the SMTP line: a space, or '?'. */
        out->text[o++] = (c < 0x20 || c == 0x7f) ? ' ' : (c >= 0x80 ? '?' : (char)c);
    }
    out->text[o] = '\0';
}

void
reply_clean_text(const char *in, char *out, size_t outsz)
{
    size_t o = 0;

    if (outsz == 0)
        return;
    for (const unsigned char *p = (const unsigned char *)in; *p != '\0' && o + 1 < outsz; p++)
        out[o++] = (*p < 0x20 || *p == 0x7f) ? ' ' : (*p >= 0x80 ? '?' : (char)*p);
    out[o] = '\0';
}
