/* pgbin.c: uuid and timestamptz from PostgreSQL's binary format. */
#include "pgbin.h"

#include <string.h>

/* PostgreSQL's epoch (2000-01-01) in Unix microseconds. */
#define PG_EPOCH_US INT64_C(946684800000000)
#define US_PER_DAY  INT64_C(86400000000)

bool
pgbin_uuid(const char *p, size_t n, char out[PGBIN_UUID_TEXT])
{
	static const char hex[] = "0123456789abcdef";
	char *o = out;

	if (n != 16)
		return false;
	for (size_t i = 0; i < 16; i++) {
		unsigned char c = (unsigned char)p[i];

		if (i == 4 || i == 6 || i == 8 || i == 10)
			*o++ = '-';
		*o++ = hex[c >> 4];
		*o++ = hex[c & 15];
	}
	*o = '\0';
	return true;
}

bool
pgbin_timestamptz(const char *p, size_t n, int64_t *epoch_us)
{
	uint64_t v = 0;
	int64_t pg;

	if (n != 8)
		return false;
	for (size_t i = 0; i < 8; i++)
		v = (v << 8) | (unsigned char)p[i];
	memcpy(&pg, &v, sizeof(pg));   /* two's complement, without overflow */
	if (pg == INT64_MIN || pg == INT64_MAX)
		return false;   /* -infinity, infinity */
	if (pg > INT64_MAX - PG_EPOCH_US)
		return false;   /* past any year PostgreSQL accepts */
	*epoch_us = pg + PG_EPOCH_US;
	return true;
}

/* Days since 1970-01-01 to a proleptic Gregorian date (H. Hinnant's
 * civil_from_days). */
static void
civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
	int64_t era, yy;
	unsigned doe, yoe, doy, mp;

	z += 719468;
	era = (z >= 0 ? z : z - 146096) / 146097;
	doe = (unsigned)(z - era * 146097);
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	yy = (int64_t)yoe + era * 400;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	*d = doy - (153 * mp + 2) / 5 + 1;
	*m = mp < 10 ? mp + 3 : mp - 9;
	*y = yy + (*m <= 2);
}

/* Writes v in exactly width digits (v < 10^width); returns the end. */
static char *
put_digits(char *o, unsigned v, int width)
{
	for (int i = width - 1; i >= 0; i--) {
		o[i] = (char)('0' + v % 10);
		v /= 10;
	}
	return o + width;
}

void
pgbin_iso_ts(int64_t epoch_us, char out[PGBIN_ISO_TS_MAX])
{
	/* Floor division: the time of day is never negative, as in to_char. */
	int64_t days = epoch_us / US_PER_DAY, rem = epoch_us % US_PER_DAY, y;
	unsigned m, d, secs, ms;
	char *o = out;

	if (rem < 0) {
		rem += US_PER_DAY;
		days--;
	}
	civil_from_days(days, &y, &m, &d);
	if (y < 1)
		y = 1;   /* BC: outside the contract (now() never is) */
	secs = (unsigned)(rem / 1000000);
	ms = (unsigned)(rem % 1000000 / 1000);
	/* The year: four digits at least, as to_char's YYYY. */
	if (y >= 10000) {
		char digits[24];
		int n = 0;

		for (int64_t v = y; v > 0; v /= 10)
			digits[n++] = (char)('0' + v % 10);
		while (n > 0)
			*o++ = digits[--n];
	} else {
		o = put_digits(o, (unsigned)y, 4);
	}
	*o++ = '-';
	o = put_digits(o, m, 2);
	*o++ = '-';
	o = put_digits(o, d, 2);
	*o++ = 'T';
	o = put_digits(o, secs / 3600, 2);
	*o++ = ':';
	o = put_digits(o, secs / 60 % 60, 2);
	*o++ = ':';
	o = put_digits(o, secs % 60, 2);
	*o++ = '.';
	o = put_digits(o, ms, 3);
	*o++ = 'Z';
	*o = '\0';
}
