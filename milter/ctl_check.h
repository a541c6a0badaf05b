/*
 * ctl_check - the state of one `mtasts-ctl check` (ctl_check.c), shared
 * with its output (ctl_check_out.c). Private to those two files.
 */
#ifndef MTS_CTL_CHECK_H
#define MTS_CTL_CHECK_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "ctl.h"
#include "discover.h"
#include "dns.h"
#include "domain.h"
#include "mxmatch.h"
#include "probecache.h"
#include "probeconf.h"
#include "tlsa.h"
#include "tlsprobe.h"

#define CHECK_MAX_HOSTS 10     /* MX hosts probed, the most preferred first */
#define CHECK_MAX_ADDRS PROBECACHE_ADDR_MAX /* addresses probed per host, as the milter */
#define CHECK_PARALLEL 8       /* probes at once */
#define CHECK_MAX_MS 300000
#define CHECK_TXT_SHOWN 8      /* TXT records shown */
#define CHECK_TEXT_MAX 512

/* The domain grade: the probe grades, and none for a null MX. */
enum check_grade {
    CHECK_GOOD = TLSPROBE_GRADE_GOOD,
    CHECK_WEAK = TLSPROBE_GRADE_WEAK,
    CHECK_UNVERIFIED = TLSPROBE_GRADE_UNVERIFIED,
    CHECK_FAIL = TLSPROBE_GRADE_FAIL,
    CHECK_UNKNOWN = TLSPROBE_GRADE_UNKNOWN,
    CHECK_NONE
};

/* What a sender enforcing MTA-STS does with mail for the domain. */
enum check_action {
    ACTION_DELIVER,        /* to the hosts listed */
    ACTION_DEFER,          /* enforce, and no MX host can be used */
    ACTION_NOT_APPLICABLE, /* testing, none, absent, failed: MTA-STS demands nothing */
    ACTION_NO_MAIL,        /* null MX (RFC 7505) */
    ACTION_UNKNOWN         /* the policy could not be learnt now */
};

struct check_probe {
    size_t host;
    char address[64];
    struct tlsprobe_result r;
    struct tlsprobe_grade g;
    struct probecache_row row; /* as the milter would keep it */
    bool have_row;             /* the probe ran */
};

struct check_host {
    char name[MXMATCH_NAME_MAX + 1];
    int pref;                  /* -1: not an MX record (--mx elsewhere) */
    char canonical[256];       /* "" unless the name is a CNAME */
    enum dns_status dns;       /* of the address lookup */
    char dns_error[256];
    size_t n_addrs;            /* addresses found (probed: at most CHECK_MAX_ADDRS) */
    size_t first, n_probes;    /* its probes */
    char not_probed[256];      /* why an address was left out (probeconf_may_connect) */
    int match;                 /* -1: no policy; 0 or 1 */
    enum tlsprobe_grade_word grade;
    char why[TLSPROBE_REASON_MAX]; /* the reason of the probe that gave the grade */
    struct tlsa_set tlsa;      /* its TLSA records (RFC 7672) */
    enum tlsa_dane dane;       /* and the DANE outcome of its probes */
    int pkix;                  /* WebPKI-valid at every judged address: 1, 0; -1 none judged */
};

struct check {
    char domain[DOMAIN_NAME_MAX + 1];
    int port, timeout;         /* 0: the configuration's */
    bool store;                /* --store */
    const char *only;          /* --mx */
    struct probeconf pc;       /* the milter's probe options */
    struct dns_answer txt, mx;
    struct mts_err txt_err, mx_err;
    struct status_result res;
    struct ctl_resolver_notes resolver; /* the resolver's part, as lookup says it */
    bool null_mx, implicit_mx;
    size_t n_mx;               /* MX host names in DNS (after normalising) */
    struct check_host hosts[CHECK_MAX_HOSTS];
    size_t n_hosts;
    struct check_probe *probes;
    size_t n_probes;
    /* probing */
    pthread_mutex_t mu;
    size_t next;
    struct timespec phase_end;
    /* the judgement */
    enum check_action action;
    char sender[2 * CHECK_TEXT_MAX];
    enum check_grade grade;
    char grade_why[CHECK_TEXT_MAX];
    char notes[4][CHECK_TEXT_MAX];
    size_t n_notes;
};

/* Does the host pass RFC 8461 (grade good or weak)? With DANE the grade
 * is DANE's (tlsprobe.h); a failed TLSA lookup bars the host. */
static inline bool
ctl_check_passes(const struct check_host *h)
{
    return (h->grade == TLSPROBE_GRADE_GOOD || h->grade == TLSPROBE_GRADE_WEAK) &&
           h->dane != TLSA_DANE_LOOKUP_FAILED;
}

/* The report as JSON (a new reference), or printed for a person. */
json_t *ctl_check_json(const struct check *c, long elapsed_ms);
void ctl_check_print(const struct check *c, long elapsed_ms);

/* ctl_check_dane.c: DANE (RFC 7672) in a check. */
/* Each host's TLSA records (only below secure addresses: tlsa.h). */
void check_dane_lookup(struct check *c, struct dns *d, const struct timespec *deadline);
/* A host's DANE outcome from its TLSA records and its probes. */
void check_dane_host(const struct check *c, struct check_host *h);
/* A domain without MTA-STS enforce whose hosts have DANE: the sender's
 * action and the grade by DANE; false when DANE does not apply. */
bool check_dane_judge(struct check *c);
void check_dane_print(const struct check_host *h);
void check_dane_json(json_t *jh, const struct check_host *h);

#endif
