/* test_relay.c: unit tests of gateway/relay.c over the real rooms and
 * sessions: a stream generated here reaches the room's local members and
 * is published (coalesced, bounded, in order); a stream published by
 * another gateway is rebuilt (fullResponse) for the local members; own
 * and malformed publications are ignored; a user's stream makes the room
 * theirs, removing every other member first. The loop's timers and
 * rooms_pg_publish are stubbed here. */
#include <check.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "json_out.h"
#include "loop.h"
#include "relay.h"
#include "room.h"
#include "rooms_pg.h"
#include "session.h"

/* ---- stubs: the loop's timers, the NOTIFY publisher ---- */

struct loop_timer {
	void (*fire)(void *ctx);
	void  *ctx;
	bool   armed;
};

static struct loop_timer *the_timer;   /* relay.c makes one */

struct loop_timer *
loop_timer_new(void (*fire)(void *ctx), void *ctx)
{
	struct loop_timer *t = calloc(1, sizeof(*t));

	if (t != NULL) {
		t->fire = fire;
		t->ctx = ctx;
		the_timer = t;
	}
	return t;
}

void loop_timer_set(struct loop_timer *t, long ms) { (void)ms; t->armed = true; }
void loop_timer_cancel(struct loop_timer *t) { t->armed = false; }
bool loop_timer_armed(const struct loop_timer *t) { return t->armed; }

void
loop_timer_free(struct loop_timer *t)
{
	if (t == the_timer)
		the_timer = NULL;
	free(t);
}

static struct {
	int          calls;
	bool         down;         /* the database is away: publishing fails */
	json_object *payloads;     /* every payload published, parsed, in order */
} pub;

bool
rooms_pg_publish(const char *json_array, size_t len)
{
	json_object *arr = json_tokener_parse(json_array);

	pub.calls++;
	ck_assert_uint_eq(strlen(json_array), len);
	ck_assert_ptr_nonnull(arr);
	ck_assert(json_object_is_type(arr, json_type_array));
	for (size_t i = 0; i < json_object_array_length(arr); i++) {
		json_object *s = json_object_array_get_idx(arr, i), *p;

		ck_assert(json_object_is_type(s, json_type_string));
		ck_assert_int_le(json_object_get_string_len(s), ROOMS_PG_PAYLOAD_MAX);
		ck_assert_ptr_nonnull(p = json_tokener_parse(json_object_get_string(s)));
		if (!pub.down)
			json_object_array_add(pub.payloads, p);
		else
			json_object_put(p);
	}
	json_object_put(arr);
	return !pub.down;
}

/* Fires the flush timer as the loop would. */
static void
flush(void)
{
	ck_assert_ptr_nonnull(the_timer);
	ck_assert(the_timer->armed);
	the_timer->armed = false;
	the_timer->fire(the_timer->ctx);
}

/* ---- sessions ---- */

static void hook_wake(struct session *s) { (void)s; }
static void hook_detach(struct session *s) { (void)s; }

static void
setup(void)
{
	static const struct session_hooks hooks = { .wake = hook_wake, .detach = hook_detach,
		.upgrade_expired = hook_detach };
	static const struct session_settings settings = { .ping_interval_ms = 25000,
		.ping_timeout_ms = 20000, .connect_timeout_ms = 45000, .upgrade_timeout_ms = 10000,
		.max_queue_bytes = 64 << 20 };

	session_setup(&settings, &hooks);
	memset(&pub, 0, sizeof(pub));
	pub.payloads = json_object_new_array();
	ck_assert(relay_setup("gw-A"));
}

static void
teardown(void)
{
	relay_shutdown();
	ck_assert_ptr_null(the_timer);
	ck_assert_uint_eq(relay_remote_count(), 0);
	json_object_put(pub.payloads);
	session_close_all("test over");
	session_reap();
}

static struct session *
member_of(const char *room)
{
	struct session *s = session_new(SESSION_WEBSOCKET, "127.0.0.1", 0);

	ck_assert_ptr_nonnull(s);
	ck_assert(room_join(s, room));
	return s;
}

/* The next event queued for s: its name and argument (put it). */
static json_object *
next_event(struct session *s, const char *want_name)
{
	struct session_pkt *p = session_pop(s);
	json_object *arr, *arg;

	ck_assert_msg(p != NULL, "no %s event queued", want_name);
	ck_assert(strncmp(session_pkt_data(p), "42[", 3) == 0);
	ck_assert_ptr_nonnull(arr = json_tokener_parse(session_pkt_data(p) + 2));
	free(p);
	ck_assert_str_eq(json_object_get_string(json_object_array_get_idx(arr, 0)), want_name);
	arg = json_object_get(json_object_array_get_idx(arr, 1));
	json_object_put(arr);
	return arg;
}

static const char *
str(json_object *o, const char *key)
{
	json_object *v;

	ck_assert_msg(json_object_object_get_ex(o, key, &v), "no %s", key);
	return json_object_get_string(v);
}

static bool
flag(json_object *o, const char *key)
{
	json_object *v;

	ck_assert_msg(json_object_object_get_ex(o, key, &v), "no %s", key);
	return json_object_get_boolean(v);
}

/* Checks a stream-chunk and puts it. */
static void
expect_chunk(struct session *s, const char *id, const char *content, const char *full,
    bool complete)
{
	json_object *e = next_event(s, "stream-chunk");

	ck_assert_str_eq(str(e, "streamId"), id);
	ck_assert_str_eq(str(e, "content"), content);
	ck_assert_str_eq(str(e, "fullResponse"), full);
	ck_assert(flag(e, "isComplete") == complete);
	json_object_put(e);
}

static json_object *
payload(size_t i)
{
	ck_assert_uint_lt(i, json_object_array_length(pub.payloads));
	return json_object_array_get_idx(pub.payloads, i);
}

static long
num(json_object *o, const char *key)
{
	json_object *v;

	ck_assert_msg(json_object_object_get_ex(o, key, &v), "no %s", key);
	return (long)json_object_get_int64(v);
}

/* ---- streams generated here ---- */

START_TEST(local_stream_reaches_room_members_only)
{
	struct session *a = member_of("room1"), *b = member_of("room1"), *other = member_of("room2");
	struct relay_stream *rs;
	json_object *e;

	ck_assert_ptr_nonnull(rs = relay_begin("room1", "s1", NULL));
	relay_chunk(rs, "Hel", 3, "Hel", 3);
	relay_chunk(rs, "lo", 2, "Hello", 5);
	relay_complete(rs, "Hello", 5);
	for (int i = 0; i < 2; i++) {
		struct session *s = i == 0 ? a : b;

		e = next_event(s, "stream-start");
		ck_assert_str_eq(str(e, "streamId"), "s1");
		ck_assert_str_eq(str(e, "roomName"), "room1");
		ck_assert_uint_gt(strlen(str(e, "timestamp")), 0);
		json_object_put(e);
		expect_chunk(s, "s1", "Hel", "Hel", false);
		expect_chunk(s, "s1", "lo", "Hello", false);
		expect_chunk(s, "s1", "", "Hello", true);
		e = next_event(s, "stream-complete");
		ck_assert_str_eq(str(e, "fullResponse"), "Hello");
		json_object_put(e);
		ck_assert(!session_pending(s));
	}
	ck_assert(!session_pending(other));
}
END_TEST

/* Publications wait for the flush timer; the deltas of one flush
 * interval travel as one chunk payload. */
START_TEST(local_stream_is_published_coalesced)
{
	struct relay_stream *rs;
	json_object *p;

	(void)member_of("room1");
	rs = relay_begin("room1", "s1", NULL);
	relay_chunk(rs, "Hel", 3, "Hel", 3);
	relay_chunk(rs, "lo", 2, "Hello", 5);
	ck_assert_int_eq(pub.calls, 0);
	flush();
	ck_assert_int_eq(pub.calls, 1);     /* one round trip */
	ck_assert_uint_eq(json_object_array_length(pub.payloads), 2);
	p = payload(0);
	ck_assert_str_eq(str(p, "g"), "gw-A");
	ck_assert_str_eq(str(p, "r"), "room1");
	ck_assert_str_eq(str(p, "s"), "s1");
	ck_assert_str_eq(str(p, "k"), "s");
	ck_assert_int_eq(num(p, "n"), 0);
	p = payload(1);
	ck_assert_str_eq(str(p, "k"), "c");
	ck_assert_str_eq(str(p, "c"), "Hello");   /* the deltas, not fullResponse */
	ck_assert_int_eq(num(p, "n"), 1);

	/* After a flush, deltas start a new payload. */
	relay_chunk(rs, "!", 1, "Hello!", 6);
	relay_complete(rs, "Hello!", 6);
	flush();
	ck_assert_uint_eq(json_object_array_length(pub.payloads), 4);
	ck_assert_str_eq(str(payload(2), "k"), "c");
	ck_assert_str_eq(str(payload(2), "c"), "!");
	ck_assert_int_eq(num(payload(2), "n"), 2);
	ck_assert_str_eq(str(payload(3), "k"), "e");
	ck_assert_int_eq(num(payload(3), "n"), 3);
	ck_assert(!the_timer->armed);
}
END_TEST

START_TEST(local_error_is_emitted_and_published)
{
	struct session *a = member_of("room1");
	struct relay_stream *rs = relay_begin("room1", "s9", NULL);
	json_object *e;

	relay_chunk(rs, "par", 3, "par", 3);
	relay_error(rs, "The AI service failed");
	e = next_event(a, "stream-start");
	json_object_put(e);
	expect_chunk(a, "s9", "par", "par", false);
	e = next_event(a, "stream-error");
	ck_assert_str_eq(str(e, "error"), "The AI service failed");
	ck_assert_str_eq(str(e, "streamId"), "s9");
	json_object_put(e);
	flush();
	ck_assert_uint_eq(json_object_array_length(pub.payloads), 3);
	ck_assert_str_eq(str(payload(2), "k"), "x");
	ck_assert_str_eq(str(payload(2), "e"), "The AI service failed");
}
END_TEST

/* A delta too large for one NOTIFY is split over several payloads, never
 * inside a UTF-8 character, and reassembles to the original. */
START_TEST(large_delta_is_split_within_the_payload_limit)
{
	struct relay_stream *rs;
	struct buf text, joined;

	buf_init(&text, 1 << 20);
	buf_init(&joined, 1 << 20);
	for (int i = 0; i < 6000; i++)
		ck_assert(buf_appendz(&text, i % 3 == 0 ? "\xc3\xa9" : i % 3 == 1 ? "\"" : "\n"));
	(void)member_of("room1");
	rs = relay_begin("room1", "big", NULL);
	relay_chunk(rs, text.data, text.len, text.data, text.len);
	relay_complete(rs, text.data, text.len);
	flush();
	ck_assert_uint_gt(json_object_array_length(pub.payloads), 3);
	for (size_t i = 0; i < json_object_array_length(pub.payloads); i++) {
		json_object *p = payload(i);
		const char *c;

		if (strcmp(str(p, "k"), "c") != 0)
			continue;
		c = str(p, "c");
		ck_assert(utf8_valid(c, strlen(c)));
		ck_assert(buf_appendz(&joined, c));
		ck_assert_int_eq(num(p, "n"), (long)i);   /* in order, no gaps */
	}
	ck_assert_uint_eq(joined.len, text.len);
	ck_assert(memcmp(joined.data, text.data, text.len) == 0);
	buf_free(&text);
	buf_free(&joined);
}
END_TEST

/* The database is away: publications are dropped (logged), the local
 * members are served, and publishing resumes when it is back. */
START_TEST(publish_failure_is_survived)
{
	struct session *a = member_of("room1");
	struct relay_stream *rs = relay_begin("room1", "s1", NULL);

	pub.down = true;
	relay_chunk(rs, "x", 1, "x", 1);
	flush();
	ck_assert_int_eq(pub.calls, 1);
	pub.down = false;
	relay_complete(rs, "x", 1);
	flush();
	ck_assert_int_eq(pub.calls, 2);
	ck_assert_uint_eq(json_object_array_length(pub.payloads), 1);
	ck_assert_str_eq(str(payload(0), "k"), "e");
	json_object_put(next_event(a, "stream-start"));
	expect_chunk(a, "s1", "x", "x", false);
}
END_TEST

/* ---- streams of other gateways ---- */

static void
notify(const char *kind_and_rest)
{
	char p[512];

	(void)snprintf(p, sizeof(p), "{\"g\":\"gw-B\",\"r\":\"room1\",\"s\":\"r1\",%s}", kind_and_rest);
	relay_on_notify(p);
}

START_TEST(remote_stream_is_rebuilt_for_local_members)
{
	struct session *a = member_of("room1"), *other = member_of("room2");
	json_object *e;

	notify("\"n\":0,\"k\":\"s\",\"t\":\"2024-01-01T00:00:00.000Z\"");
	ck_assert_uint_eq(relay_remote_count(), 1);
	notify("\"n\":1,\"k\":\"c\",\"c\":\"Hel\"");
	notify("\"n\":2,\"k\":\"c\",\"c\":\"lo\"");
	notify("\"n\":3,\"k\":\"e\",\"t\":\"2024-01-01T00:00:01.000Z\"");
	ck_assert_uint_eq(relay_remote_count(), 0);
	e = next_event(a, "stream-start");
	ck_assert_str_eq(str(e, "streamId"), "r1");
	ck_assert_str_eq(str(e, "timestamp"), "2024-01-01T00:00:00.000Z");
	json_object_put(e);
	expect_chunk(a, "r1", "Hel", "Hel", false);
	expect_chunk(a, "r1", "lo", "Hello", false);
	expect_chunk(a, "r1", "", "Hello", true);
	e = next_event(a, "stream-complete");
	ck_assert_str_eq(str(e, "fullResponse"), "Hello");
	ck_assert_str_eq(str(e, "timestamp"), "2024-01-01T00:00:01.000Z");
	json_object_put(e);
	ck_assert(!session_pending(a));
	ck_assert(!session_pending(other));
	/* What others published is not published again. */
	ck_assert(!the_timer->armed);
	ck_assert_int_eq(pub.calls, 0);
}
END_TEST

START_TEST(remote_error_ends_the_stream)
{
	struct session *a = member_of("room1");
	json_object *e;

	notify("\"n\":0,\"k\":\"s\",\"t\":\"t\"");
	notify("\"n\":1,\"k\":\"c\",\"c\":\"x\"");
	notify("\"n\":2,\"k\":\"x\",\"e\":\"boom\"");
	ck_assert_uint_eq(relay_remote_count(), 0);
	json_object_put(next_event(a, "stream-start"));
	expect_chunk(a, "r1", "x", "x", false);
	e = next_event(a, "stream-error");
	ck_assert_str_eq(str(e, "error"), "boom");
	json_object_put(e);
}
END_TEST

START_TEST(own_and_malformed_publications_are_ignored)
{
	struct session *a = member_of("room1");
	static const char *const bad[] = {
		"", "not json", "[1,2]", "{}", "{\"g\":\"gw-B\"}",
		"{\"g\":\"gw-B\",\"r\":\"room1\",\"s\":\"r1\"}",
		"{\"g\":\"gw-B\",\"r\":\"room1\",\"s\":1,\"k\":\"s\"}",
		"{\"g\":\"gw-B\",\"r\":\"room1\",\"s\":\"r1\",\"k\":\"c\"}",
		"{\"g\":\"gw-B\",\"r\":\"room1\",\"s\":\"r1\",\"k\":\"?\"}",
		"{\"g\":\"gw-A\",\"r\":\"room1\",\"s\":\"r1\",\"k\":\"s\",\"t\":\"t\"}",
		"{\"g\":\"gw-A\",\"r\":\"room1\",\"s\":\"r1\",\"k\":\"c\",\"c\":\"x\"}",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		relay_on_notify(bad[i]);
		ck_assert_msg(!session_pending(a), "delivered: %s", bad[i]);
		ck_assert_uint_eq(relay_remote_count(), 0);
	}
}
END_TEST

/* A remote stream whose end was lost is forgotten after a while. */
START_TEST(silent_remote_streams_expire)
{
	(void)member_of("room1");
	notify("\"n\":0,\"k\":\"s\",\"t\":\"t\"");
	notify("\"n\":1,\"k\":\"c\",\"c\":\"x\"");
	relay_tick(clock_now_ms());
	ck_assert_uint_eq(relay_remote_count(), 1);
	relay_tick(clock_now_ms() + 11 * 60 * 1000);
	ck_assert_uint_eq(relay_remote_count(), 0);
}
END_TEST

/* ---- ownership ---- */

static struct session *
user_member_of(const char *room, const char *user)
{
	struct session *s = member_of(room);

	(void)snprintf(s->user_id, sizeof(s->user_id), "%s", user);
	return s;
}

/* The one event a removed socket gets: stream-error {error, roomName}. */
static void
expect_removed(struct session *s, const char *room)
{
	json_object *e = next_event(s, "stream-error");

	ck_assert_str_eq(str(e, "error"), "This room belongs to another user");
	ck_assert_str_eq(str(e, "roomName"), room);
	json_object_put(e);
	ck_assert(!session_pending(s));
	ck_assert(!room_has(s, room));
}

/* The attack, in one process: an anonymous socket and another
 * user's socket sit in the room when its owner's stream starts. */
START_TEST(owner_stream_removes_everyone_else_first)
{
	struct session *anon = member_of("support-42"), *owner = user_member_of("support-42", "u-1"),
	    *other = user_member_of("support-42", "u-2");
	struct relay_stream *rs;
	json_object *e;

	ck_assert_ptr_nonnull(rs = relay_begin("support-42", "s1", "u-1"));
	relay_chunk(rs, "secret", 6, "secret", 6);
	relay_complete(rs, "secret", 6);
	expect_removed(anon, "support-42");
	expect_removed(other, "support-42");
	ck_assert_uint_eq(room_size("support-42"), 1);
	ck_assert_str_eq(room_owner("support-42"), "u-1");
	json_object_put(next_event(owner, "stream-start"));
	expect_chunk(owner, "s1", "secret", "secret", false);
	expect_chunk(owner, "s1", "", "secret", true);
	e = next_event(owner, "stream-complete");
	json_object_put(e);
	/* Every publication names the owner, for the other processes. */
	flush();
	ck_assert_uint_eq(json_object_array_length(pub.payloads), 3);
	for (size_t i = 0; i < 3; i++)
		ck_assert_str_eq(str(payload(i), "o"), "u-1");
}
END_TEST

/* An anonymous stream publishes no owner, and reaches an open room. */
START_TEST(anonymous_stream_in_an_open_room)
{
	struct session *a = member_of("room1"), *u = user_member_of("room1", "u-1");
	struct relay_stream *rs;
	json_object *v;

	ck_assert_ptr_nonnull(rs = relay_begin("room1", "s1", NULL));
	relay_complete(rs, "", 0);
	json_object_put(next_event(a, "stream-start"));
	json_object_put(next_event(u, "stream-start"));
	ck_assert_ptr_null(room_owner("room1"));
	flush();
	ck_assert(!json_object_object_get_ex(payload(0), "o", &v));
}
END_TEST

/* Another process's owner stream: the others leave before its start. */
START_TEST(remote_owner_stream_removes_everyone_else_first)
{
	struct session *anon = member_of("room1"), *owner = user_member_of("room1", "u-1");

	notify("\"n\":0,\"k\":\"s\",\"t\":\"t\",\"o\":\"u-1\"");
	notify("\"n\":1,\"k\":\"c\",\"c\":\"x\",\"o\":\"u-1\"");
	notify("\"n\":2,\"k\":\"e\",\"t\":\"t\",\"o\":\"u-1\"");
	expect_removed(anon, "room1");
	json_object_put(next_event(owner, "stream-start"));
	expect_chunk(owner, "r1", "x", "x", false);
	expect_chunk(owner, "r1", "", "x", true);
	json_object_put(next_event(owner, "stream-complete"));
}
END_TEST

/* Once owned, a room hears no one else's stream: neither an anonymous
 * one begun before the claim, here or elsewhere, nor another user's. */
START_TEST(owned_room_hears_only_its_owner)
{
	struct session *owner = user_member_of("room1", "u-1");
	struct relay_stream *rs;

	rs = relay_begin("room1", "early", NULL);
	json_object_put(next_event(owner, "stream-start"));
	relay_room_owned("room1", "u-1");
	relay_chunk(rs, "evil", 4, "evil", 4);
	relay_complete(rs, "evil", 4);
	notify("\"n\":0,\"k\":\"s\",\"t\":\"t\"");
	notify("\"n\":1,\"k\":\"c\",\"c\":\"evil\"");
	notify("\"n\":2,\"k\":\"e\",\"t\":\"t\"");
	ck_assert(!session_pending(owner));
	ck_assert_uint_eq(room_size("room1"), 1);
}
END_TEST

/* What the database says at a join replaces what this process knew. */
START_TEST(room_owner_forgotten_and_relearned)
{
	struct session *owner = user_member_of("room1", "u-1"), *anon;

	relay_room_owned("room1", "u-1");
	relay_room_owned("room1", "");
	ck_assert_ptr_null(room_owner("room1"));
	anon = member_of("room1");
	ck_assert(room_accepts("room1", NULL));
	relay_room_owned("room1", "u-1");
	expect_removed(anon, "room1");
	ck_assert(!session_pending(owner));
	ck_assert(!room_accepts("room1", NULL));
	ck_assert(!room_accepts("room1", "u-2"));
	ck_assert(room_accepts("room1", "u-1"));
	/* A room that empties forgets its owner with it. */
	room_leave(owner, "room1");
	ck_assert_ptr_null(room_owner("room1"));
}
END_TEST

static Suite *
relay_suite(void)
{
	Suite *s = suite_create("relay");
	TCase *tl = tcase_create("local"), *tr = tcase_create("remote"), *to;

	tcase_add_checked_fixture(tl, setup, teardown);
	tcase_add_test(tl, local_stream_reaches_room_members_only);
	tcase_add_test(tl, local_stream_is_published_coalesced);
	tcase_add_test(tl, local_error_is_emitted_and_published);
	tcase_add_test(tl, large_delta_is_split_within_the_payload_limit);
	tcase_add_test(tl, publish_failure_is_survived);
	suite_add_tcase(s, tl);
	tcase_add_checked_fixture(tr, setup, teardown);
	tcase_add_test(tr, remote_stream_is_rebuilt_for_local_members);
	tcase_add_test(tr, remote_error_ends_the_stream);
	tcase_add_test(tr, own_and_malformed_publications_are_ignored);
	tcase_add_test(tr, silent_remote_streams_expire);
	suite_add_tcase(s, tr);
	to = tcase_create("ownership");
	tcase_add_checked_fixture(to, setup, teardown);
	tcase_add_test(to, owner_stream_removes_everyone_else_first);
	tcase_add_test(to, anonymous_stream_in_an_open_room);
	tcase_add_test(to, remote_owner_stream_removes_everyone_else_first);
	tcase_add_test(to, owned_room_hears_only_its_owner);
	tcase_add_test(to, room_owner_forgotten_and_relearned);
	suite_add_tcase(s, to);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(relay_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed != 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
