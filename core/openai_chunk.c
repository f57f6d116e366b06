/* openai_chunk.c: interpreting streamed Chat Completions chunks. */
#include "openai_chunk.h"

#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json_in.h"
#include "openai_fast.h"

/* Content the fast path hands out in place of a json-c string. Deltas are a
 * few tokens; a longer one is json-c's to parse, so no allocation. */
#define CHUNK_FAST_CONTENT_BYTES 4096
#define CHUNK_FAST_MIN_BYTES     256

/* One per stream, held for the whole stream: both buffers are made when
 * first needed, and the content buffer only as large as the chunks seen
 * (a token's chunk is a few hundred bytes), so thousands of slow streams
 * do not each hold 4 KiB and a tokener the fast path never uses. */
struct openai_chunk_parser {
	json_tokener *tok;     /* NULL until a chunk takes the strict path */
	json_object  *last;    /* the previous chunk, kept while out borrows from it */
	char         *fast;    /* content of a fast-path chunk */
	size_t        fast_cap;
};

struct openai_chunk_parser *
openai_chunk_parser_new(void)
{
	return calloc(1, sizeof(struct openai_chunk_parser));
}

void
openai_chunk_parser_free(struct openai_chunk_parser *p)
{
	if (p == NULL)
		return;
	json_object_put(p->last);
	if (p->tok != NULL)
		json_tokener_free(p->tok);
	free(p->fast);
	free(p);
}

/* Makes the fast path's buffer hold the content of len bytes of data (the
 * content is never longer than its JSON), up to CHUNK_FAST_CONTENT_BYTES.
 * False when out of memory: the strict path then parses the chunk. */
static bool
fast_reserve(struct openai_chunk_parser *p, size_t len)
{
	size_t want = len < CHUNK_FAST_CONTENT_BYTES ? len + 1 : CHUNK_FAST_CONTENT_BYTES;
	size_t cap = p->fast_cap != 0 ? p->fast_cap : CHUNK_FAST_MIN_BYTES;
	char *b;

	if (want <= p->fast_cap)
		return true;
	while (cap < want)
		cap *= 2;
	if (cap > CHUNK_FAST_CONTENT_BYTES)
		cap = CHUNK_FAST_CONTENT_BYTES;
	if ((b = realloc(p->fast, cap)) == NULL)
		return false;
	p->fast = b;
	p->fast_cap = cap;
	return true;
}

/* Copies the message of an OpenAI error object (or string) into out. */
static void
error_message(json_object *err, struct openai_chunk *out)
{
	json_object *msg = NULL;
	const char *s = NULL;

	out->error = true;
	if (json_object_is_type(err, json_type_object) &&
	    json_object_object_get_ex(err, "message", &msg) && json_object_is_type(msg, json_type_string))
		s = json_object_get_string(msg);
	else if (json_object_is_type(err, json_type_string))
		s = json_object_get_string(err);
	(void)snprintf(out->error_message, sizeof(out->error_message), "%s",
	    s != NULL ? s : "upstream error");
}

static long
usage_field(json_object *usage, const char *name)
{
	json_object *v;

	if (json_object_object_get_ex(usage, name, &v) && json_object_is_type(v, json_type_int))
		return (long)json_object_get_int64(v);
	return -1;
}

/* Resets out and releases the previous chunk; true when data is the end
 * marker, which then is all of out. */
static bool
chunk_begin(struct openai_chunk_parser *p, const char *data, size_t len,
    struct openai_chunk *out)
{
	memset(out, 0, sizeof(*out));
	out->prompt_tokens = out->completion_tokens = -1;
	json_object_put(p->last);
	p->last = NULL;
	if (len == 6 && memcmp(data, "[DONE]", 6) == 0) {
		out->done = true;
		return true;
	}
	return false;
}

/* The strict path: json-c parses the data, the fields are read from the
 * tree, which p->last keeps for out to borrow from. */
static bool
chunk_parse_json(struct openai_chunk_parser *p, const char *event, const char *data,
    size_t len, struct openai_chunk *out)
{
	json_object *root, *v, *choices, *choice, *delta, *content;

	if (p->tok == NULL && (p->tok = json_tokener_new_ex(JSON_IN_MAX_DEPTH)) == NULL)
		return false;  /* out of memory: the chunk cannot be read */
	json_tokener_reset(p->tok);
	root = len > 0 && len < (size_t)INT32_MAX ? json_tokener_parse_ex(p->tok, data, (int)len) : NULL;
	if (root == NULL || json_tokener_get_parse_end(p->tok) != len) {
		json_object_put(root);
		if (strcmp(event, "error") == 0) {
			out->error = true;
			(void)snprintf(out->error_message, sizeof(out->error_message), "upstream error");
			return true;
		}
		return false;
	}
	p->last = root;
	if (strcmp(event, "error") == 0) {
		error_message(json_object_object_get_ex(root, "error", &v) ? v : root, out);
		return true;
	}
	if (!json_object_is_type(root, json_type_object))
		return false;
	if (json_object_object_get_ex(root, "error", &v) && v != NULL) {
		error_message(v, out);
		return true;
	}
	if (json_object_object_get_ex(root, "choices", &choices) &&
	    json_object_is_type(choices, json_type_array) &&
	    json_object_array_length(choices) > 0 &&
	    (choice = json_object_array_get_idx(choices, 0)) != NULL &&
	    json_object_is_type(choice, json_type_object)) {
		if (json_object_object_get_ex(choice, "delta", &delta) &&
		    json_object_is_type(delta, json_type_object) &&
		    json_object_object_get_ex(delta, "content", &content) &&
		    json_object_is_type(content, json_type_string) &&
		    json_object_get_string_len(content) > 0) {
			out->content = json_object_get_string(content);
			out->content_len = (size_t)json_object_get_string_len(content);
		}
		if (json_object_object_get_ex(choice, "finish_reason", &v) &&
		    json_object_is_type(v, json_type_string))
			(void)snprintf(out->finish_reason, sizeof(out->finish_reason), "%s",
			    json_object_get_string(v));
	}
	if (json_object_object_get_ex(root, "usage", &v) && json_object_is_type(v, json_type_object)) {
		out->prompt_tokens = usage_field(v, "prompt_tokens");
		out->completion_tokens = usage_field(v, "completion_tokens");
	}
	return true;
}

bool
openai_chunk_parse_strict(struct openai_chunk_parser *p, const char *event, const char *data,
    size_t len, struct openai_chunk *out)
{
	if (chunk_begin(p, data, len, out))
		return true;
	return chunk_parse_json(p, event, data, len, out);
}

bool
openai_chunk_parse(struct openai_chunk_parser *p, const char *event, const char *data,
    size_t len, struct openai_chunk *out)
{
	if (chunk_begin(p, data, len, out))
		return true;
	/* Most events are a token of text: the scanner reads those without
	 * json-c. Error events (whatever their data), data too long for
	 * json-c's int length, and anything the scanner declines take the
	 * strict path, which alone decides what is malformed. */
	if (strcmp(event, "error") != 0 && len < (size_t)INT32_MAX &&
	    fast_reserve(p, len) &&
	    openai_fast_scan(data, len, p->fast, p->fast_cap, &out->content, &out->content_len))
		return true;
	return chunk_parse_json(p, event, data, len, out);
}
