/*
 * status - a domain's MTA-STS status and its words; see status.h.
 */
#include "status.h"

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
