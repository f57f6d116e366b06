/* timer.c: one timer per connection, kept in a min-heap ordered by
 * (deadline, arm order), so thousands of concurrent streams cost one heap
 * operation per token. */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "conn.h"
#include "server.h"
#include "timer.h"

static struct {
	struct conn	**heap;
	size_t		 heap_len, heap_cap;
	uint64_t	 seq;		/* arm order: ties fire first-armed first */
} tm;

static bool
timer_before(const struct conn *a, const struct conn *b)
{
	return a->t_when < b->t_when ||
	    (a->t_when == b->t_when && a->t_seq < b->t_seq);
}

static void
heap_place(size_t i, struct conn *c)
{
	tm.heap[i] = c;
	c->t_idx = i;
}

static void
heap_up(size_t i)
{
	struct conn *c = tm.heap[i];
	size_t parent;

	while (i > 0) {
		parent = (i - 1) / 2;
		if (!timer_before(c, tm.heap[parent]))
			break;
		heap_place(i, tm.heap[parent]);
		i = parent;
	}
	heap_place(i, c);
}

static void
heap_down(size_t i)
{
	struct conn *c = tm.heap[i];
	size_t l, m;

	for (;;) {
		l = 2 * i + 1;
		if (l >= tm.heap_len)
			break;
		m = l;
		if (l + 1 < tm.heap_len && timer_before(tm.heap[l + 1], tm.heap[l]))
			m = l + 1;
		if (!timer_before(tm.heap[m], c))
			break;
		heap_place(i, tm.heap[m]);
		i = m;
	}
	heap_place(i, c);
}

void
timer_cancel(struct conn *c)
{
	struct conn *last;
	size_t i = c->t_idx;

	if (i == SIZE_MAX)
		return;
	c->t_idx = SIZE_MAX;
	last = tm.heap[--tm.heap_len];
	if (i < tm.heap_len) {
		heap_place(i, last);
		heap_up(i);
		heap_down(last->t_idx);
	}
}

bool
timer_arm(struct conn *c, uint64_t when)
{
	struct conn **v;
	size_t ncap;

	timer_cancel(c);
	if (tm.heap_len == tm.heap_cap) {
		ncap = tm.heap_cap ? tm.heap_cap * 2 : 256;
		if ((v = realloc(tm.heap, ncap * sizeof(*v))) == NULL)
			return false;
		tm.heap = v;
		tm.heap_cap = ncap;
	}
	c->t_when = when;
	c->t_seq = tm.seq++;
	heap_place(tm.heap_len++, c);
	heap_up(tm.heap_len - 1);
	return true;
}

int
timers_timeout(void)
{
	uint64_t d;

	if (tm.heap_len == 0)
		return -1;
	if (tm.heap[0]->t_when <= srv.now)
		return 0;
	d = tm.heap[0]->t_when - srv.now;
	return d > INT_MAX ? INT_MAX : (int)d;
}

void
timers_run(void)
{
	uint64_t limit = tm.seq;
	struct conn *c;

	/* Timers armed while running wait for the next turn of the loop, so
	 * zero-delay streams cannot starve the sockets. */
	while (tm.heap_len > 0) {
		c = tm.heap[0];
		if (c->t_when > srv.now || c->t_seq >= limit)
			break;
		timer_cancel(c);
		conn_on_timer(c);
	}
}

void
timers_free(void)
{
	free(tm.heap);
	memset(&tm, 0, sizeof(tm));
}
