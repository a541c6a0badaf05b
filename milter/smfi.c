/*
 * smfi - the libmilter call table; see smfi.h.
 */
#include "smfi.h"

struct smfi_ops smfi = {
    smfi_getsymval, smfi_setreply, smfi_insheader, smfi_chgheader,
    smfi_quarantine, smfi_setsymlist, smfi_getpriv, smfi_setpriv,
};
