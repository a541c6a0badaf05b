/*
 * fuzz_policy - libFuzzer target for policy_parse (RFC 8461 §3.2).
 *
 * Beyond "no crash", checks the parser's promises: a policy it accepts has
 * a mode, max_age within the limit, valid mx patterns and, unless mode is
 * none, at least one of them; a rejection always carries a reason.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mxmatch.h"
#include "policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct policy p;
    struct mts_err err;

    err.msg[0] = '\0';
    if (policy_parse((const char *)data, size, &p, &err) != 0) {
        if (err.msg[0] == '\0')
            abort();
        return 0;
    }
    if (p.max_age > POLICY_MAX_AGE_LIMIT)
        abort();
    if (p.mode != POLICY_MODE_NONE && p.n_mx == 0)
        abort();
    for (size_t i = 0; i < p.n_mx; i++) {
        if (mxmatch_pattern_check(p.mx[i], strlen(p.mx[i]), &err) != 0)
            abort();
        /* A pattern without wildcard must match itself. */
        if (p.mx[i][0] != '*' && !policy_mx_allows(&p, p.mx[i]))
            abort();
    }
    policy_free(&p);
    return 0;
}
