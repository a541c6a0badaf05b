/*
 * config - the configuration file, parsed once into an immutable object.
 *
 * SYNOPSIS
 *	struct config *cfg;
 *	if (config_load(path, &cfg, &err) != 0) ... err names file, line, option
 *	...
 *	config_unref(cfg);
 *
 * DESCRIPTION
 *	One "option = value" per line; '#' starts a comment; blank lines are
 *	ignored. Every option is in the table in config.c with its type,
 *	default, bounds and reload scope (config_reload_scope), and in
 *	etc/mtasts-milter.conf and
 *	mtasts-milter.conf(5). Durations take a unit: "90s", "5m", "1h", "7d"
 *	(seconds when none is given) or, for *_ms options, "500ms" / "5s".
 *	An unknown option, a value out of bounds or a repeated option is an
 *	error: a typo must not silently fall back to a default.
 *
 *	A loaded config is never changed. Readers that outlive a reload hold a
 *	reference (config_ref / config_unref).
 *
 * DIAGNOSTICS
 *	config_load returns -1 and "FILE:LINE: option NAME: reason" in err.
 */
#ifndef MTS_CONFIG_H
#define MTS_CONFIG_H

#include <stdint.h>

#include "err.h"

#ifndef SYSCONFDIR
#define SYSCONFDIR "/etc"
#endif
#ifndef LOCALSTATEDIR
#define LOCALSTATEDIR "/var"
#endif

#define CONFIG_DEFAULT_PATH SYSCONFDIR "/mtasts-milter.conf"

/* A list option: "a, b c" -> {"a", "b", "c"}; a repeatable option: one entry per line. */
struct config_list {
    size_t n;
    char **v;
    int *line;			/* line of each entry (repeatable options), else 0 */
};

struct config {
    int refs;

    /* the milter daemon */
    char *socket;
    struct config_list milter_allow_clients;	/* inet milter socket: who may connect */
    int tcp_nodelay;
    char *pid_file;		/* "": none */
    char *user, *group;		/* "": keep the starting user */
    int64_t rcpt_deadline_ms;
    struct config_list act_on;	/* as written: authenticated, non-smtpd, daemon:NAME, all */
    unsigned act_on_flags;	/* CONFIG_ACT_ON_*, parsed from act_on at load */
    struct config_list act_on_daemons;	/* the NAMEs of act_on's daemon:NAME */
    struct config_list local_domains;
    int dry_run;
    char *header_name;
    char *defer_reply;		/* "450 4.7.5" */
    char *reject_reply;		/* "550 5.7.5" */
    int on_internal_error;	/* enum verdict_action */

    /* the downstream route */
    struct config_list enforcing_transports;
    struct config_list enforcing_relays;
    struct config_list dane_transports;	/* transports enforcing DANE; "auto": ask postconf */
    char *default_route;	/* transport[:nexthop] when the MTA sends no macros */

    /* organization rules */
    struct config_list rules;	/* "rule = ..." lines, in order */
    char *rules_file;		/* "": none */

    /* cache */
    char *cache_db;
    int64_t cache_busy_timeout_ms;
    int64_t cache_write_queue_max;	/* rows waiting for the writer thread (cachewq.h) */

    /* DNS */
    char *resolv_conf;		/* "none": full recursion from the root */
    char *trust_anchor;
    char *unbound_conf;		/* "": none */
    int64_t dns_timeout_ms;

    /* HTTPS policy fetch */
    char *ca_file;		/* "": the system store */
    int64_t fetch_connect_timeout_ms;
    int64_t fetch_timeout_ms;

    /* discovery and refresh */
    int64_t check_interval;
    int64_t absent_ttl;
    int64_t unknown_backoff;
    int64_t fetch_retry_interval;
    int64_t policy_min_lifetime;
    int64_t refresh_margin;
    int64_t refresh_interval;
    int64_t unused_ttl;
    int64_t lookup_workers;
    int64_t lookup_workers_max;
    int64_t lookup_workers_idle;	/* seconds: a thread beyond lookup_workers idle this long exits */
    int64_t refresh_workers;
    int64_t lookups_per_sender;
    int64_t lookups_per_connection;
    int64_t lookup_deadline_ms;
    int64_t memory_cache_domains;

    /* the metrics endpoint (metricsd.h) */
    char *metrics_socket;	/* "": off; inet:PORT@HOST or unix:PATH */
    struct config_list metrics_allow_clients;	/* inet: who may scrape; empty: anyone */
    int64_t metrics_cache_rows_interval;	/* seconds a scrape reuses the cache's row counts */

    /* verdict statistics in the shared cache (statsd.h) */
    int stats;
    int64_t stats_retention;	/* seconds: older days are deleted */
    int64_t stats_max_rows;	/* 0: no bound; else the oldest days go first */
    int64_t stats_flush_interval;	/* seconds between writes */

    /* logging */
    int log_facility;		/* LOG_MAIL ... (syslog.h) */
    int log_level;		/* LOG_ERR ... LOG_DEBUG */

    /* the MTA-STS policy map (socketmap for smtp_tls_policy_maps) */
    struct config_list map_allow_clients;	/* inet map socket: who may connect; empty: anyone */
    char *map_socket;		/* "": off; unix:PATH or inet:PORT@HOST */
    int64_t map_deadline_ms;
    int64_t map_max_clients;
    int64_t map_workers;
    int64_t map_idle_timeout_ms;	/* a map connection waiting this long is closed */
    int64_t map_lookups_max;		/* the map's fresh lookups in flight, all together */
    int64_t map_lookups_per_connection;	/* ... per map connection; 0: no cap */
    int map_tlsrpt;
    struct config_list map_transports;	/* transports that use the map; "auto": ask postconf */
    char *map_postfix_config;	/* postconf -c DIR; "": Postfix's default */
    int map_unknown;		/* CONFIG_MAP_UNKNOWN_*: the answer when the status is unknown */
    struct config_list map_unknown_except;	/* domains, *.domain: the other answer */

    /* STARTTLS probes of MX hosts (probes.h) */
    int mx_probes;
    int64_t probe_timeout_ms;
    int64_t probe_ttl;
    int64_t probe_failure_ttl;
    int64_t probe_concurrency;
    int64_t probe_network_concurrency;	/* per destination /24 (IPv4) or /64 (IPv6) */
    int64_t probes_per_sender;		/* probe jobs in flight charged to one sender; 0: no cap */
    int64_t probes_per_connection;	/* ... to one connection; 0: no cap */
    int64_t probe_hosts_per_domain;	/* hosts of one domain probed for its verdict */
    int64_t probe_port;
    char *probe_ca_file;		/* "": ca_file */
    struct config_list probe_never;	/* hosts, or *.domain, never probed */
    struct config_list probe_allow_networks;	/* non-global networks probes may reach */

    /* the fleet layer on Redis (fleet_link.h) */
    char *fleet_redis;		/* "": off; unix:PATH or tcp:HOST:PORT */
    char *fleet_password_file;	/* "": no AUTH; else the file's first line */
    int64_t fleet_db;		/* SELECT this database */
    char *fleet_prefix;		/* every key starts with it */
    int64_t fleet_timeout_ms;	/* connect and each command */
    char *fleet_key_file;	/* "": values unsigned; else the HMAC-SHA256 key */

    char *path;			/* the file this came from, or "(defaults)" */
};

/* act_on's session kinds. */
#define CONFIG_ACT_ON_ALL 0x1
#define CONFIG_ACT_ON_AUTHENTICATED 0x2
#define CONFIG_ACT_ON_NON_SMTPD 0x4

/* map_unknown: what the policy map answers when a domain's status cannot be learnt. */
#define CONFIG_MAP_UNKNOWN_TEMP 0	/* Postfix defers */
#define CONFIG_MAP_UNKNOWN_NOTFOUND 1	/* Postfix delivers as without MTA-STS */

/*
 * What a reload does with an option's new value, a column of the option
 * table: RUNTIME, the new runtime applies it (read at each use); ENGINE, a
 * new discovery engine (cache connection, resolver, threads; the probe
 * engine with it) takes it when it changed; START, read at start only (a
 * reload keeps the running value, and no new engine).
 */
enum config_reload {
    CONFIG_RELOAD_ENGINE,
    CONFIG_RELOAD_RUNTIME,
    CONFIG_RELOAD_START
};

/* The reload scope of the option name[0..len); ENGINE (the safe side) for
 * a name that is no option. */
enum config_reload config_reload_scope(const char *name, size_t len);

/* Loads path; a NULL path gives the built-in defaults. */
int config_load(const char *path, struct config **out, struct mts_err *err);

/* Built-in defaults only (for tests and a missing default file). */
int config_defaults(struct config **out, struct mts_err *err);

struct config *config_ref(struct config *cfg);
void config_unref(struct config *cfg);

/* Writes every option and its value, one per line (for `-n -v` / debugging). */
void config_dump(const struct config *cfg, void (*emit)(const char *line, void *arg),
                 void *arg);

#endif
