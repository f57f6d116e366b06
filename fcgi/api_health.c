/* api_health.c: liveness and readiness probes. */
#include "handlers.h"
#include "store.h"
#include "upstream.h"

int
api_healthz(struct request *r)
{
	return http_reply_raw(r, 200, "application/json", "{\"status\":\"ok\"}", 15);
}

int
api_readyz(struct request *r)
{
	bool db = store_ping(r->store);
	bool up = upstream_probe(r->upstream);
	json_object *o = json_object_new_object();

	if (o == NULL)
		return http_error(r, 500, "Out of memory");
	json_object_object_add(o, "status", json_object_new_string(db && up ? "ready" : "unready"));
	json_object_object_add(o, "database", json_object_new_boolean(db));
	json_object_object_add(o, "upstream", json_object_new_boolean(up));
	return http_reply_json(r, db && up ? 200 : 503, o);
}
