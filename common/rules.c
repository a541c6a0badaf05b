/*
 * rules - the rule language, the rules file and matching; see rules.h.
 */
#include "rules.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define RULES_FILE_LINE_MAX 1024

const struct nametab rules_req_names[] = {
    {"none", RULES_REQ_NONE},
    {"tls", RULES_REQ_TLS},
    {"verified-tls", RULES_REQ_VERIFIED_TLS},
    {"mta-sts", RULES_REQ_MTA_STS},
    {NULL, -1},
};

const char *
rules_req_name(enum rules_req r)
{
    return nametab_name(rules_req_names, (int)r);
}

static void
rule_free(struct rules_rule *r)
{
    free(r->from);
    free(r->auth);
    free(r->rcpt);
    r->from = r->auth = r->rcpt = NULL;
}

int
rules_parse(const char *text, struct rules_rule *out, struct mts_err *err)
{
    char *copy = strdup(text), *save = NULL, *tok;
    bool have_req = false, have_fail = false, have_unknown = false;

    memset(out, 0, sizeof(*out));
    out->on_fail = VERDICT_DEFER;
    out->on_unknown = VERDICT_DEFER;
    if (copy == NULL) {
        mts_err_set(err, "out of memory");
        return -1;
    }
    for (tok = strtok_r(copy, " \t", &save); tok != NULL; tok = strtok_r(NULL, " \t", &save)) {
        char *eq = strchr(tok, '='), **field = NULL;
        const char *v;
        char words[64];
        int code;

        if (eq == NULL || eq == tok || eq[1] == '\0') {
            mts_err_set(err, "\"%s\" is not key=value", tok);
            goto fail;
        }
        *eq = '\0';
        v = eq + 1;
        if (strcmp(tok, "from") == 0)
            field = &out->from;
        else if (strcmp(tok, "auth") == 0)
            field = &out->auth;
        else if (strcmp(tok, "rcpt") == 0)
            field = &out->rcpt;
        if (field != NULL) {
            if (*field != NULL) {
                mts_err_set(err, "%s given twice", tok);
                goto fail;
            }
            if ((*field = strdup(v)) == NULL) {
                mts_err_set(err, "out of memory");
                goto fail;
            }
            /* Domains compare in lower case. */
            if (field != &out->auth)
                for (char *p = *field; *p; p++)
                    *p = (char)((*p >= 'A' && *p <= 'Z') ? *p - 'A' + 'a' : *p);
        } else if (strcmp(tok, "require") == 0) {
            if (have_req) {
                mts_err_set(err, "require given twice");
                goto fail;
            }
            code = nametab_code(rules_req_names, NAMETAB_EXACT, v);
            if (code < 0) {
                mts_err_set(err, "require=%s: expected %s", v,
                            nametab_list(rules_req_names, words, sizeof(words)));
                goto fail;
            }
            out->req = (enum rules_req)code;
            have_req = true;
        } else if (strcmp(tok, "fail") == 0 || strcmp(tok, "unknown") == 0) {
            bool *seen = tok[0] == 'f' ? &have_fail : &have_unknown;
            if (*seen) {
                mts_err_set(err, "%s given twice", tok);
                goto fail;
            }
            *seen = true;
            code = nametab_code(verdict_action_names, NAMETAB_EXACT, v);
            if (code < 0) {
                mts_err_set(err, "%s=%s: expected %s", tok, v,
                            nametab_list(verdict_action_names, words, sizeof(words)));
                goto fail;
            }
            *(tok[0] == 'f' ? &out->on_fail : &out->on_unknown) = (enum verdict_action)code;
        } else {
            mts_err_set(err, "unknown key \"%s\" (from, auth, rcpt, require, fail, unknown)", tok);
            goto fail;
        }
    }
    if (!have_req) {
        mts_err_set(err, "require= is missing");
        goto fail;
    }
    free(copy);
    return 0;
fail:
    free(copy);
    rule_free(out);
    return -1;
}

static int
add_rule(struct rules *rules, const char *text, const char *file, int line, bool probes_on,
         struct mts_err *err)
{
    struct rules_rule r, *nr;
    struct mts_err e;

    if (rules_parse(text, &r, &e) != 0) {
        mts_err_set(err, "%s:%d: rule: %s", file, line, e.msg);
        return -1;
    }
    if ((r.req == RULES_REQ_TLS || r.req == RULES_REQ_VERIFIED_TLS) && !probes_on) {
        mts_err_set(err, "%s:%d: rule: require=%s needs MX TLS probes, which are off "
                    "(mx_probes = no); set mx_probes = yes, or use require=mta-sts or "
                    "require=none", file, line, rules_req_name(r.req));
        rule_free(&r);
        return -1;
    }
    snprintf(r.where, sizeof(r.where), "%s:%d", file, line);
    nr = realloc(rules->r, (rules->n + 1) * sizeof(*nr));
    if (nr == NULL) {
        rule_free(&r);
        mts_err_set(err, "out of memory");
        return -1;
    }
    rules->r = nr;
    rules->r[rules->n++] = r;
    return 0;
}

int
rules_load(const struct config *cfg, struct rules *out, struct mts_err *err)
{
    memset(out, 0, sizeof(*out));
    for (size_t i = 0; i < cfg->rules.n; i++)
        if (add_rule(out, cfg->rules.v[i], cfg->path, cfg->rules.line[i], cfg->mx_probes,
                     err) != 0)
            goto fail;
    if (cfg->rules_file[0] != '\0') {
        FILE *f = fopen(cfg->rules_file, "r");
        char line[RULES_FILE_LINE_MAX];
        int line_no = 0;

        if (f == NULL) {
            mts_err_set(err, "%s: option rules_file: cannot open %s", cfg->path, cfg->rules_file);
            goto fail;
        }
        while (fgets(line, sizeof(line), f) != NULL) {
            char *s = line, *hash, *end;

            line_no++;
            /* A line cut in two would turn its tail into a rule of its own. */
            if (strchr(line, '\n') == NULL && !feof(f)) {
                mts_err_set(err, "%s:%d: rule: line is longer than %d bytes", cfg->rules_file,
                            line_no, RULES_FILE_LINE_MAX - 2);
                fclose(f);
                goto fail;
            }
            hash = strchr(line, '#');
            if (hash != NULL)
                *hash = '\0';
            end = s + strlen(s);
            while (end > s && (end[-1] == '\n' || end[-1] == '\r' || end[-1] == ' ' ||
                               end[-1] == '\t'))
                *--end = '\0';
            s += strspn(s, " \t");
            if (*s == '\0')
                continue;
            if (add_rule(out, s, cfg->rules_file, line_no, cfg->mx_probes, err) != 0) {
                fclose(f);
                goto fail;
            }
        }
        fclose(f);
    }
    return 0;
fail:
    rules_free(out);
    return -1;
}

void
rules_free(struct rules *rules)
{
    for (size_t i = 0; i < rules->n; i++)
        rule_free(&rules->r[i]);
    free(rules->r);
    rules->r = NULL;
    rules->n = 0;
}

/* "*" any; "*.d" strict subdomains of d; otherwise the domain itself. */
static bool
domain_matches(const char *pat, const char *domain)
{
    size_t pl, dl;

    if (strcmp(pat, "*") == 0)
        return true;
    if (pat[0] == '@')
        pat++;
    if (pat[0] == '*' && pat[1] == '.') {
        pl = strlen(pat + 1);
        dl = strlen(domain);
        return dl > pl && strcasecmp(domain + dl - pl, pat + 1) == 0;
    }
    return strcasecmp(pat, domain) == 0;
}

static bool
sender_matches(const char *pat, const char *sender)
{
    const char *at = strrchr(sender, '@');

    if (strcmp(pat, "*") == 0)
        return true;
    if (strchr(pat, '@') != NULL && pat[0] != '@')
        return strcasecmp(pat, sender) == 0;	/* a whole address */
    return at != NULL && domain_matches(pat, at + 1);
}

const struct rules_rule *
rules_match(const struct rules *rules, const char *sender, const char *auth,
            const char *rcpt_domain)
{
    for (size_t i = 0; rules != NULL && i < rules->n; i++) {
        const struct rules_rule *r = &rules->r[i];

        if (r->from != NULL && !sender_matches(r->from, sender ? sender : ""))
            continue;
        if (r->auth != NULL) {
            bool authed = auth != NULL && auth[0] != '\0';
            if (strcmp(r->auth, "-") == 0 ? authed :
                strcmp(r->auth, "*") == 0 ? !authed : !authed || strcmp(r->auth, auth) != 0)
                continue;
        }
        if (r->rcpt != NULL && !domain_matches(r->rcpt, rcpt_domain))
            continue;
        return r;
    }
    return NULL;
}
