/*
 * test_maproute - which transports enforce through this daemon's map.
 *
 * Tables:
 *	parse_cases	maproute_parse: postconf -h / -F / -xP output -> transports
 *	route_cases	verdict_route_enforces with map transports: the next hop
 *			must be the recipient domain
 *	dane_cases	maproute_parse: main.cf's and -o's smtp_dns_support_level
 *			and smtp_tls_security_level -> transports enforcing DANE
 *	dane_route_cases verdict_route_enforces_dane
 */
#include "unit.h"

#include <unistd.h>

#include "config.h"
#include "maproute.h"
#include "verdict.h"

/* postconf -F lines of a Debian master.cf (only those the parser reads, plus noise). */
#define FIELDS_DEBIAN                                      \
    "smtp/inet/chroot = y\n"                               \
    "smtp/inet/command = smtpd\n"                          \
    "pickup/unix/chroot = y\n"                             \
    "pickup/unix/command = pickup\n"                       \
    "smtp/unix/service = smtp\n"                           \
    "smtp/unix/type = unix\n"                              \
    "smtp/unix/chroot = y\n"                               \
    "smtp/unix/command = smtp\n"                           \
    "relay/unix/chroot = y\n"                              \
    "relay/unix/command = smtp\n"                          \
    "lmtp/unix/chroot = y\n"                               \
    "lmtp/unix/command = lmtp\n"                           \
    "local/unix/chroot = n\n"                              \
    "local/unix/command = local\n"

#define FIELDS_NOCHROOT                                    \
    "smtp/unix/chroot = n\n"                               \
    "smtp/unix/command = smtp\n"                           \
    "relay/unix/chroot = -\n"                              \
    "relay/unix/command = smtp -v\n"                       \
    "mtasts/unix/chroot = n\n"                             \
    "mtasts/unix/command = smtp\n"                         \
    "local/unix/chroot = n\n"                              \
    "local/unix/command = local"

#define Q "/var/spool/postfix"

struct parse_case {
    const char *label;
    const char *map_socket;
    const char *main_maps;
    const char *fields;
    const char *params;
    const char *want;		/* maproute_describe() */
    const char *note;		/* a substring of the notes, NULL: no notes */
};

static const struct parse_case parse_cases[] = {
    { "no Postfix map at all", "unix:/run/m/map.sock", "", FIELDS_NOCHROOT, "", "none", NULL },
    { "main.cf map, unchrooted: every smtp service", "unix:/run/m/map.sock",
      "socketmap:unix:/run/m/map.sock:postfix", FIELDS_NOCHROOT, "", "smtp, relay, mtasts",
      NULL },
    { "any map name will do", "unix:/run/m/map.sock", "socketmap:unix:/run/m/map.sock:sts",
      FIELDS_NOCHROOT, "", "smtp, relay, mtasts", NULL },
    { "another path is not ours", "unix:/run/m/map.sock",
      "socketmap:unix:/run/m/other.sock:postfix", FIELDS_NOCHROOT, "", "none", NULL },
    { "a longer path is not ours", "unix:/run/m/map.sock",
      "socketmap:unix:/run/m/map.sock2:postfix", FIELDS_NOCHROOT, "", "none", NULL },
    { "chrooted smtp: path inside the queue directory", "unix:" Q "/mtasts/map.sock",
      "socketmap:unix:/mtasts/map.sock:postfix", FIELDS_DEBIAN, "", "smtp, relay", NULL },
    { "chrooted smtp: the outside path does not reach it", "unix:/run/m/map.sock",
      "socketmap:unix:/run/m/map.sock:postfix", FIELDS_DEBIAN, "", "none", NULL },
    { "master.cf -o override: only that service", "unix:/run/m/map.sock",
      "hash:/etc/postfix/tls_policy", FIELDS_NOCHROOT,
      "mtasts/unix/syslog_name = postfix/mtasts\n"
      "mtasts/unix/smtp_tls_policy_maps = socketmap:unix:/run/m/map.sock:postfix\n",
      "mtasts", NULL },
    { "master.cf -o override removes the map", "unix:/run/m/map.sock",
      "socketmap:unix:/run/m/map.sock:postfix", FIELDS_NOCHROOT,
      "relay/unix/smtp_tls_policy_maps =\n", "smtp, mtasts", NULL },
    { "ours after another map: not counted, noted", "unix:/run/m/map.sock",
      "hash:/etc/postfix/tls_policy, socketmap:unix:/run/m/map.sock:postfix",
      "smtp/unix/command = smtp\n", "", "none",
      "smtp: hash:/etc/postfix/tls_policy comes before" },
    { "ours first, another after: counted", "unix:/run/m/map.sock",
      "socketmap:unix:/run/m/map.sock:postfix,hash:/etc/postfix/tls_policy",
      "smtp/unix/command = smtp\n", "", "smtp", NULL },
    { "inet map", "inet:8461@127.0.0.1", "socketmap:inet:127.0.0.1:8461:postfix",
      "smtp/unix/command = smtp\n", "", "smtp", NULL },
    { "inet map, another port", "inet:8461@127.0.0.1", "socketmap:inet:127.0.0.1:8462:postfix",
      "smtp/unix/command = smtp\n", "", "none", NULL },
    { "inet map, another host", "inet:8461@127.0.0.1", "socketmap:inet:127.0.0.2:8461:postfix",
      "smtp/unix/command = smtp\n", "", "none", NULL },
    { "unix map_socket, inet map", "unix:/run/m/map.sock",
      "socketmap:inet:127.0.0.1:8461:postfix", "smtp/unix/command = smtp\n", "", "none", NULL },
    { "garbage lines are skipped", "unix:/run/m/map.sock",
      "socketmap:unix:/run/m/map.sock:postfix",
      "postconf: warning: something\n/unix/command = smtp\nx//command = smtp\n"
      "smtp/unix/command = smtp\nnoslash\n", "junk = 1\n", "smtp", NULL },
    { "map word without a name", "unix:/run/m/map.sock", "socketmap:unix:/run/m/map.sock",
      "smtp/unix/command = smtp\n", "", "none", NULL },
};

static void
run_parse_case(void **state)
{
    const struct parse_case *c = *state;
    struct maproute r;
    struct maproute_input in = {
        c->map_socket, Q, unit_str_new(c->main_maps), unit_str_new(c->fields),
        unit_str_new(c->params), false, NULL, NULL
    };
    struct mts_err err;
    char got[256];

    memset(&r, 0, sizeof(r));
    if (maproute_parse(&in, &r, &err) != 0)
        fail_msg("maproute_parse: %s", err.msg);
    maproute_describe(&r, got, sizeof(got));
    if (c->note == NULL && r.notes[0] != '\0')
        fail_msg("unexpected notes: %s", r.notes);
    if (c->note != NULL && strstr(r.notes, c->note) == NULL)
        fail_msg("notes \"%s\" do not say \"%s\"", r.notes, c->note);
    maproute_free(&r);
    assert_string_equal(got, c->want);
}

/* ------------------------------------------------------------ route */

struct route_case {
    const char *label;
    const char *mailer, *host, *rcpt_domain;
    bool want;
};

static const struct route_case route_cases[] = {
    { "map transport, next hop the domain", "smtp", "enforce.example", "enforce.example", true },
    { "map transport, next hop in another case", "smtp", "Enforce.Example",
      "enforce.example", true },
    { "map transport, next hop not sent", "smtp", "", "enforce.example", true },
    { "map transport, any case", "SMTP", "enforce.example", "enforce.example", true },
    { "map transport through a relay: the map is asked about the relay", "smtp",
      "[relay.example]:587", "enforce.example", false },
    { "map transport, [domain]: asked about the domain", "smtp", "[enforce.example]",
      "enforce.example", true },
    { "map transport, next hop fully qualified (Sendmail after DNS)", "esmtp",
      "enforce.example.", "enforce.example", true },
    { "map transport, next hop fully qualified in another case", "smtp", "ENFORCE.example.",
      "enforce.example", true },
    { "map transport, [domain.]: asked about the domain", "smtp", "[enforce.example.]",
      "enforce.example", true },
    { "map transport, two trailing dots: not the domain", "smtp", "enforce.example..",
      "enforce.example", false },
    { "map transport, a dot alone: not the domain", "smtp", ".", "enforce.example", false },
    { "map transport, another domain fully qualified", "smtp", "other.example.",
      "enforce.example", false },
    { "another transport", "relay", "enforce.example", "enforce.example", false },
    { "no macros: the default route smtp is a map transport", NULL, NULL, "enforce.example",
      true },
};

static void
run_route_case(void **state)
{
    const struct route_case *c = *state;
    struct config *cfg;
    struct mts_err err;
    struct maproute r;
    char desc[300];
    bool got;

    memset(&r, 0, sizeof(r));
    r.n = 2;
    r.name = (char *[]){"smtp", "esmtp"};
    if (config_defaults(&cfg, &err) != 0)
        fail_msg("config_defaults: %s", err.msg);
    got = verdict_route_enforces(cfg, &r, c->mailer, c->host, c->rcpt_domain, desc,
                                 sizeof(desc));
    config_unref(cfg);
    if (got != c->want)
        fail_msg("route \"%s\" %s, want %s", desc, got ? "enforces" : "does not enforce",
                 c->want ? "enforces" : "does not enforce");
}

/* ------------------------------------------------------------ DANE */

/* A master.cf with a plain smtp, a relay, a "dane" service with its own
 * levels, and lmtp (not smtp(8): never counted). */
#define FIELDS_DANE                                        \
    "smtp/unix/chroot = y\n"                               \
    "smtp/unix/command = smtp\n"                           \
    "relay/unix/chroot = y\n"                              \
    "relay/unix/command = smtp\n"                          \
    "dane/unix/chroot = n\n"                               \
    "dane/unix/command = smtp -o smtp_dns_support_level=dnssec\n" \
    "lmtp/unix/command = lmtp\n"

struct dane_case {
    const char *label;
    const char *main_dns, *main_level;	/* main.cf */
    const char *fields, *params;
    bool dane;				/* in.dane: asked to learn DANE */
    const char *want;			/* maproute_describe_dane() */
};

static const struct dane_case dane_cases[] = {
    { "main.cf dnssec + dane: every smtp service", "dnssec", "dane", FIELDS_DANE, "", true,
      "smtp, relay, dane" },
    { "main.cf dnssec + dane-only", "dnssec", "dane-only", FIELDS_DANE, "", true,
      "smtp, relay, dane" },
    { "dane without dnssec support: no DANE", "enabled", "dane", FIELDS_DANE, "", true,
      "none" },
    { "dane with no dns support level (default): no DANE", "", "dane", FIELDS_DANE, "", true,
      "none" },
    { "dnssec without a dane level: no DANE", "dnssec", "may", FIELDS_DANE, "", true, "none" },
    { "dnssec with secure: no DANE", "dnssec", "secure", FIELDS_DANE, "", true, "none" },
    { "a service's -o overrides both", "", "may", FIELDS_DANE,
      "dane/unix/smtp_dns_support_level = dnssec\n"
      "dane/unix/smtp_tls_security_level = dane\n", true, "dane" },
    { "-o level dane-only, main.cf dnssec", "dnssec", "may", FIELDS_DANE,
      "relay/unix/smtp_tls_security_level = dane-only\n", true, "relay" },
    { "-o turns DANE off for one service", "dnssec", "dane", FIELDS_DANE,
      "relay/unix/smtp_tls_security_level = encrypt\n"
      "dane/unix/smtp_dns_support_level = enabled\n", true, "smtp" },
    { "-o values with spaces around", "", "", FIELDS_DANE,
      "smtp/unix/smtp_dns_support_level =  dnssec \n"
      "smtp/unix/smtp_tls_security_level = dane \n", true, "smtp" },
    { "Postfix's own spelling only (DANE is not a level)", "dnssec", "DANE", FIELDS_DANE, "",
      true, "none" },
    { "a word that begins like dane: not dane", "dnssec", "danger", FIELDS_DANE, "", true,
      "none" },
    { "not asked (dane_transports without auto)", "dnssec", "dane", FIELDS_DANE, "", false,
      "none" },
    { "an -o of a service that is not smtp(8)", "", "", FIELDS_DANE,
      "lmtp/unix/smtp_dns_support_level = dnssec\n"
      "lmtp/unix/smtp_tls_security_level = dane\n", true, "none" },
};

static void
run_dane_case(void **state)
{
    const struct dane_case *c = *state;
    struct maproute r;
    struct maproute_input in = {
        "", Q, unit_str_new(""), unit_str_new(c->fields), unit_str_new(c->params), c->dane,
        unit_str_new(c->main_dns), unit_str_new(c->main_level)
    };
    struct mts_err err;
    char got[256], maps[256];

    memset(&r, 0, sizeof(r));
    if (maproute_parse(&in, &r, &err) != 0)
        fail_msg("maproute_parse: %s", err.msg);
    maproute_describe_dane(&r, got, sizeof(got));
    maproute_describe(&r, maps, sizeof(maps));
    maproute_free(&r);
    assert_string_equal(got, c->want);
    /* No map_socket: DANE levels never make a map transport. */
    assert_string_equal(maps, "none");
}

struct dane_route_case {
    const char *label;
    const char *mailer, *host, *rcpt_domain;
    bool map_answers;			/* the domain is MTA-STS enforce */
    bool want;
};

/* DANE transports: dane, smtp (also a map transport); map transports:
 * smtp; enforcing relay: relay.example. */
static const struct dane_route_case dane_route_cases[] = {
    { "DANE transport, next hop the domain", "dane", "dane.example", "dane.example", false,
      true },
    { "DANE transport, next hop not sent", "dane", "", "dane.example", false, true },
    { "DANE transport, any case, fully qualified", "DANE", "Dane.Example.", "dane.example",
      false, true },
    { "DANE transport, enforce domain: no map on it", "dane", "dane.example", "dane.example",
      true, true },
    { "DANE transport through a relay: DANE is the relay's", "dane", "[other.example]:25",
      "dane.example", false, false },
    { "DANE transport that is also a map transport, domain not enforce", "smtp",
      "dane.example", "dane.example", false, true },
    { "DANE + map transport, enforce domain: the map's secure replaces dane", "smtp",
      "dane.example", "dane.example", true, false },
    { "a transport without DANE", "relay", "dane.example", "dane.example", false, false },
    { "any transport through the enforcing relay", "relay", "[relay.example]:587",
      "dane.example", false, true },
    { "no macros: the default route smtp (DANE)", NULL, NULL, "dane.example", false, true },
};

static void
run_dane_route_case(void **state)
{
    const struct dane_route_case *c = *state;
    struct config *cfg;
    struct mts_err err;
    struct maproute r;
    struct config_list saved;
    bool got;

    memset(&r, 0, sizeof(r));
    r.n = 1;
    r.name = (char *[]){"smtp"};
    r.n_dane = 2;
    r.dane = (char *[]){"dane", "smtp"};
    if (config_defaults(&cfg, &err) != 0)
        fail_msg("config_defaults: %s", err.msg);
    saved = cfg->enforcing_relays;
    cfg->enforcing_relays.n = 1;
    cfg->enforcing_relays.v = (char *[]){"relay.example"};
    got = verdict_route_enforces_dane(cfg, &r, c->mailer, c->host, c->rcpt_domain,
                                      c->map_answers);
    cfg->enforcing_relays = saved;
    config_unref(cfg);
    if (got != c->want)
        fail_msg("route %s:%s %s DANE, want %s", c->mailer ? c->mailer : "(none)",
                 c->host ? c->host : "", got ? "enforces" : "does not enforce",
                 c->want ? "enforces" : "does not enforce");
}

/* ------------------------------------------------------------ singles */

static void
test_learn_defaults(void **state)
{
    struct config *cfg;
    struct mts_err err;
    struct maproute r;

    (void)state;
    if (config_defaults(&cfg, &err) != 0)
        fail_msg("config_defaults: %s", err.msg);
    /* The defaults: "auto", no map_socket: no map transport. dane_transports
     * = auto asks Postfix only where its main.cf is (a host with Postfix
     * installed): elsewhere postconf is not run and nothing is learnt. */
    if (access("/etc/postfix/main.cf", F_OK) != 0) {
        assert_int_equal(maproute_learn(cfg, &r, &err), 0);
        assert_false(r.asked_postfix);
        assert_int_equal(r.n_dane, 0);
    } else {
        (void)maproute_learn(cfg, &r, &err);
    }
    assert_int_equal(r.n, 0);
    assert_false(maproute_has(&r, "smtp"));
    assert_false(maproute_has(NULL, "smtp"));
    assert_false(maproute_has_dane(NULL, "smtp"));
    maproute_free(&r);
    config_unref(cfg);
}

/* ------------------------------------------------------------ main */

#define N_SINGLES 1
#define N_TESTS (N_ROWS(parse_cases) + N_ROWS(route_cases) + N_ROWS(dane_cases) + \
                 N_ROWS(dane_route_cases) + N_SINGLES)

static struct CMUnitTest maproute_tests[N_TESTS];
static char test_names[N_TESTS][UNIT_NAME_MAX];

int
main(void)
{
    struct unit_list list = { maproute_tests, test_names, N_TESTS, 0, NULL };
    const struct CMUnitTest singles[N_SINGLES] = {
        cmocka_unit_test(test_learn_defaults),
    };

    UNIT_ADD_TABLE(&list, "parse", parse_cases, run_parse_case);
    UNIT_ADD_TABLE(&list, "route", route_cases, run_route_case);
    UNIT_ADD_TABLE(&list, "dane", dane_cases, run_dane_case);
    UNIT_ADD_TABLE(&list, "dane_route", dane_route_cases, run_dane_route_case);
    unit_add_singles(&list, singles, N_SINGLES);
    if (list.n != N_TESTS) {
        fprintf(stderr, "test_maproute: %zu tests registered, %zu expected\n", list.n,
                (size_t)N_TESTS);
        return 2;
    }
    return cmocka_run_group_tests(maproute_tests, NULL, NULL);
}
