/*
 * fuzz_txt - libFuzzer target for the §3.1 TXT parsers: the input is used
 * both as TXT RDATA (length-prefixed strings) and as a list of records
 * separated by NUL bytes.
 *
 * Checks: an accepted record has an id of 1..32 letters and digits; a
 * rejection carries a reason; rdata concatenation never exceeds its buffer.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_id(const struct policy_txt *t)
{
    size_t n = strlen(t->id);

    if (n == 0 || n > POLICY_ID_MAX)
        abort();
    for (size_t i = 0; i < n; i++) {
        char c = t->id[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')))
            abort();
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *rec = malloc(POLICY_TXT_MAX_BYTES + 1);
    struct policy_txt_input recs[8];
    struct policy_txt t;
    struct mts_err err;
    size_t n = 0, start = 0, len = 0;

    if (rec == NULL)
        return 0;
    err.msg[0] = '\0';
    if (policy_txt_from_rdata(data, size, rec, POLICY_TXT_MAX_BYTES + 1, &len, &err) == 0) {
        if (len > POLICY_TXT_MAX_BYTES || rec[len] != '\0')
            abort();
        if (policy_txt_parse(rec, len, &t, &err) == 0)
            check_id(&t);
        else if (err.msg[0] == '\0')
            abort();
    } else if (err.msg[0] == '\0') {
        abort();
    }
    free(rec);

    for (size_t i = 0; i <= size && n < 8; i++) {
        if (i == size || data[i] == 0) {
            recs[n].data = (const char *)data + start;
            recs[n].len = i - start;
            n++;
            start = i + 1;
        }
    }
    err.msg[0] = '\0';
    if (policy_txt_select(recs, n, &t, &err) == POLICY_TXT_OK)
        check_id(&t);
    else if (err.msg[0] == '\0')
        abort();
    return 0;
}
