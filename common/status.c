/*
 * status - a domain's MTA-STS status and its words; see status.h.
 */
#include "status.h"

#include "mxmatch.h"

const struct nametab discover_status_names[] = {
    {"enforce", DISCOVER_ENFORCE}, {"testing", DISCOVER_TESTING}, {"none", DISCOVER_NONE},
    {"absent", DISCOVER_ABSENT},   {"failed", DISCOVER_FAILED},   {"unknown", DISCOVER_UNKNOWN},
    {NULL, -1},
};

enum discover_status
discover_status_of_mode(enum policy_mode m)
{
    return m == POLICY_MODE_ENFORCE ? DISCOVER_ENFORCE :
           m == POLICY_MODE_TESTING ? DISCOVER_TESTING : DISCOVER_NONE;
}

const char *
discover_status_name(enum discover_status s)
{
    return nametab_name(discover_status_names,
                        (unsigned)s <= DISCOVER_UNKNOWN ? (int)s : DISCOVER_UNKNOWN);
}

void
discover_result_free(struct discover_result *res)
{
    mxmatch_list_free(res->mx, res->n_mx);
    res->mx = NULL;
    res->n_mx = 0;
}

void
discover_result_copy(struct discover_result *dst, const struct discover_result *src)
{
    *dst = *src;
    dst->mx = src->mx ? mxmatch_list_dup(src->mx, src->n_mx) : NULL;
    dst->n_mx = dst->mx ? src->n_mx : 0;
}

bool
discover_result_mx_allows(const struct discover_result *res, const char *host)
{
    return mxmatch_any(res->mx, res->n_mx, host);
}
