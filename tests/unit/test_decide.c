/*
 * test_decide - the milter and `mtasts-ctl explain` decide alike: every
 * case goes through both paths, and what the milter does must be what
 * explain says.
 *
 * The milter path: the libmilter callbacks of milter/filter.c, driven in
 * process with the fakes of milter_harness (negotiate, connect, MAIL
 * FROM, RCPT TO, end of message, close). What it did: the SMFIS code of
 * RCPT TO, the reply (code, enhanced code, text), the tag header and the
 * hold at end of message.
 *
 * The explain path: ctl_explain_one(), the function `mtasts-ctl explain
 * --json` runs for each recipient, under the same runtime (the same
 * configuration and cache). What it says: the JSON object it prints.
 *
 * The equivalence, per case:
 *	applied = explain's action, or tag when explain says dry_run
 *	RCPT TO	 reject -> SMFIS_REJECT, defer -> SMFIS_TEMPFAIL,
 *		 anything else -> SMFIS_CONTINUE
 *	reply	 exactly explain's "reply" (code, enhanced code, text) when
 *		 applied is defer or reject, else no reply at all
 *	hold	 a quarantine naming the domain exactly when applied is hold
 *	tag	 a tag header exactly when explain judged a domain (verdict
 *		 not null) and applied is tag or hold, with explain's
 *		 domain, status, requirement, verdict, action and dry run
 *
 * The cases: every configuration x session x recipient x route below
 * (6 x 4 x 16 x 2 = 768), covering in / out of scope (act_on
 * authenticated, non-smtpd, all, daemon:NAME), local domains, null,
 * local-name, literal and unreadable addresses, dry run, non-SMTP hold,
 * every status (enforce pass / MX mismatch / TXT gone, testing, none,
 * absent, failed, unknown, and absent learnt now), requirements none and
 * mta-sts, enforcing and non-enforcing routes, rules with fail= and
 * unknown= actions, and configured reply codes. Each case is its own
 * cmocka test, so the summary counts them; half the cases ask explain
 * first, half the milter first, so that neither path leans on what the
 * other left in the cache.
 */
#include "unit.h"

#include <stdbool.h>

#include <jansson.h>

#include "ctl.h"
#include "decide.h"
#include "milter_harness.h"
#include "runtime.h"

/* ctl_explain.c is linked in; these come from mtasts-ctl.c, not used here. */
const char *
ctl_config_path(void)
{
    return NULL;
}

void
ctl_print_json(json_t *value)
{
    (void)value;
}

/* ================================================================ the cases */

struct conf {
    const char *label;
    const char *text;		/* appended to the harness's base configuration */
};

static const struct conf confs[] = {
    {"defaults", NULL},
    {"dry run", "dry_run = yes\n"},
    {"rules",
     "rule = rcpt=mismatch.example require=mta-sts fail=tag\n"
     "rule = rcpt=enforce.example require=mta-sts fail=reject\n"
     "rule = rcpt=unknown.example require=mta-sts unknown=tag\n"
     "rule = rcpt=testing.example require=none\n"
     "rule = rcpt=failed.example require=mta-sts fail=reject unknown=reject\n"
     "rule = auth=* require=mta-sts unknown=reject\n"
     "rule = auth=- require=mta-sts unknown=tag\n"},
    {"act_on all, local domains, reply codes",
     "act_on = all\n"
     "local_domains = local.test, Testing.EXAMPLE\n"
     "defer_reply = 451 4.7.1\n"
     "reject_reply = 554 5.7.1\n"},
    {"act_on daemon, relay enforcing",
     "act_on = daemon:submission\n"
     "enforcing_relays = relay.example\n"},
    {"dry run with rules",
     "dry_run = yes\n"
     "act_on = all\n"
     "rule = rcpt=*.example require=mta-sts fail=reject unknown=reject\n"},
};

struct session {
    const char *label;
    enum peer peer;
    const char *auth;		/* {auth_authen} */
    const char *daemon;		/* {daemon_name} */
    bool non_smtpd;		/* what the peer means: explain's --non-smtpd */
};

static const struct session sessions[] = {
    {"authenticated", PEER_TCP, AUTH_USER, NULL, false},
    {"anonymous smtpd", PEER_TCP, NULL, "smtpd", false},
    {"anonymous submission", PEER_TCP, NULL, "submission", false},
    {"non-SMTP", PEER_PORT0, NULL, NULL, true},
};

static const char *const rcpts[] = {
    "<bob@enforce.example>",
    "<bob@mismatch.example>",
    "<bob@mismatchnx.example>",
    "<Bob@WILD.example>",
    "<bob@implicit.example>",
    "<bob@testing.example>",
    "<bob@none.example>",
    "<bob@absent.example>",
    "<bob@failed.example>",
    "<bob@unknown.example>",
    "<bob@B\xc3\x9c" "CHER.example>",
    "<bob@local.test>",
    "<postmaster>",
    "<bob@[192.0.2.1]>",
    "<broken@",
    "<>",
};

struct route {
    const char *label;
    const char *mailer, *host;
};

static const struct route routes[] = {
    {"smtp", "smtp", "x.example"},
    {"relay", "relay", "[relay.example]:587"},
};

#define N_CASES (N_ROWS(confs) * N_ROWS(sessions) * N_ROWS(rcpts) * N_ROWS(routes))

struct equiv_case {
    const char *label;
    const struct conf *conf;
    const struct session *session;
    const char *rcpt;
    const struct route *route;
    bool explain_first;
};

static struct equiv_case cases[N_CASES];
static char labels[N_CASES][UNIT_NAME_MAX - 16];

/* ================================================================ the two paths */

static const struct conf *world_conf;	/* the configuration of the world up */

/* What the cases covered, printed at the end: explain's actions. */
static const char *const tally_names[] = {"untouched", "tag", "defer", "reject", "hold"};
static size_t tally[N_ROWS(tally_names)], tally_dry, tally_replies;

static void
count(const char *action, bool dry, bool replied)
{
    for (size_t i = 0; i < N_ROWS(tally_names); i++)
        if (strcmp(action, tally_names[i]) == 0)
            tally[i]++;
    tally_dry += dry;
    tally_replies += replied;
}

static void
world_for(const struct conf *conf)
{
    if (world_conf == conf)
        return;
    world_end();
    world_start(conf->text);
    world_conf = conf;
}

/* explain's JSON object for the case (the caller decrefs it). */
static json_t *
explain(const struct equiv_case *c)
{
    struct runtime *rt = runtime_current();
    struct decide_session s = {"alice@sender.example", c->session->auth, c->session->daemon,
                               c->session->non_smtpd, NULL, false, NULL};
    json_t *arr = json_array(), *o;

    assert_non_null(rt);
    ctl_explain_one(rt, &s, c->route->mailer, c->route->host, c->rcpt, arr);
    runtime_unref(rt);
    assert_int_equal(json_array_size(arr), 1);
    o = json_incref(json_array_get(arr, 0));
    json_decref(arr);
    return o;
}

/* One message through the callbacks; the calls stay recorded. */
static sfsistat
milter(const struct equiv_case *c)
{
    sfsistat rc;

    forget_calls();
    session_open(0, c->session->peer);
    set_macro(0, "{daemon_name}", c->session->daemon);
    expect_rc(mail_from(0, SENDER, c->session->auth, "QID1"), SMFIS_CONTINUE, "envfrom");
    rc = rcpt_to(0, c->rcpt, c->route->mailer, c->route->host);
    expect_rc(end_of_message(0), SMFIS_CONTINUE, "eom");
    expect_rc(close_conn(0), SMFIS_CONTINUE, "close");
    return rc;
}

static const char *
field(json_t *o, const char *name)
{
    json_t *v = json_object_get(o, name);

    if (v == NULL)
        fail_msg("explain printed no \"%s\"", name);
    return json_is_null(v) ? NULL : json_string_value(v);
}

static void
expect_same_reply(json_t *o, bool refused)
{
    const char *want = field(o, "reply");
    const struct call *got = nth_call(0, CALL_SETREPLY, 0);
    char line[64 + 16 + TEXT_MAX + 2];

    if (!refused) {
        if (got != NULL)
            fail_msg("the milter replied \"%s %s %s\"; explain says %s, no reply", got->name,
                     got->xcode, got->text, field(o, "action"));
        return;
    }
    if (got == NULL || want == NULL)
        fail_msg("reply: milter %s, explain \"%s\"", got ? got->text : "(none)",
                 want ? want : "(none)");
    assert_int_equal(count_calls(0, CALL_SETREPLY), 1);
    snprintf(line, sizeof(line), "%s %s %s", got->name, got->xcode, got->text);
    assert_string_equal(line, want);
}

static void
expect_same_hold(json_t *o, bool held)
{
    const struct call *q = nth_call(0, CALL_QUARANTINE, 0);
    const char *domain = field(o, "domain");
    char prefix[300];

    if (!held) {
        if (q != NULL)
            fail_msg("the milter held the message (\"%s\"); explain says %s", q->text,
                     field(o, "action"));
        return;
    }
    if (q == NULL)
        fail_msg("explain says hold; the milter did not hold the message");
    snprintf(prefix, sizeof(prefix), "MTA-STS: %s: ", domain ? domain : "recipient");
    if (strncmp(q->text, prefix, strlen(prefix)) != 0)
        fail_msg("hold reason \"%s\" does not start with \"%s\"", q->text, prefix);
}

static void
expect_same_tag(json_t *o, const char *applied)
{
    const struct call *t = nth_call(0, CALL_INSHEADER, 0);
    bool tagged = field(o, "verdict") != NULL &&
                  (strcmp(applied, "tag") == 0 || strcmp(applied, "hold") == 0);
    bool dry = json_is_true(json_object_get(o, "dry_run"));
    char head[400], tail[300];

    assert_int_equal(count_calls(0, CALL_INSHEADER), tagged ? 1 : 0);
    if (!tagged)
        return;
    snprintf(head, sizeof(head), "domain=%s; status=%s", field(o, "domain"),
             field(o, "status"));
    snprintf(tail, sizeof(tail), "; requirement=%s; verdict=%s; action=%s%s%s%s",
             field(o, "requirement"), field(o, "verdict"), field(o, "action"),
             dry ? "; dry-run=yes" : "", field(o, "tls") ? "; tls=" : "",
             field(o, "tls") ? field(o, "tls") : "");
    if (strncmp(t->text, head, strlen(head)) != 0 || strlen(t->text) < strlen(tail) ||
        strcmp(t->text + strlen(t->text) - strlen(tail), tail) != 0)
        fail_msg("tag \"%s\", explain \"%s ...%s\"", t->text, head, tail);
}

static void
run_case(void **state)
{
    const struct equiv_case *c = *state;
    json_t *o;
    const char *action, *applied;
    sfsistat rc, want;

    world_for(c->conf);
    if (c->explain_first) {
        o = explain(c);
        rc = milter(c);
    } else {
        rc = milter(c);
        o = explain(c);
    }
    action = field(o, "action");
    assert_non_null(action);
    applied = json_is_true(json_object_get(o, "dry_run")) ? "tag" : action;
    want = strcmp(applied, "reject") == 0 ? SMFIS_REJECT :
           strcmp(applied, "defer") == 0 ? SMFIS_TEMPFAIL : SMFIS_CONTINUE;
    expect_rc(rc, want, "envrcpt");
    expect_same_reply(o, want != SMFIS_CONTINUE);
    expect_same_hold(o, strcmp(applied, "hold") == 0);
    expect_same_tag(o, applied);
    count(action, applied != action, want != SMFIS_CONTINUE);
    json_decref(o);
}

/* ================================================================ main */

static struct CMUnitTest tests[N_CASES];
static char test_names[N_CASES][UNIT_NAME_MAX];

static int
case_teardown(void **state)
{
    return unit_scratch_free(state);
}

static int
all_teardown(void **state)
{
    fprintf(stderr, "test_decide: explain said");
    for (size_t i = 0; i < N_ROWS(tally_names); i++)
        fprintf(stderr, " %s %zu,", tally_names[i], tally[i]);
    fprintf(stderr, " of which %zu in a dry run; the milter replied %zu times\n", tally_dry,
            tally_replies);
    world_end();
    return group_teardown(state);
}

int
main(void)
{
    struct unit_list list = { tests, test_names, N_CASES, 0, case_teardown };
    size_t n = 0;

    for (size_t k = 0; k < N_ROWS(confs); k++)
        for (size_t s = 0; s < N_ROWS(sessions); s++)
            for (size_t r = 0; r < N_ROWS(rcpts); r++)
                for (size_t w = 0; w < N_ROWS(routes); w++, n++) {
                    struct equiv_case *c = &cases[n];

                    snprintf(labels[n], sizeof(labels[n]), "%s / %s / %s / %s",
                             confs[k].label, sessions[s].label, rcpts[r], routes[w].label);
                    *c = (struct equiv_case){labels[n], &confs[k], &sessions[s], rcpts[r],
                                             &routes[w], n % 2 == 1};
                    unit_add(&list, "milter = explain", c->label, run_case, c);
                }
    if (list.n != N_CASES) {
        fprintf(stderr, "test_decide: %zu cases registered, %zu expected\n", list.n,
                (size_t)N_CASES);
        return 2;
    }
    fprintf(stderr, "test_decide: %zu cases, each through the milter and explain\n", list.n);
    return cmocka_run_group_tests(tests, group_setup, all_teardown);
}
