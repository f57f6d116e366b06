/* request_spend.c: the request layer's spending limits (request.h): the
 * models a client may ask for, the max_tokens ceiling and the daily token
 * budget, worded once for both front ends. */
#include "request.h"

#include <stdio.h>
#include <time.h>

#include "config.h"
#include "log.h"
#include "spend.h"

static struct request_result
spend_result(int status, const char *message)
{
	return (struct request_result){ status, message };
}

struct request_result
request_model_check(const struct config *cfg, enum request_model_kind kind, const char *model,
    char *msg, size_t len)
{
	const char *configured = kind == REQUEST_MODEL_REALTIME ? cfg->realtime_model : cfg->model;
	const char *field = kind == REQUEST_MODEL_REALTIME ? "realtime_model" : "model";
	char models[LIMIT_MODEL_LIST_BYTES + LIMIT_MODEL_BYTES + 8];
	int n;

	if (model == NULL || spend_model_allowed(cfg->allowed_models, configured, model))
		return spend_result(0, NULL);
	/* The list is bounded at load (spend_models_valid), so it fits; cut
	 * short, the refusal still stands. */
	if (!spend_models_text(cfg->allowed_models, configured, models, sizeof(models)))
		log_warn("allowed_models: the list of models was cut short in a refusal");
	n = snprintf(msg, len, "%s must be one of: %s", field, models);
	if (n < 0 || (size_t)n >= len)
		log_warn("allowed_models: a refusal was cut short");
	return spend_result(400, msg);
}

struct request_result
request_max_tokens_check(const struct config *cfg, const char *field, long long asked, char *msg,
    size_t len)
{
	int n;

	if (spend_max_tokens_within(cfg->max_tokens_ceiling, asked))
		return spend_result(0, NULL);
	n = snprintf(msg, len, "%s must be at most %d", field, cfg->max_tokens_ceiling);
	if (n < 0 || (size_t)n >= len)
		log_warn("max_tokens: a refusal was cut short");
	return spend_result(400, msg);
}

struct request_result
request_budget_check(const struct config *cfg, struct store *store, const char *user_id,
    long *retry_after_s)
{
	long long used = 0;
	enum store_rc rc;

	*retry_after_s = 0;
	if (cfg->daily_token_budget <= 0 || user_id == NULL || user_id[0] == '\0')
		return spend_result(0, NULL);
	if ((rc = store_user_tokens_today(store, user_id, &used)) != STORE_OK)
		return request_store_error(rc == STORE_NOT_FOUND ? STORE_ERROR : rc, "Not found");
	if (!spend_budget_spent(cfg->daily_token_budget, used))
		return spend_result(0, NULL);
	*retry_after_s = spend_seconds_to_midnight_utc(time(NULL));
	log_info("token budget: user %s used %lld of %d today", user_id, used, cfg->daily_token_budget);
	return spend_result(429, REQUEST_MSG_BUDGET_SPENT);
}
