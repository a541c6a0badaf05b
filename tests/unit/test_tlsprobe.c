/*
 * test_tlsprobe - unit tests for common/tlsprobe.c and tlsprobe_grade.c:
 * real STARTTLS servers on the loopback interface, and the grade table.
 *
 * The group setup starts tests/unit/smtp_server.py (see testserver.h) in a
 * scratch directory: it makes a test CA, an untrusted CA and leaf
 * certificates with the openssl CLI and listens on one ephemeral
 * 127.0.0.1 port per behaviour. Setup also binds one port that never
 * listens, for "connection refused". Only 127.0.0.1 is ever contacted.
 * Without python3 or the script the program prints "1..0 # SKIP ...".
 * TEST_TLSPROBE_VERBOSE=1 prints each probe's status, stage and reason.
 *
 * probe: one row per server behaviour: the precise status, the stage,
 *	words the reason must contain, the grade, and a time bound.
 * grade: synthetic results through tlsprobe_grade (pure).
 * nist: cipher suite names through tlsprobe_cipher_nist.
 * singles: the facts of a good probe and the server's view of the
 *	dialogue (EHLO twice, QUIT, never MAIL/RCPT), argument checks, every
 *	enum has a word, eight probes at once from eight threads.
 */
#include "unit.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <sys/socket.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "clock.h"
#include "testserver.h"
#include "tlsa.h"
#include "tlsprobe.h"

#define DEADLINE_MS 10000 /* ordinary rows */
#define SHORT_MS 1000     /* rows that wait for a silent server */
#define HANG_BOUND_S 4.0  /* those must return well within this */
#define THREADS 8

static struct testserver S;
static int refused_fd = -1;
static unsigned short refused_port;
static char ca_file[128];

static int
group_setup(void **state)
{
    struct sockaddr_in sa = {.sin_family = AF_INET};
    socklen_t salen = sizeof(sa);

    (void)state;
    if (testserver_start(&S, "smtp_server.py", "test_tlsprobe") != 0)
        return -1;
    snprintf(ca_file, sizeof(ca_file), "%s/ca.pem", S.dir);
    /* Bound but not listening: a connect gets RST, i.e. "refused". */
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if ((refused_fd = socket(AF_INET, SOCK_STREAM, 0)) < 0 ||
        bind(refused_fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
        getsockname(refused_fd, (struct sockaddr *)&sa, &salen) != 0) {
        testserver_stop(&S);
        return -1;
    }
    refused_port = ntohs(sa.sin_port);
    return 0;
}

static int
group_teardown(void **state)
{
    (void)state;
    if (refused_fd >= 0)
        close(refused_fd);
    testserver_stop(&S);
    return 0;
}

static int
port_of(const char *behaviour)
{
    if (strcmp(behaviour, "refused") == 0)
        return refused_port;
    return atoi(testserver_value(&S, behaviour));
}

static struct tlsprobe_options
options(void)
{
    return (struct tlsprobe_options){.ca_file = ca_file, .ehlo_name = "probe.test"};
}

/* ---------------------------------------------------------- probe table */

struct probe_case {
    const char *label;
    const char *behaviour; /* the server's port; "refused": nothing listens */
    const char *mx;
    int deadline_ms;
    bool system_ca;
    enum tlsprobe_status want;
    enum tlsprobe_stage stage;
    const char *reason;  /* the reason contains these... */
    const char *reason2; /* ...and these (NULL: nothing more) */
    enum tlsprobe_grade_word grade;
};

#define ROW(l, b, mx, st, stage, r, r2, g)                                                         \
    {                                                                                              \
        (l), (b), (mx), DEADLINE_MS, false, (st), (stage), (r), (r2), (g)                          \
    }

static const struct probe_case probe_cases[] = {
    ROW("good certificate, multi-line greeting", "good", "mx.good.test", TLSPROBE_OK,
        TLSPROBE_STAGE_DONE, NULL, NULL, TLSPROBE_GRADE_GOOD),
    ROW("MX name with a trailing dot and capitals", "good", "MX.Good.Test.", TLSPROBE_OK,
        TLSPROBE_STAGE_DONE, NULL, NULL, TLSPROBE_GRADE_GOOD),
    ROW("good server probed under another MX name", "good", "mx.other.test",
        TLSPROBE_WRONG_NAME, TLSPROBE_STAGE_HANDSHAKE, "no DNS-ID matches mx.other.test",
        "names mx.good.test", TLSPROBE_GRADE_UNVERIFIED),
    ROW("STARTTLS not offered", "nostarttls", "mx.good.test", TLSPROBE_NO_STARTTLS,
        TLSPROBE_STAGE_EHLO, "STARTTLS is not offered", NULL, TLSPROBE_GRADE_FAIL),
    ROW("STARTTLS refused with 454", "refuse454", "mx.good.test", TLSPROBE_STARTTLS_REFUSED,
        TLSPROBE_STAGE_STARTTLS, "refused with 454", "TLS not available", TLSPROBE_GRADE_FAIL),
    ROW("expired certificate", "expired", "mx.expired.test", TLSPROBE_EXPIRED,
        TLSPROBE_STAGE_HANDSHAKE, "expired on 2020-02-01", "days ago",
        TLSPROBE_GRADE_UNVERIFIED),
    ROW("certificate not yet valid", "notyet", "mx.notyet.test", TLSPROBE_NOT_YET_VALID,
        TLSPROBE_STAGE_HANDSHAKE, "not valid before 2099-12-01", NULL,
        TLSPROBE_GRADE_UNVERIFIED),
    ROW("certificate for another name", "wrongname", "mx.wrongname.test", TLSPROBE_WRONG_NAME,
        TLSPROBE_STAGE_HANDSHAKE, "no DNS-ID matches mx.wrongname.test", "names other.test",
        TLSPROBE_GRADE_UNVERIFIED),
    ROW("name only in the subject CN: never used", "cnonly", "mx.cnonly.test",
        TLSPROBE_WRONG_NAME, TLSPROBE_STAGE_HANDSHAKE, "names no DNS name",
        "CN \"mx.cnonly.test\" is not used", TLSPROBE_GRADE_UNVERIFIED),
    ROW("self-signed certificate", "selfsigned", "mx.selfsigned.test", TLSPROBE_UNTRUSTED,
        TLSPROBE_STAGE_HANDSHAKE, "self-signed", "self-signed certificate",
        TLSPROBE_GRADE_UNVERIFIED),
    ROW("certificate from a CA not in the store", "untrusted", "mx.untrusted.test",
        TLSPROBE_UNTRUSTED, TLSPROBE_STAGE_HANDSHAKE, "unknown CA",
        "issuer \"CN=untrusted other CA\"", TLSPROBE_GRADE_UNVERIFIED),
    ROW("wildcard *.mx.test matches a.mx.test", "wildcard", "a.mx.test", TLSPROBE_OK,
        TLSPROBE_STAGE_DONE, NULL, NULL, TLSPROBE_GRADE_GOOD),
    ROW("wildcard *.mx.test does not match b.a.mx.test", "wildcard", "b.a.mx.test",
        TLSPROBE_WRONG_NAME, TLSPROBE_STAGE_HANDSHAKE, "no DNS-ID matches b.a.mx.test",
        "names *.mx.test", TLSPROBE_GRADE_UNVERIFIED),
    ROW("wildcard *.mx.test does not match mx.test", "wildcard", "mx.test",
        TLSPROBE_WRONG_NAME, TLSPROBE_STAGE_HANDSHAKE, "no DNS-ID matches mx.test", NULL,
        TLSPROBE_GRADE_UNVERIFIED),
    ROW("TLS 1.0 only", "tls10", "mx.good.test", TLSPROBE_TLS_TOO_OLD, TLSPROBE_STAGE_HANDSHAKE,
        "negotiated TLSv1 though", "TLS 1.2 or newer is required", TLSPROBE_GRADE_FAIL),
    ROW("TLS 1.1 only", "tls11", "mx.good.test", TLSPROBE_TLS_TOO_OLD, TLSPROBE_STAGE_HANDSHAKE,
        "negotiated TLSv1.1 though", NULL, TLSPROBE_GRADE_FAIL),
    ROW("greeting line of 100000 octets, no CRLF", "longline", "mx.good.test",
        TLSPROBE_REPLY_TOO_LONG, TLSPROBE_STAGE_GREETING, "a line longer than 1000 octets",
        "greeting", TLSPROBE_GRADE_FAIL),
    ROW("greeting of never-ending 220- lines", "manylines", "mx.good.test",
        TLSPROBE_REPLY_TOO_LONG, TLSPROBE_STAGE_GREETING, "more than 100 lines", "greeting",
        TLSPROBE_GRADE_FAIL),
    ROW("greeting of 5000 lines of 900 octets, then 220", "hugebanner", "mx.good.test",
        TLSPROBE_REPLY_TOO_LONG, TLSPROBE_STAGE_GREETING, "more than 100 lines", NULL,
        TLSPROBE_GRADE_FAIL),
    ROW("greeting of binary bytes (NUL, 0xff, ESC)", "binary", "mx.good.test",
        TLSPROBE_BAD_REPLY, TLSPROBE_STAGE_GREETING, "not an SMTP reply", "\\x00",
        TLSPROBE_GRADE_FAIL),
    {"220- lines dripping in under every bound", "drip", "mx.good.test", SHORT_MS, false,
     TLSPROBE_TIMEOUT, TLSPROBE_STAGE_GREETING, "lines of a reply came, never its last line",
     "still greeting you, slowly", TLSPROBE_GRADE_UNKNOWN},
    ROW("220- then 250 in one reply", "mixed", "mx.good.test", TLSPROBE_BAD_REPLY,
        TLSPROBE_STAGE_GREETING, "reply codes 220 and 250 mixed", NULL, TLSPROBE_GRADE_FAIL),
    ROW("554 greeting", "greet554", "mx.good.test", TLSPROBE_GREETING_REJECT,
        TLSPROBE_STAGE_GREETING, "greeting is 554", "no service for you",
        TLSPROBE_GRADE_UNKNOWN),
    ROW("EHLO answered 550", "ehlo550", "mx.good.test", TLSPROBE_EHLO_REJECT, TLSPROBE_STAGE_EHLO,
        "EHLO answered 550", "not you", TLSPROBE_GRADE_UNKNOWN),
    {"accepts, never a greeting", "silent", "mx.good.test", SHORT_MS, false, TLSPROBE_TIMEOUT,
     TLSPROBE_STAGE_GREETING, "waiting for the greeting", "timed out after", TLSPROBE_GRADE_UNKNOWN},
    {"hangs after the 220 to STARTTLS", "hangtls", "mx.good.test", SHORT_MS, false,
     TLSPROBE_TIMEOUT, TLSPROBE_STAGE_HANDSHAKE, "in the TLS handshake", "timed out after",
     TLSPROBE_GRADE_FAIL},
    ROW("bytes after the 220 to STARTTLS (injection)", "inject", "mx.good.test",
        TLSPROBE_BAD_REPLY, TLSPROBE_STAGE_STARTTLS, "after the 220 to STARTTLS",
        "250 injected", TLSPROBE_GRADE_FAIL),
    ROW("connection refused", "refused", "mx.good.test", TLSPROBE_REFUSED,
        TLSPROBE_STAGE_CONNECT, "refused", "127.0.0.1", TLSPROBE_GRADE_UNKNOWN),
    {"test CA not in the system store", "good", "mx.good.test", DEADLINE_MS, true,
     TLSPROBE_UNTRUSTED, TLSPROBE_STAGE_HANDSHAKE, "unknown CA", "probe test CA",
     TLSPROBE_GRADE_UNVERIFIED},
};

static void
check_reason(const struct tlsprobe_result *r, const char *want)
{
    if (want != NULL && strstr(r->reason, want) == NULL)
        fail_msg("reason \"%s\" does not contain \"%s\"", r->reason, want);
}

static void
run_probe_case(void **state)
{
    const struct probe_case *c = *state;
    struct tlsprobe_options o = options();
    struct tlsprobe_result *r = unit_alloc(sizeof(*r));
    struct tlsprobe_grade *g = unit_alloc(sizeof(*g));
    int port = port_of(c->behaviour);
    struct timespec dl;
    double t0;
    int rc;

    if (port == 0) {
        /* Said, not skipped: cmocka's TAP "not ok # SKIP" counts as a failure. */
        fprintf(stderr, "# test_tlsprobe: this OpenSSL cannot serve %s (%s): not tested\n",
                c->behaviour, testserver_value(&S, strcmp(c->behaviour, "tls10") == 0 ?
                                                       "tls10_note" : "tls11_note"));
        return;
    }
    if (c->system_ca)
        o.ca_file = NULL;
    t0 = testserver_now();
    dl = clock_deadline_after(c->deadline_ms);
    rc = tlsprobe_run(&o, c->mx, "127.0.0.1", port, &dl, r);
    tlsprobe_grade(r, g);
    if (getenv("TEST_TLSPROBE_VERBOSE") != NULL)
        fprintf(stderr, "# %s: %s/%s %.2f s grade %s: %s | %s\n", c->label,
                tlsprobe_status_name(r->status), tlsprobe_stage_name(r->stage),
                testserver_now() - t0, tlsprobe_grade_name(g->grade), r->reason, g->reasons[0]);
    if (c->deadline_ms == SHORT_MS && testserver_now() - t0 > HANG_BOUND_S)
        fail_msg("took %.1f s with a %d ms deadline", testserver_now() - t0, SHORT_MS);
    if (r->status != c->want)
        fail_msg("status %s, want %s (%s)", tlsprobe_status_name(r->status),
                 tlsprobe_status_name(c->want), r->reason);
    assert_int_equal(rc, c->want == TLSPROBE_OK ? 0 : -1);
    if (r->stage != c->stage)
        fail_msg("stage %s, want %s", tlsprobe_stage_name(r->stage), tlsprobe_stage_name(c->stage));
    if (c->want == TLSPROBE_OK)
        assert_string_equal(r->reason, "");
    else if (r->reason[0] == '\0')
        fail_msg("failed without a reason");
    check_reason(r, c->reason);
    check_reason(r, c->reason2);
    if (g->grade != c->grade)
        fail_msg("grade %s, want %s (%s)", tlsprobe_grade_name(g->grade),
                 tlsprobe_grade_name(c->grade), g->reasons[0]);
    assert_true(g->n > 0);
}

/* ---------------------------------------------------------- grade table */

enum shape { S_GOOD, S_NO_STARTTLS, S_REFUSED, S_TIMEOUT_GREETING, S_TIMEOUT_HANDSHAKE };

struct grade_case {
    const char *label;
    enum shape shape;
    int version;
    const char *cipher;
    const char *key_type;
    int key_bits;
    const char *sig_hash;
    const char *kex_group;
    int kex_bits;
    enum tlsprobe_status status; /* after the handshake: the certificate verdict */
    long days_left;
    enum tlsprobe_grade_word want;
    bool rfc8461, tls, floor;
    const char *reason; /* some reason contains it */
};

static const struct grade_case grade_cases[] = {
    {"TLS 1.3 AES-GCM, P-256, SHA-256", S_GOOD, 0x0304, "TLS_AES_128_GCM_SHA256", "EC", 256,
     "SHA256", "X25519", 253, TLSPROBE_OK, 60, TLSPROBE_GRADE_GOOD, true, true, true,
     "TLSv1.3"},
    {"TLS 1.2 ECDHE-RSA AES-256-GCM, RSA 2048", S_GOOD, 0x0303,
     "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384", "RSA", 2048, "SHA256", "secp256r1", 256,
     TLSPROBE_OK, 60, TLSPROBE_GRADE_GOOD, true, true, true, NULL},
    {"TLS 1.3 ChaCha20: not a NIST suite", S_GOOD, 0x0304, "TLS_CHACHA20_POLY1305_SHA256", "EC",
     256, "SHA256", "X25519", 253, TLSPROBE_OK, 60, TLSPROBE_GRADE_WEAK, true, true, false,
     "not in NIST SP 800-52r2"},
    {"RSA 1024 key", S_GOOD, 0x0303, "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "RSA", 1024,
     "SHA256", "secp256r1", 256, TLSPROBE_OK, 60, TLSPROBE_GRADE_WEAK, true, true, false,
     "RSA 1024 bits is below 112-bit"},
    {"SHA-1 signature", S_GOOD, 0x0303, "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "RSA", 2048,
     "SHA1", "secp256r1", 256, TLSPROBE_OK, 60, TLSPROBE_GRADE_WEAK, true, true, false,
     "signed with SHA1"},
    {"DHE with a 1024-bit group", S_GOOD, 0x0303, "TLS_DHE_RSA_WITH_AES_128_GCM_SHA256", "RSA",
     2048, "SHA256", "DH", 1024, TLSPROBE_OK, 60, TLSPROBE_GRADE_WEAK, true, true, false,
     "ephemeral DH key of 1024 bits"},
    {"3DES in TLS 1.2", S_GOOD, 0x0303, "TLS_RSA_WITH_3DES_EDE_CBC_SHA", "RSA", 2048, "SHA256",
     "", 0, TLSPROBE_OK, 60, TLSPROBE_GRADE_WEAK, true, true, false, "3DES"},
    {"expires in 3 days: a note, still good", S_GOOD, 0x0304, "TLS_AES_256_GCM_SHA384", "EC",
     384, "SHA384", "secp384r1", 384, TLSPROBE_OK, 3, TLSPROBE_GRADE_GOOD, true, true, true,
     "expires in under 14 days (3 days left)"},
    {"expired", S_GOOD, 0x0304, "TLS_AES_256_GCM_SHA384", "EC", 256, "SHA256", "X25519", 253,
     TLSPROBE_EXPIRED, -5, TLSPROBE_GRADE_UNVERIFIED, false, true, true, "does not validate"},
    {"wrong name, weak suite: unverified", S_GOOD, 0x0304, "TLS_CHACHA20_POLY1305_SHA256", "EC",
     256, "SHA256", "X25519", 253, TLSPROBE_WRONG_NAME, 60, TLSPROBE_GRADE_UNVERIFIED, false,
     true, false, "wrong-name"},
    {"untrusted", S_GOOD, 0x0303, "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", "EC", 256, "SHA256",
     "X25519", 253, TLSPROBE_UNTRUSTED, 60, TLSPROBE_GRADE_UNVERIFIED, false, true, true,
     "untrusted"},
    {"TLS 1.1 negotiated", S_GOOD, 0x0302, "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA", "EC", 256,
     "SHA256", "X25519", 253, TLSPROBE_TLS_TOO_OLD, 60, TLSPROBE_GRADE_FAIL, false, false,
     false, "tls-too-old"},
    {"EHLO inside TLS refused", S_GOOD, 0x0304, "TLS_AES_128_GCM_SHA256", "EC", 256, "SHA256",
     "X25519", 253, TLSPROBE_EHLO_REJECT, 60, TLSPROBE_GRADE_FAIL, false, false, false,
     "after the TLS handshake"},
    {"no STARTTLS", S_NO_STARTTLS, 0, "", "", 0, "", "", 0, TLSPROBE_NO_STARTTLS, 0,
     TLSPROBE_GRADE_FAIL, false, false, false, "no-starttls"},
    {"connection refused", S_REFUSED, 0, "", "", 0, "", "", 0, TLSPROBE_REFUSED, 0,
     TLSPROBE_GRADE_UNKNOWN, false, false, false, "refused"},
    {"timeout waiting for the greeting", S_TIMEOUT_GREETING, 0, "", "", 0, "", "", 0,
     TLSPROBE_TIMEOUT, 0, TLSPROBE_GRADE_UNKNOWN, false, false, false, "timeout"},
    {"timeout in the handshake", S_TIMEOUT_HANDSHAKE, 0, "", "", 0, "", "", 0, TLSPROBE_TIMEOUT,
     0, TLSPROBE_GRADE_FAIL, false, false, false, "timeout"},
};

static void
run_grade_case(void **state)
{
    const struct grade_case *c = *state;
    struct tlsprobe_result *r = unit_alloc(sizeof(*r));
    struct tlsprobe_grade *g = unit_alloc(sizeof(*g));
    bool found = false;

    memset(r, 0, sizeof(*r));
    snprintf(r->mx_host, sizeof(r->mx_host), "mx.example.test");
    r->status = c->status;
    snprintf(r->reason, sizeof(r->reason), "%s", c->status == TLSPROBE_OK ? "" : "the reason");
    switch (c->shape) {
    case S_GOOD:
        r->stage = c->status == TLSPROBE_OK ? TLSPROBE_STAGE_DONE : TLSPROBE_STAGE_HANDSHAKE;
        if (c->status == TLSPROBE_EHLO_REJECT)
            r->stage = TLSPROBE_STAGE_EHLO_TLS;
        r->starttls_offered = r->tls_done = r->cert_present = true;
        r->tls_version = c->version;
        snprintf(r->protocol, sizeof(r->protocol), "%s",
                 c->version == 0x0304 ? "TLSv1.3" : c->version == 0x0303 ? "TLSv1.2" : "TLSv1.1");
        snprintf(r->cipher, sizeof(r->cipher), "%s", c->cipher);
        snprintf(r->key_type, sizeof(r->key_type), "%s", c->key_type);
        r->key_bits = c->key_bits;
        snprintf(r->sig_hash, sizeof(r->sig_hash), "%s", c->sig_hash);
        snprintf(r->kex_group, sizeof(r->kex_group), "%s", c->kex_group);
        r->kex_bits = c->kex_bits;
        r->days_left = c->days_left;
        r->chain_valid = c->status != TLSPROBE_UNTRUSTED && c->status != TLSPROBE_EXPIRED;
        r->name_match = c->status != TLSPROBE_WRONG_NAME;
        break;
    case S_NO_STARTTLS:
        r->stage = TLSPROBE_STAGE_EHLO;
        break;
    case S_REFUSED:
        r->stage = TLSPROBE_STAGE_CONNECT;
        break;
    case S_TIMEOUT_GREETING:
        r->stage = TLSPROBE_STAGE_GREETING;
        break;
    case S_TIMEOUT_HANDSHAKE:
        r->stage = TLSPROBE_STAGE_HANDSHAKE;
        r->starttls_offered = true;
        break;
    }
    tlsprobe_grade(r, g);
    if (g->grade != c->want)
        fail_msg("grade %s, want %s (%s)", tlsprobe_grade_name(g->grade),
                 tlsprobe_grade_name(c->want), g->reasons[0]);
    assert_int_equal(g->rfc8461, c->rfc8461);
    assert_int_equal(g->tls, c->tls);
    if (c->shape == S_GOOD && g->tls)
        assert_int_equal(g->floor, c->floor);
    assert_true(g->n > 0 && g->n <= TLSPROBE_REASONS_MAX);
    for (size_t i = 0; i < g->n; i++)
        found = found || c->reason == NULL || strstr(g->reasons[i], c->reason) != NULL;
    if (!found)
        fail_msg("no reason contains \"%s\" (first: %s)", c->reason, g->reasons[0]);
}

/* ---------------------------------------------------------- NIST table */

struct nist_case {
    const char *label; /* the suite */
    int version;
    bool want;
};

static const struct nist_case nist_cases[] = {
    {"TLS_AES_128_GCM_SHA256", 0x0304, true},
    {"TLS_AES_256_GCM_SHA384", 0x0304, true},
    {"TLS_AES_128_CCM_8_SHA256", 0x0304, true},
    {"TLS_CHACHA20_POLY1305_SHA256", 0x0304, false},
    {"TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", 0x0303, true},
    {"TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384", 0x0303, true},
    {"TLS_DHE_RSA_WITH_AES_128_CCM", 0x0303, true},
    {"TLS_RSA_WITH_AES_128_CBC_SHA", 0x0303, true},
    {"TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256", 0x0303, false},
    {"TLS_ECDHE_RSA_WITH_CAMELLIA_128_CBC_SHA256", 0x0303, false},
    {"TLS_RSA_WITH_3DES_EDE_CBC_SHA", 0x0303, false},
    {"TLS_ECDHE_PSK_WITH_AES_128_CBC_SHA256", 0x0303, false},
    {"TLS_DH_anon_WITH_AES_128_GCM_SHA256", 0x0303, false},
    {"TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA", 0x0301, false},
};

static void
run_nist_case(void **state)
{
    const struct nist_case *c = *state;

    assert_int_equal(tlsprobe_cipher_nist(c->label, c->version), c->want);
}

/* ---------------------------------------------------------- singles */

static void
test_good_facts(void **state)
{
    struct tlsprobe_options o = options();
    struct tlsprobe_result *r = unit_alloc(sizeof(*r));
    struct timespec dl = clock_deadline_after(DEADLINE_MS);
    int ehlo_before = testserver_count(&S, "server.log", "good EHLO probe.test");
    int quit_before = testserver_count(&S, "server.log", "good QUIT");

    (void)state;
    if (tlsprobe_run(&o, "mx.good.test", "127.0.0.1", port_of("good"), &dl, r) != 0)
        fail_msg("%s", r->reason);
    assert_true(r->starttls_offered && r->tls_done && r->cert_present);
    assert_true(r->chain_valid && r->name_match);
    assert_int_equal(r->verify_code, 0);
    assert_int_equal(r->chain_flags, 0);
    assert_string_equal(r->protocol, "TLSv1.3");
    assert_int_equal(r->tls_version, 0x0304);
    assert_true(strncmp(r->cipher, "TLS_AES_", 8) == 0);
    assert_true(r->cipher_bits >= 128);
    assert_string_equal(r->key_type, "EC");
    assert_int_equal(r->key_bits, 256);
    assert_string_equal(r->key_curve, "prime256v1");
    assert_string_equal(r->sig_hash, "SHA256");
    assert_true(r->kex_group[0] != '\0');
    assert_int_equal(r->n_names, 1);
    assert_int_equal(r->n_names_total, 1);
    assert_string_equal(r->names[0], "mx.good.test");
    assert_string_equal(r->subject_cn, "mx.good.test");
    assert_string_equal(r->issuer, "CN=probe test CA");
    assert_true(r->days_left == 1 || r->days_left == 2);
    assert_true(r->not_after > r->not_before && r->not_before > 0);
    assert_string_equal(r->greeting, "220-mx.good.test ESMTP");
    assert_string_equal(r->mx_host, "mx.good.test");
    assert_string_equal(r->address, "127.0.0.1");
    assert_int_equal(r->port, port_of("good"));
    assert_true(r->elapsed_ms >= 0 && r->elapsed_ms < DEADLINE_MS);
    /* The server saw EHLO twice (before and inside TLS), and QUIT. */
    for (int i = 0; i < 100 && testserver_count(&S, "server.log", "good QUIT") == quit_before; i++)
        testserver_sleep_ms(20);
    assert_int_equal(testserver_count(&S, "server.log", "good EHLO probe.test"), ehlo_before + 2);
    assert_int_equal(testserver_count(&S, "server.log", "good QUIT"), quit_before + 1);
}

/* ------------------------------------------------------------ DANE */

/* A secure TLSA set of one record: usage, selector 1 (SPKI), mtype 1
 * (SHA-256; mtype 0: the key itself) of a certificate in the server's
 * directory. */
static void
tlsa_of_m(struct tlsa_set *t, uint8_t usage, uint8_t mtype, const char *pem, const char *base)
{
    char path[160];
    FILE *f;
    X509 *x;
    unsigned char *der = NULL, rd[3 + 512] = {usage, 1, mtype};
    unsigned int mdlen = 0;
    int len;

    snprintf(path, sizeof(path), "%s/%s", S.dir, pem);
    assert_non_null(f = fopen(path, "r"));
    assert_non_null(x = PEM_read_X509(f, NULL, NULL, NULL));
    fclose(f);
    assert_true((len = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(x), &der)) > 0);
    if (mtype == 1) {
        assert_int_equal(EVP_Digest(der, (size_t)len, rd + 3, &mdlen, EVP_sha256(), NULL), 1);
    } else {
        assert_true((size_t)len <= sizeof(rd) - 3);
        memcpy(rd + 3, der, (size_t)len);
        mdlen = (unsigned int)len;
    }
    OPENSSL_free(der);
    X509_free(x);
    memset(t, 0, sizeof(*t));
    t->state = TLSA_SECURE;
    snprintf(t->base, sizeof(t->base), "%s", base);
    snprintf(t->owner, sizeof(t->owner), "_25._tcp.%s", base);
    assert_int_equal(tlsa_parse_rdata(rd, 3 + mdlen, &t->rec[0]), 0);
    t->n = t->n_usable = 1;
}

static void
tlsa_of(struct tlsa_set *t, uint8_t usage, const char *pem, const char *base)
{
    tlsa_of_m(t, usage, 1, pem, base);
}

static void
dane_probe(const char *behaviour, const char *host, const struct tlsa_set *t,
           struct tlsprobe_result *r, struct tlsprobe_grade *g)
{
    struct tlsprobe_options o = options();
    struct timespec dl = clock_deadline_after(DEADLINE_MS);

    o.tlsa = t;
    (void)tlsprobe_run(&o, host, "127.0.0.1", port_of(behaviour), &dl, r);
    tlsprobe_grade(r, g);
}

static bool
has_reason(const struct tlsprobe_grade *g, const char *what)
{
    for (size_t i = 0; i < g->n; i++)
        if (strstr(g->reasons[i], what) != NULL)
            return true;
    return false;
}

/* WebPKI judged beside DANE (pkix_valid): a route that enforces MTA-STS
 * but not DANE (Postfix "secure match=") delivers only on it. */
static void
test_dane_pkix(void **state)
{
    struct tlsprobe_result *r = unit_alloc(sizeof(*r));
    struct tlsprobe_grade g;
    struct tlsa_set *t = unit_alloc(sizeof(*t));

    (void)state;
    /* A self-signed DANE-EE host: DANE verifies, WebPKI does not. */
    tlsa_of(t, TLSA_USAGE_DANE_EE, "selfsigned.pem", "mx.selfsigned.test");
    dane_probe("selfsigned", "mx.selfsigned.test", t, r, &g);
    assert_int_equal(r->dane, TLSA_DANE_VERIFIED);
    assert_true(g.rfc8461);
    assert_false(r->pkix_valid);
    assert_false(g.pkix);
    assert_true(has_reason(&g, "not valid for mx.selfsigned.test by WebPKI"));
    /* A CA-signed certificate for the name whose key the record names: both. */
    tlsa_of(t, TLSA_USAGE_DANE_EE, "good.pem", "mx.good.test");
    dane_probe("good", "mx.good.test", t, r, &g);
    assert_int_equal(r->dane, TLSA_DANE_VERIFIED);
    assert_true(r->pkix_valid);
    assert_true(g.pkix);
    /* DANE-TA 2 1 0 on the trusted CA: both as well. */
    tlsa_of_m(t, TLSA_USAGE_DANE_TA, 0, "ca.pem", "mx.good.test");
    dane_probe("good", "mx.good.test", t, r, &g);
    assert_int_equal(r->dane, TLSA_DANE_VERIFIED);
    assert_true(g.pkix);
    /* DANE-EE ignores names and dates; WebPKI does not. */
    tlsa_of(t, TLSA_USAGE_DANE_EE, "wrongname.pem", "mx.elsewhere.test");
    dane_probe("wrongname", "mx.elsewhere.test", t, r, &g);
    assert_int_equal(r->dane, TLSA_DANE_VERIFIED);
    assert_false(g.pkix);
    tlsa_of(t, TLSA_USAGE_DANE_EE, "expired.pem", "mx.expired.test");
    dane_probe("expired", "mx.expired.test", t, r, &g);
    assert_int_equal(r->dane, TLSA_DANE_VERIFIED);
    assert_false(g.pkix);
    /* Without DANE, pkix is what rfc8461 judges. */
    dane_probe("good", "mx.good.test", NULL, r, &g);
    assert_false(r->dane_active);
    assert_true(g.rfc8461 && g.pkix);
    dane_probe("selfsigned", "mx.selfsigned.test", NULL, r, &g);
    assert_false(g.rfc8461 || g.pkix);
}

/* RFC 7672 §3.1.1: DANE-EE authenticates the leaf's key alone: a
 * self-signed certificate, a wrong name and an expired certificate all
 * verify when the key matches; §3.1 WebPKI does not rescue a mismatch. */
static void
test_dane(void **state)
{
    struct tlsprobe_result *r = unit_alloc(sizeof(*r));
    struct tlsprobe_grade g;
    struct tlsa_set *t = unit_alloc(sizeof(*t));

    (void)state;
    tlsa_of(t, TLSA_USAGE_DANE_EE, "selfsigned.pem", "mx.selfsigned.test");
    dane_probe("selfsigned", "mx.selfsigned.test", t, r, &g);
    assert_int_equal(r->status, TLSPROBE_OK);
    assert_true(r->dane_active);
    assert_int_equal(r->dane, TLSA_DANE_VERIFIED);
    assert_string_equal(r->dane_match, "3 1 1");
    assert_int_equal(r->dane_depth, 0);
    assert_int_equal(g.grade, TLSPROBE_GRADE_GOOD);
    assert_true(g.rfc8461);

    tlsa_of(t, TLSA_USAGE_DANE_EE, "wrongname.pem", "mx.elsewhere.test");
    dane_probe("wrongname", "mx.elsewhere.test", t, r, &g);
    assert_int_equal(r->dane, TLSA_DANE_VERIFIED);
    assert_false(r->name_match); /* shown, not used */
    assert_int_equal(g.grade, TLSPROBE_GRADE_GOOD);

    tlsa_of(t, TLSA_USAGE_DANE_EE, "expired.pem", "mx.expired.test");
    dane_probe("expired", "mx.expired.test", t, r, &g);
    assert_int_equal(r->dane, TLSA_DANE_VERIFIED);
    assert_int_equal(r->status, TLSPROBE_OK);

    /* A WebPKI-valid certificate whose key the record does not name. */
    tlsa_of(t, TLSA_USAGE_DANE_EE, "selfsigned.pem", "mx.good.test");
    dane_probe("good", "mx.good.test", t, r, &g);
    assert_int_equal(r->status, TLSPROBE_UNTRUSTED);
    assert_int_equal(r->dane, TLSA_DANE_FAILED);
    assert_non_null(strstr(r->reason, "tlsa-invalid"));
    assert_int_equal(g.grade, TLSPROBE_GRADE_UNVERIFIED);
    assert_false(g.rfc8461);

    /* DANE-TA 2 1 1 needs the TA in the chain; this server sends only its
     * leaf (the world's daneta.test sends its CA). */
    tlsa_of(t, TLSA_USAGE_DANE_TA, "ca.pem", "mx.good.test");
    dane_probe("good", "mx.good.test", t, r, &g);
    assert_int_equal(r->dane, TLSA_DANE_FAILED);
    /* 2 1 0 carries the TA's key itself: the chain is built to it, and
     * names are checked (RFC 7672 §3.2.2). */
    tlsa_of_m(t, TLSA_USAGE_DANE_TA, 0, "ca.pem", "mx.good.test");
    dane_probe("good", "mx.good.test", t, r, &g);
    assert_int_equal(r->dane, TLSA_DANE_VERIFIED);
    assert_string_equal(r->dane_match, "2 1 0");
    assert_true(r->dane_depth >= 0);
    tlsa_of_m(t, TLSA_USAGE_DANE_TA, 0, "ca.pem", "mx.elsewhere.test");
    dane_probe("wrongname", "mx.elsewhere.test", t, r, &g);
    assert_int_equal(r->dane, TLSA_DANE_FAILED);
    assert_non_null(strstr(r->reason, "certificate-host-mismatch"));
    /* ... and dates: the expired leaf of the same CA. */
    tlsa_of_m(t, TLSA_USAGE_DANE_TA, 0, "ca.pem", "mx.expired.test");
    dane_probe("expired", "mx.expired.test", t, r, &g);
    assert_int_equal(r->dane, TLSA_DANE_FAILED);
    assert_non_null(strstr(r->reason, "certificate-expired"));

    /* PKIX-EE only: unusable, so no DANE: WebPKI as before (§3.1.3). */
    tlsa_of(t, TLSA_USAGE_PKIX_EE, "good.pem", "mx.good.test");
    t->n_usable = 0;
    assert_false(t->rec[0].usable);
    dane_probe("good", "mx.good.test", t, r, &g);
    assert_false(r->dane_active);
    assert_int_equal(r->status, TLSPROBE_OK);
}

/* Runs last but one: whatever ran before, no probe ever sent MAIL, RCPT or DATA. */
static void
test_never_mail(void **state)
{
    (void)state;
    assert_int_equal(testserver_count(&S, "server.log", " MAIL"), 0);
    assert_int_equal(testserver_count(&S, "server.log", " RCPT"), 0);
    assert_int_equal(testserver_count(&S, "server.log", " DATA"), 0);
    assert_true(testserver_count(&S, "server.log", " QUIT") > 5);
}

static void
test_bad_arguments(void **state)
{
    struct tlsprobe_options o = options();
    struct tlsprobe_result *r = unit_alloc(sizeof(*r));
    struct timespec dl = clock_deadline_after(DEADLINE_MS);
    int port = port_of("good");

    (void)state;
    assert_int_equal(tlsprobe_run(&o, "mx..bad", "127.0.0.1", port, &dl, r), -1);
    assert_int_equal(r->status, TLSPROBE_ERROR);
    check_reason(r, "invalid MX host name");
    assert_int_equal(tlsprobe_run(&o, "mx.good.test", "localhost", port, &dl, r), -1);
    assert_int_equal(r->status, TLSPROBE_ERROR);
    check_reason(r, "not a numeric IPv4 or IPv6 address");
    o.ehlo_name = "bad name\r\nMAIL FROM:<>";
    assert_int_equal(tlsprobe_run(&o, "mx.good.test", "127.0.0.1", port, &dl, r), -1);
    assert_int_equal(r->status, TLSPROBE_ERROR);
    check_reason(r, "invalid EHLO name");
    o = options();
    o.ca_file = "/nonexistent/ca.pem";
    assert_int_equal(tlsprobe_run(&o, "mx.good.test", "127.0.0.1", port, &dl, r), -1);
    assert_int_equal(r->status, TLSPROBE_ERROR);
    check_reason(r, "CA file /nonexistent/ca.pem");
    assert_int_equal(tlsprobe_run(&o, NULL, "127.0.0.1", port, &dl, r), -1);
    assert_int_equal(tlsprobe_run(&o, "mx.good.test", "127.0.0.1", port, NULL, r), -1);
    assert_int_equal(tlsprobe_run(&o, "mx.good.test", "127.0.0.1", port, &dl, NULL), -1);
}

static void
test_deadline_already_past(void **state)
{
    struct tlsprobe_options o = options();
    struct tlsprobe_result *r = unit_alloc(sizeof(*r));
    struct timespec dl = clock_deadline_after(0);

    (void)state;
    assert_int_equal(tlsprobe_run(&o, "mx.good.test", "127.0.0.1", port_of("good"), &dl, r), -1);
    assert_int_equal(r->status, TLSPROBE_TIMEOUT);
}

static void
test_names(void **state)
{
    (void)state;
    for (int s = TLSPROBE_OK; s <= TLSPROBE_ERROR; s++)
        assert_string_not_equal(tlsprobe_status_name((enum tlsprobe_status)s), "?");
    for (int s = TLSPROBE_STAGE_CONNECT; s <= TLSPROBE_STAGE_DONE; s++)
        assert_string_not_equal(tlsprobe_stage_name((enum tlsprobe_stage)s), "?");
    for (int g = TLSPROBE_GRADE_GOOD; g <= TLSPROBE_GRADE_UNKNOWN; g++)
        assert_string_not_equal(tlsprobe_grade_name((enum tlsprobe_grade_word)g), "?");
    assert_string_equal(tlsprobe_status_name(TLSPROBE_WRONG_NAME), "wrong-name");
    assert_string_equal(tlsprobe_grade_name(TLSPROBE_GRADE_UNVERIFIED), "unverified");
    assert_string_equal(tlsprobe_status_name((enum tlsprobe_status)99), "?");
}

struct worker {
    pthread_t t;
    const char *mx;
    int port;
    struct tlsprobe_result r;
};

static void *
probe_thread(void *arg)
{
    struct worker *w = arg;
    struct tlsprobe_options o = options();
    struct timespec dl = clock_deadline_after(DEADLINE_MS);

    (void)tlsprobe_run(&o, w->mx, "127.0.0.1", w->port, &dl, &w->r);
    return NULL;
}

static void
test_threads(void **state)
{
    struct worker *w = unit_alloc(sizeof(*w) * THREADS);
    static const char *const kinds[] = {"good", "expired", "wrongname", "nostarttls"};
    static const enum tlsprobe_status want[] = {TLSPROBE_OK, TLSPROBE_EXPIRED,
                                                TLSPROBE_WRONG_NAME, TLSPROBE_NO_STARTTLS};

    (void)state;
    for (int i = 0; i < THREADS; i++) {
        w[i].mx = i % 4 == 2 ? "mx.wrongname.test" : i % 4 == 1 ? "mx.expired.test" :
                                                                  "mx.good.test";
        w[i].port = port_of(kinds[i % 4]);
        assert_int_equal(pthread_create(&w[i].t, NULL, probe_thread, &w[i]), 0);
    }
    for (int i = 0; i < THREADS; i++)
        pthread_join(w[i].t, NULL);
    for (int i = 0; i < THREADS; i++)
        if (w[i].r.status != want[i % 4])
            fail_msg("thread %d (%s): %s, want %s (%s)", i, kinds[i % 4],
                     tlsprobe_status_name(w[i].r.status), tlsprobe_status_name(want[i % 4]),
                     w[i].r.reason);
}

static const struct CMUnitTest singles[] = {
    cmocka_unit_test(test_good_facts),
    cmocka_unit_test(test_bad_arguments),
    cmocka_unit_test(test_deadline_already_past),
    cmocka_unit_test(test_names),
    cmocka_unit_test(test_threads),
    cmocka_unit_test(test_dane),
    cmocka_unit_test(test_dane_pkix),
    cmocka_unit_test(test_never_mail),
};

#define N_TESTS (N_ROWS(probe_cases) + N_ROWS(grade_cases) + N_ROWS(nist_cases) + N_ROWS(singles))

static struct CMUnitTest tests[N_TESTS];
static char test_names_buf[N_TESTS][UNIT_NAME_MAX];

int
main(int argc, char **argv)
{
    struct unit_list list = {.tests = tests, .names = test_names_buf, .cap = N_TESTS};
    char script[512];

    (void)argc;
    testserver_prog = argv[0];
    if (system("command -v python3 >/dev/null 2>&1 && command -v openssl >/dev/null 2>&1") != 0 ||
        !testserver_find("smtp_server.py", script, sizeof(script))) {
        printf("1..0 # SKIP python3, the openssl CLI or tests/unit/smtp_server.py not found\n");
        return 0;
    }
    UNIT_ADD_TABLE(&list, "probe", probe_cases, run_probe_case);
    UNIT_ADD_TABLE(&list, "grade", grade_cases, run_grade_case);
    UNIT_ADD_TABLE(&list, "nist", nist_cases, run_nist_case);
    unit_add_singles(&list, singles, N_ROWS(singles));
    if (list.n != N_TESTS) {
        fprintf(stderr, "test_tlsprobe: %zu tests registered, %zu expected\n", list.n,
                (size_t)N_TESTS);
        return 2;
    }
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
