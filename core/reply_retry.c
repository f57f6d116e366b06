/* reply_retry.c: the thread that stores reply endings once the database is back. */
#include "reply_retry.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "log.h"
#include "spool.h"
#include "store.h"

#define REPLY_RETRY_S 600   /* how long ends are retried: past that a stale
                             * 'streaming' row is reported interrupted anyway */

struct pending {
	struct store      *store;
	char              *reply_id;
	char              *text;          /* content not stored yet, or NULL */
	size_t             len;
	char              *chunk_ends;    /* "{…}" for text, or NULL */
	enum reply_status  status;
	char              *model;
	char              *error_code;
	long               prompt_tokens, completion_tokens;
	int64_t            since_us;
	struct pending    *next;
};

static pthread_mutex_t pending_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t pending_cv;   /* clock_cond_init, when the thread starts */
static struct pending *pending_head;
static pthread_once_t pending_once = PTHREAD_ONCE_INIT;
static bool pending_thread_ok;
static pthread_t pending_tid;
static bool pending_stop;           /* under pending_mu: reply_retry_stop was called */
static char *pending_spool_dir;     /* set before the stop is announced */
static int64_t pending_flush_until; /* under pending_mu: when stopping, the last try */

static void
pending_free(struct pending *p)
{
	free(p->reply_id);
	free(p->text);
	free(p->chunk_ends);
	free(p->model);
	free(p->error_code);
	free(p);
}

/* Puts p back on the queue; the caller does not hold the lock. */
static void
pending_push(struct pending *p)
{
	pthread_mutex_lock(&pending_mu);
	p->next = pending_head;
	pending_head = p;
	pthread_cond_signal(&pending_cv);
	pthread_mutex_unlock(&pending_mu);
}

static struct reply_end
pending_end(const struct pending *p)
{
	return (struct reply_end){
		.reply_id = p->reply_id, .text = p->text, .len = p->len, .chunk_ends = p->chunk_ends,
		.status = p->status, .model = p->model, .error_code = p->error_code,
		.prompt_tokens = p->prompt_tokens, .completion_tokens = p->completion_tokens,
	};
}

/* Tries once; true when the reply is stored whole. */
static bool
pending_try(struct pending *p)
{
	struct reply_end end = pending_end(p);

	return store_reply_end(p->store, &end) == STORE_OK;
}

/* Waits until the queue holds something, then a second more (the database
 * just failed), unless the process stops. Called and returns with
 * pending_mu held. */
static void
pending_wait(void)
{
	struct timespec until;

	while (pending_head == NULL && !pending_stop)
		pthread_cond_wait(&pending_cv, &pending_mu);
	until = clock_deadline(1000);
	while (!pending_stop && pthread_cond_timedwait(&pending_cv, &pending_mu, &until) != ETIMEDOUT)
		;
}

static void *
pending_main(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&pending_mu);
	for (;;) {
		struct pending *list;
		bool stopping;

		pending_wait();
		stopping = pending_stop;
		if (stopping && (pending_head == NULL || clock_now_us() >= pending_flush_until))
			break;
		list = pending_head;
		pending_head = NULL;
		pthread_mutex_unlock(&pending_mu);
		while (list != NULL) {
			struct pending *p = list;

			list = p->next;
			if (pending_try(p)) {
				log_info("reply %s: stored after the database came back", p->reply_id);
				pending_free(p);
			} else if (clock_now_us() - p->since_us > (int64_t)REPLY_RETRY_S * 1000000) {
				log_error("reply %s: final status %s not stored", p->reply_id,
				    reply_status_name(p->status));
				pending_free(p);
			} else
				pending_push(p);
		}
		pthread_mutex_lock(&pending_mu);
		if (stopping && pending_head != NULL) {
			/* Retry soon, but not in a tight loop. */
			struct timespec pause = { 0, 200 * 1000000L };

			pthread_mutex_unlock(&pending_mu);
			(void)nanosleep(&pause, NULL);
			pthread_mutex_lock(&pending_mu);
		}
	}
	/* What the database still refuses goes to the spool, which the sweep
	 * stores once it can; failing that, the reply stays 'streaming' with
	 * the text stored so far, and the sweep interrupts it. */
	while (pending_head != NULL) {
		struct pending *p = pending_head;
		struct reply_end end = pending_end(p);

		pending_head = p->next;
		if (spool_put(pending_spool_dir, &end))
			log_warn("reply %s: final status %s spooled: the sweep stores it once the database is back",
			    p->reply_id, reply_status_name(p->status));
		else
			log_error("reply %s: final status %s lost: left to the sweep with the text stored so far",
			    p->reply_id, reply_status_name(p->status));
		pending_free(p);
	}
	pthread_mutex_unlock(&pending_mu);
	return NULL;
}

static void
pending_start(void)
{
	pthread_mutex_lock(&pending_mu);
	if (!pending_stop && clock_cond_init(&pending_cv) == 0)
		pending_thread_ok = pthread_create(&pending_tid, NULL, pending_main, NULL) == 0;
	pthread_mutex_unlock(&pending_mu);
}

void
reply_retry_stop(int flush_ms, const char *spool_dir)
{
	bool started;

	pthread_mutex_lock(&pending_mu);
	free(pending_spool_dir);
	pending_spool_dir = spool_dir != NULL ? strdup(spool_dir) : NULL;
	started = pending_thread_ok;
	pending_stop = true;
	pending_flush_until = clock_now_us() + (int64_t)flush_ms * 1000;
	if (started)   /* else nobody waits, and pending_cv was never made */
		pthread_cond_broadcast(&pending_cv);
	pthread_mutex_unlock(&pending_mu);
	if (started && pthread_join(pending_tid, NULL) != 0)
		log_error("joining the reply retry thread failed");
	pthread_mutex_lock(&pending_mu);
	free(pending_spool_dir);
	pending_spool_dir = NULL;
	pthread_mutex_unlock(&pending_mu);
}

static char *
dup_or_null(const char *s)
{
	return s != NULL ? strdup(s) : NULL;
}

bool
reply_retry_enqueue(struct store *store, const struct reply_end *end)
{
	struct pending *p;

	pthread_once(&pending_once, pending_start);
	if ((p = calloc(1, sizeof(*p))) == NULL)
		return false;
	p->store = store;
	p->since_us = clock_now_us();
	p->reply_id = strdup(end->reply_id);
	p->model = dup_or_null(end->model);
	p->error_code = dup_or_null(end->error_code);
	p->status = end->status;
	p->prompt_tokens = end->prompt_tokens;
	p->completion_tokens = end->completion_tokens;
	if (end->text != NULL && end->len > 0) {
		p->len = end->len;
		if ((p->text = malloc(p->len)) != NULL)
			memcpy(p->text, end->text, p->len);
		p->chunk_ends = dup_or_null(end->chunk_ends);
	}
	if (p->reply_id == NULL || (p->len > 0 && (p->text == NULL || p->chunk_ends == NULL))) {
		pending_free(p);
		return false;
	}
	pthread_mutex_lock(&pending_mu);
	if (!pending_thread_ok || pending_stop) {
		/* No thread, or the process is stopping: nobody would store it. */
		pthread_mutex_unlock(&pending_mu);
		pending_free(p);
		return false;
	}
	p->next = pending_head;
	pending_head = p;
	pthread_cond_signal(&pending_cv);
	pthread_mutex_unlock(&pending_mu);
	log_warn("reply %s: database unavailable, its end will be stored when it is back",
	    p->reply_id);
	return true;
}
