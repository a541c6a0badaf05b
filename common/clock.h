/*
 * clock - deadlines on the monotonic clock, for every bounded wait.
 *
 * SYNOPSIS
 *	struct timespec dl = clock_deadline_after(5000);
 *	int left = clock_ms_until(&dl);
 *	const struct timespec *first = clock_earlier(&a, &b);
 *
 * DESCRIPTION
 *	A caller makes one absolute deadline when its budget starts and passes
 *	it down, so every wait below counts against the same budget.
 *
 *	Condition variables that wait with these deadlines must be created with
 *	pthread_condattr_setclock(CLOCK_MONOTONIC) (clock_cond_init does that),
 *	so a change of the wall clock neither shortens nor stretches a wait.
 */
#ifndef MTS_CLOCK_H
#define MTS_CLOCK_H

#include <pthread.h>
#include <time.h>

/* The monotonic time ms milliseconds from now. */
struct timespec clock_deadline_after(int ms);

/* Milliseconds left until deadline, rounded up; 0 when it has passed. */
int clock_ms_until(const struct timespec *deadline);

/* The earlier of two deadlines. */
const struct timespec *clock_earlier(const struct timespec *a, const struct timespec *b);

/* pthread_cond_init on the monotonic clock. */
void clock_cond_init(pthread_cond_t *cv);

#endif
