/* router.c: segment-wise path matching with one `{id}` capture, or one
 * `{model}` capture (a model name: visible ASCII but '/', such as gpt-4.1). */
#include "router.h"

#include <stdbool.h>
#include <string.h>

#include "chat_limits.h"

static bool
id_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	    c == '-' || c == '_';
}

static bool
model_char(char c)
{
	return c > 0x20 && c < 0x7f && c != '/';
}

int
router_path_matches(const char *pattern, const char *path, char *id, size_t idlen)
{
	const char *p = pattern, *s = path;

	if (id != NULL && idlen > 0)
		id[0] = '\0';
	while (*p != '\0') {
		bool is_id = strncmp(p, "{id}", 4) == 0, is_model = strncmp(p, "{model}", 7) == 0;

		if (is_id || is_model) {
			size_t n = 0;

			while (is_id ? id_char(s[n]) : model_char(s[n]))
				n++;
			/* An {id} is a UUID (63 leaves room for other keys); a
			 * {model} is as long as a model name may be. */
			if (n == 0 || n > (is_id ? 63 : LIMIT_MODEL_BYTES) || (s[n] != '/' && s[n] != '\0'))
				return 0;
			if (id != NULL) {
				if (n >= idlen)
					return 0;
				memcpy(id, s, n);
				id[n] = '\0';
			}
			s += n;
			p += is_id ? 4 : 7;
			continue;
		}
		if (*p != *s)
			return 0;
		p++;
		s++;
	}
	return *s == '\0';
}

enum route_match
router_match(const struct route *table, size_t n, const char *method, const char *path,
    const struct route **out, char *id, size_t idlen, char *allow, size_t allowlen)
{
	bool path_seen = false;
	size_t alen = 0;

	if (allowlen > 0)
		allow[0] = '\0';
	for (size_t i = 0; i < n; i++) {
		if (!router_path_matches(table[i].pattern, path, id, idlen))
			continue;
		if (strcmp(table[i].method, method) == 0) {
			*out = &table[i];
			return ROUTE_FOUND;
		}
		path_seen = true;
		size_t mlen = strlen(table[i].method);
		if (alen + mlen + 3 < allowlen) {
			if (alen > 0) {
				memcpy(allow + alen, ", ", 2);
				alen += 2;
			}
			memcpy(allow + alen, table[i].method, mlen + 1);
			alen += mlen;
		}
	}
	if (id != NULL && idlen > 0)
		id[0] = '\0';
	return path_seen ? ROUTE_BAD_METHOD : ROUTE_NOT_FOUND;
}
