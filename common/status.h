/*
 * status - what a domain's MTA-STS status is, below cache, refresh and
 * discover.
 *
 * SYNOPSIS
 *	#include "status.h"
 *
 *	enum discover_status s = discover_status_of_mode(POLICY_MODE_TESTING);
 *	const char *word = discover_status_name(s);
 *	int code = nametab_code(discover_status_names, NAMETAB_EXACT, "absent");
 *	bool ok = discover_result_mx_allows(&res, "mx1.example.net");
 *	discover_result_free(&res);
 *
 * DESCRIPTION
 *	The six statuses of DESIGN.md ("What a domain's status is") and their
 *	words, spelled once here: the cache stores the word, everything else
 *	passes the enum. nametab_code returns -1 for a word that is not a
 *	status.
 *
 *	struct discover_result is a status with what it rests on: the
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

enum discover_status {
    DISCOVER_ENFORCE,
    DISCOVER_TESTING,
    DISCOVER_NONE,
    DISCOVER_ABSENT,
    DISCOVER_FAILED,
    DISCOVER_UNKNOWN
};

enum discover_source {
    DISCOVER_FROM_CACHE,
    DISCOVER_FROM_FRESH
};

struct discover_result {
    enum discover_status status;
    enum discover_source source;
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
};

/* "enforce", "testing", "none", "absent", "failed", "unknown"; {NULL, -1}. */
extern const struct nametab discover_status_names[];

/* The status a valid policy of mode m gives: enforce, testing or none. */
enum discover_status discover_status_of_mode(enum policy_mode m);

/* The word of discover_status_names; "unknown" for a value out of range. */
const char *discover_status_name(enum discover_status s);

/* Frees the mx list (mx NULL, n_mx 0). */
void discover_result_free(struct discover_result *res);

/* A copy of src into dst, the mx list duplicated (none when out of memory). */
void discover_result_copy(struct discover_result *dst, const struct discover_result *src);

/* Does a policy mx pattern of the result match host? */
bool discover_result_mx_allows(const struct discover_result *res, const char *host);

#endif
