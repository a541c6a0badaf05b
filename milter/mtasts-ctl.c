/*
 * mtasts-ctl - the operator's tool: validate what a domain publishes, and
 * (as they are built) look domains up, explain verdicts, manage the cache.
 *
 * This file only dispatches; each command lives in its own ctl_*.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <unistd.h>

#include "config.h"  /* common/config.h */
#include "ctl.h"
#include "log.h"
#include "rootpath.h"

static int ctl_show_config(int argc, char **argv);

struct ctl_command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
};

static const struct ctl_command commands[] = {
    {"validate-policy", ctl_validate_policy,
     "[--json] [--mx HOST]... FILE|-   check a policy file (RFC 8461 §3.2)"},
    {"validate-txt", ctl_validate_txt,
     "[--json] RECORD...               check the TXT records at _mta-sts.<domain>"},
    {"lookup", ctl_lookup,
     "[--json] [--no-cache] [--recheck] [--deadline MS] DOMAIN\n"
     "                                  a domain's MTA-STS status (cache, DNS, HTTPS)"},
    {"prefetch", ctl_prefetch,
     "FILE|-                               look up many domains (one a line) into the cache"},
    {"explain", ctl_explain,
     "[--json] [--from S] [--auth U] [--non-smtpd] [--daemon N] [--mailer T]\n"
     "          [--host H] [--requiretls] RCPT...\n"
     "                                  the verdict the milter would give, and why"},
    {"probe", ctl_probe, "[--json] [--address A] [--port N] HOST   one STARTTLS probe of an MX host, graded"},
    {"check", ctl_check, "[--json] [--mx HOST] [--port N] [--timeout MS] DOMAIN\n"
     "                                  a domain's MTA-STS and MX TLS report, graded"},
    {"map", ctl_map, "[--name NAME] DOMAIN          the policy map's answer for DOMAIN"},
    {"status", ctl_status, "[--json]                           what the running milter is doing (metrics_socket)"},
    {"stats", ctl_stats, "[--since DURATION] [--json]         verdict statistics: totals, top domains without DANE/MTA-STS"},
    {"report", ctl_report, "[--since DURATION] [--format html|json|csv] [-o FILE]\n"
     "                                  the report of a period: path kinds by day, refusals, partners"},
    {"config", ctl_show_config,
     "                                     print the configuration in effect"},
    {"cache", ctl_cache,
     "list [--json] [--probes] | show [--json] [--probes] NAME | flush [--probes] [NAME]\n"
     "                                  inspect or empty the shared cache (--probes: MX probe rows)"},
};

static const char *config_path;
static struct config *config_loaded;

const char *
ctl_config_path(void)
{
    return config_path;
}

/*
 * The cache's folder, made as the milter makes it (owned by its user when
 * we are root), so that a command run before the milter's first start can
 * create the cache. A failure is only told: the cache's own error follows
 * if the command needs it.
 */
static void
make_cache_folder(const struct config *cfg)
{
    struct mts_err err;
    uid_t uid;
    gid_t gid;

    if (cfg->cache_db[0] != '/')
        return;
    if (getuid() != 0 || rootpath_user(cfg, &uid, &gid, &err) != 0) {
        uid = getuid();
        gid = getgid();
    }
    if (rootpath_make_parent(cfg->cache_db, uid, gid, &err) != 0)
        fprintf(stderr, "mtasts-ctl: warning: cache_db: %s\n", err.msg);
}

struct config *
ctl_config(void)
{
    struct mts_err err;
    const char *path = config_path;

    if (config_loaded != NULL)
        return config_loaded;
    /* Without -c, the installed file if there is one, else the defaults. */
    if (path == NULL && access(CONFIG_DEFAULT_PATH, F_OK) == 0)
        path = CONFIG_DEFAULT_PATH;
    if (config_load(path, &config_loaded, &err) != 0) {
        fprintf(stderr, "mtasts-ctl: %s\n", err.msg);
        return NULL;
    }
    log_set_level(config_loaded->log_level);
    make_cache_folder(config_loaded);
    return config_loaded;
}

void
ctl_fmt_time(int64_t t, char *out, size_t outsz)
{
    time_t tt = (time_t)t;
    struct tm tm;

    if (t <= 0 || gmtime_r(&tt, &tm) == NULL ||
        strftime(out, outsz, "%Y-%m-%d %H:%M:%SZ", &tm) == 0)
        snprintf(out, outsz, "-");
}

json_t *
ctl_json_text(const char *s)
{
    return s != NULL && *s != '\0' ? json_string(s) : json_null();
}

void
ctl_print_json(json_t *value)
{
    char *s = json_dumps(value, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII);

    if (s == NULL) {
        fprintf(stderr, "mtasts-ctl: cannot encode JSON\n");
        return;
    }
    puts(s);
    free(s);
}

static void
print_line(const char *line, void *arg)
{
    (void)arg;
    puts(line);
}

static int
ctl_show_config(int argc, char **argv)
{
    struct config *cfg;

    (void)argv;
    if (argc != 1) {
        fprintf(stderr, "usage: mtasts-ctl [-c CONFIG] config\n");
        return CTL_EXIT_USAGE;
    }
    if ((cfg = ctl_config()) == NULL)
        return CTL_EXIT_USAGE;
    printf("# from %s\n", cfg->path);
    config_dump(cfg, print_line, NULL);
    return CTL_EXIT_OK;
}

static void
usage(FILE *to)
{
    fprintf(to, "usage: mtasts-ctl [-c CONFIG] COMMAND [ARGS]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        fprintf(to, "  %s %s\n", commands[i].name, commands[i].summary);
    fprintf(to, "\n  -c CONFIG  configuration file (default %s if it exists)\n"
                "\nExit status: 0 success or valid, 1 invalid or not found, 2 usage or\n"
                "configuration error, 3 status unknown, 4 cache error. See mtasts-ctl(1).\n",
            CONFIG_DEFAULT_PATH);
}

int
main(int argc, char **argv)
{
    int rc;

    log_init("mtasts-ctl", LOG_TO_STDERR, 0);
    if (argc >= 3 && strcmp(argv[1], "-c") == 0) {
        config_path = argv[2];
        argc -= 2;
        argv += 2;
    }
    if (argc < 2) {
        usage(stderr);
        return CTL_EXIT_USAGE;
    }
    if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "-V") == 0) {
        printf("mtasts-ctl %s\n", PACKAGE_VERSION);
        return CTL_EXIT_OK;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        usage(stdout);
        return CTL_EXIT_OK;
    }
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
        if (strcmp(argv[1], commands[i].name) == 0) {
            rc = commands[i].run(argc - 1, argv + 1);
            config_unref(config_loaded);
            return rc;
        }
    }
    fprintf(stderr, "mtasts-ctl: unknown command \"%s\" (try --help)\n", argv[1]);
    return CTL_EXIT_USAGE;
}
