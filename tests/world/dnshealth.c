/*
 * dnshealth - many lookups through one resolver, then its health counts:
 * how often the health check replaced the libunbound context.
 *
 * usage: dnshealth CONFIG PREFIXES N THREADS
 *
 * Opens the resolver of CONFIG (resolv_conf, trust anchor, dns_timeout_ms)
 * as the milter does, and THREADS threads look up the TXT records of
 * _mta-sts.<prefix>1.test .. _mta-sts.<prefix>N.test, each name once, as a
 * lookup worker does (no deadline of their own), where PREFIXES is one
 * prefix or several separated by commas (at most 4), taken in turn
 * ("slow,h": slow1, h2, slow3, ...). Prints one line per prefix and status
 * seen ("h nxdomain 20"), then "renewals R backoffs B silent S slow F"
 * from dns_health. The caller points CONFIG at a forwarder that is slow or
 * drops some names (dropdns.py) and judges the counts. Exit status 0 when
 * the resolver opened and every lookup ran.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "dns.h"
#include "log.h"

struct shared {
    struct dns *d;
    char *prefix[4];
    int n_prefix, n, next;
    pthread_mutex_t mu;
    size_t count[4][DNS_ERROR + 1];
};

static void *
worker(void *arg)
{
    struct shared *s = arg;

    for (;;) {
        char name[256];
        struct dns_answer a;
        struct mts_err err;
        int i;

        pthread_mutex_lock(&s->mu);
        i = s->next < s->n ? ++s->next : 0;
        pthread_mutex_unlock(&s->mu);
        if (i == 0)
            return NULL;
        snprintf(name, sizeof(name), "_mta-sts.%s%d.test", s->prefix[(i - 1) % s->n_prefix], i);
        if (dns_query(s->d, name, DNS_TXT, NULL, &a, &err) != 0)
            a.status = DNS_ERROR;
        pthread_mutex_lock(&s->mu);
        s->count[(i - 1) % s->n_prefix][a.status]++;
        pthread_mutex_unlock(&s->mu);
        dns_answer_free(&a);
    }
}

int
main(int argc, char **argv)
{
    struct shared s;
    struct config *cfg;
    struct dns_options o;
    struct dns_health h;
    struct mts_err err;
    pthread_t t[64];
    int threads;

    if (argc != 5 || (s.n = atoi(argv[3])) < 1 || s.n > 100000 ||
        (threads = atoi(argv[4])) < 1 || threads > 64) {
        fprintf(stderr, "usage: dnshealth CONFIG PREFIX N (1..100000) THREADS (1..64)\n");
        return 2;
    }
    log_init("dnshealth", LOG_TO_STDERR, 0);
    if (config_load(argv[1], &cfg, &err) != 0) {
        fprintf(stderr, "dnshealth: %s\n", err.msg);
        return 2;
    }
    dns_options_from(cfg, &o);
    if (dns_open(&o, &s.d, &err) != 0) {
        fprintf(stderr, "dnshealth: %s\n", err.msg);
        return 2;
    }
    s.n_prefix = 0;
    for (char *p = strtok(argv[2], ","); p != NULL && s.n_prefix < 4; p = strtok(NULL, ","))
        s.prefix[s.n_prefix++] = p;
    if (s.n_prefix == 0)
        return 2;
    s.next = 0;
    memset(s.count, 0, sizeof(s.count));
    pthread_mutex_init(&s.mu, NULL);
    for (int i = 0; i < threads; i++)
        if (pthread_create(&t[i], NULL, worker, &s) != 0)
            return 2;
    for (int i = 0; i < threads; i++)
        pthread_join(t[i], NULL);
    for (int k = 0; k < s.n_prefix; k++)
        for (int st = DNS_OK; st <= DNS_ERROR; st++)
            if (s.count[k][st] > 0)
                printf("%s %s %zu\n", s.prefix[k], dns_status_name((enum dns_status)st),
                       s.count[k][st]);
    dns_health(s.d, &h);
    printf("renewals %u backoffs %u silent %u slow %u\n", h.renewals, h.backoffs_seen,
           h.silent_answers, h.slow_failures);
    dns_close(s.d);
    config_unref(cfg);
    return 0;
}
