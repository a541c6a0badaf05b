/*
 * mappool - the policy map's answer threads; see mappool.h.
 */
#include "mappool.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "metrics.h"

#define THREAD_STACK (1024 * 1024)

struct mappool {
    struct mappool_params p;
    pthread_mutex_t mu;
    pthread_cond_t work, gone;
    struct mapjob *head, *tail;
    int queued, threads, idle;
    bool stop;
};

void
mapjob_free(struct mapjob *j)
{
    if (j != NULL) {
        free(j->req);
        free(j->reply);
        free(j);
    }
}

static void *worker_main(void *arg);

/* Under mu: one more answer thread. */
static int
spawn_worker(struct mappool *p)
{
    pthread_attr_t attr;
    pthread_t t;
    int rc;

    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, THREAD_STACK);
    rc = pthread_create(&t, &attr, worker_main, p);
    pthread_attr_destroy(&attr);
    if (rc != 0)
        return -1;
    p->threads++;
    return 0;
}

static void *
worker_main(void *arg)
{
    struct mappool *p = arg;

    pthread_mutex_lock(&p->mu);
    for (;;) {
        struct mapjob *j;
        bool timed_out = false;

        while (p->head == NULL && !p->stop && !timed_out) {
            p->idle++;
            if (p->threads > p->p.workers) {
                struct timespec dl = clock_deadline_after(MAPPOOL_LINGER_MS);
                timed_out = pthread_cond_timedwait(&p->work, &p->mu, &dl) == ETIMEDOUT;
            } else {
                pthread_cond_wait(&p->work, &p->mu);
            }
            p->idle--;
        }
        if (p->stop || p->head == NULL)
            break;
        j = p->head;
        p->head = j->next;
        if (p->head == NULL)
            p->tail = NULL;
        p->queued--;
        pthread_mutex_unlock(&p->mu);

        if ((j->reply = malloc(MAPPOOL_REPLY_SIZE)) != NULL) {
            int64_t t0 = metrics_clock_us();

            p->p.answer(j->req, j->len, j->id, j->reply, MAPPOOL_REPLY_SIZE, p->p.answer_arg);
            metrics_map(j->reply, strnlen(j->reply, MAPPOOL_REPLY_SIZE), metrics_clock_us() - t0);
        }
        j->next = NULL;
        p->p.done(j, p->p.done_arg);

        pthread_mutex_lock(&p->mu);
    }
    p->threads--;
    if (p->threads == 0)
        pthread_cond_broadcast(&p->gone);
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

int
mappool_start(const struct mappool_params *params, struct mappool **out, struct mts_err *err)
{
    struct mappool *p = calloc(1, sizeof(*p));

    *out = NULL;
    if (p == NULL) {
        mts_err_set(err, "out of memory");
        return -1;
    }
    p->p = *params;
    pthread_mutex_init(&p->mu, NULL);
    clock_cond_init(&p->work);
    clock_cond_init(&p->gone);
    pthread_mutex_lock(&p->mu);
    for (int i = 0; i < p->p.workers; i++) {
        if (spawn_worker(p) != 0) {
            pthread_mutex_unlock(&p->mu);
            mappool_stop(p);
            mts_err_set(err, "cannot start the map's answer threads");
            return -1;
        }
    }
    pthread_mutex_unlock(&p->mu);
    *out = p;
    return 0;
}

int
mappool_submit(struct mappool *p, struct mapjob *j)
{
    int rc = 0;

    pthread_mutex_lock(&p->mu);
    j->next = NULL;
    if (p->tail != NULL)
        p->tail->next = j;
    else
        p->head = j;
    p->tail = j;
    p->queued++;
    if (p->queued > p->idle && p->threads < p->p.max_threads && spawn_worker(p) != 0 &&
        p->threads == 0)
        rc = -1;		/* nobody will answer; the job stays queued until stop */
    pthread_cond_signal(&p->work);
    pthread_mutex_unlock(&p->mu);
    return rc;
}

void
mappool_stop(struct mappool *p)
{
    if (p == NULL)
        return;
    pthread_mutex_lock(&p->mu);
    p->stop = true;
    pthread_cond_broadcast(&p->work);
    /* Each finishes its job (bounded by its deadline) and goes. */
    while (p->threads > 0)
        pthread_cond_wait(&p->gone, &p->mu);
    pthread_mutex_unlock(&p->mu);
    while (p->head != NULL) {
        struct mapjob *j = p->head;
        p->head = j->next;
        mapjob_free(j);
    }
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->work);
    pthread_cond_destroy(&p->gone);
    free(p);
}
