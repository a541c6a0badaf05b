/*
 * mtasts-ctl - the operator's tool: validate what a domain publishes, and
 * (as they are built) look domains up, explain verdicts, manage the cache.
 *
 * This file only dispatches; each command lives in its own ctl_*.c.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"

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
};

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
usage(FILE *to)
{
    fprintf(to, "usage: mtasts-ctl COMMAND [ARGS]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        fprintf(to, "  %s %s\n", commands[i].name, commands[i].summary);
    fprintf(to, "\nNot built yet: lookup, explain, check, cache, prefetch (they need\n"
                "the DNS, HTTPS and cache modules, which are still being written).\n"
                "\nExit status: 0 valid, 1 invalid, 2 usage or I/O error.\n"
                "See mtasts-ctl(1).\n");
}

int
main(int argc, char **argv)
{
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
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        if (strcmp(argv[1], commands[i].name) == 0)
            return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "mtasts-ctl: unknown command \"%s\" (try --help)\n", argv[1]);
    return CTL_EXIT_USAGE;
}
