/*
 * ctl_explain - `mtasts-ctl explain [--from SENDER] [--auth USER] RCPT...`:
 * the decision the milter would make for each recipient, and why: it
 * prints what decide_recipient() returns, the function the milter calls.
 *
 * Exit status: 0 every recipient would be accepted (tagged or untouched);
 * 1 at least one would be deferred, rejected or held; 2 usage or
 * configuration error; 4 the cache could not be opened.
 */
#include "ctl.h"
#include "tlsa.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "decide.h"
#include "runtime.h"

static void
usage(FILE *to)
{
    fprintf(to, "usage: mtasts-ctl [-c CONFIG] explain [--json] [--from SENDER] [--auth USER]\n"
                "                  [--non-smtpd] [--daemon NAME] [--mailer TRANSPORT]\n"
                "                  [--host NEXTHOP] [--requiretls] RCPT...\n");
}

static bool
judged(const struct decision *d)
{
    return d->effect != DECIDE_UNTOUCHED;
}

static bool
replied(const struct decision *d)
{
    return d->effect == DECIDE_DEFER || d->effect == DECIDE_REJECT;
}

/* REQUIRETLS was asked and the recipient judged. */
static bool
requiretls_judged(const struct decision *d)
{
    return d->requiretls_asked && d->scope == DECIDE_IN_SCOPE;
}

static const char *
rule_name(const struct decision *d)
{
    return d->rule ? d->rule->where : "built-in default";
}

static json_t *
explain_json(const char *rcpt, const struct decision *d)
{
    json_t *o = json_object();
    bool has_domain = d->domain[0] != '\0';

    json_object_set_new(o, "recipient", json_string(rcpt));
    json_object_set_new(o, "domain", has_domain ? json_string(d->domain) : json_null());
    json_object_set_new(o, "status", has_domain && judged(d) ?
                        json_string(status_kind_name(d->status)) : json_null());
    json_object_set_new(o, "requirement", judged(d) ?
                        json_string(rules_req_name(d->req)) : json_null());
    json_object_set_new(o, "verdict", has_domain && judged(d) ?
                        json_string(verdict_outcome_name(d->outcome)) : json_null());
    json_object_set_new(o, "action",
                        json_string(nametab_name(decide_effect_names, (int)d->effect)));
    json_object_set_new(o, "dry_run", json_boolean(d->dry_run));
    json_object_set_new(o, "rule", json_string(rule_name(d)));
    json_object_set_new(o, "reply", replied(d) ?
                        json_sprintf("%s %s %s", d->reply.rcode, d->reply.xcode, d->reply.text) :
                        json_null());
    json_object_set_new(o, "reason", json_string(d->why));
    /* What the MX probes showed (the tag's tls=); null when not looked at. */
    json_object_set_new(o, "tls", d->tls != VERDICT_TLS_UNSEEN ?
                        json_string(verdict_tls_name(d->tls)) : json_null());
    /* The DANE outcome the verdict rests on (the tag's dane=); null: none. */
    json_object_set_new(o, "dane", d->dane != TLSA_DANE_NONE ?
                        json_string(tlsa_dane_name((enum tlsa_dane)d->dane)) : json_null());
    /* Beside it, WebPKI's view of the same host (the probe row's pkix). */
    json_object_set_new(o, "pkix", d->dane == TLSA_DANE_NONE || d->pkix < 0 ? json_null() :
                        json_boolean(d->pkix == 1));
    /* RFC 8689: is the path authenticated; null without --requiretls. */
    json_object_set_new(o, "requiretls", requiretls_judged(d) ?
                        json_string(verdict_outcome_name(d->requiretls)) : json_null());
    /* Who learnt the facts (cache.h, source): null this host, else the
     * name of the host of the fleet that did. */
    json_object_set_new(o, "policy_source", !judged(d) || !has_domain ? json_null() :
                        json_string(d->origin[0] ? "fleet" : "fetched"));
    json_object_set_new(o, "policy_fleet_host", judged(d) && d->origin[0] ?
                        json_string(d->origin) : json_null());
    json_object_set_new(o, "probe_fleet_host", d->probe_origin[0] ?
                        json_string(d->probe_origin) : json_null());
    return o;
}

static void
print_text(const char *rcpt, const struct decision *d)
{
    printf("%s: %s%s\n", rcpt, nametab_name(decide_effect_names, (int)d->effect),
           d->dry_run ? " (dry run: not applied)" : "");
    if (d->domain[0] != '\0' && judged(d))
        printf("  domain %s, status %s, requirement %s, verdict %s, rule %s\n", d->domain,
               status_kind_name(d->status), rules_req_name(d->req),
               verdict_outcome_name(d->outcome), rule_name(d));
    if (d->domain[0] != '\0' && judged(d))
        printf("  policy: %s%s\n", d->origin[0] ? "from the fleet, learnt by " : "fetched here",
               d->origin);
    if (d->probe_origin[0] != '\0')
        printf("  probes: from the fleet, probed by %s\n", d->probe_origin);
    if (d->tls != VERDICT_TLS_UNSEEN)
        printf("  tls: %s\n", verdict_tls_name(d->tls));
    if (d->dane != TLSA_DANE_NONE)
        printf("  dane: %s (WebPKI-valid: %s)\n", tlsa_dane_name((enum tlsa_dane)d->dane),
               d->pkix < 0 ? "unknown" : d->pkix ? "yes" : "no");
    if (requiretls_judged(d))
        printf("  requiretls: %s\n", verdict_outcome_name(d->requiretls));
    if (replied(d))
        printf("  reply: %s %s %s\n", d->reply.rcode, d->reply.xcode, d->reply.text);
    printf("  why: %s\n", d->why);
}

bool
ctl_explain_one(struct runtime *rt, const struct decide_session *s, const char *mailer,
            const char *host, const char *rcpt, json_t *out_array)
{
    struct decide_rcpt r = {rcpt, mailer, host};
    struct timespec deadline = clock_deadline_after((int)rt->cfg->rcpt_deadline_ms);
    struct decision *d = malloc(sizeof(*d));
    bool accepted;

    if (d == NULL) {
        fprintf(stderr, "mtasts-ctl: out of memory\n");
        return false;
    }
    decide_recipient(&rt->dctx, s, &r, &deadline, d);
    if (out_array != NULL)
        json_array_append_new(out_array, explain_json(rcpt, d));
    else
        print_text(rcpt, d);
    accepted = d->applied == DECIDE_TAG || d->applied == DECIDE_UNTOUCHED;
    free(d);
    return accepted;
}

int
ctl_explain(int argc, char **argv)
{
    static const struct option opts[] = {
        {"json", no_argument, NULL, 'j'},      {"from", required_argument, NULL, 'f'},
        {"auth", required_argument, NULL, 'a'}, {"mailer", required_argument, NULL, 'm'},
        {"host", required_argument, NULL, 'H'}, {"non-smtpd", no_argument, NULL, 'n'},
        {"daemon", required_argument, NULL, 'D'}, {"help", no_argument, NULL, 'h'},
        {"requiretls", no_argument, NULL, 'R'}, {NULL, 0, NULL, 0},
    };
    struct decide_session s = {"", NULL, NULL, false, NULL, false, NULL};
    const char *mailer = NULL, *host = NULL;
    struct runtime *rt;
    struct mts_err err;
    bool json = false, all_ok = true;
    json_t *arr = NULL;
    int c;

    optind = 1;
    while ((c = getopt_long(argc, argv, "+jf:a:m:H:nD:hR", opts, NULL)) != -1) {
        switch (c) {
        case 'j':
            json = true;
            break;
        case 'f':
            s.sender = optarg;
            break;
        case 'R':
            s.requiretls = true;	/* MAIL FROM ... REQUIRETLS */
            break;
        case 'a':
            s.auth = optarg;
            break;
        case 'm':
            mailer = optarg;
            break;
        case 'H':
            host = optarg;
            break;
        case 'D':
            s.daemon = optarg;
            break;
        case 'n':
            s.non_smtpd = true;
            break;
        case 'h':
            usage(stdout);
            return CTL_EXIT_OK;
        default:
            usage(stderr);
            return CTL_EXIT_USAGE;
        }
    }
    if (optind >= argc) {
        usage(stderr);
        return CTL_EXIT_USAGE;
    }
    if (runtime_build(ctl_config_path(), true, &rt, &err) != 0) {
        fprintf(stderr, "mtasts-ctl: %s\n", err.msg);
        return strstr(err.msg, "database") != NULL ? CTL_EXIT_CACHE : CTL_EXIT_USAGE;
    }
    /* A fresh process: what the milter's memory would hold is in the cache. */
    if (rt->probes != NULL)
        probes_load_on_miss(rt->probes);
    if (json)
        arr = json_array();
    for (int i = optind; i < argc; i++)
        all_ok &= ctl_explain_one(rt, &s, mailer, host, argv[i], arr);
    if (json) {
        ctl_print_json(arr);
        json_decref(arr);
    }
    runtime_unref_wait(rt);
    return all_ok ? CTL_EXIT_OK : CTL_EXIT_INVALID;
}
