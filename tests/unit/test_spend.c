/* test_spend.c: unit tests of the spending limits that need no database:
 * the allowed_models list (spend.h: validation, matching, the text of a
 * refusal), the max_tokens ceiling, the budget's day; the request layer's
 * refusals (request.h) and their settings in config_load. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "chat_limits.h"
#include "config.h"
#include "request.h"
#include "spend.h"

static struct config cfg;

static void
cfg_setup(void)
{
	memset(&cfg, 0, sizeof(cfg));
	cfg.model = (char *)"gpt-4o-mini";
	cfg.realtime_model = (char *)"gpt-realtime";
	cfg.allowed_models = (char *)"gpt-4o-mini, gpt-4o,gpt-4.1-mini  gpt-realtime-mini";
	cfg.max_tokens_ceiling = 4096;
}

/* ---- the model list ------------------------------------------------------------ */

START_TEST(models_valid_accepts_lists_and_refuses_bad_entries)
{
	const char *problem = NULL;
	char big[LIMIT_MODEL_LIST_BYTES + 2], name[LIMIT_MODEL_BYTES + 2];

	ck_assert(spend_models_valid(SPEND_DEFAULT_MODELS, &problem));
	ck_assert(spend_models_valid("", &problem));
	ck_assert(spend_models_valid(" , ,", &problem));
	ck_assert(spend_models_valid(NULL, &problem));
	ck_assert(spend_models_valid("org/model:tag, a.b_c-1", &problem));
	ck_assert(!spend_models_valid("gpt-4o,\tgpt-4o-mini", &problem));
	ck_assert_ptr_nonnull(problem);
	ck_assert(!spend_models_valid("gpt\x01", &problem));
	ck_assert(!spend_models_valid("caf\xc3\xa9", &problem));
	memset(name, 'm', LIMIT_MODEL_BYTES);
	name[LIMIT_MODEL_BYTES] = '\0';
	ck_assert(spend_models_valid(name, &problem));
	name[LIMIT_MODEL_BYTES] = 'm';
	name[LIMIT_MODEL_BYTES + 1] = '\0';
	ck_assert(!spend_models_valid(name, &problem));
	ck_assert_ptr_nonnull(strstr(problem, "longer"));
	memset(big, 'a', sizeof(big) - 1);
	for (size_t i = 50; i < sizeof(big) - 1; i += 51)
		big[i] = ',';
	big[sizeof(big) - 1] = '\0';
	ck_assert(!spend_models_valid(big, &problem));
}
END_TEST

START_TEST(model_allowed_is_exact)
{
	const char *list = cfg.allowed_models;

	ck_assert(spend_model_allowed(list, "gpt-4o-mini", "gpt-4o-mini"));
	ck_assert(spend_model_allowed(list, "gpt-4o-mini", "gpt-4o"));
	ck_assert(spend_model_allowed(list, "gpt-4o-mini", "gpt-4.1-mini"));
	ck_assert(spend_model_allowed(list, "gpt-4o-mini", "gpt-realtime-mini"));
	ck_assert(spend_model_allowed("", "own-model", "own-model"));     /* the configured one */
	ck_assert(spend_model_allowed(NULL, "own-model", "own-model"));
	ck_assert(!spend_model_allowed(list, "gpt-4o-mini", "gpt-4"));     /* a prefix */
	ck_assert(!spend_model_allowed(list, "gpt-4o-mini", "gpt-4o-mini-x"));
	ck_assert(!spend_model_allowed(list, "gpt-4o-mini", "GPT-4o"));     /* case */
	ck_assert(!spend_model_allowed(list, "gpt-4o-mini", " gpt-4o"));
	ck_assert(!spend_model_allowed(list, "gpt-4o-mini", "gpt-4o,gpt-4.1-mini"));
	ck_assert(!spend_model_allowed(list, "gpt-4o-mini", "o1-pro"));
	ck_assert(!spend_model_allowed(list, "gpt-4o-mini", ""));
	ck_assert(!spend_model_allowed(list, "gpt-4o-mini", NULL));
	ck_assert(!spend_model_allowed(list, NULL, "gpt-5"));
}
END_TEST

START_TEST(models_text_lists_the_configured_first_without_duplicates)
{
	char out[256], small[12];

	ck_assert(spend_models_text(cfg.allowed_models, "gpt-4o-mini", out, sizeof(out)));
	ck_assert_str_eq(out, "gpt-4o-mini, gpt-4o, gpt-4.1-mini, gpt-realtime-mini");
	ck_assert(spend_models_text("a, b, a,b , c", "c", out, sizeof(out)));
	ck_assert_str_eq(out, "c, a, b");
	ck_assert(spend_models_text("", "own", out, sizeof(out)));
	ck_assert_str_eq(out, "own");
	ck_assert(spend_models_text("x,y", NULL, out, sizeof(out)));
	ck_assert_str_eq(out, "x, y");
	ck_assert(!spend_models_text("gpt-4o, gpt-4.1", "gpt-4o-mini", small, sizeof(small)));
	ck_assert_uint_lt(strlen(small), sizeof(small));
	ck_assert(!spend_models_text("a", "b", small, 0));
}
END_TEST

/* ---- max_tokens, the budget, the day -------------------------------------- */

START_TEST(max_tokens_ceiling)
{
	ck_assert(spend_max_tokens_within(4096, 0));      /* not asked */
	ck_assert(spend_max_tokens_within(4096, -1));
	ck_assert(spend_max_tokens_within(4096, 1));
	ck_assert(spend_max_tokens_within(4096, 4096));
	ck_assert(!spend_max_tokens_within(4096, 4097));
	ck_assert(!spend_max_tokens_within(4096, 1000000));
	ck_assert(!spend_max_tokens_within(1, 2));
}
END_TEST

START_TEST(budget_spent_at_the_budget)
{
	ck_assert(!spend_budget_spent(0, 0));
	ck_assert(!spend_budget_spent(0, 1000000000000LL));   /* 0: no budget */
	ck_assert(!spend_budget_spent(1000, 0));
	ck_assert(!spend_budget_spent(1000, 999));
	ck_assert(spend_budget_spent(1000, 1000));
	ck_assert(spend_budget_spent(1000, 5000000000LL));
}
END_TEST

START_TEST(seconds_to_midnight_utc)
{
	/* 2026-12-04T00:00:00Z = 1796342400 */
	const time_t midnight = 1796342400;

	ck_assert_int_eq(spend_seconds_to_midnight_utc(midnight), 86400);
	ck_assert_int_eq(spend_seconds_to_midnight_utc(midnight + 1), 86399);
	ck_assert_int_eq(spend_seconds_to_midnight_utc(midnight + 6 * 3600 + 30 * 60), 63000);
	ck_assert_int_eq(spend_seconds_to_midnight_utc(midnight + 86399), 1);
	ck_assert_int_eq(spend_seconds_to_midnight_utc(0), 86400);
	ck_assert_int_eq(spend_seconds_to_midnight_utc(-1), 1);
}
END_TEST

/* ---- the request layer's refusals ---------------------------------------- */

START_TEST(request_model_check_words)
{
	char msg[REQUEST_SPEND_MSG_BYTES];
	struct request_result res;

	res = request_model_check(&cfg, REQUEST_MODEL_CHAT, NULL, msg, sizeof(msg));
	ck_assert_int_eq(res.status, 0);
	res = request_model_check(&cfg, REQUEST_MODEL_CHAT, "gpt-4o", msg, sizeof(msg));
	ck_assert_int_eq(res.status, 0);
	res = request_model_check(&cfg, REQUEST_MODEL_CHAT, "o1-pro", msg, sizeof(msg));
	ck_assert_int_eq(res.status, 400);
	ck_assert_ptr_eq(res.message, msg);
	ck_assert_str_eq(res.message, "model must be one of: gpt-4o-mini, gpt-4o, gpt-4.1-mini, gpt-realtime-mini");
	/* Voice: the configured realtime model, then the list. */
	res = request_model_check(&cfg, REQUEST_MODEL_REALTIME, "gpt-realtime", msg, sizeof(msg));
	ck_assert_int_eq(res.status, 0);
	res = request_model_check(&cfg, REQUEST_MODEL_REALTIME, "gpt-realtime-mini", msg, sizeof(msg));
	ck_assert_int_eq(res.status, 0);
	res = request_model_check(&cfg, REQUEST_MODEL_REALTIME, "gpt-4o-realtime-preview", msg, sizeof(msg));
	ck_assert_int_eq(res.status, 400);
	ck_assert_str_eq(res.message,
	    "realtime_model must be one of: gpt-realtime, gpt-4o-mini, gpt-4o, gpt-4.1-mini, gpt-realtime-mini");
	/* The server's own model is allowed whatever the list says. */
	cfg.allowed_models = (char *)"";
	res = request_model_check(&cfg, REQUEST_MODEL_CHAT, "gpt-4o-mini", msg, sizeof(msg));
	ck_assert_int_eq(res.status, 0);
	res = request_model_check(&cfg, REQUEST_MODEL_CHAT, "gpt-4o", msg, sizeof(msg));
	ck_assert_str_eq(res.message, "model must be one of: gpt-4o-mini");
}
END_TEST

START_TEST(request_max_tokens_check_words)
{
	char msg[REQUEST_SPEND_MSG_BYTES];
	struct request_result res;

	ck_assert_int_eq(request_max_tokens_check(&cfg, "max_tokens", 0, msg, sizeof(msg)).status, 0);
	ck_assert_int_eq(request_max_tokens_check(&cfg, "max_tokens", 4096, msg, sizeof(msg)).status, 0);
	res = request_max_tokens_check(&cfg, "max_completion_tokens", 4097, msg, sizeof(msg));
	ck_assert_int_eq(res.status, 400);
	ck_assert_str_eq(res.message, "max_completion_tokens must be at most 4096");
}
END_TEST

START_TEST(request_budget_off_or_anonymous_asks_nothing)
{
	long retry = -1;

	/* No store: a query would crash, so none is made. */
	ck_assert_int_eq(request_budget_check(&cfg, NULL, "0b6f0d5e-8c3a-4c5e-9a59-0d8e8f1f2a3b", &retry).status, 0);
	ck_assert_int_eq(retry, 0);
	cfg.daily_token_budget = 1000;
	ck_assert_int_eq(request_budget_check(&cfg, NULL, NULL, &retry).status, 0);
	ck_assert_int_eq(request_budget_check(&cfg, NULL, "", &retry).status, 0);
}
END_TEST

/* ---- the settings ------------------------------------------------------------------ */

static const char *const spend_env[] = {
	"CHAT_ALLOWED_MODELS", "CHAT_MAX_TOKENS", "CHAT_MAX_TOKENS_CEILING", "CHAT_DAILY_TOKEN_BUDGET",
	"CHAT_REGISTRATION", "CHAT_MODEL",
};

/* Every setting's variable: the test run's own (JWT_SECRET_FILE naming a
 * file not made yet, say) must not decide what config_load sees. */
static void
env_clear(void)
{
	const char *name, *env, *defval, *help;

	for (size_t i = 0; i < sizeof(spend_env) / sizeof(spend_env[0]); i++)
		unsetenv(spend_env[i]);
	for (size_t i = 0; config_describe(i, &name, &env, &defval, &help); i++)
		unsetenv(env);
}

START_TEST(config_defaults_and_checks)
{
	struct config c;
	char err[512];

	env_clear();
	ck_assert_msg(config_load(&c, NULL, err, sizeof(err)), "%s", err);
	ck_assert_str_eq(c.allowed_models, SPEND_DEFAULT_MODELS);
	ck_assert_int_eq(c.max_tokens_ceiling, 4096);
	ck_assert_int_eq(c.daily_token_budget, 0);
	ck_assert_str_eq(c.registration, "open");
	ck_assert(c.max_tokens <= c.max_tokens_ceiling);
	config_free(&c);

	ck_assert_int_eq(setenv("CHAT_REGISTRATION", "closed", 1), 0);
	ck_assert_int_eq(setenv("CHAT_DAILY_TOKEN_BUDGET", "50000", 1), 0);
	ck_assert_msg(config_load(&c, NULL, err, sizeof(err)), "%s", err);
	ck_assert_str_eq(c.registration, "closed");
	ck_assert_int_eq(c.daily_token_budget, 50000);
	config_free(&c);

	ck_assert_int_eq(setenv("CHAT_REGISTRATION", "invite", 1), 0);
	ck_assert(!config_load(&c, NULL, err, sizeof(err)));
	ck_assert_ptr_nonnull(strstr(err, "registration"));
	env_clear();

	ck_assert_int_eq(setenv("CHAT_MAX_TOKENS_CEILING", "1000", 1), 0);   /* max_tokens 2000 above it */
	ck_assert(!config_load(&c, NULL, err, sizeof(err)));
	ck_assert_ptr_nonnull(strstr(err, "max_tokens"));
	ck_assert_int_eq(setenv("CHAT_MAX_TOKENS", "1000", 1), 0);
	ck_assert_msg(config_load(&c, NULL, err, sizeof(err)), "%s", err);
	config_free(&c);
	env_clear();

	ck_assert_int_eq(setenv("CHAT_DAILY_TOKEN_BUDGET", "-1", 1), 0);
	ck_assert(!config_load(&c, NULL, err, sizeof(err)));
	env_clear();

	ck_assert_int_eq(setenv("CHAT_ALLOWED_MODELS", "gpt-4o,\x01", 1), 0);
	ck_assert(!config_load(&c, NULL, err, sizeof(err)));
	ck_assert_ptr_nonnull(strstr(err, "allowed_models"));
	ck_assert_int_eq(setenv("CHAT_ALLOWED_MODELS", "", 1), 0);   /* only the configured ones */
	ck_assert_msg(config_load(&c, NULL, err, sizeof(err)), "%s", err);
	config_free(&c);
	env_clear();
}
END_TEST

static Suite *
spend_suite(void)
{
	Suite *s = suite_create("spend");
	TCase *tc = tcase_create("spend");

	tcase_add_checked_fixture(tc, cfg_setup, NULL);
	tcase_add_test(tc, models_valid_accepts_lists_and_refuses_bad_entries);
	tcase_add_test(tc, model_allowed_is_exact);
	tcase_add_test(tc, models_text_lists_the_configured_first_without_duplicates);
	tcase_add_test(tc, max_tokens_ceiling);
	tcase_add_test(tc, budget_spent_at_the_budget);
	tcase_add_test(tc, seconds_to_midnight_utc);
	tcase_add_test(tc, request_model_check_words);
	tcase_add_test(tc, request_max_tokens_check_words);
	tcase_add_test(tc, request_budget_off_or_anonymous_asks_nothing);
	tcase_add_test(tc, config_defaults_and_checks);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(spend_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed != 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
