/* sink_collect.h: the engine's sink for routes that answer in one piece
 * (/api/chat, /openai/chatCompletion, non-streamed /v1/chat/completions):
 * nothing is sent while the reply streams in; the handler renders it from
 * what this sink kept once chat_turn_run returns. */
#ifndef CHAT_SINK_COLLECT_H
#define CHAT_SINK_COLLECT_H

#include <stdbool.h>

#include "buf.h"
#include "engine.h"

struct sink_collect {
	bool        ended;
	bool        done;                 /* complete (or cancelled) */
	struct buf  content;              /* the whole reply */
	enum reply_status status;
	enum upstream_error error;        /* why the upstream failed, for the HTTP status */
	char        error_message[160];
	char        finish_reason[32];
	char        reply_id[40];
	char        model[128];
	long        created;
	long        prompt_tokens;
	long        completion_tokens;
};

void sink_collect_init(struct sink_collect *s, struct chat_sink *sink);
void sink_collect_free(struct sink_collect *s);

#endif
