/* fuzz_sse.c: libFuzzer target for the upstream stream parsers.
 *
 * The input's first byte chooses where the rest is split, so the fuzzer
 * explores both the bytes and the cuts; the events must not depend on the
 * cut (the parser is fed whole, then in pieces, and both runs are compared). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "openai_chunk.h"
#include "sse_reader.h"

#define MAX_LINE 4096

struct run {
	struct openai_chunk_parser *chunks;
	unsigned long               hash;   /* of every event seen, in order */
	int                         events;
};

static int
on_event(void *ctx, const char *event, const char *data, size_t len)
{
	struct run *r = ctx;
	struct openai_chunk c;

	for (const char *p = event; *p != '\0'; p++)
		r->hash = r->hash * 131 + (unsigned char)*p;
	for (size_t i = 0; i < len; i++)
		r->hash = r->hash * 131 + (unsigned char)data[i];
	r->hash = r->hash * 131 + 0xff;
	r->events++;
	if (openai_chunk_parse(r->chunks, event, data, len, &c) && c.content != NULL) {
		/* Touch every byte the parser hands out. */
		volatile unsigned char sink = 0;
		for (size_t i = 0; i < c.content_len; i++)
			sink ^= (unsigned char)c.content[i];
		(void)sink;
	}
	return 0;
}

static int
run_parse(const uint8_t *data, size_t size, size_t step, struct run *r)
{
	struct sse_reader rd;
	int rc = 0;

	memset(r, 0, sizeof(*r));
	if ((r->chunks = openai_chunk_parser_new()) == NULL)
		abort();
	sse_reader_init(&rd, MAX_LINE, on_event, r);
	for (size_t off = 0; off < size && rc == 0; off += step)
		rc = sse_reader_feed(&rd, (const char *)data + off, size - off < step ? size - off : step);
	if (rc == 0)
		rc = sse_reader_finish(&rd);
	sse_reader_free(&rd);
	openai_chunk_parser_free(r->chunks);
	return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct run whole, pieces;
	size_t step;
	int rc_whole, rc_pieces;

	if (size < 1)
		return 0;
	step = (size_t)data[0] % 17 + 1;
	data++;
	size--;
	rc_whole = run_parse(data, size, size > 0 ? size : 1, &whole);
	rc_pieces = run_parse(data, size, step, &pieces);
	if (rc_whole != rc_pieces || (rc_whole == 0 && (whole.hash != pieces.hash ||
	    whole.events != pieces.events)))
		abort();  /* the cut changed what was parsed */
	return 0;
}
