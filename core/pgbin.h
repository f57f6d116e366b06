/* pgbin.h: values of PostgreSQL's binary result format, as the API writes
 * them. The session list asks for binary columns: PostgreSQL then sends a
 * uuid or a timestamptz as it stores it, and the text is made here, far
 * cheaper than uuid_out and to_char per row in the database. No libpq: the
 * callers hand the bytes over. */
#ifndef CHAT_PGBIN_H
#define CHAT_PGBIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PGBIN_UUID_TEXT  37   /* 8-4-4-4-12 hex and the NUL */
#define PGBIN_ISO_TS_MAX 32   /* up to year 294276 and the NUL */

/* A binary uuid (n must be 16) as canonical lowercase text, as uuid_out
 * writes it. False if n is not 16. */
bool pgbin_uuid(const char *p, size_t n, char out[PGBIN_UUID_TEXT]);

/* A binary timestamptz (n must be 8: microseconds since 2000-01-01 UTC,
 * big-endian) as microseconds since the Unix epoch. False if n is not 8 or
 * the value is -infinity or infinity. */
bool pgbin_timestamptz(const char *p, size_t n, int64_t *epoch_us);

/* epoch_us as migrations/001_init.sql's iso_ts() writes it:
 * YYYY-MM-DDTHH:MM:SS.mmmZ in UTC, milliseconds truncated, for years 1 and
 * later (to_char's YYYY: at least four digits). */
void pgbin_iso_ts(int64_t epoch_us, char out[PGBIN_ISO_TS_MAX]);

#endif
