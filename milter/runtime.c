/*
 * runtime - configuration snapshots for the milter; see runtime.h.
 */
#include "runtime.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "log.h"

static pthread_mutex_t current_mu = PTHREAD_MUTEX_INITIALIZER;
static struct runtime *current;

/* A file named by the configuration must be readable (empty: not used). */
static int
check_readable(const struct config *cfg, const char *option, const char *path,
               struct mts_err *err)
{
    if (path[0] == '\0' || strcmp(path, "none") == 0)
        return 0;
    if (access(path, R_OK) != 0) {
        mts_err_set(err, "%s: option %s: %s: %s", cfg->path, option, path, strerror(errno));
        return -1;
    }
    return 0;
}

/* Settings that the config table cannot check alone. */
static int
check_config(const struct config *cfg, struct runtime *rt, struct mts_err *err)
{
    struct mts_err e;

    if (reply_code_parse(cfg->defer_reply, '4', &rt->defer, &e) != 0) {
        mts_err_set(err, "%s: option defer_reply: %s", cfg->path, e.msg);
        return -1;
    }
    if (reply_code_parse(cfg->reject_reply, '5', &rt->reject, &e) != 0) {
        mts_err_set(err, "%s: option reject_reply: %s", cfg->path, e.msg);
        return -1;
    }
    if (cfg->header_name[0] == '\0' || strpbrk(cfg->header_name, ": \t\r\n") != NULL) {
        mts_err_set(err, "%s: option header_name: \"%s\" is not a header field name",
                    cfg->path, cfg->header_name);
        return -1;
    }
    if (strncmp(cfg->socket, "unix:", 5) != 0 && strncmp(cfg->socket, "local:", 6) != 0 &&
        strncmp(cfg->socket, "inet:", 5) != 0 && strncmp(cfg->socket, "inet6:", 6) != 0) {
        mts_err_set(err, "%s: option socket: \"%s\" is not unix:PATH, inet:PORT@HOST or "
                    "inet6:PORT@HOST", cfg->path, cfg->socket);
        return -1;
    }
    if (check_readable(cfg, "trust_anchor", cfg->trust_anchor, err) != 0 ||
        check_readable(cfg, "resolv_conf", cfg->resolv_conf, err) != 0 ||
        check_readable(cfg, "unbound_conf", cfg->unbound_conf, err) != 0 ||
        check_readable(cfg, "ca_file", cfg->ca_file, err) != 0)
        return -1;
    return verdict_rules_load(cfg, &rt->rules, err);
}

int
runtime_build(const char *path, bool start_discovery, struct runtime **out,
              struct mts_err *err)
{
    struct runtime *rt = calloc(1, sizeof(*rt));

    *out = NULL;
    if (rt == NULL) {
        mts_err_set(err, "out of memory");
        return -1;
    }
    rt->refs = 1;
    if (path == NULL && access(CONFIG_DEFAULT_PATH, F_OK) == 0)
        path = CONFIG_DEFAULT_PATH;
    if (config_load(path, &rt->cfg, err) != 0) {
        free(rt);
        return -1;
    }
    if (check_config(rt->cfg, rt, err) != 0) {
        runtime_unref(rt);
        return -1;
    }
    if (start_discovery &&
        discover_open(rt->cfg, DISCOVER_REFRESHER, &rt->discover, err) != 0) {
        runtime_unref(rt);
        return -1;
    }
    rt->vctx.cfg = rt->cfg;
    rt->vctx.rules = &rt->rules;
    rt->vctx.discover = rt->discover;
    *out = rt;
    return 0;
}

struct runtime *
runtime_current(void)
{
    struct runtime *rt;

    pthread_mutex_lock(&current_mu);
    rt = current;
    if (rt != NULL)
        __atomic_add_fetch(&rt->refs, 1, __ATOMIC_SEQ_CST);
    pthread_mutex_unlock(&current_mu);
    return rt;
}

static void *
runtime_destroy(void *arg)
{
    struct runtime *rt = arg;

    /* Lookups still running finish first (each bounded by its timeouts). */
    discover_close(rt->discover);
    verdict_rules_free(&rt->rules);
    config_unref(rt->cfg);
    free(rt);
    return NULL;
}

void
runtime_unref_wait(struct runtime *rt)
{
    if (rt != NULL && __atomic_sub_fetch(&rt->refs, 1, __ATOMIC_SEQ_CST) == 0)
        runtime_destroy(rt);
}

void
runtime_unref(struct runtime *rt)
{
    pthread_t t;
    pthread_attr_t attr;

    if (rt == NULL || __atomic_sub_fetch(&rt->refs, 1, __ATOMIC_SEQ_CST) > 0)
        return;
    if (rt->discover == NULL) {
        runtime_destroy(rt);
        return;
    }
    /* The last user may be a libmilter thread closing a connection: it must
     * not wait for the old runtime's lookups, so a thread of its own does. */
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    if (pthread_create(&t, &attr, runtime_destroy, rt) != 0)
        runtime_destroy(rt);
    pthread_attr_destroy(&attr);
}

bool
runtime_in_scope(const struct config *cfg, const char *auth, bool non_smtpd, const char *daemon)
{
    if ((cfg->act_on_flags & CONFIG_ACT_ON_ALL) ||
        ((cfg->act_on_flags & CONFIG_ACT_ON_AUTHENTICATED) && auth != NULL) ||
        ((cfg->act_on_flags & CONFIG_ACT_ON_NON_SMTPD) && non_smtpd))
        return true;
    for (size_t i = 0; daemon != NULL && i < cfg->act_on_daemons.n; i++)
        if (strcmp(cfg->act_on_daemons.v[i], daemon) == 0)
            return true;
    return false;
}

bool
runtime_is_local_domain(const struct config *cfg, const char *domain)
{
    for (size_t i = 0; i < cfg->local_domains.n; i++)
        if (strcasecmp(cfg->local_domains.v[i], domain) == 0)
            return true;
    return false;
}

enum verdict_action
runtime_unreadable_action(const struct runtime *rt, const char *sender, const char *auth)
{
    /* Only rules without rcpt= can match a recipient without a domain. */
    const struct verdict_rule *r = verdict_rule_match(&rt->rules, sender, auth, "");
    return r != NULL ? r->on_unknown : VERDICT_DEFER;
}

enum verdict_action
runtime_internal_error_action(const struct config *cfg)
{
    return (enum verdict_action)cfg->on_internal_error;
}

void
runtime_reply(const struct runtime *rt, enum verdict_action a, const char *reason,
              struct reply *out)
{
    char text[VERDICT_REASON_MAX + 16];

    snprintf(text, sizeof(text), "MTA-STS: %s", reason);
    reply_build(a == VERDICT_REJECT ? &rt->reject : &rt->defer, text, out);
}

void
runtime_install(struct runtime *rt)
{
    struct runtime *old;

    pthread_mutex_lock(&current_mu);
    old = current;
    current = rt;
    pthread_mutex_unlock(&current_mu);
    runtime_unref(old);
}
