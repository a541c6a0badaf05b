/*
 * status - what a domain's MTA-STS status is, below cache and discover.
 *
 * SYNOPSIS
 *	#include "status.h"
 *
 *	enum discover_status s = discover_status_of_mode(POLICY_MODE_TESTING);
 *	const char *word = nametab_name(discover_status_names, s);
 *	int code = nametab_code(discover_status_names, NAMETAB_EXACT, "absent");
 *
 * DESCRIPTION
 *	The six statuses of DESIGN.md ("What a domain's status is") and their
 *	words, spelled once here: the cache stores the word, everything else
 *	passes the enum. nametab_code returns -1 for a word that is not a
 *	status.
 *
 * DIAGNOSTICS
 *	None: no I/O, nothing fails.
 */
#ifndef MTS_STATUS_H
#define MTS_STATUS_H

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

/* "enforce", "testing", "none", "absent", "failed", "unknown"; {NULL, -1}. */
extern const struct nametab discover_status_names[];

/* The status a valid policy of mode m gives: enforce, testing or none. */
enum discover_status discover_status_of_mode(enum policy_mode m);

#endif
