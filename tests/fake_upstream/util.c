/* util.c: byte classification, number parsing and string copies. */
#include <stdlib.h>
#include <string.h>

#include "util.h"

bool
util_is_ws(unsigned char ch)
{
	return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r' ||
	    ch == '\f' || ch == '\v';
}

bool
util_is_utf8_cont(unsigned char ch)
{
	return (ch & 0xC0) == 0x80;
}

bool
util_parse_long(const char *p, size_t n, long min, long max, long *out)
{
	long v = 0;
	size_t i;

	if (n == 0 || n > 10)
		return false;
	for (i = 0; i < n; i++) {
		if (p[i] < '0' || p[i] > '9')
			return false;
		v = v * 10 + (p[i] - '0');
	}
	if (v < min || v > max)
		return false;
	*out = v;
	return true;
}

char *
util_strndup(const char *p, size_t n)
{
	char *s;

	if ((s = malloc(n + 1)) == NULL)
		return NULL;
	memcpy(s, p, n);
	s[n] = '\0';
	return s;
}
