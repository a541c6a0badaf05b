/*
 * domain - domain name normalisation; see domain.h.
 */
#include "domain.h"

#include <string.h>

#include <idn2.h>

int
domain_normalize(const char *in, char *out, size_t outsz, struct mts_err *err)
{
    char *ascii = NULL;
    int rc;

    if (in == NULL || *in == '\0') {
        mts_err_set(err, "empty domain");
        return -1;
    }
    /* Pure ASCII skips IDNA, which would refuse names it need not judge. */
    for (const char *p = in; *p; p++) {
        if ((unsigned char)*p >= 0x80)
            goto idn;
    }
    return mxmatch_domain_normalize(in, strlen(in), out, outsz, err);
idn:
    rc = idn2_to_ascii_8z(in, &ascii, IDN2_NFC_INPUT | IDN2_NONTRANSITIONAL);
    if (rc != IDN2_OK) {
        mts_err_set(err, "domain is not a valid internationalized name: %s",
                    idn2_strerror(rc));
        return -1;
    }
    rc = mxmatch_domain_normalize(ascii, strlen(ascii), out, outsz, err);
    idn2_free(ascii);
    return rc;
}
