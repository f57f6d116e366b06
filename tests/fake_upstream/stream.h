/* stream.h: a streamed chat completion: a state machine advanced by the connection's timer. */
#ifndef FAKE_UPSTREAM_STREAM_H
#define FAKE_UPSTREAM_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"

enum stream_phase { PH_HEADERS, PH_ROLE, PH_TOKENS, PH_END, PH_DROP };

enum stream_end { END_COMPLETED, END_ERRORED, END_DROPPED, END_ABORTED };

struct stream {
	enum stream_phase phase;
	enum stream_end	 end_kind;	/* valid in PH_END */
	uint64_t	 next_at;	/* when the next step is due */
	char		*reply;
	size_t		 reply_len;
	size_t		*tok_end;	/* token i is reply[tok_end[i-1], tok_end[i]) */
	size_t		 ntok;
	size_t		 next_tok;
	const char	*finish;	/* "stop" or "length" */
	char		*head;		/* JSON prefix shared by every chunk */
	size_t		 head_len;
	long		 prompt_tokens;
	long		 delay_ms;
	long		 stall_first_ms;
	long		 stall_after_k, stall_after_ms;
	long		 error_after, drop_after;
	long		 split_gap_ms;
	bool		 error_as_event;
	bool		 include_usage;
	bool		 chunked;	/* false for HTTP/1.0: close-delimited */
	bool		 crlf, comments, split;
	struct buf	 pend;		/* split mode: event bytes not yet sent */
	size_t		*pieces;	/* split mode: lengths of the pending pieces */
	size_t		 npieces, pieces_cap, piece_idx;
};

struct chat;
struct conn;

/* Starts streaming ch's reply on c; takes ch's reply and tokens (ch keeps
 * the rest). The stream belongs to c from then on. Returns false if c must
 * be destroyed. */
bool	stream_start(struct conn *c, struct chat *ch);

/* Runs c's stream until it must wait. Called from stream_start and from
 * the connection's timer. Returns false if c must be destroyed. */
bool	stream_run(struct conn *c);

/* Counts c's stream as ended by kind, frees it, and returns c to reading. */
void	stream_end(struct conn *c, enum stream_end kind);

/* Frees s; NULL is fine. */
void	stream_free(struct stream *s);

#endif
