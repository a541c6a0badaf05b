/*
 * status - a domain's MTA-STS status and its words; see status.h.
 */
#include "status.h"

#include "mxmatch.h"

const struct nametab status_kind_names[] = {
    {"enforce", STATUS_ENFORCE}, {"testing", STATUS_TESTING}, {"none", STATUS_NONE},
    {"absent", STATUS_ABSENT},   {"failed", STATUS_FAILED},   {"unknown", STATUS_UNKNOWN},
    {NULL, -1},
};

enum status_kind
status_kind_of_mode(enum policy_mode m)
{
    return m == POLICY_MODE_ENFORCE ? STATUS_ENFORCE :
           m == POLICY_MODE_TESTING ? STATUS_TESTING : STATUS_NONE;
}

const char *
status_kind_name(enum status_kind s)
{
    return nametab_name(status_kind_names,
                        (unsigned)s <= STATUS_UNKNOWN ? (int)s : STATUS_UNKNOWN);
}

void
status_result_free(struct status_result *res)
{
    mxmatch_list_free(res->mx, res->n_mx);
    res->mx = NULL;
    res->n_mx = 0;
}

void
status_result_copy(struct status_result *dst, const struct status_result *src)
{
    *dst = *src;
    dst->mx = src->mx ? mxmatch_list_dup(src->mx, src->n_mx) : NULL;
    dst->n_mx = dst->mx ? src->n_mx : 0;
}

bool
status_result_mx_allows(const struct status_result *res, const char *host)
{
    return mxmatch_any(res->mx, res->n_mx, host);
}
