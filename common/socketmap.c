/*
 * socketmap - Postfix socketmap requests and the MTA-STS policy answer;
 * see socketmap.h.
 */
#include "socketmap.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "domain.h"
#include "mxmatch.h"

const char *
sockmap_reply_name(enum sockmap_reply r)
{
    switch (r) {
    case SOCKMAP_OK:
        return "OK";
    case SOCKMAP_NOTFOUND:
        return "NOTFOUND";
    case SOCKMAP_TEMP:
        return "TEMP";
    case SOCKMAP_PERM:
        return "PERM";
    }
    return "TEMP";
}

/* ------------------------------------------------------------ requests */

static bool
name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '_' || c == '-' || c == '.';
}

int
sockmap_request_split(const char *p, size_t len, char *name, size_t namesz, char *key,
                      size_t keysz, struct mts_err *err)
{
    const char *sp = memchr(p, ' ', len);
    size_t nl, kl;

    if (memchr(p, '\0', len) != NULL) {
        mts_err_set(err, "malformed request: it contains a NUL byte");
        return -1;
    }
    if (sp == NULL) {
        mts_err_set(err, "malformed request: expected \"NAME KEY\"");
        return -1;
    }
    nl = (size_t)(sp - p);
    kl = len - nl - 1;
    if (nl == 0 || nl > SOCKMAP_MAX_NAME || nl >= namesz) {
        mts_err_set(err, "malformed request: the map name is empty or longer than %d bytes",
                    SOCKMAP_MAX_NAME);
        return -1;
    }
    for (size_t i = 0; i < nl; i++) {
        if (!name_char(p[i])) {
            mts_err_set(err, "malformed request: invalid map name");
            return -1;
        }
    }
    if (kl == 0 || kl > SOCKMAP_MAX_KEY || kl >= keysz) {
        mts_err_set(err, "malformed request: the key is empty or longer than %d bytes",
                    SOCKMAP_MAX_KEY);
        return -1;
    }
    memcpy(name, p, nl);
    name[nl] = '\0';
    memcpy(key, sp + 1, kl);
    key[kl] = '\0';
    return 0;
}

/* An IPv4 address has only digits and dots, an IPv6 one a ':': the cheap
 * test first, inet_pton (which a warm lookup showed in its profile) only
 * for what may be one. */
static bool
ip_literal(const char *host)
{
    unsigned char addr[16];

    if (strspn(host, "0123456789.") == strlen(host) && inet_pton(AF_INET, host, addr) == 1)
        return true;
    return strchr(host, ':') != NULL && inet_pton(AF_INET6, host, addr) == 1;
}

/* The key as quoted in a reason: made only on the way to an error. */
#define QUOTED_KEY(q, key) (mts_err_quote((q), sizeof(q), (key), strlen(key)), (q))

enum sockmap_key
sockmap_key_domain(const char *key, char *domain, size_t domainsz, struct mts_err *err)
{
    char host[DOMAIN_NAME_MAX + 2], q[64];
    const char *h = key, *end;
    size_t hl;

    if (key[0] == '[') {
        /* [host] or [host]:port: the host, without MX lookup. */
        h = key + 1;
        end = strchr(h, ']');
        if (end == NULL || (end[1] != '\0' && end[1] != ':')) {
            mts_err_set(err, "key \"%s\": unbalanced brackets", QUOTED_KEY(q, key));
            return SOCKMAP_KEY_NONE;
        }
    } else {
        /* host or host:port */
        end = strchr(key, ':');
        if (end == NULL)
            end = key + strlen(key);
    }
    hl = (size_t)(end - h);
    if (hl == 0 || hl >= sizeof(host)) {
        mts_err_set(err, "key \"%s\": no host name", QUOTED_KEY(q, key));
        return SOCKMAP_KEY_NONE;
    }
    memcpy(host, h, hl);
    host[hl] = '\0';
    if (host[0] == '.') {
        mts_err_set(err, "key \"%s\": a parent-domain form; MTA-STS has no parent fallback",
                    QUOTED_KEY(q, key));
        return SOCKMAP_KEY_NONE;
    }
    if (ip_literal(host) || strncasecmp(host, "ipv6:", 5) == 0) {
        mts_err_set(err, "key \"%s\": an IP address has no MTA-STS policy", QUOTED_KEY(q, key));
        return SOCKMAP_KEY_NONE;
    }
    if (domain_normalize(host, domain, domainsz, err) != 0)
        return SOCKMAP_KEY_NONE;
    return SOCKMAP_KEY_DOMAIN;
}

/* ------------------------------------------------------------ answers */

/* A bounded string: appends that do not fit set over, and nothing more is added. */
struct sbuf {
    char *p;
    size_t cap, len;
    bool over;
};

static void __attribute__((format(printf, 2, 3)))
sb_add(struct sbuf *b, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (b->over)
        return;
    va_start(ap, fmt);
    n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= b->cap - b->len) {
        b->over = true;
        b->p[b->len] = '\0';
        return;
    }
    b->len += (size_t)n;
}

/* sb_add for one string, without printf (the warm answer's parts). */
static void
sb_str(struct sbuf *b, const char *s)
{
    size_t n = strlen(s);

    if (b->over)
        return;
    if (n >= b->cap - b->len) {
        b->over = true;
        b->p[b->len] = '\0';
        return;
    }
    memcpy(b->p + b->len, s, n + 1);
    b->len += n;
}

void
sockmap_reply_text(enum sockmap_reply kind, const char *reason, char *out, size_t outsz)
{
    size_t o;

    if (outsz == 0)
        return;
    o = (size_t)snprintf(out, outsz, "%s ", sockmap_reply_name(kind));
    if (o >= outsz)
        o = outsz - 1;
    for (const char *r = reason; *r != '\0' && o + 1 < outsz; r++) {
        unsigned char c = (unsigned char)*r;
        out[o++] = c < 0x20 || c == 0x7f ? '?' : (char)c;
    }
    out[o] = '\0';
}

static enum sockmap_reply
temp(char *out, size_t outsz, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static enum sockmap_reply
temp(char *out, size_t outsz, const char *fmt, ...)
{
    char why[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    sockmap_reply_text(SOCKMAP_TEMP, why, out, outsz);
    return SOCKMAP_TEMP;
}

/* The policy's patterns, space-separated, cut to fit a reason. */
static void
patterns_text(const struct status_result *r, char *out, size_t outsz)
{
    struct sbuf b = {out, outsz, 0, false};

    out[0] = '\0';
    for (size_t i = 0; i < r->n_mx; i++)
        sb_add(&b, "%s%s", i ? " " : "", r->mx[i]);
    if (r->n_mx == 0)
        sb_add(&b, "none");
}

static void
add_tlsrpt(struct sbuf *b, const struct status_result *r)
{
    sb_add(b, " policy_type=sts policy_domain=%s", r->domain);
    for (size_t i = 0; i < r->n_mx; i++)
        sb_add(b, " mx_host_pattern=%s", r->mx[i]);
    sb_add(b, " { policy_string = version: STSv1 }");
    sb_add(b, " { policy_string = mode: %s }", policy_mode_name(r->mode));
    for (size_t i = 0; i < r->n_mx; i++)
        sb_add(b, " { policy_string = mx: %s }", r->mx[i]);
    sb_add(b, " { policy_string = max_age: %u }", (unsigned)r->max_age);
}

static int
cmp_host(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

enum sockmap_reply
sockmap_answer(const struct sockmap_answer_in *in, char *out, size_t outsz)
{
    const struct status_result *r = in->res;
    struct sbuf b = {out, outsz, 0, false};
    const char *hosts[SOCKMAP_MAX_MX];
    char pats[256];
    int matched = 0;

    /* RFC 7672 through Postfix's own DANE: every MX host is decided by
     * its TLSA records (danemap.h), so DANE wins over MTA-STS (RFC 8461 §2). */
    if (in->dane_only && r->status != STATUS_UNKNOWN) {
        mts_text_copy(out, outsz, "OK dane-only");
        return SOCKMAP_OK;
    }
    switch (r->status) {
    case STATUS_TESTING:
    case STATUS_NONE:
    case STATUS_ABSENT:
    case STATUS_FAILED:
        mts_text_copy(out, outsz, "NOTFOUND ");
        return SOCKMAP_NOTFOUND;
    case STATUS_UNKNOWN:
        /* Nothing valid is cached: a cached policy gives its own mode. */
        if (in->unknown_notfound) {
            mts_text_copy(out, outsz, "NOTFOUND ");
            return SOCKMAP_NOTFOUND;
        }
        return temp(out, outsz, "MTA-STS status of %s unknown: %s", r->domain,
                    r->error[0] ? r->error : "not learnt in time");
    case STATUS_ENFORCE:
        break;
    default:
        return temp(out, outsz, "MTA-STS status of %s unknown", r->domain);
    }
    if (in->n_mx < 0)
        return temp(out, outsz, "MX hosts of %s unknown: %s", r->domain,
                    in->mx_error != NULL && in->mx_error[0] ? in->mx_error : "DNS did not answer");
    /* The matching MX hosts, once each, sorted: the answer does not
     * change with the order DNS gives them in. */
    for (int i = 0; i < in->n_mx && i < SOCKMAP_MAX_MX; i++) {
        bool dup = false;

        if (!mxmatch_any(r->mx, r->n_mx, in->mx[i]))
            continue;
        for (int k = 0; k < matched && !dup; k++)
            dup = strcmp(hosts[k], in->mx[i]) == 0;
        if (!dup)
            hosts[matched++] = in->mx[i];
    }
    qsort(hosts, (size_t)matched, sizeof(hosts[0]), cmp_host);
    sb_str(&b, "OK secure match=");
    for (int i = 0; i < matched; i++) {
        if (i > 0)
            sb_str(&b, ":");
        sb_str(&b, hosts[i]);
    }
    if (matched == 0) {
        patterns_text(r, pats, sizeof(pats));
        return temp(out, outsz, "no MX host of %s matches its MTA-STS policy (mx: %s)",
                    r->domain, pats);
    }
    sb_str(&b, " servername=hostname");
    if (in->tlsrpt)
        add_tlsrpt(&b, r);
    if (b.over)
        return temp(out, outsz, "the policy answer for %s exceeds %zu bytes", r->domain,
                    outsz - 1);
    return SOCKMAP_OK;
}
