/*
 * probeconf - the probe options of a configuration; see probeconf.h.
 */
#include "probeconf.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "mxmatch.h"

/* Our own name when it is a fully qualified one (RFC 5321 §4.1.4). */
static void
ehlo_name(char *buf, size_t bufsz)
{
    char scratch[MXMATCH_NAME_MAX + 1];

    if (gethostname(buf, bufsz) == 0 && memchr(buf, '\0', bufsz) != NULL &&
        strchr(buf, '.') != NULL &&
        mxmatch_host_normalize(buf, strlen(buf), scratch, sizeof(scratch), NULL) == 0)
        return;
    snprintf(buf, bufsz, "localhost");
}

int
probeconf_init(struct probeconf *pc, const struct config *cfg, struct mts_err *err)
{
    memset(pc, 0, sizeof(*pc));
    ehlo_name(pc->ehlo, sizeof(pc->ehlo));
    pc->tls.ca_file = cfg->probe_ca_file[0] != '\0' ? cfg->probe_ca_file : cfg->ca_file;
    pc->tls.ehlo_name = pc->ehlo;
    pc->port = (int)cfg->probe_port;
    pc->timeout_ms = (int)cfg->probe_timeout_ms;
    pc->dns_timeout_ms = (int)cfg->dns_timeout_ms;
    pc->ttl = cfg->probe_ttl;
    pc->failure_ttl = cfg->probe_failure_ttl;
    pc->never = &cfg->probe_never;
    if (addrscope_nets_parse(&cfg->probe_allow_networks, &pc->allow, err) != 0) {
        char msg[sizeof(err->msg)];
        snprintf(msg, sizeof(msg), "%s", err->msg);
        mts_err_set(err, "probe_allow_networks: %s", msg);
        return -1;
    }
    return 0;
}

bool
probeconf_may_connect(const struct probeconf *pc, const char *address, char *why, size_t whysz)
{
    const char *range = addrscope_special(address);

    if (range == NULL || addrscope_nets_contain(&pc->allow, address))
        return true;
    if (why != NULL)
        mts_text_set(why, whysz, "%s is %s, not in probe_allow_networks", address, range);
    return false;
}

size_t
probeconf_allowed_rows(const struct probeconf *pc, struct probecache_row *rows, size_t n)
{
    size_t k = 0;

    for (size_t i = 0; i < n; i++)
        if (probeconf_may_connect(pc, rows[i].address, NULL, 0)) {
            if (k != i)
                rows[k] = rows[i];
            k++;
        }
    return k;
}

int
probeconf_routable_only(const struct probeconf *pc, const char *host,
                        char addrs[][PROBECACHE_ADDRESS_MAX], int n, char *why, size_t whysz)
{
    int k = 0;
    char one[PROBECACHE_REASON_MAX];

    why[0] = '\0';
    for (int i = 0; i < n; i++) {
        if (probeconf_may_connect(pc, addrs[i], one, sizeof(one))) {
            if (k != i)
                memcpy(addrs[k], addrs[i], PROBECACHE_ADDRESS_MAX);
            k++;
            continue;
        }
        log_msg(LOG_INFO, "probe %s[%s]: not probed: %s", host, addrs[i], one);
        if (why[0] == '\0')
            mts_text_set(why, whysz, "%s", one);
    }
    return k;
}
