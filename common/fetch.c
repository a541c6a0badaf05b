/*
 * fetch - RFC 8461 §3.3 policy fetch over HTTPS; see fetch.h.
 *
 * DESCRIPTION
 *	One fresh curl easy handle per call: nothing (connections, DNS cache,
 *	TLS sessions, certificate stores) is shared between domains or
 *	threads but the parsed trust anchors (cafile.h), which the SSL_CTX
 *	callback adds to each connection's own store. Name resolution
 *	is ours: CURLOPT_RESOLVE puts the caller's addresses in the handle's
 *	cache, and a resolver-start callback that refuses makes sure curl
 *	never falls back to the system resolver, which does not validate
 *	DNSSEC. The response is judged as soon as its header block ends, so
 *	a wrong status or type stops the transfer before any body is read;
 *	the body is counted as it arrives, chunked or not.
 *	The only module that includes curl/curl.h.
 */
#include "fetch.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <openssl/ssl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "cafile.h"
#include "metrics.h"
#include "nametab.h"
#include "policy.h"

#if LIBCURL_VERSION_NUM < 0x075500
#error "libcurl 7.85 or newer is needed (CURLOPT_PROTOCOLS_STR)"
#endif

#define HOST_MAX 253    /* a DNS name in text form */
#define HDR_KEEP 256    /* bytes of a header value kept for checks and reasons */
#define QUOTE_MAX 120   /* a quoted remote value inside a reason */
#define BODY_START 1024 /* first body buffer; doubles up to the limit */

/*
 * Trust anchors. libcurl would read the CA file into every connection's
 * store (and OpenSSL's SSL_CTX_new is per connection too): with an OpenSSL
 * libcurl, CURLOPT_CAINFO is unset instead and the SSL_CTX callback adds
 * the anchors cafile.c parsed once. Set by fetch_global_init, read-only after.
 */
static bool anchors_by_callback;   /* libcurl's TLS is OpenSSL's */
static char *system_cainfo;        /* libcurl's built-in CA bundle; NULL: none */

/* One response header we look at. */
struct hdr {
    char v[HDR_KEEP];
    size_t len; /* bytes kept in v (no terminator) */
    int count;  /* times seen in the current header block */
};

struct fetch_state {
    CURL *h;
    bool at_status_line; /* the next header line starts a response */
    bool headers_done;   /* the final (non-1xx) header block has ended */
    bool failed;         /* a callback judged the response; keep its reason */
    enum fetch_status status;
    struct mts_err why;
    struct hdr ctype, location;
    char *body;
    size_t len, cap;
    char errbuf[CURL_ERROR_SIZE];
};

/* Records the first failure only: later ones are consequences of it. */
static int __attribute__((format(printf, 3, 4)))
fail(struct fetch_state *st, enum fetch_status s, const char *fmt, ...)
{
    va_list ap;

    if (st->failed)
        return -1;
    st->failed = true;
    st->status = s;
    va_start(ap, fmt);
    (void)vsnprintf(st->why.msg, sizeof(st->why.msg), fmt, ap);
    va_end(ap);
    return -1;
}

/* "text/plain", any case, optionally followed by OWS ";" parameters. */
static bool
is_text_plain(const char *v, size_t len)
{
    size_t end = 0;

    while (end < len && v[end] != ';')
        end++;
    while (end > 0 && (v[end - 1] == ' ' || v[end - 1] == '\t'))
        end--;
    return end == 10 && strncasecmp(v, "text/plain", 10) == 0;
}

/* Applies §3.3 to a final header block: 200, text/plain, nothing else. */
static int
judge_headers(struct fetch_state *st, long code)
{
    char q[QUOTE_MAX];

    if (code >= 300 && code < 400) {
        if (st->location.count == 0)
            return fail(st, FETCH_REDIRECT,
                        "HTTP %ld redirect (no Location) not followed (RFC 8461 §3.3)", code);
        mts_err_quote(q, sizeof(q), st->location.v, st->location.len);
        return fail(st, FETCH_REDIRECT, "HTTP %ld redirect to \"%s\" not followed (RFC 8461 §3.3)",
                    code, q);
    }
    if (code != 200)
        return fail(st, FETCH_HTTP_STATUS, "HTTP status %ld (only 200 is accepted)", code);
    if (st->ctype.count == 0)
        return fail(st, FETCH_CONTENT_TYPE, "no Content-Type header (text/plain is required)");
    /* Two types leave the body's meaning open: refuse rather than pick one. */
    if (st->ctype.count > 1)
        return fail(st, FETCH_CONTENT_TYPE, "more than one Content-Type header");
    if (!is_text_plain(st->ctype.v, st->ctype.len)) {
        mts_err_quote(q, sizeof(q), st->ctype.v, st->ctype.len);
        return fail(st, FETCH_CONTENT_TYPE, "Content-Type \"%s\" is not text/plain", q);
    }
    return 0;
}

/* Keeps the value of line (CRLF stripped) in h if it is header `name`. */
static void
keep_header(struct hdr *h, const char *name, const char *line, size_t len)
{
    size_t nl = strlen(name);

    if (len <= nl || line[nl] != ':' || strncasecmp(line, name, nl) != 0)
        return;
    line += nl + 1;
    len -= nl + 1;
    while (len > 0 && (*line == ' ' || *line == '\t')) {
        line++;
        len--;
    }
    while (len > 0 && (line[len - 1] == ' ' || line[len - 1] == '\t'))
        len--;
    h->count++;
    h->len = len < sizeof(h->v) ? len : sizeof(h->v);
    memcpy(h->v, line, h->len);
}

static size_t
on_header(char *buf, size_t size, size_t n, void *arg)
{
    struct fetch_state *st = arg;
    size_t len = size * n, end = len; /* curl: size is always 1 */
    long code = 0;

    if (st->headers_done)
        return len; /* trailers after a chunked body: nothing we use */
    while (end > 0 && (buf[end - 1] == '\n' || buf[end - 1] == '\r'))
        end--;
    if (st->at_status_line) {
        /* A new response (the first, or the one after a 1xx): its own headers. */
        st->at_status_line = false;
        memset(&st->ctype, 0, sizeof(st->ctype));
        memset(&st->location, 0, sizeof(st->location));
        return len;
    }
    if (end > 0) {
        keep_header(&st->ctype, "content-type", buf, end);
        keep_header(&st->location, "location", buf, end);
        return len;
    }
    /* The blank line: one header block is complete. */
    (void)curl_easy_getinfo(st->h, CURLINFO_RESPONSE_CODE, &code);
    if (code >= 100 && code < 200) {
        st->at_status_line = true; /* interim; the real response follows */
        return len;
    }
    st->headers_done = true;
    /* A short count: curl stops before reading the body. An oversized
     * Content-Length never gets here: CURLOPT_MAXFILESIZE stops it first. */
    return judge_headers(st, code) == 0 ? len : 0;
}

static size_t
on_body(char *data, size_t size, size_t n, void *arg)
{
    struct fetch_state *st = arg;
    size_t len = size * n; /* curl: size is always 1 */
    size_t cap;
    char *p;

    if (!st->headers_done || st->failed) {
        fail(st, FETCH_ERROR, "body bytes before the end of the response headers");
        return 0;
    }
    if (len > (size_t)POLICY_MAX_BYTES - st->len) {
        fail(st, FETCH_TOO_LARGE, "policy body exceeds %d bytes", POLICY_MAX_BYTES);
        return 0;
    }
    if (st->len + len + 1 > st->cap) {
        cap = st->cap > 0 ? st->cap : BODY_START;
        while (cap < st->len + len + 1)
            cap *= 2;
        if (cap > (size_t)POLICY_MAX_BYTES + 1)
            cap = (size_t)POLICY_MAX_BYTES + 1; /* the limit plus the NUL */
        if ((p = realloc(st->body, cap)) == NULL) {
            fail(st, FETCH_ERROR, "out of memory for the policy body");
            return 0;
        }
        st->body = p;
        st->cap = cap;
    }
    memcpy(st->body + st->len, data, len);
    st->len += len;
    st->body[st->len] = '\0';
    return len;
}

/* curl calls this only for a name missing from its cache: never resolve. */
static int
refuse_resolve(void *resolver_state, void *reserved, void *arg)
{
    (void)resolver_state;
    (void)reserved;
    (void)arg;
    return 1;
}

/* A DNS name of LDH labels, no empty label: safe in a URL and a RESOLVE entry. */
static bool
valid_domain(const char *d)
{
    size_t len = strlen(d);

    if (len == 0 || len > HOST_MAX - 8 || d[0] == '.' || d[len - 1] == '.' ||
        strstr(d, "..") != NULL)
        return false;
    return strspn(d, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.") == len;
}

/* "mta-sts.<domain>:PORT:a,[b],..." from numeric addresses only. */
static char *
resolve_entry(const char *host, unsigned port, const char *const *addrs, size_t n,
              struct mts_err *err)
{
    size_t cap = strlen(host) + 8 + n * (INET6_ADDRSTRLEN + 3), o;
    unsigned char bin[sizeof(struct in6_addr)];
    char q[QUOTE_MAX], *s;
    int r;

    if ((s = malloc(cap)) == NULL) {
        mts_err_set(err, "out of memory");
        return NULL;
    }
    o = (size_t)snprintf(s, cap, "%s:%u:", host, port);
    for (size_t i = 0; i < n; i++) {
        const char *a = addrs[i] != NULL ? addrs[i] : "";
        bool v6 = inet_pton(AF_INET6, a, bin) == 1;

        if (!v6 && inet_pton(AF_INET, a, bin) != 1) {
            mts_err_quote(q, sizeof(q), a, strlen(a));
            mts_err_set(err, "address \"%s\" is not a numeric IPv4 or IPv6 address", q);
            free(s);
            return NULL;
        }
        r = snprintf(s + o, cap - o, v6 ? "%s[%s]" : "%s%s", i > 0 ? "," : "", a);
        o += (size_t)r; /* inet_pton bounds a: it fits the estimate */
    }
    return s;
}

/* Maps a curl failure that no callback explained to a status and reason. */
static void
judge_curl_error(struct fetch_state *st, CURLcode rc, const struct fetch_options *o)
{
    const char *text = st->errbuf[0] != '\0' ? st->errbuf : curl_easy_strerror(rc);
    curl_off_t tls_done = 0;
    long code = 0, limit;

    switch (rc) {
    case CURLE_FILESIZE_EXCEEDED:
        /* Declared length over CURLOPT_MAXFILESIZE; a wrong status says more. */
        (void)curl_easy_getinfo(st->h, CURLINFO_RESPONSE_CODE, &code);
        if (judge_headers(st, code) == 0)
            fail(st, FETCH_TOO_LARGE, "policy body exceeds %d bytes (declared length)",
                 POLICY_MAX_BYTES);
        break;
    case CURLE_OPERATION_TIMEDOUT:
        /* Before the TLS handshake completes, curl counts it as connecting. */
        (void)curl_easy_getinfo(st->h, CURLINFO_APPCONNECT_TIME_T, &tls_done);
        if (tls_done > 0)
            fail(st, FETCH_TIMEOUT, "timed out after %ld ms (transfer)", o->total_timeout_ms);
        else {
            limit = o->connect_timeout_ms < o->total_timeout_ms ? o->connect_timeout_ms
                                                                : o->total_timeout_ms;
            fail(st, FETCH_TIMEOUT, "timed out after %ld ms (connect)", limit);
        }
        break;
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
        fail(st, FETCH_CONNECT, "cannot connect: %s", text);
        break;
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CRL_BADFILE:
        fail(st, FETCH_ERROR, "local TLS setup: %s", text);
        break;
    case CURLE_PEER_FAILED_VERIFICATION: /* = CURLE_SSL_CACERT since 7.62 */
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_SHUTDOWN_FAILED:
        fail(st, FETCH_TLS, "TLS: %s", text);
        break;
    default:
        fail(st, FETCH_ERROR, "HTTPS transfer failed: %s", text);
        break;
    }
}

/* libcurl's SSL_CTX callback: this connection's own store gets the anchors. */
static CURLcode
add_anchors(CURL *h, void *sslctx, void *arg)
{
    (void)h;
    return cafile_add_to(arg, SSL_CTX_get_cert_store(sslctx)) == 0 ? CURLE_OK
                                                                   : CURLE_OUT_OF_MEMORY;
}

/* Every option that makes the transfer what §3.3 and our threat model ask. */
static CURLcode
set_options(CURL *h, struct fetch_state *st, const struct fetch_options *o, const char *url,
            struct curl_slist *resolve, struct curl_slist *headers, struct cafile *anchors,
            const char **what)
{
    CURLcode rc = CURLE_OK;

#define SET(opt, val)                                                                              \
    do {                                                                                           \
        if ((rc = curl_easy_setopt(h, opt, val)) != CURLE_OK) {                                    \
            *what = #opt;                                                                          \
            return rc;                                                                             \
        }                                                                                          \
    } while (0)
    SET(CURLOPT_ERRORBUFFER, st->errbuf);
    SET(CURLOPT_URL, url);
    SET(CURLOPT_PROTOCOLS_STR, "https");
    SET(CURLOPT_REDIR_PROTOCOLS_STR, "https");
    SET(CURLOPT_FOLLOWLOCATION, 0L); /* §3.3: 3xx MUST NOT be followed */
    SET(CURLOPT_MAXREDIRS, 0L);
    SET(CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2); /* §7.2 */
    SET(CURLOPT_SSL_VERIFYPEER, 1L);
    SET(CURLOPT_SSL_VERIFYHOST, 2L);
    if (anchors != NULL) {
        /* Nothing for libcurl to read: the callback adds the parsed set. */
        SET(CURLOPT_CAINFO, (char *)NULL);
#if LIBCURL_VERSION_NUM >= 0x075700
        SET(CURLOPT_CA_CACHE_TIMEOUT, 0L); /* no store kept in the handle either */
#endif
        SET(CURLOPT_SSL_CTX_FUNCTION, add_anchors);
        SET(CURLOPT_SSL_CTX_DATA, anchors);
    }
    if (o->ca_file != NULL && o->ca_file[0] != '\0') {
        /* Only this file: the built-in CA directory must not add anchors. */
        if (anchors == NULL)
            SET(CURLOPT_CAINFO, o->ca_file);
        SET(CURLOPT_CAPATH, (char *)NULL);
    }
    SET(CURLOPT_RESOLVE, resolve);
    SET(CURLOPT_RESOLVER_START_FUNCTION, refuse_resolve);
    /* Proxies would resolve and connect for us: ignore *_proxy variables. */
    SET(CURLOPT_PROXY, "");
    SET(CURLOPT_NOPROXY, "*");
    SET(CURLOPT_CONNECTTIMEOUT_MS, o->connect_timeout_ms);
    SET(CURLOPT_TIMEOUT_MS, o->total_timeout_ms);
    SET(CURLOPT_NOSIGNAL, 1L); /* no SIGALRM: we run in threads */
    if (o->user_agent != NULL)
        SET(CURLOPT_USERAGENT, o->user_agent);
    SET(CURLOPT_HTTPHEADER, headers);
    SET(CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)POLICY_MAX_BYTES);
    SET(CURLOPT_HEADERFUNCTION, on_header);
    SET(CURLOPT_HEADERDATA, st);
    SET(CURLOPT_WRITEFUNCTION, on_body);
    SET(CURLOPT_WRITEDATA, st);
#undef SET
    return rc;
}

static int global_inits; /* fetch_global_init calls not yet cleaned up */

/*
 * With an OpenSSL libcurl (its SSL_CTX is OpenSSL's), anchors go in by the
 * SSL_CTX callback; the system store is libcurl's built-in bundle, parsed
 * by cafile.c, and its built-in directory, which libcurl still looks in.
 */
static void
anchors_setup(const curl_version_info_data *v)
{
    CURL *h;
    char *path = NULL;

    if (v->ssl_version == NULL || strncmp(v->ssl_version, "OpenSSL/", 8) != 0)
        return;
    if ((h = curl_easy_init()) == NULL)
        return;
    if (curl_easy_getinfo(h, CURLINFO_CAINFO, &path) == CURLE_OK && path != NULL &&
        (system_cainfo = strdup(path)) == NULL) {
        curl_easy_cleanup(h);
        return;
    }
    curl_easy_cleanup(h);
    anchors_by_callback = true;
}

int
fetch_global_init(struct mts_err *err)
{
    const curl_version_info_data *v;
    CURLcode rc = curl_global_init(CURL_GLOBAL_DEFAULT);

    if (rc != CURLE_OK) {
        mts_err_set(err, "curl_global_init: %s", curl_easy_strerror(rc));
        return -1;
    }
    v = curl_version_info(CURLVERSION_NOW);
    if (v == NULL || !(v->features & CURL_VERSION_SSL)) {
        mts_err_set(err, "libcurl %s has no TLS support", v != NULL ? v->version : "?");
        curl_global_cleanup();
        return -1;
    }
    if (__atomic_add_fetch(&global_inits, 1, __ATOMIC_SEQ_CST) == 1)
        anchors_setup(v);
    return 0;
}

void
fetch_global_cleanup(void)
{
    if (__atomic_sub_fetch(&global_inits, 1, __ATOMIC_SEQ_CST) == 0) {
        anchors_by_callback = false;
        free(system_cainfo);
        system_cainfo = NULL;
        cafile_cleanup();
    }
    curl_global_cleanup();
}

void
fetch_reload_trust(void)
{
    cafile_forget();
}

int
fetch_policy(const struct fetch_options *o, const char *policy_domain, const char *const *addrs,
             size_t n_addrs, struct fetch_result *out, struct mts_err *err)
{
    struct fetch_state st;
    struct curl_slist *resolve = NULL, *headers = NULL;
    struct cafile *anchors = NULL;
    struct mts_err cae;
    char host[HOST_MAX + 1], url[HOST_MAX + 64], *entry = NULL;
    const char *ca;
    const char *what = "curl_slist_append";
    CURLcode rc;
    int64_t t0 = metrics_clock_us();

    mts_err_clear(err);
    if (out == NULL || o == NULL || policy_domain == NULL || (addrs == NULL && n_addrs > 0)) {
        mts_err_set(err, "fetch_policy: missing argument");
        return -1;
    }
    memset(out, 0, sizeof(*out));
    out->status = FETCH_ERROR;
    if (!valid_domain(policy_domain)) {
        mts_err_quote(host, sizeof(host), policy_domain, strlen(policy_domain));
        mts_err_set(err, "invalid policy domain \"%.120s\"", host);
        return -1;
    }
    if (o->connect_timeout_ms <= 0 || o->total_timeout_ms <= 0 || o->port == 0) {
        mts_err_set(err, "fetch options: timeouts and port must be positive");
        return -1;
    }
    /* Checked here so the reason names the file, whatever the network does. */
    if (o->ca_file != NULL && o->ca_file[0] != '\0' && access(o->ca_file, R_OK) != 0) {
        mts_err_set(err, "CA file %s: %s", o->ca_file, strerror(errno));
        return -1;
    }
    (void)snprintf(host, sizeof(host), "mta-sts.%s", policy_domain); /* fits: checked */
    if (n_addrs == 0) {
        out->status = FETCH_CONNECT;
        mts_err_set(err, "no address for %s", host);
        return -1;
    }
    if (o->port == 443)
        (void)snprintf(url, sizeof(url), "https://%s/.well-known/mta-sts.txt", host);
    else
        (void)snprintf(url, sizeof(url), "https://%s:%u/.well-known/mta-sts.txt", host,
                       (unsigned)o->port);
    if (n_addrs > FETCH_MAX_ADDRS)
        n_addrs = FETCH_MAX_ADDRS;
    if ((entry = resolve_entry(host, o->port, addrs, n_addrs, err)) == NULL)
        return -1;
    ca = o->ca_file != NULL && o->ca_file[0] != '\0' ? o->ca_file : system_cainfo;
    if (anchors_by_callback && ca != NULL && (anchors = cafile_get(ca, &cae)) == NULL) {
        /* As libcurl's CURLE_SSL_CACERT_BADFILE: our setup, not theirs. */
        mts_err_set(err, "local TLS setup: %s", cae.msg);
        free(entry);
        return -1;
    }

    memset(&st, 0, sizeof(st));
    st.at_status_line = true;
    rc = CURLE_OUT_OF_MEMORY;
    /* §3.3 forbids HTTP caching: ask any cache on the way for a fresh copy. */
    if ((resolve = curl_slist_append(NULL, entry)) == NULL ||
        (headers = curl_slist_append(NULL, "Cache-Control: no-cache")) == NULL)
        goto done;
    what = "curl_easy_init";
    if ((st.h = curl_easy_init()) == NULL)
        goto done;
    if ((rc = set_options(st.h, &st, o, url, resolve, headers, anchors, &what)) != CURLE_OK)
        goto done;
    what = NULL;
    rc = curl_easy_perform(st.h);
    if (rc != CURLE_OK)
        judge_curl_error(&st, rc, o);
    else if (!st.headers_done)
        fail(&st, FETCH_ERROR, "response ended without a complete header block");
    (void)curl_easy_getinfo(st.h, CURLINFO_RESPONSE_CODE, &out->http_status);

done:
    if (what != NULL)
        fail(&st, FETCH_ERROR, "%s: %s", what, curl_easy_strerror(rc));
    if (st.h != NULL)
        curl_easy_cleanup(st.h);
    curl_slist_free_all(resolve);
    curl_slist_free_all(headers);
    free(entry);
    cafile_put(anchors);
    metrics_fetch(!st.failed, metrics_clock_us() - t0);
    if (st.failed) {
        free(st.body);
        out->status = st.status;
        mts_err_set(err, "%s", st.why.msg);
        return -1;
    }
    if (st.body == NULL && (st.body = calloc(1, 1)) == NULL) { /* an empty 200 body */
        out->status = FETCH_ERROR;
        mts_err_set(err, "out of memory");
        return -1;
    }
    out->status = FETCH_OK;
    out->body = st.body;
    out->body_len = st.len;
    return 0;
}

void
fetch_result_free(struct fetch_result *r)
{
    if (r == NULL)
        return;
    free(r->body);
    r->body = NULL;
    r->body_len = 0;
}

const char *
fetch_status_name(enum fetch_status s)
{
    static const struct nametab names[] = {
        {"ok", FETCH_OK},
        {"http-status", FETCH_HTTP_STATUS},
        {"redirect", FETCH_REDIRECT},
        {"content-type", FETCH_CONTENT_TYPE},
        {"too-large", FETCH_TOO_LARGE},
        {"tls", FETCH_TLS},
        {"timeout", FETCH_TIMEOUT},
        {"connect", FETCH_CONNECT},
        {"error", FETCH_ERROR},
        {NULL, -1},
    };

    return (unsigned)s <= FETCH_ERROR ? nametab_name(names, (int)s) : "unknown";
}
