/*
 * status - what a domain's MTA-STS status is, below cache, refresh and
 * discover.
 *
 * SYNOPSIS
 *	#include "status.h"
 *
 *	enum status_kind s = status_kind_of_mode(POLICY_MODE_TESTING);
 *	const char *word = status_kind_name(s);
 *	int code = nametab_code(status_kind_names, NAMETAB_EXACT, "absent");
 *	bool ok = status_result_mx_allows(&res, "mx1.example.net");
 *	status_result_free(&res);
 *
 * DESCRIPTION
 *	The six statuses of DESIGN.md ("What a domain's status is") and their
 *	words, spelled once here: the cache stores the word, everything else
 *	passes the enum. nametab_code returns -1 for a word that is not a
 *	status.
 *
 *	struct status_result is a status with what it rests on: the
 *	policy (its mx patterns a list), the TXT id, the times, the reason.
 *
 * DIAGNOSTICS
 *	None: no I/O, nothing fails.
 */
#ifndef MTS_STATUS_H
#define MTS_STATUS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "nametab.h"
#include "policy.h"

enum status_kind {
    STATUS_ENFORCE,
    STATUS_TESTING,
    STATUS_NONE,
    STATUS_ABSENT,
    STATUS_FAILED,
    STATUS_UNKNOWN
};

enum status_source {
    STATUS_FROM_CACHE,
    STATUS_FROM_FRESH,
    STATUS_FROM_FLEET	/* a row another host of the fleet learnt (fleet.h) */
};

/* The longest origin, with its NUL (cache.h, CACHE_SOURCE_MAX). */
#define STATUS_ORIGIN_MAX 64

struct status_result {
    enum status_kind status;
    enum status_source source;
    char domain[254];
    char txt_id[POLICY_ID_MAX + 1];	/* "" when none is known */
    bool has_policy;
    enum policy_mode mode;
    uint32_t max_age;
    char **mx;			/* policy mx patterns, mx[0..n_mx-1]; NULL without policy */
    size_t n_mx;
    int64_t fetched_at, expires_at, checked_at;
    char dnssec[16];		/* "secure", "insecure" or "" (not known) */
    char error[256];		/* why, or "" */
    bool rechecked;		/* DISCOVER_RECHECK: the TXT id check completed */
    char origin[STATUS_ORIGIN_MAX];	/* the row's source: "" learnt here, else
					   the host of the fleet that learnt it */
};

/* "enforce", "testing", "none", "absent", "failed", "unknown"; {NULL, -1}. */
extern const struct nametab status_kind_names[];

/* The status a valid policy of mode m gives: enforce, testing or none. */
enum status_kind status_kind_of_mode(enum policy_mode m);

/* The word of status_kind_names; "unknown" for a value out of range. */
const char *status_kind_name(enum status_kind s);

/* Frees the mx list (mx NULL, n_mx 0). */
void status_result_free(struct status_result *res);

/* A copy of src into dst, the mx list duplicated (none when out of memory). */
void status_result_copy(struct status_result *dst, const struct status_result *src);

/* Does a policy mx pattern of the result match host? */
bool status_result_mx_allows(const struct status_result *res, const char *host);

#endif
