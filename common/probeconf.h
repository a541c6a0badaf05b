/*
 * probeconf - the probe options of a configuration, built in one place:
 * the milter's probes (probes.c) and mtasts-ctl probe and check use the
 * same CA store, EHLO name, port, timeouts, never-list and allowed
 * networks, so a probe graded by one is the probe the other would run.
 *
 * SYNOPSIS
 *	struct probeconf pc;
 *	probeconf_init(&pc, cfg, &err);		cfg must outlive pc
 *	tlsprobe_run(&pc.tls, host, address, pc.port, &deadline, &result);
 *	if (!probeconf_may_connect(&pc, address, why, sizeof(why))) ... skip
 *
 * DESCRIPTION
 *	tls.ca_file is probe_ca_file, else ca_file (else, empty, the system
 *	store); tls.ehlo_name is this machine's name when it is fully
 *	qualified (RFC 5321 §4.1.4), else "localhost". port, timeout_ms,
 *	dns_timeout_ms, ttl and failure_ttl are probe_port,
 *	probe_timeout_ms, dns_timeout_ms, probe_ttl and probe_failure_ttl;
 *	never is probe_never (probes_never() reads it).
 *
 *	probeconf_may_connect says whether a probe may connect to a numeric
 *	address: a globally reachable one always, any other only when
 *	probe_allow_networks lists its network (addrscope.h); else why
 *	names the address and its range, for the log.
 *
 *	probeconf_routable_only keeps, in order, the addresses a probe may
 *	connect to, logs each one left out, and names the first in why;
 *	probeconf_allowed_rows does the same for rows read back from the
 *	shared cache (a row another process, or an earlier
 *	probe_allow_networks, wrote for an address not allowed now is not
 *	believed), silently.
 *
 * DIAGNOSTICS
 *	probeconf_init returns -1 with a reason when probe_allow_networks
 *	does not parse (config_load has already refused such a file).
 */
#ifndef MTS_PROBECONF_H
#define MTS_PROBECONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "addrscope.h"
#include "config.h"
#include "err.h"
#include "probecache.h"
#include "tlsprobe.h"

struct probeconf {
    struct tlsprobe_options tls; /* points into cfg and ehlo */
    char ehlo[TLSPROBE_HOST_MAX + 1];
    int port;
    int timeout_ms;              /* one probe of one address */
    int dns_timeout_ms;          /* the address lookup of one host */
    int64_t ttl, failure_ttl;    /* seconds a row is kept (probecache.h) */
    const struct config_list *never;
    struct addrscope_nets allow;
};

int probeconf_init(struct probeconf *pc, const struct config *cfg, struct mts_err *err);

/* See DESCRIPTION; why may be NULL. */
bool probeconf_may_connect(const struct probeconf *pc, const char *address, char *why,
                           size_t whysz);

/* Both return how many are left, moved to the front. */
int probeconf_routable_only(const struct probeconf *pc, const char *host,
                            char addrs[][PROBECACHE_ADDRESS_MAX], int n, char *why, size_t whysz);
size_t probeconf_allowed_rows(const struct probeconf *pc, struct probecache_row *rows, size_t n);

#endif
