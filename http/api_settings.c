/* api_settings.c: seed 004's per-user settings, with the server defaults. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "handlers.h"
#include "chat_limits.h"
#include "json_in.h"
#include "request.h"
#include "spend.h"
#include "store.h"

static const struct {
	const char *name;
	size_t      max;       /* 0: a number (temperature) */
} settings_fields[] = {
	{ "system_prompt",  20000 },
	{ "model",          LIMIT_MODEL_BYTES },
	{ "temperature",    0 },
	{ "realtime_model", LIMIT_MODEL_BYTES },
	{ "voice",          50 },
};

#define NFIELDS (sizeof(settings_fields) / sizeof(settings_fields[0]))

/* False for a stored model that allowed_models no longer allows (the
 * server's own then applies, as in the engine); true for other fields. */
static bool
settings_model_allowed(const struct config *cfg, const char *field, json_object *v)
{
	if (strcmp(field, "model") == 0)
		return spend_model_allowed(cfg->allowed_models, cfg->model, json_object_get_string(v));
	if (strcmp(field, "realtime_model") == 0)
		return spend_model_allowed(cfg->allowed_models, cfg->realtime_model, json_object_get_string(v));
	return true;
}

json_object *
settings_effective(const struct config *cfg, const char *overrides_json)
{
	json_object *o = json_object_new_object(), *over = NULL, *v;

	if (o == NULL)
		return NULL;
	json_object_object_add(o, "system_prompt", json_object_new_string(cfg->system_prompt));
	json_object_object_add(o, "model", json_object_new_string(cfg->model));
	/* As configured (a setting has few digits): 0.7, not json-c's
	 * default 0.69999999999999996. */
	char temp[32];
	(void)snprintf(temp, sizeof(temp), "%.15g", cfg->temperature);
	json_object_object_add(o, "temperature", json_object_new_double_s(cfg->temperature, temp));
	json_object_object_add(o, "realtime_model", json_object_new_string(cfg->realtime_model));
	json_object_object_add(o, "voice", json_object_new_string(cfg->voice));
	if (overrides_json != NULL && (over = json_tokener_parse(overrides_json)) != NULL)
		for (size_t i = 0; i < NFIELDS; i++)
			if (json_object_object_get_ex(over, settings_fields[i].name, &v) && v != NULL &&
			    settings_model_allowed(cfg, settings_fields[i].name, v))
				json_object_object_add(o, settings_fields[i].name, json_object_get(v));
	json_object_put(over);
	return o;
}

int
api_settings_get(struct request *r)
{
	char *over = NULL;
	enum store_rc rc = store_settings_get(r->store, r->user_id, &over);
	json_object *o;

	if (rc != STORE_OK && rc != STORE_NOT_FOUND)
		return handler_store_error(r, rc, "Not found");
	o = settings_effective(r->cfg, over);
	free(over);
	return http_reply_json(r, 200, o);
}

/* A model a user sets is one the server allows (request_model_check).
 * Returns false after rendering the 400 (*status set). */
static bool
settings_model_check(struct request *r, const char *field, const char *model, int *status)
{
	char refusal[REQUEST_SPEND_MSG_BYTES];
	struct request_result res = { 0, NULL };

	if (strcmp(field, "model") == 0)
		res = request_model_check(r->cfg, REQUEST_MODEL_CHAT, model, refusal, sizeof(refusal));
	else if (strcmp(field, "realtime_model") == 0)
		res = request_model_check(r->cfg, REQUEST_MODEL_REALTIME, model, refusal, sizeof(refusal));
	if (res.status == 0)
		return true;
	*status = http_error(r, res.status, res.message);
	return false;
}

/* Validates the body: known fields only, right types and sizes. A null
 * value resets the field to the server default. */
static json_object *
settings_patch(struct request *r, json_object *body, int *status)
{
	json_object *patch = json_object_new_object();
	const char *err;

	if (patch == NULL) {
		*status = http_error(r, 500, "Out of memory");
		return NULL;
	}
	json_object_object_foreach(body, key, val) {
		size_t i;

		for (i = 0; i < NFIELDS; i++)
			if (strcmp(key, settings_fields[i].name) == 0)
				break;
		if (i == NFIELDS) {
			*status = handler_bad_field(r, key, "is not a setting");
			goto failed;
		}
		if (val == NULL) {
			json_object_object_add(patch, key, NULL);
			continue;
		}
		if (settings_fields[i].max == 0) {
			double t = 0;
			if (!json_in_double(body, key, JSON_REQUIRED, 0, 2, &t, &err)) {
				*status = handler_bad_field(r, key, err[0] == 'i' ? "must be from 0 to 2" : err);
				goto failed;
			}
			json_object_object_add(patch, key, json_object_new_double(t));
		} else {
			const char *s;
			size_t len;
			if (!json_in_string(body, key, JSON_REQUIRED, settings_fields[i].max, &s, &len, &err)) {
				*status = handler_bad_field(r, key, err);
				goto failed;
			}
			if (len == 0 && strcmp(key, "system_prompt") != 0) {
				*status = handler_bad_field(r, key, "must not be empty");
				goto failed;
			}
			if (!settings_model_check(r, key, s, status))
				goto failed;
			json_object_object_add(patch, key, json_object_new_string_len(s, (int)len));
		}
	}
	return patch;
failed:
	json_object_put(patch);
	return NULL;
}

int
api_settings_put(struct request *r)
{
	json_object *body, *patch;
	char *over = NULL;
	enum store_rc rc;
	int status;

	if ((body = handler_body_object(r, &status)) == NULL)
		return status;
	if ((patch = settings_patch(r, body, &status)) == NULL) {
		json_object_put(body);
		return status;
	}
	rc = store_settings_put(r->store, r->user_id,
	    json_object_to_json_string_ext(patch, JSON_C_TO_STRING_PLAIN), &over);
	if (rc == STORE_NOT_FOUND)  /* the token's user was deleted */
		status = http_error(r, 401, "Unauthorized");
	else if (rc != STORE_OK)
		status = handler_store_error(r, rc, "Not found");
	else
		status = http_reply_json(r, 200, settings_effective(r->cfg, over));
	free(over);
	json_object_put(patch);
	json_object_put(body);
	return status;
}
