/* chat.h: POST /v1/chat/completions: the request, the deterministic reply, the plain response. */
#ifndef FAKE_UPSTREAM_CHAT_H
#define FAKE_UPSTREAM_CHAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "directives.h"

/* One parsed chat completion request. */
struct chat {
	json_object		*req;		/* owned */
	const char		*model;		/* borrows req */
	size_t			 model_len;
	bool			 stream, include_usage;
	long			 max_tokens;	/* -1: none */
	long			 prompt_tokens;
	char			*last;		/* owned: last user message text */
	size_t			 last_len;
	char			*text;		/* owned: last without directives */
	size_t			 text_len;
	struct directives	 d;		/* slices borrow last */
	char			*reply;		/* owned */
	size_t			 reply_len;
	size_t			*tok_end;	/* owned */
	size_t			 ntok;
	const char		*finish;
};

struct conn;

/* Handles POST /v1/chat/completions (plain, streamed, or a directive's
 * misbehaviour). Returns false if c must be destroyed. */
bool	chat_handle(struct conn *c);

/* The next completion id ("chatcmpl-fake<N>"), shared by both forms. */
uint64_t	chat_next_id(void);

#endif
