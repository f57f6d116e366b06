/* sweep.c: heartbeats of reply owners, and the sweep of the gone ones. */
#include "sweep.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "log.h"
#include "process.h"
#include "spool.h"
#include "store.h"

bool
sweep_owner_dead(const struct store_owner *o, const char *host)
{
	const char *colon = strrchr(o->id, ':'), *h = o->id;
	char *end;
	long pid;
	long long started;

	/* "host:pid", or "kind:host:pid" (a gateway's "gw:host:pid"): host
	 * names hold no colon. */
	for (const char *c = o->id; colon != NULL && c < colon; c++)
		if (*c == ':')
			h = c + 1;
	if (colon == NULL || strlen(host) != (size_t)(colon - h) ||
	    strncmp(h, host, (size_t)(colon - h)) != 0)
		return !o->beating && o->quiet;   /* another host: only its heartbeat says */
	errno = 0;
	pid = strtol(colon + 1, &end, 10);
	if (errno != 0 || end == colon + 1 || *end != '\0' || pid <= 0)
		return !o->beating && o->quiet;
	if (!process_alive((pid_t)pid))
		return true;
	if (o->registered)   /* the pid lives: is it still the same process? */
		return process_start_time((pid_t)pid, &started) && started != o->proc_start;
	/* Alive but never registered: not one of ours once it stays silent
	 * (ours register before their first reply). */
	return !o->beating && o->quiet;
}

long
sweep_run(struct store *st, const char *spool_dir)
{
	struct store_owner *owners = NULL;
	const char **dead = NULL;
	char host[256];
	size_t n = 0, ndead = 0;
	long count = 0, spooled;

	/* Spooled endings first: their owners are gone, and the replies must
	 * end as the clients saw them, not interrupted by the step below. */
	if ((spooled = spool_apply(spool_dir, st)) < 0)
		return -1;
	if (store_owners_list(st, SWEEP_STALE_S, &owners, &n) != STORE_OK)
		return -1;
	if (n > 0 && (dead = calloc(n, sizeof(*dead))) == NULL) {
		store_owners_free(owners, n);
		return -1;
	}
	process_host(host, sizeof(host));
	for (size_t i = 0; i < n; i++)
		if (sweep_owner_dead(&owners[i], host))
			dead[ndead++] = owners[i].id;
	if (store_owners_interrupt(st, dead, ndead, &count) != STORE_OK)
		count = -1;
	else if (count > 0)
		log_warn("sweep: %ld replies of %zu gone owners marked interrupted", count, ndead);
	free(dead);
	store_owners_free(owners, n);
	return count < 0 ? -1 : count + spooled;
}

long
sweep_metrics(struct store *st, int retention_days)
{
	long dropped, chunks;

	/* With it, now and then: chunks of replies no longer in flight (a
	 * batch that raced an ending from elsewhere), which no reader sees. */
	if (store_reply_chunks_sweep(st, &chunks) == STORE_OK && chunks > 0)
		log_info("sweep: %ld chunks of replies no longer in flight deleted", chunks);
	if (store_metrics_maintain(st, retention_days, &dropped) != STORE_OK)
		return -1;
	if (dropped > 0)
		log_info("metrics retention: %ld daily partitions older than %d days dropped",
		    dropped, retention_days);
	return dropped;
}

/* The heartbeat thread's state: one per process. */
static struct {
	pthread_mutex_t  mu;
	pthread_cond_t   cv;
	pthread_t        tid;
	bool             started;
	bool             stop;         /* under mu */
	struct store    *store;        /* the thread's own connection */
	char            *id;
	const char      *kind;
	char             host[256];
	long long        proc_start;
	double           started_s;
	bool             sweep_first;
	char            *spool_dir;    /* for the start-up sweep; may be NULL */
} beat = { .mu = PTHREAD_MUTEX_INITIALIZER };  /* cv: clock_cond_init at each start */

/* Waits s seconds or until stopped; true if stopped. */
static bool
beat_wait(int s)
{
	struct timespec until = clock_deadline((int64_t)s * 1000);
	bool stop;

	pthread_mutex_lock(&beat.mu);
	while (!beat.stop && pthread_cond_timedwait(&beat.cv, &beat.mu, &until) != ETIMEDOUT)
		;
	stop = beat.stop;
	pthread_mutex_unlock(&beat.mu);
	return stop;
}

static void *
beat_main(void *arg)
{
	bool swept = !beat.sweep_first, up = true;

	(void)arg;
	do {
		bool ok = store_process_beat(beat.store, beat.id, beat.host, (long)getpid(), beat.kind,
		    beat.proc_start, beat.started_s) == STORE_OK;

		if (ok && !swept) {
			long n = sweep_run(beat.store, beat.spool_dir);

			swept = n >= 0;
			if (n > 0)
				log_info("start-up sweep: %ld replies ended", n);
		}
		if (ok != up)
			log_info("process %s: heartbeat %s", beat.id, ok ? "back" : "failing, retrying");
		up = ok;
	} while (!beat_wait(up && swept ? SWEEP_BEAT_S : 1));
	return NULL;
}

bool
sweep_beat_start(const char *conninfo, const char *id, const char *kind, bool sweep_first,
    const char *spool_dir)
{
	struct timespec now;

	if (beat.started)
		return false;
	clock_gettime(CLOCK_REALTIME, &now);
	beat.started_s = (double)now.tv_sec + now.tv_nsec / 1e9;
	if (!process_start_time(getpid(), &beat.proc_start)) {
		log_error("cannot read this process's start time from /proc");
		return false;
	}
	process_host(beat.host, sizeof(beat.host));
	beat.kind = strcmp(kind, "gateway") == 0 ? "gateway" : "worker";
	beat.sweep_first = sweep_first;
	beat.stop = false;
	if ((beat.id = strdup(id)) == NULL ||
	    (spool_dir != NULL && (beat.spool_dir = strdup(spool_dir)) == NULL) ||
	    (beat.store = store_new_named(conninfo, 1, "chatd-sweep")) == NULL)
		goto failed;
	if (clock_cond_init(&beat.cv) != 0) {
		log_error("cannot start the heartbeat thread");
		goto failed;
	}
	if (pthread_create(&beat.tid, NULL, beat_main, NULL) != 0) {
		log_error("cannot start the heartbeat thread");
		(void)pthread_cond_destroy(&beat.cv);
		goto failed;
	}
	beat.started = true;
	return true;
failed:
	store_free(beat.store);
	beat.store = NULL;
	free(beat.id);
	beat.id = NULL;
	free(beat.spool_dir);
	beat.spool_dir = NULL;
	return false;
}

void
sweep_beat_stop(void)
{
	if (!beat.started)
		return;
	pthread_mutex_lock(&beat.mu);
	beat.stop = true;
	pthread_cond_signal(&beat.cv);
	pthread_mutex_unlock(&beat.mu);
	if (pthread_join(beat.tid, NULL) != 0)
		log_error("joining the heartbeat thread failed");
	(void)pthread_cond_destroy(&beat.cv);
	(void)store_process_gone(beat.store, beat.id);
	store_free(beat.store);
	beat.store = NULL;
	free(beat.id);
	beat.id = NULL;
	free(beat.spool_dir);
	beat.spool_dir = NULL;
	beat.started = false;
}
