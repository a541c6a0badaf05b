/*
 * test_dnsask - the resolver health check's direct question
 * (common/dnsask.c) against a server that answers with garbage: only the
 * reply to the very question asked may count; anything else is ignored
 * until the deadline, and bad input is refused with a reason.
 *
 * dnsask always asks port 53 (a resolv.conf nameserver has no port), so
 * the test runs in a network namespace of its own (unshare), where it may
 * bind 127.0.0.1:53 and [::1]:53 without touching the machine's resolver.
 * Without root (no namespace) every case is skipped.
 *
 * TABLES
 *	reply_cases	the datagrams the server sends back, in order, each
 *			made from the query -> dnsask's result and rcode
 */
#define _GNU_SOURCE /* unshare */
#include "unit.h"

#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "dnsask.h"

/* Long enough for a loaded machine to answer, short for the silent cases. */
#define ASK_MS 400
#define MAX_REPLIES 8

/* How one reply datagram is made from the query the server received. */
enum shape {
    RP_END,          /* no more replies */
    RP_OK,           /* the query echoed with QR set and rcode */
    RP_WRONG_ID,     /* ... but another id */
    RP_NO_QR,        /* ... but QR clear (a query, not a reply) */
    RP_OTHER_NAME,   /* ... but one letter of the question's name changed */
    RP_OTHER_TYPE,   /* ... but another query type */
    RP_HEADER_ONLY,  /* the first 12 octets */
    RP_SHORT,        /* 5 octets */
    RP_EMPTY,        /* a datagram of no octets */
    RP_HUGE,         /* a good reply padded to 1,400 octets */
    RP_OTHER_PORT    /* a good reply, sent from another port */
};

struct reply_case {
    const char *why;
    enum shape replies[MAX_REPLIES];
    int rcode;                  /* of RP_OK / RP_HUGE / RP_OTHER_PORT replies */
    enum dnsask_result want;
    int want_rcode;             /* -1: none */
};

static const struct reply_case reply_cases[] = {
    {"a good reply counts", {RP_OK}, 0, DNSASK_ANSWERED, 0},
    {"a SERVFAIL reply gives rcode 2", {RP_OK}, 2, DNSASK_ANSWERED, 2},
    {"an NXDOMAIN reply gives rcode 3", {RP_OK}, 3, DNSASK_ANSWERED, 3},
    {"no reply at all: silent", {RP_END}, 0, DNSASK_SILENT, -1},
    {"a reply with another id is ignored", {RP_WRONG_ID}, 0, DNSASK_SILENT, -1},
    {"a datagram without QR is ignored", {RP_NO_QR}, 0, DNSASK_SILENT, -1},
    {"a reply to another name is ignored", {RP_OTHER_NAME}, 0, DNSASK_SILENT, -1},
    {"a reply to another type is ignored", {RP_OTHER_TYPE}, 0, DNSASK_SILENT, -1},
    {"a bare header is ignored", {RP_HEADER_ONLY}, 0, DNSASK_SILENT, -1},
    {"a bare header is not completed by an earlier datagram's question",
     {RP_WRONG_ID, RP_HEADER_ONLY}, 0, DNSASK_SILENT, -1},
    {"5 octets are ignored", {RP_SHORT}, 0, DNSASK_SILENT, -1},
    {"an empty datagram is ignored", {RP_EMPTY}, 0, DNSASK_SILENT, -1},
    {"a reply from another port is not the server's", {RP_OTHER_PORT}, 0, DNSASK_SILENT, -1},
    {"an oversize reply is read up to 512 octets and counts", {RP_HUGE}, 3, DNSASK_ANSWERED, 3},
    {"garbage first, then the good reply",
     {RP_EMPTY, RP_SHORT, RP_WRONG_ID, RP_NO_QR, RP_OTHER_NAME, RP_HEADER_ONLY, RP_OK},
     5, DNSASK_ANSWERED, 5},
};

static bool in_netns;

/* A namespace with only lo, up: port 53 there is the test's alone. */
static bool
enter_netns(void)
{
    struct ifreq ifr;
    int fd;
    bool up;

    if (geteuid() != 0 || unshare(CLONE_NEWNET) != 0)
        return false;
    fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return false;
    memset(&ifr, 0, sizeof(ifr));
    snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "lo");
    up = ioctl(fd, SIOCGIFFLAGS, &ifr) == 0;
    ifr.ifr_flags |= IFF_UP;
    up = up && ioctl(fd, SIOCSIFFLAGS, &ifr) == 0;
    close(fd);
    return up;
}

struct server {
    int fd;
    int family;
    const struct reply_case *c;
    int got_query;              /* octets of the query received, -1: none */
    unsigned query_id;          /* its id */
};

static int
bind53(int family)
{
    struct sockaddr_storage ss;
    socklen_t sl;
    struct timeval tv = {.tv_sec = 3};	/* sent no query (dnsask failed): do not wait for ever */
    int fd = socket(family, SOCK_DGRAM | SOCK_CLOEXEC, 0);

    memset(&ss, 0, sizeof(ss));
    if (family == AF_INET) {
        struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
        s4->sin_family = AF_INET;
        s4->sin_port = htons(53);
        s4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        sl = sizeof(*s4);
    } else {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons(53);
        s6->sin6_addr = in6addr_loopback;
        sl = sizeof(*s6);
    }
    if (fd >= 0 && (bind(fd, (struct sockaddr *)&ss, sl) != 0 ||
                    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) != 0)) {
        close(fd);
        fd = -1;
    }
    return fd;
}

/* Receives one query, then sends the case's replies in order. */
static void *
serve(void *arg)
{
    struct server *s = arg;
    unsigned char q[512], r[1400];
    struct sockaddr_storage from;
    socklen_t fl = sizeof(from);
    ssize_t n = recvfrom(s->fd, q, sizeof(q), 0, (struct sockaddr *)&from, &fl);

    s->got_query = (int)n;
    if (n < 17)
        return NULL;
    s->query_id = (unsigned)q[0] << 8 | q[1];
    for (size_t i = 0; i < MAX_REPLIES && s->c->replies[i] != RP_END; i++) {
        size_t len = (size_t)n;
        int out = s->fd;

        memcpy(r, q, (size_t)n);
        r[2] |= 0x80;                                   /* QR */
        r[3] = (unsigned char)((r[3] & 0xf0) | (s->c->rcode & 0x0f));
        switch (s->c->replies[i]) {
        case RP_WRONG_ID: r[1] ^= 0x01; break;
        case RP_NO_QR: r[2] &= 0x7f; break;
        case RP_OTHER_NAME: r[14] ^= 0x01; break;        /* "_mta" -> "_lta" */
        case RP_OTHER_TYPE: r[n - 3] ^= 0x01; break;     /* low octet of the type */
        case RP_HEADER_ONLY: len = 12; break;
        case RP_SHORT: len = 5; break;
        case RP_EMPTY: len = 0; break;
        case RP_HUGE: memset(r + n, 0, sizeof(r) - (size_t)n); len = sizeof(r); break;
        case RP_OTHER_PORT: out = socket(s->family, SOCK_DGRAM | SOCK_CLOEXEC, 0); break;
        default: break;
        }
        (void)sendto(out, r, len, 0, (struct sockaddr *)&from, fl);
        if (out != s->fd && out >= 0)
            close(out);
    }
    return NULL;
}

/* Asks name (type TXT) of the server at addr, which runs the case c. */
static enum dnsask_result
ask(int family, const char *addr, const struct reply_case *c, const char *name, int *rcode,
    struct server *s, struct mts_err *err)
{
    pthread_t t;
    enum dnsask_result r;

    s->fd = bind53(family);
    s->family = family;
    s->c = c;
    s->got_query = -1;
    assert_true(s->fd >= 0);
    assert_int_equal(pthread_create(&t, NULL, serve, s), 0);
    r = dnsask(addr, name, 16, ASK_MS, rcode, err);
    pthread_join(t, NULL);
    close(s->fd);
    return r;
}

static void
reply_case(void **state)
{
    const struct reply_case *c = *state;
    struct server s;
    struct mts_err err = {0};
    int rcode = 99;
    enum dnsask_result r;

    if (!in_netns)
        skip();
    r = ask(AF_INET, "127.0.0.1", c, "_mta-sts.example.com", &rcode, &s, &err);
    assert_true(s.got_query >= 17);
    assert_int_equal(r, c->want);
    assert_int_equal(rcode, c->want_rcode);
    if (r == DNSASK_SILENT)
        assert_non_null(strstr(err.msg, "gave no answer for _mta-sts.example.com"));
}

static void
ipv6_server(void **state)
{
    struct server s;
    struct mts_err err = {0};
    int rcode = 99, fd = in_netns ? bind53(AF_INET6) : -1;

    (void)state;
    if (fd < 0)
        skip();	/* no IPv6 on lo here */
    close(fd);
    assert_int_equal(ask(AF_INET6, "::1", &reply_cases[2], "example.com", &rcode, &s, &err),
                     DNSASK_ANSWERED);
    assert_int_equal(rcode, 3);
}

/* Nothing listens: the port-unreachable error is read and ignored. */
static void
nobody_listens(void **state)
{
    struct mts_err err = {0};
    int rcode = 99;

    (void)state;
    if (!in_netns)
        skip();
    assert_int_equal(dnsask("127.0.0.1", "example.com", 1, ASK_MS, &rcode, &err),
                     DNSASK_SILENT);
    assert_int_equal(rcode, -1);
}

/* The id comes from no generator a program can reset: with random()
 * reseeded alike before each question, three questions still get ids that
 * are not all equal (a chance of 2^-32 that they are). */
static void
unguessable_id(void **state)
{
    struct server s;
    struct mts_err err = {0};
    unsigned ids[3];
    int rcode;

    (void)state;
    if (!in_netns)
        skip();
    for (int i = 0; i < 3; i++) {
        srandom(1);
        assert_int_equal(ask(AF_INET, "127.0.0.1", &reply_cases[2], "example.com", &rcode, &s,
                             &err),
                         DNSASK_ANSWERED);
        ids[i] = s.query_id;
    }
    if (ids[0] == ids[1] && ids[1] == ids[2])
        fail_msg("three questions, all with id %u", ids[0]);
}

static void
bad_input(void **state)
{
    struct mts_err err = {0};
    int rcode = 99;
    char label64[80];

    (void)state;
    assert_int_equal(dnsask("localhost", "example.com", 1, ASK_MS, &rcode, &err), DNSASK_ERROR);
    assert_non_null(strstr(err.msg, "not a nameserver address: localhost"));
    assert_int_equal(dnsask("127.0.0.1:53", "example.com", 1, ASK_MS, &rcode, &err),
                     DNSASK_ERROR);
    assert_int_equal(dnsask("127.0.0.1", "a..example.com", 1, ASK_MS, &rcode, &err),
                     DNSASK_ERROR);
    assert_non_null(strstr(err.msg, "not a DNS name"));
    memset(label64, 'a', 64);
    snprintf(label64 + 64, sizeof(label64) - 64, ".com");
    assert_int_equal(dnsask("127.0.0.1", label64, 1, ASK_MS, &rcode, &err), DNSASK_ERROR);
    assert_int_equal(rcode, -1);
}

int
main(void)
{
    struct CMUnitTest tests[N_ROWS(reply_cases) + 4];
    size_t n = 0;

    in_netns = enter_netns();
    if (!in_netns)
        fprintf(stderr, "# test_dnsask: no network namespace of its own (needs root): "
                        "the server cases are skipped\n");
    for (size_t i = 0; i < N_ROWS(reply_cases); i++) {
        tests[n] = (struct CMUnitTest)cmocka_unit_test(reply_case);
        tests[n].name = reply_cases[i].why;
        tests[n].initial_state = (void *)&reply_cases[i];
        n++;
    }
    tests[n++] = (struct CMUnitTest)cmocka_unit_test(ipv6_server);
    tests[n++] = (struct CMUnitTest)cmocka_unit_test(nobody_listens);
    tests[n++] = (struct CMUnitTest)cmocka_unit_test(unguessable_id);
    tests[n++] = (struct CMUnitTest)cmocka_unit_test(bad_input);
    return _cmocka_run_group_tests("dnsask", tests, n, NULL, NULL);
}
