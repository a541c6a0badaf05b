/*
 * netacl - which client addresses may connect to an inet: socket (the
 * milter's, the policy map's): a list of addresses and networks, enforced
 * by the kernel on the listening socket.
 *
 * SYNOPSIS
 *	struct netacl acl;
 *	netacl_parse(&cfg->map_allow_clients, &acl, &err);
 *	if (acl.n > 0) netacl_attach(listen_fd, &acl, &err);
 *	netacl_beyond_loopback(fd)      true: reachable from other hosts
 *	netacl_restrict(fd, &cfg->milter_allow_clients, "the milter",
 *	                "milter_allow_clients", &err)    both, at start
 *
 * DESCRIPTION
 *	Entries: an IPv4 or IPv6 address, or ADDRESS/PREFIX (10.0.0.0/8,
 *	2001:db8::/32), parsed as probe_allow_networks is (addrscope.h: no
 *	bits set after the prefix); ::ffff:a.b.c.d counts as a.b.c.d. At
 *	most NETACL_MAX. An empty list allows every client.
 *
 *	netacl_attach puts a classic BPF socket filter (SO_ATTACH_FILTER) on
 *	the listening socket: the SYN of a client whose source address is not
 *	listed is dropped before any connection exists (its connect times
 *	out), so no thread, slot or descriptor of ours is spent on it, and it
 *	works alike for libmilter's listener, which gives us no accept hook.
 *	Loopback (127.0.0.0/8, ::1) is always allowed: the milter connects
 *	to its own listener to stop it.
 *
 * DIAGNOSTICS
 *	netacl_parse and netacl_attach return -1 with a reason.
 */
#ifndef MTS_NETACL_H
#define MTS_NETACL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "err.h"

#define NETACL_MAX 64

struct netacl_entry {
    int family;			/* AF_INET or AF_INET6 */
    uint8_t addr[16];		/* network order; the first 4 bytes for AF_INET */
    int prefix;			/* bits */
};

struct netacl {
    size_t n;
    struct netacl_entry e[NETACL_MAX];
};

int netacl_parse(const struct config_list *list, struct netacl *acl, struct mts_err *err);
int netacl_attach(int fd, const struct netacl *acl, struct mts_err *err);
/* The listening socket fd is inet and bound to an address other hosts can reach. */
bool netacl_beyond_loopback(int fd);

/*
 * What start does for a listening socket fd (unix: nothing): attaches the
 * allow list, or, when it is empty and fd listens beyond loopback, logs a
 * warning naming what ("the policy map") and the option.
 */
int netacl_restrict(int fd, const struct config_list *allow, const char *what,
                    const char *option, struct mts_err *err);

#endif
