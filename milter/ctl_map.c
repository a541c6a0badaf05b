/*
 * ctl_map - `mtasts-ctl map [--name NAME] DOMAIN`: the answer the policy
 * map (map_socket) gives for DOMAIN, computed by the same code the map
 * listener runs (map_query), with the same deadline (map_deadline_ms).
 * With mx_probes, the probes the dane-only answer reads come from the
 * shared cache's rows (probes_load_on_miss), as the milter's memory would
 * hold them; a host without live rows is probed, and the command waits
 * for that probe (probe_timeout_ms) when it ends.
 *
 * Exit status: 0 OK (an enforce policy), 1 NOTFOUND, 3 TEMP, 2 usage,
 * configuration error or PERM, 4 the cache cannot be opened.
 */
#include "ctl.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "discover.h"
#include "map_query.h"
#include "probes.h"

static void
map_usage(FILE *to)
{
    fprintf(to, "usage: mtasts-ctl [-c CONFIG] map [--name NAME] DOMAIN\n"
                "  the policy map's answer for DOMAIN (NAME: the socketmap name, "
                "default postfix)\n");
}

int
ctl_map(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"name", required_argument, NULL, 'n'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *name = "postfix";
    struct config *cfg;
    struct discover *d;
    struct probes *p = NULL;
    struct mts_err err;
    char *req, *out;
    int c, n;
    enum sockmap_reply k;

    optind = 1;
    while ((c = getopt_long(argc, argv, "n:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'n':
            name = optarg;
            break;
        case 'h':
            map_usage(stdout);
            return CTL_EXIT_OK;
        default:
            map_usage(stderr);
            return CTL_EXIT_USAGE;
        }
    }
    if (optind != argc - 1) {
        map_usage(stderr);
        return CTL_EXIT_USAGE;
    }
    if ((cfg = ctl_config()) == NULL)
        return CTL_EXIT_USAGE;
    n = snprintf(NULL, 0, "%s %s", name, argv[optind]);
    req = malloc((size_t)n + 1);
    out = malloc(SOCKMAP_MAX_REPLY + 1);
    if (req == NULL || out == NULL) {
        fprintf(stderr, "mtasts-ctl: out of memory\n");
        free(req);
        free(out);
        return CTL_EXIT_USAGE;
    }
    snprintf(req, (size_t)n + 1, "%s %s", name, argv[optind]);
    if ((c = discover_open(cfg, 0, &d, &err)) != 0) {
        fprintf(stderr, "mtasts-ctl: %s\n", err.msg);
        free(req);
        free(out);
        return c == DISCOVER_OPEN_CACHE_ERROR ? CTL_EXIT_CACHE : CTL_EXIT_USAGE;
    }
    if (cfg->mx_probes) {
        if (probes_open(cfg, NULL, PROBES_NO_REFRESHER, &p, &err) != 0) {
            fprintf(stderr, "mtasts-ctl: %s\n", err.msg);
            discover_close(d);
            free(req);
            free(out);
            return CTL_EXIT_USAGE;
        }
        probes_load_on_miss(p);
    }
    k = map_query(d, p, cfg, req, (size_t)n, out, SOCKMAP_MAX_REPLY + 1);
    puts(out);
    probes_close(p);
    discover_close(d);
    free(req);
    free(out);
    return k == SOCKMAP_OK ? CTL_EXIT_OK : k == SOCKMAP_NOTFOUND ? CTL_EXIT_INVALID :
           k == SOCKMAP_TEMP ? CTL_EXIT_UNKNOWN : CTL_EXIT_USAGE;
}
