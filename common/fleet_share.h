/*
 * fleet_share - one fleet (fleet.h) per process: discover and the probe
 * engine share its links, its writer and its subscriber, across reloads.
 *
 * SYNOPSIS
 *	#include "fleet_share.h"
 *
 *	struct fleet *f;
 *	fleet_share_get(cfg, &f, &err);        f NULL when fleet_redis is empty
 *	fleet_share_listen(f, fn, arg, &err);  news from the other hosts
 *	fleet_share_unlisten(f, fn, arg);      no call of fn(arg) after it
 *	fleet_share_put(f);
 *
 * DESCRIPTION
 *	fleet_share_get hands out the process's fleet for cfg with one more
 *	reference, opening it (fleet_open) for the first user. A fleet is
 *	reused when cfg names the same Redis in the same way: fleet_redis,
 *	fleet_db, fleet_prefix, fleet_timeout_ms, and the same bytes in
 *	fleet_password_file and fleet_key_file (read again at each get, so
 *	that a reload after a new key or password opens a new fleet). A
 *	different one is opened beside it (the engines of the old
 *	configuration keep theirs until they close).
 *
 *	Ownership across a reload: the new engines take a reference before
 *	the old ones let theirs go, so the fleet, its two links and its two
 *	threads live on; fleet_share_put of the last reference closes it
 *	(fleet_close: what is queued is sent, the threads are joined).
 *
 *	fleet_share_listen adds fn(kind, name, arg) to the fleet's listeners;
 *	the first one starts its subscriber (fleet_subscribe), which calls
 *	every listener for each message. fleet_share_unlisten removes it and
 *	returns once no call of it is under way: an engine unlistens before
 *	it frees what fn uses.
 *
 *	Threads: any thread may call these; the listeners are called on the
 *	fleet's subscriber thread, one message at a time.
 *
 * DIAGNOSTICS
 *	fleet_share_get and fleet_share_listen return -1 with a reason (those
 *	of fleet_open and fleet_subscribe, or out of memory). Opening a fleet
 *	is logged at LOG_INFO, once per fleet, not at each get.
 */
#ifndef MTS_FLEET_SHARE_H
#define MTS_FLEET_SHARE_H

#include "config.h"
#include "err.h"
#include "fleet.h"

int fleet_share_get(const struct config *cfg, struct fleet **out, struct mts_err *err);
void fleet_share_put(struct fleet *f);

int fleet_share_listen(struct fleet *f, fleet_event_fn fn, void *arg, struct mts_err *err);
void fleet_share_unlisten(struct fleet *f, fleet_event_fn fn, void *arg);

#endif
