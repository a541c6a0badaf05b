/*
 * tlsserver.h - an OpenSSL STARTTLS SMTP server in a thread of the unit
 * test, and certificates made in memory, for what a Python ssl server
 * cannot do: ask for a TLS 1.2 renegotiation, send a DHE group of any
 * size, count the handshakes it sees.
 *
 * SYNOPSIS
 *	struct tlsserver s;
 *	SSL_CTX *ctx = tlsserver_ctx(leaf, key, chain);   // the test tunes it
 *	tlsserver_start(&s, ctx, TLSSERVER_RENEGOTIATE);  // s.port on 127.0.0.1
 *	... tlsprobe_run(..., s.port, ...) ...
 *	tlsserver_stop(&s);   // joins the thread; then read s.client_hellos
 *
 * DESCRIPTION
 *	The server serves one connection at a time: a 220 greeting, EHLO
 *	answered with STARTTLS, 220 to STARTTLS, SSL_accept, then EHLO and
 *	QUIT inside TLS. With TLSSERVER_RENEGOTIATE it sends a HelloRequest
 *	(SSL_renegotiate) right after its handshake, before reading anything.
 *	A message callback counts the ClientHellos and no_renegotiation
 *	alerts it receives and the HelloRequests it sends (atomics: the test reads them after the
 *	probe). Every read waits at most TLSSERVER_IO_S seconds, so that a
 *	probe that stalls cannot hang the test. Listens on 127.0.0.1 only.
 *
 *	tlsserver_cert makes an X.509 v3 certificate: subject CN, an issuer
 *	(NULL: self-signed), CA or leaf, a dNSName (NULL: none), and pad
 *	octets in a private non-critical extension to make it as large as a
 *	test needs. Keys: EVP_EC_gen("P-256") or EVP_RSA_gen(bits).
 */
#ifndef MTS_TLSSERVER_H
#define MTS_TLSSERVER_H

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#define TLSSERVER_IO_S 15
#define TLSSERVER_RENEGOTIATE 0x01
#define TLSSERVER_PAD_OID "1.3.6.1.4.1.55555.1.1" /* private arc: pad octets */

struct tlsserver {
    SSL_CTX *ctx;
    int lfd;
    unsigned short port;
    unsigned flags;
    pthread_t t;
    atomic_bool stop;
    atomic_int connections;
    atomic_int client_hellos;    /* ClientHello messages received */
    atomic_int hello_requests;   /* HelloRequest messages sent */
    atomic_int no_renegotiation; /* no_renegotiation alerts received */
    atomic_int accepted;         /* handshakes completed (SSL_accept == 1) */
    atomic_int ehlo_in_tls;      /* EHLO commands read inside TLS */
};

/* ------------------------------------------------------------ certificates */

static inline bool
tlsserver_add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX v3;
    X509_EXTENSION *e;
    bool ok;

    X509V3_set_ctx(&v3, issuer != NULL ? issuer : x, x, NULL, NULL, 0);
    if ((e = X509V3_EXT_conf_nid(NULL, &v3, nid, value)) == NULL)
        return false;
    ok = X509_add_ext(x, e, -1) == 1;
    X509_EXTENSION_free(e);
    return ok;
}

/* pad octets as a DER OCTET STRING inside a private extension. */
static inline bool
tlsserver_add_pad(X509 *x, size_t pad)
{
    ASN1_OBJECT *oid = OBJ_txt2obj(TLSSERVER_PAD_OID, 1);
    ASN1_OCTET_STRING *inner = ASN1_OCTET_STRING_new(), *outer = ASN1_OCTET_STRING_new();
    unsigned char *der = NULL, *bytes = calloc(1, pad > 0 ? pad : 1);
    X509_EXTENSION *e = NULL;
    int len;
    bool ok = false;

    if (oid != NULL && inner != NULL && outer != NULL && bytes != NULL &&
        ASN1_OCTET_STRING_set(inner, bytes, (int)pad) == 1 &&
        (len = i2d_ASN1_OCTET_STRING(inner, &der)) > 0 &&
        ASN1_OCTET_STRING_set(outer, der, len) == 1 &&
        (e = X509_EXTENSION_create_by_OBJ(NULL, oid, 0, outer)) != NULL)
        ok = X509_add_ext(x, e, -1) == 1;
    X509_EXTENSION_free(e);
    OPENSSL_free(der);
    free(bytes);
    ASN1_OCTET_STRING_free(outer);
    ASN1_OCTET_STRING_free(inner);
    ASN1_OBJECT_free(oid);
    return ok;
}

static inline X509 *
tlsserver_cert(const char *cn, EVP_PKEY *key, X509 *issuer, EVP_PKEY *issuer_key, bool ca,
               const char *dns, size_t pad)
{
    static atomic_long serial = 1;
    X509 *x = X509_new();
    X509_NAME *name = X509_NAME_new();
    char san[300];
    bool ok;

    ok = x != NULL && name != NULL && X509_set_version(x, 2) == 1 &&
         ASN1_INTEGER_set(X509_get_serialNumber(x), atomic_fetch_add(&serial, 1)) == 1 &&
         X509_gmtime_adj(X509_getm_notBefore(x), -3600) != NULL &&
         X509_gmtime_adj(X509_getm_notAfter(x), 30L * 86400) != NULL &&
         X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1,
                                    0) == 1 &&
         X509_set_subject_name(x, name) == 1 &&
         X509_set_issuer_name(x, issuer != NULL ? X509_get_subject_name(issuer) : name) == 1 &&
         X509_set_pubkey(x, key) == 1 &&
         tlsserver_add_ext(x, issuer, NID_basic_constraints,
                           ca ? "critical,CA:TRUE" : "critical,CA:FALSE") &&
         tlsserver_add_ext(x, issuer, NID_key_usage,
                           ca ? "critical,keyCertSign,cRLSign"
                              : "critical,digitalSignature,keyEncipherment") &&
         tlsserver_add_ext(x, issuer, NID_subject_key_identifier, "hash") &&
         (issuer == NULL || tlsserver_add_ext(x, issuer, NID_authority_key_identifier, "keyid"));
    if (ok && dns != NULL) {
        snprintf(san, sizeof(san), "DNS:%s", dns);
        ok = tlsserver_add_ext(x, issuer, NID_subject_alt_name, san);
    }
    if (ok && pad > 0)
        ok = tlsserver_add_pad(x, pad);
    if (ok)
        ok = X509_sign(x, issuer_key != NULL ? issuer_key : key, EVP_sha256()) > 0;
    X509_NAME_free(name);
    if (!ok) {
        X509_free(x);
        return NULL;
    }
    return x;
}

/* Writes certificates as one PEM file (the probe's CA file). */
static inline bool
tlsserver_write_pem(const char *path, X509 *const *certs, size_t n)
{
    FILE *f = fopen(path, "w");
    bool ok = f != NULL;

    for (size_t i = 0; ok && i < n; i++)
        ok = PEM_write_X509(f, certs[i]) == 1;
    if (f != NULL && fclose(f) != 0)
        ok = false;
    return ok;
}

/* ------------------------------------------------------------------ server */

static inline void
tlsserver_msg_cb(int write_p, int version, int content_type, const void *buf, size_t len, SSL *ssl,
                 void *arg)
{
    struct tlsserver *s = SSL_get_app_data(ssl);
    const unsigned char *p = buf;

    (void)version;
    (void)arg;
    if (s == NULL || len < 1)
        return;
    if (!write_p && content_type == SSL3_RT_ALERT && len >= 2 && p[1] == SSL_AD_NO_RENEGOTIATION)
        atomic_fetch_add(&s->no_renegotiation, 1);
    if (content_type != SSL3_RT_HANDSHAKE)
        return;
    if (!write_p && p[0] == SSL3_MT_CLIENT_HELLO)
        atomic_fetch_add(&s->client_hellos, 1);
    if (write_p && p[0] == SSL3_MT_HELLO_REQUEST)
        atomic_fetch_add(&s->hello_requests, 1);
}

/* The server's context: leaf, its key, the intermediates to send (may be NULL). */
static inline SSL_CTX *
tlsserver_ctx(X509 *leaf, EVP_PKEY *key, X509 *const *chain, size_t n_chain)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    bool ok = ctx != NULL;

    if (ok) {
        SSL_CTX_set_security_level(ctx, 0);
        ok = SSL_CTX_use_certificate(ctx, leaf) == 1 && SSL_CTX_use_PrivateKey(ctx, key) == 1;
    }
    for (size_t i = 0; ok && i < n_chain; i++)
        ok = SSL_CTX_add1_chain_cert(ctx, chain[i]) == 1;
    if (!ok) {
        ERR_print_errors_fp(stderr);
        SSL_CTX_free(ctx);
        return NULL;
    }
    SSL_CTX_set_msg_callback(ctx, tlsserver_msg_cb);
    return ctx;
}

/* One line, one octet at a time (nothing read beyond it before TLS). */
static inline bool
tlsserver_read_line(int fd, SSL *ssl, char *line, size_t size)
{
    size_t n = 0;
    char ch;

    while (n + 1 < size) {
        int got = ssl != NULL ? SSL_read(ssl, &ch, 1) : (int)read(fd, &ch, 1);

        if (got <= 0)
            return false;
        if (ch == '\n')
            break;
        if (ch != '\r')
            line[n++] = ch;
    }
    line[n] = '\0';
    return true;
}

static inline bool
tlsserver_say(int fd, SSL *ssl, const char *text)
{
    int len = (int)strlen(text);

    return ssl != NULL ? SSL_write(ssl, text, len) == len : write(fd, text, (size_t)len) == len;
}

static inline void
tlsserver_serve(struct tlsserver *s, int fd)
{
    struct timeval tv = {TLSSERVER_IO_S, 0};
    char line[1024];
    SSL *ssl = NULL;

    atomic_fetch_add(&s->connections, 1);
    (void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    (void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    if (!tlsserver_say(fd, NULL, "220 mx.bounds.test ESMTP\r\n"))
        return;
    for (;;) {
        if (!tlsserver_read_line(fd, NULL, line, sizeof(line)))
            return;
        if (strncasecmp(line, "EHLO", 4) == 0) {
            if (!tlsserver_say(fd, NULL, "250-mx.bounds.test\r\n250 STARTTLS\r\n"))
                return;
        } else if (strcasecmp(line, "STARTTLS") == 0) {
            if (!tlsserver_say(fd, NULL, "220 2.0.0 go ahead\r\n"))
                return;
            break;
        } else {
            (void)tlsserver_say(fd, NULL, "221 2.0.0 bye\r\n");
            return;
        }
    }
    if ((ssl = SSL_new(s->ctx)) == NULL || SSL_set_fd(ssl, fd) != 1 ||
        SSL_set_app_data(ssl, s) != 1 || SSL_accept(ssl) != 1)
        goto out;
    atomic_fetch_add(&s->accepted, 1);
    if ((s->flags & TLSSERVER_RENEGOTIATE) &&
        (SSL_renegotiate(ssl) != 1 || SSL_do_handshake(ssl) != 1))
        goto out;
    while (tlsserver_read_line(fd, ssl, line, sizeof(line))) {
        if (strncasecmp(line, "EHLO", 4) == 0) {
            atomic_fetch_add(&s->ehlo_in_tls, 1);
            if (!tlsserver_say(fd, ssl, "250-mx.bounds.test\r\n250 8BITMIME\r\n"))
                break;
        } else {
            (void)tlsserver_say(fd, ssl, "221 2.0.0 bye\r\n");
            break;
        }
    }
    (void)SSL_shutdown(ssl);
out:
    SSL_free(ssl);
    ERR_clear_error();
}

static inline void *
tlsserver_main(void *arg)
{
    struct tlsserver *s = arg;
    struct pollfd p = {.fd = s->lfd, .events = POLLIN};
    int fd;

    while (!atomic_load(&s->stop)) {
        if (poll(&p, 1, 100) <= 0)
            continue;
        if ((fd = accept(s->lfd, NULL, NULL)) < 0)
            continue;
        tlsserver_serve(s, fd);
        close(fd);
    }
    ERR_clear_error();
    return NULL;
}

/* Takes ctx (freed by tlsserver_stop). 0, or -1 with a "# " line. */
static inline int
tlsserver_start(struct tlsserver *s, SSL_CTX *ctx, unsigned flags)
{
    struct sockaddr_in sa = {.sin_family = AF_INET};
    socklen_t salen = sizeof(sa);

    memset(s, 0, sizeof(*s));
    s->ctx = ctx;
    s->flags = flags;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (ctx == NULL || (s->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0 ||
        bind(s->lfd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(s->lfd, 8) != 0 ||
        getsockname(s->lfd, (struct sockaddr *)&sa, &salen) != 0 ||
        pthread_create(&s->t, NULL, tlsserver_main, s) != 0) {
        fprintf(stderr, "# tlsserver: cannot start: %s\n", strerror(errno));
        if (s->lfd > 0)
            close(s->lfd);
        SSL_CTX_free(ctx);
        s->ctx = NULL;
        return -1;
    }
    s->port = ntohs(sa.sin_port);
    return 0;
}

static inline void
tlsserver_stop(struct tlsserver *s)
{
    if (s->ctx == NULL)
        return;
    atomic_store(&s->stop, true);
    pthread_join(s->t, NULL);
    close(s->lfd);
    SSL_CTX_free(s->ctx);
    s->ctx = NULL;
}

#endif
