/* json_in.c: bounded strict JSON parsing and typed getters. */
#include "json_in.h"

#include <string.h>

#include "json_out.h"

/* A strict RFC 8259 grammar check: json-c 0.16 accepts single quotes, NaN
 * and raw control characters even in strict mode, so bodies are validated
 * here first. Returns true if p[*i..n) starts with one valid value. */
struct jv {
	const unsigned char *p;
	size_t n, i;
	int depth, max_depth;
};

static void
jv_ws(struct jv *v)
{
	while (v->i < v->n && (v->p[v->i] == ' ' || v->p[v->i] == '\t' || v->p[v->i] == '\n' ||
	    v->p[v->i] == '\r'))
		v->i++;
}

static bool
jv_lit(struct jv *v, const char *lit)
{
	size_t k = strlen(lit);

	if (v->n - v->i < k || memcmp(v->p + v->i, lit, k) != 0)
		return false;
	v->i += k;
	return true;
}

static bool
jv_digits(struct jv *v)
{
	size_t start = v->i;

	while (v->i < v->n && v->p[v->i] >= '0' && v->p[v->i] <= '9')
		v->i++;
	return v->i > start;
}

static bool
jv_number(struct jv *v)
{
	if (v->i < v->n && v->p[v->i] == '-')
		v->i++;
	if (v->i < v->n && v->p[v->i] == '0')
		v->i++;
	else if (!jv_digits(v))
		return false;
	if (v->i < v->n && v->p[v->i] == '.') {
		v->i++;
		if (!jv_digits(v))
			return false;
	}
	if (v->i < v->n && (v->p[v->i] == 'e' || v->p[v->i] == 'E')) {
		v->i++;
		if (v->i < v->n && (v->p[v->i] == '+' || v->p[v->i] == '-'))
			v->i++;
		if (!jv_digits(v))
			return false;
	}
	return true;
}

static bool
jv_string(struct jv *v)
{
	v->i++;  /* the opening quote */
	while (v->i < v->n) {
		unsigned char c = v->p[v->i];

		if (c == '"') {
			v->i++;
			return true;
		}
		if (c < 0x20)
			return false;
		if (c == '\\') {
			if (++v->i >= v->n)
				return false;
			c = v->p[v->i];
			if (c == 'u') {
				for (int k = 1; k <= 4; k++) {
					unsigned char h = v->i + (size_t)k < v->n ? v->p[v->i + (size_t)k] : 0;
					if (!((h >= '0' && h <= '9') || (h >= 'a' && h <= 'f') || (h >= 'A' && h <= 'F')))
						return false;
				}
				v->i += 5;
			} else if (strchr("\"\\/bfnrt", c) != NULL && c != '\0')
				v->i++;
			else
				return false;
			continue;
		}
		v->i++;
	}
	return false;
}

static bool jv_value(struct jv *v);

static bool
jv_container(struct jv *v, char close)
{
	bool first = true;

	if (++v->depth > v->max_depth)
		return false;
	v->i++;
	for (;;) {
		jv_ws(v);
		if (v->i < v->n && v->p[v->i] == (unsigned char)close && first) {
			v->i++;
			break;
		}
		if (close == '}') {
			if (v->i >= v->n || v->p[v->i] != '"' || !jv_string(v))
				return false;
			jv_ws(v);
			if (v->i >= v->n || v->p[v->i] != ':')
				return false;
			v->i++;
		}
		if (!jv_value(v))
			return false;
		jv_ws(v);
		if (v->i < v->n && v->p[v->i] == ',') {
			v->i++;
			first = false;
			continue;
		}
		if (v->i < v->n && v->p[v->i] == (unsigned char)close) {
			v->i++;
			break;
		}
		return false;
	}
	v->depth--;
	return true;
}

static bool
jv_value(struct jv *v)
{
	jv_ws(v);
	if (v->i >= v->n)
		return false;
	switch (v->p[v->i]) {
	case '{': return jv_container(v, '}');
	case '[': return jv_container(v, ']');
	case '"': return jv_string(v);
	case 't': return jv_lit(v, "true");
	case 'f': return jv_lit(v, "false");
	case 'n': return jv_lit(v, "null");
	default:  return jv_number(v);
	}
}

/* True if p[0..n) is exactly one strict RFC 8259 JSON value, valid UTF-8,
 * nested at most max_depth deep; *too_deep tells a nesting failure apart. */
static bool
json_check(const char *p, size_t n, int max_depth, bool *too_deep)
{
	struct jv v = { (const unsigned char *)p, n, 0, 0, max_depth };

	*too_deep = false;
	if (!jv_value(&v)) {
		*too_deep = v.depth > max_depth;
		return false;
	}
	jv_ws(&v);
	return v.i == n && utf8_valid(p, n);
}

json_object *
json_in_parse(const char *p, size_t n, const char **err)
{
	json_tokener *tok;
	json_object *obj = NULL;
	bool too_deep;

	*err = "Invalid JSON";
	if (n == 0 || n > (size_t)INT32_MAX)
		return NULL;
	if (!json_check(p, n, JSON_IN_MAX_DEPTH, &too_deep)) {
		if (too_deep)
			*err = "JSON nested too deeply";
		return NULL;
	}
	if ((tok = json_tokener_new_ex(JSON_IN_MAX_DEPTH)) == NULL) {
		*err = "Out of memory";
		return NULL;
	}
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	obj = json_tokener_parse_ex(tok, p, (int)n);
	size_t end = json_tokener_get_parse_end(tok);
	/* A bare number at the very end waits for more input: end it. */
	if (obj == NULL && json_tokener_get_error(tok) == json_tokener_continue) {
		obj = json_tokener_parse_ex(tok, "", 1);
		end = n;
	}
	if (obj == NULL) {
		if (json_tokener_get_error(tok) == json_tokener_error_depth)
			*err = "JSON nested too deeply";
		else if (json_tokener_get_error(tok) == json_tokener_success)
			*err = "Request body must be a JSON object";  /* `null` */
		goto done;
	}
	/* The whole body must be one value, optionally followed by whitespace. */
	for (size_t i = end; i < n; i++)
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
