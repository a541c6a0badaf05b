/*
 * NAME
 *	maproute - which MTA transports take their TLS policy from this
 *	daemon's own policy map (map_socket), and so enforce MTA-STS by
 *	construction.
 *
 * SYNOPSIS
 *	struct maproute r;
 *	maproute_learn(cfg, &r, &err);		at start and at each reload
 *	maproute_has(&r, "smtp");		per recipient ({rcpt_mailer})
 *	maproute_describe(&r, buf, size);	"smtp, relay" for the log
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
};

/* Adds the transports that enforce through the map to r (r zeroed first
 * by the caller, or holding names from before). */
int maproute_parse(const struct maproute_input *in, struct maproute *r, struct mts_err *err);

/* map_transports and, for "auto" with map_socket set, postconf. */
int maproute_learn(const struct config *cfg, struct maproute *r, struct mts_err *err);

/* Is this transport (case-insensitive) one of them? r may be NULL. */
bool maproute_has(const struct maproute *r, const char *transport);

/* "smtp, relay", or "none". */
void maproute_describe(const struct maproute *r, char *buf, size_t size);

void maproute_free(struct maproute *r);

#endif
