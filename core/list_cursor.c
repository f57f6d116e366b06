/* list_cursor.c: the session list's keyset cursor (see list_cursor.h). */
#include "list_cursor.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"

bool
list_cursor_format(char *out, size_t len, long long us, const char *id)
{
	int n;

	if (us < 0 || us > LIST_CURSOR_END_US || id == NULL || !auth_is_uuid(id))
		return false;
	n = snprintf(out, len, "%lld_%s", us, id);
	return n > 0 && (size_t)n < len;
}

bool
list_cursor_parse(const char *s, long long *us, char id[37])
{
	const char *sep = strchr(s, '_');
	char *end;
	long long v;

	/* Digits only before the separator (no sign, no spaces), at most 18:
	 * every value then fits a long long. */
	if (sep == NULL || sep == s || sep - s > 18 || strspn(s, "0123456789") != (size_t)(sep - s))
		return false;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0 || end != sep || v > LIST_CURSOR_END_US || !auth_is_uuid(sep + 1))
		return false;
	*us = v;
	memcpy(id, sep + 1, 36);
	id[36] = '\0';
	return true;
}
