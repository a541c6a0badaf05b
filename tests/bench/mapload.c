/*
 * mapload - a socketmap load driver: asks a policy map the way Postfix's
 * smtp client does (src/util/dict_sockmap.c), netstring requests
 * "NAME KEY" over the map's socket, and measures how fast they are answered.
 *
 * SYNOPSIS
 *	mapload -s SOCKET [-s SOCKET ...] [-r ROUNDS] [-c CONNECTIONS]
 *		[-n REQUESTS] [-p IN_FLIGHT] [-k KEY,...] [-K FILE] [-N NAME]
 *		[-t TIMEOUT_MS]
 *
 * DESCRIPTION
 *	SOCKET is unix:PATH, inet:PORT@HOST (the milter's spelling) or
 *	inet:HOST:PORT (Postfix's). Each connection is a thread with one
 *	connection to the map that sends REQUESTS requests (per connection):
 *	with IN_FLIGHT 1 one at a time, each after the previous answer (as
 *	Postfix does); with IN_FLIGHT N up to N pipelined before their
 *	answers. Keys cycle over the list (-k, -K; one a line): request j of
 *	connection i asks key (i * REQUESTS + j) mod the number of keys, so
 *	CONNECTIONS connections of one request each ask different keys.
 *	All connections are made before the clock starts.
 *
 *	Several servers side by side (-s given up to 4 times; each connection
 *	then has one connection to each): the REQUESTS of a connection are
 *	asked in ROUNDS rounds (-r, default 10); in each round every server in
 *	turn gets REQUESTS / ROUNDS of them from all connections at once, the
 *	others idle, the order turning by one each round. A server's time is
 *	the sum of its turns. On a shared machine whose load comes and goes
 *	in bursts, turns of tens of milliseconds put each burst on the servers
 *	alike, where whole runs one after another put it on one of them; and
 *	turn_median_per_s, the lookups/s of a server's median turn, leaves
 *	out the turns a burst fell on.
 *
 *	Prints, after all connections are done, as key=value words: lookups,
 *	seconds, lookups_per_s, p50 / p99 / max of the latency (from writing
 *	a request to reading its answer), and the answers by kind (ok,
 *	notfound, temp, perm, other) and the failed connections (errors);
 *	with several servers, these three lines for each, in -s order.
 *
 * DIAGNOSTICS
 *	A reply that is not a netstring, longer than Postfix's 100000 bytes,
 *	late past the timeout (default 100 s, Postfix's socketmap_timeout),
 *	or a closed connection ends that connection with one line
 *	"mapload: connection N: ..." on stderr; the totals still print and
 *	the exit status is 1. Usage errors: exit status 2.
 */
#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define MAX_REPLY 100000 /* Postfix socketmap_max_reply_size */
#define MAX_REQUEST 10065 /* a name of 64, a space, a key of 10000 */
#define REQ_BATCH 65536 /* bytes of pipelined requests in one write */
#define REQ_CAP (REQ_BATCH + MAX_REQUEST + 8)
#define IN_CAP (MAX_REPLY + 8)
#define MAX_CONNECTIONS 4096
#define MAX_IN_FLIGHT 1024
#define MAX_KEYS 100000
#define ERR_MAX 256
#define MAX_SERVERS 4

enum kind { K_OK, K_NOTFOUND, K_TEMP, K_PERM, K_OTHER, K_N };

static struct {
    const char *sockets[MAX_SERVERS], *name;
    int nsockets, rounds, connections, requests, in_flight, timeout_ms;
    char **keys;
    int nkeys;
} opt = {
    .name = "postfix",
    .rounds = 0, /* 1 with one server, 10 with several */
    .connections = 1,
    .requests = 10000,
    .in_flight = 1,
    .timeout_ms = 100000,
};

struct conn {
    int id, fd;                  /* fd: the server of the current turn */
    int fds[MAX_SERVERS];
    char in[IN_CAP];
    size_t in_len;
    char req[REQ_CAP];
    uint64_t *sent;              /* ring of send times, in_flight long */
    uint64_t *lats[MAX_SERVERS]; /* ns, one per answer, per server */
    size_t nlats[MAX_SERVERS];
    unsigned long kinds[MAX_SERVERS][K_N];
    char err[ERR_MAX];
    bool ok;
};

static pthread_barrier_t start_line;

static uint64_t
now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000U + (uint64_t)ts.tv_nsec;
}

__attribute__((format(printf, 2, 3))) static int
fail(struct conn *c, const char *fmt, ...)
{
    va_list ap;

    if (c->err[0] == '\0') {
        va_start(ap, fmt);
        vsnprintf(c->err, sizeof(c->err), fmt, ap);
        va_end(ap);
    }
    return -1;
}

static int
connect_socket(struct conn *c, const char *s)
{
    int fd = -1;

    if (strncmp(s, "unix:", 5) == 0 || s[0] == '/') {
        struct sockaddr_un sun = {.sun_family = AF_UNIX};
        const char *path = s[0] == '/' ? s : s + 5;

        if (strlen(path) >= sizeof(sun.sun_path))
            return fail(c, "socket path too long: %s", path);
        memcpy(sun.sun_path, path, strlen(path) + 1);
        if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0 ||
            connect(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0) {
            int e = errno;

            if (fd >= 0)
                close(fd);
            return fail(c, "connect to %s: %s", s, strerror(e));
        }
    } else if (strncmp(s, "inet:", 5) == 0) {
        char port[16], host[256];
        const char *p = s + 5, *at = strchr(p, '@'), *colon = strrchr(p, ':');
        const char *h, *pt;
        size_t hl, pl;
        struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res, *ai;
        int rc, e = 0, one = 1;

        if (at != NULL) { /* PORT@HOST */
            pt = p, pl = (size_t)(at - p), h = at + 1, hl = strlen(at + 1);
        } else if (colon != NULL) { /* HOST:PORT */
            h = p, hl = (size_t)(colon - p), pt = colon + 1, pl = strlen(colon + 1);
        } else {
            return fail(c, "bad socket %s (inet:PORT@HOST or inet:HOST:PORT)", s);
        }
        if (pl == 0 || pl >= sizeof(port) || hl == 0 || hl >= sizeof(host))
            return fail(c, "bad socket %s", s);
        memcpy(port, pt, pl);
        port[pl] = '\0';
        memcpy(host, h, hl);
        host[hl] = '\0';
        if ((rc = getaddrinfo(host, port, &hints, &res)) != 0)
            return fail(c, "%s: %s", s, gai_strerror(rc));
        for (ai = res; ai != NULL; ai = ai->ai_next) {
            if ((fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, 0)) < 0) {
                e = errno;
                continue;
            }
            if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
                break;
            e = errno;
            close(fd);
            fd = -1;
        }
        freeaddrinfo(res);
        if (fd < 0)
            return fail(c, "connect to %s: %s", s, strerror(e));
        (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    } else {
        return fail(c, "bad socket %s (unix:PATH or inet:PORT@HOST)", s);
    }
    for (int i = 0; i < MAX_SERVERS; i++) {
        if (c->fds[i] < 0) {
            c->fds[i] = fd;
            break;
        }
    }
    return 0;
}

static int
write_all(struct conn *c, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(c->fd, p, n);

        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return fail(c, "write: %s", w < 0 ? strerror(errno) : "nothing written");
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Appends request number seq as a netstring to c->req at *len. */
static int
put_request(struct conn *c, long seq, size_t *len)
{
    const char *key = opt.keys[(size_t)seq % (size_t)opt.nkeys];
    size_t body = strlen(opt.name) + 1 + strlen(key);
    int n = snprintf(c->req + *len, REQ_CAP - *len, "%zu:%s %s,", body, opt.name, key);

    if (n < 0 || (size_t)n >= REQ_CAP - *len)
        return fail(c, "request too long for the buffer");
    *len += (size_t)n;
    return 0;
}

static enum kind
classify(const char *p, size_t n)
{
    static const struct {
        const char *word;
        enum kind k;
    } words[] = {{"OK", K_OK}, {"NOTFOUND", K_NOTFOUND}, {"TEMP", K_TEMP}, {"PERM", K_PERM}};

    for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
        size_t wl = strlen(words[i].word);

        if (n >= wl && memcmp(p, words[i].word, wl) == 0 && (n == wl || p[wl] == ' '))
            return words[i].k;
    }
    return K_OTHER;
}

/*
 * One reply: 1 when a complete netstring starts c->in (its kind in *k, its
 * bytes taken off), 0 when more bytes are needed, -1 when malformed.
 */
static int
take_reply(struct conn *c, enum kind *k)
{
    size_t i = 0, len = 0;

    while (i < c->in_len && c->in[i] >= '0' && c->in[i] <= '9') {
        if (i == 1 && c->in[0] == '0')
            return fail(c, "reply length with a leading zero");
        len = len * 10 + (size_t)(c->in[i] - '0');
        if (++i > 6 || len > MAX_REPLY)
            return fail(c, "reply longer than %d bytes", MAX_REPLY);
    }
    if (i == c->in_len)
        return 0;
    if (i == 0 || c->in[i] != ':')
        return fail(c, "malformed reply netstring");
    if (c->in_len < i + 1 + len + 1)
        return 0;
    if (c->in[i + 1 + len] != ',')
        return fail(c, "reply netstring without its ','");
    *k = classify(c->in + i + 1, len);
    memmove(c->in, c->in + i + 2 + len, c->in_len - (i + 2 + len));
    c->in_len -= i + 2 + len;
    return 1;
}

static int
read_some(struct conn *c)
{
    struct pollfd p = {.fd = c->fd, .events = POLLIN};
    ssize_t r;
    int rc;

    do
        rc = poll(&p, 1, opt.timeout_ms);
    while (rc < 0 && errno == EINTR);
    if (rc == 0)
        return fail(c, "no reply within %d ms", opt.timeout_ms);
    if (rc < 0)
        return fail(c, "poll: %s", strerror(errno));
    do
        r = read(c->fd, c->in + c->in_len, IN_CAP - c->in_len);
    while (r < 0 && errno == EINTR);
    if (r == 0)
        return fail(c, "the map closed the connection");
    if (r < 0)
        return fail(c, "read: %s", strerror(errno));
    c->in_len += (size_t)r;
    return 0;
}

/* count requests on server sv (its request numbers from *done_sv on). */
static int
run(struct conn *c, int sv, long count, long *done_sv)
{
    long sent = 0, done = 0, base = (long)c->id * opt.requests + *done_sv;

    c->fd = c->fds[sv];
    while (done < count) {
        size_t len = 0;
        uint64_t t;
        enum kind k = K_OTHER;
        int rc;

        /* top up the pipeline in one write */
        while (sent < count && sent - done < opt.in_flight && len < REQ_BATCH) {
            if (put_request(c, base + sent, &len) != 0)
                return -1;
            sent++;
        }
        if (len > 0) {
            t = now_ns();
            /* every request of this write shares its send time */
            for (long s = done; s < sent; s++)
                if (c->sent[s % opt.in_flight] == 0)
                    c->sent[s % opt.in_flight] = t;
            if (write_all(c, c->req, len) != 0)
                return -1;
        }
        while ((rc = take_reply(c, &k)) == 0)
            if (read_some(c) != 0)
                return -1;
        if (rc < 0)
            return -1;
        t = now_ns();
        c->lats[sv][c->nlats[sv]++] = t - c->sent[done % opt.in_flight];
        c->sent[done % opt.in_flight] = 0;
        c->kinds[sv][k]++;
        done++;
    }
    *done_sv += done;
    return 0;
}

/* The requests of round r: an equal share, the last round the rest. */
static long
round_share(int r)
{
    long per = opt.requests / opt.rounds;

    return r == opt.rounds - 1 ? opt.requests - per * (opt.rounds - 1) : per;
}

/* The server of turn k in round r: the order turns by one each round. */
static int
turn_server(int r, int k)
{
    return (r + k) % opt.nsockets;
}

static void *
conn_main(void *arg)
{
    struct conn *c = arg;
    long done[MAX_SERVERS] = {0};
    int rc = 0;

    for (int sv = 0; sv < opt.nsockets; sv++)
        if (rc == 0)
            rc = connect_socket(c, opt.sockets[sv]);
        else
            break;
    /* A failed connection still meets every turn's start and end. */
    for (int r = 0; r < opt.rounds; r++) {
        for (int k = 0; k < opt.nsockets; k++) {
            pthread_barrier_wait(&start_line);
            if (rc == 0)
                rc = run(c, turn_server(r, k), round_share(r), &done[turn_server(r, k)]);
            pthread_barrier_wait(&start_line);
        }
    }
    c->ok = rc == 0;
    return NULL;
}

static void
usage(void)
{
    fprintf(stderr,
            "usage: mapload -s SOCKET [-s SOCKET ...] [-r ROUNDS] [-c CONNECTIONS]\n"
            "               [-n REQUESTS] [-p IN_FLIGHT] [-k KEY,...] [-K FILE] [-N NAME]\n"
            "               [-t TIMEOUT_MS]\n"
            "  -s unix:PATH, inet:PORT@HOST or inet:HOST:PORT (up to %d: side by side)\n"
            "  -r rounds of turns, with several servers (10)\n"
            "  -c connections at once (1; at most %d)\n"
            "  -n requests per connection (10000)\n"
            "  -p requests in flight per connection (1: answer by answer; at most %d)\n"
            "  -k keys, comma-separated; -K a file of keys, one a line (cycled)\n"
            "  -N the map name (postfix); -t the reply timeout in ms (100000)\n",
            MAX_SERVERS, MAX_CONNECTIONS, MAX_IN_FLIGHT);
    exit(2);
}

static int
positive(const char *s, const char *what, long max)
{
    char *end;
    long v = strtol(s, &end, 10);

    if (*s == '\0' || *end != '\0' || v < 1 || v > max) {
        fprintf(stderr, "mapload: %s: expected 1 .. %ld, not \"%s\"\n", what, max, s);
        exit(2);
    }
    return (int)v;
}

static void
add_key(const char *s, size_t n)
{
    static int cap;

    if (n == 0)
        return;
    if (n > 10000 || opt.nkeys >= MAX_KEYS) {
        fprintf(stderr, "mapload: more than %d keys, or a key over 10000 bytes\n", MAX_KEYS);
        exit(2);
    }
    if (opt.nkeys == cap) {
        char **k = realloc(opt.keys, (size_t)(cap ? cap * 2 : 64) * sizeof(*k));

        if (k == NULL) {
            perror("mapload");
            exit(2);
        }
        opt.keys = k;
        cap = cap ? cap * 2 : 64;
    }
    if ((opt.keys[opt.nkeys] = strndup(s, n)) == NULL) {
        perror("mapload");
        exit(2);
    }
    opt.nkeys++;
}

static void
read_keys(const char *file)
{
    FILE *f = fopen(file, "r");
    char line[10002];

    if (f == NULL) {
        fprintf(stderr, "mapload: %s: %s\n", file, strerror(errno));
        exit(2);
    }
    while (fgets(line, sizeof(line), f) != NULL)
        add_key(line, strcspn(line, "\r\n"));
    fclose(f);
}

static int
cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

    return x < y ? -1 : x > y;
}

static int
cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of sorted v[n], in microseconds. */
static double
pct_us(const uint64_t *v, size_t n, double q)
{
    size_t rank;

    if (n == 0)
        return 0;
    rank = (size_t)(q * (double)n + 0.999999);
    if (rank < 1)
        rank = 1;
    if (rank > n)
        rank = n;
    return (double)v[rank - 1] / 1000.0;
}

int
main(int argc, char **argv)
{
    struct conn **conns;
    pthread_t *tids;
    uint64_t elapsed[MAX_SERVERS] = {0}, *all;
    double *turn_rate[MAX_SERVERS] = {0}; /* lookups/s of each turn, by server */
    int ch, failed = 0;

    while ((ch = getopt(argc, argv, "s:r:c:n:p:k:K:N:t:h")) != -1) {
        switch (ch) {
        case 's':
            if (opt.nsockets == MAX_SERVERS)
                usage();
            opt.sockets[opt.nsockets++] = optarg;
            break;
        case 'r': opt.rounds = positive(optarg, "rounds", 100000); break;
        case 'c': opt.connections = positive(optarg, "connections", MAX_CONNECTIONS); break;
        case 'n': opt.requests = positive(optarg, "requests", 10000000); break;
        case 'p': opt.in_flight = positive(optarg, "in flight", MAX_IN_FLIGHT); break;
        case 'k':
            for (const char *p = optarg; *p;) {
                size_t n = strcspn(p, ",");

                add_key(p, n);
                p += n + (p[n] == ',');
            }
            break;
        case 'K': read_keys(optarg); break;
        case 'N':
            if (*optarg == '\0' || strlen(optarg) > 64 || strchr(optarg, ' ') != NULL)
                usage();
            opt.name = optarg;
            break;
        case 't': opt.timeout_ms = positive(optarg, "timeout", 3600000); break;
        default: usage();
        }
    }
    if (optind != argc || opt.nsockets == 0)
        usage();
    if (opt.rounds == 0)
        opt.rounds = opt.nsockets > 1 ? 10 : 1;
    if (opt.rounds > opt.requests)
        opt.rounds = opt.requests;
    if (opt.nkeys == 0)
        add_key("example.com", 11);
    if ((size_t)opt.requests * (size_t)opt.connections > 100000000U) {
        fprintf(stderr, "mapload: more than 100,000,000 requests in one run\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);

    conns = calloc((size_t)opt.connections, sizeof(*conns));
    tids = calloc((size_t)opt.connections, sizeof(*tids));
    if (conns == NULL || tids == NULL ||
        pthread_barrier_init(&start_line, NULL, (unsigned)opt.connections + 1) != 0) {
        perror("mapload");
        return 2;
    }
    for (int i = 0; i < opt.connections; i++) {
        if ((conns[i] = calloc(1, sizeof(*conns[i]))) == NULL ||
            (conns[i]->sent = calloc((size_t)opt.in_flight, sizeof(uint64_t))) == NULL) {
            perror("mapload");
            return 2;
        }
        for (int sv = 0; sv < opt.nsockets; sv++) {
            if ((conns[i]->lats[sv] = calloc((size_t)opt.requests, sizeof(uint64_t))) == NULL) {
                perror("mapload");
                return 2;
            }
        }
        conns[i]->id = i;
        conns[i]->fd = -1;
        for (int sv = 0; sv < MAX_SERVERS; sv++)
            conns[i]->fds[sv] = -1;
    }
    for (int sv = 0; sv < opt.nsockets; sv++) {
        if ((turn_rate[sv] = calloc((size_t)opt.rounds, sizeof(double))) == NULL) {
            perror("mapload");
            return 2;
        }
    }
    for (int i = 0; i < opt.connections; i++) {
        pthread_attr_t a;

        pthread_attr_init(&a);
        pthread_attr_setstacksize(&a, 128 * 1024);
        if (pthread_create(&tids[i], &a, conn_main, conns[i]) != 0) {
            perror("mapload: pthread_create");
            return 2;
        }
        pthread_attr_destroy(&a);
    }
    /* Each turn: from its start line (every connection made, or the
     * previous turn over) until its last connection is done. */
    for (int r = 0; r < opt.rounds; r++) {
        for (int k = 0; k < opt.nsockets; k++) {
            uint64_t t0, t;

            pthread_barrier_wait(&start_line);
            t0 = now_ns();
            pthread_barrier_wait(&start_line);
            t = now_ns() - t0;
            elapsed[turn_server(r, k)] += t;
            turn_rate[turn_server(r, k)][r] =
                t > 0 ? (double)round_share(r) * opt.connections * 1e9 / (double)t : 0;
        }
    }
    for (int i = 0; i < opt.connections; i++)
        pthread_join(tids[i], NULL);

    if ((all = malloc((size_t)opt.requests * (size_t)opt.connections * sizeof(*all))) == NULL) {
        perror("mapload");
        return 2;
    }
    for (int i = 0; i < opt.connections; i++) {
        if (!conns[i]->ok) {
            failed++;
            fprintf(stderr, "mapload: connection %d: %s\n", i,
                    conns[i]->err[0] ? conns[i]->err : "failed (no reason recorded)");
        }
    }
    for (int sv = 0; sv < opt.nsockets; sv++) {
        unsigned long kind[K_N] = {0};
        double secs = (double)elapsed[sv] / 1e9;
        size_t nall = 0;

        for (int i = 0; i < opt.connections; i++) {
            struct conn *c = conns[i];

            memcpy(all + nall, c->lats[sv], c->nlats[sv] * sizeof(*all));
            nall += c->nlats[sv];
            for (int k = 0; k < K_N; k++)
                kind[k] += c->kinds[sv][k];
        }
        qsort(all, nall, sizeof(*all), cmp_u64);
        printf("mapload: %s connections=%d in_flight=%d lookups=%zu seconds=%.3f",
               opt.sockets[sv], opt.connections, opt.in_flight, nall, secs);
        if (opt.nsockets > 1)
            printf(" rounds=%d", opt.rounds);
        printf("\nlookups_per_s=%.0f p50_us=%.0f p99_us=%.0f max_us=%.0f",
               secs > 0 ? (double)nall / secs : 0, pct_us(all, nall, 0.50),
               pct_us(all, nall, 0.99), nall ? (double)all[nall - 1] / 1000.0 : 0);
        if (opt.nsockets > 1) {
            qsort(turn_rate[sv], (size_t)opt.rounds, sizeof(double), cmp_double);
            printf(" turn_median_per_s=%.0f", turn_rate[sv][(opt.rounds - 1) / 2]);
        }
        printf("\n");
        printf("replies: ok=%lu notfound=%lu temp=%lu perm=%lu other=%lu errors=%d\n",
               kind[K_OK], kind[K_NOTFOUND], kind[K_TEMP], kind[K_PERM], kind[K_OTHER], failed);
    }
    for (int i = 0; i < opt.connections; i++) {
        struct conn *c = conns[i];

        for (int sv = 0; sv < MAX_SERVERS; sv++) {
            if (c->fds[sv] >= 0)
                close(c->fds[sv]);
            free(c->lats[sv]);
        }
        free(c->sent);
        free(c);
    }
    for (int sv = 0; sv < opt.nsockets; sv++)
        free(turn_rate[sv]);
    free(all);
    free(conns);
    free(tids);
    for (int i = 0; i < opt.nkeys; i++)
        free(opt.keys[i]);
    free(opt.keys);
    return failed ? 1 : 0;
}
