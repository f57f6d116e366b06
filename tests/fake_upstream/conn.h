/* conn.h: client connections: reading, request framing, buffered output, closing. */
#ifndef FAKE_UPSTREAM_CONN_H
#define FAKE_UPSTREAM_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "http.h"
#include "server.h"

enum conn_state {
	CS_READ,	/* reading (or idle between) requests */
	CS_WAIT,	/* a response is held back by a timer */
	CS_STREAM,	/* an SSE stream is in progress */
	CS_DRAIN_CLOSE,	/* write what is queued, then close */
	CS_LINGER	/* SHUT_WR done; discard input until EOF or timeout */
};

struct stream;

struct conn {
	enum src_kind	 kind;		/* first: epoll tag */
	int		 fd;
	uint64_t	 id;
	enum conn_state	 state;
	uint32_t	 ev_mask;	/* events registered with epoll */
	bool		 rd_eof;
	bool		 keep_alive;	/* of the response being produced */
	bool		 cors;		/* add Access-Control-Allow-Origin */
	long		 defer_ms;	/* > 0: hold the next response back */
	bool		 defer_drop;	/* at the deadline close instead of answering */
	struct buf	 in;
	struct buf	 out;
	struct buf	 deferred;
	size_t		 scan_off;	/* header terminator search resumes here */
	struct request	 req;
	struct stream	*stream;
	size_t		 t_idx;		/* heap index, SIZE_MAX when not armed */
	uint64_t	 t_when, t_seq;
	struct conn	*prev, *next;
};

/* Takes a connected non-blocking socket; registers it with epoll. NULL on
 * failure (the caller closes fd). The connection owns fd from then on. */
struct conn	*conn_new(int fd);

/* Frees c and closes its socket. A stream still running is one the client
 * abandoned (or one we could not continue): it counts as aborted. */
void	conn_destroy(struct conn *c);

/* Destroys every connection (at exit). */
void	conn_destroy_all(void);

/* Sends queued output. Returns false when c must be destroyed: a write
 * error, or a close-after-write that has completed. */
bool	conn_flush(struct conn *c);

/* Sends what is queued, then closes (FIN, linger). false: destroy c. */
bool	conn_begin_close(struct conn *c);

/* The response for the current request is fully queued: read the next
 * request, or close without keep-alive. false: destroy c. */
bool	conn_response_done(struct conn *c);

/* Handles epoll events for c; destroys c when it is finished. */
void	conn_on_event(struct conn *c, uint32_t events);

/* c's timer fired; destroys c when it is finished. */
void	conn_on_timer(struct conn *c);

#endif
