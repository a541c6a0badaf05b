/*
 * reload - SIGHUP and SIGUSR1 reload the configuration, on a thread of
 * their own.
 *
 * SYNOPSIS
 *	reload_start("/etc/mtasts-milter.conf", log_routes, &err);
 *	...
 *	reload_stop();
 *
 * DESCRIPTION
 *	reload_start blocks SIGHUP and SIGUSR1 in the calling thread (the
 *	main thread, which must have blocked them before it started any
 *	other) and starts the reload thread, the only one that takes them
 *	(sigwaitinfo): no handler runs, so none nests, however many come.
 *	libmilter's signal thread, which would stop the filter on SIGHUP,
 *	never waits for it (reload.c defines the sigwait its call binds to).
 *	Each signal asks for a reload; requests that come together make one.
 *	A reload builds a new runtime from path (runtime_rebuild), calls
 *	after(rt) and installs it;
 *	a bad file is logged and the running configuration stays.
 *
 * DIAGNOSTICS
 *	reload_start returns -1 with a reason (the signal mask, the thread).
 */
#ifndef MTS_RELOAD_H
#define MTS_RELOAD_H

#include "err.h"
#include "runtime.h"

int reload_start(const char *path, void (*after)(const struct runtime *rt), struct mts_err *err);
void reload_stop(void);

#endif
