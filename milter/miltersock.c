/*
 * miltersock - the milter's own listening socket, around libmilter's;
 * see miltersock.h.
 */
#include "miltersock.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "log.h"
#include "quickack.h"

/*
 * The inet listening socket is libmilter's own and has no accessor: find it
 * among our descriptors. Returns it (and its address), or -1.
 */
int
miltersock_inet_listener(struct sockaddr_storage *ss, socklen_t *sl)
{
    for (int fd = 3; fd < 1024; fd++) {
        int acc = 0, type = 0;
        socklen_t len = sizeof(acc);

        *sl = sizeof(*ss);
        if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &acc, &len) != 0 || !acc)
            continue;
        len = sizeof(type);
        if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) != 0 || type != SOCK_STREAM ||
            getsockname(fd, (struct sockaddr *)ss, sl) != 0 ||
            (ss->ss_family != AF_INET && ss->ss_family != AF_INET6))
            continue;
        return fd;
    }
    return -1;
}

/* An address to reach a listener at: its own, or loopback for "any". */
static void
reachable_address(struct sockaddr_storage *ss)
{
    if (ss->ss_family == AF_INET) {
        struct sockaddr_in *in = (struct sockaddr_in *)ss;
        if (in->sin_addr.s_addr == htonl(INADDR_ANY))
            in->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    } else if (ss->ss_family == AF_INET6) {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
        if (IN6_IS_ADDR_UNSPECIFIED(&in6->sin6_addr))
            in6->sin6_addr = in6addr_loopback;
    }
}

/*
 * libmilter leaves Nagle on. Under Postfix, a reply that follows a small
 * write then waits for the delayed ACK (~40 ms a message); accepted
 * sockets inherit TCP_NODELAY from the listener.
 */
void
miltersock_set_nodelay(void)
{
    struct sockaddr_storage ss;
    socklen_t sl;
    int one = 1, fd = miltersock_inet_listener(&ss, &sl);

    if (fd < 0)
        return;
    if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) != 0)
        log_msg(LOG_WARNING, "cannot set TCP_NODELAY on the milter socket: %s", strerror(errno));
    else
        log_msg(LOG_DEBUG, "TCP_NODELAY set on the listening socket");
}

/*
 * TCP_NODELAY is half the cure: the MTA's small writes still meet our
 * delayed ACKs, unless the route has the quickack attribute. Say so once,
 * with the command; never change the route ourselves.
 */
void
miltersock_hint_quickack(void)
{
    struct sockaddr_storage ss;
    socklen_t sl;
    struct mts_err e;
    char addr[INET6_ADDRSTRLEN] = "?";
    bool has = false;

    if (miltersock_inet_listener(&ss, &sl) < 0)
        return;
    reachable_address(&ss);
    /* Only on loopback do the MTA and the milter share this route; for a
     * remote MTA the attribute belongs on its host. */
    if (!(ss.ss_family == AF_INET &&
          (ntohl(((struct sockaddr_in *)&ss)->sin_addr.s_addr) >> 24) == 127) &&
        !(ss.ss_family == AF_INET6 &&
          IN6_IS_ADDR_LOOPBACK(&((struct sockaddr_in6 *)&ss)->sin6_addr)))
        return;
    mts_err_clear(&e);
    if (ss.ss_family == AF_INET)
        inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, addr, sizeof(addr));
    else
        inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, addr, sizeof(addr));
    if (quickack_route_check((struct sockaddr *)&ss, &has, &e) != 0) {
        log_msg(LOG_DEBUG, "cannot read the route to %s: %s", addr, e.msg);
        return;
    }
    if (!has)
        log_msg(LOG_NOTICE, "hint: the route to %s has no quickack attribute, so each message "
                "from Postfix over this inet socket waits for delayed ACKs (about 40 ms); a "
                "unix socket avoids it, or set it with: ip route replace local %s dev lo table "
                "local proto kernel scope host src %s quickack 1 (see mtasts-milter(8))",
                addr, addr, addr);
}

/*
 * A unix socket path, or NULL for inet sockets. libmilter takes "unix:" and
 * "local:" alike.
 */
const char *
miltersock_unix_path(const char *sock)
{
    if (strncmp(sock, "unix:", 5) == 0 || strncmp(sock, "local:", 6) == 0)
        return strchr(sock, ':') + 1;
    return NULL;
}

/*
 * smfi_opensocket(true) removes whatever socket file is in the way, which
 * would steal the socket of a milter that is still running. Refuse when one
 * answers; a socket file nobody answers on is a crash's leftover and goes.
 */
int
miltersock_check_free(const char *path, struct mts_err *err)
{
    struct sockaddr_un sun;
    struct stat st;
    int fd, rc;

    if (lstat(path, &st) != 0 || !S_ISSOCK(st.st_mode))
        return 0;		/* absent, or not a socket: libmilter says why */
    memset(&sun, 0, sizeof(sun));
    sun.sun_family = AF_UNIX;
    if (snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path) >= (int)sizeof(sun.sun_path))
        return 0;
    if ((fd = socket(AF_UNIX, SOCK_STREAM, 0)) < 0)
        return 0;
    rc = connect(fd, (struct sockaddr *)&sun, sizeof(sun));
    close(fd);
    if (rc == 0) {
        mts_err_set(err, "the milter socket %s is in use by a running process "
                    "(another mtasts-milter?)", path);
        return -1;
    }
    log_msg(LOG_NOTICE, "removing the stale socket %s (nothing answers on it)", path);
    return 0;
}

/* What the socket file we created is, so that we remove ours and no other. */
static struct stat our_socket;
static bool our_socket_known;

void
miltersock_remember(const char *path)
{
    our_socket_known = path != NULL && lstat(path, &our_socket) == 0;
}

/*
 * libmilter removes its unix socket at stop only when not running as root
 * (mi_closener checks geteuid), so a stop as root left it behind. Remove it
 * ourselves, if it is still the one we made.
 */
void
miltersock_remove(const char *path)
{
    struct stat st;

    if (path == NULL || !our_socket_known || lstat(path, &st) != 0)
        return;
    if (S_ISSOCK(st.st_mode) && st.st_dev == our_socket.st_dev &&
        st.st_ino == our_socket.st_ino && unlink(path) != 0)
        log_msg(LOG_WARNING, "cannot remove the socket %s: %s", path, strerror(errno));
}

/*
 * A connection of our own ends the libmilter listener's wait for one (see
 * stop_milter); the session it starts reads end-of-file and ends.
 */
void
miltersock_wake(const char *sock)
{
    const char *path = miltersock_unix_path(sock);
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    int fd = -1;

    if (path != NULL) {
        struct sockaddr_un sun;

        memset(&sun, 0, sizeof(sun));
        sun.sun_family = AF_UNIX;
        if (snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path) >=
                (int)sizeof(sun.sun_path) ||
            (fd = socket(AF_UNIX, SOCK_STREAM, 0)) < 0)
            return;
        (void)connect(fd, (struct sockaddr *)&sun, sizeof(sun));
        close(fd);
        return;
    }
    /* inet: connect to the listener's own address. */
    if (miltersock_inet_listener(&ss, &sl) < 0)
        return;
    reachable_address(&ss);
    if ((fd = socket(ss.ss_family, SOCK_STREAM, 0)) < 0)
        return;
    (void)connect(fd, (struct sockaddr *)&ss, sl);
    close(fd);
}
