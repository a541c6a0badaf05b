/*
 * filter - the milter's callbacks (libmilter smfiDesc). The callbacks take
 * their configuration from runtime_current() at connect time.
 */
#ifndef MTS_FILTER_H
#define MTS_FILTER_H

#include <libmilter/mfapi.h>

extern struct smfiDesc filter_desc;

#endif
