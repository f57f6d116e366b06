/* test_model_list.c: unit tests of model_list.h: which models /v1/models
 * lists with and without the upstream's answer. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "model_list.h"

static const char *
id_at(json_object *list, size_t i)
{
	return json_object_get_string(json_object_object_get(json_object_array_get_idx(list, i), "id"));
}

START_TEST(without_the_upstream_the_configured_models_once_each)
{
	json_object *l = model_list_build("gpt-4o-mini", "gpt-4o, gpt-4o-mini,gpt-4.1  o4-mini", NULL);

	ck_assert_ptr_nonnull(l);
	ck_assert_uint_eq(json_object_array_length(l), 4);
	ck_assert_str_eq(id_at(l, 0), "gpt-4o-mini");
	ck_assert_str_eq(id_at(l, 1), "gpt-4o");
	ck_assert_str_eq(id_at(l, 2), "gpt-4.1");
	ck_assert_str_eq(id_at(l, 3), "o4-mini");
	json_object *m = json_object_array_get_idx(l, 2);
	ck_assert_str_eq(json_object_get_string(json_object_object_get(m, "object")), "model");
	ck_assert_int_eq(json_object_get_int64(json_object_object_get(m, "created")), 0);
	ck_assert_str_eq(json_object_get_string(json_object_object_get(m, "owned_by")), "chatd");
	json_object_put(l);
}
END_TEST

START_TEST(with_the_upstream_only_what_it_lists_with_its_details)
{
	const char *up = "{\"object\":\"list\",\"data\":[{\"id\":\"gpt-4.1\",\"created\":1744,\"owned_by\":\"system\"},"
	    "{\"id\":\"secret-model\",\"created\":1},{\"id\":7},\"junk\",{\"id\":\"gpt-4o-mini\"}]}";
	json_object *l = model_list_build("gpt-4o-mini", "gpt-4o,gpt-4.1", up);

	ck_assert_uint_eq(json_object_array_length(l), 2);
	ck_assert_str_eq(id_at(l, 0), "gpt-4o-mini");
	ck_assert_str_eq(id_at(l, 1), "gpt-4.1");
	json_object *m = model_list_find(l, "gpt-4.1");
	ck_assert_ptr_nonnull(m);
	ck_assert_int_eq(json_object_get_int64(json_object_object_get(m, "created")), 1744);
	ck_assert_str_eq(json_object_get_string(json_object_object_get(m, "owned_by")), "system");
	ck_assert_ptr_null(model_list_find(l, "secret-model"));
	ck_assert_ptr_null(model_list_find(l, "gpt-4o"));
	json_object_put(l);
}
END_TEST

START_TEST(an_answer_that_is_not_a_list_counts_as_none)
{
	static const char *const bad[] = { "not json", "[]", "{\"data\":{}}", "{\"object\":\"list\"}" };

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		json_object *l = model_list_build("a", "b", bad[i]);
		ck_assert_uint_eq(json_object_array_length(l), 2);
		json_object_put(l);
	}
	json_object *l = model_list_build("a", "b", "{\"data\":[]}");
	ck_assert_uint_eq(json_object_array_length(l), 0);  /* it answered: it serves none of them */
	json_object_put(l);
}
END_TEST

START_TEST(empty_configuration_and_lookups)
{
	json_object *l = model_list_build(NULL, NULL, NULL);

	ck_assert_uint_eq(json_object_array_length(l), 0);
	ck_assert_ptr_null(model_list_find(l, "x"));
	ck_assert_ptr_null(model_list_find(NULL, "x"));
	json_object_put(l);
}
END_TEST

static Suite *
model_list_suite(void)
{
	Suite *s = suite_create("model_list");
	TCase *tc = tcase_create("model_list");

	tcase_add_test(tc, without_the_upstream_the_configured_models_once_each);
	tcase_add_test(tc, with_the_upstream_only_what_it_lists_with_its_details);
	tcase_add_test(tc, an_answer_that_is_not_a_list_counts_as_none);
	tcase_add_test(tc, empty_configuration_and_lookups);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(model_list_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed != 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
