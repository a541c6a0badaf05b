/*
 * fleet_writer - the fleet's writer thread: the queue of what this host
 * learnt goes to Redis in pipelines (SET, the lock's release, PUBLISH);
 * what Redis does not take waits in the outage list (fleet_outage.c);
 * at close, what is left gets until f->close_by. See fleet.h.
 */
#include "fleet_int.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "fleet_link.h"

/* While rows wait for the link: how often the writer tries it (the
 * breaker says when a try costs a connection), and at close, how often
 * it looks whether the breaker lets it try (a look costs no system call). */
#define RESYNC_TRY_MS 1000
#define CLOSE_POLL_MS 50

/* Deletes the lock only if it is still this host's (it may have expired
 * and been taken by another). */
static const char unlock_script[] =
    "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) "
    "else return 0 end";

void
fleet_items_free(struct qitem *it)
{
    while (it != NULL) {
        struct qitem *next = it->next;

        free(it->val);
        free(it);
        it = next;
    }
}

/* Queues it for the writer; the oldest goes when the queue is full. */
void
fleet_enqueue(struct fleet *f, struct qitem *it)
{
    pthread_mutex_lock(&f->mu);
    if (f->queued >= FLEET_QUEUE_MAX) {
        struct qitem *old = f->head;

        f->head = old->next;
        if (f->head == NULL)
            f->tail = NULL;
        f->queued--;
        f->dropped++;
        free(old->val);
        free(old);
    }
    if (f->tail != NULL)
        f->tail->next = it;
    else
        f->head = it;
    f->tail = it;
    f->queued++;
    pthread_cond_signal(&f->cv);
    pthread_mutex_unlock(&f->mu);
}

/* Sends up to a pipeline's worth of items: SET, unlock, PUBLISH each;
 * false when Redis is away. */
static bool
send_batch(struct fleet *f, struct qitem *batch)
{
    struct fleet_cmd cmds[FLEET_LINK_PIPELINE_MAX];
    redisReply *replies[FLEET_LINK_PIPELINE_MAX];
    size_t n = 0, rows = 0;

    memset(cmds, 0, sizeof(cmds));
    for (struct qitem *it = batch; it != NULL; it = it->next) {
        if (it->val != NULL) /* else only the lock's release (fleet_unlock) */
            cmds[n++] = (struct fleet_cmd){5, {"SET", it->key, it->val, "PX", it->ttl},
                                           {3, strlen(it->key), it->len, 2, strlen(it->ttl)}};
        if (it->lock[0] != '\0') /* else a value no lock guards (a TLSA result) */
            cmds[n++] = (struct fleet_cmd){5, {"EVAL", unlock_script, "1", it->lock, f->token},
                                           {4, sizeof(unlock_script) - 1, 1, strlen(it->lock),
                                            strlen(f->token)}};
        if (it->event[0] != '\0')
            cmds[n++] = (struct fleet_cmd){3, {"PUBLISH", f->channel, it->event},
                                           {7, strlen(f->channel), strlen(it->event)}};
        rows += it->val != NULL;
    }
    if (fleet_link_pipeline(f->link, n, cmds, replies) == 0) {
        for (size_t i = 0; i < n; i++)
            freeReplyObject(replies[i]);
        pthread_mutex_lock(&f->mu);
        f->rows_written += rows;
        pthread_mutex_unlock(&f->mu);
        return true;
    }
    return false;
}

/*
 * Closing: the queue is sent (what Redis did not take went to the outage
 * list); the outage list is written while the link lets it, tries
 * starting until f->close_by; when the breaker's next try falls after
 * it, there is nothing to wait for (fleet_close logs what is left).
 */
static void
drain(struct fleet *f)
{
    int left;

    while (f->outage != NULL && (left = clock_ms_until(&f->close_by)) > 0) {
        struct timespec nap = {0, (long)(left < CLOSE_POLL_MS ? left : CLOSE_POLL_MS) * 1000000L};
        struct fleet_link_state st;

        if (fleet_outage_resync(f))
            continue;
        fleet_link_state(f->link, &st);
        if (st.retry_in_ms >= left)
            break;
        nanosleep(&nap, NULL);
    }
}

void *
fleet_writer_main(void *arg)
{
    struct fleet *f = arg;

    pthread_mutex_lock(&f->mu);
    for (;;) {
        struct qitem *batch, *last;
        size_t n = 1;

        while (f->head == NULL && !f->stopping) {
            struct timespec dl;

            if (f->outage == NULL) {
                pthread_cond_wait(&f->cv, &f->mu);
                continue;
            }
            /* Rows wait for the link: try it once a second (the breaker
             * says when it is worth a connection). */
            dl = clock_deadline_after(RESYNC_TRY_MS);
            if (pthread_cond_timedwait(&f->cv, &f->mu, &dl) == ETIMEDOUT) {
                pthread_mutex_unlock(&f->mu);
                (void)fleet_outage_resync(f);
                pthread_mutex_lock(&f->mu);
            }
        }
        if (f->head == NULL)
            break;
        /* At most 3 commands an item in one pipeline. */
        batch = last = f->head;
        while (last->next != NULL && n < FLEET_LINK_PIPELINE_MAX / 3) {
            last = last->next;
            n++;
        }
        f->head = last->next;
        if (f->head == NULL)
            f->tail = NULL;
        f->queued -= n;
        last->next = NULL;
        pthread_mutex_unlock(&f->mu);
        if (!send_batch(f, batch)) {
            fleet_outage_keep(f, batch);
            batch = NULL;
        } else if (f->outage != NULL) {
            (void)fleet_outage_resync(f);
        }
        fleet_items_free(batch);
        pthread_mutex_lock(&f->mu);
    }
    pthread_mutex_unlock(&f->mu);
    drain(f);
    return NULL;
}
