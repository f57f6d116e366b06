/* test_room.c: unit tests of gateway/room.c with the real sessions of
 * gateway/session.c (no transport: the hooks only count): membership,
 * sessions in several rooms, delivery to members only, leaving on
 * disconnect, rooms vanishing when empty. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "room.h"
#include "session.h"

static int wakes, detaches;

static void hook_wake(struct session *s) { (void)s; wakes++; }
static void hook_detach(struct session *s) { (void)s; detaches++; }
static void hook_upgrade_expired(struct session *s) { (void)s; }

static const struct session_hooks hooks = {
	.wake = hook_wake, .detach = hook_detach, .upgrade_expired = hook_upgrade_expired,
};

static struct session_settings settings = {
	.ping_interval_ms = 25000, .ping_timeout_ms = 20000, .connect_timeout_ms = 45000,
	.upgrade_timeout_ms = 10000, .max_queue_bytes = 1 << 20,
};

static void
setup(void)
{
	wakes = detaches = 0;
	settings.max_queue_bytes = 1 << 20;
	settings.max_total_bytes = 0;
	settings.sessions_per_address = 0;
	session_setup(&settings, &hooks);
}

static void
teardown(void)
{
	session_close_all("test over");
	session_reap();
	/* Closing every session empties every room. */
	ck_assert_uint_eq(room_count(), 0);
}

static struct session *
new_session(void)
{
	struct session *s = session_new(SESSION_WEBSOCKET, "127.0.0.1", 0);

	ck_assert_ptr_nonnull(s);
	s->connected = true;
	return s;
}

/* Pops every queued packet; returns how many were `42["event",...]` and
 * checks that they carry json. */
static int
drain(struct session *s, const char *event, const char *json)
{
	struct session_pkt *p;
	char want[256];
	int n = 0;

	(void)snprintf(want, sizeof(want), "42[\"%s\",%s]", event, json);
	while ((p = session_pop(s)) != NULL) {
		ck_assert_str_eq(session_pkt_data(p), want);
		ck_assert_uint_eq(p->len, strlen(want));
		free(p);
		n++;
	}
	return n;
}

/* Pops every queued packet, checking the first two against want1 and
 * want2 (NULL: anything); returns how many there were. */
static int
drain_raw(struct session *s, const char *want1, const char *want2)
{
	struct session_pkt *p;
	int n = 0;

	while ((p = session_pop(s)) != NULL) {
		const char *want = n == 0 ? want1 : n == 1 ? want2 : NULL;

		if (want != NULL)
			ck_assert_str_eq(session_pkt_data(p), want);
		free(p);
		n++;
	}
	return n;
}

START_TEST(join_creates_and_leave_removes)
{
	struct session *a = new_session();

	ck_assert_uint_eq(room_count(), 0);
	ck_assert_uint_eq(room_size("lobby"), 0);
	ck_assert(!room_has(a, "lobby"));
	ck_assert_ptr_null(room_current(a));
	ck_assert(room_join(a, "lobby"));
	ck_assert_uint_eq(room_count(), 1);
	ck_assert_uint_eq(room_size("lobby"), 1);
	ck_assert(room_has(a, "lobby"));
	ck_assert_str_eq(room_current(a), "lobby");
	room_leave(a, "lobby");
	ck_assert(!room_has(a, "lobby"));
	ck_assert_uint_eq(room_size("lobby"), 0);
	ck_assert_uint_eq(room_count(), 0);   /* an empty room vanishes */
	ck_assert_ptr_null(room_current(a));
	/* Leaving a room one is not in changes nothing. */
	room_leave(a, "lobby");
	ck_assert(room_join(a, "other"));
	room_leave(a, "lobby");
	ck_assert_uint_eq(room_count(), 1);
	ck_assert(room_has(a, "other"));
}
END_TEST

/* Joining twice is one membership; the room becomes the current one. */
START_TEST(join_twice_is_one_membership)
{
	struct session *a = new_session();

	ck_assert(room_join(a, "r1"));
	ck_assert(room_join(a, "r2"));
	ck_assert_str_eq(room_current(a), "r2");
	ck_assert(room_join(a, "r1"));
	ck_assert_str_eq(room_current(a), "r1");
	ck_assert_uint_eq(room_size("r1"), 1);
	ck_assert_int_eq(a->nrooms, 2);
	ck_assert_uint_eq(room_emit("r1", "ev", "1", 1), 1);
	ck_assert_int_eq(drain(a, "ev", "1"), 1);   /* delivered once */
	room_leave(a, "r1");
	ck_assert(!room_has(a, "r1"));
	ck_assert_str_eq(room_current(a), "r2");
}
END_TEST

/* Delivery reaches the room's members and nobody else. */
START_TEST(emit_reaches_members_only)
{
	struct session *a = new_session(), *b = new_session(), *c = new_session();

	ck_assert(room_join(a, "red"));
	ck_assert(room_join(b, "red"));
	ck_assert(room_join(b, "blue"));
	ck_assert(room_join(c, "blue"));
	ck_assert_uint_eq(room_count(), 2);
	ck_assert_uint_eq(room_size("red"), 2);
	ck_assert_uint_eq(room_size("blue"), 2);

	ck_assert_uint_eq(room_emit("red", "msg", "{\"x\":1}", 7), 2);
	ck_assert_int_eq(drain(a, "msg", "{\"x\":1}"), 1);
	ck_assert_int_eq(drain(b, "msg", "{\"x\":1}"), 1);
	ck_assert_int_eq(drain(c, "msg", "{\"x\":1}"), 0);

	ck_assert_uint_eq(room_emit("blue", "msg", "2", 1), 2);
	ck_assert_int_eq(drain(a, "msg", "2"), 0);
	ck_assert_int_eq(drain(b, "msg", "2"), 1);
	ck_assert_int_eq(drain(c, "msg", "2"), 1);

	ck_assert_uint_eq(room_emit("green", "msg", "3", 1), 0);
	ck_assert_uint_eq(room_count(), 2);   /* emitting creates no room */

	/* After leaving, no more deliveries. */
	room_leave(b, "red");
	ck_assert_uint_eq(room_emit("red", "msg", "4", 1), 1);
	ck_assert_int_eq(drain(a, "msg", "4"), 1);
	ck_assert_int_eq(drain(b, "msg", "4"), 0);
}
END_TEST

/* A session that disconnects leaves every room it was in. */
START_TEST(close_leaves_every_room)
{
	struct session *a = new_session(), *b = new_session();

	ck_assert(room_join(a, "r1"));
	ck_assert(room_join(a, "r2"));
	ck_assert(room_join(a, "r3"));
	ck_assert(room_join(b, "r2"));
	ck_assert_uint_eq(room_count(), 3);
	session_close(a, "disconnect");
	ck_assert_int_eq(detaches, 1);
	ck_assert_int_eq(a->nrooms, 0);
	ck_assert_uint_eq(room_count(), 1);    /* r1 and r3 vanished */
	ck_assert_uint_eq(room_size("r1"), 0);
	ck_assert_uint_eq(room_size("r2"), 1);
	ck_assert_uint_eq(room_emit("r2", "ev", "1", 1), 1);
	ck_assert_int_eq(drain(b, "ev", "1"), 1);
	session_reap();   /* a is freed: the rooms must hold no pointer to it */
	ck_assert_uint_eq(room_emit("r2", "ev", "2", 1), 1);
	ck_assert_int_eq(drain(b, "ev", "2"), 1);
	room_leave_all(b);
	ck_assert_uint_eq(room_count(), 0);
}
END_TEST

START_TEST(rooms_per_session_are_bounded)
{
	struct session *a = new_session(), *b = new_session();
	char name[32];

	for (int i = 0; i < SESSION_ROOMS_MAX; i++) {
		(void)snprintf(name, sizeof(name), "room-%d", i);
		ck_assert(room_join(a, name));
	}
	ck_assert_uint_eq(room_count(), SESSION_ROOMS_MAX);
	ck_assert(!room_join(a, "one-too-many"));
	ck_assert_uint_eq(room_count(), SESSION_ROOMS_MAX);   /* no empty room left behind */
	ck_assert(!room_has(a, "one-too-many"));
	/* Rejoining one it is in still works (it only moves). */
	ck_assert(room_join(a, "room-0"));
	ck_assert_str_eq(room_current(a), "room-0");
	/* Others may still join rooms a is in. */
	ck_assert(room_join(b, "room-3"));
	ck_assert_uint_eq(room_size("room-3"), 2);
}
END_TEST

/* Many rooms share hash buckets; each is still found by its own name. */
START_TEST(many_rooms_many_sessions)
{
	enum { N = 300 };
	struct session *s[N];
	char name[32];

	for (int i = 0; i < N; i++) {
		s[i] = new_session();
		for (int k = 0; k < 8; k++) {
			(void)snprintf(name, sizeof(name), "r%d", (i * 7 + k) % 2000);
			ck_assert(room_join(s[i], name));
		}
	}
	for (int r = 0; r < 2000; r++) {
		size_t want = 0;

		(void)snprintf(name, sizeof(name), "r%d", r);
		for (int i = 0; i < N; i++)
			want += room_has(s[i], name);
		ck_assert_uint_eq(room_size(name), want);
	}
	for (int i = 0; i < N; i += 2)
		session_close(s[i], "bye");
	for (int i = 1; i < N; i += 2)
		room_leave_all(s[i]);
	ck_assert_uint_eq(room_count(), 0);
}
END_TEST

/* A member whose queue overflows is dropped during the delivery itself
 * (it leaves the room while the room is being walked): the others still
 * get the event and the dropped one is out of the room. */
START_TEST(emit_survives_a_member_dropped_midway)
{
	struct session *a = new_session(), *slow = new_session(), *c = new_session();
	char big[200];

	settings.max_queue_bytes = 400;
	session_setup(&settings, &hooks);
	memset(big, 'x', sizeof(big));
	big[0] = '"';
	big[sizeof(big) - 1] = '"';
	ck_assert(room_join(a, "r"));
	ck_assert(room_join(slow, "r"));
	ck_assert(room_join(c, "r"));
	ck_assert(room_join(slow, "solo"));
	/* slow never reads; a and c do. */
	ck_assert_uint_eq(room_emit("r", "e", big, sizeof(big)), 3);
	while (session_pending(a))
		free(session_pop(a));
	while (session_pending(c))
		free(session_pop(c));
	ck_assert_uint_eq(room_emit("r", "e", big, sizeof(big)), 2);
	/* Dropped: its queue is gone, only the goodbye is left to read. */
	ck_assert(slow->closing);
	ck_assert(!slow->closed);
	ck_assert_uint_eq(slow->queued_bytes, 3);
	ck_assert_int_eq(detaches, 0);
	ck_assert_uint_eq(session_dropped_count(), 1);
	ck_assert_uint_eq(room_size("r"), 2);
	ck_assert_uint_eq(room_size("solo"), 0);
	ck_assert_uint_eq(room_count(), 1);
	ck_assert(session_pending(a));
	ck_assert(session_pending(c));
	/* Dropped, not yet reaped: it receives nothing. */
	ck_assert(!session_send(slow, "4x", 2));
	ck_assert_int_eq(drain_raw(slow, "41", "1"), 2);
	session_sent(slow);
	ck_assert(slow->closed);
	ck_assert_int_eq(detaches, 1);
}
END_TEST

/* A pong counts only when its ping was delivered (popped). */
START_TEST(pong_needs_a_delivered_ping)
{
	struct session *a = session_new(SESSION_POLLING, "10.0.0.1", 0);

	ck_assert_ptr_nonnull(a);
	a->connected = true;
	session_tick(settings.ping_interval_ms);      /* the ping is queued */
	ck_assert(a->awaiting_pong);
	session_pong(a, settings.ping_interval_ms + 10);
	ck_assert(a->awaiting_pong);                   /* never read: ignored */
	session_tick(settings.ping_interval_ms + settings.ping_timeout_ms);
	ck_assert(a->closed);

	struct session *b = session_new(SESSION_POLLING, "10.0.0.2", 0);

	ck_assert_ptr_nonnull(b);
	b->connected = true;
	session_pong(b, 5);                            /* unsolicited: nothing */
	session_tick(settings.ping_interval_ms);
	ck_assert_int_eq(drain_raw(b, "2", NULL), 1);  /* delivered */
	session_pong(b, settings.ping_interval_ms + 10);
	ck_assert(!b->awaiting_pong);
	session_tick(settings.ping_interval_ms + settings.ping_timeout_ms);
	ck_assert(!b->closed);
}
END_TEST

START_TEST(sessions_per_address_are_bounded)
{
	settings.sessions_per_address = 2;
	session_setup(&settings, &hooks);
	ck_assert(session_admit("10.1.1.1"));
	struct session *a = session_new(SESSION_POLLING, "10.1.1.1", 0);
	struct session *b = session_new(SESSION_POLLING, "10.1.1.1", 0);

	ck_assert_ptr_nonnull(a);
	ck_assert_ptr_nonnull(b);
	ck_assert(!session_admit("10.1.1.1"));
	ck_assert(session_admit("10.1.1.2"));
	session_close(a, "bye");
	ck_assert(session_admit("10.1.1.1"));
	settings.sessions_per_address = 0;
}
END_TEST

/* Over the process's bound, the session with the most queued goes. */
START_TEST(total_bound_drops_the_largest_queue)
{
	struct session *a = new_session(), *b = new_session(), *c = new_session();
	char pkt[300];

	settings.max_total_bytes = 1000;
	session_setup(&settings, &hooks);
	memset(pkt, 'x', sizeof(pkt));
	pkt[0] = '4';
	ck_assert(session_send(a, pkt, 300));
	ck_assert(session_send(a, pkt, 300));
	ck_assert(session_send(b, pkt, 300));
	ck_assert_uint_eq(session_queued_total(), 900);
	ck_assert(session_send(c, pkt, 300));          /* a (600) is dropped */
	ck_assert(a->closing);
	ck_assert(!b->closing && !c->closing);
	ck_assert_uint_eq(session_queued_total(), 600 + 3);
	settings.max_total_bytes = 0;
}
END_TEST

/* Behind by half its bound, a member keeps one chunk per stream whose
 * content spans the deltas it replaced; one that reads sees every one. */
START_TEST(chunks_merge_for_members_behind)
{
	struct session *fast = new_session(), *slow = new_session();
	const char *full = "aaaabbbbcccc";
	struct session_pkt *p;

	settings.max_queue_bytes = 2 * 150;   /* merging from 150 bytes: the third chunk */
	session_setup(&settings, &hooks);
	ck_assert(room_join(fast, "r"));
	ck_assert(room_join(slow, "r"));
	ck_assert_uint_eq(room_emit_chunk("r", "S1", 4, full, 4), 2);
	ck_assert_int_eq(drain_raw(fast, "42[\"stream-chunk\",{\"content\":\"aaaa\",\"fullResponse\":"
	    "\"aaaa\",\"isComplete\":false,\"streamId\":\"S1\"}]", NULL), 1);
	ck_assert_uint_eq(room_emit_chunk("r", "S1", 4, full, 8), 2);
	ck_assert_uint_eq(room_emit_chunk("r", "S1", 4, full, 12), 2);
	ck_assert_int_eq(drain_raw(fast, "42[\"stream-chunk\",{\"content\":\"bbbb\",\"fullResponse\":"
	    "\"aaaabbbb\",\"isComplete\":false,\"streamId\":\"S1\"}]",
	    "42[\"stream-chunk\",{\"content\":\"cccc\",\"fullResponse\":"
	    "\"aaaabbbbcccc\",\"isComplete\":false,\"streamId\":\"S1\"}]"), 2);
	/* The first stays; the third replaced the second (the newest). */
	ck_assert_uint_eq(slow->nchunks, 2);
	p = session_pop(slow);
	ck_assert_ptr_nonnull(p);
	ck_assert_str_eq(session_pkt_data(p), "42[\"stream-chunk\",{\"content\":\"aaaa\","
	    "\"fullResponse\":\"aaaa\",\"isComplete\":false,\"streamId\":\"S1\"}]");
	free(p);
	p = session_pop(slow);
	ck_assert_ptr_nonnull(p);
	ck_assert_str_eq(session_pkt_data(p), "42[\"stream-chunk\",{\"content\":\"bbbbcccc\","
	    "\"fullResponse\":\"aaaabbbbcccc\",\"isComplete\":false,\"streamId\":\"S1\"}]");
	free(p);
	ck_assert(!session_pending(slow));
	ck_assert_uint_eq(slow->nchunks, 0);
	ck_assert_uint_eq(session_queued_total(), 0);
}
END_TEST

static Suite *
room_suite(void)
{
	Suite *s = suite_create("room");
	TCase *tc = tcase_create("membership");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, join_creates_and_leave_removes);
	tcase_add_test(tc, join_twice_is_one_membership);
	tcase_add_test(tc, emit_reaches_members_only);
	tcase_add_test(tc, close_leaves_every_room);
	tcase_add_test(tc, rooms_per_session_are_bounded);
	tcase_add_test(tc, many_rooms_many_sessions);
	tcase_add_test(tc, emit_survives_a_member_dropped_midway);
	tcase_add_test(tc, pong_needs_a_delivered_ping);
	tcase_add_test(tc, sessions_per_address_are_bounded);
	tcase_add_test(tc, total_bound_drops_the_largest_queue);
	tcase_add_test(tc, chunks_merge_for_members_behind);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(room_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed != 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
