/*
 * clock - deadlines on the monotonic clock, for every bounded wait.
 *
 * Condition variables that wait with these deadlines must be created with
 * pthread_condattr_setclock(CLOCK_MONOTONIC) (clock_cond_init does that),
 * so a change of the wall clock neither shortens nor stretches a wait.
 */
#ifndef MTS_CLOCK_H
#define MTS_CLOCK_H

#include <pthread.h>
#include <time.h>

/* The monotonic time ms milliseconds from now. */
struct timespec clock_deadline_after(int ms);

/* pthread_cond_init on the monotonic clock. */
void clock_cond_init(pthread_cond_t *cv);

#endif
