/*
 * tlsa - TLSA lookups for DANE (RFC 7672 §2.2) and record parsing (§3.1);
 * see tlsa.h. The DNS itself is dns.c's (the only user of libunbound).
 */
#include "tlsa.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "dns.h"
#include "err.h"
#include "nametab.h"

static const struct nametab state_names[] = {
    {"insecure", TLSA_INSECURE}, {"none", TLSA_NONE}, {"secure", TLSA_SECURE},
    {"failed", TLSA_FAILED},     {NULL, -1},
};

static const struct nametab dane_names[] = {
    {"none", TLSA_DANE_NONE},
    {"verified", TLSA_DANE_VERIFIED},
    {"failed", TLSA_DANE_FAILED},
    {"unusable", TLSA_DANE_UNUSABLE},
    {"lookup-failed", TLSA_DANE_LOOKUP_FAILED},
    {NULL, -1},
};

const char *
tlsa_state_name(enum tlsa_state s)
{
    return nametab_name(state_names, (int)s);
}

const char *
tlsa_dane_name(enum tlsa_dane d)
{
    return nametab_name(dane_names, (int)d);
}

int
tlsa_dane_code(const char *word)
{
    return nametab_code(dane_names, NAMETAB_EXACT, word);
}

bool
tlsa_dane_applies(enum tlsa_dane d)
{
    return d == TLSA_DANE_VERIFIED || d == TLSA_DANE_FAILED || d == TLSA_DANE_LOOKUP_FAILED;
}

int
tlsa_parse_rdata(const unsigned char *rd, size_t len, struct tlsa_rec *out)
{
    memset(out, 0, sizeof(*out));
    /* Usage, selector, matching type, then at least one octet of data. */
    if (rd == NULL || len < 4 || len - 3 > TLSA_DATA_MAX)
        return -1;
    out->usage = rd[0];
    out->selector = rd[1];
    out->mtype = rd[2];
    out->len = len - 3;
    memcpy(out->data, rd + 3, out->len);
    /* §3.1.3: PKIX-TA(0)/PKIX-EE(1) are not for SMTP; unknown selectors and
     * matching types are unusable (RFC 6698 §4.1); a digest of the wrong
     * length could never match. */
    out->usable = (out->usage == TLSA_USAGE_DANE_TA || out->usage == TLSA_USAGE_DANE_EE) &&
                  out->selector <= 1 &&
                  (out->mtype == 0 || (out->mtype == 1 && out->len == 32) ||
                   (out->mtype == 2 && out->len == 64));
    return 0;
}

void
tlsa_rec_params(const struct tlsa_rec *r, char *out, size_t outsz)
{
    mts_text_set(out, outsz, "%u %u %u", r->usage, r->selector, r->mtype);
}

void
tlsa_set_text(const struct tlsa_set *t, char *out, size_t outsz)
{
    size_t used = 0;

    if (outsz == 0)
        return;
    out[0] = '\0';
    for (size_t i = 0; i < t->n; i++) {
        const struct tlsa_rec *r = &t->rec[i];
        char hex[40];
        size_t show = r->len < 8 ? r->len : 8;
        int w;

        for (size_t k = 0; k < show; k++)
            (void)snprintf(hex + 2 * k, 3, "%02x", r->data[k]);
        w = snprintf(out + used, outsz - used, "%s%u %u %u %s%s%s", used ? "; " : "", r->usage,
                     r->selector, r->mtype, hex, r->len > show ? "..." : "",
                     r->usable ? "" : " (unusable)");
        if (w < 0 || (size_t)w >= outsz - used)
            break;
        used += (size_t)w;
    }
}

/* The TLSA RRset of _port._tcp.base into out; returns the state. */
static enum tlsa_state
ask(struct dns *d, const char *base, int port, const struct timespec *deadline,
    struct tlsa_set *out)
{
    struct dns_answer a;
    struct mts_err err;

    mts_err_clear(&err);
    mts_text_set(out->base, sizeof(out->base), "%s", base);
    mts_text_set(out->owner, sizeof(out->owner), "_%d._tcp.%s", port, base);
    out->n = out->n_usable = out->n_dropped = 0;
    out->why[0] = '\0';
    if (dns_query(d, out->owner, DNS_TLSA, deadline, &a, &err) != 0) {
        mts_text_set(out->why, sizeof(out->why), "dnssec-invalid: %s", err.msg);
        return TLSA_FAILED;
    }
    out->ttl = a.ttl;
    if (!dns_status_is_answer(a.status)) {
        /* §2.2: a failed lookup may be an attack: never "no DANE". */
        mts_text_set(out->why, sizeof(out->why), "dnssec-invalid: TLSA lookup of %s failed: %s",
                     out->owner, err.msg[0] ? err.msg : dns_status_name(a.status));
        dns_answer_free(&a);
        return TLSA_FAILED;
    }
    if (a.sec != DNS_SEC_SECURE) {
        mts_text_set(out->why, sizeof(out->why), "the TLSA answer for %s is not DNSSEC-signed",
                     out->owner);
        dns_answer_free(&a);
        return TLSA_INSECURE;
    }
    if (a.status != DNS_OK) {
        mts_text_set(out->why, sizeof(out->why), "%s has no TLSA record (%s, DNSSEC-proven)",
                     out->owner, dns_status_name(a.status));
        dns_answer_free(&a);
        return TLSA_NONE;
    }
    for (size_t i = 0; i < a.n; i++) {
        if (out->n == TLSA_RECS_MAX ||
            tlsa_parse_rdata((const unsigned char *)a.rr[i].text, a.rr[i].len,
                             &out->rec[out->n]) != 0) {
            out->n_dropped++;
            continue;
        }
        if (out->rec[out->n].usable)
            out->n_usable++;
        out->n++;
    }
    dns_answer_free(&a);
    if (out->n_usable == 0)
        mts_text_set(out->why, sizeof(out->why),
                     "%s has no TLSA record usable for SMTP (RFC 7672 §3.1)", out->owner);
    return TLSA_SECURE;
}

void
tlsa_lookup(struct dns *d, const char *host, int port, const struct timespec *deadline,
            struct tlsa_set *out)
{
    struct dns_answer a;
    struct mts_err err;
    char canonical[sizeof(a.canonical)];

    memset(out, 0, sizeof(*out));
    mts_err_clear(&err);
    if (port <= 0)
        port = 25;
    mts_text_set(out->base, sizeof(out->base), "%s", host);
    if (dns_addresses(d, host, deadline, &a, &err) != 0) {
        out->state = TLSA_FAILED;
        mts_text_set(out->why, sizeof(out->why), "%s", err.msg);
        return;
    }
    if (a.status == DNS_NXDOMAIN || a.status == DNS_NODATA) {
        out->state = TLSA_INSECURE;
        mts_text_set(out->why, sizeof(out->why), "%s has no address", host);
        dns_answer_free(&a);
        return;
    }
    if (a.status != DNS_OK) {
        out->state = TLSA_FAILED;
        mts_text_set(out->why, sizeof(out->why), "dnssec-invalid: address lookup of %s: %s",
                     host, err.msg[0] ? err.msg : dns_status_name(a.status));
        dns_answer_free(&a);
        return;
    }
    memcpy(canonical, a.canonical, sizeof(canonical));
    if (a.sec != DNS_SEC_SECURE) {
        /* §2.2: TLSA records are only looked for below secure addresses. */
        out->state = TLSA_INSECURE;
        mts_text_set(out->why, sizeof(out->why), "the addresses of %s are not DNSSEC-signed",
                     host);
        dns_answer_free(&a);
        return;
    }
    dns_answer_free(&a);
    /* §2.2.2: a secure CNAME expansion gives the base domain, tried first;
     * without TLSA records there, the original name. */
    if (canonical[0] != '\0' && strcasecmp(canonical, host) != 0) {
        out->state = ask(d, canonical, port, deadline, out);
        if (out->state == TLSA_SECURE || out->state == TLSA_FAILED)
            return;
    }
    out->state = ask(d, host, port, deadline, out);
}
