/*
 * tlsprobe - one STARTTLS probe of one MX host address; see tlsprobe.h.
 *
 * DESCRIPTION
 *	The dialogue is a straight line: connect, greeting, EHLO, STARTTLS,
 *	handshake, (judge the session), EHLO, QUIT. The first failure is
 *	recorded (status, stage, reason) and later ones are consequences of
 *	it; after a failure we still say QUIT when the server is talking
 *	SMTP, and simply close when it is not (hostile, silent, TLS broken).
 *	The socket is non-blocking from the start and every wait is a poll()
 *	bounded by the caller's deadline, so neither a silent server nor a
 *	trickling one can hold a milter thread past it.
 *	The only module besides fetch's libcurl that uses OpenSSL, and the
 *	only one that includes its headers.
 */
#include "tlsprobe.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "err.h"
#include "mxmatch.h"
#include "sigpipe.h"
#include "tlsprobe_cert.h"

#define IOBUF 4096       /* read buffer: more than one whole line (LINE_MAX + CRLF) */
#define EHLO_NAME_MAX 255 /* RFC 5321 domain or address literal */
#define NS_PER_MS 1000000L

struct conn {
    int fd;
    SSL *ssl; /* NULL before the handshake: plain socket I/O */
    const struct timespec *deadline;
    struct timespec start;
    enum tlsprobe_stage stage; /* where the dialogue is now */
    struct tlsprobe_result *r; /* r->stage: where it failed (frozen by the first failure) */
    char buf[IOBUF];
    size_t off, len; /* unread bytes are buf[off..len) */
};

/* One parsed reply: what the dialogue needs from it. */
struct reply {
    int code;
    size_t lines;
    bool starttls;                      /* an EHLO keyword line "STARTTLS" */
    char first[TLSPROBE_TEXT_MAX];      /* first line, quoted printable */
};

/* What a bounded wait or read came to. */
enum io { IO_OK, IO_TIMEOUT, IO_CLOSED, IO_TOO_LONG, IO_ERROR };

static long
ms_between(const struct timespec *a, const struct timespec *b)
{
    return (long)(b->tv_sec - a->tv_sec) * 1000L + (b->tv_nsec - a->tv_nsec) / NS_PER_MS;
}

static long
ms_left(const struct timespec *deadline)
{
    struct timespec now;

    clock_gettime(CLOCK_MONOTONIC, &now);
    return ms_between(&now, deadline);
}

static long
ms_spent(const struct conn *c)
{
    struct timespec now;

    clock_gettime(CLOCK_MONOTONIC, &now);
    return ms_between(&c->start, &now);
}

/* Records the first failure only: later ones follow from it. Returns -1. */
int
tlsprobe_fail(struct tlsprobe_result *r, enum tlsprobe_status s, const char *fmt, ...)
{
    va_list ap;

    if (r->status != TLSPROBE_OK)
        return -1;
    r->status = s;
    va_start(ap, fmt);
    (void)vsnprintf(r->reason, sizeof(r->reason), fmt, ap); /* a sentence: cut is fine */
    va_end(ap);
    return -1;
}

/* Waits for events on fd until the deadline (at most cap_ms when >= 0). */
static enum io
wait_fd(int fd, short events, const struct timespec *deadline, long cap_ms)
{
    struct pollfd p = {.fd = fd, .events = events};
    long left;
    int n;

    for (;;) {
        left = ms_left(deadline);
        if (cap_ms >= 0 && cap_ms < left)
            left = cap_ms;
        if (left <= 0)
            return IO_TIMEOUT;
        n = poll(&p, 1, left > 60000 ? 60000 : (int)left);
        if (n > 0)
            return IO_OK; /* readable, writable, or HUP/ERR: the next call says */
        if (n == 0 && cap_ms >= 0 && ms_left(deadline) > 0)
            return IO_TIMEOUT; /* our own cap, not the caller's deadline */
        if (n < 0 && errno != EINTR)
            return IO_ERROR;
    }
}

static const char *const stage_doing[] = {
    [TLSPROBE_STAGE_CONNECT] = "connecting",
    [TLSPROBE_STAGE_GREETING] = "waiting for the greeting (220)",
    [TLSPROBE_STAGE_EHLO] = "waiting for the reply to EHLO",
    [TLSPROBE_STAGE_STARTTLS] = "waiting for the reply to STARTTLS",
    [TLSPROBE_STAGE_HANDSHAKE] = "in the TLS handshake",
    [TLSPROBE_STAGE_EHLO_TLS] = "waiting for the reply to EHLO inside TLS",
    [TLSPROBE_STAGE_QUIT] = "waiting for the reply to QUIT",
    [TLSPROBE_STAGE_DONE] = "after QUIT",
};

/* Maps an I/O outcome to the failure of the current stage. */
static int
fail_io(struct conn *c, enum io e, const char *detail)
{
    const char *doing = stage_doing[c->stage];

    switch (e) {
    case IO_TIMEOUT:
        return tlsprobe_fail(c->r, TLSPROBE_TIMEOUT, "timed out after %ld ms %s", ms_spent(c), doing);
    case IO_CLOSED:
        return tlsprobe_fail(c->r, TLSPROBE_CLOSED, "the server closed the connection %s%s%s", doing,
                    detail[0] != '\0' ? ": " : "", detail);
    case IO_TOO_LONG:
        return tlsprobe_fail(c->r, TLSPROBE_REPLY_TOO_LONG, "hostile or broken reply %s: %s", doing,
                    detail);
    case IO_ERROR:
    case IO_OK:
        break;
    }
    return tlsprobe_fail(c->r, TLSPROBE_CLOSED, "connection failed %s: %s", doing, detail);
}

/* The latest OpenSSL reason on this thread's queue, else fallback. */
static const char *
ssl_reason(const char *fallback)
{
    unsigned long e = ERR_peek_last_error();
    const char *s = e != 0 ? ERR_reason_error_string(e) : NULL;

    return s != NULL ? s : fallback;
}

/* Reads more bytes into c->buf (compacting first). */
static enum io
fill(struct conn *c, char *why, size_t whysz)
{
    ssize_t n;
    int err;

    if (c->off > 0) {
        memmove(c->buf, c->buf + c->off, c->len - c->off);
        c->len -= c->off;
        c->off = 0;
    }
    why[0] = '\0';
    for (;;) {
        if (c->ssl == NULL) {
            n = recv(c->fd, c->buf + c->len, sizeof(c->buf) - c->len, 0);
            if (n > 0) {
                c->len += (size_t)n;
                return IO_OK;
            }
            if (n == 0)
                return IO_CLOSED;
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK) {
                mts_text_set(why, whysz, "%s", strerror(errno));
                return errno == ECONNRESET ? IO_CLOSED : IO_ERROR;
            }
            err = SSL_ERROR_WANT_READ;
        } else {
            ERR_clear_error();
            n = SSL_read(c->ssl, c->buf + c->len, (int)(sizeof(c->buf) - c->len));
            if (n > 0) {
                c->len += (size_t)n;
                return IO_OK;
            }
            err = SSL_get_error(c->ssl, (int)n);
            if (err == SSL_ERROR_ZERO_RETURN)
                return IO_CLOSED;
            if (err != SSL_ERROR_WANT_READ && err != SSL_ERROR_WANT_WRITE) {
                mts_text_set(why, whysz, "TLS: %s", ssl_reason("connection closed"));
                return IO_CLOSED;
            }
        }
        enum io w = wait_fd(c->fd, err == SSL_ERROR_WANT_WRITE ? POLLOUT : POLLIN, c->deadline,
                            c->stage == TLSPROBE_STAGE_QUIT ? TLSPROBE_QUIT_WAIT_MS : -1);
        if (w != IO_OK)
            return w;
    }
}

/*
 * One line, CRLF (or a bare LF) removed, into line (at least
 * TLSPROBE_LINE_MAX + 1 bytes). A line longer than TLSPROBE_LINE_MAX
 * octets with its CRLF is refused as soon as that many bytes came
 * without a LF: we never wait for the end of a line we will not take.
 */
static enum io
read_line(struct conn *c, char *line, size_t *len, char *why, size_t whysz)
{
    char *lf, *start;
    size_t n;
    enum io e;

    for (;;) {
        start = c->buf + c->off;
        lf = memchr(start, '\n', c->len - c->off);
        if (lf != NULL) {
            n = (size_t)(lf - start) + 1; /* with the LF */
            if (n > TLSPROBE_LINE_MAX)
                break;
            c->off += n;
            n--;
            if (n > 0 && start[n - 1] == '\r')
                n--;
            memcpy(line, start, n);
            line[n] = '\0';
            *len = n;
            return IO_OK;
        }
        if (c->len - c->off >= TLSPROBE_LINE_MAX)
            break;
        if ((e = fill(c, why, whysz)) != IO_OK)
            return e;
    }
    mts_text_set(why, whysz, "a line longer than %d octets", TLSPROBE_LINE_MAX);
    return IO_TOO_LONG;
}

/* Is this EHLO reply line (after "250-"/"250 ") the keyword STARTTLS? */
static bool
is_starttls_line(const char *text, size_t len)
{
    return len >= 8 && strncasecmp(text, "STARTTLS", 8) == 0 && (len == 8 || text[8] == ' ');
}

/*
 * Reads one whole reply (RFC 5321 §4.2): lines "NNN-text" ending with
 * "NNN text" or a bare "NNN", every line with the same code. Checked line
 * by line: three digits 2xx-5xx, a separator, no NUL, one code, at most
 * TLSPROBE_REPLY_LINES_MAX lines.
 */
static int
read_reply(struct conn *c, struct reply *rep)
{
    char line[TLSPROBE_LINE_MAX + 1], why[160], q[80];
    size_t len;
    enum io e;
    int code;

    memset(rep, 0, sizeof(*rep));
    for (;;) {
        e = read_line(c, line, &len, why, sizeof(why));
        if (e == IO_TIMEOUT && rep->lines > 0)
            /* A reply that drips in under every bound: say so, it is no silent server. */
            return tlsprobe_fail(c->r, TLSPROBE_TIMEOUT,
                                 "timed out after %ld ms %s: %zu lines of a reply came, never its "
                                 "last line (first: \"%s\")",
                                 ms_spent(c), stage_doing[c->stage], rep->lines, rep->first);
        if (e != IO_OK)
            return fail_io(c, e, why);
        mts_err_quote(q, sizeof(q), line, len);
        if (rep->lines == 0)
            mts_err_quote(rep->first, sizeof(rep->first), line, len);
        if (++rep->lines > TLSPROBE_REPLY_LINES_MAX) { /* a never-ending reply */
            mts_text_set(why, sizeof(why), "more than %d lines", TLSPROBE_REPLY_LINES_MAX);
            return fail_io(c, IO_TOO_LONG, why);
        }
        if (len < 3 || line[0] < '2' || line[0] > '5' || line[1] < '0' || line[1] > '9' ||
            line[2] < '0' || line[2] > '9' || (len > 3 && line[3] != '-' && line[3] != ' ') ||
            memchr(line, '\0', len) != NULL)
            return tlsprobe_fail(c->r, TLSPROBE_BAD_REPLY, "not an SMTP reply %s: \"%s\"",
                        stage_doing[c->stage], q);
        code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
        if (rep->lines > 1 && code != rep->code)
            return tlsprobe_fail(c->r, TLSPROBE_BAD_REPLY, "reply codes %d and %d mixed in one reply %s",
                        rep->code, code, stage_doing[c->stage]);
        rep->code = code;
        if (rep->lines > 1 && len > 4 && is_starttls_line(line + 4, len - 4))
            rep->starttls = true;
        if (len == 3 || line[3] == ' ')
            return 0;
    }
}

/* Moves the dialogue on; the result keeps the stage of its first failure. */
static void
set_stage(struct conn *c, enum tlsprobe_stage stage)
{
    c->stage = stage;
    if (c->r->status == TLSPROBE_OK)
        c->r->stage = stage;
}

/* Sends one command line, whole, within the deadline. */
static int
send_line(struct conn *c, const char *cmd)
{
    char line[EHLO_NAME_MAX + 16], why[160];
    size_t len, sent = 0;
    ssize_t n;
    int err;
    enum io w;

    len = (size_t)snprintf(line, sizeof(line), "%s\r\n", cmd); /* cmd is ours and short */
    while (sent < len) {
        if (c->ssl == NULL) {
            /* MSG_NOSIGNAL: a peer that has gone must not raise SIGPIPE. */
            n = send(c->fd, line + sent, len - sent, MSG_NOSIGNAL);
            if (n > 0) {
                sent += (size_t)n;
                continue;
            }
            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
                mts_text_set(why, sizeof(why), "%s", strerror(errno));
                return fail_io(c, IO_CLOSED, why);
            }
            err = SSL_ERROR_WANT_WRITE;
        } else {
            ERR_clear_error();
            n = SSL_write(c->ssl, line + sent, (int)(len - sent));
            if (n > 0) {
                sent += (size_t)n;
                continue;
            }
            err = SSL_get_error(c->ssl, (int)n);
            if (err != SSL_ERROR_WANT_READ && err != SSL_ERROR_WANT_WRITE) {
                mts_text_set(why, sizeof(why), "TLS: %s", ssl_reason("write failed"));
                return fail_io(c, IO_CLOSED, why);
            }
        }
        w = wait_fd(c->fd, err == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, c->deadline, -1);
        if (w != IO_OK)
            return fail_io(c, w, "");
    }
    return 0;
}

/* Sends cmd and reads its reply, at a new stage. */
static int
command(struct conn *c, enum tlsprobe_stage stage, const char *cmd, struct reply *rep)
{
    set_stage(c, stage);
    if (send_line(c, cmd) != 0)
        return -1;
    return read_reply(c, rep);
}

/* Says QUIT and waits a little for the 221; its failures are not recorded. */
static void
quit_politely(struct conn *c)
{
    bool ok = c->r->status == TLSPROBE_OK;
    struct reply rep;

    (void)command(c, TLSPROBE_STAGE_QUIT, "QUIT", &rep);
    if (ok) { /* what QUIT met (a timeout, a reset) is no fact about TLS */
        c->r->status = TLSPROBE_OK;
        c->r->reason[0] = '\0';
        c->r->stage = TLSPROBE_STAGE_DONE;
    }
}

static int
connect_to(struct conn *c, const char *address, int port)
{
    struct sockaddr_storage ss;
    struct sockaddr_in *v4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&ss;
    socklen_t sslen, elen = sizeof(int);
    int e = 0;
    enum io w;

    memset(&ss, 0, sizeof(ss));
    if (inet_pton(AF_INET, address, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons((uint16_t)port);
        sslen = sizeof(*v4);
    } else if (inet_pton(AF_INET6, address, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons((uint16_t)port);
        sslen = sizeof(*v6);
    } else {
        return tlsprobe_fail(c->r, TLSPROBE_ERROR, "address \"%.64s\" is not a numeric IPv4 or IPv6 address",
                    address);
    }
    c->fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0)
        return tlsprobe_fail(c->r, TLSPROBE_ERROR, "socket: %s", strerror(errno));
    if (connect(c->fd, (struct sockaddr *)&ss, sslen) != 0) {
        if (errno != EINPROGRESS)
            e = errno;
        else if ((w = wait_fd(c->fd, POLLOUT, c->deadline, -1)) != IO_OK)
            return fail_io(c, w, "");
        else if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &e, &elen) != 0)
            e = errno;
    }
    if (e == ECONNREFUSED)
        return tlsprobe_fail(c->r, TLSPROBE_REFUSED, "connection to %s port %d refused", address, port);
    if (e != 0)
        return tlsprobe_fail(c->r, TLSPROBE_UNREACHABLE, "cannot connect to %s port %d: %s", address, port,
                    strerror(e));
    return 0;
}

/* ------------------------------------------------------------------ TLS */

/*
 * The CPU one probe may cost, bounded: security level 0 (below) would
 * take any key a server sends, and a hostile MX could make every probe
 * compute with a huge DH group. Level 0 otherwise permits everything, so
 * this callback allows every other check.
 */
static int
security_cb(const SSL *s, const SSL_CTX *ctx, int op, int bits, int nid, void *other, void *ex)
{
    (void)s;
    (void)ctx;
    (void)bits;
    (void)nid;
    (void)ex;
    op &= ~SSL_SECOP_PEER; /* the server's chain carries this flag */
    if (op == SSL_SECOP_TMP_DH && other != NULL) {
        struct tlsprobe_result *r = s != NULL ? SSL_get_app_data(s) : NULL;
        int dh_bits = EVP_PKEY_get_bits(other);

        if (dh_bits <= TLSPROBE_DH_BITS_MAX)
            return 1;
        if (r != NULL) { /* a fact learnt: fail_handshake names it */
            mts_text_set(r->kex_group, sizeof(r->kex_group), "DH");
            r->kex_bits = dh_bits;
        }
        return 0;
    }
    if ((op == SSL_SECOP_EE_KEY || op == SSL_SECOP_CA_KEY) && other != NULL) {
        EVP_PKEY *k = X509_get0_pubkey(other);
        return k == NULL || EVP_PKEY_get_bits(k) <= TLSPROBE_KEY_BITS_MAX;
    }
    return 1;
}

static SSL_CTX *
make_ctx(const struct tlsprobe_options *o, struct tlsprobe_result *r)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

    if (ctx == NULL) {
        tlsprobe_fail(r, TLSPROBE_ERROR, "SSL_CTX_new: %s", ssl_reason("failed"));
        return NULL;
    }
    /*
     * Offer TLS 1.0 to 1.3 at security level 0: an old server must be
     * *seen* so that it can be named ("TLS too old: TLSv1"), and OpenSSL 3
     * at Debian's level 2 will not even finish a TLS 1.0 ECDHE handshake.
     * A server that can do 1.2 picks it anyway; the version, suite and key
     * are judged afterwards (tlsprobe_grade). Legacy server connect: some
     * old servers lack RFC 5746 and 3.0 no longer allows them by default;
     * that is safe here because no renegotiation is ever done: the
     * probe refuses a server's HelloRequest (SSL_OP_NO_RENEGOTIATION), so a
     * hostile server cannot make it redo handshakes until the deadline,
     * and unsafe legacy renegotiation is never allowed.
     */
    if (SSL_CTX_set_min_proto_version(ctx, TLS1_VERSION) != 1 ||
        SSL_CTX_set_cipher_list(ctx, "DEFAULT:@SECLEVEL=0") != 1) {
        tlsprobe_fail(r, TLSPROBE_ERROR, "OpenSSL setup: %s", ssl_reason("failed"));
        SSL_CTX_free(ctx);
        return NULL;
    }
    SSL_CTX_set_security_level(ctx, 0);
    SSL_CTX_set_options(ctx, SSL_OP_LEGACY_SERVER_CONNECT | SSL_OP_NO_COMPRESSION |
                                 SSL_OP_NO_RENEGOTIATION);
    SSL_CTX_clear_options(ctx, SSL_OP_ALLOW_UNSAFE_LEGACY_RENEGOTIATION);
    /* Bounded work on what the server sends: the certificate message, the
     * chain built from it, the keys and DH groups computed with. */
    SSL_CTX_set_max_cert_list(ctx, TLSPROBE_CERT_LIST_MAX);
    SSL_CTX_set_verify_depth(ctx, TLSPROBE_VERIFY_DEPTH);
    SSL_CTX_set_security_callback(ctx, security_cb);
    if (o->ca_file != NULL && o->ca_file[0] != '\0') {
        /* Only this file: the system store must not add anchors. */
        if (SSL_CTX_load_verify_locations(ctx, o->ca_file, NULL) != 1) {
            tlsprobe_fail(r, TLSPROBE_ERROR, "CA file %s: %s", o->ca_file, ssl_reason("cannot load"));
            SSL_CTX_free(ctx);
            return NULL;
        }
    } else if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
        tlsprobe_fail(r, TLSPROBE_ERROR, "system CA store: %s", ssl_reason("cannot load"));
        SSL_CTX_free(ctx);
        return NULL;
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, tlsprobe_verify_cb);
    if (tlsprobe_dane_ctx(ctx, o, r) != 0) {
        SSL_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

/* Maps a failed handshake to a status and a sentence with OpenSSL's reason. */
static int
fail_handshake(struct conn *c, int err)
{
    unsigned long e = ERR_peek_last_error();
    char why[160];

    if (err == SSL_ERROR_SYSCALL && e == 0)
        return tlsprobe_fail(c->r, TLSPROBE_HANDSHAKE,
                    "the server closed the connection in the TLS handshake%s%s",
                    errno != 0 ? ": " : "", errno != 0 ? strerror(errno) : "");
    /* We offer TLS 1.0-1.3: "unsupported protocol" means older than that. */
    if (ERR_GET_LIB(e) == ERR_LIB_SSL && ERR_GET_REASON(e) == SSL_R_UNSUPPORTED_PROTOCOL)
        return tlsprobe_fail(c->r, TLSPROBE_TLS_TOO_OLD,
                    "TLS too old: the server offered a protocol older than TLS 1.0 (%s); "
                    "TLS 1.2 or newer is required (RFC 8461 §7.2)",
                    ssl_reason("unsupported protocol"));
    /* Our own bounds, in words (OpenSSL says "too small" for either). */
    if (c->r->kex_bits > TLSPROBE_DH_BITS_MAX)
        return tlsprobe_fail(c->r, TLSPROBE_HANDSHAKE, "TLS handshake failed: the server's DHE group "
                    "of %d bits is over the %d-bit bound", c->r->kex_bits, TLSPROBE_DH_BITS_MAX);
    if (ERR_GET_LIB(e) == ERR_LIB_SSL && ERR_GET_REASON(e) == SSL_R_EXCESSIVE_MESSAGE_SIZE)
        return tlsprobe_fail(c->r, TLSPROBE_HANDSHAKE, "TLS handshake failed: the server sent a "
                    "handshake message over its size bound (%s; a certificate message may have at "
                    "most %d octets)", ssl_reason("excessive message size"), TLSPROBE_CERT_LIST_MAX);
    if (c->r->verify_code == X509_V_ERR_APPLICATION_VERIFICATION)
        return tlsprobe_fail(c->r, TLSPROBE_HANDSHAKE, "TLS handshake failed: %s", c->r->verify_text);
    mts_text_set(why, sizeof(why), "%s", ssl_reason("unknown failure"));
    return tlsprobe_fail(c->r, TLSPROBE_HANDSHAKE, "TLS handshake failed: %s", why);
}

static int
handshake(struct conn *c, const struct tlsprobe_options *o, SSL_CTX *ctx)
{
    enum io w;
    int rc, err;

    set_stage(c, TLSPROBE_STAGE_HANDSHAKE);
    if ((c->ssl = SSL_new(ctx)) == NULL || SSL_set_fd(c->ssl, c->fd) != 1 ||
        SSL_set_app_data(c->ssl, c->r) != 1)
        return tlsprobe_fail(c->r, TLSPROBE_ERROR, "OpenSSL setup: %s", ssl_reason("failed"));
    /* SNI: the MX host (RFC 8461 §7.1), or DANE's base domain. */
    if (tlsprobe_dane_ssl(c->ssl, o, c->r) != 0)
        return -1;
    for (;;) {
        ERR_clear_error();
        errno = 0;
        if ((rc = SSL_connect(c->ssl)) == 1)
            return 0;
        err = SSL_get_error(c->ssl, rc);
        if (err != SSL_ERROR_WANT_READ && err != SSL_ERROR_WANT_WRITE)
            return fail_handshake(c, err);
        w = wait_fd(c->fd, err == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, c->deadline, -1);
        if (w != IO_OK)
            return fail_io(c, w, "");
    }
}

/* -------------------------------------------------------------- the probe */

static bool
valid_ehlo_name(const char *s)
{
    size_t len = strlen(s);

    if (len == 0 || len > EHLO_NAME_MAX)
        return false;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] <= ' ' || (unsigned char)s[i] >= 0x7f)
            return false;
    return true;
}

/* The SMTP dialogue and the handshake; the first failure is in c->r. */
static void
dialogue(struct conn *c, const struct tlsprobe_options *o, SSL_CTX *ctx)
{
    char cmd[EHLO_NAME_MAX + 8], q[80];
    struct reply rep;

    set_stage(c, TLSPROBE_STAGE_GREETING);
    if (read_reply(c, &rep) != 0)
        return;
    mts_text_set(c->r->greeting, sizeof(c->r->greeting), "%s", rep.first);
    if (rep.code != 220) {
        c->r->reply_code = rep.code;
        tlsprobe_fail(c->r, TLSPROBE_GREETING_REJECT, "the greeting is %d, not 220: \"%s\"", rep.code,
             rep.first);
        quit_politely(c); /* RFC 5321 §3.1: after a 554 greeting the client sends QUIT */
        return;
    }
    (void)snprintf(cmd, sizeof(cmd), "EHLO %s", o->ehlo_name); /* fits: checked */
    if (command(c, TLSPROBE_STAGE_EHLO, cmd, &rep) != 0)
        return;
    if (rep.code != 250) {
        c->r->reply_code = rep.code;
        tlsprobe_fail(c->r, TLSPROBE_EHLO_REJECT, "EHLO answered %d: \"%s\"", rep.code, rep.first);
        quit_politely(c);
        return;
    }
    if (!(c->r->starttls_offered = rep.starttls)) {
        tlsprobe_fail(c->r, TLSPROBE_NO_STARTTLS, "STARTTLS is not offered in the reply to EHLO (%zu lines)",
             rep.lines);
        quit_politely(c);
        return;
    }
    if (command(c, TLSPROBE_STAGE_STARTTLS, "STARTTLS", &rep) != 0)
        return;
    if (rep.code != 220) {
        c->r->reply_code = rep.code;
        tlsprobe_fail(c->r, TLSPROBE_STARTTLS_REFUSED, "STARTTLS refused with %d: \"%s\"", rep.code,
             rep.first);
        quit_politely(c);
        return;
    }
    /*
     * Bytes already waiting after the 220 were sent before TLS but would be
     * read as if inside it: the STARTTLS command-injection flaw
     * (CVE-2011-0411 and kin). Refuse rather than carry them over.
     */
    if (c->len > c->off) {
        mts_err_quote(q, sizeof(q), c->buf + c->off, c->len - c->off);
        tlsprobe_fail(c->r, TLSPROBE_BAD_REPLY, "%zu bytes after the 220 to STARTTLS, before TLS: \"%s\"",
             c->len - c->off, q);
        return;
    }
    if (handshake(c, o, ctx) != 0)
        return;
    tlsprobe_read_session(c->ssl, c->r);
    tlsprobe_dane_read(c->ssl, c->r);
    (void)tlsprobe_judge_session(c->r);
    /* RFC 3207 §4.2: the session starts afresh; see that it works inside TLS. */
    if (command(c, TLSPROBE_STAGE_EHLO_TLS, cmd, &rep) != 0)
        return;
    if (rep.code != 250) {
        c->r->reply_code = rep.code;
        tlsprobe_fail(c->r, TLSPROBE_EHLO_REJECT, "EHLO inside TLS answered %d: \"%s\"", rep.code,
             rep.first);
    }
    quit_politely(c);
}

/*
 * SSL_write writes with write(2), which raises SIGPIPE on a connection the
 * server reset: the run is under a sigpipe guard (sigpipe.h).
 */
int
tlsprobe_run(const struct tlsprobe_options *o, const char *mx_host, const char *address,
             int port, const struct timespec *deadline, struct tlsprobe_result *out)
{
    struct tlsprobe_options opts = {0};
    struct sigpipe_guard guard;
    struct conn *c;
    SSL_CTX *ctx;
    struct timespec end;

    if (out == NULL)
        return -1;
    memset(out, 0, sizeof(*out));
    out->status = TLSPROBE_OK;
    out->port = port > 0 ? port : TLSPROBE_PORT;
    if (o != NULL)
        opts = *o;
    if (opts.ehlo_name == NULL)
        opts.ehlo_name = "localhost";
    if (mx_host == NULL || address == NULL || deadline == NULL || port < 0 || port > 65535)
        return tlsprobe_fail(out, TLSPROBE_ERROR, "tlsprobe_run: missing or bad argument");
    mts_text_set(out->address, sizeof(out->address), "%s", address);
    if (mxmatch_host_normalize(mx_host, strlen(mx_host), out->mx_host, sizeof(out->mx_host),
                               NULL) != 0)
        return tlsprobe_fail(out, TLSPROBE_ERROR, "invalid MX host name \"%.253s\"", mx_host);
    if (!valid_ehlo_name(opts.ehlo_name))
        return tlsprobe_fail(out, TLSPROBE_ERROR, "invalid EHLO name \"%.64s\"", opts.ehlo_name);
    /* The 4 KiB buffer and the state live on the heap: milter threads have small stacks. */
    if ((c = calloc(1, sizeof(*c))) == NULL)
        return tlsprobe_fail(out, TLSPROBE_ERROR, "out of memory");
    c->fd = -1;
    c->r = out;
    c->deadline = deadline;
    clock_gettime(CLOCK_MONOTONIC, &c->start);
    sigpipe_block(&guard);
    if ((ctx = make_ctx(&opts, out)) != NULL) {
        set_stage(c, TLSPROBE_STAGE_CONNECT);
        if (connect_to(c, address, out->port) == 0)
            dialogue(c, &opts, ctx);
    }
    if (c->ssl != NULL) {
        /* One close_notify, no wait for the server's: we are done. */
        if (out->tls_done)
            (void)SSL_shutdown(c->ssl);
        SSL_free(c->ssl);
    }
    if (c->fd >= 0)
        close(c->fd);
    SSL_CTX_free(ctx);
    ERR_clear_error(); /* this thread's queue: leave nothing for the next caller */
    sigpipe_restore(&guard);
    clock_gettime(CLOCK_MONOTONIC, &end);
    out->elapsed_ms = ms_between(&c->start, &end);
    free(c);
    return out->status == TLSPROBE_OK ? 0 : -1;
}
