/*
 * netacl - client allow-lists for inet: sockets; see netacl.h.
 */
#include "netacl.h"

#include "addrscope.h"
#include "log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/filter.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

/* Worst case: 3 for the version test, 2 more, then per entry 4 words of 3
 * and a return, and the two final returns. */
#define PROG_MAX (8 + (NETACL_MAX + 2) * 13)
#define ACCEPT 0xffffffffU
#define IP4_SADDR 12		/* offsets in the IP header */
#define IP6_SADDR 8

/*
 * The words parse as probe_allow_networks' do (addrscope.h: one parser
 * for every list of networks); an IPv4 network, which addrscope keeps as
 * ::ffff:a.b.c.d, becomes an IPv4 entry: the kernel sees an IPv4 packet.
 */
int
netacl_parse(const struct config_list *list, struct netacl *acl, struct mts_err *err)
{
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    struct addrscope_nets *nets = calloc(1, sizeof(*nets));

    acl->n = 0;
    if (nets == NULL) {
        mts_err_set(err, "out of memory");
        return -1;
    }
    if (list->n > NETACL_MAX) {
        mts_err_set(err, "more than %d addresses or networks", NETACL_MAX);
        free(nets);
        return -1;
    }
    if (addrscope_nets_parse(list, nets, err) != 0) {
        free(nets);
        return -1;
    }
    for (size_t i = 0; i < nets->n; i++) {
        const struct addrscope_net *n = &nets->v[i];
        struct netacl_entry *e = &acl->e[acl->n++];

        memset(e, 0, sizeof(*e));
        if (memcmp(n->addr, mapped, sizeof(mapped)) == 0 && n->prefix >= 96) {
            e->family = AF_INET;
            memcpy(e->addr, n->addr + 12, 4);
            e->prefix = (int)n->prefix - 96;
        } else {
            e->family = AF_INET6;
            memcpy(e->addr, n->addr, 16);
            e->prefix = (int)n->prefix;
        }
    }
    free(nets);
    return 0;
}

/* The mask of 32-bit word w of an address with prefix bits. */
static uint32_t
word_mask(int prefix, int w)
{
    int bits = prefix - 32 * w;

    if (bits <= 0)
        return 0;
    return bits >= 32 ? 0xffffffffU : ~(0xffffffffU >> bits);
}

static uint32_t
word_of(const uint8_t *a, int w)
{
    return (uint32_t)a[4 * w] << 24 | (uint32_t)a[4 * w + 1] << 16 |
           (uint32_t)a[4 * w + 2] << 8 | a[4 * w + 3];
}

/*
 * One entry: each word of the source address it covers, masked, must
 * equal the entry's; then accept. A mismatch jumps past the rest of the
 * entry (short jumps only: cBPF's conditional offsets are 8 bits).
 */
static size_t
emit_entry(struct sock_filter *p, size_t n, const struct netacl_entry *e)
{
    int words = e->family == AF_INET ? 1 : 4, used = 0;
    uint32_t off = e->family == AF_INET ? IP4_SADDR : IP6_SADDR;

    for (int w = 0; w < words; w++)
        used += word_mask(e->prefix, w) != 0;
    for (int w = 0, left = used; w < words; w++) {
        uint32_t m = word_mask(e->prefix, w);

        if (m == 0)
            continue;
        left--;
        p[n++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
                                              (uint32_t)SKF_NET_OFF + off + 4 * (uint32_t)w);
        p[n++] = (struct sock_filter)BPF_STMT(BPF_ALU | BPF_AND | BPF_K, m);
        /* equal: on to the next word (or the accept); else past them all */
        p[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K,
                                              word_of(e->addr, w) & m, 0,
                                              (uint8_t)(3 * left + 1));
    }
    p[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, ACCEPT);
    return n;
}

int
netacl_attach(int fd, const struct netacl *acl, struct mts_err *err)
{
    struct sock_filter *p = calloc(PROG_MAX, sizeof(*p));
    struct netacl_entry lo4 = {.family = AF_INET, .addr = {127}, .prefix = 8};
    struct netacl_entry lo6 = {.family = AF_INET6, .addr = {[15] = 1}, .prefix = 128};
    struct sock_fprog prog;
    size_t n = 0, v4_at, v6_at;
    int rc;

    if (p == NULL) {
        mts_err_set(err, "out of memory");
        return -1;
    }
    /* The IP version (the header's first nibble) picks the block. */
    p[n++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_B | BPF_ABS, (uint32_t)SKF_NET_OFF);
    p[n++] = (struct sock_filter)BPF_STMT(BPF_ALU | BPF_RSH | BPF_K, 4);
    p[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 4, 0, 1);
    v4_at = n++;			/* ja: the IPv4 block */
    p[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 6, 0, 1);
    v6_at = n++;			/* ja: the IPv6 block */
    p[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, 0);
    p[v4_at] = (struct sock_filter)BPF_STMT(BPF_JMP | BPF_JA, (uint32_t)(n - v4_at - 1));
    n = emit_entry(p, n, &lo4);
    for (size_t i = 0; i < acl->n; i++)
        if (acl->e[i].family == AF_INET)
            n = emit_entry(p, n, &acl->e[i]);
    p[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, 0);
    p[v6_at] = (struct sock_filter)BPF_STMT(BPF_JMP | BPF_JA, (uint32_t)(n - v6_at - 1));
    n = emit_entry(p, n, &lo6);
    for (size_t i = 0; i < acl->n; i++)
        if (acl->e[i].family == AF_INET6)
            n = emit_entry(p, n, &acl->e[i]);
    p[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, 0);
    prog.len = (unsigned short)n;
    prog.filter = p;
    rc = setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof(prog));
    if (rc != 0)
        mts_err_set(err, "cannot attach the client filter: %s", strerror(errno));
    free(p);
    return rc == 0 ? 0 : -1;
}

bool
netacl_beyond_loopback(int fd)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);

    if (getsockname(fd, (struct sockaddr *)&ss, &sl) != 0)
        return false;
    if (ss.ss_family == AF_INET)
        return (ntohl(((struct sockaddr_in *)&ss)->sin_addr.s_addr) >> 24) != 127;
    if (ss.ss_family == AF_INET6) {
        const struct in6_addr *a = &((struct sockaddr_in6 *)&ss)->sin6_addr;

        return !IN6_IS_ADDR_LOOPBACK(a) &&
               !(IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127);
    }
    return false;			/* unix */
}

int
netacl_restrict(int fd, const struct config_list *allow, const char *what, const char *option,
                struct mts_err *err)
{
    struct netacl acl;
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);

    if (getsockname(fd, (struct sockaddr *)&ss, &sl) != 0 ||
        (ss.ss_family != AF_INET && ss.ss_family != AF_INET6))
        return 0;		/* unix: the socket file's mode says who */
    if (netacl_parse(allow, &acl, err) != 0)
        return -1;
    if (acl.n > 0) {
        if (netacl_attach(fd, &acl, err) != 0)
            return -1;
        log_msg(LOG_INFO, "%s accepts connections from loopback and the %zu entr%s of %s "
                "only", what, acl.n, acl.n == 1 ? "y" : "ies", option);
        return 0;
    }
    if (netacl_beyond_loopback(fd))
        log_msg(LOG_WARNING, "%s listens beyond loopback and %s is empty: any host that "
                "reaches it may connect; list the MTAs' addresses in %s", what, option,
                option);
    return 0;
}
