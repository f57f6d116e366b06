/* fake_upstream_client.h: a scripted stand-in for core/upstream.c, for unit
 * tests of the engine (tests/unit/test_engine.c).
 *
 * fake_upstream_client.c defines the upstream_* functions the engine and
 * live.c call. upstream_stream() plays the script through the caller's
 * callbacks the way the real client does: on_open once, the deltas in
 * order, on_tick in between, and UPSTREAM_ABORTED as soon as a callback
 * returns nonzero. */
#ifndef TEST_FAKE_UPSTREAM_CLIENT_H
#define TEST_FAKE_UPSTREAM_CLIENT_H

#include <stdbool.h>
#include <stddef.h>

#include "upstream.h"

struct fake_upstream_state {
	/* The script. */
	enum upstream_error  fail;          /* != OK: fails before the stream opens */
	int                  http_status;   /* with fail == UPSTREAM_HTTP */
	const char          *deltas[16];    /* NULL-terminated */
	size_t               delta_len[16]; /* 0: strlen */
	enum upstream_error  end;           /* after the deltas: OK ([DONE]) or a failure */
	long                 prompt_tokens, completion_tokens;
	int                  ticks_before_open;
	int                  ticks_between; /* on_tick calls before each delta */
	/* Called before the ticks that precede the open (step -1) and before
	 * delta i (step i, from 0): a test cancels from here. */
	void               (*hook)(int step);

	/* What happened. */
	int                  calls;
	char                 path[64];
	char                *body;         /* the last request body (owned) */
	int                  wakeups;
	int                  deltas_taken; /* on_delta calls that returned 0 */
};

extern struct fake_upstream_state fake_upstream;

/* Forgets the script and the record (call in each test's setup). */
void fake_upstream_reset(void);

#endif
