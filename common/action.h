/*
 * action - what a verdict does to one recipient, and its words. It lives
 * below config and verdict because both need it: config parses
 * on_internal_error and the rules' fail= / unknown= into it once, at load.
 */
#ifndef MTS_ACTION_H
#define MTS_ACTION_H

#include "nametab.h"

enum verdict_action {
    VERDICT_TAG,		/* accept, and tag the message */
    VERDICT_DEFER,		/* 4xx for this recipient */
    VERDICT_REJECT		/* 5xx for this recipient */
};

/* tag, defer, reject; an unknown word gives -1. */
extern const struct nametab verdict_action_names[];

#endif
