/*
 * reply - SMTP replies that are safe to hand to the MTA.
 *
 * SYNOPSIS
 *	reply_code_parse("450 4.7.5", '4', &code, &err);
 *	reply_build(&code, "partner.test requires ...", &out);
 *	smfi_setreply(ctx, out.rcode, out.xcode, out.text);
 *
 * DESCRIPTION
 *	Like Postfix's milter8_valid_smtp_reply(), every reply is checked
 *	before the MTA sees it: a 4xx code with a 4.x.x enhanced code or a
 *	5xx with 5.x.x, never mixed; the text has no CR, LF or other control
 *	character (each becomes a space), '%' is doubled (libmilter treats
 *	the text as a format), and the whole line is at most REPLY_MAX_LINE
 *	characters. The text may quote remote data, which is never trusted.
 *
 * DIAGNOSTICS
 *	reply_code_parse returns -1 and a reason for a malformed code.
 */
#ifndef MTS_REPLY_H
#define MTS_REPLY_H

#include "err.h"

#define REPLY_MAX_LINE 980

struct reply_code {
    char rcode[4];		/* "450" */
    char xcode[16];		/* "4.7.5" */
};

struct reply {
    char rcode[4];
    char xcode[16];
    char text[REPLY_MAX_LINE + 1];
};

/* Parses "450 4.7.5"; class is '4' or '5': the code must be of that class. */
int reply_code_parse(const char *spec, char class, struct reply_code *out, struct mts_err *err);

/*
 * Builds a safe reply from a checked code and untrusted text: controls
 * become spaces, bytes outside ASCII become '?', '%' is doubled, and the
 * text is cut to fit REPLY_MAX_LINE (never between the two '%' of a pair).
 */
void reply_build(const struct reply_code *code, const char *text, struct reply *out);

/*
 * Untrusted text for a place that is not a format (a hold reason): controls
 * become spaces, bytes outside ASCII '?', cut to outsz - 1; '%' kept as is.
 */
void reply_clean_text(const char *in, char *out, size_t outsz);

#endif
