/* timer.h: one timer per connection, kept in a min-heap ordered by (deadline, arm order). */
#ifndef FAKE_UPSTREAM_TIMER_H
#define FAKE_UPSTREAM_TIMER_H

#include <stdbool.h>
#include <stdint.h>

struct conn;

/* (Re)arms c's single timer for when (monotonic ms). Returns false on OOM. */
bool	timer_arm(struct conn *c, uint64_t when);

/* Disarms c's timer; a no-op when it is not armed. */
void	timer_cancel(struct conn *c);

/* Milliseconds epoll_wait may sleep: -1 with no timer. */
int	timers_timeout(void);

/* Fires the timers due at srv.now that were armed before this call. */
void	timers_run(void);

/* Frees the heap (at exit, after every connection is gone). */
void	timers_free(void);

#endif
