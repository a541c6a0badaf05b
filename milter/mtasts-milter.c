/*
 * mtasts-milter - the milter daemon: options, socket, privileges, signals.
 *
 * Order of start-up: load and check the configuration; open the socket
 * (smfi_opensocket) while still root; daemonize; write the pid file; drop
 * to the configured user; block the signals; start discovery (its threads
 * and cache connection belong to the final process and user); run
 * smfi_main() on a thread of its own.
 *
 * Signals: every thread blocks them (the main thread before it starts
 * any). SIGHUP and SIGUSR1 are taken by the reload thread alone (reload.c:
 * libmilter's signal thread, which stops the filter on SIGHUP, is kept
 * from waiting for it); the main thread sigwaits for SIGTERM, SIGINT and
 * SIGUSR2 (the filter stopped by itself).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <netinet/in.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <libmilter/mfapi.h>

#include "discover.h"
#include "fdlimit.h"
#include "filter.h"
#include "log.h"
#include "map_query.h"
#include "mapserver.h"
#include "miltersock.h"
#include "netacl.h"
#include "metrics.h"
#include "metrics_rows.h"
#include "metricsd.h"
#include "reload.h"
#include "statsd.h"
#include "rootpath.h"
#include "runtime.h"

struct options {
    const char *config;
    const char *socket;
    bool foreground;
    bool check_only;
    bool verbose;
};

static void
usage(FILE *to)
{
    fprintf(to,
            "usage: mtasts-milter [-f] [-n] [-v] [-c CONFIG] [-p SOCKET]\n\n"
            "  -c CONFIG  configuration file (default %s if it exists,\n"
            "             else the built-in defaults)\n"
            "  -p SOCKET  listen on unix:PATH, inet:PORT@HOST or inet6:PORT@HOST\n"
            "             (overrides the socket option)\n"
            "  -f         stay in the foreground and log to stderr\n"
            "  -n         check the configuration and exit (0 when it is valid)\n"
            "  -v         log debug messages\n"
            "  -V         print the version\n\n"
            "Signals: SIGHUP or SIGUSR1 reloads the configuration (a bad file is\n"
            "refused and the old one stays); SIGTERM or SIGINT stops.\n"
            "See mtasts-milter(8) and mtasts-milter.conf(5).\n",
            CONFIG_DEFAULT_PATH);
}

/* ------------------------------------------------------------ privileges */

static int
drop_privileges(const struct config *cfg, uid_t uid, gid_t gid, struct mts_err *err)
{
    if (cfg->user[0] == '\0') {
        if (getuid() == 0)
            log_msg(LOG_WARNING, "running as root: set the user option to drop privileges");
        return 0;
    }
    if (setgroups(0, NULL) != 0 || setgid(gid) != 0 || setuid(uid) != 0) {
        mts_err_set(err, "cannot drop privileges to %s: %s", cfg->user, strerror(errno));
        return -1;
    }
    if (setuid(0) == 0) {
        mts_err_set(err, "privileges were not dropped: setuid(0) still works");
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------ daemon */

static int
daemonize(struct mts_err *err)
{
    pid_t pid = fork();
    int fd;

    if (pid < 0) {
        mts_err_set(err, "fork: %s", strerror(errno));
        return -1;
    }
    if (pid > 0)
        _exit(0);
    if (setsid() < 0) {
        mts_err_set(err, "setsid: %s", strerror(errno));
        return -1;
    }
    if (chdir("/") != 0) {
        mts_err_set(err, "chdir /: %s", strerror(errno));
        return -1;
    }
    fd = open("/dev/null", O_RDWR);
    if (fd >= 0) {
        dup2(fd, 0);
        dup2(fd, 1);
        dup2(fd, 2);
        if (fd > 2)
            close(fd);
    }
    return 0;
}

/* ------------------------------------------------------------ reload */

/* Which transports enforce MTA-STS through our map (at start, at reload). */
static void
log_map_only(const struct runtime *rt)
{
    /* What the last start or reload found: the same again is only info.
     * Called at start, then by the one reload thread: never at once. */
    static char last[512];
    char names[512];

    if (rt->cfg->map_socket[0] == '\0' && rt->map_routes.n == 0)
        return;
    maproute_describe(&rt->map_routes, names, sizeof(names));
    if (rt->map_routes_err.msg[0] != '\0')
        log_msg(LOG_WARNING, "cannot ask Postfix which transports use the policy map (%s); "
                "transports enforcing through the map: %s", rt->map_routes_err.msg, names);
    else
        log_msg(strcmp(last, names) != 0 ? LOG_NOTICE : LOG_INFO,
                "transports enforcing MTA-STS through the policy map%s: %s",
                rt->map_routes.asked_postfix ? " (from postconf)" : "", names);
    snprintf(last, sizeof(last), "%s", names);
    if (rt->map_routes.notes[0] != '\0')
        log_msg(LOG_WARNING, "policy map: %s", rt->map_routes.notes);
}

/* Which transports enforce DANE (at start, at reload): notice when it
 * changes, as for the map routes. */
static void
log_dane_routes(const struct runtime *rt)
{
    static char last[512];
    char names[512];

    maproute_describe_dane(&rt->map_routes, names, sizeof(names));
    if (rt->cfg->map_socket[0] == '\0' && rt->map_routes_err.msg[0] != '\0')
        log_msg(LOG_WARNING, "cannot ask Postfix which transports enforce DANE (%s)",
                rt->map_routes_err.msg);
    log_msg(strcmp(last, names) != 0 ? LOG_NOTICE : LOG_INFO,
            "transports enforcing DANE%s: %s",
            rt->map_routes.asked_postfix ? " (from postconf)" : "", names);
    snprintf(last, sizeof(last), "%s", names);
}

/* The routes learnt, at start and at each reload (reload.h's callback). */
static void
log_map_routes(const struct runtime *rt)
{
    log_map_only(rt);
    log_dane_routes(rt);
    statsd_flush_soon();	/* a reload writes the counts so far (a no-op before the start) */
}

static volatile int milter_done;	/* set once smfi_main has returned */

static void *
milter_thread(void *arg)
{
    int *rc = arg;

    *rc = smfi_main();
    __atomic_store_n(&milter_done, 1, __ATOMIC_SEQ_CST);
    /* Tell the main thread that the filter has stopped, however it did. */
    kill(getpid(), SIGUSR2);
    return NULL;
}

static void *
stop_thread(void *arg)
{
    (void)arg;
    smfi_stop();
    return NULL;
}

/*
 * smfi_stop() waits for the listener's lock, which the listener holds
 * through each 5 s wait for a connection (MI_CHK_TIME). So stop from a
 * thread of its own and end the listener's waits with connections of our
 * own until it has stopped: a stop takes milliseconds, not seconds.
 */
static void
stop_milter(const char *sock)
{
    pthread_t st;
    bool started = pthread_create(&st, NULL, stop_thread, NULL) == 0;

    if (!started)
        smfi_stop();
    for (int i = 0; i < 250 && !__atomic_load_n(&milter_done, __ATOMIC_SEQ_CST); i++) {
        struct timespec ts = {0, 20 * 1000 * 1000};

        miltersock_wake(sock);
        nanosleep(&ts, NULL);
    }
    if (started)
        pthread_join(st, NULL);
}

/* ------------------------------------------------------------ main */

static int
parse_options(int argc, char **argv, struct options *o)
{
    int c;

    memset(o, 0, sizeof(*o));
    while ((c = getopt(argc, argv, "c:p:fnvVh")) != -1) {
        switch (c) {
        case 'c':
            o->config = optarg;
            break;
        case 'p':
            o->socket = optarg;
            break;
        case 'f':
            o->foreground = true;
            break;
        case 'n':
            o->check_only = true;
            break;
        case 'v':
            o->verbose = true;
            break;
        case 'V':
            printf("mtasts-milter %s\n", MTS_VERSION);
            exit(0);
        case 'h':
            usage(stdout);
            exit(0);
        default:
            usage(stderr);
            return -1;
        }
    }
    if (optind != argc) {
        usage(stderr);
        return -1;
    }
    return 0;
}

int
main(int argc, char **argv)
{
    struct options o;
    struct runtime *rt;
    struct mts_err err;
    char *sock = NULL, *pid_file = NULL;
    struct mapserver *map = NULL;
    struct metricsd *md = NULL;
    char *map_spec = NULL;
    struct mapserver_limits map_limits;
    uid_t uid;
    gid_t gid;
    sigset_t sigs;
    pthread_t mt;
    int milter_rc = 0, sig;

    if (argc == 2 && strcmp(argv[1], "--version") == 0) {
        printf("mtasts-milter %s\n", MTS_VERSION);
        return 0;
    }
    if (argc == 2 && strcmp(argv[1], "--help") == 0) {
        usage(stdout);
        return 0;
    }
    if (parse_options(argc, argv, &o) != 0)
        return 2;
    log_init("mtasts-milter", LOG_TO_STDERR, LOG_MAIL);
    if (runtime_build(o.config, false, &rt, &err) != 0) {
        fprintf(stderr, "mtasts-milter: %s\n", err.msg);
        return 1;
    }
    if (o.check_only) {
        /* What start will do with the cache file: -n and start agree. */
        int cc = discover_check_cache(rt->cfg, &err);

        if (cc == 1)
            printf("%s: warning: %s; at start it will be moved aside to %s.corrupt-<time> and "
                   "a fresh one created\n", rt->cfg->path, err.msg, rt->cfg->cache_db);
        else if (cc == 2)
            printf("%s: warning: cannot check the cache now: %s\n", rt->cfg->path, err.msg);
        else if (cc < 0)
            fprintf(stderr, "mtasts-milter: cache_db: %s\n", err.msg);
        if (cc >= 0)
            printf("%s: configuration is valid (%zu rule%s)\n", rt->cfg->path, rt->rules.n,
                   rt->rules.n == 1 ? "" : "s");
        runtime_unref(rt);
        return cc >= 0 ? 0 : 1;
    }
    if (!o.foreground)
        log_init("mtasts-milter", LOG_TO_SYSLOG, rt->cfg->log_facility);
    log_set_level(o.verbose ? LOG_DEBUG : rt->cfg->log_level);
    fdlimit_raise();
    /* A copy: rt is released before the socket name is used in logs. */
    sock = strdup(o.socket ? o.socket : rt->cfg->socket);
    if (sock == NULL) {
        mts_err_set(&err, "out of memory");
        goto fail;
    }
    if (rootpath_user(rt->cfg, &uid, &gid, &err) != 0)
        goto fail;
    if (smfi_register(filter_desc) != MI_SUCCESS || smfi_setconn((char *)sock) != MI_SUCCESS) {
        mts_err_set(&err, "libmilter refused the socket %s", sock);
        goto fail;
    }
    if (miltersock_unix_path(sock) != NULL &&
        (rootpath_make_parent(miltersock_unix_path(sock), uid, gid, &err) != 0 ||
         miltersock_check_free(miltersock_unix_path(sock), &err) != 0))
        goto fail;
    if (rootpath_make_parent(rt->cfg->cache_db, uid, gid, &err) != 0)
        goto fail;
    /* Group members (the MTA) may connect to a unix socket; others may not. */
    umask(007);
    if (smfi_opensocket(true) != MI_SUCCESS) {
        mts_err_set(&err, "cannot open the milter socket %s (in use, or no permission?)", sock);
        goto fail;
    }
    if (miltersock_unix_path(sock) != NULL) {
        miltersock_remember(miltersock_unix_path(sock));
        rootpath_give(miltersock_unix_path(sock), uid, gid, "the milter socket");
    } else {
        struct sockaddr_storage ss;
        socklen_t sl;
        int lfd = miltersock_inet_listener(&ss, &sl);

        if (lfd >= 0 && netacl_restrict(lfd, &rt->cfg->milter_allow_clients, "the milter socket",
                                        "milter_allow_clients", &err) != 0)
            goto fail;
        if (rt->cfg->tcp_nodelay)
            miltersock_set_nodelay();
        miltersock_hint_quickack();
    }
    /* The policy map's socket, opened while still root (an inet port < 1024). */
    if (rt->cfg->map_socket[0] != '\0') {
        const char *mp = miltersock_unix_path(rt->cfg->map_socket);

        if ((mp != NULL && rootpath_make_parent(mp, uid, gid, &err) != 0) ||
            mapserver_open(rt->cfg->map_socket, uid, gid, &map, &err) != 0 ||
            mapserver_allow(map, &rt->cfg->map_allow_clients, &err) != 0)
            goto fail;
        if ((map_spec = strdup(rt->cfg->map_socket)) == NULL) {
            mts_err_set(&err, "out of memory");
            goto fail;
        }
        map_limits.max_clients = (int)rt->cfg->map_max_clients;
        map_limits.workers = (int)rt->cfg->map_workers;
        map_limits.idle_timeout_ms = rt->cfg->map_idle_timeout_ms;
    }
    /* The metrics endpoint's socket, also opened as root. */
    if (rt->cfg->metrics_socket[0] != '\0' &&
        metricsd_open(rt->cfg->metrics_socket, &rt->cfg->metrics_allow_clients, uid, gid, &md,
                      &err) != 0)
        goto fail;
    if (!o.foreground && daemonize(&err) != 0)
        goto fail;
    if (rootpath_write_pid(rt->cfg->pid_file, &err) != 0 || drop_privileges(rt->cfg, uid, gid, &err) != 0)
        goto fail;
    /* Kept apart: a reload may replace the runtime before we stop. */
    pid_file = strdup(rt->cfg->pid_file);
    runtime_unref(rt);

    /* Every thread from here on inherits the blocked set. */
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGHUP);
    sigaddset(&sigs, SIGUSR1);
    sigaddset(&sigs, SIGUSR2);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);
    /* Log lines are written off the connections' threads from here on;
     * exit (each return below) writes what is still queued. */
    if (log_start_writer() == 0)
        atexit(log_stop_writer);

    if (discover_global_init(&err) != 0 || runtime_build(o.config, true, &rt, &err) != 0) {
        log_msg(LOG_ERR, "cannot start: %s", err.msg);
        miltersock_remove(miltersock_unix_path(sock));
        return 1;
    }
    log_map_routes(rt);
    /* Without statistics the milter still does its job: say so, go on. */
    if (statsd_start(rt->cfg, &err) != 0)
        log_msg(LOG_ERR, "verdict statistics not kept: %s", err.msg);
    runtime_install(rt);
    metrics_start();
    metrics_rows_configure(rt->cfg->cache_db, rt->cfg->metrics_cache_rows_interval);
    /* Before libmilter's signal thread exists (see the top of this file). */
    if (reload_start(o.config, log_map_routes, &err) != 0) {
        log_msg(LOG_ERR, "cannot start: %s", err.msg);
        return 1;
    }
    sigdelset(&sigs, SIGHUP);
    sigdelset(&sigs, SIGUSR1);
    if (pthread_create(&mt, NULL, milter_thread, &milter_rc) != 0) {
        log_msg(LOG_ERR, "cannot start threads");
        return 1;
    }
    log_msg(LOG_NOTICE, "mtasts-milter %s listening on %s", MTS_VERSION, sock);
    if (map != NULL) {
        if (mapserver_start(map, &map_limits, map_query_answer, map_query_answer_at_once, NULL,
                            &err) != 0) {
            log_msg(LOG_ERR, "cannot start the policy map: %s", err.msg);
            stop_milter(sock);
            pthread_join(mt, NULL);
            miltersock_remove(miltersock_unix_path(sock));
            mapserver_close(map);
            return 1;
        }
        log_msg(LOG_NOTICE, "policy map (socketmap) listening on %s", map_spec);
    }
    if (md != NULL) {
        /* Without metrics the milter still does its job: say so, go on. */
        if (metricsd_start(md, &err) != 0) {
            log_msg(LOG_ERR, "metrics endpoint not started: %s", err.msg);
            metricsd_close(md);
            md = NULL;
        }
    }

    for (;;) {
        if (sigwait(&sigs, &sig) != 0)
            continue;
        if (sig == SIGTERM || sig == SIGINT)
            log_msg(LOG_NOTICE, "stopping on signal %d", sig);
        break;			/* SIGUSR2: the filter stopped by itself */
    }
    stop_milter(sock);
    pthread_join(mt, NULL);
    miltersock_remove(miltersock_unix_path(sock));
    mapserver_close(map);
    metricsd_close(md);
    free(map_spec);
    reload_stop();
    statsd_stop();		/* after the milter's threads: the last counts are written */
    /* Lookups still in flight are abandoned, not awaited: each cache write
     * is a whole row in one transaction, so nothing committed is lost. */
    if (pid_file != NULL && pid_file[0] != '\0')
        (void)unlink(pid_file);
    log_msg(LOG_NOTICE, "stopped");
    free(pid_file);
    free(sock);
    return milter_rc == MI_SUCCESS ? 0 : 1;

fail:
    log_msg(LOG_ERR, "%s", err.msg);
    if (sock != NULL)
        miltersock_remove(miltersock_unix_path(sock));
    mapserver_close(map);
    metricsd_close(md);
    free(map_spec);
    if (o.foreground)
        fprintf(stderr, "mtasts-milter: %s\n", err.msg);
    runtime_unref(rt);
    free(sock);
    return 1;
}
