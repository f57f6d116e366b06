/* upstream_loop.c: libcurl's sockets and timer on the process's loop. */
#include "upstream_loop.h"

#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "loop.h"
#include "upstream.h"
#include "upstream_multi.h"

static struct upstream_multi *multi;
static struct loop_timer *curl_timer;  /* libcurl's own timeout */
static struct loop_timer *tick_timer;
static struct loop_fd **fdmap;         /* curl's fd -> its watch */
static size_t fdmap_len;

static void
ul_ready(void *ctx, int fd, bool readable, bool writable)
{
	(void)ctx;
	if (multi != NULL)
		upstream_multi_socket(multi, fd, readable, writable);
}

/* Grows the fd map to hold fd. False when out of memory. */
static bool
fdmap_reserve(int fd)
{
	size_t len = fdmap_len != 0 ? fdmap_len : 256;
	struct loop_fd **m;

	if ((size_t)fd < fdmap_len)
		return true;
	while (len <= (size_t)fd)
		len *= 2;
	if ((m = realloc(fdmap, len * sizeof(*m))) == NULL)
		return false;
	memset(m + fdmap_len, 0, (len - fdmap_len) * sizeof(*m));
	fdmap = m;
	fdmap_len = len;
	return true;
}

static void
ul_watch(void *ctx, int fd, bool readable, bool writable)
{
	(void)ctx;
	if (fd < 0)
		return;
	if (!fdmap_reserve(fd)) {
		log_error("upstream: out of memory watching fd %d", fd);
		return;
	}
	/* If the watch cannot be made, the transfer runs into its timeouts. */
	if (fdmap[fd] == NULL && (fdmap[fd] = loop_fd_add(fd, ul_ready, NULL)) == NULL)
		return;
	loop_fd_want(fdmap[fd], readable, writable);
}

static void
ul_unwatch(void *ctx, int fd)
{
	(void)ctx;
	if (fd < 0 || (size_t)fd >= fdmap_len || fdmap[fd] == NULL)
		return;
	loop_fd_remove(fdmap[fd]);
	fdmap[fd] = NULL;
}

static void
ul_timer(void *ctx, long timeout_ms)
{
	(void)ctx;
	if (timeout_ms < 0)
		loop_timer_cancel(curl_timer);
	else
		loop_timer_set(curl_timer, timeout_ms);
}

static void
ul_timeout(void *ctx)
{
	(void)ctx;
	if (multi != NULL)
		upstream_multi_timeout(multi);
}

static void
ul_tick(void *ctx)
{
	(void)ctx;
	if (multi == NULL)
		return;
	upstream_multi_tick(multi);
	loop_timer_set(tick_timer, UPSTREAM_LOOP_TICK_MS);
}

struct upstream_multi *
upstream_loop_start(const struct config *cfg)
{
	struct upstream_multi_hooks hooks = { ul_watch, ul_unwatch, ul_timer, NULL };

	if ((curl_timer = loop_timer_new(ul_timeout, NULL)) == NULL ||
	    (tick_timer = loop_timer_new(ul_tick, NULL)) == NULL ||
	    (multi = upstream_multi_new(cfg, &hooks)) == NULL) {
		log_error("cannot create the upstream driver");
		upstream_loop_stop();
		return NULL;
	}
	loop_timer_set(tick_timer, UPSTREAM_LOOP_TICK_MS);
	return multi;
}

struct upstream_multi *
upstream_loop_multi(void)
{
	return multi;
}

void
upstream_loop_stop(void)
{
	struct upstream_multi *m = multi;

	/* Aborting runs the done callbacks, which may start nothing new: the
	 * driver is gone for them already. */
	multi = NULL;
	upstream_multi_free(m);
	loop_timer_free(curl_timer);
	loop_timer_free(tick_timer);
	curl_timer = tick_timer = NULL;
	for (size_t i = 0; i < fdmap_len; i++)
		loop_fd_remove(fdmap[i]);
	free(fdmap);
	fdmap = NULL;
	fdmap_len = 0;
}
