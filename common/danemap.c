/*
 * danemap - when the policy map answers "dane-only"; see danemap.h.
 */
#include "danemap.h"

#include <string.h>

#include "tlsa.h"

bool
danemap_host(const struct status_result *st, const char *mx, const struct probes_host *probe)
{
    /* A null MX takes no mail: nothing for DANE to authenticate. */
    if (strcmp(mx, ".") == 0)
        return false;
    /* Every host must match: Postfix's dane-only would use any of them. */
    if (st->status == STATUS_ENFORCE && !status_result_mx_allows(st, mx))
        return false;
    return probe == NULL || (probe->state == PROBES_KNOWN && tlsa_dane_applies(probe->dane));
}

bool
danemap_only(const struct status_result *st, bool mx_secure, const char *const *mx,
             size_t n_mx, const struct probes_host *probe)
{
    if (!mx_secure || n_mx == 0 || st->status == STATUS_UNKNOWN)
        return false;
    for (size_t i = 0; i < n_mx; i++)
        if (!danemap_host(st, mx[i], &probe[i]))
            return false;
    return true;
}
