/*
 * test_tlsbounds - unit tests for the bounds a hostile MX meets in
 * common/tlsprobe.c: no renegotiation, the certificate message size, the
 * verify depth, the DHE group size and the public key size
 * (TLSPROBE_CERT_LIST_MAX and kin in tlsprobe.h).
 *
 * Each test starts a real OpenSSL STARTTLS server in a thread
 * (tlsserver.h) on 127.0.0.1, with certificates made in memory under a
 * test root that is the probe's CA file, and probes it. Every bound has a
 * row just inside it that must succeed and a row just beyond it that must
 * fail with a reason that names the bound: removing a bound from
 * tlsprobe.c turns the "beyond" row into a success, and the test fails.
 * TEST_TLSBOUNDS_VERBOSE=1 prints each probe's status, reason, time and
 * the CPU time of the probing thread (shown, never asserted).
 *
 * The RSA keys of 16384 and 16400 bits (5 primes each: ~40 s to make,
 * more than a test should spend) are tests/data/rsa16384.pem and
 * rsa16400.pem, made once with
 *	openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:16400 \
 *	    -pkeyopt rsa_keygen_primes:5
 * (test keys, for nothing else). Their rows are skipped without them.
 */
#include "unit.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/param_build.h>

#include "clock.h"
#include "tlsprobe.h"
#include "tlsserver.h"

#define DEADLINE_MS 20000 /* a loaded CI machine; no row is near it */
#define MX "mx.bounds.test"

static char dir[64];
static char ca_file[128];
static EVP_PKEY *root_key;
static X509 *root;
static const char *prog;

static int
group_setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/test_tlsbounds.XXXXXX");
    if (mkdtemp(dir) == NULL)
        return -1;
    snprintf(ca_file, sizeof(ca_file), "%s/ca.pem", dir);
    if ((root_key = EVP_EC_gen("P-256")) == NULL ||
        (root = tlsserver_cert("bounds test root", root_key, NULL, NULL, true, NULL, 0)) == NULL ||
        !tlsserver_write_pem(ca_file, &root, 1))
        return -1;
    return 0;
}

static int
group_teardown(void **state)
{
    (void)state;
    (void)unlink(ca_file);
    (void)rmdir(dir);
    X509_free(root);
    EVP_PKEY_free(root_key);
    return 0;
}

/* Probes the server on port and returns the result (scratch memory). */
static struct tlsprobe_result *
probe(unsigned short port)
{
    struct tlsprobe_options o = {.ca_file = ca_file, .ehlo_name = "probe.test"};
    struct tlsprobe_result *r = unit_alloc(sizeof(*r));
    struct timespec dl = clock_deadline_after(DEADLINE_MS), cpu0, cpu1;

    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &cpu0); /* the probe's own CPU, shown only */
    (void)tlsprobe_run(&o, MX, "127.0.0.1", port, &dl, r);
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &cpu1);
    if (getenv("TEST_TLSBOUNDS_VERBOSE") != NULL)
        fprintf(stderr,
                "# %s, stage %s, %ld ms (probe CPU %.1f ms): %s [verify: %s] kex %s %d bits, key "
                "%s %d\n",
                tlsprobe_status_name(r->status), tlsprobe_stage_name(r->stage), r->elapsed_ms,
                (double)(cpu1.tv_sec - cpu0.tv_sec) * 1e3 +
                    (double)(cpu1.tv_nsec - cpu0.tv_nsec) / 1e6,
                r->reason, r->verify_text, r->kex_group, r->kex_bits, r->key_type, r->key_bits);
    return r;
}

static void
want_status(const struct tlsprobe_result *r, enum tlsprobe_status st)
{
    if (r->status != st)
        fail_msg("probe: %s (%s), want %s", tlsprobe_status_name(r->status), r->reason,
                 tlsprobe_status_name(st));
}

static void
want_text(const char *what, const char *text, const char *needle)
{
    if (strstr(text, needle) == NULL)
        fail_msg("%s \"%s\" does not contain \"%s\"", what, text, needle);
}

/* A leaf for MX under root, EC P-256, with pad octets; its key in *key. */
static X509 *
ec_leaf(EVP_PKEY **key, X509 *issuer, EVP_PKEY *issuer_key, size_t pad)
{
    X509 *leaf;

    assert_non_null(*key = EVP_EC_gen("P-256"));
    assert_non_null(leaf = tlsserver_cert(MX, *key, issuer, issuer_key, false, MX, pad));
    return leaf;
}

/* ------------------------------------------------------- renegotiation */

/*
 * The server sends a HelloRequest right after the handshake (TLS 1.2).
 * The probe must answer it with no_renegotiation, never a second
 * ClientHello: a server could otherwise make one probe handshake again and
 * again until its deadline. What follows (OpenSSL's server ends the
 * connection at the refusal, or the dialogue finishes first) may vary;
 * the probe must end well before its deadline either way.
 */
static void
test_renegotiation_refused(void **state)
{
    struct tlsserver s;
    struct tlsprobe_result *r;
    EVP_PKEY *key;
    X509 *leaf = ec_leaf(&key, root, root_key, 0);
    SSL_CTX *ctx = tlsserver_ctx(leaf, key, NULL, 0);

    (void)state;
    assert_non_null(ctx);
    assert_int_equal(SSL_CTX_set_max_proto_version(ctx, TLS1_2_VERSION), 1);
    assert_int_equal(tlsserver_start(&s, ctx, TLSSERVER_RENEGOTIATE), 0);
    r = probe(s.port);
    tlsserver_stop(&s);
    X509_free(leaf);
    EVP_PKEY_free(key);
    assert_int_equal(atomic_load(&s.hello_requests), 1);   /* the server did ask */
    assert_int_equal(atomic_load(&s.client_hellos), 1);    /* the probe never renegotiated */
    assert_int_equal(atomic_load(&s.no_renegotiation), 1); /* it said so */
    assert_int_equal(atomic_load(&s.connections), 1);
    assert_int_equal(atomic_load(&s.accepted), 1);
    assert_true(r->tls_done);
    if (r->status == TLSPROBE_OK) /* then its EHLO went through, inside TLS */
        assert_int_equal(atomic_load(&s.ehlo_in_tls), 1);
    assert_string_equal(r->protocol, "TLSv1.2");
    assert_true(r->status != TLSPROBE_TIMEOUT);
    if (r->status != TLSPROBE_OK && r->reason[0] == '\0')
        fail_msg("probe failed (%s) without a reason", tlsprobe_status_name(r->status));
    assert_true(r->elapsed_ms < DEADLINE_MS);
}

/* ------------------------------------------------ certificate message */

static struct tlsprobe_result *
padded_leaf_probe(size_t pad)
{
    struct tlsserver s;
    struct tlsprobe_result *r;
    EVP_PKEY *key;
    X509 *leaf = ec_leaf(&key, root, root_key, pad);

    assert_true((size_t)i2d_X509(leaf, NULL) > pad);
    assert_int_equal(tlsserver_start(&s, tlsserver_ctx(leaf, key, NULL, 0), 0), 0);
    r = probe(s.port);
    tlsserver_stop(&s);
    X509_free(leaf);
    EVP_PKEY_free(key);
    return r;
}

/* 60 000 octets of certificate: under 64 KiB, accepted. */
static void
test_cert_message_under_bound(void **state)
{
    (void)state;
    want_status(padded_leaf_probe(60000), TLSPROBE_OK);
}

/* 70 000 octets: over 64 KiB (and under OpenSSL's own 100 KiB default). */
static void
test_cert_message_over_bound(void **state)
{
    struct tlsprobe_result *r = padded_leaf_probe(70000);

    (void)state;
    want_status(r, TLSPROBE_HANDSHAKE);
    assert_int_equal(r->stage, TLSPROBE_STAGE_HANDSHAKE);
    assert_false(r->cert_present);
    want_text("reason", r->reason, "a certificate message may have at most 65536 octets");
    want_text("reason", r->reason, "excessive message size");
}

/* -------------------------------------------------------- verify depth */

/* root -> n intermediates -> leaf; the server sends the intermediates. */
static struct tlsprobe_result *
chain_probe(size_t n)
{
    struct tlsserver s;
    struct tlsprobe_result *r;
    EVP_PKEY *keys[16] = {NULL}, *leaf_key;
    X509 *ims[16] = {NULL}, *leaf, *chain[16];
    char cn[32];

    assert_true(n < 16);
    for (size_t i = 0; i < n; i++) {
        snprintf(cn, sizeof(cn), "bounds intermediate %zu", i + 1);
        assert_non_null(keys[i] = EVP_EC_gen("P-256"));
        assert_non_null(ims[i] = tlsserver_cert(cn, keys[i], i == 0 ? root : ims[i - 1],
                                                i == 0 ? root_key : keys[i - 1], true, NULL, 0));
    }
    leaf = ec_leaf(&leaf_key, n > 0 ? ims[n - 1] : root, n > 0 ? keys[n - 1] : root_key, 0);
    for (size_t i = 0; i < n; i++) /* the leaf's issuer first */
        chain[i] = ims[n - 1 - i];
    assert_int_equal(tlsserver_start(&s, tlsserver_ctx(leaf, leaf_key, chain, n), 0), 0);
    r = probe(s.port);
    tlsserver_stop(&s);
    X509_free(leaf);
    EVP_PKEY_free(leaf_key);
    for (size_t i = 0; i < n; i++) {
        X509_free(ims[i]);
        EVP_PKEY_free(keys[i]);
    }
    return r;
}

/* TLSPROBE_VERIFY_DEPTH intermediates between the leaf and the root: valid. */
static void
test_chain_at_depth(void **state)
{
    (void)state;
    want_status(chain_probe(TLSPROBE_VERIFY_DEPTH), TLSPROBE_OK);
}

/* One more: the chain is not followed to the root, so it is untrusted. */
static void
test_chain_beyond_depth(void **state)
{
    struct tlsprobe_result *r = chain_probe(TLSPROBE_VERIFY_DEPTH + 1);

    (void)state;
    want_status(r, TLSPROBE_UNTRUSTED);
    assert_int_equal(r->verify_code, X509_V_ERR_CERT_CHAIN_TOO_LONG);
    want_text("verify text", r->verify_text, "chain too long");
    assert_false(r->chain_valid);
}

/* ------------------------------------------------------------ DHE group */

/*
 * A DH group of exactly bits bits: p random and odd, g = 2. Not a safe
 * prime, not even a prime (finding one that size takes minutes): OpenSSL's
 * client checks ephemeral parameters only quickly (odd p, 1 < g < p - 1),
 * and the arithmetic agrees on both sides whatever p is. The server's
 * exponent is kept short (256 bits) so that only the probe could spend.
 */
static EVP_PKEY *
dh_group(int bits)
{
    OSSL_PARAM_BLD *b = OSSL_PARAM_BLD_new();
    EVP_PKEY_CTX *pc = EVP_PKEY_CTX_new_from_name(NULL, "DH", NULL);
    BIGNUM *p = BN_new(), *g = BN_new();
    OSSL_PARAM *params = NULL;
    EVP_PKEY *dh = NULL;

    assert_non_null(b);
    assert_non_null(pc);
    assert_int_equal(BN_rand(p, bits, BN_RAND_TOP_ONE, BN_RAND_BOTTOM_ODD), 1);
    assert_int_equal(BN_set_word(g, 2), 1);
    assert_int_equal(OSSL_PARAM_BLD_push_BN(b, OSSL_PKEY_PARAM_FFC_P, p), 1);
    assert_int_equal(OSSL_PARAM_BLD_push_BN(b, OSSL_PKEY_PARAM_FFC_G, g), 1);
    assert_int_equal(OSSL_PARAM_BLD_push_int(b, OSSL_PKEY_PARAM_DH_PRIV_LEN, 256), 1);
    assert_non_null(params = OSSL_PARAM_BLD_to_param(b));
    assert_int_equal(EVP_PKEY_fromdata_init(pc), 1);
    assert_int_equal(EVP_PKEY_fromdata(pc, &dh, EVP_PKEY_KEY_PARAMETERS, params), 1);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(b);
    EVP_PKEY_CTX_free(pc);
    BN_free(p);
    BN_free(g);
    return dh;
}

/* TLS 1.2, DHE-RSA only, with a DH group of bits bits. */
static struct tlsprobe_result *
dhe_probe(int bits)
{
    struct tlsserver s;
    struct tlsprobe_result *r;
    EVP_PKEY *key = EVP_RSA_gen(2048), *dh = dh_group(bits);
    X509 *leaf;
    SSL_CTX *ctx;

    assert_non_null(key);
    assert_non_null(leaf = tlsserver_cert(MX, key, root, root_key, false, MX, 0));
    assert_non_null(ctx = tlsserver_ctx(leaf, key, NULL, 0));
    assert_int_equal(SSL_CTX_set_max_proto_version(ctx, TLS1_2_VERSION), 1);
    assert_int_equal(SSL_CTX_set_cipher_list(ctx, "DHE-RSA-AES128-GCM-SHA256:@SECLEVEL=0"), 1);
    assert_int_equal(SSL_CTX_set0_tmp_dh_pkey(ctx, dh), 1); /* ctx owns dh */
    assert_int_equal(tlsserver_start(&s, ctx, 0), 0);
    r = probe(s.port);
    tlsserver_stop(&s);
    assert_int_equal(atomic_load(&s.client_hellos), 1);
    X509_free(leaf);
    EVP_PKEY_free(key);
    return r;
}

/* TLSPROBE_DH_BITS_MAX bits: computed with, the probe succeeds. */
static void
test_dhe_at_bound(void **state)
{
    struct tlsprobe_result *r = dhe_probe(TLSPROBE_DH_BITS_MAX);

    (void)state;
    want_status(r, TLSPROBE_OK);
    assert_int_equal(r->kex_bits, TLSPROBE_DH_BITS_MAX);
}

/* One bit more: refused before any computation with it. */
static void
test_dhe_over_bound(void **state)
{
    struct tlsprobe_result *r = dhe_probe(TLSPROBE_DH_BITS_MAX + 1);

    (void)state;
    want_status(r, TLSPROBE_HANDSHAKE);
    assert_int_equal(r->stage, TLSPROBE_STAGE_HANDSHAKE);
    want_text("reason", r->reason, "DHE group of 8193 bits");
}

/* ------------------------------------------------------------- key size */

static EVP_PKEY *
read_key(const char *name)
{
    const char *src = getenv("top_srcdir"), *slash = strrchr(prog, '/');
    char path[512];
    EVP_PKEY *k = NULL;
    FILE *f = NULL;

    if (src != NULL)
        snprintf(path, sizeof(path), "%s/tests/data/%s", src, name);
    if (src == NULL || (f = fopen(path, "r")) == NULL) {
        snprintf(path, sizeof(path), "tests/data/%s", name);
        f = fopen(path, "r");
    }
    if (f == NULL && slash != NULL) { /* tests/unit/prog -> tests/data */
        snprintf(path, sizeof(path), "%.*s/../data/%s", (int)(slash - prog), prog, name);
        f = fopen(path, "r");
    }
    if (f == NULL)
        return NULL;
    k = PEM_read_PrivateKey(f, NULL, NULL, NULL);
    fclose(f);
    return k;
}

/*
 * A chain with the RSA key of tests/data/<file>: as the leaf's key (the
 * server signs its handshake with it), or as an intermediate's (it signs
 * an EC leaf). Skipped when the file cannot be found.
 */
static struct tlsprobe_result *
key_probe(const char *file, int bits, bool as_ca)
{
    struct tlsserver s;
    struct tlsprobe_result *r;
    EVP_PKEY *big = read_key(file), *leaf_key = NULL;
    X509 *im = NULL, *leaf;

    if (big == NULL)
        skip(); /* the key file is not there (a stripped tree) */
    assert_int_equal(EVP_PKEY_get_bits(big), bits);
    if (as_ca) {
        assert_non_null(
            im = tlsserver_cert("bounds big-key CA", big, root, root_key, true, NULL, 0));
        leaf = ec_leaf(&leaf_key, im, big, 0);
    } else {
        assert_non_null(leaf = tlsserver_cert(MX, big, root, root_key, false, MX, 0));
    }
    assert_int_equal(
        tlsserver_start(&s, tlsserver_ctx(leaf, as_ca ? leaf_key : big, &im, as_ca), 0), 0);
    r = probe(s.port);
    tlsserver_stop(&s);
    X509_free(leaf);
    X509_free(im);
    EVP_PKEY_free(leaf_key);
    EVP_PKEY_free(big);
    return r;
}

/* A leaf key of TLSPROBE_KEY_BITS_MAX bits: accepted. */
static void
test_key_at_bound(void **state)
{
    struct tlsprobe_result *r = key_probe("rsa16384.pem", TLSPROBE_KEY_BITS_MAX, false);

    (void)state;
    want_status(r, TLSPROBE_OK);
    assert_int_equal(r->key_bits, TLSPROBE_KEY_BITS_MAX);
}

/* A leaf key of 16400 bits: the handshake ends before the key is used. */
static void
test_key_over_bound_leaf(void **state)
{
    struct tlsprobe_result *r = key_probe("rsa16400.pem", 16400, false);

    (void)state;
    want_status(r, TLSPROBE_HANDSHAKE);
    want_text("reason", r->reason,
              "certificate key of 16400 bits (depth 0) is over the 16384-bit bound");
}

/* The same key in the intermediate that signed the leaf. */
static void
test_key_over_bound_ca(void **state)
{
    struct tlsprobe_result *r = key_probe("rsa16400.pem", 16400, true);

    (void)state;
    want_status(r, TLSPROBE_HANDSHAKE);
    want_text("reason", r->reason,
              "certificate key of 16400 bits (depth 1) is over the 16384-bit bound");
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test_teardown(test_renegotiation_refused, unit_scratch_free),
    cmocka_unit_test_teardown(test_cert_message_under_bound, unit_scratch_free),
    cmocka_unit_test_teardown(test_cert_message_over_bound, unit_scratch_free),
    cmocka_unit_test_teardown(test_chain_at_depth, unit_scratch_free),
    cmocka_unit_test_teardown(test_chain_beyond_depth, unit_scratch_free),
    cmocka_unit_test_teardown(test_dhe_at_bound, unit_scratch_free),
    cmocka_unit_test_teardown(test_dhe_over_bound, unit_scratch_free),
    cmocka_unit_test_teardown(test_key_at_bound, unit_scratch_free),
    cmocka_unit_test_teardown(test_key_over_bound_leaf, unit_scratch_free),
    cmocka_unit_test_teardown(test_key_over_bound_ca, unit_scratch_free),
};

int
main(int argc, char **argv)
{
    (void)argc;
    prog = argv[0];
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
