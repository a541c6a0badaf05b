/*
 * tlsa - the DANE TLSA records of one MX host (RFC 7672 §2.2, §3.1) and the
 * words of a DANE outcome.
 *
 * SYNOPSIS
 *	struct tlsa_set t;
 *	tlsa_lookup(dns, "mx1.example.com", 25, &deadline, &t);
 *	if (t.state == TLSA_SECURE && t.n_usable > 0) ... DANE applies ...
 *	tlsa_set_text(&t, buf, sizeof(buf));         "3 1 1 9f86...; 2 0 1 ..."
 *	tlsa_parse_rdata(rd, len, &rec);             one record's RDATA
 *
 * DESCRIPTION
 *	tlsa_lookup follows RFC 7672 §2.2: the host's address records are
 *	looked up first (A and AAAA, through dns.h; libunbound's cache makes
 *	this cheap when the probe resolved them a moment ago). Only when they
 *	are DNSSEC-secure is the TLSA RRset at _PORT._tcp.BASE asked for,
 *	where BASE is the name after a secure CNAME expansion of the host
 *	(tried first) and then the host name itself (§2.2.2). The outcome:
 *
 *	  TLSA_INSECURE  the address records, or the TLSA RRset, are not
 *	                 DNSSEC-signed (or the host has no address): no DANE;
 *	  TLSA_NONE      securely proven absent (NXDOMAIN or NODATA): no DANE;
 *	  TLSA_SECURE    a secure RRset: records[] holds them, n_usable counts
 *	                 those SMTP can use (§3.1: DANE-TA(2) and DANE-EE(3),
 *	                 selector 0 or 1, matching type 0, 1 or 2 with a digest
 *	                 of the right length). With n_usable = 0 TLS is still
 *	                 mandatory but unauthenticated (§2.2);
 *	  TLSA_FAILED    the address or TLSA lookup failed (SERVFAIL, bogus,
 *	                 timeout): the host must not be used (§2.2: never a
 *	                 downgrade to "no DANE").
 *
 *	PKIX-TA(0) and PKIX-EE(1) records are kept (shown) but unusable for
 *	SMTP (§3.1.3). Records longer than TLSA_DATA_MAX are dropped and counted
 *	in n_dropped (a full certificate, matching type 0, may be; digests
 *	never are).
 *
 * DIAGNOSTICS
 *	tlsa_lookup always fills out; why holds a sentence for every state
 *	but TLSA_SECURE, in RFC 8460's words where they apply
 *	("dnssec-invalid"). tlsa_parse_rdata returns -1 for RDATA shorter than
 *	4 octets or longer than TLSA_DATA_MAX + 3.
 */
#ifndef MTS_TLSA_H
#define MTS_TLSA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define TLSA_RECS_MAX 8       /* records kept of one RRset */
#define TLSA_DATA_MAX 1024    /* certificate association data kept of one record */
#define TLSA_NAME_MAX 253
#define TLSA_WHY_MAX 256

enum tlsa_state {
    TLSA_INSECURE,
    TLSA_NONE,
    TLSA_SECURE,
    TLSA_FAILED
};

/* RFC 7218 acronyms of the usages SMTP uses. */
#define TLSA_USAGE_PKIX_TA 0
#define TLSA_USAGE_PKIX_EE 1
#define TLSA_USAGE_DANE_TA 2
#define TLSA_USAGE_DANE_EE 3

struct tlsa_rec {
    uint8_t usage, selector, mtype;
    bool usable;              /* for SMTP (see DESCRIPTION) */
    size_t len;
    unsigned char data[TLSA_DATA_MAX];
};

struct tlsa_set {
    enum tlsa_state state;
    char base[TLSA_NAME_MAX + 1];  /* the TLSA base domain (SNI, first reference name) */
    char owner[TLSA_NAME_MAX + 16]; /* _25._tcp.BASE, the RRset asked for last */
    uint32_t ttl;                  /* of the TLSA answer (or the denial) */
    size_t n, n_usable, n_dropped;
    struct tlsa_rec rec[TLSA_RECS_MAX];
    char why[TLSA_WHY_MAX];
};

/*
 * The DANE outcome of one probe of one host (what a probe row records).
 *   none           no DANE for the host (no TLSA, or insecure)
 *   verified       a usable record matched and the chain (DANE-TA: and the
 *                  names) verified
 *   failed         usable records, none matched ("tlsa-invalid")
 *   unusable       a secure RRset without a usable record: TLS mandatory,
 *                  not authenticated
 *   lookup-failed  the TLSA lookup failed ("dnssec-invalid"): the host
 *                  must not be used
 */
enum tlsa_dane {
    TLSA_DANE_NONE,
    TLSA_DANE_VERIFIED,
    TLSA_DANE_FAILED,
    TLSA_DANE_UNUSABLE,
    TLSA_DANE_LOOKUP_FAILED
};

struct dns;

/* Fills out (see DESCRIPTION); host normalised; port 0 means 25. */
void tlsa_lookup(struct dns *d, const char *host, int port, const struct timespec *deadline,
                 struct tlsa_set *out);

/* One record from its RDATA; usable set per §3.1. */
int tlsa_parse_rdata(const unsigned char *rd, size_t len, struct tlsa_rec *out);

/* "3 1 1 <hex>; 2 0 1 <hex>" (digests cut to 16 hex digits and "..." past
 * that: for people), "" for none. */
void tlsa_set_text(const struct tlsa_set *t, char *out, size_t outsz);

/* "3 1 1" for one record. */
void tlsa_rec_params(const struct tlsa_rec *r, char *out, size_t outsz);

/* Does the host have DANE that decides (usable records, or a failed lookup)? */
bool tlsa_dane_applies(enum tlsa_dane d);

const char *tlsa_state_name(enum tlsa_state s);
const char *tlsa_dane_name(enum tlsa_dane d);
/* The code of a DANE word, or -1. */
int tlsa_dane_code(const char *word);

#endif
