/* The one clock: monotonic seconds, and deadlines for timed waits on
 * condition variables made with CLOCK_MONOTONIC (clock_cond_init). */
#ifndef EMBER_COMMON_CLOCK_H
#define EMBER_COMMON_CLOCK_H

#include <pthread.h>
#include <time.h>

/* Seconds on the monotonic clock (an arbitrary origin). */
double clock_now(void);
/* The monotonic time `seconds` from now, for pthread_cond_timedwait on a
 * condition variable from clock_cond_init. */
struct timespec clock_deadline(double seconds);
/* A condition variable whose timed waits use the monotonic clock. */
int clock_cond_init(pthread_cond_t *cv);

#endif
