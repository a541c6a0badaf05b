/*
 * NAME
 *	metricsd - the metrics endpoint (metrics_socket): GET /metrics over
 *	HTTP, served by libmicrohttpd.
 *
 * SYNOPSIS
 *	metricsd_open(cfg->metrics_socket, &cfg->metrics_allow_clients, uid, gid, &md, &err);
 *	... daemonize, drop privileges ...
 *	metricsd_start(md, &err);		logs where it listens
 *	metricsd_close(md);
 *
 * DESCRIPTION
 *	metricsd_open binds the socket (inet:PORT@HOST, inet6:PORT@HOST or
 *	unix:PATH, as the map's: mapsock.h) while still root, and attaches
 *	the allow list (netacl.h), warning when it listens beyond loopback
 *	without one. metricsd_start starts libmicrohttpd's own thread on it
 *	(after the fork of daemonize: threads do not survive it).
 *
 *	GET (and HEAD) /metrics answers 200 with metrics_render's text,
 *	Content-Type text/plain; version=0.0.4. Another path is 404, another
 *	method 405 (with Allow: GET, HEAD); what libmicrohttpd cannot parse
 *	it answers 400 itself. What a client can hold is bounded:
 *	METRICSD_MAX_CLIENTS connections at once (more are closed at
 *	accept), METRICSD_MAX_PER_IP from one address, METRICSD_TIMEOUT_S of
 *	silence closes a connection, and a request's headers get
 *	METRICSD_MEMORY bytes (beyond: 431/413, then closed).
 *
 *	A scrape takes no lock an RCPT waits for (metrics.h).
 *
 * DIAGNOSTICS
 *	metricsd_open and metricsd_start return -1 with a reason.
 *	metricsd_close(NULL) does nothing.
 */
#ifndef MTS_METRICSD_H
#define MTS_METRICSD_H

#include <sys/types.h>

#include "config.h"
#include "err.h"

#define METRICSD_MAX_CLIENTS 16
#define METRICSD_MAX_PER_IP 8
#define METRICSD_TIMEOUT_S 10
#define METRICSD_MEMORY 16384

struct metricsd;

int metricsd_open(const char *spec, const struct config_list *allow, uid_t uid, gid_t gid,
                  struct metricsd **out, struct mts_err *err);
int metricsd_start(struct metricsd *md, struct mts_err *err);
void metricsd_close(struct metricsd *md);

#endif
