/* api_models.c: GET /v1/models and /v1/models/{model} (OpenAI's shape): the
 * models clients may use (model_list.h). The upstream's list is asked for at
 * most every MODELS_TTL_MS per process; while it does not answer, the
 * configured models are listed (and it is asked again sooner). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "chat_limits.h"
#include "clock.h"
#include "config.h"
#include "handlers.h"
#include "log.h"
#include "model_list.h"
#include "upstream.h"

#define MODELS_TTL_MS          (5 * 60 * 1000)
#define MODELS_RETRY_MS        (30 * 1000)
#define MODELS_TIMEOUT_MS      2000L

static pthread_mutex_t models_lock = PTHREAD_MUTEX_INITIALIZER;
static char *models_json;         /* the upstream's last answer, NULL: none */
static int64_t models_until;      /* clock_now_ms() when it is asked again */

/* The upstream's /models answer (a copy, or NULL when it did not answer),
 * from the cache while fresh. The lock is held while asking: one request per
 * process at a time, bounded by MODELS_TIMEOUT_MS. */
static char *
models_upstream(struct request *r)
{
	int64_t now = clock_now_ms();
	char *copy = NULL;
	struct buf b;

	if (pthread_mutex_lock(&models_lock) != 0)
		return NULL;
	if (now >= models_until && r->upstream != NULL) {
		buf_init(&b, LIMIT_UPSTREAM_ANSWER_BYTES);
		free(models_json);
		models_json = NULL;
		if (upstream_get(r->upstream, "/models", MODELS_TIMEOUT_MS, &b) && buf_appendc(&b, '\0')) {
			models_json = b.data;
			b.data = NULL;
			models_until = now + MODELS_TTL_MS;
		} else {
			log_warn("models: the upstream's list is unavailable; listing the configured models");
			models_until = now + MODELS_RETRY_MS;
		}
		buf_free(&b);
	}
	if (models_json != NULL)
		copy = strdup(models_json);
	(void)pthread_mutex_unlock(&models_lock);
	return copy;
}

static json_object *
models_current(struct request *r)
{
	char *up = models_upstream(r);
	json_object *list = model_list_build(r->cfg->model, r->cfg->allowed_models, up);

	free(up);
	return list;
}

/* OpenAI's error object: {"error":{"message","type","param","code"}}. */
static int
openai_error(struct request *r, int status, const char *message, const char *type, const char *code)
{
	json_object *o = json_object_new_object(), *e = json_object_new_object();

	if (o == NULL || e == NULL) {
		json_object_put(o);
		json_object_put(e);
		return http_error(r, 500, "Out of memory");
	}
	json_object_object_add(e, "message", json_object_new_string(message));
	json_object_object_add(e, "type", json_object_new_string(type));
	json_object_object_add(e, "param", NULL);
	json_object_object_add(e, "code", code != NULL ? json_object_new_string(code) : NULL);
	json_object_object_add(o, "error", e);
	return http_reply_json(r, status, o);
}

int
api_v1_models_list(struct request *r)
{
	json_object *list = models_current(r), *o;

	if (list == NULL || (o = json_object_new_object()) == NULL) {
		json_object_put(list);
		return openai_error(r, 500, "Out of memory", "server_error", NULL);
	}
	json_object_object_add(o, "object", json_object_new_string("list"));
	json_object_object_add(o, "data", list);
	return http_reply_json(r, 200, o);
}

int
api_v1_models_get(struct request *r)
{
	json_object *list = models_current(r), *m;
	char msg[LIMIT_MODEL_BYTES + 64];

	if (list == NULL)
		return openai_error(r, 500, "Out of memory", "server_error", NULL);
	if ((m = model_list_find(list, r->path_id)) == NULL) {
		json_object_put(list);
		(void)snprintf(msg, sizeof(msg), "The model '%s' does not exist", r->path_id);
		return openai_error(r, 404, msg, "invalid_request_error", "model_not_found");
	}
	m = json_object_get(m);
	json_object_put(list);
	return http_reply_json(r, 200, m);
}
