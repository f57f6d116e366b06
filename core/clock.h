/* clock.h: the one monotonic clock of every process.
 *
 * Deadlines, durations and heartbeats are measured on CLOCK_MONOTONIC, which
 * never jumps with the wall clock. Inline: it runs once per relayed token. */
#ifndef CHAT_CLOCK_H
#define CHAT_CLOCK_H

#include <pthread.h>
#include <stdint.h>
#include <time.h>

/* Monotonic microseconds (since an arbitrary point). */
static inline int64_t
clock_now_us(void)
{
	struct timespec ts;

	(void)clock_gettime(CLOCK_MONOTONIC, &ts);  /* cannot fail for this clock */
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Monotonic milliseconds. */
static inline int64_t
clock_now_ms(void)
{
	return clock_now_us() / 1000;
}

/* Monotonic seconds: the master's coarse deadlines (drain, respawn, sweep). */
static inline int64_t
clock_now_s(void)
{
	return clock_now_us() / 1000000;
}

/* Initialises cv so that its timed waits run on the monotonic clock (a
 * wall-clock step neither stretches nor cuts them): 0 or an error number.
 * Deadlines for it come from clock_deadline. */
static inline int
clock_cond_init(pthread_cond_t *cv)
{
	pthread_condattr_t ca;
	int rc;

	if ((rc = pthread_condattr_init(&ca)) != 0)
		return rc;
	if ((rc = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC)) == 0)
		rc = pthread_cond_init(cv, &ca);
	(void)pthread_condattr_destroy(&ca);
	return rc;
}

/* The moment ms milliseconds from now, for pthread_cond_timedwait on a
 * condition variable made by clock_cond_init. */
static inline struct timespec
clock_deadline(int64_t ms)
{
	struct timespec ts;

	(void)clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += (time_t)(ms / 1000);
	ts.tv_nsec += (long)(ms % 1000) * 1000000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	return ts;
}

#endif
