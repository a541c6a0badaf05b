/*
 * tlsprobe_dane - DANE verification of a probe with OpenSSL's DANE API
 * (RFC 7672 §3; SSL_CTX_dane_enable(3)). Internal to tlsprobe (see
 * tlsprobe.h, DANE); declared in tlsprobe_cert.h.
 */
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "err.h"
#include "tlsa.h"
#include "tlsprobe.h"
#include "tlsprobe_cert.h"

static bool
dane_wanted(const struct tlsprobe_options *o)
{
    return o->tlsa != NULL && o->tlsa->state == TLSA_SECURE && o->tlsa->n_usable > 0 &&
           o->tlsa->base[0] != '\0';
}

int
tlsprobe_dane_ctx(SSL_CTX *ctx, const struct tlsprobe_options *o, struct tlsprobe_result *r)
{
    if (!dane_wanted(o))
        return 0;
    if (SSL_CTX_dane_enable(ctx) <= 0)
        return tlsprobe_fail(r, TLSPROBE_ERROR, "OpenSSL DANE setup failed");
    return 0;
}

int
tlsprobe_dane_ssl(SSL *ssl, const struct tlsprobe_options *o, struct tlsprobe_result *r)
{
    const struct tlsa_set *t = o->tlsa;
    int added = 0;

    r->dane_depth = -1;
    if (!dane_wanted(o)) {
        /* RFC 8461 §7.1 (WebPKI): SNI = the MX host. */
        if (SSL_set_tlsext_host_name(ssl, r->mx_host) != 1)
            return tlsprobe_fail(r, TLSPROBE_ERROR, "OpenSSL setup: SNI");
        return 0;
    }
    mts_text_set(r->dane_base, sizeof(r->dane_base), "%s", t->base);
    /* RFC 7672 §8.1: SNI is the TLSA base domain; it is also the first
     * reference identifier for DANE-TA (§3.2.2), the MX host the second. */
    if (SSL_set_tlsext_host_name(ssl, t->base) != 1 || SSL_dane_enable(ssl, t->base) <= 0 ||
        (strcasecmp(t->base, r->mx_host) != 0 && SSL_add1_host(ssl, r->mx_host) != 1))
        return tlsprobe_fail(r, TLSPROBE_ERROR, "OpenSSL DANE setup failed for %s", t->base);
    /* §3.1.1: DANE-EE ignores the names (and OpenSSL ignores its dates). */
    (void)SSL_dane_set_flags(ssl, DANE_FLAG_NO_DANE_EE_NAMECHECKS);
    for (size_t i = 0; i < t->n; i++) {
        const struct tlsa_rec *rec = &t->rec[i];

        if (!rec->usable)
            continue;
        /* 0: OpenSSL finds it unusable too; < 0: a malformed record
         * (e.g. a full certificate that does not parse): skipped, like
         * any record that cannot match. */
        if (SSL_dane_tlsa_add(ssl, rec->usage, rec->selector, rec->mtype, rec->data,
                              rec->len) > 0)
            added++;
    }
    ERR_clear_error();
    /* None added: OpenSSL would verify by WebPKI alone, which must not be
     * taken for DANE; the host has usable-looking records that cannot
     * match, so DANE fails (§2.2: no downgrade). */
    r->dane_active = true;
    r->dane = added > 0 ? TLSA_DANE_VERIFIED : TLSA_DANE_FAILED; /* settled after the handshake */
    return 0;
}

/* RFC 8460's word for a chain that a matching DANE-TA record did not save. */
static const char *
chain_word(long v)
{
    switch (v) {
    case X509_V_ERR_CERT_HAS_EXPIRED:
        return "certificate-expired";
    case X509_V_ERR_HOSTNAME_MISMATCH:
        return "certificate-host-mismatch";
    default:
        return "validation-failure";
    }
}

/*
 * RFC 8461 §4.2 on a DANE probe: the chain the server sent, verified by
 * WebPKI with the probe's own store (ca_file or the system store) for the
 * MX host's name, as a route that enforces MTA-STS but not DANE (Postfix
 * "secure match=") will verify it. The name must pass both OpenSSL's host
 * check (no subject CN, no partial wildcard) and mxmatch's DNS-ID rule
 * (name_match), the one a non-DANE probe uses.
 */
static bool
pkix_valid(SSL *ssl, const struct tlsprobe_result *r)
{
    X509_STORE *store = SSL_CTX_get_cert_store(SSL_get_SSL_CTX(ssl));
    X509 *leaf = SSL_get0_peer_certificate(ssl);
    STACK_OF(X509) *chain = SSL_get_peer_cert_chain(ssl);
    X509_STORE_CTX *xs;
    X509_VERIFY_PARAM *vp;
    bool ok = false;

    if (leaf == NULL || store == NULL || !r->name_match || (xs = X509_STORE_CTX_new()) == NULL)
        return false;
    if (X509_STORE_CTX_init(xs, store, leaf, chain) == 1 &&
        X509_STORE_CTX_set_default(xs, "ssl_server") == 1 &&
        (vp = X509_STORE_CTX_get0_param(xs)) != NULL) {
        X509_VERIFY_PARAM_set_depth(vp, TLSPROBE_VERIFY_DEPTH);
        X509_VERIFY_PARAM_set_hostflags(vp, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS |
                                                X509_CHECK_FLAG_NEVER_CHECK_SUBJECT);
        ok = X509_VERIFY_PARAM_set1_host(vp, r->mx_host, 0) == 1 && X509_verify_cert(xs) == 1;
    }
    X509_STORE_CTX_free(xs);
    ERR_clear_error();
    return ok;
}

void
tlsprobe_dane_read(SSL *ssl, struct tlsprobe_result *r)
{
    uint8_t usage = 0, selector = 0, mtype = 0;
    const unsigned char *data = NULL;
    size_t dlen = 0;
    long v;
    int depth;

    if (!r->dane_active)
        return;
    r->pkix_valid = pkix_valid(ssl, r);
    v = SSL_get_verify_result(ssl);
    depth = SSL_get0_dane_authority(ssl, NULL, NULL);
    r->dane_depth = depth;
    if (depth >= 0 && SSL_get0_dane_tlsa(ssl, &usage, &selector, &mtype, &data, &dlen) >= 0)
        mts_text_set(r->dane_match, sizeof(r->dane_match), "%u %u %u", usage, selector, mtype);
    if (r->dane == TLSA_DANE_VERIFIED && depth >= 0 && v == X509_V_OK) {
        r->chain_valid = true;
        return;
    }
    r->dane = TLSA_DANE_FAILED;
    r->chain_valid = false;
    if (depth >= 0)
        mts_text_set(r->verify_text, sizeof(r->verify_text), "%s: TLSA %s matched at depth %d "
                     "but the chain does not verify: %s", chain_word(v), r->dane_match, depth,
                     X509_verify_cert_error_string(v));
    else if (v != X509_V_OK && v != X509_V_ERR_DANE_NO_MATCH)
        /* A DANE-TA record matched, then the names or dates failed: OpenSSL
         * names no authority then, but its error says which. */
        mts_text_set(r->verify_text, sizeof(r->verify_text), "%s: %s (DANE-TA, base domain %s)",
                     chain_word(v), X509_verify_cert_error_string(v), r->dane_base);
    else
        mts_text_set(r->verify_text, sizeof(r->verify_text),
                     "tlsa-invalid: no TLSA record of _%d._tcp.%s matches the certificate chain",
                     r->port, r->dane_base);
}
