/*
 * dnsask - ask one DNS server one question directly (UDP), bypassing
 * libunbound: the resolver health check's second opinion.
 *
 * SYNOPSIS
 *	int rcode;
 *	enum dnsask_result r = dnsask("127.0.0.53", "_mta-sts.example.com", 16,
 *	                              1000, &rcode, &err);
 *
 * DESCRIPTION
 *	Sends one query (recursion desired, no EDNS) for name and type to
 *	server (an IPv4 or IPv6 address, port 53) and waits at most timeout_ms
 *	for the reply with the same id and question. DNSASK_ANSWERED sets
 *	rcode (0 NOERROR, 2 SERVFAIL, 3 NXDOMAIN, ...). Nothing is cached or
 *	validated: only whether the server answers that question matters.
 *
 * DIAGNOSTICS
 *	DNSASK_SILENT: no reply within timeout_ms. DNSASK_ERROR: a bad name or
 *	address, or a socket error; err says which.
 */
#ifndef MTS_DNSASK_H
#define MTS_DNSASK_H

#include "err.h"

enum dnsask_result {
    DNSASK_ANSWERED,
    DNSASK_SILENT,
    DNSASK_ERROR
};

enum dnsask_result dnsask(const char *server, const char *name, int type, int timeout_ms,
                          int *rcode, struct mts_err *err);

#endif
