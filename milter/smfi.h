/*
 * smfi - every libmilter call the filter makes goes through this table, so
 * that unit tests can drive the callbacks in-process with recording fakes
 * (the OpenDKIM dkimf_* wrapper habit).
 */
#ifndef MTS_SMFI_H
#define MTS_SMFI_H

#include <libmilter/mfapi.h>

struct smfi_ops {
    char *(*getsymval)(SMFICTX *ctx, char *name);
    int (*setreply)(SMFICTX *ctx, char *rcode, char *xcode, char *text);
    int (*insheader)(SMFICTX *ctx, int index, char *name, char *value);
    int (*chgheader)(SMFICTX *ctx, char *name, int index, char *value);
    int (*quarantine)(SMFICTX *ctx, char *reason);
    int (*setsymlist)(SMFICTX *ctx, int stage, char *macros);
    void *(*getpriv)(SMFICTX *ctx);
    int (*setpriv)(SMFICTX *ctx, void *priv);
};

/* The calls in use; starts as libmilter's own. Tests may overwrite it. */
extern struct smfi_ops smfi;

#endif
