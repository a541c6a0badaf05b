/*
 * ctl_report_text - `mtasts-ctl report` as JSON (jansson: one object) and
 * as CSV (RFC 4180: one table of section, key, item, value). Both carry
 * the figures of ctl_report.h; man/mtasts-ctl.1 (REPORT) documents every
 * field and every row.
 */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "ctl_report.h"

#define NEED_TEXT_MAX 512

/* ---------------------------------------------------------------- JSON */

/*
 * Text from the database as a JSON string. jansson refuses text that is
 * not UTF-8 (json_string returns NULL); such a value (a row written by
 * hand) comes out with every byte outside printable ASCII as '?', never
 * dropped in silence.
 */
static json_t *
db_text(const char *s)
{
    json_t *j = json_string(s);
    char *copy;

    if (j != NULL)
        return j;
    if ((copy = strdup(s)) == NULL)
        return json_null();
    for (char *p = copy; *p != '\0'; p++)
        if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e)
            *p = '?';
    j = json_string(copy);
    free(copy);
    return j != NULL ? j : json_null();
}

static json_t *
word_or_null(const char *w)
{
    return w[0] != '\0' ? json_string(w) : json_null();
}

static json_t *
share_json(uint64_t n, uint64_t total)
{
    char s[32];

    ctl_report_share(n, total, s, sizeof(s));
    return json_real(strtod(s, NULL));
}

static json_t *
paths_json(const uint64_t *path)
{
    json_t *o = json_object();

    for (int p = 0; p < CTL_REPORT_NPATHS; p++)
        json_object_set_new(o, ctl_report_path_name(p), json_integer((json_int_t)path[p]));
    return o;
}

static json_t *
actions_json(const uint64_t *action)
{
    json_t *o = json_object();

    for (int a = 0; a < CTL_REPORT_NACTIONS; a++)
        json_object_set_new(o, ctl_report_action_name(a), json_integer((json_int_t)action[a]));
    return o;
}


static json_t *
domain_json(const struct ctl_report_top *d)
{
    char need[NEED_TEXT_MAX];

    ctl_report_need_text(d->need, d->need_host, need, sizeof(need));
    return json_pack("{s:o, s:I, s:I, s:o, s:o, s:o, s:o, s:o, s:s, s:o, s:b}",
                     "domain", db_text(d->d.domain),
                     "count", (json_int_t)d->d.unauth,
                     "total", (json_int_t)d->d.total,
                     "status", word_or_null(ctl_report_status_name(d->f.status)),
                     "dane", word_or_null(ctl_report_dane_name(d->f.dane)),
                     "grade", word_or_null(ctl_report_grade_name(d->f.grade)),
                     "grade_host", d->f.grade < 0 ? json_null() : db_text(d->f.grade_host),
                     "need_host", d->need_host[0] ? db_text(d->need_host) : json_null(),
                     "need", ctl_report_need_name(d->need),
                     "need_text", db_text(need),
                     "in_cache", d->f.in_cache);
}

int
ctl_report_json(const struct ctl_report *r, FILE *out)
{
    const struct ctl_report_adoption *a = &r->adoption;
    json_t *o = json_object(), *days = json_array(), *refusals = json_array();
    json_t *rules = json_array(), *doms = json_array(), *adopt, *shares = json_object();
    uint64_t auth = r->path[CTL_REPORT_PATH_DANE] + r->path[CTL_REPORT_PATH_MTA_STS];
    int rc;

    for (size_t i = 0; i < r->ndays; i++)
        json_array_append_new(days, json_pack("{s:s, s:I, s:o}", "day", r->days[i].day, "total",
                                              (json_int_t)r->days[i].total, "paths",
                                              paths_json(r->days[i].path)));
    for (int ac = 0; ac < CTL_REPORT_NACTIONS; ac++)
        for (int oc = 0; oc < CTL_REPORT_NOUTCOMES; oc++)
            if (ctl_report_refusal(ac) && r->refused[ac][oc] > 0)
                json_array_append_new(refusals,
                                      json_pack("{s:s, s:s, s:I}", "action",
                                                ctl_report_action_name(ac), "outcome",
                                                ctl_report_outcome_name(oc), "count",
                                                (json_int_t)r->refused[ac][oc]));
    for (size_t i = 0; i < r->nrules; i++)
        json_array_append_new(rules, json_pack("{s:o, s:I, s:o}", "rule", db_text(r->rules[i].rule),
                                               "total", (json_int_t)r->rules[i].total, "actions",
                                               actions_json(r->rules[i].action)));
    for (size_t i = 0; i < r->ntop; i++)
        json_array_append_new(doms, domain_json(&r->top[i]));
    for (int p = 0; p < CTL_REPORT_NPATHS; p++)
        json_object_set_new(shares, ctl_report_path_name(p), share_json(r->path[p], r->total));
    adopt = json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "domains", (json_int_t)a->domains,
                      "in_cache", (json_int_t)a->looked_up, "mta_sts_enforce",
                      (json_int_t)a->mta_sts_enforce, "mta_sts_testing",
                      (json_int_t)a->mta_sts_testing, "dane", (json_int_t)a->dane, "either",
                      (json_int_t)a->either, "authenticated", (json_int_t)a->authenticated);
    json_object_set_new(adopt, "shares",
                        json_pack("{s:o, s:o, s:o, s:o, s:o}",
                                  "mta_sts_enforce", share_json(a->mta_sts_enforce, a->domains),
                                  "mta_sts_testing", share_json(a->mta_sts_testing, a->domains),
                                  "dane", share_json(a->dane, a->domains),
                                  "either", share_json(a->either, a->domains),
                                  "authenticated", share_json(a->authenticated, a->domains)));
    json_object_set_new(o, "since", json_string(r->since));
    json_object_set_new(o, "until", json_string(r->until));
    json_object_set_new(o, "generated", json_integer((json_int_t)r->generated));
    json_object_set_new(o, "total", json_integer((json_int_t)r->total));
    json_object_set_new(o, "dry_run", json_integer((json_int_t)r->dry_run));
    json_object_set_new(o, "authenticated", json_integer((json_int_t)auth));
    json_object_set_new(o, "authenticated_share", share_json(auth, r->total));
    json_object_set_new(o, "unauthenticated", json_integer((json_int_t)r->unauth));
    json_object_set_new(o, "unauthenticated_share", share_json(r->unauth, r->total));
    json_object_set_new(o, "other_words", json_integer((json_int_t)r->other_words));
    json_object_set_new(o, "paths", paths_json(r->path));
    json_object_set_new(o, "path_shares", shares);
    json_object_set_new(o, "actions", actions_json(r->action));
    json_object_set_new(o, "outcomes", json_object());
    for (int oc = 0; oc < CTL_REPORT_NOUTCOMES; oc++)
        json_object_set_new(json_object_get(o, "outcomes"), ctl_report_outcome_name(oc),
                            json_integer((json_int_t)r->outcome[oc]));
    json_object_set_new(o, "days", days);
    json_object_set_new(o, "refusals", refusals);
    json_object_set_new(o, "rules", rules);
    json_object_set_new(o, "unauthenticated_domains", doms);
    json_object_set_new(o, "adoption", adopt);
    rc = json_dumpf(o, out, JSON_INDENT(2) | JSON_SORT_KEYS | JSON_REAL_PRECISION(4));
    json_decref(o);
    if (rc != 0 || fputc('\n', out) == EOF || ferror(out))
        return -1;
    return 0;
}

/* ----------------------------------------------------------------- CSV */

/* One field, RFC 4180 §2: quoted when it holds a comma, a quote, CR or LF,
 * a quote doubled inside. */
static void
csv_field(FILE *out, const char *s)
{
    if (strpbrk(s, ",\"\r\n") == NULL) {
        fputs(s, out);
        return;
    }
    fputc('"', out);
    for (; *s != '\0'; s++) {
        if (*s == '"')
            fputc('"', out);
        fputc(*s, out);
    }
    fputc('"', out);
}

/* One record: section, key, item, value; CRLF as RFC 4180 has it. */
static void
csv_row(FILE *out, const char *section, const char *key, const char *item, const char *value)
{
    csv_field(out, section);
    fputc(',', out);
    csv_field(out, key);
    fputc(',', out);
    csv_field(out, item);
    fputc(',', out);
    csv_field(out, value);
    fputs("\r\n", out);
}

static void
csv_count(FILE *out, const char *section, const char *key, const char *item, uint64_t n)
{
    char v[32];

    snprintf(v, sizeof(v), "%llu", (unsigned long long)n);
    csv_row(out, section, key, item, v);
}

static void
csv_domain(FILE *out, const struct ctl_report_top *t)
{
    const struct ctl_report_top *d = t;
    char need[NEED_TEXT_MAX];

    ctl_report_need_text(d->need, d->need_host, need, sizeof(need));
    csv_count(out, "domain", d->d.domain, "count", d->d.unauth);
    csv_count(out, "domain", d->d.domain, "total", d->d.total);
    csv_row(out, "domain", d->d.domain, "status", ctl_report_status_name(d->f.status));
    csv_row(out, "domain", d->d.domain, "dane", ctl_report_dane_name(d->f.dane));
    csv_row(out, "domain", d->d.domain, "grade", ctl_report_grade_name(d->f.grade));
    csv_row(out, "domain", d->d.domain, "grade_host", d->f.grade < 0 ? "" : d->f.grade_host);
    csv_row(out, "domain", d->d.domain, "need", ctl_report_need_name(d->need));
    csv_row(out, "domain", d->d.domain, "need_host", d->need_host);
    csv_row(out, "domain", d->d.domain, "need_text", need);
    csv_row(out, "domain", d->d.domain, "in_cache", d->f.in_cache ? "yes" : "no");
}

int
ctl_report_csv(const struct ctl_report *r, FILE *out)
{
    const struct ctl_report_adoption *a = &r->adoption;
    char v[32];

    csv_row(out, "section", "key", "item", "value");
    csv_row(out, "period", "since", "", r->since);
    csv_row(out, "period", "until", "", r->until);
    snprintf(v, sizeof(v), "%lld", (long long)r->generated);
    csv_row(out, "period", "generated", "", v);
    csv_count(out, "total", "recipients", "", r->total);
    csv_count(out, "total", "dry_run", "", r->dry_run);
    csv_count(out, "total", "authenticated", "",
              r->path[CTL_REPORT_PATH_DANE] + r->path[CTL_REPORT_PATH_MTA_STS]);
    csv_count(out, "total", "unauthenticated", "", r->unauth);
    csv_count(out, "total", "other_words", "", r->other_words);
    for (int p = 0; p < CTL_REPORT_NPATHS; p++)
        csv_count(out, "path", ctl_report_path_name(p), "", r->path[p]);
    for (int ac = 0; ac < CTL_REPORT_NACTIONS; ac++)
        csv_count(out, "action", ctl_report_action_name(ac), "", r->action[ac]);
    for (int oc = 0; oc < CTL_REPORT_NOUTCOMES; oc++)
        csv_count(out, "outcome", ctl_report_outcome_name(oc), "", r->outcome[oc]);
    for (size_t i = 0; i < r->ndays; i++) {
        csv_count(out, "day", r->days[i].day, "total", r->days[i].total);
        for (int p = 0; p < CTL_REPORT_NPATHS; p++)
            csv_count(out, "day", r->days[i].day, ctl_report_path_name(p), r->days[i].path[p]);
    }
    for (int ac = 0; ac < CTL_REPORT_NACTIONS; ac++)
        for (int oc = 0; oc < CTL_REPORT_NOUTCOMES; oc++)
            if (ctl_report_refusal(ac) && r->refused[ac][oc] > 0)
                csv_count(out, "refusal", ctl_report_action_name(ac), ctl_report_outcome_name(oc),
                          r->refused[ac][oc]);
    for (size_t i = 0; i < r->nrules; i++) {
        csv_count(out, "rule", r->rules[i].rule, "total", r->rules[i].total);
        for (int ac = 0; ac < CTL_REPORT_NACTIONS; ac++)
            if (r->rules[i].action[ac] > 0)
                csv_count(out, "rule", r->rules[i].rule, ctl_report_action_name(ac),
                          r->rules[i].action[ac]);
    }
    for (size_t i = 0; i < r->ntop; i++)
        csv_domain(out, &r->top[i]);
    csv_count(out, "adoption", "domains", "", a->domains);
    csv_count(out, "adoption", "in_cache", "", a->looked_up);
    csv_count(out, "adoption", "mta_sts_enforce", "", a->mta_sts_enforce);
    csv_count(out, "adoption", "mta_sts_testing", "", a->mta_sts_testing);
    csv_count(out, "adoption", "dane", "", a->dane);
    csv_count(out, "adoption", "either", "", a->either);
    csv_count(out, "adoption", "authenticated", "", a->authenticated);
    return ferror(out) ? -1 : 0;
}
