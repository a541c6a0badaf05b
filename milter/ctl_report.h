/*
 * NAME
 *	ctl_report - the figures of `mtasts-ctl report` and their three
 *	forms: HTML with inline SVG (ctl_report_html.c), JSON and CSV
 *	(ctl_report_text.c).
 *
 * SYNOPSIS
 *	struct ctl_report r;	filled by ctl_report.c from the shared cache
 *	ctl_report_html(&r, out);  ctl_report_json(&r, out);  ctl_report_csv(&r, out);
 *	ctl_report_need_text(need, host, buf, size);
 *
 * DESCRIPTION
 *	The figures of a period (verdict_stats rows of day >= since):
 *	recipients by path kind per day and in total, by action and outcome,
 *	by rule and action, the domains written to with what the cache says
 *	of each now (MTA-STS status, DANE, the probe grade of its MX hosts)
 *	and, for those without an authenticated path, what they would need.
 *	Words (action, outcome, path kind, status, grade, DANE) are the
 *	project's enums, kept here as codes; domains and rules are text from
 *	the database: hostile input, escaped by every writer for its form.
 *
 * DIAGNOSTICS
 *	The writers return 0, or -1 when the output could not be written
 *	(the stream's error) or memory ran out.
 */
#ifndef MTS_CTL_REPORT_H
#define MTS_CTL_REPORT_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "metrics.h"
#include "stats.h"

/* The path kinds of stats.h, best first: metrics.h's, whose words are
 * metrics_path_names. */
enum ctl_report_path {
    CTL_REPORT_PATH_DANE = METRICS_PATH_DANE,
    CTL_REPORT_PATH_MTA_STS = METRICS_PATH_MTA_STS,
    CTL_REPORT_PATH_VERIFIED_TLS = METRICS_PATH_VERIFIED_TLS,
    CTL_REPORT_PATH_TLS = METRICS_PATH_TLS,
    CTL_REPORT_PATH_NONE = METRICS_PATH_NONE,
    CTL_REPORT_PATH_UNKNOWN = METRICS_PATH_UNKNOWN,
    CTL_REPORT_NPATHS = METRICS_NPATHS
};
#define CTL_REPORT_NACTIONS 5  /* decide_effect_names: untouched .. hold */
#define CTL_REPORT_NOUTCOMES 4 /* verdict_outcome_names: pass .. unknown */
#define CTL_REPORT_TOP 20      /* domains without an authenticated path shown */

/* What a domain without an authenticated path would need: one fixed phrase each. */
enum ctl_report_need {
    CTL_REPORT_NEED_MTA_STS_ENFORCE, /* publish an MTA-STS policy in enforce mode */
    CTL_REPORT_NEED_FIX_POLICY,      /* make its MTA-STS policy fetchable (status failed) */
    CTL_REPORT_NEED_STARTTLS,        /* offer STARTTLS with TLS 1.2 or newer at HOST */
    CTL_REPORT_NEED_FIX_CERT,        /* fix the certificate of HOST */
    CTL_REPORT_NEED_FIX_DANE,        /* fix the TLSA records of HOST */
    CTL_REPORT_NEED_REACHABLE,       /* make HOST reachable on port 25 (grade unknown) */
    CTL_REPORT_NEED_ROUTE,           /* enforce now: send through a transport that enforces */
    CTL_REPORT_NEED_NO_MAIL,         /* a null MX: the domain takes no mail */
    CTL_REPORT_NEED_CHECK            /* nothing known now: run mtasts-ctl check */
};

/* What the cache says of a domain now; a code of -1: not known. */
struct ctl_report_facts {
    bool in_cache;   /* a row in table domains */
    int status;      /* enum status_kind, -1: no row or no status */
    bool has_mx;     /* an MX set is cached */
    bool null_mx;
    int grade;       /* enum tlsprobe_grade_word, the worst of its probed MX hosts; -1 */
    char grade_host[STATS_DOMAIN_MAX + 1]; /* the host that grade comes from */
    int dane;        /* enum tlsa_dane, the worst of its probe rows; -1: no rows */
    char dane_host[STATS_DOMAIN_MAX + 1];
};

/* A domain written to: its recipients in the period. */
struct ctl_report_domain {
    char domain[STATS_DOMAIN_MAX + 1];
    uint64_t total, unauth; /* recipients; of them without an authenticated path */
    uint64_t path[CTL_REPORT_NPATHS];
};

/* One of the domains most written to without an authenticated path. */
struct ctl_report_top {
    struct ctl_report_domain d;
    struct ctl_report_facts f;
    enum ctl_report_need need;
    char need_host[STATS_DOMAIN_MAX + 1];
};

struct ctl_report_day {
    char day[11];
    uint64_t total;
    uint64_t path[CTL_REPORT_NPATHS];
};

struct ctl_report_rule {
    char rule[STATS_RULE_MAX + 1];
    uint64_t total;
    uint64_t action[CTL_REPORT_NACTIONS];
};

/* DANE and MTA-STS among the domains written to, from the cache now. */
struct ctl_report_adoption {
    uint64_t domains;      /* written to in the period (the overflow key not counted) */
    uint64_t looked_up;    /* of them with a row in the cache */
    uint64_t mta_sts_enforce, mta_sts_testing;
    uint64_t dane;         /* a probe row with DANE (verified, failed or unusable) */
    uint64_t either;       /* MTA-STS enforce or DANE */
    uint64_t authenticated;/* at least one recipient on a dane or mta-sts path */
};

struct ctl_report {
    char since[11], until[11]; /* the first day asked for; today (UTC) */
    int64_t generated;         /* Unix time */
    uint64_t total, dry_run, unauth;
    uint64_t path[CTL_REPORT_NPATHS];
    uint64_t action[CTL_REPORT_NACTIONS];
    uint64_t outcome[CTL_REPORT_NOUTCOMES];
    uint64_t refused[CTL_REPORT_NACTIONS][CTL_REPORT_NOUTCOMES]; /* action x outcome */
    uint64_t other_words;      /* rows whose action, outcome or path word is unknown */
    struct ctl_report_day *days;
    size_t ndays;
    struct ctl_report_rule *rules; /* the most recipients first */
    size_t nrules;
    struct ctl_report_domain *doms; /* every domain written to, the most recipients
                                       without an authenticated path first */
    size_t ndoms;
    struct ctl_report_top top[CTL_REPORT_TOP]; /* the first of doms with unauth > 0 */
    size_t ntop;
    struct ctl_report_adoption adoption;
};

/* Words of the codes above ("?" out of range: never NULL). */
const char *ctl_report_path_name(int p);
const char *ctl_report_action_name(int a);
const char *ctl_report_outcome_name(int o);
const char *ctl_report_need_name(enum ctl_report_need n);
/* Status, grade and DANE words of facts; "" for -1. */
const char *ctl_report_status_name(int s);
const char *ctl_report_grade_name(int g);
const char *ctl_report_dane_name(int d);
/* Does action a refuse a recipient, now or later (defer, reject, hold)? */
bool ctl_report_refusal(int a);
/* The need's phrase for a person, with host where it names one. */
void ctl_report_need_text(enum ctl_report_need n, const char *host, char *out, size_t outsz);
/* n of total as a percentage with one decimal ("0.0" when total is 0). */
void ctl_report_share(uint64_t n, uint64_t total, char *out, size_t outsz);

int ctl_report_html(const struct ctl_report *r, FILE *out);
int ctl_report_json(const struct ctl_report *r, FILE *out);
int ctl_report_csv(const struct ctl_report *r, FILE *out);

#endif
