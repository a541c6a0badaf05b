/*
 * mtasts-milter - the milter daemon.
 *
 * Not built yet: the libmilter callbacks, verdicts and tagging come with
 * the milter issue. Until then this program says so instead of pretending
 * to filter mail.
 */
#include <stdio.h>
#include <string.h>

static void
usage(FILE *to)
{
    fprintf(to,
            "usage: mtasts-milter [-f] [-c CONFIG] [-p SOCKET] [-n]\n\n"
            "The milter daemon is NOT BUILT YET in this version: it does not\n"
            "connect to an MTA and filters no mail. What works today is\n"
            "mtasts-ctl validate-policy and validate-txt (see mtasts-ctl --help).\n");
}

int
main(int argc, char **argv)
{
    if (argc > 1 && (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "-V") == 0)) {
        printf("mtasts-milter %s (milter daemon not built yet)\n", PACKAGE_VERSION);
        return 0;
    }
    if (argc > 1 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        usage(stdout);
        return 0;
    }
    usage(stderr);
    /* EX_UNAVAILABLE: a service that does not exist yet. */
    return 69;
}
