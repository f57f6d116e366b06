/* test_pgbin.c: unit tests of pgbin.h: PostgreSQL binary uuid and
 * timestamptz values, and the text iso_ts() would give for them. */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>

#include "pgbin.h"

static const char *
iso(int64_t us)
{
	static char out[PGBIN_ISO_TS_MAX];

	pgbin_iso_ts(us, out);
	return out;
}

START_TEST(iso_ts_matches_to_char)
{
	/* The first: a row's created_at and what iso_ts() answered for it. */
	ck_assert_str_eq(iso(INT64_C(1796391616956736)), "2026-12-04T13:40:16.956Z");
	ck_assert_str_eq(iso(0), "1970-01-01T00:00:00.000Z");
	/* Milliseconds are truncated, as to_char's MS, also before the epoch. */
	ck_assert_str_eq(iso(INT64_C(1709251199999999)), "2024-02-29T23:59:59.999Z");
	ck_assert_str_eq(iso(-1), "1969-12-31T23:59:59.999Z");
	ck_assert_str_eq(iso(INT64_C(-2203934399999000)), "1900-02-28T12:00:00.001Z");
	ck_assert_str_eq(iso(INT64_C(951868800000000)), "2000-03-01T00:00:00.000Z");
	ck_assert_str_eq(iso(INT64_C(-62135596800000000)), "0001-01-01T00:00:00.000Z");
	/* YYYY is at least four digits, more when the year needs them. */
	ck_assert_str_eq(iso(INT64_C(253402300800000000)), "10000-01-01T00:00:00.000Z");
}
END_TEST

START_TEST(timestamptz_is_microseconds_since_2000_big_endian)
{
	const char zero[8] = { 0 }, minus_one[8] = { -1, -1, -1, -1, -1, -1, -1, -1 };
	const char one_s[8] = { 0, 0, 0, 0, 0, 0x0f, 0x42, 0x40 };   /* 1,000,000 */
	const char inf[8] = { 0x7f, -1, -1, -1, -1, -1, -1, -1 };
	const char ninf[8] = { (char)0x80, 0, 0, 0, 0, 0, 0, 0 };
	int64_t us = 0;

	ck_assert(pgbin_timestamptz(zero, 8, &us));
	ck_assert_str_eq(iso(us), "2000-01-01T00:00:00.000Z");
	ck_assert(pgbin_timestamptz(minus_one, 8, &us));
	ck_assert_str_eq(iso(us), "1999-12-31T23:59:59.999Z");
	ck_assert(pgbin_timestamptz(one_s, 8, &us));
	ck_assert(us == INT64_C(946684801000000));
	ck_assert(!pgbin_timestamptz(inf, 8, &us));
	ck_assert(!pgbin_timestamptz(ninf, 8, &us));
	ck_assert(!pgbin_timestamptz(zero, 7, &us));
}
END_TEST

START_TEST(uuid_is_canonical_lowercase_text)
{
	const char b[16] = { 0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07,
		0x08, 0x09, 0x0a, 0x0b, (char)0xcc, (char)0xdd, (char)0xee, (char)0xff };
	char out[PGBIN_UUID_TEXT];

	ck_assert(pgbin_uuid(b, 16, out));
	ck_assert_str_eq(out, "00010203-0405-0607-0809-0a0bccddeeff");
	ck_assert(!pgbin_uuid(b, 15, out));
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("pgbin");
	TCase *tc = tcase_create("values");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, iso_ts_matches_to_char);
	tcase_add_test(tc, timestamptz_is_microseconds_since_2000_big_endian);
	tcase_add_test(tc, uuid_is_canonical_lowercase_text);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed != 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
