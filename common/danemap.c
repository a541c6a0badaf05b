/*
 * danemap - when the policy map answers "dane-only"; see danemap.h.
 */
#include "danemap.h"

#include <string.h>

#include "tlsa.h"

/* allowed: -1 not known yet, else whether mx matches the policy. */
static bool
host_rule(const struct status_result *st, const char *mx, int allowed,
          const struct probes_host *probe)
{
    /* A null MX takes no mail: nothing for DANE to authenticate. */
    if (strcmp(mx, ".") == 0)
        return false;
    /* Every host must match: Postfix's dane-only would use any of them. */
    if (st->status == STATUS_ENFORCE &&
        !(allowed >= 0 ? allowed == 1 : status_result_mx_allows(st, mx)))
        return false;
    return probe == NULL || (probe->state == PROBES_KNOWN && tlsa_dane_applies(probe->dane));
}

bool
danemap_host(const struct status_result *st, const char *mx, const struct probes_host *probe)
{
    return host_rule(st, mx, -1, probe);
}

bool
danemap_only(const struct status_result *st, bool mx_secure, const char *const *mx,
             size_t n_mx, const struct probes_host *probe, const bool *mx_allowed)
{
    if (!mx_secure || n_mx == 0 || st->status == STATUS_UNKNOWN)
        return false;
    for (size_t i = 0; i < n_mx; i++)
        if (!host_rule(st, mx[i], mx_allowed != NULL ? mx_allowed[i] : -1, &probe[i]))
            return false;
    return true;
}
