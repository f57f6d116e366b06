/* evloop.c: libcurl multi-socket driven by epoll. */
#include "evloop.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "clock.h"

#define EVLOOP_EVENTS 512

/* CURLMOPT_SOCKETFUNCTION: mirrors libcurl's interest in epoll. The fd
 * itself is the epoll key; libcurl's per-socket pointer is not needed. */
static int
evloop_on_socket(CURL *e, curl_socket_t fd, int what, void *ud, void *sockp)
{
	struct evloop *l = ud;
	struct epoll_event ev = { .data.fd = fd };

	(void)e;
	(void)sockp;
	if (what == CURL_POLL_REMOVE) {
		/* The socket may already be closed: ignore ENOENT/EBADF. */
		epoll_ctl(l->epfd, EPOLL_CTL_DEL, fd, NULL);
		return 0;
	}
	if (what == CURL_POLL_IN || what == CURL_POLL_INOUT)
		ev.events |= EPOLLIN;
	if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT)
		ev.events |= EPOLLOUT;
	if (epoll_ctl(l->epfd, EPOLL_CTL_MOD, fd, &ev) == -1) {
		if (errno != ENOENT || epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev) == -1) {
			fprintf(stderr, "loadtest: epoll_ctl fd %d: %s\n", (int)fd, strerror(errno));
			return -1;
		}
	}
	return 0;
}

/* CURLMOPT_TIMERFUNCTION: only records the deadline; libcurl must not be
 * re-entered from its own callback. */
static int
evloop_on_timer(CURLM *m, long timeout_ms, void *ud)
{
	struct evloop *l = ud;

	(void)m;
	l->timer_at = timeout_ms < 0 ? -1 : clock_us() + (int64_t)timeout_ms * 1000;
	return 0;
}

bool
evloop_init(struct evloop *l, evloop_done_fn on_done, void *ctx, long multiplex,
    long max_conns)
{
	memset(l, 0, sizeof(*l));
	l->epfd = -1;
	l->timer_at = -1;
	l->on_done = on_done;
	l->ctx = ctx;
	if ((l->epfd = epoll_create1(EPOLL_CLOEXEC)) == -1) {
		fprintf(stderr, "loadtest: epoll_create1: %s\n", strerror(errno));
		return false;
	}
	if ((l->multi = curl_multi_init()) == NULL) {
		fprintf(stderr, "loadtest: curl_multi_init failed\n");
		return false;
	}
	curl_multi_setopt(l->multi, CURLMOPT_SOCKETFUNCTION, evloop_on_socket);
	curl_multi_setopt(l->multi, CURLMOPT_SOCKETDATA, l);
	curl_multi_setopt(l->multi, CURLMOPT_TIMERFUNCTION, evloop_on_timer);
	curl_multi_setopt(l->multi, CURLMOPT_TIMERDATA, l);
	curl_multi_setopt(l->multi, CURLMOPT_PIPELINING,
	    multiplex > 0 ? (long)CURLPIPE_MULTIPLEX : (long)CURLPIPE_NOTHING);
	if (multiplex > 0)
		curl_multi_setopt(l->multi, CURLMOPT_MAX_HOST_CONNECTIONS, multiplex);
	if (max_conns > 0)
		curl_multi_setopt(l->multi, CURLMOPT_MAXCONNECTS, max_conns);
	return true;
}

bool
evloop_add(struct evloop *l, CURL *e)
{
	CURLMcode mc = curl_multi_add_handle(l->multi, e);

	if (mc != CURLM_OK) {
		fprintf(stderr, "loadtest: curl_multi_add_handle: %s\n", curl_multi_strerror(mc));
		return false;
	}
	l->handles++;
	return true;
}

void
evloop_remove(struct evloop *l, CURL *e)
{
	if (curl_multi_remove_handle(l->multi, e) == CURLM_OK)
		l->handles--;
}

/* Reports finished transfers. Each is removed before on_done sees it. */
static void
evloop_harvest(struct evloop *l)
{
	CURLMsg *msg;
	int left;

	while ((msg = curl_multi_info_read(l->multi, &left)) != NULL) {
		CURL *e = msg->easy_handle;
		CURLcode rc = msg->data.result;

		if (msg->msg != CURLMSG_DONE)
			continue;
		/* msg is invalid after the removal: e and rc were copied. */
		curl_multi_remove_handle(l->multi, e);
		l->handles--;
		l->on_done(l->ctx, e, rc);
	}
}

bool
evloop_step(struct evloop *l, int64_t wait_us)
{
	struct epoll_event evs[EVLOOP_EVENTS];
	int64_t now = clock_us(), until = now + (wait_us > 0 ? wait_us : 0);
	int timeout_ms, n, running;

	if (l->timer_at >= 0 && l->timer_at < until)
		until = l->timer_at;
	/* Round up: waking a little late is harmless, spinning is not. */
	timeout_ms = until <= now ? 0 : (int)((until - now + 999) / 1000);
	n = epoll_wait(l->epfd, evs, EVLOOP_EVENTS, timeout_ms);
	if (n == -1) {
		if (errno == EINTR)
			return true;
		fprintf(stderr, "loadtest: epoll_wait: %s\n", strerror(errno));
		return false;
	}
	for (int i = 0; i < n; i++) {
		int mask = 0;

		if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLRDHUP))
			mask |= CURL_CSELECT_IN;
		if (evs[i].events & EPOLLOUT)
			mask |= CURL_CSELECT_OUT;
		if (evs[i].events & EPOLLERR)
			mask |= CURL_CSELECT_ERR;
		curl_multi_socket_action(l->multi, evs[i].data.fd, mask, &running);
	}
	if (l->timer_at >= 0 && clock_us() >= l->timer_at) {
		l->timer_at = -1;
		curl_multi_socket_action(l->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	}
	evloop_harvest(l);
	return true;
}

void
evloop_free(struct evloop *l)
{
	if (l == NULL)
		return;
	if (l->multi != NULL)
		curl_multi_cleanup(l->multi);
	if (l->epfd != -1)
		close(l->epfd);
	l->multi = NULL;
	l->epfd = -1;
}
