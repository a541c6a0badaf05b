/*
 * refresh - the RFC 8461 §5.1 rules for one domain, with no I/O of its own.
 *
 * SYNOPSIS
 *	#include "refresh.h"
 *
 *	struct refresh_io io = {arg, txt_fn, addresses_fn, fetch_fn};
 *	refresh_step(cfg, &io, &row, now, &res);       row: cached, or empty
 *	refresh_status_from_row(&row, now, &res);      what a row says now
 *	struct refresh_cursor cur = {""};
 *	refresh_round(cache, cfg, now, batch, &cur, fn, arg, &err);  background
 *
 * DESCRIPTION
 *	refresh_step takes the cached row of a domain (or a zeroed row with
 *	only its domain set when none is cached), asks io for the _mta-sts TXT
 *	records and, when the rules say so, the policy host's addresses and
 *	the policy itself, and leaves in the row what is to be stored and in
 *	res the status to answer:
 *
 *	- a policy past its max_age is dropped;
 *	- DNS failure: a cached policy stays (checked again after
 *	  unknown_backoff); without one, unknown for unknown_backoff;
 *	- no usable TXT record: a cached policy stays (a warning for enforce);
 *	  without one, absent for absent_ttl;
 *	- the id unchanged and the policy not within refresh_margin of its
 *	  expiry: nothing is fetched;
 *	- an id whose fetch failed is not fetched again for
 *	  fetch_retry_interval; without a cached policy, failed till then;
 *	- otherwise the policy is fetched: a valid one replaces the row's (a
 *	  warning when enforce becomes testing or none); a failure keeps any
 *	  cached policy (a warning unless its mode is none) and records the id
 *	  for the back-off, or, with none cached, gives failed.
 *
 *	res.rechecked says whether the TXT id check completed (DNS answered
 *	and any new id was fetched): RFC 8461 §5 before a permanent failure.
 *	Time is the caller's now (seconds); every wait is bounded inside io.
 *	A step never changes the row's last_used: only a recipient's use does
 *	(the caller sets it), so a row the refresher alone keeps visiting
 *	still ages out after unused_ttl.
 *
 *	refresh_round picks what the background refresher revisits: rows with
 *	a policy, in use (last_used within unused_ttl), due for a TXT id check
 *	(check_interval) or within refresh_margin of expiry. Negative rows
 *	(absent, unknown, failed) are never picked: they live out their own
 *	TTL and are looked up again only when a recipient asks. A round
 *	delivers at most batch rows, in domain order, starting after the
 *	cursor; the cursor moves past them, and back to the start once a
 *	round reaches the end, so every due row is delivered within
 *	ceil(due / batch) rounds whatever its name. This is the module's one
 *	read of the cache (cache_due).
 *
 * DIAGNOSTICS
 *	Nothing fails: every failure becomes the row's last_error and res's
 *	error. Warnings and notices go to log_msg, prefixed with the domain.
 */
#ifndef MTS_REFRESH_H
#define MTS_REFRESH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cache.h"
#include "config.h"
#include "dns.h"
#include "err.h"
#include "fetch.h"
#include "status.h"

/* The outside world of one step; tests replace it. */
struct refresh_io {
    void *arg;
    /* The TXT records of qname, as dns_query(DNS_TXT): out always filled. */
    void (*txt)(void *arg, const char *qname, struct dns_answer *out, struct mts_err *err);
    /* The A and AAAA records of host, as dns_addresses. */
    void (*addresses)(void *arg, const char *host, struct dns_answer *out, struct mts_err *err);
    /* The policy of domain from one of addrs, as fetch_policy: 0, or -1 with err. */
    int (*fetch)(void *arg, const char *domain, const char *const *addrs, size_t n_addrs,
                 struct fetch_result *out, struct mts_err *err);
};

/* One §5.1 step at time now; see DESCRIPTION. res->domain is left as it is. */
void refresh_step(const struct config *cfg, const struct refresh_io *io, struct cache_entry *e,
                  int64_t now, struct status_result *res);

/*
 * What row e says at time now, with no I/O: true with res filled when it
 * answers (a policy within max_age, or a negative status not expired);
 * false when it is too old to answer anything.
 */
bool refresh_status_from_row(const struct cache_entry *e, int64_t now,
                             struct status_result *res);

/* The same, moving e's MX patterns into res rather than copying them (e
 * keeps none afterwards): for the warm path, whose row is a fresh copy
 * the caller frees next. */
bool refresh_status_take_row(struct cache_entry *e, int64_t now, struct status_result *res);

/* Where the background refresher's next round starts. */
struct refresh_cursor {
    char after[CACHE_DOMAIN_MAX + 1]; /* "" = the first row */
};

/*
 * One round of the refresher (see DESCRIPTION): calls fn for each row
 * picked (fn's non-zero return stops the round, the cursor then stays
 * after the last row fn accepted). Returns the count delivered in *n;
 * the cache_due status, with err, otherwise CACHE_OK.
 */
enum cache_status refresh_round(struct cache *c, const struct config *cfg, int64_t now,
                                size_t batch, struct refresh_cursor *cur, cache_row_fn fn,
                                void *arg, size_t *n, struct mts_err *err);

#endif
