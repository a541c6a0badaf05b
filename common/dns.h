/*
 * dns - the one resolver of the process (libunbound): TXT, MX, A, AAAA and
 * TLSA lookups with DNSSEC state and a deadline on every wait.
 *
 * SYNOPSIS
 *	struct dns *d;
 *	dns_open(&opts, &d, &err);
 *	struct timespec dl = clock_deadline_after(5000);
 *	dns_query(d, "_mta-sts.example.com", DNS_TXT, &dl, &ans, &err);
 *	dns_addresses(d, "mta-sts.example.com", &dl, &ans, &err);
 *	dns_answer_free(&ans);
 *	dns_close(d);
 *
 * DESCRIPTION
 *	One context serves every thread. It forwards to the nameservers of a
 *	resolv.conf file or, with resolv_conf NULL or "none", recurses from
 *	the root itself; either way it validates DNSSEC against the trust
 *	anchor file. A background thread delivers results; callers wait on
 *	their own query until their absolute (monotonic, see clock.h)
 *	deadline or timeout_ms from the start of the query, whichever comes
 *	first (a NULL deadline: timeout_ms only), then give up (the query is
 *	cancelled) with DNS_TIMEOUT.
 *
 *	Each answer is one of: DNS_OK (data), DNS_NXDOMAIN and DNS_NODATA
 *	(facts: the name, or the record type, does not exist), or DNS_SERVFAIL,
 *	DNS_TIMEOUT, DNS_BOGUS, DNS_ERROR (we do not know: temporary). Bogus
 *	data is never returned. sec says whether a fact or data was proven by
 *	DNSSEC.
 *
 *	CNAMEs are followed by the resolver; canonical holds the final name.
 *
 * DIAGNOSTICS
 *	dns_open returns -1 with a reason. dns_query and dns_addresses return
 *	0 whenever an answer (any status) was filled in, with a reason in
 *	err for every status but DNS_OK; -1 only for misuse (bad name).
 */
#ifndef MTS_DNS_H
#define MTS_DNS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <time.h>

#include "err.h"

#define DNS_MAX_RRS 64		/* records kept from one answer */

enum dns_type {
    DNS_TXT = 16,
    DNS_MX = 15,
    DNS_A = 1,
    DNS_AAAA = 28,
    DNS_DNSKEY = 48,
    DNS_TLSA = 52
};

enum dns_status {
    DNS_OK,
    DNS_NXDOMAIN,
    DNS_NODATA,
    DNS_SERVFAIL,
    DNS_TIMEOUT,
    DNS_BOGUS,
    DNS_ERROR
};

enum dns_sec {
    DNS_SEC_INSECURE,
    DNS_SEC_SECURE,
    DNS_SEC_BOGUS
};

struct dns_options {
    const char *resolv_conf;	/* NULL or "none": full recursion */
    const char *trust_anchor;	/* DS/DNSKEY file; NULL or "": no DNSSEC */
    const char *unbound_conf;	/* extra libunbound settings file; NULL or "": none */
    int timeout_ms;		/* upper bound on any one wait */
};

struct config;
/* The options of a configuration (resolv_conf, trust_anchor, unbound_conf,
 * dns_timeout_ms): the one place every resolver of the process and of
 * mtasts-ctl gets them from. The strings point into cfg. */
void dns_options_from(const struct config *cfg, struct dns_options *out);

struct dns_rr {
    char *text;			/* TXT: the record (strings joined); MX: host; A/AAAA: address;
				   TLSA: the RDATA as it is (binary) */
    size_t len;			/* length of text (TXT may hold NUL bytes) */
    uint16_t pref;		/* MX preference */
};

struct dns_answer {
    enum dns_status status;
    enum dns_sec sec;
    size_t n;
    struct dns_rr rr[DNS_MAX_RRS];
    char canonical[256];	/* name after CNAMEs, without the trailing dot */
    uint32_t ttl;		/* seconds the answer (or the fact) may be kept */
};

struct dns;

int dns_open(const struct dns_options *o, struct dns **out, struct mts_err *err);
void dns_close(struct dns *d);

int dns_query(struct dns *d, const char *name, enum dns_type type,
              const struct timespec *deadline, struct dns_answer *out, struct mts_err *err);

/* A and AAAA at once: OK if either has addresses. */
int dns_addresses(struct dns *d, const char *name, const struct timespec *deadline,
                  struct dns_answer *out, struct mts_err *err);

void dns_answer_free(struct dns_answer *a);

/*
 * Starts a lookup of name/type and returns at once; its answer goes only
 * into the resolver's cache (and a dns_query of the same name and type
 * meanwhile joins it), so a caller that will need it soon does not wait a
 * whole round trip then. Nothing is reported; a bad name is ignored.
 */
void dns_prefetch(struct dns *d, const char *name, enum dns_type type);

/*
 * Resolver health. libunbound backs a forwarder off when queries to it
 * time out, and then fails every lookup at once, although the forwarder
 * may only be dropping some names (one sender's junk). After a lookup
 * libunbound failed at once (a SERVFAIL within 200 ms: it did not wait for
 * the forwarder) the forwarder is asked directly; if it answers (NOERROR,
 * NXDOMAIN), libunbound has backed it off wrongly: the context is replaced
 * by a fresh one (at most once a second), the lookup tried once more (same
 * deadline) and a warning logged (one per 10 s). A timeout, or a SERVFAIL
 * libunbound waited for, is the name's slowness: no new context, whose
 * empty cache would only cost more lookups. Counts since dns_open:
 */
struct dns_health {
    unsigned backoffs_seen;	/* lookups libunbound failed that the forwarder answered */
    unsigned renewals;		/* fresh contexts taken over because of that */
    unsigned silent_answers;	/* failed lookups the forwarder did not answer either */
    unsigned slow_failures;	/* failed lookups libunbound had waited for: not checked */
    time_t last_backoff;	/* wall clock of the last backoff seen; 0: never */
    time_t last_renewal;	/* and of the last renewal */
    char forwarder[64];		/* the forwarder it concerned */
};
void dns_health(struct dns *d, struct dns_health *out);

/* One sentence on a backed-off forwarder, for mtasts-ctl; false (and "")
 * when none was seen. */
bool dns_health_text(const struct dns_health *h, char *buf, size_t bufsz);

/*
 * Can DNSSEC be validated through this resolver at all? Asks for the trust
 * anchor zone's own DNSKEY set: bogus there means the forwarder strips
 * DNSSEC data (or the anchor is outdated), and then every answer below it
 * would be bogus too. why says so in words, with the fix, for
 * DNS_PATH_STRIPPED (and why it could not tell, for DNS_PATH_UNKNOWN).
 */
enum dns_path {
    DNS_PATH_OK,
    DNS_PATH_STRIPPED,
    DNS_PATH_UNKNOWN
};
enum dns_path dns_check_dnssec_path(struct dns *d, int timeout_ms, char *why, size_t whysz);

/* Is this a fact about the name (data, NXDOMAIN or NODATA), not a failure? */
bool dns_status_is_answer(enum dns_status s);

const char *dns_status_name(enum dns_status s);
const char *dns_sec_name(enum dns_sec s);

#endif
