/* json.c: json-c helpers: strict body parsing, ownership-safe adds, string
 * escaping. */
#include <limits.h>

#include "json.h"
#include "util.h"

json_object *
json_parse_body(const char *s, size_t n)
{
	struct json_tokener *tok;
	json_object *obj;

	if (n == 0 || n > INT_MAX)
		return NULL;
	if ((tok = json_tokener_new_ex(JSON_DEPTH)) == NULL)
		return NULL;
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	obj = json_tokener_parse_ex(tok, s, (int)n);
	if (obj != NULL && json_tokener_get_error(tok) != json_tokener_success) {
		json_object_put(obj);
		obj = NULL;
	}
	/* Strict mode leaves trailing bytes unread: only whitespace may follow. */
	if (obj != NULL) {
		for (size_t i = json_tokener_get_parse_end(tok); i < n; i++) {
			if (!util_is_ws((unsigned char)s[i])) {
				json_object_put(obj);
				obj = NULL;
				break;
			}
		}
	}
	json_tokener_free(tok);
	return obj;
}

bool
json_add(json_object *o, const char *k, json_object *v)
{
	if (v == NULL)
		return false;
	if (json_object_object_add(o, k, v) != 0) {
		json_object_put(v);
		return false;
	}
	return true;
}

bool
json_add_null(json_object *o, const char *k)
{
	return json_object_object_add(o, k, NULL) == 0;
}

bool
json_append(json_object *a, json_object *v)
{
	if (v == NULL)
		return false;
	if (json_object_array_add(a, v) != 0) {
		json_object_put(v);
		return false;
	}
	return true;
}

bool
json_escape_append(struct buf *b, const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	size_t i, run = 0;
	char esc[6];
	size_t elen;
	unsigned char ch;

	for (i = 0; i < n; i++) {
		ch = (unsigned char)s[i];
		if (ch >= 0x20 && ch != '"' && ch != '\\')
			continue;
		if (!buf_append(b, s + run, i - run))
			return false;
		run = i + 1;
		esc[0] = '\\';
		elen = 2;
		switch (ch) {
		case '"':  esc[1] = '"'; break;
		case '\\': esc[1] = '\\'; break;
		case '\n': esc[1] = 'n'; break;
		case '\r': esc[1] = 'r'; break;
		case '\t': esc[1] = 't'; break;
		case '\b': esc[1] = 'b'; break;
		case '\f': esc[1] = 'f'; break;
		default:
			esc[1] = 'u';
			esc[2] = '0';
			esc[3] = '0';
			esc[4] = hex[ch >> 4];
			esc[5] = hex[ch & 15];
			elen = 6;
			break;
		}
		if (!buf_append(b, esc, elen))
			return false;
	}
	return buf_append(b, s + run, n - run);
}
