/*
 * noop_milter - the baseline of the milter benchmark: a libmilter filter
 * that does nothing but answer CONTINUE and add one header at end of
 * message, so that what mtasts-milter costs above libmilter shows.
 *
 * SYNOPSIS
 *	noop_milter -p SOCKET [-a] [-n] [-S] [-x | -T]
 *
 * DESCRIPTION
 *	-p SOCKET  unix:PATH, inet:PORT@HOST or inet6:PORT@HOST (a stale unix
 *	           socket is removed)
 *	By default it negotiates the steps mtasts-milter takes (CONNECT, MAIL,
 *	RCPT, headers, EOM: no HELO, DATA, EOH, body or unknown commands), so
 *	that both filters see the same protocol traffic.
 *	-a  take every step instead (HELO, DATA, EOH, body and unknown too)
 *	-n  waive the replies to CONNECT, HELO, DATA, headers, EOH, body and
 *	    unknown (SMFIP_NR_*), answering SMFIS_NOREPLY there
 *	-S  set the macro lists mtasts-milter sets (SMFIR_SETSYMLIST)
 *	-x  test mode, for the load driver's own tests: a RCPT is rejected
 *	    unless the macros i, {rcpt_mailer}, {rcpt_host} (RCPT) and
 *	    {auth_authen} (MAIL) arrived; a recipient in a domain starting
 *	    with "tempfail." is tempfailed, "reject." rejected; a body chunk
 *	    is answered SMFIS_SKIP when the MTA understands it.
 *	-T  tag as mtasts-milter does: at end of message, one header a
 *	    distinct recipient domain (at most TAG_DOMAINS), each inserted at
 *	    the top, of the length of mtasts-milter's tag header, instead of
 *	    the one X-Noop-Milter header; the second baseline, which shows
 *	    what the tag headers' protocol traffic costs apart from the
 *	    verdicts (mtasts-milter.8: one tag header per recipient domain).
 *	Stops on SIGTERM or SIGINT (libmilter's signal thread; up to 5 s).
 *
 * DIAGNOSTICS
 *	Exits 0 after a stop, 1 when libmilter cannot start, 2 on bad usage;
 *	complaints on stderr.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <libmilter/mfapi.h>

static bool all_steps, noreply, symlists, test_mode, tagging;

/* With -T: the message's distinct recipient domains, per connection. */
#define TAG_DOMAINS 16
struct tags {
    char domain[TAG_DOMAINS][256];
    size_t n;
};
static int macros_ok; /* its address is the per-connection "MAIL macros seen" mark */

#define NR_STEPS                                                                                   \
    (SMFIP_NR_CONN | SMFIP_NR_HELO | SMFIP_NR_DATA | SMFIP_NR_HDR | SMFIP_NR_EOH |                 \
     SMFIP_NR_BODY | SMFIP_NR_UNKN)

/* The reply to a step whose reply may be waived. */
static sfsistat
waivable(void)
{
    return noreply ? SMFIS_NOREPLY : SMFIS_CONTINUE;
}

static sfsistat
noop_negotiate(SMFICTX *ctx, unsigned long f0, unsigned long f1, unsigned long f2,
               unsigned long f3, unsigned long *pf0, unsigned long *pf1, unsigned long *pf2,
               unsigned long *pf3)
{
    unsigned long skip = SMFIP_NOHELO | SMFIP_NOUNKNOWN | SMFIP_NODATA | SMFIP_NOBODY |
                         SMFIP_NOEOH;

    (void)f2;
    (void)f3;
    if (noreply && (f1 & NR_STEPS) != NR_STEPS) {
        fprintf(stderr, "noop_milter: the MTA does not offer the SMFIP_NR_* flags (-n)\n");
        return SMFIS_REJECT;
    }
    *pf0 = f0 & (SMFIF_ADDHDRS | (symlists ? SMFIF_SETSYMLIST : 0));
    *pf1 = f1 & ((all_steps ? 0 : skip) | (noreply ? NR_STEPS : 0) |
                 (test_mode ? SMFIP_SKIP : 0));
    *pf2 = *pf3 = 0;
    if (symlists && (f0 & SMFIF_SETSYMLIST)) {
        smfi_setsymlist(ctx, SMFIM_CONNECT, "{daemon_name}");
        smfi_setsymlist(ctx, SMFIM_ENVFROM, "i {auth_authen} {daemon_name}");
        smfi_setsymlist(ctx, SMFIM_ENVRCPT, "i {rcpt_mailer} {rcpt_host}");
        smfi_setsymlist(ctx, SMFIM_EOM, "i");
    }
    return SMFIS_CONTINUE;
}

static sfsistat
noop_connect(SMFICTX *ctx, char *host, _SOCK_ADDR *addr)
{
    (void)ctx;
    (void)host;
    (void)addr;
    return waivable();
}

static sfsistat
noop_helo(SMFICTX *ctx, char *helo)
{
    (void)ctx;
    (void)helo;
    return waivable();
}

static sfsistat
noop_envfrom(SMFICTX *ctx, char **argv)
{
    (void)argv;
    if (test_mode)
        smfi_setpriv(ctx, smfi_getsymval(ctx, "{auth_authen}") ? &macros_ok : NULL);
    return SMFIS_CONTINUE;
}

static sfsistat
noop_envrcpt(SMFICTX *ctx, char **argv)
{
    const char *at;

    if (tagging) {
        struct tags *t = smfi_getpriv(ctx);

        if (t == NULL && (t = calloc(1, sizeof(*t))) != NULL && smfi_setpriv(ctx, t) != MI_SUCCESS) {
            free(t);
            t = NULL;
        }
        if (t == NULL || (at = strrchr(argv[0], '@')) == NULL)
            return SMFIS_CONTINUE;
        at++;
        for (size_t i = 0; i < t->n; i++)
            if (strncasecmp(t->domain[i], at, strcspn(at, ">")) == 0)
                return SMFIS_CONTINUE;
        if (t->n < TAG_DOMAINS)
            snprintf(t->domain[t->n++], sizeof(t->domain[0]), "%.*s", (int)strcspn(at, ">"), at);
        return SMFIS_CONTINUE;
    }
    if (!test_mode)
        return SMFIS_CONTINUE;
    if (smfi_getpriv(ctx) != &macros_ok || smfi_getsymval(ctx, "i") == NULL ||
        smfi_getsymval(ctx, "{rcpt_mailer}") == NULL ||
        smfi_getsymval(ctx, "{rcpt_host}") == NULL)
        return SMFIS_REJECT;
    if ((at = strrchr(argv[0], '@')) != NULL) {
        if (strncasecmp(at + 1, "tempfail.", 9) == 0)
            return SMFIS_TEMPFAIL;
        if (strncasecmp(at + 1, "reject.", 7) == 0)
            return SMFIS_REJECT;
    }
    return SMFIS_CONTINUE;
}

static sfsistat
noop_data(SMFICTX *ctx)
{
    (void)ctx;
    return waivable();
}

static sfsistat
noop_header(SMFICTX *ctx, char *name, char *value)
{
    (void)ctx;
    (void)name;
    (void)value;
    return waivable();
}

static sfsistat
noop_eoh(SMFICTX *ctx)
{
    (void)ctx;
    return waivable();
}

static sfsistat
noop_body(SMFICTX *ctx, unsigned char *chunk, size_t len)
{
    (void)ctx;
    (void)chunk;
    (void)len;
    if (noreply)
        return SMFIS_NOREPLY;
    return test_mode ? SMFIS_SKIP : SMFIS_CONTINUE;
}

static sfsistat
noop_eom(SMFICTX *ctx)
{
    if (tagging) {
        struct tags *t = smfi_getpriv(ctx);
        char v[512];

        /* The shape and length of a tag header of mtasts-milter's. */
        for (size_t i = t != NULL ? t->n : 0; i-- > 0;) {
            snprintf(v, sizeof(v), "domain=%s; status=enforce; id=20260101T000000; "
                     "requirement=verified-tls; verdict=pass; action=tag; tls=verified; "
                     "dane=verified", t->domain[i]);
            if (smfi_insheader(ctx, 0, "MTA-STS-Status", v) != MI_SUCCESS)
                return SMFIS_TEMPFAIL;
        }
        if (t != NULL)
            t->n = 0;
        return SMFIS_CONTINUE;
    }
    if (smfi_addheader(ctx, "X-Noop-Milter", "passed") != MI_SUCCESS)
        return SMFIS_TEMPFAIL;
    return SMFIS_CONTINUE;
}

static sfsistat
noop_abort(SMFICTX *ctx)
{
    struct tags *t = tagging ? smfi_getpriv(ctx) : NULL;

    if (t != NULL)
        t->n = 0;
    return SMFIS_CONTINUE;
}

static sfsistat
noop_close(SMFICTX *ctx)
{
    if (tagging)
        free(smfi_getpriv(ctx));
    smfi_setpriv(ctx, NULL);
    return SMFIS_CONTINUE;
}

static sfsistat
noop_unknown(SMFICTX *ctx, const char *cmd)
{
    (void)ctx;
    (void)cmd;
    return waivable();
}

static void
usage(void)
{
    fprintf(stderr, "usage: noop_milter -p SOCKET [-a] [-n] [-S] [-x | -T]\n"
                    "  -a all protocol steps, -n no replies where they can be waived,\n"
                    "  -S set macro lists, -x test mode, -T tag headers as mtasts-milter\n"
                    "  (see the source)\n");
    exit(2);
}

int
main(int argc, char **argv)
{
    struct smfiDesc desc = {
        "noop_milter", SMFI_VERSION, SMFIF_ADDHDRS, noop_connect, noop_helo, noop_envfrom,
        noop_envrcpt,  noop_header,  noop_eoh,      noop_body,    noop_eom,  noop_abort,
        noop_close,    noop_unknown, noop_data,     noop_negotiate,
    };
    const char *sock = NULL;
    int ch;

    while ((ch = getopt(argc, argv, "p:anSxT")) != -1) {
        switch (ch) {
        case 'p': sock = optarg; break;
        case 'a': all_steps = true; break;
        case 'n': noreply = true; break;
        case 'S': symlists = true; break;
        case 'x': test_mode = true; break;
        case 'T': tagging = true; break;
        default: usage();
        }
    }
    if (sock == NULL || optind != argc || (test_mode && tagging))
        usage();
    if (symlists)
        desc.xxfi_flags |= SMFIF_SETSYMLIST;
    if (smfi_setconn((char *)sock) != MI_SUCCESS || smfi_register(desc) != MI_SUCCESS ||
        smfi_opensocket(true) != MI_SUCCESS) {
        fprintf(stderr, "noop_milter: cannot listen on %s\n", sock);
        return 1;
    }
    fprintf(stderr, "noop_milter: listening on %s\n", sock);
    return smfi_main() == MI_SUCCESS ? 0 : 1;
}
