/*
 * tlsprobe_cert - the certificate half of a probe: chain problems collected
 * during the handshake, what the session and the leaf certificate say, and
 * the judgement (TLS version, trust, dates, name) in tlsprobe's words.
 * Apart from tlsprobe.c so that the dialogue and the certificate rules are
 * each a file of a readable size.
 */
#include "tlsprobe_cert.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "err.h"
#include "mxmatch.h"

static unsigned
chain_flag(int e)
{
    switch (e) {
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
        return TLSPROBE_CHAIN_SELF_SIGNED;
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
        return TLSPROBE_CHAIN_UNKNOWN_CA;
    case X509_V_ERR_CERT_HAS_EXPIRED:
        return TLSPROBE_CHAIN_EXPIRED;
    case X509_V_ERR_CERT_NOT_YET_VALID:
        return TLSPROBE_CHAIN_NOT_YET_VALID;
    default:
        return TLSPROBE_CHAIN_OTHER;
    }
}

/*
 * Collect, don't abort: note every chain problem in the result (found
 * through the SSL's app data, so nothing is global) and let the handshake
 * go on, so that one probe tells the whole story (expired AND wrong name).
 */
int
tlsprobe_verify_cb(int ok, X509_STORE_CTX *x)
{
    SSL *ssl = X509_STORE_CTX_get_ex_data(x, SSL_get_ex_data_X509_STORE_CTX_idx());
    struct tlsprobe_result *r = ssl != NULL ? SSL_get_app_data(ssl) : NULL;
    EVP_PKEY *key;
    X509 *cert;
    int e;

    if (r == NULL)
        return 1;
    /*
     * The one problem that ends the handshake: a key over the bound, seen
     * here before the key verifies anything (a certificate's callback
     * comes before its key checks the one below it, the leaf's before the
     * handshake signature). OpenSSL's security callback is not asked about
     * the server's keys, and its RSA limit only shows as "bad signature".
     */
    if ((cert = X509_STORE_CTX_get_current_cert(x)) != NULL &&
        (key = X509_get0_pubkey(cert)) != NULL && EVP_PKEY_get_bits(key) > TLSPROBE_KEY_BITS_MAX) {
        r->chain_flags |= TLSPROBE_CHAIN_OTHER;
        r->verify_code = X509_V_ERR_APPLICATION_VERIFICATION;
        mts_text_set(r->verify_text, sizeof(r->verify_text),
                     "certificate key of %d bits (depth %d) is over the %d-bit bound",
                     EVP_PKEY_get_bits(key), X509_STORE_CTX_get_error_depth(x), TLSPROBE_KEY_BITS_MAX);
        X509_STORE_CTX_set_error(x, X509_V_ERR_APPLICATION_VERIFICATION);
        return 0;
    }
    if (ok)
        return 1;
    e = X509_STORE_CTX_get_error(x);
    r->chain_flags |= chain_flag(e);
    if (r->verify_code == 0) {
        r->verify_code = e;
        mts_text_set(r->verify_text, sizeof(r->verify_text), "%s (depth %d)",
                     X509_verify_cert_error_string(e), X509_STORE_CTX_get_error_depth(x));
    }
    return 1;
}

/* An ASN1_TIME as Unix time (0 when it cannot be read). */
static int64_t
asn1_unix(const ASN1_TIME *t)
{
    struct tm tm;

    if (t == NULL || ASN1_TIME_to_tm(t, &tm) != 1)
        return 0;
    return (int64_t)timegm(&tm);
}

/* subjectAltName dNSNames: kept quoted for showing; matched raw, NUL-free. */
static void
read_names(X509 *leaf, struct tlsprobe_result *r)
{
    GENERAL_NAMES *gens = X509_get_ext_d2i(leaf, NID_subject_alt_name, NULL, NULL);
    char name[TLSPROBE_HOST_MAX + 1];
    int n = gens != NULL ? sk_GENERAL_NAME_num(gens) : 0;

    for (int i = 0; i < n; i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
        const unsigned char *d;
        int len;

        if (g->type != GEN_DNS)
            continue;
        d = ASN1_STRING_get0_data(g->d.dNSName);
        len = ASN1_STRING_length(g->d.dNSName);
        r->n_names_total++;
        if (r->n_names < TLSPROBE_NAMES_MAX)
            mts_err_quote(r->names[r->n_names++], sizeof(r->names[0]), (const char *)d,
                          (size_t)len);
        /* A name with a NUL or over 253 octets is no DNS-ID: never matches. */
        if (r->name_match || len <= 0 || len > TLSPROBE_HOST_MAX ||
            memchr(d, '\0', (size_t)len) != NULL)
            continue;
        memcpy(name, d, (size_t)len);
        name[len] = '\0';
        if (mxmatch_pattern_check(name, (size_t)len, NULL) == 0 &&
            mxmatch_match(name, r->mx_host))
            r->name_match = true;
    }
    GENERAL_NAMES_free(gens);
}

static void
read_leaf(X509 *leaf, struct tlsprobe_result *r)
{
    EVP_PKEY *pk = X509_get0_pubkey(leaf);
    int mdnid = NID_undef, id;
    char buf[TLSPROBE_TEXT_MAX];
    BIO *b;
    int n;

    r->cert_present = true;
    if (pk != NULL) {
        id = EVP_PKEY_get_base_id(pk);
        mts_text_set(r->key_type, sizeof(r->key_type), "%s",
                     id == EVP_PKEY_RSA ? "RSA" : id == EVP_PKEY_EC ? "EC" :
                     id == EVP_PKEY_ED25519 ? "Ed25519" : id == EVP_PKEY_ED448 ? "Ed448" :
                     id == EVP_PKEY_DSA ? "DSA" : OBJ_nid2sn(id));
        r->key_bits = EVP_PKEY_get_bits(pk);
        if (id == EVP_PKEY_EC &&
            EVP_PKEY_get_utf8_string_param(pk, OSSL_PKEY_PARAM_GROUP_NAME, r->key_curve,
                                           sizeof(r->key_curve), NULL) != 1)
            r->key_curve[0] = '\0';
    }
    if (X509_get_signature_info(leaf, &mdnid, NULL, NULL, NULL) == 1 && mdnid != NID_undef)
        mts_text_set(r->sig_hash, sizeof(r->sig_hash), "%s", OBJ_nid2sn(mdnid));
    n = X509_NAME_get_text_by_NID(X509_get_subject_name(leaf), NID_commonName, buf,
                                  (int)sizeof(buf));
    if (n > 0)
        mts_err_quote(r->subject_cn, sizeof(r->subject_cn), buf, (size_t)n);
    if ((b = BIO_new(BIO_s_mem())) != NULL) {
        X509_NAME_print_ex(b, X509_get_issuer_name(leaf), 0, XN_FLAG_RFC2253);
        n = BIO_read(b, buf, (int)sizeof(buf));
        if (n > 0)
            mts_err_quote(r->issuer, sizeof(r->issuer), buf, (size_t)n);
        BIO_free(b);
    }
    r->not_before = asn1_unix(X509_get0_notBefore(leaf));
    r->not_after = asn1_unix(X509_get0_notAfter(leaf));
    /* Floor division, so a certificate that expired an hour ago has -1. */
    int64_t left = r->not_after - (int64_t)time(NULL);
    r->days_left = (long)(left >= 0 ? left / 86400 : -((-left + 86399) / 86400));
    read_names(leaf, r);
}

/* What was negotiated and what the certificate says. */
void
tlsprobe_read_session(SSL *ssl, struct tlsprobe_result *r)
{
    const SSL_CIPHER *ci = SSL_get_current_cipher(ssl);
    const char *group;
    EVP_PKEY *tmp = NULL;
    X509 *leaf;
    int nid;

    r->tls_done = true;
    r->tls_version = SSL_version(ssl);
    mts_text_set(r->protocol, sizeof(r->protocol), "%s", SSL_get_version(ssl));
    if (ci != NULL) {
        mts_text_set(r->cipher, sizeof(r->cipher), "%s", SSL_CIPHER_standard_name(ci));
        r->cipher_bits = SSL_CIPHER_get_bits(ci, NULL);
    }
    nid = SSL_get_negotiated_group(ssl);
    if (nid != 0 && (group = SSL_group_to_name(ssl, nid)) != NULL)
        mts_text_set(r->kex_group, sizeof(r->kex_group), "%s", group);
    if (SSL_get_peer_tmp_key(ssl, &tmp) == 1) {
        r->kex_bits = EVP_PKEY_get_bits(tmp);
        if (r->kex_group[0] == '\0' && EVP_PKEY_get_base_id(tmp) == EVP_PKEY_DH)
            mts_text_set(r->kex_group, sizeof(r->kex_group), "DH");
        EVP_PKEY_free(tmp);
    }
    if ((leaf = SSL_get0_peer_certificate(ssl)) != NULL)
        read_leaf(leaf, r);
    r->chain_valid = r->cert_present && r->chain_flags == 0;
    /* WebPKI's verdict; tlsprobe_dane_read judges it apart under DANE. */
    r->pkix_valid = r->chain_valid && r->name_match;
}

/* The names of the certificate, for a "wrong name" sentence. */
static void
names_list(const struct tlsprobe_result *r, char *out, size_t outsz)
{
    size_t o = 0;
    int n;

    out[0] = '\0';
    for (size_t i = 0; i < r->n_names && o < outsz; i++) {
        n = snprintf(out + o, outsz - o, "%s%s", i > 0 ? ", " : "", r->names[i]);
        if (n < 0)
            break;
        o += (size_t)n;
    }
    if (o < outsz && r->n_names_total > r->n_names)
        (void)snprintf(out + o, outsz - o, " and %zu more", r->n_names_total - r->n_names);
}

/* The first of: too old, no certificate, untrusted, expired, not yet valid, wrong name. */
int
tlsprobe_judge_session(struct tlsprobe_result *r)
{
    char names[300], when[32];
    time_t t;
    struct tm tm;

    if (r->tls_version < TLS1_2_VERSION)
        return tlsprobe_fail(r, TLSPROBE_TLS_TOO_OLD,
                    "TLS too old: the server negotiated %s though TLS 1.2 and 1.3 were offered; "
                    "TLS 1.2 or newer is required (RFC 8461 §7.2)", r->protocol);
    if (!r->cert_present)
        return tlsprobe_fail(r, TLSPROBE_NO_CERT, "the server sent no certificate (%s)", r->cipher);
    /* DANE replaces WebPKI (RFC 7672 §3): its verdict alone counts. */
    if (r->dane_active)
        return r->chain_valid ? 0 : tlsprobe_fail(r, TLSPROBE_UNTRUSTED, "DANE: %s", r->verify_text);
    if (r->chain_flags & (TLSPROBE_CHAIN_SELF_SIGNED | TLSPROBE_CHAIN_UNKNOWN_CA |
                          TLSPROBE_CHAIN_OTHER))
        return tlsprobe_fail(r, TLSPROBE_UNTRUSTED, "untrusted certificate: %s%s: %s, issuer \"%s\"",
                    (r->chain_flags & TLSPROBE_CHAIN_SELF_SIGNED) ? "self-signed, " :
                    (r->chain_flags & TLSPROBE_CHAIN_UNKNOWN_CA) ? "unknown CA, " : "",
                    "not trusted by the CA store", r->verify_text, r->issuer);
    t = (time_t)r->not_after;
    if (gmtime_r(&t, &tm) == NULL || strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%SZ", &tm) == 0)
        mts_text_set(when, sizeof(when), "?");
    if (r->chain_flags & TLSPROBE_CHAIN_EXPIRED)
        return tlsprobe_fail(r, TLSPROBE_EXPIRED, "the certificate expired on %s (%ld days ago)", when,
                    r->days_left < 0 ? -r->days_left : 0);
    if (r->chain_flags & TLSPROBE_CHAIN_NOT_YET_VALID) {
        t = (time_t)r->not_before;
        if (gmtime_r(&t, &tm) == NULL ||
            strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%SZ", &tm) == 0)
            mts_text_set(when, sizeof(when), "?");
        return tlsprobe_fail(r, TLSPROBE_NOT_YET_VALID, "the certificate is not valid before %s", when);
    }
    if (!r->name_match) {
        names_list(r, names, sizeof(names));
        return tlsprobe_fail(r, TLSPROBE_WRONG_NAME,
                    "wrong name: no DNS-ID matches %s; the certificate names %s%s%s%s "
                    "(RFC 8461 §4.2: subjectAltName only)",
                    r->mx_host, r->n_names_total > 0 ? names : "no DNS name",
                    r->subject_cn[0] != '\0' ? " (subject CN \"" : "", r->subject_cn,
                    r->subject_cn[0] != '\0' ? "\" is not used)" : "");
    }
    return 0;
}

