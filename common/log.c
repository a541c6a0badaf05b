/*
 * log - syslog / stderr logging; see log.h.
 */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define LOG_LINE_MAX 1024

static enum log_target log_target = LOG_TO_STDERR;
static const char *log_ident = "mtasts";
static int log_level = LOG_INFO;

void
log_init(const char *ident, enum log_target target, int facility)
{
    log_ident = ident;
    log_target = target;
    if (target == LOG_TO_SYSLOG)
        openlog(ident, LOG_PID | LOG_NDELAY, facility);
}

void
log_set_level(int level)
{
    __atomic_store_n(&log_level, level, __ATOMIC_RELAXED);
}

bool
log_enabled(int level)
{
    return level <= __atomic_load_n(&log_level, __ATOMIC_RELAXED);
}

static const char *
level_word(int level)
{
    switch (level) {
    case LOG_EMERG:
    case LOG_ALERT:
    case LOG_CRIT:
    case LOG_ERR:
        return "error";
    case LOG_WARNING:
        return "warning";
    case LOG_NOTICE:
        return "notice";
    case LOG_INFO:
        return "info";
    default:
        return "debug";
    }
}

void
log_msg(int level, const char *fmt, ...)
{
    char line[LOG_LINE_MAX];
    va_list ap;

    if (!log_enabled(level))
        return;
    va_start(ap, fmt);
    /* A cut line is still worth logging. */
    (void)vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    /* Remote data may reach a message: never let it start a new log line. */
    for (char *p = line; *p; p++)
        if (*p == '\n' || *p == '\r')
            *p = ' ';
    if (log_target == LOG_TO_SYSLOG)
        syslog(level, "%s", line);
    else
        fprintf(stderr, "%s: %s: %s\n", log_ident, level_word(level), line);
}

const struct nametab log_facility_names[] = {
    {"mail", LOG_MAIL},     {"daemon", LOG_DAEMON}, {"user", LOG_USER},
    {"local0", LOG_LOCAL0}, {"local1", LOG_LOCAL1}, {"local2", LOG_LOCAL2},
    {"local3", LOG_LOCAL3}, {"local4", LOG_LOCAL4}, {"local5", LOG_LOCAL5},
    {"local6", LOG_LOCAL6}, {"local7", LOG_LOCAL7}, {NULL, -1},
};

const struct nametab log_level_names[] = {
    {"error", LOG_ERR},   {"warning", LOG_WARNING}, {"notice", LOG_NOTICE},
    {"info", LOG_INFO},   {"debug", LOG_DEBUG},     {NULL, -1},
};
