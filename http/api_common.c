/* api_common.c: what every handler does with a request body and errors. */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "handlers.h"
#include "json_in.h"
#include "json_out.h"
#include "request.h"
#include "store.h"

static bool
content_type_is_json(const char *ct)
{
	size_t n = strlen("application/json");

	if (ct == NULL || strncasecmp(ct, "application/json", n) != 0)
		return false;
	return ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ';
}

json_object *
handler_body_object(struct request *r, int *status)
{
	json_object *obj;
	const char *err;

	if (r->body_len == 0) {
		*status = http_error(r, 400, "Request body must be a JSON object");
		return NULL;
	}
	if (!content_type_is_json(r->content_type)) {
		*status = http_error(r, 415, "Content-Type must be application/json");
		return NULL;
	}
	if ((obj = json_in_parse(r->body, r->body_len, &err)) == NULL) {
		*status = http_error(r, 400, err);
		return NULL;
	}
	if (!json_object_is_type(obj, json_type_object)) {
		json_object_put(obj);
		*status = http_error(r, 400, "Request body must be a JSON object");
		return NULL;
	}
	return obj;
}

int
handler_bad_field(struct request *r, const char *field, const char *problem)
{
	char msg[256];

	(void)snprintf(msg, sizeof(msg), "%s %s", field, problem);
	return http_error(r, 400, msg);
}

int
handler_idempotency_key(struct request *r, const char **key)
{
	const char *k = http_param(r, "HTTP_IDEMPOTENCY_KEY");
	size_t n;

	*key = NULL;
	if (k == NULL)
		return 0;
	n = strlen(k);
	if (n == 0 || n > 255)
		return handler_bad_field(r, "Idempotency-Key", "must be 1 to 255 characters");
	/* Free text, as long as it can be stored: UTF-8, no control bytes. */
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)k[i] < 0x20 || (unsigned char)k[i] == 0x7f)
			return handler_bad_field(r, "Idempotency-Key", "must not hold control characters");
	if (!utf8_valid(k, n))
		return handler_bad_field(r, "Idempotency-Key", "must be UTF-8");
	*key = k;
	return 0;
}

int
handler_store_error(struct request *r, int store_rc, const char *not_found_msg)
{
	struct request_result res = request_store_error((enum store_rc)store_rc, not_found_msg);

	/* STORE_OK is no failure: callers pass errors only; answer 500 anyway. */
	if (res.status == 0)
		res = request_store_error(STORE_ERROR, not_found_msg);
	return http_error(r, res.status, res.message);
}
