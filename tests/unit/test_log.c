/*
 * test_log - unit tests for common/log.c's writer thread (log_later,
 * log_flush, log_start_writer, log_stop_writer) and the order of lines.
 *
 * stderr is pointed at a scratch file for the whole program (the log
 * writes there); each test reads the file to see what is on disk at that
 * moment. The writer can start once a process, so the tests run in order:
 * before it starts, while it runs, after it stopped.
 */
#include "unit.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

static char log_path[] = "/tmp/test_log.XXXXXX";
static int saved_stderr = -1;

/* What the log file holds now, NUL-terminated, on the heap. */
static char *
log_now(void)
{
    FILE *f = fopen(log_path, "r");
    char *buf;
    long n;

    assert_non_null(f);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    n = ftell(f);
    assert_true(n >= 0);
    rewind(f);
    buf = malloc((size_t)n + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static void
sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

    nanosleep(&ts, NULL);
}

/* Polls the file until it holds needle, for up to ms; true when it does. */
static bool
appears_within(const char *needle, long ms)
{
    for (long waited = 0;; waited += 2) {
        char *now = log_now();
        bool seen = strstr(now, needle) != NULL;

        free(now);
        if (seen)
            return true;
        if (waited >= ms)
            return false;
        sleep_ms(2);
    }
}

static void
without_writer_lines_are_written_at_once(void **state)
{
    char *now;

    (void)state;
    log_later(LOG_INFO, "before-start later line");
    log_msg(LOG_INFO, "before-start msg line\nwith a newline\rand a return");
    now = log_now();
    assert_non_null(strstr(now, "test_log: info: before-start later line\n"));
    /* Remote text never starts a line of its own. */
    assert_non_null(strstr(now, "test_log: info: before-start msg line with a newline and a return\n"));
    free(now);
}

static void
log_msg_writes_queued_lines_first(void **state)
{
    char *now, *a, *b, *c;

    (void)state;
    assert_int_equal(log_start_writer(), 0);
    /* Let the thread reach its first wait, then fill its 20 ms nap. */
    log_later(LOG_INFO, "order-0");
    assert_true(appears_within("order-0\n", 2000));
    log_later(LOG_INFO, "order-A");
    log_later(LOG_INFO, "order-B");
    log_msg(LOG_NOTICE, "order-C");
    now = log_now();
    a = strstr(now, "order-A\n");
    b = strstr(now, "order-B\n");
    c = strstr(now, "test_log: notice: order-C\n");
    /* On disk when log_msg returned, and in the order they were logged. */
    assert_non_null(a);
    assert_non_null(b);
    assert_non_null(c);
    assert_true(a < b && b < c);
    free(now);
}

static void
later_lines_reach_the_file_without_a_flush(void **state)
{
    (void)state;
    log_later(LOG_INFO, "no-flush line");
    /* Within the nap (20 ms); a loaded machine gets far more. */
    assert_true(appears_within("no-flush line\n", 2000));
}

static void
log_flush_writes_what_waits(void **state)
{
    char *now;

    (void)state;
    log_later(LOG_INFO, "flush-1");
    log_later(LOG_INFO, "flush-2");
    log_flush();
    now = log_now();
    assert_non_null(strstr(now, "flush-1\nt"));
    assert_non_null(strstr(now, "flush-2\n"));
    free(now);
}

static void
long_lines_are_cut_to_one_line(void **state)
{
    char big[3000], *now, *at, *eol;

    (void)state;
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    big[100] = '\n'; /* replaced, as in a short line */
    log_later(LOG_INFO, "long-later %s", big);
    log_msg(LOG_WARNING, "long-msg %s", big);
    now = log_now();
    for (const char *tag = "long-later "; tag != NULL;
         tag = strcmp(tag, "long-later ") == 0 ? "long-msg " : NULL) {
        at = strstr(now, tag);
        assert_non_null(at);
        eol = strchr(at, '\n');
        assert_non_null(eol);
        /* Cut (a line is at most about 1 KiB), and the next line whole. */
        assert_true(eol - at > 900 && eol - at < 1100);
        assert_true(eol[1] == '\0' || strncmp(eol + 1, "test_log: ", 10) == 0);
    }
    free(now);
}

#define THREADS 4
#define LINES 3000 /* 4 x 3,000 lines of ~90 bytes: far past the 256 KiB queue */

static void *
logger(void *arg)
{
    int t = (int)(intptr_t)arg;

    for (int i = 0; i < LINES; i++) {
        if (i == LINES / 2)
            log_msg(LOG_WARNING, "load t%d line %05d (at once) ..................", t, i);
        else
            log_later(LOG_INFO, "load t%d line %05d ..................................", t, i);
    }
    return NULL;
}

static void
many_threads_lose_nothing_and_keep_their_order(void **state)
{
    pthread_t th[THREADS];
    int next[THREADS] = {0};
    char *now;

    (void)state;
    for (int t = 0; t < THREADS; t++)
        assert_int_equal(pthread_create(&th[t], NULL, logger, (void *)(intptr_t)t), 0);
    for (int t = 0; t < THREADS; t++)
        pthread_join(th[t], NULL);
    log_stop_writer();
    now = log_now();
    /* Each thread's lines once each, in the order it logged them. */
    for (const char *p = now; *p; p = strchr(p, '\n') + 1) {
        const char *load = strstr(p, "load t");
        const char *eol = strchr(p, '\n');
        int t, i;

        assert_non_null(eol);
        if (load == NULL || load > eol)
            continue;
        assert_int_equal(sscanf(load, "load t%d line %d", &t, &i), 2);
        assert_true(t >= 0 && t < THREADS);
        assert_int_equal(i, next[t]);
        next[t]++;
    }
    for (int t = 0; t < THREADS; t++)
        assert_int_equal(next[t], LINES);
    /* Whole lines only: no two lines ever share one. */
    for (const char *p = now; *p; p = strchr(p, '\n') + 1)
        assert_int_equal(strncmp(p, "test_log: ", 10), 0);
    free(now);
}

static void
after_stop_lines_are_written_at_once(void **state)
{
    char *now;

    (void)state;
    log_later(LOG_INFO, "after-stop line");
    now = log_now();
    assert_non_null(strstr(now, "after-stop line\n"));
    free(now);
    /* A second start does not revive it: callers keep writing. */
    assert_int_equal(log_start_writer(), 0);
    log_later(LOG_INFO, "after-restart line");
    now = log_now();
    assert_non_null(strstr(now, "after-restart line\n"));
    free(now);
}

static int
point_stderr_at_file(void **state)
{
    int fd = mkstemp(log_path);

    (void)state;
    if (fd < 0)
        return -1;
    saved_stderr = dup(STDERR_FILENO);
    if (saved_stderr < 0 || dup2(fd, STDERR_FILENO) < 0)
        return -1;
    close(fd);
    setvbuf(stderr, NULL, _IONBF, 0);
    log_init("test_log", LOG_TO_STDERR, 0);
    log_set_level(LOG_INFO);
    return 0;
}

static int
restore_stderr(void **state)
{
    (void)state;
    if (saved_stderr >= 0) {
        dup2(saved_stderr, STDERR_FILENO);
        close(saved_stderr);
    }
    unlink(log_path);
    return 0;
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(without_writer_lines_are_written_at_once),
        cmocka_unit_test(log_msg_writes_queued_lines_first),
        cmocka_unit_test(later_lines_reach_the_file_without_a_flush),
        cmocka_unit_test(log_flush_writes_what_waits),
        cmocka_unit_test(long_lines_are_cut_to_one_line),
        cmocka_unit_test(many_threads_lose_nothing_and_keep_their_order),
        cmocka_unit_test(after_stop_lines_are_written_at_once),
    };

    return cmocka_run_group_tests_name("test_log", tests, point_stderr_at_file, restore_stderr);
}
