/* json.h: json-c helpers: strict body parsing, ownership-safe adds, string escaping. */
#ifndef FAKE_UPSTREAM_JSON_H
#define FAKE_UPSTREAM_JSON_H

#include <stdbool.h>
#include <stddef.h>

#include <json-c/json.h>

#include "buf.h"

#define JSON_DEPTH	64

/* Parses a JSON body (bounded depth, strict, UTF-8 checked, only whitespace
 * after the value). Returns a new reference the caller puts, or NULL. */
json_object	*json_parse_body(const char *s, size_t n);

/* Adds v to object o under k, or appends v to array a. Take v in every case
 * (released on failure); false if v is NULL (a failed constructor) or the
 * add failed. */
bool	json_add(json_object *o, const char *k, json_object *v);
bool	json_append(json_object *a, json_object *v);

/* Adds a JSON null under k. */
bool	json_add_null(json_object *o, const char *k);

/* Appends s[0, n) as the inside of a JSON string literal (no quotes). */
bool	json_escape_append(struct buf *b, const char *s, size_t n);

#endif
