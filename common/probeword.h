/*
 * probeword - what the probe of one MX host showed, in the fixed words a
 * reply to a sender may carry.
 *
 * SYNOPSIS
 *	char text[PROBEWORD_TEXT_MAX];
 *	probeword_text(&probes_host, text, sizeof(text));
 *	    -> "certificate expired (certificate-expired)"
 *
 * DESCRIPTION
 *	A reply names the MX host and the kind of failure, never text the
 *	remote server sent (its greeting, the names in its certificate, a
 *	reply code) nor how a connection failed (refused, timed out, reset):
 *	those would make the milter a port scanner and banner reader for
 *	any sender, and they go to the log instead. The words are RFC 8460's
 *	result types where one fits, else the project's own:
 *
 *	  starttls-not-supported     no STARTTLS, or STARTTLS refused
 *	  certificate-host-mismatch  no DNS-ID of the certificate matches
 *	  certificate-expired        a certificate of the chain has expired
 *	  certificate-not-trusted    untrusted chain, or no certificate
 *	  validation-failure         the TLS handshake or the dialogue around
 *	                             it failed, a certificate not yet valid
 *	  tls-too-old                TLS 1.0/1.1 only
 *	  unreachable                no address, or the host would not talk
 *	                             before STARTTLS
 *	  not-probed-private-address no address a probe may connect to
 *	                             (probeconf.h)
 *	  not-probed                 probe_never, or a local error
 *	  not-probed-yet             no result yet
 *	  ok                         RFC 8461 is met
 *
 *	Pure: no I/O.
 */
#ifndef MTS_PROBEWORD_H
#define MTS_PROBEWORD_H

#include <stddef.h>

#include "probes.h"

#define PROBEWORD_TEXT_MAX 96

/* The word (see DESCRIPTION); never NULL. */
const char *probeword_of(const struct probes_host *h);

/* "PHRASE (WORD)", e.g. "no STARTTLS (starttls-not-supported)". */
void probeword_text(const struct probes_host *h, char *out, size_t outsz);

#endif
