/*
 * fleet_link - one connection to the fleet's Redis server (hiredis), with
 * short timeouts and a circuit breaker.
 *
 * SYNOPSIS
 *	#include "fleet_link.h"
 *
 *	struct fleet_link *l;
 *	fleet_link_open(cfg, &l, &err);           parses, connects later
 *	redisReply *r = fleet_link_command(l, argc, argv, lens);
 *	... freeReplyObject(r) ...
 *	fleet_link_pipeline(l, n, cmds, replies); n commands, one round trip
 *	fleet_link_state(l, &st);
 *	fleet_link_retry_now(l);                  the next command may connect
 *	fleet_link_close(l);
 *
 * DESCRIPTION
 *	fleet_redis is unix:PATH or tcp:HOST:PORT. The link connects on first
 *	use, with fleet_timeout_ms for the connect and for each command, then
 *	AUTH (the first line of fleet_password_file) and SELECT fleet_db.
 *
 *	A failure (connect, I/O, timeout, AUTH, an error reply of the server
 *	itself such as LOADING) drops the connection and opens the breaker:
 *	the link is not tried again for a back-off that starts at
 *	FLEET_LINK_BACKOFF_MIN_MS and doubles at each failure in a row up to
 *	FLEET_LINK_BACKOFF_MAX_MS; meanwhile every command fails at once,
 *	without a system call. The first command after the back-off
 *	reconnects; a success closes the breaker. So a slow or absent Redis
 *	costs one caller at most two timeouts, once per back-off.
 *
 *	A link may be used by many threads: one command or pipeline at a time
 *	(a mutex). A subscriber, which blocks on its connection, opens a link
 *	of its own.
 *
 * DIAGNOSTICS
 *	fleet_link_open returns -1 with a reason for a bad address or an
 *	unreadable password file. Commands return NULL when the link is down
 *	or the breaker open; the reason is logged once per outage (and its
 *	end once), and kept for fleet_link_state.
 */
#ifndef MTS_FLEET_LINK_H
#define MTS_FLEET_LINK_H

#include <hiredis/hiredis.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "err.h"

#define FLEET_LINK_BACKOFF_MIN_MS 1000
#define FLEET_LINK_BACKOFF_MAX_MS 60000
#define FLEET_LINK_PIPELINE_MAX 64

struct fleet_link;

/* One command of a pipeline, as its arguments (an EVAL of a script with
 * its key and five arguments at most). */
struct fleet_cmd {
    int argc;
    const char *argv[10];
    size_t len[10];
};

int fleet_link_open(const struct config *cfg, struct fleet_link **out, struct mts_err *err);
void fleet_link_close(struct fleet_link *l);

/* One command; the reply (the caller frees it with freeReplyObject), or
 * NULL when the link is down. An error reply about the command itself
 * (wrong type...) is returned as such, and is no link failure. */
redisReply *fleet_link_command(struct fleet_link *l, int argc, const char **argv,
                               const size_t *lens);

/* n (at most FLEET_LINK_PIPELINE_MAX) commands in one round trip; replies[i]
 * each to free, all NULL when the link is down. 0, or -1 (link down). */
int fleet_link_pipeline(struct fleet_link *l, size_t n, const struct fleet_cmd *cmds,
                        redisReply **replies);

/*
 * For a subscriber: blocks up to timeout_ms for the next message on a link
 * that has sent SUBSCRIBE; NULL on timeout (*timed_out set) or failure
 * (then the breaker is open, as for a command).
 */
redisReply *fleet_link_read(struct fleet_link *l, int timeout_ms, bool *timed_out);

/*
 * Ends the breaker's back-off: the next command connects again at once.
 * For a last try at close (fleet_close): nobody waits on the link any
 * more, so one more try costs no caller anything.
 */
void fleet_link_retry_now(struct fleet_link *l);

struct fleet_link_state {
    bool configured;		/* fleet_redis is set */
    bool up;			/* connected, breaker closed */
    uint64_t failures;		/* failures since start */
    uint64_t commands;		/* commands answered */
    int backoff_ms;		/* the current back-off, 0 when up */
    int retry_in_ms;		/* until the breaker lets a command try, 0: now */
    char last_error[128];	/* why it last went down; "" never */
};
void fleet_link_state(struct fleet_link *l, struct fleet_link_state *out);

#endif
