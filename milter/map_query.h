/*
 * map_query - one policy-map request answered: "NAME KEY" -> the reply
 * text of Postfix's socketmap protocol, through the discovery engine.
 * Both the map listener (mapserver.c) and `mtasts-ctl map` call it, so
 * the tool prints exactly what the map answers.
 *
 * SYNOPSIS
 *	char out[SOCKMAP_MAX_REPLY + 1];
 *	enum sockmap_reply k = map_query(d, cfg, "postfix example.com", 19,
 *	                                 out, sizeof(out));
 *
 * DESCRIPTION
 *	The key becomes a policy domain (socketmap.h); the domain's status
 *	comes from discover_lookup within cfg->map_deadline_ms, and for an
 *	enforce policy its MX hosts from discover_mx within the same deadline;
 *	sockmap_answer builds the reply. TLSRPT attributes with map_tlsrpt,
 *	never for Sendmail's map name "sts".
 *
 * DIAGNOSTICS
 *	A malformed request gives PERM with the reason; nothing else fails:
 *	what cannot be learnt in time is TEMP.
 */
#ifndef MTS_MAP_QUERY_H
#define MTS_MAP_QUERY_H

#include <stddef.h>

#include "config.h"
#include "discover.h"
#include "socketmap.h"

enum sockmap_reply map_query(struct discover *d, const struct config *cfg, const char *req,
                             size_t len, char *out, size_t outsz);

#endif
