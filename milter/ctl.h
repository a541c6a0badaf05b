/*
 * ctl - the commands of mtasts-ctl. Each ctl_<command>(argc, argv) gets the
 * command's own arguments (argv[0] is the command name) and returns the
 * process exit status.
 */
#ifndef MTS_CTL_H
#define MTS_CTL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

/* Exit statuses, documented in man/mtasts-ctl.1. */
#define CTL_EXIT_OK 0		/* success; the input is valid */
#define CTL_EXIT_INVALID 1	/* the input is invalid; the reason was printed */
#define CTL_EXIT_USAGE 2	/* bad arguments, configuration, or a file that cannot be read */
#define CTL_EXIT_UNKNOWN 3	/* a status could not be learnt now (DNS, deadline) */
#define CTL_EXIT_CACHE 4	/* the cache could not be opened or read */

int ctl_validate_policy(int argc, char **argv);
int ctl_validate_txt(int argc, char **argv);
int ctl_lookup(int argc, char **argv);
int ctl_prefetch(int argc, char **argv);
int ctl_cache(int argc, char **argv);
int ctl_explain(int argc, char **argv);
int ctl_probe(int argc, char **argv);
int ctl_check(int argc, char **argv);
int ctl_map(int argc, char **argv);
int ctl_status(int argc, char **argv);
int ctl_stats(int argc, char **argv);
int ctl_report(int argc, char **argv);

/* A duration ("30d", "12h", "2w", "90m", "3600s" or seconds, at most ten
 * years) in seconds: stats --since and report --since. -1 when invalid. */
int ctl_parse_since(const char *v, long long *out);

struct runtime;
struct decide_session;
/*
 * explain for one recipient, as decide_recipient() decides it under rt:
 * appended to out_array as a JSON object, or printed as text when
 * out_array is NULL. Returns true when the recipient would be accepted.
 */
bool ctl_explain_one(struct runtime *rt, const struct decide_session *s, const char *mailer,
                     const char *host, const char *rcpt, json_t *out_array);

struct tlsprobe_result;
struct tlsprobe_grade;
/* One probe and its grade as the JSON object of `probe --json` (new reference). */
json_t *ctl_probe_json(const struct tlsprobe_result *r, const struct tlsprobe_grade *g);
/* One probe and its grade as `probe` prints it, every line prefixed with indent. */
void ctl_probe_print(const struct tlsprobe_result *r, const struct tlsprobe_grade *g,
                     const char *indent);

struct discover;
/*
 * The resolver's part in what a command could not learn, said the same
 * way by every command: problem, when unknown is true and the resolver
 * cannot carry DNSSEC (discover_check_resolver: it strips it; the fix is
 * in the text); health, when libunbound had backed off a forwarder that
 * answers (dns_health_text). Each "" when there is nothing to say.
 */
struct ctl_resolver_notes {
    char problem[768];
    char health[512];
};
void ctl_resolver_diagnose(struct discover *d, bool unknown, struct ctl_resolver_notes *out);
/* As "resolver_problem" and "resolver_health" (null when "") of o. */
void ctl_resolver_json(json_t *o, const struct ctl_resolver_notes *n);
/* As "resolver: " lines, one for each that is not "". */
void ctl_resolver_print(const struct ctl_resolver_notes *n);

/* The path given with -c, else NULL (the default file or the defaults). */
const char *ctl_config_path(void);

struct config;
/*
 * The configuration given with -c, or the default file when it exists, or
 * the built-in defaults. Loaded on first use; NULL (with a message printed)
 * when it is invalid.
 */
struct config *ctl_config(void);

/* A Unix time as "2026-11-23 03:40:00Z", or "-" for 0. */
void ctl_fmt_time(int64_t t, char *out, size_t outsz);

/* s as a JSON string, or null when s is NULL or empty. */
json_t *ctl_json_text(const char *s);

/* Prints one JSON value on stdout followed by a newline. */
void ctl_print_json(json_t *value);

#endif
