/*
 * addrscope - is a numeric IP address on the global internet, and is it in
 * a list of networks: which addresses a probe may connect to.
 *
 * SYNOPSIS
 *	struct addrscope_nets allow;
 *	addrscope_nets_parse(&cfg->probe_allow_networks, &allow, &err);
 *	const char *range = addrscope_special("10.0.0.25");
 *	    -> "private (10.0.0.0/8, RFC 1918)"; NULL for a global address
 *	if (range != NULL && !addrscope_nets_contain(&allow, "10.0.0.25"))
 *	    ... not probed
 *
 * DESCRIPTION
 *	addrscope_special names the special-purpose range (IANA's IPv4 and
 *	IPv6 special-purpose address registries, RFC 6890) an address lies
 *	in when that range is not globally reachable: IPv4 0/8, 10/8,
 *	100.64/10, 127/8, 169.254/16, 172.16/12, 192.0.0/24, the
 *	documentation ranges, 192.88.99/24, 192.168/16, 198.18/15,
 *	multicast 224/4, 240/4 and the broadcast address; IPv6 ::, ::1,
 *	64:ff9b:1::/48, 2001::/23, 2001:db8::/32, 3fff::/20, fc00::/7,
 *	fe80::/10, fec0::/10, ff00::/8 and everything outside 2000::/3. An
 *	IPv6 address that carries an IPv4 one (v4-mapped ::ffff:0:0/96,
 *	NAT64 64:ff9b::/96, 6to4 2002::/16) is judged by the IPv4 address it
 *	carries. Text that is not a numeric address is "not an address".
 *	Pure: no I/O, no state.
 *
 *	A list of networks is "ADDRESS[/PREFIX]" words (IPv4 or IPv6; no
 *	prefix: the one address). An IPv4 network also contains the
 *	v4-mapped forms of its addresses.
 *
 * DIAGNOSTICS
 *	addrscope_nets_parse returns -1 with the word and what is wrong in
 *	err: not an address, a prefix out of range, bits set after the
 *	prefix (a typo for another network), more than ADDRSCOPE_NETS_MAX.
 */
#ifndef MTS_ADDRSCOPE_H
#define MTS_ADDRSCOPE_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "err.h"

#define ADDRSCOPE_NETS_MAX 64

struct addrscope_net {
    unsigned char addr[16]; /* IPv4 as ::ffff:a.b.c.d */
    unsigned prefix;        /* bits of addr that count, 0-128 */
};

struct addrscope_nets {
    size_t n;
    struct addrscope_net v[ADDRSCOPE_NETS_MAX];
};

/* NULL when address is globally reachable; else its range (see DESCRIPTION). */
const char *addrscope_special(const char *address);

int addrscope_nets_parse(const struct config_list *words, struct addrscope_nets *out,
                         struct mts_err *err);

/* Is address (numeric) in one of the networks? */
bool addrscope_nets_contain(const struct addrscope_nets *nets, const char *address);

#endif
