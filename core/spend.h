/* spend.h: the arithmetic of the spending limits, with no I/O: which models
 * clients may ask for (allowed_models), the max_tokens ceiling, and the UTC
 * day of the daily token budget. The request layer (request.h) applies them
 * and words the refusals; config.c validates the model list with them. */
#ifndef CHAT_SPEND_H
#define CHAT_SPEND_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

/* The default of allowed_models: current, moderately priced chat models and
 * the smaller voice model. The configured model and realtime_model are
 * always allowed besides. */
#define SPEND_DEFAULT_MODELS "gpt-4o-mini, gpt-4o, gpt-4.1, gpt-4.1-mini, gpt-4.1-nano, gpt-realtime-mini"

/* True if list (entries separated by commas and/or spaces) is well formed:
 * at most LIMIT_MODEL_LIST_BYTES, each entry 1 to LIMIT_MODEL_BYTES of
 * visible ASCII. An empty list is valid (only the configured models are
 * allowed). On false, *problem (static) says why. */
bool spend_models_valid(const char *list, const char **problem);

/* True if model may be asked for: it is configured (the server's own model,
 * NULL to have none) or one of list's entries. Exact, case-sensitive match,
 * like the upstream's. model NULL or "" is never allowed: a caller that has
 * no model to check does not call this. All borrowed. */
bool spend_model_allowed(const char *list, const char *configured, const char *model);

/* Writes the allowed models as "configured, a, b" (duplicates dropped) into
 * out (len bytes, always terminated). Returns false if it was cut short. */
bool spend_models_text(const char *list, const char *configured, char *out, size_t len);

/* True if a client asking for asked tokens stays within ceiling. asked <= 0
 * means "not asked" (the server's max_tokens applies) and is within. */
bool spend_max_tokens_within(int ceiling, long long asked);

/* True if a user who used `used` tokens today has spent budget; budget 0 is
 * no budget (never spent). */
bool spend_budget_spent(int budget, long long used);

/* Seconds from now to the next midnight UTC: 1 to 86400 (Retry-After once
 * the budget is spent). */
long spend_seconds_to_midnight_utc(time_t now);

#endif
