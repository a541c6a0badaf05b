/*
 * metricsd - the metrics endpoint over libmicrohttpd; see metricsd.h.
 */
#include "metricsd.h"

#include <microhttpd.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "mapsock.h"
#include "metrics.h"
#include "netacl.h"

struct metricsd {
    struct mapsock ls;		/* ls.fd is libmicrohttpd's once started */
    struct MHD_Daemon *d;
    char *spec;			/* for the log */
};

static const char CONTENT_TYPE[] = "text/plain; version=0.0.4; charset=utf-8";

/* A fixed body (never freed by libmicrohttpd) with the status given. */
static enum MHD_Result
answer_fixed(struct MHD_Connection *conn, unsigned status, const char *body, bool allow)
{
    struct MHD_Response *r;
    enum MHD_Result ret;

    r = MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_PERSISTENT);
    if (r == NULL)
        return MHD_NO;
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain; charset=utf-8");
    if (allow)
        MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
    ret = MHD_queue_response(conn, status, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result
on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
           const char *version, const char *upload_data, size_t *upload_data_size, void **state)
{
    struct MHD_Response *r;
    enum MHD_Result ret;
    char *text;
    size_t len;

    (void)cls;
    (void)version;
    (void)upload_data;
    /* Whatever a client uploads is not read: the answer goes at once. */
    *upload_data_size = 0;
    *state = NULL;
    if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
        return answer_fixed(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed\n", true);
    if (strcmp(url, "/metrics") != 0)
        return answer_fixed(conn, MHD_HTTP_NOT_FOUND, "not found; the metrics are at /metrics\n",
                            false);
    if (metrics_render(&text, &len) != 0)
        return answer_fixed(conn, MHD_HTTP_SERVICE_UNAVAILABLE, "out of memory\n", false);
    r = MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE);
    if (r == NULL) {
        free(text);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, CONTENT_TYPE);
    ret = MHD_queue_response(conn, MHD_HTTP_OK, r);
    MHD_destroy_response(r);
    return ret;
}

int
metricsd_open(const char *spec, const struct config_list *allow, uid_t uid, gid_t gid,
              struct metricsd **out, struct mts_err *err)
{
    struct metricsd *md = calloc(1, sizeof(*md));
    struct mts_err why;

    *out = NULL;
    /* mapsock's own message names map_socket: say which option is wrong. */
    if (strncmp(spec, "inet:", 5) != 0 && strncmp(spec, "inet6:", 6) != 0 &&
        strncmp(spec, "unix:", 5) != 0 && strncmp(spec, "local:", 6) != 0) {
        mts_err_set(err, "metrics_socket \"%s\": expected inet:PORT@HOST, inet6:PORT@HOST or "
                    "unix:PATH", spec);
        free(md);
        return -1;
    }
    if (md == NULL) {
        mts_err_set(err, "out of memory");
        return -1;
    }
    md->ls.fd = -1;
    if ((md->spec = strdup(spec)) == NULL) {
        mts_err_set(err, "out of memory");
        free(md);
        return -1;
    }
    if (mapsock_open(spec, uid, gid, &md->ls, &why) != 0 ||
        netacl_restrict(md->ls.fd, allow, "the metrics endpoint", "metrics_allow_clients", &why) != 0) {
        mts_err_set(err, "metrics_socket %s: %s", spec, why.msg);
        metricsd_close(md);
        return -1;
    }
    *out = md;
    return 0;
}

int
metricsd_start(struct metricsd *md, struct mts_err *err)
{
    md->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL, 0, NULL, NULL,
                             on_request, NULL,
                             MHD_OPTION_LISTEN_SOCKET, (MHD_socket)md->ls.fd,
                             MHD_OPTION_CONNECTION_LIMIT, (unsigned)METRICSD_MAX_CLIENTS,
                             MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)METRICSD_MAX_PER_IP,
                             MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)METRICSD_TIMEOUT_S,
                             MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)METRICSD_MEMORY,
                             MHD_OPTION_END);
    if (md->d == NULL) {
        mts_err_set(err, "libmicrohttpd cannot serve %s", md->spec);
        return -1;
    }
    log_msg(LOG_NOTICE, "metrics endpoint (HTTP, GET /metrics) listening on %s", md->spec);
    return 0;
}

void
metricsd_close(struct metricsd *md)
{
    if (md == NULL)
        return;
    if (md->d != NULL) {
        /* libmicrohttpd closes the listening socket it was given. */
        MHD_stop_daemon(md->d);
        md->ls.fd = -1;
    }
    mapsock_close(&md->ls);
    free(md->spec);
    free(md);
}
