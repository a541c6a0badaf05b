/*
 * policy - RFC 8461 §3.1 TXT record and §3.2 policy text parsers.
 *
 * SYNOPSIS
 *	#include "policy.h"
 *
 *	int policy_txt_parse(const char *rec, size_t len,
 *	                     struct policy_txt *out, struct mts_err *err);
 *	enum policy_txt_result policy_txt_select(const struct policy_txt_input *recs,
 *	                     size_t n, struct policy_txt *out, struct mts_err *err);
 *	int policy_txt_from_rdata(const unsigned char *rdata, size_t len,
 *	                     char *out, size_t outsz, size_t *outlen,
 *	                     struct mts_err *err);
 *	int policy_parse(const char *text, size_t len, struct policy *out,
 *	                     struct mts_err *err);
 *	void policy_free(struct policy *p);
 *	bool policy_mx_allows(const struct policy *p, const char *host);
 *
 * DESCRIPTION
 *	Pure parsers: no I/O, no global state, safe from any thread. Every input
 *	is untrusted bytes with an explicit length (NUL bytes included). On
 *	success they return 0; on failure -1 and a reason in err naming the
 *	line, field or byte that was wrong.
 *
 *	Choices where RFC 8461 leaves room (each one tested in
 *	tests/unit/test_policy.c):
 *
 *	TXT record
 *	- It must begin with the exact bytes "v=STSv1" followed by end of
 *	  record, WSP or ';' ("v=STSv1 ;" is valid per the ABNF delimiter
 *	  *WSP ";" *WSP; erratum 6285).
 *	- An empty field (";;", or "; ;") is invalid: the ABNF has no empty
 *	  field. One trailing delimiter is allowed, and so is whitespace after
 *	  the last field without one ("v=STSv1; id=abc "): the ABNF has no
 *	  place for it, but it is unambiguous, and refusing it would quietly
 *	  turn a domain's policy off.
 *	- A duplicated id: the first is used and the rest ignored (§3.2, last
 *	  paragraph, applies to TXT records too), but each must still be
 *	  syntactically valid.
 *	- Unknown fields are ignored but must match the extension grammar
 *	  (name 1-32 of alnum/_/-/. starting alnum; value 1+ of %x21-3A /
 *	  %x3C / %x3E-7E): a record that breaks its own grammar is invalid.
 *	- Any byte outside printable US-ASCII (and WSP) makes the record
 *	  invalid (§3.1: MUST be US-ASCII).
 *	- Records longer than POLICY_TXT_MAX_BYTES are invalid.
 *
 *	Policy text
 *	- Lines end in LF or CRLF, mixed freely; a CR not followed by LF is an
 *	  error. One final line end is optional. An empty line anywhere
 *	  (including a blank line at the end) is an error: the ABNF has none,
 *	  and a policy that stops early could hide fields.
 *	- A line is key ":" *WSP value *WSP. Whitespace before the colon, a
 *	  leading space on a line, or a line without a colon is an error.
 *	  Every key, known or not, must match the extension-name grammar
 *	  (1-32 of alnum/_/-/. starting alnum); unknown ones are then ignored.
 *	  A key differing from a known one only in case ("Mode") is such an
 *	  unknown key; if the real key is then missing, the error names both.
 *	- A repeated version, mode or max_age line is ignored whatever its
 *	  value (§3.2: "all entries except for the first SHALL be ignored").
 *	- Keys and the values of version and mode are case-sensitive (%s in
 *	  the ABNF). An error names a key that differs only in case.
 *	- A duplicated version, mode or max_age: the first wins (§3.2); the
 *	  later line must still be a syntactically valid line.
 *	- An empty value is an error for every key (extension values are
 *	  1*vchar in the ABNF).
 *	- max_age is 1 to 10 digits, no sign, no other characters, at most
 *	  POLICY_MAX_AGE_LIMIT. Larger values are rejected, not capped.
 *	- mx values must be valid patterns (mxmatch_pattern_check); an invalid
 *	  pattern rejects the policy. At most POLICY_MAX_MX patterns. The 253
 *	  character limit applies to the whole pattern, "*." included.
 *	- A NUL byte, any other control character (but TAB as WSP) or invalid
 *	  UTF-8 anywhere is an error. Non-ASCII UTF-8 is allowed only in
 *	  values of unknown keys (the ABNF allows UTF-8 there).
 *	- Input over POLICY_MAX_BYTES is rejected before it is read.
 */
#ifndef MTS_POLICY_H
#define MTS_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "nametab.h"

#define POLICY_MAX_BYTES 65536		/* §3.3 suggested limit, our hard one */
#define POLICY_MAX_AGE_LIMIT 31557600u	/* §3.2 */
#define POLICY_MAX_MX 1000		/* far beyond any real MX set */
#define POLICY_TXT_MAX_BYTES 4096	/* one record, strings concatenated */
#define POLICY_ID_MAX 32		/* §3.1 sts-id */

enum policy_mode {
    POLICY_MODE_ENFORCE,
    POLICY_MODE_TESTING,
    POLICY_MODE_NONE
};

struct policy_txt {
    char id[POLICY_ID_MAX + 1];
};

/* One TXT record as the resolver returned it, strings already concatenated. */
struct policy_txt_input {
    const char *data;
    size_t len;
};

enum policy_txt_result {
    POLICY_TXT_OK,		/* exactly one valid STSv1 record; out filled */
    POLICY_TXT_NONE,		/* no record begins with v=STSv1 */
    POLICY_TXT_MULTIPLE,	/* more than one does: no usable record */
    POLICY_TXT_INVALID		/* exactly one does, and it is invalid */
};

struct policy {
    enum policy_mode mode;
    uint32_t max_age;
    size_t n_mx;
    char **mx;			/* validated patterns, lower-cased */
};

/* Parses one TXT record that must be an STSv1 record. */
int policy_txt_parse(const char *rec, size_t len, struct policy_txt *out,
                     struct mts_err *err);

/* Does this record claim to be STSv1 (begin with "v=STSv1" then end/WSP/';')? */
bool policy_txt_is_sts(const char *rec, size_t len);

/*
 * Applies §3.1 to every TXT record at _mta-sts.<domain>: discards records
 * that are not STSv1 and parses the one that is left. err explains every
 * result but POLICY_TXT_OK.
 */
enum policy_txt_result policy_txt_select(const struct policy_txt_input *recs,
                                         size_t n, struct policy_txt *out,
                                         struct mts_err *err);

/*
 * Concatenates the character-strings of one TXT RDATA (each a length byte
 * then that many bytes) into out, NUL-terminated; *outlen gets the length.
 * Fails on empty RDATA (RFC 1035: a TXT record holds one or more strings),
 * a string that runs past the RDATA, or a result that would not fit.
 */
int policy_txt_from_rdata(const unsigned char *rdata, size_t len, char *out,
                          size_t outsz, size_t *outlen, struct mts_err *err);

/* Parses a policy body. On success *out owns memory; free with policy_free. */
int policy_parse(const char *text, size_t len, struct policy *out,
                 struct mts_err *err);

void policy_free(struct policy *p);

/* "enforce", "testing", "none"; {NULL, -1}. */
extern const struct nametab policy_mode_names[];

/* "enforce", "testing" or "none" ("invalid" for anything else). */
const char *policy_mode_name(enum policy_mode mode);

/* Parses "enforce" / "testing" / "none"; -1 on anything else. */
int policy_mode_from_name(const char *name, enum policy_mode *out);

/* Does any mx pattern of p match host (§4.1)? */
bool policy_mx_allows(const struct policy *p, const char *host);

#endif
