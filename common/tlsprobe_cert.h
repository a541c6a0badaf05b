/*
 * tlsprobe_cert - tlsprobe's certificate reading and judging, shared by
 * tlsprobe.c and tlsprobe_cert.c only (not part of tlsprobe's interface:
 * callers use tlsprobe.h).
 */
#ifndef MTS_TLSPROBE_CERT_H
#define MTS_TLSPROBE_CERT_H

#include <openssl/ssl.h>

#include "tlsprobe.h"

/* Records the first failure only (later ones follow from it); returns -1. */
int tlsprobe_fail(struct tlsprobe_result *r, enum tlsprobe_status s, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* SSL_CTX_set_verify callback: notes every chain problem in the result
 * (the SSL's app data) and lets the handshake go on. */
int tlsprobe_verify_cb(int ok, X509_STORE_CTX *x);

/* What was negotiated and what the leaf certificate says, into r. */
void tlsprobe_read_session(SSL *ssl, struct tlsprobe_result *r);

/* The first of: too old, no certificate, untrusted, expired, not yet
 * valid, wrong name (0 when none, else -1 with r's status set). */
int tlsprobe_judge_session(struct tlsprobe_result *r);

/* tlsprobe_dane.c: DANE on the context (when o->tlsa has usable records)
 * and on the connection (SNI = the base domain); -1 with r's status set. */
int tlsprobe_dane_ctx(SSL_CTX *ctx, const struct tlsprobe_options *o, struct tlsprobe_result *r);
int tlsprobe_dane_ssl(SSL *ssl, const struct tlsprobe_options *o, struct tlsprobe_result *r);
/* After the handshake: which record matched, into r (dane, dane_match). */
void tlsprobe_dane_read(SSL *ssl, struct tlsprobe_result *r);

#endif
