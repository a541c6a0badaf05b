/*
 * runtime - configuration snapshots for the milter; see runtime.h.
 */
#include "runtime.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
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
    if (decide_ctx_init(&rt->dctx, cfg, &rt->rules, err) != 0)
        return -1;
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
    return rules_load(cfg, &rt->rules, err);
}

struct dump {
    char *text;
    size_t len;
    bool oom;
};

static void
dump_line(const char *line, void *arg)
{
    struct dump *d = arg;
    size_t l = strlen(line), eq = strcspn(line, " =");
    char *p;

    /* Only the engine's options: the others never need a new engine. */
    if (config_reload_scope(line, eq) != CONFIG_RELOAD_ENGINE)
        return;
    if ((p = realloc(d->text, d->len + l + 2)) == NULL) {
        d->oom = true;
        return;
    }
    d->text = p;
    memcpy(d->text + d->len, line, l);
    d->len += l;
    d->text[d->len++] = '\n';
    d->text[d->len] = '\0';
}

/* The engine's options of cfg, one "name = value" a line; NULL when out of memory. */
static char *
engine_options(const struct config *cfg)
{
    struct dump d = {NULL, 0, false};

    config_dump(cfg, dump_line, &d);
    if (d.oom || d.text == NULL) {
        free(d.text);
        return NULL;
    }
    return d.text;
}

/* Names the first engine options that differ (a, b: engine_options texts). */
static void
which_differ(const char *a, const char *b, char *out, size_t outsz)
{
    size_t used = 0;

    out[0] = '\0';
    for (const char *p = b; *p != '\0';) {
        const char *nl = strchr(p, '\n');
        size_t l = nl ? (size_t)(nl - p) : strlen(p);
        char line[1024];
        const char *found;

        snprintf(line, sizeof(line), "%.*s\n", (int)(l < 1000 ? l : 1000), p);
        found = strstr(a, line);
        if (found == NULL || (found != a && found[-1] != '\n')) {
            int k = snprintf(out + used, outsz - used, "%s%.*s", used ? ", " : "",
                             (int)strcspn(line, " ="), line);
            if (k < 0 || (size_t)k >= outsz - used)
                break;
            used += (size_t)k;
        }
        p += l + (nl != NULL);
    }
}

static int build(const char *path, const struct runtime *prev, bool start_discovery,
                 struct runtime **out, struct mts_err *err);

int
runtime_build(const char *path, bool start_discovery, struct runtime **out,
              struct mts_err *err)
{
    return build(path, NULL, start_discovery, out, err);
}

int
runtime_rebuild(const char *path, const struct runtime *prev, struct runtime **out,
                struct mts_err *err)
{
    return build(path, prev, true, out, err);
}

static int
build(const char *path, const struct runtime *prev, bool start_discovery,
      struct runtime **out, struct mts_err *err)
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
    if (start_discovery && prev != NULL && prev->discover != NULL) {
        char *a = engine_options(prev->cfg), *b = engine_options(rt->cfg);

        if (a != NULL && b != NULL && strcmp(a, b) == 0) {
            rt->discover = discover_share(prev->discover);
            /* The probe options are engine options too: the probe engine
             * carries over with the discovery engine, so that a reload
             * neither probes a host twice at once nor adds up bounds. */
            if (prev->probes != NULL)
                rt->probes = probes_share(prev->probes);
        } else if (a != NULL && b != NULL) {
            char which[512];

            which_differ(a, b, which, sizeof(which));
            log_msg(LOG_NOTICE, "reload: %s changed: a new discovery engine (cache "
                    "connection, resolver, threads) replaces the running one", which);
        }
        free(a);
        free(b);
    }
    if (start_discovery && rt->discover == NULL &&
        discover_open(rt->cfg, DISCOVER_REFRESHER | DISCOVER_HEAL_CACHE, &rt->discover, err) != 0) {
        runtime_unref(rt);
        return -1;
    }
    rt->dctx.discover = rt->discover;
    /* Not fatal: without postconf, only map_transports' names count. */
    mts_err_clear(&rt->map_routes_err);
    if (maproute_learn(rt->cfg, &rt->map_routes, &rt->map_routes_err) != 0 &&
        rt->map_routes_err.msg[0] == '\0')
        mts_err_set(&rt->map_routes_err, "unknown error");
    rt->dctx.map_routes = &rt->map_routes;
    if (start_discovery && rt->cfg->mx_probes && rt->probes == NULL &&
        probes_open(rt->cfg, NULL, 0, &rt->probes, err) != 0) {
        runtime_unref(rt);
        return -1;
    }
    rt->dctx.probes = rt->probes;
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
    probes_close(rt->probes);
    discover_close(rt->discover);
    rules_free(&rt->rules);
    maproute_free(&rt->map_routes);
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
