/* test_request.c: unit tests of the request layer (request.h) and the
 * origin check (cors.h) that need no database: the client address, the
 * one store_rc mapping, the message input, a refused token, an unlimited
 * class, the session turn; config_list_has under both. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "chat_limits.h"
#include "config.h"
#include "conversation.h"
#include "cors.h"
#include "engine.h"
#include "request.h"

static struct config cfg;

static void
cfg_setup(void)
{
	memset(&cfg, 0, sizeof(cfg));
	cfg.cors_origins = (char *)"https://app.example, https://admin.example";
	cfg.trusted_proxies = (char *)"127.0.0.1,10.0.0.2";
	cfg.jwt_secret = (char *)"";
	cfg.jwt_issuer = (char *)"chatd";
}

/* ---- config_list_has ---------------------------------------------------- */

START_TEST(list_has_matches_whole_entries)
{
	ck_assert(config_list_has("a, b,c  d", "a"));
	ck_assert(config_list_has("a, b,c  d", "b"));
	ck_assert(config_list_has("a, b,c  d", "c"));
	ck_assert(config_list_has("a, b,c  d", "d"));
	ck_assert(!config_list_has("abc", "ab"));
	ck_assert(!config_list_has("ab", "abc"));
	ck_assert(!config_list_has("a,b", ""));
	ck_assert(!config_list_has("", "a"));
	ck_assert(!config_list_has(NULL, "a"));
	ck_assert(!config_list_has(" , ,", ","));
}
END_TEST

/* ---- cors_origin_allowed ------------------------------------------------ */

START_TEST(cors_listed_origins_only)
{
	ck_assert(cors_origin_allowed(&cfg, "https://app.example", NULL));
	ck_assert(cors_origin_allowed(&cfg, "https://admin.example", NULL));
	ck_assert(!cors_origin_allowed(&cfg, "https://app.example.evil", NULL));
	ck_assert(!cors_origin_allowed(&cfg, "https://app.exampl", NULL));
	ck_assert(!cors_origin_allowed(&cfg, "http://app.example", NULL));
	ck_assert(!cors_origin_allowed(&cfg, "", NULL));
	ck_assert(!cors_origin_allowed(&cfg, NULL, NULL));
}
END_TEST

START_TEST(cors_star_counts_only_in_dev_mode)
{
	cfg.cors_origins = (char *)"https://app.example *";
	ck_assert(!cors_origin_allowed(&cfg, "https://other.example", NULL));
	cfg.dev_mode = true;
	ck_assert(cors_origin_allowed(&cfg, "https://other.example", NULL));
	cfg.cors_origins = (char *)"";
	ck_assert(!cors_origin_allowed(&cfg, "https://other.example", NULL));
}
END_TEST

START_TEST(cors_same_host_rule)
{
	/* Without a Host, only the list counts (the HTTP routes). */
	ck_assert(!cors_origin_allowed(&cfg, "https://chat.example", NULL));
	ck_assert(!cors_origin_allowed(&cfg, "https://chat.example", ""));
	ck_assert(cors_origin_allowed(&cfg, "https://chat.example", "chat.example"));
	ck_assert(cors_origin_allowed(&cfg, "https://Chat.Example", "chat.example"));
	/* nginx's $host has no port: the host names decide. */
	ck_assert(cors_origin_allowed(&cfg, "https://chat.example:8443", "chat.example"));
	ck_assert(cors_origin_allowed(&cfg, "https://chat.example", "chat.example:8443"));
	ck_assert(cors_origin_allowed(&cfg, "http://chat.example:8080/", "chat.example:8080"));
	ck_assert(!cors_origin_allowed(&cfg, "https://chat.example:8443", "chat.example:9443"));
	ck_assert(!cors_origin_allowed(&cfg, "https://evil.example", "chat.example"));
	ck_assert(!cors_origin_allowed(&cfg, "https://chat.example.evil", "chat.example"));
	ck_assert(!cors_origin_allowed(&cfg, "chat.example", "chat.example"));
	ck_assert(!cors_origin_allowed(&cfg, "null", "chat.example"));
	ck_assert(cors_origin_allowed(&cfg, "http://[::1]:3000", "[::1]"));
	ck_assert(cors_origin_allowed(&cfg, "http://[::1]", "[::1]:3000"));
	ck_assert(!cors_origin_allowed(&cfg, "http://[::2]", "[::1]"));
}
END_TEST

/* ---- request_client_ip -------------------------------------------------- */

START_TEST(client_ip_untrusted_peer_is_the_client)
{
	char ip[LIMIT_CLIENT_IP_BYTES];

	request_client_ip(&cfg, "203.0.113.9", "198.51.100.1", ip, sizeof(ip));
	ck_assert_str_eq(ip, "203.0.113.9");
	request_client_ip(&cfg, "203.0.113.9", NULL, ip, sizeof(ip));
	ck_assert_str_eq(ip, "203.0.113.9");
	request_client_ip(&cfg, NULL, NULL, ip, sizeof(ip));
	ck_assert_str_eq(ip, "unknown");
}
END_TEST

START_TEST(client_ip_trusted_proxy_walks_forwarded_for)
{
	char ip[LIMIT_CLIENT_IP_BYTES];

	request_client_ip(&cfg, "127.0.0.1", "198.51.100.1", ip, sizeof(ip));
	ck_assert_str_eq(ip, "198.51.100.1");
	/* A client-written entry left of the real one is not believed. */
	request_client_ip(&cfg, "127.0.0.1", "1.2.3.4, 198.51.100.1, 10.0.0.2", ip, sizeof(ip));
	ck_assert_str_eq(ip, "198.51.100.1");
	/* Not an address: the trusted hop it came through is the client. */
	request_client_ip(&cfg, "127.0.0.1", "<script>", ip, sizeof(ip));
	ck_assert_str_eq(ip, "127.0.0.1");
	/* Without trusted proxies the header means nothing. */
	cfg.trusted_proxies = (char *)"";
	request_client_ip(&cfg, "127.0.0.1", "198.51.100.1", ip, sizeof(ip));
	ck_assert_str_eq(ip, "127.0.0.1");
}
END_TEST

/* ---- request_store_error ------------------------------------------------ */

START_TEST(store_error_mapping)
{
	static const char nf[] = "Session not found";
	static const struct {
		enum store_rc rc;
		int           status;
		const char   *message;
	} cases[] = {
		{ STORE_NOT_FOUND,    404, nf },
		{ STORE_CONFLICT,     409, "Conflict" },
		{ STORE_INVALID,      400, "Invalid value" },
		{ STORE_UNAVAILABLE,  503, "Database unavailable" },
		{ STORE_ERROR,        500, "Internal server error" },
		{ (enum store_rc)99,  500, "Internal server error" },
	};
	struct request_result r = request_store_error(STORE_OK, nf);

	ck_assert_int_eq(r.status, 0);
	ck_assert_ptr_null(r.message);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		r = request_store_error(cases[i].rc, nf);
		ck_assert_int_eq(r.status, cases[i].status);
		ck_assert_str_eq(r.message, cases[i].message);
	}
	/* The not-found words are the caller's, borrowed. */
	ck_assert_ptr_eq(request_store_error(STORE_NOT_FOUND, nf).message, nf);
}
END_TEST

/* ---- request_message_read ----------------------------------------------- */

static enum request_input
read_json(const char *text, const char *ref_field, struct request_message *in, json_object **obj)
{
	*obj = json_tokener_parse(text);
	ck_assert_ptr_nonnull(*obj);
	return request_message_read(*obj, ref_field, in);
}

/* Writes prefix, n letters and the closing `"}` into out (big enough). */
static void
long_field(char *out, const char *prefix, size_t n)
{
	size_t len = strlen(prefix);

	memcpy(out, prefix, len);
	memset(out + len, 'a', n);
	memcpy(out + len + n, "\"}", 3);
}

START_TEST(message_read_accepts_and_normalises)
{
	struct request_message in;
	json_object *o;

	ck_assert_int_eq(read_json("{\"message\":\"hi\",\"sessionId\":\"work\"}", "sessionId", &in, &o),
	    REQUEST_INPUT_OK);
	ck_assert_str_eq(in.message, "hi");
	ck_assert_str_eq(in.ref, "work");
	json_object_put(o);
	/* "" and null ask for a new session, like no reference. */
	ck_assert_int_eq(read_json("{\"message\":\"hi\",\"sessionId\":\"\"}", "sessionId", &in, &o),
	    REQUEST_INPUT_OK);
	ck_assert_ptr_null(in.ref);
	json_object_put(o);
	ck_assert_int_eq(read_json("{\"message\":\"hi\",\"conversation_id\":null}", "conversation_id",
	    &in, &o), REQUEST_INPUT_OK);
	ck_assert_ptr_null(in.ref);
	json_object_put(o);
}
END_TEST

START_TEST(message_read_names_each_problem)
{
	struct request_message in;
	json_object *o;
	char *big = malloc(LIMIT_CONTENT_BYTES + 64);

	ck_assert_int_eq(read_json("{}", "sessionId", &in, &o), REQUEST_INPUT_MESSAGE);
	ck_assert_str_eq(in.problem, "missing field");
	json_object_put(o);
	ck_assert_int_eq(read_json("{\"message\":3}", "sessionId", &in, &o), REQUEST_INPUT_MESSAGE);
	ck_assert_str_eq(in.problem, "must be a string");
	json_object_put(o);
	ck_assert_int_eq(read_json("{\"message\":\"\"}", "sessionId", &in, &o), REQUEST_INPUT_EMPTY);
	ck_assert_str_eq(in.problem, "must not be empty");
	json_object_put(o);
	ck_assert_int_eq(read_json("{\"message\":\"x\",\"sessionId\":[]}", "sessionId", &in, &o),
	    REQUEST_INPUT_REF);
	json_object_put(o);

	/* Limits: the message's and the reference's. */
	ck_assert_ptr_nonnull(big);
	long_field(big, "{\"message\":\"", LIMIT_CONTENT_BYTES + 1);
	ck_assert_int_eq(read_json(big, "sessionId", &in, &o), REQUEST_INPUT_MESSAGE);
	ck_assert_str_eq(in.problem, "is too long");
	json_object_put(o);
	long_field(big, "{\"message\":\"x\",\"sessionId\":\"", LIMIT_SESSION_REF_BYTES + 1);
	ck_assert_int_eq(read_json(big, "sessionId", &in, &o), REQUEST_INPUT_REF);
	ck_assert_str_eq(in.problem, "is too long");
	json_object_put(o);
	long_field(big, "{\"message\":\"x\",\"sessionId\":\"", LIMIT_SESSION_REF_BYTES);
	ck_assert_int_eq(read_json(big, "sessionId", &in, &o), REQUEST_INPUT_OK);
	ck_assert_uint_eq(strlen(in.ref), LIMIT_SESSION_REF_BYTES);
	json_object_put(o);
	free(big);
}
END_TEST

/* ---- caller and rate limit without a database --------------------------- */

START_TEST(caller_bad_token_is_unauthorized_before_the_store)
{
	char user[64];
	struct request_result r;

	/* No secret: every token is refused, and the store (NULL) untouched. */
	r = request_caller_token(&cfg, NULL, "a.b.c", user, sizeof(user));
	ck_assert_int_eq(r.status, 401);
	ck_assert_str_eq(r.message, "Unauthorized");
	cfg.jwt_secret = (char *)"0123456789abcdef0123456789abcdef-test-secret";
	r = request_caller_token(&cfg, NULL, "not a token", user, sizeof(user));
	ck_assert_int_eq(r.status, 401);
	ck_assert_str_eq(r.message, REQUEST_MSG_UNAUTHORIZED);
}
END_TEST

START_TEST(ratelimit_unlimited_class_goes_on)
{
	struct ratelimit_verdict v;
	struct request_result r;

	/* Limits 0: nothing is counted, so no store is needed. */
	r = request_ratelimit(&cfg, NULL, RATELIMIT_CHAT, "", "203.0.113.9", &v);
	ck_assert_int_eq(r.status, 0);
	ck_assert_int_eq(v.limit, 0);
	ck_assert(!v.by_user);
	r = request_ratelimit(&cfg, NULL, RATELIMIT_NONE, "u1", "203.0.113.9", &v);
	ck_assert_int_eq(r.status, 0);
	ck_assert(!v.limited);
}
END_TEST

/* ---- request_turn_session ----------------------------------------------- */

START_TEST(turn_session_fills_the_turn)
{
	struct chat_turn t;

	memset(&t, 0xff, sizeof(t));
	request_turn_session(&t, "route", "", "sid", "hello", NULL);
	ck_assert_str_eq(t.route, "route");
	ck_assert_ptr_null(t.user_id);
	ck_assert_str_eq(t.session_id, "sid");
	ck_assert_str_eq(t.content, "hello");
	ck_assert_ptr_null(t.idempotency_key);
	ck_assert_ptr_null(t.messages);
	ck_assert_ptr_null(t.model);
	ck_assert(!t.has_temperature);
	ck_assert(!t.add_system_prompt);
	ck_assert(!t.stop_when_client_leaves);
	ck_assert_int_eq(t.max_tokens, 0);
	request_turn_session(&t, "route", "u1", "sid", NULL, "key");
	ck_assert_str_eq(t.user_id, "u1");
	ck_assert_ptr_null(t.content);
	ck_assert_str_eq(t.idempotency_key, "key");
}
END_TEST

static Suite *
request_suite(void)
{
	Suite *s = suite_create("request");
	TCase *tc = tcase_create("request");

	tcase_add_checked_fixture(tc, cfg_setup, NULL);
	tcase_add_test(tc, list_has_matches_whole_entries);
	tcase_add_test(tc, cors_listed_origins_only);
	tcase_add_test(tc, cors_star_counts_only_in_dev_mode);
	tcase_add_test(tc, cors_same_host_rule);
	tcase_add_test(tc, client_ip_untrusted_peer_is_the_client);
	tcase_add_test(tc, client_ip_trusted_proxy_walks_forwarded_for);
	tcase_add_test(tc, store_error_mapping);
	tcase_add_test(tc, message_read_accepts_and_normalises);
	tcase_add_test(tc, message_read_names_each_problem);
	tcase_add_test(tc, caller_bad_token_is_unauthorized_before_the_store);
	tcase_add_test(tc, ratelimit_unlimited_class_goes_on);
	tcase_add_test(tc, turn_session_fills_the_turn);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(request_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed != 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
