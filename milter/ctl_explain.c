/*
 * ctl_explain - `mtasts-ctl explain [--from SENDER] [--auth USER] RCPT...`:
 * the verdict the milter would give each recipient, and why, through the
 * milter's own code (runtime, address, verdict, reply).
 *
 * Exit status: 0 every recipient would be accepted (tagged or untouched);
 * 1 at least one would be deferred or rejected; 2 usage or configuration
 * error; 4 the cache could not be opened.
 */
#include "ctl.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "address.h"
#include "runtime.h"

static void
usage(FILE *to)
{
    fprintf(to, "usage: mtasts-ctl [-c CONFIG] explain [--json] [--from SENDER] [--auth USER]\n"
                "                  [--non-smtpd] [--mailer TRANSPORT] [--host NEXTHOP] RCPT...\n");
}

struct session {
    const char *sender, *auth, *mailer, *host;
    bool non_smtpd;
};

/* Explains one recipient; returns true when it would be accepted. */
static bool
explain_one(struct runtime *rt, const struct session *s, const char *rcpt, json_t *out_array)
{
    const struct config *cfg = rt->cfg;
    struct discover_result st;
    struct verdict v;
    struct reply r;
    struct mts_err err;
    char domain[254];
    enum address_result ar;
    const char *what;		/* untouched | tag | defer | reject | hold */
    const char *why;
    enum verdict_action a = VERDICT_TAG;
    bool refused;
    json_t *o = json_object();

    memset(&st, 0, sizeof(st));
    memset(&v, 0, sizeof(v));
    st.status = DISCOVER_UNKNOWN;
    r.text[0] = '\0';
    ar = address_domain(rcpt, domain, sizeof(domain), &err);
    if (!runtime_in_scope(cfg, s->auth, s->non_smtpd, NULL)) {
        what = "untouched";
        why = "the session is not in scope (act_on)";
    } else if (ar == ADDRESS_INVALID) {
        a = runtime_unreadable_action(rt, s->sender, s->auth);
        what = verdict_action_name(a);
        why = err.msg;
        runtime_reply(rt, a, "the recipient address could not be read", &r);
    } else if (ar != ADDRESS_OK) {
        what = "untouched";
        why = ar == ADDRESS_NULL ? "null address" : "no domain (local name or address literal)";
    } else if (runtime_is_local_domain(cfg, domain)) {
        what = "untouched";
        why = "a local domain (local_domains)";
    } else {
        struct verdict_request req = {s->sender, s->auth, domain, s->mailer, s->host};

        verdict_for_recipient(&rt->vctx, &req, (int)cfg->rcpt_deadline_ms, &v, &st);
        a = v.action;
        what = verdict_action_name(a);
        why = v.reason;
        if (a != VERDICT_TAG)
            runtime_reply(rt, a, v.reason, &r);
    }
    refused = strcmp(what, "defer") == 0 || strcmp(what, "reject") == 0;
    if (refused && s->non_smtpd)
        what = "hold";
    if (refused && cfg->dry_run)
        why = v.reason;		/* the reason stands; only the action is not applied */

    json_object_set_new(o, "recipient", json_string(rcpt));
    json_object_set_new(o, "domain", ar == ADDRESS_OK ? json_string(domain) : json_null());
    json_object_set_new(o, "status", ar == ADDRESS_OK && strcmp(what, "untouched") != 0 ?
                        json_string(discover_status_name(st.status)) : json_null());
    json_object_set_new(o, "requirement", v.rule || strcmp(what, "untouched") != 0 ?
                        json_string(verdict_req_name(v.req)) : json_null());
    json_object_set_new(o, "verdict", strcmp(what, "untouched") != 0 && ar == ADDRESS_OK ?
                        json_string(verdict_outcome_name(v.outcome)) : json_null());
    json_object_set_new(o, "action", json_string(what));
    json_object_set_new(o, "dry_run", json_boolean(cfg->dry_run && refused));
    json_object_set_new(o, "rule", json_string(v.rule ? v.rule->where : "built-in default"));
    json_object_set_new(o, "reply", r.text[0] && !s->non_smtpd ?
                        json_sprintf("%s %s %s", r.rcode, r.xcode, r.text) : json_null());
    json_object_set_new(o, "reason", json_string(why));
    if (out_array != NULL) {
        json_array_append_new(out_array, o);
    } else {
        printf("%s: %s%s\n", rcpt, what, cfg->dry_run && refused ? " (dry run: not applied)" : "");
        if (ar == ADDRESS_OK && strcmp(what, "untouched") != 0)
            printf("  domain %s, status %s, requirement %s, verdict %s, rule %s\n", domain,
                   discover_status_name(st.status), verdict_req_name(v.req),
                   verdict_outcome_name(v.outcome), v.rule ? v.rule->where : "built-in default");
        if (r.text[0] && !s->non_smtpd)
            printf("  reply: %s %s %s\n", r.rcode, r.xcode, r.text);
        printf("  why: %s\n", why);
        json_decref(o);
    }
    discover_result_free(&st);
    return !refused || cfg->dry_run;
}

int
ctl_explain(int argc, char **argv)
{
    static const struct option opts[] = {
        {"json", no_argument, NULL, 'j'},      {"from", required_argument, NULL, 'f'},
        {"auth", required_argument, NULL, 'a'}, {"mailer", required_argument, NULL, 'm'},
        {"host", required_argument, NULL, 'H'}, {"non-smtpd", no_argument, NULL, 'n'},
        {"help", no_argument, NULL, 'h'},      {NULL, 0, NULL, 0},
    };
    struct session s = {"", NULL, NULL, NULL, false};
    struct runtime *rt;
    struct mts_err err;
    bool json = false, all_ok = true;
    json_t *arr = NULL;
    int c;

    optind = 1;
    while ((c = getopt_long(argc, argv, "+jf:a:m:H:nh", opts, NULL)) != -1) {
        switch (c) {
        case 'j':
            json = true;
            break;
        case 'f':
            s.sender = optarg;
            break;
        case 'a':
            s.auth = optarg;
            break;
        case 'm':
            s.mailer = optarg;
            break;
        case 'H':
            s.host = optarg;
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
    if (json)
        arr = json_array();
    for (int i = optind; i < argc; i++)
        all_ok &= explain_one(rt, &s, argv[i], arr);
    if (json) {
        ctl_print_json(arr);
        json_decref(arr);
    }
    runtime_unref_wait(rt);
    return all_ok ? CTL_EXIT_OK : CTL_EXIT_INVALID;
}
