/*
 * quickack - whether the route to an address has the quickack attribute
 * (Linux rtnetlink, read only). See quickack.c for why the milter asks.
 *
 * DIAGNOSTICS
 *	quickack_route_check returns 0 and sets *has, or -1 with a reason.
 */
#ifndef MTS_QUICKACK_H
#define MTS_QUICKACK_H

#include <stdbool.h>
#include <sys/socket.h>

#include "err.h"

int quickack_route_check(const struct sockaddr *sa, bool *has, struct mts_err *err);

#endif
