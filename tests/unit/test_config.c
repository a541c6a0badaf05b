/*
 * test_config - the configuration file parser: defaults, units, bounds,
 * and errors that name the file, the line and the option.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include <cmocka.h>

#include "action.h"
#include "config.h"

/* Writes text to a fresh temporary file; returns its path (static buffer). */
static const char *
write_conf(const char *text)
{
    static char path[64];
    int fd;

    snprintf(path, sizeof(path), "/tmp/mts-conf-XXXXXX");
    fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    return path;
}

/* Loads text and expects failure with every fragment present in the reason. */
static void
expect_error(const char *text, const char *frag1, const char *frag2)
{
    const char *path = write_conf(text);
    struct config *cfg = NULL;
    struct mts_err err = {""};

    assert_int_equal(config_load(path, &cfg, &err), -1);
    assert_null(cfg);
    assert_non_null(strstr(err.msg, path));
    if (frag1 != NULL && strstr(err.msg, frag1) == NULL)
        fail_msg("reason \"%s\" lacks \"%s\"", err.msg, frag1);
    if (frag2 != NULL && strstr(err.msg, frag2) == NULL)
        fail_msg("reason \"%s\" lacks \"%s\"", err.msg, frag2);
    unlink(path);
}

static struct config *
load_ok(const char *text)
{
    const char *path = write_conf(text);
    struct config *cfg = NULL;
    struct mts_err err = {""};

    if (config_load(path, &cfg, &err) != 0)
        fail_msg("unexpected error: %s", err.msg);
    unlink(path);
    return cfg;
}

static void
defaults(void **state)
{
    struct config *cfg;
    struct mts_err err;

    assert_int_equal(config_load(NULL, &cfg, &err), 0);
    assert_string_equal(cfg->resolv_conf, "/etc/resolv.conf");
    assert_string_equal(cfg->trust_anchor, "/usr/share/dns/root.key");
    assert_string_equal(cfg->ca_file, "");
    assert_int_equal(cfg->check_interval, 3600);
    assert_int_equal(cfg->fetch_retry_interval, 300);
    assert_int_equal(cfg->fetch_timeout_ms, 20000);
    assert_int_equal(cfg->unused_ttl, 90 * 86400);
    assert_non_null(strstr(cfg->cache_db, "cache.sqlite"));
    config_unref(cfg);
}

static void
map_options(void **state)
{
    struct config *cfg = load_ok("");

    (void)state;
    assert_string_equal(cfg->map_socket, "");
    assert_int_equal(cfg->map_deadline_ms, 10000);
    assert_int_equal(cfg->map_max_clients, 256);
    assert_int_equal(cfg->map_workers, 4);
    assert_int_equal(cfg->map_tlsrpt, 0);
    assert_int_equal(cfg->map_transports.n, 1);
    assert_string_equal(cfg->map_transports.v[0], "auto");
    assert_string_equal(cfg->map_postfix_config, "");
    assert_int_equal(cfg->map_unknown, CONFIG_MAP_UNKNOWN_TEMP);
    assert_int_equal(cfg->map_unknown_except.n, 0);
    config_unref(cfg);
    cfg = load_ok("map_unknown = notfound\nmap_unknown_except = bank.example, *.gov.example\n");
    assert_int_equal(cfg->map_unknown, CONFIG_MAP_UNKNOWN_NOTFOUND);
    assert_int_equal(cfg->map_unknown_except.n, 2);
    assert_string_equal(cfg->map_unknown_except.v[1], "*.gov.example");
    config_unref(cfg);
    expect_error("map_unknown = defer\n", "map_unknown", "\"defer\" is not temp or notfound");
    cfg = load_ok("map_socket = unix:/run/m/map.sock\nmap_deadline_ms = 1500ms\n"
                  "map_max_clients = 10\nmap_workers = 2\nmap_tlsrpt = yes\n"
                  "map_transports = smtp, relay\nmap_postfix_config = /etc/postfix-out\n");
    assert_string_equal(cfg->map_socket, "unix:/run/m/map.sock");
    assert_int_equal(cfg->map_deadline_ms, 1500);
    assert_int_equal(cfg->map_max_clients, 10);
    assert_int_equal(cfg->map_workers, 2);
    assert_int_equal(cfg->map_tlsrpt, 1);
    assert_int_equal(cfg->map_transports.n, 2);
    assert_string_equal(cfg->map_transports.v[1], "relay");
    assert_string_equal(cfg->map_postfix_config, "/etc/postfix-out");
    config_unref(cfg);
}

static void
values_and_units(void **state)
{
    struct config *cfg = load_ok("# comment\n\n"
                                 "cache_db = /tmp/x.sqlite   # trailing comment\n"
                                 "check_interval = 2h\n"
                                 "absent_ttl = 90\n"
                                 "fetch_retry_interval = 10m\n"
                                 "unused_ttl = 30d\n"
                                 "dns_timeout_ms = 2s\n"
                                 "fetch_timeout_ms = 1500ms\n"
                                 "fetch_connect_timeout_ms=700\n"
                                 "\tlookup_workers\t=\t4\t\n"
                                 "resolv_conf = none\n"
                                 "log_facility = local3\n"
                                 "log_level = debug\n");
    assert_string_equal(cfg->cache_db, "/tmp/x.sqlite");
    assert_int_equal(cfg->check_interval, 7200);
    assert_int_equal(cfg->absent_ttl, 90);
    assert_int_equal(cfg->fetch_retry_interval, 600);
    assert_int_equal(cfg->unused_ttl, 30 * 86400);
    assert_int_equal(cfg->dns_timeout_ms, 2000);
    assert_int_equal(cfg->fetch_timeout_ms, 1500);
    assert_int_equal(cfg->fetch_connect_timeout_ms, 700);
    assert_int_equal(cfg->lookup_workers, 4);
    assert_string_equal(cfg->resolv_conf, "none");
    assert_int_equal(cfg->log_facility, LOG_LOCAL3);
    assert_int_equal(cfg->log_level, LOG_DEBUG);
    config_unref(cfg);
}

static void
empty_string_value(void **state)
{
    struct config *cfg = load_ok("ca_file =\n");
    assert_string_equal(cfg->ca_file, "");
    config_unref(cfg);
}

static void
unknown_option(void **state)
{
    expect_error("check_interval = 1h\ncheck_intervall = 2h\n", ":2:", "check_intervall");
}

static void
repeated_option(void **state)
{
    expect_error("absent_ttl = 1\nabsent_ttl = 2\n", ":2:", "more than once");
}

static void
below_minimum(void **state)
{
    expect_error("check_interval = 59\n", "check_interval", "out of bounds");
}

static void
above_maximum(void **state)
{
    expect_error("lookup_workers = 257\n", "lookup_workers", "out of bounds");
}

/* The lookup engine's fairness options: defaults, bounds, 0 = no cap. */
static void
lookup_fairness_options(void **state)
{
    struct config *cfg = load_ok("");

    assert_int_equal(cfg->lookup_workers_max, 256);
    assert_int_equal(cfg->refresh_workers, 2);
    assert_int_equal(cfg->lookups_per_sender, 64);
    assert_int_equal(cfg->lookups_per_connection, 4);
    config_unref(cfg);
    cfg = load_ok("lookups_per_sender = 0\nlookups_per_connection = 0\nrefresh_workers = 1\n");
    assert_int_equal(cfg->lookups_per_sender, 0);
    assert_int_equal(cfg->lookups_per_connection, 0);
    assert_int_equal(cfg->refresh_workers, 1);
    config_unref(cfg);
    expect_error("refresh_workers = 0\n", "refresh_workers", "out of bounds");
    expect_error("lookups_per_sender = 100001\n", "lookups_per_sender", "out of bounds");
    expect_error("lookup_workers_max = 1025\n", "lookup_workers_max", "out of bounds");
    cfg = load_ok("probe_allow_networks = 127.0.0.0/8, fd00::/8\n");
    assert_int_equal(cfg->probe_allow_networks.n, 2);
    config_unref(cfg);
    expect_error("probe_allow_networks = 127.0.0.1/8\n", "probe_allow_networks",
                 "bits set after the prefix");
    expect_error("probe_allow_networks = intranet\n", "probe_allow_networks", "not a network");
}

static void
wrong_unit_seconds(void **state)
{
    expect_error("check_interval = 5ms\n", "check_interval", "unit");
}

static void
wrong_unit_millis(void **state)
{
    expect_error("dns_timeout_ms = 1h\n", "dns_timeout_ms", "unit");
}

static void
not_a_number(void **state)
{
    expect_error("absent_ttl = soon\n", "absent_ttl", "not a number");
}

static void
negative_number(void **state)
{
    expect_error("absent_ttl = -5\n", "absent_ttl", "not a number");
}

static void
huge_number(void **state)
{
    expect_error("absent_ttl = 99999999999999999999\n", "absent_ttl", "out of range");
}

static void
no_equals(void **state)
{
    expect_error("absent_ttl 5\n", ":1:", "option = value");
}

static void
bad_facility(void **state)
{
    expect_error("log_facility = kern\n", "log_facility", "\"kern\" is not mail, daemon, user, local0");
}

static void
bad_level(void **state)
{
    expect_error("log_level = loud\n", "log_level",
                 "\"loud\" is not error, warning, notice, info or debug");
}

static void
bad_internal_error_action(void **state)
{
    expect_error("on_internal_error = bounce\n", "on_internal_error",
                 "\"bounce\" is not tag, defer or reject");
}

static void
bad_act_on(void **state)
{
    expect_error("act_on = authenticated, everyone\n", "act_on",
                 "\"everyone\" is not all, authenticated, non-smtpd or daemon:NAME");
    expect_error("act_on = daemon:\n", "act_on", "daemon:NAME");
}

static void
enums_parsed_at_load(void **state)
{
    struct config *cfg = load_ok("on_internal_error = reject\n"
                              "act_on = non-smtpd daemon:submission, daemon:smtps\n");

    assert_int_equal(cfg->on_internal_error, VERDICT_REJECT);
    assert_int_equal(cfg->act_on_flags, CONFIG_ACT_ON_NON_SMTPD);
    assert_int_equal(cfg->act_on_daemons.n, 2);
    assert_string_equal(cfg->act_on_daemons.v[0], "submission");
    assert_string_equal(cfg->act_on_daemons.v[1], "smtps");
    config_unref(cfg);
    cfg = load_ok("");
    assert_int_equal(cfg->on_internal_error, VERDICT_DEFER);
    assert_int_equal(cfg->act_on_flags, CONFIG_ACT_ON_AUTHENTICATED | CONFIG_ACT_ON_NON_SMTPD);
    assert_int_equal(cfg->act_on_daemons.n, 0);
    assert_int_equal(cfg->log_level, LOG_INFO);
    config_unref(cfg);
}

static void
overlong_line(void **state)
{
    char *text = malloc(10000);

    memset(text, 'a', 9998);
    text[9998] = '\n';
    text[9999] = '\0';
    expect_error(text, ":1:", "longer than");
    free(text);
}

static void
missing_file(void **state)
{
    struct config *cfg = NULL;
    struct mts_err err;

    assert_int_equal(config_load("/nonexistent/mtasts.conf", &cfg, &err), -1);
    assert_null(cfg);
    assert_non_null(strstr(err.msg, "/nonexistent/mtasts.conf"));
    assert_non_null(strstr(err.msg, "No such file"));
}

static void
references(void **state)
{
    struct config *cfg = load_ok("absent_ttl = 7\n");

    assert_ptr_equal(config_ref(cfg), cfg);
    assert_int_equal(cfg->refs, 2);
    config_unref(cfg);
    assert_int_equal(cfg->absent_ttl, 7);	/* still alive: one reference left */
    config_unref(cfg);
}

static void
count_line(const char *line, void *arg)
{
    int *n = arg;

    assert_non_null(strstr(line, " ="));
    (*n)++;
}

static void
dump_lists_every_option(void **state)
{
    struct config *cfg = load_ok("");
    int n = 0;

    config_dump(cfg, count_line, &n);
    assert_int_equal(n, 87);
    config_unref(cfg);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(defaults),
        cmocka_unit_test(values_and_units),
        cmocka_unit_test(empty_string_value),
        cmocka_unit_test(unknown_option),
        cmocka_unit_test(repeated_option),
        cmocka_unit_test(below_minimum),
        cmocka_unit_test(above_maximum),
        cmocka_unit_test(wrong_unit_seconds),
        cmocka_unit_test(wrong_unit_millis),
        cmocka_unit_test(not_a_number),
        cmocka_unit_test(negative_number),
        cmocka_unit_test(huge_number),
        cmocka_unit_test(no_equals),
        cmocka_unit_test(lookup_fairness_options),
        cmocka_unit_test(bad_facility),
        cmocka_unit_test(bad_level),
        cmocka_unit_test(bad_internal_error_action),
        cmocka_unit_test(bad_act_on),
        cmocka_unit_test(enums_parsed_at_load),
        cmocka_unit_test(overlong_line),
        cmocka_unit_test(missing_file),
        cmocka_unit_test(references),
        cmocka_unit_test(dump_lists_every_option),
        cmocka_unit_test(map_options),
    };
    return cmocka_run_group_tests_name("config", tests, NULL, NULL);
}
