/*
 * config - configuration file parser; see config.h.
 *
 * The options are a table (name, type, default, bounds, offset into struct
 * config, reload scope), so adding one is one line here plus its
 * documentation.
 */
#include "config.h"

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "action.h"
#include "addrscope.h"
#include "log.h"
#include "nametab.h"
#include "netacl.h"

#define CONFIG_LINE_MAX 4096

enum opt_type {
    OPT_STRING,
    OPT_SECONDS,		/* value in seconds; units s m h d */
    OPT_MILLIS,			/* value in milliseconds; units ms s */
    OPT_INT,
    OPT_ENUM,			/* one word of the option's name table, stored as its code */
    OPT_BOOL,
    OPT_LIST,			/* comma or space separated */
    OPT_REPEAT			/* may be given many times; each line one entry */
};

struct opt {
    const char *name;
    enum opt_type type;
    const char *def;
    int64_t min, max;
    size_t offset;
    const struct nametab *names;	/* OPT_ENUM: its words */
    /* Fills the fields derived from this option (OPT_LIST), once at load. */
    int (*derive)(struct config *cfg, struct mts_err *err);
    enum config_reload reload;	/* what a reload does with a new value */
};

/* The last argument of each row is its reload scope: RUNTIME, ENGINE or
 * START (enum config_reload). An option read by the discovery or probe
 * engine is ENGINE, the safe side when in doubt. */
#define STR(f, d, r) {#f, OPT_STRING, d, 0, 0, offsetof(struct config, f), NULL, NULL, \
                      CONFIG_RELOAD_##r}
#define TYPED(f, t, d, r) {#f, t, d, 0, 0, offsetof(struct config, f), NULL, NULL, \
                           CONFIG_RELOAD_##r}
#define NUM(f, t, d, lo, hi, r) {#f, t, d, lo, hi, offsetof(struct config, f), NULL, NULL, \
                                 CONFIG_RELOAD_##r}
#define ENUM(f, d, tab, r) {#f, OPT_ENUM, d, 0, 0, offsetof(struct config, f), tab, NULL, \
                            CONFIG_RELOAD_##r}
#define DERIVED_LIST(f, d, fn, r) {#f, OPT_LIST, d, 0, 0, offsetof(struct config, f), NULL, fn, \
                                   CONFIG_RELOAD_##r}

static int parse_act_on(struct config *cfg, struct mts_err *err);
static int check_allow_networks(struct config *cfg, struct mts_err *err);
static int check_allow_lists(struct config *cfg, struct mts_err *err);

/* act_on's words; daemon:NAME is handled apart (it carries a name). */
static const struct nametab act_on_names[] = {
    {"all", CONFIG_ACT_ON_ALL},
    {"authenticated", CONFIG_ACT_ON_AUTHENTICATED},
    {"non-smtpd", CONFIG_ACT_ON_NON_SMTPD},
    {NULL, 0},
};

/* map_unknown's words. */
static const struct nametab map_unknown_names[] = {
    {"temp", CONFIG_MAP_UNKNOWN_TEMP},
    {"notfound", CONFIG_MAP_UNKNOWN_NOTFOUND},
    {NULL, -1},
};

static const struct opt options[] = {
    STR(socket, "unix:/run/mtasts-milter/milter.sock", START),
    TYPED(tcp_nodelay, OPT_BOOL, "yes", START),
    DERIVED_LIST(milter_allow_clients, "", check_allow_lists, START),
    STR(pid_file, "", START),
    STR(user, "", START),
    STR(group, "", START),
    NUM(rcpt_deadline_ms, OPT_MILLIS, "8s", 100, 120000, RUNTIME),
    DERIVED_LIST(act_on, "authenticated, non-smtpd", parse_act_on, RUNTIME),
    TYPED(local_domains, OPT_LIST, "", RUNTIME),
    TYPED(dry_run, OPT_BOOL, "no", RUNTIME),
    STR(header_name, "MTA-STS-Status", RUNTIME),
    STR(defer_reply, "450 4.7.5", RUNTIME),
    STR(reject_reply, "550 5.7.5", RUNTIME),
    ENUM(on_internal_error, "defer", verdict_action_names, RUNTIME),
    TYPED(enforcing_transports, OPT_LIST, "", RUNTIME),
    TYPED(enforcing_relays, OPT_LIST, "", RUNTIME),
    TYPED(dane_transports, OPT_LIST, "auto", RUNTIME),
    STR(default_route, "smtp", RUNTIME),
    {"rule", OPT_REPEAT, "", 0, 0, offsetof(struct config, rules), NULL, NULL,
     CONFIG_RELOAD_RUNTIME},
    STR(rules_file, "", RUNTIME),
    STR(cache_db, LOCALSTATEDIR "/lib/mtasts-milter/cache.sqlite", ENGINE),
    NUM(cache_busy_timeout_ms, OPT_MILLIS, "5s", 10, 600000, ENGINE),
    NUM(cache_write_queue_max, OPT_INT, "10000", 1, 1000000, ENGINE),
    STR(resolv_conf, "/etc/resolv.conf", ENGINE),
    STR(trust_anchor, "/usr/share/dns/root.key", ENGINE),
    STR(unbound_conf, "", ENGINE),
    NUM(dns_timeout_ms, OPT_MILLIS, "5s", 100, 60000, ENGINE),
    STR(ca_file, "", ENGINE),
    NUM(fetch_connect_timeout_ms, OPT_MILLIS, "5s", 100, 60000, ENGINE),
    NUM(fetch_timeout_ms, OPT_MILLIS, "20s", 100, 120000, ENGINE),
    NUM(check_interval, OPT_SECONDS, "1h", 60, 604800, ENGINE),
    NUM(absent_ttl, OPT_SECONDS, "15m", 0, 86400, ENGINE),
    NUM(unknown_backoff, OPT_SECONDS, "1m", 0, 3600, ENGINE),
    NUM(fetch_retry_interval, OPT_SECONDS, "5m", 0, 86400, ENGINE),
    NUM(policy_min_lifetime, OPT_SECONDS, "1m", 0, 3600, ENGINE),
    NUM(refresh_margin, OPT_SECONDS, "6h", 0, 2592000, ENGINE),
    NUM(refresh_interval, OPT_SECONDS, "1m", 1, 86400, ENGINE),
    NUM(unused_ttl, OPT_SECONDS, "90d", 3600, 315576000, ENGINE),
    NUM(lookup_workers, OPT_INT, "8", 1, 256, ENGINE),
    NUM(lookup_workers_max, OPT_INT, "256", 1, 1024, ENGINE),
    NUM(lookup_workers_idle, OPT_SECONDS, "1m", 1, 86400, ENGINE),
    NUM(refresh_workers, OPT_INT, "2", 1, 64, ENGINE),
    NUM(lookups_per_sender, OPT_INT, "64", 0, 100000, ENGINE),
    NUM(lookups_per_connection, OPT_INT, "4", 0, 100000, ENGINE),
    NUM(lookup_deadline_ms, OPT_MILLIS, "0", 0, 300000, RUNTIME),
    NUM(memory_cache_domains, OPT_INT, "100000", 100, 10000000, ENGINE),
    STR(metrics_socket, "", START),
    DERIVED_LIST(metrics_allow_clients, "", check_allow_lists, START),
    NUM(metrics_cache_rows_interval, OPT_SECONDS, "30s", 1, 86400, RUNTIME),
    TYPED(stats, OPT_BOOL, "yes", START),
    NUM(stats_retention, OPT_SECONDS, "400d", 86400, 315576000, START),
    NUM(stats_max_rows, OPT_INT, "1000000", 0, 1000000000, START),
    NUM(stats_flush_interval, OPT_SECONDS, "1m", 1, 86400, START),
    ENUM(log_facility, "mail", log_facility_names, START),
    ENUM(log_level, "info", log_level_names, RUNTIME),
    STR(map_socket, "", START),
    DERIVED_LIST(map_allow_clients, "", check_allow_lists, START),
    NUM(map_deadline_ms, OPT_MILLIS, "10s", 10, 90000, RUNTIME),
    NUM(map_max_clients, OPT_INT, "256", 1, 4096, START),
    NUM(map_workers, OPT_INT, "4", 1, 256, START),
    NUM(map_idle_timeout_ms, OPT_MILLIS, "60s", 1000, 3600000, START),
    NUM(map_lookups_max, OPT_INT, "64", 1, 1024, ENGINE),
    NUM(map_lookups_per_connection, OPT_INT, "4", 0, 100000, ENGINE),
    TYPED(map_tlsrpt, OPT_BOOL, "no", RUNTIME),
    TYPED(map_transports, OPT_LIST, "auto", RUNTIME),
    STR(map_postfix_config, "", RUNTIME),
    ENUM(map_unknown, "temp", map_unknown_names, ENGINE),
    TYPED(map_unknown_except, OPT_LIST, "", ENGINE),
    TYPED(mx_probes, OPT_BOOL, "no", ENGINE),
    NUM(probe_timeout_ms, OPT_MILLIS, "20s", 100, 120000, ENGINE),
    NUM(probe_ttl, OPT_SECONDS, "1d", 60, 2592000, ENGINE),
    NUM(probe_failure_ttl, OPT_SECONDS, "15m", 10, 86400, ENGINE),
    NUM(probe_concurrency, OPT_INT, "8", 1, 256, ENGINE),
    NUM(probe_network_concurrency, OPT_INT, "2", 1, 256, ENGINE),
    NUM(probes_per_sender, OPT_INT, "32", 0, 100000, ENGINE),
    NUM(probes_per_connection, OPT_INT, "8", 0, 100000, ENGINE),
    NUM(probe_hosts_per_domain, OPT_INT, "8", 1, 32, ENGINE),
    NUM(probe_port, OPT_INT, "25", 1, 65535, ENGINE),
    STR(probe_ca_file, "", ENGINE),
    TYPED(probe_never, OPT_LIST, "", ENGINE),
    DERIVED_LIST(probe_allow_networks, "", check_allow_networks, ENGINE),
    STR(fleet_redis, "", ENGINE),
    STR(fleet_password_file, "", ENGINE),
    NUM(fleet_db, OPT_INT, "0", 0, 1000, ENGINE),
    STR(fleet_prefix, "mtasts:", ENGINE),
    NUM(fleet_timeout_ms, OPT_MILLIS, "50ms", 1, 10000, ENGINE),
    STR(fleet_key_file, "", ENGINE),
};

#define N_OPTIONS (sizeof(options) / sizeof(options[0]))

static bool
is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Parses "123", "5m", "500ms"... into the option's base unit. */
static int
parse_number(const struct opt *o, const char *v, int64_t *out, struct mts_err *err)
{
    char *end;
    long long n;
    int64_t mult = 1;

    if (*v < '0' || *v > '9') {
        mts_err_set(err, "\"%s\" is not a number", v);
        return -1;
    }
    errno = 0;
    n = strtoll(v, &end, 10);
    if (errno != 0 || n < 0 || n > INT64_MAX / 86400000) {
        mts_err_set(err, "\"%s\" is out of range", v);
        return -1;
    }
    if (o->type == OPT_SECONDS) {
        if (strcmp(end, "") == 0 || strcmp(end, "s") == 0)
            mult = 1;
        else if (strcmp(end, "m") == 0)
            mult = 60;
        else if (strcmp(end, "h") == 0)
            mult = 3600;
        else if (strcmp(end, "d") == 0)
            mult = 86400;
        else {
            mts_err_set(err, "\"%s\": unit must be s, m, h or d", v);
            return -1;
        }
    } else if (o->type == OPT_MILLIS) {
        if (strcmp(end, "") == 0 || strcmp(end, "ms") == 0)
            mult = 1;
        else if (strcmp(end, "s") == 0)
            mult = 1000;
        else {
            mts_err_set(err, "\"%s\": unit must be ms or s", v);
            return -1;
        }
    } else if (*end != '\0') {
        mts_err_set(err, "\"%s\" is not a whole number", v);
        return -1;
    }
    n *= mult;
    if (n < o->min || n > o->max) {
        mts_err_set(err, "%s is out of bounds (%lld to %lld%s)", v, (long long)o->min,
                    (long long)o->max,
                    o->type == OPT_SECONDS ? " seconds" : o->type == OPT_MILLIS ? " ms" : "");
        return -1;
    }
    *out = n;
    return 0;
}

static void
list_free(struct config_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    free(l->line);
    memset(l, 0, sizeof(*l));
}

static int
list_append(struct config_list *l, const char *s, size_t len, int line)
{
    char **nv = realloc(l->v, (l->n + 1) * sizeof(*nv));
    int *nl;

    if (nv == NULL)
        return -1;
    l->v = nv;
    nl = realloc(l->line, (l->n + 1) * sizeof(*nl));
    if (nl == NULL)
        return -1;
    l->line = nl;
    if ((l->v[l->n] = strndup(s, len)) == NULL)
        return -1;
    l->line[l->n] = line;
    l->n++;
    return 0;
}

/* Splits "a, b c" into the list, replacing what it held. */
static int
list_set(struct config_list *l, const char *v)
{
    list_free(l);
    while (*v != '\0') {
        size_t len = strcspn(v, ", \t");
        if (len > 0 && list_append(l, v, len, 0) != 0)
            return -1;
        v += len;
        v += strspn(v, ", \t");
    }
    return 0;
}

static bool
is_type_string(enum opt_type t)
{
    return t == OPT_STRING;
}

/* The allow-lists of inet: sockets: addresses and networks (netacl.h). */
static int
check_allow_lists(struct config *cfg, struct mts_err *err)
{
    struct netacl acl;

    return netacl_parse(&cfg->map_allow_clients, &acl, err) != 0 ||
                   netacl_parse(&cfg->milter_allow_clients, &acl, err) != 0 ||
                   netacl_parse(&cfg->metrics_allow_clients, &acl, err) != 0 ? -1 : 0;
}

/*
 * act_on: the session kinds as a bitmask and the daemon:NAME entries as
 * names, parsed here once so that a session's scope is a bit test.
 */
static int
check_allow_networks(struct config *cfg, struct mts_err *err)
{
    /* Checked at load, so that a typo is an error there; probeconf.c
     * parses it again for use. */
    struct addrscope_nets nets;

    return addrscope_nets_parse(&cfg->probe_allow_networks, &nets, err);
}

static int
parse_act_on(struct config *cfg, struct mts_err *err)
{
    cfg->act_on_flags = 0;
    list_free(&cfg->act_on_daemons);
    for (size_t i = 0; i < cfg->act_on.n; i++) {
        const char *v = cfg->act_on.v[i];
        int bit = nametab_code(act_on_names, NAMETAB_EXACT, v);

        if (bit != 0) {
            cfg->act_on_flags |= (unsigned)bit;
        } else if (strncmp(v, "daemon:", 7) == 0 && v[7] != '\0') {
            if (list_append(&cfg->act_on_daemons, v + 7, strlen(v + 7), 0) != 0) {
                mts_err_set(err, "out of memory");
                return -1;
            }
        } else {
            mts_err_set(err, "\"%s\" is not all, authenticated, non-smtpd or daemon:NAME", v);
            return -1;
        }
    }
    return 0;
}

static int
set_option(struct config *cfg, const struct opt *o, const char *v, int line,
           struct mts_err *err)
{
    char *field = (char *)cfg + o->offset;

    switch (o->type) {
    case OPT_BOOL:
        if (strcmp(v, "yes") == 0 || strcmp(v, "true") == 0 || strcmp(v, "1") == 0)
            *(int *)(void *)field = 1;
        else if (strcmp(v, "no") == 0 || strcmp(v, "false") == 0 || strcmp(v, "0") == 0)
            *(int *)(void *)field = 0;
        else {
            mts_err_set(err, "\"%s\" is not yes or no", v);
            return -1;
        }
        return 0;
    case OPT_LIST:
        if (list_set((struct config_list *)(void *)field, v) != 0) {
            mts_err_set(err, "out of memory");
            return -1;
        }
        return o->derive != NULL ? o->derive(cfg, err) : 0;
    case OPT_REPEAT:
        if (*v != '\0' &&
            list_append((struct config_list *)(void *)field, v, strlen(v), line) != 0) {
            mts_err_set(err, "out of memory");
            return -1;
        }
        return 0;
    case OPT_ENUM: {
        int code = nametab_code(o->names, NAMETAB_EXACT, v);
        char words[256];

        if (code < 0) {
            mts_err_set(err, "\"%s\" is not %s", v,
                        nametab_list(o->names, words, sizeof(words)));
            return -1;
        }
        *(int *)(void *)field = code;
        return 0;
    }
    case OPT_STRING:
        break;
    default:
        return parse_number(o, v, (int64_t *)(void *)field, err);
    }
    {
        char **s = (char **)(void *)field;
        char *copy = strdup(v);

        if (copy == NULL) {
            mts_err_set(err, "out of memory");
            return -1;
        }
        free(*s);
        *s = copy;
    }
    return 0;
}

static void
config_free(struct config *cfg)
{
    for (size_t i = 0; i < N_OPTIONS; i++) {
        char *field = (char *)cfg + options[i].offset;

        if (is_type_string(options[i].type))
            free(*(char **)(void *)field);
        else if (options[i].type == OPT_LIST || options[i].type == OPT_REPEAT)
            list_free((struct config_list *)(void *)field);
    }
    list_free(&cfg->act_on_daemons);
    free(cfg->path);
    free(cfg);
}

int
config_defaults(struct config **out, struct mts_err *err)
{
    struct config *cfg = calloc(1, sizeof(*cfg));

    *out = NULL;
    if (cfg == NULL) {
        mts_err_set(err, "out of memory");
        return -1;
    }
    cfg->refs = 1;
    for (size_t i = 0; i < N_OPTIONS; i++) {
        struct mts_err e;
        if (set_option(cfg, &options[i], options[i].def, 0, &e) != 0) {
            mts_err_set(err, "built-in default of %s: %s", options[i].name, e.msg);
            config_free(cfg);
            return -1;
        }
    }
    cfg->path = strdup("(defaults)");
    if (cfg->path == NULL) {
        config_free(cfg);
        mts_err_set(err, "out of memory");
        return -1;
    }
    *out = cfg;
    return 0;
}

int
config_load(const char *path, struct config **out, struct mts_err *err)
{
    struct config *cfg;
    bool seen[N_OPTIONS] = {false};
    char *line;
    FILE *f;
    size_t line_no = 0;
    int rc = -1;

    if (config_defaults(&cfg, err) != 0)
        return -1;
    if (path == NULL) {
        *out = cfg;
        return 0;
    }
    free(cfg->path);
    cfg->path = strdup(path);
    f = fopen(path, "r");
    line = malloc(CONFIG_LINE_MAX);
    if (f == NULL || line == NULL || cfg->path == NULL) {
        mts_err_set(err, "%s: cannot open: %s", path, f == NULL ? strerror(errno) : "out of memory");
        goto out;
    }
    while (fgets(line, CONFIG_LINE_MAX, f) != NULL) {
        char *p = line, *eq, *name_end, *v, *v_end, *hash;
        const struct opt *o = NULL;
        size_t idx = 0;
        struct mts_err e;

        line_no++;
        if (strchr(line, '\n') == NULL && !feof(f)) {
            mts_err_set(err, "%s:%zu: line is longer than %d bytes", path, line_no,
                        CONFIG_LINE_MAX - 1);
            goto out;
        }
        hash = strchr(p, '#');
        if (hash != NULL)
            *hash = '\0';
        while (is_space(*p))
            p++;
        if (*p == '\0')
            continue;
        eq = strchr(p, '=');
        if (eq == NULL) {
            mts_err_set(err, "%s:%zu: expected \"option = value\"", path, line_no);
            goto out;
        }
        name_end = eq;
        while (name_end > p && is_space(name_end[-1]))
            name_end--;
        *name_end = '\0';
        v = eq + 1;
        while (is_space(*v))
            v++;
        v_end = v + strlen(v);
        while (v_end > v && is_space(v_end[-1]))
            v_end--;
        *v_end = '\0';
        for (idx = 0; idx < N_OPTIONS; idx++) {
            if (strcmp(options[idx].name, p) == 0) {
                o = &options[idx];
                break;
            }
        }
        if (o == NULL) {
            mts_err_set(err, "%s:%zu: option %s: unknown option", path, line_no, p);
            goto out;
        }
        if (seen[idx] && o->type != OPT_REPEAT) {
            mts_err_set(err, "%s:%zu: option %s: given more than once", path, line_no, p);
            goto out;
        }
        seen[idx] = true;
        if (set_option(cfg, o, v, (int)line_no, &e) != 0) {
            mts_err_set(err, "%s:%zu: option %s: %s", path, line_no, o->name, e.msg);
            goto out;
        }
    }
    if (ferror(f)) {
        mts_err_set(err, "%s: read error: %s", path, strerror(errno));
        goto out;
    }
    rc = 0;
out:
    if (f != NULL)
        fclose(f);
    free(line);
    if (rc == 0)
        *out = cfg;
    else
        config_free(cfg);
    return rc;
}

struct config *
config_ref(struct config *cfg)
{
    __atomic_add_fetch(&cfg->refs, 1, __ATOMIC_SEQ_CST);
    return cfg;
}

void
config_unref(struct config *cfg)
{
    if (cfg != NULL && __atomic_sub_fetch(&cfg->refs, 1, __ATOMIC_SEQ_CST) == 0)
        config_free(cfg);
}

enum config_reload
config_reload_scope(const char *name, size_t len)
{
    for (size_t i = 0; i < N_OPTIONS; i++)
        if (strlen(options[i].name) == len && strncmp(options[i].name, name, len) == 0)
            return options[i].reload;
    return CONFIG_RELOAD_ENGINE;
}

void
config_dump(const struct config *cfg, void (*emit)(const char *line, void *arg), void *arg)
{
    char buf[CONFIG_LINE_MAX];

    for (size_t i = 0; i < N_OPTIONS; i++) {
        const char *field = (const char *)cfg + options[i].offset;
        int n;

        if (is_type_string(options[i].type)) {
            n = snprintf(buf, sizeof(buf), "%s = %s", options[i].name,
                         *(char *const *)(const void *)field);
        } else if (options[i].type == OPT_BOOL) {
            n = snprintf(buf, sizeof(buf), "%s = %s", options[i].name,
                         *(const int *)(const void *)field ? "yes" : "no");
        } else if (options[i].type == OPT_ENUM) {
            n = snprintf(buf, sizeof(buf), "%s = %s", options[i].name,
                         nametab_name(options[i].names, *(const int *)(const void *)field));
        } else if (options[i].type == OPT_LIST || options[i].type == OPT_REPEAT) {
            const struct config_list *l = (const struct config_list *)(const void *)field;
            size_t o = (size_t)snprintf(buf, sizeof(buf), "%s =", options[i].name);

            if (options[i].type == OPT_REPEAT) {
                /* One line per entry, as they were written. */
                for (size_t k = 0; k < l->n; k++) {
                    snprintf(buf, sizeof(buf), "%s = %s", options[i].name, l->v[k]);
                    emit(buf, arg);
                }
                if (l->n == 0) {
                    emit(buf, arg);
                }
                continue;
            }
            for (size_t k = 0; k < l->n && o < sizeof(buf); k++)
                o += (size_t)snprintf(buf + o, sizeof(buf) - o, "%s %s", k ? "," : "", l->v[k]);
            n = (int)o;
        } else
            n = snprintf(buf, sizeof(buf), "%s = %lld%s", options[i].name,
                         (long long)*(const int64_t *)(const void *)field,
                         options[i].type == OPT_MILLIS ? "ms" :
                         options[i].type == OPT_SECONDS ? "s" : "");
        if (n > 0)
            emit(buf, arg);
    }
}
