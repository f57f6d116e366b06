/* models.c: GET /v1/models: the one model this fake serves. */
#include "http.h"
#include "models.h"

bool
models_handle(struct conn *c)
{
	static const char body[] = "{\"object\":\"list\",\"data\":[{\"id\":\""
	    DEFAULT_MODEL "\",\"object\":\"model\",\"created\":0,\"owned_by\":\"fake\"}]}";

	return http_respond(c, 200, "application/json", NULL, body, sizeof(body) - 1);
}
