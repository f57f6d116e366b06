/* openai_fast.h: an allocation-free scanner for the common streamed chunk.
 *
 * Recognises the event data nearly every token of a stream arrives in,
 *   {..., "choices":[{..., "delta":{..., "content":"text"}, "finish_reason":null}]}
 * and declines everything else, which openai_chunk.c then hands to json-c.
 * It knows JSON shapes only: event names and struct openai_chunk are the
 * caller's business. */
#ifndef CHAT_OPENAI_FAST_H
#define CHAT_OPENAI_FAST_H

#include <stdbool.h>
#include <stddef.h>

/* Nesting the scanner follows, counting the top-level object as 1; deeper
 * input is declined. Far below JSON_IN_MAX_DEPTH, so that nothing accepted
 * here can fail json-c's depth check. */
#define OPENAI_FAST_MAX_DEPTH 8

/* Scans data[0..len) in one pass, validating all of it as strict JSON (any
 * key order; unknown keys of any type skipped but checked).
 *
 * Returns true ("handled") only when data is one object with a "choices"
 * array of exactly one object whose "finish_reason" is null or absent and
 * whose "delta", if present, is an object with "content" a string, null or
 * absent; with no "error" key, "usage" null or absent, no duplicate of the
 * keys it reads, no key or content with a \u escape, nothing deeper than
 * OPENAI_FAST_MAX_DEPTH, and unescaped content shorter than cap. Then
 * *content is buf holding the unescaped text NUL-terminated, or NULL when
 * the content is empty, null or absent; *content_len is its length.
 *
 * Returns false ("declined") for anything else, valid or not, leaving
 * *content and *content_len untouched; buf may have been written. The
 * caller owns buf; *content borrows it. Never reads past data + len. */
bool openai_fast_scan(const char *data, size_t len, char *buf, size_t cap,
    const char **content, size_t *content_len);

#endif
