/* gateway_main.c: chat-gateway, the Socket.IO front end: options, the
 * configuration shared with chatd, the event loop, and a clean stop.
 *
 *   chat-gateway [-c chatd.conf]
 *
 * One process, one event loop, in the foreground; run several (on this
 * host or others) for more capacity: rooms reach across them through
 * PostgreSQL. SIGTERM or SIGINT: new generations are refused, running
 * ones get up to drain_timeout seconds, then every client is closed and
 * everything freed. A second signal stops at once. */
#include <errno.h>
#include <libwebsockets.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "auth.h"
#include "chat.h"
#include "clock.h"
#include "config.h"
#include "live.h"
#include "log.h"
#include "process.h"
#include "reply_retry.h"
#include "loop.h"
#include "metrics.h"
#include "relay.h"
#include "rooms_pg.h"
#include "server.h"
#include "session.h"
#include "store.h"
#include "sweep.h"
#include "upstream.h"

#define TICK_MS          250
#define DB_POOL          2        /* one loop thread: one busy connection at a time */
#define MAX_PAYLOAD      1000000  /* bytes, announced in the handshake */
#define FLUSH_MS         1000     /* at exit, to write what is queued */
#define RETRY_FLUSH_MS   2000     /* at exit, for reply endings the database refused */

static volatile sig_atomic_t signals_seen;
static struct lws_context *volatile context;   /* read by the signal handler */

static void
on_signal(int sig)
{
	(void)sig;
	signals_seen++;
	/* Wakes lws_service(): it writes to the loop's event fd. */
	if (context != NULL)
		lws_cancel_service(context);
}

static void
usage(void)
{
	fprintf(stderr, "usage: chat-gateway [-c config-file]\n"
	    "  -c FILE  read settings from FILE (environment variables override it)\n"
	    "Gateway-only environment: CHAT_GATEWAY_PING_INTERVAL_MS (default 25000),\n"
	    "CHAT_GATEWAY_PING_TIMEOUT_MS (default 20000).\n");
	exit(2);
}

/* A millisecond setting from the environment within [min, max]. */
static bool
env_ms(const char *name, long def, long min, long max, long *out)
{
	const char *v = getenv(name);
	char *end;
	long n;

	*out = def;
	if (v == NULL || v[0] == '\0')
		return true;
	errno = 0;
	n = strtol(v, &end, 10);
	if (errno != 0 || *end != '\0' || n < min || n > max) {
		fprintf(stderr, "chat-gateway: %s must be %ld..%ld milliseconds\n", name, min, max);
		return false;
	}
	*out = n;
	return true;
}

static void
on_tick(void *ctx)
{
	struct loop_timer *self = *(struct loop_timer **)ctx;
	int64_t now = clock_now_ms();

	session_tick(now);
	chat_tick(now);
	rooms_pg_tick(now);
	loop_timer_set(self, TICK_MS);
}

static void
on_cancel(const char *reply_id)
{
	if (live_cancel(reply_id))
		log_info("reply %s: cancelled", reply_id);
}

int
main(int argc, char **argv)
{
	const char *config_path = NULL, *why;
	struct config cfg;
	struct store *store = NULL;
	struct loop_timer *tick = NULL;
	struct sigaction sa;
	enum log_level level;
	char err[512], host[256], id[320];
	long ping_interval, ping_timeout;
	int64_t drain_deadline = 0;
	bool cfg_loaded = false, curl_ready = false, relay_ready = false, chat_ready = false,
	    pg_ready = false;
	int c, rc = 1;

	while ((c = getopt(argc, argv, "c:h")) != -1) {
		switch (c) {
		case 'c': config_path = optarg; break;
		default: usage();
		}
	}
	if (optind != argc)
		usage();
	if (!env_ms("CHAT_GATEWAY_PING_INTERVAL_MS", 25000, 100, 3600000, &ping_interval) ||
	    !env_ms("CHAT_GATEWAY_PING_TIMEOUT_MS", 20000, 100, 3600000, &ping_timeout))
		return 2;
	if (!config_load(&cfg, config_path, err, sizeof(err))) {
		fprintf(stderr, "chat-gateway: %s\n", err);
		return 1;
	}
	cfg_loaded = true;
	if (!log_level_parse(cfg.log_level, &level)) {
		fprintf(stderr, "chat-gateway: log_level: expected error, warn, info or debug\n");
		goto done;
	}
	if ((why = auth_secret_problem(&cfg)) != NULL) {
		fprintf(stderr, "chat-gateway: %s\n", why);
		goto done;
	}
	(void)log_open(cfg.log_file, level);
	process_raise_fd_limit();
	process_set_host(cfg.host_id);
	store_set_pooled(cfg.database_pooled);
	process_host(host, sizeof(host));
	(void)snprintf(id, sizeof(id), "gw:%s:%ld", host, (long)getpid());

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGTERM, &sa, NULL) != 0 || sigaction(SIGINT, &sa, NULL) != 0) {
		log_error("cannot install signal handlers");
		goto done;
	}
	sa.sa_handler = SIG_IGN;
	(void)sigaction(SIGPIPE, &sa, NULL);

	/* The engine counts this process's streams here; GET /gateway/metrics
	 * renders them (why a scoreboard of its own: core/metrics.c). */
	if (!metrics_init(METRICS_SCOPE_GATEWAY))
		goto done;
	if (!upstream_global_init()) {
		log_error("libcurl initialisation failed");
		goto done;
	}
	curl_ready = true;
	if ((store = store_new(cfg.database_url, DB_POOL)) == NULL) {
		log_error("out of memory");
		goto done;
	}
	/* Registered before any reply names this process; the first beat
	 * sweeps the replies of owners that are gone (a gateway killed
	 * before this one started, say), retrying until the database takes it. */
	if (!sweep_beat_start(cfg.database_url, id, "gateway", true, cfg.spool_dir))
		goto done;
	struct server_settings ss = { &cfg, ping_interval, ping_timeout, MAX_PAYLOAD };
	if ((context = server_create(&ss)) == NULL)
		goto done;
	if (!(relay_ready = relay_setup(id)) || !(chat_ready = chat_setup(&cfg, store, id)))
		goto done;
	struct rooms_pg_hooks hooks = { relay_on_notify, on_cancel, chat_claim_jobs };
	if (!(pg_ready = rooms_pg_start(config_listen_url(&cfg), &hooks)))
		goto done;
	if ((tick = loop_timer_new(on_tick, &tick)) == NULL)
		goto done;
	loop_timer_set(tick, TICK_MS);
	log_info("chat-gateway %s ready", id);

	for (;;) {
		if (lws_service(context, 0) < 0) {
			log_error("event loop failed");
			break;
		}
		session_reap();
		if (signals_seen > 1)
			break;
		if (signals_seen == 1 && drain_deadline == 0) {
			log_info("stopping: %zu generation(s) may run for up to %d s", chat_streams(),
			    cfg.drain_timeout);
			chat_drain();
			drain_deadline = clock_now_ms() + (int64_t)cfg.drain_timeout * 1000;
		}
		if (drain_deadline != 0 && (chat_streams() == 0 || clock_now_ms() >= drain_deadline))
			break;
	}
	rc = 0;
done:
	/* Order matters: generations end first (their events and rows need
	 * sessions, the relay and the database), then the clients, then the
	 * listener, the loop, and the pool. */
	if (chat_ready)
		chat_shutdown();
	/* Let the last events (ends of aborted replies) reach the clients. */
	for (int64_t until = clock_now_ms() + FLUSH_MS; context != NULL && session_backlog() > 0 &&
	    clock_now_ms() < until;)
		if (lws_service(context, 0) < 0)
			break;
	session_close_all("server stopping");
	session_reap();
	if (relay_ready)
		relay_shutdown();
	if (pg_ready)
		rooms_pg_stop();
	loop_timer_free(tick);
	if (context != NULL) {
		struct lws_context *ctx = context;

		context = NULL;
		lws_context_destroy(ctx);
	}
	session_reap();
	reply_retry_stop(RETRY_FLUSH_MS, cfg.spool_dir);
	sweep_beat_stop();
	store_free(store);
	if (curl_ready)
		upstream_global_cleanup();
	metrics_free();
	if (rc == 0)
		log_info("chat-gateway stopped");
	if (cfg_loaded)
		config_free(&cfg);
	return rc;
}
