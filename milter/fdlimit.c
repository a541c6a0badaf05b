/*
 * fdlimit - raise the soft descriptor limit to the hard one; see fdlimit.h.
 *
 * Found by tests/faults/test_many_conns.sh: with the soft limit at 1,024,
 * 1,004 idle MTA connections left the milter unable to accept one more, so
 * a new connection's mail waited without an answer until the MTA gave up.
 */
#include "fdlimit.h"

#include <errno.h>
#include <string.h>
#include <sys/resource.h>

#include "log.h"

void
fdlimit_raise(void)
{
    struct rlimit rl;
    rlim_t want;

    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
        log_msg(LOG_WARNING, "cannot read the descriptor limit: %s", strerror(errno));
        return;
    }
    want = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > FDLIMIT_MAX ? FDLIMIT_MAX : rl.rlim_max;
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < want) {
        rlim_t was = rl.rlim_cur;

        rl.rlim_cur = want;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
            log_msg(LOG_WARNING, "cannot raise the descriptor limit from %llu to %llu: %s",
                    (unsigned long long)was, (unsigned long long)want, strerror(errno));
        else
            log_msg(LOG_INFO, "descriptor limit raised from %llu to %llu (one per MTA "
                    "connection)", (unsigned long long)was, (unsigned long long)want);
    }
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
        rl.rlim_cur < FDLIMIT_LOW)
        log_msg(LOG_WARNING, "descriptor limit %llu: fewer MTA connections than that can be "
                "open at once; raise the hard limit (LimitNOFILE= in the systemd unit, "
                "ulimit -Hn)", (unsigned long long)rl.rlim_cur);
}
