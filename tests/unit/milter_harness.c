/*
 * milter_harness - the fakes, the world and the MTA side for driving the
 * filter in process; see milter_harness.h.
 */
#include "unit.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "cache.h"
#include "filter.h"
#include "log.h"
#include "milter_harness.h"
#include "reply.h"
#include "runtime.h"
#include "smfi.h"

/* ================================================================ fakes */

struct fake fakes[N_CONN];
struct call calls[MAX_CALLS];
size_t n_calls;
struct symread symreads[MAX_SYMREADS];
size_t n_symreads;
char *ctx_page;		/* PROT_NONE: the SMFICTX handles point here */


static int
conn_of(SMFICTX *ctx)
{
    ptrdiff_t i = (const char *)(const void *)ctx - ctx_page;

    if (ctx_page == NULL || i < 0 || i >= N_CONN)
        fail_msg("the filter passed an SMFICTX * that no connection has: %p", (void *)ctx);
    return (int)i;
}

const char *
stage_name(int stage)
{
    switch (stage) {
    case STAGE_NEGOTIATE:
        return "negotiate";
    case SMFIM_CONNECT:
        return "connect";
    case SMFIM_ENVFROM:
        return "envfrom";
    case SMFIM_ENVRCPT:
        return "envrcpt";
    case STAGE_HEADER:
        return "header";
    case SMFIM_EOM:
        return "eom";
    case STAGE_ABORT:
        return "abort";
    case STAGE_CLOSE:
        return "close";
    default:
        return "(none)";
    }
}

static struct call *
record(enum call_kind kind, int conn)
{
    struct call *c;

    if (n_calls == MAX_CALLS)
        fail_msg("more than %d recorded libmilter calls", MAX_CALLS);
    c = &calls[n_calls++];
    memset(c, 0, sizeof(*c));
    c->kind = kind;
    c->conn = conn;
    return c;
}

static void
copy_text(char *out, size_t outsz, const char *in, const char *what)
{
    if (in == NULL)
        fail_msg("%s is NULL", what);
    if (strlen(in) >= outsz)
        fail_msg("%s is %zu bytes long", what, strlen(in));
    memcpy(out, in, strlen(in) + 1);
}

static char *
fake_getsymval(SMFICTX *ctx, char *name)
{
    struct fake *f = &fakes[conn_of(ctx)];

    if (n_symreads < MAX_SYMREADS) {
        symreads[n_symreads].stage = f->stage;
        snprintf(symreads[n_symreads].name, sizeof(symreads[0].name), "%s", name);
        n_symreads++;
    }
    for (size_t i = 0; i < f->n_macro; i++)
        if (strcmp(f->macro[i].name, name) == 0)
            return (char *)f->macro[i].value;
    return NULL;
}

/* The checks of Postfix's milter8_valid_smtp_reply, and libmilter's '%'. */
static void
check_reply(const char *rcode, const char *xcode, const char *text)
{
    size_t n;

    if (rcode == NULL || strlen(rcode) != 3 || (rcode[0] != '4' && rcode[0] != '5') ||
        rcode[1] < '0' || rcode[1] > '9' || rcode[2] < '0' || rcode[2] > '9')
        fail_msg("reply code \"%s\" is not 4xx or 5xx", rcode ? rcode : "(null)");
    if (xcode == NULL || xcode[0] != rcode[0] || xcode[1] != '.')
        fail_msg("enhanced code \"%s\" is not of the class of %s", xcode ? xcode : "(null)",
                 rcode);
    if (text == NULL)
        fail_msg("reply without text");
    for (const unsigned char *p = (const unsigned char *)text; *p != '\0'; p++)
        if (*p < 0x20 || *p >= 0x7f)
            fail_msg("reply text has the byte 0x%02x at %zu: \"%s\"", *p,
                     (size_t)(p - (const unsigned char *)text), text);
    for (const char *p = text; *p != '\0'; p += n) {
        n = strspn(p, "%");
        if (n % 2 != 0)
            fail_msg("reply text has an undoubled '%%' at %zu: \"%s\"", (size_t)(p - text),
                     text);
        if (n == 0)
            n = 1;
    }
    if (strlen(rcode) + 1 + strlen(xcode) + 1 + strlen(text) > REPLY_MAX_LINE)
        fail_msg("reply line is %zu characters long",
                 strlen(rcode) + strlen(xcode) + strlen(text) + 2);
}

static int
fake_setreply(SMFICTX *ctx, char *rcode, char *xcode, char *text)
{
    int conn = conn_of(ctx);
    struct call *c;

    if (fakes[conn].stage != SMFIM_ENVRCPT)
        fail_msg("setreply at %s", stage_name(fakes[conn].stage));
    check_reply(rcode, xcode, text);
    c = record(CALL_SETREPLY, conn);
    copy_text(c->name, sizeof(c->name), rcode, "rcode");
    copy_text(c->xcode, sizeof(c->xcode), xcode, "xcode");
    copy_text(c->text, sizeof(c->text), text, "reply text");
    return MI_SUCCESS;
}

static void
check_at_eom(int conn, const char *what)
{
    if (fakes[conn].stage != SMFIM_EOM)
        fail_msg("%s at %s: libmilter allows it only at end of message", what,
                 stage_name(fakes[conn].stage));
}

static int
fake_insheader(SMFICTX *ctx, int index, char *name, char *value)
{
    int conn = conn_of(ctx);
    struct call *c;

    check_at_eom(conn, "insheader");
    if (value == NULL || strpbrk(value, "\r\n") != NULL)
        fail_msg("header value with CR or LF, or NULL");
    c = record(CALL_INSHEADER, conn);
    c->index = index;
    copy_text(c->name, sizeof(c->name), name, "header name");
    copy_text(c->text, sizeof(c->text), value, "header value");
    return MI_SUCCESS;
}

static int
fake_chgheader(SMFICTX *ctx, char *name, int index, char *value)
{
    int conn = conn_of(ctx);
    struct call *c;

    check_at_eom(conn, "chgheader");
    c = record(CALL_CHGHEADER, conn);
    c->index = index;
    c->value_null = value == NULL;
    copy_text(c->name, sizeof(c->name), name, "header name");
    if (value != NULL)
        copy_text(c->text, sizeof(c->text), value, "header value");
    return MI_SUCCESS;
}

static int
fake_quarantine(SMFICTX *ctx, char *reason)
{
    int conn = conn_of(ctx);
    struct call *c;

    check_at_eom(conn, "quarantine");
    if (reason == NULL || reason[0] == '\0')
        fail_msg("quarantine without a reason (libmilter refuses it)");
    if (strpbrk(reason, "\r\n") != NULL)
        fail_msg("quarantine reason with CR or LF: \"%s\"", reason);
    c = record(CALL_QUARANTINE, conn);
    copy_text(c->text, sizeof(c->text), reason, "quarantine reason");
    return MI_SUCCESS;
}

static int
fake_setsymlist(SMFICTX *ctx, int stage, char *macros)
{
    int conn = conn_of(ctx);
    struct call *c;

    if (fakes[conn].stage != STAGE_NEGOTIATE)
        fail_msg("setsymlist at %s: libmilter allows it only in xxfi_negotiate",
                 stage_name(fakes[conn].stage));
    c = record(CALL_SETSYMLIST, conn);
    c->index = stage;
    copy_text(c->text, sizeof(c->text), macros, "macro list");
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

static const struct smfi_ops fake_ops = {
    fake_getsymval, fake_setreply,  fake_insheader, fake_chgheader,
    fake_quarantine, fake_setsymlist, fake_getpriv,  fake_setpriv,
};

/* ---------------------------------------------------------- macros */

void
set_macro(int conn, const char *name, const char *value)
{
    struct fake *f = &fakes[conn];

    for (size_t i = 0; i < f->n_macro; i++) {
        if (strcmp(f->macro[i].name, name) == 0) {
            if (value != NULL) {
                f->macro[i].value = value;
            } else {
                f->macro[i] = f->macro[f->n_macro - 1];
                f->n_macro--;
            }
            return;
        }
    }
    if (value == NULL)
        return;
    assert_true(f->n_macro < MAX_MACROS);
    f->macro[f->n_macro].name = name;
    f->macro[f->n_macro].value = value;
    f->n_macro++;
}

/* ---------------------------------------------------------- queries on the record */

size_t
count_calls(int conn, enum call_kind kind)
{
    size_t n = 0;

    for (size_t i = 0; i < n_calls; i++)
        if (calls[i].conn == conn && calls[i].kind == kind)
            n++;
    return n;
}

/* The k-th call of kind on conn (from 0), or NULL. */
const struct call *
nth_call(int conn, enum call_kind kind, size_t k)
{
    for (size_t i = 0; i < n_calls; i++)
        if (calls[i].conn == conn && calls[i].kind == kind && k-- == 0)
            return &calls[i];
    return NULL;
}

void
forget_calls(void)
{
    n_calls = 0;
    n_symreads = 0;
}

/* ================================================================ world */

/*
 * Local answers for every name the tests look up, so that nothing but
 * loopback is ever asked. See the file comment.
 */
static const char unbound_conf_text[] =
    "server:\n"
    "    local-zone: \"example.\" static\n"
    "    local-data: \"enforce.example. MX 10 mx1.enforce.example.\"\n"
    "    local-data: '_mta-sts.enforce.example. TXT \"v=STSv1; id=enf1\"'\n"
    "    local-data: \"wild.example. MX 10 mx7.wild.example.\"\n"
    "    local-data: \"implicit.example. A 192.0.2.25\"\n"
    "    local-data: \"mismatch.example. MX 10 mx.other.example.\"\n"
    "    local-data: '_mta-sts.mismatch.example. TXT \"v=STSv1; id=mis1\"'\n"
    "    local-data: \"mismatchnx.example. MX 10 mx.other.example.\"\n"
    "    local-data: \"testing.example. MX 10 mx.testing.example.\"\n"
    "    local-zone: \"slowtxt.test.\" typetransparent\n"
    "    local-data: \"slowtxt.test. MX 10 mx.other.example.\"\n"
    /* unbound answers test. itself (a default local zone): not this one. */
    "    local-zone: \"uncached.test.\" transparent\n";

/* A reason from the network, with what an attacker would put in it. */

static char dir[64];
static char cache_path[128];
static int world_no;		/* conf-N and cache-N of the last runtime built */
static int world_first;		/* the first conf-N of the running test */
static bool world_up;

static void
write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");

    if (f == NULL)
        fail_msg("cannot write %s", path);
    assert_int_equal(fputs(text, f) >= 0, 1);
    assert_int_equal(fclose(f), 0);
}

static void
put_row(struct cache *c, const char *domain, const char *status, bool has_policy,
        enum policy_mode mode, const char *txt_id, const char *mx, const char *last_error,
        int64_t now)
{
    struct cache_entry e;
    struct mts_err err;
    char text[512];

    memset(&e, 0, sizeof(e));
    snprintf(e.domain, sizeof(e.domain), "%s", domain);
    snprintf(e.txt_id, sizeof(e.txt_id), "%s", txt_id);
    e.has_status = true;
    e.status = (enum status_kind)nametab_code(status_kind_names, NAMETAB_EXACT, status);
    snprintf(e.last_error, sizeof(e.last_error), "%s", last_error);
    e.has_policy = has_policy;
    e.fetched_at = now;
    e.checked_at = now;
    e.last_used = now;
    if (has_policy) {
        e.mode = mode;
        e.max_age = ENFORCE_MAX_AGE;
        e.expires_at = now + ENFORCE_MAX_AGE;
        e.mx = (char **)&mx; /* one pattern */
        e.n_mx = 1;
        snprintf(text, sizeof(text), "version: STSv1\nmode: %s\nmx: %s\nmax_age: %d\n",
                 policy_mode_name(mode), mx, ENFORCE_MAX_AGE);
        e.policy_text = text;
    } else {
        e.expires_at = now + 3600;
    }
    if (cache_put(c, &e, &err) != CACHE_OK)
        fail_msg("cache_put %s: %s", domain, err.msg);
}

/* The cache every test starts from: fresh rows, nothing due for a refresh. */
static void
put_rows(const char *path)
{
    struct cache *c = NULL;
    struct mts_err err;
    int64_t now = (int64_t)time(NULL);

    if (cache_open(path, 2000, &c, &err) != CACHE_OK)
        fail_msg("cache_open %s: %s", path, err.msg);
    put_row(c, "enforce.example", "enforce", true, POLICY_MODE_ENFORCE, "enf1",
            "mx1.enforce.example", "", now);
    put_row(c, "wild.example", "enforce", true, POLICY_MODE_ENFORCE, "wld1", "*.wild.example",
            "", now);
    put_row(c, "implicit.example", "enforce", true, POLICY_MODE_ENFORCE, "imp1",
            "implicit.example", "", now);
    put_row(c, "mismatch.example", "enforce", true, POLICY_MODE_ENFORCE, "mis1",
            "mx1.mismatch.example", "", now);
    put_row(c, "mismatchnx.example", "enforce", true, POLICY_MODE_ENFORCE, "mnx1",
            "mx1.mismatchnx.example", "", now);
    put_row(c, "slowtxt.test", "enforce", true, POLICY_MODE_ENFORCE, "slow1",
            "mx1.slowtxt.test", "", now);
    put_row(c, "testing.example", "testing", true, POLICY_MODE_TESTING, "tst1",
            "mx.testing.example", "", now);
    put_row(c, "none.example", "none", true, POLICY_MODE_NONE, "non1", "mx.none.example", "",
            now);
    put_row(c, "absent.example", "absent", false, POLICY_MODE_NONE, "", NULL,
            "no usable MTA-STS TXT record", now);
    put_row(c, "failed.example", "failed", false, POLICY_MODE_NONE, "fail1", NULL,
            "policy fetch failed: HTTP status 404", now);
    put_row(c, "unknown.example", "unknown", false, POLICY_MODE_NONE, "", NULL, HOSTILE_ERROR,
            now);
    {
        /* A reason naming the milter's insides: never for the SMTP client. */
        char leak[256];

        snprintf(leak, sizeof(leak), LEAKY_ERROR_FMT, path);
        put_row(c, "leaky.example", "unknown", false, POLICY_MODE_NONE, "", NULL, leak, now);
    }
    cache_close(c);
}

static void
remove_cache(void)
{
    static const char *const suffix[] = {"", "-wal", "-shm", "-journal"};
    char p[160];

    for (size_t i = 0; i < N_ROWS(suffix); i++) {
        snprintf(p, sizeof(p), "%s%s", cache_path, suffix[i]);
        (void)unlink(p);
    }
}

/* Writes a configuration (the base plus extra) to a new file; returns its path. */
static const char *
write_conf(const char *extra)
{
    static char path[128];
    char text[2048];
    int n;

    snprintf(path, sizeof(path), "%s/conf-%d", dir, ++world_no);
    n = snprintf(text, sizeof(text),
                 "cache_db = %s\n"
                 "resolv_conf = %s/resolv.conf\n"
                 "unbound_conf = %s/unbound.conf\n"
                 "trust_anchor =\n"
                 "dns_timeout_ms = 500ms\n"
                 "rcpt_deadline_ms = 1s\n"
                 "lookup_workers = 2\n"
                 "refresh_interval = 1h\n"
                 "enforcing_transports = smtp\n"
                 "%s",
                 cache_path, dir, dir, extra != NULL ? extra : "");
    assert_true(n > 0 && (size_t)n < sizeof(text));
    write_file(path, text);
    return path;
}

struct runtime *
build_runtime(const char *extra)
{
    struct runtime *rt = NULL;
    struct mts_err err;
    const char *path = write_conf(extra);

    mts_err_clear(&err);
    if (runtime_build(path, true, &rt, &err) != 0)
        fail_msg("runtime_build: %s", err.msg);
    assert_non_null(rt->discover);
    return rt;
}

/* Starts a test: a fresh cache, a runtime from base + extra, installed. */
void
world_start(const char *extra)
{
    memset(fakes, 0, sizeof(fakes));
    for (int i = 0; i < N_CONN; i++)
        fakes[i].stage = STAGE_NONE;
    forget_calls();
    snprintf(cache_path, sizeof(cache_path), "%s/cache-%d.sqlite", dir, world_no + 1);
    world_first = world_no + 1;
    world_up = true;
    put_rows(cache_path);
    runtime_install(build_runtime(extra));
}

/* Closes every connection still open and drops the runtime (waits for lookups). */
void
world_shutdown(void)
{
    for (int i = 0; i < N_CONN; i++) {
        if (fakes[i].priv != NULL) {
            fakes[i].stage = STAGE_CLOSE;
            filter_desc.xxfi_close(CTX(i));
        }
    }
    runtime_install(NULL);
}

/* Teardown of every test: also after a failure. */
void
world_end(void)
{
    if (world_up) {
        world_shutdown();
        remove_cache();
        for (int k = world_first; k <= world_no; k++) {
            char p[128];
            snprintf(p, sizeof(p), "%s/conf-%d", dir, k);
            (void)unlink(p);
        }
        world_up = false;
    }
}

/* Does the cache hold a row for domain? Only after world_shutdown(). */
bool
cache_has_row(const char *domain)
{
    struct cache *c = NULL;
    struct cache_entry e;
    struct mts_err err;
    enum cache_status st;

    if (cache_open(cache_path, 2000, &c, &err) != CACHE_OK)
        fail_msg("cache_open: %s", err.msg);
    st = cache_get(c, domain, &e, &err);
    cache_entry_free(&e);
    cache_close(c);
    if (st != CACHE_OK && st != CACHE_NOT_FOUND)
        fail_msg("cache_get %s: %s", domain, err.msg);
    return st == CACHE_OK;
}

int
group_setup(void **state)
{
    char p[128];

    (void)state;
    log_init("test_filter", LOG_TO_STDERR, LOG_MAIL);
    log_set_level(getenv("TEST_FILTER_VERBOSE") != NULL ? LOG_DEBUG : LOG_CRIT);
    snprintf(dir, sizeof(dir), "/tmp/test_filter.XXXXXX");
    if (mkdtemp(dir) == NULL)
        return -1;
    snprintf(p, sizeof(p), "%s/resolv.conf", dir);
    write_file(p, "nameserver 127.0.0.9\n");
    snprintf(p, sizeof(p), "%s/unbound.conf", dir);
    write_file(p, unbound_conf_text);
    ctx_page = mmap(NULL, (size_t)sysconf(_SC_PAGESIZE), PROT_NONE,
                    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (ctx_page == MAP_FAILED) {
        ctx_page = NULL;
        return -1;
    }
    smfi = fake_ops;
    return 0;
}

int
group_teardown(void **state)
{
    char p[128];

    (void)state;
    snprintf(p, sizeof(p), "%s/resolv.conf", dir);
    (void)unlink(p);
    snprintf(p, sizeof(p), "%s/unbound.conf", dir);
    (void)unlink(p);
    if (rmdir(dir) != 0)
        fprintf(stderr, "test_filter: %s is not empty\n", dir);
    if (ctx_page != NULL)
        munmap(ctx_page, (size_t)sysconf(_SC_PAGESIZE));
    return 0;
}

/* ================================================================ the MTA side */

sfsistat
negotiate(int conn, unsigned long f0, unsigned long f1, struct negotiated *out)
{
    struct negotiated n;
    sfsistat rc;

    memset(&n, 0xa5, sizeof(n));
    fakes[conn].stage = STAGE_NEGOTIATE;
    rc = filter_desc.xxfi_negotiate(CTX(conn), f0, f1, 0, 0, &n.f[0], &n.f[1], &n.f[2],
                                    &n.f[3]);
    fakes[conn].negotiated = rc == SMFIS_CONTINUE;
    fakes[conn].pf1 = n.f[1];
    if (out != NULL)
        *out = n;
    return rc;
}

sfsistat
connect_peer(int conn, enum peer peer)
{
    struct sockaddr_in in4;
    struct sockaddr_in6 in6;
    struct sockaddr *sa = NULL;
    char host[] = "client.example";

    memset(&in4, 0, sizeof(in4));
    memset(&in6, 0, sizeof(in6));
    switch (peer) {
    case PEER_TCP:
        in4.sin_family = AF_INET;
        in4.sin_port = htons(41234);
        assert_int_equal(inet_pton(AF_INET, "192.0.2.10", &in4.sin_addr), 1);
        sa = (struct sockaddr *)(void *)&in4;
        break;
    case PEER_PORT0:
        in4.sin_family = AF_INET;
        in4.sin_port = 0;
        assert_int_equal(inet_pton(AF_INET, "127.0.0.1", &in4.sin_addr), 1);
        sa = (struct sockaddr *)(void *)&in4;
        break;
    case PEER_PORT0_V6:
        in6.sin6_family = AF_INET6;
        in6.sin6_port = 0;
        assert_int_equal(inet_pton(AF_INET6, "::1", &in6.sin6_addr), 1);
        sa = (struct sockaddr *)(void *)&in6;
        break;
    case PEER_NONE:
        break;
    }
    fakes[conn].stage = SMFIM_CONNECT;
    return filter_desc.xxfi_connect(CTX(conn), peer == PEER_NONE ? NULL : host, sa);
}

/* Negotiation (everything offered) and connect; both must continue. */
void
session_open(int conn, enum peer peer)
{
    assert_int_equal(negotiate(conn, OFFER_ACTIONS, OFFER_PROTOCOL, NULL), SMFIS_CONTINUE);
    assert_int_equal(connect_peer(conn, peer), SMFIS_CONTINUE);
}

/* A heap copy of exactly strlen + 1 bytes, as libmilter hands them over. */
static char *
dup_arg(const char *s)
{
    char *p = strdup(s);

    assert_non_null(p);
    return p;
}

/* MAIL FROM, with auth as {auth_authen} (NULL: not authenticated). */
sfsistat
mail_from(int conn, const char *from, const char *auth, const char *qid)
{
    return mail_from_params(conn, from, auth, qid, "SIZE=1234");
}

/* MAIL FROM with its ESMTP parameters (space-separated, at most 7), as
 * libmilter passes them: one argv entry each after the address. */
sfsistat
mail_from_params(int conn, const char *from, const char *auth, const char *qid,
                 const char *params)
{
    char *argv[9], *copy = dup_arg(params), *save = NULL, *tok;
    int n = 0;
    sfsistat rc;

    argv[n++] = dup_arg(from);
    for (tok = strtok_r(copy, " ", &save); tok != NULL && n < 8; tok = strtok_r(NULL, " ", &save))
        argv[n++] = dup_arg(tok);
    argv[n] = NULL;
    set_macro(conn, "{auth_authen}", auth);
    set_macro(conn, "i", qid);
    fakes[conn].stage = SMFIM_ENVFROM;
    rc = filter_desc.xxfi_envfrom(CTX(conn), argv);
    for (int i = 0; i < n; i++)
        free(argv[i]);
    free(copy);
    return rc;
}

/* RCPT TO, with the route the MTA resolved (NULL: macro not sent). */
sfsistat
rcpt_to(int conn, const char *rcpt, const char *mailer, const char *host)
{
    char *argv[2];
    sfsistat rc;

    argv[0] = dup_arg(rcpt);
    argv[1] = NULL;
    set_macro(conn, "{rcpt_mailer}", mailer);
    set_macro(conn, "{rcpt_host}", host);
    fakes[conn].stage = SMFIM_ENVRCPT;
    rc = filter_desc.xxfi_envrcpt(CTX(conn), argv);
    free(argv[0]);
    return rc;
}

/*
 * A header; the answer must be SMFIS_NOREPLY exactly when the filter asked
 * for SMFIP_NR_HDR (libmilter's sendreply() logs "milter claimed not to
 * reply ... but did anyway" for any other answer, and the MTA would wait
 * for a reply that never comes if the filter said NOREPLY unasked).
 */
void
header(int conn, const char *name, const char *value)
{
    bool noreply = fakes[conn].negotiated && (fakes[conn].pf1 & SMFIP_NR_HDR) != 0;
    char *n = dup_arg(name), *v = dup_arg(value);
    sfsistat rc;

    fakes[conn].stage = STAGE_HEADER;
    rc = filter_desc.xxfi_header(CTX(conn), n, v);
    free(n);
    free(v);
    if (rc != (noreply ? SMFIS_NOREPLY : SMFIS_CONTINUE))
        fail_msg("header returned %d with SMFIP_NR_HDR %s", rc,
                 noreply ? "negotiated" : "not negotiated");
}

sfsistat
end_of_message(int conn)
{
    fakes[conn].stage = SMFIM_EOM;
    return filter_desc.xxfi_eom(CTX(conn));
}

sfsistat
abort_message(int conn)
{
    fakes[conn].stage = STAGE_ABORT;
    return filter_desc.xxfi_abort(CTX(conn));
}

sfsistat
close_conn(int conn)
{
    fakes[conn].stage = STAGE_CLOSE;
    return filter_desc.xxfi_close(CTX(conn));
}

const char *
rc_name(sfsistat rc)
{
    switch (rc) {
    case SMFIS_CONTINUE:
        return "SMFIS_CONTINUE";
    case SMFIS_REJECT:
        return "SMFIS_REJECT";
    case SMFIS_DISCARD:
        return "SMFIS_DISCARD";
    case SMFIS_ACCEPT:
        return "SMFIS_ACCEPT";
    case SMFIS_TEMPFAIL:
        return "SMFIS_TEMPFAIL";
    case SMFIS_NOREPLY:
        return "SMFIS_NOREPLY";
    default:
        return "(other)";
    }
}

void
expect_rc(sfsistat got, sfsistat want, const char *what)
{
    if (got != want)
        fail_msg("%s returned %s, want %s", what, rc_name(got), rc_name(want));
}

/* The one tag header of conn at EOM (name MTA-STS-Status, index 0), or NULL. */
void
expect_tags(int conn, const char *const *want, size_t n_want)
{
    size_t n = count_calls(conn, CALL_INSHEADER);

    if (n != n_want) {
        const struct call *c = nth_call(conn, CALL_INSHEADER, 0);
        fail_msg("%zu tag headers, want %zu (first: \"%s\")", n, n_want, c ? c->text : "");
    }
    /* Inserted at index 0 from the last, so that they read in order. */
    for (size_t i = 0; i < n_want; i++) {
        const struct call *c = nth_call(conn, CALL_INSHEADER, n_want - 1 - i);
        assert_string_equal(c->name, "MTA-STS-Status");
        assert_int_equal(c->index, 0);
        assert_string_equal(c->text, want[i]);
    }
}

void
expect_reply(int conn, const char *rcode, const char *xcode, const char *const *frags)
{
    const struct call *c;

    if (rcode == NULL) {
        c = nth_call(conn, CALL_SETREPLY, 0);
        if (c != NULL)
            fail_msg("unexpected reply %s %s %s", c->name, c->xcode, c->text);
        return;
    }
    assert_int_equal(count_calls(conn, CALL_SETREPLY), 1);
    c = nth_call(conn, CALL_SETREPLY, 0);
    assert_string_equal(c->name, rcode);
    assert_string_equal(c->xcode, xcode);
    for (size_t i = 0; frags != NULL && frags[i] != NULL; i++)
        if (strstr(c->text, frags[i]) == NULL)
            fail_msg("reply text \"%s\" lacks \"%s\"", c->text, frags[i]);
}
