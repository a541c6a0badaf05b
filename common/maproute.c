/*
 * maproute - transports that enforce through this daemon's map; see maproute.h.
 */
#define _GNU_SOURCE
#include "maproute.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/wait.h>
#include <unistd.h>

#include "clock.h"

extern char **environ;

#define MAPROUTE_MAX_SERVICES 512
#define POSTCONF_PATH "/usr/sbin/postconf"
#define POSTFIX_MAIN_CF "/etc/postfix/main.cf"

/* One master.cf service of type unix. */
struct service {
    char name[64];
    bool smtp;			/* its command is smtp */
    bool chroot;
    const char *maps;		/* its -o smtp_tls_policy_maps (in params), else NULL */
    size_t maps_len;
    const char *dns, *level;	/* its -o smtp_dns_support_level, smtp_tls_security_level */
    size_t dns_len, level_len;
};

static bool
is_sep(char c)
{
    return c == ' ' || c == '\t' || c == ',' || c == '\r' || c == '\n';
}

/* Next word of a map list (separated by space and commas) in [*p, end). */
static bool
next_word(const char **p, const char *end, const char **w, size_t *wl)
{
    const char *s = *p;

    while (s < end && is_sep(*s))
        s++;
    if (s == end)
        return false;
    *w = s;
    while (s < end && !is_sep(*s))
        s++;
    *wl = (size_t)(s - *w);
    *p = s;
    return true;
}

/* Adds name to the list *names of *n (once, whatever its case). */
static int
add_to(char ***names, size_t *n, const char *name, size_t len, struct mts_err *err)
{
    char **v;

    if (len == 0)
        return 0;
    for (size_t i = 0; i < *n; i++)
        if (strlen((*names)[i]) == len && strncasecmp((*names)[i], name, len) == 0)
            return 0;
    v = realloc(*names, (*n + 1) * sizeof(*v));
    if (v == NULL)
        goto oom;
    *names = v;
    if ((v[*n] = strndup(name, len)) == NULL)
        goto oom;
    (*n)++;
    return 0;
oom:
    mts_err_set(err, "out of memory");
    return -1;
}

static int
add_name(struct maproute *r, const char *name, size_t len, struct mts_err *err)
{
    return add_to(&r->name, &r->n, name, len, err);
}

/* Is the value v[0..vl) (spaces around ignored) the word w? Postfix's
 * own spelling: a level it would not take is not counted. */
static bool
value_is(const char *v, size_t vl, const char *w)
{
    const char *p = v, *x;
    size_t xl;

    return next_word(&p, v + vl, &x, &xl) && xl == strlen(w) && strncmp(x, w, xl) == 0 &&
           !next_word(&p, v + vl, &x, &xl);
}

/*
 * Does a service enforce DANE? Its effective smtp_dns_support_level is
 * dnssec and its smtp_tls_security_level dane or dane-only (postconf(5):
 * without dnssec support Postfix makes no DANE).
 */
static bool
service_dane(const struct service *sv, const struct maproute_input *in)
{
    const char *dns = sv->dns ? sv->dns : (in->main_dns ? in->main_dns : "");
    size_t dl = sv->dns ? sv->dns_len : strlen(dns);
    const char *lvl = sv->level ? sv->level : (in->main_level ? in->main_level : "");
    size_t ll = sv->level ? sv->level_len : strlen(lvl);

    return value_is(dns, dl, "dnssec") &&
           (value_is(lvl, ll, "dane") || value_is(lvl, ll, "dane-only"));
}

/* Notes a service that names our map after another map. */
static void
note_later(struct maproute *r, const char *service, const char *first, size_t first_len)
{
    size_t used = strlen(r->notes);
    char text[300];

    snprintf(text, sizeof(text), "%s: %.*s comes before this daemon's map in "
             "smtp_tls_policy_maps (not counted)", service, (int)first_len, first);
    if (used + strlen(text) + 3 < sizeof(r->notes))
        snprintf(r->notes + used, sizeof(r->notes) - used, "%s%s", used ? "; " : "", text);
}

/*
 * Is the map word w (socketmap:unix:PATH:NAME, socketmap:inet:HOST:PORT:NAME)
 * this daemon's map_socket, for a service chrooted or not?
 */
static bool
is_our_map(const char *w, size_t wl, const char *map_socket, bool chroot, const char *qdir)
{
    const char *end = w + wl, *name_colon, *path;
    size_t pl;

    if (wl < 10 || strncmp(w, "socketmap:", 10) != 0)
        return false;
    w += 10;
    for (name_colon = end; name_colon > w && name_colon[-1] != ':'; name_colon--)
        ;
    if (name_colon == w)
        return false;
    name_colon--;		/* at the ':' before NAME */
    if (strncmp(map_socket, "unix:", 5) == 0 || strncmp(map_socket, "local:", 6) == 0) {
        const char *want = strchr(map_socket, ':') + 1;
        size_t ql = chroot ? strlen(qdir) : 0;

        if ((size_t)(name_colon - w) < 5 || strncmp(w, "unix:", 5) != 0)
            return false;
        path = w + 5;
        pl = (size_t)(name_colon - path);
        /* A chrooted smtp(8) opens the path inside $queue_directory. */
        if (ql > 0 && qdir[ql - 1] == '/')
            ql--;
        return strlen(want) == ql + pl && strncmp(want, qdir, ql) == 0 &&
               strncmp(want + ql, path, pl) == 0;
    }
    if (strncmp(map_socket, "inet:", 5) == 0) {
        /* map_socket inet:PORT@HOST; the map word inet:HOST:PORT */
        const char *port = map_socket + 5, *at = strchr(port, '@'), *pc;

        if (at == NULL || (size_t)(name_colon - w) < 5 || strncmp(w, "inet:", 5) != 0)
            return false;
        for (pc = name_colon; pc > w + 5 && pc[-1] != ':'; pc--)
            ;
        if (pc == w + 5)
            return false;
        return (size_t)(name_colon - pc) == (size_t)(at - port) &&
               strncmp(pc, port, (size_t)(at - port)) == 0 &&
               strlen(at + 1) == (size_t)(pc - 1 - (w + 5)) &&
               strncasecmp(w + 5, at + 1, strlen(at + 1)) == 0;
    }
    return false;
}

/* The service named in "svc/type/field = value", or NULL when t is not such a line. */
static struct service *
service_of(struct service *sv, size_t *n, const char *line, size_t ll, const char **field,
           size_t *fl, const char **value, size_t *vl)
{
    const char *end = line + ll, *s1, *s2, *eq;
    size_t nl;

    s1 = memchr(line, '/', ll);
    if (s1 == NULL || (s2 = memchr(s1 + 1, '/', (size_t)(end - s1 - 1))) == NULL)
        return NULL;
    eq = memchr(s2, '=', (size_t)(end - s2));
    if (eq == NULL || (size_t)(s2 - s1 - 1) != 4 || strncmp(s1 + 1, "unix", 4) != 0)
        return NULL;
    nl = (size_t)(s1 - line);
    *field = s2 + 1;
    for (*fl = (size_t)(eq - *field); *fl > 0 && (*field)[*fl - 1] == ' '; (*fl)--)
        ;
    *value = eq + 1;
    while (*value < end && **value == ' ')
        (*value)++;
    *vl = (size_t)(end - *value);
    if (nl == 0 || nl >= sizeof(sv->name))
        return NULL;
    for (size_t i = 0; i < *n; i++)
        if (strlen(sv[i].name) == nl && strncmp(sv[i].name, line, nl) == 0)
            return &sv[i];
    if (*n == MAPROUTE_MAX_SERVICES)
        return NULL;
    memset(&sv[*n], 0, sizeof(sv[*n]));
    memcpy(sv[*n].name, line, nl);
    return &sv[(*n)++];
}

/* Calls each line of text (no newline) through service_of, setting fields. */
static void
read_lines(struct service *sv, size_t *n, const char *text, bool params)
{
    const char *p = text, *nl, *field, *value;
    size_t ll, fl, vl;
    struct service *s;

    while (p != NULL && *p != '\0') {
        nl = strchr(p, '\n');
        ll = nl ? (size_t)(nl - p) : strlen(p);
        s = service_of(sv, n, p, ll, &field, &fl, &value, &vl);
        if (s != NULL && !params && fl == 7 && strncmp(field, "command", 7) == 0) {
            const char *w;
            size_t wl;
            const char *q = value;

            s->smtp = next_word(&q, value + vl, &w, &wl) && wl == 4 && strncmp(w, "smtp", 4) == 0;
        } else if (s != NULL && !params && fl == 6 && strncmp(field, "chroot", 6) == 0) {
            s->chroot = vl >= 1 && (value[0] == 'y' || value[0] == 'Y');
        } else if (s != NULL && params && fl == 20 &&
                   strncmp(field, "smtp_tls_policy_maps", 20) == 0) {
            s->maps = value;
            s->maps_len = vl;
        } else if (s != NULL && params && fl == 22 &&
                   strncmp(field, "smtp_dns_support_level", 22) == 0) {
            s->dns = value;
            s->dns_len = vl;
        } else if (s != NULL && params && fl == 23 &&
                   strncmp(field, "smtp_tls_security_level", 23) == 0) {
            s->level = value;
            s->level_len = vl;
        }
        p = nl ? nl + 1 : NULL;
    }
}

int
maproute_parse(const struct maproute_input *in, struct maproute *r, struct mts_err *err)
{
    struct service *sv = calloc(MAPROUTE_MAX_SERVICES, sizeof(*sv));
    size_t n = 0;
    const char *qdir = in->queue_directory ? in->queue_directory : "";
    int rc = 0;

    if (sv == NULL) {
        mts_err_set(err, "out of memory");
        return -1;
    }
    read_lines(sv, &n, in->fields ? in->fields : "", false);
    read_lines(sv, &n, in->params ? in->params : "", true);
    for (size_t i = 0; i < n && rc == 0; i++) {
        const char *maps = sv[i].maps ? sv[i].maps : (in->main_maps ? in->main_maps : "");
        const char *end = maps + (sv[i].maps ? sv[i].maps_len : strlen(maps));
        const char *p = maps, *w, *first = NULL;
        size_t wl, first_len = 0;
        bool ours_first = false, ours_later = false;

        if (!sv[i].smtp)
            continue;
        if (in->dane && service_dane(&sv[i], in) &&
            (rc = add_to(&r->dane, &r->n_dane, sv[i].name, strlen(sv[i].name), err)) != 0)
            break;
        while (next_word(&p, end, &w, &wl)) {
            bool ours = is_our_map(w, wl, in->map_socket, sv[i].chroot, qdir);

            if (first == NULL) {
                first = w;
                first_len = wl;
                ours_first = ours;
            } else if (ours) {
                ours_later = true;
            }
        }
        if (ours_first)
            rc = add_name(r, sv[i].name, strlen(sv[i].name), err);
        else if (ours_later)
            note_later(r, sv[i].name, first, first_len);
    }
    free(sv);
    return rc;
}

/* ------------------------------------------------------------ postconf */

/*
 * Runs postconf with args (after "-c DIR" when confdir is set); its
 * standard output in *out (malloc'd, NUL-terminated).
 */
static int
run_postconf(const char *confdir, const char *const *args, char **out, struct mts_err *err)
{
    const char *argv[12];
    int ac = 0, po[2] = {-1, -1}, pe[2] = {-1, -1}, status, rc = -1;
    posix_spawn_file_actions_t fa;
    pid_t pid;
    char *buf = NULL, ebuf[256] = "";
    size_t len = 0, elen = 0;
    struct timespec deadline = clock_deadline_after(MAPROUTE_TIMEOUT_MS);
    bool use_path = access(POSTCONF_PATH, X_OK) != 0;

    *out = NULL;
    argv[ac++] = use_path ? "postconf" : POSTCONF_PATH;
    if (confdir != NULL && confdir[0] != '\0') {
        argv[ac++] = "-c";
        argv[ac++] = confdir;
    }
    for (int i = 0; args[i] != NULL && ac < 11; i++)
        argv[ac++] = args[i];
    argv[ac] = NULL;
    if ((buf = malloc(MAPROUTE_OUTPUT_MAX + 1)) == NULL) {
        mts_err_set(err, "out of memory");
        return -1;
    }
    if (pipe2(po, O_CLOEXEC) != 0 || pipe2(pe, O_CLOEXEC) != 0) {
        mts_err_set(err, "postconf: pipe: %s", strerror(errno));
        goto done;
    }
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, po[1], 1);
    posix_spawn_file_actions_adddup2(&fa, pe[1], 2);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    errno = use_path ? posix_spawnp(&pid, argv[0], &fa, NULL, (char *const *)argv, environ)
                     : posix_spawn(&pid, argv[0], &fa, NULL, (char *const *)argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (errno != 0) {
        mts_err_set(err, "cannot run postconf: %s", strerror(errno));
        goto done;
    }
    close(po[1]);
    close(pe[1]);
    po[1] = pe[1] = -1;
    for (;;) {
        struct pollfd pf[2] = {{po[0], POLLIN, 0}, {pe[0], POLLIN, 0}};
        int left = clock_ms_until(&deadline);
        ssize_t got;

        if (pf[0].fd < 0 && pf[1].fd < 0)
            break;
        if (left <= 0 || poll(pf, 2, left) == 0) {
            kill(pid, SIGKILL);
            (void)waitpid(pid, &status, 0);
            mts_err_set(err, "postconf did not answer within %d ms", MAPROUTE_TIMEOUT_MS);
            goto done;
        }
        if (pf[0].revents != 0) {
            got = read(po[0], buf + len, len < MAPROUTE_OUTPUT_MAX ? MAPROUTE_OUTPUT_MAX - len : 1);
            if (got == 0 || (got < 0 && errno != EINTR)) {
                close(po[0]);
                po[0] = -1;
            } else if (got > 0 && len + (size_t)got <= MAPROUTE_OUTPUT_MAX) {
                len += (size_t)got;
            }
        }
        if (pf[1].revents != 0) {
            char tmp[256];

            got = read(pe[0], tmp, sizeof(tmp));
            if (got == 0 || (got < 0 && errno != EINTR)) {
                close(pe[0]);
                pe[0] = -1;
            } else if (got > 0 && elen + (size_t)got < sizeof(ebuf)) {
                memcpy(ebuf + elen, tmp, (size_t)got);
                elen += (size_t)got;
            }
            /* Postfix's msg_fatal() sleeps a second before it exits (so
             * that its master does not respawn in a tight loop): with the
             * fatal line in, the answer is known, and the milter's start
             * (the policy map's first answers) need not wait that second. */
            if (strstr(ebuf, ": fatal: ") != NULL && memchr(ebuf, '\n', elen) != NULL) {
                kill(pid, SIGKILL);
                (void)waitpid(pid, &status, 0);
                ebuf[strcspn(ebuf, "\n")] = '\0';
                mts_err_set(err, "%s", ebuf);
                goto done;
            }
        }
        if (po[0] < 0 && pe[0] < 0)
            break;
    }
    buf[len] = '\0';
    ebuf[elen] = '\0';
    if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        ebuf[strcspn(ebuf, "\n")] = '\0';
        if (WIFEXITED(status) && WEXITSTATUS(status) == 127 && ebuf[0] == '\0')
            mts_err_set(err, "postconf is not installed");
        else if (ebuf[0] != '\0')
            mts_err_set(err, "%s", ebuf);
        else
            mts_err_set(err, "%s failed (status %d)", argv[0],
                        WIFEXITED(status) ? WEXITSTATUS(status) : -1);
        goto done;
    }
    *out = buf;
    buf = NULL;
    rc = 0;
done:
    for (int i = 0; i < 2; i++) {
        if (po[i] >= 0)
            close(po[i]);
        if (pe[i] >= 0)
            close(pe[i]);
    }
    free(buf);
    return rc;
}

/* The next line of *p (cut at its newline), or "" at the end. */
static const char *
take_line(char **p)
{
    char *l = *p, *nl = strchr(l, '\n');

    if (nl == NULL) {
        *p = l + strlen(l);
        return l;
    }
    *nl = '\0';
    *p = nl + 1;
    return l;
}

static int
ask_postfix(const struct config *cfg, bool map, bool dane, struct maproute *r,
            struct mts_err *err)
{
    /* postconf -h prints the values in the order asked, one a line. */
    static const char *const a_main[] = {"-xh", "queue_directory", "smtp_tls_policy_maps",
                                         "smtp_dns_support_level", "smtp_tls_security_level",
                                         NULL};
    static const char *const a_fields[] = {"-F", NULL};
    static const char *const a_params[] = {"-xP", NULL};
    char *mainv = NULL, *fields = NULL, *params = NULL, *p;
    struct maproute_input in;
    int rc = -1;

    if (run_postconf(cfg->map_postfix_config, a_main, &mainv, err) != 0 ||
        run_postconf(cfg->map_postfix_config, a_fields, &fields, err) != 0 ||
        run_postconf(cfg->map_postfix_config, a_params, &params, err) != 0)
        goto done;
    memset(&in, 0, sizeof(in));
    in.map_socket = map ? cfg->map_socket : "";
    in.dane = dane;
    if (strchr(mainv, '\n') == NULL) {
        mts_err_set(err, "postconf -h: unexpected output");
        goto done;
    }
    p = mainv;
    in.queue_directory = take_line(&p);
    in.main_maps = take_line(&p);
    in.main_dns = take_line(&p);
    in.main_level = take_line(&p);
    in.fields = fields;
    in.params = params;
    rc = maproute_parse(&in, r, err);
    r->asked_postfix = rc == 0;
done:
    free(mainv);
    free(fields);
    free(params);
    return rc;
}

/* Adds the names of list l to *names but the words auto and none;
 * *automatic when auto is one of them. */
static int
add_list(const struct config_list *l, char ***names, size_t *n, bool *automatic,
         struct mts_err *err)
{
    *automatic = false;
    for (size_t i = 0; i < l->n; i++) {
        const char *t = l->v[i];

        if (strcasecmp(t, "auto") == 0)
            *automatic = true;
        else if (strcasecmp(t, "none") != 0 && add_to(names, n, t, strlen(t), err) != 0)
            return -1;
    }
    return 0;
}

int
maproute_learn(const struct config *cfg, struct maproute *r, struct mts_err *err)
{
    bool map_auto, dane_auto;

    memset(r, 0, sizeof(*r));
    if (add_list(&cfg->map_transports, &r->name, &r->n, &map_auto, err) != 0 ||
        add_list(&cfg->dane_transports, &r->dane, &r->n_dane, &dane_auto, err) != 0)
        return -1;
    map_auto = map_auto && cfg->map_socket[0] != '\0';
    /* DANE needs no map: ask Postfix when it is there to be asked (its
     * map, its directory given, or its default main.cf), so that a
     * Sendmail host is not warned about a postconf it does not have. */
    dane_auto = dane_auto && (cfg->map_socket[0] != '\0' || cfg->map_postfix_config[0] != '\0' ||
                              access(POSTFIX_MAIN_CF, F_OK) == 0);
    if (!map_auto && !dane_auto)
        return 0;
    return ask_postfix(cfg, map_auto, dane_auto, r, err);
}

bool
maproute_has(const struct maproute *r, const char *transport)
{
    if (r == NULL || transport == NULL)
        return false;
    for (size_t i = 0; i < r->n; i++)
        if (strcasecmp(r->name[i], transport) == 0)
            return true;
    return false;
}

bool
maproute_has_dane(const struct maproute *r, const char *transport)
{
    if (r == NULL || transport == NULL)
        return false;
    for (size_t i = 0; i < r->n_dane; i++)
        if (strcasecmp(r->dane[i], transport) == 0)
            return true;
    return false;
}

static void
describe(char *const *names, size_t n, char *buf, size_t size)
{
    size_t used = 0;

    snprintf(buf, size, "none");
    for (size_t i = 0; i < n && used < size; i++) {
        int w = snprintf(buf + used, size - used, "%s%s", i ? ", " : "", names[i]);

        if (w < 0)
            break;
        used += (size_t)w;
    }
}

void
maproute_describe(const struct maproute *r, char *buf, size_t size)
{
    describe(r->name, r->n, buf, size);
}

void
maproute_describe_dane(const struct maproute *r, char *buf, size_t size)
{
    describe(r->dane, r->n_dane, buf, size);
}

void
maproute_free(struct maproute *r)
{
    if (r == NULL)
        return;
    for (size_t i = 0; i < r->n; i++)
        free(r->name[i]);
    free(r->name);
    r->name = NULL;
    r->n = 0;
    for (size_t i = 0; i < r->n_dane; i++)
        free(r->dane[i]);
    free(r->dane);
    r->dane = NULL;
    r->n_dane = 0;
}
