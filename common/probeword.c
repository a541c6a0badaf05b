/*
 * probeword - the fixed words of a probe result; see probeword.h.
 */
#include "probeword.h"

#include <stdio.h>

struct word {
    const char *word, *phrase;
};

static const struct word W_OK = {"ok", "passes"};
static const struct word W_NOT_YET = {"not-probed-yet", "not probed yet"};
static const struct word W_NEVER = {"not-probed", "not probed"};
static const struct word W_PRIVATE = {"not-probed-private-address",
                                      "not probed: private address"};
static const struct word W_UNREACHABLE = {"unreachable", "unreachable"};
static const struct word W_NO_STARTTLS = {"starttls-not-supported", "no STARTTLS"};
static const struct word W_NAME = {"certificate-host-mismatch",
                                   "certificate not valid for the name"};
static const struct word W_EXPIRED = {"certificate-expired", "certificate expired"};
static const struct word W_NOT_YET_VALID = {"validation-failure", "certificate not yet valid"};
static const struct word W_UNTRUSTED = {"certificate-not-trusted", "certificate not trusted"};
static const struct word W_NO_CERT = {"certificate-not-trusted", "no certificate"};
static const struct word W_TOO_OLD = {"tls-too-old", "TLS too old"};
static const struct word W_NEGOTIATION = {"validation-failure", "TLS negotiation failed"};

static const struct word *
word_of(const struct probes_host *h)
{
    if (h->state == PROBES_NOT_YET)
        return &W_NOT_YET;
    if (h->state == PROBES_NEVER)
        return &W_NEVER;
    if (h->not_routable)
        return &W_PRIVATE;
    /* A host that would not talk before STARTTLS: how it failed is not
     * for the sender (refused vs timed out maps a network). */
    if (h->grade == TLSPROBE_GRADE_UNKNOWN)
        return h->status == TLSPROBE_ERROR ? &W_NEVER : &W_UNREACHABLE;
    switch (h->status) {
    case TLSPROBE_OK:
        return h->rfc8461 ? &W_OK : &W_NEGOTIATION;
    case TLSPROBE_NO_STARTTLS:
    case TLSPROBE_STARTTLS_REFUSED:
        return &W_NO_STARTTLS;
    case TLSPROBE_WRONG_NAME:
        return &W_NAME;
    case TLSPROBE_EXPIRED:
        return &W_EXPIRED;
    case TLSPROBE_NOT_YET_VALID:
        return &W_NOT_YET_VALID;
    case TLSPROBE_UNTRUSTED:
        return &W_UNTRUSTED;
    case TLSPROBE_NO_CERT:
        return &W_NO_CERT;
    case TLSPROBE_TLS_TOO_OLD:
        return &W_TOO_OLD;
    case TLSPROBE_REFUSED:
    case TLSPROBE_UNREACHABLE:
    case TLSPROBE_GREETING_REJECT:
    case TLSPROBE_EHLO_REJECT:
        return &W_UNREACHABLE;
    case TLSPROBE_ERROR:
        return &W_NEVER;
    case TLSPROBE_TIMEOUT:
    case TLSPROBE_CLOSED:
    case TLSPROBE_REPLY_TOO_LONG:
    case TLSPROBE_BAD_REPLY:
    case TLSPROBE_HANDSHAKE:
        return &W_NEGOTIATION;
    }
    return &W_NEGOTIATION;
}

const char *
probeword_of(const struct probes_host *h)
{
    return word_of(h)->word;
}

void
probeword_text(const struct probes_host *h, char *out, size_t outsz)
{
    const struct word *w = word_of(h);

    snprintf(out, outsz, "%s (%s)", w->phrase, w->word);
}
