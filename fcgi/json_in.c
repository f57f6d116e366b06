/* json_in.c: bounded strict JSON parsing and typed getters. */
#include "json_in.h"

#include <string.h>

json_object *
json_in_parse(const char *p, size_t n, const char **err)
{
	json_tokener *tok;
	json_object *obj = NULL;

	*err = "Invalid JSON";
	if (n == 0 || n > (size_t)INT32_MAX)
		return NULL;
	if ((tok = json_tokener_new_ex(JSON_IN_MAX_DEPTH)) == NULL) {
		*err = "Out of memory";
		return NULL;
	}
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	obj = json_tokener_parse_ex(tok, p, (int)n);
	if (obj == NULL) {
		if (json_tokener_get_error(tok) == json_tokener_error_depth)
			*err = "JSON nested too deeply";
		goto done;
	}
	/* The whole body must be one value, optionally followed by whitespace. */
	for (size_t i = json_tokener_get_parse_end(tok); i < n; i++)
		if (p[i] != ' ' && p[i] != '\n' && p[i] != '\r' && p[i] != '\t') {
			json_object_put(obj);
			obj = NULL;
			goto done;
		}
	*err = NULL;
done:
	json_tokener_free(tok);
	return obj;
}

bool
json_in_string(json_object *obj, const char *key, enum json_field req, size_t max,
    const char **out, size_t *outlen, const char **err)
{
	json_object *v;
	const char *s;
	int len;

	*out = NULL;
	if (outlen != NULL)
		*outlen = 0;
	if (!json_object_object_get_ex(obj, key, &v) || v == NULL) {
		if (req == JSON_REQUIRED) {
			*err = "missing field";
			return false;
		}
		return true;
	}
	if (!json_object_is_type(v, json_type_string)) {
		*err = "must be a string";
		return false;
	}
	s = json_object_get_string(v);
	len = json_object_get_string_len(v);
	if (len < 0 || memchr(s, '\0', (size_t)len) != NULL) {
		*err = "must not contain NUL characters";
		return false;
	}
	if ((size_t)len > max) {
		*err = "is too long";
		return false;
	}
	*out = s;
	if (outlen != NULL)
		*outlen = (size_t)len;
	return true;
}

bool
json_in_double(json_object *obj, const char *key, enum json_field req, double min,
    double max, double *out, const char **err)
{
	json_object *v;
	double d;

	if (!json_object_object_get_ex(obj, key, &v) || v == NULL) {
		if (req == JSON_REQUIRED) {
			*err = "missing field";
			return false;
		}
		return true;
	}
	if (!json_object_is_type(v, json_type_double) && !json_object_is_type(v, json_type_int)) {
		*err = "must be a number";
		return false;
	}
	d = json_object_get_double(v);
	if (!(d >= min && d <= max)) {
		*err = "is out of range";
		return false;
	}
	*out = d;
	return true;
}
