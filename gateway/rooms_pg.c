/* rooms_pg.c: LISTEN/NOTIFY and job claims on the gateway's connection.
 * All of the gateway's own SQL is here. */
#include "rooms_pg.h"

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "log.h"
#include "loop.h"

#define RECONNECT_MS   1000
#define SWEEP_MS       2000      /* look for jobs whose NOTIFY was missed */
#define EXPIRE_MS      60000     /* drop jobs nobody claimed in time */

static const char sql_listen[] =
    "LISTEN " ROOMS_PG_CHANNEL "; LISTEN " ROOMS_PG_JOBS "; LISTEN " ROOMS_PG_CANCEL;
/* Rows are produced in array order and pg_notify runs per row; one
 * transaction, so the payloads arrive in this order everywhere. Each
 * payload carries a sequence number: identical payloads in one
 * transaction would be folded into one. */
static const char sql_publish[] =
    "SELECT count(pg_notify('" ROOMS_PG_CHANNEL "', p)) FROM json_array_elements_text($1::json) AS t(p)";
/* A job goes to exactly one gateway: the row lock is taken with SKIP
 * LOCKED and the row deleted in the same statement. */
static const char sql_claim[] =
    "DELETE FROM gateway_jobs WHERE id IN (SELECT id FROM gateway_jobs "
    "  WHERE created_at > now() - interval '2 minutes' ORDER BY id LIMIT $1::int "
    "  FOR UPDATE SKIP LOCKED) "
    "RETURNING room, user_id::text, messages::text";
static const char sql_expire[] =
    "DELETE FROM gateway_jobs WHERE created_at <= now() - interval '2 minutes'";

static char *conninfo;
static struct rooms_pg_hooks hooks;
static PGconn *pg;
static struct loop_fd *watch;
static struct loop_timer *drain_timer;
static int64_t next_connect_ms, next_sweep_ms, next_expire_ms;

static void pg_drain(void);

static void
pg_drop(const char *why)
{
	if (pg == NULL)
		return;
	log_warn("gateway database connection lost (%s): rooms stay local until it is back", why);
	loop_fd_remove(watch);
	watch = NULL;
	PQfinish(pg);
	pg = NULL;
	next_connect_ms = clock_now_ms() + RECONNECT_MS;
}

static void
pg_on_readable(void *ctx, int fd, bool readable, bool writable)
{
	(void)ctx;
	(void)fd;
	(void)readable;
	(void)writable;
	if (pg == NULL)
		return;
	if (!PQconsumeInput(pg)) {
		pg_drop(PQerrorMessage(pg));
		return;
	}
	pg_drain();
}

static void
drain_fire(void *ctx)
{
	(void)ctx;
	if (pg != NULL)
		pg_drain();
}

/* After a round trip libpq may hold notifications that arrived with the
 * reply; the socket will not signal them again, so drain soon (not now:
 * the caller may be a hook called from the drain itself). */
static void
drain_later(void)
{
	if (drain_timer != NULL && !loop_timer_armed(drain_timer))
		loop_timer_set(drain_timer, 0);
}

static void
pg_drain(void)
{
	bool jobs_due = false;
	PGnotify *n;

	while (pg != NULL && (n = PQnotifies(pg)) != NULL) {
		if (strcmp(n->relname, ROOMS_PG_CHANNEL) == 0)
			hooks.room(n->extra);
		else if (strcmp(n->relname, ROOMS_PG_CANCEL) == 0)
			hooks.cancel(n->extra);
		else if (strcmp(n->relname, ROOMS_PG_JOBS) == 0)
			jobs_due = true;
		PQfreemem(n);
	}
	if (jobs_due && pg != NULL)
		hooks.jobs();
}

/* Connection setup runs on the loop without blocking it (a database
 * host that drops packets would otherwise stall every client for the
 * connect timeout): PQconnectStart, then PQconnectPoll whenever the
 * socket is ready. */
static PGconn *connecting;
static struct loop_fd *connect_watch;
static int connect_fd = -1;
static int64_t connect_deadline_ms;

#define CONNECT_TIMEOUT_MS 5000

static void connect_step(void *ctx, int fd, bool readable, bool writable);

static void
connect_abandon(const char *why)
{
	log_warn("gateway database connection failed: %s", why);
	loop_fd_remove(connect_watch);
	connect_watch = NULL;
	connect_fd = -1;
	PQfinish(connecting);
	connecting = NULL;
	next_connect_ms = clock_now_ms() + RECONNECT_MS;
}

/* The connection is up: LISTEN (one short round trip) and watch it. */
static void
connect_done(void)
{
	PGresult *res;

	loop_fd_remove(connect_watch);
	connect_watch = NULL;
	connect_fd = -1;
	pg = connecting;
	connecting = NULL;
	res = PQexec(pg, sql_listen);
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		log_error("LISTEN: %s", PQresultErrorMessage(res));
		PQclear(res);
		goto failed;
	}
	PQclear(res);
	if ((watch = loop_fd_add(PQsocket(pg), pg_on_readable, NULL)) == NULL)
		goto failed;
	log_info("gateway listening on " ROOMS_PG_CHANNEL ", " ROOMS_PG_JOBS ", " ROOMS_PG_CANCEL);
	next_sweep_ms = 0;   /* claim what queued up while we were away */
	return;
failed:
	PQfinish(pg);
	pg = NULL;
	next_connect_ms = clock_now_ms() + RECONNECT_MS;
}

static void
connect_step(void *ctx, int fd, bool readable, bool writable)
{
	PostgresPollingStatusType st;

	(void)ctx;
	(void)fd;
	(void)readable;
	(void)writable;
	if (connecting == NULL)
		return;
	st = PQconnectPoll(connecting);
	if (st == PGRES_POLLING_FAILED) {
		connect_abandon(PQerrorMessage(connecting));
		return;
	}
	if (st == PGRES_POLLING_OK) {
		connect_done();
		return;
	}
	/* libpq may switch sockets between attempts (several hosts). */
	if (PQsocket(connecting) != connect_fd) {
		loop_fd_remove(connect_watch);
		connect_fd = PQsocket(connecting);
		if ((connect_watch = loop_fd_add(connect_fd, connect_step, NULL)) == NULL) {
			connect_abandon("cannot watch the socket");
			return;
		}
	}
	loop_fd_want(connect_watch, st == PGRES_POLLING_READING, st == PGRES_POLLING_WRITING);
}

static void
pg_connect(void)
{
	static const char *const keys[] = { "dbname", "application_name", NULL };
	const char *values[] = { conninfo, "chat-gateway", NULL };

	connecting = PQconnectStartParams(keys, values, 1);
	if (connecting == NULL || PQstatus(connecting) == CONNECTION_BAD) {
		connect_abandon(connecting != NULL ? PQerrorMessage(connecting) : "out of memory");
		return;
	}
	connect_deadline_ms = clock_now_ms() + CONNECT_TIMEOUT_MS;
	/* libpq's rule: before the first PQconnectPoll, wait as if it had
	 * asked for writing. */
	connect_fd = PQsocket(connecting);
	if ((connect_watch = loop_fd_add(connect_fd, connect_step, NULL)) == NULL) {
		connect_abandon("cannot watch the socket");
		return;
	}
	loop_fd_want(connect_watch, false, true);
}

bool
rooms_pg_start(const char *info, const struct rooms_pg_hooks *h)
{
	if ((conninfo = strdup(info)) == NULL || (drain_timer = loop_timer_new(drain_fire, NULL)) == NULL) {
		free(conninfo);
		conninfo = NULL;
		return false;
	}
	hooks = *h;
	pg_connect();
	return true;
}

void
rooms_pg_stop(void)
{
	loop_fd_remove(connect_watch);
	connect_watch = NULL;
	PQfinish(connecting);
	connecting = NULL;
	loop_fd_remove(watch);
	watch = NULL;
	PQfinish(pg);
	pg = NULL;
	loop_timer_free(drain_timer);
	drain_timer = NULL;
	free(conninfo);
	conninfo = NULL;
}

bool
rooms_pg_ready(void)
{
	return pg != NULL;
}

/* Runs a statement; on a broken connection drops it. */
static PGresult *
pg_exec(const char *sql, int nparams, const char *const *params, ExecStatusType want)
{
	PGresult *res;

	if (pg == NULL)
		return NULL;
	res = PQexecParams(pg, sql, nparams, NULL, params, NULL, NULL, 0);
	drain_later();
	if (PQresultStatus(res) == want)
		return res;
	log_error("gateway query failed: %s", PQresultErrorMessage(res));
	PQclear(res);
	if (PQstatus(pg) != CONNECTION_OK)
		pg_drop("query failed");
	return NULL;
}

bool
rooms_pg_publish(const char *json_array, size_t len)
{
	const char *p[] = { json_array };
	PGresult *res;

	(void)len;
	if ((res = pg_exec(sql_publish, 1, p, PGRES_TUPLES_OK)) == NULL)
		return false;
	PQclear(res);
	return true;
}

int
rooms_pg_claim_jobs(int max, rooms_pg_job_fn fn, void *ctx)
{
	char limit[16];
	const char *p[] = { limit };
	PGresult *res;
	int n;

	(void)snprintf(limit, sizeof(limit), "%d", max);
	if ((res = pg_exec(sql_claim, 1, p, PGRES_TUPLES_OK)) == NULL)
		return -1;
	n = PQntuples(res);
	for (int i = 0; i < n; i++)
		fn(ctx, PQgetvalue(res, i, 0), PQgetisnull(res, i, 1) ? NULL : PQgetvalue(res, i, 1),
		    PQgetvalue(res, i, 2));
	PQclear(res);
	return n;
}

void
rooms_pg_tick(int64_t now_ms)
{
	PGresult *res;

	if (connecting != NULL) {
		if (now_ms >= connect_deadline_ms)
			connect_abandon("timeout");
		return;
	}
	if (pg == NULL) {
		if (conninfo != NULL && now_ms >= next_connect_ms)
			pg_connect();
		return;
	}
	if (now_ms >= next_sweep_ms) {
		next_sweep_ms = now_ms + SWEEP_MS;
		hooks.jobs();
	}
	if (pg != NULL && now_ms >= next_expire_ms) {
		next_expire_ms = now_ms + EXPIRE_MS;
		if ((res = pg_exec(sql_expire, 0, NULL, PGRES_COMMAND_OK)) != NULL) {
			if (strcmp(PQcmdTuples(res), "0") != 0)
				log_warn("%s queued generation(s) expired unclaimed", PQcmdTuples(res));
			PQclear(res);
		}
	}
}
