/* fuzz_chunk.c: differential libFuzzer target for the chunk fast path.
 *
 * For any event data, openai_chunk_parse() (fast path, json-c behind it)
 * must give what openai_chunk_parse_strict() (json-c alone) gives: the same
 * verdict and the same fields. Whatever the scanner accepts by itself, the
 * strict path must accept too, with the same content. The input's first
 * byte picks the event name (mostly none, sometimes "error"). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "openai_chunk.h"
#include "openai_fast.h"

static struct openai_chunk_parser *strict_parser, *parser;

static void
same_content(const char *a, size_t alen, const char *b, size_t blen)
{
	if ((a == NULL) != (b == NULL) || alen != blen || (a != NULL && memcmp(a, b, alen) != 0))
		abort();
	if (a != NULL && (a[alen] != '\0' || b[blen] != '\0'))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char fast_buf[4096];
	struct openai_chunk s, c;
	const char *event, *text, *fast_content = NULL;
	size_t len, fast_len = 0;
	bool ok_strict, ok, ok_fast;
	char *copy;

	if (size < 1)
		return 0;
	if (strict_parser == NULL &&
	    ((strict_parser = openai_chunk_parser_new()) == NULL ||
	    (parser = openai_chunk_parser_new()) == NULL))
		abort();
	event = data[0] % 8 == 0 ? "error" : (data[0] % 8 == 1 ? "message" : "");
	len = size - 1;
	/* A copy of exactly len bytes, so ASan sees any read past the end. */
	if ((copy = malloc(len > 0 ? len : 1)) == NULL)
		abort();
	memcpy(copy, data + 1, len);
	text = copy;

	ok_fast = openai_fast_scan(text, len, fast_buf, sizeof(fast_buf), &fast_content, &fast_len);
	ok_strict = openai_chunk_parse_strict(strict_parser, event, text, len, &s);
	ok = openai_chunk_parse(parser, event, text, len, &c);

	if (ok_fast && strcmp(event, "error") != 0) {
		/* Taken by the scanner: json-c must agree on everything. (An
		 * error event never reaches the scanner: its data is an error
		 * whatever it holds.) */
		if (!ok_strict || s.error || s.done || s.finish_reason[0] != '\0' ||
		    s.prompt_tokens != -1 || s.completion_tokens != -1)
			abort();
		same_content(fast_content, fast_len, s.content, s.content_len);
	}
	if (ok != ok_strict)
		abort();
	if (ok) {
		same_content(c.content, c.content_len, s.content, s.content_len);
		if (strcmp(c.finish_reason, s.finish_reason) != 0 || c.prompt_tokens != s.prompt_tokens ||
		    c.completion_tokens != s.completion_tokens || c.done != s.done || c.error != s.error ||
		    strcmp(c.error_message, s.error_message) != 0)
			abort();
	}
	free(copy);
	return 0;
}
