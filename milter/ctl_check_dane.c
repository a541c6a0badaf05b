/*
 * ctl_check_dane - DANE (RFC 7672) in mtasts-ctl check: each MX host's
 * TLSA records with their DNSSEC state, the DANE outcome of its probes,
 * and the sender's action and grade for a domain whose hosts have DANE
 * but no MTA-STS enforce policy. See ctl_check.h.
 */
#include "ctl_check.h"

#include <stdio.h>
#include <string.h>

#include "ctl.h"

void
check_dane_lookup(struct check *c, struct dns *d, const struct timespec *deadline)
{
    for (size_t i = 0; i < c->n_hosts; i++) {
        struct check_host *h = &c->hosts[i];

        if (h->n_addrs > 0)
            tlsa_lookup(d, h->name, c->port, deadline, &h->tlsa);
        else
            h->tlsa.state = TLSA_INSECURE; /* no address: nothing to look for */
    }
}

/*
 * The lookup decides none / unusable / lookup-failed; with usable records
 * every address judged must verify (a sender may reach any of them), and
 * one at least must have been reached.
 */
void
check_dane_host(const struct check *c, struct check_host *h)
{
    bool judged = false;

    /* WebPKI's view, whatever DANE says (the probe row's pkix): shown beside it. */
    h->pkix = -1;
    for (size_t k = h->first; k < h->first + h->n_probes; k++)
        if (c->probes[k].g.grade != TLSPROBE_GRADE_UNKNOWN)
            h->pkix = (h->pkix != 0 && c->probes[k].g.pkix) ? 1 : 0;
    h->dane = TLSA_DANE_NONE;
    if (h->tlsa.state == TLSA_FAILED) {
        h->dane = TLSA_DANE_LOOKUP_FAILED;
        return;
    }
    if (h->tlsa.state != TLSA_SECURE)
        return;
    if (h->tlsa.n_usable == 0) {
        h->dane = TLSA_DANE_UNUSABLE;
        return;
    }
    h->dane = TLSA_DANE_VERIFIED;
    for (size_t k = h->first; k < h->first + h->n_probes; k++) {
        const struct check_probe *p = &c->probes[k];

        if (p->g.grade == TLSPROBE_GRADE_UNKNOWN)
            continue;
        judged = true;
        if (!p->r.dane_active || p->r.dane != TLSA_DANE_VERIFIED)
            h->dane = TLSA_DANE_FAILED;
    }
    if (!judged)
        h->dane = TLSA_DANE_FAILED;
}

static bool
authenticated(const struct check_host *h)
{
    return (h->grade == TLSPROBE_GRADE_GOOD || h->grade == TLSPROBE_GRADE_WEAK) &&
           h->dane != TLSA_DANE_LOOKUP_FAILED;
}

/* The milter's rule (verdict.h, DANE): one host authenticated, by DANE
 * where it has TLSA records, by WebPKI where it has none. */
bool
check_dane_judge(struct check *c)
{
    const struct check_host *bad = NULL, *pass = NULL;
    bool dane = false;

    for (size_t i = 0; i < c->n_hosts; i++)
        dane = dane || tlsa_dane_applies(c->hosts[i].dane);
    if (!dane)
        return false;
    for (size_t i = 0; i < c->n_hosts; i++) {
        const struct check_host *h = &c->hosts[i];

        if (authenticated(h)) {
            if (pass == NULL || h->grade > pass->grade)
                pass = h;
        } else if (bad == NULL || (tlsa_dane_applies(h->dane) && !tlsa_dane_applies(bad->dane))) {
            bad = h;
        }
    }
    if (pass != NULL) {
        c->action = ACTION_DELIVER;
        c->grade = (enum check_grade)pass->grade;
        snprintf(c->sender, sizeof(c->sender),
                 "deliver: DANE (RFC 7672): %.253s passes authenticated TLS%s", pass->name,
                 pass->dane == TLSA_DANE_VERIFIED ? " (DANE verified)" : " (WebPKI)");
        snprintf(c->grade_why, sizeof(c->grade_why),
                 "the domain has DANE: the worst MX host that passes authenticated TLS");
        return true;
    }
    c->action = ACTION_DEFER;
    c->grade = CHECK_FAIL;
    snprintf(c->sender, sizeof(c->sender),
             "defer: DANE (RFC 7672): no MX host passes authenticated TLS (%.253s: %s%.200s)",
             bad->name, bad->dane == TLSA_DANE_LOOKUP_FAILED ? "DANE lookup-failed: " : "",
             bad->dane == TLSA_DANE_LOOKUP_FAILED ? bad->tlsa.why : bad->why);
    snprintf(c->grade_why, sizeof(c->grade_why),
             "the domain has DANE and no MX host passes authenticated TLS");
    return true;
}

void
check_dane_print(const struct check_host *h)
{
    char recs[1024];

    tlsa_set_text(&h->tlsa, recs, sizeof(recs));
    if (h->tlsa.owner[0] == '\0') {
        printf("  TLSA:   not looked up: %s\n", h->tlsa.why[0] ? h->tlsa.why : "no address");
        return;
    }
    printf("  TLSA:   %s: %s%s%s\n", h->tlsa.owner, tlsa_state_name(h->tlsa.state),
           recs[0] != '\0' ? ": " : "", recs[0] != '\0' ? recs : h->tlsa.why);
    printf("  DANE:   %s%s; WebPKI-valid: %s\n", tlsa_dane_name(h->dane),
           h->dane == TLSA_DANE_NONE ? " (WebPKI and MTA-STS decide)" :
           h->dane == TLSA_DANE_UNUSABLE ? " (no usable record: TLS required, not authenticated)" :
           h->dane == TLSA_DANE_LOOKUP_FAILED ? " (dnssec-invalid: the host must not be used)" :
           h->dane == TLSA_DANE_FAILED ? " (tlsa-invalid: no record matched)" : "",
           h->pkix < 0 ? "unknown" : h->pkix ? "yes" : "no");
}

void
check_dane_json(json_t *jh, const struct check_host *h)
{
    json_t *t = json_object(), *recs = json_array();

    for (size_t i = 0; i < h->tlsa.n; i++) {
        const struct tlsa_rec *r = &h->tlsa.rec[i];
        json_t *jr = json_object();
        char hex[2 * TLSA_DATA_MAX + 1];

        for (size_t k = 0; k < r->len; k++)
            (void)snprintf(hex + 2 * k, 3, "%02x", r->data[k]);
        hex[2 * r->len] = '\0';
        json_object_set_new(jr, "usage", json_integer(r->usage));
        json_object_set_new(jr, "selector", json_integer(r->selector));
        json_object_set_new(jr, "mtype", json_integer(r->mtype));
        json_object_set_new(jr, "data", json_string(hex));
        json_object_set_new(jr, "usable", json_boolean(r->usable));
        json_array_append_new(recs, jr);
    }
    json_object_set_new(t, "name", ctl_json_text(h->tlsa.owner));
    json_object_set_new(t, "dnssec", json_string(tlsa_state_name(h->tlsa.state)));
    json_object_set_new(t, "records", recs);
    json_object_set_new(t, "why", ctl_json_text(h->tlsa.why));
    json_object_set_new(jh, "tlsa", t);
    json_object_set_new(jh, "dane", json_string(tlsa_dane_name(h->dane)));
    json_object_set_new(jh, "pkix", h->pkix < 0 ? json_null() : json_boolean(h->pkix == 1));
}
