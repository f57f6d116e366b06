/* json_in.h: parsing untrusted JSON bodies with limits, and typed field access.
 *
 * Wraps json-c: depth is capped, input must be strict JSON and valid UTF-8,
 * and trailing bytes after the value are an error. Getters borrow from the
 * parsed object: pointers stay valid until json_object_put() of the root. */
#ifndef CHAT_JSON_IN_H
#define CHAT_JSON_IN_H

#include <stdbool.h>
#include <stddef.h>

#include <json-c/json.h>

#define JSON_IN_MAX_DEPTH 32

/* Parses p[0..n). Returns a new reference (caller puts it) or NULL with a
 * static message in *err. */
json_object *json_in_parse(const char *p, size_t n, const char **err);

enum json_field { JSON_OPTIONAL = 0, JSON_REQUIRED = 1 };

/* Reads a string member. Absent or null optional members leave *out NULL and
 * return true. Fails (false, *err set) on a wrong type, an embedded NUL, or a
 * string longer than max bytes. */
bool json_in_string(json_object *obj, const char *key, enum json_field req,
    size_t max, const char **out, size_t *outlen, const char **err);

/* Reads a number member within [min, max]; absent optional leaves *out. */
bool json_in_double(json_object *obj, const char *key, enum json_field req,
    double min, double max, double *out, const char **err);

#endif
