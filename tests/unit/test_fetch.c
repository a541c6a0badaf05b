/*
 * test_fetch - unit tests for common/fetch.c (RFC 8461 §3.3) against a real
 * HTTPS server on the loopback interface.
 *
 * The group setup makes a scratch directory and starts
 * tests/unit/fetch_server.py in it (found through $FETCH_SERVER,
 * $top_srcdir, the current directory or this program's directory). The
 * server creates a test CA and leaf certificates there with the openssl CLI
 * and listens on ephemeral 127.0.0.1 ports; setup waits for its port file
 * and then for a successful connect (both bounded). Setup also binds one
 * port that never listens, for "connection refused". Teardown kills the
 * server by its PID and removes the directory. Only 127.0.0.1 and ::1 are
 * ever contacted. Without python3, the openssl CLI or the script the program
 * prints the TAP plan "1..0 # SKIP ..." and exits 0. (Single cases are never
 * skip()ped: cmocka's TAP "not ok # SKIP" counts as a failure in automake.)
 * TEST_FETCH_VERBOSE=1 prints each row's result and reason; TEST_FETCH_KEEP=1
 * keeps the directory (certificates, server.log, server.err).
 *
 * fetch_cases: one row per server behaviour; the policy domain
 *	<name>.test selects it (the server reads the Host header, and picks
 *	the certificate by SNI: wrongname, expired, selfsigned).
 * singles: redirect not followed (server log), user agent and cache
 *	headers, TLS 1.1 only (not run, and said, when OpenSSL cannot offer it), no
 *	address, IPv6 then IPv4, argument and option checks, status names.
 */
#include "unit.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fetch.h"

#define UA "mtasts-milter/0.1.0-test"
#define GOOD_BODY "version: STSv1\r\nmode: enforce\r\nmx: mail.good.test\r\nmax_age: 86400\r\n"
#define SHORT_MS 1000  /* total timeout of the timeout cases */
#define HANG_BOUND_S 5 /* those must return well within this */

/* ------------------------------------------------------------ the server */

static struct {
    char dir[64];
    char ca[128];
    pid_t pid;
    int refused_fd;
    unsigned short port_main, port_blackhole, port_tls11, port_refused;
    char tls11_note[256];
} W = {.pid = -1, .refused_fd = -1};

static const char *prog_path;

static double
now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

    nanosleep(&ts, NULL);
}

static bool
readable(const char *path)
{
    return access(path, R_OK) == 0;
}

static bool
find_server(char *out, size_t outsz)
{
    const char *env = getenv("FETCH_SERVER"), *src = getenv("top_srcdir"), *slash;

    if (env != NULL && readable(env))
        return (size_t)snprintf(out, outsz, "%s", env) < outsz;
    if (src != NULL && (size_t)snprintf(out, outsz, "%s/tests/unit/fetch_server.py", src) < outsz &&
        readable(out))
        return true;
    if (snprintf(out, outsz, "tests/unit/fetch_server.py") > 0 && readable(out))
        return true;
    if (prog_path != NULL && (slash = strrchr(prog_path, '/')) != NULL &&
        (size_t)snprintf(out, outsz, "%.*s/fetch_server.py", (int)(slash - prog_path), prog_path) <
            outsz &&
        readable(out))
        return true;
    return false;
}

static int
connect_ok(unsigned short port)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
    int fd = socket(AF_INET, SOCK_STREAM, 0), ok;

    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ok = fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
    if (fd >= 0)
        close(fd);
    return ok;
}

/* Reads DIR/ports ("key=value" lines) once the server has written it. */
static bool
read_ports(void)
{
    char path[128], line[300];
    FILE *f;
    unsigned v;

    snprintf(path, sizeof(path), "%s/ports", W.dir);
    if ((f = fopen(path, "r")) == NULL)
        return false;
    while (fgets(line, sizeof(line), f) != NULL) {
        line[strcspn(line, "\n")] = '\0';
        if (sscanf(line, "main=%u", &v) == 1)
            W.port_main = (unsigned short)v;
        else if (sscanf(line, "blackhole=%u", &v) == 1)
            W.port_blackhole = (unsigned short)v;
        else if (sscanf(line, "tls11=%u", &v) == 1)
            W.port_tls11 = (unsigned short)v;
        else if (strncmp(line, "tls11_note=", 11) == 0)
            snprintf(W.tls11_note, sizeof(W.tls11_note), "%.200s", line + 11);
    }
    fclose(f);
    return W.port_main != 0 && W.port_blackhole != 0;
}

static void
print_file(const char *name)
{
    char path[128], line[512];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", W.dir, name);
    if ((f = fopen(path, "r")) == NULL)
        return;
    while (fgets(line, sizeof(line), f) != NULL)
        fprintf(stderr, "# %s: %s", name, line);
    fclose(f);
}

static int
start_server(void)
{
    char script[512], errpath[128];
    struct sockaddr_in sa = {.sin_family = AF_INET};
    socklen_t salen = sizeof(sa);
    double t0 = now_s();
    int status, fd;

    if (!find_server(script, sizeof(script))) {
        fprintf(stderr, "# test_fetch: fetch_server.py not found (set FETCH_SERVER)\n");
        return -1;
    }
    snprintf(errpath, sizeof(errpath), "%s/server.err", W.dir);
    if ((W.pid = fork()) < 0)
        return -1;
    if (W.pid == 0) {
        fd = open(errpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        execlp("python3", "python3", script, W.dir, (char *)NULL);
        _exit(127);
    }
    while (!read_ports()) {
        if (waitpid(W.pid, &status, WNOHANG) == W.pid) {
            W.pid = -1;
            fprintf(stderr, "# test_fetch: fetch_server.py exited with status 0x%x\n", status);
            print_file("server.err");
            return -1;
        }
        if (now_s() - t0 > 20) {
            fprintf(stderr, "# test_fetch: server wrote no port file in 20 s\n");
            print_file("server.err");
            return -1;
        }
        sleep_ms(50);
    }
    while (!connect_ok(W.port_main)) {
        if (now_s() - t0 > 25) {
            fprintf(stderr, "# test_fetch: server does not accept connections\n");
            return -1;
        }
        sleep_ms(50);
    }
    /* Bound but not listening: a connect gets RST, i.e. "refused". */
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if ((W.refused_fd = socket(AF_INET, SOCK_STREAM, 0)) < 0 ||
        bind(W.refused_fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
        getsockname(W.refused_fd, (struct sockaddr *)&sa, &salen) != 0)
        return -1;
    W.port_refused = ntohs(sa.sin_port);
    snprintf(W.ca, sizeof(W.ca), "%s/ca.pem", W.dir);
    return 0;
}

/* The scratch directory is flat: its files, then itself. */
static void
remove_dir(void)
{
    char path[384];
    struct dirent *e;
    DIR *d;

    if ((d = opendir(W.dir)) != NULL) {
        while ((e = readdir(d)) != NULL)
            if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0 &&
                (size_t)snprintf(path, sizeof(path), "%s/%s", W.dir, e->d_name) < sizeof(path))
                (void)unlink(path);
        closedir(d);
    }
    (void)rmdir(W.dir);
}

static int
group_teardown(void **state)
{
    int status;

    (void)state;
    if (W.pid > 0) {
        kill(W.pid, SIGTERM);
        for (int i = 0; i < 60 && waitpid(W.pid, &status, WNOHANG) == 0; i++)
            sleep_ms(50);
        if (kill(W.pid, 0) == 0) {
            kill(W.pid, SIGKILL);
            waitpid(W.pid, &status, 0);
        }
        W.pid = -1;
    }
    if (W.refused_fd >= 0)
        close(W.refused_fd);
    if (W.dir[0] != '\0' && getenv("TEST_FETCH_KEEP") == NULL)
        remove_dir();
    fetch_global_cleanup();
    return 0;
}

static int
group_setup(void **state)
{
    struct mts_err err;

    if (fetch_global_init(&err) != 0) {
        fprintf(stderr, "# fetch_global_init: %s\n", err.msg);
        return -1;
    }
    snprintf(W.dir, sizeof(W.dir), "/tmp/test_fetch.XXXXXX");
    if (mkdtemp(W.dir) == NULL) {
        W.dir[0] = '\0';
        fetch_global_cleanup();
        return -1;
    }
    /* cmocka skips the group teardown when setup fails: clean up here. */
    if (start_server() != 0) {
        group_teardown(state);
        return -1;
    }
    return 0;
}

/* Lines of the server log that contain needle. */
static int
log_count(const char *needle)
{
    char path[128], line[512];
    int n = 0;
    FILE *f;

    snprintf(path, sizeof(path), "%s/server.log", W.dir);
    if ((f = fopen(path, "r")) == NULL)
        return 0;
    while (fgets(line, sizeof(line), f) != NULL)
        n += strstr(line, needle) != NULL;
    fclose(f);
    return n;
}

/*
 * The server writes its log line after the client may already have its
 * answer (a refused handshake): wait, up to ms, for at least want lines.
 */
static int
log_wait(const char *needle, int want, int ms)
{
    int n = log_count(needle);

    for (int waited = 0; n < want && waited < ms; waited += 20) {
        usleep(20000);
        n = log_count(needle);
    }
    return n;
}

/* Is prog an executable in a directory of $PATH? */
static bool
in_path(const char *prog)
{
    const char *p = getenv("PATH"), *end;
    char path[512];

    for (; p != NULL && *p != '\0'; p = *end != '\0' ? end + 1 : end) {
        end = strchr(p, ':');
        if (end == NULL)
            end = p + strlen(p);
        if ((size_t)snprintf(path, sizeof(path), "%.*s/%s", (int)(end - p), p, prog) <
                sizeof(path) &&
            access(path, X_OK) == 0)
            return true;
    }
    return false;
}

static struct fetch_options
options(unsigned short port)
{
    return (struct fetch_options){
        .ca_file = W.ca,
        .connect_timeout_ms = 5000,
        .total_timeout_ms = 10000,
        .user_agent = UA,
        .port = port,
    };
}

static const char *const loopback[] = {"127.0.0.1"};

/* --------------------------------------------------------- behaviour table */

enum port { P_MAIN, P_BLACKHOLE, P_REFUSED };
enum body { B_NONE, B_GOOD, B_EMPTY, B_EXACT };

struct fetch_case {
    const char *label;
    const char *domain; /* <name>.test: the server behaviour */
    enum port port;
    bool short_timeout; /* total SHORT_MS, and must return within HANG_BOUND_S */
    bool system_ca;     /* ca_file NULL: the system store */
    enum fetch_status want;
    long http_status;   /* -1: any */
    const char *reason; /* a failure's err.msg must contain it */
    enum body body;
};

#define OK(l, d, b)                                                                                \
    {                                                                                              \
        (l), (d), P_MAIN, false, false, FETCH_OK, 200, NULL, (b)                                   \
    }
#define BAD(l, d, s, code, r)                                                                      \
    {                                                                                              \
        (l), (d), P_MAIN, false, false, (s), (code), (r), B_NONE                                   \
    }

static const struct fetch_case fetch_cases[] = {
    OK("200 text/plain", "good.test", B_GOOD),
    OK("text/plain; charset=utf-8", "utf8.test", B_GOOD),
    OK("TEXT/PLAIN", "upper.test", B_GOOD),
    OK("Text/Plain, OWS before ';', two parameters", "params.test", B_GOOD),
    OK("1xx interim response (with its own type) before the 200", "continue.test", B_GOOD),
    OK("empty body", "empty.test", B_EMPTY),
    OK("body of exactly 65536 bytes, every byte value", "exact.test", B_EXACT),
    BAD("text/html", "html.test", FETCH_CONTENT_TYPE, 200,
        "Content-Type \"text/html\" is not text/plain"),
    BAD("text/plaintext", "plainx.test", FETCH_CONTENT_TYPE, 200, "\"text/plaintext\""),
    BAD("no Content-Type", "notype.test", FETCH_CONTENT_TYPE, 200, "no Content-Type"),
    BAD("two Content-Type headers", "twotypes.test", FETCH_CONTENT_TYPE, 200,
        "more than one Content-Type"),
    BAD("404", "notfound.test", FETCH_HTTP_STATUS, 404, "HTTP status 404"),
    BAD("500", "error500.test", FETCH_HTTP_STATUS, 500, "HTTP status 500"),
    BAD("404 with Content-Length 10000000: the status, not the size", "big404.test",
        FETCH_HTTP_STATUS, 404, "HTTP status 404"),
    BAD("302 Location with control and 8-bit bytes is quoted", "redirectctl.test", FETCH_REDIRECT,
        302, "HTTP 302 redirect to \"https://evil.test/\\x1b[31m\\xe9\" not followed"),
    BAD("304 without Location", "notmodified.test", FETCH_REDIRECT, 304,
        "HTTP 304 redirect (no Location) not followed"),
    BAD("65537 bytes with Content-Length", "big.test", FETCH_TOO_LARGE, 200,
        "policy body exceeds 65536 bytes"),
    BAD("1 MiB chunked, no Content-Length", "chunked.test", FETCH_TOO_LARGE, 200,
        "policy body exceeds 65536 bytes"),
    BAD("body shorter than Content-Length", "truncated.test", FETCH_ERROR, 200, "transfer closed"),
    BAD("no HTTP after the handshake", "garbage.test", FETCH_ERROR, -1, "HTTP/0.9"),
    BAD("certificate for another name", "wrongname.test", FETCH_TLS, 0,
        "TLS: SSL: no alternative certificate subject name matches"),
    BAD("expired certificate", "expired.test", FETCH_TLS, 0,
        "TLS: SSL certificate problem: certificate has expired"),
    BAD("self-signed certificate", "selfsigned.test", FETCH_TLS, 0,
        "TLS: SSL certificate problem: self"),
    {"test CA not in the system store", "good.test", P_MAIN, false, true, FETCH_TLS, 0,
     "TLS: SSL certificate problem", B_NONE},
    {"headers, then the body stalls", "stall.test", P_MAIN, true, false, FETCH_TIMEOUT, 200,
     "timed out after 1000 ms (transfer)", B_NONE},
    {"TCP accepted, never a byte", "blackhole.test", P_BLACKHOLE, true, false, FETCH_TIMEOUT, 0,
     "timed out after 1000 ms (connect)", B_NONE},
    {"connection refused", "good.test", P_REFUSED, false, false, FETCH_CONNECT, 0, "cannot connect",
     B_NONE},
};

static void
check_body(const struct fetch_result *r, enum body want)
{
    assert_non_null(r->body);
    switch (want) {
    case B_GOOD:
        assert_int_equal(r->body_len, sizeof(GOOD_BODY) - 1);
        assert_memory_equal(r->body, GOOD_BODY, r->body_len);
        break;
    case B_EMPTY:
        assert_int_equal(r->body_len, 0);
        break;
    case B_EXACT:
        assert_int_equal(r->body_len, 65536);
        for (size_t i = 0; i < r->body_len; i++)
            if ((unsigned char)r->body[i] != i % 256)
                fail_msg("body byte %zu is 0x%02x", i, (unsigned char)r->body[i]);
        break;
    case B_NONE:
        break;
    }
    assert_int_equal(r->body[r->body_len], '\0');
}

static void
run_fetch_case(void **state)
{
    const struct fetch_case *c = *state;
    unsigned short ports[] = {W.port_main, W.port_blackhole, W.port_refused};
    struct fetch_options o;
    struct fetch_result r;
    struct mts_err err;
    double t0;
    int rc;

    o = options(ports[c->port]);
    if (c->short_timeout)
        o.total_timeout_ms = SHORT_MS;
    if (c->system_ca)
        o.ca_file = NULL;
    t0 = now_s();
    rc = fetch_policy(&o, c->domain, loopback, 1, &r, &err);
    if (getenv("TEST_FETCH_VERBOSE") != NULL)
        fprintf(stderr, "# %s: %s %ld %.2f s: %s\n", c->label, fetch_status_name(r.status),
                r.http_status, now_s() - t0, rc == 0 ? "" : err.msg);
    /* Not a failure of fetch.c; cmocka's TAP "not ok # SKIP" would count as one. */
    if (c->system_ca && r.status == FETCH_ERROR && strstr(err.msg, "local TLS setup") != NULL) {
        fprintf(stderr, "# test_fetch: no usable system CA store (%s): not tested\n", err.msg);
        return;
    }
    if (c->short_timeout && now_s() - t0 > HANG_BOUND_S)
        fail_msg("took %.1f s with a %d ms timeout", now_s() - t0, SHORT_MS);
    if (r.status != c->want)
        fail_msg("status %s, want %s (%s)", fetch_status_name(r.status), fetch_status_name(c->want),
                 err.msg);
    if (c->http_status >= 0)
        assert_int_equal(r.http_status, c->http_status);
    if (c->want == FETCH_OK) {
        assert_int_equal(rc, 0);
        check_body(&r, c->body);
    } else {
        assert_int_equal(rc, -1);
        assert_null(r.body);
        unit_assert_reason(&err, c->reason);
    }
    fetch_result_free(&r);
    assert_null(r.body);
    fetch_result_free(&r); /* twice is harmless */
}

/* ---------------------------------------------------------------- singles */

static void
test_redirect_not_followed(void **state)
{
    struct fetch_options o = options(W.port_main);
    struct fetch_result r;
    struct mts_err err;
    char want[160];

    (void)state;
    assert_int_equal(fetch_policy(&o, "redirect.test", loopback, 1, &r, &err), -1);
    assert_int_equal(r.status, FETCH_REDIRECT);
    assert_int_equal(r.http_status, 301);
    snprintf(want, sizeof(want),
             "HTTP 301 redirect to \"https://mta-sts.redirect.test:%u/moved\" not followed "
             "(RFC 8461 §3.3)",
             (unsigned)W.port_main);
    assert_string_equal(err.msg, want);
    /* The server saw the one GET, and nothing asked for the target. */
    assert_int_equal(log_wait("redirect GET /.well-known/mta-sts.txt", 1, 3000), 1);
    assert_int_equal(log_count("GET /moved"), 0);
}

static void
test_user_agent_and_no_caching(void **state)
{
    struct fetch_options o = options(W.port_main);
    struct fetch_result r;
    struct mts_err err;
    static const char want[] = "user-agent: " UA "\nif-none-match: (none)\n"
                               "if-modified-since: (none)\ncache-control: no-cache\n";

    (void)state;
    if (fetch_policy(&o, "ua.test", loopback, 1, &r, &err) != 0)
        fail_msg("%s", err.msg);
    assert_int_equal(r.body_len, sizeof(want) - 1);
    assert_memory_equal(r.body, want, sizeof(want) - 1);
    fetch_result_free(&r);
}

static void
test_tls11_only_server(void **state)
{
    struct fetch_options o = options(W.port_tls11);
    struct fetch_result r;
    struct mts_err err;

    (void)state;
    if (W.port_tls11 == 0) {
        /* Said, not skipped: cmocka's TAP "not ok # SKIP" counts as a failure. */
        fprintf(stderr, "# test_fetch: this OpenSSL cannot serve TLS 1.1 (%s): not tested\n",
                W.tls11_note);
        return;
    }
    assert_int_equal(fetch_policy(&o, "tls11.test", loopback, 1, &r, &err), -1);
    assert_int_equal(r.status, FETCH_TLS);
    unit_assert_reason(&err, "TLS: ");
    /* Refused for its version (the server's side says so), before any GET. */
    assert_true(log_wait("unsupported protocol", 1, 3000) >= 1);
    assert_int_equal(log_count("tls11 GET"), 0);
}

static void
test_no_address(void **state)
{
    struct fetch_options o = options(W.port_main);
    struct fetch_result r;
    struct mts_err err;
    int before = log_count("good GET");

    (void)state;
    assert_int_equal(fetch_policy(&o, "good.test", NULL, 0, &r, &err), -1);
    assert_int_equal(r.status, FETCH_CONNECT);
    assert_string_equal(err.msg, "no address for mta-sts.good.test");
    assert_int_equal(log_count("good GET"), before);
}

static void
test_ipv6_then_ipv4(void **state)
{
    static const char *const both[] = {"::1", "127.0.0.1"};
    struct fetch_options o = options(W.port_main);
    struct fetch_result r;
    struct mts_err err;

    (void)state;
    /* The server listens on 127.0.0.1 only: ::1 fails, curl moves on. */
    if (fetch_policy(&o, "good.test", both, 2, &r, &err) != 0)
        fail_msg("%s", err.msg);
    check_body(&r, B_GOOD);
    fetch_result_free(&r);
}

static void
test_ca_file_missing(void **state)
{
    struct fetch_options o = options(W.port_main);
    struct fetch_result r;
    struct mts_err err;

    (void)state;
    o.ca_file = "/nonexistent/ca.pem";
    assert_int_equal(fetch_policy(&o, "good.test", loopback, 1, &r, &err), -1);
    assert_int_equal(r.status, FETCH_ERROR);
    assert_string_equal(err.msg, "CA file /nonexistent/ca.pem: No such file or directory");
}

/* Copies file from to to (replacing it in place: same inode). */
static void
copy_file(const char *from, const char *to)
{
    char buf[8192];
    FILE *in = fopen(from, "rb"), *out = fopen(to, "wb");
    size_t n;

    assert_non_null(in);
    assert_non_null(out);
    while ((n = fread(buf, 1, sizeof(buf), in)) > 0)
        assert_int_equal(fwrite(buf, 1, n, out), n);
    fclose(in);
    assert_int_equal(fclose(out), 0);
}

/*
 * The CA file is parsed once and kept: a changed file (rewritten in place,
 * or replaced by rename) must be used from the next fetch on, an unusable
 * one must fail as our setup (FETCH_ERROR), and fetch_reload_trust must
 * make the next fetch read it again.
 */
static void
test_ca_file_changes(void **state)
{
    struct fetch_options o = options(W.port_main);
    struct fetch_result r;
    struct mts_err err;
    char ca[160], other[160], tmp[160], junk[160];
    FILE *f;

    (void)state;
    snprintf(ca, sizeof(ca), "%s/ca-copy.pem", W.dir);
    snprintf(other, sizeof(other), "%s/selfsigned.pem", W.dir);
    snprintf(tmp, sizeof(tmp), "%s/ca-copy.tmp", W.dir);
    snprintf(junk, sizeof(junk), "%s/junk.pem", W.dir);
    o.ca_file = ca;

    copy_file(W.ca, ca);
    assert_int_equal(fetch_policy(&o, "good.test", loopback, 1, &r, &err), 0);
    fetch_result_free(&r);
    /* Rewritten in place with another CA: the test CA is no longer trusted. */
    copy_file(other, ca);
    assert_int_equal(fetch_policy(&o, "good.test", loopback, 1, &r, &err), -1);
    assert_int_equal(r.status, FETCH_TLS);
    unit_assert_reason(&err, "certificate problem");
    /* Replaced by rename with the test CA again: trusted again. */
    copy_file(W.ca, tmp);
    assert_int_equal(rename(tmp, ca), 0);
    assert_int_equal(fetch_policy(&o, "good.test", loopback, 1, &r, &err), 0);
    fetch_result_free(&r);
    /* A file with no certificate in it: our setup, not the peer's TLS. */
    f = fopen(junk, "w");
    assert_non_null(f);
    fputs("not a certificate\n", f);
    fclose(f);
    o.ca_file = junk;
    assert_int_equal(fetch_policy(&o, "good.test", loopback, 1, &r, &err), -1);
    assert_int_equal(r.status, FETCH_ERROR);
    unit_assert_reason(&err, "local TLS setup: CA file");
    /* After a reload the file is read again (and still trusted). */
    o.ca_file = ca;
    fetch_reload_trust();
    assert_int_equal(fetch_policy(&o, "good.test", loopback, 1, &r, &err), 0);
    fetch_result_free(&r);
}

/*
 * Fetches at once, half trusting the test CA, half the system store (which
 * does not hold it): the parsed anchors are shared, each connection's store
 * is its own, so no fetch may see the other's anchors or settings.
 */
#define MIX_THREADS 8
#define MIX_ROUNDS 6

struct mix_arg {
    bool system_ca;
    int ok, tls, other;
    char why[MTS_ERR_MAX];
};

static void *
mix_thread(void *p)
{
    struct mix_arg *a = p;
    struct fetch_options o = options(W.port_main);
    struct fetch_result r;
    struct mts_err err;

    if (a->system_ca)
        o.ca_file = NULL;
    for (int i = 0; i < MIX_ROUNDS; i++) {
        (void)fetch_policy(&o, "good.test", loopback, 1, &r, &err);
        if (r.status == FETCH_OK)
            a->ok++;
        else if (r.status == FETCH_TLS)
            a->tls++;
        else {
            a->other++;
            snprintf(a->why, sizeof(a->why), "%s", err.msg);
        }
        fetch_result_free(&r);
    }
    return NULL;
}

static void
test_anchors_do_not_leak(void **state)
{
    pthread_t t[MIX_THREADS];
    struct mix_arg a[MIX_THREADS];

    (void)state;
    memset(a, 0, sizeof(a));
    for (int i = 0; i < MIX_THREADS; i++) {
        a[i].system_ca = i % 2 == 1;
        assert_int_equal(pthread_create(&t[i], NULL, mix_thread, &a[i]), 0);
    }
    for (int i = 0; i < MIX_THREADS; i++)
        pthread_join(t[i], NULL);
    for (int i = 0; i < MIX_THREADS; i++) {
        if (a[i].system_ca && a[i].other > 0 && strstr(a[i].why, "local TLS setup") != NULL) {
            fprintf(stderr, "# test_fetch: no usable system CA store (%s): half not tested\n",
                    a[i].why);
            continue;
        }
        if (a[i].other > 0)
            fail_msg("thread %d: %d unexpected results (%s)", i, a[i].other, a[i].why);
        /* The test CA is trusted exactly where it is configured. */
        assert_int_equal(a[i].system_ca ? a[i].tls : a[i].ok, MIX_ROUNDS);
    }
}

static void
test_bad_arguments(void **state)
{
    static const char *const bad_domains[] = {
        "",          ".good.test", "good.test.", "good..test", "good.test/x", "good.test:1",
        "good test", "[::1]",
    };
    static const char *const not_numeric[] = {"127.0.0.1", "localhost"};
    struct fetch_options o = options(443); /* never contacted */
    struct fetch_result r;
    struct mts_err err;

    (void)state;
    for (size_t i = 0; i < N_ROWS(bad_domains); i++) {
        assert_int_equal(fetch_policy(&o, bad_domains[i], loopback, 1, &r, &err), -1);
        assert_int_equal(r.status, FETCH_ERROR);
        unit_assert_reason(&err, "invalid policy domain");
    }
    assert_int_equal(fetch_policy(&o, "good.test", not_numeric, 2, &r, &err), -1);
    assert_int_equal(r.status, FETCH_ERROR);
    unit_assert_reason(&err, "address \"localhost\" is not a numeric");
    o.total_timeout_ms = 0;
    assert_int_equal(fetch_policy(&o, "good.test", loopback, 1, &r, &err), -1);
    unit_assert_reason(&err, "timeouts and port must be positive");
    assert_int_equal(fetch_policy(NULL, "good.test", loopback, 1, &r, &err), -1);
    unit_assert_reason(&err, "missing argument");
}

static void
test_status_names(void **state)
{
    static const char *const want[] = {"ok",           "http-status", "redirect",
                                       "content-type", "too-large",   "tls",
                                       "timeout",      "connect",     "error"};

    (void)state;
    for (int s = FETCH_OK; s <= FETCH_ERROR; s++)
        assert_string_equal(fetch_status_name((enum fetch_status)s), want[s]);
}

static const struct CMUnitTest singles[] = {
    cmocka_unit_test(test_redirect_not_followed), cmocka_unit_test(test_user_agent_and_no_caching),
    cmocka_unit_test(test_tls11_only_server),     cmocka_unit_test(test_no_address),
    cmocka_unit_test(test_ipv6_then_ipv4),        cmocka_unit_test(test_ca_file_missing),
    cmocka_unit_test(test_bad_arguments),         cmocka_unit_test(test_status_names),
    cmocka_unit_test(test_ca_file_changes),       cmocka_unit_test(test_anchors_do_not_leak),
};

/* ------------------------------------------------------------------- main */

#define N_TESTS (N_ROWS(fetch_cases) + N_ROWS(singles))

static struct CMUnitTest fetch_tests[N_TESTS];
static char test_names[N_TESTS][UNIT_NAME_MAX];

int
main(int argc, char **argv)
{
    struct unit_list list = {.tests = fetch_tests, .names = test_names, .cap = N_TESTS};

    char script[512];

    (void)argc;
    prog_path = argv[0];
    /* Without the tools the server needs, skip the whole plan (TAP 1..0). */
    if (!in_path("python3") || !in_path("openssl") || !find_server(script, sizeof(script))) {
        printf("1..0 # SKIP python3, the openssl CLI or tests/unit/fetch_server.py not found\n");
        return 0;
    }
    UNIT_ADD_TABLE(&list, "fetch", fetch_cases, run_fetch_case);
    unit_add_singles(&list, singles, N_ROWS(singles));
    if (list.n != N_TESTS) {
        fprintf(stderr, "test_fetch: %zu tests registered, %zu expected\n", list.n,
                (size_t)N_TESTS);
        return 2;
    }
    return cmocka_run_group_tests(fetch_tests, group_setup, group_teardown);
}
