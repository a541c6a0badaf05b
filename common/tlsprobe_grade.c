/*
 * tlsprobe_grade - the grade of one probe result, and the words of the
 * probe's enums; see tlsprobe.h for the exact grade definitions.
 *
 * DESCRIPTION
 *	Pure functions: no I/O, no clock, no OpenSSL. The NIST SP 800-52r2
 *	suite list follows the digest in NOTES-MX-PROBE.md §2 (TLS-Scanner's
 *	encoding of the guideline): AES only, with the key exchanges the
 *	guideline names, and the four TLS 1.3 AES suites.
 */
#include "tlsprobe.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "err.h"
#include "nametab.h"

#define TLS1_2 0x0303 /* wire versions, so this file needs no OpenSSL header */
#define TLS1_3 0x0304

#define RSA_MIN_BITS 2048 /* NIST SP 800-57: 112-bit security */
#define EC_MIN_BITS 224
#define DH_MIN_BITS 2048

static const struct nametab status_names[] = {
    {"ok", TLSPROBE_OK},
    {"refused", TLSPROBE_REFUSED},
    {"unreachable", TLSPROBE_UNREACHABLE},
    {"timeout", TLSPROBE_TIMEOUT},
    {"closed", TLSPROBE_CLOSED},
    {"reply-too-long", TLSPROBE_REPLY_TOO_LONG},
    {"bad-reply", TLSPROBE_BAD_REPLY},
    {"greeting-rejected", TLSPROBE_GREETING_REJECT},
    {"ehlo-rejected", TLSPROBE_EHLO_REJECT},
    {"no-starttls", TLSPROBE_NO_STARTTLS},
    {"starttls-refused", TLSPROBE_STARTTLS_REFUSED},
    {"handshake-failed", TLSPROBE_HANDSHAKE},
    {"tls-too-old", TLSPROBE_TLS_TOO_OLD},
    {"no-certificate", TLSPROBE_NO_CERT},
    {"untrusted", TLSPROBE_UNTRUSTED},
    {"expired", TLSPROBE_EXPIRED},
    {"not-yet-valid", TLSPROBE_NOT_YET_VALID},
    {"wrong-name", TLSPROBE_WRONG_NAME},
    {"error", TLSPROBE_ERROR},
    {NULL, -1},
};

static const struct nametab stage_names[] = {
    {"connect", TLSPROBE_STAGE_CONNECT},
    {"greeting", TLSPROBE_STAGE_GREETING},
    {"ehlo", TLSPROBE_STAGE_EHLO},
    {"starttls", TLSPROBE_STAGE_STARTTLS},
    {"handshake", TLSPROBE_STAGE_HANDSHAKE},
    {"ehlo-tls", TLSPROBE_STAGE_EHLO_TLS},
    {"quit", TLSPROBE_STAGE_QUIT},
    {"done", TLSPROBE_STAGE_DONE},
    {NULL, -1},
};

static const struct nametab grade_names[] = {
    {"good", TLSPROBE_GRADE_GOOD},
    {"weak", TLSPROBE_GRADE_WEAK},
    {"unverified", TLSPROBE_GRADE_UNVERIFIED},
    {"fail", TLSPROBE_GRADE_FAIL},
    {"unknown", TLSPROBE_GRADE_UNKNOWN},
    {NULL, -1},
};

const char *
tlsprobe_status_name(enum tlsprobe_status s)
{
    return nametab_name(status_names, (int)s);
}

const char *
tlsprobe_stage_name(enum tlsprobe_stage s)
{
    return nametab_name(stage_names, (int)s);
}

const char *
tlsprobe_grade_name(enum tlsprobe_grade_word g)
{
    return nametab_name(grade_names, (int)g);
}

/* TLS 1.2: "<kx>_WITH_AES_<128|256>_<mode>" with a NIST key exchange and mode. */
static const char *const nist12_kx[] = {
    "TLS_ECDHE_ECDSA_WITH_AES_", "TLS_ECDHE_RSA_WITH_AES_", "TLS_DHE_RSA_WITH_AES_",
    "TLS_DHE_DSS_WITH_AES_",     "TLS_DH_DSS_WITH_AES_",    "TLS_DH_RSA_WITH_AES_",
    "TLS_ECDH_ECDSA_WITH_AES_",  "TLS_ECDH_RSA_WITH_AES_",
    "TLS_RSA_WITH_AES_", /* Appendix D: transitional key transport */
};
static const char *const nist12_mode[] = {
    "GCM_SHA256", "GCM_SHA384", "CCM", "CCM_8", "CBC_SHA", "CBC_SHA256", "CBC_SHA384",
};
static const char *const nist13[] = {
    "TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_AES_128_CCM_SHA256",
    "TLS_AES_128_CCM_8_SHA256",
};

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

bool
tlsprobe_cipher_nist(const char *name, int tls_version)
{
    const char *rest;
    size_t n;

    if (name == NULL)
        return false;
    if (tls_version >= TLS1_3) {
        for (size_t i = 0; i < N_OF(nist13); i++)
            if (strcmp(name, nist13[i]) == 0)
                return true;
        return false;
    }
    if (tls_version != TLS1_2)
        return false; /* the guideline's suites are for TLS 1.2 and 1.3 */
    for (size_t i = 0; i < N_OF(nist12_kx); i++) {
        n = strlen(nist12_kx[i]);
        if (strncmp(name, nist12_kx[i], n) != 0)
            continue;
        rest = name + n;
        if (strncmp(rest, "128_", 4) != 0 && strncmp(rest, "256_", 4) != 0)
            return false;
        for (size_t j = 0; j < N_OF(nist12_mode); j++)
            if (strcmp(rest + 4, nist12_mode[j]) == 0)
                return true;
        return false;
    }
    return false;
}

static void __attribute__((format(printf, 2, 3)))
add(struct tlsprobe_grade *g, const char *fmt, ...)
{
    va_list ap;

    if (g->n == TLSPROBE_REASONS_MAX)
        return;
    va_start(ap, fmt);
    (void)vsnprintf(g->reasons[g->n], sizeof(g->reasons[0]), fmt, ap); /* a sentence */
    va_end(ap);
    g->n++;
}

/* Failures before a STARTTLS answer say nothing about TLS: "unknown". */
static bool
before_tls(const struct tlsprobe_result *r)
{
    switch (r->status) {
    case TLSPROBE_REFUSED:
    case TLSPROBE_UNREACHABLE:
    case TLSPROBE_GREETING_REJECT:
    case TLSPROBE_EHLO_REJECT:
    case TLSPROBE_ERROR:
        return !r->tls_done;
    case TLSPROBE_TIMEOUT:
    case TLSPROBE_CLOSED:
        return r->stage <= TLSPROBE_STAGE_STARTTLS;
    default:
        return false;
    }
}

/* Is the key of the leaf at least 112-bit strong (NIST SP 800-57)? */
static bool
key_strong(const struct tlsprobe_result *r)
{
    if (strcmp(r->key_type, "RSA") == 0 || strcmp(r->key_type, "DSA") == 0)
        return r->key_bits >= RSA_MIN_BITS;
    if (strcmp(r->key_type, "EC") == 0)
        return r->key_bits >= EC_MIN_BITS;
    return strcmp(r->key_type, "Ed25519") == 0 || strcmp(r->key_type, "Ed448") == 0;
}

static bool
hash_weak(const char *h)
{
    return strcasecmp(h, "MD5") == 0 || strcasecmp(h, "SHA1") == 0 || strcasecmp(h, "MD4") == 0;
}

void
tlsprobe_grade(const struct tlsprobe_result *r, struct tlsprobe_grade *g)
{
    bool cert_ok;

    memset(g, 0, sizeof(*g));
    if (!r->tls_done || r->tls_version < TLS1_2) {
        g->grade = before_tls(r) ? TLSPROBE_GRADE_UNKNOWN : TLSPROBE_GRADE_FAIL;
        add(g, "%s: %s", tlsprobe_status_name(r->status), r->reason);
        return;
    }
    g->tls = true;
    /* The session works but the dialogue failed after it: no mail goes there. */
    if (r->status == TLSPROBE_TIMEOUT || r->status == TLSPROBE_CLOSED ||
        r->status == TLSPROBE_BAD_REPLY || r->status == TLSPROBE_REPLY_TOO_LONG ||
        r->status == TLSPROBE_EHLO_REJECT || r->status == TLSPROBE_ERROR) {
        g->tls = false;
        g->grade = TLSPROBE_GRADE_FAIL;
        add(g, "%s after the TLS handshake: %s", tlsprobe_status_name(r->status), r->reason);
        return;
    }
    /* With DANE the chain is DANE's and names are its business (§3.1.1). */
    cert_ok = r->cert_present && r->chain_valid && (r->dane_active || r->name_match);
    g->rfc8461 = cert_ok;
    /* WebPKI alone, for a route that enforces MTA-STS but not DANE. */
    g->pkix = r->dane_active ? r->cert_present && r->pkix_valid : cert_ok;
    if (!cert_ok)
        add(g, "certificate does not validate for %s (%s): %s", r->mx_host,
            tlsprobe_status_name(r->status), r->reason);
    g->floor = true;
    if (!tlsprobe_cipher_nist(r->cipher, r->tls_version)) {
        g->floor = false;
        add(g, "cipher suite %s (%s) is not in NIST SP 800-52r2", r->cipher, r->protocol);
    }
    if (r->cert_present && !key_strong(r)) {
        g->floor = false;
        add(g, "certificate key %s %d bits is below 112-bit strength", r->key_type, r->key_bits);
    }
    if (r->cert_present && hash_weak(r->sig_hash)) {
        g->floor = false;
        add(g, "certificate signed with %s", r->sig_hash);
    }
    if (strcmp(r->kex_group, "DH") == 0 || strncmp(r->kex_group, "ffdhe", 5) == 0) {
        if (r->kex_bits > 0 && r->kex_bits < DH_MIN_BITS) {
            g->floor = false;
            add(g, "ephemeral DH key of %d bits (%d needed)", r->kex_bits, DH_MIN_BITS);
        }
    }
    if (!cert_ok)
        g->grade = TLSPROBE_GRADE_UNVERIFIED;
    else
        g->grade = g->floor ? TLSPROBE_GRADE_GOOD : TLSPROBE_GRADE_WEAK;
    /* Notes that do not change the grade. */
    if (cert_ok && r->dane_active)
        add(g, "%s %s, DANE verified (TLSA %s)", r->protocol, r->cipher, r->dane_match);
    else if (cert_ok)
        add(g, "%s %s, certificate valid for %s, %ld days left", r->protocol, r->cipher,
            r->mx_host, r->days_left);
    if (cert_ok && r->dane_active && !g->pkix)
        add(g, "note: not valid for %s by WebPKI (a route enforcing MTA-STS without DANE "
            "would not deliver)", r->mx_host);
    if (cert_ok && !r->dane_active && r->days_left < TLSPROBE_EXPIRY_WARN_DAYS)
        add(g, "note: the certificate expires in under %d days (%ld days left)",
            TLSPROBE_EXPIRY_WARN_DAYS, r->days_left);
}
