/*
 * log - one place where the programs write what they decide: syslog for the
 * daemon, stderr in the foreground and for mtasts-ctl.
 *
 * SYNOPSIS
 *	log_init("mtasts-milter", LOG_TO_SYSLOG, LOG_MAIL);
 *	log_msg(LOG_WARNING, "%s: cached enforce policy vanished", domain);
 *
 * DESCRIPTION
 *	Levels are syslog's (LOG_ERR ... LOG_DEBUG). Messages below the level
 *	set by log_set_level are dropped. Safe from any thread: each call
 *	formats into a bounded buffer and writes one line, and the level is
 *	an atomic (a reload sets it while connections log).
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

/* Facility and level words of syslog.conf ("mail", "local0", "info"); an
 * unknown word gives -1. The config parses them once, at load. */
extern const struct nametab log_facility_names[];
extern const struct nametab log_level_names[];

#endif
