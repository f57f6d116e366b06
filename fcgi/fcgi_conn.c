/* fcgi_conn.c: FastCGI records written non-blocking, coalesced per turn. */
#include "fcgi_conn.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/sockios.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "buf.h"
#include "http.h"
#include "log.h"
#include "loop.h"

#define FCGI_VERSION_1       1
#define FCGI_END_REQUEST     3
#define FCGI_STDOUT          6
#define FCGI_HEADER_LEN      8
#define FCGI_CONTENT_MAX     65535
/* What a client that does not read may leave queued here before it counts
 * as gone: a minute of a fast reply, far above any burst. */
#define FCGI_CONN_OUT_MAX    (4 << 20)
#define FCGI_CONN_READ_CHUNK 4096
/* One write(2) to nginx carries at most this much, cut between events:
 * nginx relays each read of its socket as one piece (over TLS, one record
 * of at most 16 KiB), so a piece that ends inside an event would show the
 * seeds' readers, which split each read on blank lines, half an event. */
#define FCGI_CONN_FRAME_MAX  8192
/* While nginx has not read the previous frame, the next one waits: else
 * one read could take both and end inside an event. Polled this often;
 * only bursts ever wait (paced tokens find the socket drained). */
#define FCGI_CONN_DRAIN_POLL_MS 1
/* An output buffer grown past this (the response's first records, a
 * burst) is freed once drained: a held stream's tokens need a few hundred
 * bytes, and it is held for minutes. */
#define FCGI_CONN_OUT_KEEP   1024
/* A reader this far behind makes the stream pause its upstream (TCP then
 * pushes back on the model API) until it is down to the low-water mark:
 * memory per slow client stays bounded, and nothing is dropped. */
#define FCGI_CONN_HIGH_WATER (256 << 10)
#define FCGI_CONN_LOW_WATER  (64 << 10)

struct fcgi_conn {
	int               fd;
	uint16_t          request_id;
	struct loop_fd   *watch;
	struct buf        out;          /* records not written yet, from out_off */
	size_t            out_off;
	size_t            frame_end;    /* end of the frame being written */
	size_t           *bounds;       /* offsets in out where an event ends */
	size_t            nbounds, bounds_cap;
	size_t            unread;       /* written since nginx was last seen
	                                   having read everything: at most
	                                   this much is still in the socket */
	struct loop_timer *drain_timer; /* waits for nginx to read a frame */
	bool              gone;         /* the client left (or was too slow) */
	bool              ending;       /* finish was called: close once drained */
	bool              want_write;   /* waiting for EPOLLOUT */
	bool              dirty;        /* on the flush list */
	struct fcgi_conn *next_dirty;
	void            (*closed)(void *ctx);
	void             *closed_ctx;
	void            (*resume)(void *arg);  /* throttle's callback, once */
	void             *resume_arg;
};

/* Connections with bytes to write at the end of this turn, and the 0 ms
 * timer that writes them (timers armed during a turn fire after its
 * descriptors, see loop_epoll.c). */
static struct fcgi_conn *dirty_head;
static struct loop_timer *flush_timer;

static void conn_flush_all(void *ctx);

struct fcgi_conn *
fcgi_conn_new(void)
{
	struct fcgi_conn *c = calloc(1, sizeof(*c));

	if (c == NULL)
		return NULL;
	c->fd = -1;
	buf_init(&c->out, FCGI_CONN_OUT_MAX);
	return c;
}

void
fcgi_conn_free_unadopted(struct fcgi_conn *c)
{
	if (c == NULL)
		return;
	buf_free(&c->out);
	free(c);
}

static void
conn_close(struct fcgi_conn *c)
{
	void (*closed)(void *) = c->closed;
	void *ctx = c->closed_ctx;

	loop_fd_remove(c->watch);
	loop_timer_free(c->drain_timer);
	if (c->fd >= 0 && close(c->fd) != 0)
		log_warn("fcgi: close(%d): %s", c->fd, strerror(errno));
	buf_free(&c->out);
	free(c->bounds);
	free(c);
	if (closed != NULL)
		closed(ctx);
}

static void
conn_gone(struct fcgi_conn *c, const char *why)
{
	if (!c->gone)
		log_debug("fcgi: request %u: client gone (%s)", (unsigned)c->request_id, why);
	c->gone = true;
	buf_reset(&c->out);
	c->out_off = c->frame_end = 0;
	c->nbounds = 0;
}

/* Records that an event (or the response) ends at the current end of out.
 * Without room for the mark the events still go, only less finely cut. */
static void
conn_mark_bound(struct fcgi_conn *c)
{
	if (c->nbounds > 0 && c->bounds[c->nbounds - 1] == c->out.len)
		return;
	if (c->nbounds == c->bounds_cap) {
		size_t cap = c->bounds_cap != 0 ? c->bounds_cap * 2 : 16;
		size_t *b = realloc(c->bounds, cap * sizeof(*b));

		if (b == NULL)
			return;
		c->bounds = b;
		c->bounds_cap = cap;
	}
	c->bounds[c->nbounds++] = c->out.len;
}

/* Where the next frame ends: the last event end within FRAME_MAX bytes,
 * or the first event end when one event alone is larger. */
static size_t
conn_next_frame_end(const struct fcgi_conn *c)
{
	size_t limit = c->out_off + FCGI_CONN_FRAME_MAX, end = 0;

	for (size_t i = 0; i < c->nbounds; i++) {
		if (c->bounds[i] <= c->out_off)
			continue;
		if (c->bounds[i] > limit) {
			if (end == 0)
				end = c->bounds[i];
			break;
		}
		end = c->bounds[i];
	}
	return end != 0 ? end : c->out.len;
}

/* Moves what is still to write to the front of the buffer: a client that
 * reads slowly but steadily never lets it drain to empty, and the buffer's
 * limit counts written bytes too. */
static void
conn_compact(struct fcgi_conn *c)
{
	size_t off = c->out_off, kept = 0;

	memmove(c->out.data, c->out.data + off, c->out.len - off);
	c->out.len -= off;
	c->out.data[c->out.len] = '\0';
	for (size_t i = 0; i < c->nbounds; i++)
		if (c->bounds[i] > off)
			c->bounds[kept++] = c->bounds[i] - off;
	c->nbounds = kept;
	c->frame_end = c->frame_end > off ? c->frame_end - off : 0;
	c->out_off = 0;
}

/* True while nginx has not read everything written to it. Asks the
 * kernel only when the bytes that may still be queued and the next frame
 * together could fill more than one frame: together they are still one
 * read for nginx that ends between events, so a paced stream (a token a
 * write, nginx reading each at once) makes one ioctl(2) in many tokens,
 * not one per token. */
static bool
conn_nginx_reading(struct fcgi_conn *c, size_t frame_len)
{
	int queued = 0;

	if (c->unread == 0 || c->unread + frame_len <= FCGI_CONN_FRAME_MAX)
		return false;
	if (ioctl(c->fd, SIOCOUTQ, &queued) != 0 || queued <= 0) {
		c->unread = 0;
		return false;
	}
	c->unread = (size_t)queued;
	return true;
}

/* Writes what is queued, a frame at a time. Returns false once the
 * connection is closed and freed (c is invalid then). */
static bool
conn_write_out(struct fcgi_conn *c)
{
	while (!c->gone && c->out_off < c->out.len) {
		ssize_t n;

		/* A frame is written whole before anything else is decided. */
		if (c->out_off >= c->frame_end) {
			size_t end = conn_next_frame_end(c);

			if (conn_nginx_reading(c, end - c->out_off)) {
				if (!loop_timer_armed(c->drain_timer))
					loop_timer_set(c->drain_timer, FCGI_CONN_DRAIN_POLL_MS);
				break;
			}
			c->frame_end = end;
		}
		n = write(c->fd, c->out.data + c->out_off, c->frame_end - c->out_off);
		if (n > 0) {
			c->out_off += (size_t)n;
			c->unread += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		conn_gone(c, n < 0 ? strerror(errno) : "write returned 0");
	}
	if (!c->gone && c->out_off == c->out.len) {
		if (c->out.cap > FCGI_CONN_OUT_KEEP)
			buf_free(&c->out);
		else
			buf_reset(&c->out);
		c->out_off = c->frame_end = 0;
		c->nbounds = 0;
	} else if (!c->gone && c->out_off >= FCGI_CONN_LOW_WATER)
		conn_compact(c);
	if (c->resume != NULL && (c->gone || c->out.len - c->out_off < FCGI_CONN_LOW_WATER)) {
		void (*resume)(void *) = c->resume;

		c->resume = NULL;
		resume(c->resume_arg);
	}
	if (c->ending && (c->gone || c->out.len == 0)) {
		conn_close(c);
		return false;
	}
	/* Wait for room only inside a frame; between frames the timer waits. */
	bool want = !c->gone && c->out_off < c->frame_end;
	if (want != c->want_write) {
		c->want_write = want;
		loop_fd_want(c->watch, true, want);
	}
	return true;
}

static void
conn_drain_poll(void *ctx)
{
	struct fcgi_conn *c = ctx;

	if (!c->dirty)
		(void)conn_write_out(c);
}

static void
conn_mark_dirty(struct fcgi_conn *c)
{
	if (c->dirty)
		return;
	c->dirty = true;
	c->next_dirty = dirty_head;
	dirty_head = c;
	if (!loop_timer_armed(flush_timer))
		loop_timer_set(flush_timer, 0);
}

static void
conn_flush_all(void *ctx)
{
	struct fcgi_conn *list = dirty_head;

	(void)ctx;
	dirty_head = NULL;
	while (list != NULL) {
		struct fcgi_conn *c = list;

		list = c->next_dirty;
		c->dirty = false;
		(void)conn_write_out(c);
	}
}

static void
conn_ready(void *ctx, int fd, bool readable, bool writable)
{
	struct fcgi_conn *c = ctx;
	char scratch[FCGI_CONN_READ_CHUNK];

	if (readable) {
		/* nginx sends nothing after the request but its end-of-input
		 * record; EOF or an error means it closed: its client left. */
		ssize_t n = read(fd, scratch, sizeof(scratch));

		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
			conn_gone(c, n == 0 ? "closed by nginx" : strerror(errno));
			if (c->ending && !c->dirty) {  /* a dirty one closes at the flush */
				conn_close(c);
				return;
			}
			/* Stop watching: a closed socket stays readable. */
			loop_fd_want(c->watch, false, false);
			c->want_write = false;
			return;
		}
	}
	if (writable && !c->dirty)
		(void)conn_write_out(c);
}

/* Appends one record header for content_len bytes of type. */
static bool
conn_put_header(struct fcgi_conn *c, unsigned char type, size_t content_len)
{
	unsigned char h[FCGI_HEADER_LEN] = {
		FCGI_VERSION_1, type,
		(unsigned char)(c->request_id >> 8), (unsigned char)(c->request_id & 0xff),
		(unsigned char)(content_len >> 8), (unsigned char)(content_len & 0xff),
		0, 0,
	};

	return buf_append(&c->out, (const char *)h, sizeof(h));
}

static bool
conn_io_write(void *ctx, const char *p, size_t n)
{
	struct fcgi_conn *c = ctx;

	if (c->gone)
		return false;
	while (n > 0) {
		size_t part = n > FCGI_CONTENT_MAX ? FCGI_CONTENT_MAX : n;

		/* Out of room: the client has not read for a long while. */
		if (!conn_put_header(c, FCGI_STDOUT, part) || !buf_append(&c->out, p, part)) {
			conn_gone(c, "too slow: output queue full");
			return false;
		}
		p += part;
		n -= part;
	}
	return true;
}

static bool
conn_io_flush(void *ctx)
{
	struct fcgi_conn *c = ctx;

	if (c->gone)
		return false;
	if (c->out.len > c->out_off) {
		conn_mark_bound(c);
		conn_mark_dirty(c);
	}
	return true;
}

static const char *
conn_io_param(void *ctx, const char *name)
{
	(void)ctx;
	(void)name;
	return NULL;  /* the request's parameters stayed with libfcgi */
}

static bool
conn_io_throttle(void *ctx, void (*resume)(void *arg), void *arg)
{
	struct fcgi_conn *c = ctx;

	if (c->gone || c->ending || c->out.len - c->out_off < FCGI_CONN_HIGH_WATER)
		return false;
	c->resume = resume;
	c->resume_arg = arg;
	return true;
}

static void
conn_io_finish(void *ctx)
{
	struct fcgi_conn *c = ctx;
	static const unsigned char end_body[8] = { 0, 0, 0, 0, 0, 0, 0, 0 };

	c->resume = NULL;  /* whoever throttled is done */
	c->ending = true;
	if (!c->gone && !(conn_put_header(c, FCGI_STDOUT, 0) &&
	    conn_put_header(c, FCGI_END_REQUEST, sizeof(end_body)) &&
	    buf_append(&c->out, (const char *)end_body, sizeof(end_body))))
		conn_gone(c, "no room for the end records");
	conn_mark_bound(c);
	conn_mark_dirty(c);
}

bool
fcgi_conn_adopt(struct fcgi_conn *c, int fd, uint16_t request_id, struct http_io *io,
    void (*closed)(void *ctx), void *ctx)
{
	int flags;

	c->fd = fd;
	c->request_id = request_id;
	c->closed = closed;
	c->closed_ctx = ctx;
	if (flush_timer == NULL && (flush_timer = loop_timer_new(conn_flush_all, NULL)) == NULL) {
		log_error("fcgi: out of memory for the flush timer");
		conn_close(c);
		return false;
	}
	if ((c->drain_timer = loop_timer_new(conn_drain_poll, c)) == NULL) {
		log_error("fcgi: out of memory for a connection timer");
		conn_close(c);
		return false;
	}
	if ((flags = fcntl(fd, F_GETFL)) < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) != 0) {
		log_error("fcgi: cannot make fd %d non-blocking: %s", fd, strerror(errno));
		conn_close(c);
		return false;
	}
	if ((c->watch = loop_fd_add(fd, conn_ready, c)) == NULL) {
		conn_close(c);
		return false;
	}
	io->write = conn_io_write;
	io->flush = conn_io_flush;
	io->param = conn_io_param;
	io->detach = NULL;
	io->finish = conn_io_finish;
	io->throttle = conn_io_throttle;
	io->ctx = c;
	return true;
}
