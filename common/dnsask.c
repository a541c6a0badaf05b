/*
 * dnsask - one direct UDP question to one server; see dnsask.h.
 *
 * Used only when libunbound has failed a lookup: then the question is
 * whether the forwarder itself would have answered it. Kept apart from
 * dns.c so that the libunbound wrapper stays about libunbound.
 */
#include "dnsask.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include "clock.h"

#define DNSASK_MAX_MSG 512	/* a plain DNS message over UDP (no EDNS) */

/* Encodes name ("a.b.c", trailing dot optional, "." the root) at out. */
static int
encode_name(const char *name, unsigned char *out, size_t outsz, size_t *len)
{
    size_t o = 0;
    const char *p = name;

    if (strcmp(name, ".") == 0)
        p = "";
    while (*p != '\0') {
        size_t l = strcspn(p, ".");

        if (l == 0 || l > 63 || o + 1 + l + 1 > outsz)
            return -1;
        out[o++] = (unsigned char)l;
        memcpy(out + o, p, l);
        o += l;
        p += l;
        if (*p == '.')
            p++;
    }
    if (o + 1 > outsz)
        return -1;
    out[o++] = 0;
    *len = o;
    return 0;
}

static int
server_addr(const char *server, struct sockaddr_storage *ss, socklen_t *sl)
{
    struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;

    memset(ss, 0, sizeof(*ss));
    if (inet_pton(AF_INET, server, &s4->sin_addr) == 1) {
        s4->sin_family = AF_INET;
        s4->sin_port = htons(53);
        *sl = sizeof(*s4);
        return 0;
    }
    if (inet_pton(AF_INET6, server, &s6->sin6_addr) == 1) {
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons(53);
        *sl = sizeof(*s6);
        return 0;
    }
    return -1;
}

/*
 * An id nobody can guess (RFC 5452 §4.3: with the source port, what keeps
 * a forged reply out): from the kernel's generator. random() unseeded gave
 * every process the same sequence, known to anyone.
 */
static uint16_t
query_id(void)
{
    uint16_t id;
    struct timespec t;

    if (getrandom(&id, sizeof(id), GRND_NONBLOCK) == (ssize_t)sizeof(id))
        return id;
    /* Only before the kernel's pool is ready, early at boot. */
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint16_t)((unsigned long)t.tv_nsec ^ ((unsigned long)t.tv_sec << 7) ^
                      (unsigned long)getpid());
}

enum dnsask_result
dnsask(const char *server, const char *name, int type, int timeout_ms, int *rcode,
       struct mts_err *err)
{
    unsigned char q[DNSASK_MAX_MSG], r[DNSASK_MAX_MSG];
    struct sockaddr_storage ss;
    socklen_t sl;
    size_t nl, qlen;
    uint16_t id = query_id();
    struct timespec deadline = clock_deadline_after(timeout_ms);
    enum dnsask_result res = DNSASK_SILENT;
    int fd;

    *rcode = -1;
    if (server_addr(server, &ss, &sl) != 0) {
        mts_err_set(err, "not a nameserver address: %s", server);
        return DNSASK_ERROR;
    }
    memset(q, 0, 12);
    q[0] = (unsigned char)(id >> 8);
    q[1] = (unsigned char)id;
    q[2] = 0x01;		/* RD */
    q[5] = 1;			/* one question */
    if (encode_name(name, q + 12, sizeof(q) - 12 - 4, &nl) != 0) {
        mts_err_set(err, "not a DNS name: %s", name);
        return DNSASK_ERROR;
    }
    qlen = 12 + nl;
    q[qlen++] = (unsigned char)(type >> 8);
    q[qlen++] = (unsigned char)type;
    q[qlen++] = 0;
    q[qlen++] = 1;		/* class IN */
    fd = socket(ss.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&ss, sl) != 0 ||
        send(fd, q, qlen, 0) != (ssize_t)qlen) {
        mts_err_set(err, "cannot ask %s: %s", server, strerror(errno));
        if (fd >= 0)
            close(fd);
        return DNSASK_ERROR;
    }
    for (;;) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        int left = clock_ms_until(&deadline);
        ssize_t n;

        if (left <= 0 || poll(&pfd, 1, left) <= 0)
            break;
        n = recv(fd, r, sizeof(r), 0);
        /* Only the reply to this very question counts (same id, QR set,
         * the question echoed); anything else is ignored. */
        if (n < (ssize_t)qlen || r[0] != q[0] || r[1] != q[1] || !(r[2] & 0x80) ||
            memcmp(r + 12, q + 12, qlen - 12) != 0)
            continue;
        *rcode = r[3] & 0x0f;
        res = DNSASK_ANSWERED;
        break;
    }
    close(fd);
    if (res == DNSASK_SILENT)
        mts_err_set(err, "%s gave no answer for %s within %d ms", server, name, timeout_ms);
    return res;
}
