/*
 * fuzz_mxmatch - libFuzzer target for §4.1 pattern checks and matching.
 * The input is split at the first NUL into a pattern and a host name.
 *
 * Checks: a valid pattern without wildcard matches itself in upper case and
 * with a trailing dot; a wildcard never matches the bare parent name; a
 * normalised host is lower-case and fits its buffer.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mxmatch.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nul = memchr(data, 0, size);
    size_t plen = nul ? (size_t)(nul - data) : size;
    char pat[MXMATCH_NAME_MAX + 2], host[MXMATCH_NAME_MAX + 2], norm[MXMATCH_NAME_MAX + 1];
    struct mts_err err;

    if (mxmatch_pattern_check((const char *)data, plen, &err) == 0) {
        if (plen > MXMATCH_NAME_MAX)
            abort();
        memcpy(pat, data, plen);
        pat[plen] = '\0';
        if (pat[0] != '*') {
            for (size_t i = 0; i < plen; i++)
                host[i] = (pat[i] >= 'a' && pat[i] <= 'z') ? (char)(pat[i] - 32) : pat[i];
            host[plen] = '.';
            host[plen + 1] = '\0';
            if (!mxmatch_match(pat, host))
                abort();
        } else if (mxmatch_match(pat, pat + 2)) {
            abort();
        }
        if (nul != NULL) {
            size_t hlen = size - plen - 1;
            char *h = malloc(hlen + 1);
            if (h == NULL)
                return 0;
            memcpy(h, nul + 1, hlen);
            h[hlen] = '\0';
            (void)mxmatch_match(pat, h);
            free(h);
        }
    }
    if (mxmatch_host_normalize((const char *)data, plen, norm, sizeof(norm), &err) == 0) {
        for (const char *c = norm; *c; c++)
            if (*c >= 'A' && *c <= 'Z')
                abort();
    }
    return 0;
}
