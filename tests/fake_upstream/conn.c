/* conn.c: client connections: reading, request framing, buffered output,
 * closing.
 *
 * Connections are non-blocking; output is buffered and drained on EPOLLOUT;
 * a response held back, a stream's next step and a lingering close all wait
 * on the connection's one timer. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "conn.h"
#include "route.h"
#include "stream.h"
#include "timer.h"

#define IN_MAX		(HEAD_MAX + 16u * 1024u)	/* unparsed input */
#define READ_MIN	4096u
#define LINGER_MS	2000u			/* read-and-discard after SHUT_WR */

static struct conn	*conns;		/* every live connection */
static uint64_t		 conn_ids;

static bool conn_process_input(struct conn *);

static bool
conn_update_events(struct conn *c)
{
	struct epoll_event ev;
	uint32_t want = 0;

	if (!c->rd_eof)
		want |= EPOLLIN;
	if (buf_live(&c->out) > 0)
		want |= EPOLLOUT;
	if (want == c->ev_mask)
		return true;
	memset(&ev, 0, sizeof(ev));
	ev.events = want;
	ev.data.ptr = c;
	if (epoll_ctl(srv.epfd, EPOLL_CTL_MOD, c->fd, &ev) != 0) {
		fprintf(stderr, "fake-upstream: epoll_ctl: %s\n", strerror(errno));
		return false;
	}
	c->ev_mask = want;
	return true;
}

struct conn *
conn_new(int fd)
{
	struct epoll_event ev;
	struct conn *c;

	if ((c = calloc(1, sizeof(*c))) == NULL)
		return NULL;
	c->kind = SRC_CONN;
	c->fd = fd;
	c->id = ++conn_ids;
	c->state = CS_READ;
	c->t_idx = SIZE_MAX;
	memset(&ev, 0, sizeof(ev));
	ev.events = EPOLLIN;
	ev.data.ptr = c;
	if (epoll_ctl(srv.epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
		fprintf(stderr, "fake-upstream: epoll_ctl: %s\n", strerror(errno));
		free(c);
		return NULL;
	}
	c->ev_mask = EPOLLIN;
	c->next = conns;
	if (conns)
		conns->prev = c;
	conns = c;
	return c;
}

void
conn_destroy(struct conn *c)
{
	if (c->state == CS_STREAM)
		stream_end(c, END_ABORTED);
	stream_free(c->stream);
	timer_cancel(c);
	if (c->fd >= 0)
		close(c->fd);
	http_request_reset(&c->req);
	buf_free(&c->in);
	buf_free(&c->out);
	buf_free(&c->deferred);
	if (c->prev)
		c->prev->next = c->next;
	else
		conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	free(c);
}

void
conn_destroy_all(void)
{
	while (conns != NULL)
		conn_destroy(conns);
}

bool
conn_flush(struct conn *c)
{
	ssize_t n;

	while (buf_live(&c->out) > 0) {
		n = send(c->fd, c->out.data + c->out.off, buf_live(&c->out),
		    MSG_NOSIGNAL);
		if (n > 0) {
			c->out.off += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return conn_update_events(c);
		return false;	/* EPIPE, ECONNRESET: the client is gone */
	}
	buf_reset(&c->out);
	if (c->out.cap > 256u * 1024u)
		buf_free(&c->out);	/* do not keep a big reply's buffer */
	if (c->state == CS_DRAIN_CLOSE) {
		if (c->rd_eof)
			return false;
		/* FIN first, then read until the peer closes, so unread
		 * input does not turn our close into an RST that would
		 * destroy the response before the client reads it. */
		if (shutdown(c->fd, SHUT_WR) != 0)
			return false;
		c->state = CS_LINGER;
		if (!timer_arm(c, srv.now + LINGER_MS))
			return false;
	}
	return conn_update_events(c);
}

bool
conn_begin_close(struct conn *c)
{
	c->state = CS_DRAIN_CLOSE;
	return conn_flush(c);
}

bool
conn_response_done(struct conn *c)
{
	if (!c->keep_alive)
		return conn_begin_close(c);
	c->state = CS_READ;
	return conn_flush(c);
}

/* Parses and answers buffered requests while the connection is idle. */
static bool
conn_process_input(struct conn *c)
{
	struct request *r = &c->req;
	size_t skip, end;
	bool ok;
	int st;

	while (c->state == CS_READ) {
		if (!r->head_done) {
			/* Stray CRLFs between requests are allowed. */
			for (skip = 0; skip < c->in.len &&
			    (c->in.data[skip] == '\r' || c->in.data[skip] == '\n'); skip++)
				;
			if (skip > 0) {
				buf_drop_front(&c->in, skip);
				c->scan_off = 0;
			}
			if ((end = http_find_head_end(c)) == 0) {
				if (c->in.len >= HEAD_MAX)
					return http_fail(c, 431,
					    "Request header fields too large");
				return true;
			}
			c->scan_off = 0;
			if (end > HEAD_MAX)
				return http_fail(c, 431, "Request header fields too large");
			st = http_parse_head(r, c->in.data, end);
			buf_drop_front(&c->in, end);
			if (st != 0)
				return http_fail(c, st, st == 413 ?
				    "Request body too large (max 4 MiB)" :
				    "Malformed HTTP request");
			r->head_done = true;
			if (r->expect_continue && !r->http10 &&
			    ((r->body_mode == BODY_LENGTH && c->in.len < r->body_left) ||
			    (r->body_mode == BODY_CHUNKED && c->in.len == 0))) {
				if (!BUF_LIT(&c->out, "HTTP/1.1 100 Continue\r\n\r\n") ||
				    !conn_flush(c))
					return false;
			}
		}
		st = http_read_body(c);
		if (st == 1)
			return true;
		if (st != 0)
			return http_fail(c, st, st == 413 ?
			    "Request body too large (max 4 MiB)" :
			    "Malformed request body");
		ok = route_request(c);
		http_request_reset(r);
		if (!ok)
			return false;
	}
	return true;
}

static bool
conn_on_eof(struct conn *c)
{
	c->rd_eof = true;
	if ((c->state == CS_READ || c->state == CS_DRAIN_CLOSE) &&
	    buf_live(&c->out) > 0) {
		/* A half-closed client still gets what is queued. */
		c->state = CS_DRAIN_CLOSE;
		return conn_update_events(c);
	}
	return false;	/* a stream in progress counts as aborted */
}

/* Reads straight into the body of a Content-Length request: big bodies
 * skip the input buffer. Returns bytes read, 0 at EOF, -1 (errno) else. */
static ssize_t
conn_recv_body(struct conn *c)
{
	struct request *r = &c->req;
	size_t want = r->body_left < 65536 ? r->body_left : 65536;
	ssize_t n;

	if (!buf_reserve_max(&r->body, want, BODY_MAX)) {
		errno = ENOMEM;
		return -1;
	}
	n = recv(c->fd, r->body.data + r->body.len, want, 0);
	if (n > 0) {
		r->body.len += (size_t)n;
		r->body_left -= (size_t)n;
	}
	return n;
}

static bool
conn_on_readable(struct conn *c)
{
	size_t want;
	ssize_t n;
	int rounds;

	for (rounds = 0; rounds < 8; rounds++) {
		if (c->state == CS_READ && c->req.head_done &&
		    c->req.body_mode == BODY_LENGTH && c->req.body_left > 0 &&
		    c->in.len == 0) {
			n = conn_recv_body(c);
		} else {
			want = IN_MAX - c->in.len;
			if (want == 0) {
				if (c->state == CS_LINGER) {
					buf_reset(&c->in);
					continue;
				}
				return false;	/* a busy client flooding us */
			}
			if (want > READ_MIN)
				want = READ_MIN;
			if (!buf_reserve_max(&c->in, want, IN_MAX))
				return false;
			n = recv(c->fd, c->in.data + c->in.len, c->in.cap - c->in.len, 0);
			if (n > 0)
				c->in.len += (size_t)n;
		}
		if (n > 0) {
			if (c->state == CS_LINGER)
				buf_reset(&c->in);
			else if (c->state == CS_READ && !conn_process_input(c))
				return false;
			continue;
		}
		if (n == 0)
			return conn_on_eof(c);
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			break;
		return false;	/* ECONNRESET and friends */
	}
	return true;
}

void
conn_on_event(struct conn *c, uint32_t events)
{
	bool ok = true;

	if (events & (EPOLLERR | EPOLLHUP))
		ok = false;
	if (ok && (events & EPOLLOUT))
		ok = conn_flush(c);
	if (ok && (events & EPOLLIN) && !c->rd_eof)
		ok = conn_on_readable(c);
	if (!ok)
		conn_destroy(c);
}

void
conn_on_timer(struct conn *c)
{
	bool ok = false;

	switch (c->state) {
	case CS_WAIT:
		if (c->defer_drop) {
			c->defer_drop = false;
			c->keep_alive = false;
			buf_free(&c->deferred);
			ok = conn_begin_close(c);
			break;
		}
		ok = buf_append(&c->out, c->deferred.data, c->deferred.len);
		buf_free(&c->deferred);
		ok = ok && conn_response_done(c);
		break;
	case CS_STREAM:
		ok = stream_run(c);
		break;
	case CS_READ:
		ok = true;
		break;
	case CS_DRAIN_CLOSE:
	case CS_LINGER:
		ok = false;	/* linger timeout */
		break;
	}
	if (ok && c->state == CS_READ && buf_live(&c->in) > 0)
		ok = conn_process_input(c);
	if (!ok)
		conn_destroy(c);
}
