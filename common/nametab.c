/*
 * nametab - enum codes <-> words; see nametab.h.
 */
#include "nametab.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

int
nametab_coden(const struct nametab *t, int flags, const char *name, size_t len)
{
    for (; t->name != NULL; t++) {
        if (strlen(t->name) != len)
            continue;
        if ((flags & NAMETAB_IGNORE_CASE) ? strncasecmp(t->name, name, len) == 0 :
                                            memcmp(t->name, name, len) == 0)
            return t->code;
    }
    return t->code;
}

int
nametab_code(const struct nametab *t, int flags, const char *name)
{
    return nametab_coden(t, flags, name, strlen(name));
}

const char *
nametab_name(const struct nametab *t, int code)
{
    for (; t->name != NULL; t++)
        if (t->code == code)
            return t->name;
    return "?";
}

const char *
nametab_list(const struct nametab *t, char *out, size_t outsz)
{
    size_t used = 0, n = 0;

    if (outsz == 0)
        return out;
    out[0] = '\0';
    while (t[n].name != NULL)
        n++;
    for (size_t i = 0; i < n; i++) {
        const char *sep = i == 0 ? "" : i + 1 == n ? " or " : ", ";
        int w = snprintf(out + used, outsz - used, "%s%s", sep, t[i].name);

        if (w < 0 || (size_t)w >= outsz - used)
            break;
        used += (size_t)w;
    }
    return out;
}
