/*
 * ctl_probe - `mtasts-ctl probe HOST`: one STARTTLS probe of one MX host
 * (common/tlsprobe), printed for a person or as JSON, with its grade.
 *
 * Exit status: 0 the host passes RFC 8461 (grade good or weak); 1 it does
 * not (unverified or fail); 3 unknown (unreachable, or HOST has no address
 * now); 2 usage or configuration error. See man/mtasts-ctl.1.
 */
#include "ctl.h"
#include "tlsa.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "config.h"
#include "dns.h"
#include "mxmatch.h"
#include "probeconf.h"
#include "probes.h"
#include "tlsprobe.h"

#define PROBE_MAX_MS 300000    /* RFC 5321 §4.5.3.2: 5 minutes for a greeting */
#define ADDR_MAX 46            /* INET6_ADDRSTRLEN */

static void
usage(FILE *to)
{
    fprintf(to, "usage: mtasts-ctl probe [--json] [--address A] [--port N] [--ehlo NAME]\n"
                "                        [--ca-file FILE] [--timeout MS] HOST\n");
}

json_t *
ctl_probe_json(const struct tlsprobe_result *r, const struct tlsprobe_grade *g)
{
    json_t *o = json_object(), *tls = json_null(), *cert = json_null(), *gr = json_object();
    json_t *names, *reasons = json_array();

    json_object_set_new(o, "host", json_string(r->mx_host));
    json_object_set_new(o, "address", json_string(r->address));
    json_object_set_new(o, "port", json_integer(r->port));
    json_object_set_new(o, "status", json_string(tlsprobe_status_name(r->status)));
    json_object_set_new(o, "stage", json_string(tlsprobe_stage_name(r->stage)));
    json_object_set_new(o, "reason", ctl_json_text(r->reason));
    json_object_set_new(o, "dane", r->dane_active ?
                                       json_string(tlsa_dane_name((enum tlsa_dane)r->dane)) :
                                       json_null());
    json_object_set_new(o, "dane_match", r->dane_active ? ctl_json_text(r->dane_match) :
                                                          json_null());
    json_object_set_new(o, "reply_code", r->reply_code > 0 ? json_integer(r->reply_code) :
                                                             json_null());
    json_object_set_new(o, "greeting", ctl_json_text(r->greeting));
    json_object_set_new(o, "starttls", json_boolean(r->starttls_offered));
    if (r->tls_done) {
        tls = json_object();
        json_object_set_new(tls, "protocol", json_string(r->protocol));
        json_object_set_new(tls, "cipher", json_string(r->cipher));
        json_object_set_new(tls, "cipher_bits", json_integer(r->cipher_bits));
        json_object_set_new(tls, "kex_group", ctl_json_text(r->kex_group));
        json_object_set_new(tls, "kex_bits", json_integer(r->kex_bits));
    }
    json_object_set_new(o, "tls", tls);
    if (r->cert_present) {
        cert = json_object();
        names = json_array();
        for (size_t i = 0; i < r->n_names; i++)
            json_array_append_new(names, json_string(r->names[i]));
        json_object_set_new(cert, "names", names);
        json_object_set_new(cert, "names_total", json_integer((json_int_t)r->n_names_total));
        json_object_set_new(cert, "subject_cn", ctl_json_text(r->subject_cn));
        json_object_set_new(cert, "issuer", ctl_json_text(r->issuer));
        json_object_set_new(cert, "key_type", json_string(r->key_type));
        json_object_set_new(cert, "key_bits", json_integer(r->key_bits));
        json_object_set_new(cert, "key_curve", ctl_json_text(r->key_curve));
        json_object_set_new(cert, "sig_hash", ctl_json_text(r->sig_hash));
        json_object_set_new(cert, "not_before", json_integer(r->not_before));
        json_object_set_new(cert, "not_after", json_integer(r->not_after));
        json_object_set_new(cert, "days_left", json_integer(r->days_left));
        json_object_set_new(cert, "chain_valid", json_boolean(r->chain_valid));
        json_object_set_new(cert, "chain_error", ctl_json_text(r->verify_text));
        json_object_set_new(cert, "name_match", json_boolean(r->name_match));
    }
    json_object_set_new(o, "certificate", cert);
    json_object_set_new(gr, "grade", json_string(tlsprobe_grade_name(g->grade)));
    json_object_set_new(gr, "rfc8461", json_boolean(g->rfc8461));
    json_object_set_new(gr, "tls", json_boolean(g->tls));
    json_object_set_new(gr, "floor", json_boolean(g->floor));
    for (size_t i = 0; i < g->n; i++)
        json_array_append_new(reasons, json_string(g->reasons[i]));
    json_object_set_new(gr, "reasons", reasons);
    json_object_set_new(o, "grade", gr);
    json_object_set_new(o, "elapsed_ms", json_integer(r->elapsed_ms));
    return o;
}

static const char *
yes(bool b)
{
    return b ? "yes" : "no";
}

void
ctl_probe_print(const struct tlsprobe_result *r, const struct tlsprobe_grade *g, const char *in)
{
    char from[32], to[32];

    printf("%s%s [%s]:%d\n", in, r->mx_host, r->address, r->port);
    printf("%s  result:      %s%s%s\n", in, tlsprobe_status_name(r->status),
           r->reason[0] != '\0' ? ": " : "", r->reason);
    if (r->greeting[0] != '\0')
        printf("%s  greeting:    %s\n", in, r->greeting);
    if (r->stage > TLSPROBE_STAGE_EHLO || r->status == TLSPROBE_NO_STARTTLS)
        printf("%s  STARTTLS:    %s\n", in, r->starttls_offered ? "offered" : "not offered");
    if (r->tls_done)
        printf("%s  protocol:    %s %s (%d bits)%s%s\n", in, r->protocol, r->cipher,
               r->cipher_bits, r->kex_group[0] != '\0' ? ", key exchange " : "", r->kex_group);
    if (r->cert_present) {
        printf("%s  certificate: %s %d bits%s%s%s, signed with %s\n", in, r->key_type,
               r->key_bits, r->key_curve[0] != '\0' ? " (" : "", r->key_curve,
               r->key_curve[0] != '\0' ? ")" : "", r->sig_hash[0] != '\0' ? r->sig_hash : "?");
        printf("%s  names:       ", in);
        for (size_t i = 0; i < r->n_names; i++)
            printf("%s%s", i > 0 ? ", " : "", r->names[i]);
        if (r->n_names_total > r->n_names)
            printf(" and %zu more", r->n_names_total - r->n_names);
        printf("%s\n", r->n_names_total == 0 ? "(no DNS name)" : "");
        if (r->subject_cn[0] != '\0')
            printf("%s  subject CN:  %s (shown only: never matched)\n", in, r->subject_cn);
        printf("%s  issuer:      %s\n", in, r->issuer);
        ctl_fmt_time(r->not_before, from, sizeof(from));
        ctl_fmt_time(r->not_after, to, sizeof(to));
        printf("%s  valid:       %s to %s (%ld days left)\n", in, from, to, r->days_left);
        printf("%s  chain:       %s\n", in, r->chain_valid ? "valid" : r->verify_text);
        printf("%s  name match:  %s\n", in, yes(r->name_match));
    }
    if (r->dane_active)
        printf("%s  DANE:        %s%s%s (TLSA base domain %s)\n", in,
               tlsa_dane_name((enum tlsa_dane)r->dane),
               r->dane == TLSA_DANE_VERIFIED ? ", record " : ": ",
               r->dane == TLSA_DANE_VERIFIED ? r->dane_match : r->verify_text, r->dane_base);
    printf("%s  grade:       %s (RFC 8461: %s, TLS 1.2+: %s, NIST floor: %s)\n", in,
           tlsprobe_grade_name(g->grade), yes(g->rfc8461), yes(g->tls), yes(g->floor));
    for (size_t i = 0; i < g->n; i++)
        printf("%s    - %s\n", in, g->reasons[i]);
    printf("%s  time:        %ld ms\n", in, r->elapsed_ms);
}

/* HOST's first address through the milter's own resolver. */
static int
resolve(const struct config *cfg, const char *host, char *out, size_t outsz, int timeout_ms)
{
    struct dns_options dopts;
    struct dns_answer ans;
    struct mts_err err;
    struct dns *d;
    int rc = -1;

    dns_options_from(cfg, &dopts);
    dopts.timeout_ms = timeout_ms;
    if (dns_open(&dopts, &d, &err) != 0) {
        fprintf(stderr, "mtasts-ctl: %s\n", err.msg);
        return -1;
    }
    if (dns_addresses(d, host, NULL, &ans, &err) != 0 || ans.status != DNS_OK ||
        ans.n == 0)
        fprintf(stderr, "mtasts-ctl: no address for %s: %s\n", host, err.msg);
    else if ((size_t)snprintf(out, outsz, "%s", ans.rr[0].text) < outsz)
        rc = 0;
    if (rc == 0 && ans.n > 1)
        fprintf(stderr, "mtasts-ctl: %s has %zu addresses; probing %s (use --address)\n", host,
                ans.n, out);
    dns_answer_free(&ans);
    dns_close(d);
    return rc;
}

int
ctl_probe(int argc, char **argv)
{
    static const struct option opts[] = {
        {"json", no_argument, NULL, 'j'},      {"address", required_argument, NULL, 'a'},
        {"port", required_argument, NULL, 'p'}, {"ehlo", required_argument, NULL, 'e'},
        {"ca-file", required_argument, NULL, 'C'}, {"timeout", required_argument, NULL, 't'},
        {"help", no_argument, NULL, 'h'},      {NULL, 0, NULL, 0},
    };
    struct tlsprobe_options o = {0};
    struct probeconf pc;
    struct mts_err err;
    struct tlsprobe_result *r = NULL;
    struct tlsprobe_grade g;
    struct timespec dl;
    struct config *cfg;
    char host[MXMATCH_NAME_MAX + 1], addr[ADDR_MAX + 1], why[256];
    char *end;
    const char *address = NULL, *ca = NULL;
    long port = 0, timeout = 0; /* 0: the configuration's */
    bool json = false;
    int c, rc;

    optind = 1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'j':
            json = true;
            break;
        case 'a':
            address = optarg;
            break;
        case 'p':
            port = strtol(optarg, &end, 10);
            if (*optarg == '\0' || *end != '\0' || port < 1 || port > 65535) {
                fprintf(stderr, "mtasts-ctl: --port wants 1 to 65535, not \"%s\"\n", optarg);
                return CTL_EXIT_USAGE;
            }
            break;
        case 'e':
            o.ehlo_name = optarg;
            break;
        case 'C':
            ca = optarg;
            break;
        case 't':
            timeout = strtol(optarg, &end, 10);
            if (*optarg == '\0' || *end != '\0' || timeout < 1 || timeout > PROBE_MAX_MS) {
                fprintf(stderr, "mtasts-ctl: --timeout wants 1 to %d ms, not \"%s\"\n",
                        PROBE_MAX_MS, optarg);
                return CTL_EXIT_USAGE;
            }
            break;
        case 'h':
            usage(stdout);
            return CTL_EXIT_OK;
        default:
            usage(stderr);
            return CTL_EXIT_USAGE;
        }
    }
    if (optind != argc - 1) {
        usage(stderr);
        return CTL_EXIT_USAGE;
    }
    if (mxmatch_host_normalize(argv[optind], strlen(argv[optind]), host, sizeof(host), NULL) !=
        0) {
        fprintf(stderr, "mtasts-ctl: \"%.253s\" is not a host name\n", argv[optind]);
        return CTL_EXIT_USAGE;
    }
    if ((cfg = ctl_config()) == NULL)
        return CTL_EXIT_USAGE;
    /* The milter's probe options (probeconf.h), unless the command line
     * says otherwise; nothing of this probe is stored. */
    if (probeconf_init(&pc, cfg, &err) != 0) {
        fprintf(stderr, "mtasts-ctl: %s\n", err.msg);
        return CTL_EXIT_USAGE;
    }
    o.ca_file = ca != NULL ? ca : pc.tls.ca_file;
    if (o.ehlo_name == NULL)
        o.ehlo_name = pc.tls.ehlo_name;
    if (port == 0)
        port = pc.port;
    if (timeout == 0)
        timeout = pc.timeout_ms;
    if (probes_never(pc.never, host)) {
        fprintf(stderr, "mtasts-ctl: %s not probed: it is on probe_never\n", host);
        return CTL_EXIT_UNKNOWN;
    }
    if (address == NULL) {
        if (resolve(cfg, host, addr, sizeof(addr), (int)(timeout < 10000 ? timeout : 10000)) != 0)
            return CTL_EXIT_UNKNOWN;
        address = addr;
    }
    /* The milter's rule: never a connection inside the network unless allowed. */
    if (!probeconf_may_connect(&pc, address, why, sizeof(why))) {
        fprintf(stderr, "mtasts-ctl: %s [%s] not probed: %s\n", host, address, why);
        return CTL_EXIT_UNKNOWN;
    }
    if ((r = malloc(sizeof(*r))) == NULL) {
        fprintf(stderr, "mtasts-ctl: out of memory\n");
        return CTL_EXIT_USAGE;
    }
    dl = clock_deadline_after((int)timeout);
    (void)tlsprobe_run(&o, host, address, (int)port, &dl, r);
    if (r->status == TLSPROBE_ERROR) {
        fprintf(stderr, "mtasts-ctl: %s\n", r->reason);
        free(r);
        return CTL_EXIT_USAGE;
    }
    tlsprobe_grade(r, &g);
    if (json) {
        json_t *j = ctl_probe_json(r, &g);
        ctl_print_json(j);
        json_decref(j);
    } else {
        ctl_probe_print(r, &g, "");
    }
    rc = g.rfc8461 ? CTL_EXIT_OK :
         g.grade == TLSPROBE_GRADE_UNKNOWN ? CTL_EXIT_UNKNOWN : CTL_EXIT_INVALID;
    free(r);
    return rc;
}
