/* spend.c: the spending limits' arithmetic of spend.h. */
#include "spend.h"

#include <stdio.h>
#include <string.h>

#include "chat_limits.h"
#include "config.h"

#define SECONDS_PER_DAY 86400

static bool
is_separator(char c)
{
	return c == ',' || c == ' ';   /* as config_list_has splits */
}

/* The entry at *p (separators skipped): its start and length, 0 past the
 * end. Advances *p past it. */
static size_t
next_entry(const char **p, const char **start)
{
	const char *s = *p, *e;

	while (*s != '\0' && is_separator(*s))
		s++;
	e = s;
	while (*e != '\0' && !is_separator(*e))
		e++;
	*start = s;
	*p = e;
	return (size_t)(e - s);
}

bool
spend_models_valid(const char *list, const char **problem)
{
	const char *p = list, *name;
	size_t n;

	if (list == NULL)
		return true;
	if (strlen(list) > LIMIT_MODEL_LIST_BYTES) {
		*problem = "longer than " LIMIT_TEXT(LIMIT_MODEL_LIST_BYTES) " bytes";
		return false;
	}
	while ((n = next_entry(&p, &name)) > 0) {
		if (n > LIMIT_MODEL_BYTES) {
			*problem = "a model name is longer than " LIMIT_TEXT(LIMIT_MODEL_BYTES) " bytes";
			return false;
		}
		for (size_t i = 0; i < n; i++)
			if ((unsigned char)name[i] < 0x21 || (unsigned char)name[i] > 0x7e) {
				*problem = "model names are visible ASCII, separated by commas";
				return false;
			}
	}
	return true;
}

bool
spend_model_allowed(const char *list, const char *configured, const char *model)
{
	if (model == NULL || model[0] == '\0')
		return false;
	if (configured != NULL && strcmp(configured, model) == 0)
		return true;
	return list != NULL && config_list_has(list, model);
}

/* True if the n bytes at name are configured or an entry of list before
 * the one at name. */
static bool
seen_before(const char *list, const char *configured, const char *name, size_t n)
{
	const char *p = list, *other;
	size_t m;

	if (configured != NULL && strlen(configured) == n && memcmp(configured, name, n) == 0)
		return true;
	while ((m = next_entry(&p, &other)) > 0 && other < name)
		if (m == n && memcmp(other, name, n) == 0)
			return true;
	return false;
}

bool
spend_models_text(const char *list, const char *configured, char *out, size_t len)
{
	const char *p = list, *name;
	size_t used = 0, n;
	int w;

	if (len == 0)
		return false;
	out[0] = '\0';
	if (configured != NULL && configured[0] != '\0') {
		w = snprintf(out, len, "%s", configured);
		if (w < 0 || (size_t)w >= len)
			return false;
		used = (size_t)w;
	}
	while (list != NULL && (n = next_entry(&p, &name)) > 0) {
		if (seen_before(list, configured, name, n))
			continue;
		w = snprintf(out + used, len - used, "%s%.*s", used > 0 ? ", " : "", (int)n, name);
		if (w < 0 || (size_t)w >= len - used)
			return false;
		used += (size_t)w;
	}
	return true;
}

bool
spend_max_tokens_within(int ceiling, long long asked)
{
	return asked <= 0 || asked <= (long long)ceiling;
}

bool
spend_budget_spent(int budget, long long used)
{
	return budget > 0 && used >= (long long)budget;
}

long
spend_seconds_to_midnight_utc(time_t now)
{
	long into_day = (long)(now % SECONDS_PER_DAY);

	if (into_day < 0)   /* before 1970: still a day boundary every 86400 s */
		into_day += SECONDS_PER_DAY;
	return SECONDS_PER_DAY - into_day;
}
