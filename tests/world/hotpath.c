/*
 * hotpath - holds one discover open and answers commands from stdin, one a
 * line, so that a script can look at the world (the resolver's log, the
 * cache file) between lookups of the same process.
 *
 * usage: hotpath CONFIG [no-cache]
 *
 *	lookup DOMAIN [N]	N times (1): discover_lookup, then discover_mx
 *				when enforce, as an RCPT does; prints the last:
 *				"status=S source=cache|fresh mx=N first=HOST"
 *	drain			waits for queued lookups; prints "drained"
 *
 * Exit status 0, or 2 when the discover cannot be opened.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "config.h"
#include "discover.h"
#include "log.h"

int
main(int argc, char **argv)
{
    struct config *cfg;
    struct discover *d;
    struct mts_err err;
    char line[512];
    static char mx[DISCOVER_MAX_MX][254];

    if (argc < 2) {
        fprintf(stderr, "usage: hotpath CONFIG [no-cache]\n");
        return 2;
    }
    log_init("hotpath", LOG_TO_STDERR, 0);
    if (config_load(argv[1], &cfg, &err) != 0 ||
        discover_open(cfg, argc > 2 ? DISCOVER_NO_CACHE : 0, &d, &err) != 0) {
        fprintf(stderr, "hotpath: %s\n", err.msg);
        return 2;
    }
    while (fgets(line, sizeof(line), stdin) != NULL) {
        char dom[256];
        int n = 1, n_mx = -1;
        struct status_result r;

        if (strncmp(line, "drain", 5) == 0) {
            discover_drain(d);
            printf("drained\n");
        } else if (sscanf(line, "lookup %255s %d", dom, &n) >= 1) {
            memset(&r, 0, sizeof(r));
            for (int i = 0; i < n; i++) {
                struct timespec dl = clock_deadline_after(10000);

                status_result_free(&r);
                discover_lookup(d, dom, &dl, 0, &r);
                if (r.status == STATUS_ENFORCE)
                    n_mx = discover_mx(d, dom, &dl, mx, &err);
            }
            printf("status=%s source=%s mx=%d first=%s\n", status_kind_name(r.status),
                   r.source == STATUS_FROM_CACHE ? "cache" : "fresh", n_mx,
                   n_mx > 0 ? mx[0] : "-");
            status_result_free(&r);
        } else {
            printf("? %s", line);
        }
        fflush(stdout);
    }
    discover_close(d);
    config_unref(cfg);
    return 0;
}
