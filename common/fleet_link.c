/*
 * fleet_link - one connection to Redis with a circuit breaker; see
 * fleet_link.h.
 */
#include "fleet_link.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "log.h"
#include "metrics_fleet.h"
#include "sigpipe.h"

#define FLEET_PASSWORD_MAX 512

struct fleet_link {
    pthread_mutex_t mu;		/* one command or pipeline at a time */
    bool configured;
    bool is_unix;
    char path[256];		/* unix: the socket; tcp: the host */
    int port;
    char password[FLEET_PASSWORD_MAX];
    bool has_password;
    int64_t db;
    int timeout_ms;

    redisContext *c;		/* NULL: not connected */
    int64_t retry_at_ms;	/* breaker open until then (monotonic) */
    int backoff_ms;		/* the next back-off; 0: no failure in a row */
    bool down_logged;		/* the outage was logged; its end will be */
    bool counted;		/* counted in metrics_fleet (configured) */
    bool is_down;		/* failed, not yet connected again (metrics_fleet) */
    uint64_t failures, commands;
    char last_error[128];
};

static int64_t
mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static struct timeval
tv_of(int ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};

    return tv;
}

/* unix:PATH or tcp:HOST:PORT, bounds checked. */
static int
parse_address(struct fleet_link *l, const char *a, struct mts_err *err)
{
    if (strncmp(a, "unix:", 5) == 0) {
        l->is_unix = true;
        if (a[5] != '/' || strlen(a + 5) >= sizeof(l->path)) {
            mts_err_set(err, "fleet_redis: unix:PATH needs an absolute path under %zu bytes",
                        sizeof(l->path));
            return -1;
        }
        snprintf(l->path, sizeof(l->path), "%s", a + 5);
        return 0;
    }
    if (strncmp(a, "tcp:", 4) == 0) {
        const char *host = a + 4, *colon = strrchr(host, ':');
        char *end;
        long port;

        if (colon == NULL || colon == host || (size_t)(colon - host) >= sizeof(l->path)) {
            mts_err_set(err, "fleet_redis: \"%s\" is not tcp:HOST:PORT", a);
            return -1;
        }
        errno = 0;
        port = strtol(colon + 1, &end, 10);
        if (errno != 0 || *end != '\0' || end == colon + 1 || port < 1 || port > 65535) {
            mts_err_set(err, "fleet_redis: bad port in \"%s\"", a);
            return -1;
        }
        snprintf(l->path, sizeof(l->path), "%.*s", (int)(colon - host), host);
        l->port = (int)port;
        return 0;
    }
    mts_err_set(err, "fleet_redis: \"%s\" is neither unix:PATH nor tcp:HOST:PORT", a);
    return -1;
}

static int
read_password(struct fleet_link *l, const char *path, struct mts_err *err)
{
    FILE *f = fopen(path, "r");
    size_t n;

    if (f == NULL) {
        mts_err_set(err, "fleet_password_file %s: %s", path, strerror(errno));
        return -1;
    }
    if (fgets(l->password, sizeof(l->password), f) == NULL) {
        mts_err_set(err, "fleet_password_file %s: empty", path);
        fclose(f);
        return -1;
    }
    fclose(f);
    n = strcspn(l->password, "\r\n");
    l->password[n] = '\0';
    l->has_password = n > 0;
    return 0;
}

int
fleet_link_open(const struct config *cfg, struct fleet_link **out, struct mts_err *err)
{
    struct fleet_link *l = calloc(1, sizeof(*l));

    *out = NULL;
    if (l == NULL) {
        mts_err_set(err, "out of memory");
        return -1;
    }
    pthread_mutex_init(&l->mu, NULL);
    l->db = cfg->fleet_db;
    l->timeout_ms = (int)cfg->fleet_timeout_ms;
    l->configured = cfg->fleet_redis != NULL && cfg->fleet_redis[0] != '\0';
    if (l->configured && (parse_address(l, cfg->fleet_redis, err) != 0 ||
                          (cfg->fleet_password_file[0] != '\0' &&
                           read_password(l, cfg->fleet_password_file, err) != 0))) {
        fleet_link_close(l);
        return -1;
    }
    if (l->configured) {
        metrics_fleet_link_open();
        l->counted = true;
    }
    *out = l;
    return 0;
}

void
fleet_link_close(struct fleet_link *l)
{
    if (l == NULL)
        return;
    if (l->c != NULL)
        redisFree(l->c);
    if (l->counted)
        metrics_fleet_link_close(l->is_down);
    explicit_bzero(l->password, sizeof(l->password));
    pthread_mutex_destroy(&l->mu);
    free(l);
}

/* Drops the connection and opens the breaker; with l->mu held. */
static void
fail(struct fleet_link *l, const char *why)
{
    if (l->c != NULL) {
        redisFree(l->c);
        l->c = NULL;
    }
    l->failures++;
    l->backoff_ms = l->backoff_ms == 0 ? FLEET_LINK_BACKOFF_MIN_MS
                    : l->backoff_ms >= FLEET_LINK_BACKOFF_MAX_MS / 2 ? FLEET_LINK_BACKOFF_MAX_MS
                    : l->backoff_ms * 2;
    l->retry_at_ms = mono_ms() + l->backoff_ms;
    mts_text_copy(l->last_error, sizeof(l->last_error), why);
    if (l->counted)
        metrics_fleet_link_down(l->is_down, l->backoff_ms);
    l->is_down = true;
    if (!l->down_logged) {
        log_msg(LOG_WARNING, "fleet: Redis unusable (%s): carrying on with the local cache", why);
        l->down_logged = true;
    }
}

/* An AUTH or SELECT on a fresh connection; false (and failed) on error. */
static bool
setup_command(struct fleet_link *l, int argc, const char **argv, const char *what)
{
    redisReply *r = redisCommandArgv(l->c, argc, argv, NULL);
    char why[128];
    bool ok = r != NULL && r->type != REDIS_REPLY_ERROR;

    if (!ok) {
        mts_text_set(why, sizeof(why), "%s: %s", what, r != NULL ? r->str : l->c->errstr);
        fail(l, why);
    }
    if (r != NULL)
        freeReplyObject(r);
    return ok;
}

/* With l->mu held: a usable connection, or false (breaker open or failed). */
static bool
ensure(struct fleet_link *l)
{
    char why[128], db[24];

    if (!l->configured)
        return false;
    if (l->c != NULL)
        return true;
    if (l->retry_at_ms != 0 && mono_ms() < l->retry_at_ms)
        return false;
    l->c = l->is_unix ? redisConnectUnixWithTimeout(l->path, tv_of(l->timeout_ms))
                      : redisConnectWithTimeout(l->path, l->port, tv_of(l->timeout_ms));
    if (l->c == NULL || l->c->err) {
        mts_text_set(why, sizeof(why), "connect: %s", l->c != NULL ? l->c->errstr : "out of memory");
        fail(l, why);
        return false;
    }
    if (redisSetTimeout(l->c, tv_of(l->timeout_ms)) != REDIS_OK) {
        fail(l, "cannot set the timeout");
        return false;
    }
    if (l->has_password) {
        const char *argv[2] = {"AUTH", l->password};

        if (!setup_command(l, 2, argv, "AUTH"))
            return false;
    }
    if (l->db != 0) {
        const char *argv[2] = {"SELECT", db};

        snprintf(db, sizeof(db), "%lld", (long long)l->db);
        if (!setup_command(l, 2, argv, "SELECT"))
            return false;
    }
    if (l->down_logged)
        log_msg(LOG_NOTICE, "fleet: Redis is back");
    l->down_logged = false;
    if (l->counted)
        metrics_fleet_link_up(l->is_down);
    l->is_down = false;
    l->backoff_ms = 0;
    l->retry_at_ms = 0;
    return true;
}

/* A reply the server gives when it, not the command, is in trouble. */
static bool
server_trouble(const redisReply *r)
{
    return r->type == REDIS_REPLY_ERROR &&
           (strncmp(r->str, "LOADING", 7) == 0 || strncmp(r->str, "NOAUTH", 6) == 0 ||
            strncmp(r->str, "MISCONF", 7) == 0 || strncmp(r->str, "BUSY", 4) == 0);
}

/*
 * hiredis writes with write(2), which raises SIGPIPE when Redis has gone
 * (mtasts-ctl does not ignore it): every command and pipeline runs under a
 * sigpipe guard (sigpipe.h).
 */
redisReply *
fleet_link_command(struct fleet_link *l, int argc, const char **argv, const size_t *lens)
{
    redisReply *r = NULL;
    struct sigpipe_guard g;

    pthread_mutex_lock(&l->mu);
    sigpipe_block(&g);
    if (ensure(l)) {
        r = redisCommandArgv(l->c, argc, argv, lens);
        if (r == NULL) {
            char why[128];

            mts_text_copy(why, sizeof(why), l->c->errstr);
            fail(l, why);
        } else if (server_trouble(r)) {
            fail(l, r->str);
            freeReplyObject(r);
            r = NULL;
        } else {
            l->commands++;
        }
    }
    sigpipe_restore(&g);
    pthread_mutex_unlock(&l->mu);
    return r;
}

int
fleet_link_pipeline(struct fleet_link *l, size_t n, const struct fleet_cmd *cmds,
                    redisReply **replies)
{
    int rc = -1;
    struct sigpipe_guard g;

    for (size_t i = 0; i < n; i++)
        replies[i] = NULL;
    if (n > FLEET_LINK_PIPELINE_MAX)
        return -1;
    pthread_mutex_lock(&l->mu);
    sigpipe_block(&g);
    if (ensure(l)) {
        size_t i;

        for (i = 0; i < n; i++)
            if (redisAppendCommandArgv(l->c, cmds[i].argc, (const char **)cmds[i].argv, cmds[i].len) !=
                REDIS_OK)
                break;
        for (size_t j = 0; i == n && j < n; j++) {
            void *r = NULL;

            if (redisGetReply(l->c, &r) != REDIS_OK || r == NULL) {
                i = 0;
                break;
            }
            replies[j] = r;
        }
        if (i == n) {
            l->commands += n;
            rc = 0;
        } else {
            char why[128];

            mts_text_set(why, sizeof(why), "pipeline: %s", l->c->errstr);
            for (size_t j = 0; j < n; j++) {
                if (replies[j] != NULL)
                    freeReplyObject(replies[j]);
                replies[j] = NULL;
            }
            fail(l, why);
        }
    }
    sigpipe_restore(&g);
    pthread_mutex_unlock(&l->mu);
    return rc;
}

redisReply *
fleet_link_read(struct fleet_link *l, int timeout_ms, bool *timed_out)
{
    void *r = NULL;

    *timed_out = false;
    pthread_mutex_lock(&l->mu);
    if (l->c == NULL) {
        pthread_mutex_unlock(&l->mu);
        return NULL;
    }
    /* A reply already read with an earlier one first; else wait for the
     * socket ourselves: a hiredis read timeout would spoil the context. */
    if (redisGetReplyFromReader(l->c, &r) == REDIS_OK && r == NULL) {
        struct pollfd p = {l->c->fd, POLLIN, 0};
        int n = poll(&p, 1, timeout_ms);

        if (n == 0) {
            *timed_out = true;
        } else if (n < 0 && errno == EINTR) {
            *timed_out = true;
        } else if (redisGetReply(l->c, &r) != REDIS_OK) {
            char why[128];

            mts_text_set(why, sizeof(why), "subscriber: %s", l->c->errstr);
            fail(l, why);
            r = NULL;
        }
    }
    pthread_mutex_unlock(&l->mu);
    return r;
}

void
fleet_link_retry_now(struct fleet_link *l)
{
    pthread_mutex_lock(&l->mu);
    l->retry_at_ms = 0;
    pthread_mutex_unlock(&l->mu);
}

void
fleet_link_state(struct fleet_link *l, struct fleet_link_state *out)
{
    memset(out, 0, sizeof(*out));
    pthread_mutex_lock(&l->mu);
    out->configured = l->configured;
    out->up = l->c != NULL;
    out->failures = l->failures;
    out->commands = l->commands;
    out->backoff_ms = l->c != NULL ? 0 : l->backoff_ms;
    if (l->c == NULL && l->retry_at_ms != 0) {
        int64_t in = l->retry_at_ms - mono_ms();

        out->retry_in_ms = in > 0 ? (int)in : 0;
    }
    mts_text_copy(out->last_error, sizeof(out->last_error), l->last_error);
    pthread_mutex_unlock(&l->mu);
}
