/* test_eio.c: unit tests of gateway/eio.h: Engine.IO packets, the polling
 * payload separator, malformed input, the handshake and error bodies. */
#include <check.h>
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "eio.h"

#define S(lit) lit, sizeof(lit) - 1

/* Decodes a polling body into a transcript "type:data|type:data|",
 * or "ERR" at the first malformed packet. */
static void
transcript(const char *p, size_t n, struct buf *out)
{
	struct eio_payload_iter it;
	struct eio_packet pk;
	int rc;

	buf_reset(out);
	ck_assert(buf_appendz(out, ""));
	eio_payload_iter_init(&it, p, n);
	while ((rc = eio_payload_next(&it, &pk)) == 1) {
		ck_assert(buf_printf(out, "%s%d:", pk.binary ? "b" : "", (int)pk.type));
		ck_assert(buf_append(out, pk.data, pk.len));
		ck_assert(buf_appendc(out, '|'));
	}
	if (rc < 0)
		ck_assert(buf_appendz(out, "ERR"));
}

START_TEST(packet_decode_each_type)
{
	struct eio_packet pk;
	char p[2] = { 0, 0 };

	for (int t = 0; t <= 6; t++) {
		p[0] = (char)('0' + t);
		ck_assert(eio_packet_decode(p, 1, &pk));
		ck_assert_int_eq((int)pk.type, t);
		ck_assert_uint_eq(pk.len, 0);
		ck_assert(!pk.binary);
	}
}
END_TEST

START_TEST(packet_decode_with_data)
{
	struct eio_packet pk;

	ck_assert(eio_packet_decode(S("2probe"), &pk));
	ck_assert_int_eq((int)pk.type, EIO_PING);
	ck_assert_uint_eq(pk.len, 5);
	ck_assert(memcmp(pk.data, "probe", 5) == 0);

	ck_assert(eio_packet_decode(S("42[\"hi\",{\"a\":1}]"), &pk));
	ck_assert_int_eq((int)pk.type, EIO_MESSAGE);
	ck_assert_uint_eq(pk.len, strlen("2[\"hi\",{\"a\":1}]"));
	ck_assert(memcmp(pk.data, "2[\"hi\"", 6) == 0);
}
END_TEST

START_TEST(packet_decode_binary_base64)
{
	struct eio_packet pk;

	ck_assert(eio_packet_decode(S("bAQID"), &pk));
	ck_assert_int_eq((int)pk.type, EIO_MESSAGE);
	ck_assert(pk.binary);
	ck_assert_uint_eq(pk.len, 4);
	ck_assert(memcmp(pk.data, "AQID", 4) == 0);
}
END_TEST

START_TEST(packet_decode_rejects_malformed)
{
	struct eio_packet pk;

	ck_assert(!eio_packet_decode("", 0, &pk));
	ck_assert(!eio_packet_decode(S("7"), &pk));
	ck_assert(!eio_packet_decode(S("9hello"), &pk));
	ck_assert(!eio_packet_decode(S("x"), &pk));
	ck_assert(!eio_packet_decode(S("/2"), &pk));
	ck_assert(!eio_packet_decode(S("\x1e"), &pk));
	ck_assert(!eio_packet_decode("\0" "2", 2, &pk));
}
END_TEST

START_TEST(payload_single_packet)
{
	struct buf t;

	buf_init(&t, 4096);
	transcript(S("40"), &t);
	ck_assert_str_eq(t.data, "4:0|");
	transcript(S("3"), &t);
	ck_assert_str_eq(t.data, "3:|");
	buf_free(&t);
}
END_TEST

START_TEST(payload_splits_on_record_separator)
{
	struct buf t;

	buf_init(&t, 4096);
	transcript(S("40\x1e" "42[\"a\"]\x1e" "3\x1e" "6"), &t);
	ck_assert_str_eq(t.data, "4:0|4:2[\"a\"]|3:|6:|");
	/* The separator inside JSON text cannot occur (JSON escapes it), but
	 * a raw one always splits. */
	transcript(S("4x\x1e" "4y"), &t);
	ck_assert_str_eq(t.data, "4:x|4:y|");
	buf_free(&t);
}
END_TEST

START_TEST(payload_rejects_empty_records)
{
	struct buf t;

	buf_init(&t, 4096);
	transcript("", 0, &t);
	ck_assert_str_eq(t.data, "ERR");
	transcript(S("\x1e"), &t);
	ck_assert_str_eq(t.data, "ERR");
	transcript(S("40\x1e"), &t);
	ck_assert_str_eq(t.data, "4:0|ERR");
	transcript(S("40\x1e\x1e" "3"), &t);
	ck_assert_str_eq(t.data, "4:0|ERR");
	transcript(S("\x1e" "40"), &t);
	ck_assert_str_eq(t.data, "ERR");
	buf_free(&t);
}
END_TEST

START_TEST(payload_rejects_unknown_type_and_stops)
{
	struct buf t;
	struct eio_payload_iter it;
	struct eio_packet pk;

	buf_init(&t, 4096);
	transcript(S("3\x1e" "8x\x1e" "40"), &t);
	ck_assert_str_eq(t.data, "3:|ERR");
	/* After an error the iterator stays finished. */
	eio_payload_iter_init(&it, S("z"));
	ck_assert_int_eq(eio_payload_next(&it, &pk), -1);
	ck_assert_int_eq(eio_payload_next(&it, &pk), 0);
	buf_free(&t);
}
END_TEST

START_TEST(payload_mixed_binary_and_text)
{
	struct buf t;

	buf_init(&t, 4096);
	transcript(S("4hello\x1e" "bAQIDBA=="), &t);
	ck_assert_str_eq(t.data, "4:hello|b4:AQIDBA==|");
	buf_free(&t);
}
END_TEST

START_TEST(payload_split_at_every_byte)
{
	/* Any prefix of a valid body ending on a separator boundary is valid;
	 * a cut elsewhere leaves packets that still decode or an empty record.
	 * Whatever the cut, the iterator never reads past n. */
	const char body[] = "40\x1e" "42[\"x\",{\"y\":\"z\"}]\x1e" "3";
	struct buf t;

	buf_init(&t, 4096);
	for (size_t n = 0; n <= sizeof(body) - 1; n++) {
		char *copy = malloc(n > 0 ? n : 1);
		ck_assert_ptr_nonnull(copy);
		memcpy(copy, body, n);
		transcript(copy, n, &t);
		if (n == 0 || body[n - 1] == '\x1e')
			ck_assert_msg(strstr(t.data, "ERR") != NULL, "cut at %zu: %s", n, t.data);
		else
			ck_assert_msg(strstr(t.data, "ERR") == NULL, "cut at %zu: %s", n, t.data);
		free(copy);
	}
	buf_free(&t);
}
END_TEST

START_TEST(payload_append_joins_with_separator)
{
	struct buf b;

	buf_init(&b, 4096);
	ck_assert(eio_payload_append(&b, S("40{\"sid\":\"x\"}")));
	ck_assert(eio_payload_append(&b, S("42[\"connected\"]")));
	ck_assert(eio_payload_append(&b, S("2")));
	ck_assert_uint_eq(b.len, strlen("40{\"sid\":\"x\"}\x1e" "42[\"connected\"]\x1e" "2"));
	ck_assert(memcmp(b.data, "40{\"sid\":\"x\"}\x1e" "42[\"connected\"]\x1e" "2", b.len) == 0);
	buf_free(&b);
}
END_TEST

START_TEST(payload_append_respects_limit)
{
	struct buf b;

	buf_init(&b, 8);
	ck_assert(eio_payload_append(&b, S("4abcd")));
	ck_assert(!eio_payload_append(&b, S("4efgh")));
	ck_assert_uint_eq(b.len, 5);
	buf_free(&b);
}
END_TEST

START_TEST(encode_open_polling_and_websocket)
{
	struct buf b;
	json_object *o, *v;

	buf_init(&b, 4096);
	ck_assert(eio_encode_open(&b, "AAAAAAAAAAAAAAAAAAAA", true, 25000, 20000, 1000000));
	ck_assert_int_eq(b.data[0], '0');
	o = json_tokener_parse(b.data + 1);
	ck_assert_ptr_nonnull(o);
	ck_assert(json_object_object_get_ex(o, "sid", &v));
	ck_assert_str_eq(json_object_get_string(v), "AAAAAAAAAAAAAAAAAAAA");
	ck_assert(json_object_object_get_ex(o, "upgrades", &v));
	ck_assert_uint_eq(json_object_array_length(v), 1);
	ck_assert_str_eq(json_object_get_string(json_object_array_get_idx(v, 0)), "websocket");
	ck_assert(json_object_object_get_ex(o, "pingInterval", &v));
	ck_assert_int_eq(json_object_get_int(v), 25000);
	ck_assert(json_object_object_get_ex(o, "pingTimeout", &v));
	ck_assert_int_eq(json_object_get_int(v), 20000);
	ck_assert(json_object_object_get_ex(o, "maxPayload", &v));
	ck_assert_int_eq(json_object_get_int(v), 1000000);
	json_object_put(o);

	buf_reset(&b);
	ck_assert(eio_encode_open(&b, "BBBBBBBBBBBBBBBBBBBB", false, 1000, 500, 1000000));
	o = json_tokener_parse(b.data + 1);
	ck_assert_ptr_nonnull(o);
	ck_assert(json_object_object_get_ex(o, "upgrades", &v));
	ck_assert_uint_eq(json_object_array_length(v), 0);
	json_object_put(o);
	buf_free(&b);
}
END_TEST

START_TEST(encode_error_bodies)
{
	struct buf b;

	buf_init(&b, 4096);
	ck_assert(eio_encode_error(&b, EIO_ERR_SESSION_UNKNOWN));
	ck_assert_str_eq(b.data, "{\"code\":1,\"message\":\"Session ID unknown\"}");
	buf_reset(&b);
	ck_assert(eio_encode_error(&b, EIO_ERR_FORBIDDEN));
	ck_assert_str_eq(b.data, "{\"code\":4,\"message\":\"Forbidden\"}");
	buf_reset(&b);
	ck_assert(eio_encode_error(&b, EIO_ERR_TRANSPORT_UNKNOWN));
	ck_assert_str_eq(b.data, "{\"code\":0,\"message\":\"Transport unknown\"}");
	buf_reset(&b);
	ck_assert(eio_encode_error(&b, EIO_ERR_UNSUPPORTED_PROTOCOL));
	ck_assert_str_eq(b.data, "{\"code\":5,\"message\":\"Unsupported protocol version\"}");
	ck_assert_int_eq(eio_error_status(EIO_ERR_FORBIDDEN), 403);
	ck_assert_int_eq(eio_error_status(EIO_ERR_BAD_REQUEST), 400);
	ck_assert_int_eq(eio_error_status(EIO_ERR_SESSION_UNKNOWN), 400);
	buf_free(&b);
}
END_TEST

#define SID_CHARS "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

START_TEST(sid_generate)
{
	char a[EIO_SID_LEN + 1], b[EIO_SID_LEN + 1], small[EIO_SID_LEN];

	ck_assert(eio_sid_generate(a, sizeof(a)));
	ck_assert(eio_sid_generate(b, sizeof(b)));
	ck_assert_uint_eq(strlen(a), EIO_SID_LEN);
	ck_assert_str_ne(a, b);
	/* base64url only: a sid goes into URLs (?sid=) unescaped. */
	ck_assert_uint_eq(strspn(a, SID_CHARS), EIO_SID_LEN);
	ck_assert_uint_eq(strspn(b, SID_CHARS), EIO_SID_LEN);
	ck_assert(!eio_sid_generate(small, sizeof(small)));
}
END_TEST

static Suite *
eio_suite(void)
{
	Suite *s = suite_create("eio");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, packet_decode_each_type);
	tcase_add_test(tc, packet_decode_with_data);
	tcase_add_test(tc, packet_decode_binary_base64);
	tcase_add_test(tc, packet_decode_rejects_malformed);
	tcase_add_test(tc, payload_single_packet);
	tcase_add_test(tc, payload_splits_on_record_separator);
	tcase_add_test(tc, payload_rejects_empty_records);
	tcase_add_test(tc, payload_rejects_unknown_type_and_stops);
	tcase_add_test(tc, payload_mixed_binary_and_text);
	tcase_add_test(tc, payload_split_at_every_byte);
	tcase_add_test(tc, payload_append_joins_with_separator);
	tcase_add_test(tc, payload_append_respects_limit);
	tcase_add_test(tc, encode_open_polling_and_websocket);
	tcase_add_test(tc, encode_error_bodies);
	tcase_add_test(tc, sid_generate);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(eio_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed != 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
