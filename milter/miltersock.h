/*
 * miltersock - the milter's listening socket: libmilter opens and accepts
 * on it (smfi_setconn, smfi_opensocket); this is what we add around it.
 * Its sibling for the policy map is mapsock.h.
 *
 * SYNOPSIS
 *	path = miltersock_unix_path(sock);     NULL for inet sockets
 *	miltersock_check_free(path, &err);     before smfi_opensocket
 *	miltersock_remember(path);             after it
 *	fd = miltersock_inet_listener(&ss, &sl);
 *	miltersock_set_nodelay();  miltersock_hint_quickack();
 *	miltersock_wake(sock);                 ends libmilter's wait, at stop
 *	miltersock_remove(path);               at exit
 *
 * DESCRIPTION
 *	miltersock_check_free refuses a unix socket file another process
 *	answers on (smfi_opensocket would remove it and steal its clients) and
 *	lets a stale one go. miltersock_remove removes the socket file only
 *	if it is still the one miltersock_remember saw (libmilter leaves it
 *	when stopped as root). libmilter gives no access to its inet
 *	listener: miltersock_inet_listener finds it among our descriptors.
 *	miltersock_set_nodelay sets TCP_NODELAY on it (accepted sockets
 *	inherit it); miltersock_hint_quickack logs, once, the route command
 *	that spares a loopback MTA the delayed ACKs. miltersock_wake connects
 *	to the listener so that libmilter's accept loop sees its stop.
 *
 * DIAGNOSTICS
 *	miltersock_check_free returns -1 with a reason; the others log what
 *	they cannot do, and go on.
 */
#ifndef MTS_MILTERSOCK_H
#define MTS_MILTERSOCK_H

#include <sys/socket.h>

#include "err.h"

const char *miltersock_unix_path(const char *sock);
int miltersock_check_free(const char *path, struct mts_err *err);
void miltersock_remember(const char *path);
void miltersock_remove(const char *path);
int miltersock_inet_listener(struct sockaddr_storage *ss, socklen_t *sl);
void miltersock_set_nodelay(void);
void miltersock_hint_quickack(void);
void miltersock_wake(const char *sock);

#endif
