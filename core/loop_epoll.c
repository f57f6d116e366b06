/* loop_epoll.c: descriptors, timers and cross-thread posts on epoll. */
#include "loop_epoll.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "clock.h"
#include "log.h"

#define EVENTS_PER_WAIT 256
#define WAIT_MAX_MS     1000   /* an upper bound, so a stop is never missed */

struct loop_fd {
	int             fd;
	loop_fd_cb      cb;
	void           *ctx;
	uint32_t        events;      /* what epoll watches now */
	bool            removed;     /* freed at the end of the turn */
	struct loop_fd *next_dead;
};

struct loop_timer {
	void   (*fire)(void *ctx);
	void    *ctx;
	int64_t  due_ms;
	size_t   slot;               /* index in the heap while armed */
	uint64_t turn;               /* the loop turn it was armed in */
	bool     armed;
};

struct loop_post {
	void            (*fn)(void *arg);
	void             *arg;
	struct loop_post *next;
};

static int loop_epfd = -1;
static int loop_wakefd = -1;
static atomic_bool loop_stopping;
static struct loop_fd *loop_dead;          /* removed during this turn */
static uint64_t loop_turn;                 /* counts timers_run calls */

static struct loop_timer **heap;           /* min-heap on due_ms */
static size_t heap_len, heap_cap;

static pthread_mutex_t post_mu = PTHREAD_MUTEX_INITIALIZER;
static struct loop_post *post_head, *post_tail;

/* ---- descriptors ---------------------------------------------------------- */

static uint32_t
fd_events(bool readable, bool writable)
{
	return (readable ? EPOLLIN | EPOLLRDHUP : 0) | (writable ? EPOLLOUT : 0);
}

struct loop_fd *
loop_fd_add(int fd, loop_fd_cb cb, void *ctx)
{
	struct loop_fd *w = calloc(1, sizeof(*w));
	struct epoll_event ev;

	if (w == NULL) {
		log_error("loop: out of memory watching fd %d", fd);
		return NULL;
	}
	w->fd = fd;
	w->cb = cb;
	w->ctx = ctx;
	w->events = fd_events(true, false);
	memset(&ev, 0, sizeof(ev));
	ev.events = w->events;
	ev.data.ptr = w;
	if (epoll_ctl(loop_epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
		log_error("loop: cannot watch fd %d: %s", fd, strerror(errno));
		free(w);
		return NULL;
	}
	return w;
}

void
loop_fd_want(struct loop_fd *w, bool readable, bool writable)
{
	struct epoll_event ev;
	uint32_t events = fd_events(readable, writable);

	if (w == NULL || w->removed || events == w->events)
		return;
	memset(&ev, 0, sizeof(ev));
	ev.events = events;
	ev.data.ptr = w;
	/* An interest of none still reports errors and hang-ups: the owner
	 * learns of them when it next reads or writes anyway. */
	if (epoll_ctl(loop_epfd, EPOLL_CTL_MOD, w->fd, &ev) != 0) {
		log_error("loop: cannot change the watch of fd %d: %s", w->fd, strerror(errno));
		return;
	}
	w->events = events;
}

void
loop_fd_remove(struct loop_fd *w)
{
	if (w == NULL || w->removed)
		return;
	/* The fd may already be closed by its owner: then the kernel dropped
	 * it from the set, and EBADF/ENOENT here is expected. */
	(void)epoll_ctl(loop_epfd, EPOLL_CTL_DEL, w->fd, NULL);
	w->removed = true;
	w->next_dead = loop_dead;
	loop_dead = w;
}

/* ---- timers: a binary min-heap ------------------------------------------------ */

static void
heap_place(size_t i, struct loop_timer *t)
{
	heap[i] = t;
	t->slot = i;
}

static void
heap_up(size_t i)
{
	struct loop_timer *t = heap[i];

	while (i > 0) {
		size_t parent = (i - 1) / 2;

		if (heap[parent]->due_ms <= t->due_ms)
			break;
		heap_place(i, heap[parent]);
		i = parent;
	}
	heap_place(i, t);
}

static void
heap_down(size_t i)
{
	struct loop_timer *t = heap[i];

	for (;;) {
		size_t c = 2 * i + 1;

		if (c >= heap_len)
			break;
		if (c + 1 < heap_len && heap[c + 1]->due_ms < heap[c]->due_ms)
			c++;
		if (t->due_ms <= heap[c]->due_ms)
			break;
		heap_place(i, heap[c]);
		i = c;
	}
	heap_place(i, t);
}

static void
heap_remove(struct loop_timer *t)
{
	size_t i = t->slot;
	struct loop_timer *last = heap[--heap_len];

	t->armed = false;
	if (i == heap_len)
		return;
	heap_place(i, last);
	heap_up(i);
	heap_down(last->slot);
}

struct loop_timer *
loop_timer_new(void (*fire)(void *ctx), void *ctx)
{
	struct loop_timer *t = malloc(sizeof(*t));

	if (t != NULL)
		*t = (struct loop_timer){ .fire = fire, .ctx = ctx, .armed = false };
	return t;
}

void
loop_timer_set(struct loop_timer *t, long ms)
{
	if (t == NULL)
		return;
	if (t->armed)
		heap_remove(t);
	if (heap_len == heap_cap) {
		size_t cap = heap_cap != 0 ? heap_cap * 2 : 64;
		struct loop_timer **h = realloc(heap, cap * sizeof(*h));

		if (h == NULL) {
			log_error("loop: out of memory arming a timer");
			return;
		}
		heap = h;
		heap_cap = cap;
	}
	t->due_ms = clock_now_ms() + (ms > 0 ? ms : 0);
	t->turn = loop_turn;
	t->armed = true;
	heap_place(heap_len++, t);
	heap_up(t->slot);
}

void
loop_timer_cancel(struct loop_timer *t)
{
	if (t != NULL && t->armed)
		heap_remove(t);
}

bool
loop_timer_armed(const struct loop_timer *t)
{
	return t != NULL && t->armed;
}

void
loop_timer_free(struct loop_timer *t)
{
	loop_timer_cancel(t);
	free(t);
}

/* Fires the timers due at the start of the turn. A timer (re-)armed during
 * this turn waits for the next one, so a callback that re-arms itself for
 * 0 ms cannot starve the descriptors. */
static void
timers_run(void)
{
	int64_t now = clock_now_ms();

	loop_turn++;
	while (heap_len > 0 && heap[0]->due_ms <= now && heap[0]->turn != loop_turn) {
		struct loop_timer *t = heap[0];

		heap_remove(t);
		t->fire(t->ctx);
	}
}

static int
timers_wait_ms(void)
{
	int64_t d;

	if (heap_len == 0)
		return WAIT_MAX_MS;
	d = heap[0]->due_ms - clock_now_ms();
	return d <= 0 ? 0 : d > WAIT_MAX_MS ? WAIT_MAX_MS : (int)d;
}

/* ---- posts from other threads ------------------------------------------------ */

bool
loop_epoll_post(void (*fn)(void *arg), void *arg)
{
	struct loop_post *p = malloc(sizeof(*p));
	uint64_t one = 1;
	bool was_empty;

	if (p == NULL)
		return false;
	p->fn = fn;
	p->arg = arg;
	p->next = NULL;
	pthread_mutex_lock(&post_mu);
	was_empty = post_head == NULL;
	if (post_tail != NULL)
		post_tail->next = p;
	else
		post_head = p;
	post_tail = p;
	pthread_mutex_unlock(&post_mu);
	/* One wake-up per batch: the loop takes the whole list at once. */
	if (was_empty && write(loop_wakefd, &one, sizeof(one)) != (ssize_t)sizeof(one) &&
	    errno != EAGAIN)
		log_error("loop: cannot wake the loop: %s", strerror(errno));
	return true;
}

static void
posts_run(void)
{
	struct loop_post *list;
	uint64_t n;

	if (read(loop_wakefd, &n, sizeof(n)) < 0 && errno != EAGAIN)
		log_error("loop: reading the wake-up counter: %s", strerror(errno));
	pthread_mutex_lock(&post_mu);
	list = post_head;
	post_head = post_tail = NULL;
	pthread_mutex_unlock(&post_mu);
	while (list != NULL) {
		struct loop_post *p = list;

		list = p->next;
		p->fn(p->arg);
		free(p);
	}
}

/* ---- the loop ------------------------------------------------------------------ */

bool
loop_epoll_init(void)
{
	struct epoll_event ev;

	if ((loop_epfd = epoll_create1(EPOLL_CLOEXEC)) < 0 ||
	    (loop_wakefd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0) {
		log_error("loop: cannot create: %s", strerror(errno));
		loop_epoll_free();
		return false;
	}
	memset(&ev, 0, sizeof(ev));
	ev.events = EPOLLIN;
	ev.data.ptr = NULL;   /* NULL marks the wake-up descriptor */
	if (epoll_ctl(loop_epfd, EPOLL_CTL_ADD, loop_wakefd, &ev) != 0) {
		log_error("loop: cannot watch the wake-up descriptor: %s", strerror(errno));
		loop_epoll_free();
		return false;
	}
	atomic_store(&loop_stopping, false);
	return true;
}

static void
dead_free(void)
{
	while (loop_dead != NULL) {
		struct loop_fd *w = loop_dead;

		loop_dead = w->next_dead;
		free(w);
	}
}

bool
loop_epoll_run(void)
{
	struct epoll_event events[EVENTS_PER_WAIT];

	atomic_store(&loop_stopping, false);  /* a stop ends one run */
	while (!atomic_load(&loop_stopping)) {
		int n = epoll_wait(loop_epfd, events, EVENTS_PER_WAIT, timers_wait_ms());

		if (n < 0 && errno != EINTR) {
			log_error("loop: epoll_wait: %s", strerror(errno));
			return false;
		}
		for (int i = 0; i < n; i++) {
			struct loop_fd *w = events[i].data.ptr;
			uint32_t e = events[i].events;

			if (w == NULL) {
				posts_run();
				continue;
			}
			if (w->removed)
				continue;
			if (e & (EPOLLERR | EPOLLHUP))
				w->cb(w->ctx, w->fd, true, true);
			else {
				bool rd = (e & (EPOLLIN | EPOLLRDHUP)) != 0 && (w->events & EPOLLIN);
				bool wr = (e & EPOLLOUT) != 0 && (w->events & EPOLLOUT);

				if (rd || wr)
					w->cb(w->ctx, w->fd, rd, wr);
			}
		}
		timers_run();
		dead_free();
	}
	return true;
}

void
loop_epoll_stop(void)
{
	uint64_t one = 1;

	atomic_store(&loop_stopping, true);
	if (loop_wakefd >= 0 && write(loop_wakefd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		log_error("loop: cannot wake the loop: %s", strerror(errno));
}

void
loop_epoll_free(void)
{
	struct loop_post *p;

	dead_free();
	if (loop_epfd >= 0)
		(void)close(loop_epfd);
	if (loop_wakefd >= 0)
		(void)close(loop_wakefd);
	loop_epfd = loop_wakefd = -1;
	free(heap);
	heap = NULL;
	heap_len = heap_cap = 0;
	pthread_mutex_lock(&post_mu);
	while ((p = post_head) != NULL) {
		post_head = p->next;
		free(p);
	}
	post_tail = NULL;
	pthread_mutex_unlock(&post_mu);
}
