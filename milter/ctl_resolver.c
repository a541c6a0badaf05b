/*
 * ctl_resolver - the resolver's part in an answer mtasts-ctl could not
 * learn: one diagnosis (a resolver that strips DNSSEC, a forwarder
 * libunbound backed off although it answers) for every command that shows
 * DNS results, so `lookup` and `check` say the same thing in the same
 * words. See ctl.h.
 */
#include "ctl.h"

#include <stdio.h>

#include "discover.h"
#include "dns.h"

void
ctl_resolver_diagnose(struct discover *d, bool unknown, struct ctl_resolver_notes *out)
{
    struct dns_health health;

    out->problem[0] = out->health[0] = '\0';
    /* Only an unknown answer can be the resolver's fault; asking the trust
     * anchor's DNSKEY set costs a round trip, so only then. */
    if (unknown && !discover_check_resolver(d, out->problem, sizeof(out->problem)))
        out->problem[0] = '\0';
    discover_resolver_health(d, &health);
    dns_health_text(&health, out->health, sizeof(out->health));
}

void
ctl_resolver_json(json_t *o, const struct ctl_resolver_notes *n)
{
    json_object_set_new(o, "resolver_problem", ctl_json_text(n->problem));
    json_object_set_new(o, "resolver_health", ctl_json_text(n->health));
}

void
ctl_resolver_print(const struct ctl_resolver_notes *n)
{
    if (n->problem[0] != '\0')
        printf("resolver: %s\n", n->problem);
    if (n->health[0] != '\0')
        printf("resolver: %s\n", n->health);
}
