/*
 * ctl_status - `mtasts-ctl status`: what the running milter is doing, read
 * from its metrics endpoint (metrics_socket; metricsd.h), for a person or,
 * with --json, for tools. A milter that does not answer is said so plainly.
 */
#include "ctl.h"

#include <curl/curl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config.h"
#include "metrics.h"

#define PAGE_MAX (8 * 1024 * 1024)	/* far above the full label spread (metrics.h) */
#define STATUS_TIMEOUT_MS 5000

struct page {
    char *buf;
    size_t len;
    bool too_big;
};

/* The figures status prints, summed over the series' labels. */
struct figures {
    char version[64];
    long long start;
    double judged, dry_run, by_action[5], by_path[METRICS_NPATHS], scope_out, unreadable, internal;
    double wait_sum, wait_count;
    double fetch_ok, fetch_failed, probes, map_requests, map_temp, caps, cache_errors;
    double reloads_ok, reloads_refused;
    /* the present (metrics_now.h, metrics_rows.h) */
    double rcpts_minute, rcpts_hour, minute_by_action[5], hour_by_action[5];
    double queue_depth[5], queue_wait[5];
    char resolver[64];
    double resolver_failed_run;
    bool have_rows[5];
    double rows[5], rows_age;
    double memory_entries, memory_hits, memory_misses, healed;
    double slowest_lookup;
    double rechecks[4], map_refused;
    char fleet[64];		/* metrics_fleet.h; "" from a milter without it */
    double fleet_since, fleet_retry_at, fleet_refused;
};

static const char *const queue_w[] = {"lookup-waited", "lookup-abandoned", "lookup-refresh",
                                      "probe-first", "probe-refresh"};
static const char *const table_w[] = {"domains", "mx_sets", "mx_probes", "tls_probes",
                                      "verdict_stats"};
static const char *const recheck_w[] = {"new-policy", "same-policy", "incomplete", "no-time"};

static const char *const action_w[] = {"tag", "defer", "reject", "hold", "untouched"};

static size_t
on_body(char *p, size_t size, size_t n, void *arg)
{
    struct page *pg = arg;
    size_t k = size * n;
    char *nb;

    if (pg->len + k > PAGE_MAX) {
        pg->too_big = true;
        return 0;
    }
    if ((nb = realloc(pg->buf, pg->len + k + 1)) == NULL)
        return 0;
    pg->buf = nb;
    memcpy(pg->buf + pg->len, p, k);
    pg->len += k;
    pg->buf[pg->len] = '\0';
    return k;
}

/* The URL (and unix socket) of a metrics_socket; -1 for a form it is not. */
static int
endpoint(const char *spec, char *url, size_t urlsz, const char **unix_path)
{
    const char *at, *host;
    int port;
    bool v6 = strncmp(spec, "inet6:", 6) == 0;

    *unix_path = NULL;
    if (strncmp(spec, "unix:", 5) == 0 || strncmp(spec, "local:", 6) == 0) {
        *unix_path = strchr(spec, ':') + 1;
        snprintf(url, urlsz, "http://localhost/metrics");
        return 0;
    }
    if (!v6 && strncmp(spec, "inet:", 5) != 0)
        return -1;
    port = atoi(strchr(spec, ':') + 1);
    if ((at = strchr(spec, '@')) == NULL || port <= 0 || port > 65535)
        return -1;
    host = at + 1;
    /* A wildcard listener is asked on loopback. */
    if (strcmp(host, "0.0.0.0") == 0 || host[0] == '\0')
        host = v6 ? "::1" : "127.0.0.1";
    else if (strcmp(host, "::") == 0)
        host = "::1";
    snprintf(url, urlsz, v6 ? "http://[%s]:%d/metrics" : "http://%s:%d/metrics", host, port);
    return 0;
}

/* The value of label name in a sample line's {...}, into out; false: none. */
static bool
label(const char *line, const char *name, char *out, size_t outsz)
{
    char key[64];
    const char *p, *e;

    snprintf(key, sizeof(key), "%s=\"", name);
    if ((p = strstr(line, key)) == NULL)
        return false;
    p += strlen(key);
    if ((e = strchr(p, '"')) == NULL)
        return false;
    snprintf(out, outsz, "%.*s", (int)(e - p), p);
    return true;
}

static int
word_index(const char *const *w, size_t n, const char *word)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(w[i], word) == 0)
            return (int)i;
    return -1;
}

static bool
is(const char *line, const char *family)
{
    size_t n = strlen(family);

    return strncmp(line, family, n) == 0 && (line[n] == '{' || line[n] == ' ');
}

/* The gauges of the present: one sample line l of value v. */
static void
read_now(const char *l, double v, struct figures *f)
{
    char w[64];
    int i;

    if (is(l, "mtasts_rcpts_last_minute"))
        f->rcpts_minute = v;
    else if (is(l, "mtasts_rcpts_last_hour"))
        f->rcpts_hour = v;
    else if (is(l, "mtasts_recipients_last_minute") && label(l, "action", w, sizeof(w)) &&
             (i = word_index(action_w, 5, w)) >= 0)
        f->minute_by_action[i] = v;
    else if (is(l, "mtasts_recipients_last_hour") && label(l, "action", w, sizeof(w)) &&
             (i = word_index(action_w, 5, w)) >= 0)
        f->hour_by_action[i] = v;
    else if (is(l, "mtasts_queue_depth") && label(l, "queue", w, sizeof(w)) &&
             (i = word_index(queue_w, 5, w)) >= 0)
        f->queue_depth[i] = v;
    else if (is(l, "mtasts_queue_oldest_wait_seconds") && label(l, "queue", w, sizeof(w)) &&
             (i = word_index(queue_w, 5, w)) >= 0)
        f->queue_wait[i] = v;
    else if (is(l, "mtasts_resolver_state") && v == 1 && label(l, "state", w, sizeof(w)))
        snprintf(f->resolver, sizeof(f->resolver), "%s", w);
    else if (is(l, "mtasts_resolver_failed_in_a_row"))
        f->resolver_failed_run = v;
    else if (is(l, "mtasts_cache_rows") && label(l, "table", w, sizeof(w)) &&
             (i = word_index(table_w, 5, w)) >= 0) {
        f->rows[i] = v;
        f->have_rows[i] = true;
    } else if (is(l, "mtasts_cache_rows_age_seconds"))
        f->rows_age = v;
    else if (is(l, "mtasts_memory_entries"))
        f->memory_entries = v;
    else if (is(l, "mtasts_memory_reads_total") && label(l, "result", w, sizeof(w)))
        *(strcmp(w, "hit") == 0 ? &f->memory_hits : &f->memory_misses) += v;
    else if (is(l, "mtasts_cache_healed_total"))
        f->healed = v;
    else if (is(l, "mtasts_lookup_slowest_last_hour_seconds"))
        f->slowest_lookup = v;
    else if (is(l, "mtasts_rechecks_total") && label(l, "result", w, sizeof(w)) &&
             (i = word_index(recheck_w, 4, w)) >= 0)
        f->rechecks[i] = v;
    else if (is(l, "mtasts_map_clients_refused_total"))
        f->map_refused = v;
    else if (is(l, "mtasts_fleet_link_state") && v == 1 && label(l, "state", w, sizeof(w)))
        snprintf(f->fleet, sizeof(f->fleet), "%s", w);
    else if (is(l, "mtasts_fleet_link_down_since_seconds"))
        f->fleet_since = v;
    else if (is(l, "mtasts_fleet_link_retry_at_seconds"))
        f->fleet_retry_at = v;
    else if (is(l, "mtasts_fleet_values_refused_total"))
        f->fleet_refused = v;
}

/* Seconds until the fleet link is tried again (0: now or not down). */
static long long
fleet_retry_in(const struct figures *f)
{
    long long in = (long long)f->fleet_retry_at - (long long)time(NULL);

    return in > 0 ? in : 0;
}

static void
print_fleet(const struct figures *f)
{
    char since[32];

    if (strcmp(f->fleet, "down") == 0) {
        ctl_fmt_time((int64_t)f->fleet_since, since, sizeof(since));
        printf("fleet:              down since %s, retry in %lld s", since, fleet_retry_in(f));
    } else {
        printf("fleet:              %s", f->fleet[0] ? f->fleet : "off");
    }
    if (f->fleet_refused > 0)
        printf(" (%.0f values refused)", f->fleet_refused);
    printf("\n");
}

static void
read_figures(char *text, struct figures *f)
{
    char *save = NULL, w[64];

    memset(f, 0, sizeof(*f));
    f->rows_age = -1;	/* a milter without the rows says nothing of them */
    for (char *l = strtok_r(text, "\n", &save); l != NULL; l = strtok_r(NULL, "\n", &save)) {
        const char *sp = strrchr(l, ' ');
        double v;
        int i;

        if (l[0] == '#' || sp == NULL)
            continue;
        v = strtod(sp + 1, NULL);
        if (is(l, "mtasts_build_info") && label(l, "version", w, sizeof(w)))
            snprintf(f->version, sizeof(f->version), "%s", w);
        else if (is(l, "mtasts_start_time_seconds"))
            f->start = (long long)v;
        else if (is(l, "mtasts_recipients_total")) {
            f->judged += v;
            if (label(l, "action", w, sizeof(w)) &&
                (i = word_index(action_w, 5, w)) >= 0)
                f->by_action[i] += v;
            if (label(l, "path", w, sizeof(w)) && (i = nametab_code(metrics_path_names, NAMETAB_EXACT, w)) >= 0)
                f->by_path[i] += v;
            if (label(l, "dry_run", w, sizeof(w)) && strcmp(w, "yes") == 0)
                f->dry_run += v;
        } else if (is(l, "mtasts_recipients_scope_total") && label(l, "scope", w, sizeof(w))) {
            if (strcmp(w, "unreadable") == 0)
                f->unreadable += v;
            else if (strcmp(w, "internal-error") == 0)
                f->internal += v;
            else if (strcmp(w, "in-scope") != 0)
                f->scope_out += v;
        } else if (is(l, "mtasts_rcpt_wait_seconds_sum"))
            f->wait_sum = v;
        else if (is(l, "mtasts_rcpt_wait_seconds_count"))
            f->wait_count = v;
        else if (is(l, "mtasts_policy_fetches_total") && label(l, "result", w, sizeof(w)))
            *(strcmp(w, "ok") == 0 ? &f->fetch_ok : &f->fetch_failed) += v;
        else if (is(l, "mtasts_probes_total"))
            f->probes += v;
        else if (is(l, "mtasts_map_requests_total")) {
            f->map_requests += v;
            if (label(l, "answer", w, sizeof(w)) && strcmp(w, "temp") == 0)
                f->map_temp += v;
        } else if (is(l, "mtasts_caps_hit_total"))
            f->caps += v;
        else if (is(l, "mtasts_cache_write_errors_total"))
            f->cache_errors = v;
        else if (is(l, "mtasts_reloads_total") && label(l, "result", w, sizeof(w)))
            *(strcmp(w, "applied") == 0 ? &f->reloads_ok : &f->reloads_refused) += v;
        else
            read_now(l, v, f);
    }
}

static void
print_text(const struct figures *f, const char *spec)
{
    long long up = (long long)time(NULL) - f->start;
    char since[32];

    ctl_fmt_time(f->start, since, sizeof(since));
    if (up < 0)
        up = 0;
    printf("mtasts-milter %s, running (metrics at %s)\n", f->version, spec);
    printf("up:                 %lldd %02lldh %02lldm %02llds (since %s)\n", up / 86400,
           up / 3600 % 24, up / 60 % 60, up % 60, since);
    printf("recipients judged:  %.0f (tag %.0f, defer %.0f, reject %.0f, hold %.0f)\n",
           f->judged, f->by_action[0], f->by_action[1], f->by_action[2], f->by_action[3]);
    if (f->dry_run > 0)
        printf("  dry run kept:     %.0f refusals not applied\n", f->dry_run);
    printf("  by path:          dane %.0f, mta-sts %.0f, verified-tls %.0f, tls %.0f, none "
           "%.0f, unknown %.0f\n", f->by_path[0], f->by_path[1], f->by_path[2], f->by_path[3],
           f->by_path[4], f->by_path[5]);
    printf("  not judged:       %.0f out of scope, %.0f unreadable, %.0f internal errors\n",
           f->scope_out, f->unreadable, f->internal);
    printf("last minute:        %.0f RCPTs; judged: tag %.0f, defer %.0f, reject %.0f, hold "
           "%.0f\n", f->rcpts_minute, f->minute_by_action[0], f->minute_by_action[1],
           f->minute_by_action[2], f->minute_by_action[3]);
    printf("last hour:          %.0f RCPTs; judged: tag %.0f, defer %.0f, reject %.0f, hold "
           "%.0f\n", f->rcpts_hour, f->hour_by_action[0], f->hour_by_action[1],
           f->hour_by_action[2], f->hour_by_action[3]);
    printf("queues:             lookups %.0f waited (oldest %.1f s), %.0f abandoned, %.0f "
           "refresh; probes %.0f first (oldest %.1f s), %.0f refresh\n", f->queue_depth[0],
           f->queue_wait[0], f->queue_depth[1], f->queue_depth[2], f->queue_depth[3],
           f->queue_wait[3], f->queue_depth[4]);
    printf("resolver:           %s", f->resolver[0] ? f->resolver : "unknown");
    if (f->resolver_failed_run > 0)
        printf(" (%.0f lookups failed in a row)", f->resolver_failed_run);
    printf("\n");
    printf("slowest lookup:     %.3f s in the last hour\n", f->slowest_lookup);
    printf("cache rows:        ");
    for (size_t i = 0, shown = 0; i < 5; i++)
        if (f->have_rows[i])
            printf("%s %s %.0f", shown++ ? "," : "", table_w[i], f->rows[i]);
    printf(f->rows_age >= 0 ? " (counted %.0f s ago)\n" : " not read yet\n", f->rows_age);
    printf("memory:             %.0f domains; %.0f hits, %.0f misses\n", f->memory_entries,
           f->memory_hits, f->memory_misses);
    printf("§5 re-checks:       %.0f new policy, %.0f same policy, %.0f incomplete, %.0f no "
           "time\n", f->rechecks[0], f->rechecks[1], f->rechecks[2], f->rechecks[3]);
    printf("RCPT wait:          %.1f ms on average over %.0f RCPTs\n",
           f->wait_count > 0 ? f->wait_sum * 1000 / f->wait_count : 0.0, f->wait_count);
    printf("policy fetches:     %.0f ok, %.0f failed\n", f->fetch_ok, f->fetch_failed);
    printf("MX probes:          %.0f\n", f->probes);
    printf("policy map:         %.0f requests (%.0f TEMP), %.0f clients refused\n",
           f->map_requests, f->map_temp, f->map_refused);
    printf("caps hit:           %.0f\n", f->caps);
    printf("cache write errors: %.0f; corrupt files healed: %.0f\n", f->cache_errors,
           f->healed);
    printf("reloads:            %.0f applied, %.0f refused\n", f->reloads_ok, f->reloads_refused);
    print_fleet(f);
}

/* A json object of n counts named by w. */
static json_t *
json_counts(const char *const *w, const double *v, size_t n)
{
    json_t *o = json_object();

    for (size_t i = 0; i < n; i++)
        json_object_set_new(o, w[i], json_integer((json_int_t)v[i]));
    return o;
}

/* The present's figures into o (mtasts-ctl(1), status --json). */
static void
json_now(json_t *o, const struct figures *f)
{
    json_t *q = json_object(), *rows = json_object();

    json_object_set_new(o, "last_minute", json_pack("{s:I, s:o}", "rcpts",
        (json_int_t)f->rcpts_minute, "by_action", json_counts(action_w, f->minute_by_action, 4)));
    json_object_set_new(o, "last_hour", json_pack("{s:I, s:o}", "rcpts",
        (json_int_t)f->rcpts_hour, "by_action", json_counts(action_w, f->hour_by_action, 4)));
    for (size_t i = 0; i < 5; i++)
        json_object_set_new(q, queue_w[i], json_pack("{s:I, s:f}", "depth",
            (json_int_t)f->queue_depth[i], "oldest_wait_seconds", f->queue_wait[i]));
    json_object_set_new(o, "queues", q);
    json_object_set_new(o, "resolver", json_pack("{s:s, s:I}", "state",
        f->resolver[0] ? f->resolver : "unknown", "failed_in_a_row",
        (json_int_t)f->resolver_failed_run));
    json_object_set_new(o, "slowest_lookup_seconds", json_real(f->slowest_lookup));
    for (size_t i = 0; i < 5; i++)
        if (f->have_rows[i])
            json_object_set_new(rows, table_w[i], json_integer((json_int_t)f->rows[i]));
    json_object_set_new(o, "cache", json_pack("{s:o, s:f, s:I, s:I, s:I, s:I}", "rows", rows,
        "rows_age_seconds", f->rows_age, "memory_entries", (json_int_t)f->memory_entries,
        "memory_hits", (json_int_t)f->memory_hits, "memory_misses",
        (json_int_t)f->memory_misses, "healed", (json_int_t)f->healed));
    json_object_set_new(o, "rechecks", json_counts(recheck_w, f->rechecks, 4));
    json_object_set_new(o, "map_clients_refused", json_integer((json_int_t)f->map_refused));
    json_object_set_new(o, "fleet", json_pack("{s:s, s:I, s:I, s:I}", "state",
        f->fleet[0] ? f->fleet : "off", "down_since", (json_int_t)f->fleet_since,
        "retry_in_seconds", (json_int_t)fleet_retry_in(f), "values_refused",
        (json_int_t)f->fleet_refused));
}

static void
print_json(const struct figures *f, const char *spec)
{
    json_t *o = json_object(), *act = json_object(), *path = json_object();

    for (size_t i = 0; i < 4; i++)
        json_object_set_new(act, action_w[i], json_integer((json_int_t)f->by_action[i]));
    for (int i = 0; i < METRICS_NPATHS; i++)
        json_object_set_new(path, nametab_name(metrics_path_names, i),
                            json_integer((json_int_t)f->by_path[i]));
    json_object_set_new(o, "running", json_true());
    json_object_set_new(o, "metrics_socket", json_string(spec));
    json_object_set_new(o, "version", json_string(f->version));
    json_object_set_new(o, "start_time", json_integer(f->start));
    json_object_set_new(o, "uptime_seconds", json_integer((json_int_t)time(NULL) - f->start));
    json_object_set_new(o, "recipients", json_pack("{s:I, s:o, s:o, s:I, s:I, s:I, s:I}",
        "judged", (json_int_t)f->judged, "by_action", act, "by_path", path,
        "dry_run", (json_int_t)f->dry_run, "out_of_scope", (json_int_t)f->scope_out,
        "unreadable", (json_int_t)f->unreadable, "internal_error", (json_int_t)f->internal));
    json_object_set_new(o, "rcpt_wait", json_pack("{s:I, s:f}", "count",
        (json_int_t)f->wait_count, "mean_ms",
        f->wait_count > 0 ? f->wait_sum * 1000 / f->wait_count : 0.0));
    json_object_set_new(o, "policy_fetches", json_pack("{s:I, s:I}", "ok",
        (json_int_t)f->fetch_ok, "failed", (json_int_t)f->fetch_failed));
    json_object_set_new(o, "probes", json_integer((json_int_t)f->probes));
    json_object_set_new(o, "map", json_pack("{s:I, s:I}", "requests",
        (json_int_t)f->map_requests, "temp", (json_int_t)f->map_temp));
    json_object_set_new(o, "caps_hit", json_integer((json_int_t)f->caps));
    json_object_set_new(o, "cache_write_errors", json_integer((json_int_t)f->cache_errors));
    json_object_set_new(o, "reloads", json_pack("{s:I, s:I}", "applied",
        (json_int_t)f->reloads_ok, "refused", (json_int_t)f->reloads_refused));
    json_now(o, f);
    ctl_print_json(o);
    json_decref(o);
}

static void
status_usage(FILE *to)
{
    fprintf(to, "usage: mtasts-ctl [-c CONFIG] status [--json]\n"
                "  what the running milter is doing, from its metrics endpoint (metrics_socket)\n");
}

int
ctl_status(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct config *cfg;
    struct page pg = {NULL, 0, false};
    struct figures f;
    char url[600], cerr[CURL_ERROR_SIZE] = "";
    const char *unix_path;
    bool json = false;
    long code = 0;
    CURL *h;
    CURLcode rc;
    int c;

    optind = 1;
    while ((c = getopt_long(argc, argv, "jh", longopts, NULL)) != -1) {
        switch (c) {
        case 'j':
            json = true;
            break;
        case 'h':
            status_usage(stdout);
            return CTL_EXIT_OK;
        default:
            status_usage(stderr);
            return CTL_EXIT_USAGE;
        }
    }
    if (optind != argc) {
        status_usage(stderr);
        return CTL_EXIT_USAGE;
    }
    if ((cfg = ctl_config()) == NULL)
        return CTL_EXIT_USAGE;
    if (cfg->metrics_socket[0] == '\0') {
        fprintf(stderr, "mtasts-ctl: status asks the milter through its metrics endpoint, and "
                "metrics_socket is not set in %s\n", ctl_config_path() ? ctl_config_path() :
                "the configuration");
        return CTL_EXIT_USAGE;
    }
    if (endpoint(cfg->metrics_socket, url, sizeof(url), &unix_path) != 0) {
        fprintf(stderr, "mtasts-ctl: metrics_socket \"%s\": expected inet:PORT@HOST, "
                "inet6:PORT@HOST or unix:PATH\n", cfg->metrics_socket);
        return CTL_EXIT_USAGE;
    }
    if ((h = curl_easy_init()) == NULL) {
        fprintf(stderr, "mtasts-ctl: out of memory\n");
        return CTL_EXIT_USAGE;
    }
    curl_easy_setopt(h, CURLOPT_URL, url);
    if (unix_path != NULL)
        curl_easy_setopt(h, CURLOPT_UNIX_SOCKET_PATH, unix_path);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)STATUS_TIMEOUT_MS);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_PROXY, "");
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, cerr);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &pg);
    rc = curl_easy_perform(h);
    (void)curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
    curl_easy_cleanup(h);
    if (rc != CURLE_OK || code != 200 || pg.buf == NULL) {
        const char *why = pg.too_big ? "the page is too big" : cerr[0] ? cerr :
                          rc != CURLE_OK ? curl_easy_strerror(rc) : "not a metrics page";

        if (json) {
            json_t *o = json_pack("{s:b, s:s, s:s}", "running", 0, "metrics_socket",
                                  cfg->metrics_socket, "error", why);

            ctl_print_json(o);
            json_decref(o);
        } else {
            printf("mtasts-milter is not running, or not answering at %s (%s)\n",
                   cfg->metrics_socket, code != 0 && code != 200 ? "HTTP error" : why);
        }
        free(pg.buf);
        return CTL_EXIT_UNKNOWN;
    }
    read_figures(pg.buf, &f);
    free(pg.buf);
    if (json)
        print_json(&f, cfg->metrics_socket);
    else
        print_text(&f, cfg->metrics_socket);
    return CTL_EXIT_OK;
}
