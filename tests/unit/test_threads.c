/*
 * test_threads - the milter's callbacks on many connections at once, as
 * libmilter runs them (one thread a connection), while the configuration
 * is reloaded and the log level changes under them. Built for
 * ThreadSanitizer (./configure --enable-tsan, which .ci/run runs): every
 * shared structure - the runtime swap and its reference counts, the
 * discovery engine's in-flight table and workers, the shared cache, the
 * log level - is reached from many threads here. In a plain build it
 * still checks that every answer is the one a single connection gets.
 *
 * The world is test_filter's, reduced: libunbound local zones answer
 * everything under "example." (no packet leaves the host), and the cache
 * is pre-filled with an enforce domain whose MX matches its policy and
 * one whose MX does not. Every connection sends MESSAGES messages of
 * five recipients: the matching enforce domain (tagged), the mismatched
 * one (550 5.7.5, after the TXT re-check), a domain first seen here
 * (absent, looked up by many connections at once: one lookup each), a
 * local domain, and an address that cannot be read (deferred: no rule).
 */
#include "unit.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <libmilter/mfapi.h>

#include "cache.h"
#include "filter.h"
#include "log.h"
#include "runtime.h"
#include "smfi.h"

#define N_CONN 16
#define MESSAGES 12
#define RELOADS 40
#define ENFORCE_MAX_AGE 86400

struct conn_fake {
    void *priv;
    const char *auth;
    char rcode[8], xcode[16];
    int n_replies;
    int n_headers;
};

static struct conn_fake fakes[N_CONN];
static char *ctx_page;		/* PROT_NONE: the filter must not look inside */
static char dir[64];

#define CTX(i) ((SMFICTX *)(void *)(ctx_page + (i)))

static int
conn_of(SMFICTX *ctx)
{
    ptrdiff_t i = (const char *)(const void *)ctx - ctx_page;

    if (i < 0 || i >= N_CONN)
        abort();
    return (int)i;
}

static char *
fake_getsymval(SMFICTX *ctx, char *name)
{
    struct conn_fake *f = &fakes[conn_of(ctx)];

    if (strcmp(name, "{auth_authen}") == 0)
        return (char *)f->auth;
    if (strcmp(name, "{rcpt_mailer}") == 0)
        return (char *)"smtp";
    if (strcmp(name, "i") == 0)
        return (char *)"4XyzQ1";
    return NULL;
}

static int
fake_setreply(SMFICTX *ctx, char *rcode, char *xcode, char *text)
{
    struct conn_fake *f = &fakes[conn_of(ctx)];

    (void)text;
    snprintf(f->rcode, sizeof(f->rcode), "%s", rcode ? rcode : "");
    snprintf(f->xcode, sizeof(f->xcode), "%s", xcode ? xcode : "");
    f->n_replies++;
    return MI_SUCCESS;
}

static int
fake_insheader(SMFICTX *ctx, int index, char *name, char *value)
{
    (void)index;
    (void)name;
    (void)value;
    fakes[conn_of(ctx)].n_headers++;
    return MI_SUCCESS;
}

static int
fake_chgheader(SMFICTX *ctx, char *name, int index, char *value)
{
    (void)ctx;
    (void)name;
    (void)index;
    (void)value;
    return MI_SUCCESS;
}

static int
fake_quarantine(SMFICTX *ctx, char *reason)
{
    (void)ctx;
    (void)reason;
    return MI_SUCCESS;
}

static int
fake_setsymlist(SMFICTX *ctx, int stage, char *macros)
{
    (void)ctx;
    (void)stage;
    (void)macros;
    return MI_SUCCESS;
}

static void *
fake_getpriv(SMFICTX *ctx)
{
    return fakes[conn_of(ctx)].priv;
}

static int
fake_setpriv(SMFICTX *ctx, void *priv)
{
    fakes[conn_of(ctx)].priv = priv;
    return MI_SUCCESS;
}

/* ------------------------------------------------------------ the world */

static const char unbound_conf_text[] =
    "server:\n"
    "    local-zone: \"example.\" static\n"
    "    local-data: \"enforce.example. MX 10 mx1.enforce.example.\"\n"
    "    local-data: '_mta-sts.enforce.example. TXT \"v=STSv1; id=enf1\"'\n"
    "    local-data: \"mismatch.example. MX 10 mx.other.example.\"\n"
    "    local-data: '_mta-sts.mismatch.example. TXT \"v=STSv1; id=mis1\"'\n";

static void
write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");

    if (f == NULL)
        fail_msg("cannot write %s", path);
    assert_true(fputs(text, f) >= 0);
    assert_int_equal(fclose(f), 0);
}

static void
put_row(struct cache *c, const char *domain, const char *mx, const char *id, int64_t now)
{
    struct cache_entry e;
    struct mts_err err;
    char text[512];

    memset(&e, 0, sizeof(e));
    snprintf(e.domain, sizeof(e.domain), "%s", domain);
    snprintf(e.txt_id, sizeof(e.txt_id), "%s", id);
    e.has_status = true;
    e.status = STATUS_ENFORCE;
    e.has_policy = true;
    e.fetched_at = e.checked_at = e.last_used = now;
    e.mode = POLICY_MODE_ENFORCE;
    e.max_age = ENFORCE_MAX_AGE;
    e.expires_at = now + ENFORCE_MAX_AGE;
    e.mx = (char **)&mx; /* one pattern */
    e.n_mx = 1;
    snprintf(text, sizeof(text), "version: STSv1\nmode: enforce\nmx: %s\nmax_age: %d\n", mx,
             ENFORCE_MAX_AGE);
    e.policy_text = text;
    if (cache_put(c, &e, &err) != CACHE_OK)
        fail_msg("cache_put %s: %s", domain, err.msg);
}

static const char *
make_world(void)
{
    static char conf[128];
    char path[128], text[1024];
    struct cache *c = NULL;
    struct mts_err err;

    snprintf(dir, sizeof(dir), "/tmp/mts-threads-XXXXXX");
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/unbound.conf", dir);
    write_file(path, unbound_conf_text);
    snprintf(path, sizeof(path), "%s/resolv.conf", dir);
    write_file(path, "nameserver 127.0.0.9\n");
    snprintf(path, sizeof(path), "%s/cache.sqlite", dir);
    if (cache_open(path, 2000, &c, &err) != CACHE_OK)
        fail_msg("cache_open: %s", err.msg);
    put_row(c, "enforce.example", "mx1.enforce.example", "enf1", (int64_t)time(NULL));
    put_row(c, "mismatch.example", "mx1.mismatch.example", "mis1", (int64_t)time(NULL));
    cache_close(c);
    snprintf(conf, sizeof(conf), "%s/milter.conf", dir);
    snprintf(text, sizeof(text),
             "cache_db = %s/cache.sqlite\n"
             "resolv_conf = %s/resolv.conf\n"
             "unbound_conf = %s/unbound.conf\n"
             "trust_anchor =\n"
             "dns_timeout_ms = 2s\n"
             "rcpt_deadline_ms = 8s\n"
             "lookup_workers = 4\n"
             /* threads grown for a round exit between rounds, and
              * the next round's reuse their slots: under TSan too */
             "lookup_workers_idle = 1s\n"
             "refresh_interval = 1s\n"
             "enforcing_transports = smtp\n"
             "local_domains = local.example\n",
             dir, dir, dir);
    write_file(conf, text);
    return conf;
}

static void
remove_world(void)
{
    char cmd[128];

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "# cannot remove %s\n", dir);
}

/* ------------------------------------------------------------ the load */

struct worker {
    int conn;
    int wrong;			/* answers that differ from the expected ones */
    int answered;
    char first_wrong[200];
};

static void
expect(struct worker *w, const char *what, sfsistat got, sfsistat want, const char *rcode)
{
    struct conn_fake *f = &fakes[w->conn];

    w->answered++;
    if (got == want && (rcode == NULL || strcmp(f->rcode, rcode) == 0))
        return;
    if (w->wrong++ == 0)
        snprintf(w->first_wrong, sizeof(w->first_wrong), "%s: got %d (reply %s %s), want %d %s",
                 what, (int)got, f->rcode, f->xcode, (int)want, rcode ? rcode : "");
}

static void *
worker_main(void *arg)
{
    struct worker *w = arg;
    SMFICTX *ctx = CTX(w->conn);
    struct sockaddr_in sin;
    unsigned long pf[4];

    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_port = htons(40000 + w->conn);
    sin.sin_addr.s_addr = htonl(0x7f000001);
    fakes[w->conn].auth = "alice";
    if (filter_desc.xxfi_negotiate(ctx, SMFIF_ADDHDRS | SMFIF_CHGHDRS | SMFIF_QUARANTINE |
                                            SMFIF_SETSYMLIST,
                                   0x1fffff, 0, 0, &pf[0], &pf[1], &pf[2],
                                   &pf[3]) != SMFIS_CONTINUE ||
        filter_desc.xxfi_connect(ctx, (char *)"client.example",
                                 (_SOCK_ADDR *)(void *)&sin) != SMFIS_CONTINUE) {
        w->wrong++;
        snprintf(w->first_wrong, sizeof(w->first_wrong), "negotiate or connect failed");
        return NULL;
    }
    for (int m = 0; m < MESSAGES; m++) {
        char fresh[64], *from[] = {(char *)"<alice@corp.example>", NULL};
        char *r_enf[] = {(char *)"<bob@enforce.example>", NULL};
        char *r_mis[] = {(char *)"<bob@mismatch.example>", NULL};
        char *r_new[] = {fresh, NULL};
        char *r_loc[] = {(char *)"<carol@local.example>", NULL};
        char *r_bad[] = {(char *)"<broken@", NULL};

        /* The same new domain for every connection in a round: lookups of
         * one domain from many threads share one lookup. */
        snprintf(fresh, sizeof(fresh), "<dave@new%d.example>", m);
        expect(w, "MAIL FROM", filter_desc.xxfi_envfrom(ctx, from), SMFIS_CONTINUE, NULL);
        expect(w, "enforce.example", filter_desc.xxfi_envrcpt(ctx, r_enf), SMFIS_CONTINUE,
               NULL);
        expect(w, "mismatch.example", filter_desc.xxfi_envrcpt(ctx, r_mis), SMFIS_REJECT,
               "550");
        expect(w, fresh, filter_desc.xxfi_envrcpt(ctx, r_new), SMFIS_CONTINUE, NULL);
        expect(w, "local.example", filter_desc.xxfi_envrcpt(ctx, r_loc), SMFIS_CONTINUE, NULL);
        expect(w, "unreadable", filter_desc.xxfi_envrcpt(ctx, r_bad), SMFIS_TEMPFAIL, "450");
        expect(w, "EOM", filter_desc.xxfi_eom(ctx), SMFIS_CONTINUE, NULL);
    }
    filter_desc.xxfi_close(ctx);
    return NULL;
}

struct reloader {
    const char *conf;
    int reloads;
    char error[256];
};

static void *
reloader_main(void *arg)
{
    struct reloader *r = arg;

    for (int i = 0; i < RELOADS; i++) {
        struct runtime *rt;
        struct mts_err err;
        struct timespec ts = {0, 5 * 1000 * 1000};

        if (runtime_build(r->conf, true, &rt, &err) != 0) {
            snprintf(r->error, sizeof(r->error), "%s", err.msg);
            return NULL;
        }
        runtime_install(rt);
        log_set_level(i % 2 ? LOG_ERR : LOG_WARNING);
        r->reloads++;
        nanosleep(&ts, NULL);
    }
    return NULL;
}

static void
many_connections_and_reloads(void **state)
{
    pthread_t threads[N_CONN], rthread;
    struct worker workers[N_CONN];
    struct reloader rl;
    struct runtime *rt;
    struct mts_err err;
    int wrong = 0, answered = 0;

    (void)state;
    memset(&rl, 0, sizeof(rl));
    rl.conf = make_world();
    if (runtime_build(rl.conf, true, &rt, &err) != 0)
        fail_msg("runtime_build: %s", err.msg);
    runtime_install(rt);
    assert_int_equal(pthread_create(&rthread, NULL, reloader_main, &rl), 0);
    for (int i = 0; i < N_CONN; i++) {
        memset(&workers[i], 0, sizeof(workers[i]));
        workers[i].conn = i;
        assert_int_equal(pthread_create(&threads[i], NULL, worker_main, &workers[i]), 0);
    }
    for (int i = 0; i < N_CONN; i++) {
        pthread_join(threads[i], NULL);
        wrong += workers[i].wrong;
        answered += workers[i].answered;
        if (workers[i].wrong > 0)
            fprintf(stderr, "# connection %d: %d wrong, first: %s\n", i, workers[i].wrong,
                    workers[i].first_wrong);
    }
    pthread_join(rthread, NULL);
    log_set_level(LOG_WARNING);
    printf("# %d connections, %d answers checked, %d reloads meanwhile\n", N_CONN, answered,
           rl.reloads);
    runtime_install(NULL);
    remove_world();
    if (rl.error[0] != '\0')
        fail_msg("reload failed: %s", rl.error);
    assert_int_equal(rl.reloads, RELOADS);
    assert_int_equal(answered, N_CONN * MESSAGES * 7);
    assert_int_equal(wrong, 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(many_connections_and_reloads),
    };

    ctx_page = mmap(NULL, (size_t)sysconf(_SC_PAGESIZE), PROT_NONE,
                    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (ctx_page == MAP_FAILED)
        return 1;
    smfi.getsymval = fake_getsymval;
    smfi.setreply = fake_setreply;
    smfi.insheader = fake_insheader;
    smfi.chgheader = fake_chgheader;
    smfi.quarantine = fake_quarantine;
    smfi.setsymlist = fake_setsymlist;
    smfi.getpriv = fake_getpriv;
    smfi.setpriv = fake_setpriv;
    log_init("test_threads", LOG_TO_STDERR, LOG_MAIL);
    log_set_level(getenv("TEST_THREADS_VERBOSE") ? LOG_DEBUG : LOG_WARNING);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
