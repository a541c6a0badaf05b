/*
 * clock - monotonic deadlines; see clock.h.
 */
#include "clock.h"

#include <limits.h>
#include <stdint.h>

struct timespec
clock_deadline_after(int ms)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    return ts;
}

int
clock_ms_until(const struct timespec *deadline)
{
    struct timespec now;
    int64_t ns;

    clock_gettime(CLOCK_MONOTONIC, &now);
    ns = ((int64_t)deadline->tv_sec - (int64_t)now.tv_sec) * 1000000000 +
         (deadline->tv_nsec - now.tv_nsec);
    if (ns <= 0)
        return 0;
    ns = (ns + 999999) / 1000000;
    return ns > INT_MAX ? INT_MAX : (int)ns;
}

const struct timespec *
clock_earlier(const struct timespec *a, const struct timespec *b)
{
    if (a->tv_sec != b->tv_sec)
        return a->tv_sec < b->tv_sec ? a : b;
    return a->tv_nsec <= b->tv_nsec ? a : b;
}

void
clock_cond_init(pthread_cond_t *cv)
{
    pthread_condattr_t ca;

    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(cv, &ca);
    pthread_condattr_destroy(&ca);
}
