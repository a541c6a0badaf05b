/*
 * ctl_cache - `mtasts-ctl cache list | show DOMAIN | flush [DOMAIN]`, and
 * with --probes the same for the MX probe rows (per host, address and
 * port): the shared cache as an operator sees it.
 *
 * Exit status: 0 done; 1 no such domain or host (show, flush NAME); 2 usage
 * or configuration error; 4 the cache could not be opened or read.
 */
#include "ctl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache.h"
#include "discover.h"
#include "domain.h"
#include "probecache.h"

/* Probe rows listed at most: a process probes at most a few thousand hosts. */
#define PROBE_LIST_MAX 100000

static json_t *
entry_json(const struct cache_entry *e)
{
    json_t *o = json_object();
    char *mx;

    json_object_set_new(o, "domain", json_string(e->domain));
    json_object_set_new(o, "status", e->has_status ?
                                         json_string(status_kind_name(e->status)) :
                                         json_null());
    json_object_set_new(o, "txt_id", ctl_json_text(e->txt_id));
    json_object_set_new(o, "has_policy", json_boolean(e->has_policy));
    json_object_set_new(o, "mode", e->has_policy ? json_string(policy_mode_name(e->mode)) :
                                                   json_null());
    json_object_set_new(o, "max_age", e->has_policy ? json_integer(e->max_age) : json_null());
    /* As stored: one string, the patterns joined with '\n'. */
    mx = e->mx != NULL ? cache_mx_join(e->mx, e->n_mx) : NULL;
    json_object_set_new(o, "mx", ctl_json_text(mx));
    free(mx);
    json_object_set_new(o, "fetched_at", json_integer(e->fetched_at));
    json_object_set_new(o, "expires_at", json_integer(e->expires_at));
    json_object_set_new(o, "checked_at", json_integer(e->checked_at));
    json_object_set_new(o, "last_used", json_integer(e->last_used));
    json_object_set_new(o, "dnssec", ctl_json_text(e->dnssec));
    json_object_set_new(o, "last_error", ctl_json_text(e->last_error));
    json_object_set_new(o, "fetch_failed_id", ctl_json_text(e->fetch_failed_id));
    json_object_set_new(o, "fetch_failed_at", json_integer(e->fetch_failed_at));
    json_object_set_new(o, "source", ctl_json_text(e->source));
    return o;
}

static json_t *
probe_json(const struct probecache_row *r)
{
    json_t *o = json_object(), *names = json_array();
    const char *p = r->cert_names;

    /* Stored '\n'-joined; a list here, as the check report has it. */
    while (*p != '\0') {
        size_t l = strcspn(p, "\n");
        json_array_append_new(names, json_stringn(p, l));
        p += l + (p[l] == '\n');
    }
    json_object_set_new(o, "host", json_string(r->host));
    json_object_set_new(o, "address", json_string(r->address));
    json_object_set_new(o, "port", json_integer(r->port));
    json_object_set_new(o, "status", json_string(tlsprobe_status_name(r->status)));
    json_object_set_new(o, "grade", json_string(tlsprobe_grade_name(r->grade)));
    json_object_set_new(o, "rfc8461", json_boolean(r->rfc8461));
    json_object_set_new(o, "tls", json_boolean(r->tls));
    json_object_set_new(o, "reason", ctl_json_text(r->reason));
    json_object_set_new(o, "protocol", ctl_json_text(r->protocol));
    json_object_set_new(o, "cipher", ctl_json_text(r->cipher));
    json_object_set_new(o, "cert_names", names);
    json_object_set_new(o, "cert_not_after", r->cert_not_after ? json_integer(r->cert_not_after)
                                                                : json_null());
    json_object_set_new(o, "probed_at", json_integer(r->probed_at));
    json_object_set_new(o, "expires_at", json_integer(r->expires_at));
    json_object_set_new(o, "source", ctl_json_text(r->source));
    return o;
}

struct probe_list {
    bool json;
    const char *host; /* only this host's rows; NULL: all */
    json_t *array;
    size_t n;
};

static void
probe_row(const struct probecache_row *r, void *arg)
{
    struct probe_list *pl = arg;
    char addr[PROBECACHE_ADDRESS_MAX + 16], when[32], exp[32];

    if (pl->host != NULL && strcmp(pl->host, r->host) != 0)
        return;
    pl->n++;
    if (pl->json) {
        json_array_append_new(pl->array, probe_json(r));
        return;
    }
    snprintf(addr, sizeof(addr), strchr(r->address, ':') ? "[%s]:%d" : "%s:%d", r->address,
             r->port);
    ctl_fmt_time(r->probed_at, when, sizeof(when));
    ctl_fmt_time(r->expires_at, exp, sizeof(exp));
    printf("%-40s %-22s %-10s %s  %s%s%s\n", r->host, addr, tlsprobe_grade_name(r->grade), when,
           exp, r->reason[0] ? "  " : "", r->reason);
}

/* Lists the probe rows (of host, or all); prints JSON when asked. */
static enum cache_status
list_probes(struct cache *c, bool json, const char *host, size_t *n, struct mts_err *err)
{
    struct probe_list pl = {json, host, json ? json_array() : NULL, 0};
    size_t n_bad = 0;
    enum cache_status cs = probecache_list(c, PROBE_LIST_MAX, probe_row, &pl, &n_bad, err);

    if (json && cs == CACHE_OK)
        ctl_print_json(pl.array);
    json_decref(pl.array);
    if (n_bad > 0)
        fprintf(stderr, "mtasts-ctl: %zu probe rows skipped: not valid\n", n_bad);
    *n = pl.n;
    return cs;
}

struct list_state {
    bool json;
    json_t *array;
    size_t n;
};

static int
list_row(const struct cache_entry *e, void *arg)
{
    struct list_state *st = arg;
    char exp[32];

    st->n++;
    if (st->json) {
        json_array_append_new(st->array, entry_json(e));
        return 0;
    }
    ctl_fmt_time(e->expires_at, exp, sizeof(exp));
    printf("%-40s %-8s %-32s %s\n", e->domain,
           e->has_status ? status_kind_name(e->status) : "", e->txt_id[0] ? e->txt_id : "-", exp);
    return 0;
}

static enum cache_status
open_cache(struct cache **c, bool readonly, struct mts_err *err)
{
    struct config *cfg = ctl_config();

    if (cfg == NULL) {
        mts_err_set(err, "no configuration");
        return CACHE_ERROR;
    }
    return readonly ? cache_open_readonly(cfg->cache_db, (int)cfg->cache_busy_timeout_ms, c, err)
                    : cache_open(cfg->cache_db, (int)cfg->cache_busy_timeout_ms, c, err);
}

static void
usage_cache(FILE *to)
{
    fprintf(to, "usage: mtasts-ctl [-c CONFIG] cache list [--json] [--probes]\n"
                "       mtasts-ctl [-c CONFIG] cache show [--json] DOMAIN\n"
                "       mtasts-ctl [-c CONFIG] cache show [--json] --probes HOST\n"
                "       mtasts-ctl [-c CONFIG] cache flush [--probes] [DOMAIN | HOST]\n");
}

int
ctl_cache(int argc, char **argv)
{
    struct cache *c = NULL;
    struct mts_err err;
    enum cache_status cs;
    bool json = false, probes = false;
    size_t n_probes = 0;
    const char *sub, *domain = NULL;
    char norm[254];
    int rc = CTL_EXIT_OK;

    if (argc < 2) {
        usage_cache(stderr);
        return CTL_EXIT_USAGE;
    }
    sub = argv[1];
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0)
            json = true;
        else if (strcmp(argv[i], "--probes") == 0)
            probes = true;
        else if (domain == NULL && argv[i][0] != '-')
            domain = argv[i];
        else {
            usage_cache(stderr);
            return CTL_EXIT_USAGE;
        }
    }
    if (domain != NULL && domain_normalize(domain, norm, sizeof(norm), &err) != 0) {
        fprintf(stderr, "mtasts-ctl: %s: %s\n", domain, err.msg);
        return CTL_EXIT_USAGE;
    }
    if (probes && strcmp(sub, "list") == 0 && domain == NULL) {
        if ((cs = open_cache(&c, true, &err)) != CACHE_OK ||
            (cs = list_probes(c, json, NULL, &n_probes, &err)) != CACHE_OK)
            goto cache_failed;
    } else if (probes && strcmp(sub, "show") == 0 && domain != NULL) {
        if ((cs = open_cache(&c, true, &err)) != CACHE_OK ||
            (cs = list_probes(c, json, norm, &n_probes, &err)) != CACHE_OK)
            goto cache_failed;
        if (n_probes == 0) {
            fprintf(stderr, "mtasts-ctl: %s has no probe rows in the cache\n", norm);
            rc = CTL_EXIT_INVALID;
        }
    } else if (probes && strcmp(sub, "flush") == 0 && !json) {
        if ((cs = open_cache(&c, false, &err)) != CACHE_OK)
            goto cache_failed;
        cs = probecache_delete(c, domain ? norm : NULL, &err);
        if (cs == CACHE_NOT_FOUND) {
            fprintf(stderr, "mtasts-ctl: %s has no probe rows in the cache\n", norm);
            rc = CTL_EXIT_INVALID;
        } else if (cs != CACHE_OK) {
            goto cache_failed;
        } else {
            printf("flushed the probe rows of %s\n", domain ? norm : "every MX host");
        }
    } else if (probes) {
        usage_cache(stderr);
        rc = CTL_EXIT_USAGE;
    } else if (strcmp(sub, "list") == 0 && domain == NULL) {
        struct list_state st = {json, json ? json_array() : NULL, 0};

        if ((cs = open_cache(&c, true, &err)) != CACHE_OK)
            goto cache_failed;
        cs = cache_list(c, list_row, &st, &err);
        if (json) {
            ctl_print_json(st.array);
            json_decref(st.array);
        }
        if (cs != CACHE_OK)
            goto cache_failed;
        /* For a person, the probe rows follow (JSON: with --probes, its own document). */
        if (!json) {
            printf("\nMX probes (host, address, grade, probed, expires, reason):\n");
            if ((cs = list_probes(c, false, NULL, &n_probes, &err)) != CACHE_OK)
                goto cache_failed;
            if (n_probes == 0)
                printf("none\n");
        }
    } else if (strcmp(sub, "show") == 0 && domain != NULL) {
        struct cache_entry e;

        if ((cs = open_cache(&c, true, &err)) != CACHE_OK)
            goto cache_failed;
        cs = cache_get(c, norm, &e, &err);
        if (cs == CACHE_NOT_FOUND) {
            fprintf(stderr, "mtasts-ctl: %s is not in the cache\n", norm);
            rc = CTL_EXIT_INVALID;
        } else if (cs != CACHE_OK) {
            goto cache_failed;
        } else {
            json_t *o = entry_json(&e);
            if (json) {
                ctl_print_json(o);
            } else {
                char *s = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
                if (s != NULL)
                    puts(s);
                free(s);
            }
            json_decref(o);
        }
        cache_entry_free(&e);
    } else if (strcmp(sub, "flush") == 0 && !json) {
        if ((cs = open_cache(&c, false, &err)) != CACHE_OK)
            goto cache_failed;
        cs = domain ? cache_delete(c, norm, &err) : cache_flush_all(c, &err);
        if (cs == CACHE_NOT_FOUND) {
            fprintf(stderr, "mtasts-ctl: %s is not in the cache\n", norm);
            rc = CTL_EXIT_INVALID;
        } else if (cs != CACHE_OK) {
            goto cache_failed;
        } else {
            printf("flushed %s\n", domain ? norm : "every domain");
        }
    } else {
        usage_cache(stderr);
        rc = CTL_EXIT_USAGE;
    }
    cache_close(c);
    return rc;

cache_failed:
    fprintf(stderr, "mtasts-ctl: cache: %s\n", err.msg);
    cache_close(c);
    return CTL_EXIT_CACHE;
}
