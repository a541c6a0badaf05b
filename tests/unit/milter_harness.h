/*
 * NAME
 *	milter_harness - the libmilter callbacks of milter/filter.c driven in
 *	process, with no MTA and no network; shared by test_filter and
 *	test_decide.
 *
 * DESCRIPTION
 *	The fakes: every libmilter call of the filter goes through `smfi`
 *	(milter/smfi.h); group_setup() replaces it with fakes that record
 *	each call (calls[], n_calls) and check it against the milter
 *	protocol as they go. A connection's SMFICTX * is CTX(i), an address
 *	inside a page mapped PROT_NONE.
 *
 *	The world: world_start(extra) builds a runtime from a fresh
 *	configuration (the base in milter_harness.c plus extra) and a fresh
 *	cache pre-filled with enforce, testing, none, absent, failed and
 *	unknown domains; DNS is answered by libunbound local zones. See the
 *	comment atop test_filter.c.
 *
 *	The MTA side: negotiate, connect_peer, session_open, mail_from,
 *	rcpt_to, header, end_of_message, abort_message, close_conn, and
 *	checks on what the filter did (expect_rc, expect_tags, expect_reply).
 */
#ifndef MTS_MILTER_HARNESS_H
#define MTS_MILTER_HARNESS_H

#include <stdbool.h>
#include <stddef.h>

#include <libmilter/mfapi.h>

#define N_CONN 4		/* connections a test may open */
#define MAX_MACROS 12
#define MAX_CALLS 400
#define MAX_SYMREADS 64
#define TEXT_MAX 1200

/* Where a connection is in the milter protocol (SMFIM_* and ours). */
#define STAGE_NEGOTIATE (-2)
#define STAGE_NONE (-1)
#define STAGE_HEADER 20
#define STAGE_ABORT 21
#define STAGE_CLOSE 22

struct fake {
    void *priv;
    int stage;
    bool negotiated;
    unsigned long pf1;		/* the protocol flags the filter asked for */
    struct {
        const char *name, *value;
    } macro[MAX_MACROS];
    size_t n_macro;
};

enum call_kind {
    CALL_SETREPLY,
    CALL_INSHEADER,
    CALL_CHGHEADER,
    CALL_QUARANTINE,
    CALL_SETSYMLIST
};

struct symread {
    int stage;
    char name[64];
};

struct call {
    enum call_kind kind;
    int conn;
    int index;			/* header index; symbol list stage */
    bool value_null;		/* chgheader with a NULL value (delete) */
    char name[64];		/* rcode; header name */
    char xcode[16];
    char text[TEXT_MAX];	/* reply text; header value; reason; macro list */
};

#define CTX(i) ((SMFICTX *)(void *)(ctx_page + (i)))

#define ENFORCE_MAX_AGE 2592000
#define SENDER "<alice@sender.example>"
#define AUTH_USER "alice"
#define HOSTILE_ERROR "upstream said %s\r\nINJECT: 250 2.0.0 ok %n 100%"
/* leaky.example's reason (%s: the cache file): internals a reply must not show. */
#define LEAKY_ERROR_FMT "cache unreadable: database is locked: %s; resolver 127.0.0.53 timed out"

/* What the MTA offers in negotiation: everything it knows. */
#define OFFER_ACTIONS                                                                   \
    (SMFIF_ADDHDRS | SMFIF_CHGBODY | SMFIF_ADDRCPT | SMFIF_DELRCPT | SMFIF_CHGHDRS |    \
     SMFIF_QUARANTINE | SMFIF_CHGFROM | SMFIF_ADDRCPT_PAR | SMFIF_SETSYMLIST)
#define OFFER_PROTOCOL SMFI_CURR_PROT

enum peer {
    PEER_TCP,			/* an SMTP client: 192.0.2.10 port 41234 */
    PEER_NONE,			/* no address: non-SMTP mail */
    PEER_PORT0,			/* 127.0.0.1 port 0: Postfix non_smtpd_milters */
    PEER_PORT0_V6		/* ::1 port 0 */
};

struct negotiated {
    unsigned long f[4];
};

extern struct fake fakes[N_CONN];
extern struct call calls[MAX_CALLS];
extern size_t n_calls;
extern size_t n_symreads;
extern char *ctx_page;
extern struct symread symreads[MAX_SYMREADS];

const char *stage_name(int stage);
void set_macro(int conn, const char *name, const char *value);
size_t count_calls(int conn, enum call_kind kind);
const struct call *nth_call(int conn, enum call_kind kind, size_t k);
void forget_calls(void);
struct runtime *build_runtime(const char *extra);
void world_start(const char *extra);
void world_shutdown(void);
void world_end(void);
bool cache_has_row(const char *domain);
int group_setup(void **state);
int group_teardown(void **state);
sfsistat negotiate(int conn, unsigned long f0, unsigned long f1, struct negotiated *out);
sfsistat connect_peer(int conn, enum peer peer);
void session_open(int conn, enum peer peer);
sfsistat mail_from(int conn, const char *from, const char *auth, const char *qid);
sfsistat mail_from_params(int conn, const char *from, const char *auth, const char *qid,
                          const char *params);
sfsistat rcpt_to(int conn, const char *rcpt, const char *mailer, const char *host);
void header(int conn, const char *name, const char *value);
sfsistat end_of_message(int conn);
sfsistat abort_message(int conn);
sfsistat close_conn(int conn);
const char *rc_name(sfsistat rc);
void expect_rc(sfsistat got, sfsistat want, const char *what);
void expect_tags(int conn, const char *const *want, size_t n_want);
void expect_reply(int conn, const char *rcode, const char *xcode, const char *const *frags);

#endif
