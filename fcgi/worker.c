/* worker.c: the FastCGI worker: accept threads for the short part of each
 * request, one event loop (this process's main thread) for every stream,
 * request mapping, graceful stop. */
#include "worker.h"

#include <errno.h>
#include <fcgiapp.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <linux/sockios.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include "app.h"
#include "clock.h"
#include "config.h"
#include "fcgi_conn.h"
#include "follow.h"
#include "http.h"
#include "live.h"
#include "loop.h"
#include "loop_epoll.h"
#include "metrics.h"
#include "log.h"
#include "process.h"
#include "reply_retry.h"
#include "store.h"
#include "sweep.h"
#include "upstream.h"
#include "upstream_loop.h"
#include "workq.h"

#define THREAD_STACK_SIZE (512 * 1024)
/* Threads that store the loop's replies: batches are small and PostgreSQL
 * takes thousands a second, so two keep up while one waits on a lock. */
#define WORKER_STORE_THREADS 2
/* At exit, how long reply endings still queued for the database may wait
 * for it (inside the master's drain deadline); the rest is the sweep's. */
#define WORKER_RETRY_FLUSH_MS 2000

struct worker;

struct worker_thread {
	struct worker  *w;
	pthread_t       tid;
	atomic_bool     busy;      /* serving a request (do not interrupt) */
	bool            started;
	int             listen_fd; /* a copy: the loop closes w->listen_fd at a stop */
};

struct worker {
	const struct config  *cfg;
	int                   listen_fd;
	struct store         *store;
	char                  worker_id[300];   /* host:pid */
	atomic_bool           stopping;
	atomic_long           served;
	int                   slot;             /* in the metrics scoreboard */
	struct worker_thread *threads;
	atomic_int            threads_running;  /* accept threads not yet returned */
	atomic_int            handoffs_pending; /* streams posted, not yet on the loop */
	int                   loop_streams;     /* adopted connections (loop thread) */
	int                   loop_streams_peak; /* the most since the last trim */
	struct loop_timer    *drain_timer;
	struct workq         *workq;            /* the loop's store writers */
	struct loop_fd       *signal_watch;
	int                   signal_fd;
};

/* A stream on its way from an accept thread to the loop: reserved by the
 * HTTP layer's detach, completed once the handler returned. */
struct handoff {
	struct worker    *w;
	struct fcgi_conn *conn;
	int               fd;
	uint16_t          request_id;
	struct request   *loop_req;
	void            (*start)(void *job);
	void             *job;
};

/* SIGUSR1 interrupts accept() in idle threads during a stop; it must not
 * restart the call, so it has a (no-op) handler without SA_RESTART. */
static void
worker_on_wake(int sig)
{
	(void)sig;
}

struct fcgi_io {
	FCGX_Request   *req;
	int64_t         last_flush_us;   /* 0 before the first flush */
	struct worker  *w;
	struct handoff *handoff;         /* reserved by fcgi_detach, or NULL */
};

static bool
fcgi_write(void *ctx, const char *p, size_t n)
{
	FCGX_Request *req = ((struct fcgi_io *)ctx)->req;

	return n == 0 || FCGX_PutStr(p, (int)n, req->out) == (int)n;
}

/* Unbuffered, nginx relays each read of its socket as it comes. When the
 * upstream delivers a burst, many events queue up in the socket; one nginx
 * read (and, over TLS, one 16 KiB record) may then end inside an event, and
 * clients that split their reads on blank lines (the seeds' own) would see
 * half of one. So when events follow each other closely (a burst), the
 * writer waits, briefly, until nginx has read the previous one. Paced
 * streams (the normal case, tokens milliseconds apart) never wait, which
 * keeps the cost off the hot path; a slow client stops nginx reading, so
 * the wait gives up after DRAIN_WAIT_ROUNDS. */
#define BURST_GAP_US      2000
#define DRAIN_WAIT_ROUNDS 20
#define DRAIN_WAIT_NS     100000L

static void
fcgi_wait_drained(int fd)
{
	struct timespec pause = { 0, DRAIN_WAIT_NS };

	for (int i = 0; i < DRAIN_WAIT_ROUNDS; i++) {
		int queued = 0;

		if (ioctl(fd, SIOCOUTQ, &queued) != 0 || queued <= 0)
			return;
		(void)nanosleep(&pause, NULL);
	}
}

static bool
fcgi_flush(void *ctx)
{
	struct fcgi_io *io = ctx;
	int64_t now;

	/* FCGX_PutStr succeeds into the buffer after the client left; the
	 * flush is where EPIPE shows. */
	if (FCGX_FFlush(io->req->out) != 0)
		return false;
	now = clock_now_us();
	if (io->last_flush_us != 0 && now - io->last_flush_us < BURST_GAP_US) {
		fcgi_wait_drained(io->req->ipcFd);
		now = clock_now_us();
	}
	io->last_flush_us = now;
	return true;
}

static const char *
fcgi_param(void *ctx, const char *name)
{
	FCGX_Request *req = ((struct fcgi_io *)ctx)->req;

	return FCGX_GetParam(name, req->envp);
}

static bool
fcgi_detach(void *ctx, struct request *loop_req, void (*start)(void *job), void *job)
{
	struct fcgi_io *io = ctx;
	struct handoff *h;

	if (io->handoff != NULL || (h = calloc(1, sizeof(*h))) == NULL)
		return false;
	if ((h->conn = fcgi_conn_new()) == NULL) {
		free(h);
		return false;
	}
	h->w = io->w;
	h->loop_req = loop_req;
	h->start = start;
	h->job = job;
	io->handoff = h;
	return true;
}

static void
handoff_free(struct handoff *h)
{
	if (h == NULL)
		return;
	fcgi_conn_free_unadopted(h->conn);
	free(h);
}

/* A response whose connection could not be adopted: the turn still runs to
 * its end (and is stored), with nobody to write to. */
static bool gone_write(void *ctx, const char *p, size_t n) { (void)ctx; (void)p; (void)n; return false; }
static bool gone_flush(void *ctx) { (void)ctx; return false; }
static const char *gone_param(void *ctx, const char *name) { (void)ctx; (void)name; return NULL; }
static void gone_finish(void *ctx) { (void)ctx; }

/* A worker whose streams all ended after a spike of at least this many
 * gives their memory back (see worker_stream_closed). */
#define WORKER_TRIM_AFTER_PEAK 64

static void
worker_stream_closed(void *ctx)
{
	struct worker *w = ctx;

	w->loop_streams--;
	metrics_worker_streams(w->slot, -1);
	/* glibc keeps freed heap in every arena (the loop's and the accept
	 * threads'): without a trim a worker holds its peak (some 350 MiB
	 * after 10,000 streams) until it is recycled. Only after a real spike:
	 * a trim walks every arena. */
	if (w->loop_streams == 0 && w->loop_streams_peak >= WORKER_TRIM_AFTER_PEAK) {
		w->loop_streams_peak = 0;
		(void)malloc_trim(0);   /* returns whether memory was released */
	}
}

/* Loop thread: the accept thread let go of the connection. */
static void
worker_adopt(void *arg)
{
	struct handoff *h = arg;
	struct worker *w = h->w;
	struct request *lr = h->loop_req;

	if (++w->loop_streams > w->loop_streams_peak)
		w->loop_streams_peak = w->loop_streams;
	metrics_worker_streams(w->slot, 1);
	atomic_fetch_sub(&w->handoffs_pending, 1);
	if (!fcgi_conn_adopt(h->conn, h->fd, h->request_id, &lr->io, worker_stream_closed, w)) {
		lr->io = (struct http_io){ .write = gone_write, .flush = gone_flush,
		    .param = gone_param, .finish = gone_finish };
		lr->client_gone = true;
	}
	h->conn = NULL;  /* the loop's now, adopted or closed */
	h->start(h->job);
	free(h);
}

/* Loop thread: a reply followed here has more stored. */
static void
worker_follow_wake(void *arg)
{
	char *reply_id = arg;

	follow_wake(reply_id);
	free(reply_id);
}

/* Listener thread (NOTIFY chat_reply): wakes the reply's followers on the
 * loop. Without memory they wake at their next poll. */
static void
worker_reply_stored(const char *reply_id)
{
	char *id = strdup(reply_id);

	if (id != NULL && !loop_epoll_post(worker_follow_wake, id))
		free(id);
}

/* Accept thread, after the handler detached r: libfcgi frees the request
 * but keeps the connection, which the loop takes over. */
static void
worker_handoff(struct worker *w, FCGX_Request *fr, struct handoff *h)
{
	h->fd = fr->ipcFd;
	h->request_id = (uint16_t)fr->requestId;
	FCGX_Free(fr, 0);
	fr->ipcFd = -1;  /* or the next FCGX_Accept_r would close the loop's fd */
	atomic_fetch_add(&w->handoffs_pending, 1);
	if (!loop_epoll_post(worker_adopt, h)) {
		/* XXX: out of memory for a list node: the turn is lost; the
		 * master marks it interrupted when this worker ends. */
		log_error("cannot hand a stream to the loop: out of memory");
		atomic_fetch_sub(&w->handoffs_pending, 1);
		(void)close(h->fd);
		handoff_free(h);
	}
}

/* Reads the body if it fits max_body_size. A larger declared body is not
 * read: body stays NULL and body_len holds the declared size (413 later). */
static char *
worker_read_body(FCGX_Request *req, const struct config *cfg, size_t *len)
{
	const char *cl = FCGX_GetParam("CONTENT_LENGTH", req->envp);
	char *body, *end;
	unsigned long long n;
	int got;

	*len = 0;
	if (cl == NULL || cl[0] == '\0')
		return NULL;
	errno = 0;
	n = strtoull(cl, &end, 10);
	if (errno != 0 || *end != '\0')
		return NULL;
	if (n > (unsigned long long)cfg->max_body_size) {
		*len = (size_t)(n > SIZE_MAX ? SIZE_MAX : n);
		return NULL;
	}
	if (n == 0 || (body = malloc((size_t)n + 1)) == NULL)
		return NULL;
	got = FCGX_GetStr(body, (int)n, req->in);
	if (got < 0)
		got = 0;
	body[got] = '\0';
	*len = (size_t)got;  /* a truncated body is parsed as what it is: bad JSON */
	return body;
}

/* The request path: nginx's normalised $uri (DOCUMENT_URI) when present. */
static const char *
worker_path(FCGX_Request *req, char *buf, size_t len)
{
	const char *p = FCGX_GetParam("DOCUMENT_URI", req->envp);
	const char *uri, *q;

	if (p != NULL && p[0] != '\0')
		return p;
	if ((uri = FCGX_GetParam("REQUEST_URI", req->envp)) == NULL)
		return "/";
	q = strchr(uri, '?');
	if (q == NULL)
		return uri;
	if ((size_t)(q - uri) >= len)
		return "/";
	memcpy(buf, uri, (size_t)(q - uri));
	buf[q - uri] = '\0';
	return buf;
}

static void
worker_serve(struct worker_thread *t, FCGX_Request *fr, struct upstream *up)
{
	struct worker *w = t->w;
	struct fcgi_io io = { fr, 0, w, NULL };
	struct request r;
	char pathbuf[2048];
	const char *v;
	char *body;

	http_request_init(&r);
	r.cfg = w->cfg;
	r.store = w->store;
	r.upstream = up;
	r.workq = w->workq;
	r.worker_id = w->worker_id;
	r.io.write = fcgi_write;
	r.io.flush = fcgi_flush;
	r.io.param = fcgi_param;
	r.io.detach = fcgi_detach;
	r.io.ctx = &io;
	r.method = (v = FCGX_GetParam("REQUEST_METHOD", fr->envp)) != NULL ? v : "GET";
	r.path = worker_path(fr, pathbuf, sizeof(pathbuf));
	r.query = (v = FCGX_GetParam("QUERY_STRING", fr->envp)) != NULL ? v : "";
	r.authorization = FCGX_GetParam("HTTP_AUTHORIZATION", fr->envp);
	r.content_type = FCGX_GetParam("CONTENT_TYPE", fr->envp);
	r.remote_addr = FCGX_GetParam("REMOTE_ADDR", fr->envp);
	body = worker_read_body(fr, w->cfg, &r.body_len);
	r.body = body;
	app_handle(&r);
	if (io.handoff != NULL && r.detached)
		worker_handoff(w, fr, io.handoff);
	else
		handoff_free(io.handoff);
	http_request_free(&r);
	free(body);
}

/* Most a finished request may still have unread in its input (the end of
 * its body, the empty record that ends it) for the close to be immediate. */
#define WORKER_DRAIN_MAX 65536

/* Accept thread, after the response: ends the request and closes its
 * connection. libfcgi's own close shuts the socket down and then waits for
 * nginx to close first (reading until EOF, up to 2 s), so that input still
 * arriving cannot make TCP reset the connection and lose the response: a
 * sleep and a wake-up per request. Once the input is read to its end
 * (nginx sends a request whole, its body buffered) nothing more arrives,
 * and a plain close is as safe: libfcgi is told so with FCGX_Detach. A
 * body left unread (too large) keeps the lingering close. */
static void
worker_finish(FCGX_Request *fr)
{
	char trash[1024];
	size_t left = WORKER_DRAIN_MAX;
	int n;

	if (fr->in != NULL && fr->ipcFd >= 0) {
		while (left > 0 && (n = FCGX_GetStr(trash, (int)sizeof(trash), fr->in)) > 0)
			left = (size_t)n < left ? left - (size_t)n : 0;
		if (FCGX_HasSeenEOF(fr->in) && FCGX_GetError(fr->in) == 0)
			(void)FCGX_Detach(fr);
	}
	FCGX_Finish_r(fr);
	if (fr->ipcFd >= 0)
		(void)FCGX_Attach(fr);  /* a kept connection: the next request decides anew */
}

static void *worker_thread_serve(void *arg);

/* Counts the thread out when it returns: the loop drains after the last. */
static void *
worker_thread_main(void *arg)
{
	struct worker_thread *t = arg;
	void *ret = worker_thread_serve(arg);

	atomic_fetch_sub(&t->w->threads_running, 1);
	return ret;
}

static void *
worker_thread_serve(void *arg)
{
	struct worker_thread *t = arg;
	struct worker *w = t->w;
	struct upstream *up;
	FCGX_Request fr;

	if ((up = upstream_new(w->cfg)) == NULL) {
		log_error("cannot create the upstream client");
		return NULL;
	}
	if (FCGX_InitRequest(&fr, t->listen_fd, 0) != 0) {
		log_error("FCGX_InitRequest failed");
		upstream_free(up);
		return NULL;
	}
	while (!atomic_load(&w->stopping)) {
		if (FCGX_Accept_r(&fr) < 0)
			break;
		atomic_store(&t->busy, true);
		metrics_worker_busy(w->slot, 1);
		worker_serve(t, &fr, up);
		worker_finish(&fr);
		metrics_worker_busy(w->slot, -1);
		metrics_worker_request(w->slot);
		atomic_store(&t->busy, false);
		long n = atomic_fetch_add(&w->served, 1) + 1;
		if (w->cfg->max_requests > 0 && n == w->cfg->max_requests) {
			log_info("served %ld requests: recycling", n);
			(void)kill(getpid(), SIGTERM);
		}
	}
	FCGX_Free(&fr, 0);
	upstream_free(up);
	return NULL;
}

bool
worker_id_format(char *out, size_t len, pid_t pid)
{
	char host[256];
	int n;

	process_host(host, sizeof(host));
	n = snprintf(out, len, "%s:%ld", host, (long)pid);
	return n > 0 && (size_t)n < len;
}

/* Wakes the threads blocked in accept(); busy ones finish their request. */
static void
worker_stop_threads(struct worker *w)
{
	atomic_store(&w->stopping, true);
	FCGX_ShutdownPending();
	for (int i = 0; i < w->cfg->threads; i++)
		if (w->threads[i].started && !atomic_load(&w->threads[i].busy))
			(void)pthread_kill(w->threads[i].tid, SIGUSR1);
}

/* No thread accepts any more: let go of the listening socket, so that once
 * the master has too, nginx is refused at once (and may try another
 * server) instead of queueing behind a draining pool. */
static void
worker_close_listener(struct worker *w)
{
	if (w->listen_fd >= 0 && close(w->listen_fd) != 0)
		log_warn("closing the listening socket: %s", strerror(errno));
	w->listen_fd = -1;
}

#define DRAIN_CHECK_MS 50

/* Loop thread: stops the loop once nothing is left to finish: no accept
 * thread (whose request may still become a stream), no stream on its way,
 * none on the loop. */
static void
worker_drain_check(void *ctx)
{
	struct worker *w = ctx;

	if (atomic_load(&w->threads_running) == 0 && atomic_load(&w->handoffs_pending) == 0 &&
	    w->loop_streams == 0) {
		loop_epoll_stop();
		return;
	}
	loop_timer_set(w->drain_timer, DRAIN_CHECK_MS);
}

static void
worker_on_signal(void *ctx, int fd, bool readable, bool writable)
{
	struct worker *w = ctx;
	struct signalfd_siginfo si;

	(void)readable;
	(void)writable;
	while (read(fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		if (si.ssi_signo == SIGHUP || atomic_load(&w->stopping))
			continue;  /* reloads are the master's; one stop is enough */
		log_info("worker stopping: %s, draining %d streams and in-flight requests",
		    strsignal((int)si.ssi_signo), w->loop_streams);
		worker_stop_threads(w);
		worker_close_listener(w);
		loop_timer_set(w->drain_timer, 0);
	}
}

/* Runs the loop on this (the main) thread until a stop signal and the
 * drain are over. False if the loop could not be set up or failed. */
static bool
worker_loop_run(struct worker *w)
{
	sigset_t stopset;
	bool ok = false;

	sigemptyset(&stopset);
	sigaddset(&stopset, SIGTERM);
	sigaddset(&stopset, SIGINT);
	sigaddset(&stopset, SIGHUP);
	sigaddset(&stopset, SIGQUIT);
	if ((w->signal_fd = signalfd(-1, &stopset, SFD_NONBLOCK | SFD_CLOEXEC)) < 0) {
		log_error("signalfd: %s", strerror(errno));
		return false;
	}
	if ((w->drain_timer = loop_timer_new(worker_drain_check, w)) != NULL &&
	    (w->signal_watch = loop_fd_add(w->signal_fd, worker_on_signal, w)) != NULL)
		ok = loop_epoll_run();
	loop_fd_remove(w->signal_watch);
	loop_timer_free(w->drain_timer);
	(void)close(w->signal_fd);
	return ok;
}

int
worker_run(const struct config *cfg, int listen_fd, unsigned generation)
{
	struct worker w = { .cfg = cfg, .listen_fd = listen_fd, .signal_fd = -1 };
	struct sigaction sa;
	pthread_attr_t attr;
	int started = 0, rc = 1;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_IGN;
	if (sigaction(SIGPIPE, &sa, NULL) != 0)
		return 1;
	sa.sa_handler = worker_on_wake;  /* no SA_RESTART: accept() returns EINTR */
	if (sigaction(SIGUSR1, &sa, NULL) != 0)
		return 1;
	/* Each password hash allocates 19 MiB. glibc would raise its mmap
	 * threshold after the first such free and keep later ones in the
	 * threads' arenas for good; a fixed threshold returns them. */
	if (mallopt(M_MMAP_THRESHOLD, 1 << 20) != 1)
		log_warn("mallopt(M_MMAP_THRESHOLD) failed");
	/* Our handlers are in place, so FCGX_Init leaves the signals alone. */
	if (FCGX_Init() != 0 || !upstream_global_init()) {
		log_error("library initialisation failed");
		return 1;
	}
	if ((w.store = store_new(cfg->database_url, cfg->db_pool_size)) == NULL ||
	    (w.threads = calloc((size_t)cfg->threads, sizeof(*w.threads))) == NULL) {
		log_error("out of memory");
		goto done;
	}
	if (!worker_id_format(w.worker_id, sizeof(w.worker_id), getpid()))
		goto done;
	app_init();
	w.slot = metrics_worker_claim(getpid(), generation, cfg->threads);
	/* Threads inherit a mask blocking everything but SIGUSR1: only the
	 * loop takes the stop signals, synchronously, from a signalfd. */
	sigset_t thread_mask;
	sigfillset(&thread_mask);
	sigdelset(&thread_mask, SIGUSR1);
	sigdelset(&thread_mask, SIGSEGV);
	sigdelset(&thread_mask, SIGBUS);
	sigdelset(&thread_mask, SIGFPE);
	sigdelset(&thread_mask, SIGILL);
	sigdelset(&thread_mask, SIGABRT);
	pthread_sigmask(SIG_SETMASK, &thread_mask, NULL);
	if (pthread_attr_init(&attr) != 0 ||
	    pthread_attr_setstacksize(&attr, THREAD_STACK_SIZE) != 0) {
		log_error("pthread_attr failed");
		goto done;
	}
	/* Registered before any reply can name this process as its owner. */
	if (!sweep_beat_start(cfg->database_url, w.worker_id, "worker", false, NULL))
		goto done;
	if (!loop_epoll_init() || upstream_loop_start(cfg) == NULL ||
	    (w.workq = workq_new(WORKER_STORE_THREADS, loop_epoll_post)) == NULL)
		goto done;
	for (int i = 0; i < cfg->threads; i++) {
		w.threads[i].w = &w;
		w.threads[i].listen_fd = w.listen_fd;
		atomic_fetch_add(&w.threads_running, 1);
		if (pthread_create(&w.threads[i].tid, &attr, worker_thread_main, &w.threads[i]) != 0) {
			log_error("pthread_create failed after %d threads", i);
			atomic_fetch_sub(&w.threads_running, 1);
			break;
		}
		w.threads[i].started = true;
		started++;
	}
	pthread_attr_destroy(&attr);
	live_reply_stored_hook = worker_reply_stored;
	if (!live_listener_start(cfg))
		goto done;
	log_info("worker ready: %d threads, streams on the event loop", started);
	if (started == 0)
		goto done;
	if (!worker_loop_run(&w))
		log_error("the event loop failed: stopping");
	worker_stop_threads(&w);
	worker_close_listener(&w);
	for (int i = 0; i < cfg->threads; i++)
		if (w.threads[i].started)
			pthread_join(w.threads[i].tid, NULL);
	live_listener_stop();
	metrics_worker_release(getpid());
	log_info("worker stopped after %ld requests", atomic_load(&w.served));
	rc = 0;
done:
	upstream_loop_stop();
	workq_free(w.workq);
	loop_epoll_free();
	free(w.threads);
	/* Nothing ends a reply any more: hand on the queued endings, then stop
	 * every thread that uses the store before freeing it. */
	reply_retry_stop(WORKER_RETRY_FLUSH_MS, cfg->spool_dir);
	sweep_beat_stop();
	store_free(w.store);
	upstream_global_cleanup();
	return rc;
}
