/*
 * quickack - does the kernel's route to an address carry the quickack
 * attribute? Read with one rtnetlink RTM_GETROUTE request (what `ip route
 * get ADDR` does); never changed.
 *
 * Why: over an inet milter socket, Postfix's small writes meet the
 * receiver's delayed ACKs, about 40 ms a message (see mtasts-milter(8)).
 * TCP_NODELAY on our side does not cure it; the route attribute does. The
 * milter only says so, once, at start.
 */
#include "quickack.h"

#include <errno.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define QUICKACK_REPLY_MAX 8192	/* one route message with its attributes */
#define QUICKACK_WAIT_MS 1000

/* Looks for RTAX_QUICKACK among the nested metrics of RTA_METRICS. */
static bool
metrics_have_quickack(struct rtattr *metrics)
{
    int len = (int)RTA_PAYLOAD(metrics);

    for (struct rtattr *a = RTA_DATA(metrics); RTA_OK(a, len); a = RTA_NEXT(a, len)) {
        uint32_t v;

        if (a->rta_type != RTAX_QUICKACK || RTA_PAYLOAD(a) < sizeof(v))
            continue;
        memcpy(&v, RTA_DATA(a), sizeof(v));
        return v != 0;
    }
    return false;
}

int
quickack_route_check(const struct sockaddr *sa, bool *has, struct mts_err *err)
{
    struct {
        struct nlmsghdr nh;
        struct rtmsg rt;
        char attrs[64];
    } req;
    char reply[QUICKACK_REPLY_MAX];
    struct sockaddr_nl kernel = {.nl_family = AF_NETLINK};
    struct rtattr *rta;
    struct pollfd pfd;
    const void *addr;
    size_t alen;
    ssize_t n;
    int fd, rc = -1;

    *has = false;
    if (sa->sa_family == AF_INET) {
        addr = &((const struct sockaddr_in *)(const void *)sa)->sin_addr;
        alen = 4;
    } else if (sa->sa_family == AF_INET6) {
        addr = &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr;
        alen = 16;
    } else {
        mts_err_set(err, "not an inet address");
        return -1;
    }
    memset(&req, 0, sizeof(req));
    req.nh.nlmsg_len = NLMSG_LENGTH(sizeof(struct rtmsg));
    req.nh.nlmsg_type = RTM_GETROUTE;
    req.nh.nlmsg_flags = NLM_F_REQUEST;
    req.nh.nlmsg_seq = 1;
    req.rt.rtm_family = (unsigned char)sa->sa_family;
    req.rt.rtm_dst_len = (unsigned char)(alen * 8);
    rta = (struct rtattr *)(void *)((char *)&req + NLMSG_ALIGN(req.nh.nlmsg_len));
    rta->rta_type = RTA_DST;
    rta->rta_len = (unsigned short)RTA_LENGTH(alen);
    memcpy(RTA_DATA(rta), addr, alen);
    req.nh.nlmsg_len = NLMSG_ALIGN(req.nh.nlmsg_len) + RTA_ALIGN(rta->rta_len);

    if ((fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE)) < 0) {
        mts_err_set(err, "netlink socket: %s", strerror(errno));
        return -1;
    }
    if (sendto(fd, &req, req.nh.nlmsg_len, 0, (struct sockaddr *)&kernel, sizeof(kernel)) < 0) {
        mts_err_set(err, "netlink request: %s", strerror(errno));
        goto out;
    }
    pfd.fd = fd;
    pfd.events = POLLIN;
    if (poll(&pfd, 1, QUICKACK_WAIT_MS) != 1 || (n = recv(fd, reply, sizeof(reply), 0)) <= 0) {
        mts_err_set(err, "no answer from the kernel's routing table");
        goto out;
    }
    for (struct nlmsghdr *nh = (struct nlmsghdr *)(void *)reply; NLMSG_OK(nh, (unsigned)n);
         nh = NLMSG_NEXT(nh, n)) {
        int len;

        if (nh->nlmsg_type == NLMSG_ERROR) {
            const struct nlmsgerr *e = NLMSG_DATA(nh);
            mts_err_set(err, "route lookup: %s", strerror(-e->error));
            goto out;
        }
        if (nh->nlmsg_type != RTM_NEWROUTE)
            continue;
        len = (int)RTM_PAYLOAD(nh);
        for (struct rtattr *a = RTM_RTA(NLMSG_DATA(nh)); RTA_OK(a, len); a = RTA_NEXT(a, len))
            if (a->rta_type == RTA_METRICS)
                *has = metrics_have_quickack(a);
        rc = 0;
        break;
    }
    if (rc != 0 && err->msg[0] == '\0')
        mts_err_set(err, "the kernel sent no route");
out:
    close(fd);
    return rc;
}
