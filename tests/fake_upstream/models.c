/* models.c: GET /v1/models: the models this fake answers as, a real
 * provider's few plus one no chatd configuration allows (fake-internal), so
 * that chatd's /v1/models shows its filtering. */
#include "http.h"
#include "models.h"
#include "stats.h"

#define MODEL(id, created) "{\"id\":\"" id "\",\"object\":\"model\",\"created\":" #created ",\"owned_by\":\"fake\"}"

bool
models_handle(struct conn *c)
{
	static const char body[] = "{\"object\":\"list\",\"data\":["
	    MODEL(DEFAULT_MODEL, 1721172741) ","
	    MODEL("gpt-4o", 1715367049) ","
	    MODEL("gpt-4.1-mini", 1744318173) ","
	    MODEL("fake-internal", 1700000000) "]}";

	stats.model_lists++;
	return http_respond(c, 200, "application/json", NULL, body, sizeof(body) - 1);
}
