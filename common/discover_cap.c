/*
 * discover_cap - fresh lookups charged to their callers: the milter's
 * senders and connections, and the policy map's connections, which have
 * caps of their own (see discover_int.h, lookupq.h).
 */
#include <stdio.h>

#include "discover_int.h"
#include "log.h"
#include "metrics.h"

#define CAP_LOG_INTERVAL 60		/* seconds between a capped sender's log lines */
/* The map's lookups are charged to it as to one sender of this name. */
#define MAP_SENDER "the policy map"

/* The map's share of the recipients' workers: map_lookups_max, at most half. */
static unsigned
map_share(const struct discover *d)
{
    size_t half = d->max_rcpt_workers / 2 > 0 ? d->max_rcpt_workers / 2 : 1;

    return (unsigned)((size_t)d->cfg->map_lookups_max < half ? (size_t)d->cfg->map_lookups_max :
                                                               half);
}

int
discover_cap_open(struct discover *d, struct mts_err *err)
{
    const struct config *cfg = d->cfg;

    if (cfg->lookups_per_sender > 0 || cfg->lookups_per_connection > 0) {
        d->cap = lookupq_cap_new((unsigned)cfg->lookups_per_sender,
                                 (unsigned)cfg->lookups_per_connection, CAP_LOG_INTERVAL);
        if (d->cap == NULL) {
            mts_err_set(err, "out of memory");
            return -1;
        }
    }
    d->map_cap = lookupq_cap_new(map_share(d), (unsigned)cfg->map_lookups_per_connection,
                                 CAP_LOG_INTERVAL);
    if (d->map_cap == NULL) {
        mts_err_set(err, "out of memory");
        return -1;
    }
    return 0;
}

void
discover_cap_close(struct discover *d)
{
    lookupq_cap_free(d->cap);
    lookupq_cap_free(d->map_cap);
    d->cap = d->map_cap = NULL;
}

struct lookupq_cap *
discover_cap_of(const struct discover *d, const struct discover_caller *who)
{
    return who->map ? d->map_cap : d->cap;
}

enum lookupq_cap_result
discover_cap_take(struct discover *d, const struct discover_caller *who, bool *log_it)
{
    return lookupq_cap_take(discover_cap_of(d, who), who->map ? MAP_SENDER : who->sender,
                            who->conn, d->now(), log_it);
}

void
discover_cap_give(struct discover *d, bool map, const char *sender, uint64_t conn)
{
    lookupq_cap_give(map ? d->map_cap : d->cap, map ? MAP_SENDER : sender, conn, d->now());
}

/* The policy map's refusals: TEMP for its client, logged as the map's. */
static void
map_refusal(struct discover *d, const struct discover_caller *who, enum lookupq_cap_result r,
            bool log_it, char *why, size_t whysz)
{
    bool all = r == LOOKUPQ_CAP_SENDER;
    long long cap = all ? (long long)map_share(d) : (long long)d->cfg->map_lookups_per_connection;

    if (all)
        mts_text_set(why, whysz, "the policy map already has %lld lookups of new domains in "
                     "flight (map_lookups_max); not looked up", cap);
    else
        mts_text_set(why, whysz, "this map connection already has %lld lookups of new domains "
                     "in flight (map_lookups_per_connection); not looked up", cap);
    if (log_it && all)
        log_msg(LOG_WARNING, "the policy map has %lld lookups of new domains in flight "
                "(map_lookups_max, at most half of lookup_workers_max): its further new "
                "domains are answered TEMP until some end (logged at most once a minute)", cap);
    else if (log_it)
        log_msg(LOG_WARNING, "map connection #%llu has %lld lookups of new domains in flight "
                "(map_lookups_per_connection): its further new domains are answered TEMP "
                "until some end (logged at most once a minute per connection)",
                (unsigned long long)who->conn, cap);
}

void
discover_refusal(struct discover *d, const struct discover_caller *who, enum lookupq_cap_result r,
                 bool log_it, char *why, size_t whysz)
{
    bool by_sender = r == LOOKUPQ_CAP_SENDER;
    const char *what = by_sender ? "sender" : "connection";
    long long cap = by_sender ? (long long)d->cfg->lookups_per_sender :
                                (long long)d->cfg->lookups_per_connection;

    if (r == LOOKUPQ_CAP_NOMEM) {
        mts_text_set(why, whysz, "out of memory");
        return;
    }
    metrics_cap(who->map ? (by_sender ? METRICS_CAP_MAP_LOOKUPS : METRICS_CAP_MAP_CONNECTION)
                         : (by_sender ? METRICS_CAP_PER_SENDER : METRICS_CAP_PER_CONNECTION));
    if (who->map) {
        map_refusal(d, who, r, log_it, why, whysz);
        return;
    }
    mts_text_set(why, whysz,
                 "this %s already has %lld lookups of new domains in flight "
                 "(lookups_per_%s); not looked up", what, cap, what);
    if (!log_it)
        return;
    if (by_sender)
        log_msg(LOG_WARNING, "sender %s has %lld lookups of new domains in flight "
                "(lookups_per_sender): its further new domains are answered unknown "
                "until some end (logged at most once a minute per sender)", who->sender, cap);
    else
        log_msg(LOG_WARNING, "connection %llu has %lld lookups of new domains in flight "
                "(lookups_per_connection): its further new domains are answered unknown "
                "until some end (logged at most once a minute per connection)",
                (unsigned long long)who->conn, cap);
}

void
discover_cap_refuse(struct discover *d, const struct discover_caller *who,
                    enum lookupq_cap_result r, bool log_it, struct status_result *res)
{
    res->status = STATUS_UNKNOWN;
    res->source = STATUS_FROM_FRESH;
    discover_refusal(d, who, r, log_it, res->error, sizeof(res->error));
}
