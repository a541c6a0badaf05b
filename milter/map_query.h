/*
 * map_query - one policy-map request answered: "NAME KEY" -> the reply
 * text of Postfix's socketmap protocol, through the discovery engine.
 * Both the map listener (mapserver.c) and `mtasts-ctl map` call it, so
 * the tool prints exactly what the map answers.
 *
 * SYNOPSIS
 *	char out[SOCKMAP_MAX_REPLY + 1];
 *	enum sockmap_reply k = map_query(d, probes_or_NULL, cfg, "postfix example.com",
 *	                                 19, out, sizeof(out));
 *
 * DESCRIPTION
 *	The key becomes a policy domain (socketmap.h); the domain's status
 *	comes from discover_lookup within cfg->map_deadline_ms, and for an
 *	enforce policy its MX hosts from discover_mx within the same deadline;
 *	sockmap_answer builds the reply. TLSRPT attributes with map_tlsrpt,
 *	never for Sendmail's map name "sts". An unknown status is TEMP or
 *	NOTFOUND as map_unknown and map_unknown_except say for the domain.
 *
 *	DANE (RFC 7672), with probes (p, mx_probes = yes): a domain whose MX
 *	RRset is DNSSEC-secure and every one of whose MX hosts DANE decides
 *	(usable TLSA records, or a failed TLSA lookup; for an enforce policy
 *	every host matching it) gets "OK dane-only" (danemap.h has the rule
 *	and why; the MX set is then looked up for every domain, and the
 *	probes of its hosts are queued from here). Otherwise, as without
 *	TLSA records: an enforce domain gets "secure match=..." (Postfix then
 *	authenticates all its MX hosts by WebPKI, DANE ones too: the milter
 *	judges DANE at submission); other domains get NOTFOUND, so Postfix's
 *	own level applies. A route through a map transport enforces DANE
 *	exactly for the dane-only domains (decide.c). p NULL (no probes):
 *	never dane-only.
 *
 *	map_query_as charges the lookups of new domains to who (a map
 *	connection: who->map, discover.h), so the map's caps apply
 *	(map_lookups_per_connection, map_lookups_max); map_query charges
 *	nobody (mtasts-ctl map).
 *
 *	map_query_at_once gives the same answer from memory alone (the rows
 *	and MX sets the discovery engine holds, cachecopy.h), for the map's
 *	event loop, which must never wait: it returns false when memory cannot
 *	give a definite answer (a domain not held, expired, or unknown), and
 *	the request then goes to map_query on an answer thread.
 *
 * DIAGNOSTICS
 *	A malformed request gives PERM with the reason; nothing else fails:
 *	what cannot be learnt in time is TEMP (or NOTFOUND, map_unknown).
 */
#ifndef MTS_MAP_QUERY_H
#define MTS_MAP_QUERY_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "discover.h"
#include "probes.h"
#include "socketmap.h"

enum sockmap_reply map_query(struct discover *d, struct probes *p, const struct config *cfg,
                             const char *req, size_t len, char *out, size_t outsz);
enum sockmap_reply map_query_as(struct discover *d, struct probes *p, const struct config *cfg,
                                const struct discover_caller *who, const char *req,
                                size_t len, char *out, size_t outsz);
bool map_query_at_once(struct discover *d, struct probes *p, const struct config *cfg,
                       const char *req, size_t len, char *out, size_t outsz);

/*
 * The map listener's answer functions (mapserver.h): the same, under the
 * runtime in force at each request (runtime.h), the lookups charged to
 * the map connection conn; TEMP while the milter is starting.
 */
void map_query_answer(const char *req, size_t len, unsigned long conn, char *out, size_t outsz,
                      void *arg);
bool map_query_answer_at_once(const char *req, size_t len, char *out, size_t outsz, void *arg);

#endif
