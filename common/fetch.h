/*
 * fetch - RFC 8461 §3.3: the HTTPS GET of a domain's MTA-STS policy.
 *
 * SYNOPSIS
 *	#include "fetch.h"
 *
 *	int fetch_global_init(struct mts_err *err);
 *	void fetch_global_cleanup(void);
 *	void fetch_reload_trust(void);
 *	int fetch_policy(const struct fetch_options *o, const char *policy_domain,
 *	                 const char *const *addrs, size_t n_addrs,
 *	                 struct fetch_result *out, struct mts_err *err);
 *	void fetch_result_free(struct fetch_result *r);
 *	const char *fetch_status_name(enum fetch_status s);
 *
 * DESCRIPTION
 *	fetch_global_init() runs at startup, before any thread starts;
 *	fetch_global_cleanup() at exit, after they are all gone (libcurl
 *	counts the calls, so each init needs its cleanup).
 *
 *	fetch_policy() GETs https://mta-sts.<policy_domain>/.well-known/
 *	mta-sts.txt and connects only to addrs: the numeric IPv4/IPv6
 *	addresses of mta-sts.<policy_domain> that our DNSSEC-validating
 *	resolver found (at most FETCH_MAX_ADDRS are used; the rest are
 *	ignored). No other resolver is ever asked, no proxy is used, no
 *	redirect is followed, no cache is consulted. The peer must speak TLS
 *	1.2 or newer and present a certificate that chains to o->ca_file (or
 *	the system store when it is NULL or "") and is valid for
 *	mta-sts.<policy_domain>. Only a 200 response with a text/plain
 *	Content-Type (any parameters) and a body of at most POLICY_MAX_BYTES
 *	is accepted. The call blocks for at most about o->total_timeout_ms.
 *	Safe to call from several threads at once: every call has its own
 *	connection and state; only the parsed anchors are shared (read-only).
 *
 *	Choices (each tested in tests/unit/test_fetch.c): any 3xx is
 *	FETCH_REDIRECT, with or without Location; a media type compares
 *	case-insensitively and may carry parameters; two Content-Type headers
 *	are refused; 1xx interim responses are skipped; a wrong status wins
 *	over a too-large declared length; a CA file that cannot be read, or
 *	holds no certificate, is FETCH_ERROR (our setup), not FETCH_TLS
 *	(theirs).
 *
 *	Trust anchors: with an OpenSSL libcurl, the CA file (or libcurl's
 *	built-in bundle) is parsed once and shared by every fetch, parsed
 *	again when the file changes (cafile.h) or after fetch_reload_trust();
 *	each connection still gets a certificate store of its own holding
 *	exactly those anchors, so nothing one fetch sets there reaches another.
 *
 *	On success out->body holds the body bytes (which may contain NULs),
 *	followed by a NUL not counted in body_len; free it with
 *	fetch_result_free(). out->status and out->http_status (0 when no
 *	response arrived) are set on success and failure.
 *
 * DIAGNOSTICS
 *	fetch_global_init() and fetch_policy() return 0 on success, -1 on
 *	failure with a sentence in err (may be NULL) and, for fetch_policy(),
 *	the kind of failure in out->status. Remote text (a Location or
 *	Content-Type value) is quoted with mts_err_quote().
 */
#ifndef MTS_FETCH_H
#define MTS_FETCH_H

#include <stddef.h>

#include "err.h"

#define FETCH_MAX_ADDRS 32 /* addresses of mta-sts.<domain> handed to curl */

struct fetch_options {
    const char *ca_file;     /* PEM trust anchors; NULL or "" = system store */
    long connect_timeout_ms; /* TCP connect and TLS handshake; > 0 */
    long total_timeout_ms;   /* the whole transfer; > 0 */
    const char *user_agent;  /* e.g. "mtasts-milter/0.1.0"; NULL = none */
    unsigned short port;     /* 443; tests use another */
};

enum fetch_status {
    FETCH_OK,
    FETCH_HTTP_STATUS,  /* a final status other than 200 and not 3xx */
    FETCH_REDIRECT,     /* 3xx: not followed (§3.3) */
    FETCH_CONTENT_TYPE, /* missing, repeated, or not text/plain */
    FETCH_TOO_LARGE,    /* body over POLICY_MAX_BYTES */
    FETCH_TLS,          /* handshake, protocol version or certificate */
    FETCH_TIMEOUT,      /* connect or total deadline passed */
    FETCH_CONNECT,      /* no address, or none accepted a connection */
    FETCH_ERROR         /* bad arguments, local setup, malformed HTTP, memory */
};

struct fetch_result {
    enum fetch_status status;
    long http_status;
    char *body;      /* FETCH_OK only; NUL-terminated copy, else NULL */
    size_t body_len; /* not counting the terminating NUL */
};

int fetch_global_init(struct mts_err *err);
void fetch_global_cleanup(void);

/* Trust anchors are parsed once and kept (see cafile.h); a reload drops
 * them, so the next fetch reads the CA file again. */
void fetch_reload_trust(void);

int fetch_policy(const struct fetch_options *o, const char *policy_domain, const char *const *addrs,
                 size_t n_addrs, struct fetch_result *out, struct mts_err *err);

/* Frees the body (body NULL, body_len 0); safe on a zeroed or freed result. */
void fetch_result_free(struct fetch_result *r);

/* "ok", "http-status", "redirect", ...: for logs and the cache. */
const char *fetch_status_name(enum fetch_status s);

#endif
