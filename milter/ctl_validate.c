/*
 * ctl_validate - `mtasts-ctl validate-policy` and `validate-txt`: check what a
 * domain owner is about to publish, with the same parsers the milter uses.
 *
 * Exit status: 0 valid, 1 invalid (the reason is printed), 2 usage or I/O
 * error. See man/mtasts-ctl.1.
 */
#include "ctl.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "mxmatch.h"
#include "policy.h"

/*
 * Reads all of FILE ("-" for stdin) into a buffer of at most limit + 1
 * bytes: one byte past the limit is enough for the parser to say "too big"
 * without us ever holding an unbounded input.
 */
static int
read_bounded(const char *path, size_t limit, char **out, size_t *outlen)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    char *buf;
    size_t n = 0;

    if (f == NULL) {
        fprintf(stderr, "mtasts-ctl: cannot open %s: %s\n", path, strerror(errno));
        return -1;
    }
    buf = malloc(limit + 1);
    if (buf == NULL) {
        fprintf(stderr, "mtasts-ctl: out of memory\n");
        if (f != stdin)
            fclose(f);
        return -1;
    }
    while (n < limit + 1) {
        size_t r = fread(buf + n, 1, limit + 1 - n, f);
        if (r == 0)
            break;
        n += r;
    }
    if (ferror(f)) {
        fprintf(stderr, "mtasts-ctl: cannot read %s: %s\n", path, strerror(errno));
        free(buf);
        if (f != stdin)
            fclose(f);
        return -1;
    }
    if (f != stdin)
        fclose(f);
    *out = buf;
    *outlen = n;
    return 0;
}

static void
usage_policy(FILE *to)
{
    fprintf(to, "usage: mtasts-ctl validate-policy [--json] [--mx HOST]... FILE|-\n");
}

int
ctl_validate_policy(int argc, char **argv)
{
    static const struct option opts[] = {
        {"json", no_argument, NULL, 'j'},
        {"mx", required_argument, NULL, 'm'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    bool json = false;
    const char **hosts = calloc((size_t)argc + 1, sizeof(*hosts));
    size_t n_hosts = 0;
    char *buf = NULL;
    size_t len = 0;
    struct policy p;
    struct mts_err err;
    int c, rc, status = CTL_EXIT_USAGE;

    if (hosts == NULL) {
        fprintf(stderr, "mtasts-ctl: out of memory\n");
        return CTL_EXIT_USAGE;
    }
    optind = 1;
    while ((c = getopt_long(argc, argv, "+jm:h", opts, NULL)) != -1) {
        switch (c) {
        case 'j':
            json = true;
            break;
        case 'm':
            hosts[n_hosts++] = optarg;
            break;
        case 'h':
            usage_policy(stdout);
            free(hosts);
            return CTL_EXIT_OK;
        default:
            usage_policy(stderr);
            goto out;
        }
    }
    if (argc - optind != 1) {
        usage_policy(stderr);
        goto out;
    }
    for (size_t i = 0; i < n_hosts; i++) {
        char norm[MXMATCH_NAME_MAX + 1];
        if (mxmatch_host_normalize(hosts[i], strlen(hosts[i]), norm, sizeof(norm), &err) != 0) {
            fprintf(stderr, "mtasts-ctl: --mx %s: %s\n", hosts[i], err.msg);
            goto out;
        }
    }
    if (read_bounded(argv[optind], POLICY_MAX_BYTES, &buf, &len) != 0)
        goto out;

    rc = policy_parse(buf, len, &p, &err);
    status = rc == 0 ? CTL_EXIT_OK : CTL_EXIT_INVALID;
    if (json) {
        json_t *o = json_object(), *mx = json_array(), *match = json_object();

        json_object_set_new(o, "valid", json_boolean(rc == 0));
        json_object_set_new(o, "error", rc == 0 ? json_null() : json_string(err.msg));
        json_object_set_new(o, "version", rc == 0 ? json_string("STSv1") : json_null());
        json_object_set_new(o, "mode",
                            rc == 0 ? json_string(policy_mode_name(p.mode)) : json_null());
        json_object_set_new(o, "max_age", rc == 0 ? json_integer(p.max_age) : json_null());
        for (size_t i = 0; rc == 0 && i < p.n_mx; i++)
            json_array_append_new(mx, json_string(p.mx[i]));
        json_object_set_new(o, "mx", rc == 0 ? mx : json_null());
        if (rc != 0)
            json_decref(mx);
        for (size_t i = 0; i < n_hosts; i++)
            json_object_set_new(match, hosts[i],
                                json_boolean(rc == 0 && policy_mx_allows(&p, hosts[i])));
        json_object_set_new(o, "mx_match", match);
        ctl_print_json(o);
        json_decref(o);
    } else if (rc != 0) {
        fprintf(stderr, "invalid: %s\n", err.msg);
    } else {
        printf("valid policy\nversion: STSv1\nmode: %s\nmax_age: %u\n",
               policy_mode_name(p.mode), (unsigned)p.max_age);
        for (size_t i = 0; i < p.n_mx; i++)
            printf("mx: %s\n", p.mx[i]);
        for (size_t i = 0; i < n_hosts; i++)
            printf("mx check: %s %s\n", hosts[i],
                   policy_mx_allows(&p, hosts[i]) ? "matches" : "does NOT match");
    }
    if (rc == 0)
        policy_free(&p);
out:
    free(buf);
    free(hosts);
    return status;
}

static void
usage_txt(FILE *to)
{
    fprintf(to, "usage: mtasts-ctl validate-txt [--json] RECORD...\n"
                "  each RECORD is one TXT record found at _mta-sts.<domain>\n");
}

int
ctl_validate_txt(int argc, char **argv)
{
    static const struct option opts[] = {
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    bool json = false;
    struct policy_txt_input *recs;
    struct policy_txt txt;
    struct mts_err err;
    enum policy_txt_result res;
    size_t n;
    int c;

    optind = 1;
    while ((c = getopt_long(argc, argv, "+jh", opts, NULL)) != -1) {
        switch (c) {
        case 'j':
            json = true;
            break;
        case 'h':
            usage_txt(stdout);
            return CTL_EXIT_OK;
        default:
            usage_txt(stderr);
            return CTL_EXIT_USAGE;
        }
    }
    if (optind >= argc) {
        usage_txt(stderr);
        return CTL_EXIT_USAGE;
    }
    n = (size_t)(argc - optind);
    recs = calloc(n, sizeof(*recs));
    if (recs == NULL) {
        fprintf(stderr, "mtasts-ctl: out of memory\n");
        return CTL_EXIT_USAGE;
    }
    for (size_t i = 0; i < n; i++) {
        recs[i].data = argv[optind + (int)i];
        recs[i].len = strlen(recs[i].data);
    }
    res = policy_txt_select(recs, n, &txt, &err);
    free(recs);
    if (json) {
        json_t *o = json_object();
        bool ok = res == POLICY_TXT_OK;

        json_object_set_new(o, "valid", json_boolean(ok));
        json_object_set_new(o, "error", ok ? json_null() : json_string(err.msg));
        json_object_set_new(o, "version", ok ? json_string("STSv1") : json_null());
        json_object_set_new(o, "id", ok ? json_string(txt.id) : json_null());
        ctl_print_json(o);
        json_decref(o);
    } else if (res != POLICY_TXT_OK) {
        fprintf(stderr, "invalid: %s\n", err.msg);
    } else {
        printf("valid TXT record\nversion: STSv1\nid: %s\n", txt.id);
    }
    return res == POLICY_TXT_OK ? CTL_EXIT_OK : CTL_EXIT_INVALID;
}
