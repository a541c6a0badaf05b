/*
 * map_query - one policy-map request answered; see map_query.h.
 */
#include "map_query.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "danemap.h"
#include "domain.h"
#include "log.h"
#include "runtime.h"

/*
 * Does an unknown status of domain give NOTFOUND? map_unknown, turned
 * over for the domains of map_unknown_except ("d" itself, "*.d" the names
 * below d).
 */
static bool
unknown_notfound(const struct config *cfg, const char *domain)
{
    const struct config_list *l = &cfg->map_unknown_except;
    size_t dl = strlen(domain);
    bool except = false;

    for (size_t i = 0; i < l->n && !except; i++) {
        const char *pat = l->v[i];

        if (pat[0] == '*' && pat[1] == '.') {
            size_t pl = strlen(pat + 1);
            except = dl > pl && strcasecmp(domain + dl - pl, pat + 1) == 0;
        } else {
            except = strcasecmp(pat, domain) == 0;
        }
    }
    return (cfg->map_unknown == CONFIG_MAP_UNKNOWN_NOTFOUND) != except;
}

/*
 * Does DANE decide every MX host (danemap.h)? Their probes from memory; a
 * host not probed yet is queued by probes_get, so a later answer may be
 * dane-only. No more hosts than the milter probes for one domain.
 */
static bool
dane_only(struct probes *p, const struct config *cfg, const struct status_result *res,
          const char (*hosts)[254], int n, bool secure)
{
    struct probes_host ph;

    if (p == NULL || !secure || n <= 0 || (int64_t)n > cfg->probe_hosts_per_domain ||
        res->status == STATUS_UNKNOWN)
        return false;
    for (int i = 0; i < n; i++) {
        if (!danemap_host(res, hosts[i], NULL))
            return false;
        probes_get(p, hosts[i], &ph);
        if (!danemap_host(res, hosts[i], &ph))
            return false;
    }
    /* danemap_only's rule, one probe in memory at a time. */
    return true;
}

/* With at_once, memory alone: false (out untouched) when that cannot answer. */
static bool
query(struct discover *d, struct probes *p, const struct config *cfg,
      const struct discover_caller *who, const char *req, size_t len, char *out, size_t outsz,
      bool at_once, enum sockmap_reply *kind)
{
    bool secure = false;
    char name[SOCKMAP_MAX_NAME + 1], key[SOCKMAP_MAX_KEY + 1], domain[DOMAIN_NAME_MAX + 1];
    char hosts[DISCOVER_MAX_MX][254];
    struct status_result res;
    struct sockmap_answer_in in;
    struct timespec deadline;
    struct mts_err err;
    enum sockmap_reply k;

    mts_err_clear(&err);
    if (sockmap_request_split(req, len, name, sizeof(name), key, sizeof(key), &err) != 0) {
        sockmap_reply_text(SOCKMAP_PERM, err.msg, out, outsz);
        log_msg(LOG_NOTICE, "map: %s", err.msg);
        *kind = SOCKMAP_PERM;
        return true;
    }
    if (sockmap_key_domain(key, domain, sizeof(domain), &err) != SOCKMAP_KEY_DOMAIN) {
        log_msg(LOG_DEBUG, "map: %s: NOTFOUND (%s)", name, err.msg);
        snprintf(out, outsz, "NOTFOUND ");
        *kind = SOCKMAP_NOTFOUND;
        return true;
    }
    if (d == NULL) {
        sockmap_reply_text(SOCKMAP_TEMP, "discovery is not running", out, outsz);
        *kind = SOCKMAP_TEMP;
        return true;
    }
    memset(&res, 0, sizeof(res));
    memset(&in, 0, sizeof(in));
    in.res = &res;
    in.mx = (const char (*)[254])hosts;
    in.n_mx = 0;
    in.tlsrpt = cfg->map_tlsrpt && strcmp(name, SOCKMAP_SENDMAIL_NAME) != 0;
    in.unknown_notfound = unknown_notfound(cfg, domain);
    if (at_once) {
        if (!discover_lookup_at_once(d, domain, &res))
            return false;
        /* Only a definite answer from memory: anything else waits, as before.
         * With probes, every domain's MX set counts (dane-only). */
        if (res.status == STATUS_UNKNOWN ||
            ((res.status == STATUS_ENFORCE || p != NULL) &&
             (in.n_mx = discover_mx_sec_as(d, domain, NULL, NULL, hosts, &secure, &err)) < 0)) {
            status_result_free(&res);
            return false;
        }
    } else {
        deadline = clock_deadline_after((int)cfg->map_deadline_ms);
        discover_lookup_as(d, domain, &deadline, 0, who, &res);
        /* Without an enforce policy a failed MX lookup changes nothing:
         * NOTFOUND, as without DANE. */
        if (res.status == STATUS_ENFORCE || (p != NULL && res.status != STATUS_UNKNOWN)) {
            in.n_mx = discover_mx_sec_as(d, domain, &deadline, who, hosts, &secure, &err);
            in.mx_error = err.msg;
        }
    }
    in.dane_only = dane_only(p, cfg, &res, (const char (*)[254])hosts, in.n_mx, secure);
    k = sockmap_answer(&in, out, outsz);
    /* A TEMP defers mail, and an unknown status given as NOTFOUND lets it
     * go without MTA-STS: both are worth a line at info. */
    if (res.status == STATUS_UNKNOWN && k == SOCKMAP_NOTFOUND)
        log_msg(LOG_INFO, "map: %s %s (unknown: %s): NOTFOUND (map_unknown)", name, domain,
                res.error[0] ? res.error : "not learnt in time");
    else
        log_msg(k == SOCKMAP_TEMP ? LOG_INFO : LOG_DEBUG, "map: %s %s (%s): %s", name, domain,
                status_kind_name(res.status), out);
    status_result_free(&res);
    *kind = k;
    return true;
}

enum sockmap_reply
map_query_as(struct discover *d, struct probes *p, const struct config *cfg,
             const struct discover_caller *who, const char *req, size_t len, char *out,
             size_t outsz)
{
    enum sockmap_reply k = SOCKMAP_TEMP;

    (void)query(d, p, cfg, who, req, len, out, outsz, false, &k);
    return k;
}

enum sockmap_reply
map_query(struct discover *d, struct probes *p, const struct config *cfg, const char *req,
          size_t len, char *out, size_t outsz)
{
    return map_query_as(d, p, cfg, NULL, req, len, out, outsz);
}

bool
map_query_at_once(struct discover *d, struct probes *p, const struct config *cfg,
                  const char *req, size_t len, char *out, size_t outsz)
{
    enum sockmap_reply k;

    return query(d, p, cfg, NULL, req, len, out, outsz, true, &k);
}

/* ------------------------------------------------------------ the map listener's */

/* The map's answers, under the runtime in force at each request. */
void
map_query_answer(const char *req, size_t len, unsigned long conn, char *out, size_t outsz,
                 void *arg)
{
    struct runtime *rt = runtime_current();
    /* Its lookups of new domains are charged to the connection (the map's caps). */
    struct discover_caller who = {.sender = NULL, .conn = conn, .map = true};

    (void)arg;
    if (rt == NULL) {
        sockmap_reply_text(SOCKMAP_TEMP, "mtasts-milter is starting", out, outsz);
        return;
    }
    (void)map_query_as(rt->discover, rt->probes, rt->cfg, &who, req, len, out, outsz);
    runtime_unref(rt);
}

/* ... on the map's event loop: from memory, or not at all. */
bool
map_query_answer_at_once(const char *req, size_t len, char *out, size_t outsz, void *arg)
{
    struct runtime *rt = runtime_current();
    bool answered;

    (void)arg;
    if (rt == NULL)
        return false;
    answered = map_query_at_once(rt->discover, rt->probes, rt->cfg, req, len, out, outsz);
    runtime_unref(rt);
    return answered;
}
