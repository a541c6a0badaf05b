/*
 * action - the words of enum verdict_action; see action.h.
 */
#include "action.h"

const struct nametab verdict_action_names[] = {
    {"tag", VERDICT_TAG},
    {"defer", VERDICT_DEFER},
    {"reject", VERDICT_REJECT},
    {NULL, -1},
};
