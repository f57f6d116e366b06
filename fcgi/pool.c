/* pool.c: the prefork master, in the manner of nginx and PHP-FPM: signals
 * blocked and taken synchronously, fork, reap, respawn, TERM then KILL. */
#include "pool.h"

#include <errno.h>
#include <netdb.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "config.h"
#include "log.h"
#include "metrics.h"
#include "store.h"
#include "sweep.h"
#include "worker.h"

#define LISTEN_BACKLOG   4096
#define CRASH_WINDOW_S   10
#define CRASH_LIMIT      10    /* respawns in the window before slowing down */

struct child {
	pid_t    pid;         /* 0: free slot */
	unsigned generation;  /* workers of an older generation are draining */
	int64_t  kill_at;     /* when draining: SIGKILL after this (clock_now_s) */
};

struct pool {
	struct config  *cfg;
	const char     *config_path;
	int             listen_fd;
	unsigned        generation;
	struct child   *children;
	int             nchildren;    /* slots */
	bool            stopping;
	pid_t           master_pid;
	int64_t         crash_window_start;
	int             crashes;
	unsigned long   respawns;
	int64_t         sweep_at;     /* next sweep; sooner while one is owed */
	int64_t         metrics_at;   /* next metrics retention run */
	bool            sweep_failing;
};

static bool
listen_is_unix(const char *listen)
{
	return strchr(listen, '/') != NULL || strncmp(listen, "unix:", 5) == 0;
}

int
pool_listen(const struct config *cfg)
{
	const char *spec = cfg->listen;
	int fd = -1, one = 1;

	if (listen_is_unix(spec)) {
		struct sockaddr_un sun;

		if (strncmp(spec, "unix:", 5) == 0)
			spec += 5;
		memset(&sun, 0, sizeof(sun));
		sun.sun_family = AF_UNIX;
		if (strlen(spec) >= sizeof(sun.sun_path)) {
			log_error("listen: socket path too long: %s", spec);
			return -1;
		}
		memcpy(sun.sun_path, spec, strlen(spec) + 1);
		if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
			goto failed;
		if (unlink(spec) == -1 && errno != ENOENT)
			goto failed;
		if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1)
			goto failed;
		/* nginx's user must be able to connect; nobody else should. */
		if (chmod(spec, (mode_t)cfg->socket_mode) == -1)
			goto failed;
	} else {
		struct addrinfo hints, *ai = NULL;
		char host[256];
		const char *colon = strrchr(spec, ':');
		int gai;

		if (colon == NULL || (size_t)(colon - spec) >= sizeof(host)) {
			log_error("listen: expected a socket path or host:port, got %s", spec);
			return -1;
		}
		memcpy(host, spec, (size_t)(colon - spec));
		host[colon - spec] = '\0';
		memset(&hints, 0, sizeof(hints));
		hints.ai_socktype = SOCK_STREAM;
		hints.ai_flags = AI_PASSIVE;
		if ((gai = getaddrinfo(host[0] ? host : NULL, colon + 1, &hints, &ai)) != 0) {
			log_error("listen %s: %s", spec, gai_strerror(gai));
			return -1;
		}
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
		if (fd == -1 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == -1 ||
		    bind(fd, ai->ai_addr, ai->ai_addrlen) == -1) {
			freeaddrinfo(ai);
			goto failed;
		}
		freeaddrinfo(ai);
	}
	if (listen(fd, LISTEN_BACKLOG) == -1)
		goto failed;
	return fd;
failed:
	log_error("listen %s: %s", cfg->listen, strerror(errno));
	if (fd != -1)
		close(fd);
	return -1;
}

/* Closes the master's copy of the listening socket. Once the workers have
 * closed theirs, connecting is refused (the path stays until exit, so nginx
 * sees "connection refused", not a missing socket). */
static void
pool_unlisten(struct pool *p)
{
	if (p->listen_fd == -1)
		return;
	(void)close(p->listen_fd);
	p->listen_fd = -1;
}

static int
pool_live_children(const struct pool *p, bool current_only)
{
	int n = 0;

	for (int i = 0; i < p->nchildren; i++)
		if (p->children[i].pid != 0 &&
		    (!current_only || p->children[i].generation == p->generation))
			n++;
	return n;
}

static struct child *
pool_free_slot(struct pool *p)
{
	struct child *c;

	for (int i = 0; i < p->nchildren; i++)
		if (p->children[i].pid == 0)
			return &p->children[i];
	c = realloc(p->children, sizeof(*c) * (size_t)(p->nchildren + 8));
	if (c == NULL)
		return NULL;
	memset(c + p->nchildren, 0, sizeof(*c) * 8);
	p->children = c;
	p->nchildren += 8;
	return &p->children[p->nchildren - 8];
}

static bool
pool_spawn(struct pool *p)
{
	struct child *c = pool_free_slot(p);
	pid_t pid;

	if (c == NULL) {
		log_error("out of memory for worker slots");
		return false;
	}
	pid = fork();
	if (pid == -1) {
		log_error("fork: %s", strerror(errno));
		return false;
	}
	if (pid == 0) {
		/* The worker takes its signals with sigwait; keep them blocked
		 * but restore default dispositions. */
		signal(SIGCHLD, SIG_DFL);
		/* If the master dies, the workers drain and stop rather than
		 * serve on as orphans next to the pool that replaces them. */
		if (prctl(PR_SET_PDEATHSIG, SIGTERM) != 0 || getppid() != p->master_pid)
			_exit(1);
		_exit(worker_run(p->cfg, p->listen_fd, p->generation));
	}
	c->pid = pid;
	c->generation = p->generation;
	c->kill_at = 0;
	return true;
}

/* Starts workers until the current generation has cfg->workers of them. */
static void
pool_fill(struct pool *p)
{
	int64_t now = clock_now_s();

	while (!p->stopping && pool_live_children(p, true) < p->cfg->workers) {
		if (now - p->crash_window_start > CRASH_WINDOW_S) {
			p->crash_window_start = now;
			p->crashes = 0;
		}
		if (p->crashes > CRASH_LIMIT) {
			/* A crash loop: do not fork as fast as workers die. */
			log_error("workers keep dying: waiting before the next respawn");
			return;
		}
		if (!pool_spawn(p))
			return;
	}
}

static void
pool_signal_generation(struct pool *p, bool older_only, int sig, int64_t kill_at)
{
	for (int i = 0; i < p->nchildren; i++) {
		struct child *c = &p->children[i];

		if (c->pid == 0 || (older_only && c->generation == p->generation))
			continue;
		if (kill(c->pid, sig) == -1 && errno != ESRCH)
			log_warn("kill %ld: %s", (long)c->pid, strerror(errno));
		if (sig == SIGTERM && c->kill_at == 0)
			c->kill_at = kill_at;
	}
}

static void
pool_reap(struct pool *p)
{
	int status;
	pid_t pid;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		for (int i = 0; i < p->nchildren; i++) {
			struct child *c = &p->children[i];

			if (c->pid != pid)
				continue;
			if (WIFSIGNALED(status)) {
				char wid[300];
				long n;

				log_error("worker %ld killed by signal %d", (long)pid, WTERMSIG(status));
				if (c->kill_at == 0)
					p->crashes++;
				/* Its replies in flight will never end by themselves.
				 * If the database does not take it now, the sweep
				 * (retried every second until it does) finds the pid
				 * dead and ends them. */
				if (!worker_id_format(wid, sizeof(wid), pid) ||
				    (n = store_interrupt_worker(p->cfg->database_url, wid)) < 0)
					p->sweep_at = 0;
				else if (n > 0)
					log_warn("marked %ld replies of worker %ld interrupted", n, (long)pid);
			} else if (WEXITSTATUS(status) != 0) {
				log_error("worker %ld exited with status %d", (long)pid, WEXITSTATUS(status));
				p->crashes++;
			} else
				log_info("worker %ld exited", (long)pid);
			if (c->generation == p->generation && c->kill_at == 0 && !p->stopping) {
				p->respawns++;
				metrics_respawn();
			}
			metrics_worker_release(pid);
			c->pid = 0;
		}
	}
}

/* SIGKILLs draining workers past their deadline. */
static void
pool_enforce_deadlines(struct pool *p)
{
	int64_t now = clock_now_s();

	for (int i = 0; i < p->nchildren; i++) {
		struct child *c = &p->children[i];

		if (c->pid != 0 && c->kill_at != 0 && now >= c->kill_at) {
			log_warn("worker %ld still draining after %ds: killing it", (long)c->pid,
			    p->cfg->drain_timeout);
			(void)kill(c->pid, SIGKILL);
			c->kill_at = now + 5;
		}
	}
}

static void
pool_reload(struct pool *p)
{
	struct config fresh;
	char err[512];

	if (!config_load(&fresh, p->config_path, err, sizeof(err))) {
		log_error("reload refused, keeping the running configuration: %s", err);
		return;
	}
	if (strcmp(fresh.listen, p->cfg->listen) != 0)
		log_warn("reload: a new listen address needs a restart; keeping %s", p->cfg->listen);
	if (strcmp(fresh.host_id, p->cfg->host_id) != 0 || fresh.database_pooled != p->cfg->database_pooled)
		log_warn("reload: a new host_id or database_pooled needs a restart; keeping the running ones");
	/* Old workers keep their copy of the old configuration (fork). */
	config_free(p->cfg);
	*p->cfg = fresh;
	p->generation++;
	p->metrics_at = 0;
	log_info("reloading: starting generation %u, draining the previous one", p->generation);
	pool_fill(p);
	pool_signal_generation(p, true, SIGTERM, clock_now_s() + p->cfg->drain_timeout);
}

/* Forgets rate-limit counters whose window ended (by time, whatever the
 * traffic); a failure only leaves them for the next sweep. */
static void
pool_sweep_rate_limits(struct store *st, int window_s)
{
	long n;

	if (store_rate_sweep(st, window_s, &n) == STORE_OK && n > 0)
		log_debug("sweep: %ld stale rate-limit counters deleted", n);
}

/* Sweeps the replies of owners that are gone (core/sweep.h): at start-up,
 * every SWEEP_INTERVAL_S, and every second while the database refuses.
 * XXX: it runs on the master's thread, so an unreachable (not refusing)
 * database delays signal handling by its connect timeout. */
static void
pool_sweep(struct pool *p)
{
	int64_t now = clock_now_s();
	struct store *st;
	long n = -1;

	if (now < p->sweep_at)
		return;
	/* A fresh connection each time: the master forks, and children must
	 * not inherit one. */
	if ((st = store_new_named(p->cfg->database_url, 1, "chatd-sweep")) != NULL) {
		n = sweep_run(st, p->cfg->spool_dir);
		pool_sweep_rate_limits(st, p->cfg->ratelimit_window);
		/* Hourly (a day partition is made a week ahead), and at once
		 * after a start or a reload, which may change the retention. */
		if (n >= 0 && now >= p->metrics_at)
			p->metrics_at = now + (sweep_metrics(st, p->cfg->metrics_retention_days) < 0
			    ? 60 : SWEEP_METRICS_S);
		store_free(st);
	}
	if (n < 0 && !p->sweep_failing)
		log_warn("sweep: the database did not take it, retrying every second");
	else if (n >= 0 && p->sweep_failing)
		log_info("sweep: done, the database is back");
	p->sweep_failing = n < 0;
	p->sweep_at = now + (n < 0 ? 1 : SWEEP_INTERVAL_S);
}

int
pool_run(struct config *cfg, const char *config_path, int listen_fd)
{
	struct pool p = { .cfg = cfg, .config_path = config_path, .listen_fd = listen_fd,
		.master_pid = getpid() };
	sigset_t set;
	siginfo_t info;
	struct timespec tick = { 1, 0 };

	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGQUIT);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGPIPE);
	if (sigprocmask(SIG_BLOCK, &set, NULL) != 0) {
		log_error("sigprocmask: %s", strerror(errno));
		return 1;
	}
	log_info("master started: %d workers x %d threads on %s", cfg->workers, cfg->threads,
	    cfg->listen);
	pool_sweep(&p);
	pool_fill(&p);
	for (;;) {
		int sig = sigtimedwait(&set, &info, &tick);

		if (sig == SIGCHLD || sig == -1)
			pool_reap(&p);
		if (sig == SIGHUP && !p.stopping)
			pool_reload(&p);
		if ((sig == SIGTERM || sig == SIGINT || sig == SIGQUIT) && !p.stopping) {
			p.stopping = true;
			log_info("stopping: draining workers (deadline %ds)", p.cfg->drain_timeout);
			/* New connections are refused from now on (see worker.c). */
			pool_unlisten(&p);
			pool_signal_generation(&p, false, SIGTERM, clock_now_s() + p.cfg->drain_timeout);
		}
		pool_enforce_deadlines(&p);
		if (p.stopping && pool_live_children(&p, false) == 0)
			break;
		pool_sweep(&p);
		pool_fill(&p);
	}
	log_info("master stopped (%lu respawns)", p.respawns);
	free(p.children);
	return 0;
}
