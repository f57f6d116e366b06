/* json_out.h: writing JSON text straight into a buffer.
 *
 * The hot path (one SSE event per token) builds its JSON with these instead
 * of allocating a json-c object per event. The output is always valid JSON
 * and valid UTF-8: bad UTF-8 in the input becomes U+FFFD, control characters
 * are escaped, so a value can never break SSE framing (no raw CR or LF). */
#ifndef CHAT_JSON_OUT_H
#define CHAT_JSON_OUT_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"

/* Appends p[0..n) as a quoted JSON string. Returns false if b is full. */
bool json_put_string(struct buf *b, const char *p, size_t n);

/* Same for a NUL-terminated string; NULL is written as null. */
bool json_put_stringz(struct buf *b, const char *s);

/* Appends `"key":` (key is trusted ASCII from the program, not escaped). */
bool json_put_key(struct buf *b, const char *key);

/* Returns the length of the longest prefix of p[0..n) that does not end in
 * the middle of a UTF-8 sequence (used to cut text at a safe point). */
size_t utf8_complete_prefix(const char *p, size_t n);

/* Appends p[0..n) to b with every invalid UTF-8 byte replaced by U+FFFD and
 * NUL bytes dropped, so the text can be stored and framed safely. */
bool utf8_sanitize(struct buf *b, const char *p, size_t n);

/* True if p[0..n) is well-formed UTF-8 without NUL bytes. */
bool utf8_valid(const char *p, size_t n);

/* Removes the whitespace between the tokens of the JSON text s[0..n), in
 * place (strings are left as they are), and returns the new length. For
 * JSON that PostgreSQL built (jsonb prints `{"a": 1, "b": 2}`), so that
 * every answer is compact like the ones json-c writes. */
size_t json_compact(char *s, size_t n);

#endif
