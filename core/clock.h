/* clock.h: the one monotonic clock of every process.
 *
 * Deadlines, durations and heartbeats are measured on CLOCK_MONOTONIC, which
 * never jumps with the wall clock. Inline: it runs once per relayed token. */
#ifndef CHAT_CLOCK_H
#define CHAT_CLOCK_H

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

#endif
