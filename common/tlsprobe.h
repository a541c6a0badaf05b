/*
 * tlsprobe - one STARTTLS probe of one MX host address, and its grade
 * (RFC 8461 §4.2 certificate rules, RFC 5321 dialogue).
 *
 * SYNOPSIS
 *	struct tlsprobe_options o = {.ca_file = NULL, .ehlo_name = "probe.example"};
 *	struct timespec dl = clock_deadline_after(30000);
 *	struct tlsprobe_result r;
 *	struct tlsprobe_grade g;
 *
 *	tlsprobe_run(&o, "mx1.example.com", "192.0.2.25", 25, &dl, &r);
 *	tlsprobe_grade(&r, &g);
 *	printf("%s: %s (%s)\n", tlsprobe_status_name(r.status), r.reason,
 *	       tlsprobe_grade_name(g.grade));
 *
 * DESCRIPTION
 *	tlsprobe_run connects to address:port (numeric IPv4 or IPv6: name
 *	resolution is dns.c's job), waits for the final 220 line of the
 *	greeting, sends EHLO, looks for STARTTLS in the reply, sends
 *	STARTTLS, and handshakes with SNI = mx_host. It offers TLS 1.0 to 1.3
 *	at OpenSSL security level 0 so that an old server can be *seen* (and
 *	named "TLS too old"), then judges what was negotiated. The chain is
 *	verified against ca_file (or the system store) without aborting the
 *	handshake, and the name is checked separately: DNS-ID
 *	(subjectAltName dNSName) only, never the subject CN; a wildcard only
 *	as the whole left-most label, standing for exactly one label. After
 *	the handshake it sends EHLO again and QUIT. It never sends MAIL,
 *	RCPT or DATA.
 *	Every read is bounded (TLSPROBE_LINE_MAX octets a line,
 *	TLSPROBE_REPLY_LINES_MAX lines a reply) and every wait ends at the
 *	caller's deadline (CLOCK_MONOTONIC, absolute; see clock.h): sockets
 *	are non-blocking and every wait is a poll() recomputed from it.
 *	DANE (RFC 7672): when o->tlsa holds usable records, OpenSSL's DANE
 *	verification replaces WebPKI's for the status: SNI is the TLSA base domain, DANE-EE(3)
 *	matches the leaf without any name or date check (§3.1.1), DANE-TA(2)
 *	needs a chain to the matching certificate with a name matching the
 *	base domain or the MX host (§3.2.2) and valid dates. The chain facts
 *	(chain_valid, chain_flags) are then DANE's; name_match stays the
 *	WebPKI DNS-ID check, shown only. A failure is TLSPROBE_UNTRUSTED with
 *	a reason starting "tlsa-invalid" (RFC 8460's word). WebPKI is then
	judged apart, on the chain the server sent, with the same store and
	the MX host's name (pkix_valid): a route enforcing MTA-STS alone
	(Postfix "secure match=") delivers only on it.
 *	Thread-safe: each call has its own SSL_CTX, socket and buffers; no
 *	state is shared but OpenSSL's own.
 *
 *	tlsprobe_grade is a pure function of a result (see the grade
 *	definitions below).
 *
 * DIAGNOSTICS
 *	tlsprobe_run returns 0 when status is TLSPROBE_OK, else -1; either
 *	way out is filled in: status, the stage reached, reason (one
 *	sentence naming the thing: the reply code, the version offered, the
 *	names the certificate has, OpenSSL's reason), and every fact learnt
 *	before the failure.
 */
#ifndef MTS_TLSPROBE_H
#define MTS_TLSPROBE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define TLSPROBE_PORT 25
/* RFC 5321 §4.5.3.1.5: a reply line is at most 512 octets with CRLF; real
 * servers overshoot a little, so allow slack, but never an unbounded line. */
#define TLSPROBE_LINE_MAX 1000
/* Lines of one multi-line reply (an EHLO reply has ~10-20). */
#define TLSPROBE_REPLY_LINES_MAX 100
#define TLSPROBE_REASON_MAX 512
#define TLSPROBE_HOST_MAX 253    /* a DNS name in text form */
#define TLSPROBE_NAMES_MAX 24    /* certificate DNS names kept (n_names_total counts all) */
#define TLSPROBE_TEXT_MAX 256    /* issuer, subject, quoted replies */
#define TLSPROBE_QUIT_WAIT_MS 2000 /* at most this long for the 221 to QUIT */
#define TLSPROBE_EXPIRY_WARN_DAYS 14 /* a grade note below this many days left */
/* The CPU a hostile server can make one probe spend, bounded: a longer
 * chain is not verified beyond this depth (untrusted); a certificate
 * message over this size ends the handshake; a key over this size in the
 * chain ends the handshake before the key verifies anything; a TLS 1.2 DHE
 * group over this size ends the handshake before any computation with it
 * (each a TLSPROBE_HANDSHAKE whose reason names the bound). Renegotiation
 * is refused: a HelloRequest is answered with no_renegotiation.
 * tests/unit/test_tlsbounds.c holds each bound to its value. */
#define TLSPROBE_VERIFY_DEPTH 10
#define TLSPROBE_CERT_LIST_MAX (64 * 1024)
#define TLSPROBE_KEY_BITS_MAX 16384
#define TLSPROBE_DH_BITS_MAX 8192

/* What went wrong, in the order the dialogue meets it. */
enum tlsprobe_status {
    TLSPROBE_OK,             /* TLS 1.2+, the chain validates, the name matches */
    TLSPROBE_REFUSED,        /* TCP connection refused (RST) */
    TLSPROBE_UNREACHABLE,    /* any other connect error (no route, net down) */
    TLSPROBE_TIMEOUT,        /* the deadline passed; stage says where */
    TLSPROBE_CLOSED,         /* the server closed the connection; stage says where */
    TLSPROBE_REPLY_TOO_LONG, /* a reply line over TLSPROBE_LINE_MAX, or over
                                TLSPROBE_REPLY_LINES_MAX lines (hostile banner) */
    TLSPROBE_BAD_REPLY,      /* not an SMTP reply: no code, mixed codes, NUL,
                                bytes after the 220 to STARTTLS (injection) */
    TLSPROBE_GREETING_REJECT, /* the greeting is 4xx/5xx (reply_code) */
    TLSPROBE_EHLO_REJECT,    /* EHLO answered 4xx/5xx (reply_code) */
    TLSPROBE_NO_STARTTLS,    /* the EHLO reply does not offer STARTTLS */
    TLSPROBE_STARTTLS_REFUSED, /* STARTTLS answered other than 220 (reply_code) */
    TLSPROBE_HANDSHAKE,      /* TLS handshake failed (alert, OpenSSL's reason) */
    TLSPROBE_TLS_TOO_OLD,    /* the server negotiated TLS 1.0/1.1 (or SSL) */
    TLSPROBE_NO_CERT,        /* no server certificate (anonymous suite) */
    TLSPROBE_UNTRUSTED,      /* the chain does not reach a trusted root:
                                self-signed, unknown CA, bad chain */
    TLSPROBE_EXPIRED,        /* a certificate of the chain has expired */
    TLSPROBE_NOT_YET_VALID,  /* a certificate of the chain is not yet valid */
    TLSPROBE_WRONG_NAME,     /* no DNS-ID matches the MX host name */
    TLSPROBE_ERROR           /* local: bad argument, CA file, memory, OpenSSL setup */
};

/* How far the dialogue got: where a timeout or a closed connection happened. */
enum tlsprobe_stage {
    TLSPROBE_STAGE_CONNECT,
    TLSPROBE_STAGE_GREETING,
    TLSPROBE_STAGE_EHLO,
    TLSPROBE_STAGE_STARTTLS,
    TLSPROBE_STAGE_HANDSHAKE,
    TLSPROBE_STAGE_EHLO_TLS, /* EHLO again, inside TLS */
    TLSPROBE_STAGE_QUIT,
    TLSPROBE_STAGE_DONE
};

/* Chain problems seen during verification (all of them, not only the first). */
#define TLSPROBE_CHAIN_SELF_SIGNED 0x01   /* leaf or chain self-signed, not trusted */
#define TLSPROBE_CHAIN_UNKNOWN_CA 0x02    /* issuer not found in the store */
#define TLSPROBE_CHAIN_EXPIRED 0x04
#define TLSPROBE_CHAIN_NOT_YET_VALID 0x08
#define TLSPROBE_CHAIN_OTHER 0x10         /* anything else (bad signature, key too small, ...) */

struct tlsa_set;

struct tlsprobe_options {
    const char *ca_file;   /* PEM file of trusted roots; NULL or "": the system store */
    const char *ehlo_name; /* our name in EHLO; NULL: "localhost" */
    /* The host's TLSA records (tlsa.h); NULL, or a set without a usable
     * record: WebPKI only. With usable records the chain is verified by
     * DANE alone (RFC 7672 §3): see DANE below. */
    const struct tlsa_set *tlsa;
};

struct tlsprobe_result {
    enum tlsprobe_status status;
    enum tlsprobe_stage stage;        /* the stage reached (failed in, or DONE) */
    char reason[TLSPROBE_REASON_MAX]; /* one sentence; "" for OK */
    char mx_host[TLSPROBE_HOST_MAX + 1];
    char address[64];
    int port;
    long elapsed_ms;
    /* The dialogue */
    int reply_code;         /* code of the refusing reply (greeting/EHLO/STARTTLS), else 0 */
    char greeting[TLSPROBE_TEXT_MAX]; /* first greeting line, quoted printable */
    bool starttls_offered;
    /* The session: valid when tls_done */
    bool tls_done;
    int tls_version;        /* wire version: 0x0301 TLS 1.0 ... 0x0304 TLS 1.3 */
    char protocol[16];      /* "TLSv1.3" */
    char cipher[64];        /* the standard (IANA) name, e.g. TLS_AES_256_GCM_SHA384 */
    int cipher_bits;
    char kex_group[32];     /* negotiated group (X25519, secp256r1, ffdhe2048, DH) or "" */
    int kex_bits;           /* size of the server's ephemeral key, 0 if unknown */
    /* The leaf certificate: valid when cert_present */
    bool cert_present;
    char key_type[16];      /* RSA, EC, Ed25519, Ed448, DSA */
    int key_bits;
    char key_curve[32];     /* EC group name, else "" */
    char sig_hash[16];      /* hash of the leaf's signature (sha256, sha1, ...), "" if none */
    char subject_cn[TLSPROBE_TEXT_MAX]; /* shown only: never used to match */
    char issuer[TLSPROBE_TEXT_MAX];     /* one-line issuer DN */
    size_t n_names, n_names_total;
    char names[TLSPROBE_NAMES_MAX][TLSPROBE_HOST_MAX + 1]; /* subjectAltName dNSNames */
    int64_t not_before, not_after; /* Unix times */
    long days_left;                /* from the probe's wall-clock time; negative: expired */
    long verify_code;              /* OpenSSL X509_V_* of the first chain problem, 0 = OK */
    char verify_text[256];
    unsigned chain_flags;          /* TLSPROBE_CHAIN_* */
    bool chain_valid;              /* no chain problem at all */
    bool name_match;               /* a DNS-ID matches mx_host */
    /* DANE: dane_active when usable TLSA records were given to OpenSSL */
    bool dane_active;
    int dane;                      /* enum tlsa_dane: verified or failed when active */
    int dane_depth;                /* chain depth of the matching certificate, -1: none */
    char dane_match[16];           /* the matching record's "usage selector mtype" */
    char dane_base[TLSPROBE_HOST_MAX + 1]; /* the TLSA base domain: SNI */
    /* WebPKI (RFC 8461 §4.2) whatever DANE said: the chain the server sent
     * verifies to ca_file (or the system store), unexpired, and a DNS-ID
     * matches mx_host. Without DANE: chain_valid && name_match. With DANE
     * it is judged apart (X509_verify_cert on the peer's chain), because a
     * route that enforces MTA-STS but not DANE delivers by WebPKI alone. */
    bool pkix_valid;
};

/*
 * Grades, from best to worst. Each is exact: the man page states these.
 *   good       RFC 8461 is met (STARTTLS, TLS 1.2 or newer, a chain that
 *              validates to the CA store, unexpired, a DNS-ID matching the
 *              MX name) and so is the minimal floor after NIST SP 800-52r2:
 *              a NIST cipher suite (AES GCM/CCM/CBC; TLS 1.3 AES suites),
 *              a leaf key of at least 112-bit strength (RSA/DSA >= 2048,
 *              EC >= 224 bits, Ed25519/Ed448), an ephemeral DH key
 *              >= 2048 bits, and a leaf signature hash that is not MD5 or
 *              SHA-1.
 *   weak       RFC 8461 is met (a sender enforcing MTA-STS delivers) but
 *              the floor is not (e.g. a ChaCha20 suite, RSA 1024, SHA-1).
 *   unverified STARTTLS with TLS 1.2 or newer works, but the certificate
 *              does not validate for the MX name (untrusted, expired, not
 *              yet valid, wrong name, none): enough for require=tls, not
 *              for verified-tls or MTA-STS.
 *   fail       STARTTLS with TLS 1.2 or newer cannot be had: no STARTTLS,
 *              STARTTLS refused, handshake failure or timeout, TLS 1.0/1.1
 *              only, a hostile or malformed reply, or the dialogue failed
 *              after the handshake.
 *   unknown    TLS could not be judged: the host could not be reached or
 *              would not talk before STARTTLS (refused, unreachable,
 *              timeout or closed before the STARTTLS reply, a 4xx/5xx
 *              greeting or EHLO reply), or a local error.
 */
enum tlsprobe_grade_word {
    TLSPROBE_GRADE_GOOD,
    TLSPROBE_GRADE_WEAK,
    TLSPROBE_GRADE_UNVERIFIED,
    TLSPROBE_GRADE_FAIL,
    TLSPROBE_GRADE_UNKNOWN
};

#define TLSPROBE_REASONS_MAX 8
#define TLSPROBE_GRADE_REASON_MAX 200

struct tlsprobe_grade {
    enum tlsprobe_grade_word grade;
    bool rfc8461;  /* RFC 8461 §4.2 + TLS 1.2+: an enforcing sender delivers
                      (with DANE: DANE's verification, see DANE above) */
    bool pkix;     /* TLS 1.2+ and pkix_valid: WebPKI alone, whatever DANE
                      said (without DANE it equals rfc8461) */
    bool tls;      /* STARTTLS with TLS 1.2+ (require=tls) */
    bool floor;    /* the NIST SP 800-52r2 floor above */
    size_t n;      /* reasons, worst first; "" never */
    char reasons[TLSPROBE_REASONS_MAX][TLSPROBE_GRADE_REASON_MAX];
};

/* One probe; see DESCRIPTION. port 0 means TLSPROBE_PORT. */
int tlsprobe_run(const struct tlsprobe_options *o, const char *mx_host, const char *address,
                 int port, const struct timespec *deadline, struct tlsprobe_result *out);

/* The grade of a result, with its reasons. Pure: no I/O, no clock. */
void tlsprobe_grade(const struct tlsprobe_result *r, struct tlsprobe_grade *out);

/* Is this standard cipher suite name in NIST SP 800-52r2 (for the version)? */
bool tlsprobe_cipher_nist(const char *standard_name, int tls_version);

/* Words for logs, JSON and the man page (never NULL). */
const char *tlsprobe_status_name(enum tlsprobe_status s);
const char *tlsprobe_stage_name(enum tlsprobe_stage s);
const char *tlsprobe_grade_name(enum tlsprobe_grade_word g);

#endif
