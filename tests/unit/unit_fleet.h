/*
 * unit_fleet.h - rows for the fleet's unit tests, and another host's row
 * written straight into Redis (with unit_redis.h's server).
 *
 *	struct cache_entry e;
 *	unit_fleet_row(&e, "a.example", "id1", fetched_at, checked_at);
 *	unit_fleet_set(sock, key_file, "prefix:policy:a.example", &e);
 *	cache_entry_free(&e);
 *
 * unit_fleet_row: an enforce policy (one MX pattern, mx1.example), for a
 * day from fetched_at, status enforce, DNSSEC insecure; the caller frees
 * it. unit_fleet_set: SET of its value under rkey, signed with the key
 * in key_file (fleet_codec.h), for an hour, as another host's writer
 * would; checks fail the test.
 */
#ifndef MTS_UNIT_FLEET_H
#define MTS_UNIT_FLEET_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <hiredis/hiredis.h>

#include "cache.h"
#include "fleet_codec.h"

static inline void
unit_fleet_row(struct cache_entry *e, const char *domain, const char *id, int64_t fetched_at,
               int64_t checked_at)
{
    memset(e, 0, sizeof(*e));
    snprintf(e->domain, sizeof(e->domain), "%s", domain);
    snprintf(e->txt_id, sizeof(e->txt_id), "%s", id);
    e->has_policy = true;
    e->mode = POLICY_MODE_ENFORCE;
    e->max_age = 86400;
    e->mx = calloc(1, sizeof(char *));
    assert_non_null(e->mx);
    e->mx[0] = strdup("mx1.example");
    assert_non_null(e->mx[0]);
    e->n_mx = 1;
    e->policy_text = strdup("version: STSv1\nmode: enforce\nmx: mx1.example\nmax_age: 86400\n");
    assert_non_null(e->policy_text);
    e->fetched_at = fetched_at;
    e->expires_at = fetched_at + 86400;
    e->checked_at = checked_at;
    e->has_status = true;
    e->status = STATUS_ENFORCE;
    snprintf(e->dnssec, sizeof(e->dnssec), "insecure");
}

static inline void
unit_fleet_set(const char *sock, const char *key_file, const char *rkey,
               const struct cache_entry *e)
{
    struct fleet_key k;
    struct mts_err err;
    redisContext *c = redisConnectUnix(sock);
    redisReply *r;
    char *v;
    size_t len;

    assert_true(c != NULL && c->err == 0);
    if (fleet_key_load(key_file, &k, &err) != 0)
        fail_msg("fleet_key_load: %s", err.msg);
    v = fleet_codec_row_encode(&k, rkey, e, &len, &err);
    if (v == NULL)
        fail_msg("fleet_codec_row_encode: %s", err.msg);
    r = redisCommand(c, "SET %s %b PX 3600000", rkey, v, len);
    assert_non_null(r);
    assert_int_not_equal(r->type, REDIS_REPLY_ERROR);
    freeReplyObject(r);
    redisFree(c);
    free(v);
}

#endif
