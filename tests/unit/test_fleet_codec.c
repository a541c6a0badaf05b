/*
 * test_fleet_codec - Redis values of policy rows and probe results
 * (fleet_codec.h): round trips, the HMAC, and every kind of value a
 * writer without the key, another version or a broken server could leave.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "fleet_codec.h"
#include "probecache.h"
#include "tlsa.h"
#include "mxmatch.h"

#define NOW INT64_C(1800000000)
#define RKEY "mtasts:policy:partner.example"

static struct fleet_key
key_of(const char *bytes)
{
    struct fleet_key k;

    memset(&k, 0, sizeof(k));
    k.set = true;
    k.len = strlen(bytes);
    memcpy(k.bytes, bytes, k.len);
    return k;
}

static const struct fleet_key no_key = {false, 0, {0}};

/* An enforce policy fetched a minute ago, for a day. */
static void
row_of(struct cache_entry *e)
{
    memset(e, 0, sizeof(*e));
    snprintf(e->domain, sizeof(e->domain), "partner.example");
    snprintf(e->txt_id, sizeof(e->txt_id), "20260101T0000");
    e->has_policy = true;
    e->mode = POLICY_MODE_ENFORCE;
    e->max_age = 86400;
    e->mx = calloc(2, sizeof(char *));
    e->mx[0] = strdup("mx1.partner.example");
    e->mx[1] = strdup("*.backup.partner.example");
    e->n_mx = 2;
    e->policy_text = strdup("version: STSv1\nmode: enforce\nmx: mx1.partner.example\n"
                            "mx: *.backup.partner.example\nmax_age: 86400\n");
    e->fetched_at = NOW - 60;
    e->expires_at = NOW - 60 + 86400;
    e->checked_at = NOW - 60;
    e->has_status = true;
    e->status = STATUS_ENFORCE;
    snprintf(e->dnssec, sizeof(e->dnssec), "secure");
}

static void
round_trip_row(void **state)
{
    struct fleet_key k = key_of("0123456789abcdef-fleet-key");
    const struct fleet_key *keys[2] = {&no_key, &k};
    struct cache_entry e, back;
    struct mts_err err;

    for (int i = 0; i < 2; i++) {
        size_t len;
        char *v;

        row_of(&e);
        /* The writer's name travels with the row (cache.h, source). */
        snprintf(e.source, sizeof(e.source), "mta-2.partner.example");
        v = fleet_codec_row_encode(keys[i], RKEY, &e, &len, &err);
        assert_non_null(v);
        assert_true(fleet_codec_row_decode(keys[i], RKEY, v, len, NOW, &back, &err));
        assert_string_equal(back.domain, e.domain);
        assert_string_equal(back.txt_id, e.txt_id);
        assert_true(back.has_policy);
        assert_int_equal(back.mode, POLICY_MODE_ENFORCE);
        assert_int_equal(back.max_age, 86400);
        assert_int_equal(back.n_mx, 2);
        assert_string_equal(back.mx[1], "*.backup.partner.example");
        assert_string_equal(back.policy_text, e.policy_text);
        assert_int_equal(back.expires_at, e.expires_at);
        assert_int_equal(back.status, STATUS_ENFORCE);
        assert_string_equal(back.dnssec, "secure");
        assert_string_equal(back.source, "mta-2.partner.example");
        cache_entry_free(&back);
        cache_entry_free(&e);
        free(v);
    }
}

/* A negative answer (absent for 15 minutes) with a fetch back-off id. */
static void
round_trip_negative(void **state)
{
    struct cache_entry e, back;
    struct mts_err err;
    size_t len;
    char *v;

    memset(&e, 0, sizeof(e));
    snprintf(e.domain, sizeof(e.domain), "partner.example");
    e.checked_at = NOW;
    e.expires_at = NOW + 900;
    e.has_status = true;
    e.status = STATUS_FAILED;
    snprintf(e.fetch_failed_id, sizeof(e.fetch_failed_id), "abc1");
    e.fetch_failed_at = NOW;
    snprintf(e.last_error, sizeof(e.last_error), "HTTP 404");
    v = fleet_codec_row_encode(&no_key, RKEY, &e, &len, &err);
    assert_non_null(v);
    assert_true(fleet_codec_row_decode(&no_key, RKEY, v, len, NOW, &back, &err));
    assert_false(back.has_policy);
    assert_int_equal(back.status, STATUS_FAILED);
    assert_string_equal(back.fetch_failed_id, "abc1");
    assert_string_equal(back.last_error, "HTTP 404");
    cache_entry_free(&back);
    free(v);
}

/* Values planted by hand: "F1 <64 dashes> <json>", unsigned. */
static char *
planted(const char *json, size_t *len)
{
    char *v = malloc(strlen(json) + 70);

    snprintf(v, strlen(json) + 70,
             "F1 ---------------------------------------------------------------- %s", json);
    *len = strlen(v);
    return v;
}

struct bad_case {
    const char *label;
    const char *json;
    const char *why; /* a word of the reason */
};

/* The columns (cache_row.h): domain, txt_id, has_policy, mode, max_age, mx,
 * policy_text, fetched_at, expires_at, checked_at, last_used, status,
 * dnssec, last_error, fetch_failed_id, fetch_failed_at, source */
static const struct bad_case bad_rows[] = {
    {"valid (the control)",
     "[\"partner.example\",\"id1\",1,\"enforce\",86400,\"mx.partner.example\",\"x\","
     "1800000000,1800086400,1800000000,0,\"enforce\",null,null,null,0,null]", NULL},
    {"max_age beyond RFC 8461's limit",
     "[\"partner.example\",\"id1\",1,\"enforce\",99999999,\"mx.partner.example\",\"x\","
     "1800000000,1800086400,1800000000,0,\"enforce\",null,null,null,0,null]", "max_age"},
    {"expires long after max_age",
     "[\"partner.example\",\"id1\",1,\"enforce\",86400,\"mx.partner.example\",\"x\","
     "1800000000,1830000000,1800000000,0,\"enforce\",null,null,null,0,null]", "expires"},
    {"fetched in the future",
     "[\"partner.example\",\"id1\",1,\"enforce\",86400,\"mx.partner.example\",\"x\","
     "1800090000,1800100000,1800000000,0,\"enforce\",null,null,null,0,null]", "future"},
    {"negative answer for ten years",
     "[\"partner.example\",\"\",0,null,0,null,null,"
     "0,2115000000,1800000000,0,\"absent\",null,null,null,0,null]", "expires"},
    {"another domain's row",
     "[\"evil.example\",\"id1\",1,\"enforce\",86400,\"mx.evil.example\",\"x\","
     "1800000000,1800086400,1800000000,0,\"enforce\",null,null,null,0,null]", "under the key"},
    {"unknown mode",
     "[\"partner.example\",\"id1\",1,\"strict\",86400,\"mx.partner.example\",\"x\","
     "1800000000,1800086400,1800000000,0,\"enforce\",null,null,null,0,null]", "mode"},
    {"bad mx pattern",
     "[\"partner.example\",\"id1\",1,\"enforce\",86400,\"mx..partner.example\",\"x\","
     "1800000000,1800086400,1800000000,0,\"enforce\",null,null,null,0,null]", "mx"},
    {"txt id not alphanumeric",
     "[\"partner.example\",\"id-1;\",1,\"enforce\",86400,\"mx.partner.example\",\"x\","
     "1800000000,1800086400,1800000000,0,\"enforce\",null,null,null,0,null]", "txt_id"},
    {"NUL in a string",
     "[\"partner.example\",\"id1\",1,\"enforce\",86400,\"mx.partner.example\",\"x\\u0000y\","
     "1800000000,1800086400,1800000000,0,\"enforce\",null,null,null,0,null]", "row"},
    {"a real number for a time",
     "[\"partner.example\",\"id1\",1,\"enforce\",86400,\"mx.partner.example\",\"x\","
     "1.8e9,1800086400,1800000000,0,\"enforce\",null,null,null,0,null]", "integer"},
    {"negative time",
     "[\"partner.example\",\"id1\",1,\"enforce\",86400,\"mx.partner.example\",\"x\","
     "-5,1800086400,1800000000,0,\"enforce\",null,null,null,0,null]", "range"},
    {"one column short",
     "[\"partner.example\",\"id1\",1,\"enforce\",86400,\"mx.partner.example\",\"x\","
     "1800000000,1800086400,1800000000,0,\"enforce\",null,null,null,0]", "columns"},
    {"an object, not an array", "{\"domain\":\"partner.example\"}", "columns"},
    {"not JSON", "[\"partner.example\",", "columns"},
    {"upper-case domain",
     "[\"Partner.example\",\"id1\",1,\"enforce\",86400,\"mx.partner.example\",\"x\","
     "1800000000,1800086400,1800000000,0,\"enforce\",null,null,null,0,null]", "domain"},
    {"a source that is no host name (a person reads it)",
     "[\"partner.example\",\"id1\",1,\"enforce\",86400,\"mx.partner.example\",\"x\","
     "1800000000,1800086400,1800000000,0,\"enforce\",null,null,null,0,\"Evil\\nHost\"]", "source"},
};

static void
refused_rows(void **state)
{
    for (size_t i = 0; i < sizeof(bad_rows) / sizeof(bad_rows[0]); i++) {
        const struct bad_case *c = &bad_rows[i];
        struct cache_entry e;
        struct mts_err err = {""};
        size_t len;
        char *v = planted(c->json, &len);
        bool ok = fleet_codec_row_decode(&no_key, RKEY, v, len, NOW, &e, &err);

        print_message("RUN %s\n", c->label);
        if (c->why == NULL) {
            assert_true(ok);
            cache_entry_free(&e);
        } else {
            assert_false(ok);
            assert_null(e.mx);
            assert_null(e.policy_text);
            if (strstr(err.msg, c->why) == NULL)
                fail_msg("%s: reason \"%s\" lacks \"%s\"", c->label, err.msg, c->why);
        }
        free(v);
    }
}

/* With a key: unsigned values, values signed with another key, a value
 * signed for another domain, a value changed after signing. */
static void
hmac_checked(void **state)
{
    struct fleet_key k = key_of("0123456789abcdef-fleet-key");
    struct fleet_key other = key_of("0123456789abcdef-other-key");
    struct cache_entry e, back;
    struct mts_err err;
    size_t len;
    char *v, *p;

    row_of(&e);
    /* unsigned */
    v = fleet_codec_row_encode(&no_key, RKEY, &e, &len, &err);
    assert_false(fleet_codec_row_decode(&k, RKEY, v, len, NOW, &back, &err));
    assert_non_null(strstr(err.msg, "HMAC"));
    free(v);
    /* another key */
    v = fleet_codec_row_encode(&other, RKEY, &e, &len, &err);
    assert_false(fleet_codec_row_decode(&k, RKEY, v, len, NOW, &back, &err));
    assert_non_null(strstr(err.msg, "HMAC"));
    free(v);
    /* signed for another key name (a replay under another domain) */
    v = fleet_codec_row_encode(&k, "mtasts:policy:other.example", &e, &len, &err);
    assert_false(fleet_codec_row_decode(&k, RKEY, v, len, NOW, &back, &err));
    assert_non_null(strstr(err.msg, "HMAC"));
    free(v);
    /* mode changed after signing */
    v = fleet_codec_row_encode(&k, RKEY, &e, &len, &err);
    assert_non_null(p = strstr(v, "\"enforce\""));
    memcpy(p, "\"testing\"", 9);
    assert_false(fleet_codec_row_decode(&k, RKEY, v, len, NOW, &back, &err));
    assert_non_null(strstr(err.msg, "HMAC"));
    free(v);
    cache_entry_free(&e);
}

static void
truncated_and_huge(void **state)
{
    struct fleet_key k = key_of("0123456789abcdef-fleet-key");
    struct cache_entry e, back;
    struct mts_err err;
    size_t len, hlen;
    char *v, *huge;

    row_of(&e);
    v = fleet_codec_row_encode(&no_key, RKEY, &e, &len, &err);
    for (size_t cut = 0; cut < len; cut++) {
        if (fleet_codec_row_decode(&no_key, RKEY, v, cut, NOW, &back, &err))
            fail_msg("a value cut at %zu of %zu bytes was accepted", cut, len);
    }
    free(v);
    v = fleet_codec_row_encode(&k, RKEY, &e, &len, &err);
    for (size_t cut = 0; cut < len; cut += 7)
        assert_false(fleet_codec_row_decode(&k, RKEY, v, cut, NOW, &back, &err));
    free(v);
    /* over the bound: refused before it is parsed */
    hlen = FLEET_VALUE_MAX + 1;
    huge = malloc(hlen);
    memset(huge, ' ', hlen);
    memcpy(huge, "F1 ", 3);
    assert_false(fleet_codec_row_decode(&no_key, RKEY, huge, hlen, NOW, &back, &err));
    assert_non_null(strstr(err.msg, "bytes"));
    free(huge);
    /* a policy body over 64 KiB cannot even be written */
    free(e.policy_text);
    e.policy_text = malloc(CACHE_TEXT_MAX + 2);
    memset(e.policy_text, 'a', CACHE_TEXT_MAX + 1);
    e.policy_text[CACHE_TEXT_MAX + 1] = '\0';
    assert_null(fleet_codec_row_encode(&no_key, RKEY, &e, &len, &err));
    cache_entry_free(&e);
}

static void
key_file(void **state)
{
    char path[] = "/tmp/test_fleet_codec.XXXXXX";
    int fd = mkstemp(path);
    struct fleet_key k;
    struct mts_err err;

    assert_true(fd >= 0);
    assert_int_equal(write(fd, "short", 5), 5);
    assert_int_equal(fleet_key_load(path, &k, &err), -1);
    assert_non_null(strstr(err.msg, "16"));
    assert_int_equal(write(fd, "-but-now-long-enough", 20), 20);
    close(fd);
    assert_int_equal(fleet_key_load(path, &k, &err), 0);
    assert_true(k.set);
    assert_int_equal(k.len, 25);
    unlink(path);
    assert_int_equal(fleet_key_load(path, &k, &err), -1);
    assert_int_equal(fleet_key_load("", &k, &err), 0);
    assert_false(k.set);
}

/* Two addresses of mx1.partner.example on port 25, probed now for a day. */
static void
tls_rows_of(struct probecache_row *r)
{
    memset(r, 0, 2 * sizeof(*r));
    for (int i = 0; i < 2; i++) {
        snprintf(r[i].host, sizeof(r[i].host), "mx1.partner.example");
        snprintf(r[i].address, sizeof(r[i].address), "192.0.2.%d", 10 + i);
        r[i].port = 25;
        r[i].status = TLSPROBE_OK;
        r[i].grade = TLSPROBE_GRADE_GOOD;
        r[i].rfc8461 = r[i].pkix = r[i].tls = true;
        snprintf(r[i].protocol, sizeof(r[i].protocol), "TLSv1.3");
        snprintf(r[i].reason, sizeof(r[i].reason), "fine \"quoted\" \\ text");
        r[i].probed_at = NOW;
        r[i].expires_at = NOW + 86400;
        r[i].dane = TLSA_DANE_NONE;
    }
    r[1].grade = TLSPROBE_GRADE_FAIL;
    r[1].dane = TLSA_DANE_FAILED;
    snprintf(r[1].dane_detail, sizeof(r[1].dane_detail), "no record matched");
}

static void
round_trip_tls_rows(void **state)
{
    struct fleet_key k = key_of("0123456789abcdef-fleet-key");
    struct probecache_row r[PROBECACHE_ADDR_MAX + 1], back[PROBECACHE_ADDR_MAX];
    const char *rk = "mtasts:probe:mx1.partner.example";
    struct mts_err err;
    size_t len, n;
    char *v;

    (void)state;
    tls_rows_of(r);
    v = fleet_codec_tls_encode(&k, rk, r, 2, &len, &err);
    assert_non_null(v);
    assert_true(fleet_codec_tls_decode(&k, rk, v, len, NOW, 25, back, &n, &err));
    assert_int_equal(n, 2);
    assert_memory_equal(back, r, 2 * sizeof(r[0]));
    /* another port, another host's key, no key, a broken MAC */
    assert_false(fleet_codec_tls_decode(&k, rk, v, len, NOW, 587, back, &n, &err));
    assert_non_null(strstr(err.msg, "port"));
    assert_false(fleet_codec_tls_decode(&no_key, "mtasts:probe:mx2.partner.example", v, len,
                                        NOW, 25, back, &n, &err));
    assert_non_null(strstr(err.msg, "under the key"));
    v[10] = v[10] == 'a' ? 'b' : 'a';
    assert_false(fleet_codec_tls_decode(&k, rk, v, len, NOW, 25, back, &n, &err));
    assert_int_equal(n, 0);
    free(v);
    /* a time in the future, a life beyond the bound, a bad grade word */
    tls_rows_of(r);
    r[1].probed_at = NOW + 3600;
    v = fleet_codec_tls_encode(&no_key, rk, r, 2, &len, &err);
    assert_false(fleet_codec_tls_decode(&no_key, rk, v, len, NOW, 25, back, &n, &err));
    free(v);
    tls_rows_of(r);
    r[0].expires_at = NOW + 365 * 86400;
    v = fleet_codec_tls_encode(&no_key, rk, r, 2, &len, &err);
    assert_false(fleet_codec_tls_decode(&no_key, rk, v, len, NOW, 25, back, &n, &err));
    free(v);
    tls_rows_of(r);
    v = fleet_codec_tls_encode(&no_key, rk, r, 1, &len, &err);
    {
        char *g = strstr(v, "\"good\"");

        assert_non_null(g);
        memcpy(g, "\"gold\"", 6);
    }
    assert_false(fleet_codec_tls_decode(&no_key, rk, v, len, NOW, 25, back, &n, &err));
    free(v);
    /* no rows, more rows than a host keeps */
    assert_null(fleet_codec_tls_encode(&no_key, rk, r, 0, &len, &err));
    assert_null(fleet_codec_tls_encode(&no_key, rk, r, PROBECACHE_ADDR_MAX + 1, &len, &err));
    /* a value of 5 rows' columns (more than a host keeps), and one a column short */
    {
        char *one = fleet_codec_tls_encode(&no_key, rk, r, 1, &len, &err), *inner, buf[20000];
        size_t ilen;
        int off;

        assert_non_null(one);
        inner = strchr(one, '[') + 1;
        ilen = strlen(inner) - 1; /* without the closing ']' */
        off = snprintf(buf, sizeof(buf), "%.68s[", one);
        for (int i = 0; i < PROBECACHE_ADDR_MAX + 1; i++)
            off += snprintf(buf + off, sizeof(buf) - (size_t)off, "%s%.*s", i ? "," : "",
                            (int)ilen, inner);
        off += snprintf(buf + off, sizeof(buf) - (size_t)off, "]");
        assert_false(fleet_codec_tls_decode(&no_key, rk, buf, (size_t)off, NOW, 25, back, &n,
                                            &err));
        assert_non_null(strstr(err.msg, "rows of"));
        off = snprintf(buf, sizeof(buf), "%.68s[%.*s]", one, (int)(strrchr(inner, ',') - inner),
                       inner);
        assert_false(fleet_codec_tls_decode(&no_key, rk, buf, (size_t)off, NOW, 25, back, &n,
                                            &err));
        free(one);
    }
}

/* A signed MX set of two hosts, secure, for an hour. */
static void
mx_of(struct cache_mxset *m)
{
    memset(m, 0, sizeof(*m));
    snprintf(m->domain, sizeof(m->domain), "partner.example");
    m->hosts = calloc(2, sizeof(char *));
    m->hosts[0] = strdup("mx1.partner.example");
    m->hosts[1] = strdup("mx2.partner.example");
    m->n = 2;
    m->fetched_at = NOW - 60;
    m->expires_at = NOW - 60 + 3600;
    snprintf(m->dnssec, sizeof(m->dnssec), "secure");
}

static void
round_trip_mx(void **state)
{
    struct fleet_key k = key_of("0123456789abcdef-fleet-key");
    const char *rk = "mtasts:mx:partner.example";
    struct cache_mxset m, back;
    struct mts_err err;
    size_t len;
    char *v;

    (void)state;
    mx_of(&m);
    v = fleet_codec_mx_encode(&k, rk, &m, &len, &err);
    assert_non_null(v);
    assert_true(fleet_codec_mx_decode(&k, rk, v, len, NOW, &back, &err));
    assert_int_equal(back.n, 2);
    assert_string_equal(back.hosts[1], "mx2.partner.example");
    assert_string_equal(back.dnssec, "secure");
    assert_true(back.expires_at == m.expires_at && back.fetched_at == m.fetched_at);
    cache_mxset_free(&back);
    /* under another domain's key; the MAC binds the key */
    assert_false(fleet_codec_mx_decode(&k, "mtasts:mx:other.example", v, len, NOW, &back, &err));
    /* cut anywhere: refused */
    for (size_t cut = 0; cut < len; cut++)
        if (fleet_codec_mx_decode(&k, rk, v, cut, NOW, &back, &err))
            fail_msg("an MX value cut at %zu of %zu bytes was accepted", cut, len);
    free(v);
    /* unsigned: a secure claim is refused, an insecure set is read */
    v = fleet_codec_mx_encode(&no_key, rk, &m, &len, &err);
    assert_false(fleet_codec_mx_decode(&no_key, rk, v, len, NOW, &back, &err));
    assert_non_null(strstr(err.msg, "without the fleet key"));
    assert_false(fleet_codec_mx_decode(&k, rk, v, len, NOW, &back, &err));
    assert_non_null(strstr(err.msg, "bad HMAC"));
    free(v);
    snprintf(m.dnssec, sizeof(m.dnssec), "insecure");
    v = fleet_codec_mx_encode(&no_key, rk, &m, &len, &err);
    assert_true(fleet_codec_mx_decode(&no_key, rk, v, len, NOW, &back, &err));
    cache_mxset_free(&back);
    free(v);
    /* a set that claims to live a week, or fetched tomorrow */
    m.expires_at = m.fetched_at + 7 * 86400;
    v = fleet_codec_mx_encode(&k, rk, &m, &len, &err);
    assert_false(fleet_codec_mx_decode(&k, rk, v, len, NOW, &back, &err));
    assert_non_null(strstr(err.msg, "expires out of range"));
    free(v);
    m.fetched_at = NOW + 86400;
    m.expires_at = m.fetched_at + 60;
    v = fleet_codec_mx_encode(&k, rk, &m, &len, &err);
    assert_false(fleet_codec_mx_decode(&k, rk, v, len, NOW, &back, &err));
    free(v);
    cache_mxset_free(&m);
    /* planted: a host that is not a name */
    v = planted("[\"partner.example\",\"mx1 partner\",1799999940,1800003540,\"insecure\"]",
                &len);
    assert_false(fleet_codec_mx_decode(&no_key, rk, v, len, NOW, &back, &err));
    free(v);
}

static void
round_trip_tlsa(void **state)
{
    struct fleet_key k = key_of("0123456789abcdef-fleet-key");
    const char *rk = "mtasts:tlsa:25:mx1.partner.example";
    struct tlsa_set t, back;
    struct mts_err err;
    int64_t until;
    size_t len;
    char *v;

    (void)state;
    memset(&t, 0, sizeof(t));
    t.state = TLSA_SECURE;
    snprintf(t.base, sizeof(t.base), "mx1.partner.example");
    snprintf(t.owner, sizeof(t.owner), "_25._tcp.mx1.partner.example");
    t.n = 2;
    t.rec[0] = (struct tlsa_rec){3, 1, 1, true, 32, {0}};
    memset(t.rec[0].data, 0xab, 32);
    t.rec[1] = (struct tlsa_rec){1, 0, 1, false, 32, {0}};
    memset(t.rec[1].data, 0x01, 32);
    t.n_usable = 1;
    v = fleet_codec_tlsa_encode(&k, rk, "mx1.partner.example", 25, &t, NOW - 10, NOW + 290, &len,
                                &err);
    assert_non_null(v);
    assert_true(fleet_codec_tlsa_decode(&k, rk, v, len, NOW, 25, &back, &until, &err));
    assert_int_equal(back.state, TLSA_SECURE);
    assert_int_equal(back.n, 2);
    assert_int_equal(back.n_usable, 1);
    assert_true(back.rec[0].usable && !back.rec[1].usable);
    assert_memory_equal(back.rec[0].data, t.rec[0].data, 32);
    assert_string_equal(back.owner, t.owner);
    assert_true(until == NOW + 290);
    /* cut anywhere: refused */
    for (size_t cut = 0; cut < len; cut++)
        if (fleet_codec_tlsa_decode(&k, rk, v, cut, NOW, 25, &back, &until, &err))
            fail_msg("a TLSA value cut at %zu of %zu bytes was accepted", cut, len);
    /* another port, another host's key, no key at all */
    assert_false(fleet_codec_tlsa_decode(&k, rk, v, len, NOW, 587, &back, &until, &err));
    assert_false(fleet_codec_tlsa_decode(&k, "mtasts:tlsa:25:mx2.partner.example", v, len, NOW,
                                         25, &back, &until, &err));
    assert_false(fleet_codec_tlsa_decode(&no_key, rk, v, len, NOW, 25, &back, &until, &err));
    assert_non_null(strstr(err.msg, "only with the fleet key"));
    free(v);
    /* unsigned, read with the key: refused */
    v = fleet_codec_tlsa_encode(&no_key, rk, "mx1.partner.example", 25, &t, NOW - 10, NOW + 290,
                                &len, &err);
    assert_false(fleet_codec_tlsa_decode(&k, rk, v, len, NOW, 25, &back, &until, &err));
    free(v);
    /* a failed lookup, records on an insecure answer, a life of a week */
    t.state = TLSA_FAILED;
    v = fleet_codec_tlsa_encode(&k, rk, "mx1.partner.example", 25, &t, NOW, NOW + 60, &len, &err);
    assert_false(fleet_codec_tlsa_decode(&k, rk, v, len, NOW, 25, &back, &until, &err));
    free(v);
    t.state = TLSA_INSECURE;
    v = fleet_codec_tlsa_encode(&k, rk, "mx1.partner.example", 25, &t, NOW, NOW + 60, &len, &err);
    assert_false(fleet_codec_tlsa_decode(&k, rk, v, len, NOW, 25, &back, &until, &err));
    free(v);
    t.state = TLSA_SECURE;
    v = fleet_codec_tlsa_encode(&k, rk, "mx1.partner.example", 25, &t, NOW, NOW + 7 * 86400,
                                &len, &err);
    assert_false(fleet_codec_tlsa_decode(&k, rk, v, len, NOW, 25, &back, &until, &err));
    free(v);
    /* a digest of the wrong length for its matching type (SHA-256: 32) */
    t.rec[0].len = 31;
    v = fleet_codec_tlsa_encode(&k, rk, "mx1.partner.example", 25, &t, NOW, NOW + 60, &len, &err);
    assert_true(fleet_codec_tlsa_decode(&k, rk, v, len, NOW, 25, &back, &until, &err));
    assert_false(back.rec[0].usable); /* recomputed, never read */
    free(v);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(round_trip_row),
        cmocka_unit_test(round_trip_negative),
        cmocka_unit_test(refused_rows),
        cmocka_unit_test(hmac_checked),
        cmocka_unit_test(truncated_and_huge),
        cmocka_unit_test(key_file),
        cmocka_unit_test(round_trip_tls_rows),
        cmocka_unit_test(round_trip_mx),
        cmocka_unit_test(round_trip_tlsa),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
