/* test_json.c: unit tests of buf.h, json_out.h and json_in.h. */
#include <check.h>
#include <json-c/json.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "json_in.h"
#include "json_out.h"

#define FFFD "\xef\xbf\xbd"

/* ---- helpers ------------------------------------------------------------ */

/* Encodes json_put_string(p, n) into a fresh buffer; the caller frees it. */
static void
put(struct buf *b, const char *p, size_t n)
{
	buf_init(b, 1 << 20);
	ck_assert_msg(json_put_string(b, p, n), "json_put_string failed");
	ck_assert_int_eq(b->data[b->len], '\0');
}

/* Parses JSON text with json-c (strict, UTF-8 validated) and returns the
 * decoded string in a malloc'd copy with its length; fails the test if the
 * text is not exactly one JSON string. */
static char *
decode_string(const char *json, size_t n, size_t *len)
{
	json_tokener *tok = json_tokener_new();
	json_object *o;
	char *copy;

	ck_assert_ptr_nonnull(tok);
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	o = json_tokener_parse_ex(tok, json, (int)n);
	ck_assert_msg(o != NULL, "output does not parse as JSON: %.*s", (int)n, json);
	ck_assert_uint_eq(json_tokener_get_parse_end(tok), n);
	ck_assert_msg(json_object_is_type(o, json_type_string), "not a JSON string");
	*len = (size_t)json_object_get_string_len(o);
	copy = malloc(*len + 1);
	ck_assert_ptr_nonnull(copy);
	memcpy(copy, json_object_get_string(o), *len + 1);
	json_object_put(o);
	json_tokener_free(tok);
	return copy;
}

/* The escaped output must be safe for SSE and JSON: no raw control bytes,
 * valid UTF-8 between the quotes. */
static void
assert_safe_output(const struct buf *b)
{
	ck_assert_uint_ge(b->len, 2);
	ck_assert_int_eq(b->data[0], '"');
	ck_assert_int_eq(b->data[b->len - 1], '"');
	for (size_t i = 0; i < b->len; i++)
		ck_assert_msg((unsigned char)b->data[i] >= 0x20, "raw control byte 0x%02x at %zu",
		    (unsigned char)b->data[i], i);
	ck_assert_msg(utf8_valid(b->data, b->len), "output is not valid UTF-8");
}

/* Encodes in[0..n), checks the exact output text, and that json-c decodes it
 * back to want[0..wlen). */
static void
check_encode(const char *in, size_t n, const char *text, const char *want, size_t wlen)
{
	struct buf b;
	char *got;
	size_t glen;

	put(&b, in, n);
	assert_safe_output(&b);
	if (text != NULL)
		ck_assert_msg(b.len == strlen(text) && memcmp(b.data, text, b.len) == 0,
		    "encoded as [%s], want [%s]", b.data, text);
	got = decode_string(b.data, b.len, &glen);
	ck_assert_uint_eq(glen, wlen);
	ck_assert_mem_eq(got, want, wlen);
	free(got);
	buf_free(&b);
}

/* Encodes in[0..n) (containing invalid UTF-8 between prefix and suffix) and
 * checks the decoded string is prefix, one or more U+FFFD, suffix: whatever
 * the replacement granularity, no invalid byte survives and nothing valid is
 * lost. */
static void
check_replaced(const char *in, size_t n, const char *prefix, const char *suffix)
{
	struct buf b;
	char *got;
	size_t glen, plen = strlen(prefix), slen = strlen(suffix), mid;

	put(&b, in, n);
	assert_safe_output(&b);
	got = decode_string(b.data, b.len, &glen);
	ck_assert_uint_ge(glen, plen + 3 + slen);
	ck_assert_mem_eq(got, prefix, plen);
	ck_assert_mem_eq(got + glen - slen, suffix, slen);
	mid = glen - plen - slen;
	ck_assert_uint_eq(mid % 3, 0);
	for (size_t i = 0; i < mid; i += 3)
		ck_assert_mem_eq(got + plen + i, FFFD, 3);
	free(got);
	buf_free(&b);
}

/* Writes the UTF-8 encoding of cp (any value up to 0x10FFFF, surrogates
 * included) into out; returns its length. */
static size_t
utf8_encode(uint32_t cp, unsigned char *out)
{
	if (cp < 0x80) {
		out[0] = (unsigned char)cp;
		return 1;
	}
	if (cp < 0x800) {
		out[0] = (unsigned char)(0xc0 | (cp >> 6));
		out[1] = (unsigned char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		out[0] = (unsigned char)(0xe0 | (cp >> 12));
		out[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
		out[2] = (unsigned char)(0x80 | (cp & 0x3f));
		return 3;
	}
	out[0] = (unsigned char)(0xf0 | (cp >> 18));
	out[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3f));
	out[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
	out[3] = (unsigned char)(0x80 | (cp & 0x3f));
	return 4;
}

/* Writes an overlong encoding of cp with len bytes (len larger than needed). */
static void
utf8_encode_overlong(uint32_t cp, size_t len, unsigned char *out)
{
	static const unsigned char lead[] = { 0, 0, 0xc0, 0xe0, 0xf0 };

	for (size_t i = len - 1; i > 0; i--) {
		out[i] = (unsigned char)(0x80 | (cp & 0x3f));
		cp >>= 6;
	}
	out[0] = (unsigned char)(lead[len] | cp);
}

/* ---- buf.h -------------------------------------------------------------- */

START_TEST(buf_init_is_empty_and_allocates_nothing)
{
	struct buf b;

	buf_init(&b, 100);
	ck_assert_ptr_null(b.data);
	ck_assert_uint_eq(b.len, 0);
	ck_assert_uint_eq(b.max, 100);
	buf_free(&b);
	buf_free(NULL);
}
END_TEST

START_TEST(buf_append_keeps_bytes_and_nul_terminates)
{
	struct buf b;

	buf_init(&b, 100);
	ck_assert(buf_append(&b, "ab\0cd", 5));
	ck_assert(buf_appendz(&b, "ef"));
	ck_assert(buf_appendc(&b, 'g'));
	ck_assert_uint_eq(b.len, 8);
	ck_assert_mem_eq(b.data, "ab\0cdefg", 8);
	ck_assert_int_eq(b.data[8], '\0');
	ck_assert(buf_append(&b, NULL, 0));
	ck_assert_uint_eq(b.len, 8);
	buf_free(&b);
}
END_TEST

START_TEST(buf_append_up_to_max_succeeds)
{
	struct buf b;

	buf_init(&b, 10);
	ck_assert(buf_append(&b, "0123456789", 10));
	ck_assert_uint_eq(b.len, 10);
	ck_assert_str_eq(b.data, "0123456789");
	buf_free(&b);
}
END_TEST

START_TEST(buf_append_past_max_fails_and_leaves_buffer_unchanged)
{
	struct buf b;

	buf_init(&b, 10);
	ck_assert(!buf_append(&b, "01234567890", 11));
	ck_assert_uint_eq(b.len, 0);
	ck_assert(buf_append(&b, "012345", 6));
	ck_assert(!buf_append(&b, "abcde", 5));
	ck_assert(!buf_appendz(&b, "abcde"));
	ck_assert_uint_eq(b.len, 6);
	ck_assert_str_eq(b.data, "012345");
	ck_assert(buf_append(&b, "abcd", 4));
	ck_assert(!buf_appendc(&b, 'x'));
	ck_assert_uint_eq(b.len, 10);
	ck_assert_str_eq(b.data, "012345abcd");
	/* A huge length must not wrap around the limit check. */
	ck_assert(!buf_append(&b, "x", SIZE_MAX));
	ck_assert_uint_eq(b.len, 10);
	buf_free(&b);
}
END_TEST

START_TEST(buf_grows_to_large_sizes)
{
	struct buf b;
	char chunk[1000];

	memset(chunk, 'z', sizeof(chunk));
	buf_init(&b, 100000);
	for (int i = 0; i < 100; i++)
		ck_assert(buf_append(&b, chunk, sizeof(chunk)));
	ck_assert_uint_eq(b.len, 100000);
	ck_assert(!buf_appendc(&b, 'z'));
	for (size_t i = 0; i < b.len; i++)
		if (b.data[i] != 'z')
			ck_abort_msg("byte %zu corrupted", i);
	ck_assert_int_eq(b.data[b.len], '\0');
	buf_free(&b);
}
END_TEST

START_TEST(buf_printf_formats_and_appends)
{
	struct buf b;

	buf_init(&b, 100);
	ck_assert(buf_printf(&b, "%d-%s", 42, "x"));
	ck_assert(buf_printf(&b, "|%05.1f|", 3.14159));
	ck_assert(buf_printf(&b, "%s", ""));
	ck_assert_str_eq(b.data, "42-x|003.1|");
	ck_assert_uint_eq(b.len, 11);
	buf_free(&b);
}
END_TEST

START_TEST(buf_printf_past_max_fails_and_leaves_buffer_unchanged)
{
	struct buf b;

	buf_init(&b, 8);
	ck_assert(buf_printf(&b, "%s", "abcd"));
	ck_assert(!buf_printf(&b, "%d", 12345));
	ck_assert_uint_eq(b.len, 4);
	ck_assert_str_eq(b.data, "abcd");
	ck_assert(buf_printf(&b, "%d", 1234));
	ck_assert_str_eq(b.data, "abcd1234");
	buf_free(&b);
}
END_TEST

START_TEST(buf_reset_empties_but_keeps_storage)
{
	struct buf b;
	char *p;

	buf_init(&b, 100);
	ck_assert(buf_appendz(&b, "abc"));
	p = b.data;
	buf_reset(&b);
	ck_assert_uint_eq(b.len, 0);
	ck_assert_ptr_eq(b.data, p);
	ck_assert_str_eq(b.data, "");
	buf_free(&b);
	ck_assert_ptr_null(b.data);
	ck_assert(buf_appendz(&b, "reuse"));
	ck_assert_str_eq(b.data, "reuse");
	buf_free(&b);
}
END_TEST

START_TEST(buf_steal_transfers_storage)
{
	struct buf b;
	char *s;

	buf_init(&b, 100);
	ck_assert(buf_appendz(&b, "mine"));
	s = buf_steal(&b);
	ck_assert_str_eq(s, "mine");
	ck_assert_ptr_null(b.data);
	ck_assert_uint_eq(b.len, 0);
	ck_assert(buf_appendz(&b, "new"));
	ck_assert_str_eq(b.data, "new");
	ck_assert_str_eq(s, "mine");
	free(s);
	buf_free(&b);
}
END_TEST

START_TEST(buf_steal_of_empty_buffer_returns_empty_string)
{
	struct buf b;
	char *s;

	buf_init(&b, 100);
	s = buf_steal(&b);
	ck_assert_ptr_nonnull(s);
	ck_assert_str_eq(s, "");
	free(s);
	buf_free(&b);
}
END_TEST

/* ---- json_compact --------------------------------------------------------- */

static void
check_compact(const char *in, const char *want)
{
	char s[256];
	size_t n;

	ck_assert_uint_lt(strlen(in), sizeof(s));
	strcpy(s, in);
	n = json_compact(s, strlen(s));
	ck_assert_uint_eq(n, strlen(want));
	ck_assert_str_eq(s, want);
}

START_TEST(json_compact_removes_spaces_between_tokens_only)
{
	/* What jsonb prints, and what must not change inside strings. */
	check_compact("{\"id\": 1, \"title\": \"a, b: c\", \"m\": [{\"x\": null}, true]}",
	    "{\"id\":1,\"title\":\"a, b: c\",\"m\":[{\"x\":null},true]}");
	check_compact("{\"q\": \"say \\\"hi\\\" \\\\\", \"n\": -1.5e3}",
	    "{\"q\":\"say \\\"hi\\\" \\\\\",\"n\":-1.5e3}");
	check_compact(" \n{ }\t\r\n", "{}");
	check_compact("{\"a\":\"\"}", "{\"a\":\"\"}");
	check_compact("", "");
}
END_TEST

/* ---- json_put_string ------------------------------------------------------ */

START_TEST(json_put_plain_ascii)
{
	check_encode("hello, world", 12, "\"hello, world\"", "hello, world", 12);
	check_encode("", 0, "\"\"", "", 0);
}
END_TEST

START_TEST(json_put_escapes_quotes_and_backslashes)
{
	check_encode("a\"b\\c", 5, "\"a\\\"b\\\\c\"", "a\"b\\c", 5);
	check_encode("\\\"", 2, "\"\\\\\\\"\"", "\\\"", 2);
	check_encode("/", 1, "\"/\"", "/", 1);
}
END_TEST

START_TEST(json_put_escapes_newline_cr_tab)
{
	check_encode("a\nb\rc\td", 7, "\"a\\nb\\rc\\td\"", "a\nb\rc\td", 7);
	check_encode("\r\n\r\n", 4, "\"\\r\\n\\r\\n\"", "\r\n\r\n", 4);
}
END_TEST

START_TEST(json_put_escapes_other_control_chars_as_u00xx)
{
	check_encode("\x01", 1, "\"\\u0001\"", "\x01", 1);
	check_encode("\x08\x0c", 2, "\"\\u0008\\u000c\"", "\x08\x0c", 2);
	check_encode("x\x1fy", 3, "\"x\\u001fy\"", "x\x1fy", 3);
	check_encode("\x1b[31m", 5, "\"\\u001b[31m\"", "\x1b[31m", 5);
}
END_TEST

START_TEST(json_put_every_ascii_byte_round_trips)
{
	for (int c = 0; c < 0x80; c++) {
		char in[3] = { 'a', (char)c, 'z' };
		check_encode(in, 3, NULL, in, 3);
	}
}
END_TEST

START_TEST(json_put_escapes_nul_bytes)
{
	check_encode("a\0b", 3, "\"a\\u0000b\"", "a\0b", 3);
	check_encode("\0\0", 2, "\"\\u0000\\u0000\"", "\0\0", 2);
}
END_TEST

START_TEST(json_put_keeps_two_byte_utf8_verbatim)
{
	check_encode("caf\xc3\xa9", 5, "\"caf\xc3\xa9\"", "caf\xc3\xa9", 5);
	check_encode("\xc2\x80", 2, "\"\xc2\x80\"", "\xc2\x80", 2);          /* U+0080 */
	check_encode("\xdf\xbf", 2, "\"\xdf\xbf\"", "\xdf\xbf", 2);          /* U+07FF */
}
END_TEST

START_TEST(json_put_keeps_three_byte_utf8_verbatim)
{
	check_encode("\xe4\xb8\xad\xe6\x96\x87", 6, "\"\xe4\xb8\xad\xe6\x96\x87\"",
	    "\xe4\xb8\xad\xe6\x96\x87", 6);
	check_encode("\xe0\xa0\x80", 3, "\"\xe0\xa0\x80\"", "\xe0\xa0\x80", 3);  /* U+0800 */
	check_encode("\xed\x9f\xbf", 3, "\"\xed\x9f\xbf\"", "\xed\x9f\xbf", 3);  /* U+D7FF */
	check_encode("\xee\x80\x80", 3, "\"\xee\x80\x80\"", "\xee\x80\x80", 3);  /* U+E000 */
	check_encode("\xef\xbf\xbf", 3, "\"\xef\xbf\xbf\"", "\xef\xbf\xbf", 3);  /* U+FFFF */
	/* U+2028/2029 are valid JSON string characters. */
	check_encode("\xe2\x80\xa8", 3, "\"\xe2\x80\xa8\"", "\xe2\x80\xa8", 3);
}
END_TEST

START_TEST(json_put_keeps_four_byte_utf8_verbatim)
{
	check_encode("\xf0\x9f\x98\x80!", 5, "\"\xf0\x9f\x98\x80!\"", "\xf0\x9f\x98\x80!", 5);
	check_encode("\xf0\x90\x80\x80", 4, "\"\xf0\x90\x80\x80\"", "\xf0\x90\x80\x80", 4);
	check_encode("\xf4\x8f\xbf\xbf", 4, "\"\xf4\x8f\xbf\xbf\"", "\xf4\x8f\xbf\xbf", 4);
}
END_TEST

START_TEST(json_put_replaces_lone_continuation_byte)
{
	check_encode("a\x80z", 3, "\"a" FFFD "z\"", "a" FFFD "z", 5);
	check_encode("\xbf", 1, "\"" FFFD "\"", FFFD, 3);
}
END_TEST

START_TEST(json_put_replaces_each_lone_high_byte)
{
	/* Any byte >= 0x80 alone between ASCII is invalid and must become one U+FFFD. */
	for (int c = 0x80; c <= 0xff; c++) {
		char in[3] = { 'a', (char)c, 'z' };
		check_encode(in, 3, NULL, "a" FFFD "z", 5);
	}
}
END_TEST

START_TEST(json_put_replaces_overlong_forms)
{
	check_replaced("x\xc0\xafy", 4, "x", "y");            /* '/' in 2 bytes */
	check_replaced("x\xc1\xbfy", 4, "x", "y");
	check_replaced("x\xe0\x80\xafy", 5, "x", "y");        /* '/' in 3 bytes */
	check_replaced("x\xe0\x9f\xbfy", 5, "x", "y");        /* U+07FF in 3 bytes */
	check_replaced("x\xf0\x80\x80\xafy", 6, "x", "y");    /* '/' in 4 bytes */
	check_replaced("x\xf0\x8f\xbf\xbfy", 6, "x", "y");    /* U+FFFF in 4 bytes */
	check_replaced("\xc0\x80", 2, "", "");                /* modified-UTF-8 NUL */
}
END_TEST

START_TEST(json_put_replaces_surrogates)
{
	check_replaced("a\xed\xa0\x80z", 5, "a", "z");        /* U+D800 */
	check_replaced("a\xed\xbf\xbfz", 5, "a", "z");        /* U+DFFF */
	/* CESU-8 pair for U+1F600 */
	check_replaced("a\xed\xa0\xbd\xed\xb8\x80z", 8, "a", "z");
}
END_TEST

START_TEST(json_put_replaces_code_points_above_10ffff)
{
	check_replaced("a\xf4\x90\x80\x80z", 6, "a", "z");
	check_replaced("a\xf5\x80\x80\x80z", 6, "a", "z");
	check_replaced("a\xf8\x88\x80\x80\x80z", 7, "a", "z");
	check_replaced("a\xfe\xffz", 4, "a", "z");
}
END_TEST

START_TEST(json_put_replaces_truncated_sequence_at_end)
{
	check_replaced("ab\xc3", 3, "ab", "");
	check_replaced("ab\xe4\xb8", 4, "ab", "");
	check_replaced("ab\xf0\x9f\x98", 5, "ab", "");
	/* truncated in the middle, followed by valid text */
	check_replaced("ab\xe4\xb8z\xc3\xa9", 7, "ab", "z\xc3\xa9");
	check_replaced("\xf0\x9f\x98\xf0\x9f\x98\x80", 7, "", "\xf0\x9f\x98\x80");
}
END_TEST

START_TEST(json_put_random_bytes_always_give_valid_json)
{
	unsigned seed = 12345;
	char in[64];

	for (int round = 0; round < 3000; round++) {
		struct buf b;
		size_t n, glen;
		char *got;

		seed = seed * 1103515245u + 12345u;
		n = (seed >> 16) % sizeof(in);
		for (size_t i = 0; i < n; i++) {
			seed = seed * 1103515245u + 12345u;
			/* bias towards interesting bytes */
			in[i] = (char)((seed >> 16) & 1 ? 0x80 | (seed >> 20) : (seed >> 20));
		}
		put(&b, in, n);
		assert_safe_output(&b);
		got = decode_string(b.data, b.len, &glen);
		ck_assert(memchr(got, '\0', glen) != NULL || utf8_valid(got, glen));
		if (memchr(in, '\0', n) == NULL && utf8_valid(in, n)) {
			ck_assert_uint_eq(glen, n);
			ck_assert_mem_eq(got, in, n);
		}
		free(got);
		buf_free(&b);
	}
}
END_TEST

START_TEST(json_put_fails_when_buffer_is_full)
{
	struct buf b;

	buf_init(&b, 8);
	ck_assert(!json_put_string(&b, "0123456789", 10));
	buf_free(&b);
	buf_init(&b, 8);
	ck_assert(!json_put_string(&b, "\n\n\n\n", 4));   /* escapes double the size */
	buf_free(&b);
	buf_init(&b, 8);
	ck_assert(json_put_string(&b, "012345", 6));     /* exactly 8 with the quotes */
	ck_assert_str_eq(b.data, "\"012345\"");
	buf_free(&b);
}
END_TEST

START_TEST(json_put_stringz_and_key)
{
	struct buf b;

	buf_init(&b, 100);
	ck_assert(buf_appendc(&b, '{'));
	ck_assert(json_put_key(&b, "a"));
	ck_assert(json_put_stringz(&b, "x\"y"));
	ck_assert(buf_appendc(&b, ','));
	ck_assert(json_put_key(&b, "b"));
	ck_assert(json_put_stringz(&b, NULL));
	ck_assert(buf_appendc(&b, '}'));
	ck_assert_str_eq(b.data, "{\"a\":\"x\\\"y\",\"b\":null}");
	buf_free(&b);
}
END_TEST

/* ---- utf8_valid ------------------------------------------------------------ */

START_TEST(utf8_valid_accepts_well_formed_text)
{
	ck_assert(utf8_valid("", 0));
	ck_assert(utf8_valid("plain", 5));
	ck_assert(utf8_valid("\xc3\xa9\xe4\xb8\xad\xf0\x9f\x98\x80", 9));
	ck_assert(utf8_valid("\x7f", 1));
}
END_TEST

START_TEST(utf8_valid_rejects_nul_and_malformed_text)
{
	ck_assert(!utf8_valid("a\0b", 3));
	ck_assert(!utf8_valid("\x80", 1));
	ck_assert(!utf8_valid("\xc3", 1));
	ck_assert(!utf8_valid("\xc3\xa9\xe4\xb8", 4));
	ck_assert(!utf8_valid("\xc0\xaf", 2));
	ck_assert(!utf8_valid("\xe0\x80\xaf", 3));
	ck_assert(!utf8_valid("\xf0\x80\x80\xaf", 4));
	ck_assert(!utf8_valid("\xed\xa0\x80", 3));
	ck_assert(!utf8_valid("\xf4\x90\x80\x80", 4));
	ck_assert(!utf8_valid("\xff", 1));
	ck_assert(!utf8_valid("\xc3\x28", 2));
	ck_assert(!utf8_valid("\xe4\x28\xad", 3));
	/* only n bytes are looked at */
	ck_assert(!utf8_valid("\xc3\xa9", 1));
	ck_assert(utf8_valid("ab\xff", 2));
}
END_TEST

START_TEST(utf8_valid_every_code_point)
{
	unsigned char s[4];

	for (uint32_t cp = 1; cp <= 0x10ffff; cp++) {
		size_t n = utf8_encode(cp, s);
		bool want = !(cp >= 0xd800 && cp <= 0xdfff);

		if (utf8_valid((const char *)s, n) != want)
			ck_abort_msg("utf8_valid(U+%04X) != %d", (unsigned)cp, want);
	}
}
END_TEST

START_TEST(utf8_valid_rejects_every_overlong_form)
{
	unsigned char s[4];

	for (uint32_t cp = 0; cp < 0x10000; cp++) {
		size_t need = cp < 0x80 ? 1 : cp < 0x800 ? 2 : 3;

		for (size_t len = need + 1; len <= 4; len++) {
			utf8_encode_overlong(cp, len, s);
			if (utf8_valid((const char *)s, len))
				ck_abort_msg("overlong U+%04X in %zu bytes accepted", (unsigned)cp, len);
		}
	}
}
END_TEST

/* ---- utf8_complete_prefix ------------------------------------------------- */

START_TEST(utf8_complete_prefix_at_every_cut)
{
	/* a é 中 😀 b é: sequence lengths 1 2 3 4 1 2 */
	static const char text[] = "a\xc3\xa9\xe4\xb8\xad\xf0\x9f\x98\x80" "b\xc3\xa9";
	static const size_t lens[] = { 1, 2, 3, 4, 1, 2 };
	size_t n = sizeof(text) - 1;

	for (size_t cut = 0; cut <= n; cut++) {
		size_t want = 0, pos = 0;

		for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
			pos += lens[i];
			if (pos <= cut)
				want = pos;
		}
		ck_assert_msg(utf8_complete_prefix(text, cut) == want,
		    "cut %zu: got %zu want %zu", cut, utf8_complete_prefix(text, cut), want);
		ck_assert(utf8_valid(text, utf8_complete_prefix(text, cut)));
	}
}
END_TEST

START_TEST(utf8_complete_prefix_of_ascii_and_whole_chars)
{
	ck_assert_uint_eq(utf8_complete_prefix("", 0), 0);
	ck_assert_uint_eq(utf8_complete_prefix("abc", 3), 3);
	ck_assert_uint_eq(utf8_complete_prefix("\xf0\x9f\x98\x80", 4), 4);
	ck_assert_uint_eq(utf8_complete_prefix("\xf0\x9f\x98\x80\xf0", 5), 4);
	ck_assert_uint_eq(utf8_complete_prefix("\xf0\x9f\x98\x80\xf0\x9f", 6), 4);
	ck_assert_uint_eq(utf8_complete_prefix("\xf0\x9f\x98\x80\xf0\x9f\x98", 7), 4);
}
END_TEST

START_TEST(utf8_complete_prefix_every_code_point_every_cut)
{
	unsigned char s[5];

	for (uint32_t cp = 0x80; cp <= 0x10ffff; cp += 7) {
		size_t n;

		if (cp >= 0xd800 && cp <= 0xdfff)
			continue;
		s[0] = 'x';
		n = 1 + utf8_encode(cp, s + 1);
		for (size_t cut = 1; cut <= n; cut++) {
			size_t want = cut == n ? n : 1;
			if (utf8_complete_prefix((const char *)s, cut) != want)
				ck_abort_msg("U+%04X cut %zu: got %zu want %zu", (unsigned)cp, cut,
				    utf8_complete_prefix((const char *)s, cut), want);
		}
	}
}
END_TEST

/* ---- json_in_parse ---------------------------------------------------------- */

static json_object *
parse(const char *s, const char **err)
{
	return json_in_parse(s, strlen(s), err);
}

static void
assert_rejected(const char *s, size_t n, const char *want_err)
{
	const char *err = NULL;
	json_object *o = json_in_parse(s, n, &err);

	if (o != NULL) {
		json_object_put(o);
		ck_abort_msg("accepted: %.*s", (int)n, s);
	}
	ck_assert_ptr_nonnull(err);
	if (want_err != NULL)
		ck_assert_str_eq(err, want_err);
}

static void
assert_accepted(const char *s, size_t n)
{
	const char *err = "unset";
	json_object *o = json_in_parse(s, n, &err);

	ck_assert_msg(o != NULL, "rejected (%s): %.*s", err, (int)n, s);
	ck_assert_ptr_null(err);
	json_object_put(o);
}

START_TEST(json_in_parse_accepts_an_object)
{
	const char *err = "unset";
	json_object *o = parse("{\"a\": [1, 2.5, \"x\", true, null, {}]}", &err), *a;

	ck_assert_ptr_nonnull(o);
	ck_assert_ptr_null(err);
	ck_assert(json_object_object_get_ex(o, "a", &a));
	ck_assert_uint_eq(json_object_array_length(a), 6);
	json_object_put(o);
}
END_TEST

START_TEST(json_in_parse_allows_surrounding_whitespace)
{
	assert_accepted("  {}", 4);
	assert_accepted("{} \r\n\t", 6);
	assert_accepted("\n[1]\n", 5);
}
END_TEST

START_TEST(json_in_parse_accepts_top_level_scalars)
{
	/* RFC 8259: any value is a JSON text. */
	assert_accepted("\"x\"", 3);
	assert_accepted("123", 3);
	assert_accepted("1.5", 3);
	assert_accepted("true", 4);
}
END_TEST

START_TEST(json_in_parse_null_is_no_object)
{
	/* json-c represents null as a NULL pointer, which is json_in_parse's
	 * failure value: a body of `null` is refused with a clear message. */
	const char *err = NULL;

	ck_assert_ptr_null(json_in_parse("null", 4, &err));
	ck_assert_str_eq(err, "Request body must be a JSON object");
}
END_TEST

START_TEST(json_in_parse_rejects_trailing_garbage)
{
	assert_rejected("{}x", 3, "Invalid JSON");
	assert_rejected("{} {}", 5, "Invalid JSON");
	assert_rejected("{}\0", 3, "Invalid JSON");
	assert_rejected("[1]]", 4, "Invalid JSON");
	assert_rejected("{\"a\":1}}", 8, "Invalid JSON");
}
END_TEST

START_TEST(json_in_parse_rejects_empty_and_truncated_input)
{
	assert_rejected("", 0, "Invalid JSON");
	assert_rejected("   ", 3, NULL);
	assert_rejected("{", 1, NULL);
	assert_rejected("{\"a\":", 5, NULL);
	assert_rejected("{\"a\":\"x", 7, NULL);
	/* only n bytes count: a valid text cut short is invalid */
	assert_rejected("{\"a\":1}", 6, NULL);
}
END_TEST

START_TEST(json_in_parse_rejects_non_strict_syntax)
{
	assert_rejected("{a:1}", 5, NULL);
	assert_rejected("{\"a\":1,}", 8, NULL);
	assert_rejected("[1,]", 4, NULL);
	assert_rejected("{\"a\":01}", 8, NULL);
	assert_rejected("{\"a\":0x10}", 10, NULL);
	assert_rejected("{\"a\":TRUE}", 10, NULL);
	assert_rejected("{\"a\":1 /*c*/}", 13, NULL);
	assert_rejected("{\"a\":\"\\x41\"}", 12, NULL);
}
END_TEST

START_TEST(json_in_parse_rejects_single_quotes)
{
	assert_rejected("{'a':1}", 7, NULL);
	assert_rejected("{\"a\":'x'}", 9, NULL);
}
END_TEST

START_TEST(json_in_parse_rejects_nan_and_infinity)
{
	assert_rejected("{\"a\":NaN}", 9, NULL);
	assert_rejected("{\"a\":Infinity}", 14, NULL);
	assert_rejected("{\"a\":-Infinity}", 15, NULL);
}
END_TEST

START_TEST(json_in_parse_rejects_raw_control_chars_in_strings)
{
	assert_rejected("{\"a\":\"x\ny\"}", 11, NULL);
	assert_rejected("{\"a\":\"x\ty\"}", 11, NULL);
	assert_rejected("{\"a\":\"\x01\"}", 9, NULL);
}
END_TEST

static char *
nested(int depth, size_t *n)
{
	char *s = malloc((size_t)depth * 6 + 8);
	size_t k = 0;

	ck_assert_ptr_nonnull(s);
	for (int i = 0; i < depth; i++) {
		if (i % 2 == 0)
			s[k++] = '[';
		else {
			memcpy(s + k, "{\"a\":", 5);
			k += 5;
		}
	}
	s[k++] = '1';
	for (int i = depth - 1; i >= 0; i--)
		s[k++] = i % 2 == 0 ? ']' : '}';
	s[k] = '\0';
	*n = k;
	return s;
}

START_TEST(json_in_parse_accepts_depth_up_to_the_cap)
{
	size_t n;
	char *s;

	s = nested(16, &n);
	assert_accepted(s, n);
	free(s);
	/* json-c counts the innermost scalar as a level too: DEPTH - 1 containers
	 * around a number is the deepest document allowed. */
	s = nested(JSON_IN_MAX_DEPTH - 1, &n);
	assert_accepted(s, n);
	free(s);
}
END_TEST

START_TEST(json_in_parse_rejects_depth_over_the_cap)
{
	size_t n;
	char *s;

	s = nested(JSON_IN_MAX_DEPTH + 1, &n);
	assert_rejected(s, n, "JSON nested too deeply");
	free(s);
	s = nested(5000, &n);
	assert_rejected(s, n, "JSON nested too deeply");
	free(s);
}
END_TEST

START_TEST(json_in_parse_accepts_valid_utf8)
{
	static const char s[] = "{\"a\":\"caf\xc3\xa9 \xe4\xb8\xad \xf0\x9f\x98\x80\"}";
	const char *err;
	json_object *o = json_in_parse(s, sizeof(s) - 1, &err), *a;

	ck_assert_ptr_nonnull(o);
	ck_assert(json_object_object_get_ex(o, "a", &a));
	ck_assert_str_eq(json_object_get_string(a), "caf\xc3\xa9 \xe4\xb8\xad \xf0\x9f\x98\x80");
	json_object_put(o);
}
END_TEST

START_TEST(json_in_parse_rejects_truncated_and_stray_utf8)
{
	assert_rejected("{\"a\":\"\xc3\"}", 9, NULL);
	assert_rejected("{\"a\":\"\x80\"}", 9, NULL);
	assert_rejected("{\"a\":\"\xff\"}", 9, NULL);
	assert_rejected("{\"a\":\"\xf0\x9f\x98\"}", 11, NULL);
	assert_rejected("{\"\xc3\":1}", 8, NULL);
}
END_TEST

START_TEST(json_in_parse_rejects_overlong_utf8)
{
	assert_rejected("{\"a\":\"\xc0\xaf\"}", 10, NULL);
	assert_rejected("{\"a\":\"\xe0\x80\xaf\"}", 11, NULL);
	assert_rejected("{\"a\":\"\xf0\x80\x80\xaf\"}", 12, NULL);
}
END_TEST

START_TEST(json_in_parse_rejects_surrogate_and_out_of_range_utf8)
{
	assert_rejected("{\"a\":\"\xed\xa0\x80\"}", 11, NULL);
	assert_rejected("{\"a\":\"\xf4\x90\x80\x80\"}", 12, NULL);
}
END_TEST

/* ---- json_in_string / json_in_double --------------------------------------- */

static json_object *
obj(const char *s)
{
	const char *err;
	json_object *o = json_in_parse(s, strlen(s), &err);

	ck_assert_msg(o != NULL, "fixture does not parse: %s", s);
	return o;
}

START_TEST(json_in_string_reads_a_present_member)
{
	json_object *o = obj("{\"name\":\"caf\xc3\xa9\"}");
	const char *out = NULL, *err = NULL;
	size_t len = 99;

	ck_assert(json_in_string(o, "name", JSON_REQUIRED, 100, &out, &len, &err));
	ck_assert_str_eq(out, "caf\xc3\xa9");
	ck_assert_uint_eq(len, 5);
	ck_assert(json_in_string(o, "name", JSON_OPTIONAL, 100, &out, NULL, &err));
	ck_assert_str_eq(out, "caf\xc3\xa9");
	json_object_put(o);
}
END_TEST

START_TEST(json_in_string_missing_member)
{
	json_object *o = obj("{\"other\":\"x\"}");
	const char *out = "stale", *err = NULL;
	size_t len = 99;

	ck_assert(json_in_string(o, "name", JSON_OPTIONAL, 100, &out, &len, &err));
	ck_assert_ptr_null(out);
	ck_assert_uint_eq(len, 0);
	ck_assert(!json_in_string(o, "name", JSON_REQUIRED, 100, &out, &len, &err));
	ck_assert_str_eq(err, "missing field");
	json_object_put(o);
}
END_TEST

START_TEST(json_in_string_null_member)
{
	json_object *o = obj("{\"name\":null}");
	const char *out = "stale", *err = NULL;

	ck_assert(json_in_string(o, "name", JSON_OPTIONAL, 100, &out, NULL, &err));
	ck_assert_ptr_null(out);
	ck_assert(!json_in_string(o, "name", JSON_REQUIRED, 100, &out, NULL, &err));
	ck_assert_ptr_nonnull(err);
	json_object_put(o);
}
END_TEST

START_TEST(json_in_string_wrong_type)
{
	static const char *const bodies[] = {
		"{\"name\":1}", "{\"name\":1.5}", "{\"name\":true}", "{\"name\":[\"x\"]}",
		"{\"name\":{\"x\":\"y\"}}",
	};

	for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
		json_object *o = obj(bodies[i]);
		const char *out, *err = NULL;

		ck_assert_msg(!json_in_string(o, "name", JSON_OPTIONAL, 100, &out, NULL, &err),
		    "accepted %s", bodies[i]);
		ck_assert_str_eq(err, "must be a string");
		json_object_put(o);
	}
}
END_TEST

START_TEST(json_in_string_rejects_embedded_nul)
{
	json_object *o = obj("{\"name\":\"ab\\u0000cd\"}");
	const char *out, *err = NULL;

	ck_assert(!json_in_string(o, "name", JSON_REQUIRED, 100, &out, NULL, &err));
	ck_assert_str_eq(err, "must not contain NUL characters");
	json_object_put(o);
}
END_TEST

START_TEST(json_in_string_length_limit_in_bytes)
{
	json_object *o = obj("{\"a\":\"12345\",\"e\":\"\xc3\xa9\"}");
	const char *out, *err = NULL;

	ck_assert(json_in_string(o, "a", JSON_REQUIRED, 5, &out, NULL, &err));
	ck_assert(!json_in_string(o, "a", JSON_REQUIRED, 4, &out, NULL, &err));
	ck_assert_str_eq(err, "is too long");
	ck_assert(json_in_string(o, "e", JSON_REQUIRED, 2, &out, NULL, &err));
	ck_assert(!json_in_string(o, "e", JSON_REQUIRED, 1, &out, NULL, &err));
	json_object_put(o);
}
END_TEST

START_TEST(json_in_double_in_range)
{
	json_object *o = obj("{\"t\":0.7,\"i\":2,\"lo\":0,\"hi\":2.0,\"neg\":-1e3}");
	const char *err = NULL;
	double d = -1;

	ck_assert(json_in_double(o, "t", JSON_REQUIRED, 0, 2, &d, &err));
	ck_assert_double_eq(d, 0.7);
	ck_assert(json_in_double(o, "i", JSON_REQUIRED, 0, 2, &d, &err));
	ck_assert_double_eq(d, 2.0);
	ck_assert(json_in_double(o, "lo", JSON_REQUIRED, 0, 2, &d, &err));
	ck_assert_double_eq(d, 0.0);
	ck_assert(json_in_double(o, "hi", JSON_REQUIRED, 0, 2, &d, &err));
	ck_assert_double_eq(d, 2.0);
	ck_assert(json_in_double(o, "neg", JSON_REQUIRED, -1000, 0, &d, &err));
	ck_assert_double_eq(d, -1000.0);
	json_object_put(o);
}
END_TEST

START_TEST(json_in_double_out_of_range)
{
	json_object *o = obj("{\"a\":2.0001,\"b\":-0.0001,\"c\":1e308,\"d\":1e999,"
	    "\"e\":99999999999999999999}");
	const char *err = NULL;
	double d = 42;

	ck_assert(!json_in_double(o, "a", JSON_REQUIRED, 0, 2, &d, &err));
	ck_assert_str_eq(err, "is out of range");
	ck_assert(!json_in_double(o, "b", JSON_REQUIRED, 0, 2, &d, &err));
	ck_assert(!json_in_double(o, "c", JSON_REQUIRED, 0, 2, &d, &err));
	ck_assert(!json_in_double(o, "d", JSON_REQUIRED, 0, 2, &d, &err));
	ck_assert(!json_in_double(o, "e", JSON_REQUIRED, 0, 1e9, &d, &err));
	ck_assert_double_eq(d, 42);
	json_object_put(o);
}
END_TEST

START_TEST(json_in_double_wrong_type_and_missing)
{
	json_object *o = obj("{\"s\":\"1\",\"b\":true,\"n\":null,\"a\":[1]}");
	const char *err = NULL;
	double d = 42;

	ck_assert(!json_in_double(o, "s", JSON_OPTIONAL, 0, 2, &d, &err));
	ck_assert_str_eq(err, "must be a number");
	ck_assert(!json_in_double(o, "b", JSON_OPTIONAL, 0, 2, &d, &err));
	ck_assert(!json_in_double(o, "a", JSON_OPTIONAL, 0, 2, &d, &err));
	ck_assert(json_in_double(o, "missing", JSON_OPTIONAL, 0, 2, &d, &err));
	ck_assert(json_in_double(o, "n", JSON_OPTIONAL, 0, 2, &d, &err));
	ck_assert_double_eq(d, 42);
	ck_assert(!json_in_double(o, "missing", JSON_REQUIRED, 0, 2, &d, &err));
	ck_assert_str_eq(err, "missing field");
	ck_assert(!json_in_double(o, "n", JSON_REQUIRED, 0, 2, &d, &err));
	json_object_put(o);
}
END_TEST

/* ---- the suite ---------------------------------------------------------- */

static Suite *
json_suite(void)
{
	Suite *s = suite_create("json");
	TCase *tc = tcase_create("core");

	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, buf_init_is_empty_and_allocates_nothing);
	tcase_add_test(tc, buf_append_keeps_bytes_and_nul_terminates);
	tcase_add_test(tc, buf_append_up_to_max_succeeds);
	tcase_add_test(tc, buf_append_past_max_fails_and_leaves_buffer_unchanged);
	tcase_add_test(tc, buf_grows_to_large_sizes);
	tcase_add_test(tc, buf_printf_formats_and_appends);
	tcase_add_test(tc, buf_printf_past_max_fails_and_leaves_buffer_unchanged);
	tcase_add_test(tc, buf_reset_empties_but_keeps_storage);
	tcase_add_test(tc, buf_steal_transfers_storage);
	tcase_add_test(tc, buf_steal_of_empty_buffer_returns_empty_string);

	tcase_add_test(tc, json_compact_removes_spaces_between_tokens_only);
	tcase_add_test(tc, json_put_plain_ascii);
	tcase_add_test(tc, json_put_escapes_quotes_and_backslashes);
	tcase_add_test(tc, json_put_escapes_newline_cr_tab);
	tcase_add_test(tc, json_put_escapes_other_control_chars_as_u00xx);
	tcase_add_test(tc, json_put_every_ascii_byte_round_trips);
	tcase_add_test(tc, json_put_escapes_nul_bytes);
	tcase_add_test(tc, json_put_keeps_two_byte_utf8_verbatim);
	tcase_add_test(tc, json_put_keeps_three_byte_utf8_verbatim);
	tcase_add_test(tc, json_put_keeps_four_byte_utf8_verbatim);
	tcase_add_test(tc, json_put_replaces_lone_continuation_byte);
	tcase_add_test(tc, json_put_replaces_each_lone_high_byte);
	tcase_add_test(tc, json_put_replaces_overlong_forms);
	tcase_add_test(tc, json_put_replaces_surrogates);
	tcase_add_test(tc, json_put_replaces_code_points_above_10ffff);
	tcase_add_test(tc, json_put_replaces_truncated_sequence_at_end);
	tcase_add_test(tc, json_put_random_bytes_always_give_valid_json);
	tcase_add_test(tc, json_put_fails_when_buffer_is_full);
	tcase_add_test(tc, json_put_stringz_and_key);

	tcase_add_test(tc, utf8_valid_accepts_well_formed_text);
	tcase_add_test(tc, utf8_valid_rejects_nul_and_malformed_text);
	tcase_add_test(tc, utf8_valid_every_code_point);
	tcase_add_test(tc, utf8_valid_rejects_every_overlong_form);
	tcase_add_test(tc, utf8_complete_prefix_at_every_cut);
	tcase_add_test(tc, utf8_complete_prefix_of_ascii_and_whole_chars);
	tcase_add_test(tc, utf8_complete_prefix_every_code_point_every_cut);

	tcase_add_test(tc, json_in_parse_accepts_an_object);
	tcase_add_test(tc, json_in_parse_allows_surrounding_whitespace);
	tcase_add_test(tc, json_in_parse_accepts_top_level_scalars);
	tcase_add_test(tc, json_in_parse_null_is_no_object);
	tcase_add_test(tc, json_in_parse_rejects_trailing_garbage);
	tcase_add_test(tc, json_in_parse_rejects_empty_and_truncated_input);
	tcase_add_test(tc, json_in_parse_rejects_non_strict_syntax);
	tcase_add_test(tc, json_in_parse_rejects_single_quotes);
	tcase_add_test(tc, json_in_parse_rejects_nan_and_infinity);
	tcase_add_test(tc, json_in_parse_rejects_raw_control_chars_in_strings);
	tcase_add_test(tc, json_in_parse_accepts_depth_up_to_the_cap);
	tcase_add_test(tc, json_in_parse_rejects_depth_over_the_cap);
	tcase_add_test(tc, json_in_parse_accepts_valid_utf8);
	tcase_add_test(tc, json_in_parse_rejects_truncated_and_stray_utf8);
	tcase_add_test(tc, json_in_parse_rejects_overlong_utf8);
	tcase_add_test(tc, json_in_parse_rejects_surrogate_and_out_of_range_utf8);

	tcase_add_test(tc, json_in_string_reads_a_present_member);
	tcase_add_test(tc, json_in_string_missing_member);
	tcase_add_test(tc, json_in_string_null_member);
	tcase_add_test(tc, json_in_string_wrong_type);
	tcase_add_test(tc, json_in_string_rejects_embedded_nul);
	tcase_add_test(tc, json_in_string_length_limit_in_bytes);
	tcase_add_test(tc, json_in_double_in_range);
	tcase_add_test(tc, json_in_double_out_of_range);
	tcase_add_test(tc, json_in_double_wrong_type_and_missing);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(json_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed != 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
