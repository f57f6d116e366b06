/* test_router.c: unit tests of router.h (method + path matching, {id}
 * capture, Allow lists), http.h's http_query_get, and the session list's
 * cursor (list_cursor.h), which comes in a query. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"
#include "list_cursor.h"
#include "router.h"

/* ---- a small local route table ------------------------------------------ */

static int h_health(struct request *r) { (void)r; return 200; }
static int h_login(struct request *r) { (void)r; return 200; }
static int h_list(struct request *r) { (void)r; return 200; }
static int h_create(struct request *r) { (void)r; return 201; }
static int h_get(struct request *r) { (void)r; return 200; }
static int h_rename(struct request *r) { (void)r; return 200; }
static int h_delete(struct request *r) { (void)r; return 204; }
static int h_stream(struct request *r) { (void)r; return 200; }

static const struct route table[] = {
	{ "GET",    "/healthz",                   h_health, ROUTE_PUBLIC, 0, "healthz" },
	{ "POST",   "/api/auth/login",            h_login,  ROUTE_PUBLIC, 0, "login" },
	{ "GET",    "/api/sessions",              h_list,   ROUTE_AUTH_REQUIRED, 0, "list" },
	{ "POST",   "/api/sessions",              h_create, ROUTE_AUTH_REQUIRED, 0, "create" },
	{ "GET",    "/api/sessions/{id}",         h_get,    ROUTE_AUTH_REQUIRED, 0, "get" },
	{ "PATCH",  "/api/sessions/{id}",         h_rename, ROUTE_AUTH_REQUIRED, 0, "rename" },
	{ "DELETE", "/api/sessions/{id}",         h_delete, ROUTE_AUTH_REQUIRED, 0, "delete" },
	{ "POST",   "/api/sessions/{id}/stream",  h_stream, ROUTE_AUTH_REQUIRED, 0, "stream" },
};
#define NROUTES (sizeof(table) / sizeof(table[0]))

#define UUID "0b9e6c1e-3f4a-4c2d-9e8f-1a2b3c4d5e6f"

struct match {
	enum route_match  rc;
	const struct route *route;
	char              id[64];
	char              allow[128];
};

static struct match
match(const char *method, const char *path)
{
	struct match m;

	memset(&m, 0, sizeof(m));
	m.route = NULL;
	memset(m.id, 'Z', sizeof(m.id) - 1);   /* stale bytes must be overwritten */
	memset(m.allow, 'Z', sizeof(m.allow) - 1);
	m.rc = router_match(table, NROUTES, method, path, &m.route, m.id, sizeof(m.id),
	    m.allow, sizeof(m.allow));
	return m;
}

static void
assert_found(const char *method, const char *path, const char *name, const char *id)
{
	struct match m = match(method, path);

	ck_assert_msg(m.rc == ROUTE_FOUND, "%s %s: rc %d", method, path, m.rc);
	ck_assert_ptr_nonnull(m.route);
	ck_assert_str_eq(m.route->name, name);
	ck_assert_str_eq(m.route->method, method);
	ck_assert_str_eq(m.id, id);
}

static void
assert_not_found(const char *method, const char *path)
{
	struct match m = match(method, path);

	ck_assert_msg(m.rc == ROUTE_NOT_FOUND, "%s %s: rc %d, want NOT_FOUND", method, path, m.rc);
	ck_assert_str_eq(m.id, "");
	ck_assert_str_eq(m.allow, "");
}

static void
assert_bad_method(const char *method, const char *path, const char *allow)
{
	struct match m = match(method, path);

	ck_assert_msg(m.rc == ROUTE_BAD_METHOD, "%s %s: rc %d, want BAD_METHOD", method, path, m.rc);
	ck_assert_str_eq(m.allow, allow);
	ck_assert_str_eq(m.id, "");
}

/* ---- router_match ------------------------------------------------------------ */

START_TEST(literal_paths_match)
{
	assert_found("GET", "/healthz", "healthz", "");
	assert_found("POST", "/api/auth/login", "login", "");
	assert_found("GET", "/api/sessions", "list", "");
	assert_found("POST", "/api/sessions", "create", "");
}
END_TEST

START_TEST(found_route_points_into_the_table)
{
	struct match m = match("DELETE", "/api/sessions/" UUID);

	ck_assert_int_eq(m.rc, ROUTE_FOUND);
	ck_assert_ptr_eq(m.route, &table[6]);
	ck_assert_ptr_eq(m.route->handler, h_delete);
	ck_assert_int_eq(m.route->handler(NULL), 204);
}
END_TEST

START_TEST(id_captures_a_uuid)
{
	assert_found("GET", "/api/sessions/" UUID, "get", UUID);
	assert_found("PATCH", "/api/sessions/" UUID, "rename", UUID);
	assert_found("DELETE", "/api/sessions/" UUID, "delete", UUID);
	assert_found("POST", "/api/sessions/" UUID "/stream", "stream", UUID);
}
END_TEST

START_TEST(id_allows_letters_digits_hyphen_underscore)
{
	assert_found("GET", "/api/sessions/a", "get", "a");
	assert_found("GET", "/api/sessions/Az09-_", "get", "Az09-_");
	assert_found("GET", "/api/sessions/-", "get", "-");
}
END_TEST

START_TEST(id_of_63_chars_is_accepted)
{
	char path[128], id[64];

	memset(id, 'a', 63);
	id[63] = '\0';
	(void)snprintf(path, sizeof(path), "/api/sessions/%s", id);
	assert_found("GET", path, "get", id);
	(void)snprintf(path, sizeof(path), "/api/sessions/%s/stream", id);
	assert_found("POST", path, "stream", id);
}
END_TEST

START_TEST(id_of_64_chars_is_too_long)
{
	char path[128], id[65];

	memset(id, 'a', 64);
	id[64] = '\0';
	(void)snprintf(path, sizeof(path), "/api/sessions/%s", id);
	assert_not_found("GET", path);
	assert_not_found("PUT", path);
	(void)snprintf(path, sizeof(path), "/api/sessions/%s/stream", id);
	assert_not_found("POST", path);
}
END_TEST

START_TEST(id_empty_does_not_match)
{
	assert_not_found("GET", "/api/sessions/");
	assert_not_found("POST", "/api/sessions//stream");
}
END_TEST

START_TEST(id_with_bad_characters_does_not_match)
{
	static const char *const bad[] = {
		"/api/sessions/abc.def", "/api/sessions/..", "/api/sessions/.",
		"/api/sessions/abc%2Fdef", "/api/sessions/%41", "/api/sessions/a/b",
		"/api/sessions/a b", "/api/sessions/a+b", "/api/sessions/a~b",
		"/api/sessions/caf\xc3\xa9", "/api/sessions/a?b", "/api/sessions/a;b",
		"/api/sessions/a\\b",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_not_found("GET", bad[i]);
		assert_not_found("DELETE", bad[i]);
	}
	assert_not_found("POST", "/api/sessions/a.b/stream");
	assert_not_found("POST", "/api/sessions/a%2Fb/stream");
}
END_TEST

START_TEST(trailing_slash_does_not_match)
{
	assert_not_found("GET", "/healthz/");
	assert_not_found("POST", "/api/auth/login/");
	assert_not_found("GET", "/api/sessions/" UUID "/");
	assert_not_found("POST", "/api/sessions/" UUID "/stream/");
}
END_TEST

START_TEST(prefixes_and_extensions_do_not_match)
{
	assert_not_found("GET", "/healthzz");
	assert_not_found("GET", "/health");
	assert_not_found("GET", "/healthz/x");
	assert_not_found("GET", "/api/session");
	assert_not_found("GET", "/api/sessionsx");
	assert_not_found("POST", "/api/sessions/" UUID "/streams");
	assert_not_found("POST", "/api/sessions/" UUID "/stream/x");
	assert_not_found("GET", "/HEALTHZ");
	assert_not_found("GET", "//healthz");
	assert_not_found("GET", "");
	assert_not_found("GET", "/");
}
END_TEST

START_TEST(unknown_path_is_not_found)
{
	assert_not_found("GET", "/nope");
	assert_not_found("POST", "/api/unknown/" UUID);
}
END_TEST

START_TEST(method_mismatch_lists_allowed_methods)
{
	assert_bad_method("PUT", "/api/sessions/" UUID, "GET, PATCH, DELETE");
	assert_bad_method("POST", "/api/sessions/" UUID, "GET, PATCH, DELETE");
	assert_bad_method("DELETE", "/api/sessions", "GET, POST");
	assert_bad_method("GET", "/api/sessions/" UUID "/stream", "POST");
	assert_bad_method("POST", "/healthz", "GET");
	assert_bad_method("GET", "/api/auth/login", "POST");
}
END_TEST

START_TEST(method_is_case_sensitive)
{
	assert_bad_method("get", "/healthz", "GET");
	assert_bad_method("Post", "/api/sessions", "GET, POST");
	assert_bad_method("", "/healthz", "GET");
}
END_TEST

START_TEST(allow_list_never_overflows_a_small_buffer)
{
	for (size_t len = 1; len <= 24; len++) {
		char allow[32];
		const struct route *out = NULL;
		char id[64];

		memset(allow, 'Z', sizeof(allow));
		ck_assert_int_eq(router_match(table, NROUTES, "PUT", "/api/sessions/" UUID, &out, id,
		    sizeof(id), allow, len), ROUTE_BAD_METHOD);
		ck_assert_msg(memchr(allow, '\0', len) != NULL, "len %zu: not terminated", len);
		for (size_t i = len; i < sizeof(allow); i++)
			ck_assert_msg(allow[i] == 'Z', "len %zu: wrote byte %zu", len, i);
		/* whatever fits is a prefix of the full list, cut at a method */
		ck_assert_msg(strncmp("GET, PATCH, DELETE", allow, strlen(allow)) == 0,
		    "len %zu: %s", len, allow);
	}
}
END_TEST

START_TEST(allow_buffer_may_be_absent)
{
	const struct route *out = NULL;
	char id[64];

	ck_assert_int_eq(router_match(table, NROUTES, "PUT", "/healthz", &out, id, sizeof(id),
	    NULL, 0), ROUTE_BAD_METHOD);
}
END_TEST

START_TEST(empty_table_finds_nothing)
{
	const struct route *out = NULL;
	char id[64] = "stale", allow[32] = "stale";

	ck_assert_int_eq(router_match(table, 0, "GET", "/healthz", &out, id, sizeof(id),
	    allow, sizeof(allow)), ROUTE_NOT_FOUND);
	ck_assert_str_eq(allow, "");
}
END_TEST

/* ---- router_path_matches ------------------------------------------------------ */

START_TEST(model_captures_dots_and_colons)
{
	char id[64];

	ck_assert_int_ne(router_path_matches("/v1/models/{model}", "/v1/models/gpt-4.1", id, sizeof(id)), 0);
	ck_assert_str_eq(id, "gpt-4.1");
	ck_assert_int_ne(router_path_matches("/v1/models/{model}", "/v1/models/ft:gpt-4o:org", id, sizeof(id)), 0);
	ck_assert_str_eq(id, "ft:gpt-4o:org");
	ck_assert_int_eq(router_path_matches("/v1/models/{model}", "/v1/models/a/b", id, sizeof(id)), 0);
	ck_assert_int_eq(router_path_matches("/v1/models/{model}", "/v1/models/", id, sizeof(id)), 0);
	ck_assert_int_eq(router_path_matches("/v1/models/{model}", "/v1/models/a b", id, sizeof(id)), 0);
	/* the {id} rule is unchanged: no dots */
	ck_assert_int_eq(router_path_matches("/v1/models/{id}", "/v1/models/gpt-4.1", id, sizeof(id)), 0);
}
END_TEST

/* A model name may be as long as the request body allows (100 bytes); an
 * {id} stays under 64. */
START_TEST(model_captures_up_to_the_model_limit)
{
	char id[LIMIT_MODEL_BYTES + 1], path[256];

	(void)snprintf(path, sizeof(path), "/v1/models/%0*d", LIMIT_MODEL_BYTES, 7);
	ck_assert_int_ne(router_path_matches("/v1/models/{model}", path, id, sizeof(id)), 0);
	ck_assert_uint_eq(strlen(id), LIMIT_MODEL_BYTES);
	(void)snprintf(path, sizeof(path), "/v1/models/%0*d", LIMIT_MODEL_BYTES + 1, 7);
	ck_assert_int_eq(router_path_matches("/v1/models/{model}", path, id, sizeof(id)), 0);
	(void)snprintf(path, sizeof(path), "/s/%0*d", 64, 7);
	ck_assert_int_eq(router_path_matches("/s/{id}", path, id, sizeof(id)), 0);
	/* a capture that does not fit the caller's buffer is no match */
	(void)snprintf(path, sizeof(path), "/v1/models/%0*d", 70, 7);
	ck_assert_int_eq(router_path_matches("/v1/models/{model}", path, id, 64), 0);
}
END_TEST


START_TEST(path_matches_without_id_buffer)
{
	ck_assert_int_ne(router_path_matches("/a/{id}/b", "/a/x1/b", NULL, 0), 0);
	ck_assert_int_eq(router_path_matches("/a/{id}/b", "/a/x.1/b", NULL, 0), 0);
	ck_assert_int_ne(router_path_matches("/a", "/a", NULL, 0), 0);
	ck_assert_int_eq(router_path_matches("/a", "/a/", NULL, 0), 0);
}
END_TEST

START_TEST(path_matches_id_at_64_without_buffer_is_too_long)
{
	char path[80];

	memcpy(path, "/a/", 3);
	memset(path + 3, 'k', 64);
	path[67] = '\0';
	ck_assert_int_eq(router_path_matches("/a/{id}", path, NULL, 0), 0);
	path[66] = '\0';
	ck_assert_int_ne(router_path_matches("/a/{id}", path, NULL, 0), 0);
}
END_TEST

START_TEST(path_matches_never_overflows_small_id_buffer)
{
	char id[8];

	memset(id, 'Z', sizeof(id));
	ck_assert_int_eq(router_path_matches("/a/{id}", "/a/abcdefgh", id, 4), 0);
	for (size_t i = 4; i < sizeof(id); i++)
		ck_assert_int_eq(id[i], 'Z');
	ck_assert_int_ne(router_path_matches("/a/{id}", "/a/abc", id, 4), 0);
	ck_assert_str_eq(id, "abc");
}
END_TEST

/* ---- http_query_get ---------------------------------------------------------- */

static bool
q(const char *query, const char *name, char *out, size_t outlen)
{
	memset(out, 'Z', outlen);
	return http_query_get(query, name, out, outlen);
}

START_TEST(query_finds_keys)
{
	char out[64];

	ck_assert(q("a=1&b=2&c=3", "a", out, sizeof(out)));
	ck_assert_str_eq(out, "1");
	ck_assert(q("a=1&b=2&c=3", "b", out, sizeof(out)));
	ck_assert_str_eq(out, "2");
	ck_assert(q("a=1&b=2&c=3", "c", out, sizeof(out)));
	ck_assert_str_eq(out, "3");
	ck_assert(q("limit=20", "limit", out, sizeof(out)));
	ck_assert_str_eq(out, "20");
}
END_TEST

START_TEST(query_percent_decodes)
{
	char out[64];

	ck_assert(q("q=hello%20world%21", "q", out, sizeof(out)));
	ck_assert_str_eq(out, "hello world!");
	ck_assert(q("q=%2f%2F", "q", out, sizeof(out)));
	ck_assert_str_eq(out, "//");
	ck_assert(q("q=a%26b%3Dc&x=1", "q", out, sizeof(out)));
	ck_assert_str_eq(out, "a&b=c");
	ck_assert(q("q=caf%C3%A9", "q", out, sizeof(out)));
	ck_assert_str_eq(out, "caf\xc3\xa9");
	ck_assert(q("q=%2B", "q", out, sizeof(out)));
	ck_assert_str_eq(out, "+");
}
END_TEST

START_TEST(query_plus_is_space)
{
	char out[64];

	ck_assert(q("q=a+b++c", "q", out, sizeof(out)));
	ck_assert_str_eq(out, "a b  c");
}
END_TEST

START_TEST(query_invalid_percent_kept_literally)
{
	char out[64];

	ck_assert(q("q=%zz", "q", out, sizeof(out)));
	ck_assert_str_eq(out, "%zz");
	ck_assert(q("q=50%", "q", out, sizeof(out)));
	ck_assert_str_eq(out, "50%");
	ck_assert(q("q=%4", "q", out, sizeof(out)));
	ck_assert_str_eq(out, "%4");
	ck_assert(q("q=%4&x=1", "q", out, sizeof(out)));
	ck_assert_str_eq(out, "%4");
}
END_TEST

START_TEST(query_missing_key)
{
	char out[64];

	ck_assert(!q("a=1&b=2", "c", out, sizeof(out)));
	ck_assert(!q("", "a", out, sizeof(out)));
	ck_assert(!http_query_get(NULL, "a", out, sizeof(out)));
	ck_assert(!q("a", "a", out, sizeof(out)));        /* no '=' */
	ck_assert(!q("a&b=1", "a", out, sizeof(out)));
	ck_assert(!q("&&&", "a", out, sizeof(out)));
	ck_assert(!q("=1", "a", out, sizeof(out)));
}
END_TEST

START_TEST(query_key_prefix_of_another_key)
{
	char out[64];

	ck_assert(q("limitx=5&limit=3", "limit", out, sizeof(out)));
	ck_assert_str_eq(out, "3");
	ck_assert(!q("limitx=5", "limit", out, sizeof(out)));
	ck_assert(!q("xlimit=5", "limit", out, sizeof(out)));
	ck_assert(!q("limit=5", "limitx", out, sizeof(out)));
	ck_assert(!q("lim=5", "limit", out, sizeof(out)));
	ck_assert(q("limit=3&limitx=5", "limitx", out, sizeof(out)));
	ck_assert_str_eq(out, "5");
}
END_TEST

START_TEST(query_empty_value_and_equals_in_value)
{
	char out[64];

	ck_assert(q("a=&b=2", "a", out, sizeof(out)));
	ck_assert_str_eq(out, "");
	ck_assert(q("a=b=c", "a", out, sizeof(out)));
	ck_assert_str_eq(out, "b=c");
	ck_assert(q("a=1&a=2", "a", out, sizeof(out)));
	ck_assert_str_eq(out, "1");
}
END_TEST

START_TEST(query_value_too_long)
{
	char out[8];

	ck_assert(q("a=1234567", "a", out, sizeof(out)));
	ck_assert_str_eq(out, "1234567");
	ck_assert(!q("a=12345678", "a", out, sizeof(out)));
	/* decoded length is what counts */
	ck_assert(q("a=%31%32%33%34%35%36%37", "a", out, sizeof(out)));
	ck_assert_str_eq(out, "1234567");
	ck_assert(!q("a=%31%32%33%34%35%36%37%38", "a", out, sizeof(out)));
}
END_TEST

START_TEST(query_percent_00_refused)
{
	char out[64];

	ck_assert(!q("a=%00", "a", out, sizeof(out)));
	ck_assert(!q("a=x%00y", "a", out, sizeof(out)));
	ck_assert(q("b=%00&a=ok", "a", out, sizeof(out)));
	ck_assert_str_eq(out, "ok");
}
END_TEST

/* ---- the session list's cursor ------------------------------------------ */

START_TEST(cursor_round_trips)
{
	char c[LIST_CURSOR_MAX], id[37];
	long long us = 0;

	ck_assert(list_cursor_format(c, sizeof(c), 1733300000123456LL, UUID));
	ck_assert_str_eq(c, "1733300000123456_" UUID);
	ck_assert(list_cursor_parse(c, &us, id));
	ck_assert_int_eq(us, 1733300000123456LL);
	ck_assert_str_eq(id, UUID);
	ck_assert(list_cursor_format(c, sizeof(c), 0, UUID));
	ck_assert(list_cursor_parse(c, &us, id));
	ck_assert_int_eq(us, 0);
	ck_assert(list_cursor_format(c, sizeof(c), LIST_CURSOR_END_US, UUID));
	ck_assert(list_cursor_parse(c, &us, id));
	ck_assert_int_eq(us, LIST_CURSOR_END_US);
}
END_TEST

START_TEST(cursor_refuses_what_it_did_not_make)
{
	static const char *const bad[] = {
		"", "_", "123", "123_", "_" UUID, "-1_" UUID, "+1_" UUID, " 1_" UUID, "1 _" UUID,
		"0x10_" UUID, "1_" UUID "x", "1_" UUID "_", "1_0b9e6c1e3f4a4c2d9e8f1a2b3c4d5e6f",
		"253402300800000001_" UUID, "999999999999999999_" UUID,
		"9999999999999999999999_" UUID, "1.5_" UUID, "1__" UUID,
	};
	char id[37] = "untouched";
	long long us = 42;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ck_assert_msg(!list_cursor_parse(bad[i], &us, id), "accepted '%s'", bad[i]);
		ck_assert_int_eq(us, 42);
	}
}
END_TEST

START_TEST(cursor_format_checks_its_parts_and_room)
{
	char c[LIST_CURSOR_MAX], small[20];

	ck_assert(!list_cursor_format(c, sizeof(c), -1, UUID));
	ck_assert(!list_cursor_format(c, sizeof(c), LIST_CURSOR_END_US + 1, UUID));
	ck_assert(!list_cursor_format(c, sizeof(c), 1, "not-a-uuid"));
	ck_assert(!list_cursor_format(small, sizeof(small), 1, UUID));
}
END_TEST

/* ---- the suite ---------------------------------------------------------- */

static Suite *
router_suite(void)
{
	Suite *s = suite_create("router");
	TCase *tc = tcase_create("router");
	TCase *tq = tcase_create("query");

	tcase_add_test(tc, literal_paths_match);
	tcase_add_test(tc, model_captures_dots_and_colons);
	tcase_add_test(tc, model_captures_up_to_the_model_limit);
	tcase_add_test(tc, found_route_points_into_the_table);
	tcase_add_test(tc, id_captures_a_uuid);
	tcase_add_test(tc, id_allows_letters_digits_hyphen_underscore);
	tcase_add_test(tc, id_of_63_chars_is_accepted);
	tcase_add_test(tc, id_of_64_chars_is_too_long);
	tcase_add_test(tc, id_empty_does_not_match);
	tcase_add_test(tc, id_with_bad_characters_does_not_match);
	tcase_add_test(tc, trailing_slash_does_not_match);
	tcase_add_test(tc, prefixes_and_extensions_do_not_match);
	tcase_add_test(tc, unknown_path_is_not_found);
	tcase_add_test(tc, method_mismatch_lists_allowed_methods);
	tcase_add_test(tc, method_is_case_sensitive);
	tcase_add_test(tc, allow_list_never_overflows_a_small_buffer);
	tcase_add_test(tc, allow_buffer_may_be_absent);
	tcase_add_test(tc, empty_table_finds_nothing);
	tcase_add_test(tc, path_matches_without_id_buffer);
	tcase_add_test(tc, path_matches_id_at_64_without_buffer_is_too_long);
	tcase_add_test(tc, path_matches_never_overflows_small_id_buffer);
	suite_add_tcase(s, tc);

	tcase_add_test(tq, query_finds_keys);
	tcase_add_test(tq, query_percent_decodes);
	tcase_add_test(tq, query_plus_is_space);
	tcase_add_test(tq, query_invalid_percent_kept_literally);
	tcase_add_test(tq, query_missing_key);
	tcase_add_test(tq, query_key_prefix_of_another_key);
	tcase_add_test(tq, query_empty_value_and_equals_in_value);
	tcase_add_test(tq, query_value_too_long);
	tcase_add_test(tq, query_percent_00_refused);
	suite_add_tcase(s, tq);

	TCase *tcur = tcase_create("cursor");
	tcase_add_test(tcur, cursor_round_trips);
	tcase_add_test(tcur, cursor_refuses_what_it_did_not_make);
	tcase_add_test(tcur, cursor_format_checks_its_parts_and_room);
	suite_add_tcase(s, tcur);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(router_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed != 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
