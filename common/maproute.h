/*
 * NAME
 *	maproute - which MTA transports take their TLS policy from this
 *	daemon's own policy map (map_socket), and so enforce MTA-STS by
 *	construction; and which enforce DANE (RFC 7672) by their own levels.
 *
 * SYNOPSIS
 *	struct maproute r;
 *	maproute_learn(cfg, &r, &err);		at start and at each reload
 *	maproute_has(&r, "smtp");		per recipient ({rcpt_mailer})
 *	maproute_has_dane(&r, "smtp");
 *	maproute_describe(&r, buf, size);	"smtp, relay" for the log
 *	maproute_describe_dane(&r, buf, size);
 *	maproute_free(&r);
 *
 *	maproute_parse(&input, &r, &err);	the postconf reader alone (tests)
 *
 * DESCRIPTION
 *	map_transports lists transport names outright; its word "auto" (the
 *	default) asks Postfix, when map_socket is set:
 *
 *	    postconf [-c DIR] -xh queue_directory smtp_tls_policy_maps
 *	    postconf [-c DIR] -F	master.cf fields (command, chroot)
 *	    postconf [-c DIR] -xP	master.cf -o overrides
 *
 *	A master.cf service of type unix whose command is smtp is a transport
 *	that enforces through the map when the FIRST map of its
 *	smtp_tls_policy_maps (its -o override, else main.cf's) is this
 *	daemon's socket: socketmap:unix:PATH:NAME, where PATH is map_socket's
 *	path (for a chrooted service: $queue_directory followed by PATH), or
 *	socketmap:inet:HOST:PORT:NAME for map_socket inet:PORT@HOST. Any NAME
 *	will do: the map answers every name. A service that lists the map
 *	after another map is not counted (the earlier map answers first and
 *	may ask for less); it is named in the notes, for the log.
 *
 *	dane_transports lists the transports that enforce DANE outright
 *	(Sendmail mailers with O DANE=true, say); "none" is no name; "auto"
 *	(the default) asks Postfix, in the same postconf runs (which then also
 *	ask main.cf for smtp_dns_support_level and smtp_tls_security_level),
 *	when map_socket or map_postfix_config is set or /etc/postfix/main.cf
 *	exists. A master.cf service of type unix whose command is smtp
 *	enforces DANE when its effective smtp_dns_support_level (its -o
 *	override, else main.cf's) is dnssec and its effective
 *	smtp_tls_security_level is dane or dane-only (postconf(5): DANE needs
 *	dnssec support and a validating resolver; with dane, a host without
 *	secure TLSA gets "may", so the verdict counts such a route for the
 *	DANE hosts only). A policy map of the service may still change
 *	the level per destination: verdict_route_enforces_dane says when this
 *	daemon's map does.
 *
 * DIAGNOSTICS
 *	maproute_learn returns -1 and a sentence when postconf cannot be run
 *	or fails (its own message); the explicit names are kept in r all the
 *	same. maproute_parse fails only when memory runs out.
 */
#ifndef MTS_MAPROUTE_H
#define MTS_MAPROUTE_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "err.h"

#define MAPROUTE_NOTES_MAX 1024
#define MAPROUTE_OUTPUT_MAX (1024 * 1024)	/* postconf output read, at most */
#define MAPROUTE_TIMEOUT_MS 10000		/* each postconf run */

struct maproute {
    size_t n;
    char **name;		/* transport names, as {rcpt_mailer} says them */
    size_t n_dane;
    char **dane;		/* transports enforcing DANE (dane_transports) */
    bool asked_postfix;		/* postconf ran and answered */
    char notes[MAPROUTE_NOTES_MAX];	/* services naming the map, not counted */
};

/* What postconf said; any text may be "". */
struct maproute_input {
    const char *map_socket;	/* the config's map_socket */
    const char *queue_directory;
    const char *main_maps;	/* main.cf's smtp_tls_policy_maps, expanded */
    const char *fields;		/* postconf -F output */
    const char *params;		/* postconf -xP output */
    bool dane;			/* learn the DANE transports too */
    const char *main_dns;	/* main.cf's smtp_dns_support_level */
    const char *main_level;	/* main.cf's smtp_tls_security_level */
};

/* Adds the transports that enforce through the map to r (r zeroed first
 * by the caller, or holding names from before), and with in->dane those
 * that enforce DANE. */
int maproute_parse(const struct maproute_input *in, struct maproute *r, struct mts_err *err);

/* map_transports and dane_transports and, for "auto", postconf. */
int maproute_learn(const struct config *cfg, struct maproute *r, struct mts_err *err);

/* Is this transport (case-insensitive) one of them? r may be NULL. */
bool maproute_has(const struct maproute *r, const char *transport);

/* Does this transport (case-insensitive) enforce DANE? r may be NULL. */
bool maproute_has_dane(const struct maproute *r, const char *transport);

/* "smtp, relay", or "none". */
void maproute_describe(const struct maproute *r, char *buf, size_t size);
void maproute_describe_dane(const struct maproute *r, char *buf, size_t size);

void maproute_free(struct maproute *r);

#endif
