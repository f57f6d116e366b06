/* test_ratelimit.c: unit tests of core/ratelimit.c: the verdict arithmetic,
 * which key and limit a request counts against, and the client address
 * behind trusted proxies. store_rate_hit is faked here: ratelimit.c is a
 * source of this program, so the archive's store.o is never linked. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "ratelimit.h"

/* ---- the counter ---- */

static struct {
	int  calls;
	char key[200];
	int  window_s;
	int  hits, reset_s;   /* what the counter answers */
	enum store_rc rc;
} counter;

enum store_rc
store_rate_hit(struct store *st, const char *key, int window_s, int *hits, int *reset_s)
{
	(void)st;
	counter.calls++;
	(void)snprintf(counter.key, sizeof(counter.key), "%s", key);
	counter.window_s = window_s;
	if (counter.rc != STORE_OK)
		return counter.rc;
	*hits = counter.hits;
	*reset_s = counter.reset_s;
	return STORE_OK;
}

/* ---- ratelimit_verdict_fill ---- */

static struct ratelimit_verdict
fill(int limit, int hits, int reset_s)
{
	struct ratelimit_verdict v = { .limit = limit, .window_s = 60 };

	ratelimit_verdict_fill(&v, hits, reset_s);
	return v;
}

START_TEST(verdict_counts_down_to_the_limit)
{
	struct ratelimit_verdict v;

	for (int hits = 1; hits <= 5; hits++) {
		v = fill(5, hits, 42);
		ck_assert_int_eq(v.hits, hits);
		ck_assert_int_eq(v.remaining, 5 - hits);
		ck_assert_int_eq(v.reset_s, 42);
		ck_assert_msg(!v.limited, "hit %d of 5 was limited", hits);
		ck_assert_int_eq(v.limit, 5);
		ck_assert_int_eq(v.window_s, 60);
	}
}
END_TEST

START_TEST(verdict_limited_exactly_past_the_limit)
{
	struct ratelimit_verdict v = fill(5, 6, 9);

	ck_assert(v.limited);
	ck_assert_int_eq(v.remaining, 0);
	ck_assert_int_eq(v.reset_s, 9);
	v = fill(5, 1000, 1);
	ck_assert(v.limited);
	ck_assert_int_eq(v.remaining, 0);
	v = fill(1, 1, 1);
	ck_assert(!v.limited);
	ck_assert_int_eq(v.remaining, 0);
	ck_assert(fill(1, 2, 1).limited);
}
END_TEST

START_TEST(verdict_unlimited_when_limit_is_zero)
{
	struct ratelimit_verdict v = fill(0, 1000000, 5);

	ck_assert(!v.limited);
	ck_assert_int_eq(v.remaining, 0);
	ck_assert(!fill(0, 1, 5).limited);
}
END_TEST

/* ---- ratelimit_hit ---- */

static struct config cfg;

static void
setup(void)
{
	memset(&counter, 0, sizeof(counter));
	memset(&cfg, 0, sizeof(cfg));
	cfg.ratelimit_window = 60;
	cfg.ratelimit_chat_user = 10;
	cfg.ratelimit_chat_anon = 3;
	cfg.ratelimit_auth_ip = 7;
	cfg.ratelimit_api_user = 0;
}

START_TEST(hit_counts_users_by_id_and_anonymous_by_address)
{
	struct ratelimit_verdict v;

	counter.hits = 11;
	counter.reset_s = 30;
	ck_assert_int_eq(ratelimit_hit(&cfg, NULL, RATELIMIT_CHAT, "u1", "1.2.3.4", &v), STORE_OK);
	ck_assert_str_eq(counter.key, "chat:u:u1");
	ck_assert_int_eq(counter.window_s, 60);
	ck_assert(v.by_user);
	ck_assert_int_eq(v.limit, 10);
	ck_assert(v.limited);
	ck_assert_int_eq(v.reset_s, 30);

	counter.hits = 3;
	ck_assert_int_eq(ratelimit_hit(&cfg, NULL, RATELIMIT_CHAT, NULL, "1.2.3.4", &v), STORE_OK);
	ck_assert_str_eq(counter.key, "chat:ip:1.2.3.4");
	ck_assert(!v.by_user);
	ck_assert_int_eq(v.limit, 3);
	ck_assert(!v.limited);
	ck_assert_int_eq(v.remaining, 0);

	/* "" is anonymous too, and a missing address still has a key. */
	ck_assert_int_eq(ratelimit_hit(&cfg, NULL, RATELIMIT_CHAT, "", NULL, &v), STORE_OK);
	ck_assert_str_eq(counter.key, "chat:ip:unknown");
}
END_TEST

/* Brute force is counted per address whoever claims to be logged in. */
START_TEST(hit_auth_is_per_address)
{
	struct ratelimit_verdict v;

	counter.hits = 8;
	ck_assert_int_eq(ratelimit_hit(&cfg, NULL, RATELIMIT_AUTH, "u1", "5.6.7.8", &v), STORE_OK);
	ck_assert_str_eq(counter.key, "auth:ip:5.6.7.8");
	ck_assert(!v.by_user);
	ck_assert_int_eq(v.limit, 7);
	ck_assert(v.limited);
}
END_TEST

/* An unlimited class never reaches the counter. */
START_TEST(hit_unlimited_skips_the_counter)
{
	struct ratelimit_verdict v;

	ck_assert_int_eq(ratelimit_hit(&cfg, NULL, RATELIMIT_NONE, "u1", "1.2.3.4", &v), STORE_OK);
	ck_assert_int_eq(v.limit, 0);
	ck_assert(!v.limited);
	ck_assert_int_eq(ratelimit_hit(&cfg, NULL, RATELIMIT_API, "u1", "1.2.3.4", &v), STORE_OK);
	ck_assert_int_eq(v.limit, 0);
	ck_assert(!v.limited);
	ck_assert_int_eq(counter.calls, 0);
	cfg.ratelimit_chat_user = 0;
	ck_assert_int_eq(ratelimit_hit(&cfg, NULL, RATELIMIT_CHAT, "u1", "1.2.3.4", &v), STORE_OK);
	ck_assert_int_eq(counter.calls, 0);
}
END_TEST

START_TEST(hit_counter_down_is_reported)
{
	struct ratelimit_verdict v;

	counter.rc = STORE_UNAVAILABLE;
	ck_assert_int_eq(ratelimit_hit(&cfg, NULL, RATELIMIT_CHAT, "u1", "1.2.3.4", &v),
	    STORE_UNAVAILABLE);
	ck_assert_int_eq(counter.calls, 1);
}
END_TEST

/* ---- ratelimit_client_ip ---- */

static const char *
client_ip(const char *remote, const char *xff, const char *trusted)
{
	static char out[64];

	memset(out, 'X', sizeof(out));
	ratelimit_client_ip(remote, xff, trusted, out, sizeof(out));
	return out;
}

START_TEST(ip_without_a_trusted_proxy_is_the_peer)
{
	ck_assert_str_eq(client_ip("9.9.9.9", "1.2.3.4", NULL), "9.9.9.9");
	ck_assert_str_eq(client_ip("9.9.9.9", "1.2.3.4", ""), "9.9.9.9");
	ck_assert_str_eq(client_ip("9.9.9.9", NULL, "127.0.0.1"), "9.9.9.9");
	/* An untrusted peer's X-Forwarded-For is a lie it may tell. */
	ck_assert_str_eq(client_ip("9.9.9.9", "1.2.3.4", "127.0.0.1"), "9.9.9.9");
	ck_assert_str_eq(client_ip(NULL, "1.2.3.4", "127.0.0.1"), "unknown");
}
END_TEST

START_TEST(ip_trusted_list_matches_whole_addresses)
{
	/* 127.0.0.10 is not 127.0.0.1, nor is 27.0.0.1. */
	ck_assert_str_eq(client_ip("127.0.0.10", "1.2.3.4", "127.0.0.1"), "127.0.0.10");
	ck_assert_str_eq(client_ip("27.0.0.1", "1.2.3.4", "127.0.0.1"), "27.0.0.1");
	ck_assert_str_eq(client_ip("127.0.0.1", "1.2.3.4", "10.0.0.1, 127.0.0.1"), "1.2.3.4");
	ck_assert_str_eq(client_ip("10.0.0.1", "1.2.3.4", "10.0.0.1,127.0.0.1"), "1.2.3.4");
}
END_TEST

START_TEST(ip_behind_one_trusted_proxy)
{
	ck_assert_str_eq(client_ip("127.0.0.1", "1.2.3.4", "127.0.0.1"), "1.2.3.4");
	ck_assert_str_eq(client_ip("127.0.0.1", "  1.2.3.4\t", "127.0.0.1"), "1.2.3.4");
	ck_assert_str_eq(client_ip("127.0.0.1", "2001:db8::1", "127.0.0.1"), "2001:db8::1");
	ck_assert_str_eq(client_ip("127.0.0.1", "[2001:db8::1]", "127.0.0.1"), "[2001:db8::1]");
}
END_TEST

/* Each trusted hop vouches for the one before it; the first untrusted
 * address from the right is the client, whatever it prepended. */
START_TEST(ip_through_a_chain_of_proxies)
{
	const char *trusted = "127.0.0.1,10.0.0.2,10.0.0.3";

	ck_assert_str_eq(client_ip("127.0.0.1", "5.5.5.5, 10.0.0.3, 10.0.0.2", trusted), "5.5.5.5");
	ck_assert_str_eq(client_ip("127.0.0.1", "6.6.6.6, 5.5.5.5, 10.0.0.2", trusted), "5.5.5.5");
	/* Spoofed hops to the left of the client's address are ignored. */
	ck_assert_str_eq(client_ip("127.0.0.1", "10.0.0.2, 1.1.1.1, 5.5.5.5", trusted), "5.5.5.5");
	/* A trusted hop in the middle of untrusted ones does not skip them. */
	ck_assert_str_eq(client_ip("127.0.0.1", "1.1.1.1, 10.0.0.2, 5.5.5.5, 10.0.0.3", trusted),
	    "5.5.5.5");
	/* All trusted: the leftmost is as far as anyone vouches. */
	ck_assert_str_eq(client_ip("127.0.0.1", "10.0.0.3, 10.0.0.2", trusted), "10.0.0.3");
	/* Empty elements are skipped. */
	ck_assert_str_eq(client_ip("127.0.0.1", "5.5.5.5,, ,10.0.0.2", trusted), "5.5.5.5");
}
END_TEST

/* Anything that is not an address stops the walk: the trusted hop it came
 * through is the client. */
START_TEST(ip_junk_is_not_an_address)
{
	const char *trusted = "127.0.0.1,10.0.0.2";

	ck_assert_str_eq(client_ip("127.0.0.1", "evil", trusted), "127.0.0.1");
	ck_assert_str_eq(client_ip("127.0.0.1", "1.2.3.4 x", trusted), "127.0.0.1");
	ck_assert_str_eq(client_ip("127.0.0.1", "<script>", trusted), "127.0.0.1");
	ck_assert_str_eq(client_ip("127.0.0.1", "unknown, 10.0.0.2", trusted), "10.0.0.2");
	ck_assert_str_eq(client_ip("127.0.0.1", "1.2.3.4, junk%00", trusted), "127.0.0.1");
	ck_assert_str_eq(client_ip("127.0.0.1", "5.5.5.5;drop table", trusted), "127.0.0.1");
}
END_TEST

START_TEST(ip_output_is_bounded)
{
	char out[12];

	memset(out, 'X', sizeof(out));
	ratelimit_client_ip("127.0.0.1", "123.123.123.123", "127.0.0.1", out, sizeof(out));
	ck_assert_str_eq(out, "123.123.123");
}
END_TEST

static Suite *
ratelimit_suite(void)
{
	Suite *s = suite_create("ratelimit");
	TCase *tv = tcase_create("verdict"), *th = tcase_create("hit"), *ti = tcase_create("client_ip");

	tcase_add_test(tv, verdict_counts_down_to_the_limit);
	tcase_add_test(tv, verdict_limited_exactly_past_the_limit);
	tcase_add_test(tv, verdict_unlimited_when_limit_is_zero);
	suite_add_tcase(s, tv);
	tcase_add_checked_fixture(th, setup, NULL);
	tcase_add_test(th, hit_counts_users_by_id_and_anonymous_by_address);
	tcase_add_test(th, hit_auth_is_per_address);
	tcase_add_test(th, hit_unlimited_skips_the_counter);
	tcase_add_test(th, hit_counter_down_is_reported);
	suite_add_tcase(s, th);
	tcase_add_test(ti, ip_without_a_trusted_proxy_is_the_peer);
	tcase_add_test(ti, ip_trusted_list_matches_whole_addresses);
	tcase_add_test(ti, ip_behind_one_trusted_proxy);
	tcase_add_test(ti, ip_through_a_chain_of_proxies);
	tcase_add_test(ti, ip_junk_is_not_an_address);
	tcase_add_test(ti, ip_output_is_bounded);
	suite_add_tcase(s, ti);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(ratelimit_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed != 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
