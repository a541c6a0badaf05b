/*
 * mapsock - the policy map's listening socket.
 *
 * SYNOPSIS
 *	struct mapsock ls;
 *	mapsock_open("unix:/run/mtasts-milter/map.sock", uid, gid, &ls, &err);
 *	... accept4(ls.fd, ...) ...
 *	mapsock_close(&ls);
 *
 * DESCRIPTION
 *	mapsock_open binds and listens (non-blocking, close-on-exec) on
 *	unix:PATH (local:PATH), inet:PORT@HOST or inet6:PORT@HOST. A unix
 *	socket is given to uid:gid; a socket file that nobody answers on is
 *	replaced, one that answers is an error.
 *
 *	mapsock_close closes the socket and removes the unix socket file if
 *	it is still the one mapsock_open made. Safe on a mapsock whose open
 *	failed, or that was zeroed with fd = -1.
 *
 * DIAGNOSTICS
 *	mapsock_open returns -1 with a reason (what it opened is closed by
 *	mapsock_close).
 */
#ifndef MTS_MAPSOCK_H
#define MTS_MAPSOCK_H

#include <sys/stat.h>
#include <sys/types.h>

#include "err.h"

struct mapsock {
    int fd;			/* -1: none */
    char *path;			/* unix socket file, or NULL */
    struct stat st;		/* ... as we made it */
};

int mapsock_open(const char *spec, uid_t uid, gid_t gid, struct mapsock *ls,
                 struct mts_err *err);
void mapsock_close(struct mapsock *ls);

#endif
