/*
 * nametab - one table between an enum's codes and its words, in the shape
 * of Postfix's name_code(): every enum <-> word conversion in the project
 * goes through one of these, so a word is spelled in exactly one place.
 *
 * SYNOPSIS
 *	static const struct nametab mode_names[] = {
 *	    {"enforce", POLICY_ENFORCE}, {"testing", POLICY_TESTING},
 *	    {NULL, -1},		// the code returned for an unknown word
 *	};
 *	int code = nametab_code(mode_names, NAMETAB_EXACT, "enforce");
 *	const char *word = nametab_name(mode_names, POLICY_ENFORCE);
 *
 * DESCRIPTION
 *	A table ends with a NULL name; that entry's code is what
 *	nametab_code returns for a word not in the table, and nametab_name
 *	returns "?" for a code not in it (never NULL, so it can go into a
 *	log line as it is). NAMETAB_IGNORE_CASE compares words without case
 *	(for words an operator types); RFC 8461 words are case-sensitive.
 *
 *	nametab_list writes "a, b or c" for messages that say what is
 *	allowed.
 */
#ifndef MTS_NAMETAB_H
#define MTS_NAMETAB_H

#include <stddef.h>

struct nametab {
    const char *name;
    int code;
};

#define NAMETAB_EXACT 0
#define NAMETAB_IGNORE_CASE 1

int nametab_code(const struct nametab *t, int flags, const char *name);
/* The same for a word that is not NUL-terminated (len bytes). */
int nametab_coden(const struct nametab *t, int flags, const char *name, size_t len);
const char *nametab_name(const struct nametab *t, int code);
/* "a, b or c" into out (cut to outsz); returns out. */
const char *nametab_list(const struct nametab *t, char *out, size_t outsz);

#endif
