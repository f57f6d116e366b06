/* api_config.c: GET /api/config: what this server offers, for the web UI
 * to show only what works (voice needs realtime_api other than off). */
#include <string.h>

#include "config.h"
#include "handlers.h"

int
api_config_get(struct request *r)
{
	json_object *o = json_object_new_object();

	if (o == NULL)
		return http_error(r, 500, "Out of memory");
	json_object_object_add(o, "voice", json_object_new_boolean(strcmp(r->cfg->realtime_api, "off") != 0));
	return http_reply_json(r, 200, o);
}
