/* loop_lws.c: foreign descriptors and timers on the libwebsockets loop. */
#include "loop_lws.h"

#include <errno.h>
#include <fcntl.h>
#include <libwebsockets.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

/* A watched descriptor. It lives until both its owner removed it and
 * libwebsockets closed the adopted dup (whichever comes last frees it). */
struct loop_fd {
	int                  fd;          /* the owner's descriptor */
	struct lws          *wsi;         /* the adopted dup; NULL once closed */
	loop_fd_cb           cb;
	void                *ctx;
	bool                 readable, writable;
	bool                 removed;     /* the owner let go */
	lws_sorted_usec_list_t rearm;     /* re-asks POLLOUT after a writable event */
};

struct loop_timer {
	lws_sorted_usec_list_t sul;       /* first: the callback gets its address */
	void                 (*fire)(void *ctx);
	void                  *ctx;
	bool                   armed;
};

static struct lws_context *loop_ctx;
static struct lws_vhost *loop_vh;

static int loop_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user,
    void *in, size_t len);

static const struct lws_protocols loop_proto = {
	.name = LOOP_PROTOCOL_NAME,
	.callback = loop_callback,
	.per_session_data_size = 0,
	.rx_buffer_size = 0,
};

const struct lws_protocols *
loop_protocol(void)
{
	return &loop_proto;
}

void
loop_setup(struct lws_context *ctx, struct lws_vhost *vh)
{
	loop_ctx = ctx;
	loop_vh = vh;
}

static void
fd_rearm(lws_sorted_usec_list_t *sul)
{
	struct loop_fd *w = lws_container_of(sul, struct loop_fd, rearm);

	if (w->wsi != NULL && !w->removed && w->writable)
		lws_callback_on_writable(w->wsi);
}

static int
loop_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len)
{
	struct loop_fd *w = lws_get_opaque_user_data(wsi);

	(void)user;
	(void)in;
	(void)len;
	switch (reason) {
	case LWS_CALLBACK_RAW_RX_FILE:
		if (w != NULL && !w->removed)
			w->cb(w->ctx, w->fd, true, false);
		return 0;
	case LWS_CALLBACK_RAW_WRITEABLE_FILE:
		if (w != NULL && !w->removed && w->writable) {
			w->cb(w->ctx, w->fd, false, true);
			/* POLLOUT is one-shot here, and lws clears it after this
			 * callback returns: ask again from outside it. */
			if (!w->removed && w->writable && w->wsi != NULL)
				lws_sul_schedule(loop_ctx, 0, &w->rearm, fd_rearm, 1);
		}
		return 0;
	case LWS_CALLBACK_RAW_CLOSE_FILE:
		if (w == NULL)
			return 0;
		lws_set_opaque_user_data(wsi, NULL);
		lws_sul_cancel(&w->rearm);
		w->wsi = NULL;
		if (w->removed)
			free(w);
		else
			/* Closed under the owner (hang-up): let it find out. */
			w->cb(w->ctx, w->fd, true, true);
		return 0;
	default:
		return 0;
	}
}

struct loop_fd *
loop_fd_add(int fd, loop_fd_cb cb, void *ctx)
{
	struct loop_fd *w = calloc(1, sizeof(*w));
	lws_adopt_desc_t info;
	int dupfd;

	if (w == NULL) {
		log_error("loop: out of memory watching fd %d", fd);
		return NULL;
	}
	if ((dupfd = fcntl(fd, F_DUPFD_CLOEXEC, 0)) < 0) {
		log_error("loop: cannot duplicate fd %d: %s", fd, strerror(errno));
		free(w);
		return NULL;
	}
	w->fd = fd;
	w->cb = cb;
	w->ctx = ctx;
	w->readable = true;
	memset(&info, 0, sizeof(info));
	info.vh = loop_vh;
	info.type = LWS_ADOPT_RAW_FILE_DESC;
	info.fd.filefd = dupfd;
	info.vh_prot_name = LOOP_PROTOCOL_NAME;
	info.opaque = w;
	/* On failure lws closes dupfd itself. */
	if ((w->wsi = lws_adopt_descriptor_vhost_via_info(&info)) == NULL) {
		log_error("loop: cannot adopt fd %d", fd);
		free(w);
		return NULL;
	}
	return w;
}

void
loop_fd_want(struct loop_fd *w, bool readable, bool writable)
{
	if (w->removed || w->wsi == NULL)
		return;
	if (readable != w->readable)
		(void)lws_rx_flow_control(w->wsi, readable ? 1 : 0);
	w->readable = readable;
	w->writable = writable;
	if (writable)
		lws_callback_on_writable(w->wsi);
}

void
loop_fd_remove(struct loop_fd *w)
{
	if (w == NULL || w->removed)
		return;
	w->removed = true;
	if (w->wsi == NULL) {
		free(w);
		return;
	}
	lws_sul_cancel(&w->rearm);
	/* The owner may already reuse the descriptor number for another
	 * socket: stop polling this one at once, so it cannot spin. */
	(void)lws_rx_flow_control(w->wsi, 0);
	/* Closed at the next loop turn, which also closes the dup: never
	 * synchronously, as we may be inside this wsi's own callback. */
	lws_set_timeout(w->wsi, PENDING_TIMEOUT_KILLED_BY_PARENT, LWS_TO_KILL_ASYNC);
}

static void
timer_fire(lws_sorted_usec_list_t *sul)
{
	struct loop_timer *t = lws_container_of(sul, struct loop_timer, sul);

	t->armed = false;
	t->fire(t->ctx);
}

struct loop_timer *
loop_timer_new(void (*fire)(void *ctx), void *ctx)
{
	struct loop_timer *t = calloc(1, sizeof(*t));

	if (t == NULL)
		return NULL;
	t->fire = fire;
	t->ctx = ctx;
	return t;
}

void
loop_timer_set(struct loop_timer *t, long ms)
{
	t->armed = true;
	lws_sul_schedule(loop_ctx, 0, &t->sul, timer_fire,
	    ms > 0 ? (lws_usec_t)ms * LWS_US_PER_MS : 1);
}

void
loop_timer_cancel(struct loop_timer *t)
{
	if (t == NULL)
		return;
	t->armed = false;
	lws_sul_cancel(&t->sul);
}

bool
loop_timer_armed(const struct loop_timer *t)
{
	return t->armed;
}

void
loop_timer_free(struct loop_timer *t)
{
	if (t == NULL)
		return;
	lws_sul_cancel(&t->sul);
	free(t);
}
