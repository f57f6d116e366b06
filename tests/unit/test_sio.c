/* test_sio.c: unit tests of gateway/sio.h: Socket.IO packet decoding
 * (namespaces, ack ids, attachments, payload shapes, malformed packets)
 * and the server's encoders. */
#include <check.h>
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "sio.h"

#define S(lit) lit, sizeof(lit) - 1

/* Decodes a packet that must be valid. */
static void
decode_ok(const char *p, size_t n, struct sio_packet *pk)
{
	const char *err = NULL;

	ck_assert_msg(sio_packet_decode(p, n, pk, &err), "%.*s: %s", (int)n, p, err ? err : "");
}

/* Decodes a packet that must be refused. */
static void
decode_bad(const char *p, size_t n)
{
	struct sio_packet pk;
	const char *err = NULL;

	ck_assert_msg(!sio_packet_decode(p, n, &pk, &err), "%.*s was accepted", (int)n, p);
	ck_assert_ptr_nonnull(err);
}

START_TEST(decode_connect_default_namespace)
{
	struct sio_packet pk;

	decode_ok(S("0"), &pk);
	ck_assert_int_eq((int)pk.type, SIO_CONNECT);
	ck_assert(sio_packet_default_nsp(&pk));
	ck_assert_ptr_null(pk.data);
	ck_assert_int_eq(pk.ack_id, -1);
	sio_packet_free(&pk);
}
END_TEST

START_TEST(decode_connect_with_auth)
{
	struct sio_packet pk;
	json_object *tok;

	decode_ok(S("0{\"token\":\"abc\"}"), &pk);
	ck_assert_int_eq((int)pk.type, SIO_CONNECT);
	ck_assert(json_object_object_get_ex(pk.data, "token", &tok));
	ck_assert_str_eq(json_object_get_string(tok), "abc");
	sio_packet_free(&pk);
	sio_packet_free(&pk);  /* idempotent */
}
END_TEST

START_TEST(decode_connect_other_namespace)
{
	struct sio_packet pk;

	decode_ok(S("0/admin,"), &pk);
	ck_assert(!sio_packet_default_nsp(&pk));
	ck_assert_uint_eq(pk.nsp_len, 6);
	ck_assert(memcmp(pk.nsp, "/admin", 6) == 0);
	sio_packet_free(&pk);

	decode_ok(S("0/admin,{\"token\":\"x\"}"), &pk);
	ck_assert(memcmp(pk.nsp, "/admin", 6) == 0);
	ck_assert_ptr_nonnull(pk.data);
	sio_packet_free(&pk);

	/* No comma: the namespace runs to the end. */
	decode_ok(S("1/chat"), &pk);
	ck_assert_int_eq((int)pk.type, SIO_DISCONNECT);
	ck_assert_uint_eq(pk.nsp_len, 5);
	sio_packet_free(&pk);
}
END_TEST

START_TEST(decode_event)
{
	struct sio_packet pk;
	json_object *arg, *v;

	decode_ok(S("2[\"stream-chat\",{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}]"), &pk);
	ck_assert_int_eq((int)pk.type, SIO_EVENT);
	ck_assert_str_eq(sio_event_name(&pk), "stream-chat");
	arg = sio_event_arg(&pk, 0);
	ck_assert_ptr_nonnull(arg);
	ck_assert(json_object_object_get_ex(arg, "messages", &v));
	ck_assert_ptr_null(sio_event_arg(&pk, 1));
	ck_assert_int_eq(pk.ack_id, -1);
	sio_packet_free(&pk);
}
END_TEST

START_TEST(decode_event_with_ack_id)
{
	struct sio_packet pk;

	decode_ok(S("212[\"join-room\",{\"roomName\":\"r\"}]"), &pk);
	ck_assert_int_eq((int)pk.type, SIO_EVENT);
	ck_assert_int_eq(pk.ack_id, 12);
	ck_assert_str_eq(sio_event_name(&pk), "join-room");
	sio_packet_free(&pk);

	decode_ok(S("2/chat,7[\"x\"]"), &pk);
	ck_assert_int_eq(pk.ack_id, 7);
	ck_assert(!sio_packet_default_nsp(&pk));
	ck_assert_ptr_null(sio_event_arg(&pk, 0));
	sio_packet_free(&pk);
}
END_TEST

START_TEST(decode_event_numeric_name)
{
	struct sio_packet pk;

	decode_ok(S("2[42,\"x\"]"), &pk);
	ck_assert_ptr_null(sio_event_name(&pk));
	ck_assert_str_eq(json_object_get_string(sio_event_arg(&pk, 0)), "x");
	sio_packet_free(&pk);
}
END_TEST

START_TEST(decode_ack)
{
	struct sio_packet pk;

	decode_ok(S("35[\"ok\",1]"), &pk);
	ck_assert_int_eq((int)pk.type, SIO_ACK);
	ck_assert_int_eq(pk.ack_id, 5);
	ck_assert_str_eq(json_object_get_string(sio_event_arg(&pk, 0)), "ok");
	sio_packet_free(&pk);
	decode_ok(S("30[]"), &pk);
	ck_assert_int_eq(pk.ack_id, 0);
	sio_packet_free(&pk);
}
END_TEST

START_TEST(decode_binary_event_attachments)
{
	struct sio_packet pk;

	decode_ok(S("51-[\"upload\",{\"_placeholder\":true,\"num\":0}]"), &pk);
	ck_assert_int_eq((int)pk.type, SIO_BINARY_EVENT);
	ck_assert_int_eq(pk.attachments, 1);
	sio_packet_free(&pk);
	decode_ok(S("62-/chat,3[{\"_placeholder\":true,\"num\":0}]"), &pk);
	ck_assert_int_eq((int)pk.type, SIO_BINARY_ACK);
	ck_assert_int_eq(pk.attachments, 2);
	ck_assert_int_eq(pk.ack_id, 3);
	sio_packet_free(&pk);
}
END_TEST

START_TEST(decode_connect_error)
{
	struct sio_packet pk;

	decode_ok(S("4{\"message\":\"nope\"}"), &pk);
	ck_assert_int_eq((int)pk.type, SIO_CONNECT_ERROR);
	sio_packet_free(&pk);
	decode_ok(S("4\"nope\""), &pk);
	sio_packet_free(&pk);
}
END_TEST

START_TEST(decode_rejects_malformed)
{
	decode_bad("", 0);
	decode_bad(S("7"));
	decode_bad(S("9[\"x\"]"));
	decode_bad(S("a"));
	/* Payload JSON must be strict and whole. */
	decode_bad(S("2[\"x\""));
	decode_bad(S("2['x']"));
	decode_bad(S("2[\"x\"]garbage"));
	decode_bad(S("2[\"x\",NaN]"));
	decode_bad(S("2{\"x\":1}"));
	decode_bad(S("2\"x\""));
	decode_bad(S("2[]"));
	decode_bad(S("2"));
	decode_bad(S("2null"));
	decode_bad(S("2[null]"));
	decode_bad(S("2[{}]"));
	/* Reserved names. */
	decode_bad(S("2[\"connect\"]"));
	decode_bad(S("2[\"disconnect\",1]"));
	decode_bad(S("2[\"connect_error\"]"));
	decode_bad(S("2[\"newListener\"]"));
	/* Per-type shapes. */
	decode_bad(S("0[1]"));
	decode_bad(S("0\"token\""));
	decode_bad(S("1{}"));
	decode_bad(S("3{}"));
	decode_bad(S("3"));
	decode_bad(S("4[1]"));
	/* Attachments. */
	decode_bad(S("5[\"x\"]"));
	decode_bad(S("5x-[\"x\"]"));
	decode_bad(S("51[\"x\"]"));
	/* Ack ids beyond 15 digits. */
	decode_bad(S("21234567890123456[\"x\"]"));
	/* Invalid UTF-8 and over-deep JSON. */
	decode_bad(S("2[\"\xff\"]"));
}
END_TEST

START_TEST(decode_rejects_too_deep)
{
	struct buf b;

	buf_init(&b, 4096);
	ck_assert(buf_appendz(&b, "2[\"x\","));
	for (int i = 0; i < 64; i++)
		ck_assert(buf_appendc(&b, '['));
	for (int i = 0; i < 64; i++)
		ck_assert(buf_appendc(&b, ']'));
	ck_assert(buf_appendc(&b, ']'));
	decode_bad(b.data, b.len);
	buf_free(&b);
}
END_TEST

START_TEST(decode_every_prefix_is_safe)
{
	/* Every truncation of a valid packet either decodes or is refused
	 * cleanly (run under valgrind: no read past n, no leak). */
	const char p[] = "212/chat,[\"stream-chat\",{\"messages\":[{\"role\":\"user\",\"content\":\"h\\u00e9\"}]}]";

	for (size_t n = 0; n <= sizeof(p) - 1; n++) {
		struct sio_packet pk;
		const char *err;
		char *copy = malloc(n > 0 ? n : 1);

		ck_assert_ptr_nonnull(copy);
		memcpy(copy, p, n);
		if (sio_packet_decode(copy, n, &pk, &err))
			sio_packet_free(&pk);
		free(copy);
	}
}
END_TEST

START_TEST(encode_connect)
{
	struct buf b;

	buf_init(&b, 4096);
	ck_assert(sio_encode_connect(&b, "/", "abcDEF123"));
	ck_assert_str_eq(b.data, "0{\"sid\":\"abcDEF123\"}");
	buf_reset(&b);
	ck_assert(sio_encode_connect(&b, NULL, "x"));
	ck_assert_str_eq(b.data, "0{\"sid\":\"x\"}");
	buf_reset(&b);
	ck_assert(sio_encode_connect(&b, "/admin", "x"));
	ck_assert_str_eq(b.data, "0/admin,{\"sid\":\"x\"}");
	buf_free(&b);
}
END_TEST

START_TEST(encode_connect_error_and_disconnect)
{
	struct buf b;

	buf_init(&b, 4096);
	ck_assert(sio_encode_connect_error(&b, "/admin", "Invalid namespace"));
	ck_assert_str_eq(b.data, "4/admin,{\"message\":\"Invalid namespace\"}");
	buf_reset(&b);
	ck_assert(sio_encode_connect_error(&b, "/", "say \"no\""));
	ck_assert_str_eq(b.data, "4{\"message\":\"say \\\"no\\\"\"}");
	buf_free(&b);
}
END_TEST

START_TEST(encode_event_round_trips)
{
	struct buf b;
	struct sio_packet pk;
	json_object *v;

	buf_init(&b, 4096);
	ck_assert(sio_encode_event(&b, "/", "stream-chunk",
	    S("{\"content\":\"a\\nb\",\"isComplete\":false}")));
	ck_assert_str_eq(b.data, "2[\"stream-chunk\",{\"content\":\"a\\nb\",\"isComplete\":false}]");
	decode_ok(b.data, b.len, &pk);
	ck_assert_str_eq(sio_event_name(&pk), "stream-chunk");
	ck_assert(json_object_object_get_ex(sio_event_arg(&pk, 0), "content", &v));
	ck_assert_str_eq(json_object_get_string(v), "a\nb");
	sio_packet_free(&pk);

	buf_reset(&b);
	ck_assert(sio_encode_event(&b, "/", "ping\"me", NULL, 0));
	ck_assert_str_eq(b.data, "2[\"ping\\\"me\"]");
	buf_free(&b);
}
END_TEST

START_TEST(encode_ack)
{
	struct buf b;

	buf_init(&b, 4096);
	ck_assert(sio_encode_ack(&b, "/", 12, S("{\"ok\":true}")));
	ck_assert_str_eq(b.data, "312[{\"ok\":true}]");
	buf_reset(&b);
	ck_assert(sio_encode_ack(&b, "/", 0, NULL, 0));
	ck_assert_str_eq(b.data, "30[]");
	buf_free(&b);
}
END_TEST

START_TEST(encode_respects_buffer_limit)
{
	struct buf b;

	buf_init(&b, 16);
	ck_assert(!sio_encode_event(&b, "/", "a-long-event-name", S("{\"x\":1}")));
	buf_free(&b);
}
END_TEST

static Suite *
sio_suite(void)
{
	Suite *s = suite_create("sio");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, decode_connect_default_namespace);
	tcase_add_test(tc, decode_connect_with_auth);
	tcase_add_test(tc, decode_connect_other_namespace);
	tcase_add_test(tc, decode_event);
	tcase_add_test(tc, decode_event_with_ack_id);
	tcase_add_test(tc, decode_event_numeric_name);
	tcase_add_test(tc, decode_ack);
	tcase_add_test(tc, decode_binary_event_attachments);
	tcase_add_test(tc, decode_connect_error);
	tcase_add_test(tc, decode_rejects_malformed);
	tcase_add_test(tc, decode_rejects_too_deep);
	tcase_add_test(tc, decode_every_prefix_is_safe);
	tcase_add_test(tc, encode_connect);
	tcase_add_test(tc, encode_connect_error_and_disconnect);
	tcase_add_test(tc, encode_event_round_trips);
	tcase_add_test(tc, encode_ack);
	tcase_add_test(tc, encode_respects_buffer_limit);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(sio_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed != 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
