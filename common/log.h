/*
 * log - one place where the programs write what they decide: syslog for the
 * daemon, stderr in the foreground and for mtasts-ctl.
 *
 * SYNOPSIS
 *	log_init("mtasts-milter", LOG_TO_SYSLOG, LOG_MAIL);
 *	log_msg(LOG_WARNING, "%s: cached enforce policy vanished", domain);
 *	log_start_writer();	(the daemon, once its threads may start)
 *	log_stop_writer();	(before it exits: every queued line written)
 *
 * DESCRIPTION
 *	Levels are syslog's (LOG_ERR ... LOG_DEBUG). Messages below the level
 *	set by log_set_level are dropped. Safe from any thread: each call
 *	formats into a bounded buffer and writes one line, and the level is
 *	an atomic (a reload sets it while connections log).
 *
 *	log_start_writer starts a thread that writes the lines of log_later:
 *	such a line may wait up to 20 ms, so that under load a batch of them
 *	costs one write and the caller none (the milter's per-message line:
 *	a write a message was its largest cost beyond libmilter's on the warm
 *	path). log_msg's line is written before log_msg returns, with every
 *	line queued before it, so the order of lines is kept. When 256 KiB
 *	wait unwritten, the caller writes them itself first (a log that
 *	cannot keep up slows the callers, as a full pipe did, and loses
 *	nothing). log_flush writes what is queued now; log_stop_writer ends
 *	the thread and writes the rest, after which log_later writes its
 *	lines at once, as it does when the writer was never started
 *	(mtasts-ctl, tests). A crash loses what waits: at most 20 ms of
 *	log_later's lines.
 */
#ifndef MTS_LOG_H
#define MTS_LOG_H

#include <stdbool.h>
#include <syslog.h>

#include "nametab.h"

enum log_target {
    LOG_TO_STDERR,
    LOG_TO_SYSLOG
};

void log_init(const char *ident, enum log_target target, int facility);
void log_set_level(int level);
bool log_enabled(int level);
void log_msg(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void log_later(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int log_start_writer(void); /* 0, or -1: no thread (lines are written by callers) */
void log_flush(void);
void log_stop_writer(void);

/* Facility and level words of syslog.conf ("mail", "local0", "info"); an
 * unknown word gives -1. The config parses them once, at load. */
extern const struct nametab log_facility_names[];
extern const struct nametab log_level_names[];

#endif
