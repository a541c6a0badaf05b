/*
 * miltload - a milter-protocol load driver: talks to a mail filter the way
 * Postfix 3.7 does (milter protocol version 6), directly over the filter's
 * socket, without libmilter, and measures how fast RCPTs are answered.
 *
 * SYNOPSIS
 *	miltload -s SOCKET [-c CONNECTIONS] [-m MESSAGES] [-r RCPTS]
 *		 [-d DOMAIN,...] [-D FILE] [more options: usage()]
 *
 * DESCRIPTION
 *	Each connection is a thread with one milter connection: SMFIC_OPTNEG
 *	(every action and protocol step offered, as Postfix does), CONNECT,
 *	HELO, then MESSAGES transactions of MAIL, RCPTS x RCPT, DATA, headers,
 *	EOH, body, EOM, each preceded by its SMFIC_MACRO, then SMFIC_ABORT
 *	(Postfix resets the filter after every transaction) and SMFIC_QUIT at
 *	the end. Steps the filter declined (SMFIP_NO*) are not sent, replies it
 *	waived (SMFIP_NR_*) are not awaited, macro lists it set with
 *	SMFIR_SETSYMLIST replace the defaults (Postfix's milter_*_macros).
 *	Recipients cycle over the domains. Every EOM reply is read: header,
 *	recipient, body and quarantine requests (each checked against the
 *	actions the filter asked for) until the final decision.
 *
 *	Prints, after all connections are done: RCPT/s, p50 / p99 / max of
 *	the RCPT latency (from sending SMFIC_RCPT to reading its reply),
 *	messages/s, and the RCPT and EOM replies by kind, as key=value words;
 *	then the mean time from sending MAIL (after the ABORT before it), a
 *	header, and EOM to reading the filter's (last) reply: where a
 *	message's time goes besides its RCPTs.
 *	Connection set-up (OPTNEG, CONNECT, HELO) is not timed.
 *
 * DIAGNOSTICS
 *	A protocol violation, a read past the timeout, an I/O error or a reply
 *	longer than the protocol's 64 KiB ends that connection with one line
 *	"miltload: connection N: ..." on stderr; the totals of what was done
 *	still print, and the exit status is 1. Usage errors: exit status 2.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/* Constants only (SMFIC_*, SMFIR_*, SMFIP_*, SMFIF_*, SMFIM_*): nothing of
 * libmilter is linked. */
#include <libmilter/mfapi.h>

#define MILT_MAX_DATA 65535U /* MILTER_MAX_DATA_SIZE: longest packet data */
#define PKT_HDR 5U           /* 4 length bytes + the command byte */
#define IN_CAP (PKT_HDR + MILT_MAX_DATA)
#define OUT_CAP (2U * (PKT_HDR + MILT_MAX_DATA)) /* a macro packet + a command */
#define NSTAGES (SMFIM_LAST + 1)
#define ERR_MAX 256
#define MAX_CONNECTIONS 1024
#define MAX_DOMAINS 100000
#define DOMAIN_MAX 253

/* What Postfix 3.7 offers in SMFIC_OPTNEG. */
#define OFFER_VERSION 6U
#define OFFER_ACTIONS ((uint32_t)SMFI_CURR_ACTS)
#define OFFER_PROTO ((uint32_t)SMFI_CURR_PROT)

enum kind { K_CONTINUE, K_TEMPFAIL, K_REJECT, K_ACCEPT, K_DISCARD, K_SKIP, K_NOREPLY, K_N };
static const char *const kind_name[K_N] = {"continue", "tempfail", "reject", "accept",
                                           "discard",  "skip",     "noreply"};

/* Postfix's default milter_*_macros, by SMFIM_* stage. */
static const char *const default_macros[NSTAGES] = {
    [SMFIM_CONNECT] = "j {daemon_name} {daemon_addr} v _",
    [SMFIM_HELO] = "{tls_version} {cipher} {cipher_bits} {cert_subject} {cert_issuer}",
    [SMFIM_ENVFROM] = "i {auth_type} {auth_authen} {auth_author} {mail_addr} {mail_host} "
                      "{mail_mailer}",
    [SMFIM_ENVRCPT] = "i {rcpt_addr} {rcpt_host} {rcpt_mailer}",
    [SMFIM_DATA] = "i",
    [SMFIM_EOM] = "i",
    [SMFIM_EOH] = "i",
};

struct options {
    const char *socket;
    int connections, messages, rcpts, timeout_ms;
    char **domains;
    int ndomains;
    const char *auth;        /* {auth_authen}; NULL: not sent */
    const char *mailer;      /* {rcpt_mailer}; NULL: not sent */
    const char *rcpt_host;   /* {rcpt_host}; NULL: the recipient domain */
    bool send_rcpt_host;
    bool send_queue_id;      /* i */
    const char *daemon_name; /* {daemon_name}; NULL: not sent */
    const char *sender;
    FILE *headers;           /* --headers FILE: header requests written here */
};
static struct options opt = {
    .connections = 1,
    .messages = 1000,
    .rcpts = 5,
    .timeout_ms = 30000, /* Postfix milter_command_timeout */
    .auth = "bench",
    .mailer = "smtp",
    .send_rcpt_host = true,
    .send_queue_id = true,
    .daemon_name = "bench",
    .sender = "sender@bench.invalid",
};

static pthread_mutex_t headers_mu = PTHREAD_MUTEX_INITIALIZER;

/* --headers: "name: value" of an ADDHEADER / INSHEADER request, one a line
 * (strings_ok has checked both are NUL-terminated within the packet). */
static void
dump_header(const char *name, const char *value)
{
    if (opt.headers == NULL)
        return;
    pthread_mutex_lock(&headers_mu);
    fprintf(opt.headers, "%s: %s\n", name, value);
    pthread_mutex_unlock(&headers_mu);
}

/* One milter connection. */
/* the steps timed apart from RCPT */
enum { STEP_MAIL, STEP_HEADER, STEP_EOM, STEP_N };

struct conn {
    int id, fd;
    uint32_t version, actions, proto; /* what the filter chose */
    uint32_t np;                      /* steps its protocol version lacks */
    char *symlist[NSTAGES];           /* SMFIR_SETSYMLIST; NULL: default */
    bool skip_body;                   /* SMFIR_SKIP seen for this message */
    /* the message in progress, for the macros */
    char qid[32], rcpt[DOMAIN_MAX + 16];
    const char *domain;
    /* buffers */
    unsigned char in[IN_CAP];
    size_t in_start, in_end;
    unsigned char out[OUT_CAP];
    size_t out_len;
    char err[ERR_MAX];
    /* results */
    uint64_t *lat; /* RCPT latencies, ns */
    size_t nlat;
    /* the slowest RCPT: when it was sent and to whom (a test that finds it
     * too slow can line it up with what else happened then) */
    uint64_t slow_ns, slow_sent_ns;
    const char *slow_domain;
    /* time from sending each kind of step to its reply, summed: where a
     * message's time goes (MAIL includes the ABORT before it) */
    uint64_t step_ns[STEP_N], step_n[STEP_N];
    unsigned long rcpt_kind[K_N], final_kind[K_N], no_rcpt, mods, messages_done;
    bool ok;
};

static pthread_barrier_t start_line;

static uint64_t
now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000U + (uint64_t)ts.tv_nsec;
}

static void
step_took(struct conn *c, int which, enum kind k, uint64_t sent_at)
{
    if (k == K_NOREPLY || sent_at == 0)
        return;
    c->step_ns[which] += now_ns() - sent_at;
    c->step_n[which]++;
}

__attribute__((format(printf, 2, 3))) static int
fail(struct conn *c, const char *fmt, ...)
{
    va_list ap;

    if (c->err[0] == '\0') {
        va_start(ap, fmt);
        (void)vsnprintf(c->err, sizeof(c->err), fmt, ap);
        va_end(ap);
    }
    return -1;
}

static const char *
cmd_name(int cmd)
{
    static const struct {
        int cmd;
        const char *name;
    } names[] = {
        {SMFIC_OPTNEG, "OPTNEG"},       {SMFIC_CONNECT, "CONNECT"},
        {SMFIC_HELO, "HELO"},           {SMFIC_MAIL, "MAIL"},
        {SMFIC_RCPT, "RCPT"},           {SMFIC_DATA, "DATA"},
        {SMFIC_HEADER, "HEADER"},       {SMFIC_EOH, "EOH"},
        {SMFIC_BODY, "BODY"},           {SMFIC_BODYEOB, "EOM"},
        {SMFIR_ADDRCPT, "ADDRCPT"},     {SMFIR_DELRCPT, "DELRCPT"},
        {SMFIR_ADDRCPT_PAR, "ADDRCPT_PAR"}, {SMFIR_SHUTDOWN, "SHUTDOWN"},
        {SMFIR_ACCEPT, "ACCEPT"},       {SMFIR_REPLBODY, "REPLBODY"},
        {SMFIR_CONTINUE, "CONTINUE"},   {SMFIR_DISCARD, "DISCARD"},
        {SMFIR_CHGFROM, "CHGFROM"},     {SMFIR_CONN_FAIL, "CONN_FAIL"},
        {SMFIR_ADDHEADER, "ADDHEADER"}, {SMFIR_INSHEADER, "INSHEADER"},
        {SMFIR_SETSYMLIST, "SETSYMLIST"}, {SMFIR_CHGHEADER, "CHGHEADER"},
        {SMFIR_PROGRESS, "PROGRESS"},   {SMFIR_QUARANTINE, "QUARANTINE"},
        {SMFIR_REJECT, "REJECT"},       {SMFIR_SKIP, "SKIP"},
        {SMFIR_TEMPFAIL, "TEMPFAIL"},   {SMFIR_REPLYCODE, "REPLYCODE"},
    };

    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (names[i].cmd == cmd)
            return names[i].name;
    return "unknown";
}

/* ---------------------------------------------------------------- I/O */

/* Waits until fd is ready for events, at most until deadline (ns). */
static int
wait_fd(struct conn *c, short events, uint64_t deadline, const char *what)
{
    struct pollfd p = {.fd = c->fd, .events = events};

    for (;;) {
        uint64_t now = now_ns();
        int rc, ms = now >= deadline ? 0 : (int)((deadline - now + 999999) / 1000000);

        rc = poll(&p, 1, ms);
        if (rc > 0)
            return 0;
        if (rc == 0)
            return fail(c, "no %s within %d ms", what, opt.timeout_ms);
        if (errno != EINTR)
            return fail(c, "poll: %s", strerror(errno));
    }
}

/* Writes out[] whole, each wait bounded by the timeout. */
static int
flush_out(struct conn *c)
{
    size_t off = 0;
    uint64_t deadline = now_ns() + (uint64_t)opt.timeout_ms * 1000000U;

    while (off < c->out_len) {
        ssize_t n = send(c->fd, c->out + off, c->out_len - off, MSG_NOSIGNAL | MSG_DONTWAIT);

        if (n > 0) {
            off += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if (wait_fd(c, POLLOUT, deadline, "room to write to the filter") != 0)
                return -1;
            continue;
        }
        return fail(c, "write to the filter: %s", n < 0 ? strerror(errno) : "wrote nothing");
    }
    c->out_len = 0;
    return 0;
}

/* Makes in[] hold at least need unread bytes, reading until deadline. */
static int
fill(struct conn *c, size_t need, uint64_t deadline, int event)
{
    while (c->in_end - c->in_start < need) {
        ssize_t n;

        if (c->in_start + need > sizeof(c->in)) {
            memmove(c->in, c->in + c->in_start, c->in_end - c->in_start);
            c->in_end -= c->in_start;
            c->in_start = 0;
        }
        n = recv(c->fd, c->in + c->in_end, sizeof(c->in) - c->in_end, MSG_DONTWAIT);
        if (n > 0) {
            c->in_end += (size_t)n;
            continue;
        }
        if (n == 0)
            return fail(c, "the filter closed the connection while we waited for its %s reply",
                        cmd_name(event));
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            return fail(c, "read from the filter: %s", strerror(errno));
        char what[32];

        (void)snprintf(what, sizeof(what), "%s reply", cmd_name(event));
        if (wait_fd(c, POLLIN, deadline, what) != 0)
            return -1;
    }
    return 0;
}

struct reply {
    int cmd;
    const unsigned char *data; /* valid until the next read */
    size_t len;
};

/* Reads one packet; its length is checked before anything is read into. */
static int
read_reply(struct conn *c, int event, struct reply *r)
{
    uint64_t deadline = now_ns() + (uint64_t)opt.timeout_ms * 1000000U;
    uint32_t len;

    if (fill(c, 4, deadline, event) != 0)
        return -1;
    memcpy(&len, c->in + c->in_start, 4);
    len = ntohl(len);
    if (len < 1)
        return fail(c, "%s reply: packet length 0", cmd_name(event));
    if (len - 1 > MILT_MAX_DATA)
        return fail(c, "%s reply: packet of %lu bytes, more than the protocol's %u",
                    cmd_name(event), (unsigned long)len, MILT_MAX_DATA + 1);
    /* compact so that the whole packet fits */
    if (c->in_start + 4 + len > sizeof(c->in)) {
        memmove(c->in, c->in + c->in_start, c->in_end - c->in_start);
        c->in_end -= c->in_start;
        c->in_start = 0;
    }
    if (fill(c, 4 + len, deadline, event) != 0)
        return -1;
    r->cmd = c->in[c->in_start + 4];
    r->data = c->in + c->in_start + PKT_HDR;
    r->len = len - 1;
    c->in_start += 4 + len;
    if (c->in_start == c->in_end)
        c->in_start = c->in_end = 0;
    return 0;
}

/* ---------------------------------------------------------------- packets */

static int
put(struct conn *c, const void *p, size_t n)
{
    if (n > sizeof(c->out) - c->out_len)
        return fail(c, "internal: output buffer full");
    memcpy(c->out + c->out_len, p, n);
    c->out_len += n;
    return 0;
}

static int
put_str(struct conn *c, const char *s)
{
    return put(c, s, strlen(s) + 1);
}

static int
put_u32(struct conn *c, uint32_t v)
{
    v = htonl(v);
    return put(c, &v, 4);
}

/* Starts a packet; pkt_end() fills in its length. */
static int
pkt_begin(struct conn *c, int cmd, size_t *mark)
{
    unsigned char hdr[PKT_HDR] = {0, 0, 0, 0, (unsigned char)cmd};

    *mark = c->out_len;
    return put(c, hdr, sizeof(hdr));
}

static int
pkt_end(struct conn *c, size_t mark)
{
    size_t len = c->out_len - mark - 4; /* the command byte and the data */
    uint32_t v;

    if (len - 1 > MILT_MAX_DATA)
        return fail(c, "internal: a packet of %zu bytes", len);
    v = htonl((uint32_t)len);
    memcpy(c->out + mark, &v, 4);
    return 0;
}

/* ---------------------------------------------------------------- macros */

/* The value we have for a macro (name with or without braces), or NULL. */
static const char *
macro_value(const struct conn *c, const char *name, size_t n)
{
    static const struct {
        const char *name;
        int which;
    } known[] = {{"j", 0},          {"daemon_name", 1}, {"daemon_addr", 2}, {"v", 3},
                 {"i", 4},          {"auth_type", 5},   {"auth_authen", 6}, {"mail_addr", 7},
                 {"rcpt_addr", 8},  {"rcpt_host", 9},   {"rcpt_mailer", 10}};

    if (n >= 2 && name[0] == '{' && name[n - 1] == '}') {
        name++;
        n -= 2;
    }
    for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
        if (strlen(known[i].name) != n || memcmp(known[i].name, name, n) != 0)
            continue;
        switch (known[i].which) {
        case 0: return "mta.bench.invalid";
        case 1: return opt.daemon_name;
        case 2: return "127.0.0.1";
        case 3: return "Postfix 3.7.11";
        case 4: return opt.send_queue_id && c->qid[0] ? c->qid : NULL;
        case 5: return opt.auth ? "PLAIN" : NULL;
        case 6: return opt.auth;
        case 7: return c->qid[0] ? opt.sender : NULL;
        case 8: return c->rcpt[0] ? c->rcpt : NULL;
        case 9:
            if (!c->rcpt[0] || !opt.send_rcpt_host)
                return NULL;
            return opt.rcpt_host ? opt.rcpt_host : c->domain;
        case 10: return c->rcpt[0] ? opt.mailer : NULL;
        }
    }
    return NULL;
}

/* SMFIC_MACRO for event, from the stage's list (the filter's, or
 * Postfix's default), as Postfix does: no list, no packet; a list, a
 * packet with the macros that have a value. */
static int
put_macros(struct conn *c, int stage, int event)
{
    const char *list = c->symlist[stage] ? c->symlist[stage] : default_macros[stage];
    unsigned char ev = (unsigned char)event;
    size_t mark;

    if (list == NULL || list[strspn(list, " ")] == '\0')
        return 0;
    if (pkt_begin(c, SMFIC_MACRO, &mark) != 0 || put(c, &ev, 1) != 0)
        return -1;
    for (const char *p = list; *p;) {
        size_t n;
        const char *v;

        p += strspn(p, " \t,");
        n = strcspn(p, " \t,");
        if (n == 0)
            break;
        if ((v = macro_value(c, p, n)) != NULL) {
            if (put(c, p, n) != 0 || put(c, "", 1) != 0 || put_str(c, v) != 0)
                return -1;
        }
        p += n;
    }
    return pkt_end(c, mark);
}

/* ---------------------------------------------------------------- replies */

/* A SMFIR_REPLYCODE text: "4xx"/"5xx", then ' ' or '-', an enhanced code
 * of the same class if any, NUL-terminated. Returns its kind, or -1. */
static int
replycode_kind(struct conn *c, const struct reply *r, int event)
{
    const unsigned char *d = r->data;

    if (r->len < 5 || memchr(d, '\0', r->len) != d + r->len - 1 || (d[0] != '4' && d[0] != '5') ||
        d[1] < '0' || d[1] > '9' || d[2] < '0' || d[2] > '9' || (d[3] != ' ' && d[3] != '-') ||
        (d[4] >= '0' && d[4] <= '9' && d[4] != d[0]))
        return fail(c, "%s reply: malformed SMFIR_REPLYCODE \"%.*s\"", cmd_name(event),
                    (int)(r->len > 80 ? 80 : r->len), (const char *)d);
    return d[0] == '4' ? K_TEMPFAIL : K_REJECT;
}

/* The reply to a step other than EOM: progress is waited through; a
 * modification request is an error here. Sets *kind. */
static int
step_reply(struct conn *c, int event, enum kind *kind)
{
    struct reply r;
    int k;

    for (;;) {
        if (read_reply(c, event, &r) != 0)
            return -1;
        if (r.cmd == SMFIR_REPLYCODE) {
            if ((k = replycode_kind(c, &r, event)) < 0)
                return -1;
            *kind = (enum kind)k;
            return 0;
        }
        switch (r.cmd) {
        case SMFIR_PROGRESS:
        case SMFIR_CONTINUE:
        case SMFIR_TEMPFAIL:
        case SMFIR_REJECT:
        case SMFIR_ACCEPT:
        case SMFIR_DISCARD:
        case SMFIR_SKIP:
        case SMFIR_SHUTDOWN:
        case SMFIR_CONN_FAIL:
            if (r.len == 0)
                break;
            return fail(c, "%s reply: %s with %zu bytes of data (none expected)",
                        cmd_name(event), cmd_name(r.cmd), r.len);
        default:
            return fail(c, "%s reply: unexpected reply '%c' (%s)%s", cmd_name(event),
                        r.cmd >= 32 && r.cmd < 127 ? r.cmd : '?', cmd_name(r.cmd),
                        r.cmd != 0 && strchr("hime+-2bq", r.cmd) ? ", allowed only at EOM" : "");
        }
        switch (r.cmd) {
        case SMFIR_PROGRESS: continue;
        case SMFIR_CONTINUE: *kind = K_CONTINUE; return 0;
        case SMFIR_TEMPFAIL: *kind = K_TEMPFAIL; return 0;
        case SMFIR_REJECT: *kind = K_REJECT; return 0;
        case SMFIR_ACCEPT: *kind = K_ACCEPT; return 0;
        case SMFIR_DISCARD:
            if (event == SMFIC_CONNECT || event == SMFIC_HELO)
                return fail(c, "%s reply: DISCARD is not allowed at connect or HELO",
                            cmd_name(event));
            *kind = K_DISCARD;
            return 0;
        case SMFIR_SKIP:
            if (event != SMFIC_BODY || !(c->proto & SMFIP_SKIP))
                return fail(c, "%s reply: SKIP is allowed only for a body chunk, once "
                               "negotiated (SMFIP_SKIP)", cmd_name(event));
            *kind = K_SKIP;
            return 0;
        case SMFIR_SHUTDOWN:
        case SMFIR_CONN_FAIL:
            return fail(c, "%s reply: the filter ends the connection (%s)", cmd_name(event),
                        cmd_name(r.cmd));
        }
    }
}

/* data is n NUL-terminated strings, exactly, after skip bytes. */
static bool
strings_ok(const struct reply *r, size_t skip, int n)
{
    size_t off = skip;

    for (int i = 0; i < n; i++) {
        const unsigned char *z;

        if (off >= r->len || (z = memchr(r->data + off, '\0', r->len - off)) == NULL)
            return false;
        off = (size_t)(z - r->data) + 1;
    }
    return off == r->len;
}

/* The replies to EOM: modification requests, then the final decision. */
static int
eom_replies(struct conn *c, enum kind *kind)
{
    struct reply r;
    int k;

    for (;;) {
        uint32_t need;
        bool ok;

        if (read_reply(c, SMFIC_BODYEOB, &r) != 0)
            return -1;
        switch (r.cmd) {
        case SMFIR_ADDHEADER: need = SMFIF_ADDHDRS; ok = strings_ok(&r, 0, 2) && r.data[0]; break;
        case SMFIR_INSHEADER: need = SMFIF_ADDHDRS; ok = strings_ok(&r, 4, 2) && r.data[4]; break;
        case SMFIR_CHGHEADER: need = SMFIF_CHGHDRS; ok = strings_ok(&r, 4, 2) && r.data[4]; break;
        case SMFIR_ADDRCPT: need = SMFIF_ADDRCPT; ok = strings_ok(&r, 0, 1); break;
        case SMFIR_DELRCPT: need = SMFIF_DELRCPT; ok = strings_ok(&r, 0, 1); break;
        case SMFIR_ADDRCPT_PAR:
            need = SMFIF_ADDRCPT_PAR;
            ok = strings_ok(&r, 0, 1) || strings_ok(&r, 0, 2);
            break;
        case SMFIR_CHGFROM:
            need = SMFIF_CHGFROM;
            ok = strings_ok(&r, 0, 1) || strings_ok(&r, 0, 2);
            break;
        case SMFIR_REPLBODY: need = SMFIF_CHGBODY; ok = true; break;
        case SMFIR_QUARANTINE: need = SMFIF_QUARANTINE; ok = strings_ok(&r, 0, 1); break;
        case SMFIR_PROGRESS:
            if (r.len != 0)
                return fail(c, "EOM reply: PROGRESS with data");
            continue;
        case SMFIR_REPLYCODE:
            if ((k = replycode_kind(c, &r, SMFIC_BODYEOB)) < 0)
                return -1;
            *kind = (enum kind)k;
            return 0;
        case SMFIR_CONTINUE:
        case SMFIR_ACCEPT:
        case SMFIR_TEMPFAIL:
        case SMFIR_REJECT:
        case SMFIR_DISCARD:
            if (r.len != 0)
                return fail(c, "EOM reply: %s with %zu bytes of data", cmd_name(r.cmd), r.len);
            *kind = r.cmd == SMFIR_CONTINUE   ? K_CONTINUE
                    : r.cmd == SMFIR_ACCEPT   ? K_ACCEPT
                    : r.cmd == SMFIR_TEMPFAIL ? K_TEMPFAIL
                    : r.cmd == SMFIR_REJECT   ? K_REJECT
                                              : K_DISCARD;
            return 0;
        case SMFIR_SHUTDOWN:
        case SMFIR_CONN_FAIL:
            return fail(c, "EOM reply: the filter ends the connection (%s)", cmd_name(r.cmd));
        default:
            return fail(c, "EOM reply: unexpected reply '%c' (%s)",
                        r.cmd >= 32 && r.cmd < 127 ? r.cmd : '?', cmd_name(r.cmd));
        }
        if (!(c->actions & need))
            return fail(c, "EOM reply: %s, an action the filter did not negotiate",
                        cmd_name(r.cmd));
        if (!ok)
            return fail(c, "EOM reply: malformed %s (%zu bytes)", cmd_name(r.cmd), r.len);
        if (r.cmd == SMFIR_ADDHEADER || r.cmd == SMFIR_INSHEADER) {
            const char *name = (const char *)r.data + (r.cmd == SMFIR_INSHEADER ? 4 : 0);
            dump_header(name, name + strlen(name) + 1);
        }
        c->mods++;
    }
}

/* ---------------------------------------------------------------- steps */

/* Sends the stage's macros and (unless declined by noflag) the command;
 * waits for the reply unless waived by nrflag. *kind is K_NOREPLY when no
 * reply came. The command's data are given as count strings. */
static int
step(struct conn *c, int stage, int event, uint32_t noflag, uint32_t nrflag, enum kind *kind,
     uint64_t *sent_at, int count, ...)
{
    size_t mark;
    va_list ap;

    *kind = K_NOREPLY;
    if (c->np & noflag) /* not in the filter's protocol: not even macros */
        return 0;
    if (put_macros(c, stage, event) != 0)
        return -1;
    if (c->proto & noflag)
        return flush_out(c);
    if (pkt_begin(c, event, &mark) != 0)
        return -1;
    va_start(ap, count);
    for (int i = 0; i < count; i++) {
        if (put_str(c, va_arg(ap, const char *)) != 0) {
            va_end(ap);
            return -1;
        }
    }
    va_end(ap);
    if (pkt_end(c, mark) != 0)
        return -1;
    if (sent_at != NULL)
        *sent_at = now_ns();
    if (flush_out(c) != 0)
        return -1;
    if (c->proto & nrflag)
        return 0;
    return step_reply(c, event, kind);
}

/* A command with no data and no reply (ABORT, QUIT). */
static int
send_bare(struct conn *c, int cmd)
{
    size_t mark;

    if (pkt_begin(c, cmd, &mark) != 0 || pkt_end(c, mark) != 0)
        return -1;
    return flush_out(c);
}

static int
negotiate(struct conn *c)
{
    size_t mark;
    struct reply r;
    uint32_t v[3];
    size_t off;

    if (pkt_begin(c, SMFIC_OPTNEG, &mark) != 0 || put_u32(c, OFFER_VERSION) != 0 ||
        put_u32(c, OFFER_ACTIONS) != 0 || put_u32(c, OFFER_PROTO) != 0 ||
        pkt_end(c, mark) != 0 || flush_out(c) != 0 || read_reply(c, SMFIC_OPTNEG, &r) != 0)
        return -1;
    if (r.cmd != SMFIC_OPTNEG)
        return fail(c, "OPTNEG reply: '%c' (%s), not OPTNEG",
                    r.cmd >= 32 && r.cmd < 127 ? r.cmd : '?', cmd_name(r.cmd));
    if (r.len < 12)
        return fail(c, "OPTNEG reply: %zu bytes, at least 12 expected", r.len);
    memcpy(v, r.data, 12);
    c->version = ntohl(v[0]);
    c->actions = ntohl(v[1]);
    c->proto = ntohl(v[2]);
    if (c->version < 2 || c->version > OFFER_VERSION)
        return fail(c, "OPTNEG reply: protocol version %lu (we speak 2 to %u)",
                    (unsigned long)c->version, OFFER_VERSION);
    if (c->actions & ~OFFER_ACTIONS)
        return fail(c, "OPTNEG reply: actions 0x%lx, not all offered (0x%lx)",
                    (unsigned long)c->actions, (unsigned long)OFFER_ACTIONS);
    if (c->proto & ~OFFER_PROTO)
        return fail(c, "OPTNEG reply: protocol flags 0x%lx, not all offered (0x%lx)",
                    (unsigned long)c->proto, (unsigned long)OFFER_PROTO);
    /* Postfix sends an older filter only the steps of its version. */
    if (c->version < 4)
        c->np |= SMFIP_NODATA;
    if (c->version < 3)
        c->np |= SMFIP_NOUNKNOWN;
    /* then (stage, "macro list") pairs: SMFIR_SETSYMLIST */
    for (off = 12; off < r.len;) {
        uint32_t stage;
        const unsigned char *z;

        if (!(c->actions & SMFIF_SETSYMLIST))
            return fail(c, "OPTNEG reply: macro lists without SMFIF_SETSYMLIST");
        if (r.len - off < 5 || (z = memchr(r.data + off + 4, '\0', r.len - off - 4)) == NULL)
            return fail(c, "OPTNEG reply: truncated macro list at byte %zu", off);
        memcpy(&stage, r.data + off, 4);
        stage = ntohl(stage);
        if (stage >= NSTAGES)
            return fail(c, "OPTNEG reply: macro list for unknown stage %lu",
                        (unsigned long)stage);
        free(c->symlist[stage]);
        if ((c->symlist[stage] = strdup((const char *)r.data + off + 4)) == NULL)
            return fail(c, "out of memory");
        off = (size_t)(z - r.data) + 1;
    }
    return 0;
}

static int
connect_socket(struct conn *c)
{
    const char *s = opt.socket;
    int fd = -1;

    if (strncmp(s, "unix:", 5) == 0 || strncmp(s, "local:", 6) == 0 || s[0] == '/') {
        struct sockaddr_un sun = {.sun_family = AF_UNIX};
        const char *path = s[0] == '/' ? s : strchr(s, ':') + 1;

        if (strlen(path) >= sizeof(sun.sun_path))
            return fail(c, "socket path too long: %s", path);
        memcpy(sun.sun_path, path, strlen(path) + 1);
        if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0 ||
            connect(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0) {
            int e = errno;

            if (fd >= 0)
                close(fd);
            return fail(c, "connect to %s: %s", s, strerror(e));
        }
    } else if (strncmp(s, "inet:", 5) == 0 || strncmp(s, "inet6:", 6) == 0) {
        char port[16], host[256];
        const char *p = strchr(s, ':') + 1, *at = strchr(p, '@');
        struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res, *ai;
        int rc, e = 0;

        if (at == NULL || (size_t)(at - p) >= sizeof(port) || strlen(at + 1) >= sizeof(host))
            return fail(c, "bad socket %s (inet:PORT@HOST)", s);
        memcpy(port, p, (size_t)(at - p));
        port[at - p] = '\0';
        memcpy(host, at + 1, strlen(at + 1) + 1);
        hints.ai_family = s[4] == '6' ? AF_INET6 : AF_UNSPEC;
        if ((rc = getaddrinfo(host, port, &hints, &res)) != 0)
            return fail(c, "%s: %s", s, gai_strerror(rc));
        for (ai = res; ai != NULL; ai = ai->ai_next) {
            if ((fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, 0)) < 0) {
                e = errno;
                continue;
            }
            if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
                break;
            e = errno;
            close(fd);
            fd = -1;
        }
        freeaddrinfo(res);
        if (fd < 0)
            return fail(c, "connect to %s: %s", s, strerror(e));
        {
            int one = 1; /* as Postfix's vstream_tweak_tcp */

            (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        }
    } else {
        return fail(c, "bad socket %s (unix:PATH or inet:PORT@HOST)", s);
    }
    c->fd = fd;
    return 0;
}

/* OPTNEG, CONNECT, HELO. */
static int
session_open(struct conn *c)
{
    enum kind k;

    if (connect_socket(c) != 0 || negotiate(c) != 0)
        return -1;
    /* CONNECT: host name, family, port (network order), address */
    {
        size_t mark;
        unsigned char fam = SMFIA_INET;
        uint16_t p = htons((uint16_t)(20000 + c->id % 40000));

        if (put_macros(c, SMFIM_CONNECT, SMFIC_CONNECT) != 0)
            return -1;
        if (!(c->proto & SMFIP_NOCONNECT)) {
            if (pkt_begin(c, SMFIC_CONNECT, &mark) != 0 || put_str(c, "client.bench.invalid") != 0 ||
                put(c, &fam, 1) != 0 || put(c, &p, 2) != 0 || put_str(c, "127.0.0.1") != 0 ||
                pkt_end(c, mark) != 0)
                return -1;
        }
        if (flush_out(c) != 0)
            return -1;
        if (!(c->proto & (SMFIP_NOCONNECT | SMFIP_NR_CONN))) {
            if (step_reply(c, SMFIC_CONNECT, &k) != 0)
                return -1;
            if (k != K_CONTINUE)
                return fail(c, "CONNECT reply: %s; a load run needs continue", kind_name[k]);
        }
    }
    if (step(c, SMFIM_HELO, SMFIC_HELO, SMFIP_NOHELO, SMFIP_NR_HELO, &k, NULL, 1,
             "client.bench.invalid") != 0)
        return -1;
    if (k != K_CONTINUE && k != K_NOREPLY)
        return fail(c, "HELO reply: %s; a load run needs continue", kind_name[k]);
    return 0;
}

static void
count_final(struct conn *c, enum kind k)
{
    c->final_kind[k]++;
    c->messages_done++;
}

/* One transaction: MAIL, RCPTs, DATA, headers, EOH, body, EOM, ABORT. */
static int
message(struct conn *c, int m)
{
    static const char *const hdrs[][2] = {
        {"From", "Sender <sender@bench.invalid>"},
        {"To", "Recipients <undisclosed-recipients:;>"},
        {"Subject", "miltload"},
        {"Message-ID", "<miltload@bench.invalid>"},
    };
    static const char body[] = "A load test message.\r\n";
    enum kind k;
    char from[300];
    int accepted = 0;
    uint64_t t_step;

    (void)snprintf(c->qid, sizeof(c->qid), "%03X%07X", (unsigned)c->id & 0xfff,
                   (unsigned)m & 0xfffffff);
    c->rcpt[0] = '\0';
    c->skip_body = false;
    if ((size_t)snprintf(from, sizeof(from), "<%s>", opt.sender) >= sizeof(from))
        return fail(c, "sender too long");
    t_step = 0;
    if (step(c, SMFIM_ENVFROM, SMFIC_MAIL, SMFIP_NOMAIL, SMFIP_NR_MAIL, &k, &t_step, 1, from) != 0)
        return -1;
    step_took(c, STEP_MAIL, k, t_step);
    if (k != K_CONTINUE && k != K_NOREPLY) {
        count_final(c, k);
        goto done;
    }
    for (int j = 0; j < opt.rcpts; j++) {
        size_t g = ((size_t)c->id * (size_t)opt.messages + (size_t)m) * (size_t)opt.rcpts +
                   (size_t)j;
        char arg[DOMAIN_MAX + 20];
        uint64_t t0 = 0;

        c->domain = opt.domains[g % (size_t)opt.ndomains];
        (void)snprintf(c->rcpt, sizeof(c->rcpt), "rcpt%d@%s", j, c->domain);
        (void)snprintf(arg, sizeof(arg), "<%s>", c->rcpt);
        if (step(c, SMFIM_ENVRCPT, SMFIC_RCPT, SMFIP_NORCPT, SMFIP_NR_RCPT, &k, &t0, 1, arg) != 0)
            return -1;
        if (k != K_NOREPLY && t0 != 0) {
            uint64_t took = now_ns() - t0;

            c->lat[c->nlat++] = took;
            if (took > c->slow_ns) {
                c->slow_ns = took;
                c->slow_sent_ns = t0;
                c->slow_domain = c->domain;
            }
        }
        c->rcpt_kind[k]++;
        if (k == K_CONTINUE || k == K_NOREPLY)
            accepted++;
        if (k == K_ACCEPT || k == K_DISCARD) { /* no more events for this message */
            count_final(c, k);
            goto done;
        }
    }
    c->rcpt[0] = '\0';
    if (accepted == 0) { /* the MTA would not send DATA */
        c->no_rcpt++;
        c->messages_done++;
        goto done;
    }
    if (step(c, SMFIM_DATA, SMFIC_DATA, SMFIP_NODATA, SMFIP_NR_DATA, &k, NULL, 0) != 0)
        return -1;
    if (k != K_CONTINUE && k != K_NOREPLY) {
        count_final(c, k);
        goto done;
    }
    if (!(c->proto & SMFIP_NOHDRS)) {
        for (size_t i = 0; i < sizeof(hdrs) / sizeof(hdrs[0]); i++) {
            char val[200];

            (void)snprintf(val, sizeof(val), "%s%s", c->proto & SMFIP_HDR_LEADSPC ? " " : "",
                           hdrs[i][1]);
            t_step = 0;
            if (step(c, SMFIM_EOH, SMFIC_HEADER, SMFIP_NOHDRS, SMFIP_NR_HDR, &k, &t_step, 2,
                     hdrs[i][0], val) != 0)
                return -1;
            step_took(c, STEP_HEADER, k, t_step);
            if (k != K_CONTINUE && k != K_NOREPLY) {
                count_final(c, k);
                goto done;
            }
        }
    }
    if (step(c, SMFIM_EOH, SMFIC_EOH, SMFIP_NOEOH, SMFIP_NR_EOH, &k, NULL, 0) != 0)
        return -1;
    if (k != K_CONTINUE && k != K_NOREPLY) {
        count_final(c, k);
        goto done;
    }
    if (!(c->proto & SMFIP_NOBODY)) {
        /* one chunk, raw (no NUL): built by hand */
        size_t mark;

        if (put_macros(c, SMFIM_EOM, SMFIC_BODY) != 0 || pkt_begin(c, SMFIC_BODY, &mark) != 0 ||
            put(c, body, sizeof(body) - 1) != 0 || pkt_end(c, mark) != 0 || flush_out(c) != 0)
            return -1;
        if (!(c->proto & SMFIP_NR_BODY)) {
            if (step_reply(c, SMFIC_BODY, &k) != 0)
                return -1;
            if (k == K_SKIP)
                c->skip_body = true;
            else if (k != K_CONTINUE) {
                count_final(c, k);
                goto done;
            }
        }
    }
    {
        size_t mark;

        if (put_macros(c, SMFIM_EOM, SMFIC_BODYEOB) != 0 ||
            pkt_begin(c, SMFIC_BODYEOB, &mark) != 0 || pkt_end(c, mark) != 0)
            return -1;
        t_step = now_ns();
        if (flush_out(c) != 0 || eom_replies(c, &k) != 0)
            return -1;
        step_took(c, STEP_EOM, K_CONTINUE, t_step);
        count_final(c, k);
    }
done:
    c->qid[0] = c->rcpt[0] = '\0';
    return send_bare(c, SMFIC_ABORT);
}

static void *
conn_main(void *arg)
{
    struct conn *c = arg;
    int m;
    bool up = session_open(c) == 0;

    pthread_barrier_wait(&start_line);
    if (!up)
        return NULL;
    for (m = 0; m < opt.messages; m++)
        if (message(c, m) != 0)
            return NULL;
    if (send_bare(c, SMFIC_QUIT) != 0)
        return NULL;
    c->ok = true;
    return NULL;
}

/* ---------------------------------------------------------------- main */

static void
usage(void)
{
    fprintf(stderr,
            "usage: miltload -s SOCKET [options]\n"
            "  -s, --socket SOCKET      unix:PATH, inet:PORT@HOST or inet6:PORT@HOST\n"
            "  -c, --connections N      milter connections, one thread each (default 1)\n"
            "  -m, --messages N         messages per connection (default 1000)\n"
            "  -r, --rcpts N            RCPTs per message (default 5)\n"
            "  -d, --domains D1,D2,...  recipient domains; recipients cycle over them\n"
            "  -D, --domain-file FILE   the same, one a line ('#' comments)\n"
            "  -f, --from ADDRESS       envelope sender (default sender@bench.invalid)\n"
            "  -a, --auth USER          {auth_authen} (default bench)\n"
            "  -A, --no-auth            send no {auth_authen} / {auth_type}\n"
            "  -T, --mailer NAME        {rcpt_mailer} (default smtp); \"\": not sent\n"
            "  -H, --rcpt-host HOST     {rcpt_host} (default: the recipient domain)\n"
            "      --no-rcpt-host       send no {rcpt_host}\n"
            "      --no-queue-id        send no i\n"
            "      --headers FILE       write the headers the filter adds, one a line\n"
            "  -n, --daemon-name NAME   {daemon_name} (default bench); \"\": not sent\n"
            "  -t, --timeout MS         bound on every read and write (default 30000)\n"
            "Prints RCPT/s, RCPT latency p50/p99/max, messages/s and replies by kind.\n");
    exit(2);
}

static int
positive(const char *s, const char *what, long max)
{
    char *end;
    long v;

    errno = 0;
    v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < 1 || v > max) {
        fprintf(stderr, "miltload: %s must be a number from 1 to %ld, not \"%s\"\n", what, max,
                s);
        exit(2);
    }
    return (int)v;
}

static void
add_domain(const char *s, size_t n)
{
    static int cap;

    while (n > 0 && (s[0] == ' ' || s[0] == '\t')) {
        s++;
        n--;
    }
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r'))
        n--;
    if (n == 0)
        return;
    if (n > DOMAIN_MAX || opt.ndomains >= MAX_DOMAINS) {
        fprintf(stderr, "miltload: %s\n",
                n > DOMAIN_MAX ? "a domain longer than 253 characters" : "too many domains");
        exit(2);
    }
    if (opt.ndomains == cap) {
        char **p;

        cap = cap ? cap * 2 : 64;
        if ((p = realloc(opt.domains, (size_t)cap * sizeof(*p))) == NULL) {
            perror("miltload");
            exit(2);
        }
        opt.domains = p;
    }
    if ((opt.domains[opt.ndomains] = strndup(s, n)) == NULL) {
        perror("miltload");
        exit(2);
    }
    opt.ndomains++;
}

static void
read_domains(const char *file)
{
    char line[512];
    FILE *f = fopen(file, "r");

    if (f == NULL) {
        fprintf(stderr, "miltload: %s: %s\n", file, strerror(errno));
        exit(2);
    }
    while (fgets(line, sizeof(line), f) != NULL) {
        line[strcspn(line, "#\n")] = '\0';
        add_domain(line, strlen(line));
    }
    fclose(f);
}

static int
cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

    return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of sorted v[n], in microseconds. */
static double
pct_us(const uint64_t *v, size_t n, double q)
{
    size_t rank;

    if (n == 0)
        return 0;
    rank = (size_t)(q * (double)n + 0.999999);
    if (rank < 1)
        rank = 1;
    if (rank > n)
        rank = n;
    return (double)v[rank - 1] / 1000.0;
}

int
main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"socket", required_argument, NULL, 's'},
        {"connections", required_argument, NULL, 'c'},
        {"messages", required_argument, NULL, 'm'},
        {"rcpts", required_argument, NULL, 'r'},
        {"domains", required_argument, NULL, 'd'},
        {"domain-file", required_argument, NULL, 'D'},
        {"from", required_argument, NULL, 'f'},
        {"auth", required_argument, NULL, 'a'},
        {"no-auth", no_argument, NULL, 'A'},
        {"mailer", required_argument, NULL, 'T'},
        {"rcpt-host", required_argument, NULL, 'H'},
        {"no-rcpt-host", no_argument, NULL, 1},
        {"no-queue-id", no_argument, NULL, 2},
        {"headers", required_argument, NULL, 3},
        {"daemon-name", required_argument, NULL, 'n'},
        {"timeout", required_argument, NULL, 't'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct conn **conns;
    pthread_t *tids;
    uint64_t t0, t1, *all, step_ns[STEP_N] = {0}, step_n[STEP_N] = {0};
    uint64_t slow_ns = 0, slow_sent_ns = 0;
    const char *slow_domain = NULL;
    int slow_conn = -1;
    size_t nall = 0, cap;
    unsigned long rk[K_N] = {0}, ek[K_N] = {0}, mods = 0, no_rcpt = 0, msgs = 0;
    double secs;
    int ch, failed = 0;

    while ((ch = getopt_long(argc, argv, "s:c:m:r:d:D:f:a:AT:H:n:t:h", longopts, NULL)) != -1) {
        switch (ch) {
        case 's': opt.socket = optarg; break;
        case 'c': opt.connections = positive(optarg, "connections", MAX_CONNECTIONS); break;
        case 'm': opt.messages = positive(optarg, "messages", 10000000); break;
        case 'r': opt.rcpts = positive(optarg, "rcpts", 100000); break;
        case 3:
            if ((opt.headers = fopen(optarg, "w")) == NULL) {
                fprintf(stderr, "miltload: %s: %s\n", optarg, strerror(errno));
                exit(2);
            }
            break;
        case 'd':
            for (const char *p = optarg; *p;) {
                size_t n = strcspn(p, ",");

                add_domain(p, n);
                p += n + (p[n] == ',');
            }
            break;
        case 'D': read_domains(optarg); break;
        case 'f': opt.sender = optarg; break;
        case 'a': opt.auth = optarg; break;
        case 'A': opt.auth = NULL; break;
        case 'T': opt.mailer = *optarg ? optarg : NULL; break;
        case 'H': opt.rcpt_host = optarg; break;
        case 1: opt.send_rcpt_host = false; break;
        case 2: opt.send_queue_id = false; break;
        case 'n': opt.daemon_name = *optarg ? optarg : NULL; break;
        case 't': opt.timeout_ms = positive(optarg, "timeout", 3600000); break;
        default: usage();
        }
    }
    if (optind != argc || opt.socket == NULL)
        usage();
    if (opt.ndomains == 0)
        add_domain("example.com", 11);
    if ((size_t)opt.messages * (size_t)opt.rcpts * (size_t)opt.connections > 200000000U) {
        fprintf(stderr, "miltload: more than 200,000,000 RCPTs in one run\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);

    conns = calloc((size_t)opt.connections, sizeof(*conns));
    tids = calloc((size_t)opt.connections, sizeof(*tids));
    if (conns == NULL || tids == NULL ||
        pthread_barrier_init(&start_line, NULL, (unsigned)opt.connections + 1) != 0) {
        perror("miltload");
        return 2;
    }
    for (int i = 0; i < opt.connections; i++) {
        if ((conns[i] = calloc(1, sizeof(*conns[i]))) == NULL ||
            (conns[i]->lat = calloc((size_t)opt.messages * (size_t)opt.rcpts,
                                    sizeof(uint64_t))) == NULL) {
            perror("miltload");
            return 2;
        }
        conns[i]->id = i;
        conns[i]->fd = -1;
    }
    for (int i = 0; i < opt.connections; i++) {
        pthread_attr_t a;

        pthread_attr_init(&a);
        pthread_attr_setstacksize(&a, 256 * 1024);
        if (pthread_create(&tids[i], &a, conn_main, conns[i]) != 0) {
            perror("miltload: pthread_create");
            return 2;
        }
        pthread_attr_destroy(&a);
    }
    pthread_barrier_wait(&start_line);
    t0 = now_ns();
    for (int i = 0; i < opt.connections; i++)
        pthread_join(tids[i], NULL);
    t1 = now_ns();
    secs = (double)(t1 - t0) / 1e9;

    cap = (size_t)opt.messages * (size_t)opt.rcpts * (size_t)opt.connections;
    if ((all = malloc(cap * sizeof(*all))) == NULL) {
        perror("miltload");
        return 2;
    }
    for (int i = 0; i < opt.connections; i++) {
        struct conn *c = conns[i];

        if (!c->ok) {
            failed++;
            fprintf(stderr, "miltload: connection %d: %s\n", i,
                    c->err[0] ? c->err : "failed (no reason recorded)");
        }
        if (c->slow_ns > slow_ns) {
            slow_ns = c->slow_ns;
            slow_sent_ns = c->slow_sent_ns;
            slow_domain = c->slow_domain;
            slow_conn = i;
        }
        memcpy(all + nall, c->lat, c->nlat * sizeof(*all));
        nall += c->nlat;
        for (int k = 0; k < K_N; k++) {
            rk[k] += c->rcpt_kind[k];
            ek[k] += c->final_kind[k];
        }
        mods += c->mods;
        for (int w = 0; w < STEP_N; w++) {
            step_ns[w] += c->step_ns[w];
            step_n[w] += c->step_n[w];
        }
        no_rcpt += c->no_rcpt;
        msgs += c->messages_done;
        if (c->fd >= 0)
            close(c->fd);
        for (int s = 0; s < NSTAGES; s++)
            free(c->symlist[s]);
        free(c->lat);
        free(c);
    }
    qsort(all, nall, sizeof(*all), cmp_u64);
    {
        unsigned long rcpts = 0;

        for (int k = 0; k < K_N; k++)
            rcpts += rk[k];
        printf("miltload: %s connections=%d messages=%lu rcpts=%lu seconds=%.3f\n", opt.socket,
               opt.connections, msgs, rcpts, secs);
        printf("rcpt_per_s=%.0f rcpt_p50_us=%.0f rcpt_p99_us=%.0f rcpt_max_us=%.0f "
               "messages_per_s=%.0f\n",
               secs > 0 ? (double)rcpts / secs : 0, pct_us(all, nall, 0.50),
               pct_us(all, nall, 0.99), nall ? (double)all[nall - 1] / 1000.0 : 0,
               secs > 0 ? (double)msgs / secs : 0);
        if (slow_domain != NULL)
            printf("rcpt_slowest: connection=%d domain=%s sent_at_ms=%.0f took_ms=%.0f\n",
                   slow_conn, slow_domain,
                   slow_sent_ns > t0 ? (double)(slow_sent_ns - t0) / 1e6 : 0.0,
                   (double)slow_ns / 1e6);
        printf("rcpt_replies: continue=%lu tempfail=%lu reject=%lu other=%lu",
               rk[K_CONTINUE], rk[K_TEMPFAIL], rk[K_REJECT],
               rk[K_ACCEPT] + rk[K_DISCARD] + rk[K_SKIP]);
        if (rk[K_NOREPLY])
            printf(" noreply=%lu", rk[K_NOREPLY]);
        printf("\nmessage_replies: continue=%lu accept=%lu tempfail=%lu reject=%lu other=%lu "
               "no_rcpt=%lu modifications=%lu errors=%d\n",
               ek[K_CONTINUE], ek[K_ACCEPT], ek[K_TEMPFAIL], ek[K_REJECT],
               ek[K_DISCARD] + ek[K_SKIP] + ek[K_NOREPLY], no_rcpt, mods, failed);
        printf("step_mean_us: mail=%.1f header=%.1f eom=%.1f\n",
               step_n[STEP_MAIL] ? (double)step_ns[STEP_MAIL] / 1e3 / (double)step_n[STEP_MAIL] : 0,
               step_n[STEP_HEADER] ? (double)step_ns[STEP_HEADER] / 1e3 / (double)step_n[STEP_HEADER] : 0,
               step_n[STEP_EOM] ? (double)step_ns[STEP_EOM] / 1e3 / (double)step_n[STEP_EOM] : 0);
    }
    free(all);
    free(conns);
    free(tids);
    for (int i = 0; i < opt.ndomains; i++)
        free(opt.domains[i]);
    free(opt.domains);
    return failed ? 1 : 0;
}
