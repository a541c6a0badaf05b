/*
 * mapserver - the policy-map listener: Postfix's socketmap protocol on a
 * socket of its own, epoll(7) event loop threads (one a CPU, at most 4),
 * and a pool of answer threads, apart from libmilter's threads.
 *
 * SYNOPSIS
 *	struct mapserver *ms;
 *	mapserver_open("unix:/run/mtasts-milter/map.sock", uid, gid, &ms, &err);
 *	... drop privileges ...
 *	mapserver_start(ms, &limits, answer_fn, at_once_fn, arg, &err);
 *	...
 *	mapserver_close(ms);
 *
 * DESCRIPTION
 *	The first event loop accepts connections, at most
 *	limits.max_clients. When that many are open, the connection idle the
 *	longest (waiting for its next request) is closed for a new client,
 *	so silent clients never lock others out (Postfix's smtp processes
 *	reconnect when they next ask); only when none is idle is the new
 *	connection closed at once, with a log line. It gives each to the
 *	loop that serves the fewest (itself on a tie, so a single client
 *	costs no hand-off); a connection stays with its loop.
 *	With several loops, many clients in flight are answered on every CPU
 *	(one loop's send(2)s, each waking a client, were the limit of 64 in
 *	flight). A loop reads netstrings without blocking and hands each
 *	complete request to the answer threads; it never waits for an answer
 *	itself. A connection has one request in
 *	flight; further pipelined requests wait in its buffer, so answers
 *	keep their order. A malformed or over-long netstring (socketmap.h) is
 *	logged and the connection closed; so is a request not completed
 *	within MAPSERVER_REQUEST_TIMEOUT_MS, a reply not taken within
 *	MAPSERVER_WRITE_TIMEOUT_MS, and a connection idle for
 *	limits.idle_timeout_ms.
 *
 *	A request that at_once_fn (when given) can answer without waiting (a
 *	warm domain, from memory) is answered on its loop thread itself, in
 *	order with the connection's other requests: no hand-off to a thread
 *	and back, which was most of the cost of a warm lookup. The answers
 *	to a connection's pipelined requests go out together, in one write
 *	(up to 16 KiB of them at a time); what the client does not take
 *	waits, and its connection reads no more until it does.
 *
 *	limits.workers answer threads (mappool.h) are always there; when all
 *	are busy a request gets a thread of its own (at most one per
 *	connection), which goes after MAPPOOL_LINGER_MS without work: a slow
 *	domain holds only the threads of the clients that asked for it, each
 *	for at most the answer function's own deadline.
 *
 * DIAGNOSTICS
 *	mapserver_open and mapserver_start return -1 with a reason.
 */
#ifndef MTS_MAPSERVER_H
#define MTS_MAPSERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "config.h"
#include "err.h"
#include "socketmap.h"

#define MAPSERVER_REQUEST_TIMEOUT_MS 10000
#define MAPSERVER_WRITE_TIMEOUT_MS 10000

struct mapserver;

struct mapserver_limits {
    int max_clients;
    int workers;
    int64_t idle_timeout_ms;	/* a connection waiting for a request this long is closed */
};

/*
 * Answers one request ("NAME KEY", len bytes) of connection conn (a number
 * unique in the listener's life) into out (reply text, no framing,
 * NUL-terminated). Called on the answer threads, concurrently.
 */
typedef void (*mapserver_answer_fn)(const char *req, size_t len, unsigned long conn, char *out,
                                    size_t outsz, void *arg);

/*
 * The same answer, on an event loop thread (concurrently, with several
 * loops): must not wait (no database, DNS or HTTPS); returns false when
 * it cannot answer at once (the request then goes to an answer thread).
 */
typedef bool (*mapserver_at_once_fn)(const char *req, size_t len, char *out, size_t outsz,
                                     void *arg);

/*
 * Opens the listening socket: unix:PATH (local:PATH), inet:PORT@HOST or
 * inet6:PORT@HOST. A unix socket is given to uid:gid; a socket file that
 * nobody answers on is replaced, one that answers is an error.
 */
int mapserver_open(const char *spec, uid_t uid, gid_t gid, struct mapserver **out,
                   struct mts_err *err);

/*
 * An inet listener: only clients listed in acl (netacl.h; loopback always)
 * may connect; with an empty acl, a warning when it listens beyond
 * loopback.
 */
int mapserver_allow(struct mapserver *ms, const struct config_list *allow, struct mts_err *err);

/* at_once may be NULL: every request goes to the answer threads. */
int mapserver_start(struct mapserver *ms, const struct mapserver_limits *limits,
                    mapserver_answer_fn fn, mapserver_at_once_fn at_once, void *arg,
                    struct mts_err *err);

/*
 * Stops: closes the listener and every connection, waits for the answer
 * threads (each bounded by its answer's deadline), removes the unix
 * socket file if it is still ours. Safe with NULL.
 */
void mapserver_close(struct mapserver *ms);

#endif
