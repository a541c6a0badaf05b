/*
 * mapsock - the policy map's listening socket; see mapsock.h.
 */
#include "mapsock.h"

#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "log.h"
#include "rootpath.h"

static int
open_unix(struct mapsock *ms, const char *path, uid_t uid, gid_t gid, struct mts_err *err)
{
    struct sockaddr_un sun;
    struct stat st;

    memset(&sun, 0, sizeof(sun));
    sun.sun_family = AF_UNIX;
    if (snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path) >= (int)sizeof(sun.sun_path)) {
        mts_err_set(err, "map socket path too long: %s", path);
        return -1;
    }
    if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode)) {
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        int rc = fd < 0 ? -1 : connect(fd, (struct sockaddr *)&sun, sizeof(sun));

        if (fd >= 0)
            close(fd);
        if (rc == 0) {
            mts_err_set(err, "the map socket %s is in use by a running process", path);
            return -1;
        }
        log_msg(LOG_NOTICE, "removing the stale map socket %s (nothing answers on it)", path);
        (void)unlink(path);
    }
    ms->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (ms->fd < 0 || bind(ms->fd, (struct sockaddr *)&sun, sizeof(sun)) != 0) {
        mts_err_set(err, "cannot bind the map socket %s: %s", path, strerror(errno));
        return -1;
    }
    if ((ms->path = strdup(path)) == NULL || lstat(path, &ms->st) != 0) {
        mts_err_set(err, "map socket %s: %s", path, strerror(errno));
        return -1;
    }
    rootpath_give(path, uid, gid, "the map socket");
    return 0;
}

/* inet:PORT@HOST or inet6:PORT@HOST */
static int
open_inet(struct mapsock *ms, const char *spec, int family, struct mts_err *err)
{
    const char *at = strchr(spec, '@');
    struct addrinfo hints, *ai = NULL;
    char port[16];
    int one = 1, rc;

    if (at == NULL || at == spec || at[1] == '\0' || (size_t)(at - spec) >= sizeof(port)) {
        mts_err_set(err, "map socket \"%s\": expected PORT@HOST", spec);
        return -1;
    }
    memcpy(port, spec, (size_t)(at - spec));
    port[at - spec] = '\0';
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = family;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    if ((rc = getaddrinfo(at + 1, port, &hints, &ai)) != 0) {
        mts_err_set(err, "map socket \"%s\": %s", spec, gai_strerror(rc));
        return -1;
    }
    ms->fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (ms->fd >= 0)
        (void)setsockopt(ms->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (ms->fd < 0 || bind(ms->fd, ai->ai_addr, ai->ai_addrlen) != 0) {
        mts_err_set(err, "cannot bind the map socket %s: %s", spec, strerror(errno));
        freeaddrinfo(ai);
        return -1;
    }
    freeaddrinfo(ai);
    return 0;
}

int
mapsock_open(const char *spec, uid_t uid, gid_t gid, struct mapsock *ls, struct mts_err *err)
{
    int rc;

    ls->fd = -1;
    ls->path = NULL;
    if (strncmp(spec, "unix:", 5) == 0 || strncmp(spec, "local:", 6) == 0)
        rc = open_unix(ls, strchr(spec, ':') + 1, uid, gid, err);
    else if (strncmp(spec, "inet:", 5) == 0)
        rc = open_inet(ls, spec + 5, AF_INET, err);
    else if (strncmp(spec, "inet6:", 6) == 0)
        rc = open_inet(ls, spec + 6, AF_INET6, err);
    else {
        mts_err_set(err, "map_socket \"%s\": expected unix:PATH, inet:PORT@HOST or "
                    "inet6:PORT@HOST", spec);
        rc = -1;
    }
    if (rc == 0 && listen(ls->fd, 128) != 0) {
        mts_err_set(err, "cannot listen on the map socket %s: %s", spec, strerror(errno));
        rc = -1;
    }
    return rc;
}

void
mapsock_close(struct mapsock *ls)
{
    struct stat st;

    if (ls->fd >= 0)
        close(ls->fd);
    ls->fd = -1;
    if (ls->path != NULL && lstat(ls->path, &st) == 0 && S_ISSOCK(st.st_mode) &&
        st.st_dev == ls->st.st_dev && st.st_ino == ls->st.st_ino)
        (void)unlink(ls->path);
    free(ls->path);
    ls->path = NULL;
}
