/*
 * ctl_check_out - the report of `mtasts-ctl check` for a person or as
 * JSON; see ctl_check.c for what it holds.
 */
#include "ctl.h"
#include "ctl_check.h"

#include <stdio.h>
#include <string.h>

#include "nametab.h"

static const struct nametab check_grade_names[] = {
    {"good", CHECK_GOOD}, {"weak", CHECK_WEAK}, {"unverified", CHECK_UNVERIFIED},
    {"fail", CHECK_FAIL}, {"unknown", CHECK_UNKNOWN}, {"none", CHECK_NONE},
    {NULL, -1},
};

static const struct nametab action_names[] = {
    {"deliver", ACTION_DELIVER}, {"defer", ACTION_DEFER},
    {"not-applicable", ACTION_NOT_APPLICABLE}, {"no-mail", ACTION_NO_MAIL},
    {"unknown", ACTION_UNKNOWN}, {NULL, -1},
};

/* Record text as one printable line: bytes outside 0x20-0x7e as \xHH. */
static void
printable(const char *s, size_t len, char *out, size_t outsz)
{
    size_t o = 0;

    for (size_t i = 0; i < len && o + 5 < outsz; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch >= 0x20 && ch < 0x7f && ch != '\\')
            out[o++] = (char)ch;
        else
            o += (size_t)snprintf(out + o, outsz - o, "\\x%02x", ch);
    }
    out[o] = '\0';
}

json_t *
ctl_check_json(const struct check *c, long elapsed_ms)
{
    json_t *o = json_object(), *txt = json_object(), *recs = json_array(), *mx = json_object();
    json_t *hosts = json_array(), *sender = json_object(), *notes = json_array(), *pol;
    char buf[CHECK_TEXT_MAX];

    json_object_set_new(o, "domain", json_string(c->domain));
    snprintf(buf, sizeof(buf), "_mta-sts.%s", c->domain);
    json_object_set_new(txt, "name", json_string(buf));
    json_object_set_new(txt, "dns", json_string(dns_status_name(c->txt.status)));
    json_object_set_new(txt, "dnssec", dns_status_is_answer(c->txt.status) ?
                                           json_string(dns_sec_name(c->txt.sec)) :
                                           json_null());
    for (size_t i = 0; c->txt.status == DNS_OK && i < c->txt.n; i++) {
        printable(c->txt.rr[i].text, c->txt.rr[i].len, buf, sizeof(buf));
        json_array_append_new(recs, json_string(buf));
    }
    json_object_set_new(txt, "records", recs);
    json_object_set_new(txt, "error", c->txt.status == DNS_OK ? json_null() :
                                                                ctl_json_text(c->txt_err.msg));
    json_object_set_new(o, "txt", txt);
    json_object_set_new(o, "status", json_string(status_kind_name(c->res.status)));
    json_object_set_new(o, "txt_id", ctl_json_text(c->res.txt_id));
    pol = json_null();
    if (c->res.has_policy) {
        json_t *pmx = json_array();
        pol = json_object();
        for (size_t i = 0; i < c->res.n_mx; i++)
            json_array_append_new(pmx, json_string(c->res.mx[i]));
        json_object_set_new(pol, "mode", json_string(policy_mode_name(c->res.mode)));
        json_object_set_new(pol, "max_age", json_integer(c->res.max_age));
        json_object_set_new(pol, "mx", pmx);
    }
    json_object_set_new(o, "policy", pol);
    json_object_set_new(o, "policy_error", ctl_json_text(c->res.error));
    json_object_set_new(mx, "dns", json_string(dns_status_name(c->mx.status)));
    json_object_set_new(mx, "dnssec", dns_status_is_answer(c->mx.status) ?
                                          json_string(dns_sec_name(c->mx.sec)) :
                                          json_null());
    json_object_set_new(mx, "null_mx", json_boolean(c->null_mx));
    json_object_set_new(mx, "implicit", json_boolean(c->implicit_mx));
    json_object_set_new(mx, "hosts_total", json_integer((json_int_t)c->n_mx));
    json_object_set_new(mx, "hosts_probed", json_integer((json_int_t)c->n_hosts));
    json_object_set_new(o, "mx", mx);
    for (size_t i = 0; i < c->n_hosts; i++) {
        const struct check_host *h = &c->hosts[i];
        json_t *jh = json_object(), *probes = json_array();

        json_object_set_new(jh, "host", json_string(h->name));
        json_object_set_new(jh, "preference", h->pref >= 0 ? json_integer(h->pref) : json_null());
        json_object_set_new(jh, "cname", ctl_json_text(h->canonical));
        json_object_set_new(jh, "policy_match", h->match < 0 ? json_null() :
                                                               json_boolean(h->match == 1));
        json_object_set_new(jh, "addresses_total", json_integer((json_int_t)h->n_addrs));
        json_object_set_new(jh, "dns_error", ctl_json_text(h->dns_error));
        json_object_set_new(jh, "not_probed", ctl_json_text(h->not_probed));
        json_object_set_new(jh, "grade", json_string(tlsprobe_grade_name(h->grade)));
        json_object_set_new(jh, "rfc8461", json_boolean(ctl_check_passes(h)));
        json_object_set_new(jh, "reason", ctl_json_text(h->why));
        check_dane_json(jh, h);
        for (size_t k = h->first; k < h->first + h->n_probes; k++)
            json_array_append_new(probes, ctl_probe_json(&c->probes[k].r, &c->probes[k].g));
        json_object_set_new(jh, "probes", probes);
        json_array_append_new(hosts, jh);
    }
    json_object_set_new(o, "hosts", hosts);
    json_object_set_new(sender, "action", json_string(nametab_name(action_names, c->action)));
    json_object_set_new(sender, "summary", json_string(c->sender));
    json_object_set_new(o, "sender", sender);
    json_object_set_new(o, "grade", json_string(nametab_name(check_grade_names, c->grade)));
    json_object_set_new(o, "grade_reason", json_string(c->grade_why));
    ctl_resolver_json(o, &c->resolver);
    for (size_t i = 0; i < c->n_notes; i++)
        json_array_append_new(notes, json_string(c->notes[i]));
    json_object_set_new(o, "notes", notes);
    json_object_set_new(o, "elapsed_ms", json_integer(elapsed_ms));
    return o;
}

void
ctl_check_print(const struct check *c, long elapsed_ms)
{
    char buf[CHECK_TEXT_MAX];

    printf("domain:   %s\n", c->domain);
    printf("grade:    %s (%s)\n", nametab_name(check_grade_names, c->grade), c->grade_why);
    printf("sender:   %s\n", c->sender);
    if (c->txt.status == DNS_OK) {
        size_t n = c->txt.n < CHECK_TXT_SHOWN ? c->txt.n : CHECK_TXT_SHOWN;
        for (size_t i = 0; i < n; i++) {
            printable(c->txt.rr[i].text, c->txt.rr[i].len, buf, sizeof(buf));
            printf("%s\"%s\"", i == 0 ? "txt:      " : "          ", buf);
            if (i + 1 == n)
                printf(" (DNSSEC %s)", dns_sec_name(c->txt.sec));
            printf("\n");
        }
    } else if (dns_status_is_answer(c->txt.status)) {
        printf("txt:      none: %s (DNSSEC %s)\n", c->txt_err.msg, dns_sec_name(c->txt.sec));
    } else {
        printf("txt:      could not be learnt: %s\n", c->txt_err.msg);
    }
    printf("status:   %s%s%s\n", status_kind_name(c->res.status),
           c->res.error[0] != '\0' ? ": " : "", c->res.error);
    ctl_resolver_print(&c->resolver);
    if (c->res.has_policy) {
        printf("policy:   mode %s, max_age %u s, id %s\n", policy_mode_name(c->res.mode),
               (unsigned)c->res.max_age, c->res.txt_id[0] ? c->res.txt_id : "-");
        for (size_t i = 0; i < c->res.n_mx; i++)
            printf("          mx: %s\n", c->res.mx[i]);
    }
    if (c->null_mx)
        printf("mx:       null MX (\".\"): the domain accepts no mail (RFC 7505)\n");
    else if (c->mx.status != DNS_OK && !c->implicit_mx)
        printf("mx:       could not be learnt: %s\n", c->mx_err.msg);
    else
        printf("mx:       %zu host%s%s (DNSSEC %s)\n", c->n_mx, c->n_mx == 1 ? "" : "s",
               c->implicit_mx ? "; no MX record: the domain itself (RFC 5321 §5.1)" : "",
               dns_sec_name(c->mx.sec));
    for (size_t i = 0; i < c->n_hosts; i++) {
        const struct check_host *h = &c->hosts[i];
        char pref[16] = "-";

        if (h->pref >= 0)
            snprintf(pref, sizeof(pref), "%d", h->pref);
        printf("  %4s %-28s %-10s %s%s%s\n", pref, h->name, tlsprobe_grade_name(h->grade),
               h->match < 0 ? "" : h->match ? "in policy" : "NOT in policy",
               h->why[0] != '\0' ? (h->match < 0 ? "" : "; ") : "", h->why);
    }
    for (size_t i = 0; i < c->n_notes; i++)
        printf("note:     %s\n", c->notes[i]);
    for (size_t i = 0; i < c->n_hosts; i++) {
        const struct check_host *h = &c->hosts[i];

        printf("\n%s", h->name);
        if (h->canonical[0] != '\0')
            printf(" (CNAME to %s: RFC 5321 §5.1 wants an MX name with addresses of its own)",
                   h->canonical);
        printf(": %zu address%s", h->n_addrs, h->n_addrs == 1 ? "" : "es");
        if (h->n_addrs > h->n_probes)
            printf(", %zu probed", h->n_probes);
        printf("%s%s\n", h->dns_error[0] != '\0' ? ": " : "", h->dns_error);
        check_dane_print(h);
        if (h->not_probed[0] != '\0')
            printf("  not probed: %s\n", h->not_probed);
        for (size_t k = h->first; k < h->first + h->n_probes; k++)
            ctl_probe_print(&c->probes[k].r, &c->probes[k].g, "  ");
    }
    printf("\ntime:     %ld ms\n", elapsed_ms);
}
