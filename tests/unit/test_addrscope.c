/*
 * test_addrscope - unit tests for common/addrscope.c: which addresses are
 * globally reachable, and lists of networks.
 *
 * Tables, one cmocka test per row:
 *	special_cases	addrscope_special: each special-purpose range (its
 *			first and last address where the edge matters), the
 *			global addresses beside them, IPv6 carrying IPv4
 *			(v4-mapped, NAT64, 6to4), text that is not an address
 *	parse_cases	addrscope_nets_parse: good lists and each error
 *	contain_cases	addrscope_nets_contain, v4-mapped forms included
 */
#include "unit.h"

#include <stdbool.h>

#include "addrscope.h"

struct special_case {
    const char *label;
    const char *address;
    const char *want; /* a word of the range's name; NULL: global */
};

static const struct special_case special_cases[] = {
    {"8.8.8.8 is global", "8.8.8.8", NULL},
    {"1.1.1.1 is global", "1.1.1.1", NULL},
    {"0.0.0.0: this network", "0.0.0.0", "this network"},
    {"0.255.255.255: this network", "0.255.255.255", "this network"},
    {"1.0.0.0: global after 0/8", "1.0.0.0", NULL},
    {"10.0.0.25: RFC 1918", "10.0.0.25", "RFC 1918"},
    {"9.255.255.255: global before 10/8", "9.255.255.255", NULL},
    {"11.0.0.0: global after 10/8", "11.0.0.0", NULL},
    {"100.64.0.1: shared", "100.64.0.1", "shared"},
    {"100.127.255.255: shared", "100.127.255.255", "shared"},
    {"100.63.255.255: global", "100.63.255.255", NULL},
    {"100.128.0.0: global", "100.128.0.0", NULL},
    {"127.0.0.1: loopback", "127.0.0.1", "loopback"},
    {"127.0.50.1: loopback", "127.0.50.1", "loopback"},
    {"169.254.1.1: link-local", "169.254.1.1", "link-local"},
    {"172.16.0.1: RFC 1918", "172.16.0.1", "RFC 1918"},
    {"172.31.255.255: RFC 1918", "172.31.255.255", "RFC 1918"},
    {"172.32.0.0: global", "172.32.0.0", NULL},
    {"172.15.255.255: global", "172.15.255.255", NULL},
    {"192.0.0.8: IETF assignments", "192.0.0.8", "IETF"},
    {"192.0.2.25: documentation", "192.0.2.25", "documentation"},
    {"192.88.99.1: 6to4 relay", "192.88.99.1", "6to4"},
    {"192.168.1.1: RFC 1918", "192.168.1.1", "RFC 1918"},
    {"192.169.0.0: global", "192.169.0.0", NULL},
    {"198.18.0.1: benchmarking", "198.18.0.1", "benchmarking"},
    {"198.19.255.255: benchmarking", "198.19.255.255", "benchmarking"},
    {"198.20.0.0: global", "198.20.0.0", NULL},
    {"198.51.100.7: documentation", "198.51.100.7", "documentation"},
    {"203.0.113.9: documentation", "203.0.113.9", "documentation"},
    {"224.0.0.1: multicast", "224.0.0.1", "multicast"},
    {"239.255.255.255: multicast", "239.255.255.255", "multicast"},
    {"240.0.0.1: reserved", "240.0.0.1", "reserved"},
    {"255.255.255.255: broadcast", "255.255.255.255", "broadcast"},
    {"223.255.255.255: global", "223.255.255.255", NULL},
    {"2001:4860:4860::8888 is global", "2001:4860:4860::8888", NULL},
    {"2a00:1450::1 is global", "2a00:1450::1", NULL},
    {":: unspecified", "::", "unspecified"},
    {"::1 loopback", "::1", "loopback"},
    {"::2 reserved", "::2", "reserved"},
    {"::127.0.0.1 (IPv4-compatible) reserved", "::127.0.0.1", "reserved"},
    {"::ffff:127.0.0.1 v4-mapped loopback", "::ffff:127.0.0.1", "loopback"},
    {"::ffff:10.1.2.3 v4-mapped RFC 1918", "::ffff:10.1.2.3", "RFC 1918"},
    {"::ffff:8.8.8.8 v4-mapped global", "::ffff:8.8.8.8", NULL},
    {"64:ff9b::10.0.0.1 NAT64 of RFC 1918", "64:ff9b::10.0.0.1", "RFC 1918"},
    {"64:ff9b::8.8.8.8 NAT64 of global", "64:ff9b::8.8.8.8", NULL},
    {"64:ff9b:1::1 local-use NAT64", "64:ff9b:1::1", "NAT64"},
    {"2002:7f00:1::1 6to4 of loopback", "2002:7f00:1::1", "loopback"},
    {"2002:0808:0808::1 6to4 of global", "2002:0808:0808::1", NULL},
    {"100::1 discard-only: reserved", "100::1", "reserved"},
    {"2001:db8::25 documentation", "2001:db8::25", "documentation"},
    {"2001::1 IETF assignments", "2001::1", "IETF"},
    {"2001:200::1 global (after 2001::/23)", "2001:200::1", NULL},
    {"3fff::1 documentation", "3fff::1", "documentation"},
    {"fc00::1 unique local", "fc00::1", "unique local"},
    {"fd12:3456::1 unique local", "fd12:3456::1", "unique local"},
    {"fe80::1 link-local", "fe80::1", "link-local"},
    {"febf::1 link-local", "febf::1", "link-local"},
    {"fec0::1 site-local", "fec0::1", "site-local"},
    {"ff02::1 multicast", "ff02::1", "multicast"},
    {"4000::1 outside 2000::/3", "4000::1", "outside 2000::/3"},
    {"1fff::1 outside 2000::/3", "1fff::1", "outside 2000::/3"},
    {"a name is not an address", "mx.example", "not an address"},
    {"an empty text is not an address", "", "not an address"},
    {"a prefix is not an address", "10.0.0.0/8", "not an address"},
    {"a scoped IPv6 is not an address", "fe80::1%eth0", "not an address"},
};

static void
run_special_case(void **state)
{
    const struct special_case *c = *state;
    const char *got = addrscope_special(c->address);

    if (c->want == NULL) {
        if (got != NULL)
            fail_msg("%s: \"%s\", want global", c->address, got);
        return;
    }
    if (got == NULL)
        fail_msg("%s: global, want \"%s\"", c->address, c->want);
    if (strstr(got, c->want) == NULL)
        fail_msg("%s: \"%s\", want \"%s\" in it", c->address, got, c->want);
}

struct parse_case {
    const char *label;
    const char *words[4];
    size_t n;
    const char *want_err; /* NULL: parses */
};

static const struct parse_case parse_cases[] = {
    {"empty list", {NULL}, 0, NULL},
    {"127.0.0.0/8", {"127.0.0.0/8"}, 1, NULL},
    {"one address", {"10.0.0.25"}, 1, NULL},
    {"IPv4 and IPv6", {"10.0.0.0/8", "fd00::/8", "::1"}, 3, NULL},
    {"0.0.0.0/0", {"0.0.0.0/0"}, 1, NULL},
    {"::/0", {"::/0"}, 1, NULL},
    {"a name", {"localhost"}, 1, "not a network"},
    {"bits after the prefix", {"127.0.0.1/8"}, 1, "bits set after the prefix"},
    {"IPv6 bits after the prefix", {"fd00::1/8"}, 1, "bits set after the prefix"},
    {"prefix too long", {"10.0.0.0/33"}, 1, "prefix must be 0 to 32"},
    {"IPv6 prefix too long", {"::/129"}, 1, "prefix must be 0 to 128"},
    {"empty prefix", {"10.0.0.0/"}, 1, "prefix"},
    {"prefix not a number", {"10.0.0.0/x"}, 1, "prefix"},
    {"negative prefix", {"10.0.0.0/-1"}, 1, "prefix"},
    {"prefix with a tail", {"10.0.0.0/8x"}, 1, "prefix"},
    {"a long word", {"1234567890123456789012345678901234567890123456789012345678901234567"},
     1, "not a network"},
};

static void
run_parse_case(void **state)
{
    const struct parse_case *c = *state;
    struct config_list l = {c->n, (char **)c->words, NULL};
    struct addrscope_nets nets;
    struct mts_err err = {""};
    int rc = addrscope_nets_parse(&l, &nets, &err);

    if (c->want_err == NULL) {
        if (rc != 0)
            fail_msg("refused: %s", err.msg);
        assert_int_equal(nets.n, c->n);
        return;
    }
    if (rc == 0)
        fail_msg("accepted, want \"%s\"", c->want_err);
    if (strstr(err.msg, c->want_err) == NULL)
        fail_msg("\"%s\", want \"%s\" in it", err.msg, c->want_err);
}

struct contain_case {
    const char *label;
    const char *net;
    const char *address;
    bool want;
};

static const struct contain_case contain_cases[] = {
    {"127.0.0.1 in 127.0.0.0/8", "127.0.0.0/8", "127.0.0.1", true},
    {"127.255.255.255 in 127.0.0.0/8", "127.0.0.0/8", "127.255.255.255", true},
    {"128.0.0.0 not in 127.0.0.0/8", "127.0.0.0/8", "128.0.0.0", false},
    {"v4-mapped 127.0.0.1 in 127.0.0.0/8", "127.0.0.0/8", "::ffff:127.0.0.1", true},
    {"::1 not in 127.0.0.0/8", "127.0.0.0/8", "::1", false},
    {"10.1.2.3 in 10.1.2.0/23", "10.1.2.0/23", "10.1.3.255", true},
    {"10.1.4.0 not in 10.1.2.0/23", "10.1.2.0/23", "10.1.4.0", false},
    {"one address: itself", "10.0.0.25", "10.0.0.25", true},
    {"one address: not its neighbour", "10.0.0.25", "10.0.0.26", false},
    {"::1 in ::1/128", "::1/128", "::1", true},
    {"fd00::5 in fd00::/8", "fd00::/8", "fd00::5", true},
    {"fe80::1 not in fd00::/8", "fd00::/8", "fe80::1", false},
    {"0.0.0.0/0 holds every IPv4", "0.0.0.0/0", "10.9.8.7", true},
    {"0.0.0.0/0 holds no IPv6", "0.0.0.0/0", "fd00::1", false},
    {"a name is in nothing", "0.0.0.0/0", "localhost", false},
};

static void
run_contain_case(void **state)
{
    const struct contain_case *c = *state;
    const char *words[1] = {c->net};
    struct config_list l = {1, (char **)words, NULL};
    struct addrscope_nets nets;
    struct mts_err err;

    if (addrscope_nets_parse(&l, &nets, &err) != 0)
        fail_msg("%s: %s", c->net, err.msg);
    assert_int_equal(addrscope_nets_contain(&nets, c->address), c->want);
}

#define N_TESTS (N_ROWS(special_cases) + N_ROWS(parse_cases) + N_ROWS(contain_cases))

static struct CMUnitTest tests[N_TESTS];
static char test_names[N_TESTS][UNIT_NAME_MAX];

int
main(void)
{
    struct unit_list list = {tests, test_names, N_TESTS, 0, NULL};

    UNIT_ADD_TABLE(&list, "special", special_cases, run_special_case);
    UNIT_ADD_TABLE(&list, "parse", parse_cases, run_parse_case);
    UNIT_ADD_TABLE(&list, "contain", contain_cases, run_contain_case);
    if (list.n != N_TESTS) {
        fprintf(stderr, "test_addrscope: %zu tests registered, %zu expected\n", list.n,
                (size_t)N_TESTS);
        return 2;
    }
    return cmocka_run_group_tests(tests, NULL, NULL);
}
