/* openai_chunk.h: what one streamed Chat Completions event means.
 *
 * Turns the data of one upstream SSE event into the facts the engine needs:
 * a content delta, a finish reason, token usage, the end marker, or an error.
 * Unknown fields (obfuscation, service_tier, usage:null, ...) are ignored. */
#ifndef CHAT_OPENAI_CHUNK_H
#define CHAT_OPENAI_CHUNK_H

#include <stdbool.h>
#include <stddef.h>

struct openai_chunk {
	const char *content;        /* delta text, borrowed until the next parse; NULL if none */
	size_t      content_len;
	char        finish_reason[32];  /* "" if none */
	long        prompt_tokens;      /* -1 if no usage */
	long        completion_tokens;
	bool        done;               /* data: [DONE] */
	bool        error;              /* an error object or `event: error` */
	char        error_message[256];
};

struct openai_chunk_parser;

/* Returns a parser (one JSON tokener and a 4 KiB buffer for fast-path
 * content, reused by every parse); NULL on allocation failure. */
struct openai_chunk_parser *openai_chunk_parser_new(void);
void openai_chunk_parser_free(struct openai_chunk_parser *p);

/* Interprets one event. Returns false when the data is not a valid chunk
 * (malformed JSON): the stream is then broken. out's borrowed pointers stay
 * valid until the next call. The common text chunk is read by an
 * allocation-free scanner (openai_fast.h), the rest by json-c; both give
 * the same out for the same event. */
bool openai_chunk_parse(struct openai_chunk_parser *p, const char *event, const char *data,
    size_t len, struct openai_chunk *out);

/* The same as openai_chunk_parse() with json-c alone, no fast path: the
 * reference the unit tests, the differential fuzzer (fuzz_chunk) and the
 * benchmark compare the fast path with. Same contract. */
bool openai_chunk_parse_strict(struct openai_chunk_parser *p, const char *event,
    const char *data, size_t len, struct openai_chunk *out);

#endif
