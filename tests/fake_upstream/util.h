/* util.h: byte classification, number parsing and string copies. */
#ifndef FAKE_UPSTREAM_UTIL_H
#define FAKE_UPSTREAM_UTIL_H

#include <stdbool.h>
#include <stddef.h>

/* Whether ch is ASCII whitespace (space, \t, \n, \r, \f, \v). */
bool	util_is_ws(unsigned char ch);

/* Whether ch is a UTF-8 continuation byte (10xxxxxx). */
bool	util_is_utf8_cont(unsigned char ch);

/* Parses decimal digits only (1 to 10 of them) into [min, max]. Returns
 * false, *out unchanged, on anything else. */
bool	util_parse_long(const char *p, size_t n, long min, long max, long *out);

/* A NUL-terminated copy of p[0, n) that the caller frees; NULL on OOM. */
char	*util_strndup(const char *p, size_t n);

#endif
