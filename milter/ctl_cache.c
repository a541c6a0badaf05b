/*
 * ctl_cache - `mtasts-ctl cache list | show DOMAIN | flush [DOMAIN]`: the
 * shared cache as an operator sees it.
 *
 * Exit status: 0 done; 1 no such domain (show, flush DOMAIN); 2 usage or
 * configuration error; 4 the cache could not be opened or read.
 */
#include "ctl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache.h"
#include "discover.h"
#include "domain.h"

static json_t *
entry_json(const struct cache_entry *e)
{
    json_t *o = json_object();
    char *mx;

#define STR_OR_NULL(s) ((s) != NULL && (s)[0] ? json_string(s) : json_null())
    json_object_set_new(o, "domain", json_string(e->domain));
    json_object_set_new(o, "status", e->has_status ?
                                         json_string(discover_status_name(e->status)) :
                                         json_null());
    json_object_set_new(o, "txt_id", STR_OR_NULL(e->txt_id));
    json_object_set_new(o, "has_policy", json_boolean(e->has_policy));
    json_object_set_new(o, "mode", e->has_policy ? json_string(policy_mode_name(e->mode)) :
                                                   json_null());
    json_object_set_new(o, "max_age", e->has_policy ? json_integer(e->max_age) : json_null());
    /* As stored: one string, the patterns joined with '\n'. */
    mx = e->mx != NULL ? cache_mx_join(e->mx, e->n_mx) : NULL;
    json_object_set_new(o, "mx", STR_OR_NULL(mx));
    free(mx);
    json_object_set_new(o, "fetched_at", json_integer(e->fetched_at));
    json_object_set_new(o, "expires_at", json_integer(e->expires_at));
    json_object_set_new(o, "checked_at", json_integer(e->checked_at));
    json_object_set_new(o, "last_used", json_integer(e->last_used));
    json_object_set_new(o, "dnssec", STR_OR_NULL(e->dnssec));
    json_object_set_new(o, "last_error", STR_OR_NULL(e->last_error));
    json_object_set_new(o, "fetch_failed_id", STR_OR_NULL(e->fetch_failed_id));
    json_object_set_new(o, "fetch_failed_at", json_integer(e->fetch_failed_at));
#undef STR_OR_NULL
    return o;
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
           e->has_status ? discover_status_name(e->status) : "", e->txt_id[0] ? e->txt_id : "-", exp);
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
    fprintf(to, "usage: mtasts-ctl [-c CONFIG] cache list [--json]\n"
                "       mtasts-ctl [-c CONFIG] cache show [--json] DOMAIN\n"
                "       mtasts-ctl [-c CONFIG] cache flush [DOMAIN]\n");
}

int
ctl_cache(int argc, char **argv)
{
    struct cache *c = NULL;
    struct mts_err err;
    enum cache_status cs;
    bool json = false;
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
    if (strcmp(sub, "list") == 0 && domain == NULL) {
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
