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
 *	reload_start starts the reload thread and, in the calling thread (the
 *	main thread, before libmilter starts its own signal thread), installs
 *	a handler for SIGHUP and SIGUSR1 and unblocks them for good, even
 *	while the handler runs (SA_NODEFER): Linux then hands every
 *	process-directed SIGHUP to this thread, never to libmilter's, which
 *	would stop the filter. Each signal asks for a
 *	reload; requests that come together make one. A reload builds a new
 *	runtime from path (runtime_rebuild), calls after(rt) and installs it;
 *	a bad file is logged and the running configuration stays.
 *
 * DIAGNOSTICS
 *	reload_start returns -1 with a reason (pipe, thread).
 */
#ifndef MTS_RELOAD_H
#define MTS_RELOAD_H

#include "err.h"
#include "runtime.h"

int reload_start(const char *path, void (*after)(const struct runtime *rt), struct mts_err *err);
void reload_stop(void);

#endif
