/* live.c: registry of in-flight generations and the cancel listener. */
#include "live.h"

#include <pthread.h>
#include <string.h>

#include "authcache.h"
#include "config.h"
#include "log.h"
#include "store.h"
#include "upstream.h"

static pthread_mutex_t live_mu = PTHREAD_MUTEX_INITIALIZER;
static struct live_gen *live_head;
static int live_n;

void (*live_reply_stored_hook)(const char *reply_id);

static pthread_t listener_tid;
static atomic_bool listener_stop;
static bool listener_running;

void
live_register(struct live_gen *g, const char *reply_id, struct upstream *up)
{
	size_t n = strlen(reply_id);

	if (n >= sizeof(g->reply_id))
		n = sizeof(g->reply_id) - 1;
	memcpy(g->reply_id, reply_id, n);
	g->reply_id[n] = '\0';
	atomic_init(&g->cancel, false);
	atomic_init(&g->followed, false);
	g->upstream = up;
	pthread_mutex_lock(&live_mu);
	g->next = live_head;
	live_head = g;
	live_n++;
	pthread_mutex_unlock(&live_mu);
}

void
live_unregister(struct live_gen *g)
{
	pthread_mutex_lock(&live_mu);
	for (struct live_gen **pp = &live_head; *pp != NULL; pp = &(*pp)->next)
		if (*pp == g) {
			*pp = g->next;
			live_n--;
			break;
		}
	pthread_mutex_unlock(&live_mu);
}

bool
live_cancel(const char *reply_id)
{
	bool found = false;

	pthread_mutex_lock(&live_mu);
	for (struct live_gen *g = live_head; g != NULL; g = g->next)
		if (strcmp(g->reply_id, reply_id) == 0) {
			atomic_store(&g->cancel, true);
			if (g->upstream != NULL)
				upstream_wakeup(g->upstream);
			found = true;
		}
	pthread_mutex_unlock(&live_mu);
	return found;
}

bool
live_follow(const char *reply_id)
{
	bool found = false;

	pthread_mutex_lock(&live_mu);
	for (struct live_gen *g = live_head; g != NULL; g = g->next)
		if (strcmp(g->reply_id, reply_id) == 0) {
			atomic_store(&g->followed, true);
			found = true;
		}
	pthread_mutex_unlock(&live_mu);
	return found;
}

int
live_count(void)
{
	int n;

	pthread_mutex_lock(&live_mu);
	n = live_n;
	pthread_mutex_unlock(&live_mu);
	return n;
}

static void
live_on_notify(void *ctx, const char *channel, const char *payload)
{
	(void)ctx;
	if (channel == NULL)
		authcache_revoke_all(strcmp(payload, "listening") == 0);
	else if (strcmp(channel, "chat_user_gone") == 0)
		authcache_revoke_all(true);
	else if (strcmp(channel, "chat_cancel") == 0 && live_cancel(payload))
		log_info("reply %s: cancelled", payload);
	else if (strcmp(channel, "chat_follow") == 0)
		(void)live_follow(payload);
	else if (strcmp(channel, "chat_reply") == 0 && live_reply_stored_hook != NULL)
		live_reply_stored_hook(payload);
}

static void *
live_listener_main(void *arg)
{
	const struct config *cfg = arg;

	static const char *const channels[] = { "chat_cancel", "chat_follow", "chat_user_gone",
		"chat_reply", NULL };

	store_listen_loop(config_listen_url(cfg), channels, live_on_notify, NULL, &listener_stop);
	return NULL;
}

bool
live_listener_start(const struct config *cfg)
{
	atomic_store(&listener_stop, false);
	if (pthread_create(&listener_tid, NULL, live_listener_main, (void *)cfg) != 0) {
		log_error("cannot start the cancel listener");
		return false;
	}
	listener_running = true;
	return true;
}

void
live_listener_stop(void)
{
	if (!listener_running)
		return;
	atomic_store(&listener_stop, true);
	pthread_join(listener_tid, NULL);
	listener_running = false;
}
