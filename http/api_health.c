/* api_health.c: liveness, readiness, Prometheus metrics, pool status. */
#include <pthread.h>
#include <string.h>

#include "buf.h"
#include "chat_limits.h"
#include "clock.h"
#include "handlers.h"
#include "http.h"
#include "metrics.h"
#include "store.h"
#include "upstream.h"

#define READY_CACHE_US 2000000   /* a probe per process every 2 s at most */

int
api_healthz(struct request *r)
{
	return http_reply_raw(r, 200, "application/json", "{\"status\":\"ok\"}", 15);
}

/* The probes are cached briefly: a load balancer polling /readyz must not
 * become load on the database or the upstream. */
int
api_readyz(struct request *r)
{
	static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
	static int64_t checked_us;
	static bool db_ok, up_ok;
	int64_t now = clock_now_us();
	bool db, up;
	json_object *o;

	pthread_mutex_lock(&mu);
	if (checked_us == 0 || now - checked_us > READY_CACHE_US) {
		pthread_mutex_unlock(&mu);
		db = store_ping(r->store);
		up = upstream_probe(r->upstream);
		pthread_mutex_lock(&mu);
		db_ok = db;
		up_ok = up;
		checked_us = clock_now_us();
	}
	db = db_ok;
	up = up_ok;
	pthread_mutex_unlock(&mu);
	if ((o = json_object_new_object()) == NULL)
		return http_error(r, 500, "Out of memory");
	json_object_object_add(o, "status", json_object_new_string(db && up ? "ready" : "unready"));
	json_object_object_add(o, "database", json_object_new_boolean(db));
	json_object_object_add(o, "upstream", json_object_new_boolean(up));
	return http_reply_json(r, db && up ? 200 : 503, o);
}

int
api_metrics(struct request *r)
{
	struct buf out;
	int status;

	buf_init(&out, LIMIT_METRICS_TEXT_BYTES);
	if (!metrics_render_prometheus(&out))
		status = http_error(r, 500, "Metrics too large");
	else
		status = http_reply_raw(r, 200, "text/plain; version=0.0.4; charset=utf-8", out.data, out.len);
	buf_free(&out);
	return status;
}

/* Like PHP-FPM's status page: text, or JSON with ?json. */
int
api_status(struct request *r)
{
	bool json = strcmp(r->query, "json") == 0 || strncmp(r->query, "json&", 5) == 0 ||
	    strstr(r->query, "&json") != NULL || strstr(r->query, "format=json") != NULL;
	struct buf out;
	int status;

	buf_init(&out, LIMIT_STATUS_BYTES);
	if (!metrics_render_status(&out, json))
		status = http_error(r, 500, "Status too large");
	else
		status = http_reply_raw(r, 200, json ? "application/json" : "text/plain; charset=utf-8",
		    out.data, out.len);
	buf_free(&out);
	return status;
}
