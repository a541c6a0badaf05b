/*
 * map_query - one policy-map request answered; see map_query.h.
 */
#include "map_query.h"

#include <stdio.h>
#include <string.h>

#include "domain.h"
#include "log.h"
#include "runtime.h"

/* With at_once, memory alone: false (out untouched) when that cannot answer. */
static bool
query(struct discover *d, const struct config *cfg, const struct discover_caller *who,
      const char *req, size_t len, char *out, size_t outsz, bool at_once,
      enum sockmap_reply *kind)
{
    char name[SOCKMAP_MAX_NAME + 1], key[SOCKMAP_MAX_KEY + 1], domain[DOMAIN_NAME_MAX + 1];
    char hosts[DISCOVER_MAX_MX][254];
    struct discover_result res;
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
    if (at_once) {
        if (!discover_lookup_at_once(d, domain, &res))
            return false;
        /* Only a definite answer from memory: anything else waits, as before. */
        if (res.status == DISCOVER_UNKNOWN ||
            (res.status == DISCOVER_ENFORCE &&
             (in.n_mx = discover_mx_at_once(d, domain, hosts)) < 0)) {
            discover_result_free(&res);
            return false;
        }
    } else {
        deadline = clock_deadline_after((int)cfg->map_deadline_ms);
        discover_lookup_as(d, domain, &deadline, 0, who, &res);
        if (res.status == DISCOVER_ENFORCE) {
            in.n_mx = discover_mx_as(d, domain, &deadline, who, hosts, &err);
            in.mx_error = err.msg;
        }
    }
    k = sockmap_answer(&in, out, outsz);
    log_msg(k == SOCKMAP_TEMP ? LOG_INFO : LOG_DEBUG, "map: %s %s (%s): %s", name, domain,
            discover_status_name(res.status), out);
    discover_result_free(&res);
    *kind = k;
    return true;
}

enum sockmap_reply
map_query_as(struct discover *d, const struct config *cfg, const struct discover_caller *who,
             const char *req, size_t len, char *out, size_t outsz)
{
    enum sockmap_reply k = SOCKMAP_TEMP;

    (void)query(d, cfg, who, req, len, out, outsz, false, &k);
    return k;
}

enum sockmap_reply
map_query(struct discover *d, const struct config *cfg, const char *req, size_t len,
          char *out, size_t outsz)
{
    return map_query_as(d, cfg, NULL, req, len, out, outsz);
}

bool
map_query_at_once(struct discover *d, const struct config *cfg, const char *req, size_t len,
                  char *out, size_t outsz)
{
    enum sockmap_reply k;

    return query(d, cfg, NULL, req, len, out, outsz, true, &k);
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
    (void)map_query_as(rt->discover, rt->cfg, &who, req, len, out, outsz);
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
    answered = map_query_at_once(rt->discover, rt->cfg, req, len, out, outsz);
    runtime_unref(rt);
    return answered;
}
