/*
 * test_probes - the probe cache and its orchestration (probes.c,
 * probecache.c) through the seam: no DNS, no network. TTLs, the failure
 * TTL, one probe in flight per host, the concurrency bounds, probe_never,
 * addresses outside probe_allow_networks, and rows shared through the
 * SQLite cache. The fake hosts live in 10.0.0.0/8, which every
 * configuration here allows unless it sets probe_allow_networks itself.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>

#include "unit.h"

#include "clock.h"
#include "config.h"
#include "probes.h"
#include "tlsa.h"

static _Atomic int64_t fake_now = 1000000;
static atomic_int probe_calls;
static atomic_int sleep_ms;
/* The hosts probed, in order (first_contact_before_refresh). */
static pthread_mutex_t order_mu = PTHREAD_MUTEX_INITIALIZER;
static char order[16][TLSPROBE_HOST_MAX + 1];
static int n_order;

/* A copy of the order, so that no assertion fails holding order_mu. */
static int
order_copy(char out[16][TLSPROBE_HOST_MAX + 1])
{
    int n;

    pthread_mutex_lock(&order_mu);
    n = n_order;
    memcpy(out, order, sizeof(order));
    pthread_mutex_unlock(&order_mu);
    return n;
}

static int64_t
now_fn(void)
{
    return atomic_load(&fake_now);
}

/* host "[N.]...net-A.example" resolves to 10.A.0.N (N 0 when absent, A 99). */
static int
fake_resolve(void *arg, const char *host, const struct timespec *deadline,
             char addrs[][PROBECACHE_ADDRESS_MAX], size_t max, struct mts_err *err)
{
    unsigned n = 0, net = 99;
    const char *netp = strstr(host, "net-");

    (void)arg;
    (void)deadline;
    (void)max;
    if (strcmp(host, "nxdomain.example") == 0) {
        mts_err_set(err, "%s has no address (nxdomain)", host);
        return -1;
    }
    if (sscanf(host, "%u.", &n) != 1)
        n = 0;
    if (netp == NULL || sscanf(netp, "net-%u.", &net) != 1)
        net = 99;
    snprintf(addrs[0], PROBECACHE_ADDRESS_MAX, "10.%u.0.%u", net, n);
    return 1;
}

/* "good*" hosts pass; "notls*" offer no STARTTLS; "unverified*" are self-signed. */
/* "dane*" hosts have one secure DANE-EE record (matched by "daneok*" only),
 * "danepkix*" only a PKIX-EE one, "tlsafail*" a TLSA lookup that fails. */
static void
fake_tlsa(void *arg, const char *host, int port, const struct timespec *deadline,
          struct tlsa_set *t)
{
    static const unsigned char rd[35] = {3, 1, 1, 0xab};
    static const unsigned char pkix[35] = {1, 1, 1, 0xcd};

    (void)arg;
    (void)deadline;
    memset(t, 0, sizeof(*t));
    snprintf(t->base, sizeof(t->base), "%s", host);
    snprintf(t->owner, sizeof(t->owner), "_%d._tcp.%s", port, host);
    t->ttl = 3600;
    if (strncmp(host, "tlsafail", 8) == 0) {
        t->state = TLSA_FAILED;
        snprintf(t->why, sizeof(t->why), "dnssec-invalid: TLSA lookup failed: SERVFAIL");
    } else if (strncmp(host, "dane", 4) == 0) {
        t->state = TLSA_SECURE;
        t->n = 1;
        assert_int_equal(tlsa_parse_rdata(strncmp(host, "danepkix", 8) == 0 ? pkix : rd,
                                          sizeof(rd), &t->rec[0]), 0);
        t->n_usable = t->rec[0].usable ? 1 : 0;
    }
}

static void
fake_probe(void *arg, const char *host, const char *address, int port,
           const struct tlsa_set *tlsa, const struct timespec *deadline,
           struct tlsprobe_result *r)
{
    (void)arg;
    (void)deadline;
    atomic_fetch_add(&probe_calls, 1);
    pthread_mutex_lock(&order_mu);
    if (n_order < 16)
        snprintf(order[n_order++], sizeof(order[0]), "%s", host);
    pthread_mutex_unlock(&order_mu);
    if (atomic_load(&sleep_ms) > 0)
        usleep((useconds_t)atomic_load(&sleep_ms) * 1000);
    memset(r, 0, sizeof(*r));
    snprintf(r->mx_host, sizeof(r->mx_host), "%s", host);
    snprintf(r->address, sizeof(r->address), "%s", address);
    r->port = port;
    r->stage = TLSPROBE_STAGE_DONE;
    r->starttls_offered = true;
    if (strstr(host, "notls") != NULL) {
        r->status = TLSPROBE_NO_STARTTLS;
        r->starttls_offered = false;
        r->stage = TLSPROBE_STAGE_EHLO;
        snprintf(r->reason, sizeof(r->reason), "the EHLO reply does not offer STARTTLS");
        return;
    }
    r->tls_done = true;
    r->tls_version = 0x0304;
    snprintf(r->protocol, sizeof(r->protocol), "TLSv1.3");
    snprintf(r->cipher, sizeof(r->cipher), "TLS_AES_256_GCM_SHA384");
    r->cipher_bits = 256;
    snprintf(r->kex_group, sizeof(r->kex_group), "X25519");
    r->cert_present = true;
    snprintf(r->key_type, sizeof(r->key_type), "EC");
    r->key_bits = 256;
    snprintf(r->sig_hash, sizeof(r->sig_hash), "sha256");
    r->n_names = r->n_names_total = 1;
    snprintf(r->names[0], sizeof(r->names[0]), "%s", host);
    r->not_after = atomic_load(&fake_now) + 86400 * 60;
    r->days_left = 60;
    if (strstr(host, "unverified") != NULL) {
        r->status = TLSPROBE_UNTRUSTED;
        r->chain_flags = TLSPROBE_CHAIN_SELF_SIGNED;
        r->name_match = true;
        snprintf(r->reason, sizeof(r->reason), "self-signed certificate");
        return;
    }
    r->status = TLSPROBE_OK;
    r->chain_valid = true;
    r->name_match = true;
    r->pkix_valid = true;
    if (tlsa != NULL && tlsa->state == TLSA_SECURE && tlsa->n_usable > 0) {
        /* What tlsprobe_dane_read leaves: DANE replaces the WebPKI chain. */
        r->dane_active = true;
        if (strncmp(host, "daneok", 6) == 0) {
            r->dane = TLSA_DANE_VERIFIED;
            snprintf(r->dane_match, sizeof(r->dane_match), "3 1 1");
            /* "daneok" alone: a self-signed DANE-EE host (not WebPKI-valid) */
            r->pkix_valid = strstr(host, "pkix") != NULL;
        } else {
            r->dane = TLSA_DANE_FAILED;
            r->chain_valid = false;
            r->status = TLSPROBE_UNTRUSTED;
            snprintf(r->verify_text, sizeof(r->verify_text), "tlsa-invalid: no match");
            snprintf(r->reason, sizeof(r->reason), "DANE: tlsa-invalid: no match");
        }
    }
}

static const struct probes_seam seam = {fake_resolve, fake_probe, now_fn, NULL, fake_tlsa};

static struct config *
conf(const char *text)
{
    static const char allow[] = "probe_allow_networks = 10.0.0.0/8\n";
    char path[] = "/tmp/test_probes.XXXXXX";
    int fd = mkstemp(path);
    struct config *cfg = NULL;
    struct mts_err err = {""};

    assert_true(fd >= 0);
    if (strstr(text, "probe_allow_networks") == NULL)
        assert_int_equal(write(fd, allow, strlen(allow)), (ssize_t)strlen(allow));
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    if (config_load(path, &cfg, &err) != 0)
        fail_msg("config: %s", err.msg);
    unlink(path);
    return cfg;
}

static struct probes *
open_probes(struct config *cfg, int flags)
{
    struct probes *p = NULL;
    struct mts_err err = {""};

    atomic_store(&probe_calls, 0);
    atomic_store(&sleep_ms, 0);
    if (probes_open(cfg, &seam, flags | PROBES_NO_REFRESHER, &p, &err) != 0)
        fail_msg("probes_open: %s", err.msg);
    return p;
}

static void
get_known(struct probes *p, const char *host, struct probes_host *h)
{
    probes_get(p, host, h);
    if (h->state == PROBES_NOT_YET) {
        probes_drain(p);
        probes_get(p, host, h);
    }
    assert_int_equal(h->state, PROBES_KNOWN);
}

static void
first_ask_is_unknown_then_known(void **state)
{
    struct config *cfg = conf("mx_probes = yes\n");
    struct probes *p = open_probes(cfg, PROBES_NO_CACHE);
    struct probes_host h;

    (void)state;
    probes_get(p, "good.net-1.example", &h);
    assert_int_equal(h.state, PROBES_NOT_YET);
    assert_int_equal(h.grade, TLSPROBE_GRADE_UNKNOWN);
    assert_non_null(strstr(h.reason, "not been probed yet"));
    probes_drain(p);
    probes_get(p, "good.net-1.example", &h);
    assert_int_equal(h.state, PROBES_KNOWN);
    assert_int_equal(h.grade, TLSPROBE_GRADE_GOOD);
    assert_true(h.rfc8461);
    assert_true(h.tls);
    assert_string_equal(h.address, "10.1.0.0");
    assert_string_equal(h.protocol, "TLSv1.3");
    assert_int_equal(atomic_load(&probe_calls), 1);
    probes_close(p);
    config_unref(cfg);
}

/* An address outside probe_allow_networks that is not globally reachable
 * is never connected to: the host is unknown (not_routable) for the
 * failure TTL; one in the allowed networks is probed. */
static void
private_addresses_not_probed(void **state)
{
    struct config *cfg = conf("mx_probes = yes\nprobe_allow_networks = 10.1.0.0/16\n"
                              "probe_failure_ttl = 15m\n");
    struct probes *p = open_probes(cfg, PROBES_NO_CACHE);
    struct probes_host h;

    (void)state;
    get_known(p, "good.net-1.example", &h);
    assert_int_equal(h.grade, TLSPROBE_GRADE_GOOD);
    assert_false(h.not_routable);
    assert_int_equal(atomic_load(&probe_calls), 1);
    get_known(p, "good.net-2.example", &h);
    assert_int_equal(atomic_load(&probe_calls), 1);
    assert_int_equal(h.grade, TLSPROBE_GRADE_UNKNOWN);
    assert_true(h.not_routable);
    assert_false(h.rfc8461);
    assert_non_null(strstr(h.reason, "not probed: 10.2.0.0 is private"));
    assert_int_equal(h.expires_at - h.probed_at, 15 * 60);
    probes_close(p);
    config_unref(cfg);

    /* Without the option, 10/8 is never probed. */
    cfg = conf("mx_probes = yes\nprobe_allow_networks =\n");
    p = open_probes(cfg, PROBES_NO_CACHE);
    get_known(p, "good.net-1.example", &h);
    assert_true(h.not_routable);
    assert_int_equal(atomic_load(&probe_calls), 0);
    probes_close(p);
    config_unref(cfg);
}

/* RFC 7672: the DANE outcome is kept per host with the probe, in memory and
 * in the cache's rows; a failed TLSA lookup is kept only probe_failure_ttl. */
static void
dane_outcomes_kept_with_the_probe(void **state)
{
    struct config *cfg;
    struct probes *p;
    struct probes_host h;
    char dir[] = "/tmp/test_probes_dane.XXXXXX", text[512];
    int64_t t0 = atomic_load(&fake_now);

    (void)state;
    assert_non_null(mkdtemp(dir));
    snprintf(text, sizeof(text), "mx_probes = yes\ncache_db = %s/c.db\nprobe_ttl = 1d\n"
             "probe_failure_ttl = 15m\n", dir);
    cfg = conf(text);
    p = open_probes(cfg, 0);
    get_known(p, "daneok.net-1.example", &h);
    assert_int_equal(h.dane, TLSA_DANE_VERIFIED);
    assert_string_equal(h.dane_detail, "3 1 1");
    assert_true(h.rfc8461);
    assert_false(h.pkix); /* DANE verified it; WebPKI did not */
    assert_int_equal(h.grade, TLSPROBE_GRADE_GOOD);
    /* The TLSA TTL (1 h) bounds the row's life below probe_ttl. */
    assert_int_equal(h.expires_at, t0 + 3600);
    get_known(p, "daneokpkix.net-1.example", &h);
    assert_int_equal(h.dane, TLSA_DANE_VERIFIED);
    assert_true(h.rfc8461 && h.pkix);
    get_known(p, "danebad.net-1.example", &h);
    assert_int_equal(h.dane, TLSA_DANE_FAILED);
    assert_false(h.rfc8461); /* a WebPKI-valid chain does not rescue it */
    assert_non_null(strstr(h.dane_detail, "tlsa-invalid"));
    get_known(p, "danepkix.net-1.example", &h);
    assert_int_equal(h.dane, TLSA_DANE_UNUSABLE);
    assert_true(h.rfc8461);
    assert_true(h.pkix); /* no DANE: WebPKI's rfc8461 */
    get_known(p, "tlsafail.net-1.example", &h);
    assert_int_equal(h.dane, TLSA_DANE_LOOKUP_FAILED);
    assert_non_null(strstr(h.dane_detail, "dnssec-invalid"));
    assert_int_equal(h.expires_at, t0 + 900);
    get_known(p, "good.net-1.example", &h);
    assert_int_equal(h.dane, TLSA_DANE_NONE);
    probes_close(p);

    /* A new process reads the outcomes back from the cache's rows. */
    p = open_probes(cfg, 0);
    probes_load_on_miss(p);
    probes_get(p, "danebad.net-1.example", &h);
    assert_int_equal(h.state, PROBES_KNOWN);
    assert_int_equal(h.dane, TLSA_DANE_FAILED);
    probes_get(p, "tlsafail.net-1.example", &h);
    assert_int_equal(h.dane, TLSA_DANE_LOOKUP_FAILED);
    assert_int_equal(atomic_load(&probe_calls), 0);
    probes_close(p);
    config_unref(cfg);
    snprintf(text, sizeof(text), "rm -rf %s", dir);
    assert_int_equal(system(text), 0);
}

static void
success_and_failure_ttls(void **state)
{
    struct config *cfg = conf("mx_probes = yes\nprobe_ttl = 1d\nprobe_failure_ttl = 15m\n");
    struct probes *p = open_probes(cfg, PROBES_NO_CACHE);
    struct probes_host h;
    int64_t t0 = atomic_load(&fake_now);

    (void)state;
    get_known(p, "good.net-1.example", &h);
    assert_int_equal(h.expires_at, t0 + 86400);
    get_known(p, "notls.net-2.example", &h);
    assert_int_equal(h.grade, TLSPROBE_GRADE_FAIL);
    assert_false(h.tls);
    assert_int_equal(h.status, TLSPROBE_NO_STARTTLS);
    assert_int_equal(h.expires_at, t0 + 900);
    get_known(p, "unverified.net-3.example", &h);
    assert_int_equal(h.grade, TLSPROBE_GRADE_UNVERIFIED);
    assert_true(h.tls);
    assert_false(h.rfc8461);
    assert_int_equal(h.expires_at, t0 + 900);
    get_known(p, "nxdomain.example", &h);
    assert_int_equal(h.grade, TLSPROBE_GRADE_UNKNOWN);
    assert_non_null(strstr(h.reason, "no address"));
    assert_int_equal(atomic_load(&probe_calls), 3);

    /* 16 minutes on: the failures are gone, the success is not. */
    atomic_store(&fake_now, t0 + 960);
    probes_get(p, "good.net-1.example", &h);
    assert_int_equal(h.state, PROBES_KNOWN);
    probes_get(p, "notls.net-2.example", &h);
    assert_int_equal(h.state, PROBES_NOT_YET);
    probes_drain(p);
    assert_int_equal(atomic_load(&probe_calls), 4);
    /* A day on: the success expires too and is probed again. */
    atomic_store(&fake_now, t0 + 86401);
    probes_get(p, "good.net-1.example", &h);
    assert_int_equal(h.state, PROBES_NOT_YET);
    probes_drain(p);
    assert_int_equal(atomic_load(&probe_calls), 5);
    atomic_store(&fake_now, t0);
    probes_close(p);
    config_unref(cfg);
}

static void
refresh_before_expiry_of_hosts_in_use(void **state)
{
    struct config *cfg = conf("mx_probes = yes\nprobe_ttl = 1d\n");
    struct probes *p = open_probes(cfg, PROBES_NO_CACHE);
    struct probes_host h;
    int64_t t0 = atomic_load(&fake_now);

    (void)state;
    get_known(p, "good.net-1.example", &h);
    probes_refresh(p); /* fresh: nothing to do */
    probes_drain(p);
    assert_int_equal(atomic_load(&probe_calls), 1);
    atomic_store(&fake_now, t0 + 86400 * 8 / 10); /* the last quarter of its life */
    probes_get(p, "good.net-1.example", &h);    /* in use */
    assert_int_equal(h.state, PROBES_KNOWN);
    probes_refresh(p);
    probes_drain(p);
    assert_int_equal(atomic_load(&probe_calls), 2);
    probes_get(p, "good.net-1.example", &h);
    assert_int_equal(h.expires_at, t0 + 86400 * 8 / 10 + 86400);
    atomic_store(&fake_now, t0);
    probes_close(p);
    config_unref(cfg);
}

struct asker {
    struct probes *p;
    const char *host;
};

static void *
ask_many(void *arg)
{
    struct asker *a = arg;
    struct probes_host h;

    for (int i = 0; i < 200; i++)
        probes_get(a->p, a->host, &h);
    return NULL;
}

static void
one_probe_in_flight_per_host(void **state)
{
    struct config *cfg = conf("mx_probes = yes\nprobe_concurrency = 8\n");
    struct probes *p = open_probes(cfg, PROBES_NO_CACHE);
    struct asker a = {p, "good.net-7.example"};
    struct probes_stats st;
    pthread_t t[8];

    (void)state;
    atomic_store(&sleep_ms, 50);
    for (int i = 0; i < 8; i++)
        assert_int_equal(pthread_create(&t[i], NULL, ask_many, &a), 0);
    for (int i = 0; i < 8; i++)
        pthread_join(t[i], NULL);
    probes_drain(p);
    probes_get_stats(p, &st);
    assert_int_equal(atomic_load(&probe_calls), 1);
    assert_int_equal(st.jobs, 1);
    probes_close(p);
    config_unref(cfg);
}

static void
concurrency_bounds(void **state)
{
    struct config *cfg = conf("mx_probes = yes\nprobe_concurrency = 3\n"
                              "probe_network_concurrency = 2\n");
    struct probes *p = open_probes(cfg, PROBES_NO_CACHE);
    struct probes_stats st;
    struct probes_host h;
    char host[64];

    (void)state;
    atomic_store(&sleep_ms, 20);
    /* Twelve hosts in one /24, six in others. */
    for (int i = 0; i < 12; i++) {
        snprintf(host, sizeof(host), "%d.net-5.example", i);
        probes_get(p, host, &h);
    }
    for (int i = 0; i < 6; i++) {
        snprintf(host, sizeof(host), "1.net-%d.example", 10 + i);
        probes_get(p, host, &h);
    }
    probes_drain(p);
    probes_get_stats(p, &st);
    assert_int_equal(atomic_load(&probe_calls), 18);
    assert_true(st.running_max <= 3);
    assert_true(st.running_max >= 2);
    assert_true(st.network_max <= 2);
    probes_close(p);
    config_unref(cfg);
}

/* The first message: an RCPT waits for the probe and is woken by its result. */
static void
a_wait_is_woken_by_the_result(void **state)
{
    struct config *cfg = conf("mx_probes = yes\n");
    struct probes *p = open_probes(cfg, PROBES_NO_CACHE);
    const char *hosts[2] = {"good.net-1.example", "notls.net-2.example"};
    struct probes_host h[2];
    struct timespec deadline = clock_deadline_after(20000);

    (void)state;
    atomic_store(&sleep_ms, 50);
    probes_get(p, hosts[0], &h[0]);
    probes_get(p, hosts[1], &h[1]);
    assert_int_equal(h[0].state, PROBES_NOT_YET);
    /* Until one of them is known; then until the other is. */
    assert_true(probes_wait(p, hosts, 2, &deadline, h));
    assert_true(h[0].state == PROBES_KNOWN || h[1].state == PROBES_KNOWN);
    if (h[0].state != PROBES_KNOWN || h[1].state != PROBES_KNOWN)
        assert_true(probes_wait(p, hosts, 2, &deadline, h));
    assert_int_equal(h[0].state, PROBES_KNOWN);
    assert_int_equal(h[0].grade, TLSPROBE_GRADE_GOOD);
    assert_int_equal(h[1].state, PROBES_KNOWN);
    assert_false(h[1].tls);
    /* Woken by the results, long before the deadline. */
    assert_true(clock_ms_until(&deadline) > 0);
    /* Nothing left to wait for: at once. */
    assert_false(probes_wait(p, hosts, 2, &deadline, h));
    probes_close(p);
    config_unref(cfg);
}

/* A probe that outlasts the deadline: the wait ends at the deadline, unknown. */
static void
a_wait_ends_at_the_deadline(void **state)
{
    struct config *cfg = conf("mx_probes = yes\n");
    struct probes *p = open_probes(cfg, PROBES_NO_CACHE);
    const char *host = "good.net-4.example";
    struct probes_host h;
    struct timespec deadline = clock_deadline_after(100);

    (void)state;
    atomic_store(&sleep_ms, 1000);
    probes_get(p, host, &h);
    assert_false(probes_wait(p, &host, 1, &deadline, &h));
    assert_int_equal(h.state, PROBES_NOT_YET);
    assert_true(clock_ms_until(&deadline) <= 0);
    probes_drain(p);
    probes_close(p);
    config_unref(cfg);
}

/* Probes an RCPT waits for (no result yet) go before the refresher's. */
static void
first_contact_before_refresh(void **state)
{
    struct config *cfg = conf("mx_probes = yes\nprobe_concurrency = 1\nprobe_ttl = 1d\n");
    struct probes *p = open_probes(cfg, PROBES_NO_CACHE);
    struct probes_host h;
    int64_t t0 = atomic_load(&fake_now);
    char seen[16][TLSPROBE_HOST_MAX + 1];

    (void)state;
    get_known(p, "good.r1.example", &h);
    get_known(p, "good.r2.example", &h);
    get_known(p, "good.r3.example", &h);
    /* In the last quarter of their life: the refresher queues them. */
    atomic_store(&fake_now, t0 + 86400 * 8 / 10);
    atomic_store(&sleep_ms, 100);
    pthread_mutex_lock(&order_mu);
    n_order = 0;
    pthread_mutex_unlock(&order_mu);
    probes_get(p, "good.blocker.example", &h); /* keeps the one worker busy */
    probes_refresh(p);
    probes_get(p, "good.first.example", &h);
    probes_drain(p);
    assert_int_equal(order_copy(seen), 5);
    assert_string_equal(seen[0], "good.blocker.example");
    assert_string_equal(seen[1], "good.first.example");
    atomic_store(&fake_now, t0);
    probes_close(p);
    config_unref(cfg);
}

/* A worker never waits for a busy network: the job waits its turn, the
 * worker takes another (here: the host in another /24 starts second). */
static void
a_busy_network_holds_no_worker(void **state)
{
    struct config *cfg = conf("mx_probes = yes\nprobe_concurrency = 2\n"
                              "probe_network_concurrency = 1\n");
    struct probes *p = open_probes(cfg, PROBES_NO_CACHE);
    struct probes_stats st;
    struct probes_host h;
    char seen[16][TLSPROBE_HOST_MAX + 1];

    (void)state;
    atomic_store(&sleep_ms, 200);
    pthread_mutex_lock(&order_mu);
    n_order = 0;
    pthread_mutex_unlock(&order_mu);
    probes_get(p, "1.net-5.example", &h);
    probes_get(p, "2.net-5.example", &h);
    probes_get(p, "3.net-5.example", &h);
    probes_get(p, "1.net-6.example", &h);
    probes_drain(p);
    probes_get_stats(p, &st);
    assert_int_equal(atomic_load(&probe_calls), 4);
    assert_int_equal(st.network_max, 1);
    assert_int_equal(order_copy(seen), 4);
    /* Whichever of the first two net-5 hosts got the slot first, the
     * net-6 host started beside it (a blocking worker would have started
     * it only after two net-5 probes), and the parked ones came after it.
     * Their order between themselves is not asserted: both go back to the
     * head of the lane at once, and two free workers race for the slot
     * (seen under ASan: 3.net-5 before 2.net-5). */
    assert_true(strcmp(seen[0], "1.net-6.example") == 0 ||
                strcmp(seen[1], "1.net-6.example") == 0);
    assert_non_null(strstr(seen[2], ".net-5.example"));
    assert_non_null(strstr(seen[3], ".net-5.example"));
    probes_close(p);
    config_unref(cfg);
}

/* Probes charged to the sender and the connection: one sender at its cap
 * cannot queue more, another sender still can; the charge ends with the job. */
static void
probes_charged_to_sender_and_connection(void **state)
{
    struct config *cfg = conf("mx_probes = yes\nprobe_concurrency = 1\n"
                              "probes_per_sender = 2\nprobes_per_connection = 3\n");
    struct probes *p = open_probes(cfg, PROBES_NO_CACHE);
    struct probes_host h;

    (void)state;
    atomic_store(&sleep_ms, 100);
    assert_int_equal(probes_get_as(p, "good.a1.example", "alice", 1, &h), 0);
    assert_int_equal(probes_get_as(p, "good.a2.example", "alice", 2, &h), 0);
    /* alice's third new host: refused, not queued. */
    assert_int_equal(probes_get_as(p, "good.a3.example", "alice", 3, &h), -1);
    assert_int_equal(h.state, PROBES_NOT_YET);
    /* Another sender is not held back; a host already queued is no new charge. */
    assert_int_equal(probes_get_as(p, "good.b1.example", "bob", 4, &h), 0);
    assert_int_equal(probes_get_as(p, "good.a1.example", "bob", 4, &h), 0);
    /* The connection cap: a fourth job on connection 5. */
    assert_int_equal(probes_get_as(p, "good.c1.example", "carol", 5, &h), 0);
    assert_int_equal(probes_get_as(p, "good.c2.example", "dave", 5, &h), 0);
    assert_int_equal(probes_get_as(p, "good.c3.example", "erin", 5, &h), 0);
    assert_int_equal(probes_get_as(p, "good.c4.example", "frank", 5, &h), -1);
    probes_drain(p);
    assert_int_equal(atomic_load(&probe_calls), 6);
    /* The jobs ended: alice may start new ones. */
    assert_int_equal(probes_get_as(p, "good.a3.example", "alice", 1, &h), 0);
    probes_drain(p);
    get_known(p, "good.a3.example", &h);
    probes_close(p);
    config_unref(cfg);
}

/* A shared engine (a reload) outlives the first close: its queue goes on. */
static void
shared_engine(void **state)
{
    struct config *cfg = conf("mx_probes = yes\nprobe_concurrency = 2\n");
    struct probes *p = open_probes(cfg, PROBES_NO_CACHE);
    struct probes *q = probes_share(p);
    struct probes_host h;

    (void)state;
    assert_ptr_equal(p, q);
    atomic_store(&sleep_ms, 20);
    probes_get(p, "good.net-3.example", &h);
    probes_close(p); /* the old configuration lets go */
    probes_drain(q);
    probes_get(q, "good.net-3.example", &h);
    assert_int_equal(h.state, PROBES_KNOWN);
    probes_get(q, "good.net-3.example", &h);
    assert_int_equal(atomic_load(&probe_calls), 1);
    probes_close(q);
    config_unref(cfg);
}

static void
never_probed(void **state)
{
    struct config *cfg = conf("mx_probes = yes\n"
                              "probe_never = mx.never.example, *.skip.example\n");
    struct probes *p = open_probes(cfg, PROBES_NO_CACHE);
    struct probes_host h;

    (void)state;
    probes_get(p, "mx.never.example", &h);
    assert_int_equal(h.state, PROBES_NEVER);
    probes_get(p, "a.skip.example", &h);
    assert_int_equal(h.state, PROBES_NEVER);
    probes_get(p, "skip.example", &h); /* *.d is strict subdomains */
    assert_int_equal(h.state, PROBES_NOT_YET);
    probes_drain(p);
    assert_int_equal(atomic_load(&probe_calls), 1);
    probes_close(p);
    config_unref(cfg);
}

struct listed {
    size_t n;
    char hosts[4][TLSPROBE_HOST_MAX + 1];
    enum tlsprobe_grade_word grades[4];
};

static void
list_into(const struct probecache_row *r, void *arg)
{
    struct listed *l = arg;

    if (l->n < 4) {
        snprintf(l->hosts[l->n], sizeof(l->hosts[0]), "%s", r->host);
        l->grades[l->n] = r->grade;
    }
    l->n++;
}

static void
rows_shared_through_the_cache(void **state)
{
    char dir[] = "/tmp/test_probes.XXXXXX", text[512], db[300];
    struct config *cfg;
    struct probes *p;
    struct probes_stats st;
    struct probes_host h;
    struct probecache_row rows[PROBECACHE_ADDR_MAX];
    struct mts_err err;
    struct cache *c;
    size_t n, n_bad;

    (void)state;
    assert_non_null(mkdtemp(dir));
    snprintf(db, sizeof(db), "%s/cache.sqlite", dir);
    snprintf(text, sizeof(text), "mx_probes = yes\ncache_db = %s\n", db);
    cfg = conf(text);
    p = open_probes(cfg, 0);
    get_known(p, "unverified.net-4.example", &h);
    probes_close(p);
    assert_int_equal(atomic_load(&probe_calls), 1);

    /* The row, as stored. */
    assert_int_equal(cache_open(db, 1000, &c, &err), CACHE_OK);
    assert_int_equal(probecache_get(c, "unverified.net-4.example", 25, rows,
                                    PROBECACHE_ADDR_MAX, &n, &n_bad, &err), CACHE_OK);
    assert_int_equal(n, 1);
    assert_int_equal(n_bad, 0);
    assert_string_equal(rows[0].address, "10.4.0.0");
    assert_int_equal(rows[0].status, TLSPROBE_UNTRUSTED);
    assert_int_equal(rows[0].grade, TLSPROBE_GRADE_UNVERIFIED);
    assert_true(rows[0].tls);
    assert_false(rows[0].rfc8461);
    assert_string_equal(rows[0].cert_names, "unverified.net-4.example");
    assert_string_equal(rows[0].cipher, "TLS_AES_256_GCM_SHA384");
    cache_close(c);

    /* A second process starts with the live row in memory and probes nothing. */
    p = open_probes(cfg, 0);
    probes_get(p, "unverified.net-4.example", &h);
    assert_int_equal(h.state, PROBES_KNOWN);
    assert_int_equal(h.grade, TLSPROBE_GRADE_UNVERIFIED);
    probes_drain(p);
    probes_get_stats(p, &st);
    assert_int_equal(atomic_load(&probe_calls), 0);
    assert_int_equal(st.jobs, 0);
    /* In the last quarter of its life the row is probed again, not reloaded. */
    atomic_store(&fake_now, atomic_load(&fake_now) + 900 * 8 / 10);
    probes_refresh(p);
    probes_drain(p);
    assert_int_equal(atomic_load(&probe_calls), 1);
    atomic_store(&fake_now, atomic_load(&fake_now) - 900 * 8 / 10);

    /* Another process writes a newer row: the next refresh round reads it. */
    assert_int_equal(cache_open(db, 1000, &c, &err), CACHE_OK);
    rows[0].grade = TLSPROBE_GRADE_GOOD;
    rows[0].status = TLSPROBE_OK;
    rows[0].rfc8461 = true;
    rows[0].probed_at = atomic_load(&fake_now) + 800;
    rows[0].expires_at = rows[0].probed_at + 86400;
    assert_int_equal(probecache_put(c, &rows[0], &err), CACHE_OK);
    cache_close(c);
    atomic_store(&fake_now, atomic_load(&fake_now) + 810);
    probes_refresh(p);
    probes_drain(p);
    probes_get(p, "unverified.net-4.example", &h);
    assert_int_equal(h.grade, TLSPROBE_GRADE_GOOD);
    assert_int_equal(atomic_load(&probe_calls), 1);
    probes_get_stats(p, &st);
    assert_int_equal(st.cache_loads, 1); /* the job took the live row, probed nothing */
    atomic_store(&fake_now, atomic_load(&fake_now) - 810);
    probes_close(p);

    /* A new process (a restart, a reload) starts with the live rows in memory. */
    p = open_probes(cfg, 0);
    atomic_store(&fake_now, atomic_load(&fake_now) + 810);
    probes_get(p, "unverified.net-4.example", &h);
    assert_int_equal(h.state, PROBES_KNOWN);
    assert_int_equal(h.grade, TLSPROBE_GRADE_GOOD);
    atomic_store(&fake_now, atomic_load(&fake_now) - 810);
    probes_close(p);

    /* A one-shot tool reads the rows at once, on its own thread. */
    p = open_probes(cfg, 0);
    probes_load_on_miss(p);
    atomic_store(&fake_now, atomic_load(&fake_now) + 810);
    probes_get(p, "unverified.net-4.example", &h);
    assert_int_equal(h.state, PROBES_KNOWN);
    assert_int_equal(h.grade, TLSPROBE_GRADE_GOOD);
    probes_get(p, "good.net-9.example", &h); /* no rows: queued as usual */
    assert_int_equal(h.state, PROBES_NOT_YET);
    probes_drain(p);
    assert_int_equal(atomic_load(&probe_calls), 1);
    atomic_store(&fake_now, atomic_load(&fake_now) - 810);
    probes_close(p);

    /* mtasts-ctl cache: every row listed in host order, one host's deleted, then all. */
    assert_int_equal(cache_open(db, 1000, &c, &err), CACHE_OK);
    {
        struct listed l = {0};

        assert_int_equal(probecache_list(c, 100, list_into, &l, &n_bad, &err), CACHE_OK);
        assert_int_equal(l.n, 2);
        assert_int_equal(n_bad, 0);
        assert_string_equal(l.hosts[0], "good.net-9.example");
        assert_string_equal(l.hosts[1], "unverified.net-4.example");
        assert_int_equal(l.grades[1], TLSPROBE_GRADE_GOOD);
        assert_int_equal(probecache_list(c, 1, list_into, &l, &n_bad, &err), CACHE_OK);
        assert_int_equal(l.n, 3); /* max 1: one more */
        assert_int_equal(probecache_delete(c, "unverified.net-4.example", &err), CACHE_OK);
        assert_int_equal(probecache_delete(c, "unverified.net-4.example", &err),
                         CACHE_NOT_FOUND);
        assert_non_null(strstr(err.msg, "unverified.net-4.example"));
        assert_int_equal(probecache_get(c, "good.net-9.example", 25, rows, PROBECACHE_ADDR_MAX,
                                        &n, &n_bad, &err), CACHE_OK);
        assert_int_equal(n, 1);
        assert_int_equal(probecache_delete(c, NULL, &err), CACHE_OK);
        l.n = 0;
        assert_int_equal(probecache_list(c, 100, list_into, &l, &n_bad, &err), CACHE_OK);
        assert_int_equal(l.n, 0);
    }
    cache_close(c);
    config_unref(cfg);
    unlink(db);
    snprintf(text, sizeof(text), "%s-wal", db);
    unlink(text);
    snprintf(text, sizeof(text), "%s-shm", db);
    unlink(text);
    rmdir(dir);
}

/* A host is WebPKI-valid only if every judged address is: the MTA may
 * use any of them (an address that could not be judged does not count). */
static void
summary_pkix_needs_every_judged_address(void **state)
{
    struct probecache_row rows[3];
    struct probecache_host sum;

    (void)state;
    memset(rows, 0, sizeof(rows));
    for (size_t i = 0; i < 3; i++) {
        rows[i].grade = TLSPROBE_GRADE_GOOD;
        rows[i].rfc8461 = rows[i].pkix = rows[i].tls = true;
        rows[i].dane = TLSA_DANE_VERIFIED;
    }
    rows[2].grade = TLSPROBE_GRADE_UNKNOWN;
    rows[2].rfc8461 = rows[2].pkix = rows[2].tls = false;
    probecache_summarise(rows, 3, &sum);
    assert_true(sum.rfc8461);
    assert_true(sum.pkix);
    rows[1].pkix = false; /* a self-signed DANE-EE address among them */
    probecache_summarise(rows, 3, &sum);
    assert_true(sum.rfc8461);
    assert_false(sum.pkix);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(first_ask_is_unknown_then_known),
        cmocka_unit_test(dane_outcomes_kept_with_the_probe),
        cmocka_unit_test(summary_pkix_needs_every_judged_address),
        cmocka_unit_test(success_and_failure_ttls),
        cmocka_unit_test(refresh_before_expiry_of_hosts_in_use),
        cmocka_unit_test(one_probe_in_flight_per_host),
        cmocka_unit_test(concurrency_bounds),
        cmocka_unit_test(shared_engine),
        cmocka_unit_test(a_wait_is_woken_by_the_result),
        cmocka_unit_test(a_wait_ends_at_the_deadline),
        cmocka_unit_test(first_contact_before_refresh),
        cmocka_unit_test(probes_charged_to_sender_and_connection),
        cmocka_unit_test(a_busy_network_holds_no_worker),
        cmocka_unit_test(never_probed),
        cmocka_unit_test(private_addresses_not_probed),
        cmocka_unit_test(rows_shared_through_the_cache),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
