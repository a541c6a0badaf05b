/*
 * addrscope - global or special-purpose addresses, and lists of networks;
 * see addrscope.h.
 *
 * Every address is handled as 16 bytes, IPv4 in its v4-mapped form, so one
 * table and one prefix comparison serve both families.
 */
#include "addrscope.h"

#include <arpa/inet.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define V4(a, b, c, d) {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, a, b, c, d}

struct range {
    unsigned char addr[16];
    unsigned prefix;
    const char *name;
};

/* First match wins: the broadcast address before 240/4. */
static const struct range ranges[] = {
    {V4(0, 0, 0, 0), 96 + 8, "this network (0.0.0.0/8)"},
    {V4(10, 0, 0, 0), 96 + 8, "private (10.0.0.0/8, RFC 1918)"},
    {V4(100, 64, 0, 0), 96 + 10, "shared address space (100.64.0.0/10, RFC 6598)"},
    {V4(127, 0, 0, 0), 96 + 8, "loopback (127.0.0.0/8)"},
    {V4(169, 254, 0, 0), 96 + 16, "link-local (169.254.0.0/16)"},
    {V4(172, 16, 0, 0), 96 + 12, "private (172.16.0.0/12, RFC 1918)"},
    {V4(192, 0, 0, 0), 96 + 24, "IETF protocol assignments (192.0.0.0/24)"},
    {V4(192, 0, 2, 0), 96 + 24, "documentation (192.0.2.0/24)"},
    {V4(192, 88, 99, 0), 96 + 24, "6to4 relay anycast (192.88.99.0/24)"},
    {V4(192, 168, 0, 0), 96 + 16, "private (192.168.0.0/16, RFC 1918)"},
    {V4(198, 18, 0, 0), 96 + 15, "benchmarking (198.18.0.0/15)"},
    {V4(198, 51, 100, 0), 96 + 24, "documentation (198.51.100.0/24)"},
    {V4(203, 0, 113, 0), 96 + 24, "documentation (203.0.113.0/24)"},
    {V4(224, 0, 0, 0), 96 + 4, "multicast (224.0.0.0/4)"},
    {V4(255, 255, 255, 255), 128, "broadcast (255.255.255.255)"},
    {V4(240, 0, 0, 0), 96 + 4, "reserved (240.0.0.0/4)"},
    {{0}, 128, "unspecified (::)"},
    {{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}, 128, "loopback (::1)"},
    {{0x00, 0x64, 0xff, 0x9b, 0x00, 0x01}, 48, "local-use NAT64 (64:ff9b:1::/48)"},
    {{0x20, 0x01, 0x0d, 0xb8}, 32, "documentation (2001:db8::/32)"},
    {{0x20, 0x01}, 23, "IETF protocol assignments (2001::/23)"},
    {{0x3f, 0xff}, 20, "documentation (3fff::/20)"},
    {{0xfc}, 7, "unique local (fc00::/7)"},
    {{0xfe, 0x80}, 10, "link-local (fe80::/10)"},
    {{0xfe, 0xc0}, 10, "site-local (fec0::/10)"},
    {{0xff}, 8, "multicast (ff00::/8)"},
};

static bool
in_prefix(const unsigned char *a, const unsigned char *net, unsigned prefix)
{
    unsigned full = prefix / 8, rest = prefix % 8;

    if (memcmp(a, net, full) != 0)
        return false;
    return rest == 0 || ((a[full] ^ net[full]) & (unsigned char)(0xff << (8 - rest))) == 0;
}

/* text -> 16 bytes (IPv4 v4-mapped); false when it is not a numeric address. */
static bool
to_bytes(const char *text, unsigned char out[16])
{
    static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

    if (inet_pton(AF_INET6, text, out) == 1)
        return true;
    memcpy(out, mapped, sizeof(mapped));
    return inet_pton(AF_INET, text, out + 12) == 1;
}

static const char *
classify(const unsigned char a[16])
{
    static const unsigned char nat64[12] = {0x00, 0x64, 0xff, 0x9b};
    unsigned char v4[16] = V4(0, 0, 0, 0);

    /* An IPv4 address carried in IPv6 reaches that IPv4 address. */
    if (memcmp(a, nat64, sizeof(nat64)) == 0) {
        memcpy(v4 + 12, a + 12, 4);
        return classify(v4);
    }
    if (a[0] == 0x20 && a[1] == 0x02) {
        memcpy(v4 + 12, a + 2, 4);
        return classify(v4);
    }
    for (size_t i = 0; i < sizeof(ranges) / sizeof(ranges[0]); i++)
        if (in_prefix(a, ranges[i].addr, ranges[i].prefix))
            return ranges[i].name;
    /* The v4-mapped block holds every IPv4 address; not one of the ranges above: global. */
    if (in_prefix(a, v4, 96))
        return NULL;
    /* Only 2000::/3 is allocated as global unicast. */
    if ((a[0] & 0xe0) != 0x20)
        return a[0] == 0 ? "reserved (::/8)" : "reserved (outside 2000::/3)";
    return NULL;
}

const char *
addrscope_special(const char *address)
{
    unsigned char a[16];

    if (address == NULL || !to_bytes(address, a))
        return "not an address";
    return classify(a);
}

int
addrscope_nets_parse(const struct config_list *words, struct addrscope_nets *out,
                     struct mts_err *err)
{
    memset(out, 0, sizeof(*out));
    for (size_t i = 0; i < words->n; i++) {
        const char *w = words->v[i], *slash = strchr(w, '/');
        char text[64];
        struct addrscope_net *n = &out->v[out->n];
        bool v4;
        long prefix;

        if (out->n == ADDRSCOPE_NETS_MAX) {
            mts_err_set(err, "more than %d networks", ADDRSCOPE_NETS_MAX);
            return -1;
        }
        if ((size_t)(slash ? slash - w : (long)strlen(w)) >= sizeof(text)) {
            mts_err_set(err, "\"%.80s\" is not a network", w);
            return -1;
        }
        snprintf(text, sizeof(text), "%.*s", (int)(slash ? slash - w : (long)strlen(w)), w);
        v4 = strchr(text, ':') == NULL;
        if (!to_bytes(text, n->addr)) {
            mts_err_set(err, "\"%.80s\" is not a network (ADDRESS or ADDRESS/PREFIX)", w);
            return -1;
        }
        prefix = v4 ? 32 : 128;
        if (slash != NULL) {
            char *end;
            prefix = strtol(slash + 1, &end, 10);
            if (slash[1] < '0' || slash[1] > '9' || *end != '\0' || prefix < 0 ||
                prefix > (v4 ? 32 : 128)) {
                mts_err_set(err, "\"%.80s\": the prefix must be 0 to %d", w, v4 ? 32 : 128);
                return -1;
            }
        }
        n->prefix = (unsigned)prefix + (v4 ? 96 : 0);
        for (unsigned b = n->prefix; b < 128; b++)
            if (n->addr[b / 8] & (0x80 >> (b % 8))) {
                mts_err_set(err, "\"%.80s\" has address bits set after the prefix", w);
                return -1;
            }
        out->n++;
    }
    return 0;
}

bool
addrscope_nets_contain(const struct addrscope_nets *nets, const char *address)
{
    unsigned char a[16];

    if (!to_bytes(address, a))
        return false;
    for (size_t i = 0; i < nets->n; i++)
        if (in_prefix(a, nets->v[i].addr, nets->v[i].prefix))
            return true;
    return false;
}
